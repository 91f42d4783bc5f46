// A JS Hyperswarm peer in a process of its own, for tests that kill it and start it again.
// Usage: node swarm_peer.js '{"bootstrap": ["127.0.0.1:port"], "seed": "<hex>", "topic": "<hex>"}'
// (optional: "host" to bind, default 127.0.0.1; "relayThrough": a blind relay's key in hex)
// Joins the topic (refreshing every 2 s, see REFERENCE.md section 13), writes
// "hello <public key hex>" on each connection, and prints one JSON line per event:
// {"event": "ready", "publicKey"}, {"event": "connection", "remotePublicKey", "handshakeHash"},
// {"event": "data", "remotePublicKey", "data"}, {"event": "close", "remotePublicKey"}.
'use strict'

const Hyperswarm = require('hyperswarm')
const HyperDHT = require('hyperdht')

const opts = JSON.parse(process.argv[2])
const hex = (b) => Buffer.from(b).toString('hex')
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n')

async function main () {
  const keyPair = HyperDHT.keyPair(Buffer.from(opts.seed, 'hex'))
  const dht = new HyperDHT({ bootstrap: opts.bootstrap, host: opts.host || '127.0.0.1' })
  const relayThrough = opts.relayThrough ? Buffer.from(opts.relayThrough, 'hex') : null
  const swarm = new Hyperswarm({ keyPair, dht, relayThrough })
  swarm.on('connection', (conn) => {
    const remotePublicKey = hex(conn.remotePublicKey)
    print({ event: 'connection', remotePublicKey, handshakeHash: hex(conn.handshakeHash) })
    conn.on('error', () => {})
    conn.on('data', (d) => print({ event: 'data', remotePublicKey, data: d.toString() }))
    conn.on('close', () => print({ event: 'close', remotePublicKey }))
    conn.write(Buffer.from('hello ' + hex(keyPair.publicKey)))
  })
  const discovery = swarm.join(Buffer.from(opts.topic, 'hex'))
  setInterval(() => discovery.refresh().catch(() => {}), 2000)
  await dht.ready()
  print({ event: 'ready', publicKey: hex(keyPair.publicKey) })
}

main().catch((err) => {
  print({ event: 'error', message: String(err) })
  process.exit(1)
})
