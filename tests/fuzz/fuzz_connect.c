/* SPDX-License-Identifier: MIT */
/* Fuzz the swarm's connect-layer decoders: byte 0 selects the decoder; whatever decodes
 * must re-encode and decode to the same fields. Also feeds the bytes as NAT samples. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht_connect_payload.h"
#include "dht/dht_holepunch.h"
#include "dht/dht_rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    uint8_t out[4096];
    switch (sel % 4) {
    case 0: {
        dht_hs_payload_t p, q;
        if (dht_hs_payload_decode(data, size, &p) != 0 || p.version != 1) break;
        int n = dht_hs_payload_encode(&p, out, sizeof out);
        if (n < 0) abort();
        if (dht_hs_payload_decode(out, (size_t)n, &q) != 0) abort();
        if (q.firewall != p.firewall || q.naddr4 != p.naddr4 || q.has_udx != p.has_udx ||
            q.udx_id != p.udx_id || q.nhp_relays != p.nhp_relays ||
            q.nrelay_addrs != p.nrelay_addrs)
            abort();
        break;
    }
    case 1: {
        dht_hp_payload_t p, q;
        if (dht_hp_payload_decode(data, size, &p) != 0) break;
        int n = dht_hp_payload_encode(&p, out, sizeof out);
        if (n < 0) abort();
        if (dht_hp_payload_decode(out, (size_t)n, &q) != 0) abort();
        if (q.round != p.round || q.naddrs != p.naddrs || q.punching != p.punching ||
            (p.has_token && memcmp(p.token, q.token, 32) != 0))
            abort();
        break;
    }
    case 2: {
        dht_handshake_msg_t h;
        if (dht_handshake_decode(data, size, &h) != 0) break;
        (void)dht_handshake_encode(&h, out, sizeof out);
        dht_holepunch_msg_t m;
        if (dht_holepunch_decode(data, size, &m) != 0) break;
        (void)dht_holepunch_encode(&m, out, sizeof out);
        break;
    }
    default: {
        dht_hp_nat_t n;
        dht_hp_nat_init(&n, 1);
        for (size_t i = 0; i + 12 <= size; i += 12) {
            dht_addr_t seen, from;
            dht_addr_decode(data + i, &seen);
            dht_addr_decode(data + i + 6, &from);
            dht_hp_nat_add(&n, &seen, &from);
            if (n.naddrs > 2 || n.firewall > DHT_FIREWALL_RANDOM) abort();
        }
        break;
    }
    }
    return 0;
}
