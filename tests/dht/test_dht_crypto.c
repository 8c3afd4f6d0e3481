/* SPDX-License-Identifier: MIT */
/* Crypto building blocks, byte-exact against hypercore-crypto, noise-handshake's hmac/hkdf
 * and noise-curve-ed (vectors from tests/interop/secretstream/gen_crypto_vectors.js). */
#include <sodium.h>
#include <string.h>

#include "common/common_err.h"
#include "dht/dht_crypto.h"
#include "dht_test_vectors.h"
#include "tests/test.h"

static tv_set_t tv;

static void load(void) {
    if (sodium_init() < 0) abort();
    if (!tv.n && tv_load(&tv, "crypto_vectors.txt") != 0) abort();
}

#define TV(name) (tv_get(&tv, (name))->data)

TEST(namespaces) {
    load();
    static const uint8_t ids[] = {0, 1, 4, 5, 6, 10};
    for (size_t i = 0; i < sizeof ids; i++) {
        char name[32];
        snprintf(name, sizeof name, "ns_dht_%u", ids[i]);
        uint8_t out[32];
        dht_crypto_ns_dht(ids[i], out);
        ASSERT_MEM_EQ(out, TV(name), 32);
    }
    for (uint8_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "ns_ss_%u", i);
        uint8_t out[32];
        dht_crypto_ns_secretstream(i, out);
        ASSERT_MEM_EQ(out, TV(name), 32);
    }
    uint8_t a[32], b[32];
    dht_crypto_ns_dht(DHT_NS_ANNOUNCE, a);
    dht_crypto_ns_dht(DHT_NS_UNANNOUNCE, b);
    ASSERT_TRUE(memcmp(a, b, 32) != 0);
}

TEST(blake2b) {
    load();
    const tv_entry_t *m = tv_get(&tv, "b2_msg");
    uint8_t out[32];
    dht_crypto_hash(out, m->data, m->len);
    ASSERT_MEM_EQ(out, TV("b2_plain"), 32);
    dht_crypto_hash_keyed(out, m->data, m->len, TV("b2_key"), 32);
    ASSERT_MEM_EQ(out, TV("b2_keyed"), 32);
    dht_crypto_part_t parts[3] = {{m->data, 10}, {m->data + 10, 0}, {m->data + 10, m->len - 10}};
    dht_crypto_hash_parts(out, 32, parts, 3, TV("b2_key"), 32);
    ASSERT_MEM_EQ(out, TV("b2_keyed"), 32);
    dht_crypto_hash_parts(out, 32, parts, 3, NULL, 0);
    ASSERT_MEM_EQ(out, TV("b2_plain"), 32);
}

TEST(hmac) {
    load();
    const tv_entry_t *m = tv_get(&tv, "b2_msg");
    static const int kls[] = {0, 64, 128, 200};
    for (size_t i = 0; i < 4; i++) {
        char kn[32], on[32];
        snprintf(kn, sizeof kn, "hmac_key%d", kls[i]);
        snprintf(on, sizeof on, "hmac_out%d", kls[i]);
        const tv_entry_t *k = tv_get(&tv, kn);
        ASSERT_EQ_U64(k->len, (size_t)kls[i]);
        uint8_t out[64];
        dht_crypto_part_t one = {m->data, m->len};
        dht_crypto_hmac(out, k->data, k->len, &one, 1);
        ASSERT_MEM_EQ(out, TV(on), 64);
        dht_crypto_part_t two[2] = {{m->data, 33}, {m->data + 33, m->len - 33}};
        dht_crypto_hmac(out, k->data, k->len, two, 2);
        ASSERT_MEM_EQ(out, TV(on), 64);
    }
}

TEST(hkdf) {
    load();
    uint8_t o1[64], o2[64], o3[64];
    dht_crypto_hkdf(TV("hkdf_ck"), TV("hkdf_ikm"), 32, o1, o2, o3);
    ASSERT_MEM_EQ(o1, TV("hkdf_o1"), 64);
    ASSERT_MEM_EQ(o2, TV("hkdf_o2"), 64);
    ASSERT_MEM_EQ(o3, TV("hkdf_o3"), 64);
    dht_crypto_hkdf(TV("hkdf_ck"), NULL, 0, o1, o2, NULL);
    ASSERT_MEM_EQ(o1, TV("hkdf_empty_o1"), 64);
    ASSERT_MEM_EQ(o2, TV("hkdf_empty_o2"), 64);
}

TEST(ed25519_dh_and_keys) {
    load();
    dht_keypair_t a, b;
    dht_crypto_keypair_seed(&a, TV("ed_a_seed"));
    dht_crypto_keypair_seed(&b, TV("ed_b_seed"));
    ASSERT_MEM_EQ(a.pk, TV("ed_a_pk"), 32);
    ASSERT_MEM_EQ(b.pk, TV("ed_b_pk"), 32);
    uint8_t ab[32], ba[32];
    ASSERT_OK(dht_crypto_ed25519_dh(ab, a.sk, b.pk));
    ASSERT_OK(dht_crypto_ed25519_dh(ba, b.sk, a.pk));
    ASSERT_MEM_EQ(ab, TV("ed_dh_ab"), 32);
    ASSERT_MEM_EQ(ba, TV("ed_dh_ba"), 32);
    /* a non-point / small-order key is refused */
    uint8_t bad[32] = {0};
    ASSERT_ERR(dht_crypto_ed25519_dh(ab, a.sk, bad), COMMON_ECRYPTO);
    uint8_t t[32];
    dht_crypto_target(a.pk, t);
    ASSERT_MEM_EQ(t, TV("target_a"), 32);
    uint8_t sig[64];
    dht_crypto_sign(sig, "hello", 5, a.sk);
    ASSERT_OK(dht_crypto_verify(sig, "hello", 5, a.pk));
    ASSERT_ERR(dht_crypto_verify(sig, "hellO", 5, a.pk), COMMON_ECRYPTO);
    dht_keypair_t r1, r2;
    dht_crypto_keypair_random(&r1);
    dht_crypto_keypair_random(&r2);
    ASSERT_TRUE(memcmp(r1.pk, r2.pk, 32) != 0);
    dht_crypto_keypair_wipe(&r1);
    uint8_t z[sizeof r1] = {0};
    ASSERT_MEM_EQ(&r1, z, sizeof r1);
}

TEST(cleanup) {
    tv_free(&tv);
}

TEST_MAIN(TEST_ENTRY(namespaces), TEST_ENTRY(blake2b), TEST_ENTRY(hmac), TEST_ENTRY(hkdf),
          TEST_ENTRY(ed25519_dh_and_keys), TEST_ENTRY(cleanup))
