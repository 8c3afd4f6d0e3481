/* SPDX-License-Identifier: MIT */
/**
 * @file agent_ledger.h
 * @brief The provider's jobs and earnings ledger (agent.db).
 *
 * One row per job: who asked (customer key prefix), the price, the chunks streamed, the
 * verified sats received and how the job ended. Tokens themselves live in the wallet's
 * database (cashu/), which is the one source of truth for what is claimed or pending; the
 * ledger records what each job earned so that `dvm-agent --stats` can show jobs, chunks and
 * sats per outcome. Writes are synchronous sqlite transactions (WAL, synchronous=FULL):
 * a job row exists before its offer is sent, and every credited payment is added before
 * the chunks it pays for are released.
 */
#ifndef SWARMDVM_AGENT_LEDGER_H
#define SWARMDVM_AGENT_LEDGER_H

#include <stdint.h>

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
void agent_ledger_close(agent_ledger_t *l);

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
/** @brief Jobs left open by a crash are closed with reason "crashed" (call on start). */
int agent_ledger_close_orphans(agent_ledger_t *l, uint64_t *closed);

int agent_ledger_stats(agent_ledger_t *l, agent_ledger_stats_t *out);

#endif
