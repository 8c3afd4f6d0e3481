/* SPDX-License-Identifier: MIT */
/* dht_tcp on a real libuv loop over 127.0.0.1: C<->C exchange and clean close, write
 * backpressure with read pause/resume, close from inside a callback, connection refused,
 * handshake timeout against a silent server, and a keep-alive-carrying idle connection.
 * Each test is bounded by a watchdog timer. */
#include <sodium.h>
#include <string.h>
#include <uv.h>

#include "common/common_err.h"
#include "dht/dht_tcp.h"
#include "tests/test.h"

typedef struct side {
    dht_tcp_conn_t *c;
    int connects, ends, closes, drains;
    int status;
    uint8_t remote[32];
    size_t got;
    uint64_t sum;
    size_t to_send, sent;
    int write_zero;
    int close_on_data;
    int pause_first;
    int end_after_send;
} side_t;

typedef struct world {
    uv_loop_t loop;
    common_env_t env;
    uv_timer_t watchdog;
    dht_tcp_server_t *srv;
    dht_keypair_t ka, kb;
    side_t a, b; /* a connects, b is accepted */
    int timed_out;
    dht_tcp_opts_t opts;
} world_t;

static world_t *W;

static uint8_t pattern(size_t i) {
    return (uint8_t)(i * 7 + (i >> 10));
}

static void pump_writes(side_t *s) {
    static uint8_t buf[16384];
    while (s->sent < s->to_send) {
        size_t n = s->to_send - s->sent < sizeof buf ? s->to_send - s->sent : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = pattern(s->sent + i);
        int rc = dht_tcp_write(s->c, buf, n);
        if (rc < 0) return;
        s->sent += n;
        if (rc == 0) {
            s->write_zero++;
            return;
        }
    }
    if (s->end_after_send) {
        s->end_after_send = 0;
        dht_tcp_end(s->c);
    }
}

static void on_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    side_t *s = ud;
    s->c = c;
    s->connects++;
    memcpy(s->remote, pk, 32);
    pump_writes(s);
}

static void on_data(dht_tcp_conn_t *c, const uint8_t *d, size_t n, void *ud) {
    side_t *s = ud;
    for (size_t i = 0; i < n; i++)
        if (d[i] != pattern(s->got + i)) s->sum++; /* mismatches */
    s->got += n;
    if (s->close_on_data) dht_tcp_close(c);
}

static void on_drain(dht_tcp_conn_t *c, void *ud) {
    side_t *s = ud;
    (void)c;
    s->drains++;
    pump_writes(s);
}

static void on_end(dht_tcp_conn_t *c, void *ud) {
    side_t *s = ud;
    s->ends++;
    if (s->sent >= s->to_send) dht_tcp_end(c); /* done writing too */
}

static void maybe_stop(void) {
    if (W->a.closes && W->b.closes) {
        uv_timer_stop(&W->watchdog);
        uv_close((uv_handle_t *)&W->watchdog, NULL);
        if (W->srv) dht_tcp_server_close(W->srv);
        W->srv = NULL;
    }
}

static void on_close(dht_tcp_conn_t *c, int status, void *ud) {
    side_t *s = ud;
    (void)c;
    s->closes++;
    s->status = status;
    s->c = NULL;
    maybe_stop();
}

static const dht_tcp_callbacks_t CBS = {on_connect, on_data, on_drain, on_end, on_close};

static void on_accept(dht_tcp_server_t *srv, dht_tcp_conn_t *c, void *ud) {
    world_t *w = ud;
    (void)srv;
    w->b.c = c;
    dht_tcp_conn_set_callbacks(c, &CBS, &w->b);
    if (w->b.pause_first) dht_tcp_pause(c);
}

static void on_watchdog(uv_timer_t *t) {
    world_t *w = t->data;
    w->timed_out = 1;
    uv_stop(&w->loop);
}

static void world_init(world_t *w, const dht_tcp_opts_t *opts) {
    if (sodium_init() < 0) abort();
    memset(w, 0, sizeof *w);
    W = w;
    uv_loop_init(&w->loop);
    common_env_default(&w->env, &w->loop, NULL);
    dht_crypto_keypair_random(&w->ka);
    dht_crypto_keypair_random(&w->kb);
    if (opts) w->opts = *opts;
    uv_timer_init(&w->loop, &w->watchdog);
    w->watchdog.data = w;
    uv_timer_start(&w->watchdog, on_watchdog, 15000, 0);
}

static int world_start(world_t *w) {
    int err = 0;
    w->srv =
        dht_tcp_listen(&w->loop, &w->env, &w->kb, "127.0.0.1", 0, &w->opts, on_accept, w, &err);
    if (!w->srv) return err;
    uint16_t port = dht_tcp_server_port(w->srv);
    if (!dht_tcp_connect(&w->loop, &w->env, &w->ka, "127.0.0.1", port, &w->opts, &CBS, &w->a, &err))
        return err;
    return 0;
}

static void world_run(world_t *w) {
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->timed_out) { /* close whatever is left so the loop can be closed */
        if (w->a.c) dht_tcp_close(w->a.c);
        if (w->b.c) dht_tcp_close(w->b.c);
        if (w->srv) dht_tcp_server_close(w->srv);
        w->srv = NULL;
        if (!uv_is_closing((uv_handle_t *)&w->watchdog))
            uv_close((uv_handle_t *)&w->watchdog, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&w->loop);
}

TEST(exchange_and_clean_close) {
    world_t w;
    world_init(&w, NULL);
    w.a.to_send = 3u << 20;
    w.a.end_after_send = 1;
    w.b.to_send = 12345;
    w.b.end_after_send = 1;
    ASSERT_OK(world_start(&w));
    world_run(&w);
    ASSERT_FALSE(w.timed_out);
    ASSERT_EQ_I64(w.a.connects, 1);
    ASSERT_EQ_I64(w.b.connects, 1);
    ASSERT_MEM_EQ(w.a.remote, w.kb.pk, 32);
    ASSERT_MEM_EQ(w.b.remote, w.ka.pk, 32);
    ASSERT_EQ_U64(w.b.got, 3u << 20);
    ASSERT_EQ_U64(w.a.got, 12345);
    ASSERT_EQ_U64(w.a.sum + w.b.sum, 0);
    ASSERT_EQ_I64(w.a.ends, 1);
    ASSERT_EQ_I64(w.b.ends, 1);
    ASSERT_EQ_I64(w.a.closes, 1);
    ASSERT_EQ_I64(w.b.closes, 1);
    ASSERT_EQ_I64(w.a.status, 0);
    ASSERT_EQ_I64(w.b.status, 0);
}

static uv_timer_t resume_timer;
static void do_resume(uv_timer_t *t) {
    (void)t;
    if (W->b.c) dht_tcp_resume(W->b.c);
    uv_close((uv_handle_t *)&resume_timer, NULL);
}

TEST(backpressure_and_pause) {
    world_t w;
    dht_tcp_opts_t o = {.high_water = 64 * 1024};
    world_init(&w, &o);
    w.a.to_send = 8u << 20;
    w.a.end_after_send = 1;
    w.b.pause_first = 1; /* the receiver reads nothing for 300 ms */
    ASSERT_OK(world_start(&w));
    uv_timer_init(&w.loop, &resume_timer);
    uv_timer_start(&resume_timer, do_resume, 300, 0);
    world_run(&w);
    ASSERT_FALSE(w.timed_out);
    ASSERT_GT(w.a.write_zero, 0); /* the writer was told to wait */
    ASSERT_GT(w.a.drains, 0);     /* and was woken up again */
    ASSERT_EQ_U64(w.b.got, 8u << 20);
    ASSERT_EQ_U64(w.b.sum, 0);
    ASSERT_EQ_I64(w.a.status, 0);
    ASSERT_EQ_I64(w.b.status, 0);
}

TEST(close_inside_callback) {
    world_t w;
    world_init(&w, NULL);
    w.a.to_send = 1u << 20;
    w.b.close_on_data = 1;
    ASSERT_OK(world_start(&w));
    world_run(&w);
    ASSERT_FALSE(w.timed_out);
    ASSERT_EQ_I64(w.b.closes, 1);
    ASSERT_EQ_I64(w.b.status, 0);
    ASSERT_EQ_I64(w.a.closes, 1); /* the writer sees the connection go away */
    ASSERT_GT(w.b.got, 0);
}

TEST(refused_and_bad_args) {
    world_t w;
    world_init(&w, NULL);
    /* find a free port, then close it */
    uv_tcp_t t;
    uv_tcp_init(&w.loop, &t);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    ASSERT_OK(uv_tcp_bind(&t, (const struct sockaddr *)&sa, 0));
    int len = sizeof sa;
    uv_tcp_getsockname(&t, (struct sockaddr *)&sa, &len);
    uint16_t port = ntohs(sa.sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    int err = 0;
    ASSERT_TRUE(
        dht_tcp_connect(&w.loop, &w.env, &w.ka, "not-an-ip", port, NULL, &CBS, &w.a, &err) == NULL);
    ASSERT_EQ_I64(err, COMMON_EINVAL);
    dht_tcp_conn_t *c =
        dht_tcp_connect(&w.loop, &w.env, &w.ka, "127.0.0.1", port, NULL, &CBS, &w.a, &err);
    ASSERT_TRUE(c != NULL);
    ASSERT_ERR(dht_tcp_write(c, "x", 1), COMMON_ESTATE); /* before on_connect */
    w.b.closes = 1;                                      /* only one side here */
    world_run(&w);
    ASSERT_FALSE(w.timed_out);
    ASSERT_EQ_I64(w.a.closes, 1);
    ASSERT_EQ_I64(w.a.connects, 0);
    ASSERT_EQ_I64(w.a.status, COMMON_ECONNREFUSED);
}

static void silent_accept(uv_stream_t *server, int status) {
    (void)status;
    uv_tcp_t *cl = malloc(sizeof *cl);
    uv_tcp_init(server->loop, cl);
    uv_accept(server, (uv_stream_t *)cl);
    server->data = cl; /* keep it open, say nothing */
}

static void free_handle(uv_handle_t *h) {
    free(h);
}

TEST(handshake_timeout) {
    world_t w;
    dht_tcp_opts_t o = {.handshake_timeout_ms = 200};
    world_init(&w, &o);
    uv_tcp_t srv;
    uv_tcp_init(&w.loop, &srv);
    srv.data = NULL;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    ASSERT_OK(uv_tcp_bind(&srv, (const struct sockaddr *)&sa, 0));
    ASSERT_OK(uv_listen((uv_stream_t *)&srv, 4, silent_accept));
    int len = sizeof sa;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&sa, &len);
    uint64_t t0 = uv_now(&w.loop);
    ASSERT_TRUE(dht_tcp_connect(&w.loop, &w.env, &w.ka, "127.0.0.1", ntohs(sa.sin_port), &o, &CBS,
                                &w.a, NULL) != NULL);
    w.b.closes = 1;
    /* run until the client closed, then close the silent server */
    while (!w.a.closes && !w.timed_out) uv_run(&w.loop, UV_RUN_ONCE);
    uint64_t took = uv_now(&w.loop) - t0;
    if (srv.data) uv_close((uv_handle_t *)srv.data, free_handle);
    uv_close((uv_handle_t *)&srv, NULL);
    world_run(&w);
    ASSERT_FALSE(w.timed_out);
    ASSERT_EQ_I64(w.a.status, COMMON_ETIMEDOUT);
    ASSERT_GE(took, 150);
    ASSERT_LE(took, 5000);
}

static uv_timer_t idle_timer;
static void end_idle(uv_timer_t *t) {
    (void)t;
    if (W->a.c) dht_tcp_end(W->a.c);
    uv_close((uv_handle_t *)&idle_timer, NULL);
}

TEST(idle_with_fast_keepalive) {
    /* keep-alives every 50 ms for 400 ms: they must be invisible to the receiver */
    world_t w;
    dht_tcp_opts_t o = {.keepalive_ms = 50};
    world_init(&w, &o);
    ASSERT_OK(world_start(&w));
    uv_timer_init(&w.loop, &idle_timer);
    uv_timer_start(&idle_timer, end_idle, 400, 0);
    world_run(&w);
    ASSERT_FALSE(w.timed_out);
    ASSERT_EQ_U64(w.a.got + w.b.got, 0);
    ASSERT_EQ_I64(w.a.status, 0);
    ASSERT_EQ_I64(w.b.status, 0);
}

TEST_MAIN(TEST_ENTRY(exchange_and_clean_close), TEST_ENTRY(backpressure_and_pause),
          TEST_ENTRY(close_inside_callback), TEST_ENTRY(refused_and_bad_args),
          TEST_ENTRY(handshake_timeout), TEST_ENTRY(idle_with_fast_keepalive))
