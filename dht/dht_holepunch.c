/* SPDX-License-Identifier: MIT */
/* NAT classification for holepunching: see dht_holepunch.h. */
#include "dht/dht_holepunch.h"

#include <string.h>

#include "dht/dht_connect_payload.h"

void dht_hp_nat_init(dht_hp_nat_t *n, int firewalled) {
    memset(n, 0, sizeof *n);
    n->firewalled = firewalled;
    n->firewall = firewalled ? DHT_FIREWALL_UNKNOWN : DHT_FIREWALL_OPEN;
}

static void classify(dht_hp_nat_t *n) {
    if (!n->firewalled) {
        n->firewall = DHT_FIREWALL_OPEN;
        return;
    }
    if (n->sampled < 3 || n->nfull == 0) return;
    unsigned max = 0, second = 0;
    size_t imax = 0;
    int one_host = 1;
    for (size_t i = 0; i < n->nfull; i++) {
        if (memcmp(n->full[i].a.host, n->full[0].a.host, 4) != 0) one_host = 0;
        if (n->full[i].hits > max) {
            second = max;
            max = n->full[i].hits;
            imax = i;
        } else if (n->full[i].hits > second) {
            second = n->full[i].hits;
        }
    }
    if (max >= 3)
        n->firewall = DHT_FIREWALL_CONSISTENT;
    else if (max == 1)
        n->firewall = DHT_FIREWALL_RANDOM;
    else if (one_host && n->sampled > 3)
        n->firewall = DHT_FIREWALL_RANDOM;
    else if (!one_host && second >= 2)
        n->firewall = DHT_FIREWALL_CONSISTENT;
    else if (n->sampled > 4)
        n->firewall = DHT_FIREWALL_RANDOM;
    n->naddrs = 0;
    if (n->firewall == DHT_FIREWALL_CONSISTENT) {
        n->addrs[n->naddrs++] = n->full[imax].a;
        for (size_t i = 0; i < n->nfull && n->naddrs < 2; i++)
            if (i != imax && n->full[i].hits >= 2) n->addrs[n->naddrs++] = n->full[i].a;
    } else if (n->firewall == DHT_FIREWALL_RANDOM) {
        n->addrs[0] = n->full[imax].a;
        n->addrs[0].port = 0;
        n->naddrs = 1;
    }
}

int dht_hp_nat_add(dht_hp_nat_t *n, const dht_addr_t *seen, const dht_addr_t *from) {
    for (size_t i = 0; i < n->nvisited; i++)
        if (dht_ipv4_equal(&n->visited[i], from)) return 0;
    if (n->nvisited >= DHT_HOLEPUNCH_MAX_SAMPLES) return 1;
    n->visited[n->nvisited++] = *from;
    size_t i = 0;
    for (; i < n->nfull; i++)
        if (dht_ipv4_equal(&n->full[i].a, seen)) break;
    if (i < n->nfull)
        n->full[i].hits++;
    else if (n->nfull < DHT_HOLEPUNCH_MAX_SAMPLES) {
        n->full[n->nfull].a = *seen;
        n->full[n->nfull++].hits = 1;
    }
    n->sampled++;
    classify(n);
    return n->firewall == DHT_FIREWALL_CONSISTENT || n->firewall == DHT_FIREWALL_OPEN ||
           n->sampled >= 4;
}
