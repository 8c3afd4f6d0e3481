/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_token.h
 * @brief Proofs and tokens: cashuA (v3, JSON) and cashuB (v4, CBOR) decode/encode, the raw
 *        binary form "crawB", DLEQ fields, and short keyset id resolution.
 *
 * Decoding is strict and bounded (CASHU_TOKEN_MAX_* below) and never trusts the token: it
 * yields proofs whose keyset id may still be SHORT (16 hex). Call cashu_token_resolve_ids with
 * the mint's keysets (fetched and id-checked) before using the proofs: that step is explicit
 * on purpose, so no caller forgets it. Secrets are kept exactly as received (escapes resolved),
 * because P2PK signatures and hash_to_curve are over that exact string.
 *
 * Ownership: a decoded token owns its strings; free with cashu_token_free. Encoders append to
 * a caller-owned common_buf_t (NUL kept after the text).
 */
#ifndef SWARMDVM_CASHU_TOKEN_H
#define SWARMDVM_CASHU_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "cashu/cashu_keyset.h"
#include "common/common_codec.h"

#ifndef CASHU_TOKEN_MAX_LEN
#define CASHU_TOKEN_MAX_LEN (512 * 1024) /* characters of the serialized token */
#endif
#ifndef CASHU_TOKEN_MAX_PROOFS
#define CASHU_TOKEN_MAX_PROOFS 1000
#endif
#ifndef CASHU_SECRET_MAX
#define CASHU_SECRET_MAX 1024
#endif
#ifndef CASHU_WITNESS_MAX
#define CASHU_WITNESS_MAX 4096
#endif
#ifndef CASHU_MINT_URL_MAX
#define CASHU_MINT_URL_MAX 512
#endif
#ifndef CASHU_MEMO_MAX
#define CASHU_MEMO_MAX 1024
#endif

typedef struct cashu_dleq {
    uint8_t e[32];
    uint8_t s[32];
    uint8_t r[32];
    int has_r; /* a DLEQ without r cannot be verified by a receiver */
} cashu_dleq_t;

typedef struct cashu_proof {
    uint64_t amount;
    char id[CASHU_KEYSET_ID_HEX_MAX + 1]; /* lowercase hex; may be a short id until resolved */
    char *secret;                         /* owned, NUL-terminated UTF-8 */
    uint8_t C[33];
    char *witness; /* owned or NULL */
    int has_dleq;
    cashu_dleq_t dleq;
} cashu_proof_t;

typedef struct cashu_token {
    char *mint; /* owned; no trailing '/' */
    char *unit; /* owned; "sat" when absent */
    char *memo; /* owned or NULL */
    size_t nproofs;
    cashu_proof_t *proofs; /* owned array */
    int version;           /* 3 or 4 (as decoded) */
} cashu_token_t;

/**
 * @brief Decode "cashuA…" or "cashuB…" (base64url, padded or not; also accepts the standard
 * alphabet). @return 0, CASHU_EBAD_TOKEN (prefix, base64, JSON/CBOR, fields, bounds),
 * COMMON_EUNSUPPORTED (a v3 token that spans several mints), COMMON_ENOMEM.
 */
int cashu_token_decode(const char *s, size_t len, cashu_token_t *out);

/** @brief Decode the binary form "craw" "B" cbor. */
int cashu_token_decode_binary(const uint8_t *b, size_t len, cashu_token_t *out);

/**
 * @brief Map every proof id to a full id among @p n keysets of the token's mint (short v2 ids
 * must match exactly one). @return 0 or CASHU_EKEYSET.
 */
int cashu_token_resolve_ids(cashu_token_t *t, const cashu_keyset_t *const *ks, size_t n);

/** @brief Encode v4 ("cashuB", base64url without padding). With @p short_ids, v2 ids are
 *  written as their first 8 bytes (as cashu-ts does). DLEQ and witness are included. */
int cashu_token_encode_v4(const cashu_token_t *t, int short_ids, common_buf_t *out);

/** @brief Encode v3 ("cashuA", base64url without padding, JSON). */
int cashu_token_encode_v3(const cashu_token_t *t, common_buf_t *out);

/** @brief Sum of the proof amounts; COMMON_ERANGE on overflow. */
int cashu_token_amount(const cashu_token_t *t, uint64_t *sum);

void cashu_proof_free(cashu_proof_t *p);
void cashu_token_free(cashu_token_t *t);

/** @brief Deep copy of a proof (strings duplicated). */
int cashu_proof_copy(cashu_proof_t *dst, const cashu_proof_t *src);

/** @brief Y = hash_to_curve(secret) for a proof. */
int cashu_proof_Y(const cashu_proof_t *p, uint8_t Y[33]);

/**
 * @brief Proof as a JSON object for the mint API (amount as number if ≤ 2^53-1, else string;
 * with @p with_dleq the dleq object is added; the mint must never see it per NUT-12 update).
 */
struct cJSON;
struct cJSON *cashu_proof_to_json(const cashu_proof_t *p, int with_dleq);

/** @brief Parse a Proof JSON object (v3 token entry or stored proof). */
int cashu_proof_from_json(const struct cJSON *o, cashu_proof_t *p);

#endif
