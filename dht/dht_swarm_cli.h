/* SPDX-License-Identifier: MIT */
/**
 * @file dht_swarm_cli.h
 * @brief `dvm-dht connect --topic HEX` / `dvm-dht serve --topic HEX`: join a topic (client
 *        or server only) and pipe stdin/stdout over the first connection, like hyperbeam.
 *
 * Status lines go to stderr ("listening IP:PORT", "ready", "announced", "connected PK",
 * "error PK <reason>", "closed <status>"); stdout carries only the peer's bytes. stdin EOF
 * half-closes the connection; the program exits 0 once the connection closed cleanly after
 * both sides ended, 1 on failure or when no connection was made within the timeout.
 */
#ifndef SWARMDVM_DHT_SWARM_CLI_H
#define SWARMDVM_DHT_SWARM_CLI_H

#include <stddef.h>
#include <stdint.h>

typedef struct dht_swarm_cli_opts {
    int server; /* 1 serve, 0 connect */
    uint8_t topic[32];
    const uint8_t *seed; /* 32 bytes or NULL (random identity) */
    const char *host;
    uint16_t port;
    char *const *bootstrap; /* NULL = public nodes */
    size_t nbootstrap;
    int allow_local;
    uint64_t timeout_ms; /* no connection within this time: exit 1 (0 = never) */
    uint32_t refresh_ms; /* lookup/announce refresh (0 = 10 minutes) */
} dht_swarm_cli_opts_t;

/** @brief Run until the first connection closed. @return process exit code. */
int dht_swarm_cli_run(const dht_swarm_cli_opts_t *o, void *log /* const common_log_t * */);

#endif
