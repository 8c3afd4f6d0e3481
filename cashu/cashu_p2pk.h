/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_p2pk.h
 * @brief NUT-10 well-known secrets and NUT-11 Pay-to-Public-Key: build and parse P2PK
 *        secrets (tags locktime, pubkeys, n_sigs, refund, n_sigs_refund, sigflag), sign and
 *        verify witnesses (BIP340 over SHA256 of the exact secret string), SIG_ALL messages.
 *
 * Keys are 33-byte compressed; they are compared by x-coordinate (BIP340), and a duplicate
 * key makes a secret malformed. Verification follows the mint's rules so that a receiver can
 * predict what the mint will accept.
 */
#ifndef SWARMDVM_CASHU_P2PK_H
#define SWARMDVM_CASHU_P2PK_H

#include <stddef.h>
#include <stdint.h>

#include "cashu/cashu_token.h"
#include "common/common_codec.h"
#include "common/common_env.h"

#ifndef CASHU_P2PK_MAX_KEYS
#define CASHU_P2PK_MAX_KEYS 16
#endif

typedef struct cashu_p2pk {
    int is_p2pk;      /* kind "P2PK" (0 for other NUT-10 kinds such as "HTLC") */
    uint8_t data[33]; /* the primary key (valid only when is_p2pk) */
    int has_locktime;
    uint64_t locktime; /* unix seconds */
    size_t npubkeys;   /* extra keys of the "pubkeys" tag */
    uint8_t pubkeys[CASHU_P2PK_MAX_KEYS][33];
    uint64_t n_sigs; /* default 1 */
    size_t nrefund;
    uint8_t refund[CASHU_P2PK_MAX_KEYS][33];
    uint64_t n_sigs_refund; /* default 1 */
    int sig_all;            /* sigflag SIG_ALL */
} cashu_p2pk_t;

/**
 * @brief Parse a NUT-10 secret. @return 0 (a well-formed NUT-10 secret; check is_p2pk),
 * COMMON_ENOTFOUND (not a NUT-10 secret: a plain random secret, or JSON that is not
 * [kind, {...}]), CASHU_EBAD_TOKEN (malformed: starts with '[' but is not exactly one JSON
 * value, a duplicate object member (parsers disagree on which wins), bad key, duplicate key or
 * tag, bad number, unknown sigflag).
 */
int cashu_p2pk_parse(const char *secret, cashu_p2pk_t *out);

/**
 * @brief Build a P2PK secret locked to @p data with a fresh 32-byte nonce. @p locktime 0 means
 * none; @p refund may be NULL. The secret (JSON text) is appended to @p out, NUL kept after it.
 */
int cashu_p2pk_build(const common_env_t *env, const uint8_t data[33], uint64_t locktime,
                     const uint8_t *refund33, common_buf_t *out);

/** @brief Witness JSON {"signatures":[<sig hex>...]} for a SIG_INPUTS proof signed by @p sk. */
int cashu_p2pk_sign(const common_env_t *env, const char *secret, const uint8_t sk[32],
                    char **witness_out);

/** @brief Parse a witness: up to @p cap 64-byte signatures. @return count or CASHU_EBAD_TOKEN. */
int cashu_p2pk_witness_sigs(const char *witness, uint8_t (*sigs)[64], size_t cap);

/**
 * @brief Would the mint accept this SIG_INPUTS witness at time @p now_unix? Main path: at
 * least n_sigs valid signatures of distinct keys among data+pubkeys. After the locktime: the
 * refund path (n_sigs_refund of the refund keys), or anyone-can-spend when there are no refund
 * keys. Signed message: SHA256(secret) (or @p msg for SIG_ALL when non-NULL).
 * @return 0, COMMON_ECRYPTO (not enough valid signatures), CASHU_EBAD_TOKEN (malformed).
 */
int cashu_p2pk_verify(const char *secret, const char *witness, uint64_t now_unix);
int cashu_p2pk_verify_msg(const char *secret, const char *witness, uint64_t now_unix,
                          const void *msg, size_t msglen);

/**
 * @brief SIG_ALL message: secret_0‖C_0‖…‖secret_n‖C_n‖amount_0‖B_0‖…‖amount_m‖B_m[‖quote].
 * @p outs_amount/@p outs_B are the outputs; @p quote may be NULL (swap).
 */
int cashu_p2pk_sigall_msg(const cashu_proof_t *ins, size_t nin, const uint64_t *outs_amount,
                          const uint8_t (*outs_B)[33], size_t nout, const char *quote,
                          common_buf_t *out);

/**
 * @brief Check the SIG_ALL preconditions (every input has the same kind, data and tags as the
 * first) and verify the first input's witness over the SIG_ALL message.
 */
int cashu_p2pk_verify_sigall(const cashu_proof_t *ins, size_t nin, const uint64_t *outs_amount,
                             const uint8_t (*outs_B)[33], size_t nout, const char *quote,
                             uint64_t now_unix);

#endif
