// NoiseSecretStream peers for tests/interop/test_secret_stream_udx_interop.py.
//
// 'secretStreamUdx.open' binds a udx-native socket on 127.0.0.1. 'secretStreamUdx.talk'
// connects a UDX stream on it to the Python one and runs a NoiseSecretStream over it started
// from the given finished handshake: every unordered message that arrives is recorded and
// answered with 'echo:' + message (by trySend when it starts with 'try', else by send); the
// ordered messages are written once the Python side's ordered stream has ended (so the
// unordered exchange comes first), then the stream is ended and the close awaited.
//
// 'secretStreamIk.listen' / 'secretStreamIk.serverResult' / 'secretStreamIk.client': TCP
// sessions with the Noise IK pattern (opts.pattern = 'IK', opts.remotePublicKey).
'use strict'

const net = require('net')
const UDX = require('udx-native')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const crypto = require('hypercore-crypto')

const peers = new Map()
let nextPeer = 1

function timeout (ms, what) {
  let timer = null
  const promise = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(what + ' timed out')), ms)
  })
  return { promise, cancel: () => clearTimeout(timer) }
}

let ikServer = null
let ikResult = null

module.exports = {
  'secretStreamUdx.open': async () => {
    const udx = new UDX()
    const socket = udx.createSocket()
    socket.bind(0, '127.0.0.1')
    const id = nextPeer++
    peers.set(id, { udx, socket })
    return { id, port: socket.address().port }
  },

  // opts: { localId, remoteId, port, isInitiator, handshake, messages, ms }
  'secretStreamUdx.talk': async (id, opts) => {
    const { udx, socket } = peers.get(id)
    peers.delete(id)
    const raw = udx.createStream(opts.localId)
    raw.on('error', () => {})
    raw.connect(socket, opts.remoteId, opts.port, '127.0.0.1')
    const s = new NoiseSecretStream(opts.isInitiator, raw, { handshake: opts.handshake })
    const rec = {
      error: null,
      unordered: [],
      sendResults: [],
      received: []
    }
    s.on('error', (err) => {
      rec.error = err.message
    })
    s.on('message', (m) => {
      m = Buffer.from(m)
      rec.unordered.push(m)
      const reply = Buffer.concat([Buffer.from('echo:'), m])
      if (m.subarray(0, 3).toString() === 'try') {
        s.trySend(reply)
      } else {
        s.send(reply).then((ok) => rec.sendResults.push(ok))
      }
    })
    s.on('data', (d) => rec.received.push(Buffer.from(d)))
    const ended = new Promise((resolve) => s.on('end', resolve))
    const closed = new Promise((resolve) => s.on('close', resolve))
    const limit = timeout(opts.ms, 'secretStreamUdx.talk')
    try {
      rec.opened = await Promise.race([s.opened, limit.promise])
      rec.handshakeHash = s.handshakeHash
      rec.publicKey = s.publicKey
      rec.remotePublicKey = s.remotePublicKey
      rec.isInitiator = s.isInitiator
      await Promise.race([ended, limit.promise])
      for (const m of opts.messages) s.write(m)
      s.end()
      await Promise.race([closed, limit.promise])
    } finally {
      limit.cancel()
      s.destroy()
      await socket.close()
    }
    return rec
  },

  // An IK echo server for one connection; opts: { seed }.
  'secretStreamIk.listen': (opts) => {
    ikResult = new Promise((resolve) => {
      ikServer = net.createServer((socket) => {
        const s = new NoiseSecretStream(false, socket, {
          keyPair: crypto.keyPair(opts.seed),
          pattern: 'IK'
        })
        const rec = { error: null, received: [] }
        s.on('error', (err) => {
          rec.error = err.message
        })
        s.on('connect', () => {
          rec.handshakeHash = s.handshakeHash
          rec.remotePublicKey = s.remotePublicKey
        })
        s.on('data', (d) => {
          rec.received.push(Buffer.from(d))
          s.write(Buffer.from(d))
        })
        s.on('end', () => s.end())
        s.on('close', () => resolve(rec))
      })
    })
    return new Promise((resolve, reject) => {
      ikServer.once('error', reject)
      ikServer.listen(0, '127.0.0.1', () => resolve(ikServer.address().port))
    })
  },

  'secretStreamIk.serverResult': async (ms) => {
    const limit = timeout(ms, 'secretStreamIk.serverResult')
    try {
      return await Promise.race([ikResult, limit.promise])
    } finally {
      limit.cancel()
      await new Promise((resolve) => ikServer.close(resolve))
      ikServer = null
    }
  },

  // An IK client: writes `messages`, reads as many back, ends. opts: { seed,
  // remotePublicKey, messages, ms }.
  'secretStreamIk.client': async (port, opts) => {
    const socket = net.connect(port, '127.0.0.1')
    const s = new NoiseSecretStream(true, socket, {
      keyPair: crypto.keyPair(opts.seed),
      pattern: 'IK',
      remotePublicKey: opts.remotePublicKey
    })
    const rec = { error: null, received: [] }
    s.on('error', (err) => {
      rec.error = err.message
    })
    const closed = new Promise((resolve) => s.on('close', resolve))
    const limit = timeout(opts.ms, 'secretStreamIk.client')
    try {
      rec.opened = await Promise.race([s.opened, limit.promise])
      if (rec.opened) {
        rec.handshakeHash = s.handshakeHash
        rec.remotePublicKey = s.remotePublicKey
        const all = new Promise((resolve) => {
          s.on('data', (d) => {
            rec.received.push(Buffer.from(d))
            if (rec.received.length === opts.messages.length) resolve()
          })
        })
        for (const m of opts.messages) s.write(m)
        await Promise.race([all, limit.promise])
        s.end()
      }
      await Promise.race([closed, limit.promise])
    } finally {
      limit.cancel()
      s.destroy()
    }
    return rec
  }
}
