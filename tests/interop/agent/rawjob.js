// A scripted job-protocol client for scripts/e2e: @hyperswarm/secret-stream over TCP to a
// dvm-agent --listen, then a list of steps from a JSON file (or argv[3] as JSON):
//   {"send": {...message...}}                   write one NDJSON line
//   {"wait": {"type":"offer"}, "n": 1, "ms": 5000}   until the n-th received message whose
//                                               fields include all of these (deep equal
//                                               on the given keys) has arrived; else fail
//   {"none": {"type":"chunk"}}                  fail if such a message has been received
//   {"count": {"type":"chunk"}, "eq": 10}       fail unless exactly eq such messages so far
//   {"sleep": ms}
//   {"close": true}                             destroy the connection at once (crash)
// Every received line is printed on stdout; failures on stderr; exit 0 if every step passed.
'use strict'
const path = require('path')
const net = require('net')
const fs = require('fs')
const NoiseSecretStream = require(path.join(__dirname, '..', 'node_modules', '@hyperswarm/secret-stream'))

const [hostport, stepsArg] = process.argv.slice(2)
if (!hostport || !stepsArg) { console.error('usage: rawjob.js HOST:PORT STEPS.json|JSON'); process.exit(2) }
const steps = JSON.parse(stepsArg.trim().startsWith('[') ? stepsArg : fs.readFileSync(stepsArg, 'utf8'))
const [host, port] = [hostport.slice(0, hostport.lastIndexOf(':')), Number(hostport.slice(hostport.lastIndexOf(':') + 1))]

const got = []
let buf = ''
let closed = false
const sock = net.connect(port, host)
const s = new NoiseSecretStream(true, sock)
s.on('data', (d) => {
  buf += d.toString('utf8')
  let i
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1)
    if (!line.trim()) continue
    process.stdout.write(line + '\n')
    try { got.push(JSON.parse(line)) } catch { got.push({ _bad: line }) }
  }
})
s.on('error', () => {})
s.on('close', () => { closed = true })

const matches = (m, pat) => Object.keys(pat).every((k) => JSON.stringify(m[k]) === JSON.stringify(pat[k]))
const count = (pat) => got.filter((m) => matches(m, pat)).length
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
function fail (msg) { console.error('rawjob: ' + msg); s.destroy(); process.exit(1) }

async function main () {
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); setTimeout(() => reject(new Error('connect timeout')), 10000) })
  for (const st of steps) {
    if (st.send) s.write(JSON.stringify(st.send) + '\n')
    else if (st.wait) {
      const n = st.n || 1; const end = Date.now() + (st.ms || 5000)
      while (count(st.wait) < n) {
        if (Date.now() > end) fail(`timeout waiting for ${n} x ${JSON.stringify(st.wait)}`)
        if (closed) fail(`connection closed waiting for ${JSON.stringify(st.wait)}`)
        await sleep(5)
      }
    } else if (st.none) { if (count(st.none) > 0) fail(`unexpected ${JSON.stringify(st.none)}`) }
    else if ('count' in st) { const c = count(st.count); if (c !== st.eq) fail(`${c} x ${JSON.stringify(st.count)}, expected ${st.eq}`) }
    else if (st.sleep) await sleep(st.sleep)
    else if (st.close) { sock.destroy(); await sleep(50); process.exit(0) }
  }
  s.end()
  await sleep(50)
  process.exit(0)
}
main().catch((e) => fail(e.message))
