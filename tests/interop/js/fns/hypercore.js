// Whole-core operations on a directory, for the Hypercore interop tests. Every function opens
// the core, does its work and closes it again, so Python can open the directory afterwards.
'use strict'

const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')

function options (opts = {}) {
  const o = {}
  if (opts.seed) o.keyPair = crypto.keyPair(opts.seed)
  if (opts.encryptionKey) o.encryptionKey = opts.encryptionKey
  return o
}

async function describe (core, withBlocks) {
  const out = {
    key: core.key,
    discoveryKey: core.discoveryKey,
    length: core.length,
    byteLength: core.byteLength,
    fork: core.fork,
    writable: core.writable,
    contiguousLength: core.contiguousLength,
    treeHash: await core.treeHash()
  }
  if (withBlocks) {
    out.blocks = []
    for (let i = 0; i < core.length; i++) {
      out.blocks.push((await core.has(i)) ? await core.get(i) : null)
    }
  }
  return out
}

async function withCore (dir, key, opts, fn) {
  const core = key ? new Hypercore(dir, key, options(opts)) : new Hypercore(dir, options(opts))
  await core.ready()
  try {
    return await fn(core)
  } finally {
    await core.close()
  }
}

module.exports = {
  // Create (or open) the core, append blocks, optionally truncate and set user data.
  'hypercore.write': (dir, blocks, opts = {}) =>
    withCore(dir, opts.key, opts, async (core) => {
      if (blocks.length) await core.append(blocks)
      if (typeof opts.truncate === 'number') await core.truncate(opts.truncate)
      for (const [k, v] of Object.entries(opts.userData || {})) await core.setUserData(k, v)
      return describe(core, false)
    }),
  'hypercore.read': (dir, opts = {}) =>
    withCore(dir, opts.key, opts, async (core) => {
      const out = await describe(core, true)
      out.userData = {}
      for (const k of opts.userDataKeys || []) out.userData[k] = await core.getUserData(k)
      return out
    }),
  'hypercore.truncate': (dir, length, opts = {}) =>
    withCore(dir, opts.key, opts, async (core) => {
      await core.truncate(length)
      return describe(core, false)
    }),
  'hypercore.openError': async (dir, opts = {}) => {
    try {
      await withCore(dir, opts.key, opts, async () => null)
      return null
    } catch (err) {
      return String(err.code || err.message)
    }
  }
}
