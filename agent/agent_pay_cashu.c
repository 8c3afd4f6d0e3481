/* SPDX-License-Identifier: MIT */
/* The provider's payments over the Cashu wallet (cashu_wallet.h), dvm-protocol.md §6:
 *  - a token whose proofs carry NUT-10 secrets takes the locked path: offline verification
 *    (mint list, keyset, replay, P2PK lock to our key with enough locktime, DLEQ) which also
 *    records the proofs as "incoming" in wallet.db (durable before the ack);
 *  - a plain token follows --accept-unlocked: swap (cashu_wallet_receive, online, final),
 *    peek (offline with DLEQ required, recorded as incoming) or reject (not_locked);
 *  - claims: one cashu_wallet_claim per accepted mint (the wallet batches by the mint's input
 *    limit), retried with backoff while the mint fails, and once at start (restart claims). */
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

typedef struct mint_state {
    char *url;
    int in_flight, again;
    uint64_t backoff_ms;
    uv_timer_t retry;
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
    int closing;
    uint64_t claimed_total, claim_failures;
} agent_pay_cashu_t;

typedef struct vreq {
    agent_pay_cashu_t *pc;
    uv_timer_t t; /* to answer a synchronous verdict asynchronously */
    agent_pay_verdict_cb cb;
    void *ud;
    int rc, locked, retried;
    uint64_t amount;
    char *token;
    cashu_policy_t pol;
    char msg[160];
} vreq_t;

static const common_log_t *LOGP(const agent_pay_cashu_t *pc) {
    return pc->env ? pc->env->log : NULL;
}

static void vreq_free(uv_handle_t *h) {
    vreq_t *v = h->data;
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

static void on_loaded(void *ud, const cashu_result_t *res) {
    vreq_t *v = ud;
    if (res->err) {
        vreq_answer(v, CASHU_EMINT_UNREACHABLE, 0, "cannot load the mint's keysets");
        return;
    }
    v->retried = 1;
    offline(v);
}

static void offline(vreq_t *v) {
    uint64_t amount = 0;
    int rc = cashu_wallet_accept_offline(v->pc->w, v->token, &v->pol, &amount);
    if (rc == CASHU_EKEYSET && !v->retried) { /* a keyset we have not loaded yet */
        cashu_token_t t;
        if (cashu_token_decode(v->token, strlen(v->token), &t) == 0) {
            int lr = cashu_wallet_load_mint(v->pc->w, t.mint, on_loaded, v);
            cashu_token_free(&t);
            if (lr == 0) return;
        }
    }
    vreq_answer(v, rc, rc ? 0 : amount, NULL);
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

static int pc_claim(void *self, int64_t row) {
    (void)row; /* claims are per mint: everything incoming there, this job's tokens included */
    agent_pay_cashu_t *pc = self;
    for (size_t i = 0; i < pc->nmints; i++) claim_mint(&pc->mints[i]);
    return 0;
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
    for (size_t i = 0; i < pc->nmints; i++) {
        uv_timer_stop(&pc->mints[i].retry);
        uv_close((uv_handle_t *)&pc->mints[i].retry, NULL);
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

int agent_pay_cashu(uv_loop_t *loop, const common_env_t *env, cashu_wallet_t *w,
                    const char *const *mints, size_t nmints, agent_pay_t *out) {
    if (nmints > MAX_MINTS) return COMMON_EINVAL;
    agent_pay_cashu_t *pc = calloc(1, sizeof *pc);
    if (!pc) return COMMON_ENOMEM;
    pc->loop = loop;
    pc->env = env;
    pc->w = w;
    for (size_t i = 0; i < nmints; i++) {
        mint_state_t *m = &pc->mints[i];
        size_t n = strlen(mints[i]);
        while (n > 0 && mints[i][n - 1] == '/') n--;
        m->url = strndup(mints[i], n);
        m->pc = pc;
        uv_timer_init(loop, &m->retry);
        m->retry.data = m;
        pc->mint_list[i] = m->url;
        pc->nmints++;
    }
    for (size_t i = 0; i < nmints; i++) {
        pc->outstanding++;
        if (cashu_wallet_load_mint(w, pc->mints[i].url, on_mint_loaded, &pc->mints[i]))
            pc->outstanding--;
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
        if (pc->mints[i].in_flight) return 1;
        if (cashu_wallet_balance(pc->w, pc->mints[i].url, &b) == 0 && b.incoming) return 1;
    }
    return 0;
}

void agent_pay_cashu_free(agent_pay_t *p) {
    agent_pay_cashu_t *pc = p->self;
    for (size_t i = 0; i < pc->nmints; i++) free(pc->mints[i].url);
    free(pc);
}
