// Merkle tree and proofs of real hypercore 11 cores, for tests/interop/test_merkle_interop.py.
// Cores live in temporary directories and are kept open between calls, by id.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const c = require('compact-encoding')
const crypto = require('hypercore-crypto')
const Hypercore = require('hypercore')
const { MerkleTree } = require('hypercore/lib/merkle-tree')
const messages = require('hypercore/lib/messages')

const cores = new Map()
let nextId = 1

function nodeOut (n) {
  return n === null ? null : [n.index, n.size, n.hash]
}

async function register (core, dir) {
  await core.ready()
  const id = nextId++
  cores.set(id, { core, dir })
  return id
}

function get (id) {
  const entry = cores.get(id)
  if (!entry) throw new Error('no core ' + id)
  return entry.core
}

// Every stored tree node below `upTo` (a tree index), as [index, size, hash].
async function storedNodes (core, upTo) {
  const out = []
  for (let i = 0; i < upTo; i++) {
    const n = await MerkleTree.get(core.core.state, i)
    if (n) out.push(nodeOut(n))
  }
  return out
}

async function describe (id, upTo) {
  const core = get(id)
  const s = core.core.state
  return {
    length: s.length,
    byteLength: s.byteLength,
    fork: s.fork,
    signature: s.signature,
    roots: s.roots.map(nodeOut),
    treeHash: MerkleTree.hash(s),
    nodes: await storedNodes(core, upTo === undefined ? 2 * s.length : upTo)
  }
}

function tmpdir () {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hypertrio-merkle-'))
}

module.exports = {
  // A writable core from a 32-byte seed; appends each batch of blocks with one append call.
  'merkle.writer': async (seed, batches) => {
    const dir = tmpdir()
    const core = new Hypercore(dir, { keyPair: crypto.keyPair(seed) })
    const id = await register(core, dir)
    for (const batch of batches) await core.append(batch)
    return { id, key: core.key, manifest: core.manifest }
  },

  // A reader of a writer's core (same key and manifest, no secret key).
  'merkle.reader': async (writerId) => {
    const w = get(writerId)
    const dir = tmpdir()
    const core = new Hypercore(dir, w.key, { manifest: w.manifest })
    return register(core, dir)
  },

  'merkle.describe': describe,

  'merkle.append': async (id, blocks) => {
    await get(id).append(blocks)
  },

  'merkle.truncate': async (id, length, fork) => {
    await get(id).truncate(length, fork)
  },

  // The encoded `data` message (request id 1) answering a request, as the replicator builds
  // it: the proof, then the block value for a block request.
  'merkle.proof': async (id, req) => {
    const core = get(id)
    const s = core.core.state
    // the replicator only answers block requests for blocks it has
    if (req.block && !core.core.bitfield.get(req.block.index)) throw new Error('NOT_AVAILABLE')
    // as Peer._handleRequest does: build the proof, flush its reads, settle it
    const rx = s.storage.read()
    let pending
    try {
      pending = await MerkleTree.proof(s, rx, {
        block: req.block || null,
        hash: req.hash || null,
        seek: req.seek || null,
        upgrade: req.upgrade || null
      })
    } catch (err) {
      rx.destroy()
      throw err
    }
    rx.tryFlush()
    const proof = await pending.settle()
    if (proof.block) proof.block.value = await core.get(proof.block.index, { valueEncoding: 'binary' })
    return c.encode(messages.wire.data, { request: 1, ...proof })
  },

  // Core.verify of an encoded `data` message: true/false, or throws with the JS error.
  'merkle.verify': async (id, encoded) => {
    const proof = c.decode(messages.wire.data, encoded)
    return get(id).core.verify(proof)
  },

  // The checks of Core.verify without committing anything: what the proof would add.
  'merkle.check': async (id, encoded) => {
    const core = get(id).core
    const proof = c.decode(messages.wire.data, encoded)
    if (proof.fork !== core.state.fork) return { fork: false }
    const batch = await MerkleTree.verify(core.state, proof)
    if (batch.upgraded && batch.length <= core.state.length) await batch.downgrade()
    if (batch.upgraded) core._verifyBatchUpgrade(batch, proof.manifest)
    const seen = new Set()
    const nodes = []
    for (const n of batch.nodes) {
      if (seen.has(n.index)) continue
      seen.add(n.index)
      nodes.push(nodeOut(n))
    }
    return {
      fork: true,
      nodes,
      head: batch.upgraded
        ? {
            roots: batch.roots.map(nodeOut),
            length: batch.length,
            byteLength: batch.byteLength,
            fork: batch.fork,
            signature: batch.signature
          }
        : null
    }
  },

  // ByteSeeker as Hypercore.seek uses it: [block, offset], or the pending block range.
  'merkle.seek': async (id, bytes, padding) => {
    const seeker = MerkleTree.seek(get(id).core.state, bytes, padding)
    const res = await seeker.update()
    return res ? { found: res } : { start: seeker.start, end: seeker.end }
  },

  'merkle.byteRange': async (id, index) => MerkleTree.byteRange(get(id).core.state, index),

  'merkle.byteOffset': async (id, index) => MerkleTree.byteOffset(get(id).core.state, index),

  'merkle.missingNodes': async (id, index, length) =>
    MerkleTree.missingNodes(get(id).core.state, index, length),

  'merkle.close': async (id) => {
    const entry = cores.get(id)
    if (!entry) return
    cores.delete(id)
    await entry.core.close()
    fs.rmSync(entry.dir, { recursive: true, force: true })
  }
}
