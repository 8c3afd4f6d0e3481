/* SPDX-License-Identifier: MIT */
/**
 * @file common_codec.h
 * @brief Hex and base64 (standard and URL-safe) encoders and bounds-checked decoders,
 *        strict decimal parsing, and a growable byte buffer.
 *
 * Decoders never write past `cap` and report the exact failure: COMMON_EINVAL for a bad
 * character or length, COMMON_ETOOBIG when the output does not fit.
 */
#ifndef SWARMDVM_COMMON_CODEC_H
#define SWARMDVM_COMMON_CODEC_H

#include <stddef.h>
#include <stdint.h>

/** @brief Lowercase hex of @p len bytes into @p out (needs 2*len+1 bytes, NUL-terminated). */
void common_hex_encode(const void *in, size_t len, char *out);

/**
 * @brief Decode hex (either case) of length @p hexlen into @p out.
 * @param[out] outlen bytes written (may be NULL).
 * @return 0, COMMON_EINVAL (odd length or non-hex), COMMON_ETOOBIG (cap too small).
 */
int common_hex_decode(const char *hex, size_t hexlen, void *out, size_t cap, size_t *outlen);

/** @brief Decode exactly @p len bytes of hex (hexlen must be 2*len). */
int common_hex_decode_exact(const char *hex, void *out, size_t len);

/** @brief First @p nbytes of @p in as hex, for logs (out needs 2*nbytes+1). */
void common_hex_prefix(const void *in, size_t len, size_t nbytes, char *out);

typedef enum {
    COMMON_B64_STD = 0,     /* + /, padded */
    COMMON_B64_URL = 1,     /* - _, padded */
    COMMON_B64_URL_RAW = 2, /* - _, unpadded */
} common_b64_variant_t;

/** @brief Encoded length including the NUL terminator. */
size_t common_b64_encoded_len(size_t len, common_b64_variant_t v);

/** @brief Encode into @p out (size common_b64_encoded_len). */
void common_b64_encode(const void *in, size_t len, char *out, common_b64_variant_t v);

/**
 * @brief Decode base64 in any alphabet (standard or URL-safe), padded or not.
 * Whitespace is not accepted. @return 0, COMMON_EINVAL or COMMON_ETOOBIG.
 */
int common_b64_decode(const char *in, size_t inlen, void *out, size_t cap, size_t *outlen);

/**
 * @brief Strict unsigned decimal: digits only (no sign, space, or suffix), value in
 * [min, max]. @return 0, COMMON_EINVAL (not a number) or COMMON_ERANGE (out of range).
 */
int common_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/** A growable byte buffer. Zero-initialise to use; free with common_buf_free. */
typedef struct common_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} common_buf_t;

/** @brief Make room for @p extra more bytes. @return 0 or COMMON_ENOMEM. */
int common_buf_reserve(common_buf_t *b, size_t extra);
int common_buf_append(common_buf_t *b, const void *data, size_t len);
/** @brief Append a printf-formatted string (no NUL counted in len; one kept after it). */
int common_buf_printf(common_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @brief Drop @p n bytes from the front. */
void common_buf_consume(common_buf_t *b, size_t n);
void common_buf_free(common_buf_t *b);
/** @brief Wipe the whole allocation with sodium_memzero, then free (for secrets). */
void common_buf_wipe_free(common_buf_t *b);

#endif
