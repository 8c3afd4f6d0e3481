/* SPDX-License-Identifier: MIT */
#include "common/common_prog.h"
#include "common/common_err.h"

#include <sodium.h>
#include <stdio.h>

int common_prog_start(const common_prog_desc_t *desc, int argc, char **argv, common_cfg_t *cfg,
                      common_log_t *log, int *exit_code) {
    char err[512];
    int rc = common_cfg_parse(cfg, desc->opts, desc->nopts, argc, argv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", desc->name, err);
        fprintf(stderr, "Try '%s --help'.\n", desc->name);
        *exit_code = COMMON_EXIT_USAGE;
        return 1;
    }
    if (cfg->help) {
        common_cfg_help(stdout, desc->usage, desc->description, desc->opts, desc->nopts,
                        desc->epilog);
        common_cfg_free(cfg);
        *exit_code = COMMON_EXIT_OK;
        return 1;
    }
    common_log_init(log, desc->name, stderr);
    const char *lvl = common_cfg_str(cfg, "log-level");
    if (lvl && common_log_level_parse(lvl, &log->level)) {
        fprintf(stderr, "%s: --log-level: unknown level '%s' (error, warn, info, debug, trace)\n",
                desc->name, lvl);
        common_cfg_free(cfg);
        *exit_code = COMMON_EXIT_USAGE;
        return 1;
    }
    log->json = common_cfg_bool(cfg, "log-json");
    if (sodium_init() < 0) {
        fprintf(stderr, "%s: libsodium failed to initialise\n", desc->name);
        common_cfg_free(cfg);
        *exit_code = COMMON_EXIT_INTERNAL;
        return 1;
    }
    return 0;
}
