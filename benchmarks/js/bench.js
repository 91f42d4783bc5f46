// Benchmark workloads of the JS reference, the twins of benchmarks/workloads.py.
//   node bench.js <workload> <ops> <repeats>
//   -> {"workload": "<workload>", "ops_per_sec": [r1, r2, ...]}
// One warm-up run, then <repeats> timed runs of <ops> operations each.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const c = require('compact-encoding')
const Hypercore = require('hypercore')
const net = require('net')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const ProtomuxRPC = require('protomux-rpc')
const crypto = require('hypercore-crypto')
const { wire } = require('hypercore/lib/messages')

// The same inputs as benchmarks/workloads.py.
const BLOCK = Buffer.from(Array.from({ length: 1024 }, (_, i) => i & 255))
const SEED = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const MESSAGE = Buffer.from(Array.from({ length: 112 }, (_, i) => (i * 7) & 255))

// The sibling path of leaf 2000 (flat-tree index 4000): one node per depth 0..9.
function proofNodes () {
  const nodes = []
  for (let depth = 0; depth < 10; depth++) {
    const offset = (2000 >> depth) ^ 1
    nodes.push({
      index: (2 * offset + 1) * 2 ** depth - 1,
      size: 1024 * 2 ** depth,
      hash: Buffer.alloc(32, depth + 1)
    })
  }
  return nodes
}

const tmpDirs = []
function tmpDir () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hypertrio-bench-'))
  tmpDirs.push(dir)
  return dir
}
process.on('exit', () => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true })
})

// A core of `blocks` 1 KiB blocks, written, closed and opened again.
async function reopenedCore (blocks) {
  const dir = tmpDir()
  const writer = new Hypercore(dir, { keyPair: crypto.keyPair(SEED) })
  for (let i = 0; i < blocks; i += 1000) {
    await writer.append(new Array(Math.min(1000, blocks - i)).fill(BLOCK))
  }
  await writer.close()
  const core = new Hypercore(dir)
  await core.ready()
  return core
}

// Deterministic pseudo-random block indices (the same sequence as workloads.py).
function randomIndices (n, length) {
  const out = new Array(n)
  let x = 1
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648
    out[i] = x % length
  }
  return out
}

const GET_BLOCKS = 100000

// Two secret-streams joined by a TCP connection on 127.0.0.1, handshake done.
async function secretStreamPair () {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise((resolve) => server.once('connection', resolve))
  const socket = net.connect(server.address().port, '127.0.0.1')
  const a = new NoiseSecretStream(true, socket, { keyPair: crypto.keyPair(SEED) })
  const b = new NoiseSecretStream(false, await accepted)
  server.close()
  await Promise.all([a.opened, b.opened])
  return [a, b]
}

// An RPC pair over secretStreamPair with an 'echo' method.
async function rpcPair () {
  const [a, b] = await secretStreamPair()
  const client = new ProtomuxRPC(a)
  const server = new ProtomuxRPC(b)
  server.respond('echo', (value) => value)
  await client.fullyOpened()
  return client
}

const WORKLOADS = {
  'data-message-1k' () {
    const msg = {
      request: 7,
      fork: 0,
      block: { index: 1000, value: BLOCK, nodes: proofNodes() },
      hash: null,
      seek: null,
      upgrade: null,
      manifest: null
    }
    return () => c.decode(wire.data, c.encode(wire.data, msg))
  },
  'leaf-hash-1k' () {
    return () => crypto.data(BLOCK)
  },
  'ed25519-sign' () {
    const { secretKey } = crypto.keyPair(SEED)
    return () => crypto.sign(MESSAGE, secretKey)
  },
  async 'hypercore-append-1k' () {
    const core = new Hypercore(tmpDir(), { keyPair: crypto.keyPair(SEED) })
    await core.ready()
    return () => core.append(BLOCK)
  },
  async 'hypercore-append-batch-1k' () {
    // one op is one block; blocks are appended 1,000 at a time
    const core = new Hypercore(tmpDir(), { keyPair: crypto.keyPair(SEED) })
    await core.ready()
    const batch = new Array(1000).fill(BLOCK)
    let i = 0
    return () => (i++ % 1000 === 0 ? core.append(batch) : null)
  },
  async 'hypercore-get-sequential' () {
    const core = await reopenedCore(GET_BLOCKS)
    let i = 0
    return () => core.get(i++ % GET_BLOCKS)
  },
  async 'hypercore-get-random' () {
    const core = await reopenedCore(GET_BLOCKS)
    const indices = randomIndices(1 << 16, GET_BLOCKS)
    let i = 0
    return () => core.get(indices[i++ & 0xffff])
  },
  // A batch workload returns { batch(ops) }: one timed call does all `ops` operations.
  async 'secret-stream-64k' () {
    const [a, b] = await secretStreamPair()
    const msg = Buffer.alloc(65536, 7)
    return {
      batch: (ops) =>
        new Promise((resolve) => {
          let left = ops * msg.byteLength
          const ondata = (data) => {
            left -= data.byteLength
            if (left <= 0) {
              b.removeListener('data', ondata)
              resolve()
            }
          }
          b.on('data', ondata)
          for (let i = 0; i < ops; i++) a.write(msg)
        })
    }
  },
  async 'rpc-sequential' () {
    const client = await rpcPair()
    const value = Buffer.from('hello')
    return () => client.request('echo', value)
  },
  async 'rpc-100-in-flight' () {
    const client = await rpcPair()
    const value = Buffer.from('hello')
    return {
      async batch (ops) {
        let next = 0
        const worker = async () => {
          while (next < ops) {
            next++
            await client.request('echo', value)
          }
        }
        await Promise.all(Array.from({ length: 100 }, worker))
      }
    }
  },
  'ed25519-verify' () {
    const { publicKey, secretKey } = crypto.keyPair(SEED)
    const signature = crypto.sign(MESSAGE, secretKey)
    if (!crypto.verify(MESSAGE, signature, publicKey)) throw new Error('bad signature')
    return () => crypto.verify(MESSAGE, signature, publicKey)
  }
}

let sink = null // holds the last result so the work cannot be optimised away

// An op may return a promise: it is awaited before the next op starts.
async function run (op, ops) {
  const start = process.hrtime.bigint()
  if (typeof op === 'object' && op.batch) {
    await op.batch(ops)
    return ops / (Number(process.hrtime.bigint() - start) / 1e9)
  }
  for (let i = 0; i < ops; i++) {
    sink = op()
    if (sink && typeof sink.then === 'function') sink = await sink
  }
  const ns = Number(process.hrtime.bigint() - start)
  return ops / (ns / 1e9)
}

async function main () {
  const [name, opsArg, repeatsArg] = process.argv.slice(2)
  const factory = WORKLOADS[name]
  const ops = Number(opsArg)
  const repeats = Number(repeatsArg)
  if (!factory || !(ops > 0) || !(repeats > 0)) {
    console.error(`usage: node bench.js <${Object.keys(WORKLOADS).join('|')}> <ops> <repeats>`)
    process.exit(2)
  }
  const op = await factory()
  await run(op, ops) // warm-up
  const opsPerSec = []
  for (let r = 0; r < repeats; r++) opsPerSec.push(await run(op, ops))
  console.log(JSON.stringify({ workload: name, ops_per_sec: opsPerSec }))
}

main().then(() => process.exit(0), (err) => {
  console.error(err)
  process.exit(1)
})
