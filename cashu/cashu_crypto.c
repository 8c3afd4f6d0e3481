/* SPDX-License-Identifier: MIT */
/* Cashu cryptography on libsecp256k1; see cashu_crypto.h. */
#include "cashu/cashu_crypto.h"

#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <sodium.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"

#ifndef CASHU_H2C_MAX_TRIES
#define CASHU_H2C_MAX_TRIES 65536u
#endif

static secp256k1_context *g_ctx; /* written once under pthread_once, then read-only */
static pthread_once_t g_ctx_once = PTHREAD_ONCE_INIT;

static void ctx_init(void) {
    secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    unsigned char seed[32];
    randombytes_buf(seed, sizeof seed);
    if (c && !secp256k1_context_randomize(c, seed)) {
        secp256k1_context_destroy(c);
        c = NULL;
    }
    sodium_memzero(seed, sizeof seed);
    g_ctx = c;
}

static const secp256k1_context *ctx(void) {
    pthread_once(&g_ctx_once, ctx_init);
    return g_ctx;
}

static int parse(const uint8_t p[33], secp256k1_pubkey *pk) {
    if (p[0] != 2 && p[0] != 3) return COMMON_EINVAL;
    return secp256k1_ec_pubkey_parse(secp256k1_context_static, pk, p, 33) ? 0 : COMMON_EINVAL;
}

static void ser(const secp256k1_pubkey *pk, uint8_t out[33]) {
    size_t len = 33;
    secp256k1_ec_pubkey_serialize(secp256k1_context_static, out, &len, pk, SECP256K1_EC_COMPRESSED);
}

static void ser65(const secp256k1_pubkey *pk, uint8_t out[65]) {
    size_t len = 65;
    secp256k1_ec_pubkey_serialize(secp256k1_context_static, out, &len, pk,
                                  SECP256K1_EC_UNCOMPRESSED);
}

int cashu_scalar_valid(const uint8_t sk[32]) {
    return secp256k1_ec_seckey_verify(secp256k1_context_static, sk) == 1;
}

int cashu_point_valid(const uint8_t p[33]) {
    secp256k1_pubkey pk;
    return parse(p, &pk) == 0;
}

static int h2c(const void *msg, size_t len, secp256k1_pubkey *Y) {
    static const char dst[] = "Secp256k1_HashToCurve_Cashu_";
    uint8_t h0[32], buf[36], cand[33];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)dst, sizeof dst - 1);
    crypto_hash_sha256_update(&st, msg, len);
    crypto_hash_sha256_final(&st, h0);
    memcpy(buf, h0, 32);
    cand[0] = 0x02;
    for (uint32_t ctr = 0; ctr < CASHU_H2C_MAX_TRIES; ctr++) {
        buf[32] = (uint8_t)ctr;
        buf[33] = (uint8_t)(ctr >> 8);
        buf[34] = (uint8_t)(ctr >> 16);
        buf[35] = (uint8_t)(ctr >> 24);
        crypto_hash_sha256(cand + 1, buf, sizeof buf);
        if (secp256k1_ec_pubkey_parse(secp256k1_context_static, Y, cand, 33)) return 0;
    }
    return COMMON_ECRYPTO;
}

int cashu_hash_to_curve(const void *msg, size_t len, uint8_t Y[33]) {
    secp256k1_pubkey pk;
    int rc = h2c(msg, len, &pk);
    if (rc) return rc;
    ser(&pk, Y);
    return 0;
}

/* out = P + r·G */
static int add_rG(const secp256k1_pubkey *P, const uint8_t r[32], secp256k1_pubkey *out) {
    secp256k1_pubkey rG;
    if (!secp256k1_ec_pubkey_create(ctx(), &rG, r)) return COMMON_EINVAL;
    const secp256k1_pubkey *pts[2] = {P, &rG};
    return secp256k1_ec_pubkey_combine(secp256k1_context_static, out, pts, 2) ? 0 : COMMON_ECRYPTO;
}

int cashu_blind(const void *secret, size_t len, const uint8_t r[32], uint8_t B_[33]) {
    secp256k1_pubkey Y, B;
    int rc = h2c(secret, len, &Y);
    if (rc) return rc;
    if ((rc = add_rG(&Y, r, &B))) return rc;
    ser(&B, B_);
    return 0;
}

int cashu_sign_blinded(const uint8_t k[32], const uint8_t B_[33], uint8_t C_[33]) {
    secp256k1_pubkey B;
    if (parse(B_, &B)) return COMMON_EINVAL;
    if (!secp256k1_ec_pubkey_tweak_mul(secp256k1_context_static, &B, k)) return COMMON_EINVAL;
    ser(&B, C_);
    return 0;
}

/* out = a·P (a copy) */
static int mul(const secp256k1_pubkey *P, const uint8_t a[32], secp256k1_pubkey *out) {
    *out = *P;
    return secp256k1_ec_pubkey_tweak_mul(secp256k1_context_static, out, a) ? 0 : COMMON_EINVAL;
}

/* out = P − Q */
static int sub(const secp256k1_pubkey *P, const secp256k1_pubkey *Q, secp256k1_pubkey *out) {
    secp256k1_pubkey nq = *Q;
    if (!secp256k1_ec_pubkey_negate(secp256k1_context_static, &nq)) return COMMON_EINVAL;
    const secp256k1_pubkey *pts[2] = {P, &nq};
    return secp256k1_ec_pubkey_combine(secp256k1_context_static, out, pts, 2) ? 0 : COMMON_ECRYPTO;
}

int cashu_unblind(const uint8_t C_[33], const uint8_t r[32], const uint8_t K[33], uint8_t C[33]) {
    secp256k1_pubkey Cb, Kp, rK, out;
    if (parse(C_, &Cb) || parse(K, &Kp)) return COMMON_EINVAL;
    int rc = mul(&Kp, r, &rK);
    if (!rc) rc = sub(&Cb, &rK, &out);
    if (rc) return rc;
    ser(&out, C);
    return 0;
}

int cashu_verify_unblinded(const uint8_t k[32], const void *secret, size_t len,
                           const uint8_t C[33]) {
    secp256k1_pubkey Y, kY;
    uint8_t want[33];
    if (h2c(secret, len, &Y) || mul(&Y, k, &kY)) return COMMON_ECRYPTO;
    ser(&kY, want);
    return sodium_memcmp(want, C, 33) == 0 ? 0 : COMMON_ECRYPTO;
}

static void hash_e_pk(const secp256k1_pubkey *const *pts, size_t n, uint8_t e[32]) {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++) {
        uint8_t u[65];
        char hex[131];
        ser65(pts[i], u);
        common_hex_encode(u, 65, hex);
        crypto_hash_sha256_update(&st, (const uint8_t *)hex, 130);
    }
    crypto_hash_sha256_final(&st, e);
}

int cashu_hash_e(const uint8_t (*points)[33], size_t n, uint8_t e[32]) {
    if (n > 8) return COMMON_EINVAL;
    secp256k1_pubkey pk[8];
    const secp256k1_pubkey *pp[8];
    for (size_t i = 0; i < n; i++) {
        if (parse(points[i], &pk[i])) return COMMON_EINVAL;
        pp[i] = &pk[i];
    }
    hash_e_pk(pp, n, e);
    return 0;
}

int cashu_dleq_create(const uint8_t a[32], const uint8_t B_[33], const uint8_t C_[33],
                      uint8_t e[32], uint8_t s[32]) {
    secp256k1_pubkey A, B, C, R1, R2;
    uint8_t A65[65], B65[65], C65[65], r[32], ea[32];
    static const char tag[] = "Cashu_DLEQ_R_v1";
    int rc = COMMON_ECRYPTO;
    if (!secp256k1_ec_pubkey_create(ctx(), &A, a)) return COMMON_EINVAL;
    if (parse(B_, &B) || parse(C_, &C)) return COMMON_EINVAL;
    ser65(&A, A65);
    ser65(&B, B65);
    ser65(&C, C65);
    for (unsigned ctr = 0; ctr < 256; ctr++) {
        crypto_auth_hmacsha256_state hs;
        uint8_t c8 = (uint8_t)ctr;
        crypto_auth_hmacsha256_init(&hs, a, 32);
        crypto_auth_hmacsha256_update(&hs, (const uint8_t *)tag, sizeof tag - 1);
        crypto_auth_hmacsha256_update(&hs, A65, 65);
        crypto_auth_hmacsha256_update(&hs, B65, 65);
        crypto_auth_hmacsha256_update(&hs, C65, 65);
        crypto_auth_hmacsha256_update(&hs, &c8, 1);
        crypto_auth_hmacsha256_final(&hs, r);
        sodium_memzero(&hs, sizeof hs);
        if (cashu_scalar_valid(r)) {
            rc = 0;
            break;
        }
    }
    if (rc) goto out;
    rc = COMMON_ECRYPTO;
    if (!secp256k1_ec_pubkey_create(ctx(), &R1, r)) goto out;
    if (mul(&B, r, &R2)) goto out;
    const secp256k1_pubkey *pts[4] = {&R1, &R2, &A, &C};
    hash_e_pk(pts, 4, e);
    memcpy(ea, a, 32);
    if (!secp256k1_ec_seckey_tweak_mul(secp256k1_context_static, ea, e)) goto out;
    memcpy(s, r, 32);
    if (!secp256k1_ec_seckey_tweak_add(secp256k1_context_static, s, ea)) goto out;
    rc = 0;
out:
    sodium_memzero(r, sizeof r);
    sodium_memzero(ea, sizeof ea);
    return rc;
}

static int dleq_verify_pk(const secp256k1_pubkey *A, const secp256k1_pubkey *B,
                          const secp256k1_pubkey *C, const uint8_t e[32], const uint8_t s[32]) {
    secp256k1_pubkey sG, eA, R1, sB, eC, R2;
    uint8_t got[32];
    if (!secp256k1_ec_pubkey_create(ctx(), &sG, s)) return CASHU_EDLEQ;
    if (mul(A, e, &eA) || sub(&sG, &eA, &R1)) return CASHU_EDLEQ;
    if (mul(B, s, &sB) || mul(C, e, &eC) || sub(&sB, &eC, &R2)) return CASHU_EDLEQ;
    const secp256k1_pubkey *pts[4] = {&R1, &R2, A, C};
    hash_e_pk(pts, 4, got);
    return sodium_memcmp(got, e, 32) == 0 ? 0 : CASHU_EDLEQ;
}

int cashu_dleq_verify(const uint8_t A[33], const uint8_t B_[33], const uint8_t C_[33],
                      const uint8_t e[32], const uint8_t s[32]) {
    secp256k1_pubkey Ap, Bp, Cp;
    if (parse(A, &Ap) || parse(B_, &Bp) || parse(C_, &Cp)) return CASHU_EDLEQ;
    return dleq_verify_pk(&Ap, &Bp, &Cp, e, s);
}

int cashu_dleq_verify_proof(const uint8_t A[33], const void *secret, size_t len,
                            const uint8_t C[33], const uint8_t e[32], const uint8_t s[32],
                            const uint8_t r[32]) {
    secp256k1_pubkey Ap, Cp, Y, B, rA, Cb;
    if (parse(A, &Ap) || parse(C, &Cp)) return CASHU_EDLEQ;
    if (h2c(secret, len, &Y) || add_rG(&Y, r, &B)) return CASHU_EDLEQ;
    if (mul(&Ap, r, &rA)) return CASHU_EDLEQ;
    const secp256k1_pubkey *pts[2] = {&Cp, &rA};
    if (!secp256k1_ec_pubkey_combine(secp256k1_context_static, &Cb, pts, 2)) return CASHU_EDLEQ;
    return dleq_verify_pk(&Ap, &B, &Cb, e, s);
}

void cashu_random_scalar(const common_env_t *env, uint8_t out[32]) {
    do {
        common_random(env, out, 32);
    } while (!cashu_scalar_valid(out));
}

int cashu_pubkey(const uint8_t sk[32], uint8_t P[33]) {
    secp256k1_pubkey pk;
    if (!secp256k1_ec_pubkey_create(ctx(), &pk, sk)) return COMMON_EINVAL;
    ser(&pk, P);
    return 0;
}

int cashu_schnorr_sign(const uint8_t sk[32], const uint8_t msg32[32], const uint8_t aux32[32],
                       uint8_t sig[64]) {
    secp256k1_keypair kp;
    if (!secp256k1_keypair_create(ctx(), &kp, sk)) return COMMON_EINVAL;
    int ok = secp256k1_schnorrsig_sign32(ctx(), sig, msg32, &kp, aux32);
    sodium_memzero(&kp, sizeof kp);
    return ok ? 0 : COMMON_ECRYPTO;
}

int cashu_schnorr_verify(const uint8_t P[33], const uint8_t msg32[32], const uint8_t sig[64]) {
    secp256k1_xonly_pubkey xo;
    if (P[0] != 2 && P[0] != 3) return COMMON_ECRYPTO;
    if (!secp256k1_xonly_pubkey_parse(secp256k1_context_static, &xo, P + 1)) return COMMON_ECRYPTO;
    return secp256k1_schnorrsig_verify(secp256k1_context_static, sig, msg32, 32, &xo)
               ? 0
               : COMMON_ECRYPTO;
}
