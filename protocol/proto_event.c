/* SPDX-License-Identifier: MIT */
#include "protocol/proto_event.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "protocol/proto_internal.h"

const char *proto_event_name(proto_event_kind_t k) {
    static const char *const names[] = {
        [PROTO_EV_NONE] = "none",
        [PROTO_EV_SEND] = "send",
        [PROTO_EV_DONE] = "done",
        [PROTO_EV_VERIFY_TOKEN] = "verify_token",
        [PROTO_EV_PERSIST_TOKEN] = "persist_token",
        [PROTO_EV_LLM_START] = "llm_start",
        [PROTO_EV_LLM_ABORT] = "llm_abort",
        [PROTO_EV_LLM_PAUSE] = "llm_pause",
        [PROTO_EV_LLM_RESUME] = "llm_resume",
        [PROTO_EV_RELEASE_SLOT] = "release_slot",
        [PROTO_EV_CLAIM] = "claim",
        [PROTO_EV_PREPARE_TOKENS] = "prepare_tokens",
        [PROTO_EV_TOKEN_SENT] = "token_sent",
        [PROTO_EV_OUTPUT] = "output",
        [PROTO_EV_ACK] = "ack",
        [PROTO_EV_PROVIDER_ERROR] = "provider_error",
        [PROTO_EV_RESULT] = "result",
        [PROTO_EV_FALLBACK] = "fallback",
    };
    return (unsigned)k < sizeof names / sizeof names[0] && names[k] ? names[k] : "?";
}

static void wipe_free(char *p, size_t len) {
    if (!p) return;
    sodium_memzero(p, len);
    free(p);
}

int proto__evq_push(proto__evq_t *q, proto_event_kind_t kind, int code, uint64_t a, uint64_t b,
                    const void *data, size_t len) {
    if (q->n == q->cap) {
        if (q->head > 0) { /* reuse the consumed front */
            memmove(q->ev, q->ev + q->head, (q->n - q->head) * sizeof *q->ev);
            q->n -= q->head;
            q->head = 0;
        }
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 16;
            proto_event_t *ev = realloc(q->ev, cap * sizeof *ev);
            if (!ev) return COMMON_ENOMEM;
            q->ev = ev;
            q->cap = cap;
        }
    }
    proto_event_t *e = &q->ev[q->n];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->code = code;
    e->a = a;
    e->b = b;
    if (data) {
        char *copy = malloc(len + 1);
        if (!copy) return COMMON_ENOMEM;
        memcpy(copy, data, len);
        copy[len] = '\0';
        e->data = copy;
        e->len = len;
    }
    q->n++;
    return 0;
}

int proto__evq_pop(proto__evq_t *q, proto_event_t *out) {
    wipe_free(q->last, q->last_len);
    q->last = NULL;
    if (q->head == q->n) {
        q->head = q->n = 0;
        return 0;
    }
    *out = q->ev[q->head++];
    q->last = (char *)out->data;
    q->last_len = out->len;
    return 1;
}

void proto__evq_free(proto__evq_t *q) {
    wipe_free(q->last, q->last_len);
    for (size_t i = q->head; i < q->n; i++) wipe_free((char *)q->ev[i].data, q->ev[i].len);
    free(q->ev);
    memset(q, 0, sizeof *q);
}

size_t proto__evq_pending(const proto__evq_t *q) {
    return q->n - q->head;
}
