/* SPDX-License-Identifier: MIT */
/**
 * @file dht_node_uv.h
 * @brief libuv adapter for dht_node: binds the server and client UDP sockets (§3.1),
 *        feeds datagrams starting with 0x03/0x13 to the core, and drives its timers.
 *
 * The timer is re-armed before every loop poll (uv_prepare), so API calls made from any
 * callback are picked up. Until the UDX socket adapter exists this adapter owns the
 * sockets; a UDX owner can instead call dht_node_on_datagram itself and pass its own send.
 */
#ifndef SWARMDVM_DHT_NODE_UV_H
#define SWARMDVM_DHT_NODE_UV_H

#include <uv.h>

#include "dht/dht_node.h"

typedef struct dht_node_uv dht_node_uv_t;

typedef struct dht_node_uv_opts {
    const char *host; /* bind address, dotted IPv4 ("127.0.0.1"; "0.0.0.0" = any) */
    uint16_t port;    /* server port (0 = random) */
    int ephemeral;    /* 1: client node */
    int firewalled;   /* 1: requests from the client socket */
    int allow_local;
    int public_host;        /* 1: host is our public address (bootstrapper: pre-seed NAT) */
    char *const *bootstrap; /* "host:port" / "ip@host:port"; NULL = public defaults */
    size_t nbootstrap;      /* 0 with bootstrap != NULL = no bootstrap (first node) */
} dht_node_uv_opts_t;

/** @brief Bind, create the core and start bootstrapping. env/ev borrowed. */
dht_node_uv_t *dht_node_uv_new(uv_loop_t *loop, const dht_node_uv_opts_t *opts,
                               const common_env_t *env, const dht_node_events_t *ev, int *err);
dht_node_t *dht_node_uv_node(dht_node_uv_t *u);
/** @brief The bound server socket address. */
int dht_node_uv_server_addr(dht_node_uv_t *u, dht_addr_t *out);
/** @brief Close the sockets and free everything once libuv is done (@p cb may be NULL). */
void dht_node_uv_close(dht_node_uv_t *u, void (*cb)(void *ud), void *ud);

#endif
