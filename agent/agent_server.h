/* SPDX-License-Identifier: MIT */
/**
 * @file agent_server.h
 * @brief The provider runtime: connections, per-connection job maps, capacity slots, the
 *        job state machines (proto_provider) wired to the generator, the payments interface
 *        and the ledger. Transport-agnostic: a connection is anything that can write bytes
 *        and close (dht_tcp today, Hyperswarm connections when the swarm lands).
 *
 * Who calls what:
 *   - main creates the server with a generator (agent_gen_t), payments (agent_pay_t) and
 *     optionally a ledger (all borrowed, must outlive the server);
 *   - the transport adapter calls agent_server_conn_open() once a connection is
 *     established (handshake done, remote key known), agent_server_conn_data() with each
 *     received piece of the byte stream, and agent_server_conn_closed() exactly once when the
 *     connection is gone. After conn_closed the server never touches the transport handle
 *     again; before it, the server may call tr->write and tr->close (close is a request: the
 *     transport still calls conn_closed later);
 *   - agent_server_shutdown() refuses new requests and stops running jobs (each gets its
 *     partial `result`); @p on_idle runs once no job is left.
 *
 * Guarantees (dvm-protocol.md §4): a job is addressed only by (connection, id); a capacity
 * slot is taken before the offer and released exactly once whatever ends the job; a
 * disconnect aborts the generation at once; nothing is credited before the payments
 * interface verified it; each job's tokens are persisted on receipt and claimed once after
 * the job. A job's memory lives until its generation's on_end arrived, so late callbacks are
 * safe.
 *
 * Not thread-safe; everything on the loop thread.
 */
#ifndef SWARMDVM_AGENT_SERVER_H
#define SWARMDVM_AGENT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/agent_gen.h"
#include "agent/agent_ledger.h"
#include "agent/agent_pay.h"
#include "common/common_env.h"
#include "protocol/proto_capacity.h"
#include "protocol/proto_provider.h"

/** Most connections served at once (each may hold a few jobs). */
#ifndef AGENT_MAX_CONNS
#define AGENT_MAX_CONNS 4096
#endif
/** Most jobs one connection may hold (waiting or running). */
#ifndef AGENT_MAX_JOBS_PER_CONN
#define AGENT_MAX_JOBS_PER_CONN 8
#endif

typedef struct agent_server_cfg {
    proto_provider_cfg_t job; /* kind, price, payment timeout, limits, offer extensions */
    uint32_t max_jobs;        /* MAX_JOBS (>= 1) */
    agent_unlocked_policy_t unlocked;
    const char *model;   /* for skill_response (borrowed) */
    const char *version; /* for skill_response (borrowed) */
    size_t max_line;     /* 0: PROTO_MAX_LINE */
} agent_server_cfg_t;

typedef struct agent_transport {
    /** @return 1 ok, 0 above high water (data taken anyway), < 0 the connection is failing. */
    int (*write)(void *t, const void *data, size_t len);
    /** Close as soon as possible; conn_closed follows later (never from inside close). */
    void (*close)(void *t);
} agent_transport_t;

typedef struct agent_server agent_server_t;
typedef struct agent_conn agent_conn_t;

agent_server_t *agent_server_new(uv_loop_t *loop, const common_env_t *env,
                                 const agent_server_cfg_t *cfg, agent_gen_t *gen, agent_pay_t *pay,
                                 agent_ledger_t *ledger, int *err);
/** @brief Free; call once agent_server_shutdown reported idle (jobs are dropped otherwise). */
void agent_server_free(agent_server_t *s);

/** @brief A new connection. @p tr borrowed (static table), @p t the transport's handle.
 * @return NULL when the server is full or shutting down (the caller closes the transport). */
agent_conn_t *agent_server_conn_open(agent_server_t *s, const agent_transport_t *tr, void *t,
                                     const uint8_t remote_pk[32]);
void agent_server_conn_data(agent_conn_t *c, const uint8_t *data, size_t len);
/** @brief The transport is gone: running jobs are aborted (disconnect). */
void agent_server_conn_closed(agent_conn_t *c);

/** @brief Stop accepting requests, stop every job with its result; @p on_idle once empty. */
void agent_server_shutdown(agent_server_t *s, void (*on_idle)(void *ud), void *ud);

/** @brief Close every connection now (after shutdown went idle, or to simulate a crash in
 * tests): running jobs end as disconnected once their transports report the close. */
void agent_server_close_all(agent_server_t *s);

typedef struct agent_server_stats {
    uint64_t conns, jobs_active, jobs_total, jobs_refused_capacity;
    uint64_t chunks_sent, sats_verified, payments_refused, llm_started, llm_aborted;
    uint64_t claims;
    proto_capacity_t capacity;
} agent_server_stats_t;
void agent_server_get_stats(const agent_server_t *s, agent_server_stats_t *out);

/** Samples kept of the in-agent chunk path (a generated piece in -> its line written). */
#ifndef AGENT_LAT_SAMPLES
#define AGENT_LAT_SAMPLES 65536
#endif
/**
 * @brief Time spent in the agent per generated piece, from the generator's on_delta to the
 * return of the transport write(s) it caused (protocol core, encoding, encryption), over the
 * last AGENT_LAT_SAMPLES pieces. Waiting in the event loop before on_delta is not included.
 * @return the number of samples (0: the outputs are left unset).
 */
size_t agent_server_chunk_latency(const agent_server_t *s, uint64_t *p50_us, uint64_t *p99_us,
                                  uint64_t *max_us);

#endif
