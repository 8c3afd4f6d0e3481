/* SPDX-License-Identifier: MIT */
/*
 * agent_load: the load generator and LLM stub of scripts/bench/agent.sh (not a ctest test).
 * Each mode is one process on one libuv loop:
 *
 *  - "llm": a minimal Ollama-compatible streaming server on 127.0.0.1 (POST /api/generate
 *    and /api/chat, NDJSON over chunked HTTP/1.1 with keep-alive; GET / and /api/tags).
 *    Pacing comes from the dev-llm directive in the prompt, [[dev:{"n":30,"token_ms":50}]]
 *    (n tokens, the first at once, then one every token_ms; options.num_predict caps n with
 *    done_reason "length"). Every token is stamped: its text is uv_hrtime() in ns followed
 *    by a space (CLOCK_MONOTONIC, the same clock as the Node dev LLM's process.hrtime), read
 *    right before the write(2) that carries it (uv_try_write; a write the kernel does not
 *    take at once is queued and counted). Token k of a stream is due at first + k * token_ms
 *    (no drift); with --grid-ms G the first token waits for the next multiple of G ms, so
 *    the streams started in one G-ms slot emit in one burst for the whole job, whatever
 *    the requester's start jitter. Serves until SIGINT/SIGTERM or --timeout.
 *    It runs as its own process so that its bursts of writes never delay the receiving
 *    side's reads (in one loop they did: up to ~1 ms at p99 with 100 streams).
 *  - "load": N customers, each one secret-stream TCP connection (dht_tcp, Noise XX) to a
 *    dvm-agent --listen address, speaking the job protocol (protocol/proto_msg, framed with
 *    proto_ndjson): request (the same input as the former bench.js) -> offer -> payment
 *    (the next prepared token line of --tokens) -> chunks -> result; a pay_required is
 *    answered with the next token too.
 *  - "relay": the thinnest agent on the same transports (see the relay section below);
 *    --stamp-log F records each token's mid hop with agent/agent_bench.c, as dvm-agent does
 *    under DVM_BENCH_STAMP_LOG.
 *  - "midstats": quantiles of such a log over one run's stamps (--from/--to, CLOCK_MONOTONIC
 *    ns as printed by load's run_ns line).
 *  - "floor": the same N streams at the same pacing, each customer an HTTP client of the
 *    LLM directly (no agent, no secret-stream, the agent's request body): the harness floor
 *    (stamp -> write -> loopback -> this loop's read -> parse).
 *
 * Per chunk, latency = receive time (uv_hrtime() when dht_tcp hands the decrypted bytes
 * over, or when the HTTP bytes are read) - the earliest stamp in the chunk. Reported:
 * p50/p99/max over every chunk, over steady-state chunks (seq >= 5) and over the first chunk
 * of each job; jobs done and failed. A job succeeds only with a `result` (reason done)
 * after exactly --chunks chunks, all stamped, and no `error`. Exit 1 when any job failed
 * (the --timeout, overall, fails the unfinished ones).
 *
 *   agent_load llm [--timeout S]
 *   agent_load load --agent HOST:PORT --tokens FILE [options]
 *   agent_load floor --llm-url http://127.0.0.1:PORT [options]
 *   options: -n N (100) --chunks C (30) --token-ms MS (50) --timeout S (120)
 *            --windows: also the latency by receive time, in 100 ms windows from the start
 *
 * Output (stdout) of load (floor prefixes each name with floor_):
 *   jobs_done D jobs_failed F chunks C unstamped U seconds S
 *   latency_us p50 X p99 Y max Z n K
 *   steady_state_us (seq >= 5) p50 .. p99 .. max .. n ..
 *   first_chunk_us (first chunk of each job) p50 .. p99 .. max .. n ..
 *   [window_ms A-B p50 .. p99 .. max .. n ..]   (--windows)
 *   p99_us=Y
 * llm prints its URL first and "llm_stub tokens T queued_writes Q" when it stops.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "agent/agent_bench.h"
#include "common/common_codec.h"
#include "common/common_env.h"
#include "common/common_err.h"
#include "dht/dht_tcp.h"
#include "protocol/proto_msg.h"
#include "protocol/proto_ndjson.h"

#define AL_MAX_JOBS    5000u
#define AL_MAX_CHUNKS  100000u
#define AL_MAX_SAMPLES (50u * 1000 * 1000)
#define AL_STEADY_SEQ  5u
#define STUB_MAX_REQ   (64u * 1024)
#define HTTP_MAX_HEAD  (16u * 1024)
#define AL_KIND        5100u
#define AL_WINDOW_MS   100u
#define AL_WINDOWS     64u

/* ---- samples ------------------------------------------------------------------------ */

typedef struct samples {
    uint64_t *v; /* ns */
    size_t n, cap;
} samples_t;

static void samples_add(samples_t *s, uint64_t ns) {
    if (s->n == s->cap) {
        if (s->cap >= AL_MAX_SAMPLES) return;
        size_t nc = s->cap ? s->cap * 2 : 4096;
        uint64_t *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) abort();
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* the same quantile as the former bench.js: v[min(n-1, floor(p*n))] */
static double q_us(const samples_t *s, double p) {
    if (!s->n) return -1;
    size_t i = (size_t)(p * (double)s->n);
    if (i >= s->n) i = s->n - 1;
    return (double)s->v[i] / 1000.0;
}

static void print_q(const char *name, samples_t *s) {
    if (s->n) qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    printf("%s p50 %.0f p99 %.0f max %.0f n %zu\n", name, q_us(s, 0.5), q_us(s, 0.99),
           s->n ? (double)s->v[s->n - 1] / 1000.0 : -1.0, s->n);
}

/* ---- app ---------------------------------------------------------------------------- */

typedef struct app app_t;
typedef struct stub_conn stub_conn_t;

typedef struct job {
    app_t *app;
    unsigned idx;
    char id[PROTO_ID_MAX + 1];
    /* load mode */
    dht_tcp_conn_t *conn;
    proto_ndjson_t *fr;
    /* floor mode */
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    char *wbuf;
    char *body;      /* relay: this job's request body (else the app's) */
    common_buf_t in; /* raw bytes not yet parsed (head or chunked framing) */
    int head_done;
    uint64_t chunk_left; /* bytes left in the current HTTP chunk; UINT64_MAX: need size */
    int chunk_crlf;      /* expecting the CRLF after a chunk's data */
    int tcp_open;
    /* relay mode: the downstream customer of this upstream HTTP stream */
    dht_tcp_conn_t *down;
    proto_ndjson_t *down_fr;
    uint64_t seq;
    int relay, down_closed;
    /* both */
    uint64_t chunks, stamped;
    int finished, ok, errors, closed;
} job_t;

struct stub_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    app_t *app;
    stub_conn_t *next, **pprev;
    char in[STUB_MAX_REQ];
    size_t inlen;
    int generating, head_sent, closing, handles_open, continued;
    int chat;
    char model[96];
    uint64_t n, sent, token_ms, t0, first_ms;
    int length_capped;
};

struct app {
    uv_loop_t *loop;
    common_env_t env;
    int floor, windows;
    uint64_t n, chunks, token_ms, timeout_s;
    uint64_t arrive_ms; /* customers start spread evenly over this (0: all at once) */
    uint64_t grid_ms;   /* llm: streams start on multiples of this (0: at once) */
    uv_timer_t arrive;  /* starts the next customers when they are due */
    unsigned next_job;  /* the next customer to start */
    /* LLM */
    uv_tcp_t stub_srv;
    int stub_on;
    stub_conn_t *stub_conns;
    char llm_host[64];
    uint16_t llm_port;
    char *req_body; /* the /api/generate body of a job (floor mode) */
    /* agent */
    char agent_host[64];
    uint16_t agent_port;
    char **tokens;
    size_t ntokens, next_token;
    /* control */
    uv_signal_t sigint, sigterm;
    dht_tcp_server_t *relay_srv;
    agent_bench_t *bench; /* relay --stamp-log: the mid-hop recorder (agent_bench.h) */
    uint64_t stub_tokens;
    uv_timer_t deadline;
    int started, timed_out, done_all;
    uint64_t t_start, t_end;
    job_t *jobs;
    unsigned finished;
    /* results */
    samples_t all, steady, first, stub_write;
    samples_t window[AL_WINDOWS]; /* by receive time since the start, AL_WINDOW_MS each */
    uint64_t unstamped, backwards, stub_writes_queued;
    int rc;
};

static void start_jobs(app_t *a);
static void finish_all(app_t *a);
static void relay_upstream_done(job_t *j, int ok);

static void relay_job_free(job_t *j) {
    proto_ndjson_free(j->fr);
    proto_ndjson_free(j->down_fr);
    common_buf_free(&j->in);
    free(j->wbuf);
    free(j->body);
    free(j);
}

static void job_finish(job_t *j, int ok) {
    if (j->finished) return;
    j->finished = 1;
    if (j->relay) {
        relay_upstream_done(j, ok);
        return;
    }
    j->ok = ok && j->errors == 0 && j->stamped == j->app->chunks && j->chunks == j->app->chunks;
    app_t *a = j->app;
    if (!j->ok)
        fprintf(stderr, "agent_load: job %s failed (chunks %llu stamped %llu errors %d)\n", j->id,
                (unsigned long long)j->chunks, (unsigned long long)j->stamped, j->errors);
    if (++a->finished == a->n) finish_all(a);
}

/* One received chunk text: "<ns> " tokens (one per LLM token; several if the agent merged
 * them). Latency is taken from the earliest stamp (an upper bound for merged tokens). */
static void on_chunk_text(job_t *j, const char *data, size_t len, uint64_t seq, uint64_t now) {
    app_t *a = j->app;
    uint64_t best = UINT64_MAX;
    size_t i = 0;
    int bad = len == 0;
    while (i < len) {
        uint64_t v = 0;
        size_t d = 0;
        while (i < len && data[i] >= '0' && data[i] <= '9' && d < 20) {
            v = v * 10 + (uint64_t)(data[i] - '0');
            i++;
            d++;
        }
        if (d == 0 || i >= len || data[i] != ' ') {
            bad = 1;
            break;
        }
        i++;
        if (v < best) best = v;
    }
    j->chunks++;
    if (bad || best == UINT64_MAX) {
        a->unstamped++;
        return;
    }
    j->stamped++;
    if (best > now) { /* cannot happen on one monotonic clock; counted, never hidden */
        a->backwards++;
        best = now;
    }
    uint64_t ns = now - best;
    samples_add(&a->all, ns);
    if (seq >= AL_STEADY_SEQ) samples_add(&a->steady, ns);
    if (j->stamped == 1) samples_add(&a->first, ns);
    uint64_t w = (now - a->t_start) / (AL_WINDOW_MS * 1000000ull);
    samples_add(&a->window[w < AL_WINDOWS ? w : AL_WINDOWS - 1], ns);
}

/* ---- load mode: customers over secret-stream ----------------------------------------- */

static int job_send(job_t *j, const proto_msg_t *m) {
    common_buf_t b = {0};
    int rc = proto_msg_encode(m, &b);
    if (rc == 0) rc = dht_tcp_write(j->conn, b.data, b.len);
    common_buf_free(&b);
    return rc < 0 ? rc : 0;
}

static void job_pay(job_t *j) {
    app_t *a = j->app;
    if (a->next_token >= a->ntokens) {
        fprintf(stderr, "agent_load: job %s: no token left\n", j->id);
        j->errors++;
        dht_tcp_close(j->conn);
        return;
    }
    proto_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_PAYMENT;
    snprintf(m.id, sizeof m.id, "%s", j->id);
    m.payment.token = a->tokens[a->next_token++];
    if (job_send(j, &m) < 0) dht_tcp_close(j->conn);
}

static void lj_on_connect(dht_tcp_conn_t *c, const uint8_t *pk, void *ud) {
    job_t *j = ud;
    app_t *a = j->app;
    (void)pk;
    j->conn = c;
    char input[160];
    snprintf(input, sizeof input,
             "bench [[dev:{\"stamp\":true,\"multi\":false,\"n\":%llu,\"token_ms\":%llu}]]",
             (unsigned long long)a->chunks, (unsigned long long)a->token_ms);
    proto_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_REQUEST;
    snprintf(m.id, sizeof m.id, "%s", j->id);
    m.request.kind = AL_KIND;
    m.request.input = input;
    m.request.has_budget = 1;
    m.request.budget = 1000;
    if (job_send(j, &m) < 0) dht_tcp_close(c);
}

static void lj_on_data(dht_tcp_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    uint64_t now = uv_hrtime();
    job_t *j = ud;
    if (proto_ndjson_feed(j->fr, data, len) != 0) {
        dht_tcp_close(c);
        return;
    }
    const char *line;
    size_t n;
    int rc;
    while ((rc = proto_ndjson_next(j->fr, &line, &n)) != 0) {
        if (rc < 0) {
            j->errors++;
            continue;
        }
        proto_msg_t m;
        char why[128];
        if (proto_msg_decode(line, n, &m, why, sizeof why) != 0) {
            fprintf(stderr, "agent_load: job %s: bad line: %s\n", j->id, why);
            j->errors++;
            proto_msg_free(&m);
            continue;
        }
        switch (m.type) {
        case PROTO_MSG_OFFER:
        case PROTO_MSG_PAY_REQUIRED: job_pay(j); break;
        case PROTO_MSG_CHUNK:
            on_chunk_text(j, m.chunk.data, strlen(m.chunk.data),
                          m.chunk.has_seq ? m.chunk.seq : j->chunks, now);
            break;
        case PROTO_MSG_ERROR:
            fprintf(stderr, "agent_load: job %s: error %s: %s\n", j->id,
                    proto_error_code_name(m.error.code) ? proto_error_code_name(m.error.code) : "-",
                    m.error.message);
            j->errors++;
            break;
        case PROTO_MSG_RESULT:
            job_finish(j, m.result.reason == PROTO_REASON_NONE ||
                              m.result.reason == PROTO_REASON_DONE);
            proto_msg_free(&m);
            dht_tcp_close(c);
            return;
        default: break;
        }
        proto_msg_free(&m);
    }
}

static void lj_on_end(dht_tcp_conn_t *c, void *ud) {
    (void)ud;
    dht_tcp_close(c);
}

static void lj_on_close(dht_tcp_conn_t *c, int status, void *ud) {
    job_t *j = ud;
    (void)c;
    j->conn = NULL;
    j->closed = 1;
    if (!j->finished && status != 0)
        fprintf(stderr, "agent_load: job %s: connection closed: %s\n", j->id,
                common_err_name(status));
    job_finish(j, 0);
}

static void start_load_job(job_t *j) {
    app_t *a = j->app;
    static const dht_tcp_callbacks_t cbs = {lj_on_connect, lj_on_data, NULL, lj_on_end,
                                            lj_on_close};
    int err = 0;
    j->fr = proto_ndjson_new(0, &err);
    dht_keypair_t kp;
    dht_crypto_keypair_random(&kp);
    if (j->fr)
        j->conn = dht_tcp_connect(a->loop, &a->env, &kp, a->agent_host, a->agent_port, NULL, &cbs,
                                  j, &err);
    dht_crypto_keypair_wipe(&kp);
    if (!j->conn) {
        fprintf(stderr, "agent_load: connect: %s\n", common_strerror(err));
        j->closed = 1;
        job_finish(j, 0);
    }
}

/* ---- floor mode: HTTP clients of the LLM directly ------------------------------------ */

static void fj_closed(uv_handle_t *h) {
    job_t *j = h->data;
    j->tcp_open = 0;
    j->closed = 1;
    job_finish(j, 0);
    if (j->relay && j->down_closed) relay_job_free(j);
}

static void fj_close(job_t *j) {
    if (j->tcp_open == 1) {
        j->tcp_open = 2;
        uv_close((uv_handle_t *)&j->tcp, fj_closed);
    }
}

/* One NDJSON line of the Ollama stream. */
static void fj_line(job_t *j, const char *line, size_t len, uint64_t now) {
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(o)) {
        j->errors++;
        cJSON_Delete(o);
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "done"))) {
        cJSON_Delete(o);
        job_finish(j, 1);
        fj_close(j);
        return;
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "response");
    if (!r)
        r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "message"),
                                             "content");
    if (cJSON_IsString(r) && r->valuestring[0] && j->relay) {
        if (j->app->bench) agent_bench_piece(j->app->bench, r->valuestring, strlen(r->valuestring));
        common_buf_t b = {0};
        if (j->down && proto_encode_chunk(&b, j->id, r->valuestring, strlen(r->valuestring),
                                          (int64_t)j->seq++) == 0)
            dht_tcp_write(j->down, b.data, b.len);
        common_buf_free(&b);
    } else if (cJSON_IsString(r) && r->valuestring[0])
        on_chunk_text(j, r->valuestring, strlen(r->valuestring), j->chunks, now);
    else if (cJSON_GetObjectItemCaseSensitive(o, "error"))
        j->errors++;
    cJSON_Delete(o);
}

/* Parse what is buffered: the response head once, then chunked framing into NDJSON. */
static void fj_parse(job_t *j, uint64_t now) {
    common_buf_t *b = &j->in;
    if (!j->head_done) {
        const char *e = NULL;
        for (size_t i = 0; i + 3 < b->len; i++)
            if (memcmp(b->data + i, "\r\n\r\n", 4) == 0) {
                e = (const char *)b->data + i;
                break;
            }
        if (!e) {
            if (b->len > HTTP_MAX_HEAD) j->errors++, fj_close(j);
            return;
        }
        size_t hl = (size_t)(e - (const char *)b->data) + 4;
        if (hl < 12 || memcmp(b->data, "HTTP/1.1 200", 12) != 0) {
            fprintf(stderr, "agent_load: floor: LLM answered %.12s\n", (const char *)b->data);
            j->errors++;
            fj_close(j);
            return;
        }
        j->head_done = 1;
        j->chunk_left = UINT64_MAX;
        common_buf_consume(b, hl);
    }
    for (;;) {
        if (j->finished || j->tcp_open != 1) return;
        if (j->chunk_crlf) {
            if (b->len < 2) return;
            common_buf_consume(b, 2);
            j->chunk_crlf = 0;
            j->chunk_left = UINT64_MAX;
        }
        if (j->chunk_left == UINT64_MAX) {
            size_t i = 0;
            while (i + 1 < b->len && !(b->data[i] == '\r' && b->data[i + 1] == '\n')) i++;
            if (i + 1 >= b->len) return;
            uint64_t sz = 0;
            for (size_t k = 0; k < i && b->data[k] != ';'; k++) {
                int c = b->data[k], v = c >= '0' && c <= '9'   ? c - '0'
                                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                               : -1;
                if (v < 0 || sz > (1u << 24)) {
                    j->errors++;
                    fj_close(j);
                    return;
                }
                sz = sz * 16 + (uint64_t)v;
            }
            common_buf_consume(b, i + 2);
            if (sz == 0) { /* end of the body without a done line */
                j->errors++;
                fj_close(j);
                return;
            }
            j->chunk_left = sz;
        }
        if (b->len < j->chunk_left) return; /* keep whole HTTP chunks (one token line each) */
        size_t sz = (size_t)j->chunk_left;
        if (proto_ndjson_feed(j->fr, b->data, sz) != 0) abort();
        common_buf_consume(b, sz);
        j->chunk_crlf = 1;
        const char *line;
        size_t n;
        int rc;
        while ((rc = proto_ndjson_next(j->fr, &line, &n)) != 0) {
            if (rc < 0) {
                j->errors++;
                continue;
            }
            fj_line(j, line, n, now);
            if (j->finished) return;
        }
    }
}

static void fj_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf) {
    (void)h;
    (void)sug;
    static char slab[65536]; /* one loop thread; consumed before the next read */
    buf->base = slab;
    buf->len = sizeof slab;
}

static void fj_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    uint64_t now = uv_hrtime();
    job_t *j = s->data;
    if (nread < 0) {
        fj_close(j);
        return;
    }
    if (nread == 0) return;
    if (common_buf_append(&j->in, buf->base, (size_t)nread) != 0) abort();
    fj_parse(j, now);
}

static void fj_written(uv_write_t *w, int status) {
    job_t *j = w->data;
    free(j->wbuf);
    j->wbuf = NULL;
    if (status < 0) fj_close(j);
}

static void fj_connected(uv_connect_t *cr, int status) {
    job_t *j = cr->data;
    if (status < 0) {
        fprintf(stderr, "agent_load: floor: connect: %s\n", uv_strerror(status));
        fj_close(j);
        return;
    }
    app_t *a = j->app;
    const char *body = j->body ? j->body : a->req_body;
    size_t bl = strlen(body);
    j->wbuf = malloc(bl + 256);
    if (!j->wbuf) abort();
    int hn = snprintf(j->wbuf, 256,
                      "POST /api/generate HTTP/1.1\r\nHost: %s:%u\r\nAccept: */*\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      a->llm_host, a->llm_port, bl);
    memcpy(j->wbuf + hn, body, bl);
    uv_buf_t ub = uv_buf_init(j->wbuf, (unsigned)(hn + (int)bl));
    j->wreq.data = j;
    uv_write(&j->wreq, (uv_stream_t *)&j->tcp, &ub, 1, fj_written);
    uv_read_start((uv_stream_t *)&j->tcp, fj_alloc, fj_read);
}

static void start_floor_job(job_t *j) {
    app_t *a = j->app;
    int err = 0;
    j->fr = proto_ndjson_new(0, &err);
    if (!j->fr) abort();
    uv_tcp_init(a->loop, &j->tcp);
    j->tcp.data = j;
    j->tcp_open = 1;
    uv_tcp_nodelay(&j->tcp, 1);
    struct sockaddr_in sa;
    uv_ip4_addr(a->llm_host, a->llm_port, &sa);
    j->creq.data = j;
    int rc = uv_tcp_connect(&j->creq, &j->tcp, (const struct sockaddr *)&sa, fj_connected);
    if (rc < 0) {
        fprintf(stderr, "agent_load: floor: connect: %s\n", uv_strerror(rc));
        fj_close(j);
    }
}

/* ---- the LLM stub ------------------------------------------------------------------- */

typedef struct stub_wreq {
    uv_write_t w;
    char data[];
} stub_wreq_t;

static void stub_written(uv_write_t *w, int status) {
    (void)status;
    free(w);
}

/* Write now if the socket takes it (uv_try_write: one write(2)), queue the rest. */
static void stub_write(stub_conn_t *sc, const char *d, size_t n) {
    if (sc->closing) return;
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);
    uint64_t t0 = uv_hrtime();
    int w = uv_try_write((uv_stream_t *)&sc->tcp, &b, 1);
    samples_add(&sc->app->stub_write, uv_hrtime() - t0);
    if (w == (int)n) return;
    if (w < 0) {
        if (w != UV_EAGAIN) return; /* the read side sees the error and closes */
        w = 0;
    }
    sc->app->stub_writes_queued++;
    stub_wreq_t *r = malloc(sizeof *r + n - (size_t)w);
    if (!r) abort();
    memcpy(r->data, d + w, n - (size_t)w);
    b = uv_buf_init(r->data, (unsigned)(n - (size_t)w));
    if (uv_write(&r->w, (uv_stream_t *)&sc->tcp, &b, 1, stub_written) < 0) free(r);
}

static void stub_handle_closed(uv_handle_t *h) {
    stub_conn_t *sc = h->data;
    if (--sc->handles_open == 0) free(sc);
}

static void stub_close(stub_conn_t *sc) {
    if (sc->closing) return;
    sc->closing = 1;
    *sc->pprev = sc->next;
    if (sc->next) sc->next->pprev = sc->pprev;
    uv_timer_stop(&sc->timer);
    uv_close((uv_handle_t *)&sc->timer, stub_handle_closed);
    uv_close((uv_handle_t *)&sc->tcp, stub_handle_closed);
}

static void stub_simple(stub_conn_t *sc, int status, const char *ctype, const char *body) {
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                      status == 200   ? "OK"
                      : status == 404 ? "Not Found"
                                      : "Bad Request",
                      ctype, strlen(body));
    stub_write(sc, head, (size_t)hn);
    stub_write(sc, body, strlen(body));
}

static const char *const HEAD_NDJSON = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n";
static const char *const CREATED_AT = "2026-01-01T00:00:00.000000000Z";

/* Frame one NDJSON line as an HTTP chunk after an optional head, then write it. The stamp
 * (when asked) is read here, right before the write. */
static void stub_emit(stub_conn_t *sc, int token) {
    char line[1024], out[1200];
    int ln;
    if (token) {
        unsigned long long stamp = (unsigned long long)uv_hrtime();
        if (sc->chat)
            ln = snprintf(line, sizeof line,
                          "{\"model\":\"%s\",\"created_at\":\"%s\",\"message\":{\"role\":"
                          "\"assistant\",\"content\":\"%llu \"},\"done\":false}\n",
                          sc->model, CREATED_AT, stamp);
        else
            ln = snprintf(line, sizeof line,
                          "{\"model\":\"%s\",\"created_at\":\"%s\",\"response\":\"%llu \","
                          "\"done\":false}\n",
                          sc->model, CREATED_AT, stamp);
    } else {
        unsigned long long dur = (unsigned long long)(uv_hrtime() - sc->t0);
        ln =
            snprintf(line, sizeof line,
                     "{\"model\":\"%s\",\"created_at\":\"%s\",%s,\"done\":true,"
                     "\"done_reason\":\"%s\",\"total_duration\":%llu,\"load_duration\":0,"
                     "\"prompt_eval_count\":1,\"prompt_eval_duration\":0,\"eval_count\":%llu,"
                     "\"eval_duration\":%llu}\n",
                     sc->model, CREATED_AT,
                     sc->chat ? "\"message\":{\"role\":\"assistant\",\"content\":\"\"}"
                              : "\"response\":\"\"",
                     sc->length_capped ? "length" : "stop", dur, (unsigned long long)sc->sent, dur);
    }
    size_t on = 0;
    if (!sc->head_sent) { /* headers go out with the first body write, as Ollama does */
        on = strlen(HEAD_NDJSON);
        memcpy(out, HEAD_NDJSON, on);
        sc->head_sent = 1;
    }
    on += (size_t)snprintf(out + on, sizeof out - on, "%x\r\n%.*s\r\n%s", (unsigned)ln, ln, line,
                           token ? "" : "0\r\n\r\n");
    stub_write(sc, out, on);
}

static void stub_try_request(stub_conn_t *sc);

static void stub_tick(uv_timer_t *t) {
    stub_conn_t *sc = t->data;
    if (sc->sent < sc->n) {
        stub_emit(sc, 1);
        sc->sent++;
        sc->app->stub_tokens++;
        /* token k is due at first_ms + k * token_ms on the loop clock: no drift, so the
         * streams that share a grid slot (--grid-ms) stay in one burst for the whole job */
        uint64_t due = sc->sent < sc->n ? sc->first_ms + sc->sent * sc->token_ms : 0;
        uint64_t now = uv_now(sc->app->loop);
        uv_timer_start(&sc->timer, stub_tick, due > now ? due - now : 0, 0);
        return;
    }
    stub_emit(sc, 0);
    sc->generating = 0;
    stub_try_request(sc); /* keep-alive: a pipelined request may wait */
}

static uint64_t json_u64(const cJSON *o, const char *k, uint64_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e12
               ? (uint64_t)v->valuedouble
               : dflt;
}

static void stub_generate(stub_conn_t *sc, const char *body, size_t blen, int chat) {
    app_t *a = sc->app;
    cJSON *o = cJSON_ParseWithLength(body, blen);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        stub_simple(sc, 400, "application/json", "{\"error\":\"invalid request body\"}");
        return;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
    snprintf(sc->model, sizeof sc->model, "%s",
             cJSON_IsString(model) && !strpbrk(model->valuestring, "\"\\") ? model->valuestring
                                                                           : "dev");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (chat) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages"), *m;
        prompt = NULL;
        cJSON_ArrayForEach(m, msgs) prompt = cJSON_GetObjectItemCaseSensitive(m, "content");
    }
    sc->n = a->chunks;
    sc->token_ms = a->token_ms;
    if (cJSON_IsString(prompt)) { /* [[dev:{...}]] as the Node dev LLM reads it */
        const char *d = strstr(prompt->valuestring, "[[dev:");
        const char *e = d ? strstr(d, "]]") : NULL;
        if (d && e) {
            cJSON *dir = cJSON_ParseWithLength(d + 6, (size_t)(e - d - 6));
            sc->n = json_u64(dir, "n", sc->n);
            sc->token_ms = json_u64(dir, "token_ms", sc->token_ms);
            cJSON_Delete(dir);
        }
    }
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(o, "options");
    uint64_t np = json_u64(opt, "num_predict", UINT64_MAX);
    sc->length_capped = np < sc->n;
    if (sc->length_capped) sc->n = np;
    if (sc->n > AL_MAX_CHUNKS) sc->n = AL_MAX_CHUNKS;
    cJSON_Delete(o);
    sc->chat = chat;
    sc->sent = 0;
    sc->head_sent = 0;
    sc->generating = 1;
    sc->t0 = uv_hrtime();
    /* --grid-ms G: the first token waits for the next multiple of G ms of the loop clock, so
     * how many streams share a tick depends on the arrival only, never on how long the
     * middle process took to start the stream (its jitter merged or split bursts at random) */
    uint64_t now = uv_now(a->loop), g = a->grid_ms;
    sc->first_ms = g ? (now + g - 1) / g * g : now;
    uv_timer_start(&sc->timer, stub_tick, sc->first_ms - now, 0);
}

/* Parse one complete request from sc->in if there is one (not while generating). */
static void stub_try_request(stub_conn_t *sc) {
    if (sc->generating || sc->closing) return;
    char *e = NULL;
    for (size_t i = 0; i + 3 < sc->inlen; i++)
        if (memcmp(sc->in + i, "\r\n\r\n", 4) == 0) {
            e = sc->in + i;
            break;
        }
    if (!e) return;
    size_t hl = (size_t)(e - sc->in) + 4;
    char save = sc->in[hl - 1];
    sc->in[hl - 1] = 0; /* headers as a C string (the last '\n' of the blank line) */
    size_t clen = 0;
    int expect = 0;
    for (char *h = strstr(sc->in, "\r\n"); h && h < e; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "content-length:", 15) == 0) clen = strtoul(h + 17, NULL, 10);
        if (strncasecmp(h + 2, "expect: 100-continue", 20) == 0) expect = 1;
        if (strncasecmp(h + 2, "transfer-encoding:", 18) == 0) clen = SIZE_MAX;
    }
    sc->in[hl - 1] = save;
    if (clen == SIZE_MAX || hl + clen > sizeof sc->in) {
        stub_simple(sc, 400, "text/plain", "unsupported request");
        stub_close(sc);
        return;
    }
    if (sc->inlen < hl + clen) {
        if (expect && !sc->continued) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            stub_write(sc, cont, sizeof cont - 1);
            sc->continued = 1;
        }
        return;
    }
    sc->continued = 0;
    char method[8] = "", path[64] = "";
    sscanf(sc->in, "%7s %63s", method, path);
    const char *body = sc->in + hl;
    if (strcmp(method, "POST") == 0 &&
        (strcmp(path, "/api/generate") == 0 || strcmp(path, "/api/chat") == 0))
        stub_generate(sc, body, clen, strcmp(path, "/api/chat") == 0);
    else if (strcmp(method, "GET") == 0 && strcmp(path, "/") == 0)
        stub_simple(sc, 200, "text/plain; charset=utf-8", "Ollama is running");
    else if (strcmp(method, "GET") == 0 && strcmp(path, "/api/tags") == 0)
        stub_simple(sc, 200, "application/json",
                    "{\"models\":[{\"name\":\"llama3.2:latest\",\"model\":\"llama3.2:latest\"}]}");
    else
        stub_simple(sc, 404, "text/plain", "404 page not found");
    memmove(sc->in, sc->in + hl + clen, sc->inlen - hl - clen);
    sc->inlen -= hl + clen;
    if (!sc->generating) stub_try_request(sc);
}

static void stub_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf) {
    stub_conn_t *sc = h->data;
    (void)sug;
    buf->base = sc->in + sc->inlen;
    buf->len = sizeof sc->in - sc->inlen;
}

static void stub_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    stub_conn_t *sc = s->data;
    (void)buf;
    if (nread < 0) { /* EOF, error, or UV_ENOBUFS: a request larger than the buffer */
        stub_close(sc);
        return;
    }
    sc->inlen += (size_t)nread;
    stub_try_request(sc);
}

static void stub_on_conn(uv_stream_t *srv, int status) {
    app_t *a = srv->data;
    if (status < 0) return;
    stub_conn_t *sc = calloc(1, sizeof *sc);
    if (!sc) abort();
    sc->app = a;
    uv_tcp_init(a->loop, &sc->tcp);
    uv_timer_init(a->loop, &sc->timer);
    sc->tcp.data = sc->timer.data = sc;
    sc->handles_open = 2;
    sc->next = a->stub_conns;
    if (sc->next) sc->next->pprev = &sc->next;
    sc->pprev = &a->stub_conns;
    a->stub_conns = sc;
    if (uv_accept(srv, (uv_stream_t *)&sc->tcp) < 0) {
        stub_close(sc);
        return;
    }
    uv_tcp_nodelay(&sc->tcp, 1);
    uv_read_start((uv_stream_t *)&sc->tcp, stub_alloc, stub_read);
}

static int stub_start(app_t *a) {
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(a->loop, &a->stub_srv);
    a->stub_srv.data = a;
    a->stub_on = 1;
    int rc = uv_tcp_bind(&a->stub_srv, (const struct sockaddr *)&sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&a->stub_srv, 1024, stub_on_conn);
    if (rc < 0) {
        fprintf(stderr, "agent_load: stub listen: %s\n", uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    uv_tcp_getsockname(&a->stub_srv, (struct sockaddr *)&ss, &sl);
    snprintf(a->llm_host, sizeof a->llm_host, "127.0.0.1");
    a->llm_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ---- relay mode: the thinnest "agent" on the same transports ------------------------- */
/* A request line starts an upstream HTTP stream (the floor's client, raw uv_tcp: no curl);
 * each token is forwarded as a chunk line over the secret-stream at once; the upstream's end
 * becomes a result. No offer, payment, job state, database or logging: a floor for any agent
 * built on dht_tcp + proto_msg, measured by the same load generator. */

static void relay_upstream_done(job_t *j, int ok) {
    if (!j->down) return;
    proto_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_RESULT;
    snprintf(m.id, sizeof m.id, "%s", j->id);
    m.result.output = "";
    m.result.reason = ok ? PROTO_REASON_DONE : PROTO_REASON_ERROR;
    common_buf_t b = {0};
    if (proto_msg_encode(&m, &b) == 0) dht_tcp_write(j->down, b.data, b.len);
    common_buf_free(&b);
    dht_tcp_end(j->down);
}

static void start_floor_job(job_t *j);

static void rl_on_data(dht_tcp_conn_t *c, const uint8_t *data, size_t len, void *ud) {
    job_t *j = ud;
    if (proto_ndjson_feed(j->down_fr, data, len) != 0) {
        dht_tcp_close(c);
        return;
    }
    const char *line;
    size_t n;
    int rc;
    while ((rc = proto_ndjson_next(j->down_fr, &line, &n)) != 0) {
        proto_msg_t m;
        if (rc < 0 || proto_msg_decode(line, n, &m, NULL, 0) != 0) {
            if (rc >= 0) proto_msg_free(&m);
            dht_tcp_close(c);
            return;
        }
        if (m.type == PROTO_MSG_REQUEST && !j->tcp_open && !j->closed) {
            snprintf(j->id, sizeof j->id, "%s", m.id);
            common_buf_t b = {0};
            common_buf_printf(&b, "{\"model\":\"llama3.2\",\"prompt\":");
            proto_json_put_string(&b, m.request.input, strlen(m.request.input));
            common_buf_printf(&b, ",\"stream\":true}"); /* pacing and n: the directive */
            free(j->body);
            j->body = strndup((const char *)b.data, b.len);
            common_buf_free(&b);
            if (!j->body) abort();
            start_floor_job(j);
        }
        proto_msg_free(&m);
    }
}

static void rl_on_end(dht_tcp_conn_t *c, void *ud) {
    (void)ud;
    dht_tcp_close(c);
}

static void rl_on_close(dht_tcp_conn_t *c, int status, void *ud) {
    job_t *j = ud;
    (void)c;
    (void)status;
    j->down = NULL;
    j->down_closed = 1;
    if (j->tcp_open == 1)
        fj_close(j); /* the customer left: abort the upstream, as the agent does */
    else if (j->tcp_open == 0)
        relay_job_free(j);
}

static void rl_on_accept(dht_tcp_server_t *srv, dht_tcp_conn_t *c, void *ud) {
    app_t *a = ud;
    (void)srv;
    static const dht_tcp_callbacks_t cbs = {NULL, rl_on_data, NULL, rl_on_end, rl_on_close};
    job_t *j = calloc(1, sizeof *j);
    int err = 0;
    if (!j || !(j->down_fr = proto_ndjson_new(0, &err))) abort();
    j->app = a;
    j->relay = 1;
    j->down = c;
    snprintf(j->id, sizeof j->id, "r");
    dht_tcp_conn_set_callbacks(c, &cbs, j);
}

/* ---- control ------------------------------------------------------------------------ */

static int parse_hostport(const char *s, char *host, size_t hostsz, uint16_t *port) {
    const char *c = strrchr(s, ':');
    uint64_t p;
    if (!c || (size_t)(c - s) >= hostsz || c == s) return -1;
    if (common_parse_u64(c + 1, 1, 65535, &p) != 0) return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    *port = (uint16_t)p;
    return 0;
}

static void on_deadline(uv_timer_t *t) {
    app_t *a = t->data;
    fprintf(stderr, "agent_load: timed out after %llu s (%u of %llu jobs finished)\n",
            (unsigned long long)a->timeout_s, a->finished, (unsigned long long)a->n);
    a->timed_out = 1;
    a->rc = 1;
    if (!a->started) { /* llm mode: serve no longer */
        finish_all(a);
        return;
    }
    for (unsigned i = 0; i < a->n; i++) {
        job_t *j = &a->jobs[i];
        if (a->floor)
            fj_close(j);
        else if (j->conn)
            dht_tcp_close(j->conn);
    }
}

/* Start every customer that is due: customer i at i * arrive_ms / n after the start. */
static void arrive_tick(uv_timer_t *t) {
    app_t *a = t->data;
    uint64_t since_ms = (uv_hrtime() - a->t_start) / 1000000;
    while (a->next_job < a->n && !a->done_all) {
        uint64_t due = a->next_job * a->arrive_ms / a->n;
        if (due > since_ms) {
            uv_timer_start(&a->arrive, arrive_tick, due - since_ms, 0);
            return;
        }
        job_t *j = &a->jobs[a->next_job++];
        if (a->floor)
            start_floor_job(j);
        else
            start_load_job(j);
    }
}

static void start_jobs(app_t *a) {
    a->started = 1;
    a->t_start = uv_hrtime();
    uv_timer_start(&a->deadline, on_deadline, a->timeout_s * 1000, 0);
    arrive_tick(&a->arrive);
}

static void noop_close(uv_handle_t *h) {
    (void)h;
}

/* Every job has finished (or the run was abandoned): stop the LLM and the timers. */
static void finish_all(app_t *a) {
    if (a->done_all) return;
    a->done_all = 1;
    a->t_end = uv_hrtime();
    uv_timer_stop(&a->deadline);
    uv_close((uv_handle_t *)&a->deadline, noop_close);
    uv_timer_stop(&a->arrive);
    uv_close((uv_handle_t *)&a->arrive, noop_close);
    while (a->stub_conns) stub_close(a->stub_conns);
    uv_close((uv_handle_t *)&a->sigint, noop_close);
    uv_close((uv_handle_t *)&a->sigterm, noop_close);
    if (a->relay_srv) {
        dht_tcp_server_close(a->relay_srv);
        a->relay_srv = NULL;
    }
    if (a->bench) {
        agent_bench_free(a->bench);
        a->bench = NULL;
    }
    if (a->stub_on) {
        a->stub_on = 0;
        uv_close((uv_handle_t *)&a->stub_srv, noop_close);
    }
}

/* midstats: quantiles of the mid-hop records (agent_bench.h) whose stamp is in [from, to]:
 * written - stamp (the mid hop), piece - stamp (stub write, hop, wakeup, HTTP/NDJSON up to
 * the token's callback) and written - piece (the middle process from the token's callback
 * to the prepare phase after its write); and the stub's burst size: how many tokens were
 * stamped in the same burst (stamps less than 100 us apart), per token. */
static int midstats(const char *path, uint64_t from, uint64_t to, const char *prefix) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "agent_load: midstats: cannot open %s\n", path);
        return 1;
    }
    samples_t mid = {0}, piece = {0}, inproc = {0}, stamps = {0}, burst = {0};
    unsigned long long st, pc, wr;
    uint64_t bad = 0;
    while (fscanf(f, "%llu %llu %llu", &st, &pc, &wr) == 3) {
        if (st < from || st > to) continue;
        if (pc < st || wr < pc) {
            bad++;
            continue;
        }
        samples_add(&mid, wr - st);
        samples_add(&piece, pc - st);
        samples_add(&inproc, wr - pc);
        samples_add(&stamps, st);
    }
    fclose(f);
    if (stamps.n) qsort(stamps.v, stamps.n, sizeof *stamps.v, cmp_u64);
    for (size_t i = 0; i < stamps.n;) {
        size_t k = i + 1;
        while (k < stamps.n && stamps.v[k] - stamps.v[k - 1] < 100000) k++;
        for (size_t m = i; m < k; m++) samples_add(&burst, (k - i) * 1000); /* print_q: /1000 */
        i = k;
    }
    char name[96];
    snprintf(name, sizeof name, "%smid_hop_us (stamp -> written)", prefix);
    print_q(name, &mid);
    snprintf(name, sizeof name, "%sto_callback_us (stamp -> token callback)", prefix);
    print_q(name, &piece);
    snprintf(name, sizeof name, "%sin_process_us (token callback -> written)", prefix);
    print_q(name, &inproc);
    snprintf(name, sizeof name, "%sstub_burst_tokens", prefix);
    print_q(name, &burst);
    if (bad) printf("%sbad_records %llu\n", prefix, (unsigned long long)bad);
    printf("%smid_p99_us=%.0f\n", prefix, q_us(&mid, 0.99));
    int rc = mid.n ? 0 : 1;
    free(mid.v);
    free(piece.v);
    free(inproc.v);
    free(stamps.v);
    free(burst.v);
    return rc;
}

static void usage(void) {
    fprintf(
        stderr,
        "usage: agent_load llm [--timeout S] [--grid-ms G]\n"
        "       agent_load relay --llm-url http://127.0.0.1:PORT [--timeout S] [--stamp-log F]\n"
        "       agent_load midstats --file F [--from NS --to NS] [--prefix P]\n"
        "       agent_load load --agent HOST:PORT [--tokens FILE] [options]\n"
        "       agent_load floor --llm-url http://127.0.0.1:PORT [options]\n"
        "options: -n N --chunks C --token-ms MS --timeout S --windows --prefix P\n"
        "         --arrive-ms MS (customers start evenly spread over MS; 0: at once)\n");
    exit(2);
}

static void on_signal(uv_signal_t *h, int sig) {
    (void)sig;
    finish_all(h->data);
}

static char **read_tokens(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (strncmp(line, "cashu", 5) != 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) abort();
            v = nv;
        }
        v[(*n)++] = strdup(line);
    }
    free(line);
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (sodium_init() < 0) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    static app_t app; /* one per process */
    app_t *a = &app;
    a->n = 100;
    a->chunks = 30;
    a->token_ms = 50;
    a->timeout_s = 120;
    const char *tokens_path = NULL, *agent = NULL, *llm_url = NULL, *prefix = NULL;
    const char *stamp_log = NULL, *mid_file = NULL;
    uint64_t mid_from = 0, mid_to = UINT64_MAX;
    int llm_mode = 0, relay_mode = 0, mid_mode = 0;
    if (argc < 2) usage();
    if (strcmp(argv[1], "floor") == 0)
        a->floor = 1;
    else if (strcmp(argv[1], "llm") == 0)
        llm_mode = 1;
    else if (strcmp(argv[1], "relay") == 0)
        relay_mode = 1;
    else if (strcmp(argv[1], "midstats") == 0)
        mid_mode = 1;
    else if (strcmp(argv[1], "load") != 0)
        usage();
    for (int i = 2; i < argc; i++) {
        uint64_t v;
        if (strcmp(argv[i], "--windows") == 0) {
            a->windows = 1;
            continue;
        }
        if (i + 1 >= argc) usage();
        const char *o = argv[i], *val = argv[++i];
        if (strcmp(o, "-n") == 0 && !common_parse_u64(val, 1, AL_MAX_JOBS, &v))
            a->n = v;
        else if (strcmp(o, "--chunks") == 0 && !common_parse_u64(val, 1, AL_MAX_CHUNKS, &v))
            a->chunks = v;
        else if (strcmp(o, "--token-ms") == 0 && !common_parse_u64(val, 0, 60000, &v))
            a->token_ms = v;
        else if (strcmp(o, "--timeout") == 0 && !common_parse_u64(val, 1, 3600, &v))
            a->timeout_s = v;
        else if (strcmp(o, "--arrive-ms") == 0 && !common_parse_u64(val, 0, 600000, &v))
            a->arrive_ms = v;
        else if (strcmp(o, "--grid-ms") == 0 && !common_parse_u64(val, 0, 60000, &v))
            a->grid_ms = v;
        else if (strcmp(o, "--stamp-log") == 0)
            stamp_log = val;
        else if (strcmp(o, "--file") == 0)
            mid_file = val;
        else if (strcmp(o, "--from") == 0 && !common_parse_u64(val, 0, UINT64_MAX, &v))
            mid_from = v;
        else if (strcmp(o, "--to") == 0 && !common_parse_u64(val, 0, UINT64_MAX, &v))
            mid_to = v;
        else if (strcmp(o, "--tokens") == 0)
            tokens_path = val;
        else if (strcmp(o, "--agent") == 0)
            agent = val;
        else if (strcmp(o, "--llm-url") == 0)
            llm_url = val;
        else if (strcmp(o, "--prefix") == 0 && strlen(val) < 32)
            prefix = val;
        else
            usage();
    }
    if (mid_mode) {
        if (!mid_file) usage();
        return midstats(mid_file, mid_from, mid_to, prefix ? prefix : "");
    }
    if ((a->floor || relay_mode) &&
        (!llm_url || strncmp(llm_url, "http://", 7) != 0 ||
         parse_hostport(llm_url + 7, a->llm_host, sizeof a->llm_host, &a->llm_port)))
        usage();
    if (!a->floor && !llm_mode && !relay_mode &&
        (!agent || parse_hostport(agent, a->agent_host, sizeof a->agent_host, &a->agent_port)))
        usage();
    if (tokens_path) {
        a->tokens = read_tokens(tokens_path, &a->ntokens);
        if (!a->tokens || a->ntokens < a->n) {
            fprintf(stderr, "agent_load: %s: need %llu token lines, found %zu\n", tokens_path,
                    (unsigned long long)a->n, a->ntokens);
            return 1;
        }
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    a->loop = &loop;
    common_env_default(&a->env, &loop, NULL);
    uv_timer_init(&loop, &a->deadline);
    a->deadline.data = a;
    uv_timer_init(&loop, &a->arrive);
    a->arrive.data = a;
    uv_signal_init(&loop, &a->sigint);
    uv_signal_init(&loop, &a->sigterm);
    a->sigint.data = a->sigterm.data = a;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&a->sigint);
    uv_unref((uv_handle_t *)&a->sigterm);
    signal(SIGPIPE, SIG_IGN);
    a->jobs = calloc(a->n, sizeof *a->jobs);
    if (!a->jobs) return 1;
    for (unsigned i = 0; i < a->n; i++) {
        a->jobs[i].app = a;
        a->jobs[i].idx = i;
        snprintf(a->jobs[i].id, sizeof a->jobs[i].id, "b%u", i);
    }
    dht_tcp_server_t *relay_srv = NULL;
    if (relay_mode) {
        dht_keypair_t kp;
        dht_crypto_keypair_random(&kp);
        int err = 0;
        relay_srv =
            dht_tcp_listen(&loop, &a->env, &kp, "127.0.0.1", 0, NULL, rl_on_accept, a, &err);
        dht_crypto_keypair_wipe(&kp);
        if (!relay_srv) {
            fprintf(stderr, "agent_load: relay listen: %s\n", common_strerror(err));
            return 1;
        }
        a->relay_srv = relay_srv;
        if (stamp_log && !(a->bench = agent_bench_new(&loop, stamp_log, &err))) {
            fprintf(stderr, "agent_load: --stamp-log %s: %s\n", stamp_log, common_strerror(err));
            return 1;
        }
        printf("listening 127.0.0.1:%u (agent_load relay -> %s)\n", dht_tcp_server_port(relay_srv),
               llm_url);
        uv_timer_start(&a->deadline, on_deadline, a->timeout_s * 1000, 0);
    } else if (llm_mode) {
        if (stub_start(a) != 0) return 1;
        /* the first stdout line is parsed by scripts: keep "http://127.0.0.1:<port>" in it */
        printf("agent_load llm: stamped Ollama stub listening on http://127.0.0.1:%u\n",
               a->llm_port);
        uv_timer_start(&a->deadline, on_deadline, a->timeout_s * 1000, 0);
    } else {
        if (a->floor) {
            char body[512];
            snprintf(body, sizeof body,
                     "{\"model\":\"llama3.2\",\"prompt\":\"bench "
                     "[[dev:{\\\"stamp\\\":true,\\\"multi\\\":false,\\\"n\\\":%llu,"
                     "\\\"token_ms\\\":%llu}]]\",\"stream\":true,\"keep_alive\":\"30m\","
                     "\"options\":{\"num_predict\":%llu}}",
                     (unsigned long long)a->chunks, (unsigned long long)a->token_ms,
                     (unsigned long long)a->chunks);
            a->req_body = strdup(body);
        }
        start_jobs(a);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) fprintf(stderr, "agent_load: loop not empty at exit\n");
    if (llm_mode) print_q("llm_stub write_syscall_us", &a->stub_write);
    if (llm_mode)
        printf("llm_stub tokens %llu queued_writes %llu\n", (unsigned long long)a->stub_tokens,
               (unsigned long long)a->stub_writes_queued);

    if (a->started) {
        unsigned done = 0, failed = 0;
        uint64_t chunks = 0;
        for (unsigned i = 0; i < a->n; i++) {
            done += a->jobs[i].ok;
            failed += !a->jobs[i].ok;
            chunks += a->jobs[i].chunks;
        }
        const char *p = prefix ? prefix : a->floor ? "floor_" : "";
        char name[96];
        printf("%sjobs_done %u jobs_failed %u chunks %llu unstamped %llu seconds %.2f\n", p, done,
               failed, (unsigned long long)chunks, (unsigned long long)a->unstamped,
               (double)(a->t_end - a->t_start) / 1e9);
        snprintf(name, sizeof name, "%slatency_us", p);
        print_q(name, &a->all);
        snprintf(name, sizeof name, "%ssteady_state_us (seq >= %u)", p, AL_STEADY_SEQ);
        print_q(name, &a->steady);
        snprintf(name, sizeof name, "%sfirst_chunk_us (first chunk of each job)", p);
        print_q(name, &a->first);
        for (unsigned w = 0; w < AL_WINDOWS; w++) {
            if (!a->window[w].n || !a->windows) continue;
            snprintf(name, sizeof name, "%swindow_ms %u-%u%s", p, w * AL_WINDOW_MS,
                     (w + 1) * AL_WINDOW_MS, w == AL_WINDOWS - 1 ? "+" : "");
            print_q(name, &a->window[w]);
        }
        for (unsigned w = 0; w < AL_WINDOWS; w++) free(a->window[w].v);
        if (a->backwards) printf("%sclock_backwards %llu\n", p, (unsigned long long)a->backwards);
        /* CLOCK_MONOTONIC, the stub's stamps' clock: which mid-hop records are this run's */
        printf("%srun_ns %llu %llu\n", p, (unsigned long long)a->t_start,
               (unsigned long long)a->t_end);
        printf("%sp99_us=%.0f\n", p, q_us(&a->all, 0.99));
        if (failed || a->all.n == 0) a->rc = 1;
    }
    for (unsigned i = 0; a->jobs && i < a->n; i++) {
        proto_ndjson_free(a->jobs[i].fr);
        common_buf_free(&a->jobs[i].in);
        free(a->jobs[i].wbuf);
    }
    free(a->jobs);
    for (size_t i = 0; i < a->ntokens; i++) free(a->tokens[i]);
    free(a->tokens);
    free(a->req_body);
    free(a->all.v);
    free(a->steady.v);
    free(a->first.v);
    free(a->stub_write.v);
    return a->rc;
}
