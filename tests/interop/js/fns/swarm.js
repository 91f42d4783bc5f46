// Live JS Hyperswarm peers for the swarm interop tests, all on 127.0.0.1 (each swarm gets its
// own HyperDHT node bound to loopback, as a JS app on one machine must). Swarms stay in this
// process between calls and are named by a handle.
// Every connection is recorded: the remote key, the handshake hash, what the peer sent, and
// whether it closed. On each connection a swarm writes "hello <its public key hex>".
'use strict'

const Hyperswarm = require('hyperswarm')
const HyperDHT = require('hyperdht')
const b4a = require('b4a')

const swarms = new Map()
let next = 1

function get (h) {
  const s = swarms.get(h)
  if (!s) throw new Error('no such swarm ' + h)
  return s
}

function hex (b) {
  return b4a.toString(b, 'hex')
}

module.exports = {
  // opts: { maxPeers, refuse: [publicKey hex...] }
  'swarm.create': async (bootstrap, seed, opts) => {
    opts = opts || {}
    const keyPair = HyperDHT.keyPair(seed || undefined)
    const dht = new HyperDHT({ bootstrap, host: '127.0.0.1' })
    const refuse = new Set(opts.refuse || [])
    const swarm = new Hyperswarm({
      keyPair,
      dht,
      maxPeers: opts.maxPeers || 64,
      firewall: (key) => refuse.has(hex(key))
    })
    const record = { swarm, connections: [], bans: [], refreshers: new Map() }
    swarm.on('connection', (conn, info) => {
      const c = {
        remotePublicKey: conn.remotePublicKey,
        handshakeHash: conn.handshakeHash,
        client: info.client,
        received: [],
        closed: false
      }
      record.connections.push(c)
      conn.on('error', () => {})
      conn.on('data', (d) => c.received.push(b4a.toString(d)))
      conn.on('close', () => { c.closed = true })
      conn.write(b4a.from('hello ' + hex(keyPair.publicKey)))
    })
    swarm.on('ban', (info) => record.bans.push(info.publicKey))
    await dht.ready()
    const h = next++
    swarms.set(h, record)
    return { handle: h, publicKey: keyPair.publicKey }
  },
  // Join a topic; with refreshMs, refresh the discovery that often (a JS peer otherwise
  // looks again only after 10 minutes: see REFERENCE.md section 13).
  'swarm.join': async (h, topic, opts) => {
    opts = opts || {}
    const r = get(h)
    const d = r.swarm.join(topic, { server: opts.server !== false, client: opts.client !== false })
    if (opts.refreshMs) {
      const t = setInterval(() => d.refresh().catch(() => {}), opts.refreshMs)
      r.refreshers.set(hex(topic), t)
    }
    if (opts.flush) await d.flushed()
    return true
  },
  'swarm.leave': async (h, topic) => {
    const r = get(h)
    const t = r.refreshers.get(hex(topic))
    if (t) clearInterval(t)
    await r.swarm.leave(topic)
    return true
  },
  'swarm.joinPeer': async (h, publicKey) => {
    get(h).swarm.joinPeer(publicKey)
    return true
  },
  'swarm.listen': async (h) => {
    await get(h).swarm.listen()
    return true
  },
  'swarm.flush': async (h) => get(h).swarm.flush(),
  'swarm.state': async (h) => {
    const r = get(h)
    return {
      connections: r.connections,
      open: r.swarm.connections.size,
      peers: r.swarm.peers.size,
      bans: r.bans
    }
  },
  // The keys a lookup of `topic` finds (from this swarm's DHT node).
  'swarm.lookup': async (h, topic) => {
    const keys = new Set()
    for await (const reply of get(h).swarm.dht.lookup(topic)) {
      for (const peer of reply.peers) keys.add(hex(peer.publicKey))
    }
    return [...keys]
  },
  'swarm.destroy': async (h) => {
    const r = get(h)
    for (const t of r.refreshers.values()) clearInterval(t)
    swarms.delete(h)
    await r.swarm.destroy()
    return true
  }
}
