/* SPDX-License-Identifier: MIT */
/**
 * @file dht_node.h
 * @brief A dht-rpc + hyperdht node as a pure protocol core (hyperswarm-wire.md §3, §4).
 *
 * Bytes and time in, bytes, events and the next deadline out; no sockets, no globals:
 *  - the owner feeds every dht-rpc datagram with dht_node_on_datagram(sock, bytes, from),
 *    where sock is DHT_SOCK_SERVER or DHT_SOCK_CLIENT (the two sockets of §3.1);
 *  - the node sends through dht_node_io_t.send (borrowed buffer, copy if queued);
 *  - the owner calls dht_node_run_timers() at or after dht_node_next_deadline().
 * dht_node_uv.h is the libuv adapter binding the two UDP sockets; another owner (the UDX
 * socket adapter) can drive the same core by forwarding non-UDX datagrams.
 *
 * Modes: ephemeral nodes never send an id and answer storage commands with
 * UNKNOWN_COMMAND; persistent nodes (opts.ephemeral = 0) take id = BLAKE2b(public ip:port)
 * once their public address is known (pre-seeded with opts.public_addr, or learned from the
 * `to` field of replies via the NAT sampler) and serve LOOKUP / ANNOUNCE / UNANNOUNCE /
 * FIND_PEER from a bounded record store. Loopback/private addresses are refused unless
 * opts.allow_local is set (test and LAN networks).
 *
 * Async API: dht_lookup, dht_find_peer, dht_announce, dht_unannounce return a query handle
 * owned by the node. Callbacks run from inside on_datagram/run_timers. After the done
 * callback (exactly once, unless cancelled) the handle is gone; dht_query_cancel() stops a
 * query without further callbacks. Callbacks may call any API function, including cancel.
 */
#ifndef SWARMDVM_DHT_NODE_H
#define SWARMDVM_DHT_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"
#include "dht/dht_crypto.h"
#include "dht/dht_rpc.h"

enum { DHT_SOCK_SERVER = 0, DHT_SOCK_CLIENT = 1 };

#ifndef DHT_NODE_MAX_BOOTSTRAP
#define DHT_NODE_MAX_BOOTSTRAP 16
#endif
#ifndef DHT_NODE_MAX_INFLIGHT
#define DHT_NODE_MAX_INFLIGHT 4096 /* requests queued or in flight, per node */
#endif
#ifndef DHT_NODE_RATE_PER_SEC
#define DHT_NODE_RATE_PER_SEC 200 /* incoming requests per source per second (burst 2x) */
#endif

typedef struct dht_node dht_node_t;
typedef struct dht_query dht_query_t;

typedef struct dht_node_io {
    /** Send one datagram from socket @p sock. @p buf is borrowed for the call only. */
    void (*send)(void *ud, int sock, const uint8_t *buf, size_t len, const dht_addr_t *to);
    void *ud;
} dht_node_io_t;

typedef struct dht_node_events {
    void (*on_ready)(void *ud);      /* bootstrap walk finished */
    void (*on_persistent)(void *ud); /* node took its id and serves storage */
    void *ud;
} dht_node_events_t;

typedef struct dht_node_opts {
    const dht_addr_t *bootstrap; /* resolved bootstrap nodes (copied) */
    size_t nbootstrap;
    int ephemeral;                 /* 1: client only; 0: persistent once the address is known */
    int firewalled;                /* 1: send requests from the client socket */
    int allow_local;               /* accept loopback/private addresses */
    const dht_addr_t *public_addr; /* pre-seeded public address (bootstrapper), or NULL */
    uint16_t server_port;          /* local port of the server socket (PING_NAT value) */
    uint32_t concurrency;          /* 0 = 10 */
    int adaptive;                  /* with ephemeral = 1: become persistent after ~20 stable,
                                      unfirewalled minutes (JS default for DHT nodes) */
    int no_quick_firewall;         /* skip the PING_NAT probe + firewall check at bootstrap */
    size_t max_topics, max_records, max_routes; /* 0 = defaults of dht_records.h */
} dht_node_opts_t;

/** @brief New node; call dht_node_start() to bootstrap. env and io are borrowed. */
dht_node_t *dht_node_new(const dht_node_opts_t *opts, const common_env_t *env,
                         const dht_node_io_t *io, const dht_node_events_t *ev, int *err);
/** @brief Free the node; pending queries are dropped without callbacks. */
void dht_node_free(dht_node_t *n);
void dht_node_start(dht_node_t *n);

void dht_node_on_datagram(dht_node_t *n, int sock, const uint8_t *buf, size_t len,
                          const dht_addr_t *from);
void dht_node_run_timers(dht_node_t *n);
/** @brief Absolute monotonic ms (env clock) of the next timer. */
uint64_t dht_node_next_deadline(const dht_node_t *n);

int dht_node_is_persistent(const dht_node_t *n);
int dht_node_is_ready(const dht_node_t *n);
/** @brief 1 while requests go out from the client socket (firewall check not passed). */
int dht_node_is_firewalled(const dht_node_t *n);
/** @brief Own id (valid as a node id only when persistent). */
const uint8_t *dht_node_id(const dht_node_t *n);
/** @brief Public address as sampled (0 if unknown). */
int dht_node_public_addr(const dht_node_t *n, dht_addr_t *out);
size_t dht_node_table_size(const dht_node_t *n);

typedef struct dht_node_stats {
    uint64_t requests_sent, retries, timeouts, responses, requests_received, dropped_rate;
    size_t inflight, table, topics, records, routes;
} dht_node_stats_t;
void dht_node_stats(const dht_node_t *n, dht_node_stats_t *st);

/* ---- async API ---- */

/** A record streamed by lookup/find_peer, with the node that returned it. */
typedef void (*dht_peer_cb)(void *ud, const dht_peer_record_t *peer, const dht_addr_t *from);
/** Query finished: 0, or DHT_ENOPEERS / COMMON_ETIMEDOUT when no node answered a commit. */
typedef void (*dht_done_cb)(void *ud, int status);

/** @brief Walk towards @p topic, streaming each new (public key) record as it arrives. */
dht_query_t *dht_lookup(dht_node_t *n, const uint8_t topic[32], dht_peer_cb on_peer,
                        dht_done_cb on_done, void *ud);
/** @brief FIND_PEER walk towards BLAKE2b(public_key); streams the peer's record. */
dht_query_t *dht_find_peer(dht_node_t *n, const uint8_t public_key[32], dht_peer_cb on_peer,
                           dht_done_cb on_done, void *ud);
/**
 * @brief LOOKUP walk, then a signed ANNOUNCE of {kp->pk, relays} to each of the 20 closest
 * persistent responders with their tokens. Done with 0 when at least one stored it.
 * @p kp is copied (and wiped when the query ends).
 */
dht_query_t *dht_announce(dht_node_t *n, const uint8_t topic[32], const dht_keypair_t *kp,
                          const dht_addr_t *relays, size_t nrelays, dht_done_cb on_done, void *ud);
/** @brief LOOKUP walk; signed UNANNOUNCE to every node that returned our record and to the
 *  closest responders. */
dht_query_t *dht_unannounce(dht_node_t *n, const uint8_t topic[32], const dht_keypair_t *kp,
                            dht_done_cb on_done, void *ud);
/** @brief Stop a query; no callback follows. */
void dht_query_cancel(dht_query_t *q);

/** @brief Add a bootstrap node (e.g. the DNS fallback of an unresponsive suggested IP,
 *  which @p replaces, if non-NULL, is removed). A running bootstrap walk uses it at once.
 *  @return 0, COMMON_EEXIST or COMMON_ETOOBIG. */
int dht_node_add_bootstrap(dht_node_t *n, const dht_addr_t *a, const dht_addr_t *replaces);

/** @brief Send one PING; @p cb gets 0 or COMMON_ETIMEDOUT. */
int dht_node_ping(dht_node_t *n, const dht_addr_t *to, dht_done_cb cb, void *ud);

/* ---- announcer (§4.3): how a server becomes reachable ---- */

typedef struct dht_announcer dht_announcer_t;
/** The relay addresses to put in topic announces changed (own address first when reachable,
 *  then the relays that hold our route; at most 3). */
typedef void (*dht_relays_cb)(void *ud, const dht_addr_t *addrs, size_t n);
/**
 * @brief Keep a route to us on the 3 nodes closest to BLAKE2b(kp->pk): FIND_PEER walk, signed
 * self-ANNOUNCE to the 3 closest, PING them every 3 s (re-announce when fewer than 3
 * answer), re-run about every 5 minutes and UNANNOUNCE relays that dropped out.
 * The handle stays valid until dht_announcer_stop(). @p kp is copied.
 */
dht_announcer_t *dht_announcer_start(dht_node_t *n, const dht_keypair_t *kp, dht_relays_cb cb,
                                     void *ud);
/** @brief Current relay addresses (up to 3). */
size_t dht_announcer_relay_addresses(const dht_announcer_t *a, dht_addr_t out[3]);
/** @brief Re-run the walk and announce now (e.g. after a network change). */
void dht_announcer_refresh(dht_announcer_t *a);
/** @brief Stop: no more callbacks; relays are unannounced in the background, after which the
 *  node frees the announcer. */
void dht_announcer_stop(dht_announcer_t *a);

/* ---- hooks and raw requests for the connect layer (handshakes, holepunch) ---- */

/** An incoming non-internal request, offered to the owner's hook first (borrowed). */
typedef struct dht_node_req {
    int sock;
    dht_addr_t from;
    const uint8_t *from_id; /* validated id or NULL */
    const dht_rpc_msg_t *msg;
} dht_node_req_t;
/** Return 1 if the hook handled (or deliberately ignored) the request, 0 to let the node
 *  handle it (storage commands; PEER_HANDSHAKE/PEER_HOLEPUNCH relaying via routes). */
typedef int (*dht_request_hook)(void *ud, dht_node_t *n, const dht_node_req_t *req);
void dht_node_set_request_hook(dht_node_t *n, dht_request_hook hook, void *ud);
/** @brief Reply to @p req (to its sender, or to @p to when non-NULL), with the request's tid. */
void dht_node_reply(dht_node_t *n, const dht_node_req_t *req, const dht_addr_t *to,
                    const uint8_t *value, size_t len, int with_token, int with_closer);
/** @brief Forward: a request with the same tid, command and target and a new value. */
void dht_node_relay(dht_node_t *n, const dht_node_req_t *req, const dht_addr_t *to,
                    const uint8_t *value, size_t len);
/** Response callback: status 0 with the response, or COMMON_ETIMEDOUT (res NULL). */
typedef void (*dht_response_cb)(void *ud, int status, const dht_rpc_msg_t *res,
                                const dht_addr_t *from);
/** @brief Send one hyperdht request (3 retries). @p ud must stay valid until @p cb. */
int dht_node_request(dht_node_t *n, const dht_addr_t *to, uint64_t command, const uint8_t *target,
                     const uint8_t *token, const uint8_t *value, size_t len, dht_response_cb cb,
                     void *ud);

/* ---- bootstrap list ---- */

/** One bootstrap entry: "host:port" or "suggestedIP@host:port". */
typedef struct dht_bootstrap_entry {
    char host[256]; /* hostname or dotted IPv4 */
    int has_ip;     /* suggested IP present, or host is a literal IPv4 */
    uint8_t ip[4];
    uint16_t port;
} dht_bootstrap_entry_t;

/** @brief Parse one entry. @return 0 or COMMON_EINVAL. */
int dht_bootstrap_parse(const char *s, dht_bootstrap_entry_t *e);
/** The public hyperdht bootstrap nodes (§3.7). */
extern const char *const dht_bootstrap_default[3];

#endif
