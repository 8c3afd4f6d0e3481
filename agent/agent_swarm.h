/* SPDX-License-Identifier: MIT */
/**
 * @file agent_swarm.h
 * @brief Hyperswarm discovery for the provider: join the kind's topic as a server and hand
 *        every incoming connection (dht_swarm_conn_t, the same shape as dht_tcp) to the
 *        agent runtime. Also used by the customer's swarm dialer (customer_swarm.c) as a
 *        client.
 */
#ifndef SWARMDVM_AGENT_SWARM_H
#define SWARMDVM_AGENT_SWARM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/agent_server.h"
#include "dht/dht_swarm.h"

typedef struct agent_swarm_opts {
    const char *host;       /* bind address; NULL: 0.0.0.0 */
    uint16_t port;          /* 0: random */
    char *const *bootstrap; /* NULL: public hyperdht nodes */
    size_t nbootstrap;
    int allow_local;     /* private / loopback addresses (test networks) */
    uint32_t refresh_ms; /* 0: 10 minutes */
} agent_swarm_opts_t;

typedef struct agent_swarm agent_swarm_t;

/** @brief The swarm options for the network settings of @p o (no callbacks set). */
void agent_swarm_net_opts(const agent_swarm_opts_t *o, dht_swarm_opts_t *out);

/** @brief Join @p topic as a server for @p srv (borrowed). @return the handle or NULL. */
agent_swarm_t *agent_swarm_serve(uv_loop_t *loop, const common_env_t *env, const dht_keypair_t *kp,
                                 const agent_swarm_opts_t *o, const uint8_t topic[32],
                                 agent_server_t *srv, int *err);
dht_swarm_t *agent_swarm_dht(agent_swarm_t *as);
/** @brief Stop announcing (unannounce in the background); connections stay. */
void agent_swarm_leave(agent_swarm_t *as);
/** @brief Close every connection and socket; @p cb once freed (the handle is gone then). */
void agent_swarm_close(agent_swarm_t *as, void (*cb)(void *ud), void *ud);

#endif
