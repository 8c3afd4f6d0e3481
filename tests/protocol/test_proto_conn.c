/* SPDX-License-Identifier: MIT */
/* The per-connection line rules (dvm-protocol.md §2) over trace-basic's customer lines. */
#include "protocol/proto_conn.h"

#include "common/common_err.h"
#include "tests/test.h"

typedef struct {
    char log[4096];
    int closed;
} run_t;

/* Feed @p in, classify every line, log "msg:<type>", "reply:<line>" or "close". */
static void run(proto_ndjson_t *fr, const char *in, run_t *r) {
    proto_ndjson_feed(fr, in, strlen(in));
    common_buf_t reply = {0};
    for (int guard = 0; guard < 100; guard++) {
        proto_msg_t msg;
        reply.len = 0;
        int act = proto_conn_next(fr, &msg, &reply);
        char one[600] = "";
        if (act == PROTO_LINE_NONE) break;
        if (reply.len)
            snprintf(one, sizeof one, "reply:%.*s;", (int)reply.len - 1, (char *)reply.data);
        if (act == PROTO_LINE_MSG) {
            snprintf(one + strlen(one), sizeof one - strlen(one), "msg:%s;",
                     proto_msg_type_name(msg.type));
            proto_msg_free(&msg);
        }
        if (act == PROTO_LINE_CLOSE) strcat(one, "close;");
        strcat(r->log, one);
        if (act == PROTO_LINE_CLOSE) {
            r->closed = 1;
            break;
        }
    }
    common_buf_free(&reply);
}

TEST(trace_basic_customer_lines) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    run_t r = {0};
    run(fr,
        "{\"type\":\"skill_request\",\"id\":\"sk1\",\"kind\":5100}\n"
        "this is not json\n"
        "{\"type\":\"bogus_type\",\"id\":\"x1\"}\n"
        "{\"type\":\"payment\",\"id\":\"job1\"}\n"
        "{\"type\":\"request\",\"kind\":5100,\"input\":\"no id\"}\n"
        "{\"type\":\"request\",\"id\":\"job1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}\n",
        &r);
    ASSERT_STR_EQ(r.log, "msg:skill_request;" /* not json: no reply; bogus_type: skipped */
                         "reply:{\"type\":\"error\",\"id\":\"job1\",\"message\":\"payment.token: "
                         "missing\",\"code\":\"bad_request\"};"
                         "reply:{\"type\":\"error\",\"message\":\"request.id: missing\",\"code\":"
                         "\"bad_request\"};"
                         "msg:request;");
    ASSERT_EQ_U64(proto_ndjson_bad_count(fr), 3);
    ASSERT_EQ_U64(r.closed, 0);
    proto_ndjson_free(fr);
}

TEST(too_many_bad_lines_close) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    run_t r = {0};
    char in[1024] = "";
    for (int i = 0; i < 17; i++) strcat(in, "garbage\n");
    strcat(in, "{\"type\":\"stop\",\"id\":\"j\"}\n");
    run(fr, in, &r);
    ASSERT_STR_EQ(r.log, "close;"); /* the 17th bad line closes; the stop is never seen */
    proto_ndjson_free(fr);
    /* Unknown types do not count. */
    fr = proto_ndjson_new(0, NULL);
    memset(&r, 0, sizeof r);
    in[0] = 0;
    for (int i = 0; i < 20; i++) strcat(in, "{\"type\":\"future\",\"id\":\"j\"}\n");
    strcat(in, "{\"type\":\"stop\",\"id\":\"j\"}\n");
    run(fr, in, &r);
    ASSERT_STR_EQ(r.log, "msg:stop;");
    proto_ndjson_free(fr);
}

TEST(over_long_line_replies_and_closes) {
    proto_ndjson_t *fr = proto_ndjson_new(32, NULL);
    run_t r = {0};
    run(fr,
        "{\"type\":\"stop\",\"id\":\"j\"}\n{\"type\":\"payment\",\"id\":\"j\",\"token\":\"xxxxxxxx",
        &r);
    ASSERT_STR_EQ(r.log, "msg:stop;reply:{\"type\":\"error\",\"message\":\"line longer than 32 "
                         "bytes\",\"code\":\"bad_request\"};close;");
    proto_ndjson_free(fr);
}

TEST_MAIN(TEST_ENTRY(trace_basic_customer_lines), TEST_ENTRY(too_many_bad_lines_close),
          TEST_ENTRY(over_long_line_replies_and_closes))
