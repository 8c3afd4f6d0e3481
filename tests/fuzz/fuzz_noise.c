/* SPDX-License-Identifier: MIT */
/*
 * fuzz_noise: the Noise IK/XX state machine and the compact-encoding reader.
 * Input byte 0 selects a mode:
 *   0: the rest is a msg1 fed to an XX or IK responder (byte 1 picks the pattern)
 *   1: a valid handshake whose payloads come from the input, with one optional byte flip
 *      (position and mask from the input) in one message; the two sides must agree
 *      exactly when nothing was flipped, and a handshake with a flipped byte must fail.
 *   2: the rest is decoded as a sequence of compact-encoding fields (opcodes from input).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht_cenc.h"
#include "dht/dht_noise.h"

static dht_keypair_t KI, KR;
static uint8_t PRO[32];

static void init_once(void) {
    static int done;
    if (done) return;
    if (sodium_init() < 0) abort();
    uint8_t seed[32];
    memset(seed, 1, 32);
    dht_crypto_keypair_seed(&KI, seed);
    memset(seed, 2, 32);
    dht_crypto_keypair_seed(&KR, seed);
    dht_noise_prologue_hyperdht(PRO);
    done = 1;
}

static void mode_raw(const uint8_t *d, size_t n) {
    if (!n) return;
    dht_noise_pattern_t pat = d[0] & 1 ? DHT_NOISE_IK : DHT_NOISE_XX;
    dht_noise_t *r = dht_noise_new(pat, 0, &KR, pat == DHT_NOISE_IK ? PRO : NULL,
                                   pat == DHT_NOISE_IK ? 32 : 0, NULL, NULL, NULL);
    uint8_t pl[DHT_NOISE_MAX_MSG];
    size_t plen;
    if (dht_noise_recv(r, d + 1, n - 1, pl, sizeof pl, &plen) == 0) {
        uint8_t out[DHT_NOISE_MAX_MSG];
        size_t ol;
        dht_noise_send(r, pl, plen > 1000 ? 1000 : plen, out, sizeof out, &ol);
    }
    dht_noise_free(r);
}

static void mode_handshake(const uint8_t *d, size_t n) {
    if (n < 8) return;
    dht_noise_pattern_t pat = d[0] & 1 ? DHT_NOISE_IK : DHT_NOISE_XX;
    int nmsgs = pat == DHT_NOISE_IK ? 2 : 3;
    int flip_msg = d[1] % 4; /* 3 = no flip */
    size_t flip_pos = (size_t)d[2] | ((size_t)d[3] << 8);
    uint8_t mask = d[4] ? d[4] : 1;
    d += 5;
    n -= 5;
    dht_noise_t *s[2];
    s[0] = dht_noise_new(pat, 1, &KI, PRO, 32, KR.pk, NULL, NULL);
    s[1] = dht_noise_new(pat, 0, &KR, PRO, 32, NULL, NULL, NULL);
    uint8_t e1[32], e2[32];
    memset(e1, 3, 32);
    memset(e2, 4, 32);
    dht_noise_set_ephemeral(s[0], e1);
    dht_noise_set_ephemeral(s[1], e2);
    int flipped = 0, failed = 0;
    for (int k = 0; k < nmsgs && !failed; k++) {
        size_t plen = n / (size_t)(nmsgs - k);
        if (plen > 2000) plen = 2000;
        static uint8_t msg[DHT_NOISE_MAX_MSG], pl[DHT_NOISE_MAX_MSG];
        size_t ml, got;
        if (dht_noise_send(s[k % 2], d, plen, msg, sizeof msg, &ml) != 0) {
            /* only possible when an earlier flip gave the sender a bad ephemeral key */
            if (!flipped) abort();
            failed = 1;
            break;
        }
        if (k == flip_msg) {
            msg[flip_pos % ml] ^= mask;
            flipped = 1;
        }
        int rc = dht_noise_recv(s[1 - k % 2], msg, ml, pl, sizeof pl, &got);
        if (rc != 0) {
            if (!flipped) abort(); /* an honest message must be accepted */
            failed = 1;
            break;
        }
        if (!flipped && (got != plen || memcmp(pl, d, plen) != 0)) abort();
        d += plen;
        n -= plen;
    }
    /* a modified message may pass unauthenticated (XX msg1), but the handshake as a whole
     * must then fail */
    if (flipped && !failed) abort();
    if (!failed) {
        dht_noise_result_t a, b;
        if (dht_noise_result(s[0], &a) || dht_noise_result(s[1], &b)) abort();
        if (memcmp(a.tx, b.rx, 32) || memcmp(a.rx, b.tx, 32) || memcmp(a.hash, b.hash, 64)) abort();
    }
    dht_noise_free(s[0]);
    dht_noise_free(s[1]);
}

static void mode_cenc(const uint8_t *d, size_t n) {
    if (!n) return;
    size_t ops = d[0];
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, d + 1, n - 1);
    uint8_t scratch[256];
    dht_ipv4_addr_t a4[8];
    dht_ipv6_addr_t a6[4];
    for (size_t i = 0; i < ops + 4; i++) {
        uint64_t v = 0;
        size_t len;
        const uint8_t *p;
        switch ((i * 7 + ops) % 9) {
        case 0: dht_cenc_get_uint(&r, &v); break;
        case 1: dht_cenc_get_buffer_ref(&r, &p, &len); break;
        case 2: dht_cenc_get_ipv4_array(&r, a4, 8, &len); break;
        case 3: dht_cenc_get_ipv6_array(&r, a6, 4, &len); break;
        case 4: dht_cenc_get_fixed(&r, scratch, 32); break;
        case 5: dht_cenc_get_buffer(&r, scratch, sizeof scratch, &len); break;
        case 6: dht_cenc_get_u24(&r, (uint32_t *)&v); break;
        case 7: dht_cenc_get_uint_max(&r, 1000, &v); break;
        default: dht_cenc_get_array_len(&r, 1000, 6, &len); break;
        }
        if (r.pos > r.len) abort();
    }
    /* round trip of the first varint of the input */
    dht_cenc_reader_t r2;
    dht_cenc_reader_init(&r2, d + 1, n - 1);
    uint64_t v;
    if (dht_cenc_get_uint(&r2, &v) == 0) {
        uint8_t b[9];
        dht_cenc_writer_t w;
        dht_cenc_writer_init(&w, b, sizeof b);
        dht_cenc_put_uint(&w, v);
        size_t wl;
        if (dht_cenc_writer_finish(&w, &wl) || wl != dht_cenc_uint_size(v)) abort();
        dht_cenc_reader_t r3;
        uint64_t v2;
        dht_cenc_reader_init(&r3, b, wl);
        if (dht_cenc_get_uint(&r3, &v2) || v2 != v) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_once();
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0: mode_raw(data + 1, size - 1); break;
    case 1: mode_handshake(data + 1, size - 1); break;
    default: mode_cenc(data + 1, size - 1); break;
    }
    return 0;
}
