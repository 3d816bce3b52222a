#!/usr/bin/env node
// A small app on Node's generic-session with this package's Redis store,
// serving the example servers' routes (`/set/{k}/{v}`, `/get/{k}`,
// `/del/{k}`, `/destroy`, `/`) with the same JSON replies, so a test can
// drive it and a Rust example server with one cookie jar.
//
// Environment: PORT, REDIS_URL, SESSION_KEYS (comma-separated, newest first,
// as the Rust servers take them), IDLE_SECONDS (generic-session's `expire`,
// the Rust server's idle timeout), COOKIE_NAME (default `s`).
'use strict'

const http = require('http')
const genericSession = require('generic-session')
const { createClient } = require('redis')
const RedisStore = require('../lib/store')

const cookieName = process.env.COOKIE_NAME || 's'
const options = {
  keys: (process.env.SESSION_KEYS || '').split(',').map((k) => k.trim()).filter(Boolean),
  expire: Number(process.env.IDLE_SECONDS || 1800),
  cookieName
}
if (options.keys.length === 0) throw new Error('SESSION_KEYS is required')

function reply (res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

async function main () {
  const client = createClient({ url: process.env.REDIS_URL })
  client.on('error', (err) => console.error('redis:', err.message))
  await client.connect()
  const store = new RedisStore(client)

  http.createServer((req, res) => {
    const session = genericSession(req, res, store, options)
    // Only an id minted for this request may create a session: one from a
    // cookie must find its session alive.
    const fromCookie = session.cookies.get(cookieName, { signed: true }) === session.token
    session.store = store.forRequest(!fromCookie)
    const done = (value) => (err) => {
      if (err && err.code === 'SESSION_GONE') return reply(res, 409, { error: err.message })
      if (err) return reply(res, 500, { error: err.message })
      reply(res, 200, value)
    }
    const parts = req.url.split('/').map((part) => decodeURIComponent(part))
    let m
    if (req.url === '/') return reply(res, 200, 'generic-session interop app')
    if (req.url === '/destroy') return session.destroy(done(true))
    if ((m = req.url.match(/^\/set\/([^/]+)\/(.+)$/))) {
      const value = decodeURIComponent(m[2])
      return session.set(decodeURIComponent(m[1]), value, done(value))
    }
    if (parts[1] === 'get' && parts.length === 3) {
      return session.get(parts[2], (err, value) => done(value === undefined ? null : value)(err))
    }
    if (parts[1] === 'del' && parts.length === 3) return session.del(parts[2], done(true))
    reply(res, 404, { error: 'not found' })
  }).listen(Number(process.env.PORT || 8080), '127.0.0.1', function () {
    console.log('listening on http://127.0.0.1:' + this.address().port)
  })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
