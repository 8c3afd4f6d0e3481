/* SPDX-License-Identifier: MIT */
/**
 * @file dht_udx.h
 * @brief UDX on libuv: an instance (stream-id table), UDP sockets shared by many streams,
 *        and reliable streams, wire-compatible with udx-native (hyperswarm-wire.md §9).
 *
 * Objects and ownership (all opaque, all allocated here):
 *  - dht_udx_t: one per program (or per DHT node). Owns the table of local stream ids;
 *    ids are looked up per instance, not per socket, so a stream may receive its first
 *    packet on any of the instance's sockets. Free with dht_udx_free() once every socket
 *    and stream has finished closing (their close callbacks ran).
 *  - dht_udx_socket_t: a uv_udp_t bound to one address. Incoming datagrams are
 *    demultiplexed (§10): UDX packets for a known, connected stream go to that stream;
 *    EVERYTHING ELSE (DHT messages, 1-byte holepunch probes, UDX packets for unknown ids)
 *    goes to the socket's "other" callback, so the DHT can share the socket. Raw datagrams
 *    go out with dht_udx_socket_send(). Close with dht_udx_socket_close() after its
 *    streams closed; the memory is released after the close callback returns.
 *  - dht_udx_stream_t: a reliable ordered stream with a local 32-bit id. Created
 *    unconnected; dht_udx_stream_connect() gives the remote id and either the remote
 *    address or NULL ("first packet fixes the remote address": the first UDX packet for
 *    this id, on any socket of the instance and from any address, fixes socket and address,
 *    after an optional on_firewall check). Data written before that is queued.
 *    Close: dht_udx_stream_destroy() (reset, sends DESTROY), or gracefully when both sides
 *    called end and everything is acked, or on peer DESTROY / timeout. on_close is called
 *    exactly once, with the reason; the handle must not be used after on_close returns and
 *    is freed later by the library (libuv style: memory released only after the close
 *    callback). After a graceful close the stream id stays reserved for DHT_UDX_LINGER_MS
 *    (or until its socket closes) to re-ack a peer that missed our final ack.
 *
 * Callbacks run on the loop thread; borrowed buffers are valid only during the call.
 * Stream callbacks may call any function of this API, including destroy; on_close may be
 * called synchronously from destroy (when the stream never connected) and from write/end
 * (a graceful close that completes immediately).
 *
 * Test hook: dht_udx_socket_set_impair() drops and reorders packets in both directions
 * (on send and on receive) with a seeded generator, to test loss recovery against any
 * peer on loopback.
 */
#ifndef SWARMDVM_DHT_UDX_H
#define SWARMDVM_DHT_UDX_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/common_env.h"
#include "dht/dht_udx_conn.h"

typedef struct dht_udx dht_udx_t;
typedef struct dht_udx_socket dht_udx_socket_t;
typedef struct dht_udx_stream dht_udx_stream_t;

/* ------------------------------------------------------------------ instance */

/** @brief New instance on @p loop. @p env (clock, rng, log) is borrowed and must outlive
 *  the instance; its clock must be monotonic milliseconds. NULL + *err on failure. */
dht_udx_t *dht_udx_new(uv_loop_t *loop, const common_env_t *env, int *err);
/** @brief Free the instance. COMMON_ESTATE (nothing freed) while sockets or streams live. */
int dht_udx_free(dht_udx_t *udx);
/** @brief A random non-zero stream id not in use in this instance. */
uint32_t dht_udx_new_id(dht_udx_t *udx);

/* ------------------------------------------------------------------ sockets */

/** Called for every datagram that is not a UDX packet for a known stream. */
typedef void (*dht_udx_other_cb)(dht_udx_socket_t *sock, const uint8_t *buf, size_t len,
                                 const struct sockaddr_in *from, void *ud);
typedef void (*dht_udx_socket_close_cb)(dht_udx_socket_t *sock, void *ud);

/** @brief Create a socket and bind it to @p addr (IPv4; port 0 = any) and start reading. */
int dht_udx_socket_open(dht_udx_t *udx, const struct sockaddr_in *addr, dht_udx_socket_t **out);
/** @brief The bound address (port filled in). */
int dht_udx_socket_getsockname(dht_udx_socket_t *sock, struct sockaddr_in *out);
/** @brief Install the demux hook for non-stream datagrams (@p ud borrowed). */
void dht_udx_socket_set_other_cb(dht_udx_socket_t *sock, dht_udx_other_cb cb, void *ud);
/** @brief Send one raw datagram (copied if it must be queued). @p ttl 0 = default (64);
 *  a TTL applies only when the datagram goes out at once, not when it had to be queued.
 *  @return 0 (sent, queued, or silently lost like any UDP datagram), COMMON_ESTATE. */
int dht_udx_socket_send(dht_udx_socket_t *sock, const void *buf, size_t len,
                        const struct sockaddr_in *to, int ttl);
/** @brief Feed one datagram as if it had just arrived on @p sock from @p from (demux and
 *  all). For a UDX packet that reached the "other" callback because its stream was not
 *  connected yet: the owner may keep a copy and inject it once it connected the stream.
 *  Must not be called from inside a callback of the same socket's receive path. */
void dht_udx_socket_inject(dht_udx_socket_t *sock, const uint8_t *buf, size_t len,
                           const struct sockaddr_in *from);
/** @brief Close; COMMON_ESTATE while streams use this socket. @p cb runs once the handle
 *  is closed, after which the socket memory is freed. */
int dht_udx_socket_close(dht_udx_socket_t *sock, dht_udx_socket_close_cb cb, void *ud);
/** @brief Test hook: drop @p loss_permille and delay-reorder @p reorder_permille of the
 *  packets in each direction (seeded, deterministic). 0, 0 turns it off. */
void dht_udx_socket_set_impair(dht_udx_socket_t *sock, unsigned loss_permille,
                               unsigned reorder_permille, uint64_t seed);

typedef struct dht_udx_socket_stats {
    uint64_t rx_datagrams, tx_datagrams, rx_other, impair_dropped, impair_reordered, tx_queued;
} dht_udx_socket_stats_t;
void dht_udx_socket_get_stats(const dht_udx_socket_t *sock, dht_udx_socket_stats_t *out);

/* ------------------------------------------------------------------ streams */

typedef struct dht_udx_stream_cbs {
    void (*on_data)(dht_udx_stream_t *s, const uint8_t *data, size_t len, void *ud);
    void (*on_end)(dht_udx_stream_t *s, void *ud); /* peer half-closed */
    void (*on_message)(dht_udx_stream_t *s, const uint8_t *data, size_t len, void *ud);
    void (*on_drain)(dht_udx_stream_t *s, void *ud); /* after a write returned 0 */
    /** First-packet mode only: return 0 to accept @p from as the remote, non-zero to
     *  ignore the packet. NULL accepts everything. */
    int (*on_firewall)(dht_udx_stream_t *s, dht_udx_socket_t *sock, const struct sockaddr_in *from,
                       void *ud);
    void (*on_remote_changed)(dht_udx_stream_t *s, void *ud);
    /** 0: graceful or local destroy; DHT_EDESTROYED: peer reset; COMMON_ETIMEDOUT. */
    void (*on_close)(dht_udx_stream_t *s, int status, void *ud);
} dht_udx_stream_cbs_t;

/** @brief New unconnected stream with @p local_id (0 = pick a random free id).
 *  @return NULL + COMMON_EEXIST if the id is taken. Callbacks copied; @p ud borrowed. */
dht_udx_stream_t *dht_udx_stream_new(dht_udx_t *udx, uint32_t local_id,
                                     const dht_udx_stream_cbs_t *cbs, void *ud, int *err);
/** @brief Connect to the peer's stream @p remote_id at @p addr via @p sock; @p addr (and
 *  @p sock) NULL = the first packet fixes them. No handshake is exchanged. */
int dht_udx_stream_connect(dht_udx_stream_t *s, dht_udx_socket_t *sock, uint32_t remote_id,
                           const struct sockaddr_in *addr);
/** @brief Before connect: first sequence number we send / expect (hyperdht sends 0 in the
 *  handshake's udx.seq; both default to 0). COMMON_ESTATE after connect. */
int dht_udx_stream_set_seq(dht_udx_stream_t *s, uint32_t seq);
int dht_udx_stream_set_ack(dht_udx_stream_t *s, uint32_t ack);
/** @brief Move a live stream to another socket / address / remote id (relay → direct);
 *  on_remote_changed fires when the packets sent to the old remote are acked. */
int dht_udx_stream_change_remote(dht_udx_stream_t *s, dht_udx_socket_t *sock, uint32_t remote_id,
                                 const struct sockaddr_in *addr);
/** @brief Queue bytes (copied). 1 = keep writing, 0 = wait for on_drain, <0 error. */
int dht_udx_stream_write(dht_udx_stream_t *s, const void *data, size_t len);
/** @brief Half close (END after queued data). */
int dht_udx_stream_end(dht_udx_stream_t *s);
/** @brief Unordered datagram (≤ DHT_UDX_MAX_PAYLOAD bytes; may be lost). */
int dht_udx_stream_send_message(dht_udx_stream_t *s, const void *data, size_t len);
/** @brief Reset the stream (DESTROY to the peer if connected); on_close(0) follows. */
void dht_udx_stream_destroy(dht_udx_stream_t *s);
void dht_udx_stream_read_stop(dht_udx_stream_t *s);
void dht_udx_stream_read_start(dht_udx_stream_t *s);
void dht_udx_stream_set_keepalive(dht_udx_stream_t *s, uint32_t ms);
uint32_t dht_udx_stream_id(const dht_udx_stream_t *s);
/** @brief The remote address; COMMON_ESTATE while unknown. */
int dht_udx_stream_remote(const dht_udx_stream_t *s, struct sockaddr_in *out);
void dht_udx_stream_get_stats(const dht_udx_stream_t *s, dht_udx_conn_stats_t *out);
void *dht_udx_stream_userdata(const dht_udx_stream_t *s);

#endif
