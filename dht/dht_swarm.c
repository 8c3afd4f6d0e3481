/* SPDX-License-Identifier: MIT */
/* Hyperswarm-compatible connections on libuv: see dht_swarm.h for the contract. */
#include "dht/dht_swarm.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_log.h"
#include "dht/dht_connect_payload.h"
#include "dht/dht_holepunch.h"
#include "dht/dht_noise.h"
#include "dht/dht_sstream.h"
#include "dht/dht_tcp.h"
#include "dht/dht_udx.h"

#define TICK_MS         250u
#define PASSIVE_WAIT_MS 10000u /* HANDSHAKE_INITIAL_TIMEOUT: wait for the peer's first packet */
#define SLOT_LINGER_MS  10000u /* keep a cached server reply for retransmitted msg1 */
#define MAX_HS_SENDS    6

enum { ROLE_CLIENT = 1, ROLE_SERVER = 2 };
enum { ST_HANDSHAKE = 0, ST_STREAM, ST_OPEN, ST_CLOSING };

typedef struct peer {
    int used;
    uint8_t pk[32];
    unsigned attempts;
    uint64_t next_try;
    int connecting;
    dht_swarm_conn_t *conn; /* the open connection delivered to the app, or NULL */
    int explicit_peer;
    /* client: where it was found, for retries with backoff while the topic is joined */
    int retry;
    uint8_t topic[32];
    dht_addr_t relays[DHT_MAX_RELAYS];
    size_t nrelays;
} peer_t;

typedef struct topic {
    struct dht_swarm *sw;
    int used;
    uint8_t t[32];
    int server, client;
    dht_query_t *lookup, *announce;
    uint64_t next_lookup, next_announce;
    int announced_once;
} topic_t;

typedef struct reqctx {
    dht_swarm_t *sw;
    uint64_t conn_id;
    dht_addr_t to;
    struct reqctx *prev, *next;
} reqctx_t;

struct dht_swarm_conn {
    dht_swarm_t *sw;
    dht_swarm_conn_t *next, *prev;
    uint64_t id;
    int role, state;
    uint8_t remote_pk[32];
    uint8_t topic[32];
    int has_topic;
    /* handshake */
    dht_noise_t *noise;
    uint8_t msg1[512];
    size_t msg1_len;
    uint8_t msg1_hash[32]; /* server: dedupe of the same msg1 via several relays */
    uint8_t reply[600];    /* server: encoded PEER_HANDSHAKE value sent back */
    size_t reply_len;
    int reply_mode; /* DHT_HS_* mode of the request we answered */
    dht_addr_t reply_to;
    int reply_sock;
    uint64_t reply_tid;
    dht_noise_result_t keys;
    int has_keys;
    dht_addr_t relays[DHT_MAX_RELAYS];
    size_t nrelays;
    int pending; /* client: handshake requests in flight */
    int nsent;
    dht_query_t *fp; /* client: FIND_PEER fallback */
    int fp_started, fp_done;
    /* transport */
    dht_udx_stream_t *stream;
    dht_sstream_t *ss;
    dht_addr_t remote;
    uint64_t deadline;
    uint64_t rx_bytes, tx_bytes;
    int delivered; /* on_connection delivered to the app */
    int need_drain, ending, paused;
    int status;
    const char *reason;
    uint8_t *scratch;
    /* client: the first UDX packets for our stream that arrived before the handshake reply
     * (hyperdht's pre-connect firewall hook): they fix the server's socket and address */
    uint8_t *early[4];
    size_t early_len[4];
    int nearly;
    int early_sock;
    struct sockaddr_in early_from;
    /* holepunching (§6): a fresh socket, its NAT sample, the remote's view, probes */
    struct punch *hp;
    uint32_t remote_udx_id;
    dht_addr_t lan_server, lan_addr, lan_relay;
    int lan_payload_hp;
    dht_hs_payload_t *lan_p; /* the server payload, kept while the LAN ping runs */
    dht_swarm_conn_callbacks_t cbs;
    void *ud;
};

struct dht_swarm {
    uv_loop_t *loop;
    const common_env_t *env;
    dht_keypair_t kp;
    uint8_t target[32];
    dht_swarm_opts_t opts;
    dht_udx_t *udx;
    dht_udx_socket_t *sock[2];
    dht_node_t *node;
    dht_announcer_t *ann;
    dht_addr_t relay_addrs[DHT_MAX_RELAYS];
    size_t nrelay_addrs;
    int have_relays;
    uv_timer_t node_timer, tick;
    uv_prepare_t prepare;
    uv_idle_t reap;
    int ready, closing, sockets_open, handles_open;
    void (*close_cb)(void *);
    void *close_ud;
    topic_t topics[DHT_SWARM_MAX_TOPICS];
    peer_t peers[DHT_SWARM_MAX_PEERS];
    dht_swarm_conn_t *conns;
    size_t nconns;
    uint64_t next_conn_id;
    reqctx_t *reqs;
    dht_swarm_stats_t st;
    dht_addr_t boots[DHT_NODE_MAX_BOOTSTRAP];
    size_t nboots;
    char host[16];
    int extra_socks; /* punch sockets still open or closing */
};

static uint64_t now_ms(const dht_swarm_t *sw) {
    return common_now_ms(sw->env);
}

static void to_sa(const dht_addr_t *a, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    memcpy(&sa->sin_addr, a->host, 4);
    sa->sin_port = htons(a->port);
}

static void from_sa(const struct sockaddr_in *sa, dht_addr_t *a) {
    memcpy(a->host, &sa->sin_addr, 4);
    a->port = ntohs(sa->sin_port);
}

static void on_reap(uv_idle_t *h);

static void reap_soon(dht_swarm_t *sw) {
    if (!uv_is_active((uv_handle_t *)&sw->reap)) uv_idle_start(&sw->reap, on_reap);
}

/* ------------------------------------------------------------------ DHT on UDX sockets */

static void io_send(void *ud, int sock, const uint8_t *buf, size_t len, const dht_addr_t *to) {
    dht_swarm_t *sw = ud;
    if (!sw->sock[sock]) return;
    struct sockaddr_in sa;
    to_sa(to, &sa);
    (void)dht_udx_socket_send(sw->sock[sock], buf, len, &sa, 0);
}

static void on_other(dht_udx_socket_t *s, const uint8_t *buf, size_t len,
                     const struct sockaddr_in *from, void *ud) {
    dht_swarm_t *sw = ud;
    if (sw->closing || !sw->node || len < 1) return;
    int which = s == sw->sock[0] ? DHT_SOCK_SERVER : DHT_SOCK_CLIENT;
    dht_addr_t a;
    from_sa(from, &a);
    if (len == 1) {
        /* holepunch probe: echo it, as the non-initiator does (§6) */
        (void)dht_udx_socket_send(s, buf, 1, from, 0);
        return;
    }
    if (len >= 20 && buf[0] == 0xff && buf[1] == 0x01) {
        /* a UDX packet for a stream that is not connected yet: keep the first few for a
         * client stream still waiting for its handshake reply */
        uint32_t id = (uint32_t)buf[4] | ((uint32_t)buf[5] << 8) | ((uint32_t)buf[6] << 16) |
                      ((uint32_t)buf[7] << 24);
        for (dht_swarm_conn_t *c = sw->conns; c; c = c->next) {
            if (c->role != ROLE_CLIENT || c->state != ST_HANDSHAKE || !c->stream ||
                dht_udx_stream_id(c->stream) != id)
                continue;
            if (c->nearly > 0 &&
                (c->early_sock != which || c->early_from.sin_addr.s_addr != from->sin_addr.s_addr ||
                 c->early_from.sin_port != from->sin_port))
                return;
            if (c->nearly >= 4) return;
            uint8_t *copy = malloc(len);
            if (!copy) return;
            memcpy(copy, buf, len);
            c->early[c->nearly] = copy;
            c->early_len[c->nearly++] = len;
            c->early_sock = which;
            c->early_from = *from;
            return;
        }
        return;
    }
    if (buf[0] != DHT_RPC_REQUEST_ID && buf[0] != DHT_RPC_RESPONSE_ID) return;
    dht_node_on_datagram(sw->node, which, buf, len, &a);
}

static void on_node_timer(uv_timer_t *t) {
    dht_swarm_t *sw = t->data;
    if (sw->node) dht_node_run_timers(sw->node);
}

static void on_prepare(uv_prepare_t *p) {
    dht_swarm_t *sw = p->data;
    if (!sw->node) return;
    uint64_t d = dht_node_next_deadline(sw->node);
    uint64_t now = now_ms(sw);
    uv_timer_start(&sw->node_timer, on_node_timer, d > now ? d - now : 0, 0);
}

/* ------------------------------------------------------------------ peers */

static peer_t *peer_get(dht_swarm_t *sw, const uint8_t pk[32], int create) {
    peer_t *free_slot = NULL;
    size_t cap = sw->opts.max_peers;
    size_t used = 0;
    for (size_t i = 0; i < DHT_SWARM_MAX_PEERS; i++) {
        peer_t *p = &sw->peers[i];
        if (p->used) {
            used++;
            if (memcmp(p->pk, pk, 32) == 0) return p;
        } else if (!free_slot)
            free_slot = p;
    }
    if (!create || !free_slot || used >= cap) {
        /* evict an idle, non-explicit peer if the table is full */
        if (!create) return NULL;
        for (size_t i = 0; i < DHT_SWARM_MAX_PEERS && !free_slot; i++) {
            peer_t *p = &sw->peers[i];
            if (p->used && !p->conn && !p->connecting && !p->explicit_peer) {
                memset(p, 0, sizeof *p);
                free_slot = p;
            }
        }
        if (!free_slot) return NULL;
    }
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    memcpy(free_slot->pk, pk, 32);
    return free_slot;
}

static uint64_t backoff_ms(unsigned attempts) {
    static const uint64_t b[4] = {1000, 5000, 15000, 600000};
    return b[attempts == 0 ? 0 : attempts > 4 ? 3 : attempts - 1];
}

/* ------------------------------------------------------------------ connections */

static void conn_fail(dht_swarm_conn_t *c, int status, const char *reason);
static void conn_flush_control(dht_swarm_conn_t *c);

static dht_swarm_conn_t *conn_by_id(dht_swarm_t *sw, uint64_t id) {
    for (dht_swarm_conn_t *c = sw->conns; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void conn_unlink_free(dht_swarm_conn_t *c) {
    dht_swarm_t *sw = c->sw;
    if (c->prev)
        c->prev->next = c->next;
    else
        sw->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    sw->nconns--;
    dht_noise_free(c->noise);
    dht_sstream_free(c->ss);
    if (c->scratch) free(c->scratch);
    for (int i = 0; i < c->nearly; i++) free(c->early[i]);
    free(c->lan_p);
    sodium_memzero(c, sizeof *c);
    free(c);
}

struct punch;
static int hp_free(struct punch *h);
static void hp_tick(struct punch *h);

/* Finalise closed connections (stream gone): deliver on_close / on_error asynchronously. */
static void reap(dht_swarm_t *sw) {
    dht_swarm_conn_t *c = sw->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state != ST_CLOSING || c->stream) continue;
        if (c->fp) {
            dht_query_cancel(c->fp);
            c->fp = NULL;
        }
        peer_t *p = peer_get(sw, c->remote_pk, 0);
        if (p && p->conn == c) {
            p->conn = NULL;
            if (c->role == ROLE_CLIENT && c->has_topic && c->status != 0 &&
                c->status != COMMON_ECANCELED) {
                p->attempts++;
                p->next_try = now_ms(sw) + backoff_ms(p->attempts);
                p->retry = 1;
            }
        }
        if (c->role == ROLE_CLIENT && p && p->connecting == 1 && !c->delivered) {
            p->connecting = 0;
            p->attempts++;
            p->next_try = now_ms(sw) + backoff_ms(p->attempts);
            p->retry = c->has_topic;
            sw->st.attempts_failed++;
            if (sw->opts.on_error && !sw->closing)
                sw->opts.on_error(sw, c->remote_pk, c->status ? c->status : COMMON_ECANCELED,
                                  c->reason ? c->reason : "connection failed", sw->opts.ud);
        }
        if (c->hp) {
            if (hp_free(c->hp) != 0) {
                reap_soon(sw); /* its socket is still busy: try again */
                continue;
            }
            c->hp = NULL;
        }
        if (c->delivered && c->cbs.on_close) {
            c->cbs.on_close(c, c->status, c->ud);
            c->delivered = 0;
        }
        conn_unlink_free(c);
    }
}

static void on_stream_close(dht_udx_stream_t *s, int status, void *ud) {
    (void)s;
    dht_swarm_conn_t *c = ud;
    c->stream = NULL;
    if (c->state != ST_CLOSING) {
        c->state = ST_CLOSING;
        c->status = status;
        if (!c->reason) c->reason = status ? "stream closed by peer or timed out" : NULL;
    }
    reap_soon(c->sw);
}

static void conn_fail(dht_swarm_conn_t *c, int status, const char *reason) {
    if (c->state == ST_CLOSING) return;
    c->state = ST_CLOSING;
    c->status = status;
    c->reason = reason;
    if (c->sw->env)
        LOG_DEBUG(c->sw->env->log, "swarm", "connection closing: %s (%s)", common_err_name(status),
                  reason ? reason : "-");
    if (c->fp) {
        dht_query_cancel(c->fp);
        c->fp = NULL;
    }
    if (c->stream) dht_udx_stream_destroy(c->stream); /* on_close may run right here */
    reap_soon(c->sw);
}

static void conn_flush_control(dht_swarm_conn_t *c) {
    if (!c->ss || !c->stream) return;
    const uint8_t *p;
    size_t n;
    dht_sstream_output(c->ss, &p, &n);
    if (!n) return;
    int rc = dht_udx_stream_write(c->stream, p, n);
    dht_sstream_output_consume(c->ss, n);
    if (rc < 0)
        conn_fail(c, rc, "stream write failed");
    else if (rc == 0)
        c->need_drain |= 2;
}

/* Dedupe, as hyperswarm 4.17's _handleServerConnection: keep the new connection if the
 * existing one already carried (application) bytes both ways — the peer must have lost it
 * and be reconnecting; otherwise keep the connection initiated by the peer whose public key
 * is greater (both peers reach the same verdict). @return 1 if @p c should stay. */
static int dedupe_keep_new(dht_swarm_t *sw, dht_swarm_conn_t *old, dht_swarm_conn_t *c) {
    if (old->rx_bytes > 0 && old->tx_bytes > 0) return 1;
    int we_greater = memcmp(sw->kp.pk, c->remote_pk, 32) > 0;
    return c->role == ROLE_CLIENT ? we_greater : !we_greater;
}

static void conn_opened(dht_swarm_conn_t *c) {
    dht_swarm_t *sw = c->sw;
    c->state = ST_OPEN;
    peer_t *p = peer_get(sw, c->remote_pk, 1);
    if (p && p->conn && p->conn != c) {
        dht_swarm_conn_t *old = p->conn;
        sw->st.duplicates_dropped++;
        if (!dedupe_keep_new(sw, old, c)) {
            if (c->role == ROLE_CLIENT) p->connecting = 2; /* not a failure */
            conn_fail(c, COMMON_ECANCELED, "duplicate connection");
            return;
        }
        conn_fail(old, COMMON_ECANCELED, "duplicate connection");
    }
    if (p) {
        p->conn = c;
        if (c->role == ROLE_CLIENT) p->connecting = 0;
        p->attempts = 0;
    }
    sw->st.connections++;
    c->delivered = 1;
    c->deadline = 0;
    dht_swarm_conn_info_t info = {c->remote_pk, c->role == ROLE_CLIENT, c->remote,
                                  c->has_topic ? c->topic : NULL};
    if (sw->opts.on_connection) sw->opts.on_connection(sw, c, &info, sw->opts.ud);
    if (c->state == ST_OPEN && c->cbs.on_connect) c->cbs.on_connect(c, c->remote_pk, c->ud);
}

static void on_stream_data(dht_udx_stream_t *s, const uint8_t *data, size_t len, void *ud) {
    (void)s;
    dht_swarm_conn_t *c = ud;
    size_t off = 0;
    while (off < len && c->state != ST_CLOSING && c->ss) {
        size_t used = 0;
        dht_sstream_event_t ev;
        int rc = dht_sstream_feed(c->ss, data + off, len - off, &used, &ev);
        off += used;
        if (rc) {
            conn_fail(c, rc, "secret-stream error");
            return;
        }
        if (ev.type == DHT_SSTREAM_EV_OPEN) {
            struct sockaddr_in sa;
            if (dht_udx_stream_remote(c->stream, &sa) == 0) from_sa(&sa, &c->remote);
            conn_opened(c);
        } else if (ev.type == DHT_SSTREAM_EV_DATA) {
            c->rx_bytes += ev.len;
            if (c->delivered && c->cbs.on_data) c->cbs.on_data(c, ev.data, ev.len, c->ud);
        } else if (used == 0)
            break;
        conn_flush_control(c);
    }
}

static void on_stream_end(dht_udx_stream_t *s, void *ud) {
    (void)s;
    dht_swarm_conn_t *c = ud;
    if (c->state == ST_OPEN && c->delivered && c->cbs.on_end)
        c->cbs.on_end(c, c->ud);
    else if (c->state != ST_OPEN)
        conn_fail(c, DHT_EDESTROYED, "peer ended before open");
}

static void on_stream_drain(dht_udx_stream_t *s, void *ud) {
    (void)s;
    dht_swarm_conn_t *c = ud;
    if (!(c->need_drain & 1)) {
        c->need_drain = 0;
        return;
    }
    c->need_drain = 0;
    if (c->state == ST_OPEN && c->cbs.on_drain) c->cbs.on_drain(c, c->ud);
}

static int on_stream_firewall(dht_udx_stream_t *s, dht_udx_socket_t *sock,
                              const struct sockaddr_in *from, void *ud) {
    (void)s, (void)sock;
    dht_swarm_conn_t *c = ud;
    if (ntohs(from->sin_port) == 0) return 1;
    from_sa(from, &c->remote);
    return 0;
}

static const dht_udx_stream_cbs_t stream_cbs = {
    .on_data = on_stream_data,
    .on_end = on_stream_end,
    .on_drain = on_stream_drain,
    .on_firewall = on_stream_firewall,
    .on_close = on_stream_close,
};

static dht_swarm_conn_t *conn_new(dht_swarm_t *sw, int role, const uint8_t *remote_pk) {
    if (sw->nconns >= sw->opts.max_conns) return NULL;
    dht_swarm_conn_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->sw = sw;
    c->role = role;
    c->id = ++sw->next_conn_id;
    if (remote_pk) memcpy(c->remote_pk, remote_pk, 32);
    int err = 0;
    c->stream = dht_udx_stream_new(sw->udx, 0, &stream_cbs, c, &err);
    if (!c->stream) {
        free(c);
        return NULL;
    }
    c->next = sw->conns;
    if (sw->conns) sw->conns->prev = c;
    sw->conns = c;
    sw->nconns++;
    c->deadline = now_ms(sw) + DHT_SWARM_CONNECT_TIMEOUT_MS;
    return c;
}

static int start_stream_on(dht_swarm_conn_t *c, int initiator, dht_udx_socket_t *usock,
                           const dht_addr_t *to, uint32_t remote_id);

static int start_stream(dht_swarm_conn_t *c, int initiator, int sock, const dht_addr_t *to,
                        uint32_t remote_id) {
    return start_stream_on(c, initiator, c->sw->sock[sock], to, remote_id);
}

static int start_stream_on(dht_swarm_conn_t *c, int initiator, dht_udx_socket_t *usock,
                           const dht_addr_t *to, uint32_t remote_id) {
    dht_swarm_t *sw = c->sw;
    int err = 0;
    dht_sstream_opts_t so;
    memset(&so, 0, sizeof so);
    c->ss = dht_sstream_new_keys(initiator, &c->keys, sw->env, &so, &err);
    sodium_memzero(&c->keys, sizeof c->keys);
    c->has_keys = 0;
    if (!c->ss) return err ? err : COMMON_ENOMEM;
    int rc;
    dht_addr_t early_addr;
    if (c->nearly) {
        /* the server already reached us: use that socket and address (as hyperdht does) */
        from_sa(&c->early_from, &early_addr);
        to = &early_addr;
        usock = sw->sock[c->early_sock];
    }
    if (to) {
        struct sockaddr_in sa;
        to_sa(to, &sa);
        c->remote = *to;
        rc = dht_udx_stream_connect(c->stream, usock, remote_id, &sa);
    } else {
        rc = dht_udx_stream_connect(c->stream, NULL, remote_id, NULL);
    }
    if (rc) return rc;
    c->state = ST_STREAM;
    conn_flush_control(c);
    for (int i = 0; i < c->nearly && c->stream && c->state == ST_STREAM; i++)
        dht_udx_socket_inject(sw->sock[c->early_sock], c->early[i], c->early_len[i],
                              &c->early_from);
    for (int i = 0; i < c->nearly; i++) free(c->early[i]);
    c->nearly = 0;
    return 0;
}

/* our firewall class and addresses as sent in payloads */
static uint64_t our_firewall(dht_swarm_t *sw, dht_addr_t *addr, size_t *naddr) {
    *naddr = 0;
    dht_addr_t pub;
    if (!dht_node_is_firewalled(sw->node) && dht_node_public_addr(sw->node, &pub) == 0 &&
        pub.port != 0) {
        addr[(*naddr)++] = pub;
        return DHT_FIREWALL_OPEN;
    }
    return DHT_FIREWALL_UNKNOWN;
}

static int req_sock(dht_swarm_t *sw) {
    return dht_node_is_firewalled(sw->node) ? DHT_SOCK_CLIENT : DHT_SOCK_SERVER;
}

/* Our LAN addresses with the DHT server socket's port (hyperdht shares them so that peers
 * behind the same NAT can connect directly): the bind address when specific, else every
 * non-internal IPv4 interface. Appended after *n entries, up to cap. */
static void add_local_addrs(dht_swarm_t *sw, dht_addr_t *out, size_t *n, size_t cap) {
    dht_addr_t me;
    if (dht_swarm_server_addr(sw, &me) != 0) return;
    if (me.host[0] != 0) {
        if (*n < cap) out[(*n)++] = me;
        return;
    }
    uv_interface_address_t *ifs = NULL;
    int cnt = 0;
    if (uv_interface_addresses(&ifs, &cnt) != 0) return;
    for (int i = 0; i < cnt && *n < cap; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
        dht_addr_t a;
        memcpy(a.host, &ifs[i].address.address4.sin_addr, 4);
        a.port = me.port;
        out[(*n)++] = a;
    }
    uv_free_interface_addresses(ifs, cnt);
}

/* the private address of @p p most like one of ours (longest matching leading octets) */
static int pick_lan_addr(dht_swarm_t *sw, const dht_hs_payload_t *p, dht_addr_t *out) {
    dht_addr_t mine[8];
    size_t nm = 0;
    add_local_addrs(sw, mine, &nm, 8);
    int best = -1;
    size_t bi = 0;
    for (size_t i = 0; i < p->naddr4; i++) {
        if (!dht_addr_is_local(&p->addr4[i])) continue;
        int score = 0;
        for (size_t j = 0; j < nm; j++) {
            int k = 0;
            while (k < 3 && mine[j].host[k] == p->addr4[i].host[k]) k++;
            if (k > score) score = k;
        }
        if (score > best) {
            best = score;
            bi = i;
        }
    }
    if (best < 0) return 0;
    *out = p->addr4[bi];
    return 1;
}

/* ------------------------------------------------------------------ holepunching (§6) */

#define HP_MAX_REQS   8
#define HP_PROBE_TTL  5
#define HP_ANALYZE_MS 2500u

typedef struct hp_req {
    int active, kind; /* kind 0: PING (NAT sample), 1: PEER_HOLEPUNCH */
    uint16_t tid;
    dht_addr_t to;
    uint8_t buf[DHT_RPC_MAX_PACKET];
    size_t len;
    int tries;
    uint64_t next;
} hp_req_t;

typedef struct punch {
    dht_swarm_conn_t *c;
    dht_udx_socket_t *sock;
    uint8_t secret[32], local_secret[32];
    dht_hp_nat_t nat;
    int pings_out, analyzed;
    uint64_t analyze_deadline;
    uint64_t remote_fw;
    dht_addr_t raddrs[DHT_CONNECT_MAX_ADDRS];
    size_t nraddrs;
    int remote_punching;
    uint8_t remote_token[32];
    int has_remote_token;
    int stage, round, probe_retry;
    dht_addr_t relay, server_peer, server_addr;
    uint64_t hp_id;
    uint64_t wait_until;
    int punching, probes_sent, connected;
    uint64_t next_probe;
    /* server: a holepunch request waiting for our NAT analysis */
    int pending;
    uint16_t p_tid;
    dht_addr_t p_relay, p_peer;
    uint8_t p_remote_token[32];
    int p_has_remote_token;
    hp_req_t reqs[HP_MAX_REQS];
} punch_t;

static uint64_t hp_round_now(punch_t *h) {
    return now_ms(h->c->sw);
}

static void hp_raw(punch_t *h, const uint8_t *buf, size_t len, const dht_addr_t *to, int ttl) {
    struct sockaddr_in sa;
    to_sa(to, &sa);
    (void)dht_udx_socket_send(h->sock, buf, len, &sa, ttl);
}

static void hp_probe(punch_t *h, const dht_addr_t *to, int low_ttl) {
    static const uint8_t zero[1] = {0};
    if (to->port == 0) return;
    hp_raw(h, zero, 1, to, low_ttl ? HP_PROBE_TTL : 0);
}

static hp_req_t *hp_request(punch_t *h, int kind, const dht_addr_t *to, int internal, uint64_t cmd,
                            const uint8_t *target, const uint8_t *val, size_t vlen) {
    hp_req_t *r = NULL;
    for (int i = 0; i < HP_MAX_REQS && !r; i++)
        if (!h->reqs[i].active) r = &h->reqs[i];
    if (!r) return NULL;
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    uint16_t tid;
    common_random(h->c->sw->env, &tid, sizeof tid);
    m.tid = tid;
    m.to = *to;
    m.internal = internal;
    m.command = cmd;
    m.target = target;
    m.value = val;
    m.value_len = vlen;
    int n = dht_rpc_encode(&m, r->buf, sizeof r->buf);
    if (n <= 0) return NULL;
    r->active = 1;
    r->kind = kind;
    r->tid = tid;
    r->to = *to;
    r->len = (size_t)n;
    r->tries = 1;
    r->next = hp_round_now(h) + 1000;
    hp_raw(h, r->buf, r->len, to, 0);
    return r;
}

static void hp_analyzed(punch_t *h);

static void hp_add_sample(punch_t *h, const dht_addr_t *to, const dht_addr_t *from) {
    if (dht_hp_nat_add(&h->nat, to, from) && !h->analyzed) hp_analyzed(h);
}

static void hp_sample(punch_t *h, const dht_addr_t *nodes, size_t n) {
    h->analyze_deadline = hp_round_now(h) + HP_ANALYZE_MS;
    dht_hp_nat_init(&h->nat, dht_node_is_firewalled(h->c->sw->node));
    size_t sent = 0;
    for (size_t i = 0; i < n && sent < 5; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            if (dht_ipv4_equal(&nodes[i], &nodes[j])) dup = 1;
        if (dup || nodes[i].port == 0) continue;
        if (hp_request(h, 0, &nodes[i], 1, DHT_CMD_PING, NULL, NULL, 0)) {
            h->pings_out++;
            sent++;
        }
    }
    if (!sent) hp_analyzed(h);
}

static int hp_encrypt(punch_t *h, const dht_hp_payload_t *pl, uint8_t *out, size_t cap) {
    uint8_t plain[512], nonce[24];
    int n = dht_hp_payload_encode(pl, plain, sizeof plain);
    if (n < 0) return n;
    common_random(h->c->sw->env, nonce, sizeof nonce);
    return dht_hp_seal(h->secret, nonce, plain, (size_t)n, out, cap);
}

static void hp_token(punch_t *h, const dht_addr_t *a, uint8_t out[32]) {
    char host[16];
    dht_addr_host(a, host);
    dht_crypto_hash_keyed(out, host, strlen(host), h->local_secret, 32);
}

static void hp_start_punching(punch_t *h) {
    if (h->punching) return;
    h->punching = 1;
    h->probes_sent = 0;
    /* the server waits 1 s first: the client's "fast open" probe went out already */
    h->next_probe = hp_round_now(h) + (h->c->role == ROLE_SERVER ? 1000 : 0);
    h->c->deadline = hp_round_now(h) + 12000;
}

static void hp_set_remote(punch_t *h, const dht_hp_payload_t *pl) {
    h->remote_fw = pl->firewall;
    h->remote_punching = pl->punching;
    if (pl->has_addresses) {
        h->nraddrs = pl->naddrs;
        memcpy(h->raddrs, pl->addrs, pl->naddrs * sizeof pl->addrs[0]);
    }
}

/* server: answer a holepunch round through the relay (request with the relay's tid) */
static void hp_server_reply(punch_t *h) {
    dht_swarm_t *sw = h->c->sw;
    dht_hp_payload_t pl;
    memset(&pl, 0, sizeof pl);
    pl.firewall = h->nat.firewall;
    pl.round = (uint64_t)h->round;
    pl.punching = h->punching;
    if (h->nat.naddrs) {
        pl.has_addresses = 1;
        pl.naddrs = h->nat.naddrs;
        memcpy(pl.addrs, h->nat.addrs, h->nat.naddrs * sizeof h->nat.addrs[0]);
    }
    pl.has_token = 1;
    hp_token(h, &h->p_peer, pl.token);
    if (h->p_has_remote_token) {
        pl.has_remote_token = 1;
        memcpy(pl.remote_token, h->p_remote_token, 32);
    }
    uint8_t box[600], val[800], pkt[DHT_RPC_MAX_PACKET];
    int bl = hp_encrypt(h, &pl, box, sizeof box);
    if (bl < 0) return;
    dht_holepunch_msg_t out;
    memset(&out, 0, sizeof out);
    out.mode = DHT_HS_FROM_SERVER;
    out.id = 0;
    out.payload = box;
    out.payload_len = (size_t)bl;
    out.has_peer = 1;
    out.peer = h->p_peer;
    int vl = dht_holepunch_encode(&out, val, sizeof val);
    if (vl < 0) return;
    dht_rpc_msg_t m;
    memset(&m, 0, sizeof m);
    m.tid = h->p_tid;
    m.to = h->p_relay;
    m.command = DHT_CMD_PEER_HOLEPUNCH;
    m.target = sw->target;
    m.value = val;
    m.value_len = (size_t)vl;
    int n = dht_rpc_encode(&m, pkt, sizeof pkt);
    if (n > 0) hp_raw(h, pkt, (size_t)n, &h->p_relay, 0);
    h->pending = 0;
}

static void client_hp_round(punch_t *h, int punching);

static void hp_analyzed(punch_t *h) {
    if (h->analyzed) return;
    h->analyzed = 1;
    if (h->c->sw->env) {
        char as[24] = "-";
        if (h->nat.naddrs) dht_ipv4_format(&h->nat.addrs[0], as, sizeof as);
        LOG_DEBUG(h->c->sw->env->log, "swarm", "holepunch: NAT %s (%u samples), address %s",
                  h->nat.firewall == DHT_FIREWALL_OPEN         ? "open"
                  : h->nat.firewall == DHT_FIREWALL_CONSISTENT ? "consistent"
                  : h->nat.firewall == DHT_FIREWALL_RANDOM     ? "random"
                                                               : "unknown",
                  h->nat.sampled, as);
    }
    if (h->c->role == ROLE_SERVER) {
        if (h->pending) hp_server_reply(h);
        return;
    }
    if (h->stage == 0) {
        hp_probe(h, &h->server_addr, 1); /* open our NAT towards the server (low TTL) */
        client_hp_round(h, 0);
    }
}

static void client_hp_round(punch_t *h, int punching) {
    dht_swarm_conn_t *c = h->c;
    dht_hp_payload_t pl;
    memset(&pl, 0, sizeof pl);
    pl.firewall = h->nat.firewall;
    pl.round = (uint64_t)h->round++;
    pl.punching = punching;
    if (h->nat.naddrs && h->nat.firewall != DHT_FIREWALL_UNKNOWN) {
        pl.has_addresses = 1;
        pl.naddrs = h->nat.naddrs;
        memcpy(pl.addrs, h->nat.addrs, h->nat.naddrs * sizeof h->nat.addrs[0]);
    }
    if (!punching) {
        pl.has_remote_address = 1;
        pl.remote_address = h->server_addr;
    } else {
        pl.has_token = 1;
        hp_token(h, &h->server_addr, pl.token);
        if (h->has_remote_token) {
            pl.has_remote_token = 1;
            memcpy(pl.remote_token, h->remote_token, 32);
        }
    }
    uint8_t box[600], val[800], target[32];
    int bl = hp_encrypt(h, &pl, box, sizeof box);
    if (bl < 0) {
        conn_fail(c, DHT_EHOLEPUNCH, "holepunch payload encoding failed");
        return;
    }
    dht_holepunch_msg_t m;
    memset(&m, 0, sizeof m);
    m.mode = DHT_HS_FROM_CLIENT;
    m.id = h->hp_id;
    m.payload = box;
    m.payload_len = (size_t)bl;
    m.has_peer = 1;
    m.peer = punching ? h->server_addr : h->server_peer;
    int vl = dht_holepunch_encode(&m, val, sizeof val);
    dht_crypto_target(c->remote_pk, target);
    if (vl < 0 ||
        !hp_request(h, 1, &h->relay, 0, DHT_CMD_PEER_HOLEPUNCH, target, val, (size_t)vl)) {
        conn_fail(c, DHT_EHOLEPUNCH, "cannot send PEER_HOLEPUNCH");
        return;
    }
    h->stage = punching ? 3 : 1;
}

static void client_hp_reply(punch_t *h, const dht_rpc_msg_t *res) {
    dht_swarm_conn_t *c = h->c;
    dht_holepunch_msg_t hm;
    if (!res->value || dht_holepunch_decode(res->value, res->value_len, &hm) != 0 ||
        hm.mode != DHT_HS_REPLY) {
        conn_fail(c, DHT_EHOLEPUNCH, "bad PEER_HOLEPUNCH reply");
        return;
    }
    uint8_t plain[600];
    int pn = dht_hp_open(h->secret, hm.payload, hm.payload_len, plain, sizeof plain);
    dht_hp_payload_t pl;
    if (pn < 0 || dht_hp_payload_decode(plain, (size_t)pn, &pl) != 0) {
        conn_fail(c, DHT_EHOLEPUNCH, "holepunch payload from the server does not decrypt");
        return;
    }
    if (pl.error != DHT_HS_ERR_NONE) {
        conn_fail(c, DHT_EHOLEPUNCH,
                  pl.error == DHT_HS_ERR_TRY_LATER
                      ? "server holepunch: try later (random NAT rate limit)"
                      : "server aborted the holepunch");
        return;
    }
    hp_set_remote(h, &pl);
    if (c->sw->env)
        LOG_DEBUG(c->sw->env->log, "swarm",
                  "holepunch reply (stage %d): remote firewall %llu punching %d addresses %zu",
                  h->stage, (unsigned long long)pl.firewall, pl.punching, h->nraddrs);
    if (pl.has_token) {
        memcpy(h->remote_token, pl.token, 32);
        h->has_remote_token = 1;
    }
    hp_add_sample(h, &res->to, &h->relay);
    if (h->stage == 1) {
        dht_addr_t peer = hm.has_peer ? hm.peer : h->relay;
        if (!dht_ipv4_equal(&peer, &h->server_addr)) {
            h->server_addr = peer; /* the server's punch socket as the relay saw it */
            hp_probe(h, &h->server_addr, 1);
        }
        if (h->remote_fw == DHT_FIREWALL_UNKNOWN && !h->probe_retry) {
            h->probe_retry = 1;
            h->stage = 2;
            h->wait_until = hp_round_now(h) + 1000;
            return;
        }
        if (h->remote_fw == DHT_FIREWALL_UNKNOWN || h->nat.firewall == DHT_FIREWALL_UNKNOWN) {
            conn_fail(c, DHT_EHOLEPUNCH, "holepunch probe: NAT type still unknown on one side");
            return;
        }
        if (h->remote_fw >= DHT_FIREWALL_RANDOM && h->nat.firewall >= DHT_FIREWALL_RANDOM) {
            conn_fail(c, DHT_EHOLEPUNCH, "both NATs randomize ports: cannot holepunch");
            return;
        }
        if (h->remote_fw >= DHT_FIREWALL_RANDOM || h->nat.firewall >= DHT_FIREWALL_RANDOM) {
            conn_fail(c, DHT_EHOLEPUNCH,
                      "random-port NAT on one side: random punching is not implemented");
            return;
        }
        client_hp_round(h, 1);
        return;
    }
    if (h->stage == 3) {
        if (!h->remote_punching) {
            conn_fail(c, DHT_EHOLEPUNCH, "server is not holepunching");
            return;
        }
        if (!h->nraddrs) {
            conn_fail(c, DHT_EHOLEPUNCH, "server sent no addresses to punch");
            return;
        }
        h->stage = 4;
        hp_start_punching(h);
    }
}

static void server_hp_message(dht_swarm_t *sw, punch_t *h, const dht_holepunch_msg_t *hm,
                              const dht_addr_t *relay, uint16_t tid);

static void on_punch_other(dht_udx_socket_t *s, const uint8_t *buf, size_t len,
                           const struct sockaddr_in *from, void *ud) {
    (void)s;
    punch_t *h = ud;
    dht_swarm_conn_t *c = h->c;
    if (!c || c->state == ST_CLOSING) return;
    dht_addr_t a;
    from_sa(from, &a);
    if (len == 1) {
        if (c->role == ROLE_SERVER) {
            hp_probe(h, &a, 0); /* the non-initiator echoes every probe */
            return;
        }
        if (h->connected || c->state != ST_HANDSHAKE || !c->has_keys) return;
        h->connected = 1;
        h->punching = 0;
        if (c->sw->env) {
            char as[24];
            dht_ipv4_format(&a, as, sizeof as);
            LOG_DEBUG(c->sw->env->log, "swarm", "holepunch: probe from %s, connecting", as);
        }
        int rc = start_stream_on(c, 1, h->sock, &a, c->remote_udx_id);
        if (rc) conn_fail(c, rc, "stream setup after holepunch failed");
        return;
    }
    dht_rpc_msg_t m;
    if (dht_rpc_decode(buf, len, &m) != 0) return;
    if (!m.is_response) {
        /* the punch round may be relayed straight to this socket (peerAddress) */
        if (c->role == ROLE_SERVER && !m.internal && m.command == DHT_CMD_PEER_HOLEPUNCH &&
            m.target && memcmp(m.target, c->sw->target, 32) == 0 && m.value) {
            dht_holepunch_msg_t hm;
            if (dht_holepunch_decode(m.value, m.value_len, &hm) == 0 &&
                hm.mode == DHT_HS_FROM_RELAY)
                server_hp_message(c->sw, h, &hm, &a, m.tid);
        }
        return;
    }
    for (int i = 0; i < HP_MAX_REQS; i++) {
        hp_req_t *r = &h->reqs[i];
        if (!r->active || r->tid != m.tid || !dht_ipv4_equal(&r->to, &a)) continue;
        r->active = 0;
        if (r->kind == 0) {
            h->pings_out--;
            hp_add_sample(h, &m.to, &a);
            if (!h->analyzed && h->pings_out == 0) hp_analyzed(h);
        } else {
            client_hp_reply(h, &m);
        }
        return;
    }
}

static void hp_tick(punch_t *h) {
    dht_swarm_conn_t *c = h->c;
    uint64_t now = hp_round_now(h);
    for (int i = 0; i < HP_MAX_REQS && c->state != ST_CLOSING; i++) {
        hp_req_t *r = &h->reqs[i];
        if (!r->active || now < r->next) continue;
        if (r->tries >= 3) {
            r->active = 0;
            if (r->kind == 0) {
                if (--h->pings_out == 0 && !h->analyzed) hp_analyzed(h);
            } else {
                conn_fail(c, DHT_EHOLEPUNCH, "no PEER_HOLEPUNCH reply through the relay");
                return;
            }
            continue;
        }
        r->tries++;
        r->next = now + 1000;
        hp_raw(h, r->buf, r->len, &r->to, 0);
    }
    if (c->state == ST_CLOSING) return;
    if (!h->analyzed && now >= h->analyze_deadline) hp_analyzed(h);
    if (h->stage == 2 && now >= h->wait_until) {
        h->stage = 1;
        client_hp_round(h, 0);
    }
    if (h->punching && now >= h->next_probe) {
        if (h->probes_sent >= 10) {
            h->punching = 0;
            if (c->role == ROLE_CLIENT && !h->connected)
                conn_fail(c, DHT_EHOLEPUNCH, "holepunch failed: no probe came through in 10 s");
            return;
        }
        h->probes_sent++;
        for (size_t i = 0; i < h->nraddrs; i++) hp_probe(h, &h->raddrs[i], 0);
        h->next_probe = now + 1000;
    }
}

static void on_punch_sock_closed(dht_udx_socket_t *s, void *ud) {
    (void)s;
    dht_swarm_t *sw = ud;
    sw->extra_socks--;
    reap_soon(sw);
}

/* Close the punch socket (once no live stream uses it) and free the state. */
static int hp_free(punch_t *h) {
    dht_swarm_t *sw = h->c->sw;
    if (h->sock) {
        if (dht_udx_socket_close(h->sock, on_punch_sock_closed, sw) != 0) return COMMON_EAGAIN;
        h->sock = NULL;
    }
    sodium_memzero(h, sizeof *h);
    free(h);
    return 0;
}

static punch_t *hp_new(dht_swarm_conn_t *c, const uint8_t hash[64]) {
    dht_swarm_t *sw = c->sw;
    punch_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->c = c;
    struct sockaddr_in sa;
    if (uv_ip4_addr(sw->host, 0, &sa) != 0 || dht_udx_socket_open(sw->udx, &sa, &h->sock) != 0) {
        free(h);
        return NULL;
    }
    sw->extra_socks++;
    dht_udx_socket_set_other_cb(h->sock, on_punch_other, h);
    dht_hp_secret(hash, h->secret);
    common_random(sw->env, h->local_secret, sizeof h->local_secret);
    dht_hp_nat_init(&h->nat, 1);
    return h;
}

static void server_hp_message(dht_swarm_t *sw, punch_t *h, const dht_holepunch_msg_t *hm,
                              const dht_addr_t *relay, uint16_t tid) {
    (void)sw;
    dht_swarm_conn_t *c = h->c;
    if (!hm->has_peer) return;
    uint8_t plain[600];
    int pn = dht_hp_open(h->secret, hm->payload, hm->payload_len, plain, sizeof plain);
    dht_hp_payload_t pl;
    if (pn < 0 || dht_hp_payload_decode(plain, (size_t)pn, &pl) != 0) return;
    if (pl.error != DHT_HS_ERR_NONE) {
        conn_fail(c, DHT_EHOLEPUNCH, "client aborted the holepunch");
        return;
    }
    if ((int)pl.round >= h->round) {
        h->round = (int)pl.round;
        hp_set_remote(h, &pl);
    }
    if (c->sw->env)
        LOG_DEBUG(c->sw->env->log, "swarm",
                  "holepunch round %llu from client: firewall %llu punching %d addresses %zu "
                  "(our NAT analysed %d)",
                  (unsigned long long)pl.round, (unsigned long long)pl.firewall, pl.punching,
                  h->nraddrs, h->analyzed);
    /* fast mode: the client opened a session to us; punch back at once */
    if (h->nat.firewall == DHT_FIREWALL_CONSISTENT && pl.has_remote_address)
        hp_probe(h, &hm->peer, 0);
    if (h->remote_punching) {
        if (h->remote_fw >= DHT_FIREWALL_RANDOM || h->nat.firewall >= DHT_FIREWALL_RANDOM ||
            !h->nraddrs) {
            conn_fail(c, DHT_EHOLEPUNCH, "cannot punch a random-port NAT");
            return;
        }
        hp_start_punching(h);
    }
    h->pending = 1;
    h->p_tid = tid;
    h->p_relay = *relay;
    h->p_peer = hm->peer;
    h->p_has_remote_token = pl.has_token;
    if (pl.has_token) memcpy(h->p_remote_token, pl.token, 32);
    if (h->analyzed) hp_server_reply(h);
}

/* ------------------------------------------------------------------ server side */

static dht_swarm_conn_t *slot_find(dht_swarm_t *sw, const uint8_t h[32]) {
    for (dht_swarm_conn_t *c = sw->conns; c; c = c->next)
        if (c->role == ROLE_SERVER && c->reply_len && memcmp(c->msg1_hash, h, 32) == 0) return c;
    return NULL;
}

static void send_server_reply(dht_swarm_t *sw, dht_swarm_conn_t *c, const dht_node_req_t *req) {
    if (c->reply_mode == DHT_HS_FROM_CLIENT)
        dht_node_reply(sw->node, req, NULL, c->reply, c->reply_len, 0, 0);
    else
        dht_node_relay(sw->node, req, &c->reply_to, c->reply, c->reply_len);
}

static void server_handshake(dht_swarm_t *sw, const dht_node_req_t *req) {
    const dht_rpc_msg_t *m = req->msg;
    dht_handshake_msg_t hs;
    if (!m->value || dht_handshake_decode(m->value, m->value_len, &hs) != 0 || !hs.noise ||
        hs.noise_len == 0 || hs.noise_len > sizeof(((dht_swarm_conn_t *)0)->msg1))
        return;
    if (hs.mode != DHT_HS_FROM_CLIENT && hs.mode != DHT_HS_FROM_RELAY &&
        hs.mode != DHT_HS_FROM_SECOND_RELAY)
        return;
    if (hs.mode == DHT_HS_FROM_SECOND_RELAY && !hs.has_relay) return;
    int direct = !hs.has_peer;
    dht_addr_t client_addr = hs.has_peer ? hs.peer : req->from;
    uint8_t h[32];
    dht_crypto_hash(h, hs.noise, hs.noise_len);
    dht_swarm_conn_t *c = slot_find(sw, h);
    if (c) { /* the same msg1 through another relay (or a retry): same answer */
        uint8_t val[700];
        dht_handshake_msg_t out = {0};
        out.noise = NULL;
        dht_handshake_msg_t prev;
        if (dht_handshake_decode(c->reply, c->reply_len, &prev) != 0) return;
        out.noise = prev.noise;
        out.noise_len = prev.noise_len;
        if (hs.mode == DHT_HS_FROM_CLIENT) {
            out.mode = DHT_HS_REPLY;
            int len = dht_handshake_encode(&out, val, sizeof val);
            if (len > 0) dht_node_reply(sw->node, req, NULL, val, (size_t)len, 0, 0);
        } else {
            out.mode = DHT_HS_FROM_SERVER;
            out.has_peer = 1;
            out.peer = hs.peer;
            int len = dht_handshake_encode(&out, val, sizeof val);
            const dht_addr_t *to = hs.mode == DHT_HS_FROM_SECOND_RELAY ? &hs.relay : &req->from;
            if (len > 0) dht_node_relay(sw->node, req, to, val, (size_t)len);
        }
        return;
    }
    uint8_t prologue[32];
    dht_noise_prologue_hyperdht(prologue);
    int err = 0;
    dht_noise_t *nz = dht_noise_new(DHT_NOISE_IK, 0, &sw->kp, prologue, 32, NULL, sw->env, &err);
    if (!nz) return;
    uint8_t pl[512];
    size_t plen = 0;
    if (dht_noise_recv(nz, hs.noise, hs.noise_len, pl, sizeof pl, &plen) != 0) {
        dht_noise_free(nz);
        return;
    }
    const uint8_t *rpk = dht_noise_remote_static(nz);
    if (!rpk || (sw->opts.firewall && sw->opts.firewall(sw->opts.ud, rpk, 0))) {
        sw->st.handshakes_refused++;
        dht_noise_free(nz);
        return;
    }
    dht_hs_payload_t rp;
    if (dht_hs_payload_decode(pl, plen, &rp) != 0) {
        dht_noise_free(nz);
        return;
    }
    uint64_t error = rp.version == 1 ? (rp.has_udx ? DHT_HS_ERR_NONE : DHT_HS_ERR_ABORTED)
                                     : DHT_HS_ERR_VERSION_MISMATCH;
    c = conn_new(sw, ROLE_SERVER, rpk);
    if (!c) {
        sw->st.handshakes_refused++;
        dht_noise_free(nz);
        return;
    }
    c->noise = nz;
    memcpy(c->msg1_hash, h, 32);
    dht_hs_payload_t op;
    memset(&op, 0, sizeof op);
    op.version = 1;
    op.error = error;
    op.firewall = our_firewall(sw, op.addr4, &op.naddr4);
    add_local_addrs(sw, op.addr4, &op.naddr4, 4);
    op.has_udx = 1;
    op.udx_id = dht_udx_stream_id(c->stream);
    op.has_secret_stream = 1;
    if (sw->nrelay_addrs) {
        op.has_relay_addresses = 1;
        op.nrelay_addrs = sw->nrelay_addrs;
        memcpy(op.relay_addrs, sw->relay_addrs, sizeof op.relay_addrs);
    }
    int want_punch = error == DHT_HS_ERR_NONE && op.firewall != DHT_FIREWALL_OPEN && !direct &&
                     rp.firewall != DHT_FIREWALL_OPEN && sw->nrelay_addrs > 0;
    if (want_punch) {
        /* firewalled: offer holepunching through our relays; our address as they see it is
         * the `to` of this request (one public address under a consistent NAT) */
        op.has_holepunch = 1;
        op.holepunch_id = c->id;
        for (size_t i = 0; i < sw->nrelay_addrs && i < DHT_MAX_RELAYS; i++) {
            op.hp_relay[op.nhp_relays] = sw->relay_addrs[i];
            op.hp_peer[op.nhp_relays++] = m->to;
        }
    }
    uint8_t obuf[512], msg2[700];
    int olen = dht_hs_payload_encode(&op, obuf, sizeof obuf);
    size_t m2len = 0;
    if (olen < 0 || dht_noise_send(nz, obuf, (size_t)olen, msg2, sizeof msg2, &m2len) != 0 ||
        dht_noise_result(nz, &c->keys) != 0) {
        conn_fail(c, DHT_EHANDSHAKE, "noise failed");
        return;
    }
    c->has_keys = 1;
    dht_noise_free(c->noise);
    c->noise = NULL;
    if (want_punch) {
        c->hp = hp_new(c, c->keys.hash);
        if (c->hp) {
            dht_addr_t nodes[12];
            size_t nn = 0;
            nodes[nn++] = req->from;
            for (size_t i = 0; i < sw->nrelay_addrs; i++) nodes[nn++] = sw->relay_addrs[i];
            for (size_t i = 0; i < sw->nboots && nn < 12; i++) nodes[nn++] = sw->boots[i];
            hp_sample(c->hp, nodes, nn);
        }
    }
    dht_handshake_msg_t out;
    memset(&out, 0, sizeof out);
    out.noise = msg2;
    out.noise_len = m2len;
    if (hs.mode == DHT_HS_FROM_CLIENT) {
        out.mode = DHT_HS_REPLY;
    } else {
        out.mode = DHT_HS_FROM_SERVER;
        out.has_peer = 1;
        out.peer = hs.peer;
        c->reply_to = hs.mode == DHT_HS_FROM_SECOND_RELAY ? hs.relay : req->from;
    }
    c->reply_mode = (int)hs.mode;
    int rl = dht_handshake_encode(&out, c->reply, sizeof c->reply);
    if (rl <= 0) {
        conn_fail(c, COMMON_ETOOBIG, "reply too big");
        return;
    }
    c->reply_len = (size_t)rl;
    sw->st.handshakes_answered++;
    if (sw->env) {
        char as[24];
        dht_ipv4_format(&client_addr, as, sizeof as);
        LOG_DEBUG(sw->env->log, "swarm",
                  "handshake answered (mode %llu, client %s, client firewall %llu, error %llu)",
                  (unsigned long long)hs.mode, as, (unsigned long long)rp.firewall,
                  (unsigned long long)error);
    }
    if (error != DHT_HS_ERR_NONE) {
        send_server_reply(sw, c, req);
        c->deadline = now_ms(sw) + SLOT_LINGER_MS; /* answer retries, then drop */
        c->state = ST_HANDSHAKE;
        conn_fail(c, DHT_EHANDSHAKE, "client payload refused");
        return;
    }
    int rc;
    if (rp.firewall == DHT_FIREWALL_OPEN || direct) {
        int sock = direct ? req->sock : req_sock(sw);
        rc = start_stream(c, 0, sock, &client_addr, (uint32_t)rp.udx_id);
    } else {
        rc = start_stream(c, 0, 0, NULL, (uint32_t)rp.udx_id);
        c->deadline = now_ms(sw) + PASSIVE_WAIT_MS;
    }
    if (rc) {
        conn_fail(c, rc, "stream setup failed");
        return;
    }
    send_server_reply(sw, c, req);
}

static int on_request_hook(void *ud, dht_node_t *n, const dht_node_req_t *req) {
    (void)n;
    dht_swarm_t *sw = ud;
    const dht_rpc_msg_t *m = req->msg;
    if (sw->closing || !sw->ann || !m->target || memcmp(m->target, sw->target, 32) != 0) return 0;
    if (m->command == DHT_CMD_PEER_HANDSHAKE) {
        server_handshake(sw, req);
        return 1;
    }
    if (m->command == DHT_CMD_PEER_HOLEPUNCH) {
        dht_holepunch_msg_t hm;
        if (!m->value || dht_holepunch_decode(m->value, m->value_len, &hm) != 0 ||
            hm.mode != DHT_HS_FROM_RELAY)
            return 1;
        for (dht_swarm_conn_t *c = sw->conns; c; c = c->next)
            if (c->role == ROLE_SERVER && c->hp && c->id == hm.id && c->state != ST_CLOSING) {
                server_hp_message(sw, c->hp, &hm, &req->from, m->tid);
                break;
            }
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ client side */

static int first_public(const dht_hs_payload_t *p, dht_addr_t *out) {
    for (size_t i = 0; i < p->naddr4; i++) {
        if (!dht_addr_is_local(&p->addr4[i])) {
            *out = p->addr4[i];
            return 1;
        }
    }
    return 0;
}

/* Both sides firewalled: start holepunching (§6) through the relay the server picked. */
static void client_holepunch(dht_swarm_conn_t *c, const dht_hs_payload_t *pp,
                             const dht_addr_t *from, const dht_addr_t *server) {
    dht_swarm_t *sw = c->sw;
    const dht_hs_payload_t p = *pp;
    c->remote_udx_id = (uint32_t)p.udx_id;
    punch_t *h = hp_new(c, c->keys.hash);
    if (!h) {
        conn_fail(c, DHT_EHOLEPUNCH, "cannot open a holepunch socket");
        return;
    }
    c->hp = h;
    h->hp_id = p.holepunch_id;
    size_t pick = 0;
    for (size_t i = 0; i < p.nhp_relays; i++)
        if (dht_ipv4_equal(&p.hp_relay[i], from)) pick = i;
    h->relay = p.hp_relay[pick];
    h->server_peer = p.hp_peer[pick];
    h->server_addr = *server;
    dht_addr_t nodes[12];
    size_t nn = 0;
    for (size_t i = 0; i < p.nhp_relays && nn < 12; i++) nodes[nn++] = p.hp_relay[i];
    for (size_t i = 0; i < c->nrelays && nn < 12; i++) nodes[nn++] = c->relays[i];
    nodes[nn++] = *from;
    for (size_t i = 0; i < sw->nboots && nn < 12; i++) nodes[nn++] = sw->boots[i];
    c->deadline = now_ms(sw) + DHT_SWARM_CONNECT_TIMEOUT_MS;
    if (sw->env) LOG_DEBUG(sw->env->log, "swarm", "holepunch: sampling our NAT");
    hp_sample(h, nodes, nn);
}

static void reqctx_unlink(reqctx_t *r) {
    dht_swarm_t *sw = r->sw;
    if (r->prev)
        r->prev->next = r->next;
    else
        sw->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
}

static void on_lan_pong(void *ud, int status) {
    reqctx_t *r = ud;
    dht_swarm_t *sw = r->sw;
    reqctx_unlink(r);
    dht_swarm_conn_t *c = conn_by_id(sw, r->conn_id);
    free(r);
    if (!c || c->state != ST_HANDSHAKE || !c->lan_p) return;
    dht_hs_payload_t *p = c->lan_p;
    c->lan_p = NULL;
    int rc = 0;
    if (status == 0) {
        if (sw->env) LOG_DEBUG(sw->env->log, "swarm", "LAN address answered: connecting there");
        rc = start_stream(c, 1, req_sock(sw), &c->lan_addr, c->remote_udx_id);
    } else if (c->lan_payload_hp) {
        client_holepunch(c, p, &c->lan_relay, &c->lan_server);
    } else {
        rc = start_stream(c, 1, req_sock(sw), &c->lan_server, c->remote_udx_id);
    }
    free(p);
    if (rc) conn_fail(c, rc, "stream setup failed");
}

static void lan_ping(dht_swarm_conn_t *c, const dht_addr_t *lan, const dht_hs_payload_t *p,
                     const dht_addr_t *relay) {
    dht_swarm_t *sw = c->sw;
    c->lan_addr = *lan;
    c->lan_relay = *relay;
    c->lan_p = malloc(sizeof *p);
    reqctx_t *r = calloc(1, sizeof *r);
    if (!c->lan_p || !r) {
        free(r);
        conn_fail(c, COMMON_ENOMEM, "out of memory");
        return;
    }
    *c->lan_p = *p;
    r->sw = sw;
    r->conn_id = c->id;
    r->to = *lan;
    if (dht_node_ping(sw->node, lan, on_lan_pong, r) != 0) {
        free(r);
        conn_fail(c, COMMON_EAGAIN, "cannot ping the LAN address");
        return;
    }
    r->next = sw->reqs;
    if (sw->reqs) sw->reqs->prev = r;
    sw->reqs = r;
}

static void client_got_reply(dht_swarm_conn_t *c, const dht_rpc_msg_t *res, const dht_addr_t *from,
                             int sock) {
    /* res->to: our address as the relay saw it (LAN shortcut check) */
    dht_swarm_t *sw = c->sw;
    dht_handshake_msg_t hs;
    if (!res->value || dht_handshake_decode(res->value, res->value_len, &hs) != 0 ||
        hs.mode != DHT_HS_REPLY || !hs.noise || !c->noise)
        return; /* not (yet) an answer: maybe another relay answers */
    uint8_t pl[512];
    size_t plen = 0;
    if (dht_noise_recv(c->noise, hs.noise, hs.noise_len, pl, sizeof pl, &plen) != 0) {
        conn_fail(c, DHT_EHANDSHAKE, "bad handshake reply (noise)");
        return;
    }
    dht_hs_payload_t p;
    if (dht_hs_payload_decode(pl, plen, &p) != 0) {
        conn_fail(c, DHT_EHANDSHAKE, "bad server payload");
        return;
    }
    if (p.version != 1) {
        conn_fail(c, DHT_EHANDSHAKE, "server incompatible (payload version)");
        return;
    }
    if (p.error != DHT_HS_ERR_NONE) {
        conn_fail(c, DHT_EHANDSHAKE,
                  p.error == DHT_HS_ERR_TRY_LATER ? "server says try later"
                                                  : "server refused the handshake");
        return;
    }
    if (!p.has_udx) {
        conn_fail(c, DHT_EHANDSHAKE, "server did not send UDX data");
        return;
    }
    if (dht_noise_result(c->noise, &c->keys) != 0) {
        conn_fail(c, DHT_EHANDSHAKE, "handshake incomplete");
        return;
    }
    c->has_keys = 1;
    dht_noise_free(c->noise);
    c->noise = NULL;
    if (c->fp) {
        dht_query_cancel(c->fp);
        c->fp = NULL;
    }
    int relayed = hs.has_peer;
    dht_addr_t server = relayed ? hs.peer : *from;
    if (sw->env) {
        char as[24], fs[24];
        dht_ipv4_format(&server, as, sizeof as);
        dht_ipv4_format(from, fs, sizeof fs);
        LOG_DEBUG(sw->env->log, "swarm",
                  "handshake reply via %s: server %s relayed %d firewall %llu holepunch %d "
                  "addresses %zu udx id %llu",
                  fs, as, relayed, (unsigned long long)p.firewall, p.has_holepunch, p.naddr4,
                  (unsigned long long)p.udx_id);
    }
    int has_hp = p.has_holepunch && p.nhp_relays > 0;
    dht_addr_t to;
    int rc;
    if (!relayed) {
        rc = start_stream(c, 1, sock, from, (uint32_t)p.udx_id);
    } else if (p.firewall == DHT_FIREWALL_OPEN || !has_hp) {
        if (!first_public(&p, &to)) to = server;
        rc = start_stream(c, 1, req_sock(sw), &to, (uint32_t)p.udx_id);
    } else {
        dht_addr_t tmp[2];
        size_t nt;
        dht_addr_t lan;
        if (memcmp(res->to.host, server.host, 4) == 0 && pick_lan_addr(sw, &p, &lan)) {
            /* same public host (one LAN behind one NAT, or one machine): PING the server's
             * private address; connect there if it answers, else holepunch or the relay's
             * view of the server (§5.1) */
            c->remote_udx_id = (uint32_t)p.udx_id;
            c->lan_server = server;
            c->lan_payload_hp = has_hp;
            lan_ping(c, &lan, &p, from);
            return;
        } else if (memcmp(res->to.host, server.host, 4) == 0) {
            /* same host, no private address offered: the address the relay saw */
            rc = start_stream(c, 1, req_sock(sw), &server, (uint32_t)p.udx_id);
        } else if (our_firewall(sw, tmp, &nt) == DHT_FIREWALL_OPEN) {
            /* the server connects to us: the first packet fixes the stream */
            rc = start_stream(c, 1, 0, NULL, (uint32_t)p.udx_id);
            c->deadline = now_ms(sw) + PASSIVE_WAIT_MS;
        } else {
            /* both firewalled: holepunch (§6) through the relay the server picked */
            client_holepunch(c, &p, from, &server);
            return;
        }
    }
    if (rc) conn_fail(c, rc, "stream setup failed");
}

static void maybe_fail_no_reply(dht_swarm_conn_t *c);

static void on_hs_response(void *ud, int status, const dht_rpc_msg_t *res, const dht_addr_t *from) {
    reqctx_t *r = ud;
    dht_swarm_t *sw = r->sw;
    if (r->prev)
        r->prev->next = r->next;
    else
        sw->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    dht_swarm_conn_t *c = conn_by_id(sw, r->conn_id);
    dht_addr_t to = r->to;
    free(r);
    if (!c || c->state != ST_HANDSHAKE) return;
    c->pending--;
    if (c->has_keys) return; /* answered already (now holepunching) */
    int sock = req_sock(sw);
    if (status == 0 && res && from && dht_ipv4_equal(from, &to))
        client_got_reply(c, res, from, sock);
    if (c->state == ST_HANDSHAKE) maybe_fail_no_reply(c);
}

static void send_hs(dht_swarm_conn_t *c, const dht_addr_t *to) {
    dht_swarm_t *sw = c->sw;
    if (c->nsent >= MAX_HS_SENDS) return;
    dht_handshake_msg_t hm;
    memset(&hm, 0, sizeof hm);
    hm.mode = DHT_HS_FROM_CLIENT;
    hm.noise = c->msg1;
    hm.noise_len = c->msg1_len;
    uint8_t val[700];
    int len = dht_handshake_encode(&hm, val, sizeof val);
    if (len <= 0) return;
    reqctx_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->sw = sw;
    r->conn_id = c->id;
    r->to = *to;
    uint8_t target[32];
    dht_crypto_target(c->remote_pk, target);
    if (dht_node_request(sw->node, to, DHT_CMD_PEER_HANDSHAKE, target, NULL, val, (size_t)len,
                         on_hs_response, r) != 0) {
        free(r);
        return;
    }
    r->next = sw->reqs;
    if (sw->reqs) sw->reqs->prev = r;
    sw->reqs = r;
    if (sw->env) {
        char as[24];
        dht_ipv4_format(to, as, sizeof as);
        LOG_DEBUG(sw->env->log, "swarm", "handshake (msg1 %zu bytes) to %s", c->msg1_len, as);
    }
    c->pending++;
    c->nsent++;
}

static void on_fp_peer(void *ud, const dht_peer_record_t *peer, const dht_addr_t *from) {
    dht_swarm_conn_t *c = ud;
    if (c->state != ST_HANDSHAKE || memcmp(peer->public_key, c->remote_pk, 32) != 0) return;
    send_hs(c, from);
}

static void on_fp_done(void *ud, int status) {
    (void)status;
    dht_swarm_conn_t *c = ud;
    c->fp = NULL;
    c->fp_done = 1;
    if (c->state == ST_HANDSHAKE) maybe_fail_no_reply(c);
}

static void maybe_fail_no_reply(dht_swarm_conn_t *c) {
    if (c->pending > 0 || c->fp) return;
    if (!c->fp_started) {
        c->fp_started = 1;
        c->fp = dht_find_peer(c->sw->node, c->remote_pk, on_fp_peer, on_fp_done, c);
        if (c->fp) return;
    }
    conn_fail(c, DHT_ENOROUTE,
              c->nsent ? "no handshake reply from the peer's relays"
                       : "peer not found (no node holds its route)");
}

static void client_start(dht_swarm_t *sw, peer_t *p, const dht_addr_t *relays, size_t nrelays,
                         const uint8_t *topic) {
    if (sw->opts.firewall && sw->opts.firewall(sw->opts.ud, p->pk, 1)) return;
    dht_swarm_conn_t *c = conn_new(sw, ROLE_CLIENT, p->pk);
    if (!c) return;
    sw->st.attempts++;
    p->connecting = 1;
    c->nrelays = nrelays < DHT_MAX_RELAYS ? nrelays : DHT_MAX_RELAYS;
    if (c->nrelays) memcpy(c->relays, relays, c->nrelays * sizeof relays[0]);
    if (topic) {
        memcpy(c->topic, topic, 32);
        c->has_topic = 1;
    }
    uint8_t prologue[32];
    dht_noise_prologue_hyperdht(prologue);
    int err = 0;
    c->noise = dht_noise_new(DHT_NOISE_IK, 1, &sw->kp, prologue, 32, p->pk, sw->env, &err);
    if (!c->noise) {
        conn_fail(c, err ? err : COMMON_ENOMEM, "noise init failed");
        return;
    }
    dht_hs_payload_t op;
    memset(&op, 0, sizeof op);
    op.version = 1;
    op.firewall = our_firewall(sw, op.addr4, &op.naddr4);
    op.has_udx = 1;
    op.udx_id = dht_udx_stream_id(c->stream);
    op.has_secret_stream = 1;
    uint8_t obuf[256];
    int olen = dht_hs_payload_encode(&op, obuf, sizeof obuf);
    if (olen < 0 ||
        dht_noise_send(c->noise, obuf, (size_t)olen, c->msg1, sizeof c->msg1, &c->msg1_len) != 0) {
        conn_fail(c, DHT_EHANDSHAKE, "noise failed");
        return;
    }
    for (size_t i = 0; i < nrelays && i < DHT_MAX_RELAYS; i++) send_hs(c, &relays[i]);
    maybe_fail_no_reply(c);
}

static void maybe_connect(dht_swarm_t *sw, const uint8_t pk[32], const dht_addr_t *relays,
                          size_t nrelays, const uint8_t *topic, int force) {
    if (memcmp(pk, sw->kp.pk, 32) == 0) return;
    peer_t *p = peer_get(sw, pk, 1);
    if (!p || p->conn || p->connecting == 1) return;
    if (topic) {
        memcpy(p->topic, topic, 32);
        p->nrelays = nrelays < DHT_MAX_RELAYS ? nrelays : DHT_MAX_RELAYS;
        if (p->nrelays) memcpy(p->relays, relays, p->nrelays * sizeof relays[0]);
    }
    if (!force && p->attempts && now_ms(sw) < p->next_try) {
        p->retry = topic != NULL;
        return;
    }
    size_t inflight = 0;
    for (dht_swarm_conn_t *c = sw->conns; c; c = c->next)
        if (c->role == ROLE_CLIENT && c->state < ST_OPEN) inflight++;
    if (inflight >= DHT_SWARM_MAX_PARALLEL) return; /* the next refresh picks it up */
    client_start(sw, p, relays, nrelays, topic);
}

/* ------------------------------------------------------------------ topics */

static void topic_run(dht_swarm_t *sw, topic_t *t);

static void on_lookup_peer(void *ud, const dht_peer_record_t *peer, const dht_addr_t *from) {
    (void)from;
    topic_t *t = ud;
    if (t->sw->env)
        LOG_DEBUG(t->sw->env->log, "swarm", "lookup: record with %zu relays", peer->nrelays);
    if (!t->used || !t->client) return;
    maybe_connect(t->sw, peer->public_key, peer->relays, peer->nrelays, t->t, 0);
}

static void on_lookup_done(void *ud, int status) {
    (void)status;
    topic_t *t = ud;
    t->lookup = NULL;
}

static void on_announce_done(void *ud, int status) {
    topic_t *t = ud;
    dht_swarm_t *sw = t->sw;
    t->announce = NULL;
    t->announced_once = 1;
    if (sw->opts.on_announced) sw->opts.on_announced(sw, t->t, status, sw->opts.ud);
}

static void topic_run(dht_swarm_t *sw, topic_t *t) {
    uint64_t now = now_ms(sw);
    uint64_t period = sw->opts.refresh_ms;
    if (t->client && !t->lookup && now >= t->next_lookup) {
        t->lookup = dht_lookup(sw->node, t->t, on_lookup_peer, on_lookup_done, t);
        t->next_lookup = now + period;
    }
    if (t->server && sw->have_relays && !t->announce && now >= t->next_announce) {
        t->announce = dht_announce(sw->node, t->t, &sw->kp, sw->relay_addrs, sw->nrelay_addrs,
                                   on_announce_done, t);
        t->next_announce =
            now + period + common_random_uniform(sw->env, (uint32_t)(period / 5 + 1));
    }
}

static void on_relays(void *ud, const dht_addr_t *addrs, size_t n) {
    dht_swarm_t *sw = ud;
    if (n > DHT_MAX_RELAYS) n = DHT_MAX_RELAYS;
    int changed = n != sw->nrelay_addrs || memcmp(addrs, sw->relay_addrs, n * sizeof *addrs) != 0;
    memcpy(sw->relay_addrs, addrs, n * sizeof *addrs);
    sw->nrelay_addrs = n;
    sw->have_relays = n > 0;
    if (!changed) return;
    for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS; i++) {
        topic_t *t = &sw->topics[i];
        if (!t->used || !t->server) continue;
        if (t->announce) continue; /* the next refresh carries the new relays */
        t->next_announce = 0;
        topic_run(sw, t);
    }
}

static void ensure_announcer(dht_swarm_t *sw) {
    if (sw->ann || !sw->ready) return;
    sw->ann = dht_announcer_start(sw->node, &sw->kp, on_relays, sw);
}

static topic_t *topic_find(dht_swarm_t *sw, const uint8_t t[32]);

static void on_tick(uv_timer_t *tm) {
    dht_swarm_t *sw = tm->data;
    if (sw->closing) return;
    uint64_t now = now_ms(sw);
    for (dht_swarm_conn_t *c = sw->conns; c; c = c->next) {
        if (c->state == ST_CLOSING) continue;
        if (c->deadline && now >= c->deadline && c->state != ST_OPEN) {
            conn_fail(c, COMMON_ETIMEDOUT,
                      c->state == ST_HANDSHAKE ? "handshake timed out"
                                               : "no UDX/secret-stream data from the peer in time");
            continue;
        }
        if (c->ss && c->state == ST_OPEN && dht_sstream_tick(c->ss)) conn_flush_control(c);
        if (c->hp && c->state != ST_CLOSING) hp_tick(c->hp);
    }
    if (!sw->ready) return;
    for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS; i++)
        if (sw->topics[i].used) topic_run(sw, &sw->topics[i]);
    /* peers found on a topic that failed or dropped: retry with backoff while the topic is
     * joined as client (1 s, 5 s, 15 s, then every 10 min) */
    for (size_t i = 0; i < DHT_SWARM_MAX_PEERS; i++) {
        peer_t *p = &sw->peers[i];
        if (!p->used || !p->retry || p->conn || p->connecting == 1 || now < p->next_try) continue;
        topic_t *t = topic_find(sw, p->topic);
        if (!t || !t->client) {
            p->retry = 0;
            continue;
        }
        maybe_connect(sw, p->pk, p->relays, p->nrelays, p->topic, 1);
        if (p->connecting == 1) p->retry = 0; /* else: parallel cap, try next tick */
    }
    /* explicit peers: retry forever with backoff */
    for (size_t i = 0; i < DHT_SWARM_MAX_PEERS; i++) {
        peer_t *p = &sw->peers[i];
        if (p->used && p->explicit_peer && !p->conn && p->connecting != 1 && now >= p->next_try)
            maybe_connect(sw, p->pk, NULL, 0, NULL, 1);
    }
}

static void on_node_ready(void *ud) {
    dht_swarm_t *sw = ud;
    if (sw->ready) return;
    sw->ready = 1;
    for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS; i++) {
        topic_t *t = &sw->topics[i];
        if (!t->used) continue;
        if (t->server) ensure_announcer(sw);
        topic_run(sw, t);
    }
    for (size_t i = 0; i < DHT_SWARM_MAX_PEERS; i++)
        if (sw->peers[i].used && sw->peers[i].explicit_peer)
            maybe_connect(sw, sw->peers[i].pk, NULL, 0, NULL, 1);
    if (sw->opts.on_ready) sw->opts.on_ready(sw, sw->opts.ud);
}

/* ------------------------------------------------------------------ lifecycle */

static void close_sockets(dht_swarm_t *sw);

static void on_reap(uv_idle_t *h) {
    dht_swarm_t *sw = h->data;
    uv_idle_stop(h);
    reap(sw);
    if (sw->closing && sw->nconns == 0 && sw->extra_socks == 0 && sw->sockets_open == 2) {
        sw->sockets_open = 1; /* closing */
        close_sockets(sw);
    }
}

static int resolve_entry(const char *entry, dht_addr_t *out) {
    dht_bootstrap_entry_t e;
    if (dht_bootstrap_parse(entry, &e) != 0) return COMMON_EINVAL;
    if (e.has_ip) {
        memcpy(out->host, e.ip, 4);
        out->port = e.port;
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(e.host, NULL, &hints, &res) != 0 || !res) return COMMON_ERESOLVE;
    memcpy(out->host, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
    out->port = e.port;
    freeaddrinfo(res);
    return 0;
}

dht_swarm_t *dht_swarm_new(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                           const dht_swarm_opts_t *opts, int *err) {
    int e = 0;
    dht_swarm_t *sw = calloc(1, sizeof *sw);
    if (!sw) {
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    sw->loop = loop;
    sw->env = env;
    sw->kp = *kp;
    sw->opts = *opts;
    if (!sw->opts.refresh_ms) sw->opts.refresh_ms = 600000;
    if (!sw->opts.max_peers || sw->opts.max_peers > DHT_SWARM_MAX_PEERS)
        sw->opts.max_peers = DHT_SWARM_MAX_PEERS;
    if (!sw->opts.max_conns || sw->opts.max_conns > DHT_SWARM_MAX_CONNS)
        sw->opts.max_conns = DHT_SWARM_MAX_CONNS;
    dht_crypto_target(kp->pk, sw->target);
    snprintf(sw->host, sizeof sw->host, "%s", opts->host ? opts->host : "0.0.0.0");
    dht_addr_t boots[DHT_NODE_MAX_BOOTSTRAP];
    size_t nb = 0;
    if (!opts->bootstrap) {
        for (size_t i = 0; i < 3; i++)
            if (resolve_entry(dht_bootstrap_default[i], &boots[nb]) == 0) nb++;
    } else {
        for (size_t i = 0; i < opts->nbootstrap && nb < DHT_NODE_MAX_BOOTSTRAP; i++) {
            if ((e = resolve_entry(opts->bootstrap[i], &boots[nb])) != 0) goto fail;
            nb++;
        }
    }
    memcpy(sw->boots, boots, nb * sizeof boots[0]);
    sw->nboots = nb;
    sw->udx = dht_udx_new(loop, env, &e);
    if (!sw->udx) goto fail;
    const char *host = opts->host ? opts->host : "0.0.0.0";
    struct sockaddr_in sa;
    if (uv_ip4_addr(host, opts->port, &sa) != 0) {
        e = COMMON_EINVAL;
        goto fail_udx;
    }
    if ((e = dht_udx_socket_open(sw->udx, &sa, &sw->sock[0])) != 0) goto fail_udx;
    sa.sin_port = 0;
    if ((e = dht_udx_socket_open(sw->udx, &sa, &sw->sock[1])) != 0) {
        dht_udx_socket_close(sw->sock[0], NULL, NULL);
        goto fail_udx_late;
    }
    sw->sockets_open = 2;
    dht_udx_socket_set_other_cb(sw->sock[0], on_other, sw);
    dht_udx_socket_set_other_cb(sw->sock[1], on_other, sw);
    struct sockaddr_in bound;
    dht_udx_socket_getsockname(sw->sock[0], &bound);
    dht_node_opts_t no;
    memset(&no, 0, sizeof no);
    no.bootstrap = boots;
    no.nbootstrap = nb;
    no.ephemeral = opts->ephemeral;
    no.firewalled = 1;
    no.allow_local = opts->allow_local;
    no.server_port = ntohs(bound.sin_port);
    dht_node_io_t io = {io_send, sw};
    dht_node_events_t ev = {on_node_ready, NULL, sw};
    sw->node = dht_node_new(&no, env, &io, &ev, &e);
    if (!sw->node) {
        /* sockets are closed by the normal path */
        sw->closing = 1;
        dht_udx_socket_close(sw->sock[0], NULL, NULL);
        dht_udx_socket_close(sw->sock[1], NULL, NULL);
        goto fail_udx_late;
    }
    dht_node_set_request_hook(sw->node, on_request_hook, sw);
    uv_timer_init(loop, &sw->node_timer);
    uv_timer_init(loop, &sw->tick);
    uv_prepare_init(loop, &sw->prepare);
    uv_idle_init(loop, &sw->reap);
    sw->node_timer.data = sw->tick.data = sw->prepare.data = sw->reap.data = sw;
    sw->handles_open = 4;
    uv_prepare_start(&sw->prepare, on_prepare);
    uv_timer_start(&sw->tick, on_tick, TICK_MS, TICK_MS);
    dht_node_start(sw->node);
    if (err) *err = 0;
    return sw;
fail_udx_late:
    /* the sockets free themselves once closed; the instance leaks only if they never do */
    sodium_memzero(&sw->kp, sizeof sw->kp);
    if (err) *err = e;
    return NULL;
fail_udx:
    dht_udx_free(sw->udx);
fail:
    sodium_memzero(&sw->kp, sizeof sw->kp);
    free(sw);
    if (err) *err = e;
    return NULL;
}

static topic_t *topic_find(dht_swarm_t *sw, const uint8_t t[32]) {
    for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS; i++)
        if (sw->topics[i].used && memcmp(sw->topics[i].t, t, 32) == 0) return &sw->topics[i];
    return NULL;
}

int dht_swarm_join(dht_swarm_t *sw, const uint8_t topic[32], int server, int client) {
    if (!server && !client) return COMMON_EINVAL;
    if (sw->closing) return COMMON_ESTATE;
    topic_t *t = topic_find(sw, topic);
    if (!t) {
        for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS && !t; i++)
            if (!sw->topics[i].used) t = &sw->topics[i];
        if (!t) return COMMON_ETOOBIG;
        memset(t, 0, sizeof *t);
        t->sw = sw;
        t->used = 1;
        memcpy(t->t, topic, 32);
    }
    t->server = server != 0;
    t->client = client != 0;
    t->next_lookup = t->next_announce = 0;
    if (!sw->ready) return 0;
    if (t->server) ensure_announcer(sw);
    topic_run(sw, t);
    return 0;
}

int dht_swarm_leave(dht_swarm_t *sw, const uint8_t topic[32]) {
    topic_t *t = topic_find(sw, topic);
    if (!t) return COMMON_ENOTFOUND;
    if (t->lookup) dht_query_cancel(t->lookup);
    if (t->announce) dht_query_cancel(t->announce);
    if (t->server && sw->ready && !sw->closing)
        (void)dht_unannounce(sw->node, t->t, &sw->kp, NULL, NULL);
    memset(t, 0, sizeof *t);
    return 0;
}

void dht_swarm_refresh(dht_swarm_t *sw) {
    for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS; i++) {
        topic_t *t = &sw->topics[i];
        if (!t->used) continue;
        t->next_lookup = t->next_announce = 0;
        if (sw->ready) topic_run(sw, t);
    }
}

int dht_swarm_join_peer(dht_swarm_t *sw, const uint8_t pk[32]) {
    peer_t *p = peer_get(sw, pk, 1);
    if (!p) return COMMON_ETOOBIG;
    p->explicit_peer = 1;
    if (sw->ready) maybe_connect(sw, pk, NULL, 0, NULL, 1);
    return 0;
}

static void on_handle_closed(uv_handle_t *h) {
    dht_swarm_t *sw = h->data;
    if (--sw->handles_open > 0) return;
    void (*cb)(void *) = sw->close_cb;
    void *ud = sw->close_ud;
    if (sw->udx && dht_udx_free(sw->udx) != 0 && sw->env)
        LOG_WARN(sw->env->log, "swarm", "UDX instance still busy at close");
    while (sw->reqs) {
        reqctx_t *r = sw->reqs;
        sw->reqs = r->next;
        free(r);
    }
    sodium_memzero(&sw->kp, sizeof sw->kp);
    free(sw);
    if (cb) cb(ud);
}

static void on_sock_closed(dht_udx_socket_t *s, void *ud) {
    dht_swarm_t *sw = ud;
    if (s == sw->sock[0])
        sw->sock[0] = NULL;
    else
        sw->sock[1] = NULL;
    if (sw->sock[0] || sw->sock[1]) return;
    sw->sockets_open = 0;
    dht_node_free(sw->node); /* drops pending queries (their contexts are ours: freed below) */
    sw->node = NULL;
    uv_close((uv_handle_t *)&sw->node_timer, on_handle_closed);
    uv_close((uv_handle_t *)&sw->tick, on_handle_closed);
    uv_close((uv_handle_t *)&sw->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&sw->reap, on_handle_closed);
}

static void close_sockets(dht_swarm_t *sw) {
    for (int i = 0; i < 2; i++)
        if (sw->sock[i] && dht_udx_socket_close(sw->sock[i], on_sock_closed, sw) != 0) {
            /* a stream still uses it: try again on the next reap */
            sw->sockets_open = 2;
            reap_soon(sw);
            return;
        }
}

void dht_swarm_close(dht_swarm_t *sw, void (*cb)(void *ud), void *ud) {
    if (sw->closing) return;
    sw->closing = 1;
    sw->close_cb = cb;
    sw->close_ud = ud;
    for (size_t i = 0; i < DHT_SWARM_MAX_TOPICS; i++) {
        topic_t *t = &sw->topics[i];
        if (!t->used) continue;
        if (t->lookup) dht_query_cancel(t->lookup);
        if (t->announce) dht_query_cancel(t->announce);
        t->lookup = t->announce = NULL;
    }
    if (sw->ann) dht_announcer_stop(sw->ann);
    sw->ann = NULL;
    for (dht_swarm_conn_t *c = sw->conns; c; c = c->next) conn_fail(c, 0, "swarm closing");
    reap_soon(sw);
}

dht_node_t *dht_swarm_node(dht_swarm_t *sw) {
    return sw->node;
}

int dht_swarm_server_addr(const dht_swarm_t *sw, dht_addr_t *out) {
    struct sockaddr_in sa;
    if (!sw->sock[0] || dht_udx_socket_getsockname(sw->sock[0], &sa) != 0) return COMMON_ESTATE;
    from_sa(&sa, out);
    return 0;
}

size_t dht_swarm_conn_count(const dht_swarm_t *sw) {
    size_t n = 0;
    for (const dht_swarm_conn_t *c = sw->conns; c; c = c->next)
        if (c->state == ST_OPEN) n++;
    return n;
}

void dht_swarm_stats(const dht_swarm_t *sw, dht_swarm_stats_t *st) {
    *st = sw->st;
}

/* ------------------------------------------------------------------ connection API */

void dht_swarm_conn_set_callbacks(dht_swarm_conn_t *c, const dht_swarm_conn_callbacks_t *cbs,
                                  void *ud) {
    if (cbs)
        c->cbs = *cbs;
    else
        memset(&c->cbs, 0, sizeof c->cbs);
    c->ud = ud;
}

int dht_swarm_conn_write(dht_swarm_conn_t *c, const void *data, size_t len) {
    if (c->state != ST_OPEN || c->ending) return COMMON_ESTATE;
    conn_flush_control(c);
    if (c->state != ST_OPEN) return c->status ? c->status : COMMON_ESTATE;
    if (!c->scratch) {
        c->scratch = malloc(dht_sstream_frame_size(DHT_SWARM_WRITE_CHUNK));
        if (!c->scratch) return COMMON_ENOMEM;
    }
    const uint8_t *p = data;
    int blocked = 0;
    while (len > 0) {
        size_t n = len > DHT_SWARM_WRITE_CHUNK ? DHT_SWARM_WRITE_CHUNK : len;
        int rc = dht_sstream_seal(c->ss, p, n, c->scratch);
        if (rc) {
            conn_fail(c, rc, "encrypt failed");
            return rc;
        }
        rc = dht_udx_stream_write(c->stream, c->scratch, dht_sstream_frame_size(n));
        if (rc < 0) {
            conn_fail(c, rc, "stream write failed");
            return rc;
        }
        if (rc == 0) blocked = 1;
        c->tx_bytes += n;
        p += n;
        len -= n;
    }
    if (blocked) {
        c->need_drain = 1;
        return 0;
    }
    return 1;
}

int dht_swarm_conn_end(dht_swarm_conn_t *c) {
    if (c->state != ST_OPEN || c->ending) return COMMON_ESTATE;
    c->ending = 1;
    conn_flush_control(c);
    if (!c->stream) return COMMON_ESTATE;
    int rc = dht_udx_stream_end(c->stream);
    return rc < 0 ? rc : 0;
}

void dht_swarm_conn_close(dht_swarm_conn_t *c) {
    conn_fail(c, 0, "closed locally");
}

void dht_swarm_conn_pause(dht_swarm_conn_t *c) {
    if (c->stream && !c->paused) dht_udx_stream_read_stop(c->stream);
    c->paused = 1;
}

void dht_swarm_conn_resume(dht_swarm_conn_t *c) {
    if (c->stream && c->paused) dht_udx_stream_read_start(c->stream);
    c->paused = 0;
}

const uint8_t *dht_swarm_conn_remote_pk(const dht_swarm_conn_t *c) {
    return c->remote_pk;
}

const uint8_t *dht_swarm_conn_handshake_hash(const dht_swarm_conn_t *c) {
    return c->ss ? dht_sstream_handshake_hash(c->ss) : NULL;
}

int dht_swarm_conn_is_initiator(const dht_swarm_conn_t *c) {
    return c->role == ROLE_CLIENT;
}

/* ------------------------------------------------------------------ link vtables */

static int l_tcp_write(void *c, const void *d, size_t n) {
    return dht_tcp_write(c, d, n);
}
static int l_tcp_end(void *c) {
    return dht_tcp_end(c);
}
static void l_tcp_close(void *c) {
    dht_tcp_close(c);
}
static void l_tcp_pause(void *c) {
    dht_tcp_pause(c);
}
static void l_tcp_resume(void *c) {
    dht_tcp_resume(c);
}
static const uint8_t *l_tcp_pk(const void *c) {
    return dht_tcp_remote_pk(c);
}
const dht_link_ops_t dht_link_tcp = {"tcp",       l_tcp_write,  l_tcp_end, l_tcp_close,
                                     l_tcp_pause, l_tcp_resume, l_tcp_pk};

static int l_sw_write(void *c, const void *d, size_t n) {
    return dht_swarm_conn_write(c, d, n);
}
static int l_sw_end(void *c) {
    return dht_swarm_conn_end(c);
}
static void l_sw_close(void *c) {
    dht_swarm_conn_close(c);
}
static void l_sw_pause(void *c) {
    dht_swarm_conn_pause(c);
}
static void l_sw_resume(void *c) {
    dht_swarm_conn_resume(c);
}
static const uint8_t *l_sw_pk(const void *c) {
    return dht_swarm_conn_remote_pk(c);
}
const dht_link_ops_t dht_link_swarm = {"swarm",    l_sw_write,  l_sw_end, l_sw_close,
                                       l_sw_pause, l_sw_resume, l_sw_pk};
