/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_mint.h
 * @brief Mint API v1 client on the libuv loop (through common_http): JSON in, JSON out, mint
 *        error codes surfaced. Thin adapter: it knows URLs and error mapping, not wallet logic.
 *
 * Every call is asynchronous and calls @p cb exactly once (unless the client is freed first:
 * then pending calls are cancelled without callbacks). Results (cashu_mint_resp_t) are borrowed
 * for the duration of the callback; the JSON tree is freed after it returns.
 *
 * Error mapping (resp->err):
 *  - 0: HTTP 200 with a JSON body.
 *  - CASHU_ESPENT: HTTP 400 with code 11001 (or CDK's legacy 10002).
 *  - CASHU_EMINT: HTTP 400 with another code (resp->mint_code, resp->detail), or a non-JSON
 *    answer, or HTTP 5xx (then resp->ambiguous = 1).
 *  - CASHU_EMINT_UNREACHABLE: transport failure (refused, timeout, closed); ambiguous = 1 for
 *    POSTs, because the mint may have applied the request before the connection died.
 * "ambiguous" means: the wallet must NOT assume the request failed (see the journal).
 */
#ifndef SWARMDVM_CASHU_MINT_H
#define SWARMDVM_CASHU_MINT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "common/common_env.h"
#include "common/common_http.h"

typedef struct cashu_mint cashu_mint_t;

typedef struct cashu_mint_resp {
    int err;
    int mint_code;      /* the mint's "code" on HTTP 400, else 0 */
    long status;        /* HTTP status or 0 */
    int ambiguous;      /* 1 when the request may have been applied */
    const char *detail; /* mint's "detail" or transport explanation; never NULL */
    cJSON *json;        /* parsed body on success (borrowed) */
} cashu_mint_resp_t;

typedef void (*cashu_mint_cb)(void *ud, const cashu_mint_resp_t *r);

/** @brief A client for @p url (copied; trailing '/' removed). @p http and @p env borrowed. */
cashu_mint_t *cashu_mint_new(common_http_t *http, const common_env_t *env, const char *url,
                             int *err);
void cashu_mint_free(cashu_mint_t *m);
const char *cashu_mint_url(const cashu_mint_t *m);

/** @brief Default total timeout for ordinary calls (ms); melts use melt_timeout_ms. */
void cashu_mint_set_timeouts(cashu_mint_t *m, uint64_t timeout_ms, uint64_t melt_timeout_ms);

/** @brief GET path (e.g. "/v1/info"). */
int cashu_mint_get(cashu_mint_t *m, const char *path, cashu_mint_cb cb, void *ud);

/** @brief POST JSON @p body (borrowed; serialized at once) to path. @p long_call uses the
 *  melt timeout. */
int cashu_mint_post(cashu_mint_t *m, const char *path, const cJSON *body, int long_call,
                    cashu_mint_cb cb, void *ud);

#endif
