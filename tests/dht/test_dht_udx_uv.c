/* SPDX-License-Identifier: MIT */
/* UDX over real libuv sockets on 127.0.0.1.
 *
 * Without arguments (ctest): C↔C tests — bulk transfer with SHA-256 on both ends, the same
 * with loss and reordering injected, demux of non-UDX datagrams, first-packet mode,
 * destroy, change of remote socket, messages.
 *
 * With "peer ..." it is the C side of the interop suite and benchmark (scripts/interop/udx.sh,
 * scripts/bench/udx.sh), speaking the same stdio protocol as tests/interop/udx/peer.js:
 *   stdout: {"ready":true,"port":P}, {"connected":true}, then the result object
 *   stdin:  "connect <port> <remoteId>" (port 0 = first packet fixes the address), "go"
 * Options: --id N --send BYTES --end --end-on-end --destroy-after BYTES --messages N
 *          --timeout MS --loss PERMILLE --reorder PERMILLE --seed N --chunk BYTES
 *          --nohash (benchmark: one random buffer sent repeatedly, no SHA-256)
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "common/common_codec.h"
#include "common/common_env.h"
#include "common/common_err.h"
#include "dht/dht_udx.h"
#include "tests/test.h"

/* ------------------------------------------------------------------ a peer (used by both) */

typedef struct peer {
    uv_loop_t *loop;
    common_env_t env;
    dht_udx_t *udx;
    dht_udx_socket_t *sock;
    dht_udx_stream_t *stream;
    uint32_t id;
    /* options */
    uint64_t to_send, destroy_after, chunk;
    int end, end_on_end, messages, nohash, echo;
    /* state */
    uint64_t sent, recv;
    crypto_hash_sha256_state sh, rh;
    uint8_t sent_sha[32], recv_sha[32];
    int ended, closed, close_status, we_ended, blocked, messages_rx, messages_bad, go;
    int sock_closed, remote_changed;
    dht_udx_conn_stats_t st; /* at close */
    uint8_t *buf;
    uint64_t first_byte_ns, last_byte_ns;
    uint64_t rx_other;
} peer_t;

static void peer_write_more(peer_t *p);

static void p_on_data(dht_udx_stream_t *s, const uint8_t *d, size_t n, void *ud) {
    peer_t *p = ud;
    uint64_t now = uv_hrtime();
    if (p->recv == 0) p->first_byte_ns = now;
    p->last_byte_ns = now;
    if (!p->nohash) crypto_hash_sha256_update(&p->rh, d, n);
    p->recv += n;
    if (p->echo && dht_udx_stream_write(s, d, n) >= 0) { /* re-entrant write from on_data */
        crypto_hash_sha256_update(&p->sh, d, n);
        p->sent += n;
    }
    if (p->destroy_after && p->recv >= p->destroy_after) dht_udx_stream_destroy(s);
}
static void p_on_end(dht_udx_stream_t *s, void *ud) {
    peer_t *p = ud;
    p->ended = 1;
    if (p->end_on_end && !p->we_ended) {
        p->we_ended = 1;
        dht_udx_stream_end(s);
    }
}
static void p_maybe_end_after_messages(peer_t *p) {
    if (p->messages && p->go && p->messages_rx >= p->messages && !p->we_ended && !p->closed) {
        p->we_ended = 1;
        dht_udx_stream_end(p->stream);
    }
}
static void p_on_message(dht_udx_stream_t *s, const uint8_t *d, size_t n, void *ud) {
    (void)s;
    peer_t *p = ud;
    p->messages_rx++;
    if (n < 5 || memcmp(d, "msg-", 4) != 0) p->messages_bad++;
    p_maybe_end_after_messages(p);
}
static void p_on_drain(dht_udx_stream_t *s, void *ud) {
    (void)s;
    peer_t *p = ud;
    p->blocked = 0;
    peer_write_more(p);
}
static void p_on_remote_changed(dht_udx_stream_t *s, void *ud) {
    (void)s;
    ((peer_t *)ud)->remote_changed++;
}
static void p_on_close(dht_udx_stream_t *s, int status, void *ud) {
    peer_t *p = ud;
    dht_udx_stream_get_stats(s, &p->st);
    p->closed = 1;
    p->close_status = status;
    p->stream = NULL;
}

static const dht_udx_stream_cbs_t peer_cbs = {
    p_on_data, p_on_end, p_on_message, p_on_drain, NULL, p_on_remote_changed, p_on_close};

static void peer_write_more(peer_t *p) {
    while (p->stream && p->go && !p->blocked && p->sent < p->to_send) {
        uint64_t n = p->to_send - p->sent;
        if (n > p->chunk) n = p->chunk;
        if (!p->nohash) randombytes_buf(p->buf, (size_t)n);
        int r = dht_udx_stream_write(p->stream, p->buf, (size_t)n);
        if (r < 0) return;
        if (!p->nohash) crypto_hash_sha256_update(&p->sh, p->buf, (size_t)n);
        p->sent += n;
        if (r == 0) p->blocked = 1;
    }
    if (p->stream && p->go && p->sent == p->to_send && p->end && !p->we_ended) {
        p->we_ended = 1;
        dht_udx_stream_end(p->stream);
    }
}

static void peer_other(dht_udx_socket_t *sock, const uint8_t *buf, size_t len,
                       const struct sockaddr_in *from, void *ud) {
    (void)sock;
    (void)buf;
    (void)len;
    (void)from;
    ((peer_t *)ud)->rx_other++;
}

static int peer_init(peer_t *p, uv_loop_t *loop, uint32_t id) {
    memset(p, 0, sizeof *p);
    p->loop = loop;
    p->id = id;
    p->chunk = 65536;
    common_env_default(&p->env, NULL, NULL);
    int err = 0;
    p->udx = dht_udx_new(loop, &p->env, &err);
    if (!p->udx) return err;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    err = dht_udx_socket_open(p->udx, &a, &p->sock);
    if (err) return err;
    dht_udx_socket_set_other_cb(p->sock, peer_other, p);
    p->stream = dht_udx_stream_new(p->udx, id, &peer_cbs, p, &err);
    if (!p->stream) return err;
    crypto_hash_sha256_init(&p->sh);
    crypto_hash_sha256_init(&p->rh);
    p->buf = malloc(1u << 20);
    return p->buf ? 0 : COMMON_ENOMEM;
}

static int peer_port(peer_t *p) {
    struct sockaddr_in a;
    if (dht_udx_socket_getsockname(p->sock, &a)) return 0;
    return ntohs(a.sin_port);
}

static int peer_connect(peer_t *p, int port, uint32_t remote_id) {
    if (port == 0) return dht_udx_stream_connect(p->stream, NULL, remote_id, NULL);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    return dht_udx_stream_connect(p->stream, p->sock, remote_id, &a);
}

static void peer_go(peer_t *p) {
    p->go = 1;
    for (int i = 0; i < p->messages && p->stream; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "msg-%d", i);
        dht_udx_stream_send_message(p->stream, m, (size_t)n);
    }
    p_maybe_end_after_messages(p);
    peer_write_more(p);
}

static void on_sock_closed(dht_udx_socket_t *s, void *ud) {
    (void)s;
    ((peer_t *)ud)->sock_closed = 1;
}

static void peer_close(peer_t *p) {
    if (p->stream) dht_udx_stream_destroy(p->stream);
    if (p->sock) dht_udx_socket_close(p->sock, on_sock_closed, p);
    crypto_hash_sha256_final(&p->sh, p->sent_sha);
    crypto_hash_sha256_final(&p->rh, p->recv_sha);
}

static void peer_free(peer_t *p) {
    if (dht_udx_free(p->udx) != 0) fprintf(stderr, "udx instance still busy\n");
    free(p->buf);
}

/* ------------------------------------------------------------------ peer mode (interop) */

typedef struct cli {
    peer_t p;
    uv_pipe_t in;
    char line[256];
    size_t line_len;
    uv_timer_t timeout, closer;
    int timed_out, reported, done;
} cli_t;

static void out_json_result(cli_t *c) {
    peer_t *p = &c->p;
    char ss[65], rs[65];
    sodium_bin2hex(ss, sizeof ss, p->sent_sha, 32);
    sodium_bin2hex(rs, sizeof rs, p->recv_sha, 32);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double rsecs =
        p->last_byte_ns > p->first_byte_ns ? (double)(p->last_byte_ns - p->first_byte_ns) / 1e9 : 0;
    dht_udx_socket_stats_t ss_st = {0};
    if (p->sock) dht_udx_socket_get_stats(p->sock, &ss_st);
    printf("{\"impl\":\"c\",\"sent\":%llu,\"sent_sha\":\"%s\",\"recv\":%llu,\"recv_sha\":\"%s\","
           "\"ended\":%s,\"close\":\"%s\",\"close_status\":%d,\"messages_rx\":%d,"
           "\"messages_ok\":%s,\"timeout\":%s,\"cpu_s\":%.3f,\"recv_secs\":%.3f,"
           "\"rx_other\":%llu,\"impair_dropped\":%llu,\"impair_reordered\":%llu,"
           "\"retransmits\":%llu,\"rto\":%llu,\"tlp\":%llu,\"fast_recoveries\":%llu}\n",
           (unsigned long long)p->sent, ss, (unsigned long long)p->recv, rs,
           p->ended ? "true" : "false",
           !p->closed             ? "open"
           : p->close_status == 0 ? "ok"
                                  : "error",
           p->close_status, p->messages_rx, p->messages_bad ? "false" : "true",
           c->timed_out ? "true" : "false", cpu, rsecs, (unsigned long long)p->rx_other,
           (unsigned long long)ss_st.impair_dropped, (unsigned long long)ss_st.impair_reordered,
           (unsigned long long)p->st.retransmits, (unsigned long long)p->st.rto_events,
           (unsigned long long)p->st.tlp_probes, (unsigned long long)p->st.fast_recoveries);
    fflush(stdout);
}

/* Print the result once the stream closed; keep the socket (and a lingering stream) until
 * the orchestrator says "quit", so a peer that missed our last ack still gets it. */
static void cli_report(cli_t *c) {
    if (c->reported) return;
    c->reported = 1;
    crypto_hash_sha256_final(&c->p.sh, c->p.sent_sha);
    crypto_hash_sha256_final(&c->p.rh, c->p.recv_sha);
    out_json_result(c);
}

static void cli_shutdown(cli_t *c) {
    if (c->done) return;
    c->done = 1;
    cli_report(c);
    uv_timer_stop(&c->timeout);
    uv_timer_stop(&c->closer);
    uv_read_stop((uv_stream_t *)&c->in);
    if (c->p.stream) dht_udx_stream_destroy(c->p.stream);
    if (c->p.sock) dht_udx_socket_close(c->p.sock, on_sock_closed, &c->p);
    uv_close((uv_handle_t *)&c->in, NULL);
    uv_close((uv_handle_t *)&c->timeout, NULL);
    uv_close((uv_handle_t *)&c->closer, NULL);
}

static void on_closer(uv_timer_t *t) {
    cli_t *c = t->data;
    if (c->p.closed) cli_report(c);
}

static void on_timeout(uv_timer_t *t) {
    cli_t *c = t->data;
    c->timed_out = 1;
    cli_shutdown(c);
}

static void on_alloc_line(uv_handle_t *h, size_t s, uv_buf_t *b) {
    (void)h;
    static char buf[512];
    (void)s;
    *b = uv_buf_init(buf, sizeof buf);
}

static void handle_line(cli_t *c, const char *line) {
    unsigned port, rid;
    if (sscanf(line, "connect %u %u", &port, &rid) == 2) {
        int r = peer_connect(&c->p, (int)port, rid);
        if (r) fprintf(stderr, "connect: %s\n", common_strerror(r));
        printf("{\"connected\":true}\n");
        fflush(stdout);
    } else if (strncmp(line, "go", 2) == 0) {
        peer_go(&c->p);
    } else if (strncmp(line, "quit", 4) == 0) {
        cli_shutdown(c);
    }
}

static void on_read_line(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    cli_t *c = s->data;
    if (n < 0) {
        cli_shutdown(c); /* stdin closed: the orchestrator is gone */
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = b->base[i];
        if (ch == '\n') {
            c->line[c->line_len] = 0;
            handle_line(c, c->line);
            c->line_len = 0;
        } else if (c->line_len + 1 < sizeof c->line) {
            c->line[c->line_len++] = ch;
        }
    }
}

static int parse_u64(const char *s, uint64_t *out) {
    return common_parse_u64(s, 0, UINT64_MAX, out);
}

static int peer_main(int argc, char **argv) {
    static cli_t c;
    uint64_t id = 1, timeout = 60000, loss = 0, reorder = 0, seed = 1;
    uv_loop_t *loop = uv_default_loop();
    peer_t tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.chunk = 65536;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        uint64_t *dst = NULL;
        if (!strcmp(a, "--end"))
            tmp.end = 1;
        else if (!strcmp(a, "--end-on-end"))
            tmp.end_on_end = 1;
        else if (!strcmp(a, "--nohash"))
            tmp.nohash = 1; /* bench: fixed data, no SHA-256 */
        else if (!strcmp(a, "--id"))
            dst = &id;
        else if (!strcmp(a, "--send"))
            dst = &tmp.to_send;
        else if (!strcmp(a, "--destroy-after"))
            dst = &tmp.destroy_after;
        else if (!strcmp(a, "--timeout"))
            dst = &timeout;
        else if (!strcmp(a, "--loss"))
            dst = &loss;
        else if (!strcmp(a, "--reorder"))
            dst = &reorder;
        else if (!strcmp(a, "--seed"))
            dst = &seed;
        else if (!strcmp(a, "--chunk"))
            dst = &tmp.chunk;
        else if (!strcmp(a, "--messages")) {
            uint64_t m;
            if (i + 1 >= argc || parse_u64(argv[++i], &m) || m > 1000) goto usage;
            tmp.messages = (int)m;
            continue;
        } else
            goto usage;
        if (dst) {
            if (i + 1 >= argc || parse_u64(argv[++i], dst)) goto usage;
        }
    }
    if (id == 0 || id > UINT32_MAX || tmp.chunk == 0 || tmp.chunk > (1u << 20)) goto usage;
    if (sodium_init() < 0) return 1;
    int r = peer_init(&c.p, loop, (uint32_t)id);
    if (r) {
        fprintf(stderr, "peer init: %s\n", common_strerror(r));
        return 1;
    }
    c.p.to_send = tmp.to_send;
    c.p.destroy_after = tmp.destroy_after;
    c.p.end = tmp.end;
    c.p.end_on_end = tmp.end_on_end;
    c.p.messages = tmp.messages;
    c.p.chunk = tmp.chunk;
    c.p.nohash = tmp.nohash;
    if (c.p.nohash) randombytes_buf(c.p.buf, 1u << 20);
    if (loss || reorder)
        dht_udx_socket_set_impair(c.p.sock, (unsigned)loss, (unsigned)reorder, seed);
    uv_pipe_init(loop, &c.in, 0);
    uv_pipe_open(&c.in, 0);
    c.in.data = &c;
    uv_read_start((uv_stream_t *)&c.in, on_alloc_line, on_read_line);
    uv_timer_init(loop, &c.timeout);
    c.timeout.data = &c;
    uv_timer_start(&c.timeout, on_timeout, timeout, 0);
    uv_timer_init(loop, &c.closer);
    c.closer.data = &c;
    uv_timer_start(&c.closer, on_closer, 5, 5);
    printf("{\"ready\":true,\"port\":%d}\n", peer_port(&c.p));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    peer_free(&c.p);
    uv_loop_close(loop);
    return c.timed_out || !c.p.closed ? 1 : 0;
usage:
    fprintf(stderr,
            "usage: %s peer [--id N] [--send BYTES] [--end] [--end-on-end] "
            "[--destroy-after BYTES] [--messages N] [--timeout MS] [--loss PM] "
            "[--reorder PM] [--seed N] [--chunk BYTES] [--nohash]\n",
            argv[0]);
    return 2;
}

/* ------------------------------------------------------------------ C↔C tests */

typedef struct pair {
    uv_loop_t loop;
    peer_t a, b;
    uv_timer_t guard;
    int timed_out;
} pair_t;

static void on_guard(uv_timer_t *t) {
    pair_t *pr = t->data;
    pr->timed_out = 1;
    uv_stop(t->loop);
}

static int pair_setup(pair_t *pr) {
    memset(pr, 0, sizeof *pr);
    uv_loop_init(&pr->loop);
    int r = peer_init(&pr->a, &pr->loop, 11);
    if (!r) r = peer_init(&pr->b, &pr->loop, 22);
    uv_timer_init(&pr->loop, &pr->guard);
    pr->guard.data = pr;
    uv_timer_start(&pr->guard, on_guard, 60000, 0);
    uv_unref((uv_handle_t *)&pr->guard);
    return r;
}

/* Run until both streams closed (bounded by the guard timer and an iteration cap). */
static void pair_run_until_closed(pair_t *pr) {
    for (int i = 0; i < 10000000 && !pr->timed_out && !(pr->a.closed && pr->b.closed); i++)
        uv_run(&pr->loop, UV_RUN_ONCE);
}

static void pair_teardown(pair_t *pr) {
    peer_close(&pr->a);
    peer_close(&pr->b);
    uv_timer_stop(&pr->guard);
    uv_close((uv_handle_t *)&pr->guard, NULL);
    for (int i = 0; i < 1000 && uv_run(&pr->loop, UV_RUN_NOWAIT); i++) {}
    peer_free(&pr->a);
    peer_free(&pr->b);
    uv_loop_close(&pr->loop);
}

static void transfer_test(test_ctx_t *test_ctx_, unsigned loss, unsigned reorder, uint64_t bytes) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    if (loss || reorder) dht_udx_socket_set_impair(pr->a.sock, loss, reorder, 42);
    pr->a.to_send = bytes;
    pr->a.end = 1;
    pr->b.to_send = bytes / 4;
    pr->b.end = 1;
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    ASSERT_OK(peer_connect(&pr->b, peer_port(&pr->a), 11));
    peer_go(&pr->a);
    peer_go(&pr->b);
    pair_run_until_closed(pr);
    dht_udx_socket_stats_t sst;
    dht_udx_socket_get_stats(pr->a.sock, &sst);
    int timed_out = pr->timed_out;
    pair_teardown(pr);
    peer_t a = pr->a, b = pr->b;
    free(pr);
    if (getenv("UDX_DEBUG"))
        for (int i = 0; i < 2; i++) {
            const dht_udx_conn_stats_t *st = i ? &b.st : &a.st;
            fprintf(stderr, "  %c: tx %llu rtx %llu fr %llu rto %llu tlp %llu cwnd %u srtt %u\n",
                    'a' + i, (unsigned long long)st->packets_tx,
                    (unsigned long long)st->retransmits, (unsigned long long)st->fast_recoveries,
                    (unsigned long long)st->rto_events, (unsigned long long)st->tlp_probes,
                    st->cwnd, st->srtt_ms);
        }
    ASSERT_FALSE(timed_out);
    ASSERT_EQ_U64(b.recv, bytes);
    ASSERT_MEM_EQ(a.sent_sha, b.recv_sha, 32);
    ASSERT_EQ_U64(a.recv, bytes / 4);
    ASSERT_MEM_EQ(b.sent_sha, a.recv_sha, 32);
    ASSERT_TRUE(a.ended && b.ended);
    ASSERT_EQ_I64(a.close_status, 0);
    ASSERT_EQ_I64(b.close_status, 0);
    if (loss) ASSERT_GT(sst.impair_dropped, 0);
    if (reorder) ASSERT_GT(sst.impair_reordered, 0);
}

TEST(uv_transfer) {
    transfer_test(test_ctx_, 0, 0, 16u << 20);
}

TEST(uv_transfer_lossy) {
    transfer_test(test_ctx_, 30, 30, 4u << 20);
}
TEST(uv_transfer_loss_only) {
    transfer_test(test_ctx_, 30, 0, 4u << 20);
}
TEST(uv_transfer_reorder_only) {
    transfer_test(test_ctx_, 0, 30, 4u << 20);
}

TEST(uv_destroy) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    pr->a.to_send = 1u << 20;
    pr->b.destroy_after = 100000;
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    ASSERT_OK(peer_connect(&pr->b, peer_port(&pr->a), 11));
    peer_go(&pr->a);
    peer_go(&pr->b);
    pair_run_until_closed(pr);
    int to = pr->timed_out;
    pair_teardown(pr);
    peer_t a = pr->a, b = pr->b;
    free(pr);
    ASSERT_FALSE(to);
    ASSERT_EQ_I64(b.close_status, 0);
    ASSERT_EQ_I64(a.close_status, DHT_EDESTROYED);
    ASSERT_GE(b.recv, 100000);
}

/* Demux: DHT-like datagrams, 1-byte probes and UDX packets for unknown ids reach the hook;
 * a stream in first-packet mode learns its address from the first packet. */
TEST(uv_demux_and_first_packet) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    struct sockaddr_in to;
    uv_ip4_addr("127.0.0.1", peer_port(&pr->b), &to);
    static const uint8_t probe[1] = {0};
    static const uint8_t rpc[8] = {0x03, 0, 1, 2, 3, 4, 5, 6};
    uint8_t udx_unknown[20];
    dht_udx_header_t h = {.type = DHT_UDX_TYPE_DATA, .id = 999, .rwnd = 100};
    dht_udx_header_encode(&h, udx_unknown);
    ASSERT_OK(dht_udx_socket_send(pr->a.sock, probe, 1, &to, 5));
    ASSERT_OK(dht_udx_socket_send(pr->a.sock, rpc, sizeof rpc, &to, 0));
    ASSERT_OK(dht_udx_socket_send(pr->a.sock, udx_unknown, sizeof udx_unknown, &to, 0));
    /* B waits for the first packet; A knows B's address. */
    ASSERT_OK(peer_connect(&pr->b, 0, 11));
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    pr->a.to_send = 300000;
    pr->a.end = 1;
    pr->b.to_send = 200000; /* queued before B knows where A is */
    pr->b.end = 1;
    peer_go(&pr->b);
    peer_go(&pr->a);
    pair_run_until_closed(pr);
    int to_ = pr->timed_out;
    uint64_t other = pr->b.rx_other;
    pair_teardown(pr);
    peer_t a = pr->a, b = pr->b;
    free(pr);
    ASSERT_FALSE(to_);
    ASSERT_EQ_U64(other, 3);
    ASSERT_EQ_U64(b.recv, 300000);
    ASSERT_EQ_U64(a.recv, 200000);
    ASSERT_MEM_EQ(a.sent_sha, b.recv_sha, 32);
    ASSERT_MEM_EQ(b.sent_sha, a.recv_sha, 32);
    ASSERT_EQ_I64(a.close_status, 0);
    ASSERT_EQ_I64(b.close_status, 0);
}

/* A moves its stream to a second socket mid-transfer; B keeps sending to the address it
 * knows until A's packets (from the new socket) — here B also changes, as the swarm layer
 * would after a holepunch: both switch, data keeps flowing. */
TEST(uv_change_remote) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    dht_udx_socket_t *a2 = NULL;
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    ASSERT_OK(dht_udx_socket_open(pr->a.udx, &any, &a2));
    struct sockaddr_in a2addr;
    ASSERT_OK(dht_udx_socket_getsockname(a2, &a2addr));
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    ASSERT_OK(peer_connect(&pr->b, peer_port(&pr->a), 11));
    pr->a.to_send = 2u << 20;
    pr->a.end = 1;
    pr->b.end_on_end = 1;
    peer_go(&pr->a);
    peer_go(&pr->b);
    for (int i = 0; i < 100000 && pr->b.recv < 500000 && !pr->timed_out; i++)
        uv_run(&pr->loop, UV_RUN_ONCE);
    struct sockaddr_in baddr;
    uv_ip4_addr("127.0.0.1", peer_port(&pr->b), &baddr);
    /* A: same remote, new local socket. B: same remote id, A's new address. */
    ASSERT_OK(dht_udx_stream_change_remote(pr->a.stream, a2, 22, &baddr));
    ASSERT_OK(dht_udx_stream_change_remote(pr->b.stream, pr->b.sock, 11, &a2addr));
    /* The old socket is no longer used by any stream, so it may close now. */
    ASSERT_OK(dht_udx_socket_close(pr->a.sock, NULL, NULL));
    pr->a.sock = NULL;
    pair_run_until_closed(pr);
    int to = pr->timed_out;
    if (a2) dht_udx_socket_close(a2, NULL, NULL);
    pair_teardown(pr);
    peer_t a = pr->a, b = pr->b;
    free(pr);
    ASSERT_FALSE(to);
    ASSERT_EQ_U64(b.recv, 2u << 20);
    ASSERT_MEM_EQ(a.sent_sha, b.recv_sha, 32);
    ASSERT_EQ_U64(a.remote_changed, 1);
    ASSERT_EQ_U64(b.remote_changed, 1);
    ASSERT_EQ_I64(a.close_status, 0);
    ASSERT_EQ_I64(b.close_status, 0);
}

TEST(uv_messages) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    pr->a.messages = 20;
    pr->b.messages = 20;
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    ASSERT_OK(peer_connect(&pr->b, peer_port(&pr->a), 11));
    peer_go(&pr->a);
    peer_go(&pr->b);
    pair_run_until_closed(pr);
    int to = pr->timed_out;
    pair_teardown(pr);
    peer_t a = pr->a, b = pr->b;
    free(pr);
    ASSERT_FALSE(to);
    ASSERT_EQ_U64(a.messages_rx, 20);
    ASSERT_EQ_U64(b.messages_rx, 20);
    ASSERT_EQ_U64(a.messages_bad + b.messages_bad, 0);
}

/* B echoes from inside on_data (a write re-entering the stream from its own callback). */
TEST(uv_echo_from_callback) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    pr->a.to_send = 4u << 20;
    pr->a.end = 1;
    pr->b.echo = 1;
    pr->b.end_on_end = 1;
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    ASSERT_OK(peer_connect(&pr->b, peer_port(&pr->a), 11));
    peer_go(&pr->a);
    peer_go(&pr->b);
    pair_run_until_closed(pr);
    int to = pr->timed_out;
    pair_teardown(pr);
    peer_t a = pr->a, b = pr->b;
    free(pr);
    ASSERT_FALSE(to);
    ASSERT_EQ_U64(b.recv, 4u << 20);
    ASSERT_EQ_U64(a.recv, 4u << 20);
    ASSERT_MEM_EQ(a.sent_sha, a.recv_sha, 32);
    ASSERT_EQ_I64(a.close_status, 0);
    ASSERT_EQ_I64(b.close_status, 0);
}

static int fw_calls;
static int reject_all(dht_udx_stream_t *s, dht_udx_socket_t *sock, const struct sockaddr_in *from,
                      void *ud) {
    (void)s;
    (void)sock;
    (void)from;
    (void)ud;
    fw_calls++;
    return 1;
}

/* Lifecycle rules: ids are unique, a socket with live streams refuses to close, the instance
 * refuses to be freed while handles live, a rejecting firewall keeps first-packet mode. */
TEST(uv_lifecycle_and_firewall) {
    pair_t *pr = calloc(1, sizeof *pr);
    ASSERT_OK(pair_setup(pr));
    int err = 0;
    ASSERT_TRUE(dht_udx_stream_new(pr->a.udx, 11, &peer_cbs, &pr->a, &err) == NULL);
    ASSERT_EQ_I64(err, COMMON_EEXIST);
    ASSERT_OK(peer_connect(&pr->a, peer_port(&pr->b), 22));
    ASSERT_ERR(dht_udx_socket_close(pr->a.sock, NULL, NULL), COMMON_ESTATE);
    ASSERT_ERR(dht_udx_free(pr->a.udx), COMMON_ESTATE);
    ASSERT_ERR(peer_connect(&pr->a, peer_port(&pr->b), 22), COMMON_ESTATE);
    /* B: a second stream in first-packet mode whose firewall rejects everything. */
    dht_udx_stream_cbs_t cbs = peer_cbs;
    cbs.on_firewall = reject_all;
    static peer_t fwp;
    memset(&fwp, 0, sizeof fwp);
    dht_udx_stream_t *fw = dht_udx_stream_new(pr->b.udx, 33, &cbs, &fwp, &err);
    ASSERT_TRUE(fw != NULL);
    ASSERT_OK(dht_udx_stream_connect(fw, NULL, 44, NULL));
    struct sockaddr_in tmp;
    ASSERT_ERR(dht_udx_stream_remote(fw, &tmp), COMMON_ESTATE);
    uint8_t pkt[20];
    dht_udx_header_t h = {.type = DHT_UDX_TYPE_DATA, .id = 33, .rwnd = 1000};
    dht_udx_header_encode(&h, pkt);
    struct sockaddr_in to;
    uv_ip4_addr("127.0.0.1", peer_port(&pr->b), &to);
    fw_calls = 0;
    ASSERT_OK(dht_udx_socket_send(pr->a.sock, pkt, sizeof pkt, &to, 0));
    for (int i = 0; i < 1000 && fw_calls == 0 && !pr->timed_out; i++)
        uv_run(&pr->loop, UV_RUN_ONCE);
    ASSERT_EQ_I64(fw_calls, 1);
    ASSERT_ERR(dht_udx_stream_remote(fw, &tmp), COMMON_ESTATE);
    dht_udx_stream_destroy(fw); /* never connected to anyone: closes at once */
    ASSERT_EQ_I64(fwp.closed, 1);
    ASSERT_EQ_I64(fwp.close_status, 0);
    pair_teardown(pr);
    free(pr);
}

static const test_entry_t tests[] = {
    TEST_ENTRY(uv_lifecycle_and_firewall),
    TEST_ENTRY(uv_echo_from_callback),
    TEST_ENTRY(uv_transfer),
    TEST_ENTRY(uv_transfer_lossy),
    TEST_ENTRY(uv_transfer_loss_only),
    TEST_ENTRY(uv_transfer_reorder_only),
    TEST_ENTRY(uv_destroy),
    TEST_ENTRY(uv_demux_and_first_packet),
    TEST_ENTRY(uv_change_remote),
    TEST_ENTRY(uv_messages),
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "peer") == 0) return peer_main(argc, argv);
    if (sodium_init() < 0) return 1;
    return test_run_(tests, sizeof tests / sizeof tests[0], argc, argv);
}
