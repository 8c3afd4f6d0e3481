/* SPDX-License-Identifier: MIT */
/**
 * @file common_log.h
 * @brief Leveled logging to stderr, as human lines or as NDJSON (--log-json).
 *
 * A logger is a plain value owned by main() and borrowed by every module through
 * common_env_t; there is no global logger. Secrets are never passed to the logger: callers
 * log key prefixes (common_hex_prefix) and amounts, never keys, tokens' secrets or API keys.
 */
#ifndef SWARMDVM_COMMON_LOG_H
#define SWARMDVM_COMMON_LOG_H

#include <stdio.h>

typedef enum {
    COMMON_LOG_ERROR = 0,
    COMMON_LOG_WARN = 1,
    COMMON_LOG_INFO = 2,
    COMMON_LOG_DEBUG = 3,
    COMMON_LOG_TRACE = 4,
} common_log_level_t;

typedef struct common_log {
    int level;        /* messages above this level are dropped */
    int json;         /* 1: one JSON object per line */
    FILE *out;        /* borrowed; stderr by default */
    const char *prog; /* borrowed, static string: program name */
} common_log_t;

/** @brief Initialise with level INFO, human lines, on @p out (stderr when NULL). */
void common_log_init(common_log_t *log, const char *prog, FILE *out);

/** @brief Parse "error|warn|info|debug|trace" (or 0..4). @return 0 or COMMON_EINVAL. */
int common_log_level_parse(const char *s, int *level);

/** @brief Write one line. Prefer the COMMON_LOG_* macros, which skip formatting when off. */
void common_log_write(const common_log_t *log, int level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define COMMON_LOG_AT(log, lvl, mod, ...)                               \
    do {                                                                \
        const common_log_t *common_log_p_ = (log);                      \
        if (common_log_p_ && (lvl) <= common_log_p_->level)             \
            common_log_write(common_log_p_, (lvl), (mod), __VA_ARGS__); \
    } while (0)
#define LOG_ERROR(log, mod, ...) COMMON_LOG_AT(log, COMMON_LOG_ERROR, mod, __VA_ARGS__)
#define LOG_WARN(log, mod, ...)  COMMON_LOG_AT(log, COMMON_LOG_WARN, mod, __VA_ARGS__)
#define LOG_INFO(log, mod, ...)  COMMON_LOG_AT(log, COMMON_LOG_INFO, mod, __VA_ARGS__)
#define LOG_DEBUG(log, mod, ...) COMMON_LOG_AT(log, COMMON_LOG_DEBUG, mod, __VA_ARGS__)
#define LOG_TRACE(log, mod, ...) COMMON_LOG_AT(log, COMMON_LOG_TRACE, mod, __VA_ARGS__)

#endif
