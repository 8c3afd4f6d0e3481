/* SPDX-License-Identifier: MIT */
/* The CBOR reader/writer: round trips, canonical heads, and refusal of truncated, oversized,
 * indefinite and too-deep input. */
#include <string.h>

#include "cashu/cashu_cbor.h"
#include "common/common_err.h"
#include "tests/test.h"

TEST(heads_roundtrip) {
    static const uint64_t vals[] = {
        0, 23, 24, 255, 256, 65535, 65536, 4294967295ull, 4294967296ull, UINT64_MAX};
    static const size_t lens[] = {1, 1, 2, 2, 3, 3, 5, 5, 9, 9};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        common_buf_t b = {0};
        ASSERT_OK(cashu_cbor_put_uint(&b, vals[i]));
        ASSERT_EQ_U64(b.len, lens[i]);
        cashu_cbor_rd_t r = {b.data, b.len, 0};
        uint64_t v;
        ASSERT_OK(cashu_cbor_uint(&r, &v));
        ASSERT_EQ_U64(v, vals[i]);
        ASSERT_EQ_U64(r.pos, b.len);
        common_buf_free(&b);
    }
}

TEST(strings_and_containers) {
    common_buf_t b = {0};
    ASSERT_OK(cashu_cbor_put_head(&b, CBOR_MAP, 2));
    ASSERT_OK(cashu_cbor_put_cstr(&b, "a"));
    ASSERT_OK(cashu_cbor_put_bytes(&b, "\x01\x02\x03", 3));
    ASSERT_OK(cashu_cbor_put_cstr(&b, "b"));
    ASSERT_OK(cashu_cbor_put_head(&b, CBOR_ARRAY, 1));
    ASSERT_OK(cashu_cbor_put_cstr(&b, "x"));
    cashu_cbor_rd_t r = {b.data, b.len, 0};
    size_t n;
    const char *s;
    const uint8_t *d;
    size_t l;
    ASSERT_OK(cashu_cbor_map(&r, &n));
    ASSERT_EQ_U64(n, 2);
    ASSERT_OK(cashu_cbor_text(&r, &s, &l));
    ASSERT_TRUE(l == 1 && s[0] == 'a');
    ASSERT_OK(cashu_cbor_bytes(&r, &d, &l));
    ASSERT_TRUE(l == 3 && d[2] == 3);
    ASSERT_OK(cashu_cbor_text(&r, &s, &l));
    ASSERT_OK(cashu_cbor_skip(&r));
    ASSERT_EQ_U64(r.pos, b.len);
    /* whole-item skip */
    r.pos = 0;
    ASSERT_OK(cashu_cbor_skip(&r));
    ASSERT_EQ_U64(r.pos, b.len);
    common_buf_free(&b);
}

TEST(refusals) {
    uint64_t v;
    size_t n;
    const uint8_t *d;
    size_t l;
    const char *s;
    /* truncated 8-byte argument */
    cashu_cbor_rd_t r = {(const uint8_t *)"\x1b\x00\x00", 3, 0};
    ASSERT_ERR(cashu_cbor_uint(&r, &v), COMMON_EINVAL);
    /* byte string longer than the input */
    r = (cashu_cbor_rd_t){(const uint8_t *)"\x45\x01\x02", 3, 0};
    ASSERT_ERR(cashu_cbor_bytes(&r, &d, &l), COMMON_EINVAL);
    /* array claiming 2^32 elements in 5 bytes */
    r = (cashu_cbor_rd_t){(const uint8_t *)"\x9a\xff\xff\xff\xff", 5, 0};
    ASSERT_ERR(cashu_cbor_array(&r, &n), COMMON_EINVAL);
    /* indefinite map */
    r = (cashu_cbor_rd_t){(const uint8_t *)"\xbf\xff", 2, 0};
    ASSERT_ERR(cashu_cbor_map(&r, &n), COMMON_EUNSUPPORTED);
    /* reserved additional info 28 */
    r = (cashu_cbor_rd_t){(const uint8_t *)"\x1c", 1, 0};
    ASSERT_ERR(cashu_cbor_uint(&r, &v), COMMON_EINVAL);
    /* invalid UTF-8 text */
    r = (cashu_cbor_rd_t){(const uint8_t *)"\x62\xc3\x28", 3, 0};
    ASSERT_ERR(cashu_cbor_text(&r, &s, &l), COMMON_EUTF8);
    /* wrong major type */
    r = (cashu_cbor_rd_t){(const uint8_t *)"\x61\x61", 2, 0};
    ASSERT_ERR(cashu_cbor_uint(&r, &v), COMMON_EINVAL);
    /* nesting deeper than the limit */
    uint8_t deep[64];
    memset(deep, 0x81, sizeof deep); /* [[[[...]]]] */
    deep[63] = 0x00;
    r = (cashu_cbor_rd_t){deep, sizeof deep, 0};
    ASSERT_ERR(cashu_cbor_skip(&r), COMMON_ETOOBIG);
    /* empty input */
    r = (cashu_cbor_rd_t){(const uint8_t *)"", 0, 0};
    ASSERT_ERR(cashu_cbor_skip(&r), COMMON_EINVAL);
}

TEST_MAIN(TEST_ENTRY(heads_roundtrip), TEST_ENTRY(strings_and_containers), TEST_ENTRY(refusals))
