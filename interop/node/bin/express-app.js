#!/usr/bin/env node
// A small Express app on express-session with connect-redis, serving the
// example servers' routes (`/set/{k}/{v}`, `/get/{k}`, `/del/{k}`,
// `/destroy`, `/`) with the same JSON replies, so a test can drive it and a
// Rust example server (`--redis-layout connect-redis --cookie-format
// express`) with one cookie jar.
//
// Environment: PORT, REDIS_URL, SESSION_KEYS (comma-separated secrets,
// newest first, as the Rust servers take them), IDLE_SECONDS (connect-redis's
// `ttl`, the Rust server's idle timeout).
'use strict'

const express = require('express')
const session = require('express-session')
const { RedisStore } = require('connect-redis')
const { createClient } = require('redis')

const secrets = (process.env.SESSION_KEYS || '').split(',').map((k) => k.trim()).filter(Boolean)
if (secrets.length === 0) throw new Error('SESSION_KEYS is required')

async function main () {
  const client = createClient({ url: process.env.REDIS_URL })
  client.on('error', (err) => console.error('redis:', err.message))
  await client.connect()

  const app = express()
  app.use(session({
    store: new RedisStore({ client, ttl: Number(process.env.IDLE_SECONDS || 1800) }),
    secret: secrets,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, path: '/' }
  }))
  app.get('/', (req, res) => res.json('express-session interop app'))
  app.get('/set/:key/:value', (req, res) => {
    req.session[req.params.key] = req.params.value
    res.json(req.params.value)
  })
  app.get('/get/:key', (req, res) => {
    const value = req.session[req.params.key]
    res.json(value === undefined ? null : value)
  })
  app.get('/del/:key', (req, res) => {
    delete req.session[req.params.key]
    res.json(true)
  })
  app.get('/destroy', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err)
      res.clearCookie('connect.sid', { path: '/' })
      res.json(true)
    })
  })
  const server = app.listen(Number(process.env.PORT || 8080), '127.0.0.1', () => {
    console.log('listening on http://127.0.0.1:' + server.address().port)
  })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
