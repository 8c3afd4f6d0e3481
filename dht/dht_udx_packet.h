/* SPDX-License-Identifier: MIT */
/**
 * @file dht_udx_packet.h
 * @brief UDX wire format (hyperswarm-wire.md §9): pure encode/decode, no state, no I/O.
 *
 * Every UDX datagram starts with a 20-byte header, all multi-byte fields little-endian:
 *
 *   0xFF | 0x01 | type:u8 | data_offset:u8 | remote_stream_id:u32 | recv_window:u32
 *        | seq:u32 | ack:u32
 *
 * When the SACK flag is set, (start:u32, end:u32) half-open ranges of received packet
 * sequence numbers follow the header; they fill the `data_offset` bytes when data_offset
 * is non-zero, otherwise the rest of the datagram (this is how the reference reads them).
 * The payload (DATA or MESSAGE bytes) starts data_offset bytes after the header; a
 * non-zero data_offset on a DATA packet is padding (MTU probes).
 *
 * Decoding borrows: dht_udx_packet_t.payload points into the caller's buffer.
 */
#ifndef SWARMDVM_DHT_UDX_PACKET_H
#define SWARMDVM_DHT_UDX_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define DHT_UDX_MAGIC       0xFF
#define DHT_UDX_VERSION     0x01
#define DHT_UDX_HEADER_SIZE 20

/* Type flags. */
#define DHT_UDX_TYPE_DATA      1
#define DHT_UDX_TYPE_END       2
#define DHT_UDX_TYPE_SACK      4
#define DHT_UDX_TYPE_MESSAGE   8
#define DHT_UDX_TYPE_DESTROY   16
#define DHT_UDX_TYPE_HEARTBEAT 32

/** Maximum SACK ranges we read from or write into one packet (the reference sends ≤ 50). */
#ifndef DHT_UDX_MAX_SACKS
#define DHT_UDX_MAX_SACKS 50
#endif

/** Largest datagram we accept (MTU probes go up to 1500 bytes of IP packet). */
#ifndef DHT_UDX_MAX_DATAGRAM
#define DHT_UDX_MAX_DATAGRAM 2048
#endif

typedef struct dht_udx_header {
    uint8_t type;
    uint8_t data_offset;
    uint32_t id;   /* the receiver's local stream id */
    uint32_t rwnd; /* the sender's receive window in bytes */
    uint32_t seq;  /* packet sequence number (packets, not bytes) */
    uint32_t ack;  /* next sequence number the sender expects (cumulative) */
} dht_udx_header_t;

typedef struct dht_udx_sack {
    uint32_t start, end; /* half-open [start, end) */
} dht_udx_sack_t;

typedef struct dht_udx_packet {
    dht_udx_header_t h;
    size_t nsacks;
    dht_udx_sack_t sacks[DHT_UDX_MAX_SACKS];
    const uint8_t *payload; /* borrowed from the decoded buffer */
    size_t payload_len;
} dht_udx_packet_t;

/** @brief 1 if @p buf looks like a UDX packet (magic, version, ≥ 20 bytes), else 0. */
int dht_udx_packet_is_udx(const uint8_t *buf, size_t len);

/** @brief The stream id of a UDX packet. @return 0, or COMMON_EPROTO if not UDX. */
int dht_udx_packet_peek_id(const uint8_t *buf, size_t len, uint32_t *id);

/**
 * @brief Decode a datagram. Unknown type bits are kept in h.type and ignored by callers.
 * SACK ranges beyond DHT_UDX_MAX_SACKS are ignored.
 * @return 0, or COMMON_EPROTO (not UDX, data_offset beyond the datagram).
 */
int dht_udx_packet_decode(const uint8_t *buf, size_t len, dht_udx_packet_t *out);

/** @brief Write the 20-byte header into @p out. */
void dht_udx_header_encode(const dht_udx_header_t *h, uint8_t out[DHT_UDX_HEADER_SIZE]);

/** @brief Write @p n SACK ranges (8 bytes each) into @p out (room for 8·n bytes). */
size_t dht_udx_sacks_encode(const dht_udx_sack_t *sacks, size_t n, uint8_t *out);

/** Serial-number arithmetic on 32-bit sequence numbers (RFC 1982 style). */
static inline int32_t dht_udx_seq_diff(uint32_t a, uint32_t b) {
    return (int32_t)(a - b);
}
static inline int dht_udx_seq_lt(uint32_t a, uint32_t b) {
    return dht_udx_seq_diff(a, b) < 0;
}
static inline int dht_udx_seq_le(uint32_t a, uint32_t b) {
    return dht_udx_seq_diff(a, b) <= 0;
}

#endif
