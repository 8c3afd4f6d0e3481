/* SPDX-License-Identifier: MIT */
/* secret-stream core: see dht_sstream.h for the contract. */
#include "dht/dht_sstream.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "dht/dht_ssx.h"

/* Receive buffers above this size are released after use so an idle connection that once
 * got a big message does not keep megabytes. */
#define RBUF_KEEP (256u * 1024)

struct dht_sstream {
    const common_env_t *env;
    int initiator;
    int err;
    dht_noise_t *noise; /* non-NULL during the standalone handshake */
    int ready;          /* push state initialised, header queued */
    int open;           /* remote header accepted */
    dht_ssx_t push;
    dht_ssx_t pull;
    dht_ssx_backend_t backend;
    uint8_t rx[32];
    uint8_t hash[64];
    uint8_t remote_pk[32];
    /* control output */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    /* frame parser */
    uint8_t hdr[3];
    size_t hdr_have;
    int in_body;
    size_t flen;
    size_t have;
    uint8_t *rbuf;
    size_t rbuf_cap;
    /* options */
    size_t max_frame;
    uint32_t keepalive_ms;
    int keep_empty;
    uint64_t last_write;
};

void dht_sstream_id(const uint8_t hash[64], int initiator, uint8_t out[32]) {
    uint8_t ns[32];
    dht_crypto_ns_secretstream(initiator ? DHT_NS_SS_INITIATOR : DHT_NS_SS_RESPONDER, ns);
    dht_crypto_hash_keyed(out, ns, 32, hash, 64);
}

static int fail(dht_sstream_t *s, int rc) {
    if (!s->err) s->err = rc;
    if (s->noise) {
        dht_noise_free(s->noise);
        s->noise = NULL;
    }
    dht_ssx_wipe(&s->push);
    dht_ssx_wipe(&s->pull);
    sodium_memzero(s->rx, sizeof s->rx);
    return s->err;
}

static int out_reserve(dht_sstream_t *s, size_t n) {
    if (s->out_off == s->out_len) s->out_off = s->out_len = 0;
    if (s->out_cap - s->out_len >= n) return 0;
    size_t cap = s->out_cap ? s->out_cap : 256;
    while (cap - s->out_len < n) cap *= 2;
    uint8_t *p = realloc(s->out, cap);
    if (!p) return COMMON_ENOMEM;
    s->out = p;
    s->out_cap = cap;
    return 0;
}

static void put_u24(uint8_t *p, size_t n) {
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
}

static int send_noise(dht_sstream_t *s) {
    int rc = out_reserve(s, 3 + 256);
    if (rc) return rc;
    size_t n;
    uint8_t *p = s->out + s->out_len;
    rc = dht_noise_send(s->noise, NULL, 0, p + 3, 256, &n);
    if (rc) return rc;
    put_u24(p, n);
    s->out_len += 3 + n;
    return 0;
}

static int setup_keys(dht_sstream_t *s, const dht_noise_result_t *r) {
    int rc = out_reserve(s, 3 + DHT_SSTREAM_HEADER_BYTES);
    if (rc) return rc;
    uint8_t *p = s->out + s->out_len;
    put_u24(p, DHT_SSTREAM_HEADER_BYTES);
    dht_sstream_id(r->hash, s->initiator, p + 3);
    randombytes_buf(p + 3 + 32, DHT_SSX_HEADERBYTES);
    rc = dht_ssx_init(&s->push, r->tx, p + 3 + 32, s->backend);
    if (rc) return rc;
    s->out_len += 3 + DHT_SSTREAM_HEADER_BYTES;
    memcpy(s->rx, r->rx, 32);
    memcpy(s->hash, r->hash, 64);
    memcpy(s->remote_pk, r->remote_pk, 32);
    s->ready = 1;
    s->last_write = common_now_ms(s->env);
    return 0;
}

static dht_sstream_t *alloc_stream(int initiator, const common_env_t *env,
                                   const dht_sstream_opts_t *opts, int *err) {
    if (!env) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    dht_sstream_t *s = calloc(1, sizeof *s);
    if (!s) {
        *err = COMMON_ENOMEM;
        return NULL;
    }
    s->env = env;
    s->initiator = initiator ? 1 : 0;
    s->max_frame = opts && opts->max_frame ? opts->max_frame : DHT_SSTREAM_MAX_FRAME;
    if (s->max_frame > 0xffffff) s->max_frame = 0xffffff;
    s->keepalive_ms = opts && opts->keepalive_ms ? opts->keepalive_ms : DHT_SSTREAM_KEEPALIVE_MS;
    s->keep_empty = opts ? opts->keep_empty : 0;
    s->backend = opts ? opts->crypto : DHT_SSX_AUTO;
    return s;
}

dht_sstream_t *dht_sstream_new_xx(int initiator, const dht_keypair_t *kp, const common_env_t *env,
                                  const dht_sstream_opts_t *opts, int *err) {
    int dummy;
    if (!err) err = &dummy;
    *err = 0;
    if (!kp) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    dht_sstream_t *s = alloc_stream(initiator, env, opts, err);
    if (!s) return NULL;
    s->noise = dht_noise_new(DHT_NOISE_XX, s->initiator, kp, NULL, 0, NULL, env, err);
    if (!s->noise) {
        free(s);
        return NULL;
    }
    if (opts && opts->ephemeral_seed) dht_noise_set_ephemeral(s->noise, opts->ephemeral_seed);
    if (s->initiator) {
        int rc = send_noise(s);
        if (rc) {
            *err = rc;
            dht_sstream_free(s);
            return NULL;
        }
    }
    return s;
}

dht_sstream_t *dht_sstream_new_keys(int initiator, const dht_noise_result_t *keys,
                                    const common_env_t *env, const dht_sstream_opts_t *opts,
                                    int *err) {
    int dummy;
    if (!err) err = &dummy;
    *err = 0;
    if (!keys) {
        *err = COMMON_EINVAL;
        return NULL;
    }
    dht_sstream_t *s = alloc_stream(initiator, env, opts, err);
    if (!s) return NULL;
    int rc = setup_keys(s, keys);
    if (rc) {
        *err = rc;
        dht_sstream_free(s);
        return NULL;
    }
    return s;
}

void dht_sstream_output(const dht_sstream_t *s, const uint8_t **p, size_t *len) {
    static const uint8_t none[1] = {0};
    *p = s->out ? s->out + s->out_off : none;
    *len = s->out_len - s->out_off;
}

void dht_sstream_output_consume(dht_sstream_t *s, size_t n) {
    size_t avail = s->out_len - s->out_off;
    if (n > avail) n = avail;
    s->out_off += n;
    if (s->out_off == s->out_len) s->out_off = s->out_len = 0;
}

static int ensure_rbuf(dht_sstream_t *s, size_t n) {
    if (s->rbuf_cap >= n) return 0;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) return COMMON_ENOMEM;
    if (s->rbuf) {
        if (s->have) memcpy(p, s->rbuf, s->have);
        sodium_memzero(s->rbuf, s->rbuf_cap);
        free(s->rbuf);
    }
    s->rbuf = p;
    s->rbuf_cap = n;
    return 0;
}

/* Process one complete frame body at @p body (in the input or in rbuf). */
static int process_frame(dht_sstream_t *s, const uint8_t *body, size_t n, uint8_t *inplace,
                         dht_sstream_event_t *ev) {
    if (s->noise) {
        uint8_t payload[256];
        size_t plen;
        int rc = dht_noise_recv(s->noise, body, n, payload, sizeof payload, &plen);
        if (rc) return fail(s, DHT_EHANDSHAKE);
        if (dht_noise_wants_send(s->noise)) {
            rc = send_noise(s);
            if (rc) return fail(s, rc == COMMON_ENOMEM ? rc : DHT_EHANDSHAKE);
        }
        if (dht_noise_complete(s->noise)) {
            dht_noise_result_t r;
            rc = dht_noise_result(s->noise, &r);
            dht_noise_free(s->noise);
            s->noise = NULL;
            if (!rc) rc = setup_keys(s, &r);
            sodium_memzero(&r, sizeof r);
            if (rc) return fail(s, rc);
            ev->type = DHT_SSTREAM_EV_HANDSHAKE;
        }
        return 0;
    }
    if (!s->open) {
        uint8_t want[32];
        if (n != DHT_SSTREAM_HEADER_BYTES) return fail(s, DHT_EFRAME);
        dht_sstream_id(s->hash, !s->initiator, want);
        if (sodium_memcmp(want, body, 32) != 0) return fail(s, DHT_ESTREAMID);
        int rc = dht_ssx_init(&s->pull, s->rx, body + 32, s->backend);
        if (rc) return fail(s, rc);
        sodium_memzero(s->rx, sizeof s->rx);
        s->open = 1;
        ev->type = DHT_SSTREAM_EV_OPEN;
        return 0;
    }
    if (n < DHT_SSTREAM_ABYTES) return fail(s, DHT_EFRAME);
    uint8_t *m;
    if (inplace) {
        m = inplace + 1; /* in place: the MAC is checked, then c (at +1) decrypts onto itself */
    } else {
        int rc = ensure_rbuf(s, n);
        if (rc) return fail(s, rc);
        m = s->rbuf;
    }
    size_t mlen = n - DHT_SSTREAM_ABYTES;
    uint8_t tag;
    if (dht_ssx_pull(&s->pull, m, &tag, body, n) != 0) return fail(s, COMMON_ECRYPTO);
    if (mlen == 0 && !s->keep_empty) return 0; /* keep-alive */
    ev->type = DHT_SSTREAM_EV_DATA;
    ev->data = m;
    ev->len = mlen;
    return 0;
}

static int feed(dht_sstream_t *s, const uint8_t *in, uint8_t *win, size_t len, size_t *consumed,
                dht_sstream_event_t *ev) {
    ev->type = DHT_SSTREAM_EV_NONE;
    ev->data = NULL;
    ev->len = 0;
    *consumed = 0;
    if (s->err) return s->err;
    int rc;
    /* a big buffer from an earlier message is released before the next one */
    if (!s->in_body && s->rbuf_cap > RBUF_KEEP) {
        sodium_memzero(s->rbuf, s->rbuf_cap);
        free(s->rbuf);
        s->rbuf = NULL;
        s->rbuf_cap = 0;
    }
    size_t off = 0;
    while (off < len && ev->type == DHT_SSTREAM_EV_NONE) {
        if (!s->in_body) {
            while (s->hdr_have < 3 && off < len) s->hdr[s->hdr_have++] = in[off++];
            if (s->hdr_have < 3) break;
            s->hdr_have = 0;
            s->flen = (size_t)s->hdr[0] | ((size_t)s->hdr[1] << 8) | ((size_t)s->hdr[2] << 16);
            size_t limit = s->noise   ? DHT_NOISE_MAX_MSG
                           : !s->open ? DHT_SSTREAM_HEADER_BYTES
                                      : s->max_frame;
            if (s->flen > limit) {
                *consumed = off;
                return fail(s, DHT_EFRAME);
            }
            s->in_body = 1;
            s->have = 0;
        }
        size_t avail = len - off;
        if (s->have == 0 && avail >= s->flen) {
            const uint8_t *body = in + off;
            uint8_t *wbody = win ? win + off : NULL;
            off += s->flen;
            s->in_body = 0;
            rc = process_frame(s, body, s->flen, wbody, ev);
        } else {
            rc = ensure_rbuf(s, s->flen);
            if (rc) {
                *consumed = off;
                return fail(s, rc);
            }
            size_t take = s->flen - s->have;
            if (take > avail) take = avail;
            memcpy(s->rbuf + s->have, in + off, take);
            s->have += take;
            off += take;
            if (s->have < s->flen) break;
            s->in_body = 0;
            s->have = 0;
            rc = process_frame(s, s->rbuf, s->flen, s->rbuf, ev);
        }
        if (rc) {
            *consumed = off;
            ev->type = DHT_SSTREAM_EV_NONE;
            return rc;
        }
    }
    *consumed = off;
    return 0;
}

size_t dht_sstream_frame_need(const dht_sstream_t *s, const uint8_t *in, size_t len) {
    if (s->err || s->in_body || s->hdr_have) return 0; /* feed: error, or a frame is open */
    if (len < 3) return 3;
    size_t flen = (size_t)in[0] | ((size_t)in[1] << 8) | ((size_t)in[2] << 16);
    size_t limit = s->noise   ? DHT_NOISE_MAX_MSG
                   : !s->open ? DHT_SSTREAM_HEADER_BYTES
                              : s->max_frame;
    if (flen > limit) return 0; /* feed reports DHT_EFRAME */
    return 3 + flen > len ? 3 + flen : 0;
}

int dht_sstream_feed(dht_sstream_t *s, const uint8_t *in, size_t len, size_t *consumed,
                     dht_sstream_event_t *ev) {
    return feed(s, in, NULL, len, consumed, ev);
}

int dht_sstream_feed_inplace(dht_sstream_t *s, uint8_t *in, size_t len, size_t *consumed,
                             dht_sstream_event_t *ev) {
    return feed(s, in, in, len, consumed, ev);
}

int dht_sstream_seal(dht_sstream_t *s, const void *plain, size_t plen, uint8_t *frame) {
    if (s->err || !s->ready) return COMMON_ESTATE;
    if (plen > DHT_SSTREAM_MAX_MESSAGE) return COMMON_ETOOBIG;
    if (s->out_len != s->out_off) return COMMON_EAGAIN;
    put_u24(frame, plen + DHT_SSTREAM_ABYTES);
    static const uint8_t empty[1] = {0};
    int rc = dht_ssx_push(&s->push, frame + 3, plen ? plain : empty, plen, DHT_SSX_TAG_MESSAGE);
    if (rc) return fail(s, rc);
    s->last_write = common_now_ms(s->env);
    return 0;
}

int dht_sstream_tick(dht_sstream_t *s) {
    if (s->err || !s->ready || s->keepalive_ms == UINT32_MAX) return 0;
    uint64_t now = common_now_ms(s->env);
    if (now - s->last_write < s->keepalive_ms) return 0;
    if (out_reserve(s, DHT_SSTREAM_FRAME_OVERHEAD) != 0) return 0;
    uint8_t *p = s->out + s->out_len;
    static const uint8_t empty[1] = {0};
    put_u24(p, DHT_SSTREAM_ABYTES);
    if (dht_ssx_push(&s->push, p + 3, empty, 0, DHT_SSX_TAG_MESSAGE) != 0) {
        fail(s, COMMON_ECRYPTO);
        return 0;
    }
    s->out_len += DHT_SSTREAM_FRAME_OVERHEAD;
    s->last_write = now;
    return 1;
}

uint64_t dht_sstream_next_deadline(const dht_sstream_t *s) {
    if (s->err || !s->ready || s->keepalive_ms == UINT32_MAX) return UINT64_MAX;
    uint64_t now = common_now_ms(s->env);
    uint64_t due = s->last_write + s->keepalive_ms;
    return due > now ? due - now : 0;
}

int dht_sstream_ready(const dht_sstream_t *s) {
    return s->ready && !s->err;
}

const uint8_t *dht_sstream_remote_pk(const dht_sstream_t *s) {
    return s->ready ? s->remote_pk : NULL;
}

const uint8_t *dht_sstream_handshake_hash(const dht_sstream_t *s) {
    return s->ready ? s->hash : NULL;
}

int dht_sstream_error(const dht_sstream_t *s) {
    return s->err;
}

void dht_sstream_free(dht_sstream_t *s) {
    if (!s) return;
    dht_noise_free(s->noise);
    dht_ssx_wipe(&s->push);
    dht_ssx_wipe(&s->pull);
    if (s->out) {
        sodium_memzero(s->out, s->out_cap);
        free(s->out);
    }
    if (s->rbuf) {
        sodium_memzero(s->rbuf, s->rbuf_cap);
        free(s->rbuf);
    }
    sodium_memzero(s, sizeof *s);
    free(s);
}

const char *dht_sstream_crypto_name(const dht_sstream_t *s) {
    return s->ready ? dht_ssx_backend_name(&s->push) : NULL;
}
