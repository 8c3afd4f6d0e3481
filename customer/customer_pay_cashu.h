/* SPDX-License-Identifier: MIT */
/**
 * @file customer_pay_cashu.h
 * @brief customer_pay_t over the Cashu wallet: prepare = one cashu_wallet_prepare swap
 *        (locked to the offer's key with our refund key, or plain), mark_sent =
 *        cashu_wallet_mark_sent, release = cashu_wallet_refund (plain reserved bundles go
 *        back to unspent at once; locked ones come back after their locktime).
 */
#ifndef SWARMDVM_CUSTOMER_PAY_CASHU_H
#define SWARMDVM_CUSTOMER_PAY_CASHU_H

#include <uv.h>

#include "cashu/cashu_wallet.h"
#include "customer/customer_pay.h"

/** @brief Pay from @p mint (copied) with @p w (borrowed). */
int customer_pay_cashu(uv_loop_t *loop, cashu_wallet_t *w, const char *mint, customer_pay_t *out);
/** @brief Wallet calls in flight (wait for 0 before freeing the wallet). */
unsigned customer_pay_cashu_outstanding(const customer_pay_t *p);
void customer_pay_cashu_free(customer_pay_t *p);

#endif
