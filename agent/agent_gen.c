/* SPDX-License-Identifier: MIT */
#include "agent/agent_gen.h"

#include <stdlib.h>

#include "common/common_err.h"

/* agent_llm calls back with (gen, ..., ud); the runtime's callbacks take (ud, ...). A small
 * trampoline record carries the runtime's callbacks; it lives until on_end. */
typedef struct tramp {
    agent_gen_cbs_t cbs;
    void *ud;
} tramp_t;

static void t_delta(agent_llm_gen_t *g, const char *text, size_t len, void *ud) {
    (void)g;
    tramp_t *t = ud;
    t->cbs.on_delta(t->ud, text, len);
}

static void t_end(agent_llm_gen_t *g, const agent_llm_result_t *res, void *ud) {
    (void)g;
    tramp_t *t = ud;
    t->cbs.on_end(t->ud, res);
    free(t);
}

static void *llm_start(void *self, const agent_llm_params_t *params, const agent_gen_cbs_t *cbs,
                       void *ud, int *err) {
    tramp_t *t = calloc(1, sizeof *t);
    if (!t) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    t->cbs = *cbs;
    t->ud = ud;
    agent_llm_cbs_t lc = {.on_delta = t_delta, .on_end = t_end, .ud = t};
    agent_llm_gen_t *g = agent_llm_start(self, params, &lc, err);
    if (!g) free(t);
    return g;
}

static void llm_cancel(void *self, void *handle) {
    (void)self;
    agent_llm_cancel(handle);
}

static const agent_gen_ops_t llm_ops = {.start = llm_start, .cancel = llm_cancel};

void agent_gen_llm(agent_llm_t *llm, agent_gen_t *out) {
    out->ops = &llm_ops;
    out->self = llm;
}
