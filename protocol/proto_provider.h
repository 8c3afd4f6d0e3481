/* SPDX-License-Identifier: MIT */
/**
 * @file proto_provider.h
 * @brief The provider side of one paid streaming job (dvm-protocol.md §4), as a pure state
 *        machine on an injected clock.
 *
 * Who calls what: the agent owns connections, the wallet and the LLM driver. For each
 * `request` on a connection it validates it (proto_provider_check_request), makes sure the
 * id is not in use on that connection, takes a capacity slot (proto_capacity_acquire; on
 * failure it replies with proto_encode_error(..., PROTO_CODE_CAPACITY, ...)) and creates a
 * proto_provider_t, which queues the `offer`. From then on the agent feeds the core:
 *   - messages of that job from that connection only (payment, stop): proto_provider_on_msg;
 *   - the wallet's verdict on each PROTO_EV_VERIFY_TOKEN: payment_verified/payment_rejected;
 *   - the LLM stream: llm_delta (one chunk per delta), llm_done, llm_error;
 *   - time: call proto_provider_tick() when now >= proto_provider_deadline();
 *   - connection loss: proto_provider_disconnect();
 * and after each call drains events (proto_event.h) in order: SEND lines, VERIFY_TOKEN,
 * PERSIST_TOKEN (store durably before going on), LLM_START/ABORT/PAUSE/RESUME,
 * RELEASE_SLOT (exactly once), CLAIM (at most once, after the job ended and every pending
 * verification was answered), then DONE (last; the core may then be freed).
 *
 * Guarantees: nothing is credited before verification; credit = floor((amount + carry) /
 * sats_per_chunk) with the remainder carried; no chunk is ever sent without credit; the
 * generation buffer is bounded (PAUSE at max_buffer_chunks, hard stop at max_output_bytes);
 * result.total_sats is the verified sats; the LLM is never started before a verified payment
 * and is aborted on stop, timeout and disconnect; the payment timeout does not fire while a
 * verification is pending. After the core emitted LLM_ABORT (or the job ended), later
 * llm_delta/llm_done/llm_error calls are ignored with COMMON_ESTATE.
 *
 * Not thread-safe; one core per job, on the loop thread. No I/O, no globals.
 */
#ifndef SWARMDVM_PROTO_PROVIDER_H
#define SWARMDVM_PROTO_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_codec.h"
#include "common/common_env.h"
#include "protocol/proto_event.h"
#include "protocol/proto_msg.h"

/** Payments of one job waiting for the wallet's verdict at the same time. */
#ifndef PROTO_MAX_PENDING_PAYMENTS
#define PROTO_MAX_PENDING_PAYMENTS 4
#endif

typedef struct proto_provider_cfg {
    uint64_t kind;               /* the kind this agent serves */
    uint64_t sats_per_chunk;     /* >= 1 */
    uint64_t chunks_per_payment; /* >= 1 */
    uint64_t payment_timeout_ms; /* PAYMENT_TIMEOUT */
    size_t max_input;            /* longest accepted request input, bytes (0: 64 KiB) */
    size_t max_buffer_chunks;    /* unsent chunks before LLM_PAUSE (0: 256) */
    size_t max_output_bytes;     /* whole output cap; beyond it the LLM is aborted and the
                                    job ends with reason "length" (0: 128 KiB, so the result
                                    line stays under PROTO_MAX_LINE even fully escaped) */
    /* offer extensions (optional): borrowed, must outlive the core */
    const char *const *mints; /* accepted mint URLs */
    size_t n_mints;
    const uint8_t *pubkey; /* 33 bytes: ask for P2PK-locked payments; NULL: plain */
    uint64_t min_locktime_s;
} proto_provider_cfg_t;

typedef struct proto_provider proto_provider_t;

/**
 * @brief Check a decoded request against the settings (§4.1): kind matches, input non-empty
 * and not longer than max_input. @return 0 or PROTO_EBAD_MESSAGE with a reason in @p why.
 */
int proto_provider_check_request(const proto_provider_cfg_t *cfg, const proto_msg_t *req, char *why,
                                 size_t whylen);

/**
 * @brief Start a job for a validated request whose capacity slot the caller has taken.
 * Queues SEND(offer) and arms the payment deadline. @p cfg is copied (its pointers are
 * borrowed); @p env borrowed, must outlive the core; @p id borrowed (copied).
 */
proto_provider_t *proto_provider_new(const proto_provider_cfg_t *cfg, const common_env_t *env,
                                     const char *id, int *err);
void proto_provider_free(proto_provider_t *p);

/** @brief Take the next event (1) or report none (0). See proto_event.h for lifetimes. */
int proto_provider_next_event(proto_provider_t *p, proto_event_t *ev);

/**
 * @brief A decoded message for this job from its own connection. Handles `payment` (queues
 * VERIFY_TOKEN) and `stop`; other types are ignored. @return 0, COMMON_ESTATE after the job
 * ended (ignored), COMMON_EINVAL (another job's id), or COMMON_ENOMEM.
 */
int proto_provider_on_msg(proto_provider_t *p, const proto_msg_t *msg);

/** @brief The wallet verified the token of @p ticket: credit @p amount sats. */
int proto_provider_payment_verified(proto_provider_t *p, uint64_t ticket, uint64_t amount,
                                    int locked);
/**
 * @brief The wallet refused the token of @p ticket (bad_token, token_spent,
 * mint_not_accepted, not_locked, ...): the customer gets error{code, message}.
 */
int proto_provider_payment_rejected(proto_provider_t *p, uint64_t ticket, proto_error_code_t code,
                                    const char *message);

/** @brief One generated piece (one chunk). UTF-8 split across deltas is reassembled. */
int proto_provider_llm_delta(proto_provider_t *p, const char *data, size_t len);
/** @brief Generation finished. @p truncated: stopped by max_tokens (reason "length"). */
int proto_provider_llm_done(proto_provider_t *p, int has_usage, uint64_t prompt_tokens,
                            uint64_t completion_tokens, int truncated);
/** @brief The LLM failed: error{code:"backend"} then the partial result. */
int proto_provider_llm_error(proto_provider_t *p, const char *message);

/** @brief The connection is gone: abort the LLM, release the slot, claim, done. */
int proto_provider_disconnect(proto_provider_t *p);

/**
 * @brief Monotonic ms of the next deadline (common_now_ms clock), UINT64_MAX if none.
 * It changes with every input: re-read it after each call and re-arm the timer.
 */
uint64_t proto_provider_deadline(const proto_provider_t *p);
/** @brief Fire what is due at the current time (payment timeout). */
int proto_provider_tick(proto_provider_t *p);

/** Read-only view for logs, --stats and tests. */
typedef struct proto_provider_stats {
    uint64_t verified_sats, carry, credit, chunks_sent, buffered_chunks;
    int llm_started, llm_done, ended, done;
} proto_provider_stats_t;
void proto_provider_get_stats(const proto_provider_t *p, proto_provider_stats_t *st);

/** @brief Append error{id, message, code} as one line (for replies outside a job). */
int proto_encode_error(common_buf_t *out, const char *id, proto_error_code_t code,
                       const char *message);

#endif
