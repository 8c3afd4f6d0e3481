/* SPDX-License-Identifier: MIT */
#include "common/common_codec.h"
#include "common/common_err.h"
#include "protocol/proto_joinlink.h"
#include "tests/test.h"

#include <sodium.h>

TEST(topics_match_the_protocol_document) {
    uint8_t t[32];
    char hex[65];
    proto_topic(5100, t);
    common_hex_encode(t, 32, hex);
    ASSERT_STR_EQ(hex, "816c51f93a8e89cc366d3e31ca144d7178d4557a8d655004b0f7ba0f9bb796da");
    proto_topic(5302, t);
    common_hex_encode(t, 32, hex);
    ASSERT_STR_EQ(hex, "39b20bf4783c6a63a9936a8f917b90b6239581ac2162d087f0ba7f7db6757a07");
}

TEST(format_and_parse_roundtrip) {
    uint8_t pk[32];
    for (int i = 0; i < 32; i++) pk[i] = (uint8_t)i;
    char link[256];
    ASSERT_OK(proto_joinlink_format(5100, pk, "my agent/1 é", link, sizeof link));
    ASSERT_STR_EQ(link,
                  "dvm://5100/816c51f93a8e89cc366d3e31ca144d7178d4557a8d655004b0f7ba0f9bb796da"
                  "?pk=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                  "&name=my%20agent%2F1%20%C3%A9");
    proto_joinlink_t jl;
    char err[128];
    ASSERT_OK(proto_joinlink_parse(link, &jl, err, sizeof err));
    ASSERT_EQ_U64(jl.kind, 5100);
    ASSERT_TRUE(jl.has_pk);
    ASSERT_MEM_EQ(jl.pk, pk, 32);
    ASSERT_STR_EQ(jl.name, "my agent/1 é");
    /* Without pk and name. */
    ASSERT_OK(proto_joinlink_format(5302, NULL, NULL, link, sizeof link));
    ASSERT_OK(proto_joinlink_parse(link, &jl, err, sizeof err));
    ASSERT_EQ_U64(jl.kind, 5302);
    ASSERT_FALSE(jl.has_pk);
    ASSERT_STR_EQ(jl.name, "");
    ASSERT_ERR(proto_joinlink_format(5100, pk, "x", link, 40), COMMON_ETOOBIG);
    ASSERT_ERR(proto_joinlink_format(70000, pk, "x", link, sizeof link), COMMON_EINVAL);
}

TEST(bad_links_are_refused_with_a_reason) {
    proto_joinlink_t jl;
    char err[128];
    const char *t5100 = "816c51f93a8e89cc366d3e31ca144d7178d4557a8d655004b0f7ba0f9bb796da";
    char link[300];
    ASSERT_ERR(proto_joinlink_parse("http://x", &jl, err, sizeof err), COMMON_EINVAL);
    ASSERT_ERR(proto_joinlink_parse("dvm://abc/xyz", &jl, err, sizeof err), COMMON_EINVAL);
    ASSERT_ERR(proto_joinlink_parse("dvm://5100/1234", &jl, err, sizeof err), COMMON_EINVAL);
    /* The topic of another kind. */
    snprintf(link, sizeof link, "dvm://5302/%s", t5100);
    ASSERT_ERR(proto_joinlink_parse(link, &jl, err, sizeof err), COMMON_EINVAL);
    ASSERT_TRUE(strstr(err, "not the topic of kind 5302") != NULL);
    snprintf(link, sizeof link, "dvm://5100/%s?pk=12", t5100);
    ASSERT_ERR(proto_joinlink_parse(link, &jl, err, sizeof err), COMMON_EINVAL);
    snprintf(link, sizeof link, "dvm://5100/%s?name=a%%2", t5100);
    ASSERT_ERR(proto_joinlink_parse(link, &jl, err, sizeof err), COMMON_EINVAL);
    snprintf(link, sizeof link, "dvm://5100/%s?name=a%%00b", t5100);
    ASSERT_ERR(proto_joinlink_parse(link, &jl, err, sizeof err), COMMON_EINVAL);
    snprintf(link, sizeof link, "dvm://99999999/%s", t5100);
    ASSERT_ERR(proto_joinlink_parse(link, &jl, err, sizeof err), COMMON_EINVAL);
    /* Unknown parameters are ignored. */
    snprintf(link, sizeof link, "dvm://5100/%s?v=2&name=x", t5100);
    ASSERT_OK(proto_joinlink_parse(link, &jl, err, sizeof err));
    ASSERT_STR_EQ(jl.name, "x");
}

int main(int argc, char **argv) {
    if (sodium_init() < 0) return 1;
    static const test_entry_t tests[] = {TEST_ENTRY(topics_match_the_protocol_document),
                                         TEST_ENTRY(format_and_parse_roundtrip),
                                         TEST_ENTRY(bad_links_are_refused_with_a_reason)};
    return test_run_(tests, sizeof tests / sizeof tests[0], argc, argv);
}
