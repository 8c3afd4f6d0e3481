/* SPDX-License-Identifier: MIT */
#include "agent/agent_qr.h"
#include "common/common_err.h"

#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QR_TEXT_QUIET 2
#define QR_SVG_QUIET  4
#define QR_SVG_MODULE 8

int agent_qr_encode(const char *text, agent_qr_t *qr) {
    memset(qr, 0, sizeof *qr);
    if (!text || !*text) return COMMON_EINVAL;
    QRcode *c = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
    if (!c) return COMMON_ETOOBIG; /* longer than the largest version holds */
    size_t n = (size_t)c->width * (size_t)c->width;
    qr->dark = malloc(n);
    if (!qr->dark) {
        QRcode_free(c);
        return COMMON_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) qr->dark[i] = c->data[i] & 1;
    qr->size = c->width;
    QRcode_free(c);
    return 0;
}

void agent_qr_free(agent_qr_t *qr) {
    free(qr->dark);
    qr->dark = NULL;
    qr->size = 0;
}

/* Dark at (x, y) in quiet-zone coordinates; outside the symbol is light. */
static int dark_at(const agent_qr_t *qr, int x, int y, int quiet) {
    x -= quiet;
    y -= quiet;
    if (x < 0 || y < 0 || x >= qr->size || y >= qr->size) return 0;
    return qr->dark[(size_t)y * (size_t)qr->size + (size_t)x];
}

int agent_qr_render_text(const agent_qr_t *qr, int invert, common_buf_t *out) {
    static const char *const glyph[4] = {" ", "\xe2\x96\x80", "\xe2\x96\x84", "\xe2\x96\x88"};
    int full = qr->size + 2 * QR_TEXT_QUIET;
    for (int y = 0; y < full; y += 2) {
        for (int x = 0; x < full; x++) {
            /* "ink" = drawn block: light modules unless inverted. */
            int top = dark_at(qr, x, y, QR_TEXT_QUIET) ^ !invert;
            int bottom = y + 1 < full ? dark_at(qr, x, y + 1, QR_TEXT_QUIET) ^ !invert : 0;
            const char *g = glyph[top | bottom << 1];
            if (common_buf_append(out, g, strlen(g))) return COMMON_ENOMEM;
        }
        if (common_buf_append(out, "\n", 1)) return COMMON_ENOMEM;
    }
    return 0;
}

int agent_qr_render_svg(const agent_qr_t *qr, common_buf_t *out) {
    int full = (qr->size + 2 * QR_SVG_QUIET) * QR_SVG_MODULE;
    if (common_buf_printf(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">\n"
            "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n<path fill=\"#000000\" d=\"",
            full, full, full, full, full, full))
        return COMMON_ENOMEM;
    for (int y = 0; y < qr->size; y++) {
        for (int x = 0; x < qr->size; x++) {
            if (!qr->dark[(size_t)y * (size_t)qr->size + (size_t)x]) continue;
            if (common_buf_printf(out, "M%d %dh%dv%dh-%dz", (x + QR_SVG_QUIET) * QR_SVG_MODULE,
                                  (y + QR_SVG_QUIET) * QR_SVG_MODULE, QR_SVG_MODULE, QR_SVG_MODULE,
                                  QR_SVG_MODULE))
                return COMMON_ENOMEM;
        }
    }
    return common_buf_printf(out, "\"/>\n</svg>\n");
}

int agent_qr_write_svg(const char *text, const char *path) {
    agent_qr_t qr;
    int rc = agent_qr_encode(text, &qr);
    if (rc) return rc;
    common_buf_t svg = {0};
    rc = agent_qr_render_svg(&qr, &svg);
    agent_qr_free(&qr);
    if (rc) {
        common_buf_free(&svg);
        return rc;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        common_buf_free(&svg);
        return COMMON_EIO;
    }
    size_t w = fwrite(svg.data, 1, svg.len, f);
    int closed = fclose(f);
    rc = (w != svg.len || closed != 0) ? COMMON_EIO : 0;
    common_buf_free(&svg);
    return rc;
}
