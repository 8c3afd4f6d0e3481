/* SPDX-License-Identifier: MIT */
/**
 * @file customer_run.h
 * @brief The customer runtime: one paid job, tried against providers one after another
 *        (fallback with the budget left), on top of proto_customer, a payments interface
 *        and any transport.
 *
 * Who calls what:
 *   - main creates it with a dialer (how to reach provider number N: --peer list today,
 *     Hyperswarm topic lookups when the swarm lands), the payments interface and a sink
 *     (where text and status go), then customer_start();
 *   - the dialer, for each attempt, calls customer_conn_up() once the connection is
 *     established, customer_conn_data() with the bytes it reads and customer_conn_closed()
 *     once it is gone, or customer_conn_failed() when it never came up. The handle passed to
 *     conn_up identifies the attempt: calls about an older connection are ignored;
 *   - SIGINT: customer_stop();
 *   - sink.done(exit_code) is called once, at the end.
 *
 * Exit codes (CUSTOMER_EXIT_*): 0 complete, 1 internal, 2 usage, 3 no provider, 4 price above
 * max, 5 budget exhausted before completion (partial output printed), 6 mint/payment
 * failure, 7 provider error, 130 interrupted.
 */
#ifndef SWARMDVM_CUSTOMER_RUN_H
#define SWARMDVM_CUSTOMER_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/common_env.h"
#include "customer/customer_pay.h"
#include "protocol/proto_customer.h"

enum {
    CUSTOMER_EXIT_OK = 0,
    CUSTOMER_EXIT_INTERNAL = 1,
    CUSTOMER_EXIT_USAGE = 2,
    CUSTOMER_EXIT_NO_PROVIDER = 3,
    CUSTOMER_EXIT_PRICE = 4,
    CUSTOMER_EXIT_BUDGET = 5,
    CUSTOMER_EXIT_PAYMENT = 6,
    CUSTOMER_EXIT_PROVIDER = 7,
    CUSTOMER_EXIT_INTERRUPTED = 130,
};

typedef struct customer_cfg {
    uint64_t kind, budget, max_sats_per_chunk;
    const char *mint_url; /* ours (borrowed) */
    uint64_t idle_timeout_ms, grace_ms;
    const proto_params_t *params; /* optional (borrowed) */
    const char *input;            /* the prompt (borrowed) */
    uint64_t lock_seconds; /* locked micro-tokens: locktime = now + this (>= min_locktime + 60) */
    size_t max_line;       /* 0: PROTO_MAX_LINE */
    size_t max_attempts;   /* providers tried at most (0: 8) */
} customer_cfg_t;

typedef enum customer_note_kind {
    CUSTOMER_N_CONNECTING, /* text: provider address */
    CUSTOMER_N_CONNECTED,  /* text: provider key prefix */
    CUSTOMER_N_OFFER,      /* a: sats_per_chunk, b: chunks_per_payment, code: has_pubkey */
    CUSTOMER_N_TOKENS,     /* a: micro-tokens prepared, b: sats each */
    CUSTOMER_N_PAYMENT,    /* a: sats spent so far (all attempts), b: budget */
    CUSTOMER_N_ACK,        /* a: sats credited */
    CUSTOMER_N_ERROR,      /* code: proto_error_code_t, text: message */
    CUSTOMER_N_RESULT,     /* a: total_sats, b: chunks, code: proto_reason_t */
    CUSTOMER_N_FALLBACK,   /* code: proto_outcome_t, text: why */
    CUSTOMER_N_DONE,       /* code: exit code, a: sats spent, b: chunks; text: outcome */
} customer_note_kind_t;

typedef struct customer_note {
    customer_note_kind_t kind;
    int code;
    uint64_t a, b;
    const char *text;
} customer_note_t;

typedef struct customer_sink {
    void (*output)(void *ud, const char *data, size_t len);
    void (*note)(void *ud, const customer_note_t *n);
    void (*done)(void *ud, int exit_code);
    void *ud;
} customer_sink_t;

typedef struct customer customer_t;

typedef struct customer_transport {
    int (*write)(void *t, const void *data, size_t len);
    void (*close)(void *t);
} customer_transport_t;

typedef struct customer_dialer {
    /** Start connecting to provider number @p attempt. @return 0, or COMMON_ENOTFOUND when
     * there is no such provider (the job ends). */
    int (*dial)(void *self, customer_t *cu, size_t attempt);
    void *self;
} customer_dialer_t;

customer_t *customer_new(uv_loop_t *loop, const common_env_t *env, const customer_cfg_t *cfg,
                         customer_pay_t *pay, const customer_dialer_t *dialer,
                         const customer_sink_t *sink, int *err);
/** @brief Free (after done, or to abandon); run the loop once more to close the timer. */
void customer_free(customer_t *cu);
int customer_start(customer_t *cu);
void customer_stop(customer_t *cu);

void customer_conn_up(customer_t *cu, const customer_transport_t *tr, void *t,
                      const uint8_t remote_pk[32]);
void customer_conn_data(customer_t *cu, void *t, const uint8_t *data, size_t len);
/** @brief A connection that was up is gone. */
void customer_conn_closed(customer_t *cu, void *t, int status);
/** @brief Attempt number @p attempt could not connect (it never came up). */
void customer_conn_failed(customer_t *cu, size_t attempt, int status);

/** @brief Sats spent (sent to providers) so far, over all attempts. */
uint64_t customer_spent(const customer_t *cu);

#endif
