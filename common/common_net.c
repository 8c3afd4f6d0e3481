/* SPDX-License-Identifier: MIT */
#include "common/common_net.h"
#include "common/common_codec.h"
#include "common/common_err.h"

#include <string.h>

int common_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port) {
    if (!s) return COMMON_EINVAL;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return COMMON_EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return COMMON_EINVAL;
        h++;
        hl -= 2;
    }
    if (hl + 1 > hostcap) return COMMON_EINVAL;
    uint64_t p;
    if (common_parse_u64(colon + 1, 0, 65535, &p)) return COMMON_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}
