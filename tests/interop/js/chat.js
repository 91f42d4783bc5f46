// The tutorial's nickname chat ("Making your first Pear app", part 2) without its window: the
// same data model and RPC as the tutorial's app.js, driven through stdin/stdout with the same
// command line and output lines as examples/chat.py, so that tests can run rooms that mix the
// two. Differences from the tutorial, all outside the wire and disk formats:
// - the DHT binds to 127.0.0.1 (REFERENCE.md appendix C) and joins --bootstrap;
// - the topic is refreshed every 2 s during the first 30 s and while no peer is connected (a
//   JS swarm otherwise looks again only after 10 minutes when two peers join at the same
//   moment, even if a third one is already there);
// - a connection that closes during getKey is not fatal (the tutorial's app crashes there).
// Usage: node chat.js [TOPIC] [-s DIR] [--nick NAME] --bootstrap HOST:PORT[,...]
'use strict'

const Hyperswarm = require('hyperswarm')
const HyperDHT = require('hyperdht')
const Corestore = require('corestore')
const Hyperbee = require('hyperbee')
const ProtomuxRPC = require('protomux-rpc')
const crypto = require('hypercore-crypto')
const b4a = require('b4a')
const readline = require('readline')
const os = require('os')
const path = require('path')
const fs = require('fs')

function parseArgs (argv) {
  const args = { topic: null, storage: null, nick: null, bootstrap: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-s' || a === '--storage') args.storage = argv[++i]
    else if (a === '--nick') args.nick = argv[++i]
    else if (a === '--bootstrap') args.bootstrap = argv[++i].split(',').filter(Boolean)
    else args.topic = a
  }
  return args
}

const args = parseArgs(process.argv.slice(2))
const out = (line) => process.stdout.write(line + '\n')
const short = (key) => b4a.toString(key, 'hex').slice(0, 8)

const storage = args.storage || fs.mkdtempSync(path.join(os.tmpdir(), 'chat-'))
const store = new Corestore(storage)
const userCore = store.get({ name: 'local', valueEncoding: 'json' })
const peerCoreKeys = new Hyperbee(store.get({ name: 'peerCoreKeys' }), {
  keyEncoding: 'binary',
  valueEncoding: 'binary'
})
const dht = new HyperDHT({ bootstrap: args.bootstrap, host: '127.0.0.1' })
const swarm = new Hyperswarm({ dht })
const known = new Map() // core key hex -> { core, nickname }
const connected = new Map() // swarm key hex -> { rpc, coreKey }
let nickname = ''

function nameOf (remotePublicKey) {
  const c = connected.get(b4a.toString(remotePublicKey, 'hex'))
  if (c && c.coreKey) {
    const k = known.get(b4a.toString(c.coreKey, 'hex'))
    if (k && k.nickname) return k.nickname
  }
  return short(remotePublicKey)
}

function trackPeerCore (coreKey) {
  const id = b4a.toString(coreKey, 'hex')
  if (known.has(id) || b4a.equals(coreKey, userCore.key)) return
  const core = store.get({ key: coreKey, valueEncoding: 'json' })
  const peer = { core, nickname: null }
  known.set(id, peer)
  const reload = async () => {
    if (core.length === 0) return
    let state
    try {
      state = await core.get(core.length - 1)
    } catch (err) {
      out(`! ${short(coreKey)}: unreadable nickname block (${err.message})`)
      return
    }
    if (!state || typeof state.nickname !== 'string' || state.nickname === peer.nickname) return
    const old = peer.nickname
    peer.nickname = state.nickname
    if (old !== null) return out(`* ${old} is now ${state.nickname}`)
    const remotes = [...connected.entries()].filter(([, c]) => c.coreKey && b4a.equals(c.coreKey, coreKey))
    for (const [remote] of remotes) out(`* ${remote.slice(0, 8)} is ${state.nickname}`)
    if (remotes.length === 0) out(`* known peer: ${state.nickname}`)
  }
  core.ready().then(reload, () => {})
  core.on('append', reload)
}

function count () {
  out(`* peers: ${connected.size}`)
}

swarm.on('connection', async (connection) => {
  const { remotePublicKey } = connection
  const id = b4a.toString(remotePublicKey, 'hex')
  store.replicate(connection)
  const rpc = new ProtomuxRPC(connection)
  const entry = { rpc, coreKey: null }
  connected.set(id, entry)
  rpc.respond('getKey', () => userCore.key)
  rpc.respond('message', async (data) => {
    let message
    try {
      message = JSON.parse(b4a.toString(data || b4a.alloc(0))).message
      if (typeof message !== 'string') throw new Error('not a string')
    } catch {
      out(`! ${nameOf(remotePublicKey)} sent a message that is not chat JSON`)
      return
    }
    out(`<${nameOf(remotePublicKey)}> ${message}`)
  })
  connection.on('error', () => {})
  connection.once('close', () => {
    const name = nameOf(remotePublicKey)
    if (connected.get(id) === entry) connected.delete(id)
    out(`* ${name} left`)
    count()
  })
  out(`* ${short(remotePublicKey)} joined`)
  count()
  try {
    const stored = await peerCoreKeys.get(remotePublicKey)
    if (stored) {
      entry.coreKey = stored.value
    } else {
      const coreKey = await rpc.request('getKey')
      if (!coreKey || coreKey.byteLength !== 32) {
        out(`! ${short(remotePublicKey)} sent a bad core key (${coreKey ? coreKey.byteLength : 0} bytes)`)
        return
      }
      entry.coreKey = coreKey
      trackPeerCore(coreKey)
      await peerCoreKeys.put(remotePublicKey, coreKey)
    }
    trackPeerCore(entry.coreKey)
    const k = known.get(b4a.toString(entry.coreKey, 'hex'))
    if (k && k.nickname) out(`* ${short(remotePublicKey)} is ${k.nickname}`)
  } catch {
    // the connection closed mid-request (a duplicate dropped): normal
  }
})

async function send (message) {
  const data = b4a.from(JSON.stringify({ message }))
  await Promise.allSettled([...connected.values()].map((c) => c.rpc.request('message', data)))
}

async function handleLine (line) {
  if (!line.trim()) return true
  if (line.startsWith('/')) {
    const [command, ...rest] = line.slice(1).split(' ')
    const arg = rest.join(' ').trim()
    if (command === 'quit') return false
    if (command === 'nick') {
      if (!arg) out('! usage: /nick NAME')
      else await userCore.append({ nickname: arg })
      return true
    }
    if (command === 'peers') {
      const names = [...connected.keys()].map((k) => nameOf(b4a.from(k, 'hex'))).sort()
      out(`* peers: ${names.length}` + (names.length ? ` (${names.join(', ')})` : ''))
      return true
    }
    if (command === 'known') {
      const list = [...known.entries()].map(([k, p]) => `${k.slice(0, 8)} (${p.nickname || '?'})`).sort()
      out('* known: ' + (list.length ? list.join(', ') : 'nobody'))
      return true
    }
    out(`! unknown command /${command} (try /nick NAME, /peers, /known, /quit)`)
    return true
  }
  out(`<${nickname}> ${line}`)
  await send(line)
  return true
}

async function main () {
  await userCore.ready()
  await peerCoreKeys.ready()
  let latest = userCore.length ? (await userCore.get(userCore.length - 1)).nickname : null
  if (latest === null || (args.nick && args.nick !== latest)) {
    latest = args.nick || `User ${Math.floor(1000 * Math.random())}`
    await userCore.append({ nickname: latest })
  }
  nickname = latest
  userCore.on('append', async () => {
    const state = await userCore.get(userCore.length - 1)
    if (state && state.nickname !== nickname) {
      nickname = state.nickname
      out(`you are ${nickname}`)
    }
  })
  for await (const { value: coreKey } of peerCoreKeys.createReadStream()) trackPeerCore(coreKey)

  const topic = args.topic ? b4a.from(args.topic, 'hex') : crypto.randomBytes(32)
  out(`topic: ${b4a.toString(topic, 'hex')}`)
  out(`core key: ${b4a.toString(userCore.key, 'hex')}`)
  out(`you are ${nickname}`)
  const discovery = swarm.join(topic, { client: true, server: true })
  const joinedAt = Date.now()
  const refresher = setInterval(() => {
    if (connected.size === 0 || Date.now() - joinedAt < 30000) discovery.refresh().catch(() => {})
  }, 2000)

  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (!(await handleLine(line))) break
  }
  clearInterval(refresher)
  await swarm.destroy()
  await store.close()
  process.exit(0)
}

main().catch((err) => {
  out(`! ${err.stack || err}`)
  process.exit(1)
})
