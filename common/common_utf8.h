/* SPDX-License-Identifier: MIT */
/**
 * @file common_utf8.h
 * @brief UTF-8 validation and safe cut points, for streams that arrive in arbitrary pieces.
 */
#ifndef SWARMDVM_COMMON_UTF8_H
#define SWARMDVM_COMMON_UTF8_H

#include <stddef.h>

/** @brief 1 if @p s[0..len) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int common_utf8_valid(const char *s, size_t len);

/**
 * @brief The character at @p s[0..n) (n >= 1): its length 1..4 when well-formed, 0 when
 * the bytes there can never start a well-formed character (invalid lead, bad continuation,
 * overlong, surrogate, > U+10FFFF), -1 when they are a valid but incomplete prefix.
 */
int common_utf8_char(const char *s, size_t n);

/**
 * @brief The longest prefix of @p s[0..len) that does not end inside a multibyte sequence.
 * Bytes after it are the start of an incomplete character (at most 3) and should be held
 * back until more input arrives. Invalid bytes are not held back (they will never complete).
 */
size_t common_utf8_complete_prefix(const char *s, size_t len);

#endif
