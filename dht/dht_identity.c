/* SPDX-License-Identifier: MIT */
/* Identity key file: see dht_identity.h for the contract. */
#include "dht/dht_identity.h"

#include <sodium.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_fs.h"

#define TAG      "swarmdvm-ed25519-seed-v1 "
#define TAG_LEN  (sizeof TAG - 1)
#define FILE_LEN (TAG_LEN + 64 + 1)

static int path_of(const char *datadir, char *out, size_t cap) {
    if (!datadir) return COMMON_EINVAL;
    return common_path_join(out, cap, datadir, DHT_IDENTITY_FILE);
}

int dht_identity_load(const char *datadir, dht_keypair_t *kp) {
    char path[4096];
    int rc = path_of(datadir, path, sizeof path);
    if (rc) return rc;
    char buf[FILE_LEN + 8];
    size_t len = 0;
    rc = common_read_private(path, buf, sizeof buf, &len);
    if (rc == COMMON_ETOOBIG) rc = COMMON_EPROTO;
    if (rc) {
        sodium_memzero(buf, sizeof buf);
        return rc;
    }
    uint8_t seed[32];
    size_t got = 0;
    rc = COMMON_EPROTO;
    if ((len == FILE_LEN || len == FILE_LEN - 1) && memcmp(buf, TAG, TAG_LEN) == 0 &&
        (len == FILE_LEN - 1 || buf[FILE_LEN - 1] == '\n') &&
        common_hex_decode(buf + TAG_LEN, 64, seed, 32, &got) == 0 && got == 32) {
        dht_crypto_keypair_seed(kp, seed);
        rc = 0;
    }
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int dht_identity_load_or_create(const char *datadir, const common_env_t *env, dht_keypair_t *kp,
                                int *created) {
    if (created) *created = 0;
    int rc = dht_identity_load(datadir, kp);
    if (rc != COMMON_ENOTFOUND) return rc;
    char path[4096];
    rc = path_of(datadir, path, sizeof path);
    if (rc) return rc;
    uint8_t seed[32];
    char buf[FILE_LEN + 1];
    if (env)
        common_random(env, seed, sizeof seed);
    else
        randombytes_buf(seed, sizeof seed);
    memcpy(buf, TAG, TAG_LEN);
    common_hex_encode(seed, 32, buf + TAG_LEN);
    buf[FILE_LEN - 1] = '\n';
    rc = common_write_private(path, buf, FILE_LEN, 1);
    sodium_memzero(buf, sizeof buf);
    if (rc == COMMON_EEXIST) { /* lost a race with another process: use its key */
        sodium_memzero(seed, sizeof seed);
        return dht_identity_load(datadir, kp);
    }
    if (rc == 0) {
        dht_crypto_keypair_seed(kp, seed);
        if (created) *created = 1;
    }
    sodium_memzero(seed, sizeof seed);
    return rc;
}
