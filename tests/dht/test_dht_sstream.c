/* SPDX-License-Identifier: MIT */
/* secret-stream core: C <-> C over an in-memory pipe (handshake, headers, data, keep-alive
 * with a virtual clock) and the failure cases (bad MAC, wrong stream id, oversize frame,
 * malformed header). Compatibility with the JS implementation is checked by
 * scripts/interop.sh secretstream; the Noise bytes by test_dht_noise. */
#include <sodium.h>
#include <string.h>

#include "common/common_codec.h"
#include "common/common_err.h"
#include "dht/dht_sstream.h"
#include "tests/test.h"

typedef struct side {
    dht_sstream_t *s;
    common_buf_t wire; /* bytes travelling to the other side */
    int handshakes, opens, datas;
    common_buf_t got; /* concatenated received data */
    size_t last_len;
    int err;
} side_t;

static common_vclock_t vc = {1000, 1000};
static common_seeded_rng_t seeded;
static common_env_t env;

static void setup_env(void) {
    if (sodium_init() < 0) abort();
    env.clock = common_clock_virtual(&vc);
    env.rng = common_rng_seeded(&seeded, 7);
    env.log = NULL;
}

static void take_output(side_t *a) {
    const uint8_t *p;
    size_t n;
    dht_sstream_output(a->s, &p, &n);
    if (n) {
        if (common_buf_append(&a->wire, p, n) != 0) abort();
        dht_sstream_output_consume(a->s, n);
    }
}

/* feed @p n bytes of @p from's wire into @p to, in pieces of at most @p chunk bytes */
static void deliver(side_t *from, side_t *to, size_t chunk) {
    size_t off = 0, len = from->wire.len;
    while (off < len && !to->err) {
        size_t piece = len - off < chunk ? len - off : chunk;
        const uint8_t *in = from->wire.data + off;
        size_t done = 0;
        while (done < piece) {
            size_t used;
            dht_sstream_event_t ev;
            int rc = dht_sstream_feed(to->s, in + done, piece - done, &used, &ev);
            done += used;
            if (rc) {
                to->err = rc;
                break;
            }
            if (ev.type == DHT_SSTREAM_EV_HANDSHAKE) to->handshakes++;
            if (ev.type == DHT_SSTREAM_EV_OPEN) to->opens++;
            if (ev.type == DHT_SSTREAM_EV_DATA) {
                to->datas++;
                to->last_len = ev.len;
                common_buf_append(&to->got, ev.data, ev.len);
            }
            if (ev.type == DHT_SSTREAM_EV_NONE && used == 0) break;
        }
        off += piece;
        take_output(to);
    }
    common_buf_consume(&from->wire, from->wire.len);
}

static void pump(side_t *a, side_t *b, size_t chunk) {
    for (int i = 0; i < 10; i++) {
        take_output(a);
        take_output(b);
        if (!a->wire.len && !b->wire.len) break;
        deliver(a, b, chunk);
        deliver(b, a, chunk);
    }
}

static void send_msg(side_t *a, const void *m, size_t n) {
    take_output(a);
    uint8_t *frame = malloc(dht_sstream_frame_size(n));
    if (!frame || dht_sstream_seal(a->s, m, n, frame) != 0) abort();
    common_buf_append(&a->wire, frame, dht_sstream_frame_size(n));
    free(frame);
}

static void pair(side_t *a, side_t *b, const dht_sstream_opts_t *opts) {
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    dht_keypair_t ka, kb;
    dht_crypto_keypair_random(&ka);
    dht_crypto_keypair_random(&kb);
    a->s = dht_sstream_new_xx(1, &ka, &env, opts, NULL);
    b->s = dht_sstream_new_xx(0, &kb, &env, opts, NULL);
    if (!a->s || !b->s) abort();
    dht_crypto_keypair_wipe(&ka);
    dht_crypto_keypair_wipe(&kb);
}

static void unpair(side_t *a, side_t *b) {
    dht_sstream_free(a->s);
    dht_sstream_free(b->s);
    common_buf_free(&a->wire);
    common_buf_free(&b->wire);
    common_buf_free(&a->got);
    common_buf_free(&b->got);
}

TEST(handshake_sizes_and_data) {
    setup_env();
    side_t a, b;
    pair(&a, &b, NULL);
    /* wire sizes: msg1 32, msg2 96, msg3 64, each with a 3-byte length */
    take_output(&a);
    ASSERT_EQ_U64(a.wire.len, 3 + 32);
    ASSERT_EQ_U64(a.wire.data[0], 32);
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.wire.len, 3 + 96);
    deliver(&b, &a, 1 << 20);
    /* initiator: msg3 and its header */
    ASSERT_EQ_U64(a.wire.len, 3 + 64 + 3 + 56);
    ASSERT_EQ_U64(a.handshakes, 1);
    ASSERT_TRUE(dht_sstream_ready(a.s));
    pump(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.handshakes, 1);
    ASSERT_EQ_U64(a.opens, 1);
    ASSERT_EQ_U64(b.opens, 1);
    ASSERT_MEM_EQ(dht_sstream_handshake_hash(a.s), dht_sstream_handshake_hash(b.s), 64);
    send_msg(&a, "hello\n", 6);
    send_msg(&b, "{\"x\":1}\n", 8);
    send_msg(&b, "", 0); /* dropped like a keep-alive */
    pump(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.datas, 1);
    ASSERT_EQ_U64(a.datas, 1);
    ASSERT_MEM_EQ(b.got.data, "hello\n", 6);
    ASSERT_MEM_EQ(a.got.data, "{\"x\":1}\n", 8);
    ASSERT_EQ_I64(a.err, 0);
    ASSERT_EQ_I64(b.err, 0);
    unpair(&a, &b);
}

TEST(byte_by_byte_and_big_messages) {
    setup_env();
    side_t a, b;
    pair(&a, &b, NULL);
    pump(&a, &b, 1);
    ASSERT_EQ_U64(a.opens + b.opens, 2);
    size_t big = 4u << 20;
    uint8_t *m = malloc(big);
    ASSERT_TRUE(m != NULL);
    for (size_t i = 0; i < big; i++) m[i] = (uint8_t)(i * 31 + (i >> 12));
    send_msg(&a, m, big);
    for (int i = 0; i < 100; i++) send_msg(&a, m + i, (size_t)i + 1);
    deliver(&a, &b, 4093);
    ASSERT_EQ_I64(b.err, 0);
    ASSERT_EQ_U64(b.datas, 101);
    ASSERT_EQ_U64(b.got.len, big + 5050);
    ASSERT_MEM_EQ(b.got.data, m, big);
    ASSERT_MEM_EQ(b.got.data + big + 5050 - 100, m + 99, 100);
    /* small pieces for a few messages */
    common_buf_consume(&b.got, b.got.len);
    send_msg(&a, m, 1000);
    deliver(&a, &b, 1);
    ASSERT_EQ_U64(b.got.len, 1000);
    ASSERT_MEM_EQ(b.got.data, m, 1000);
    free(m);
    unpair(&a, &b);
}

/* frame_need: how much of the next frame a transport should gather before feeding it whole */
TEST(frame_need_and_whole_frame_inplace) {
    setup_env();
    side_t a, b;
    pair(&a, &b, NULL);
    take_output(&a);
    /* handshake msg1: 3 + 32 bytes */
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, 0), 3);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, 2), 3);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, 3), 35);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, 34), 35);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, 35), 0);
    pump(&a, &b, 1 << 20);
    ASSERT_EQ_U64(a.opens + b.opens, 2);
    uint8_t m[1000];
    for (size_t i = 0; i < sizeof m; i++) m[i] = (uint8_t)(i * 7);
    send_msg(&a, m, sizeof m);
    size_t fl = dht_sstream_frame_size(sizeof m);
    ASSERT_EQ_U64(a.wire.len, fl);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, 10), fl);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, fl - 1), fl);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data, fl), 0);
    /* once the core holds part of a frame, feeding the rest is the only way on */
    size_t used;
    dht_sstream_event_t ev;
    ASSERT_OK(dht_sstream_feed(b.s, a.wire.data, 10, &used, &ev));
    ASSERT_EQ_U64(used, 10);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, a.wire.data + 10, 5), 0);
    ASSERT_OK(dht_sstream_feed(b.s, a.wire.data + 10, fl - 10, &used, &ev));
    ASSERT_EQ_U64(ev.type, DHT_SSTREAM_EV_DATA);
    ASSERT_MEM_EQ(ev.data, m, sizeof m);
    common_buf_consume(&a.wire, a.wire.len);
    /* a whole frame gathered by the caller is decrypted in place */
    send_msg(&a, m, sizeof m);
    uint8_t *w = malloc(fl);
    ASSERT_TRUE(w != NULL);
    memcpy(w, a.wire.data, fl);
    ASSERT_OK(dht_sstream_feed_inplace(b.s, w, fl, &used, &ev));
    ASSERT_EQ_U64(used, fl);
    ASSERT_EQ_U64(ev.type, DHT_SSTREAM_EV_DATA);
    ASSERT_TRUE(ev.data > w && ev.data < w + fl);
    ASSERT_MEM_EQ(ev.data, m, sizeof m);
    free(w);
    common_buf_consume(&a.wire, a.wire.len);
    /* an over-limit length is left to feed, which reports it */
    uint8_t bad[3] = {0xff, 0xff, 0xff};
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, bad, 3), 0);
    ASSERT_ERR(dht_sstream_feed(b.s, bad, 3, &used, &ev), DHT_EFRAME);
    ASSERT_EQ_U64(dht_sstream_frame_need(b.s, bad, 3), 0); /* failed stream */
    unpair(&a, &b);
}

TEST(tampered_frame_rejected_nothing_delivered) {
    setup_env();
    for (size_t pos = 0; pos < 3 + 5 + 17; pos++) {
        side_t a, b;
        pair(&a, &b, NULL);
        pump(&a, &b, 1 << 20);
        send_msg(&a, "abcde", 5);
        a.wire.data[pos] ^= 0x20;
        deliver(&a, &b, 1 << 20);
        ASSERT_EQ_U64(b.datas, 0);
        if (pos < 3) {
            /* a corrupted length makes the frame look longer: the receiver waits for the
             * rest (nothing delivered); the next frame then fails its MAC */
            ASSERT_EQ_I64(b.err, 0);
            static uint8_t filler[65536];
            for (int k = 0; k < 40 && !b.err; k++) {
                send_msg(&a, filler, sizeof filler);
                deliver(&a, &b, 1 << 20);
            }
            if (b.err != DHT_EFRAME) ASSERT_EQ_I64(b.err, COMMON_ECRYPTO);
            ASSERT_EQ_U64(b.datas, 0);
            unpair(&a, &b);
            continue;
        }
        ASSERT_EQ_I64(b.err, COMMON_ECRYPTO);
        ASSERT_EQ_I64(dht_sstream_error(b.s), b.err);
        /* sticky: later good bytes are refused too */
        size_t used;
        dht_sstream_event_t ev;
        ASSERT_ERR(dht_sstream_feed(b.s, (const uint8_t *)"x", 1, &used, &ev), b.err);
        uint8_t f[32];
        ASSERT_ERR(dht_sstream_seal(b.s, "x", 1, f), COMMON_ESTATE);
        unpair(&a, &b);
    }
}

TEST(replayed_and_reordered_frames_rejected) {
    setup_env();
    side_t a, b;
    pair(&a, &b, NULL);
    pump(&a, &b, 1 << 20);
    send_msg(&a, "one", 3);
    common_buf_t first = {0};
    common_buf_append(&first, a.wire.data, a.wire.len);
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.datas, 1);
    common_buf_append(&a.wire, first.data, first.len); /* replay */
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_I64(b.err, COMMON_ECRYPTO);
    ASSERT_EQ_U64(b.datas, 1);
    common_buf_free(&first);
    unpair(&a, &b);
}

TEST(wrong_stream_id_and_bad_header) {
    setup_env();
    for (int variant = 0; variant < 3; variant++) {
        side_t a, b;
        pair(&a, &b, NULL);
        take_output(&a);
        deliver(&a, &b, 1 << 20);
        deliver(&b, &a, 1 << 20);
        /* a.wire: msg3 (67 bytes) then header frame (59) */
        ASSERT_EQ_U64(a.wire.len, 67 + 59);
        if (variant == 0) a.wire.data[67 + 3 + 5] ^= 1; /* id byte */
        if (variant == 1) a.wire.data[67] = 55;         /* header length 55 */
        if (variant == 2) {
            /* the initiator's header carries its own role id: swap it for the responder's */
            uint8_t id[32];
            dht_sstream_id(dht_sstream_handshake_hash(a.s), 0, id);
            memcpy(a.wire.data + 67 + 3, id, 32);
        }
        deliver(&a, &b, 1 << 20);
        ASSERT_EQ_U64(b.opens, 0);
        if (variant == 1)
            ASSERT_EQ_I64(b.err, DHT_EFRAME);
        else
            ASSERT_EQ_I64(b.err, DHT_ESTREAMID);
        unpair(&a, &b);
    }
}

TEST(oversize_frame_rejected) {
    setup_env();
    dht_sstream_opts_t o = {.max_frame = 1000};
    side_t a, b;
    pair(&a, &b, &o);
    pump(&a, &b, 1 << 20);
    uint8_t m[1200] = {0};
    send_msg(&a, m, 1000 - 17); /* exactly the limit: fine */
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.datas, 1);
    send_msg(&a, m, 1000 - 16);
    deliver(&a, &b, 7); /* refused as soon as the length is read */
    ASSERT_EQ_I64(b.err, DHT_EFRAME);
    ASSERT_EQ_U64(b.datas, 1);
    unpair(&a, &b);
    /* during the handshake, frames above the Noise maximum are refused */
    pair(&a, &b, NULL);
    uint8_t huge[3] = {0xff, 0xff, 0x01};
    size_t used;
    dht_sstream_event_t ev;
    ASSERT_ERR(dht_sstream_feed(b.s, huge, 3, &used, &ev), DHT_EFRAME);
    unpair(&a, &b);
    /* a data frame shorter than the 17-byte overhead */
    pair(&a, &b, NULL);
    pump(&a, &b, 1 << 20);
    uint8_t tiny[3 + 5] = {5, 0, 0, 1, 2, 3, 4, 5};
    ASSERT_ERR(dht_sstream_feed(b.s, tiny, sizeof tiny, &used, &ev), DHT_EFRAME);
    unpair(&a, &b);
}

TEST(handshake_tamper_fails) {
    setup_env();
    side_t a, b;
    pair(&a, &b, NULL);
    take_output(&a);
    deliver(&a, &b, 1 << 20);
    b.wire.data[3 + 40] ^= 1; /* inside the encrypted static key of msg2 */
    deliver(&b, &a, 1 << 20);
    ASSERT_EQ_I64(a.err, DHT_EHANDSHAKE);
    ASSERT_FALSE(dht_sstream_ready(a.s));
    ASSERT_TRUE(dht_sstream_remote_pk(a.s) == NULL);
    unpair(&a, &b);
}

TEST(keepalive_after_idle) {
    setup_env();
    side_t a, b;
    pair(&a, &b, NULL);
    pump(&a, &b, 1 << 20);
    ASSERT_EQ_U64(dht_sstream_next_deadline(a.s), DHT_SSTREAM_KEEPALIVE_MS);
    common_vclock_advance(&vc, 4000);
    ASSERT_EQ_U64(dht_sstream_tick(a.s), 0);
    ASSERT_EQ_U64(dht_sstream_next_deadline(a.s), 1000);
    send_msg(&a, "x", 1); /* a write postpones the keep-alive */
    common_vclock_advance(&vc, 4999);
    ASSERT_EQ_U64(dht_sstream_tick(a.s), 0);
    common_vclock_advance(&vc, 1);
    ASSERT_EQ_U64(dht_sstream_next_deadline(a.s), 0);
    ASSERT_EQ_U64(dht_sstream_tick(a.s), 1);
    ASSERT_EQ_U64(dht_sstream_tick(a.s), 0);
    take_output(&a);
    ASSERT_EQ_U64(a.wire.len, 21 + 20); /* "x" frame then the empty frame */
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_I64(b.err, 0);
    ASSERT_EQ_U64(b.datas, 1); /* the keep-alive is dropped */
    /* with keep_empty the empty message is delivered */
    unpair(&a, &b);
    dht_sstream_opts_t o = {.keep_empty = 1, .keepalive_ms = UINT32_MAX};
    pair(&a, &b, &o);
    pump(&a, &b, 1 << 20);
    ASSERT_EQ_U64(dht_sstream_next_deadline(a.s), UINT64_MAX);
    send_msg(&a, "", 0);
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.datas, 1);
    ASSERT_EQ_U64(b.last_len, 0);
    unpair(&a, &b);
}

TEST(keys_mode_and_state_errors) {
    setup_env();
    /* two sides from an agreed key set, as after hyperdht's IK handshake */
    dht_noise_result_t ki, kr;
    randombytes_buf(&ki, sizeof ki);
    memcpy(kr.tx, ki.rx, 32);
    memcpy(kr.rx, ki.tx, 32);
    memcpy(kr.hash, ki.hash, 64);
    side_t a = {0}, b = {0};
    a.s = dht_sstream_new_keys(1, &ki, &env, NULL, NULL);
    b.s = dht_sstream_new_keys(0, &kr, &env, NULL, NULL);
    ASSERT_TRUE(a.s && b.s);
    ASSERT_TRUE(dht_sstream_ready(a.s));
    uint8_t f[64];
    ASSERT_ERR(dht_sstream_seal(a.s, "x", 1, f), COMMON_EAGAIN); /* header not taken */
    pump(&a, &b, 1 << 20);
    ASSERT_EQ_U64(a.opens, 1);
    ASSERT_EQ_U64(b.opens, 1);
    send_msg(&a, "ok", 2);
    deliver(&a, &b, 1 << 20);
    ASSERT_EQ_U64(b.datas, 1);
    unpair(&a, &b);
    /* a standalone stream cannot seal before its handshake */
    dht_keypair_t kp;
    dht_crypto_keypair_random(&kp);
    dht_sstream_t *s = dht_sstream_new_xx(0, &kp, &env, NULL, NULL);
    ASSERT_ERR(dht_sstream_seal(s, "x", 1, f), COMMON_ESTATE);
    ASSERT_EQ_U64(dht_sstream_next_deadline(s), UINT64_MAX);
    dht_sstream_free(s);
    int err = 0;
    ASSERT_TRUE(dht_sstream_new_xx(0, &kp, NULL, NULL, &err) == NULL);
    ASSERT_EQ_I64(err, COMMON_EINVAL);
}

TEST_MAIN(TEST_ENTRY(handshake_sizes_and_data), TEST_ENTRY(byte_by_byte_and_big_messages),
          TEST_ENTRY(frame_need_and_whole_frame_inplace),
          TEST_ENTRY(tampered_frame_rejected_nothing_delivered),
          TEST_ENTRY(replayed_and_reordered_frames_rejected),
          TEST_ENTRY(wrong_stream_id_and_bad_header), TEST_ENTRY(oversize_frame_rejected),
          TEST_ENTRY(handshake_tamper_fails), TEST_ENTRY(keepalive_after_idle),
          TEST_ENTRY(keys_mode_and_state_errors))
