/* SPDX-License-Identifier: MIT */
/* libuv adapter running the secret-stream core over TCP: see dht_tcp.h for the contract. */
#include "dht/dht_tcp.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_log.h"
#include "dht/dht_sstream.h"

/* Read buffer per connection: starts small (a chat-like stream of short lines never needs
 * more, and a server with hundreds of such connections should not hold 256 KiB each) and
 * doubles up to DHT_TCP_READ_BUF when a read fills it or a kept frame needs the room. */
#ifndef DHT_TCP_READ_BUF
#define DHT_TCP_READ_BUF (256u * 1024)
#endif
#ifndef DHT_TCP_READ_BUF_MIN
#define DHT_TCP_READ_BUF_MIN (16u * 1024)
#endif
#define READ_BUF DHT_TCP_READ_BUF
/* Data frames written in one loop turn are gathered and handed to the kernel together
 * (one writev) at the latest before the loop polls again: fewer syscalls and TCP pushes,
 * and on loopback far fewer wake-ups of the reader. Bounds: frames and bytes per batch. */
#ifndef DHT_TCP_CORK_FRAMES
#define DHT_TCP_CORK_FRAMES 64
#endif
#ifndef DHT_TCP_CORK_BYTES
#define DHT_TCP_CORK_BYTES (512u * 1024)
#endif

struct dht_tcp_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_idle_t idle; /* runs the cork flush / deferred on_drain before the next poll */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    uv_loop_t *loop;
    const common_env_t *env;
    dht_sstream_t *ss;
    dht_tcp_callbacks_t cbs;
    void *ud;
    size_t high_water;
    uint32_t handshake_timeout_ms;
    uint64_t started_ms;
    size_t queued;
    int need_drain;
    int connected;    /* on_connect delivered */
    int ending;       /* dht_tcp_end called */
    int local_ended;  /* shutdown completed */
    int remote_ended; /* EOF read */
    int closing;
    int close_status;
    int handles_open;
    int paused;
    int reading;
    int in_process;
    uint8_t *rbuf;
    size_t rcap; /* rbuf's size: DHT_TCP_READ_BUF_MIN .. DHT_TCP_READ_BUF */
    size_t rd_off, rd_len;
    size_t rd_offered; /* room given to the last read; a read that fills it grows rbuf */
    int rd_grow;
    struct wreq *pool[2];
    int pool_n[2];
    struct wreq *cork[DHT_TCP_CORK_FRAMES]; /* sealed, in order, not yet given to libuv */
    int cork_n;
    size_t cork_bytes;
    size_t cork_limit;
};

struct dht_tcp_server {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    const common_env_t *env;
    dht_keypair_t kp;
    dht_tcp_opts_t opts;
    dht_tcp_accept_cb on_accept;
    void *ud;
};

typedef struct wreq {
    uv_write_t req;
    dht_tcp_conn_t *c;
    struct wreq *next; /* free list */
    size_t cap;
    size_t len;  /* bytes in data */
    size_t sent; /* of which already written by uv_try_write (not counted in queued) */
    uint8_t data[];
} wreq_t;

/* Write buffers are recycled: a malloc/free per frame makes glibc grow and trim the heap
 * over and over (brk + fresh zeroed pages), which costs more than the copy itself. */
#define POOL_SMALL   4096u
#define POOL_BUF_MAX (128u * 1024 + 64)
#define POOL_MAX     (DHT_TCP_CORK_FRAMES + 8)

static void conn_close(dht_tcp_conn_t *c, int status);
static void process_input(dht_tcp_conn_t *c);

static int parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (!host) return COMMON_EINVAL;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
    return COMMON_EINVAL;
}

/* Two size classes are pooled (control/small frames, and frames up to 128 KiB); larger
 * frames are allocated exactly and freed after the write. */
static size_t wreq_class(size_t len) {
    return len <= POOL_SMALL ? POOL_SMALL : len <= POOL_BUF_MAX ? POOL_BUF_MAX : 0;
}

static wreq_t *wreq_get(dht_tcp_conn_t *c, size_t len) {
    size_t cap = wreq_class(len);
    int k = cap == POOL_SMALL ? 0 : 1;
    if (cap && c->pool[k]) {
        wreq_t *w = c->pool[k];
        c->pool[k] = w->next;
        c->pool_n[k]--;
        w->len = len;
        return w;
    }
    if (!cap) cap = len;
    wreq_t *w = malloc(sizeof *w + cap);
    if (!w) return NULL;
    w->cap = cap;
    w->len = len;
    return w;
}

static void wreq_put(dht_tcp_conn_t *c, wreq_t *w) {
    int k = w->cap == POOL_SMALL ? 0 : w->cap == POOL_BUF_MAX ? 1 : -1;
    if (k >= 0 && !c->closing && c->pool_n[k] < POOL_MAX) {
        w->next = c->pool[k];
        c->pool[k] = w;
        c->pool_n[k]++;
        return;
    }
    free(w);
}

static void handle_closed(uv_handle_t *h) {
    dht_tcp_conn_t *c = h->data;
    if (--c->handles_open > 0) return;
    if (c->cbs.on_close) c->cbs.on_close(c, c->close_status, c->ud);
    dht_sstream_free(c->ss);
    for (int k = 0; k < 2; k++) {
        while (c->pool[k]) {
            wreq_t *w = c->pool[k];
            c->pool[k] = w->next;
            free(w);
        }
    }
    if (c->rbuf) {
        sodium_memzero(c->rbuf, c->rcap);
        free(c->rbuf);
    }
    sodium_memzero(c, sizeof *c);
    free(c);
}

static void conn_close(dht_tcp_conn_t *c, int status) {
    if (c->closing) return;
    c->closing = 1;
    c->close_status = status;
    if (c->env)
        LOG_DEBUG(c->env->log, "dht_tcp", "connection closing: %s", common_err_name(status));
    uv_timer_stop(&c->timer);
    /* best effort, as before batching (each frame was tried at once): what the socket
     * takes now still reaches the peer; the rest is dropped with the connection */
    if (c->cork_n) {
        uv_buf_t bufs[DHT_TCP_CORK_FRAMES] = {{0}};
        for (int i = 0; i < c->cork_n; i++)
            bufs[i] = uv_buf_init((char *)c->cork[i]->data, (unsigned)c->cork[i]->len);
        (void)uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)c->cork_n);
    }
    for (int i = 0; i < c->cork_n; i++) free(c->cork[i]);
    c->cork_n = 0;
    c->cork_bytes = 0;
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close((uv_handle_t *)&c->idle, handle_closed);
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

static void write_done(uv_write_t *req, int status) {
    wreq_t *w = (wreq_t *)req;
    dht_tcp_conn_t *c = w->c;
    c->queued -= w->len - w->sent;
    wreq_put(c, w); /* ciphertext only: nothing secret to wipe */
    if (c->closing) return;
    if (status < 0) {
        conn_close(c, common_err_from_uv(status));
        return;
    }
    if (c->need_drain && c->queued <= c->high_water / 2) {
        c->need_drain = 0;
        if (c->cbs.on_drain) c->cbs.on_drain(c, c->ud);
    }
}

/* Write a sealed buffer. Fast path: when nothing is queued, uv_try_write() hands the bytes to
 * the kernel now and the buffer goes straight back to the pool, so the next frame is sealed
 * into the same (cache-hot) memory and `queued` only counts bytes really waiting. Whatever the
 * socket does not take (or any error, reported by uv_write as before) is queued in order. */
static int cork_flush(dht_tcp_conn_t *c);
static void idle_cb(uv_idle_t *h);

static int submit(dht_tcp_conn_t *c, wreq_t *w) {
    int frc = cork_flush(c); /* keep frames in order */
    if (frc) {
        wreq_put(c, w);
        return frc;
    }
    w->c = c;
    w->sent = 0;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0) {
        w->sent = (size_t)n;
        if (w->sent == w->len) {
            wreq_put(c, w);
            return 0;
        }
        b = uv_buf_init((char *)w->data + w->sent, (unsigned)(w->len - w->sent));
    }
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done);
    if (rc < 0) {
        wreq_put(c, w);
        return common_err_from_uv(rc);
    }
    c->queued += w->len - w->sent;
    return 0;
}

/* Hand the gathered frames to the kernel: one uv_try_write (writev) for all of them; the
 * buffers it took go back to the pool, the rest is queued in order with uv_write. */
static int cork_flush(dht_tcp_conn_t *c) {
    if (!c->cork_n) return 0;
    uv_buf_t bufs[DHT_TCP_CORK_FRAMES] = {{0}};
    int n = c->cork_n;
    for (int i = 0; i < n; i++)
        bufs[i] = uv_buf_init((char *)c->cork[i]->data, (unsigned)c->cork[i]->len);
    int wr = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)n);
    size_t done = wr > 0 ? (size_t)wr : 0;
    c->queued -= c->cork_bytes;
    c->cork_n = 0;
    c->cork_bytes = 0;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        wreq_t *w = c->cork[i];
        if (rc) { /* an earlier uv_write failed: drop the rest */
            wreq_put(c, w);
            continue;
        }
        w->c = c;
        w->sent = 0;
        if (done >= w->len) {
            done -= w->len;
            wreq_put(c, w);
            continue;
        }
        w->sent = done;
        done = 0;
        uv_buf_t b = uv_buf_init((char *)w->data + w->sent, (unsigned)(w->len - w->sent));
        int urc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done);
        if (urc < 0) {
            wreq_put(c, w);
            rc = common_err_from_uv(urc);
            continue;
        }
        c->queued += w->len - w->sent;
    }
    /* everything may have gone out at once: then no write_done will report the drain */
    if (!rc && c->need_drain && c->queued <= c->high_water / 2 && !c->closing)
        uv_idle_start(&c->idle, idle_cb);
    return rc;
}

static void idle_cb(uv_idle_t *h) {
    dht_tcp_conn_t *c = h->data;
    uv_idle_stop(h);
    if (c->closing) return;
    int rc = cork_flush(c);
    if (rc) {
        conn_close(c, rc);
        return;
    }
    if (c->need_drain && c->queued <= c->high_water / 2) {
        c->need_drain = 0;
        if (c->cbs.on_drain) c->cbs.on_drain(c, c->ud);
    }
}

/* Send the core's queued control bytes (handshake, header, keep-alive). */
static int flush_control(dht_tcp_conn_t *c) {
    const uint8_t *p;
    size_t n;
    dht_sstream_output(c->ss, &p, &n);
    if (!n) return 0;
    wreq_t *w = wreq_get(c, n);
    if (!w) return COMMON_ENOMEM;
    memcpy(w->data, p, n);
    dht_sstream_output_consume(c->ss, n);
    return submit(c, w);
}

static void arm_timer(dht_tcp_conn_t *c);

static void on_timer(uv_timer_t *t) {
    dht_tcp_conn_t *c = t->data;
    if (c->closing) return;
    if (!dht_sstream_ready(c->ss)) {
        conn_close(c, COMMON_ETIMEDOUT);
        return;
    }
    if (!c->ending && dht_sstream_tick(c->ss)) {
        int rc = flush_control(c);
        if (rc) {
            conn_close(c, rc);
            return;
        }
    }
    arm_timer(c);
}

static void arm_timer(dht_tcp_conn_t *c) {
    if (c->closing) return;
    if (!dht_sstream_ready(c->ss)) {
        uint64_t now = common_now_ms(c->env), due = c->started_ms + c->handshake_timeout_ms;
        uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
        return;
    }
    if (c->ending) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t d = dht_sstream_next_deadline(c->ss);
    if (d == UINT64_MAX)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, d, 0);
}

static void maybe_finish(dht_tcp_conn_t *c) {
    if (!c->closing && c->local_ended && c->remote_ended) conn_close(c, 0);
}

/* ---- reading ---- */

/* The read buffer holds rbuf[rd_off, rd_len): bytes read but not yet fed. When a read ends
 * inside a frame, that frame's beginning is kept here (not copied into the core) and the
 * next read appends to it, so the whole frame is decrypted in place in one go. */
/* Make rbuf at least @p want bytes (capped at READ_BUF), keeping [0, rd_len). The old
 * buffer held decrypted data: it is wiped. */
static int rbuf_grow(dht_tcp_conn_t *c, size_t want) {
    size_t cap = c->rcap ? c->rcap : DHT_TCP_READ_BUF_MIN;
    while (cap < want && cap < READ_BUF) cap *= 2;
    if (cap > READ_BUF) cap = READ_BUF;
    if (c->rbuf && cap <= c->rcap) return 0;
    uint8_t *p = malloc(cap);
    if (!p) return COMMON_ENOMEM;
    if (c->rbuf) {
        memcpy(p, c->rbuf, c->rd_len);
        sodium_memzero(c->rbuf, c->rcap);
        free(c->rbuf);
    }
    c->rbuf = p;
    c->rcap = cap;
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    dht_tcp_conn_t *c = h->data;
    (void)suggested;
    size_t want = c->rcap;
    if (c->rd_grow || c->rd_len >= c->rcap) want = c->rcap * 2; /* bulk: bigger reads */
    c->rd_grow = 0;
    if (rbuf_grow(c, want) != 0 || c->rd_len >= c->rcap) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    c->rd_offered = c->rcap - c->rd_len;
    *buf = uv_buf_init((char *)c->rbuf + c->rd_len, (unsigned)c->rd_offered);
}

/* Bytes the frame at rd_off still lacks if it is kept in rbuf, else 0 (feed it now). */
static size_t kept_frame_missing(const dht_tcp_conn_t *c) {
    size_t avail = c->rd_len - c->rd_off;
    size_t need = dht_sstream_frame_need(c->ss, c->rbuf + c->rd_off, avail);
    return need && need <= READ_BUF ? need - avail : 0;
}

static void process_input(dht_tcp_conn_t *c) {
    c->in_process = 1;
    while (!c->closing && !c->paused && c->rd_off < c->rd_len) {
        size_t used;
        dht_sstream_event_t ev;
        if (kept_frame_missing(c)) break; /* the next read completes it */
        int rc =
            dht_sstream_feed_inplace(c->ss, c->rbuf + c->rd_off, c->rd_len - c->rd_off, &used, &ev);
        c->rd_off += used;
        if (rc) {
            if (c->env)
                LOG_WARN(c->env->log, "dht_tcp", "secret-stream error: %s", common_strerror(rc));
            conn_close(c, rc);
            break;
        }
        rc = flush_control(c);
        if (rc) {
            conn_close(c, rc);
            break;
        }
        switch (ev.type) {
        case DHT_SSTREAM_EV_HANDSHAKE:
            c->connected = 1;
            arm_timer(c);
            if (c->cbs.on_connect) c->cbs.on_connect(c, dht_sstream_remote_pk(c->ss), c->ud);
            break;
        case DHT_SSTREAM_EV_DATA:
            if (c->cbs.on_data) c->cbs.on_data(c, ev.data, ev.len, c->ud);
            break;
        default: break;
        }
    }
    c->in_process = 0;
    if (c->rd_off >= c->rd_len) {
        c->rd_off = c->rd_len = 0;
    } else if (!c->closing && c->rd_off) {
        /* move a kept partial frame to the front when the room after it is short (for the
         * rest of the frame, or for a reasonably large next read) */
        size_t missing = kept_frame_missing(c), room = c->rcap - c->rd_len;
        if (missing && (room < missing || room < c->rcap / 2)) {
            memmove(c->rbuf, c->rbuf + c->rd_off, c->rd_len - c->rd_off);
            c->rd_len -= c->rd_off;
            c->rd_off = 0;
        }
        /* a kept frame larger than the buffer: grow now (kept_frame_missing caps the frame
         * at READ_BUF; larger ones go through the core's own buffer) */
        if (missing && c->rcap - c->rd_len < missing && rbuf_grow(c, c->rd_len + missing) != 0)
            conn_close(c, COMMON_ENOMEM);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    dht_tcp_conn_t *c = s->data;
    (void)buf;
    if (c->closing) return;
    if (nread == UV_EOF) {
        uv_read_stop(s);
        c->reading = 0;
        c->remote_ended = 1;
        if (!dht_sstream_ready(c->ss)) {
            conn_close(c, COMMON_ECONNRESET);
            return;
        }
        if (c->cbs.on_end) c->cbs.on_end(c, c->ud);
        maybe_finish(c);
        return;
    }
    if (nread < 0) {
        conn_close(c, common_err_from_uv((int)nread));
        return;
    }
    c->rd_len += (size_t)nread; /* appended after a kept partial frame, if any */
    if ((size_t)nread == c->rd_offered) c->rd_grow = 1; /* the kernel had more */
    process_input(c);
    if (!c->closing && c->paused && c->reading) {
        uv_read_stop(s); /* unprocessed bytes stay in rbuf for dht_tcp_resume() */
        c->reading = 0;
    }
}

static void start_reading(dht_tcp_conn_t *c) {
    if (c->closing || c->reading || c->remote_ended) return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc < 0)
        conn_close(c, common_err_from_uv(rc));
    else
        c->reading = 1;
}

void dht_tcp_pause(dht_tcp_conn_t *c) {
    if (c->closing || c->paused) return;
    c->paused = 1;
    if (c->reading && !c->in_process) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

void dht_tcp_resume(dht_tcp_conn_t *c) {
    if (c->closing || !c->paused) return;
    c->paused = 0;
    if (c->in_process) return; /* the running loop continues */
    if (c->rd_off < c->rd_len) process_input(c);
    if (!c->paused) start_reading(c);
}

/* ---- connections ---- */

static dht_tcp_conn_t *conn_new(uv_loop_t *loop, const common_env_t *env, int initiator,
                                const dht_keypair_t *kp, const dht_tcp_opts_t *opts, int *err) {
    dht_tcp_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    dht_sstream_opts_t so = {0};
    if (opts) {
        so.max_frame = opts->max_frame;
        so.keepalive_ms = opts->keepalive_ms;
        so.crypto = opts->crypto;
    }
    c->ss = dht_sstream_new_xx(initiator, kp, env, &so, err);
    if (!c->ss) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->env = env;
    c->high_water = opts && opts->high_water ? opts->high_water : DHT_TCP_HIGH_WATER;
    c->handshake_timeout_ms = opts && opts->handshake_timeout_ms ? opts->handshake_timeout_ms
                                                                 : DHT_TCP_HANDSHAKE_TIMEOUT_MS;
    c->started_ms = common_now_ms(env);
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc < 0) {
        dht_sstream_free(c->ss);
        free(c);
        *err = common_err_from_uv(rc);
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    uv_idle_init(loop, &c->idle);
    c->tcp.data = c;
    c->timer.data = c;
    c->idle.data = c;
    c->handles_open = 3;
    c->cork_limit = c->high_water / 2 < DHT_TCP_CORK_BYTES ? c->high_water / 2 : DHT_TCP_CORK_BYTES;
    return c;
}

static void connect_cb(uv_connect_t *req, int status) {
    dht_tcp_conn_t *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        conn_close(c, common_err_from_uv(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = flush_control(c); /* Noise msg1 */
    if (rc) {
        conn_close(c, rc);
        return;
    }
    start_reading(c);
}

dht_tcp_conn_t *dht_tcp_connect(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                                const char *host, uint16_t port, const dht_tcp_opts_t *opts,
                                const dht_tcp_callbacks_t *cbs, void *ud, int *err) {
    int dummy;
    if (!err) err = &dummy;
    *err = 0;
    struct sockaddr_storage sa;
    if (!loop || !env || !kp || parse_addr(host, port, &sa) != 0) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    dht_tcp_conn_t *c = conn_new(loop, env, 1, kp, opts, err);
    if (!c) return NULL;
    if (cbs) c->cbs = *cbs;
    c->ud = ud;
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&sa, connect_cb);
    if (rc < 0) {
        /* report asynchronously like every other failure */
        c->close_status = common_err_from_uv(rc);
        conn_close(c, c->close_status);
        return c;
    }
    arm_timer(c);
    return c;
}

void dht_tcp_conn_set_callbacks(dht_tcp_conn_t *c, const dht_tcp_callbacks_t *cbs, void *ud) {
    if (cbs)
        c->cbs = *cbs;
    else
        memset(&c->cbs, 0, sizeof c->cbs);
    c->ud = ud;
}

int dht_tcp_write(dht_tcp_conn_t *c, const void *data, size_t len) {
    if (c->closing || c->ending || !c->connected) return COMMON_ESTATE;
    int rc = flush_control(c);
    if (rc) {
        conn_close(c, rc);
        return rc;
    }
    const uint8_t *p = data;
    if (len == 0) return c->queued > c->high_water ? 0 : 1; /* nothing to send */
    do {
        size_t n = len > DHT_TCP_WRITE_CHUNK ? DHT_TCP_WRITE_CHUNK : len;
        size_t fl = dht_sstream_frame_size(n);
        wreq_t *w = wreq_get(c, fl);
        if (!w) {
            conn_close(c, COMMON_ENOMEM);
            return COMMON_ENOMEM;
        }
        rc = dht_sstream_seal(c->ss, p, n, w->data);
        if (rc) {
            wreq_put(c, w);
        } else {
            /* gather; flushed when the batch is full or, at the latest, before the next poll */
            c->cork[c->cork_n++] = w;
            c->cork_bytes += fl;
            c->queued += fl;
            if (c->cork_n == DHT_TCP_CORK_FRAMES || c->cork_bytes >= c->cork_limit)
                rc = cork_flush(c);
            else
                uv_idle_start(&c->idle, idle_cb);
        }
        if (rc) {
            conn_close(c, rc);
            return rc;
        }
        p += n;
        len -= n;
    } while (len);
    if (c->queued > c->high_water) {
        c->need_drain = 1;
        return 0;
    }
    return 1;
}

size_t dht_tcp_queued(const dht_tcp_conn_t *c) {
    return c->queued;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
    dht_tcp_conn_t *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        conn_close(c, common_err_from_uv(status));
        return;
    }
    c->local_ended = 1;
    maybe_finish(c);
}

int dht_tcp_end(dht_tcp_conn_t *c) {
    if (c->closing || c->ending) return COMMON_ESTATE;
    int rc = flush_control(c);
    if (rc) {
        conn_close(c, rc);
        return rc;
    }
    rc = cork_flush(c);
    if (rc) {
        conn_close(c, rc);
        return rc;
    }
    c->ending = 1;
    uv_timer_stop(&c->timer);
    c->shutdown_req.data = c;
    rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb);
    if (rc < 0) {
        conn_close(c, common_err_from_uv(rc));
        return common_err_from_uv(rc);
    }
    return 0;
}

void dht_tcp_close(dht_tcp_conn_t *c) {
    conn_close(c, 0);
}

const uint8_t *dht_tcp_remote_pk(const dht_tcp_conn_t *c) {
    return c->connected ? dht_sstream_remote_pk(c->ss) : NULL;
}

const uint8_t *dht_tcp_handshake_hash(const dht_tcp_conn_t *c) {
    return c->connected ? dht_sstream_handshake_hash(c->ss) : NULL;
}

const char *dht_tcp_crypto_name(const dht_tcp_conn_t *c) {
    return c->connected ? dht_sstream_crypto_name(c->ss) : NULL;
}

/* ---- server ---- */

static void free_handle(uv_handle_t *h) {
    free(h);
}

static void on_new_connection(uv_stream_t *server, int status) {
    dht_tcp_server_t *srv = server->data;
    if (status < 0) {
        if (srv->env) LOG_WARN(srv->env->log, "dht_tcp", "accept: %s", uv_strerror(status));
        return;
    }
    int err = 0;
    dht_tcp_conn_t *c = conn_new(srv->loop, srv->env, 0, &srv->kp, &srv->opts, &err);
    if (!c) {
        /* accept and drop, so the listen queue does not stay readable forever */
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (!tmp) return;
        uv_tcp_init(srv->loop, tmp);
        uv_accept(server, (uv_stream_t *)tmp);
        uv_close((uv_handle_t *)tmp, free_handle);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, COMMON_ECONNRESET);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (srv->on_accept) srv->on_accept(srv, c, srv->ud);
    if (c->closing) return;
    arm_timer(c);
    start_reading(c);
}

dht_tcp_server_t *dht_tcp_listen(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                                 const char *host, uint16_t port, const dht_tcp_opts_t *opts,
                                 dht_tcp_accept_cb on_accept, void *ud, int *err) {
    int dummy;
    if (!err) err = &dummy;
    *err = 0;
    struct sockaddr_storage sa;
    if (!loop || !env || !kp || parse_addr(host, port, &sa) != 0) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    dht_tcp_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    srv->loop = loop;
    srv->env = env;
    srv->kp = *kp;
    if (opts) srv->opts = *opts;
    srv->on_accept = on_accept;
    srv->ud = ud;
    uv_tcp_init(loop, &srv->tcp);
    srv->tcp.data = srv;
    int rc = uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->tcp, 128, on_new_connection);
    if (rc < 0) {
        *err = common_err_from_uv(rc);
        dht_tcp_server_close(srv);
        return NULL;
    }
    return srv;
}

uint16_t dht_tcp_server_port(const dht_tcp_server_t *srv) {
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&sa, &len) != 0) return 0;
    if (sa.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    if (sa.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    return 0;
}

static void server_closed(uv_handle_t *h) {
    dht_tcp_server_t *srv = h->data;
    sodium_memzero(srv, sizeof *srv);
    free(srv);
}

void dht_tcp_server_close(dht_tcp_server_t *srv) {
    if (!srv) return;
    sodium_memzero(&srv->kp, sizeof srv->kp);
    uv_close((uv_handle_t *)&srv->tcp, server_closed);
}
