/* SPDX-License-Identifier: MIT */
/* libFuzzer target: every DHT decoder on the input, re-encode what decodes, and one node
 * core (persistent, with a record) receiving the input as a datagram on either socket. */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "common/common_env.h"
#include "dht/dht_node.h"
#include "dht/dht_rpc.h"

static void nosend(void *ud, int sock, const uint8_t *buf, size_t len, const dht_addr_t *to) {
    (void)ud, (void)sock, (void)buf, (void)len, (void)to;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        if (sodium_init() < 0) return 0;
        init = 1;
    }
    uint8_t out[4096];
    dht_rpc_msg_t m;
    if (dht_rpc_decode(data, size, &m) == 0) {
        int n = dht_rpc_encode(&m, out, sizeof out);
        if (n > 0) {
            dht_rpc_msg_t m2;
            if (dht_rpc_decode(out, (size_t)n, &m2) != 0) __builtin_trap();
        }
    }
    dht_lookup_reply_t lr;
    if (dht_lookup_reply_decode(data, size, &lr) == 0)
        (void)dht_lookup_reply_encode(&lr, out, sizeof out);
    dht_announce_t a;
    if (dht_announce_decode(data, size, &a) == 0) (void)dht_announce_encode(&a, out, sizeof out);
    dht_handshake_msg_t hs;
    if (dht_handshake_decode(data, size, &hs) == 0)
        (void)dht_handshake_encode(&hs, out, sizeof out);
    dht_holepunch_msg_t hp;
    if (dht_holepunch_decode(data, size, &hp) == 0)
        (void)dht_holepunch_encode(&hp, out, sizeof out);
    dht_peer_record_t p;
    size_t pos = 0;
    if (dht_peer_record_decode(data, size, &pos, &p) == 0 && pos > size) __builtin_trap();

    /* node core: deterministic env */
    common_vclock_t vc = {1000, 1700000000000ull};
    common_seeded_rng_t rs;
    common_env_t env = {common_clock_virtual(&vc), common_rng_seeded(&rs, 1), NULL};
    dht_addr_t me = {{127, 0, 0, 1}, 5000}, from = {{127, 0, 0, 1}, 6000};
    dht_node_opts_t o;
    memset(&o, 0, sizeof o);
    o.allow_local = 1;
    o.public_addr = &me;
    o.server_port = 5000;
    dht_node_io_t io = {nosend, NULL};
    dht_node_t *n = dht_node_new(&o, &env, &io, NULL, NULL);
    if (!n) return 0;
    dht_node_start(n);
    dht_node_run_timers(n);
    dht_node_on_datagram(n, size & 1, data, size, &from);
    vc.now_ms += 2000;
    dht_node_run_timers(n);
    dht_node_free(n);
    return 0;
}
