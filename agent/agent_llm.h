/* SPDX-License-Identifier: MIT */
/**
 * @file agent_llm.h
 * @brief LLM generation backends for the provider agent: one interface, two drivers
 *        (Ollama's native NDJSON API and OpenAI-compatible SSE), streaming on the libuv loop
 *        through common_http. See shared/docs/llm-backends.md and agent/README.md.
 *
 * Who calls what:
 *  - main() builds an agent_llm_config_t from its option table (AGENT_LLM_OPTS +
 *    agent_llm_config_from_cfg), creates one agent_llm_t per backend with agent_llm_new,
 *    and runs agent_llm_check once at startup (model present? optional pull).
 *  - The job scheduler calls agent_llm_start per job and receives, on the loop thread:
 *      on_delta(text)  zero or more times: complete UTF-8, never empty, never ending inside a
 *                      multibyte sequence, coalesced by the configured policy;
 *      on_end(result)  exactly once, with a truthful end state:
 *        AGENT_LLM_DONE       the model finished (EOS / stop sequence), final counts known
 *        AGENT_LLM_LENGTH     the max_tokens / num_predict cap was reached
 *        AGENT_LLM_STOPPED    agent_llm_cancel was called (upstream connection closed)
 *        AGENT_LLM_ERROR      HTTP error status, in-band error, timeout, refused, malformed
 *        AGENT_LLM_TRUNCATED  the stream ended without a final line / [DONE]
 *    "done{reason, prompt_tokens, completion_tokens}" and "error{code, message}" of the design
 *    are the two shapes of agent_llm_result_t (see its fields).
 *  - agent_llm_cancel closes the upstream connection at once (Ollama and llama-server stop
 *    generating when the client goes away) and delivers on_end(STOPPED) before it returns,
 *    or, when called from inside this generation's own on_delta, right after on_delta returns.
 *    Text still held back by coalescing is discarded on STOPPED and delivered otherwise.
 *
 * Ownership: agent_llm_t is owned by its creator; it borrows the loop, the common_http_t and
 * the env (all must outlive it). Config strings are copied (the API key into memory wiped on
 * free). A generation handle is owned by the library and is valid from agent_llm_start until
 * on_end returns. agent_llm_free cancels every generation and check WITHOUT callbacks; run the
 * loop once more afterwards so timers can close. Do not call agent_llm_free from inside this
 * library's callbacks (defer it to the next loop turn).
 *
 * A generation that ended is never reused: its connection is closed at the end (done lines
 * are acted on at once; the connection is not kept for another job).
 *
 * Secrets: the API key is sent only as "Authorization: Bearer" and is never logged or put in
 * a message (messages name the base URL and model only).
 *
 * Billing: use prompt_tokens / completion_tokens from the final chunk (has_usage), never the
 * number of deltas.
 */
#ifndef SWARMDVM_AGENT_LLM_H
#define SWARMDVM_AGENT_LLM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common_config.h"
#include "common/common_env.h"
#include "common/common_http.h"

#ifndef AGENT_LLM_MAX_LINE
#define AGENT_LLM_MAX_LINE (1u << 20) /* longest NDJSON line / SSE event accepted */
#endif
#ifndef AGENT_LLM_MAX_ERROR_BODY
#define AGENT_LLM_MAX_ERROR_BODY (64u << 10) /* error bodies kept for the message */
#endif
#ifndef AGENT_LLM_MAX_TOKENS_CAP
#define AGENT_LLM_MAX_TOKENS_CAP 1000000u
#endif

typedef enum {
    AGENT_LLM_BACKEND_OLLAMA = 0,
    AGENT_LLM_BACKEND_OPENAI = 1,
} agent_llm_backend_t;

typedef enum {
    AGENT_LLM_DONE = 0,
    AGENT_LLM_LENGTH = 1,
    AGENT_LLM_STOPPED = 2,
    AGENT_LLM_ERROR = 3,
    AGENT_LLM_TRUNCATED = 4,
} agent_llm_end_t;

/** @brief "done", "length", "stopped", "error", "truncated". */
const char *agent_llm_end_name(agent_llm_end_t end);

typedef struct agent_llm_config {
    agent_llm_backend_t backend;
    const char *base_url; /* e.g. http://127.0.0.1:11434 ; openai: ".../v1" optional */
    const char *api_key;  /* NULL or "": no Authorization header ("ollama" too) */
    const char *model;
    uint64_t max_tokens;             /* cap sent as num_predict / max_tokens on every job (>= 1) */
    uint64_t connect_timeout_ms;     /* 0: 5 000 */
    uint64_t first_token_timeout_ms; /* request sent → first token; long (model load). 0: 300 000 */
    uint64_t idle_timeout_ms;  /* gap between received bytes after the first token. 0: 60 000 */
    const char *keep_alive;    /* ollama keep_alive ("30m", "-1", "0"); NULL: not sent */
    size_t coalesce_min_bytes; /* 0: every chunk is a delta as soon as it arrives */
    uint64_t coalesce_max_delay_ms; /* flush held text after this long (0: only by size) */
    size_t max_line;                /* 0: AGENT_LLM_MAX_LINE */
} agent_llm_config_t;

typedef struct agent_llm_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} agent_llm_msg_t;

typedef struct agent_llm_params {
    /* Either a prompt (ollama: /api/generate; openai: one user message) or chat messages
     * (ollama: /api/chat). Strings are copied into the request; borrowed only during start. */
    const char *prompt;
    const char *system; /* optional system prompt (both forms) */
    const agent_llm_msg_t *messages;
    size_t nmessages;
    uint64_t max_tokens; /* 0: config cap; larger values are clamped to the cap */
    int has_temperature;
    double temperature;
    int has_seed;
    int64_t seed;
    const char *const *stop; /* stop sequences */
    size_t nstop;
} agent_llm_params_t;

typedef struct agent_llm_result {
    agent_llm_end_t end;
    int err;             /* 0 for DONE/LENGTH; COMMON_ECANCELED (STOPPED); LLM_ETRUNCATED;
                            for ERROR: LLM_E* from the HTTP status or in-band error,
                            COMMON_ETIMEDOUT, COMMON_ECONNREFUSED, COMMON_EJSON, ... */
    long http_status;    /* 0 when no response arrived */
    const char *reason;  /* backend's raw reason ("stop", "length", "tool_calls"), or "" */
    const char *message; /* human explanation, never NULL, never contains the API key */
    int has_usage;       /* the final chunk carried token counts */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t total_duration_ns; /* ollama only, 0 otherwise */
    uint64_t eval_duration_ns;  /* ollama only, 0 otherwise */
    uint64_t chunks;            /* content-bearing chunks received */
    uint64_t text_bytes;        /* bytes passed to on_delta */
    uint64_t first_token_ms;    /* start → first token (0 if none) */
    uint64_t elapsed_ms;        /* start → end */
} agent_llm_result_t;

typedef struct agent_llm agent_llm_t;
typedef struct agent_llm_gen agent_llm_gen_t;

typedef struct agent_llm_cbs {
    void (*on_delta)(agent_llm_gen_t *g, const char *text, size_t len, void *ud);
    void (*on_end)(agent_llm_gen_t *g, const agent_llm_result_t *res, void *ud);
    void *ud;
} agent_llm_cbs_t;

/** @brief Create a backend. @p http, @p loop and @p env are borrowed. */
agent_llm_t *agent_llm_new(uv_loop_t *loop, common_http_t *http, const common_env_t *env,
                           const agent_llm_config_t *cfg, int *err);

/** @brief Cancel everything without callbacks, wipe the key, release. */
void agent_llm_free(agent_llm_t *llm);

/** @brief The normalised base URL (no trailing slash), for messages and logs. */
const char *agent_llm_base_url(const agent_llm_t *llm);

/**
 * @brief Start a streamed generation. @return the handle, or NULL with *err set
 * (COMMON_EINVAL for bad params, COMMON_ENOMEM); on NULL no callback is ever called.
 */
agent_llm_gen_t *agent_llm_start(agent_llm_t *llm, const agent_llm_params_t *params,
                                 const agent_llm_cbs_t *cbs, int *err);

/** @brief Stop now: close the upstream connection, on_end(STOPPED). No-op after on_end. */
void agent_llm_cancel(agent_llm_gen_t *g);

/** @brief Generations in flight. */
size_t agent_llm_active(const agent_llm_t *llm);

/* ---- startup check ------------------------------------------------------------------ */

/**
 * @brief Check that the model exists (ollama: GET /api/tags, name == model or model:tag;
 * openai: GET /v1/models, data[].id == model). If it is missing and @p pull is set (ollama
 * only), POST /api/pull and draw a progress bar on @p progress (stderr; NULL: silent).
 * @p on_done gets 0 or an error code with a message naming the base URL and the model:
 * LLM_EMODEL (missing), LLM_EAUTH, COMMON_ECONNREFUSED, COMMON_ETIMEDOUT, LLM_EBACKEND...
 * At most one check at a time. @return 0 or an error (no callback then).
 */
int agent_llm_check(agent_llm_t *llm, int pull, FILE *progress,
                    void (*on_done)(void *ud, int err, const char *message), void *ud);

/* ---- settings ----------------------------------------------------------------------- */

/** Option-table fragment for programs that run a backend. Append to the program's table. */
#define AGENT_LLM_OPTS                                                                            \
    {"backend",                                                                                   \
     "LLM_BACKEND",                                                                               \
     COMMON_OPT_STR,                                                                              \
     "ollama",                                                                                    \
     0,                                                                                           \
     0,                                                                                           \
     "KIND",                                                                                      \
     "LLM backend: ollama (native /api) or openai (OpenAI-compatible /v1/chat/completions)"},     \
        {"llm-url",                                                                               \
         "OLLAMA_BASE_URL",                                                                       \
         COMMON_OPT_STR,                                                                          \
         NULL,                                                                                    \
         0,                                                                                       \
         0,                                                                                       \
         "URL",                                                                                   \
         "LLM base URL (default http://127.0.0.1:11434; openai e.g. https://openrouter.ai/api)"}, \
        {"api-key",                                                                               \
         "LLM_API_KEY",                                                                           \
         COMMON_OPT_STR,                                                                          \
         NULL,                                                                                    \
         0,                                                                                       \
         0,                                                                                       \
         "KEY",                                                                                   \
         "Bearer key for the backend (openai); never logged"},                                    \
        {"model", "OLLAMA_MODEL", COMMON_OPT_STR, "llama3.2", 0, 0, "NAME", "model name"},        \
        {"max-tokens",                                                                            \
         "LLM_MAX_TOKENS",                                                                        \
         COMMON_OPT_U64,                                                                          \
         "1024",                                                                                  \
         1,                                                                                       \
         AGENT_LLM_MAX_TOKENS_CAP,                                                                \
         "N",                                                                                     \
         "cap on generated tokens per job (num_predict / max_tokens, always sent)"},              \
        {"llm-connect-timeout-ms",                                                                \
         "LLM_CONNECT_TIMEOUT_MS",                                                                \
         COMMON_OPT_U64,                                                                          \
         "5000",                                                                                  \
         1,                                                                                       \
         600000,                                                                                  \
         "MS",                                                                                    \
         "LLM connect timeout"},                                                                  \
        {"llm-first-token-timeout-ms",                                                            \
         "LLM_FIRST_TOKEN_TIMEOUT_MS",                                                            \
         COMMON_OPT_U64,                                                                          \
         "300000",                                                                                \
         1,                                                                                       \
         86400000,                                                                                \
         "MS",                                                                                    \
         "LLM first-token timeout (covers model load)"},                                          \
        {"llm-idle-timeout-ms",                                                                   \
         "LLM_IDLE_TIMEOUT_MS",                                                                   \
         COMMON_OPT_U64,                                                                          \
         "60000",                                                                                 \
         1,                                                                                       \
         86400000,                                                                                \
         "MS",                                                                                    \
         "LLM idle timeout between tokens"},                                                      \
        {"llm-keep-alive",                                                                        \
         "LLM_KEEP_ALIVE",                                                                        \
         COMMON_OPT_STR,                                                                          \
         "30m",                                                                                   \
         0,                                                                                       \
         0,                                                                                       \
         "DUR",                                                                                   \
         "ollama keep_alive sent with each job (\"30m\", \"-1\" forever, \"0\" unload)"},         \
        {"llm-coalesce-bytes",                                                                    \
         "LLM_COALESCE_BYTES",                                                                    \
         COMMON_OPT_U64,                                                                          \
         "0",                                                                                     \
         0,                                                                                       \
         1048576,                                                                                 \
         "N",                                                                                     \
         "hold deltas until N bytes (0: forward every chunk)"},                                   \
        {"llm-coalesce-ms",           "LLM_COALESCE_MS", COMMON_OPT_U64, "50", 0, 60000, "MS",    \
         "flush held deltas after MS"},                                                           \
    {                                                                                             \
        "pull", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL,                                       \
            "pull the model at startup if it is missing (ollama; progress on stderr)"             \
    }

/**
 * @brief Fill @p out from a parsed table that contains AGENT_LLM_OPTS. Strings are borrowed
 * from @p cfg. @return 0, or COMMON_EINVAL with a message in @p err (bad backend or URL).
 */
int agent_llm_config_from_cfg(const common_cfg_t *cfg, agent_llm_config_t *out, char *err,
                              size_t errlen);

#endif
