'use strict'
// Shared by run.js (interop) and bench.js: start C or JS UDX peers with the same stdio
// protocol (see peer.js), connect them, collect their result objects.
const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')

let cBin = null
function setCBin (p) { cBin = p }

const children = new Set()
function killAll () { for (const c of children) { try { c.kill('SIGKILL') } catch {} } }
process.on('exit', killAll)
process.on('SIGINT', () => { killAll(); process.exit(130) })
process.on('SIGTERM', () => { killAll(); process.exit(143) })

function startPeer (impl, args) {
  const cmd = impl === 'c' ? cBin : process.execPath
  const argv = impl === 'c' ? ['peer', ...args] : [path.join(__dirname, 'peer.js'), ...args]
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
  child.stdin.on('error', () => {})
  children.add(child)
  child.on('exit', () => children.delete(child))
  const lines = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let msg
    try { msg = JSON.parse(line) } catch { msg = { raw: line } }
    lines.push(msg)
    for (const w of waiters.slice()) w()
  })
  const exited = new Promise((resolve) => child.on('exit', (code) => { lines.push({ exit: code }); for (const w of waiters.slice()) w(); resolve(code) }))
  function next (pred, ms, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = lines.findIndex(pred)
        if (i >= 0) {
          const [m] = lines.splice(i, 1)
          done()
          resolve(m)
        } else if (lines.some((l) => 'exit' in l)) {
          done()
          reject(new Error(`${impl} peer exited while waiting for ${what}`))
        }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`${impl} peer: timeout waiting for ${what}`)) }, ms)
      const done = () => { clearTimeout(timer); const k = waiters.indexOf(check); if (k >= 0) waiters.splice(k, 1) }
      waiters.push(check)
      check()
    })
  }
  return {
    impl,
    child,
    exited,
    send: (s) => { try { child.stdin.write(s + '\n') } catch {} },
    quit: () => { try { child.stdin.write('quit\n'); child.stdin.end() } catch {} },
    ready: () => next((m) => m.ready, 10000, 'ready'),
    connected: () => next((m) => m.connected, 10000, 'connected'),
    result: (ms) => next((m) => 'sent_sha' in m, ms, 'result')
  }
}

// Two peers a and b (impl 'c' or 'js'); firstPacket: a connects with no address (C only).
async function runPeers ({ aImpl, bImpl, aArgs, bArgs, firstPacket, timeout }) {
  const A_ID = 7001
  const B_ID = 9002
  const a = startPeer(aImpl, ['--id', String(A_ID), '--timeout', String(timeout), ...aArgs])
  const b = startPeer(bImpl, ['--id', String(B_ID), '--timeout', String(timeout), ...bArgs])
  try {
    const [ar, br] = await Promise.all([a.ready(), b.ready()])
    a.send(`connect ${firstPacket ? 0 : br.port} ${B_ID}`)
    b.send(`connect ${ar.port} ${A_ID}`)
    await Promise.all([a.connected(), b.connected()])
    a.send('go')
    b.send('go')
    const [ares, bres] = await Promise.all([a.result(timeout + 5000), b.result(timeout + 5000)])
    a.quit()
    b.quit()
    const t = setTimeout(killAll, 5000)
    // Exit codes matter: the C peer runs under ASan/LSan, a leak makes it exit non-zero.
    ares.exit_code = await a.exited
    bres.exit_code = await b.exited
    clearTimeout(t)
    return { a: ares, b: bres }
  } finally {
    a.quit()
    b.quit()
    const t = setTimeout(killAll, 5000)
    await Promise.all([a.exited, b.exited])
    clearTimeout(t)
  }
}

// cArgs/jsArgs: a C peer against a JS peer.
async function runPair ({ cArgs, jsArgs, firstPacket, timeout }) {
  const r = await runPeers({ aImpl: 'c', bImpl: 'js', aArgs: cArgs, bArgs: jsArgs, firstPacket, timeout })
  return { c: r.a, js: r.b }
}

module.exports = { setCBin, startPeer, runPeers, runPair, killAll }
