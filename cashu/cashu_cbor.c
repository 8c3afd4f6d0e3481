/* SPDX-License-Identifier: MIT */
/* Minimal bounds-checked CBOR; see cashu_cbor.h. */
#include "cashu/cashu_cbor.h"

#include <string.h>

#include "common/common_err.h"
#include "common/common_utf8.h"

int cashu_cbor_peek(const cashu_cbor_rd_t *r, int *major) {
    if (r->pos >= r->len) return COMMON_EINVAL;
    *major = r->p[r->pos] >> 5;
    return 0;
}

int cashu_cbor_head(cashu_cbor_rd_t *r, int *major, uint64_t *arg) {
    if (r->pos >= r->len) return COMMON_EINVAL;
    uint8_t ib = r->p[r->pos++];
    *major = ib >> 5;
    uint8_t ai = ib & 31;
    if (ai < 24) {
        *arg = ai;
        return 0;
    }
    size_t n;
    switch (ai) {
    case 24: n = 1; break;
    case 25: n = 2; break;
    case 26: n = 4; break;
    case 27: n = 8; break;
    case 31: return COMMON_EUNSUPPORTED; /* indefinite length */
    default: return COMMON_EINVAL;
    }
    if (r->len - r->pos < n) return COMMON_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | r->p[r->pos++];
    *arg = v;
    return 0;
}

int cashu_cbor_uint(cashu_cbor_rd_t *r, uint64_t *v) {
    int major, rc = cashu_cbor_head(r, &major, v);
    if (rc) return rc;
    return major == CBOR_UINT ? 0 : COMMON_EINVAL;
}

static int str(cashu_cbor_rd_t *r, int want, const uint8_t **data, size_t *len) {
    int major;
    uint64_t n;
    int rc = cashu_cbor_head(r, &major, &n);
    if (rc) return rc;
    if (major != want) return COMMON_EINVAL;
    if (n > r->len - r->pos) return COMMON_EINVAL;
    *data = r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return 0;
}

int cashu_cbor_bytes(cashu_cbor_rd_t *r, const uint8_t **data, size_t *len) {
    return str(r, CBOR_BYTES, data, len);
}

int cashu_cbor_text(cashu_cbor_rd_t *r, const char **s, size_t *len) {
    const uint8_t *d;
    int rc = str(r, CBOR_TEXT, &d, len);
    if (rc) return rc;
    if (!common_utf8_valid((const char *)d, *len)) return COMMON_EUTF8;
    *s = (const char *)d;
    return 0;
}

static int container(cashu_cbor_rd_t *r, int want, size_t *n) {
    int major;
    uint64_t v;
    int rc = cashu_cbor_head(r, &major, &v);
    if (rc) return rc;
    if (major != want) return COMMON_EINVAL;
    /* Each element needs at least one byte (two per map pair). */
    uint64_t per = want == CBOR_MAP ? 2 : 1;
    if (v > (r->len - r->pos) / per) return COMMON_EINVAL;
    *n = (size_t)v;
    return 0;
}

int cashu_cbor_array(cashu_cbor_rd_t *r, size_t *n) {
    return container(r, CBOR_ARRAY, n);
}
int cashu_cbor_map(cashu_cbor_rd_t *r, size_t *n) {
    return container(r, CBOR_MAP, n);
}

static int skip(cashu_cbor_rd_t *r, int depth) {
    if (depth > CASHU_CBOR_MAX_DEPTH) return COMMON_ETOOBIG;
    int major;
    uint64_t v;
    int rc = cashu_cbor_head(r, &major, &v);
    if (rc) return rc;
    switch (major) {
    case CBOR_UINT:
    case CBOR_NINT:
    case CBOR_SIMPLE: return 0;
    case CBOR_BYTES:
    case CBOR_TEXT:
        if (v > r->len - r->pos) return COMMON_EINVAL;
        r->pos += (size_t)v;
        return 0;
    case CBOR_ARRAY:
    case CBOR_MAP: {
        uint64_t per = major == CBOR_MAP ? 2 : 1;
        if (v > (r->len - r->pos) / per) return COMMON_EINVAL;
        for (uint64_t i = 0; i < v * per; i++)
            if ((rc = skip(r, depth + 1))) return rc;
        return 0;
    }
    case CBOR_TAG: return skip(r, depth + 1);
    default: return COMMON_EINVAL;
    }
}

int cashu_cbor_skip(cashu_cbor_rd_t *r) {
    return skip(r, 0);
}

int cashu_cbor_put_head(common_buf_t *b, int major, uint64_t arg) {
    uint8_t h[9];
    size_t n;
    uint8_t m = (uint8_t)(major << 5);
    if (arg < 24) {
        h[0] = m | (uint8_t)arg;
        n = 1;
    } else if (arg <= 0xff) {
        h[0] = m | 24;
        h[1] = (uint8_t)arg;
        n = 2;
    } else if (arg <= 0xffff) {
        h[0] = m | 25;
        h[1] = (uint8_t)(arg >> 8);
        h[2] = (uint8_t)arg;
        n = 3;
    } else if (arg <= 0xffffffffu) {
        h[0] = m | 26;
        for (int i = 0; i < 4; i++) h[1 + i] = (uint8_t)(arg >> (24 - 8 * i));
        n = 5;
    } else {
        h[0] = m | 27;
        for (int i = 0; i < 8; i++) h[1 + i] = (uint8_t)(arg >> (56 - 8 * i));
        n = 9;
    }
    return common_buf_append(b, h, n);
}

int cashu_cbor_put_uint(common_buf_t *b, uint64_t v) {
    return cashu_cbor_put_head(b, CBOR_UINT, v);
}

int cashu_cbor_put_bytes(common_buf_t *b, const void *data, size_t len) {
    int rc = cashu_cbor_put_head(b, CBOR_BYTES, len);
    return rc ? rc : common_buf_append(b, data, len);
}

int cashu_cbor_put_text(common_buf_t *b, const char *s, size_t len) {
    int rc = cashu_cbor_put_head(b, CBOR_TEXT, len);
    return rc ? rc : common_buf_append(b, s, len);
}

int cashu_cbor_put_cstr(common_buf_t *b, const char *s) {
    return cashu_cbor_put_text(b, s, strlen(s));
}
