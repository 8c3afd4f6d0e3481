/* SPDX-License-Identifier: MIT */
/**
 * @file common_prog.h
 * @brief The start of every program's main(): options, --help, logging, libsodium.
 */
#ifndef SWARMDVM_COMMON_PROG_H
#define SWARMDVM_COMMON_PROG_H

#include "common/common_config.h"
#include "common/common_log.h"

typedef struct common_prog_desc {
    const char *name;        /* "dvm-agent" */
    const char *usage;       /* "dvm-agent [options]" */
    const char *description; /* a paragraph */
    const common_opt_t *opts;
    size_t nopts;
    const char *epilog; /* exit codes, examples; may be NULL */
} common_prog_desc_t;

/* Exit statuses shared by every program (customer adds 3..7 of its own). */
enum { COMMON_EXIT_OK = 0, COMMON_EXIT_INTERNAL = 1, COMMON_EXIT_USAGE = 2 };

/**
 * @brief Parse options, print --help, initialise @p log from --log-level/--log-json and
 * libsodium. The table must include COMMON_OPTS_STANDARD.
 * @return 0 to continue; otherwise the process should exit with *exit_code (0 after
 *         --help, 2 after a usage error, which has been printed to stderr).
 */
int common_prog_start(const common_prog_desc_t *desc, int argc, char **argv, common_cfg_t *cfg,
                      common_log_t *log, int *exit_code);

#endif
