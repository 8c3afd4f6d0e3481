// Swarm bench: median time from client join to the connection event, C<->C vs JS<->JS, over
// REPS repetitions on a loopback testnet (server joins first and waits for its announce).
// Also the RSS of an idle C peer (announced, no connection) and of a connected C client.
// Last line: swarm_connect_ms_ratio_c_over_js=<x>. usage: node bench.js PATH/TO/dvm-dht [REPS]
const { spawn } = require('child_process')
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const createTestnet = require('@hyperswarm/testnet')

const bin = process.argv[2]
const reps = Number(process.argv[3] || 8)
const children = new Set()

function start (kind, mode, topic, boot) {
  const args = kind === 'c'
    ? [mode, '--topic', topic, '--bootstrap', boot, '--allow-local', '--host', '127.0.0.1', '--timeout', '20000']
    : [path.join(__dirname, 'peer.js'), mode, topic, boot]
  const p = spawn(kind === 'c' ? bin : process.execPath, args, { stdio: ['pipe', 'ignore', 'pipe'], cwd: path.join(__dirname, '..') })
  children.add(p)
  const st = { p, err: '' }
  p.stderr.on('data', (d) => { st.err += d })
  st.done = new Promise((resolve) => p.on('close', (code) => { children.delete(p); st.code = code; resolve() }))
  st.waitFor = (re, ms) => new Promise((resolve) => {
    const t = setInterval(() => { const m = re.exec(st.err); if (m) { clearInterval(t); resolve(m) } }, 2)
    setTimeout(() => { clearInterval(t); resolve(re.exec(st.err)) }, ms)
  })
  return st
}

function rssKb (pid) {
  try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) } catch { return NaN }
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2 }

async function main () {
  const testnet = await createTestnet(10, { host: '127.0.0.1' })
  const boot = `${testnet.bootstrap[0].host}:${testnet.bootstrap[0].port}`
  const res = { c: [], js: [] }
  const rss = { idle: [], connected: [] }
  for (let i = 0; i < reps; i++) {
    for (const kind of ['c', 'js']) {
      const topic = crypto.randomBytes(32).toString('hex')
      const srv = start(kind, 'serve', topic, boot)
      if (!(await srv.waitFor(/announced ok/, 15000))) throw new Error(`${kind} server did not announce: ${srv.err}`)
      if (kind === 'c') { await new Promise((resolve) => setTimeout(resolve, 300)); rss.idle.push(rssKb(srv.p.pid)) }
      const cli = start(kind, 'connect', topic, boot)
      const m = await cli.waitFor(/connected \S+ .*?([\d.]+)ms/, 15000)
      if (!m) throw new Error(`${kind} client did not connect: ${cli.err}`)
      res[kind].push(Number(m[1]))
      if (kind === 'c') { await new Promise((resolve) => setTimeout(resolve, 300)); rss.connected.push(rssKb(cli.p.pid)) }
      srv.p.stdin.end(); cli.p.stdin.end()
      const t = setTimeout(() => { srv.p.kill(); cli.p.kill() }, 10000)
      await Promise.all([srv.done, cli.done])
      clearTimeout(t)
    }
  }
  await testnet.destroy()
  const mc = median(res.c); const mj = median(res.js)
  console.log(`swarm_connect_ms_c=${res.c.map((x) => x.toFixed(1)).join(',')}`)
  console.log(`swarm_connect_ms_js=${res.js.map((x) => x.toFixed(1)).join(',')}`)
  console.log(`swarm_connect_ms_median_c=${mc.toFixed(2)}`)
  console.log(`swarm_connect_ms_median_js=${mj.toFixed(2)}`)
  console.log(`swarm_c_rss_idle_kb_median=${median(rss.idle)}`)
  console.log(`swarm_c_rss_connected_kb_median=${median(rss.connected)}`)
  console.log(`swarm_connect_ms_ratio_c_over_js=${(mc / mj).toFixed(3)}`)
}
main().catch((e) => { console.log('bench failed:', e.message); process.exitCode = 1 }).finally(() => { for (const c of children) c.kill('SIGKILL') })
