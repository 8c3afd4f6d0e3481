/* SPDX-License-Identifier: MIT */
/* The NDJSON framer: arbitrary splits, UTF-8 across feeds, limits, empty lines. */
#include "protocol/proto_ndjson.h"

#include "common/common_err.h"
#include "tests/test.h"

#define MAXOUT 64

/* Drain the framer into out[] ("!LONG" / "!UTF8" for errors). Returns the count. */
typedef struct {
    char *v[MAXOUT];
    size_t n;
} lines_t;

static void lines_free(lines_t *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    l->n = 0;
}

static void drain(proto_ndjson_t *fr, lines_t *out) {
    const char *line;
    size_t len;
    int rc;
    while ((rc = proto_ndjson_next(fr, &line, &len)) != 0) {
        if (out->n >= MAXOUT) return;
        if (rc == 1) {
            if (line[len] != '\0') {
                out->v[out->n++] = strdup("!NOTNUL");
                continue;
            }
            out->v[out->n++] = strndup(line, len);
        } else if (rc == PROTO_ELINE_TOO_LONG) {
            out->v[out->n++] = strdup("!LONG");
        } else if (rc == COMMON_EUTF8) {
            out->v[out->n++] = strdup("!UTF8");
        } else {
            out->v[out->n++] = strdup("!OTHER");
        }
    }
}

static const char stream[] =
    "{\"type\":\"request\",\"id\":\"job1\",\"kind\":5100,\"input\":\"h\xc3\xa9\"}\n"
    "\n"
    "{\"type\":\"stop\",\"id\":\"job1\"}\r\n"
    "\r\n"
    "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xf0\x9f\x98\x80 ok\"}\n"
    "tail-without-newline";
static const char *const expected[] = {
    "{\"type\":\"request\",\"id\":\"job1\",\"kind\":5100,\"input\":\"h\xc3\xa9\"}",
    "{\"type\":\"stop\",\"id\":\"job1\"}",
    "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xf0\x9f\x98\x80 ok\"}",
};

#define ASSERT_EXPECTED(l)                                                        \
    do {                                                                          \
        ASSERT_EQ_U64((l).n, 3);                                                  \
        for (size_t k_ = 0; k_ < 3; k_++) ASSERT_STR_EQ((l).v[k_], expected[k_]); \
    } while (0)

TEST(merged_in_one_feed) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    ASSERT_TRUE(fr != NULL);
    lines_t l = {0};
    ASSERT_OK(proto_ndjson_feed(fr, stream, sizeof stream - 1));
    drain(fr, &l);
    ASSERT_EXPECTED(l);
    /* The unterminated tail stays buffered, never yielded. */
    ASSERT_EQ_U64(proto_ndjson_buffered(fr), strlen("tail-without-newline"));
    ASSERT_OK(proto_ndjson_feed(fr, "\n", 1));
    lines_free(&l);
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 1);
    ASSERT_STR_EQ(l.v[0], "tail-without-newline");
    lines_free(&l);
    proto_ndjson_free(fr);
}

TEST(every_two_way_split) {
    for (size_t cut = 0; cut <= sizeof stream - 1; cut++) {
        proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
        lines_t l = {0};
        ASSERT_OK(proto_ndjson_feed(fr, stream, cut));
        drain(fr, &l); /* lines must come out as soon as they are complete */
        ASSERT_OK(proto_ndjson_feed(fr, stream + cut, sizeof stream - 1 - cut));
        drain(fr, &l);
        ASSERT_EXPECTED(l);
        lines_free(&l);
        proto_ndjson_free(fr);
    }
}

TEST(byte_by_byte) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    lines_t l = {0};
    for (size_t i = 0; i < sizeof stream - 1; i++) {
        ASSERT_OK(proto_ndjson_feed(fr, stream + i, 1));
        drain(fr, &l);
    }
    ASSERT_EXPECTED(l);
    lines_free(&l);
    proto_ndjson_free(fr);
}

TEST(utf8_character_split_across_feeds) {
    /* U+1F600 (4 bytes) and U+00E9 (2 bytes) cut at every inner position. */
    const char line[] = "{\"d\":\"\xf0\x9f\x98\x80\xc3\xa9\"}\n";
    for (size_t cut = 7; cut <= 12; cut++) {
        proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
        lines_t l = {0};
        ASSERT_OK(proto_ndjson_feed(fr, line, cut));
        drain(fr, &l);
        ASSERT_EQ_U64(l.n, 0); /* nothing yielded mid-character */
        ASSERT_OK(proto_ndjson_feed(fr, line + cut, sizeof line - 1 - cut));
        drain(fr, &l);
        ASSERT_EQ_U64(l.n, 1);
        ASSERT_EQ_U64(strlen(l.v[0]), sizeof line - 2);
        ASSERT_MEM_EQ(l.v[0], line, sizeof line - 2);
        lines_free(&l);
        proto_ndjson_free(fr);
    }
}

TEST(invalid_utf8_is_an_error_for_that_line_only) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    lines_t l = {0};
    const char in[] = "one\n\xff\xfe\nhalf\xe2\x82\n\xed\xa0\x80\ntwo\n";
    ASSERT_OK(proto_ndjson_feed(fr, in, sizeof in - 1));
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 5);
    ASSERT_STR_EQ(l.v[0], "one");
    ASSERT_STR_EQ(l.v[1], "!UTF8");
    ASSERT_STR_EQ(l.v[2], "!UTF8"); /* truncated sequence at the end of the line */
    ASSERT_STR_EQ(l.v[3], "!UTF8"); /* surrogate */
    ASSERT_STR_EQ(l.v[4], "two");
    lines_free(&l);
    proto_ndjson_free(fr);
}

TEST(empty_lines_and_crlf_skipped) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    lines_t l = {0};
    const char *parts[] = {"\n", "\r", "\n", "\r\n\n", "a\r", "\n", "\r", "\r\n", "b"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        ASSERT_OK(proto_ndjson_feed(fr, parts[i], strlen(parts[i])));
    drain(fr, &l);
    /* "\r\r\n" is a line holding one '\r' (only the trailing '\r' is removed). */
    ASSERT_EQ_U64(l.n, 2);
    ASSERT_STR_EQ(l.v[0], "a");
    ASSERT_STR_EQ(l.v[1], "\r");
    lines_free(&l);
    proto_ndjson_free(fr);
}

TEST(over_long_line_rejected_early_and_not_buffered) {
    proto_ndjson_t *fr = proto_ndjson_new(16, NULL);
    lines_t l = {0};
    ASSERT_OK(proto_ndjson_feed(fr, "0123456789abcdef\n", 17)); /* exactly the limit: ok */
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 1);
    ASSERT_STR_EQ(l.v[0], "0123456789abcdef");
    lines_free(&l);
    /* 17 bytes without a newline: reported at once, before the '\n' arrives. */
    ASSERT_OK(proto_ndjson_feed(fr, "0123456789abcdefX", 17));
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 1);
    ASSERT_STR_EQ(l.v[0], "!LONG");
    lines_free(&l);
    /* The rest of that line is discarded as it arrives, byte by byte. */
    for (int i = 0; i < 1000; i++) {
        ASSERT_OK(proto_ndjson_feed(fr, "y", 1));
        ASSERT_LE(proto_ndjson_buffered(fr), 16);
    }
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 0);
    ASSERT_OK(proto_ndjson_feed(fr, "zz\nnext\n", 8));
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 1);
    ASSERT_STR_EQ(l.v[0], "next");
    lines_free(&l);
    /* Errors stay in stream order between good lines, in one feed. */
    const char mix[] = "a\n0123456789abcdefghij\nb\n";
    ASSERT_OK(proto_ndjson_feed(fr, mix, sizeof mix - 1));
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 3);
    ASSERT_STR_EQ(l.v[0], "a");
    ASSERT_STR_EQ(l.v[1], "!LONG");
    ASSERT_STR_EQ(l.v[2], "b");
    lines_free(&l);
    proto_ndjson_free(fr);
}

TEST(default_limit_is_one_mib) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    ASSERT_EQ_U64(proto_ndjson_max_line(fr), 1024 * 1024);
    char *big = malloc(64 * 1024);
    memset(big, 'x', 64 * 1024);
    lines_t l = {0};
    for (int i = 0; i < 16; i++) ASSERT_OK(proto_ndjson_feed(fr, big, 64 * 1024)); /* 1 MiB */
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 0);
    ASSERT_OK(proto_ndjson_feed(fr, "\n", 1)); /* exactly 1 MiB: accepted */
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 1);
    ASSERT_EQ_U64(strlen(l.v[0]), 1024 * 1024);
    lines_free(&l);
    for (int i = 0; i < 40; i++) { /* 2.5 MiB: rejected, memory stays bounded */
        ASSERT_OK(proto_ndjson_feed(fr, big, 64 * 1024));
        ASSERT_LE(proto_ndjson_buffered(fr), 1024 * 1024 + 1);
    }
    drain(fr, &l);
    ASSERT_EQ_U64(l.n, 1);
    ASSERT_STR_EQ(l.v[0], "!LONG");
    lines_free(&l);
    free(big);
    proto_ndjson_free(fr);
}

TEST(bad_line_counter) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    for (unsigned i = 0; i < PROTO_MAX_BAD_LINES; i++) ASSERT_EQ_I64(proto_ndjson_note_bad(fr), 0);
    ASSERT_EQ_I64(proto_ndjson_note_bad(fr), 1);
    ASSERT_EQ_U64(proto_ndjson_bad_count(fr), PROTO_MAX_BAD_LINES + 1);
    proto_ndjson_free(fr);
}

TEST(lines_stay_valid_until_next_feed) {
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    ASSERT_OK(proto_ndjson_feed(fr, "first\nsecond\n", 13));
    const char *a, *b;
    size_t la, lb;
    ASSERT_EQ_I64(proto_ndjson_next(fr, &a, &la), 1);
    ASSERT_EQ_I64(proto_ndjson_next(fr, &b, &lb), 1);
    ASSERT_STR_EQ(a, "first");
    ASSERT_STR_EQ(b, "second");
    ASSERT_EQ_I64(proto_ndjson_next(fr, &b, &lb), 0);
    ASSERT_EQ_U64(proto_ndjson_buffered(fr), 0);
    proto_ndjson_free(fr);
}

TEST_MAIN(TEST_ENTRY(merged_in_one_feed), TEST_ENTRY(every_two_way_split), TEST_ENTRY(byte_by_byte),
          TEST_ENTRY(utf8_character_split_across_feeds),
          TEST_ENTRY(invalid_utf8_is_an_error_for_that_line_only),
          TEST_ENTRY(empty_lines_and_crlf_skipped),
          TEST_ENTRY(over_long_line_rejected_early_and_not_buffered),
          TEST_ENTRY(default_limit_is_one_mib), TEST_ENTRY(bad_line_counter),
          TEST_ENTRY(lines_stay_valid_until_next_feed))
