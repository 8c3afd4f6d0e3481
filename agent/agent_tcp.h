/* SPDX-License-Identifier: MIT */
/**
 * @file agent_tcp.h
 * @brief `--listen host:port`: accept secret-stream-over-TCP connections (dht_tcp) and hand
 *        them to the agent runtime. The Hyperswarm transport plugs in the same way: on
 *        connection -> agent_server_conn_open, data -> conn_data, close -> conn_closed.
 */
#ifndef SWARMDVM_AGENT_TCP_H
#define SWARMDVM_AGENT_TCP_H

#include <stdint.h>
#include <uv.h>

#include "agent/agent_server.h"
#include "dht/dht_crypto.h"
#include "dht/dht_tcp.h"

/** @brief Listen on @p host:@p port for @p srv (borrowed). @return the server or NULL. */
dht_tcp_server_t *agent_tcp_listen(uv_loop_t *loop, const common_env_t *env,
                                   const dht_keypair_t *kp, const char *host, uint16_t port,
                                   agent_server_t *srv, int *err);

#endif
