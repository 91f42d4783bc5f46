// hyperdht 6.34.0 message codecs (lib/messages.js) and constants (lib/constants.js) for the
// hyperswarm.hyperdht.messages interop tests. Values travel as the JS objects the codecs take
// and give (camelCase keys, {host, port} addresses).
//   hyperdhtMessages.encode(name, value) -> bytes of c.encode
//   hyperdhtMessages.decode(name, bytes) -> object of c.decode (throws what the codec throws)
//   hyperdhtMessages.constants()         -> COMMANDS, FIREWALL, ERROR, NS, BOOTSTRAP_NODES
'use strict'

const c = require('compact-encoding')
const messages = require('hyperdht/lib/messages.js')
const constants = require('hyperdht/lib/constants.js')

const CODECS = {
  peer: messages.peer,
  peers: messages.peers,
  lookupRawReply: messages.lookupRawReply,
  announce: messages.announce,
  mutableSignable: messages.mutableSignable,
  mutablePutRequest: messages.mutablePutRequest,
  mutableGetResponse: messages.mutableGetResponse,
  handshake: messages.handshake,
  holepunch: messages.holepunch,
  noisePayload: messages.noisePayload,
  holepunchPayload: messages.holepunchPayload,
  pluginRequest: messages.pluginRequest,
  uint: c.uint
}

function codec(name) {
  const enc = CODECS[name]
  if (!enc) throw new Error('unknown hyperdht codec ' + name)
  return enc
}

// lookupRawReply writes its peers as already-encoded records (persistent.js stores them so):
// a peer given as an object is encoded with the peer codec first.
function prepare(name, value) {
  if (name !== 'lookupRawReply') return value
  return {
    ...value,
    peers: value.peers.map((p) => (p instanceof Uint8Array ? p : c.encode(messages.peer, p)))
  }
}

module.exports = {
  'hyperdhtMessages.encode': (name, value) => c.encode(codec(name), prepare(name, value)),
  'hyperdhtMessages.decode': (name, buf) => c.decode(codec(name), buf),
  'hyperdhtMessages.constants': () => ({
    COMMANDS: constants.COMMANDS,
    FIREWALL: constants.FIREWALL,
    ERROR: constants.ERROR,
    NS: constants.NS,
    BOOTSTRAP_NODES: constants.BOOTSTRAP_NODES
  })
}
