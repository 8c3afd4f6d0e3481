/* SPDX-License-Identifier: MIT */
/*
 * The agent runtime (agent_server over agent_tcp) and the customer runtime (customer_run
 * over customer_tcp) in one process, on 127.0.0.1, with real secret-stream connections.
 *
 * PAYMENTS HERE ARE A TEST DOUBLE: "fakemint" below issues strings like
 * "fake:<serial>:<amount>:<L|U>:<mint>" and checks them against its own table. It is not
 * Cashu and has no cryptography; it exists only in this test file so that the runtimes'
 * money rules (verify before credit, refusal codes, persist, claim once, release unsent,
 * balance conservation) can be tested while the real wallet (cashu/) is being written.
 * The generator is a test double too ("fakegen": w0 w1 w2 ... on a timer).
 *
 * After every scenario: customer spendable + provider claimed + provider pending = minted.
 */
#include "agent/agent_server.h"
#include "agent/agent_tcp.h"
#include "common/common_err.h"
#include "customer/customer_run.h"
#include "customer/customer_tcp.h"
#include "dht/dht_tcp.h"
#include "tests/test.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MINT_OK      "http://mint.test"
#define MINT_FOREIGN "http://foreign.test"
#define MAXTOK       4096

/* ======================================================================================
 * TEST DOUBLE: fake mint + both wallets
 * ====================================================================================== */

enum { T_FREE = 0, T_CUSTOMER, T_PENDING, T_CLAIMED, T_SPENT_ELSEWHERE };

typedef struct fakemint {
    uv_loop_t *loop;
    uint64_t n;
    struct {
        uint64_t amount;
        int locked, mint, state, sent, seen;
        int64_t row;
    } tok[MAXTOK];
    uint64_t minted;
    uint64_t balance; /* customer's spendable, not yet made into tokens */
    uint64_t batch[1024];
    size_t nbatch;
    int down; /* claims fail while set */
    unsigned claim_calls, claim_failures;
    uv_timer_t retry;
    int retry_armed;
    int64_t retry_rows[64];
    size_t nretry;
} fakemint_t;

static void fm_init(fakemint_t *m, uv_loop_t *loop, uint64_t minted) {
    memset(m, 0, sizeof *m);
    m->loop = loop;
    m->minted = minted;
    m->balance = minted;
    uv_timer_init(loop, &m->retry);
    m->retry.data = m;
}

static uint64_t fm_issue(fakemint_t *m, uint64_t amount, int locked, int mint) {
    uint64_t s = m->n++;
    m->tok[s].amount = amount;
    m->tok[s].locked = locked;
    m->tok[s].mint = mint;
    m->tok[s].state = T_CUSTOMER;
    return s;
}

static void fm_token(const fakemint_t *m, uint64_t s, char *out, size_t cap) {
    snprintf(out, cap, "fake:%llu:%llu:%c:%d", (unsigned long long)s,
             (unsigned long long)m->tok[s].amount, m->tok[s].locked ? 'L' : 'U', m->tok[s].mint);
}

/* customer spendable = balance + tokens still the customer's (never received by anyone) */
static uint64_t fm_customer(const fakemint_t *m) {
    uint64_t v = m->balance;
    for (uint64_t i = 0; i < m->n; i++)
        if (m->tok[i].state == T_CUSTOMER) v += m->tok[i].amount;
    return v;
}
static uint64_t fm_state_sum(const fakemint_t *m, int st) {
    uint64_t v = 0;
    for (uint64_t i = 0; i < m->n; i++)
        if (m->tok[i].state == st) v += m->tok[i].amount;
    return v;
}

/* deferred callbacks (never from inside the call) */
typedef struct defer {
    uv_timer_t t;
    void (*fn)(struct defer *);
    fakemint_t *m;
    agent_pay_verdict_cb vcb;
    customer_pay_tokens_cb tcb;
    void *ud;
    int rc;
    uint64_t amount;
    int locked;
    uint64_t count, each;
    int has_lock;
} defer_t;

static void defer_free(uv_handle_t *h) {
    free(h->data);
}
static void defer_fire(uv_timer_t *t) {
    defer_t *d = t->data;
    d->fn(d);
    uv_close((uv_handle_t *)&d->t, defer_free);
}
static defer_t *defer_new(fakemint_t *m, void (*fn)(defer_t *)) {
    defer_t *d = calloc(1, sizeof *d);
    d->m = m;
    d->fn = fn;
    uv_timer_init(m->loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, defer_fire, 0, 0);
    return d;
}

/* --- provider side --- */
static void v_fire(defer_t *d) {
    d->vcb(d->ud, d->rc, d->amount, d->locked, d->rc ? "refused by the test double" : "");
}

static int pv_verify(void *self, const char *token, const agent_pay_policy_t *pol,
                     agent_pay_verdict_cb cb, void *ud) {
    fakemint_t *m = self;
    unsigned long long s, amt;
    char lk;
    int mint, rc = 0;
    if (sscanf(token, "fake:%llu:%llu:%c:%d", &s, &amt, &lk, &mint) != 4 || s >= m->n ||
        m->tok[s].amount != amt || m->tok[s].mint != mint || (lk == 'L') != m->tok[s].locked) {
        rc = CASHU_EBAD_TOKEN;
    } else {
        const char *url = mint == 0 ? MINT_OK : MINT_FOREIGN;
        int ok = 0;
        for (size_t i = 0; i < pol->n_mints; i++) ok |= !strcmp(pol->mints[i], url);
        if (!ok)
            rc = CASHU_EMINT_NOT_ACCEPTED;
        else if (m->tok[s].seen)
            rc = CASHU_EREPLAY;
        else if (pol->lock_pubkey && !m->tok[s].locked)
            rc = CASHU_ENOT_LOCKED;
        else if (m->tok[s].state == T_SPENT_ELSEWHERE)
            rc = CASHU_ESPENT;
        if (!rc) m->tok[s].seen = 1;
    }
    defer_t *d = defer_new(m, v_fire);
    d->vcb = cb;
    d->ud = ud;
    d->rc = rc;
    d->amount = rc ? 0 : amt;
    d->locked = lk == 'L';
    return 0;
}

static int pv_persist(void *self, int64_t row, const char *token, uint64_t amount, int locked) {
    (void)amount, (void)locked;
    fakemint_t *m = self;
    unsigned long long s;
    if (sscanf(token, "fake:%llu:", &s) != 1 || s >= m->n) return COMMON_EINVAL;
    m->tok[s].state = T_PENDING;
    m->tok[s].row = row;
    return 0;
}

static void fm_do_claim(fakemint_t *m, int64_t row);
static void retry_cb(uv_timer_t *t) {
    fakemint_t *m = t->data;
    m->retry_armed = 0;
    size_t n = m->nretry;
    int64_t rows[64];
    memcpy(rows, m->retry_rows, n * sizeof *rows);
    m->nretry = 0;
    for (size_t i = 0; i < n; i++) fm_do_claim(m, rows[i]);
}
static void fm_do_claim(fakemint_t *m, int64_t row) {
    m->claim_calls++;
    if (m->down) {
        m->claim_failures++;
        if (m->nretry < 64) m->retry_rows[m->nretry++] = row;
        if (!m->retry_armed) {
            m->retry_armed = 1;
            uv_timer_start(&m->retry, retry_cb, 30, 0);
        }
        return;
    }
    for (uint64_t i = 0; i < m->n; i++)
        if (m->tok[i].state == T_PENDING && m->tok[i].row == row) m->tok[i].state = T_CLAIMED;
}
static int pv_claim(void *self, int64_t row) {
    fm_do_claim(self, row);
    return 0;
}
static int pv_totals(void *self, uint64_t *claimed, uint64_t *pending) {
    *claimed = fm_state_sum(self, T_CLAIMED);
    *pending = fm_state_sum(self, T_PENDING);
    return 0;
}
static void pv_close(void *self) {
    (void)self;
}
static const agent_pay_ops_t pv_ops = {pv_verify, pv_persist, pv_claim, pv_totals, pv_close};

/* --- customer side --- */
static void t_fire(defer_t *d) {
    fakemint_t *m = d->m;
    uint64_t n = d->count;
    if (d->each && m->balance / d->each < n) n = m->balance / d->each;
    if (n == 0) {
        d->tcb(d->ud, CASHU_EFUNDS, NULL, 0);
        return;
    }
    char **toks = calloc(n, sizeof *toks);
    m->nbatch = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t s = fm_issue(m, d->each, d->has_lock, 0);
        m->balance -= d->each;
        m->batch[m->nbatch++] = s;
        toks[i] = malloc(64);
        fm_token(m, s, toks[i], 64);
    }
    d->tcb(d->ud, 0, (const char *const *)toks, n);
    for (uint64_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
}
static int cp_prepare(void *self, uint64_t count, uint64_t each, const uint8_t *pk, uint64_t lt,
                      customer_pay_tokens_cb cb, void *ud) {
    (void)lt;
    defer_t *d = defer_new(self, t_fire);
    d->tcb = cb;
    d->ud = ud;
    d->count = count > 1024 ? 1024 : count;
    d->each = each;
    d->has_lock = pk != NULL;
    return 0;
}
static int cp_mark(void *self, uint64_t i) {
    fakemint_t *m = self;
    if (i < m->nbatch) m->tok[m->batch[i]].sent = 1;
    return 0;
}
static int cp_release(void *self) {
    fakemint_t *m = self;
    for (size_t i = 0; i < m->nbatch; i++) {
        uint64_t s = m->batch[i];
        if (!m->tok[s].sent && m->tok[s].state == T_CUSTOMER) { /* back into the balance */
            m->tok[s].state = T_FREE;
            m->balance += m->tok[s].amount;
        }
    }
    m->nbatch = 0;
    return 0;
}
static void cp_close(void *self) {
    (void)self;
}
static const customer_pay_ops_t cp_ops = {cp_prepare, cp_mark, cp_release, cp_close};

/* ======================================================================================
 * TEST DOUBLE: generator
 * ====================================================================================== */

typedef struct fakegen {
    uv_loop_t *loop;
    int ndeltas, tick_ms;
    int starts, aborts, ends, live, max_live;
} fakegen_t;

typedef struct fg_run {
    fakegen_t *g;
    uv_timer_t t;
    int i, in_delta, cancel_pending, ended;
    agent_gen_cbs_t cbs;
    void *ud;
} fg_run_t;

static void fg_free(uv_handle_t *h) {
    free(h->data);
}
static void fg_end(fg_run_t *r, agent_llm_end_t end) {
    if (r->ended) return;
    r->ended = 1;
    uv_timer_stop(&r->t);
    r->g->live--;
    r->g->ends++;
    agent_llm_result_t res;
    memset(&res, 0, sizeof res);
    res.end = end;
    res.message = end == AGENT_LLM_STOPPED ? "stopped" : "";
    res.has_usage = end == AGENT_LLM_DONE;
    res.prompt_tokens = 3;
    res.completion_tokens = (uint64_t)r->i;
    r->cbs.on_end(r->ud, &res);
    uv_close((uv_handle_t *)&r->t, fg_free);
}
static void fg_tick(uv_timer_t *t) {
    fg_run_t *r = t->data;
    char w[16];
    int n = snprintf(w, sizeof w, "w%d ", r->i++);
    r->in_delta = 1;
    r->cbs.on_delta(r->ud, w, (size_t)n);
    r->in_delta = 0;
    if (r->cancel_pending)
        fg_end(r, AGENT_LLM_STOPPED);
    else if (r->i >= r->g->ndeltas)
        fg_end(r, AGENT_LLM_DONE);
}
static void *fg_start(void *self, const agent_llm_params_t *p, const agent_gen_cbs_t *cbs, void *ud,
                      int *err) {
    (void)p, (void)err;
    fakegen_t *g = self;
    fg_run_t *r = calloc(1, sizeof *r);
    r->g = g;
    r->cbs = *cbs;
    r->ud = ud;
    uv_timer_init(g->loop, &r->t);
    r->t.data = r;
    uv_timer_start(&r->t, fg_tick, (uint64_t)g->tick_ms, (uint64_t)g->tick_ms);
    g->starts++;
    if (++g->live > g->max_live) g->max_live = g->live;
    return r;
}
static void fg_cancel(void *self, void *h) {
    fg_run_t *r = h;
    ((fakegen_t *)self)->aborts++;
    if (r->in_delta)
        r->cancel_pending = 1;
    else
        fg_end(r, AGENT_LLM_STOPPED);
}
static const agent_gen_ops_t fg_ops = {fg_start, fg_cancel};

/* ======================================================================================
 * Harness
 * ====================================================================================== */

typedef struct world {
    uv_loop_t loop;
    common_log_t log;
    common_env_t env;
    fakemint_t mint;
    struct prov {
        fakegen_t gen;
        agent_gen_t g;
        agent_pay_t pay;
        agent_server_t *srv;
        dht_tcp_server_t *tcp;
        dht_keypair_t kp;
        char addr[32];
        const char *mints[2];
        uint8_t pubkey[33];
    } p[2];
    size_t np;
} world_t;

typedef struct popts {
    uint64_t spc, cpp, timeout_ms;
    uint32_t max_jobs;
    int ndeltas, tick_ms, locked;
} popts_t;

static void world_init(world_t *w, uint64_t minted) {
    memset(w, 0, sizeof *w);
    uv_loop_init(&w->loop);
    common_log_init(&w->log, "test", stderr);
    w->log.level = getenv("TEST_DEBUG") ? COMMON_LOG_DEBUG : COMMON_LOG_ERROR;
    common_env_default(&w->env, &w->loop, &w->log);
    fm_init(&w->mint, &w->loop, minted);
}

static void add_provider(world_t *w, const popts_t *o) {
    struct prov *p = &w->p[w->np++];
    p->gen.loop = &w->loop;
    p->gen.ndeltas = o->ndeltas;
    p->gen.tick_ms = o->tick_ms;
    p->g.ops = &fg_ops;
    p->g.self = &p->gen;
    p->pay.ops = &pv_ops;
    p->pay.self = &w->mint;
    p->pay.name = "test-double";
    p->mints[0] = MINT_OK;
    memset(p->pubkey, 0x02, 33);
    agent_server_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.job.kind = 5100;
    cfg.job.sats_per_chunk = o->spc;
    cfg.job.chunks_per_payment = o->cpp;
    cfg.job.payment_timeout_ms = o->timeout_ms;
    cfg.job.mints = p->mints;
    cfg.job.n_mints = 1;
    cfg.job.pubkey = o->locked ? p->pubkey : NULL;
    cfg.job.min_locktime_s = o->locked ? 600 : 0;
    cfg.max_jobs = o->max_jobs;
    cfg.model = "fake";
    cfg.version = "test";
    int err = 0;
    p->srv = agent_server_new(&w->loop, &w->env, &cfg, &p->g, &p->pay, NULL, &err);
    dht_crypto_keypair_random(&p->kp);
    p->tcp = agent_tcp_listen(&w->loop, &w->env, &p->kp, "127.0.0.1", 0, p->srv, &err);
    snprintf(p->addr, sizeof p->addr, "127.0.0.1:%u", dht_tcp_server_port(p->tcp));
}

static int run_until(world_t *w, int (*cond)(void *), void *ud, uint64_t ms) {
    uint64_t end = uv_now(&w->loop) + ms;
    while (!cond(ud)) {
        if (uv_now(&w->loop) > end) return 0;
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_update_time(&w->loop);
    }
    return 1;
}

static void idle_cb(void *ud) {
    *(int *)ud = 1;
}
static int flag_set(void *ud) {
    return *(int *)ud;
}

static void world_close(world_t *w) {
    for (size_t i = 0; i < w->np; i++) {
        int idle = 0;
        agent_server_shutdown(w->p[i].srv, idle_cb, &idle);
        run_until(w, flag_set, &idle, 3000);
        agent_server_close_all(w->p[i].srv);
        dht_tcp_server_close(w->p[i].tcp);
    }
    for (int i = 0; i < 20; i++) uv_run(&w->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < w->np; i++) {
        agent_server_free(w->p[i].srv);
        dht_crypto_keypair_wipe(&w->p[i].kp);
    }
    uv_timer_stop(&w->mint.retry);
    uv_close((uv_handle_t *)&w->mint.retry, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

#define ASSERT_BALANCED(w)                                                    \
    do {                                                                      \
        uint64_t cl_, pe_;                                                    \
        pv_totals(&(w)->mint, &cl_, &pe_);                                    \
        ASSERT_EQ_U64(fm_customer(&(w)->mint) + cl_ + pe_, (w)->mint.minted); \
    } while (0)

#define ASSERT_CAP_BALANCED(w, i)                                    \
    do {                                                             \
        agent_server_stats_t st_;                                    \
        agent_server_get_stats((w)->p[i].srv, &st_);                 \
        ASSERT_EQ_U64(st_.capacity.active, 0);                       \
        ASSERT_EQ_U64(st_.capacity.acquired, st_.capacity.released); \
    } while (0)

/* ---- customer runtime in the test ---- */

typedef struct cust {
    world_t *w;
    customer_t *cu;
    customer_tcp_dialer_t d;
    customer_cfg_t cfg;
    common_buf_t out;
    int exit_code, done;
    char *peers[4];
    dht_keypair_t kp;
    unsigned errors[PROTO_CODE_COUNT_];
    void (*on_output)(struct cust *);
} cust_t;

static void c_output(void *ud, const char *d, size_t n) {
    cust_t *c = ud;
    common_buf_append(&c->out, d, n);
    if (c->on_output) c->on_output(c);
}
static void c_note(void *ud, const customer_note_t *n) {
    cust_t *c = ud;
    if (n->kind == CUSTOMER_N_ERROR && n->code >= 0 && n->code < PROTO_CODE_COUNT_)
        c->errors[n->code]++;
}
static void c_done(void *ud, int code) {
    cust_t *c = ud;
    c->exit_code = code;
    c->done = 1;
}

static void cust_start(world_t *w, cust_t *c, uint64_t budget, const char *const *peers, size_t n) {
    memset(c, 0, sizeof *c);
    c->w = w;
    for (size_t i = 0; i < n; i++) c->peers[i] = (char *)peers[i];
    dht_crypto_keypair_random(&c->kp);
    c->d.loop = &w->loop;
    c->d.env = &w->env;
    c->d.kp = &c->kp;
    c->d.peers = c->peers;
    c->d.npeers = n;
    customer_dialer_t dl;
    customer_tcp_dialer(&c->d, &dl);
    c->cfg.kind = 5100;
    c->cfg.budget = budget;
    c->cfg.max_sats_per_chunk = 5;
    c->cfg.mint_url = MINT_OK;
    c->cfg.idle_timeout_ms = 3000;
    c->cfg.grace_ms = 1000;
    c->cfg.input = "tell me a story";
    static customer_pay_t pay;
    pay.ops = &cp_ops;
    pay.self = &w->mint;
    pay.name = "test-double";
    customer_sink_t sink = {c_output, c_note, c_done, c};
    int err = 0;
    c->cu = customer_new(&w->loop, &w->env, &c->cfg, &pay, &dl, &sink, &err);
    customer_start(c->cu);
}

static int cust_done(void *ud) {
    return ((cust_t *)ud)->done;
}

static void cust_free(cust_t *c) {
    customer_free(c->cu);
    common_buf_free(&c->out);
    dht_crypto_keypair_wipe(&c->kp);
}

static int expected_text(int n, common_buf_t *b) {
    for (int i = 0; i < n; i++) common_buf_printf(b, "w%d ", i);
    return 0;
}

/* ======================================================================================
 * Scenarios
 * ====================================================================================== */

TEST(happy_path_several_cycles) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 25, .tick_ms = 2};
    add_provider(&w, &o);
    const char *peers[] = {w.p[0].addr};
    cust_t c;
    cust_start(&w, &c, 50, peers, 1);
    ASSERT_TRUE(run_until(&w, cust_done, &c, 10000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_OK);
    common_buf_t exp = {0};
    expected_text(25, &exp);
    ASSERT_EQ_U64(c.out.len, exp.len);
    ASSERT_MEM_EQ(c.out.data, exp.data, exp.len);
    ASSERT_EQ_U64(customer_spent(c.cu), 30); /* 3 cycles of 10 */
    int idle = 0;
    agent_server_shutdown(w.p[0].srv, idle_cb, &idle);
    ASSERT_TRUE(run_until(&w, flag_set, &idle, 3000));
    uint64_t cl, pe;
    pv_totals(&w.mint, &cl, &pe);
    ASSERT_EQ_U64(cl, 30);
    ASSERT_EQ_U64(pe, 0);
    ASSERT_EQ_U64(w.mint.claim_calls, 1);
    ASSERT_BALANCED(&w);
    ASSERT_CAP_BALANCED(&w, 0);
    common_buf_free(&exp);
    cust_free(&c);
    world_close(&w);
}

TEST(price_above_max_exit_4) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 9, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 5, .tick_ms = 2};
    add_provider(&w, &o);
    const char *peers[] = {w.p[0].addr};
    cust_t c;
    cust_start(&w, &c, 500, peers, 1);
    ASSERT_TRUE(run_until(&w, cust_done, &c, 10000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_PRICE);
    ASSERT_EQ_U64(c.out.len, 0);
    ASSERT_EQ_I64(w.p[0].gen.starts, 0);
    ASSERT_BALANCED(&w);
    cust_free(&c);
    world_close(&w);
    ASSERT_EQ_U64(w.mint.minted, 100);
}

TEST(budget_exhausted_exit_5_partial) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 60, .tick_ms = 2};
    add_provider(&w, &o);
    const char *peers[] = {w.p[0].addr};
    cust_t c;
    cust_start(&w, &c, 25, peers, 1); /* 2 cycles of 10: 20 chunks, then stop */
    ASSERT_TRUE(run_until(&w, cust_done, &c, 10000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_BUDGET);
    common_buf_t exp = {0};
    expected_text(20, &exp);
    ASSERT_EQ_U64(c.out.len, exp.len);
    ASSERT_MEM_EQ(c.out.data, exp.data, exp.len);
    ASSERT_EQ_U64(customer_spent(c.cu), 20);
    int idle = 0;
    agent_server_shutdown(w.p[0].srv, idle_cb, &idle);
    ASSERT_TRUE(run_until(&w, flag_set, &idle, 3000));
    ASSERT_EQ_I64(w.p[0].gen.aborts, 1); /* stop aborted the generation */
    ASSERT_BALANCED(&w);
    ASSERT_EQ_U64(fm_customer(&w.mint), 80);
    ASSERT_CAP_BALANCED(&w, 0);
    common_buf_free(&exp);
    cust_free(&c);
    world_close(&w);
}

static void stop_after_some(cust_t *c) {
    if (c->out.len > 20) customer_stop(c->cu);
}

TEST(user_stop_mid_stream_exit_130) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 200, .tick_ms = 3};
    add_provider(&w, &o);
    const char *peers[] = {w.p[0].addr};
    cust_t c;
    cust_start(&w, &c, 100, peers, 1);
    c.on_output = stop_after_some;
    ASSERT_TRUE(run_until(&w, cust_done, &c, 10000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_INTERRUPTED);
    ASSERT_GT(c.out.len, 20);
    int idle = 0;
    agent_server_shutdown(w.p[0].srv, idle_cb, &idle);
    ASSERT_TRUE(run_until(&w, flag_set, &idle, 3000));
    ASSERT_EQ_I64(w.p[0].gen.aborts, 1);
    ASSERT_EQ_I64(w.p[0].gen.live, 0);
    ASSERT_BALANCED(&w);
    ASSERT_CAP_BALANCED(&w, 0);
    cust_free(&c);
    world_close(&w);
}

TEST(capacity_two_of_five) {
    world_t w;
    world_init(&w, 1000);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 2, .ndeltas = 30, .tick_ms = 5};
    add_provider(&w, &o);
    const char *peers[] = {w.p[0].addr};
    cust_t c[5];
    for (int i = 0; i < 5; i++) cust_start(&w, &c[i], 50, peers, 1);
    for (int i = 0; i < 5; i++) ASSERT_TRUE(run_until(&w, cust_done, &c[i], 15000));
    int ok = 0, cap = 0;
    for (int i = 0; i < 5; i++) {
        if (c[i].exit_code == CUSTOMER_EXIT_OK)
            ok++;
        else if (c[i].exit_code == CUSTOMER_EXIT_NO_PROVIDER &&
                 c[i].errors[PROTO_CODE_CAPACITY] == 1)
            cap++;
    }
    ASSERT_EQ_I64(ok, 2);
    ASSERT_EQ_I64(cap, 3);
    ASSERT_LE(w.p[0].gen.max_live, 2);
    agent_server_stats_t st;
    agent_server_get_stats(w.p[0].srv, &st);
    ASSERT_EQ_U64(st.jobs_refused_capacity, 3);
    ASSERT_EQ_U64(st.capacity.acquired, 2);
    int idle = 0;
    agent_server_shutdown(w.p[0].srv, idle_cb, &idle);
    ASSERT_TRUE(run_until(&w, flag_set, &idle, 3000));
    ASSERT_BALANCED(&w);
    ASSERT_CAP_BALANCED(&w, 0);
    for (int i = 0; i < 5; i++) cust_free(&c[i]);
    world_close(&w);
}

static int gen_progress(void *ud) {
    world_t *w = ud;
    return w->p[0].gen.starts > 0 && w->p[0].gen.live > 0;
}

TEST(provider_killed_fallback_completes) {
    world_t w;
    world_init(&w, 200);
    popts_t o1 = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 500, .tick_ms = 5};
    popts_t o2 = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 15, .tick_ms = 2};
    add_provider(&w, &o1);
    add_provider(&w, &o2);
    const char *peers[] = {w.p[0].addr, w.p[1].addr};
    cust_t c;
    cust_start(&w, &c, 100, peers, 2);
    ASSERT_TRUE(run_until(&w, gen_progress, &w, 5000));
    uv_sleep(30);
    agent_server_close_all(w.p[0].srv); /* "killed": every connection dropped */
    ASSERT_TRUE(run_until(&w, cust_done, &c, 15000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_OK);
    ASSERT_EQ_I64(w.p[1].gen.starts, 1);
    ASSERT_EQ_I64(w.p[0].gen.aborts, 1); /* disconnect aborted the first generation */
    /* the text ends with the second provider's complete answer */
    common_buf_t exp = {0};
    expected_text(15, &exp);
    ASSERT_GE(c.out.len, exp.len);
    ASSERT_MEM_EQ(c.out.data + c.out.len - exp.len, exp.data, exp.len);
    for (size_t i = 0; i < 2; i++) {
        int idle = 0;
        agent_server_shutdown(w.p[i].srv, idle_cb, &idle);
        ASSERT_TRUE(run_until(&w, flag_set, &idle, 3000));
        ASSERT_CAP_BALANCED(&w, i);
    }
    ASSERT_BALANCED(&w);
    common_buf_free(&exp);
    cust_free(&c);
    world_close(&w);
}

/* ---- raw client: crafted lines ---- */

typedef struct raw {
    world_t *w;
    dht_tcp_conn_t *c;
    int up, closed;
    common_buf_t in;
    dht_keypair_t kp;
} raw_t;

static void r_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    (void)c, (void)pk;
    ((raw_t *)ud)->up = 1;
}
static void r_data(dht_tcp_conn_t *c, const uint8_t *d, size_t n, void *ud) {
    (void)c;
    common_buf_append(&((raw_t *)ud)->in, d, n);
}
static void r_close(dht_tcp_conn_t *c, int st, void *ud) {
    (void)c, (void)st;
    ((raw_t *)ud)->closed = 1;
}
static int raw_up(void *ud) {
    return ((raw_t *)ud)->up || ((raw_t *)ud)->closed;
}

static int raw_open(world_t *w, raw_t *r, size_t prov) {
    memset(r, 0, sizeof *r);
    r->w = w;
    dht_crypto_keypair_random(&r->kp);
    dht_tcp_callbacks_t cbs = {.on_connect = r_connect, .on_data = r_data, .on_close = r_close};
    int err = 0;
    r->c = dht_tcp_connect(&w->loop, &w->env, &r->kp, "127.0.0.1",
                           dht_tcp_server_port(w->p[prov].tcp), NULL, &cbs, r, &err);
    return run_until(w, raw_up, r, 5000) && r->up;
}
static void raw_send(raw_t *r, const char *line) {
    dht_tcp_write(r->c, line, strlen(line));
    dht_tcp_write(r->c, "\n", 1);
}
static size_t count_in(const raw_t *r, const char *needle) {
    size_t n = 0;
    const char *p = (const char *)r->in.data;
    if (!p) return 0;
    common_buf_t *b = (common_buf_t *)&r->in;
    common_buf_reserve(b, 1);
    b->data[b->len] = 0;
    p = (const char *)b->data;
    while ((p = strstr(p, needle))) {
        n++;
        p += strlen(needle);
    }
    return n;
}
typedef struct waitfor {
    raw_t *r;
    const char *needle;
    size_t n;
} waitfor_t;
static int wf_cond(void *ud) {
    waitfor_t *f = ud;
    return count_in(f->r, f->needle) >= f->n;
}
static int raw_wait(raw_t *r, const char *needle, size_t n, uint64_t ms) {
    waitfor_t f = {r, needle, n};
    return run_until(r->w, wf_cond, &f, ms);
}
static void raw_close(raw_t *r) {
    if (!r->closed) dht_tcp_close(r->c);
    run_until(r->w, raw_up, r, 10); /* let it go */
    while (!r->closed) uv_run(&r->w->loop, UV_RUN_ONCE);
    common_buf_free(&r->in);
    dht_crypto_keypair_wipe(&r->kp);
}
static void pay_line(raw_t *r, const char *id, uint64_t serial) {
    char tok[64], line[160];
    fm_token(&r->w->mint, serial, tok, sizeof tok);
    snprintf(line, sizeof line, "{\"type\":\"payment\",\"id\":\"%s\",\"token\":\"%s\"}", id, tok);
    raw_send(r, line);
}

TEST(stop_before_payment_llm_never_called) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 5, .tick_ms = 2};
    add_provider(&w, &o);
    raw_t r;
    ASSERT_TRUE(raw_open(&w, &r, 0));
    raw_send(&r,
             "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"offer\"", 1, 3000));
    raw_send(&r, "{\"type\":\"stop\",\"id\":\"j1\"}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"result\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"output\":\"\",\"total_sats\":0"), 1);
    ASSERT_EQ_I64(w.p[0].gen.starts, 0);
    ASSERT_CAP_BALANCED(&w, 0);
    raw_close(&r);
    world_close(&w);
}

TEST(refused_tokens_never_credited) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {.spc = 1,
                 .cpp = 10,
                 .timeout_ms = 3000,
                 .max_jobs = 3,
                 .ndeltas = 12,
                 .tick_ms = 2,
                 .locked = 1};
    add_provider(&w, &o);
    fakemint_t *m = &w.mint;
    raw_t r;
    ASSERT_TRUE(raw_open(&w, &r, 0));
    raw_send(&r,
             "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"offer\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"pubkey\":\"02"), 1);
    m->balance -= 50;
    uint64_t bad = fm_issue(m, 10, 1, 0);
    uint64_t foreign = fm_issue(m, 10, 1, 1);
    uint64_t unlocked = fm_issue(m, 10, 0, 0);
    uint64_t elsewhere = fm_issue(m, 10, 1, 0);
    m->tok[elsewhere].state = T_SPENT_ELSEWHERE; /* the customer double-spent it */
    uint64_t good = fm_issue(m, 10, 1, 0);
    /* forged: the amount in the string does not match what the mint issued */
    raw_send(&r, "{\"type\":\"payment\",\"id\":\"j1\",\"token\":\"fake:0:1000:L:0\"}");
    (void)bad;
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"bad_token\"", 1, 3000));
    pay_line(&r, "j1", foreign);
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"mint_not_accepted\"", 1, 3000));
    pay_line(&r, "j1", unlocked);
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"not_locked\"", 1, 3000));
    pay_line(&r, "j1", elsewhere);
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"token_spent\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"chunk\""), 0);
    pay_line(&r, "j1", good);
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"pay_required\"", 1, 3000));
    pay_line(&r, "j1", good); /* replayed */
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"token_spent\"", 2, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"chunk\""), 10);
    raw_send(&r, "{\"type\":\"stop\",\"id\":\"j1\"}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"result\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"total_sats\":10"), 1);
    run_until(&w, raw_up, &r, 50);
    uint64_t cl, pe;
    pv_totals(m, &cl, &pe);
    ASSERT_EQ_U64(cl, 10); /* only the good token */
    ASSERT_EQ_U64(pe, 0);
    /* balance: the refused tokens are still the customer's (state T_CUSTOMER), except the
     * one spent elsewhere, which left the system */
    ASSERT_EQ_U64(fm_customer(m) + cl + pe + 10, m->minted);
    ASSERT_CAP_BALANCED(&w, 0);
    raw_close(&r);
    world_close(&w);
}

TEST(overpay_and_underpay_carry) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {.spc = 3, .cpp = 2, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 6, .tick_ms = 2};
    add_provider(&w, &o);
    fakemint_t *m = &w.mint;
    raw_t r;
    ASSERT_TRUE(raw_open(&w, &r, 0));
    raw_send(&r,
             "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"offer\"", 1, 3000));
    m->balance -= 18;
    uint64_t a = fm_issue(m, 7, 0, 0); /* 2 chunks, carry 1 */
    uint64_t b = fm_issue(m, 2, 0, 0); /* (2+1)/3 = 1 chunk, carry 0: underpay completed by carry */
    uint64_t c = fm_issue(m, 9, 0, 0); /* 3 chunks */
    pay_line(&r, "j1", a);
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"pay_required\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"chunk\""), 2);
    pay_line(&r, "j1", b);
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"pay_required\"", 2, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"chunk\""), 3);
    pay_line(&r, "j1", c);
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"result\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"chunk\""), 6);
    ASSERT_EQ_U64(count_in(&r, "\"total_sats\":18"), 1);
    run_until(&w, raw_up, &r, 50);
    ASSERT_BALANCED(&w);
    ASSERT_CAP_BALANCED(&w, 0);
    raw_close(&r);
    world_close(&w);
}

TEST(payment_timeout_first_and_mid) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {.spc = 1, .cpp = 5, .timeout_ms = 150, .max_jobs = 3, .ndeltas = 20, .tick_ms = 2};
    add_provider(&w, &o);
    fakemint_t *m = &w.mint;
    raw_t r;
    ASSERT_TRUE(raw_open(&w, &r, 0));
    raw_send(&r,
             "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"payment_timeout\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"result\""), 0);
    ASSERT_EQ_I64(w.p[0].gen.starts, 0);
    raw_send(&r,
             "{\"type\":\"request\",\"id\":\"j2\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"offer\"", 2, 3000));
    m->balance -= 5;
    pay_line(&r, "j2", fm_issue(m, 5, 0, 0));
    ASSERT_TRUE(raw_wait(&r, "\"code\":\"payment_timeout\"", 2, 3000));
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"result\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"type\":\"chunk\""), 5);
    ASSERT_EQ_I64(w.p[0].gen.live, 0);
    run_until(&w, raw_up, &r, 50);
    ASSERT_BALANCED(&w);
    ASSERT_CAP_BALANCED(&w, 0);
    raw_close(&r);
    world_close(&w);
}

static int gen_dead(void *ud) {
    world_t *w = ud;
    return w->p[0].gen.live == 0;
}

TEST(customer_killed_aborts_claims_once_frees_once) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 1, .ndeltas = 1000, .tick_ms = 3};
    add_provider(&w, &o);
    fakemint_t *m = &w.mint;
    raw_t r;
    ASSERT_TRUE(raw_open(&w, &r, 0));
    raw_send(&r,
             "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"offer\"", 1, 3000));
    m->balance -= 10;
    pay_line(&r, "j1", fm_issue(m, 10, 0, 0));
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"chunk\"", 3, 3000));
    dht_tcp_close(r.c); /* the customer dies mid-stream */
    ASSERT_TRUE(run_until(&w, gen_dead, &w, 3000));
    ASSERT_EQ_I64(w.p[0].gen.aborts, 1);
    while (!r.closed) uv_run(&w.loop, UV_RUN_ONCE);
    run_until(&w, raw_up, &r, 50);
    ASSERT_EQ_U64(m->claim_calls, 1);
    ASSERT_CAP_BALANCED(&w, 0);
    ASSERT_BALANCED(&w);
    /* the slot is free again: a new customer gets an offer (MAX_JOBS=1) */
    raw_t r2;
    ASSERT_TRUE(raw_open(&w, &r2, 0));
    raw_send(&r2,
             "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&r2, "\"type\":\"offer\"", 1, 3000));
    raw_close(&r2);
    common_buf_free(&r.in);
    dht_crypto_keypair_wipe(&r.kp);
    world_close(&w);
}

TEST(jobs_scoped_to_connection) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 5, .tick_ms = 2};
    add_provider(&w, &o);
    fakemint_t *m = &w.mint;
    raw_t a, b;
    ASSERT_TRUE(raw_open(&w, &a, 0));
    ASSERT_TRUE(raw_open(&w, &b, 0));
    raw_send(&a,
             "{\"type\":\"request\",\"id\":\"same\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}");
    ASSERT_TRUE(raw_wait(&a, "\"type\":\"offer\"", 1, 3000));
    raw_send(&b, "{\"type\":\"stop\",\"id\":\"same\"}"); /* another connection: ignored */
    m->balance -= 10;
    pay_line(&b, "same", fm_issue(m, 10, 0, 0)); /* not b's job */
    ASSERT_TRUE(raw_wait(&b, "\"code\":\"bad_request\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&a, "\"type\":\"result\""), 0);
    m->balance -= 10;
    pay_line(&a, "same", fm_issue(m, 10, 0, 0));
    ASSERT_TRUE(raw_wait(&a, "\"type\":\"result\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&a, "\"total_sats\":10"), 1);
    run_until(&w, raw_up, &a, 50);
    ASSERT_BALANCED(&w);
    raw_close(&a);
    raw_close(&b);
    world_close(&w);
}

static int claimed_10(void *ud) {
    return fm_state_sum(ud, T_CLAIMED) == 10;
}

TEST(mint_down_at_claim_then_back) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {
        .spc = 1, .cpp = 10, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 8, .tick_ms = 2};
    add_provider(&w, &o);
    w.mint.down = 1;
    const char *peers[] = {w.p[0].addr};
    cust_t c;
    cust_start(&w, &c, 50, peers, 1);
    ASSERT_TRUE(run_until(&w, cust_done, &c, 10000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_OK);
    uint64_t cl, pe;
    pv_totals(&w.mint, &cl, &pe);
    ASSERT_EQ_U64(cl, 0);
    ASSERT_EQ_U64(pe, 10);
    ASSERT_BALANCED(&w);
    ASSERT_GE(w.mint.claim_failures, 1);
    w.mint.down = 0;
    ASSERT_TRUE(run_until(&w, claimed_10, &w.mint, 3000));
    pv_totals(&w.mint, &cl, &pe);
    ASSERT_EQ_U64(cl, 10);
    ASSERT_EQ_U64(pe, 0);
    ASSERT_BALANCED(&w);
    cust_free(&c);
    world_close(&w);
}

TEST(no_provider_exit_3) {
    world_t w;
    world_init(&w, 100);
    const char *peers[] = {"127.0.0.1:1"};
    cust_t c;
    cust_start(&w, &c, 50, peers, 1);
    ASSERT_TRUE(run_until(&w, cust_done, &c, 10000));
    ASSERT_EQ_I64(c.exit_code, CUSTOMER_EXIT_NO_PROVIDER);
    ASSERT_BALANCED(&w);
    ASSERT_EQ_U64(fm_customer(&w.mint), 100);
    cust_free(&c);
    world_close(&w);
}

TEST(skill_request_answered) {
    world_t w;
    world_init(&w, 100);
    popts_t o = {.spc = 2, .cpp = 7, .timeout_ms = 3000, .max_jobs = 3, .ndeltas = 5, .tick_ms = 2};
    add_provider(&w, &o);
    raw_t r;
    ASSERT_TRUE(raw_open(&w, &r, 0));
    raw_send(&r, "{\"type\":\"skill_request\",\"id\":\"s1\",\"kind\":5100}");
    ASSERT_TRUE(raw_wait(&r, "\"type\":\"skill_response\"", 1, 3000));
    ASSERT_EQ_U64(count_in(&r, "\"sats_per_chunk\":2"), 1);
    ASSERT_EQ_U64(count_in(&r, "\"chunks_per_payment\":7"), 1);
    ASSERT_EQ_U64(count_in(&r, "\"max\":3"), 1);
    ASSERT_EQ_U64(count_in(&r, MINT_OK), 1);
    raw_close(&r);
    world_close(&w);
}

TEST_MAIN(TEST_ENTRY(happy_path_several_cycles), TEST_ENTRY(price_above_max_exit_4),
          TEST_ENTRY(budget_exhausted_exit_5_partial), TEST_ENTRY(user_stop_mid_stream_exit_130),
          TEST_ENTRY(capacity_two_of_five), TEST_ENTRY(provider_killed_fallback_completes),
          TEST_ENTRY(stop_before_payment_llm_never_called),
          TEST_ENTRY(refused_tokens_never_credited), TEST_ENTRY(overpay_and_underpay_carry),
          TEST_ENTRY(payment_timeout_first_and_mid),
          TEST_ENTRY(customer_killed_aborts_claims_once_frees_once),
          TEST_ENTRY(jobs_scoped_to_connection), TEST_ENTRY(mint_down_at_claim_then_back),
          TEST_ENTRY(no_provider_exit_3), TEST_ENTRY(skill_request_answered))
