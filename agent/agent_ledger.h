/* SPDX-License-Identifier: MIT */
/**
 * @file agent_ledger.h
 * @brief The provider's jobs and earnings ledger (agent.db).
 *
 * One row per job: who asked (customer key prefix), the price, the chunks streamed, the
 * verified sats received and how the job ended. Tokens themselves live in the wallet's
 * database (cashu/), which is the one source of truth for what is claimed or pending; the
 * ledger records what each job earned so that `dvm-agent --stats` can show jobs, chunks and
 * sats per outcome. The database is WAL with synchronous=FULL.
 *
 * Two write modes. Right after agent_ledger_open, writes are synchronous transactions on the
 * caller's thread (tests, `--stats`, start-up). After agent_ledger_async (dvm-agent does
 * this once its loop runs), writes are queued in order and group-committed by a libuv worker
 * thread on a second connection: one transaction (one fsync) per batch, the next batch made
 * of what queued during the previous commit. The loop never waits for an fsync of the
 * ledger (measured: 4 synchronous commits per job were most of the agent's loop stalls under
 * 100 concurrent jobs, scripts/bench.sh agent). The ledger is statistics, not money: a crash
 * can lose the writes not yet committed (a few milliseconds' worth); the tokens themselves
 * are durable in the wallet before a payment is acknowledged, and claimed from there.
 * Row ids are assigned by the ledger in async mode (MAX(row) + 1, ...), so job_start still
 * returns its row at once; only one process may write a data directory's agent.db.
 */
#ifndef SWARMDVM_AGENT_LEDGER_H
#define SWARMDVM_AGENT_LEDGER_H

#include <stdint.h>

#include <stddef.h>
#include <uv.h>

#include "common/common_env.h"

typedef struct agent_ledger agent_ledger_t;

typedef struct agent_ledger_stats {
    uint64_t jobs;          /* jobs that got an offer */
    uint64_t jobs_paid;     /* jobs with at least one verified payment */
    uint64_t jobs_open;     /* jobs not ended yet (a crash leaves them open until restart) */
    uint64_t chunks;        /* chunks streamed */
    uint64_t sats_received; /* verified sats credited to jobs */
} agent_ledger_stats_t;

/** @brief Open (creating) @p path. @p env is borrowed. NULL with *err on failure. */
agent_ledger_t *agent_ledger_open(const char *path, const common_env_t *env, int *err);
/**
 * @brief Close. In async mode, call it after the loop ran (the worker's requests keep the
 * loop alive until their batch is committed); a commit still in flight is waited for by
 * running the loop once at a time (other callbacks may run then), and writes still queued
 * are committed here synchronously.
 */
void agent_ledger_close(agent_ledger_t *l);
/**
 * @brief Switch to write-behind: later writes are group-committed on a worker thread of
 * @p loop (borrowed). Call once, after agent_ledger_close_orphans. 0 or COMMON_EDB.
 */
int agent_ledger_async(agent_ledger_t *l, uv_loop_t *loop);
/** @brief Writes queued or being committed (0 in synchronous mode). */
size_t agent_ledger_pending(const agent_ledger_t *l);

/**
 * @brief Record a new job. @p job_id is the customer's id (unique per connection only),
 * so the ledger returns its own row id in @p row.
 */
int agent_ledger_job_start(agent_ledger_t *l, const char *job_id, const char *peer_prefix,
                           uint32_t kind, uint64_t sats_per_chunk, uint64_t chunks_per_payment,
                           int64_t *row);
/** @brief Add a verified payment of @p sats to job @p row. */
int agent_ledger_job_paid(agent_ledger_t *l, int64_t row, uint64_t sats);
/** @brief Set the chunk count of job @p row (monotonic). */
int agent_ledger_job_chunks(agent_ledger_t *l, int64_t row, uint64_t chunks);
/** @brief Close job @p row with @p reason ("done", "stopped", "timeout", ...). */
int agent_ledger_job_end(agent_ledger_t *l, int64_t row, const char *reason);
/** @brief Jobs left open by a crash are closed with reason "crashed" (call on start, in
 * synchronous mode: COMMON_ESTATE after agent_ledger_async). */
int agent_ledger_close_orphans(agent_ledger_t *l, uint64_t *closed);

/** @brief Totals of what is committed (async mode: writes still queued are not counted). */
int agent_ledger_stats(agent_ledger_t *l, agent_ledger_stats_t *out);

#endif
