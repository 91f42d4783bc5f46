// The tutorial chat's two costs on a local testnet of 5 JS nodes on 127.0.0.1: the time from
// two peers joining a topic to the first chat message delivered (each round with new peers:
// swarm, Corestore replicating over the connection, protomux-rpc `getKey` and `message` as
// the tutorial's app), then chat messages per second one after the other between two peers.
// A peer refreshes its topic every second while it has no connection (as the Python swarm
// looks again early; a JS swarm otherwise waits 10 minutes after a missed first round).
// Prints one JSON line. Usage: node chat.js ROUNDS MESSAGES
'use strict'

const Hyperswarm = require('hyperswarm')
const HyperDHT = require('hyperdht')
const Corestore = require('corestore')
const ProtomuxRPC = require('protomux-rpc')
const createTestnet = require('hyperdht/testnet')
const crypto = require('hypercore-crypto')
const os = require('os')
const fs = require('fs')
const path = require('path')

async function peer (bootstrap, dir, onMessage) {
  const store = new Corestore(dir)
  const core = store.get({ name: 'local', valueEncoding: 'json' })
  await core.ready()
  await core.append({ nickname: path.basename(dir) })
  const dht = new HyperDHT({ bootstrap, host: '127.0.0.1' })
  const swarm = new Hyperswarm({ dht })
  let current = null
  let connected = null
  let ready = new Promise((resolve) => { connected = resolve })
  swarm.on('connection', (conn) => {
    conn.on('error', () => {})
    store.replicate(conn)
    const rpc = new ProtomuxRPC(conn)
    rpc.respond('getKey', () => core.key)
    rpc.respond('message', (data) => onMessage(JSON.parse(data.toString()).message))
    current = rpc
    connected(rpc)
    conn.on('close', () => {
      // a duplicate the swarm dropped: the next connection takes over
      if (current === rpc) {
        current = null
        ready = new Promise((resolve) => { connected = resolve })
      }
    })
  })
  return {
    swarm,
    get ready () { return ready },
    async send (data) {
      for (let i = 0; i < 10; i++) {
        const rpc = await ready
        try {
          return await rpc.request('message', data)
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
      throw new Error('no connection held')
    },
    join (topic) {
      const d = swarm.join(topic)
      const t = setInterval(() => { if (swarm.connections.size === 0) d.refresh().catch(() => {}) }, 1000)
      this.ready.then(() => clearInterval(t))
      this.timer = t
    },
    async close () {
      clearInterval(this.timer)
      await swarm.destroy()
      await store.close()
    }
  }
}

async function main () {
  const rounds = Number(process.argv[2] || 10)
  const messages = Number(process.argv[3] || 1000)
  const testnet = await createTestnet(5, { host: '127.0.0.1' })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-bench-'))
  const firsts = []
  let perSecond = 0
  for (let r = 0; r < rounds; r++) {
    let delivered = null
    const got = new Promise((resolve) => { delivered = resolve })
    const a = await peer(testnet.bootstrap, path.join(tmp, `a${r}`), () => {})
    const b = await peer(testnet.bootstrap, path.join(tmp, `b${r}`), (m) => delivered(m))
    const topic = crypto.randomBytes(32)
    const start = process.hrtime.bigint()
    a.join(topic)
    b.join(topic)
    await a.send(Buffer.from(JSON.stringify({ message: 'hello' })))
    await got
    firsts.push(Number(process.hrtime.bigint() - start) / 1e6)
    if (r === rounds - 1) {
      const data = Buffer.from(JSON.stringify({ message: 'a chat line of ordinary length' }))
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < messages; i++) await a.send(data)
      perSecond = messages / (Number(process.hrtime.bigint() - t0) / 1e9)
    }
    await a.close()
    await b.close()
  }
  await testnet.destroy()
  fs.rmSync(tmp, { recursive: true, force: true })
  firsts.sort((x, y) => x - y)
  console.log(JSON.stringify({ firstMessageMs: firsts[Math.floor(firsts.length / 2)], messagesPerSecond: perSecond }))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
