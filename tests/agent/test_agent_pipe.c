/* SPDX-License-Identifier: MIT */
/*
 * The pipeline generator (agent_pipe) in one process, on 127.0.0.1: a real sub-provider
 * (agent_server over agent_tcp, secret-stream over TCP) and the pipe's real sub-customer
 * (customer_run), driven through the agent_gen_t interface as agent_server drives it.
 *
 * TEST DOUBLES (defined in this file only): the generators ("gen": "w0 w1 ..." on a timer,
 * optional failure after N deltas) stand in for the models of both agents; the payments are
 * "tok:<sats>:<serial>" strings that the provider double credits at face value. They are not
 * Cashu: the real wallet path is covered by scripts/e2e/pipeline.sh. What is tested here is
 * the generator contract (end exactly once, cancel semantics, also from inside on_delta),
 * batching while the sub-stream continues, failure propagation, and that the sats the
 * sub-customer sent are the sats the sub-provider verified.
 */
#include "agent/agent_pipe.h"
#include "agent/agent_server.h"
#include "agent/agent_tcp.h"
#include "common/common_err.h"
#include "dht/dht_tcp.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- deferred calls -------------------------------------------------------------------- */

typedef struct later {
    uv_timer_t t;
    void (*fn)(struct later *);
    void *a, *b;
    uint64_t x, y;
    void *cb;
} later_t;

static void later_free(uv_handle_t *h) {
    free(h->data);
}
static void later_fire(uv_timer_t *t) {
    later_t *l = t->data;
    l->fn(l);
    uv_close((uv_handle_t *)&l->t, later_free);
}
static later_t *later(uv_loop_t *loop, void (*fn)(later_t *)) {
    later_t *l = calloc(1, sizeof *l);
    l->fn = fn;
    uv_timer_init(loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, later_fire, 0, 0);
    return l;
}

/* ---- TEST DOUBLE: generator ----------------------------------------------------------- */

typedef struct gen {
    uv_loop_t *loop;
    const char *prefix;
    int ndeltas, tick_ms, fail_after; /* fail_after < 0: never */
    int fail_start;                   /* start() refuses */
    int starts, cancels, ends, emitted, live;
    char prompts[8192];
    size_t prompts_len;
} gen_t;

typedef struct grun {
    gen_t *g;
    uv_timer_t t;
    int i, in_delta, cancel_pending, ended;
    agent_gen_cbs_t cbs;
    void *ud;
} grun_t;

static void grun_free(uv_handle_t *h) {
    free(h->data);
}
static void grun_end(grun_t *r, agent_llm_end_t end) {
    if (r->ended) return;
    r->ended = 1;
    uv_timer_stop(&r->t);
    r->g->live--;
    r->g->ends++;
    agent_llm_result_t res;
    memset(&res, 0, sizeof res);
    res.end = end;
    res.err = end == AGENT_LLM_ERROR ? LLM_EBACKEND : 0;
    res.message = end == AGENT_LLM_ERROR ? "test double failed" : "";
    res.reason = "";
    res.has_usage = end == AGENT_LLM_DONE;
    res.prompt_tokens = 2;
    res.completion_tokens = (uint64_t)r->i;
    r->cbs.on_end(r->ud, &res);
    uv_close((uv_handle_t *)&r->t, grun_free);
}
static void grun_tick(uv_timer_t *t) {
    grun_t *r = t->data;
    gen_t *g = r->g;
    if (g->fail_after >= 0 && r->i >= g->fail_after) {
        grun_end(r, AGENT_LLM_ERROR);
        return;
    }
    char w[32];
    int n = snprintf(w, sizeof w, "%s%d ", g->prefix, r->i++);
    g->emitted++;
    r->in_delta = 1;
    r->cbs.on_delta(r->ud, w, (size_t)n);
    r->in_delta = 0;
    if (r->cancel_pending)
        grun_end(r, AGENT_LLM_STOPPED);
    else if (r->i >= g->ndeltas)
        grun_end(r, AGENT_LLM_DONE);
}
static void *g_start(void *self, const agent_llm_params_t *p, const agent_gen_cbs_t *cbs, void *ud,
                     int *err) {
    gen_t *g = self;
    if (g->fail_start) {
        *err = LLM_EBACKEND;
        return NULL;
    }
    size_t pl = strlen(p->prompt);
    if (g->prompts_len + pl + 1 < sizeof g->prompts) {
        memcpy(g->prompts + g->prompts_len, p->prompt, pl);
        g->prompts_len += pl;
        g->prompts[g->prompts_len++] = '|';
        g->prompts[g->prompts_len] = 0;
    }
    grun_t *r = calloc(1, sizeof *r);
    r->g = g;
    r->cbs = *cbs;
    r->ud = ud;
    uv_timer_init(g->loop, &r->t);
    r->t.data = r;
    uv_timer_start(&r->t, grun_tick, (uint64_t)g->tick_ms, (uint64_t)g->tick_ms);
    g->starts++;
    g->live++;
    return r;
}
static void g_cancel(void *self, void *h) {
    grun_t *r = h;
    ((gen_t *)self)->cancels++;
    if (r->in_delta)
        r->cancel_pending = 1;
    else
        grun_end(r, AGENT_LLM_STOPPED);
}
static const agent_gen_ops_t gen_ops = {g_start, g_cancel};

/* ---- TEST DOUBLE: payments (provider side) -------------------------------------------- */

typedef struct ppay {
    uv_loop_t *loop;
    uint64_t verified;
} ppay_t;

static void pv_fire(later_t *l) {
    ((agent_pay_verdict_cb)l->cb)(l->a, 0, l->x, 0, "");
}
static int pv_verify(void *self, const char *token, const agent_pay_policy_t *pol,
                     agent_pay_verdict_cb cb, void *ud) {
    (void)pol;
    ppay_t *p = self;
    unsigned long long amt = 0, serial = 0;
    if (sscanf(token, "tok:%llu:%llu", &amt, &serial) != 2) amt = 0;
    p->verified += amt;
    later_t *l = later(p->loop, pv_fire);
    l->cb = (void *)cb;
    l->a = ud;
    l->x = amt;
    return 0;
}
static int pv_persist(void *self, int64_t row, const char *token, uint64_t amount, int locked) {
    (void)self, (void)row, (void)token, (void)amount, (void)locked;
    return 0;
}
static int pv_claim(void *self, int64_t row) {
    (void)self, (void)row;
    return 0;
}
static int pv_totals(void *self, uint64_t *claimed, uint64_t *pending) {
    *claimed = ((ppay_t *)self)->verified;
    *pending = 0;
    return 0;
}
static void pv_close(void *self) {
    (void)self;
}
static const agent_pay_ops_t ppay_ops = {pv_verify, pv_persist, pv_claim, pv_totals, pv_close};

/* ---- TEST DOUBLE: payments (the pipe's sub-customer side) ----------------------------- */

typedef struct cpay {
    uv_loop_t *loop;
    uint64_t sent, serial, each, handles, freed;
    unsigned outstanding;
} cpay_t;

static void cp_fire(later_t *l) {
    cpay_t *c = l->b;
    c->outstanding--;
    size_t n = (size_t)l->x;
    char **toks = calloc(n, sizeof *toks);
    for (size_t i = 0; i < n; i++) {
        toks[i] = malloc(48);
        snprintf(toks[i], 48, "tok:%llu:%llu", (unsigned long long)l->y,
                 (unsigned long long)c->serial++);
    }
    ((customer_pay_tokens_cb)l->cb)(l->a, 0, (const char *const *)toks, n);
    for (size_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
}
static int cp_prepare(void *self, uint64_t count, uint64_t each, const uint8_t *pk, uint64_t lt,
                      customer_pay_tokens_cb cb, void *ud) {
    (void)pk, (void)lt;
    cpay_t *c = self;
    c->outstanding++;
    c->each = each;
    later_t *l = later(c->loop, cp_fire);
    l->cb = (void *)cb;
    l->a = ud;
    l->b = c;
    l->x = count > 64 ? 64 : count;
    l->y = each;
    return 0;
}
static int cp_mark(void *self, uint64_t i) {
    (void)i;
    cpay_t *c = self;
    c->sent += c->each;
    return 0;
}
static int cp_release(void *self) {
    (void)self;
    return 0;
}
static void cp_close(void *self) {
    (void)self;
}
static const customer_pay_ops_t cpay_ops = {cp_prepare, cp_mark, cp_release, cp_close};

static int pay_new(void *ud, customer_pay_t *out) {
    cpay_t *c = ud;
    c->handles++;
    out->ops = &cpay_ops;
    out->self = c;
    out->name = "test-double";
    return 0;
}
static unsigned pay_busy(void *ud, const customer_pay_t *p) {
    (void)p;
    return ((cpay_t *)ud)->outstanding;
}
static void pay_free(void *ud, customer_pay_t *p) {
    (void)p;
    ((cpay_t *)ud)->freed++;
}

/* ---- world ---------------------------------------------------------------------------- */

typedef struct world {
    uv_loop_t loop;
    common_log_t log;
    common_env_t env;
    gen_t sub, local;
    agent_gen_t subg, localg;
    ppay_t ppay;
    agent_pay_t pay;
    agent_server_t *srv;
    dht_tcp_server_t *tcp;
    dht_keypair_t srv_kp, kp;
    const char *mints[1];
    char addr[64];
    char *peers[1];
    cpay_t cpay;
    agent_pipe_t *pipe;
    agent_gen_t pg;
    /* the outer job */
    void *h;
    char out[8192];
    size_t outlen;
    int deltas, ended, end_kind, in_delta, end_inside_delta, cancel_in_delta, returned;
    int sub_emitted_at_first;
    char msg[256];
    int has_usage;
    uint64_t completion;
} world_t;

typedef struct wopts {
    int sub_n, sub_tick, sub_fail, local_n, local_fail_start;
    uint64_t budget, flush_ms;
    size_t batch;
    const char *peer; /* NULL: the in-process provider */
} wopts_t;

static void world_init(world_t *w, const wopts_t *o) {
    memset(w, 0, sizeof *w);
    uv_loop_init(&w->loop);
    common_log_init(&w->log, "test", stderr);
    w->log.level = getenv("TEST_DEBUG") ? COMMON_LOG_DEBUG : COMMON_LOG_ERROR;
    common_env_default(&w->env, &w->loop, &w->log);
    w->sub = (gen_t){.loop = &w->loop,
                     .prefix = "w",
                     .ndeltas = o->sub_n,
                     .tick_ms = o->sub_tick,
                     .fail_after = o->sub_fail};
    w->local = (gen_t){.loop = &w->loop,
                       .prefix = "L",
                       .ndeltas = o->local_n,
                       .tick_ms = 1,
                       .fail_after = -1,
                       .fail_start = o->local_fail_start};
    w->subg = (agent_gen_t){&gen_ops, &w->sub};
    w->localg = (agent_gen_t){&gen_ops, &w->local};
    w->ppay.loop = &w->loop;
    w->pay = (agent_pay_t){&ppay_ops, &w->ppay, "test-double"};
    w->mints[0] = "http://mint.test";
    agent_server_cfg_t sc;
    memset(&sc, 0, sizeof sc);
    sc.job.kind = 5100;
    sc.job.sats_per_chunk = 1;
    sc.job.chunks_per_payment = 5;
    sc.job.payment_timeout_ms = 5000;
    sc.job.mints = w->mints;
    sc.job.n_mints = 1;
    sc.max_jobs = 4;
    sc.unlocked = AGENT_UNLOCKED_PEEK;
    sc.model = "double";
    sc.version = "test";
    int err = 0;
    w->srv = agent_server_new(&w->loop, &w->env, &sc, &w->subg, &w->pay, NULL, &err);
    dht_crypto_keypair_random(&w->srv_kp);
    dht_crypto_keypair_random(&w->kp);
    w->tcp = agent_tcp_listen(&w->loop, &w->env, &w->srv_kp, "127.0.0.1", 0, w->srv, &err);
    snprintf(w->addr, sizeof w->addr, "%s", o->peer ? o->peer : "127.0.0.1:0");
    if (!o->peer) snprintf(w->addr, sizeof w->addr, "127.0.0.1:%u", dht_tcp_server_port(w->tcp));
    w->peers[0] = w->addr;
    w->cpay.loop = &w->loop;
    agent_pipe_cfg_t pc;
    memset(&pc, 0, sizeof pc);
    pc.kind = 5302;
    pc.sub_kind = 5100;
    pc.sub_budget = o->budget;
    pc.max_sats_per_chunk = 2;
    pc.batch_chars = o->batch;
    pc.mint_url = "http://mint.test";
    pc.prompt_template = "<{lang}>{text}";
    pc.target_lang = "French";
    pc.idle_timeout_ms = 5000;
    pc.flush_ms = o->flush_ms;
    agent_pipe_deps_t d;
    memset(&d, 0, sizeof d);
    d.local = &w->localg;
    d.kp = &w->kp;
    d.peers = w->peers;
    d.npeers = 1;
    d.pay_new = pay_new;
    d.pay_busy = pay_busy;
    d.pay_free = pay_free;
    d.pay_ud = &w->cpay;
    w->pipe = agent_pipe_new(&w->loop, &w->env, &pc, &d, &err);
    agent_pipe_gen(w->pipe, &w->pg);
}

static int run_until(world_t *w, int (*cond)(world_t *), uint64_t ms) {
    uv_update_time(&w->loop);
    uint64_t end = uv_now(&w->loop) + ms;
    while (!cond(w)) {
        if (uv_now(&w->loop) > end) return 0;
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_update_time(&w->loop);
    }
    return 1;
}
static int is_ended(world_t *w) {
    return w->ended;
}
static int has_delta(world_t *w) {
    return w->deltas > 0 || w->ended;
}
static int pipe_idle(world_t *w) {
    return agent_pipe_busy(w->pipe) == 0;
}
static int sub_cancelled(world_t *w) {
    return w->sub.cancels > 0 && w->sub.live == 0;
}
static int srv_idle_flag;
static void srv_idle(void *ud) {
    (void)ud;
    srv_idle_flag = 1;
}
static int srv_is_idle(world_t *w) {
    (void)w;
    return srv_idle_flag;
}

static void world_close(world_t *w) {
    run_until(w, pipe_idle, 5000);
    srv_idle_flag = 0;
    agent_server_shutdown(w->srv, srv_idle, NULL);
    run_until(w, srv_is_idle, 3000);
    agent_server_close_all(w->srv);
    dht_tcp_server_close(w->tcp);
    for (int i = 0; i < 20; i++) uv_run(&w->loop, UV_RUN_NOWAIT);
    agent_server_free(w->srv);
    agent_pipe_free(w->pipe);
    dht_crypto_keypair_wipe(&w->srv_kp);
    dht_crypto_keypair_wipe(&w->kp);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

/* outer callbacks (what agent_server would be) */
static void o_delta(void *ud, const char *text, size_t len) {
    world_t *w = ud;
    if (w->deltas == 0) w->sub_emitted_at_first = w->sub.emitted;
    w->deltas++;
    if (w->outlen + len < sizeof w->out) {
        memcpy(w->out + w->outlen, text, len);
        w->outlen += len;
    }
    if (w->cancel_in_delta && w->deltas == 1) {
        w->in_delta = 1;
        w->pg.ops->cancel(w->pg.self, w->h);
        w->in_delta = 0;
        w->returned = 1;
    }
}
static void o_end(void *ud, const agent_llm_result_t *res) {
    world_t *w = ud;
    w->ended++;
    w->end_kind = (int)res->end;
    w->end_inside_delta = w->in_delta;
    w->has_usage = res->has_usage;
    w->completion = res->completion_tokens;
    snprintf(w->msg, sizeof w->msg, "%s", res->message ? res->message : "");
}
static void start_outer(world_t *w) {
    agent_llm_params_t p;
    memset(&p, 0, sizeof p);
    p.prompt = "tell a story";
    agent_gen_cbs_t cbs = {o_delta, o_end};
    int err = 0;
    w->h = w->pg.ops->start(w->pg.self, &p, &cbs, w, &err);
}

static const wopts_t BASE = {
    .sub_n = 40, .sub_tick = 5, .sub_fail = -1, .local_n = 3, .budget = 100, .batch = 30};

/* ---- tests ---------------------------------------------------------------------------- */

TEST(helpers) {
    char *s = agent_pipe_expand("T {lang} {kind}: {text}{x}", "abc", 3, "French", 5302);
    ASSERT_STR_EQ(s, "T French 5302: abc{x}");
    free(s);
    s = agent_pipe_expand(agent_pipe_default_template(5302), "hola", 4, NULL, 5302);
    ASSERT_TRUE(strstr(s, "English") != NULL && strstr(s, "hola") != NULL);
    free(s);
    ASSERT_STR_EQ(agent_pipe_default_template(5100), "{text}");
    char why[200];
    ASSERT_OK(agent_pipe_channel_check("p2p", why, sizeof why));
    ASSERT_OK(agent_pipe_channel_check(NULL, why, sizeof why));
    ASSERT_ERR(agent_pipe_channel_check("api", why, sizeof why), COMMON_EINVAL);
    ASSERT_TRUE(strstr(why, "SUB_CHANNEL=api") != NULL);
    ASSERT_ERR(agent_pipe_channel_check("carrier-pigeon", why, sizeof why), COMMON_EINVAL);
}

TEST(streams_batches_while_sub_streams) {
    world_t w;
    world_init(&w, &BASE);
    start_outer(&w);
    ASSERT_TRUE(w.h != NULL);
    ASSERT_EQ_I64(w.ended, 0); /* never from inside start */
    ASSERT_TRUE(run_until(&w, is_ended, 10000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_DONE);
    ASSERT_EQ_I64(w.ended, 1);
    /* the first outer delta came while the sub-provider was still generating */
    ASSERT_GT(w.sub_emitted_at_first, 0);
    ASSERT_TRUE(w.sub_emitted_at_first < 40);
    /* every batch went through the local model; the batches concatenated = the sub text */
    ASSERT_GE(w.local.starts, 3);
    char expect[1024] = "", got[4096] = "";
    for (int i = 0; i < 40; i++)
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "w%d ", i);
    for (char *p = strtok(w.local.prompts, "|"); p; p = strtok(NULL, "|")) {
        ASSERT_TRUE(strncmp(p, "<French>", 8) == 0);
        ASSERT_LE(strlen(p + 8), 30);
        strcat(got, p + 8);
    }
    ASSERT_STR_EQ(got, expect);
    /* outer output = the local outputs, separated */
    ASSERT_EQ_U64(w.completion, (uint64_t)(3 * w.local.starts));
    ASSERT_TRUE(w.has_usage);
    ASSERT_TRUE(strncmp(w.out, "L0 L1 L2 L0 ", 12) == 0);
    /* money: what the sub-customer sent is what the sub-provider verified */
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    agent_pipe_stats_t st;
    agent_pipe_get_stats(w.pipe, &st);
    ASSERT_GT(w.cpay.sent, 0);
    ASSERT_EQ_U64(w.cpay.sent, w.ppay.verified);
    ASSERT_EQ_U64(st.sats_paid, w.cpay.sent);
    ASSERT_EQ_U64(st.jobs_done, 1);
    ASSERT_EQ_U64(w.cpay.handles, 1);
    ASSERT_EQ_U64(w.cpay.freed, 1);
    world_close(&w);
}

TEST(cancel_stops_the_sub_job_at_once) {
    world_t w;
    wopts_t o = BASE;
    o.sub_n = 400;
    world_init(&w, &o);
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, has_delta, 10000));
    ASSERT_EQ_I64(w.ended, 0);
    w.pg.ops->cancel(w.pg.self, w.h);
    ASSERT_EQ_I64(w.ended, 1); /* before cancel returned */
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_STOPPED);
    int deltas = w.deltas;
    uv_update_time(&w.loop);
    uint64_t t0 = uv_now(&w.loop);
    ASSERT_TRUE(run_until(&w, sub_cancelled, 1000)); /* the sub-provider's model stopped */
    uv_update_time(&w.loop);
    ASSERT_LE(uv_now(&w.loop) - t0, 1000);
    ASSERT_TRUE(w.sub.emitted < 400);
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    ASSERT_EQ_I64(w.deltas, deltas); /* nothing after the end */
    ASSERT_EQ_I64(w.ended, 1);
    ASSERT_EQ_U64(w.cpay.sent, w.ppay.verified);
    world_close(&w);
}

TEST(cancel_from_inside_on_delta) {
    world_t w;
    wopts_t o = BASE;
    o.sub_n = 400;
    world_init(&w, &o);
    w.cancel_in_delta = 1;
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, is_ended, 10000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_STOPPED);
    ASSERT_EQ_I64(w.end_inside_delta, 0); /* deferred until on_delta returned */
    ASSERT_EQ_I64(w.returned, 1);
    ASSERT_EQ_I64(w.deltas, 1);
    ASSERT_TRUE(run_until(&w, sub_cancelled, 1000));
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    ASSERT_EQ_I64(w.ended, 1);
    world_close(&w);
}

TEST(sub_failure_ends_with_error) {
    world_t w;
    wopts_t o = BASE;
    o.sub_fail = 20;
    world_init(&w, &o);
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, is_ended, 10000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_ERROR);
    ASSERT_TRUE(strstr(w.msg, "sub-task (kind 5100) failed") != NULL);
    ASSERT_GT(w.outlen, 0); /* partial output was streamed before */
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    agent_pipe_stats_t st;
    agent_pipe_get_stats(w.pipe, &st);
    ASSERT_EQ_U64(st.jobs_failed, 1);
    ASSERT_EQ_U64(w.cpay.sent, w.ppay.verified);
    world_close(&w);
}

TEST(local_failure_stops_the_sub_job) {
    world_t w;
    wopts_t o = BASE;
    o.sub_n = 400;
    o.local_fail_start = 1;
    world_init(&w, &o);
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, is_ended, 10000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_ERROR);
    ASSERT_TRUE(strstr(w.msg, "local model") != NULL);
    ASSERT_TRUE(run_until(&w, sub_cancelled, 1000));
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    world_close(&w);
}

TEST(no_sub_provider) {
    world_t w;
    wopts_t o = BASE;
    o.peer = "127.0.0.1:1";
    world_init(&w, &o);
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, is_ended, 10000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_ERROR);
    ASSERT_TRUE(strstr(w.msg, "no sub-provider") != NULL);
    ASSERT_EQ_I64(w.deltas, 0);
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    world_close(&w);
}

TEST(sub_budget_exhausted_ends_as_length) {
    world_t w;
    wopts_t o = BASE;
    o.budget = 10; /* two cycles of 5 chunks, of 40 */
    world_init(&w, &o);
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, is_ended, 15000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_LENGTH);
    ASSERT_GT(w.outlen, 0);
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    ASSERT_EQ_U64(w.cpay.sent, 10);
    ASSERT_EQ_U64(w.ppay.verified, 10);
    world_close(&w);
}

TEST(slow_sub_provider_partial_batches) {
    world_t w;
    wopts_t o = BASE;
    o.sub_n = 12;
    o.sub_tick = 60; /* ~0.7 s of sub-output, far below one 500-char batch */
    o.batch = 500;
    o.flush_ms = 150;
    world_init(&w, &o);
    start_outer(&w);
    ASSERT_TRUE(run_until(&w, is_ended, 10000));
    ASSERT_EQ_I64(w.end_kind, AGENT_LLM_DONE);
    ASSERT_TRUE(w.sub_emitted_at_first < 12); /* output before the sub-provider finished */
    ASSERT_GE(w.local.starts, 2);
    char expect[256] = "", got[1024] = "";
    for (int i = 0; i < 12; i++)
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "w%d ", i);
    for (char *p = strtok(w.local.prompts, "|"); p; p = strtok(NULL, "|")) strcat(got, p + 8);
    ASSERT_STR_EQ(got, expect);
    ASSERT_TRUE(run_until(&w, pipe_idle, 5000));
    world_close(&w);
}

TEST_MAIN(TEST_ENTRY(slow_sub_provider_partial_batches), TEST_ENTRY(helpers),
          TEST_ENTRY(streams_batches_while_sub_streams),
          TEST_ENTRY(cancel_stops_the_sub_job_at_once), TEST_ENTRY(cancel_from_inside_on_delta),
          TEST_ENTRY(sub_failure_ends_with_error), TEST_ENTRY(local_failure_stops_the_sub_job),
          TEST_ENTRY(no_sub_provider), TEST_ENTRY(sub_budget_exhausted_ends_as_length))
