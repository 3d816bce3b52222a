'use strict'
// The store's own tests, on a private redis-server this file starts on a
// free loopback port (Debian: `apt-get install redis-server`).

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { spawn } = require('node:child_process')
const { promisify } = require('node:util')
const { createClient } = require('redis')
const RedisStore = require('../lib/store')

function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function startRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  child.on('error', (err) => {
    throw new Error('these tests need redis-server on the PATH (Debian: apt-get install redis-server): ' + err.message)
  })
  const client = createClient({ url: 'redis://127.0.0.1:' + port })
  client.on('error', () => {})
  for (let i = 0; ; i++) {
    try {
      await client.connect()
      break
    } catch (err) {
      if (i > 100) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return { client, stop: async () => { await client.quit(); child.kill() } }
}

const IDLE = 60 * 1000
const ID = 'session:byUiI1K9Q3jEqLR/0Lhy6JqJ9qa5bFb9j35auXj5'

test('the Store API over the native layout', async (t) => {
  const redis = await startRedis()
  t.after(redis.stop)
  const store = new RedisStore(redis.client)
  const call = (method, ...args) => promisify(store[method].bind(store))(...args)

  assert.equal(await call('get', ID, 'cart', IDLE), null, 'no session yet')
  await call('set', ID, 'cart', ['apple', { n: 1 }], IDLE)
  await call('set', ID, 'user', 'ada', IDLE)
  assert.deepEqual(await call('get', ID, 'cart', IDLE), ['apple', { n: 1 }])
  assert.deepEqual(await call('getAll', ID, IDLE), { cart: ['apple', { n: 1 }], user: 'ada' })

  // One hash at the Rust store's key, with its metadata beside the values.
  const key = 'session:{' + ID + '}'
  assert.equal(await redis.client.type(key), 'hash')
  assert.equal(await redis.client.hGet(key, 'user'), '"ada"')
  const ttl = await redis.client.pTTL(key)
  assert.ok(ttl > IDLE - 5000 && ttl <= IDLE, 'the idle timeout: ' + ttl)

  // extend slides the idle timeout, as every other call does.
  await redis.client.pExpire(key, 1000)
  store.extend(ID, IDLE)
  for (let i = 0; i < 100 && (await redis.client.pTTL(key)) <= 1000; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.ok((await redis.client.pTTL(key)) > IDLE - 5000, 'extended')

  await call('del', ID, 'cart', IDLE)
  assert.deepEqual(await call('getAll', ID, IDLE), { user: 'ada' })
  await call('delAll', ID)
  assert.equal(await redis.client.exists(key), 0)

  // A write with an id from a cookie never creates: the session ended.
  const fromCookie = store.forRequest(false)
  await assert.rejects(promisify(fromCookie.set.bind(fromCookie))(ID, 'cart', 'pear', IDLE), { code: 'SESSION_GONE' })
  assert.equal(await redis.client.exists(key), 0)
})

test('limits refuse a write and keep the session', async (t) => {
  const redis = await startRedis()
  t.after(redis.stop)
  const store = new RedisStore(redis.client, { maxKeys: 2 })
  const set = promisify(store.set.bind(store))
  await set(ID, 'a', 1, IDLE)
  await set(ID, 'b', 2, IDLE)
  await assert.rejects(set(ID, 'c', 3, IDLE), /more than 2 keys/)
  assert.deepEqual(await promisify(store.getAll.bind(store))(ID, IDLE), { a: 1, b: 2 })
})

test('concurrent writes to different keys all land', async (t) => {
  const redis = await startRedis()
  t.after(redis.stop)
  const store = new RedisStore(redis.client)
  const set = promisify(store.set.bind(store))
  await Promise.all(Array.from({ length: 50 }, (_, i) => set(ID, 'k' + i, i, IDLE)))
  const all = await promisify(store.getAll.bind(store))(ID, IDLE)
  assert.equal(Object.keys(all).length, 50)
})
