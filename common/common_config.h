/* SPDX-License-Identifier: MIT */
/**
 * @file common_config.h
 * @brief Command-line and environment configuration from one table per program.
 *
 * Precedence: flag > environment variable > default. Flags take `--name=value` or
 * `--name value` (booleans: `--name` or `--name=true|false`). Numbers are parsed strictly:
 * garbage, signs or out-of-range values are an error naming the flag or variable, never a
 * silent default. `--help` text is generated from the same table, so it cannot drift.
 * Arguments that do not start with `--` (and everything after a lone `--`) are positional;
 * a lone `-` is positional (stdin).
 */
#ifndef SWARMDVM_COMMON_CONFIG_H
#define SWARMDVM_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    COMMON_OPT_STR = 0,
    COMMON_OPT_U64 = 1,
    COMMON_OPT_BOOL = 2,
    COMMON_OPT_LIST = 3, /* repeatable flag; the environment form is comma-separated */
} common_opt_type_t;

typedef struct common_opt {
    const char *name; /* long flag without the dashes, e.g. "max-jobs" */
    const char *env;  /* environment variable or NULL */
    common_opt_type_t type;
    const char *def;     /* default, as text, or NULL for none */
    uint64_t min, max;   /* U64 range (inclusive); both 0 means [0, UINT64_MAX] */
    const char *metavar; /* shown in --help, e.g. "N" or "URL" */
    const char *help;    /* one line */
} common_opt_t;

typedef enum {
    COMMON_SRC_NONE = 0,
    COMMON_SRC_DEFAULT = 1,
    COMMON_SRC_ENV = 2,
    COMMON_SRC_FLAG = 3,
} common_src_t;

typedef struct common_cfg_val {
    common_src_t src;
    char *str;    /* owned: the text value (NULL when unset) */
    uint64_t u64; /* parsed U64, or BOOL as 0/1 */
    char **items; /* owned: LIST values */
    size_t nitems;
} common_cfg_val_t;

typedef struct common_cfg {
    const common_opt_t *opts; /* borrowed: the program's static table */
    size_t nopts;
    common_cfg_val_t *vals; /* owned: one per option */
    char **pos;             /* borrowed from argv: positional arguments */
    size_t npos;
    int help; /* 1 when --help or -h was given */
} common_cfg_t;

/**
 * @brief Parse @p argv (argv[0] skipped) and the environment against @p opts.
 * @param err a human message on failure, e.g. "--budget: not a number: 'abc'".
 * @return 0, COMMON_EUSAGE (unknown flag, missing value), COMMON_EINVAL or COMMON_ERANGE
 *         (bad value), COMMON_ENOMEM. On failure @p cfg is freed already.
 */
int common_cfg_parse(common_cfg_t *cfg, const common_opt_t *opts, size_t nopts, int argc,
                     char **argv, char *err, size_t errlen);

/** @brief Same, with a caller-supplied getenv (tests). */
int common_cfg_parse_env(common_cfg_t *cfg, const common_opt_t *opts, size_t nopts, int argc,
                         char **argv, const char *(*get_env)(const char *name, void *ud), void *ud,
                         char *err, size_t errlen);

void common_cfg_free(common_cfg_t *cfg);

/** @brief The value's text, or NULL when unset. Aborts on an unknown option name. */
const char *common_cfg_str(const common_cfg_t *cfg, const char *name);
uint64_t common_cfg_u64(const common_cfg_t *cfg, const char *name);
int common_cfg_bool(const common_cfg_t *cfg, const char *name);
/** @brief LIST values (borrowed until common_cfg_free). @return their number. */
size_t common_cfg_list(const common_cfg_t *cfg, const char *name, char *const **items);
common_src_t common_cfg_source(const common_cfg_t *cfg, const char *name);

/** @brief Print generated help: usage, description, one line per option, epilog. */
void common_cfg_help(FILE *f, const char *usage, const char *description, const common_opt_t *opts,
                     size_t nopts, const char *epilog);

/** Options every program shares: log-level, log-json, data-dir. Append to your table. */
#define COMMON_OPTS_STANDARD                                           \
    {"log-level",                                                      \
     "DVM_LOG_LEVEL",                                                  \
     COMMON_OPT_STR,                                                   \
     "info",                                                           \
     0,                                                                \
     0,                                                                \
     "LEVEL",                                                          \
     "log level: error, warn, info, debug, trace"},                    \
        {"log-json",                                                   \
         "DVM_LOG_JSON",                                               \
         COMMON_OPT_BOOL,                                              \
         "false",                                                      \
         0,                                                            \
         0,                                                            \
         NULL,                                                         \
         "log as NDJSON on stderr instead of human lines"},            \
    {                                                                  \
        "data-dir", "DVM_DATA_DIR", COMMON_OPT_STR, NULL, 0, 0, "DIR", \
            "data directory (default $XDG_DATA_HOME/swarmdvm/<name>)"  \
    }

#endif
