/* SPDX-License-Identifier: MIT */
/**
 * @file agent_pipe.h
 * @brief Pipeline delegation (seed guide "Sub-task Delegation"): an agent_gen_t whose every
 *        generation buys a sub-task of another kind over P2P and streams its own local-model
 *        work on top, both legs streaming.
 *
 * Per generation (= one outer job, one capacity slot of the agent's MAX_JOBS):
 *   1. a customer session (customer_run) on SUB_KIND (--sub-peer list over TCP, or the
 *      sub-kind's Hyperswarm topic through a temporary client swarm per job) with its own budget
 * (SUB_BUDGET) and highest price (MAX_SATS_PER_CHUNK), paid from the agent's own wallet through a
 * fresh customer_pay_t per job; the outer job's prompt is the sub-task's input;
 *   2. the sub-provider's text goes into a batcher (agent_pipe_batch: SUB_BATCH_SIZE
 *      characters, cut at a sentence end or whitespace); each full batch is queued;
 *   3. the queue is run through the local generator (one request at a time) with the
 *      instruction template (`--sub-prompt`; placeholders {text}, {lang}, {kind}; default for
 *      kind 5302: translate into --target-lang), and the local model's deltas are this
 *      generation's deltas — while the sub-provider is still streaming the next batch.
 *
 * Ends (on_end exactly once, per agent_gen.h):
 *   - DONE once the sub-job completed and every batch went through the local model (LENGTH
 *     when the sub-job ran out of SUB_BUDGET or a local request hit its cap); usage is the
 *     sum of the local requests' counts (has_usage only if every request reported them);
 *   - ERROR at once when the sub-job fails (no provider, price above the max, payment
 *     failure, provider error or disconnect after output began) or a local request fails;
 *     the sub-job is stopped, queued batches are dropped; the agent runtime then sends the
 *     outer customer `error` + the partial `result`;
 *   - STOPPED on cancel (outer `stop`, disconnect, shutdown): the sub-job gets `stop` and its
 *     connection is closed at once, the local request is cancelled.
 * A fallback to another sub-provider is allowed only before any sub-output arrived (a retry
 * afterwards would feed the beginning twice).
 *
 * Money: the sub-customer's spending is reported per job in the log and summed in
 * agent_pipe_stats (sats_paid); the outer job's earnings are the agent runtime's business.
 *
 * Ownership: everything in agent_pipe_deps_t is borrowed and must outlive the pipe; config
 * strings are copied. A job's memory lives until its sub-customer, its payment handle (wallet
 * calls in flight) and its local request have all ended, so late callbacks are safe;
 * agent_pipe_free() must be called once agent_pipe_busy() is 0 (after the agent runtime went
 * idle). Everything on the loop thread.
 */
#ifndef SWARMDVM_AGENT_PIPE_H
#define SWARMDVM_AGENT_PIPE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/agent_gen.h"
#include "common/common_env.h"
#include "customer/customer_pay.h"
#include "customer/customer_run.h"
#include "agent/agent_swarm.h"
#include "dht/dht_crypto.h"

#ifndef AGENT_PIPE_MAX_TEMPLATE
#define AGENT_PIPE_MAX_TEMPLATE 4096
#endif

typedef struct agent_pipe_cfg {
    uint32_t kind;               /* the agent's own kind (chooses the default template) */
    uint32_t sub_kind;           /* SUB_KIND */
    uint64_t sub_budget;         /* SUB_BUDGET (sats per job) */
    uint64_t max_sats_per_chunk; /* MAX_SATS_PER_CHUNK */
    size_t batch_chars;          /* SUB_BATCH_SIZE */
    const char *mint_url;        /* the mint we pay with */
    const char *prompt_template; /* NULL: agent_pipe_default_template(kind) */
    const char *target_lang;     /* {lang}; NULL: "English" */
    uint64_t idle_timeout_ms;    /* sub-provider silent this long: give up (0: 30 000) */
    uint64_t stop_grace_ms;      /* after our stop, wait this long for its result (0: 1 000) */
    size_t max_attempts;         /* sub-providers tried (0: 8) */
    uint64_t flush_ms;           /* while the local model is idle, a partial batch (cut at a
                                    sentence end / whitespace) goes to it once sub-output has
                                    been held this long (a slow sub-provider; 0: never) */
} agent_pipe_cfg_t;

typedef struct agent_pipe_deps {
    agent_gen_t *local; /* the local model (agent_gen_llm), borrowed */
    /* How to reach sub-provider number N: secret-stream over TCP to peers[N] (--sub-peer,
     * repeatable) as @p kp. The pipe dials itself so that it knows when a job's connections
     * are gone (Hyperswarm topic discovery plugs in here when the swarm module lands). */
    const dht_keypair_t *kp;
    char *const *peers;
    size_t npeers;
    /* With no peers: per job a temporary Hyperswarm client (customer_swarm) looks up the
     * sub-kind's topic with these options (bootstrap, allow_local...) and waits up to
     * discover_ms for a first provider (0: 30 000); closed when the job ends. */
    const agent_swarm_opts_t *swarm;
    uint64_t discover_ms;
    /* a fresh payments handle per job, from the agent's own wallet */
    int (*pay_new)(void *ud, customer_pay_t *out);
    unsigned (*pay_busy)(void *ud, const customer_pay_t *p); /* wallet calls in flight */
    void (*pay_free)(void *ud, customer_pay_t *p);           /* after close, once not busy */
    void *pay_ud;
} agent_pipe_deps_t;

typedef struct agent_pipe agent_pipe_t;

/** @brief The default instruction template for @p kind ("{text}" for kinds without one). */
const char *agent_pipe_default_template(uint32_t kind);

/**
 * @brief Expand @p tmpl: {text}, {lang}, {kind} (sub-kind's output goes into {text}); other
 * braces are copied. @return malloc'd NUL-terminated string, NULL on OOM.
 */
char *agent_pipe_expand(const char *tmpl, const char *text, size_t textlen, const char *lang,
                        uint32_t kind);

/** @brief Check a SUB_CHANNEL value: "p2p" ok; "api" and others refused with @p why. */
int agent_pipe_channel_check(const char *channel, char *why, size_t whylen);

agent_pipe_t *agent_pipe_new(uv_loop_t *loop, const common_env_t *env, const agent_pipe_cfg_t *cfg,
                             const agent_pipe_deps_t *deps, int *err);
/** @brief The generator interface for agent_server (valid while @p p lives). */
void agent_pipe_gen(agent_pipe_t *p, agent_gen_t *out);
/** @brief Jobs whose memory is still held (sub-customer, wallet calls, local request). */
size_t agent_pipe_busy(const agent_pipe_t *p);
void agent_pipe_free(agent_pipe_t *p);

typedef struct agent_pipe_stats {
    uint64_t jobs, jobs_done, jobs_failed, jobs_stopped;
    uint64_t batches, local_requests, sub_chunks, sub_bytes;
    uint64_t sats_paid; /* sent to sub-providers, all jobs */
} agent_pipe_stats_t;
void agent_pipe_get_stats(const agent_pipe_t *p, agent_pipe_stats_t *out);

#endif
