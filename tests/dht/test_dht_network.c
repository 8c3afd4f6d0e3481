/* SPDX-License-Identifier: MIT */
/* A C-only network of 100 persistent nodes in one process (virtual clock, in-memory
 * datagrams): 20 topics announced, 100 lookups at 100 %, then 20 % of the nodes killed and
 * 100 lookups again (>= 99 %). Also unannounce and find_peer on the same network. */
#include <sodium.h>
#include <stdio.h>

#include "common/common_err.h"
#include "dht_sim.h"
#include "tests/test.h"

#define NODES   100
#define TOPICS  20
#define LOOKUPS 100

typedef struct lk {
    const uint8_t *want;
    int found;
    int done;
    int status;
} lk_t;

static void on_peer(void *ud, const dht_peer_record_t *p, const dht_addr_t *from) {
    (void)from;
    lk_t *l = ud;
    if (memcmp(p->public_key, l->want, 32) == 0) l->found = 1;
}
static void on_done(void *ud, int status) {
    lk_t *l = ud;
    l->done = 1;
    l->status = status;
}

static sim_t sim; /* large; static storage keeps it off the stack */
static uint8_t topics[TOPICS][32];
static dht_keypair_t kps[TOPICS];

static int build(test_ctx_t *test_ctx_) {
    sim_init(&sim);
    for (int i = 0; i < NODES; i++) {
        sim_node_t *sn = sim_add(&sim, 0, 0);
        if (!sn) {
            test_ctx_->failed = 1;
            return 0;
        }
        if (!sim_run_until(&sim, &sn->ready, 60000)) {
            fprintf(stderr, "  node %d never ready\n", i);
            test_ctx_->failed = 1;
            return 0;
        }
    }
    /* let tables settle a little (one refresh cycle is not needed; 10 s of traffic) */
    sim_run_until(&sim, NULL, 10000);
    return 1;
}

static int run_lookups(uint32_t seed, int *ok, uint64_t *msgs) {
    common_seeded_rng_t r;
    common_env_t e = {common_clock_virtual(&sim.vc), common_rng_seeded(&r, seed), NULL};
    *ok = 0;
    uint64_t before = sim.sent;
    for (int i = 0; i < LOOKUPS; i++) {
        int who;
        do who = (int)common_random_uniform(&e, NODES);
        while (sim.nodes[who].dead);
        int t = (int)common_random_uniform(&e, TOPICS);
        lk_t l = {kps[t].pk, 0, 0, 0};
        dht_query_t *q = dht_lookup(sim.nodes[who].node, topics[t], on_peer, on_done, &l);
        if (!q) return 0;
        sim_run_until(&sim, &l.done, 120000);
        if (!l.done) dht_query_cancel(q);
        if (l.found) (*ok)++;
    }
    *msgs = sim.sent - before;
    return 1;
}

TEST(network_100_nodes) {
    ASSERT_TRUE(sodium_init() >= 0);
    if (!build(test_ctx_)) {
        sim_free(&sim);
        return;
    }
    size_t persistent = 0, table_total = 0;
    for (int i = 0; i < NODES; i++) {
        persistent += (size_t)dht_node_is_persistent(sim.nodes[i].node);
        table_total += dht_node_table_size(sim.nodes[i].node);
    }
    fprintf(stderr, "  %d nodes, %zu persistent, mean table %zu\n", NODES, persistent,
            table_total / NODES);
    ASSERT_EQ_U64(persistent, NODES);

    common_seeded_rng_t r;
    common_env_t e = {common_clock_virtual(&sim.vc), common_rng_seeded(&r, 7), NULL};
    for (int t = 0; t < TOPICS; t++) {
        common_random(&e, topics[t], 32);
        uint8_t seed[32];
        common_random(&e, seed, 32);
        dht_crypto_keypair_seed(&kps[t], seed);
        int who = (int)common_random_uniform(&e, NODES);
        lk_t l = {0};
        dht_addr_t relay = {{127, 0, 0, 1}, 9999};
        ASSERT_TRUE(dht_announce(sim.nodes[who].node, topics[t], &kps[t], &relay, 1, on_done, &l) !=
                    NULL);
        sim_run_until(&sim, &l.done, 120000);
        ASSERT_TRUE(l.done);
        ASSERT_OK(l.status);
    }
    int ok = 0;
    uint64_t msgs = 0;
    ASSERT_TRUE(run_lookups(11, &ok, &msgs));
    fprintf(stderr, "  before kill: %d/%d lookups found the record, %.1f datagrams/lookup\n", ok,
            LOOKUPS, (double)msgs / LOOKUPS);
    ASSERT_EQ_U64(ok, LOOKUPS);

    /* kill 20 % (never node 0 - it is everyone's bootstrap, as a real bootstrap would be) */
    int killed = 0;
    while (killed < NODES / 5) {
        int v = 1 + (int)common_random_uniform(&e, NODES - 1);
        if (sim.nodes[v].dead) continue;
        sim.nodes[v].dead = 1;
        killed++;
    }
    ASSERT_TRUE(run_lookups(12, &ok, &msgs));
    fprintf(stderr, "  after killing %d: %d/%d lookups found the record, %.1f datagrams/lookup\n",
            killed, ok, LOOKUPS, (double)msgs / LOOKUPS);
    ASSERT_GE(ok, LOOKUPS * 99 / 100);

    /* unannounce topic 0 from a live node, then nobody finds it */
    int who = 1;
    while (sim.nodes[who].dead) who++;
    lk_t u = {0};
    ASSERT_TRUE(dht_unannounce(sim.nodes[who].node, topics[0], &kps[0], on_done, &u) != NULL);
    sim_run_until(&sim, &u.done, 120000);
    ASSERT_TRUE(u.done);
    lk_t l = {kps[0].pk, 0, 0, 0};
    ASSERT_TRUE(dht_lookup(sim.nodes[who].node, topics[0], on_peer, on_done, &l) != NULL);
    sim_run_until(&sim, &l.done, 120000);
    ASSERT_TRUE(l.done);
    ASSERT_FALSE(l.found);

    /* self-announce (target = hash(pk)) creates routes; find_peer streams the record */
    uint8_t self_target[32];
    dht_crypto_target(kps[1].pk, self_target);
    lk_t a = {0};
    ASSERT_TRUE(dht_announce(sim.nodes[who].node, self_target, &kps[1], NULL, 0, on_done, &a));
    sim_run_until(&sim, &a.done, 120000);
    ASSERT_OK(a.status);
    lk_t f = {kps[1].pk, 0, 0, 0};
    ASSERT_TRUE(dht_find_peer(sim.nodes[5].node, kps[1].pk, on_peer, on_done, &f) != NULL);
    sim_run_until(&sim, &f.done, 120000);
    ASSERT_TRUE(f.found);
    for (int t = 0; t < TOPICS; t++) dht_crypto_keypair_wipe(&kps[t]);
    sim_free(&sim);
}

TEST(adaptive_node_passes_firewall_check_then_turns_persistent) {
    ASSERT_TRUE(sodium_init() >= 0);
    sim_init(&sim);
    for (int i = 0; i < 10; i++) {
        sim_node_t *sn = sim_add(&sim, 0, 0);
        ASSERT_TRUE(sn != NULL);
        ASSERT_TRUE(sim_run_until(&sim, &sn->ready, 60000));
    }
    sim_node_t *fixed = sim_add(&sim, 1, 0);    /* plain ephemeral client */
    sim_node_t *adaptive = sim_add(&sim, 1, 1); /* JS-default style adaptive node */
    ASSERT_TRUE(fixed && adaptive);
    ASSERT_TRUE(sim_run_until(&sim, &fixed->ready, 60000));
    ASSERT_TRUE(sim_run_until(&sim, &adaptive->ready, 60000));
    /* PING_NAT replies reached the server socket: both are reachable, still ephemeral */
    ASSERT_FALSE(dht_node_is_firewalled(adaptive->node));
    ASSERT_FALSE(dht_node_is_persistent(adaptive->node));
    ASSERT_FALSE(dht_node_is_persistent(fixed->node));
    /* ~20 stable minutes later the adaptive one takes its id and serves storage */
    sim_run_until(&sim, NULL, 22u * 60u * 1000u);
    ASSERT_TRUE(dht_node_is_persistent(adaptive->node));
    ASSERT_FALSE(dht_node_is_persistent(fixed->node));
    uint8_t want[32];
    dht_addr_t a = sim_addr(adaptive->idx);
    dht_addr_id(&a, want);
    ASSERT_MEM_EQ(dht_node_id(adaptive->node), want, 32);
    /* others route to it: an announce from a plain node reaches it (12 nodes < k = 20) */
    uint8_t topic[32], seed[32];
    memset(topic, 0x5a, 32);
    memset(seed, 0x33, 32);
    dht_keypair_t kp;
    dht_crypto_keypair_seed(&kp, seed);
    lk_t l = {0};
    ASSERT_TRUE(dht_announce(sim.nodes[3].node, topic, &kp, NULL, 0, on_done, &l) != NULL);
    sim_run_until(&sim, &l.done, 60000);
    ASSERT_OK(l.status);
    dht_node_stats_t st;
    dht_node_stats(adaptive->node, &st);
    ASSERT_EQ_U64(st.records, 1);
    dht_node_stats(fixed->node, &st);
    ASSERT_EQ_U64(st.records, 0);
    sim_free(&sim);
}

typedef struct relays_seen {
    int calls;
    dht_addr_t addrs[3];
    size_t n;
} relays_seen_t;

static void on_relays(void *ud, const dht_addr_t *addrs, size_t n) {
    relays_seen_t *r = ud;
    r->calls++;
    r->n = n;
    memcpy(r->addrs, addrs, n * sizeof *addrs);
}

static int find_peer_found(int from_node, const dht_keypair_t *kp) {
    lk_t f = {kp->pk, 0, 0, 0};
    if (!dht_find_peer(sim.nodes[from_node].node, kp->pk, on_peer, on_done, &f)) return -1;
    sim_run_until(&sim, &f.done, 120000);
    return f.found;
}

TEST(announcer_keeps_three_relays) {
    ASSERT_TRUE(sodium_init() >= 0);
    sim_init(&sim);
    for (int i = 0; i < 30; i++) {
        sim_node_t *sn = sim_add(&sim, 0, 0);
        ASSERT_TRUE(sn != NULL);
        ASSERT_TRUE(sim_run_until(&sim, &sn->ready, 60000));
    }
    sim_node_t *srv = sim_add(&sim, 1, 0); /* an ephemeral server, like a Hyperswarm peer */
    ASSERT_TRUE(srv && sim_run_until(&sim, &srv->ready, 60000));
    uint8_t seed[32];
    memset(seed, 0x61, 32);
    dht_keypair_t kp;
    dht_crypto_keypair_seed(&kp, seed);
    relays_seen_t rs;
    memset(&rs, 0, sizeof rs);
    dht_announcer_t *a = dht_announcer_start(srv->node, &kp, on_relays, &rs);
    ASSERT_TRUE(a != NULL);
    sim_run_until(&sim, &rs.calls, 60000);
    ASSERT_EQ_U64(rs.calls, 1);
    /* the server is reachable (firewall check passed), so its own address comes first */
    dht_addr_t me = sim_addr(srv->idx);
    ASSERT_EQ_U64(rs.n, 3);
    ASSERT_TRUE(dht_ipv4_equal(&rs.addrs[0], &me));
    ASSERT_EQ_U64(find_peer_found(4, &kp), 1);
    /* kill one relay: the 3 s pings notice, the announcer re-announces */
    dht_addr_t relays[3];
    size_t nr = dht_announcer_relay_addresses(a, relays);
    ASSERT_EQ_U64(nr, 3);
    int victim = (relays[1].port - SIM_BASE_PORT) / 2;
    sim.nodes[victim].dead = 1;
    int before = rs.calls;
    sim_run_until(&sim, NULL, 30000);
    ASSERT_GT(rs.calls, before);
    nr = dht_announcer_relay_addresses(a, relays);
    for (size_t i = 0; i < nr; i++) ASSERT_TRUE(relays[i].port != sim_addr(victim).port);
    ASSERT_EQ_U64(find_peer_found(4, &kp), 1);
    /* stop: the relays are unannounced */
    dht_announcer_stop(a);
    sim_run_until(&sim, NULL, 20000);
    ASSERT_EQ_U64(find_peer_found(4, &kp), 0);
    dht_crypto_keypair_wipe(&kp);
    sim_free(&sim);
}

TEST_MAIN(TEST_ENTRY(network_100_nodes), TEST_ENTRY(announcer_keeps_three_relays),
          TEST_ENTRY(adaptive_node_passes_firewall_check_then_turns_persistent))
