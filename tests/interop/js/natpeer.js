// A JS HyperDHT peer (hyperdht 6.34.0) for the NAT lab tests, run inside a lab host; the
// same commands and JSON lines as tests/natpeer.py:
//   node natpeer.js server BOOTSTRAP SEED_HEX [--no-punch] [--fast]
//   node natpeer.js client BOOTSTRAP PUBLIC_KEY_HEX [--no-lan]
//   node natpeer.js nat BOOTSTRAP
'use strict'

const HyperDHT = require('hyperdht')
const Nat = require('hyperdht/lib/nat.js')

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

async function server(bootstrap, seed, punch, fast) {
  const dht = node(bootstrap, fast ? { randomPunchInterval: 10 } : {})
  await dht.fullyBootstrapped()
  const opts = punch ? {} : { holepunch: false }
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

async function client(bootstrap, key, lan) {
  const dht = node(bootstrap)
  await dht.fullyBootstrapped()
  const start = Date.now()
  const socket = dht.connect(key, { localConnection: lan })
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

const [cmd, bootstrap, arg] = process.argv.slice(2)
const flags = process.argv.slice(2)
if (cmd === 'server') {
  server(bootstrap, Buffer.from(arg, 'hex'), !flags.includes('--no-punch'), flags.includes('--fast'))
}
else if (cmd === 'client') client(bootstrap, Buffer.from(arg, 'hex'), !flags.includes('--no-lan'))
else if (cmd === 'nat') nat(bootstrap)
else {
  process.stderr.write('unknown command ' + cmd + '\n')
  process.exit(2)
}
