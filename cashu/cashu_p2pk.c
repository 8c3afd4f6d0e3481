/* SPDX-License-Identifier: MIT */
/* NUT-10/11 P2PK; see cashu_p2pk.h. */
#include "cashu/cashu_p2pk.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/cashu_crypto.h"
#include "common/common_err.h"

#define MAX_SIGS (2 * CASHU_P2PK_MAX_KEYS)

static int parse_key(const char *hex, uint8_t out[33]) {
    if (!hex || strlen(hex) != 66 || common_hex_decode_exact(hex, out, 33)) return CASHU_EBAD_TOKEN;
    return cashu_point_valid(out) ? 0 : CASHU_EBAD_TOKEN;
}

static int dup_x(const uint8_t (*keys)[33], size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (memcmp(keys[i] + 1, keys[j] + 1, 32) == 0) return 1;
    return 0;
}

static int tag_keys(const cJSON *tag, uint8_t (*keys)[33], size_t *n) {
    int cnt = cJSON_GetArraySize(tag) - 1;
    if (cnt < 1 || cnt > CASHU_P2PK_MAX_KEYS) return CASHU_EBAD_TOKEN;
    for (int i = 0; i < cnt; i++)
        if (parse_key(cJSON_GetArrayItem(tag, i + 1)->valuestring, keys[i]))
            return CASHU_EBAD_TOKEN;
    *n = (size_t)cnt;
    return 0;
}

static int tag_u64(const cJSON *tag, uint64_t *v) {
    if (cJSON_GetArraySize(tag) != 2) return CASHU_EBAD_TOKEN;
    return common_parse_u64(cJSON_GetArrayItem(tag, 1)->valuestring, 0, UINT64_MAX, v)
               ? CASHU_EBAD_TOKEN
               : 0;
}

static int parse_tree(const cJSON *root, cashu_p2pk_t *out) {
    memset(out, 0, sizeof *out);
    out->n_sigs = 1;
    out->n_sigs_refund = 1;
    const cJSON *kind = cJSON_GetArrayItem(root, 0);
    const cJSON *body = cJSON_GetArrayItem(root, 1);
    if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) != 2 || !cJSON_IsString(kind))
        return COMMON_ENOTFOUND;
    if (!cJSON_IsObject(body)) return CASHU_EBAD_TOKEN;
    /* cJSON keeps the first of duplicate members, Python/JS parsers the last: a secret with a
     * duplicate member would mean one lock to us and another to the mint. Refuse it. */
    for (const cJSON *a = body->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return CASHU_EBAD_TOKEN;
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(body, "nonce");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(body, "tags");
    if (!cJSON_IsString(nonce) || !cJSON_IsString(data)) return CASHU_EBAD_TOKEN;
    out->is_p2pk = strcmp(kind->valuestring, "P2PK") == 0;
    if (out->is_p2pk && parse_key(data->valuestring, out->data)) return CASHU_EBAD_TOKEN;
    if (tags && !cJSON_IsNull(tags)) {
        if (!cJSON_IsArray(tags)) return CASHU_EBAD_TOKEN;
        unsigned seen = 0;
        const cJSON *tag;
        cJSON_ArrayForEach(tag, tags) {
            if (!cJSON_IsArray(tag) || cJSON_GetArraySize(tag) < 1) return CASHU_EBAD_TOKEN;
            const cJSON *v;
            cJSON_ArrayForEach(v, tag) {
                if (!cJSON_IsString(v) || !v->valuestring[0]) return CASHU_EBAD_TOKEN;
            }
            const char *name = cJSON_GetArrayItem(tag, 0)->valuestring;
            static const char *known[] = {"sigflag", "n_sigs",  "locktime",
                                          "refund",  "pubkeys", "n_sigs_refund"};
            unsigned bit = 0;
            for (unsigned i = 0; i < 6; i++)
                if (strcmp(name, known[i]) == 0) bit = 1u << i;
            if (!bit) continue; /* unknown tags are ignored */
            if (seen & bit) return CASHU_EBAD_TOKEN;
            seen |= bit;
            int rc = 0;
            if (bit == 1) {
                const char *f =
                    cJSON_GetArraySize(tag) == 2 ? cJSON_GetArrayItem(tag, 1)->valuestring : "";
                if (strcmp(f, "SIG_ALL") == 0)
                    out->sig_all = 1;
                else if (strcmp(f, "SIG_INPUTS") != 0)
                    rc = CASHU_EBAD_TOKEN;
            } else if (bit == 2) {
                rc = tag_u64(tag, &out->n_sigs);
                if (!rc && out->n_sigs == 0) rc = CASHU_EBAD_TOKEN;
            } else if (bit == 4) {
                rc = tag_u64(tag, &out->locktime);
                out->has_locktime = 1;
            } else if (bit == 8) {
                rc = tag_keys(tag, out->refund, &out->nrefund);
            } else if (bit == 16) {
                rc = tag_keys(tag, out->pubkeys, &out->npubkeys);
            } else {
                rc = tag_u64(tag, &out->n_sigs_refund);
                if (!rc && out->n_sigs_refund == 0) rc = CASHU_EBAD_TOKEN;
            }
            if (rc) return rc;
        }
    }
    if (out->is_p2pk) {
        uint8_t all[CASHU_P2PK_MAX_KEYS + 1][33];
        memcpy(all[0], out->data, 33);
        memcpy(all[1], out->pubkeys, out->npubkeys * 33);
        if (dup_x((const uint8_t(*)[33])all, out->npubkeys + 1)) return CASHU_EBAD_TOKEN;
    }
    if (dup_x((const uint8_t(*)[33])out->refund, out->nrefund)) return CASHU_EBAD_TOKEN;
    return 0;
}

int cashu_p2pk_parse(const char *secret, cashu_p2pk_t *out) {
    if (!secret || secret[0] != '[') {
        memset(out, 0, sizeof *out);
        return COMMON_ENOTFOUND;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(secret, &end, 1); /* nothing may follow the JSON */
    if (!root) {
        memset(out, 0, sizeof *out);
        /* starts like JSON but is not exactly one JSON value: the mint would read it as a plain
         * secret (anyone-can-spend) while we might not: refuse as malformed */
        return CASHU_EBAD_TOKEN;
    }
    int rc = parse_tree(root, out);
    cJSON_Delete(root);
    return rc;
}

int cashu_p2pk_build(const common_env_t *env, const uint8_t data[33], uint64_t locktime,
                     const uint8_t *refund33, common_buf_t *out) {
    uint8_t nonce[32];
    char nh[65], dh[67], rh[67];
    common_random(env, nonce, sizeof nonce);
    common_hex_encode(nonce, 32, nh);
    common_hex_encode(data, 33, dh);
    int rc =
        common_buf_printf(out, "[\"P2PK\",{\"nonce\":\"%s\",\"data\":\"%s\",\"tags\":[", nh, dh);
    if (!rc && locktime)
        rc = common_buf_printf(out, "[\"locktime\",\"%llu\"]", (unsigned long long)locktime);
    if (!rc && refund33) {
        common_hex_encode(refund33, 33, rh);
        rc = common_buf_printf(out, "%s[\"refund\",\"%s\"]", locktime ? "," : "", rh);
    }
    if (!rc) rc = common_buf_printf(out, "]}]");
    return rc;
}

int cashu_p2pk_sign(const common_env_t *env, const char *secret, const uint8_t sk[32],
                    char **witness_out) {
    uint8_t h[32], aux[32], sig[64];
    char sh[129];
    crypto_hash_sha256(h, (const uint8_t *)secret, strlen(secret));
    common_random(env, aux, sizeof aux);
    int rc = cashu_schnorr_sign(sk, h, aux, sig);
    if (rc) return rc;
    common_hex_encode(sig, 64, sh);
    size_t n = strlen("{\"signatures\":[\"\"]}") + 128 + 1;
    char *w = malloc(n);
    if (!w) return COMMON_ENOMEM;
    snprintf(w, n, "{\"signatures\":[\"%s\"]}", sh);
    *witness_out = w;
    return 0;
}

int cashu_p2pk_witness_sigs(const char *witness, uint8_t (*sigs)[64], size_t cap) {
    cJSON *root = witness ? cJSON_ParseWithOpts(witness, NULL, 1) : NULL;
    if (!root) return CASHU_EBAD_TOKEN;
    int rc = CASHU_EBAD_TOKEN;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "signatures");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(arr)) goto out;
    size_t n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, arr) {
        if (n >= cap || !cJSON_IsString(s) || strlen(s->valuestring) != 128 ||
            common_hex_decode_exact(s->valuestring, sigs[n], 64))
            goto out;
        n++;
    }
    rc = (int)n;
out:
    cJSON_Delete(root);
    return rc;
}

static uint64_t count_signers(const uint8_t (*keys)[33], size_t nkeys, const uint8_t (*sigs)[64],
                              int nsigs, const uint8_t h[32]) {
    uint64_t c = 0;
    for (size_t k = 0; k < nkeys; k++)
        for (int i = 0; i < nsigs; i++)
            if (cashu_schnorr_verify(keys[k], h, sigs[i]) == 0) {
                c++;
                break;
            }
    return c;
}

int cashu_p2pk_verify_msg(const char *secret, const char *witness, uint64_t now_unix,
                          const void *msg, size_t msglen) {
    cashu_p2pk_t p;
    int rc = cashu_p2pk_parse(secret, &p);
    if (rc == COMMON_ENOTFOUND) return CASHU_EBAD_TOKEN;
    if (rc) return rc;
    if (!p.is_p2pk) return COMMON_EUNSUPPORTED;
    uint8_t h[32];
    if (msg)
        crypto_hash_sha256(h, msg, msglen);
    else
        crypto_hash_sha256(h, (const uint8_t *)secret, strlen(secret));
    uint8_t sigs[MAX_SIGS][64];
    int nsigs = witness ? cashu_p2pk_witness_sigs(witness, sigs, MAX_SIGS) : 0;
    if (nsigs < 0) nsigs = 0; /* a malformed witness signs nothing */
    uint8_t main_keys[CASHU_P2PK_MAX_KEYS + 1][33];
    memcpy(main_keys[0], p.data, 33);
    memcpy(main_keys[1], p.pubkeys, p.npubkeys * 33);
    if (count_signers((const uint8_t(*)[33])main_keys, p.npubkeys + 1, (const uint8_t(*)[64])sigs,
                      nsigs, h) >= p.n_sigs)
        return 0;
    if (p.has_locktime && now_unix >= p.locktime) {
        if (p.nrefund == 0) return 0; /* anyone can spend after the locktime */
        if (count_signers((const uint8_t(*)[33])p.refund, p.nrefund, (const uint8_t(*)[64])sigs,
                          nsigs, h) >= p.n_sigs_refund)
            return 0;
    }
    return COMMON_ECRYPTO;
}

int cashu_p2pk_verify(const char *secret, const char *witness, uint64_t now_unix) {
    return cashu_p2pk_verify_msg(secret, witness, now_unix, NULL, 0);
}

int cashu_p2pk_sigall_msg(const cashu_proof_t *ins, size_t nin, const uint64_t *outs_amount,
                          const uint8_t (*outs_B)[33], size_t nout, const char *quote,
                          common_buf_t *out) {
    int rc = 0;
    for (size_t i = 0; i < nin && !rc; i++) {
        char ch[67];
        common_hex_encode(ins[i].C, 33, ch);
        rc = common_buf_printf(out, "%s%s", ins[i].secret, ch);
    }
    for (size_t i = 0; i < nout && !rc; i++) {
        char bh[67];
        common_hex_encode(outs_B[i], 33, bh);
        rc = common_buf_printf(out, "%llu%s", (unsigned long long)outs_amount[i], bh);
    }
    if (!rc && quote) rc = common_buf_printf(out, "%s", quote);
    return rc;
}

static int same_item(const cJSON *a, const cJSON *b) {
    if (!a || !b) return !a && !b;
    return cJSON_Compare(a, b, 1);
}

int cashu_p2pk_verify_sigall(const cashu_proof_t *ins, size_t nin, const uint64_t *outs_amount,
                             const uint8_t (*outs_B)[33], size_t nout, const char *quote,
                             uint64_t now_unix) {
    if (nin == 0) return COMMON_EINVAL;
    cJSON *first = cJSON_Parse(ins[0].secret);
    int rc = CASHU_EBAD_TOKEN;
    if (!first || !cJSON_IsArray(first)) goto out;
    const cJSON *k0 = cJSON_GetArrayItem(first, 0), *b0 = cJSON_GetArrayItem(first, 1);
    for (size_t i = 1; i < nin; i++) {
        cJSON *o = cJSON_Parse(ins[i].secret);
        int same = o && cJSON_IsArray(o) && cJSON_Compare(k0, cJSON_GetArrayItem(o, 0), 1);
        if (same) {
            const cJSON *bi = cJSON_GetArrayItem(o, 1);
            same = same_item(cJSON_GetObjectItemCaseSensitive(b0, "data"),
                             cJSON_GetObjectItemCaseSensitive(bi, "data")) &&
                   same_item(cJSON_GetObjectItemCaseSensitive(b0, "tags"),
                             cJSON_GetObjectItemCaseSensitive(bi, "tags"));
        }
        cJSON_Delete(o);
        if (!same) goto out;
    }
    cashu_p2pk_t p;
    if ((rc = cashu_p2pk_parse(ins[0].secret, &p))) {
        if (rc == COMMON_ENOTFOUND) rc = CASHU_EBAD_TOKEN;
        goto out;
    }
    if (!p.sig_all) {
        rc = CASHU_EBAD_TOKEN;
        goto out;
    }
    common_buf_t m = {0};
    rc = cashu_p2pk_sigall_msg(ins, nin, outs_amount, outs_B, nout, quote, &m);
    if (!rc) rc = cashu_p2pk_verify_msg(ins[0].secret, ins[0].witness, now_unix, m.data, m.len);
    common_buf_free(&m);
out:
    cJSON_Delete(first);
    return rc;
}
