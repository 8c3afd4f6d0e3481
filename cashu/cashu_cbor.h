/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_cbor.h
 * @brief A small bounds-checked CBOR (RFC 8949) reader and writer, enough for cashuB tokens.
 *
 * Reader: definite-length items only (indefinite lengths are refused with COMMON_EUNSUPPORTED),
 * nesting bounded by CASHU_CBOR_MAX_DEPTH, every length checked against the remaining input.
 * Pointers returned for byte/text strings are borrowed from the input buffer.
 * Writer: appends canonical (shortest) heads to a common_buf_t.
 */
#ifndef SWARMDVM_CASHU_CBOR_H
#define SWARMDVM_CASHU_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_codec.h"

#ifndef CASHU_CBOR_MAX_DEPTH
#define CASHU_CBOR_MAX_DEPTH 16
#endif

enum {
    CBOR_UINT = 0,
    CBOR_NINT = 1,
    CBOR_BYTES = 2,
    CBOR_TEXT = 3,
    CBOR_ARRAY = 4,
    CBOR_MAP = 5,
    CBOR_TAG = 6,
    CBOR_SIMPLE = 7,
};

typedef struct cashu_cbor_rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
} cashu_cbor_rd_t;

/** @brief Read an item head: major type and argument. Does not consume string payloads. */
int cashu_cbor_head(cashu_cbor_rd_t *r, int *major, uint64_t *arg);
/** @brief Peek at the next major type without consuming (COMMON_EINVAL at end). */
int cashu_cbor_peek(const cashu_cbor_rd_t *r, int *major);
/** @brief Read an unsigned integer. */
int cashu_cbor_uint(cashu_cbor_rd_t *r, uint64_t *v);
/** @brief Read a byte string (major 2); *data borrowed. */
int cashu_cbor_bytes(cashu_cbor_rd_t *r, const uint8_t **data, size_t *len);
/** @brief Read a text string (major 3), checked to be valid UTF-8; *s borrowed, not NUL-ended. */
int cashu_cbor_text(cashu_cbor_rd_t *r, const char **s, size_t *len);
/** @brief Read an array or map header; *n = element (or pair) count, bounded by input size. */
int cashu_cbor_array(cashu_cbor_rd_t *r, size_t *n);
int cashu_cbor_map(cashu_cbor_rd_t *r, size_t *n);
/** @brief Skip one complete item (recursively, depth-bounded). */
int cashu_cbor_skip(cashu_cbor_rd_t *r);

int cashu_cbor_put_head(common_buf_t *b, int major, uint64_t arg);
int cashu_cbor_put_uint(common_buf_t *b, uint64_t v);
int cashu_cbor_put_bytes(common_buf_t *b, const void *data, size_t len);
int cashu_cbor_put_text(common_buf_t *b, const char *s, size_t len);
int cashu_cbor_put_cstr(common_buf_t *b, const char *s);

#endif
