/* SPDX-License-Identifier: MIT */
/**
 * @file agent_pay_cashu.h
 * @brief agent_pay_t over the Cashu wallet (see agent_pay.c's contract and
 *        agent_pay_cashu.c's preamble for the verification order).
 *
 * Lifetime: create after cashu_wallet_open (the wallet is borrowed and must outlive it);
 * at shutdown call ops->close (stops retries, no more verdicts), run the loop once, then
 * agent_pay_cashu_free, then free the wallet.
 */
#ifndef SWARMDVM_AGENT_PAY_CASHU_H
#define SWARMDVM_AGENT_PAY_CASHU_H

#include <uv.h>

#include "agent/agent_pay.h"
#include "cashu/cashu_wallet.h"

/** @brief Accept tokens from @p mints (copied); loads their keysets and claims leftovers. */
int agent_pay_cashu(uv_loop_t *loop, const common_env_t *env, cashu_wallet_t *w,
                    const char *const *mints, size_t nmints, agent_pay_t *out);
/** @brief Wallet calls in flight (verifications, claims). */
unsigned agent_pay_cashu_outstanding(const agent_pay_t *p);
/** @brief 1 while a claim runs or tokens wait to be claimed at an accepted mint. */
int agent_pay_cashu_claiming(const agent_pay_t *p);
/** @brief Start the claims a job end scheduled (claim window) now: call on shutdown. */
void agent_pay_cashu_claim_now(agent_pay_t *p);
void agent_pay_cashu_free(agent_pay_t *p);

#endif
