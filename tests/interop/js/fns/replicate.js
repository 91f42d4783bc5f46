// Hypercore replication peers in JS for the replication interop tests: servers that replicate
// a core to every TCP connection on 127.0.0.1 (over a secret-stream), and clients that connect
// to a Python server and download. Cores live in temporary directories.
'use strict'

const net = require('net')
const os = require('os')
const path = require('path')
const fs = require('fs')
const Hypercore = require('hypercore')
const Corestore = require('corestore')
const crypto = require('hypercore-crypto')
const NoiseSecretStream = require('@hyperswarm/secret-stream')

const peers = new Map()
let nextId = 1

function tmpdir () {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hc-repl-'))
}

function options (opts = {}) {
  const o = {}
  if (opts.seed) o.keyPair = crypto.keyPair(opts.seed)
  if (opts.encryptionKey) o.encryptionKey = opts.encryptionKey
  return o
}

async function openCore (key, opts) {
  const dir = tmpdir()
  const core = key ? new Hypercore(dir, key, options(opts)) : new Hypercore(dir, options(opts))
  await core.ready()
  return { core, dir }
}

function replicateOn (core, socket, isInitiator, sockets) {
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
  socket.on('error', () => {})
  const stream = new NoiseSecretStream(isInitiator, socket)
  stream.on('error', () => {})
  core.replicate(stream)
  return stream
}

// What is stored now, without waiting (a block may go away under us while the core follows
// a new fork, and a get that waits would then wait for a download).
async function blocksOf (core, raw) {
  const out = []
  for (let i = 0; i < core.length; i++) {
    try {
      out.push(await core.get(i, { wait: false, raw: !!raw }))
    } catch {
      out.push(null)
    }
  }
  return out
}

function waitFor (fn, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { clearInterval(i); reject(new Error('timed out')) }, ms)
    const i = setInterval(async () => {
      try {
        if (await fn()) { clearTimeout(t); clearInterval(i); resolve() }
      } catch (err) { clearTimeout(t); clearInterval(i); reject(err) }
    }, 10)
  })
}

function storeOn (store, socket, isInitiator, sockets) {
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
  socket.on('error', () => {})
  const stream = new NoiseSecretStream(isInitiator, socket)
  stream.on('error', () => {})
  store.replicate(stream)
}

module.exports = {
  // A corestore with named cores (closed again after writing, so that a remote's request
  // has to open them), served with store.replicate to every connection.
  'replicate.storeServe': async (cores) => {
    const dir = tmpdir()
    const store = new Corestore(dir)
    await store.ready()
    const keys = []
    for (const { name, blocks } of cores) {
      const core = store.get({ name })
      await core.ready()
      if (blocks.length) await core.append(blocks)
      keys.push(core.key)
      await core.close()
    }
    const sockets = new Set()
    const server = net.createServer((socket) => storeOn(store, socket, false, sockets))
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const id = nextId++
    peers.set(id, { store, dir, server, sockets })
    return { id, port: server.address().port, keys }
  },
  // A corestore that connects to a Python store and downloads the cores of `keys`.
  'replicate.storeRead': async (port, keys, lengths, ms) => {
    const dir = tmpdir()
    const store = new Corestore(dir)
    await store.ready()
    const sockets = new Set()
    storeOn(store, net.connect(port, '127.0.0.1'), true, sockets)
    const out = []
    for (let k = 0; k < keys.length; k++) {
      const core = store.get({ key: keys[k] })
      await core.ready()
      await waitFor(async () => {
        if (core.length < lengths[k]) await core.update({ wait: true })
        return core.length >= lengths[k]
      }, ms)
      await core.download({ start: 0, end: lengths[k] }).done()
      out.push({ key: core.key, length: core.length, blocks: await blocksOf(core, false) })
    }
    for (const s of sockets) s.destroy()
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
    return out
  },
  // A core (new writer, or a reader of `key`) served to every connection.
  'replicate.serve': async (key, opts, blocks) => {
    const { core, dir } = await openCore(key, opts)
    if (blocks && blocks.length) await core.append(blocks)
    const sockets = new Set()
    const server = net.createServer((socket) => replicateOn(core, socket, false, sockets))
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const id = nextId++
    peers.set(id, { core, dir, server, sockets, downloads: 0 })
    core.on('download', () => { peers.get(id).downloads++ })
    return { id, port: server.address().port, key: core.key, discoveryKey: core.discoveryKey }
  },
  // Connect a JS core (writer or reader of `key`) to a Python server.
  'replicate.connect': async (port, key, opts) => {
    const { core, dir } = await openCore(key, opts)
    const sockets = new Set()
    const socket = net.connect(port, '127.0.0.1')
    replicateOn(core, socket, true, sockets)
    const id = nextId++
    peers.set(id, { core, dir, server: null, sockets, downloads: 0 })
    core.on('download', () => { peers.get(id).downloads++ })
    return { id, key: core.key }
  },
  // Connect an existing JS core to another server (the relay case).
  'replicate.connectExisting': async (id, port) => {
    const p = peers.get(id)
    const socket = net.connect(port, '127.0.0.1')
    replicateOn(p.core, socket, true, p.sockets)
    return true
  },
  'replicate.append': async (id, blocks) => {
    const p = peers.get(id)
    await p.core.append(blocks)
    return p.core.length
  },
  'replicate.truncate': async (id, length) => {
    const p = peers.get(id)
    await p.core.truncate(length)
    return { length: p.core.length, fork: p.core.fork }
  },
  // Wait until the core has `length` blocks, all downloaded; return them.
  'replicate.download': async (id, length, ms, raw) => {
    const p = peers.get(id)
    await waitFor(async () => {
      if (p.core.length < length) {
        await p.core.update({ wait: true })
        return false
      }
      return true
    }, ms)
    const d = p.core.download({ start: 0, end: length })
    await Promise.race([d.done(), new Promise((resolve, reject) => setTimeout(() => reject(new Error('download timed out')), ms))])
    return { length: p.core.length, fork: p.core.fork, blocks: await blocksOf(p.core, raw), treeHash: await p.core.treeHash() }
  },
  'replicate.get': async (id, index, ms) => {
    const p = peers.get(id)
    return p.core.get(index, { timeout: ms })
  },
  'replicate.info': async (id, raw) => {
    const p = peers.get(id)
    return { length: p.core.length, fork: p.core.fork, contiguousLength: p.core.contiguousLength, blocks: await blocksOf(p.core, raw), downloads: p.downloads, peers: p.core.peers.length }
  },
  // Register json extensions on a core: every message is logged; a message on the first
  // one is answered (to its sender) on the second, the second again, then the first.
  'replicate.extensions': async (id, names) => {
    const p = peers.get(id)
    p.extLog = []
    p.exts = {}
    for (const name of names) {
      p.exts[name] = p.core.registerExtension(name, {
        encoding: 'json',
        onmessage (message, peer) {
          p.extLog.push([name, message])
          if (name !== names[0]) return
          p.exts[names[1]].send({ echo: message }, peer)
          p.exts[names[1]].send({ echo2: message }, peer)
          p.exts[names[0]].send({ back: message }, peer)
        }
      })
    }
    return true
  },
  // Seek to each offset (the JS core may have to ask its peers); also how many blocks it has.
  'replicate.seek': async (id, offsets, ms) => {
    const p = peers.get(id)
    await waitFor(async () => { await p.core.update({ wait: true }); return p.core.length > 0 }, ms)
    const out = []
    for (const o of offsets) out.push(await p.core.seek(o, { timeout: ms }))
    return { answers: out, downloads: p.downloads }
  },
  // A new reader of `key` that starts seeking to `offset` before it connects to a Python
  // server (so it knows no length yet); its answer, length and downloads.
  'replicate.seekFresh': async (port, key, opts, offset, ms) => {
    const { core, dir } = await openCore(key, opts)
    let downloads = 0
    core.on('download', () => { downloads++ })
    const seeking = core.seek(offset, { timeout: ms })
    const sockets = new Set()
    replicateOn(core, net.connect(port, '127.0.0.1'), true, sockets)
    try {
      const answer = await seeking
      return { answer, length: core.length, downloads }
    } finally {
      for (const s of sockets) s.destroy()
      await core.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  },
  'replicate.extensionLog': async (id) => peers.get(id).extLog,
  'replicate.extensionBroadcast': async (id, name, message) => {
    const p = peers.get(id)
    await waitFor(() => p.core.peers.length > 0, 10000)
    p.exts[name].broadcast(message)
    return true
  },
  // Stop serving and disconnect (the core stays open and its data stays).
  'replicate.disconnect': async (id) => {
    const p = peers.get(id)
    for (const s of p.sockets) s.destroy()
    if (p.server) await new Promise((resolve) => p.server.close(resolve))
    p.server = null
    return true
  },
  'replicate.close': async (id) => {
    const p = peers.get(id)
    if (!p) return false
    for (const s of p.sockets) s.destroy()
    if (p.server) await new Promise((resolve) => p.server.close(resolve))
    if (p.core) await p.core.close()
    if (p.store) await p.store.close()
    fs.rmSync(p.dir, { recursive: true, force: true })
    peers.delete(id)
    return true
  },
  // Serve an existing core again on a new port.
  'replicate.reserve': async (id) => {
    const p = peers.get(id)
    p.server = net.createServer((socket) => replicateOn(p.core, socket, false, p.sockets))
    await new Promise((resolve) => p.server.listen(0, '127.0.0.1', resolve))
    return { port: p.server.address().port }
  }
}
