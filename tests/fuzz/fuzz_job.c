/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the job state machines: a provider core and a customer core joined
 * by two line queues, with a fake wallet and a fake LLM whose every move (deliver a line,
 * verify/reject a token, emit a delta, finish, fail, advance the clock, disconnect, stop)
 * is chosen by the input. Invariants checked after every event (abort on violation):
 *   - every SEND line decodes; nothing after DONE; DONE, RELEASE_SLOT, CLAIM, LLM_START at
 *     most once; LLM_START only after a verified payment;
 *   - paid-only output: chunks sent * sats_per_chunk <= verified sats, at every moment;
 *   - result.total_sats == verified sats; CLAIM amount == verified sats, and only once no
 *     verification is pending;
 *   - the customer announces TOKEN_SENT with increasing indices below what was prepared and
 *     never spends more than its budget;
 *   - while the provider waits for a first payment (none pending), a deadline is armed;
 *   - at the end (both sides disconnected, verdicts answered): both DONE, slot released
 *     exactly once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "protocol/proto_customer.h"
#include "protocol/proto_provider.h"

#define QMAX 64
#define CHECK(c)           \
    do {                   \
        if (!(c)) abort(); \
    } while (0)

typedef struct {
    char *line[QMAX];
    size_t head, n;
} lq_t;

static void lq_push(lq_t *q, const char *s, size_t len) {
    if (q->n - q->head >= QMAX) return; /* a congested pipe drops nothing in reality; cap here */
    char *c = malloc(len + 1);
    CHECK(c);
    memcpy(c, s, len);
    c[len] = 0;
    q->line[q->n++ % QMAX] = c;
}
static char *lq_pop(lq_t *q) {
    if (q->head == q->n) return NULL;
    return q->line[q->head++ % QMAX];
}
static void lq_free(lq_t *q) {
    char *s;
    while ((s = lq_pop(q))) free(s);
}

typedef struct {
    const uint8_t *d;
    size_t n, i;
} in_t;
static int next_byte(in_t *in) {
    return in->i < in->n ? in->d[in->i++] : -1;
}

typedef struct {
    common_vclock_t vc;
    common_env_t env;
    proto_provider_t *p;
    proto_customer_t *c;
    uint64_t spc;
    lq_t to_c, to_p;
    uint64_t tickets[64];
    size_t nt;
    uint64_t verified, chunks_sent;
    int p_done, c_done, released, claimed, llm_started, llm_running;
    int prepare_pending;
    uint64_t prepared, last_token_sent, budget;
    int any_token_sent;
} w_t;

static void drain_provider(w_t *w) {
    proto_event_t ev;
    while (proto_provider_next_event(w->p, &ev)) {
        CHECK(!w->p_done);
        switch (ev.kind) {
        case PROTO_EV_SEND: {
            CHECK(ev.len > 0 && ev.data[ev.len - 1] == '\n');
            proto_msg_t m;
            char why[128];
            if (proto_msg_decode(ev.data, ev.len - 1, &m, why, sizeof why) != 0) {
                fprintf(stderr, "undecodable provider line: %s (%s)\n", ev.data, why);
                abort();
            }
            if (m.type == PROTO_MSG_CHUNK) {
                w->chunks_sent++;
                CHECK(w->chunks_sent * w->spc <= w->verified);
            }
            if (m.type == PROTO_MSG_RESULT) CHECK(m.result.total_sats == w->verified);
            proto_msg_free(&m);
            lq_push(&w->to_c, ev.data, ev.len - 1);
            break;
        }
        case PROTO_EV_VERIFY_TOKEN:
            if (w->nt < 64) w->tickets[w->nt++] = ev.a;
            break;
        case PROTO_EV_PERSIST_TOKEN: w->verified += ev.a; break;
        case PROTO_EV_LLM_START:
            CHECK(!w->llm_started && w->verified > 0);
            w->llm_started = w->llm_running = 1;
            break;
        case PROTO_EV_LLM_ABORT: w->llm_running = 0; break;
        case PROTO_EV_RELEASE_SLOT:
            CHECK(!w->released);
            w->released = 1;
            break;
        case PROTO_EV_CLAIM:
            CHECK(!w->claimed && ev.a == w->verified && w->nt == 0);
            w->claimed = 1;
            break;
        case PROTO_EV_DONE:
            CHECK(w->released);
            w->p_done = 1;
            break;
        default: break;
        }
    }
}

static void drain_customer(w_t *w) {
    proto_event_t ev;
    while (proto_customer_next_event(w->c, &ev)) {
        CHECK(!w->c_done);
        switch (ev.kind) {
        case PROTO_EV_SEND: {
            proto_msg_t m;
            CHECK(proto_msg_decode(ev.data, ev.len - 1, &m, NULL, 0) == 0);
            proto_msg_free(&m);
            lq_push(&w->to_p, ev.data, ev.len - 1);
            break;
        }
        case PROTO_EV_PREPARE_TOKENS:
            CHECK(ev.a > 0 && ev.b > 0);
            w->prepare_pending = 1;
            w->prepared = ev.a;
            break;
        case PROTO_EV_TOKEN_SENT:
            CHECK(ev.a < w->prepared);
            CHECK(!w->any_token_sent || ev.a == w->last_token_sent + 1);
            w->any_token_sent = 1;
            w->last_token_sent = ev.a;
            break;
        case PROTO_EV_DONE:
            CHECK(ev.a <= w->budget); /* never spends more than the budget */
            w->c_done = 1;
            break;
        default: break;
        }
    }
}

static void deliver(w_t *w, int to_provider) {
    char *s = lq_pop(to_provider ? &w->to_p : &w->to_c);
    if (!s) return;
    proto_msg_t m;
    if (proto_msg_decode(s, strlen(s), &m, NULL, 0) == 0) {
        if (to_provider && !w->p_done) proto_provider_on_msg(w->p, &m);
        if (!to_provider && !w->c_done) proto_customer_on_msg(w->c, &m);
    }
    proto_msg_free(&m);
    free(s);
}

static void verdict(w_t *w, int ok, uint64_t amount) {
    if (w->nt == 0) return;
    uint64_t t = w->tickets[0];
    memmove(w->tickets, w->tickets + 1, (--w->nt) * sizeof w->tickets[0]);
    if (ok)
        proto_provider_payment_verified(w->p, t, amount, 1);
    else
        proto_provider_payment_rejected(w->p, t, PROTO_CODE_BAD_TOKEN, "bad");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    w_t w;
    memset(&w, 0, sizeof w);
    w.vc.now_ms = 1000;
    w.env.clock = common_clock_virtual(&w.vc);
    w.spc = (uint64_t)(data[0] % 4) + 1;
    proto_provider_cfg_t pc = {.kind = 5100,
                               .sats_per_chunk = w.spc,
                               .chunks_per_payment = (uint64_t)(data[1] % 5) + 1,
                               .payment_timeout_ms = 3000,
                               .max_buffer_chunks = (size_t)(data[2] % 8) + 1,
                               .max_output_bytes = 64};
    proto_customer_cfg_t cc = {.kind = 5100,
                               .budget = data[3] % 64,
                               .max_sats_per_chunk = (uint64_t)(data[4] % 5) + 1,
                               .idle_timeout_ms = 5000,
                               .grace_ms = 1000};
    in_t in = {data + 5, size - 5, 0};
    w.budget = cc.budget;
    w.c = proto_customer_new(&cc, &w.env, "fz", "hi", NULL);
    w.p = proto_provider_new(&pc, &w.env, "fz", NULL);
    CHECK(w.c && w.p);
    drain_customer(&w);
    free(lq_pop(&w.to_p)); /* the request: the provider core stands for its acceptance */
    drain_provider(&w);
    int op;
    while ((op = next_byte(&in)) >= 0) {
        int arg = next_byte(&in);
        if (arg < 0) arg = 0;
        switch (op % 13) {
        case 0:
        case 1: deliver(&w, 0); break;
        case 2:
        case 3: deliver(&w, 1); break;
        case 4: verdict(&w, 1, (uint64_t)arg % 16); break;
        case 5: verdict(&w, 0, 0); break;
        case 6:
            if (w.llm_running && !w.p_done) {
                char d[4];
                size_t n = (size_t)arg % 4;
                for (size_t k = 0; k < n; k++) d[k] = (char)next_byte(&in);
                if (proto_provider_llm_delta(w.p, d, n) == COMMON_ESTATE) w.llm_running = 0;
            }
            break;
        case 7:
            if (w.llm_running && !w.p_done) {
                w.llm_running = 0;
                proto_provider_llm_done(w.p, arg & 1, 1, 2, arg & 2);
            }
            break;
        case 8:
            if (w.llm_running && !w.p_done && arg % 8 == 0) {
                w.llm_running = 0;
                proto_provider_llm_error(w.p, "boom");
            }
            break;
        case 9:
            common_vclock_advance(&w.vc, (uint64_t)arg * 50);
            if (!w.p_done) proto_provider_tick(w.p);
            if (!w.c_done) proto_customer_tick(w.c);
            break;
        case 10:
            if (arg % 16 == 0 && !w.p_done) proto_provider_disconnect(w.p);
            break;
        case 11:
            if (arg % 8 == 0 && !w.c_done) proto_customer_stop(w.c);
            break;
        case 12:
            if (w.prepare_pending) {
                static const char *const t[] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6"};
                size_t n = (size_t)arg % 8;
                if (n > w.prepared) n = (size_t)w.prepared;
                w.prepare_pending = 0;
                if (n == 0)
                    proto_customer_tokens_failed(w.c);
                else
                    proto_customer_tokens(w.c, t, n);
            }
            break;
        }
        drain_provider(&w);
        drain_customer(&w);
        /* Waiting for the first payment (nothing pending): a deadline must be armed. */
        proto_provider_stats_t st;
        proto_provider_get_stats(w.p, &st);
        if (!st.ended && !st.llm_started && w.nt == 0)
            CHECK(proto_provider_deadline(w.p) != UINT64_MAX);
    }
    /* Tear down: both sides lose the connection, the wallet answers what is pending. */
    if (!w.p_done) proto_provider_disconnect(w.p);
    drain_provider(&w);
    while (w.nt) {
        verdict(&w, 1, 1);
        drain_provider(&w);
    }
    if (!w.c_done) proto_customer_disconnect(w.c);
    drain_customer(&w);
    CHECK(w.p_done && w.c_done && w.released);
    lq_free(&w.to_c);
    lq_free(&w.to_p);
    proto_provider_free(w.p);
    proto_customer_free(w.c);
    return 0;
}
