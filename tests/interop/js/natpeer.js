// A JS HyperDHT peer (hyperdht 6.34.0) for the NAT lab tests, run inside a lab host; the
// same commands and JSON lines as tests/interop/natpeer.py:
//   node natpeer.js server BOOTSTRAP SEED_HEX [--no-punch] [--fast] [--relay KEY_HEX]
//   node natpeer.js client BOOTSTRAP PUBLIC_KEY_HEX [--no-lan] [--relay KEY_HEX]
//   node natpeer.js nat BOOTSTRAP
//   node natpeer.js relay BOOTSTRAP SEED_HEX
'use strict'

const HyperDHT = require('hyperdht')
const Nat = require('hyperdht/lib/nat.js')
// (blind-relay is hyperdht's own dependency, at the version the lock file pins)
const BlindRelay = require('blind-relay')

const TIMEOUT = 60000

function say(event) {
  process.stdout.write(JSON.stringify(event) + '\n')
}

function node(bootstrap, opts) {
  return new HyperDHT({ bootstrap: bootstrap.split(','), ...(opts || {}) })
}

function stats(dht) {
  return { punches: { ...dht.stats.punches } }
}

async function server(bootstrap, seed, punch, fast, relay) {
  const dht = node(bootstrap, fast ? { randomPunchInterval: 10 } : {})
  await dht.fullyBootstrapped()
  const opts = punch ? {} : { holepunch: false }
  if (relay) opts.relayThrough = relay
  const srv = dht.createServer(opts, (socket) => {
    say({ connection: socket.remotePublicKey.toString('hex'), hash: socket.handshakeHash.toString('hex') })
    socket.on('error', () => {})
    socket.on('data', (d) => socket.write(d))
    socket.on('end', () => socket.end())
  })
  const kp = HyperDHT.keyPair(seed)
  await srv.listen(kp)
  say({ listening: kp.publicKey.toString('hex') })
  process.stdin.resume()
  process.stdin.on('end', async () => {
    say(stats(dht))
    await dht.destroy({ force: true })
    process.exit(0)
  })
}

async function client(bootstrap, key, lan, relay) {
  const dht = node(bootstrap)
  await dht.fullyBootstrapped()
  const start = Date.now()
  const socket = dht.connect(key, { localConnection: lan, relayThrough: relay || null })
  const data = Buffer.from('hello through the NAT')
  const out = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'TIMEOUT' }), TIMEOUT)
    let got = Buffer.alloc(0)
    socket.on('error', (err) => {
      clearTimeout(timer)
      resolve({ error: err.code || err.message })
    })
    socket.on('data', (d) => {
      got = Buffer.concat([got, d])
      if (got.length >= data.length) {
        clearTimeout(timer)
        resolve({
          connected: got.equals(data),
          ms: Date.now() - start,
          hash: socket.handshakeHash.toString('hex')
        })
      }
    })
    socket.write(data)
  })
  socket.destroy()
  say({ ...out, ...stats(dht) })
  await dht.destroy({ force: true })
  process.exit(0)
}

async function nat(bootstrap) {
  const dht = node(bootstrap)
  await dht.fullyBootstrapped()
  const ref = dht._socketPool.acquire()
  const sampler = new Nat(dht, dht.session(), ref.socket)
  sampler.autoSample()
  await Promise.race([sampler.analyzing, new Promise((resolve) => setTimeout(resolve, TIMEOUT))])
  say({
    firewall: sampler.firewall,
    addresses: (sampler.addresses || []).map((a) => a.host + ':' + a.port)
  })
  ref.release()
  await dht.destroy({ force: true })
  process.exit(0)
}

async function relayServer(bootstrap, seed) {
  const dht = node(bootstrap)
  await dht.fullyBootstrapped()
  const relay = new BlindRelay.Server({
    createStream(opts) {
      return dht.createRawStream({ ...opts, framed: true })
    }
  })
  const srv = dht.createServer((socket) => {
    socket.on('error', () => {})
    relay.accept(socket, { id: socket.remotePublicKey }).on('error', () => {})
  })
  const kp = HyperDHT.keyPair(seed)
  await srv.listen(kp)
  say({ relay: kp.publicKey.toString('hex') })
  process.stdin.resume()
  process.stdin.on('end', async () => {
    say({ stats: { matched: relay.stats.pairings.matched } })
    await dht.destroy({ force: true })
    process.exit(0)
  })
}

const [cmd, bootstrap, arg] = process.argv.slice(2)
const flags = process.argv.slice(2)
const relayKey = flags.includes('--relay')
  ? Buffer.from(flags[flags.indexOf('--relay') + 1], 'hex')
  : null
if (cmd === 'server') {
  const punch = !flags.includes('--no-punch')
  server(bootstrap, Buffer.from(arg, 'hex'), punch, flags.includes('--fast'), relayKey)
}
else if (cmd === 'client') {
  client(bootstrap, Buffer.from(arg, 'hex'), !flags.includes('--no-lan'), relayKey)
}
else if (cmd === 'relay') relayServer(bootstrap, Buffer.from(arg, 'hex'))
else if (cmd === 'nat') nat(bootstrap)
else {
  process.stderr.write('unknown command ' + cmd + '\n')
  process.exit(2)
}
