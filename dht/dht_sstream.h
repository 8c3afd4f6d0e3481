/* SPDX-License-Identifier: MIT */
/**
 * @file dht_sstream.h
 * @brief secret-stream, byte-compatible with @hyperswarm/secret-stream 6.9
 *        (hyperswarm-wire.md §8): u24-LE framing, the 56-byte header frame and
 *        crypto_secretstream_xchacha20poly1305 data frames (dht_ssx.h), optionally preceded by the
 *        standalone Noise XX handshake. A pure core: bytes and time in; bytes, events and
 *        the next deadline out. No I/O; dht_tcp.c is the libuv adapter.
 *
 * Two ways to start:
 *   - dht_sstream_new_xx(): standalone mode (e.g. over TCP). Runs Noise XX (empty prologue,
 *     empty payloads), each handshake message in a u24 frame; the initiator's first
 *     message is queued at once.
 *   - dht_sstream_new_keys(): keys already agreed by hyperdht's IK handshake (tx, rx,
 *     handshake hash, remote key); only the header frames are exchanged.
 *
 * Output: bytes to put on the wire, in order. Control bytes (handshake messages, the
 * header, keep-alives) are queued inside and taken with dht_sstream_output() /
 * dht_sstream_output_consume(); take them after every call to new/feed/tick. Data frames
 * are sealed straight into a caller buffer with dht_sstream_seal(). Frames must go out in
 * the order they were produced, so seal refuses (COMMON_EAGAIN) while control output is
 * still pending: take it first.
 *
 * Input: dht_sstream_feed() consumes bytes and stops after at most one event
 * (HANDSHAKE: remote key known, tx ready; OPEN: remote header accepted; DATA: one decrypted
 * message, borrowed until the next feed/free). Empty messages (keep-alives) are dropped
 * when keep-alive filtering is on (the default, as Hyperswarm). Any error is fatal and
 * sticky: nothing of the failing frame is delivered. Errors: COMMON_ECRYPTO (bad MAC),
 * DHT_ESTREAMID (header id for the wrong role / wrong hash), DHT_EFRAME (frame larger than
 * the limit, malformed header or data frame), DHT_EHANDSHAKE (Noise failure).
 *
 * Keep-alive: after `keepalive_ms` without a sealed frame the core queues an encrypted
 * empty frame (dht_sstream_tick()); dht_sstream_next_deadline() says when to call tick.
 * Time comes from the injected env clock.
 *
 * Ownership: the handle owns all keys and buffers and wipes them on free. @p env is
 * borrowed and must outlive the handle. Not thread-safe; callbacks: none.
 */
#ifndef SWARMDVM_DHT_SSTREAM_H
#define SWARMDVM_DHT_SSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"
#include "dht/dht_crypto.h"
#include "dht/dht_noise.h"
#include "dht/dht_ssx.h"

/** Default receive limit for one frame body (a JS peer may send up to 16 MiB - 1). */
#ifndef DHT_SSTREAM_MAX_FRAME
#define DHT_SSTREAM_MAX_FRAME (8u * 1024 * 1024)
#endif
/** Largest plaintext one data frame can carry (u24 length minus the 17-byte overhead). */
#define DHT_SSTREAM_MAX_MESSAGE    (0xffffffu - 17u)
#define DHT_SSTREAM_ABYTES         17u
#define DHT_SSTREAM_FRAME_OVERHEAD (3u + 17u)
#define DHT_SSTREAM_HEADER_BYTES   56u
#ifndef DHT_SSTREAM_KEEPALIVE_MS
#define DHT_SSTREAM_KEEPALIVE_MS 5000u
#endif

typedef struct dht_sstream dht_sstream_t;

typedef struct dht_sstream_opts {
    size_t max_frame;              /* 0 = DHT_SSTREAM_MAX_FRAME */
    uint32_t keepalive_ms;         /* 0 = DHT_SSTREAM_KEEPALIVE_MS; UINT32_MAX = never send */
    int keep_empty;                /* non-zero: deliver empty messages instead of dropping them */
    const uint8_t *ephemeral_seed; /* tests only: fixed Noise ephemeral (32 bytes), or NULL */
    dht_ssx_backend_t crypto;      /* primitives for the data frames; 0 = DHT_SSX_AUTO */
} dht_sstream_opts_t;

typedef enum dht_sstream_ev_type {
    DHT_SSTREAM_EV_NONE = 0,  /* all input consumed or more input needed */
    DHT_SSTREAM_EV_HANDSHAKE, /* keys ready: seal() may be used; remote_pk is set */
    DHT_SSTREAM_EV_OPEN,      /* the remote header was accepted */
    DHT_SSTREAM_EV_DATA       /* data/len: one message (borrowed) */
} dht_sstream_ev_type_t;

typedef struct dht_sstream_event {
    dht_sstream_ev_type_t type;
    const uint8_t *data;
    size_t len;
} dht_sstream_event_t;

/** @brief Standalone mode: Noise XX with @p kp (copied). The initiator's msg1 is queued. */
dht_sstream_t *dht_sstream_new_xx(int initiator, const dht_keypair_t *kp, const common_env_t *env,
                                  const dht_sstream_opts_t *opts, int *err);

/** @brief After hyperdht's handshake: keys from @p keys (copied); the header is queued. */
dht_sstream_t *dht_sstream_new_keys(int initiator, const dht_noise_result_t *keys,
                                    const common_env_t *env, const dht_sstream_opts_t *opts,
                                    int *err);

/**
 * @brief Consume up to @p len bytes; stops after one event. *consumed tells how much was
 * used (the rest must be fed again). @return 0 or a fatal error (see above).
 */
int dht_sstream_feed(dht_sstream_t *s, const uint8_t *in, size_t len, size_t *consumed,
                     dht_sstream_event_t *ev);

/**
 * @brief As dht_sstream_feed(), but the input buffer is writable: complete data frames are
 * decrypted in place (event data then points into @p in, valid until @p in is reused).
 * Saves one copy per frame for transports that own their read buffer.
 */
int dht_sstream_feed_inplace(dht_sstream_t *s, uint8_t *in, size_t len, size_t *consumed,
                             dht_sstream_event_t *ev);

/**
 * @brief For transports that keep unconsumed input in their own buffer: if the core is
 * between frames and @p in (@p len bytes) holds only the beginning of the next frame,
 * return that frame's total size on the wire (3-byte length + body; 3 while the length
 * itself is incomplete). The caller may then wait until it has that many bytes and feed
 * the whole frame at once (decrypted in place, no copy into the core's frame buffer).
 * Returns 0 when feeding now is right: a complete frame is there, the core is in the
 * middle of a frame, the length is over the limit (feed reports the error) or the stream
 * has failed. Never changes state.
 */
size_t dht_sstream_frame_need(const dht_sstream_t *s, const uint8_t *in, size_t len);

/** @brief Pending control output (handshake, header, keep-alive); *len 0 when none. */
void dht_sstream_output(const dht_sstream_t *s, const uint8_t **p, size_t *len);
/** @brief Mark @p n bytes of the control output as sent. */
void dht_sstream_output_consume(dht_sstream_t *s, size_t n);

/** @brief The frame size for a plaintext of @p plen bytes: 3 + plen + 17. */
static inline size_t dht_sstream_frame_size(size_t plen) {
    return plen + DHT_SSTREAM_FRAME_OVERHEAD;
}
/**
 * @brief Encrypt one message into @p frame (dht_sstream_frame_size(plen) bytes). @p plain
 * and @p frame must not overlap.
 * @return 0; COMMON_ESTATE (keys not ready or failed); COMMON_ETOOBIG (plen >
 *         DHT_SSTREAM_MAX_MESSAGE); COMMON_EAGAIN (take the control output first).
 */
int dht_sstream_seal(dht_sstream_t *s, const void *plain, size_t plen, uint8_t *frame);

/** @brief Queue a keep-alive if due. @return 1 if one was queued, else 0. */
int dht_sstream_tick(dht_sstream_t *s);
/** @brief Milliseconds until tick() has work (UINT64_MAX: nothing scheduled). */
uint64_t dht_sstream_next_deadline(const dht_sstream_t *s);

/** @brief Non-zero once the keys are ready (after EV_HANDSHAKE). */
int dht_sstream_ready(const dht_sstream_t *s);
/** @brief The remote static public key once the handshake is done, else NULL. */
const uint8_t *dht_sstream_remote_pk(const dht_sstream_t *s);
/** @brief The 64-byte handshake hash once the handshake is done, else NULL. */
const uint8_t *dht_sstream_handshake_hash(const dht_sstream_t *s);
/** @brief "openssl" or "sodium": the primitives of the data frames (NULL before keys). */
const char *dht_sstream_crypto_name(const dht_sstream_t *s);
/** @brief The sticky error (0 when healthy). */
int dht_sstream_error(const dht_sstream_t *s);

/** @brief Wipe and free (NULL is fine). */
void dht_sstream_free(dht_sstream_t *s);

/** @brief streamId(hash, initiator) = BLAKE2b-256(NS_INITIATOR or NS_RESPONDER, key = hash). */
void dht_sstream_id(const uint8_t hash[64], int initiator, uint8_t out[32]);

#endif
