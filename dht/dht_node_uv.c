/* SPDX-License-Identifier: MIT */
/* libuv adapter for the dht_node core: see dht_node_uv.h. */
#include "dht/dht_node_uv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

struct dht_node_uv {
    uv_loop_t *loop;
    uv_udp_t sock[2];
    uv_timer_t timer;
    uv_prepare_t prepare;
    dht_node_t *node;
    const common_env_t *env;
    int nclosing;
    void (*close_cb)(void *);
    void *close_ud;
    uint8_t rbuf[DHT_RPC_MAX_PACKET + 64];
    /* "ip@host:port" entries: ping the IP; if it does not answer, resolve the host */
    struct fallback {
        dht_node_uv_t *u;
        uv_getaddrinfo_t gai;
        char host[256];
        dht_addr_t ip;
        uint16_t port;
        int resolving;
    } fb[DHT_NODE_MAX_BOOTSTRAP];
    size_t nfb;
    int closed;
};

static void on_send_done(uv_udp_send_t *req, int status) {
    (void)status;
    free(req);
}

static void io_send(void *ud, int sock, const uint8_t *buf, size_t len, const dht_addr_t *to) {
    dht_node_uv_t *u = ud;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    memcpy(&sa.sin_addr, to->host, 4);
    sa.sin_port = htons(to->port);
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int rc = uv_udp_try_send(&u->sock[sock], &b, 1, (const struct sockaddr *)&sa);
    if (rc >= 0 || rc != UV_EAGAIN) return;
    /* queue a copy */
    uv_udp_send_t *req = malloc(sizeof *req + len);
    if (!req) return;
    memcpy(req + 1, buf, len);
    b = uv_buf_init((char *)(req + 1), (unsigned)len);
    if (uv_udp_send(req, &u->sock[sock], &b, 1, (const struct sockaddr *)&sa, on_send_done) != 0)
        free(req);
}

static void on_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *buf) {
    (void)sugg;
    dht_node_uv_t *u = h->data;
    *buf = uv_buf_init((char *)u->rbuf, sizeof u->rbuf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
    dht_node_uv_t *u = h->data;
    if (nread <= 0 || !addr || addr->sa_family != AF_INET || (flags & UV_UDP_PARTIAL)) return;
    const struct sockaddr_in *sa = (const struct sockaddr_in *)addr;
    dht_addr_t from;
    memcpy(from.host, &sa->sin_addr, 4);
    from.port = ntohs(sa->sin_port);
    const uint8_t *p = (const uint8_t *)buf->base;
    if (p[0] != DHT_RPC_REQUEST_ID && p[0] != DHT_RPC_RESPONSE_ID) return;
    int which = h == &u->sock[0] ? DHT_SOCK_SERVER : DHT_SOCK_CLIENT;
    dht_node_on_datagram(u->node, which, p, (size_t)nread, &from);
}

static void on_timer(uv_timer_t *t) {
    dht_node_uv_t *u = t->data;
    dht_node_run_timers(u->node);
}

static void on_prepare(uv_prepare_t *p) {
    dht_node_uv_t *u = p->data;
    uint64_t d = dht_node_next_deadline(u->node);
    uint64_t now = common_now_ms(u->env);
    uint64_t wait = d > now ? d - now : 0;
    uv_timer_start(&u->timer, on_timer, wait, 0);
}

static int bind_sock(dht_node_uv_t *u, int i, const char *host, uint16_t port) {
    struct sockaddr_in sa;
    int rc = uv_ip4_addr(host, port, &sa);
    if (rc) return COMMON_EINVAL;
    rc = uv_udp_bind(&u->sock[i], (const struct sockaddr *)&sa, 0);
    return rc ? common_err_from_uv(rc) : 0;
}

static int sock_port(uv_udp_t *s, uint16_t *port) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_udp_getsockname(s, (struct sockaddr *)&ss, &len) != 0) return COMMON_EIO;
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static int resolve(dht_node_uv_t *u, const char *entry, dht_addr_t *out) {
    dht_bootstrap_entry_t e;
    if (dht_bootstrap_parse(entry, &e) != 0) return COMMON_EINVAL;
    if (e.has_ip) {
        memcpy(out->host, e.ip, 4);
        out->port = e.port;
        dht_addr_t lit;
        if (dht_ipv4_parse(e.host, e.port, &lit) != 0 && u->nfb < DHT_NODE_MAX_BOOTSTRAP) {
            /* "ip@host:port": remember the host as a DNS fallback */
            struct fallback *f = &u->fb[u->nfb++];
            snprintf(f->host, sizeof f->host, "%s", e.host);
            f->ip = *out;
            f->port = e.port;
        }
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(e.host, NULL, &hints, &res) != 0 || !res) return COMMON_ERESOLVE;
    memcpy(out->host, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
    out->port = e.port;
    freeaddrinfo(res);
    return 0;
}

static void close_step(dht_node_uv_t *u) {
    if (--u->nclosing > 0) return;
    void (*cb)(void *) = u->close_cb;
    void *ud = u->close_ud;
    dht_node_free(u->node);
    free(u);
    if (cb) cb(ud);
}

static void on_fb_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    struct fallback *f = req->data;
    dht_node_uv_t *u = f->u;
    f->resolving = 0;
    if (status == 0 && res && !u->closed) {
        dht_addr_t a;
        memcpy(a.host, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
        a.port = f->port;
        (void)dht_node_add_bootstrap(u->node, &a, &f->ip);
    }
    if (res) uv_freeaddrinfo(res);
    if (u->closed) close_step(u);
}

static void on_fb_ping(void *ud, int status) {
    struct fallback *f = ud;
    dht_node_uv_t *u = f->u;
    if (status == 0 || u->closed || f->resolving) return;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    f->gai.data = f;
    if (uv_getaddrinfo(u->loop, &f->gai, on_fb_resolved, f->host, NULL, &hints) == 0)
        f->resolving = 1;
}

dht_node_uv_t *dht_node_uv_new(uv_loop_t *loop, const dht_node_uv_opts_t *opts,
                               const common_env_t *env, const dht_node_events_t *ev, int *err) {
    int e = 0;
    dht_node_uv_t *u = calloc(1, sizeof *u);
    if (!u) {
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    u->loop = loop;
    u->env = env;
    const char *host = opts->host ? opts->host : "0.0.0.0";
    dht_addr_t boots[DHT_NODE_MAX_BOOTSTRAP];
    size_t nb = 0;
    if (!opts->bootstrap) {
        for (size_t i = 0; i < 3; i++)
            if (resolve(u, dht_bootstrap_default[i], &boots[nb]) == 0) nb++;
    } else {
        for (size_t i = 0; i < opts->nbootstrap && nb < DHT_NODE_MAX_BOOTSTRAP; i++) {
            e = resolve(u, opts->bootstrap[i], &boots[nb]);
            if (e) goto fail_nohandles;
            nb++;
        }
    }
    uv_udp_init(loop, &u->sock[0]);
    uv_udp_init(loop, &u->sock[1]);
    uv_timer_init(loop, &u->timer);
    uv_prepare_init(loop, &u->prepare);
    u->sock[0].data = u->sock[1].data = u->timer.data = u->prepare.data = u;
    e = bind_sock(u, 0, host, opts->port);
    if (e) goto fail;
    e = bind_sock(u, 1, host, 0);
    if (e) goto fail;
    uint16_t sport = 0;
    if ((e = sock_port(&u->sock[0], &sport)) != 0) goto fail;
    dht_addr_t pub;
    int has_pub = 0;
    if (opts->public_host && dht_ipv4_parse(host, sport, &pub) == 0 && pub.host[0] != 0)
        has_pub = 1;
    dht_node_opts_t no;
    memset(&no, 0, sizeof no);
    no.bootstrap = boots;
    no.nbootstrap = nb;
    no.ephemeral = opts->ephemeral;
    no.firewalled = opts->firewalled;
    no.allow_local = opts->allow_local;
    no.public_addr = has_pub ? &pub : NULL;
    no.server_port = sport;
    dht_node_io_t io = {io_send, u};
    u->node = dht_node_new(&no, env, &io, ev, &e);
    if (!u->node) goto fail;
    uv_udp_recv_start(&u->sock[0], on_alloc, on_recv);
    uv_udp_recv_start(&u->sock[1], on_alloc, on_recv);
    uv_prepare_start(&u->prepare, on_prepare);
    dht_node_start(u->node);
    for (size_t i = 0; i < u->nfb; i++) {
        u->fb[i].u = u;
        (void)dht_node_ping(u->node, &u->fb[i].ip, on_fb_ping, &u->fb[i]);
    }
    if (err) *err = 0;
    return u;
fail:
    dht_node_uv_close(u, NULL, NULL);
    if (err) *err = e;
    return NULL;
fail_nohandles:
    free(u);
    if (err) *err = e;
    return NULL;
}

dht_node_t *dht_node_uv_node(dht_node_uv_t *u) {
    return u->node;
}

int dht_node_uv_server_addr(dht_node_uv_t *u, dht_addr_t *out) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_udp_getsockname(&u->sock[0], (struct sockaddr *)&ss, &len) != 0) return COMMON_EIO;
    const struct sockaddr_in *sa = (const struct sockaddr_in *)&ss;
    memcpy(out->host, &sa->sin_addr, 4);
    out->port = ntohs(sa->sin_port);
    return 0;
}

static void on_closed(uv_handle_t *h) {
    close_step(h->data);
}

void dht_node_uv_close(dht_node_uv_t *u, void (*cb)(void *ud), void *ud) {
    u->close_cb = cb;
    u->close_ud = ud;
    u->closed = 1;
    u->nclosing = 4;
    for (size_t i = 0; i < u->nfb; i++) {
        if (!u->fb[i].resolving) continue;
        u->nclosing++;
        (void)uv_cancel((uv_req_t *)&u->fb[i].gai);
    }
    uv_close((uv_handle_t *)&u->sock[0], on_closed);
    uv_close((uv_handle_t *)&u->sock[1], on_closed);
    uv_close((uv_handle_t *)&u->timer, on_closed);
    uv_close((uv_handle_t *)&u->prepare, on_closed);
}
