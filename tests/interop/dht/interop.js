// Interop suite for the C DHT node (dvm-dht) against hyperdht / @hyperswarm/testnet.
// Usage: node interop.js /path/to/dvm-dht
// Prints one "ok N - name" / "not ok N - name" line per check and "dht: P passed, F failed".
'use strict'
const path = require('path')
const { spawn } = require('child_process')
const crypto = require('crypto')
const nm = path.join(__dirname, '..', 'node_modules')
const DHT = require(path.join(nm, 'hyperdht'))
const createTestnet = require(path.join(nm, '@hyperswarm/testnet'))

const BIN = process.argv[2]
const children = new Set()
let passed = 0
let failed = 0

function check (name, cond, detail) {
  if (cond) { passed++; console.log(`ok ${passed + failed} - ${name}`) } else {
    failed++; console.log(`not ok ${passed + failed} - ${name}${detail ? ' # ' + detail : ''}`)
  }
}

function run (args, { wait = true, timeoutMs = 20000 } = {}) {
  const p = spawn(BIN, ['--host', '127.0.0.1', '--allow-local', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(p)
  const lines = []
  let buf = ''
  const waiters = []
  p.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i); buf = buf.slice(i + 1); lines.push(l)
      for (const w of [...waiters]) if (w.re.test(l)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(l) }
    }
  })
  let stderr = ''
  p.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise((resolve) => p.on('exit', (code) => { children.delete(p); resolve(code) }))
  const proc = {
    p, lines, exited,
    get stderr () { return stderr },
    waitLine (re, ms = timeoutMs) {
      const l = lines.find((x) => re.test(x))
      if (l) return Promise.resolve(l)
      return new Promise((resolve, reject) => {
        const w = { re, resolve }
        waiters.push(w)
        setTimeout(() => { const i = waiters.indexOf(w); if (i >= 0) { waiters.splice(i, 1); reject(new Error('timeout waiting for ' + re + ' stderr=' + stderr.slice(-500))) } }, ms)
      })
    },
    kill () { if (p.exitCode === null) p.kill('SIGTERM') }
  }
  if (!wait) return proc
  return Promise.race([exited, sleep(timeoutMs).then(() => { proc.kill(); return 'timeout' })]).then((code) => ({ code, lines, stderr }))
}

function sleep (ms) { return new Promise((resolve) => setTimeout(resolve, ms).unref()) }
function hex (b) { return Buffer.from(b).toString('hex') }

async function startCNode (bootstrap) {
  const args = bootstrap ? ['--port', '0', '--bootstrap', bootstrap] : ['--port', '0', '--bootstrap', 'none']
  const proc = run(args, { wait: false })
  const l = await proc.waitLine(/^listening /)
  await proc.waitLine(/^ready$/)
  const port = Number(l.split(':')[1])
  return { proc, port }
}

async function jsLookup (dht, topic) {
  const res = []
  for await (const r of dht.lookup(topic)) {
    for (const p of r.peers) res.push({ pk: hex(p.publicKey), from: r.from, relays: p.relayAddresses })
  }
  return res
}

async function main () {
  const cleanups = []
  try {
    // --- A: a dvm-dht bootstrap node, two more C persistent nodes, JS testnet bootstrapping from it
    const a = await startCNode(null)
    check('dvm-dht bootstrap node starts and prints its address', a.port > 0)
    const boot = `127.0.0.1:${a.port}`
    const c1 = await startCNode(boot)
    const c2 = await startCNode(boot)
    check('C persistent nodes bootstrap from dvm-dht', (await c1.proc.waitLine(/^persistent /, 5000).catch(() => null)) !== null)

    const tn = await createTestnet(6, { host: '127.0.0.1', bootstrap: [{ host: '127.0.0.1', port: a.port }] })
    cleanups.push(() => tn.destroy())
    const persistent = tn.nodes.filter((n) => n.id !== null).length
    check('JS testnet nodes bootstrap from a dvm-dht node and become persistent', persistent === 6, `persistent=${persistent}`)
    const cIds = [a.port, c1.port, c2.port].map((p) => hex(DHT.hash(Buffer.from([127, 0, 0, 1, p & 255, p >> 8]))))
    let inTable = 0
    for (const n of tn.nodes) for (const id of cIds) if (n.table.has(Buffer.from(id, 'hex'))) inTable++
    check('C nodes (validated ids) are in JS routing tables', inTable > 0, `entries=${inTable}`)
    const pong = await tn.nodes[1].ping({ host: '127.0.0.1', port: a.port }).catch((e) => e)
    check('JS PING to dvm-dht gets a reply carrying the validated id', pong && pong.from && pong.from.id && hex(pong.from.id) === cIds[0])

    // --- C announces, JS lookup finds the record (stored by JS nodes, which verify signatures)
    const topic1 = crypto.randomBytes(32)
    const seed1 = crypto.randomBytes(32)
    const kp1 = DHT.keyPair(seed1)
    const ann = await run(['announce', hex(topic1), '--seed', hex(seed1), '--bootstrap', boot, '--relay', '127.0.0.1:1234'])
    check('C announce completes', ann.code === 0, ann.lines.join('|') + ann.stderr.slice(-300))
    const client = tn.createNode()
    await client.fullyBootstrapped()
    const found1 = await jsLookup(client, topic1)
    const mine = found1.filter((r) => r.pk === hex(kp1.publicKey))
    const jsPorts = new Set(tn.nodes.map((n) => n.address().port))
    const fromJs = mine.filter((r) => jsPorts.has(r.from.port))
    check('JS lookup finds the C-announced record', mine.length > 0, `records=${found1.length}`)
    check('JS nodes stored it (their signature check passed)', fromJs.length > 0, `fromJs=${fromJs.length}`)
    check('relay addresses survive the round trip', mine.some((r) => r.relays.some((x) => x.port === 1234)))

    // --- JS announces, C lookup finds it
    const topic2 = crypto.randomBytes(32)
    const kp2 = DHT.keyPair()
    await client.announce(topic2, kp2, [{ host: '127.0.0.1', port: 4321 }]).finished()
    const lk = await run(['lookup', hex(topic2), '--bootstrap', boot])
    check('C lookup finds the JS-announced record', lk.code === 0 && lk.lines.some((l) => l.startsWith('peer ' + hex(kp2.publicKey))), lk.lines.join('|'))
    check('C lookup decodes the relay address', lk.lines.some((l) => l.includes('127.0.0.1:4321')))

    // --- C announcer (self-announce to the 3 closest): JS findPeer gets the route record
    const seedS = crypto.randomBytes(32)
    const kpS = DHT.keyPair(seedS)
    const srv = run(['serve', '--seed', hex(seedS), '--bootstrap', boot], { wait: false })
    const rl = await srv.waitLine(/^relays /).catch(() => '')
    check('C announcer publishes 3 relay addresses', rl.split(' ').length === 4, rl)
    let fpFound = false
    for await (const r of client.findPeer(kpS.publicKey)) if (r.peer && hex(r.peer.publicKey) === hex(kpS.publicKey)) fpFound = true
    check('JS findPeer finds the C self-announce (JS/C relays verified the signature)', fpFound)
    srv.kill()

    // --- "ip@host:port" bootstrap: the suggested IP does not answer, DNS (localhost) does
    const fbk = await run(['lookup', hex(topic2), '--bootstrap', `127.0.0.2@localhost:${a.port}`])
    check('ip@host bootstrap falls back to DNS when the suggested IP is silent', fbk.code === 0 && fbk.lines.some((l) => l.startsWith('peer ' + hex(kp2.publicKey))), fbk.lines.join('|'))

    // --- unannounce removes the record
    const un = await run(['unannounce', hex(topic1), '--seed', hex(seed1), '--bootstrap', boot])
    check('C unannounce completes', un.code === 0, un.lines.join('|'))
    const found2 = await jsLookup(client, topic1)
    check('after unannounce, JS lookup no longer finds the record', !found2.some((r) => r.pk === hex(kp1.publicKey)), `left=${found2.length}`)
    const lk2 = await run(['lookup', hex(topic1), '--bootstrap', boot])
    check('after unannounce, C lookup no longer finds it', lk2.code === 0 && !lk2.lines.some((l) => l.startsWith('peer ')), lk2.lines.join('|'))

    // --- C nodes bootstrap from a pure JS testnet
    const tn2 = await createTestnet(5, { host: '127.0.0.1' })
    cleanups.push(() => tn2.destroy())
    const jb = `127.0.0.1:${tn2.bootstrap[0].port}`
    const c3 = await startCNode(jb)
    const per3 = await c3.proc.waitLine(/^persistent /, 5000).catch(() => null)
    check('C node bootstraps from a JS testnet and becomes persistent', per3 !== null)
    await sleep(200)
    const id3 = Buffer.from(hex(DHT.hash(Buffer.from([127, 0, 0, 1, c3.port & 255, c3.port >> 8]))), 'hex')
    check('JS testnet nodes add the C node to their tables', tn2.nodes.some((n) => n.table.has(id3)))
    const topic3 = crypto.randomBytes(32)
    const seed3 = crypto.randomBytes(32)
    const ann3 = await run(['announce', hex(topic3), '--seed', hex(seed3), '--bootstrap', jb])
    check('C announce on a JS-only testnet completes', ann3.code === 0, ann3.lines.join('|'))
    const client2 = tn2.createNode()
    await client2.fullyBootstrapped()
    const found3 = await jsLookup(client2, topic3)
    check('JS lookup on the JS testnet finds the C record', found3.some((r) => r.pk === hex(DHT.keyPair(seed3).publicKey)))
    const topic4 = crypto.randomBytes(32)
    const kp4 = DHT.keyPair()
    await client2.announce(topic4, kp4, []).finished()
    const lk4 = await run(['lookup', hex(topic4), '--bootstrap', jb])
    check('C lookup on the JS testnet finds the JS record', lk4.lines.some((l) => l.startsWith('peer ' + hex(kp4.publicKey))), lk4.lines.join('|'))
    // self-announce route + FIND_PEER served by C persistent nodes
    const kp5 = DHT.keyPair()
    await client.announce(DHT.hash(kp5.publicKey), kp5, []).finished()
    const fp = await run(['find-peer', hex(kp5.publicKey), '--bootstrap', boot])
    check('C find-peer finds a JS self-announce', fp.lines.some((l) => l.startsWith('peer ' + hex(kp5.publicKey))), fp.lines.join('|'))

    // --- JS peers connect through a C-only DHT: C nodes store the server's self-announce
    // route and relay PEER_HANDSHAKE (and PEER_HOLEPUNCH if needed) between JS peers
    const ctn = run(['testnet', '--nodes', '8', '--port', '0', '--bootstrap', 'none'], { wait: false })
    const cl = await ctn.waitLine(/^listening /)
    await ctn.waitLine(/^testnet-ready /)
    const cboot = [{ host: '127.0.0.1', port: Number(cl.split(':')[1]) }]
    const srvNode = new DHT({ bootstrap: cboot, host: '127.0.0.1' })
    const cliNode = new DHT({ bootstrap: cboot, host: '127.0.0.1' })
    cleanups.push(() => srvNode.destroy(), () => cliNode.destroy())
    await srvNode.fullyBootstrapped()
    await cliNode.fullyBootstrapped()
    const srvKp = DHT.keyPair()
    const server = srvNode.createServer((conn) => { conn.on('error', () => {}); conn.end('hello from js via c') })
    await server.listen(srvKp)
    let msg = null
    try {
      const conn = cliNode.connect(srvKp.publicKey)
      conn.on('error', () => {})
      msg = await Promise.race([new Promise((resolve, reject) => { conn.once('data', (d) => resolve(d.toString())); conn.once('error', reject) }), sleep(15000).then(() => null)])
      conn.destroy()
    } catch (e) { msg = 'error ' + e.message }
    check('JS client connects to a JS server through C relays (self-announce route + PEER_HANDSHAKE)', msg === 'hello from js via c', String(msg))
    // storage on C nodes only: JS announce (signatures checked by C), JS lookup served by C
    const topic6 = crypto.randomBytes(32)
    const kp6 = DHT.keyPair()
    await srvNode.announce(topic6, kp6, [{ host: '127.0.0.1', port: 7777 }]).finished()
    const found6 = await jsLookup(cliNode, topic6)
    check('JS announce + JS lookup over a C-only DHT (C nodes store and serve records)', found6.some((r) => r.pk === hex(kp6.publicKey) && r.relays.some((x) => x.port === 7777)), `found=${found6.length}`)
    await srvNode.unannounce(topic6, kp6)
    const found7 = await jsLookup(cliNode, topic6)
    check('JS unannounce on C nodes removes the record', !found7.some((r) => r.pk === hex(kp6.publicKey)), `left=${found7.length}`)
    await server.close()
    ctn.kill()

    for (const c of [a, c1, c2, c3]) c.proc.kill()
  } catch (e) {
    check('suite ran to completion', false, e && e.stack)
  } finally {
    for (const f of cleanups.reverse()) await f().catch(() => {})
    for (const p of children) if (p.exitCode === null) p.kill('SIGKILL')
  }
  console.log(`dht: ${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
}

main()
