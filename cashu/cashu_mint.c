/* SPDX-License-Identifier: MIT */
/* Mint API client; see cashu_mint.h. */
#include "cashu/cashu_mint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_log.h"

#ifndef CASHU_MINT_MAX_BODY
#define CASHU_MINT_MAX_BODY (8u << 20)
#endif

typedef struct call {
    struct call *prev, *next;
    cashu_mint_t *m;
    common_http_req_t *req;
    cashu_mint_cb cb;
    void *ud;
    int is_post;
} call_t;

struct cashu_mint {
    common_http_t *http;
    const common_env_t *env;
    char *url;
    uint64_t timeout_ms, melt_timeout_ms;
    call_t *calls;
};

cashu_mint_t *cashu_mint_new(common_http_t *http, const common_env_t *env, const char *url,
                             int *err) {
    cashu_mint_t *m = calloc(1, sizeof *m);
    size_t n = url ? strlen(url) : 0;
    while (n > 0 && url[n - 1] == '/') n--;
    if (!m || n == 0 || !(m->url = strndup(url, n))) {
        free(m);
        if (err) *err = n == 0 ? COMMON_EINVAL : COMMON_ENOMEM;
        return NULL;
    }
    m->http = http;
    m->env = env;
    m->timeout_ms = 30000;
    m->melt_timeout_ms = 600000;
    return m;
}

void cashu_mint_free(cashu_mint_t *m) {
    if (!m) return;
    while (m->calls) {
        call_t *c = m->calls;
        m->calls = c->next;
        common_http_cancel(c->req);
        free(c);
    }
    free(m->url);
    free(m);
}

const char *cashu_mint_url(const cashu_mint_t *m) {
    return m->url;
}

void cashu_mint_set_timeouts(cashu_mint_t *m, uint64_t timeout_ms, uint64_t melt_timeout_ms) {
    if (timeout_ms) m->timeout_ms = timeout_ms;
    if (melt_timeout_ms) m->melt_timeout_ms = melt_timeout_ms;
}

static void unlink_call(call_t *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        c->m->calls = c->next;
    if (c->next) c->next->prev = c->prev;
}

static void on_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    (void)req;
    call_t *c = ud;
    unlink_call(c);
    cashu_mint_resp_t r = {0};
    char detail[256];
    cJSON *json = NULL;
    r.status = res->status;
    r.detail = "";
    if (res->err) {
        r.err = CASHU_EMINT_UNREACHABLE;
        r.ambiguous = c->is_post;
        snprintf(detail, sizeof detail, "%s: %s", common_strerror(res->err),
                 res->detail ? res->detail : "");
        r.detail = detail;
    } else {
        json = cJSON_ParseWithLength(res->body ? res->body : "", res->body_len);
        if (res->status == 200 && json) {
            r.json = json;
        } else if (res->status >= 400 && res->status < 500 && json) {
            const cJSON *code = cJSON_GetObjectItemCaseSensitive(json, "code");
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(json, "detail");
            r.mint_code = cJSON_IsNumber(code) ? (int)code->valuedouble : 0;
            r.err = (r.mint_code == 11001 || r.mint_code == 10002) ? CASHU_ESPENT : CASHU_EMINT;
            r.detail = cJSON_IsString(d) ? d->valuestring : "mint error";
        } else {
            r.err = CASHU_EMINT;
            r.ambiguous = c->is_post && (res->status >= 500 || res->status == 200);
            snprintf(detail, sizeof detail, "HTTP %ld%s", res->status,
                     res->status == 200 ? " with a malformed body" : "");
            r.detail = detail;
        }
    }
    c->cb(c->ud, &r);
    cJSON_Delete(json);
    free(c);
}

static int start(cashu_mint_t *m, const char *method, const char *path, const char *body,
                 int long_call, cashu_mint_cb cb, void *ud) {
    char url[1024];
    if ((size_t)snprintf(url, sizeof url, "%s%s", m->url, path) >= sizeof url)
        return COMMON_ETOOBIG;
    call_t *c = calloc(1, sizeof *c);
    if (!c) return COMMON_ENOMEM;
    static const char *const hdrs[] = {"Content-Type: application/json", "Accept: application/json",
                                       NULL};
    uint64_t t = long_call ? m->melt_timeout_ms : m->timeout_ms;
    common_http_opts_t o = {
        .method = method,
        .url = url,
        .headers = hdrs,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .connect_timeout_ms = 5000,
        .first_byte_timeout_ms = t,
        .idle_timeout_ms = t,
        .total_timeout_ms = t,
        .max_body = CASHU_MINT_MAX_BODY,
        /* A POST changes state at the mint: never let libcurl re-send it on its own. The
         * journal resolves an unclear outcome; a silent second send would only muddle it. */
        .no_reuse = body != NULL,
        .on_done = on_done,
        .ud = c,
    };
    c->m = m;
    c->cb = cb;
    c->ud = ud;
    c->is_post = body != NULL;
    int err = 0;
    c->req = common_http_request(m->http, &o, &err);
    if (!c->req) {
        free(c);
        return err ? err : COMMON_EIO;
    }
    c->next = m->calls;
    if (m->calls) m->calls->prev = c;
    m->calls = c;
    return 0;
}

int cashu_mint_get(cashu_mint_t *m, const char *path, cashu_mint_cb cb, void *ud) {
    return start(m, "GET", path, NULL, 0, cb, ud);
}

int cashu_mint_post(cashu_mint_t *m, const char *path, const cJSON *body, int long_call,
                    cashu_mint_cb cb, void *ud) {
    char *s = cJSON_PrintUnformatted(body);
    if (!s) return COMMON_ENOMEM;
    int rc = start(m, "POST", path, s, long_call, cb, ud);
    free(s);
    return rc;
}
