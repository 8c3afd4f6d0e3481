/* SPDX-License-Identifier: MIT */
/**
 * @file customer_swarm.h
 * @brief A dialer over Hyperswarm: look up the kind's topic as a client and hand the
 *        providers' connections to the customer runtime one attempt at a time, never the
 *        same key twice; with a join link naming a provider, only that key is used.
 *
 * The swarm connects to every provider it finds; connections not used yet wait in a queue.
 * Attempt 0 waits up to discover_ms for a first provider (then "no provider", exit 3); a
 * later attempt (fallback) takes a queued provider or waits up to 3 s for a new one.
 */
#ifndef SWARMDVM_CUSTOMER_SWARM_H
#define SWARMDVM_CUSTOMER_SWARM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dht/dht_swarm.h"
#include "customer/customer_run.h"

#ifndef CUSTOMER_SWARM_QUEUE
#define CUSTOMER_SWARM_QUEUE 32
#endif

typedef struct customer_swarm_dialer customer_swarm_dialer_t;

/** @p net: the network fields (host, port, bootstrap, allow_local, refresh_ms) are used,
 * callbacks are ours. @p topic copied; @p pk (32 bytes) or NULL: a specific provider (join link).
 */
customer_swarm_dialer_t *customer_swarm_new(uv_loop_t *loop, const common_env_t *env,
                                            const dht_keypair_t *kp, const dht_swarm_opts_t *net,
                                            const uint8_t topic[32], const uint8_t *pk,
                                            uint64_t discover_ms, int *err);
void customer_swarm_dialer(customer_swarm_dialer_t *d, customer_dialer_t *out);
/** @brief Close the swarm (every connection); @p cb once everything is freed. */
void customer_swarm_close(customer_swarm_dialer_t *d, void (*cb)(void *ud), void *ud);

#endif
