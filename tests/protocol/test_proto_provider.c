/* SPDX-License-Identifier: MIT */
/* The provider's job state machine on a virtual clock (dvm-protocol.md §4). Each test reads
 * like the protocol: what the customer/wallet/LLM does, then what the provider emits. */
#include "protocol/proto_provider.h"

#include "common/common_err.h"
#include "protocol/proto_capacity.h"
#include "tests/protocol/proto_test_util.h"
#include "tests/test.h"

typedef struct {
    common_vclock_t vc;
    common_env_t env;
    proto_capacity_t cap;
    proto_provider_cfg_t cfg;
    proto_provider_t *p;
    char tr[16384];
    int releases, claims, dones, llm_starts, aborts;
    uint64_t last_ticket;
} h_t;

static const char *const reference_tokens[15] = {
    "Hello",   " world", ",",        " this",    " is",     " a",     " fake", " Ollama",
    " stream", " with",  " exactly", " fifteen", " tokens", " total", "."};

static void h_init(h_t *h, uint64_t spc, uint64_t cpp) {
    memset(h, 0, sizeof *h);
    h->vc.now_ms = 1000000;
    h->vc.unix_ms = 1700000000000ull;
    h->env.clock = common_clock_virtual(&h->vc);
    proto_capacity_init(&h->cap, 3);
    h->cfg.kind = 5100;
    h->cfg.sats_per_chunk = spc;
    h->cfg.chunks_per_payment = cpp;
    h->cfg.payment_timeout_ms = 3000;
}

/* Drain events into h->tr (cleared first) and apply capacity/bookkeeping actions. */
static const char *h_drain(h_t *h) {
    h->tr[0] = 0;
    proto_event_t ev;
    while (proto_provider_next_event(h->p, &ev)) {
        render_event(&ev, h->tr, sizeof h->tr);
        switch (ev.kind) {
        case PROTO_EV_RELEASE_SLOT:
            h->releases++;
            if (proto_capacity_release(&h->cap) != 0) strcat(h->tr, "|DOUBLE_RELEASE");
            break;
        case PROTO_EV_CLAIM: h->claims++; break;
        case PROTO_EV_DONE: h->dones++; break;
        case PROTO_EV_LLM_START: h->llm_starts++; break;
        case PROTO_EV_LLM_ABORT: h->aborts++; break;
        case PROTO_EV_VERIFY_TOKEN: h->last_ticket = ev.a; break;
        default: break;
        }
    }
    return h->tr;
}

static int h_start(h_t *h, const char *id) {
    if (proto_capacity_acquire(&h->cap) != 0) return -1;
    h->p = proto_provider_new(&h->cfg, &h->env, id, NULL);
    return h->p ? 0 : -1;
}

static int h_pay(h_t *h, const char *token) {
    proto_msg_t m = {.type = PROTO_MSG_PAYMENT};
    strcpy(m.id, "job1");
    m.payment.token = (char *)token;
    return proto_provider_on_msg(h->p, &m);
}

static int h_stop(h_t *h) {
    proto_msg_t m = {.type = PROTO_MSG_STOP};
    strcpy(m.id, "job1");
    return proto_provider_on_msg(h->p, &m);
}

static void h_end(h_t *h) {
    proto_provider_free(h->p);
    h->p = NULL;
}

static const char *delta(h_t *h, const char *s) {
    proto_provider_llm_delta(h->p, s, strlen(s));
    return h_drain(h);
}

TEST(happy_path_as_reference_trace) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    ASSERT_STR_EQ(h_drain(&h), "offer 1x10");
    ASSERT_EQ_U64(proto_provider_deadline(h.p), h.vc.now_ms + 3000);

    ASSERT_OK(h_pay(&h, "cashuBtok1"));
    ASSERT_STR_EQ(h_drain(&h), "verify#1 cashuBtok1");
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 10, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist cashuBtok1 10|ack 10 c10|accepted|llm_start");
    ASSERT_EQ_U64(proto_provider_deadline(h.p), UINT64_MAX);

    for (int i = 0; i < 10; i++) {
        char want[64];
        snprintf(want, sizeof want, "chunk %s", reference_tokens[i]);
        ASSERT_STR_EQ(delta(&h, reference_tokens[i]), want);
    }
    /* Lazy: pay_required only once the 11th chunk is ready. */
    ASSERT_STR_EQ(delta(&h, reference_tokens[10]), "pay_required 10/10");
    for (int i = 11; i < 15; i++) ASSERT_STR_EQ(delta(&h, reference_tokens[i]), "");
    ASSERT_EQ_U64(proto_provider_deadline(h.p), h.vc.now_ms + 3000);

    common_vclock_advance(&h.vc, 10);
    ASSERT_OK(h_pay(&h, "cashuBtok2"));
    ASSERT_STR_EQ(h_drain(&h), "verify#2 cashuBtok2");
    ASSERT_OK(proto_provider_payment_verified(h.p, 2, 10, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist cashuBtok2 10|ack 10 c10|chunk  exactly|chunk  fifteen|"
                               "chunk  tokens|chunk  total|chunk .");
    ASSERT_OK(proto_provider_llm_done(h.p, 1, 3, 15, 0));
    ASSERT_STR_EQ(h_drain(&h),
                  "release_slot|result 'Hello world, this is a fake Ollama stream with exactly "
                  "fifteen tokens total.' 20 c15 done|claim 20|done");
    ASSERT_EQ_U64(h.releases, 1);
    ASSERT_EQ_U64(h.cap.active, 0);
    ASSERT_ERR(h_pay(&h, "late"), COMMON_ESTATE);
    ASSERT_STR_EQ(h_drain(&h), "");
    h_end(&h);
}

TEST(payment_timeout_at_start_sends_error_and_no_result) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    common_vclock_advance(&h.vc, 2999);
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "");
    common_vclock_advance(&h.vc, 1);
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|error payment_timeout|done");
    ASSERT_EQ_U64(h.llm_starts, 0);
    ASSERT_EQ_U64(h.claims, 0);
    ASSERT_EQ_U64(proto_provider_deadline(h.p), UINT64_MAX);
    ASSERT_EQ_I64(proto_provider_disconnect(h.p), COMMON_ESTATE); /* no second release */
    ASSERT_EQ_U64(h.releases, 1);
    h_end(&h);
}

static void pay_and_stream_11(test_ctx_t *test_ctx_, h_t *h) {
    ASSERT_OK(h_start(h, "job1"));
    h_drain(h);
    ASSERT_OK(h_pay(h, "t1"));
    ASSERT_OK(proto_provider_payment_verified(h->p, 1, 10, 0));
    h_drain(h);
    for (int i = 0; i < 11; i++) delta(h, reference_tokens[i]);
    ASSERT_TRUE(strstr(h->tr, "pay_required 10/10") != NULL);
}

TEST(payment_timeout_mid_stream_sends_error_then_partial_result) {
    h_t h;
    h_init(&h, 1, 10);
    pay_and_stream_11(test_ctx_, &h);
    if (test_ctx_->failed) return;
    common_vclock_advance(&h.vc, 3000);
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "llm_abort|release_slot|error payment_timeout|"
                               "result 'Hello world, this is a fake Ollama stream with' 10 c10 "
                               "timeout|claim 10|done");
    h_end(&h);
}

TEST(stop_before_payment_never_calls_the_llm) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_stop(&h));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|result '' 0 c0 stopped|done");
    ASSERT_EQ_U64(h.llm_starts, 0);
    ASSERT_EQ_I64(proto_provider_llm_delta(h.p, "x", 1), COMMON_ESTATE);
    h_end(&h);
}

TEST(stop_during_stream_aborts_llm_and_returns_partial) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "t1"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 10, 1));
    ASSERT_STR_EQ(h_drain(&h), "persist t1 10|ack 10 c10|accepted|llm_start");
    delta(&h, "Hello");
    delta(&h, " world");
    ASSERT_OK(h_stop(&h));
    ASSERT_STR_EQ(h_drain(&h),
                  "llm_abort|release_slot|result 'Hello world' 10 c2 stopped|claim 10|done");
    h_end(&h);
}

TEST(stop_while_waiting_for_pay_required) {
    h_t h;
    h_init(&h, 1, 10);
    pay_and_stream_11(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_OK(h_stop(&h)); /* trace-stop.log */
    ASSERT_STR_EQ(h_drain(&h), "llm_abort|release_slot|"
                               "result 'Hello world, this is a fake Ollama stream with' 10 c10 "
                               "stopped|claim 10|done");
    h_end(&h);
}

TEST(disconnect_aborts_llm_releases_once_claims_once) {
    h_t h;
    h_init(&h, 1, 10);
    pay_and_stream_11(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_OK(proto_provider_disconnect(h.p)); /* trace-disconnect-waiting.log */
    ASSERT_STR_EQ(h_drain(&h), "llm_abort|release_slot|claim 10|done");
    ASSERT_EQ_I64(proto_provider_disconnect(h.p), COMMON_ESTATE);
    ASSERT_EQ_I64(proto_provider_tick(h.p), 0);
    common_vclock_advance(&h.vc, 100000);
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "");
    ASSERT_EQ_U64(h.releases, 1);
    ASSERT_EQ_U64(h.claims, 1);
    ASSERT_EQ_U64(h.cap.active, 0);
    h_end(&h);
}

TEST(disconnect_before_payment_releases_without_claim) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(proto_provider_disconnect(h.p));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|done");
    h_end(&h);
}

TEST(disconnect_with_verification_pending_claims_after_verdict) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "t1"));
    h_drain(&h);
    ASSERT_OK(proto_provider_disconnect(h.p));
    ASSERT_STR_EQ(h_drain(&h), "release_slot"); /* done waits for the wallet's verdict */
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 10, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist t1 10|claim 10|done"); /* nothing sent, LLM not started */
    ASSERT_EQ_U64(h.llm_starts, 0);
    h_end(&h);
}

TEST(overpay_is_credited_in_full) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "t25"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 25, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist t25 25|ack 25 c25|accepted|llm_start");
    for (int i = 0; i < 15; i++) delta(&h, reference_tokens[i]);
    ASSERT_TRUE(strstr(h.tr, "pay_required") == NULL);
    ASSERT_OK(proto_provider_llm_done(h.p, 0, 0, 0, 0));
    ASSERT_TRUE(strstr(h_drain(&h), "' 25 c15 done|claim 25|done") != NULL);
    h_end(&h);
}

TEST(sub_chunk_remainders_are_carried) {
    h_t h;
    h_init(&h, 3, 2); /* 3 sats per chunk, cycle 6 */
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "a"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 7, 0)); /* 2 chunks, carry 1 */
    ASSERT_STR_EQ(h_drain(&h), "persist a 7|ack 7 c2|accepted|llm_start");
    proto_provider_stats_t st;
    proto_provider_get_stats(h.p, &st);
    ASSERT_EQ_U64(st.carry, 1);
    ASSERT_STR_EQ(delta(&h, "1"), "chunk 1");
    ASSERT_STR_EQ(delta(&h, "2"), "chunk 2");
    ASSERT_STR_EQ(delta(&h, "3"), "pay_required 6/6");
    ASSERT_OK(h_pay(&h, "b"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 2, 2, 0)); /* underpay: 1+2 = 3 -> 1 chunk */
    ASSERT_STR_EQ(h_drain(&h), "persist b 2|ack 2 c1|chunk 3");
    ASSERT_STR_EQ(delta(&h, "4"), "pay_required 9/6");
    ASSERT_OK(h_pay(&h, "c"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 3, 1, 0)); /* 1 sat: no chunk, carry 1 */
    ASSERT_STR_EQ(h_drain(&h), "persist c 1|ack 1 c0|pay_required 9/6"); /* asks again */
    proto_provider_get_stats(h.p, &st);
    ASSERT_EQ_U64(st.carry, 1);
    ASSERT_OK(h_pay(&h, "d"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 4, 5, 0)); /* 1+5 = 6 -> 2 chunks */
    ASSERT_STR_EQ(h_drain(&h), "persist d 5|ack 5 c2|chunk 4");
    ASSERT_OK(proto_provider_llm_done(h.p, 0, 0, 0, 0));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|result '1234' 15 c4 done|claim 15|done");
    h_end(&h);
}

TEST(generation_buffer_is_bounded_and_never_sent_unpaid) {
    h_t h;
    h_init(&h, 1, 1);
    h.cfg.max_buffer_chunks = 4;
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "t"));
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 1, 0));
    h_drain(&h);
    ASSERT_STR_EQ(delta(&h, "a"), "chunk a");
    ASSERT_STR_EQ(delta(&h, "b"), "pay_required 1/1");
    ASSERT_STR_EQ(delta(&h, "c"), "");
    ASSERT_STR_EQ(delta(&h, "d"), "");
    ASSERT_STR_EQ(delta(&h, "e"), "llm_pause"); /* 4 buffered */
    ASSERT_STR_EQ(delta(&h, "f"), "");          /* in flight after pause: kept */
    proto_provider_stats_t st;
    proto_provider_get_stats(h.p, &st);
    ASSERT_EQ_U64(st.buffered_chunks, 5);
    ASSERT_EQ_U64(st.chunks_sent, 1);
    ASSERT_OK(h_pay(&h, "t2"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 2, 3, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist t2 3|ack 3 c3|chunk b|chunk c|chunk d|pay_required 4/1|"
                               "llm_resume");
    /* A driver that ignores PAUSE is cut off at twice the buffer: abort, reason length. */
    char all[256] = "";
    for (int i = 0; i < 7; i++) strcat(all, delta(&h, "x")), strcat(all, ";");
    ASSERT_STR_EQ(all, ";llm_pause;;;;;llm_abort;"); /* the 7th delta is over the hard cap */
    proto_provider_get_stats(h.p, &st);
    ASSERT_EQ_U64(st.llm_done, 1);
    ASSERT_EQ_U64(st.buffered_chunks, 8);
    ASSERT_OK(h_pay(&h, "t3"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 3, 8, 0));
    ASSERT_TRUE(strstr(h_drain(&h), "result 'abcdefxxxxxx' 12 c12 length") != NULL);
    ASSERT_EQ_U64(h.releases, 1);
    h_end(&h);
}

TEST(bad_token_is_refused_and_job_keeps_waiting_until_timeout) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    common_vclock_advance(&h.vc, 1000);
    ASSERT_OK(h_pay(&h, "cashuBgarbage"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_rejected(h.p, 1, PROTO_CODE_BAD_TOKEN, "Payment failed"));
    ASSERT_STR_EQ(h_drain(&h), "error bad_token");
    ASSERT_OK(h_pay(&h, "spent"));
    h_drain(&h);
    ASSERT_OK(
        proto_provider_payment_rejected(h.p, 2, PROTO_CODE_TOKEN_SPENT, "Token already spent"));
    ASSERT_STR_EQ(h_drain(&h), "error token_spent");
    ASSERT_EQ_U64(h.llm_starts, 0);
    common_vclock_advance(&h.vc, 2000); /* the original deadline, not reset by bad tokens */
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|error payment_timeout|done");
    h_end(&h);
}

TEST(zero_sat_payment_starts_nothing_and_timeout_still_runs) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "zero"));
    h_drain(&h);
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 0, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist zero 0|ack 0 c0");
    ASSERT_EQ_U64(h.llm_starts, 0);
    common_vclock_advance(&h.vc, 3000);
    ASSERT_EQ_U64(proto_provider_deadline(h.p), h.vc.now_ms);
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|error payment_timeout|done");
    h_end(&h);
}

TEST(no_timeout_while_a_verification_is_pending) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "slow"));
    h_drain(&h);
    common_vclock_advance(&h.vc, 10000);
    ASSERT_EQ_U64(proto_provider_deadline(h.p), UINT64_MAX); /* no timer spin meanwhile */
    ASSERT_OK(proto_provider_tick(h.p));
    ASSERT_STR_EQ(h_drain(&h), "");
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 10, 0));
    ASSERT_STR_EQ(h_drain(&h), "persist slow 10|ack 10 c10|accepted|llm_start");
    h_end(&h);
    /* ...but a rejection after the deadline ends the job at once. */
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "slow"));
    h_drain(&h);
    common_vclock_advance(&h.vc, 10000);
    ASSERT_OK(proto_provider_payment_rejected(h.p, 1, PROTO_CODE_BAD_TOKEN, "bad"));
    ASSERT_STR_EQ(h_drain(&h), "error bad_token|release_slot|error payment_timeout|done");
    h_end(&h);
}

TEST(llm_error_sends_error_then_partial_result) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "t"));
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 10, 0));
    h_drain(&h);
    delta(&h, "Hel");
    ASSERT_OK(proto_provider_llm_error(h.p, "ollama: connection refused"));
    ASSERT_STR_EQ(h_drain(&h), "release_slot|error backend|result 'Hel' 10 c1 error|claim 10|done");
    ASSERT_EQ_U64(h.aborts, 0);
    h_end(&h);
}

TEST(utf8_split_across_deltas_is_reassembled) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    ASSERT_OK(h_pay(&h, "t"));
    ASSERT_OK(proto_provider_payment_verified(h.p, 1, 10, 0));
    h_drain(&h);
    ASSERT_STR_EQ(delta(&h, "caf\xc3"), "chunk caf");
    ASSERT_STR_EQ(delta(&h, "\xa9 \xf0\x9f"), "chunk \xc3\xa9 ");
    ASSERT_STR_EQ(delta(&h, "\x98"), "");
    ASSERT_STR_EQ(delta(&h, "\x80!"), "chunk \xf0\x9f\x98\x80!");
    ASSERT_STR_EQ(delta(&h, "bad\xff"), "chunk bad\xef\xbf\xbd"); /* invalid byte -> U+FFFD */
    ASSERT_EQ_I64(proto_provider_llm_delta(h.p, "n\0l", 3), 0);
    ASSERT_STR_EQ(h_drain(&h), "chunk n\xef\xbf\xbdl"); /* NUL never goes on the wire */
    ASSERT_STR_EQ(delta(&h, "end\xe2\x82"), "chunk end");
    ASSERT_OK(proto_provider_llm_done(h.p, 0, 0, 0, 0));
    ASSERT_TRUE(strstr(h_drain(&h), "chunk \xef\xbf\xbd\xef\xbf\xbd|") == h.tr);
    h_end(&h);
}

TEST(messages_of_other_jobs_are_refused) {
    h_t h;
    h_init(&h, 1, 10);
    ASSERT_OK(h_start(&h, "job1"));
    h_drain(&h);
    proto_msg_t m = {.type = PROTO_MSG_STOP};
    strcpy(m.id, "job2");
    ASSERT_ERR(proto_provider_on_msg(h.p, &m), COMMON_EINVAL);
    ASSERT_STR_EQ(h_drain(&h), "");
    h_end(&h);
}

TEST(capacity_slots_are_exact) {
    proto_capacity_t c;
    proto_capacity_init(&c, 2);
    int ok = 0, refused = 0;
    for (int i = 0; i < 5; i++) {
        if (proto_capacity_acquire(&c) == 0)
            ok++;
        else
            refused++;
    }
    ASSERT_EQ_U64(ok, 2);
    ASSERT_EQ_U64(refused, 3);
    ASSERT_OK(proto_capacity_release(&c));
    ASSERT_OK(proto_capacity_acquire(&c));
    ASSERT_OK(proto_capacity_release(&c));
    ASSERT_OK(proto_capacity_release(&c));
    ASSERT_ERR(proto_capacity_release(&c), COMMON_ESTATE); /* never below zero */
    ASSERT_EQ_U64(c.acquired, c.released);
    common_buf_t b = {0};
    ASSERT_OK(proto_encode_error(&b, "job9", PROTO_CODE_CAPACITY, "No capacity (2/2 slots used)"));
    const char want[] = "{\"type\":\"error\",\"id\":\"job9\",\"message\":\"No capacity (2/2 slots "
                        "used)\",\"code\":\"capacity\"}\n";
    ASSERT_EQ_U64(b.len, sizeof want - 1);
    ASSERT_MEM_EQ(b.data, want, b.len);
    b.len = 0;
    ASSERT_OK(proto_encode_error(&b, NULL, PROTO_CODE_BAD_REQUEST, "id: missing"));
    const char want2[] =
        "{\"type\":\"error\",\"message\":\"id: missing\",\"code\":\"bad_request\"}\n";
    ASSERT_EQ_U64(b.len, sizeof want2 - 1);
    ASSERT_MEM_EQ(b.data, want2, b.len);
    common_buf_free(&b);
}

TEST(request_validation) {
    proto_provider_cfg_t cfg = {
        .kind = 5100, .sats_per_chunk = 1, .chunks_per_payment = 10, .max_input = 8};
    proto_msg_t m = {.type = PROTO_MSG_REQUEST};
    strcpy(m.id, "j");
    m.request.kind = 5100;
    m.request.input = "hi";
    char why[96];
    ASSERT_OK(proto_provider_check_request(&cfg, &m, why, sizeof why));
    m.request.kind = 5302;
    ASSERT_ERR(proto_provider_check_request(&cfg, &m, why, sizeof why), PROTO_EBAD_MESSAGE);
    m.request.kind = 5100;
    m.request.input = "";
    ASSERT_ERR(proto_provider_check_request(&cfg, &m, why, sizeof why), PROTO_EBAD_MESSAGE);
    m.request.input = "123456789";
    ASSERT_ERR(proto_provider_check_request(&cfg, &m, why, sizeof why), PROTO_EBAD_MESSAGE);
}

TEST(offer_carries_extensions_when_configured) {
    h_t h;
    h_init(&h, 2, 5);
    static const char *const mints[] = {"http://127.0.0.1:3338"};
    uint8_t pk[33] = {2, 0xab};
    h.cfg.mints = mints;
    h.cfg.n_mints = 1;
    h.cfg.pubkey = pk;
    h.cfg.min_locktime_s = 600;
    ASSERT_OK(h_start(&h, "job1"));
    proto_event_t ev;
    ASSERT_EQ_I64(proto_provider_next_event(h.p, &ev), 1);
    proto_msg_t m;
    ASSERT_OK(proto_msg_decode(ev.data, ev.len - 1, &m, NULL, 0));
    ASSERT_EQ_U64(m.offer.sats_per_chunk, 2);
    ASSERT_EQ_U64(m.offer.mints.n, 1);
    ASSERT_STR_EQ(m.offer.mints.url[0], "http://127.0.0.1:3338");
    ASSERT_EQ_U64(m.offer.has_pubkey, 1);
    ASSERT_MEM_EQ(m.offer.pubkey, pk, 33);
    ASSERT_EQ_U64(m.offer.min_locktime, 600);
    ASSERT_STR_EQ(m.offer.unit, "sat");
    proto_msg_free(&m);
    h_end(&h);
}

TEST_MAIN(TEST_ENTRY(happy_path_as_reference_trace),
          TEST_ENTRY(payment_timeout_at_start_sends_error_and_no_result),
          TEST_ENTRY(payment_timeout_mid_stream_sends_error_then_partial_result),
          TEST_ENTRY(stop_before_payment_never_calls_the_llm),
          TEST_ENTRY(stop_during_stream_aborts_llm_and_returns_partial),
          TEST_ENTRY(stop_while_waiting_for_pay_required),
          TEST_ENTRY(disconnect_aborts_llm_releases_once_claims_once),
          TEST_ENTRY(disconnect_before_payment_releases_without_claim),
          TEST_ENTRY(disconnect_with_verification_pending_claims_after_verdict),
          TEST_ENTRY(overpay_is_credited_in_full), TEST_ENTRY(sub_chunk_remainders_are_carried),
          TEST_ENTRY(generation_buffer_is_bounded_and_never_sent_unpaid),
          TEST_ENTRY(bad_token_is_refused_and_job_keeps_waiting_until_timeout),
          TEST_ENTRY(zero_sat_payment_starts_nothing_and_timeout_still_runs),
          TEST_ENTRY(no_timeout_while_a_verification_is_pending),
          TEST_ENTRY(llm_error_sends_error_then_partial_result),
          TEST_ENTRY(utf8_split_across_deltas_is_reassembled),
          TEST_ENTRY(messages_of_other_jobs_are_refused), TEST_ENTRY(capacity_slots_are_exact),
          TEST_ENTRY(request_validation), TEST_ENTRY(offer_carries_extensions_when_configured))
