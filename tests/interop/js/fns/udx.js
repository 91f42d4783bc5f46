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
