// The small data structures under dht-rpc and hyperdht, run over scripted operations so the
// Python ports can be compared step by step: kademlia-routing-table, time-ordered-set,
// nat-sampler, xache and record-cache. Timers are not used: a 'tick' operation calls the
// cache's own interval handler directly.
'use strict'

const RoutingTable = require('kademlia-routing-table')
const TOS = require('time-ordered-set')
const NatSampler = require('nat-sampler')
const Xache = require('xache')
const RecordCache = require('record-cache')

const hex = (b) => Buffer.from(b).toString('hex')
const ids = (nodes) => nodes.map((n) => n.id)

module.exports = {
  // ops: ['add', id] | ['remove', id] | ['get', id] | ['closest', target, k|null]
  'dhtTable.routing': (tableId, k, ops) => {
    const table = new RoutingTable(tableId, { k })
    const full = []
    table.on('row', (row) => {
      row.on('full', (node) => full.push([row.index, node.id]))
    })
    const out = []
    for (const [op, id, n] of ops) {
      if (op === 'add') out.push(table.add({ id }))
      else if (op === 'remove') out.push(table.remove(id))
      else if (op === 'get') {
        const node = table.get(id)
        out.push(node === null ? null : node.id)
      } else if (op === 'closest') out.push(ids(table.closest(id, n === null ? undefined : n)))
      else throw new Error('unknown op ' + op)
    }
    const rows = []
    for (const row of table.rows) if (row) rows.push([row.index, ids(row.nodes)])
    return { out, full, size: table.size, all: ids(table.toArray()), rows }
  },

  // samples: [[host, port], ...]; the sampler's state after each add.
  'dhtTable.nat': (samples) => {
    const s = new NatSampler()
    return samples.map(([host, port]) => {
      const hits = s.add(host, port)
      return [hits, s.host, s.port, s.size]
    })
  },

  // ops: ['add', name] | ['remove', name] | ['list', limit|null, reverse]; names are objects.
  'dhtTable.tos': (ops) => {
    const set = new TOS()
    const objs = new Map()
    const obj = (name) => {
      if (!objs.has(name)) objs.set(name, { name })
      return objs.get(name)
    }
    const out = []
    for (const [op, a, b] of ops) {
      if (op === 'add') set.add(obj(a))
      else if (op === 'remove') set.remove(obj(a))
      else if (op === 'list') {
        const opts = { reverse: b }
        if (a !== null) opts.limit = a
        out.push(set.toArray(opts).map((o) => o.name))
        continue
      } else throw new Error('unknown op ' + op)
      out.push([
        set.length,
        set.oldest ? set.oldest.name : null,
        set.latest ? set.latest.name : null,
        set.has(obj(a))
      ])
    }
    return out
  },

  // ops: ['set', k, v] | ['get', k] | ['delete', k] | ['retain', k, v] | ['has', k] | ['tick']
  'dhtTable.xache': (maxSize, ops) => {
    const cache = new Xache({ maxSize, maxAge: 0 })
    const out = []
    for (const [op, k, v] of ops) {
      let r = null
      if (op === 'set') cache.set(k, v)
      else if (op === 'get') r = cache.get(k)
      else if (op === 'delete') r = cache.delete(k)
      else if (op === 'retain') cache.retain(k, v)
      else if (op === 'has') r = cache.has(k)
      else if (op === 'tick') cache._gcAuto()
      else throw new Error('unknown op ' + op)
      out.push([r, cache.size, [...cache]])
    }
    return out
  },

  // ops: ['add', target, key, value] | ['remove', target, key] | ['tick'] | ['get', target, n]
  // ('get' answers with the records sorted, as JS picks them at random).
  'dhtTable.recordCache': (maxSize, ops) => {
    const cache = new RecordCache({ maxSize, maxAge: 0 })
    const out = []
    for (const [op, target, key, value] of ops) {
      let r = null
      if (op === 'add') cache.add(hex(target), key, value)
      else if (op === 'remove') cache.remove(hex(target), key)
      else if (op === 'tick') cache._gcAuto()
      else if (op === 'get') {
        r = cache.get(hex(target), key).map(hex).sort()
      } else throw new Error('unknown op ' + op)
      out.push([r, cache.size])
    }
    return out
  }
}
