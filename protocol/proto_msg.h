/* SPDX-License-Identifier: MIT */
/**
 * @file proto_msg.h
 * @brief Codec for the job protocol's messages (dvm-protocol.md §3): one JSON object per
 *        line <-> proto_msg_t.
 *
 * Decoding is strict: the line must be one JSON object (UTF-8, no raw control characters,
 * no "\u0000" escape, nothing after it); `type` must be a string and, for known types, `id`
 * must be 1..64 characters of [A-Za-z0-9_-]; every base field must be present with its
 * type; every field we know (base or extension) that is present must have the right type
 * and range. Integers are JSON numbers with an integral value in [0, 2^53-1] (the range
 * JavaScript peers represent exactly); fractions, negatives, strings, booleans and larger
 * values are rejected (JSON does not distinguish 10 from 10.0 or 1e1, so neither do we).
 * Enum-like strings (error `code`, result `reason`) must be one of the documented values.
 * Unknown fields are ignored. An unknown `type` is PROTO_EUNKNOWN_TYPE with the type kept
 * in `type_str`, so the caller can log and ignore it (§2).
 *
 * Ownership: a decoded proto_msg_t owns its strings (char * fields); release them with
 * proto_msg_free(), which also resets the message. For encoding, the caller fills a
 * proto_msg_t (zero it first) with borrowed strings and never calls proto_msg_free() on it.
 *
 * Encoding writes exactly one line ending in '\n' and refuses (COMMON_EINVAL/ERANGE/EUTF8)
 * anything that decoding would reject, so decode(encode(m)) == m for every valid m.
 * Functions are pure and reentrant; no global state.
 */
#ifndef SWARMDVM_PROTO_MSG_H
#define SWARMDVM_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_codec.h"

#ifndef PROTO_ID_MAX
#define PROTO_ID_MAX 64
#endif
/** Most mint URLs accepted in an `offer`/skill `mints` array. */
#ifndef PROTO_MAX_MINTS
#define PROTO_MAX_MINTS 16
#endif
/** Longest short string (model, unit, version, mint URL). */
#ifndef PROTO_MAX_SHORT
#define PROTO_MAX_SHORT 512
#endif
/** Largest integer accepted on the wire: 2^53 - 1. */
#define PROTO_MAX_INT UINT64_C(9007199254740991)
/** Compressed secp256k1 public key size. */
#define PROTO_PUBKEY_LEN 33

typedef enum proto_msg_type {
    PROTO_MSG_UNKNOWN = 0, /* a type we do not know (type_str holds it) */
    PROTO_MSG_SKILL_REQUEST,
    PROTO_MSG_SKILL_RESPONSE,
    PROTO_MSG_REQUEST,
    PROTO_MSG_OFFER,
    PROTO_MSG_PAYMENT,
    PROTO_MSG_PAYMENT_ACK,
    PROTO_MSG_ACCEPTED,
    PROTO_MSG_CHUNK,
    PROTO_MSG_PAY_REQUIRED,
    PROTO_MSG_RESULT,
    PROTO_MSG_STOP,
    PROTO_MSG_ERROR,
    PROTO_MSG_TYPE_COUNT_
} proto_msg_type_t;

/** `error.code` (extension). PROTO_CODE_NONE: absent. */
typedef enum proto_error_code {
    PROTO_CODE_NONE = 0,
    PROTO_CODE_BAD_REQUEST,
    PROTO_CODE_CAPACITY,
    PROTO_CODE_PRICE,
    PROTO_CODE_PAYMENT_TIMEOUT,
    PROTO_CODE_BAD_TOKEN,
    PROTO_CODE_TOKEN_SPENT,
    PROTO_CODE_MINT_NOT_ACCEPTED,
    PROTO_CODE_NOT_LOCKED,
    PROTO_CODE_BACKEND,
    PROTO_CODE_INTERNAL,
    PROTO_CODE_COUNT_
} proto_error_code_t;

/** `result.reason` (extension). PROTO_REASON_NONE: absent. */
typedef enum proto_reason {
    PROTO_REASON_NONE = 0,
    PROTO_REASON_DONE,
    PROTO_REASON_STOPPED,
    PROTO_REASON_BUDGET,
    PROTO_REASON_TIMEOUT,
    PROTO_REASON_LENGTH,
    PROTO_REASON_ERROR,
    PROTO_REASON_COUNT_
} proto_reason_t;

/** A `mints` array: has=1 when present (possibly empty). */
typedef struct proto_mints {
    int has;
    size_t n;
    char *url[PROTO_MAX_MINTS];
} proto_mints_t;

/** The skill object of `skill_response` (all fields are extensions, all optional). */
typedef struct proto_skill {
    int present; /* 0: "skill": null */
    int has_kind;
    uint64_t kind;
    char *model; /* NULL: absent */
    int has_pricing;
    uint64_t sats_per_chunk, chunks_per_payment; /* both required inside pricing */
    char *unit;                                  /* pricing.unit; NULL: absent */
    proto_mints_t mints;
    int has_pubkey;
    uint8_t pubkey[PROTO_PUBKEY_LEN];
    int has_capacity;
    uint64_t cap_active, cap_max; /* both required inside capacity */
    char *version;
} proto_skill_t;

/** `request.params` (extension). */
typedef struct proto_params {
    char *model, *system; /* NULL: absent */
    int has_max_tokens, has_temperature, has_seed;
    uint64_t max_tokens, seed;
    double temperature; /* finite, 0..100 (not an amount) */
} proto_params_t;

typedef struct proto_msg {
    proto_msg_type_t type;
    char id[PROTO_ID_MAX + 1]; /* "" only after a failed decode that could not read it */
    char *type_str;            /* PROTO_MSG_UNKNOWN after decode: the received type */
    union {
        struct {
            uint64_t kind;
        } skill_request;
        struct {
            proto_skill_t skill;
        } skill_response;
        struct {
            uint64_t kind;
            char *input;
            int has_budget; /* base field, but reference customers may omit it */
            uint64_t budget;
            int has_params;
            proto_params_t params;
        } request;
        struct {
            uint64_t sats_per_chunk, chunks_per_payment; /* >= 1 */
            proto_mints_t mints;
            char *unit;
            int has_pubkey;
            uint8_t pubkey[PROTO_PUBKEY_LEN];
            int has_min_locktime;
            uint64_t min_locktime; /* seconds */
        } offer;
        struct {
            char *token; /* non-empty */
        } payment;
        struct {
            uint64_t amount;
            int has_credit;
            uint64_t credit;
            int has_locked;
            int locked; /* 0/1 */
        } payment_ack;
        struct {
            char *data; /* may be empty */
            int has_seq;
            uint64_t seq;
        } chunk;
        struct {
            uint64_t earned, next;
        } pay_required;
        struct {
            char *output;
            uint64_t total_sats;
            int has_chunks;
            uint64_t chunks;
            int has_usage;
            uint64_t prompt_tokens, completion_tokens;
            proto_reason_t reason;
        } result;
        struct {
            char *message;
            proto_error_code_t code;
        } error;
    };
} proto_msg_t;

/** @brief Wire name of a type ("request", ...); NULL for UNKNOWN/out of range. */
const char *proto_msg_type_name(proto_msg_type_t t);
/** @brief Wire name of an error code ("capacity", ...); NULL for NONE/out of range. */
const char *proto_error_code_name(proto_error_code_t c);
/** @brief Wire name of a result reason ("done", ...); NULL for NONE/out of range. */
const char *proto_reason_name(proto_reason_t r);

/** @brief 1 if @p id[0..len) is a valid job id (1..64 of [A-Za-z0-9_-]). */
int proto_id_valid(const char *id, size_t len);

/**
 * @brief Decode one line (without its '\n'; need not be NUL-terminated).
 * @param line borrowed.
 * @param[out] msg filled; on success it owns its strings (proto_msg_free). On failure its
 *             strings are already freed, but `type` and `id` are set when they could be
 *             read (id "" otherwise) so the caller can reply `error{id, code:"bad_request"}`;
 *             for PROTO_EUNKNOWN_TYPE, `type_str` is kept (free with proto_msg_free).
 * @param[out] why a short human reason on failure ("offer.sats_per_chunk: must be an
 *             integer >= 1"), NUL-terminated; may be NULL.
 * @return 0; PROTO_EUNKNOWN_TYPE; PROTO_EBAD_MESSAGE (fields); COMMON_EJSON (not JSON or
 *         not an object); COMMON_EUTF8; PROTO_ELINE_TOO_LONG (len > PROTO_MAX_LINE);
 *         COMMON_ENOMEM.
 */
int proto_msg_decode(const char *line, size_t len, proto_msg_t *msg, char *why, size_t whylen);

/** @brief Free the strings a decoded message owns and zero it. NULL is fine. */
void proto_msg_free(proto_msg_t *msg);

/**
 * @brief Append @p msg as one JSON line ending in '\n' to @p out (fields borrowed).
 * Base fields first in the reference's order, extension fields only when set.
 * @return 0; COMMON_EINVAL (unknown type, bad id, missing required string, bad enum);
 *         COMMON_ERANGE (integer > 2^53-1 or below its minimum, bad temperature);
 *         COMMON_EUTF8 (a string is not UTF-8); COMMON_ENOMEM. On error out->len is
 *         restored.
 */
int proto_msg_encode(const proto_msg_t *msg, common_buf_t *out);

/**
 * @brief Fast path for the hot message: append {"type":"chunk","id":..,"data":..[,"seq":n]}
 * and '\n' without building a proto_msg_t. @p data[0..len) borrowed, must be UTF-8 without
 * NUL; any other character is escaped as needed. @p seq < 0 omits `seq`.
 * @return as proto_msg_encode().
 */
int proto_encode_chunk(common_buf_t *out, const char *id, const char *data, size_t len,
                       int64_t seq);

/**
 * @brief Append a JSON string literal (quoted, escaped) of UTF-8 @p s[0..len).
 * @return 0, COMMON_EUTF8, COMMON_EINVAL (a NUL byte: never sent, the decoder refuses it),
 *         COMMON_ENOMEM.
 */
int proto_json_put_string(common_buf_t *out, const char *s, size_t len);

/** @brief 1 if two messages are equal field by field (used by tests and the fuzzer). */
int proto_msg_equal(const proto_msg_t *a, const proto_msg_t *b);

#endif
