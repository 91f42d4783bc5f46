// Standalone Hypercore stores on disk, for tests/interop/test_storage_interop.py.
'use strict'

const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')

// Cores kept open between calls (to hold a store's lock), by directory.
const held = new Map()

async function userDataOf (core) {
  const out = []
  for await (const { key, value } of core.core.createUserDataStream()) out.push([key, value])
  return out
}

async function describe (core) {
  const blocks = []
  for (let i = 0; i < core.length; i++) {
    blocks.push(await core.get(i, { wait: false }))
  }
  const batch = core.state.createTreeBatch()
  return {
    key: core.key,
    discoveryKey: core.discoveryKey,
    length: core.length,
    byteLength: core.byteLength,
    fork: core.fork,
    contiguousLength: core.contiguousLength,
    writable: core.writable,
    treeHash: await core.treeHash(),
    signatureValid: core.length === 0
      ? null
      : core.core.verifier.verify(batch, core.state.signature),
    blocks,
    userData: await userDataOf(core)
  }
}

module.exports = {
  // new Hypercore(dir, { keyPair }) from a seed, append, set user data, close.
  'storage.writeCore': async (dir, seed, blocks, userData, opts) => {
    opts = opts || {}
    const keyPair = crypto.keyPair(seed)
    const core = new Hypercore(dir, { keyPair, encryptionKey: opts.encryptionKey || undefined })
    await core.ready()
    if (blocks.length) await core.append(blocks)
    for (const [k, v] of userData) await core.setUserData(k, v)
    if (opts.truncate !== undefined && opts.truncate !== null) await core.truncate(opts.truncate)
    const out = await describe(core)
    await core.close()
    return out
  },

  // Open the store's default core (or the core of `key`), describe it, optionally append.
  'storage.readCore': async (dir, key, append) => {
    const core = key ? new Hypercore(dir, key) : new Hypercore(dir)
    await core.ready()
    if (append && append.length) await core.append(append)
    const out = await describe(core)
    await core.close()
    return out
  },

  // Create (or open) the core of `key` without a key pair in an existing store.
  'storage.touchKey': async (dir, key) => {
    const core = new Hypercore(dir, key)
    await core.ready()
    const out = { key: core.key, discoveryKey: core.discoveryKey, length: core.length }
    await core.close()
    return out
  },

  // Open a store and keep it open (holding the CORESTORE lock) until storage.release.
  'storage.hold': async (dir) => {
    const core = new Hypercore(dir)
    await core.ready()
    held.set(dir, core)
    return core.key
  },

  'storage.release': async (dir) => {
    const core = held.get(dir)
    held.delete(dir)
    if (core) await core.close()
    return !!core
  },

  // Try to open a store; the error message if that fails.
  'storage.tryOpen': async (dir) => {
    const core = new Hypercore(dir)
    try {
      await core.ready()
    } catch (err) {
      await core.close().catch(() => {})
      return String(err && err.message)
    }
    await core.close()
    return null
  }
}
