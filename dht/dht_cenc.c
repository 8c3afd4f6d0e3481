/* SPDX-License-Identifier: MIT */
/* compact-encoding subset: see dht_cenc.h for the contract. */
#include "dht/dht_cenc.h"

#include <stdio.h>
#include <string.h>

#include "common/common_err.h"

size_t dht_cenc_uint_size(uint64_t n) {
    return n <= 0xfc ? 1 : n <= 0xffff ? 3 : n <= 0xffffffffu ? 5 : 9;
}

/* ---- writer ---- */

void dht_cenc_writer_init(dht_cenc_writer_t *w, uint8_t *buf, size_t cap) {
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->err = 0;
}

int dht_cenc_writer_finish(const dht_cenc_writer_t *w, size_t *len) {
    if (len) *len = w->err ? 0 : w->len;
    return w->err;
}

uint8_t *dht_cenc_put_reserve(dht_cenc_writer_t *w, size_t n) {
    if (w->err) return NULL;
    if (!w->buf) {
        if (n > SIZE_MAX - w->len) {
            w->err = COMMON_ETOOBIG;
            return NULL;
        }
        w->len += n;
        return NULL;
    }
    if (n > w->cap - w->len) {
        w->err = COMMON_ETOOBIG;
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

static void put_le(dht_cenc_writer_t *w, uint64_t v, size_t n) {
    uint8_t *p = dht_cenc_put_reserve(w, n);
    if (!p) return;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void dht_cenc_put_u8(dht_cenc_writer_t *w, uint8_t n) {
    put_le(w, n, 1);
}
void dht_cenc_put_u16(dht_cenc_writer_t *w, uint16_t n) {
    put_le(w, n, 2);
}
void dht_cenc_put_u24(dht_cenc_writer_t *w, uint32_t n) {
    if (n > 0xffffffu) {
        if (!w->err) w->err = COMMON_ERANGE;
        return;
    }
    put_le(w, n, 3);
}
void dht_cenc_put_u32(dht_cenc_writer_t *w, uint32_t n) {
    put_le(w, n, 4);
}
void dht_cenc_put_u64(dht_cenc_writer_t *w, uint64_t n) {
    put_le(w, n, 8);
}

void dht_cenc_put_uint(dht_cenc_writer_t *w, uint64_t n) {
    if (n <= 0xfc) {
        put_le(w, n, 1);
    } else if (n <= 0xffff) {
        put_le(w, 0xfd, 1);
        put_le(w, n, 2);
    } else if (n <= 0xffffffffu) {
        put_le(w, 0xfe, 1);
        put_le(w, n, 4);
    } else {
        put_le(w, 0xff, 1);
        put_le(w, n, 8);
    }
}

void dht_cenc_put_fixed(dht_cenc_writer_t *w, const void *p, size_t n) {
    uint8_t *d = dht_cenc_put_reserve(w, n);
    if (d && n) memcpy(d, p, n);
}

void dht_cenc_put_buffer(dht_cenc_writer_t *w, const void *p, size_t n) {
    dht_cenc_put_uint(w, n);
    dht_cenc_put_fixed(w, p, n);
}

void dht_cenc_put_ipv4(dht_cenc_writer_t *w, const dht_ipv4_addr_t *a) {
    dht_cenc_put_fixed(w, a->host, 4);
    dht_cenc_put_u16(w, a->port);
}

void dht_cenc_put_ipv6(dht_cenc_writer_t *w, const dht_ipv6_addr_t *a) {
    dht_cenc_put_fixed(w, a->host, 16);
    dht_cenc_put_u16(w, a->port);
}

void dht_cenc_put_ipv4_array(dht_cenc_writer_t *w, const dht_ipv4_addr_t *a, size_t n) {
    dht_cenc_put_uint(w, n);
    for (size_t i = 0; i < n; i++) dht_cenc_put_ipv4(w, &a[i]);
}

void dht_cenc_put_ipv6_array(dht_cenc_writer_t *w, const dht_ipv6_addr_t *a, size_t n) {
    dht_cenc_put_uint(w, n);
    for (size_t i = 0; i < n; i++) dht_cenc_put_ipv6(w, &a[i]);
}

/* ---- reader ---- */

void dht_cenc_reader_init(dht_cenc_reader_t *r, const void *buf, size_t len) {
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->err = 0;
}

static int fail(dht_cenc_reader_t *r) {
    r->err = COMMON_EPROTO;
    return COMMON_EPROTO;
}

int dht_cenc_get_fixed_ref(dht_cenc_reader_t *r, size_t n, const uint8_t **out) {
    *out = NULL;
    if (r->err) return r->err;
    if (n > r->len - r->pos) return fail(r);
    *out = r->buf + r->pos;
    r->pos += n;
    return 0;
}

static int get_le(dht_cenc_reader_t *r, size_t n, uint64_t *out) {
    const uint8_t *p;
    *out = 0;
    int rc = dht_cenc_get_fixed_ref(r, n, &p);
    if (rc) return rc;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    *out = v;
    return 0;
}

int dht_cenc_get_u8(dht_cenc_reader_t *r, uint8_t *out) {
    uint64_t v;
    int rc = get_le(r, 1, &v);
    *out = (uint8_t)v;
    return rc;
}
int dht_cenc_get_u16(dht_cenc_reader_t *r, uint16_t *out) {
    uint64_t v;
    int rc = get_le(r, 2, &v);
    *out = (uint16_t)v;
    return rc;
}
int dht_cenc_get_u24(dht_cenc_reader_t *r, uint32_t *out) {
    uint64_t v;
    int rc = get_le(r, 3, &v);
    *out = (uint32_t)v;
    return rc;
}
int dht_cenc_get_u32(dht_cenc_reader_t *r, uint32_t *out) {
    uint64_t v;
    int rc = get_le(r, 4, &v);
    *out = (uint32_t)v;
    return rc;
}
int dht_cenc_get_u64(dht_cenc_reader_t *r, uint64_t *out) {
    return get_le(r, 8, out);
}

int dht_cenc_get_uint(dht_cenc_reader_t *r, uint64_t *out) {
    uint64_t a;
    *out = 0;
    int rc = get_le(r, 1, &a);
    if (rc) return rc;
    if (a <= 0xfc) {
        *out = a;
        return 0;
    }
    return get_le(r, a == 0xfd ? 2 : a == 0xfe ? 4 : 8, out);
}

int dht_cenc_get_uint_max(dht_cenc_reader_t *r, uint64_t max, uint64_t *out) {
    int rc = dht_cenc_get_uint(r, out);
    if (rc) return rc;
    if (*out > max) {
        *out = 0;
        return fail(r);
    }
    return 0;
}

int dht_cenc_get_fixed(dht_cenc_reader_t *r, void *out, size_t n) {
    const uint8_t *p;
    int rc = dht_cenc_get_fixed_ref(r, n, &p);
    if (rc) {
        if (n) memset(out, 0, n);
        return rc;
    }
    if (n) memcpy(out, p, n);
    return 0;
}

int dht_cenc_get_buffer_ref(dht_cenc_reader_t *r, const uint8_t **out, size_t *n) {
    uint64_t len;
    *out = NULL;
    *n = 0;
    int rc = dht_cenc_get_uint(r, &len);
    if (rc) return rc;
    if (len > r->len - r->pos) return fail(r);
    rc = dht_cenc_get_fixed_ref(r, (size_t)len, out);
    if (rc) return rc;
    *n = (size_t)len;
    return 0;
}

int dht_cenc_get_buffer(dht_cenc_reader_t *r, void *out, size_t cap, size_t *n) {
    const uint8_t *p;
    size_t len;
    *n = 0;
    int rc = dht_cenc_get_buffer_ref(r, &p, &len);
    if (rc) return rc;
    if (len > cap) return fail(r);
    if (len) memcpy(out, p, len);
    *n = len;
    return 0;
}

int dht_cenc_get_ipv4(dht_cenc_reader_t *r, dht_ipv4_addr_t *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *p;
    int rc = dht_cenc_get_fixed_ref(r, DHT_CENC_IPV4_SIZE, &p);
    if (rc) return rc;
    memcpy(out->host, p, 4);
    out->port = (uint16_t)(p[4] | (p[5] << 8));
    return 0;
}

int dht_cenc_get_ipv6(dht_cenc_reader_t *r, dht_ipv6_addr_t *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *p;
    int rc = dht_cenc_get_fixed_ref(r, DHT_CENC_IPV6_SIZE, &p);
    if (rc) return rc;
    memcpy(out->host, p, 16);
    out->port = (uint16_t)(p[16] | (p[17] << 8));
    return 0;
}

int dht_cenc_get_array_len(dht_cenc_reader_t *r, size_t max, size_t min_elem_size, size_t *n) {
    uint64_t v;
    *n = 0;
    int rc = dht_cenc_get_uint(r, &v);
    if (rc) return rc;
    if (v > max) return fail(r);
    if (min_elem_size && v > (r->len - r->pos) / min_elem_size) return fail(r);
    *n = (size_t)v;
    return 0;
}

int dht_cenc_get_ipv4_array(dht_cenc_reader_t *r, dht_ipv4_addr_t *out, size_t cap, size_t *n) {
    size_t cnt;
    *n = 0;
    int rc = dht_cenc_get_array_len(r, cap, DHT_CENC_IPV4_SIZE, &cnt);
    if (rc) return rc;
    for (size_t i = 0; i < cnt; i++) {
        rc = dht_cenc_get_ipv4(r, &out[i]);
        if (rc) return rc;
    }
    *n = cnt;
    return 0;
}

int dht_cenc_get_ipv6_array(dht_cenc_reader_t *r, dht_ipv6_addr_t *out, size_t cap, size_t *n) {
    size_t cnt;
    *n = 0;
    int rc = dht_cenc_get_array_len(r, cap, DHT_CENC_IPV6_SIZE, &cnt);
    if (rc) return rc;
    for (size_t i = 0; i < cnt; i++) {
        rc = dht_cenc_get_ipv6(r, &out[i]);
        if (rc) return rc;
    }
    *n = cnt;
    return 0;
}

/* ---- helpers ---- */

void dht_ipv4_format(const dht_ipv4_addr_t *a, char *out, size_t cap) {
    snprintf(out, cap, "%u.%u.%u.%u:%u", a->host[0], a->host[1], a->host[2], a->host[3], a->port);
}

int dht_ipv4_parse(const char *host, uint16_t port, dht_ipv4_addr_t *out) {
    memset(out, 0, sizeof *out);
    if (!host) return COMMON_EINVAL;
    const char *s = host;
    for (int i = 0; i < 4; i++) {
        unsigned v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (unsigned)(*s - '0');
            if (++digits > 3 || v > 255) return COMMON_EINVAL;
            s++;
        }
        if (!digits) return COMMON_EINVAL;
        out->host[i] = (uint8_t)v;
        if (i < 3) {
            if (*s != '.') return COMMON_EINVAL;
            s++;
        }
    }
    if (*s) return COMMON_EINVAL;
    out->port = port;
    return 0;
}

int dht_ipv4_equal(const dht_ipv4_addr_t *a, const dht_ipv4_addr_t *b) {
    return a->port == b->port && memcmp(a->host, b->host, 4) == 0;
}
