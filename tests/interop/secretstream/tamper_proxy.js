// A one-connection TCP proxy on 127.0.0.1 that flips one bit of one byte in one direction,
// used to check that a tampered secret-stream frame is rejected.
//   node tamper_proxy.js TARGET_PORT up|down OFFSET
// up = client->server bytes, down = server->client bytes; OFFSET counts bytes of that
// direction from the start of the connection. Prints "LISTEN <port>".
'use strict'
const net = require('net')
const [targetPort, dir, offsetStr] = process.argv.slice(2)
const offset = Number(offsetStr)
if (!targetPort || !['up', 'down'].includes(dir) || !Number.isInteger(offset)) {
  console.error('usage: tamper_proxy.js TARGET_PORT up|down OFFSET'); process.exit(2)
}
const timer = setTimeout(() => process.exit(1), 90000)

function relay (from, to, tamper) {
  let seen = 0
  from.on('data', (d) => {
    if (tamper && offset >= seen && offset < seen + d.byteLength) {
      d = Buffer.from(d)
      d[offset - seen] ^= 0x01
      console.error(`tamper_proxy: flipped byte ${offset} (${dir})`)
    }
    seen += d.byteLength
    to.write(d)
  })
  from.on('end', () => to.end())
}

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  server.close()
  const upstream = net.connect({ port: Number(targetPort), host: '127.0.0.1', allowHalfOpen: true })
  relay(client, upstream, dir === 'up')
  relay(upstream, client, dir === 'down')
  let closed = 0
  const done = () => { if (++closed === 2) clearTimeout(timer) }
  for (const [a, b] of [[client, upstream], [upstream, client]]) {
    a.on('error', () => b.destroy())
    a.on('close', () => { b.destroy(); done() })
  }
})
server.listen(0, '127.0.0.1', () => console.log('LISTEN ' + server.address().port))
