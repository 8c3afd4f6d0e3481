/* SPDX-License-Identifier: MIT */
/* Noise IK / XX state machine: see dht_noise.h for the contract. The token engine follows
 * the Noise spec (rev 34) with HASHLEN 64 and the nonce layout of noise-handshake. */
#include "dht/dht_noise.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

enum tok { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

#define MAX_MSGS 3
#define MAX_TOKS 5

static const uint8_t XX_MSGS[MAX_MSGS][MAX_TOKS] = {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}};
static const uint8_t IK_MSGS[MAX_MSGS][MAX_TOKS] = {{T_E, T_ES, T_S, T_SS}, {T_E, T_EE, T_SE}};

struct dht_noise {
    int pattern;
    int initiator;
    int nmsgs;
    int step;
    int failed;
    int complete;
    const common_env_t *env;
    uint8_t h[64];
    uint8_t ck[64];
    uint8_t k[32];
    int has_key;
    uint64_t nonce;
    dht_keypair_t s;
    dht_keypair_t e;
    int has_e;
    uint8_t re[32];
    int has_re;
    uint8_t rs[32];
    int has_rs;
    dht_noise_result_t res;
};

static void mix_hash(dht_noise_t *n, const void *d, size_t len) {
    dht_crypto_part_t p[2] = {{n->h, 64}, {d, len}};
    dht_crypto_hash_parts(n->h, 64, p, 2, NULL, 0);
}

static void mix_key(dht_noise_t *n, const uint8_t *ikm, size_t len) {
    uint8_t o1[64], o2[64];
    dht_crypto_hkdf(n->ck, ikm, len, o1, o2, NULL);
    memcpy(n->ck, o1, 64);
    memcpy(n->k, o2, 32);
    n->has_key = 1;
    n->nonce = 0;
    sodium_memzero(o1, sizeof o1);
    sodium_memzero(o2, sizeof o2);
}

static void make_nonce(uint64_t counter, uint8_t nonce[12]) {
    memset(nonce, 0, 12);
    for (int i = 0; i < 4; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

/* encryptAndHash: out must hold len (+16 with a key). Returns bytes written. */
static size_t encrypt_and_hash(dht_noise_t *n, const uint8_t *in, size_t len, uint8_t *out) {
    static const uint8_t empty[1] = {0};
    size_t olen = len;
    if (!in) in = empty;
    if (n->has_key) {
        uint8_t nonce[12];
        unsigned long long cl;
        make_nonce(n->nonce, nonce);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, &cl, in, len, n->h, 64, NULL, nonce, n->k);
        n->nonce++;
        olen = (size_t)cl;
    } else if (len) {
        memmove(out, in, len);
    }
    mix_hash(n, out, olen);
    return olen;
}

/* decryptAndHash: out must hold len - 16 (len with no key). */
static int decrypt_and_hash(dht_noise_t *n, const uint8_t *in, size_t len, uint8_t *out,
                            size_t *olen) {
    if (n->has_key) {
        if (len < 16) return DHT_EHANDSHAKE;
        uint8_t nonce[12];
        unsigned long long pl;
        make_nonce(n->nonce, nonce);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &pl, NULL, in, len, n->h, 64, nonce,
                                                      n->k) != 0)
            return DHT_EHANDSHAKE;
        n->nonce++;
        *olen = (size_t)pl;
    } else {
        if (len) memmove(out, in, len);
        *olen = len;
    }
    mix_hash(n, in, len);
    return 0;
}

static int dh_token(dht_noise_t *n, int tok) {
    const dht_keypair_t *local;
    const uint8_t *remote;
    int i = n->initiator;
    switch (tok) {
    case T_EE:
        local = &n->e;
        remote = n->re;
        break;
    case T_ES:
        local = i ? &n->e : &n->s;
        remote = i ? n->rs : n->re;
        break;
    case T_SE:
        local = i ? &n->s : &n->e;
        remote = i ? n->re : n->rs;
        break;
    default:
        local = &n->s;
        remote = n->rs;
        break; /* T_SS */
    }
    uint8_t dh[32];
    if (dht_crypto_ed25519_dh(dh, local->sk, remote) != 0) return DHT_EHANDSHAKE;
    mix_key(n, dh, 32);
    sodium_memzero(dh, sizeof dh);
    return 0;
}

static const uint8_t *msg_tokens(const dht_noise_t *n, int step) {
    return n->pattern == DHT_NOISE_IK ? IK_MSGS[step] : XX_MSGS[step];
}

static void wipe_handshake(dht_noise_t *n) {
    sodium_memzero(n->h, sizeof n->h);
    sodium_memzero(n->ck, sizeof n->ck);
    sodium_memzero(n->k, sizeof n->k);
    sodium_memzero(&n->e, sizeof n->e);
    sodium_memzero(&n->s, sizeof n->s);
    sodium_memzero(n->re, sizeof n->re);
}

static void finish(dht_noise_t *n) {
    uint8_t k1[64], k2[64];
    dht_crypto_hkdf(n->ck, NULL, 0, k1, k2, NULL);
    memcpy(n->res.tx, n->initiator ? k1 : k2, 32);
    memcpy(n->res.rx, n->initiator ? k2 : k1, 32);
    memcpy(n->res.hash, n->h, 64);
    memcpy(n->res.remote_pk, n->rs, 32);
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    wipe_handshake(n);
    n->complete = 1;
}

static int fail(dht_noise_t *n, int rc) {
    n->failed = 1;
    wipe_handshake(n);
    return rc;
}

dht_noise_t *dht_noise_new(dht_noise_pattern_t pattern, int initiator,
                           const dht_keypair_t *static_kp, const void *prologue, size_t plen,
                           const uint8_t *remote_pk, const common_env_t *env, int *err) {
    int dummy;
    if (!err) err = &dummy;
    *err = 0;
    if ((pattern != DHT_NOISE_IK && pattern != DHT_NOISE_XX) || !static_kp || (plen && !prologue) ||
        (pattern == DHT_NOISE_IK && initiator && !remote_pk)) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    dht_noise_t *n = calloc(1, sizeof *n);
    if (!n) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    n->pattern = pattern;
    n->initiator = initiator ? 1 : 0;
    n->nmsgs = pattern == DHT_NOISE_IK ? 2 : 3;
    n->env = env;
    n->s = *static_kp;

    const char *name = pattern == DHT_NOISE_IK ? "Noise_IK_Ed25519_ChaChaPoly_BLAKE2b"
                                               : "Noise_XX_Ed25519_ChaChaPoly_BLAKE2b";
    memcpy(n->h, name, strlen(name)); /* 35 <= HASHLEN: zero-padded */
    memcpy(n->ck, n->h, 64);
    mix_hash(n, prologue, plen);
    if (pattern == DHT_NOISE_IK) {
        /* pre-message <- s: the responder's static key */
        if (initiator) {
            memcpy(n->rs, remote_pk, 32);
            n->has_rs = 1;
            mix_hash(n, n->rs, 32);
        } else {
            mix_hash(n, n->s.pk, 32);
        }
    }
    return n;
}

int dht_noise_set_ephemeral(dht_noise_t *n, const uint8_t seed[32]) {
    if (n->failed || n->complete || n->has_e) return COMMON_ESTATE;
    dht_crypto_keypair_seed(&n->e, seed);
    n->has_e = 1;
    return 0;
}

int dht_noise_wants_send(const dht_noise_t *n) {
    if (n->failed || n->complete) return 0;
    return (n->step % 2 == 0) == (n->initiator == 1);
}

int dht_noise_complete(const dht_noise_t *n) {
    return n->complete && !n->failed;
}

int dht_noise_send(dht_noise_t *n, const void *payload, size_t plen, uint8_t *out, size_t cap,
                   size_t *outlen) {
    if (outlen) *outlen = 0;
    if (n->failed) return DHT_EHANDSHAKE;
    if (!dht_noise_wants_send(n)) return COMMON_ESTATE;
    const uint8_t *toks = msg_tokens(n, n->step);

    /* size check first so that a too-small buffer does not consume the state */
    size_t need = 0;
    int key = n->has_key;
    for (int i = 0; i < MAX_TOKS && toks[i]; i++) {
        if (toks[i] == T_E)
            need += 32;
        else if (toks[i] == T_S)
            need += key ? 48 : 32;
        else
            key = 1;
    }
    need += plen + (key ? 16 : 0);
    if (need > cap || need > DHT_NOISE_MAX_MSG) return COMMON_ETOOBIG;

    size_t off = 0;
    for (int i = 0; i < MAX_TOKS && toks[i]; i++) {
        int rc = 0;
        switch (toks[i]) {
        case T_E:
            if (!n->has_e) {
                uint8_t seed[32];
                if (n->env)
                    common_random(n->env, seed, 32);
                else
                    randombytes_buf(seed, 32);
                dht_crypto_keypair_seed(&n->e, seed);
                sodium_memzero(seed, sizeof seed);
                n->has_e = 1;
            }
            mix_hash(n, n->e.pk, 32);
            memcpy(out + off, n->e.pk, 32);
            off += 32;
            break;
        case T_S: off += encrypt_and_hash(n, n->s.pk, 32, out + off); break;
        default: rc = dh_token(n, toks[i]); break;
        }
        if (rc) return fail(n, rc);
    }
    off += encrypt_and_hash(n, payload, plen, out + off);
    n->step++;
    if (n->step == n->nmsgs) finish(n);
    if (outlen) *outlen = off;
    return 0;
}

int dht_noise_recv(dht_noise_t *n, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap,
                   size_t *plen) {
    if (plen) *plen = 0;
    if (n->failed) return DHT_EHANDSHAKE;
    if (n->complete || dht_noise_wants_send(n)) return COMMON_ESTATE;
    if (len > DHT_NOISE_MAX_MSG) return fail(n, DHT_EHANDSHAKE);
    const uint8_t *toks = msg_tokens(n, n->step);
    size_t off = 0;
    for (int i = 0; i < MAX_TOKS && toks[i]; i++) {
        int rc = 0;
        switch (toks[i]) {
        case T_E:
            if (len - off < 32) return fail(n, DHT_EHANDSHAKE);
            memcpy(n->re, msg + off, 32);
            n->has_re = 1;
            mix_hash(n, n->re, 32);
            off += 32;
            break;
        case T_S: {
            size_t klen = n->has_key ? 48 : 32;
            size_t got;
            uint8_t tmp[48];
            if (len - off < klen) return fail(n, DHT_EHANDSHAKE);
            rc = decrypt_and_hash(n, msg + off, klen, tmp, &got);
            if (rc == 0) {
                memcpy(n->rs, tmp, 32);
                n->has_rs = 1;
            }
            off += klen;
            break;
        }
        default: rc = dh_token(n, toks[i]); break;
        }
        if (rc) return fail(n, rc);
    }
    size_t clen = len - off;
    size_t ptlen = n->has_key ? (clen >= 16 ? clen - 16 : 0) : clen;
    if (n->has_key && clen < 16) return fail(n, DHT_EHANDSHAKE);
    if (ptlen > cap) return fail(n, COMMON_ETOOBIG);
    uint8_t *tmp = malloc(clen ? clen : 1);
    if (!tmp) return fail(n, COMMON_ENOMEM);
    size_t got;
    int rc = decrypt_and_hash(n, msg + off, clen, tmp, &got);
    if (rc) {
        free(tmp);
        return fail(n, rc);
    }
    if (got) memcpy(payload, tmp, got);
    sodium_memzero(tmp, clen ? clen : 1);
    free(tmp);
    if (plen) *plen = got;
    n->step++;
    if (n->step == n->nmsgs) finish(n);
    return 0;
}

const uint8_t *dht_noise_remote_static(const dht_noise_t *n) {
    if (n->failed) return NULL;
    if (n->complete) return n->res.remote_pk;
    return n->has_rs ? n->rs : NULL;
}

int dht_noise_result(const dht_noise_t *n, dht_noise_result_t *out) {
    if (!dht_noise_complete(n)) return COMMON_ESTATE;
    *out = n->res;
    return 0;
}

void dht_noise_free(dht_noise_t *n) {
    if (!n) return;
    sodium_memzero(n, sizeof *n);
    free(n);
}

void dht_noise_prologue_hyperdht(uint8_t out[32]) {
    dht_crypto_ns_dht(DHT_NS_PEER_HANDSHAKE, out);
}
