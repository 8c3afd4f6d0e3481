/* SPDX-License-Identifier: MIT */
#include "protocol/proto_customer.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "protocol/proto_internal.h"

#define DEFAULT_IDLE_MS  30000u
#define DEFAULT_GRACE_MS 3000u

typedef enum {
    C_WAIT_OFFER = 0,
    C_WAIT_TOKENS, /* the wallet prepares micro-tokens */
    C_STREAMING,
    C_ENDING, /* stop sent or error received: waiting (grace) for the result */
    C_DONE,
} cstate_t;

struct proto_customer {
    proto_customer_cfg_t cfg;
    const common_env_t *env;
    char id[PROTO_ID_MAX + 1];
    char *mint_url;
    proto__evq_t q;
    cstate_t state;
    proto_customer_offer_t offer;
    char **tokens; /* owned, wiped */
    size_t ntokens, next_token;
    uint64_t sats_acked, chunks;
    uint64_t deadline;
    proto_outcome_t ending_outcome; /* what DONE will say if the grace ends */
    proto_outcome_t outcome;
    int error_seen, stop_sent;
};

static const char *const outcome_names[PROTO_OUT_COUNT_] = {
    [PROTO_OUT_NONE] = "none",
    [PROTO_OUT_COMPLETE] = "complete",
    [PROTO_OUT_BUDGET] = "budget",
    [PROTO_OUT_STOPPED] = "stopped",
    [PROTO_OUT_PRICE] = "price",
    [PROTO_OUT_MINT] = "mint",
    [PROTO_OUT_PROVIDER_ERROR] = "provider_error",
    [PROTO_OUT_DISCONNECTED] = "disconnected",
    [PROTO_OUT_TIMEOUT] = "timeout",
    [PROTO_OUT_PAYMENT_FAILED] = "payment_failed",
};

const char *proto_outcome_name(proto_outcome_t o) {
    return (unsigned)o < PROTO_OUT_COUNT_ ? outcome_names[o] : "?";
}

static int push(proto_customer_t *c, proto_event_kind_t k, int code, uint64_t a, uint64_t b,
                const void *data, size_t len) {
    return proto__evq_push(&c->q, k, code, a, b, data, len);
}

static int send_msg(proto_customer_t *c, proto_msg_t *m) {
    common_buf_t b = {0};
    memcpy(m->id, c->id, sizeof c->id);
    int rc = proto_msg_encode(m, &b);
    if (!rc) rc = push(c, PROTO_EV_SEND, 0, 0, 0, b.data, b.len);
    if (b.data) sodium_memzero(b.data, b.cap); /* may hold a token */
    common_buf_free(&b);
    return rc;
}

static int send_stop(proto_customer_t *c) {
    if (c->stop_sent) return 0;
    c->stop_sent = 1;
    proto_msg_t m = {.type = PROTO_MSG_STOP};
    return send_msg(c, &m);
}

static uint64_t sats_sent(const proto_customer_t *c) {
    return c->next_token * c->offer.cycle_sats;
}

static int finish(proto_customer_t *c, proto_outcome_t outcome, int fallback) {
    if (c->state == C_DONE) return 0;
    int rc = 0;
    if (fallback) rc = push(c, PROTO_EV_FALLBACK, (int)outcome, sats_sent(c), c->chunks, NULL, 0);
    if (!rc) rc = push(c, PROTO_EV_DONE, (int)outcome, sats_sent(c), c->chunks, NULL, 0);
    c->state = C_DONE;
    c->outcome = outcome;
    c->deadline = UINT64_MAX;
    return rc;
}

/* Wait up to grace_ms for the (partial) result, then DONE(@p outcome). */
static void enter_ending(proto_customer_t *c, proto_outcome_t outcome) {
    c->state = C_ENDING;
    c->ending_outcome = outcome;
    c->deadline = common_now_ms(c->env) + c->cfg.grace_ms;
}

static void touch(proto_customer_t *c) {
    if (c->state == C_WAIT_OFFER || c->state == C_STREAMING)
        c->deadline = common_now_ms(c->env) + c->cfg.idle_timeout_ms;
}

static int send_next_token(proto_customer_t *c) {
    size_t i = c->next_token;
    int rc = push(c, PROTO_EV_TOKEN_SENT, 0, i, c->offer.cycle_sats, NULL, 0);
    if (rc) return rc;
    c->next_token++; /* counted as spent from here on, whatever happens to the write */
    proto_msg_t m = {.type = PROTO_MSG_PAYMENT};
    m.payment.token = c->tokens[i];
    return send_msg(c, &m);
}

/* ------------------------------------------------------------------------------------ */

proto_customer_t *proto_customer_new(const proto_customer_cfg_t *cfg, const common_env_t *env,
                                     const char *id, const char *input, int *err) {
    int rc = COMMON_EINVAL;
    proto_customer_t *c = NULL;
    if (!cfg || !env || !id || !input || !proto_id_valid(id, strlen(id)) ||
        cfg->budget > PROTO_MAX_INT || cfg->kind > PROTO_MAX_INT)
        goto fail;
    rc = COMMON_ENOMEM;
    if (!(c = calloc(1, sizeof *c))) goto fail;
    c->cfg = *cfg;
    c->cfg.params = NULL;
    c->cfg.mint_url = NULL;
    if (!c->cfg.idle_timeout_ms) c->cfg.idle_timeout_ms = DEFAULT_IDLE_MS;
    if (!c->cfg.grace_ms) c->cfg.grace_ms = DEFAULT_GRACE_MS;
    c->env = env;
    memcpy(c->id, id, strlen(id) + 1);
    if (cfg->mint_url && !(c->mint_url = strdup(cfg->mint_url))) goto fail;
    proto_msg_t m = {.type = PROTO_MSG_REQUEST};
    m.request.kind = cfg->kind;
    m.request.input = (char *)input;
    m.request.has_budget = 1;
    m.request.budget = cfg->budget;
    if (cfg->params) {
        m.request.has_params = 1;
        m.request.params = *cfg->params;
    }
    if ((rc = send_msg(c, &m))) goto fail;
    c->state = C_WAIT_OFFER;
    touch(c);
    if (err) *err = 0;
    return c;
fail:
    proto_customer_free(c);
    if (err) *err = rc;
    return NULL;
}

void proto_customer_free(proto_customer_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->ntokens; i++) {
        sodium_memzero(c->tokens[i], strlen(c->tokens[i]));
        free(c->tokens[i]);
    }
    free(c->tokens);
    free(c->mint_url);
    proto__evq_free(&c->q);
    free(c);
}

int proto_customer_next_event(proto_customer_t *c, proto_event_t *ev) {
    return proto__evq_pop(&c->q, ev);
}

/* Mint URLs compare equal ignoring one trailing slash. */
static int same_mint(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '/') la--;
    if (lb && b[lb - 1] == '/') lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

static int on_offer(proto_customer_t *c, const proto_msg_t *m) {
    int rc;
    if (m->offer.sats_per_chunk > c->cfg.max_sats_per_chunk) {
        if ((rc = send_stop(c))) return rc;
        return finish(c, PROTO_OUT_PRICE, 1);
    }
    if (c->mint_url && m->offer.mints.has) {
        int found = 0;
        for (size_t i = 0; i < m->offer.mints.n; i++)
            found |= same_mint(m->offer.mints.url[i], c->mint_url);
        if (!found) {
            if ((rc = send_stop(c))) return rc;
            return finish(c, PROTO_OUT_MINT, 1);
        }
    }
    proto_customer_offer_t *o = &c->offer;
    o->sats_per_chunk = m->offer.sats_per_chunk;
    o->chunks_per_payment = m->offer.chunks_per_payment;
    /* both <= 2^53-1; a product beyond the budget cannot buy anything anyway */
    if (o->chunks_per_payment > PROTO_MAX_INT / o->sats_per_chunk)
        o->cycle_sats = UINT64_MAX;
    else
        o->cycle_sats = o->sats_per_chunk * o->chunks_per_payment;
    o->has_pubkey = m->offer.has_pubkey;
    memcpy(o->pubkey, m->offer.pubkey, PROTO_PUBKEY_LEN);
    o->min_locktime_s = m->offer.has_min_locktime ? m->offer.min_locktime : 0;
    uint64_t n = c->cfg.budget / o->cycle_sats;
    if (n > PROTO_MAX_MICRO_TOKENS) n = PROTO_MAX_MICRO_TOKENS;
    if (n == 0) { /* not even one cycle: this provider is too expensive for the budget */
        o->cycle_sats = 0;
        if ((rc = send_stop(c))) return rc;
        return finish(c, PROTO_OUT_BUDGET, 1);
    }
    c->state = C_WAIT_TOKENS;
    c->deadline = UINT64_MAX; /* the wallet has its own timeouts */
    return push(c, PROTO_EV_PREPARE_TOKENS, 0, n, o->cycle_sats, NULL, 0);
}

int proto_customer_tokens(proto_customer_t *c, const char *const *tokens, size_t n) {
    if (c->state != C_WAIT_TOKENS) return COMMON_ESTATE;
    if (n == 0) return proto_customer_tokens_failed(c);
    if (n > PROTO_MAX_MICRO_TOKENS) n = PROTO_MAX_MICRO_TOKENS;
    if (!(c->tokens = calloc(n, sizeof *c->tokens))) return COMMON_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!tokens[i] || !tokens[i][0] || !(c->tokens[i] = strdup(tokens[i]))) {
            c->ntokens = i;
            return tokens[i] && tokens[i][0] ? COMMON_ENOMEM : COMMON_EINVAL;
        }
    }
    c->ntokens = n;
    c->state = C_STREAMING;
    touch(c);
    return send_next_token(c);
}

int proto_customer_tokens_failed(proto_customer_t *c) {
    if (c->state != C_WAIT_TOKENS) return COMMON_ESTATE;
    int rc = send_stop(c);
    return rc ? rc : finish(c, PROTO_OUT_PAYMENT_FAILED, 0);
}

static proto_outcome_t outcome_of_result(const proto_customer_t *c, proto_reason_t reason) {
    if (c->error_seen) return PROTO_OUT_PROVIDER_ERROR;
    if (c->state == C_ENDING) return c->ending_outcome; /* we stopped: user or budget */
    switch (reason) {
    case PROTO_REASON_TIMEOUT:
    case PROTO_REASON_ERROR: return PROTO_OUT_PROVIDER_ERROR;
    case PROTO_REASON_BUDGET: return PROTO_OUT_BUDGET;
    case PROTO_REASON_STOPPED: return PROTO_OUT_STOPPED;
    default: return PROTO_OUT_COMPLETE;
    }
}

int proto_customer_on_msg(proto_customer_t *c, const proto_msg_t *m) {
    if (strcmp(m->id, c->id) != 0) return COMMON_EINVAL;
    if (c->state == C_DONE) return COMMON_ESTATE;
    touch(c);
    int rc = 0;
    switch (m->type) {
    case PROTO_MSG_OFFER:
        if (c->state != C_WAIT_OFFER) return 0; /* a second offer: ignored */
        return on_offer(c, m);
    case PROTO_MSG_PAYMENT_ACK:
        if (m->payment_ack.amount <= PROTO_MAX_INT - c->sats_acked)
            c->sats_acked += m->payment_ack.amount;
        return push(c, PROTO_EV_ACK, 0, m->payment_ack.amount, m->payment_ack.credit, NULL, 0);
    case PROTO_MSG_CHUNK:
        c->chunks++;
        return push(c, PROTO_EV_OUTPUT, 0, c->chunks, 0, m->chunk.data, strlen(m->chunk.data));
    case PROTO_MSG_PAY_REQUIRED:
        if (c->state != C_STREAMING) return 0;
        if (c->next_token < c->ntokens) return send_next_token(c);
        if ((rc = send_stop(c))) return rc; /* budget used up */
        enter_ending(c, PROTO_OUT_BUDGET);
        return 0;
    case PROTO_MSG_ERROR:
        rc = push(c, PROTO_EV_PROVIDER_ERROR, (int)m->error.code, 0, 0, m->error.message,
                  strlen(m->error.message));
        if (rc) return rc;
        if (c->state == C_WAIT_OFFER || c->state == C_WAIT_TOKENS) {
            /* capacity, bad request, ...: nothing bought yet, another provider may do */
            return finish(c, PROTO_OUT_PROVIDER_ERROR, 1);
        }
        c->error_seen = 1;
        switch (m->error.code) { /* our payment was refused: no point paying on */
        case PROTO_CODE_BAD_TOKEN:
        case PROTO_CODE_TOKEN_SPENT:
        case PROTO_CODE_MINT_NOT_ACCEPTED:
        case PROTO_CODE_NOT_LOCKED:
            if ((rc = send_stop(c))) return rc;
            break;
        default: break;
        }
        if (c->state != C_ENDING) enter_ending(c, PROTO_OUT_PROVIDER_ERROR);
        return 0;
    case PROTO_MSG_RESULT:
        rc = push(c, PROTO_EV_RESULT, (int)m->result.reason, m->result.total_sats, c->chunks,
                  m->result.output, strlen(m->result.output));
        if (rc) return rc;
        return finish(c, outcome_of_result(c, m->result.reason), 0);
    default: return 0; /* accepted, skill_response, unknown: nothing to do */
    }
}

int proto_customer_stop(proto_customer_t *c) {
    if (c->state == C_DONE) return COMMON_ESTATE;
    int rc = send_stop(c);
    if (rc) return rc;
    if (c->state == C_WAIT_OFFER || c->state == C_WAIT_TOKENS)
        return finish(c, PROTO_OUT_STOPPED, 0); /* nothing paid: no result to wait for */
    if (c->state != C_ENDING || c->ending_outcome != PROTO_OUT_PROVIDER_ERROR)
        enter_ending(c, PROTO_OUT_STOPPED);
    return 0;
}

int proto_customer_disconnect(proto_customer_t *c) {
    if (c->state == C_DONE) return COMMON_ESTATE;
    if (c->state == C_ENDING) /* we were only waiting for the result */
        return finish(c, c->ending_outcome, 0);
    return finish(c, PROTO_OUT_DISCONNECTED, 1);
}

uint64_t proto_customer_deadline(const proto_customer_t *c) {
    return c->deadline;
}

int proto_customer_tick(proto_customer_t *c) {
    if (c->state == C_DONE || common_now_ms(c->env) < c->deadline) return 0;
    if (c->state == C_ENDING) return finish(c, c->ending_outcome, 0);
    int rc = send_stop(c);
    return rc ? rc : finish(c, PROTO_OUT_TIMEOUT, 1);
}

const proto_customer_offer_t *proto_customer_offer(const proto_customer_t *c) {
    return &c->offer;
}

void proto_customer_get_stats(const proto_customer_t *c, proto_customer_stats_t *st) {
    st->tokens_prepared = c->ntokens;
    st->tokens_sent = c->next_token;
    st->sats_sent = sats_sent(c);
    st->sats_acked = c->sats_acked;
    st->chunks = c->chunks;
    st->done = c->state == C_DONE;
    st->outcome = c->outcome;
}
