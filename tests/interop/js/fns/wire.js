// The replication message codecs of hypercore/lib/messages.js (wire.*), for
// tests/interop/test_wire_interop.py. Messages travel as the plain objects the JS codecs take.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const c = require('compact-encoding')
const Hypercore = require('hypercore')
const messages = require('hypercore/lib/messages')

function codecOf (name) {
  const enc = messages.wire[name]
  if (!enc) throw new Error('unknown wire message ' + name)
  return enc
}

// JSON has no Uint32Array: a bitfield arrives as an array of words.
function prepare (name, msg) {
  if (name === 'bitfield') return { ...msg, bitfield: Uint32Array.from(msg.bitfield) }
  return msg
}

// Decodes one message and reports how many bytes the codec left unread.
function decode (name, buf) {
  const state = c.state(0, buf.byteLength, buf)
  const value = codecOf(name).decode(state)
  return { value, rest: state.end - state.start }
}

function encode (name, msg) {
  return c.encode(codecOf(name), prepare(name, msg))
}

module.exports = {
  'wire.encode': encode,
  'wire.decode': decode,

  // encode, then decode the result: what a JS peer makes of its own message
  'wire.roundTrip': (name, msg) => decode(name, encode(name, msg)).value,

  // The channel a JS replicator creates: protocol, handshake codec and message codecs, by
  // their names in messages.wire. A stand-in protomux records the options and refuses the
  // channel, so no peer is made.
  'wire.channel': async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hypertrio-wire-'))
    const core = new Hypercore(dir)
    try {
      await core.ready()
      const nameOf = (enc) => Object.keys(messages.wire).find((k) => messages.wire[k] === enc)
      let seen = null
      const mux = {
        opened: () => false,
        createChannel: (opts) => {
          seen = opts
          return null
        }
      }
      core.replicator._makePeer(mux)
      if (seen === null) throw new Error('no channel was created')
      return {
        protocol: seen.protocol,
        aliases: seen.aliases,
        handshake: nameOf(seen.handshake),
        messages: seen.messages.map((m) => nameOf(m.encoding) || null)
      }
    } finally {
      await core.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
