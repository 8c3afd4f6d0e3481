/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_crypto.h
 * @brief Cashu cryptography on secp256k1 (NUT-00 BDHKE, NUT-12 DLEQ, BIP340 for NUT-11).
 *
 * Pure functions: bytes in, bytes out. Points are 33-byte SEC1 compressed; scalars are
 * 32-byte big-endian and must be in [1, n). Every function returns 0 or a negative code:
 * COMMON_EINVAL for a malformed point or scalar, COMMON_ECRYPTO for a failed check,
 * CASHU_EDLEQ for a DLEQ proof that does not verify.
 *
 * libsecp256k1 needs a context for signing and point multiplication by G. This module keeps
 * one process-wide context, created on first use under pthread_once and never modified
 * afterwards (thread-safe, immutable; not "mutable global state").
 *
 * Secrets (blinding factors r, mint keys, P2PK private keys) are the caller's: this module
 * wipes its own temporaries with sodium_memzero.
 */
#ifndef SWARMDVM_CASHU_CRYPTO_H
#define SWARMDVM_CASHU_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"

#define CASHU_POINT_LEN  33
#define CASHU_SCALAR_LEN 32

/** @brief Y = hash_to_curve(msg) (NUT-00). For real proofs msg is the UTF-8 secret string. */
int cashu_hash_to_curve(const void *msg, size_t len, uint8_t Y[33]);

/** @brief B_ = hash_to_curve(secret) + r·G. */
int cashu_blind(const void *secret, size_t len, const uint8_t r[32], uint8_t B_[33]);

/** @brief Mint side: C_ = k·B_ (for tests and the cross-check). */
int cashu_sign_blinded(const uint8_t k[32], const uint8_t B_[33], uint8_t C_[33]);

/** @brief C = C_ − r·K. */
int cashu_unblind(const uint8_t C_[33], const uint8_t r[32], const uint8_t K[33], uint8_t C[33]);

/** @brief Mint side check: k·hash_to_curve(secret) == C. @return 0 or COMMON_ECRYPTO. */
int cashu_verify_unblinded(const uint8_t k[32], const void *secret, size_t len,
                           const uint8_t C[33]);

/** @brief NUT-12 hash_e over n points (SHA256 of the hex of their uncompressed forms). */
int cashu_hash_e(const uint8_t (*points)[33], size_t n, uint8_t e[32]);

/**
 * @brief Mint side DLEQ with the deterministic NUT-12 nonce: proves log_G(A) == log_B_(C_)
 * where A = a·G. Writes e and s.
 */
int cashu_dleq_create(const uint8_t a[32], const uint8_t B_[33], const uint8_t C_[33],
                      uint8_t e[32], uint8_t s[32]);

/** @brief Verify a BlindSignature's DLEQ (e, s) for A, B_, C_. @return 0 or CASHU_EDLEQ. */
int cashu_dleq_verify(const uint8_t A[33], const uint8_t B_[33], const uint8_t C_[33],
                      const uint8_t e[32], const uint8_t s[32]);

/**
 * @brief Receiver side: verify a Proof's DLEQ (e, s, r) against the mint key A for its
 * amount: B_ = Y + r·G, C_ = C + r·A, then cashu_dleq_verify. @return 0 or CASHU_EDLEQ.
 */
int cashu_dleq_verify_proof(const uint8_t A[33], const void *secret, size_t len,
                            const uint8_t C[33], const uint8_t e[32], const uint8_t s[32],
                            const uint8_t r[32]);

/** @brief A uniformly random valid scalar from the env's RNG. */
void cashu_random_scalar(const common_env_t *env, uint8_t out[32]);

/** @brief 1 if @p sk is a valid scalar in [1, n). */
int cashu_scalar_valid(const uint8_t sk[32]);

/** @brief 1 if @p p parses as a compressed point. */
int cashu_point_valid(const uint8_t p[33]);

/** @brief P = sk·G, compressed. */
int cashu_pubkey(const uint8_t sk[32], uint8_t P[33]);

/** @brief BIP340 Schnorr signature of a 32-byte message with @p aux32 randomness. */
int cashu_schnorr_sign(const uint8_t sk[32], const uint8_t msg32[32], const uint8_t aux32[32],
                       uint8_t sig[64]);

/** @brief Verify a BIP340 signature against the x-coordinate of compressed key @p P.
 *  @return 0 or COMMON_ECRYPTO. */
int cashu_schnorr_verify(const uint8_t P[33], const uint8_t msg32[32], const uint8_t sig[64]);

#endif
