/* SPDX-License-Identifier: MIT */
/* Noise IK / XX byte-for-byte against noise-handshake 4.2 transcripts with fixed keys
 * (tests/dht/data/noise_transcripts.txt, from tests/interop/secretstream/
 * gen_noise_transcripts.js), plus failure cases. */
#include <sodium.h>
#include <string.h>

#include "common/common_err.h"
#include "dht/dht_noise.h"
#include "dht_test_vectors.h"
#include "tests/test.h"

static tv_set_t tv;

static void load(void) {
    if (sodium_init() < 0) abort();
    if (!tv.n && tv_load(&tv, "noise_transcripts.txt") != 0) abort();
}

static const tv_entry_t *get(const char *t, const char *field) {
    char name[96];
    snprintf(name, sizeof name, "%s_%s", t, field);
    return tv_get(&tv, name);
}

static dht_noise_t *make(const char *t, dht_noise_pattern_t pat, int initiator) {
    dht_keypair_t kp, rkp;
    dht_crypto_keypair_seed(&kp, get(t, initiator ? "is_seed" : "rs_seed")->data);
    dht_crypto_keypair_seed(&rkp, get(t, "rs_seed")->data);
    const tv_entry_t *pro = get(t, "prologue");
    int err;
    dht_noise_t *n = dht_noise_new(pat, initiator, &kp, pro->data, pro->len,
                                   pat == DHT_NOISE_IK && initiator ? rkp.pk : NULL, NULL, &err);
    dht_crypto_keypair_wipe(&kp);
    if (n) dht_noise_set_ephemeral(n, get(t, initiator ? "ie_seed" : "re_seed")->data);
    return n;
}

/* Run C initiator and C responder side by side; every message each sends must equal the JS
 * message, and each must accept the JS message. */
static void check_transcript(test_ctx_t *test_ctx_, const char *t, dht_noise_pattern_t pat,
                             int nmsgs) {
    dht_noise_t *side[2] = {make(t, pat, 1), make(t, pat, 0)};
    ASSERT_TRUE(side[0] && side[1]);
    for (int k = 0; k < nmsgs; k++) {
        char mn[16], pn[16];
        snprintf(mn, sizeof mn, "msg%d", k + 1);
        snprintf(pn, sizeof pn, "pay%d", k + 1);
        const tv_entry_t *msg = get(t, mn), *pay = get(t, pn);
        dht_noise_t *from = side[k % 2], *to = side[1 - k % 2];
        ASSERT_TRUE(dht_noise_wants_send(from));
        ASSERT_FALSE(dht_noise_wants_send(to));
        uint8_t out[1024], pl[1024];
        size_t olen, plen;
        ASSERT_OK(dht_noise_send(from, pay->data, pay->len, out, sizeof out, &olen));
        ASSERT_EQ_U64(olen, msg->len);
        ASSERT_MEM_EQ(out, msg->data, olen);
        ASSERT_OK(dht_noise_recv(to, msg->data, msg->len, pl, sizeof pl, &plen));
        ASSERT_EQ_U64(plen, pay->len);
        if (plen) ASSERT_MEM_EQ(pl, pay->data, plen);
    }
    ASSERT_TRUE(dht_noise_complete(side[0]) && dht_noise_complete(side[1]));
    dht_noise_result_t ri, rr;
    ASSERT_OK(dht_noise_result(side[0], &ri));
    ASSERT_OK(dht_noise_result(side[1], &rr));
    ASSERT_MEM_EQ(ri.tx, get(t, "i_tx")->data, 32);
    ASSERT_MEM_EQ(ri.rx, get(t, "i_rx")->data, 32);
    ASSERT_MEM_EQ(ri.hash, get(t, "i_hash")->data, 64);
    ASSERT_MEM_EQ(rr.tx, get(t, "r_tx")->data, 32);
    ASSERT_MEM_EQ(rr.rx, get(t, "r_rx")->data, 32);
    ASSERT_MEM_EQ(rr.hash, get(t, "r_hash")->data, 64);
    ASSERT_MEM_EQ(ri.remote_pk, get(t, "rs_pk")->data, 32);
    ASSERT_MEM_EQ(rr.remote_pk, get(t, "is_pk")->data, 32);
    /* stream ids of secret-stream come from the hash */
    uint8_t ns[32], id[32];
    dht_crypto_ns_secretstream(DHT_NS_SS_INITIATOR, ns);
    dht_crypto_hash_keyed(id, ns, 32, ri.hash, 64);
    ASSERT_MEM_EQ(id, get(t, "id_initiator")->data, 32);
    /* after completion, no more sends or receives */
    uint8_t o[200];
    size_t ol;
    ASSERT_ERR(dht_noise_send(side[0], NULL, 0, o, sizeof o, &ol), COMMON_ESTATE);
    dht_noise_free(side[0]);
    dht_noise_free(side[1]);
    sodium_memzero(&ri, sizeof ri);
    sodium_memzero(&rr, sizeof rr);
}

TEST(xx_transcripts) {
    load();
    const char *ts[] = {"xx0", "xx1", "xx2", "xxp"};
    for (int i = 0; i < 4; i++) {
        int before = test_ctx_->failed;
        check_transcript(test_ctx_, ts[i], DHT_NOISE_XX, 3);
        if (test_ctx_->failed && !before) TEST_FAIL_("transcript %s", ts[i]);
    }
}

TEST(ik_transcripts) {
    load();
    const char *ts[] = {"ik0", "ik1", "ike"};
    for (int i = 0; i < 3; i++) {
        check_transcript(test_ctx_, ts[i], DHT_NOISE_IK, 2);
        if (test_ctx_->failed) TEST_FAIL_("transcript %s", ts[i]);
    }
    uint8_t pro[32];
    dht_noise_prologue_hyperdht(pro);
    ASSERT_MEM_EQ(pro, get("ik0", "prologue")->data, 32);
}

TEST(ik_responder_learns_key_after_msg1) {
    load();
    dht_noise_t *r = make("ik0", DHT_NOISE_IK, 0);
    ASSERT_TRUE(r != NULL);
    ASSERT_TRUE(dht_noise_remote_static(r) == NULL);
    const tv_entry_t *m1 = get("ik0", "msg1");
    uint8_t pl[256];
    size_t plen;
    ASSERT_OK(dht_noise_recv(r, m1->data, m1->len, pl, sizeof pl, &plen));
    ASSERT_TRUE(dht_noise_remote_static(r) != NULL);
    ASSERT_MEM_EQ(dht_noise_remote_static(r), get("ik0", "is_pk")->data, 32);
    dht_noise_free(r);
}

TEST(tampered_and_truncated_messages_fail) {
    load();
    const char *cases[][2] = {{"ik0", "msg1"}, {"ik0", "msg2"}, {"xx0", "msg2"}, {"xx0", "msg3"}};
    for (int c = 0; c < 4; c++) {
        const char *t = cases[c][0];
        dht_noise_pattern_t pat = t[0] == 'i' ? DHT_NOISE_IK : DHT_NOISE_XX;
        int k = cases[c][1][3] - '1';
        const tv_entry_t *m = get(t, cases[c][1]);
        /* flip every byte position in turn (e bytes change the DH, the rest the MACs) */
        for (size_t pos = 0; pos < m->len; pos += 7) {
            dht_noise_t *side[2] = {make(t, pat, 1), make(t, pat, 0)};
            uint8_t buf[1024], pl[1024];
            size_t bl, pln;
            for (int j = 0; j < k; j++) { /* replay the honest prefix */
                char mn[16];
                snprintf(mn, sizeof mn, "msg%d", j + 1);
                const tv_entry_t *mj = get(t, mn);
                ASSERT_OK(dht_noise_send(side[j % 2],
                                         get(t, j == 0   ? "pay1"
                                                : j == 1 ? "pay2"
                                                         : "pay3")
                                             ->data,
                                         get(t, j == 0   ? "pay1"
                                                : j == 1 ? "pay2"
                                                         : "pay3")
                                             ->len,
                                         buf, sizeof buf, &bl));
                ASSERT_OK(dht_noise_recv(side[1 - j % 2], mj->data, mj->len, pl, sizeof pl, &pln));
            }
            memcpy(buf, m->data, m->len);
            buf[pos] ^= 0x01;
            dht_noise_t *to = side[1 - k % 2];
            int rc = dht_noise_recv(to, buf, m->len, pl, sizeof pl, &pln);
            ASSERT_ERR(rc, DHT_EHANDSHAKE);
            ASSERT_FALSE(dht_noise_complete(to));
            /* failed state is sticky */
            ASSERT_ERR(dht_noise_recv(to, m->data, m->len, pl, sizeof pl, &pln), DHT_EHANDSHAKE);
            dht_noise_free(side[0]);
            dht_noise_free(side[1]);
        }
        /* truncated */
        for (size_t cut = 0; cut < m->len; cut += 5) {
            dht_noise_t *side[2] = {make(t, pat, 1), make(t, pat, 0)};
            uint8_t buf[1024], pl[1024];
            size_t bl, pln;
            for (int j = 0; j < k; j++) {
                char mn[16], pn[16];
                snprintf(mn, sizeof mn, "msg%d", j + 1);
                snprintf(pn, sizeof pn, "pay%d", j + 1);
                ASSERT_OK(dht_noise_send(side[j % 2], get(t, pn)->data, get(t, pn)->len, buf,
                                         sizeof buf, &bl));
                ASSERT_OK(dht_noise_recv(side[1 - j % 2], get(t, mn)->data, get(t, mn)->len, pl,
                                         sizeof pl, &pln));
            }
            ASSERT_ERR(dht_noise_recv(side[1 - k % 2], m->data, cut, pl, sizeof pl, &pln),
                       DHT_EHANDSHAKE);
            dht_noise_free(side[0]);
            dht_noise_free(side[1]);
        }
    }
}

TEST(ik_wrong_responder_key_fails) {
    load();
    /* the initiator thinks the responder is someone else: msg1 cannot be opened */
    dht_keypair_t is, other, rs;
    dht_crypto_keypair_seed(&is, get("ik0", "is_seed")->data);
    dht_crypto_keypair_seed(&rs, get("ik0", "rs_seed")->data);
    dht_crypto_keypair_random(&other);
    uint8_t pro[32];
    dht_noise_prologue_hyperdht(pro);
    dht_noise_t *i = dht_noise_new(DHT_NOISE_IK, 1, &is, pro, 32, other.pk, NULL, NULL);
    dht_noise_t *r = dht_noise_new(DHT_NOISE_IK, 0, &rs, pro, 32, NULL, NULL, NULL);
    ASSERT_TRUE(i && r);
    uint8_t m[256], pl[256];
    size_t ml, pln;
    ASSERT_OK(dht_noise_send(i, "hi", 2, m, sizeof m, &ml));
    ASSERT_EQ_U64(ml, 2 + DHT_NOISE_IK_MSG1_OVERHEAD);
    ASSERT_ERR(dht_noise_recv(r, m, ml, pl, sizeof pl, &pln), DHT_EHANDSHAKE);
    dht_noise_free(i);
    dht_noise_free(r);
}

TEST(turns_sizes_and_args) {
    load();
    dht_keypair_t kp;
    dht_crypto_keypair_random(&kp);
    int err = 0;
    ASSERT_TRUE(dht_noise_new(DHT_NOISE_IK, 1, &kp, NULL, 0, NULL, NULL, &err) == NULL);
    ASSERT_EQ_I64(err, COMMON_EINVAL);
    ASSERT_TRUE(dht_noise_new((dht_noise_pattern_t)7, 1, &kp, NULL, 0, NULL, NULL, &err) == NULL);
    dht_noise_t *i = dht_noise_new(DHT_NOISE_XX, 1, &kp, NULL, 0, NULL, NULL, &err);
    dht_noise_t *r = dht_noise_new(DHT_NOISE_XX, 0, &kp, NULL, 0, NULL, NULL, &err);
    ASSERT_TRUE(i && r);
    uint8_t m[128], pl[16];
    size_t ml, pln;
    ASSERT_ERR(dht_noise_send(r, NULL, 0, m, sizeof m, &ml), COMMON_ESTATE);
    ASSERT_ERR(dht_noise_recv(i, m, 32, pl, sizeof pl, &pln), COMMON_ESTATE);
    ASSERT_ERR(dht_noise_send(i, NULL, 0, m, 31, &ml), COMMON_ETOOBIG); /* not consumed */
    ASSERT_OK(dht_noise_send(i, NULL, 0, m, sizeof m, &ml));
    ASSERT_EQ_U64(ml, 32);
    ASSERT_OK(dht_noise_recv(r, m, ml, pl, sizeof pl, &pln));
    ASSERT_OK(dht_noise_send(r, NULL, 0, m, sizeof m, &ml));
    ASSERT_EQ_U64(ml, 96);
    ASSERT_OK(dht_noise_recv(i, m, ml, pl, sizeof pl, &pln));
    ASSERT_OK(dht_noise_send(i, NULL, 0, m, sizeof m, &ml));
    ASSERT_EQ_U64(ml, 64);
    /* a payload larger than the caller's buffer fails the handshake */
    ASSERT_OK(dht_noise_recv(r, m, ml, pl, sizeof pl, &pln));
    dht_noise_result_t a, b;
    ASSERT_OK(dht_noise_result(i, &a));
    ASSERT_OK(dht_noise_result(r, &b));
    ASSERT_MEM_EQ(a.tx, b.rx, 32);
    ASSERT_MEM_EQ(a.rx, b.tx, 32);
    ASSERT_MEM_EQ(a.hash, b.hash, 64);
    dht_noise_free(i);
    dht_noise_free(r);
    /* random ephemerals from an injected env give distinct first messages */
    common_seeded_rng_t s1, s2;
    common_env_t e1 = {common_clock_system(), common_rng_seeded(&s1, 1), NULL};
    common_env_t e2 = {common_clock_system(), common_rng_seeded(&s2, 2), NULL};
    i = dht_noise_new(DHT_NOISE_XX, 1, &kp, NULL, 0, NULL, &e1, NULL);
    r = dht_noise_new(DHT_NOISE_XX, 1, &kp, NULL, 0, NULL, &e2, NULL);
    uint8_t m2[64];
    ASSERT_OK(dht_noise_send(i, NULL, 0, m, sizeof m, &ml));
    ASSERT_OK(dht_noise_send(r, NULL, 0, m2, sizeof m2, &ml));
    ASSERT_TRUE(memcmp(m, m2, 32) != 0);
    dht_noise_free(i);
    dht_noise_free(r);
    /* payload too big for the receiver's buffer */
    i = make("xxp", DHT_NOISE_XX, 1);
    r = make("xxp", DHT_NOISE_XX, 0);
    const tv_entry_t *m1 = get("xxp", "msg1");
    ASSERT_ERR(dht_noise_recv(r, m1->data, m1->len, pl, 2, &pln), COMMON_ETOOBIG);
    ASSERT_ERR(dht_noise_send(r, NULL, 0, m, sizeof m, &ml), DHT_EHANDSHAKE);
    dht_noise_free(i);
    dht_noise_free(r);
    dht_noise_free(NULL);
}

TEST(cleanup) {
    tv_free(&tv);
}

TEST_MAIN(TEST_ENTRY(xx_transcripts), TEST_ENTRY(ik_transcripts),
          TEST_ENTRY(ik_responder_learns_key_after_msg1),
          TEST_ENTRY(tampered_and_truncated_messages_fail),
          TEST_ENTRY(ik_wrong_responder_key_fails), TEST_ENTRY(turns_sizes_and_args),
          TEST_ENTRY(cleanup))
