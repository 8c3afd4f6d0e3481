/* SPDX-License-Identifier: MIT */
/*
 * fuzz_secretstream: the secret-stream core.
 * Input byte 0 selects a mode:
 *   0: raw bytes into a standalone (Noise XX) responder: handshake framing and parsing.
 *   1: raw bytes into a stream that is past its header (keys fixed): data-frame parsing.
 *   2: a stream pair with fixed keys; the input gives message lengths and contents that A
 *      seals, an optional byte flip on the wire and the chunk size used to feed B. Without
 *      a flip B must deliver exactly what A sent; with one, B must fail before delivering
 *      anything wrong.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "dht/dht_sstream.h"

static common_vclock_t VC = {1, 1};
static common_seeded_rng_t RNG;
static common_env_t ENV;
static dht_keypair_t KP;
static dht_noise_result_t KA, KB;

static void init_once(void) {
    static int done;
    if (done) return;
    if (sodium_init() < 0) abort();
    ENV.clock = common_clock_virtual(&VC);
    ENV.rng = common_rng_seeded(&RNG, 1);
    uint8_t seed[32];
    memset(seed, 9, 32);
    dht_crypto_keypair_seed(&KP, seed);
    memset(&KA, 0x11, sizeof KA);
    memset(KA.rx, 0x22, 32);
    memcpy(KB.tx, KA.rx, 32);
    memcpy(KB.rx, KA.tx, 32);
    memcpy(KB.hash, KA.hash, 64);
    done = 1;
}

static void take(dht_sstream_t *s, uint8_t *buf, size_t cap, size_t *len) {
    const uint8_t *p;
    size_t n;
    dht_sstream_output(s, &p, &n);
    if (*len + n > cap) abort();
    memcpy(buf + *len, p, n);
    *len += n;
    dht_sstream_output_consume(s, n);
}

/* feed everything, collecting DATA into out; returns the first error */
static int feed_all(dht_sstream_t *s, const uint8_t *in, size_t len, size_t chunk, int inplace,
                    uint8_t *out, size_t cap, size_t *outlen) {
    size_t off = 0;
    while (off < len) {
        size_t piece = len - off < chunk ? len - off : chunk;
        uint8_t *tmp = malloc(piece);
        if (!tmp) abort();
        memcpy(tmp, in + off, piece);
        size_t done = 0;
        while (done < piece) {
            size_t used;
            dht_sstream_event_t ev;
            int rc = inplace ? dht_sstream_feed_inplace(s, tmp + done, piece - done, &used, &ev)
                             : dht_sstream_feed(s, tmp + done, piece - done, &used, &ev);
            done += used;
            if (rc) {
                free(tmp);
                return rc;
            }
            if (ev.type == DHT_SSTREAM_EV_DATA) {
                if (*outlen + ev.len > cap) abort();
                memcpy(out + *outlen, ev.data, ev.len);
                *outlen += ev.len;
            }
            if (used == 0 && ev.type == DHT_SSTREAM_EV_NONE) break;
        }
        free(tmp);
        off += piece;
    }
    return 0;
}

#define CAP (1u << 20)
static uint8_t wire[CAP], sent[CAP], got[CAP];

static void mode_raw_handshake(const uint8_t *d, size_t n) {
    dht_sstream_t *s = dht_sstream_new_xx(d && n ? d[0] & 1 : 0, &KP, &ENV, NULL, NULL);
    size_t gl = 0;
    feed_all(s, d, n, n ? (size_t)(d[0] % 7) + 1 : 1, 0, got, CAP, &gl);
    size_t wl = 0;
    take(s, wire, CAP, &wl);
    dht_sstream_free(s);
}

static void mode_raw_data(const uint8_t *d, size_t n) {
    dht_sstream_opts_t o = {.max_frame = 4096};
    dht_sstream_t *a = dht_sstream_new_keys(1, &KA, &ENV, &o, NULL);
    dht_sstream_t *b = dht_sstream_new_keys(0, &KB, &ENV, &o, NULL);
    size_t wl = 0, gl = 0;
    take(a, wire, CAP, &wl);
    if (feed_all(b, wire, wl, wl, 0, got, CAP, &gl) != 0) abort(); /* a valid header */
    feed_all(b, d, n, n ? (size_t)(d[0] % 13) + 1 : 1, n & 1, got, CAP, &gl);
    dht_sstream_free(a);
    dht_sstream_free(b);
}

static void mode_pair(const uint8_t *d, size_t n) {
    if (n < 6) return;
    size_t chunk = (size_t)d[0] * 3 + 1;
    int flip = d[1] & 1;
    size_t flip_pos = (size_t)d[2] | ((size_t)d[3] << 8);
    uint8_t mask = d[4] ? d[4] : 0x80;
    int inplace = d[5] & 1;
    d += 6;
    n -= 6;
    dht_sstream_t *a = dht_sstream_new_keys(1, &KA, &ENV, NULL, NULL);
    dht_sstream_t *b = dht_sstream_new_keys(0, &KB, &ENV, NULL, NULL);
    size_t wl = 0, sl = 0, gl = 0;
    take(a, wire, CAP, &wl);
    size_t header_end = wl;
    static size_t starts[CAP / 20 + 1];
    size_t nstarts = 0;
    /* messages: a length byte then that many bytes (0 = an empty message) */
    while (n) {
        size_t len = d[0];
        d++;
        n--;
        if (len > n) len = n;
        if (wl + dht_sstream_frame_size(len) > CAP) break;
        if (dht_sstream_seal(a, d, len, wire + wl) != 0) abort();
        starts[nstarts++] = wl;
        memcpy(sent + sl, d, len);
        sl += len;
        wl += dht_sstream_frame_size(len);
        d += len;
        n -= len;
    }
    flip = flip && wl > header_end;
    int flip_in_length = 0;
    if (flip) {
        size_t at = header_end + flip_pos % (wl - header_end);
        wire[at] ^= mask;
        for (size_t i = 0; i < nstarts; i++)
            if (at >= starts[i] && at < starts[i] + 3) flip_in_length = 1;
    }
    int rc = feed_all(b, wire, wl, chunk, inplace, got, CAP, &gl);
    if (!flip) {
        if (rc != 0 || gl != sl || memcmp(got, sent, sl) != 0) abort();
    } else {
        /* whatever was delivered must be a prefix of what was sent */
        if (gl > sl || memcmp(got, sent, gl) != 0) abort();
        /* a flipped body byte is always detected; a flipped length may instead make the
         * receiver wait for bytes that never come (nothing wrong is delivered either way) */
        if (rc == 0 && !flip_in_length) abort();
    }
    dht_sstream_free(a);
    dht_sstream_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_once();
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0: mode_raw_handshake(data + 1, size - 1); break;
    case 1: mode_raw_data(data + 1, size - 1); break;
    default: mode_pair(data + 1, size - 1); break;
    }
    return 0;
}
