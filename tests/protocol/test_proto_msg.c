/* SPDX-License-Identifier: MIT */
/* The message codec: every message's valid and invalid cases, round trips, the reference
 * traces. */
#include "protocol/proto_msg.h"

#include <dirent.h>
#include <stdio.h>

#include "common/common_err.h"
#include "protocol/proto_ndjson.h"
#include "tests/test.h"

static int dec(const char *line, proto_msg_t *m) {
    char why[160];
    int rc = proto_msg_decode(line, strlen(line), m, why, sizeof why);
    if (rc && getenv("PROTO_TEST_VERBOSE")) fprintf(stderr, "    %s -> %s\n", line, why);
    return rc;
}

/* decode -> encode -> decode gives an equal message, and encode is one '\n'-ended line. */
static int round_trip_ok(const proto_msg_t *m) {
    common_buf_t b = {0};
    if (proto_msg_encode(m, &b) != 0) return 0;
    int ok = b.len > 0 && b.data[b.len - 1] == '\n' && memchr(b.data, '\n', b.len - 1) == NULL;
    proto_msg_t m2;
    ok = ok && proto_msg_decode((const char *)b.data, b.len - 1, &m2, NULL, 0) == 0;
    if (ok) {
        ok = proto_msg_equal(m, &m2);
        proto_msg_free(&m2);
    }
    common_buf_free(&b);
    return ok;
}

/* encode(decode(line)) reproduces the line byte for byte (canonical reference order). */
static int reencodes_exactly(const char *line) {
    proto_msg_t m;
    if (dec(line, &m) != 0) return 0;
    common_buf_t b = {0};
    int ok = proto_msg_encode(&m, &b) == 0 && b.len == strlen(line) + 1 &&
             memcmp(b.data, line, b.len - 1) == 0;
    if (!ok && b.data)
        fprintf(stderr, "    want %s\n    got  %.*s", line, (int)b.len, (const char *)b.data);
    common_buf_free(&b);
    proto_msg_free(&m);
    return ok;
}

TEST(base_messages_decode) {
    proto_msg_t m;
    ASSERT_OK(dec("{\"type\":\"skill_request\",\"id\":\"sk1\",\"kind\":5100}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_SKILL_REQUEST);
    ASSERT_STR_EQ(m.id, "sk1");
    ASSERT_EQ_U64(m.skill_request.kind, 5100);
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"skill_response\",\"id\":\"sk1\",\"skill\":null}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_SKILL_RESPONSE);
    ASSERT_EQ_U64(m.skill_response.skill.present, 0);
    proto_msg_free(&m);

    ASSERT_OK(dec(
        "{\"type\":\"request\",\"id\":\"job1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_REQUEST);
    ASSERT_EQ_U64(m.request.kind, 5100);
    ASSERT_STR_EQ(m.request.input, "hi");
    ASSERT_EQ_U64(m.request.has_budget, 1);
    ASSERT_EQ_U64(m.request.budget, 30);
    ASSERT_EQ_U64(m.request.has_params, 0);
    proto_msg_free(&m);

    /* Reference customers may omit budget. */
    ASSERT_OK(dec("{\"type\":\"request\",\"id\":\"job7\",\"kind\":5100,\"input\":\"hi\"}", &m));
    ASSERT_EQ_U64(m.request.has_budget, 0);
    proto_msg_free(&m);

    ASSERT_OK(dec(
        "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":1,\"chunks_per_payment\":10}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_OFFER);
    ASSERT_EQ_U64(m.offer.sats_per_chunk, 1);
    ASSERT_EQ_U64(m.offer.chunks_per_payment, 10);
    ASSERT_EQ_U64(m.offer.mints.has, 0);
    ASSERT_EQ_U64(m.offer.has_pubkey, 0);
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"payment\",\"id\":\"job1\",\"token\":\"cashuBo2Ft\"}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_PAYMENT);
    ASSERT_STR_EQ(m.payment.token, "cashuBo2Ft");
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"payment_ack\",\"id\":\"job1\",\"amount\":10}", &m));
    ASSERT_EQ_U64(m.payment_ack.amount, 10);
    ASSERT_EQ_U64(m.payment_ack.has_credit, 0);
    ASSERT_EQ_U64(m.payment_ack.has_locked, 0);
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"accepted\",\"id\":\"job1\"}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_ACCEPTED);
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\" world\"}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_CHUNK);
    ASSERT_STR_EQ(m.chunk.data, " world");
    ASSERT_EQ_U64(m.chunk.has_seq, 0);
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"pay_required\",\"id\":\"job1\",\"earned\":10,\"next\":10}", &m));
    ASSERT_EQ_U64(m.pay_required.earned, 10);
    ASSERT_EQ_U64(m.pay_required.next, 10);
    proto_msg_free(&m);

    ASSERT_OK(
        dec("{\"type\":\"result\",\"id\":\"job1\",\"output\":\"Hello\",\"total_sats\":20}", &m));
    ASSERT_STR_EQ(m.result.output, "Hello");
    ASSERT_EQ_U64(m.result.total_sats, 20);
    ASSERT_EQ_U64(m.result.reason, PROTO_REASON_NONE);
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"stop\",\"id\":\"job4\"}", &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_STOP);
    ASSERT_STR_EQ(m.id, "job4");
    proto_msg_free(&m);

    ASSERT_OK(dec(
        "{\"type\":\"error\",\"id\":\"job2\",\"message\":\"Payment timeout after 3000ms\"}", &m));
    ASSERT_STR_EQ(m.error.message, "Payment timeout after 3000ms");
    ASSERT_EQ_U64(m.error.code, PROTO_CODE_NONE);
    proto_msg_free(&m);
}

TEST(extension_fields_decode) {
    proto_msg_t m;
    ASSERT_OK(dec("{\"type\":\"skill_response\",\"id\":\"s\",\"skill\":{\"kind\":5100,\"model\":"
                  "\"llama3.2\",\"pricing\":{\"sats_per_chunk\":2,\"chunks_per_payment\":5,"
                  "\"unit\":\"sat\"},\"mints\":[\"http://127.0.0.1:3338\"],\"pubkey\":"
                  "\"02AABBCCDDEEFF00112233445566778899aabbccddeeff00112233445566778899\","
                  "\"capacity\":{\"active\":1,\"max\":3},\"version\":\"0.1.0\"}}",
                  &m));
    const proto_skill_t *s = &m.skill_response.skill;
    ASSERT_EQ_U64(s->present, 1);
    ASSERT_EQ_U64(s->kind, 5100);
    ASSERT_STR_EQ(s->model, "llama3.2");
    ASSERT_EQ_U64(s->has_pricing, 1);
    ASSERT_EQ_U64(s->sats_per_chunk, 2);
    ASSERT_EQ_U64(s->chunks_per_payment, 5);
    ASSERT_STR_EQ(s->unit, "sat");
    ASSERT_EQ_U64(s->mints.n, 1);
    ASSERT_STR_EQ(s->mints.url[0], "http://127.0.0.1:3338");
    ASSERT_EQ_U64(s->pubkey[0], 2);
    ASSERT_EQ_U64(s->pubkey[1], 0xaa);
    ASSERT_EQ_U64(s->cap_active, 1);
    ASSERT_EQ_U64(s->cap_max, 3);
    ASSERT_STR_EQ(s->version, "0.1.0");
    ASSERT_TRUE(round_trip_ok(&m));
    proto_msg_free(&m);

    ASSERT_OK(
        dec("{\"type\":\"request\",\"id\":\"a-B_9\",\"kind\":5302,\"input\":\"x\",\"budget\":0,"
            "\"params\":{\"model\":\"m\",\"max_tokens\":256,\"temperature\":0.7,\"seed\":42,"
            "\"system\":\"be brief\"}}",
            &m));
    ASSERT_EQ_U64(m.request.has_params, 1);
    ASSERT_STR_EQ(m.request.params.model, "m");
    ASSERT_EQ_U64(m.request.params.max_tokens, 256);
    ASSERT_TRUE(m.request.params.temperature == 0.7);
    ASSERT_EQ_U64(m.request.params.seed, 42);
    ASSERT_STR_EQ(m.request.params.system, "be brief");
    ASSERT_TRUE(round_trip_ok(&m));
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":3,\"chunks_per_payment\":4,"
                  "\"mints\":[\"https://a\",\"https://b\"],\"unit\":\"sat\",\"pubkey\":"
                  "\"03aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899\","
                  "\"min_locktime\":600}",
                  &m));
    ASSERT_EQ_U64(m.offer.mints.n, 2);
    ASSERT_STR_EQ(m.offer.mints.url[1], "https://b");
    ASSERT_STR_EQ(m.offer.unit, "sat");
    ASSERT_EQ_U64(m.offer.has_pubkey, 1);
    ASSERT_EQ_U64(m.offer.pubkey[0], 3);
    ASSERT_EQ_U64(m.offer.min_locktime, 600);
    ASSERT_TRUE(round_trip_ok(&m));
    proto_msg_free(&m);

    ASSERT_OK(dec(
        "{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":25,\"credit\":25,\"locked\":true}", &m));
    ASSERT_EQ_U64(m.payment_ack.credit, 25);
    ASSERT_EQ_U64(m.payment_ack.has_locked, 1);
    ASSERT_EQ_U64(m.payment_ack.locked, 1);
    ASSERT_TRUE(reencodes_exactly(
        "{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":25,\"credit\":25,\"locked\":true}"));
    proto_msg_free(&m);

    ASSERT_OK(dec("{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\",\"seq\":14}", &m));
    ASSERT_STR_EQ(m.chunk.data, "");
    ASSERT_EQ_U64(m.chunk.seq, 14);
    proto_msg_free(&m);

    ASSERT_OK(
        dec("{\"type\":\"result\",\"id\":\"j\",\"output\":\"o\",\"total_sats\":10,\"chunks\":10,"
            "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":10},\"reason\":\"stopped\"}",
            &m));
    ASSERT_EQ_U64(m.result.chunks, 10);
    ASSERT_EQ_U64(m.result.has_usage, 1);
    ASSERT_EQ_U64(m.result.prompt_tokens, 3);
    ASSERT_EQ_U64(m.result.completion_tokens, 10);
    ASSERT_EQ_U64(m.result.reason, PROTO_REASON_STOPPED);
    ASSERT_TRUE(round_trip_ok(&m));
    proto_msg_free(&m);

    static const char *const codes[] = {
        "bad_request", "capacity",          "price",      "payment_timeout", "bad_token",
        "token_spent", "mint_not_accepted", "not_locked", "backend",         "internal"};
    for (size_t i = 0; i < 10; i++) {
        char line[160];
        snprintf(line, sizeof line,
                 "{\"type\":\"error\",\"id\":\"j\",\"message\":\"m\",\"code\":\"%s\"}", codes[i]);
        ASSERT_OK(dec(line, &m));
        ASSERT_EQ_U64(m.error.code, i + 1);
        ASSERT_STR_EQ(proto_error_code_name(m.error.code), codes[i]);
        ASSERT_TRUE(reencodes_exactly(line));
        proto_msg_free(&m);
    }
    static const char *const reasons[] = {"done",    "stopped", "budget",
                                          "timeout", "length",  "error"};
    for (size_t i = 0; i < 6; i++) {
        char line[160];
        snprintf(
            line, sizeof line,
            "{\"type\":\"result\",\"id\":\"j\",\"output\":\"\",\"total_sats\":0,\"reason\":\"%s\"}",
            reasons[i]);
        ASSERT_OK(dec(line, &m));
        ASSERT_EQ_U64(m.result.reason, i + 1);
        ASSERT_TRUE(reencodes_exactly(line));
        proto_msg_free(&m);
    }
}

typedef struct {
    const char *line;
    int rc;
} bad_case_t;

#define BAD(l) \
    { l, PROTO_EBAD_MESSAGE }
static const bad_case_t bad_cases[] = {
    /* not JSON / not an object / trailing data */
    {"this is not json", COMMON_EJSON},
    {"[1,2]", COMMON_EJSON},
    {"\"request\"", COMMON_EJSON},
    {"{\"type\":\"stop\",\"id\":\"j\"} x", COMMON_EJSON},
    {"{\"type\":\"stop\",\"id\":\"j\"}{}", COMMON_EJSON},
    {"{\"type\":\"stop\",\"id\":\"j\"", COMMON_EJSON},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"a\tb\"}", COMMON_EJSON}, /* raw control char */
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"a\\u0000b\"}", COMMON_EJSON},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\ud800\"}", COMMON_EJSON}, /* lone surrogate */
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xc3\"}", COMMON_EUTF8},
    /* type */
    BAD("{\"id\":\"j\"}"),
    BAD("{\"type\":5,\"id\":\"j\"}"),
    BAD("{\"type\":null,\"id\":\"j\"}"),
    /* id: missing, wrong type, empty, too long, bad characters */
    BAD("{\"type\":\"stop\"}"),
    BAD("{\"type\":\"stop\",\"id\":7}"),
    BAD("{\"type\":\"stop\",\"id\":\"\"}"),
    BAD("{\"type\":\"stop\",\"id\":\"a b\"}"),
    BAD("{\"type\":\"stop\",\"id\":\"a.b\"}"),
    BAD("{\"type\":\"stop\",\"id\":\"caf\xc3\xa9\"}"),
    BAD("{\"type\":\"stop\",\"id\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"),
    BAD("{\"type\":\"request\",\"kind\":5100,\"input\":\"no id\"}"), /* trace-noid */
    /* skill_request / skill_response */
    BAD("{\"type\":\"skill_request\",\"id\":\"s\"}"),
    BAD("{\"type\":\"skill_request\",\"id\":\"s\",\"kind\":\"5100\"}"),
    BAD("{\"type\":\"skill_response\",\"id\":\"s\"}"),
    BAD("{\"type\":\"skill_response\",\"id\":\"s\",\"skill\":\"x\"}"),
    BAD("{\"type\":\"skill_response\",\"id\":\"s\",\"skill\":{\"pricing\":{\"sats_per_chunk\":1}}"
        "}"),
    BAD("{\"type\":\"skill_response\",\"id\":\"s\",\"skill\":{\"capacity\":{\"active\":-1,\"max\":"
        "3}}}"),
    BAD("{\"type\":\"skill_response\",\"id\":\"s\",\"skill\":{\"mints\":\"http://a\"}}"),
    /* request */
    BAD("{\"type\":\"request\",\"id\":\"j\",\"input\":\"hi\"}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":5}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":-5100,\"input\":\"hi\"}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100.5,\"input\":\"hi\"}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":\"50\"}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":-1}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":0.5}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":"
        "9007199254740992}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":1e300}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":true}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"budget\":null}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"params\":[]}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"params\":{"
        "\"temperature\":-1}}"),
    BAD("{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"hi\",\"params\":{\"max_"
        "tokens\":1.5}}"),
    /* offer */
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"chunks_per_payment\":10}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":0,\"chunks_per_payment\":10}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":0}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1.5,\"chunks_per_payment\":10}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,\"mints\":"
        "[1]}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,\"mints\":"
        "[\"\"]}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,"
        "\"pubkey\":\"02ab\"}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,"
        "\"pubkey\":"
        "\"04aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899\"}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,"
        "\"pubkey\":"
        "\"02aabbccddeeff00112233445566778899aabbccddeeff0011223344556677889z\"}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,\"min_"
        "locktime\":-60}"),
    BAD("{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,\"unit\":"
        "\"\"}"),
    /* payment */
    BAD("{\"type\":\"payment\",\"id\":\"job1\"}"), /* trace-basic: missing token */
    BAD("{\"type\":\"payment\",\"id\":\"job1\",\"token\":\"\"}"),
    BAD("{\"type\":\"payment\",\"id\":\"job1\",\"token\":[\"cashuB\"]}"),
    /* payment_ack */
    BAD("{\"type\":\"payment_ack\",\"id\":\"j\"}"),
    BAD("{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":\"10\"}"),
    BAD("{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":10,\"locked\":1}"),
    BAD("{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":10,\"credit\":-2}"),
    /* chunk */
    BAD("{\"type\":\"chunk\",\"id\":\"j\"}"),
    BAD("{\"type\":\"chunk\",\"id\":\"j\",\"data\":null}"),
    BAD("{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":-1}"),
    /* pay_required */
    BAD("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":10}"),
    BAD("{\"type\":\"pay_required\",\"id\":\"j\",\"next\":10}"),
    BAD("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":10,\"next\":-10}"),
    /* result */
    BAD("{\"type\":\"result\",\"id\":\"j\",\"total_sats\":1}"),
    BAD("{\"type\":\"result\",\"id\":\"j\",\"output\":\"x\"}"),
    BAD("{\"type\":\"result\",\"id\":\"j\",\"output\":\"x\",\"total_sats\":2.25}"),
    BAD("{\"type\":\"result\",\"id\":\"j\",\"output\":\"x\",\"total_sats\":1,\"reason\":"
        "\"finished\"}"),
    BAD("{\"type\":\"result\",\"id\":\"j\",\"output\":\"x\",\"total_sats\":1,\"usage\":{\"prompt_"
        "tokens\":1}}"),
    /* error */
    BAD("{\"type\":\"error\",\"id\":\"j\"}"),
    BAD("{\"type\":\"error\",\"id\":\"j\",\"message\":\"m\",\"code\":\"oops\"}"),
    BAD("{\"type\":\"error\",\"id\":\"j\",\"message\":\"m\",\"code\":3}"),
};

TEST(invalid_messages_rejected) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        proto_msg_t m;
        char why[160] = "";
        int rc =
            proto_msg_decode(bad_cases[i].line, strlen(bad_cases[i].line), &m, why, sizeof why);
        if (rc != bad_cases[i].rc || getenv("PROTO_TEST_VERBOSE"))
            fprintf(stderr, "  case %zu: %s -> %d (%s)\n", i, bad_cases[i].line, rc, why);
        ASSERT_EQ_I64(rc, bad_cases[i].rc);
        ASSERT_TRUE(why[0] != '\0'); /* a human reason for the bad_request reply */
        proto_msg_free(&m);
    }
}

TEST(failed_decode_keeps_type_and_id_for_the_reply) {
    proto_msg_t m;
    char why[160];
    const char *l =
        "{\"type\":\"request\",\"id\":\"job9\",\"kind\":5100,\"input\":\"hi\",\"budget\":-3}";
    ASSERT_ERR(proto_msg_decode(l, strlen(l), &m, why, sizeof why), PROTO_EBAD_MESSAGE);
    ASSERT_EQ_U64(m.type, PROTO_MSG_REQUEST);
    ASSERT_STR_EQ(m.id, "job9");
    ASSERT_TRUE(m.request.input == NULL); /* strings freed on failure */
    ASSERT_TRUE(strstr(why, "budget") != NULL);
    proto_msg_free(&m);
}

TEST(integer_ranges) {
    proto_msg_t m;
    ASSERT_OK(
        dec("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":9007199254740991,\"next\":0}", &m));
    ASSERT_EQ_U64(m.pay_required.earned, UINT64_C(9007199254740991));
    ASSERT_EQ_U64(m.pay_required.next, 0);
    proto_msg_free(&m);
    ASSERT_ERR(
        dec("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":9007199254740992,\"next\":0}", &m),
        PROTO_EBAD_MESSAGE);
    proto_msg_free(&m);
    ASSERT_ERR(
        dec("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":18446744073709551616,\"next\":0}",
            &m),
        PROTO_EBAD_MESSAGE);
    proto_msg_free(&m);
    /* JSON has one number type: 10, 10.0 and 1e1 are the same integral value. */
    ASSERT_OK(dec("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":10.0,\"next\":1e1}", &m));
    ASSERT_EQ_U64(m.pay_required.earned, 10);
    ASSERT_EQ_U64(m.pay_required.next, 10);
    proto_msg_free(&m);
    ASSERT_OK(dec("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":-0,\"next\":0}", &m));
    ASSERT_EQ_U64(m.pay_required.earned, 0);
    proto_msg_free(&m);
    ASSERT_ERR(dec("{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":1,\"next\":0.000001}", &m),
               PROTO_EBAD_MESSAGE);
    proto_msg_free(&m);
}

TEST(ids) {
    proto_msg_t m;
    char line[200];
    char id[65];
    memset(id, 'a', 64);
    id[64] = 0;
    snprintf(line, sizeof line, "{\"type\":\"stop\",\"id\":\"%s\"}", id);
    ASSERT_OK(dec(line, &m));
    ASSERT_STR_EQ(m.id, id);
    proto_msg_free(&m);
    ASSERT_OK(dec("{\"type\":\"stop\",\"id\":\"AZaz09_-\"}", &m));
    proto_msg_free(&m);
    ASSERT_OK(dec("{\"type\":\"stop\",\"id\":\"9a5659aec7520049\"}", &m));
    proto_msg_free(&m);
    ASSERT_TRUE(proto_id_valid("x", 1));
    ASSERT_FALSE(proto_id_valid("x/", 2));
    ASSERT_FALSE(proto_id_valid("", 0));
}

TEST(unknown_type_reported_with_its_name) {
    proto_msg_t m;
    ASSERT_ERR(dec("{\"type\":\"bogus_type\",\"id\":\"x1\"}", &m), PROTO_EUNKNOWN_TYPE);
    ASSERT_EQ_U64(m.type, PROTO_MSG_UNKNOWN);
    ASSERT_STR_EQ(m.type_str, "bogus_type");
    ASSERT_STR_EQ(m.id, "x1");
    proto_msg_free(&m);
    ASSERT_TRUE(m.type_str == NULL);
    /* An unknown type needs no valid id (forward compatibility). */
    ASSERT_ERR(dec("{\"type\":\"future\",\"x\":[1,{\"y\":null}]}", &m), PROTO_EUNKNOWN_TYPE);
    ASSERT_STR_EQ(m.type_str, "future");
    ASSERT_STR_EQ(m.id, "");
    proto_msg_free(&m);
}

TEST(unknown_fields_ignored_and_key_order_irrelevant) {
    proto_msg_t m;
    ASSERT_OK(dec("{\"chunks_per_payment\":10,\"extra\":{\"a\":[1,2,{\"b\":\"c\"}]},\"zz\":1.5,"
                  "\"sats_per_chunk\":1,\"id\":\"job1\",\"n\":null,\"type\":\"offer\",\"t\":true}",
                  &m));
    ASSERT_EQ_U64(m.type, PROTO_MSG_OFFER);
    ASSERT_EQ_U64(m.offer.sats_per_chunk, 1);
    ASSERT_EQ_U64(m.offer.chunks_per_payment, 10);
    common_buf_t b = {0};
    ASSERT_OK(proto_msg_encode(&m, &b));
    const char want[] =
        "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":1,\"chunks_per_payment\":10}\n";
    ASSERT_EQ_U64(b.len, sizeof want - 1);
    ASSERT_MEM_EQ(b.data, want, b.len);
    common_buf_free(&b);
    proto_msg_free(&m);
    /* Whitespace around tokens is fine. */
    ASSERT_OK(dec(" { \"type\" : \"stop\" ,\t\"id\":\"j\" } ", &m));
    proto_msg_free(&m);
}

TEST(strings_escape_and_round_trip) {
    /* Every ASCII control character, quotes, backslashes, non-ASCII, U+2028. */
    char data[200];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++) data[n++] = (char)c;
    const char tail[] = "\"\\/ \xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80 end";
    memcpy(data + n, tail, sizeof tail);
    proto_msg_t m = {.type = PROTO_MSG_CHUNK};
    strcpy(m.id, "job1");
    m.chunk.data = data;
    common_buf_t b = {0}, c = {0};
    ASSERT_OK(proto_msg_encode(&m, &b));
    ASSERT_TRUE(memchr(b.data, '\n', b.len - 1) == NULL);
    ASSERT_OK(proto_encode_chunk(&c, "job1", data, strlen(data), -1));
    ASSERT_EQ_U64(b.len, c.len);
    ASSERT_MEM_EQ(b.data, c.data, b.len);
    proto_msg_t d;
    ASSERT_OK(proto_msg_decode((char *)b.data, b.len - 1, &d, NULL, 0));
    ASSERT_STR_EQ(d.chunk.data, data);
    proto_msg_free(&d);
    common_buf_free(&b);
    common_buf_free(&c);
    ASSERT_OK(proto_encode_chunk(&c, "j", "a", 1, 7));
    const char want[] = "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"a\",\"seq\":7}\n";
    ASSERT_EQ_U64(c.len, sizeof want - 1);
    ASSERT_MEM_EQ(c.data, want, c.len);
    common_buf_free(&c);
}

TEST(encode_refuses_what_decode_rejects) {
    common_buf_t b = {0};
    proto_msg_t m = {.type = PROTO_MSG_PAY_REQUIRED};
    ASSERT_ERR(proto_msg_encode(&m, &b), COMMON_EINVAL); /* empty id */
    strcpy(m.id, "bad id");
    ASSERT_ERR(proto_msg_encode(&m, &b), COMMON_EINVAL);
    strcpy(m.id, "j");
    m.pay_required.earned = PROTO_MAX_INT + 1;
    ASSERT_ERR(proto_msg_encode(&m, &b), COMMON_ERANGE);
    ASSERT_EQ_U64(b.len, 0);
    m.pay_required.earned = PROTO_MAX_INT;
    ASSERT_OK(proto_msg_encode(&m, &b));
    b.len = 0;
    proto_msg_t o = {.type = PROTO_MSG_OFFER};
    strcpy(o.id, "j");
    o.offer.chunks_per_payment = 10;
    ASSERT_ERR(proto_msg_encode(&o, &b), COMMON_ERANGE); /* sats_per_chunk 0 */
    proto_msg_t p = {.type = PROTO_MSG_PAYMENT};
    strcpy(p.id, "j");
    ASSERT_ERR(proto_msg_encode(&p, &b), COMMON_EINVAL); /* no token */
    proto_msg_t e = {.type = PROTO_MSG_ERROR};
    strcpy(e.id, "j");
    e.error.message = "m";
    e.error.code = PROTO_CODE_COUNT_;
    ASSERT_ERR(proto_msg_encode(&e, &b), COMMON_EINVAL);
    ASSERT_ERR(proto_encode_chunk(&b, "j", "\xff", 1, -1), COMMON_EUTF8);
    ASSERT_ERR(proto_encode_chunk(&b, "j", "a\0b", 3, -1), COMMON_EINVAL);
    proto_msg_t u = {.type = PROTO_MSG_UNKNOWN};
    strcpy(u.id, "j");
    ASSERT_ERR(proto_msg_encode(&u, &b), COMMON_EINVAL);
    ASSERT_EQ_U64(b.len, 0);
    common_buf_free(&b);
}

TEST(reference_lines_reencode_byte_for_byte) {
    static const char *const lines[] = {
        "{\"type\":\"skill_request\",\"id\":\"sk1\",\"kind\":5100}",
        "{\"type\":\"skill_response\",\"id\":\"sk1\",\"skill\":null}",
        "{\"type\":\"request\",\"id\":\"job1\",\"kind\":5100,\"input\":\"hi\",\"budget\":30}",
        "{\"type\":\"offer\",\"id\":\"job1\",\"sats_per_chunk\":1,\"chunks_per_payment\":10}",
        "{\"type\":\"payment_ack\",\"id\":\"job1\",\"amount\":10}",
        "{\"type\":\"accepted\",\"id\":\"job1\"}",
        "{\"type\":\"chunk\",\"id\":\"job1\",\"data\":\"Hello\"}",
        "{\"type\":\"pay_required\",\"id\":\"job1\",\"earned\":10,\"next\":10}",
        "{\"type\":\"result\",\"id\":\"job1\",\"output\":\"Hello world, this is a fake Ollama "
        "stream with exactly fifteen tokens total.\",\"total_sats\":20}",
        "{\"type\":\"stop\",\"id\":\"job4\"}",
        "{\"type\":\"error\",\"id\":\"job1\",\"message\":\"Payment failed: Unsupported major type: "
        "6\"}",
        "{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1,\"chunks_per_payment\":10,\"mints\":"
        "[],\"unit\":\"sat\",\"pubkey\":"
        "\"02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899\",\"min_locktime\":"
        "600}",
        "{\"type\":\"skill_response\",\"id\":\"s\",\"skill\":{}}",
        "{\"type\":\"request\",\"id\":\"j\",\"kind\":1,\"input\":\"\",\"params\":{}}",
        "{\"type\":\"request\",\"id\":\"j\",\"kind\":1,\"input\":\"\",\"params\":{\"temperature\":"
        "0.1}}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!reencodes_exactly(lines[i])) fprintf(stderr, "  line %zu\n", i);
        ASSERT_TRUE(reencodes_exactly(lines[i]));
    }
}

/* ---- the reference traces ---------------------------------------------------------- */

typedef struct {
    unsigned ok, json, unknown, bad, repaired;
    unsigned by_type[PROTO_MSG_TYPE_COUNT_];
    char output[4096]; /* chunk data concatenated, per job (reset on result) */
    unsigned results, results_match;
    uint64_t sats_acked, last_total;
} trace_stats_t;

static void trace_line(trace_stats_t *st, char *json) {
    size_t len = strlen(json);
    /* Tokens are cut short in the logs ("cashuBo2Ft..." with no closing quote): close them so
     * the rest of the message is still checked. */
    char fixed[4096];
    if (len && json[len - 1] != '}' && strstr(json, "\"token\":\"") && len + 3 < sizeof fixed) {
        snprintf(fixed, sizeof fixed, "%s\"}", json);
        json = fixed;
        len = strlen(json);
        st->repaired++;
    }
    proto_msg_t m;
    int rc = proto_msg_decode(json, len, &m, NULL, 0);
    if (rc == 0) {
        st->ok++;
        st->by_type[m.type]++;
        if (m.type == PROTO_MSG_CHUNK &&
            strlen(st->output) + strlen(m.chunk.data) < sizeof st->output)
            strcat(st->output, m.chunk.data);
        if (m.type == PROTO_MSG_PAYMENT_ACK) st->sats_acked += m.payment_ack.amount;
        if (m.type == PROTO_MSG_RESULT) {
            st->results++;
            st->last_total = m.result.total_sats;
            if (strcmp(m.result.output, st->output) == 0) st->results_match++;
            st->output[0] = 0;
        }
        if (!round_trip_ok(&m)) st->bad += 1000; /* surfaces as a failure below */
    } else if (rc == COMMON_EJSON) {
        st->json++;
    } else if (rc == PROTO_EUNKNOWN_TYPE) {
        st->unknown++;
    } else {
        st->bad++;
    }
    proto_msg_free(&m);
}

/* Feed a whole trace file: every "=> " / "<= " payload, through the framer, in one stream. */
static int run_trace(const char *name, trace_stats_t *st) {
    const char *src = getenv("SWARMDVM_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/protocol/data/reference-traces/%s", src ? src : ".",
             name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "  cannot open %s\n", path);
        return -1;
    }
    proto_ndjson_t *fr = proto_ndjson_new(0, NULL);
    char buf[8192];
    while (fgets(buf, sizeof buf, f)) {
        char *p = strstr(buf, "=> ");
        if (!p) p = strstr(buf, "<= ");
        if (!p) continue;
        p += 3;
        if (strncmp(p, "(split write) ", 14) == 0) p += 14;
        /* feed in 7-byte pieces to exercise the framer too */
        size_t n = strlen(p);
        for (size_t i = 0; i < n; i += 7) proto_ndjson_feed(fr, p + i, n - i < 7 ? n - i : 7);
        const char *line;
        size_t len;
        while (proto_ndjson_next(fr, &line, &len) == 1) {
            char copy[4096];
            snprintf(copy, sizeof copy, "%.*s", (int)len, line);
            trace_line(st, copy);
        }
    }
    proto_ndjson_free(fr);
    fclose(f);
    return 0;
}

TEST(trace_basic) {
    trace_stats_t st = {0};
    ASSERT_OK(run_trace("trace-basic.log", &st));
    ASSERT_EQ_U64(st.json, 1);    /* "this is not json" */
    ASSERT_EQ_U64(st.unknown, 1); /* bogus_type */
    ASSERT_EQ_U64(st.bad, 1);     /* payment without token */
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_SKILL_REQUEST], 1);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_SKILL_RESPONSE], 1);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_REQUEST], 1);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_OFFER], 1);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_PAYMENT], 4); /* nojob, garbage, 2 real (repaired) */
    ASSERT_EQ_U64(st.repaired, 3);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_ERROR], 2);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_PAYMENT_ACK], 2);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_ACCEPTED], 1);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_CHUNK], 15);
    ASSERT_EQ_U64(st.by_type[PROTO_MSG_PAY_REQUIRED], 1);
    ASSERT_EQ_U64(st.results, 1);
    ASSERT_EQ_U64(st.results_match, 1); /* output == concatenated chunks */
    ASSERT_EQ_U64(st.sats_acked, 20);
    ASSERT_EQ_U64(st.last_total, 20);
}

TEST(trace_others) {
    static const struct {
        const char *file;
        unsigned ok, bad, chunks, results;
        uint64_t acked;
    } t[] = {
        {"trace-stop.log", 18, 0, 10, 1, 10},
        {"trace-timeout-initial.log", 3, 0, 0, 0, 0},
        {"trace-timeout-mid.log", 18, 0, 10, 1, 10},
        {"trace-disconnect-waiting.log", 16, 0, 10, 0, 10},
        {"trace-overpay-doublespend.log", 42, 0, 30, 2, 50},
        {"trace-noid.log", 0, 3, 0, 0, 0}, /* no id on any line: rejected */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        trace_stats_t st = {0};
        ASSERT_OK(run_trace(t[i].file, &st));
        if (st.ok != t[i].ok || st.bad != t[i].bad)
            fprintf(stderr, "  %s: ok %u bad %u\n", t[i].file, st.ok, st.bad);
        ASSERT_EQ_U64(st.ok, t[i].ok);
        ASSERT_EQ_U64(st.bad, t[i].bad);
        ASSERT_EQ_U64(st.json + st.unknown, 0);
        ASSERT_EQ_U64(st.by_type[PROTO_MSG_CHUNK], t[i].chunks);
        ASSERT_EQ_U64(st.results, t[i].results);
        ASSERT_EQ_U64(st.results_match, t[i].results);
        ASSERT_EQ_U64(st.sats_acked, t[i].acked);
    }
}

TEST_MAIN(TEST_ENTRY(base_messages_decode), TEST_ENTRY(extension_fields_decode),
          TEST_ENTRY(invalid_messages_rejected),
          TEST_ENTRY(failed_decode_keeps_type_and_id_for_the_reply), TEST_ENTRY(integer_ranges),
          TEST_ENTRY(ids), TEST_ENTRY(unknown_type_reported_with_its_name),
          TEST_ENTRY(unknown_fields_ignored_and_key_order_irrelevant),
          TEST_ENTRY(strings_escape_and_round_trip), TEST_ENTRY(encode_refuses_what_decode_rejects),
          TEST_ENTRY(reference_lines_reencode_byte_for_byte), TEST_ENTRY(trace_basic),
          TEST_ENTRY(trace_others))
