/* SPDX-License-Identifier: MIT */
/**
 * @file dht_swarm.h
 * @brief Hyperswarm-compatible connections on libuv (hyperswarm-wire.md §5, §6, §10, §11):
 *        one DHT node sharing its two UDP sockets with UDX streams, the server side
 *        (announcer, topic announces, relayed Noise IK answered, UDX stream fixed by its
 *        first packet, secret-stream on top), the client side (LOOKUP → handshake via the
 *        record's relays, FIND_PEER fallback → UDX connect → secret-stream) and the swarm
 *        rules (join/leave per topic, one connection per remote key with the public-key
 *        dedupe rule, retry backoff, caps, a firewall hook).
 *
 * Objects (opaque, allocated here):
 *  - dht_swarm_t: one per process. Owns a dht_udx_t, two dht_udx sockets (the DHT's
 *    server and client sockets, §3.1), the dht_node core, its announcer and every
 *    connection. Free with dht_swarm_close(); its callback runs once everything is closed.
 *  - dht_swarm_conn_t: one encrypted connection to a remote public key. Same shape as
 *    dht_tcp_conn_t (dht_tcp.h), so an application can treat both alike (see dht_link_ops_t
 *    at the end of this file):
 *      1. on_connection(swarm, conn, info) is called once the secret-stream is open (both
 *         header frames exchanged); install callbacks there with dht_swarm_conn_set_callbacks().
 *      2. on_connect(conn, remote_pk) follows right after on_connection returns: writes are
 *         allowed from here on.
 *      3. on_data(conn, data, len): one decrypted message (borrowed for the call). Messages
 *         are chunks of a byte stream: NDJSON receivers reassemble lines.
 *      4. on_end: the peer half-closed. Call dht_swarm_conn_end() when done too.
 *      5. on_close(conn, status): exactly once, always asynchronously (never from inside a
 *         dht_swarm_* call); status 0 clean, else the first error (DHT_EDESTROYED peer reset,
 *         COMMON_ETIMEDOUT, COMMON_ECRYPTO, DHT_ESTREAMID, DHT_EFRAME; a connection dropped
 *         as a duplicate closes with COMMON_ECANCELED). The handle is freed right after
 *         on_close returns.
 *    dht_swarm_conn_write() copies and encrypts at once and returns 1 while the UDX send
 *    queue is below its high-water mark, 0 above it (wait for on_drain).
 *
 * Connection attempts that fail are reported through opts.on_error(pk, status, reason)
 * with a short human-readable reason ("no reply from relays", "holepunch not supported:
 * both sides firewalled", "server refused: version mismatch", ...), then retried with
 * backoff 1 s / 5 s / 15 s / 10 min while the topic is joined.
 *
 * Limits: DHT_SWARM_MAX_PEERS known peers, DHT_SWARM_MAX_CONNS connections,
 * DHT_SWARM_MAX_PARALLEL concurrent client attempts, DHT_SWARM_MAX_TOPICS joined topics,
 * DHT_SWARM_MAX_SLOTS server handshake slots. Everything runs on the loop thread; secrets
 * are wiped when freed.
 *
 * Holepunching (§6): when both sides are firewalled and not on one host, each side opens a
 * fresh punch socket (on the same UDX instance), classifies its NAT with PINGs from it
 * (dht_holepunch.h), and the client runs the probe and punch rounds (PEER_HOLEPUNCH via the
 * relay, encrypted payloads, echoed tokens); both then send 1-byte probes every second (at
 * most 10); the client connects its UDX stream over the punch socket to the first address
 * a probe came from, and the server's stream is fixed by that first UDX packet.
 * Not implemented (clear errors, no hang): random-port NAT punching (birthday sockets,
 * 1750 random probes) fails at once with DHT_EHOLEPUNCH; the blind relay (relayThrough is
 * never offered and ignored when received); relay → direct upgrade of a live stream.
 */
#ifndef SWARMDVM_DHT_SWARM_H
#define SWARMDVM_DHT_SWARM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/common_env.h"
#include "dht/dht_crypto.h"
#include "dht/dht_node.h"

#ifndef DHT_SWARM_MAX_PEERS
#define DHT_SWARM_MAX_PEERS 64
#endif
#ifndef DHT_SWARM_MAX_CONNS
#define DHT_SWARM_MAX_CONNS 64
#endif
#ifndef DHT_SWARM_MAX_PARALLEL
#define DHT_SWARM_MAX_PARALLEL 3
#endif
#ifndef DHT_SWARM_MAX_TOPICS
#define DHT_SWARM_MAX_TOPICS 32
#endif
#ifndef DHT_SWARM_MAX_SLOTS
#define DHT_SWARM_MAX_SLOTS 64
#endif
#ifndef DHT_SWARM_CONNECT_TIMEOUT_MS
#define DHT_SWARM_CONNECT_TIMEOUT_MS 15000u
#endif
#ifndef DHT_SWARM_HIGH_WATER
#define DHT_SWARM_HIGH_WATER (1024u * 1024)
#endif
#ifndef DHT_SWARM_WRITE_CHUNK
#define DHT_SWARM_WRITE_CHUNK (64u * 1024)
#endif

typedef struct dht_swarm dht_swarm_t;
typedef struct dht_swarm_conn dht_swarm_conn_t;

typedef struct dht_swarm_conn_callbacks {
    void (*on_connect)(dht_swarm_conn_t *c, const uint8_t *remote_pk, void *ud);
    void (*on_data)(dht_swarm_conn_t *c, const uint8_t *data, size_t len, void *ud);
    void (*on_drain)(dht_swarm_conn_t *c, void *ud);
    void (*on_end)(dht_swarm_conn_t *c, void *ud);
    void (*on_close)(dht_swarm_conn_t *c, int status, void *ud);
} dht_swarm_conn_callbacks_t;

/** Facts about a new connection, borrowed for the on_connection call. */
typedef struct dht_swarm_conn_info {
    const uint8_t *remote_pk; /* 32 bytes */
    int initiator;            /* 1: we connected (client side) */
    dht_addr_t remote;        /* UDX remote address */
    const uint8_t *topic;     /* client side: the topic that found the peer; else NULL */
} dht_swarm_conn_info_t;

/** The swarm's network settings as common_config option-table rows, shared by every
 *  program that joins a topic (read them into dht_swarm_opts_t host/bootstrap/allow_local). */
#define DHT_SWARM_NET_OPTS                                                 \
    {"bootstrap",                                                          \
     "DVM_BOOTSTRAP",                                                      \
     COMMON_OPT_LIST,                                                      \
     NULL,                                                                 \
     0,                                                                    \
     0,                                                                    \
     "HOST:PORT",                                                          \
     "DHT bootstrap node (default: the public hyperdht nodes)"},           \
        {"allow-local",                                                    \
         "DVM_ALLOW_LOCAL",                                                \
         COMMON_OPT_BOOL,                                                  \
         "false",                                                          \
         0,                                                                \
         0,                                                                \
         NULL,                                                             \
         "accept loopback/private DHT addresses (test and LAN networks)"}, \
    {                                                                      \
        "swarm-host", "DVM_SWARM_HOST", COMMON_OPT_STR, NULL, 0, 0, "IP",  \
            "bind address of the DHT/UDX sockets (default 0.0.0.0)"        \
    }

typedef struct dht_swarm_opts {
    const char *host;       /* bind address (dotted IPv4); NULL = "0.0.0.0" */
    uint16_t port;          /* DHT server socket port; 0 = random */
    char *const *bootstrap; /* "host:port" / "ip@host:port"; NULL = public hyperdht nodes */
    size_t nbootstrap;
    int allow_local;             /* accept loopback/private addresses (test networks) */
    int ephemeral;               /* node mode, as dht_node_uv: 1 = client node (default use) */
    uint32_t refresh_ms;         /* topic lookup/announce refresh; 0 = 10 minutes */
    size_t max_peers, max_conns; /* 0 = the compile-time caps (which also bound them) */
    /** Return non-zero to refuse a peer (server: before answering its handshake; client:
     *  before connecting). NULL accepts everyone. */
    int (*firewall)(void *ud, const uint8_t remote_pk[32], int initiator);
    /** A connection is open; install callbacks with dht_swarm_conn_set_callbacks(). */
    void (*on_connection)(dht_swarm_t *sw, dht_swarm_conn_t *c, const dht_swarm_conn_info_t *info,
                          void *ud);
    /** A topic announce finished (status 0: stored on at least one node). */
    void (*on_announced)(dht_swarm_t *sw, const uint8_t topic[32], int status, void *ud);
    /** A connection attempt to @p pk failed (reason is a static string). */
    void (*on_error)(dht_swarm_t *sw, const uint8_t pk[32], int status, const char *reason,
                     void *ud);
    void (*on_ready)(dht_swarm_t *sw, void *ud); /* DHT bootstrapped */
    void *ud;
} dht_swarm_opts_t;

/** @brief Bind the sockets, start the DHT node. @p loop, @p env borrowed (must outlive the
 *  swarm); @p kp copied; @p opts copied (string pointers borrowed until the call returns). */
dht_swarm_t *dht_swarm_new(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                           const dht_swarm_opts_t *opts, int *err);
/** @brief Join @p topic: server = announce ourselves (announcer + topic announce, refreshed);
 *  client = look up the topic and connect to every new key (refreshed). Joining again
 *  updates the flags. @return 0, COMMON_ETOOBIG, COMMON_EINVAL (neither flag). */
int dht_swarm_join(dht_swarm_t *sw, const uint8_t topic[32], int server, int client);
/** @brief Leave: stop looking up / announcing (unannounce in the background). Existing
 *  connections stay open. @return 0 or COMMON_ENOTFOUND. */
int dht_swarm_leave(dht_swarm_t *sw, const uint8_t topic[32]);
/** @brief Run the lookups / announces of every joined topic now. */
void dht_swarm_refresh(dht_swarm_t *sw);
/** @brief Connect to a known public key (FIND_PEER walk; no topic). */
int dht_swarm_join_peer(dht_swarm_t *sw, const uint8_t pk[32]);
/** @brief Close every connection and socket; @p cb (may be NULL) runs when all is freed. */
void dht_swarm_close(dht_swarm_t *sw, void (*cb)(void *ud), void *ud);

dht_node_t *dht_swarm_node(dht_swarm_t *sw);
/** @brief The bound DHT server socket address. */
int dht_swarm_server_addr(const dht_swarm_t *sw, dht_addr_t *out);
size_t dht_swarm_conn_count(const dht_swarm_t *sw);

typedef struct dht_swarm_stats {
    uint64_t handshakes_answered, handshakes_refused, attempts, attempts_failed, connections,
        duplicates_dropped;
} dht_swarm_stats_t;
void dht_swarm_stats(const dht_swarm_t *sw, dht_swarm_stats_t *st);

/* ---- connections (same contract as dht_tcp_conn_t) ---- */

void dht_swarm_conn_set_callbacks(dht_swarm_conn_t *c, const dht_swarm_conn_callbacks_t *cbs,
                                  void *ud);
/** @return 1 keep writing; 0 above high water (wait for on_drain); COMMON_ESTATE after
 *  end/close; other negative = fatal (the connection is closing). */
int dht_swarm_conn_write(dht_swarm_conn_t *c, const void *data, size_t len);
int dht_swarm_conn_end(dht_swarm_conn_t *c);
void dht_swarm_conn_close(dht_swarm_conn_t *c);
void dht_swarm_conn_pause(dht_swarm_conn_t *c);
void dht_swarm_conn_resume(dht_swarm_conn_t *c);
const uint8_t *dht_swarm_conn_remote_pk(const dht_swarm_conn_t *c);
const uint8_t *dht_swarm_conn_handshake_hash(const dht_swarm_conn_t *c);
int dht_swarm_conn_is_initiator(const dht_swarm_conn_t *c);

/* ---- one shape for TCP and swarm connections ---- */

/**
 * A small vtable so an application can hold either a dht_tcp_conn_t or a dht_swarm_conn_t
 * as (ops, conn) and call them alike. Callbacks stay transport-specific (their first
 * argument is the transport's own handle); pass the same functions through a thin
 * wrapper, or keep the (ops, conn) pair in the callback's user data.
 */
typedef struct dht_link_ops {
    const char *name; /* "tcp" or "swarm" */
    int (*write)(void *conn, const void *data, size_t len);
    int (*end)(void *conn);
    void (*close)(void *conn);
    void (*pause)(void *conn);
    void (*resume)(void *conn);
    const uint8_t *(*remote_pk)(const void *conn);
} dht_link_ops_t;

extern const dht_link_ops_t dht_link_tcp;   /* wraps dht_tcp_* */
extern const dht_link_ops_t dht_link_swarm; /* wraps dht_swarm_conn_* */

#endif
