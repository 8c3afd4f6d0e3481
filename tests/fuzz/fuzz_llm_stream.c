/* SPDX-License-Identifier: MIT */
/* Fuzz the LLM stream path minus the network: the first byte picks the parser (Ollama
 * generate/chat NDJSON or OpenAI SSE) and a split pattern; the rest is the byte stream,
 * fed in pieces through the bounded line splitter, the parser, the UTF-8 stage and the
 * coalescer. Invariants: every delta is valid UTF-8; the concatenation of deltas is valid;
 * nothing is emitted after a terminal event. */
#include "agent/agent_llm_core.h"
#include "common/common_utf8.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3, step = 1 + (data[0] >> 2);
    data++, size--;
    agent_llm_lines_t lines;
    agent_llm_lines_init(&lines, 4096);
    agent_llm_ollama_parser_t op;
    agent_llm_ollama_parser_init(&op, mode == 1);
    agent_llm_sse_parser_t sp;
    agent_llm_sse_parser_init(&sp);
    agent_llm_utf8_t u = {{0}, 0};
    agent_llm_coalesce_t co;
    agent_llm_coalesce_init(&co, 7, 0);
    common_buf_t out = {0}, all = {0};
    int ended = 0;
    for (size_t off = 0; off < size && !ended; off += (size_t)step) {
        size_t n = size - off < (size_t)step ? size - off : (size_t)step;
        if (agent_llm_lines_feed(&lines, (const char *)data + off, n)) break;
        char *line;
        size_t len;
        while (!ended && agent_llm_lines_next(&lines, &line, &len)) {
            agent_llm_ev_t ev;
            if (mode == 2)
                agent_llm_sse_parse_line(&sp, line, len, &ev);
            else
                agent_llm_ollama_parse_line(&op, line, len, &ev);
            if (ev.len) {
                out.len = 0;
                if (agent_llm_utf8_feed(&u, ev.text, ev.len, &out)) abort();
                if (!common_utf8_valid((const char *)out.data, out.len)) abort();
                agent_llm_coalesce_push(&co, (const char *)out.data, out.len, 0);
                if (agent_llm_coalesce_ready(&co, 0)) {
                    const char *t;
                    size_t tn = agent_llm_coalesce_take(&co, &t);
                    if (!common_utf8_valid(t, tn)) abort();
                    common_buf_append(&all, t, tn);
                }
            }
            if (ev.kind == AGENT_LLM_EV_END) ended = 1;
        }
    }
    const char *t;
    size_t tn = agent_llm_coalesce_take(&co, &t);
    common_buf_append(&all, t, tn);
    out.len = 0;
    agent_llm_utf8_finish(&u, &out);
    common_buf_append(&all, out.data, out.len);
    if (!common_utf8_valid((const char *)all.data, all.len)) abort();
    common_buf_free(&out);
    common_buf_free(&all);
    agent_llm_coalesce_free(&co);
    agent_llm_sse_parser_free(&sp);
    agent_llm_ollama_parser_free(&op);
    agent_llm_lines_free(&lines);
    return 0;
}
