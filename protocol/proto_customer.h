/* SPDX-License-Identifier: MIT */
/**
 * @file proto_customer.h
 * @brief The customer side of one paid streaming job (dvm-protocol.md §5), as a pure state
 *        machine on an injected clock.
 *
 * Who calls what: the customer program connects to a provider, creates a proto_customer_t
 * (which queues the `request`), and feeds it every decoded message of that connection
 * (proto_customer_on_msg), the wallet's answer to PROTO_EV_PREPARE_TOKENS
 * (proto_customer_tokens / proto_customer_tokens_failed), the user's SIGINT
 * (proto_customer_stop), connection loss (proto_customer_disconnect) and time
 * (proto_customer_tick when now >= proto_customer_deadline). After each call it drains the
 * events (proto_event.h) in order:
 *   SEND          a line for the provider;
 *   PREPARE_TOKENS a = count, b = sats each: make `count` micro-tokens of `b` sats in one
 *                 swap (P2PK-locked when proto_customer_offer()->has_pubkey);
 *   TOKEN_SENT    a = index of the micro-token about to leave (mark it spent before the SEND
 *                 that follows). Micro-tokens never announced this way were never sent and
 *                 stay in the wallet (plain) or come back after their locktime (locked);
 *   OUTPUT        generated text, in order (stdout);
 *   ACK, PROVIDER_ERROR, RESULT  status for stderr / --json;
 *   FALLBACK      this provider cannot (or can no longer) serve us: code = proto_outcome_t;
 *                 try another one with the budget left (budget - a of DONE);
 *   DONE          last event: code = proto_outcome_t, a = sats sent, b = chunks received.
 *
 * Rules implemented: price check against max_sats_per_chunk and our mint (stop + fallback),
 * floor(budget / cycle) micro-tokens, one sent first then one per pay_required, `stop` when
 * none are left, error followed by a partial result (the result is still delivered), an idle
 * timeout instead of a total one, provider disconnect -> fallback.
 *
 * Tokens handed to the core are copied and wiped on free. Not thread-safe; no I/O.
 */
#ifndef SWARMDVM_PROTO_CUSTOMER_H
#define SWARMDVM_PROTO_CUSTOMER_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"
#include "protocol/proto_event.h"
#include "protocol/proto_msg.h"

/** Most micro-tokens prepared for one job. */
#ifndef PROTO_MAX_MICRO_TOKENS
#define PROTO_MAX_MICRO_TOKENS 1024
#endif

/** How a customer job ended (DONE and FALLBACK codes). The program maps them to exit codes. */
typedef enum proto_outcome {
    PROTO_OUT_NONE = 0,
    PROTO_OUT_COMPLETE,       /* result received, generation finished */
    PROTO_OUT_BUDGET,         /* budget exhausted before completion (partial output) */
    PROTO_OUT_STOPPED,        /* stopped by the user */
    PROTO_OUT_PRICE,          /* offer above max price */
    PROTO_OUT_MINT,           /* offer's mints exclude ours */
    PROTO_OUT_PROVIDER_ERROR, /* provider sent error (a partial result may have followed) */
    PROTO_OUT_DISCONNECTED,   /* provider went away mid-job */
    PROTO_OUT_TIMEOUT,        /* nothing from the provider for idle_timeout_ms */
    PROTO_OUT_PAYMENT_FAILED, /* the wallet could not prepare the micro-tokens */
    PROTO_OUT_COUNT_
} proto_outcome_t;

const char *proto_outcome_name(proto_outcome_t o);

typedef struct proto_customer_cfg {
    uint64_t kind;
    uint64_t budget;              /* sats */
    uint64_t max_sats_per_chunk;  /* MAX_SATS_PER_CHUNK */
    const char *mint_url;         /* ours (borrowed, copied); NULL: skip the mint check */
    uint64_t idle_timeout_ms;     /* 0: 30000 */
    uint64_t grace_ms;            /* wait for a result after error/stop; 0: 3000 */
    const proto_params_t *params; /* optional request params (borrowed during new) */
} proto_customer_cfg_t;

/** What the accepted offer asked for (valid once PREPARE_TOKENS was emitted). */
typedef struct proto_customer_offer {
    uint64_t sats_per_chunk, chunks_per_payment, cycle_sats;
    int has_pubkey;
    uint8_t pubkey[PROTO_PUBKEY_LEN];
    uint64_t min_locktime_s; /* 0 when absent */
} proto_customer_offer_t;

typedef struct proto_customer proto_customer_t;

/** @brief Start a job: queues SEND(request). @p id and @p input borrowed (copied). */
proto_customer_t *proto_customer_new(const proto_customer_cfg_t *cfg, const common_env_t *env,
                                     const char *id, const char *input, int *err);
void proto_customer_free(proto_customer_t *c);

int proto_customer_next_event(proto_customer_t *c, proto_event_t *ev);

/** @brief A decoded message from the provider. @return 0, COMMON_EINVAL (other id),
 * COMMON_ESTATE (job over), COMMON_ENOMEM. */
int proto_customer_on_msg(proto_customer_t *c, const proto_msg_t *msg);

/** @brief The wallet made the micro-tokens asked for (@p n may be fewer; borrowed). */
int proto_customer_tokens(proto_customer_t *c, const char *const *tokens, size_t n);
/** @brief The wallet could not make them: stop, DONE(PAYMENT_FAILED). */
int proto_customer_tokens_failed(proto_customer_t *c);

/** @brief The user wants to stop (SIGINT): send stop, wait briefly for the partial result. */
int proto_customer_stop(proto_customer_t *c);
/** @brief The connection to the provider is gone. */
int proto_customer_disconnect(proto_customer_t *c);

uint64_t proto_customer_deadline(const proto_customer_t *c);
int proto_customer_tick(proto_customer_t *c);

const proto_customer_offer_t *proto_customer_offer(const proto_customer_t *c);

typedef struct proto_customer_stats {
    uint64_t tokens_prepared, tokens_sent, sats_sent, sats_acked, chunks;
    int done;
    proto_outcome_t outcome;
} proto_customer_stats_t;
void proto_customer_get_stats(const proto_customer_t *c, proto_customer_stats_t *st);

#endif
