/* SPDX-License-Identifier: MIT */
/**
 * @file proto_capacity.h
 * @brief Capacity slots (MAX_JOBS) shared by every job channel of one agent.
 *
 * A plain counter with exact accounting: acquire fails with AGENT_ECAPACITY when all slots
 * are taken; releasing more than was acquired is refused (COMMON_ESTATE) instead of going
 * negative, which is how the reference over-admitted after a double release. Counters of
 * every acquire/release are kept so tests and --stats can check that they balance.
 */
#ifndef SWARMDVM_PROTO_CAPACITY_H
#define SWARMDVM_PROTO_CAPACITY_H

#include <stdint.h>

typedef struct proto_capacity {
    uint32_t active, max;
    uint64_t acquired, released, refused;
} proto_capacity_t;

void proto_capacity_init(proto_capacity_t *c, uint32_t max);
/** @return 0 (slot taken) or AGENT_ECAPACITY. */
int proto_capacity_acquire(proto_capacity_t *c);
/** @return 0 or COMMON_ESTATE (nothing to release: a double release bug). */
int proto_capacity_release(proto_capacity_t *c);

#endif
