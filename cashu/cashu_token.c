/* SPDX-License-Identifier: MIT */
/* Token v3/v4 codecs; see cashu_token.h. */
#include "cashu/cashu_token.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/cashu_cbor.h"
#include "cashu/cashu_crypto.h"
#include "common/common_err.h"
#include "common/common_utf8.h"

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void cashu_proof_free(cashu_proof_t *p) {
    if (!p) return;
    if (p->secret) {
        free(p->secret);
    }
    free(p->witness);
    p->secret = p->witness = NULL;
}

void cashu_token_free(cashu_token_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nproofs; i++) cashu_proof_free(&t->proofs[i]);
    free(t->proofs);
    free(t->mint);
    free(t->unit);
    free(t->memo);
    memset(t, 0, sizeof *t);
}

int cashu_proof_copy(cashu_proof_t *dst, const cashu_proof_t *src) {
    *dst = *src;
    dst->secret = src->secret ? strdup(src->secret) : NULL;
    dst->witness = src->witness ? strdup(src->witness) : NULL;
    if ((src->secret && !dst->secret) || (src->witness && !dst->witness)) {
        cashu_proof_free(dst);
        return COMMON_ENOMEM;
    }
    return 0;
}

int cashu_proof_Y(const cashu_proof_t *p, uint8_t Y[33]) {
    return cashu_hash_to_curve(p->secret, strlen(p->secret), Y);
}

int cashu_token_amount(const cashu_token_t *t, uint64_t *sum) {
    uint64_t s = 0;
    for (size_t i = 0; i < t->nproofs; i++) {
        if (s + t->proofs[i].amount < s) return COMMON_ERANGE;
        s += t->proofs[i].amount;
    }
    *sum = s;
    return 0;
}

static int set_mint(cashu_token_t *t, const char *s, size_t n) {
    while (n > 0 && s[n - 1] == '/') n--;
    if (n == 0 || n > CASHU_MINT_URL_MAX) return CASHU_EBAD_TOKEN;
    for (size_t i = 0; i < n; i++) /* a URL: printable ASCII, no spaces */
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return CASHU_EBAD_TOKEN;
    t->mint = dupn(s, n);
    return t->mint ? 0 : COMMON_ENOMEM;
}

static int valid_id_hex(const char *id) {
    size_t n = strlen(id);
    if (n != 16 && n != 66) return 0;
    /* v1 "00"+14, short v2 "01"+14, full v2 "01"+64 */
    if (id[0] != '0' || (id[1] != '0' && id[1] != '1') || (n == 66 && id[1] != '1')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

static int check_secret(const char *s, size_t n) {
    if (n == 0 || n > CASHU_SECRET_MAX || memchr(s, 0, n)) return CASHU_EBAD_TOKEN;
    return common_utf8_valid(s, n) ? 0 : CASHU_EBAD_TOKEN;
}

/* ---- JSON (v3 and the mint API) ---- */

int cashu_proof_from_json(const cJSON *o, cashu_proof_t *p) {
    memset(p, 0, sizeof *p);
    if (!cJSON_IsObject(o)) return CASHU_EBAD_TOKEN;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "amount");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "secret");
    const cJSON *C = cJSON_GetObjectItemCaseSensitive(o, "C");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "witness");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "dleq");
    if (cashu_json_u64(a, &p->amount) || p->amount == 0) return CASHU_EBAD_TOKEN;
    if (!cJSON_IsString(id) || !valid_id_hex(id->valuestring)) return CASHU_EBAD_TOKEN;
    strcpy(p->id, id->valuestring);
    if (!cJSON_IsString(sec) || check_secret(sec->valuestring, strlen(sec->valuestring)))
        return CASHU_EBAD_TOKEN;
    if (cashu_json_hex(C, p->C, 33) || !cashu_point_valid(p->C)) return CASHU_EBAD_TOKEN;
    if (d && !cJSON_IsNull(d)) {
        if (!cJSON_IsObject(d)) return CASHU_EBAD_TOKEN;
        if (cashu_json_hex(cJSON_GetObjectItemCaseSensitive(d, "e"), p->dleq.e, 32) ||
            cashu_json_hex(cJSON_GetObjectItemCaseSensitive(d, "s"), p->dleq.s, 32))
            return CASHU_EBAD_TOKEN;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "r");
        if (r && !cJSON_IsNull(r)) {
            if (cashu_json_hex(r, p->dleq.r, 32)) return CASHU_EBAD_TOKEN;
            p->dleq.has_r = 1;
        }
        p->has_dleq = 1;
    }
    if (w && !cJSON_IsNull(w)) {
        if (!cJSON_IsString(w) || strlen(w->valuestring) > CASHU_WITNESS_MAX)
            return CASHU_EBAD_TOKEN;
        if (!(p->witness = strdup(w->valuestring))) return COMMON_ENOMEM;
    }
    if (!(p->secret = strdup(sec->valuestring))) {
        cashu_proof_free(p);
        return COMMON_ENOMEM;
    }
    return 0;
}

static cJSON *amount_json(uint64_t a) {
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)a);
    return cJSON_CreateRaw(buf); /* exact for every uint64 */
}

static int add_hex(cJSON *o, const char *k, const uint8_t *b, size_t n) {
    char hex[133];
    common_hex_encode(b, n, hex);
    return cJSON_AddStringToObject(o, k, hex) ? 0 : COMMON_ENOMEM;
}

cJSON *cashu_proof_to_json(const cashu_proof_t *p, int with_dleq) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON *a = amount_json(p->amount);
    if (!a || !cJSON_AddItemToObject(o, "amount", a)) goto fail;
    if (!cJSON_AddStringToObject(o, "id", p->id)) goto fail;
    if (!cJSON_AddStringToObject(o, "secret", p->secret)) goto fail;
    if (add_hex(o, "C", p->C, 33)) goto fail;
    if (p->witness && !cJSON_AddStringToObject(o, "witness", p->witness)) goto fail;
    if (with_dleq && p->has_dleq) {
        cJSON *d = cJSON_AddObjectToObject(o, "dleq");
        if (!d || add_hex(d, "e", p->dleq.e, 32) || add_hex(d, "s", p->dleq.s, 32)) goto fail;
        if (p->dleq.has_r && add_hex(d, "r", p->dleq.r, 32)) goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int push_proof(cashu_token_t *t, size_t *cap, cashu_proof_t *p) {
    if (t->nproofs >= CASHU_TOKEN_MAX_PROOFS) return CASHU_EBAD_TOKEN;
    if (t->nproofs == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        if (nc > CASHU_TOKEN_MAX_PROOFS) nc = CASHU_TOKEN_MAX_PROOFS;
        cashu_proof_t *np = realloc(t->proofs, nc * sizeof *np);
        if (!np) return COMMON_ENOMEM;
        t->proofs = np;
        *cap = nc;
    }
    t->proofs[t->nproofs++] = *p;
    memset(p, 0, sizeof *p);
    return 0;
}

static int set_str(char **dst, const char *s, size_t n, size_t max) {
    if (n > max || memchr(s, 0, n) || !common_utf8_valid(s, n)) return CASHU_EBAD_TOKEN;
    *dst = dupn(s, n);
    return *dst ? 0 : COMMON_ENOMEM;
}

static int decode_v3(const uint8_t *json, size_t len, cashu_token_t *t) {
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    if (!root) return CASHU_EBAD_TOKEN;
    int rc = CASHU_EBAD_TOKEN;
    size_t cap = 0;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "token");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1) goto out;
    const cJSON *ent;
    cJSON_ArrayForEach(ent, arr) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ent, "mint");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(ent, "proofs");
        if (!cJSON_IsString(m) || !cJSON_IsArray(ps)) goto out;
        if (!t->mint) {
            if ((rc = set_mint(t, m->valuestring, strlen(m->valuestring)))) goto out;
            rc = CASHU_EBAD_TOKEN;
        } else {
            size_t n = strlen(m->valuestring);
            while (n > 0 && m->valuestring[n - 1] == '/') n--;
            if (strlen(t->mint) != n || strncmp(t->mint, m->valuestring, n) != 0) {
                rc = COMMON_EUNSUPPORTED; /* several mints in one token */
                goto out;
            }
        }
        const cJSON *pj;
        cJSON_ArrayForEach(pj, ps) {
            cashu_proof_t p;
            if ((rc = cashu_proof_from_json(pj, &p))) goto out;
            if ((rc = push_proof(t, &cap, &p))) {
                cashu_proof_free(&p);
                goto out;
            }
        }
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "unit");
    const cJSON *memo = cJSON_GetObjectItemCaseSensitive(root, "memo");
    rc = CASHU_EBAD_TOKEN;
    if (u && !cJSON_IsNull(u)) {
        if (!cJSON_IsString(u)) goto out;
        if ((rc = set_str(&t->unit, u->valuestring, strlen(u->valuestring), CASHU_UNIT_MAX)))
            goto out;
    }
    if (memo && !cJSON_IsNull(memo)) {
        if (!cJSON_IsString(memo)) goto out;
        if ((rc = set_str(&t->memo, memo->valuestring, strlen(memo->valuestring), CASHU_MEMO_MAX)))
            goto out;
    }
    rc = t->nproofs ? 0 : CASHU_EBAD_TOKEN;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- CBOR (v4) ---- */

static int key_is(const char *k, size_t kl, const char *want) {
    return kl == strlen(want) && memcmp(k, want, kl) == 0;
}

static int v4_fixed(cashu_cbor_rd_t *r, uint8_t *out, size_t n) {
    const uint8_t *d;
    size_t l;
    if (cashu_cbor_bytes(r, &d, &l) || l != n) return CASHU_EBAD_TOKEN;
    memcpy(out, d, n);
    return 0;
}

static int v4_dleq(cashu_cbor_rd_t *r, cashu_dleq_t *dl) {
    size_t n;
    int have_e = 0, have_s = 0;
    if (cashu_cbor_map(r, &n)) return CASHU_EBAD_TOKEN;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cashu_cbor_text(r, &k, &kl)) return CASHU_EBAD_TOKEN;
        if (key_is(k, kl, "e")) {
            if (v4_fixed(r, dl->e, 32)) return CASHU_EBAD_TOKEN;
            have_e = 1;
        } else if (key_is(k, kl, "s")) {
            if (v4_fixed(r, dl->s, 32)) return CASHU_EBAD_TOKEN;
            have_s = 1;
        } else if (key_is(k, kl, "r")) {
            if (v4_fixed(r, dl->r, 32)) return CASHU_EBAD_TOKEN;
            dl->has_r = 1;
        } else if (cashu_cbor_skip(r)) {
            return CASHU_EBAD_TOKEN;
        }
    }
    return have_e && have_s ? 0 : CASHU_EBAD_TOKEN;
}

static int v4_proof(cashu_cbor_rd_t *r, const char *id, cashu_proof_t *p) {
    size_t n;
    int have_a = 0, have_c = 0;
    memset(p, 0, sizeof *p);
    strcpy(p->id, id);
    if (cashu_cbor_map(r, &n)) return CASHU_EBAD_TOKEN;
    for (size_t i = 0; i < n; i++) {
        const char *k, *s;
        size_t kl, sl;
        int rc;
        if (cashu_cbor_text(r, &k, &kl)) return CASHU_EBAD_TOKEN;
        if (key_is(k, kl, "a")) {
            if (have_a || cashu_cbor_uint(r, &p->amount) || p->amount == 0) return CASHU_EBAD_TOKEN;
            have_a = 1;
        } else if (key_is(k, kl, "s")) {
            if (p->secret || cashu_cbor_text(r, &s, &sl) || check_secret(s, sl))
                return CASHU_EBAD_TOKEN;
            if (!(p->secret = dupn(s, sl))) return COMMON_ENOMEM;
        } else if (key_is(k, kl, "c")) {
            if (v4_fixed(r, p->C, 33) || !cashu_point_valid(p->C)) return CASHU_EBAD_TOKEN;
            have_c = 1;
        } else if (key_is(k, kl, "d")) {
            if (p->has_dleq || (rc = v4_dleq(r, &p->dleq))) return CASHU_EBAD_TOKEN;
            p->has_dleq = 1;
        } else if (key_is(k, kl, "w")) {
            if (p->witness || cashu_cbor_text(r, &s, &sl) || sl > CASHU_WITNESS_MAX ||
                memchr(s, 0, sl))
                return CASHU_EBAD_TOKEN;
            if (!(p->witness = dupn(s, sl))) return COMMON_ENOMEM;
        } else if (cashu_cbor_skip(r)) {
            return CASHU_EBAD_TOKEN;
        }
    }
    return have_a && have_c && p->secret ? 0 : CASHU_EBAD_TOKEN;
}

static int v4_entry(cashu_cbor_rd_t *r, cashu_token_t *t, size_t *cap) {
    size_t n;
    char id[CASHU_KEYSET_ID_HEX_MAX + 1] = "";
    size_t proofs_pos = 0;
    int have_p = 0;
    if (cashu_cbor_map(r, &n)) return CASHU_EBAD_TOKEN;
    /* The id may come after the proofs: remember where the proofs are and read them last. */
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cashu_cbor_text(r, &k, &kl)) return CASHU_EBAD_TOKEN;
        if (key_is(k, kl, "i")) {
            const uint8_t *d;
            size_t l;
            if (id[0] || cashu_cbor_bytes(r, &d, &l) || (l != 8 && l != 33))
                return CASHU_EBAD_TOKEN;
            if (d[0] != 0x00 && d[0] != 0x01) return CASHU_EBAD_TOKEN;
            if (l == 33 && d[0] != 0x01) return CASHU_EBAD_TOKEN;
            common_hex_encode(d, l, id);
        } else if (key_is(k, kl, "p")) {
            if (have_p) return CASHU_EBAD_TOKEN;
            proofs_pos = r->pos;
            have_p = 1;
            if (cashu_cbor_skip(r)) return CASHU_EBAD_TOKEN;
        } else if (cashu_cbor_skip(r)) {
            return CASHU_EBAD_TOKEN;
        }
    }
    if (!id[0] || !have_p) return CASHU_EBAD_TOKEN;
    cashu_cbor_rd_t pr = {r->p, r->len, proofs_pos};
    size_t np;
    if (cashu_cbor_array(&pr, &np) || np == 0) return CASHU_EBAD_TOKEN;
    for (size_t i = 0; i < np; i++) {
        cashu_proof_t p;
        int rc = v4_proof(&pr, id, &p);
        if (!rc) rc = push_proof(t, cap, &p);
        if (rc) {
            cashu_proof_free(&p);
            return rc;
        }
    }
    return 0;
}

static int decode_v4(const uint8_t *cbor, size_t len, cashu_token_t *t) {
    cashu_cbor_rd_t r = {cbor, len, 0};
    size_t n, cap = 0;
    int have_t = 0;
    if (cashu_cbor_map(&r, &n)) return CASHU_EBAD_TOKEN;
    for (size_t i = 0; i < n; i++) {
        const char *k, *s;
        size_t kl, sl;
        int rc;
        if (cashu_cbor_text(&r, &k, &kl)) return CASHU_EBAD_TOKEN;
        if (key_is(k, kl, "m")) {
            if (t->mint || cashu_cbor_text(&r, &s, &sl)) return CASHU_EBAD_TOKEN;
            if ((rc = set_mint(t, s, sl))) return rc;
        } else if (key_is(k, kl, "u")) {
            if (t->unit || cashu_cbor_text(&r, &s, &sl)) return CASHU_EBAD_TOKEN;
            if ((rc = set_str(&t->unit, s, sl, CASHU_UNIT_MAX))) return rc;
        } else if (key_is(k, kl, "d")) {
            if (t->memo || cashu_cbor_text(&r, &s, &sl)) return CASHU_EBAD_TOKEN;
            if ((rc = set_str(&t->memo, s, sl, CASHU_MEMO_MAX))) return rc;
        } else if (key_is(k, kl, "t")) {
            size_t ne;
            if (have_t || cashu_cbor_array(&r, &ne) || ne == 0) return CASHU_EBAD_TOKEN;
            have_t = 1;
            for (size_t j = 0; j < ne; j++)
                if ((rc = v4_entry(&r, t, &cap))) return rc;
        } else if (cashu_cbor_skip(&r)) {
            return CASHU_EBAD_TOKEN;
        }
    }
    if (r.pos != len) return CASHU_EBAD_TOKEN; /* trailing bytes */
    return have_t && t->mint && t->nproofs ? 0 : CASHU_EBAD_TOKEN;
}

static int finish(cashu_token_t *t, int rc, int version) {
    if (!rc && !t->unit && !(t->unit = strdup("sat"))) rc = COMMON_ENOMEM;
    if (rc)
        cashu_token_free(t);
    else
        t->version = version;
    return rc;
}

int cashu_token_decode(const char *s, size_t len, cashu_token_t *out) {
    memset(out, 0, sizeof *out);
    if (!s || len < 7 || len > CASHU_TOKEN_MAX_LEN) return CASHU_EBAD_TOKEN;
    int version;
    if (memcmp(s, "cashuA", 6) == 0)
        version = 3;
    else if (memcmp(s, "cashuB", 6) == 0)
        version = 4;
    else
        return CASHU_EBAD_TOKEN;
    size_t cap = (len - 6) / 4 * 3 + 3;
    uint8_t *raw = malloc(cap);
    if (!raw) return COMMON_ENOMEM;
    size_t rl = 0;
    int rc = common_b64_decode(s + 6, len - 6, raw, cap, &rl);
    if (rc)
        rc = rc == COMMON_ENOMEM ? rc : CASHU_EBAD_TOKEN;
    else
        rc = version == 3 ? decode_v3(raw, rl, out) : decode_v4(raw, rl, out);
    free(raw);
    return finish(out, rc, version);
}

int cashu_token_decode_binary(const uint8_t *b, size_t len, cashu_token_t *out) {
    memset(out, 0, sizeof *out);
    if (!b || len < 6 || len > CASHU_TOKEN_MAX_LEN || memcmp(b, "crawB", 5) != 0)
        return CASHU_EBAD_TOKEN;
    return finish(out, decode_v4(b + 5, len - 5, out), 4);
}

int cashu_token_resolve_ids(cashu_token_t *t, const cashu_keyset_t *const *ks, size_t n) {
    for (size_t i = 0; i < t->nproofs; i++) {
        int k = cashu_keyset_resolve(t->proofs[i].id, ks, n);
        if (k < 0) return CASHU_EKEYSET;
        strcpy(t->proofs[i].id, ks[k]->id);
    }
    return 0;
}

/* ---- encoders ---- */

static int b64_out(const char *prefix, const uint8_t *data, size_t len, common_buf_t *out) {
    size_t el = common_b64_encoded_len(len, COMMON_B64_URL_RAW);
    char *enc = malloc(el);
    if (!enc) return COMMON_ENOMEM;
    common_b64_encode(data, len, enc, COMMON_B64_URL_RAW);
    int rc = common_buf_printf(out, "%s%s", prefix, enc);
    free(enc);
    return rc;
}

int cashu_token_encode_v4(const cashu_token_t *t, int short_ids, common_buf_t *out) {
    common_buf_t b = {0};
    int rc = 0;
    if (!t->mint || t->nproofs == 0) return COMMON_EINVAL;
    size_t nkeys = 3 + (t->memo ? 1 : 0);
    /* Group proofs by keyset id in order of first appearance. */
    size_t *grp = calloc(t->nproofs, sizeof *grp);
    if (!grp) return COMMON_ENOMEM;
    size_t ngroups = 0;
    for (size_t i = 0; i < t->nproofs; i++) {
        size_t g;
        for (g = 0; g < ngroups; g++)
            if (strcmp(t->proofs[grp[g]].id, t->proofs[i].id) == 0) break;
        if (g == ngroups) grp[ngroups++] = i;
    }
    rc |= cashu_cbor_put_head(&b, CBOR_MAP, nkeys);
    rc |= cashu_cbor_put_cstr(&b, "m");
    rc |= cashu_cbor_put_cstr(&b, t->mint);
    rc |= cashu_cbor_put_cstr(&b, "u");
    rc |= cashu_cbor_put_cstr(&b, t->unit ? t->unit : "sat");
    if (t->memo) {
        rc |= cashu_cbor_put_cstr(&b, "d");
        rc |= cashu_cbor_put_cstr(&b, t->memo);
    }
    rc |= cashu_cbor_put_cstr(&b, "t");
    rc |= cashu_cbor_put_head(&b, CBOR_ARRAY, ngroups);
    for (size_t g = 0; g < ngroups && !rc; g++) {
        const char *id = t->proofs[grp[g]].id;
        uint8_t idb[33];
        size_t idl = strlen(id) / 2;
        if (common_hex_decode_exact(id, idb, idl)) {
            rc = COMMON_EINVAL;
            break;
        }
        if (short_ids && idl == 33) idl = 8;
        size_t cnt = 0;
        for (size_t i = 0; i < t->nproofs; i++) cnt += strcmp(t->proofs[i].id, id) == 0;
        rc |= cashu_cbor_put_head(&b, CBOR_MAP, 2);
        rc |= cashu_cbor_put_cstr(&b, "i");
        rc |= cashu_cbor_put_bytes(&b, idb, idl);
        rc |= cashu_cbor_put_cstr(&b, "p");
        rc |= cashu_cbor_put_head(&b, CBOR_ARRAY, cnt);
        for (size_t i = 0; i < t->nproofs; i++) {
            const cashu_proof_t *p = &t->proofs[i];
            if (strcmp(p->id, id) != 0) continue;
            rc |=
                cashu_cbor_put_head(&b, CBOR_MAP, 3 + (p->has_dleq ? 1 : 0) + (p->witness ? 1 : 0));
            rc |= cashu_cbor_put_cstr(&b, "a");
            rc |= cashu_cbor_put_uint(&b, p->amount);
            rc |= cashu_cbor_put_cstr(&b, "s");
            rc |= cashu_cbor_put_cstr(&b, p->secret);
            rc |= cashu_cbor_put_cstr(&b, "c");
            rc |= cashu_cbor_put_bytes(&b, p->C, 33);
            if (p->has_dleq) {
                rc |= cashu_cbor_put_cstr(&b, "d");
                rc |= cashu_cbor_put_head(&b, CBOR_MAP, p->dleq.has_r ? 3 : 2);
                rc |= cashu_cbor_put_cstr(&b, "e");
                rc |= cashu_cbor_put_bytes(&b, p->dleq.e, 32);
                rc |= cashu_cbor_put_cstr(&b, "s");
                rc |= cashu_cbor_put_bytes(&b, p->dleq.s, 32);
                if (p->dleq.has_r) {
                    rc |= cashu_cbor_put_cstr(&b, "r");
                    rc |= cashu_cbor_put_bytes(&b, p->dleq.r, 32);
                }
            }
            if (p->witness) {
                rc |= cashu_cbor_put_cstr(&b, "w");
                rc |= cashu_cbor_put_cstr(&b, p->witness);
            }
        }
    }
    free(grp);
    if (!rc)
        rc = b64_out("cashuB", b.data, b.len, out);
    else
        rc = COMMON_ENOMEM;
    common_buf_free(&b);
    return rc;
}

int cashu_token_encode_v3(const cashu_token_t *t, common_buf_t *out) {
    if (!t->mint || t->nproofs == 0) return COMMON_EINVAL;
    int rc = COMMON_ENOMEM;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "token");
    cJSON *ent = cJSON_CreateObject();
    if (!root || !arr || !ent) {
        cJSON_Delete(ent);
        goto out;
    }
    cJSON_AddItemToArray(arr, ent);
    if (!cJSON_AddStringToObject(ent, "mint", t->mint)) goto out;
    cJSON *ps = cJSON_AddArrayToObject(ent, "proofs");
    if (!ps) goto out;
    for (size_t i = 0; i < t->nproofs; i++) {
        cJSON *p = cashu_proof_to_json(&t->proofs[i], 1);
        if (!p) goto out;
        cJSON_AddItemToArray(ps, p);
    }
    if (!cJSON_AddStringToObject(root, "unit", t->unit ? t->unit : "sat")) goto out;
    if (t->memo && !cJSON_AddStringToObject(root, "memo", t->memo)) goto out;
    char *js = cJSON_PrintUnformatted(root);
    if (!js) goto out;
    rc = b64_out("cashuA", (const uint8_t *)js, strlen(js), out);
    free(js);
out:
    cJSON_Delete(root);
    return rc;
}
