/* SPDX-License-Identifier: MIT */
/* dht-rpc + hyperdht node core: see dht_node.h. Sections: requests (io), routing-table
 * upkeep, incoming requests, queries (dht_query), hyperdht storage, maintenance, API. */
#include "dht/dht_node.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_log.h"
#include "dht/dht_node_util.h"
#include "dht/dht_records.h"
#include "dht/dht_table.h"

#define TICK_MS        5000u
#define DRAIN_MS       750u
#define SLEEP_GAP_MS   (3u * TICK_MS)
#define REFRESH_TICKS  60u
#define RECENT_NODE    12u
#define OLD_NODE       360u
#define K              DHT_TABLE_K
#define MAX_DELAYED    64
#define MAX_PING_DELAY 10000u
#define MAX_BUMP_DRIFT 60000u

typedef struct dht_req dht_req_t;
typedef void (*req_reply_fn)(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                             const dht_addr_t *from, const uint8_t *vid);
typedef void (*req_fail_fn)(dht_node_t *n, dht_req_t *r, int err);

struct dht_req {
    dht_req_t *next;
    uint16_t tid;
    int sock;
    dht_addr_t to;
    uint8_t *buf;
    size_t len;
    uint32_t sent, retries;
    int queued, slow;
    uint64_t deadline;
    uint32_t timeout_ms;
    req_reply_fn on_reply;
    req_fail_fn on_fail;
    dht_query_t *q;       /* owning query or NULL */
    dht_announcer_t *ann; /* announcer this request reports to (holds a ref) */
    void *ud;             /* callback data for node-internal requests */
    dht_done_cb done;     /* dht_node_ping */
    dht_response_cb rcb;  /* dht_node_request */
    uint8_t node_id[32];  /* table node this request checks */
    uint32_t last_seen;
    int is_commit;
    int is_check;          /* table check (or swap) ping */
    dht_table_node_t swap; /* node to insert if the check fails (has_swap) */
    int has_swap;
};

typedef struct delayed {
    uint64_t at;
    int sock;
    dht_addr_t to;
    uint16_t tid;
} delayed_t;

typedef enum { Q_FIND_NODE, Q_LOOKUP, Q_FIND_PEER, Q_ANNOUNCE, Q_UNANNOUNCE, Q_ANNOUNCER } qkind_t;

enum { ANN_WALK, ANN_COMMIT, ANN_IDLE, ANN_PINGING, ANN_STOPPING, ANN_DONE };
struct dht_announcer {
    dht_announcer_t *next;
    dht_node_t *node;
    dht_keypair_t kp;
    uint8_t target[32];
    int state, refresh, stopped;
    uint32_t refs, pending, ok, iter;
    uint64_t next_at;
    dht_addr_t relays[3], fresh[3], addrs[3];
    size_t nrelays, nfresh, naddrs;
    dht_relays_cb cb;
    void *ud;
};

typedef struct q_seen {
    dht_addr_t addr;
    uint8_t state; /* 0 pending/in flight, 1 done, 2 down */
    uint8_t has_ref;
    dht_addr_t ref; /* the node that suggested it (DOWN_HINT target) */
} q_seen_t;

typedef struct q_node {
    uint8_t id[32];
    dht_addr_t addr;
} q_node_t;

typedef struct q_reply {
    uint8_t id[32];
    dht_addr_t addr;
    int has_token;
    uint8_t token[32];
} q_reply_t;

struct dht_query {
    dht_query_t *next;
    dht_node_t *node;
    qkind_t kind;
    uint8_t target[32];
    uint64_t command;
    int internal;
    uint32_t concurrency, inflight, slow, successes, errors;
    int from_table, committing, dead, finished, background;
    q_seen_t *seen;
    size_t nseen, capseen;
    q_node_t *pending;
    size_t npending, cappending;
    q_reply_t closest[K];
    size_t nclosest;
    uint32_t commits_pending, commits_ok;
    dht_keypair_t kp;
    dht_peer_record_t self_rec;
    uint8_t (*seen_keys)[32];
    size_t nkeys, capkeys;
    dht_peer_cb on_peer;
    dht_done_cb on_done;
    void *ud;
    int is_bootstrap; /* 1: first walk, 2: second walk after taking the persistent id */
    int starting, deferred, deferred_status;
    dht_announcer_t *ann;
};

struct dht_node {
    const common_env_t *env;
    dht_node_io_t io;
    dht_node_events_t ev;
    dht_table_t *table;
    dht_records_t *records;
    dht_nat_t nat;
    dht_cwnd_t cwnd;
    dht_rate_t rate;
    dht_tokens_t tokens;
    dht_addr_t bootstrap[DHT_NODE_MAX_BOOTSTRAP];
    size_t nbootstrap;
    dht_addr_t sampled_from[DHT_NODE_MAX_BOOTSTRAP];
    size_t nsampled_from;
    int ephemeral, force_persistent, firewalled, allow_local;
    uint16_t server_port;
    uint32_t concurrency;
    int started, bootstrapped, ping_nat_sent;
    uint16_t tid;
    dht_req_t *reqs;
    size_t nreqs;
    dht_query_t *queries;
    dht_announcer_t *announcers;
    delayed_t delayed[MAX_DELAYED];
    size_t ndelayed;
    uint32_t tick, refresh_ticks, repinging, checks, down_hints_sent;
    uint64_t next_tick, next_drain, last_tick;
    dht_node_stats_t st;
    int in_callback;
    dht_request_hook hook;
    void *hook_ud;
    /* firewall / adaptive state */
    int adaptive, quick_fw, quick_fw_sent, test_nat;
    uint32_t stable_ticks;
    int has_last_host;
    uint8_t last_host[4];
    int last_rx_sock;
    struct fw_check {
        int active, only_firewall, walk;
        uint32_t pending, count, ntargets;
        dht_nat_t nat2;
        uint8_t hosts[8][4];
        size_t nhosts;
    } fw;
};

#define STABLE_TICKS      240u
#define MORE_STABLE_TICKS (3u * STABLE_TICKS)

static void query_read_more(dht_query_t *q);
static void refresh(dht_node_t *n);
static void query_finish(dht_query_t *q, int status);

static uint64_t now_ms(const dht_node_t *n) {
    return common_now_ms(n->env);
}

static int addr_ok(const dht_node_t *n, const dht_addr_t *a) {
    if (a->port == 0) return 0;
    if (a->host[0] == 0 ||
        (a->host[0] == 255 && a->host[1] == 255 && a->host[2] == 255 && a->host[3] == 255))
        return 0;
    if (!n->allow_local && dht_addr_is_local(a)) return 0;
    return 1;
}

/* ------------------------------------------------------------------ requests (io) */

static void req_transmit(dht_node_t *n, dht_req_t *r) {
    r->queued = 0;
    r->sent++;
    dht_cwnd_send(&n->cwnd);
    n->st.requests_sent++;
    n->io.send(n->io.ud, r->sock, r->buf, r->len, &r->to);
    r->deadline = now_ms(n) + (r->timeout_ms ? r->timeout_ms : 1000);
}

static void req_send(dht_node_t *n, dht_req_t *r, int force) {
    if (!force && dht_cwnd_full(&n->cwnd)) {
        r->queued = 1;
        return;
    }
    req_transmit(n, r);
}

static void req_unlink(dht_node_t *n, dht_req_t *r) {
    for (dht_req_t **pp = &n->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            n->nreqs--;
            if (r->sent > 0) dht_cwnd_recv(&n->cwnd);
            return;
        }
    }
}

static void req_free(dht_req_t *r) {
    free(r->buf);
    free(r);
}

/* Build and send a request. Returns NULL when the node is saturated. */
static dht_req_t *request(dht_node_t *n, const dht_addr_t *to, const uint8_t *token, int internal,
                          uint64_t command, const uint8_t *target, const uint8_t *value,
                          size_t value_len, int has_value, req_reply_fn on_reply,
                          req_fail_fn on_fail, dht_query_t *q, int force) {
    if (n->nreqs >= DHT_NODE_MAX_INFLIGHT) return NULL;
    dht_req_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->tid = n->tid++;
    r->sock = n->firewalled ? DHT_SOCK_CLIENT : DHT_SOCK_SERVER;
    r->to = *to;
    r->retries = 3;
    r->on_reply = on_reply;
    r->on_fail = on_fail;
    r->q = q;
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.tid = r->tid;
    m.to = *to;
    m.id = (!n->ephemeral && r->sock == DHT_SOCK_SERVER) ? dht_table_id(n->table) : NULL;
    m.token = token;
    m.internal = internal;
    m.command = command;
    m.target = target;
    static const uint8_t empty[1] = {0};
    m.value = has_value ? (value ? value : empty) : NULL;
    m.value_len = has_value ? value_len : 0;
    uint8_t tmp[DHT_RPC_MAX_PACKET];
    int len = dht_rpc_encode(&m, tmp, sizeof tmp);
    if (len < 0 || !(r->buf = malloc((size_t)len))) {
        free(r);
        return NULL;
    }
    memcpy(r->buf, tmp, (size_t)len);
    r->len = (size_t)len;
    r->next = n->reqs;
    n->reqs = r;
    n->nreqs++;
    req_send(n, r, force);
    return r;
}

static void reply_send(dht_node_t *n, int sock, const dht_addr_t *to, uint16_t tid,
                       const uint8_t *target, int with_token, int with_closer, uint64_t error,
                       const uint8_t *value, size_t value_len) {
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.is_response = 1;
    m.tid = tid;
    m.to = *to;
    m.id = (!n->ephemeral && sock == DHT_SOCK_SERVER) ? dht_table_id(n->table) : NULL;
    uint8_t token[32];
    if (with_token) {
        dht_tokens_make(&n->tokens, 1, to, token);
        m.token = token;
    }
    if (target && with_closer) {
        dht_table_node_t nodes[K];
        size_t c = dht_table_closest(n->table, target, nodes, K);
        for (size_t i = 0; i < c; i++) m.closer[i] = nodes[i].addr;
        m.ncloser = c;
        m.has_closer = c > 0;
    }
    m.error = error;
    m.value = value;
    m.value_len = value_len;
    uint8_t buf[DHT_RPC_MAX_PACKET];
    int len = dht_rpc_encode(&m, buf, sizeof buf);
    if (len > 0) n->io.send(n->io.ud, sock, buf, (size_t)len, to);
}

/* ------------------------------------------------------------------ routing table upkeep */

static void nat_add(dht_node_t *n, const dht_addr_t *a) {
    dht_nat_add(&n->nat, a);
}

static void on_swap_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                          const dht_addr_t *from, const uint8_t *vid);
static void on_swap_fail(dht_node_t *n, dht_req_t *r, int err);

static void add_node(dht_node_t *n, const dht_table_node_t *node) {
    dht_table_node_t *oldest = NULL;
    dht_table_add_result_t res = dht_table_add(n->table, node, n->tick, &oldest);
    if (res == DHT_TABLE_FULL && oldest && n->bootstrapped && n->repinging < 3) {
        if (n->tick - oldest->pinged < RECENT_NODE && n->tick - oldest->added > OLD_NODE) return;
        oldest->pinged = n->tick;
        dht_req_t *r = request(n, &oldest->addr, NULL, 1, DHT_CMD_PING, NULL, NULL, 0, 0,
                               on_swap_reply, on_swap_fail, NULL, 0);
        if (!r) return;
        memcpy(r->node_id, oldest->id, 32);
        r->last_seen = oldest->seen;
        r->swap = *node;
        r->has_swap = 1;
        n->repinging++;
    }
}

static void swap_in(dht_node_t *n, dht_req_t *r) {
    n->repinging--;
    dht_table_remove(n->table, r->node_id);
    dht_table_node_t nn = r->swap;
    nn.added = nn.pinged = nn.seen = n->tick;
    (void)dht_table_add(n->table, &nn, n->tick, NULL);
}

static void on_swap_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                          const dht_addr_t *from, const uint8_t *vid) {
    (void)m, (void)from, (void)vid;
    dht_table_node_t *old = dht_table_get(n->table, r->node_id);
    if (old && old->seen <= r->last_seen) {
        swap_in(n, r);
        return;
    }
    n->repinging--;
}

static void on_swap_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)err;
    swap_in(n, r);
}

static void add_node_from_network(dht_node_t *n, int sample, const dht_addr_t *from,
                                  const uint8_t *vid, const dht_addr_t *to) {
    if (!addr_ok(n, from)) return;
    if (!vid) {
        /* sample our address from up to max(1, #bootstrap) distinct non-persistent nodes */
        size_t lim = n->nbootstrap > 0 ? n->nbootstrap : 1;
        if (n->nsampled_from >= lim || n->nsampled_from >= DHT_NODE_MAX_BOOTSTRAP) return;
        for (size_t i = 0; i < n->nsampled_from; i++)
            if (dht_ipv4_equal(&n->sampled_from[i], from)) return;
        n->sampled_from[n->nsampled_from++] = *from;
        nat_add(n, to);
        return;
    }
    dht_table_node_t *old = dht_table_get(n->table, vid);
    if (old) {
        if (sample && (old->sampled == 0 || n->tick - old->sampled >= OLD_NODE)) {
            old->sampled = n->tick;
            nat_add(n, to);
        }
        old->pinged = old->seen = n->tick;
        return;
    }
    if (memcmp(vid, dht_table_id(n->table), 32) == 0) return;
    dht_table_node_t node;
    memset(&node, 0, sizeof node);
    memcpy(node.id, vid, 32);
    node.addr = *from;
    node.added = node.pinged = node.seen = n->tick;
    if (sample) {
        node.sampled = n->tick;
        nat_add(n, to);
    }
    add_node(n, &node);
}

static void on_check_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                           const dht_addr_t *from, const uint8_t *vid) {
    (void)m, (void)from, (void)vid;
    n->checks--;
    dht_table_node_t *node = dht_table_get(n->table, r->node_id);
    /* replied without a valid id (e.g. turned ephemeral): stale, drop it */
    if (node && node->seen <= r->last_seen) dht_table_remove(n->table, r->node_id);
}

static void on_check_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)err;
    n->checks--;
    dht_table_remove(n->table, r->node_id);
}

static void check_node(dht_node_t *n, dht_table_node_t *node) {
    node->pinged = n->tick;
    dht_req_t *r = request(n, &node->addr, NULL, 1, DHT_CMD_PING, NULL, NULL, 0, 0, on_check_reply,
                           on_check_fail, NULL, 0);
    if (!r) return;
    memcpy(r->node_id, node->id, 32);
    r->last_seen = node->seen;
    r->is_check = 1;
    n->checks++;
}

/* ------------------------------------------------------------------ hyperdht storage */

static int is_self_announce(const uint8_t target[32], const uint8_t pk[32]) {
    uint8_t h[32];
    dht_crypto_target(pk, h);
    return memcmp(h, target, 32) == 0;
}

static void on_lookup_req(dht_node_t *n, int sock, const dht_rpc_msg_t *m, const dht_addr_t *from) {
    if (!m->target) return;
    uint64_t now = now_ms(n);
    dht_lookup_reply_t lr;
    memset(&lr, 0, sizeof lr);
    lr.npeers = dht_records_get(n->records, m->target, now, lr.peers, DHT_LOOKUP_MAX_PEERS);
    lr.bump = dht_records_bump(n->records, m->target);
    const dht_route_t *rt = dht_records_route_get(n->records, m->target, now);
    if (rt && lr.npeers < DHT_LOOKUP_MAX_PEERS) lr.peers[lr.npeers++] = rt->record;
    uint8_t val[DHT_RPC_MAX_PACKET];
    int len = lr.npeers ? dht_lookup_reply_encode(&lr, val, sizeof val) : -1;
    reply_send(n, sock, from, m->tid, m->target, 1, 1, 0, len > 0 ? val : NULL,
               len > 0 ? (size_t)len : 0);
}

static void on_find_peer_req(dht_node_t *n, int sock, const dht_rpc_msg_t *m,
                             const dht_addr_t *from) {
    if (!m->target) return;
    const dht_route_t *rt = dht_records_route_get(n->records, m->target, now_ms(n));
    uint8_t val[64 + 6 * DHT_MAX_RELAYS];
    int len = rt ? dht_peer_record_encode(&rt->record, val, sizeof val) : -1;
    reply_send(n, sock, from, m->tid, m->target, 1, 1, 0, len > 0 ? val : NULL,
               len > 0 ? (size_t)len : 0);
}

static void on_announce_req(dht_node_t *n, int sock, const dht_rpc_msg_t *m, const dht_addr_t *from,
                            int unannounce) {
    if (!m->target || !m->token || n->ephemeral) return;
    dht_announce_t a;
    if (dht_announce_decode(m->value, m->value_len, &a) != 0) return;
    if (!a.has_peer || !a.signature) return; /* refresh-only announces are not supported */
    uint8_t signable[64];
    if (dht_announce_signable(unannounce, m->target, dht_table_id(n->table), m->token, &a.peer,
                              unannounce ? NULL : a.refresh, signable) != 0)
        return;
    if (dht_crypto_verify(a.signature, signable, 64, a.peer.public_key) != 0) return;
    uint64_t now = now_ms(n);
    int self = is_self_announce(m->target, a.peer.public_key);
    if (unannounce) {
        if (self) dht_records_route_delete(n->records, m->target);
        dht_records_remove(n->records, m->target, a.peer.public_key);
    } else if (self) {
        dht_records_route_set(n->records, m->target, from, &a.peer, now);
        dht_records_remove(n->records, m->target, a.peer.public_key);
    } else {
        uint64_t unix_now = common_unix_ms(n->env);
        if (a.bump > dht_records_bump(n->records, m->target) && a.bump <= unix_now + MAX_BUMP_DRIFT)
            dht_records_set_bump(n->records, m->target, a.bump, now);
        dht_records_add(n->records, m->target, &a.peer, now);
    }
    reply_send(n, sock, from, m->tid, m->target, 0, 0, 0, NULL, 0);
}

/* ------------------------------------------------------------------ handshake routing */

static void send_relay(dht_node_t *n, int sock, const dht_rpc_msg_t *req, const dht_addr_t *to,
                       const uint8_t *value, size_t len) {
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.tid = req->tid;
    m.to = *to;
    m.id = (!n->ephemeral && sock == DHT_SOCK_SERVER) ? dht_table_id(n->table) : NULL;
    m.internal = req->internal;
    m.command = req->command;
    m.target = req->target;
    static const uint8_t empty[1] = {0};
    m.value = value ? value : empty;
    m.value_len = value ? len : 0;
    uint8_t buf[DHT_RPC_MAX_PACKET];
    int l = dht_rpc_encode(&m, buf, sizeof buf);
    if (l > 0 && addr_ok(n, to)) n->io.send(n->io.ud, sock, buf, (size_t)l, to);
}

static void on_handshake_req(dht_node_t *n, int sock, const dht_rpc_msg_t *m,
                             const dht_addr_t *from) {
    dht_handshake_msg_t hs;
    if (dht_handshake_decode(m->value, m->value_len, &hs) != 0) return;
    const dht_route_t *rt =
        m->target ? dht_records_route_get(n->records, m->target, now_ms(n)) : NULL;
    uint8_t val[DHT_RPC_MAX_PACKET];
    dht_handshake_msg_t out;
    memset(&out, 0, sizeof out);
    out.noise = hs.noise;
    out.noise_len = hs.noise_len;
    int len;
    switch (hs.mode) {
    case DHT_HS_FROM_CLIENT:
        if (!rt && !hs.has_relay) {
            reply_send(n, sock, from, m->tid, m->target, 0, 1, 0, NULL, 0);
            return;
        }
        out.mode = DHT_HS_FROM_RELAY;
        out.has_peer = 1;
        out.peer = *from;
        len = dht_handshake_encode(&out, val, sizeof val);
        if (len > 0)
            send_relay(n, sock, m, hs.has_relay ? &hs.relay : &rt->relay, val, (size_t)len);
        return;
    case DHT_HS_FROM_RELAY:
        if (!rt) return;
        out.mode = DHT_HS_FROM_SECOND_RELAY;
        out.has_peer = hs.has_peer;
        out.peer = hs.peer;
        out.has_relay = 1;
        out.relay = *from;
        len = dht_handshake_encode(&out, val, sizeof val);
        if (len > 0) send_relay(n, sock, m, &rt->relay, val, (size_t)len);
        return;
    case DHT_HS_FROM_SERVER:
        if (!hs.has_peer || !addr_ok(n, &hs.peer)) return;
        out.mode = DHT_HS_REPLY;
        out.has_peer = 1;
        out.peer = *from;
        len = dht_handshake_encode(&out, val, sizeof val);
        if (len > 0) reply_send(n, sock, &hs.peer, m->tid, NULL, 0, 0, 0, val, (size_t)len);
        return;
    default: return;
    }
}

static void on_holepunch_req(dht_node_t *n, int sock, const dht_rpc_msg_t *m,
                             const dht_addr_t *from) {
    dht_holepunch_msg_t hp;
    if (dht_holepunch_decode(m->value, m->value_len, &hp) != 0) return;
    const dht_route_t *rt =
        m->target ? dht_records_route_get(n->records, m->target, now_ms(n)) : NULL;
    uint8_t val[DHT_RPC_MAX_PACKET];
    dht_holepunch_msg_t out = hp;
    int len;
    switch (hp.mode) {
    case DHT_HS_FROM_CLIENT:
        if (!hp.has_peer && !rt) return;
        out.mode = DHT_HS_FROM_RELAY;
        out.has_peer = 1;
        out.peer = *from;
        len = dht_holepunch_encode(&out, val, sizeof val);
        if (len > 0) send_relay(n, sock, m, hp.has_peer ? &hp.peer : &rt->relay, val, (size_t)len);
        return;
    case DHT_HS_FROM_SERVER: {
        const dht_addr_t *to = hp.has_peer ? &hp.peer : from;
        if (!addr_ok(n, to)) return;
        out.mode = DHT_HS_REPLY;
        out.has_peer = 1;
        out.peer = *from;
        len = dht_holepunch_encode(&out, val, sizeof val);
        if (len > 0) reply_send(n, sock, to, m->tid, NULL, 0, 0, 0, val, (size_t)len);
        return;
    }
    default: /* FROM_RELAY is for a server (the owner's hook) */ return;
    }
}

/* ------------------------------------------------------------------ incoming requests */

static void on_request(dht_node_t *n, int sock, const dht_rpc_msg_t *m, const dht_addr_t *from,
                       const uint8_t *vid) {
    n->st.requests_received++;
    if (m->token && !dht_tokens_check(&n->tokens, from, m->token)) {
        reply_send(n, sock, from, m->tid, m->target, 1, 1, DHT_RPC_INVALID_TOKEN, NULL, 0);
        return;
    }
    int expected = n->firewalled ? DHT_SOCK_CLIENT : DHT_SOCK_SERVER;
    if (vid) add_node_from_network(n, sock == expected, from, vid, &m->to);

    if (m->internal) {
        switch (m->command) {
        case DHT_CMD_PING: reply_send(n, sock, from, m->tid, NULL, 0, 0, 0, NULL, 0); return;
        case DHT_CMD_PING_NAT: {
            if (!m->value || m->value_len < 2) return;
            dht_addr_t to = *from;
            to.port = (uint16_t)(m->value[0] | (m->value[1] << 8));
            if (to.port == 0) return;
            reply_send(n, sock, &to, m->tid, NULL, 0, 0, 0, NULL, 0);
            return;
        }
        case DHT_CMD_FIND_NODE:
            if (!m->target) return;
            reply_send(n, sock, from, m->tid, m->target, 0, 1, 0, NULL, 0);
            return;
        case DHT_CMD_DOWN_HINT: {
            if (!m->value || m->value_len < 6) return;
            if (n->checks < 10) {
                uint8_t id[32];
                dht_crypto_hash(id, m->value, 6);
                dht_table_node_t *node = dht_table_get(n->table, id);
                if (node && (node->pinged < n->tick || node->down_hints == 0)) {
                    node->down_hints++;
                    check_node(n, node);
                }
            }
            reply_send(n, sock, from, m->tid, NULL, 0, 0, 0, NULL, 0);
            return;
        }
        case DHT_CMD_DELAYED_PING: {
            if (!m->value || m->value_len < 4) return;
            uint32_t d = (uint32_t)m->value[0] | ((uint32_t)m->value[1] << 8) |
                         ((uint32_t)m->value[2] << 16) | ((uint32_t)m->value[3] << 24);
            if (d > MAX_PING_DELAY || n->ndelayed >= MAX_DELAYED) return;
            delayed_t *dl = &n->delayed[n->ndelayed++];
            dl->at = now_ms(n) + d;
            dl->sock = sock;
            dl->to = *from;
            dl->tid = m->tid;
            return;
        }
        default:
            reply_send(n, sock, from, m->tid, m->target, 0, 1, DHT_RPC_UNKNOWN_COMMAND, NULL, 0);
            return;
        }
    }

    /* hyperdht commands: the owner's hook first (servers it listens for), then routing */
    if (n->hook) {
        dht_node_req_t hr = {sock, *from, vid, m};
        n->in_callback++;
        int handled = n->hook(n->hook_ud, n, &hr);
        n->in_callback--;
        if (handled) return;
    }
    if (m->command == DHT_CMD_PEER_HANDSHAKE) {
        on_handshake_req(n, sock, m, from);
        return;
    }
    if (m->command == DHT_CMD_PEER_HOLEPUNCH) {
        on_holepunch_req(n, sock, m, from);
        return;
    }
    if (n->ephemeral) {
        reply_send(n, sock, from, m->tid, m->target, 0, 1, DHT_RPC_UNKNOWN_COMMAND, NULL, 0);
        return;
    }
    switch (m->command) {
    case DHT_CMD_LOOKUP: on_lookup_req(n, sock, m, from); return;
    case DHT_CMD_FIND_PEER: on_find_peer_req(n, sock, m, from); return;
    case DHT_CMD_ANNOUNCE: on_announce_req(n, sock, m, from, 0); return;
    case DHT_CMD_UNANNOUNCE: on_announce_req(n, sock, m, from, 1); return;
    default:
        reply_send(n, sock, from, m->tid, m->target, 0, 1, DHT_RPC_UNKNOWN_COMMAND, NULL, 0);
        return;
    }
}

static void reap_queries(dht_node_t *n);

void dht_node_on_datagram(dht_node_t *n, int sock, const uint8_t *buf, size_t len,
                          const dht_addr_t *from) {
    if (len < 2 || len > DHT_RPC_MAX_PACKET || from->port == 0) return;
    dht_rpc_msg_t m;
    if (dht_rpc_decode(buf, len, &m) != 0) return;
    n->last_rx_sock = sock;
    if (n->fw.active && sock == DHT_SOCK_SERVER && n->fw.nhosts < 8) {
        int seen = 0;
        for (size_t i = 0; i < n->fw.nhosts; i++)
            seen |= memcmp(n->fw.hosts[i], from->host, 4) == 0;
        if (!seen) memcpy(n->fw.hosts[n->fw.nhosts++], from->host, 4);
    }
    uint8_t vidbuf[32];
    const uint8_t *vid = NULL;
    if (m.id) {
        dht_addr_id(from, vidbuf);
        if (sodium_memcmp(vidbuf, m.id, 32) == 0) vid = vidbuf;
    }
    if (!m.is_response) {
        uint8_t key[6];
        memcpy(key, from->host, 4);
        uint16_t kp = (n->allow_local && dht_addr_is_local(from)) ? from->port : 0;
        key[4] = (uint8_t)(kp & 0xff);
        key[5] = (uint8_t)(kp >> 8);
        if (!dht_rate_allow(&n->rate, key, now_ms(n))) {
            n->st.dropped_rate++;
            return;
        }
        on_request(n, sock, &m, from, vid);
        reap_queries(n);
        return;
    }
    for (dht_req_t *r = n->reqs; r; r = r->next) {
        if (r->tid != m.tid || r->sent == 0) continue;
        if (!dht_ipv4_equal(&r->to, from)) continue;
        req_unlink(n, r);
        n->st.responses++;
        int expected = n->firewalled ? DHT_SOCK_CLIENT : DHT_SOCK_SERVER;
        add_node_from_network(n, sock == expected, from, vid, &m.to);
        if (r->on_reply) r->on_reply(n, r, &m, from, vid);
        req_free(r);
        break;
    }
    reap_queries(n);
}

/* ------------------------------------------------------------------ queries */

static void q_add_key(dht_query_t *q, const uint8_t pk[32], int *is_new) {
    *is_new = 0;
    for (size_t i = 0; i < q->nkeys; i++)
        if (memcmp(q->seen_keys[i], pk, 32) == 0) return;
    if (q->nkeys == q->capkeys) {
        size_t nc = q->capkeys ? q->capkeys * 2 : 8;
        void *p = realloc(q->seen_keys, nc * 32);
        if (!p) return;
        q->seen_keys = p;
        q->capkeys = nc;
    }
    memcpy(q->seen_keys[q->nkeys++], pk, 32);
    *is_new = 1;
}

static q_seen_t *q_find_seen(dht_query_t *q, const dht_addr_t *a) {
    for (size_t i = 0; i < q->nseen; i++)
        if (dht_ipv4_equal(&q->seen[i].addr, a)) return &q->seen[i];
    return NULL;
}

static int q_is_closer(const dht_query_t *q, const uint8_t id[32]) {
    return q->nclosest < K || dht_xor_cmp(q->target, id, q->closest[q->nclosest - 1].id) < 0;
}

static void q_down_hint(dht_query_t *q, const dht_addr_t *to, const dht_addr_t *down) {
    dht_node_t *n = q->node;
    if (n->down_hints_sent >= 50) return;
    n->down_hints_sent++;
    uint8_t v[6];
    dht_addr_encode(down, v);
    (void)request(n, to, NULL, 1, DHT_CMD_DOWN_HINT, NULL, v, 6, 1, NULL, NULL, NULL, 0);
}

/* Add a candidate; returns whether it is closer than the current k-th. */
static int q_add_pending(dht_query_t *q, const dht_addr_t *addr, const uint8_t id[32],
                         const dht_addr_t *ref) {
    int closer = q_is_closer(q, id);
    q_seen_t *s = q_find_seen(q, addr);
    if (s) {
        if (s->state == 2 && ref) q_down_hint(q, ref, addr);
        return closer;
    }
    if (!closer) return 0;
    if (q->nseen == q->capseen) {
        size_t nc = q->capseen ? q->capseen * 2 : 32;
        void *p = realloc(q->seen, nc * sizeof *q->seen);
        if (!p) return closer;
        q->seen = p;
        q->capseen = nc;
    }
    s = &q->seen[q->nseen++];
    memset(s, 0, sizeof *s);
    s->addr = *addr;
    if (ref) {
        s->has_ref = 1;
        s->ref = *ref;
    }
    if (q->npending == q->cappending) {
        size_t nc = q->cappending ? q->cappending * 2 : 32;
        void *p = realloc(q->pending, nc * sizeof *q->pending);
        if (!p) return closer;
        q->pending = p;
        q->cappending = nc;
    }
    q_node_t *pn = &q->pending[q->npending++];
    memcpy(pn->id, id, 32);
    pn->addr = *addr;
    return 1;
}

static void q_add_from_table(dht_query_t *q) {
    q->from_table = 1;
    if (q->npending >= K) return;
    dht_table_node_t nodes[K];
    size_t c = dht_table_closest(q->node->table, q->target, nodes, K - q->npending);
    for (size_t i = 0; i < c; i++) q_add_pending(q, &nodes[i].addr, nodes[i].id, NULL);
}

static void q_push_closest(dht_query_t *q, const uint8_t id[32], const dht_addr_t *addr,
                           const uint8_t *token) {
    size_t i = q->nclosest;
    for (size_t j = 0; j < q->nclosest; j++)
        if (memcmp(q->closest[j].id, id, 32) == 0) return;
    if (i == K) {
        if (dht_xor_cmp(q->target, id, q->closest[K - 1].id) >= 0) return;
        i = K - 1;
    } else {
        q->nclosest++;
    }
    while (i > 0 && dht_xor_cmp(q->target, id, q->closest[i - 1].id) < 0) {
        q->closest[i] = q->closest[i - 1];
        i--;
    }
    memcpy(q->closest[i].id, id, 32);
    q->closest[i].addr = *addr;
    q->closest[i].has_token = token != NULL;
    if (token) memcpy(q->closest[i].token, token, 32);
}

static void q_emit_peer(dht_query_t *q, const dht_peer_record_t *p, const dht_addr_t *from) {
    int is_new = 0;
    q_add_key(q, p->public_key, &is_new);
    if (!is_new || !q->on_peer || q->dead) return;
    q->node->in_callback++;
    q->on_peer(q->ud, p, from);
    q->node->in_callback--;
}

static void q_send_unannounce(dht_query_t *q, const dht_addr_t *to, const uint8_t id[32],
                              const uint8_t token[32]);

static void quick_fw_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                           const dht_addr_t *from, const uint8_t *vid) {
    (void)r, (void)m, (void)from, (void)vid;
    n->test_nat = 1;
}

static void q_on_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m, const dht_addr_t *from,
                       const uint8_t *vid) {
    dht_query_t *q = r->q;
    if (!q || q->dead) return;
    if (r->slow) q->slow--;
    q->inflight--;
    q_seen_t *s = q_find_seen(q, &r->to);
    if (s) s->state = 1;
    if (q->committing) return;
    if (m->error == 0)
        q->successes++;
    else
        q->errors++;
    if (q->is_bootstrap == 1 && n->quick_fw && !n->quick_fw_sent && n->firewalled &&
        !n->force_persistent) {
        n->quick_fw_sent = 1;
        uint8_t v[2] = {(uint8_t)(n->server_port & 0xff), (uint8_t)(n->server_port >> 8)};
        (void)request(n, from, NULL, 1, DHT_CMD_PING_NAT, NULL, v, 2, 1, quick_fw_reply, NULL, NULL,
                      0);
    }
    if (m->error == 0 && vid && q_is_closer(q, vid)) q_push_closest(q, vid, from, m->token);
    if (m->has_closer) {
        for (size_t i = 0; i < m->ncloser; i++) {
            const dht_addr_t *a = &m->closer[i];
            if (!addr_ok(n, a)) continue;
            uint8_t id[32];
            dht_addr_id(a, id);
            if (memcmp(id, dht_table_id(n->table), 32) == 0) continue;
            if (!q_add_pending(q, a, id, from)) break;
        }
    }
    if (m->error == 0 && m->value) {
        if (q->kind == Q_LOOKUP || q->kind == Q_ANNOUNCE || q->kind == Q_UNANNOUNCE) {
            dht_lookup_reply_t lr;
            if (dht_lookup_reply_decode(m->value, m->value_len, &lr) == 0) {
                int found = 0;
                for (size_t i = 0; i < lr.npeers && !q->dead; i++) {
                    if (q->kind == Q_LOOKUP)
                        q_emit_peer(q, &lr.peers[i], from);
                    else if (memcmp(lr.peers[i].public_key, q->kp.pk, 32) == 0)
                        found = 1;
                }
                if (q->kind == Q_UNANNOUNCE && found && vid && m->token)
                    q_send_unannounce(q, from, vid, m->token);
            }
        } else if (q->kind == Q_FIND_PEER) {
            dht_peer_record_t p;
            size_t pos = 0;
            if (dht_peer_record_decode(m->value, m->value_len, &pos, &p) == 0)
                q_emit_peer(q, &p, from);
        }
    }
    if (!q->dead) query_read_more(q);
}

static void q_on_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)n;
    dht_query_t *q = r->q;
    if (!q || q->dead) return;
    if (r->slow) q->slow--;
    q->inflight--;
    q->errors++;
    q_seen_t *s = q_find_seen(q, &r->to);
    if (s && err == COMMON_ETIMEDOUT) {
        s->state = 2;
        if (s->has_ref) q_down_hint(q, &s->ref, &r->to);
    }
    query_read_more(q);
}

static void q_visit(dht_query_t *q, const q_node_t *to) {
    dht_node_t *n = q->node;
    dht_req_t *r = request(n, &to->addr, NULL, q->internal, q->command, q->target, NULL, 0, 0,
                           q_on_reply, q_on_fail, q, 0);
    if (!r) {
        q->errors++;
        return;
    }
    r->retries = 5;
    q->inflight++;
}

static void q_flush(dht_query_t *q);

static void query_read_more(dht_query_t *q) {
    if (q->dead || q->committing || q->finished) return;
    uint32_t conc = q->concurrency + q->slow;
    while (q->inflight < conc && q->npending > 0) {
        /* visit the closest pending node first */
        size_t best = 0;
        for (size_t i = 1; i < q->npending; i++)
            if (dht_xor_cmp(q->target, q->pending[i].id, q->pending[best].id) < 0) best = i;
        q_node_t next = q->pending[best];
        q->pending[best] = q->pending[--q->npending];
        if (!q_is_closer(q, next.id)) continue;
        q_visit(q, &next);
    }
    if (q->npending > 0) return;
    if (q->inflight == 0 || (q->slow == q->inflight && q->nclosest >= K)) {
        if (!q->from_table && q->successes < K / 4) {
            q_add_from_table(q);
            if (q->npending > 0) {
                query_read_more(q);
                return;
            }
        }
        q_flush(q);
    }
}

static void q_commit_done(dht_query_t *q, int ok) {
    if (ok) q->commits_ok++;
    if (--q->commits_pending == 0 && q->committing)
        query_finish(q, q->commits_ok ? 0 : COMMON_ETIMEDOUT);
}

static void q_on_commit_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                              const dht_addr_t *from, const uint8_t *vid) {
    (void)n, (void)from, (void)vid;
    if (!r->q || r->q->dead) return;
    q_commit_done(r->q, m->error == 0);
}

static void q_on_commit_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)n, (void)err;
    if (!r->q || r->q->dead) return;
    q_commit_done(r->q, 0);
}

static dht_req_t *q_send_signed(dht_query_t *q, int unannounce, const dht_addr_t *to,
                                const uint8_t id[32], const uint8_t token[32]) {
    dht_announce_t a;
    memset(&a, 0, sizeof a);
    a.has_peer = 1;
    a.peer = q->self_rec;
    if (unannounce) a.peer.nrelays = 0;
    uint8_t signable[64], sig[64];
    if (dht_announce_signable(unannounce, q->target, id, token, &a.peer, NULL, signable) != 0)
        return NULL;
    dht_crypto_sign(sig, signable, 64, q->kp.sk);
    a.signature = sig;
    uint8_t val[256];
    int len = dht_announce_encode(&a, val, sizeof val);
    if (len < 0) return NULL;
    return request(q->node, to, token, 0, unannounce ? DHT_CMD_UNANNOUNCE : DHT_CMD_ANNOUNCE,
                   q->target, val, (size_t)len, 1, q_on_commit_reply, q_on_commit_fail, q, 0);
}

static void q_send_unannounce(dht_query_t *q, const dht_addr_t *to, const uint8_t id[32],
                              const uint8_t token[32]) {
    /* sent during the walk to nodes that hold our record; counted as commits */
    dht_req_t *r = q_send_signed(q, 1, to, id, token);
    if (r) {
        r->is_commit = 1;
        q->commits_pending++;
    }
}

static void ann_on_walk(dht_query_t *q);

static void q_flush(dht_query_t *q) {
    if (q->committing) return;
    q->committing = 1;
    if (q->kind == Q_ANNOUNCER) {
        ann_on_walk(q);
        return;
    }
    if (q->kind == Q_ANNOUNCE) {
        for (size_t i = 0; i < q->nclosest; i++) {
            if (!q->closest[i].has_token) continue;
            dht_req_t *r =
                q_send_signed(q, 0, &q->closest[i].addr, q->closest[i].id, q->closest[i].token);
            if (r) {
                r->is_commit = 1;
                q->commits_pending++;
            }
        }
        if (q->commits_pending == 0) query_finish(q, DHT_ENOPEERS);
        return;
    }
    if (q->kind == Q_UNANNOUNCE && q->commits_pending > 0) return; /* finish on last reply */
    query_finish(q, 0);
}

static void query_cancel_reqs(dht_node_t *n, dht_query_t *q) {
    dht_req_t **pp = &n->reqs;
    while (*pp) {
        dht_req_t *r = *pp;
        if (r->q == q) {
            *pp = r->next;
            n->nreqs--;
            if (r->sent > 0) dht_cwnd_recv(&n->cwnd);
            req_free(r);
        } else {
            pp = &r->next;
        }
    }
}

static dht_query_t *query_new(dht_node_t *n, qkind_t kind, const uint8_t target[32], int internal,
                              uint64_t command);
static void query_start(dht_query_t *q);

static void bootstrap_done(dht_node_t *n, int walk);
static void start_fw_check(dht_node_t *n, int only_firewall, int walk);

static void second_walk(dht_node_t *n) {
    dht_query_t *q2 = query_new(n, Q_FIND_NODE, dht_table_id(n->table), 1, DHT_CMD_FIND_NODE);
    if (q2) {
        q2->is_bootstrap = 2;
        query_start(q2);
        return;
    }
    n->bootstrapped = 1;
    if (n->ev.on_ready) n->ev.on_ready(n->ev.ud);
}

static void become_persistent(dht_node_t *n, const dht_addr_t *pub) {
    char as[24];
    dht_ipv4_format(pub, as, sizeof as);
    LOG_INFO(n->env->log, "dht", "persistent as %s (firewall check passed)", as);
    uint8_t id[32];
    dht_addr_id(pub, id);
    n->ephemeral = 0;
    if (memcmp(id, dht_table_id(n->table), 32) != 0) {
        dht_table_set_id(n->table, id);
        if (n->bootstrapped) refresh(n);
    }
    if (n->ev.on_persistent) n->ev.on_persistent(n->ev.ud);
}

/* JS _updateNetworkState, after the optional firewall probe */
static void fw_check_done(dht_node_t *n) {
    struct fw_check *f = &n->fw;
    f->active = 0;
    int walk = f->walk;
    int ok = 0;
    if (n->firewalled) {
        /* pass: enough replies on the server socket, same host, port == server port */
        size_t need = f->ntargets >= 5 ? 3 : 1;
        ok = f->count >= need && f->nat2.has_host && n->nat.has_host &&
             memcmp(f->nat2.addr.host, n->nat.addr.host, 4) == 0 && f->nat2.addr.port != 0 &&
             f->nat2.addr.port == n->server_port;
        LOG_DEBUG(n->env->log, "dht", "firewall check: %u/%u replies on the server socket, %s",
                  f->count, f->ntargets, ok ? "reachable" : "firewalled");
        if (ok) {
            n->firewalled = 0;
            n->nat = f->nat2;
            n->nsampled_from = 0;
        }
    } else {
        ok = 1;
    }
    if (ok && !f->only_firewall && n->ephemeral && n->nat.has_host && n->nat.addr.port != 0)
        become_persistent(n, &n->nat.addr);
    if (walk == 1) {
        if (ok)
            second_walk(n);
        else
            bootstrap_done(n, 2);
    }
}

static void fw_on_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m, const dht_addr_t *from,
                        const uint8_t *vid) {
    (void)r, (void)vid;
    struct fw_check *f = &n->fw;
    if (!f->active) return;
    if (n->last_rx_sock == DHT_SOCK_SERVER) {
        int seen = 0;
        for (size_t i = 0; i < f->nhosts; i++) seen |= memcmp(f->hosts[i], from->host, 4) == 0;
        if (seen) {
            f->count++;
            dht_nat_add(&f->nat2, &m->to);
        }
    }
    if (--f->pending == 0) fw_check_done(n);
}

static void fw_on_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)r, (void)err;
    if (n->fw.active && --n->fw.pending == 0) fw_check_done(n);
}

static void start_fw_check(dht_node_t *n, int only_firewall, int walk) {
    struct fw_check *f = &n->fw;
    if (f->active) {
        if (walk == 1) bootstrap_done(n, 2);
        return;
    }
    memset(f, 0, sizeof *f);
    f->active = 1;
    f->only_firewall = only_firewall;
    f->walk = walk;
    dht_nat_init(&f->nat2);
    if (!n->nat.has_host || n->nat.addr.port == 0 || (only_firewall && !n->firewalled)) {
        f->active = 0;
        if (walk == 1) bootstrap_done(n, 2);
        return;
    }
    if (!n->firewalled) {
        fw_check_done(n);
        return;
    }
    dht_addr_t targets[5];
    size_t nt = 0;
    dht_table_node_t near[5];
    size_t c = dht_table_closest(n->table, dht_table_id(n->table), near, 5);
    for (size_t i = 0; i < c; i++) targets[nt++] = near[i].addr;
    for (size_t i = 0; i < n->nbootstrap && nt < 5; i++) targets[nt++] = n->bootstrap[i];
    uint8_t v[2] = {(uint8_t)(n->server_port & 0xff), (uint8_t)(n->server_port >> 8)};
    for (size_t i = 0; i < nt; i++) {
        if (request(n, &targets[i], NULL, 1, DHT_CMD_PING_NAT, NULL, v, 2, 1, fw_on_reply,
                    fw_on_fail, NULL, 0))
            f->pending++;
    }
    f->ntargets = f->pending;
    if (f->pending == 0) {
        f->active = 0;
        if (walk == 1) bootstrap_done(n, 2);
    }
}

static void bootstrap_done(dht_node_t *n, int walk) {
    if (walk == 1 && !n->force_persistent && n->test_nat && n->firewalled) {
        start_fw_check(n, 1, 1);
        return;
    }
    if (walk == 1 && n->force_persistent && n->ephemeral && n->nat.has_host &&
        n->nat.addr.port != 0 && !n->firewalled) {
        uint8_t id[32];
        dht_addr_id(&n->nat.addr, id);
        n->ephemeral = 0;
        dht_table_set_id(n->table, id);
        if (n->ev.on_persistent) n->ev.on_persistent(n->ev.ud);
        /* second walk with the new id so that other nodes add us to their tables */
        dht_query_t *q2 = query_new(n, Q_FIND_NODE, id, 1, DHT_CMD_FIND_NODE);
        if (q2) {
            q2->is_bootstrap = 2;
            query_start(q2);
            return;
        }
    }
    n->bootstrapped = 1;
    LOG_DEBUG(n->env->log, "dht", "bootstrapped: %zu nodes in the table, %s, %s",
              dht_table_size(n->table), n->ephemeral ? "ephemeral" : "persistent",
              n->firewalled ? "firewalled" : "reachable");
    if (n->ev.on_ready) n->ev.on_ready(n->ev.ud);
}

static void query_finish(dht_query_t *q, int status) {
    if (q->dead || q->finished) return;
    q->finished = 1;
    dht_node_t *n = q->node;
    if (q->starting) { /* never call back from inside the API call that created the query */
        q->deferred = 1;
        q->deferred_status = status;
        return;
    }
    q->dead = 1;
    if (q->is_bootstrap) {
        bootstrap_done(n, q->is_bootstrap);
        return;
    }
    if (q->on_done) {
        n->in_callback++;
        q->on_done(q->ud, status);
        n->in_callback--;
    }
}

static void ann_free(dht_announcer_t *a) {
    sodium_memzero(&a->kp, sizeof a->kp);
    free(a);
}

static void reap_queries(dht_node_t *n) {
    if (n->in_callback) return;
    for (dht_announcer_t **ap = &n->announcers; *ap;) {
        dht_announcer_t *a = *ap;
        if (a->state == ANN_DONE && a->refs == 0) {
            *ap = a->next;
            ann_free(a);
        } else {
            ap = &a->next;
        }
    }
    dht_query_t **pp = &n->queries;
    while (*pp) {
        dht_query_t *q = *pp;
        if (q->dead) {
            *pp = q->next;
            query_cancel_reqs(n, q);
            sodium_memzero(&q->kp, sizeof q->kp);
            free(q->seen);
            free(q->pending);
            free(q->seen_keys);
            free(q);
        } else {
            pp = &q->next;
        }
    }
}

static dht_query_t *query_new(dht_node_t *n, qkind_t kind, const uint8_t target[32], int internal,
                              uint64_t command) {
    dht_query_t *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->node = n;
    q->kind = kind;
    memcpy(q->target, target, 32);
    q->internal = internal;
    q->command = command;
    q->concurrency = n->concurrency;
    q->next = n->queries;
    n->queries = q;
    return q;
}

/* Seeds the query and starts it; may finish it synchronously (empty network). */
static void query_start(dht_query_t *q) {
    dht_node_t *n = q->node;
    q_add_from_table(q);
    if (q->npending < K) {
        for (size_t i = 0; i < n->nbootstrap; i++) {
            uint8_t id[32];
            dht_addr_id(&n->bootstrap[i], id);
            q_add_pending(q, &n->bootstrap[i], id, NULL);
        }
    }
    q->starting = 1;
    query_read_more(q);
    q->starting = 0;
}

void dht_query_cancel(dht_query_t *q) {
    if (!q || q->dead) return;
    q->dead = 1;
    q->on_done = NULL;
    q->on_peer = NULL;
    reap_queries(q->node);
}

static dht_query_t *background_query(dht_node_t *n, const uint8_t target[32]) {
    dht_query_t *q = query_new(n, Q_FIND_NODE, target, 1, DHT_CMD_FIND_NODE);
    if (!q) return NULL;
    q->background = 1;
    q->concurrency = n->concurrency / 8 > 2 ? n->concurrency / 8 : 2;
    if (q->concurrency > n->concurrency) q->concurrency = n->concurrency;
    n->refresh_ticks = REFRESH_TICKS;
    query_start(q);
    return q;
}

static void refresh(dht_node_t *n) {
    uint32_t rnd = 0;
    common_random(n->env, &rnd, sizeof rnd);
    dht_table_node_t *node = dht_table_random(n->table, rnd);
    uint8_t target[32];
    memcpy(target, node ? node->id : dht_table_id(n->table), 32);
    background_query(n, target);
}

/* ------------------------------------------------------------------ maintenance */

typedef struct oldest_ctx {
    dht_table_node_t *nodes[5];
    size_t n, max;
    uint32_t tick;
} oldest_ctx_t;

static void collect_oldest(void *ud, dht_table_node_t *node) {
    oldest_ctx_t *c = ud;
    if (node->pinged == c->tick) return;
    size_t i = c->n < c->max ? c->n : c->max;
    if (c->n == c->max && node->seen >= c->nodes[c->max - 1]->seen) return;
    if (i == c->max)
        i = c->max - 1;
    else
        c->n++;
    while (i > 0 && node->seen < c->nodes[i - 1]->seen) {
        c->nodes[i] = c->nodes[i - 1];
        i--;
    }
    c->nodes[i] = node;
}

static void ping_some(dht_node_t *n) {
    if (dht_table_size(n->table) == 0) {
        refresh(n);
        return;
    }
    oldest_ctx_t c;
    memset(&c, 0, sizeof c);
    c.max = n->nreqs > 2 ? 3 : 5;
    c.tick = n->tick;
    dht_table_foreach(n->table, collect_oldest, &c);
    if (c.n > 0 && n->tick - c.nodes[0]->seen < RECENT_NODE && c.n > 2) c.n = 2;
    uint8_t ids[5][32];
    size_t cnt = c.n;
    for (size_t i = 0; i < cnt; i++) memcpy(ids[i], c.nodes[i]->id, 32);
    for (size_t i = 0; i < cnt; i++) {
        dht_table_node_t *node = dht_table_get(n->table, ids[i]);
        if (node) check_node(n, node);
    }
}

static void on_tick(dht_node_t *n, uint64_t now) {
    if (n->last_tick && now - n->last_tick > SLEEP_GAP_MS) {
        n->tick += 2 * OLD_NODE;
        n->tick += 8 - (n->tick & 7) - 2;
        n->refresh_ticks = 1;
        n->has_last_host = 0;
        if (n->adaptive) {
            /* woke up from sleep: the network may have changed; re-earn persistence */
            n->stable_ticks = MORE_STABLE_TICKS;
            n->ephemeral = 1;
        }
    } else {
        n->tick++;
    }
    n->last_tick = now;
    n->down_hints_sent = 0;
    dht_records_expire(n->records, now);
    if (!n->bootstrapped) return;
    if (n->adaptive && n->ephemeral && --n->stable_ticks == 0) {
        n->stable_ticks = MORE_STABLE_TICKS;
        if (!(n->has_last_host && n->nat.has_host &&
              memcmp(n->last_host, n->nat.addr.host, 4) == 0)) {
            n->has_last_host = n->nat.has_host;
            memcpy(n->last_host, n->nat.addr.host, 4);
            start_fw_check(n, 0, 0);
        }
    }
    if ((n->tick & 7) == 0) ping_some(n);
    if (((n->tick & 63) == 0 && dht_table_size(n->table) < K) || --n->refresh_ticks == 0 ||
        n->refresh_ticks > REFRESH_TICKS)
        refresh(n);
}

static void on_drain(dht_node_t *n) {
    dht_tokens_drain(&n->tokens);
    dht_cwnd_drain(&n->cwnd);
    for (dht_req_t *r = n->reqs; r && !dht_cwnd_full(&n->cwnd); r = r->next)
        if (r->queued) req_transmit(n, r);
}

static void ann_run_timers(dht_node_t *n, uint64_t now);

void dht_node_run_timers(dht_node_t *n) {
    uint64_t now = now_ms(n);
    /* catch up missed 750 ms slots (bounded) so token lifetimes follow the clock */
    for (int i = 0; i < 32 && now >= n->next_drain; i++) {
        on_drain(n);
        n->next_drain += DRAIN_MS;
    }
    if (now >= n->next_drain) n->next_drain = now + DRAIN_MS;
    if (now >= n->next_tick) {
        on_tick(n, now);
        n->next_tick = now + TICK_MS;
    }
    for (size_t i = 0; i < n->ndelayed;) {
        if (n->delayed[i].at <= now) {
            delayed_t d = n->delayed[i];
            n->delayed[i] = n->delayed[--n->ndelayed];
            reply_send(n, d.sock, &d.to, d.tid, NULL, 0, 0, 0, NULL, 0);
            continue;
        }
        i++;
    }
    /* request timeouts: handle one due request at a time (handlers may change the list) */
    for (size_t guard = 0; guard < 100000; guard++) {
        dht_req_t *due = NULL;
        for (dht_req_t *r = n->reqs; r; r = r->next)
            if (!r->queued && r->sent > 0 && r->deadline <= now) {
                due = r;
                break;
            }
        if (!due) break;
        if (due->q && !due->slow && !due->is_commit && !due->q->dead) {
            due->slow = 1; /* first timeout: let the query widen (JS oncycle) */
            due->q->slow++;
        }
        if (due->sent > due->retries) {
            req_unlink(n, due);
            n->st.timeouts++;
            /* a timed-out table node is removed (JS _ontimeout) */
            uint8_t id[32];
            dht_addr_id(&due->to, id);
            dht_table_node_t *tn = dht_table_get(n->table, id);
            if (tn && !due->is_check && !due->has_swap) dht_table_remove(n->table, id);
            if (due->on_fail) due->on_fail(n, due, COMMON_ETIMEDOUT);
            if (due->done) due->done(due->ud, COMMON_ETIMEDOUT);
            if (due->rcb) due->rcb(due->ud, COMMON_ETIMEDOUT, NULL, NULL);
            req_free(due);
        } else {
            n->st.retries++;
            if (dht_cwnd_full(&n->cwnd)) {
                due->queued = 1;
                due->deadline = UINT64_MAX;
            } else {
                req_transmit(n, due);
            }
            if (due->q && !due->q->dead) query_read_more(due->q);
        }
    }
    ann_run_timers(n, now);
    for (dht_query_t *q = n->queries; q; q = q->next) {
        if (!q->deferred) continue;
        q->deferred = 0;
        q->finished = 0;
        query_finish(q, q->deferred_status);
    }
    reap_queries(n);
}

uint64_t dht_node_next_deadline(const dht_node_t *n) {
    uint64_t d = n->next_drain < n->next_tick ? n->next_drain : n->next_tick;
    for (const dht_query_t *q = n->queries; q; q = q->next)
        if (q->deferred) return 0;
    for (const dht_announcer_t *a = n->announcers; a; a = a->next)
        if ((a->state == ANN_IDLE || a->state == ANN_DONE) && a->next_at < d) d = a->next_at;
    for (size_t i = 0; i < n->ndelayed; i++)
        if (n->delayed[i].at < d) d = n->delayed[i].at;
    for (const dht_req_t *r = n->reqs; r; r = r->next)
        if (!r->queued && r->sent > 0 && r->deadline < d) d = r->deadline;
    return d;
}

/* ------------------------------------------------------------------ lifecycle */

dht_node_t *dht_node_new(const dht_node_opts_t *opts, const common_env_t *env,
                         const dht_node_io_t *io, const dht_node_events_t *ev, int *err) {
    int e = COMMON_ENOMEM;
    dht_node_t *n = NULL;
    if (!opts || !env || !io || !io->send || opts->nbootstrap > DHT_NODE_MAX_BOOTSTRAP) {
        e = COMMON_EINVAL;
        goto fail;
    }
    n = calloc(1, sizeof *n);
    if (!n) goto fail;
    n->env = env;
    n->io = *io;
    if (ev) n->ev = *ev;
    uint8_t rnd[64];
    common_random(env, rnd, sizeof rnd);
    n->table = dht_table_new(rnd);
    dht_tokens_init(&n->tokens, rnd);
    sodium_memzero(rnd, sizeof rnd);
    common_random(env, rnd, 32);
    dht_tokens_init(&n->tokens, rnd); /* fresh secrets, not related to the table id */
    sodium_memzero(rnd, sizeof rnd);
    n->records = dht_records_new(opts->max_topics, opts->max_records, opts->max_routes, 0);
    if (!n->table || !n->records) goto fail;
    for (size_t i = 0; i < opts->nbootstrap; i++) n->bootstrap[i] = opts->bootstrap[i];
    n->nbootstrap = opts->nbootstrap;
    n->ephemeral = 1;
    n->force_persistent = !opts->ephemeral;
    n->firewalled = opts->firewalled;
    n->allow_local = opts->allow_local;
    n->server_port = opts->server_port;
    n->adaptive = opts->adaptive && opts->ephemeral;
    n->quick_fw = !opts->no_quick_firewall;
    n->stable_ticks = n->adaptive ? STABLE_TICKS : 0;
    n->concurrency = opts->concurrency ? opts->concurrency : 10;
    dht_nat_init(&n->nat);
    if (opts->public_addr) nat_add(n, opts->public_addr);
    dht_cwnd_init(&n->cwnd, 80);
    dht_rate_init(&n->rate, DHT_NODE_RATE_PER_SEC);
    uint16_t tid;
    common_random(env, &tid, sizeof tid);
    n->tid = tid;
    uint32_t off = common_random_uniform(env, REFRESH_TICKS / 2);
    n->refresh_ticks = REFRESH_TICKS - off;
    n->tick = 100 - common_random_uniform(env, 50);
    uint64_t now = common_now_ms(env);
    n->next_drain = now + DRAIN_MS;
    n->next_tick = now + TICK_MS;
    n->last_tick = now;
    if (err) *err = 0;
    return n;
fail:
    if (n) {
        dht_table_free(n->table);
        dht_records_free(n->records);
        free(n);
    }
    if (err) *err = e;
    return NULL;
}

void dht_node_free(dht_node_t *n) {
    if (!n) return;
    while (n->announcers) {
        dht_announcer_t *a = n->announcers;
        n->announcers = a->next;
        ann_free(a);
    }
    while (n->queries) {
        dht_query_t *q = n->queries;
        n->queries = q->next;
        sodium_memzero(&q->kp, sizeof q->kp);
        free(q->seen);
        free(q->pending);
        free(q->seen_keys);
        free(q);
    }
    while (n->reqs) {
        dht_req_t *r = n->reqs;
        n->reqs = r->next;
        req_free(r);
    }
    dht_table_free(n->table);
    dht_records_free(n->records);
    dht_tokens_wipe(&n->tokens);
    free(n);
}

void dht_node_start(dht_node_t *n) {
    if (n->started) return;
    n->started = 1;
    dht_query_t *q = query_new(n, Q_FIND_NODE, dht_table_id(n->table), 1, DHT_CMD_FIND_NODE);
    if (!q) return;
    q->is_bootstrap = 1;
    query_start(q);
    reap_queries(n);
}

int dht_node_is_persistent(const dht_node_t *n) {
    return !n->ephemeral;
}
int dht_node_is_ready(const dht_node_t *n) {
    return n->bootstrapped;
}
int dht_node_is_firewalled(const dht_node_t *n) {
    return n->firewalled;
}
const uint8_t *dht_node_id(const dht_node_t *n) {
    return dht_table_id(n->table);
}
size_t dht_node_table_size(const dht_node_t *n) {
    return dht_table_size(n->table);
}

int dht_node_public_addr(const dht_node_t *n, dht_addr_t *out) {
    if (!n->nat.has_host) return 0;
    *out = n->nat.addr;
    return 1;
}

void dht_node_stats(const dht_node_t *n, dht_node_stats_t *st) {
    *st = n->st;
    st->inflight = n->nreqs;
    st->table = dht_table_size(n->table);
    dht_records_stats_t rs;
    dht_records_stats(n->records, &rs);
    st->topics = rs.topics;
    st->records = rs.records;
    st->routes = rs.routes;
}

/* ------------------------------------------------------------------ API */

dht_query_t *dht_lookup(dht_node_t *n, const uint8_t topic[32], dht_peer_cb on_peer,
                        dht_done_cb on_done, void *ud) {
    dht_query_t *q = query_new(n, Q_LOOKUP, topic, 0, DHT_CMD_LOOKUP);
    if (!q) return NULL;
    q->on_peer = on_peer;
    q->on_done = on_done;
    q->ud = ud;
    n->refresh_ticks = REFRESH_TICKS;
    query_start(q);
    return q;
}

dht_query_t *dht_find_peer(dht_node_t *n, const uint8_t public_key[32], dht_peer_cb on_peer,
                           dht_done_cb on_done, void *ud) {
    uint8_t target[32];
    dht_crypto_target(public_key, target);
    dht_query_t *q = query_new(n, Q_FIND_PEER, target, 0, DHT_CMD_FIND_PEER);
    if (!q) return NULL;
    q->on_peer = on_peer;
    q->on_done = on_done;
    q->ud = ud;
    query_start(q);
    return q;
}

static dht_query_t *announce_common(dht_node_t *n, qkind_t kind, const uint8_t topic[32],
                                    const dht_keypair_t *kp, const dht_addr_t *relays,
                                    size_t nrelays, dht_done_cb on_done, void *ud) {
    dht_query_t *q = query_new(n, kind, topic, 0, DHT_CMD_LOOKUP);
    if (!q) return NULL;
    q->kp = *kp;
    memcpy(q->self_rec.public_key, kp->pk, 32);
    if (nrelays > DHT_MAX_RELAYS) nrelays = DHT_MAX_RELAYS;
    for (size_t i = 0; i < nrelays; i++) q->self_rec.relays[i] = relays[i];
    q->self_rec.nrelays = nrelays;
    q->on_done = on_done;
    q->ud = ud;
    if (kind == Q_UNANNOUNCE && !n->ephemeral) {
        if (is_self_announce(topic, kp->pk)) dht_records_route_delete(n->records, topic);
        dht_records_remove(n->records, topic, kp->pk);
    }
    query_start(q);
    return q;
}

dht_query_t *dht_announce(dht_node_t *n, const uint8_t topic[32], const dht_keypair_t *kp,
                          const dht_addr_t *relays, size_t nrelays, dht_done_cb on_done, void *ud) {
    return announce_common(n, Q_ANNOUNCE, topic, kp, relays, nrelays, on_done, ud);
}

dht_query_t *dht_unannounce(dht_node_t *n, const uint8_t topic[32], const dht_keypair_t *kp,
                            dht_done_cb on_done, void *ud) {
    return announce_common(n, Q_UNANNOUNCE, topic, kp, NULL, 0, on_done, ud);
}

static void on_ping_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                          const dht_addr_t *from, const uint8_t *vid) {
    (void)n, (void)m, (void)from, (void)vid;
    if (r->done) r->done(r->ud, 0);
}

int dht_node_ping(dht_node_t *n, const dht_addr_t *to, dht_done_cb cb, void *ud) {
    dht_req_t *r =
        request(n, to, NULL, 1, DHT_CMD_PING, NULL, NULL, 0, 0, on_ping_reply, NULL, NULL, 0);
    if (!r) return COMMON_EAGAIN;
    r->done = cb;
    r->ud = ud;
    return 0;
}

static void on_raw_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                         const dht_addr_t *from, const uint8_t *vid) {
    (void)n, (void)vid;
    if (r->rcb) r->rcb(r->ud, 0, m, from);
}

int dht_node_request(dht_node_t *n, const dht_addr_t *to, uint64_t command, const uint8_t *target,
                     const uint8_t *token, const uint8_t *value, size_t len, dht_response_cb cb,
                     void *ud) {
    dht_req_t *r = request(n, to, token, 0, command, target, value, len, value != NULL,
                           on_raw_reply, NULL, NULL, 0);
    if (!r) return COMMON_EAGAIN;
    r->rcb = cb;
    r->ud = ud;
    return 0;
}

void dht_node_set_request_hook(dht_node_t *n, dht_request_hook hook, void *ud) {
    n->hook = hook;
    n->hook_ud = ud;
}

void dht_node_reply(dht_node_t *n, const dht_node_req_t *req, const dht_addr_t *to,
                    const uint8_t *value, size_t len, int with_token, int with_closer) {
    reply_send(n, req->sock, to ? to : &req->from, req->msg->tid, req->msg->target, with_token,
               with_closer, 0, value, len);
}

void dht_node_relay(dht_node_t *n, const dht_node_req_t *req, const dht_addr_t *to,
                    const uint8_t *value, size_t len) {
    send_relay(n, req->sock, req->msg, to, value, len);
}

int dht_node_add_bootstrap(dht_node_t *n, const dht_addr_t *a, const dht_addr_t *replaces) {
    for (size_t i = 0; replaces && i < n->nbootstrap; i++) {
        if (dht_ipv4_equal(&n->bootstrap[i], replaces)) {
            n->bootstrap[i] = n->bootstrap[--n->nbootstrap];
            break;
        }
    }
    for (size_t i = 0; i < n->nbootstrap; i++)
        if (dht_ipv4_equal(&n->bootstrap[i], a)) return COMMON_EEXIST;
    if (n->nbootstrap >= DHT_NODE_MAX_BOOTSTRAP) return COMMON_ETOOBIG;
    n->bootstrap[n->nbootstrap++] = *a;
    if (!n->bootstrapped) {
        /* join the running bootstrap walk */
        for (dht_query_t *q = n->queries; q; q = q->next) {
            if (!q->is_bootstrap || q->dead || q->finished || q->committing) continue;
            uint8_t id[32];
            dht_addr_id(a, id);
            q_add_pending(q, a, id, NULL);
            query_read_more(q);
        }
        reap_queries(n);
    } else if (dht_table_size(n->table) == 0) {
        refresh(n);
        reap_queries(n);
    }
    return 0;
}

/* ------------------------------------------------------------------ announcer */

#define ANN_PING_MS 3000u
#define ANN_ITERS   100u /* ~5 minutes of 3 s pings between full re-announces */

static void ann_update(dht_announcer_t *a);
static void ann_maybe_done(dht_announcer_t *a);

static dht_req_t *ann_request(dht_announcer_t *a, const dht_addr_t *to, const uint8_t *token,
                              int internal, uint64_t cmd, const uint8_t *value, size_t len,
                              req_reply_fn on_reply, req_fail_fn on_fail) {
    dht_req_t *r = request(a->node, to, token, internal, cmd, internal ? NULL : a->target, value,
                           len, value != NULL, on_reply, on_fail, NULL, 0);
    if (r) {
        r->ann = a;
        a->refs++;
    }
    return r;
}

static int ann_sign_value(dht_announcer_t *a, int unannounce, const uint8_t id[32],
                          const uint8_t token[32], uint8_t *val, size_t cap) {
    dht_announce_t v;
    memset(&v, 0, sizeof v);
    v.has_peer = 1;
    memcpy(v.peer.public_key, a->kp.pk, 32);
    uint8_t signable[64], sig[64];
    if (dht_announce_signable(unannounce, a->target, id, token, &v.peer, NULL, signable) != 0)
        return -1;
    dht_crypto_sign(sig, signable, 64, a->kp.sk);
    v.signature = sig;
    return dht_announce_encode(&v, val, cap);
}

static void ann_unref(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m, const dht_addr_t *from,
                      const uint8_t *vid) {
    (void)n, (void)m, (void)from, (void)vid;
    r->ann->refs--;
    ann_maybe_done(r->ann);
}

static void ann_unref_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)n, (void)err;
    r->ann->refs--;
    ann_maybe_done(r->ann);
}

/* unannounce chain: FIND_PEER for a fresh token, then a signed UNANNOUNCE */
static void ann_unann_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                            const dht_addr_t *from, const uint8_t *vid) {
    (void)n;
    dht_announcer_t *a = r->ann;
    a->refs--;
    if (m->token && vid && m->value) {
        uint8_t val[256];
        int len = ann_sign_value(a, 1, vid, m->token, val, sizeof val);
        if (len > 0)
            (void)ann_request(a, from, m->token, 0, DHT_CMD_UNANNOUNCE, val, (size_t)len, ann_unref,
                              ann_unref_fail);
    }
    ann_maybe_done(a);
}

static void ann_unannounce(dht_announcer_t *a, const dht_addr_t *to) {
    (void)ann_request(a, to, NULL, 0, DHT_CMD_FIND_PEER, NULL, 0, ann_unann_reply, ann_unref_fail);
}

static void ann_maybe_done(dht_announcer_t *a) {
    if (a->state == ANN_STOPPING && a->refs == 0) a->state = ANN_DONE;
}

static void ann_publish(dht_announcer_t *a) {
    dht_node_t *n = a->node;
    dht_addr_t old[3];
    size_t nold = a->nrelays;
    memcpy(old, a->relays, sizeof old);
    memcpy(a->relays, a->fresh, sizeof a->relays);
    a->nrelays = a->nfresh;
    /* relayAddresses: our own address first when reachable, then the relays */
    a->naddrs = 0;
    if (!n->firewalled && n->nat.has_host && n->nat.addr.port != 0 &&
        n->nat.addr.port == n->server_port)
        a->addrs[a->naddrs++] = n->nat.addr;
    for (size_t i = 0; i < a->nrelays && a->naddrs < 3; i++) a->addrs[a->naddrs++] = a->relays[i];
    for (size_t i = 0; i < nold; i++) {
        int kept = 0;
        for (size_t j = 0; j < a->nrelays; j++) kept |= dht_ipv4_equal(&old[i], &a->relays[j]);
        if (!kept) ann_unannounce(a, &old[i]);
    }
    a->state = ANN_IDLE;
    a->iter = 0;
    a->refresh = 0;
    a->next_at = now_ms(n) + ANN_PING_MS;
    if (a->cb && !a->stopped) {
        n->in_callback++;
        a->cb(a->ud, a->addrs, a->naddrs);
        n->in_callback--;
    }
}

static void ann_commit_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                             const dht_addr_t *from, const uint8_t *vid) {
    (void)n, (void)vid;
    dht_announcer_t *a = r->ann;
    a->refs--;
    if (a->stopped) {
        ann_maybe_done(a);
        return;
    }
    if (m->error == 0 && a->nfresh < 3) a->fresh[a->nfresh++] = *from;
    if (--a->pending == 0) ann_publish(a);
}

static void ann_commit_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)n, (void)err;
    dht_announcer_t *a = r->ann;
    a->refs--;
    if (a->stopped) {
        ann_maybe_done(a);
        return;
    }
    if (--a->pending == 0) ann_publish(a);
}

static void ann_on_walk(dht_query_t *q) {
    dht_announcer_t *a = q->ann;
    q->dead = 1; /* internal query: no user callback */
    q->ann = NULL;
    if (!a || a->stopped) return;
    a->state = ANN_COMMIT;
    a->nfresh = 0;
    a->pending = 0;
    for (size_t i = 0; i < q->nclosest && a->pending < 3; i++) {
        if (!q->closest[i].has_token) continue;
        uint8_t val[256];
        int len = ann_sign_value(a, 0, q->closest[i].id, q->closest[i].token, val, sizeof val);
        if (len < 0) continue;
        if (ann_request(a, &q->closest[i].addr, q->closest[i].token, 0, DHT_CMD_ANNOUNCE, val,
                        (size_t)len, ann_commit_reply, ann_commit_fail))
            a->pending++;
    }
    if (a->pending == 0) ann_publish(a);
}

static void ann_update(dht_announcer_t *a) {
    dht_node_t *n = a->node;
    dht_query_t *q = query_new(n, Q_ANNOUNCER, a->target, 0, DHT_CMD_FIND_PEER);
    if (!q) {
        a->state = ANN_IDLE;
        a->next_at = now_ms(n) + ANN_PING_MS;
        return;
    }
    q->ann = a;
    a->state = ANN_WALK;
    query_start(q);
}

static void ann_ping_reply(dht_node_t *n, dht_req_t *r, const dht_rpc_msg_t *m,
                           const dht_addr_t *from, const uint8_t *vid) {
    (void)m, (void)from, (void)vid;
    dht_announcer_t *a = r->ann;
    a->refs--;
    if (a->stopped) {
        ann_maybe_done(a);
        return;
    }
    a->ok++;
    if (--a->pending == 0) {
        a->state = ANN_IDLE;
        a->iter++;
        a->next_at = now_ms(n) + ANN_PING_MS;
    }
}

static void ann_ping_fail(dht_node_t *n, dht_req_t *r, int err) {
    (void)err;
    dht_announcer_t *a = r->ann;
    a->refs--;
    if (a->stopped) {
        ann_maybe_done(a);
        return;
    }
    if (--a->pending == 0) {
        size_t need = a->nrelays < 3 ? a->nrelays : 3;
        if (a->ok < need) a->refresh = 1; /* lost relays: re-announce now */
        a->state = ANN_IDLE;
        a->iter++;
        a->next_at = a->refresh ? now_ms(n) : now_ms(n) + ANN_PING_MS;
    }
}

static void ann_run_timers(dht_node_t *n, uint64_t now) {
    for (dht_announcer_t *a = n->announcers; a; a = a->next) {
        if (a->state != ANN_IDLE || a->stopped || a->next_at > now || !n->bootstrapped) continue;
        if (a->refresh || a->iter >= ANN_ITERS || a->nrelays == 0) {
            ann_update(a);
            continue;
        }
        a->state = ANN_PINGING;
        a->pending = 0;
        a->ok = 0;
        for (size_t i = 0; i < a->nrelays; i++)
            if (ann_request(a, &a->relays[i], NULL, 1, DHT_CMD_PING, NULL, 0, ann_ping_reply,
                            ann_ping_fail))
                a->pending++;
        if (a->pending == 0) {
            a->state = ANN_IDLE;
            a->refresh = 1;
            a->next_at = now + ANN_PING_MS;
        }
    }
}

dht_announcer_t *dht_announcer_start(dht_node_t *n, const dht_keypair_t *kp, dht_relays_cb cb,
                                     void *ud) {
    dht_announcer_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->node = n;
    a->kp = *kp;
    dht_crypto_target(kp->pk, a->target);
    a->cb = cb;
    a->ud = ud;
    a->state = ANN_IDLE;
    a->next_at = 0; /* first update on the next timer run once bootstrapped */
    a->next = n->announcers;
    n->announcers = a;
    return a;
}

size_t dht_announcer_relay_addresses(const dht_announcer_t *a, dht_addr_t out[3]) {
    memcpy(out, a->addrs, a->naddrs * sizeof *out);
    return a->naddrs;
}

void dht_announcer_refresh(dht_announcer_t *a) {
    if (a->stopped) return;
    a->refresh = 1;
    if (a->state == ANN_IDLE) a->next_at = 0;
}

void dht_announcer_stop(dht_announcer_t *a) {
    if (!a || a->stopped) return;
    dht_node_t *n = a->node;
    a->stopped = 1;
    a->cb = NULL;
    for (dht_query_t *q = n->queries; q; q = q->next)
        if (q->ann == a) {
            q->ann = NULL;
            q->dead = 1;
        }
    a->state = ANN_STOPPING;
    for (size_t i = 0; i < a->nrelays; i++) ann_unannounce(a, &a->relays[i]);
    a->nrelays = 0;
    ann_maybe_done(a);
    reap_queries(n);
}
