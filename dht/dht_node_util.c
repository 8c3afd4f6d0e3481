/* SPDX-License-Identifier: MIT */
/* NAT sampler, send window, rate limiter, token secrets, bootstrap parsing. */
#include "dht/dht_node_util.h"

#include <sodium.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "dht/dht_crypto.h"
#include "dht/dht_node.h"

/* ---- NAT sampler (port of nat-sampler's ring of 32 slots = 16 samples x 2) ---- */

void dht_nat_init(dht_nat_t *s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 32; i++) s->samples[i] = -1;
    s->a = s->b = -1;
}

static int nat_new(dht_nat_t *s, const dht_addr_t *a, int exclude) {
    /* find a pool slot not referenced by the ring, by a/b or by the sample in progress */
    for (int i = 0; i < 64; i++) {
        int used = (i == s->a || i == s->b || i == exclude);
        for (int j = 0; j < 32 && !used; j++) used = s->samples[j] == i;
        if (!used) {
            s->pool[i].addr = *a;
            s->pool[i].hits = 1;
            s->pool[i].used = 1;
            return i;
        }
    }
    return 0; /* unreachable: at most 34 references */
}

static int nat_bump(dht_nat_t *s, const dht_addr_t *a, uint32_t inc, int exclude) {
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t j = (s->top - inc - 2 * i) & 31;
        if (j >= s->nsamples) return nat_new(s, a, exclude);
        int k = s->samples[j];
        if (k >= 0 && dht_ipv4_equal(&s->pool[k].addr, a)) {
            s->pool[k].hits++;
            return k;
        }
    }
    return nat_new(s, a, exclude);
}

void dht_nat_add(dht_nat_t *s, const dht_addr_t *addr) {
    dht_addr_t host0 = *addr;
    host0.port = 0;
    int a = nat_bump(s, addr, 2, -1);
    int b = nat_bump(s, &host0, 1, a);
    if (s->nsamples < 32) {
        s->size++;
        uint32_t sz = s->size;
        s->threshold = sz - (sz < 4 ? 0 : sz < 8 ? 1 : sz < 12 ? 2 : 3);
        s->samples[s->nsamples++] = (int16_t)a;
        s->samples[s->nsamples++] = (int16_t)b;
        s->top += 2;
    } else {
        if (s->top == 32) s->top = 0;
        int oa = s->samples[s->top];
        s->samples[s->top++] = (int16_t)a;
        if (oa >= 0) s->pool[oa].hits--;
        int ob = s->samples[s->top];
        s->samples[s->top++] = (int16_t)b;
        if (ob >= 0) s->pool[ob].hits--;
    }
    if (s->a < 0 || s->pool[s->a].hits < s->pool[a].hits) s->a = a;
    if (s->b < 0 || s->pool[s->b].hits < s->pool[b].hits) s->b = b;
    if (s->pool[s->a].hits >= s->threshold) {
        s->has_host = 1;
        s->addr = s->pool[s->a].addr;
    } else if (s->pool[s->b].hits >= s->threshold) {
        s->has_host = 1;
        s->addr = s->pool[s->b].addr;
        s->addr.port = 0;
    } else {
        s->has_host = 0;
        memset(&s->addr, 0, sizeof s->addr);
    }
}

/* ---- congestion window ---- */

void dht_cwnd_init(dht_cwnd_t *c, uint32_t max_window) {
    memset(c, 0, sizeof *c);
    c->max = max_window ? max_window : 80;
}
int dht_cwnd_full(const dht_cwnd_t *c) {
    return c->total >= 2 * c->max || c->window[c->i] >= c->max;
}
void dht_cwnd_send(dht_cwnd_t *c) {
    c->total++;
    c->window[c->i]++;
}
void dht_cwnd_recv(dht_cwnd_t *c) {
    if (c->window[c->i] > 0) {
        c->window[c->i]--;
        c->total--;
    }
}
void dht_cwnd_drain(dht_cwnd_t *c) {
    c->i = (c->i + 1) & 3;
    c->total -= c->window[c->i];
    c->window[c->i] = 0;
}

/* ---- rate limiter: hashed slots; a collision shares a bucket (conservative) ---- */

void dht_rate_init(dht_rate_t *r, uint32_t per_sec) {
    memset(r, 0, sizeof *r);
    r->per_sec = per_sec ? per_sec : DHT_NODE_RATE_PER_SEC;
}

int dht_rate_allow(dht_rate_t *r, const uint8_t key[6], uint64_t now) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 6; i++) h = (h ^ key[i]) * 16777619u;
    dht_rate_slot_t *s = &r->slots[h % DHT_RATE_SLOTS];
    uint64_t cap = 2000ull * r->per_sec; /* burst: 2 s worth, in milli-tokens */
    if (!s->used || memcmp(s->key, key, 6) != 0) {
        /* new source (or evicting another): start full */
        memcpy(s->key, key, 6);
        s->used = 1;
        s->mtokens = cap;
        s->last = now;
    } else {
        uint64_t dt = now - s->last;
        s->last = now;
        uint64_t add = dt * r->per_sec; /* per ms: per_sec/1000 tokens = per_sec milli-tokens */
        s->mtokens = s->mtokens + add > cap ? cap : s->mtokens + add;
    }
    if (s->mtokens < 1000) return 0;
    s->mtokens -= 1000;
    return 1;
}

/* ---- token secrets ---- */

void dht_tokens_init(dht_tokens_t *t, const uint8_t rnd[64]) {
    memcpy(t->secrets[0], rnd, 32);
    memcpy(t->secrets[1], rnd + 32, 32);
    t->rotate = 10;
}

void dht_tokens_make(const dht_tokens_t *t, int i, const dht_addr_t *from, uint8_t out[32]) {
    char host[16];
    dht_addr_host(from, host);
    dht_crypto_hash_keyed(out, host, strlen(host), t->secrets[i], 32);
}

int dht_tokens_check(const dht_tokens_t *t, const dht_addr_t *from, const uint8_t token[32]) {
    uint8_t a[32], b[32];
    dht_tokens_make(t, 1, from, a);
    dht_tokens_make(t, 0, from, b);
    return sodium_memcmp(a, token, 32) == 0 || sodium_memcmp(b, token, 32) == 0;
}

void dht_tokens_drain(dht_tokens_t *t) {
    if (--t->rotate > 0) return;
    t->rotate = 10;
    uint8_t tmp[32];
    memcpy(tmp, t->secrets[0], 32);
    memcpy(t->secrets[0], t->secrets[1], 32);
    dht_crypto_hash(t->secrets[1], tmp, 32);
    sodium_memzero(tmp, sizeof tmp);
}

void dht_tokens_wipe(dht_tokens_t *t) {
    sodium_memzero(t, sizeof *t);
}

/* ---- bootstrap parsing ---- */

const char *const dht_bootstrap_default[3] = {
    "88.99.3.86@node1.hyperdht.org:49737",
    "142.93.90.113@node2.hyperdht.org:49737",
    "138.68.147.8@node3.hyperdht.org:49737",
};

int dht_bootstrap_parse(const char *s, dht_bootstrap_entry_t *e) {
    memset(e, 0, sizeof *e);
    if (!s) return COMMON_EINVAL;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return COMMON_EINVAL;
    uint64_t port;
    if (common_parse_u64(colon + 1, 1, 65535, &port) != 0) return COMMON_EINVAL;
    e->port = (uint16_t)port;
    const char *at = memchr(s, '@', (size_t)(colon - s));
    const char *host = s;
    if (at) {
        char ip[16];
        size_t n = (size_t)(at - s);
        if (n == 0 || n > 15) return COMMON_EINVAL;
        memcpy(ip, s, n);
        ip[n] = 0;
        dht_addr_t a;
        if (dht_ipv4_parse(ip, e->port, &a) != 0) return COMMON_EINVAL;
        memcpy(e->ip, a.host, 4);
        e->has_ip = 1;
        host = at + 1;
    }
    size_t hl = (size_t)(colon - host);
    if (hl == 0 || hl >= sizeof e->host) return COMMON_EINVAL;
    memcpy(e->host, host, hl);
    e->host[hl] = 0;
    for (size_t i = 0; i < hl; i++) {
        char c = e->host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return COMMON_EINVAL;
    }
    if (!e->has_ip) {
        dht_addr_t a;
        if (dht_ipv4_parse(e->host, e->port, &a) == 0) {
            memcpy(e->ip, a.host, 4);
            e->has_ip = 1;
        }
    }
    return 0;
}
