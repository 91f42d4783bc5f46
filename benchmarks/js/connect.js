// HyperDHT connections on a local testnet of 5 JS nodes on 127.0.0.1: connections per second
// (connect + echo of one message + close, one after the other) from one node to a server on
// another, then bytes per second one way over one connection. Prints one JSON line.
// Usage: node connect.js CONNECTIONS MEGABYTES
'use strict'

const HyperDHT = require('hyperdht')
const createTestnet = require('hyperdht/testnet')

function once (socket, event) {
  return new Promise((resolve, reject) => {
    socket.once(event, resolve)
    socket.once('error', reject)
  })
}

async function main () {
  const connections = Number(process.argv[2] || 100)
  const megabytes = Number(process.argv[3] || 32)
  const testnet = await createTestnet(5, { host: '127.0.0.1' })
  const serverNode = new HyperDHT({ bootstrap: testnet.bootstrap, host: '127.0.0.1' })
  const clientNode = new HyperDHT({ bootstrap: testnet.bootstrap, host: '127.0.0.1' })
  await serverNode.fullyBootstrapped()
  await clientNode.fullyBootstrapped()

  let sink = null
  const server = serverNode.createServer((socket) => {
    socket.on('error', () => {})
    if (sink) {
      const target = sink
      sink = null
      let got = 0
      socket.on('data', (d) => {
        got += d.byteLength
        if (got >= target.bytes) target.done()
      })
      return
    }
    socket.on('data', (d) => socket.write(d))
    socket.on('end', () => socket.end())
  })
  const keyPair = HyperDHT.keyPair(Buffer.alloc(32, 7))
  await server.listen(keyPair)

  const msg = Buffer.from('ping')
  let start = process.hrtime.bigint()
  for (let i = 0; i < connections; i++) {
    const socket = clientNode.connect(keyPair.publicKey)
    socket.write(msg)
    await once(socket, 'data')
    socket.end()
    socket.destroy()
  }
  const connectionsPerSecond = connections / (Number(process.hrtime.bigint() - start) / 1e9)

  const bytes = megabytes * 1024 * 1024
  const received = new Promise((resolve) => { sink = { bytes, done: resolve } })
  const socket = clientNode.connect(keyPair.publicKey)
  socket.on('error', () => {})
  await once(socket, 'open')
  const chunk = Buffer.alloc(64 * 1024, 1)
  start = process.hrtime.bigint()
  for (let sent = 0; sent < bytes; sent += chunk.byteLength) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve))
  }
  await received
  const bytesPerSecond = bytes / (Number(process.hrtime.bigint() - start) / 1e9)
  socket.destroy()

  console.log(JSON.stringify({ connectionsPerSecond, bytesPerSecond }))
  await server.close()
  await clientNode.destroy()
  await serverNode.destroy()
  await testnet.destroy()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
