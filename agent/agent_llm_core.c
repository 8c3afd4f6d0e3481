/* SPDX-License-Identifier: MIT */
/* Pure cores of the LLM drivers: line splitter, UTF-8 stage, coalescer, stream parsers. */
#include "agent/agent_llm_core.h"
#include "common/common_err.h"
#include "common/common_utf8.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- line splitter ------------------------------------------------------------------ */

void agent_llm_lines_init(agent_llm_lines_t *l, size_t max_line) {
    memset(l, 0, sizeof *l);
    l->max_line = max_line ? max_line : AGENT_LLM_MAX_LINE;
}

void agent_llm_lines_free(agent_llm_lines_t *l) {
    common_buf_free(&l->buf);
    memset(l, 0, sizeof *l);
}

int agent_llm_lines_feed(agent_llm_lines_t *l, const char *data, size_t len) {
    if (l->start > 0 && l->start == l->buf.len) {
        l->buf.len = l->start = l->scan = 0;
    } else if (l->start > 4096 && l->start * 2 > l->buf.len) {
        common_buf_consume(&l->buf, l->start);
        l->scan -= l->start;
        l->start = 0;
    }
    /* Bound every line, including the unterminated tail (l->cur bytes so far). */
    size_t cur = l->cur;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p);
        if (cur + seg > l->max_line) return COMMON_ETOOBIG;
        if (!nl) {
            cur += seg;
            break;
        }
        cur = 0;
        p = nl + 1;
    }
    l->cur = cur;
    /* One spare byte for the in-place NUL of next(). */
    if (common_buf_reserve(&l->buf, len + 1)) return COMMON_ENOMEM;
    memcpy(l->buf.data + l->buf.len, data, len);
    l->buf.len += len;
    return 0;
}

int agent_llm_lines_next(agent_llm_lines_t *l, char **line, size_t *len) {
    if (l->scan < l->start) l->scan = l->start;
    char *base = (char *)l->buf.data;
    char *nl = l->scan < l->buf.len ? memchr(base + l->scan, '\n', l->buf.len - l->scan) : NULL;
    if (!nl) {
        l->scan = l->buf.len;
        return 0;
    }
    size_t end = (size_t)(nl - base);
    size_t n = end - l->start;
    if (n > l->max_line) n = l->max_line; /* cannot happen: feed bounds lines */
    if (n > 0 && base[l->start + n - 1] == '\r') n--;
    base[l->start + n] = '\0';
    *line = base + l->start;
    *len = n;
    l->start = l->scan = end + 1;
    return 1;
}

size_t agent_llm_lines_pending(const agent_llm_lines_t *l) {
    return l->buf.len - l->start;
}

/* ---- UTF-8 stage -------------------------------------------------------------------- */

static const char REPLACEMENT[] = "\xEF\xBF\xBD";

static int utf8_emit(const uint8_t *s, size_t len, common_buf_t *out, agent_llm_utf8_t *u) {
    /* Fast path: the usual chunk is complete, valid text. */
    if (common_utf8_valid((const char *)s, len))
        return common_buf_append(out, s, len) ? COMMON_ENOMEM : 0;
    size_t i = 0;
    while (i < len) {
        int n = common_utf8_char((const char *)s + i, len - i);
        if (n < 0) {
            if (u) { /* a valid but incomplete sequence at the end: hold it back */
                memcpy(u->hold, s + i, len - i);
                u->nhold = len - i;
                return 0;
            }
            /* End of stream: the incomplete sequence becomes one U+FFFD. */
            return common_buf_append(out, REPLACEMENT, 3) ? COMMON_ENOMEM : 0;
        }
        if (n == 0) {
            if (common_buf_append(out, REPLACEMENT, 3)) return COMMON_ENOMEM;
            i++;
            continue;
        }
        if (common_buf_append(out, s + i, (size_t)n)) return COMMON_ENOMEM;
        i += (size_t)n;
    }
    return 0;
}

int agent_llm_utf8_feed(agent_llm_utf8_t *u, const char *in, size_t len, common_buf_t *out) {
    if (u->nhold == 0) return utf8_emit((const uint8_t *)in, len, out, u);
    /* Complete the held sequence with the first bytes of the input. */
    uint8_t tmp[8];
    size_t take = len < 4 ? len : 4;
    memcpy(tmp, u->hold, u->nhold);
    memcpy(tmp + u->nhold, in, take);
    size_t held = u->nhold;
    u->nhold = 0;
    int n = common_utf8_char((const char *)tmp, held + take);
    if (n < 0) { /* still incomplete (input shorter than what is missing) */
        memcpy(u->hold, tmp, held + take);
        u->nhold = held + take;
        return 0;
    }
    if (n == 0) {
        /* The input broke the held (valid so far) prefix: one U+FFFD for the held bytes,
         * then the input from its first byte. */
        if (common_buf_append(out, REPLACEMENT, 3)) return COMMON_ENOMEM;
        return utf8_emit((const uint8_t *)in, len, out, u);
    }
    if (common_buf_append(out, tmp, (size_t)n)) return COMMON_ENOMEM;
    size_t used = (size_t)n - held;
    return utf8_emit((const uint8_t *)in + used, len - used, out, u);
}

int agent_llm_utf8_finish(agent_llm_utf8_t *u, common_buf_t *out) {
    int rc = 0;
    if (u->nhold) rc = utf8_emit((const uint8_t *)u->hold, u->nhold, out, NULL);
    u->nhold = 0;
    return rc;
}

/* ---- coalescer ---------------------------------------------------------------------- */

void agent_llm_coalesce_init(agent_llm_coalesce_t *c, size_t min_bytes, uint64_t max_delay_ms) {
    memset(c, 0, sizeof *c);
    c->min_bytes = min_bytes;
    c->max_delay_ms = max_delay_ms;
}

void agent_llm_coalesce_free(agent_llm_coalesce_t *c) {
    common_buf_free(&c->buf);
}

int agent_llm_coalesce_push(agent_llm_coalesce_t *c, const char *text, size_t len,
                            uint64_t now_ms) {
    if (!len) return 0;
    if (c->buf.len == 0) c->first_ms = now_ms;
    return common_buf_append(&c->buf, text, len);
}

int agent_llm_coalesce_ready(const agent_llm_coalesce_t *c, uint64_t now_ms) {
    if (c->buf.len == 0) return 0;
    if (c->buf.len >= c->min_bytes) return 1;
    return c->max_delay_ms && now_ms >= c->first_ms + c->max_delay_ms;
}

uint64_t agent_llm_coalesce_deadline(const agent_llm_coalesce_t *c) {
    if (c->buf.len == 0 || !c->max_delay_ms) return 0;
    return c->first_ms + c->max_delay_ms;
}

size_t agent_llm_coalesce_take(agent_llm_coalesce_t *c, const char **text) {
    size_t n = c->buf.len;
    *text = (const char *)c->buf.data;
    c->buf.len = 0; /* data stays valid until the next push appends over it */
    return n;
}

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t json_u64(const cJSON *o, const char *name, int *present) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0) return 0;
    if (present) *present = 1;
    if (d >= 18446744073709551615.0) return UINT64_MAX;
    return (uint64_t)d;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/* A message from an "error" member: a string, or an object with "message". */
static void error_member_text(const cJSON *e, char *out, size_t cap) {
    if (cJSON_IsString(e)) {
        copy_str(out, cap, e->valuestring);
        return;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(m)) {
        copy_str(out, cap, m->valuestring);
        return;
    }
    copy_str(out, cap, "unspecified error");
}

static void ev_reset(agent_llm_ev_t *ev) {
    memset(ev, 0, sizeof *ev);
}

static void ev_error(agent_llm_ev_t *ev, int err, const char *fmt, const char *arg) {
    ev->kind = AGENT_LLM_EV_END;
    ev->end = AGENT_LLM_ERROR;
    ev->err = err;
    snprintf(ev->message, sizeof ev->message, fmt, arg);
}

static void keep_text(char **slot, const char *s, agent_llm_ev_t *ev) {
    free(*slot);
    *slot = NULL;
    size_t n = strlen(s);
    if (!n) return;
    /* cJSON strings are NUL-terminated; an escaped \u0000 ends them early, which only loses
     * text after a NUL that a customer could not use anyway. */
    *slot = malloc(n + 1);
    if (!*slot) {
        ev_error(ev, COMMON_ENOMEM, "%s", "out of memory");
        return;
    }
    memcpy(*slot, s, n + 1);
    ev->kind = AGENT_LLM_EV_TEXT;
    ev->text = *slot;
    ev->len = n;
}

/* ---- Ollama NDJSON ------------------------------------------------------------------ */

void agent_llm_ollama_parser_init(agent_llm_ollama_parser_t *p, int chat) {
    memset(p, 0, sizeof *p);
    p->chat = chat;
}

void agent_llm_ollama_parser_free(agent_llm_ollama_parser_t *p) {
    free(p->text);
    p->text = NULL;
}

void agent_llm_ollama_parse_line(agent_llm_ollama_parser_t *p, const char *line, size_t len,
                                 agent_llm_ev_t *ev) {
    ev_reset(ev);
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (k == len) return;
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        ev_error(ev, COMMON_EJSON, "%s", "malformed NDJSON line from the backend");
        return;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (e && !cJSON_IsNull(e)) {
        char msg[200];
        error_member_text(e, msg, sizeof msg);
        ev_error(ev, LLM_EBACKEND, "backend error: %s", msg);
        cJSON_Delete(o);
        return;
    }
    ev->any = 1;
    const cJSON *content = NULL;
    if (p->chat) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
        content = cJSON_GetObjectItemCaseSensitive(m, "content");
    } else {
        content = cJSON_GetObjectItemCaseSensitive(o, "response");
    }
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(o, "done");
    if (cJSON_IsTrue(done)) {
        /* A final line may in principle carry text (stream:false answers do). */
        if (cJSON_IsString(content) && content->valuestring[0]) {
            /* The final event carries it in text/len: delivered before the end. */
            keep_text(&p->text, content->valuestring, ev);
            if (ev->kind == AGENT_LLM_EV_END) {
                cJSON_Delete(o);
                return;
            }
        }
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "done_reason");
        copy_str(ev->reason, sizeof ev->reason, cJSON_IsString(r) ? r->valuestring : "stop");
        ev->kind = AGENT_LLM_EV_END;
        ev->end = strcmp(ev->reason, "length") == 0 ? AGENT_LLM_LENGTH : AGENT_LLM_DONE;
        int has = 0;
        ev->prompt_tokens = json_u64(o, "prompt_eval_count", &has);
        ev->completion_tokens = json_u64(o, "eval_count", &has);
        ev->has_usage = has;
        ev->total_duration_ns = json_u64(o, "total_duration", NULL);
        ev->eval_duration_ns = json_u64(o, "eval_duration", NULL);
        cJSON_Delete(o);
        return;
    }
    if (cJSON_IsString(content)) keep_text(&p->text, content->valuestring, ev);
    cJSON_Delete(o);
}

/* ---- OpenAI SSE --------------------------------------------------------------------- */

void agent_llm_sse_parser_init(agent_llm_sse_parser_t *p) {
    memset(p, 0, sizeof *p);
}

void agent_llm_sse_parser_free(agent_llm_sse_parser_t *p) {
    common_buf_free(&p->data);
    free(p->text);
    p->text = NULL;
}

static void sse_event(agent_llm_sse_parser_t *p, const char *data, size_t len, agent_llm_ev_t *ev) {
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        ev->kind = AGENT_LLM_EV_END;
        ev->any = 1;
        copy_str(ev->reason, sizeof ev->reason, p->finish[0] ? p->finish : "stop");
        ev->end = strcmp(ev->reason, "length") == 0 ? AGENT_LLM_LENGTH : AGENT_LLM_DONE;
        ev->has_usage = p->has_usage;
        ev->prompt_tokens = p->prompt_tokens;
        ev->completion_tokens = p->completion_tokens;
        return;
    }
    cJSON *o = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        ev_error(ev, COMMON_EJSON, "%s", "malformed SSE data from the backend");
        return;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (e && !cJSON_IsNull(e)) {
        char msg[200];
        error_member_text(e, msg, sizeof msg);
        ev_error(ev, LLM_EBACKEND, "backend error in stream: %s", msg);
        cJSON_Delete(o);
        return;
    }
    ev->any = 1;
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(o, "usage");
    if (cJSON_IsObject(usage)) {
        int has = 0;
        p->prompt_tokens = json_u64(usage, "prompt_tokens", &has);
        p->completion_tokens = json_u64(usage, "completion_tokens", &has);
        p->has_usage |= has;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (cJSON_IsObject(c0)) {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
        if (cJSON_IsString(fr)) {
            copy_str(p->finish, sizeof p->finish, fr->valuestring);
            if (strcmp(fr->valuestring, "error") == 0) {
                ev_error(ev, LLM_EBACKEND, "%s",
                         "backend ended the stream with finish_reason error");
                cJSON_Delete(o);
                return;
            }
        }
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
        if (cJSON_IsString(content)) keep_text(&p->text, content->valuestring, ev);
    }
    cJSON_Delete(o);
}

void agent_llm_sse_parse_line(agent_llm_sse_parser_t *p, const char *line, size_t len,
                              agent_llm_ev_t *ev) {
    ev_reset(ev);
    if (len == 0) { /* end of an event */
        if (!p->has_data) return;
        p->has_data = 0;
        size_t n = p->data.len;
        p->data.len = 0;
        sse_event(p, (const char *)p->data.data, n, ev);
        return;
    }
    if (line[0] == ':') return; /* comment / keep-alive */
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    if (nlen != 4 || memcmp(line, "data", 4) != 0) return; /* event:, id:, retry: ignored */
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen && v[0] == ' ') v++, vlen--;
    if (p->data.len + vlen + 1 > AGENT_LLM_MAX_LINE) {
        ev_error(ev, COMMON_ETOOBIG, "%s", "SSE event larger than the limit");
        return;
    }
    if (p->has_data && common_buf_append(&p->data, "\n", 1)) goto nomem;
    if (common_buf_append(&p->data, v, vlen)) goto nomem;
    p->has_data = 1;
    return;
nomem:
    ev_error(ev, COMMON_ENOMEM, "%s", "out of memory");
}

/* ---- errors ------------------------------------------------------------------------- */

int agent_llm_status_err(long status) {
    switch (status) {
    case 400:
    case 422: return LLM_EBADREQ;
    case 401:
    case 403: return LLM_EAUTH;
    case 402: return LLM_ECREDITS;
    case 404: return LLM_EMODEL;
    case 408:
    case 504: return COMMON_ETIMEDOUT;
    case 429: return LLM_ERATELIMIT;
    case 503: return LLM_EBUSY;
    default: return LLM_EBACKEND;
    }
}

void agent_llm_error_text(const char *body, size_t len, char *out, size_t cap) {
    if (!cap) return;
    out[0] = '\0';
    cJSON *o = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (e && !cJSON_IsNull(e)) {
        error_member_text(e, out, cap);
        cJSON_Delete(o);
        return;
    }
    cJSON_Delete(o);
    /* Plain text: keep printable bytes, one line. */
    size_t j = 0;
    for (size_t i = 0; body && i < len && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        if (c < 0x20 || c == 0x7F) continue;
        out[j++] = (char)c;
    }
    while (j > 0 && out[j - 1] == ' ') j--;
    out[j] = '\0';
    if (!common_utf8_valid(out, j)) out[common_utf8_complete_prefix(out, j)] = '\0';
}
