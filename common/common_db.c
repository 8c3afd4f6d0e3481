/* SPDX-License-Identifier: MIT */
#include "common/common_db.h"
#include "common/common_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int db_fail(sqlite3 *db, const char *what, const common_env_t *env) {
    LOG_ERROR(env ? env->log : NULL, "db", "%s: %s", what, db ? sqlite3_errmsg(db) : "?");
    return COMMON_EDB;
}

int common_db_exec(sqlite3 *db, const char *sql, const common_env_t *env) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        LOG_ERROR(env ? env->log : NULL, "db", "exec failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return COMMON_EDB;
    }
    return 0;
}

int common_db_open(const char *path, const common_env_t *env, sqlite3 **out) {
    *out = NULL;
    /* Create the file 0600 ourselves so sqlite never makes it world-readable. Only when it
     * does not exist yet (O_EXCL): opening and closing a descriptor of an existing database
     * would drop every POSIX lock this process holds on it, also those of another open
     * connection, and a second process could then checkpoint and delete the WAL under it
     * (sqlite.org/howtocorrupt.html, 2.2). */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST) {
        LOG_ERROR(env ? env->log : NULL, "db", "cannot open %s", path);
        return COMMON_EIO;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        int rc = db_fail(db, "open", env);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 5000);
    /* Switching a new file to WAL needs an exclusive lock and sqlite may answer BUSY
     * without waiting (another process opening the same new database): retry, bounded. */
    int jrc = SQLITE_BUSY;
    for (int i = 0; i < 100 && (jrc == SQLITE_BUSY || jrc == SQLITE_LOCKED); i++) {
        if (i) usleep(50 * 1000);
        jrc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    if (jrc != SQLITE_OK ||
        common_db_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", env)) {
        if (jrc != SQLITE_OK)
            LOG_ERROR(env ? env->log : NULL, "db", "cannot switch %s to WAL: %s", path,
                      sqlite3_errmsg(db));
        sqlite3_close(db);
        return COMMON_EDB;
    }
    *out = db;
    return 0;
}

void common_db_close(sqlite3 *db) {
    if (db) sqlite3_close_v2(db);
}

int common_db_query_i64(sqlite3 *db, const char *sql, int64_t *out, const common_env_t *env) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return db_fail(db, sql, env);
    int rc = sqlite3_step(st);
    *out = (rc == SQLITE_ROW) ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(db, sql, env);
    return 0;
}

int common_db_begin(sqlite3 *db, const common_env_t *env) {
    return common_db_exec(db, "BEGIN IMMEDIATE", env);
}

int common_db_commit(sqlite3 *db, const common_env_t *env) {
    return common_db_exec(db, "COMMIT", env);
}

void common_db_rollback(sqlite3 *db) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int common_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const common_env_t *env) {
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return db_fail(db, sql, env);
    return 0;
}

int common_db_migrate(sqlite3 *db, const char *const *migrations, size_t n,
                      const common_env_t *env) {
    /* The version is read inside each write transaction, so two processes opening a new
     * database at once apply every step exactly once (the second waits, then sees it). */
    for (;;) {
        if (common_db_begin(db, env)) return COMMON_EDB;
        int64_t ver = 0;
        if (common_db_query_i64(db, "PRAGMA user_version", &ver, env)) {
            common_db_rollback(db);
            return COMMON_EDB;
        }
        if (ver < 0 || (uint64_t)ver > n) {
            common_db_rollback(db);
            LOG_ERROR(env ? env->log : NULL, "db",
                      "database schema version %lld is newer than this program (%zu)",
                      (long long)ver, n);
            return COMMON_ESTATE;
        }
        if ((uint64_t)ver == n) return common_db_commit(db, env);
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%lld", (long long)ver + 1);
        if (common_db_exec(db, migrations[ver], env) || common_db_exec(db, bump, env) ||
            common_db_commit(db, env)) {
            common_db_rollback(db);
            return COMMON_EDB;
        }
    }
}
