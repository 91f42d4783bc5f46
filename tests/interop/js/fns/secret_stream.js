// @hyperswarm/secret-stream, noise-handshake and sodium-secretstream for
// tests/interop/test_secret_stream_interop.py.
//
// Live sessions: 'secretStream.listen' starts one echo server (state kept in this module)
// and returns its port; 'secretStream.serverInfo' reports what it saw; 'secretStream.stop'
// shuts it down. 'secretStream.client' connects to a Python server, sends messages and
// collects what comes back.
'use strict'

const net = require('net')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const Noise = require('noise-handshake')
const curve = require('noise-curve-ed')
const { Push, Pull } = require('sodium-secretstream')
const crypto = require('hypercore-crypto')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function until (cond, ms) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) return false
    await sleep(5)
  }
  return true
}

// ---- golden vectors ----------------------------------------------------------------------

// Both sides of a handshake with pinned static and ephemeral keys.
function noiseVector (pattern, opts) {
  const init = new Noise(pattern, true, crypto.keyPair(opts.initiatorSeed), { curve })
  const resp = new Noise(pattern, false, crypto.keyPair(opts.responderSeed), { curve })
  const prologue = opts.prologue || Buffer.alloc(0)
  const responderPk = crypto.keyPair(opts.responderSeed).publicKey
  init.initialise(prologue, pattern === 'IK' ? responderPk : undefined)
  resp.initialise(prologue)
  init.e = curve.generateKeyPair(opts.initiatorEphemeralSeed)
  resp.e = curve.generateKeyPair(opts.responderEphemeralSeed)
  const payloads = opts.payloads || []
  const messages = []
  const received = []
  let sender = init
  let receiver = resp
  let i = 0
  while (!init.complete || !resp.complete) {
    const msg = sender.send(payloads[i] || Buffer.alloc(0))
    messages.push(Buffer.from(msg)) // recv keeps views of msg and zeroes them at the end
    received.push(Buffer.from(receiver.recv(msg)))
    const t = sender
    sender = receiver
    receiver = t
    i++
  }
  return {
    messages,
    payloads: received,
    initiator: { tx: init.tx, rx: init.rx, hash: init.hash, rs: init.rs },
    responder: { tx: resp.tx, rx: resp.rx, hash: resp.hash, rs: resp.rs }
  }
}

// ---- live echo server --------------------------------------------------------------------

let server = null
let conns = []

function report (rec) {
  const { stream, ...rest } = rec
  return rest
}

function track (s, rec) {
  s.on('connect', () => {
    rec.handshakeHash = s.handshakeHash
    rec.publicKey = s.publicKey
    rec.remotePublicKey = s.remotePublicKey
  })
  s.on('error', (err) => {
    rec.error = err.message
  })
  s.on('close', () => {
    rec.closed = true
  })
}

module.exports = {
  'secretStream.noiseVector': noiseVector,

  'secretStream.id': (handshakeHash, isInitiator) =>
    NoiseSecretStream.id(handshakeHash, isInitiator),

  // A sodium-secretstream push state: its header and the boxes of `messages`.
  'secretStream.push': (key, messages) => {
    const push = new Push(key)
    return { header: push.header, boxes: messages.map((m) => push.next(m)) }
  },

  // Opens `boxes` with a pull state; a box that fails to open ends the list with an error.
  'secretStream.pull': (key, header, boxes) => {
    const pull = new Pull(key)
    pull.init(header)
    const out = []
    for (const box of boxes) {
      try {
        out.push(pull.next(box))
      } catch (err) {
        out.push({ error: err.message })
        break
      }
    }
    return out
  },

  // Unordered-message boxes, run through NoiseSecretStream's own methods.
  'secretStream.unorderedSeal': (handshakeHash, isInitiator, initialCounter, messages) => {
    const self = { isInitiator, _sendState: null, destroy (err) { throw err } }
    NoiseSecretStream.prototype._setupSecretSend.call(self, handshakeHash)
    self._sendState.set(initialCounter, 64)
    self._sendState.set(initialCounter, 72)
    return messages.map((m) => NoiseSecretStream.prototype._boxMessage.call(self, m))
  },

  'secretStream.unorderedOpen': (handshakeHash, isInitiator, datagrams) => {
    const self = { isInitiator, _sendState: null }
    NoiseSecretStream.prototype._setupSecretSend.call(self, handshakeHash)
    return datagrams.map((d) => {
      let got = null
      self.emit = (name, plain) => {
        got = Buffer.from(plain)
      }
      NoiseSecretStream.prototype._onmessage.call(self, Buffer.from(d))
      return got
    })
  },

  // Echo server: every message is written back (empty ones too, unless keep-alive filters
  // them out). opts: { seed, keepAlive, timeout }.
  'secretStream.listen': (opts) => {
    opts = opts || {}
    conns = []
    server = net.createServer((socket) => {
      const rec = {
        stream: null,
        handshakeHash: null,
        publicKey: null,
        remotePublicKey: null,
        messages: 0,
        empty: 0,
        bytes: 0,
        ended: false,
        closed: false,
        error: null
      }
      const s = new NoiseSecretStream(false, socket, {
        keyPair: crypto.keyPair(opts.seed),
        keepAlive: opts.keepAlive || 0
      })
      if (opts.timeout) s.setTimeout(opts.timeout)
      rec.stream = s
      conns.push(rec)
      track(s, rec)
      s.on('data', (data) => {
        if (data.byteLength === 0) rec.empty++
        else rec.messages++
        rec.bytes += data.byteLength
        s.write(Buffer.from(data))
      })
      s.on('end', () => {
        rec.ended = true
        s.end()
      })
    })
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve(server.address().port))
    })
  },

  // What the server saw; with `wait`, first waits (up to that many ms) until `count`
  // connections are closed.
  'secretStream.serverInfo': async (opts) => {
    opts = opts || {}
    if (opts.wait) {
      await until(() => conns.filter((c) => c.closed).length >= (opts.count || 1), opts.wait)
    }
    return conns.map(report)
  },

  'secretStream.stop': async () => {
    for (const c of conns) c.stream.destroy()
    const out = conns.map(report)
    conns = []
    if (server) {
      await new Promise((resolve) => server.close(resolve))
      server = null
    }
    return out
  },

  // Client: connects, waits `idle` ms, writes `messages`, collects replies until `expect`
  // messages came back (default: as many as were sent), waits `idleAfter` ms, then ends the
  // stream and waits for it to close. opts: { seed, keepAlive, timeout, messages, expect,
  // idle, idleAfter, wait }.
  'secretStream.client': async (port, opts) => {
    opts = opts || {}
    const socket = net.connect(port, '127.0.0.1')
    const s = new NoiseSecretStream(true, socket, {
      keyPair: crypto.keyPair(opts.seed),
      keepAlive: opts.keepAlive || 0
    })
    if (opts.timeout) s.setTimeout(opts.timeout)
    const rec = { handshakeHash: null, publicKey: null, remotePublicKey: null, error: null }
    track(s, rec)
    const received = []
    s.on('data', (data) => received.push(Buffer.from(data)))
    let closed = false
    const onclose = new Promise((resolve) => s.on('close', resolve)).then(() => {
      closed = true
    })
    const opened = await s.opened
    if (!opened) return { ...rec, received, opened: false }
    if (opts.idle) await sleep(opts.idle)
    const messages = opts.messages || []
    for (const m of messages) s.write(m)
    const expect = opts.expect === undefined ? messages.length : opts.expect
    const complete = await until(
      () => received.length >= expect || closed || rec.error !== null,
      opts.wait || 10000
    )
    if (opts.idleAfter) await sleep(opts.idleAfter)
    s.end()
    await Promise.race([onclose, sleep(5000)])
    return { ...rec, received, opened: true, complete, closed }
  }
}
