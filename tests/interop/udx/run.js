'use strict'
// UDX interop suite: our C UDX (tests/dht/test_dht_udx_uv peer) against udx-native, on
// 127.0.0.1. Each scenario starts one C peer and one JS peer (peer.js), connects them,
// lets them run and compares what both report. Prints "udx: N passed, M failed" last.
//
// Usage: node run.js <path to test_dht_udx_uv> [scenario-name-filter]
const { setCBin, runPair } = require('./harness')
const MiB = 1024 * 1024
const cBin = process.argv[2]
const filter = process.argv[3] || ''
if (!cBin) {
  console.error('usage: node run.js <test_dht_udx_uv binary> [filter]')
  process.exit(2)
}
setCBin(cBin)

function expectTransfer (from, to, bytes, errs) {
  if (from.sent !== bytes) errs.push(`${from.impl} sent ${from.sent}, want ${bytes}`)
  if (to.recv !== bytes) errs.push(`${to.impl} received ${to.recv}, want ${bytes}`)
  if (from.sent_sha !== to.recv_sha) errs.push(`SHA-256 differs: ${from.impl} sent ${from.sent_sha.slice(0, 16)}…, ${to.impl} received ${to.recv_sha.slice(0, 16)}…`)
}
function expectCleanClose (r, errs) {
  for (const side of [r.c, r.js]) {
    if (!side.ended) errs.push(`${side.impl} did not see the peer's END`)
    if (side.close !== 'ok') errs.push(`${side.impl} closed with ${side.close} (${side.error || side.close_status})`)
    if (side.timeout) errs.push(`${side.impl} timed out`)
  }
}
function rate (bytes, side) {
  return side.recv_secs > 0 ? `${(bytes / MiB / side.recv_secs).toFixed(1)} MiB/s` : 'n/a'
}

const LOSS = ['--loss', '30', '--reorder', '30', '--seed', '4242'] // 3 % loss + 3 % reordering, both directions
const BIG = 64 * MiB

const scenarios = [
  {
    name: 'c_to_js_64MiB',
    cArgs: ['--send', String(BIG), '--end'],
    jsArgs: ['--end-on-end'],
    check (r, errs) { expectTransfer(r.c, r.js, BIG, errs); expectCleanClose(r, errs); return rate(BIG, r.js) }
  },
  {
    name: 'js_to_c_64MiB',
    cArgs: ['--end'], // half-closes at once; JS keeps sending to it
    jsArgs: ['--send', String(BIG), '--end'],
    check (r, errs) { expectTransfer(r.js, r.c, BIG, errs); expectCleanClose(r, errs); return rate(BIG, r.c) }
  },
  {
    name: 'c_to_js_64MiB_loss3_reorder3',
    cArgs: ['--send', String(BIG), '--end', ...LOSS],
    jsArgs: ['--end-on-end'],
    check (r, errs) {
      expectTransfer(r.c, r.js, BIG, errs); expectCleanClose(r, errs)
      if (!(r.c.impair_dropped > 0)) errs.push('no packets were dropped: impairment inactive')
      return rate(BIG, r.js) + `, ${r.c.impair_dropped} dropped`
    }
  },
  {
    name: 'js_to_c_64MiB_loss3_reorder3',
    cArgs: ['--end', ...LOSS],
    jsArgs: ['--send', String(BIG), '--end'],
    check (r, errs) {
      expectTransfer(r.js, r.c, BIG, errs); expectCleanClose(r, errs)
      if (!(r.c.impair_dropped > 0)) errs.push('no packets were dropped: impairment inactive')
      return rate(BIG, r.c) + `, ${r.c.impair_dropped} dropped`
    }
  },
  {
    name: 'c_destroy_seen_by_js',
    cArgs: ['--destroy-after', String(MiB)],
    jsArgs: ['--send', String(32 * MiB)],
    check (r, errs) {
      if (r.c.close !== 'ok') errs.push(`C (destroyer) closed with ${r.c.close_status}`)
      if (r.c.recv < MiB) errs.push(`C received only ${r.c.recv}`)
      if (r.js.close !== 'error') errs.push(`JS did not see the reset: close=${r.js.close}`)
      if (r.js.timeout) errs.push('JS timed out instead of seeing DESTROY')
      return `JS error ${r.js.error}`
    }
  },
  {
    name: 'js_destroy_seen_by_c',
    cArgs: ['--send', String(32 * MiB)],
    jsArgs: ['--destroy-after', String(MiB)],
    check (r, errs) {
      if (r.c.close_status !== -103) errs.push(`C close status ${r.c.close_status}, want DHT_EDESTROYED (-103)`)
      if (r.c.timeout) errs.push('C timed out instead of seeing DESTROY')
      if (r.js.recv < MiB) errs.push(`JS received only ${r.js.recv}`)
      return `C status ${r.c.close_status}`
    }
  },
  {
    name: 'messages_both_ways',
    cArgs: ['--messages', '20'],
    jsArgs: ['--messages', '20'],
    check (r, errs) {
      for (const s of [r.c, r.js]) {
        if (s.messages_rx !== 20) errs.push(`${s.impl} received ${s.messages_rx} of 20 messages`)
        if (!s.messages_ok) errs.push(`${s.impl} received a malformed message`)
      }
      expectCleanClose(r, errs)
      return '20 + 20 messages'
    }
  },
  {
    name: 'first_packet_fixes_address',
    firstPacket: true,
    cArgs: ['--send', String(MiB), '--end'], // queued before C knows where JS is
    jsArgs: ['--send', String(4 * MiB), '--end'],
    check (r, errs) {
      expectTransfer(r.js, r.c, 4 * MiB, errs)
      expectTransfer(r.c, r.js, MiB, errs)
      expectCleanClose(r, errs)
      return 'ok'
    }
  }
]

async function main () {
  let passed = 0
  let failed = 0
  for (const sc of scenarios) {
    if (filter && !sc.name.includes(filter)) continue
    const t0 = Date.now()
    const errs = []
    let note = ''
    try {
      const r = await runPair({ timeout: 50000, ...sc })
      note = sc.check(r, errs)
      if (r.c.exit_code !== 0) errs.push(`C peer exited with ${r.c.exit_code} (sanitizer report or leak?)`)
    } catch (err) {
      errs.push(err.message)
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1)
    if (errs.length === 0) {
      passed++
      console.log(`ok   ${sc.name} (${secs} s; ${note})`)
    } else {
      failed++
      console.log(`FAIL ${sc.name} (${secs} s)`)
      for (const e of errs) console.log(`     ${e}`)
    }
  }
  console.log(`udx: ${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
}

main()
