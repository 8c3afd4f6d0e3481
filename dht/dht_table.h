/* SPDX-License-Identifier: MIT */
/**
 * @file dht_table.h
 * @brief Kademlia routing table of dht-rpc: k = 20 nodes per row, 256 rows, row index =
 *        first differing bit between the own id and the node id (hyperswarm-wire.md §3.5).
 *
 * Pure data structure: no I/O, no clock. Ticks (the node's 5 s maintenance counter) are
 * passed in by the caller. A full row rejects the newcomer and reports the row's "oldest"
 * node (least recently pinged, then earliest added) so the caller can ping it and swap on
 * timeout (ping-oldest-on-full). Rows are allocated on first use; memory is bounded by
 * 256 * 20 nodes. Owned by dht_node; not thread-safe.
 */
#ifndef SWARMDVM_DHT_TABLE_H
#define SWARMDVM_DHT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_rpc.h"

#ifndef DHT_TABLE_K
#define DHT_TABLE_K 20
#endif
#define DHT_TABLE_ROWS 256

typedef struct dht_table_node {
    uint8_t id[32];
    dht_addr_t addr;
    uint32_t added;  /* tick when added */
    uint32_t pinged; /* tick of the last interaction we started */
    uint32_t seen;   /* tick we last heard from it */
    uint32_t sampled;
    uint32_t down_hints;
} dht_table_node_t;

typedef struct dht_table dht_table_t;

/** @brief New empty table around @p id (copied). NULL on ENOMEM. */
dht_table_t *dht_table_new(const uint8_t id[32]);
void dht_table_free(dht_table_t *t);
const uint8_t *dht_table_id(const dht_table_t *t);
/** @brief Replace the own id; nodes are re-inserted, ones that no longer fit are dropped. */
int dht_table_set_id(dht_table_t *t, const uint8_t id[32]);
size_t dht_table_size(const dht_table_t *t);

/** @brief Row index for @p id (255 when equal to the own id). */
unsigned dht_table_row_of(const dht_table_t *t, const uint8_t id[32]);

typedef enum {
    DHT_TABLE_ADDED = 0, /* inserted (or updated in place) */
    DHT_TABLE_FULL = 1,  /* row full; *oldest points at the ping candidate (may be NULL) */
    DHT_TABLE_SELF = 2,  /* same id as ours: refused */
} dht_table_add_result_t;

/**
 * @brief Add or update a node. Returns DHT_TABLE_FULL when its row has k nodes; then
 * *oldest (if non-NULL) is the node of that row pinged least recently (ties: added
 * earliest), skipping nodes pinged at @p tick; NULL if none qualifies.
 */
dht_table_add_result_t dht_table_add(dht_table_t *t, const dht_table_node_t *n, uint32_t tick,
                                     dht_table_node_t **oldest);
/** @brief The node with @p id, or NULL. The pointer is valid until the next add/remove. */
dht_table_node_t *dht_table_get(dht_table_t *t, const uint8_t id[32]);
/** @brief Remove by id. @return 1 if removed, 0 if absent. */
int dht_table_remove(dht_table_t *t, const uint8_t id[32]);

/**
 * @brief Up to @p max nodes closest to @p target by XOR distance, sorted closest first,
 * copied into @p out. @return the number written.
 */
size_t dht_table_closest(const dht_table_t *t, const uint8_t target[32], dht_table_node_t *out,
                         size_t max);

/** @brief A uniformly random node (r is a random 32-bit value), or NULL if empty. */
dht_table_node_t *dht_table_random(dht_table_t *t, uint32_t r);

/** @brief Visit every node (the callback may modify the node but not add or remove). */
void dht_table_foreach(dht_table_t *t, void (*fn)(void *ud, dht_table_node_t *n), void *ud);

/** @brief XOR-distance order of @p a and @p b relative to @p target: <0, 0, >0. */
int dht_xor_cmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]);

#endif
