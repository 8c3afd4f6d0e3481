/* SPDX-License-Identifier: MIT */
/* dht-rpc message codec and hyperdht value encodings: see dht_rpc.h. Built on dht_cenc. */
#include "dht/dht_rpc.h"

#include <stdio.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "dht/dht_crypto.h"

void dht_addr_host(const dht_addr_t *a, char out[16]) {
    snprintf(out, 16, "%u.%u.%u.%u", a->host[0], a->host[1], a->host[2], a->host[3]);
}

int dht_addr_parse(const char *s, dht_addr_t *out) {
    if (!s) return COMMON_EINVAL;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) > 15) return COMMON_EINVAL;
    char host[16];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    uint64_t port;
    if (common_parse_u64(colon + 1, 1, 65535, &port) != 0) return COMMON_EINVAL;
    return dht_ipv4_parse(host, (uint16_t)port, out);
}

void dht_addr_encode(const dht_addr_t *a, uint8_t out[6]) {
    memcpy(out, a->host, 4);
    out[4] = (uint8_t)(a->port & 0xff);
    out[5] = (uint8_t)(a->port >> 8);
}

void dht_addr_decode(const uint8_t in[6], dht_addr_t *out) {
    memcpy(out->host, in, 4);
    out->port = (uint16_t)(in[4] | (in[5] << 8));
}

void dht_addr_id(const dht_addr_t *a, uint8_t id[32]) {
    uint8_t b[6];
    dht_addr_encode(a, b);
    dht_crypto_hash(id, b, 6);
}

int dht_addr_is_local(const dht_addr_t *a) {
    const uint8_t *h = a->host;
    if (h[0] == 0 || h[0] == 10 || h[0] == 127) return 1;
    if (h[0] == 169 && h[1] == 254) return 1;
    if (h[0] == 172 && (h[1] & 0xf0) == 16) return 1;
    if (h[0] == 192 && h[1] == 168) return 1;
    if (h[0] == 100 && (h[1] & 0xc0) == 64) return 1;
    if (h[0] >= 224) return 1;
    return 0;
}

/* closer nodes: count may exceed our cap; keep the first DHT_RPC_MAX_NODES */
static void get_nodes(dht_cenc_reader_t *r, dht_addr_t *out, size_t *n) {
    size_t cnt = 0;
    *n = 0;
    if (dht_cenc_get_array_len(r, 65535, DHT_CENC_IPV4_SIZE, &cnt) != 0) return;
    for (size_t i = 0; i < cnt; i++) {
        dht_addr_t a;
        if (dht_cenc_get_ipv4(r, &a) != 0) return;
        if (*n < DHT_RPC_MAX_NODES) out[(*n)++] = a;
    }
}

int dht_rpc_decode(const uint8_t *buf, size_t len, dht_rpc_msg_t *m) {
    memset(m, 0, sizeof *m);
    if (!buf || len < 2) return COMMON_EPROTO;
    if (buf[0] != DHT_RPC_REQUEST_ID && buf[0] != DHT_RPC_RESPONSE_ID) return COMMON_EPROTO;
    m->is_response = buf[0] == DHT_RPC_RESPONSE_ID;
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf + 1, len - 1);
    uint64_t flags = 0;
    dht_cenc_get_uint(&r, &flags);
    dht_cenc_get_u16(&r, &m->tid);
    dht_cenc_get_ipv4(&r, &m->to);
    if (flags & 1) dht_cenc_get_fixed_ref(&r, 32, &m->id);
    if (flags & 2) dht_cenc_get_fixed_ref(&r, 32, &m->token);
    if (!m->is_response) {
        m->internal = (flags & 4) != 0;
        dht_cenc_get_uint(&r, &m->command);
        if (flags & 8) dht_cenc_get_fixed_ref(&r, 32, &m->target);
    } else {
        if (flags & 4) {
            m->has_closer = 1;
            get_nodes(&r, m->closer, &m->ncloser);
        }
        if (flags & 8) dht_cenc_get_uint(&r, &m->error);
    }
    if (flags & 16) dht_cenc_get_buffer_ref(&r, &m->value, &m->value_len);
    if (r.err) {
        memset(m, 0, sizeof *m);
        return COMMON_EPROTO;
    }
    return 0;
}

int dht_rpc_encode(const dht_rpc_msg_t *m, uint8_t *out, size_t cap) {
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    int closer = m->is_response && m->has_closer && m->ncloser > 0;
    uint64_t flags = (m->id ? 1u : 0u) | (m->token ? 2u : 0u) | (m->value ? 16u : 0u);
    if (m->is_response)
        flags |= (closer ? 4u : 0u) | (m->error ? 8u : 0u);
    else
        flags |= (m->internal ? 4u : 0u) | (m->target ? 8u : 0u);
    dht_cenc_put_u8(&w, m->is_response ? DHT_RPC_RESPONSE_ID : DHT_RPC_REQUEST_ID);
    dht_cenc_put_uint(&w, flags);
    dht_cenc_put_u16(&w, m->tid);
    dht_cenc_put_ipv4(&w, &m->to);
    if (m->id) dht_cenc_put_fixed32(&w, m->id);
    if (m->token) dht_cenc_put_fixed32(&w, m->token);
    if (!m->is_response) {
        dht_cenc_put_uint(&w, m->command);
        if (m->target) dht_cenc_put_fixed32(&w, m->target);
    } else {
        if (closer) dht_cenc_put_ipv4_array(&w, m->closer, m->ncloser);
        if (m->error) dht_cenc_put_uint(&w, m->error);
    }
    if (m->value) dht_cenc_put_buffer(&w, m->value, m->value_len);
    size_t n = 0;
    int rc = dht_cenc_writer_finish(&w, &n);
    if (rc) return COMMON_ETOOBIG;
    return (int)n;
}

static void get_peer(dht_cenc_reader_t *r, dht_peer_record_t *p) {
    memset(p, 0, sizeof *p);
    dht_cenc_get_fixed(r, p->public_key, 32);
    size_t cnt = 0;
    if (dht_cenc_get_array_len(r, 65535, DHT_CENC_IPV4_SIZE, &cnt) != 0) return;
    for (size_t i = 0; i < cnt; i++) {
        dht_addr_t a;
        if (dht_cenc_get_ipv4(r, &a) != 0) return;
        if (p->nrelays < DHT_MAX_RELAYS) p->relays[p->nrelays++] = a;
    }
}

static void put_peer(dht_cenc_writer_t *w, const dht_peer_record_t *p) {
    dht_cenc_put_fixed32(w, p->public_key);
    dht_cenc_put_ipv4_array(w, p->relays,
                            p->nrelays < DHT_MAX_RELAYS ? p->nrelays : DHT_MAX_RELAYS);
}

static int finish(dht_cenc_writer_t *w) {
    size_t n = 0;
    if (dht_cenc_writer_finish(w, &n) != 0) return COMMON_ETOOBIG;
    return (int)n;
}

int dht_peer_record_decode(const uint8_t *buf, size_t len, size_t *pos, dht_peer_record_t *rec) {
    if (!buf || *pos > len) return COMMON_EPROTO;
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf + *pos, len - *pos);
    get_peer(&r, rec);
    if (r.err) return COMMON_EPROTO;
    *pos += r.pos;
    return 0;
}

int dht_peer_record_encode(const dht_peer_record_t *rec, uint8_t *out, size_t cap) {
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    put_peer(&w, rec);
    return finish(&w);
}

int dht_lookup_reply_decode(const uint8_t *buf, size_t len, dht_lookup_reply_t *lr) {
    memset(lr, 0, sizeof *lr);
    if (!buf) return COMMON_EPROTO;
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf, len);
    size_t cnt = 0;
    if (dht_cenc_get_array_len(&r, 65535, 33, &cnt) != 0) return COMMON_EPROTO;
    for (size_t i = 0; i < cnt && !r.err; i++) {
        dht_peer_record_t p;
        get_peer(&r, &p);
        if (!r.err && lr->npeers < DHT_LOOKUP_MAX_PEERS) lr->peers[lr->npeers++] = p;
    }
    if (!r.err && dht_cenc_reader_remaining(&r) > 0) dht_cenc_get_uint(&r, &lr->bump);
    if (r.err) {
        memset(lr, 0, sizeof *lr);
        return COMMON_EPROTO;
    }
    return 0;
}

int dht_lookup_reply_encode(const dht_lookup_reply_t *lr, uint8_t *out, size_t cap) {
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    dht_cenc_put_uint(&w, lr->npeers);
    for (size_t i = 0; i < lr->npeers; i++) put_peer(&w, &lr->peers[i]);
    dht_cenc_put_uint(&w, lr->bump);
    return finish(&w);
}

int dht_announce_decode(const uint8_t *buf, size_t len, dht_announce_t *a) {
    memset(a, 0, sizeof *a);
    if (!buf) return COMMON_EPROTO;
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf, len);
    uint64_t flags = 0;
    dht_cenc_get_uint(&r, &flags);
    if (flags & 1) {
        a->has_peer = 1;
        get_peer(&r, &a->peer);
    }
    if (flags & 2) dht_cenc_get_fixed_ref(&r, 32, &a->refresh);
    if (flags & 4) dht_cenc_get_fixed_ref(&r, 64, &a->signature);
    if (flags & 8) dht_cenc_get_uint(&r, &a->bump);
    if (r.err) {
        memset(a, 0, sizeof *a);
        return COMMON_EPROTO;
    }
    return 0;
}

int dht_announce_encode(const dht_announce_t *a, uint8_t *out, size_t cap) {
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    uint64_t flags = (a->has_peer ? 1u : 0u) | (a->refresh ? 2u : 0u) | (a->signature ? 4u : 0u) |
                     (a->bump ? 8u : 0u);
    dht_cenc_put_uint(&w, flags);
    if (a->has_peer) put_peer(&w, &a->peer);
    if (a->refresh) dht_cenc_put_fixed32(&w, a->refresh);
    if (a->signature) dht_cenc_put_fixed64(&w, a->signature);
    if (a->bump) dht_cenc_put_uint(&w, a->bump);
    return finish(&w);
}

int dht_announce_signable(int unannounce, const uint8_t target[32], const uint8_t node_id[32],
                          const uint8_t token[32], const dht_peer_record_t *peer,
                          const uint8_t *refresh, uint8_t out[64]) {
    uint8_t enc[32 + 1 + 6 * DHT_MAX_RELAYS + 8];
    int n = dht_peer_record_encode(peer, enc, sizeof enc);
    if (n < 0) return n;
    dht_crypto_ns_dht(unannounce ? DHT_NS_UNANNOUNCE : DHT_NS_ANNOUNCE, out);
    dht_crypto_part_t parts[5] = {
        {target, 32}, {node_id, 32}, {token, 32}, {enc, (size_t)n}, {refresh, refresh ? 32 : 0}};
    dht_crypto_hash_parts(out + 32, 32, parts, 5, NULL, 0);
    return 0;
}

int dht_handshake_decode(const uint8_t *buf, size_t len, dht_handshake_msg_t *h) {
    memset(h, 0, sizeof *h);
    if (!buf) return COMMON_EPROTO;
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf, len);
    uint64_t flags = 0;
    dht_cenc_get_uint(&r, &flags);
    dht_cenc_get_uint(&r, &h->mode);
    dht_cenc_get_buffer_ref(&r, &h->noise, &h->noise_len);
    if (flags & 1) {
        h->has_peer = 1;
        dht_cenc_get_ipv4(&r, &h->peer);
    }
    if (flags & 2) {
        h->has_relay = 1;
        dht_cenc_get_ipv4(&r, &h->relay);
    }
    if (r.err) {
        memset(h, 0, sizeof *h);
        return COMMON_EPROTO;
    }
    return 0;
}

int dht_handshake_encode(const dht_handshake_msg_t *h, uint8_t *out, size_t cap) {
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    dht_cenc_put_uint(&w, (h->has_peer ? 1u : 0u) | (h->has_relay ? 2u : 0u));
    dht_cenc_put_uint(&w, h->mode);
    dht_cenc_put_buffer(&w, h->noise, h->noise_len);
    if (h->has_peer) dht_cenc_put_ipv4(&w, &h->peer);
    if (h->has_relay) dht_cenc_put_ipv4(&w, &h->relay);
    return finish(&w);
}

int dht_holepunch_decode(const uint8_t *buf, size_t len, dht_holepunch_msg_t *h) {
    memset(h, 0, sizeof *h);
    if (!buf) return COMMON_EPROTO;
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf, len);
    uint64_t flags = 0;
    dht_cenc_get_uint(&r, &flags);
    dht_cenc_get_uint(&r, &h->mode);
    dht_cenc_get_uint(&r, &h->id);
    dht_cenc_get_buffer_ref(&r, &h->payload, &h->payload_len);
    if (flags & 1) {
        h->has_peer = 1;
        dht_cenc_get_ipv4(&r, &h->peer);
    }
    if (r.err) {
        memset(h, 0, sizeof *h);
        return COMMON_EPROTO;
    }
    return 0;
}

int dht_holepunch_encode(const dht_holepunch_msg_t *h, uint8_t *out, size_t cap) {
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    dht_cenc_put_uint(&w, h->has_peer ? 1u : 0u);
    dht_cenc_put_uint(&w, h->mode);
    dht_cenc_put_uint(&w, h->id);
    dht_cenc_put_buffer(&w, h->payload, h->payload_len);
    if (h->has_peer) dht_cenc_put_ipv4(&w, &h->peer);
    return finish(&w);
}
