/* SPDX-License-Identifier: MIT */
/**
 * @file dht_cenc.h
 * @brief The compact-encoding subset Hyperswarm uses on the wire (hyperswarm-wire.md §1).
 *
 * Encoding: a bounded writer (dht_cenc_writer_t) over a caller buffer. Every put appends
 * at `len`; the first write that does not fit sets a sticky error (COMMON_ETOOBIG) and
 * later puts are no-ops, so a whole message is written and checked once with
 * dht_cenc_writer_finish(). A writer with buf == NULL only counts bytes — the equivalent
 * of compact-encoding's preencode pass — so callers can size a buffer exactly:
 *
 *   dht_cenc_writer_t w; dht_cenc_writer_init(&w, NULL, 0);  encode_msg(&w, m);
 *   size_t n = w.len;  uint8_t *buf = malloc(n);
 *   dht_cenc_writer_init(&w, buf, n);  encode_msg(&w, m);  dht_cenc_writer_finish(&w, &n);
 *
 * Decoding: a bounds-checked reader (dht_cenc_reader_t) over borrowed bytes. Every get
 * either fully succeeds or sets a sticky error (COMMON_EPROTO) and leaves outputs zeroed;
 * after the first error all gets fail. Readers never look past `len`, and trailing bytes
 * are legal (the caller decides whether to look at dht_cenc_reader_remaining()). Unknown
 * flag bits are the caller's business: decode the flags with dht_cenc_get_uint() and
 * ignore the bits you do not know.
 *
 * Integers are little-endian. `uint` is the varint: <= 0xFC one byte; 0xFD + u16;
 * 0xFE + u32; 0xFF + u64. Non-minimal varints are accepted on decode (as the JS decoder
 * does). Pointers returned by the reader (dht_cenc_get_buffer_ref, ..._ref) borrow the
 * input and are valid as long as it is.
 *
 * Thread-safety: none needed; no globals. This header is stable: changes are additive.
 */
#ifndef SWARMDVM_DHT_CENC_H
#define SWARMDVM_DHT_CENC_H

#include <stddef.h>
#include <stdint.h>

/** An IPv4 address as compact-encoding-net's ipv4Address: 4 host bytes in network
 *  (dotted) order; the port is a host-order integer, encoded as u16 little-endian. */
typedef struct dht_ipv4_addr {
    uint8_t host[4];
    uint16_t port;
} dht_ipv4_addr_t;

/** An IPv6 address: 16 bytes in network order; port encoded u16 little-endian. */
typedef struct dht_ipv6_addr {
    uint8_t host[16];
    uint16_t port;
} dht_ipv6_addr_t;

#define DHT_CENC_IPV4_SIZE 6
#define DHT_CENC_IPV6_SIZE 18

typedef struct dht_cenc_writer {
    uint8_t *buf; /* borrowed; NULL = count only */
    size_t cap;
    size_t len; /* bytes written (or counted) so far */
    int err;    /* 0 or the first error */
} dht_cenc_writer_t;

typedef struct dht_cenc_reader {
    const uint8_t *buf; /* borrowed */
    size_t len;
    size_t pos;
    int err; /* 0 or COMMON_EPROTO after the first failed get */
} dht_cenc_reader_t;

/* ---- sizes ---- */

/** @brief Bytes the varint encoding of @p n takes (1, 3, 5 or 9). */
size_t dht_cenc_uint_size(uint64_t n);

/* ---- writer ---- */

/** @brief Start writing into @p buf (borrowed, @p cap bytes), or counting if buf is NULL. */
void dht_cenc_writer_init(dht_cenc_writer_t *w, uint8_t *buf, size_t cap);
/** @brief 0 and the length written, or the sticky error (COMMON_ETOOBIG). */
int dht_cenc_writer_finish(const dht_cenc_writer_t *w, size_t *len);

void dht_cenc_put_uint(dht_cenc_writer_t *w, uint64_t n);
void dht_cenc_put_u8(dht_cenc_writer_t *w, uint8_t n);
void dht_cenc_put_u16(dht_cenc_writer_t *w, uint16_t n);
/** @brief 3 bytes LE; values above 0xFFFFFF set COMMON_ERANGE. */
void dht_cenc_put_u24(dht_cenc_writer_t *w, uint32_t n);
void dht_cenc_put_u32(dht_cenc_writer_t *w, uint32_t n);
void dht_cenc_put_u64(dht_cenc_writer_t *w, uint64_t n);
/** @brief Raw bytes (fixed32 / fixed64 / anything of known size). */
void dht_cenc_put_fixed(dht_cenc_writer_t *w, const void *p, size_t n);
static inline void dht_cenc_put_fixed32(dht_cenc_writer_t *w, const uint8_t p[32]) {
    dht_cenc_put_fixed(w, p, 32);
}
static inline void dht_cenc_put_fixed64(dht_cenc_writer_t *w, const uint8_t p[64]) {
    dht_cenc_put_fixed(w, p, 64);
}
/** @brief `buffer`: varint length then the bytes (p may be NULL when n == 0). */
void dht_cenc_put_buffer(dht_cenc_writer_t *w, const void *p, size_t n);
void dht_cenc_put_ipv4(dht_cenc_writer_t *w, const dht_ipv4_addr_t *a);
void dht_cenc_put_ipv6(dht_cenc_writer_t *w, const dht_ipv6_addr_t *a);
/** @brief `array(ipv4Address)`: varint count then the elements. */
void dht_cenc_put_ipv4_array(dht_cenc_writer_t *w, const dht_ipv4_addr_t *a, size_t n);
void dht_cenc_put_ipv6_array(dht_cenc_writer_t *w, const dht_ipv6_addr_t *a, size_t n);
/** @brief Reserve @p n bytes and return a pointer to fill them (NULL when counting or on
 *  error). Lets callers encode nested structures in place. */
uint8_t *dht_cenc_put_reserve(dht_cenc_writer_t *w, size_t n);

/* ---- reader ---- */

void dht_cenc_reader_init(dht_cenc_reader_t *r, const void *buf, size_t len);
static inline size_t dht_cenc_reader_remaining(const dht_cenc_reader_t *r) {
    return r->err ? 0 : r->len - r->pos;
}

int dht_cenc_get_uint(dht_cenc_reader_t *r, uint64_t *out);
/** @brief A varint that must be <= @p max (COMMON_EPROTO otherwise). */
int dht_cenc_get_uint_max(dht_cenc_reader_t *r, uint64_t max, uint64_t *out);
int dht_cenc_get_u8(dht_cenc_reader_t *r, uint8_t *out);
int dht_cenc_get_u16(dht_cenc_reader_t *r, uint16_t *out);
int dht_cenc_get_u24(dht_cenc_reader_t *r, uint32_t *out);
int dht_cenc_get_u32(dht_cenc_reader_t *r, uint32_t *out);
int dht_cenc_get_u64(dht_cenc_reader_t *r, uint64_t *out);
/** @brief Copy @p n raw bytes into @p out. */
int dht_cenc_get_fixed(dht_cenc_reader_t *r, void *out, size_t n);
/** @brief Borrow @p n raw bytes of the input. */
int dht_cenc_get_fixed_ref(dht_cenc_reader_t *r, size_t n, const uint8_t **out);
/** @brief `buffer`: borrow the bytes; *out is non-NULL even when *n is 0. */
int dht_cenc_get_buffer_ref(dht_cenc_reader_t *r, const uint8_t **out, size_t *n);
/** @brief `buffer` copied into @p out (at most @p cap bytes, else COMMON_EPROTO). */
int dht_cenc_get_buffer(dht_cenc_reader_t *r, void *out, size_t cap, size_t *n);
int dht_cenc_get_ipv4(dht_cenc_reader_t *r, dht_ipv4_addr_t *out);
int dht_cenc_get_ipv6(dht_cenc_reader_t *r, dht_ipv6_addr_t *out);
/**
 * @brief An array count: a varint that must be <= @p max and small enough that
 * @p min_elem_size bytes per element still fit in the remaining input.
 */
int dht_cenc_get_array_len(dht_cenc_reader_t *r, size_t max, size_t min_elem_size, size_t *n);
/** @brief `array(ipv4Address)` into @p out (at most @p cap elements, else COMMON_EPROTO). */
int dht_cenc_get_ipv4_array(dht_cenc_reader_t *r, dht_ipv4_addr_t *out, size_t cap, size_t *n);
int dht_cenc_get_ipv6_array(dht_cenc_reader_t *r, dht_ipv6_addr_t *out, size_t cap, size_t *n);

/* ---- helpers ---- */

/** @brief Format "a.b.c.d:port" into @p out (at least 22 bytes). */
void dht_ipv4_format(const dht_ipv4_addr_t *a, char *out, size_t cap);
/** @brief Parse "a.b.c.d" (strict, each part 0..255) and set the port. 0 or COMMON_EINVAL. */
int dht_ipv4_parse(const char *host, uint16_t port, dht_ipv4_addr_t *out);
/** @brief Equal host and port. */
int dht_ipv4_equal(const dht_ipv4_addr_t *a, const dht_ipv4_addr_t *b);

#endif
