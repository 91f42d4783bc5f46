// udx-native streams for the UDX interop tests. `udx.bind` opens two sockets on 127.0.0.1;
// `udx.transfer` connects a stream on each to the other through a relay port (the Python
// side forwards and records the packets), sends a stream message, writes `size` pseudo-random
// bytes from A, ends both sides, and reports what B received.
'use strict'

const crypto = require('crypto')
const UDX = require('udx-native')

const pairs = new Map()
let nextPair = 1

module.exports = {
  'udx.bind': async () => {
    const udx = new UDX()
    const a = udx.createSocket()
    const b = udx.createSocket()
    a.bind(0, '127.0.0.1')
    b.bind(0, '127.0.0.1')
    const id = nextPair++
    pairs.set(id, { udx, a, b })
    return { id, portA: a.address().port, portB: b.address().port }
  },
  'udx.transfer': async (id, relayPort, size, ms) => {
    const { udx, a, b } = pairs.get(id)
    pairs.delete(id)
    const sa = udx.createStream(0x11111111)
    const sb = udx.createStream(0x22222222)
    sa.on('error', () => {})
    sb.on('error', () => {})
    const messages = []
    sb.on('message', (m) => messages.push(m))
    sa.connect(a, 0x22222222, relayPort, '127.0.0.1')
    sb.connect(b, 0x11111111, relayPort, '127.0.0.1')
    const data = crypto.randomBytes(size)
    const received = []
    const done = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out')), ms)
      sb.on('data', (d) => received.push(d))
      sb.on('end', () => { sb.end(); clearTimeout(t); resolve() })
    })
    await sa.send(Buffer.from('dgram'))
    sa.write(data)
    sa.end()
    sa.resume()
    await done
    await new Promise((resolve) => setTimeout(resolve, 100))
    sa.destroy()
    sb.destroy()
    await a.close()
    await b.close()
    const got = Buffer.concat(received)
    return {
      sent: crypto.createHash('sha256').update(data).digest(),
      received: crypto.createHash('sha256').update(got).digest(),
      messages
    }
  }
}

// A udx-native peer for a Python one: `udx.open` binds a socket on 127.0.0.1; `udx.talk`
// connects stream `localId` to the Python stream `remoteId` at `port`, sends a stream message
// and a socket datagram, writes `size` pseudo-random bytes and ends, reads until the Python
// side ends, and reports hashes of both directions and what arrived besides.
const peers = new Map()
let nextPeer = 1

module.exports['udx.open'] = async (host = '127.0.0.1') => {
  const udx = new UDX()
  const socket = udx.createSocket()
  const datagrams = []
  socket.on('message', (m) => datagrams.push(m))
  socket.bind(0, host)
  const id = nextPeer++
  peers.set(id, { udx, socket, datagrams })
  return { id, port: socket.address().port }
}

module.exports['udx.talk'] = async (id, localId, remoteId, port, size, ms, host = '127.0.0.1') => {
  const { udx, socket, datagrams } = peers.get(id)
  peers.delete(id)
  const stream = udx.createStream(localId)
  const messages = []
  stream.on('message', (m) => messages.push(m))
  stream.on('error', () => {})
  stream.connect(socket, remoteId, port, host)
  const data = crypto.randomBytes(size)
  const received = []
  // done once both directions are over: the stream closes by itself
  const closed = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms)
    stream.on('data', (d) => received.push(d))
    stream.on('close', () => { clearTimeout(t); resolve() })
  })
  await stream.send(Buffer.from('message from js'))
  await socket.send(Buffer.from('datagram from js'), port, host)
  stream.write(data)
  stream.end()
  await closed
  await socket.close()
  return {
    sent: crypto.createHash('sha256').update(data).digest(),
    received: crypto.createHash('sha256').update(Buffer.concat(received)).digest(),
    messages,
    datagrams
  }
}

// A udx-native peer for the half-close and firewall tests. With `port`, stream `localId`
// connects to the Python stream `remoteId` there; without, it waits for the first packet and
// its firewall connects the stream to wherever that came from (as hyperdht after a hole
// punch). `order` 'js-first': JS writes `size` bytes and ends, then reads until the Python
// end; 'python-first': JS reads until the Python end, then writes and ends.
module.exports['udx.exchange'] = async (id, localId, remoteId, port, size, order, ms) => {
  const { udx, socket } = peers.get(id)
  peers.delete(id)
  let seen = null
  const stream = udx.createStream(localId, {
    firewall(sock, fromPort, fromHost) {
      seen = { port: fromPort, host: fromHost }
      stream.connect(sock, remoteId, fromPort, fromHost)
      return false
    }
  })
  stream.on('error', () => {})
  const received = []
  stream.on('data', (d) => received.push(d))
  let timer = null
  const closed = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms)
    stream.on('close', resolve)
  })
  const ended = new Promise((resolve) => stream.on('end', resolve))
  if (port) stream.connect(socket, remoteId, port, '127.0.0.1')
  else await new Promise((resolve) => stream.once('connect', resolve))
  let bytesBeforeWriting = null
  if (order === 'python-first') {
    await ended
    bytesBeforeWriting = received.reduce((n, d) => n + d.length, 0)
  }
  const data = crypto.randomBytes(size)
  stream.write(data)
  stream.end()
  await closed
  clearTimeout(timer)
  await socket.close()
  return {
    sent: crypto.createHash('sha256').update(data).digest(),
    received: crypto.createHash('sha256').update(Buffer.concat(received)).digest(),
    bytesBeforeWriting,
    seen
  }
}

// An idle udx-native stream for the keepalive test: connects stream `localId` to `remoteId`
// at `port`, turns on keepalive heartbeats every `keepaliveMs`, stays idle for `idleMs`,
// then ends and waits for the close.
module.exports['udx.idle'] = async (id, localId, remoteId, port, keepaliveMs, idleMs) => {
  const { udx, socket } = peers.get(id)
  peers.delete(id)
  const stream = udx.createStream(localId)
  stream.on('error', () => {})
  stream.on('data', () => {})
  const closed = new Promise((resolve) => stream.on('close', resolve))
  stream.connect(socket, remoteId, port, '127.0.0.1')
  stream.setKeepalive(keepaliveMs)
  await new Promise((resolve) => setTimeout(resolve, idleMs))
  stream.end()
  await closed
  await socket.close()
  return true
}

// Two sockets of one udx-native UDX for the change-remote tests: `udx.open2` binds A and B
// on 127.0.0.1. `udx.move` connects stream `localId` through A to the Python stream
// `remoteId` at `port`, writes `size` pseudo-random bytes and ends, and reads to the end.
// `mode` 'js-moves': once `moveAt` bytes have arrived, the stream moves to socket B and the
// Python socket at `newPort` with changeRemote. 'py-moves': the Python side moves; the first
// packet that comes in on B passes the firewall hook, which moves the stream there with
// changeRemote (as hyperdht does after a hole punch). Packets on any other socket than the
// stream's are dropped by the hook.
const pairsOf2 = new Map()

module.exports['udx.open2'] = async () => {
  const udx = new UDX()
  const a = udx.createSocket()
  const b = udx.createSocket()
  a.bind(0, '127.0.0.1')
  b.bind(0, '127.0.0.1')
  const id = nextPeer++
  pairsOf2.set(id, { udx, a, b })
  return { id, portA: a.address().port, portB: b.address().port }
}

module.exports['udx.move'] = async (id, localId, remoteId, port, newPort, size, mode, moveAt, ms) => {
  const { udx, a, b } = pairsOf2.get(id)
  pairsOf2.delete(id)
  let moved = null
  let changed = false
  let firewallCalls = 0
  // changeRemote gives a promise, or null when nothing was in flight (changed at once)
  const onchanging = (p) => {
    if (p) p.then(() => { changed = true }, () => {})
    else changed = true
  }
  const stream = udx.createStream(localId, {
    firewall(sock, fromPort, fromHost) {
      firewallCalls++
      if (mode === 'py-moves' && moved === null && sock === b) {
        moved = { port: fromPort, host: fromHost, received: receivedBytes }
        onchanging(stream.changeRemote(sock, remoteId, fromPort, fromHost))
        return false
      }
      return true
    }
  })
  stream.on('error', () => {})
  const received = []
  let receivedBytes = 0
  let timer = null
  const closed = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms)
    stream.on('close', resolve)
  })
  stream.on('data', (d) => {
    received.push(d)
    receivedBytes += d.length
    if (mode === 'js-moves' && moved === null && receivedBytes >= moveAt) {
      moved = { port: newPort, host: '127.0.0.1', received: receivedBytes }
      onchanging(stream.changeRemote(b, remoteId, newPort, '127.0.0.1'))
    }
  })
  stream.connect(a, remoteId, port, '127.0.0.1')
  const data = crypto.randomBytes(size)
  stream.write(data)
  stream.end()
  await closed
  clearTimeout(timer)
  await a.close()
  await b.close()
  return {
    sent: crypto.createHash('sha256').update(data).digest(),
    received: crypto.createHash('sha256').update(Buffer.concat(received)).digest(),
    receivedBytes,
    moved,
    changed,
    firewallCalls
  }
}
