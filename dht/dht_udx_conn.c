/* SPDX-License-Identifier: MIT */
/* UDX stream state machine; contract in dht_udx_conn.h, design notes in README-udx.md. */
#include "dht/dht_udx_conn.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

#define RING_INIT          64u /* rings start small and double up to the caps */
#define INIT_CWND          10u
#define INIT_SSTHRESH      255u
#define POOL_MAX           256u
#define DHT_UDX_MAX_TLP    3u
#define DHT_UDX_RECV_SLACK (256u * 1024u)

enum { L_NONE = 0, L_UNSENT, L_INFLIGHT, L_RTX };

typedef struct opkt {
    struct opkt *prev, *next;
    uint64_t time_sent;
    uint64_t tx_index; /* transmission order, for RACK */
    uint32_t seq;
    uint16_t len;
    uint8_t type; /* DATA and/or END */
    uint8_t list;
    uint8_t retransmitted;
    uint8_t data[DHT_UDX_MAX_PAYLOAD];
} opkt_t;

typedef struct plist {
    opkt_t *head, *tail;
    uint32_t n;
} plist_t;

typedef struct ipkt {
    uint32_t seq;
    uint16_t len;
    uint8_t type;
    uint8_t data[];
} ipkt_t;

typedef struct msg {
    struct msg *next;
    uint16_t len;
    uint8_t data[];
} msg_t;

struct dht_udx_conn {
    dht_udx_conn_cbs_t cbs;
    void *ud;
    uint32_t local_id, remote_id;
    uint8_t connected, closed, destroy_wanted, ending, end_sent, end_acked;
    uint8_t remote_ended, reading, ack_pending, hit_watermark, remote_changing;
    uint8_t lingering;
    uint8_t in_recovery, reordering_seen, tlp_outstanding, tlp_wanted, zwp_due, have_rtt;
    int close_status;

    /* sender */
    uint32_t seq, remote_acked, seq_on_change;
    opkt_t **out; /* sent, unacked packets by seq & (out_cap - 1) */
    uint32_t out_cap;
    plist_t unsent, inflight, rtx;
    opkt_t *pool;
    uint32_t pool_n;
    uint64_t queued_bytes;   /* written and not yet acked (payload bytes) */
    uint64_t inflight_bytes; /* header + payload of packets in the inflight list */
    uint32_t send_rwnd, wl1, wl2;
    uint64_t tx_counter;

    /* congestion control and timers */
    uint32_t cwnd, ssthresh, cwnd_cnt, high_seq;
    uint32_t srtt, rttvar, rto, min_rtt, rack_rtt, rack_fack;
    uint64_t rack_tx_index;
    unsigned rto_count, backoff, tlp_count;
    uint64_t rto_deadline, reo_deadline, tlp_deadline, zwp_deadline;
    uint32_t keepalive_ms;
    uint64_t last_tx;

    /* receiver */
    uint32_t ack, deliver;
    ipkt_t **in; /* received, undelivered packets by seq & (in_cap - 1) */
    uint32_t in_cap;
    uint32_t in_count;
    uint64_t in_bytes;

    msg_t *msg_head, *msg_tail;
    uint32_t msg_n;

    dht_udx_conn_stats_t st;
};

/* ---------------------------------------------------------------- lists, pool */

static void pl_push(plist_t *l, opkt_t *p, uint8_t which) {
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n++;
    p->list = which;
}

static void pl_unlink(plist_t *l, opkt_t *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
    l->n--;
    p->list = L_NONE;
}

static opkt_t *pkt_alloc(dht_udx_conn_t *c) {
    opkt_t *p = c->pool;
    if (p) {
        c->pool = p->next;
        c->pool_n--;
    } else {
        p = malloc(sizeof *p);
        if (!p) return NULL;
    }
    memset(p, 0, offsetof(opkt_t, data));
    return p;
}

static void pkt_release(dht_udx_conn_t *c, opkt_t *p) {
    if (c->pool_n < POOL_MAX) {
        p->next = c->pool;
        c->pool = p;
        c->pool_n++;
    } else {
        free(p);
    }
}

static opkt_t *out_get(const dht_udx_conn_t *c, uint32_t seq) {
    opkt_t *p = c->out[seq & (c->out_cap - 1)];
    return p && p->seq == seq ? p : NULL;
}

static ipkt_t *in_get(const dht_udx_conn_t *c, uint32_t seq) {
    ipkt_t *p = c->in[seq & (c->in_cap - 1)];
    return p && p->seq == seq ? p : NULL;
}

/* Make room for sequence numbers up to seq − remote_acked < out_cap. 0 or COMMON_ENOMEM. */
static int out_grow(dht_udx_conn_t *c, uint32_t span) {
    if (span < c->out_cap) return 0;
    uint32_t cap = c->out_cap;
    while (span >= cap && cap < DHT_UDX_SEND_RING) cap *= 2;
    if (span >= cap) return COMMON_ERANGE;
    opkt_t **n = calloc(cap, sizeof *n);
    if (!n) return COMMON_ENOMEM;
    for (uint32_t s = c->remote_acked; s != c->seq; s++) {
        opkt_t *p = out_get(c, s);
        if (p) n[s & (cap - 1)] = p;
    }
    free(c->out);
    c->out = n;
    c->out_cap = cap;
    return 0;
}

/* Make room for sequence numbers up to seq − deliver < in_cap. */
static int in_grow(dht_udx_conn_t *c, uint32_t span) {
    if (span < c->in_cap) return 0;
    uint32_t cap = c->in_cap;
    while (span >= cap && cap < DHT_UDX_RECV_RING) cap *= 2;
    if (span >= cap) return COMMON_ERANGE;
    ipkt_t **n = calloc(cap, sizeof *n);
    if (!n) return COMMON_ENOMEM;
    for (uint32_t i = 0; i < c->in_cap; i++) {
        ipkt_t *p = c->in[i];
        if (p) n[p->seq & (cap - 1)] = p;
    }
    free(c->in);
    c->in = n;
    c->in_cap = cap;
    return 0;
}

static plist_t *list_of(dht_udx_conn_t *c, opkt_t *p) {
    switch (p->list) {
    case L_UNSENT: return &c->unsent;
    case L_INFLIGHT: return &c->inflight;
    case L_RTX: return &c->rtx;
    default: return NULL;
    }
}

static uint32_t wire_size(const opkt_t *p) {
    return (uint32_t)p->len + DHT_UDX_HEADER_SIZE;
}

/* ---------------------------------------------------------------- helpers */

static uint64_t min_deadline(uint64_t a, uint64_t b) {
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

static uint32_t recv_window(const dht_udx_conn_t *c) {
    return c->in_bytes >= DHT_UDX_RWND_MAX ? 0 : (uint32_t)(DHT_UDX_RWND_MAX - c->in_bytes);
}

static void do_close(dht_udx_conn_t *c, int status) {
    if (c->closed) return;
    c->closed = 1;
    c->close_status = status;
    c->connected = 0;
    if (c->cbs.on_close) c->cbs.on_close(c->ud, status);
}

static uint64_t send_window_bytes(const dht_udx_conn_t *c) {
    uint64_t cw = (uint64_t)c->cwnd * (DHT_UDX_MAX_PAYLOAD + DHT_UDX_HEADER_SIZE);
    return cw < c->send_rwnd ? cw : c->send_rwnd;
}

static void make_header(const dht_udx_conn_t *c, uint8_t type, uint32_t seq, uint8_t *hdr) {
    dht_udx_header_t h = {.type = type,
                          .data_offset = 0,
                          .id = c->remote_id,
                          .rwnd = recv_window(c),
                          .seq = seq,
                          .ack = c->ack};
    dht_udx_header_encode(&h, hdr);
}

/* ---------------------------------------------------------------- lifecycle */

dht_udx_conn_t *dht_udx_conn_new(uint32_t local_id, const dht_udx_conn_cbs_t *cbs, void *ud,
                                 int *err) {
    dht_udx_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    if (cbs) c->cbs = *cbs;
    c->ud = ud;
    c->local_id = local_id;
    c->reading = 1;
    c->send_rwnd = DHT_UDX_RWND_MAX;
    c->cwnd = INIT_CWND;
    c->ssthresh = INIT_SSTHRESH;
    c->rto = DHT_UDX_RTO_MIN_MS;
    c->out_cap = c->in_cap = RING_INIT;
    c->out = calloc(RING_INIT, sizeof *c->out);
    c->in = calloc(RING_INIT, sizeof *c->in);
    if (!c->out || !c->in) {
        dht_udx_conn_free(c);
        if (err) *err = COMMON_ENOMEM;
        return NULL;
    }
    if (err) *err = 0;
    return c;
}

void dht_udx_conn_free(dht_udx_conn_t *c) {
    if (!c) return;
    for (uint32_t i = 0; c->out && i < c->out_cap; i++) {
        opkt_t *p = c->out[i];
        if (p && p->list != L_UNSENT) free(p);
    }
    for (opkt_t *p = c->unsent.head, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    for (opkt_t *p = c->pool, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    for (uint32_t i = 0; c->in && i < c->in_cap; i++) free(c->in[i]);
    free(c->out);
    free(c->in);
    for (msg_t *m = c->msg_head, *n; m; m = n) {
        n = m->next;
        free(m);
    }
    free(c);
}

int dht_udx_conn_connect(dht_udx_conn_t *c, uint32_t remote_id, uint64_t now) {
    if (c->closed || c->connected || c->destroy_wanted) return COMMON_ESTATE;
    c->remote_id = remote_id;
    c->connected = 1;
    c->last_tx = now;
    return 0;
}

int dht_udx_conn_set_seq(dht_udx_conn_t *c, uint32_t seq) {
    if (c->closed || c->connected || c->unsent.n) return COMMON_ESTATE;
    c->seq = c->remote_acked = c->wl2 = c->rack_fack = seq;
    return 0;
}

int dht_udx_conn_set_ack(dht_udx_conn_t *c, uint32_t ack) {
    if (c->closed || c->connected) return COMMON_ESTATE;
    c->ack = c->deliver = c->wl1 = ack;
    return 0;
}

int dht_udx_conn_change_remote(dht_udx_conn_t *c, uint32_t remote_id, uint64_t now) {
    (void)now;
    if (c->closed || !c->connected) return COMMON_ESTATE;
    c->remote_id = remote_id;
    if (c->seq != c->remote_acked) {
        c->remote_changing = 1;
        c->seq_on_change = c->seq;
    } else if (c->cbs.on_remote_changed) {
        c->cbs.on_remote_changed(c->ud);
    }
    return 0;
}

int dht_udx_conn_is_closed(const dht_udx_conn_t *c) {
    return c->closed;
}
int dht_udx_conn_is_lingering(const dht_udx_conn_t *c) {
    return c->closed && c->lingering;
}
int dht_udx_conn_is_connected(const dht_udx_conn_t *c) {
    return c->connected && !c->closed;
}
uint32_t dht_udx_conn_local_id(const dht_udx_conn_t *c) {
    return c->local_id;
}
uint32_t dht_udx_conn_remote_id(const dht_udx_conn_t *c) {
    return c->remote_id;
}

void dht_udx_conn_get_stats(const dht_udx_conn_t *c, dht_udx_conn_stats_t *out) {
    *out = c->st;
    out->cwnd = c->cwnd;
    out->ssthresh = c->ssthresh;
    out->srtt_ms = c->srtt;
    out->rto_ms = c->rto;
    out->inflight_packets = c->inflight.n;
    out->send_rwnd = c->send_rwnd;
    out->queued_bytes = c->queued_bytes;
}

/* ---------------------------------------------------------------- application calls */

static uint64_t watermark(const dht_udx_conn_t *c) {
    return DHT_UDX_HIGH_WATERMARK + send_window_bytes(c);
}

int dht_udx_conn_write(dht_udx_conn_t *c, const void *data, size_t len) {
    if (c->closed || c->ending || c->destroy_wanted) return COMMON_ESTATE;
    if (c->queued_bytes + len > DHT_UDX_MAX_QUEUED) return COMMON_EAGAIN;
    const uint8_t *d = data;
    while (len > 0) {
        opkt_t *t = c->unsent.tail;
        if (!t || t->len == DHT_UDX_MAX_PAYLOAD) {
            t = pkt_alloc(c);
            if (!t) return COMMON_ENOMEM;
            t->type = DHT_UDX_TYPE_DATA;
            pl_push(&c->unsent, t, L_UNSENT);
        }
        size_t n = DHT_UDX_MAX_PAYLOAD - t->len;
        if (n > len) n = len;
        memcpy(t->data + t->len, d, n);
        t->len = (uint16_t)(t->len + n);
        d += n;
        len -= n;
        c->queued_bytes += n;
    }
    if (c->queued_bytes > watermark(c)) {
        c->hit_watermark = 1;
        return 0;
    }
    return 1;
}

int dht_udx_conn_end(dht_udx_conn_t *c) {
    if (c->closed || c->ending || c->destroy_wanted) return COMMON_ESTATE;
    opkt_t *p = pkt_alloc(c);
    if (!p) return COMMON_ENOMEM;
    p->type = DHT_UDX_TYPE_END;
    pl_push(&c->unsent, p, L_UNSENT);
    c->ending = 1;
    return 0;
}

int dht_udx_conn_send_message(dht_udx_conn_t *c, const void *data, size_t len) {
    if (c->closed || c->destroy_wanted) return COMMON_ESTATE;
    if (len > DHT_UDX_MAX_PAYLOAD) return COMMON_ETOOBIG;
    if (c->msg_n >= DHT_UDX_MAX_MESSAGES) return COMMON_EAGAIN;
    msg_t *m = malloc(sizeof *m + (len ? len : 1));
    if (!m) return COMMON_ENOMEM;
    m->next = NULL;
    m->len = (uint16_t)len;
    if (len) memcpy(m->data, data, len);
    if (c->msg_tail)
        c->msg_tail->next = m;
    else
        c->msg_head = m;
    c->msg_tail = m;
    c->msg_n++;
    return 0;
}

void dht_udx_conn_destroy(dht_udx_conn_t *c) {
    if (c->closed) return;
    if (!c->connected) {
        do_close(c, 0);
        return;
    }
    c->destroy_wanted = 1;
}

static void deliver_ready(dht_udx_conn_t *c);

void dht_udx_conn_read_stop(dht_udx_conn_t *c) {
    c->reading = 0;
}

void dht_udx_conn_read_start(dht_udx_conn_t *c) {
    if (c->reading) return;
    c->reading = 1;
    uint32_t before = recv_window(c);
    deliver_ready(c);
    if (recv_window(c) != before) c->ack_pending = 1; /* tell the peer the window opened */
}

void dht_udx_conn_set_keepalive(dht_udx_conn_t *c, uint32_t ms) {
    c->keepalive_ms = ms;
}

/* ---------------------------------------------------------------- receiving data */

/* Deliver buffered in-order packets while reading. */
static void deliver_ready(dht_udx_conn_t *c) {
    while (c->reading && !c->closed && c->deliver != c->ack) {
        ipkt_t *p = in_get(c, c->deliver);
        if (!p) break; /* cannot happen: [deliver, ack) is filled */
        c->in[c->deliver & (c->in_cap - 1)] = NULL;
        c->in_count--;
        c->in_bytes -= p->len;
        c->deliver++;
        if ((p->type & DHT_UDX_TYPE_DATA) && p->len && c->cbs.on_data && !c->remote_ended)
            c->cbs.on_data(c->ud, p->data, p->len);
        if ((p->type & DHT_UDX_TYPE_END) && !c->remote_ended && !c->closed) {
            c->remote_ended = 1;
            if (c->cbs.on_end) c->cbs.on_end(c->ud);
        }
        free(p);
    }
}

static void on_data_packet(dht_udx_conn_t *c, const dht_udx_packet_t *pkt) {
    uint32_t seq = pkt->h.seq;
    c->ack_pending = 1;
    if (c->remote_ended) return;
    if ((uint32_t)(seq - c->deliver) >= DHT_UDX_RECV_RING) return; /* beyond our buffer */
    uint8_t type = pkt->h.type & (DHT_UDX_TYPE_DATA | DHT_UDX_TYPE_END);
    size_t len = (type & DHT_UDX_TYPE_DATA) ? pkt->payload_len : 0;
    if (len > DHT_UDX_MAX_DATAGRAM) return;
    /* Fast path: the next packet, nothing buffered, reading: deliver without a copy. */
    if (seq == c->ack && c->deliver == c->ack && c->reading && type == DHT_UDX_TYPE_DATA) {
        c->ack++;
        c->deliver++;
        if (len && c->cbs.on_data) c->cbs.on_data(c->ud, pkt->payload, len);
        goto drain_ooo;
    }
    if (in_grow(c, (uint32_t)(seq - c->deliver)) != 0) return; /* treated as loss */
    uint32_t idx = seq & (c->in_cap - 1);
    if (c->in[idx]) return; /* duplicate */
    /* Memory bound: a peer ignoring our window cannot make us buffer much more than it. */
    if (c->in_bytes + len > (uint64_t)DHT_UDX_RWND_MAX + DHT_UDX_RECV_SLACK) return;
    ipkt_t *p = malloc(sizeof *p + (len ? len : 1));
    if (!p) return; /* treated as loss */
    p->seq = seq;
    p->len = (uint16_t)len;
    p->type = type;
    if (len) memcpy(p->data, pkt->payload, len);
    c->in[idx] = p;
    c->in_count++;
    c->in_bytes += len;
drain_ooo:
    while (!c->closed) {
        if (!in_get(c, c->ack)) break;
        c->ack++;
    }
    deliver_ready(c);
}

/* ---------------------------------------------------------------- acks (sender side) */

static void rtt_sample(dht_udx_conn_t *c, uint32_t rtt) {
    if (rtt > DHT_UDX_RTO_MAX_MS) rtt = DHT_UDX_RTO_MAX_MS;
    if (!c->have_rtt) {
        c->srtt = rtt;
        c->rttvar = rtt / 2;
        c->min_rtt = rtt;
        c->have_rtt = 1;
    } else {
        uint32_t d = rtt > c->srtt ? rtt - c->srtt : c->srtt - rtt;
        c->rttvar = (3 * c->rttvar + d) / 4;
        c->srtt = (7 * c->srtt + rtt) / 8;
        if (rtt < c->min_rtt) c->min_rtt = rtt;
    }
    uint32_t r = c->srtt + 4 * c->rttvar;
    if (r < DHT_UDX_RTO_MIN_MS) r = DHT_UDX_RTO_MIN_MS;
    if (r > DHT_UDX_RTO_MAX_MS) r = DHT_UDX_RTO_MAX_MS;
    c->rto = r;
}

/* Packet @p seq was delivered (cumulative ack or SACK). Returns 1 if it was outstanding. */
static int ack_one(dht_udx_conn_t *c, uint32_t seq, int sacked, uint64_t now) {
    opkt_t *p = out_get(c, seq);
    if (!p) return 0;
    c->out[seq & (c->out_cap - 1)] = NULL;
    plist_t *l = list_of(c, p);
    if (p->list == L_INFLIGHT) c->inflight_bytes -= wire_size(p);
    if (l) pl_unlink(l, p);
    uint32_t rtt = (uint32_t)(now - p->time_sent);
    if (!p->retransmitted) rtt_sample(c, rtt);
    if (!p->retransmitted || rtt >= c->min_rtt) {
        if (p->tx_index > c->rack_tx_index) {
            c->rack_tx_index = p->tx_index;
            c->rack_rtt = rtt;
        }
    }
    /* Reordering: a never-retransmitted packet delivered below the highest delivered one. */
    if (dht_udx_seq_lt(c->rack_fack, seq + 1))
        c->rack_fack = seq + 1;
    else if (sacked == 0 && !p->retransmitted && dht_udx_seq_lt(seq + 1, c->rack_fack))
        c->reordering_seen = 1;
    c->queued_bytes -= p->len;
    if (p->type & DHT_UDX_TYPE_END) c->end_acked = 1;
    pkt_release(c, p);
    return 1;
}

static void enter_recovery(dht_udx_conn_t *c) {
    if (c->in_recovery) return;
    c->in_recovery = 1;
    c->high_seq = c->seq;
    uint32_t s = c->cwnd * 7 / 10;
    c->ssthresh = s < 2 ? 2 : s;
    c->cwnd = c->ssthresh;
    c->cwnd_cnt = 0;
    c->st.fast_recoveries++;
}

static void rack_detect(dht_udx_conn_t *c, uint64_t now) {
    uint32_t reo = 0;
    if (c->reordering_seen) {
        reo = c->min_rtt / 4;
        if (reo < 1) reo = 1;
        if (reo > c->srtt && c->srtt > 0) reo = c->srtt;
    }
    c->reo_deadline = 0;
    unsigned lost = 0;
    opkt_t *p = c->inflight.head;
    while (p && p->tx_index < c->rack_tx_index) {
        opkt_t *next = p->next;
        uint64_t due = p->time_sent + c->rack_rtt + reo;
        if (now >= due) {
            pl_unlink(&c->inflight, p);
            c->inflight_bytes -= wire_size(p);
            pl_push(&c->rtx, p, L_RTX);
            lost++;
        } else {
            c->reo_deadline = due;
            break;
        }
        p = next;
    }
    if (lost) enter_recovery(c);
}

static void cc_on_ack(dht_udx_conn_t *c, uint32_t acked) {
    if (c->in_recovery) return;
    /* Application- or window-limited: do not grow a window we are not using. */
    if (c->inflight.n + acked + 1 < c->cwnd / 2 && c->unsent.n == 0) return;
    if (c->cwnd < c->ssthresh) {
        c->cwnd += acked;
        if (c->cwnd > c->ssthresh) c->cwnd = c->ssthresh;
    } else {
        c->cwnd_cnt += acked;
        while (c->cwnd_cnt >= c->cwnd) {
            c->cwnd_cnt -= c->cwnd;
            c->cwnd++;
        }
    }
    if (c->cwnd > DHT_UDX_SEND_RING / 2) c->cwnd = DHT_UDX_SEND_RING / 2;
}

static void process_acks(dht_udx_conn_t *c, const dht_udx_packet_t *pkt, uint64_t now) {
    uint32_t a = pkt->h.ack;
    if (dht_udx_seq_lt(c->seq, a)) return; /* acks something we never sent */
    if (dht_udx_seq_le(c->remote_acked, a)) {
        if (dht_udx_seq_lt(c->wl1, pkt->h.seq) ||
            (c->wl1 == pkt->h.seq && dht_udx_seq_le(c->wl2, a))) {
            c->send_rwnd = pkt->h.rwnd;
            c->wl1 = pkt->h.seq;
            c->wl2 = a;
        }
    }
    uint32_t acked = 0;
    while (dht_udx_seq_lt(c->remote_acked, a)) {
        acked += (uint32_t)ack_one(c, c->remote_acked, 0, now);
        c->remote_acked++;
    }
    for (size_t i = 0; i < pkt->nsacks; i++) {
        uint32_t s = pkt->sacks[i].start, e = pkt->sacks[i].end;
        if (dht_udx_seq_lt(s, c->remote_acked)) s = c->remote_acked;
        if (dht_udx_seq_lt(c->seq, e)) e = c->seq;
        if ((uint32_t)(e - s) > DHT_UDX_SEND_RING) continue;
        for (uint32_t q = s; dht_udx_seq_lt(q, e); q++) acked += (uint32_t)ack_one(c, q, 1, now);
    }
    if (acked == 0) {
        /* A closed window with the peer still answering is "persist", not a dead peer. */
        if (pkt->h.rwnd < DHT_UDX_MAX_PAYLOAD + DHT_UDX_HEADER_SIZE) c->rto_count = 0;
        return;
    }
    c->rto_count = 0;
    c->backoff = 0;
    c->tlp_count = 0;
    c->tlp_outstanding = 0;
    c->tlp_wanted = 0;
    c->tlp_deadline = 0;
    c->rto_deadline = 0; /* re-armed by poll */
    if (c->in_recovery && dht_udx_seq_le(c->high_seq, c->remote_acked)) {
        c->in_recovery = 0;
        if (c->cwnd > c->ssthresh) c->cwnd = c->ssthresh;
    }
    cc_on_ack(c, acked);
    rack_detect(c, now);
    if (c->remote_changing && dht_udx_seq_le(c->seq_on_change, c->remote_acked)) {
        c->remote_changing = 0;
        if (c->cbs.on_remote_changed) c->cbs.on_remote_changed(c->ud);
        if (c->closed) return;
    }
    if (c->hit_watermark && c->queued_bytes <= watermark(c)) {
        c->hit_watermark = 0;
        if (c->cbs.on_drain) c->cbs.on_drain(c->ud);
    }
}

void dht_udx_conn_input(dht_udx_conn_t *c, const dht_udx_packet_t *pkt, uint64_t now) {
    if (c->closed) {
        /* After a graceful close: the peer still retransmitting means it missed our final
         * ack; repeat it (TIME_WAIT-like). */
        if (c->lingering && (pkt->h.type & (DHT_UDX_TYPE_DATA | DHT_UDX_TYPE_END)))
            c->ack_pending = 1;
        return;
    }
    if (!c->connected) return;
    c->st.packets_rx++;
    c->st.bytes_rx += pkt->payload_len + DHT_UDX_HEADER_SIZE;
    uint8_t t = pkt->h.type;
    if (dht_udx_seq_le(c->ack, pkt->h.seq)) {
        if (t & (DHT_UDX_TYPE_DATA | DHT_UDX_TYPE_END)) on_data_packet(c, pkt);
        if (c->closed) return;
        if (t & DHT_UDX_TYPE_DESTROY) {
            do_close(c, DHT_EDESTROYED);
            return;
        }
    } else if (t & (DHT_UDX_TYPE_DATA | DHT_UDX_TYPE_END)) {
        c->ack_pending = 1; /* duplicate: our ack was lost, repeat it */
    }
    if (t & DHT_UDX_TYPE_HEARTBEAT) c->ack_pending = 1;
    if ((t & DHT_UDX_TYPE_MESSAGE) && c->cbs.on_message) {
        c->cbs.on_message(c->ud, pkt->payload, pkt->payload_len);
        if (c->closed) return;
    }
    process_acks(c, pkt, now);
}

/* ---------------------------------------------------------------- timers */

static void on_rto(dht_udx_conn_t *c, uint64_t now) {
    c->rto_deadline = 0;
    if (c->inflight.n == 0 && c->rtx.n == 0) return;
    c->rto_count++;
    c->st.rto_events++;
    if (c->rto_count > DHT_UDX_MAX_RTO_TIMEOUTS) {
        do_close(c, COMMON_ETIMEDOUT);
        return;
    }
    uint32_t half = c->cwnd / 2;
    c->ssthresh = half < 2 ? 2 : half;
    c->cwnd = 1; /* RFC 5681: loss window of one packet, then slow start */
    c->cwnd_cnt = 0;
    c->in_recovery = 0;
    c->tlp_wanted = 0; /* no new probe until an ack arrives (tlp_outstanding stays) */
    c->tlp_deadline = 0;
    if (c->backoff < 16) c->backoff++;
    /* Everything in flight is presumed lost; resend in sequence order. */
    plist_t old = c->rtx;
    c->rtx = (plist_t){0};
    for (uint32_t s = c->remote_acked; s != c->seq; s++) {
        opkt_t *p = out_get(c, s);
        if (!p) continue;
        if (p->list == L_INFLIGHT) {
            pl_unlink(&c->inflight, p);
            c->inflight_bytes -= wire_size(p);
        } else if (p->list == L_RTX) {
            pl_unlink(&old, p);
        }
        pl_push(&c->rtx, p, L_RTX);
    }
    (void)now;
}

static uint32_t pto_ms(const dht_udx_conn_t *c) {
    uint32_t pto = c->have_rtt ? 2 * c->srtt + 2 : DHT_UDX_RTO_MIN_MS;
    if (pto < 4) pto = 4;
    return pto << c->tlp_count;
}

/* ---------------------------------------------------------------- output */

static int emit_state(dht_udx_conn_t *c, uint64_t now, dht_udx_emit_fn emit, void *ud,
                      uint8_t extra_type) {
    uint8_t hdr[DHT_UDX_HEADER_SIZE];
    uint8_t body[DHT_UDX_MAX_SACKS * 8];
    dht_udx_sack_t sacks[DHT_UDX_MAX_SACKS];
    size_t ns = 0;
    if (c->in_count > (uint32_t)(c->ack - c->deliver)) {
        /* Out-of-order packets exist above ack: describe up to 50 ranges. */
        uint32_t found = 0, need = c->in_count - (uint32_t)(c->ack - c->deliver);
        uint32_t limit = c->in_cap - (uint32_t)(c->ack - c->deliver);
        for (uint32_t i = 1; i < limit && found < need && ns < DHT_UDX_MAX_SACKS; i++) {
            uint32_t s = c->ack + i;
            if (!in_get(c, s)) continue;
            found++;
            if (ns > 0 && sacks[ns - 1].end == s)
                sacks[ns - 1].end = s + 1;
            else
                sacks[ns++] = (dht_udx_sack_t){s, s + 1};
        }
    }
    uint8_t type = extra_type | (ns ? DHT_UDX_TYPE_SACK : 0);
    make_header(c, type, c->seq, hdr);
    size_t blen = dht_udx_sacks_encode(sacks, ns, body);
    int r = emit(ud, hdr, sizeof hdr, body, blen);
    if (r < 0) return r;
    c->ack_pending = 0;
    c->last_tx = now;
    c->st.packets_tx++;
    c->st.bytes_tx += sizeof hdr + blen;
    return 0;
}

static int emit_data(dht_udx_conn_t *c, opkt_t *p, uint64_t now, dht_udx_emit_fn emit, void *ud) {
    uint8_t hdr[DHT_UDX_HEADER_SIZE];
    make_header(c, p->type, p->seq, hdr);
    int r = emit(ud, hdr, sizeof hdr, p->data, p->len);
    if (r < 0) return r;
    p->time_sent = now;
    p->tx_index = ++c->tx_counter;
    c->last_tx = now;
    c->st.packets_tx++;
    c->st.bytes_tx += sizeof hdr + p->len;
    /* A data packet carries our ack; only SACK information needs a separate packet. */
    if (c->in_count == (uint32_t)(c->ack - c->deliver)) c->ack_pending = 0;
    return 0;
}

static int window_allows(const dht_udx_conn_t *c, const opkt_t *p) {
    if (c->inflight.n >= c->cwnd) return 0;
    if (p->list == L_RTX) return 1; /* already inside a window the peer granted */
    if (c->inflight_bytes + wire_size(p) <= c->send_rwnd) return 1;
    return c->zwp_due && c->inflight.n == 0;
}

static void maybe_graceful_close(dht_udx_conn_t *c) {
    if (c->closed || !c->end_acked || !c->remote_ended || c->ack_pending) return;
    if (c->seq != c->remote_acked || c->unsent.n) return;
    c->lingering = 1; /* keep acking the peer's retransmissions (our last ack may be lost) */
    do_close(c, 0);
}

uint64_t dht_udx_conn_poll(dht_udx_conn_t *c, uint64_t now, dht_udx_emit_fn emit, void *ud) {
    if (c->closed) {
        if (c->lingering && c->ack_pending) {
            uint8_t hdr[DHT_UDX_HEADER_SIZE];
            make_header(c, 0, c->seq, hdr);
            if (emit(ud, hdr, sizeof hdr, NULL, 0) == 0) c->ack_pending = 0;
        }
        return UINT64_MAX;
    }
    if (!c->connected) return UINT64_MAX;

    /* Timers. */
    if (c->rto_deadline && now >= c->rto_deadline) {
        on_rto(c, now);
        if (c->closed) return UINT64_MAX;
    }
    if (c->reo_deadline && now >= c->reo_deadline) rack_detect(c, now);
    if (c->tlp_deadline && now >= c->tlp_deadline) {
        c->tlp_deadline = 0;
        if (c->inflight.n > 0 && !c->tlp_outstanding) c->tlp_wanted = 1;
    }
    if (c->zwp_deadline && now >= c->zwp_deadline) {
        c->zwp_deadline = 0;
        c->zwp_due = 1;
    }

    if (c->destroy_wanted) {
        uint8_t hdr[DHT_UDX_HEADER_SIZE];
        make_header(c, DHT_UDX_TYPE_DESTROY, c->seq, hdr);
        if (emit(ud, hdr, sizeof hdr, NULL, 0) < 0) return now + 1;
        c->seq++;
        c->st.packets_tx++;
        do_close(c, 0);
        return UINT64_MAX;
    }

    while (c->msg_head) {
        msg_t *m = c->msg_head;
        uint8_t hdr[DHT_UDX_HEADER_SIZE];
        make_header(c, DHT_UDX_TYPE_MESSAGE, c->seq, hdr);
        if (emit(ud, hdr, sizeof hdr, m->data, m->len) < 0) goto blocked;
        c->st.packets_tx++;
        c->last_tx = now;
        c->msg_head = m->next;
        if (!c->msg_head) c->msg_tail = NULL;
        c->msg_n--;
        free(m);
    }

    /* SACK information goes out first, so the peer can repair before new data arrives. */
    if (c->ack_pending && c->in_count > (uint32_t)(c->ack - c->deliver)) {
        if (emit_state(c, now, emit, ud, 0) < 0) goto blocked;
    }

    int sent_new = 0;
    while (c->rtx.head && window_allows(c, c->rtx.head)) {
        opkt_t *p = c->rtx.head;
        if (emit_data(c, p, now, emit, ud) < 0) goto blocked;
        pl_unlink(&c->rtx, p);
        p->retransmitted = 1;
        pl_push(&c->inflight, p, L_INFLIGHT);
        c->inflight_bytes += wire_size(p);
        c->st.retransmits++;
        c->zwp_due = 0;
    }
    while (c->unsent.head && (uint32_t)(c->seq - c->remote_acked) < DHT_UDX_SEND_RING - 1 &&
           window_allows(c, c->unsent.head)) {
        opkt_t *p = c->unsent.head;
        if (out_grow(c, (uint32_t)(c->seq - c->remote_acked)) != 0) break;
        p->seq = c->seq;
        if (emit_data(c, p, now, emit, ud) < 0) goto blocked;
        pl_unlink(&c->unsent, p);
        c->out[p->seq & (c->out_cap - 1)] = p;
        c->seq++;
        if (p->type & DHT_UDX_TYPE_END) c->end_sent = 1;
        pl_push(&c->inflight, p, L_INFLIGHT);
        c->inflight_bytes += wire_size(p);
        c->zwp_due = 0;
        sent_new = 1;
    }
    if (c->tlp_wanted) {
        c->tlp_wanted = 0;
        if (!sent_new && c->inflight.tail) {
            /* Tail-loss probe: resend the most recently sent packet to elicit a SACK. */
            opkt_t *p = c->inflight.tail;
            if (emit_data(c, p, now, emit, ud) < 0) goto blocked;
            p->retransmitted = 1;
            c->st.tlp_probes++;
        }
        /* Up to DHT_UDX_MAX_TLP probes (PTO doubling) before waiting for the RTO. */
        if (++c->tlp_count >= DHT_UDX_MAX_TLP) c->tlp_outstanding = 1;
    }
    if (c->keepalive_ms && now >= c->last_tx + c->keepalive_ms) {
        if (emit_state(c, now, emit, ud, DHT_UDX_TYPE_HEARTBEAT) < 0) goto blocked;
    }
    if (c->ack_pending) {
        if (emit_state(c, now, emit, ud, 0) < 0) goto blocked;
    }
    maybe_graceful_close(c);
    if (c->closed) return UINT64_MAX;

    /* Re-arm timers. */
    if (c->inflight.n || c->rtx.n) {
        if (!c->rto_deadline) {
            uint64_t r = (uint64_t)c->rto << c->backoff;
            if (r > DHT_UDX_RTO_MAX_MS) r = DHT_UDX_RTO_MAX_MS;
            c->rto_deadline = now + r;
        }
        /* Unlike RFC 8985 the probe is also armed in recovery: a lost retransmission at
         * the tail would otherwise wait for a whole RTO (≥ 1 s). */
        if (c->inflight.n && !c->tlp_outstanding && !c->tlp_deadline)
            c->tlp_deadline = now + pto_ms(c);
    } else {
        c->rto_deadline = 0;
        c->tlp_deadline = 0;
    }
    if (c->unsent.head && c->inflight.n == 0 && c->rtx.n == 0 && !c->zwp_deadline &&
        !window_allows(c, c->unsent.head))
        c->zwp_deadline = now + c->rto;
    uint64_t d = 0;
    d = min_deadline(d, c->rto_deadline);
    d = min_deadline(d, c->reo_deadline);
    d = min_deadline(d, c->tlp_deadline);
    d = min_deadline(d, c->zwp_deadline);
    if (c->keepalive_ms) d = min_deadline(d, c->last_tx + c->keepalive_ms);
    if (d == 0) return UINT64_MAX;
    return d <= now ? now + 1 : d;

blocked:
    /* The socket is full: the driver polls again when it can send. */
    return now + 1;
}
