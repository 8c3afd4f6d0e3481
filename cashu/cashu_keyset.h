/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_keyset.h
 * @brief Mint keysets (NUT-01/02): parsing with uint64 amounts, key validation, keyset id
 *        v1/v2 derivation and verification, fee computation, and JSON number helpers.
 *
 * A keyset is a plain value (no heap): copy it freely. Amount keys are parsed from the JSON
 * member names (strings), so every uint64 (up to 2^63 and beyond) is exact. Amount VALUES that
 * arrive as JSON numbers go through cashu_json_u64, which refuses anything that is not an
 * integer in [0, 2^53-1] (cJSON stores numbers as doubles) and accepts decimal strings.
 */
#ifndef SWARMDVM_CASHU_KEYSET_H
#define SWARMDVM_CASHU_KEYSET_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#ifndef CASHU_KEYSET_MAX_KEYS
#define CASHU_KEYSET_MAX_KEYS 64
#endif
#define CASHU_KEYSET_ID_HEX_MAX 66 /* v2: 33 bytes */
#define CASHU_UNIT_MAX          16

typedef struct cashu_key {
    uint64_t amount;
    uint8_t pub[33];
} cashu_key_t;

typedef struct cashu_keyset {
    char id[CASHU_KEYSET_ID_HEX_MAX + 1]; /* lowercase hex; "" if unknown */
    char unit[CASHU_UNIT_MAX + 1];
    uint64_t input_fee_ppk;
    uint64_t final_expiry; /* 0 = not set */
    int active;
    size_t nkeys;
    cashu_key_t keys[CASHU_KEYSET_MAX_KEYS]; /* ascending by amount, unique */
} cashu_keyset_t;

/** @brief A JSON amount as uint64: integral number in [0, 2^53-1] or a decimal string.
 *  @return 0, COMMON_EINVAL (wrong type / not integral) or COMMON_ERANGE. */
int cashu_json_u64(const cJSON *item, uint64_t *out);

/** @brief Decode a fixed-length lowercase/uppercase hex JSON string field. */
int cashu_json_hex(const cJSON *item, uint8_t *out, size_t len);

/**
 * @brief Parse a NUT-01 `keys` object {"<amount>": "<33-byte hex>"} into @p ks->keys (sorted).
 * @return 0, COMMON_EINVAL (bad amount, non-compressed or invalid point, duplicate amount),
 *         COMMON_ETOOBIG (more than CASHU_KEYSET_MAX_KEYS).
 */
int cashu_keyset_parse_keys(const cJSON *keys, cashu_keyset_t *ks);

/**
 * @brief Parse one keyset object of GET /v1/keys or /v1/keys/{id}:
 * {id, unit, active?, input_fee_ppk?, final_expiry?, keys}. The id is verified against the
 * keys (CASHU_EKEYSET on mismatch). Unknown id versions are refused (CASHU_EKEYSET).
 */
int cashu_keyset_parse_json(const cJSON *obj, cashu_keyset_t *ks);

/** @brief Keyset id v1: "00" + 14 hex (out needs 17 bytes). */
int cashu_keyset_id_v1(const cashu_keyset_t *ks, char out[17]);

/** @brief Keyset id v2: "01" + 64 hex over keys, unit, fee (if ≠ 0), expiry (if set). */
int cashu_keyset_id_v2(const cashu_keyset_t *ks, char out[67]);

/** @brief Re-derive ks->id by its version and compare. @return 0 or CASHU_EKEYSET. */
int cashu_keyset_verify_id(const cashu_keyset_t *ks);

/** @brief The key for @p amount, or NULL. */
const uint8_t *cashu_keyset_key(const cashu_keyset_t *ks, uint64_t amount);

/** @brief Fee for @p n inputs of keysets with the given total ppk: ceil(sum/1000). */
static inline uint64_t cashu_fee_from_ppk_sum(uint64_t ppk_sum) {
    return (ppk_sum + 999) / 1000;
}

/**
 * @brief Resolve a (possibly short, 16-hex) keyset id against @p n known keysets.
 * Full ids must match exactly; a short v2 id (16 hex starting "01") must prefix exactly one.
 * @return index ≥ 0, or CASHU_EKEYSET (unknown or ambiguous).
 */
int cashu_keyset_resolve(const char *id, const cashu_keyset_t *const *ks, size_t n);

/** @brief Split @p amount into powers of two available in @p ks (ascending). Writes at most
 *  @p cap amounts. @return count, or COMMON_ETOOBIG / COMMON_EINVAL. */
int cashu_split_amount(const cashu_keyset_t *ks, uint64_t amount, uint64_t *out, size_t cap);

#endif
