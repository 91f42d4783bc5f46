// dht-rpc 6.27.0 packets made and read by its own lib/io.js. The request class is not
// exported, so a bare IO (its prototype, with a recording socket and a fixed table, secrets
// and tid) builds them: `dhtPackets.request` / `dhtPackets.response` return the bytes JS
// sends; `dhtPackets.decode` feeds bytes to IO.onmessage and returns what JS read (null when
// JS dropped the datagram).
'use strict'

const IO = require('dht-rpc/lib/io.js')

function bareIO({ ephemeral = true, id = null, closest = [], secrets = null } = {}) {
  const sent = []
  const io = Object.create(IO.prototype)
  const sock = {
    trySend(buf, port, host) {
      sent.push({ buf: Buffer.from(buf), port, host })
    }
  }
  Object.assign(io, {
    table: { id, closest: () => closest.map((a) => ({ host: a.host, port: a.port })) },
    inflight: [],
    clientSocket: sock,
    serverSocket: sock,
    firewalled: false,
    ephemeral,
    destroyed: false,
    suspended: false,
    congestion: { recv() {} },
    stats: {
      requests: { active: 0, total: 0, responses: 0, timeouts: 0, retries: 0 },
      commands: [{ tx: 0, rx: 0 }, { tx: 0, rx: 0 }, { tx: 0, rx: 0 }, { tx: 0, rx: 0 }]
    },
    onrequest: () => {},
    onresponse: () => {},
    _destroying: null,
    _tid: 0,
    _adt: null,
    _secrets: secrets
  })
  return { io, sock, sent }
}

function peerOut(p) {
  return p && { id: p.id, host: p.host, port: p.port }
}

module.exports = {
  'dhtPackets.request': async (opts) => {
    const { io, sock } = bareIO({ ephemeral: opts.id === null, id: opts.id })
    io._tid = opts.tid
    const req = io.createRequest(
      opts.to,
      opts.token,
      opts.internal,
      opts.command,
      opts.target,
      opts.value,
      null,
      0
    )
    return req._encodeRequest(opts.token, opts.value, opts.to, sock)
  },
  'dhtPackets.response': async (opts) => {
    const { io, sock, sent } = bareIO({
      ephemeral: opts.id === null,
      id: opts.id,
      closest: opts.closerNodes,
      secrets: opts.secrets
    })
    const probe = io.createRequest(opts.to, null, false, 0, null, null, null, 0)
    const Request = probe.constructor
    const from = { id: null, host: opts.to.host, port: opts.to.port }
    const req = new Request(io, sock, opts.tid, from, opts.to, null, false, 0, opts.target, null, null, 0)
    if (opts.error > 0) req.error(opts.error, { token: opts.token, closerNodes: opts.hasCloserNodes })
    else req.reply(opts.value, { token: opts.token, closerNodes: opts.hasCloserNodes })
    return sent[0].buf
  },
  'dhtPackets.token': async (secrets, host, i) => {
    const { io } = bareIO({ secrets })
    return io.token({ host, port: 1 }, i)
  },
  'dhtPackets.decode': async (buf, host, port, validToken = null) => {
    const { io, sock } = bareIO()
    let got = null
    io.onrequest = (req) => {
      got = {
        kind: 'request',
        tid: req.tid,
        fromId: req.from.id,
        to: { host: req.to.host, port: req.to.port },
        token: req.token,
        internal: req.internal,
        command: req.command,
        target: req.target,
        value: req.value
      }
    }
    io._secrets = [Buffer.alloc(32), Buffer.alloc(32)]
    io.token = () => validToken || Buffer.alloc(32)
    const tid = buf.length >= 4 ? buf.readUInt16LE(2) : 0
    io.inflight.push({
      tid,
      to: { host, port },
      sent: 1,
      session: null,
      _timeout: null,
      _timestamp: Date.now(),
      internal: false,
      command: 0,
      onresponse(res) {
        got = {
          kind: 'response',
          tid: res.tid,
          fromId: res.from.id,
          to: { host: res.to.host, port: res.to.port },
          token: res.token,
          closerNodes: res.closerNodes && res.closerNodes.map(peerOut),
          error: res.error,
          value: res.value
        }
      }
    })
    io.onmessage(sock, buf, { host, port })
    return got
  }
}
