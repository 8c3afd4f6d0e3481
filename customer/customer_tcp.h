/* SPDX-License-Identifier: MIT */
/**
 * @file customer_tcp.h
 * @brief A dialer over secret-stream-over-TCP (`--peer host:port`, repeatable: attempt N
 *        connects to the N-th address; later addresses are the fallback providers).
 */
#ifndef SWARMDVM_CUSTOMER_TCP_H
#define SWARMDVM_CUSTOMER_TCP_H

#include <stddef.h>
#include <uv.h>

#include "customer/customer_run.h"
#include "dht/dht_crypto.h"

typedef struct customer_tcp_dialer {
    uv_loop_t *loop;
    const common_env_t *env;
    const dht_keypair_t *kp;
    char *const *peers; /* "host:port" (borrowed) */
    size_t npeers;
} customer_tcp_dialer_t;

/** @brief Fill @p out to dial through @p d (borrowed, must outlive the customer). */
void customer_tcp_dialer(customer_tcp_dialer_t *d, customer_dialer_t *out);

#endif
