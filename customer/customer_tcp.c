/* SPDX-License-Identifier: MIT */
#include "customer/customer_tcp.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_net.h"
#include "common/common_err.h"
#include "dht/dht_tcp.h"

typedef struct tconn {
    customer_t *cu;
    size_t attempt;
    int up;
} tconn_t;

static int tr_write(void *t, const void *data, size_t len) {
    return dht_tcp_write(t, data, len);
}
static void tr_close(void *t) {
    dht_tcp_close(t);
}
static const customer_transport_t tcp_tr = {.write = tr_write, .close = tr_close};

static void on_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    tconn_t *u = ud;
    u->up = 1;
    customer_conn_up(u->cu, &tcp_tr, c, pk);
}
static void on_data(dht_tcp_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    tconn_t *u = ud;
    customer_conn_data(u->cu, c, data, len);
}
static void on_end(dht_tcp_conn_t *c, void *ud) {
    (void)ud;
    dht_tcp_end(c);
}
static void on_close(dht_tcp_conn_t *c, int status, void *ud) {
    tconn_t *u = ud;
    if (u->up)
        customer_conn_closed(u->cu, c, status);
    else
        customer_conn_failed(u->cu, u->attempt, status ? status : COMMON_ECONNREFUSED);
    free(u);
}

static int dial(void *self, customer_t *cu, size_t attempt) {
    customer_tcp_dialer_t *d = self;
    if (attempt >= d->npeers) return COMMON_ENOTFOUND;
    char host[256];
    uint16_t port;
    if (common_parse_hostport(d->peers[attempt], host, sizeof host, &port)) return COMMON_EINVAL;
    tconn_t *u = calloc(1, sizeof *u);
    if (!u) return COMMON_ENOMEM;
    u->cu = cu;
    u->attempt = attempt;
    dht_tcp_callbacks_t cbs = {
        .on_connect = on_connect, .on_data = on_data, .on_end = on_end, .on_close = on_close};
    int err = 0;
    if (!dht_tcp_connect(d->loop, d->env, d->kp, host, port, NULL, &cbs, u, &err)) {
        free(u);
        return err ? err : COMMON_EINVAL;
    }
    return 0;
}

void customer_tcp_dialer(customer_tcp_dialer_t *d, customer_dialer_t *out) {
    out->dial = dial;
    out->self = d;
}
