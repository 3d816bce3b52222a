'use strict'
// A Store for Node's generic-session (npm `generic-session`) over
// store-redis's native layout, so that a Node app and a Rust app share live
// sessions: one Redis hash per session, at `<prefix>{<id>}`.
//
// It runs store-redis's own Lua scripts (read from `store-redis/src/lua`, the
// one copy both sides run), so each operation is one atomic round trip with
// the same rules as the Rust side: the same expiry, size limits and
// counters. Not store-redis's activity index: with `activity_index` on, the
// Rust side's "active lately" does not see this store's operations. Values
// are JSON, as store-redis's default codec writes them.
//
// generic-session hands every call the session's idle timeout in
// milliseconds (its `expire` option, times 1000): give it the Rust side's
// idle timeout, or the two will slide the session to different deadlines.

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const { RESP_TYPES } = require('redis')

const DEFAULTS = {
  // store-redis's DEFAULT_PREFIX and session-core's defaults.
  prefix: 'session:',
  absoluteMs: 12 * 60 * 60 * 1000,
  touchAfterMs: 60 * 1000,
  maxKeys: 1024,
  maxSessionBytes: 16 * 1024 * 1024,
  scripts: path.join(__dirname, '..', '..', '..', 'store-redis', 'src', 'lua')
}

// Metadata fields start with the byte 0xff, which no user key (UTF-8) can.
const META = 0xff

class Script {
  constructor (source) {
    this.source = source
    this.sha = crypto.createHash('sha1').update(source).digest('hex')
  }

  // EVALSHA, loading the script first when the server does not know it.
  async run (client, keys, args) {
    try {
      return await client.evalSha(this.sha, { keys, arguments: args })
    } catch (err) {
      if (!String(err && err.message).startsWith('NOSCRIPT')) throw err
      return client.eval(this.source, { keys, arguments: args })
    }
  }
}

function loadScripts (dir) {
  const read = (name) => fs.readFileSync(path.join(dir, name), 'utf8')
  const prelude = read('prelude.lua')
  const session = (name) => new Script(prelude + read(name))
  return {
    get: session('get.lua'),
    getAll: session('get_all.lua'),
    setMany: session('set_many.lua'),
    delMany: session('del_many.lua'),
    extend: session('extend.lua'),
    destroy: new Script(read('destroy.lua'))
  }
}

// A write found its session gone (destroyed or expired) and could not
// create it.
class SessionGone extends Error {
  constructor () {
    super('the session has ended')
    this.code = 'SESSION_GONE'
  }
}

function parse (buffer) {
  return buffer == null ? null : JSON.parse(buffer.toString('utf8'))
}

class RedisStore {
  // `client`: a connected node-redis client. Options: `prefix` (the Rust
  // store's key prefix), `absoluteMs` (0: none), `touchAfterMs`,
  // `maxKeys`, `maxSessionBytes`, and `scripts` (the directory of
  // store-redis's Lua scripts).
  constructor (client, options) {
    this.options = Object.assign({}, DEFAULTS, options)
    // Replies as bytes: metadata field names are not UTF-8.
    this.client = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
    this.scripts = loadScripts(this.options.scripts)
  }

  key (id) {
    return this.options.prefix + '{' + id + '}'
  }

  times (expire) {
    return [String(Math.round(expire)), String(this.options.absoluteMs)]
  }

  run (script, id, expire, args, callback) {
    const argv = (expire === null ? [] : this.times(expire)).concat(args)
    const done = callback || function () {}
    script.run(this.client, [this.key(id)], argv).then(
      (reply) => done(null, reply),
      (err) => done(err)
    )
  }

  get (id, key, expire, callback) {
    this.run(this.scripts.get, id, expire, [String(this.options.touchAfterMs), key], (err, reply) => {
      if (err) return callback(err)
      let value
      try { value = parse(reply[1]) } catch (e) { return callback(e) }
      callback(null, value)
    })
  }

  getAll (id, expire, callback) {
    this.run(this.scripts.getAll, id, expire, [String(this.options.touchAfterMs)], (err, reply) => {
      if (err) return callback(err)
      const all = {}
      const fields = reply[1]
      try {
        for (let i = 0; i < fields.length; i += 2) {
          if (fields[i][0] !== META) all[fields[i].toString('utf8')] = parse(fields[i + 1])
        }
      } catch (e) { return callback(e) }
      callback(null, all)
    })
  }

  // The store as one request sees it: `mayCreate` says whether a `set` may
  // create the session, true only for an id this request minted. A write
  // with the id from a cookie then never revives a session that a destroy,
  // on either side, ended meanwhile: it fails instead (as the Rust side's
  // strict writes do).
  forRequest (mayCreate) {
    return Object.create(this, { mayCreate: { value: mayCreate } })
  }

  set (id, key, value, expire, callback) {
    const json = JSON.stringify(value === undefined ? null : value)
    const mode = this.mayCreate === false ? '0' : '1'
    const args = [mode, String(this.options.maxKeys), String(this.options.maxSessionBytes), '1', key, json]
    this.run(this.scripts.setMany, id, expire, args, (err, reply) => {
      if (err) return callback(err)
      const status = Number(reply[0])
      if (status === 1) return callback(null)
      if (status === 0) return callback(new SessionGone())
      callback(new Error(status === -1
        ? 'session would hold more than ' + this.options.maxKeys + ' keys'
        : 'session would hold more than ' + this.options.maxSessionBytes + ' bytes'))
    })
  }

  del (id, key, expire, callback) {
    this.run(this.scripts.delMany, id, expire, [key], (err) => callback(err || null))
  }

  delAll (id, callback) {
    // Ends the session, as store-redis's del_all does: a write racing it
    // finds no session and, like the Rust side's writes, creates a new one
    // only when it may (generic-session's `set` always may).
    this.run(this.scripts.destroy, id, null, [''], (err) => callback(err || null))
  }

  extend (id, expire) {
    this.run(this.scripts.extend, id, expire, [], () => {})
  }
}

module.exports = RedisStore
module.exports.SessionGone = SessionGone
