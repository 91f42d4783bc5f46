// HyperDHT on a local testnet of 10 JS nodes on 127.0.0.1: announce latency and lookups per
// second from one more node. Prints one JSON line. Usage: node dht.js LOOKUPS ANNOUNCES
'use strict'

const HyperDHT = require('hyperdht')
const createTestnet = require('hyperdht/testnet')

async function main() {
  const lookups = Number(process.argv[2] || 200)
  const announces = Number(process.argv[3] || 50)
  const testnet = await createTestnet(10, { host: '127.0.0.1' })
  const node = new HyperDHT({ bootstrap: testnet.bootstrap, host: '127.0.0.1' })
  await node.fullyBootstrapped()

  const latencies = []
  const topics = []
  for (let i = 0; i < announces; i++) {
    const topic = HyperDHT.hash(Buffer.from('bench topic ' + i))
    topics.push(topic)
    const start = process.hrtime.bigint()
    await node.announce(topic, HyperDHT.keyPair()).finished()
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6)
  }

  let found = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < lookups; i++) {
    for await (const reply of node.lookup(topics[i % topics.length])) found += reply.peers.length
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9

  latencies.sort((a, b) => a - b)
  console.log(
    JSON.stringify({
      lookupsPerSecond: lookups / seconds,
      announceMs: latencies[latencies.length >> 1],
      found
    })
  )
  await node.destroy()
  await testnet.destroy()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
