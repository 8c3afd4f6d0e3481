/* SPDX-License-Identifier: MIT */
/**
 * @file customer_pay.h
 * @brief The customer's payments interface: what the customer runtime needs from a wallet.
 *
 * For each provider attempt the runtime asks prepare() for `count` micro-tokens of
 * `sats_each` (dvm-protocol.md §5.2: one swap with the mint; P2PK-locked to @p lock_pubkey
 * with @p locktime and the customer's own refund key when the offer had a pubkey, plain
 * otherwise), calls mark_sent(i) before micro-token i leaves (the wallet records it as
 * spent first), and release() once the attempt is over: micro-tokens never marked sent go
 * back to the wallet (plain ones spendable now, locked ones after their locktime).
 *
 * Contract: prepare() answers exactly once through @p cb, never from inside prepare(); the
 * token strings are borrowed for the duration of the callback. rc is 0 or an error
 * (CASHU_EFUNDS, CASHU_EMINT_UNREACHABLE, CASHU_EMINT, COMMON_EUNSUPPORTED, ...).
 *
 * There is deliberately no implementation that invents tokens in the shipped programs:
 * customer_pay_unavailable() refuses (COMMON_EUNSUPPORTED) until a wallet is linked; tests
 * use a test double defined in the test files only.
 */
#ifndef SWARMDVM_CUSTOMER_PAY_H
#define SWARMDVM_CUSTOMER_PAY_H

#include <stddef.h>
#include <stdint.h>

typedef void (*customer_pay_tokens_cb)(void *ud, int rc, const char *const *tokens, size_t n);

typedef struct customer_pay_ops {
    int (*prepare)(void *self, uint64_t count, uint64_t sats_each, const uint8_t *lock_pubkey,
                   uint64_t locktime_unix, customer_pay_tokens_cb cb, void *ud);
    int (*mark_sent)(void *self, uint64_t index);
    int (*release)(void *self);
    void (*close)(void *self);
} customer_pay_ops_t;

typedef struct customer_pay {
    const customer_pay_ops_t *ops;
    void *self;
    const char *name;
} customer_pay_t;

typedef struct uv_loop_s uv_loop_t;
/** @brief Stand-in while no wallet is linked: every prepare() fails (COMMON_EUNSUPPORTED). */
int customer_pay_unavailable(uv_loop_t *loop, customer_pay_t *out);

#endif
