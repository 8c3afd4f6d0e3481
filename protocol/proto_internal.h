/* SPDX-License-Identifier: MIT */
/**
 * @file proto_internal.h
 * @brief Helpers shared by the files of protocol/ only (proto__ prefix). Not an API.
 */
#ifndef SWARMDVM_PROTO_INTERNAL_H
#define SWARMDVM_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_event.h"

/** An event FIFO; the data of the last popped event is freed (wiped) on the next pop. */
typedef struct proto__evq {
    proto_event_t *ev;
    size_t head, n, cap;
    char *last;
    size_t last_len;
} proto__evq_t;

/** Queue an event; @p data[0..len) is copied (NUL added) when not NULL. */
int proto__evq_push(proto__evq_t *q, proto_event_kind_t kind, int code, uint64_t a, uint64_t b,
                    const void *data, size_t len);
int proto__evq_pop(proto__evq_t *q, proto_event_t *out);
void proto__evq_free(proto__evq_t *q);
size_t proto__evq_pending(const proto__evq_t *q);

#endif
