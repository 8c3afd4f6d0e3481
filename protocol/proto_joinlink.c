/* SPDX-License-Identifier: MIT */
#include "protocol/proto_joinlink.h"
#include "common/common_codec.h"
#include "common/common_err.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void proto_topic(uint32_t kind, uint8_t topic[32]) {
    char s[40];
    int n = snprintf(s, sizeof s, "2020117-dvm-kind-%u", (unsigned)kind);
    crypto_hash_sha256(topic, (const unsigned char *)s, (unsigned long long)n);
}

static int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

int proto_joinlink_format(uint32_t kind, const uint8_t pk[32], const char *name, char *out,
                          size_t cap) {
    if (kind > PROTO_MAX_KIND) return COMMON_EINVAL;
    if (name && strlen(name) > PROTO_MAX_NAME) return COMMON_EINVAL;
    uint8_t topic[32];
    char th[65], ph[65];
    proto_topic(kind, topic);
    common_hex_encode(topic, 32, th);
    int n = snprintf(out, cap, "dvm://%u/%s", (unsigned)kind, th);
    if (n < 0 || (size_t)n >= cap) return COMMON_ETOOBIG;
    size_t len = (size_t)n;
    char sep = '?';
    if (pk) {
        common_hex_encode(pk, 32, ph);
        n = snprintf(out + len, cap - len, "%cpk=%s", sep, ph);
        if (n < 0 || (size_t)n >= cap - len) return COMMON_ETOOBIG;
        len += (size_t)n;
        sep = '&';
    }
    if (name && *name) {
        if (len + 6 >= cap) return COMMON_ETOOBIG;
        out[len++] = sep;
        memcpy(out + len, "name=", 5);
        len += 5;
        for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
            if (len + 4 >= cap) return COMMON_ETOOBIG;
            if (unreserved(*p)) {
                out[len++] = (char)*p;
            } else {
                snprintf(out + len, 4, "%%%02X", *p);
                len += 3;
            }
        }
        out[len] = '\0';
    }
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return COMMON_EINVAL;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int proto_joinlink_parse(const char *link, proto_joinlink_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!link || strncmp(link, "dvm://", 6) != 0)
        return fail(err, errlen, "a join link starts with dvm://");
    const char *p = link + 6;
    uint64_t kind = 0;
    size_t digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9') digits++;
    char kbuf[8];
    if (digits == 0 || digits >= sizeof kbuf || p[digits] != '/')
        return fail(err, errlen, "join link: expected dvm://<kind>/<topic>");
    memcpy(kbuf, p, digits);
    kbuf[digits] = '\0';
    if (common_parse_u64(kbuf, 0, PROTO_MAX_KIND, &kind))
        return fail(err, errlen, "join link: kind out of range");
    p += digits + 1;
    size_t tl = strcspn(p, "?");
    if (tl != 64 || common_hex_decode(p, 64, out->topic, 32, NULL))
        return fail(err, errlen, "join link: the topic must be 64 hex characters");
    uint8_t want[32];
    proto_topic((uint32_t)kind, want);
    if (sodium_memcmp(want, out->topic, 32) != 0)
        return fail(err, errlen, "join link: the topic is not the topic of kind %u",
                    (unsigned)kind);
    out->kind = (uint32_t)kind;
    p += tl;
    if (*p == '?') p++;
    while (*p) {
        size_t pl = strcspn(p, "&");
        const char *eq = memchr(p, '=', pl);
        size_t kl = eq ? (size_t)(eq - p) : pl;
        const char *v = eq ? eq + 1 : p + pl;
        size_t vl = eq ? pl - kl - 1 : 0;
        if (kl == 2 && !memcmp(p, "pk", 2)) {
            if (vl != 64 || common_hex_decode(v, 64, out->pk, 32, NULL))
                return fail(err, errlen, "join link: pk must be 64 hex characters");
            out->has_pk = 1;
        } else if (kl == 4 && !memcmp(p, "name", 4)) {
            size_t o = 0;
            for (size_t i = 0; i < vl; i++) {
                int c = (unsigned char)v[i];
                if (c == '%') {
                    int hi = i + 2 < vl ? hexv(v[i + 1]) : -1;
                    int lo = i + 2 < vl ? hexv(v[i + 2]) : -1;
                    if (hi < 0 || lo < 0) return fail(err, errlen, "join link: bad %%-escape");
                    c = hi << 4 | lo;
                    i += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (c == 0 || o >= PROTO_MAX_NAME)
                    return fail(err, errlen, "join link: bad or too long name");
                out->name[o++] = (char)c;
            }
            out->name[o] = '\0';
        }
        p += pl;
        if (*p == '&') p++;
    }
    return 0;
}
