/* SPDX-License-Identifier: MIT */
/* dvm-customer: placeholder until issue #9 lands. It parses its options and prints --help, and says
 * plainly that it does nothing yet. */
#include "common/common_prog.h"

#include <stdio.h>

static const common_opt_t opts[] = {
    COMMON_OPTS_STANDARD,
};

int main(int argc, char **argv) {
    static const common_prog_desc_t desc = {
        .name = "dvm-customer",
        .usage = "dvm-customer [options]",
        .description =
            "Customer: finds a provider on the kind's topic, pays per cycle from a budget, prints "
            "the stream.\n\nNOT IMPLEMENTED YET: this build only parses options (issue #9).",
        .opts = opts,
        .nopts = sizeof opts / sizeof opts[0],
    };
    common_cfg_t cfg;
    common_log_t log;
    int code;
    if (common_prog_start(&desc, argc, argv, &cfg, &log, &code)) return code;
    fprintf(stderr, "dvm-customer: not implemented yet (issue #9); nothing was done.\n");
    common_cfg_free(&cfg);
    return 1;
}
