/* SPDX-License-Identifier: MIT */
/* One node core driven with hand-made datagrams: replies, ids, tokens, signatures,
 * storage, PING_NAT, DELAYED_PING, ephemeral refusal, id validation and the rate limit. */
#include <sodium.h>

#include "common/common_err.h"
#include "dht/dht_node.h"
#include "tests/test.h"

typedef struct cap {
    int n;
    int sock[64];
    dht_addr_t to[64];
    size_t len[64];
    uint8_t buf[64][2048];
    long total;
} cap_t;

static void cap_send(void *ud, int sock, const uint8_t *buf, size_t len, const dht_addr_t *to) {
    cap_t *c = ud;
    c->total++;
    if (c->n >= 64) return;
    c->sock[c->n] = sock;
    c->to[c->n] = *to;
    c->len[c->n] = len;
    memcpy(c->buf[c->n], buf, len);
    c->n++;
}

typedef struct fx {
    common_vclock_t vc;
    common_seeded_rng_t rng;
    common_env_t env;
    cap_t cap;
    dht_node_t *node;
    dht_addr_t me, peer;
} fx_t;

static fx_t F; /* big; static storage */

static int fx_init(int ephemeral) {
    memset(&F, 0, sizeof F);
    if (sodium_init() < 0) return 0;
    F.vc.now_ms = 50000;
    F.vc.unix_ms = 1700000000000ull;
    F.env.clock = common_clock_virtual(&F.vc);
    F.env.rng = common_rng_seeded(&F.rng, 42);
    F.me = (dht_addr_t){{127, 0, 0, 1}, 5000};
    F.peer = (dht_addr_t){{127, 0, 0, 1}, 6000};
    dht_node_opts_t o;
    memset(&o, 0, sizeof o);
    o.ephemeral = ephemeral;
    o.allow_local = 1;
    o.public_addr = ephemeral ? NULL : &F.me;
    o.server_port = 5000;
    dht_node_io_t io = {cap_send, &F.cap};
    F.node = dht_node_new(&o, &F.env, &io, NULL, NULL);
    if (!F.node) return 0;
    dht_node_start(F.node);
    dht_node_run_timers(F.node); /* deferred bootstrap completion: persistent now */
    dht_node_run_timers(F.node);
    F.cap.n = 0;
    return 1;
}

/* send a request from F.peer; returns the number of datagrams the node sent back */
static int req(int sock, uint16_t tid, int internal, uint64_t cmd, const uint8_t *target,
               const uint8_t *token, const uint8_t *value, size_t vlen, const uint8_t *id) {
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.tid = tid;
    m.to = F.me;
    m.internal = internal;
    m.command = cmd;
    m.target = target;
    m.token = token;
    m.id = id;
    m.value = value;
    m.value_len = value ? vlen : 0;
    uint8_t buf[2048];
    int n = dht_rpc_encode(&m, buf, sizeof buf);
    if (n < 0) return -1;
    F.cap.n = 0;
    dht_node_on_datagram(F.node, sock, buf, (size_t)n, &F.peer);
    return F.cap.n;
}

static int last(dht_rpc_msg_t *out) {
    return dht_rpc_decode(F.cap.buf[0], F.cap.len[0], out);
}

TEST(ping_reply_carries_id_only_on_server_socket) {
    ASSERT_TRUE(fx_init(0));
    ASSERT_TRUE(dht_node_is_persistent(F.node));
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 77, 1, DHT_CMD_PING, NULL, NULL, NULL, 0, NULL), 1);
    dht_rpc_msg_t r;
    ASSERT_OK(last(&r));
    ASSERT_TRUE(r.is_response);
    ASSERT_EQ_U64(r.tid, 77);
    ASSERT_EQ_U64(r.to.port, 6000); /* the requester as we see it (NAT sample input) */
    uint8_t want[32];
    dht_addr_id(&F.me, want);
    ASSERT_TRUE(r.id != NULL);
    ASSERT_MEM_EQ(r.id, want, 32);
    ASSERT_TRUE(r.token == NULL && !r.has_closer && r.value == NULL);
    ASSERT_EQ_U64(F.cap.len[0], 1 + 1 + 2 + 6 + 32); /* nothing more than needed */
    ASSERT_EQ_U64(req(DHT_SOCK_CLIENT, 78, 1, DHT_CMD_PING, NULL, NULL, NULL, 0, NULL), 1);
    ASSERT_OK(last(&r));
    ASSERT_TRUE(r.id == NULL);
    ASSERT_EQ_U64(F.cap.sock[0], DHT_SOCK_CLIENT); /* replies leave on the arrival socket */
    /* FIND_NODE without a target: dropped */
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 79, 1, DHT_CMD_FIND_NODE, NULL, NULL, NULL, 0, NULL), 0);
    dht_node_free(F.node);
}

TEST(ping_nat_and_delayed_ping) {
    ASSERT_TRUE(fx_init(0));
    uint8_t port[2] = {0x39, 0x30}; /* 12345 */
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 5, 1, DHT_CMD_PING_NAT, NULL, NULL, port, 2, NULL), 1);
    ASSERT_EQ_U64(F.cap.to[0].port, 12345);
    uint8_t zero[2] = {0, 0};
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 6, 1, DHT_CMD_PING_NAT, NULL, NULL, zero, 2, NULL), 0);
    uint8_t d[4] = {0xf4, 0x01, 0, 0}; /* 500 ms */
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 7, 1, DHT_CMD_DELAYED_PING, NULL, NULL, d, 4, NULL), 0);
    common_vclock_advance(&F.vc, 499);
    dht_node_run_timers(F.node);
    ASSERT_EQ_U64(F.cap.n, 0);
    common_vclock_advance(&F.vc, 1);
    dht_node_run_timers(F.node);
    ASSERT_EQ_U64(F.cap.n, 1);
    dht_rpc_msg_t r;
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.tid, 7);
    uint8_t big[4] = {0x11, 0x27, 0, 0}; /* 10001 ms: over the cap, dropped */
    F.cap.n = 0;
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 8, 1, DHT_CMD_DELAYED_PING, NULL, NULL, big, 4, NULL), 0);
    common_vclock_advance(&F.vc, 11000);
    dht_node_run_timers(F.node);
    for (int i = 0; i < F.cap.n; i++) {
        dht_rpc_msg_t x;
        if (dht_rpc_decode(F.cap.buf[i], F.cap.len[i], &x) == 0 && x.is_response)
            ASSERT_TRUE(x.tid != 8);
    }
    dht_node_free(F.node);
}

static int announce(uint64_t cmd, const uint8_t topic[32], const uint8_t token[32],
                    const dht_keypair_t *kp, const uint8_t *sign_id, int corrupt) {
    dht_announce_t a;
    memset(&a, 0, sizeof a);
    a.has_peer = 1;
    memcpy(a.peer.public_key, kp->pk, 32);
    uint8_t signable[64], sig[64];
    dht_announce_signable(cmd == DHT_CMD_UNANNOUNCE, topic, sign_id, token, &a.peer, NULL,
                          signable);
    dht_crypto_sign(sig, signable, 64, kp->sk);
    if (corrupt) sig[0] ^= 1;
    a.signature = sig;
    uint8_t val[256];
    int n = dht_announce_encode(&a, val, sizeof val);
    return req(DHT_SOCK_SERVER, 100, 0, cmd, topic, token, val, (size_t)n, NULL);
}

TEST(tokens_signatures_and_storage) {
    ASSERT_TRUE(fx_init(0));
    uint8_t topic[32], seed[32], id[32];
    memset(topic, 7, 32);
    memset(seed, 9, 32);
    dht_keypair_t kp;
    dht_crypto_keypair_seed(&kp, seed);
    dht_addr_id(&F.me, id);
    /* LOOKUP: token for us, no value yet */
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 1, 0, DHT_CMD_LOOKUP, topic, NULL, NULL, 0, NULL), 1);
    dht_rpc_msg_t r;
    ASSERT_OK(last(&r));
    ASSERT_TRUE(r.token != NULL);
    ASSERT_TRUE(r.value == NULL);
    uint8_t token[32];
    memcpy(token, r.token, 32);
    /* wrong token: INVALID_TOKEN plus a fresh token */
    uint8_t bad[32];
    memset(bad, 1, 32);
    ASSERT_EQ_U64(announce(DHT_CMD_ANNOUNCE, topic, bad, &kp, id, 0), 1);
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.error, DHT_RPC_INVALID_TOKEN);
    ASSERT_TRUE(r.token != NULL);
    /* bad signature (or signed for another node id): no reply at all */
    ASSERT_EQ_U64(announce(DHT_CMD_ANNOUNCE, topic, token, &kp, id, 1), 0);
    uint8_t other_id[32];
    memset(other_id, 3, 32);
    ASSERT_EQ_U64(announce(DHT_CMD_ANNOUNCE, topic, token, &kp, other_id, 0), 0);
    /* valid: bare reply (no token, no closer nodes), then LOOKUP returns the record */
    ASSERT_EQ_U64(announce(DHT_CMD_ANNOUNCE, topic, token, &kp, id, 0), 1);
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.error, 0);
    ASSERT_TRUE(r.token == NULL && !r.has_closer);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 2, 0, DHT_CMD_LOOKUP, topic, NULL, NULL, 0, NULL), 1);
    ASSERT_OK(last(&r));
    dht_lookup_reply_t lr;
    ASSERT_OK(dht_lookup_reply_decode(r.value, r.value_len, &lr));
    ASSERT_EQ_U64(lr.npeers, 1);
    ASSERT_MEM_EQ(lr.peers[0].public_key, kp.pk, 32);
    /* the token still works after one rotation (7.5 s), not after two */
    common_vclock_advance(&F.vc, 7600);
    dht_node_run_timers(F.node);
    ASSERT_EQ_U64(announce(DHT_CMD_UNANNOUNCE, topic, token, &kp, id, 1), 0); /* bad sig */
    ASSERT_EQ_U64(announce(DHT_CMD_UNANNOUNCE, topic, token, &kp, id, 0), 1);
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.error, 0);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 3, 0, DHT_CMD_LOOKUP, topic, NULL, NULL, 0, NULL), 1);
    ASSERT_OK(last(&r));
    ASSERT_TRUE(r.value == NULL);
    common_vclock_advance(&F.vc, 16000);
    dht_node_run_timers(F.node);
    ASSERT_EQ_U64(announce(DHT_CMD_ANNOUNCE, topic, token, &kp, id, 0), 1);
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.error, DHT_RPC_INVALID_TOKEN);
    /* self-announce: a route, served to FIND_PEER and appended to LOOKUP */
    uint8_t self[32];
    dht_crypto_target(kp.pk, self);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 4, 0, DHT_CMD_LOOKUP, self, NULL, NULL, 0, NULL), 1);
    ASSERT_OK(last(&r));
    memcpy(token, r.token, 32);
    ASSERT_EQ_U64(announce(DHT_CMD_ANNOUNCE, self, token, &kp, id, 0), 1);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 5, 0, DHT_CMD_FIND_PEER, self, NULL, NULL, 0, NULL), 1);
    ASSERT_OK(last(&r));
    dht_peer_record_t pr;
    size_t pos = 0;
    ASSERT_OK(dht_peer_record_decode(r.value, r.value_len, &pos, &pr));
    ASSERT_MEM_EQ(pr.public_key, kp.pk, 32);
    dht_crypto_keypair_wipe(&kp);
    dht_node_free(F.node);
}

TEST(full_topic_lookup_fits_one_datagram) {
    ASSERT_TRUE(fx_init(0));
    uint8_t topic[32], id[32];
    memset(topic, 8, 32);
    dht_addr_id(&F.me, id);
    for (int i = 0; i < 25; i++) {
        ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 1, 0, DHT_CMD_LOOKUP, topic, NULL, NULL, 0, NULL), 1);
        dht_rpc_msg_t r;
        ASSERT_OK(last(&r));
        uint8_t token[32], seed[32];
        memcpy(token, r.token, 32);
        memset(seed, i + 1, 32);
        dht_keypair_t kp;
        dht_crypto_keypair_seed(&kp, seed);
        dht_announce_t a;
        memset(&a, 0, sizeof a);
        a.has_peer = 1;
        memcpy(a.peer.public_key, kp.pk, 32);
        a.peer.nrelays = 3;
        for (int j = 0; j < 3; j++) a.peer.relays[j] = (dht_addr_t){{10, 0, 0, (uint8_t)j}, 1000};
        uint8_t signable[64], sig[64], val[256];
        dht_announce_signable(0, topic, id, token, &a.peer, NULL, signable);
        dht_crypto_sign(sig, signable, 64, kp.sk);
        a.signature = sig;
        int n = dht_announce_encode(&a, val, sizeof val);
        ASSERT_EQ_U64(
            req(DHT_SOCK_SERVER, 2, 0, DHT_CMD_ANNOUNCE, topic, token, val, (size_t)n, NULL), 1);
    }
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 3, 0, DHT_CMD_LOOKUP, topic, NULL, NULL, 0, NULL), 1);
    dht_rpc_msg_t r;
    ASSERT_OK(last(&r));
    dht_lookup_reply_t lr;
    ASSERT_OK(dht_lookup_reply_decode(r.value, r.value_len, &lr));
    ASSERT_EQ_U64(lr.npeers, 20);
    ASSERT_EQ_U64(lr.peers[0].nrelays, 3);
    ASSERT_LE(F.cap.len[0], 1400); /* stays under a common path MTU */
    dht_node_free(F.node);
}

TEST(ephemeral_refuses_storage_and_never_sends_id) {
    ASSERT_TRUE(fx_init(1));
    ASSERT_FALSE(dht_node_is_persistent(F.node));
    uint8_t topic[32];
    memset(topic, 7, 32);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 1, 0, DHT_CMD_LOOKUP, topic, NULL, NULL, 0, NULL), 1);
    dht_rpc_msg_t r;
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.error, DHT_RPC_UNKNOWN_COMMAND);
    ASSERT_TRUE(r.id == NULL);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 2, 1, 99, NULL, NULL, NULL, 0, NULL), 1);
    ASSERT_OK(last(&r));
    ASSERT_EQ_U64(r.error, DHT_RPC_UNKNOWN_COMMAND);
    dht_node_free(F.node);
}

TEST(ids_are_validated_and_requests_rate_limited) {
    ASSERT_TRUE(fx_init(0));
    /* a request claiming a wrong id: answered, but the sender does not enter the table */
    uint8_t fake[32];
    memset(fake, 0xee, 32);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 1, 1, DHT_CMD_PING, NULL, NULL, NULL, 0, fake), 1);
    ASSERT_EQ_U64(dht_node_table_size(F.node), 0);
    uint8_t real[32];
    dht_addr_id(&F.peer, real);
    ASSERT_EQ_U64(req(DHT_SOCK_SERVER, 2, 1, DHT_CMD_PING, NULL, NULL, NULL, 0, real), 1);
    ASSERT_EQ_U64(dht_node_table_size(F.node), 1);
    /* 1000 pings from one public IP in the same millisecond: only the burst is answered */
    F.peer = (dht_addr_t){{8, 8, 8, 8}, 7000};
    long before = F.cap.total;
    for (int i = 0; i < 1000; i++)
        req(DHT_SOCK_SERVER, (uint16_t)i, 1, DHT_CMD_PING, NULL, NULL, NULL, 0, NULL);
    long answered = F.cap.total - before;
    ASSERT_EQ_U64(answered, 2 * DHT_NODE_RATE_PER_SEC);
    dht_node_stats_t st;
    dht_node_stats(F.node, &st);
    ASSERT_EQ_U64(st.dropped_rate, 1000 - answered);
    dht_node_free(F.node);
}

TEST_MAIN(TEST_ENTRY(ping_reply_carries_id_only_on_server_socket),
          TEST_ENTRY(ping_nat_and_delayed_ping), TEST_ENTRY(tokens_signatures_and_storage),
          TEST_ENTRY(full_topic_lookup_fits_one_datagram),
          TEST_ENTRY(ephemeral_refuses_storage_and_never_sends_id),
          TEST_ENTRY(ids_are_validated_and_requests_rate_limited))
