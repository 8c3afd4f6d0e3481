/* SPDX-License-Identifier: MIT */
/* UDX packet codec and stream state machine on a virtual clock and a simulated network:
 * loss, reordering, duplication, window exhaustion, RTO backoff, peer disappearance. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_env.h"
#include "common/common_err.h"
#include "dht/dht_udx_conn.h"
#include "dht/dht_udx_packet.h"
#include "tests/test.h"

/* ------------------------------------------------------------------ simulated network */

typedef struct qpkt {
    uint64_t at;
    int to;
    size_t len;
    uint8_t buf[DHT_UDX_MAX_DATAGRAM];
} qpkt_t;

typedef struct side {
    dht_udx_conn_t *c;
    int idx;
    struct net *net;
    uint64_t deadline;
    /* sender app */
    uint64_t to_write, written;
    int end_after_write, end_called, blocked, drains;
    /* receiver app */
    uint64_t received, mismatches;
    int ended, closed, close_status, messages, remote_changed;
    uint8_t last_msg[64];
    size_t last_msg_len;
} side_t;

typedef struct net {
    common_vclock_t vc;
    side_t s[2];
    qpkt_t *q;
    size_t nq, capq;
    unsigned latency, jitter;                  /* ms */
    unsigned loss_pm[2], dup_pm, blackhole[2]; /* per direction (index = sender) */
    uint64_t rng;
    /* observation of packets sent by side 0 */
    uint64_t data_tx[2], hb_tx[2], retx_seen;
    uint64_t first_data_times[16];
    unsigned ndata_times;
    uint32_t max_seq_sent;
    int track_retx_times;
    uint8_t seen[1u << 16]; /* seq bitmap (low 16 bits) of DATA from side 0 */
    uint64_t distinct_bytes;
    uint32_t last_hdr_id[2];
} net_t;

static uint32_t rnd(net_t *n) {
    uint64_t x = n->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    n->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint8_t pattern(uint64_t i) {
    return (uint8_t)((i * 2654435761u) >> 13 ^ (i >> 7));
}

static void enqueue(net_t *n, int to, const uint8_t *buf, size_t len, uint64_t at) {
    if (n->nq == n->capq) {
        n->capq = n->capq ? n->capq * 2 : 256;
        n->q = realloc(n->q, n->capq * sizeof *n->q);
    }
    qpkt_t *p = &n->q[n->nq++];
    p->at = at;
    p->to = to;
    p->len = len;
    memcpy(p->buf, buf, len);
}

static int emit(void *ud, const uint8_t *hdr, size_t hl, const uint8_t *body, size_t bl) {
    side_t *s = ud;
    net_t *n = s->net;
    uint8_t buf[DHT_UDX_MAX_DATAGRAM];
    memcpy(buf, hdr, hl);
    if (bl) memcpy(buf + hl, body, bl);
    size_t len = hl + bl;
    dht_udx_packet_t pk;
    if (dht_udx_packet_decode(buf, len, &pk) == 0) {
        n->last_hdr_id[s->idx] = pk.h.id;
        if (pk.h.type & DHT_UDX_TYPE_DATA) {
            n->data_tx[s->idx]++;
            if (s->idx == 0) {
                uint32_t k = pk.h.seq & 0xFFFF;
                if (n->seen[k] == 0) {
                    n->seen[k] = 1;
                    n->distinct_bytes += pk.payload_len;
                } else {
                    n->retx_seen++;
                    if (n->track_retx_times && n->ndata_times < 16)
                        n->first_data_times[n->ndata_times++] = n->vc.now_ms;
                }
            }
        }
        if (pk.h.type & DHT_UDX_TYPE_HEARTBEAT) n->hb_tx[s->idx]++;
    }
    if (n->blackhole[s->idx]) return 0;
    if (rnd(n) % 1000 < n->loss_pm[s->idx]) return 0;
    uint64_t at = n->vc.now_ms + n->latency + (n->jitter ? rnd(n) % (n->jitter + 1) : 0);
    enqueue(n, 1 - s->idx, buf, len, at);
    if (rnd(n) % 1000 < n->dup_pm) enqueue(n, 1 - s->idx, buf, len, at + rnd(n) % 5);
    return 0;
}

static void app_write(side_t *s) {
    static uint8_t chunk[65536];
    while (!s->blocked && s->written < s->to_write && !dht_udx_conn_is_closed(s->c)) {
        uint64_t n = s->to_write - s->written;
        if (n > sizeof chunk) n = sizeof chunk;
        for (uint64_t i = 0; i < n; i++) chunk[i] = pattern(s->written + i);
        int r = dht_udx_conn_write(s->c, chunk, (size_t)n);
        if (r < 0) return;
        s->written += n;
        if (r == 0) s->blocked = 1;
    }
    if (s->written == s->to_write && s->end_after_write && !s->end_called) {
        s->end_called = 1;
        dht_udx_conn_end(s->c);
    }
}

static void cb_data(void *ud, const uint8_t *d, size_t len) {
    side_t *s = ud;
    for (size_t i = 0; i < len; i++)
        if (d[i] != pattern(s->received + i)) s->mismatches++;
    s->received += len;
}
static void cb_end(void *ud) {
    ((side_t *)ud)->ended++;
}
static void cb_message(void *ud, const uint8_t *d, size_t len) {
    side_t *s = ud;
    s->messages++;
    s->last_msg_len = len < sizeof s->last_msg ? len : sizeof s->last_msg;
    memcpy(s->last_msg, d, s->last_msg_len);
}
static void cb_drain(void *ud) {
    side_t *s = ud;
    s->drains++;
    s->blocked = 0;
    app_write(s);
}
static void cb_remote_changed(void *ud) {
    ((side_t *)ud)->remote_changed++;
}
static void cb_close(void *ud, int status) {
    side_t *s = ud;
    s->closed++;
    s->close_status = status;
}

static const dht_udx_conn_cbs_t cbs = {cb_data,           cb_end,  cb_message, cb_drain,
                                       cb_remote_changed, cb_close};

static void net_init(net_t *n, uint64_t seed) {
    memset(n, 0, sizeof *n);
    n->vc.now_ms = 1000000;
    n->latency = 10;
    n->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < 2; i++) {
        n->s[i].idx = i;
        n->s[i].net = n;
        n->s[i].c = dht_udx_conn_new(100 + (uint32_t)i, &cbs, &n->s[i], NULL);
        dht_udx_conn_connect(n->s[i].c, 101 - (uint32_t)i, n->vc.now_ms);
    }
}

static void net_free(net_t *n) {
    for (int i = 0; i < 2; i++) dht_udx_conn_free(n->s[i].c);
    free(n->q);
}

static void poll_all(net_t *n) {
    for (int i = 0; i < 2; i++) {
        if (!dht_udx_conn_is_closed(n->s[i].c)) app_write(&n->s[i]);
        n->s[i].deadline = dht_udx_conn_poll(n->s[i].c, n->vc.now_ms, emit, &n->s[i]);
    }
}

typedef int (*done_fn)(net_t *n);

/* Run until done() or max_ms of virtual time. Returns 1 if done() became true. */
static int run(net_t *n, uint64_t max_ms, done_fn done) {
    uint64_t end = n->vc.now_ms + max_ms;
    poll_all(n);
    for (unsigned iter = 0; iter < 5000000; iter++) {
        if (done && done(n)) return 1;
        uint64_t next = UINT64_MAX;
        for (size_t i = 0; i < n->nq; i++)
            if (n->q[i].at < next) next = n->q[i].at;
        for (int i = 0; i < 2; i++)
            if (n->s[i].deadline < next) next = n->s[i].deadline;
        if (next == UINT64_MAX || next > end) {
            if (next == UINT64_MAX)
                n->vc.now_ms = end;
            else
                n->vc.now_ms = end;
            return done ? done(n) : 1;
        }
        if (next > n->vc.now_ms) n->vc.now_ms = next;
        /* Deliver everything due, in queue order (jitter already reorders). */
        size_t w = 0;
        for (size_t i = 0; i < n->nq; i++) {
            qpkt_t *p = &n->q[i];
            if (p->at <= n->vc.now_ms) {
                side_t *s = &n->s[p->to];
                dht_udx_packet_t pk;
                if (dht_udx_packet_decode(p->buf, p->len, &pk) == 0)
                    dht_udx_conn_input(s->c, &pk, n->vc.now_ms); /* closed: may linger */
            } else {
                if (w != i) n->q[w] = *p;
                w++;
            }
        }
        n->nq = w;
        poll_all(n);
    }
    return 0;
}

static int done_transfer(net_t *n) {
    return n->s[1].received >= n->s[0].to_write && n->s[1].ended &&
           (n->s[0].to_write == 0 || n->s[0].end_called);
}

static int done_both_closed(net_t *n) {
    return n->s[0].closed && n->s[1].closed;
}

/* ------------------------------------------------------------------ codec */

TEST(codec_roundtrip) {
    uint8_t buf[64];
    dht_udx_header_t h = {.type = DHT_UDX_TYPE_DATA | DHT_UDX_TYPE_SACK,
                          .data_offset = 16,
                          .id = 0x01020304,
                          .rwnd = 4194304,
                          .seq = 0xFFFFFFFE,
                          .ack = 7};
    dht_udx_header_encode(&h, buf);
    static const uint8_t want[20] = {0xFF, 0x01, 0x05, 0x10, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00,
                                     0x40, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0x07, 0x00, 0x00, 0x00};
    ASSERT_MEM_EQ(buf, want, 20);
    dht_udx_sack_t sk[2] = {{9, 12}, {20, 21}};
    ASSERT_EQ_U64(dht_udx_sacks_encode(sk, 2, buf + 20), 16);
    memcpy(buf + 36, "hello", 5);
    dht_udx_packet_t p;
    ASSERT_OK(dht_udx_packet_decode(buf, 41, &p));
    ASSERT_EQ_U64(p.h.id, 0x01020304);
    ASSERT_EQ_U64(p.h.rwnd, 4194304);
    ASSERT_EQ_U64(p.h.seq, 0xFFFFFFFE);
    ASSERT_EQ_U64(p.h.ack, 7);
    ASSERT_EQ_U64(p.nsacks, 2);
    ASSERT_EQ_U64(p.sacks[0].start, 9);
    ASSERT_EQ_U64(p.sacks[1].end, 21);
    ASSERT_EQ_U64(p.payload_len, 5);
    ASSERT_MEM_EQ(p.payload, "hello", 5);
    /* SACK-only packet: data_offset 0, ranges fill the rest. */
    buf[2] = DHT_UDX_TYPE_SACK;
    buf[3] = 0;
    ASSERT_OK(dht_udx_packet_decode(buf, 36, &p));
    ASSERT_EQ_U64(p.nsacks, 2);
    /* Rejections. */
    ASSERT_ERR(dht_udx_packet_decode(buf, 19, &p), COMMON_EPROTO);
    buf[3] = 200;
    ASSERT_ERR(dht_udx_packet_decode(buf, 41, &p), COMMON_EPROTO);
    buf[0] = 0x03;
    ASSERT_ERR(dht_udx_packet_decode(buf, 41, &p), COMMON_EPROTO);
    ASSERT_FALSE(dht_udx_packet_is_udx(buf, 41));
    uint8_t probe = 0;
    ASSERT_FALSE(dht_udx_packet_is_udx(&probe, 1));
    ASSERT_TRUE(dht_udx_seq_lt(0xFFFFFFF0u, 5));
}

/* ------------------------------------------------------------------ transfers */

static void check_transfer(test_ctx_t *test_ctx_, uint64_t seed, unsigned loss_pm, unsigned jitter,
                           unsigned dup_pm, uint64_t bytes, int both_ways,
                           dht_udx_conn_stats_t *st_out) {
    net_t *n = malloc(sizeof *n);
    net_init(n, seed);
    n->loss_pm[0] = n->loss_pm[1] = loss_pm;
    n->jitter = jitter;
    n->dup_pm = dup_pm;
    n->s[0].to_write = bytes;
    n->s[0].end_after_write = 1;
    if (both_ways) {
        n->s[1].to_write = bytes / 2;
        n->s[1].end_after_write = 1;
    }
    int ok = run(n, 600000, done_both_closed);
    dht_udx_conn_get_stats(n->s[0].c, st_out);
    side_t a = n->s[0], b = n->s[1];
    if (!ok)
        fprintf(stderr,
                "  stuck: a wrote %llu recv %llu ended %d closed %d/%d; b recv %llu ended %d "
                "closed %d/%d; rto %llu\n",
                (unsigned long long)a.written, (unsigned long long)a.received, a.ended, a.closed,
                a.close_status, (unsigned long long)b.received, b.ended, b.closed, b.close_status,
                (unsigned long long)st_out->rto_events);
    net_free(n);
    free(n);
    ASSERT_TRUE(ok);
    ASSERT_EQ_U64(b.received, bytes);
    ASSERT_EQ_U64(b.mismatches, 0);
    ASSERT_EQ_U64(b.ended, 1);
    ASSERT_EQ_U64(a.close_status, 0);
    ASSERT_EQ_U64(b.close_status, 0);
    if (both_ways) {
        ASSERT_EQ_U64(a.received, bytes / 2);
        ASSERT_EQ_U64(a.mismatches, 0);
        ASSERT_EQ_U64(a.ended, 1);
    }
}

TEST(clean_transfer) {
    dht_udx_conn_stats_t st;
    check_transfer(test_ctx_, 1, 0, 0, 0, 2u << 20, 1, &st);
    if (test_ctx_->failed) return;
    ASSERT_EQ_U64(st.retransmits, 0);
    ASSERT_EQ_U64(st.rto_events, 0);
    ASSERT_GT(st.cwnd, 10);
}

TEST(loss_both_directions) {
    dht_udx_conn_stats_t st;
    check_transfer(test_ctx_, 2, 50, 0, 0, 2u << 20, 1, &st);
    if (test_ctx_->failed) return;
    ASSERT_GT(st.retransmits, 0);
    ASSERT_GT(st.fast_recoveries, 0);
}

TEST(heavy_loss) {
    dht_udx_conn_stats_t st;
    check_transfer(test_ctx_, 3, 250, 0, 0, 256u << 10, 1, &st);
    if (test_ctx_->failed) return;
    ASSERT_GT(st.retransmits, 0);
}

TEST(reordering) {
    dht_udx_conn_stats_t st;
    check_transfer(test_ctx_, 4, 0, 15, 0, 2u << 20, 1, &st);
}

TEST(duplication) {
    dht_udx_conn_stats_t st;
    check_transfer(test_ctx_, 5, 0, 3, 300, 1u << 20, 1, &st);
}

TEST(loss_reorder_dup) {
    dht_udx_conn_stats_t st;
    check_transfer(test_ctx_, 6, 30, 8, 50, 2u << 20, 1, &st);
}

/* Sequence numbers wrap around 2^32 in the middle of a lossy, reordered transfer. */
TEST(sequence_wraparound) {
    net_t *n = malloc(sizeof *n);
    memset(n, 0, sizeof *n);
    n->vc.now_ms = 5000;
    n->latency = 10;
    n->rng = 99;
    n->loss_pm[0] = n->loss_pm[1] = 20;
    n->jitter = 4;
    uint32_t start[2] = {0xFFFFFC00u, 0xFFFFFFF0u};
    for (int i = 0; i < 2; i++) {
        n->s[i].idx = i;
        n->s[i].net = n;
        n->s[i].c = dht_udx_conn_new(100 + (uint32_t)i, &cbs, &n->s[i], NULL);
    }
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(dht_udx_conn_set_seq(n->s[i].c, start[i]));
        ASSERT_OK(dht_udx_conn_set_ack(n->s[i].c, start[1 - i]));
        ASSERT_OK(dht_udx_conn_connect(n->s[i].c, 101 - (uint32_t)i, n->vc.now_ms));
    }
    ASSERT_ERR(dht_udx_conn_set_seq(n->s[0].c, 5), COMMON_ESTATE);
    n->s[0].to_write = 3u << 20; /* ≈ 2700 packets: crosses 2^32 after 1024 */
    n->s[0].end_after_write = 1;
    n->s[1].to_write = 100000;
    n->s[1].end_after_write = 1;
    int ok = run(n, 600000, done_both_closed);
    side_t a = n->s[0], b = n->s[1];
    net_free(n);
    free(n);
    ASSERT_TRUE(ok);
    ASSERT_EQ_U64(b.received, 3u << 20);
    ASSERT_EQ_U64(b.mismatches, 0);
    ASSERT_EQ_U64(a.received, 100000);
    ASSERT_EQ_U64(a.mismatches, 0);
    ASSERT_EQ_I64(a.close_status, 0);
    ASSERT_EQ_I64(b.close_status, 0);
}

TEST(congestion_backs_off_under_loss) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 7);
    n->s[0].to_write = 64u << 20;
    run(n, 3000, NULL);
    dht_udx_conn_stats_t before;
    dht_udx_conn_get_stats(n->s[0].c, &before);
    n->loss_pm[0] = 100;
    run(n, 200, NULL);
    dht_udx_conn_stats_t after;
    dht_udx_conn_get_stats(n->s[0].c, &after);
    net_free(n);
    free(n);
    ASSERT_GT(before.cwnd, 50);
    ASSERT_GT(after.fast_recoveries, 0);
    ASSERT_LE(after.cwnd * 2, before.cwnd);
    ASSERT_LE(after.ssthresh, before.cwnd);
}

/* ------------------------------------------------------------------ flow control */

TEST(window_exhaustion) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 8);
    n->s[0].to_write = 12u << 20;
    n->s[0].end_after_write = 1;
    dht_udx_conn_read_stop(n->s[1].c);
    run(n, 20000, NULL);
    uint64_t got_while_paused = n->s[1].received;
    uint64_t distinct = n->distinct_bytes;
    dht_udx_conn_stats_t st;
    dht_udx_conn_get_stats(n->s[0].c, &st);
    int blocked = n->s[0].blocked;
    /* A reader paused far longer than the RTO failure time is not a dead peer, also once
     * its buffer is full and it drops our window probes (but still acks them). */
    run(n, 500000, NULL);
    int closed_while_paused = n->s[0].closed;
    dht_udx_conn_read_start(n->s[1].c);
    int ok = run(n, 600000, done_transfer);
    side_t b = n->s[1];
    net_free(n);
    free(n);
    ASSERT_EQ_U64(got_while_paused, 0);
    ASSERT_EQ_U64(closed_while_paused, 0);
    /* The sender stayed within the advertised window (+ zero-window probes). */
    ASSERT_LE(distinct, DHT_UDX_RWND_MAX + 25 * DHT_UDX_MAX_PAYLOAD); /* + ≤ 1 probe / s */
    ASSERT_GT(distinct, DHT_UDX_RWND_MAX / 2);
    ASSERT_LE(st.send_rwnd, 2 * DHT_UDX_MAX_PAYLOAD);
    ASSERT_TRUE(blocked);
    ASSERT_TRUE(ok);
    ASSERT_EQ_U64(b.received, 12u << 20);
    ASSERT_EQ_U64(b.mismatches, 0);
}

/* ------------------------------------------------------------------ timers, failures */

TEST(rto_backoff_and_peer_disappearance) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 9);
    n->s[0].to_write = 64u << 10;
    run(n, 2000, NULL);
    /* Peer vanishes: nothing from A arrives any more, nothing comes back. */
    n->blackhole[0] = 1;
    n->blackhole[1] = 1;
    n->s[0].to_write = 128u << 10;
    n->track_retx_times = 1;
    uint64_t t0 = n->vc.now_ms;
    int ok = run(n, 400000, NULL);
    (void)ok;
    side_t a = n->s[0];
    uint64_t times[16];
    unsigned nt = n->ndata_times;
    memcpy(times, n->first_data_times, sizeof times);
    dht_udx_conn_stats_t st;
    dht_udx_conn_get_stats(n->s[0].c, &st);
    net_free(n);
    free(n);
    ASSERT_EQ_U64(a.closed, 1);
    ASSERT_EQ_I64(a.close_status, COMMON_ETIMEDOUT);
    ASSERT_EQ_U64(st.rto_events, DHT_UDX_MAX_RTO_TIMEOUTS + 1);
    ASSERT_EQ_U64(st.cwnd, 1);
    /* Retransmissions (after one tail-loss probe) back off exponentially: gaps double
     * until the 30 s cap. */
    ASSERT_GE(nt, 5);
    uint64_t prev_gap = 0;
    unsigned doublings = 0;
    for (unsigned i = 2; i < nt; i++) {
        uint64_t gap = times[i] - times[i - 1];
        if (prev_gap && gap >= prev_gap * 2 - 2 && gap <= prev_gap * 2 + 2) doublings++;
        prev_gap = gap;
    }
    ASSERT_GE(doublings, 3);
    (void)t0;
}

TEST(destroy_resets_peer) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 10);
    n->s[0].to_write = 100000;
    run(n, 1000, NULL);
    dht_udx_conn_destroy(n->s[0].c);
    run(n, 1000, done_both_closed);
    side_t a = n->s[0], b = n->s[1];
    net_free(n);
    free(n);
    ASSERT_EQ_U64(a.closed, 1);
    ASSERT_EQ_I64(a.close_status, 0);
    ASSERT_EQ_U64(b.closed, 1);
    ASSERT_EQ_I64(b.close_status, DHT_EDESTROYED);
    ASSERT_EQ_U64(b.received, 100000);
}

TEST(half_close_keeps_other_direction) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 11);
    dht_udx_conn_end(n->s[0].c);
    run(n, 500, NULL);
    ASSERT_EQ_U64(n->s[1].ended, 1);
    ASSERT_EQ_U64(n->s[0].closed, 0);
    ASSERT_EQ_I64(dht_udx_conn_write(n->s[0].c, "x", 1), COMMON_ESTATE);
    n->s[1].to_write = 300000;
    n->s[1].end_after_write = 1;
    int ok = run(n, 10000, done_both_closed);
    side_t a = n->s[0];
    net_free(n);
    free(n);
    ASSERT_TRUE(ok);
    ASSERT_EQ_U64(a.received, 300000);
    ASSERT_EQ_U64(a.mismatches, 0);
    ASSERT_EQ_U64(a.ended, 1);
}

TEST(messages_and_heartbeat) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 12);
    ASSERT_OK(dht_udx_conn_send_message(n->s[0].c, "ping", 4));
    ASSERT_OK(dht_udx_conn_send_message(n->s[1].c, "pong!", 5));
    uint8_t big[DHT_UDX_MAX_PAYLOAD + 1] = {0};
    ASSERT_ERR(dht_udx_conn_send_message(n->s[0].c, big, sizeof big), COMMON_ETOOBIG);
    dht_udx_conn_set_keepalive(n->s[0].c, 1000);
    run(n, 5500, NULL);
    side_t a = n->s[0], b = n->s[1];
    uint64_t hb = n->hb_tx[0];
    net_free(n);
    free(n);
    ASSERT_EQ_U64(b.messages, 1);
    ASSERT_EQ_U64(b.last_msg_len, 4);
    ASSERT_MEM_EQ(b.last_msg, "ping", 4);
    ASSERT_EQ_U64(a.messages, 1);
    ASSERT_MEM_EQ(a.last_msg, "pong!", 5);
    ASSERT_GE(hb, 4);
    ASSERT_LE(hb, 6);
    ASSERT_EQ_U64(a.closed, 0);
}

TEST(change_remote) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 13);
    n->s[0].to_write = 200000;
    run(n, 5, NULL);
    ASSERT_EQ_U64(n->last_hdr_id[0], 101);
    /* The simulated network routes by side, so B still answers; A addresses id 555. */
    ASSERT_OK(dht_udx_conn_change_remote(n->s[0].c, 555, n->vc.now_ms));
    ASSERT_EQ_U64(n->s[0].remote_changed, 0);
    run(n, 3000, NULL);
    uint32_t id = n->last_hdr_id[0];
    side_t a = n->s[0], b = n->s[1];
    net_free(n);
    free(n);
    ASSERT_EQ_U64(id, 555);
    ASSERT_EQ_U64(a.remote_changed, 1);
    ASSERT_EQ_U64(b.received, 200000);
}

TEST(garbage_input_is_harmless) {
    net_t *n = malloc(sizeof *n);
    net_init(n, 14);
    n->s[0].to_write = 50000;
    run(n, 100, NULL);
    uint64_t r = 77;
    for (int i = 0; i < 20000; i++) {
        uint8_t buf[64];
        for (size_t k = 0; k < sizeof buf; k++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[k] = (uint8_t)(r >> 56);
        }
        buf[0] = 0xFF;
        buf[1] = 0x01;
        buf[2] &= (uint8_t)~DHT_UDX_TYPE_DESTROY;
        dht_udx_packet_t pk;
        if (dht_udx_packet_decode(buf, sizeof buf, &pk) == 0)
            dht_udx_conn_input(n->s[1].c, &pk, n->vc.now_ms);
    }
    n->s[0].end_after_write = 1;
    run(n, 100000, NULL);
    side_t b = n->s[1];
    net_free(n);
    free(n);
    /* Random acks/seqs may not corrupt state; the stream either completes or is reset. */
    ASSERT_LE(b.received, 50000 + 64 * 20000);
}

TEST_MAIN(TEST_ENTRY(codec_roundtrip), TEST_ENTRY(clean_transfer), TEST_ENTRY(loss_both_directions),
          TEST_ENTRY(heavy_loss), TEST_ENTRY(reordering), TEST_ENTRY(duplication),
          TEST_ENTRY(loss_reorder_dup), TEST_ENTRY(sequence_wraparound),
          TEST_ENTRY(congestion_backs_off_under_loss), TEST_ENTRY(window_exhaustion),
          TEST_ENTRY(rto_backoff_and_peer_disappearance), TEST_ENTRY(destroy_resets_peer),
          TEST_ENTRY(half_close_keeps_other_direction), TEST_ENTRY(messages_and_heartbeat),
          TEST_ENTRY(change_remote), TEST_ENTRY(garbage_input_is_harmless))
