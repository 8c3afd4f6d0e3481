/* SPDX-License-Identifier: MIT */
/**
 * @file dht_crypto.h
 * @brief Crypto building blocks of Hyperswarm (hyperswarm-wire.md §2, §7.1), on libsodium.
 *
 * - BLAKE2b-256 (plain, keyed, over several parts), the hash used for DHT targets, node
 *   ids, tokens and namespaces.
 * - Namespaces as hypercore-crypto's namespace(name, ids): ns = BLAKE2b-256(utf8(name)),
 *   NS_i = BLAKE2b-256(ns || byte(id_i)). Ready-made: "hyperswarm/dht" (ids = command
 *   numbers) and "hyperswarm/secret-stream" (0 initiator, 1 responder, 2 send).
 * - HMAC-BLAKE2b-512 with a 128-byte block and HKDF with 64-byte outputs, exactly as
 *   noise-handshake's hmac.js/hkdf.js (keys longer than 128 bytes are pre-hashed).
 * - Ed25519 key pairs (libsodium layout: sk = seed(32) || pk(32)) and the "Ed25519 DH" of
 *   noise-curve-ed: scalar = clamp(SHA-512(seed)[0..32]), out = scalar * remote point.
 *
 * All functions are pure and reentrant; no globals. Secret intermediates are wiped with
 * sodium_memzero. The caller must have called sodium_init(). This header is stable:
 * changes are additive only.
 */
#ifndef SWARMDVM_DHT_CRYPTO_H
#define SWARMDVM_DHT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define DHT_HASH_BYTES    32 /* BLAKE2b-256 */
#define DHT_NOISE_HASHLEN 64 /* BLAKE2b-512, Noise HASHLEN */
#define DHT_PK_BYTES      32
#define DHT_SK_BYTES      64
#define DHT_SIG_BYTES     64

/** One part of a message hashed in pieces (like crypto_generichash_batch). */
typedef struct dht_crypto_part {
    const void *p;
    size_t n;
} dht_crypto_part_t;

/** An Ed25519 key pair in libsodium's layout. Wipe with dht_crypto_keypair_wipe(). */
typedef struct dht_keypair {
    uint8_t pk[DHT_PK_BYTES];
    uint8_t sk[DHT_SK_BYTES]; /* seed(32) || pk(32) */
} dht_keypair_t;

/** hyperswarm/dht namespace ids (= command numbers). */
enum {
    DHT_NS_PEER_HANDSHAKE = 0,
    DHT_NS_PEER_HOLEPUNCH = 1,
    DHT_NS_ANNOUNCE = 4,
    DHT_NS_UNANNOUNCE = 5,
    DHT_NS_MUTABLE_PUT = 6,
    DHT_NS_PLUGIN = 10
};
/** hyperswarm/secret-stream namespace ids. */
enum { DHT_NS_SS_INITIATOR = 0, DHT_NS_SS_RESPONDER = 1, DHT_NS_SS_SEND = 2 };

/** @brief out = BLAKE2b-256(m). */
void dht_crypto_hash(uint8_t out[32], const void *m, size_t n);
/** @brief out = BLAKE2b-256(m, key) (key 16..64 bytes, or NULL/0 for unkeyed). */
void dht_crypto_hash_keyed(uint8_t out[32], const void *m, size_t n, const void *key,
                           size_t keylen);
/** @brief BLAKE2b of the concatenation of @p parts, @p outlen bytes (16..64), optional key. */
void dht_crypto_hash_parts(uint8_t *out, size_t outlen, const dht_crypto_part_t *parts,
                           size_t nparts, const void *key, size_t keylen);

/** @brief NS = BLAKE2b-256(BLAKE2b-256(name) || id). */
void dht_crypto_namespace(const char *name, uint8_t id, uint8_t out[32]);
/** @brief A "hyperswarm/dht" namespace (DHT_NS_*). */
void dht_crypto_ns_dht(uint8_t id, uint8_t out[32]);
/** @brief A "hyperswarm/secret-stream" namespace (DHT_NS_SS_*). */
void dht_crypto_ns_secretstream(uint8_t id, uint8_t out[32]);

/** @brief HMAC-BLAKE2b-512 (128-byte block) of the concatenated @p parts. */
void dht_crypto_hmac(uint8_t out[64], const void *key, size_t keylen,
                     const dht_crypto_part_t *parts, size_t nparts);
/**
 * @brief noise-handshake's HKDF(salt = ck, ikm) with empty info: PRK = HMAC(ck, ikm),
 * T1 = HMAC(PRK, 0x01), T2 = HMAC(PRK, T1 || 0x02), T3 = HMAC(PRK, T2 || 0x03).
 * @p out3 may be NULL (two outputs). Outputs may not alias @p ck or @p ikm.
 */
void dht_crypto_hkdf(const uint8_t ck[64], const void *ikm, size_t ikmlen, uint8_t out1[64],
                     uint8_t out2[64], uint8_t out3[64]);

/** @brief A key pair from a 32-byte seed (crypto_sign_seed_keypair). */
void dht_crypto_keypair_seed(dht_keypair_t *kp, const uint8_t seed[32]);
/** @brief A fresh random key pair (crypto_sign_keypair). */
void dht_crypto_keypair_random(dht_keypair_t *kp);
void dht_crypto_keypair_wipe(dht_keypair_t *kp);

/**
 * @brief noise-curve-ed DH: out = clamp(SHA-512(sk[0..32])[0..32]) * remote_pk.
 * @return 0, or COMMON_ECRYPTO if remote_pk is not a valid point or the result is the
 * identity (the JS side throws in the same cases).
 */
int dht_crypto_ed25519_dh(uint8_t out[32], const uint8_t sk[64], const uint8_t remote_pk[32]);

/** @brief A peer's DHT target: BLAKE2b-256(publicKey). */
void dht_crypto_target(const uint8_t pk[32], uint8_t out[32]);

/** @brief Detached Ed25519 signature / verification (0 or COMMON_ECRYPTO). */
void dht_crypto_sign(uint8_t sig[64], const void *m, size_t n, const uint8_t sk[64]);
int dht_crypto_verify(const uint8_t sig[64], const void *m, size_t n, const uint8_t pk[32]);

#endif
