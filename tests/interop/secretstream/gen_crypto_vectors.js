// Generates tests/dht/data/crypto_vectors.txt from the pinned npm oracles
// (compact-encoding, compact-encoding-net, hypercore-crypto, noise-handshake's hmac/hkdf,
// noise-curve-ed). Deterministic: every input is derived from fixed seeds.
// Usage: node tests/interop/secretstream/gen_crypto_vectors.js > tests/dht/data/crypto_vectors.txt
// Format: one "name hex" per line; '#' lines are comments.
'use strict'
const path = require('path')
const nm = path.join(__dirname, '..', 'node_modules')
const req = (m) => require(path.join(nm, m))
const c = req('compact-encoding')
const net = req('compact-encoding-net')
const hc = req('hypercore-crypto')
const hmac = req('noise-handshake/hmac')
const { hkdf } = req('noise-handshake/hkdf')
const curve = req('noise-curve-ed')
const sodium = req('sodium-universal')
const b4a = req('b4a')

const out = []
const emit = (name, buf) => out.push(name + ' ' + b4a.toString(buf, 'hex'))
const bytes = (n, start) => { const b = b4a.alloc(n); for (let i = 0; i < n; i++) b[i] = (start + i * 7) & 0xff; return b }

// compact-encoding
for (const v of [0, 1, 0xfc, 0xfd, 0xfe, 0xff, 0x1234, 0xffff, 0x10000, 0x12345678, 0xffffffff, 0x100000000, 2 ** 53 - 1]) {
  emit('uint_' + v.toString(16), c.encode(c.uint, v))
}
emit('uint16_beef', c.encode(c.uint16, 0xbeef))
emit('uint24_abcdef', c.encode(c.uint24, 0xabcdef))
emit('uint32_deadbeef', c.encode(c.uint32, 0xdeadbeef))
emit('uint64_123456789abc', c.encode(c.uint64, 0x123456789abc))
emit('buffer_0', c.encode(c.buffer, b4a.alloc(0)))
emit('buffer_300', c.encode(c.buffer, bytes(300, 3)))
emit('ipv4_1.2.3.4_4660', c.encode(net.ipv4Address, { host: '1.2.3.4', port: 0x1234 }))
emit('ipv4_127.0.0.1_49737', c.encode(net.ipv4Address, { host: '127.0.0.1', port: 49737 }))
emit('ipv6_2001:db8::1_443', c.encode(net.ipv6Address, { host: '2001:db8:0:0:0:0:0:1', port: 443 }))
emit('ipv4array_3', c.encode(c.array(net.ipv4Address), [
  { host: '10.0.0.1', port: 1 }, { host: '192.168.1.254', port: 65535 }, { host: '8.8.8.8', port: 53 }]))
emit('ipv4_input', b4a.from([1, 2, 3, 4]))

// namespaces
const dhtNs = hc.namespace('hyperswarm/dht', [0, 1, 4, 5, 6, 10])
;['0', '1', '4', '5', '6', '10'].forEach((id, i) => emit('ns_dht_' + id, dhtNs[i]))
const ssNs = hc.namespace('hyperswarm/secret-stream', 3)
ssNs.forEach((b, i) => emit('ns_ss_' + i, b))

// blake2b-256 keyed and plain
const msg = bytes(100, 1)
emit('b2_msg', msg)
const h = b4a.alloc(32); sodium.crypto_generichash(h, msg); emit('b2_plain', h)
const hk = b4a.alloc(32); sodium.crypto_generichash(hk, msg, bytes(32, 9)); emit('b2_keyed', hk)
emit('b2_key', bytes(32, 9))

// HMAC-BLAKE2b with keys of 0, 64, 128 and 200 bytes
for (const kl of [0, 64, 128, 200]) {
  const key = bytes(kl, 5)
  const o = b4a.alloc(64)
  hmac(o, [msg.subarray(0, 40), msg.subarray(40)], key)
  emit('hmac_key' + kl, key)
  emit('hmac_out' + kl, o)
}

// HKDF (noise-handshake), 3 outputs and 2 outputs with empty ikm
const ck = bytes(64, 11)
emit('hkdf_ck', ck)
const ikm = bytes(32, 13)
emit('hkdf_ikm', ikm)
const [o1, o2, o3] = hkdf(ck, ikm, '', 3 * 64)
emit('hkdf_o1', o1); emit('hkdf_o2', o2); emit('hkdf_o3', o3)
const [e1, e2] = hkdf(ck, b4a.alloc(0))
emit('hkdf_empty_o1', e1); emit('hkdf_empty_o2', e2)

// Ed25519 key pairs from seeds and noise-curve-ed DH
const a = curve.generateKeyPair(bytes(32, 21))
const b = curve.generateKeyPair(bytes(32, 77))
emit('ed_a_seed', bytes(32, 21)); emit('ed_a_pk', a.publicKey)
emit('ed_b_seed', bytes(32, 77)); emit('ed_b_pk', b.publicKey)
emit('ed_dh_ab', curve.dh(b.publicKey, a))
emit('ed_dh_ba', curve.dh(a.publicKey, b))
const t = b4a.alloc(32); sodium.crypto_generichash(t, a.publicKey); emit('target_a', t)

process.stdout.write(out.join('\n') + '\n')
