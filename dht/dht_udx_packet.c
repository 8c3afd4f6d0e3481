/* SPDX-License-Identifier: MIT */
#include "dht/dht_udx_packet.h"

#include <string.h>

#include "common/common_err.h"

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int dht_udx_packet_is_udx(const uint8_t *buf, size_t len) {
    return buf != NULL && len >= DHT_UDX_HEADER_SIZE && buf[0] == DHT_UDX_MAGIC &&
           buf[1] == DHT_UDX_VERSION;
}

int dht_udx_packet_peek_id(const uint8_t *buf, size_t len, uint32_t *id) {
    if (!dht_udx_packet_is_udx(buf, len)) return COMMON_EPROTO;
    *id = rd32(buf + 4);
    return 0;
}

int dht_udx_packet_decode(const uint8_t *buf, size_t len, dht_udx_packet_t *out) {
    if (!dht_udx_packet_is_udx(buf, len) || out == NULL) return COMMON_EPROTO;
    out->h.type = buf[2];
    out->h.data_offset = buf[3];
    out->h.id = rd32(buf + 4);
    out->h.rwnd = rd32(buf + 8);
    out->h.seq = rd32(buf + 12);
    out->h.ack = rd32(buf + 16);
    const uint8_t *rest = buf + DHT_UDX_HEADER_SIZE;
    size_t rest_len = len - DHT_UDX_HEADER_SIZE;
    if (out->h.data_offset > rest_len) return COMMON_EPROTO;
    out->nsacks = 0;
    if (out->h.type & DHT_UDX_TYPE_SACK) {
        size_t sack_len = out->h.data_offset ? out->h.data_offset : rest_len;
        for (size_t i = 0; i + 8 <= sack_len && out->nsacks < DHT_UDX_MAX_SACKS; i += 8) {
            out->sacks[out->nsacks].start = rd32(rest + i);
            out->sacks[out->nsacks].end = rd32(rest + i + 4);
            out->nsacks++;
        }
    }
    out->payload = rest + out->h.data_offset;
    out->payload_len = rest_len - out->h.data_offset;
    return 0;
}

void dht_udx_header_encode(const dht_udx_header_t *h, uint8_t out[DHT_UDX_HEADER_SIZE]) {
    out[0] = DHT_UDX_MAGIC;
    out[1] = DHT_UDX_VERSION;
    out[2] = h->type;
    out[3] = h->data_offset;
    wr32(out + 4, h->id);
    wr32(out + 8, h->rwnd);
    wr32(out + 12, h->seq);
    wr32(out + 16, h->ack);
}

size_t dht_udx_sacks_encode(const dht_udx_sack_t *sacks, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        wr32(out + 8 * i, sacks[i].start);
        wr32(out + 8 * i + 4, sacks[i].end);
    }
    return 8 * n;
}
