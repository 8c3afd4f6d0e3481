/* SPDX-License-Identifier: MIT */
/* An in-process network of dht_node cores on a virtual clock (test helper, header-only).
 * Datagrams are queued and delivered in order with a fixed 1 ms latency; dead nodes drop
 * everything. Node i listens on 127.0.0.1:(20000 + 2i) (server) and +1 (client). */
#ifndef SWARMDVM_TESTS_DHT_SIM_H
#define SWARMDVM_TESTS_DHT_SIM_H

#include <stdlib.h>
#include <string.h>

#include "common/common_env.h"
#include "dht/dht_node.h"

#define SIM_MAX       256
#define SIM_BASE_PORT 20000

typedef struct sim_pkt {
    struct sim_pkt *next;
    uint64_t at;
    dht_addr_t from, to;
    size_t len;
    uint8_t data[];
} sim_pkt_t;

typedef struct sim sim_t;
typedef struct sim_node {
    sim_t *sim;
    int idx;
    dht_node_t *node;
    common_env_t env;
    common_seeded_rng_t rng;
    int dead;
    int ready;
} sim_node_t;

struct sim {
    common_vclock_t vc;
    sim_node_t nodes[SIM_MAX];
    size_t n;
    sim_pkt_t *head, *tail;
    uint64_t sent;
};

static void sim_send(void *ud, int sock, const uint8_t *buf, size_t len, const dht_addr_t *to) {
    sim_node_t *sn = ud;
    sim_t *s = sn->sim;
    sim_pkt_t *p = malloc(sizeof *p + len);
    if (!p) return;
    p->next = NULL;
    p->at = s->vc.now_ms + 1;
    p->from.host[0] = 127, p->from.host[1] = 0, p->from.host[2] = 0, p->from.host[3] = 1;
    p->from.port = (uint16_t)(SIM_BASE_PORT + 2 * sn->idx + (sock == DHT_SOCK_CLIENT));
    p->to = *to;
    p->len = len;
    memcpy(p->data, buf, len);
    if (s->tail)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
    s->sent++;
}

static void sim_on_ready(void *ud) {
    ((sim_node_t *)ud)->ready = 1;
}

static dht_addr_t sim_addr(int i) {
    dht_addr_t a = {{127, 0, 0, 1}, (uint16_t)(SIM_BASE_PORT + 2 * i)};
    return a;
}

static void sim_init(sim_t *s) {
    memset(s, 0, sizeof *s);
    s->vc.now_ms = 1000000;
    s->vc.unix_ms = 1700000000000ull;
}

/* Add a persistent node; node 0 is the bootstrapper (pre-seeded address, no bootstrap). */
static sim_node_t *sim_add(sim_t *s, int ephemeral, int adaptive) {
    if (s->n >= SIM_MAX) return NULL;
    sim_node_t *sn = &s->nodes[s->n];
    memset(sn, 0, sizeof *sn);
    sn->sim = s;
    sn->idx = (int)s->n;
    sn->env.clock = common_clock_virtual(&s->vc);
    sn->env.rng = common_rng_seeded(&sn->rng, 1000 + s->n);
    sn->env.log = NULL;
    dht_addr_t me = sim_addr(sn->idx), boot = sim_addr(0);
    dht_node_opts_t o;
    memset(&o, 0, sizeof o);
    o.ephemeral = ephemeral;
    o.firewalled = ephemeral;
    o.adaptive = adaptive;
    o.allow_local = 1;
    o.server_port = me.port;
    if (s->n == 0)
        o.public_addr = &me;
    else {
        o.bootstrap = &boot;
        o.nbootstrap = 1;
    }
    dht_node_io_t io = {sim_send, sn};
    dht_node_events_t ev = {sim_on_ready, NULL, sn};
    sn->node = dht_node_new(&o, &sn->env, &io, &ev, NULL);
    if (!sn->node) return NULL;
    s->n++;
    dht_node_start(sn->node);
    return sn;
}

static sim_node_t *sim_lookup_port(sim_t *s, uint16_t port, int *sock) {
    if (port < SIM_BASE_PORT) return NULL;
    size_t i = (size_t)(port - SIM_BASE_PORT) / 2;
    if (i >= s->n) return NULL;
    *sock = (port - SIM_BASE_PORT) % 2 ? DHT_SOCK_CLIENT : DHT_SOCK_SERVER;
    return &s->nodes[i];
}

/* One step: deliver due packets or fire due timers, else advance the clock. */
static void sim_step(sim_t *s) {
    if (s->head && s->head->at <= s->vc.now_ms) {
        sim_pkt_t *p = s->head;
        s->head = p->next;
        if (!s->head) s->tail = NULL;
        int sock = 0;
        sim_node_t *dst = sim_lookup_port(s, p->to.port, &sock);
        if (dst && !dst->dead && p->to.host[0] == 127)
            dht_node_on_datagram(dst->node, sock, p->data, p->len, &p->from);
        free(p);
        return;
    }
    uint64_t next = s->head ? s->head->at : UINT64_MAX;
    for (size_t i = 0; i < s->n; i++) {
        if (s->nodes[i].dead) continue;
        uint64_t d = dht_node_next_deadline(s->nodes[i].node);
        if (d <= s->vc.now_ms) {
            dht_node_run_timers(s->nodes[i].node);
            return;
        }
        if (d < next) next = d;
    }
    if (next != UINT64_MAX && next > s->vc.now_ms)
        common_vclock_advance(&s->vc, next - s->vc.now_ms);
}

/* Run until *flag becomes non-zero or max_ms of virtual time pass. @return 1 if set. */
static int sim_run_until(sim_t *s, const int *flag, uint64_t max_ms) {
    uint64_t end = s->vc.now_ms + max_ms;
    for (long guard = 0; guard < 50000000L; guard++) {
        if (flag && *flag) return 1;
        if (s->vc.now_ms >= end) return flag ? *flag : 1;
        sim_step(s);
    }
    return flag ? *flag : 0;
}

static void sim_free(sim_t *s) {
    for (size_t i = 0; i < s->n; i++) dht_node_free(s->nodes[i].node);
    while (s->head) {
        sim_pkt_t *p = s->head;
        s->head = p->next;
        free(p);
    }
    s->tail = NULL;
}

#endif
