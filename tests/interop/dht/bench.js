// JS half of scripts/bench/dht.sh: a 100-node @hyperswarm/testnet, one announce, then 50
// sequential lookups from an ephemeral client. Prints "js_lookup_ms <median> <msgs/lookup>"
// and, if argv[2] is given, keeps the testnet running for the C client: it prints
// "js_boot <port>" first.
'use strict'
const path = require('path')
const nm = path.join(__dirname, '..', 'node_modules')
const DHT = require(path.join(nm, 'hyperdht'))
const createTestnet = require(path.join(nm, '@hyperswarm/testnet'))
const N = Number(process.argv[2] || 100)
const L = Number(process.argv[3] || 50)

async function main () {
  const tn = await createTestnet(N, { host: '127.0.0.1' })
  const client = tn.createNode()
  await client.fullyBootstrapped()
  const topic = DHT.hash(Buffer.from('bench topic'))
  await client.announce(topic, DHT.keyPair(), []).finished()
  const times = []
  let msgs = 0
  for (let i = 0; i < L; i++) {
    const before = client.stats.requests.total
    const t0 = process.hrtime.bigint()
    let found = 0
    for await (const r of client.lookup(topic)) found += r.peers.length
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
    msgs += client.stats.requests.total - before
    if (!found) console.error('lookup found nothing')
  }
  times.sort((a, b) => a - b)
  const rss = process.memoryUsage().rss
  console.log(`js_lookup_ms ${times[times.length >> 1].toFixed(3)} ${(msgs / L).toFixed(1)} rss_per_node_kb ${(rss / 1024 / N).toFixed(0)}`)
  await tn.destroy()
}
main().catch((e) => { console.error(e); process.exit(1) })
