// protomux and protomux-rpc peers for tests/interop/test_protomux_interop.py.
//
// Messages travel over TCP on 127.0.0.1 with a 3-byte little-endian length prefix (protomux
// only needs whole messages). Every peer records the raw protomux frames it sent and received.
//
// 'protomux.serve' starts a server running a scenario ('mux' or 'rpc') on each connection
// and returns its port; 'protomux.session' waits for the last server session to end and
// reports it; 'protomux.stop' shuts the server down. 'protomux.connect' runs a scenario as
// a client of a Python server and reports once the connection has ended.
'use strict'

const net = require('net')
const { Duplex } = require('streamx')
const c = require('compact-encoding')
const Protomux = require('protomux')
const ProtomuxRPC = require('protomux-rpc')

const SESSION_TIMEOUT = 20000
const KEY = Buffer.alloc(32).map((_, i) => i * 3)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)

// A streamx duplex of whole messages over a socket, u24le length-prefixed.
class FramedStream extends Duplex {
  constructor (socket) {
    super()
    this.socket = socket
    this.received = []
    this.sent = []
    this._buffer = Buffer.alloc(0)
    socket.on('data', (data) => this._ondata(data))
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  _ondata (data) {
    this._buffer = Buffer.concat([this._buffer, data])
    while (this._buffer.length >= 3) {
      const len = this._buffer.readUIntLE(0, 3)
      if (this._buffer.length < 3 + len) break
      const frame = Buffer.from(this._buffer.subarray(3, 3 + len))
      this._buffer = this._buffer.subarray(3 + len)
      this.received.push(hex(frame))
      this.push(frame)
    }
  }

  _write (data, cb) {
    const header = Buffer.alloc(3)
    header.writeUIntLE(data.length, 0, 3)
    this.sent.push(hex(data))
    this.socket.write(Buffer.concat([header, data]))
    cb(null)
  }

  _final (cb) {
    this.socket.end()
    cb(null)
  }

  _destroy (cb) {
    this.socket.destroy()
    cb(null)
  }
}

// ---- the 'mux' scenario ----------------------------------------------------------------------

// An echo channel for any id, created when the remote opens one ('echo' is paired).
function echoChannel (mux, id, log) {
  const ch = mux.createChannel({
    protocol: 'echo',
    id,
    handshake: c.string,
    onopen (hs) {
      log.push(['echo-open', hex(id), hs])
    },
    onclose (isRemote) {
      log.push(['echo-close', hex(id), isRemote])
    }
  })
  if (ch === null) return
  const str = ch.addMessage({
    encoding: c.string,
    onmessage (v) {
      log.push(['echo-string', hex(id), v])
      if (v === 'close-me') return ch.close()
      if (v === 'cork') {
        mux.cork()
        str.send('req:a')
        num.send(1)
        str.send('req:b')
        mux.uncork()
        return
      }
      if (v.startsWith('ack:')) return
      str.send(v.toUpperCase())
    }
  })
  const num = ch.addMessage({
    encoding: c.uint,
    onmessage (v) {
      log.push(['echo-uint', hex(id), v])
      num.send(v + 1)
    }
  })
  const json = ch.addMessage({
    encoding: c.json,
    onmessage (v) {
      log.push(['echo-json', hex(id), v])
      json.send({ echo: v })
    }
  })
  const buf = ch.addMessage({
    encoding: c.buffer,
    onmessage (v) {
      log.push(['echo-buffer', hex(id), hex(v)])
      buf.send(Buffer.from(v).reverse())
    }
  })
  ch.open('js:' + hex(id))
}

function muxScenario (stream, log) {
  const mux = new Protomux(stream)
  mux.pair({ protocol: 'echo' }, (id) => echoChannel(mux, id, log))

  // JS opens 'greet' and sends before the Python side has paired it.
  const greet = mux.createChannel({
    protocol: 'greet',
    handshake: c.string,
    onopen (hs) {
      log.push(['greet-open', hs])
    },
    onclose (isRemote) {
      log.push(['greet-close', isRemote])
    }
  })
  const say = greet.addMessage({
    encoding: c.string,
    onmessage (v) {
      log.push(['greet-msg', v])
    }
  })
  greet.open('hello from js')
  say.send('early-1')
  say.send('early-2')

  // JS opens 'reject-me', which the Python side refuses.
  const rejected = mux.createChannel({ protocol: 'reject-me' })
  rejected.open()
  rejected.fullyOpened().then((opened) => log.push(['reject-me-opened', opened]))
  return mux
}

// ---- the 'rpc' scenario ----------------------------------------------------------------------

function rpcScenario (stream, log) {
  const rpc = new ProtomuxRPC(stream)
  rpc.respond('echo', (v) => v)
  rpc.respond('json', { valueEncoding: c.json }, (v) => ({ got: v }))
  rpc.respond('upper', { requestEncoding: c.string, responseEncoding: c.string }, (v) =>
    v.toUpperCase()
  )
  rpc.respond('fail', () => {
    const err = new Error('boom')
    err.code = 'EBOOM'
    err.context = 'js-context'
    throw err
  })
  rpc.respond('failPlain', () => {
    throw new Error('plain')
  })
  rpc.respond('getKey', () => KEY)
  rpc.respond('message', { requestEncoding: c.json, responseEncoding: c.json }, (msg) => {
    log.push(['message', msg])
    return { ok: true, echo: msg }
  })
  rpc.respond('event', (v) => {
    log.push(['event', hex(v)])
  })
  rpc.respond('slow', async (v) => {
    await sleep(50)
    return v
  })
  rpc.respond('drive', { responseEncoding: c.json }, () => drive(rpc))
  return rpc
}

async function failure (promise) {
  try {
    await promise
    return null
  } catch (err) {
    const cause = err.cause
      ? { message: err.cause.message, code: err.cause.code || null, context: err.cause.context || null }
      : null
    return { message: err.message, code: err.code || null, cause }
  }
}

// The JS side calls the Python side's methods and reports what came back.
async function drive (rpc) {
  const out = {}
  out.echo = hex(await rpc.request('echo', Buffer.from('hi')))
  out.echoNull = await rpc.request('echo', null)
  out.echoEmpty = await rpc.request('echo', Buffer.alloc(0))
  out.json = await rpc.request('json', { a: [1, 'x'] }, { valueEncoding: c.json })
  out.upper = await rpc.request('upper', 'abc', {
    requestEncoding: c.string,
    responseEncoding: c.string
  })
  out.getKey = hex(await rpc.request('getKey', null))
  out.message = await rpc.request('message', { text: 'hello' }, {
    requestEncoding: c.json,
    responseEncoding: c.json
  })
  out.fail = await failure(rpc.request('fail', null))
  out.failPlain = await failure(rpc.request('failPlain', null))
  out.unknown = await failure(rpc.request('nope', null))
  out.badRequest = await failure(rpc.request('json', Buffer.from('not json')))
  rpc.event('event', Buffer.from('from-js'))
  const many = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => rpc.request('echo', Buffer.from('m' + i)))
  )
  out.many = many.every((b, i) => b.toString() === 'm' + i)
  const start = Date.now()
  const slow = await Promise.all(
    Array.from({ length: 20 }, (_, i) => rpc.request('slow', Buffer.from([i])))
  )
  out.slowMs = Date.now() - start
  out.slow = slow.every((b, i) => b[0] === i)
  return out
}

const SCENARIOS = { mux: muxScenario, rpc: rpcScenario }

// ---- sessions --------------------------------------------------------------------------------

function startSession (socket, scenario) {
  const stream = new FramedStream(socket)
  const session = { log: [], stream, error: null }
  stream.on('error', (err) => {
    session.error = String(err && err.message)
  })
  session.closed = new Promise((resolve) => stream.on('close', resolve))
  SCENARIOS[scenario](stream, session.log)
  return session
}

async function report (session) {
  let timer = null
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('the session did not end in time')), SESSION_TIMEOUT)
  })
  try {
    await Promise.race([session.closed, timeout])
  } finally {
    clearTimeout(timer)
  }
  return {
    log: session.log,
    received: session.stream.received,
    sent: session.stream.sent,
    error: session.error
  }
}

let server = null
let sessions = []
const sockets = new Set()

module.exports = {
  'protomux.serve': async (scenario) => {
    if (!SCENARIOS[scenario]) throw new Error('unknown scenario ' + scenario)
    sessions = []
    server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      sessions.push(startSession(socket, scenario))
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    return server.address().port
  },
  'protomux.session': async () => {
    if (sessions.length === 0) throw new Error('no session')
    return report(sessions[sessions.length - 1])
  },
  'protomux.stop': async () => {
    for (const s of sockets) s.destroy()
    if (server) await new Promise((resolve) => server.close(resolve))
    server = null
  },
  'protomux.connect': async (port, scenario) => {
    if (!SCENARIOS[scenario]) throw new Error('unknown scenario ' + scenario)
    const socket = net.connect(port, '127.0.0.1')
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return report(startSession(socket, scenario))
  }
}
