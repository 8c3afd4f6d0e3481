/* SPDX-License-Identifier: MIT */
/**
 * @file dht_ssx.h
 * @brief One direction of crypto_secretstream_xchacha20poly1305, byte-compatible with
 *        libsodium's (which @hyperswarm/secret-stream uses through sodium-native), with a
 *        choice of primitive backend for the bulk work.
 *
 * Why this exists: secret-stream spends almost all of its CPU in ChaCha20 and Poly1305.
 * libsodium 1.0.18 has AVX2 ChaCha20 and SSE2 Poly1305; OpenSSL 3's libcrypto has AVX-512
 * versions of both that run two to three times faster on machines that have them (measured
 * here: libsodium push 1.7 GB/s on 64 KiB messages, the same construction on libcrypto's
 * primitives 4 GB/s). The construction is libsodium's, not RFC 8439's (its MAC pads the
 * ciphertext with mlen mod 16 zero bytes and covers a 64-byte tag block), so it is written
 * here once on two tiny primitive interfaces:
 *   - DHT_SSX_OPENSSL: ChaCha20 and Poly1305 from libcrypto (EVP "ChaCha20", EVP_MAC
 *     "POLY1305"); chosen by DHT_SSX_AUTO when built with libcrypto and its provider loads;
 *   - DHT_SSX_SODIUM: libsodium's crypto_stream_chacha20_ietf_xor_ic and
 *     crypto_onetimeauth_poly1305.
 * Key setup (HChaCha20 of the header) and rekeying always use libsodium. The unit test
 * checks both backends byte for byte against libsodium's own crypto_secretstream in both
 * directions, for every tag and across rekeys.
 *
 * State per direction: the 32-byte subkey and the 12-byte nonce (4-byte LE counter, then
 * the 8-byte "inonce"), exactly libsodium's. After every message the inonce is XORed with
 * the MAC's first 8 bytes and the counter is incremented; TAG_REKEY or a counter wrap
 * rekeys.
 *
 * Ownership: a dht_ssx_t owns its key and (OpenSSL backend) two libcrypto contexts;
 * dht_ssx_wipe() frees and zeroes them. Not thread-safe: one state, one thread at a time.
 */
#ifndef SWARMDVM_DHT_SSX_H
#define SWARMDVM_DHT_SSX_H

#include <stddef.h>
#include <stdint.h>

#define DHT_SSX_KEYBYTES    32u
#define DHT_SSX_HEADERBYTES 24u
#define DHT_SSX_ABYTES      17u /* 1 encrypted tag byte + 16-byte MAC */
#define DHT_SSX_TAG_MESSAGE 0u
#define DHT_SSX_TAG_PUSH    1u
#define DHT_SSX_TAG_REKEY   2u
#define DHT_SSX_TAG_FINAL   3u

typedef enum dht_ssx_backend {
    DHT_SSX_AUTO = 0, /* libcrypto when available, else libsodium */
    DHT_SSX_SODIUM,   /* libsodium primitives only */
    DHT_SSX_OPENSSL   /* libcrypto primitives; dht_ssx_init fails if unavailable */
} dht_ssx_backend_t;

struct dht_ssx_ossl; /* libcrypto contexts (dht_ssx.c) */

typedef struct dht_ssx {
    uint8_t k[32];
    uint8_t nonce[12];         /* counter (u32 LE) || inonce (8 bytes) */
    struct dht_ssx_ossl *ossl; /* owned; NULL: libsodium primitives */
} dht_ssx_t;

/**
 * @brief Start one direction from the shared @p key and the sender's 24-byte @p header
 * (for a sending side, the caller fills @p header with random bytes and sends it).
 * @return 0; COMMON_ENOMEM; COMMON_EUNSUPPORTED (DHT_SSX_OPENSSL asked, not available).
 * On error @p st is wiped and needs no dht_ssx_wipe().
 */
int dht_ssx_init(dht_ssx_t *st, const uint8_t key[DHT_SSX_KEYBYTES],
                 const uint8_t header[DHT_SSX_HEADERBYTES], dht_ssx_backend_t backend);

/**
 * @brief Encrypt @p mlen bytes of @p m with @p tag into @p out (mlen + DHT_SSX_ABYTES
 * bytes). @p m and @p out must not overlap.
 * @return 0, or COMMON_ECRYPTO if libcrypto failed (the state is then unusable: wipe it).
 */
int dht_ssx_push(dht_ssx_t *st, uint8_t *out, const uint8_t *m, size_t mlen, uint8_t tag);

/**
 * @brief Verify and decrypt @p inlen bytes (>= DHT_SSX_ABYTES) of @p in into @p m
 * (inlen - DHT_SSX_ABYTES bytes; @p m may be exactly @p in + 1 to decrypt in place).
 * The MAC is checked before anything is decrypted; on failure nothing is written to @p m
 * and the state does not advance.
 * @return 0 (*tag set) or -1 (forged, truncated or out of order).
 */
int dht_ssx_pull(dht_ssx_t *st, uint8_t *m, uint8_t *tag, const uint8_t *in, size_t inlen);

/** @brief "openssl" or "sodium": the primitives this state uses. */
const char *dht_ssx_backend_name(const dht_ssx_t *st);

/** @brief Free the libcrypto contexts and zero the state (idempotent on a zeroed state). */
void dht_ssx_wipe(dht_ssx_t *st);

#endif
