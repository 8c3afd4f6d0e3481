/* SPDX-License-Identifier: MIT */
/**
 * @file dht_connect_payload.h
 * @brief The payloads carried inside hyperdht's connect messages (hyperswarm-wire.md §6,
 *        §7.3): the Noise handshake payload (firewall class, addresses, UDX stream id,
 *        secretStream, holepunch info, relay addresses) and the encrypted holepunch payload.
 *
 * Pure codecs, no allocation. Decoders accept unknown flag bits and trailing bytes (like
 * the JS decoders) and truncate nothing silently: arrays longer than the compile-time caps
 * are rejected with COMMON_EPROTO. A payload whose version is not 1 decodes with only
 * `version` set (as hyperdht does), so the caller can answer VERSION_MISMATCH.
 */
#ifndef SWARMDVM_DHT_CONNECT_PAYLOAD_H
#define SWARMDVM_DHT_CONNECT_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_rpc.h"

#ifndef DHT_CONNECT_MAX_ADDRS
#define DHT_CONNECT_MAX_ADDRS 8
#endif

/* firewall classes (§6) */
enum {
    DHT_FIREWALL_UNKNOWN = 0,
    DHT_FIREWALL_OPEN = 1,
    DHT_FIREWALL_CONSISTENT = 2,
    DHT_FIREWALL_RANDOM = 3
};
/* handshake payload errors (§7.3) */
enum {
    DHT_HS_ERR_NONE = 0,
    DHT_HS_ERR_ABORTED = 1,
    DHT_HS_ERR_VERSION_MISMATCH = 2,
    DHT_HS_ERR_TRY_LATER = 3
};

typedef struct dht_hs_payload {
    uint64_t version; /* 1 */
    uint64_t error, firewall;
    int has_holepunch;
    uint64_t holepunch_id;
    size_t nhp_relays;
    dht_addr_t hp_relay[DHT_MAX_RELAYS], hp_peer[DHT_MAX_RELAYS]; /* relayAddress, peerAddress */
    size_t naddr4;
    dht_addr_t addr4[DHT_CONNECT_MAX_ADDRS];
    int has_udx;
    uint64_t udx_version, udx_features, udx_id, udx_seq; /* features: 1 = reusableSocket */
    int has_secret_stream;
    uint64_t secret_stream_version;
    int has_relay_through;
    uint8_t relay_through_pk[32], relay_through_token[32];
    int has_relay_addresses; /* flag 64, possibly with 0 entries */
    size_t nrelay_addrs;
    dht_addr_t relay_addrs[DHT_MAX_RELAYS];
} dht_hs_payload_t;

/** @brief Encode (version forced to 1; flags from the has_ and n fields, as the JS encoder:
 *  addresses4 only when non-empty). @return length or COMMON_ETOOBIG. */
int dht_hs_payload_encode(const dht_hs_payload_t *p, uint8_t *out, size_t cap);
/** @brief Decode. @return 0 or COMMON_EPROTO. addresses6 are skipped. */
int dht_hs_payload_decode(const uint8_t *buf, size_t len, dht_hs_payload_t *p);

/** Holepunch payload (plain text inside the secretbox, §6). */
typedef struct dht_hp_payload {
    uint64_t error, firewall, round;
    int connected, punching;
    int has_addresses;
    size_t naddrs;
    dht_addr_t addrs[DHT_CONNECT_MAX_ADDRS];
    int has_remote_address;
    dht_addr_t remote_address;
    int has_token, has_remote_token;
    uint8_t token[32], remote_token[32];
} dht_hp_payload_t;

int dht_hp_payload_encode(const dht_hp_payload_t *p, uint8_t *out, size_t cap);
int dht_hp_payload_decode(const uint8_t *buf, size_t len, dht_hp_payload_t *p);

/** @brief nonce(24) || secretbox(plain, nonce, secret); @p nonce from the caller's RNG.
 *  @return length (plen + 40) or COMMON_ETOOBIG. */
int dht_hp_seal(const uint8_t secret[32], const uint8_t nonce[24], const uint8_t *plain,
                size_t plen, uint8_t *out, size_t cap);
/** @brief Open a sealed payload into @p out. @return plain length or COMMON_ECRYPTO. */
int dht_hp_open(const uint8_t secret[32], const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/** @brief holepunchSecret = BLAKE2b-256(NS_PEER_HOLEPUNCH, key = handshake hash). */
void dht_hp_secret(const uint8_t hash[64], uint8_t out[32]);

#endif
