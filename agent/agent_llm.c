/* SPDX-License-Identifier: MIT */
/*
 * LLM driver glue: one generation = one streaming common_http request + one uv timer.
 *
 *   common_http on_data → line splitter → backend parser (NDJSON or SSE) → events
 *   text events → UTF-8 stage → coalescer → on_delta
 *   final / error events, HTTP status, transport end, timer → on_end (exactly once)
 *
 * The timer enforces the first-token deadline (start → first data event; model loads are
 * slow, and OpenRouter-style comment pings do not count as tokens), the idle deadline (any
 * received byte after the first token resets it) and the coalescer's max delay. common_http
 * gets looser first-byte/idle limits only as a backstop.
 *
 * Re-entrancy: on_delta may call agent_llm_cancel on its own generation. The HTTP request is
 * cancelled at once (the connection closes inside the curl callback); on_end(STOPPED) waits
 * until on_delta has returned. A generation's memory is freed from its timer's close
 * callback, so it stays valid while our own frames unwind after on_end.
 */
#include "agent/agent_llm.h"
#include "agent/agent_llm_core.h"
#include "agent/agent_llm_driver.h"
#include "common/common_err.h"
#include "common/common_log.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define LLM_DEFAULT_CONNECT_MS     5000u
#define LLM_DEFAULT_FIRST_TOKEN_MS 300000u
#define LLM_DEFAULT_IDLE_MS        60000u

typedef struct llm_check llm_check_t;

struct agent_llm {
    uv_loop_t *loop;
    common_http_t *http;
    const common_env_t *env;
    agent_llm_config_t cfg; /* strings below are owned copies */
    char *base_url, *model, *keep_alive;
    char *api_key;     /* wiped on free */
    char *auth_header; /* "Authorization: Bearer …", wiped on free */
    agent_llm_gen_t *gens;
    size_t ngens;
    uint64_t next_id;
    llm_check_t *check;
};

struct agent_llm_gen {
    agent_llm_t *llm;
    agent_llm_gen_t *prev, *next;
    uint64_t id;
    common_http_req_t *req;
    agent_llm_cbs_t cbs;
    uv_timer_t timer;
    uint64_t timer_at; /* armed deadline (uv_now ms) or 0 */
    agent_llm_lines_t lines;
    agent_llm_utf8_t utf8;
    agent_llm_coalesce_t co;
    common_buf_t tmp; /* UTF-8 stage output */
    agent_llm_ollama_parser_t op;
    agent_llm_sse_parser_t sp;
    int chat;
    common_buf_t errbody;
    long status;
    uint64_t start_ms, last_byte_ms, first_token_ms;
    int got_first;
    int depth; /* inside one of our user callbacks */
    int cancel_pending;
    int finished;
    uint64_t chunks, text_bytes;
};

const char *agent_llm_end_name(agent_llm_end_t end) {
    switch (end) {
    case AGENT_LLM_DONE: return "done";
    case AGENT_LLM_LENGTH: return "length";
    case AGENT_LLM_STOPPED: return "stopped";
    case AGENT_LLM_ERROR: return "error";
    case AGENT_LLM_TRUNCATED: return "truncated";
    }
    return "unknown";
}

static const char *backend_name(const agent_llm_t *llm) {
    return llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI ? "openai" : "ollama";
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void wipe_free(char *s) {
    if (!s) return;
    sodium_memzero(s, strlen(s));
    free(s);
}

agent_llm_t *agent_llm_new(uv_loop_t *loop, common_http_t *http, const common_env_t *env,
                           const agent_llm_config_t *cfg, int *err) {
    int rc = COMMON_EINVAL;
    agent_llm_t *llm = NULL;
    if (!loop || !http || !env || !cfg || !cfg->base_url || !cfg->model || !cfg->model[0])
        goto fail;
    if (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0)
        goto fail;
    if (cfg->backend != AGENT_LLM_BACKEND_OLLAMA && cfg->backend != AGENT_LLM_BACKEND_OPENAI)
        goto fail;
    if (cfg->max_tokens == 0 || cfg->max_tokens > AGENT_LLM_MAX_TOKENS_CAP) goto fail;
    rc = COMMON_ENOMEM;
    llm = calloc(1, sizeof *llm);
    if (!llm) goto fail;
    llm->loop = loop;
    llm->http = http;
    llm->env = env;
    llm->cfg = *cfg;
    llm->base_url = dup_str(cfg->base_url);
    llm->model = dup_str(cfg->model);
    llm->keep_alive = dup_str(cfg->keep_alive);
    if (!llm->base_url || !llm->model || (cfg->keep_alive && !llm->keep_alive)) goto fail;
    size_t n = strlen(llm->base_url);
    while (n > 0 && llm->base_url[n - 1] == '/') llm->base_url[--n] = '\0';
    if (cfg->api_key && cfg->api_key[0] && strcmp(cfg->api_key, "ollama") != 0) {
        /* PeerSky's convention: the key "ollama" means a local server without auth. */
        llm->api_key = dup_str(cfg->api_key);
        size_t hl = strlen(cfg->api_key) + 32;
        llm->auth_header = malloc(hl);
        if (!llm->api_key || !llm->auth_header) goto fail;
        snprintf(llm->auth_header, hl, "Authorization: Bearer %s", cfg->api_key);
    }
    llm->cfg.base_url = llm->base_url;
    llm->cfg.model = llm->model;
    llm->cfg.keep_alive = llm->keep_alive;
    llm->cfg.api_key = llm->api_key;
    if (!llm->cfg.connect_timeout_ms) llm->cfg.connect_timeout_ms = LLM_DEFAULT_CONNECT_MS;
    if (!llm->cfg.first_token_timeout_ms)
        llm->cfg.first_token_timeout_ms = LLM_DEFAULT_FIRST_TOKEN_MS;
    if (!llm->cfg.idle_timeout_ms) llm->cfg.idle_timeout_ms = LLM_DEFAULT_IDLE_MS;
    if (!llm->cfg.max_line) llm->cfg.max_line = AGENT_LLM_MAX_LINE;
    LOG_INFO(env->log, "llm", "backend %s at %s, model %s, max_tokens %llu%s", backend_name(llm),
             llm->base_url, llm->model, (unsigned long long)cfg->max_tokens,
             llm->api_key ? ", with API key" : "");
    return llm;
fail:
    if (llm) {
        free(llm->base_url);
        free(llm->model);
        free(llm->keep_alive);
        wipe_free(llm->api_key);
        wipe_free(llm->auth_header);
        free(llm);
    }
    if (err) *err = rc;
    return NULL;
}

const char *agent_llm_base_url(const agent_llm_t *llm) {
    return llm->base_url;
}

size_t agent_llm_active(const agent_llm_t *llm) {
    return llm->ngens;
}

/* ---- generation lifecycle ------------------------------------------------------------ */

static void gen_closed(uv_handle_t *h) {
    free(h->data);
}

static void gen_unlink(agent_llm_gen_t *g) {
    agent_llm_t *llm = g->llm;
    if (!llm) return;
    if (g->prev)
        g->prev->next = g->next;
    else
        llm->gens = g->next;
    if (g->next) g->next->prev = g->prev;
    llm->ngens--;
    g->llm = NULL;
    g->prev = g->next = NULL;
}

static void gen_release(agent_llm_gen_t *g) {
    agent_llm_lines_free(&g->lines);
    agent_llm_coalesce_free(&g->co);
    common_buf_free(&g->tmp);
    common_buf_free(&g->errbody);
    agent_llm_ollama_parser_free(&g->op);
    agent_llm_sse_parser_free(&g->sp);
    uv_close((uv_handle_t *)&g->timer, gen_closed);
}

static void deliver(agent_llm_gen_t *g, const char *text, size_t len) {
    if (!len || !g->cbs.on_delta) return;
    g->text_bytes += len;
    g->depth++;
    g->cbs.on_delta(g, text, len, g->cbs.ud);
    g->depth--;
}

static int must_stop(const agent_llm_gen_t *g) {
    return g->finished || g->cancel_pending;
}

/* Everything held back (coalescer, then an incomplete UTF-8 tail as U+FFFD). */
static void flush_all(agent_llm_gen_t *g) {
    const char *t;
    size_t n = agent_llm_coalesce_take(&g->co, &t);
    if (n) deliver(g, t, n);
    if (must_stop(g)) return;
    g->tmp.len = 0;
    if (agent_llm_utf8_finish(&g->utf8, &g->tmp) == 0)
        deliver(g, (const char *)g->tmp.data, g->tmp.len);
}

static void gen_finish(agent_llm_gen_t *g, agent_llm_end_t end, int err, const char *reason,
                       const char *message, const agent_llm_ev_t *ev) {
    if (g->finished) return;
    g->finished = 1;
    if (g->req) {
        /* Closes the upstream connection now (also from inside a curl callback). */
        common_http_cancel(g->req);
        g->req = NULL;
    }
    agent_llm_t *llm = g->llm;
    const common_log_t *log = llm ? llm->env->log : NULL;
    uint64_t now = uv_now(g->timer.loop);
    gen_unlink(g);
    uv_timer_stop(&g->timer);
    if (end != AGENT_LLM_STOPPED) {
        /* Deliver what is held back. A cancel from this on_delta only stops the flush: the
         * stream has already ended, so the end state stays. */
        g->finished = 0;
        g->cancel_pending = 0;
        flush_all(g);
        g->finished = 1;
    } else {
        agent_llm_coalesce_take(&g->co, &(const char *){NULL});
    }
    agent_llm_result_t res = {
        .end = end,
        .err = err,
        .http_status = g->status,
        .reason = reason ? reason : "",
        .message = message ? message : (err ? common_strerror(err) : "ok"),
        .chunks = g->chunks,
        .text_bytes = g->text_bytes,
        .first_token_ms = g->got_first ? g->first_token_ms : 0,
        .elapsed_ms = now - g->start_ms,
    };
    if (ev) {
        res.has_usage = ev->has_usage;
        res.prompt_tokens = ev->prompt_tokens;
        res.completion_tokens = ev->completion_tokens;
        res.total_duration_ns = ev->total_duration_ns;
        res.eval_duration_ns = ev->eval_duration_ns;
    }
    LOG_DEBUG(log, "llm", "gen %llu: %s (%s) prompt=%llu completion=%llu chunks=%llu bytes=%llu",
              (unsigned long long)g->id, agent_llm_end_name(end), res.message,
              (unsigned long long)res.prompt_tokens, (unsigned long long)res.completion_tokens,
              (unsigned long long)g->chunks, (unsigned long long)g->text_bytes);
    g->depth++;
    if (g->cbs.on_end) g->cbs.on_end(g, &res, g->cbs.ud);
    g->depth--;
    gen_release(g);
}

static void gen_fail(agent_llm_gen_t *g, agent_llm_end_t end, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void gen_fail(agent_llm_gen_t *g, agent_llm_end_t end, int err, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gen_finish(g, end, err, NULL, msg, NULL);
}

static void timer_cb(uv_timer_t *t);

static void arm_timer(agent_llm_gen_t *g) {
    if (g->finished) return;
    const agent_llm_config_t *c = &g->llm->cfg;
    uint64_t d = g->got_first ? g->last_byte_ms + c->idle_timeout_ms
                              : g->start_ms + c->first_token_timeout_ms;
    uint64_t cd = agent_llm_coalesce_deadline(&g->co);
    if (cd && cd < d) d = cd;
    if (g->timer_at && g->timer_at <= d) return; /* fires earlier and re-arms then */
    uint64_t now = uv_now(g->timer.loop);
    g->timer_at = d;
    uv_timer_start(&g->timer, timer_cb, d > now ? d - now : 0, 0);
}

static void emit_text(agent_llm_gen_t *g, const char *text, size_t len) {
    g->tmp.len = 0;
    if (agent_llm_utf8_feed(&g->utf8, text, len, &g->tmp)) {
        gen_fail(g, AGENT_LLM_ERROR, COMMON_ENOMEM, "out of memory");
        return;
    }
    if (g->tmp.len == 0) return;
    if (g->co.min_bytes == 0) {
        deliver(g, (const char *)g->tmp.data, g->tmp.len);
        return;
    }
    uint64_t now = uv_now(g->timer.loop);
    if (agent_llm_coalesce_push(&g->co, (const char *)g->tmp.data, g->tmp.len, now)) {
        gen_fail(g, AGENT_LLM_ERROR, COMMON_ENOMEM, "out of memory");
        return;
    }
    if (agent_llm_coalesce_ready(&g->co, now)) {
        const char *t;
        size_t n = agent_llm_coalesce_take(&g->co, &t);
        deliver(g, t, n);
    }
}

static void handle_event(agent_llm_gen_t *g, const agent_llm_ev_t *ev) {
    if (ev->any && !g->got_first) {
        g->got_first = 1;
        g->first_token_ms = uv_now(g->timer.loop) - g->start_ms;
    }
    if (ev->len) {
        g->chunks++;
        emit_text(g, ev->text, ev->len);
        if (must_stop(g)) return;
    }
    if (ev->kind != AGENT_LLM_EV_END) return;
    if (ev->end == AGENT_LLM_ERROR) {
        gen_fail(g, AGENT_LLM_ERROR, ev->err, "%s (%s %s, model %s)", ev->message,
                 backend_name(g->llm), g->llm->base_url, g->llm->model);
        return;
    }
    gen_finish(g, ev->end, 0, ev->reason, ev->reason, ev);
}

static void handle_line(agent_llm_gen_t *g, const char *line, size_t len) {
    agent_llm_ev_t ev;
    if (g->llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI)
        agent_llm_sse_parse_line(&g->sp, line, len, &ev);
    else
        agent_llm_ollama_parse_line(&g->op, line, len, &ev);
    if (ev.kind != AGENT_LLM_EV_NONE || ev.any || ev.len) handle_event(g, &ev);
}

static void after_callbacks(agent_llm_gen_t *g) {
    if (g->finished) return;
    if (g->cancel_pending)
        gen_finish(g, AGENT_LLM_STOPPED, COMMON_ECANCELED, NULL, "cancelled", NULL);
    else
        arm_timer(g);
}

static void timer_cb(uv_timer_t *t) {
    agent_llm_gen_t *g = t->data;
    g->timer_at = 0;
    if (g->finished) return;
    uint64_t now = uv_now(t->loop);
    if (agent_llm_coalesce_ready(&g->co, now)) {
        const char *txt;
        size_t n = agent_llm_coalesce_take(&g->co, &txt);
        deliver(g, txt, n);
        if (must_stop(g)) {
            after_callbacks(g);
            return;
        }
    }
    const agent_llm_config_t *c = &g->llm->cfg;
    if (!g->got_first && now >= g->start_ms + c->first_token_timeout_ms) {
        gen_fail(g, AGENT_LLM_ERROR, COMMON_ETIMEDOUT,
                 "no token from %s %s (model %s) within %llu ms (first-token timeout)",
                 backend_name(g->llm), g->llm->base_url, g->llm->model,
                 (unsigned long long)c->first_token_timeout_ms);
        return;
    }
    if (g->got_first && now >= g->last_byte_ms + c->idle_timeout_ms) {
        gen_fail(g, AGENT_LLM_ERROR, COMMON_ETIMEDOUT,
                 "stream from %s %s (model %s) idle for %llu ms (idle timeout)",
                 backend_name(g->llm), g->llm->base_url, g->llm->model,
                 (unsigned long long)c->idle_timeout_ms);
        return;
    }
    arm_timer(g);
}

static void on_response(common_http_req_t *req, long status, void *ud) {
    agent_llm_gen_t *g = ud;
    g->status = status;
}

static int http_ok(long status) {
    return status >= 200 && status < 300;
}

static int on_data(common_http_req_t *req, const char *data, size_t len, void *ud) {
    agent_llm_gen_t *g = ud;
    if (g->finished) return 0;
    g->last_byte_ms = uv_now(g->timer.loop);
    if (!http_ok(g->status)) {
        size_t room = AGENT_LLM_MAX_ERROR_BODY - g->errbody.len;
        if (common_buf_append(&g->errbody, data, len < room ? len : room)) return COMMON_ENOMEM;
        return 0;
    }
    int rc = agent_llm_lines_feed(&g->lines, data, len);
    if (rc) {
        gen_fail(g, AGENT_LLM_ERROR, rc, "%s from %s %s (model %s): %s",
                 rc == COMMON_ETOOBIG ? "line longer than the limit" : "out of memory",
                 backend_name(g->llm), g->llm->base_url, g->llm->model,
                 rc == COMMON_ETOOBIG ? "refusing to buffer it" : "stopped");
        return 0;
    }
    char *line;
    size_t n;
    while (!must_stop(g) && agent_llm_lines_next(&g->lines, &line, &n)) handle_line(g, line, n);
    after_callbacks(g);
    return 0;
}

static void on_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    agent_llm_gen_t *g = ud;
    g->req = NULL; /* freed by common_http after we return */
    if (g->finished) return;
    if (res->status) g->status = res->status;
    agent_llm_t *llm = g->llm;
    if (g->status && !http_ok(g->status)) {
        char text[256];
        agent_llm_error_text((const char *)g->errbody.data, g->errbody.len, text, sizeof text);
        gen_fail(g, AGENT_LLM_ERROR, agent_llm_status_err(g->status),
                 "HTTP %ld from %s %s (model %s): %s", g->status, backend_name(llm), llm->base_url,
                 llm->model, text[0] ? text : "(no message)");
        return;
    }
    if (res->err == 0 || res->err == COMMON_ECLOSED || res->err == COMMON_ECONNRESET) {
        if (g->status == 0) {
            gen_fail(g, AGENT_LLM_ERROR, res->err ? res->err : COMMON_EPROTO,
                     "%s %s closed the connection before answering: %s", backend_name(llm),
                     llm->base_url, res->detail);
            return;
        }
        /* A last line without "\n", then an SSE event without its blank line. */
        if (agent_llm_lines_pending(&g->lines)) {
            if (agent_llm_lines_feed(&g->lines, "\n", 1) == 0) {
                char *line;
                size_t n;
                while (!must_stop(g) && agent_llm_lines_next(&g->lines, &line, &n))
                    handle_line(g, line, n);
            }
        }
        if (!must_stop(g) && llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI && g->sp.has_data)
            handle_line(g, "", 0);
        if (g->finished) return;
        if (g->cancel_pending) {
            after_callbacks(g);
            return;
        }
        gen_fail(g, AGENT_LLM_TRUNCATED, LLM_ETRUNCATED,
                 "stream from %s %s (model %s) ended without a final %s after %llu chunks (%s)",
                 backend_name(llm), llm->base_url, llm->model,
                 llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI ? "[DONE]" : "done line",
                 (unsigned long long)g->chunks, res->err ? res->detail : "clean end of body");
        return;
    }
    gen_fail(g, AGENT_LLM_ERROR, res->err, "%s %s (model %s): %s", backend_name(llm), llm->base_url,
             llm->model, res->detail);
}

agent_llm_gen_t *agent_llm_start(agent_llm_t *llm, const agent_llm_params_t *p,
                                 const agent_llm_cbs_t *cbs, int *err) {
    int rc = COMMON_EINVAL;
    agent_llm_request_t rq = {0};
    agent_llm_gen_t *g = NULL;
    if (!llm || !p || !cbs || !cbs->on_end) goto fail;
    if ((p->prompt != NULL) == (p->nmessages > 0)) goto fail; /* exactly one of the two */
    for (size_t i = 0; i < p->nmessages; i++)
        if (!p->messages || !p->messages[i].role || !p->messages[i].content) goto fail;
    for (size_t i = 0; i < p->nstop; i++)
        if (!p->stop || !p->stop[i]) goto fail;
    uint64_t max_tokens =
        p->max_tokens && p->max_tokens < llm->cfg.max_tokens ? p->max_tokens : llm->cfg.max_tokens;
    rc = llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI
             ? agent_llm_openai_build(&llm->cfg, p, max_tokens, &rq)
             : agent_llm_ollama_build(&llm->cfg, p, max_tokens, &rq);
    if (rc) goto fail;
    rc = COMMON_ENOMEM;
    g = calloc(1, sizeof *g);
    if (!g) goto fail;
    g->llm = llm;
    g->id = ++llm->next_id;
    g->cbs = *cbs;
    g->chat = rq.chat;
    agent_llm_lines_init(&g->lines, llm->cfg.max_line);
    agent_llm_coalesce_init(&g->co, llm->cfg.coalesce_min_bytes, llm->cfg.coalesce_max_delay_ms);
    agent_llm_ollama_parser_init(&g->op, rq.chat);
    agent_llm_sse_parser_init(&g->sp);
    uv_timer_init(llm->loop, &g->timer);
    g->timer.data = g;
    uv_update_time(llm->loop);
    g->start_ms = g->last_byte_ms = uv_now(llm->loop);

    const char *headers[4];
    size_t nh = 0;
    headers[nh++] = "Content-Type: application/json";
    headers[nh++] = llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI ? "Accept: text/event-stream"
                                                                 : "Accept: application/x-ndjson";
    if (llm->auth_header) headers[nh++] = llm->auth_header;
    headers[nh] = NULL;
    const agent_llm_config_t *c = &llm->cfg;
    common_http_opts_t o = {
        .method = "POST",
        .url = rq.url,
        .headers = headers,
        .body = rq.body,
        .body_len = strlen(rq.body),
        .connect_timeout_ms = c->connect_timeout_ms,
        /* Backstops only: the timer enforces first-token and idle precisely. */
        .first_byte_timeout_ms = c->first_token_timeout_ms + 1000,
        .idle_timeout_ms = c->first_token_timeout_ms + c->idle_timeout_ms + 1000,
        .max_body = SIZE_MAX / 2,
        .stream = 1,
        .on_response = on_response,
        .on_data = on_data,
        .on_done = on_done,
        .ud = g,
    };
    /* Link before the request: a synchronous failure path must find a consistent state. */
    g->next = llm->gens;
    if (llm->gens) llm->gens->prev = g;
    llm->gens = g;
    llm->ngens++;
    g->req = common_http_request(llm->http, &o, &rc);
    if (!g->req) {
        gen_unlink(g);
        g->finished = 1;
        gen_release(g); /* freed in the timer's close callback */
        g = NULL;
        goto fail;
    }
    LOG_DEBUG(llm->env->log, "llm", "gen %llu: POST %s max_tokens=%llu", (unsigned long long)g->id,
              rq.url, (unsigned long long)max_tokens);
    arm_timer(g);
    free(rq.url);
    free(rq.body);
    return g;
fail:
    free(rq.url);
    free(rq.body);
    if (err) *err = rc;
    return NULL;
}

void agent_llm_cancel(agent_llm_gen_t *g) {
    if (!g || g->finished || g->cancel_pending) return;
    if (g->req) {
        common_http_cancel(g->req);
        g->req = NULL;
    }
    if (g->depth > 0) {
        g->cancel_pending = 1; /* on_end(STOPPED) once on_delta returns */
        return;
    }
    gen_finish(g, AGENT_LLM_STOPPED, COMMON_ECANCELED, NULL, "cancelled", NULL);
}

/* ---- startup check and pull ---------------------------------------------------------- */

struct llm_check {
    agent_llm_t *llm;
    common_http_req_t *req;
    int pull, pulling;
    FILE *progress;
    void (*on_done)(void *ud, int err, const char *message);
    void *ud;
    agent_llm_lines_t lines;
    agent_llm_pull_state_t ps;
    long status;
    common_buf_t errbody;
};

static void check_end(llm_check_t *ck, int err, const char *msg) {
    agent_llm_t *llm = ck->llm;
    llm->check = NULL;
    if (ck->pulling && ck->progress) fputc('\n', ck->progress);
    if (err)
        LOG_ERROR(llm->env->log, "llm", "%s", msg);
    else
        LOG_INFO(llm->env->log, "llm", "%s", msg);
    void (*cb)(void *, int, const char *) = ck->on_done;
    void *ud = ck->ud;
    agent_llm_lines_free(&ck->lines);
    common_buf_free(&ck->errbody);
    free(ck);
    if (cb) cb(ud, err, msg);
}

static int start_pull(llm_check_t *ck);

static void check_tags_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    llm_check_t *ck = ud;
    agent_llm_t *llm = ck->llm;
    ck->req = NULL;
    char msg[768];
    const char *kind = backend_name(llm);
    if (res->err) {
        snprintf(msg, sizeof msg, "cannot reach the %s backend at %s (model %s): %s%s", kind,
                 llm->base_url, llm->model, res->detail,
                 res->err == COMMON_ECONNREFUSED && llm->cfg.backend == AGENT_LLM_BACKEND_OLLAMA
                     ? " (is `ollama serve` running?)"
                     : "");
        check_end(ck, res->err, msg);
        return;
    }
    if (!http_ok(res->status)) {
        char text[200];
        agent_llm_error_text(res->body, res->body_len, text, sizeof text);
        snprintf(msg, sizeof msg,
                 "%s backend at %s answered HTTP %ld to the model list (model %s): %s", kind,
                 llm->base_url, res->status, llm->model, text);
        check_end(ck, agent_llm_status_err(res->status), msg);
        return;
    }
    char avail[256];
    int found =
        llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI
            ? agent_llm_openai_has_model(res->body, res->body_len, llm->model, avail, sizeof avail)
            : agent_llm_ollama_has_model(res->body, res->body_len, llm->model, avail, sizeof avail);
    if (found < 0) {
        snprintf(msg, sizeof msg, "%s backend at %s sent a model list we cannot read (model %s)",
                 kind, llm->base_url, llm->model);
        check_end(ck, LLM_EBACKEND, msg);
        return;
    }
    if (found) {
        snprintf(msg, sizeof msg, "model %s is available at %s (%s)", llm->model, llm->base_url,
                 kind);
        check_end(ck, 0, msg);
        return;
    }
    if (ck->pull && llm->cfg.backend == AGENT_LLM_BACKEND_OLLAMA) {
        int rc = start_pull(ck);
        if (rc == 0) return;
        snprintf(msg, sizeof msg, "cannot start pulling %s from %s: %s", llm->model, llm->base_url,
                 common_strerror(rc));
        check_end(ck, rc, msg);
        return;
    }
    snprintf(msg, sizeof msg, "model %s not found at %s (%s; available: %s)%s", llm->model,
             llm->base_url, kind, avail[0] ? avail : "none",
             llm->cfg.backend == AGENT_LLM_BACKEND_OLLAMA
                 ? "; run with --pull or `ollama pull <model>`"
                 : "");
    check_end(ck, LLM_EMODEL, msg);
}

static void pull_response(common_http_req_t *req, long status, void *ud) {
    ((llm_check_t *)ud)->status = status;
}

static int pull_data(common_http_req_t *req, const char *data, size_t len, void *ud) {
    llm_check_t *ck = ud;
    if (!http_ok(ck->status)) {
        size_t room = AGENT_LLM_MAX_ERROR_BODY - ck->errbody.len;
        return common_buf_append(&ck->errbody, data, len < room ? len : room) ? COMMON_ENOMEM : 0;
    }
    int rc = agent_llm_lines_feed(&ck->lines, data, len);
    if (rc) return rc;
    char *line;
    size_t n;
    while (agent_llm_lines_next(&ck->lines, &line, &n))
        if (agent_llm_pull_line(&ck->ps, line, n))
            agent_llm_pull_draw(&ck->ps, ck->llm->model, ck->progress);
    return 0;
}

static void pull_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    llm_check_t *ck = ud;
    agent_llm_t *llm = ck->llm;
    ck->req = NULL;
    char msg[512];
    if (ck->status && !http_ok(ck->status)) {
        char text[200];
        agent_llm_error_text((const char *)ck->errbody.data, ck->errbody.len, text, sizeof text);
        snprintf(msg, sizeof msg, "pulling %s from %s failed: HTTP %ld: %s", llm->model,
                 llm->base_url, ck->status, text);
        check_end(ck, agent_llm_status_err(ck->status), msg);
    } else if (ck->ps.err) {
        snprintf(msg, sizeof msg, "pulling %s from %s failed: %s", llm->model, llm->base_url,
                 ck->ps.message);
        check_end(ck, ck->ps.err, msg);
    } else if (ck->ps.success) {
        snprintf(msg, sizeof msg, "pulled model %s at %s", llm->model, llm->base_url);
        check_end(ck, 0, msg);
    } else {
        snprintf(msg, sizeof msg, "pulling %s from %s ended without success: %s", llm->model,
                 llm->base_url, res->err ? res->detail : "stream ended");
        check_end(ck, res->err ? res->err : LLM_ETRUNCATED, msg);
    }
}

static int start_pull(llm_check_t *ck) {
    agent_llm_t *llm = ck->llm;
    ck->pulling = 1;
    agent_llm_lines_init(&ck->lines, AGENT_LLM_MAX_LINE);
    int ok = 1;
    size_t n = strlen(llm->base_url) + 16;
    char *url = malloc(n);
    size_t bl = strlen(llm->model) * 6 + 64;
    char *body = malloc(bl);
    if (!url || !body) ok = 0;
    int rc = COMMON_ENOMEM;
    if (ok) {
        snprintf(url, n, "%s/api/pull", llm->base_url);
        /* Model names are [a-zA-Z0-9._:/-]; refuse anything needing JSON escapes. */
        for (const char *s = llm->model; *s; s++)
            if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) ok = 0;
        rc = COMMON_EINVAL;
    }
    if (ok) {
        snprintf(body, bl, "{\"model\":\"%s\",\"stream\":true}", llm->model);
        const char *headers[] = {"Content-Type: application/json", llm->auth_header, NULL};
        common_http_opts_t o = {
            .method = "POST",
            .url = url,
            .headers = headers,
            .body = body,
            .body_len = strlen(body),
            .connect_timeout_ms = llm->cfg.connect_timeout_ms,
            .first_byte_timeout_ms = 120000,
            .idle_timeout_ms = 300000,
            .stream = 1,
            .on_response = pull_response,
            .on_data = pull_data,
            .on_done = pull_done,
            .ud = ck,
        };
        if (ck->progress) fprintf(ck->progress, "pulling %s from %s\n", llm->model, llm->base_url);
        ck->req = common_http_request(llm->http, &o, &rc);
        if (ck->req) rc = 0;
    }
    free(url);
    free(body);
    return rc;
}

int agent_llm_check(agent_llm_t *llm, int pull, FILE *progress,
                    void (*done_cb)(void *ud, int err, const char *message), void *ud) {
    if (!llm || !done_cb) return COMMON_EINVAL;
    if (llm->check) return COMMON_ESTATE;
    llm_check_t *ck = calloc(1, sizeof *ck);
    if (!ck) return COMMON_ENOMEM;
    ck->llm = llm;
    ck->pull = pull;
    ck->progress = progress;
    ck->on_done = done_cb;
    ck->ud = ud;
    char *url = llm->cfg.backend == AGENT_LLM_BACKEND_OPENAI
                    ? agent_llm_openai_models_url(&llm->cfg)
                    : agent_llm_ollama_tags_url(&llm->cfg);
    if (!url) {
        free(ck);
        return COMMON_ENOMEM;
    }
    const char *headers[] = {"Accept: application/json", llm->auth_header, NULL};
    common_http_opts_t o = {
        .url = url,
        .headers = headers,
        .connect_timeout_ms = llm->cfg.connect_timeout_ms,
        .first_byte_timeout_ms = 15000,
        .idle_timeout_ms = 15000,
        .total_timeout_ms = 30000,
        .on_done = check_tags_done,
        .ud = ck,
    };
    int rc;
    ck->req = common_http_request(llm->http, &o, &rc);
    free(url);
    if (!ck->req) {
        free(ck);
        return rc;
    }
    llm->check = ck;
    return 0;
}

void agent_llm_free(agent_llm_t *llm) {
    if (!llm) return;
    while (llm->gens) {
        agent_llm_gen_t *g = llm->gens;
        if (g->req) common_http_cancel(g->req);
        g->req = NULL;
        g->finished = 1;
        gen_unlink(g);
        gen_release(g);
    }
    if (llm->check) {
        if (llm->check->req) common_http_cancel(llm->check->req);
        agent_llm_lines_free(&llm->check->lines);
        common_buf_free(&llm->check->errbody);
        free(llm->check);
    }
    free(llm->base_url);
    free(llm->model);
    free(llm->keep_alive);
    wipe_free(llm->api_key);
    wipe_free(llm->auth_header);
    free(llm);
}

/* ---- settings ----------------------------------------------------------------------- */

int agent_llm_config_from_cfg(const common_cfg_t *cfg, agent_llm_config_t *out, char *err,
                              size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *backend = common_cfg_str(cfg, "backend");
    if (backend && strcmp(backend, "ollama") == 0)
        out->backend = AGENT_LLM_BACKEND_OLLAMA;
    else if (backend && strcmp(backend, "openai") == 0)
        out->backend = AGENT_LLM_BACKEND_OPENAI;
    else {
        snprintf(err, errlen, "--backend: expected ollama or openai, got '%s'",
                 backend ? backend : "");
        return COMMON_EINVAL;
    }
    out->base_url = common_cfg_str(cfg, "llm-url");
    if (!out->base_url) {
        if (out->backend == AGENT_LLM_BACKEND_OPENAI) {
            snprintf(err, errlen,
                     "--llm-url is required with --backend openai "
                     "(e.g. https://openrouter.ai/api/v1 or http://127.0.0.1:8080)");
            return COMMON_EINVAL;
        }
        out->base_url = "http://127.0.0.1:11434";
    }
    if (strncmp(out->base_url, "http://", 7) != 0 && strncmp(out->base_url, "https://", 8) != 0) {
        snprintf(err, errlen, "--llm-url: expected an http:// or https:// URL, got '%s'",
                 out->base_url);
        return COMMON_EINVAL;
    }
    out->api_key = common_cfg_str(cfg, "api-key");
    out->model = common_cfg_str(cfg, "model");
    if (!out->model || !out->model[0]) {
        snprintf(err, errlen, "--model: a model name is required");
        return COMMON_EINVAL;
    }
    out->max_tokens = common_cfg_u64(cfg, "max-tokens");
    out->connect_timeout_ms = common_cfg_u64(cfg, "llm-connect-timeout-ms");
    out->first_token_timeout_ms = common_cfg_u64(cfg, "llm-first-token-timeout-ms");
    out->idle_timeout_ms = common_cfg_u64(cfg, "llm-idle-timeout-ms");
    out->keep_alive = common_cfg_str(cfg, "llm-keep-alive");
    out->coalesce_min_bytes = (size_t)common_cfg_u64(cfg, "llm-coalesce-bytes");
    out->coalesce_max_delay_ms = common_cfg_u64(cfg, "llm-coalesce-ms");
    return 0;
}
