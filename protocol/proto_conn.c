/* SPDX-License-Identifier: MIT */
#include "protocol/proto_conn.h"

#include <stdio.h>
#include <string.h>

#include "common/common_err.h"
#include "protocol/proto_provider.h"

int proto_conn_next(proto_ndjson_t *fr, proto_msg_t *msg, common_buf_t *reply) {
    for (;;) {
        int replied = 0;
        const char *line;
        size_t len;
        int rc = proto_ndjson_next(fr, &line, &len);
        if (rc == 0) return PROTO_LINE_NONE;
        if (rc == PROTO_ELINE_TOO_LONG) {
            char why[64];
            snprintf(why, sizeof why, "line longer than %zu bytes", proto_ndjson_max_line(fr));
            rc = proto_encode_error(reply, NULL, PROTO_CODE_BAD_REQUEST, why);
            return rc ? rc : PROTO_LINE_CLOSE;
        }
        if (rc == 1) {
            char why[128];
            rc = proto_msg_decode(line, len, msg, why, sizeof why);
            if (rc == 0) return PROTO_LINE_MSG;
            int known = msg->type != PROTO_MSG_UNKNOWN;
            char id[sizeof msg->id];
            memcpy(id, msg->id, sizeof id);
            proto_msg_free(msg);
            if (rc == PROTO_EUNKNOWN_TYPE) continue; /* forward compatibility: ignore */
            if (rc == COMMON_ENOMEM) return rc;
            if (rc == PROTO_EBAD_MESSAGE && known) {
                int erc = proto_encode_error(reply, id[0] ? id : NULL, PROTO_CODE_BAD_REQUEST, why);
                if (erc) return erc;
                replied = 1;
            }
        }
        /* not UTF-8, not JSON, or invalid fields: a bad line */
        if (proto_ndjson_note_bad(fr)) return PROTO_LINE_CLOSE;
        if (replied) return PROTO_LINE_REPLY;
    }
}
