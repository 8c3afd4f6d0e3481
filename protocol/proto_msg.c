/* SPDX-License-Identifier: MIT */
#include "protocol/proto_msg.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_utf8.h"
#include "protocol/proto_ndjson.h"

static const char *const type_names[PROTO_MSG_TYPE_COUNT_] = {
    [PROTO_MSG_SKILL_REQUEST] = "skill_request",
    [PROTO_MSG_SKILL_RESPONSE] = "skill_response",
    [PROTO_MSG_REQUEST] = "request",
    [PROTO_MSG_OFFER] = "offer",
    [PROTO_MSG_PAYMENT] = "payment",
    [PROTO_MSG_PAYMENT_ACK] = "payment_ack",
    [PROTO_MSG_ACCEPTED] = "accepted",
    [PROTO_MSG_CHUNK] = "chunk",
    [PROTO_MSG_PAY_REQUIRED] = "pay_required",
    [PROTO_MSG_RESULT] = "result",
    [PROTO_MSG_STOP] = "stop",
    [PROTO_MSG_ERROR] = "error",
};

static const char *const code_names[PROTO_CODE_COUNT_] = {
    [PROTO_CODE_BAD_REQUEST] = "bad_request",
    [PROTO_CODE_CAPACITY] = "capacity",
    [PROTO_CODE_PRICE] = "price",
    [PROTO_CODE_PAYMENT_TIMEOUT] = "payment_timeout",
    [PROTO_CODE_BAD_TOKEN] = "bad_token",
    [PROTO_CODE_TOKEN_SPENT] = "token_spent",
    [PROTO_CODE_MINT_NOT_ACCEPTED] = "mint_not_accepted",
    [PROTO_CODE_NOT_LOCKED] = "not_locked",
    [PROTO_CODE_BACKEND] = "backend",
    [PROTO_CODE_INTERNAL] = "internal",
};

static const char *const reason_names[PROTO_REASON_COUNT_] = {
    [PROTO_REASON_DONE] = "done",     [PROTO_REASON_STOPPED] = "stopped",
    [PROTO_REASON_BUDGET] = "budget", [PROTO_REASON_TIMEOUT] = "timeout",
    [PROTO_REASON_LENGTH] = "length", [PROTO_REASON_ERROR] = "error",
};

const char *proto_msg_type_name(proto_msg_type_t t) {
    return (unsigned)t < PROTO_MSG_TYPE_COUNT_ ? type_names[t] : NULL;
}
const char *proto_error_code_name(proto_error_code_t c) {
    return (unsigned)c < PROTO_CODE_COUNT_ ? code_names[c] : NULL;
}
const char *proto_reason_name(proto_reason_t r) {
    return (unsigned)r < PROTO_REASON_COUNT_ ? reason_names[r] : NULL;
}

int proto_id_valid(const char *id, size_t len) {
    if (len == 0 || len > PROTO_ID_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* Decoding                                                                             */

typedef struct dctx {
    char *why;
    size_t whylen;
    const char *type; /* for messages: "offer" */
} dctx_t;

__attribute__((format(printf, 2, 3))) static int bad(dctx_t *d, const char *fmt, ...) {
    if (d->why && d->whylen) {
        int n = snprintf(d->why, d->whylen, "%s.", d->type);
        if (n < 0 || (size_t)n >= d->whylen) n = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->why + n, d->whylen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return PROTO_EBAD_MESSAGE;
}

/* Integer field: absent -> *has = 0 (or an error when required). */
static int get_int(dctx_t *d, const cJSON *obj, const char *key, int required, uint64_t min,
                   uint64_t *out, int *has) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (has) *has = 0;
    if (!it) return required ? bad(d, "%s: missing", key) : 0;
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !(v >= (double)min && v <= (double)PROTO_MAX_INT) || v != floor(v))
        return bad(d, "%s: must be an integer in [%llu, 2^53-1]", key, (unsigned long long)min);
    *out = (uint64_t)v;
    if (has) *has = 1;
    return 0;
}

/* String field, stolen from the cJSON tree (freed later with cJSON_free). */
static int get_str(dctx_t *d, cJSON *obj, const char *key, int required, size_t maxlen,
                   int allow_empty, char **out) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return required ? bad(d, "%s: missing", key) : 0;
    if (!cJSON_IsString(it) || !it->valuestring) return bad(d, "%s: must be a string", key);
    size_t n = strlen(it->valuestring);
    if (!allow_empty && n == 0) return bad(d, "%s: must not be empty", key);
    if (maxlen && n > maxlen) return bad(d, "%s: longer than %zu bytes", key, maxlen);
    *out = it->valuestring;
    it->valuestring = NULL;
    return 0;
}

static int get_bool(dctx_t *d, const cJSON *obj, const char *key, int *out, int *has) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *has = 0;
    if (!it) return 0;
    if (!cJSON_IsBool(it)) return bad(d, "%s: must be true or false", key);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    *has = 1;
    return 0;
}

static int get_pubkey(dctx_t *d, const cJSON *obj, const char *key, uint8_t pk[33], int *has) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *has = 0;
    if (!it) return 0;
    const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
    if (!s || strlen(s) != 2 * PROTO_PUBKEY_LEN ||
        common_hex_decode_exact(s, pk, PROTO_PUBKEY_LEN) != 0 || (pk[0] != 2 && pk[0] != 3))
        return bad(d, "%s: must be a 33-byte compressed public key in hex", key);
    *has = 1;
    return 0;
}

static int get_mints(dctx_t *d, cJSON *obj, const char *key, proto_mints_t *m) {
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) return bad(d, "%s: must be an array of URLs", key);
    m->has = 1;
    cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (m->n >= PROTO_MAX_MINTS) return bad(d, "%s: more than %d mints", key, PROTO_MAX_MINTS);
        if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0] ||
            strlen(it->valuestring) > PROTO_MAX_SHORT)
            return bad(d, "%s: must be an array of non-empty URLs", key);
        m->url[m->n++] = it->valuestring;
        it->valuestring = NULL;
    }
    return 0;
}

static int get_enum(dctx_t *d, const cJSON *obj, const char *key, const char *const *names,
                    int count, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!it) return 0;
    if (cJSON_IsString(it) && it->valuestring)
        for (int i = 1; i < count; i++)
            if (strcmp(it->valuestring, names[i]) == 0) {
                *out = i;
                return 0;
            }
    return bad(d, "%s: unknown value", key);
}

/* An object-valued optional field: NULL when absent, error when not an object. */
static int get_obj(dctx_t *d, cJSON *obj, const char *key, cJSON **out) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it) return 0;
    if (!cJSON_IsObject(it)) return bad(d, "%s: must be an object", key);
    *out = it;
    return 0;
}

static int decode_skill(dctx_t *d, cJSON *o, proto_skill_t *s) {
    int rc;
    cJSON *sub;
    s->present = 1;
    d->type = "skill";
    if ((rc = get_int(d, o, "kind", 0, 0, &s->kind, &s->has_kind))) return rc;
    if ((rc = get_str(d, o, "model", 0, PROTO_MAX_SHORT, 1, &s->model))) return rc;
    if ((rc = get_obj(d, o, "pricing", &sub))) return rc;
    if (sub) {
        d->type = "skill.pricing";
        if ((rc = get_int(d, sub, "sats_per_chunk", 1, 1, &s->sats_per_chunk, NULL))) return rc;
        if ((rc = get_int(d, sub, "chunks_per_payment", 1, 1, &s->chunks_per_payment, NULL)))
            return rc;
        if ((rc = get_str(d, sub, "unit", 0, PROTO_MAX_SHORT, 0, &s->unit))) return rc;
        s->has_pricing = 1;
        d->type = "skill";
    }
    if ((rc = get_mints(d, o, "mints", &s->mints))) return rc;
    if ((rc = get_pubkey(d, o, "pubkey", s->pubkey, &s->has_pubkey))) return rc;
    if ((rc = get_obj(d, o, "capacity", &sub))) return rc;
    if (sub) {
        d->type = "skill.capacity";
        if ((rc = get_int(d, sub, "active", 1, 0, &s->cap_active, NULL))) return rc;
        if ((rc = get_int(d, sub, "max", 1, 0, &s->cap_max, NULL))) return rc;
        s->has_capacity = 1;
        d->type = "skill";
    }
    return get_str(d, o, "version", 0, PROTO_MAX_SHORT, 1, &s->version);
}

static int decode_params(dctx_t *d, cJSON *o, proto_params_t *p) {
    int rc;
    d->type = "request.params";
    if ((rc = get_str(d, o, "model", 0, PROTO_MAX_SHORT, 1, &p->model))) return rc;
    if ((rc = get_int(d, o, "max_tokens", 0, 0, &p->max_tokens, &p->has_max_tokens))) return rc;
    if ((rc = get_int(d, o, "seed", 0, 0, &p->seed, &p->has_seed))) return rc;
    if ((rc = get_str(d, o, "system", 0, 0, 1, &p->system))) return rc;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "temperature");
    if (t) {
        if (!cJSON_IsNumber(t) || !(t->valuedouble >= 0.0 && t->valuedouble <= 100.0))
            return bad(d, "temperature: must be a number in [0, 100]");
        p->temperature = t->valuedouble;
        p->has_temperature = 1;
    }
    return 0;
}

static int decode_body(dctx_t *d, cJSON *o, proto_msg_t *m) {
    int rc, has, v;
    cJSON *sub;
    switch (m->type) {
    case PROTO_MSG_SKILL_REQUEST: return get_int(d, o, "kind", 1, 0, &m->skill_request.kind, NULL);
    case PROTO_MSG_SKILL_RESPONSE: {
        cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "skill");
        if (!s) return bad(d, "skill: missing");
        if (cJSON_IsNull(s)) return 0;
        if (!cJSON_IsObject(s)) return bad(d, "skill: must be an object or null");
        return decode_skill(d, s, &m->skill_response.skill);
    }
    case PROTO_MSG_REQUEST:
        if ((rc = get_int(d, o, "kind", 1, 0, &m->request.kind, NULL))) return rc;
        if ((rc = get_str(d, o, "input", 1, 0, 1, &m->request.input))) return rc;
        if ((rc = get_int(d, o, "budget", 0, 0, &m->request.budget, &m->request.has_budget)))
            return rc;
        if ((rc = get_obj(d, o, "params", &sub))) return rc;
        if (sub) {
            m->request.has_params = 1;
            return decode_params(d, sub, &m->request.params);
        }
        return 0;
    case PROTO_MSG_OFFER:
        if ((rc = get_int(d, o, "sats_per_chunk", 1, 1, &m->offer.sats_per_chunk, NULL))) return rc;
        if ((rc = get_int(d, o, "chunks_per_payment", 1, 1, &m->offer.chunks_per_payment, NULL)))
            return rc;
        if ((rc = get_mints(d, o, "mints", &m->offer.mints))) return rc;
        if ((rc = get_str(d, o, "unit", 0, PROTO_MAX_SHORT, 0, &m->offer.unit))) return rc;
        if ((rc = get_pubkey(d, o, "pubkey", m->offer.pubkey, &m->offer.has_pubkey))) return rc;
        return get_int(d, o, "min_locktime", 0, 0, &m->offer.min_locktime,
                       &m->offer.has_min_locktime);
    case PROTO_MSG_PAYMENT: return get_str(d, o, "token", 1, 0, 0, &m->payment.token);
    case PROTO_MSG_PAYMENT_ACK:
        if ((rc = get_int(d, o, "amount", 1, 0, &m->payment_ack.amount, NULL))) return rc;
        if ((rc =
                 get_int(d, o, "credit", 0, 0, &m->payment_ack.credit, &m->payment_ack.has_credit)))
            return rc;
        return get_bool(d, o, "locked", &m->payment_ack.locked, &m->payment_ack.has_locked);
    case PROTO_MSG_ACCEPTED:
    case PROTO_MSG_STOP: return 0;
    case PROTO_MSG_CHUNK:
        if ((rc = get_str(d, o, "data", 1, 0, 1, &m->chunk.data))) return rc;
        return get_int(d, o, "seq", 0, 0, &m->chunk.seq, &m->chunk.has_seq);
    case PROTO_MSG_PAY_REQUIRED:
        if ((rc = get_int(d, o, "earned", 1, 0, &m->pay_required.earned, NULL))) return rc;
        return get_int(d, o, "next", 1, 0, &m->pay_required.next, NULL);
    case PROTO_MSG_RESULT:
        if ((rc = get_str(d, o, "output", 1, 0, 1, &m->result.output))) return rc;
        if ((rc = get_int(d, o, "total_sats", 1, 0, &m->result.total_sats, NULL))) return rc;
        if ((rc = get_int(d, o, "chunks", 0, 0, &m->result.chunks, &m->result.has_chunks)))
            return rc;
        if ((rc = get_enum(d, o, "reason", reason_names, PROTO_REASON_COUNT_, &v))) return rc;
        m->result.reason = (proto_reason_t)v;
        if ((rc = get_obj(d, o, "usage", &sub))) return rc;
        if (sub) {
            d->type = "result.usage";
            if ((rc = get_int(d, sub, "prompt_tokens", 1, 0, &m->result.prompt_tokens, &has)))
                return rc;
            if ((rc = get_int(d, sub, "completion_tokens", 1, 0, &m->result.completion_tokens,
                              &has)))
                return rc;
            m->result.has_usage = 1;
        }
        return 0;
    case PROTO_MSG_ERROR:
        if ((rc = get_str(d, o, "message", 1, 0, 1, &m->error.message))) return rc;
        if ((rc = get_enum(d, o, "code", code_names, PROTO_CODE_COUNT_, &v))) return rc;
        m->error.code = (proto_error_code_t)v;
        return 0;
    default: return PROTO_EUNKNOWN_TYPE;
    }
}

static void free_mints(proto_mints_t *m) {
    for (size_t i = 0; i < m->n; i++) cJSON_free(m->url[i]);
}

/* Free the strings of the active union member (by type) and type_str; keep the rest. */
static void free_strings(proto_msg_t *m) {
    switch (m->type) {
    case PROTO_MSG_SKILL_RESPONSE: {
        proto_skill_t *s = &m->skill_response.skill;
        cJSON_free(s->model);
        cJSON_free(s->unit);
        cJSON_free(s->version);
        free_mints(&s->mints);
        break;
    }
    case PROTO_MSG_REQUEST:
        cJSON_free(m->request.input);
        cJSON_free(m->request.params.model);
        cJSON_free(m->request.params.system);
        break;
    case PROTO_MSG_OFFER:
        free_mints(&m->offer.mints);
        cJSON_free(m->offer.unit);
        break;
    case PROTO_MSG_PAYMENT: cJSON_free(m->payment.token); break;
    case PROTO_MSG_CHUNK: cJSON_free(m->chunk.data); break;
    case PROTO_MSG_RESULT: cJSON_free(m->result.output); break;
    case PROTO_MSG_ERROR: cJSON_free(m->error.message); break;
    default: break;
    }
    cJSON_free(m->type_str);
    m->type_str = NULL;
}

void proto_msg_free(proto_msg_t *m) {
    if (!m) return;
    free_strings(m);
    memset(m, 0, sizeof *m);
}

/* Lexical checks cJSON does not do: raw control characters (JSON forbids them inside
 * strings; outside strings only space and tab are allowed here, as a line never holds CR/LF)
 * and the "\u0000" escape, which would silently truncate a C string. */
static int lexically_clean(const char *s, size_t len) {
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && (in_str || c != '\t')) return 0;
        if (!in_str) {
            if (c == '"') in_str = 1;
            continue;
        }
        if (c == '"') {
            in_str = 0;
        } else if (c == '\\') {
            if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0) return 0;
            i++; /* skip the escaped character, so "\\\\u0000" stays a literal backslash */
        }
    }
    return 1;
}

int proto_msg_decode(const char *line, size_t len, proto_msg_t *m, char *why, size_t whylen) {
    memset(m, 0, sizeof *m);
    if (why && whylen) why[0] = '\0';
    dctx_t d = {why, whylen, "message"};
#define WHY(...)                                               \
    do {                                                       \
        if (why && whylen) snprintf(why, whylen, __VA_ARGS__); \
    } while (0)
    if (len > PROTO_MAX_LINE) {
        WHY("line longer than %u bytes", (unsigned)PROTO_MAX_LINE);
        return PROTO_ELINE_TOO_LONG;
    }
    if (!common_utf8_valid(line, len)) {
        WHY("invalid UTF-8");
        return COMMON_EUTF8;
    }
    if (!lexically_clean(line, len)) {
        WHY("malformed JSON (control character or \\u0000)");
        return COMMON_EJSON;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root) {
        WHY("malformed JSON");
        return COMMON_EJSON;
    }
    while (end && end < line + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    int rc;
    if (end != line + len) {
        WHY("malformed JSON (data after the object)");
        rc = COMMON_EJSON;
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        WHY("not a JSON object");
        rc = COMMON_EJSON;
        goto out;
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(t) || !t->valuestring) {
        WHY("type: missing or not a string");
        rc = PROTO_EBAD_MESSAGE;
        goto out;
    }
    m->type = PROTO_MSG_UNKNOWN;
    for (int i = 1; i < PROTO_MSG_TYPE_COUNT_; i++)
        if (strcmp(t->valuestring, type_names[i]) == 0) m->type = (proto_msg_type_t)i;
    cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    int id_ok = cJSON_IsString(id) && id->valuestring &&
                proto_id_valid(id->valuestring, strlen(id->valuestring));
    if (id_ok) memcpy(m->id, id->valuestring, strlen(id->valuestring) + 1);
    if (m->type == PROTO_MSG_UNKNOWN) {
        if (strlen(t->valuestring) > PROTO_MAX_SHORT) t->valuestring[PROTO_MAX_SHORT] = '\0';
        m->type_str = t->valuestring;
        t->valuestring = NULL;
        WHY("unknown type");
        rc = PROTO_EUNKNOWN_TYPE;
        goto out;
    }
    d.type = type_names[m->type];
    if (!id_ok) {
        rc = bad(&d, "id: %s", id ? "must be 1..64 characters of [A-Za-z0-9_-]" : "missing");
        goto out;
    }
    rc = decode_body(&d, root, m);
out:
    cJSON_Delete(root);
    if (rc != 0 && rc != PROTO_EUNKNOWN_TYPE) {
        proto_msg_type_t type = m->type;
        char idc[sizeof m->id];
        memcpy(idc, m->id, sizeof idc);
        proto_msg_free(m);
        m->type = type;
        memcpy(m->id, idc, sizeof idc);
    }
    return rc;
#undef WHY
}

/* ------------------------------------------------------------------------------------ */
/* Encoding                                                                             */

static int put(common_buf_t *b, const char *s, size_t n) {
    return common_buf_append(b, s, n);
}
#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static int put_u64(common_buf_t *b, uint64_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, tmp + i, sizeof tmp - i);
}

/* 1 for bytes that need escaping in a JSON string. */
static int needs_escape(unsigned char c) {
    return c < 0x20 || c == '"' || c == '\\';
}

int proto_json_put_string(common_buf_t *b, const char *s, size_t len) {
    if (!common_utf8_valid(s, len)) return COMMON_EUTF8;
    if (memchr(s, '\0', len)) return COMMON_EINVAL; /* the decoder refuses \u0000 */
    /* Worst case 6 bytes per input byte; reserve the common case (no escapes) up front. */
    int rc = common_buf_reserve(b, len + 2);
    if (rc) return rc;
    b->data[b->len++] = '"';
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && !needs_escape((unsigned char)s[run])) run++;
        if (run > i && (rc = put(b, s + i, run - i))) return rc;
        if (run == len) break;
        unsigned char c = (unsigned char)s[run];
        char esc[7];
        size_t n = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); n = 6;
        }
        if ((rc = put(b, esc, n))) return rc;
        i = run + 1;
    }
    return put(b, "\"", 1);
}

/* ,"key": */
static int put_key(common_buf_t *b, const char *key) {
    int rc;
    if ((rc = PUT_LIT(b, ",\""))) return rc;
    if ((rc = put(b, key, strlen(key)))) return rc;
    return PUT_LIT(b, "\":");
}

static int put_kint(common_buf_t *b, const char *key, uint64_t v, uint64_t min) {
    if (v < min || v > PROTO_MAX_INT) return COMMON_ERANGE;
    int rc = put_key(b, key);
    return rc ? rc : put_u64(b, v);
}

static int put_kstr(common_buf_t *b, const char *key, const char *s) {
    if (!s) return COMMON_EINVAL;
    int rc = put_key(b, key);
    return rc ? rc : proto_json_put_string(b, s, strlen(s));
}

static int short_ok(const char *s, int allow_empty) {
    size_t n = strlen(s);
    return n <= PROTO_MAX_SHORT && (allow_empty || n > 0);
}

static int put_kshort(common_buf_t *b, const char *key, const char *s, int allow_empty) {
    if (!s) return 0; /* optional, absent */
    if (!short_ok(s, allow_empty)) return COMMON_EINVAL;
    return put_kstr(b, key, s);
}

static int put_pubkey(common_buf_t *b, const char *key, const uint8_t pk[33]) {
    if (pk[0] != 2 && pk[0] != 3) return COMMON_EINVAL;
    char hex[2 * PROTO_PUBKEY_LEN + 1];
    common_hex_encode(pk, PROTO_PUBKEY_LEN, hex);
    int rc = put_key(b, key);
    if (rc) return rc;
    if ((rc = PUT_LIT(b, "\""))) return rc;
    if ((rc = put(b, hex, 2 * PROTO_PUBKEY_LEN))) return rc;
    return PUT_LIT(b, "\"");
}

static int put_mints(common_buf_t *b, const char *key, const proto_mints_t *m) {
    if (!m->has) return 0;
    if (m->n > PROTO_MAX_MINTS) return COMMON_ERANGE;
    int rc = put_key(b, key);
    if (rc || (rc = PUT_LIT(b, "["))) return rc;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->url[i] || !short_ok(m->url[i], 0)) return COMMON_EINVAL;
        if (i && (rc = PUT_LIT(b, ","))) return rc;
        if ((rc = proto_json_put_string(b, m->url[i], strlen(m->url[i])))) return rc;
    }
    return PUT_LIT(b, "]");
}

static int put_double(common_buf_t *b, const char *key, double v) {
    char tmp[40];
    /* The shortest of %.15g/%.17g that reads back exactly: decode(encode(x)) == x. */
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof tmp, "%.17g", v);
    int rc = put_key(b, key);
    return rc ? rc : put(b, tmp, strlen(tmp));
}

/* Nested objects: every field is written with a leading ',' (put_key); obj_end removes the
 * one after '{' so the writers need no "first field" state. */
static int obj_begin(common_buf_t *b, const char *key, size_t *open) {
    int rc = put_key(b, key);
    if (rc) return rc;
    *open = b->len;
    return PUT_LIT(b, "{");
}

static int obj_end(common_buf_t *b, size_t open) {
    if (b->len > open + 1) {
        memmove(b->data + open + 1, b->data + open + 2, b->len - open - 2);
        b->len--;
    }
    return PUT_LIT(b, "}");
}

static int encode_skill(common_buf_t *b, const proto_skill_t *s) {
    int rc;
    if (!s->present) return PUT_LIT(b, ",\"skill\":null");
    size_t open;
    if ((rc = obj_begin(b, "skill", &open))) return rc;
    if (s->has_kind && (rc = put_kint(b, "kind", s->kind, 0))) return rc;
    if ((rc = put_kshort(b, "model", s->model, 1))) return rc;
    if (s->has_pricing) {
        if ((rc = PUT_LIT(b, ",\"pricing\":{\"sats_per_chunk\":"))) return rc;
        if (s->sats_per_chunk < 1 || s->sats_per_chunk > PROTO_MAX_INT) return COMMON_ERANGE;
        if ((rc = put_u64(b, s->sats_per_chunk))) return rc;
        if ((rc = put_kint(b, "chunks_per_payment", s->chunks_per_payment, 1))) return rc;
        if ((rc = put_kshort(b, "unit", s->unit, 0))) return rc;
        if ((rc = PUT_LIT(b, "}"))) return rc;
    }
    if ((rc = put_mints(b, "mints", &s->mints))) return rc;
    if (s->has_pubkey && (rc = put_pubkey(b, "pubkey", s->pubkey))) return rc;
    if (s->has_capacity) {
        if (s->cap_active > PROTO_MAX_INT || s->cap_max > PROTO_MAX_INT) return COMMON_ERANGE;
        if ((rc = PUT_LIT(b, ",\"capacity\":{\"active\":"))) return rc;
        if ((rc = put_u64(b, s->cap_active))) return rc;
        if ((rc = put_kint(b, "max", s->cap_max, 0))) return rc;
        if ((rc = PUT_LIT(b, "}"))) return rc;
    }
    if ((rc = put_kshort(b, "version", s->version, 1))) return rc;
    return obj_end(b, open);
}

static int encode_body(common_buf_t *b, const proto_msg_t *m) {
    int rc;
    switch (m->type) {
    case PROTO_MSG_SKILL_REQUEST: return put_kint(b, "kind", m->skill_request.kind, 0);
    case PROTO_MSG_SKILL_RESPONSE: return encode_skill(b, &m->skill_response.skill);
    case PROTO_MSG_REQUEST: {
        if ((rc = put_kint(b, "kind", m->request.kind, 0))) return rc;
        if ((rc = put_kstr(b, "input", m->request.input))) return rc;
        if (m->request.has_budget && (rc = put_kint(b, "budget", m->request.budget, 0))) return rc;
        if (!m->request.has_params) return 0;
        const proto_params_t *p = &m->request.params;
        size_t open;
        if ((rc = obj_begin(b, "params", &open))) return rc;
        if ((rc = put_kshort(b, "model", p->model, 1))) return rc;
        if (p->has_max_tokens && (rc = put_kint(b, "max_tokens", p->max_tokens, 0))) return rc;
        if (p->has_temperature) {
            if (!(p->temperature >= 0.0 && p->temperature <= 100.0)) return COMMON_ERANGE;
            if ((rc = put_double(b, "temperature", p->temperature))) return rc;
        }
        if (p->has_seed && (rc = put_kint(b, "seed", p->seed, 0))) return rc;
        if (p->system && (rc = put_kstr(b, "system", p->system))) return rc;
        return obj_end(b, open);
    }
    case PROTO_MSG_OFFER:
        if ((rc = put_kint(b, "sats_per_chunk", m->offer.sats_per_chunk, 1))) return rc;
        if ((rc = put_kint(b, "chunks_per_payment", m->offer.chunks_per_payment, 1))) return rc;
        if ((rc = put_mints(b, "mints", &m->offer.mints))) return rc;
        if ((rc = put_kshort(b, "unit", m->offer.unit, 0))) return rc;
        if (m->offer.has_pubkey && (rc = put_pubkey(b, "pubkey", m->offer.pubkey))) return rc;
        if (m->offer.has_min_locktime &&
            (rc = put_kint(b, "min_locktime", m->offer.min_locktime, 0)))
            return rc;
        return 0;
    case PROTO_MSG_PAYMENT:
        if (!m->payment.token || !m->payment.token[0]) return COMMON_EINVAL;
        return put_kstr(b, "token", m->payment.token);
    case PROTO_MSG_PAYMENT_ACK:
        if ((rc = put_kint(b, "amount", m->payment_ack.amount, 0))) return rc;
        if (m->payment_ack.has_credit && (rc = put_kint(b, "credit", m->payment_ack.credit, 0)))
            return rc;
        if (m->payment_ack.has_locked) {
            if ((rc = put_key(b, "locked"))) return rc;
            return m->payment_ack.locked ? PUT_LIT(b, "true") : PUT_LIT(b, "false");
        }
        return 0;
    case PROTO_MSG_ACCEPTED:
    case PROTO_MSG_STOP: return 0;
    case PROTO_MSG_CHUNK:
        if ((rc = put_kstr(b, "data", m->chunk.data))) return rc;
        return m->chunk.has_seq ? put_kint(b, "seq", m->chunk.seq, 0) : 0;
    case PROTO_MSG_PAY_REQUIRED:
        if ((rc = put_kint(b, "earned", m->pay_required.earned, 0))) return rc;
        return put_kint(b, "next", m->pay_required.next, 0);
    case PROTO_MSG_RESULT:
        if ((rc = put_kstr(b, "output", m->result.output))) return rc;
        if ((rc = put_kint(b, "total_sats", m->result.total_sats, 0))) return rc;
        if (m->result.has_chunks && (rc = put_kint(b, "chunks", m->result.chunks, 0))) return rc;
        if (m->result.has_usage) {
            if (m->result.prompt_tokens > PROTO_MAX_INT) return COMMON_ERANGE;
            if ((rc = PUT_LIT(b, ",\"usage\":{\"prompt_tokens\":"))) return rc;
            if ((rc = put_u64(b, m->result.prompt_tokens))) return rc;
            if ((rc = put_kint(b, "completion_tokens", m->result.completion_tokens, 0))) return rc;
            if ((rc = PUT_LIT(b, "}"))) return rc;
        }
        if (m->result.reason != PROTO_REASON_NONE) {
            const char *r = proto_reason_name(m->result.reason);
            if (!r) return COMMON_EINVAL;
            return put_kstr(b, "reason", r);
        }
        return 0;
    case PROTO_MSG_ERROR:
        if ((rc = put_kstr(b, "message", m->error.message))) return rc;
        if (m->error.code != PROTO_CODE_NONE) {
            const char *c = proto_error_code_name(m->error.code);
            if (!c) return COMMON_EINVAL;
            return put_kstr(b, "code", c);
        }
        return 0;
    default: return COMMON_EINVAL;
    }
}

static int encode_head(common_buf_t *b, const char *type, const char *id, size_t idlen) {
    int rc;
    if (!proto_id_valid(id, idlen)) return COMMON_EINVAL;
    if ((rc = PUT_LIT(b, "{\"type\":\""))) return rc;
    if ((rc = put(b, type, strlen(type)))) return rc;
    if ((rc = PUT_LIT(b, "\",\"id\":\""))) return rc;
    if ((rc = put(b, id, idlen))) return rc; /* id charset needs no escaping */
    return PUT_LIT(b, "\"");
}

int proto_msg_encode(const proto_msg_t *m, common_buf_t *out) {
    size_t start = out->len;
    const char *tn = proto_msg_type_name(m->type);
    int rc = tn ? encode_head(out, tn, m->id, strnlen(m->id, sizeof m->id)) : COMMON_EINVAL;
    if (!rc) rc = encode_body(out, m);
    if (!rc) rc = PUT_LIT(out, "}\n");
    if (rc) out->len = start;
    return rc;
}

int proto_encode_chunk(common_buf_t *out, const char *id, const char *data, size_t len,
                       int64_t seq) {
    size_t start = out->len;
    int rc = common_buf_reserve(out, len + strlen(id) + 64);
    if (!rc) rc = encode_head(out, "chunk", id, strlen(id));
    if (!rc) rc = PUT_LIT(out, ",\"data\":");
    if (!rc) rc = proto_json_put_string(out, data, len);
    if (!rc && seq >= 0) rc = put_kint(out, "seq", (uint64_t)seq, 0);
    if (!rc) rc = PUT_LIT(out, "}\n");
    if (rc) out->len = start;
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Equality                                                                             */

static int str_eq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static int mints_eq(const proto_mints_t *a, const proto_mints_t *b) {
    if (a->has != b->has || a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!str_eq(a->url[i], b->url[i])) return 0;
    return 1;
}

int proto_msg_equal(const proto_msg_t *a, const proto_msg_t *b) {
    if (a->type != b->type || strcmp(a->id, b->id) != 0) return 0;
    if (a->type == PROTO_MSG_UNKNOWN) return str_eq(a->type_str, b->type_str);
    switch (a->type) {
    case PROTO_MSG_SKILL_REQUEST: return a->skill_request.kind == b->skill_request.kind;
    case PROTO_MSG_SKILL_RESPONSE: {
        const proto_skill_t *x = &a->skill_response.skill, *y = &b->skill_response.skill;
        if (x->present != y->present) return 0;
        if (!x->present) return 1;
        return x->has_kind == y->has_kind && (!x->has_kind || x->kind == y->kind) &&
               str_eq(x->model, y->model) && x->has_pricing == y->has_pricing &&
               (!x->has_pricing ||
                (x->sats_per_chunk == y->sats_per_chunk &&
                 x->chunks_per_payment == y->chunks_per_payment && str_eq(x->unit, y->unit))) &&
               mints_eq(&x->mints, &y->mints) && x->has_pubkey == y->has_pubkey &&
               (!x->has_pubkey || memcmp(x->pubkey, y->pubkey, PROTO_PUBKEY_LEN) == 0) &&
               x->has_capacity == y->has_capacity &&
               (!x->has_capacity || (x->cap_active == y->cap_active && x->cap_max == y->cap_max)) &&
               str_eq(x->version, y->version);
    }
    case PROTO_MSG_REQUEST: {
        const proto_params_t *p = &a->request.params, *q = &b->request.params;
        if (a->request.kind != b->request.kind || !str_eq(a->request.input, b->request.input) ||
            a->request.has_budget != b->request.has_budget ||
            (a->request.has_budget && a->request.budget != b->request.budget) ||
            a->request.has_params != b->request.has_params)
            return 0;
        if (!a->request.has_params) return 1;
        return str_eq(p->model, q->model) && str_eq(p->system, q->system) &&
               p->has_max_tokens == q->has_max_tokens &&
               (!p->has_max_tokens || p->max_tokens == q->max_tokens) &&
               p->has_seed == q->has_seed && (!p->has_seed || p->seed == q->seed) &&
               p->has_temperature == q->has_temperature &&
               (!p->has_temperature || p->temperature == q->temperature);
    }
    case PROTO_MSG_OFFER:
        return a->offer.sats_per_chunk == b->offer.sats_per_chunk &&
               a->offer.chunks_per_payment == b->offer.chunks_per_payment &&
               mints_eq(&a->offer.mints, &b->offer.mints) && str_eq(a->offer.unit, b->offer.unit) &&
               a->offer.has_pubkey == b->offer.has_pubkey &&
               (!a->offer.has_pubkey ||
                memcmp(a->offer.pubkey, b->offer.pubkey, PROTO_PUBKEY_LEN) == 0) &&
               a->offer.has_min_locktime == b->offer.has_min_locktime &&
               (!a->offer.has_min_locktime || a->offer.min_locktime == b->offer.min_locktime);
    case PROTO_MSG_PAYMENT: return str_eq(a->payment.token, b->payment.token);
    case PROTO_MSG_PAYMENT_ACK:
        return a->payment_ack.amount == b->payment_ack.amount &&
               a->payment_ack.has_credit == b->payment_ack.has_credit &&
               (!a->payment_ack.has_credit || a->payment_ack.credit == b->payment_ack.credit) &&
               a->payment_ack.has_locked == b->payment_ack.has_locked &&
               (!a->payment_ack.has_locked || a->payment_ack.locked == b->payment_ack.locked);
    case PROTO_MSG_ACCEPTED:
    case PROTO_MSG_STOP: return 1;
    case PROTO_MSG_CHUNK:
        return str_eq(a->chunk.data, b->chunk.data) && a->chunk.has_seq == b->chunk.has_seq &&
               (!a->chunk.has_seq || a->chunk.seq == b->chunk.seq);
    case PROTO_MSG_PAY_REQUIRED:
        return a->pay_required.earned == b->pay_required.earned &&
               a->pay_required.next == b->pay_required.next;
    case PROTO_MSG_RESULT:
        return str_eq(a->result.output, b->result.output) &&
               a->result.total_sats == b->result.total_sats &&
               a->result.has_chunks == b->result.has_chunks &&
               (!a->result.has_chunks || a->result.chunks == b->result.chunks) &&
               a->result.has_usage == b->result.has_usage &&
               (!a->result.has_usage ||
                (a->result.prompt_tokens == b->result.prompt_tokens &&
                 a->result.completion_tokens == b->result.completion_tokens)) &&
               a->result.reason == b->result.reason;
    case PROTO_MSG_ERROR:
        return str_eq(a->error.message, b->error.message) && a->error.code == b->error.code;
    default: return 0;
    }
}
