/* SPDX-License-Identifier: MIT */
/**
 * @file dht_records.h
 * @brief The storage duties of a persistent hyperdht node (hyperswarm-wire.md §4.2):
 *        peer records per topic (at most 20, newest kept), routes for self-announces
 *        (target = BLAKE2b(publicKey) → relay address + record), per-topic bump counters,
 *        all expiring after a TTL (20 minutes by default) and bounded by global caps with
 *        the oldest entries evicted first.
 *
 * Pure: time comes in as `now` (monotonic ms). Lookups are linear scans over bounded
 * arrays (caps below), which keeps the code small; the caps keep the worst case bounded.
 */
#ifndef SWARMDVM_DHT_RECORDS_H
#define SWARMDVM_DHT_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_rpc.h"

#ifndef DHT_RECORDS_PER_TOPIC
#define DHT_RECORDS_PER_TOPIC 20
#endif
#ifndef DHT_RECORDS_MAX_TOPICS
#define DHT_RECORDS_MAX_TOPICS 4096
#endif
#ifndef DHT_RECORDS_MAX_RECORDS
#define DHT_RECORDS_MAX_RECORDS 16384
#endif
#ifndef DHT_RECORDS_MAX_ROUTES
#define DHT_RECORDS_MAX_ROUTES 4096
#endif
#define DHT_RECORDS_TTL_MS (20u * 60u * 1000u)

typedef struct dht_records dht_records_t;

typedef struct dht_route {
    uint8_t target[32];
    dht_addr_t relay; /* the announcer's address as we saw it */
    dht_peer_record_t record;
    uint64_t added;
} dht_route_t;

/** @brief Caps of 0 pick the compile-time defaults; ttl_ms 0 picks 20 minutes. */
dht_records_t *dht_records_new(size_t max_topics, size_t max_records, size_t max_routes,
                               uint64_t ttl_ms);
void dht_records_free(dht_records_t *rs);

/** @brief Store (or refresh) @p rec under @p topic. @return 0 or COMMON_ENOMEM. */
int dht_records_add(dht_records_t *rs, const uint8_t topic[32], const dht_peer_record_t *rec,
                    uint64_t now);
/** @brief Remove the record of @p public_key under @p topic. @return 1 removed, 0 absent. */
int dht_records_remove(dht_records_t *rs, const uint8_t topic[32], const uint8_t public_key[32]);
/** @brief Up to @p max live records of @p topic. @return the number copied. */
size_t dht_records_get(dht_records_t *rs, const uint8_t topic[32], uint64_t now,
                       dht_peer_record_t *out, size_t max);
uint64_t dht_records_bump(dht_records_t *rs, const uint8_t topic[32]);
/** @brief Raise the topic's bump to @p bump if larger (topic must exist or is created). */
void dht_records_set_bump(dht_records_t *rs, const uint8_t topic[32], uint64_t bump, uint64_t now);

int dht_records_route_set(dht_records_t *rs, const uint8_t target[32], const dht_addr_t *relay,
                          const dht_peer_record_t *rec, uint64_t now);
/** @brief The live route for @p target or NULL (valid until the next mutation). */
const dht_route_t *dht_records_route_get(dht_records_t *rs, const uint8_t target[32], uint64_t now);
int dht_records_route_delete(dht_records_t *rs, const uint8_t target[32]);

/** @brief Drop expired entries. */
void dht_records_expire(dht_records_t *rs, uint64_t now);

typedef struct dht_records_stats {
    size_t topics, records, routes;
} dht_records_stats_t;
void dht_records_stats(const dht_records_t *rs, dht_records_stats_t *st);

#endif
