// Loopback hyperdht testnet for the swarm interop suite: prints "bootstrap HOST:PORT" and
// stays up until stdin closes or SIGTERM.
const createTestnet = require('@hyperswarm/testnet')

async function main () {
  const n = Number(process.argv[2] || 10)
  const testnet = await createTestnet(n, { host: process.argv[3] || '127.0.0.1' })
  const b = testnet.bootstrap[0]
  process.stdout.write(`bootstrap ${b.host}:${b.port}\n`)
  const stop = async () => { await testnet.destroy(); process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdin.on('end', stop)
  process.stdin.resume()
}
main().catch((e) => { console.error(e); process.exit(1) })
