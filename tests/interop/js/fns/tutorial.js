// The tutorial's two RPC methods over a real secret-stream on TCP (127.0.0.1 only):
// `getKey` answers a 32-byte key, `message` carries JSON. A JS server and a JS client.
'use strict'

const net = require('net')
const c = require('compact-encoding')
const crypto = require('hypercore-crypto')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const ProtomuxRPC = require('protomux-rpc')

let server = null
let received = []
const sockets = new Set()

function serveRPC (stream, key) {
  const rpc = new ProtomuxRPC(stream)
  rpc.respond('getKey', () => key)
  rpc.respond('message', { requestEncoding: c.json, responseEncoding: c.json }, (msg) => {
    received.push(msg)
    return { ok: true, echo: msg }
  })
  rpc.respond('fail', () => {
    const err = new Error('boom')
    err.code = 'EBOOM'
    throw err
  })
  return rpc
}

module.exports = {
  'tutorial.serve': async (seed, key) => {
    received = []
    const keyPair = crypto.keyPair(seed)
    server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      const stream = new NoiseSecretStream(false, socket, { keyPair })
      stream.on('error', () => {})
      serveRPC(stream, key)
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    return { port: server.address().port, publicKey: keyPair.publicKey }
  },
  'tutorial.received': () => received,
  'tutorial.stop': async () => {
    for (const s of sockets) s.destroy()
    if (server) await new Promise((resolve) => server.close(resolve))
    server = null
  },
  // Connect to a Python server, call its methods, report what happened.
  'tutorial.connect': async (port, seed, message) => {
    const socket = net.connect(port, '127.0.0.1')
    const stream = new NoiseSecretStream(true, socket, { keyPair: crypto.keyPair(seed) })
    stream.on('error', () => {})
    await stream.opened
    const rpc = new ProtomuxRPC(stream)
    const key = await rpc.request('getKey', null)
    const reply = await rpc.request('message', message, {
      requestEncoding: c.json,
      responseEncoding: c.json
    })
    let error = null
    try {
      await rpc.request('fail', null)
    } catch (err) {
      error = { message: err.message, code: err.code, cause: err.cause && err.cause.message }
    }
    const out = {
      key,
      reply,
      error,
      handshakeHash: stream.handshakeHash,
      remotePublicKey: stream.remotePublicKey,
      publicKey: stream.publicKey
    }
    stream.destroy()
    return out
  }
}
