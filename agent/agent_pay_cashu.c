/* SPDX-License-Identifier: MIT */
/* The provider's payments over the Cashu wallet (cashu_wallet.h), dvm-protocol.md §6:
 *  - a token whose proofs carry NUT-10 secrets takes the locked path: offline verification
 *    (mint list, keyset, replay, P2PK lock to our key with enough locktime, DLEQ) which also
 *    records the proofs as "incoming" in wallet.db (durable before the ack). The cheap rules
 *    run on the loop (cashu_wallet_offline_prepare); hash-to-curve and the DLEQ proofs, ~1 ms
 *    a token, run on libuv's thread pool (cashu_offline_check_run) so that streaming jobs
 *    are not held up while others pay; the checked tokens are then recorded together in one
 *    transaction (replay checks, one fsync) on a second connection to wallet.db, also on the
 *    thread pool, one batch at a time (cashu_accept_store_commit_many). Verdicts are
 *    answered on the loop after its COMMIT;
 *  - a plain token follows --accept-unlocked: swap (cashu_wallet_receive, online, final),
 *    peek (offline with DLEQ required, recorded as incoming) or reject (not_locked);
 *  - claims: one cashu_wallet_claim per accepted mint (the wallet batches by the mint's input
 *    limit) once no other job ended for AGENT_CLAIM_WINDOW_MS (at most
 *    AGENT_CLAIM_WINDOW_MAX_MS after the first end), retried with backoff while the mint
 *    fails, at once on shutdown (agent_pay_cashu_claim_now) and at start (restart claims). */
#include "agent/agent_pay_cashu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/cashu_p2pk.h"
#include "cashu/cashu_token.h"
#include "common/common_err.h"
#include "common/common_log.h"

#define MOD          "pay"
#define MAX_MINTS    16
#define RETRY_MIN_MS 1000u
#define RETRY_MAX_MS 60000u
#ifndef AGENT_CLAIM_WINDOW_MS
#define AGENT_CLAIM_WINDOW_MS 1000u /* a job's end waits this long for other ends (one swap) */
#endif
#ifndef AGENT_CLAIM_WINDOW_MAX_MS
#define AGENT_CLAIM_WINDOW_MAX_MS 5000u /* ... never longer than this after the first end */
#endif
#ifndef AGENT_ACCEPT_BATCH_MAX
#define AGENT_ACCEPT_BATCH_MAX 32 /* offline tokens recorded per wallet transaction */
#endif

typedef struct mint_state {
    char *url;
    int in_flight, again;
    uint64_t backoff_ms;
    uv_timer_t retry;
    uv_timer_t window; /* claim window: job ends close together share one claim */
    int window_open;
    uint64_t window_first;
    struct agent_pay_cashu *pc;
} mint_state_t;

typedef struct agent_pay_cashu {
    uv_loop_t *loop;
    const common_env_t *env;
    cashu_wallet_t *w;
    mint_state_t mints[MAX_MINTS];
    size_t nmints;
    const char *mint_list[MAX_MINTS + 1]; /* NULL-terminated, for cashu_policy_t */
    unsigned outstanding;                 /* wallet calls in flight (for shutdown) */
    /* offline verifications checked on the thread pool, waiting to be recorded in one
     * transaction (one fsync) by the accept store, one batch at a time (agent README) */
    struct vreq *acc_head, **acc_tail;
    uv_timer_t acc_timer; /* starts a batch on the next turn: tokens of one turn go together */
    cashu_accept_store_t *store; /* owned; used by the pool while a batch is in flight */
    struct commit_batch {
        uv_work_t work;
        size_t n;
        struct vreq *v[AGENT_ACCEPT_BATCH_MAX];
        cashu_offline_check_t *chk[AGENT_ACCEPT_BATCH_MAX];
        uint64_t amounts[AGENT_ACCEPT_BATCH_MAX];
        int rcs[AGENT_ACCEPT_BATCH_MAX];
    } batch;
    int committing; /* batch in flight on the pool */
    int closing;
    uint64_t claimed_total, claim_failures;
} agent_pay_cashu_t;

typedef struct vreq {
    agent_pay_cashu_t *pc;
    uv_timer_t t;               /* to answer a synchronous verdict asynchronously */
    uv_work_t work;             /* the check's EC work on the thread pool */
    cashu_offline_check_t *chk; /* owned; touched only by the pool while work runs */
    agent_pay_verdict_cb cb;
    void *ud;
    int rc, locked, retried;
    uint64_t amount;
    char *token;
    cashu_policy_t pol;
    char msg[160];
    struct vreq *next; /* in the accept queue */
} vreq_t;

static const common_log_t *LOGP(const agent_pay_cashu_t *pc) {
    return pc->env ? pc->env->log : NULL;
}

static void vreq_free(uv_handle_t *h) {
    vreq_t *v = h->data;
    cashu_offline_check_free(v->chk);
    if (v->token) {
        memset(v->token, 0, strlen(v->token));
        free(v->token);
    }
    free(v);
}

static void vreq_answer_cb(uv_timer_t *t) {
    vreq_t *v = t->data;
    v->pc->outstanding--;
    if (!v->pc->closing) v->cb(v->ud, v->rc, v->amount, v->locked, v->msg);
    uv_close((uv_handle_t *)&v->t, vreq_free);
}

/* answer on the next loop turn (never from inside verify) */
static void vreq_answer(vreq_t *v, int rc, uint64_t amount, const char *msg) {
    v->rc = rc;
    v->amount = amount;
    snprintf(v->msg, sizeof v->msg, "%s", msg ? msg : (rc ? common_strerror(rc) : ""));
    uv_timer_start(&v->t, vreq_answer_cb, 0, 0);
}

static void offline(vreq_t *v);
static void on_loaded(void *ud, const cashu_result_t *res);

static void commit_start(agent_pay_cashu_t *pc);

static void commit_work(uv_work_t *wk) {
    agent_pay_cashu_t *pc = wk->data;
    struct commit_batch *b = &pc->batch;
    cashu_accept_store_commit_many(pc->store, b->n, b->chk, b->amounts, b->rcs);
}

static void commit_done(uv_work_t *wk, int status) {
    agent_pay_cashu_t *pc = wk->data;
    struct commit_batch *b = &pc->batch;
    pc->committing = 0;
    /* every verdict is answered after the batch's COMMIT (or its failure) */
    for (size_t i = 0; i < b->n; i++) {
        int rc = status ? COMMON_ESTATE : b->rcs[i];
        vreq_answer(b->v[i], rc, rc ? 0 : b->amounts[i], NULL);
    }
    b->n = 0;
    if (pc->closing) {
        cashu_accept_store_close(pc->store);
        pc->store = NULL;
        return;
    }
    if (pc->acc_head) commit_start(pc);
}

/* Record the checked tokens waiting (up to a batch) in one transaction on the pool; the
 * next batch starts when this one is done, so its replay checks see this one's rows. */
static void commit_start(agent_pay_cashu_t *pc) {
    struct commit_batch *b = &pc->batch;
    if (pc->committing || !pc->acc_head) return;
    b->n = 0;
    while (pc->acc_head && b->n < AGENT_ACCEPT_BATCH_MAX) {
        vreq_t *v = pc->acc_head;
        pc->acc_head = v->next;
        v->next = NULL;
        b->v[b->n] = v;
        b->chk[b->n] = v->chk;
        b->n++;
    }
    if (!pc->acc_head) pc->acc_tail = &pc->acc_head;
    b->work.data = pc;
    pc->committing = 1;
    if (uv_queue_work(pc->loop, &b->work, commit_work, commit_done)) commit_done(&b->work, 1);
}

static void accept_flush_cb(uv_timer_t *t) {
    commit_start(t->data);
}

/* a checked token waits for this loop turn's batch */
static void commit_queued(vreq_t *v) {
    agent_pay_cashu_t *pc = v->pc;
    v->next = NULL;
    *pc->acc_tail = v;
    pc->acc_tail = &v->next;
    if (!uv_is_active((uv_handle_t *)&pc->acc_timer))
        uv_timer_start(&pc->acc_timer, accept_flush_cb, 0, 0);
}

static void check_work(uv_work_t *w) {
    vreq_t *v = w->data;
    cashu_offline_check_run(v->chk); /* only the check: no wallet, no loop, no log */
}

static void check_done(uv_work_t *w, int status) {
    vreq_t *v = w->data;
    if (status || v->pc->closing) {
        vreq_answer(v, COMMON_ESTATE, 0, "shutting down");
        return;
    }
    int rc = cashu_offline_check_result(v->chk);
    if (rc) {
        vreq_answer(v, rc, 0, NULL);
        return;
    }
    commit_queued(v);
}

static void on_loaded(void *ud, const cashu_result_t *res) {
    vreq_t *v = ud;
    if (res->err) {
        vreq_answer(v, CASHU_EMINT_UNREACHABLE, 0, "cannot load the mint's keysets");
        return;
    }
    v->retried = 1;
    offline(v);
}

/* Offline verification: the rules on the loop, the EC work on the thread pool, the record in
 * the next batch (check_done -> commit_queued -> accept_flush_cb). */
static void offline(vreq_t *v) {
    agent_pay_cashu_t *pc = v->pc;
    cashu_offline_check_free(v->chk);
    v->chk = NULL;
    int rc = cashu_wallet_offline_prepare(pc->w, v->token, &v->pol, &v->chk);
    if (rc == CASHU_EKEYSET && !v->retried) { /* a keyset we have not loaded yet */
        cashu_token_t t;
        if (cashu_token_decode(v->token, strlen(v->token), &t) == 0) {
            int lr = cashu_wallet_load_mint(pc->w, t.mint, on_loaded, v);
            cashu_token_free(&t);
            if (lr == 0) return;
        }
    }
    if (rc) {
        vreq_answer(v, rc, 0, NULL);
        return;
    }
    v->work.data = v;
    if (uv_queue_work(pc->loop, &v->work, check_work, check_done)) {
        vreq_answer(v, COMMON_ESTATE, 0, "cannot queue the token check");
        return;
    }
}

static void on_received(void *ud, const cashu_result_t *res) {
    vreq_t *v = ud;
    int rc = res->err;
    if (rc == CASHU_EMINT && res->mint_code == 11001) rc = CASHU_ESPENT;
    vreq_answer(v, rc, rc ? 0 : res->amount, rc ? res->detail : NULL);
}

/* Does the token carry NUT-10 secrets (a lock of any kind)? 1 yes, 0 plain, <0 undecodable. */
static int token_locked(const char *token) {
    cashu_token_t t;
    if (cashu_token_decode(token, strlen(token), &t)) return CASHU_EBAD_TOKEN;
    int locked = 0;
    for (size_t i = 0; i < t.nproofs && !locked; i++) {
        cashu_p2pk_t pk;
        locked = cashu_p2pk_parse(t.proofs[i].secret, &pk) != COMMON_ENOTFOUND;
    }
    cashu_token_free(&t);
    return locked;
}

static int pc_verify(void *self, const char *token, const agent_pay_policy_t *pol,
                     agent_pay_verdict_cb cb, void *ud) {
    agent_pay_cashu_t *pc = self;
    vreq_t *v = calloc(1, sizeof *v);
    if (!v || !(v->token = strdup(token))) {
        free(v);
        return COMMON_ENOMEM;
    }
    v->pc = pc;
    v->cb = cb;
    v->ud = ud;
    uv_timer_init(pc->loop, &v->t);
    v->t.data = v;
    pc->outstanding++;
    v->pol.mints = pc->mint_list;
    v->pol.min_locktime = pol->min_locktime_s;
    int locked = token_locked(token);
    if (locked < 0) {
        vreq_answer(v, CASHU_EBAD_TOKEN, 0, "token does not decode");
        return 0;
    }
    if (locked) {
        if (!pol->lock_pubkey) { /* we asked for plain tokens: a lock we cannot check */
            vreq_answer(v, CASHU_ENOT_LOCKED, 0, "locked token, but plain payment was offered");
            return 0;
        }
        v->locked = 1;
        v->pol.require_lock = 1;
        v->pol.require_dleq = 1;
        offline(v);
        return 0;
    }
    switch (pol->unlocked) {
    case AGENT_UNLOCKED_REJECT:
        vreq_answer(v, CASHU_ENOT_LOCKED, 0,
                    "plain tokens are refused; lock to the offer's pubkey");
        return 0;
    case AGENT_UNLOCKED_PEEK:
        v->pol.require_dleq = 1;
        offline(v);
        return 0;
    default: {
        int rc = cashu_wallet_receive(pc->w, token, &v->pol, on_received, v);
        if (rc) vreq_answer(v, rc, 0, NULL);
        return 0;
    }
    }
}

static int pc_persist(void *self, int64_t row, const char *token, uint64_t amount, int locked) {
    /* already durable: accept_offline stored the proofs as incoming, receive swapped them */
    (void)self, (void)row, (void)token, (void)amount, (void)locked;
    return 0;
}

static void claim_mint(mint_state_t *m);

static void retry_cb(uv_timer_t *t) {
    claim_mint(t->data);
}

static void on_claimed(void *ud, const cashu_result_t *res) {
    mint_state_t *m = ud;
    agent_pay_cashu_t *pc = m->pc;
    pc->outstanding--;
    m->in_flight = 0;
    if (pc->closing) return;
    if (res->err) {
        pc->claim_failures++;
        m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : RETRY_MIN_MS;
        if (m->backoff_ms > RETRY_MAX_MS) m->backoff_ms = RETRY_MAX_MS;
        LOG_WARN(LOGP(pc), MOD, "claim at %s failed (%s); retrying in %llums", m->url, res->detail,
                 (unsigned long long)m->backoff_ms);
        uv_timer_start(&m->retry, retry_cb, m->backoff_ms, 0);
        return;
    }
    m->backoff_ms = 0;
    if (res->amount) {
        pc->claimed_total += res->amount;
        LOG_INFO(LOGP(pc), MOD, "claimed %llu sats at %s (fee %llu)",
                 (unsigned long long)res->amount, m->url, (unsigned long long)res->fee);
    }
    if (m->again) {
        m->again = 0;
        claim_mint(m);
    }
}

static void claim_mint(mint_state_t *m) {
    agent_pay_cashu_t *pc = m->pc;
    if (pc->closing) return;
    if (m->in_flight) {
        m->again = 1;
        return;
    }
    cashu_balance_t b;
    if (cashu_wallet_balance(pc->w, m->url, &b) == 0 && b.incoming == 0) return;
    uv_timer_stop(&m->retry);
    m->in_flight = 1;
    pc->outstanding++;
    int rc = cashu_wallet_claim(pc->w, m->url, on_claimed, m);
    if (rc) {
        cashu_result_t r;
        memset(&r, 0, sizeof r);
        r.err = rc;
        r.detail = common_strerror(rc);
        on_claimed(m, &r);
    }
}

static void window_cb(uv_timer_t *t) {
    mint_state_t *m = t->data;
    m->window_open = 0;
    claim_mint(m);
}

/* Claim after AGENT_CLAIM_WINDOW_MS without another job end (at most AGENT_CLAIM_WINDOW_MAX_MS
 * after the first), so jobs that end close together share one swap instead of one each.
 * A claim's P2PK signatures are made CASHU_SIGN_SLICE per loop turn (cashu_wallet.c); its
 * few blinded outputs, journal commits and the DLEQ checks of the mint's answer run on the
 * loop. The tokens are durable as incoming meanwhile. */
static void claim_soon(mint_state_t *m) {
    agent_pay_cashu_t *pc = m->pc;
    if (pc->closing) return;
    uint64_t now = uv_now(pc->loop);
    if (!m->window_open) {
        m->window_open = 1;
        m->window_first = now;
    }
    uint64_t due = now + AGENT_CLAIM_WINDOW_MS, last = m->window_first + AGENT_CLAIM_WINDOW_MAX_MS;
    if (due > last) due = last;
    uv_timer_start(&m->window, window_cb, due > now ? due - now : 0, 0);
}

static int pc_claim(void *self, int64_t row) {
    (void)row; /* claims are per mint: everything incoming there, this job's tokens included */
    agent_pay_cashu_t *pc = self;
    for (size_t i = 0; i < pc->nmints; i++) claim_soon(&pc->mints[i]);
    return 0;
}

void agent_pay_cashu_claim_now(agent_pay_t *p) {
    agent_pay_cashu_t *pc = p->self;
    for (size_t i = 0; i < pc->nmints; i++) {
        mint_state_t *m = &pc->mints[i];
        if (!m->window_open) continue;
        m->window_open = 0;
        uv_timer_stop(&m->window);
        claim_mint(m);
    }
}

static int pc_totals(void *self, uint64_t *claimed, uint64_t *pending) {
    agent_pay_cashu_t *pc = self;
    cashu_balance_t b;
    int rc = cashu_wallet_balance(pc->w, NULL, &b);
    if (rc) return rc;
    *claimed = b.unspent + b.reserved + b.sent;
    *pending = b.incoming + b.pending;
    return 0;
}

static void pc_close(void *self) {
    agent_pay_cashu_t *pc = self;
    pc->closing = 1;
    /* queued verifications: answered (ignored while closing) so that their handles close */
    uv_timer_stop(&pc->acc_timer);
    uv_close((uv_handle_t *)&pc->acc_timer, NULL);
    while (pc->acc_head) {
        vreq_t *v = pc->acc_head;
        pc->acc_head = v->next;
        vreq_answer(v, COMMON_ESTATE, 0, "shutting down");
    }
    pc->acc_tail = &pc->acc_head;
    if (!pc->committing) { /* else commit_done closes it */
        cashu_accept_store_close(pc->store);
        pc->store = NULL;
    }
    for (size_t i = 0; i < pc->nmints; i++) {
        uv_timer_stop(&pc->mints[i].retry);
        uv_close((uv_handle_t *)&pc->mints[i].retry, NULL);
        uv_timer_stop(&pc->mints[i].window);
        uv_close((uv_handle_t *)&pc->mints[i].window, NULL);
    }
    /* the mint states are freed with pc after the loop ran once (see agent_pay_cashu_free) */
}

static const agent_pay_ops_t cashu_ops = {.verify = pc_verify,
                                          .persist = pc_persist,
                                          .claim = pc_claim,
                                          .totals = pc_totals,
                                          .close = pc_close};

static void on_mint_loaded(void *ud, const cashu_result_t *res) {
    mint_state_t *m = ud;
    m->pc->outstanding--;
    if (res->err)
        LOG_WARN(LOGP(m->pc), MOD,
                 "mint %s: %s (locked payments from it are refused until it "
                 "answers)",
                 m->url, res->detail);
    else
        claim_mint(m); /* restart claims: tokens left incoming by an earlier run */
}

static void start_mints(agent_pay_cashu_t *pc) {
    for (size_t i = 0; i < pc->nmints; i++) {
        pc->outstanding++;
        if (cashu_wallet_load_mint(pc->w, pc->mints[i].url, on_mint_loaded, &pc->mints[i]))
            pc->outstanding--;
    }
}

static void on_recovered(void *ud, const cashu_result_t *res) {
    agent_pay_cashu_t *pc = ud;
    pc->outstanding--;
    if (pc->closing) return;
    if (res->err)
        LOG_WARN(LOGP(pc), MOD, "wallet recovery: %s (retried at the next start)", res->detail);
    else if (res->recovered)
        LOG_INFO(LOGP(pc), MOD, "wallet recovery: %zu interrupted operation(s) resolved",
                 res->recovered);
    start_mints(pc);
}

int agent_pay_cashu(uv_loop_t *loop, const common_env_t *env, cashu_wallet_t *w,
                    const char *const *mints, size_t nmints, agent_pay_t *out) {
    if (nmints > MAX_MINTS) return COMMON_EINVAL;
    agent_pay_cashu_t *pc = calloc(1, sizeof *pc);
    if (!pc) return COMMON_ENOMEM;
    pc->loop = loop;
    pc->env = env;
    pc->w = w;
    int src = cashu_wallet_accept_store_open(w, &pc->store);
    if (src) {
        free(pc);
        return src;
    }
    pc->acc_tail = &pc->acc_head;
    uv_timer_init(loop, &pc->acc_timer);
    pc->acc_timer.data = pc;
    for (size_t i = 0; i < nmints; i++) {
        mint_state_t *m = &pc->mints[i];
        size_t n = strlen(mints[i]);
        while (n > 0 && mints[i][n - 1] == '/') n--;
        m->url = strndup(mints[i], n);
        m->pc = pc;
        uv_timer_init(loop, &m->retry);
        m->retry.data = m;
        uv_timer_init(loop, &m->window);
        m->window.data = m;
        pc->mint_list[i] = m->url;
        pc->nmints++;
    }
    /* resolve operations a crash left open (journal: restore + checkstate), then load the
     * mints and claim what earlier runs left incoming */
    pc->outstanding++;
    if (cashu_wallet_recover(w, on_recovered, pc)) {
        pc->outstanding--;
        start_mints(pc);
    }
    out->ops = &cashu_ops;
    out->self = pc;
    out->name = "cashu";
    return 0;
}

unsigned agent_pay_cashu_outstanding(const agent_pay_t *p) {
    const agent_pay_cashu_t *pc = p->self;
    return pc->outstanding;
}

int agent_pay_cashu_claiming(const agent_pay_t *p) {
    const agent_pay_cashu_t *pc = p->self;
    cashu_balance_t b;
    for (size_t i = 0; i < pc->nmints; i++) {
        if (pc->mints[i].in_flight || pc->mints[i].window_open) return 1;
        if (cashu_wallet_balance(pc->w, pc->mints[i].url, &b) == 0 && b.incoming) return 1;
    }
    return 0;
}

void agent_pay_cashu_free(agent_pay_t *p) {
    agent_pay_cashu_t *pc = p->self;
    for (size_t i = 0; i < pc->nmints; i++) free(pc->mints[i].url);
    free(pc);
}
