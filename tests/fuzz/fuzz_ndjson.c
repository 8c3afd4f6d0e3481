/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the NDJSON framer and the message codec.
 *
 * The first input byte picks the feed piece size (1..256), so splits vary; the rest is the
 * byte stream. For every line the framer yields:
 *   - it is non-empty, holds no '\n', is valid UTF-8 and within the limit;
 *   - if it decodes, encode must succeed and give one '\n'-terminated line, that line must
 *     decode to an equal message, and encoding that again must give the same bytes
 *     (decode -> encode -> decode -> encode is a fixed point).
 * Any mismatch aborts. The framer runs with a small limit so the over-long path is hit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "common/common_utf8.h"
#include "protocol/proto_conn.h"
#include "protocol/proto_msg.h"
#include "protocol/proto_ndjson.h"

#define FUZZ_MAX_LINE 4096

static void check_line(const char *line, size_t len) {
    if (len == 0 || len > FUZZ_MAX_LINE || memchr(line, '\n', len) || line[len] != '\0' ||
        !common_utf8_valid(line, len))
        abort();
    proto_msg_t m;
    char why[128];
    int rc = proto_msg_decode(line, len, &m, why, sizeof why);
    if (rc != 0) {
        if (rc == PROTO_EUNKNOWN_TYPE && !m.type_str) abort();
        if (rc != PROTO_EUNKNOWN_TYPE && m.type_str) abort();
        proto_msg_free(&m);
        return;
    }
    common_buf_t a = {0}, b = {0};
    if (proto_msg_encode(&m, &a) != 0) abort();
    if (a.len < 2 || a.data[a.len - 1] != '\n' || memchr(a.data, '\n', a.len - 1)) abort();
    proto_msg_t m2;
    if (proto_msg_decode((const char *)a.data, a.len - 1, &m2, why, sizeof why) != 0) abort();
    if (!proto_msg_equal(&m, &m2)) abort();
    if (proto_msg_encode(&m2, &b) != 0 || b.len != a.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    if (m.type == PROTO_MSG_CHUNK && !m.chunk.has_seq) {
        /* The fast chunk encoder must agree with the general one. */
        common_buf_t c = {0};
        if (proto_encode_chunk(&c, m.id, m.chunk.data, strlen(m.chunk.data), -1) != 0 ||
            c.len != a.len || memcmp(c.data, a.data, a.len) != 0)
            abort();
        common_buf_free(&c);
    }
    proto_msg_free(&m);
    proto_msg_free(&m2);
    common_buf_free(&a);
    common_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t piece = (size_t)data[0] + 1;
    data++;
    size--;
    proto_ndjson_t *fr = proto_ndjson_new(FUZZ_MAX_LINE, NULL);
    if (!fr) return 0;
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (proto_ndjson_feed(fr, data + off, n) != 0) abort();
        if (proto_ndjson_buffered(fr) > size + 1) abort();
        const char *line;
        size_t len;
        int rc;
        while ((rc = proto_ndjson_next(fr, &line, &len)) != 0) {
            if (rc == 1)
                check_line(line, len);
            else if (rc != PROTO_ELINE_TOO_LONG && rc != COMMON_EUTF8)
                abort();
        }
    }
    /* The per-connection rules over the same bytes: replies are single lines, CLOSE ends. */
    proto_ndjson_t *fc = proto_ndjson_new(FUZZ_MAX_LINE, NULL);
    if (fc && proto_ndjson_feed(fc, data, size) == 0) {
        common_buf_t reply = {0};
        for (;;) {
            proto_msg_t cm;
            size_t before = reply.len;
            int act = proto_conn_next(fc, &cm, &reply);
            if (act < 0) abort();
            if (reply.len != before && (reply.data[reply.len - 1] != '\n' ||
                                        memchr(reply.data + before, '\n', reply.len - before - 1)))
                abort();
            if (act == PROTO_LINE_MSG) proto_msg_free(&cm);
            if (act == PROTO_LINE_NONE || act == PROTO_LINE_CLOSE) break;
        }
        common_buf_free(&reply);
    }
    proto_ndjson_free(fc);
    /* Also decode the whole input as one line (decoder without the framer). */
    proto_msg_t m;
    if (proto_msg_decode((const char *)data, size, &m, NULL, 0) == 0 && size <= FUZZ_MAX_LINE) {
        common_buf_t a = {0};
        if (proto_msg_encode(&m, &a) != 0) abort();
        common_buf_free(&a);
    }
    proto_msg_free(&m);
    proto_ndjson_free(fr);
    return 0;
}
