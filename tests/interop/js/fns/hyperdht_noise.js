// hyperdht 6.34.0's connection handshake (lib/noise-wrap.js) for the
// hyperswarm.hyperdht.noise_wrap interop tests. Payloads travel as noisePayload bytes.
//   hyperdhtNoise.clientStart(handle, seed, serverPublicKey, payload) -> msg1
//   hyperdhtNoise.clientFinish(handle, msg2) -> { payload, keys }
//   hyperdhtNoise.serverReply(seed, msg1, payload) -> { msg2, payload, keys }
//   hyperdhtNoise.seal(secret, payload) -> sealed holepunch payload (lib/secure-payload.js)
//   hyperdhtNoise.open(secret, sealed) -> holepunchPayload bytes, or null
// keys: { publicKey, remotePublicKey, hash, tx, rx, holepunchSecret }.
'use strict'

const c = require('compact-encoding')
const crypto = require('hypercore-crypto')
const NoiseWrap = require('hyperdht/lib/noise-wrap.js')
const m = require('hyperdht/lib/messages.js')
const SecurePayload = require('hyperdht/lib/secure-payload.js')

const clients = new Map()

function keys(final) {
  return {
    publicKey: final.publicKey,
    remotePublicKey: final.remotePublicKey,
    hash: final.hash,
    tx: final.tx,
    rx: final.rx,
    holepunchSecret: final.holepunchSecret
  }
}

module.exports = {
  'hyperdhtNoise.clientStart': (handle, seed, serverPublicKey, payload) => {
    const wrap = new NoiseWrap(crypto.keyPair(seed), serverPublicKey)
    clients.set(handle, wrap)
    return wrap.send(c.decode(m.noisePayload, payload))
  },
  'hyperdhtNoise.clientFinish': (handle, msg2) => {
    const wrap = clients.get(handle)
    clients.delete(handle)
    const payload = wrap.recv(msg2)
    return { payload: c.encode(m.noisePayload, payload), keys: keys(wrap.final()) }
  },
  'hyperdhtNoise.serverReply': (seed, msg1, payload) => {
    const wrap = new NoiseWrap(crypto.keyPair(seed), null)
    const remote = wrap.recv(msg1)
    const msg2 = wrap.send(c.decode(m.noisePayload, payload))
    return { msg2, payload: c.encode(m.noisePayload, remote), keys: keys(wrap.final()) }
  },
  'hyperdhtNoise.seal': (secret, payload) =>
    new SecurePayload(secret).encrypt(c.decode(m.holepunchPayload, payload)),
  'hyperdhtNoise.open': (secret, sealed) => {
    const out = new SecurePayload(secret).decrypt(sealed)
    return out === null ? null : c.encode(m.holepunchPayload, out)
  }
}
