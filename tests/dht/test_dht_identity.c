/* SPDX-License-Identifier: MIT */
/* Identity file: created once with mode 0600, loaded unchanged later, refused when group
 * or world readable, malformed files rejected. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common_err.h"
#include "common/common_fs.h"
#include "dht/dht_identity.h"
#include "tests/test.h"

static char dir[256];

static void mkdir_tmp(void) {
    if (sodium_init() < 0) abort();
    snprintf(dir, sizeof dir, "/tmp/swarmdvm-test-identity-XXXXXX");
    if (!mkdtemp(dir)) abort();
}

static void rm_tmp(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, DHT_IDENTITY_FILE);
    unlink(p);
    rmdir(dir);
}

TEST(create_then_load) {
    mkdir_tmp();
    dht_keypair_t a, b;
    int created = -1;
    ASSERT_ERR(dht_identity_load(dir, &a), COMMON_ENOTFOUND);
    ASSERT_OK(dht_identity_load_or_create(dir, NULL, &a, &created));
    ASSERT_EQ_I64(created, 1);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, DHT_IDENTITY_FILE);
    struct stat st;
    ASSERT_OK(stat(p, &st));
    ASSERT_EQ_U64(st.st_mode & 0777, 0600);
    ASSERT_OK(dht_identity_load_or_create(dir, NULL, &b, &created));
    ASSERT_EQ_I64(created, 0);
    ASSERT_MEM_EQ(a.pk, b.pk, 32);
    ASSERT_MEM_EQ(a.sk, b.sk, 64);
    /* the key pair is a valid signing key */
    uint8_t sig[64];
    dht_crypto_sign(sig, "m", 1, b.sk);
    ASSERT_OK(dht_crypto_verify(sig, "m", 1, a.pk));
    /* group/world-readable: refused, not used */
    ASSERT_OK(chmod(p, 0640));
    ASSERT_ERR(dht_identity_load_or_create(dir, NULL, &b, &created), COMMON_EPERM);
    ASSERT_OK(chmod(p, 0604));
    ASSERT_ERR(dht_identity_load(dir, &b), COMMON_EPERM);
    ASSERT_OK(chmod(p, 0600));
    ASSERT_OK(dht_identity_load(dir, &b));
    dht_crypto_keypair_wipe(&a);
    dht_crypto_keypair_wipe(&b);
    rm_tmp();
}

TEST(seeded_env_is_deterministic) {
    mkdir_tmp();
    common_seeded_rng_t s1;
    common_env_t env = {common_clock_system(), common_rng_seeded(&s1, 42), NULL};
    dht_keypair_t a, b;
    ASSERT_OK(dht_identity_load_or_create(dir, &env, &a, NULL));
    rm_tmp();
    mkdir_tmp();
    common_seeded_rng_t s2;
    common_env_t env2 = {common_clock_system(), common_rng_seeded(&s2, 42), NULL};
    ASSERT_OK(dht_identity_load_or_create(dir, &env2, &b, NULL));
    ASSERT_MEM_EQ(a.pk, b.pk, 32);
    rm_tmp();
}

TEST(malformed_files_rejected) {
    mkdir_tmp();
    static const char *bad[] = {
        "",
        "swarmdvm-ed25519-seed-v1 00\n",
        "swarmdvm-ed25519-seed-v2 "
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        "swarmdvm-ed25519-seed-v1 "
        "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        "swarmdvm-ed25519-seed-v1 "
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fX",
        "swarmdvm-ed25519-seed-v1 "
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nextra lines\n",
    };
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, DHT_IDENTITY_FILE);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(p);
        ASSERT_OK(common_write_private(p, bad[i], strlen(bad[i]), 0));
        dht_keypair_t kp;
        int rc = dht_identity_load_or_create(dir, NULL, &kp, NULL);
        if (rc != COMMON_EPROTO) TEST_FAIL_("case %zu: rc %d", i, rc);
    }
    /* a good one, written by hand, gives the seed's key pair */
    const char *good = "swarmdvm-ed25519-seed-v1 "
                       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    unlink(p);
    ASSERT_OK(common_write_private(p, good, strlen(good), 0));
    dht_keypair_t kp, want;
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i;
    dht_crypto_keypair_seed(&want, seed);
    ASSERT_OK(dht_identity_load(dir, &kp));
    ASSERT_MEM_EQ(kp.sk, want.sk, 64);
    rm_tmp();
}

TEST_MAIN(TEST_ENTRY(create_then_load), TEST_ENTRY(seeded_env_is_deterministic),
          TEST_ENTRY(malformed_files_rejected))
