/* SPDX-License-Identifier: MIT */
#include "common/common_utf8.h"
#include "agent/agent_pipe_batch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

struct agent_pipe_batch {
    size_t chars, max;
    char *buf;
    size_t len, cap;
};

agent_pipe_batch_t *agent_pipe_batch_new(size_t batch_chars, size_t max_bytes) {
    if (batch_chars == 0) return NULL;
    agent_pipe_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->chars = batch_chars;
    b->max = max_bytes ? max_bytes : AGENT_PIPE_MAX_BUFFER;
    return b;
}

void agent_pipe_batch_free(agent_pipe_batch_t *b) {
    if (!b) return;
    free(b->buf);
    free(b);
}

size_t agent_pipe_batch_pending(const agent_pipe_batch_t *b) {
    return b->len;
}

int agent_pipe_batch_feed(agent_pipe_batch_t *b, const char *text, size_t len) {
    if (len == 0) return 0;
    if (len > b->max || b->len > b->max - len) return COMMON_ETOOBIG;
    if (b->len + len + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + len + 1) nc *= 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) return COMMON_ENOMEM;
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, text, len);
    b->len += len;
    return 0;
}

/* Length of the UTF-8 character at p[0..n): 1..4 for a well-formed one, 1 for an invalid
 * byte, 0 when the (otherwise valid) sequence is cut short by the end of the buffer. */
static size_t char_len(const unsigned char *p, size_t n) {
    int r = common_utf8_char((const char *)p, n);
    return r > 0 ? (size_t)r : r == 0 ? 1 : 0;
}

static int is_ws(const unsigned char *p, size_t cl) {
    return cl == 1 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r');
}
static int is_stop_ascii(const unsigned char *p, size_t cl) {
    return cl == 1 && (p[0] == '.' || p[0] == '!' || p[0] == '?');
}
static int is_stop_cjk(const unsigned char *p, size_t cl) {
    if (cl != 3) return 0;
    return (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82) || /* 。 */
           (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x81) || /* ！ */
           (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x9F);   /* ？ */
}

static int emit(agent_pipe_batch_t *b, size_t cut, char **out, size_t *outlen) {
    char *s = malloc(cut + 1);
    if (!s) return COMMON_ENOMEM;
    memcpy(s, b->buf, cut);
    s[cut] = 0;
    memmove(b->buf, b->buf + cut, b->len - cut);
    b->len -= cut;
    *out = s;
    *outlen = cut;
    return 1;
}

int agent_pipe_batch_next(agent_pipe_batch_t *b, int final, char **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    if (b->len == 0) return 0;
    const unsigned char *p = (const unsigned char *)b->buf;
    size_t pos = 0, n = 0, half = b->chars / 2;
    size_t sent_cut = 0, ws_cut = 0;
    int after_stop = 0; /* the last non-whitespace character ended a sentence */
    while (pos < b->len && n < b->chars) {
        size_t cl = char_len(p + pos, b->len - pos);
        if (cl == 0) break; /* incomplete sequence at the end */
        const unsigned char *c = p + pos;
        pos += cl;
        n++;
        if (is_ws(c, cl)) {
            if (n > half) {
                ws_cut = pos;
                if (after_stop || c[0] == '\n') sent_cut = pos;
            }
        } else {
            after_stop = is_stop_ascii(c, cl);
            if (is_stop_cjk(c, cl) && n > half) sent_cut = pos;
        }
    }
    if (n < b->chars) {
        if (!final) return 0;
        return emit(b, b->len, out, outlen); /* the remainder, whatever it is */
    }
    size_t cut = sent_cut ? sent_cut : ws_cut ? ws_cut : pos;
    return emit(b, cut, out, outlen);
}

int agent_pipe_batch_partial(agent_pipe_batch_t *b, char **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    const unsigned char *p = (const unsigned char *)b->buf;
    size_t pos = 0, sent_cut = 0, ws_cut = 0;
    int after_stop = 0;
    while (pos < b->len) {
        size_t cl = char_len(p + pos, b->len - pos);
        if (cl == 0) break;
        const unsigned char *c = p + pos;
        pos += cl;
        if (is_ws(c, cl)) {
            ws_cut = pos;
            if (after_stop || c[0] == '\n') sent_cut = pos;
        } else {
            after_stop = is_stop_ascii(c, cl);
            if (is_stop_cjk(c, cl)) sent_cut = pos;
        }
    }
    size_t cut = sent_cut ? sent_cut : ws_cut ? ws_cut : pos;
    if (cut == 0) return 0;
    return emit(b, cut, out, outlen);
}
