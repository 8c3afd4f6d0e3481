/* SPDX-License-Identifier: MIT */
/**
 * @file proto_ndjson.h
 * @brief NDJSON line framer: bytes in, complete UTF-8 lines out (hiredis-style pull API).
 *
 * The transport hands over bytes in whatever pieces it received them; the framer reassembles
 * lines terminated by '\n'. Usage:
 *
 *     proto_ndjson_feed(fr, buf, n);
 *     while ((rc = proto_ndjson_next(fr, &line, &len)) != 0) {
 *         if (rc < 0) { ...bad line (counted with proto_ndjson_note_bad)...; continue; }
 *         ...decode line...
 *     }
 *
 * Guarantees:
 * - A yielded line is complete, never contains '\n', has a trailing '\r' removed, is never
 *   empty, is well-formed UTF-8 (so no multibyte character is ever split, whatever the
 *   feed boundaries) and is NUL-terminated in place.
 * - Empty lines (and lines made only of "\r") are skipped silently.
 * - A line longer than the limit (bytes before '\n', including a trailing '\r') is
 *   reported as PROTO_ELINE_TOO_LONG as soon as its pending part exceeds the limit; its
 *   bytes are discarded as they arrive (never buffered beyond the limit), up to and
 *   including its '\n'. Lines after it are framed normally.
 * - An invalid UTF-8 line is reported as COMMON_EUTF8; it is an error for that line only.
 * Errors are yielded in stream order, between the lines around them.
 *
 * Memory: buffered bytes are at most the unread complete lines plus max_line bytes of the
 * current partial line. Not thread-safe; one framer per connection.
 */
#ifndef SWARMDVM_PROTO_NDJSON_H
#define SWARMDVM_PROTO_NDJSON_H

#include <stddef.h>

/** Default line limit (dvm-protocol.md §2): 1 MiB. */
#ifndef PROTO_MAX_LINE
#define PROTO_MAX_LINE (1024u * 1024u)
#endif

/** More bad lines than this on one connection and the connection is closed (§2). */
#ifndef PROTO_MAX_BAD_LINES
#define PROTO_MAX_BAD_LINES 16u
#endif

typedef struct proto_ndjson proto_ndjson_t;

/**
 * @brief Create a framer.
 * @param max_line longest accepted line in bytes; 0 means PROTO_MAX_LINE.
 * @param[out] err COMMON_ENOMEM on failure (may be NULL).
 */
proto_ndjson_t *proto_ndjson_new(size_t max_line, int *err);

/** @brief Free a framer (NULL is fine). Lines it yielded become invalid. */
void proto_ndjson_free(proto_ndjson_t *fr);

/**
 * @brief Append received bytes (borrowed; copied as needed).
 * Invalidates lines previously returned by proto_ndjson_next().
 * @return 0 or COMMON_ENOMEM (the framer is then unchanged as far as complete lines go;
 *         the caller should close the connection).
 */
int proto_ndjson_feed(proto_ndjson_t *fr, const void *data, size_t len);

/**
 * @brief Take the next complete line.
 * @param[out] line points into the framer's buffer (borrowed; NUL-terminated; valid until the
 *             next proto_ndjson_feed() or proto_ndjson_free()).
 * @param[out] len its length in bytes (without the terminator).
 * @return 1 a line was produced; 0 no complete line buffered; PROTO_ELINE_TOO_LONG or
 *         COMMON_EUTF8 for a rejected line (line/len are then not set).
 */
int proto_ndjson_next(proto_ndjson_t *fr, const char **line, size_t *len);

/** @brief Bytes buffered (unread complete lines plus the pending partial line). */
size_t proto_ndjson_buffered(const proto_ndjson_t *fr);

/** @brief The line limit in use. */
size_t proto_ndjson_max_line(const proto_ndjson_t *fr);

/**
 * @brief Count one unparseable line on this connection (framer error or decode error).
 * @return 1 when the count now exceeds PROTO_MAX_BAD_LINES (close the connection), else 0.
 */
int proto_ndjson_note_bad(proto_ndjson_t *fr);

/** @brief Bad lines counted so far with proto_ndjson_note_bad(). */
unsigned proto_ndjson_bad_count(const proto_ndjson_t *fr);

#endif
