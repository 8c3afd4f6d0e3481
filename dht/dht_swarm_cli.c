/* SPDX-License-Identifier: MIT */
/* dvm-dht connect/serve: see dht_swarm_cli.h. */
#include "dht/dht_swarm_cli.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/common_codec.h"
#include "common/common_env.h"
#include "common/common_err.h"
#include "common/common_log.h"
#include "dht/dht_swarm.h"

#define IN_BUF (64u * 1024)

typedef struct cli {
    uv_loop_t *loop;
    dht_swarm_t *sw;
    dht_swarm_conn_t *conn;
    const dht_swarm_cli_opts_t *o;
    uv_signal_t sigint, sigterm;
    uv_timer_t deadline;
    uv_pipe_t in_pipe;
    int in_is_file, in_open, in_reading, in_eof, in_waiting_drain;
    uv_fs_t in_req;
    uint8_t *in_buf;
    int64_t in_off;
    int had_conn, finished, status, closing, remote_ended;
    uint64_t t_join;
} cli_t;

static void finish(cli_t *c, int status);

static void on_swarm_closed(void *ud) {
    cli_t *c = ud;
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    uv_close((uv_handle_t *)&c->deadline, NULL);
    if (c->in_open && !c->in_is_file) uv_close((uv_handle_t *)&c->in_pipe, NULL);
}

static void finish(cli_t *c, int status) {
    if (c->closing) return;
    c->closing = 1;
    c->status = status;
    if (c->in_open && !c->in_is_file) uv_read_stop((uv_stream_t *)&c->in_pipe);
    dht_swarm_close(c->sw, on_swarm_closed, c);
}

static void write_all(const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void in_read_more(cli_t *c);

static void send_chunk(cli_t *c, const uint8_t *p, size_t n) {
    if (!c->conn) return;
    int rc = dht_swarm_conn_write(c->conn, p, n);
    if (rc == 0) c->in_waiting_drain = 1;
}

static void stdin_eof(cli_t *c) {
    c->in_eof = 1;
    if (c->conn) dht_swarm_conn_end(c->conn);
}

static void on_file_read(uv_fs_t *req) {
    cli_t *c = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    c->in_reading = 0;
    if (c->closing) return;
    if (n <= 0) {
        stdin_eof(c);
        return;
    }
    c->in_off += n;
    send_chunk(c, c->in_buf, (size_t)n);
    if (!c->in_waiting_drain) in_read_more(c);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
    (void)s;
    cli_t *c = h->data;
    *b = uv_buf_init((char *)c->in_buf, IN_BUF);
}

static void on_pipe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    cli_t *c = s->data;
    if (n == UV_EOF || n < 0) {
        uv_read_stop(s);
        c->in_reading = 0;
        stdin_eof(c);
        return;
    }
    if (n == 0) return;
    send_chunk(c, (const uint8_t *)b->base, (size_t)n);
    if (c->in_waiting_drain) {
        uv_read_stop(s);
        c->in_reading = 0;
    }
}

static void in_read_more(cli_t *c) {
    if (c->in_eof || c->in_reading || c->closing || !c->conn || c->in_waiting_drain) return;
    c->in_reading = 1;
    if (c->in_is_file) {
        uv_buf_t b = uv_buf_init((char *)c->in_buf, IN_BUF);
        c->in_req.data = c;
        if (uv_fs_read(c->loop, &c->in_req, 0, &b, 1, c->in_off, on_file_read) != 0) {
            c->in_reading = 0;
            stdin_eof(c);
        }
    } else {
        if (uv_read_start((uv_stream_t *)&c->in_pipe, on_alloc, on_pipe_read) != 0) {
            c->in_reading = 0;
            stdin_eof(c);
        }
    }
}

static void on_c_data(dht_swarm_conn_t *conn, const uint8_t *d, size_t n, void *ud) {
    (void)conn, (void)ud;
    write_all(d, n);
}

static void on_c_drain(dht_swarm_conn_t *conn, void *ud) {
    (void)conn;
    cli_t *c = ud;
    c->in_waiting_drain = 0;
    in_read_more(c);
}

static void on_c_end(dht_swarm_conn_t *conn, void *ud) {
    (void)conn;
    cli_t *c = ud;
    c->remote_ended = 1;
}

static void on_c_close(dht_swarm_conn_t *conn, int status, void *ud) {
    (void)conn;
    cli_t *c = ud;
    c->conn = NULL;
    fprintf(stderr, "closed %s\n", status ? common_err_name(status) : "ok");
    finish(c, status == 0 && c->remote_ended ? 0 : 1);
}

static void on_connection(dht_swarm_t *sw, dht_swarm_conn_t *conn,
                          const dht_swarm_conn_info_t *info, void *ud) {
    (void)sw;
    cli_t *c = ud;
    if (c->conn || c->closing) {
        dht_swarm_conn_close(conn); /* only the first connection is piped */
        return;
    }
    c->conn = conn;
    c->had_conn = 1;
    uv_timer_stop(&c->deadline);
    static const dht_swarm_conn_callbacks_t cbs = {NULL, on_c_data, on_c_drain, on_c_end,
                                                   on_c_close};
    dht_swarm_conn_set_callbacks(conn, &cbs, c);
    char hex[65], as[24];
    common_hex_encode(info->remote_pk, 32, hex);
    dht_ipv4_format(&info->remote, as, sizeof as);
    fprintf(stderr, "connected %s %s %s %.1fms\n", hex, info->initiator ? "client" : "server", as,
            (double)(uv_hrtime() - c->t_join) / 1e6);
    fflush(stderr);
    if (c->in_eof)
        dht_swarm_conn_end(conn);
    else
        in_read_more(c);
}

static void on_announced(dht_swarm_t *sw, const uint8_t topic[32], int status, void *ud) {
    (void)sw, (void)topic, (void)ud;
    fprintf(stderr, "announced %s\n", status ? common_err_name(status) : "ok");
    fflush(stderr);
}

static void on_error(dht_swarm_t *sw, const uint8_t pk[32], int status, const char *reason,
                     void *ud) {
    (void)sw, (void)ud;
    char hex[65];
    common_hex_encode(pk, 32, hex);
    fprintf(stderr, "error %s %s: %s\n", hex, common_err_name(status), reason);
    fflush(stderr);
}

static void on_ready(dht_swarm_t *sw, void *ud) {
    cli_t *c = ud;
    fprintf(stderr, "ready\n");
    fflush(stderr);
    /* join once bootstrapped (as a JS peer after dht.ready()), so the printed
     * join -> connection time excludes the bootstrap */
    c->t_join = uv_hrtime();
    (void)dht_swarm_join(sw, c->o->topic, c->o->server, !c->o->server);
}

static void on_signal(uv_signal_t *s, int sig) {
    (void)sig;
    finish(s->data, 1);
}

static void on_deadline(uv_timer_t *t) {
    cli_t *c = t->data;
    fprintf(stderr, "timeout: no connection\n");
    finish(c, 1);
}

int dht_swarm_cli_run(const dht_swarm_cli_opts_t *o, void *logp) {
    cli_t c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.loop = uv_default_loop();
    common_env_t env;
    common_env_default(&env, c.loop, (const common_log_t *)logp);
    dht_keypair_t kp;
    if (o->seed)
        dht_crypto_keypair_seed(&kp, o->seed);
    else
        dht_crypto_keypair_random(&kp);
    c.in_buf = malloc(IN_BUF);
    if (!c.in_buf) return 1;
    dht_swarm_opts_t so;
    memset(&so, 0, sizeof so);
    so.host = o->host;
    so.port = o->port;
    so.bootstrap = o->bootstrap;
    so.nbootstrap = o->nbootstrap;
    so.allow_local = o->allow_local;
    so.ephemeral = 1;
    so.refresh_ms = o->refresh_ms;
    so.on_connection = on_connection;
    so.on_announced = on_announced;
    so.on_error = on_error;
    so.on_ready = on_ready;
    so.ud = &c;
    int err = 0;
    c.sw = dht_swarm_new(c.loop, &env, &kp, &so, &err);
    dht_crypto_keypair_wipe(&kp);
    if (!c.sw) {
        fprintf(stderr, "dvm-dht: cannot start: %s\n", common_strerror(err));
        free(c.in_buf);
        return 1;
    }
    dht_addr_t a;
    char as[24];
    dht_swarm_server_addr(c.sw, &a);
    dht_ipv4_format(&a, as, sizeof as);
    fprintf(stderr, "listening %s\n", as);
    fflush(stderr);
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_FILE) {
        c.in_is_file = 1;
        c.in_open = 1;
    } else if (uv_pipe_init(c.loop, &c.in_pipe, 0) == 0) {
        c.in_pipe.data = &c;
        if (uv_pipe_open(&c.in_pipe, 0) == 0)
            c.in_open = 1;
        else
            uv_close((uv_handle_t *)&c.in_pipe, NULL);
    }
    if (!c.in_open) c.in_eof = 1;
    uv_signal_init(c.loop, &c.sigint);
    uv_signal_init(c.loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    uv_timer_init(c.loop, &c.deadline);
    c.deadline.data = &c;
    if (o->timeout_ms) uv_timer_start(&c.deadline, on_deadline, o->timeout_ms, 0);
    uv_run(c.loop, UV_RUN_DEFAULT);
    if (c.in_reading && c.in_is_file) uv_cancel((uv_req_t *)&c.in_req);
    uv_run(c.loop, UV_RUN_DEFAULT);
    uv_loop_close(c.loop);
    free(c.in_buf);
    return c.status ? 1 : 0;
}
