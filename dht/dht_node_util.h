/* SPDX-License-Identifier: MIT */
/**
 * @file dht_node_util.h
 * @brief Small pure parts of the node, exposed for unit tests: the NAT sampler
 *        (nat-sampler semantics), the global send window (§3.4), the per-source token
 *        bucket rate limiter and the rotating token secrets (§3.3).
 */
#ifndef SWARMDVM_DHT_NODE_UTIL_H
#define SWARMDVM_DHT_NODE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_rpc.h"

/* ---- NAT sampler: last 16 samples, each counted as (host,port) and (host,0) ---- */
typedef struct dht_nat_sample {
    dht_addr_t addr;
    uint32_t hits;
    uint8_t used;
} dht_nat_sample_t;

typedef struct dht_nat {
    int has_host;
    dht_addr_t addr; /* port 0 = randomising NAT */
    uint32_t size, threshold, top;
    dht_nat_sample_t pool[64]; /* distinct sample objects (JS shares objects) */
    int16_t samples[32];       /* indices into pool, -1 = empty */
    uint32_t nsamples;
    int a, b; /* best (host,port) and best (host,0) */
} dht_nat_t;

void dht_nat_init(dht_nat_t *s);
void dht_nat_add(dht_nat_t *s, const dht_addr_t *a);

/* ---- congestion window: 80 per 750 ms slot, 160 across the ring of 4 ---- */
typedef struct dht_cwnd {
    uint32_t i, total, max;
    uint32_t window[4];
} dht_cwnd_t;
void dht_cwnd_init(dht_cwnd_t *c, uint32_t max_window);
int dht_cwnd_full(const dht_cwnd_t *c);
void dht_cwnd_send(dht_cwnd_t *c);
void dht_cwnd_recv(dht_cwnd_t *c);
void dht_cwnd_drain(dht_cwnd_t *c);

/* ---- per-source token bucket ---- */
#ifndef DHT_RATE_SLOTS
#define DHT_RATE_SLOTS 256
#endif
typedef struct dht_rate_slot {
    uint8_t key[6];
    uint8_t used;
    uint64_t mtokens;
    uint64_t last;
} dht_rate_slot_t;
typedef struct dht_rate {
    uint32_t per_sec;
    dht_rate_slot_t slots[DHT_RATE_SLOTS];
} dht_rate_t;
void dht_rate_init(dht_rate_t *r, uint32_t per_sec);
/** @brief 1 if a request from @p key (6 bytes: ip+port or ip+0) is allowed now. */
int dht_rate_allow(dht_rate_t *r, const uint8_t key[6], uint64_t now);

/* ---- token secrets ---- */
typedef struct dht_tokens {
    uint8_t secrets[2][32];
    uint32_t rotate; /* drains until the next rotation */
} dht_tokens_t;
void dht_tokens_init(dht_tokens_t *t, const uint8_t rnd[64]);
/** @brief token = BLAKE2b-256(utf8(host), key = secrets[i]). */
void dht_tokens_make(const dht_tokens_t *t, int i, const dht_addr_t *from, uint8_t out[32]);
int dht_tokens_check(const dht_tokens_t *t, const dht_addr_t *from, const uint8_t token[32]);
/** @brief Called every 750 ms drain: every 10th call rotates (old secret re-hashed). */
void dht_tokens_drain(dht_tokens_t *t);
void dht_tokens_wipe(dht_tokens_t *t);

#endif
