/* SPDX-License-Identifier: MIT */
/*
 * common_http against a scripted HTTP/1.1 server that runs on the same libuv loop, bound to
 * 127.0.0.1 on an ephemeral port. The request path selects the server's behaviour.
 */
#define _GNU_SOURCE 1 /* strcasestr */
#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_http.h"
#include "tests/test.h"

#include <uv.h>

/* ---- scripted server ---------------------------------------------------------------- */

typedef struct srv srv_t;
typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    srv_t *srv;
    common_buf_t in;
    char path[64];
    int chunks_left;
    int responded;
    int closing;
} conn_t;

struct srv {
    uv_tcp_t listener;
    int port;
    int conns_open;
    int conns_total;           /* connections accepted */
    int unref;                 /* do not keep the loop alive (liveness tests) */
    uint64_t client_closed_at; /* uv_now when a streaming client hung up */
    int saw_body_len;
};

static void conn_closed(uv_handle_t *h) {
    conn_t *c = h->data;
    if (h == (uv_handle_t *)&c->tcp) {
        uv_close((uv_handle_t *)&c->timer, conn_closed);
        return;
    }
    c->srv->conns_open--;
    common_buf_free(&c->in);
    free(c);
}

static void conn_close(conn_t *c) {
    if (c->closing) return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

typedef struct {
    uv_write_t req;
    char *data;
} wreq_t;

static void write_done(uv_write_t *w, int status) {
    wreq_t *r = (wreq_t *)w;
    free(r->data);
    free(r);
}

static void send_str(conn_t *c, const char *s, size_t n) {
    if (c->closing) return;
    wreq_t *r = malloc(sizeof *r);
    r->data = malloc(n);
    memcpy(r->data, s, n);
    uv_buf_t b = uv_buf_init(r->data, (unsigned)n);
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
        free(r->data);
        free(r);
    }
}

static void sends(conn_t *c, const char *s) {
    send_str(c, s, strlen(s));
}

static void chunk_tick(uv_timer_t *t) {
    conn_t *c = t->data;
    if (c->chunks_left == 0) {
        if (strcmp(c->path, "/stall") != 0) sends(c, "0\r\n\r\n");
        uv_timer_stop(t);
        return;
    }
    c->chunks_left--;
    sends(c, "6\r\nchunk.\r\n");
    if (strcmp(c->path, "/stall") == 0) uv_timer_stop(t); /* one chunk, then silence */
}

static void respond(conn_t *c, const char *body, size_t body_len) {
    c->responded = 1;
    const char *p = c->path;
    char hdr[256];
    if (!strcmp(p, "/hello")) {
        sends(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    } else if (!strcmp(p, "/404")) {
        sends(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope");
    } else if (!strcmp(p, "/echo")) {
        c->srv->saw_body_len = (int)body_len;
        snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body_len);
        sends(c, hdr);
        send_str(c, body, body_len);
    } else if (!strcmp(p, "/big")) {
        sends(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        char *big = malloc(100000);
        memset(big, 'x', 100000);
        send_str(c, big, 100000);
        free(big);
    } else if (!strcmp(p, "/short")) {
        sends(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        conn_close(c);
    } else if (!strcmp(p, "/stream") || !strcmp(p, "/stall") || !strcmp(p, "/endless")) {
        sends(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        c->chunks_left = !strcmp(p, "/endless") ? 1000 : 5;
        uv_timer_start(&c->timer, chunk_tick, 10, 20);
    } else if (!strcmp(p, "/hang")) {
        /* say nothing */
    } else {
        sends(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    }
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    b->base = malloc(sz);
    b->len = sz;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    conn_t *c = s->data;
    if (n < 0) {
        if (c->responded && !c->srv->client_closed_at) c->srv->client_closed_at = uv_now(s->loop);
        free(b->base);
        conn_close(c);
        return;
    }
    common_buf_append(&c->in, b->base, (size_t)n);
    free(b->base);
    if (c->responded) return;
    common_buf_append(&c->in, "", 1);
    c->in.len--;
    char *req = (char *)c->in.data;
    char *end = strstr(req, "\r\n\r\n");
    if (!end) return;
    size_t body_len = 0;
    char *cl = strcasestr(req, "content-length:");
    if (cl && cl < end) body_len = (size_t)strtoul(cl + 15, NULL, 10);
    size_t head = (size_t)(end + 4 - req);
    if (c->in.len < head + body_len) return;
    sscanf(req, "%*s %63s", c->path);
    respond(c, req + head, body_len);
    /* Keep-alive: a plain response leaves the connection ready for the next request. */
    int plain = !strcmp(c->path, "/hello") || !strcmp(c->path, "/echo") || !strcmp(c->path, "/404");
    if (plain && !c->closing) {
        common_buf_consume(&c->in, head + body_len);
        c->responded = 0;
    }
}

static void on_conn(uv_stream_t *l, int status) {
    srv_t *srv = l->data;
    conn_t *c = calloc(1, sizeof *c);
    c->srv = srv;
    uv_tcp_init(l->loop, &c->tcp);
    uv_timer_init(l->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    srv->conns_open++;
    srv->conns_total++;
    if (srv->unref) {
        uv_unref((uv_handle_t *)&c->tcp);
        uv_unref((uv_handle_t *)&c->timer);
    }
    if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    else
        conn_close(c);
}

static int srv_start(uv_loop_t *loop, srv_t *srv) {
    memset(srv, 0, sizeof *srv);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    if (uv_tcp_bind(&srv->listener, (struct sockaddr *)&a, 0)) return -1;
    if (uv_listen((uv_stream_t *)&srv->listener, 16, on_conn)) return -1;
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&got, &len);
    srv->port = ntohs(got.sin_port);
    return 0;
}

static void srv_stop(srv_t *srv) {
    uv_close((uv_handle_t *)&srv->listener, NULL);
}

/* ---- client side --------------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    common_log_t log;
    common_env_t env;
    common_http_t *http;
    srv_t srv;
    uv_timer_t guard;
    /* results */
    int done_calls;
    int err;
    long status;
    common_buf_t body;
    int data_calls;
    size_t streamed;
    int response_calls;
    char detail[256];
    uint64_t done_at;
    int cancel_after_chunks;
    common_http_req_t *req;
    uint64_t cancelled_at;
    int no_stop; /* on_done leaves the loop running */
} fx_t;

static void guard_cb(uv_timer_t *t) {
    /* Safety net: no test may run forever. */
    fprintf(stderr, "  guard timer fired: stopping loop\n");
    uv_stop(t->loop);
}

static void fx_init(fx_t *fx) {
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    common_log_init(&fx->log, "test", stderr);
    fx->log.level = COMMON_LOG_WARN;
    common_env_default(&fx->env, &fx->loop, &fx->log);
    fx->http = common_http_new(&fx->loop, &fx->env, NULL);
    srv_start(&fx->loop, &fx->srv);
    uv_timer_init(&fx->loop, &fx->guard);
    uv_timer_start(&fx->guard, guard_cb, 10000, 0);
    uv_unref((uv_handle_t *)&fx->guard);
}

/* Close everything and check the loop shuts down clean (no leaked handles). */
static int fx_finish(fx_t *fx) {
    common_http_free(fx->http);
    srv_stop(&fx->srv);
    uv_close((uv_handle_t *)&fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    common_buf_free(&fx->body);
    return uv_loop_close(&fx->loop);
}

static void on_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    fx_t *fx = ud;
    fx->done_calls++;
    fx->err = res->err;
    fx->status = res->status;
    fx->done_at = uv_now(&fx->loop);
    snprintf(fx->detail, sizeof fx->detail, "%s", res->detail ? res->detail : "");
    if (res->body) common_buf_append(&fx->body, res->body, res->body_len);
    if (!fx->no_stop) uv_stop(&fx->loop);
}

static void on_response(common_http_req_t *req, long status, void *ud) {
    ((fx_t *)ud)->response_calls++;
}

static int on_data(common_http_req_t *req, const char *d, size_t n, void *ud) {
    fx_t *fx = ud;
    fx->data_calls++;
    fx->streamed += n;
    common_buf_append(&fx->body, d, n);
    if (fx->cancel_after_chunks && fx->data_calls == fx->cancel_after_chunks) {
        common_http_cancel(req);
        fx->cancelled_at = uv_now(&fx->loop);
    }
    return 0;
}

static common_http_req_t *get(fx_t *fx, const char *path, common_http_opts_t *o) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->srv.port, path);
    o->url = url;
    o->on_done = on_done;
    o->on_response = on_response;
    o->ud = fx;
    int err = 0;
    fx->req = common_http_request(fx->http, o, &err);
    return fx->req;
}

/* A request started from inside a curl callback (the agent's LLM driver ends a generation on
 * the stream's final line, inside curl's write callback, and the next generation may start
 * right there): curl refuses curl_multi_add_handle from its own callbacks, so common_http
 * must defer it, not fail it. */
typedef struct nested {
    fx_t *fx;
    common_http_req_t *inner;
    int inner_err, inner_done, inner_status;
    common_buf_t inner_body;
} nested_t;

static void nested_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    nested_t *n = ud;
    (void)req;
    n->inner_done++;
    n->inner_err = res->err;
    n->inner_status = (int)res->status;
    if (res->body) common_buf_append(&n->inner_body, res->body, res->body_len);
}

static int nested_data(common_http_req_t *req, const char *d, size_t len, void *ud) {
    nested_t *n = ud;
    (void)req, (void)d, (void)len;
    if (!n->inner) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", n->fx->srv.port);
        common_http_opts_t o = {.url = url, .on_done = nested_done, .ud = n};
        n->inner = common_http_request(n->fx->http, &o, &n->inner_err);
    }
    return 0;
}

static void nested_outer_done(common_http_req_t *req, const common_http_result_t *res, void *ud) {
    nested_t *n = ud;
    (void)req;
    n->fx->done_calls++;
    n->fx->err = res->err;
}

static void noop_tick(uv_timer_t *t) {
    (void)t;
}

TEST(request_started_inside_a_curl_callback) {
    fx_t fx;
    fx_init(&fx);
    nested_t n = {.fx = &fx};
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stream", fx.srv.port);
    common_http_opts_t o = {
        .url = url, .stream = 1, .on_data = nested_data, .on_done = nested_outer_done, .ud = &n};
    ASSERT_TRUE(common_http_request(fx.http, &o, NULL) != NULL);
    uv_timer_t tick; /* wakes UV_RUN_ONCE every 10 ms: the loop below is bounded in time */
    uv_timer_init(&fx.loop, &tick);
    uv_timer_start(&tick, noop_tick, 10, 10);
    for (int i = 0; i < 500 && (fx.done_calls == 0 || n.inner_done == 0); i++)
        uv_run(&fx.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    ASSERT_TRUE(n.inner != NULL); /* accepted inside the callback */
    ASSERT_OK(n.inner_err);
    ASSERT_EQ_I64(n.inner_done, 1);
    ASSERT_EQ_I64(n.inner_status, 200);
    ASSERT_EQ_U64(n.inner_body.len, 5);
    ASSERT_EQ_I64(fx.done_calls, 1);
    ASSERT_OK(fx.err);
    common_buf_free(&n.inner_body);
    ASSERT_OK(fx_finish(&fx));
}

TEST(buffered_get) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {0};
    ASSERT_TRUE(get(&fx, "/hello", &o) != NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 1);
    ASSERT_OK(fx.err);
    ASSERT_EQ_I64(fx.status, 200);
    ASSERT_EQ_I64(fx.response_calls, 1);
    ASSERT_EQ_U64(fx.body.len, 5);
    ASSERT_MEM_EQ(fx.body.data, "hello", 5);
    ASSERT_OK(fx_finish(&fx));
}

TEST(status_404_is_not_a_transport_error) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {0};
    get(&fx, "/404", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_OK(fx.err);
    ASSERT_EQ_I64(fx.status, 404);
    ASSERT_MEM_EQ(fx.body.data, "nope", 4);
    ASSERT_OK(fx_finish(&fx));
}

TEST(post_body_and_headers) {
    fx_t fx;
    fx_init(&fx);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    common_http_opts_t o = {.headers = hdrs, .body = "{\"a\":1}", .body_len = 7};
    get(&fx, "/echo", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_OK(fx.err);
    ASSERT_EQ_I64(fx.srv.saw_body_len, 7);
    ASSERT_EQ_U64(fx.body.len, 7);
    ASSERT_MEM_EQ(fx.body.data, "{\"a\":1}", 7);
    ASSERT_OK(fx_finish(&fx));
}

TEST(streaming_delivers_pieces_as_they_arrive) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.stream = 1, .on_data = on_data};
    get(&fx, "/stream", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_OK(fx.err);
    ASSERT_EQ_U64(fx.streamed, 30);
    ASSERT_EQ_I64(fx.data_calls, 5); /* chunks 20 ms apart are not merged */
    ASSERT_MEM_EQ(fx.body.data, "chunk.chunk.", 12);
    ASSERT_OK(fx_finish(&fx));
}

static void stop_soon(uv_timer_t *t) {
    uv_stop(t->loop);
}

TEST(cancel_mid_stream_closes_connection_at_once) {
    fx_t fx;
    fx_init(&fx);
    fx.cancel_after_chunks = 3;
    common_http_opts_t o = {.stream = 1, .on_data = on_data};
    get(&fx, "/endless", &o);
    /* Run until the server notices the hang-up (bounded by a 2 s timer). */
    uv_timer_t t;
    uv_timer_init(&fx.loop, &t);
    uv_timer_start(&t, stop_soon, 2000, 0);
    for (int i = 0; i < 200 && !fx.srv.client_closed_at; i++) uv_run(&fx.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    ASSERT_EQ_I64(fx.done_calls, 0); /* no callback after cancel */
    ASSERT_EQ_I64(fx.data_calls, 3);
    ASSERT_GT(fx.srv.client_closed_at, 0);
    ASSERT_LE(fx.srv.client_closed_at - fx.cancelled_at, 50);
    ASSERT_EQ_U64(common_http_pending(fx.http), 0);
    ASSERT_OK(fx_finish(&fx));
}

static void cancel_from_timer(uv_timer_t *t) {
    fx_t *fx = t->data;
    common_http_cancel(fx->req);
    fx->cancelled_at = uv_now(t->loop);
}

TEST(cancel_from_outside_a_callback) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.stream = 1, .on_data = on_data};
    get(&fx, "/endless", &o);
    uv_timer_t t;
    uv_timer_init(&fx.loop, &t);
    t.data = &fx;
    uv_timer_start(&t, cancel_from_timer, 100, 0);
    for (int i = 0; i < 400 && !fx.srv.client_closed_at; i++) uv_run(&fx.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    ASSERT_EQ_I64(fx.done_calls, 0);
    ASSERT_GT(fx.data_calls, 0);
    ASSERT_GT(fx.srv.client_closed_at, 0);
    ASSERT_LE(fx.srv.client_closed_at - fx.cancelled_at, 50);
    ASSERT_OK(fx_finish(&fx));
}

TEST(first_byte_timeout) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.first_byte_timeout_ms = 200};
    get(&fx, "/hang", &o);
    uint64_t t0 = uv_now(&fx.loop);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 1);
    ASSERT_ERR(fx.err, COMMON_ETIMEDOUT);
    ASSERT_TRUE(strstr(fx.detail, "first-byte") != NULL);
    ASSERT_GE(fx.done_at - t0, 190);
    ASSERT_LE(fx.done_at - t0, 1500);
    ASSERT_OK(fx_finish(&fx));
}

TEST(idle_timeout_after_first_bytes) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.stream = 1, .on_data = on_data, .idle_timeout_ms = 250};
    get(&fx, "/stall", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_ERR(fx.err, COMMON_ETIMEDOUT);
    ASSERT_TRUE(strstr(fx.detail, "idle") != NULL);
    ASSERT_EQ_U64(fx.streamed, 6); /* the one chunk before the stall was delivered */
    ASSERT_OK(fx_finish(&fx));
}

TEST(connection_refused) {
    fx_t fx;
    fx_init(&fx);
    /* A port that was just free: bind, read it, close. */
    uv_tcp_t tmp;
    uv_tcp_init(&fx.loop, &tmp);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&tmp, (struct sockaddr *)&a, 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(got.sin_port));
    common_http_opts_t o = {.url = url, .on_done = on_done, .ud = &fx};
    ASSERT_TRUE(common_http_request(fx.http, &o, NULL) != NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 1);
    ASSERT_ERR(fx.err, COMMON_ECONNREFUSED);
    ASSERT_EQ_I64(fx.status, 0);
    ASSERT_OK(fx_finish(&fx));
}

TEST(body_over_limit_fails) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.max_body = 1000};
    get(&fx, "/big", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_ERR(fx.err, COMMON_ETOOBIG);
    ASSERT_OK(fx_finish(&fx));
    fx_init(&fx);
    common_http_opts_t o2 = {.max_body = 100000};
    get(&fx, "/big", &o2);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_OK(fx.err);
    ASSERT_EQ_U64(fx.body.len, 100000);
    ASSERT_OK(fx_finish(&fx));
}

TEST(early_close_is_reported) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {0};
    get(&fx, "/short", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 1);
    ASSERT_ERR(fx.err, COMMON_ECLOSED);
    ASSERT_OK(fx_finish(&fx));
}

TEST(free_with_requests_in_flight) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.stream = 1, .on_data = on_data};
    get(&fx, "/endless", &o);
    common_http_opts_t o2 = {0};
    get(&fx, "/hang", &o2);
    for (int i = 0; i < 50 && fx.data_calls < 2; i++) uv_run(&fx.loop, UV_RUN_ONCE);
    ASSERT_EQ_U64(common_http_pending(fx.http), 2);
    ASSERT_OK(fx_finish(&fx)); /* no callbacks, no leaks, loop closes */
    ASSERT_EQ_I64(fx.done_calls, 0);
}

TEST(bad_arguments) {
    fx_t fx;
    fx_init(&fx);
    int err = 0;
    common_http_opts_t o = {.url = NULL, .on_done = on_done};
    ASSERT_TRUE(common_http_request(fx.http, &o, &err) == NULL);
    ASSERT_ERR(err, COMMON_EINVAL);
    common_http_opts_t o2 = {.url = "ftp://127.0.0.1/", .on_done = on_done, .ud = &fx};
    ASSERT_TRUE(common_http_request(fx.http, &o2, &err) != NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_ERR(fx.err, COMMON_EINVAL); /* only http and https are allowed */
    ASSERT_OK(fx_finish(&fx));
}

TEST(idle_client_does_not_keep_the_loop_alive) {
    fx_t fx;
    fx_init(&fx);
    fx.no_stop = 1;
    fx.srv.unref = 1;
    uv_unref((uv_handle_t *)&fx.srv.listener);
    common_http_opts_t o = {0};
    get(&fx, "/hello", &o);
    /* The server keeps the connection open; uv_run must still return once the request is
     * done, because the client's kept-alive connection no longer holds the loop. */
    uint64_t t0 = uv_now(&fx.loop);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 1);
    ASSERT_OK(fx.err);
    ASSERT_LE(uv_now(&fx.loop) - t0, 2000); /* not the 10 s guard */
    /* The kept connection is still usable: a second request reuses it. */
    get(&fx, "/hello", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 2);
    ASSERT_EQ_I64(fx.srv.conns_total, 1);
    ASSERT_OK(fx_finish(&fx));
}

TEST(streaming_and_no_reuse_requests_use_fresh_connections) {
    fx_t fx;
    fx_init(&fx);
    common_http_opts_t o = {.stream = 1, .on_data = on_data};
    get(&fx, "/stream", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    get(&fx, "/stream", &o);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 2);
    ASSERT_EQ_I64(fx.srv.conns_total, 2);
    common_http_opts_t p = {.no_reuse = 1, .body = "x", .body_len = 1};
    get(&fx, "/echo", &p);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    get(&fx, "/echo", &p);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_I64(fx.done_calls, 4);
    ASSERT_EQ_I64(fx.srv.conns_total, 4);
    ASSERT_OK(fx_finish(&fx));
}

TEST_MAIN(TEST_ENTRY(idle_client_does_not_keep_the_loop_alive),
          TEST_ENTRY(streaming_and_no_reuse_requests_use_fresh_connections),
          TEST_ENTRY(buffered_get), TEST_ENTRY(status_404_is_not_a_transport_error),
          TEST_ENTRY(post_body_and_headers), TEST_ENTRY(streaming_delivers_pieces_as_they_arrive),
          TEST_ENTRY(cancel_mid_stream_closes_connection_at_once),
          TEST_ENTRY(cancel_from_outside_a_callback), TEST_ENTRY(first_byte_timeout),
          TEST_ENTRY(idle_timeout_after_first_bytes), TEST_ENTRY(connection_refused),
          TEST_ENTRY(body_over_limit_fails), TEST_ENTRY(early_close_is_reported),
          TEST_ENTRY(free_with_requests_in_flight), TEST_ENTRY(bad_arguments),
          TEST_ENTRY(request_started_inside_a_curl_callback))
