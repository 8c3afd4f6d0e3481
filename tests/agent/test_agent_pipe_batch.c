/* SPDX-License-Identifier: MIT */
/* The pipeline batcher (agent_pipe_batch): batch sizes in characters, cut preferences
 * (sentence end > whitespace > hard cut), never inside a UTF-8 sequence, remainder flushed
 * at the end, concatenation == input whatever the feeding pattern. */
#include "agent/agent_pipe_batch.h"
#include "common/common_err.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

/* code points in s[0..n) (valid UTF-8 assumed) */
static size_t cps(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}
static int boundary_ok(const char *s, size_t n) { /* does not end inside a sequence */
    if (n == 0) return 1;
    size_t i = n;
    size_t k = 0;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, k++;
    if (i == 0) return 0;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 0 : lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
    return k == need;
}

TEST(sentence_cut_preferred) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(20, 0);
    ASSERT_TRUE(b != NULL);
    const char *in = "Hello there. How are you doing today";
    ASSERT_OK(agent_pipe_batch_feed(b, in, strlen(in)));
    char *o;
    size_t n;
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "Hello there. ");
    free(o);
    /* "How are you doing today" = 23 chars >= 20: whitespace cut */
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "How are you doing ");
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 0); /* "today": not full */
    ASSERT_EQ_U64(agent_pipe_batch_pending(b), 5);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 1, &o, &n), 1);
    ASSERT_STR_EQ(o, "today");
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 1, &o, &n), 0);
    agent_pipe_batch_free(b);
}

TEST(no_early_cut_in_first_half) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(20, 0);
    /* the sentence end is at char 3 (first half): whitespace cut later wins */
    const char *in = "Hi. abcdefgh ijklmnopqrstuvwxyz";
    ASSERT_OK(agent_pipe_batch_feed(b, in, strlen(in)));
    char *o;
    size_t n;
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "Hi. abcdefgh ");
    free(o);
    agent_pipe_batch_free(b);
}

TEST(hard_cut_without_spaces) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(10, 0);
    const char *in = "abcdefghijklmnopqrstuvwxy";
    ASSERT_OK(agent_pipe_batch_feed(b, in, strlen(in)));
    char *o;
    size_t n;
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "abcdefghij");
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "klmnopqrst");
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 0);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 1, &o, &n), 1);
    ASSERT_STR_EQ(o, "uvwxy");
    free(o);
    agent_pipe_batch_free(b);
}

TEST(cjk_counts_characters_and_cuts_after_full_stop) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(6, 0);
    /* 百年孤独。多年以后 : 9 characters, 27 bytes; full stop at char 5 (> half) */
    const char *in = "百年孤独。多年以后";
    ASSERT_OK(agent_pipe_batch_feed(b, in, strlen(in)));
    char *o;
    size_t n;
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "百年孤独。");
    ASSERT_EQ_U64(n, 15);
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 0); /* 4 chars left */
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 1, &o, &n), 1);
    ASSERT_STR_EQ(o, "多年以后");
    free(o);
    agent_pipe_batch_free(b);
}

TEST(split_sequence_is_held) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(3, 0);
    const char *in = "ab\xE4\xB8\xAD"
                     "cd"; /* ab中cd */
    char *o;
    size_t n;
    ASSERT_OK(agent_pipe_batch_feed(b, in, 3)); /* "ab" + first byte of 中 */
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 0);
    ASSERT_OK(agent_pipe_batch_feed(b, in + 3, 1));
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 0);
    ASSERT_OK(agent_pipe_batch_feed(b, in + 4, 1)); /* 中 complete: 3 chars */
    ASSERT_EQ_I64(agent_pipe_batch_next(b, 0, &o, &n), 1);
    ASSERT_STR_EQ(o, "ab\xE4\xB8\xAD");
    free(o);
    agent_pipe_batch_free(b);
}

TEST(bounded) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(100, 16);
    ASSERT_OK(agent_pipe_batch_feed(b, "0123456789", 10));
    ASSERT_ERR(agent_pipe_batch_feed(b, "0123456789", 10), COMMON_ETOOBIG);
    ASSERT_EQ_U64(agent_pipe_batch_pending(b), 10);
    ASSERT_TRUE(agent_pipe_batch_new(0, 0) == NULL);
    agent_pipe_batch_free(b);
}

/* Random text (ASCII words, punctuation, 2/3/4-byte characters) fed in random pieces (also
 * splitting sequences): every batch is within the size, ends on a character boundary, only
 * the last one is short, and the concatenation equals the input. */
TEST(property_concatenation_and_sizes) {
    static const char *atoms[] = {"word", " ", ". ", "\n", "é", "中", "😀", "! ", "x", "。", "  "};
    unsigned seed = 12345;
    for (int round = 0; round < 300; round++) {
        char in[4096];
        size_t len = 0;
        size_t natoms = 1 + (seed = seed * 1103515245u + 12345u) % 300;
        for (size_t i = 0; i < natoms; i++) {
            const char *a = atoms[((seed = seed * 1103515245u + 12345u) >> 16) % 11];
            size_t al = strlen(a);
            if (len + al >= sizeof in) break;
            memcpy(in + len, a, al);
            len += al;
        }
        size_t size = 1 + (seed = seed * 1103515245u + 12345u) % 40;
        agent_pipe_batch_t *b = agent_pipe_batch_new(size, 0);
        ASSERT_TRUE(b != NULL);
        char outbuf[4096];
        size_t outlen = 0, fed = 0, nbatches = 0;
        int short_seen = 0;
        while (1) {
            int final = fed == len;
            if (!final) {
                size_t piece = 1 + (seed = seed * 1103515245u + 12345u) % 7;
                if (piece > len - fed) piece = len - fed;
                ASSERT_OK(agent_pipe_batch_feed(b, in + fed, piece));
                fed += piece;
            }
            char *o;
            size_t n;
            int r;
            while ((r = agent_pipe_batch_next(b, final, &o, &n)) == 1) {
                ASSERT_GT(n, 0);
                ASSERT_TRUE(boundary_ok(o, n));
                size_t c = cps(o, n);
                ASSERT_LE(c, size);
                /* a batch at most half full only as the very last one (the flush) */
                ASSERT_FALSE(short_seen);
                if (c <= size / 2) {
                    ASSERT_TRUE(final);
                    short_seen = 1;
                }
                memcpy(outbuf + outlen, o, n);
                outlen += n;
                nbatches++;
                free(o);
            }
            ASSERT_EQ_I64(r, 0);
            if (final) break;
        }
        ASSERT_EQ_U64(outlen, len);
        ASSERT_MEM_EQ(outbuf, in, len);
        ASSERT_EQ_U64(agent_pipe_batch_pending(b), 0);
        agent_pipe_batch_free(b);
        (void)nbatches;
    }
}

TEST(partial_flush) {
    agent_pipe_batch_t *b = agent_pipe_batch_new(500, 0);
    char *o;
    size_t n;
    ASSERT_EQ_I64(agent_pipe_batch_partial(b, &o, &n), 0); /* empty */
    ASSERT_OK(agent_pipe_batch_feed(b, "One two. Three fo", 17));
    ASSERT_EQ_I64(agent_pipe_batch_partial(b, &o, &n), 1);
    ASSERT_STR_EQ(o, "One two. "); /* sentence end preferred */
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_partial(b, &o, &n), 1);
    ASSERT_STR_EQ(o, "Three "); /* then whitespace */
    free(o);
    ASSERT_OK(agent_pipe_batch_feed(b, "ur\xE4\xB8", 4)); /* "four" + 2 bytes of a 3-byte char */
    ASSERT_EQ_I64(agent_pipe_batch_partial(b, &o, &n), 1);
    ASSERT_STR_EQ(o, "four"); /* whole characters only */
    free(o);
    ASSERT_EQ_I64(agent_pipe_batch_partial(b, &o, &n), 0);
    ASSERT_EQ_U64(agent_pipe_batch_pending(b), 2);
    ASSERT_OK(agent_pipe_batch_feed(b, "\xAD", 1));
    ASSERT_EQ_I64(agent_pipe_batch_partial(b, &o, &n), 1);
    ASSERT_STR_EQ(o, "\xE4\xB8\xAD");
    free(o);
    agent_pipe_batch_free(b);
}

TEST_MAIN(TEST_ENTRY(partial_flush), TEST_ENTRY(sentence_cut_preferred),
          TEST_ENTRY(no_early_cut_in_first_half), TEST_ENTRY(hard_cut_without_spaces),
          TEST_ENTRY(cjk_counts_characters_and_cuts_after_full_stop),
          TEST_ENTRY(split_sequence_is_held), TEST_ENTRY(bounded),
          TEST_ENTRY(property_concatenation_and_sizes))
