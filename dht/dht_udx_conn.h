/* SPDX-License-Identifier: MIT */
/**
 * @file dht_udx_conn.h
 * @brief The UDX stream state machine: a pure core with no I/O and no clock of its own.
 *
 * Inputs: decoded packets (dht_udx_conn_input), application calls (write, end, message,
 * destroy, read_stop/start) and the time, in milliseconds, passed to every call.
 * Outputs: datagrams handed to an emit function during dht_udx_conn_poll, events through
 * the callbacks below, and the next deadline (dht_udx_conn_poll's return value) at which
 * poll must be called again even if nothing else happens.
 *
 * The usual driver loop (the libuv adapter in dht_udx_uv.c does exactly this):
 *   on datagram:   dht_udx_conn_input(c, &pkt, now); then poll
 *   on app call:   dht_udx_conn_write(c, ...); then poll
 *   on deadline:   poll
 *   poll:          deadline = dht_udx_conn_poll(c, now, emit, ud); re-arm a timer
 *
 * Reliability: packets are numbered (seq), acked cumulatively (ack) plus SACK ranges;
 * RACK-style loss detection (a packet is lost once a packet sent after it was delivered
 * and the reordering window passed), tail-loss probes, RTO = max(srtt + 4·rttvar, 1 s)
 * with exponential backoff, failure after DHT_UDX_MAX_RTO_TIMEOUTS consecutive RTOs.
 * Congestion control: NewReno-style AIMD in packets (see dht/README-udx.md).
 * Flow control: bytes in flight never exceed the peer's advertised window (a single
 * zero-window probe packet per RTO when the window is closed).
 *
 * Callbacks run synchronously from input/poll/API calls. They may call any
 * dht_udx_conn_* function on the same conn except dht_udx_conn_free. on_close is the last
 * callback; after it every call returns COMMON_ESTATE (or does nothing) and the owner
 * frees the conn with dht_udx_conn_free when its own bookkeeping allows. After a graceful
 * close the conn "lingers": keep feeding it packets and polling it for a few seconds
 * (DHT_UDX_LINGER_MS) so that a peer that missed our last ack gets it again.
 */
#ifndef SWARMDVM_DHT_UDX_CONN_H
#define SWARMDVM_DHT_UDX_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_udx_packet.h"

/** IP path MTU we assume (no MTU probing yet) and the data bytes per packet (MTU − 48). */
#define DHT_UDX_MTU         1200
#define DHT_UDX_MAX_PAYLOAD (DHT_UDX_MTU - 48)

/** Receive window we advertise when nothing is buffered (the reference uses 4 MiB). */
#ifndef DHT_UDX_RWND_MAX
#define DHT_UDX_RWND_MAX (4u * 1024u * 1024u)
#endif
/** Packets we can track in flight / buffer out of order (powers of two). */
#ifndef DHT_UDX_SEND_RING
#define DHT_UDX_SEND_RING 8192u
#endif
#ifndef DHT_UDX_RECV_RING
#define DHT_UDX_RECV_RING 8192u
#endif
/** write() reports "wait for drain" above this many queued bytes (plus the window). */
#ifndef DHT_UDX_HIGH_WATERMARK
#define DHT_UDX_HIGH_WATERMARK (256u * 1024u)
#endif
/** Hard cap on queued (unacked) bytes per stream; write() beyond it is COMMON_EAGAIN. */
#ifndef DHT_UDX_MAX_QUEUED
#define DHT_UDX_MAX_QUEUED (64u * 1024u * 1024u)
#endif
/** Queued unordered MESSAGEs per stream. */
#ifndef DHT_UDX_MAX_MESSAGES
#define DHT_UDX_MAX_MESSAGES 256u
#endif
#define DHT_UDX_MAX_RTO_TIMEOUTS 6
#ifndef DHT_UDX_LINGER_MS
#define DHT_UDX_LINGER_MS 5000u
#endif
#define DHT_UDX_RTO_MIN_MS 1000u
#define DHT_UDX_RTO_MAX_MS 30000u

typedef struct dht_udx_conn dht_udx_conn_t;

typedef struct dht_udx_conn_cbs {
    /** In-order stream bytes (borrowed for the call). */
    void (*on_data)(void *ud, const uint8_t *data, size_t len);
    /** The peer's END was reached in order (half close; we may still write). */
    void (*on_end)(void *ud);
    /** An unordered MESSAGE datagram (borrowed). */
    void (*on_message)(void *ud, const uint8_t *data, size_t len);
    /** Queued bytes fell below the watermark after a write returned 0. */
    void (*on_drain)(void *ud);
    /** Every packet sent before dht_udx_conn_change_remote was acked. */
    void (*on_remote_changed)(void *ud);
    /** Terminal: 0 (both sides ended and everything acked, or local destroy),
     *  DHT_EDESTROYED (peer sent DESTROY), COMMON_ETIMEDOUT (too many RTOs). */
    void (*on_close)(void *ud, int status);
} dht_udx_conn_cbs_t;

/** Emit one datagram = header bytes followed by body bytes (both borrowed for the call).
 *  Return 0 when sent (or deliberately dropped), COMMON_EAGAIN to stop this poll; the
 *  driver must poll again once the socket can send. */
typedef int (*dht_udx_emit_fn)(void *ud, const uint8_t *hdr, size_t hdr_len, const uint8_t *body,
                               size_t body_len);

typedef struct dht_udx_conn_stats {
    uint64_t packets_tx, packets_rx, bytes_tx, bytes_rx;
    uint64_t retransmits, fast_recoveries, rto_events, tlp_probes;
    uint32_t cwnd, ssthresh, srtt_ms, rto_ms, inflight_packets, send_rwnd;
    uint64_t queued_bytes;
} dht_udx_conn_stats_t;

/** @brief New conn with our @p local_id; callbacks copied, @p ud borrowed. NULL + *err. */
dht_udx_conn_t *dht_udx_conn_new(uint32_t local_id, const dht_udx_conn_cbs_t *cbs, void *ud,
                                 int *err);
/** @brief Free everything (pending data discarded, no callbacks). NULL is fine. */
void dht_udx_conn_free(dht_udx_conn_t *c);

/** @brief Start talking to the peer's stream @p remote_id. COMMON_ESTATE if done twice. */
int dht_udx_conn_connect(dht_udx_conn_t *c, uint32_t remote_id, uint64_t now);
/** @brief Before connect: our first sequence number (default 0) / the first one we expect
 *  from the peer (default 0), as udx_stream_set_seq / set_ack in the reference. */
int dht_udx_conn_set_seq(dht_udx_conn_t *c, uint32_t seq);
int dht_udx_conn_set_ack(dht_udx_conn_t *c, uint32_t ack);
/** @brief Switch to another remote id (the adapter switches the address); on_remote_changed
 *  fires once everything sent so far is acked (at once if nothing is in flight). */
int dht_udx_conn_change_remote(dht_udx_conn_t *c, uint32_t remote_id, uint64_t now);

/** @brief Feed a decoded packet whose h.id is our local id. */
void dht_udx_conn_input(dht_udx_conn_t *c, const dht_udx_packet_t *pkt, uint64_t now);

/** @brief Queue bytes (copied). @return 1 below the watermark, 0 "wait for on_drain",
 *  COMMON_ESTATE after end/destroy/close, COMMON_EAGAIN over DHT_UDX_MAX_QUEUED. */
int dht_udx_conn_write(dht_udx_conn_t *c, const void *data, size_t len);
/** @brief Half close: queue END after the data. COMMON_ESTATE if already ended/closed. */
int dht_udx_conn_end(dht_udx_conn_t *c);
/** @brief Queue an unordered MESSAGE (≤ DHT_UDX_MAX_PAYLOAD bytes, copied, not retried). */
int dht_udx_conn_send_message(dht_udx_conn_t *c, const void *data, size_t len);
/** @brief Reset: send DESTROY at the next poll (if connected) and close with status 0. */
void dht_udx_conn_destroy(dht_udx_conn_t *c);
/** @brief Stop / resume delivering data; while stopped data is buffered and the advertised
 *  window shrinks, so the peer stops at DHT_UDX_RWND_MAX buffered bytes. */
void dht_udx_conn_read_stop(dht_udx_conn_t *c);
void dht_udx_conn_read_start(dht_udx_conn_t *c);
/** @brief Send a HEARTBEAT after @p ms without sending anything (0 = off). */
void dht_udx_conn_set_keepalive(dht_udx_conn_t *c, uint32_t ms);

/** @brief Run due timers and emit what is due. @return the next deadline (absolute ms),
 *  UINT64_MAX when nothing is scheduled. */
uint64_t dht_udx_conn_poll(dht_udx_conn_t *c, uint64_t now, dht_udx_emit_fn emit, void *ud);

int dht_udx_conn_is_closed(const dht_udx_conn_t *c);
/** @brief 1 after a graceful close: input/poll still answer the peer's retransmissions of
 *  data/END with acks (our final ack may have been lost), nothing else. */
int dht_udx_conn_is_lingering(const dht_udx_conn_t *c);
int dht_udx_conn_is_connected(const dht_udx_conn_t *c);
uint32_t dht_udx_conn_local_id(const dht_udx_conn_t *c);
uint32_t dht_udx_conn_remote_id(const dht_udx_conn_t *c);
void dht_udx_conn_get_stats(const dht_udx_conn_t *c, dht_udx_conn_stats_t *out);

#endif
