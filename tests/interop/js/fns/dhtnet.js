// Live JS HyperDHT nodes for the DHT interop tests, all on 127.0.0.1. Nodes and testnets stay
// in this process between calls and are named by a handle. Calls that wait on Python nodes
// must be made from a worker thread on the Python side (the helper answers one call at a time).
'use strict'

const HyperDHT = require('hyperdht')
const createTestnet = require('hyperdht/testnet')
const b4a = require('b4a')
// (blind-relay is hyperdht's own dependency, at the version the lock file pins)
const BlindRelay = require('blind-relay')

const handles = new Map()
let next = 1

function keep (obj) {
  const id = next++
  handles.set(id, obj)
  return id
}

function node (h) {
  const n = handles.get(h)
  if (!n) throw new Error('no such handle ' + h)
  return n
}

function addr (a) {
  return a ? { host: a.host, port: a.port } : null
}

function keyPair (seed) {
  return HyperDHT.keyPair(seed)
}

function withTimeout (promise, ms, what) {
  let t
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((resolve, reject) => {
      t = setTimeout(() => reject(new Error(what + ' timed out')), ms)
    })
  ])
}

module.exports = {
  'dhtnet.testnet': async (size) => {
    const testnet = await createTestnet(size, { host: '127.0.0.1' })
    const id = keep(testnet)
    return {
      handle: id,
      bootstrap: testnet.bootstrap.map(addr),
      nodes: testnet.nodes.map((n) => ({ ...addr(n.address()), id: n.id }))
    }
  },
  'dhtnet.testnetDestroy': async (h) => {
    await node(h).destroy()
    handles.delete(h)
  },
  // A HyperDHT node bootstrapped off `bootstrap` ([{host, port}] or ["host:port"]).
  'dhtnet.node': async (bootstrap, opts) => {
    const dht = new HyperDHT({ bootstrap, host: '127.0.0.1', ...(opts || {}) })
    await withTimeout(dht.fullyBootstrapped(), 20000, 'bootstrap')
    return keep(dht)
  },
  'dhtnet.info': async (h) => {
    const dht = node(h)
    return {
      id: dht.id,
      tableId: dht.table.id,
      ephemeral: dht.ephemeral,
      firewalled: dht.firewalled,
      host: dht.host,
      port: dht.port,
      address: addr(dht.address()),
      nodes: dht.toArray().map(addr),
      publicKey: dht.defaultKeyPair.publicKey
    }
  },
  // The routing-table entry JS keeps for host:port (its id), or null.
  'dhtnet.tableEntry': async (h, host, port) => {
    const n = node(h).table.toArray().find((e) => e.host === host && e.port === port)
    return n ? { id: n.id, host: n.host, port: n.port } : null
  },
  'dhtnet.refresh': async (h, ms) => {
    const dht = node(h)
    await dht.findNode(dht.table.id).finished()
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms))
  },
  'dhtnet.destroy': async (h) => {
    await node(h).destroy()
    handles.delete(h)
  },
  'dhtnet.announce': async (h, topic, seed, relayAddresses) => {
    const kp = keyPair(seed)
    await withTimeout(
      node(h).announce(topic, kp, relayAddresses || []).finished(),
      30000,
      'announce'
    )
    return kp.publicKey
  },
  'dhtnet.unannounce': async (h, topic, seed) => {
    await withTimeout(node(h).unannounce(topic, keyPair(seed)), 30000, 'unannounce')
  },
  'dhtnet.lookup': async (h, topic) => {
    const out = []
    const q = node(h).lookup(topic)
    await withTimeout(
      (async () => {
        for await (const reply of q) {
          out.push({
            from: addr(reply.from),
            peers: reply.peers.map((p) => ({
              publicKey: p.publicKey,
              relayAddresses: p.relayAddresses.map(addr)
            })),
            bump: reply.bump
          })
        }
      })(),
      30000,
      'lookup'
    )
    return out
  },
  'dhtnet.findPeer': async (h, publicKey) => {
    const out = []
    const q = node(h).findPeer(publicKey)
    await withTimeout(
      (async () => {
        for await (const reply of q) {
          out.push({
            from: addr(reply.from),
            publicKey: reply.peer.publicKey,
            relayAddresses: reply.peer.relayAddresses.map(addr)
          })
        }
      })(),
      30000,
      'findPeer'
    )
    return out
  },
  'dhtnet.immutablePut': async (h, value) => {
    const r = await withTimeout(node(h).immutablePut(value), 30000, 'immutablePut')
    return { hash: r.hash, closestNodes: r.closestNodes.map(addr) }
  },
  'dhtnet.immutableGet': async (h, hash) => {
    const r = await withTimeout(node(h).immutableGet(hash), 30000, 'immutableGet')
    return r ? { value: r.value, from: addr(r.from) } : null
  },
  'dhtnet.mutablePut': async (h, seed, value, seq) => {
    const r = await withTimeout(
      node(h).mutablePut(keyPair(seed), value, { seq }),
      30000,
      'mutablePut'
    )
    return { publicKey: r.publicKey, seq: r.seq, signature: r.signature }
  },
  'dhtnet.mutableGet': async (h, publicKey, seq, latest) => {
    const r = await withTimeout(
      node(h).mutableGet(publicKey, { seq: seq || 0, latest: latest !== false }),
      30000,
      'mutableGet'
    )
    return r ? { seq: r.seq, value: r.value, signature: r.signature, from: addr(r.from) } : null
  },
  // One raw dht-rpc request; resolves with the reply's fields.
  'dhtnet.request': async (h, req, to) => {
    const res = await node(h).request(
      {
        token: req.token || null,
        command: req.command,
        target: req.target || null,
        value: req.value || null
      },
      to
    )
    return {
      error: res.error,
      token: res.token,
      value: res.value,
      closerNodes: (res.closerNodes || []).map(addr),
      from: { ...addr(res.from), id: res.from.id },
      to: addr(res.to)
    }
  },
  // A server on `h` that echoes what it receives; returns its public key.
  // Each connection is recorded ({remotePublicKey, handshakeHash}: dhtnet.serverSeen); with
  // opts.refuse the firewall refuses every client.
  // opts.holepunch === false never punches; opts.relayThrough offers that blind relay.
  'dhtnet.listen': async (h, seed, opts) => {
    const dht = node(h)
    const seen = []
    const refuse = !!(opts && opts.refuse)
    const serverOpts = { firewall: () => refuse }
    if (opts && opts.holepunch === false) serverOpts.holepunch = false
    if (opts && opts.shareLocalAddress === false) serverOpts.shareLocalAddress = false
    if (opts && opts.relayThrough) serverOpts.relayThrough = opts.relayThrough
    const server = dht.createServer(serverOpts, (socket) => {
      seen.push({ remotePublicKey: socket.remotePublicKey, handshakeHash: socket.handshakeHash })
      socket.on('error', () => {})
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
    })
    server.seen = seen
    const kp = keyPair(seed)
    await withTimeout(server.listen(kp), 30000, 'listen')
    return { handle: keep(server), publicKey: kp.publicKey }
  },
  'dhtnet.serverSeen': async (h) => node(h).seen,
  // Connects `h` to `publicKey` and returns the error code it fails with (or null).
  'dhtnet.connectError': async (h, publicKey, ms) => {
    const socket = node(h).connect(publicKey)
    try {
      await withTimeout(
        new Promise((resolve, reject) => {
          socket.on('error', reject)
          socket.on('open', resolve)
        }),
        ms || 30000,
        'connect'
      )
    } catch (err) {
      socket.destroy()
      return err.code || err.message
    }
    socket.destroy()
    return null
  },
  'dhtnet.closeServer': async (h) => {
    await node(h).close()
    handles.delete(h)
  },
  // Connects `h` to `publicKey` (opts: connect options, e.g. { localConnection: false }),
  // sends `data` and waits for the echo.
  // opts.holepunch === false vetoes every punch; opts.holdMs keeps the connection that long
  // after the echo, sending `data` again every 100 ms (holdEchoed: the bytes that came back).
  'dhtnet.connectEcho': async (h, publicKey, data, opts) => {
    const connectOpts = { ...(opts || {}) }
    const holdMs = connectOpts.holdMs || 0
    delete connectOpts.holdMs
    if (connectOpts.holepunch === false) connectOpts.holepunch = () => false
    const socket = node(h).connect(publicKey, connectOpts)
    socket.on('error', () => {})
    const received = []
    let got = 0
    await withTimeout(
      new Promise((resolve, reject) => {
        socket.on('error', reject)
        socket.on('data', (d) => {
          received.push(d)
          got += d.byteLength
          if (got >= data.byteLength) resolve()
        })
        socket.write(data)
      }),
      30000,
      'connect and echo'
    )
    const echoed = b4a.concat(received)
    let holdEchoed = 0
    if (holdMs) {
      socket.on('data', (d) => { holdEchoed += d.byteLength })
      got = 0
      const end = Date.now() + holdMs
      while (Date.now() < end) {
        socket.write(data)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    const out = {
      holdEchoed,
      punches: { ...node(h).stats.punches },
      relaying: { ...node(h).stats.relaying },
      echoed,
      handshakeHash: socket.handshakeHash,
      remotePublicKey: socket.remotePublicKey
    }
    socket.destroy()
    return out
  },
  // A blind relay on `h` (blind-relay's Server over the node's raw streams), listening on the
  // key pair of `seed`; returns its public key.
  'dhtnet.relay': async (h, seed) => {
    const dht = node(h)
    const relay = new BlindRelay.Server({
      createStream (opts) {
        return dht.createRawStream({ ...opts, framed: true })
      }
    })
    const server = dht.createServer((socket) => {
      socket.on('error', () => {})
      const session = relay.accept(socket, { id: socket.remotePublicKey })
      session.on('error', () => {})
    })
    server.relay = relay
    const kp = keyPair(seed)
    await withTimeout(server.listen(kp), 30000, 'listen')
    return { handle: keep(server), publicKey: kp.publicKey }
  },
  'dhtnet.relayStats': async (h) => {
    const stats = node(h).relay.stats
    return {
      pairings: { ...stats.pairings },
      streams: { opened: stats.streams.opened, closed: stats.streams.closed }
    }
  }
}
