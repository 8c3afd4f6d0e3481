/* SPDX-License-Identifier: MIT */
/* Handshake and holepunch payload codecs: see dht_connect_payload.h. */
#include "dht/dht_connect_payload.h"

#include <sodium.h>
#include <string.h>

#include "common/common_err.h"
#include "dht/dht_crypto.h"

int dht_hs_payload_encode(const dht_hs_payload_t *p, uint8_t *out, size_t cap) {
    if (p->naddr4 > DHT_CONNECT_MAX_ADDRS || p->nhp_relays > DHT_MAX_RELAYS ||
        p->nrelay_addrs > DHT_MAX_RELAYS)
        return COMMON_EINVAL;
    uint64_t flags = 0;
    if (p->has_holepunch) flags |= 1;
    if (p->naddr4) flags |= 2;
    if (p->has_udx) flags |= 8;
    if (p->has_secret_stream) flags |= 16;
    if (p->has_relay_through) flags |= 32;
    if (p->has_relay_addresses) flags |= 64;
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    dht_cenc_put_uint(&w, 1);
    dht_cenc_put_uint(&w, flags);
    dht_cenc_put_uint(&w, p->error);
    dht_cenc_put_uint(&w, p->firewall);
    if (p->has_holepunch) {
        dht_cenc_put_uint(&w, p->holepunch_id);
        dht_cenc_put_uint(&w, p->nhp_relays);
        for (size_t i = 0; i < p->nhp_relays; i++) {
            dht_cenc_put_ipv4(&w, &p->hp_relay[i]);
            dht_cenc_put_ipv4(&w, &p->hp_peer[i]);
        }
    }
    if (p->naddr4) dht_cenc_put_ipv4_array(&w, p->addr4, p->naddr4);
    if (p->has_udx) {
        dht_cenc_put_uint(&w, 1);
        dht_cenc_put_uint(&w, p->udx_features & 1);
        dht_cenc_put_uint(&w, p->udx_id);
        dht_cenc_put_uint(&w, p->udx_seq);
    }
    if (p->has_secret_stream) dht_cenc_put_uint(&w, 1);
    if (p->has_relay_through) {
        dht_cenc_put_uint(&w, 1);
        dht_cenc_put_uint(&w, 0);
        dht_cenc_put_fixed32(&w, p->relay_through_pk);
        dht_cenc_put_fixed32(&w, p->relay_through_token);
    }
    if (p->has_relay_addresses) dht_cenc_put_ipv4_array(&w, p->relay_addrs, p->nrelay_addrs);
    size_t len;
    int rc = dht_cenc_writer_finish(&w, &len);
    return rc ? rc : (int)len;
}

int dht_hs_payload_decode(const uint8_t *buf, size_t len, dht_hs_payload_t *p) {
    memset(p, 0, sizeof *p);
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf, len);
    if (dht_cenc_get_uint(&r, &p->version)) return COMMON_EPROTO;
    if (p->version != 1) return 0;
    uint64_t flags;
    if (dht_cenc_get_uint(&r, &flags) || dht_cenc_get_uint(&r, &p->error) ||
        dht_cenc_get_uint(&r, &p->firewall))
        return COMMON_EPROTO;
    if (flags & 1) {
        p->has_holepunch = 1;
        size_t n;
        if (dht_cenc_get_uint(&r, &p->holepunch_id) ||
            dht_cenc_get_array_len(&r, DHT_MAX_RELAYS, 12, &n))
            return COMMON_EPROTO;
        for (size_t i = 0; i < n; i++)
            if (dht_cenc_get_ipv4(&r, &p->hp_relay[i]) || dht_cenc_get_ipv4(&r, &p->hp_peer[i]))
                return COMMON_EPROTO;
        p->nhp_relays = n;
    }
    if ((flags & 2) && dht_cenc_get_ipv4_array(&r, p->addr4, DHT_CONNECT_MAX_ADDRS, &p->naddr4))
        return COMMON_EPROTO;
    if (flags & 4) {
        size_t n;
        if (dht_cenc_get_array_len(&r, 64, 18, &n)) return COMMON_EPROTO;
        for (size_t i = 0; i < n; i++) {
            dht_ipv6_addr_t a6;
            if (dht_cenc_get_ipv6(&r, &a6)) return COMMON_EPROTO;
        }
    }
    if (flags & 8) {
        p->has_udx = 1;
        if (dht_cenc_get_uint(&r, &p->udx_version) || dht_cenc_get_uint(&r, &p->udx_features) ||
            dht_cenc_get_uint(&r, &p->udx_id) || dht_cenc_get_uint(&r, &p->udx_seq))
            return COMMON_EPROTO;
    }
    if (flags & 16) {
        p->has_secret_stream = 1;
        if (dht_cenc_get_uint(&r, &p->secret_stream_version)) return COMMON_EPROTO;
    }
    if (flags & 32) {
        uint64_t v, f;
        p->has_relay_through = 1;
        if (dht_cenc_get_uint(&r, &v) || dht_cenc_get_uint(&r, &f) ||
            dht_cenc_get_fixed(&r, p->relay_through_pk, 32) ||
            dht_cenc_get_fixed(&r, p->relay_through_token, 32))
            return COMMON_EPROTO;
    }
    if (flags & 64) {
        p->has_relay_addresses = 1;
        if (dht_cenc_get_ipv4_array(&r, p->relay_addrs, DHT_MAX_RELAYS, &p->nrelay_addrs))
            return COMMON_EPROTO;
    }
    return 0;
}

int dht_hp_payload_encode(const dht_hp_payload_t *p, uint8_t *out, size_t cap) {
    if (p->naddrs > DHT_CONNECT_MAX_ADDRS) return COMMON_EINVAL;
    uint64_t flags = (p->connected ? 1u : 0u) | (p->punching ? 2u : 0u) |
                     (p->has_addresses ? 4u : 0u) | (p->has_remote_address ? 8u : 0u) |
                     (p->has_token ? 16u : 0u) | (p->has_remote_token ? 32u : 0u);
    dht_cenc_writer_t w;
    dht_cenc_writer_init(&w, out, cap);
    dht_cenc_put_uint(&w, flags);
    dht_cenc_put_uint(&w, p->error);
    dht_cenc_put_uint(&w, p->firewall);
    dht_cenc_put_uint(&w, p->round);
    if (p->has_addresses) dht_cenc_put_ipv4_array(&w, p->addrs, p->naddrs);
    if (p->has_remote_address) dht_cenc_put_ipv4(&w, &p->remote_address);
    if (p->has_token) dht_cenc_put_fixed32(&w, p->token);
    if (p->has_remote_token) dht_cenc_put_fixed32(&w, p->remote_token);
    size_t len;
    int rc = dht_cenc_writer_finish(&w, &len);
    return rc ? rc : (int)len;
}

int dht_hp_payload_decode(const uint8_t *buf, size_t len, dht_hp_payload_t *p) {
    memset(p, 0, sizeof *p);
    dht_cenc_reader_t r;
    dht_cenc_reader_init(&r, buf, len);
    uint64_t flags;
    if (dht_cenc_get_uint(&r, &flags) || dht_cenc_get_uint(&r, &p->error) ||
        dht_cenc_get_uint(&r, &p->firewall) || dht_cenc_get_uint(&r, &p->round))
        return COMMON_EPROTO;
    p->connected = (flags & 1) != 0;
    p->punching = (flags & 2) != 0;
    if (flags & 4) {
        p->has_addresses = 1;
        if (dht_cenc_get_ipv4_array(&r, p->addrs, DHT_CONNECT_MAX_ADDRS, &p->naddrs))
            return COMMON_EPROTO;
    }
    if (flags & 8) {
        p->has_remote_address = 1;
        if (dht_cenc_get_ipv4(&r, &p->remote_address)) return COMMON_EPROTO;
    }
    if (flags & 16) {
        p->has_token = 1;
        if (dht_cenc_get_fixed(&r, p->token, 32)) return COMMON_EPROTO;
    }
    if (flags & 32) {
        p->has_remote_token = 1;
        if (dht_cenc_get_fixed(&r, p->remote_token, 32)) return COMMON_EPROTO;
    }
    return 0;
}

int dht_hp_seal(const uint8_t secret[32], const uint8_t nonce[24], const uint8_t *plain,
                size_t plen, uint8_t *out, size_t cap) {
    size_t need = 24 + crypto_secretbox_MACBYTES + plen;
    if (cap < need || need > 65535) return COMMON_ETOOBIG;
    memcpy(out, nonce, 24);
    crypto_secretbox_easy(out + 24, plain, plen, nonce, secret);
    return (int)need;
}

int dht_hp_open(const uint8_t secret[32], const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    if (len < 24 + crypto_secretbox_MACBYTES) return COMMON_ECRYPTO;
    size_t plen = len - 24 - crypto_secretbox_MACBYTES;
    if (plen > cap) return COMMON_ETOOBIG;
    if (crypto_secretbox_open_easy(out, in + 24, len - 24, in, secret) != 0) return COMMON_ECRYPTO;
    return (int)plen;
}

void dht_hp_secret(const uint8_t hash[64], uint8_t out[32]) {
    uint8_t ns[32];
    dht_crypto_ns_dht(DHT_CMD_PEER_HOLEPUNCH, ns);
    dht_crypto_hash_keyed(out, ns, 32, hash, 64);
}
