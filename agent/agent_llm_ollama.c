/* SPDX-License-Identifier: MIT */
/* Ollama native API: request bodies for /api/generate and /api/chat, the /api/tags model
 * check and /api/pull progress. Stream parsing lives in agent_llm_core.c. */
#include "agent/agent_llm_driver.h"
#include "common/common_err.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static char *join_url(const char *base, const char *path) {
    size_t a = strlen(base), b = strlen(path);
    char *u = malloc(a + b + 1);
    if (!u) return NULL;
    memcpy(u, base, a);
    memcpy(u + a, path, b + 1);
    return u;
}

/* keep_alive: integers (seconds, negative = forever) go as JSON numbers; Ollama parses
 * strings as Go durations only ("-1" as a string would be a 400). */
static void add_keep_alive(cJSON *o, const char *ka) {
    if (!ka || !*ka) return;
    const char *s = ka + (ka[0] == '-');
    int digits = *s != '\0';
    for (; *s; s++) digits &= (*s >= '0' && *s <= '9');
    if (digits)
        cJSON_AddNumberToObject(o, "keep_alive", strtod(ka, NULL));
    else
        cJSON_AddStringToObject(o, "keep_alive", ka);
}

int agent_llm_ollama_build(const agent_llm_config_t *cfg, const agent_llm_params_t *p,
                           uint64_t max_tokens, agent_llm_request_t *out) {
    memset(out, 0, sizeof *out);
    int chat = p->nmessages > 0;
    cJSON *o = cJSON_CreateObject();
    if (!o) return COMMON_ENOMEM;
    cJSON_AddStringToObject(o, "model", cfg->model);
    if (chat) {
        cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
        if (p->system) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "system");
            cJSON_AddStringToObject(m, "content", p->system);
            cJSON_AddItemToArray(msgs, m);
        }
        for (size_t i = 0; i < p->nmessages; i++) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", p->messages[i].role);
            cJSON_AddStringToObject(m, "content", p->messages[i].content);
            cJSON_AddItemToArray(msgs, m);
        }
    } else {
        cJSON_AddStringToObject(o, "prompt", p->prompt);
        if (p->system) cJSON_AddStringToObject(o, "system", p->system);
    }
    cJSON_AddBoolToObject(o, "stream", 1);
    add_keep_alive(o, cfg->keep_alive);
    cJSON *opt = cJSON_AddObjectToObject(o, "options");
    /* Always finite: the hard cost cap of a paid job. */
    cJSON_AddNumberToObject(opt, "num_predict", (double)max_tokens);
    if (p->has_temperature) cJSON_AddNumberToObject(opt, "temperature", p->temperature);
    if (p->has_seed) cJSON_AddNumberToObject(opt, "seed", (double)p->seed);
    if (p->nstop) {
        cJSON *st = cJSON_AddArrayToObject(opt, "stop");
        for (size_t i = 0; i < p->nstop; i++)
            cJSON_AddItemToArray(st, cJSON_CreateString(p->stop[i]));
    }
    out->body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    out->url = join_url(cfg->base_url, chat ? "/api/chat" : "/api/generate");
    out->chat = chat;
    if (!out->body || !out->url) {
        free(out->body);
        free(out->url);
        memset(out, 0, sizeof *out);
        return COMMON_ENOMEM;
    }
    return 0;
}

char *agent_llm_ollama_tags_url(const agent_llm_config_t *cfg) {
    return join_url(cfg->base_url, "/api/tags");
}

static void avail_add(char *avail, size_t cap, const char *name) {
    size_t n = strlen(avail);
    if (n + 1 >= cap) return;
    snprintf(avail + n, cap - n, "%s%s", n ? ", " : "", name);
}

/* Exact match, with Ollama's default tag: "llama3.2" is "llama3.2:latest". (The doc's
 * looser "starts with m:" would accept llama3.2:1b for llama3.2, which then 404s.) */
int agent_llm_model_name_eq(const char *name, const char *model) {
    if (strcmp(name, model) == 0) return 1;
    size_t m = strlen(model);
    if (strchr(model, ':') == NULL && strncmp(name, model, m) == 0 &&
        strcmp(name + m, ":latest") == 0)
        return 1;
    if (strchr(name, ':') == NULL && strncmp(model, name, strlen(name)) == 0 &&
        strcmp(model + strlen(name), ":latest") == 0)
        return 1;
    return 0;
}

int agent_llm_ollama_has_model(const char *body, size_t len, const char *model, char *avail,
                               size_t cap) {
    if (cap) avail[0] = '\0';
    cJSON *o = cJSON_ParseWithLength(body, len);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(o, "models");
    if (!cJSON_IsArray(models)) {
        cJSON_Delete(o);
        return COMMON_EJSON;
    }
    int found = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, models) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
        if (!cJSON_IsString(n)) n = cJSON_GetObjectItemCaseSensitive(m, "model");
        if (!cJSON_IsString(n)) continue;
        if (agent_llm_model_name_eq(n->valuestring, model)) found = 1;
        if (cap) avail_add(avail, cap, n->valuestring);
    }
    cJSON_Delete(o);
    return found;
}

int agent_llm_pull_line(agent_llm_pull_state_t *st, const char *line, size_t len) {
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return 0;
    }
    int redraw = 0;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsString(e)) {
        st->err = LLM_EMODEL;
        snprintf(st->message, sizeof st->message, "%s", e->valuestring);
        cJSON_Delete(o);
        return 1;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "status");
    if (cJSON_IsString(s)) {
        snprintf(st->status, sizeof st->status, "%s", s->valuestring);
        if (strcmp(s->valuestring, "success") == 0) st->success = 1;
        redraw = 1;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "digest");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "total");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "completed");
    if (cJSON_IsString(d)) {
        size_t i = 0;
        while (i < st->nlayers && strcmp(st->digest[i], d->valuestring) != 0) i++;
        if (i == st->nlayers && i < AGENT_LLM_PULL_MAX_LAYERS) {
            snprintf(st->digest[i], sizeof st->digest[i], "%s", d->valuestring);
            st->nlayers++;
        }
        if (i < st->nlayers) {
            if (cJSON_IsNumber(t) && t->valuedouble >= 0) st->total[i] = (uint64_t)t->valuedouble;
            if (cJSON_IsNumber(c) && c->valuedouble >= 0)
                st->completed[i] = (uint64_t)c->valuedouble;
            redraw = 1;
        }
    }
    cJSON_Delete(o);
    return redraw;
}

void agent_llm_pull_draw(const agent_llm_pull_state_t *st, const char *model, FILE *f) {
    if (!f) return;
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < st->nlayers; i++) {
        total += st->total[i];
        done += st->completed[i] < st->total[i] ? st->completed[i] : st->total[i];
    }
    char bar[31];
    unsigned pct = total ? (unsigned)(done * 100 / total) : 0;
    size_t fill = total ? (size_t)(done * 30 / total) : 0;
    for (size_t i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    if (total)
        fprintf(f, "\rpulling %s [%s] %3u%% %.1f/%.1f GB  %-28.28s", model, bar, pct,
                (double)done / 1e9, (double)total / 1e9, st->status);
    else
        fprintf(f, "\rpulling %s: %-60.60s", model, st->status);
    fflush(f);
}
