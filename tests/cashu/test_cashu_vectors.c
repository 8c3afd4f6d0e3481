/* SPDX-License-Identifier: MIT */
/* Every applicable vector of cashu-vectors.json (tests/cashu/data, a copy of shared/data): NUT-00
 * (hash_to_curve, BDHKE, token v3/v4), NUT-01 (key validation), NUT-02 (keyset ids), NUT-11 (P2PK
 * SIG_INPUTS and SIG_ALL; the HTLC cases are NUT-14 and not applicable), NUT-12 (DLEQ), plus the
 * derived cashu-ts/Nutshell tokens. NUT-13 vectors are not applicable (no deterministic secrets).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cashu/cashu_crypto.h"
#include "cashu/cashu_keyset.h"
#include "cashu/cashu_p2pk.h"
#include "cashu/cashu_token.h"
#include "common/common_codec.h"
#include "common/common_err.h"
#include "tests/cashu/vectors.h"
#include "tests/test.h"

static cJSON *vec(void) {
    static cJSON *root; /* parsed once per test process */
    if (!root) root = cashu_test_vectors_load();
    return root;
}

static const cJSON *at(const cJSON *o, const char *path) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *tok = strtok(tmp, "."); tok && o; tok = strtok(NULL, "."))
        o = cJSON_GetObjectItemCaseSensitive(o, tok);
    return o;
}
static const char *str(const cJSON *o, const char *path) {
    const cJSON *x = at(o, path);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}
static int hex(const cJSON *o, const char *path, uint8_t *out, size_t n) {
    const char *s = str(o, path);
    return s ? common_hex_decode_exact(s, out, n) : -1;
}

TEST(hash_to_curve) {
    const cJSON *v, *vs = at(vec(), "hash_to_curve.vectors");
    ASSERT_TRUE(vs);
    int n = 0;
    cJSON_ArrayForEach(v, vs) {
        uint8_t msg[32], want[33], got[33];
        ASSERT_OK(hex(v, "message_hex", msg, 32));
        ASSERT_OK(hex(v, "point_hex", want, 33));
        ASSERT_OK(cashu_hash_to_curve(msg, 32, got));
        ASSERT_MEM_EQ(got, want, 33);
        n++;
    }
    ASSERT_EQ_I64(n, 3);
}

TEST(bdhke) {
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, at(vec(), "bdhke_blind.vectors")) {
        uint8_t x[32], r[32], want[33], got[33];
        ASSERT_OK(hex(v, "secret_x_hex", x, 32));
        ASSERT_OK(hex(v, "r_hex", r, 32));
        ASSERT_OK(hex(v, "B_hex", want, 33));
        ASSERT_OK(cashu_blind(x, 32, r, got));
        ASSERT_MEM_EQ(got, want, 33);
        n++;
    }
    cJSON_ArrayForEach(v, at(vec(), "bdhke_sign.vectors")) {
        uint8_t k[32], B[33], want[33], got[33];
        ASSERT_OK(hex(v, "mint_privkey_k_hex", k, 32));
        ASSERT_OK(hex(v, "B_hex", B, 33));
        ASSERT_OK(hex(v, "C_hex", want, 33));
        ASSERT_OK(cashu_sign_blinded(k, B, got));
        ASSERT_MEM_EQ(got, want, 33);
        n++;
    }
    ASSERT_EQ_I64(n, 4);
}

TEST(bdhke_roundtrip) {
    /* blind -> sign -> unblind == k*Y, and the mint-side check agrees */
    uint8_t k[32] = {0}, r[32] = {0}, K[33], B[33], Cb[33], C[33];
    k[31] = 7;
    r[31] = 11;
    const char *secret = "test-secret";
    ASSERT_OK(cashu_pubkey(k, K));
    ASSERT_OK(cashu_blind(secret, strlen(secret), r, B));
    ASSERT_OK(cashu_sign_blinded(k, B, Cb));
    ASSERT_OK(cashu_unblind(Cb, r, K, C));
    ASSERT_OK(cashu_verify_unblinded(k, secret, strlen(secret), C));
    k[31] = 8;
    ASSERT_ERR(cashu_verify_unblinded(k, secret, strlen(secret), C), COMMON_ECRYPTO);
}

TEST(dleq) {
    const cJSON *d = at(vec(), "dleq");
    uint8_t pts[4][33], e[32], got[32];
    ASSERT_OK(hex(d, "hash_e.R1", pts[0], 33));
    ASSERT_OK(hex(d, "hash_e.R2", pts[1], 33));
    ASSERT_OK(hex(d, "hash_e.K", pts[2], 33));
    ASSERT_OK(hex(d, "hash_e.C_", pts[3], 33));
    ASSERT_OK(hex(d, "hash_e.e_hex", e, 32));
    ASSERT_OK(cashu_hash_e((const uint8_t(*)[33])pts, 4, got));
    ASSERT_MEM_EQ(got, e, 32);

    /* deterministic nonce: exact e and s */
    uint8_t a[32], A[33], B[33], C[33], s[32], ge[32], gs[32];
    ASSERT_OK(hex(d, "deterministic_nonce.a_hex", a, 32));
    ASSERT_OK(hex(d, "deterministic_nonce.A", A, 33));
    ASSERT_OK(hex(d, "deterministic_nonce.B_", B, 33));
    ASSERT_OK(hex(d, "deterministic_nonce.C_", C, 33));
    ASSERT_OK(hex(d, "deterministic_nonce.e_hex", e, 32));
    ASSERT_OK(hex(d, "deterministic_nonce.s_hex", s, 32));
    uint8_t A2[33];
    ASSERT_OK(cashu_pubkey(a, A2));
    ASSERT_MEM_EQ(A2, A, 33);
    ASSERT_OK(cashu_dleq_create(a, B, C, ge, gs));
    ASSERT_MEM_EQ(ge, e, 32);
    ASSERT_MEM_EQ(gs, s, 32);
    ASSERT_OK(cashu_dleq_verify(A, B, C, e, s));

    /* BlindSignature */
    ASSERT_OK(hex(d, "blind_signature_valid.A", A, 33));
    ASSERT_OK(hex(d, "blind_signature_valid.B_", B, 33));
    ASSERT_OK(hex(d, "blind_signature_valid.blind_signature.C_", C, 33));
    ASSERT_OK(hex(d, "blind_signature_valid.blind_signature.dleq.e", e, 32));
    ASSERT_OK(hex(d, "blind_signature_valid.blind_signature.dleq.s", s, 32));
    ASSERT_OK(cashu_dleq_verify(A, B, C, e, s));
    e[5] ^= 1;
    ASSERT_ERR(cashu_dleq_verify(A, B, C, e, s), CASHU_EDLEQ);

    /* Proof (receiver side) */
    uint8_t r[32];
    const char *secret = str(d, "proof_valid.proof.secret");
    ASSERT_TRUE(secret);
    ASSERT_OK(hex(d, "proof_valid.A", A, 33));
    ASSERT_OK(hex(d, "proof_valid.proof.C", C, 33));
    ASSERT_OK(hex(d, "proof_valid.proof.dleq.e", e, 32));
    ASSERT_OK(hex(d, "proof_valid.proof.dleq.s", s, 32));
    ASSERT_OK(hex(d, "proof_valid.proof.dleq.r", r, 32));
    ASSERT_OK(cashu_dleq_verify_proof(A, secret, strlen(secret), C, e, s, r));
    r[0] ^= 1;
    ASSERT_ERR(cashu_dleq_verify_proof(A, secret, strlen(secret), C, e, s, r), CASHU_EDLEQ);
}

TEST(dleq_create_verify_random) {
    uint8_t a[32], A[33], r[32], B[33], C_[33], e[32], s[32];
    for (int i = 0; i < 8; i++) {
        memset(a, 0, 32);
        a[0] = (uint8_t)(i + 1);
        a[31] = 0x55;
        memset(r, 0x11 * (i + 1), 32);
        ASSERT_OK(cashu_pubkey(a, A));
        ASSERT_OK(cashu_blind("x", 1, r, B));
        ASSERT_OK(cashu_sign_blinded(a, B, C_));
        ASSERT_OK(cashu_dleq_create(a, B, C_, e, s));
        ASSERT_OK(cashu_dleq_verify(A, B, C_, e, s));
        /* wrong key */
        uint8_t A2[33], a2[32];
        memcpy(a2, a, 32);
        a2[31] ^= 1;
        ASSERT_OK(cashu_pubkey(a2, A2));
        ASSERT_ERR(cashu_dleq_verify(A2, B, C_, e, s), CASHU_EDLEQ);
    }
}

static int load_keyset(const cJSON *keys, cashu_keyset_t *ks) {
    memset(ks, 0, sizeof *ks);
    strcpy(ks->unit, "sat");
    return cashu_keyset_parse_keys(keys, ks);
}

TEST(keys_validation) {
    const cJSON *v;
    int n = 0;
    cashu_keyset_t ks;
    cJSON_ArrayForEach(v, at(vec(), "keys_validation.invalid_keysets")) {
        ASSERT_ERR(load_keyset(at(v, "keys"), &ks), COMMON_EINVAL);
        n++;
    }
    cJSON_ArrayForEach(v, at(vec(), "keys_validation.valid_keysets")) {
        ASSERT_OK(load_keyset(at(v, "keys"), &ks));
        ASSERT_GT(ks.nkeys, 0);
        n++;
    }
    ASSERT_EQ_I64(n, 4);
}

TEST(keyset_id) {
    const cJSON *v;
    int n = 0;
    cashu_keyset_t ks;
    cJSON_ArrayForEach(v, at(vec(), "keyset_id.v1")) {
        char id[17];
        ASSERT_OK(load_keyset(at(v, "keys"), &ks));
        ASSERT_OK(cashu_keyset_id_v1(&ks, id));
        ASSERT_STR_EQ(id, str(v, "id"));
        strcpy(ks.id, id);
        ASSERT_OK(cashu_keyset_verify_id(&ks));
        n++;
    }
    cJSON_ArrayForEach(v, at(vec(), "keyset_id.v2")) {
        char id[67];
        ASSERT_OK(load_keyset(at(v, "keys"), &ks));
        strcpy(ks.unit, str(v, "unit"));
        ASSERT_OK(cashu_json_u64(at(v, "input_fee_ppk"), &ks.input_fee_ppk));
        const cJSON *fx = at(v, "final_expiry");
        if (cJSON_IsNumber(fx)) ASSERT_OK(cashu_json_u64(fx, &ks.final_expiry));
        ASSERT_OK(cashu_keyset_id_v2(&ks, id));
        ASSERT_STR_EQ(id, str(v, "id"));
        strcpy(ks.id, id);
        ASSERT_OK(cashu_keyset_verify_id(&ks));
        ks.input_fee_ppk += 1; /* any change must break the id */
        ASSERT_ERR(cashu_keyset_verify_id(&ks), CASHU_EKEYSET);
        n++;
    }
    ASSERT_EQ_I64(n, 5);
}

TEST(json_amounts) {
    uint64_t v;
    cJSON *j = cJSON_Parse("[1, 9007199254740991, 9007199254740992, 1.5, -1, "
                           "\"18446744073709551615\", \"9223372036854775808\", true]");
    ASSERT_OK(cashu_json_u64(cJSON_GetArrayItem(j, 0), &v));
    ASSERT_EQ_U64(v, 1);
    ASSERT_OK(cashu_json_u64(cJSON_GetArrayItem(j, 1), &v));
    ASSERT_EQ_U64(v, 9007199254740991ull);
    ASSERT_ERR(cashu_json_u64(cJSON_GetArrayItem(j, 2), &v), COMMON_ERANGE);
    ASSERT_ERR(cashu_json_u64(cJSON_GetArrayItem(j, 3), &v), COMMON_EINVAL);
    ASSERT_ERR(cashu_json_u64(cJSON_GetArrayItem(j, 4), &v), COMMON_ERANGE);
    ASSERT_OK(cashu_json_u64(cJSON_GetArrayItem(j, 5), &v));
    ASSERT_EQ_U64(v, UINT64_MAX);
    ASSERT_OK(cashu_json_u64(cJSON_GetArrayItem(j, 6), &v));
    ASSERT_EQ_U64(v, 9223372036854775808ull);
    ASSERT_ERR(cashu_json_u64(cJSON_GetArrayItem(j, 7), &v), COMMON_EINVAL);
    cJSON_Delete(j);
    /* keyset keys up to 2^63 are exact */
    cashu_keyset_t ks = {0};
    j = cJSON_Parse("{\"9223372036854775808\":"
                    "\"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\"}");
    ASSERT_OK(cashu_keyset_parse_keys(j, &ks));
    ASSERT_EQ_U64(ks.keys[0].amount, 9223372036854775808ull);
    cJSON_Delete(j);
}

/* Compare a decoded token against the vector's JSON (proof fields; hex for bytes). */
static int same_as_json(const cashu_token_t *t, const cJSON *proofs_by_entry, const char *mint) {
    size_t k = 0;
    if (strcmp(t->mint, mint) != 0) return 0;
    const cJSON *ent;
    cJSON_ArrayForEach(ent, proofs_by_entry) {
        const cJSON *id = cJSON_GetObjectItem(ent, "i");
        if (!id) id = cJSON_GetObjectItem(ent, "id");
        const cJSON *ps = cJSON_GetObjectItem(ent, "p");
        if (!ps) ps = cJSON_GetObjectItem(ent, "proofs");
        const cJSON *p;
        cJSON_ArrayForEach(p, ps) {
            if (k >= t->nproofs) return 0;
            const cashu_proof_t *q = &t->proofs[k++];
            const cJSON *a = cJSON_GetObjectItem(p, "a");
            if (!a) a = cJSON_GetObjectItem(p, "amount");
            uint64_t amt;
            if (cashu_json_u64(a, &amt) || amt != q->amount) return 0;
            const cJSON *s = cJSON_GetObjectItem(p, "s");
            if (!s) s = cJSON_GetObjectItem(p, "secret");
            if (strcmp(s->valuestring, q->secret) != 0) return 0;
            const cJSON *c = cJSON_GetObjectItem(p, "c");
            if (!c) c = cJSON_GetObjectItem(p, "C");
            char ch[67];
            common_hex_encode(q->C, 33, ch);
            if (strcmp(ch, c->valuestring) != 0) return 0;
            const char *pid = id ? id->valuestring : cJSON_GetObjectItem(p, "id")->valuestring;
            if (strcmp(pid, q->id) != 0) return 0;
        }
    }
    return k == t->nproofs;
}

TEST(token_v3) {
    const cJSON *tv = at(vec(), "token_v3"), *v;
    cashu_token_t t;
    int n = 0;
    cJSON_ArrayForEach(v, at(tv, "valid")) {
        const char *s = str(v, "serialized");
        ASSERT_OK(cashu_token_decode(s, strlen(s), &t));
        ASSERT_EQ_I64(t.version, 3);
        const cJSON *tok = at(v, "json.token");
        ASSERT_TRUE(same_as_json(&t, tok, cJSON_GetArrayItem(tok, 0)->child->valuestring));
        ASSERT_STR_EQ(t.unit, str(v, "json.unit"));
        ASSERT_STR_EQ(t.memo, str(v, "json.memo"));
        /* re-encode (v3 and v4) and decode again: same structure */
        common_buf_t b = {0};
        ASSERT_OK(cashu_token_encode_v3(&t, &b));
        cashu_token_t t2;
        ASSERT_OK(cashu_token_decode((char *)b.data, b.len, &t2));
        ASSERT_TRUE(same_as_json(&t2, tok, t.mint));
        cashu_token_free(&t2);
        b.len = 0;
        ASSERT_OK(cashu_token_encode_v4(&t, 1, &b));
        ASSERT_OK(cashu_token_decode((char *)b.data, b.len, &t2));
        ASSERT_TRUE(same_as_json(&t2, tok, t.mint));
        cashu_token_free(&t2);
        common_buf_free(&b);
        cashu_token_free(&t);
        n++;
    }
    const char *p1 = str(tv, "valid_padding_variants.with_padding");
    const char *p2 = str(tv, "valid_padding_variants.without_padding");
    ASSERT_TRUE(p1 && p2 && strcmp(p1, p2) != 0);
    cashu_token_t a, b2;
    ASSERT_OK(cashu_token_decode(p1, strlen(p1), &a));
    ASSERT_OK(cashu_token_decode(p2, strlen(p2), &b2));
    ASSERT_STR_EQ(a.memo, "Thank you very much.");
    ASSERT_STR_EQ(a.memo, b2.memo);
    ASSERT_EQ_U64(a.nproofs, b2.nproofs);
    cashu_token_free(&a);
    cashu_token_free(&b2);
    cJSON_ArrayForEach(v, at(tv, "invalid")) {
        const char *s = str(v, "serialized");
        ASSERT_ERR(cashu_token_decode(s, strlen(s), &t), CASHU_EBAD_TOKEN);
        n++;
    }
    ASSERT_EQ_I64(n, 3);
}

TEST(token_v4) {
    const cJSON *tv = at(vec(), "token_v4"), *v;
    cashu_token_t t;
    int n = 0;
    cJSON_ArrayForEach(v, at(tv, "vectors")) {
        const char *s = str(v, "serialized");
        const cJSON *js = at(v, "json_bytes_as_hex");
        ASSERT_OK(cashu_token_decode(s, strlen(s), &t));
        ASSERT_EQ_I64(t.version, 4);
        ASSERT_TRUE(same_as_json(&t, at(js, "t"), str(js, "m")));
        ASSERT_STR_EQ(t.unit, str(js, "u"));
        if (str(js, "d"))
            ASSERT_STR_EQ(t.memo, str(js, "d"));
        else
            ASSERT_TRUE(t.memo == NULL);
        /* the CBOR hex decodes to the same thing */
        const char *ch = str(v, "cbor_hex");
        if (!ch) ch = "a0"; /* vector without cbor_hex: checked below to be refused as empty */
        size_t cl = strlen(ch) / 2;
        uint8_t *cb = malloc(cl + 5);
        memcpy(cb, "crawB", 5);
        ASSERT_OK(common_hex_decode_exact(ch, cb + 5, cl));
        cashu_token_t t2;
        if (str(v, "cbor_hex")) {
            ASSERT_OK(cashu_token_decode_binary(cb, cl + 5, &t2));
            ASSERT_TRUE(same_as_json(&t2, at(js, "t"), str(js, "m")));
            cashu_token_free(&t2);
        } else {
            ASSERT_ERR(cashu_token_decode_binary(cb, cl + 5, &t2), CASHU_EBAD_TOKEN);
        }
        free(cb);
        /* re-encode and decode */
        common_buf_t b = {0};
        ASSERT_OK(cashu_token_encode_v4(&t, 0, &b));
        ASSERT_OK(cashu_token_decode((char *)b.data, b.len, &t2));
        ASSERT_TRUE(same_as_json(&t2, at(js, "t"), str(js, "m")));
        cashu_token_free(&t2);
        common_buf_free(&b);
        cashu_token_free(&t);
        n++;
    }
    /* raw binary */
    const char *rh = str(tv, "raw_binary.raw_hex");
    size_t rl = strlen(rh) / 2;
    uint8_t *raw = malloc(rl);
    ASSERT_OK(common_hex_decode_exact(rh, raw, rl));
    ASSERT_OK(cashu_token_decode_binary(raw, rl, &t));
    const cJSON *js = at(tv, "raw_binary.json_bytes_as_hex");
    ASSERT_TRUE(same_as_json(&t, at(js, "t"), str(js, "m")));
    ASSERT_STR_EQ(t.memo, str(js, "d"));
    cashu_token_free(&t);
    raw[0] = 'x';
    ASSERT_ERR(cashu_token_decode_binary(raw, rl, &t), CASHU_EBAD_TOKEN);
    free(raw);
    ASSERT_EQ_I64(n, 2);
}

TEST(token_invalid_inputs) {
    cashu_token_t t;
    static const char *bad[] = {
        "",
        "cashuA",
        "cashuB",
        "cashuC e30",
        "cashuA!!!!",
        "cashuAe30",              /* {} */
        "cashuAeyJ0b2tlbiI6W119", /* {"token":[]} */
        "cashuBoA",               /* {} */
        "cashuBo2F0gA",           /* {t:[]} */
        "cashuBv2F0gP8",          /* indefinite map */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cashu_token_decode(bad[i], strlen(bad[i]), &t);
        if (rc != CASHU_EBAD_TOKEN) TEST_FAIL_("case %zu (%s): rc %d", i, bad[i], rc);
    }
}

static void load_full_keyset(const cJSON *o, cashu_keyset_t *ks) {
    memset(ks, 0, sizeof *ks);
    strcpy(ks->id, str(o, "id"));
    strcpy(ks->unit, "sat");
    cashu_keyset_parse_keys(at(o, "keys"), ks);
}

TEST(derived_tokens) {
    const cJSON *d = at(vec(), "derived_not_official.token_v4_with_dleq_from_nut12_vector");
    cashu_token_t t;
    const char *s = str(d, "serialized");
    ASSERT_OK(cashu_token_decode(s, strlen(s), &t));
    cashu_keyset_t ks;
    load_full_keyset(at(d, "keys"), &ks); /* partial keyset (one key): id not re-derivable */
    ASSERT_ERR(cashu_keyset_verify_id(&ks), CASHU_EKEYSET);
    const cashu_keyset_t *ksl[1] = {&ks};
    ASSERT_OK(cashu_token_resolve_ids(&t, ksl, 1));
    ASSERT_EQ_U64(t.nproofs, 1);
    ASSERT_EQ_U64(t.proofs[0].amount, 1);
    ASSERT_TRUE(t.proofs[0].has_dleq && t.proofs[0].dleq.has_r);
    const uint8_t *A = cashu_keyset_key(&ks, 1);
    ASSERT_TRUE(A);
    cashu_proof_t *p = &t.proofs[0];
    ASSERT_OK(cashu_dleq_verify_proof(A, p->secret, strlen(p->secret), p->C, p->dleq.e, p->dleq.s,
                                      p->dleq.r));
    cashu_token_free(&t);

    /* The Nutshell + cashu-ts token: P2PK-locked, DLEQ, short keyset id. */
    d = at(vec(), "derived_not_official.nutshell_interop_p2pk_dleq_token");
    s = str(d, "serialized");
    ASSERT_OK(cashu_token_decode(s, strlen(s), &t));
    ASSERT_STR_EQ(t.proofs[0].id, str(d, "expect.short_id_hex"));
    ASSERT_STR_EQ(t.mint, str(d, "mint"));
    /* without keysets a short id cannot be resolved */
    ASSERT_ERR(cashu_token_resolve_ids(&t, NULL, 0), CASHU_EKEYSET);
    load_full_keyset(at(d, "keyset"), &ks);
    ASSERT_EQ_U64(ks.nkeys, 64);
    ASSERT_OK(cashu_keyset_verify_id(&ks));
    /* ambiguous mapping fails: two keysets sharing the 8-byte prefix */
    cashu_keyset_t ks2 = ks;
    ks2.id[65] = ks2.id[65] == '0' ? '1' : '0';
    const cashu_keyset_t *amb[2] = {&ks, &ks2};
    ASSERT_ERR(cashu_token_resolve_ids(&t, amb, 2), CASHU_EKEYSET);
    ASSERT_OK(cashu_token_resolve_ids(&t, ksl, 1));
    ASSERT_STR_EQ(t.proofs[0].id, ks.id);
    uint64_t total;
    ASSERT_OK(cashu_token_amount(&t, &total));
    ASSERT_EQ_U64(total, 3);
    uint8_t prov[33];
    ASSERT_OK(common_hex_decode_exact(str(d, "provider_pubkey_hex"), prov, 33));
    for (size_t i = 0; i < t.nproofs; i++) {
        p = &t.proofs[i];
        A = cashu_keyset_key(&ks, p->amount);
        ASSERT_TRUE(A && p->has_dleq && p->dleq.has_r);
        ASSERT_OK(cashu_dleq_verify_proof(A, p->secret, strlen(p->secret), p->C, p->dleq.e,
                                          p->dleq.s, p->dleq.r));
        cashu_p2pk_t pk;
        ASSERT_OK(cashu_p2pk_parse(p->secret, &pk));
        ASSERT_TRUE(pk.is_p2pk);
        ASSERT_MEM_EQ(pk.data, prov, 33);
        ASSERT_FALSE(pk.has_locktime);
        /* secret matches the JSON exactly */
        ASSERT_STR_EQ(p->secret, str(cJSON_GetArrayItem(at(d, "proofs_json"), (int)i), "secret"));
    }
    /* the provider can sign it, and the mint's rule accepts the signature */
    uint8_t sk[32];
    ASSERT_OK(common_hex_decode_exact(str(d, "provider_privkey_hex"), sk, 32));
    common_seeded_rng_t sr;
    common_vclock_t vc = {0};
    common_env_t env = {common_clock_virtual(&vc), common_rng_seeded(&sr, 1), NULL};
    char *w = NULL;
    ASSERT_OK(cashu_p2pk_sign(&env, t.proofs[0].secret, sk, &w));
    ASSERT_OK(cashu_p2pk_verify(t.proofs[0].secret, w, 0));
    ASSERT_ERR(cashu_p2pk_verify(t.proofs[1].secret, w, 0), COMMON_ECRYPTO);
    free(w);
    /* v4 re-encode with short ids decodes back to the same short id */
    common_buf_t b = {0};
    ASSERT_OK(cashu_token_encode_v4(&t, 1, &b));
    cashu_token_t t2;
    ASSERT_OK(cashu_token_decode((char *)b.data, b.len, &t2));
    ASSERT_STR_EQ(t2.proofs[0].id, str(d, "expect.short_id_hex"));
    ASSERT_TRUE(t2.proofs[1].has_dleq);
    ASSERT_MEM_EQ(t2.proofs[1].dleq.r, t.proofs[1].dleq.r, 32);
    cashu_token_free(&t2);
    common_buf_free(&b);
    cashu_token_free(&t);
}

static uint64_t now_unix(void) {
    return (uint64_t)time(NULL);
}

TEST(p2pk_sig_inputs) {
    const cJSON *p = at(vec(), "p2pk");
    struct {
        const char *name;
        int want;
    } cases[] = {
        {"sig_inputs_valid", 0},
        {"sig_inputs_invalid_wrong_secret", COMMON_ECRYPTO},
        {"sig_inputs_multisig_2of_valid", 0},
        {"sig_inputs_multisig_insufficient", COMMON_ECRYPTO},
        {"refund_valid_locktime_past", 0},
        {"refund_invalid_locktime_future", COMMON_ECRYPTO},
        {"valid_locktime_multisig", 0},
        {"valid_refund_multisig", 0},
        {"multisig_locktime_proof_unsigned", COMMON_ECRYPTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cJSON *v = at(p, cases[i].name);
        ASSERT_TRUE(v);
        int rc = cashu_p2pk_verify(str(v, "secret"), str(v, "witness"), now_unix());
        if (rc != cases[i].want) TEST_FAIL_("%s: rc %d want %d", cases[i].name, rc, cases[i].want);
    }
}

/* Build proof and output arrays from a SIG_ALL vector. */
static int sigall_case(const cJSON *v, const char *quote, uint64_t now, common_buf_t *msg) {
    const cJSON *ins = at(v, "inputs"), *outs = at(v, "outputs");
    if (!ins) ins = at(v, "request.inputs"), outs = at(v, "request.outputs");
    size_t nin = (size_t)cJSON_GetArraySize(ins), nout = (size_t)cJSON_GetArraySize(outs);
    cashu_proof_t *ps = calloc(nin, sizeof *ps);
    uint64_t *amts = calloc(nout + 1, sizeof *amts);
    uint8_t(*Bs)[33] = calloc(nout + 1, 33);
    int rc = 0;
    for (size_t i = 0; i < nin && !rc; i++)
        rc = cashu_proof_from_json(cJSON_GetArrayItem(ins, (int)i), &ps[i]);
    for (size_t i = 0; i < nout && !rc; i++) {
        const cJSON *o = cJSON_GetArrayItem(outs, (int)i);
        rc = cashu_json_u64(cJSON_GetObjectItem(o, "amount"), &amts[i]);
        if (!rc) rc = cashu_json_hex(cJSON_GetObjectItem(o, "B_"), Bs[i], 33);
    }
    if (!rc && msg)
        rc = cashu_p2pk_sigall_msg(ps, nin, amts, (const uint8_t(*)[33])Bs, nout, quote, msg);
    else if (!rc)
        rc = cashu_p2pk_verify_sigall(ps, nin, amts, (const uint8_t(*)[33])Bs, nout, quote, now);
    for (size_t i = 0; i < nin; i++) cashu_proof_free(&ps[i]);
    free(ps);
    free(amts);
    free(Bs);
    return rc;
}

TEST(p2pk_sig_all) {
    const cJSON *p = at(vec(), "p2pk");
    /* exact messages */
    const char *ex[] = {"sig_all_swap_example", "sig_all_melt_example"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = at(p, ex[i]);
        common_buf_t m = {0};
        ASSERT_OK(sigall_case(v, str(v, "request.quote"), 0, &m));
        ASSERT_OK(common_buf_append(&m, "", 1));
        ASSERT_STR_EQ((char *)m.data, str(v, "msg_to_sign"));
        common_buf_free(&m);
    }
    struct {
        const char *name;
        int want;
    } cases[] = {
        {"sig_all_swap_valid", 0},
        {"sig_all_swap_invalid_mismatched_tags", CASHU_EBAD_TOKEN},
        {"sig_all_swap_multisig_valid", 0},
        {"sig_all_swap_refund_valid", 0},
        {"sig_all_melt_valid", 0},
        {"sig_all_melt_multisig_valid", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cJSON *v = at(p, cases[i].name);
        ASSERT_TRUE(v);
        int rc = sigall_case(v, str(v, "quote"), now_unix(), NULL);
        if (rc != cases[i].want) TEST_FAIL_("%s: rc %d want %d", cases[i].name, rc, cases[i].want);
    }
}

TEST(p2pk_build_parse_sign) {
    common_seeded_rng_t sr;
    common_vclock_t vc = {0};
    common_env_t env = {common_clock_virtual(&vc), common_rng_seeded(&sr, 7), NULL};
    uint8_t sk[32], pk[33], rsk[32], rpk[33], osk[32], opk[33];
    cashu_random_scalar(&env, sk);
    cashu_random_scalar(&env, rsk);
    cashu_random_scalar(&env, osk);
    ASSERT_OK(cashu_pubkey(sk, pk));
    ASSERT_OK(cashu_pubkey(rsk, rpk));
    ASSERT_OK(cashu_pubkey(osk, opk));
    common_buf_t s = {0};
    ASSERT_OK(cashu_p2pk_build(&env, pk, 1000, rpk, &s));
    cashu_p2pk_t p;
    ASSERT_OK(cashu_p2pk_parse((char *)s.data, &p));
    ASSERT_TRUE(p.is_p2pk && p.has_locktime);
    ASSERT_EQ_U64(p.locktime, 1000);
    ASSERT_MEM_EQ(p.data, pk, 33);
    ASSERT_EQ_U64(p.nrefund, 1);
    ASSERT_MEM_EQ(p.refund[0], rpk, 33);
    char *w_main = NULL, *w_ref = NULL, *w_other = NULL;
    ASSERT_OK(cashu_p2pk_sign(&env, (char *)s.data, sk, &w_main));
    ASSERT_OK(cashu_p2pk_sign(&env, (char *)s.data, rsk, &w_ref));
    ASSERT_OK(cashu_p2pk_sign(&env, (char *)s.data, osk, &w_other));
    ASSERT_OK(cashu_p2pk_verify((char *)s.data, w_main, 10));
    ASSERT_OK(cashu_p2pk_verify((char *)s.data, w_main, 5000));
    ASSERT_ERR(cashu_p2pk_verify((char *)s.data, w_ref, 999), COMMON_ECRYPTO);
    ASSERT_OK(cashu_p2pk_verify((char *)s.data, w_ref, 1000));
    ASSERT_ERR(cashu_p2pk_verify((char *)s.data, w_other, 5000), COMMON_ECRYPTO);
    ASSERT_ERR(cashu_p2pk_verify((char *)s.data, NULL, 10), COMMON_ECRYPTO);
    free(w_main);
    free(w_ref);
    free(w_other);
    common_buf_free(&s);
    /* malformed secrets */
    ASSERT_ERR(cashu_p2pk_parse("deadbeef", &p), COMMON_ENOTFOUND);
    ASSERT_ERR(cashu_p2pk_parse("[\"P2PK\",{\"nonce\":\"1\",\"data\":\"zz\"}]", &p),
               CASHU_EBAD_TOKEN);
    char dup[512];
    char h[67];
    common_hex_encode(pk, 33, h);
    snprintf(dup, sizeof dup,
             "[\"P2PK\",{\"nonce\":\"1\",\"data\":\"%s\",\"tags\":[[\"locktime\",\"1\"],["
             "\"locktime\",\"2\"]]}]",
             h);
    ASSERT_ERR(cashu_p2pk_parse(dup, &p), CASHU_EBAD_TOKEN);
    snprintf(dup, sizeof dup,
             "[\"P2PK\",{\"nonce\":\"1\",\"data\":\"%s\",\"tags\":[[\"pubkeys\",\"%s\"]]}]", h, h);
    ASSERT_ERR(cashu_p2pk_parse(dup, &p), CASHU_EBAD_TOKEN);
    snprintf(dup, sizeof dup,
             "[\"P2PK\",{\"nonce\":\"1\",\"data\":\"%s\",\"tags\":[[\"n_sigs\",\"1.5\"]]}]", h);
    ASSERT_ERR(cashu_p2pk_parse(dup, &p), CASHU_EBAD_TOKEN);
    /* duplicate member: parsers disagree on which one wins */
    snprintf(dup, sizeof dup, "[\"P2PK\",{\"nonce\":\"1\",\"data\":\"%s\",\"data\":\"%s\"}]", h, h);
    ASSERT_ERR(cashu_p2pk_parse(dup, &p), CASHU_EBAD_TOKEN);
    /* trailing bytes after the JSON: the mint would see a plain (unlocked) secret */
    snprintf(dup, sizeof dup, "[\"P2PK\",{\"nonce\":\"1\",\"data\":\"%s\"}]x", h);
    ASSERT_ERR(cashu_p2pk_parse(dup, &p), CASHU_EBAD_TOKEN);
    snprintf(dup, sizeof dup, "[\"P2PK\",{\"nonce\":\"1\",\"data\":\"%s\"}]", h);
    ASSERT_OK(cashu_p2pk_parse(dup, &p));
}

TEST(split_and_fee) {
    cashu_keyset_t ks = {0};
    for (int i = 0; i < 10; i++) ks.keys[i].amount = 1ull << i;
    ks.nkeys = 10;
    uint64_t out[64];
    int n = cashu_split_amount(&ks, 13, out, 64);
    ASSERT_EQ_I64(n, 3);
    ASSERT_EQ_U64(out[0], 1);
    ASSERT_EQ_U64(out[1], 4);
    ASSERT_EQ_U64(out[2], 8);
    n = cashu_split_amount(&ks, 1023, out, 64);
    ASSERT_EQ_I64(n, 10);
    n = cashu_split_amount(&ks, 2047, out, 64);
    ASSERT_EQ_I64(n, 12); /* 512 x 3 + 511 */
    ASSERT_ERR(cashu_split_amount(&ks, 2047, out, 5), COMMON_ETOOBIG);
    ASSERT_EQ_U64(cashu_fee_from_ppk_sum(0), 0);
    ASSERT_EQ_U64(cashu_fee_from_ppk_sum(100), 1);
    ASSERT_EQ_U64(cashu_fee_from_ppk_sum(1000), 1);
    ASSERT_EQ_U64(cashu_fee_from_ppk_sum(1001), 2);
}

TEST_MAIN(TEST_ENTRY(hash_to_curve), TEST_ENTRY(bdhke), TEST_ENTRY(bdhke_roundtrip),
          TEST_ENTRY(dleq), TEST_ENTRY(dleq_create_verify_random), TEST_ENTRY(keys_validation),
          TEST_ENTRY(keyset_id), TEST_ENTRY(json_amounts), TEST_ENTRY(token_v3),
          TEST_ENTRY(token_v4), TEST_ENTRY(token_invalid_inputs), TEST_ENTRY(derived_tokens),
          TEST_ENTRY(p2pk_sig_inputs), TEST_ENTRY(p2pk_sig_all), TEST_ENTRY(p2pk_build_parse_sign),
          TEST_ENTRY(split_and_fee))
