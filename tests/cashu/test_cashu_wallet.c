/* SPDX-License-Identifier: MIT */
/* Offline acceptance through the wallet (no mint contacted): the Nutshell + cashu-ts token of
 * cashu-vectors.json (P2PK to the provider, DLEQ, short keyset id) under the provider's key,
 * with the distinct refusals (not locked to us, unknown keyset, foreign mint, bad DLEQ,
 * replay) and the store's balance. The online paths are covered by scripts/interop/cashu.sh. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cashu/cashu_keyset.h"
#include "cashu/cashu_token.h"
#include "cashu/cashu_wallet.h"
#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_fs.h"
#include "tests/cashu/vectors.h"
#include "tests/test.h"

static cJSON *vectors(void) {
    return cashu_test_vectors_load();
}

typedef struct fixture {
    uv_loop_t loop;
    common_env_t env;
    common_vclock_t vc;
    common_seeded_rng_t sr;
    common_http_t *http;
    cashu_wallet_t *w;
    char dir[256];
} fixture_t;

static int open_wallet(fixture_t *f, const uint8_t *sk) {
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    f->vc.unix_ms = 1790000000000ull;
    f->env = (common_env_t){common_clock_virtual(&f->vc), common_rng_seeded(&f->sr, 42), NULL};
    snprintf(f->dir, sizeof f->dir, "/tmp/test_cashu_wallet.XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char db[300], key[300];
    snprintf(db, sizeof db, "%s/w.sqlite", f->dir);
    snprintf(key, sizeof key, "%s/w.key", f->dir);
    if (sk && common_write_private(key, sk, 32, 1)) return -1;
    int err = 0;
    f->http = common_http_new(&f->loop, &f->env, &err);
    if (!f->http) return -1;
    cashu_wallet_opts_t o = {.db_path = db, .key_path = key};
    return cashu_wallet_open(&f->loop, f->http, &f->env, &o, &f->w);
}

static void close_wallet(fixture_t *f) {
    cashu_wallet_free(f->w);
    common_http_free(f->http);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd)) { /* best effort */
    }
}

static int load_keyset(const cJSON *d, cashu_keyset_t *ks) {
    memset(ks, 0, sizeof *ks);
    const cJSON *k = cJSON_GetObjectItem(d, "keyset");
    snprintf(ks->id, sizeof ks->id, "%s", cJSON_GetObjectItem(k, "id")->valuestring);
    strcpy(ks->unit, "sat");
    ks->active = 1;
    return cashu_keyset_parse_keys(cJSON_GetObjectItem(k, "keys"), ks);
}

/* The Nutshell/cashu-ts token of cashu-vectors.json: P2PK to the provider, with DLEQ. */
typedef struct p2pk_vec {
    cJSON *v; /* owned: the strings below point into it */
    const char *token, *mint;
    uint8_t sk[32]; /* the provider's key */
    cashu_keyset_t ks;
} p2pk_vec_t;

static int load_p2pk_vec(p2pk_vec_t *pv) {
    memset(pv, 0, sizeof *pv);
    if (!(pv->v = vectors())) return -1;
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(pv->v, "derived_not_official"),
                                         "nutshell_interop_p2pk_dleq_token");
    const cJSON *tok = cJSON_GetObjectItem(d, "serialized"), *mint = cJSON_GetObjectItem(d, "mint"),
                *key = cJSON_GetObjectItem(d, "provider_privkey_hex");
    if (!cJSON_IsString(tok) || !cJSON_IsString(mint) || !cJSON_IsString(key)) return -1;
    pv->token = tok->valuestring;
    pv->mint = mint->valuestring;
    if (common_hex_decode_exact(key->valuestring, pv->sk, 32)) return -1;
    return load_keyset(d, &pv->ks);
}

TEST(accept_offline_policy) {
    p2pk_vec_t pv;
    ASSERT_OK(load_p2pk_vec(&pv));
    cJSON *v = pv.v;
    const char *token = pv.token, *mint = pv.mint;
    const uint8_t *sk = pv.sk;
    cashu_keyset_t ks = pv.ks;
    const char *mints[] = {mint, NULL};
    const char *other[] = {"http://127.0.0.1:1", NULL};
    cashu_policy_t pol = {mints, 0, 0, 1};
    uint64_t amount = 0;

    /* someone else's wallet: not locked to its key */
    fixture_t f;
    ASSERT_OK(open_wallet(&f, NULL));
    ASSERT_OK(cashu_wallet_add_keyset(f.w, mint, &ks, 1));
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &pol, &amount), CASHU_ENOT_LOCKED);
    close_wallet(&f);

    /* the provider */
    ASSERT_OK(open_wallet(&f, sk));
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &pol, &amount),
               CASHU_EKEYSET); /* no keyset yet */
    ASSERT_OK(cashu_wallet_add_keyset(f.w, mint, &ks, 1));
    cashu_policy_t foreign = {other, 0, 0, 1};
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &foreign, &amount),
               CASHU_EMINT_NOT_ACCEPTED);
    cashu_policy_t locked = {mints, 1, 60, 1};
    size_t np0 = 0;
    ASSERT_OK(cashu_wallet_verify_offline(f.w, token, &locked, &amount,
                                          &np0)); /* no locktime: locked for ever */
    /* tampered DLEQ */
    cashu_token_t t;
    ASSERT_OK(cashu_token_decode(token, strlen(token), &t));
    t.proofs[1].dleq.s[3] ^= 1;
    common_buf_t b = {0};
    ASSERT_OK(cashu_token_encode_v4(&t, 1, &b));
    ASSERT_OK(common_buf_append(&b, "", 1));
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, (char *)b.data, &pol, &amount), CASHU_EDLEQ);
    /* DLEQ stripped: refused when DLEQ is required */
    t.proofs[1].dleq.s[3] ^= 1;
    t.proofs[0].has_dleq = 0;
    b.len = 0;
    ASSERT_OK(cashu_token_encode_v4(&t, 1, &b));
    ASSERT_OK(common_buf_append(&b, "", 1));
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, (char *)b.data, &pol, &amount), CASHU_EDLEQ);
    common_buf_free(&b);
    cashu_token_free(&t);
    /* a mint that does not enforce NUT-11: a lock means nothing there */
    ASSERT_OK(cashu_wallet_add_keyset(f.w, mint, &ks, 0));
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &pol, &amount), CASHU_ENOT_LOCKED);
    ASSERT_OK(cashu_wallet_add_keyset(f.w, mint, &ks, 1));
    /* accepted, then replay refused; nothing was recorded by the refusals */
    cashu_balance_t bal;
    ASSERT_OK(cashu_wallet_balance(f.w, NULL, &bal));
    ASSERT_EQ_U64(bal.incoming, 0);
    size_t np = 0;
    ASSERT_OK(cashu_wallet_verify_offline(f.w, token, &pol, &amount, &np));
    ASSERT_EQ_U64(np, 2);
    ASSERT_OK(cashu_wallet_accept_offline(f.w, token, &pol, &amount));
    ASSERT_EQ_U64(amount, 3);
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &pol, &amount), CASHU_EREPLAY);
    ASSERT_ERR(cashu_wallet_verify_offline(f.w, token, &pol, &amount, &np), CASHU_EREPLAY);
    ASSERT_OK(cashu_wallet_balance(f.w, mint, &bal));
    ASSERT_EQ_U64(bal.incoming, 3);
    ASSERT_EQ_U64(bal.unspent, 0);
    close_wallet(&f);

    /* the store persists the replay set across restarts */
    cJSON_Delete(v);
}

/* accept_offline_many: one transaction, each token answered as accept_offline would have in
 * order (a failure records nothing of its token and does not undo the others; a repeat within
 * the batch is a replay). */
TEST(accept_offline_many_batch) {
    p2pk_vec_t pv;
    ASSERT_OK(load_p2pk_vec(&pv));
    cJSON *v = pv.v;
    const char *token = pv.token, *mint = pv.mint;
    const uint8_t *sk = pv.sk;
    cashu_keyset_t ks = pv.ks;
    const char *mints[] = {mint, NULL};
    const char *other[] = {"http://127.0.0.1:1", NULL};
    cashu_policy_t pol = {mints, 0, 0, 1}, foreign = {other, 0, 0, 1};
    fixture_t f;
    ASSERT_OK(open_wallet(&f, sk));
    ASSERT_OK(cashu_wallet_add_keyset(f.w, mint, &ks, 1));
    cashu_token_t t;
    ASSERT_OK(cashu_token_decode(token, strlen(token), &t));
    t.proofs[1].dleq.s[3] ^= 1;
    common_buf_t b = {0};
    ASSERT_OK(cashu_token_encode_v4(&t, 1, &b));
    ASSERT_OK(common_buf_append(&b, "", 1));
    cashu_token_free(&t);
    const char *toks[] = {(char *)b.data, token, "cashuBgarbage", token, token};
    const cashu_policy_t *pols[] = {&pol, &foreign, &pol, &pol, &pol};
    uint64_t amounts[5];
    int rcs[5];
    ASSERT_OK(cashu_wallet_accept_offline_many(f.w, 5, toks, pols, amounts, rcs));
    ASSERT_ERR(rcs[0], CASHU_EDLEQ);
    ASSERT_ERR(rcs[1], CASHU_EMINT_NOT_ACCEPTED);
    ASSERT_ERR(rcs[2], CASHU_EBAD_TOKEN);
    ASSERT_OK(rcs[3]);
    ASSERT_EQ_U64(amounts[3], 3);
    ASSERT_ERR(rcs[4], CASHU_EREPLAY);
    ASSERT_EQ_U64(amounts[4], 0);
    cashu_balance_t bal;
    ASSERT_OK(cashu_wallet_balance(f.w, mint, &bal));
    ASSERT_EQ_U64(bal.incoming, 3);
    /* committed: a later call (or accept_offline) sees the replay */
    uint64_t amount = 0;
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &pol, &amount), CASHU_EREPLAY);
    ASSERT_OK(cashu_wallet_accept_offline_many(f.w, 1, toks + 1, pols + 3, amounts, rcs));
    ASSERT_ERR(rcs[0], CASHU_EREPLAY);
    ASSERT_OK(cashu_wallet_accept_offline_many(f.w, 0, NULL, NULL, NULL, NULL));
    common_buf_free(&b);
    close_wallet(&f);
    cJSON_Delete(v);
}

/* The three steps of offline acceptance with the EC work and the record on another thread
 * (as dvm-agent runs them): the record made through the accept store (a second connection)
 * is what the wallet's own connection sees, and replays are refused across both. */
typedef struct store_job {
    cashu_accept_store_t *st;
    cashu_offline_check_t *chk[2];
    uint64_t amounts[2];
    int rcs[2];
    int rc;
} store_job_t;

static void *store_thread(void *arg) {
    store_job_t *j = arg;
    for (size_t i = 0; i < 2; i++) cashu_offline_check_run(j->chk[i]);
    j->rc = cashu_accept_store_commit_many(j->st, 2, j->chk, j->amounts, j->rcs);
    return NULL;
}

TEST(accept_store_other_thread) {
    p2pk_vec_t pv;
    ASSERT_OK(load_p2pk_vec(&pv));
    cJSON *v = pv.v;
    const char *token = pv.token, *mint = pv.mint;
    const uint8_t *sk = pv.sk;
    cashu_keyset_t ks = pv.ks;
    const char *mints[] = {mint, NULL};
    cashu_policy_t pol = {mints, 0, 0, 1};
    fixture_t f;
    ASSERT_OK(open_wallet(&f, sk));
    ASSERT_OK(cashu_wallet_add_keyset(f.w, mint, &ks, 1));
    store_job_t j;
    memset(&j, 0, sizeof j);
    ASSERT_OK(cashu_wallet_accept_store_open(f.w, &j.st));
    /* the same token twice: the second is a replay of the first within the batch */
    ASSERT_OK(cashu_wallet_offline_prepare(f.w, token, &pol, &j.chk[0]));
    ASSERT_OK(cashu_wallet_offline_prepare(f.w, token, &pol, &j.chk[1]));
    /* no failure so far (the EC work has not run yet) */
    ASSERT_OK(cashu_offline_check_result(j.chk[0]));
    pthread_t th;
    ASSERT_EQ_U64(pthread_create(&th, NULL, store_thread, &j), 0);
    pthread_join(th, NULL);
    ASSERT_OK(j.rc);
    ASSERT_OK(j.rcs[0]);
    ASSERT_EQ_U64(j.amounts[0], 3);
    ASSERT_ERR(j.rcs[1], CASHU_EREPLAY);
    /* the wallet's own connection sees the record */
    cashu_balance_t bal;
    ASSERT_OK(cashu_wallet_balance(f.w, mint, &bal));
    ASSERT_EQ_U64(bal.incoming, 3);
    uint64_t amount = 0;
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, token, &pol, &amount), CASHU_EREPLAY);
    /* a check whose EC work never ran is refused, never recorded */
    cashu_offline_check_t *c = NULL;
    ASSERT_OK(cashu_wallet_offline_prepare(f.w, token, &pol, &c));
    uint64_t a1;
    int r1;
    ASSERT_OK(cashu_accept_store_commit_many(j.st, 1, &c, &a1, &r1));
    ASSERT_ERR(r1, COMMON_ESTATE);
    cashu_offline_check_free(c);
    /* a rule failure is carried by the check through the other steps */
    const char *other[] = {"http://127.0.0.1:1", NULL};
    cashu_policy_t foreign = {other, 0, 0, 1};
    ASSERT_ERR(cashu_wallet_offline_prepare(f.w, token, &foreign, &c), CASHU_EMINT_NOT_ACCEPTED);
    ASSERT_TRUE(c);
    cashu_offline_check_run(c);
    ASSERT_ERR(cashu_offline_check_result(c), CASHU_EMINT_NOT_ACCEPTED);
    cashu_offline_check_free(c);
    for (size_t i = 0; i < 2; i++) cashu_offline_check_free(j.chk[i]);
    cashu_accept_store_close(j.st);
    close_wallet(&f);
    cJSON_Delete(v);
}

TEST(bad_inputs) {
    fixture_t f;
    ASSERT_OK(open_wallet(&f, NULL));
    const char *mints[] = {"http://m", NULL};
    cashu_policy_t pol = {mints, 1, 0, 1};
    uint64_t a;
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, "cashuBgarbage", &pol, &a), CASHU_EBAD_TOKEN);
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, "hello", &pol, &a), CASHU_EBAD_TOKEN);
    ASSERT_ERR(cashu_wallet_accept_offline(f.w, "hello", NULL, &a), COMMON_EINVAL);
    ASSERT_ERR(cashu_wallet_prepare(f.w, "http://m", 0, 1, NULL, 0, NULL, NULL), COMMON_ERANGE);
    ASSERT_ERR(cashu_wallet_mint_quote(f.w, "http://m", 0, NULL, NULL), COMMON_ERANGE);
    ASSERT_OK(cashu_wallet_release(f.w, 12345)); /* unknown bundle: nothing to do */
    close_wallet(&f);
}

static void must_not_run(void *ud, const cashu_result_t *r) {
    (void)r;
    *(int *)ud = 1;
}

static void record(void *ud, const cashu_result_t *r) {
    *(int *)ud = r->err;
}

TEST(free_in_flight_and_unreachable) {
    /* freeing the wallet with requests in flight: no callback, no leak (ASan checks) */
    fixture_t f;
    int called = 0;
    ASSERT_OK(open_wallet(&f, NULL));
    ASSERT_OK(cashu_wallet_load_mint(f.w, "http://127.0.0.1:9", must_not_run, &called));
    ASSERT_OK(cashu_wallet_claim(f.w, "http://127.0.0.1:9", must_not_run, &called));
    close_wallet(&f);
    ASSERT_EQ_I64(called, 0);
    /* an unreachable mint is reported as such (port 9: discard, normally closed) */
    ASSERT_OK(open_wallet(&f, NULL));
    int err = 1;
    ASSERT_OK(cashu_wallet_mint_quote(f.w, "http://127.0.0.1:9", 10, record, &err));
    for (int i = 0; i < 200 && err == 1; i++) uv_run(&f.loop, UV_RUN_ONCE);
    ASSERT_EQ_I64(err, CASHU_EMINT_UNREACHABLE);
    close_wallet(&f);
}

TEST_MAIN(TEST_ENTRY(accept_offline_policy), TEST_ENTRY(accept_offline_many_batch),
          TEST_ENTRY(accept_store_other_thread), TEST_ENTRY(bad_inputs),
          TEST_ENTRY(free_in_flight_and_unreachable))
