/* SPDX-License-Identifier: MIT */
/*
 * sstream_peer: the C side of scripts/interop/secretstream.sh and scripts/bench/secretstream.sh.
 * Runs dht_tcp (standalone secret-stream over TCP) as initiator or responder.
 *
 *   sstream_peer listen [opts]        prints "LISTEN <port>", serves one connection
 *   sstream_peer connect PORT [opts]  connects to 127.0.0.1:PORT
 *
 * Exchange mode (default): send --small N NDJSON lines {"seq":k,...} then one line of
 * --big BYTES (newline included), one write per line, honouring backpressure; then end.
 * Received bytes are split into lines; small lines must arrive in seq order and the big
 * line must have the right length. At close it prints
 *   RESULT status=<ok|ERRNAME> sent_bytes=.. sent_sha=.. recv_bytes=.. recv_sha=..
 *          recv_lines=.. small_ok=.. big_ok=.. remote=<pk prefix>
 * and exits 0 only for status=ok with every check passed.
 *
 * Bench mode (--bench BYTES [--chunk N]): the connecting side sends BYTES in N-byte writes
 * then ends; the listening side counts. Both print
 *   BENCH role=.. bytes=.. seconds=<handshake->end> cpu=<user+sys seconds>
 * --idle MS waits that long after the handshake before sending (keep-alive check).
 * --timeout S bounds every run (default 120). --crypto sodium|auto picks the data-frame
 * primitives (dht_ssx.h; default auto: libcrypto when built with it); BENCH lines name the
 * one in use.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "common/common_codec.h"
#include "common/common_env.h"
#include "common/common_err.h"
#include "dht/dht_tcp.h"

typedef struct peer {
    uv_loop_t *loop;
    dht_tcp_opts_t opts;
    const char *crypto; /* the data-frame primitives in use, once connected */
    common_env_t env;
    dht_tcp_server_t *srv;
    dht_tcp_conn_t *conn;
    uv_timer_t deadline;
    uv_timer_t idle;
    uint64_t idle_ms;
    int listening;
    /* exchange */
    uint64_t small_n, big_n, next_small;
    int big_sent, ended_local;
    crypto_hash_sha256_state sent_sha, recv_sha;
    uint64_t sent_bytes, recv_bytes, recv_lines;
    uint64_t expect_seq;
    int small_bad, big_ok;
    uint64_t cur_len;
    char cur_prefix[64];
    size_t cur_prefix_len;
    char remote[20];
    char local[20];
    /* bench */
    uint64_t bench_total, bench_sent;
    size_t chunk;
    uint8_t *chunk_buf;
    uint64_t t0;
    double seconds;
    int status;
    int done;
} peer_t;

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void send_some(peer_t *p);

static void do_write(peer_t *p, const void *d, size_t n, int *more) {
    crypto_hash_sha256_update(&p->sent_sha, d, n);
    p->sent_bytes += n;
    int rc = dht_tcp_write(p->conn, d, n);
    if (rc < 0) {
        fprintf(stderr, "sstream_peer: write: %s\n", common_strerror(rc));
        *more = 0;
        return;
    }
    *more = rc == 1;
}

static void send_some(peer_t *p) {
    if (!p->conn || p->ended_local) return;
    int more = 1;
    if (p->bench_total) {
        if (p->listening) return; /* the receiver only counts; it ends after EOF */
        while (more && p->bench_sent < p->bench_total) {
            uint64_t n = p->bench_total - p->bench_sent;
            if (n > p->chunk) n = p->chunk;
            int rc = dht_tcp_write(p->conn, p->chunk_buf, (size_t)n);
            if (rc < 0) return;
            p->bench_sent += n;
            p->sent_bytes += n;
            more = rc == 1;
        }
        if (p->bench_sent == p->bench_total) {
            p->ended_local = 1;
            dht_tcp_end(p->conn);
        }
        return;
    }
    char line[128];
    while (more && p->next_small < p->small_n) {
        int n = snprintf(line, sizeof line, "{\"seq\":%llu,\"from\":\"c\",\"pad\":\"%0*d\"}\n",
                         (unsigned long long)p->next_small, (int)(p->next_small % 40), 0);
        p->next_small++;
        do_write(p, line, (size_t)n, &more);
    }
    if (p->next_small < p->small_n) return; /* wait for on_drain */
    if (!more && !p->big_sent) return;
    if (!p->big_sent && p->big_n >= 16) {
        char *big = malloc(p->big_n);
        if (!big) abort();
        memset(big, 'b', p->big_n);
        memcpy(big, "{\"big\":\"", 8);
        memcpy(big + p->big_n - 3, "\"}\n", 3);
        p->big_sent = 1;
        do_write(p, big, p->big_n, &more);
        free(big);
        if (!more) return;
    }
    p->ended_local = 1;
    dht_tcp_end(p->conn);
}

static void on_idle_done(uv_timer_t *t) {
    send_some(t->data);
}

static void on_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    peer_t *p = ud;
    p->conn = c;
    p->crypto = dht_tcp_crypto_name(c);
    common_hex_prefix(pk, 32, 8, p->remote);
    p->t0 = uv_hrtime();
    if (p->idle_ms)
        uv_timer_start(&p->idle, on_idle_done, p->idle_ms, 0);
    else
        send_some(p);
}

static void on_drain(dht_tcp_conn_t *c, void *ud) {
    (void)c;
    send_some(ud);
}

static void on_data(dht_tcp_conn_t *c, const uint8_t *d, size_t n, void *ud) {
    peer_t *p = ud;
    (void)c;
    p->recv_bytes += n;
    if (p->bench_total) return;
    crypto_hash_sha256_update(&p->recv_sha, d, n);
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '\n') {
            if (p->cur_prefix_len < sizeof p->cur_prefix - 1)
                p->cur_prefix[p->cur_prefix_len++] = (char)d[i];
            p->cur_len++;
            continue;
        }
        p->cur_prefix[p->cur_prefix_len] = 0;
        p->recv_lines++;
        if (p->cur_len + 1 == p->big_n && strncmp(p->cur_prefix, "{\"big\":\"", 8) == 0) {
            p->big_ok++;
        } else {
            unsigned long long seq;
            if (sscanf(p->cur_prefix, "{\"seq\":%llu,", &seq) != 1 || seq != p->expect_seq)
                p->small_bad++;
            p->expect_seq++;
        }
        p->cur_len = 0;
        p->cur_prefix_len = 0;
    }
}

static void on_end(dht_tcp_conn_t *c, void *ud) {
    peer_t *p = ud;
    (void)c;
    p->seconds = (double)(uv_hrtime() - p->t0) / 1e9;
    if (p->bench_total && !p->ended_local && p->listening) {
        p->ended_local = 1;
        dht_tcp_end(p->conn);
    }
}

static void finish(peer_t *p) {
    p->done = 1;
    uv_timer_stop(&p->deadline);
    uv_close((uv_handle_t *)&p->deadline, NULL);
    uv_close((uv_handle_t *)&p->idle, NULL);
    if (p->srv) dht_tcp_server_close(p->srv);
    p->srv = NULL;
}

static void on_close(dht_tcp_conn_t *c, int status, void *ud) {
    peer_t *p = ud;
    (void)c;
    p->status = status;
    p->conn = NULL;
    finish(p);
}

static void on_accept(dht_tcp_server_t *srv, dht_tcp_conn_t *c, void *ud) {
    peer_t *p = ud;
    static const dht_tcp_callbacks_t cbs = {on_connect, on_data, on_drain, on_end, on_close};
    if (p->conn || p->done) {
        dht_tcp_close(c);
        return;
    }
    p->conn = c;
    dht_tcp_conn_set_callbacks(c, &cbs, p);
    dht_tcp_server_close(srv); /* one connection per run */
    p->srv = NULL;
}

static void on_deadline(uv_timer_t *t) {
    peer_t *p = t->data;
    fprintf(stderr, "sstream_peer: timed out\n");
    p->status = COMMON_ETIMEDOUT;
    if (p->conn)
        dht_tcp_close(p->conn);
    else
        finish(p);
}

static void usage(void) {
    fprintf(stderr, "usage: sstream_peer listen|connect PORT [--small N] [--big BYTES] "
                    "[--bench BYTES] [--chunk N] [--idle MS] [--timeout S] "
                    "[--crypto sodium|auto]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (sodium_init() < 0) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    peer_t p;
    memset(&p, 0, sizeof p);
    p.crypto = "none";
    p.small_n = 10000;
    p.big_n = 4u << 20;
    p.chunk = 65536;
    uint64_t timeout_s = 120;
    int ai = 1;
    if (argc < 2) usage();
    uint16_t port = 0;
    if (strcmp(argv[ai], "listen") == 0) {
        p.listening = 1;
        ai++;
    } else if (strcmp(argv[ai], "connect") == 0 && argc > 2) {
        uint64_t v;
        if (common_parse_u64(argv[ai + 1], 1, 65535, &v) != 0) usage();
        port = (uint16_t)v;
        ai += 2;
    } else {
        usage();
    }
    for (; ai < argc; ai++) {
        uint64_t v;
        if (ai + 1 >= argc) usage();
        if (strcmp(argv[ai], "--small") == 0 && !common_parse_u64(argv[++ai], 0, 10000000, &v))
            p.small_n = v;
        else if (strcmp(argv[ai], "--big") == 0 && !common_parse_u64(argv[++ai], 0, 1 << 24, &v))
            p.big_n = v;
        else if (strcmp(argv[ai], "--bench") == 0 &&
                 !common_parse_u64(argv[++ai], 1, 1ull << 40, &v))
            p.bench_total = v;
        else if (strcmp(argv[ai], "--chunk") == 0 && !common_parse_u64(argv[++ai], 1, 1 << 24, &v))
            p.chunk = (size_t)v;
        else if (strcmp(argv[ai], "--idle") == 0 && !common_parse_u64(argv[++ai], 0, 600000, &v))
            p.idle_ms = v;
        else if (strcmp(argv[ai], "--timeout") == 0 && !common_parse_u64(argv[++ai], 1, 3600, &v))
            timeout_s = v;
        else if (strcmp(argv[ai], "--crypto") == 0 && strcmp(argv[ai + 1], "sodium") == 0)
            p.opts.crypto = DHT_SSX_SODIUM, ai++;
        else if (strcmp(argv[ai], "--crypto") == 0 && strcmp(argv[ai + 1], "auto") == 0)
            p.opts.crypto = DHT_SSX_AUTO, ai++;
        else
            usage();
    }
    crypto_hash_sha256_init(&p.sent_sha);
    crypto_hash_sha256_init(&p.recv_sha);
    if (p.bench_total) {
        p.chunk_buf = malloc(p.chunk);
        if (!p.chunk_buf) return 1;
        randombytes_buf(p.chunk_buf, p.chunk);
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    p.loop = &loop;
    common_env_default(&p.env, &loop, NULL);
    dht_keypair_t kp;
    dht_crypto_keypair_random(&kp);
    common_hex_prefix(kp.pk, 32, 8, p.local);
    uv_timer_init(&loop, &p.idle);
    p.idle.data = &p;
    uv_timer_init(&loop, &p.deadline);
    p.deadline.data = &p;
    uv_timer_start(&p.deadline, on_deadline, timeout_s * 1000, 0);

    int err = 0;
    if (p.listening) {
        p.srv = dht_tcp_listen(&loop, &p.env, &kp, "127.0.0.1", 0, &p.opts, on_accept, &p, &err);
        if (!p.srv) {
            fprintf(stderr, "sstream_peer: listen: %s\n", common_strerror(err));
            return 1;
        }
        printf("LISTEN %u\n", dht_tcp_server_port(p.srv));
    } else {
        static const dht_tcp_callbacks_t cbs = {on_connect, on_data, on_drain, on_end, on_close};
        if (!dht_tcp_connect(&loop, &p.env, &kp, "127.0.0.1", port, &p.opts, &cbs, &p, &err)) {
            fprintf(stderr, "sstream_peer: connect: %s\n", common_strerror(err));
            return 1;
        }
    }
    dht_crypto_keypair_wipe(&kp);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    int ok = p.status == 0;
    if (p.bench_total) {
        printf("BENCH role=%s bytes=%llu seconds=%.4f cpu=%.4f crypto=%s status=%s\n",
               p.listening ? "receiver" : "sender",
               (unsigned long long)(p.listening ? p.recv_bytes : p.sent_bytes), p.seconds,
               cpu_seconds(), p.crypto, ok ? "ok" : common_err_name(p.status));
        ok = ok && (p.listening ? p.recv_bytes == p.bench_total : 1);
    } else {
        uint8_t hs[32], hr[32];
        char xs[65], xr[65];
        crypto_hash_sha256_final(&p.sent_sha, hs);
        crypto_hash_sha256_final(&p.recv_sha, hr);
        common_hex_encode(hs, 32, xs);
        common_hex_encode(hr, 32, xr);
        printf("RESULT status=%s sent_bytes=%llu sent_sha=%s recv_bytes=%llu recv_sha=%s "
               "recv_lines=%llu small_ok=%d big_ok=%d remote=%s local=%s\n",
               ok ? "ok" : common_err_name(p.status), (unsigned long long)p.sent_bytes, xs,
               (unsigned long long)p.recv_bytes, xr, (unsigned long long)p.recv_lines,
               p.small_bad == 0 && p.expect_seq == p.small_n, p.big_ok, p.remote, p.local);
    }
    free(p.chunk_buf);
    return ok ? 0 : 1;
}
