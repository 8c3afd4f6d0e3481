/* SPDX-License-Identifier: MIT */
/**
 * @file dht_rpc.h
 * @brief dht-rpc wire format (hyperswarm-wire.md §3.2): IPv4 addresses, node ids, the
 *        request/response codec and the hyperdht value encodings of §4.2 (peer record,
 *        LOOKUP reply, ANNOUNCE/UNANNOUNCE value and its signable).
 *
 * Decoders are bounds-checked, never allocate and return views into the input buffer
 * (borrowed: valid while the datagram is). They accept unknown flag bits and trailing bytes
 * like the JS decoders. Encoders write into a caller buffer and return the length or a
 * negative COMMON_E* code.
 */
#ifndef SWARMDVM_DHT_RPC_H
#define SWARMDVM_DHT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "dht/dht_cenc.h"

/** Largest datagram we build or accept for dht-rpc (a reply with 20 nodes + value). */
#ifndef DHT_RPC_MAX_PACKET
#define DHT_RPC_MAX_PACKET 2048
#endif
/** Max closer nodes decoded from one reply (JS sends at most k = 20). */
#define DHT_RPC_MAX_NODES 20
/** Max relay addresses kept from a peer record (servers store at most 3). */
#define DHT_MAX_RELAYS 3
/** Max peer records decoded from one LOOKUP reply. */
#define DHT_LOOKUP_MAX_PEERS 20

#define DHT_RPC_VERSION     3
#define DHT_RPC_REQUEST_ID  0x03
#define DHT_RPC_RESPONSE_ID 0x13

/* internal commands */
enum {
    DHT_CMD_PING = 0,
    DHT_CMD_PING_NAT = 1,
    DHT_CMD_FIND_NODE = 2,
    DHT_CMD_DOWN_HINT = 3,
    DHT_CMD_DELAYED_PING = 4
};
/* hyperdht commands */
enum {
    DHT_CMD_PEER_HANDSHAKE = 0,
    DHT_CMD_PEER_HOLEPUNCH = 1,
    DHT_CMD_FIND_PEER = 2,
    DHT_CMD_LOOKUP = 3,
    DHT_CMD_ANNOUNCE = 4,
    DHT_CMD_UNANNOUNCE = 5,
    DHT_CMD_MUTABLE_PUT = 6,
    DHT_CMD_MUTABLE_GET = 7,
    DHT_CMD_IMMUTABLE_PUT = 8,
    DHT_CMD_IMMUTABLE_GET = 9,
    DHT_CMD_PLUGIN = 10
};
/* error codes in responses */
enum {
    DHT_RPC_OK = 0,
    DHT_RPC_UNKNOWN_COMMAND = 1,
    DHT_RPC_INVALID_TOKEN = 2,
    DHT_RPC_SEQ_REUSED = 16,
    DHT_RPC_SEQ_TOO_LOW = 17
};

/** An IPv4 address (dht_cenc's type): host bytes in network order, host-order port. */
typedef dht_ipv4_addr_t dht_addr_t;

/** @brief "a.b.c.d" (NUL-terminated, needs 16 bytes): the host string used by tokens. */
void dht_addr_host(const dht_addr_t *a, char out[16]);
/** @brief Parse "a.b.c.d:port" with port 1..65535. @return 0 or COMMON_EINVAL. */
int dht_addr_parse(const char *s, dht_addr_t *out);
/** @brief 6-byte ipv4Address encoding (ip, then port LE). */
void dht_addr_encode(const dht_addr_t *a, uint8_t out[6]);
void dht_addr_decode(const uint8_t in[6], dht_addr_t *out);
/** @brief Node id = BLAKE2b-256(ipv4Address(host, port)). */
void dht_addr_id(const dht_addr_t *a, uint8_t id[32]);
/** @brief 1 for loopback, private, link-local, CGNAT, multicast, 0.0.0.0/8, broadcast. */
int dht_addr_is_local(const dht_addr_t *a);

/** A decoded dht-rpc message (request or response). Pointers borrow the datagram. */
typedef struct dht_rpc_msg {
    int is_response;
    uint16_t tid;
    dht_addr_t to;
    const uint8_t *id;    /* 32 bytes or NULL (as sent; not yet validated) */
    const uint8_t *token; /* 32 bytes or NULL */
    /* request only */
    int internal;
    uint64_t command;
    const uint8_t *target; /* 32 bytes or NULL */
    /* response only */
    size_t ncloser;
    dht_addr_t closer[DHT_RPC_MAX_NODES];
    int has_closer;
    uint64_t error;
    /* both */
    const uint8_t *value; /* NULL when absent (flag clear); may be non-NULL with len 0 */
    size_t value_len;
} dht_rpc_msg_t;

/**
 * @brief Decode one datagram. Closer-node arrays longer than DHT_RPC_MAX_NODES are
 * truncated to the first DHT_RPC_MAX_NODES (the rest is skipped, not an error).
 * @return 0, COMMON_EPROTO (not dht-rpc or malformed).
 */
int dht_rpc_decode(const uint8_t *buf, size_t len, dht_rpc_msg_t *m);

/**
 * @brief Encode a request or response from @p m (is_response selects). A non-NULL id,
 * token, target or value sets its flag; closer nodes are written when has_closer is set
 * and ncloser > 0; error when non-zero. @return length or COMMON_ETOOBIG.
 */
int dht_rpc_encode(const dht_rpc_msg_t *m, uint8_t *out, size_t cap);

/** A peer record: public key and up to DHT_MAX_RELAYS relay addresses. */
typedef struct dht_peer_record {
    uint8_t public_key[32];
    size_t nrelays;
    dht_addr_t relays[DHT_MAX_RELAYS];
} dht_peer_record_t;

/** @brief Decode a peer record at *pos; relays beyond DHT_MAX_RELAYS are skipped. */
int dht_peer_record_decode(const uint8_t *buf, size_t len, size_t *pos, dht_peer_record_t *r);
/** @brief Encode. @return length or COMMON_ETOOBIG. */
int dht_peer_record_encode(const dht_peer_record_t *r, uint8_t *out, size_t cap);

/** LOOKUP reply value: count | records | [bump]. */
typedef struct dht_lookup_reply {
    size_t npeers;
    dht_peer_record_t peers[DHT_LOOKUP_MAX_PEERS];
    uint64_t bump;
} dht_lookup_reply_t;
int dht_lookup_reply_decode(const uint8_t *buf, size_t len, dht_lookup_reply_t *r);
int dht_lookup_reply_encode(const dht_lookup_reply_t *r, uint8_t *out, size_t cap);

/** ANNOUNCE / UNANNOUNCE value. */
typedef struct dht_announce {
    int has_peer;
    dht_peer_record_t peer;
    const uint8_t *refresh;   /* 32 or NULL (borrowed) */
    const uint8_t *signature; /* 64 or NULL (borrowed) */
    uint64_t bump;            /* 0 = absent */
} dht_announce_t;
int dht_announce_decode(const uint8_t *buf, size_t len, dht_announce_t *a);
int dht_announce_encode(const dht_announce_t *a, uint8_t *out, size_t cap);

/**
 * @brief signable = NS || BLAKE2b-256(target || node_id || token || encode(peer) || refresh)
 * where NS is NS_ANNOUNCE (unannounce = 0) or NS_UNANNOUNCE (unannounce = 1).
 */
int dht_announce_signable(int unannounce, const uint8_t target[32], const uint8_t node_id[32],
                          const uint8_t token[32], const dht_peer_record_t *peer,
                          const uint8_t *refresh, uint8_t out[64]);

/** PEER_HANDSHAKE value (§5.1): flags | mode | noise:buffer | [peerAddress] | [relayAddress] */
enum {
    DHT_HS_FROM_CLIENT = 0,
    DHT_HS_FROM_SERVER = 1,
    DHT_HS_FROM_RELAY = 2,
    DHT_HS_FROM_SECOND_RELAY = 3,
    DHT_HS_REPLY = 4
};
typedef struct dht_handshake_msg {
    uint64_t mode;
    const uint8_t *noise; /* borrowed */
    size_t noise_len;
    int has_peer, has_relay;
    dht_addr_t peer, relay;
} dht_handshake_msg_t;
int dht_handshake_decode(const uint8_t *buf, size_t len, dht_handshake_msg_t *h);
int dht_handshake_encode(const dht_handshake_msg_t *h, uint8_t *out, size_t cap);

/** PEER_HOLEPUNCH value (§6): flags | mode | id | payload:buffer | [peerAddress] */
typedef struct dht_holepunch_msg {
    uint64_t mode, id;
    const uint8_t *payload; /* borrowed */
    size_t payload_len;
    int has_peer;
    dht_addr_t peer;
} dht_holepunch_msg_t;
int dht_holepunch_decode(const uint8_t *buf, size_t len, dht_holepunch_msg_t *h);
int dht_holepunch_encode(const dht_holepunch_msg_t *h, uint8_t *out, size_t cap);

#endif
