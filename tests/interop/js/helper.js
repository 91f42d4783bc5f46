// Long-lived helper for the interop tests: reads one JSON request per line on stdin and
// answers one JSON line on stdout. A request runs one function over many argument lists:
//   {"id": 1, "fn": "crypto.data", "calls": [[<arg>, ...], ...]}
//   -> {"id": 1, "results": [{"ok": <value>} | {"err": "<message>"}, ...]}
// Bytes travel as {"$b": "<hex>"}; NaN, the infinities and -0 as {"$f": "nan"|"inf"|"-inf"|"-0"}.
'use strict'

const fs = require('fs')
const path = require('path')
const readline = require('readline')
const c = require('compact-encoding')
const flat = require('flat-tree')
const crypto = require('hypercore-crypto')
const Hypercore = require('hypercore')
const caps = require('hypercore/lib/caps')
const Verifier = require('hypercore/lib/verifier')
const messages = require('hypercore/lib/messages')

function fromWire (v) {
  if (Array.isArray(v)) return v.map(fromWire)
  if (v !== null && typeof v === 'object') {
    if (typeof v.$b === 'string') return Buffer.from(v.$b, 'hex')
    if (typeof v.$f === 'string') {
      return { nan: NaN, inf: Infinity, '-inf': -Infinity, '-0': -0 }[v.$f]
    }
    const o = {}
    for (const k of Object.keys(v)) o[k] = fromWire(v[k])
    return o
  }
  return v
}

function toWire (v) {
  if (v === undefined || v === null) return null
  if (v instanceof Uint8Array) {
    return { $b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') }
  }
  if (ArrayBuffer.isView(v)) return Array.from(v)
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { $f: 'nan' }
    if (v === Infinity) return { $f: 'inf' }
    if (v === -Infinity) return { $f: '-inf' }
    if (Object.is(v, -0)) return { $f: '-0' }
    return v
  }
  if (Array.isArray(v)) return v.map(toWire)
  if (typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v)) o[k] = toWire(v[k])
    return o
  }
  return v
}

const CODEC_NAMES = {
  bool: c.bool,
  optional_buffer: c.optionalBuffer,
  ipv4_address: c.ipv4Address,
  ipv6_address: c.ipv6Address,
  ip_address: c.ipAddress,
  'hypercore.manifest': messages.manifest,
  'hypercore.data': messages.wire.data
}

function codec (spec) {
  if (typeof spec === 'string') {
    const enc = CODEC_NAMES[spec] || c[spec]
    if (!enc) throw new Error('unknown codec ' + spec)
    return enc
  }
  if (spec.array !== undefined) return c.array(codec(spec.array))
  if (spec.frame !== undefined) return c.frame(codec(spec.frame))
  if (spec.fixed !== undefined) return c.fixed(spec.fixed)
  throw new Error('bad codec spec ' + JSON.stringify(spec))
}

// Runs the flat-tree iterator through a list of [method, ...args] steps and reports the
// return value and the cursor after each.
function iterate (start, steps) {
  const ite = flat.iterator(start)
  const out = []
  for (const [name, ...args] of steps) {
    const ret = ite[name](...args)
    out.push([ret, ite.index, ite.offset, ite.factor])
  }
  return out
}

const FUNCTIONS = {
  encode: (spec, value) =>
    c.encode(codec(spec), spec === 'uint32array' ? Uint32Array.from(value) : value),
  decode: (spec, buf) => c.decode(codec(spec), buf),
  // decode, requiring that the whole buffer is used
  decodeAll: (spec, buf) => {
    const state = c.state(0, buf.byteLength, buf)
    const value = codec(spec).decode(state)
    if (state.start !== state.end) throw new Error('trailing bytes')
    return value
  },
  'flat.iterate': iterate,
  'caps.treeSignable': caps.treeSignable,
  'caps.treeSignableCompat': caps.treeSignableCompat,
  'caps.replicate': caps.replicate,
  'caps.constants': () => ({
    MANIFEST: caps.MANIFEST,
    DEFAULT_NAMESPACE: caps.DEFAULT_NAMESPACE,
    DEFAULT_ENCRYPTION: caps.DEFAULT_ENCRYPTION
  }),
  'verifier.manifestHash': (m) => Verifier.manifestHash(m),
  'verifier.defaultSignerManifest': (pk) => Verifier.defaultSignerManifest(pk),
  'verifier.createManifest': (m) => Verifier.createManifest(m),
  'Hypercore.key': (m, opts) => Hypercore.key(m, opts || {}),
  'Hypercore.discoveryKey': (k) => Hypercore.discoveryKey(k)
}

for (const name of Object.keys(flat)) {
  if (typeof flat[name] === 'function') FUNCTIONS['flat.' + name] = flat[name]
}
for (const name of Object.keys(crypto)) {
  if (typeof crypto[name] === 'function') FUNCTIONS['crypto.' + name] = crypto[name]
}

// More functions live in fns/*.js, one module per area, each exporting { name: fn }.
// A function may be async; calls run one after another.
const FNS_DIR = path.join(__dirname, 'fns')
if (fs.existsSync(FNS_DIR)) {
  for (const file of fs.readdirSync(FNS_DIR).sort()) {
    if (!file.endsWith('.js')) continue
    const mod = require(path.join(FNS_DIR, file))
    for (const name of Object.keys(mod)) {
      if (FUNCTIONS[name]) throw new Error('duplicate helper function ' + name)
      FUNCTIONS[name] = mod[name]
    }
  }
}

async function run (req) {
  const fn = FUNCTIONS[req.fn]
  if (!fn) return { id: req.id, error: 'unknown function ' + req.fn }
  const results = []
  for (const args of req.calls) {
    try {
      results.push({ ok: toWire(await fn(...fromWire(args))) })
    } catch (err) {
      results.push({ err: String(err && err.message) })
    }
  }
  return { id: req.id, results }
}

// Requests are answered in order, one at a time.
let queue = Promise.resolve()
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => {
  if (!line.trim()) return
  queue = queue.then(async () => {
    let out
    try {
      out = await run(JSON.parse(line))
    } catch (err) {
      out = { id: null, error: String(err && err.stack) }
    }
    process.stdout.write(JSON.stringify(out) + '\n')
  })
})
rl.on('close', () => {
  queue.then(() => process.exit(0))
})
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
