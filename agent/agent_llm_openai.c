/* SPDX-License-Identifier: MIT */
/* OpenAI-compatible API (Ollama /v1, llama-server, OpenRouter): the request body of
 * /v1/chat/completions and the /v1/models check. SSE parsing lives in agent_llm_core.c. */
#include "agent/agent_llm_driver.h"
#include "common/common_err.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* {base}/v1/<path>, or {base}/<path> when the base already ends in /v1 (OpenRouter's
 * documented base is https://openrouter.ai/api/v1). */
static char *v1_url(const char *base, const char *path) {
    size_t a = strlen(base);
    int has_v1 = a >= 3 && strcmp(base + a - 3, "/v1") == 0;
    size_t n = a + strlen(path) + 5;
    char *u = malloc(n);
    if (!u) return NULL;
    snprintf(u, n, "%s%s/%s", base, has_v1 ? "" : "/v1", path);
    return u;
}

static void add_msg(cJSON *arr, const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(arr, m);
}

int agent_llm_openai_build(const agent_llm_config_t *cfg, const agent_llm_params_t *p,
                           uint64_t max_tokens, agent_llm_request_t *out) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_CreateObject();
    if (!o) return COMMON_ENOMEM;
    cJSON_AddStringToObject(o, "model", cfg->model);
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    if (p->system) add_msg(msgs, "system", p->system);
    if (p->nmessages) {
        for (size_t i = 0; i < p->nmessages; i++)
            add_msg(msgs, p->messages[i].role, p->messages[i].content);
    } else {
        add_msg(msgs, "user", p->prompt);
    }
    cJSON_AddBoolToObject(o, "stream", 1);
    cJSON *so = cJSON_AddObjectToObject(o, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", 1);
    cJSON_AddNumberToObject(o, "max_tokens", (double)max_tokens);
    if (p->has_temperature) cJSON_AddNumberToObject(o, "temperature", p->temperature);
    if (p->has_seed) cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    if (p->nstop) {
        cJSON *st = cJSON_AddArrayToObject(o, "stop");
        for (size_t i = 0; i < p->nstop; i++)
            cJSON_AddItemToArray(st, cJSON_CreateString(p->stop[i]));
    }
    out->body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    out->url = v1_url(cfg->base_url, "chat/completions");
    out->chat = 1;
    if (!out->body || !out->url) {
        free(out->body);
        free(out->url);
        memset(out, 0, sizeof *out);
        return COMMON_ENOMEM;
    }
    return 0;
}

char *agent_llm_openai_models_url(const agent_llm_config_t *cfg) {
    return v1_url(cfg->base_url, "models");
}

int agent_llm_openai_has_model(const char *body, size_t len, const char *model, char *avail,
                               size_t cap) {
    if (cap) avail[0] = '\0';
    cJSON *o = cJSON_ParseWithLength(body, len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (!cJSON_IsArray(data)) {
        cJSON_Delete(o);
        return COMMON_EJSON;
    }
    int found = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, data) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (!cJSON_IsString(id)) continue;
        if (agent_llm_model_name_eq(id->valuestring, model)) found = 1;
        size_t n = cap ? strlen(avail) : 0;
        if (cap && n + 1 < cap)
            snprintf(avail + n, cap - n, "%s%s", n ? ", " : "", id->valuestring);
    }
    cJSON_Delete(o);
    return found;
}
