/* SPDX-License-Identifier: MIT */
#include "agent/agent_server.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_log.h"
#include "protocol/proto_conn.h"
#include "protocol/proto_ndjson.h"

#define MOD "agent"

typedef struct agent_job agent_job_t;

struct agent_conn {
    agent_server_t *s;
    const agent_transport_t *tr;
    void *t;
    int closed;  /* transport gone: never touch tr/t again */
    int closing; /* we asked the transport to close */
    int busy;    /* inside conn_closed: do not free yet */
    proto_ndjson_t *fr;
    agent_job_t *jobs[AGENT_MAX_JOBS_PER_CONN];
    size_t njobs;
    char peer[17]; /* remote key prefix, for logs and the ledger */
    agent_conn_t *prev, *next;
};

struct agent_job {
    agent_server_t *s;
    agent_conn_t *conn; /* NULL once the job is done */
    char id[PROTO_ID_MAX + 1];
    proto_provider_t *core;
    int64_t row;
    /* the request, for LLM_START */
    char *input, *system, *model;
    int has_max_tokens, has_temperature, has_seed;
    uint64_t max_tokens, seed;
    double temperature;
    /* generation */
    void *gen;    /* live generation handle, NULL when none */
    int aborting; /* we cancelled it: ignore its end */
    /* lifecycle */
    int in_drain, done, freeing;
    unsigned pending_verifies;
    uv_timer_t timer;
    agent_job_t *prev, *next;
};

struct agent_server {
    uv_loop_t *loop;
    const common_env_t *env;
    agent_server_cfg_t cfg;
    agent_gen_t *gen;
    agent_pay_t *pay;
    agent_ledger_t *ledger;
    proto_capacity_t cap;
    agent_conn_t *conns;
    agent_job_t *jobs;
    uint64_t nconns, njobs;
    int shutting;
    void (*on_idle)(void *);
    void *idle_ud;
    agent_server_stats_t st;
};

static const common_log_t *LOGP(const agent_server_t *s) {
    return s->env ? s->env->log : NULL;
}

/* ---- sending -------------------------------------------------------------------------- */

static void conn_send(agent_conn_t *c, const void *data, size_t len) {
    if (!c || c->closed || c->closing || !len) return;
    int rc = c->tr->write(c->t, data, len);
    if (rc < 0) {
        LOG_DEBUG(LOGP(c->s), MOD, "peer %s: write failed: %s", c->peer, common_strerror(rc));
        c->closing = 1; /* the transport is failing; conn_closed will follow */
    }
}

static void conn_send_error(agent_conn_t *c, const char *id, proto_error_code_t code,
                            const char *msg) {
    common_buf_t b = {0};
    if (!proto_encode_error(&b, id && id[0] ? id : "unknown", code, msg))
        conn_send(c, b.data, b.len);
    common_buf_free(&b);
}

static void conn_close(agent_conn_t *c) {
    if (c->closed || c->closing) return;
    c->closing = 1;
    c->tr->close(c->t);
}

/* ---- job lifecycle -------------------------------------------------------------------- */

static void job_drain(agent_job_t *j);

static void conn_maybe_free(agent_conn_t *c) {
    if (!c->closed || c->njobs || c->busy) return;
    agent_server_t *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    proto_ndjson_free(c->fr);
    free(c);
}

static void conn_remove_job(agent_conn_t *c, agent_job_t *j) {
    for (size_t i = 0; i < c->njobs; i++) {
        if (c->jobs[i] == j) {
            c->jobs[i] = c->jobs[--c->njobs];
            break;
        }
    }
}

static void job_free_cb(uv_handle_t *h) {
    agent_job_t *j = h->data;
    free(j);
}

static void check_idle(agent_server_t *s) {
    if (s->shutting && s->njobs == 0 && s->on_idle) {
        void (*cb)(void *) = s->on_idle;
        s->on_idle = NULL;
        cb(s->idle_ud);
    }
}

/* Free a finished job once nothing can call back into it any more. */
static void job_maybe_free(agent_job_t *j) {
    if (!j->done || j->gen || j->pending_verifies || j->in_drain || j->freeing) return;
    agent_server_t *s = j->s;
    j->freeing = 1;
    if (j->prev)
        j->prev->next = j->next;
    else
        s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    s->njobs--;
    proto_provider_free(j->core);
    j->core = NULL;
    free(j->input);
    free(j->system);
    free(j->model);
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, job_free_cb);
    check_idle(s);
}

static void job_timer_cb(uv_timer_t *t) {
    agent_job_t *j = t->data;
    if (j->done) return;
    proto_provider_tick(j->core);
    job_drain(j);
}

static void job_rearm(agent_job_t *j) {
    if (j->done) {
        uv_timer_stop(&j->timer);
        return;
    }
    uint64_t d = proto_provider_deadline(j->core);
    if (d == UINT64_MAX) {
        uv_timer_stop(&j->timer);
        return;
    }
    uint64_t now = common_now_ms(j->s->env);
    uv_timer_start(&j->timer, job_timer_cb, d > now ? d - now : 0, 0);
}

/* ---- generation ----------------------------------------------------------------------- */

static void gen_on_delta(void *ud, const char *text, size_t len) {
    agent_job_t *j = ud;
    if (j->aborting || j->done) return;
    proto_provider_llm_delta(j->core, text, len);
    job_drain(j);
}

static void gen_on_end(void *ud, const agent_llm_result_t *res) {
    agent_job_t *j = ud;
    j->gen = NULL;
    if (!j->aborting && !j->done) {
        switch (res->end) {
        case AGENT_LLM_DONE:
            proto_provider_llm_done(j->core, res->has_usage, res->prompt_tokens,
                                    res->completion_tokens, 0);
            break;
        case AGENT_LLM_LENGTH:
            proto_provider_llm_done(j->core, res->has_usage, res->prompt_tokens,
                                    res->completion_tokens, 1);
            break;
        default:
            LOG_WARN(LOGP(j->s), MOD, "job %s: generation ended: %s (%s)", j->id,
                     agent_llm_end_name(res->end), res->message);
            proto_provider_llm_error(j->core,
                                     res->message && res->message[0] ? res->message : "LLM error");
            break;
        }
        job_drain(j);
    }
    job_maybe_free(j);
}

static void job_llm_start(agent_job_t *j) {
    agent_server_t *s = j->s;
    agent_llm_params_t p;
    memset(&p, 0, sizeof p);
    p.prompt = j->input;
    p.system = j->system;
    p.max_tokens = j->has_max_tokens ? j->max_tokens : 0;
    p.has_temperature = j->has_temperature;
    p.temperature = j->temperature;
    p.has_seed = j->has_seed;
    p.seed = (int64_t)(j->seed > INT64_MAX ? INT64_MAX : j->seed);
    agent_gen_cbs_t cbs = {.on_delta = gen_on_delta, .on_end = gen_on_end};
    int err = 0;
    s->st.llm_started++;
    j->gen = s->gen->ops->start(s->gen->self, &p, &cbs, j, &err);
    if (!j->gen) {
        LOG_ERROR(LOGP(s), MOD, "job %s: cannot start generation: %s", j->id, common_strerror(err));
        proto_provider_llm_error(j->core, "cannot start generation");
    }
}

static void job_llm_abort(agent_job_t *j) {
    if (!j->gen || j->aborting) return;
    j->aborting = 1;
    j->s->st.llm_aborted++;
    j->s->gen->ops->cancel(j->s->gen->self, j->gen); /* on_end(STOPPED) clears j->gen */
}

/* ---- payments ------------------------------------------------------------------------- */

typedef struct verify_ctx {
    agent_job_t *job;
    uint64_t ticket;
} verify_ctx_t;

static void on_verdict(void *ud, int rc, uint64_t amount, int locked, const char *message) {
    verify_ctx_t *v = ud;
    agent_job_t *j = v->job;
    uint64_t ticket = v->ticket;
    free(v);
    j->pending_verifies--;
    if (!j->done) {
        if (rc == 0) {
            proto_provider_payment_verified(j->core, ticket, amount, locked);
        } else {
            j->s->st.payments_refused++;
            LOG_INFO(LOGP(j->s), MOD, "job %s: payment refused: %s (%s)", j->id,
                     common_strerror(rc), message ? message : "");
            proto_provider_payment_rejected(j->core, ticket, agent_pay_error_code(rc),
                                            message && message[0] ? message : common_strerror(rc));
        }
        job_drain(j);
    }
    job_maybe_free(j);
}

static void job_verify(agent_job_t *j, uint64_t ticket, const char *token) {
    agent_server_t *s = j->s;
    agent_pay_policy_t pol = {
        .mints = s->cfg.job.mints,
        .n_mints = s->cfg.job.n_mints,
        .lock_pubkey = s->cfg.job.pubkey,
        .min_locktime_s = s->cfg.job.min_locktime_s,
        .unlocked = s->cfg.unlocked,
    };
    verify_ctx_t *v = calloc(1, sizeof *v);
    int rc = COMMON_ENOMEM;
    if (v) {
        v->job = j;
        v->ticket = ticket;
        j->pending_verifies++;
        rc = s->pay->ops->verify(s->pay->self, token, &pol, on_verdict, v);
        if (rc) {
            j->pending_verifies--;
            free(v);
        }
    }
    if (rc)
        proto_provider_payment_rejected(j->core, ticket, PROTO_CODE_INTERNAL,
                                        "payment verification unavailable");
}

/* ---- events --------------------------------------------------------------------------- */

static void job_handle(agent_job_t *j, const proto_event_t *ev) {
    agent_server_t *s = j->s;
    switch (ev->kind) {
    case PROTO_EV_SEND: conn_send(j->conn, ev->data, ev->len); break;
    case PROTO_EV_VERIFY_TOKEN: job_verify(j, ev->a, ev->data); break;
    case PROTO_EV_PERSIST_TOKEN: {
        int rc = s->pay->ops->persist(s->pay->self, j->row, ev->data, ev->a, (int)ev->b);
        if (rc)
            LOG_ERROR(LOGP(s), MOD, "job %s: cannot persist a received token (%llu sats): %s",
                      j->id, (unsigned long long)ev->a, common_strerror(rc));
        if (s->ledger) agent_ledger_job_paid(s->ledger, j->row, ev->a);
        s->st.sats_verified += ev->a;
        break;
    }
    case PROTO_EV_LLM_START: job_llm_start(j); break;
    case PROTO_EV_LLM_ABORT: job_llm_abort(j); break;
    case PROTO_EV_LLM_PAUSE:
    case PROTO_EV_LLM_RESUME:
        /* the HTTP stream cannot be paused; the core caps the buffer (reason "length") */
        LOG_DEBUG(LOGP(s), MOD, "job %s: %s", j->id, proto_event_name(ev->kind));
        break;
    case PROTO_EV_RELEASE_SLOT:
        if (proto_capacity_release(&s->cap))
            LOG_ERROR(LOGP(s), MOD, "job %s: slot released twice (bug)", j->id);
        break;
    case PROTO_EV_CLAIM:
        s->st.claims++;
        if (s->pay->ops->claim(s->pay->self, j->row))
            LOG_WARN(LOGP(s), MOD, "job %s: claim could not start; it is retried later", j->id);
        break;
    case PROTO_EV_DONE: {
        proto_provider_stats_t ps;
        proto_provider_get_stats(j->core, &ps);
        const char *reason = proto_reason_name((proto_reason_t)ev->code);
        if (!reason) reason = "disconnect";
        s->st.chunks_sent += ps.chunks_sent;
        if (s->ledger) {
            agent_ledger_job_chunks(s->ledger, j->row, ps.chunks_sent);
            agent_ledger_job_end(s->ledger, j->row, reason);
        }
        LOG_INFO(LOGP(s), MOD, "job %s (peer %s): %s, %llu chunks, %llu sats", j->id,
                 j->conn ? j->conn->peer : "?", reason, (unsigned long long)ps.chunks_sent,
                 (unsigned long long)ps.verified_sats);
        j->done = 1;
        if (j->gen) job_llm_abort(j); /* cannot happen by the core's contract; be safe */
        if (j->conn) {
            agent_conn_t *c = j->conn;
            conn_remove_job(c, j);
            j->conn = NULL;
            conn_maybe_free(c);
        }
        break;
    }
    default: break;
    }
}

static void job_drain(agent_job_t *j) {
    if (j->in_drain || !j->core) return;
    j->in_drain = 1;
    proto_event_t ev;
    while (!j->done && proto_provider_next_event(j->core, &ev) == 1) job_handle(j, &ev);
    j->in_drain = 0;
    job_rearm(j);
    job_maybe_free(j);
}

/* ---- requests ------------------------------------------------------------------------- */

static agent_job_t *conn_find(agent_conn_t *c, const char *id) {
    for (size_t i = 0; i < c->njobs; i++)
        if (!strcmp(c->jobs[i]->id, id)) return c->jobs[i];
    return NULL;
}

static char *dup_opt(const char *s, int *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

static void on_request(agent_conn_t *c, const proto_msg_t *m) {
    agent_server_t *s = c->s;
    char why[160];
    if (s->shutting) {
        conn_send_error(c, m->id, PROTO_CODE_CAPACITY, "Agent shutting down");
        return;
    }
    if (proto_provider_check_request(&s->cfg.job, m, why, sizeof why)) {
        conn_send_error(c, m->id, PROTO_CODE_BAD_REQUEST, why);
        return;
    }
    if (conn_find(c, m->id)) {
        conn_send_error(c, m->id, PROTO_CODE_BAD_REQUEST,
                        "job id already in use on this connection");
        return;
    }
    if (c->njobs >= AGENT_MAX_JOBS_PER_CONN) {
        conn_send_error(c, m->id, PROTO_CODE_CAPACITY, "Too many jobs on this connection");
        return;
    }
    if (proto_capacity_acquire(&s->cap)) {
        snprintf(why, sizeof why, "No capacity (%u/%u slots used)", s->cap.active, s->cap.max);
        s->st.jobs_refused_capacity++;
        conn_send_error(c, m->id, PROTO_CODE_CAPACITY, why);
        return;
    }
    agent_job_t *j = calloc(1, sizeof *j);
    int oom = !j, err = 0;
    if (j) {
        j->s = s;
        snprintf(j->id, sizeof j->id, "%s", m->id);
        j->input = dup_opt(m->request.input, &oom);
        if (m->request.has_params) {
            const proto_params_t *pp = &m->request.params;
            j->system = dup_opt(pp->system, &oom);
            j->model = dup_opt(pp->model, &oom);
            j->has_max_tokens = pp->has_max_tokens;
            j->max_tokens = pp->max_tokens;
            j->has_temperature = pp->has_temperature;
            j->temperature = pp->temperature;
            j->has_seed = pp->has_seed;
            j->seed = pp->seed;
        }
    }
    if (!oom && s->ledger &&
        agent_ledger_job_start(s->ledger, m->id, c->peer, (uint32_t)s->cfg.job.kind,
                               s->cfg.job.sats_per_chunk, s->cfg.job.chunks_per_payment, &j->row))
        LOG_WARN(LOGP(s), MOD, "job %s: ledger write failed", m->id);
    if (!oom) j->core = proto_provider_new(&s->cfg.job, s->env, m->id, &err);
    if (oom || !j->core) {
        proto_capacity_release(&s->cap);
        if (j) {
            free(j->input);
            free(j->system);
            free(j->model);
            free(j);
        }
        conn_send_error(c, m->id, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    uv_timer_init(s->loop, &j->timer);
    j->timer.data = j;
    j->conn = c;
    c->jobs[c->njobs++] = j;
    j->next = s->jobs;
    if (s->jobs) s->jobs->prev = j;
    s->jobs = j;
    s->njobs++;
    s->st.jobs_total++;
    LOG_INFO(LOGP(s), MOD, "job %s from peer %s: offer sent (%u/%u slots)", j->id, c->peer,
             s->cap.active, s->cap.max);
    job_drain(j);
}

static void on_skill_request(agent_conn_t *c, const proto_msg_t *m) {
    agent_server_t *s = c->s;
    proto_msg_t r;
    memset(&r, 0, sizeof r);
    r.type = PROTO_MSG_SKILL_RESPONSE;
    memcpy(r.id, m->id, sizeof r.id);
    proto_skill_t *k = &r.skill_response.skill;
    if (m->skill_request.kind == s->cfg.job.kind) {
        k->present = 1;
        k->has_kind = 1;
        k->kind = s->cfg.job.kind;
        k->model = (char *)s->cfg.model;
        k->has_pricing = 1;
        k->sats_per_chunk = s->cfg.job.sats_per_chunk;
        k->chunks_per_payment = s->cfg.job.chunks_per_payment;
        k->unit = "sat";
        k->mints.has = 1;
        for (size_t i = 0; i < s->cfg.job.n_mints && i < PROTO_MAX_MINTS; i++)
            k->mints.url[k->mints.n++] = (char *)s->cfg.job.mints[i];
        if (s->cfg.job.pubkey) {
            k->has_pubkey = 1;
            memcpy(k->pubkey, s->cfg.job.pubkey, PROTO_PUBKEY_LEN);
        }
        k->has_capacity = 1;
        k->cap_active = s->cap.active;
        k->cap_max = s->cap.max;
        k->version = (char *)s->cfg.version;
    }
    common_buf_t b = {0};
    if (!proto_msg_encode(&r, &b)) conn_send(c, b.data, b.len);
    common_buf_free(&b);
}

static void dispatch(agent_conn_t *c, const proto_msg_t *m) {
    agent_job_t *j;
    switch (m->type) {
    case PROTO_MSG_REQUEST: on_request(c, m); break;
    case PROTO_MSG_SKILL_REQUEST: on_skill_request(c, m); break;
    case PROTO_MSG_PAYMENT:
    case PROTO_MSG_STOP:
        j = conn_find(c, m->id);
        if (!j) {
            if (m->type == PROTO_MSG_PAYMENT)
                conn_send_error(c, m->id, PROTO_CODE_BAD_REQUEST, "no such job on this connection");
            return;
        }
        proto_provider_on_msg(j->core, m);
        job_drain(j);
        break;
    default: break; /* provider-bound types only; others ignored */
    }
}

/* ---- connections ---------------------------------------------------------------------- */

agent_conn_t *agent_server_conn_open(agent_server_t *s, const agent_transport_t *tr, void *t,
                                     const uint8_t remote_pk[32]) {
    if (s->shutting || s->nconns >= AGENT_MAX_CONNS) return NULL;
    agent_conn_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int err = 0;
    c->fr = proto_ndjson_new(s->cfg.max_line ? s->cfg.max_line : PROTO_MAX_LINE, &err);
    if (!c->fr) {
        free(c);
        return NULL;
    }
    c->s = s;
    c->tr = tr;
    c->t = t;
    if (remote_pk)
        common_hex_encode(remote_pk, 8, c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    LOG_DEBUG(LOGP(s), MOD, "peer %s connected", c->peer);
    return c;
}

void agent_server_conn_data(agent_conn_t *c, const uint8_t *data, size_t len) {
    if (c->closed || c->closing) return;
    if (proto_ndjson_feed(c->fr, data, len)) {
        conn_close(c);
        return;
    }
    common_buf_t reply = {0};
    for (;;) {
        proto_msg_t m;
        reply.len = 0;
        int act = proto_conn_next(c->fr, &m, &reply);
        if (act == PROTO_LINE_NONE) break;
        if (act < 0) {
            conn_close(c);
            break;
        }
        if (reply.len) conn_send(c, reply.data, reply.len);
        if (act == PROTO_LINE_CLOSE) {
            LOG_INFO(LOGP(c->s), MOD, "peer %s: protocol violation, closing", c->peer);
            conn_close(c);
            break;
        }
        if (act == PROTO_LINE_MSG) {
            dispatch(c, &m);
            if (m.type == PROTO_MSG_PAYMENT && m.payment.token)
                sodium_memzero(m.payment.token, strlen(m.payment.token));
            proto_msg_free(&m);
        }
        if (c->closed || c->closing) break;
    }
    common_buf_free(&reply);
}

void agent_server_conn_closed(agent_conn_t *c) {
    agent_server_t *s = c->s;
    c->closed = 1;
    LOG_DEBUG(LOGP(s), MOD, "peer %s disconnected (%zu jobs)", c->peer, c->njobs);
    agent_job_t *copy[AGENT_MAX_JOBS_PER_CONN];
    size_t n = c->njobs;
    memcpy(copy, c->jobs, n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        copy[i]->in_drain++; /* keep it alive while we call in */
        proto_provider_disconnect(copy[i]->core);
        copy[i]->in_drain--;
    }
    c->busy = 1;
    for (size_t i = 0; i < n; i++) job_drain(copy[i]); /* DONE removes it from c */
    c->busy = 0;
    conn_maybe_free(c);
}

/* ---- server --------------------------------------------------------------------------- */

agent_server_t *agent_server_new(uv_loop_t *loop, const common_env_t *env,
                                 const agent_server_cfg_t *cfg, agent_gen_t *gen, agent_pay_t *pay,
                                 agent_ledger_t *ledger, int *err) {
    if (!loop || !env || !cfg || !gen || !pay || cfg->max_jobs == 0 ||
        cfg->job.sats_per_chunk == 0 || cfg->job.chunks_per_payment == 0) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    agent_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->env = env;
    s->cfg = *cfg;
    s->gen = gen;
    s->pay = pay;
    s->ledger = ledger;
    proto_capacity_init(&s->cap, cfg->max_jobs);
    return s;
}

void agent_server_free(agent_server_t *s) {
    if (!s) return;
    /* jobs still here: the loop is going away; drop them without callbacks */
    while (s->jobs) {
        agent_job_t *j = s->jobs;
        s->jobs = j->next;
        if (j->gen && !j->aborting) {
            j->aborting = 1;
            s->gen->ops->cancel(s->gen->self, j->gen);
        }
        proto_provider_free(j->core);
        free(j->input);
        free(j->system);
        free(j->model);
        uv_timer_stop(&j->timer);
        uv_close((uv_handle_t *)&j->timer, job_free_cb);
    }
    while (s->conns) {
        agent_conn_t *c = s->conns;
        s->conns = c->next;
        proto_ndjson_free(c->fr);
        free(c);
    }
    free(s);
}

void agent_server_shutdown(agent_server_t *s, void (*on_idle)(void *ud), void *ud) {
    s->shutting = 1;
    s->on_idle = on_idle;
    s->idle_ud = ud;
    /* stop every job as if its customer had sent `stop` (partial result, claim, slot) */
    size_t n = 0;
    for (agent_job_t *j = s->jobs; j; j = j->next) n++;
    agent_job_t **all = n ? calloc(n, sizeof *all) : NULL;
    size_t k = 0;
    for (agent_job_t *j = s->jobs; j && all; j = j->next) {
        all[k++] = j;
        j->in_drain++;
    }
    for (size_t i = 0; i < k; i++) {
        agent_job_t *j = all[i];
        if (!j->done) {
            proto_msg_t stop;
            memset(&stop, 0, sizeof stop);
            stop.type = PROTO_MSG_STOP;
            memcpy(stop.id, j->id, sizeof stop.id);
            proto_provider_on_msg(j->core, &stop);
        }
    }
    for (size_t i = 0; i < k; i++) {
        all[i]->in_drain--;
        job_drain(all[i]);
    }
    free(all);
    check_idle(s);
}

void agent_server_close_all(agent_server_t *s) {
    for (agent_conn_t *c = s->conns; c; c = c->next) conn_close(c);
}

void agent_server_get_stats(const agent_server_t *s, agent_server_stats_t *out) {
    *out = s->st;
    out->conns = s->nconns;
    out->jobs_active = s->njobs;
    out->capacity = s->cap;
}
