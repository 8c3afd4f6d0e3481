/* SPDX-License-Identifier: MIT */
/**
 * @file dht_noise.h
 * @brief Noise IK and XX over "Ed25519" with ChaChaPoly and BLAKE2b, byte-compatible with
 *        noise-handshake 4.2 + noise-curve-ed (hyperswarm-wire.md §7, §8 standalone mode).
 *
 * A pure state machine: bytes in, bytes out, no I/O, no clock. Patterns:
 *   - DHT_NOISE_IK: `Noise_IK_Ed25519_ChaChaPoly_BLAKE2b`, as hyperdht's PEER_HANDSHAKE
 *     (prologue NS_PEER_HANDSHAKE, see dht_noise_prologue_hyperdht()). The initiator must
 *     know the responder's static public key. msg1: e, es, s, ss + payload;
 *     msg2: e, ee, se + payload.
 *   - DHT_NOISE_XX: `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b`, as @hyperswarm/secret-stream's
 *     standalone mode (empty prologue, empty payloads; messages 32 / 96 / 64 bytes).
 *
 * Usage: dht_noise_new(), then alternately dht_noise_send() / dht_noise_recv() (the
 * initiator sends first; dht_noise_wants_send() says whose turn it is) until
 * dht_noise_complete(); then dht_noise_result() gives tx/rx keys (32 bytes each; the
 * initiator's tx is the responder's rx), the 64-byte handshake hash and the remote static
 * key. Any failure (bad MAC, short message, invalid point, wrong turn) puts the state in a
 * failed state: all later calls return DHT_EHANDSHAKE.
 *
 * Ownership: the handle owns copies of every key it is given; dht_noise_free() wipes all
 * secrets (sodium_memzero). Results copied out with dht_noise_result() belong to the
 * caller, who should wipe them when done. Ephemeral keys are drawn from @p env's RNG
 * (libsodium's when env is NULL) unless fixed with dht_noise_set_ephemeral() (tests).
 *
 * Maximum message size: DHT_NOISE_MAX_MSG (65535, as Noise and noise-handshake).
 */
#ifndef SWARMDVM_DHT_NOISE_H
#define SWARMDVM_DHT_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"
#include "dht/dht_crypto.h"

#define DHT_NOISE_MAX_MSG 65535
/** Bytes a message adds around its payload, per pattern and message index. */
#define DHT_NOISE_IK_MSG1_OVERHEAD (32 + 48 + 16)
#define DHT_NOISE_IK_MSG2_OVERHEAD (32 + 16)

typedef enum dht_noise_pattern { DHT_NOISE_IK = 1, DHT_NOISE_XX = 2 } dht_noise_pattern_t;

typedef struct dht_noise dht_noise_t;

typedef struct dht_noise_result {
    uint8_t tx[32];
    uint8_t rx[32];
    uint8_t hash[64];      /* final handshake hash h */
    uint8_t remote_pk[32]; /* the remote static Ed25519 public key */
} dht_noise_result_t;

/**
 * @brief Start a handshake.
 * @param pattern DHT_NOISE_IK or DHT_NOISE_XX.
 * @param initiator non-zero for the side that sends first.
 * @param static_kp our static key pair (copied).
 * @param prologue bytes mixed into h first (copied; may be NULL when plen is 0).
 * @param remote_pk IK initiator: the responder's static key (required, copied); else NULL.
 * @param env RNG for ephemeral keys (borrowed, may be NULL = libsodium).
 * @param err optional error out (COMMON_EINVAL, COMMON_ENOMEM).
 */
dht_noise_t *dht_noise_new(dht_noise_pattern_t pattern, int initiator,
                           const dht_keypair_t *static_kp, const void *prologue, size_t plen,
                           const uint8_t *remote_pk, const common_env_t *env, int *err);

/** @brief Fix the ephemeral key pair (from a 32-byte seed) before it is first sent. */
int dht_noise_set_ephemeral(dht_noise_t *n, const uint8_t seed[32]);

/** @brief Non-zero when the next step is a send from this side. */
int dht_noise_wants_send(const dht_noise_t *n);
/** @brief Non-zero once the last message has been sent or received successfully. */
int dht_noise_complete(const dht_noise_t *n);

/**
 * @brief Write the next handshake message carrying @p payload into @p out.
 * @return 0; COMMON_ESTATE (not our turn / complete); COMMON_ETOOBIG (out too small or
 *         message > 65535); DHT_EHANDSHAKE (failed earlier or DH failed).
 */
int dht_noise_send(dht_noise_t *n, const void *payload, size_t plen, uint8_t *out, size_t cap,
                   size_t *outlen);

/**
 * @brief Consume the peer's next handshake message; its payload is written to @p payload
 * (@p cap bytes; may be NULL when cap is 0 and no payload is expected).
 * @return 0; COMMON_ESTATE; COMMON_ETOOBIG (payload does not fit; the handshake fails);
 *         DHT_EHANDSHAKE (short message, bad MAC, invalid key).
 */
int dht_noise_recv(dht_noise_t *n, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap,
                   size_t *plen);

/** @brief The remote static key once known (IK responder after msg1), else NULL. */
const uint8_t *dht_noise_remote_static(const dht_noise_t *n);

/** @brief Copy the split keys and hash out (COMMON_ESTATE until complete). */
int dht_noise_result(const dht_noise_t *n, dht_noise_result_t *out);

/** @brief Wipe and free (NULL is fine). */
void dht_noise_free(dht_noise_t *n);

/** @brief hyperdht's prologue for IK: NS_PEER_HANDSHAKE (32 bytes). */
void dht_noise_prologue_hyperdht(uint8_t out[32]);

#endif
