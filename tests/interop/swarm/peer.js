// JS Hyperswarm peer with the same contract as `dvm-dht connect|serve --topic HEX`: pipes
// stdin/stdout over the first connection; status lines on stderr.
// usage: node peer.js serve|connect TOPIC_HEX BOOTSTRAP_HOST:PORT
const Hyperswarm = require('hyperswarm')
const DHT = require('hyperdht')

async function main () {
  const [mode, topicHex, boot] = process.argv.slice(2)
  const [host, port] = boot.split(':')
  const dht = new DHT({ bootstrap: [{ host, port: Number(port) }], host: process.env.PEER_HOST || '127.0.0.1' })
  const seed = process.env.PEER_SEED ? Buffer.from(process.env.PEER_SEED, 'hex') : null
  const swarm = new Hyperswarm({ dht, ...(seed ? { keyPair: DHT.keyPair(seed) } : {}) })
  const topic = Buffer.from(topicHex, 'hex')
  let first = null
  const { performance } = require("perf_hooks")
  let t0 = 0
  swarm.on('connection', (conn, info) => {
    if (first) { conn.destroy(); return }
    first = conn
    console.error(`connected ${info.publicKey.toString('hex')} ${(performance.now() - t0).toFixed(1)}ms`)
    conn.on('error', (e) => console.error('conn error', e.message))
    process.stdin.pipe(conn)
    conn.pipe(process.stdout)
    conn.on('close', async () => {
      console.error('closed')
      await swarm.destroy()
      // stdout to a pipe is asynchronous: exit only once every piped byte is written
      // (process.exit at once lost the tail of a 32 MiB transfer now and then)
      process.stdout.write('', () => process.exit(0))
    })
  })
  await dht.ready()
  console.error(`ready ${swarm.keyPair.publicKey.toString('hex')}`)
  t0 = performance.now()
  const d = swarm.join(topic, { server: mode === 'serve', client: mode !== 'serve' })
  if (mode === 'serve') {
    await d.flushed()
    console.error('announced ok')
  }
  const timeout = Number(process.env.PEER_TIMEOUT_MS || 30000)
  setTimeout(() => { if (!first) { console.error('timeout: no connection'); process.exit(1) } }, timeout).unref()
}
main().catch((e) => { console.error(e); process.exit(1) })
