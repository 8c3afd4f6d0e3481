/* SPDX-License-Identifier: MIT */
/**
 * @file agent_bench.h
 * @brief BENCH-ONLY instrumentation (scripts/bench/agent.sh); never enabled in normal use.
 *
 * The bench's LLM stub (tests/interop/agent/agent_load.c, mode llm) sends each token as the
 * decimal CLOCK_MONOTONIC time (ns) at which it wrote it, followed by a space. The
 * middle process of the bench (dvm-agent, or agent_load relay) hands each token it receives
 * to agent_bench_piece(); a uv_prepare handle then records the time of the loop's next
 * prepare phase, which comes after the idle phase in which dht_tcp flushes its corked writes
 * (the write(2) of the chunk to the customer's socket). Per token one line is written to the
 * log file:
 *     <stamp_ns> <piece_ns> <written_ns>
 * stamp: the stub's send time; piece: when the middle process got the token's text (on_delta
 * in dvm-agent); written: the prepare phase after the chunk's write. written - stamp is the
 * "mid hop": stub write + one loopback hop + wakeup + the middle process's queueing and
 * processing, an upper bound of what the middle process adds that excludes the customer.
 * It assumes every token is sent as a chunk in the loop iteration that received it (true in
 * the bench: paid up front, no coalescing); texts without a leading stamp are ignored.
 *
 * dvm-agent enables it only when the environment variable DVM_BENCH_STAMP_LOG names a file
 * (agent_bench_gen wraps the served generator). Single loop thread; the log is stdio
 * buffered and flushed by agent_bench_free().
 */
#ifndef SWARMDVM_AGENT_BENCH_H
#define SWARMDVM_AGENT_BENCH_H

#include <stddef.h>
#include <uv.h>

#include "agent/agent_gen.h"

#ifndef AGENT_BENCH_PENDING
#define AGENT_BENCH_PENDING 4096 /* tokens awaiting their prepare phase; more are dropped */
#endif

typedef struct agent_bench agent_bench_t;

/** @brief Open @p path for writing (truncated) and start the prepare handle on @p loop.
 * @return NULL with *err set. */
agent_bench_t *agent_bench_new(uv_loop_t *loop, const char *path, int *err);
/** @brief One token's text as received by the middle process (borrowed, not kept). */
void agent_bench_piece(agent_bench_t *b, const char *text, size_t len);
/** @brief Wrap @p inner (borrowed, must outlive @p out): every delta goes through
 * agent_bench_piece before the runtime's on_delta. */
void agent_bench_gen(agent_bench_t *b, const agent_gen_t *inner, agent_gen_t *out);
/** @brief Records written, tokens dropped (pending full or no stamp). */
void agent_bench_counts(const agent_bench_t *b, size_t *recorded, size_t *dropped);
/** @brief Flush and close the log; closes the handle (run the loop once more to free). */
void agent_bench_free(agent_bench_t *b);

#endif
