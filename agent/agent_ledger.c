/* SPDX-License-Identifier: MIT */
#include "agent/agent_ledger.h"
#include "common/common_db.h"
#include "common/common_err.h"
#include "common/common_log.h"

#include <stdlib.h>
#include <string.h>

enum { OP_START, OP_PAID, OP_CHUNKS, OP_END, OP_ORPHANS };

/* one write; text fields owned */
typedef struct ledger_op {
    int kind;
    char *t1, *t2;
    int nint;
    int64_t ints[6];
    int has_row; /* OP_START: ints[0] is the row to insert (async mode assigns rows) */
    struct ledger_op *next;
} ledger_op_t;

struct agent_ledger {
    sqlite3 *db;
    const common_env_t *env;
    char *path;
    /* write-behind (agent_ledger_async) */
    uv_loop_t *loop;
    sqlite3 *wdb;             /* the worker's own connection */
    ledger_op_t *q, **q_tail; /* queued on the loop thread */
    ledger_op_t *batch;       /* owned by the worker while busy */
    size_t batch_n, batch_failed;
    int busy, batch_rc;
    uv_work_t work;
    int64_t next_row;
    uint64_t batches, writes_lost;
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

static const char *const op_sql[] = {
    [OP_START] = "INSERT INTO jobs(job_id, peer, row, kind, sats_per_chunk, chunks_per_payment, "
                 "started_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [OP_PAID] = "UPDATE jobs SET sats = sats + ?, payments = payments + 1 WHERE row = ?",
    [OP_CHUNKS] = "UPDATE jobs SET chunks = MAX(chunks, ?) WHERE row = ?",
    [OP_END] = "UPDATE jobs SET reason = ?, ended_ms = ? WHERE row = ? AND ended_ms IS NULL",
    [OP_ORPHANS] = "UPDATE jobs SET reason = 'crashed', ended_ms = ? WHERE ended_ms IS NULL",
};

agent_ledger_t *agent_ledger_open(const char *path, const common_env_t *env, int *err) {
    agent_ledger_t *l = calloc(1, sizeof *l);
    int rc = COMMON_ENOMEM;
    if (!l || !(l->path = strdup(path))) goto fail;
    l->env = env;
    l->q_tail = &l->q;
    rc = common_db_open(path, env, &l->db);
    if (rc) goto fail;
    rc = common_db_migrate(l->db, migrations, sizeof migrations / sizeof migrations[0], env);
    if (rc) goto fail;
    return l;
fail:
    if (l) {
        common_db_close(l->db);
        free(l->path);
    }
    free(l);
    if (err) *err = rc;
    return NULL;
}

/* Execute one write on @p db. @p env NULL on the worker thread (no logging there). */
static int exec_op(sqlite3 *db, const ledger_op_t *op, const common_env_t *env, int64_t *rowid) {
    sqlite3_stmt *st;
    if (common_db_prepare(db, op_sql[op->kind], &st, env)) return COMMON_EDB;
    int i = 1;
    if (op->t1) sqlite3_bind_text(st, i++, op->t1, -1, SQLITE_TRANSIENT);
    if (op->t2) sqlite3_bind_text(st, i++, op->t2, -1, SQLITE_TRANSIENT);
    for (int k = 0; k < op->nint; k++) {
        if (op->kind == OP_START && k == 0 && !op->has_row)
            sqlite3_bind_null(st, i++); /* sqlite picks the row */
        else
            sqlite3_bind_int64(st, i++, op->ints[k]);
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (env) LOG_ERROR(env->log, "ledger", "%s", sqlite3_errmsg(db));
        return COMMON_EDB;
    }
    if (rowid) *rowid = sqlite3_last_insert_rowid(db);
    return 0;
}

static void op_free(ledger_op_t *op) {
    while (op) {
        ledger_op_t *n = op->next;
        free(op->t1);
        free(op->t2);
        free(op);
        op = n;
    }
}

/* ---- write-behind: group commit on a worker thread ------------------------------------ */

static void work_cb(uv_work_t *w) {
    agent_ledger_t *l = w->data;
    l->batch_failed = 0;
    l->batch_rc = common_db_begin(l->wdb, NULL);
    if (l->batch_rc) return;
    for (ledger_op_t *op = l->batch; op; op = op->next)
        if (exec_op(l->wdb, op, NULL, NULL)) l->batch_failed++;
    l->batch_rc = common_db_commit(l->wdb, NULL);
    if (l->batch_rc) common_db_rollback(l->wdb);
}

static void flush(agent_ledger_t *l);

static void after_work_cb(uv_work_t *w, int status) {
    agent_ledger_t *l = w->data;
    l->busy = 0;
    l->batches++;
    if (status || l->batch_rc) {
        l->writes_lost += l->batch_n;
        LOG_ERROR(l->env ? l->env->log : NULL, "ledger", "a batch of %zu ledger writes failed: %s",
                  l->batch_n, status ? uv_strerror(status) : sqlite3_errmsg(l->wdb));
    } else if (l->batch_failed) {
        l->writes_lost += l->batch_failed;
        LOG_ERROR(l->env ? l->env->log : NULL, "ledger", "%zu of %zu ledger writes failed",
                  l->batch_failed, l->batch_n);
    }
    op_free(l->batch);
    l->batch = NULL;
    l->batch_n = 0;
    flush(l); /* what queued during the commit goes in the next one */
}

static void flush(agent_ledger_t *l) {
    if (l->busy || !l->q) return;
    l->batch = l->q;
    l->batch_n = 0;
    for (ledger_op_t *op = l->q; op; op = op->next) l->batch_n++;
    l->q = NULL;
    l->q_tail = &l->q;
    l->work.data = l;
    int rc = uv_queue_work(l->loop, &l->work, work_cb, after_work_cb);
    if (rc) { /* cannot happen with a valid loop; write on this thread rather than lose it */
        ledger_op_t *b = l->batch;
        l->batch = NULL;
        if (common_db_begin(l->db, l->env) == 0) {
            for (ledger_op_t *op = b; op; op = op->next) exec_op(l->db, op, l->env, NULL);
            if (common_db_commit(l->db, l->env)) common_db_rollback(l->db);
        }
        op_free(b);
        return;
    }
    l->busy = 1;
}

int agent_ledger_async(agent_ledger_t *l, uv_loop_t *loop) {
    if (l->loop) return COMMON_ESTATE;
    int64_t max = 0;
    if (common_db_query_i64(l->db, "SELECT COALESCE(MAX(row), 0) FROM jobs", &max, l->env))
        return COMMON_EDB;
    int rc = common_db_open(l->path, l->env, &l->wdb);
    if (rc) return rc;
    l->next_row = max;
    l->loop = loop;
    return 0;
}

size_t agent_ledger_pending(const agent_ledger_t *l) {
    size_t n = l->busy ? l->batch_n : 0;
    for (const ledger_op_t *op = l->q; op; op = op->next) n++;
    return n;
}

void agent_ledger_close(agent_ledger_t *l) {
    if (!l) return;
    /* writes made after the loop's last run (e.g. jobs ended while freeing the server):
     * let the worker finish, bounded; the work request keeps the loop from blocking forever */
    for (int i = 0; l->busy && i < 10000; i++) uv_run(l->loop, UV_RUN_ONCE);
    if (l->busy) { /* the worker still owns the batch and the connection: leak, not UAF */
        LOG_ERROR(l->env ? l->env->log : NULL, "ledger", "closed with a commit in flight");
        return;
    }
    if (l->q) { /* queued after the loop stopped: write them here */
        if (common_db_begin(l->db, l->env) == 0) {
            for (ledger_op_t *op = l->q; op; op = op->next) exec_op(l->db, op, l->env, NULL);
            if (common_db_commit(l->db, l->env)) common_db_rollback(l->db);
        }
        op_free(l->q);
    }
    common_db_close(l->wdb);
    common_db_close(l->db);
    free(l->path);
    free(l);
}

/* Run @p op now (synchronous mode) or queue it for the next group commit (async mode). */
static int submit(agent_ledger_t *l, ledger_op_t *op, int64_t *rowid) {
    if (!l->loop) {
        int rc = exec_op(l->db, op, l->env, rowid);
        op->next = NULL;
        op_free(op);
        return rc;
    }
    op->next = NULL;
    *l->q_tail = op;
    l->q_tail = &op->next;
    flush(l);
    return 0;
}

static ledger_op_t *op_new(int kind, const char *t1, const char *t2, int nint,
                           const int64_t *ints) {
    ledger_op_t *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    op->kind = kind;
    op->nint = nint;
    memcpy(op->ints, ints, (size_t)nint * sizeof *ints);
    if ((t1 && !(op->t1 = strdup(t1))) || (t2 && !(op->t2 = strdup(t2)))) {
        op_free(op);
        return NULL;
    }
    return op;
}

int agent_ledger_job_start(agent_ledger_t *l, const char *job_id, const char *peer_prefix,
                           uint32_t kind, uint64_t sats_per_chunk, uint64_t chunks_per_payment,
                           int64_t *row) {
    if (sats_per_chunk > INT64_MAX || chunks_per_payment > INT64_MAX) return COMMON_ERANGE;
    int64_t v[5] = {l->loop ? l->next_row + 1 : 0, kind, (int64_t)sats_per_chunk,
                    (int64_t)chunks_per_payment, (int64_t)common_unix_ms(l->env)};
    ledger_op_t *op = op_new(OP_START, job_id, peer_prefix ? peer_prefix : "", 5, v);
    if (!op) return COMMON_ENOMEM;
    op->has_row = l->loop != NULL;
    if (l->loop) {
        *row = ++l->next_row;
        return submit(l, op, NULL);
    }
    return submit(l, op, row);
}

int agent_ledger_job_paid(agent_ledger_t *l, int64_t row, uint64_t sats) {
    if (sats > INT64_MAX) return COMMON_ERANGE;
    int64_t v[2] = {(int64_t)sats, row};
    ledger_op_t *op = op_new(OP_PAID, NULL, NULL, 2, v);
    return op ? submit(l, op, NULL) : COMMON_ENOMEM;
}

int agent_ledger_job_chunks(agent_ledger_t *l, int64_t row, uint64_t chunks) {
    if (chunks > INT64_MAX) return COMMON_ERANGE;
    int64_t v[2] = {(int64_t)chunks, row};
    ledger_op_t *op = op_new(OP_CHUNKS, NULL, NULL, 2, v);
    return op ? submit(l, op, NULL) : COMMON_ENOMEM;
}

int agent_ledger_job_end(agent_ledger_t *l, int64_t row, const char *reason) {
    int64_t v[2] = {(int64_t)common_unix_ms(l->env), row};
    ledger_op_t *op = op_new(OP_END, reason, NULL, 2, v);
    return op ? submit(l, op, NULL) : COMMON_ENOMEM;
}

int agent_ledger_close_orphans(agent_ledger_t *l, uint64_t *closed) {
    if (l->loop) return COMMON_ESTATE; /* a start-up step, before agent_ledger_async */
    int64_t v[1] = {(int64_t)common_unix_ms(l->env)};
    ledger_op_t *op = op_new(OP_ORPHANS, NULL, NULL, 1, v);
    if (!op) return COMMON_ENOMEM;
    int rc = submit(l, op, NULL);
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
