/* SPDX-License-Identifier: MIT */
#include "agent/agent_swarm.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_log.h"

static int tr_write(void *t, const void *data, size_t len) {
    return dht_swarm_conn_write(t, data, len);
}
static void tr_close(void *t) {
    dht_swarm_conn_close(t);
}
static const agent_transport_t swarm_transport = {.write = tr_write, .close = tr_close};

typedef struct sw_ud {
    agent_server_t *srv;
    agent_conn_t *ac;
} sw_ud_t;

static void on_connect(dht_swarm_conn_t *c, const uint8_t *pk, void *ud) {
    sw_ud_t *u = ud;
    u->ac = agent_server_conn_open(u->srv, &swarm_transport, c, pk);
    if (!u->ac) dht_swarm_conn_close(c);
}
static void on_data(dht_swarm_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    (void)c;
    sw_ud_t *u = ud;
    if (u->ac) agent_server_conn_data(u->ac, data, len);
}
static void on_end(dht_swarm_conn_t *c, void *ud) {
    (void)ud;
    dht_swarm_conn_end(c);
}
static void on_close(dht_swarm_conn_t *c, int status, void *ud) {
    (void)c, (void)status;
    sw_ud_t *u = ud;
    if (u->ac) agent_server_conn_closed(u->ac);
    free(u);
}
static const dht_swarm_conn_callbacks_t conn_cbs = {
    .on_connect = on_connect, .on_data = on_data, .on_end = on_end, .on_close = on_close};

typedef struct sw_app {
    agent_server_t *srv;
    const common_env_t *env;
} sw_app_t;

static void on_connection(dht_swarm_t *sw, dht_swarm_conn_t *c, const dht_swarm_conn_info_t *info,
                          void *ud) {
    (void)sw, (void)info;
    sw_app_t *a = ud;
    sw_ud_t *u = calloc(1, sizeof *u);
    if (!u) {
        dht_swarm_conn_close(c);
        return;
    }
    u->srv = a->srv;
    dht_swarm_conn_set_callbacks(c, &conn_cbs, u);
}

static void on_announced(dht_swarm_t *sw, const uint8_t topic[32], int status, void *ud) {
    (void)sw;
    sw_app_t *a = ud;
    char th[17];
    common_hex_encode(topic, 8, th);
    if (status)
        LOG_WARN(a->env->log, "agent", "announce of topic %s… failed: %s", th,
                 common_strerror(status));
    else
        LOG_INFO(a->env->log, "agent", "announced on topic %s…", th);
}

struct agent_swarm {
    sw_app_t app;
    dht_swarm_t *sw;
    uint8_t topic[32];
    void (*closed)(void *);
    void *closed_ud;
};

dht_swarm_t *agent_swarm_dht(agent_swarm_t *as) {
    return as->sw;
}

static void on_swarm_closed(void *ud) {
    agent_swarm_t *as = ud;
    if (as->closed) as->closed(as->closed_ud);
    free(as);
}

void agent_swarm_close(agent_swarm_t *as, void (*cb)(void *ud), void *ud) {
    as->closed = cb;
    as->closed_ud = ud;
    dht_swarm_close(as->sw, on_swarm_closed, as);
}

void agent_swarm_leave(agent_swarm_t *as) {
    dht_swarm_leave(as->sw, as->topic);
}

agent_swarm_t *agent_swarm_serve(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                                 const agent_swarm_opts_t *o, const uint8_t topic[32],
                                 agent_server_t *srv, int *err) {
    agent_swarm_t *as = calloc(1, sizeof *as);
    if (!as) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    sw_app_t *a = &as->app;
    a->srv = srv;
    a->env = env;
    memcpy(as->topic, topic, 32);
    dht_swarm_opts_t so;
    agent_swarm_net_opts(o, &so);
    so.on_connection = on_connection;
    so.on_announced = on_announced;
    so.ud = a;
    as->sw = dht_swarm_new(loop, env, kp, &so, err);
    if (!as->sw) {
        free(as);
        return NULL;
    }
    if ((*err = dht_swarm_join(as->sw, topic, 1, 0))) {
        agent_swarm_close(as, NULL, NULL);
        return NULL;
    }
    return as;
}

void agent_swarm_net_opts(const agent_swarm_opts_t *o, dht_swarm_opts_t *out) {
    memset(out, 0, sizeof *out);
    out->host = o->host;
    out->port = o->port;
    out->bootstrap = o->bootstrap;
    out->nbootstrap = o->nbootstrap;
    out->allow_local = o->allow_local;
    out->refresh_ms = o->refresh_ms;
}
