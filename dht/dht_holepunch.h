/* SPDX-License-Identifier: MIT */
/**
 * @file dht_holepunch.h
 * @brief NAT classification for holepunching (hyperswarm-wire.md §6), as hyperdht's
 *        lib/nat.js: each reply to a PING sent from the punch socket is a sample of our
 *        public address (the reply's `to` field) from one node; the firewall class follows.
 *
 * Pure and allocation-free. Rules (firewalled node; an unfirewalled node is OPEN):
 *  - fewer than 3 samples: UNKNOWN;
 *  - one ip:port seen by >= 3 nodes: CONSISTENT;
 *  - every sample a different ip:port: RANDOM;
 *  - best hit count 2: RANDOM with one host and > 3 samples; CONSISTENT when two
 *    different hosts were each seen twice (multi-homed); RANDOM after > 4 samples.
 * Addresses offered to the peer: CONSISTENT → the most seen ip:port plus any other seen
 * twice (at most 2); RANDOM → the host with port 0.
 */
#ifndef SWARMDVM_DHT_HOLEPUNCH_H
#define SWARMDVM_DHT_HOLEPUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_rpc.h"

#ifndef DHT_HOLEPUNCH_MAX_SAMPLES
#define DHT_HOLEPUNCH_MAX_SAMPLES 8
#endif

typedef struct dht_hp_nat {
    int firewalled; /* the DHT node is firewalled (else OPEN) */
    struct {
        dht_addr_t a;
        unsigned hits;
    } full[DHT_HOLEPUNCH_MAX_SAMPLES];
    size_t nfull;
    dht_addr_t visited[DHT_HOLEPUNCH_MAX_SAMPLES]; /* nodes that gave a sample */
    size_t nvisited;
    unsigned sampled;
    uint64_t firewall; /* DHT_FIREWALL_* */
    dht_addr_t addrs[2];
    size_t naddrs;
} dht_hp_nat_t;

void dht_hp_nat_init(dht_hp_nat_t *n, int firewalled);
/** @brief One sample: node @p from saw us as @p seen. A node counts once.
 *  @return 1 when the analysis is conclusive (CONSISTENT/OPEN, or >= 4 samples). */
int dht_hp_nat_add(dht_hp_nat_t *n, const dht_addr_t *seen, const dht_addr_t *from);

#endif
