/* SPDX-License-Identifier: MIT */
/* BENCH-ONLY: per-token "mid hop" recorder of scripts/bench/agent.sh (see agent_bench.h). */
#include "agent/agent_bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common_err.h"

struct agent_bench {
    FILE *f;
    uv_prepare_t prep;
    const agent_gen_t *inner;
    uint64_t stamp[AGENT_BENCH_PENDING], piece[AGENT_BENCH_PENDING];
    size_t npend, recorded, dropped;
};

static void on_prepare(uv_prepare_t *h) {
    agent_bench_t *b = h->data;
    if (!b->npend) return;
    uint64_t now = uv_hrtime();
    for (size_t i = 0; i < b->npend; i++)
        fprintf(b->f, "%llu %llu %llu\n", (unsigned long long)b->stamp[i],
                (unsigned long long)b->piece[i], (unsigned long long)now);
    b->recorded += b->npend;
    b->npend = 0;
}

agent_bench_t *agent_bench_new(uv_loop_t *loop, const char *path, int *err) {
    agent_bench_t *b = calloc(1, sizeof *b);
    if (!b) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    b->f = fopen(path, "w");
    if (!b->f) {
        free(b);
        *err = COMMON_EIO;
        return NULL;
    }
    uv_prepare_init(loop, &b->prep);
    b->prep.data = b;
    uv_prepare_start(&b->prep, on_prepare);
    uv_unref((uv_handle_t *)&b->prep); /* never keeps the loop alive */
    return b;
}

void agent_bench_piece(agent_bench_t *b, const char *text, size_t len) {
    uint64_t now = uv_hrtime(), v = 0;
    size_t i = 0;
    while (i < len && i < 20 && text[i] >= '0' && text[i] <= '9')
        v = v * 10 + (uint64_t)(text[i++] - '0');
    if (i == 0 || b->npend == AGENT_BENCH_PENDING) {
        b->dropped++;
        return;
    }
    b->stamp[b->npend] = v;
    b->piece[b->npend++] = now;
}

void agent_bench_counts(const agent_bench_t *b, size_t *recorded, size_t *dropped) {
    *recorded = b->recorded;
    *dropped = b->dropped;
}

static void closed_cb(uv_handle_t *h) {
    free(h->data);
}

void agent_bench_free(agent_bench_t *b) {
    if (!b) return;
    on_prepare(&b->prep);
    fclose(b->f);
    b->f = NULL;
    uv_close((uv_handle_t *)&b->prep, closed_cb);
}

/* ---- generator decorator ------------------------------------------------------------ */

typedef struct tramp {
    agent_bench_t *b;
    agent_gen_cbs_t cbs;
    void *ud;
} tramp_t;

static void t_delta(void *ud, const char *text, size_t len) {
    tramp_t *t = ud;
    agent_bench_piece(t->b, text, len);
    t->cbs.on_delta(t->ud, text, len);
}

static void t_end(void *ud, const agent_llm_result_t *res) {
    tramp_t *t = ud;
    t->cbs.on_end(t->ud, res);
    free(t);
}

static void *b_start(void *self, const agent_llm_params_t *params, const agent_gen_cbs_t *cbs,
                     void *ud, int *err) {
    agent_bench_t *b = self;
    tramp_t *t = calloc(1, sizeof *t);
    if (!t) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    t->b = b;
    t->cbs = *cbs;
    t->ud = ud;
    agent_gen_cbs_t mine = {.on_delta = t_delta, .on_end = t_end};
    void *h = b->inner->ops->start(b->inner->self, params, &mine, t, err);
    if (!h) free(t);
    return h;
}

static void b_cancel(void *self, void *handle) {
    agent_bench_t *b = self;
    b->inner->ops->cancel(b->inner->self, handle);
}

static const agent_gen_ops_t bench_ops = {.start = b_start, .cancel = b_cancel};

void agent_bench_gen(agent_bench_t *b, const agent_gen_t *inner, agent_gen_t *out) {
    b->inner = inner;
    out->ops = &bench_ops;
    out->self = b;
}
