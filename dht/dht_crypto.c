/* SPDX-License-Identifier: MIT */
/* Hyperswarm crypto building blocks: see dht_crypto.h for the contract. */
#include "dht/dht_crypto.h"

#include <sodium.h>
#include <string.h>

#include "common/common_err.h"

#define HMAC_BLOCK 128

void dht_crypto_hash(uint8_t out[32], const void *m, size_t n) {
    crypto_generichash(out, 32, m, n, NULL, 0);
}

void dht_crypto_hash_keyed(uint8_t out[32], const void *m, size_t n, const void *key,
                           size_t keylen) {
    crypto_generichash(out, 32, m, n, key, keylen);
}

void dht_crypto_hash_parts(uint8_t *out, size_t outlen, const dht_crypto_part_t *parts,
                           size_t nparts, const void *key, size_t keylen) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, keylen, outlen);
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n) crypto_generichash_update(&st, parts[i].p, parts[i].n);
    crypto_generichash_final(&st, out, outlen);
    sodium_memzero(&st, sizeof st);
}

void dht_crypto_namespace(const char *name, uint8_t id, uint8_t out[32]) {
    uint8_t buf[33];
    dht_crypto_hash(buf, name, strlen(name));
    buf[32] = id;
    dht_crypto_hash(out, buf, sizeof buf);
}

void dht_crypto_ns_dht(uint8_t id, uint8_t out[32]) {
    dht_crypto_namespace("hyperswarm/dht", id, out);
}

void dht_crypto_ns_secretstream(uint8_t id, uint8_t out[32]) {
    dht_crypto_namespace("hyperswarm/secret-stream", id, out);
}

void dht_crypto_hmac(uint8_t out[64], const void *key, size_t keylen,
                     const dht_crypto_part_t *parts, size_t nparts) {
    uint8_t k[HMAC_BLOCK], pad[HMAC_BLOCK], inner[64];
    memset(k, 0, sizeof k);
    if (keylen > HMAC_BLOCK)
        crypto_generichash(k, 64, key, keylen, NULL, 0);
    else if (keylen)
        memcpy(k, key, keylen);

    crypto_generichash_state st;
    for (size_t i = 0; i < HMAC_BLOCK; i++) pad[i] = (uint8_t)(k[i] ^ 0x36);
    crypto_generichash_init(&st, NULL, 0, 64);
    crypto_generichash_update(&st, pad, HMAC_BLOCK);
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n) crypto_generichash_update(&st, parts[i].p, parts[i].n);
    crypto_generichash_final(&st, inner, 64);

    for (size_t i = 0; i < HMAC_BLOCK; i++) pad[i] = (uint8_t)(k[i] ^ 0x5c);
    crypto_generichash_init(&st, NULL, 0, 64);
    crypto_generichash_update(&st, pad, HMAC_BLOCK);
    crypto_generichash_update(&st, inner, 64);
    crypto_generichash_final(&st, out, 64);

    sodium_memzero(k, sizeof k);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(&st, sizeof st);
}

void dht_crypto_hkdf(const uint8_t ck[64], const void *ikm, size_t ikmlen, uint8_t out1[64],
                     uint8_t out2[64], uint8_t out3[64]) {
    uint8_t prk[64];
    const uint8_t one = 1, two = 2, three = 3;
    dht_crypto_part_t p[2];

    p[0] = (dht_crypto_part_t){ikm, ikmlen};
    dht_crypto_hmac(prk, ck, 64, p, 1);

    p[0] = (dht_crypto_part_t){&one, 1};
    dht_crypto_hmac(out1, prk, 64, p, 1);
    p[0] = (dht_crypto_part_t){out1, 64};
    p[1] = (dht_crypto_part_t){&two, 1};
    dht_crypto_hmac(out2, prk, 64, p, 2);
    if (out3) {
        p[0] = (dht_crypto_part_t){out2, 64};
        p[1] = (dht_crypto_part_t){&three, 1};
        dht_crypto_hmac(out3, prk, 64, p, 2);
    }
    sodium_memzero(prk, sizeof prk);
}

void dht_crypto_keypair_seed(dht_keypair_t *kp, const uint8_t seed[32]) {
    crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
}

void dht_crypto_keypair_random(dht_keypair_t *kp) {
    crypto_sign_keypair(kp->pk, kp->sk);
}

void dht_crypto_keypair_wipe(dht_keypair_t *kp) {
    sodium_memzero(kp, sizeof *kp);
}

int dht_crypto_ed25519_dh(uint8_t out[32], const uint8_t sk[64], const uint8_t remote_pk[32]) {
    uint8_t h[64];
    crypto_hash_sha512(h, sk, 32);
    h[0] &= 248;
    h[31] &= 127;
    h[31] |= 64;
    int rc = crypto_scalarmult_ed25519_noclamp(out, h, remote_pk);
    sodium_memzero(h, sizeof h);
    if (rc != 0) {
        sodium_memzero(out, 32);
        return COMMON_ECRYPTO;
    }
    return 0;
}

void dht_crypto_target(const uint8_t pk[32], uint8_t out[32]) {
    dht_crypto_hash(out, pk, 32);
}

void dht_crypto_sign(uint8_t sig[64], const void *m, size_t n, const uint8_t sk[64]) {
    crypto_sign_detached(sig, NULL, m, n, sk);
}

int dht_crypto_verify(const uint8_t sig[64], const void *m, size_t n, const uint8_t pk[32]) {
    return crypto_sign_verify_detached(sig, m, n, pk) == 0 ? 0 : COMMON_ECRYPTO;
}
