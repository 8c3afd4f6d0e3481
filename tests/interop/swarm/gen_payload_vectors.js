// Prints byte vectors of hyperdht's noisePayload / holepunchPayload encodings for
// tests/dht/test_dht_connect.c (run: node swarm/gen_payload_vectors.js).
const c = require('compact-encoding')
const m = require('hyperdht/lib/messages')
const a = (host, port) => ({ host, port })
const v = {
  open_server: c.encode(m.noisePayload, {
    error: 0, firewall: 1, holepunch: null, addresses4: [a('1.2.3.4', 49737)], addresses6: null,
    udx: { reusableSocket: false, id: 0x12345678, seq: 0 }, secretStream: {}, relayThrough: null,
    relayAddresses: [a('5.6.7.8', 1000), a('9.10.11.12', 65535)]
  }),
  firewalled_server: c.encode(m.noisePayload, {
    error: 0, firewall: 2, holepunch: { id: 3, relays: [{ relayAddress: a('5.6.7.8', 1000), peerAddress: a('100.1.2.3', 40000) }] },
    addresses4: [], addresses6: null, udx: { reusableSocket: true, id: 7, seq: 0 }, secretStream: {},
    relayThrough: null, relayAddresses: []
  }),
  client: c.encode(m.noisePayload, {
    error: 0, firewall: 0, holepunch: null, addresses4: [], addresses6: [],
    udx: { reusableSocket: false, id: 300, seq: 0 }, secretStream: {}, relayThrough: null
  }),
  holepunch: c.encode(m.holepunchPayload, {
    error: 0, firewall: 2, round: 1, connected: false, punching: true,
    addresses: [a('10.0.0.1', 5000)], remoteAddress: a('20.0.0.2', 6000),
    token: Buffer.alloc(32, 0xaa), remoteToken: Buffer.alloc(32, 0xbb)
  })
}
for (const [k, b] of Object.entries(v)) console.log(`${k} ${b.toString('hex')}`)
