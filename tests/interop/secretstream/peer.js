// The JavaScript side of scripts/interop/secretstream.sh and scripts/bench/secretstream.sh:
// @hyperswarm/secret-stream (standalone Noise XX) over a Node TCP socket. Same CLI and
// output lines as sstream_peer.c:
//   node peer.js listen [opts]        prints "LISTEN <port>", serves one connection
//   node peer.js connect PORT [opts]
//   opts: --small N --big BYTES --bench BYTES --chunk N --idle MS --timeout S
// Exchange results also report raw_read: encrypted data-frame bytes read (incl. keep-alives).
'use strict'
const path = require('path')
const net = require('net')
const crypto = require('crypto')
const NoiseSecretStream = require(path.join(__dirname, '..', 'node_modules', '@hyperswarm/secret-stream'))

const args = process.argv.slice(2)
const mode = args.shift()
let port = 0
if (mode === 'connect') port = Number(args.shift())
else if (mode !== 'listen') { console.error('usage: peer.js listen|connect PORT [opts]'); process.exit(2) }
const opt = { small: 10000, big: 4 << 20, bench: 0, chunk: 65536, timeout: 120, idle: 0 }
while (args.length) {
  const k = args.shift().replace(/^--/, '')
  if (!(k in opt)) { console.error('unknown option ' + k); process.exit(2) }
  opt[k] = Number(args.shift())
}

const sentSha = crypto.createHash('sha256')
const recvSha = crypto.createHash('sha256')
let sentBytes = 0; let recvBytes = 0; let recvLines = 0; let expectSeq = 0; let smallBad = 0; let bigOk = 0
let curLen = 0; let curPrefix = ''
let status = 'ok'; let remote = ''; let local = ''; let rawRead = 0; let t0 = 0n; let seconds = 0; let finished = false
let server = null

const deadline = setTimeout(() => { status = 'timeout'; report(); process.exit(1) }, opt.timeout * 1000)

function report () {
  if (finished) return
  finished = true
  clearTimeout(deadline)
  if (opt.bench) {
    const u = process.cpuUsage()
    console.log(`BENCH role=${mode === 'listen' ? 'receiver' : 'sender'} bytes=${mode === 'listen' ? recvBytes : sentBytes} seconds=${seconds.toFixed(4)} cpu=${((u.user + u.system) / 1e6).toFixed(4)} status=${status}`)
    process.exitCode = status === 'ok' && (mode !== 'listen' || recvBytes === opt.bench) ? 0 : 1
    return
  }
  console.log(`RESULT status=${status} sent_bytes=${sentBytes} sent_sha=${sentSha.digest('hex')} recv_bytes=${recvBytes} recv_sha=${recvSha.digest('hex')} recv_lines=${recvLines} small_ok=${smallBad === 0 && expectSeq === opt.small ? 1 : 0} big_ok=${bigOk} remote=${remote} local=${local} raw_read=${rawRead}`)
  process.exitCode = status === 'ok' ? 0 : 1
}

function onLine () {
  recvLines++
  if (curLen + 1 === opt.big && curPrefix.startsWith('{"big":"')) bigOk++
  else {
    const m = /^\{"seq":(\d+),/.exec(curPrefix)
    if (!m || Number(m[1]) !== expectSeq) smallBad++
    expectSeq++
  }
  curLen = 0; curPrefix = ''
}

function run (s) {
  s.setKeepAlive(5000)
  s.on('connect', () => {
    remote = s.remotePublicKey.toString('hex').slice(0, 16)
    local = s.publicKey.toString('hex').slice(0, 16)
    t0 = process.hrtime.bigint()
    if (opt.idle) setTimeout(send, opt.idle)
    else send()
  })
  s.on('data', (d) => {
    recvBytes += d.byteLength
    if (opt.bench) return
    recvSha.update(d)
    let i = 0
    while (i < d.byteLength) {
      const nl = d.indexOf(10, i)
      const end = nl === -1 ? d.byteLength : nl
      if (curPrefix.length < 63) curPrefix += d.subarray(i, Math.min(end, i + 63 - curPrefix.length)).toString('latin1')
      curLen += end - i
      if (nl === -1) break
      onLine()
      i = nl + 1
    }
  })
  s.on('end', () => {
    seconds = Number(process.hrtime.bigint() - t0) / 1e9
    if (opt.bench && mode === 'listen') s.end()
  })
  s.on('error', (err) => { status = 'error:' + String(err.message).replace(/\s+/g, '_') })
  s.on('close', () => { rawRead = s.rawBytesRead; if (server) server.close(); report() })

  let next = 0; let bigSent = false; let benchSent = 0
  const chunk = opt.bench ? crypto.randomBytes(opt.chunk) : null
  function write (buf) {
    sentSha.update(buf); sentBytes += buf.byteLength
    return s.write(buf)
  }
  function send () {
    if (opt.bench) {
      if (mode === 'listen') return
      while (benchSent < opt.bench) {
        const n = Math.min(opt.chunk, opt.bench - benchSent)
        benchSent += n; sentBytes += n
        if (!s.write(n === opt.chunk ? chunk : chunk.subarray(0, n))) { s.once('drain', send); return }
      }
      s.end()
      return
    }
    while (next < opt.small) {
      const line = `{"seq":${next},"from":"js","pad":"${'0'.repeat(next % 40)}"}\n`
      next++
      if (!write(Buffer.from(line))) { s.once('drain', send); return }
    }
    if (!bigSent && opt.big >= 16) {
      bigSent = true
      const big = Buffer.alloc(opt.big, 'b')
      big.write('{"big":"', 0, 'latin1'); big.write('"}\n', opt.big - 3, 'latin1')
      if (!write(big)) { s.once('drain', send); return }
    }
    s.end()
  }
}

if (mode === 'listen') {
  server = net.createServer({ allowHalfOpen: true }, (sock) => {
    server.close()
    run(new NoiseSecretStream(false, sock))
  })
  server.listen(0, '127.0.0.1', () => console.log('LISTEN ' + server.address().port))
} else {
  const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  sock.on('error', (err) => { status = 'error:' + err.code })
  run(new NoiseSecretStream(true, sock))
}
