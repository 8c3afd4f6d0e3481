/* SPDX-License-Identifier: MIT */
/* The customer's job state machine on a virtual clock (dvm-protocol.md §5), and both cores
 * talking to each other through the codec. */
#include "protocol/proto_customer.h"

#include "common/common_err.h"
#include "protocol/proto_capacity.h"
#include "protocol/proto_provider.h"
#include "tests/protocol/proto_test_util.h"
#include "tests/test.h"

typedef struct {
    common_vclock_t vc;
    common_env_t env;
    proto_customer_cfg_t cfg;
    proto_customer_t *c;
    char tr[16384];
    char out[4096]; /* OUTPUT events concatenated: what stdout shows */
    int done_code, fallback_code, dones;
    uint64_t done_sats, prepare_n, prepare_each;
} h_t;

static void h_init(h_t *h, uint64_t budget) {
    memset(h, 0, sizeof *h);
    h->vc.now_ms = 5000;
    h->env.clock = common_clock_virtual(&h->vc);
    h->cfg.kind = 5100;
    h->cfg.budget = budget;
    h->cfg.max_sats_per_chunk = 5;
    h->cfg.mint_url = "http://127.0.0.1:3338";
    h->cfg.idle_timeout_ms = 30000;
    h->cfg.grace_ms = 3000;
    h->done_code = h->fallback_code = -1;
}

static const char *h_drain(h_t *h) {
    h->tr[0] = 0;
    proto_event_t ev;
    while (proto_customer_next_event(h->c, &ev)) {
        render_event(&ev, h->tr, sizeof h->tr);
        if (ev.kind == PROTO_EV_OUTPUT)
            strncat(h->out, ev.data, sizeof h->out - strlen(h->out) - 1);
        if (ev.kind == PROTO_EV_DONE) {
            h->done_code = ev.code;
            h->done_sats = ev.a;
            h->dones++;
        }
        if (ev.kind == PROTO_EV_FALLBACK) h->fallback_code = ev.code;
        if (ev.kind == PROTO_EV_PREPARE_TOKENS) {
            h->prepare_n = ev.a;
            h->prepare_each = ev.b;
        }
    }
    return h->tr;
}

/* Feed one provider line (as on the wire, without '\n'). */
static const char *recv_line(h_t *h, const char *line) {
    proto_msg_t m;
    if (proto_msg_decode(line, strlen(line), &m, NULL, 0) != 0) return "UNDECODABLE";
    proto_customer_on_msg(h->c, &m);
    proto_msg_free(&m);
    return h_drain(h);
}

static const char *const toks3[] = {"tokA", "tokB", "tokC"};

static const char *const chunk_lines[15] = {
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\"Hello\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" world\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\",\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" this\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" is\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" a\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" fake\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" Ollama\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" stream\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" with\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" exactly\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" fifteen\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" tokens\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" total\"}",
    "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\".\"}",
};
#define OFFER  "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":1,\"chunks_per_payment\":10}"
#define ACK10  "{\"type\":\"payment_ack\",\"id\":\"job1\",\"amount\":10}"
#define PAYREQ "{\"type\":\"pay_required\",\"id\":\"job1\",\"earned\":10,\"next\":10}"
#define FULL   "Hello world, this is a fake Ollama stream with exactly fifteen tokens total."

static void start(test_ctx_t *test_ctx_, h_t *h) {
    h->c = proto_customer_new(&h->cfg, &h->env, "job1", "hi", NULL);
    ASSERT_TRUE(h->c != NULL);
    ASSERT_STR_EQ(h_drain(h), "request hi");
}

TEST(reference_happy_path) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, OFFER), "prepare 3x10"); /* floor(30 / 10) micro-tokens */
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 3));
    ASSERT_STR_EQ(h_drain(&h), "token_sent 0|payment tokA");
    ASSERT_STR_EQ(recv_line(&h, ACK10), "acked 10");
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"accepted\",\"id\":\"job1\"}"), "");
    for (int i = 0; i < 10; i++) recv_line(&h, chunk_lines[i]);
    ASSERT_STR_EQ(recv_line(&h, PAYREQ), "token_sent 1|payment tokB");
    ASSERT_STR_EQ(recv_line(&h, ACK10), "acked 10");
    for (int i = 10; i < 15; i++) recv_line(&h, chunk_lines[i]);
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"result\",\"id\":\"job1\",\"output\":\"" FULL
                                "\",\"total_sats\":20}"),
                  "got_result '" FULL "' 20|done");
    ASSERT_STR_EQ(h.out, FULL);
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_COMPLETE);
    ASSERT_EQ_U64(h.done_sats, 20);
    proto_customer_stats_t st;
    proto_customer_get_stats(h.c, &st);
    ASSERT_EQ_U64(st.tokens_sent, 2); /* tokC never left the wallet */
    ASSERT_EQ_U64(st.sats_acked, 20);
    ASSERT_EQ_U64(st.chunks, 15);
    proto_customer_free(h.c);
}

TEST(price_above_max_stops_and_falls_back) {
    h_t h;
    h_init(&h, 50);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":6,"
                                "\"chunks_per_payment\":10}"),
                  "stop|fallback|done");
    ASSERT_EQ_I64(h.fallback_code, PROTO_OUT_PRICE);
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_PRICE);
    ASSERT_EQ_U64(h.done_sats, 0);
    proto_customer_free(h.c);
}

TEST(mint_not_in_offer_stops_and_falls_back) {
    h_t h;
    h_init(&h, 50);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":1,"
                                "\"chunks_per_payment\":10,\"mints\":[\"https://other\"]}"),
                  "stop|fallback|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_MINT);
    proto_customer_free(h.c);
    /* Ours in the list (trailing slash ignored): accepted, locked offer kept for the wallet. */
    h_init(&h, 50);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":2,"
                                "\"chunks_per_payment\":5,\"mints\":[\"https://other\","
                                "\"http://127.0.0.1:3338/\"],\"pubkey\":\"02aabbccddeeff00112233"
                                "445566778899aabbccddeeff00112233445566778899\",\"min_locktime\":"
                                "600}"),
                  "prepare 5x10");
    const proto_customer_offer_t *o = proto_customer_offer(h.c);
    ASSERT_EQ_U64(o->has_pubkey, 1);
    ASSERT_EQ_U64(o->pubkey[1], 0xaa);
    ASSERT_EQ_U64(o->min_locktime_s, 600);
    ASSERT_EQ_U64(o->cycle_sats, 10);
    proto_customer_free(h.c);
}

TEST(budget_below_one_cycle_falls_back) {
    h_t h;
    h_init(&h, 9);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, OFFER), "stop|fallback|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_BUDGET);
    proto_customer_free(h.c);
}

TEST(budget_exhausted_sends_stop_and_keeps_partial_result) {
    h_t h;
    h_init(&h, 19); /* one 10-sat micro-token; 9 sats never leave the wallet */
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, OFFER), "prepare 1x10");
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 1));
    ASSERT_STR_EQ(h_drain(&h), "token_sent 0|payment tokA");
    recv_line(&h, ACK10);
    for (int i = 0; i < 10; i++) recv_line(&h, chunk_lines[i]);
    ASSERT_STR_EQ(recv_line(&h, PAYREQ), "stop");
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"result\",\"id\":\"job1\",\"output\":\"Hello world, "
                                "this is a fake Ollama stream with\",\"total_sats\":10}"),
                  "got_result 'Hello world, this is a fake Ollama stream with' 10|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_BUDGET);
    ASSERT_EQ_U64(h.done_sats, 10);
    proto_customer_free(h.c);
}

TEST(error_then_partial_result_is_still_delivered) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    recv_line(&h, OFFER);
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 3));
    h_drain(&h);
    recv_line(&h, ACK10);
    for (int i = 0; i < 10; i++) recv_line(&h, chunk_lines[i]);
    recv_line(&h, PAYREQ);
    /* trace-timeout-mid.log: error, then the partial result */
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"error\",\"id\":\"job1\",\"message\":\"Payment timeout "
                                "after 3000ms\"}"),
                  "provider_error -");
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"result\",\"id\":\"job1\",\"output\":\"Hello world, "
                                "this is a fake Ollama stream with\",\"total_sats\":10}"),
                  "got_result 'Hello world, this is a fake Ollama stream with' 10|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_PROVIDER_ERROR);
    proto_customer_free(h.c);
}

TEST(error_without_result_ends_after_grace) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    recv_line(&h, OFFER);
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 3));
    h_drain(&h);
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"error\",\"id\":\"job1\",\"message\":\"spent\","
                                "\"code\":\"token_spent\"}"),
                  "provider_error token_spent|stop");
    common_vclock_advance(&h.vc, 2999);
    ASSERT_OK(proto_customer_tick(h.c));
    ASSERT_STR_EQ(h_drain(&h), "");
    common_vclock_advance(&h.vc, 1);
    ASSERT_OK(proto_customer_tick(h.c));
    ASSERT_STR_EQ(h_drain(&h), "done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_PROVIDER_ERROR);
    proto_customer_free(h.c);
}

TEST(capacity_error_before_offer_falls_back) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"error\",\"id\":\"job1\",\"message\":\"No capacity "
                                "(3/3 slots used)\",\"code\":\"capacity\"}"),
                  "provider_error capacity|fallback|done");
    ASSERT_EQ_I64(h.fallback_code, PROTO_OUT_PROVIDER_ERROR);
    proto_customer_free(h.c);
}

TEST(idle_timeout_not_total_timeout) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    recv_line(&h, OFFER);
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 3));
    h_drain(&h);
    /* A slow but steady stream: 10 chunks 20 s apart (200 s in all) never times out. */
    for (int i = 0; i < 10; i++) {
        common_vclock_advance(&h.vc, 20000);
        ASSERT_OK(proto_customer_tick(h.c));
        recv_line(&h, chunk_lines[i]);
        ASSERT_TRUE(strncmp(h.tr, "output ", 7) == 0);
    }
    common_vclock_advance(&h.vc, 29999);
    ASSERT_OK(proto_customer_tick(h.c));
    ASSERT_STR_EQ(h_drain(&h), "");
    common_vclock_advance(&h.vc, 1);
    ASSERT_OK(proto_customer_tick(h.c));
    ASSERT_STR_EQ(h_drain(&h), "stop|fallback|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_TIMEOUT);
    proto_customer_free(h.c);
}

TEST(provider_disconnect_mid_job_falls_back) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    recv_line(&h, OFFER);
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 3));
    h_drain(&h);
    recv_line(&h, ACK10);
    recv_line(&h, chunk_lines[0]);
    ASSERT_OK(proto_customer_disconnect(h.c));
    ASSERT_STR_EQ(h_drain(&h), "fallback|done");
    ASSERT_EQ_I64(h.fallback_code, PROTO_OUT_DISCONNECTED);
    ASSERT_EQ_U64(h.done_sats, 10); /* budget left for the next provider: 20 */
    ASSERT_EQ_I64(proto_customer_disconnect(h.c), COMMON_ESTATE);
    proto_customer_free(h.c);
}

TEST(user_stop_waits_for_partial_result) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    recv_line(&h, OFFER);
    ASSERT_OK(proto_customer_tokens(h.c, toks3, 3));
    h_drain(&h);
    recv_line(&h, chunk_lines[0]);
    ASSERT_OK(proto_customer_stop(h.c));
    ASSERT_STR_EQ(h_drain(&h), "stop");
    ASSERT_OK(proto_customer_stop(h.c)); /* a second SIGINT sends nothing more */
    ASSERT_STR_EQ(h_drain(&h), "");
    ASSERT_STR_EQ(recv_line(&h, "{\"type\":\"result\",\"id\":\"job1\",\"output\":\"Hello\","
                                "\"total_sats\":10,\"reason\":\"stopped\"}"),
                  "got_result 'Hello' 10|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_STOPPED);
    proto_customer_free(h.c);
    /* Before the offer: stop and done at once. */
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    ASSERT_OK(proto_customer_stop(h.c));
    ASSERT_STR_EQ(h_drain(&h), "stop|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_STOPPED);
    proto_customer_free(h.c);
}

TEST(wallet_failure) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    recv_line(&h, OFFER);
    ASSERT_OK(proto_customer_tokens_failed(h.c));
    ASSERT_STR_EQ(h_drain(&h), "stop|done");
    ASSERT_EQ_I64(h.done_code, PROTO_OUT_PAYMENT_FAILED);
    proto_customer_free(h.c);
}

TEST(other_job_ids_refused) {
    h_t h;
    h_init(&h, 30);
    start(test_ctx_, &h);
    if (test_ctx_->failed) return;
    proto_msg_t m;
    const char *l = "{\"type\":\"chunk\",\"id\":\"job2\",\"data\":\"x\"}";
    ASSERT_OK(proto_msg_decode(l, strlen(l), &m, NULL, 0));
    ASSERT_ERR(proto_customer_on_msg(h.c, &m), COMMON_EINVAL);
    proto_msg_free(&m);
    ASSERT_STR_EQ(h_drain(&h), "");
    proto_customer_free(h.c);
}

/* ---- both cores wired through the codec, with a fake wallet and LLM ---------------- */

typedef struct {
    common_vclock_t vc;
    common_env_t env;
    proto_capacity_t cap;
    proto_provider_t *p;
    proto_customer_t *c;
    int llm_running, llm_aborted, releases, claims, llm_calls;
    uint64_t claimed, persisted;
    size_t next_llm;
    int p_done, c_done, c_outcome;
    char out[4096];
    const char *const *llm;
    size_t llm_n;
    uint64_t pay_value; /* what the wallet verifies each token as */
} net_t;

static void pipe_line(proto_msg_t *m, const char *data, size_t len) {
    if (proto_msg_decode(data, len - 1, m, NULL, 0) != 0) abort();
}

/* Move events until both sides are quiet; the LLM emits one delta per round. */
static void net_run(net_t *n) {
    for (int round = 0; round < 1000; round++) {
        int moved = 0;
        proto_event_t ev;
        while (!n->p_done && proto_provider_next_event(n->p, &ev)) {
            moved = 1;
            proto_msg_t m;
            switch (ev.kind) {
            case PROTO_EV_SEND:
                pipe_line(&m, ev.data, ev.len);
                if (!n->c_done) proto_customer_on_msg(n->c, &m);
                proto_msg_free(&m);
                break;
            case PROTO_EV_VERIFY_TOKEN:
                proto_provider_payment_verified(n->p, ev.a, n->pay_value, 1);
                break;
            case PROTO_EV_PERSIST_TOKEN: n->persisted += ev.a; break;
            case PROTO_EV_LLM_START:
                n->llm_running = 1;
                n->llm_calls++;
                break;
            case PROTO_EV_LLM_ABORT:
                n->llm_running = 0;
                n->llm_aborted = 1;
                break;
            case PROTO_EV_RELEASE_SLOT:
                n->releases++;
                proto_capacity_release(&n->cap);
                break;
            case PROTO_EV_CLAIM:
                n->claims++;
                n->claimed += ev.a;
                break;
            case PROTO_EV_DONE: n->p_done = 1; break;
            default: break;
            }
        }
        while (!n->c_done && proto_customer_next_event(n->c, &ev)) {
            moved = 1;
            proto_msg_t m;
            switch (ev.kind) {
            case PROTO_EV_SEND:
                pipe_line(&m, ev.data, ev.len);
                if (!n->p_done) proto_provider_on_msg(n->p, &m);
                proto_msg_free(&m);
                break;
            case PROTO_EV_PREPARE_TOKENS: {
                static const char *const t[] = {"mt0", "mt1", "mt2", "mt3", "mt4", "mt5"};
                proto_customer_tokens(n->c, t, ev.a < 6 ? ev.a : 6);
                break;
            }
            case PROTO_EV_OUTPUT: strcat(n->out, ev.data); break;
            case PROTO_EV_DONE:
                n->c_done = 1;
                n->c_outcome = ev.code;
                break;
            default: break;
            }
        }
        if (n->llm_running && !n->p_done) {
            moved = 1;
            common_vclock_advance(&n->vc, 20);
            if (n->next_llm < n->llm_n) {
                const char *d = n->llm[n->next_llm++];
                proto_provider_llm_delta(n->p, d, strlen(d));
            } else {
                n->llm_running = 0;
                proto_provider_llm_done(n->p, 1, 2, n->llm_n, 0);
            }
        }
        if (!moved) return;
    }
}

static const char *const words[15] = {"Hello",    " world",   ",",       " this",   " is",
                                      " a",       " fake",    " Ollama", " stream", " with",
                                      " exactly", " fifteen", " tokens", " total",  "."};

static void net_init(net_t *n, uint64_t budget, uint64_t spc, uint64_t cpp, uint64_t pay) {
    memset(n, 0, sizeof *n);
    n->vc.now_ms = 1;
    n->env.clock = common_clock_virtual(&n->vc);
    proto_capacity_init(&n->cap, 1);
    proto_capacity_acquire(&n->cap);
    proto_provider_cfg_t pc = {
        .kind = 5100, .sats_per_chunk = spc, .chunks_per_payment = cpp, .payment_timeout_ms = 3000};
    proto_customer_cfg_t cc = {.kind = 5100, .budget = budget, .max_sats_per_chunk = 5};
    n->c = proto_customer_new(&cc, &n->env, "e2e", "hi", NULL);
    /* The provider core is created when the request arrives; here directly. */
    proto_event_t ev;
    proto_customer_next_event(n->c, &ev); /* the request line */
    n->p = proto_provider_new(&pc, &n->env, "e2e", NULL);
    n->llm = words;
    n->llm_n = 15;
    n->pay_value = pay;
}

TEST(both_cores_happy_path_two_payments) {
    net_t n;
    net_init(&n, 30, 1, 10, 10);
    net_run(&n);
    ASSERT_EQ_U64(n.c_done, 1);
    ASSERT_EQ_U64(n.p_done, 1);
    ASSERT_EQ_I64(n.c_outcome, PROTO_OUT_COMPLETE);
    ASSERT_STR_EQ(n.out, FULL);
    ASSERT_EQ_U64(n.persisted, 20);
    ASSERT_EQ_U64(n.claimed, 20);
    ASSERT_EQ_U64(n.claims, 1);
    ASSERT_EQ_U64(n.releases, 1);
    ASSERT_EQ_U64(n.cap.active, 0);
    proto_customer_stats_t st;
    proto_customer_get_stats(n.c, &st);
    ASSERT_EQ_U64(st.tokens_sent, 2);
    ASSERT_EQ_U64(st.sats_acked, 20);
    proto_provider_free(n.p);
    proto_customer_free(n.c);
}

TEST(both_cores_budget_runs_out) {
    net_t n;
    net_init(&n, 10, 1, 10, 10);
    net_run(&n);
    ASSERT_EQ_I64(n.c_outcome, PROTO_OUT_BUDGET);
    ASSERT_STR_EQ(n.out, "Hello world, this is a fake Ollama stream with");
    ASSERT_EQ_U64(n.llm_aborted, 1);
    ASSERT_EQ_U64(n.claimed, 10);
    ASSERT_EQ_U64(n.releases, 1);
    proto_provider_free(n.p);
    proto_customer_free(n.c);
}

TEST(both_cores_carry_with_two_sat_chunks) {
    net_t n;
    /* 2 sats per chunk, 3 per payment (cycle 6); the wallet's tokens are worth 7 each:
     * 7 -> 3 chunks carry 1, 7 -> 4 chunks carry 0 (7+1 = 8), ... */
    net_init(&n, 60, 2, 3, 7);
    net_run(&n);
    ASSERT_EQ_I64(n.c_outcome, PROTO_OUT_COMPLETE);
    ASSERT_STR_EQ(n.out, FULL);
    /* 15 chunks * 2 sats = 30 sats of output; 5 tokens of 7 = 35 verified (carry 5 unused) */
    ASSERT_EQ_U64(n.claimed, 35);
    proto_provider_free(n.p);
    proto_customer_free(n.c);
}

TEST_MAIN(TEST_ENTRY(reference_happy_path), TEST_ENTRY(price_above_max_stops_and_falls_back),
          TEST_ENTRY(mint_not_in_offer_stops_and_falls_back),
          TEST_ENTRY(budget_below_one_cycle_falls_back),
          TEST_ENTRY(budget_exhausted_sends_stop_and_keeps_partial_result),
          TEST_ENTRY(error_then_partial_result_is_still_delivered),
          TEST_ENTRY(error_without_result_ends_after_grace),
          TEST_ENTRY(capacity_error_before_offer_falls_back),
          TEST_ENTRY(idle_timeout_not_total_timeout),
          TEST_ENTRY(provider_disconnect_mid_job_falls_back),
          TEST_ENTRY(user_stop_waits_for_partial_result), TEST_ENTRY(wallet_failure),
          TEST_ENTRY(other_job_ids_refused), TEST_ENTRY(both_cores_happy_path_two_payments),
          TEST_ENTRY(both_cores_budget_runs_out), TEST_ENTRY(both_cores_carry_with_two_sat_chunks))
