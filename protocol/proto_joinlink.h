/* SPDX-License-Identifier: MIT */
/**
 * @file proto_joinlink.h
 * @brief The meeting place of a job kind, and the join link a QR code carries.
 *
 * Topic of kind K = SHA-256("2020117-dvm-kind-K") (32 raw bytes), the Hyperswarm topic that
 * providers announce and customers look up (dvm-protocol.md §1).
 *
 * Join link: `dvm://<kind>/<topic hex>?pk=<provider public key hex>&name=<agent name>`.
 * The topic in the link must equal the kind's topic (a link is refused otherwise, so a
 * mistyped kind cannot send a customer to a different market). `name` is percent-encoded
 * and optional; `pk` (32-byte Ed25519 Hyperswarm key, 64 hex chars) is optional when a
 * link only names a market. Unknown query parameters are ignored.
 */
#ifndef SWARMDVM_PROTO_JOINLINK_H
#define SWARMDVM_PROTO_JOINLINK_H

#include <stddef.h>
#include <stdint.h>

#ifndef PROTO_MAX_NAME
#define PROTO_MAX_NAME 64
#endif

#define PROTO_MAX_KIND 65535u

/** @brief topic = SHA-256("2020117-dvm-kind-<kind>"). */
void proto_topic(uint32_t kind, uint8_t topic[32]);

typedef struct proto_joinlink {
    uint32_t kind;
    uint8_t topic[32];
    int has_pk;
    uint8_t pk[32];
    char name[PROTO_MAX_NAME + 1]; /* decoded; empty when absent */
} proto_joinlink_t;

/**
 * @brief Format a join link into @p out (NUL-terminated).
 * @param pk the provider's public key, or NULL; @param name or NULL.
 * @return 0, COMMON_EINVAL (kind out of range, name too long), COMMON_ETOOBIG (cap).
 */
int proto_joinlink_format(uint32_t kind, const uint8_t pk[32], const char *name, char *out,
                          size_t cap);

/** @brief Parse and check a join link. @return 0 or COMMON_EINVAL with @p err filled. */
int proto_joinlink_parse(const char *link, proto_joinlink_t *out, char *err, size_t errlen);

#endif
