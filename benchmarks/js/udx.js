// The UDX benchmark's JS side: one end of a stream in its own process.
// Usage: node udx.js reader|writer BYTES. Prints {"port": P}, then reads {"port": Q} (where to
// send: the other end or a relay) from stdin. The writer sends BYTES and ends; the reader
// prints {"seconds": S} from its first packet to the end.
'use strict'

const UDX = require('udx-native')
const readline = require('readline')

async function main () {
  const [role, bytes] = process.argv.slice(2)
  const udx = new UDX()
  const socket = udx.createSocket()
  socket.bind(0, '127.0.0.1')
  process.stdout.write(JSON.stringify({ port: socket.address().port }) + '\n')
  const rl = readline.createInterface({ input: process.stdin })
  const line = await new Promise((resolve) => rl.once('line', resolve))
  const { port } = JSON.parse(line)
  const reader = role === 'reader'
  const stream = udx.createStream(reader ? 2 : 1)
  stream.on('error', () => {})
  stream.connect(socket, reader ? 1 : 2, port, '127.0.0.1')
  if (reader) {
    let n = 0
    let start = 0
    await new Promise((resolve) => {
      stream.on('data', (d) => { if (!start) start = process.hrtime.bigint(); n += d.length })
      stream.on('end', resolve)
    })
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    stream.end()
    process.stdout.write(JSON.stringify({ seconds, bytes: n }) + '\n')
    await new Promise((resolve) => setTimeout(resolve, 300))
  } else {
    const chunk = Buffer.alloc(65536, 7)
    let left = +bytes
    while (left > 0) {
      const n = Math.min(left, chunk.length)
      if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        await new Promise((resolve) => stream.once('drain', resolve))
      }
      left -= n
    }
    stream.end()
    stream.resume()
    await new Promise((resolve) => stream.once('close', resolve))
  }
  await socket.close()
  process.exit(0)
}

main().catch((err) => { console.error(err); process.exit(1) })
