/* SPDX-License-Identifier: MIT */
#include "customer/customer_pay.h"

#include <stdlib.h>
#include <uv.h>

#include "common/common_err.h"

typedef struct unavail_req {
    uv_idle_t idle;
    customer_pay_tokens_cb cb;
    void *ud;
} unavail_req_t;

static void req_free(uv_handle_t *h) {
    free(h->data);
}

static void fire(uv_idle_t *idle) {
    unavail_req_t *r = idle->data;
    uv_idle_stop(idle);
    r->cb(r->ud, COMMON_EUNSUPPORTED, NULL, 0);
    uv_close((uv_handle_t *)idle, req_free);
}

static int u_prepare(void *self, uint64_t count, uint64_t each, const uint8_t *pk, uint64_t lt,
                     customer_pay_tokens_cb cb, void *ud) {
    (void)count, (void)each, (void)pk, (void)lt;
    unavail_req_t *r = calloc(1, sizeof *r);
    if (!r) return COMMON_ENOMEM;
    r->cb = cb;
    r->ud = ud;
    uv_idle_init(self, &r->idle);
    r->idle.data = r;
    uv_idle_start(&r->idle, fire);
    return 0;
}

static int u_mark(void *self, uint64_t i) {
    (void)self, (void)i;
    return 0;
}

static int u_release(void *self) {
    (void)self;
    return 0;
}

static void u_close(void *self) {
    (void)self;
}

static const customer_pay_ops_t unavail_ops = {
    .prepare = u_prepare, .mark_sent = u_mark, .release = u_release, .close = u_close};

int customer_pay_unavailable(uv_loop_t *loop, customer_pay_t *out) {
    out->ops = &unavail_ops;
    out->self = loop;
    out->name = "unavailable";
    return 0;
}
