/* SPDX-License-Identifier: MIT */
#include "customer/customer_run.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_log.h"
#include "protocol/proto_conn.h"
#include "protocol/proto_ndjson.h"

#define MOD "customer"

struct customer {
    uv_loop_t *loop;
    const common_env_t *env;
    customer_cfg_t cfg;
    customer_pay_t *pay;
    customer_dialer_t dialer;
    customer_sink_t sink;
    uv_timer_t timer;

    size_t attempt;
    int dialing; /* waiting for conn_up of the current attempt */
    const customer_transport_t *tr;
    void *t; /* current transport handle (NULL: none) */
    proto_ndjson_t *fr;
    proto_customer_t *core;
    uint64_t prep_gen; /* identifies the PREPARE_TOKENS of the current core */
    int in_drain;
    int want_fallback;
    proto_outcome_t last_outcome;
    int got_offer_ever, connected_ever;
    int user_stop, finished;
    uint64_t spent, chunks;
    char job_id[17];
    char peer[17];
};

static const common_log_t *LOGP(const customer_t *cu) {
    return cu->env ? cu->env->log : NULL;
}

static void note(customer_t *cu, customer_note_kind_t k, int code, uint64_t a, uint64_t b,
                 const char *text) {
    if (!cu->sink.note) return;
    customer_note_t n = {.kind = k, .code = code, .a = a, .b = b, .text = text};
    cu->sink.note(cu->sink.ud, &n);
}

static void finish(customer_t *cu, int exit_code, const char *why) {
    if (cu->finished) return;
    cu->finished = 1;
    uv_timer_stop(&cu->timer);
    if (cu->t) {
        cu->tr->close(cu->t);
        cu->t = NULL;
    }
    note(cu, CUSTOMER_N_DONE, exit_code, cu->spent, cu->chunks, why);
    if (cu->sink.done) cu->sink.done(cu->sink.ud, exit_code);
}

static int exit_for(customer_t *cu, proto_outcome_t o) {
    switch (o) {
    case PROTO_OUT_COMPLETE: return CUSTOMER_EXIT_OK;
    case PROTO_OUT_BUDGET: return CUSTOMER_EXIT_BUDGET;
    case PROTO_OUT_STOPPED: return cu->user_stop ? CUSTOMER_EXIT_INTERRUPTED : CUSTOMER_EXIT_OK;
    case PROTO_OUT_PRICE: return CUSTOMER_EXIT_PRICE;
    case PROTO_OUT_MINT: return CUSTOMER_EXIT_NO_PROVIDER;
    case PROTO_OUT_PAYMENT_FAILED: return CUSTOMER_EXIT_PAYMENT;
    case PROTO_OUT_PROVIDER_ERROR:
        return cu->got_offer_ever ? CUSTOMER_EXIT_PROVIDER : CUSTOMER_EXIT_NO_PROVIDER;
    case PROTO_OUT_DISCONNECTED:
    case PROTO_OUT_TIMEOUT:
        return cu->connected_ever ? CUSTOMER_EXIT_PROVIDER : CUSTOMER_EXIT_NO_PROVIDER;
    default: return cu->connected_ever ? CUSTOMER_EXIT_PROVIDER : CUSTOMER_EXIT_NO_PROVIDER;
    }
}

static void next_attempt(customer_t *cu);
static void drain(customer_t *cu);

static void timer_cb(uv_timer_t *t) {
    customer_t *cu = t->data;
    if (cu->core) {
        proto_customer_tick(cu->core);
        drain(cu);
    }
}

static void rearm(customer_t *cu) {
    if (!cu->core || cu->finished) {
        uv_timer_stop(&cu->timer);
        return;
    }
    uint64_t d = proto_customer_deadline(cu->core);
    if (d == UINT64_MAX) {
        uv_timer_stop(&cu->timer);
        return;
    }
    uint64_t now = common_now_ms(cu->env);
    uv_timer_start(&cu->timer, timer_cb, d > now ? d - now : 0, 0);
}

/* ---- payments ------------------------------------------------------------------------- */

typedef struct prep_ctx {
    customer_t *cu;
    uint64_t gen;
} prep_ctx_t;

static void on_tokens(void *ud, int rc, const char *const *tokens, size_t n) {
    prep_ctx_t *p = ud;
    customer_t *cu = p->cu;
    uint64_t gen = p->gen;
    free(p);
    if (!cu->core || gen != cu->prep_gen) return; /* that attempt is over */
    if (rc == 0 && n > 0) {
        note(cu, CUSTOMER_N_TOKENS, 0, n, proto_customer_offer(cu->core)->cycle_sats, NULL);
        proto_customer_tokens(cu->core, tokens, n);
    } else {
        LOG_ERROR(LOGP(cu), MOD, "cannot prepare the payment: %s",
                  common_strerror(rc ? rc : CASHU_EFUNDS));
        note(cu, CUSTOMER_N_ERROR, PROTO_CODE_INTERNAL, 0, 0,
             common_strerror(rc ? rc : CASHU_EFUNDS));
        proto_customer_tokens_failed(cu->core);
    }
    drain(cu);
}

static void prepare(customer_t *cu, uint64_t count, uint64_t each) {
    const proto_customer_offer_t *o = proto_customer_offer(cu->core);
    note(cu, CUSTOMER_N_OFFER, o->has_pubkey, o->sats_per_chunk, o->chunks_per_payment, NULL);
    cu->got_offer_ever = 1;
    uint64_t lock = cu->cfg.lock_seconds ? cu->cfg.lock_seconds : 3600;
    if (lock < o->min_locktime_s + 60) lock = o->min_locktime_s + 60;
    uint64_t locktime = common_unix_ms(cu->env) / 1000 + lock;
    prep_ctx_t *p = calloc(1, sizeof *p);
    int rc = COMMON_ENOMEM;
    if (p) {
        p->cu = cu;
        p->gen = ++cu->prep_gen;
        rc = cu->pay->ops->prepare(cu->pay->self, count, each, o->has_pubkey ? o->pubkey : NULL,
                                   locktime, on_tokens, p);
        if (rc) free(p);
    }
    if (rc) {
        note(cu, CUSTOMER_N_ERROR, PROTO_CODE_INTERNAL, 0, 0, common_strerror(rc));
        proto_customer_tokens_failed(cu->core);
    }
}

/* ---- the job core --------------------------------------------------------------------- */

static void send_line(customer_t *cu, const void *data, size_t len) {
    if (!cu->t) return;
    int rc = cu->tr->write(cu->t, data, len);
    if (rc < 0) LOG_DEBUG(LOGP(cu), MOD, "write failed: %s", common_strerror(rc));
}

static void end_attempt(customer_t *cu) {
    proto_customer_free(cu->core);
    cu->core = NULL;
    cu->pay->ops->release(cu->pay->self);
    if (cu->t) {
        void *t = cu->t;
        cu->t = NULL;
        cu->tr->close(t);
    }
    proto_ndjson_free(cu->fr);
    cu->fr = NULL;
    uv_timer_stop(&cu->timer);
    if (cu->want_fallback && !cu->user_stop && cu->spent < cu->cfg.budget) {
        cu->want_fallback = 0;
        note(cu, CUSTOMER_N_FALLBACK, cu->last_outcome, 0, 0, proto_outcome_name(cu->last_outcome));
        next_attempt(cu);
        return;
    }
    finish(cu, exit_for(cu, cu->last_outcome), proto_outcome_name(cu->last_outcome));
}

static void handle(customer_t *cu, const proto_event_t *ev, int *done) {
    switch (ev->kind) {
    case PROTO_EV_SEND: send_line(cu, ev->data, ev->len); break;
    case PROTO_EV_PREPARE_TOKENS: prepare(cu, ev->a, ev->b); break;
    case PROTO_EV_TOKEN_SENT:
        cu->pay->ops->mark_sent(cu->pay->self, ev->a);
        note(cu, CUSTOMER_N_PAYMENT, 0, cu->spent + (ev->a + 1) * ev->b, cu->cfg.budget, NULL);
        break;
    case PROTO_EV_OUTPUT:
        if (cu->sink.output) cu->sink.output(cu->sink.ud, ev->data, ev->len);
        break;
    case PROTO_EV_ACK: note(cu, CUSTOMER_N_ACK, 0, ev->a, ev->b, NULL); break;
    case PROTO_EV_PROVIDER_ERROR: note(cu, CUSTOMER_N_ERROR, ev->code, 0, 0, ev->data); break;
    case PROTO_EV_RESULT: note(cu, CUSTOMER_N_RESULT, ev->code, ev->a, ev->b, NULL); break;
    case PROTO_EV_FALLBACK: cu->want_fallback = 1; break;
    case PROTO_EV_DONE:
        cu->last_outcome = (proto_outcome_t)ev->code;
        cu->spent += ev->a;
        cu->chunks += ev->b;
        *done = 1;
        break;
    default: break;
    }
}

static void drain(customer_t *cu) {
    if (cu->in_drain || !cu->core) return;
    cu->in_drain = 1;
    proto_event_t ev;
    int done = 0;
    while (!done && proto_customer_next_event(cu->core, &ev) == 1) handle(cu, &ev, &done);
    cu->in_drain = 0;
    if (done)
        end_attempt(cu);
    else
        rearm(cu);
}

/* ---- connections ---------------------------------------------------------------------- */

static void next_attempt(customer_t *cu) {
    size_t max = cu->cfg.max_attempts ? cu->cfg.max_attempts : 8;
    if (cu->attempt >= max) {
        finish(cu, exit_for(cu, cu->last_outcome), "no more providers");
        return;
    }
    size_t a = cu->attempt++;
    cu->dialing = 1;
    int rc = cu->dialer.dial(cu->dialer.self, cu, a);
    if (rc) {
        cu->dialing = 0;
        if (a == 0)
            finish(cu, CUSTOMER_EXIT_NO_PROVIDER, "no provider");
        else
            finish(cu, exit_for(cu, cu->last_outcome), "no more providers");
    }
}

void customer_conn_up(customer_t *cu, const customer_transport_t *tr, void *t,
                      const uint8_t remote_pk[32]) {
    if (cu->finished || !cu->dialing || cu->core) {
        tr->close(t);
        return;
    }
    cu->dialing = 0;
    cu->tr = tr;
    cu->t = t;
    cu->connected_ever = 1;
    if (remote_pk) common_hex_encode(remote_pk, 8, cu->peer);
    note(cu, CUSTOMER_N_CONNECTED, 0, 0, 0, cu->peer);
    int err = 0;
    cu->fr = proto_ndjson_new(cu->cfg.max_line ? cu->cfg.max_line : PROTO_MAX_LINE, &err);
    uint8_t rnd[8];
    common_random(cu->env, rnd, sizeof rnd);
    common_hex_encode(rnd, 8, cu->job_id);
    proto_customer_cfg_t pc = {
        .kind = cu->cfg.kind,
        .budget = cu->cfg.budget - cu->spent,
        .max_sats_per_chunk = cu->cfg.max_sats_per_chunk,
        .mint_url = cu->cfg.mint_url,
        .idle_timeout_ms = cu->cfg.idle_timeout_ms,
        .grace_ms = cu->cfg.grace_ms,
        .params = cu->cfg.params,
    };
    if (cu->fr) cu->core = proto_customer_new(&pc, cu->env, cu->job_id, cu->cfg.input, &err);
    if (!cu->core) {
        LOG_ERROR(LOGP(cu), MOD, "cannot start the job: %s", common_strerror(err));
        finish(cu, CUSTOMER_EXIT_INTERNAL, "internal");
        return;
    }
    drain(cu);
}

void customer_conn_data(customer_t *cu, void *t, const uint8_t *data, size_t len) {
    if (t != cu->t || !cu->core) return;
    if (proto_ndjson_feed(cu->fr, data, len)) {
        proto_customer_disconnect(cu->core);
        drain(cu);
        return;
    }
    common_buf_t reply = {0};
    while (cu->core && t == cu->t) {
        proto_msg_t m;
        reply.len = 0;
        int act = proto_conn_next(cu->fr, &m, &reply);
        if (act == PROTO_LINE_NONE) break;
        if (act < 0 || act == PROTO_LINE_CLOSE) {
            LOG_WARN(LOGP(cu), MOD, "provider %s broke the protocol; dropping it", cu->peer);
            proto_customer_disconnect(cu->core);
            drain(cu);
            break;
        }
        /* a bad line from the provider: no reply (we are not the server), go on */
        if (act == PROTO_LINE_MSG) {
            proto_customer_on_msg(cu->core, &m);
            proto_msg_free(&m);
            drain(cu);
        }
    }
    common_buf_free(&reply);
}

void customer_conn_closed(customer_t *cu, void *t, int status) {
    if (cu->finished || !t || t != cu->t) return;
    cu->t = NULL;
    LOG_INFO(LOGP(cu), MOD, "provider %s disconnected (%s)", cu->peer,
             status ? common_strerror(status) : "closed");
    if (cu->core) {
        proto_customer_disconnect(cu->core);
        drain(cu);
    }
}

void customer_conn_failed(customer_t *cu, size_t attempt, int status) {
    if (cu->finished || !cu->dialing || attempt + 1 != cu->attempt) return;
    cu->dialing = 0;
    LOG_INFO(LOGP(cu), MOD, "provider unreachable: %s", common_strerror(status));
    if (cu->user_stop) {
        finish(cu, CUSTOMER_EXIT_INTERRUPTED, "stopped");
        return;
    }
    next_attempt(cu);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

customer_t *customer_new(uv_loop_t *loop, const common_env_t *env, const customer_cfg_t *cfg,
                         customer_pay_t *pay, const customer_dialer_t *dialer,
                         const customer_sink_t *sink, int *err) {
    if (!loop || !env || !cfg || !pay || !dialer || !dialer->dial || !cfg->input) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    customer_t *cu = calloc(1, sizeof *cu);
    if (!cu) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    cu->loop = loop;
    cu->env = env;
    cu->cfg = *cfg;
    cu->pay = pay;
    cu->dialer = *dialer;
    if (sink) cu->sink = *sink;
    uv_timer_init(loop, &cu->timer);
    cu->timer.data = cu;
    return cu;
}

static void free_cb(uv_handle_t *h) {
    free(h->data);
}

void customer_free(customer_t *cu) {
    if (!cu) return;
    proto_customer_free(cu->core);
    proto_ndjson_free(cu->fr);
    uv_timer_stop(&cu->timer);
    uv_close((uv_handle_t *)&cu->timer, free_cb);
}

int customer_start(customer_t *cu) {
    next_attempt(cu);
    return 0;
}

void customer_stop(customer_t *cu) {
    if (cu->finished) return;
    cu->user_stop = 1;
    if (cu->core) {
        proto_customer_stop(cu->core);
        drain(cu);
        return;
    }
    finish(cu, CUSTOMER_EXIT_INTERRUPTED, "stopped");
}

uint64_t customer_spent(const customer_t *cu) {
    return cu->spent;
}
