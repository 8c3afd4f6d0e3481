/* SPDX-License-Identifier: MIT */
/**
 * @file proto_event.h
 * @brief Events produced by the job state machines (proto_provider, proto_customer).
 *
 * The cores do no I/O: every input call may queue events (lines to send, actions for the
 * wallet / LLM driver / capacity counter, things to show the user), which the caller drains
 * in order with proto_provider_next_event() / proto_customer_next_event() and carries out.
 * Order matters (e.g. PERSIST_TOKEN comes before the SEND of its payment_ack, TOKEN_SENT
 * before the SEND of its payment): carry them out in the order given.
 *
 * An event's `data` is owned by the core and valid until the next *_next_event() call on
 * the same core or its *_free(); copy what you keep. Token-bearing buffers are wiped.
 */
#ifndef SWARMDVM_PROTO_EVENT_H
#define SWARMDVM_PROTO_EVENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum proto_event_kind {
    PROTO_EV_NONE = 0,
    /* both sides */
    PROTO_EV_SEND, /* data/len: one NDJSON line (ends in '\n') for the job's connection */
    PROTO_EV_DONE, /* the job is over; no further events. code: proto_reason_t (provider) or
                      proto_outcome_t (customer); a: sats paid/received; b: chunks */
    /* provider */
    PROTO_EV_VERIFY_TOKEN,  /* data: token; a: ticket. Answer with payment_verified/rejected */
    PROTO_EV_PERSIST_TOKEN, /* data: verified token; a: amount; b: locked. Store durably now */
    PROTO_EV_LLM_START,     /* start generation (request input/params are the caller's) */
    PROTO_EV_LLM_ABORT,     /* abort the LLM request at once */
    PROTO_EV_LLM_PAUSE,     /* generation buffer full: stop reading the LLM stream */
    PROTO_EV_LLM_RESUME,    /* buffer drained: resume reading */
    PROTO_EV_RELEASE_SLOT,  /* give back the capacity slot (exactly once per job) */
    PROTO_EV_CLAIM,         /* claim this job's tokens with the mint (once); a: verified sats */
    /* customer */
    PROTO_EV_PREPARE_TOKENS, /* a: count, b: sats each; answer with proto_customer_tokens() */
    PROTO_EV_TOKEN_SENT,     /* a: index of the micro-token about to be sent (mark it spent) */
    PROTO_EV_OUTPUT,         /* data/len: generated text to print, in order */
    PROTO_EV_ACK,            /* a: sats the provider credited for one payment */
    PROTO_EV_PROVIDER_ERROR, /* code: proto_error_code_t; data: the provider's message */
    PROTO_EV_RESULT,         /* data: result output; a: total_sats; b: chunks seen */
    PROTO_EV_FALLBACK,       /* try another provider; code: proto_outcome_t (why) */
} proto_event_kind_t;

typedef struct proto_event {
    proto_event_kind_t kind;
    int code;
    uint64_t a, b;
    const char *data; /* borrowed, NUL-terminated, see above; NULL when unused */
    size_t len;
} proto_event_t;

/** @brief Name of an event kind for logs and tests ("send", "llm_start", ...). */
const char *proto_event_name(proto_event_kind_t k);

#endif
