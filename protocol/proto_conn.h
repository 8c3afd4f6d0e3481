/* SPDX-License-Identifier: MIT */
/**
 * @file proto_conn.h
 * @brief The per-connection line rules of dvm-protocol.md §2, in one place for the agent
 *        and the customer: frame, decode, and decide what to do with each line.
 *
 *     proto_ndjson_feed(fr, bytes, n);
 *     for (;;) {
 *         reply.len = 0;
 *         int act = proto_conn_next(fr, &msg, &reply);
 *         if (act == PROTO_LINE_NONE) break;
 *         if (reply.len) write(reply);             // error{...} for the peer
 *         if (act == PROTO_LINE_CLOSE) { close(); break; }
 *         if (act == PROTO_LINE_MSG) { dispatch(&msg); proto_msg_free(&msg); }
 *     }
 *
 * Rules: an over-long line gets error{code:"bad_request"} and the connection is closed; a
 * line that is not JSON / not UTF-8 gets no reply (as the reference) but counts as bad; a
 * message of a known type with bad fields gets error{id, code:"bad_request", message: why}
 * and counts as bad; more than PROTO_MAX_BAD_LINES bad lines close the connection; unknown
 * types are skipped silently (forward compatibility) and do not count.
 */
#ifndef SWARMDVM_PROTO_CONN_H
#define SWARMDVM_PROTO_CONN_H

#include "common/common_codec.h"
#include "protocol/proto_msg.h"
#include "protocol/proto_ndjson.h"

typedef enum proto_line_action {
    PROTO_LINE_NONE = 0, /* no complete line buffered: read more */
    PROTO_LINE_MSG,      /* @p msg holds a valid message: dispatch it, then proto_msg_free */
    PROTO_LINE_REPLY,    /* a bad line: send what was appended to @p reply, go on */
    PROTO_LINE_CLOSE,    /* protocol violation: send @p reply (if any), then close */
} proto_line_action_t;

/**
 * @brief Take the next line of @p fr and classify it (see above).
 * @param[out] msg valid only for PROTO_LINE_MSG (owned by the caller then).
 * @param[out] reply lines are appended to it (never cleared here).
 * @return a proto_line_action_t, or a negative error (COMMON_ENOMEM).
 */
int proto_conn_next(proto_ndjson_t *fr, proto_msg_t *msg, common_buf_t *reply);

#endif
