/* SPDX-License-Identifier: MIT */
/**
 * @file agent_pipe_batch.h
 * @brief Pipeline batcher (pure): accumulates the text a sub-provider streams into batches of
 *        about SUB_BATCH_SIZE characters (Unicode code points) for the local model.
 *
 * Cutting rule for a full batch (the buffer holds at least @p batch_chars characters): the
 * cut is at a character boundary at most @p batch_chars characters in, chosen as
 *   1. the last sentence end in the second half of that window: after a whitespace run that
 *      follows '.', '!', '?' or ':' (or after a newline run, or right after a CJK full stop
 *      。！？), else
 *   2. the last whitespace in the second half of the window, else
 *   3. exactly @p batch_chars characters in (never inside a UTF-8 sequence).
 * At the end (final = 1) the remainder is flushed, whatever its length. The concatenation of
 * all batches is exactly the bytes fed (nothing dropped, nothing added, order kept).
 *
 * Input that ends inside a multibyte sequence is held until the sequence completes; invalid
 * bytes count as one character each. The buffer is bounded by @p max_bytes (feed fails with
 * COMMON_ETOOBIG beyond it).
 *
 * Not thread-safe. No I/O, no clock.
 */
#ifndef SWARMDVM_AGENT_PIPE_BATCH_H
#define SWARMDVM_AGENT_PIPE_BATCH_H

#include <stddef.h>

#ifndef AGENT_PIPE_MAX_BUFFER
#define AGENT_PIPE_MAX_BUFFER (4u << 20) /* text held by one batcher at most */
#endif

typedef struct agent_pipe_batch agent_pipe_batch_t;

/** @brief @p batch_chars >= 1; @p max_bytes 0: AGENT_PIPE_MAX_BUFFER. NULL on bad args/OOM. */
agent_pipe_batch_t *agent_pipe_batch_new(size_t batch_chars, size_t max_bytes);
void agent_pipe_batch_free(agent_pipe_batch_t *b);

/** @brief Append text. @return 0, COMMON_ETOOBIG (buffer full; nothing taken), COMMON_ENOMEM. */
int agent_pipe_batch_feed(agent_pipe_batch_t *b, const char *text, size_t len);

/**
 * @brief Take the next batch if one is ready (@p final: the input has ended, flush the rest).
 * @return 1 and *out (malloc'd, NUL-terminated, caller frees) / *outlen, 0 when none is
 * ready, COMMON_ENOMEM.
 */
int agent_pipe_batch_next(agent_pipe_batch_t *b, int final, char **out, size_t *outlen);

/**
 * @brief Take a short batch now (time-based flush while the sub-provider is slow): the held
 * text up to its last sentence end, else its last whitespace, else all of it (only whole
 * characters; an incomplete trailing sequence stays). @return 1 and *out / *outlen as
 * agent_pipe_batch_next, 0 when nothing whole is held, COMMON_ENOMEM.
 */
int agent_pipe_batch_partial(agent_pipe_batch_t *b, char **out, size_t *outlen);

/** @brief Bytes held, not yet returned as a batch. */
size_t agent_pipe_batch_pending(const agent_pipe_batch_t *b);

#endif
