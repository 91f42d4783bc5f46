// bogon 1.3.0 (isPrivate, isReserved, isBogon) and hyperdht 6.34.0's address matching
// (lib/holepuncher.js matchAddress) for the hyperswarm.hyperdht.addresses interop tests.
//   hyperdhtAddresses.classify(hosts)   -> [[isPrivate, isReserved, isBogon], ...]
//   hyperdhtAddresses.match(mine, theirs) -> the matching {host, port} of theirs, or null
'use strict'

const bogon = require('bogon')
const Holepuncher = require('hyperdht/lib/holepuncher.js')

module.exports = {
  'hyperdhtAddresses.classify': (hosts) =>
    hosts.map((h) => [bogon.isPrivate(h), bogon.isReserved(h), bogon.isBogon(h)]),
  'hyperdhtAddresses.match': (mine, theirs) => Holepuncher.matchAddress(mine, theirs)
}
