/* SPDX-License-Identifier: MIT */
/* dht-rpc codec, hyperdht value encodings, routing table, record store and the small
 * node parts (NAT sampler, send window, rate limit, tokens, bootstrap parsing). */
#include <sodium.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "dht/dht_node.h"
#include "dht/dht_node_util.h"
#include "dht/dht_records.h"
#include "dht/dht_table.h"
#include "tests/test.h"

static dht_addr_t A(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    dht_addr_t x = {{a, b, c, d}, port};
    return x;
}

TEST(request_bytes_match_js_layout) {
    ASSERT_TRUE(sodium_init() >= 0);
    /* PING from an ephemeral node to 127.0.0.1:49737, tid 0x1234: 03 | flags 04 | tid LE |
     * to (ip, port LE) | command 00 */
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.tid = 0x1234;
    m.to = A(127, 0, 0, 1, 49737);
    m.internal = 1;
    m.command = DHT_CMD_PING;
    uint8_t buf[64];
    int n = dht_rpc_encode(&m, buf, sizeof buf);
    static const uint8_t want[] = {0x03, 0x04, 0x34, 0x12, 127, 0, 0, 1, 0x49, 0xc2, 0x00};
    ASSERT_EQ_U64(n, sizeof want);
    ASSERT_MEM_EQ(buf, want, sizeof want);
    dht_rpc_msg_t d;
    ASSERT_OK(dht_rpc_decode(buf, (size_t)n, &d));
    ASSERT_FALSE(d.is_response);
    ASSERT_TRUE(d.internal);
    ASSERT_EQ_U64(d.tid, 0x1234);
    ASSERT_EQ_U64(d.to.port, 49737);
    ASSERT_TRUE(d.id == NULL && d.token == NULL && d.target == NULL && d.value == NULL);
}

TEST(response_round_trip_and_truncation) {
    uint8_t id[32], tok[32], val[5] = {1, 2, 3, 4, 5};
    memset(id, 0xaa, 32);
    memset(tok, 0xbb, 32);
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.is_response = 1;
    m.tid = 7;
    m.to = A(10, 0, 0, 2, 1000);
    m.id = id;
    m.token = tok;
    m.has_closer = 1;
    m.ncloser = 2;
    m.closer[0] = A(1, 2, 3, 4, 5);
    m.closer[1] = A(6, 7, 8, 9, 10);
    m.error = DHT_RPC_INVALID_TOKEN;
    m.value = val;
    m.value_len = 5;
    uint8_t buf[256];
    int n = dht_rpc_encode(&m, buf, sizeof buf);
    ASSERT_GT(n, 0);
    ASSERT_EQ_U64(buf[0], 0x13);
    ASSERT_EQ_U64(buf[1], 1 | 2 | 4 | 8 | 16);
    dht_rpc_msg_t d;
    ASSERT_OK(dht_rpc_decode(buf, (size_t)n, &d));
    ASSERT_TRUE(d.is_response);
    ASSERT_MEM_EQ(d.id, id, 32);
    ASSERT_MEM_EQ(d.token, tok, 32);
    ASSERT_EQ_U64(d.ncloser, 2);
    ASSERT_EQ_U64(d.closer[1].port, 10);
    ASSERT_EQ_U64(d.error, 2);
    ASSERT_EQ_U64(d.value_len, 5);
    ASSERT_MEM_EQ(d.value, val, 5);
    for (int cut = 0; cut < n; cut++)
        ASSERT_ERR(dht_rpc_decode(buf, (size_t)cut, &d), COMMON_EPROTO);
    /* trailing bytes are accepted */
    buf[n] = 0xff;
    ASSERT_OK(dht_rpc_decode(buf, (size_t)n + 1, &d));
    buf[0] = 0x23;
    ASSERT_ERR(dht_rpc_decode(buf, (size_t)n, &d), COMMON_EPROTO);
    ASSERT_ERR(dht_rpc_encode(&m, buf, 20), COMMON_ETOOBIG);
}

TEST(node_id_is_blake2b_of_ipv4_address) {
    dht_addr_t a = A(127, 0, 0, 1, 49737);
    uint8_t id[32], want[32], enc[6] = {127, 0, 0, 1, 0x49, 0xc2};
    dht_addr_id(&a, id);
    crypto_generichash(want, 32, enc, 6, NULL, 0);
    ASSERT_MEM_EQ(id, want, 32);
    ASSERT_TRUE(dht_addr_is_local(&a));
    dht_addr_t pub = A(88, 99, 3, 86, 49737);
    ASSERT_FALSE(dht_addr_is_local(&pub));
    dht_addr_t p;
    ASSERT_OK(dht_addr_parse("1.2.3.4:80", &p));
    ASSERT_EQ_U64(p.port, 80);
    ASSERT_ERR(dht_addr_parse("1.2.3.4:0", &p), COMMON_EINVAL);
    ASSERT_ERR(dht_addr_parse("1.2.3:80", &p), COMMON_EINVAL);
}

TEST(values_announce_lookup_signable) {
    dht_peer_record_t r;
    memset(&r, 0, sizeof r);
    memset(r.public_key, 0x11, 32);
    r.nrelays = 2;
    r.relays[0] = A(1, 1, 1, 1, 1);
    r.relays[1] = A(2, 2, 2, 2, 2);
    uint8_t sig[64];
    memset(sig, 0x55, 64);
    dht_announce_t a;
    memset(&a, 0, sizeof a);
    a.has_peer = 1;
    a.peer = r;
    a.signature = sig;
    a.bump = 300;
    uint8_t buf[256];
    int n = dht_announce_encode(&a, buf, sizeof buf);
    ASSERT_EQ_U64(n, 1 + 32 + 1 + 12 + 64 + 3);
    ASSERT_EQ_U64(buf[0], 1 | 4 | 8);
    dht_announce_t d;
    ASSERT_OK(dht_announce_decode(buf, (size_t)n, &d));
    ASSERT_TRUE(d.has_peer && d.signature && !d.refresh);
    ASSERT_EQ_U64(d.peer.nrelays, 2);
    ASSERT_EQ_U64(d.bump, 300);
    ASSERT_ERR(dht_announce_decode(buf, (size_t)n - 70, &d), COMMON_EPROTO);

    dht_lookup_reply_t lr;
    memset(&lr, 0, sizeof lr);
    lr.npeers = 2;
    lr.peers[0] = r;
    lr.peers[1] = r;
    lr.peers[1].nrelays = 0;
    n = dht_lookup_reply_encode(&lr, buf, sizeof buf);
    ASSERT_GT(n, 0);
    dht_lookup_reply_t ld;
    ASSERT_OK(dht_lookup_reply_decode(buf, (size_t)n, &ld));
    ASSERT_EQ_U64(ld.npeers, 2);
    ASSERT_EQ_U64(ld.peers[0].nrelays, 2);
    /* a huge count with no data behind it is rejected, not allocated */
    static const uint8_t bogus[] = {0xfe, 0xff, 0xff, 0xff, 0x7f};
    ASSERT_ERR(dht_lookup_reply_decode(bogus, sizeof bogus, &ld), COMMON_EPROTO);

    /* signable = NS_ANNOUNCE || H(target || id || token || peer || "") */
    uint8_t target[32], nid[32], tok[32], s1[64], s2[64];
    memset(target, 1, 32);
    memset(nid, 2, 32);
    memset(tok, 3, 32);
    ASSERT_OK(dht_announce_signable(0, target, nid, tok, &r, NULL, s1));
    ASSERT_OK(dht_announce_signable(1, target, nid, tok, &r, NULL, s2));
    ASSERT_TRUE(memcmp(s1, s2, 32) != 0);
    ASSERT_MEM_EQ(s1 + 32, s2 + 32, 32);
    uint8_t ns[32], h[32], enc[64];
    dht_crypto_ns_dht(DHT_NS_ANNOUNCE, ns);
    ASSERT_MEM_EQ(s1, ns, 32);
    int el = dht_peer_record_encode(&r, enc, sizeof enc);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, target, 32);
    crypto_generichash_update(&st, nid, 32);
    crypto_generichash_update(&st, tok, 32);
    crypto_generichash_update(&st, enc, (size_t)el);
    crypto_generichash_final(&st, h, 32);
    ASSERT_MEM_EQ(s1 + 32, h, 32);
}

TEST(table_rows_closest_and_full_rows) {
    uint8_t self[32] = {0};
    dht_table_t *t = dht_table_new(self);
    ASSERT_TRUE(t != NULL);
    /* 300 nodes with random ids */
    static dht_table_node_t all[300];
    size_t added = 0;
    for (int i = 0; i < 300; i++) {
        memset(&all[i], 0, sizeof all[i]);
        randombytes_buf(all[i].id, 32);
        all[i].addr = A(1, 2, 3, 4, (uint16_t)(i + 1));
        dht_table_node_t *old = NULL;
        if (dht_table_add(t, &all[i], 1, &old) == DHT_TABLE_ADDED) added++;
    }
    ASSERT_EQ_U64(dht_table_size(t), added);
    /* row 0 (first bit differs) holds at most k: half the ids land there */
    ASSERT_LE(added, 300);
    ASSERT_GE(added, 20);
    uint8_t target[32];
    randombytes_buf(target, 32);
    dht_table_node_t out[20];
    size_t n = dht_table_closest(t, target, out, 20);
    ASSERT_EQ_U64(n, 20);
    for (size_t i = 1; i < n; i++) ASSERT_TRUE(dht_xor_cmp(target, out[i - 1].id, out[i].id) < 0);
    /* brute force: nothing in the table is closer than out[19] that is not in out */
    for (int i = 0; i < 300; i++) {
        if (!dht_table_get(t, all[i].id)) continue;
        if (dht_xor_cmp(target, all[i].id, out[19].id) < 0) {
            int in = 0;
            for (size_t j = 0; j < n; j++) in |= memcmp(out[j].id, all[i].id, 32) == 0;
            ASSERT_TRUE(in);
        }
    }
    /* a full row reports its least recently pinged node */
    dht_table_node_t x;
    memset(&x, 0, sizeof x);
    x.id[0] = 0x80; /* row 0 */
    x.id[31] = 0x77;
    dht_table_node_t *old = NULL;
    dht_table_add_result_t res = dht_table_add(t, &x, 5, &old);
    if (res == DHT_TABLE_FULL) ASSERT_TRUE(old != NULL);
    ASSERT_EQ_U64(dht_table_add(t, &(dht_table_node_t){.id = {0}}, 1, NULL), DHT_TABLE_SELF);
    ASSERT_EQ_U64(dht_table_remove(t, out[0].id), 1);
    ASSERT_TRUE(dht_table_get(t, out[0].id) == NULL);
    dht_table_free(t);
}

TEST(records_caps_and_expiry) {
    dht_records_t *rs = dht_records_new(2, 30, 2, 1000);
    ASSERT_TRUE(rs != NULL);
    uint8_t t1[32] = {1}, t2[32] = {2}, t3[32] = {3};
    dht_peer_record_t r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 25; i++) {
        r.public_key[0] = (uint8_t)i;
        ASSERT_OK(dht_records_add(rs, t1, &r, 100 + (uint64_t)i));
    }
    dht_peer_record_t out[20];
    ASSERT_EQ_U64(dht_records_get(rs, t1, 200, out, 20), 20); /* per-topic cap */
    ASSERT_EQ_U64(out[0].public_key[0], 24);                  /* newest first */
    for (int i = 0; i < 15; i++) {
        r.public_key[0] = (uint8_t)(100 + i);
        ASSERT_OK(dht_records_add(rs, t2, &r, 300));
    }
    dht_records_stats_t st;
    dht_records_stats(rs, &st);
    ASSERT_LE(st.records, 30); /* global cap, oldest evicted */
    ASSERT_EQ_U64(dht_records_get(rs, t2, 300, out, 20), 15);
    ASSERT_OK(dht_records_add(rs, t3, &r, 400)); /* topic cap: oldest topic (t1) goes */
    dht_records_stats(rs, &st);
    ASSERT_EQ_U64(st.topics, 2);
    ASSERT_EQ_U64(dht_records_get(rs, t1, 400, out, 20), 0);
    ASSERT_EQ_U64(dht_records_remove(rs, t3, r.public_key), 1);
    /* routes */
    dht_addr_t relay = A(1, 1, 1, 1, 1);
    ASSERT_OK(dht_records_route_set(rs, t1, &relay, &r, 500));
    ASSERT_TRUE(dht_records_route_get(rs, t1, 600) != NULL);
    ASSERT_TRUE(dht_records_route_get(rs, t1, 1600) == NULL); /* expired */
    dht_records_expire(rs, 5000);
    dht_records_stats(rs, &st);
    ASSERT_EQ_U64(st.records + st.routes, 0);
    dht_records_free(rs);
}

TEST(nat_sampler_like_js) {
    dht_nat_t s;
    dht_nat_init(&s);
    dht_addr_t a = A(1, 2, 3, 4, 5000), b = A(1, 2, 3, 4, 6000);
    dht_nat_add(&s, &a);
    ASSERT_TRUE(s.has_host);
    ASSERT_EQ_U64(s.addr.port, 5000);
    dht_nat_add(&s, &b); /* two different ports: host known, port 0 (random NAT) */
    ASSERT_TRUE(s.has_host);
    ASSERT_EQ_U64(s.addr.port, 0);
    for (int i = 0; i < 40; i++) dht_nat_add(&s, &a);
    ASSERT_EQ_U64(s.addr.port, 5000);
}

TEST(cwnd_rate_tokens_bootstrap) {
    dht_cwnd_t c;
    dht_cwnd_init(&c, 80);
    for (int i = 0; i < 80; i++) dht_cwnd_send(&c);
    ASSERT_TRUE(dht_cwnd_full(&c));
    dht_cwnd_drain(&c);
    ASSERT_FALSE(dht_cwnd_full(&c));
    for (int i = 0; i < 80; i++) dht_cwnd_send(&c);
    ASSERT_TRUE(dht_cwnd_full(&c)); /* 160 across the ring */

    static dht_rate_t r;
    dht_rate_init(&r, 10);
    uint8_t key[6] = {1, 2, 3, 4, 0, 0};
    int allowed = 0;
    for (int i = 0; i < 100; i++) allowed += dht_rate_allow(&r, key, 1000);
    ASSERT_EQ_U64(allowed, 20);                 /* burst of 2 s */
    ASSERT_TRUE(dht_rate_allow(&r, key, 1100)); /* 100 ms later: one more token */

    uint8_t rnd[64];
    randombytes_buf(rnd, 64);
    dht_tokens_t tk;
    dht_tokens_init(&tk, rnd);
    dht_addr_t from = A(1, 2, 3, 4, 1), other_port = A(1, 2, 3, 4, 2), other = A(4, 3, 2, 1, 1);
    uint8_t tok[32];
    dht_tokens_make(&tk, 1, &from, tok);
    ASSERT_TRUE(dht_tokens_check(&tk, &other_port, tok)); /* bound to the IP only */
    ASSERT_FALSE(dht_tokens_check(&tk, &other, tok));
    for (int i = 0; i < 10; i++) dht_tokens_drain(&tk);
    ASSERT_TRUE(dht_tokens_check(&tk, &from, tok)); /* one rotation: still valid */
    for (int i = 0; i < 10; i++) dht_tokens_drain(&tk);
    ASSERT_FALSE(dht_tokens_check(&tk, &from, tok)); /* two rotations: expired */
    dht_tokens_wipe(&tk);

    dht_bootstrap_entry_t e;
    ASSERT_OK(dht_bootstrap_parse("88.99.3.86@node1.hyperdht.org:49737", &e));
    ASSERT_TRUE(e.has_ip);
    ASSERT_EQ_U64(e.ip[0], 88);
    ASSERT_STR_EQ(e.host, "node1.hyperdht.org");
    ASSERT_EQ_U64(e.port, 49737);
    ASSERT_OK(dht_bootstrap_parse("127.0.0.1:1234", &e));
    ASSERT_TRUE(e.has_ip);
    ASSERT_OK(dht_bootstrap_parse("example.org:1", &e));
    ASSERT_FALSE(e.has_ip);
    ASSERT_ERR(dht_bootstrap_parse("example.org", &e), COMMON_EINVAL);
    ASSERT_ERR(dht_bootstrap_parse("1.2.3@x:1", &e), COMMON_EINVAL);
    ASSERT_ERR(dht_bootstrap_parse("bad host:1", &e), COMMON_EINVAL);
    for (int i = 0; i < 3; i++) ASSERT_OK(dht_bootstrap_parse(dht_bootstrap_default[i], &e));
}

TEST(handshake_and_holepunch_values) {
    uint8_t noise[116];
    memset(noise, 0x42, sizeof noise);
    dht_handshake_msg_t h;
    memset(&h, 0, sizeof h);
    h.mode = DHT_HS_FROM_RELAY;
    h.noise = noise;
    h.noise_len = sizeof noise;
    h.has_peer = 1;
    h.peer = A(127, 0, 0, 1, 3000);
    uint8_t buf[256];
    int n = dht_handshake_encode(&h, buf, sizeof buf);
    ASSERT_EQ_U64(n, 1 + 1 + 1 + 116 + 6);
    ASSERT_EQ_U64(buf[0], 1);
    ASSERT_EQ_U64(buf[1], 2);
    dht_handshake_msg_t d;
    ASSERT_OK(dht_handshake_decode(buf, (size_t)n, &d));
    ASSERT_EQ_U64(d.mode, DHT_HS_FROM_RELAY);
    ASSERT_EQ_U64(d.noise_len, 116);
    ASSERT_TRUE(d.has_peer && !d.has_relay);
    ASSERT_EQ_U64(d.peer.port, 3000);
    ASSERT_ERR(dht_handshake_decode(buf, (size_t)n - 1, &d), COMMON_EPROTO);
    dht_holepunch_msg_t hp;
    memset(&hp, 0, sizeof hp);
    hp.mode = DHT_HS_REPLY;
    hp.id = 300;
    hp.payload = noise;
    hp.payload_len = 40;
    n = dht_holepunch_encode(&hp, buf, sizeof buf);
    ASSERT_EQ_U64(n, 1 + 1 + 3 + 1 + 40);
    dht_holepunch_msg_t hd;
    ASSERT_OK(dht_holepunch_decode(buf, (size_t)n, &hd));
    ASSERT_EQ_U64(hd.id, 300);
    ASSERT_FALSE(hd.has_peer);
}

TEST_MAIN(TEST_ENTRY(handshake_and_holepunch_values), TEST_ENTRY(request_bytes_match_js_layout),
          TEST_ENTRY(response_round_trip_and_truncation),
          TEST_ENTRY(node_id_is_blake2b_of_ipv4_address),
          TEST_ENTRY(values_announce_lookup_signable), TEST_ENTRY(table_rows_closest_and_full_rows),
          TEST_ENTRY(records_caps_and_expiry), TEST_ENTRY(nat_sampler_like_js),
          TEST_ENTRY(cwnd_rate_tokens_bootstrap))
