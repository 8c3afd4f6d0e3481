/* SPDX-License-Identifier: MIT */
/**
 * @file dht_tcp.h
 * @brief Encrypted connections over TCP: standalone secret-stream (Noise XX) on libuv,
 *        wire-compatible with `new NoiseSecretStream(isInitiator, tcpSocket)` from
 *        @hyperswarm/secret-stream. This is the `--peer host:port` transport.
 *
 * Lifecycle of a connection (dht_tcp_conn_t, opaque, owned by this module):
 *   1. dht_tcp_connect() (initiator) or an accepted socket of dht_tcp_listen() (responder;
 *      the accept callback must install callbacks with dht_tcp_conn_set_callbacks()).
 *   2. on_connect(remote_pk): the handshake is done; the 32-byte remote Ed25519 public key
 *      stays valid until on_close. dht_tcp_write() is allowed from here on.
 *   3. on_data(data, len): one decrypted message, borrowed for the duration of the call.
 *      Messages are chunks of a byte stream: NDJSON receivers must reassemble lines.
 *   4. on_end: the peer finished writing (EOF). Call dht_tcp_end() when you are done too.
 *   5. on_close(status): exactly once, always asynchronously (never from inside a dht_tcp_*
 *      call). status 0: clean (both sides ended, or dht_tcp_close() was called); otherwise
 *      the first error: COMMON_ECRYPTO (bad MAC), DHT_ESTREAMID, DHT_EFRAME, DHT_EHANDSHAKE,
 *      COMMON_ETIMEDOUT (handshake too slow), COMMON_ECONNREFUSED, COMMON_ECONNRESET, ...
 *      The handle is freed (and every secret wiped) right after on_close returns.
 *
 * Backpressure: dht_tcp_write() always takes the data (it is encrypted into a buffer owned
 * by the connection; the caller's buffer is not kept) and returns 1 while the queue of
 * unsent bytes is below `high_water`, 0 once it is above: stop writing and wait for
 * on_drain (called once the queue falls to half of high_water). Messages written during one
 * loop turn are gathered and given to the kernel together (one writev, at most
 * DHT_TCP_CORK_FRAMES messages or half of high_water per batch) before the loop next polls
 * for I/O: no added latency, far fewer syscalls and wake-ups. Reading can be paused with
 * dht_tcp_pause() / dht_tcp_resume() (no on_data while paused; TCP flow control pushes back
 * on the sender).
 *
 * Keep-alive: an encrypted empty message after `keepalive_ms` (default 5 s) without writes;
 * received empty messages are dropped (as Hyperswarm does). Writes of more than
 * DHT_TCP_WRITE_CHUNK bytes are split into several messages.
 *
 * Addresses: numeric IPv4 or IPv6, or "localhost". Tests bind 127.0.0.1 only.
 * All callbacks run on the loop thread. Callbacks may call any dht_tcp_* function on
 * their own connection, including dht_tcp_close().
 */
#ifndef SWARMDVM_DHT_TCP_H
#define SWARMDVM_DHT_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/common_env.h"
#include "dht/dht_crypto.h"
#include "dht/dht_ssx.h"

#ifndef DHT_TCP_HIGH_WATER
#define DHT_TCP_HIGH_WATER (1024u * 1024)
#endif
#ifndef DHT_TCP_WRITE_CHUNK
#define DHT_TCP_WRITE_CHUNK (4u * 1024 * 1024)
#endif
#ifndef DHT_TCP_HANDSHAKE_TIMEOUT_MS
#define DHT_TCP_HANDSHAKE_TIMEOUT_MS 10000u
#endif

typedef struct dht_tcp_conn dht_tcp_conn_t;
typedef struct dht_tcp_server dht_tcp_server_t;

typedef struct dht_tcp_callbacks {
    void (*on_connect)(dht_tcp_conn_t *c, const uint8_t *remote_pk, void *ud);
    void (*on_data)(dht_tcp_conn_t *c, const uint8_t *data, size_t len, void *ud);
    void (*on_drain)(dht_tcp_conn_t *c, void *ud);
    void (*on_end)(dht_tcp_conn_t *c, void *ud);
    void (*on_close)(dht_tcp_conn_t *c, int status, void *ud);
} dht_tcp_callbacks_t;

typedef struct dht_tcp_opts {
    size_t high_water;             /* 0 = DHT_TCP_HIGH_WATER */
    size_t max_frame;              /* 0 = DHT_SSTREAM_MAX_FRAME */
    uint32_t keepalive_ms;         /* 0 = 5000; UINT32_MAX = off */
    uint32_t handshake_timeout_ms; /* 0 = DHT_TCP_HANDSHAKE_TIMEOUT_MS */
    dht_ssx_backend_t crypto;      /* data-frame primitives; 0 = DHT_SSX_AUTO (dht_ssx.h) */
} dht_tcp_opts_t;

/**
 * @brief Connect to host:port and run the handshake as initiator.
 * @param loop, env borrowed; must outlive the connection. @p kp is copied. @p opts may be
 *        NULL. @p cbs is copied; @p ud is passed to every callback.
 * @return the connection (events follow on the loop), or NULL with *err set
 *         (COMMON_EINVAL bad address, COMMON_ENOMEM). Connection failures arrive as
 *         on_close(status).
 */
dht_tcp_conn_t *dht_tcp_connect(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                                const char *host, uint16_t port, const dht_tcp_opts_t *opts,
                                const dht_tcp_callbacks_t *cbs, void *ud, int *err);

/** Called for every accepted connection, before any I/O: install callbacks there. */
typedef void (*dht_tcp_accept_cb)(dht_tcp_server_t *srv, dht_tcp_conn_t *c, void *ud);

/**
 * @brief Listen on host:port (port 0 = ephemeral; see dht_tcp_server_port()). Accepted
 * connections run the handshake as responder with @p kp (copied) and belong to this module
 * until their on_close, independently of the server.
 */
dht_tcp_server_t *dht_tcp_listen(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                                 const char *host, uint16_t port, const dht_tcp_opts_t *opts,
                                 dht_tcp_accept_cb on_accept, void *ud, int *err);
/** @brief The bound port. */
uint16_t dht_tcp_server_port(const dht_tcp_server_t *srv);
/** @brief Stop listening and free the server asynchronously (connections stay open). */
void dht_tcp_server_close(dht_tcp_server_t *srv);

/** @brief Set (or replace) a connection's callbacks and user data. */
void dht_tcp_conn_set_callbacks(dht_tcp_conn_t *c, const dht_tcp_callbacks_t *cbs, void *ud);

/**
 * @brief Send @p len bytes (copied/encrypted now; len 0 sends nothing). @return 1 (keep
 * writing), 0 (queue above high water: wait for on_drain), COMMON_ESTATE (before
 * on_connect, after end/close), or a fatal error (the connection is then closing).
 */
int dht_tcp_write(dht_tcp_conn_t *c, const void *data, size_t len);
/** @brief Bytes queued in the kernel-bound write queue, not yet written. */
size_t dht_tcp_queued(const dht_tcp_conn_t *c);
/** @brief Half-close after everything queued is written. @return 0 or COMMON_ESTATE. */
int dht_tcp_end(dht_tcp_conn_t *c);
/** @brief Close now (queued data may be lost); on_close(0) follows asynchronously. */
void dht_tcp_close(dht_tcp_conn_t *c);
/** @brief Stop / restart on_data delivery (read backpressure). */
void dht_tcp_pause(dht_tcp_conn_t *c);
void dht_tcp_resume(dht_tcp_conn_t *c);
/** @brief The remote public key after on_connect, else NULL. */
const uint8_t *dht_tcp_remote_pk(const dht_tcp_conn_t *c);
/** @brief The 64-byte handshake hash after on_connect, else NULL. */
const uint8_t *dht_tcp_handshake_hash(const dht_tcp_conn_t *c);
/** @brief "openssl" or "sodium" (dht_ssx.h) after on_connect, else NULL. */
const char *dht_tcp_crypto_name(const dht_tcp_conn_t *c);

#endif
