/* SPDX-License-Identifier: MIT */
/**
 * @file agent_gen.h
 * @brief The generation interface the agent runtime drives: start a streamed generation,
 *        cancel it. agent_gen_llm() adapts an agent_llm_t (Ollama / OpenAI-compatible);
 *        tests plug in their own generator.
 *
 * Contract of an implementation: start() returns a handle or NULL (no callback then);
 * on_delta(text) zero or more times, then on_end exactly once, never from inside start();
 * cancel() makes on_end(AGENT_LLM_STOPPED) arrive before cancel returns or, when called from
 * inside on_delta, right after on_delta returns (agent_llm's rule). The handle is valid
 * until on_end returns.
 */
#ifndef SWARMDVM_AGENT_GEN_H
#define SWARMDVM_AGENT_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent_llm.h"

typedef struct agent_gen_cbs {
    void (*on_delta)(void *ud, const char *text, size_t len);
    void (*on_end)(void *ud, const agent_llm_result_t *res);
} agent_gen_cbs_t;

typedef struct agent_gen_ops {
    void *(*start)(void *self, const agent_llm_params_t *params, const agent_gen_cbs_t *cbs,
                   void *ud, int *err);
    void (*cancel)(void *self, void *handle);
} agent_gen_ops_t;

typedef struct agent_gen {
    const agent_gen_ops_t *ops;
    void *self;
} agent_gen_t;

/** @brief Wrap @p llm (borrowed, must outlive the agent_gen_t). */
void agent_gen_llm(agent_llm_t *llm, agent_gen_t *out);

#endif
