/* SPDX-License-Identifier: MIT */
#include "protocol/proto_ndjson.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_utf8.h"

/*
 * Buffer layout: buf[rpos, len) holds unread bytes. Complete lines are stored with their
 * '\n'; the last `partial` bytes are the current unterminated line. Empty lines are never
 * stored, so an empty stored line (a '\n' at a line start) is the marker for "an over-long
 * line was dropped here", which keeps errors in stream order without a side queue.
 */
struct proto_ndjson {
    char *buf;
    size_t len, cap, rpos;
    size_t partial;
    size_t max_line;
    int skipping; /* discarding the rest of an over-long line until its '\n' */
    unsigned bad;
};

proto_ndjson_t *proto_ndjson_new(size_t max_line, int *err) {
    proto_ndjson_t *fr = calloc(1, sizeof *fr);
    if (!fr) {
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    fr->max_line = max_line ? max_line : PROTO_MAX_LINE;
    if (err) *err = 0;
    return fr;
}

void proto_ndjson_free(proto_ndjson_t *fr) {
    if (!fr) return;
    free(fr->buf);
    free(fr);
}

static int reserve(proto_ndjson_t *fr, size_t extra) {
    if (extra > SIZE_MAX - fr->len - 1) return COMMON_ENOMEM;
    size_t need = fr->len + extra + 1; /* +1: room to NUL-terminate in place */
    if (need <= fr->cap) return 0;
    size_t cap = fr->cap ? fr->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(fr->buf, cap);
    if (!p) return COMMON_ENOMEM;
    fr->buf = p;
    fr->cap = cap;
    return 0;
}

static int append(proto_ndjson_t *fr, const char *p, size_t n) {
    int rc = reserve(fr, n);
    if (rc) return rc;
    memcpy(fr->buf + fr->len, p, n);
    fr->len += n;
    return 0;
}

int proto_ndjson_feed(proto_ndjson_t *fr, const void *data, size_t n) {
    if (fr->rpos > 0) { /* drop consumed lines */
        memmove(fr->buf, fr->buf + fr->rpos, fr->len - fr->rpos);
        fr->len -= fr->rpos;
        fr->rpos = 0;
    }
    const char *p = data, *end = p + n;
    int rc;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p);
        if (fr->skipping) {
            if (!nl) break;
            fr->skipping = 0;
            p = nl + 1;
            continue;
        }
        if (seg > fr->max_line - fr->partial) {
            /* Over the limit: drop what we hold of it and leave the marker. */
            fr->len -= fr->partial;
            fr->partial = 0;
            if ((rc = append(fr, "\n", 1))) return rc;
            if (!nl) {
                fr->skipping = 1;
                break;
            }
            p = nl + 1;
            continue;
        }
        if (!nl) {
            if ((rc = append(fr, p, seg))) return rc;
            fr->partial += seg;
            break;
        }
        size_t total = fr->partial + seg;
        int empty = total == 0 || (total == 1 && (seg ? p[0] : fr->buf[fr->len - 1]) == '\r');
        if (empty) {
            fr->len -= fr->partial;
        } else {
            if ((rc = reserve(fr, seg + 1))) return rc;
            memcpy(fr->buf + fr->len, p, seg);
            fr->buf[fr->len + seg] = '\n';
            fr->len += seg + 1;
        }
        fr->partial = 0;
        p = nl + 1;
    }
    return 0;
}

int proto_ndjson_next(proto_ndjson_t *fr, const char **line, size_t *len) {
    size_t complete_end = fr->len - fr->partial;
    if (fr->rpos >= complete_end) return 0;
    char *start = fr->buf + fr->rpos;
    char *nl = memchr(start, '\n', complete_end - fr->rpos);
    if (!nl) return 0; /* cannot happen: the complete region ends with '\n' */
    size_t l = (size_t)(nl - start);
    fr->rpos += l + 1;
    if (l == 0) return PROTO_ELINE_TOO_LONG;
    if (start[l - 1] == '\r') l--;
    if (!common_utf8_valid(start, l)) return COMMON_EUTF8;
    start[l] = '\0';
    *line = start;
    *len = l;
    return 1;
}

size_t proto_ndjson_buffered(const proto_ndjson_t *fr) {
    return fr->len - fr->rpos;
}

size_t proto_ndjson_max_line(const proto_ndjson_t *fr) {
    return fr->max_line;
}

int proto_ndjson_note_bad(proto_ndjson_t *fr) {
    if (fr->bad < UINT32_MAX) fr->bad++;
    return fr->bad > PROTO_MAX_BAD_LINES;
}

unsigned proto_ndjson_bad_count(const proto_ndjson_t *fr) {
    return fr->bad;
}
