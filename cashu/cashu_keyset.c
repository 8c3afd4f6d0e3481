/* SPDX-License-Identifier: MIT */
/* Keysets: parsing, id derivation, resolution; see cashu_keyset.h. */
#include "cashu/cashu_keyset.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/cashu_crypto.h"
#include "common/common_codec.h"
#include "common/common_err.h"

#define JSON_MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1 */

int cashu_json_u64(const cJSON *item, uint64_t *out) {
    if (!item) return COMMON_EINVAL;
    if (cJSON_IsString(item)) return common_parse_u64(item->valuestring, 0, UINT64_MAX, out);
    if (!cJSON_IsNumber(item)) return COMMON_EINVAL;
    double d = item->valuedouble;
    if (!isfinite(d) || d != floor(d)) return COMMON_EINVAL;
    if (d < 0 || d > JSON_MAX_SAFE_INT) return COMMON_ERANGE;
    *out = (uint64_t)d;
    return 0;
}

int cashu_json_hex(const cJSON *item, uint8_t *out, size_t len) {
    if (!cJSON_IsString(item) || strlen(item->valuestring) != 2 * len) return COMMON_EINVAL;
    return common_hex_decode_exact(item->valuestring, out, len);
}

static int key_cmp(const void *a, const void *b) {
    uint64_t x = ((const cashu_key_t *)a)->amount, y = ((const cashu_key_t *)b)->amount;
    return x < y ? -1 : x > y;
}

int cashu_keyset_parse_keys(const cJSON *keys, cashu_keyset_t *ks) {
    if (!cJSON_IsObject(keys)) return COMMON_EINVAL;
    size_t n = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, keys) {
        if (n >= CASHU_KEYSET_MAX_KEYS) return COMMON_ETOOBIG;
        cashu_key_t *key = &ks->keys[n];
        if (!k->string || common_parse_u64(k->string, 1, UINT64_MAX, &key->amount))
            return COMMON_EINVAL;
        if (!cJSON_IsString(k) || strlen(k->valuestring) != 66) return COMMON_EINVAL;
        if (common_hex_decode_exact(k->valuestring, key->pub, 33)) return COMMON_EINVAL;
        if (!cashu_point_valid(key->pub)) return COMMON_EINVAL;
        n++;
    }
    if (n == 0) return COMMON_EINVAL;
    qsort(ks->keys, n, sizeof ks->keys[0], key_cmp);
    for (size_t i = 1; i < n; i++)
        if (ks->keys[i].amount == ks->keys[i - 1].amount) return COMMON_EINVAL;
    ks->nkeys = n;
    return 0;
}

static int id_is_hex(const char *id) {
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

int cashu_keyset_parse_json(const cJSON *obj, cashu_keyset_t *ks) {
    memset(ks, 0, sizeof *ks);
    if (!cJSON_IsObject(obj)) return COMMON_EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    const cJSON *unit = cJSON_GetObjectItemCaseSensitive(obj, "unit");
    if (!cJSON_IsString(id) || strlen(id->valuestring) > CASHU_KEYSET_ID_HEX_MAX ||
        !id_is_hex(id->valuestring))
        return COMMON_EINVAL;
    strcpy(ks->id, id->valuestring);
    if (unit) {
        if (!cJSON_IsString(unit) || strlen(unit->valuestring) > CASHU_UNIT_MAX)
            return COMMON_EINVAL;
        strcpy(ks->unit, unit->valuestring);
    } else {
        strcpy(ks->unit, "sat");
    }
    const cJSON *active = cJSON_GetObjectItemCaseSensitive(obj, "active");
    ks->active = active ? cJSON_IsTrue(active) : 1;
    const cJSON *fee = cJSON_GetObjectItemCaseSensitive(obj, "input_fee_ppk");
    if (fee && !cJSON_IsNull(fee) && cashu_json_u64(fee, &ks->input_fee_ppk)) return COMMON_EINVAL;
    const cJSON *fx = cJSON_GetObjectItemCaseSensitive(obj, "final_expiry");
    if (fx && !cJSON_IsNull(fx) && cashu_json_u64(fx, &ks->final_expiry)) return COMMON_EINVAL;
    int rc = cashu_keyset_parse_keys(cJSON_GetObjectItemCaseSensitive(obj, "keys"), ks);
    if (rc) return rc;
    return cashu_keyset_verify_id(ks);
}

int cashu_keyset_id_v1(const cashu_keyset_t *ks, char out[17]) {
    if (ks->nkeys == 0) return COMMON_EINVAL;
    uint8_t h[32];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < ks->nkeys; i++) crypto_hash_sha256_update(&st, ks->keys[i].pub, 33);
    crypto_hash_sha256_final(&st, h);
    out[0] = '0';
    out[1] = '0';
    common_hex_encode(h, 7, out + 2);
    return 0;
}

int cashu_keyset_id_v2(const cashu_keyset_t *ks, char out[67]) {
    if (ks->nkeys == 0) return COMMON_EINVAL;
    uint8_t h[32];
    char line[96];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < ks->nkeys; i++) {
        char hex[67];
        common_hex_encode(ks->keys[i].pub, 33, hex);
        int n = snprintf(line, sizeof line, "%s%llu:%s", i ? "," : "",
                         (unsigned long long)ks->keys[i].amount, hex);
        crypto_hash_sha256_update(&st, (const uint8_t *)line, (size_t)n);
    }
    int n = snprintf(line, sizeof line, "|unit:%s", ks->unit);
    crypto_hash_sha256_update(&st, (const uint8_t *)line, (size_t)n);
    if (ks->input_fee_ppk) {
        n = snprintf(line, sizeof line, "|input_fee_ppk:%llu",
                     (unsigned long long)ks->input_fee_ppk);
        crypto_hash_sha256_update(&st, (const uint8_t *)line, (size_t)n);
    }
    if (ks->final_expiry) {
        n = snprintf(line, sizeof line, "|final_expiry:%llu", (unsigned long long)ks->final_expiry);
        crypto_hash_sha256_update(&st, (const uint8_t *)line, (size_t)n);
    }
    crypto_hash_sha256_final(&st, h);
    out[0] = '0';
    out[1] = '1';
    common_hex_encode(h, 32, out + 2);
    return 0;
}

int cashu_keyset_verify_id(const cashu_keyset_t *ks) {
    char want[67];
    size_t len = strlen(ks->id);
    if (len == 16 && strncmp(ks->id, "00", 2) == 0) {
        if (cashu_keyset_id_v1(ks, want)) return CASHU_EKEYSET;
    } else if (len == 66 && strncmp(ks->id, "01", 2) == 0) {
        if (cashu_keyset_id_v2(ks, want)) return CASHU_EKEYSET;
    } else {
        return CASHU_EKEYSET;
    }
    return strcmp(want, ks->id) == 0 ? 0 : CASHU_EKEYSET;
}

const uint8_t *cashu_keyset_key(const cashu_keyset_t *ks, uint64_t amount) {
    size_t lo = 0, hi = ks->nkeys;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ks->keys[mid].amount == amount) return ks->keys[mid].pub;
        if (ks->keys[mid].amount < amount)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int cashu_keyset_resolve(const char *id, const cashu_keyset_t *const *ks, size_t n) {
    size_t len = strlen(id);
    int found = -1;
    int is_short = (len == 16 && strncmp(id, "01", 2) == 0);
    for (size_t i = 0; i < n; i++) {
        int match = is_short ? (strlen(ks[i]->id) == 66 && strncmp(ks[i]->id, id, 16) == 0)
                             : strcmp(ks[i]->id, id) == 0;
        if (!match) continue;
        if (found >= 0) return CASHU_EKEYSET; /* ambiguous */
        found = (int)i;
    }
    return found >= 0 ? found : CASHU_EKEYSET;
}

int cashu_split_amount(const cashu_keyset_t *ks, uint64_t amount, uint64_t *out, size_t cap) {
    size_t n = 0;
    /* Greedy from the largest key; ks->keys are ascending. */
    for (size_t i = ks->nkeys; i-- > 0 && amount > 0;) {
        uint64_t a = ks->keys[i].amount;
        while (amount >= a) {
            if (n >= cap) return COMMON_ETOOBIG;
            out[n++] = a;
            amount -= a;
        }
    }
    if (amount) return COMMON_EINVAL;
    for (size_t i = 0; i < n / 2; i++) {
        uint64_t t = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    return (int)n;
}
