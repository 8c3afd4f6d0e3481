/* SPDX-License-Identifier: MIT */
/* libuv adapter for the UDX core: sockets, demux, timers. Contract in dht_udx.h. */
#include "dht/dht_udx.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_log.h"

#define NBUCKETS    1024u
#define IMPAIR_HOLD 4

typedef struct held {
    size_t len;
    struct sockaddr_in addr;
    uint8_t buf[DHT_UDX_MAX_DATAGRAM];
} held_t;

typedef struct impair {
    unsigned loss_pm, reorder_pm;
    uint64_t rng;
    held_t *held[IMPAIR_HOLD]; /* delayed packets, released after the next one */
    unsigned nheld;
} impair_t;

struct dht_udx {
    uv_loop_t *loop;
    const common_env_t *env;
    dht_udx_stream_t *buckets[NBUCKETS];
    unsigned nsockets, nstreams;
};

struct dht_udx_socket {
    uv_udp_t udp;
    uv_check_t check;
    uv_timer_t imp_timer; /* releases held (reordered) packets after 2 ms */
    dht_udx_t *udx;
    dht_udx_other_cb other_cb;
    void *other_ud;
    dht_udx_socket_close_cb close_cb;
    void *close_ud;
    int closing, pending_closes;
    unsigned nstreams;         /* streams using this socket */
    unsigned queued_sends;     /* uv_udp_send requests outstanding */
    dht_udx_stream_t *streams; /* attached streams (for flush after unblocking) */
    dht_udx_stream_t *dirty;   /* streams to poll in the check phase */
    impair_t tx_imp, rx_imp;
    dht_udx_socket_stats_t st;
    uint8_t rbuf[DHT_UDX_MAX_DATAGRAM];
};

struct dht_udx_stream {
    dht_udx_t *udx;
    dht_udx_socket_t *sock;
    dht_udx_conn_t *conn;
    dht_udx_stream_cbs_t cbs;
    void *ud;
    uint32_t local_id;
    struct sockaddr_in remote;
    uint8_t have_remote, connect_called, closed, dirty, in_table, lingering, finalized;
    uint8_t busy; /* inside a core call: flushes requested by callbacks are deferred */
    uv_timer_t timer;
    dht_udx_stream_t *hnext;         /* hash bucket chain */
    dht_udx_stream_t *sprev, *snext; /* socket's stream list */
    dht_udx_stream_t *dnext;         /* socket's dirty list */
};

typedef struct send_req {
    uv_udp_send_t req;
    dht_udx_socket_t *sock;
    size_t len;
    uint8_t buf[];
} send_req_t;

static uint64_t now_ms(const dht_udx_t *udx) {
    return common_now_ms(udx->env);
}

/* ------------------------------------------------------------------ id table */

static unsigned bucket_of(uint32_t id) {
    return (id * 2654435761u) >> 22; /* top 10 bits */
}

static dht_udx_stream_t *lookup(dht_udx_t *udx, uint32_t id) {
    for (dht_udx_stream_t *s = udx->buckets[bucket_of(id)]; s; s = s->hnext)
        if (s->local_id == id) return s;
    return NULL;
}

static void table_remove(dht_udx_stream_t *s) {
    if (!s->in_table) return;
    dht_udx_stream_t **pp = &s->udx->buckets[bucket_of(s->local_id)];
    while (*pp && *pp != s) pp = &(*pp)->hnext;
    if (*pp) *pp = s->hnext;
    s->in_table = 0;
}

/* ------------------------------------------------------------------ instance */

dht_udx_t *dht_udx_new(uv_loop_t *loop, const common_env_t *env, int *err) {
    if (!loop || !env) {
        if (err) *err = COMMON_EINVAL;
        return NULL;
    }
    dht_udx_t *udx = calloc(1, sizeof *udx);
    if (!udx) {
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    udx->loop = loop;
    udx->env = env;
    if (err) *err = 0;
    return udx;
}

int dht_udx_free(dht_udx_t *udx) {
    if (!udx) return 0;
    if (udx->nsockets || udx->nstreams) return COMMON_ESTATE;
    free(udx);
    return 0;
}

uint32_t dht_udx_new_id(dht_udx_t *udx) {
    for (;;) {
        uint32_t id;
        common_random(udx->env, &id, sizeof id);
        if (id != 0 && !lookup(udx, id)) return id;
    }
}

/* ------------------------------------------------------------------ impairment */

static uint32_t imp_next(impair_t *im) {
    /* xorshift64*: test-only randomness, deterministic per seed. */
    uint64_t x = im->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    im->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Returns 1 if the packet is consumed (dropped or held), 0 to pass it on now. */
static int imp_filter(impair_t *im, dht_udx_socket_stats_t *st, const uint8_t *buf, size_t len,
                      const struct sockaddr_in *addr) {
    if (!im->loss_pm && !im->reorder_pm) return 0;
    uint32_t r = imp_next(im) % 1000u;
    if (r < im->loss_pm) {
        st->impair_dropped++;
        return 1;
    }
    if (r < im->loss_pm + im->reorder_pm && im->nheld < IMPAIR_HOLD &&
        len <= DHT_UDX_MAX_DATAGRAM) {
        held_t *h = malloc(sizeof *h);
        if (!h) return 0;
        h->len = len;
        h->addr = *addr;
        memcpy(h->buf, buf, len);
        im->held[im->nheld++] = h;
        st->impair_reordered++;
        return 1;
    }
    return 0;
}

static void imp_clear(impair_t *im) {
    for (unsigned i = 0; i < im->nheld; i++) free(im->held[i]);
    im->nheld = 0;
}

static void dispatch(dht_udx_socket_t *sock, const uint8_t *buf, size_t len,
                     const struct sockaddr_in *from);
static int raw_send(dht_udx_socket_t *sock, const uv_buf_t *bufs, unsigned nbufs,
                    const struct sockaddr_in *to, int allow_queue);

static void imp_release_tx(dht_udx_socket_t *sock) {
    impair_t *im = &sock->tx_imp;
    unsigned n = im->nheld;
    held_t *h[IMPAIR_HOLD];
    memcpy(h, im->held, sizeof h);
    im->nheld = 0;
    for (unsigned i = 0; i < n; i++) {
        uv_buf_t b = uv_buf_init((char *)h[i]->buf, (unsigned)h[i]->len);
        raw_send(sock, &b, 1, &h[i]->addr, 1);
        free(h[i]);
    }
}

static void imp_release_rx(dht_udx_socket_t *sock) {
    impair_t *im = &sock->rx_imp;
    unsigned n = im->nheld;
    held_t *h[IMPAIR_HOLD];
    memcpy(h, im->held, sizeof h);
    im->nheld = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!sock->closing) dispatch(sock, h[i]->buf, h[i]->len, &h[i]->addr);
        free(h[i]);
    }
}

static void on_imp_timer(uv_timer_t *t) {
    dht_udx_socket_t *sock = t->data;
    imp_release_tx(sock);
    imp_release_rx(sock);
}

/* Held packets wait for the next packet in the same direction, or 2 ms at most. */
static void imp_arm(dht_udx_socket_t *sock) {
    if (!uv_is_active((uv_handle_t *)&sock->imp_timer))
        uv_timer_start(&sock->imp_timer, on_imp_timer, 2, 0);
}

/* ------------------------------------------------------------------ sending */

static void on_send_done(uv_udp_send_t *req, int status) {
    (void)status;
    send_req_t *r = (send_req_t *)req;
    dht_udx_socket_t *sock = r->sock;
    free(r);
    sock->queued_sends--;
    if (sock->queued_sends == 0 && !sock->closing) {
        /* The socket drained: let every attached stream continue in the check phase. */
        for (dht_udx_stream_t *s = sock->streams; s; s = s->snext) {
            if (!s->dirty && !s->closed) {
                s->dirty = 1;
                s->dnext = sock->dirty;
                sock->dirty = s;
            }
        }
    }
}

/* Send now, or queue a copy. Returns 0, or COMMON_EAGAIN when the caller should stop
 * (another copy is already queued). */
static int raw_send(dht_udx_socket_t *sock, const uv_buf_t *bufs, unsigned nbufs,
                    const struct sockaddr_in *to, int allow_queue) {
    if (sock->closing) return 0;
    if (sock->queued_sends > 0 && !allow_queue) return COMMON_EAGAIN;
    int r = sock->queued_sends
                ? UV_EAGAIN
                : uv_udp_try_send(&sock->udp, bufs, nbufs, (const struct sockaddr *)to);
    if (r >= 0) {
        sock->st.tx_datagrams++;
        return 0;
    }
    if (r != UV_EAGAIN) return 0; /* e.g. unreachable: treat as loss */
    size_t len = 0;
    for (unsigned i = 0; i < nbufs; i++) len += bufs[i].len;
    send_req_t *q = malloc(sizeof *q + (len ? len : 1));
    if (!q) return COMMON_EAGAIN;
    q->sock = sock;
    q->len = len;
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        if (bufs[i].len) memcpy(q->buf + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    uv_buf_t b = uv_buf_init((char *)q->buf, (unsigned)len);
    if (uv_udp_send(&q->req, &sock->udp, &b, 1, (const struct sockaddr *)to, on_send_done) < 0) {
        free(q);
        return 0;
    }
    sock->queued_sends++;
    sock->st.tx_queued++;
    sock->st.tx_datagrams++;
    return 0;
}

static int send_impaired(dht_udx_socket_t *sock, const uv_buf_t *bufs, unsigned nbufs,
                         const struct sockaddr_in *to, int allow_queue) {
    impair_t *im = &sock->tx_imp;
    if (im->loss_pm || im->reorder_pm) {
        if (sock->queued_sends > 0 && !allow_queue) return COMMON_EAGAIN;
        uint8_t flat[DHT_UDX_MAX_DATAGRAM];
        size_t len = 0;
        for (unsigned i = 0; i < nbufs; i++) {
            if (len + bufs[i].len > sizeof flat)
                return raw_send(sock, bufs, nbufs, to, allow_queue);
            memcpy(flat + len, bufs[i].base, bufs[i].len);
            len += bufs[i].len;
        }
        if (imp_filter(im, &sock->st, flat, len, to)) {
            imp_arm(sock);
            return 0;
        }
        int r = raw_send(sock, bufs, nbufs, to, allow_queue);
        imp_release_tx(sock); /* held packets go out after this one: out of order */
        return r;
    }
    return raw_send(sock, bufs, nbufs, to, allow_queue);
}

int dht_udx_socket_send(dht_udx_socket_t *sock, const void *buf, size_t len,
                        const struct sockaddr_in *to, int ttl) {
    if (!sock || sock->closing || !to || len > 65507) return COMMON_ESTATE;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);
    if (ttl > 0) uv_udp_set_ttl(&sock->udp, ttl);
    int r = send_impaired(sock, &b, 1, to, 1);
    if (ttl > 0) uv_udp_set_ttl(&sock->udp, 64);
    return r;
}

/* ------------------------------------------------------------------ streams: driving */

static void mark_dirty(dht_udx_stream_t *s) {
    dht_udx_socket_t *sock = s->sock;
    if (s->dirty || (s->closed && !s->lingering) || !sock) return;
    s->dirty = 1;
    s->dnext = sock->dirty;
    sock->dirty = s;
}

static int stream_emit(void *ud, const uint8_t *hdr, size_t hlen, const uint8_t *body,
                       size_t blen) {
    dht_udx_stream_t *s = ud;
    uv_buf_t b[2] = {uv_buf_init((char *)(uintptr_t)hdr, (unsigned)hlen),
                     uv_buf_init((char *)(uintptr_t)body, (unsigned)blen)};
    return send_impaired(s->sock, b, blen ? 2 : 1, &s->remote, 0);
}

static void on_timer(uv_timer_t *t);

static void stream_flush(dht_udx_stream_t *s) {
    if (!s->have_remote || !s->sock) return;
    if (s->busy) {
        /* Called back from inside input/poll (e.g. a write from on_data): poll later, in
         * this loop iteration's check phase, never re-entrantly. */
        mark_dirty(s);
        return;
    }
    if (s->closed) {
        if (s->lingering) dht_udx_conn_poll(s->conn, now_ms(s->udx), stream_emit, s);
        return;
    }
    uint64_t now = now_ms(s->udx);
    s->busy = 1;
    uint64_t d = dht_udx_conn_poll(s->conn, now, stream_emit, s);
    s->busy = 0;
    if (s->closed) return;
    if (d == UINT64_MAX)
        uv_timer_stop(&s->timer);
    else
        uv_timer_start(&s->timer, on_timer, d > now ? d - now : 1, 0);
}

static void finalize(dht_udx_stream_t *s);

static void on_timer(uv_timer_t *t) {
    dht_udx_stream_t *s = t->data;
    if (s->closed)
        finalize(s); /* end of the linger period */
    else
        stream_flush(s);
}

static void on_check(uv_check_t *h) {
    dht_udx_socket_t *sock = h->data;
    while (sock->dirty) {
        dht_udx_stream_t *s = sock->dirty;
        sock->dirty = s->dnext;
        s->dnext = NULL;
        s->dirty = 0;
        stream_flush(s);
    }
}

static void attach(dht_udx_stream_t *s, dht_udx_socket_t *sock) {
    s->sock = sock;
    s->sprev = NULL;
    s->snext = sock->streams;
    if (sock->streams) sock->streams->sprev = s;
    sock->streams = s;
    sock->nstreams++;
}

static void detach(dht_udx_stream_t *s) {
    dht_udx_socket_t *sock = s->sock;
    if (!sock) return;
    if (s->dirty) {
        dht_udx_stream_t **pp = &sock->dirty;
        while (*pp && *pp != s) pp = &(*pp)->dnext;
        if (*pp) *pp = s->dnext;
        s->dirty = 0;
        s->dnext = NULL;
    }
    if (s->sprev)
        s->sprev->snext = s->snext;
    else
        sock->streams = s->snext;
    if (s->snext) s->snext->sprev = s->sprev;
    s->sprev = s->snext = NULL;
    sock->nstreams--;
    s->sock = NULL;
}

/* ------------------------------------------------------------------ streams: core callbacks */

static void c_on_data(void *ud, const uint8_t *d, size_t n) {
    dht_udx_stream_t *s = ud;
    if (s->cbs.on_data) s->cbs.on_data(s, d, n, s->ud);
}
static void c_on_end(void *ud) {
    dht_udx_stream_t *s = ud;
    if (s->cbs.on_end) s->cbs.on_end(s, s->ud);
}
static void c_on_message(void *ud, const uint8_t *d, size_t n) {
    dht_udx_stream_t *s = ud;
    if (s->cbs.on_message) s->cbs.on_message(s, d, n, s->ud);
}
static void c_on_drain(void *ud) {
    dht_udx_stream_t *s = ud;
    if (s->cbs.on_drain) s->cbs.on_drain(s, s->ud);
}
static void c_on_remote_changed(void *ud) {
    dht_udx_stream_t *s = ud;
    if (s->cbs.on_remote_changed) s->cbs.on_remote_changed(s, s->ud);
}

static void on_timer_closed(uv_handle_t *h) {
    dht_udx_stream_t *s = h->data;
    dht_udx_conn_free(s->conn);
    s->udx->nstreams--;
    free(s);
}

/* Release the id and the socket; the memory goes when the timer handle has closed. */
static void finalize(dht_udx_stream_t *s) {
    if (s->finalized) return;
    s->finalized = 1;
    s->lingering = 0;
    table_remove(s);
    detach(s);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void c_on_close(void *ud, int status) {
    dht_udx_stream_t *s = ud;
    if (s->closed) return;
    s->closed = 1;
    if (s->udx->env->log) {
        dht_udx_conn_stats_t st;
        dht_udx_conn_get_stats(s->conn, &st);
        LOG_DEBUG(s->udx->env->log, "udx",
                  "stream %u closed: %s (tx %llu rx %llu rtx %llu rto %llu srtt %u ms)",
                  s->local_id, status ? common_strerror(status) : "ok",
                  (unsigned long long)st.packets_tx, (unsigned long long)st.packets_rx,
                  (unsigned long long)st.retransmits, (unsigned long long)st.rto_events,
                  st.srtt_ms);
    }
    uv_timer_stop(&s->timer);
    if (dht_udx_conn_is_lingering(s->conn) && s->sock && s->have_remote) {
        /* Graceful close: keep the id for a while to re-ack the peer's retransmissions. */
        s->lingering = 1;
        uv_timer_start(&s->timer, on_timer, DHT_UDX_LINGER_MS, 0);
    }
    if (s->cbs.on_close) s->cbs.on_close(s, status, s->ud);
    if (!s->lingering) finalize(s);
}

/* ------------------------------------------------------------------ receiving */

static void dispatch(dht_udx_socket_t *sock, const uint8_t *buf, size_t len,
                     const struct sockaddr_in *from) {
    uint32_t id;
    if (dht_udx_packet_peek_id(buf, len, &id) == 0) {
        dht_udx_stream_t *s = lookup(sock->udx, id);
        if (s && s->lingering) {
            dht_udx_packet_t pkt;
            if (dht_udx_packet_decode(buf, len, &pkt) == 0) {
                dht_udx_conn_input(s->conn, &pkt, now_ms(sock->udx));
                mark_dirty(s);
            }
            return;
        }
        if (s && !s->closed && s->connect_called) {
            dht_udx_packet_t pkt;
            if (dht_udx_packet_decode(buf, len, &pkt) != 0) return;
            if (!s->have_remote) {
                /* First-packet mode: this packet fixes the socket and the address. */
                if (s->cbs.on_firewall && s->cbs.on_firewall(s, sock, from, s->ud) != 0) return;
                if (s->closed || s->have_remote) return;
                s->remote = *from;
                s->have_remote = 1;
                attach(s, sock);
            }
            s->busy = 1;
            dht_udx_conn_input(s->conn, &pkt, now_ms(sock->udx));
            s->busy = 0;
            if (!s->closed) mark_dirty(s);
            return;
        }
    }
    sock->st.rx_other++;
    if (sock->other_cb) sock->other_cb(sock, buf, len, from, sock->other_ud);
}

void dht_udx_socket_inject(dht_udx_socket_t *sock, const uint8_t *buf, size_t len,
                           const struct sockaddr_in *from) {
    if (!sock || !buf || !from || len > DHT_UDX_MAX_DATAGRAM) return;
    dispatch(sock, buf, len, from);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    dht_udx_socket_t *sock = h->data;
    *buf = uv_buf_init((char *)sock->rbuf, sizeof sock->rbuf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
    (void)buf;
    dht_udx_socket_t *sock = h->data;
    if (nread <= 0 || !addr || addr->sa_family != AF_INET || (flags & UV_UDP_PARTIAL)) return;
    sock->st.rx_datagrams++;
    const struct sockaddr_in *from = (const struct sockaddr_in *)addr;
    impair_t *im = &sock->rx_imp;
    if (im->loss_pm || im->reorder_pm) {
        if (imp_filter(im, &sock->st, sock->rbuf, (size_t)nread, from)) {
            imp_arm(sock);
            return;
        }
        dispatch(sock, sock->rbuf, (size_t)nread, from);
        imp_release_rx(sock);
        return;
    }
    dispatch(sock, sock->rbuf, (size_t)nread, from);
}

/* ------------------------------------------------------------------ sockets */

int dht_udx_socket_open(dht_udx_t *udx, const struct sockaddr_in *addr, dht_udx_socket_t **out) {
    if (!udx || !addr || !out) return COMMON_EINVAL;
    dht_udx_socket_t *sock = calloc(1, sizeof *sock);
    if (!sock) return COMMON_ENOMEM;
    sock->udx = udx;
    int r = uv_udp_init(udx->loop, &sock->udp);
    if (r < 0) {
        free(sock);
        return COMMON_ESYS;
    }
    sock->udp.data = sock;
    uv_check_init(udx->loop, &sock->check);
    sock->check.data = sock;
    uv_timer_init(udx->loop, &sock->imp_timer);
    sock->imp_timer.data = sock;
    udx->nsockets++;
    r = uv_udp_bind(&sock->udp, (const struct sockaddr *)addr, 0);
    if (r == 0) {
        int sz = 1 << 21;
        uv_recv_buffer_size((uv_handle_t *)&sock->udp, &sz);
        sz = 1 << 21;
        uv_send_buffer_size((uv_handle_t *)&sock->udp, &sz);
        r = uv_udp_recv_start(&sock->udp, on_alloc, on_recv);
    }
    if (r == 0) r = uv_check_start(&sock->check, on_check);
    if (r < 0) {
        dht_udx_socket_close(sock, NULL, NULL);
        return r == UV_EADDRINUSE ? COMMON_EEXIST : COMMON_ESYS;
    }
    uv_unref((uv_handle_t *)&sock->check);
    *out = sock;
    return 0;
}

int dht_udx_socket_getsockname(dht_udx_socket_t *sock, struct sockaddr_in *out) {
    int len = sizeof *out;
    return uv_udp_getsockname(&sock->udp, (struct sockaddr *)out, &len) == 0 ? 0 : COMMON_ESYS;
}

void dht_udx_socket_set_other_cb(dht_udx_socket_t *sock, dht_udx_other_cb cb, void *ud) {
    sock->other_cb = cb;
    sock->other_ud = ud;
}

void dht_udx_socket_set_impair(dht_udx_socket_t *sock, unsigned loss_permille,
                               unsigned reorder_permille, uint64_t seed) {
    impair_t *ims[2] = {&sock->tx_imp, &sock->rx_imp};
    for (int i = 0; i < 2; i++) {
        ims[i]->loss_pm = loss_permille > 1000 ? 1000 : loss_permille;
        ims[i]->reorder_pm = reorder_permille > 1000 ? 1000 : reorder_permille;
        ims[i]->rng = (seed ? seed : 0x9E3779B97F4A7C15ULL) + (uint64_t)i * 0x632BE59BD9B4E019ULL;
        if (!ims[i]->loss_pm && !ims[i]->reorder_pm) imp_clear(ims[i]);
    }
}

void dht_udx_socket_get_stats(const dht_udx_socket_t *sock, dht_udx_socket_stats_t *out) {
    *out = sock->st;
}

static void on_sock_closed(uv_handle_t *h) {
    dht_udx_socket_t *sock = h->data;
    if (--sock->pending_closes > 0) return;
    dht_udx_t *udx = sock->udx;
    if (sock->close_cb) sock->close_cb(sock, sock->close_ud);
    imp_clear(&sock->tx_imp);
    imp_clear(&sock->rx_imp);
    udx->nsockets--;
    free(sock);
}

int dht_udx_socket_close(dht_udx_socket_t *sock, dht_udx_socket_close_cb cb, void *ud) {
    if (!sock || sock->closing) return COMMON_ESTATE;
    for (dht_udx_stream_t *s = sock->streams; s; s = s->snext)
        if (!s->lingering) return COMMON_ESTATE;
    while (sock->streams) finalize(sock->streams); /* lingering ones end with the socket */
    sock->closing = 1;
    sock->close_cb = cb;
    sock->close_ud = ud;
    uv_udp_recv_stop(&sock->udp);
    sock->pending_closes = 3;
    uv_close((uv_handle_t *)&sock->imp_timer, on_sock_closed);
    uv_close((uv_handle_t *)&sock->udp, on_sock_closed);
    uv_close((uv_handle_t *)&sock->check, on_sock_closed);
    return 0;
}

/* ------------------------------------------------------------------ streams: API */

dht_udx_stream_t *dht_udx_stream_new(dht_udx_t *udx, uint32_t local_id,
                                     const dht_udx_stream_cbs_t *cbs, void *ud, int *err) {
    int e = 0;
    if (!udx) {
        if (err) *err = COMMON_EINVAL;
        return NULL;
    }
    if (local_id == 0) local_id = dht_udx_new_id(udx);
    if (lookup(udx, local_id)) {
        if (err) *err = COMMON_EEXIST;
        return NULL;
    }
    dht_udx_stream_t *s = calloc(1, sizeof *s);
    if (!s) {
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    dht_udx_conn_cbs_t ccbs = {c_on_data,           c_on_end,  c_on_message, c_on_drain,
                               c_on_remote_changed, c_on_close};
    s->conn = dht_udx_conn_new(local_id, &ccbs, s, &e);
    if (!s->conn) {
        free(s);
        if (err) *err = e;
        return NULL;
    }
    s->udx = udx;
    s->local_id = local_id;
    if (cbs) s->cbs = *cbs;
    s->ud = ud;
    uv_timer_init(udx->loop, &s->timer);
    s->timer.data = s;
    unsigned b = bucket_of(local_id);
    s->hnext = udx->buckets[b];
    udx->buckets[b] = s;
    s->in_table = 1;
    udx->nstreams++;
    if (err) *err = 0;
    return s;
}

int dht_udx_stream_connect(dht_udx_stream_t *s, dht_udx_socket_t *sock, uint32_t remote_id,
                           const struct sockaddr_in *addr) {
    if (!s || s->closed || s->connect_called) return COMMON_ESTATE;
    if (addr && (!sock || sock->closing || sock->udx != s->udx || addr->sin_port == 0))
        return COMMON_EINVAL;
    int r = dht_udx_conn_connect(s->conn, remote_id, now_ms(s->udx));
    if (r) return r;
    s->connect_called = 1;
    if (addr) {
        s->remote = *addr;
        s->have_remote = 1;
        attach(s, sock);
        stream_flush(s);
    }
    return 0;
}

int dht_udx_stream_set_seq(dht_udx_stream_t *s, uint32_t seq) {
    if (!s || s->closed || s->connect_called) return COMMON_ESTATE;
    return dht_udx_conn_set_seq(s->conn, seq);
}

int dht_udx_stream_set_ack(dht_udx_stream_t *s, uint32_t ack) {
    if (!s || s->closed || s->connect_called) return COMMON_ESTATE;
    return dht_udx_conn_set_ack(s->conn, ack);
}

int dht_udx_stream_change_remote(dht_udx_stream_t *s, dht_udx_socket_t *sock, uint32_t remote_id,
                                 const struct sockaddr_in *addr) {
    if (!s || s->closed || !s->connect_called) return COMMON_ESTATE;
    if (!sock || !addr || sock->closing || sock->udx != s->udx || addr->sin_port == 0)
        return COMMON_EINVAL;
    if (s->sock != sock) {
        detach(s);
        attach(s, sock);
    }
    s->remote = *addr;
    s->have_remote = 1;
    int r = dht_udx_conn_change_remote(s->conn, remote_id, now_ms(s->udx));
    if (r == 0) stream_flush(s);
    return r;
}

int dht_udx_stream_write(dht_udx_stream_t *s, const void *data, size_t len) {
    if (!s || s->closed) return COMMON_ESTATE;
    int r = dht_udx_conn_write(s->conn, data, len);
    if (r >= 0) stream_flush(s);
    return r;
}

int dht_udx_stream_end(dht_udx_stream_t *s) {
    if (!s || s->closed) return COMMON_ESTATE;
    int r = dht_udx_conn_end(s->conn);
    if (r == 0) stream_flush(s);
    return r;
}

int dht_udx_stream_send_message(dht_udx_stream_t *s, const void *data, size_t len) {
    if (!s || s->closed) return COMMON_ESTATE;
    int r = dht_udx_conn_send_message(s->conn, data, len);
    if (r == 0) stream_flush(s);
    return r;
}

void dht_udx_stream_destroy(dht_udx_stream_t *s) {
    if (!s || s->closed) return;
    if (!s->connect_called || !s->have_remote) {
        /* Nothing to tell a peer we cannot reach: close now. */
        dht_udx_conn_destroy(s->conn);
        if (!s->closed) c_on_close(s, 0);
        return;
    }
    dht_udx_conn_destroy(s->conn);
    stream_flush(s);
}

void dht_udx_stream_read_stop(dht_udx_stream_t *s) {
    if (s && !s->closed) dht_udx_conn_read_stop(s->conn);
}

void dht_udx_stream_read_start(dht_udx_stream_t *s) {
    if (!s || s->closed) return;
    dht_udx_conn_read_start(s->conn);
    if (!s->closed) stream_flush(s);
}

void dht_udx_stream_set_keepalive(dht_udx_stream_t *s, uint32_t ms) {
    if (!s || s->closed) return;
    dht_udx_conn_set_keepalive(s->conn, ms);
    stream_flush(s);
}

uint32_t dht_udx_stream_id(const dht_udx_stream_t *s) {
    return s->local_id;
}

int dht_udx_stream_remote(const dht_udx_stream_t *s, struct sockaddr_in *out) {
    if (!s->have_remote) return COMMON_ESTATE;
    *out = s->remote;
    return 0;
}

void dht_udx_stream_get_stats(const dht_udx_stream_t *s, dht_udx_conn_stats_t *out) {
    dht_udx_conn_get_stats(s->conn, out);
}

void *dht_udx_stream_userdata(const dht_udx_stream_t *s) {
    return s->ud;
}
