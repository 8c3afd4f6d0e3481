/* SPDX-License-Identifier: MIT */
#include "common/common_codec.h"
#include "common/common_err.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void common_hex_encode(const void *in, size_t len, char *out) {
    const uint8_t *p = in;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int common_hex_decode(const char *hex, size_t hexlen, void *out, size_t cap, size_t *outlen) {
    if (hexlen % 2) return COMMON_EINVAL;
    if (hexlen / 2 > cap) return COMMON_ETOOBIG;
    uint8_t *o = out;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return COMMON_EINVAL;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    if (outlen) *outlen = hexlen / 2;
    return 0;
}

int common_hex_decode_exact(const char *hex, void *out, size_t len) {
    if (!hex || strlen(hex) != 2 * len) return COMMON_EINVAL;
    return common_hex_decode(hex, 2 * len, out, len, NULL);
}

void common_hex_prefix(const void *in, size_t len, size_t nbytes, char *out) {
    common_hex_encode(in, len < nbytes ? len : nbytes, out);
}

static int sodium_variant(common_b64_variant_t v) {
    switch (v) {
    case COMMON_B64_URL: return sodium_base64_VARIANT_URLSAFE;
    case COMMON_B64_URL_RAW: return sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    default: return sodium_base64_VARIANT_ORIGINAL;
    }
}

size_t common_b64_encoded_len(size_t len, common_b64_variant_t v) {
    return sodium_base64_encoded_len(len, sodium_variant(v));
}

void common_b64_encode(const void *in, size_t len, char *out, common_b64_variant_t v) {
    sodium_bin2base64(out, common_b64_encoded_len(len, v), in, len, sodium_variant(v));
}

int common_b64_decode(const char *in, size_t inlen, void *out, size_t cap, size_t *outlen) {
    /* Normalise to the URL-safe alphabet without padding, then decode strictly. */
    while (inlen > 0 && in[inlen - 1] == '=') inlen--;
    if (inlen % 4 == 1) return COMMON_EINVAL;
    size_t need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
    if (need > cap) return COMMON_ETOOBIG;
    char *tmp = malloc(inlen + 1);
    if (!tmp) return COMMON_ENOMEM;
    for (size_t i = 0; i < inlen; i++) {
        char c = in[i];
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
        tmp[i] = c;
    }
    size_t n = 0;
    const char *end = NULL;
    int rc = sodium_base642bin(out, cap, tmp, inlen, NULL, &n, &end,
                               sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int complete = (rc == 0 && end == tmp + inlen);
    free(tmp);
    if (!complete) return COMMON_EINVAL;
    if (outlen) *outlen = n;
    return 0;
}

int common_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    if (!s || !*s) return COMMON_EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return COMMON_EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return COMMON_ERANGE;
        v = v * 10 + d;
    }
    if (v < min || v > max) return COMMON_ERANGE;
    *out = v;
    return 0;
}

int common_buf_reserve(common_buf_t *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) return COMMON_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) return COMMON_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int common_buf_append(common_buf_t *b, const void *data, size_t len) {
    if (len == 0) return 0;
    int rc = common_buf_reserve(b, len);
    if (rc) return rc;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int common_buf_printf(common_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return COMMON_EINVAL;
    int rc = common_buf_reserve(b, (size_t)n + 1);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void common_buf_consume(common_buf_t *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void common_buf_free(common_buf_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void common_buf_wipe_free(common_buf_t *b) {
    if (b->data) sodium_memzero(b->data, b->cap);
    common_buf_free(b);
}
