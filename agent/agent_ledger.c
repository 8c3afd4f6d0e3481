/* SPDX-License-Identifier: MIT */
#include "agent/agent_ledger.h"
#include "common/common_db.h"
#include "common/common_err.h"

#include <stdlib.h>

struct agent_ledger {
    sqlite3 *db;
    const common_env_t *env;
};

static const char *const migrations[] = {
    "CREATE TABLE jobs ("
    "  row INTEGER PRIMARY KEY,"
    "  job_id TEXT NOT NULL,"
    "  peer TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  sats_per_chunk INTEGER NOT NULL,"
    "  chunks_per_payment INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  ended_ms INTEGER,"
    "  reason TEXT,"
    "  chunks INTEGER NOT NULL DEFAULT 0,"
    "  sats INTEGER NOT NULL DEFAULT 0,"
    "  payments INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX jobs_open ON jobs(ended_ms) WHERE ended_ms IS NULL;",
};

agent_ledger_t *agent_ledger_open(const char *path, const common_env_t *env, int *err) {
    agent_ledger_t *l = calloc(1, sizeof *l);
    int rc = COMMON_ENOMEM;
    if (!l) goto fail;
    l->env = env;
    rc = common_db_open(path, env, &l->db);
    if (rc) goto fail;
    rc = common_db_migrate(l->db, migrations, sizeof migrations / sizeof migrations[0], env);
    if (rc) goto fail;
    return l;
fail:
    if (l) common_db_close(l->db);
    free(l);
    if (err) *err = rc;
    return NULL;
}

void agent_ledger_close(agent_ledger_t *l) {
    if (!l) return;
    common_db_close(l->db);
    free(l);
}

/* Run one statement with up to 4 integer binds after an optional leading text bind. */
static int run(agent_ledger_t *l, const char *sql, const char *t1, const char *t2, int nint,
               const int64_t *ints, int64_t *rowid) {
    sqlite3_stmt *st;
    if (common_db_prepare(l->db, sql, &st, l->env)) return COMMON_EDB;
    int i = 1;
    if (t1) sqlite3_bind_text(st, i++, t1, -1, SQLITE_TRANSIENT);
    if (t2) sqlite3_bind_text(st, i++, t2, -1, SQLITE_TRANSIENT);
    for (int k = 0; k < nint; k++) sqlite3_bind_int64(st, i++, ints[k]);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        LOG_ERROR(l->env ? l->env->log : NULL, "ledger", "%s", sqlite3_errmsg(l->db));
        return COMMON_EDB;
    }
    if (rowid) *rowid = sqlite3_last_insert_rowid(l->db);
    return 0;
}

int agent_ledger_job_start(agent_ledger_t *l, const char *job_id, const char *peer_prefix,
                           uint32_t kind, uint64_t sats_per_chunk, uint64_t chunks_per_payment,
                           int64_t *row) {
    if (sats_per_chunk > INT64_MAX || chunks_per_payment > INT64_MAX) return COMMON_ERANGE;
    int64_t v[4] = {kind, (int64_t)sats_per_chunk, (int64_t)chunks_per_payment,
                    (int64_t)common_unix_ms(l->env)};
    return run(l,
               "INSERT INTO jobs(job_id, peer, kind, sats_per_chunk, chunks_per_payment, "
               "started_ms) VALUES (?, ?, ?, ?, ?, ?)",
               job_id, peer_prefix ? peer_prefix : "", 4, v, row);
}

int agent_ledger_job_paid(agent_ledger_t *l, int64_t row, uint64_t sats) {
    if (sats > INT64_MAX) return COMMON_ERANGE;
    int64_t v[2] = {(int64_t)sats, row};
    return run(l, "UPDATE jobs SET sats = sats + ?, payments = payments + 1 WHERE row = ?", NULL,
               NULL, 2, v, NULL);
}

int agent_ledger_job_chunks(agent_ledger_t *l, int64_t row, uint64_t chunks) {
    if (chunks > INT64_MAX) return COMMON_ERANGE;
    int64_t v[2] = {(int64_t)chunks, row};
    return run(l, "UPDATE jobs SET chunks = MAX(chunks, ?) WHERE row = ?", NULL, NULL, 2, v,
               NULL);
}

int agent_ledger_job_end(agent_ledger_t *l, int64_t row, const char *reason) {
    int64_t v[2] = {(int64_t)common_unix_ms(l->env), row};
    return run(l, "UPDATE jobs SET reason = ?, ended_ms = ? WHERE row = ? AND ended_ms IS NULL",
               reason, NULL, 2, v, NULL);
}

int agent_ledger_close_orphans(agent_ledger_t *l, uint64_t *closed) {
    int64_t v[1] = {(int64_t)common_unix_ms(l->env)};
    int rc = run(l, "UPDATE jobs SET reason = 'crashed', ended_ms = ? WHERE ended_ms IS NULL",
                 NULL, NULL, 1, v, NULL);
    if (!rc && closed) *closed = (uint64_t)sqlite3_changes(l->db);
    return rc;
}

int agent_ledger_stats(agent_ledger_t *l, agent_ledger_stats_t *out) {
    sqlite3_stmt *st;
    if (common_db_prepare(l->db,
                          "SELECT COUNT(*), COALESCE(SUM(payments > 0), 0), "
                          "COALESCE(SUM(ended_ms IS NULL), 0), COALESCE(SUM(chunks), 0), "
                          "COALESCE(SUM(sats), 0) FROM jobs",
                          &st, l->env))
        return COMMON_EDB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->jobs = (uint64_t)sqlite3_column_int64(st, 0);
        out->jobs_paid = (uint64_t)sqlite3_column_int64(st, 1);
        out->jobs_open = (uint64_t)sqlite3_column_int64(st, 2);
        out->chunks = (uint64_t)sqlite3_column_int64(st, 3);
        out->sats_received = (uint64_t)sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : COMMON_EDB;
}
