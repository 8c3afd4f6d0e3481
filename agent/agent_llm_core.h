/* SPDX-License-Identifier: MIT */
/**
 * @file agent_llm_core.h
 * @brief Pure cores of the LLM drivers (bytes and time in, events out; no I/O, no loop):
 *        a bounded line splitter, a UTF-8 hold-back stage, a delta coalescer, and the two
 *        stream parsers (Ollama NDJSON lines, OpenAI SSE events). agent_llm.c glues them
 *        to common_http and a uv timer. Exposed for the unit tests and the fuzz target.
 */
#ifndef SWARMDVM_AGENT_LLM_CORE_H
#define SWARMDVM_AGENT_LLM_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent_llm.h"
#include "common/common_codec.h"

/* ---- line splitter ------------------------------------------------------------------ */

/** Splits a byte stream into lines ending in LF (a trailing CR is removed). */
typedef struct agent_llm_lines {
    common_buf_t buf;
    size_t start; /* first unread byte */
    size_t scan;  /* where the search for '\n' continues */
    size_t max_line;
    size_t cur; /* length of the unterminated last line */
} agent_llm_lines_t;

void agent_llm_lines_init(agent_llm_lines_t *l, size_t max_line);
void agent_llm_lines_free(agent_llm_lines_t *l);
/** @brief Append input. @return 0, COMMON_ENOMEM, or COMMON_ETOOBIG when the pending
 *  (unterminated) line exceeds max_line. */
int agent_llm_lines_feed(agent_llm_lines_t *l, const char *data, size_t len);
/** @brief The next complete line (NUL-terminated in place, valid until the next call to
 *  feed or next). @return 1 with *line and *len set, or 0 when none is complete. */
int agent_llm_lines_next(agent_llm_lines_t *l, char **line, size_t *len);
/** @brief Bytes of an unterminated last line still held. */
size_t agent_llm_lines_pending(const agent_llm_lines_t *l);

/* ---- UTF-8 stage -------------------------------------------------------------------- */

/** Holds back an incomplete trailing multibyte sequence; replaces invalid bytes by U+FFFD. */
typedef struct agent_llm_utf8 {
    char hold[4];
    size_t nhold;
} agent_llm_utf8_t;

/** @brief Append the complete, valid part of hold+input to @p out. @return 0 / ENOMEM. */
int agent_llm_utf8_feed(agent_llm_utf8_t *u, const char *in, size_t len, common_buf_t *out);
/** @brief End of stream: anything still held is incomplete and becomes U+FFFD. */
int agent_llm_utf8_finish(agent_llm_utf8_t *u, common_buf_t *out);

/* ---- coalescer ---------------------------------------------------------------------- */

/** Accumulates delta text; ready when >= min_bytes are held or max_delay_ms has passed
 *  since the first held byte. min_bytes 0: ready at once. */
typedef struct agent_llm_coalesce {
    size_t min_bytes;
    uint64_t max_delay_ms;
    common_buf_t buf;
    uint64_t first_ms; /* when the oldest held byte arrived */
} agent_llm_coalesce_t;

void agent_llm_coalesce_init(agent_llm_coalesce_t *c, size_t min_bytes, uint64_t max_delay_ms);
void agent_llm_coalesce_free(agent_llm_coalesce_t *c);
/** @brief Hold text. @return 0 or COMMON_ENOMEM. */
int agent_llm_coalesce_push(agent_llm_coalesce_t *c, const char *text, size_t len, uint64_t now_ms);
/** @brief 1 if the held text should be emitted now. */
int agent_llm_coalesce_ready(const agent_llm_coalesce_t *c, uint64_t now_ms);
/** @brief When the held text becomes due by time (0: nothing held or no time limit). */
uint64_t agent_llm_coalesce_deadline(const agent_llm_coalesce_t *c);
/** @brief Take everything held (pointer valid until the next push); empties the buffer. */
size_t agent_llm_coalesce_take(agent_llm_coalesce_t *c, const char **text);

/* ---- stream parsers ----------------------------------------------------------------- */

typedef enum {
    AGENT_LLM_EV_NONE = 0, /* nothing to do (comment, role chunk, empty content) */
    AGENT_LLM_EV_TEXT = 1, /* text/len: content */
    AGENT_LLM_EV_END = 2,  /* terminal: end, reason, counts; or an error */
} agent_llm_ev_kind_t;

typedef struct agent_llm_ev {
    agent_llm_ev_kind_t kind;
    int any;          /* a data event was seen (role chunk, content, final): "first token" */
    const char *text; /* EV_TEXT (and EV_END when a final line carries text, delivered
                         before the end): parser-owned, valid until the next call */
    size_t len;
    agent_llm_end_t end; /* EV_END */
    int err;             /* EV_END with AGENT_LLM_ERROR */
    char reason[32];
    char message[256];
    int has_usage;
    uint64_t prompt_tokens, completion_tokens, total_duration_ns, eval_duration_ns;
} agent_llm_ev_t;

/** Ollama: one NDJSON line of /api/generate (chat = 0) or /api/chat (chat = 1). */
typedef struct agent_llm_ollama_parser {
    int chat;
    char *text; /* owned copy of the last content */
} agent_llm_ollama_parser_t;

void agent_llm_ollama_parser_init(agent_llm_ollama_parser_t *p, int chat);
void agent_llm_ollama_parser_free(agent_llm_ollama_parser_t *p);
/** @brief Parse one line (without its line end). Empty lines give EV_NONE. */
void agent_llm_ollama_parse_line(agent_llm_ollama_parser_t *p, const char *line, size_t len,
                                 agent_llm_ev_t *ev);

/** OpenAI SSE: lines in, events out ([DONE], data JSON, comments skipped). */
typedef struct agent_llm_sse_parser {
    common_buf_t data; /* data: lines of the current event, joined with "\n" */
    int has_data;
    char finish[32]; /* finish_reason seen, "" if none yet */
    int has_usage;
    uint64_t prompt_tokens, completion_tokens;
    char *text; /* owned copy of the last content */
} agent_llm_sse_parser_t;

void agent_llm_sse_parser_init(agent_llm_sse_parser_t *p);
void agent_llm_sse_parser_free(agent_llm_sse_parser_t *p);
/** @brief Feed one line (without its line end). */
void agent_llm_sse_parse_line(agent_llm_sse_parser_t *p, const char *line, size_t len,
                              agent_llm_ev_t *ev);

/** @brief LLM_E* / COMMON_E* for an HTTP error status (400 → LLM_EBADREQ, 401/403 →
 *  LLM_EAUTH, 402 → LLM_ECREDITS, 404 → LLM_EMODEL, 429 → LLM_ERATELIMIT, 503 →
 *  LLM_EBUSY, 408/504 → COMMON_ETIMEDOUT, else LLM_EBACKEND). */
int agent_llm_status_err(long status);

/** @brief The error text of an error body: {"error":"…"} or {"error":{"message":"…"}}, else
 *  the body itself (printable ASCII/UTF-8, cut to @p cap - 1 bytes). */
void agent_llm_error_text(const char *body, size_t len, char *out, size_t cap);

#endif
