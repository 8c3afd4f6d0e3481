/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the pipeline batcher (agent_pipe_batch).
 *
 * Input: byte 0 = batch size in characters (1..64), byte 1 = feed piece size (1..32) and
 * whether partial flushes are taken (bit 7); the rest is the text (any bytes, also invalid
 * UTF-8). Checked, aborting on any mismatch:
 *   - the batches (full, partial and the final remainder) concatenated are exactly the input;
 *   - no batch is empty or longer than the size in characters (an invalid byte counts as
 *     one character, as in the batcher); partial flushes are shorter than a full batch;
 *   - a batch never ends inside a well-formed multibyte sequence that continues in the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_utf8.h"
#include "agent/agent_pipe_batch.h"

static size_t seq_len(const uint8_t *p, size_t n) {
    /* As the batcher counts: an invalid byte is one character, a cut-short one is 0. */
    int r = common_utf8_char((const char *)p, n);
    return r > 0 ? (size_t)r : r == 0 ? 1 : 0;
}

/* The character boundaries of the whole input, as a bitmap (1 = a character starts here). */
static void boundaries(const uint8_t *d, size_t n, uint8_t *starts) {
    memset(starts, 0, n + 1);
    size_t pos = 0;
    while (pos < n) {
        starts[pos] = 1;
        size_t cl = seq_len(d + pos, n - pos);
        pos += cl ? cl : n - pos;
    }
    starts[n] = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > 8192) return 0;
    size_t chars = 1 + data[0] % 64, piece = 1 + (data[1] & 0x7F) % 32;
    int partials = data[1] >> 7;
    const uint8_t *in = data + 2;
    size_t n = size - 2;
    uint8_t *starts = malloc(n + 1), *out = malloc(n + 1);
    if (!starts || !out) abort();
    boundaries(in, n, starts);
    agent_pipe_batch_t *b = agent_pipe_batch_new(chars, 0);
    if (!b) abort();
    size_t fed = 0, outlen = 0;
    for (int final = 0;; final = fed == n) {
        if (!final) {
            size_t k = piece < n - fed ? piece : n - fed;
            if (agent_pipe_batch_feed(b, (const char *)in + fed, k)) abort();
            fed += k;
        }
        char *s;
        size_t len;
        int r;
        while ((r = agent_pipe_batch_next(b, final, &s, &len)) == 1 ||
               (partials && !final && (r = agent_pipe_batch_partial(b, &s, &len)) == 1)) {
            if (len == 0 || outlen + len > n) abort();
            if (memcmp(s, in + outlen, len)) abort();
            size_t c = 0;
            for (size_t i = outlen; i < outlen + len; i++) c += starts[i];
            if (c > chars) abort();
            outlen += len;
            if (!starts[outlen] && !final) abort(); /* cut inside a character */
            free(s);
        }
        if (r < 0) abort();
        if (final) break;
    }
    if (outlen != n || agent_pipe_batch_pending(b) != 0) abort();
    agent_pipe_batch_free(b);
    free(starts);
    free(out);
    return 0;
}
