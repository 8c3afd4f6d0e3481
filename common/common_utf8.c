/* SPDX-License-Identifier: MIT */
#include "common/common_utf8.h"

#include <stdint.h>

int common_utf8_char(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0;
    }
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= n) return -1;
        uint8_t b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return 0;
    }
    return need;
}

int common_utf8_valid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if ((uint8_t)s[i] < 0x80) { /* ASCII runs are the common case */
            i++;
            continue;
        }
        int n = common_utf8_char(s + i, len - i);
        if (n <= 0) return 0;
        i += (size_t)n;
    }
    return 1;
}

size_t common_utf8_complete_prefix(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    /* Look back at most 3 bytes for the lead byte of a possibly incomplete sequence. */
    size_t back = 0;
    while (back < 3 && back < len && (s[len - 1 - back] & 0xC0) == 0x80) back++;
    if (back == len) return len; /* only continuation bytes: invalid, never completes */
    uint8_t lead = s[len - 1 - back];
    size_t need;
    if (lead >= 0xC2 && lead <= 0xDF)
        need = 1;
    else if (lead >= 0xE0 && lead <= 0xEF)
        need = 2;
    else if (lead >= 0xF0 && lead <= 0xF4)
        need = 3;
    else
        return len; /* ASCII or invalid lead: nothing to hold back */
    if (back < need) return len - 1 - back;
    return len;
}
