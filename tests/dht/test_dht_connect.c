/* SPDX-License-Identifier: MIT */
/* Handshake and holepunch payload codecs (dht_connect_payload) against byte vectors from
 * hyperdht 6.34.0 (tests/interop/swarm/gen_payload_vectors.js), round trips, malformed
 * input, the holepunch secretbox and the holepunch secret derivation. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "dht/dht_connect_payload.h"
#include "dht/dht_crypto.h"
#include "tests/test.h"

static size_t unhex(const char *h, uint8_t *out, size_t cap) {
    size_t n = strlen(h) / 2;
    if (n > cap || common_hex_decode_exact(h, out, n) != 0) return 0;
    return n;
}

static dht_addr_t A(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    dht_addr_t x = {{a, b, c, d}, port};
    return x;
}

TEST(open_server_vector) {
    static const char *hex = "015a0001010102030449c20100fe7856341200010205060708e803090a0b0cffff";
    uint8_t want[128], out[128];
    size_t wn = unhex(hex, want, sizeof want);
    ASSERT_TRUE(wn > 0);
    dht_hs_payload_t p;
    memset(&p, 0, sizeof p);
    p.firewall = DHT_FIREWALL_OPEN;
    p.naddr4 = 1;
    p.addr4[0] = A(1, 2, 3, 4, 49737);
    p.has_udx = 1;
    p.udx_id = 0x12345678;
    p.has_secret_stream = 1;
    p.has_relay_addresses = 1;
    p.nrelay_addrs = 2;
    p.relay_addrs[0] = A(5, 6, 7, 8, 1000);
    p.relay_addrs[1] = A(9, 10, 11, 12, 65535);
    int n = dht_hs_payload_encode(&p, out, sizeof out);
    ASSERT_EQ_I64(n, (int64_t)wn);
    ASSERT_MEM_EQ(out, want, wn);
    dht_hs_payload_t d;
    ASSERT_OK(dht_hs_payload_decode(want, wn, &d));
    ASSERT_EQ_U64(d.version, 1);
    ASSERT_EQ_U64(d.firewall, DHT_FIREWALL_OPEN);
    ASSERT_EQ_U64(d.naddr4, 1);
    ASSERT_TRUE(dht_ipv4_equal(&d.addr4[0], &p.addr4[0]));
    ASSERT_TRUE(d.has_udx && d.udx_id == 0x12345678 && d.udx_version == 1);
    ASSERT_TRUE(d.has_secret_stream && !d.has_holepunch);
    ASSERT_EQ_U64(d.nrelay_addrs, 2);
    ASSERT_TRUE(dht_ipv4_equal(&d.relay_addrs[1], &p.relay_addrs[1]));
}

TEST(firewalled_server_vector) {
    static const char *hex = "01590002030105060708e80364010203409c010107000100";
    uint8_t want[128], out[128];
    size_t wn = unhex(hex, want, sizeof want);
    dht_hs_payload_t d;
    ASSERT_OK(dht_hs_payload_decode(want, wn, &d));
    ASSERT_EQ_U64(d.firewall, DHT_FIREWALL_CONSISTENT);
    ASSERT_TRUE(d.has_holepunch);
    ASSERT_EQ_U64(d.holepunch_id, 3);
    ASSERT_EQ_U64(d.nhp_relays, 1);
    dht_addr_t r = A(5, 6, 7, 8, 1000), pe = A(100, 1, 2, 3, 40000);
    ASSERT_TRUE(dht_ipv4_equal(&d.hp_relay[0], &r));
    ASSERT_TRUE(dht_ipv4_equal(&d.hp_peer[0], &pe));
    ASSERT_TRUE(d.has_udx && d.udx_features == 1 && d.udx_id == 7);
    ASSERT_TRUE(d.has_relay_addresses && d.nrelay_addrs == 0);
    int n = dht_hs_payload_encode(&d, out, sizeof out);
    ASSERT_EQ_I64(n, (int64_t)wn);
    ASSERT_MEM_EQ(out, want, wn);
}

TEST(client_vector) {
    static const char *hex = "011800000100fd2c010001";
    uint8_t want[64], out[64];
    size_t wn = unhex(hex, want, sizeof want);
    dht_hs_payload_t p;
    memset(&p, 0, sizeof p);
    p.has_udx = 1;
    p.udx_id = 300;
    p.has_secret_stream = 1;
    int n = dht_hs_payload_encode(&p, out, sizeof out);
    ASSERT_EQ_I64(n, (int64_t)wn);
    ASSERT_MEM_EQ(out, want, wn);
}

TEST(holepunch_vector_and_box) {
    static const char *hex =
        "3e000201010a0000018813140000027017aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    uint8_t want[128], out[128];
    size_t wn = unhex(hex, want, sizeof want);
    ASSERT_TRUE(wn > 0);
    dht_hp_payload_t d;
    ASSERT_OK(dht_hp_payload_decode(want, wn, &d));
    ASSERT_TRUE(d.punching && !d.connected);
    ASSERT_EQ_U64(d.firewall, 2);
    ASSERT_EQ_U64(d.round, 1);
    ASSERT_TRUE(d.has_addresses && d.naddrs == 1 && d.has_remote_address);
    ASSERT_TRUE(d.has_token && d.token[0] == 0xaa && d.has_remote_token &&
                d.remote_token[31] == 0xbb);
    int n = dht_hp_payload_encode(&d, out, sizeof out);
    ASSERT_EQ_I64(n, (int64_t)wn);
    ASSERT_MEM_EQ(out, want, wn);
    /* secretbox round trip; a flipped byte is refused */
    uint8_t secret[32], nonce[24], box[256], plain[256];
    memset(secret, 7, sizeof secret);
    memset(nonce, 9, sizeof nonce);
    int bl = dht_hp_seal(secret, nonce, want, wn, box, sizeof box);
    ASSERT_EQ_I64(bl, (int64_t)(wn + 40));
    ASSERT_EQ_I64(dht_hp_open(secret, box, (size_t)bl, plain, sizeof plain), (int64_t)wn);
    ASSERT_MEM_EQ(plain, want, wn);
    box[30] ^= 1;
    ASSERT_EQ_I64(dht_hp_open(secret, box, (size_t)bl, plain, sizeof plain), COMMON_ECRYPTO);
}

TEST(malformed_and_versions) {
    uint8_t b[4] = {2, 0xff, 0xff, 0xff};
    dht_hs_payload_t d;
    ASSERT_OK(dht_hs_payload_decode(b, sizeof b, &d)); /* other version: only version set */
    ASSERT_EQ_U64(d.version, 2);
    ASSERT_FALSE(d.has_udx);
    /* every truncation of a valid payload fails or decodes without reading past the end */
    static const char *hex = "015a0001010102030449c20100fe7856341200010205060708e803090a0b0cffff";
    uint8_t v[128];
    size_t n = unhex(hex, v, sizeof v);
    for (size_t i = 0; i < n; i++) {
        uint8_t *cut = malloc(i ? i : 1);
        memcpy(cut, v, i);
        ASSERT_TRUE(dht_hs_payload_decode(cut, i, &d) == COMMON_EPROTO);
        free(cut);
    }
    /* too many relay entries in the holepunch info */
    uint8_t many[] = {1, 1, 0, 0, 0, 4};
    ASSERT_TRUE(dht_hs_payload_decode(many, sizeof many, &d) == COMMON_EPROTO);
}

TEST(holepunch_secret) {
    /* BLAKE2b-256(msg = NS_PEER_HOLEPUNCH, key = handshake hash), as hyperdht's noise-wrap */
    uint8_t hash[64], ns[32], want[32], got[32];
    for (int i = 0; i < 64; i++) hash[i] = (uint8_t)i;
    dht_crypto_ns_dht(1, ns);
    crypto_generichash(want, 32, ns, 32, hash, 64);
    dht_hp_secret(hash, got);
    ASSERT_MEM_EQ(got, want, 32);
}

TEST_MAIN(TEST_ENTRY(open_server_vector), TEST_ENTRY(firewalled_server_vector),
          TEST_ENTRY(client_vector), TEST_ENTRY(holepunch_vector_and_box),
          TEST_ENTRY(malformed_and_versions), TEST_ENTRY(holepunch_secret))
