'use strict'
// UDX throughput: 256 MiB C→C (our dht_udx) and JS→JS (udx-native), each between two
// processes on 127.0.0.1, sender → receiver, fixed data (--nohash). Prints MiB/s and CPU
// seconds per side, then `udx_throughput_ratio_c_over_js=<x>` last.
// Usage: node bench.js <release test_dht_udx_uv binary> [MiB] [runs]
const { setCBin, runPeers } = require('./harness')

const MiB = 1024 * 1024
const cBin = process.argv[2]
const size = Number(process.argv[3] || 256) * MiB
const runs = Number(process.argv[4] || 1)
if (!cBin || !(size > 0) || !(runs > 0)) {
  console.error('usage: node bench.js <test_dht_udx_uv binary> [MiB] [runs]')
  process.exit(2)
}
setCBin(cBin)

async function one (impl) {
  const r = await runPeers({
    aImpl: impl,
    bImpl: impl,
    aArgs: ['--send', String(size), '--end', '--nohash'],
    bArgs: ['--end-on-end', '--nohash'],
    timeout: 120000
  })
  if (r.b.recv !== size || r.a.sent !== size) throw new Error(`${impl}: moved ${r.b.recv} of ${size} bytes`)
  if (r.a.close !== 'ok' || r.b.close !== 'ok') throw new Error(`${impl}: close ${r.a.close}/${r.b.close}`)
  const secs = r.b.recv_secs
  return { mibs: size / MiB / secs, secs, cpuSend: r.a.cpu_s, cpuRecv: r.b.cpu_s }
}

async function main () {
  const best = {}
  for (let i = 0; i < runs; i++) {
    for (const impl of ['c', 'js']) {
      const m = await one(impl)
      const label = impl === 'c' ? 'c_to_c  ' : 'js_to_js'
      console.log(`${label} ${size / MiB} MiB in ${m.secs.toFixed(3)} s = ${m.mibs.toFixed(1)} MiB/s; CPU s sender ${m.cpuSend.toFixed(2)} receiver ${m.cpuRecv.toFixed(2)}`)
      if (!best[impl] || m.mibs > best[impl].mibs) best[impl] = m
    }
  }
  console.log('note: the machine is shared (2 cores, other agents); figures are noisy; best of', runs, 'run(s)')
  console.log(`udx_throughput_ratio_c_over_js=${(best.c.mibs / best.js.mibs).toFixed(2)}`)
}

main().catch((err) => { console.error(err.message); process.exit(1) })
