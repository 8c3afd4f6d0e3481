'use strict'
// A UDX peer on udx-native with the same command line and stdio protocol as the C peer
// (tests/dht/test_dht_udx_uv.c "peer" mode), so run.js / bench.js can pair any two.
//
// stdout: {"ready":true,"port":P}, later {"connected":true}, last the result object.
// stdin:  "connect <port> <remoteId>" then "go".
// Options: --id N --send BYTES --end (after sending) --end-on-end (when the peer ends)
//          --destroy-after BYTES --messages N --timeout MS --chunk BYTES
//          --nohash (benchmark: one random buffer sent repeatedly, no SHA-256)
const UDX = require('udx-native')
const crypto = require('crypto')
const readline = require('readline')

function parseArgs (argv) {
  const o = { nohash: false, id: 1, send: 0, end: false, endOnEnd: false, destroyAfter: -1, messages: 0, timeout: 60000, chunk: 65536 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      const v = argv[++i]
      if (v === undefined || !/^[0-9]+$/.test(v)) throw new Error(`${a} needs a number`)
      return Number(v)
    }
    if (a === '--id') o.id = next()
    else if (a === '--send') o.send = next()
    else if (a === '--end') o.end = true
    else if (a === '--end-on-end') o.endOnEnd = true
    else if (a === '--nohash') o.nohash = true
    else if (a === '--destroy-after') o.destroyAfter = next()
    else if (a === '--messages') o.messages = next()
    else if (a === '--timeout') o.timeout = next()
    else if (a === '--chunk') o.chunk = next()
    else throw new Error(`unknown option ${a}`)
  }
  return o
}

const opts = parseArgs(process.argv.slice(2))
const t0 = process.hrtime.bigint()
const udx = new UDX()
const socket = udx.createSocket()
socket.bind(0, '127.0.0.1')

const sentHash = crypto.createHash('sha256')
const recvHash = crypto.createHash('sha256')
const res = {
  impl: 'js', sent: 0, sent_sha: '', recv: 0, recv_sha: '', ended: false, close: null,
  error: null, messages_rx: 0, messages_ok: true, timeout: false
}
let stream = null
let weEnded = false
let finished = false
let firstByteAt = 0n
let lastByteAt = 0n

function finish (code) {
  if (finished) return
  finished = true
  res.sent_sha = sentHash.digest('hex')
  res.recv_sha = recvHash.digest('hex')
  const cpu = process.cpuUsage()
  res.cpu_s = (cpu.user + cpu.system) / 1e6
  res.secs = Number(process.hrtime.bigint() - t0) / 1e9
  res.recv_secs = lastByteAt > firstByteAt ? Number(lastByteAt - firstByteAt) / 1e9 : 0
  process.stdout.write(JSON.stringify(res) + '\n')
  socket.close().catch(() => {}).finally(() => process.exit(code))
  setTimeout(() => process.exit(code), 2000).unref()
}

const timer = setTimeout(() => {
  res.timeout = true
  if (stream) stream.destroy()
  finish(1)
}, opts.timeout)

stream = udx.createStream(opts.id)
stream.on('data', (chunk) => {
  const now = process.hrtime.bigint()
  if (res.recv === 0) firstByteAt = now
  lastByteAt = now
  if (!opts.nohash) recvHash.update(chunk)
  res.recv += chunk.length
  if (opts.destroyAfter >= 0 && res.recv >= opts.destroyAfter) stream.destroy()
})
stream.on('end', () => {
  res.ended = true
  if (opts.endOnEnd && !weEnded) { weEnded = true; stream.end() }
})
stream.on('message', (buf) => {
  const s = buf.toString()
  if (!/^msg-[0-9]+$/.test(s)) res.messages_ok = false
  res.messages_rx++
  maybeEndAfterMessages()
})
stream.on('error', (err) => { res.error = err.code || err.message })
stream.on('close', () => {
  res.close = res.error ? 'error' : 'ok'
  clearTimeout(timer)
  finish(0)
})

let messagesSent = false
function maybeEndAfterMessages () {
  if (opts.messages && messagesSent && res.messages_rx >= opts.messages && !weEnded) {
    weEnded = true
    stream.end()
  }
}

const fixed = crypto.randomBytes(Math.max(opts.chunk, 1))

async function go () {
  for (let i = 0; i < opts.messages; i++) stream.trySend(Buffer.from(`msg-${i}`))
  messagesSent = true
  if (opts.messages) {
    maybeEndAfterMessages()
    setTimeout(() => { if (!weEnded) { weEnded = true; stream.end() } }, 3000).unref()
    return
  }
  let left = opts.send
  while (left > 0 && !stream.destroyed) {
    const n = Math.min(left, opts.chunk)
    const buf = opts.nohash ? fixed.subarray(0, n) : crypto.randomBytes(n)
    if (!opts.nohash) sentHash.update(buf)
    res.sent += n
    left -= n
    if (!stream.write(buf)) {
      await new Promise((resolve) => {
        const done = () => { stream.off('drain', done); stream.off('close', done); resolve() }
        stream.on('drain', done)
        stream.on('close', done)
      })
    }
  }
  if (opts.end && !stream.destroyed && !weEnded) { weEnded = true; stream.end() }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const parts = line.trim().split(/\s+/)
  if (parts[0] === 'connect') {
    stream.connect(socket, Number(parts[2]), Number(parts[1]), '127.0.0.1')
    process.stdout.write(JSON.stringify({ connected: true }) + '\n')
  } else if (parts[0] === 'go') {
    go().catch((err) => { res.error = String(err); finish(1) })
  }
})

process.stdout.write(JSON.stringify({ ready: true, port: socket.address().port }) + '\n')
