/* SPDX-License-Identifier: MIT */
/* NAT classification for holepunching (dht_holepunch): consistent, random, multi-homed and
 * unknown cases, duplicate nodes counted once, the addresses offered to the peer. */
#include <string.h>

#include "dht/dht_connect_payload.h"
#include "dht/dht_holepunch.h"
#include "tests/test.h"

static dht_addr_t A(uint8_t d, uint16_t port) {
    dht_addr_t x = {{198, 51, 100, d}, port};
    return x;
}

TEST(consistent) {
    dht_hp_nat_t n;
    dht_hp_nat_init(&n, 1);
    dht_addr_t me = A(11, 40000);
    dht_addr_t n1 = A(1, 1), n2 = A(1, 2), n3 = A(1, 3);
    ASSERT_EQ_I64(dht_hp_nat_add(&n, &me, &n1), 0);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_UNKNOWN);
    ASSERT_EQ_I64(dht_hp_nat_add(&n, &me, &n1), 0); /* same node again: ignored */
    ASSERT_EQ_U64(n.sampled, 1);
    ASSERT_EQ_I64(dht_hp_nat_add(&n, &me, &n2), 0);
    ASSERT_EQ_I64(dht_hp_nat_add(&n, &me, &n3), 1);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_CONSISTENT);
    ASSERT_EQ_U64(n.naddrs, 1);
    ASSERT_TRUE(dht_ipv4_equal(&n.addrs[0], &me));
}

TEST(random_ports) {
    dht_hp_nat_t n;
    dht_hp_nat_init(&n, 1);
    for (uint8_t i = 1; i <= 3; i++) {
        dht_addr_t me = A(13, (uint16_t)(20000 + i)), from = A(1, i);
        dht_hp_nat_add(&n, &me, &from);
    }
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_RANDOM);
    ASSERT_EQ_U64(n.naddrs, 1);
    ASSERT_EQ_U64(n.addrs[0].port, 0);
    ASSERT_EQ_U64(n.addrs[0].host[3], 13);
}

TEST(two_hits_one_host) {
    /* 2 of 4 samples agree, one host: random (as hyperdht) */
    dht_hp_nat_t n;
    dht_hp_nat_init(&n, 1);
    dht_addr_t a = A(11, 1000), b = A(11, 1001), c = A(11, 1002);
    dht_addr_t f1 = A(1, 1), f2 = A(1, 2), f3 = A(1, 3), f4 = A(1, 4);
    dht_hp_nat_add(&n, &a, &f1);
    dht_hp_nat_add(&n, &a, &f2);
    dht_hp_nat_add(&n, &b, &f3);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_UNKNOWN);
    ASSERT_EQ_I64(dht_hp_nat_add(&n, &c, &f4), 1);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_RANDOM);
}

TEST(multi_homed) {
    /* two public hosts, each seen twice: consistent, both offered */
    dht_hp_nat_t n;
    dht_hp_nat_init(&n, 1);
    dht_addr_t a = A(11, 1000), b = A(12, 1000);
    dht_addr_t f1 = A(1, 1), f2 = A(1, 2), f3 = A(1, 3), f4 = A(1, 4);
    dht_hp_nat_add(&n, &a, &f1);
    dht_hp_nat_add(&n, &b, &f2);
    dht_hp_nat_add(&n, &a, &f3);
    dht_hp_nat_add(&n, &b, &f4);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_CONSISTENT);
    ASSERT_EQ_U64(n.naddrs, 2);
}

TEST(open_node) {
    dht_hp_nat_t n;
    dht_hp_nat_init(&n, 0);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_OPEN);
    dht_addr_t me = A(11, 5), f = A(1, 1);
    ASSERT_EQ_I64(dht_hp_nat_add(&n, &me, &f), 1);
    ASSERT_EQ_U64(n.firewall, DHT_FIREWALL_OPEN);
}

TEST_MAIN(TEST_ENTRY(consistent), TEST_ENTRY(random_ports), TEST_ENTRY(two_hits_one_host),
          TEST_ENTRY(multi_homed), TEST_ENTRY(open_node))
