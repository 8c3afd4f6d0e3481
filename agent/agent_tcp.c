/* SPDX-License-Identifier: MIT */
#include "agent/agent_tcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"

static int tr_write(void *t, const void *data, size_t len) {
    return dht_tcp_write(t, data, len);
}

static void tr_close(void *t) {
    dht_tcp_close(t);
}

static const agent_transport_t tcp_transport = {.write = tr_write, .close = tr_close};

/* Before on_connect the connection's ud is the agent_server_t; after it, the agent_conn_t
 * (or NULL when the server refused it). A flag tells them apart. */
typedef struct tcp_ud {
    agent_server_t *srv;
    agent_conn_t *ac;
} tcp_ud_t;

static void on_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    tcp_ud_t *u = ud;
    u->ac = agent_server_conn_open(u->srv, &tcp_transport, c, pk);
    if (!u->ac) dht_tcp_close(c);
}

static void on_data(dht_tcp_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    (void)c;
    tcp_ud_t *u = ud;
    if (u->ac) agent_server_conn_data(u->ac, data, len);
}

static void on_end(dht_tcp_conn_t *c, void *ud) {
    (void)ud;
    dht_tcp_end(c); /* the customer is done writing: so are we */
}

static void on_close(dht_tcp_conn_t *c, int status, void *ud) {
    (void)c;
    (void)status;
    tcp_ud_t *u = ud;
    if (u->ac) agent_server_conn_closed(u->ac);
    free(u);
}

static const dht_tcp_callbacks_t conn_cbs = {
    .on_connect = on_connect, .on_data = on_data, .on_end = on_end, .on_close = on_close};

static void on_accept(dht_tcp_server_t *srv, dht_tcp_conn_t *c, void *ud) {
    (void)srv;
    tcp_ud_t *u = calloc(1, sizeof *u);
    if (!u) {
        dht_tcp_close(c); /* no callbacks installed: nothing is called back */
        return;
    }
    u->srv = ud;
    dht_tcp_conn_set_callbacks(c, &conn_cbs, u);
}

dht_tcp_server_t *agent_tcp_listen(uv_loop_t *loop, const common_env_t *env,
                                   const dht_keypair_t *kp, const char *host, uint16_t port,
                                   agent_server_t *srv, int *err) {
    return dht_tcp_listen(loop, env, kp, host, port, NULL, on_accept, srv, err);
}
