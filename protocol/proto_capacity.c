/* SPDX-License-Identifier: MIT */
#include "protocol/proto_capacity.h"

#include "common/common_err.h"

void proto_capacity_init(proto_capacity_t *c, uint32_t max) {
    c->active = 0;
    c->max = max;
    c->acquired = c->released = c->refused = 0;
}

int proto_capacity_acquire(proto_capacity_t *c) {
    if (c->active >= c->max) {
        c->refused++;
        return AGENT_ECAPACITY;
    }
    c->active++;
    c->acquired++;
    return 0;
}

int proto_capacity_release(proto_capacity_t *c) {
    if (c->active == 0) return COMMON_ESTATE;
    c->active--;
    c->released++;
    return 0;
}
