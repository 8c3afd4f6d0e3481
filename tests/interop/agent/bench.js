// Load generator for scripts/bench/agent.sh: N concurrent customers (one secret-stream TCP
// connection each) against one dvm-agent, paying with real locked Cashu tokens (one per
// line in TOKENS_FILE, locked to the agent). Every job asks the dev LLM for stamped tokens
// (each chunk = the dev LLM's monotonic send time in ns + " "); on receipt the client
// subtracts it (same CLOCK_MONOTONIC) = dev LLM -> agent -> customer latency per chunk.
// Usage: node bench.js HOST:PORT TOKENS_FILE N CHUNKS TOKEN_MS
'use strict'
const path = require('path')
const net = require('net')
const fs = require('fs')
const NoiseSecretStream = require(path.join(__dirname, '..', 'node_modules', '@hyperswarm/secret-stream'))

const [hostport, tokFile, nArg, chunksArg, msArg] = process.argv.slice(2)
const N = Number(nArg); const CHUNKS = Number(chunksArg); const TOKEN_MS = Number(msArg)
const tokens = fs.readFileSync(tokFile, 'utf8').split('\n').filter((l) => l.startsWith('cashu'))
const host = hostport.slice(0, hostport.lastIndexOf(':')); const port = Number(hostport.slice(hostport.lastIndexOf(':') + 1))
const lat = []; const steady = []; let done = 0; let failed = 0; let chunks = 0
const t0 = process.hrtime.bigint()

function job (i) {
  return new Promise((resolve) => {
    const s = new NoiseSecretStream(true, net.connect(port, host))
    let buf = ''; const id = 'b' + i; let finished = false
    const finish = (ok) => { if (finished) return; finished = true; if (ok) done++; else failed++; s.destroy(); resolve() }
    const pay = () => { const t = tokens.pop(); if (!t) return finish(false); s.write(JSON.stringify({ type: 'payment', id, token: t }) + '\n') }
    s.on('connect', () => {
      const input = `bench [[dev:{"stamp":true,"multi":false,"n":${CHUNKS},"token_ms":${TOKEN_MS}}]]`
      s.write(JSON.stringify({ type: 'request', id, kind: 5100, input, budget: 1000 }) + '\n')
    })
    s.on('data', (d) => {
      const now = process.hrtime.bigint()
      buf += d.toString('utf8')
      let k
      while ((k = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, k); buf = buf.slice(k + 1)
        let m; try { m = JSON.parse(line) } catch { continue }
        if (m.type === 'offer' || m.type === 'pay_required') pay()
        else if (m.type === 'chunk') {
          chunks++
          const st = /^(\d+) $/.exec(m.data)
          if (st) {
            const us = Number(now - BigInt(st[1])) / 1000
            lat.push(us)
            if (m.seq >= 5) steady.push(us)
          }
        } else if (m.type === 'result') finish(true)
        else if (m.type === 'error') { console.error(`job ${i}: ${m.code} ${m.message}`) }
      }
    })
    s.on('error', () => finish(false))
    s.on('close', () => finish(false))
    setTimeout(() => finish(false), 120000)
  })
}

Promise.all(Array.from({ length: N }, (_, i) => job(i))).then(() => {
  lat.sort((a, b) => a - b)
  steady.sort((a, b) => a - b)
  const qq = (arr, p) => arr.length ? arr[Math.min(arr.length - 1, Math.floor(p * arr.length))] : NaN
  const q = (p) => qq(lat, p)
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  console.log(`jobs_done ${done} jobs_failed ${failed} chunks ${chunks} seconds ${secs.toFixed(2)}`)
  console.log(`latency_us p50 ${q(0.5).toFixed(0)} p99 ${q(0.99).toFixed(0)} max ${lat.length ? lat[lat.length - 1].toFixed(0) : 'NaN'}`)
  console.log(`steady_state_us (chunks after the first 5 of each job) p50 ${qq(steady, 0.5).toFixed(0)} p99 ${qq(steady, 0.99).toFixed(0)}`)
  console.log(`p99_us=${q(0.99).toFixed(0)}`)
  process.exit(failed ? 1 : 0)
})
