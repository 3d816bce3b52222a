#!/usr/bin/env node
// Cookie vectors from the real npm packages, for the Rust tests: reads a JSON
// array of requests from stdin and prints a JSON array of answers, one each.
//
//   {op: 'keygrip-set', keys, algorithm, name, value}  -> the Set-Cookie lines `cookies` sends
//   {op: 'keygrip-get', keys, algorithm, name, cookie} -> the value `cookies` accepts, or null
//   {op: 'express-set', secret, name, value}          -> the Set-Cookie line express-session sends
//   {op: 'express-get', secrets, name, cookie}        -> the id express-session accepts, or null
//   {op: 'signature-sign', secret, value}              -> `cookie-signature`'s (the package's own release) sign
'use strict'

const Cookies = require('cookies')
const Keygrip = require('keygrip')
// express-session's own copies of `cookie` and `cookie-signature`, which it
// parses, serializes, signs and verifies with.
const ownCopy = (name) => require(require.resolve(name, { paths: [require.resolve('express-session')] }))
const cookie = ownCopy('cookie')
const signature = ownCopy('cookie-signature')
const latestSignature = require('cookie-signature')

// The request and response `cookies` reads and writes, without a server.
function exchange (cookieHeader) {
  const headers = {}
  const req = { headers: cookieHeader ? { cookie: cookieHeader } : {}, connection: {}, protocol: 'http' }
  const res = {
    getHeader: (name) => headers[name.toLowerCase()],
    setHeader: (name, value) => { headers[name.toLowerCase()] = value }
  }
  return { req, res, headers }
}

function answer (request) {
  switch (request.op) {
    case 'keygrip-set': {
      const { req, res, headers } = exchange()
      const keys = new Keygrip(request.keys, request.algorithm)
      new Cookies(req, res, { keys }).set(request.name, request.value, { signed: true })
      return [].concat(headers['set-cookie'] || [])
    }
    case 'keygrip-get': {
      const { req, res } = exchange(request.cookie)
      const keys = new Keygrip(request.keys, request.algorithm)
      const value = new Cookies(req, res, { keys }).get(request.name, { signed: true })
      return value === undefined ? null : value
    }
    case 'express-set': {
      // As express-session's setcookie does it.
      const signed = 's:' + signature.sign(request.value, request.secret)
      return cookie.serialize(request.name, signed, { path: '/', httpOnly: true })
    }
    case 'express-get': {
      // As express-session's getcookie does it.
      const raw = cookie.parse(request.cookie)[request.name]
      if (!raw || raw.substr(0, 2) !== 's:') return null
      for (const secret of request.secrets) {
        const id = signature.unsign(raw.slice(2), secret)
        if (id !== false) return id
      }
      return null
    }
    case 'signature-sign':
      return latestSignature.sign(request.value, request.secret)
    default:
      throw new Error('unknown op ' + request.op)
  }
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify(JSON.parse(input).map(answer)))
})
