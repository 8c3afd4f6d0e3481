/* SPDX-License-Identifier: MIT */
/* dht_swarm over real loopback sockets on one libuv loop, C only: a 6-node persistent C
 * testnet (dht_node_uv), then swarms that join topics. Checks: server/client connect and
 * echo with the right remote keys; two peers that are both server and client end with
 * exactly one connection each (public-key dedupe rule); the firewall hook refuses a peer
 * and the client reports a clear failure, then retries with backoff; write backpressure returns 0
 * and on_drain follows; close frees everything (ASan/LSan). Every wait is bounded. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_env.h"
#include "common/common_err.h"
#include "dht/dht_node_uv.h"
#include "dht/dht_swarm.h"
#include "tests/test.h"

#define NNODES 6

typedef struct side {
    dht_swarm_t *sw;
    dht_keypair_t kp;
    int conns_seen, closes, errors, refuse, announced, ready;
    int last_error;
    dht_swarm_conn_t *conn;
    uint8_t remote[32];
    char got[4096];
    size_t ngot;
    int echo;
    int drains;
    int write_zero;
} side_t;

static uv_loop_t *loop;
static common_env_t env;
static dht_node_uv_t *nodes[NNODES];
static char boot0[32];
static char *boot_list[1] = {boot0};
static int nodes_ready;

static void on_node_ready(void *ud) {
    (void)ud;
    nodes_ready++;
}

static void on_c_data(dht_swarm_conn_t *c, const uint8_t *d, size_t n, void *ud) {
    side_t *s = ud;
    if (s->ngot + n <= sizeof s->got) {
        memcpy(s->got + s->ngot, d, n);
        s->ngot += n;
    }
    if (s->echo) dht_swarm_conn_write(c, d, n);
}
static void on_c_drain(dht_swarm_conn_t *c, void *ud) {
    (void)c;
    ((side_t *)ud)->drains++;
}
static void on_c_close(dht_swarm_conn_t *c, int st, void *ud) {
    (void)st;
    side_t *s = ud;
    s->closes++;
    if (s->conn == c) s->conn = NULL;
}

static void on_connection(dht_swarm_t *sw, dht_swarm_conn_t *c, const dht_swarm_conn_info_t *i,
                          void *ud) {
    (void)sw;
    side_t *s = ud;
    static const dht_swarm_conn_callbacks_t cbs = {NULL, on_c_data, on_c_drain, NULL, on_c_close};
    dht_swarm_conn_set_callbacks(c, &cbs, s);
    s->conns_seen++;
    s->conn = c;
    memcpy(s->remote, i->remote_pk, 32);
}
static void on_announced(dht_swarm_t *sw, const uint8_t t[32], int st, void *ud) {
    (void)sw, (void)t;
    if (st == 0) ((side_t *)ud)->announced++;
}
static void on_error(dht_swarm_t *sw, const uint8_t pk[32], int st, const char *why, void *ud) {
    (void)sw, (void)pk, (void)why;
    side_t *s = ud;
    s->errors++;
    s->last_error = st;
}
static int fw(void *ud, const uint8_t pk[32], int initiator) {
    (void)pk, (void)initiator;
    return ((side_t *)ud)->refuse;
}
static void on_sw_ready(dht_swarm_t *sw, void *ud) {
    (void)sw;
    ((side_t *)ud)->ready = 1;
}

static int side_start(side_t *s, uint8_t seedbyte, uint32_t refresh) {
    memset(s, 0, sizeof *s);
    uint8_t seed[32];
    memset(seed, seedbyte, sizeof seed);
    dht_crypto_keypair_seed(&s->kp, seed);
    dht_swarm_opts_t o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.bootstrap = boot_list;
    o.nbootstrap = 1;
    o.allow_local = 1;
    o.ephemeral = 1;
    o.refresh_ms = refresh;
    o.firewall = fw;
    o.on_connection = on_connection;
    o.on_announced = on_announced;
    o.on_error = on_error;
    o.on_ready = on_sw_ready;
    o.ud = s;
    int err = 0;
    s->sw = dht_swarm_new(loop, &env, &s->kp, &o, &err);
    return s->sw ? 0 : err;
}

/* run the loop until *flag reaches want, at most ms milliseconds */
static int wait_for(const int *flag, int want, uint64_t ms) {
    uint64_t end = uv_now(loop) + ms;
    while ((!flag || *flag < want) && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    return !flag || *flag >= want;
}

static int closed_count;
static void on_closed(void *ud) {
    (void)ud;
    closed_count++;
}
static void side_close(side_t *s) {
    int before = closed_count;
    dht_swarm_close(s->sw, on_closed, NULL);
    wait_for(&closed_count, before + 1, 5000);
    dht_crypto_keypair_wipe(&s->kp);
}

static int testnet_up(void) {
    loop = uv_default_loop();
    common_env_default(&env, loop, NULL);
    dht_node_uv_opts_t o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.allow_local = 1;
    o.public_host = 1;
    static char *const none[1] = {NULL};
    o.bootstrap = none;
    o.nbootstrap = 0;
    dht_node_events_t ev = {on_node_ready, NULL, NULL};
    int err = 0;
    nodes[0] = dht_node_uv_new(loop, &o, &env, &ev, &err);
    if (!nodes[0]) return err;
    dht_addr_t a;
    dht_node_uv_server_addr(nodes[0], &a);
    dht_ipv4_format(&a, boot0, sizeof boot0);
    o.bootstrap = boot_list;
    o.nbootstrap = 1;
    for (int i = 1; i < NNODES; i++) {
        nodes[i] = dht_node_uv_new(loop, &o, &env, &ev, &err);
        if (!nodes[i]) return err;
    }
    wait_for(&nodes_ready, NNODES - 1, 10000);
    wait_for(NULL, 0, 500);
    return 0;
}

static int nodes_closed;
static void on_node_closed(void *ud) {
    (void)ud;
    nodes_closed++;
}
static void testnet_down(void) {
    for (int i = 0; i < NNODES; i++)
        if (nodes[i]) dht_node_uv_close(nodes[i], on_node_closed, NULL);
    wait_for(&nodes_closed, NNODES, 5000);
    uv_run(loop, UV_RUN_NOWAIT);
}

static uint8_t topic1[32], topic2[32], topic3[32], topic4[32];

TEST(server_client_echo) {
    side_t a, b;
    ASSERT_OK(side_start(&a, 0xa1, 0));
    ASSERT_OK(side_start(&b, 0xb2, 1000));
    a.echo = 1;
    ASSERT_TRUE(wait_for(&a.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(a.sw, topic1, 1, 0));
    ASSERT_TRUE(wait_for(&a.announced, 1, 10000));
    ASSERT_TRUE(wait_for(&b.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(b.sw, topic1, 0, 1));
    ASSERT_TRUE(wait_for(&b.conns_seen, 1, 10000));
    ASSERT_TRUE(wait_for(&a.conns_seen, 1, 5000));
    ASSERT_MEM_EQ(b.remote, a.kp.pk, 32);
    ASSERT_MEM_EQ(a.remote, b.kp.pk, 32);
    ASSERT_TRUE(dht_swarm_conn_is_initiator(b.conn));
    ASSERT_FALSE(dht_swarm_conn_is_initiator(a.conn));
    ASSERT_MEM_EQ(dht_swarm_conn_handshake_hash(a.conn), dht_swarm_conn_handshake_hash(b.conn), 64);
    const char *msg = "{\"hello\":\"swarm\"}\n";
    ASSERT_EQ_I64(dht_swarm_conn_write(b.conn, msg, strlen(msg)), 1);
    int want = (int)strlen(msg);
    int got = 0;
    for (int i = 0; i < 400 && got < want; i++) {
        wait_for(NULL, 0, 10);
        got = (int)b.ngot;
    }
    ASSERT_EQ_I64(b.ngot, want);
    ASSERT_MEM_EQ(b.got, msg, (size_t)want);
    /* the link vtable reaches the same connection */
    ASSERT_EQ_I64(dht_link_swarm.write(b.conn, "x", 1), 1);
    ASSERT_MEM_EQ(dht_link_swarm.remote_pk(b.conn), a.kp.pk, 32);
    /* backpressure: a large burst makes write return 0, then on_drain follows */
    a.echo = 0;
    static uint8_t big[1 << 20];
    int zero = 0;
    for (int i = 0; i < 16 && !zero; i++)
        if (dht_swarm_conn_write(b.conn, big, sizeof big) == 0) zero = 1;
    ASSERT_TRUE(zero);
    ASSERT_TRUE(wait_for(&b.drains, 1, 10000));
    dht_swarm_conn_close(b.conn);
    ASSERT_EQ_I64(b.closes, 0); /* on_close is asynchronous */
    ASSERT_TRUE(wait_for(&b.closes, 1, 5000));
    ASSERT_TRUE(wait_for(&a.closes, 1, 10000));
    side_close(&a);
    side_close(&b);
}

TEST(dedupe_one_connection) {
    side_t a, b;
    ASSERT_OK(side_start(&a, 0x31, 700));
    ASSERT_OK(side_start(&b, 0x42, 700));
    ASSERT_TRUE(wait_for(&a.ready, 1, 10000));
    ASSERT_TRUE(wait_for(&b.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(a.sw, topic2, 1, 1));
    ASSERT_OK(dht_swarm_join(b.sw, topic2, 1, 1));
    ASSERT_TRUE(wait_for(&a.conns_seen, 1, 15000));
    ASSERT_TRUE(wait_for(&b.conns_seen, 1, 15000));
    wait_for(NULL, 0, 3000); /* several refreshes: duplicates are resolved */
    ASSERT_EQ_U64(dht_swarm_conn_count(a.sw), 1);
    ASSERT_EQ_U64(dht_swarm_conn_count(b.sw), 1);
    ASSERT_TRUE(a.conn != NULL && b.conn != NULL);
    /* the surviving pair is one connection: opposite roles */
    ASSERT_TRUE(dht_swarm_conn_is_initiator(a.conn) != dht_swarm_conn_is_initiator(b.conn));
    side_close(&a);
    side_close(&b);
}

TEST(firewall_refuses) {
    side_t a, b;
    ASSERT_OK(side_start(&a, 0x55, 0));
    ASSERT_OK(side_start(&b, 0x66, 60000));
    a.refuse = 1;
    ASSERT_TRUE(wait_for(&a.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(a.sw, topic3, 1, 0));
    ASSERT_TRUE(wait_for(&a.announced, 1, 10000));
    ASSERT_TRUE(wait_for(&b.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(b.sw, topic3, 0, 1));
    ASSERT_TRUE(wait_for(&b.errors, 1, 30000));
    ASSERT_EQ_I64(b.last_error, DHT_ENOROUTE);
    /* retried with backoff (1 s) while the topic is joined, without a new lookup */
    ASSERT_TRUE(wait_for(&b.errors, 2, 30000));
    dht_swarm_stats_t bst;
    dht_swarm_stats(b.sw, &bst);
    ASSERT_GE(bst.attempts, 2);
    ASSERT_EQ_I64(a.conns_seen, 0);
    ASSERT_EQ_I64(b.conns_seen, 0);
    dht_swarm_stats_t st;
    dht_swarm_stats(a.sw, &st);
    ASSERT_GT(st.handshakes_refused, 0);
    side_close(&a);
    side_close(&b);
}

TEST(reconnect_replaces_stale) {
    /* B talks to A; then B2 (same key as B) connects: A keeps the new connection and drops
     * the old one, as hyperswarm does for a peer that lost its connection */
    side_t a, b, b2;
    ASSERT_OK(side_start(&a, 0x71, 0));
    ASSERT_OK(side_start(&b, 0x72, 60000));
    a.echo = 1;
    ASSERT_TRUE(wait_for(&a.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(a.sw, topic4, 1, 0));
    ASSERT_TRUE(wait_for(&a.announced, 1, 10000));
    ASSERT_TRUE(wait_for(&b.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(b.sw, topic4, 0, 1));
    ASSERT_TRUE(wait_for(&b.conns_seen, 1, 10000));
    ASSERT_EQ_I64(dht_swarm_conn_write(b.conn, "ping\n", 5), 1);
    int five = 5;
    for (int i = 0; i < 500 && (int)b.ngot < five; i++) wait_for(NULL, 0, 10);
    ASSERT_EQ_I64(b.ngot, 5);
    ASSERT_OK(side_start(&b2, 0x72, 60000));
    ASSERT_TRUE(wait_for(&b2.ready, 1, 10000));
    ASSERT_OK(dht_swarm_join(b2.sw, topic4, 0, 1));
    ASSERT_TRUE(wait_for(&b2.conns_seen, 1, 10000));
    ASSERT_TRUE(wait_for(&a.conns_seen, 2, 5000));
    ASSERT_TRUE(wait_for(&b.closes, 1, 10000)); /* the stale one is gone */
    ASSERT_EQ_U64(dht_swarm_conn_count(a.sw), 1);
    ASSERT_TRUE(b2.conn != NULL);
    ASSERT_EQ_I64(dht_swarm_conn_write(b2.conn, "pong\n", 5), 1);
    for (int i = 0; i < 500 && (int)b2.ngot < five; i++) wait_for(NULL, 0, 10);
    ASSERT_EQ_I64(b2.ngot, 5);
    side_close(&a);
    side_close(&b);
    side_close(&b2);
}

static void setup(void) {
    randombytes_buf(topic1, 32);
    randombytes_buf(topic2, 32);
    randombytes_buf(topic3, 32);
    randombytes_buf(topic4, 32);
}

TEST(network) {
    setup();
    ASSERT_OK(testnet_up());
    ASSERT_GE(nodes_ready, NNODES - 1);
}

TEST(teardown) {
    testnet_down();
    ASSERT_EQ_I64(nodes_closed, NNODES);
}

TEST_MAIN(TEST_ENTRY(network), TEST_ENTRY(server_client_echo), TEST_ENTRY(dedupe_one_connection),
          TEST_ENTRY(firewall_refuses), TEST_ENTRY(reconnect_replaces_stale), TEST_ENTRY(teardown))
