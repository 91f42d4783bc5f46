// Corestore 7 stores, for tests/interop/test_corestore_interop.py. Every function that opens a
// directory closes the store before returning, so Python can open it afterwards.
//
// A core spec is { ns: ['a', 'b'], name: 'x', blocks: [...], userData: [[k, v]],
// userDataKeys: [...], encryptionKey: <buf>, append: [...] }: the core `name` in
// store.namespace('a').namespace('b'); a key spec is { key: <buf>, blocks: ... } instead.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const Corestore = require('corestore')

function view (store, ns) {
  let v = store
  for (const n of ns || []) v = v.namespace(n)
  return v
}

function getCore (store, spec) {
  const opts = {}
  if (spec.encryptionKey) opts.encryptionKey = spec.encryptionKey
  if (spec.key) return store.get({ ...opts, key: spec.key })
  return view(store, spec.ns).get({ ...opts, name: spec.name })
}

async function describe (core, spec) {
  const out = {
    key: core.key,
    discoveryKey: core.discoveryKey,
    publicKey: core.keyPair ? core.keyPair.publicKey : null,
    length: core.length,
    byteLength: core.byteLength,
    fork: core.fork,
    writable: core.writable,
    treeHash: await core.treeHash(),
    blocks: [],
    userData: {}
  }
  for (let i = 0; i < core.length; i++) {
    out.blocks.push((await core.has(i)) ? await core.get(i) : null)
  }
  for (const k of spec.userDataKeys || []) out.userData[k] = await core.getUserData(k)
  return out
}

async function listAll (store, ns) {
  const out = []
  for await (const dkey of store.list(ns || undefined)) out.push(dkey)
  return out
}

async function withStore (dir, primaryKey, fn) {
  const opts = primaryKey ? { primaryKey, unsafe: true } : {}
  const store = new Corestore(dir, opts)
  await store.ready()
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

module.exports = {
  // For each [namespaces, name]: the key, discovery key and public key of store.get({ name })
  // in a fresh store with this primary key, and the namespace bytes of the view.
  'corestore.keys': async (primaryKey, specs) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-keys-'))
    try {
      return await withStore(dir, primaryKey, async (store) => {
        const out = []
        for (const [ns, name] of specs) {
          const v = view(store, ns)
          const core = v.get({ name })
          await core.ready()
          const kp = await v.createKeyPair(name)
          out.push({
            key: core.key,
            discoveryKey: core.discoveryKey,
            publicKey: core.keyPair.publicKey,
            createdPublicKey: kp.publicKey,
            ns: v.ns
          })
        }
        return out
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  },

  // Create the cores of `specs` (appending `blocks`, setting `userData`), then describe them,
  // the primary key and store.list() (all, and of each namespace in `listNamespaces`).
  'corestore.write': (dir, primaryKey, specs, listNamespaces) =>
    withStore(dir, primaryKey, async (store) => {
      const cores = []
      for (const spec of specs) {
        const core = getCore(store, spec)
        await core.ready()
        if (spec.blocks && spec.blocks.length) await core.append(spec.blocks)
        for (const [k, v] of spec.userData || []) await core.setUserData(k, v)
        cores.push(await describe(core, spec))
      }
      const lists = []
      for (const ns of listNamespaces || []) lists.push(await listAll(store, ns))
      return { primaryKey: store.primaryKey, cores, list: await listAll(store), lists }
    }),

  // Open each core of `specs` in an existing store (appending `append` first), describe it.
  'corestore.read': (dir, specs, listNamespaces) =>
    withStore(dir, null, async (store) => {
      const cores = []
      for (const spec of specs) {
        const core = getCore(store, spec)
        await core.ready()
        if (spec.append && spec.append.length) await core.append(spec.append)
        cores.push(await describe(core, spec))
      }
      const lists = []
      for (const ns of listNamespaces || []) lists.push(await listAll(store, ns))
      return { primaryKey: store.primaryKey, cores, list: await listAll(store), lists }
    }),

  // The error (code or message) of opening the store with this primary key, or null.
  'corestore.openError': async (dir, primaryKey) => {
    const store = new Corestore(dir, primaryKey ? { primaryKey, unsafe: true } : {})
    try {
      await store.ready()
      return null
    } catch (err) {
      return String(err.code || err.message)
    } finally {
      await store.close().catch(() => {})
      await store.storage.close() // a store that failed to open keeps its storage (and lock)
    }
  }
}
