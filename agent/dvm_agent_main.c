/* SPDX-License-Identifier: MIT */
/* dvm-agent: placeholder until issue #9 lands. It parses its options and prints --help, and says
 * plainly that it does nothing yet. */
#include "common/common_prog.h"

#include <stdio.h>

static const common_opt_t opts[] = {
    COMMON_OPTS_STANDARD,
};

int main(int argc, char **argv) {
    static const common_prog_desc_t desc = {
        .name = "dvm-agent",
        .usage = "dvm-agent [options]",
        .description =
            "Provider: sells LLM output chunk by chunk for Cashu on the kind's Hyperswarm "
            "topic.\n\nNOT IMPLEMENTED YET: this build only parses options (issue #9).",
        .opts = opts,
        .nopts = sizeof opts / sizeof opts[0],
    };
    common_cfg_t cfg;
    common_log_t log;
    int code;
    if (common_prog_start(&desc, argc, argv, &cfg, &log, &code)) return code;
    fprintf(stderr, "dvm-agent: not implemented yet (issue #9); nothing was done.\n");
    common_cfg_free(&cfg);
    return 1;
}
