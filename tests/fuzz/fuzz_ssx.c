/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ssx: dht_ssx (secretstream message crypto) against libsodium's own
 * crypto_secretstream_xchacha20poly1305, differentially.
 * Input byte 0 picks the backend (even: libsodium primitives, odd: auto, i.e. libcrypto
 * when built with it). Then records: [tag][flip][len lo][len hi][len bytes of message].
 * Each message is pushed by libsodium and by dht_ssx (the outputs must be equal); a copy
 * with one byte changed (when flip says so) must be refused by dht_ssx_pull without
 * writing anything, and the genuine frame must then decrypt to the message and tag.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht_ssx.h"

#define MAX_MSG 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        if (sodium_init() < 0) abort();
        init = 1;
    }
    if (size < 1) return 0;
    dht_ssx_backend_t be = data[0] & 1 ? DHT_SSX_AUTO : DHT_SSX_SODIUM;
    data++, size--;
    uint8_t key[32];
    uint8_t hdr[24];
    memset(key, 0x5a, sizeof key);
    crypto_secretstream_xchacha20poly1305_state ref;
    crypto_secretstream_xchacha20poly1305_init_push(&ref, hdr, key);
    dht_ssx_t push, pull;
    if (dht_ssx_init(&push, key, hdr, be) != 0) abort();
    if (dht_ssx_init(&pull, key, hdr, be) != 0) abort();
    static uint8_t a[MAX_MSG + 17], b[MAX_MSG + 17], bad[MAX_MSG + 17], m[MAX_MSG + 1];
    while (size >= 4) {
        uint8_t tag = data[0] & 3, flip = data[1];
        size_t n = ((size_t)data[2] | (size_t)data[3] << 8) % (MAX_MSG + 1);
        data += 4, size -= 4;
        if (n > size) n = size;
        const uint8_t *msg = data;
        data += n, size -= n;
        crypto_secretstream_xchacha20poly1305_push(&ref, a, NULL, msg, n, NULL, 0, tag);
        if (dht_ssx_push(&push, b, msg, n, tag) != 0) abort();
        if (memcmp(a, b, n + 17) != 0) abort();
        uint8_t got = 0xff;
        if (flip) {
            memcpy(bad, a, n + 17);
            bad[flip % (n + 17)] ^= (uint8_t)(flip | 1);
            memset(m, 0xa5, n + 1);
            if (dht_ssx_pull(&pull, m, &got, bad, n + 17) != -1) abort();
            for (size_t i = 0; i < n; i++)
                if (m[i] != 0xa5) abort();
        }
        if (dht_ssx_pull(&pull, m, &got, a, n + 17) != 0) abort();
        if (got != tag || (n && memcmp(m, msg, n) != 0)) abort();
    }
    dht_ssx_wipe(&push);
    dht_ssx_wipe(&pull);
    return 0;
}
