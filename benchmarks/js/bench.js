// Benchmark workloads of the JS reference, the twins of benchmarks/workloads.py.
//   node bench.js <workload> <ops> <repeats>
//   -> {"workload": "<workload>", "ops_per_sec": [r1, r2, ...]}
// One warm-up run, then <repeats> timed runs of <ops> operations each.
'use strict'

const c = require('compact-encoding')
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
  'ed25519-verify' () {
    const { publicKey, secretKey } = crypto.keyPair(SEED)
    const signature = crypto.sign(MESSAGE, secretKey)
    if (!crypto.verify(MESSAGE, signature, publicKey)) throw new Error('bad signature')
    return () => crypto.verify(MESSAGE, signature, publicKey)
  }
}

let sink = null // holds the last result so the work cannot be optimised away

function run (op, ops) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < ops; i++) sink = op()
  const ns = Number(process.hrtime.bigint() - start)
  return ops / (ns / 1e9)
}

function main () {
  const [name, opsArg, repeatsArg] = process.argv.slice(2)
  const factory = WORKLOADS[name]
  const ops = Number(opsArg)
  const repeats = Number(repeatsArg)
  if (!factory || !(ops > 0) || !(repeats > 0)) {
    console.error(`usage: node bench.js <${Object.keys(WORKLOADS).join('|')}> <ops> <repeats>`)
    process.exit(2)
  }
  const op = factory()
  run(op, ops) // warm-up
  const opsPerSec = []
  for (let r = 0; r < repeats; r++) opsPerSec.push(run(op, ops))
  console.log(JSON.stringify({ workload: name, ops_per_sec: opsPerSec }))
}

main()
