/* SPDX-License-Identifier: MIT */
/**
 * @file agent_llm_driver.h
 * @brief Internal: what agent_llm.c (lifecycle, HTTP and timer glue) needs from each backend
 *        (agent_llm_ollama.c, agent_llm_openai.c). Not for other modules.
 */
#ifndef SWARMDVM_AGENT_LLM_DRIVER_H
#define SWARMDVM_AGENT_LLM_DRIVER_H

#include "agent/agent_llm.h"
#include "common/common_codec.h"

typedef struct agent_llm_request {
    char *url;  /* owned */
    char *body; /* owned, NUL-terminated JSON */
    int chat;   /* ollama: /api/chat (1) or /api/generate (0) */
} agent_llm_request_t;

/** Build the generation request. @p max_tokens is already clamped. @return 0 or error. */
int agent_llm_ollama_build(const agent_llm_config_t *cfg, const agent_llm_params_t *p,
                           uint64_t max_tokens, agent_llm_request_t *out);
int agent_llm_openai_build(const agent_llm_config_t *cfg, const agent_llm_params_t *p,
                           uint64_t max_tokens, agent_llm_request_t *out);

/** The model-list URL (owned by the caller). */
char *agent_llm_ollama_tags_url(const agent_llm_config_t *cfg);
char *agent_llm_openai_models_url(const agent_llm_config_t *cfg);

/**
 * @brief Whether the model list in @p body names @p model. @return 1 yes, 0 no,
 * COMMON_EJSON when the body is not a model list. @p avail gets up to @p cap - 1 bytes of
 * the available names, comma-separated.
 */
int agent_llm_ollama_has_model(const char *body, size_t len, const char *model, char *avail,
                               size_t cap);
int agent_llm_openai_has_model(const char *body, size_t len, const char *model, char *avail,
                               size_t cap);

/** @brief Model names equal, "m" being "m:latest" (Ollama's default tag, also in /v1). */
int agent_llm_model_name_eq(const char *name, const char *model);

/** Ollama pull progress: NDJSON lines of /api/pull summed over layers. */
#ifndef AGENT_LLM_PULL_MAX_LAYERS
#define AGENT_LLM_PULL_MAX_LAYERS 32
#endif
typedef struct agent_llm_pull_state {
    char digest[AGENT_LLM_PULL_MAX_LAYERS][80];
    uint64_t total[AGENT_LLM_PULL_MAX_LAYERS], completed[AGENT_LLM_PULL_MAX_LAYERS];
    size_t nlayers;
    char status[80];
    int success;
    int err; /* in-band error seen */
    char message[200];
} agent_llm_pull_state_t;

/** @brief Apply one progress line. @return 1 if the bar should be redrawn. */
int agent_llm_pull_line(agent_llm_pull_state_t *st, const char *line, size_t len);
/** @brief Draw "\r<status> [####....] 42% 0.8/2.0 GB" on @p f. */
void agent_llm_pull_draw(const agent_llm_pull_state_t *st, const char *model, FILE *f);

#endif
