/* SPDX-License-Identifier: MIT */
/**
 * @file test.h
 * @brief A tiny test harness: one executable per module, many TEST()s, assertions that
 *        print both sides. Run by ctest; `./test_x name` runs one test.
 *
 *   TEST(framer_split) { ASSERT_EQ_U64(1, 1); }
 *   TEST_MAIN(TEST_ENTRY(framer_split), ...)
 *
 * A failed assertion prints file:line and the values, marks the test failed and returns
 * from it. The process exits 1 if any test failed, and prints "N passed, N failed".
 */
#ifndef SWARMDVM_TESTS_TEST_H
#define SWARMDVM_TESTS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct test_ctx {
    int failed;
} test_ctx_t;

typedef struct test_entry {
    const char *name;
    void (*fn)(test_ctx_t *);
} test_entry_t;

#define TEST(name) static void test_##name(test_ctx_t *test_ctx_)
#define TEST_ENTRY(name) \
    { #name, test_##name }

#define TEST_FAIL_(...)                                   \
    do {                                                  \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                     \
        fputc('\n', stderr);                              \
        test_ctx_->failed = 1;                            \
        return;                                           \
    } while (0)

#define ASSERT_TRUE(c)                                    \
    do {                                                  \
        if (!(c)) TEST_FAIL_("assertion failed: %s", #c); \
    } while (0)
#define ASSERT_FALSE(c) ASSERT_TRUE(!(c))

#define ASSERT_EQ_I64(a, b)                                                 \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_) TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)
#define ASSERT_EQ_U64(a, b)                                                            \
    do {                                                                               \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
        if (a_ != b_) TEST_FAIL_("%s == %s: %llu != %llu", #a, #b, a_, b_);            \
    } while (0)
#define ASSERT_OK(e)                                                     \
    do {                                                                 \
        long long r_ = (long long)(e);                                   \
        if (r_ != 0) TEST_FAIL_("%s returned %lld, expected 0", #e, r_); \
    } while (0)
#define ASSERT_ERR(e, code)                                                                  \
    do {                                                                                     \
        long long r_ = (long long)(e), c_ = (long long)(code);                               \
        if (r_ != c_) TEST_FAIL_("%s returned %lld, expected %s (%lld)", #e, r_, #code, c_); \
    } while (0)
#define ASSERT_GT(a, b)                                                      \
    do {                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                  \
        if (!(a_ > b_)) TEST_FAIL_("%s > %s: %lld <= %lld", #a, #b, a_, b_); \
    } while (0)
#define ASSERT_GE(a, b)                                                       \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (!(a_ >= b_)) TEST_FAIL_("%s >= %s: %lld < %lld", #a, #b, a_, b_); \
    } while (0)
#define ASSERT_LE(a, b)                                                       \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (!(a_ <= b_)) TEST_FAIL_("%s <= %s: %lld > %lld", #a, #b, a_, b_); \
    } while (0)
#define ASSERT_STR_EQ(a, b)                                                      \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                   \
            TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                       b_ ? b_ : "(null)");                                      \
    } while (0)
#define ASSERT_MEM_EQ(a, b, n)                                                                    \
    do {                                                                                          \
        if (memcmp((a), (b), (n)) != 0) {                                                         \
            fprintf(stderr, "  %s:%d: %s and %s differ over %zu bytes\n", __FILE__, __LINE__, #a, \
                    #b, (size_t)(n));                                                             \
            test_print_hex_("    got ", (a), (n));                                                \
            test_print_hex_("    want", (b), (n));                                                \
            test_ctx_->failed = 1;                                                                \
            return;                                                                               \
        }                                                                                         \
    } while (0)

static inline void test_print_hex_(const char *label, const void *p, size_t n) {
    const unsigned char *b = p;
    fprintf(stderr, "%s ", label);
    for (size_t i = 0; i < n && i < 96; i++) fprintf(stderr, "%02x", b[i]);
    fprintf(stderr, n > 96 ? "...\n" : "\n");
}

static inline int test_run_(const test_entry_t *t, size_t n, int argc, char **argv) {
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++) want |= strcmp(argv[a], t[i].name) == 0;
            if (!want) continue;
        }
        test_ctx_t ctx = {0};
        t[i].fn(&ctx);
        fprintf(stderr, "%s %s\n", ctx.failed ? "FAIL" : "ok  ", t[i].name);
        if (ctx.failed)
            failed++;
        else
            passed++;
    }
    if (passed + failed == 0) {
        fprintf(stderr, "no test matched\n");
        return 1;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_MAIN(...)                                                          \
    int main(int argc, char **argv) {                                           \
        static const test_entry_t tests_[] = {__VA_ARGS__};                     \
        return test_run_(tests_, sizeof tests_ / sizeof tests_[0], argc, argv); \
    }

#endif
