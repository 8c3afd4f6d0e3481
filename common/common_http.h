/* SPDX-License-Identifier: MIT */
/**
 * @file common_http.h
 * @brief HTTP client on the libuv loop: libcurl's multi-socket API driven by uv polls and
 *        one uv timer (curl's docs/examples/multi-uv.c pattern). Never blocks the loop.
 *
 * Ownership and lifetime:
 *  - common_http_t is owned by the caller of common_http_new; common_http_free cancels every
 *    pending request (without callbacks) and closes its handles; its memory is released
 *    from the close callbacks, so run the loop once more before uv_loop_close.
 *  - A common_http_req_t is owned by the client. It is valid from common_http_request until
 *    on_done returns, or until common_http_cancel. Exactly one of these happens: on_done is
 *    called once, or the caller cancels (then no callback is ever called again).
 *  - Options (URL, headers, body) are copied; the caller may free them after the call.
 *  - common_http_cancel may be called from inside on_response/on_data; it closes the
 *    connection at once (a cancelled transfer's connection is never reused).
 *  - common_http_request may be called from any callback, on_data included (curl refuses
 *    new transfers inside its own callbacks; such a request is handed to curl as soon as
 *    the callback's curl call returns).
 *
 * Loop liveness: while no request is pending, the client holds no reference on the loop
 * (kept-alive connections and timers are unreferenced), so uv_run returns when the
 * program's own work is done.
 *
 * Timeouts: connect (TCP+TLS), first byte (request sent → first response byte, long for
 * model loads), idle (gap between response bytes), total. Size: max_body bounds the
 * response body in both modes; past it the request fails with COMMON_ETOOBIG.
 */
#ifndef SWARMDVM_COMMON_HTTP_H
#define SWARMDVM_COMMON_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"

typedef struct uv_loop_s uv_loop_t;
typedef struct common_http common_http_t;
typedef struct common_http_req common_http_req_t;

typedef struct common_http_result {
    int err;          /* 0: a complete response was received (any HTTP status). Else
                         COMMON_ETIMEDOUT, COMMON_ECONNREFUSED, COMMON_ERESOLVE,
                         COMMON_ECLOSED (closed early), COMMON_ETOOBIG, COMMON_EIO, or the
                         code an on_data callback returned */
    long status;      /* HTTP status, 0 if none was received */
    const char *body; /* buffered mode: the body (NUL-terminated); streaming: NULL */
    size_t body_len;
    const char *detail; /* human explanation of err ("idle timeout after 30000 ms", curl's
                           message); never contains request headers (API keys) */
} common_http_result_t;

typedef struct common_http_opts {
    const char *method; /* NULL: GET, or POST when a body is given */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const void *body;           /* request body or NULL */
    size_t body_len;
    uint64_t connect_timeout_ms;    /* 0: 10 000 */
    uint64_t first_byte_timeout_ms; /* 0: 30 000 */
    uint64_t idle_timeout_ms;       /* 0: 30 000 */
    uint64_t total_timeout_ms;      /* 0: none */
    size_t max_body;                /* 0: 16 MiB */
    int stream;   /* 1: body goes to on_data as it arrives (always on a fresh connection,
                     closed afterwards) */
    int no_reuse; /* 1: fresh connection, closed afterwards. libcurl silently re-sends a
                     request whose reused keep-alive connection turned out dead: use this
                     for requests that must never run twice */
    /** Called once when the status line and headers are complete (optional). */
    void (*on_response)(common_http_req_t *req, long status, void *ud);
    /** Streaming mode: a piece of the body. Return 0, or a negative code to fail the
     *  request with it (on_done then reports that code). */
    int (*on_data)(common_http_req_t *req, const char *data, size_t len, void *ud);
    /** Called exactly once unless cancelled. The request is freed after it returns. */
    void (*on_done)(common_http_req_t *req, const common_http_result_t *res, void *ud);
    void *ud;
} common_http_opts_t;

/** @brief Create a client on @p loop. @p env is borrowed (logger, clock). */
common_http_t *common_http_new(uv_loop_t *loop, const common_env_t *env, int *err);

/** @brief Cancel everything (no callbacks), close handles; freed in close callbacks. */
void common_http_free(common_http_t *http);

/** @brief Start a request. @return the request or NULL with *err set (COMMON_EINVAL…). */
common_http_req_t *common_http_request(common_http_t *http, const common_http_opts_t *opts,
                                       int *err);

/** @brief Abort a request now: no more callbacks, connection closed, memory released. */
void common_http_cancel(common_http_req_t *req);

/** @brief Number of requests in flight. */
size_t common_http_pending(const common_http_t *http);

#endif
