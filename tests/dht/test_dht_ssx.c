/* SPDX-License-Identifier: MIT */
/* dht_ssx against libsodium's own crypto_secretstream_xchacha20poly1305, byte for byte,
 * for both primitive backends: every tag, sizes around every block and padding boundary,
 * rekeys, a counter wrap, in-place decryption, and tampering. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "dht/dht_ssx.h"
#include "tests/test.h"

typedef crypto_secretstream_xchacha20poly1305_state ref_t;

/* Sizes: 0..300 (every padding remainder around the 64-byte blocks), then larger ones. */
static size_t msg_size(unsigned i) {
    static const size_t big[] = {1000, 4095, 4096, 65536, 65536 + 7, 1u << 20, (1u << 20) + 13};
    return i <= 300 ? i : big[(i - 301) % (sizeof big / sizeof big[0])];
}
#define N_MSGS (301u + 7u)

/* A tag sequence with every tag, REKEY included several times. */
static uint8_t msg_tag(unsigned i) {
    return i % 37 == 5    ? DHT_SSX_TAG_REKEY
           : i % 53 == 7  ? DHT_SSX_TAG_PUSH
           : i % 97 == 11 ? DHT_SSX_TAG_FINAL
                          : DHT_SSX_TAG_MESSAGE;
}

static uint8_t *fill(size_t n, unsigned seed) {
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 131u + seed * 7u + 1u);
    return p;
}

static int backend_ok(dht_ssx_backend_t be) {
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    (void)be;
    return 1;
#else
    return be != DHT_SSX_OPENSSL;
#endif
}

/* A random key; libsodium's push state @p ref and ours @p st from its header (@p hdr). */
static int start(dht_ssx_backend_t be, ref_t *ref, dht_ssx_t *st, uint8_t key[32],
                 uint8_t hdr[24]) {
    if (sodium_init() < 0) return -1;
    randombytes_buf(key, 32);
    crypto_secretstream_xchacha20poly1305_init_push(ref, hdr, key);
    return dht_ssx_init(st, key, hdr, be);
}

/* ours push == libsodium push, and libsodium pull accepts ours. */
static void push_matches(test_ctx_t *test_ctx_, dht_ssx_backend_t be) {
    uint8_t key[32], hdr[24];
    ref_t ref, refpull;
    dht_ssx_t st;
    ASSERT_OK(start(be, &ref, &st, key, hdr));
    ASSERT_OK(crypto_secretstream_xchacha20poly1305_init_pull(&refpull, hdr, key));
    for (unsigned i = 0; i < N_MSGS; i++) {
        size_t n = msg_size(i);
        uint8_t tag = msg_tag(i), rtag = 0xff;
        uint8_t *m = fill(n, i), *a = malloc(n + 17), *b = malloc(n + 17), *d = malloc(n + 1);
        crypto_secretstream_xchacha20poly1305_push(&ref, a, NULL, m, n, NULL, 0, tag);
        ASSERT_OK(dht_ssx_push(&st, b, m, n, tag));
        ASSERT_MEM_EQ(a, b, n + 17);
        unsigned long long dl = 0;
        ASSERT_OK(crypto_secretstream_xchacha20poly1305_pull(&refpull, d, &dl, &rtag, b, n + 17,
                                                             NULL, 0));
        ASSERT_EQ_U64(dl, n);
        ASSERT_EQ_U64(rtag, tag);
        ASSERT_MEM_EQ(d, m, n);
        free(m), free(a), free(b), free(d);
    }
    dht_ssx_wipe(&st);
}

/* libsodium push -> ours pull (into a buffer and in place); tampering is refused and leaves
 * the state where it was. */
static void pull_matches(test_ctx_t *test_ctx_, dht_ssx_backend_t be) {
    uint8_t key[32], hdr[24];
    ref_t ref;
    dht_ssx_t st;
    ASSERT_OK(start(be, &ref, &st, key, hdr));
    for (unsigned i = 0; i < N_MSGS; i++) {
        size_t n = msg_size(i);
        uint8_t tag = msg_tag(i), got = 0xff;
        uint8_t *m = fill(n, i), *c = malloc(n + 17), *d = malloc(n + 1);
        crypto_secretstream_xchacha20poly1305_push(&ref, c, NULL, m, n, NULL, 0, tag);
        if (i % 3 == 0) { /* a forged copy first: one flipped bit anywhere */
            uint8_t *bad = malloc(n + 17);
            memcpy(bad, c, n + 17);
            bad[(i * 7919u) % (n + 17)] ^= (uint8_t)(1u << (i % 8));
            memset(d, 0xa5, n + 1);
            ASSERT_EQ_I64(dht_ssx_pull(&st, d, &got, bad, n + 17), -1);
            for (size_t k = 0; k < n; k++) ASSERT_EQ_U64(d[k], 0xa5); /* nothing written */
            ASSERT_EQ_I64(dht_ssx_pull(&st, bad + 1, &got, bad, n + 17), -1);
            free(bad);
        }
        if (i % 2) {
            ASSERT_OK(dht_ssx_pull(&st, c + 1, &got, c, n + 17)); /* in place */
            ASSERT_MEM_EQ(c + 1, m, n);
        } else {
            ASSERT_OK(dht_ssx_pull(&st, d, &got, c, n + 17));
            ASSERT_MEM_EQ(d, m, n);
        }
        ASSERT_EQ_U64(got, tag);
        free(m), free(c), free(d);
    }
    uint8_t shortbuf[16] = {0}, out[1], t;
    ASSERT_EQ_I64(dht_ssx_pull(&st, out, &t, shortbuf, sizeof shortbuf), -1);
    dht_ssx_wipe(&st);
}

/* The 32-bit counter wraps after 2^32 - 1 messages and then rekeys: start both sides just
 * before the wrap (libsodium's state layout is public: k, then counter || inonce). */
static void counter_wrap(test_ctx_t *test_ctx_, dht_ssx_backend_t be) {
    uint8_t key[32], hdr[24];
    ref_t ref;
    dht_ssx_t st;
    ASSERT_OK(start(be, &ref, &st, key, hdr));
    ASSERT_MEM_EQ(st.k, ref.k, 32);
    ASSERT_MEM_EQ(st.nonce, ref.nonce, 12);
    memset(ref.nonce, 0xff, 3), ref.nonce[3] = 0xff, ref.nonce[0] = 0xfe;
    memset(st.nonce, 0xff, 3), st.nonce[3] = 0xff, st.nonce[0] = 0xfe;
    for (unsigned i = 0; i < 4; i++) {
        uint8_t m[40], a[57], b[57];
        memset(m, (int)i, sizeof m);
        crypto_secretstream_xchacha20poly1305_push(&ref, a, NULL, m, sizeof m, NULL, 0, 0);
        ASSERT_OK(dht_ssx_push(&st, b, m, sizeof m, 0));
        ASSERT_MEM_EQ(a, b, sizeof a);
    }
    ASSERT_MEM_EQ(st.k, ref.k, 32); /* rekeyed on the wrap, identically */
    dht_ssx_wipe(&st);
}

TEST(sodium_push_matches_libsodium) {
    push_matches(test_ctx_, DHT_SSX_SODIUM);
}
TEST(sodium_pull_matches_libsodium) {
    pull_matches(test_ctx_, DHT_SSX_SODIUM);
}
TEST(sodium_counter_wrap) {
    counter_wrap(test_ctx_, DHT_SSX_SODIUM);
}

TEST(openssl_backend_available_when_built) {
    uint8_t key[32] = {1}, hdr[24] = {2};
    ASSERT_TRUE(sodium_init() >= 0);
    dht_ssx_t st;
    int rc = dht_ssx_init(&st, key, hdr, DHT_SSX_OPENSSL);
    if (backend_ok(DHT_SSX_OPENSSL)) {
        ASSERT_OK(rc);
        ASSERT_STR_EQ(dht_ssx_backend_name(&st), "openssl");
        dht_ssx_wipe(&st);
        ASSERT_OK(dht_ssx_init(&st, key, hdr, DHT_SSX_AUTO));
        ASSERT_STR_EQ(dht_ssx_backend_name(&st), "openssl");
    } else {
        ASSERT_ERR(rc, COMMON_EUNSUPPORTED);
        ASSERT_OK(dht_ssx_init(&st, key, hdr, DHT_SSX_AUTO));
        ASSERT_STR_EQ(dht_ssx_backend_name(&st), "sodium");
    }
    dht_ssx_wipe(&st);
    ASSERT_OK(dht_ssx_init(&st, key, hdr, DHT_SSX_SODIUM));
    ASSERT_STR_EQ(dht_ssx_backend_name(&st), "sodium");
    dht_ssx_wipe(&st);
    for (size_t i = 0; i < sizeof st; i++) ASSERT_EQ_U64(((uint8_t *)&st)[i], 0);
}

#ifdef SWARMDVM_HAVE_LIBCRYPTO
TEST(openssl_push_matches_libsodium) {
    push_matches(test_ctx_, DHT_SSX_OPENSSL);
}
TEST(openssl_pull_matches_libsodium) {
    pull_matches(test_ctx_, DHT_SSX_OPENSSL);
}
TEST(openssl_counter_wrap) {
    counter_wrap(test_ctx_, DHT_SSX_OPENSSL);
}
#define OPENSSL_TESTS                                                                       \
    TEST_ENTRY(openssl_push_matches_libsodium), TEST_ENTRY(openssl_pull_matches_libsodium), \
        TEST_ENTRY(openssl_counter_wrap),
#else
#define OPENSSL_TESTS
#endif

TEST_MAIN(TEST_ENTRY(sodium_push_matches_libsodium), TEST_ENTRY(sodium_pull_matches_libsodium),
          TEST_ENTRY(sodium_counter_wrap), TEST_ENTRY(openssl_backend_available_when_built),
          OPENSSL_TESTS)
