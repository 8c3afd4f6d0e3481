/* SPDX-License-Identifier: MIT */
#include "protocol/proto_provider.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_utf8.h"
#include "common/common_err.h"
#include "common/common_log.h"
#include "protocol/proto_internal.h"

#define DEFAULT_MAX_INPUT         (64u * 1024u)
#define DEFAULT_MAX_BUFFER_CHUNKS 256u
#define DEFAULT_MAX_OUTPUT        (128u * 1024u)

/* How a job ends; decides what is sent once no verification is pending any more. */
typedef enum {
    END_NONE = 0,
    END_DONE,          /* result, reason done/length */
    END_STOP,          /* result (partial), reason stopped */
    END_TIMEOUT_START, /* error payment_timeout, no result (reference behaviour) */
    END_TIMEOUT_MID,   /* error payment_timeout, then the partial result */
    END_LLM_ERROR,     /* error backend, then the partial result */
    END_DISCONNECT,    /* nothing sent */
} end_kind_t;

typedef struct pending_pay {
    uint64_t ticket;
    char *token; /* owned, wiped */
} pending_pay_t;

typedef struct chunk_buf {
    char *data;
    size_t len;
} chunk_buf_t;

struct proto_provider {
    proto_provider_cfg_t cfg;
    const common_env_t *env;
    char id[PROTO_ID_MAX + 1];
    proto__evq_t q;

    /* payments */
    uint64_t verified_sats, carry, credit;
    pending_pay_t pend[PROTO_MAX_PENDING_PAYMENTS];
    size_t npend;
    uint64_t next_ticket;
    int paid; /* a payment was verified */
    int pay_required_out;
    uint64_t deadline; /* UINT64_MAX: none */

    /* generation */
    int llm_started, llm_done, llm_paused, truncated;
    int has_usage;
    uint64_t prompt_tokens, completion_tokens;
    chunk_buf_t *buf; /* ring of unsent chunks */
    size_t bhead, bn, bcap;
    size_t generated_bytes;
    char hold[4]; /* an incomplete UTF-8 sequence at the end of the last delta */
    size_t hold_len;
    common_buf_t output; /* all sent chunk data */
    uint64_t chunks_sent;

    /* ending */
    end_kind_t end;
    proto_reason_t done_reason;
    char *end_message; /* for END_LLM_ERROR */
    int slot_released, done;
};

/* ------------------------------------------------------------------------------------ */

static int push(proto_provider_t *p, proto_event_kind_t k, int code, uint64_t a, uint64_t b,
                const void *data, size_t len) {
    return proto__evq_push(&p->q, k, code, a, b, data, len);
}

/* Encode @p m and queue it as SEND. */
static int send_msg(proto_provider_t *p, proto_msg_t *m) {
    common_buf_t b = {0};
    memcpy(m->id, p->id, sizeof p->id);
    int rc = proto_msg_encode(m, &b);
    if (!rc) rc = push(p, PROTO_EV_SEND, 0, 0, 0, b.data, b.len);
    common_buf_free(&b);
    return rc;
}

static int send_error(proto_provider_t *p, proto_error_code_t code, const char *message) {
    proto_msg_t m = {.type = PROTO_MSG_ERROR};
    m.error.code = code;
    m.error.message = (char *)message;
    return send_msg(p, &m);
}

static uint64_t cycle_sats(const proto_provider_t *p) {
    return p->cfg.sats_per_chunk * p->cfg.chunks_per_payment;
}

static int waiting_for_payment(const proto_provider_t *p) {
    return p->end == END_NONE && (!p->paid || p->pay_required_out);
}

static void arm_deadline(proto_provider_t *p) {
    uint64_t now = common_now_ms(p->env);
    p->deadline = now + p->cfg.payment_timeout_ms;
}

static void drop_buffer(proto_provider_t *p) {
    for (size_t i = 0; i < p->bn; i++) free(p->buf[(p->bhead + i) % p->bcap].data);
    p->bhead = p->bn = 0;
}

/* Send what is due once nothing is pending: messages for the end kind, CLAIM, DONE. */
static int try_finish(proto_provider_t *p) {
    if (p->end == END_NONE || p->done || p->npend > 0) return 0;
    int rc = 0;
    int send_result = 0;
    proto_reason_t reason = PROTO_REASON_NONE;
    char msg[96];
    switch (p->end) {
    case END_DONE:
        send_result = 1;
        reason = p->done_reason;
        break;
    case END_STOP:
        send_result = 1;
        reason = PROTO_REASON_STOPPED;
        break;
    case END_TIMEOUT_START:
    case END_TIMEOUT_MID:
        snprintf(msg, sizeof msg, "Payment timeout after %llums",
                 (unsigned long long)p->cfg.payment_timeout_ms);
        rc = send_error(p, PROTO_CODE_PAYMENT_TIMEOUT, msg);
        send_result = p->end == END_TIMEOUT_MID;
        reason = PROTO_REASON_TIMEOUT;
        break;
    case END_LLM_ERROR:
        rc = send_error(p, PROTO_CODE_BACKEND, p->end_message ? p->end_message : "LLM error");
        send_result = 1;
        reason = PROTO_REASON_ERROR;
        break;
    default: break;
    }
    if (!rc && send_result) {
        proto_msg_t m = {.type = PROTO_MSG_RESULT};
        /* common_buf data is not NUL-terminated: make it so (room is reserved). */
        if ((rc = common_buf_reserve(&p->output, 1))) return rc;
        p->output.data[p->output.len] = '\0';
        m.result.output = (char *)(p->output.data ? (char *)p->output.data : "");
        m.result.total_sats = p->verified_sats;
        m.result.has_chunks = 1;
        m.result.chunks = p->chunks_sent;
        m.result.has_usage = p->has_usage;
        m.result.prompt_tokens = p->prompt_tokens;
        m.result.completion_tokens = p->completion_tokens;
        m.result.reason = reason;
        rc = send_msg(p, &m);
    }
    if (!rc && p->verified_sats > 0) rc = push(p, PROTO_EV_CLAIM, 0, p->verified_sats, 0, NULL, 0);
    if (!rc) rc = push(p, PROTO_EV_DONE, (int)reason, p->verified_sats, p->chunks_sent, NULL, 0);
    if (!rc) p->done = 1;
    return rc;
}

/* End the job: stop the LLM and free the slot now; the rest when verifications are done. */
static int end_job(proto_provider_t *p, end_kind_t kind) {
    if (p->end != END_NONE) return 0;
    int rc = 0;
    p->end = kind;
    p->deadline = UINT64_MAX;
    p->pay_required_out = 0;
    if (p->llm_started && !p->llm_done) {
        rc = push(p, PROTO_EV_LLM_ABORT, 0, 0, 0, NULL, 0);
        p->llm_done = 1;
    }
    drop_buffer(p);
    if (!rc && !p->slot_released) {
        rc = push(p, PROTO_EV_RELEASE_SLOT, 0, 0, 0, NULL, 0);
        p->slot_released = 1;
    }
    if (!rc) rc = try_finish(p);
    return rc;
}

/* Move paid chunks out, ask for payment lazily, finish when generation is drained. */
static int pump(proto_provider_t *p) {
    int rc = 0;
    if (p->end != END_NONE) return 0;
    common_buf_t line = {0};
    while (p->bn > 0 && p->credit > 0) {
        chunk_buf_t *c = &p->buf[p->bhead];
        line.len = 0;
        rc = proto_encode_chunk(&line, p->id, c->data, c->len, (int64_t)p->chunks_sent);
        if (!rc) rc = push(p, PROTO_EV_SEND, 0, 0, 0, line.data, line.len);
        if (!rc) rc = common_buf_append(&p->output, c->data, c->len);
        if (rc) break;
        free(c->data);
        p->bhead = (p->bhead + 1) % p->bcap;
        p->bn--;
        p->credit--;
        p->chunks_sent++;
    }
    common_buf_free(&line);
    if (rc) return rc;
    if (p->bn > 0 && p->credit == 0 && !p->pay_required_out) {
        proto_msg_t m = {.type = PROTO_MSG_PAY_REQUIRED};
        m.pay_required.earned = p->chunks_sent * p->cfg.sats_per_chunk;
        m.pay_required.next = cycle_sats(p);
        if ((rc = send_msg(p, &m))) return rc;
        p->pay_required_out = 1;
        arm_deadline(p);
    }
    if (p->llm_paused && !p->llm_done && p->bn <= p->cfg.max_buffer_chunks / 2) {
        if ((rc = push(p, PROTO_EV_LLM_RESUME, 0, 0, 0, NULL, 0))) return rc;
        p->llm_paused = 0;
    }
    if (p->llm_done && p->bn == 0) {
        p->done_reason = p->truncated ? PROTO_REASON_LENGTH : PROTO_REASON_DONE;
        return end_job(p, END_DONE);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */

int proto_provider_check_request(const proto_provider_cfg_t *cfg, const proto_msg_t *req, char *why,
                                 size_t whylen) {
    size_t max_input = cfg->max_input ? cfg->max_input : DEFAULT_MAX_INPUT;
    const char *reason = NULL;
    char tmp[96];
    if (req->type != PROTO_MSG_REQUEST)
        reason = "not a request";
    else if (req->request.kind != cfg->kind) {
        snprintf(tmp, sizeof tmp, "kind %llu not served (this provider serves %llu)",
                 (unsigned long long)req->request.kind, (unsigned long long)cfg->kind);
        reason = tmp;
    } else if (!req->request.input || !req->request.input[0])
        reason = "input is empty";
    else if (strlen(req->request.input) > max_input) {
        snprintf(tmp, sizeof tmp, "input longer than %zu bytes", max_input);
        reason = tmp;
    }
    if (!reason) return 0;
    if (why && whylen) snprintf(why, whylen, "%s", reason);
    return PROTO_EBAD_MESSAGE;
}

proto_provider_t *proto_provider_new(const proto_provider_cfg_t *cfg, const common_env_t *env,
                                     const char *id, int *err) {
    int rc = COMMON_EINVAL;
    proto_provider_t *p = NULL;
    if (!cfg || !env || !id || !proto_id_valid(id, strlen(id)) || cfg->sats_per_chunk < 1 ||
        cfg->chunks_per_payment < 1 || cfg->sats_per_chunk > PROTO_MAX_INT ||
        cfg->chunks_per_payment > PROTO_MAX_INT / cfg->sats_per_chunk ||
        cfg->n_mints > PROTO_MAX_MINTS)
        goto fail;
    rc = COMMON_ENOMEM;
    if (!(p = calloc(1, sizeof *p))) goto fail;
    p->cfg = *cfg;
    if (!p->cfg.max_buffer_chunks) p->cfg.max_buffer_chunks = DEFAULT_MAX_BUFFER_CHUNKS;
    if (!p->cfg.max_output_bytes) p->cfg.max_output_bytes = DEFAULT_MAX_OUTPUT;
    if (!p->cfg.max_input) p->cfg.max_input = DEFAULT_MAX_INPUT;
    p->env = env;
    memcpy(p->id, id, strlen(id) + 1);
    /* PAUSE at max_buffer_chunks; a driver that cannot pause at once gets as much slack
     * again before the core gives up on it (LLM_ABORT, reason "length"). */
    p->bcap = 2 * p->cfg.max_buffer_chunks + 1;
    if (!(p->buf = calloc(p->bcap, sizeof *p->buf))) goto fail;
    proto_msg_t m = {.type = PROTO_MSG_OFFER};
    m.offer.sats_per_chunk = cfg->sats_per_chunk;
    m.offer.chunks_per_payment = cfg->chunks_per_payment;
    if (cfg->n_mints) {
        m.offer.mints.has = 1;
        m.offer.mints.n = cfg->n_mints;
        for (size_t i = 0; i < cfg->n_mints; i++) m.offer.mints.url[i] = (char *)cfg->mints[i];
    }
    if (cfg->pubkey) {
        m.offer.unit = "sat";
        m.offer.has_pubkey = 1;
        memcpy(m.offer.pubkey, cfg->pubkey, PROTO_PUBKEY_LEN);
        m.offer.has_min_locktime = 1;
        m.offer.min_locktime = cfg->min_locktime_s;
    }
    if ((rc = send_msg(p, &m))) goto fail;
    arm_deadline(p);
    if (err) *err = 0;
    return p;
fail:
    proto_provider_free(p);
    if (err) *err = rc;
    return NULL;
}

void proto_provider_free(proto_provider_t *p) {
    if (!p) return;
    for (size_t i = 0; i < p->npend; i++) {
        sodium_memzero(p->pend[i].token, strlen(p->pend[i].token));
        free(p->pend[i].token);
    }
    if (p->buf) drop_buffer(p);
    free(p->buf);
    common_buf_free(&p->output);
    free(p->end_message);
    proto__evq_free(&p->q);
    free(p);
}

int proto_provider_next_event(proto_provider_t *p, proto_event_t *ev) {
    return proto__evq_pop(&p->q, ev);
}

int proto_provider_on_msg(proto_provider_t *p, const proto_msg_t *msg) {
    if (strcmp(msg->id, p->id) != 0) return COMMON_EINVAL;
    if (p->end != END_NONE) return COMMON_ESTATE;
    switch (msg->type) {
    case PROTO_MSG_PAYMENT: {
        if (p->npend >= PROTO_MAX_PENDING_PAYMENTS)
            return send_error(p, PROTO_CODE_BAD_REQUEST, "Too many payments awaiting verification");
        size_t len = strlen(msg->payment.token);
        char *tok = malloc(len + 1);
        if (!tok) return COMMON_ENOMEM;
        memcpy(tok, msg->payment.token, len + 1);
        uint64_t ticket = ++p->next_ticket;
        int rc = push(p, PROTO_EV_VERIFY_TOKEN, 0, ticket, 0, tok, len);
        if (rc) {
            sodium_memzero(tok, len);
            free(tok);
            return rc;
        }
        p->pend[p->npend].ticket = ticket;
        p->pend[p->npend].token = tok;
        p->npend++;
        return 0;
    }
    case PROTO_MSG_STOP: return end_job(p, END_STOP);
    default: return 0; /* request/skill handled by the agent; provider->customer types ignored */
    }
}

/* Remove @p ticket from the pending list; returns its token (owned by the caller) or NULL. */
static char *take_pending(proto_provider_t *p, uint64_t ticket) {
    for (size_t i = 0; i < p->npend; i++) {
        if (p->pend[i].ticket != ticket) continue;
        char *tok = p->pend[i].token;
        p->pend[i] = p->pend[--p->npend];
        return tok;
    }
    return NULL;
}

static void wipe_token(char *tok) {
    sodium_memzero(tok, strlen(tok));
    free(tok);
}

int proto_provider_payment_verified(proto_provider_t *p, uint64_t ticket, uint64_t amount,
                                    int locked) {
    if (p->done) return COMMON_ESTATE;
    char *tok = take_pending(p, ticket);
    if (!tok) return COMMON_EINVAL;
    if (amount > PROTO_MAX_INT - p->verified_sats) {
        wipe_token(tok);
        return COMMON_ERANGE;
    }
    /* Persist first: a crash after this loses nothing (the agent stores it durably). */
    int rc = push(p, PROTO_EV_PERSIST_TOKEN, 0, amount, locked ? 1 : 0, tok, strlen(tok));
    wipe_token(tok);
    if (rc) return rc;
    p->verified_sats += amount;
    if (p->end != END_NONE) { /* job already ending: count it, acknowledge, finish */
        if (p->end != END_DISCONNECT) {
            proto_msg_t m = {.type = PROTO_MSG_PAYMENT_ACK};
            m.payment_ack.amount = amount;
            m.payment_ack.has_credit = 1;
            m.payment_ack.has_locked = 1;
            m.payment_ack.locked = locked ? 1 : 0;
            if ((rc = send_msg(p, &m))) return rc;
        }
        return try_finish(p);
    }
    uint64_t total = amount + p->carry; /* both <= 2^53: no overflow */
    p->credit += total / p->cfg.sats_per_chunk;
    p->carry = total % p->cfg.sats_per_chunk;
    proto_msg_t m = {.type = PROTO_MSG_PAYMENT_ACK};
    m.payment_ack.amount = amount;
    m.payment_ack.has_credit = 1;
    m.payment_ack.credit = p->credit;
    m.payment_ack.has_locked = 1;
    m.payment_ack.locked = locked ? 1 : 0;
    if ((rc = send_msg(p, &m))) return rc;
    p->pay_required_out = 0;
    if (!p->paid && p->verified_sats > 0) { /* a 0-sat token starts nothing */
        p->paid = 1;
        proto_msg_t a = {.type = PROTO_MSG_ACCEPTED};
        if ((rc = send_msg(p, &a))) return rc;
        if ((rc = push(p, PROTO_EV_LLM_START, 0, 0, 0, NULL, 0))) return rc;
        p->llm_started = 1;
    }
    if (p->paid) p->deadline = UINT64_MAX; /* else the first-payment deadline keeps running */
    return pump(p);                        /* may ask again (underpayment below one chunk) */
}

int proto_provider_payment_rejected(proto_provider_t *p, uint64_t ticket, proto_error_code_t code,
                                    const char *message) {
    if (p->done) return COMMON_ESTATE;
    char *tok = take_pending(p, ticket);
    if (!tok) return COMMON_EINVAL;
    wipe_token(tok);
    int rc = 0;
    if (p->end == END_NONE) {
        if (code == PROTO_CODE_NONE) code = PROTO_CODE_BAD_TOKEN;
        rc = send_error(p, code, message && *message ? message : "Payment rejected");
        /* The deadline keeps running; if it passed while we verified, fire now. */
        if (!rc && p->npend == 0 && waiting_for_payment(p) && common_now_ms(p->env) >= p->deadline)
            rc = end_job(p, p->paid ? END_TIMEOUT_MID : END_TIMEOUT_START);
        return rc;
    }
    return try_finish(p);
}

/* Queue one chunk; data is sanitized (invalid bytes and NUL become U+FFFD). */
static int buffer_chunk(proto_provider_t *p, const char *data, size_t len, int final) {
    common_buf_t c = {0};
    size_t i = 0;
    int rc = 0;
    while (i < len && !rc) {
        int n = common_utf8_char(data + i, len - i);
        if (n == 1 && data[i] == '\0') n = 0; /* NUL cannot go on the wire: replaced too */
        if (n > 0) {
            rc = common_buf_append(&c, data + i, (size_t)n);
            i += (size_t)n;
        } else if (n < 0 && !final) { /* hold the incomplete tail for the next delta */
            memcpy(p->hold, data + i, len - i);
            p->hold_len = len - i;
            break;
        } else {
            rc = common_buf_append(&c, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (!rc && c.len > 0) {
        if (p->bn + 1 >= p->bcap) { /* the driver ignored PAUSE: stop generating */
            common_buf_free(&c);
            p->truncated = 1;
            p->llm_done = 1;
            return push(p, PROTO_EV_LLM_ABORT, 0, 0, 0, NULL, 0);
        }
        p->buf[(p->bhead + p->bn) % p->bcap] = (chunk_buf_t){(char *)c.data, c.len};
        p->bn++;
        p->generated_bytes += c.len;
        c.data = NULL;
    }
    common_buf_free(&c);
    return rc;
}

int proto_provider_llm_delta(proto_provider_t *p, const char *data, size_t len) {
    if (p->end != END_NONE || !p->llm_started || p->llm_done) return COMMON_ESTATE;
    if (len == 0) return 0;
    /* Prepend a held partial character (at most 3 bytes) from the previous delta. */
    char *joined = NULL;
    if (p->hold_len) {
        if (!(joined = malloc(p->hold_len + len))) return COMMON_ENOMEM;
        memcpy(joined, p->hold, p->hold_len);
        memcpy(joined + p->hold_len, data, len);
        data = joined;
        len += p->hold_len;
        p->hold_len = 0;
    }
    int rc = buffer_chunk(p, data, len, 0);
    free(joined);
    if (rc) return rc;
    if (!p->llm_done && p->generated_bytes >= p->cfg.max_output_bytes) {
        /* Output cap: the result line must stay under the line limit. */
        p->truncated = 1;
        p->llm_done = 1;
        if ((rc = push(p, PROTO_EV_LLM_ABORT, 0, 0, 0, NULL, 0))) return rc;
    }
    if (!p->llm_done && !p->llm_paused && p->bn >= p->cfg.max_buffer_chunks) {
        if ((rc = push(p, PROTO_EV_LLM_PAUSE, 0, 0, 0, NULL, 0))) return rc;
        p->llm_paused = 1;
    }
    return pump(p);
}

int proto_provider_llm_done(proto_provider_t *p, int has_usage, uint64_t prompt_tokens,
                            uint64_t completion_tokens, int truncated) {
    if (p->end != END_NONE || !p->llm_started || p->llm_done) return COMMON_ESTATE;
    int rc = 0;
    if (p->hold_len) { /* an incomplete character at the very end: replaced */
        size_t n = p->hold_len;
        p->hold_len = 0;
        if ((rc = buffer_chunk(p, p->hold, n, 1))) return rc;
    }
    p->llm_done = 1;
    p->llm_paused = 0;
    if (truncated) p->truncated = 1;
    if (has_usage && prompt_tokens <= PROTO_MAX_INT && completion_tokens <= PROTO_MAX_INT) {
        p->has_usage = 1;
        p->prompt_tokens = prompt_tokens;
        p->completion_tokens = completion_tokens;
    }
    return pump(p);
}

int proto_provider_llm_error(proto_provider_t *p, const char *message) {
    if (p->end != END_NONE || !p->llm_started || p->llm_done) return COMMON_ESTATE;
    free(p->end_message);
    p->end_message = message ? strdup(message) : NULL;
    p->llm_done = 1; /* the driver reported the failure: nothing to abort */
    return end_job(p, END_LLM_ERROR);
}

int proto_provider_disconnect(proto_provider_t *p) {
    if (p->done) return COMMON_ESTATE;
    if (p->end != END_NONE) { /* already ending: nothing more may be sent */
        p->end = END_DISCONNECT;
        return try_finish(p);
    }
    return end_job(p, END_DISCONNECT);
}

uint64_t proto_provider_deadline(const proto_provider_t *p) {
    /* Nothing is due while a verification is pending (a past deadline would make the
     * caller's timer spin); the verdict re-evaluates it. */
    return waiting_for_payment(p) && p->npend == 0 ? p->deadline : UINT64_MAX;
}

int proto_provider_tick(proto_provider_t *p) {
    if (!waiting_for_payment(p) || p->npend > 0) return 0;
    if (common_now_ms(p->env) < p->deadline) return 0;
    LOG_DEBUG(p->env->log, "proto", "job %s: payment timeout", p->id);
    return end_job(p, p->paid ? END_TIMEOUT_MID : END_TIMEOUT_START);
}

void proto_provider_get_stats(const proto_provider_t *p, proto_provider_stats_t *st) {
    st->verified_sats = p->verified_sats;
    st->carry = p->carry;
    st->credit = p->credit;
    st->chunks_sent = p->chunks_sent;
    st->buffered_chunks = p->bn;
    st->llm_started = p->llm_started;
    st->llm_done = p->llm_done;
    st->ended = p->end != END_NONE;
    st->done = p->done;
}

int proto_encode_error(common_buf_t *out, const char *id, proto_error_code_t code,
                       const char *message) {
    if (id && id[0]) {
        proto_msg_t m = {.type = PROTO_MSG_ERROR};
        size_t n = strlen(id);
        if (n > PROTO_ID_MAX) return COMMON_EINVAL;
        memcpy(m.id, id, n + 1);
        m.error.code = code;
        m.error.message = (char *)message;
        return proto_msg_encode(&m, out);
    }
    /* A reply to a line whose id could not be read: no id (as the reference does). */
    size_t start = out->len;
    const char *cn = proto_error_code_name(code);
    int rc = common_buf_append(out, "{\"type\":\"error\",\"message\":", 26);
    if (!rc) rc = proto_json_put_string(out, message ? message : "", message ? strlen(message) : 0);
    if (!rc && cn) rc = common_buf_printf(out, ",\"code\":\"%s\"", cn);
    if (!rc) rc = common_buf_append(out, "}\n", 2);
    if (rc) out->len = start;
    return rc;
}
