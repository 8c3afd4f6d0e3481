/* SPDX-License-Identifier: MIT */
/**
 * @file agent_pay.h
 * @brief The provider's payments interface: what the agent runtime (agent_server) needs
 *        from a wallet, as a small table of operations.
 *
 * The runtime never looks inside a token. For each PROTO_EV_VERIFY_TOKEN it calls
 * verify(); for PROTO_EV_PERSIST_TOKEN persist(); for PROTO_EV_CLAIM claim(). The real
 * implementation is the Cashu wallet (cashu/, dvm-protocol.md §6): locked tokens verified
 * offline (decode, mint list, keyset, replay, P2PK lock, DLEQ), unlocked ones by the
 * --accept-unlocked policy, every received token written to the wallet database before it
 * is acknowledged, one batched claim per mint after the job, retried with backoff and on
 * restart.
 *
 * Contract of an implementation:
 *  - verify() answers exactly once through @p cb, never from inside verify() itself (always
 *    later on the loop), with rc 0 and the credited amount, or a CASHU_E* code:
 *    CASHU_EBAD_TOKEN / CASHU_EDLEQ / CASHU_EKEYSET / CASHU_EUNIT -> bad_token,
 *    CASHU_ESPENT / CASHU_EREPLAY -> token_spent, CASHU_EMINT_NOT_ACCEPTED ->
 *    mint_not_accepted, CASHU_ENOT_LOCKED -> not_locked, anything else -> internal.
 *    A token verified once must be refused (CASHU_EREPLAY) by every later verify(), from
 *    any job or connection, also when the first job has not persisted it yet.
 *  - persist() is synchronous and durable (sqlite FULL) before it returns 0.
 *  - claim() starts claiming every token persisted for @p job_row; failures are retried by
 *    the implementation (backoff, and on the next start); it never calls back.
 *  - totals() reports sats claimed and sats received but not yet claimed (pending).
 *  - close() stops retries and releases the implementation; pending verify callbacks are
 *    not called afterwards.
 *
 * There is deliberately no "accept everything" implementation in the shipped programs.
 * agent_pay_unavailable() is the honest stand-in while no wallet is linked: every payment
 * is refused (internal: "payments unavailable in this build"), nothing is credited.
 * Tests use a test double defined in the test files only.
 */
#ifndef SWARMDVM_AGENT_PAY_H
#define SWARMDVM_AGENT_PAY_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_msg.h"

typedef enum agent_unlocked_policy {
    AGENT_UNLOCKED_SWAP = 0, /* swap with the mint before crediting (default) */
    AGENT_UNLOCKED_PEEK = 1, /* credit after offline checks + DLEQ (provider's risk) */
    AGENT_UNLOCKED_REJECT = 2,
} agent_unlocked_policy_t;

/** @brief Parse "swap", "peek", "reject". @return 0 or COMMON_EINVAL. */
int agent_unlocked_policy_parse(const char *s, agent_unlocked_policy_t *out);

/** What a job's payments must satisfy (borrowed for the duration of verify()). */
typedef struct agent_pay_policy {
    const char *const *mints; /* accepted mint URLs */
    size_t n_mints;
    const uint8_t *lock_pubkey; /* 33 bytes (the offer's pubkey) or NULL: plain tokens */
    uint64_t min_locktime_s;
    agent_unlocked_policy_t unlocked;
} agent_pay_policy_t;

/** Verdict: rc 0 (credit @p amount sats; @p locked: came by the locked path) or CASHU_E*. */
typedef void (*agent_pay_verdict_cb)(void *ud, int rc, uint64_t amount, int locked,
                                     const char *message);

typedef struct agent_pay_ops {
    int (*verify)(void *self, const char *token, const agent_pay_policy_t *pol,
                  agent_pay_verdict_cb cb, void *ud);
    int (*persist)(void *self, int64_t job_row, const char *token, uint64_t amount, int locked);
    int (*claim)(void *self, int64_t job_row);
    int (*totals)(void *self, uint64_t *claimed, uint64_t *pending);
    void (*close)(void *self);
} agent_pay_ops_t;

typedef struct agent_pay {
    const agent_pay_ops_t *ops;
    void *self;
    const char *name; /* "cashu", "unavailable", "test-double" (for logs and --stats) */
} agent_pay_t;

/** @brief Map a verdict code to the error code sent to the customer. */
proto_error_code_t agent_pay_error_code(int rc);

/**
 * @brief The stand-in used when no wallet is linked: refuses every token with
 * COMMON_EUNSUPPORTED ("payments unavailable in this build"), claims nothing. @p loop borrowed.
 */
typedef struct uv_loop_s uv_loop_t;
int agent_pay_unavailable(uv_loop_t *loop, agent_pay_t *out);

#endif
