// The Hyperbee benchmark's JS side: the same five phases as benchmarks/hyperbee.py, on a bee
// in a new RocksDB directory. Prints one JSON line: {"<phase>": seconds, ...}.
// Usage: node hyperbee.js DIR SINGLE BATCHED BATCH GETS QUERIES QUERY_SIZE
'use strict'

const crypto = require('crypto')
const Hypercore = require('hypercore')
const Hyperbee = require('hyperbee')

function key (i) {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(i)
  return crypto.createHash('sha256').update(b).digest().subarray(0, 16)
}

function value (i) {
  const b = Buffer.alloc(100)
  b.writeUInt32LE(i)
  return b
}

// The same pseudo-random indexes as the Python side (a 32-bit LCG).
function * indexes (n, bound, seed) {
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    yield x % bound
  }
}

async function main () {
  const [dir, single, batched, batchSize, gets, queries, querySize] = process.argv.slice(2)
  const out = {}
  let t

  const a = new Hyperbee(new Hypercore(dir + '/single'))
  await a.ready()
  t = process.hrtime.bigint()
  for (let i = 0; i < +single; i++) await a.put(key(i), value(i))
  out.single_puts = Number(process.hrtime.bigint() - t) / 1e9
  await a.close()

  const b = new Hyperbee(new Hypercore(dir + '/batched'))
  await b.ready()
  t = process.hrtime.bigint()
  for (let i = 0; i < +batched; i += +batchSize) {
    const batch = b.batch()
    for (let j = i; j < Math.min(i + +batchSize, +batched); j++) await batch.put(key(j), value(j))
    await batch.flush()
  }
  out.batched_puts = Number(process.hrtime.bigint() - t) / 1e9

  t = process.hrtime.bigint()
  for (const i of indexes(+gets, +batched, 1)) {
    const e = await b.get(key(i))
    if (!e || e.value.readUInt32LE(0) !== i) throw new Error('bad get ' + i)
  }
  out.random_gets = Number(process.hrtime.bigint() - t) / 1e9

  t = process.hrtime.bigint()
  let n = 0
  for await (const e of b.createReadStream()) if (e) n++
  if (n !== +batched) throw new Error('scan saw ' + n)
  out.full_scan = Number(process.hrtime.bigint() - t) / 1e9

  t = process.hrtime.bigint()
  for (const i of indexes(+queries, +batched, 2)) {
    let m = 0
    for await (const e of b.createReadStream({ gte: key(i), limit: +querySize })) if (e) m++
    if (m === 0) throw new Error('empty range')
  }
  out.range_queries = Number(process.hrtime.bigint() - t) / 1e9
  await b.close()

  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => { console.error(err); process.exit(1) })
