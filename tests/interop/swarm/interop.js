// Swarm interop orchestrator: a loopback hyperdht testnet (@hyperswarm/testnet), JS Hyperswarm
// peers (peer.js) and the C peer (`dvm-dht connect|serve --topic`), NDJSON both ways and
// 32 MiB transfers hashed on both sides. Last line: "swarm: N passed, N failed".
// usage: node interop.js PATH/TO/dvm-dht
const { spawn } = require('child_process')
const crypto = require('crypto')
const fs = require('fs')
const os = require('os')
const path = require('path')
const createTestnet = require('@hyperswarm/testnet')
const DHT = require('hyperdht')

const bin = process.argv[2]
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-interop-'))
const children = new Set()
let passed = 0
let failed = 0

function ok (name, cond, detail) {
  if (cond) { passed++; console.log(`ok   ${name}`) } else { failed++; console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`) }
}

function startPeer (kind, mode, topic, boot, input, seed) {
  const args = kind === 'c'
    ? [mode, '--topic', topic, '--bootstrap', boot, '--allow-local', '--host', '127.0.0.1',
        '--timeout', '20000', '--seed', seed, '--refresh-ms', '1000']
    : [path.join(__dirname, 'peer.js'), mode, topic, boot]
  const cmd = kind === 'c' ? bin : process.execPath
  const fd = fs.openSync(input, 'r')
  const env = { ...process.env, PEER_SEED: seed, PEER_TIMEOUT_MS: '20000' }
  const p = spawn(cmd, args, { stdio: [fd, 'pipe', 'pipe'], env, cwd: path.join(__dirname, '..') })
  fs.closeSync(fd)
  children.add(p)
  const st = { p, hash: crypto.createHash('sha256'), bytes: 0, out: [], err: '', t0: Date.now() }
  p.stdout.on('data', (d) => { st.hash.update(d); st.bytes += d.length; if (st.bytes < 1e6) st.out.push(d) })
  p.stderr.on('data', (d) => { st.err += d.toString() })
  st.done = new Promise((resolve) => p.on('close', (code) => { children.delete(p); st.code = code; resolve() }))
  st.waitFor = (re, ms) => new Promise((resolve) => {
    const t = setInterval(() => { if (re.test(st.err)) { clearInterval(t); resolve(true) } }, 20)
    setTimeout(() => { clearInterval(t); resolve(re.test(st.err)) }, ms)
  })
  return st
}

function ndjsonFile (name, who, n) {
  const f = path.join(tmp, name)
  let s = ''
  for (let i = 0; i < n; i++) s += JSON.stringify({ from: who, i, pad: 'x'.repeat(i % 200) }) + '\n'
  fs.writeFileSync(f, s)
  return { f, s }
}

function fileHash (f) { return crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex') }

const seeds = { a: '11'.repeat(32), b: '22'.repeat(32) }
const pk = (seed) => DHT.keyPair(Buffer.from(seed, 'hex')).publicKey.toString('hex')

async function pair (name, srvKind, cliKind, boot, srvIn, cliIn, check) {
  const topic = crypto.randomBytes(32).toString('hex')
  const srv = startPeer(srvKind, 'serve', topic, boot, srvIn, seeds.a)
  const announced = await srv.waitFor(/announced ok/, 15000)
  if (!announced) { ok(`${name}: server announced`, false, srv.err.trim()); srv.p.kill(); await srv.done; return }
  const cli = startPeer(cliKind, 'connect', topic, boot, cliIn, seeds.b)
  const timer = setTimeout(() => { srv.p.kill(); cli.p.kill() }, 60000)
  await Promise.all([srv.done, cli.done])
  clearTimeout(timer)
  const cliConn = /connected ([0-9a-f]{64})/.exec(cli.err)
  const srvConn = /connected ([0-9a-f]{64})/.exec(srv.err)
  ok(`${name}: both exit 0`, srv.code === 0 && cli.code === 0,
    `server ${srv.code} client ${cli.code}\n--- server stderr\n${srv.err}--- client stderr\n${cli.err}`)
  ok(`${name}: remote keys`, !!cliConn && !!srvConn && cliConn[1] === pk(seeds.a) && srvConn[1] === pk(seeds.b),
    `${cliConn && cliConn[1]} / ${srvConn && srvConn[1]}`)
  check(srv, cli)
}

async function main () {
  const testnet = await createTestnet(10, { host: '127.0.0.1' })
  const b = testnet.bootstrap[0]
  const boot = `${b.host}:${b.port}`
  const big = path.join(tmp, 'big-a'); const big2 = path.join(tmp, 'big-b')
  fs.writeFileSync(big, crypto.randomBytes(32 << 20)); fs.writeFileSync(big2, crypto.randomBytes(32 << 20))
  const hBig = fileHash(big); const hBig2 = fileHash(big2)
  const ndj = (srv, cli, sIn, cIn, name) => {
    const got = (st) => Buffer.concat(st.out).toString()
    ok(`${name}: server got client NDJSON`, got(srv) === cIn.s, `${got(srv).length} vs ${cIn.s.length} bytes`)
    ok(`${name}: client got server NDJSON`, got(cli) === sIn.s, `${got(cli).length} vs ${sIn.s.length} bytes`)
    const lines = got(srv).split('\n').filter(Boolean)
    ok(`${name}: NDJSON lines parse`, lines.length === 300 && lines.every((l) => JSON.parse(l).from === 'client'))
  }
  const sIn = ndjsonFile('srv.ndjson', 'server', 300)
  const cIn = ndjsonFile('cli.ndjson', 'client', 300)
  for (const [s, c] of [['js', 'c'], ['c', 'js'], ['c', 'c']]) {
    const name = `${s} server <-> ${c} client NDJSON`
    await pair(name, s, c, boot, sIn.f, cIn.f, (srv, cli) => ndj(srv, cli, sIn, cIn, name))
  }
  for (const [s, c] of [['js', 'c'], ['c', 'js'], ['c', 'c']]) {
    const name = `${s} server <-> ${c} client 32 MiB each way`
    const t0 = Date.now()
    await pair(name, s, c, boot, big, big2, (srv, cli) => {
      const hs = srv.hash.digest('hex'); const hc = cli.hash.digest('hex')
      ok(`${name}: server received = client sent`, hs === hBig2 && srv.bytes === 32 << 20, `${srv.bytes} bytes`)
      ok(`${name}: client received = server sent`, hc === hBig && cli.bytes === 32 << 20, `${cli.bytes} bytes`)
      console.log(`     (${((Date.now() - t0) / 1000).toFixed(2)} s including joins)`)
    })
  }
  // nobody serves this topic: the C client must give up with a clear message, not hang
  {
    const topic = crypto.randomBytes(32).toString('hex')
    const f = path.join(tmp, 'empty'); fs.writeFileSync(f, '')
    const t0 = Date.now()
    const p = spawn(bin, ['connect', '--topic', topic, '--bootstrap', boot, '--allow-local', '--host',
      '127.0.0.1', '--timeout', '3000'], { stdio: [fs.openSync(f, 'r'), 'pipe', 'pipe'] })
    children.add(p)
    let err = ''
    p.stderr.on('data', (d) => { err += d })
    const code = await new Promise((resolve) => p.on('close', resolve))
    children.delete(p)
    ok('C client without a server fails clearly', code === 1 && /timeout: no connection/.test(err) && Date.now() - t0 < 10000, err)
  }
  await testnet.destroy()
}

main().catch((e) => { console.log('FAIL exception', e); failed++ }).finally(() => {
  for (const c of children) c.kill('SIGKILL')
  fs.rmSync(tmp, { recursive: true, force: true })
  console.log(`swarm: ${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
})
