// JS half of scripts/bench/dht.sh.
//   node bench.js testnet N        -> a 100-node @hyperswarm/testnet; prints "js_boot <port>"
//                                     and "rss_kb <kB>", then runs until killed
//   node bench.js client PORT L    -> ephemeral client in its own process: one announce, then
//                                     L sequential lookups; prints "js_lookup_ms <median> <req/lookup>"
'use strict'
const path = require('path')
const nm = path.join(__dirname, '..', 'node_modules')
const DHT = require(path.join(nm, 'hyperdht'))
const createTestnet = require(path.join(nm, '@hyperswarm/testnet'))

async function testnet (n) {
  const tn = await createTestnet(n, { host: '127.0.0.1' })
  console.log(`js_boot ${tn.bootstrap[0].port}`)
  console.log(`rss_kb ${Math.round(process.memoryUsage().rss / 1024)}`)
  process.on('SIGTERM', async () => { await tn.destroy(); process.exit(0) })
}

async function client (port, lookups) {
  const dht = new DHT({ bootstrap: [{ host: '127.0.0.1', port }], host: '127.0.0.1' })
  await dht.fullyBootstrapped()
  const topic = DHT.hash(Buffer.from('bench topic'))
  await dht.announce(topic, DHT.keyPair(), []).finished()
  const times = []
  let msgs = 0
  let found = 0
  for (let i = 0; i < lookups; i++) {
    const before = dht.stats.requests.total
    const t0 = process.hrtime.bigint()
    let f = 0
    for await (const r of dht.lookup(topic)) f += r.peers.length
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
    msgs += dht.stats.requests.total - before
    if (f) found++
  }
  times.sort((a, b) => a - b)
  console.log(`js_lookup_ms ${times[(times.length - 1) >> 1].toFixed(3)} ${(msgs / lookups).toFixed(1)} records_found=${found}/${lookups}`)
  await dht.destroy()
}

const [mode, a, b] = process.argv.slice(2)
if (mode === 'testnet') testnet(Number(a || 100)).catch((e) => { console.error(e); process.exit(1) })
else client(Number(a), Number(b || 50)).catch((e) => { console.error(e); process.exit(1) })
