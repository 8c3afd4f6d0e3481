/* SPDX-License-Identifier: MIT */
/*
 * libcurl multi-socket on libuv. curl tells us which sockets to watch (socket callback →
 * one uv_poll_t per socket) and when to call it back (timer callback → one uv_timer_t);
 * we feed readiness back with curl_multi_socket_action and collect finished transfers with
 * curl_multi_info_read. Our own timeouts (first byte, idle, total) are enforced by one
 * watchdog timer armed at the earliest deadline of all requests.
 *
 * Re-entrancy: curl callbacks (write/header) may call user code (on_data/on_response) that
 * cancels requests; curl handles must not be removed inside its own callbacks, so cancels
 * are marked and reaped after curl returns. on_done is only ever called outside curl.
 */
#include "common/common_http.h"
#include "common/common_codec.h"
#include "common/common_err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HTTP_DEFAULT_CONNECT_MS    10000u
#define HTTP_DEFAULT_FIRST_BYTE_MS 30000u
#define HTTP_DEFAULT_IDLE_MS       30000u
#define HTTP_DEFAULT_MAX_BODY      (16u << 20)

struct common_http {
    uv_loop_t *loop;
    const common_env_t *env;
    CURLM *multi;
    uv_timer_t curl_timer;   /* curl's own timeout timer */
    uv_timer_t watchdog;     /* our first-byte/idle/total deadlines */
    uint64_t watchdog_at;    /* armed deadline (uv_now ms), 0 when idle */
    common_http_req_t *reqs; /* doubly linked list of live requests */
    struct sock_ctx *socks;  /* polls not yet closing */
    int cleaning;            /* inside curl_multi_cleanup */
    size_t pending;
    int depth;        /* > 0 while inside curl or user callbacks */
    int in_curl;      /* > 0 inside curl_multi_socket_action: curl refuses new handles there */
    size_t ndeferred; /* requests waiting for that call to return (add_deferred) */
    int free_requested;
    int open_handles; /* uv handles not yet closed */
};

struct common_http_req {
    common_http_t *http;
    common_http_req_t *prev, *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    common_buf_t resp;
    common_http_opts_t o; /* copy: callbacks, ud, limits (url/headers/body pointers unused) */
    uint64_t start_ms, last_ms;
    size_t received;
    long status;
    int got_bytes;     /* any response byte seen (headers included) */
    int response_sent; /* on_response was called */
    int cancelled;     /* caller cancelled: reap silently */
    int add_deferred;  /* created inside a curl callback: added to the multi handle after it */
    int fail;          /* our failure code (timeout, size, callback) or 0 */
    char detail[192];
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    common_http_t *http;
    struct sock_ctx *prev, *next; /* http->socks: polls not yet closing */
} sock_ctx_t;

static void http_maybe_finish_free(common_http_t *http);

/* An idle client must not keep the loop alive: connections curl keeps for reuse and its
 * timers are unreferenced while no request is pending, and referenced again on the next. */
static void http_set_ref(common_http_t *http, int on) {
    void (*f)(uv_handle_t *) = on ? uv_ref : uv_unref;
    f((uv_handle_t *)&http->curl_timer);
    f((uv_handle_t *)&http->watchdog);
    for (sock_ctx_t *s = http->socks; s; s = s->next) f((uv_handle_t *)&s->poll);
}

static uint64_t now_ms(common_http_t *http) {
    uv_update_time(http->loop);
    return uv_now(http->loop);
}

static uint64_t req_deadline(const common_http_req_t *r) {
    uint64_t d =
        r->got_bytes ? r->last_ms + r->o.idle_timeout_ms : r->start_ms + r->o.first_byte_timeout_ms;
    if (r->o.total_timeout_ms && r->start_ms + r->o.total_timeout_ms < d)
        d = r->start_ms + r->o.total_timeout_ms;
    return d;
}

static void watchdog_cb(uv_timer_t *t);

static void watchdog_arm(common_http_t *http, uint64_t at) {
    if (http->free_requested) return;
    if (http->watchdog_at && http->watchdog_at <= at) return;
    uint64_t now = now_ms(http);
    http->watchdog_at = at;
    uv_timer_start(&http->watchdog, watchdog_cb, at > now ? at - now : 0, 0);
}

/* Remove from curl and the list, free everything. No callback. */
static void req_destroy(common_http_req_t *r) {
    common_http_t *http = r->http;
    if (r->add_deferred) http->ndeferred--;
    if (r->easy) {
        curl_multi_remove_handle(http->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    free(r->body);
    common_buf_free(&r->resp);
    if (r->prev)
        r->prev->next = r->next;
    else
        http->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    http->pending--;
    free(r);
    if (http->pending == 0 && !http->free_requested) http_set_ref(http, 0);
}

static int map_curl(CURLcode c) {
    switch (c) {
    case CURLE_OK: return 0;
    case CURLE_COULDNT_CONNECT: return COMMON_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return COMMON_ERESOLVE;
    case CURLE_OPERATION_TIMEDOUT: return COMMON_ETIMEDOUT;
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING: return COMMON_ECLOSED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR: return COMMON_ECONNRESET;
    case CURLE_FILESIZE_EXCEEDED: return COMMON_ETOOBIG;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return COMMON_EINVAL;
    default: return COMMON_EIO;
    }
}

/* Deliver the end of a request (outside curl), then free it. */
static void req_complete(common_http_req_t *r, int err, const char *detail) {
    common_http_t *http = r->http;
    if (r->easy) {
        /* Detach from curl first so a connection we gave up on is closed now. */
        curl_multi_remove_handle(http->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    if (!r->cancelled && r->o.on_done) {
        common_http_result_t res = {
            .err = err,
            .status = r->status,
            .body = r->o.stream ? NULL : (r->resp.data ? (const char *)r->resp.data : ""),
            .body_len = r->o.stream ? 0 : r->resp.len,
            .detail = detail ? detail : (err ? common_strerror(err) : "ok"),
        };
        http->depth++;
        r->o.on_done(r, &res, r->o.ud);
        http->depth--;
    }
    req_destroy(r);
}

static void reap_cancelled(common_http_t *http) {
    common_http_req_t *r = http->reqs, *next;
    for (; r; r = next) {
        next = r->next;
        if (r->cancelled) req_destroy(r);
    }
}

static void check_multi_info(common_http_t *http) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(http->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        common_http_req_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r) continue;
        CURLcode code = msg->data.result;
        if (r->cancelled) {
            req_destroy(r);
            continue;
        }
        if (r->status == 0) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        int err = r->fail ? r->fail : map_curl(code);
        const char *detail =
            r->fail ? r->detail
                    : (code ? (r->errbuf[0] ? r->errbuf : curl_easy_strerror(code)) : NULL);
        if (!err && !r->o.stream && r->resp.data == NULL) common_buf_reserve(&r->resp, 1);
        if (!err && !r->o.stream) r->resp.data[r->resp.len] = '\0';
        char copy[sizeof r->errbuf];
        if (detail) {
            snprintf(copy, sizeof copy, "%s", detail);
            detail = copy;
        }
        req_complete(r, err, detail);
    }
}

/* Hand curl the requests created inside its callbacks (see common_http_request). A refusal
 * now is reported like any failure, through on_done. */
static void add_deferred(common_http_t *http) {
    while (http->ndeferred) { /* usually 0: no scan on the per-event path */
        common_http_req_t *r = http->reqs;
        while (r && !r->add_deferred) r = r->next;
        if (!r) break;
        r->add_deferred = 0;
        http->ndeferred--;
        if (r->cancelled) continue; /* reaped below */
        if (curl_multi_add_handle(http->multi, r->easy) != CURLM_OK)
            req_complete(r, COMMON_EIO, "curl refused the request");
    }
}

static void socket_action(common_http_t *http, curl_socket_t fd, int events) {
    int running;
    http->depth++;
    http->in_curl++;
    curl_multi_socket_action(http->multi, fd, events, &running);
    http->in_curl--;
    http->depth--;
    add_deferred(http);
    reap_cancelled(http);
    check_multi_info(http);
    /* on_done callbacks may have cancelled other requests: close those connections now,
     * not at their next socket event (a stalled upstream would never have one). */
    reap_cancelled(http);
    http_maybe_finish_free(http);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
    sock_ctx_t *s = p->data;
    int flags = 0;
    /* On an error (libuv reports POLLERR, e.g. after a peer's RST) let curl read too:
     * with ERR alone curl fails the transfer without reading, dropping response bytes that
     * arrived before the reset and are still queued in the socket. */
    if (status < 0) flags = CURL_CSELECT_ERR | CURL_CSELECT_IN;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    socket_action(s->http, s->fd, flags);
}

static void curl_timer_cb(uv_timer_t *t) {
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static void handle_closed(uv_handle_t *h) {
    common_http_t *http = h->data;
    if (h->type == UV_POLL) {
        sock_ctx_t *s = (sock_ctx_t *)h;
        http = s->http;
        free(s);
    }
    http->open_handles--;
    http_maybe_finish_free(http);
}

static void sock_close(common_http_t *http, sock_ctx_t *s) {
    uv_poll_stop(&s->poll);
    if (s->prev)
        s->prev->next = s->next;
    else
        http->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    common_http_t *http = userp;
    sock_ctx_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (!http->cleaning) curl_multi_assign(http->multi, fd, NULL);
            sock_close(http, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->fd = fd;
        s->http = http;
        if (uv_poll_init_socket(http->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        if (http->pending == 0) uv_unref((uv_handle_t *)&s->poll);
        s->next = http->socks;
        if (http->socks) http->socks->prev = s;
        http->socks = s;
        http->open_handles++;
        curl_multi_assign(http->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, poll_cb);
    return 0;
}

static int curl_timer_fn(CURLM *multi, long timeout_ms, void *userp) {
    common_http_t *http = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&http->curl_timer);
    else
        uv_timer_start(&http->curl_timer, curl_timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

static void watchdog_cb(uv_timer_t *t) {
    common_http_t *http = t->data;
    http->watchdog_at = 0;
    uint64_t now = now_ms(http), next = 0;
    common_http_req_t *r = http->reqs, *nx;
    for (; r; r = nx) {
        nx = r->next;
        if (r->cancelled) continue;
        uint64_t d = req_deadline(r);
        if (d <= now) {
            const char *what = !r->got_bytes ? "first-byte" : "idle";
            uint64_t ms = !r->got_bytes ? r->o.first_byte_timeout_ms : r->o.idle_timeout_ms;
            if (r->o.total_timeout_ms && r->start_ms + r->o.total_timeout_ms <= now)
                what = "total", ms = r->o.total_timeout_ms;
            char detail[96];
            snprintf(detail, sizeof detail, "%s timeout after %llu ms", what,
                     (unsigned long long)ms);
            /* The list may change under on_done: restart the scan afterwards. */
            req_complete(r, COMMON_ETIMEDOUT, detail);
            nx = http->reqs;
            next = 0;
            continue;
        }
        if (!next || d < next) next = d;
    }
    if (next) watchdog_arm(http, next);
    /* Same as in socket_action: cancels made from the on_done callbacks above. */
    reap_cancelled(http);
    http_maybe_finish_free(http);
}

static void note_bytes(common_http_req_t *r) {
    int first = !r->got_bytes;
    r->got_bytes = 1;
    r->last_ms = uv_now(r->http->loop);
    /* Later bytes only push the deadline back, but the switch from the first-byte to the
     * idle deadline may bring it forward: re-arm then. */
    if (first) watchdog_arm(r->http, req_deadline(r));
}

static size_t header_cb(char *data, size_t size, size_t n, void *ud) {
    common_http_req_t *r = ud;
    size_t len = size * n;
    if (r->cancelled) return 0;
    note_bytes(r);
    /* The blank line ends a header block; skip interim 1xx blocks. */
    if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long st = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st);
        if (st >= 200 && !r->response_sent) {
            r->status = st;
            r->response_sent = 1;
            if (r->o.on_response) {
                r->http->depth++;
                r->o.on_response(r, st, r->o.ud);
                r->http->depth--;
                if (r->cancelled) return 0;
            }
        }
    }
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ud) {
    common_http_req_t *r = ud;
    size_t len = size * n;
    if (r->cancelled || r->fail) return CURL_WRITEFUNC_ERROR;
    note_bytes(r);
    if (len > r->o.max_body - r->received) {
        r->fail = COMMON_ETOOBIG;
        snprintf(r->detail, sizeof r->detail, "response body larger than %zu bytes", r->o.max_body);
        return CURL_WRITEFUNC_ERROR;
    }
    r->received += len;
    if (r->o.stream) {
        if (r->o.on_data) {
            r->http->depth++;
            int rc = r->o.on_data(r, data, len, r->o.ud);
            r->http->depth--;
            if (r->cancelled) return CURL_WRITEFUNC_ERROR;
            if (rc < 0) {
                r->fail = rc;
                snprintf(r->detail, sizeof r->detail, "aborted by receiver: %s",
                         common_strerror(rc));
                return CURL_WRITEFUNC_ERROR;
            }
        }
        return len;
    }
    /* Keep one spare byte for the NUL terminator. */
    if (common_buf_reserve(&r->resp, len + 1)) {
        r->fail = COMMON_ENOMEM;
        snprintf(r->detail, sizeof r->detail, "out of memory");
        return CURL_WRITEFUNC_ERROR;
    }
    memcpy(r->resp.data + r->resp.len, data, len);
    r->resp.len += len;
    return len;
}

common_http_t *common_http_new(uv_loop_t *loop, const common_env_t *env, int *err) {
    common_http_t *http = calloc(1, sizeof *http);
    int rc = COMMON_ENOMEM;
    if (!http) goto fail;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = COMMON_EIO;
        goto fail;
    }
    http->loop = loop;
    http->env = env;
    http->multi = curl_multi_init();
    if (!http->multi) {
        curl_global_cleanup();
        goto fail;
    }
    uv_timer_init(loop, &http->curl_timer);
    uv_timer_init(loop, &http->watchdog);
    http->curl_timer.data = http->watchdog.data = http;
    http->open_handles = 2;
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, curl_timer_fn);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    return http;
fail:
    free(http);
    if (err) *err = rc;
    return NULL;
}

static void http_maybe_finish_free(common_http_t *http) {
    if (!http->free_requested || http->depth > 0) return;
    if (http->multi) {
        while (http->reqs) req_destroy(http->reqs);
        /* Removing the last easy handles made curl drop its sockets (CURL_POLL_REMOVE). */
        http->cleaning = 1;
        curl_multi_cleanup(http->multi);
        http->multi = NULL;
        /* Cached connections curl closed without telling us: close their polls too. */
        while (http->socks) sock_close(http, http->socks);
        curl_global_cleanup();
        uv_close((uv_handle_t *)&http->curl_timer, handle_closed);
        uv_close((uv_handle_t *)&http->watchdog, handle_closed);
        return;
    }
    if (http->open_handles == 0) free(http);
}

void common_http_free(common_http_t *http) {
    if (!http || http->free_requested) return;
    http->free_requested = 1;
    for (common_http_req_t *r = http->reqs; r; r = r->next) r->cancelled = 1;
    http_maybe_finish_free(http);
}

size_t common_http_pending(const common_http_t *http) {
    size_t n = 0;
    for (const common_http_req_t *r = http->reqs; r; r = r->next) n += !r->cancelled;
    return n;
}

void common_http_cancel(common_http_req_t *r) {
    if (!r || r->cancelled) return;
    r->cancelled = 1;
    if (r->http->depth == 0) req_destroy(r);
}

common_http_req_t *common_http_request(common_http_t *http, const common_http_opts_t *opts,
                                       int *err) {
    int rc = COMMON_EINVAL;
    if (!http || http->free_requested || !opts || !opts->url || !opts->on_done) goto fail_early;
    common_http_req_t *r = calloc(1, sizeof *r);
    rc = COMMON_ENOMEM;
    if (!r) goto fail_early;
    r->http = http;
    r->o = *opts;
    r->o.url = NULL;
    r->o.headers = NULL;
    r->o.body = NULL;
    if (!r->o.connect_timeout_ms) r->o.connect_timeout_ms = HTTP_DEFAULT_CONNECT_MS;
    if (!r->o.first_byte_timeout_ms) r->o.first_byte_timeout_ms = HTTP_DEFAULT_FIRST_BYTE_MS;
    if (!r->o.idle_timeout_ms) r->o.idle_timeout_ms = HTTP_DEFAULT_IDLE_MS;
    if (!r->o.max_body) r->o.max_body = HTTP_DEFAULT_MAX_BODY;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        goto fail_early;
    }
    /* Link first so that every later failure path can use req_destroy. */
    r->next = http->reqs;
    if (http->reqs) http->reqs->prev = r;
    http->reqs = r;
    if (http->pending++ == 0) http_set_ref(http, 1);

    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, opts->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "swarmdvm/0.1");
    if (r->o.stream)
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    else
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (r->o.stream || r->o.no_reuse) {
        /* libcurl silently re-sends a request whose reused keep-alive connection turned
         * out dead; a fresh connection, closed afterwards, makes that impossible. */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    for (const char *const *h = opts->headers; h && *h; h++) {
        struct curl_slist *nl = curl_slist_append(r->hdrs, *h);
        if (!nl) goto fail;
        r->hdrs = nl;
    }
    if (opts->body) {
        /* No "Expect: 100-continue" round trip for small JSON bodies. */
        struct curl_slist *nl = curl_slist_append(r->hdrs, "Expect:");
        if (!nl) goto fail;
        r->hdrs = nl;
        r->body = malloc(opts->body_len ? opts->body_len : 1);
        if (!r->body) goto fail;
        memcpy(r->body, opts->body, opts->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)opts->body_len);
    }
    if (opts->method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, opts->method);
    if (r->hdrs) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    r->start_ms = r->last_ms = now_ms(http);
    if (http->in_curl) { /* inside one of curl's callbacks: socket_action adds it on return */
        r->add_deferred = 1;
        http->ndeferred++;
    } else if (curl_multi_add_handle(http->multi, e) != CURLM_OK) {
        rc = COMMON_EIO;
        goto fail;
    }
    watchdog_arm(http, req_deadline(r));
    return r;
fail:
    req_destroy(r);
fail_early:
    if (err) *err = rc;
    return NULL;
}
