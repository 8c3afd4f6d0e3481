/* SPDX-License-Identifier: MIT */
#include "agent/agent_pay.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/common_err.h"

int agent_unlocked_policy_parse(const char *s, agent_unlocked_policy_t *out) {
    if (!s) return COMMON_EINVAL;
    if (!strcmp(s, "swap"))
        *out = AGENT_UNLOCKED_SWAP;
    else if (!strcmp(s, "peek"))
        *out = AGENT_UNLOCKED_PEEK;
    else if (!strcmp(s, "reject"))
        *out = AGENT_UNLOCKED_REJECT;
    else
        return COMMON_EINVAL;
    return 0;
}

proto_error_code_t agent_pay_error_code(int rc) {
    switch (rc) {
    case CASHU_EBAD_TOKEN:
    case CASHU_EDLEQ:
    case CASHU_EKEYSET:
    case CASHU_EUNIT: return PROTO_CODE_BAD_TOKEN;
    case CASHU_ESPENT:
    case CASHU_EREPLAY: return PROTO_CODE_TOKEN_SPENT;
    case CASHU_EMINT_NOT_ACCEPTED: return PROTO_CODE_MINT_NOT_ACCEPTED;
    case CASHU_ENOT_LOCKED: return PROTO_CODE_NOT_LOCKED;
    default: return PROTO_CODE_INTERNAL;
    }
}

/* ---- the honest stand-in: no wallet linked, every payment refused ------------------- */

typedef struct unavail_req {
    uv_idle_t idle;
    agent_pay_verdict_cb cb;
    void *ud;
} unavail_req_t;

typedef struct unavail {
    uv_loop_t *loop;
    int closed;
} unavail_t;

static void unavail_free_req(uv_handle_t *h) {
    free(h->data);
}

static void unavail_fire(uv_idle_t *idle) {
    unavail_req_t *r = idle->data;
    uv_idle_stop(idle);
    r->cb(r->ud, COMMON_EUNSUPPORTED, 0, 0,
          "payments unavailable in this build (no wallet linked)");
    uv_close((uv_handle_t *)idle, unavail_free_req);
}

static int unavail_verify(void *self, const char *token, const agent_pay_policy_t *pol,
                          agent_pay_verdict_cb cb, void *ud) {
    (void)token;
    (void)pol;
    unavail_t *u = self;
    unavail_req_t *r = calloc(1, sizeof *r);
    if (!r) return COMMON_ENOMEM;
    r->cb = cb;
    r->ud = ud;
    uv_idle_init(u->loop, &r->idle);
    r->idle.data = r;
    uv_idle_start(&r->idle, unavail_fire);
    return 0;
}

static int unavail_persist(void *self, int64_t row, const char *token, uint64_t amount,
                           int locked) {
    (void)self, (void)row, (void)token, (void)amount, (void)locked;
    return COMMON_EUNSUPPORTED; /* never reached: nothing is ever verified */
}

static int unavail_claim(void *self, int64_t row) {
    (void)self, (void)row;
    return 0;
}

static int unavail_totals(void *self, uint64_t *claimed, uint64_t *pending) {
    (void)self;
    *claimed = *pending = 0;
    return 0;
}

static void unavail_close(void *self) {
    free(self);
}

static const agent_pay_ops_t unavail_ops = {
    .verify = unavail_verify,
    .persist = unavail_persist,
    .claim = unavail_claim,
    .totals = unavail_totals,
    .close = unavail_close,
};

int agent_pay_unavailable(uv_loop_t *loop, agent_pay_t *out) {
    unavail_t *u = calloc(1, sizeof *u);
    if (!u) return COMMON_ENOMEM;
    u->loop = loop;
    out->ops = &unavail_ops;
    out->self = u;
    out->name = "unavailable";
    return 0;
}
