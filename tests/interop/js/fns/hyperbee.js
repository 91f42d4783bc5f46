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

const os = require('os')
const path = require('path')
const fs = require('fs')
const Hypercore = require('hypercore')
const Hyperbee = require('hyperbee')

// Apply ops to a new bee (binary keys and values): ['put', k, v], ['del', k], or
// ['batch', [ops...]]. Returns every block, and what the bee answers: get of `probe` keys,
// and the full ordered listing.
module.exports['bee.build'] = async (ops, probe) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bee-'))
  const core = new Hypercore(dir)
  const bee = new Hyperbee(core)
  await bee.ready()
  for (const op of ops) {
    if (op[0] === 'put') await bee.put(op[1], op[2])
    else if (op[0] === 'del') await bee.del(op[1])
    else {
      const b = bee.batch()
      for (const o of op[1]) {
        if (o[0] === 'put') await b.put(o[1], o[2])
        else await b.del(o[1])
      }
      await b.flush()
    }
  }
  const blocks = []
  for (let i = 0; i < core.length; i++) blocks.push(await core.get(i))
  const gets = []
  for (const k of probe) {
    const e = await bee.get(k)
    gets.push(e && { seq: e.seq, key: e.key, value: e.value })
  }
  const all = []
  for await (const e of bee.createReadStream()) all.push({ seq: e.seq, key: e.key, value: e.value })
  await bee.close()
  fs.rmSync(dir, { recursive: true, force: true })
  return { blocks, gets, all }
}
