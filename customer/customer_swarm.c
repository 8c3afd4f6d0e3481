/* SPDX-License-Identifier: MIT */
#include "customer/customer_swarm.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_log.h"

typedef struct sconn {
    struct customer_swarm_dialer *d;
    dht_swarm_conn_t *c;
    uint8_t pk[32];
    int up, queued, current;
} sconn_t;

struct customer_swarm_dialer {
    uv_loop_t *loop;
    const common_env_t *env;
    dht_swarm_t *sw;
    customer_t *cu;
    uint8_t topic[32], pk[32];
    int has_pk, started, exhausted;
    uint64_t discover_ms;
    sconn_t *q[CUSTOMER_SWARM_QUEUE];
    size_t nq;
    uint8_t tried[CUSTOMER_SWARM_QUEUE][32];
    size_t ntried;
    int waiting;
    size_t waiting_attempt;
    uv_timer_t timer, handoff;
    sconn_t *pending; /* handed to the runtime on the next loop turn */
    void (*closed)(void *);
    void *closed_ud;
    int nclosing;
};

static int tr_write(void *t, const void *data, size_t len) {
    return dht_swarm_conn_write(t, data, len);
}
static void tr_close(void *t) {
    dht_swarm_conn_close(t);
}
static const customer_transport_t swarm_tr = {.write = tr_write, .close = tr_close};

static int was_tried(customer_swarm_dialer_t *d, const uint8_t pk[32]) {
    for (size_t i = 0; i < d->ntried; i++)
        if (!memcmp(d->tried[i], pk, 32)) return 1;
    return 0;
}

static void q_remove(customer_swarm_dialer_t *d, sconn_t *s) {
    for (size_t i = 0; i < d->nq; i++)
        if (d->q[i] == s) {
            memmove(&d->q[i], &d->q[i + 1], (d->nq - i - 1) * sizeof *d->q);
            d->nq--;
            break;
        }
    s->queued = 0;
}

static void handoff_cb(uv_timer_t *t) {
    customer_swarm_dialer_t *d = t->data;
    sconn_t *s = d->pending;
    d->pending = NULL;
    if (!s) return;
    s->current = 1;
    customer_conn_up(d->cu, &swarm_tr, s->c, s->pk);
}

static void take(customer_swarm_dialer_t *d, sconn_t *s) {
    q_remove(d, s);
    if (d->ntried < CUSTOMER_SWARM_QUEUE) memcpy(d->tried[d->ntried++], s->pk, 32);
    d->waiting = 0;
    uv_timer_stop(&d->timer);
    d->pending = s;
    uv_timer_start(&d->handoff, handoff_cb, 0, 0);
}

static void on_connect(dht_swarm_conn_t *c, const uint8_t *pk, void *ud) {
    (void)c;
    sconn_t *s = ud;
    customer_swarm_dialer_t *d = s->d;
    memcpy(s->pk, pk, 32);
    s->up = 1;
    if (was_tried(d, pk) || d->nq >= CUSTOMER_SWARM_QUEUE || (d->has_pk && memcmp(pk, d->pk, 32))) {
        dht_swarm_conn_close(c);
        return;
    }
    d->q[d->nq++] = s;
    s->queued = 1;
    if (d->waiting) take(d, s);
}
static void on_data(dht_swarm_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    sconn_t *s = ud;
    if (s->current) customer_conn_data(s->d->cu, c, data, len);
}
static void on_end(dht_swarm_conn_t *c, void *ud) {
    (void)ud;
    dht_swarm_conn_end(c);
}
static void on_close(dht_swarm_conn_t *c, int status, void *ud) {
    sconn_t *s = ud;
    customer_swarm_dialer_t *d = s->d;
    if (s->queued) q_remove(d, s);
    if (d->pending == s) d->pending = NULL;
    if (s->current) customer_conn_closed(d->cu, c, status);
    free(s);
}
static const dht_swarm_conn_callbacks_t cbs = {
    .on_connect = on_connect, .on_data = on_data, .on_end = on_end, .on_close = on_close};

static void on_connection(dht_swarm_t *sw, dht_swarm_conn_t *c, const dht_swarm_conn_info_t *info,
                          void *ud) {
    (void)sw;
    customer_swarm_dialer_t *d = ud;
    sconn_t *s = calloc(1, sizeof *s);
    if (!s || !info->initiator) { /* we only dial out; a provider never calls a customer */
        free(s);
        dht_swarm_conn_close(c);
        return;
    }
    s->d = d;
    s->c = c;
    dht_swarm_conn_set_callbacks(c, &cbs, s);
}

static void on_error(dht_swarm_t *sw, const uint8_t pk[32], int status, const char *reason,
                     void *ud) {
    (void)sw, (void)pk;
    customer_swarm_dialer_t *d = ud;
    LOG_DEBUG(d->env->log, "customer", "provider connection failed: %s (%s)", reason,
              common_strerror(status));
}

static void timer_cb(uv_timer_t *t) {
    customer_swarm_dialer_t *d = t->data;
    if (!d->waiting) return;
    d->waiting = 0;
    d->exhausted = 1;
    customer_conn_failed(d->cu, d->waiting_attempt, DHT_ENOPEERS);
}

static int dial(void *self, customer_t *cu, size_t attempt) {
    customer_swarm_dialer_t *d = self;
    d->cu = cu;
    if (!d->started) {
        d->started = 1;
        /* a join link's provider is looked up on its topic and picked by key (connections
         * to other keys are closed in on_connect): FIND_PEER by key alone
         * (dht_swarm_join_peer) did not connect on the loopback testnet */
        int rc = dht_swarm_join(d->sw, d->topic, 0, 1);
        if (rc) return rc;
    } else {
        dht_swarm_refresh(d->sw); /* look for more providers */
    }
    if (d->nq > 0) {
        take(d, d->q[0]);
        return 0;
    }
    if (d->exhausted && attempt > 0) return COMMON_ENOTFOUND;
    d->waiting = 1;
    d->waiting_attempt = attempt;
    uv_timer_start(&d->timer, timer_cb, attempt == 0 ? d->discover_ms : 3000, 0);
    return 0;
}

customer_swarm_dialer_t *customer_swarm_new(uv_loop_t *loop, const common_env_t *env,
                                            const dht_keypair_t *kp, const dht_swarm_opts_t *net,
                                            const uint8_t topic[32], const uint8_t *pk,
                                            uint64_t discover_ms, int *err) {
    customer_swarm_dialer_t *d = calloc(1, sizeof *d);
    if (!d) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    d->loop = loop;
    d->env = env;
    memcpy(d->topic, topic, 32);
    if (pk) {
        d->has_pk = 1;
        memcpy(d->pk, pk, 32);
    }
    d->discover_ms = discover_ms ? discover_ms : 30000;
    dht_swarm_opts_t so;
    memset(&so, 0, sizeof so);
    so.host = net->host;
    so.port = net->port;
    so.bootstrap = net->bootstrap;
    so.nbootstrap = net->nbootstrap;
    so.allow_local = net->allow_local;
    so.ephemeral = 1;
    so.refresh_ms = net->refresh_ms;
    so.on_connection = on_connection;
    so.on_error = on_error;
    so.ud = d;
    d->sw = dht_swarm_new(loop, env, kp, &so, err);
    if (!d->sw) {
        free(d);
        return NULL;
    }
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->handoff);
    d->timer.data = d->handoff.data = d;
    return d;
}

void customer_swarm_dialer(customer_swarm_dialer_t *d, customer_dialer_t *out) {
    out->dial = dial;
    out->self = d;
}

static void freed(uv_handle_t *h) {
    customer_swarm_dialer_t *d = h->data;
    if (--d->nclosing > 0) return; /* close callbacks come in any order: free at the last */
    void (*cb)(void *) = d->closed;
    void *ud = d->closed_ud;
    free(d);
    if (cb) cb(ud);
}

static void swarm_closed(void *ud) {
    customer_swarm_dialer_t *d = ud;
    d->nclosing = 2;
    uv_close((uv_handle_t *)&d->timer, freed);
    uv_close((uv_handle_t *)&d->handoff, freed);
}

void customer_swarm_close(customer_swarm_dialer_t *d, void (*cb)(void *ud), void *ud) {
    d->closed = cb;
    d->closed_ud = ud;
    d->waiting = 0;
    uv_timer_stop(&d->timer);
    uv_timer_stop(&d->handoff);
    d->pending = NULL;
    dht_swarm_close(d->sw, swarm_closed, d);
}
