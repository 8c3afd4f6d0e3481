/* SPDX-License-Identifier: MIT */
/* The QR renderings carry exactly libqrencode's matrix: the text form is read back module by
 * module, and the SVG draws one square per dark module. */
#include "agent/agent_qr.h"
#include "common/common_err.h"
#include "tests/test.h"

#include <qrencode.h>

static const char *link_ =
    "dvm://5100/816c51f93a8e89cc366d3e31ca144d7178d4557a8d655004b0f7ba0f9bb796da"
    "?pk=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f&name=agent";

/* Read the half-block text back into "ink" bits. */
static int read_glyph(const unsigned char **p, int *top, int *bottom) {
    if (**p == ' ') {
        *top = *bottom = 0;
        (*p)++;
        return 0;
    }
    if ((*p)[0] != 0xe2 || (*p)[1] != 0x96) return -1;
    switch ((*p)[2]) {
    case 0x80: *top = 1, *bottom = 0; break;
    case 0x84: *top = 0, *bottom = 1; break;
    case 0x88: *top = 1, *bottom = 1; break;
    default: return -1;
    }
    *p += 3;
    return 0;
}

TEST(text_render_reads_back_to_the_matrix) {
    agent_qr_t qr;
    ASSERT_OK(agent_qr_encode(link_, &qr));
    QRcode *ref = QRcode_encodeString8bit(link_, 0, QR_ECLEVEL_M);
    ASSERT_TRUE(ref != NULL);
    ASSERT_EQ_I64(qr.size, ref->width);
    for (int invert = 0; invert <= 1; invert++) {
        common_buf_t out = {0};
        ASSERT_OK(agent_qr_render_text(&qr, invert, &out));
        ASSERT_OK(common_buf_append(&out, "", 1));
        int full = qr.size + 4, lines = 0;
        const unsigned char *p = out.data;
        for (int y = 0; y < full; y += 2, lines++) {
            for (int x = 0; x < full; x++) {
                int top, bottom;
                ASSERT_OK(read_glyph(&p, &top, &bottom));
                for (int half = 0; half < 2 && y + half < full; half++) {
                    int ink = half ? bottom : top;
                    int mx = x - 2, my = y + half - 2;
                    int dark = (mx >= 0 && my >= 0 && mx < qr.size && my < qr.size)
                                   ? ref->data[my * ref->width + mx] & 1
                                   : 0;
                    ASSERT_EQ_I64(ink, invert ? dark : !dark);
                }
            }
            ASSERT_EQ_I64(*p, '\n');
            p++;
        }
        ASSERT_EQ_I64(*p, '\0');
        ASSERT_EQ_I64(lines, (full + 1) / 2);
        common_buf_free(&out);
    }
    QRcode_free(ref);
    agent_qr_free(&qr);
}

TEST(svg_has_one_square_per_dark_module) {
    agent_qr_t qr;
    ASSERT_OK(agent_qr_encode(link_, &qr));
    int dark = 0;
    for (int i = 0; i < qr.size * qr.size; i++) dark += qr.dark[i];
    common_buf_t svg = {0};
    ASSERT_OK(agent_qr_render_svg(&qr, &svg));
    ASSERT_OK(common_buf_append(&svg, "", 1));
    int squares = 0;
    for (const char *p = (const char *)svg.data; (p = strchr(p, 'M')); p++) squares++;
    ASSERT_EQ_I64(squares, dark);
    ASSERT_TRUE(strstr((const char *)svg.data, "<svg") != NULL);
    ASSERT_TRUE(strstr((const char *)svg.data, "</svg>") != NULL);
    common_buf_free(&svg);
    agent_qr_free(&qr);
}

TEST(bad_input) {
    agent_qr_t qr;
    ASSERT_ERR(agent_qr_encode("", &qr), COMMON_EINVAL);
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ASSERT_ERR(agent_qr_encode(big, &qr), COMMON_ETOOBIG);
    ASSERT_ERR(agent_qr_write_svg(link_, "/nonexistent-dir/x.svg"), COMMON_EIO);
}

TEST_MAIN(TEST_ENTRY(text_render_reads_back_to_the_matrix),
          TEST_ENTRY(svg_has_one_square_per_dark_module), TEST_ENTRY(bad_input))
