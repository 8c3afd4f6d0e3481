// Generates tests/dht/data/noise_transcripts.txt: Noise IK (hyperdht prologue and payloads)
// and XX (secret-stream standalone: empty prologue and payloads) handshakes run by
// noise-handshake 4.2 + noise-curve-ed with fixed static and ephemeral keys.
// Usage: node tests/interop/secretstream/gen_noise_transcripts.js > tests/dht/data/noise_transcripts.txt
// Format: "name hex" per line. Per transcript <t>: <t>_{is,rs,ie,re}_seed (static/ephemeral
// seeds of initiator/responder), <t>_prologue, <t>_pay1..3, <t>_msg1..3,
// <t>_{i,r}_{tx,rx,hash}. Also the secret-stream header ids for each transcript.
'use strict'
const path = require('path')
const nm = path.join(__dirname, '..', 'node_modules')
const req = (m) => require(path.join(nm, m))
const Noise = req('noise-handshake')
const curve = req('noise-curve-ed')
const c = req('compact-encoding')
const b4a = req('b4a')
const NoiseSecretStream = req('@hyperswarm/secret-stream')
const { NS } = req('hyperdht/lib/constants')
const m = req('hyperdht/lib/messages')

const out = []
const emit = (name, buf) => out.push(name + ' ' + b4a.toString(buf, 'hex'))
const seed = (x) => { const b = b4a.alloc(32); for (let i = 0; i < 32; i++) b[i] = (x * 31 + i * 13) & 0xff; return b }

function run (t, pattern, prologue, seeds, payloads) {
  const is = curve.generateKeyPair(seeds[0])
  const rs = curve.generateKeyPair(seeds[1])
  const i = new Noise(pattern, true, is, { curve })
  const r = new Noise(pattern, false, rs, { curve })
  i.initialise(prologue, pattern === 'IK' ? rs.publicKey : null)
  r.initialise(prologue, null)
  i.e = curve.generateKeyPair(seeds[2])
  r.e = curve.generateKeyPair(seeds[3])
  emit(t + '_is_seed', seeds[0]); emit(t + '_rs_seed', seeds[1])
  emit(t + '_ie_seed', seeds[2]); emit(t + '_re_seed', seeds[3])
  emit(t + '_is_pk', is.publicKey); emit(t + '_rs_pk', rs.publicKey)
  emit(t + '_prologue', prologue)
  let from = i; let to = r
  for (let k = 0; k < payloads.length; k++) {
    const msg = b4a.from(from.send(payloads[k])) // copy: recv() keeps a view of it and final() zeroes re
    const got = to.recv(b4a.from(msg))
    if (!b4a.equals(got, payloads[k])) throw new Error('payload mismatch')
    emit(t + '_pay' + (k + 1), payloads[k])
    emit(t + '_msg' + (k + 1), msg)
    ;[from, to] = [to, from]
  }
  if (!i.complete || !r.complete) throw new Error('incomplete')
  emit(t + '_i_tx', i.tx); emit(t + '_i_rx', i.rx); emit(t + '_i_hash', i.hash)
  emit(t + '_r_tx', r.tx); emit(t + '_r_rx', r.rx); emit(t + '_r_hash', r.hash)
  emit(t + '_id_initiator', NoiseSecretStream.id(i.hash, true))
  emit(t + '_id_responder', NoiseSecretStream.id(i.hash, false))
}

const EMPTY = b4a.alloc(0)
// XX as @hyperswarm/secret-stream runs it over TCP
for (let k = 0; k < 3; k++) run('xx' + k, 'XX', EMPTY, [seed(10 * k + 1), seed(10 * k + 2), seed(10 * k + 3), seed(10 * k + 4)], [EMPTY, EMPTY, EMPTY])
// XX with payloads (not used by secret-stream, exercises payload encryption in every message)
run('xxp', 'XX', b4a.from('prologue'), [seed(51), seed(52), seed(53), seed(54)], [b4a.from('one'), b4a.from('second payload'), b4a.alloc(300, 7)])

// IK as hyperdht runs it: prologue NS_PEER_HANDSHAKE, noisePayload-encoded payloads
const p1 = c.encode(m.noisePayload, {
  version: 1, error: 0, firewall: 0, holepunch: null, addresses4: [], addresses6: [],
  udx: { version: 1, reusableSocket: false, id: 1234, seq: 0 }, secretStream: {}, relayThrough: null, relayAddresses: null
})
const p2 = c.encode(m.noisePayload, {
  version: 1, error: 0, firewall: 1, holepunch: null,
  addresses4: [{ host: '127.0.0.1', port: 49737 }], addresses6: [],
  udx: { version: 1, reusableSocket: false, id: 99, seq: 0 }, secretStream: {}, relayThrough: null,
  relayAddresses: [{ host: '127.0.0.1', port: 40001 }]
})
for (let k = 0; k < 2; k++) run('ik' + k, 'IK', NS.PEER_HANDSHAKE, [seed(60 + 10 * k), seed(61 + 10 * k), seed(62 + 10 * k), seed(63 + 10 * k)], [p1, p2])
run('ike', 'IK', NS.PEER_HANDSHAKE, [seed(91), seed(92), seed(93), seed(94)], [EMPTY, EMPTY])

process.stdout.write(out.join('\n') + '\n')
