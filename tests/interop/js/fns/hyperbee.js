// The block codecs of hyperbee/lib/messages.js, for tests/interop/test_hyperbee_interop.py.
// Messages travel as plain objects: byte fields as Buffers, absent ones as null.
'use strict'

const { Header, Node, YoloIndex } = require('hyperbee/lib/messages')

const codecs = { header: Header, node: Node, yolo: YoloIndex }

module.exports = {
  'bee.encode': (kind, msg) => codecs[kind].encode(msg),
  'bee.decode': (kind, buf) => {
    try {
      return { value: codecs[kind].decode(buf) }
    } catch (err) {
      return { error: String(err.message || err) }
    }
  }
}

const Hypercore = require('hypercore')
const Hyperbee = require('hyperbee')

// A bee in `dir` (created if new), with opts {keyEncoding, valueEncoding, sep, metadata}.
// Ops: ['put', sub, key, value], ['del', sub, key], ['batch', sub, [op, ...]] (one batch of that sub), ['cas-put', sub, key,
// value, ifValueIs] (a put that only replaces a key whose current value deep-equals
// ifValueIs); sub = null or a list of sub names (nested). Queries: ['get', sub, key],
// ['range', sub, {gt, gte, lt, lte, reverse, limit}], ['history', {gt, gte, lt, lte, reverse,
// limit}], ['diff', sub, version, range], ['seq', seq], ['peek', sub, range],
// ['header'], ['version'].
async function openBee (dir, opts) {
  const core = new Hypercore(dir)
  const bee = new Hyperbee(core, opts)
  await bee.ready()
  return bee
}

function subOf (bee, names) {
  let b = bee
  for (const n of names || []) b = b.sub(n)
  return b
}

function entry (e) {
  return e && { seq: e.seq, key: e.key, value: e.value }
}

async function applyOp (target, op) {
  if (op[0] === 'put') await target.put(op[2], op[3])
  else if (op[0] === 'del') await target.del(op[2])
  else if (op[0] === 'cas-put') {
    const want = JSON.stringify(op[4])
    await target.put(op[2], op[3], { cas: (prev) => JSON.stringify(prev.value) === want })
  }
}

async function runQueries (bee, queries) {
  const out = []
  for (const q of queries) {
    if (q[0] === 'get') out.push(entry(await subOf(bee, q[1]).get(q[2])))
    else if (q[0] === 'range') {
      const all = []
      for await (const e of subOf(bee, q[1]).createReadStream(q[2])) all.push(entry(e))
      out.push(all)
    } else if (q[0] === 'peek') out.push(entry(await subOf(bee, q[1]).peek(q[2])))
    else if (q[0] === 'history') {
      const all = []
      for await (const e of bee.createHistoryStream(q[1])) all.push({ type: e.type, ...entry(e) })
      out.push(all)
    } else if (q[0] === 'diff') {
      const all = []
      for await (const d of subOf(bee, q[1]).createDiffStream(q[2], q[3])) {
        all.push({ left: entry(d.left), right: entry(d.right) })
      }
      out.push(all)
    } else if (q[0] === 'seq') {
      const e = await bee.getBySeq(q[1])
      out.push({ key: e.key, value: e.value })
    } else if (q[0] === 'header') {
      const h = await bee.getHeader()
      out.push(h && { protocol: h.protocol, metadata: h.metadata })
    } else if (q[0] === 'version') out.push(bee.version)
  }
  return out
}

module.exports['bee.run'] = async (dir, opts, ops, queries) => {
  const bee = await openBee(dir, opts)
  await applyOps(bee, ops)
  const blocks = []
  for (let i = 0; i < bee.core.length; i++) blocks.push(await bee.core.get(i))
  const results = await runQueries(bee, queries)
  await bee.close()
  return { blocks, results }
}

module.exports['bee.query'] = async (dir, opts, queries) => {
  const bee = await openBee(dir, opts)
  const results = await runQueries(bee, queries)
  await bee.close()
  return results
}

// Replicated bees: a JS writer served over TCP + secret-stream on 127.0.0.1, and a JS reader
// of a Python writer. Their directories are temporary.
const net = require('net')
const os = require('os')
const path = require('path')
const fs = require('fs')
const NoiseSecretStream = require('@hyperswarm/secret-stream')

const served = new Map()
let nextServed = 1

function tmp () {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'bee-repl-'))
}

function replicateOver (core, socket, isInitiator, sockets) {
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
  socket.on('error', () => {})
  const stream = new NoiseSecretStream(isInitiator, socket)
  stream.on('error', () => {})
  core.replicate(stream)
}

async function applyOps (bee, ops) {
  for (const op of ops) {
    if (op[0] === 'batch') {
      // one batch of one (sub-)bee: ['batch', sub, [op, ...]]
      const b = subOf(bee, op[1]).batch()
      for (const o of op[2]) await applyOp(b, o)
      await b.flush()
    } else await applyOp(subOf(bee, op[1]), op)
  }
}

module.exports['bee.serve'] = async (opts, ops, queries) => {
  const dir = tmp()
  const bee = await openBee(dir, opts)
  await applyOps(bee, ops)
  const results = await runQueries(bee, queries)
  const sockets = new Set()
  const server = net.createServer((socket) => replicateOver(bee.core, socket, false, sockets))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const id = nextServed++
  served.set(id, { bee, dir, server, sockets })
  return { id, port: server.address().port, key: bee.core.key, length: bee.core.length, results }
}

module.exports['bee.apply'] = async (id, ops) => {
  const { bee } = served.get(id)
  await applyOps(bee, ops)
  return bee.core.length
}

module.exports['bee.unserve'] = async (id) => {
  const { bee, dir, server, sockets } = served.get(id)
  served.delete(id)
  for (const s of sockets) s.destroy()
  await new Promise((resolve) => server.close(resolve))
  await bee.close()
  fs.rmSync(dir, { recursive: true, force: true })
}

// A sparse JS reader of a Python bee: connects, waits for `length`, answers `queries`, and
// says how many blocks it stored to answer them.
module.exports['bee.remote'] = async (port, key, opts, length, queries) => {
  const dir = tmp()
  const core = new Hypercore(dir, key)
  const bee = new Hyperbee(core, opts)
  await bee.ready()
  const sockets = new Set()
  replicateOver(core, net.connect(port, '127.0.0.1'), true, sockets)
  const deadline = Date.now() + 20000
  while (core.length < length) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the bee')
    await core.update({ wait: true })
    if (core.length < length) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const results = await runQueries(bee, queries)
  let stored = 0
  for (let i = 0; i < core.length; i++) if (await core.has(i)) stored++
  for (const s of sockets) s.destroy()
  await bee.close()
  fs.rmSync(dir, { recursive: true, force: true })
  return { results, stored }
}
