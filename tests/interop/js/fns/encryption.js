// Block encryption (hypercore/lib/default-encryption.js) for tests/interop/test_encryption_interop.py.
'use strict'

const Hypercore = require('hypercore')
const DefaultEncryption = require('hypercore/lib/default-encryption')

// A stand-in for the core argument the provider methods read (only .key and .compat).
function coreLike (key, compat) {
  return { key, compat: !!compat }
}

function provider (coreKey, encKey, opts) {
  opts = opts || {}
  return new DefaultEncryption(encKey, coreKey, { compat: !!opts.compat, block: !!opts.block })
}

function withPadding (block) {
  const buf = Buffer.alloc(DefaultEncryption.PADDING + block.byteLength)
  buf.set(block, DefaultEncryption.PADDING)
  return buf
}

module.exports = {
  'encryption.keys': (coreKey, encKey, compat) => {
    const keys = DefaultEncryption.deriveKeys(encKey, coreKey, { compat: !!compat })
    return {
      block: keys.block,
      blinding: keys.blinding,
      static: Hypercore.blockEncryptionKey(coreKey, encKey)
    }
  },

  // The stored form of a block: the provider encrypts in place after the reserved padding.
  'encryption.encrypt': (coreKey, encKey, index, block, fork, opts) => {
    const e = provider(coreKey, encKey, opts)
    const buf = withPadding(block)
    e.encrypt(index, buf, fork, coreLike(coreKey, opts && opts.compat))
    return buf
  },

  // The plaintext of a stored block (the provider leaves the padding in place).
  'encryption.decrypt': (coreKey, encKey, index, stored, opts) => {
    const e = provider(coreKey, encKey, opts)
    const buf = Buffer.from(stored)
    e.decrypt(index, buf, coreLike(coreKey, opts && opts.compat))
    return buf.subarray(e.padding())
  },

  // A real encrypted core on disk: appends `first`, truncates to `truncateTo` (bumping the
  // fork), appends `second`, and reports what it stored and how it reads back.
  'encryption.core': async (dir, encKey, first, truncateTo, second, opts) => {
    opts = opts || {}
    const coreOpts = { compat: !!opts.compat }
    if (opts.style === 'encryptionKey') coreOpts.encryptionKey = encKey
    else if (opts.style === 'buffer') coreOpts.encryption = encKey
    else coreOpts.encryption = { key: encKey }
    if (opts.isBlockKey) {
      coreOpts.isBlockKey = true
      coreOpts.encryptionKey = encKey
      delete coreOpts.encryption
    }

    const core = new Hypercore(dir, coreOpts)
    await core.ready()
    const forks = []
    await core.append(first)
    for (let i = 0; i < first.length; i++) forks.push(core.fork)
    if (truncateTo !== null) {
      await core.truncate(truncateTo)
      forks.length = truncateTo
    }
    await core.append(second)
    while (forks.length < core.length) forks.push(core.fork)

    const raw = []
    const plain = []
    for (let i = 0; i < core.length; i++) {
      raw.push(await core.get(i, { raw: true }))
      plain.push(await core.get(i))
    }
    const out = {
      key: core.key,
      compat: core.core.compat,
      fork: core.fork,
      padding: core.padding,
      length: core.length,
      byteLength: core.byteLength,
      treeHash: await core.treeHash(),
      forks,
      raw,
      plain
    }
    await core.close()
    return out
  }
}
