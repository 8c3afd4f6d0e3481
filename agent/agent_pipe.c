/* SPDX-License-Identifier: MIT */
/* Pipeline delegation: see agent_pipe.h for the contract. One pjob_t per outer generation:
 *
 *   sub-provider --chunks--> customer_run --output--> batcher --batches--> queue
 *   queue --one at a time--> local generator --deltas--> outer on_delta
 *
 * Flags: `closing` = no more work (set by cancel, failure or the normal end); `ended` = the
 * outer on_end was delivered. The job's memory is released (on a timer, never from inside a
 * callback of the customer or the local generator) once the outer end was delivered, the
 * local request ended, the customer finished, every connection we dialed reported on_close
 * and the payments handle has no wallet call in flight. */
#include "agent/agent_pipe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_pipe_batch.h"
#include "agent/agent_tcp.h"
#include "customer/customer_swarm.h"
#include "protocol/proto_joinlink.h"
#include "common/common_net.h"
#include "common/common_err.h"
#include "common/common_log.h"
#include "dht/dht_tcp.h"

#define MOD "pipe"

typedef struct qbatch {
    char *text;
    size_t len;
    struct qbatch *next;
} qbatch_t;

typedef struct pjob pjob_t;

struct agent_pipe {
    uv_loop_t *loop;
    const common_env_t *env;
    agent_pipe_cfg_t cfg;
    agent_pipe_deps_t deps;
    char *tmpl, *lang, *mint;
    pjob_t *jobs; /* every job whose memory is held */
    size_t njobs;
    uint64_t serial;
    agent_pipe_stats_t st;
};

struct pjob {
    agent_pipe_t *p;
    pjob_t *next, *prev;
    uint64_t serial;
    agent_gen_cbs_t cbs;
    void *ud;
    /* outer params kept for every local request */
    char *input, *system;
    uint64_t max_tokens;
    int has_temperature, has_seed;
    double temperature;
    int64_t seed;
    /* sub-task */
    customer_t *cu;
    customer_pay_t pay;
    int pay_ok, cu_started, cu_done, sub_exit;
    unsigned conns;               /* dialed connections not yet closed */
    customer_swarm_dialer_t *swd; /* Hyperswarm discovery (no --sub-peer) */
    customer_dialer_t swdl;
    int swd_closing;
    uint64_t spent, sub_chunks;
    int got_output;
    agent_pipe_batch_t *bat;
    qbatch_t *qh, *qt;
    /* local */
    void *lgen;
    int lgen_starting;
    int sep_pending;
    char sep, batch_sep; /* separator after the current batch's output */
    int last_ws;
    uint64_t pt, ct, out_bytes, out_chunks;
    int usage_all, length_hit;
    /* end */
    int closing, ended, in_delta;
    int pend_end;
    agent_llm_end_t pend_kind;
    int pend_err;
    char msg[256];
    uv_timer_t timer; /* kick at start, flush while running, reap at the end */
    int reaping, freeing, flush_armed;
};

static const common_log_t *LOGP(const agent_pipe_t *p) {
    return p->env ? p->env->log : NULL;
}

/* ---- templates ------------------------------------------------------------------------ */

const char *agent_pipe_default_template(uint32_t kind) {
    switch (kind) {
    case 5302:
        return "Translate the following text into {lang}. Reply with the translation only, "
               "no comments.\n\n{text}";
    case 5001: return "Summarize the following text.\n\n{text}";
    default: return "{text}";
    }
}

char *agent_pipe_expand(const char *tmpl, const char *text, size_t textlen, const char *lang,
                        uint32_t kind) {
    char kbuf[16];
    snprintf(kbuf, sizeof kbuf, "%u", kind);
    if (!lang) lang = "English";
    size_t cap = strlen(tmpl) + 1, ll = strlen(lang), kl = strlen(kbuf);
    /* upper bound: every placeholder replaced by the longest value */
    size_t nph = 0;
    for (const char *s = tmpl; (s = strchr(s, '{')); s++) nph++;
    size_t big = textlen > ll ? textlen : ll;
    if (big < kl) big = kl;
    cap += nph * big;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    for (const char *s = tmpl; *s;) {
        if (!strncmp(s, "{text}", 6)) {
            memcpy(out + o, text, textlen);
            o += textlen;
            s += 6;
        } else if (!strncmp(s, "{lang}", 6)) {
            memcpy(out + o, lang, ll);
            o += ll;
            s += 6;
        } else if (!strncmp(s, "{kind}", 6)) {
            memcpy(out + o, kbuf, kl);
            o += kl;
            s += 6;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = 0;
    return out;
}

int agent_pipe_channel_check(const char *channel, char *why, size_t whylen) {
    if (!channel || !strcmp(channel, "p2p")) return 0;
    if (!strcmp(channel, "api"))
        snprintf(why, whylen,
                 "SUB_CHANNEL=api (delegation through the platform HTTP API) is "
                 "not supported by this agent; use p2p");
    else
        snprintf(why, whylen, "SUB_CHANNEL: expected p2p, got '%s'", channel);
    return COMMON_EINVAL;
}

/* ---- job lifetime --------------------------------------------------------------------- */

static void job_maybe_reap(pjob_t *j);

static void job_free_cb(uv_handle_t *h) {
    pjob_t *j = h->data;
    free(j);
}

static void job_release(pjob_t *j) {
    agent_pipe_t *p = j->p;
    if (j->cu) customer_free(j->cu); /* closes its timer asynchronously */
    j->cu = NULL;
    if (j->pay_ok) {
        p->deps.pay_free(p->deps.pay_ud, &j->pay);
        j->pay_ok = 0;
    }
    agent_pipe_batch_free(j->bat);
    while (j->qh) {
        qbatch_t *q = j->qh;
        j->qh = q->next;
        free(q->text);
        free(q);
    }
    free(j->input);
    free(j->system);
    if (j->prev)
        j->prev->next = j->next;
    else
        p->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    p->njobs--;
    uv_close((uv_handle_t *)&j->timer, job_free_cb);
}

static void reap_cb(uv_timer_t *t) {
    pjob_t *j = t->data;
    agent_pipe_t *p = j->p;
    if (j->pay_ok && p->deps.pay_busy(p->deps.pay_ud, &j->pay) > 0) return; /* poll again */
    uv_timer_stop(&j->timer);
    if (j->pay_ok) j->pay.ops->close(j->pay.self);
    j->freeing = 1;
    job_release(j);
}

static void swarm_closed(void *ud) {
    pjob_t *j = ud;
    j->swd = NULL;
    job_maybe_reap(j);
}

static void job_maybe_reap(pjob_t *j) {
    if (j->reaping || !j->ended || j->lgen || j->lgen_starting || j->conns) return;
    if (j->cu && j->cu_started && !j->cu_done) return;
    if (j->swd) { /* close the temporary swarm first: its connections talk to j->cu */
        if (!j->swd_closing) {
            j->swd_closing = 1;
            customer_swarm_close(j->swd, swarm_closed, j);
        }
        return;
    }
    j->reaping = 1;
    j->flush_armed = 0;
    uv_timer_stop(&j->timer);
    uv_timer_start(&j->timer, reap_cb, 0, 20);
}

/* Deliver the outer on_end (at most once; deferred while our on_delta is on the stack). */
static void deliver_end(pjob_t *j) {
    if (j->ended || !j->pend_end) return;
    if (j->in_delta) return; /* out_delta delivers it once the callback returned */
    j->ended = 1;
    agent_pipe_t *p = j->p;
    agent_llm_result_t r;
    memset(&r, 0, sizeof r);
    r.end = j->pend_kind;
    r.err = j->pend_err;
    r.reason = "";
    r.message = j->msg;
    if (r.end == AGENT_LLM_DONE || r.end == AGENT_LLM_LENGTH) {
        r.has_usage = j->usage_all;
        r.prompt_tokens = j->pt;
        r.completion_tokens = j->ct;
    }
    r.chunks = j->out_chunks;
    r.text_bytes = j->out_bytes;
    switch (r.end) {
    case AGENT_LLM_DONE:
    case AGENT_LLM_LENGTH: p->st.jobs_done++; break;
    case AGENT_LLM_STOPPED: p->st.jobs_stopped++; break;
    default: p->st.jobs_failed++; break;
    }
    LOG_INFO(LOGP(p), MOD, "job %llu: %s (%s); %llu sub-task chunks in",
             (unsigned long long)j->serial, agent_llm_end_name(r.end), j->msg,
             (unsigned long long)j->sub_chunks);
    j->cbs.on_end(j->ud, &r);
    job_maybe_reap(j);
}

/* Stop everything still running for this job; the outer end is @p kind. */
static void job_close(pjob_t *j, agent_llm_end_t kind, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_close(pjob_t *j, agent_llm_end_t kind, int err, const char *fmt, ...) {
    if (j->closing) return;
    j->closing = 1;
    j->pend_end = 1;
    j->pend_kind = kind;
    j->pend_err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof j->msg, fmt, ap);
    va_end(ap);
    agent_pipe_t *p = j->p;
    if (j->cu && j->cu_started && !j->cu_done) customer_stop(j->cu); /* `stop`, then close */
    if (j->cu && !j->cu_started) j->cu_done = 1; /* never started: nothing to wait for */
    if (j->lgen) p->deps.local->ops->cancel(p->deps.local->self, j->lgen);
    deliver_end(j);
}

/* ---- local model ---------------------------------------------------------------------- */

static void pump(pjob_t *j);
static void arm_flush(pjob_t *j);

static void out_delta(pjob_t *j, const char *text, size_t len) {
    if (j->closing || len == 0) return;
    j->out_bytes += len;
    j->out_chunks++;
    j->in_delta++;
    j->cbs.on_delta(j->ud, text, len);
    j->in_delta--;
    if (!j->in_delta) deliver_end(j);
}

static void l_delta(void *ud, const char *text, size_t len) {
    pjob_t *j = ud;
    if (j->closing || len == 0) return;
    char last = text[len - 1];
    int sep = 0;
    if (j->sep_pending) { /* between two batches' outputs: keep words apart */
        j->sep_pending = 0;
        char c = text[0];
        sep = c != ' ' && c != '\n' && c != '\t' && !j->last_ws;
    }
    j->last_ws = last == ' ' || last == '\n' || last == '\t' || last == '\r';
    if (!sep) {
        out_delta(j, text, len);
        return;
    }
    char *b = malloc(len + 1); /* one delta (one chunk), not a chunk for the separator */
    if (!b) {
        job_close(j, AGENT_LLM_ERROR, COMMON_ENOMEM, "out of memory");
        return;
    }
    b[0] = j->sep;
    memcpy(b + 1, text, len);
    out_delta(j, b, len + 1);
    free(b);
}

static void maybe_finish(pjob_t *j) {
    if (j->closing || !j->cu_done || j->lgen || j->lgen_starting || j->qh) return;
    if (agent_pipe_batch_pending(j->bat)) return;
    if (j->length_hit)
        job_close(j, AGENT_LLM_LENGTH, 0, "done (capped: %s)",
                  j->sub_exit == CUSTOMER_EXIT_BUDGET ? "sub-task budget exhausted"
                                                      : "local max tokens");
    else
        job_close(j, AGENT_LLM_DONE, 0, "done");
}

static void l_end(void *ud, const agent_llm_result_t *res) {
    pjob_t *j = ud;
    j->lgen = NULL;
    if (j->closing) {
        job_maybe_reap(j);
        return;
    }
    switch (res->end) {
    case AGENT_LLM_DONE:
    case AGENT_LLM_LENGTH:
        if (!res->has_usage) j->usage_all = 0;
        j->pt += res->prompt_tokens;
        j->ct += res->completion_tokens;
        if (res->end == AGENT_LLM_LENGTH) j->length_hit = 1;
        j->sep_pending = 1;
        j->sep = j->batch_sep;
        pump(j);
        maybe_finish(j);
        arm_flush(j);
        break;
    default:
        job_close(j, AGENT_LLM_ERROR, res->err ? res->err : LLM_EBACKEND,
                  "local model failed on a batch: %s", res->message ? res->message : "error");
        break;
    }
}

static void pump(pjob_t *j) {
    agent_pipe_t *p = j->p;
    while (!j->closing && !j->lgen && j->qh) {
        qbatch_t *q = j->qh;
        j->qh = q->next;
        if (!j->qh) j->qt = NULL;
        j->batch_sep = q->len && q->text[q->len - 1] == '\n' ? '\n' : ' ';
        char *prompt = agent_pipe_expand(p->tmpl, q->text, q->len, p->lang, p->cfg.kind);
        free(q->text);
        free(q);
        if (!prompt) {
            job_close(j, AGENT_LLM_ERROR, COMMON_ENOMEM, "out of memory");
            return;
        }
        agent_llm_params_t lp;
        memset(&lp, 0, sizeof lp);
        lp.prompt = prompt;
        lp.system = j->system;
        lp.max_tokens = j->max_tokens;
        lp.has_temperature = j->has_temperature;
        lp.temperature = j->temperature;
        lp.has_seed = j->has_seed;
        lp.seed = j->seed;
        agent_gen_cbs_t cbs = {.on_delta = l_delta, .on_end = l_end};
        int err = 0;
        p->st.local_requests++;
        j->lgen_starting = 1;
        void *h = p->deps.local->ops->start(p->deps.local->self, &lp, &cbs, j, &err);
        j->lgen_starting = 0;
        free(prompt);
        if (!h) {
            job_close(j, AGENT_LLM_ERROR, err ? err : LLM_EBACKEND,
                      "cannot start the local model: %s", common_strerror(err));
            return;
        }
        j->lgen = h;
    }
}

static int enqueue(pjob_t *j, char *s, size_t n) {
    qbatch_t *q = calloc(1, sizeof *q);
    if (!q) {
        free(s);
        return COMMON_ENOMEM;
    }
    q->text = s;
    q->len = n;
    if (j->qt)
        j->qt->next = q;
    else
        j->qh = q;
    j->qt = q;
    j->p->st.batches++;
    LOG_DEBUG(LOGP(j->p), MOD, "job %llu: batch of %zu bytes queued", (unsigned long long)j->serial,
              n);
    return 0;
}

static void flush_cb(uv_timer_t *t) {
    pjob_t *j = t->data;
    j->flush_armed = 0;
    if (j->closing || j->reaping || j->lgen || j->qh) return;
    char *s;
    size_t n;
    int r = agent_pipe_batch_partial(j->bat, &s, &n);
    if (r == 1) {
        LOG_DEBUG(LOGP(j->p), MOD, "job %llu: slow sub-provider: partial batch of %zu bytes",
                  (unsigned long long)j->serial, n);
        r = enqueue(j, s, n);
    }
    if (r < 0) {
        job_close(j, AGENT_LLM_ERROR, r, "sub-task output: %s", common_strerror(r));
        return;
    }
    pump(j);
}

/* Arm the time-based flush when the local model is idle and text is held. */
static void arm_flush(pjob_t *j) {
    if (!j->p->cfg.flush_ms || j->flush_armed || j->closing || j->reaping || j->cu_done) return;
    if (j->lgen || j->qh || agent_pipe_batch_pending(j->bat) == 0) return;
    j->flush_armed = 1;
    uv_timer_start(&j->timer, flush_cb, j->p->cfg.flush_ms, 0);
}

static int enqueue_ready(pjob_t *j, int final) {
    char *s;
    size_t n;
    int r;
    while ((r = agent_pipe_batch_next(j->bat, final, &s, &n)) == 1)
        if ((r = enqueue(j, s, n)) < 0) return r;
    return r;
}

/* ---- the sub-customer ----------------------------------------------------------------- */

static void s_output(void *ud, const char *data, size_t len) {
    pjob_t *j = ud;
    if (j->closing) return;
    j->got_output = 1;
    j->sub_chunks++;
    j->p->st.sub_chunks++;
    j->p->st.sub_bytes += len;
    int rc = agent_pipe_batch_feed(j->bat, data, len);
    if (!rc) rc = enqueue_ready(j, 0);
    if (rc < 0) {
        job_close(j, AGENT_LLM_ERROR, rc, "sub-task output: %s", common_strerror(rc));
        return;
    }
    pump(j);
    arm_flush(j);
}

static void s_note(void *ud, const customer_note_t *n) {
    pjob_t *j = ud;
    agent_pipe_t *p = j->p;
    switch (n->kind) {
    case CUSTOMER_N_CONNECTED:
        LOG_INFO(LOGP(p), MOD, "job %llu: sub-provider %s connected", (unsigned long long)j->serial,
                 n->text ? n->text : "");
        break;
    case CUSTOMER_N_OFFER:
        LOG_INFO(LOGP(p), MOD, "job %llu: sub-offer %llu sat/chunk, %llu chunks per payment",
                 (unsigned long long)j->serial, (unsigned long long)n->a, (unsigned long long)n->b);
        break;
    case CUSTOMER_N_PAYMENT:
        LOG_DEBUG(LOGP(p), MOD, "job %llu: sub-task paid %llu/%llu sats",
                  (unsigned long long)j->serial, (unsigned long long)n->a,
                  (unsigned long long)n->b);
        break;
    case CUSTOMER_N_ERROR:
        LOG_WARN(LOGP(p), MOD, "job %llu: sub-provider error (%s): %s",
                 (unsigned long long)j->serial,
                 proto_error_code_name((proto_error_code_t)n->code)
                     ? proto_error_code_name((proto_error_code_t)n->code)
                     : "-",
                 n->text ? n->text : "");
        break;
    case CUSTOMER_N_FALLBACK:
        LOG_INFO(LOGP(p), MOD, "job %llu: sub-provider failed (%s)", (unsigned long long)j->serial,
                 n->text ? n->text : "");
        break;
    case CUSTOMER_N_DONE: j->spent = n->a; break;
    default: break;
    }
}

static const char *exit_text(int code) {
    switch (code) {
    case CUSTOMER_EXIT_OK: return "complete";
    case CUSTOMER_EXIT_NO_PROVIDER: return "no sub-provider";
    case CUSTOMER_EXIT_PRICE: return "sub-provider price above MAX_SATS_PER_CHUNK";
    case CUSTOMER_EXIT_BUDGET: return "SUB_BUDGET exhausted";
    case CUSTOMER_EXIT_PAYMENT: return "paying the sub-provider failed (wallet or mint)";
    case CUSTOMER_EXIT_PROVIDER: return "sub-provider error or disconnect";
    case CUSTOMER_EXIT_INTERRUPTED: return "stopped";
    default: return "internal error";
    }
}

static void s_done(void *ud, int code) {
    pjob_t *j = ud;
    agent_pipe_t *p = j->p;
    j->cu_done = 1;
    j->sub_exit = code;
    j->spent = customer_spent(j->cu);
    p->st.sats_paid += j->spent;
    LOG_INFO(LOGP(p), MOD, "job %llu: sub-task ended: %s (exit %d), paid %llu sats",
             (unsigned long long)j->serial, exit_text(code), code, (unsigned long long)j->spent);
    if (j->closing) {
        job_maybe_reap(j);
        return;
    }
    if (code == CUSTOMER_EXIT_OK || code == CUSTOMER_EXIT_BUDGET) {
        if (code == CUSTOMER_EXIT_BUDGET) j->length_hit = 1;
        int rc = enqueue_ready(j, 1);
        if (rc < 0) {
            job_close(j, AGENT_LLM_ERROR, rc, "sub-task output: %s", common_strerror(rc));
            return;
        }
        pump(j);
        maybe_finish(j);
        return;
    }
    job_close(j, AGENT_LLM_ERROR, LLM_EBACKEND, "sub-task (kind %u) failed: %s", p->cfg.sub_kind,
              exit_text(code));
}

/* ---- dialing (secret-stream over TCP to --sub-peer N) -------------------------------- */

typedef struct pconn {
    pjob_t *j;
    size_t attempt;
    int up;
} pconn_t;

static int tr_write(void *t, const void *data, size_t len) {
    return dht_tcp_write(t, data, len);
}
static void tr_close(void *t) {
    dht_tcp_close(t);
}
static const customer_transport_t pipe_tr = {.write = tr_write, .close = tr_close};

static void c_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    pconn_t *u = ud;
    u->up = 1;
    if (u->j->cu && !u->j->freeing)
        customer_conn_up(u->j->cu, &pipe_tr, c, pk);
    else
        dht_tcp_close(c);
}
static void c_data(dht_tcp_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    pconn_t *u = ud;
    if (u->j->cu) customer_conn_data(u->j->cu, c, data, len);
}
static void c_end(dht_tcp_conn_t *c, void *ud) {
    (void)ud;
    dht_tcp_end(c);
}
static void c_close(dht_tcp_conn_t *c, int status, void *ud) {
    pconn_t *u = ud;
    pjob_t *j = u->j;
    if (j->cu) {
        if (u->up)
            customer_conn_closed(j->cu, c, status);
        else
            customer_conn_failed(j->cu, u->attempt, status ? status : COMMON_ECONNREFUSED);
    }
    free(u);
    j->conns--;
    job_maybe_reap(j);
}

static int dial(void *self, customer_t *cu, size_t attempt) {
    pjob_t *j = self;
    agent_pipe_t *p = j->p;
    /* a retry after output began would feed the sub-task's beginning twice */
    if (j->got_output || j->closing) return COMMON_ENOTFOUND;
    if (j->swd) return j->swdl.dial(j->swdl.self, cu, attempt);
    if (attempt >= p->deps.npeers) return COMMON_ENOTFOUND;
    char host[256];
    uint16_t port;
    if (common_parse_hostport(p->deps.peers[attempt], host, sizeof host, &port))
        return COMMON_EINVAL;
    pconn_t *u = calloc(1, sizeof *u);
    if (!u) return COMMON_ENOMEM;
    u->j = j;
    u->attempt = attempt;
    dht_tcp_callbacks_t cbs = {
        .on_connect = c_connect, .on_data = c_data, .on_end = c_end, .on_close = c_close};
    int err = 0;
    if (!dht_tcp_connect(p->loop, p->env, p->deps.kp, host, port, NULL, &cbs, u, &err)) {
        free(u);
        return err ? err : COMMON_EINVAL;
    }
    j->conns++;
    LOG_INFO(LOGP(p), MOD, "job %llu: asking sub-provider %s (kind %u)",
             (unsigned long long)j->serial, p->deps.peers[attempt], p->cfg.sub_kind);
    return 0;
}

/* ---- the generator -------------------------------------------------------------------- */

static void kick_cb(uv_timer_t *t) {
    pjob_t *j = t->data;
    if (j->closing) {
        job_maybe_reap(j);
        return;
    }
    j->cu_started = 1;
    customer_start(j->cu); /* may end synchronously (no provider): s_done handles it */
}

static void *g_start(void *self, const agent_llm_params_t *params, const agent_gen_cbs_t *cbs,
                     void *ud, int *err) {
    agent_pipe_t *p = self;
    if (!params->prompt || !params->prompt[0]) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    pjob_t *j = calloc(1, sizeof *j);
    if (!j) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    j->p = p;
    j->cbs = *cbs;
    j->ud = ud;
    j->serial = ++p->serial;
    j->usage_all = 1;
    j->sep = ' ';
    j->last_ws = 1;
    j->input = strdup(params->prompt);
    j->system = params->system ? strdup(params->system) : NULL;
    j->max_tokens = params->max_tokens;
    j->has_temperature = params->has_temperature;
    j->temperature = params->temperature;
    j->has_seed = params->has_seed;
    j->seed = params->seed;
    j->bat = agent_pipe_batch_new(p->cfg.batch_chars, 0);
    int rc = (!j->input || (params->system && !j->system) || !j->bat) ? COMMON_ENOMEM : 0;
    if (!rc) {
        rc = p->deps.pay_new(p->deps.pay_ud, &j->pay);
        j->pay_ok = rc == 0;
    }
    if (!rc) {
        customer_cfg_t cc;
        memset(&cc, 0, sizeof cc);
        cc.kind = p->cfg.sub_kind;
        cc.budget = p->cfg.sub_budget;
        cc.max_sats_per_chunk = p->cfg.max_sats_per_chunk;
        cc.mint_url = p->mint;
        cc.idle_timeout_ms = p->cfg.idle_timeout_ms ? p->cfg.idle_timeout_ms : 30000;
        cc.grace_ms = p->cfg.stop_grace_ms ? p->cfg.stop_grace_ms : 1000;
        cc.input = j->input;
        cc.max_attempts = p->cfg.max_attempts ? p->cfg.max_attempts : 8;
        customer_dialer_t dl = {.dial = dial, .self = j};
        customer_sink_t sink = {.output = s_output, .note = s_note, .done = s_done, .ud = j};
        if (p->deps.npeers == 0) {
            uint8_t topic[32];
            proto_topic(p->cfg.sub_kind, topic);
            dht_swarm_opts_t net;
            agent_swarm_net_opts(p->deps.swarm, &net);
            j->swd = customer_swarm_new(p->loop, p->env, p->deps.kp, &net, topic, NULL,
                                        p->deps.discover_ms ? p->deps.discover_ms : 30000, &rc);
            if (j->swd)
                customer_swarm_dialer(j->swd, &j->swdl);
            else if (!rc)
                rc = COMMON_ENOMEM;
        }
        if (!rc) j->cu = customer_new(p->loop, p->env, &cc, &j->pay, &dl, &sink, &rc);
    }
    if (rc || !j->cu) {
        if (j->pay_ok) {
            j->pay.ops->close(j->pay.self);
            p->deps.pay_free(p->deps.pay_ud, &j->pay);
        }
        if (j->swd) customer_swarm_close(j->swd, NULL, NULL);
        agent_pipe_batch_free(j->bat);
        free(j->input);
        free(j->system);
        free(j);
        *err = rc ? rc : COMMON_ENOMEM;
        return NULL;
    }
    uv_timer_init(p->loop, &j->timer);
    j->timer.data = j;
    j->next = p->jobs;
    if (p->jobs) p->jobs->prev = j;
    p->jobs = j;
    p->njobs++;
    p->st.jobs++;
    /* the sub-customer starts on the next loop turn: no callback from inside start() */
    uv_timer_start(&j->timer, kick_cb, 0, 0);
    LOG_INFO(LOGP(p), MOD,
             "job %llu: pipeline %u -> %u, sub-budget %llu sats, batches of %zu chars",
             (unsigned long long)j->serial, p->cfg.sub_kind, p->cfg.kind,
             (unsigned long long)p->cfg.sub_budget, p->cfg.batch_chars);
    return j;
}

static void g_cancel(void *self, void *handle) {
    (void)self;
    pjob_t *j = handle;
    if (j->ended) return;
    job_close(j, AGENT_LLM_STOPPED, COMMON_ECANCELED, "stopped");
}

static const agent_gen_ops_t pipe_ops = {.start = g_start, .cancel = g_cancel};

void agent_pipe_gen(agent_pipe_t *p, agent_gen_t *out) {
    out->ops = &pipe_ops;
    out->self = p;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

agent_pipe_t *agent_pipe_new(uv_loop_t *loop, const common_env_t *env, const agent_pipe_cfg_t *cfg,
                             const agent_pipe_deps_t *deps, int *err) {
    if (!loop || !env || !cfg || !deps || !deps->local || !deps->pay_new || !deps->pay_busy ||
        !deps->pay_free || !deps->kp || (deps->npeers == 0 && !deps->swarm) || !cfg->mint_url ||
        cfg->batch_chars == 0 ||
        (cfg->prompt_template && strlen(cfg->prompt_template) > AGENT_PIPE_MAX_TEMPLATE)) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    agent_pipe_t *p = calloc(1, sizeof *p);
    if (!p) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    p->loop = loop;
    p->env = env;
    p->cfg = *cfg;
    p->deps = *deps;
    p->tmpl = strdup(cfg->prompt_template ? cfg->prompt_template
                                          : agent_pipe_default_template(cfg->kind));
    p->lang = strdup(cfg->target_lang ? cfg->target_lang : "English");
    p->mint = strdup(cfg->mint_url);
    if (!p->tmpl || !p->lang || !p->mint) {
        agent_pipe_free(p);
        *err = COMMON_ENOMEM;
        return NULL;
    }
    p->cfg.prompt_template = p->tmpl;
    p->cfg.target_lang = p->lang;
    p->cfg.mint_url = p->mint;
    return p;
}

size_t agent_pipe_busy(const agent_pipe_t *p) {
    return p->njobs;
}

void agent_pipe_free(agent_pipe_t *p) {
    if (!p) return;
    free(p->tmpl);
    free(p->lang);
    free(p->mint);
    free(p);
}

void agent_pipe_get_stats(const agent_pipe_t *p, agent_pipe_stats_t *out) {
    *out = p->st;
}
