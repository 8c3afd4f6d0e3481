/* SPDX-License-Identifier: MIT */
/* libFuzzer target: UDX packet decoding and the stream state machine.
 *
 * The whole input is first decoded as one datagram. Then it is read as a script driving two
 * conns A and B wired back to back: the fuzzer decides which queued packet is delivered,
 * dropped or duplicated, injects crafted packets (near the conn's sequence space, so they
 * reach deep states), advances the virtual clock, and calls write/end/message/destroy/
 * read_stop/read_start/change_remote. Checks: no sanitizer report, bounded memory, and
 * in-order delivery of exactly the bytes written, unless the script forged DATA packets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht_udx_conn.h"
#include "dht/dht_udx_packet.h"

#define QMAX 256

typedef struct fz {
    dht_udx_conn_t *c[2];
    uint64_t now;
    uint8_t q[QMAX][DHT_UDX_MAX_DATAGRAM];
    size_t qlen[QMAX];
    int qto[QMAX];
    size_t nq;
    uint64_t written[2], received[2];
    int forged; /* a crafted DATA/END packet was injected: content checks off */
} fz_t;

static uint8_t pat(uint64_t i) {
    return (uint8_t)(i * 131u + (i >> 9));
}

typedef struct side_ud {
    fz_t *f;
    int idx;
} side_ud_t;

static side_ud_t uds[2];

static void on_data(void *ud, const uint8_t *d, size_t n) {
    side_ud_t *s = ud;
    fz_t *f = s->f;
    if (!f->forged) {
        for (size_t i = 0; i < n; i++)
            if (d[i] != pat(f->received[s->idx] + i)) abort();         /* corrupted or reordered */
        if (f->received[s->idx] + n > f->written[1 - s->idx]) abort(); /* never written */
    }
    f->received[s->idx] += n;
}
static void on_end(void *ud) {
    (void)ud;
}
static void on_message(void *ud, const uint8_t *d, size_t n) {
    (void)ud;
    (void)d;
    if (n > DHT_UDX_MAX_DATAGRAM) abort();
}
static void on_drain(void *ud) {
    (void)ud;
}
static void on_rc(void *ud) {
    (void)ud;
}
static void on_close(void *ud, int st) {
    (void)ud;
    (void)st;
}

static int emit(void *ud, const uint8_t *h, size_t hl, const uint8_t *b, size_t bl) {
    side_ud_t *s = ud;
    fz_t *f = s->f;
    if (hl + bl > DHT_UDX_MAX_DATAGRAM) abort();
    if (f->nq == QMAX) return 0; /* network full: drop */
    memcpy(f->q[f->nq], h, hl);
    if (bl) memcpy(f->q[f->nq] + hl, b, bl);
    f->qlen[f->nq] = hl + bl;
    f->qto[f->nq] = 1 - s->idx;
    f->nq++;
    return 0;
}

static void deliver(fz_t *f, size_t i, int keep) {
    dht_udx_packet_t p;
    if (dht_udx_packet_decode(f->q[i], f->qlen[i], &p) == 0)
        dht_udx_conn_input(f->c[f->qto[i]], &p, f->now);
    if (!keep) {
        f->nq--;
        if (i != f->nq) {
            memcpy(f->q[i], f->q[f->nq], f->qlen[f->nq]);
            f->qlen[i] = f->qlen[f->nq];
            f->qto[i] = f->qto[f->nq];
        }
    }
}

static void poll_both(fz_t *f) {
    for (int i = 0; i < 2; i++) dht_udx_conn_poll(f->c[i], f->now, emit, &uds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dht_udx_packet_t pk;
    (void)dht_udx_packet_decode(data, size, &pk);
    if (size > 4096) return 0;

    static fz_t f;
    memset(&f, 0, sizeof f);
    f.now = 1000;
    static const dht_udx_conn_cbs_t cbs = {on_data, on_end, on_message, on_drain, on_rc, on_close};
    for (int i = 0; i < 2; i++) {
        uds[i] = (side_ud_t){&f, i};
        f.c[i] = dht_udx_conn_new(10 + (uint32_t)i, &cbs, &uds[i], NULL);
    }
    /* A's sequence numbers start just below 2^32 so that scripts cross the wrap. */
    dht_udx_conn_set_seq(f.c[0], 0xFFFFFF80u);
    dht_udx_conn_set_ack(f.c[1], 0xFFFFFF80u);
    for (int i = 0; i < 2; i++) {
        dht_udx_conn_connect(f.c[i], 11 - (uint32_t)i, f.now);
    }
    static uint8_t buf[65536];
    size_t pos = 0;
    while (pos < size) {
        uint8_t op = data[pos++];
        uint8_t arg = pos < size ? data[pos++] : 0;
        int side = op & 1;
        dht_udx_conn_t *c = f.c[side];
        switch ((op >> 1) % 12) {
        case 0: /* deliver a queued packet */
        case 1:
            if (f.nq) deliver(&f, arg % f.nq, 0);
            break;
        case 2: /* drop */
            if (f.nq) {
                size_t i = arg % f.nq;
                f.nq--;
                if (i != f.nq) {
                    memcpy(f.q[i], f.q[f.nq], f.qlen[f.nq]);
                    f.qlen[i] = f.qlen[f.nq];
                    f.qto[i] = f.qto[f.nq];
                }
            }
            break;
        case 3: /* duplicate-deliver */
            if (f.nq) deliver(&f, arg % f.nq, 1);
            break;
        case 4: { /* write */
            size_t n = (size_t)arg * 97;
            for (size_t i = 0; i < n; i++) buf[i] = pat(f.written[side] + i);
            int r = dht_udx_conn_write(c, buf, n);
            if (r >= 0) f.written[side] += n;
            break;
        }
        case 5: dht_udx_conn_end(c); break;
        case 6: dht_udx_conn_send_message(c, buf, arg); break;
        case 7: f.now += (uint64_t)arg * ((op & 0x80) ? 100 : 1); break;
        case 8:
            if (arg & 1)
                dht_udx_conn_read_stop(c);
            else
                dht_udx_conn_read_start(c);
            break;
        case 9: { /* crafted packet near the conn's sequence space */
            uint8_t raw[DHT_UDX_MAX_DATAGRAM];
            size_t take = size - pos < 24 ? size - pos : 24;
            uint8_t fld[24] = {0};
            memcpy(fld, data + pos, take);
            pos += take;
            dht_udx_header_t h = {.type = fld[0],
                                  .data_offset = (uint8_t)(fld[1] & 0x1F),
                                  .id = 10 + (uint32_t)side,
                                  .rwnd = (uint32_t)fld[2] << (fld[3] & 15),
                                  .seq = (uint32_t)(int8_t)fld[4] + (uint32_t)fld[5] * 17,
                                  .ack = (uint32_t)(int8_t)fld[6] + (uint32_t)fld[7] * 13};
            dht_udx_header_encode(&h, raw);
            size_t plen = (size_t)fld[8] * 5;
            memcpy(raw + 20, fld + 9, 15);
            memset(raw + 35, fld[9], sizeof raw - 35);
            size_t len = 20 + h.data_offset + plen;
            if (len > sizeof raw) len = sizeof raw;
            if (h.type & (DHT_UDX_TYPE_DATA | DHT_UDX_TYPE_END)) f.forged = 1;
            if (dht_udx_packet_decode(raw, len, &pk) == 0) dht_udx_conn_input(c, &pk, f.now);
            break;
        }
        case 10:
            if (arg == 0xA5)
                dht_udx_conn_destroy(c);
            else if (arg == 0x5A)
                dht_udx_conn_change_remote(c, 11 - (uint32_t)side, f.now);
            else
                dht_udx_conn_set_keepalive(c, arg);
            break;
        case 11: f.now += 1000u * (arg & 63); break;
        }
        poll_both(&f);
    }
    /* Let the pair settle with a clean network for a bounded while. */
    for (int round = 0; round < 2000 && (f.nq || round < 10); round++) {
        while (f.nq) deliver(&f, 0, 0);
        f.now += 5;
        poll_both(&f);
    }
    for (int i = 0; i < 2; i++) dht_udx_conn_free(f.c[i]);
    return 0;
}
