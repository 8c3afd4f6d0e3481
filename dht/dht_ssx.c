/* SPDX-License-Identifier: MIT */
/* crypto_secretstream_xchacha20poly1305 on two primitive backends: see dht_ssx.h. */
#include "dht/dht_ssx.h"

#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

#ifdef SWARMDVM_HAVE_LIBCRYPTO
#include <openssl/evp.h>

struct dht_ssx_ossl {
    EVP_CIPHER_CTX *chacha; /* keyed with st->k; the IV (counter || nonce) is set per message */
    EVP_MAC_CTX *poly;      /* keyed per message with the one-time key */
};

static void ossl_free(struct dht_ssx_ossl *o) {
    if (!o) return;
    EVP_CIPHER_CTX_free(o->chacha); /* both wipe their key material */
    EVP_MAC_CTX_free(o->poly);
    free(o);
}

/* NULL when libcrypto or its default provider cannot give us ChaCha20 and Poly1305. */
static struct dht_ssx_ossl *ossl_new(void) {
    struct dht_ssx_ossl *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL);
    EVP_MAC *m = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    if (c && m) {
        o->chacha = EVP_CIPHER_CTX_new();
        o->poly = EVP_MAC_CTX_new(m);
        /* key and IV come later; this only binds the cipher */
        if (o->chacha && !EVP_EncryptInit_ex2(o->chacha, c, NULL, NULL, NULL)) {
            EVP_CIPHER_CTX_free(o->chacha);
            o->chacha = NULL;
        }
    }
    EVP_CIPHER_free(c); /* the contexts hold their own references */
    EVP_MAC_free(m);
    if (!o->chacha || !o->poly) {
        ossl_free(o);
        return NULL;
    }
    return o;
}

static int ossl_rekeyed(struct dht_ssx_ossl *o, const uint8_t k[32]) {
    return EVP_EncryptInit_ex2(o->chacha, NULL, k, NULL, NULL) ? 0 : COMMON_ECRYPTO;
}
#else
struct dht_ssx_ossl {
    int unused;
};
static void ossl_free(struct dht_ssx_ossl *o) {
    (void)o;
}
#endif

/* ---- primitives: a ChaCha20 keystream cursor and a Poly1305 accumulator ------------- */

/* The keystream for one message, from block 0. Calls are on 64-byte boundaries except the
 * last one. */
typedef struct ks {
    dht_ssx_t *st;
    uint32_t block; /* libsodium: the next block counter */
} ks_t;

static int ks_start(ks_t *ks, dht_ssx_t *st) {
    ks->st = st;
    ks->block = 0;
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    if (st->ossl) {
        uint8_t iv[16] = {0}; /* libcrypto's ChaCha20 IV: u32 LE block counter || 96-bit nonce */
        memcpy(iv + 4, st->nonce, 12);
        return EVP_EncryptInit_ex2(st->ossl->chacha, NULL, NULL, iv, NULL) ? 0 : COMMON_ECRYPTO;
    }
#endif
    return 0;
}

static int ks_xor(ks_t *ks, uint8_t *out, const uint8_t *in, size_t len) {
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    if (ks->st->ossl) {
        while (len) {
            int n = len > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)len, outl = 0;
            if (!EVP_EncryptUpdate(ks->st->ossl->chacha, out, &outl, in, n) || outl != n)
                return COMMON_ECRYPTO;
            out += n, in += n, len -= (size_t)n;
        }
        return 0;
    }
#endif
    crypto_stream_chacha20_ietf_xor_ic(out, in, len, ks->st->nonce, ks->block, ks->st->k);
    ks->block += (uint32_t)(len / 64);
    return 0;
}

typedef struct mac {
    dht_ssx_t *st;
    crypto_onetimeauth_poly1305_state sod;
} mac_t;

static int mac_init(mac_t *m, dht_ssx_t *st, const uint8_t key[32]) {
    m->st = st;
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    if (st->ossl) return EVP_MAC_init(st->ossl->poly, key, 32, NULL) ? 0 : COMMON_ECRYPTO;
#endif
    crypto_onetimeauth_poly1305_init(&m->sod, key);
    return 0;
}

static int mac_update(mac_t *m, const uint8_t *p, size_t len) {
    if (!len) return 0;
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    if (m->st->ossl) return EVP_MAC_update(m->st->ossl->poly, p, len) ? 0 : COMMON_ECRYPTO;
#endif
    crypto_onetimeauth_poly1305_update(&m->sod, p, len);
    return 0;
}

static int mac_final(mac_t *m, uint8_t out[16]) {
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    if (m->st->ossl) {
        size_t outl = 0;
        return EVP_MAC_final(m->st->ossl->poly, out, &outl, 16) && outl == 16 ? 0 : COMMON_ECRYPTO;
    }
#endif
    crypto_onetimeauth_poly1305_final(&m->sod, out);
    sodium_memzero(&m->sod, sizeof m->sod);
    return 0;
}

/* ---- the construction ---------------------------------------------------------------- */

static void counter_reset(dht_ssx_t *st) {
    memset(st->nonce, 0, 4);
    st->nonce[0] = 1;
}

static int rekey(dht_ssx_t *st) {
    uint8_t ki[32 + 8];
    memcpy(ki, st->k, 32);
    memcpy(ki + 32, st->nonce + 4, 8);
    crypto_stream_chacha20_ietf_xor(ki, ki, sizeof ki, st->nonce, st->k);
    memcpy(st->k, ki, 32);
    memcpy(st->nonce + 4, ki + 32, 8);
    sodium_memzero(ki, sizeof ki);
    counter_reset(st);
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    if (st->ossl) return ossl_rekeyed(st->ossl, st->k);
#endif
    return 0;
}

int dht_ssx_init(dht_ssx_t *st, const uint8_t key[DHT_SSX_KEYBYTES],
                 const uint8_t header[DHT_SSX_HEADERBYTES], dht_ssx_backend_t backend) {
    memset(st, 0, sizeof *st);
    crypto_core_hchacha20(st->k, header, key, NULL);
    counter_reset(st);
    memcpy(st->nonce + 4, header + 16, 8);
    if (backend == DHT_SSX_SODIUM) return 0;
#ifdef SWARMDVM_HAVE_LIBCRYPTO
    st->ossl = ossl_new();
    if (st->ossl && ossl_rekeyed(st->ossl, st->k) != 0) {
        ossl_free(st->ossl);
        st->ossl = NULL;
    }
#endif
    if (!st->ossl && backend == DHT_SSX_OPENSSL) {
        dht_ssx_wipe(st);
        return COMMON_EUNSUPPORTED;
    }
    return 0; /* DHT_SSX_AUTO without libcrypto: the libsodium primitives */
}

/* The MAC input after the tag block and the ciphertext: libsodium pads with (mlen mod 16)
 * zero bytes (not RFC 8439's), then u64 LE adlen (always 0 here) and u64 LE 64 + mlen. */
static int mac_tail(mac_t *m, size_t mlen, uint8_t mac[16]) {
    static const uint8_t pad0[16] = {0};
    uint8_t lens[16] = {0};
    uint64_t total = 64u + (uint64_t)mlen;
    for (int i = 0; i < 8; i++) lens[8 + i] = (uint8_t)(total >> (8 * i));
    int rc = mac_update(m, pad0, (0x10 - 64 + mlen) & 0xf);
    if (!rc) rc = mac_update(m, lens, sizeof lens);
    if (!rc) rc = mac_final(m, mac);
    return rc;
}

/* After a message: fold the MAC into the nonce, count, rekey when asked or on wrap. */
static int advance(dht_ssx_t *st, const uint8_t mac[16], uint8_t tag) {
    for (int i = 0; i < 8; i++) st->nonce[4 + i] ^= mac[i];
    sodium_increment(st->nonce, 4);
    if ((tag & DHT_SSX_TAG_REKEY) || sodium_is_zero(st->nonce, 4)) return rekey(st);
    return 0;
}

int dht_ssx_push(dht_ssx_t *st, uint8_t *out, const uint8_t *m, size_t mlen, uint8_t tag) {
    static const uint8_t zero[64] = {0};
    uint8_t block[64], key[64];
    ks_t ks;
    mac_t mac;
    int rc = ks_start(&ks, st);
    if (!rc) rc = ks_xor(&ks, key, zero, 64); /* block 0: the one-time Poly1305 key */
    if (!rc) rc = mac_init(&mac, st, key);
    memset(block, 0, sizeof block);
    block[0] = tag;
    if (!rc) rc = ks_xor(&ks, block, block, 64); /* block 1: the tag block */
    if (!rc) rc = mac_update(&mac, block, 64);
    out[0] = block[0];
    uint8_t *c = out + 1;
    if (!rc) rc = ks_xor(&ks, c, m, mlen); /* blocks 2..: the message */
    if (!rc) rc = mac_update(&mac, c, mlen);
    if (!rc) rc = mac_tail(&mac, mlen, c + mlen);
    if (!rc) rc = advance(st, c + mlen, tag);
    sodium_memzero(key, sizeof key);
    sodium_memzero(block, sizeof block);
    return rc;
}

int dht_ssx_pull(dht_ssx_t *st, uint8_t *m, uint8_t *tag, const uint8_t *in, size_t inlen) {
    static const uint8_t zero[64] = {0};
    if (inlen < DHT_SSX_ABYTES) return -1;
    size_t mlen = inlen - DHT_SSX_ABYTES;
    const uint8_t *c = in + 1, *stored = c + mlen;
    uint8_t block[64], key[64], want[16];
    ks_t ks;
    mac_t mac;
    int rc = ks_start(&ks, st);
    if (!rc) rc = ks_xor(&ks, key, zero, 64);
    if (!rc) rc = mac_init(&mac, st, key);
    memset(block, 0, sizeof block);
    block[0] = in[0];
    if (!rc) rc = ks_xor(&ks, block, block, 64); /* block[0]: the tag; 1..63: keystream */
    uint8_t t = block[0];
    block[0] = in[0]; /* the MAC covers the tag block as sent */
    if (!rc) rc = mac_update(&mac, block, 64);
    if (!rc) rc = mac_update(&mac, c, mlen);
    if (!rc) rc = mac_tail(&mac, mlen, want);
    sodium_memzero(key, sizeof key);
    sodium_memzero(block, sizeof block);
    if (rc || sodium_memcmp(want, stored, 16) != 0) {
        sodium_memzero(want, sizeof want);
        return -1;
    }
    /* the keystream is at block 2: decrypt (in place when m == c) */
    if (ks_xor(&ks, m, c, mlen) != 0 || advance(st, want, t) != 0) {
        sodium_memzero(m, mlen);
        sodium_memzero(want, sizeof want);
        return -1;
    }
    sodium_memzero(want, sizeof want);
    *tag = t;
    return 0;
}

const char *dht_ssx_backend_name(const dht_ssx_t *st) {
    return st->ossl ? "openssl" : "sodium";
}

void dht_ssx_wipe(dht_ssx_t *st) {
    ossl_free(st->ossl);
    sodium_memzero(st, sizeof *st);
}
