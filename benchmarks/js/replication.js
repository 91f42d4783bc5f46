// The JS side of the replication benchmark (benchmarks/replication.py drives it):
//   node replication.js writer <dir> <blocks>
//     -> {"port": P, "key": "<hex>"} once <blocks> 1 KiB blocks are appended (1,000 a call);
//        then replicates the core to every TCP connection on 127.0.0.1 until killed.
//   node replication.js reader <dir> <port> <key> <blocks>
//     -> {"seconds": S}: from connecting to <port> until all <blocks> blocks are stored in
//        a new core of <key> in <dir>; then exits.
// The caller makes and removes <dir>.
'use strict'

const net = require('net')
const Hypercore = require('hypercore')
const NoiseSecretStream = require('@hyperswarm/secret-stream')

// The same block as benchmarks/workloads.py and bench.js.
const BLOCK = Buffer.from(Array.from({ length: 1024 }, (_, i) => i & 255))
const BATCH = 1000

function replicateOn (core, socket, isInitiator) {
  socket.on('error', () => {})
  const stream = new NoiseSecretStream(isInitiator, socket)
  stream.on('error', () => {})
  core.replicate(stream)
  return stream
}

async function writer (dir, blocks) {
  const core = new Hypercore(dir)
  await core.ready()
  for (let i = 0; i < blocks; i += BATCH) {
    await core.append(new Array(Math.min(BATCH, blocks - i)).fill(BLOCK))
  }
  const server = net.createServer((socket) => replicateOn(core, socket, false))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  console.log(JSON.stringify({ port: server.address().port, key: core.key.toString('hex') }))
  // Serve until killed.
}

async function reader (dir, port, key, blocks) {
  const core = new Hypercore(dir, Buffer.from(key, 'hex'))
  await core.ready()
  const peer = new Promise((resolve) => core.once('peer-add', resolve))
  const start = process.hrtime.bigint()
  const socket = net.connect(port, '127.0.0.1')
  const stream = replicateOn(core, socket, true)
  await peer
  await core.update({ wait: true })
  if (core.length < blocks) throw new Error(`the writer has ${core.length} blocks, not ${blocks}`)
  await core.download({ start: 0, end: blocks }).done()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (core.contiguousLength < blocks) throw new Error(`only ${core.contiguousLength} blocks stored`)
  console.log(JSON.stringify({ seconds }))
  stream.destroy()
  await core.close()
}

async function main () {
  const [role, ...args] = process.argv.slice(2)
  if (role === 'writer' && args.length === 2) return writer(args[0], Number(args[1]))
  if (role === 'reader' && args.length === 4) {
    return reader(args[0], Number(args[1]), args[2], Number(args[3]))
  }
  console.error('usage: node replication.js writer <dir> <blocks>\n' +
    '       node replication.js reader <dir> <port> <key> <blocks>')
  process.exit(2)
}

main().then(() => {
  if (process.argv[2] === 'reader') process.exit(0)
}, (err) => {
  console.error(err)
  process.exit(1)
})
