/* SPDX-License-Identifier: MIT */
/**
 * @file common_db.h
 * @brief sqlite helpers: open in WAL with synchronous=FULL, schema migrations keyed by
 *        PRAGMA user_version, and small prepared-statement conveniences.
 *
 * Money rule: callers write to the database (and COMMIT) before they talk to a mint. Every
 * helper here returns 0 or COMMON_EDB and logs sqlite's message through the env's logger.
 */
#ifndef SWARMDVM_COMMON_DB_H
#define SWARMDVM_COMMON_DB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"

/**
 * @brief Open (creating) @p path with mode 0600, WAL, synchronous=FULL, foreign keys on,
 * busy timeout 5 s. @p db receives an owned handle: close with common_db_close.
 */
int common_db_open(const char *path, const common_env_t *env, sqlite3 **db);
void common_db_close(sqlite3 *db);

/**
 * @brief Apply migrations[i] for every i >= user_version, each in its own transaction that
 * also bumps user_version to i+1. A database newer than the code is refused (COMMON_ESTATE).
 */
int common_db_migrate(sqlite3 *db, const char *const *migrations, size_t n,
                      const common_env_t *env);

/** @brief Execute SQL without results. */
int common_db_exec(sqlite3 *db, const char *sql, const common_env_t *env);

/** @brief BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int common_db_begin(sqlite3 *db, const common_env_t *env);
int common_db_commit(sqlite3 *db, const common_env_t *env);
void common_db_rollback(sqlite3 *db);

/** @brief Prepare a statement (owned: sqlite3_finalize it). */
int common_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const common_env_t *env);

/** @brief Run a query that yields one integer (e.g. SUM, COUNT); *out = 0 on NULL/no row. */
int common_db_query_i64(sqlite3 *db, const char *sql, int64_t *out, const common_env_t *env);

#endif
