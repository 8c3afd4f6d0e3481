/* SPDX-License-Identifier: MIT */
/* Shared by the state-machine tests: render events as short protocol-like strings, e.g.
 * "offer 1x10", "chunk Hello", "pay_required 10/10", "result 'Hi' 20 c2 done", "llm_start". */
#ifndef SWARMDVM_TESTS_PROTO_TEST_UTIL_H
#define SWARMDVM_TESTS_PROTO_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

#include "protocol/proto_event.h"
#include "protocol/proto_msg.h"

static inline void render_line(const char *line, size_t len, char *out, size_t cap) {
    proto_msg_t m;
    if (len == 0 || line[len - 1] != '\n' || proto_msg_decode(line, len - 1, &m, NULL, 0) != 0) {
        snprintf(out, cap, "BADLINE(%.*s)", (int)len, line);
        return;
    }
    switch (m.type) {
    case PROTO_MSG_REQUEST: snprintf(out, cap, "request %s", m.request.input); break;
    case PROTO_MSG_OFFER:
        snprintf(out, cap, "offer %llux%llu", (unsigned long long)m.offer.sats_per_chunk,
                 (unsigned long long)m.offer.chunks_per_payment);
        break;
    case PROTO_MSG_PAYMENT: snprintf(out, cap, "payment %s", m.payment.token); break;
    case PROTO_MSG_PAYMENT_ACK:
        snprintf(out, cap, "ack %llu c%llu", (unsigned long long)m.payment_ack.amount,
                 (unsigned long long)m.payment_ack.credit);
        break;
    case PROTO_MSG_ACCEPTED: snprintf(out, cap, "accepted"); break;
    case PROTO_MSG_CHUNK: snprintf(out, cap, "chunk %s", m.chunk.data); break;
    case PROTO_MSG_PAY_REQUIRED:
        snprintf(out, cap, "pay_required %llu/%llu", (unsigned long long)m.pay_required.earned,
                 (unsigned long long)m.pay_required.next);
        break;
    case PROTO_MSG_RESULT:
        snprintf(out, cap, "result '%s' %llu c%llu %s", m.result.output,
                 (unsigned long long)m.result.total_sats, (unsigned long long)m.result.chunks,
                 m.result.reason ? proto_reason_name(m.result.reason) : "-");
        break;
    case PROTO_MSG_STOP: snprintf(out, cap, "stop"); break;
    case PROTO_MSG_ERROR:
        snprintf(out, cap, "error %s", m.error.code ? proto_error_code_name(m.error.code) : "-");
        break;
    default: snprintf(out, cap, "%s", proto_msg_type_name(m.type)); break;
    }
    proto_msg_free(&m);
}

/* Append the rendering of @p ev to @p tr ("a|b|c"). */
static inline void render_event(const proto_event_t *ev, char *tr, size_t cap) {
    char one[512];
    switch (ev->kind) {
    case PROTO_EV_SEND: render_line(ev->data, ev->len, one, sizeof one); break;
    case PROTO_EV_VERIFY_TOKEN:
        snprintf(one, sizeof one, "verify#%llu %s", (unsigned long long)ev->a, ev->data);
        break;
    case PROTO_EV_PERSIST_TOKEN:
        snprintf(one, sizeof one, "persist %s %llu", ev->data, (unsigned long long)ev->a);
        break;
    case PROTO_EV_CLAIM: snprintf(one, sizeof one, "claim %llu", (unsigned long long)ev->a); break;
    case PROTO_EV_PREPARE_TOKENS:
        snprintf(one, sizeof one, "prepare %llux%llu", (unsigned long long)ev->a,
                 (unsigned long long)ev->b);
        break;
    case PROTO_EV_TOKEN_SENT:
        snprintf(one, sizeof one, "token_sent %llu", (unsigned long long)ev->a);
        break;
    case PROTO_EV_OUTPUT: snprintf(one, sizeof one, "output %s", ev->data); break;
    case PROTO_EV_ACK: snprintf(one, sizeof one, "acked %llu", (unsigned long long)ev->a); break;
    case PROTO_EV_PROVIDER_ERROR:
        snprintf(one, sizeof one, "provider_error %s",
                 ev->code ? proto_error_code_name((proto_error_code_t)ev->code) : "-");
        break;
    case PROTO_EV_RESULT:
        snprintf(one, sizeof one, "got_result '%s' %llu", ev->data, (unsigned long long)ev->a);
        break;
    default: snprintf(one, sizeof one, "%s", proto_event_name(ev->kind)); break;
    }
    size_t used = strlen(tr);
    snprintf(tr + used, cap - used, "%s%s", used ? "|" : "", one);
}

#endif
