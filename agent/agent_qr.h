/* SPDX-License-Identifier: MIT */
/**
 * @file agent_qr.h
 * @brief QR codes of the join link (libqrencode): terminal text and SVG.
 *
 * Terminal form: two module rows per text line with UTF-8 half blocks (▀ ▄ █). Light
 * modules and the quiet zone are drawn as blocks and dark modules as spaces, the usual
 * choice for dark terminals (what `qrencode -t UTF8` does); pass invert=1 for light ones.
 */
#ifndef SWARMDVM_AGENT_QR_H
#define SWARMDVM_AGENT_QR_H

#include <stddef.h>

#include "common/common_codec.h"

/** A QR matrix: size×size modules, 1 = dark. Owned; free with agent_qr_free. */
typedef struct agent_qr {
    int size;
    unsigned char *dark;
} agent_qr_t;

/** @brief Encode @p text (byte mode, error correction M). @return 0 or COMMON_E*. */
int agent_qr_encode(const char *text, agent_qr_t *qr);
void agent_qr_free(agent_qr_t *qr);

/** @brief Render as UTF-8 half blocks with a 2-module quiet zone; appends to @p out. */
int agent_qr_render_text(const agent_qr_t *qr, int invert, common_buf_t *out);

/** @brief Render as a standalone SVG (4-module quiet zone, 8 px modules). */
int agent_qr_render_svg(const agent_qr_t *qr, common_buf_t *out);

/** @brief Write the SVG of @p text to @p path. */
int agent_qr_write_svg(const char *text, const char *path);

#endif
