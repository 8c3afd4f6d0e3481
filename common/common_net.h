/* SPDX-License-Identifier: MIT */
/**
 * @file common_net.h
 * @brief Address text helpers shared by every program's command line.
 */
#ifndef SWARMDVM_COMMON_NET_H
#define SWARMDVM_COMMON_NET_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Split "host:port" (a name or IPv4 address, or "[v6]:port"; port 0..65535, strict
 * decimal) into @p host (NUL-terminated, brackets removed) and @p port.
 * @return 0 or COMMON_EINVAL (no port, bad port, empty host, host longer than @p hostcap-1).
 */
int common_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port);

#endif
