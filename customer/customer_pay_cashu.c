/* SPDX-License-Identifier: MIT */
#include "customer/customer_pay_cashu.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

typedef struct cpc {
    uv_loop_t *loop;
    cashu_wallet_t *w;
    char *mint;
    int64_t *bundles;
    size_t nbundles;
    unsigned outstanding;
    int closing;
} cpc_t;

typedef struct preq {
    cpc_t *c;
    customer_pay_tokens_cb cb;
    void *ud;
    uint64_t count, each, locktime;
    int has_lock;
    uint8_t lock[33];
    int tries;
} preq_t;

static int start_prepare(preq_t *r);

static void on_prepared(void *ud, const cashu_result_t *res) {
    preq_t *r = ud;
    cpc_t *c = r->c;
    c->outstanding--;
    if (c->closing) {
        free(r);
        return;
    }
    if (res->err == CASHU_EFUNDS && r->tries < 3) {
        /* fewer tokens than asked: what the balance allows (fees come out of it too) */
        cashu_balance_t b;
        if (cashu_wallet_balance(c->w, c->mint, &b) == 0 && r->each) {
            uint64_t n = b.unspent / r->each;
            if (n >= r->count) n = r->count - 1;
            if (r->tries > 0 && n > 0) n--;
            if (n > 0) {
                r->count = n;
                r->tries++;
                if (start_prepare(r) == 0) return;
            }
        }
    }
    if (res->err || res->ntokens == 0) {
        r->cb(r->ud, res->err ? res->err : CASHU_EFUNDS, NULL, 0);
        free(r);
        return;
    }
    free(c->bundles);
    c->bundles = calloc(res->ntokens, sizeof *c->bundles);
    c->nbundles = c->bundles ? res->ntokens : 0;
    if (c->bundles) memcpy(c->bundles, res->bundle_ids, res->ntokens * sizeof *c->bundles);
    r->cb(r->ud, c->bundles ? 0 : COMMON_ENOMEM, (const char *const *)res->tokens,
          c->bundles ? res->ntokens : 0);
    free(r);
}

static int start_prepare(preq_t *r) {
    cpc_t *c = r->c;
    c->outstanding++;
    int rc =
        cashu_wallet_prepare(c->w, c->mint, (size_t)r->count, r->each, r->has_lock ? r->lock : NULL,
                             r->has_lock ? r->locktime : 0, on_prepared, r);
    if (rc) c->outstanding--;
    return rc;
}

static int p_prepare(void *self, uint64_t count, uint64_t each, const uint8_t *pk, uint64_t lt,
                     customer_pay_tokens_cb cb, void *ud) {
    cpc_t *c = self;
    preq_t *r = calloc(1, sizeof *r);
    if (!r) return COMMON_ENOMEM;
    r->c = c;
    r->cb = cb;
    r->ud = ud;
    r->count = count;
    r->each = each;
    r->locktime = lt;
    if (pk) {
        r->has_lock = 1;
        memcpy(r->lock, pk, 33);
    }
    int rc = start_prepare(r);
    if (rc) free(r);
    return rc;
}

static int p_mark(void *self, uint64_t i) {
    cpc_t *c = self;
    if (i >= c->nbundles) return COMMON_EINVAL;
    return cashu_wallet_mark_sent(c->w, c->bundles[i]);
}

static void on_refund(void *ud, const cashu_result_t *res) {
    (void)res;
    cpc_t *c = ud;
    c->outstanding--;
}

static int p_release(void *self) {
    cpc_t *c = self;
    free(c->bundles);
    c->bundles = NULL;
    c->nbundles = 0;
    c->outstanding++;
    int rc = cashu_wallet_refund(c->w, c->mint, on_refund, c);
    if (rc) c->outstanding--;
    return rc;
}

static void p_close(void *self) {
    ((cpc_t *)self)->closing = 1;
}

static const customer_pay_ops_t ops = {
    .prepare = p_prepare, .mark_sent = p_mark, .release = p_release, .close = p_close};

int customer_pay_cashu(uv_loop_t *loop, cashu_wallet_t *w, const char *mint, customer_pay_t *out) {
    cpc_t *c = calloc(1, sizeof *c);
    if (!c) return COMMON_ENOMEM;
    size_t n = strlen(mint);
    while (n > 0 && mint[n - 1] == '/') n--;
    if (!(c->mint = strndup(mint, n))) {
        free(c);
        return COMMON_ENOMEM;
    }
    c->loop = loop;
    c->w = w;
    out->ops = &ops;
    out->self = c;
    out->name = "cashu";
    return 0;
}

unsigned customer_pay_cashu_outstanding(const customer_pay_t *p) {
    return ((const cpc_t *)p->self)->outstanding;
}

void customer_pay_cashu_free(customer_pay_t *p) {
    cpc_t *c = p->self;
    free(c->bundles);
    free(c->mint);
    free(c);
}
