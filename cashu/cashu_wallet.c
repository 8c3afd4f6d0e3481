/* SPDX-License-Identifier: MIT */
/*
 * The wallet: store (sqlite), per-mint keyset cache, the journaled operation engine and the
 * public operations. See cashu_wallet.h for the contract and README.md for the design.
 *
 * Engine: every money-moving request is an "op". op_commit_journal() writes the op row, its
 * inputs (state → pending, previous state remembered) and outputs (secret, r, B_) in ONE
 * transaction; only then op_post() talks to the mint. op_apply() stores the unblinded proofs and
 * marks inputs spent in one transaction. A definite refusal reverts the inputs; anything
 * ambiguous goes to op_recover() (restore + checkstate), which is also what runs at start.
 */
#include "cashu/cashu_wallet.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cashu/cashu_crypto.h"
#include "cashu/cashu_keyset.h"
#include "cashu/cashu_mint.h"
#include "cashu/cashu_p2pk.h"
#include "cashu/cashu_token.h"
#include "common/common_codec.h"
#include "common/common_db.h"
#include "common/common_err.h"
#include "common/common_fs.h"
#include "common/common_log.h"

#ifndef CASHU_WALLET_MAX_MINTS
#define CASHU_WALLET_MAX_MINTS 16
#endif
#ifndef CASHU_WALLET_MAX_KEYSETS
#define CASHU_WALLET_MAX_KEYSETS 32
#endif
#ifndef CASHU_MAX_OUTPUTS
#define CASHU_MAX_OUTPUTS 1000
#endif
#ifndef CASHU_PREPARE_MAX
#define CASHU_PREPARE_MAX 1000
#endif
/* P2PK signatures (~50 us each) made per loop turn when a claim or refund signs its inputs;
 * the rest follow on the next turns, so a claim of hundreds of locked proofs does not stall
 * the streams sharing the loop. */
#ifndef CASHU_SIGN_SLICE
#define CASHU_SIGN_SLICE 16
#endif

#define MOD "cashu"

typedef struct mintc {
    char *url;
    cashu_mint_t *api;
    int loaded; /* keysets fetched from the mint in this process */
    int nut11;
    size_t nks;
    cashu_keyset_t *ks[CASHU_WALLET_MAX_KEYSETS];
    uint64_t max_inputs;
} mintc_t;

struct cashu_wallet {
    uv_loop_t *loop;
    common_http_t *http;
    const common_env_t *env;
    sqlite3 *db;
    uint8_t sk[32];
    uint8_t pk[33];
    uint64_t timeout_ms, melt_timeout_ms;
    int token_v3;
    size_t nmints;
    mintc_t mints[CASHU_WALLET_MAX_MINTS];
    struct op *ops; /* live ops, freed with the wallet */
};

/* ------------------------------------------------------------------------------------------ */
/* small helpers */

static const common_log_t *LOGP(const cashu_wallet_t *w) {
    return w->env ? w->env->log : NULL;
}

static void crash_point(const char *kind, const char *point) {
    const char *at = getenv("CASHU_CRASH_AT");
    if (!at) return;
    char want[64];
    snprintf(want, sizeof want, "%s:%s", kind, point);
    if (strcmp(at, want) == 0) {
        fprintf(stderr, "cashu: CASHU_CRASH_AT=%s: killing myself\n", at);
        fflush(stderr);
        raise(SIGKILL);
    }
}

static uint64_t now_unix(const cashu_wallet_t *w) {
    return common_unix_ms(w->env) / 1000;
}

/* A connection and the env its statements log and stamp with: the wallet's own (WDB(w)), or
 * an accept store's (a second connection used off the loop thread, see cashu_wallet.h). */
typedef struct wdb {
    sqlite3 *db;
    const common_env_t *env;
} wdb_t;
#define WDB(w) (&(const wdb_t){(w)->db, (w)->env})

/* Run SQL with bindings: fmt chars t=text (NULL ok), i=int64, u=uint64 (≤ INT64_MAX). */
static int wdb_vrun(const wdb_t *d, sqlite3_stmt **keep, const char *sql, const char *fmt,
                    va_list ap) {
    const common_log_t *log = d->env ? d->env->log : NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
        LOG_ERROR(log, MOD, "sql prepare: %s (%s)", sqlite3_errmsg(d->db), sql);
        return COMMON_EDB;
    }
    int idx = 1;
    for (const char *f = fmt; f && *f; f++, idx++) {
        if (*f == 't') {
            const char *s = va_arg(ap, const char *);
            if (s)
                sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, idx);
        } else if (*f == 'i') {
            sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
        } else if (*f == 'u') {
            uint64_t v = va_arg(ap, uint64_t);
            if (v > INT64_MAX) {
                sqlite3_finalize(st);
                return COMMON_ERANGE;
            }
            sqlite3_bind_int64(st, idx, (int64_t)v);
        }
    }
    if (keep) {
        *keep = st;
        return 0;
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        LOG_ERROR(log, MOD, "sql: %s (%s)", sqlite3_errmsg(d->db), sql);
        return COMMON_EDB;
    }
    return 0;
}

static int wdb_run(const wdb_t *d, const char *sql, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = wdb_vrun(d, NULL, sql, fmt, ap);
    va_end(ap);
    return rc;
}

static int wdb_query(const wdb_t *d, sqlite3_stmt **st, const char *sql, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = wdb_vrun(d, st, sql, fmt, ap);
    va_end(ap);
    return rc;
}

#define db_run(w, ...)   wdb_run(WDB(w), __VA_ARGS__)
#define db_query(w, ...) wdb_query(WDB(w), __VA_ARGS__)

static int db_begin(cashu_wallet_t *w) {
    return common_db_begin(w->db, w->env);
}
static int db_commit(cashu_wallet_t *w) {
    return common_db_commit(w->db, w->env);
}
static void db_rollback(cashu_wallet_t *w) {
    common_db_rollback(w->db);
}

static const char *col_text(sqlite3_stmt *st, int i) {
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : NULL;
}

static const char *const migrations[] = {
    "CREATE TABLE keysets(mint TEXT NOT NULL, id TEXT NOT NULL, unit TEXT NOT NULL,"
    "  active INTEGER NOT NULL, fee_ppk INTEGER NOT NULL, final_expiry INTEGER NOT NULL,"
    "  keys TEXT NOT NULL, PRIMARY KEY(mint, id));"
    "CREATE TABLE proofs(y TEXT PRIMARY KEY, mint TEXT NOT NULL, keyset TEXT NOT NULL,"
    "  amount INTEGER NOT NULL CHECK(amount > 0), secret TEXT NOT NULL, c TEXT NOT NULL,"
    "  witness TEXT, dleq_e TEXT, dleq_s TEXT, dleq_r TEXT, state TEXT NOT NULL, op INTEGER,"
    "  bundle INTEGER, locktime INTEGER NOT NULL DEFAULT 0, lock_key TEXT, refund_key TEXT,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX proofs_state ON proofs(mint, state);"
    "CREATE TABLE ops(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,"
    "  mint TEXT NOT NULL, quote TEXT, request TEXT, amount INTEGER NOT NULL DEFAULT 0,"
    "  fee INTEGER NOT NULL DEFAULT 0, detail TEXT, created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE TABLE op_inputs(op INTEGER NOT NULL, y TEXT NOT NULL, prev_state TEXT NOT NULL,"
    "  PRIMARY KEY(op, y));"
    "CREATE TABLE op_outputs(op INTEGER NOT NULL, idx INTEGER NOT NULL, keyset TEXT NOT NULL,"
    "  amount INTEGER NOT NULL, secret TEXT NOT NULL, r TEXT NOT NULL, b TEXT NOT NULL,"
    "  role TEXT NOT NULL, bundle INTEGER, PRIMARY KEY(op, idx));"
    "CREATE TABLE bundles(id INTEGER PRIMARY KEY, op INTEGER NOT NULL, amount INTEGER NOT NULL,"
    "  state TEXT NOT NULL);",
};

/* ------------------------------------------------------------------------------------------ */
/* mints and keysets */

static mintc_t *mint_get(cashu_wallet_t *w, const char *url, int create);

static int keyset_store(cashu_wallet_t *w, const char *mint, const cashu_keyset_t *ks) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return COMMON_ENOMEM;
    for (size_t i = 0; i < ks->nkeys; i++) {
        char a[24], h[67];
        snprintf(a, sizeof a, "%llu", (unsigned long long)ks->keys[i].amount);
        common_hex_encode(ks->keys[i].pub, 33, h);
        cJSON_AddStringToObject(o, a, h);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return COMMON_ENOMEM;
    int rc =
        db_run(w,
               "INSERT INTO keysets(mint,id,unit,active,fee_ppk,final_expiry,keys) "
               "VALUES(?,?,?,?,?,?,?) ON CONFLICT(mint,id) DO UPDATE SET active=excluded.active",
               "tttiuut", mint, ks->id, ks->unit, (int64_t)ks->active, ks->input_fee_ppk,
               ks->final_expiry, s);
    free(s);
    return rc;
}

static int mint_add_keyset(mintc_t *mc, const cashu_keyset_t *ks) {
    for (size_t i = 0; i < mc->nks; i++) {
        if (strcmp(mc->ks[i]->id, ks->id) == 0) {
            mc->ks[i]->active = ks->active;
            return 0;
        }
        /* a new keyset whose short id collides with a known one is refused (NUT-02) */
        if (strncmp(mc->ks[i]->id, ks->id, 16) == 0) return CASHU_EKEYSET;
    }
    if (mc->nks >= CASHU_WALLET_MAX_KEYSETS) return COMMON_ETOOBIG;
    cashu_keyset_t *k = malloc(sizeof *k);
    if (!k) return COMMON_ENOMEM;
    *k = *ks;
    mc->ks[mc->nks++] = k;
    return 0;
}

static void mint_load_cached(cashu_wallet_t *w, mintc_t *mc) {
    sqlite3_stmt *st;
    if (db_query(w, &st,
                 "SELECT id,unit,active,fee_ppk,final_expiry,keys FROM keysets WHERE mint=?", "t",
                 mc->url))
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        cashu_keyset_t ks;
        memset(&ks, 0, sizeof ks);
        snprintf(ks.id, sizeof ks.id, "%s", col_text(st, 0));
        snprintf(ks.unit, sizeof ks.unit, "%s", col_text(st, 1));
        ks.active = sqlite3_column_int(st, 2);
        ks.input_fee_ppk = (uint64_t)sqlite3_column_int64(st, 3);
        ks.final_expiry = (uint64_t)sqlite3_column_int64(st, 4);
        cJSON *keys = cJSON_Parse(col_text(st, 5));
        if (keys && cashu_keyset_parse_keys(keys, &ks) == 0 && cashu_keyset_verify_id(&ks) == 0)
            (void)mint_add_keyset(mc, &ks);
        cJSON_Delete(keys);
    }
    sqlite3_finalize(st);
}

static mintc_t *mint_get(cashu_wallet_t *w, const char *url, int create) {
    size_t n = url ? strlen(url) : 0;
    while (n > 0 && url[n - 1] == '/') n--;
    if (n == 0) return NULL;
    for (size_t i = 0; i < w->nmints; i++)
        if (strlen(w->mints[i].url) == n && strncmp(w->mints[i].url, url, n) == 0)
            return &w->mints[i];
    if (!create || w->nmints >= CASHU_WALLET_MAX_MINTS) return NULL;
    mintc_t *mc = &w->mints[w->nmints];
    memset(mc, 0, sizeof *mc);
    if (!(mc->url = strndup(url, n))) return NULL;
    mc->api = cashu_mint_new(w->http, w->env, mc->url, NULL);
    if (!mc->api) {
        free(mc->url);
        return NULL;
    }
    cashu_mint_set_timeouts(mc->api, w->timeout_ms, w->melt_timeout_ms);
    mc->max_inputs = 1000;
    const char *mi = getenv("CASHU_MAX_INPUTS");
    uint64_t v;
    if (mi && common_parse_u64(mi, 1, 100000, &v) == 0) mc->max_inputs = v;
    w->nmints++;
    mint_load_cached(w, mc);
    return mc;
}

static const cashu_keyset_t *mint_keyset(const mintc_t *mc, const char *id) {
    for (size_t i = 0; i < mc->nks; i++)
        if (strcmp(mc->ks[i]->id, id) == 0) return mc->ks[i];
    return NULL;
}

static const cashu_keyset_t *mint_active(const mintc_t *mc) {
    const cashu_keyset_t *best = NULL;
    for (size_t i = 0; i < mc->nks; i++) {
        const cashu_keyset_t *k = mc->ks[i];
        if (!k->active || strcmp(k->unit, "sat") != 0) continue;
        if (!best || k->input_fee_ppk < best->input_fee_ppk) best = k;
    }
    return best;
}

/* ------------------------------------------------------------------------------------------ */
/* ops */

typedef struct out_spec {
    uint64_t amount;
    char keyset[CASHU_KEYSET_ID_HEX_MAX + 1];
    char *secret;
    uint8_t r[32];
    uint8_t B[33];
    const char *role; /* target proof state: unspent | reserved */
    int64_t bundle;   /* 0: none */
} out_spec_t;

typedef struct op op_t;
typedef void (*op_next_fn)(op_t *op, const cashu_mint_resp_t *r);

struct op {
    op_t *next_live, *prev_live;
    cashu_wallet_t *w;
    mintc_t *mc;
    const char *kind;
    int64_t id;
    /* inputs */
    size_t nin;
    cashu_proof_t *ins;
    char (*in_y)[67];
    const char *in_prev_state; /* previous state of all inputs (or per-op via op_inputs) */
    /* outputs */
    size_t nout;
    out_spec_t *outs;
    /* public completion */
    cashu_wallet_cb cb;
    void *ud;
    cashu_result_t res;
    char detail[256];
    char quote[128];
    char request[1024];
    char state[16];
    char **tokens;
    int64_t *bundle_ids;
    size_t ntokens;
    /* multi-step operations */
    int step;
    uint64_t amount, amount2;
    size_t idx;
    int64_t *rec_ids; /* recover: op ids */
    uint8_t lock[33]; /* prepare */
    int has_lock;
    uint64_t locktime;
    char *token; /* receive */
    cashu_policy_t pol;
    int has_pol;
    size_t nrec;
    uv_timer_t timer; /* the result's delivery; also paces input signing (sign_inputs_then) */
    int finished;
    size_t nsigned;                    /* inputs signed so far */
    size_t sign_turns;                 /* loop turns the signing took */
    void (*after_sign)(struct op *op); /* what follows once every input is signed */
    /* in-flight helper contexts owned by this op (freed with it if the wallet is freed early) */
    struct post_ctx *live_pc;
    struct load_ctx *live_lc;
    struct rec *live_rec;
};

static void live_free(op_t *op);
static void tmp_op_free(op_t *tmp);

static void op_free(op_t *op) {
    for (size_t i = 0; i < op->nin; i++) cashu_proof_free(&op->ins[i]);
    free(op->ins);
    free(op->in_y);
    for (size_t i = 0; i < op->nout; i++) {
        if (op->outs[i].secret) {
            sodium_memzero(op->outs[i].secret, strlen(op->outs[i].secret));
            free(op->outs[i].secret);
        }
    }
    if (op->outs) sodium_memzero(op->outs, op->nout * sizeof *op->outs);
    free(op->outs);
    for (size_t i = 0; op->tokens && i < op->ntokens; i++) free(op->tokens[i]);
    free(op->tokens);
    free(op->bundle_ids);
    free(op->rec_ids);
    free(op->token);
    live_free(op);
    free(op);
}

static void op_reset_io(op_t *op) {
    for (size_t i = 0; i < op->nin; i++) cashu_proof_free(&op->ins[i]);
    free(op->ins);
    free(op->in_y);
    op->ins = NULL;
    op->in_y = NULL;
    op->nin = 0;
    for (size_t i = 0; i < op->nout; i++) free(op->outs[i].secret);
    free(op->outs);
    op->outs = NULL;
    op->nout = 0;
    op->id = 0;
}

static void op_unlink(op_t *op) {
    cashu_wallet_t *w = op->w;
    if (op->prev_live)
        op->prev_live->next_live = op->next_live;
    else if (w->ops == op)
        w->ops = op->next_live;
    if (op->next_live) op->next_live->prev_live = op->prev_live;
    op->next_live = op->prev_live = NULL;
}

static void timer_closed(uv_handle_t *h) {
    op_free(h->data);
}

static void deliver(uv_timer_t *t) {
    op_t *op = t->data;
    op_unlink(op);
    op->res.detail =
        op->detail[0] ? op->detail : (op->res.err ? common_strerror(op->res.err) : "ok");
    op->res.tokens = op->tokens;
    op->res.ntokens = op->tokens ? op->ntokens : 0;
    op->res.bundle_ids = op->bundle_ids;
    if (op->quote[0]) op->res.quote = op->quote;
    if (op->request[0]) op->res.request = op->request;
    if (op->state[0]) op->res.state = op->state;
    if (op->cb) op->cb(op->ud, &op->res);
    uv_close((uv_handle_t *)&op->timer, timer_closed);
}

/* Finish an op: the public callback runs from the loop (never synchronously). */
static void op_finish(op_t *op, int err, const char *fmt, ...) {
    if (op->finished) return;
    op->finished = 1;
    op->res.err = err;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(op->detail, sizeof op->detail, fmt, ap);
        va_end(ap);
    }
    uv_timer_start(&op->timer, deliver, 0, 0);
}

static op_t *op_new(cashu_wallet_t *w, mintc_t *mc, const char *kind, cashu_wallet_cb cb,
                    void *ud) {
    op_t *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    op->w = w;
    op->mc = mc;
    op->kind = kind;
    op->cb = cb;
    op->ud = ud;
    uv_timer_init(w->loop, &op->timer);
    op->timer.data = op;
    op->next_live = w->ops;
    if (w->ops) w->ops->prev_live = op;
    w->ops = op;
    return op;
}

static void op_fail_mint(op_t *op, const cashu_mint_resp_t *r, const char *what) {
    op->res.mint_code = r->mint_code;
    if (r->mint_code)
        op_finish(op, r->err, "%s: %s (mint code %d)", what, r->detail, r->mint_code);
    else
        op_finish(op, r->err, "%s: %s", what, r->detail);
}

/* Add an input proof (copied). */
/* A proof from a row whose first columns are keyset, amount, secret, c (hex). The secret
 * borrows the statement's memory: valid until the next step or finalize. */
static void proof_from_row(sqlite3_stmt *st, cashu_proof_t *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", col_text(st, 0));
    p->amount = (uint64_t)sqlite3_column_int64(st, 1);
    p->secret = (char *)col_text(st, 2);
    common_hex_decode_exact(col_text(st, 3), p->C, 33);
}

static int op_add_input(op_t *op, const cashu_proof_t *p) {
    cashu_proof_t *ni = realloc(op->ins, (op->nin + 1) * sizeof *ni);
    if (!ni) return COMMON_ENOMEM;
    op->ins = ni;
    char(*ny)[67] = realloc(op->in_y, (op->nin + 1) * sizeof *ny);
    if (!ny) return COMMON_ENOMEM;
    op->in_y = ny;
    uint8_t Y[33];
    int rc = cashu_proof_Y(p, Y);
    if (rc) return rc;
    if ((rc = cashu_proof_copy(&op->ins[op->nin], p))) return rc;
    common_hex_encode(Y, 33, op->in_y[op->nin]);
    op->nin++;
    return 0;
}

/* Every row of @p st (keyset, amount, secret, c) becomes an input; @p st is finalized. */
static int op_add_rows(op_t *op, sqlite3_stmt *st) {
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        cashu_proof_t p;
        proof_from_row(st, &p);
        rc = op_add_input(op, &p);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Add outputs for @p amount split into the active keyset's denominations. Secrets: plain
 * random hex, or a P2PK secret when lock is given. */
static int op_add_outputs(op_t *op, uint64_t amount, const char *role, int64_t bundle,
                          const uint8_t *lock, uint64_t locktime, const uint8_t *refund) {
    const cashu_keyset_t *ks = mint_active(op->mc);
    if (!ks) return CASHU_EKEYSET;
    if (amount == 0) return 0;
    uint64_t parts[128];
    int n = cashu_split_amount(ks, amount, parts, 128);
    if (n < 0) return n;
    if (op->nout + (size_t)n > CASHU_MAX_OUTPUTS || op->nout + (size_t)n > op->mc->max_inputs)
        return COMMON_ETOOBIG; /* the mint's per-request cap applies to outputs too */
    out_spec_t *no = realloc(op->outs, (op->nout + (size_t)n) * sizeof *no);
    if (!no) return COMMON_ENOMEM;
    op->outs = no;
    for (int i = 0; i < n; i++) {
        out_spec_t *o = &op->outs[op->nout];
        memset(o, 0, sizeof *o);
        o->amount = parts[i];
        strcpy(o->keyset, ks->id);
        o->role = role;
        o->bundle = bundle;
        if (lock) {
            common_buf_t b = {0};
            int rc = cashu_p2pk_build(op->w->env, lock, locktime, refund, &b);
            if (rc) return rc;
            o->secret = strndup((char *)b.data, b.len);
            common_buf_free(&b);
        } else {
            uint8_t rnd[32];
            char hex[65];
            common_random(op->w->env, rnd, sizeof rnd);
            common_hex_encode(rnd, 32, hex);
            o->secret = strdup(hex);
        }
        if (!o->secret) return COMMON_ENOMEM;
        cashu_random_scalar(op->w->env, o->r);
        int rc = cashu_blind(o->secret, strlen(o->secret), o->r, o->B);
        if (rc) return rc;
        op->nout++;
    }
    return 0;
}

static uint64_t ins_fee(const op_t *op) {
    uint64_t ppk = 0;
    for (size_t i = 0; i < op->nin; i++) {
        const cashu_keyset_t *k = mint_keyset(op->mc, op->ins[i].id);
        ppk += k ? k->input_fee_ppk : 0;
    }
    return cashu_fee_from_ppk_sum(ppk);
}

static uint64_t ins_sum(const op_t *op) {
    uint64_t s = 0;
    for (size_t i = 0; i < op->nin; i++) s += op->ins[i].amount;
    return s;
}

static int proof_insert(const wdb_t *d, const char *mint, const cashu_proof_t *p, const char *y,
                        const char *state, int64_t op, int64_t bundle) {
    char ch[67], e[65], s[65], r[65];
    common_hex_encode(p->C, 33, ch);
    if (p->has_dleq) {
        common_hex_encode(p->dleq.e, 32, e);
        common_hex_encode(p->dleq.s, 32, s);
        if (p->dleq.has_r) common_hex_encode(p->dleq.r, 32, r);
    }
    cashu_p2pk_t pk;
    uint64_t locktime = 0;
    char lk[67] = "", rk[67] = "";
    if (cashu_p2pk_parse(p->secret, &pk) == 0 && pk.is_p2pk) {
        locktime = pk.has_locktime ? pk.locktime : 0;
        common_hex_encode(pk.data, 33, lk);
        if (pk.nrefund) common_hex_encode(pk.refund[0], 33, rk);
    }
    return wdb_run(d,
                   "INSERT INTO proofs(y,mint,keyset,amount,secret,c,witness,dleq_e,dleq_s,dleq_r,"
                   "state,op,bundle,locktime,lock_key,refund_key,created) "
                   "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   "tttutttttttiiutti", y, mint, p->id, p->amount, p->secret, ch, p->witness,
                   p->has_dleq ? e : NULL, p->has_dleq ? s : NULL,
                   p->has_dleq && p->dleq.has_r ? r : NULL, state, op, bundle, locktime,
                   lk[0] ? lk : NULL, rk[0] ? rk : NULL, (int64_t)common_unix_ms(d->env));
}

/* Journal: op row, inputs → pending (prev state kept), outputs with secrets and r. */
static int op_commit_journal(op_t *op, const char *quote, uint64_t amount) {
    cashu_wallet_t *w = op->w;
    int rc = db_begin(w);
    if (rc) return rc;
    int64_t now = (int64_t)common_unix_ms(w->env);
    if (!op->id) {
        rc = db_run(
            w,
            "INSERT INTO ops(kind,state,mint,quote,amount,created,updated) VALUES(?,?,?,?,?,?,?)",
            "ttttuii", op->kind, "open", op->mc->url, quote, amount, now, now);
        if (rc) goto fail;
        op->id = sqlite3_last_insert_rowid(w->db);
    } else {
        rc = db_run(w, "UPDATE ops SET state='open', updated=? WHERE id=?", "ii", now, op->id);
        if (rc) goto fail;
    }
    for (size_t i = 0; i < op->nin; i++) {
        sqlite3_stmt *st;
        if ((rc = db_query(w, &st, "SELECT state FROM proofs WHERE y=?", "t", op->in_y[i])))
            goto fail;
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            rc = COMMON_ESTATE;
            goto fail;
        }
        char prev[16];
        snprintf(prev, sizeof prev, "%s", col_text(st, 0));
        sqlite3_finalize(st);
        if (strcmp(prev, "unspent") && strcmp(prev, "incoming") && strcmp(prev, "reserved") &&
            strcmp(prev, "sent")) {
            rc = COMMON_ESTATE; /* already in use by another op */
            goto fail;
        }
        if ((rc = db_run(w, "INSERT INTO op_inputs(op,y,prev_state) VALUES(?,?,?)", "itt", op->id,
                         op->in_y[i], prev)))
            goto fail;
        if ((rc = db_run(w, "UPDATE proofs SET state='pending', op=? WHERE y=?", "it", op->id,
                         op->in_y[i])))
            goto fail;
    }
    for (size_t i = 0; i < op->nout; i++) {
        char r[65], b[67];
        common_hex_encode(op->outs[i].r, 32, r);
        common_hex_encode(op->outs[i].B, 33, b);
        rc = db_run(w,
                    "INSERT INTO op_outputs(op,idx,keyset,amount,secret,r,b,role,bundle) "
                    "VALUES(?,?,?,?,?,?,?,?,?)",
                    "iitutttti", op->id, (int64_t)i, op->outs[i].keyset, op->outs[i].amount,
                    op->outs[i].secret, r, b, op->outs[i].role, op->outs[i].bundle);
        sodium_memzero(r, sizeof r);
        if (rc) goto fail;
        if (op->outs[i].bundle && (rc = db_run(w, "UPDATE bundles SET op=? WHERE id=?", "ii",
                                               op->id, op->outs[i].bundle)))
            goto fail;
    }
    if ((rc = db_commit(w))) goto fail;
    crash_point(op->kind, "journal");
    return 0;
fail:
    db_rollback(w);
    op->id = 0;
    return rc;
}

static cJSON *outputs_json(const op_t *op) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < op->nout; i++) {
        cJSON *o = cJSON_CreateObject();
        char a[24], b[67];
        snprintf(a, sizeof a, "%llu", (unsigned long long)op->outs[i].amount);
        common_hex_encode(op->outs[i].B, 33, b);
        cJSON_AddItemToObject(o, "amount", cJSON_CreateRaw(a));
        cJSON_AddStringToObject(o, "id", op->outs[i].keyset);
        cJSON_AddStringToObject(o, "B_", b);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *inputs_json(const op_t *op) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < op->nin; i++) {
        cJSON *p = cashu_proof_to_json(&op->ins[i], 0); /* never send dleq to the mint */
        if (!p) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

/* Turn signatures (matched to outputs by index list) into stored proofs. Returns the number
 * of DLEQ failures in *bad_dleq. Caller holds a transaction. */
static int store_signature(op_t *op, size_t oi, const cJSON *sig, int *bad_dleq) {
    cashu_wallet_t *w = op->w;
    out_spec_t *o = &op->outs[oi];
    const cashu_keyset_t *ks = mint_keyset(op->mc, o->keyset);
    if (!ks) return CASHU_EKEYSET;
    const uint8_t *K = cashu_keyset_key(ks, o->amount);
    uint8_t C_[33];
    uint64_t amt;
    if (!K || cashu_json_hex(cJSON_GetObjectItemCaseSensitive(sig, "C_"), C_, 33) ||
        cashu_json_u64(cJSON_GetObjectItemCaseSensitive(sig, "amount"), &amt) || amt != o->amount)
        return CASHU_EMINT;
    cashu_proof_t p;
    memset(&p, 0, sizeof p);
    p.amount = o->amount;
    strcpy(p.id, o->keyset);
    p.secret = o->secret;
    int rc = cashu_unblind(C_, o->r, K, p.C);
    if (rc) return CASHU_EMINT;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(sig, "dleq");
    if (d && cashu_json_hex(cJSON_GetObjectItemCaseSensitive(d, "e"), p.dleq.e, 32) == 0 &&
        cashu_json_hex(cJSON_GetObjectItemCaseSensitive(d, "s"), p.dleq.s, 32) == 0) {
        if (cashu_dleq_verify(K, o->B, C_, p.dleq.e, p.dleq.s) == 0) {
            p.has_dleq = 1;
            memcpy(p.dleq.r, o->r, 32);
            p.dleq.has_r = 1;
        } else {
            (*bad_dleq)++;
        }
    } else {
        (*bad_dleq)++;
    }
    uint8_t Y[33];
    char y[67];
    if ((rc = cashu_proof_Y(&p, Y))) return rc;
    common_hex_encode(Y, 33, y);
    rc = proof_insert(WDB(w), op->mc->url, &p, y, o->role, op->id, o->bundle);
    sodium_memzero(&p.dleq, sizeof p.dleq);
    return rc;
}

/* Apply a successful response: proofs in, inputs spent, op done. */
static int op_apply(op_t *op, const cJSON *sigs, uint64_t amount, uint64_t fee, int *bad_dleq) {
    cashu_wallet_t *w = op->w;
    crash_point(op->kind, "response");
    if (!cJSON_IsArray(sigs) || (size_t)cJSON_GetArraySize(sigs) != op->nout) return CASHU_EMINT;
    int rc = db_begin(w);
    if (rc) return rc;
    size_t i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sigs) {
        if ((rc = store_signature(op, i++, s, bad_dleq))) goto fail;
    }
    if ((rc = db_run(w, "UPDATE proofs SET state='spent' WHERE op=? AND state='pending'", "i",
                     op->id)))
        goto fail;
    if ((rc = db_run(w, "UPDATE bundles SET state='ready' WHERE op=? AND state='pending'", "i",
                     op->id)))
        goto fail;
    if ((rc = db_run(w, "UPDATE ops SET state='done', amount=?, fee=?, updated=? WHERE id=?",
                     "uuii", amount, fee, (int64_t)common_unix_ms(w->env), op->id)))
        goto fail;
    return db_commit(w);
fail:
    db_rollback(w);
    return rc;
}

/* Definite refusal: inputs back to their previous state, op failed. */
static int op_revert(cashu_wallet_t *w, int64_t id, const char *detail) {
    int rc = db_begin(w);
    if (rc) return rc;
    rc = db_run(w,
                "UPDATE proofs SET state=(SELECT prev_state FROM op_inputs i WHERE i.op=? AND "
                "i.y=proofs.y) "
                "WHERE op=? AND state='pending'",
                "ii", id, id);
    if (!rc) rc = db_run(w, "UPDATE bundles SET state='failed' WHERE op=?", "i", id);
    if (!rc)
        rc = db_run(w, "UPDATE ops SET state='failed', detail=?, updated=? WHERE id=?", "tii",
                    detail, (int64_t)common_unix_ms(w->env), id);
    if (rc) {
        db_rollback(w);
        return rc;
    }
    return db_commit(w);
}

/* ------------------------------------------------------------------------------------------ */
/* recovery of one op: restore outputs, checkstate inputs */

typedef struct rec {
    cashu_wallet_t *w;
    mintc_t *mc;
    op_t *op; /* a temporary op rebuilt from the journal */
    void (*done)(struct rec *r, int err);
    void *parent;
    int restored;
    int spent_inputs, unspent_inputs, pending_inputs;
    char *in_state; /* per input: 'S' spent, 'U' unspent, 'P' pending */
    char quote[128];
    char kind[16];
} rec_t;

static int load_op(cashu_wallet_t *w, int64_t id, op_t *op, char *quote, size_t qcap, char *kind,
                   size_t kcap) {
    sqlite3_stmt *st;
    int rc = db_query(w, &st, "SELECT kind,mint,quote FROM ops WHERE id=?", "i", id);
    if (rc) return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return COMMON_ENOTFOUND;
    }
    snprintf(kind, kcap, "%s", col_text(st, 0));
    op->mc = mint_get(w, col_text(st, 1), 1);
    snprintf(quote, qcap, "%s", col_text(st, 2) ? col_text(st, 2) : "");
    sqlite3_finalize(st);
    if (!op->mc) return COMMON_ENOMEM;
    op->id = id;
    if ((rc = db_query(w, &st,
                       "SELECT p.keyset,p.amount,p.secret,p.c,p.witness FROM op_inputs i JOIN "
                       "proofs p ON p.y=i.y WHERE i.op=?",
                       "i", id)))
        return rc;
    while (sqlite3_step(st) == SQLITE_ROW) {
        cashu_proof_t p;
        proof_from_row(st, &p);
        p.witness = (char *)col_text(st, 4);
        rc = op_add_input(op, &p);
        if (rc) break;
    }
    sqlite3_finalize(st);
    if (rc) return rc;
    if ((rc = db_query(
             w, &st,
             "SELECT keyset,amount,secret,r,b,role,bundle FROM op_outputs WHERE op=? ORDER BY idx",
             "i", id)))
        return rc;
    while (sqlite3_step(st) == SQLITE_ROW) {
        out_spec_t *no = realloc(op->outs, (op->nout + 1) * sizeof *no);
        if (!no) {
            rc = COMMON_ENOMEM;
            break;
        }
        op->outs = no;
        out_spec_t *o = &op->outs[op->nout];
        memset(o, 0, sizeof *o);
        snprintf(o->keyset, sizeof o->keyset, "%s", col_text(st, 0));
        o->amount = (uint64_t)sqlite3_column_int64(st, 1);
        o->secret = strdup(col_text(st, 2));
        common_hex_decode_exact(col_text(st, 3), o->r, 32);
        common_hex_decode_exact(col_text(st, 4), o->B, 33);
        o->role = strcmp(col_text(st, 5), "reserved") == 0 ? "reserved" : "unspent";
        o->bundle = sqlite3_column_int64(st, 6);
        op->nout++;
        if (!o->secret) {
            rc = COMMON_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void rec_finish(rec_t *r, int err) {
    free(r->in_state);
    r->in_state = NULL;
    r->done(r, err);
}

static void rec_after_checkstate(void *ud, const cashu_mint_resp_t *resp);
static void rec_after_quote(void *ud, const cashu_mint_resp_t *resp);
static void rec_after_mint(void *ud, const cashu_mint_resp_t *resp);

static void rec_resolve(rec_t *r) {
    cashu_wallet_t *w = r->w;
    op_t *op = r->op;
    int rc = 0;
    if (op->nin > 0) {
        if (r->pending_inputs) return rec_finish(r, COMMON_EAGAIN); /* still pending at the mint */
        if (r->restored || (op->nout == 0 && r->spent_inputs == (int)op->nin)) {
            /* the operation happened: inputs spent; restored outputs stored; op done */
            rc = db_begin(w);
            if (!rc)
                rc = db_run(w, "UPDATE proofs SET state='spent' WHERE op=? AND state='pending'",
                            "i", op->id);
            if (!rc)
                rc = db_run(w, "UPDATE bundles SET state='ready' WHERE op=? AND state='pending'",
                            "i", op->id);
            if (!rc)
                rc = db_run(w,
                            "UPDATE ops SET state='done', detail='recovered', updated=? WHERE id=?",
                            "ii", (int64_t)common_unix_ms(w->env), op->id);
            if (rc)
                db_rollback(w);
            else
                rc = db_commit(w);
            return rec_finish(r, rc);
        }
        /* not applied: inputs the mint reports spent were spent elsewhere; the rest go back */
        rc = db_begin(w);
        for (size_t i = 0; !rc && i < op->nin; i++)
            if (r->in_state && r->in_state[i] == 'S')
                rc = db_run(w, "UPDATE proofs SET state='spent' WHERE y=? AND state='pending'", "t",
                            op->in_y[i]);
        if (rc)
            db_rollback(w);
        else
            rc = db_commit(w);
        if (!rc)
            rc = op_revert(w, op->id,
                           r->spent_inputs ? "inputs already spent (recovered)"
                                           : "not applied by the mint (recovered)");
        return rec_finish(r, rc ? rc : (r->spent_inputs ? CASHU_ESPENT : CASHU_EMINT));
    }
    /* mint op: no inputs */
    if (r->restored) {
        rc = db_run(w, "UPDATE ops SET state='done', detail='recovered', updated=? WHERE id=?",
                    "ii", (int64_t)common_unix_ms(w->env), op->id);
        return rec_finish(r, rc);
    }
    if (!r->quote[0]) {
        rc = op_revert(w, op->id, "no quote");
        return rec_finish(r, rc);
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/mint/quote/bolt11/%s", r->quote);
    rc = cashu_mint_get(r->mc->api, path, rec_after_quote, r);
    if (rc) rec_finish(r, rc);
}

static void rec_after_quote(void *ud, const cashu_mint_resp_t *resp) {
    rec_t *r = ud;
    if (resp->err && !resp->ambiguous && resp->err == CASHU_EMINT && resp->mint_code) {
        /* the mint does not know the quote (e.g. 20007 expired): nothing was issued to us */
        int rc = op_revert(r->w, r->op->id, "quote refused by the mint");
        return rec_finish(r, rc ? rc : CASHU_EMINT);
    }
    if (resp->err) return rec_finish(r, resp->err);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(resp->json, "state");
    const char *state = cJSON_IsString(s) ? s->valuestring : "";
    uint64_t expiry = 0;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(resp->json, "expiry");
    if (strcmp(state, "UNPAID") == 0 && ex && cashu_json_u64(ex, &expiry) == 0 && expiry &&
        expiry < now_unix(r->w)) {
        int rc = op_revert(r->w, r->op->id, "quote expired unpaid");
        return rec_finish(r, rc ? rc : CASHU_EMINT);
    }
    if (strcmp(state, "PAID") == 0 && r->op->nout == 0) {
        uint64_t amount;
        if (cashu_json_u64(cJSON_GetObjectItemCaseSensitive(resp->json, "amount"), &amount) ||
            !amount)
            return rec_finish(r, CASHU_EMINT);
        r->op->kind = "mint";
        int rc = op_add_outputs(r->op, amount, "unspent", 0, NULL, 0, NULL);
        if (!rc) rc = op_commit_journal(r->op, r->quote, amount);
        if (rc) return rec_finish(r, rc);
    }
    if (strcmp(state, "PAID") == 0 && r->op->nout > 0) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "quote", r->quote);
        cJSON_AddItemToObject(body, "outputs", outputs_json(r->op));
        int rc = cashu_mint_post(r->mc->api, "/v1/mint/bolt11", body, 0, rec_after_mint, r);
        cJSON_Delete(body);
        if (rc) rec_finish(r, rc);
        return;
    }
    if (strcmp(state, "ISSUED") == 0) {
        /* issued but nothing restored: the signatures belong to other outputs (not ours) */
        int rc = op_revert(r->w, r->op->id, "quote issued to other outputs");
        return rec_finish(r, rc);
    }
    rec_finish(r, COMMON_EAGAIN); /* unpaid: leave open */
}

static void rec_after_mint(void *ud, const cashu_mint_resp_t *resp) {
    rec_t *r = ud;
    if (resp->err) return rec_finish(r, resp->ambiguous ? COMMON_EAGAIN : resp->err);
    int bad = 0;
    uint64_t amt = 0;
    for (size_t i = 0; i < r->op->nout; i++) amt += r->op->outs[i].amount;
    int rc =
        op_apply(r->op, cJSON_GetObjectItemCaseSensitive(resp->json, "signatures"), amt, 0, &bad);
    rec_finish(r, rc);
}

static void rec_after_restore(void *ud, const cashu_mint_resp_t *resp) {
    rec_t *r = ud;
    cashu_wallet_t *w = r->w;
    op_t *op = r->op;
    if (resp->err) return rec_finish(r, resp->err);
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(resp->json, "outputs");
    const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(resp->json, "signatures");
    if (!cJSON_IsArray(outs) || !cJSON_IsArray(sigs) ||
        cJSON_GetArraySize(outs) != cJSON_GetArraySize(sigs))
        return rec_finish(r, CASHU_EMINT);
    int rc = db_begin(w), bad = 0;
    for (int k = 0; !rc && k < cJSON_GetArraySize(outs); k++) {
        uint8_t B[33];
        if (cashu_json_hex(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(outs, k), "B_"), B,
                           33))
            continue;
        for (size_t i = 0; i < op->nout; i++) {
            if (memcmp(op->outs[i].B, B, 33) != 0) continue;
            /* skip outputs already stored (idempotent) */
            uint8_t Y[33];
            char y[67];
            cashu_hash_to_curve(op->outs[i].secret, strlen(op->outs[i].secret), Y);
            common_hex_encode(Y, 33, y);
            sqlite3_stmt *st;
            int exists = 0;
            if (db_query(w, &st, "SELECT 1 FROM proofs WHERE y=?", "t", y) == 0) {
                exists = sqlite3_step(st) == SQLITE_ROW;
                sqlite3_finalize(st);
            }
            if (!exists) rc = store_signature(op, i, cJSON_GetArrayItem(sigs, k), &bad);
            r->restored++;
            break;
        }
    }
    if (rc)
        db_rollback(w);
    else
        rc = db_commit(w);
    if (rc) return rec_finish(r, rc);
    if (op->nin == 0) return rec_resolve(r);
    cJSON *body = cJSON_CreateObject();
    cJSON *ys = cJSON_AddArrayToObject(body, "Ys");
    for (size_t i = 0; i < op->nin; i++) cJSON_AddItemToArray(ys, cJSON_CreateString(op->in_y[i]));
    rc = cashu_mint_post(r->mc->api, "/v1/checkstate", body, 0, rec_after_checkstate, r);
    cJSON_Delete(body);
    if (rc) rec_finish(r, rc);
}

static void rec_after_checkstate(void *ud, const cashu_mint_resp_t *resp) {
    rec_t *r = ud;
    if (resp->err) return rec_finish(r, resp->err);
    const cJSON *states = cJSON_GetObjectItemCaseSensitive(resp->json, "states"), *s;
    if (!cJSON_IsArray(states) || (size_t)cJSON_GetArraySize(states) != r->op->nin)
        return rec_finish(r, CASHU_EMINT);
    free(r->in_state);
    r->in_state = calloc(r->op->nin + 1, 1);
    if (!r->in_state) return rec_finish(r, COMMON_ENOMEM);
    size_t i = 0;
    cJSON_ArrayForEach(s, states) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "state");
        const char *v = cJSON_IsString(st) ? st->valuestring : "";
        if (strcmp(v, "SPENT") == 0)
            r->spent_inputs++, r->in_state[i] = 'S';
        else if (strcmp(v, "PENDING") == 0)
            r->pending_inputs++, r->in_state[i] = 'P';
        else
            r->unspent_inputs++, r->in_state[i] = 'U';
        i++;
    }
    rec_resolve(r);
}

static void rec_start(rec_t *r) {
    op_t *op = r->op;
    if (op->nout > 0) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "outputs", outputs_json(op));
        int rc = cashu_mint_post(r->mc->api, "/v1/restore", body, 0, rec_after_restore, r);
        cJSON_Delete(body);
        if (rc) rec_finish(r, rc);
        return;
    }
    cashu_mint_resp_t fake = {0};
    cJSON *j = cJSON_Parse("{\"outputs\":[],\"signatures\":[]}");
    fake.json = j;
    fake.detail = "";
    rec_after_restore(r, &fake);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------------------------------ */
/* generic swap/mint/melt round trip with journal; continuation in op->step handlers */

typedef void (*op_cont)(op_t *op, int err);

typedef struct post_ctx {
    op_t *op;
    op_cont cont;
    uint64_t amount, fee;
    rec_t rec;
    int is_mint;
} post_ctx_t;

static void after_rec_inline(rec_t *r, int err) {
    post_ctx_t *pc = r->parent;
    op_t *op = pc->op;
    op_cont cont = pc->cont;
    tmp_op_free(r->op);
    op->live_pc = NULL;
    free(pc);
    if (err == COMMON_EAGAIN || err == CASHU_EMINT_UNREACHABLE) {
        snprintf(op->detail, sizeof op->detail,
                 "outcome unknown (mint unreachable or request pending); kept for recovery: run "
                 "`check`");
        cont(op, CASHU_EMINT_UNREACHABLE);
        return;
    }
    if (err == CASHU_ESPENT)
        snprintf(op->detail, sizeof op->detail, "proofs already spent (mint code 11001)");
    if (err == 0)
        snprintf(op->detail, sizeof op->detail,
                 "applied by the mint; outputs recovered with restore");
    cont(op, err); /* 0: the mint had applied it and we recovered the outputs */
}

static void post_done(void *ud, const cashu_mint_resp_t *r) {
    post_ctx_t *pc = ud;
    op_t *op = pc->op;
    cashu_wallet_t *w = op->w;
    if (r->err == 0) {
        int bad = 0;
        int rc;
        if (pc->is_mint == 2) { /* melt */
            crash_point(op->kind, "response");
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "state");
            const char *state = cJSON_IsString(st) ? st->valuestring : "";
            if (strcmp(state, "PAID") == 0) {
                rc = db_begin(w);
                if (!rc)
                    rc = db_run(w, "UPDATE proofs SET state='spent' WHERE op=? AND state='pending'",
                                "i", op->id);
                if (!rc)
                    rc = db_run(
                        w, "UPDATE ops SET state='done', amount=?, fee=?, updated=? WHERE id=?",
                        "uuii", pc->amount, pc->fee, (int64_t)common_unix_ms(w->env), op->id);
                if (rc)
                    db_rollback(w);
                else
                    rc = db_commit(w);
            } else if (strcmp(state, "UNPAID") == 0) {
                rc = op_revert(w, op->id, "melt not paid");
                if (!rc) rc = CASHU_EMINT;
                snprintf(op->detail, sizeof op->detail, "the mint did not pay the invoice");
            } else {
                rc = CASHU_EMINT_UNREACHABLE;
                snprintf(op->detail, sizeof op->detail,
                         "melt pending at the mint; run `check` later");
            }
        } else {
            rc = op_apply(op, cJSON_GetObjectItemCaseSensitive(r->json, "signatures"), pc->amount,
                          pc->fee, &bad);
            if (!rc && bad) LOG_WARN(LOGP(w), MOD, "%d signatures without a valid DLEQ", bad);
        }
        op_cont cont = pc->cont;
        op->live_pc = NULL;
        free(pc);
        cont(op, rc);
        return;
    }
    op->res.mint_code = r->mint_code;
    snprintf(op->detail, sizeof op->detail, "%s%s%.200s", r->mint_code ? "mint: " : "",
             r->mint_code ? "" : "mint request failed: ", r->detail);
    if (r->mint_code) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, " (code %d)", r->mint_code);
        strncat(op->detail, tmp, sizeof op->detail - strlen(op->detail) - 1);
    }
    if (!r->ambiguous && r->err == CASHU_EMINT && r->mint_code != 11003 && r->mint_code != 11002) {
        int rc = op_revert(w, op->id, op->detail);
        op_cont cont = pc->cont;
        op->live_pc = NULL;
        free(pc);
        cont(op, rc ? rc : r->err);
        return;
    }
    /* 11001 (some input spent), 11002/11003, or ambiguous: resolve from the journal now */
    int first_err = r->err;
    op_t *tmp = calloc(1, sizeof *tmp);
    if (!tmp) {
        op_cont cont = pc->cont;
        op->live_pc = NULL;
        free(pc);
        cont(op, COMMON_ENOMEM);
        return;
    }
    tmp->w = w;
    tmp->kind = op->kind;
    char kind[16];
    memset(&pc->rec, 0, sizeof pc->rec);
    pc->rec.w = w;
    pc->rec.op = tmp;
    pc->rec.parent = pc;
    int rc = load_op(w, op->id, tmp, pc->rec.quote, sizeof pc->rec.quote, kind, sizeof kind);
    pc->rec.mc = tmp->mc;
    if (rc) {
        pc->rec.done = after_rec_inline;
        after_rec_inline(&pc->rec, rc);
        return;
    }
    if (first_err == CASHU_ESPENT) {
        /* known outcome class: resolve, then report "spent" */
        pc->rec.done = after_rec_inline;
    } else {
        pc->rec.done = after_rec_inline;
    }
    (void)first_err;
    rec_start(&pc->rec);
}

/* Journal then POST. cont(op, err) runs after the outcome is stored. */
static void op_post(op_t *op, const char *path, cJSON *body, int kind, const char *quote,
                    uint64_t amount, uint64_t fee, op_cont cont) {
    int rc = op_commit_journal(op, quote, amount);
    if (rc) {
        cJSON_Delete(body);
        cont(op, rc);
        return;
    }
    post_ctx_t *pc = calloc(1, sizeof *pc);
    if (!pc) {
        cJSON_Delete(body);
        (void)op_revert(op->w, op->id, "out of memory");
        cont(op, COMMON_ENOMEM);
        return;
    }
    pc->op = op;
    op->live_pc = pc;
    pc->cont = cont;
    pc->amount = amount;
    pc->fee = fee;
    pc->is_mint = kind;
    rc = cashu_mint_post(op->mc->api, path, body, kind == 2, post_done, pc);
    cJSON_Delete(body);
    if (rc) {
        op->live_pc = NULL;
        free(pc);
        (void)op_revert(op->w, op->id, "request not sent");
        cont(op, rc);
    }
}

static void op_swap(op_t *op, uint64_t amount, uint64_t fee, op_cont cont) {
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "inputs", inputs_json(op));
    cJSON_AddItemToObject(body, "outputs", outputs_json(op));
    op_post(op, "/v1/swap", body, 0, NULL, amount, fee, cont);
}

/* ------------------------------------------------------------------------------------------ */
/* mint loading */

typedef struct load_ctx {
    op_t *op;
    op_cont cont;
    cJSON *keysets;
    int idx;
} load_ctx_t;

static void load_next(load_ctx_t *lc);

static void load_finish(load_ctx_t *lc, int err) {
    op_t *op = lc->op;
    op_cont cont = lc->cont;
    cJSON_Delete(lc->keysets);
    op->live_lc = NULL;
    free(lc);
    if (!err) op->mc->loaded = 1;
    cont(op, err);
}

static void load_keys_done(void *ud, const cashu_mint_resp_t *r) {
    load_ctx_t *lc = ud;
    op_t *op = lc->op;
    if (r->err) {
        snprintf(op->detail, sizeof op->detail, "keys: %s", r->detail);
        return load_finish(lc, r->err);
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r->json, "keysets"), *k;
    cJSON_ArrayForEach(k, arr) {
        cashu_keyset_t ks;
        int rc = cashu_keyset_parse_json(k, &ks);
        if (rc) {
            snprintf(op->detail, sizeof op->detail, "keyset from the mint fails validation (%s)",
                     common_strerror(rc));
            return load_finish(lc, CASHU_EKEYSET);
        }
        const cJSON *ksinfo = cJSON_GetArrayItem(lc->keysets, lc->idx - 1);
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(ksinfo, "active");
        if (act) ks.active = cJSON_IsTrue(act);
        if ((rc = mint_add_keyset(op->mc, &ks)) || (rc = keyset_store(op->w, op->mc->url, &ks)))
            return load_finish(lc, rc);
    }
    load_next(lc);
}

static void load_next(load_ctx_t *lc) {
    op_t *op = lc->op;
    while (lc->idx < cJSON_GetArraySize(lc->keysets)) {
        const cJSON *k = cJSON_GetArrayItem(lc->keysets, lc->idx++);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(k, "id");
        const cJSON *unit = cJSON_GetObjectItemCaseSensitive(k, "unit");
        if (!cJSON_IsString(id) || (cJSON_IsString(unit) && strcmp(unit->valuestring, "sat") != 0))
            continue;
        cashu_keyset_t *known = (cashu_keyset_t *)mint_keyset(op->mc, id->valuestring);
        if (known) {
            const cJSON *act = cJSON_GetObjectItemCaseSensitive(k, "active");
            known->active = act ? cJSON_IsTrue(act) : 1;
            (void)keyset_store(op->w, op->mc->url, known);
            continue;
        }
        char path[128];
        snprintf(path, sizeof path, "/v1/keys/%.66s", id->valuestring);
        int rc = cashu_mint_get(op->mc->api, path, load_keys_done, lc);
        if (rc) load_finish(lc, rc);
        return;
    }
    load_finish(lc, mint_active(op->mc) ? 0 : CASHU_EKEYSET);
}

static void load_keysets_done(void *ud, const cashu_mint_resp_t *r) {
    load_ctx_t *lc = ud;
    if (r->err) {
        snprintf(lc->op->detail, sizeof lc->op->detail, "keysets: %s", r->detail);
        return load_finish(lc, r->err);
    }
    lc->keysets = cJSON_DetachItemFromObjectCaseSensitive(r->json, "keysets");
    if (!cJSON_IsArray(lc->keysets)) return load_finish(lc, CASHU_EMINT);
    load_next(lc);
}

static void load_info_done(void *ud, const cashu_mint_resp_t *r) {
    load_ctx_t *lc = ud;
    if (r->err) {
        snprintf(lc->op->detail, sizeof lc->op->detail, "mint %s: %s", lc->op->mc->url, r->detail);
        return load_finish(lc, r->err);
    }
    const cJSON *n11 =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->json, "nuts"), "11");
    lc->op->mc->nut11 = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n11, "supported"));
    int rc = cashu_mint_get(lc->op->mc->api, "/v1/keysets", load_keysets_done, lc);
    if (rc) load_finish(lc, rc);
}

/* Ensure keysets are fresh for this process, then cont. */
static void ensure_mint(op_t *op, op_cont cont) {
    if (op->mc->loaded) {
        cont(op, 0);
        return;
    }
    load_ctx_t *lc = calloc(1, sizeof *lc);
    if (!lc) {
        cont(op, COMMON_ENOMEM);
        return;
    }
    lc->op = op;
    lc->cont = cont;
    op->live_lc = lc;
    int rc = cashu_mint_get(op->mc->api, "/v1/info", load_info_done, lc);
    if (rc) {
        op->live_lc = NULL;
        free(lc);
        cont(op, rc);
    }
}

/* A temporary op rebuilt from the journal (recovery): inputs, outputs and itself. */
static void tmp_op_free(op_t *tmp) {
    if (!tmp) return;
    for (size_t i = 0; i < tmp->nin; i++) cashu_proof_free(&tmp->ins[i]);
    free(tmp->ins);
    free(tmp->in_y);
    for (size_t i = 0; i < tmp->nout; i++) free(tmp->outs[i].secret);
    free(tmp->outs);
    free(tmp);
}

static void live_free(op_t *op) {
    if (op->live_pc) {
        tmp_op_free(op->live_pc->rec.op);
        free(op->live_pc->rec.in_state);
        free(op->live_pc);
        op->live_pc = NULL;
    }
    if (op->live_lc) {
        cJSON_Delete(op->live_lc->keysets);
        free(op->live_lc);
        op->live_lc = NULL;
    }
    if (op->live_rec) {
        tmp_op_free(op->live_rec->op);
        free(op->live_rec->in_state);
        free(op->live_rec);
        op->live_rec = NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* open / free / balance */

int cashu_wallet_open(uv_loop_t *loop, common_http_t *http, const common_env_t *env,
                      const cashu_wallet_opts_t *opts, cashu_wallet_t **out) {
    *out = NULL;
    cashu_wallet_t *w = calloc(1, sizeof *w);
    if (!w) return COMMON_ENOMEM;
    w->loop = loop;
    w->http = http;
    w->env = env;
    w->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
    w->melt_timeout_ms = opts->melt_timeout_ms ? opts->melt_timeout_ms : 600000;
    w->token_v3 = opts->token_v3;
    int rc = common_db_open(opts->db_path, env, &w->db);
    if (!rc)
        rc = common_db_migrate(w->db, migrations, sizeof migrations / sizeof migrations[0], env);
    if (rc) goto fail;
    size_t len = 0;
    rc = common_read_private(opts->key_path, w->sk, sizeof w->sk, &len);
    if (rc == COMMON_ENOTFOUND) {
        cashu_random_scalar(env, w->sk);
        rc = common_write_private(opts->key_path, w->sk, sizeof w->sk, 1);
        len = sizeof w->sk;
        /* Another process created the key first: use its key, not ours. */
        if (rc == COMMON_EEXIST)
            rc = common_read_private(opts->key_path, w->sk, sizeof w->sk, &len);
    }
    if (rc) goto fail;
    if (len != 32 || !cashu_scalar_valid(w->sk)) {
        rc = COMMON_EINVAL;
        goto fail;
    }
    if ((rc = cashu_pubkey(w->sk, w->pk))) goto fail;
    *out = w;
    return 0;
fail:
    common_db_close(w->db);
    sodium_memzero(w->sk, sizeof w->sk);
    free(w);
    return rc;
}

void cashu_wallet_free(cashu_wallet_t *w) {
    if (!w) return;
    for (size_t i = 0; i < w->nmints; i++) {
        cashu_mint_free(w->mints[i].api); /* cancels pending calls: no more callbacks */
        for (size_t k = 0; k < w->mints[i].nks; k++) free(w->mints[i].ks[k]);
        free(w->mints[i].url);
    }
    while (w->ops) {
        op_t *op = w->ops;
        op_unlink(op);
        op->cb = NULL;
        if (!uv_is_closing((uv_handle_t *)&op->timer))
            uv_close((uv_handle_t *)&op->timer, timer_closed);
    }
    common_db_close(w->db);
    sodium_memzero(w->sk, sizeof w->sk);
    free(w);
}

const uint8_t *cashu_wallet_pubkey(const cashu_wallet_t *w) {
    return w->pk;
}

int cashu_wallet_add_keyset(cashu_wallet_t *w, const char *mint, const cashu_keyset_t *ks,
                            int nut11) {
    int rc = cashu_keyset_verify_id(ks);
    if (rc) return rc;
    mintc_t *mc = mint_get(w, mint, 1);
    if (!mc) return COMMON_EINVAL;
    if ((rc = mint_add_keyset(mc, ks))) return rc;
    mc->nut11 = nut11;
    return keyset_store(w, mc->url, ks);
}

int cashu_wallet_balance(cashu_wallet_t *w, const char *mint, cashu_balance_t *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    char url[CASHU_MINT_URL_MAX + 1] = "";
    if (mint) {
        size_t n = strlen(mint);
        while (n > 0 && mint[n - 1] == '/') n--;
        snprintf(url, sizeof url, "%.*s", (int)n, mint);
    }
    int rc = db_query(
        w, &st,
        "SELECT state, SUM(amount) FROM proofs WHERE (?1 IS NULL OR mint=?1) GROUP BY state", "t",
        mint ? url : NULL);
    if (rc) return rc;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *s = col_text(st, 0);
        uint64_t v = (uint64_t)sqlite3_column_int64(st, 1);
        if (!strcmp(s, "unspent"))
            out->unspent = v;
        else if (!strcmp(s, "reserved"))
            out->reserved = v;
        else if (!strcmp(s, "sent"))
            out->sent = v;
        else if (!strcmp(s, "incoming"))
            out->incoming = v;
        else if (!strcmp(s, "pending"))
            out->pending = v;
    }
    sqlite3_finalize(st);
    return 0;
}

int cashu_wallet_history(cashu_wallet_t *w, size_t limit, cashu_history_fn fn, void *ud) {
    sqlite3_stmt *st;
    int rc = db_query(
        w, &st,
        "SELECT id,kind,state,mint,amount,fee,created,detail FROM ops ORDER BY id DESC LIMIT ?",
        "i", (int64_t)limit);
    if (rc) return rc;
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ud, sqlite3_column_int64(st, 0), col_text(st, 1), col_text(st, 2), col_text(st, 3),
           (uint64_t)sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5),
           (uint64_t)sqlite3_column_int64(st, 6), col_text(st, 7));
    sqlite3_finalize(st);
    return 0;
}

/* Select unspent proofs of @p mc covering @p target + fees (largest first). */
static int select_proofs(op_t *op, uint64_t target) {
    cashu_wallet_t *w = op->w;
    sqlite3_stmt *st;
    int rc = db_query(w, &st,
                      "SELECT keyset,amount,secret,c,dleq_e,dleq_s,dleq_r FROM proofs WHERE mint=? "
                      "AND state='unspent' "
                      "ORDER BY amount DESC",
                      "t", op->mc->url);
    if (rc) return rc;
    uint64_t sum = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sum >= target + ins_fee(op) && op->nin > 0) break;
        if (op->nin >= op->mc->max_inputs) break;
        cashu_proof_t p;
        proof_from_row(st, &p);
        if ((rc = op_add_input(op, &p))) break;
        sum += p.amount;
    }
    sqlite3_finalize(st);
    if (rc) return rc;
    if (op->nin == 0 || sum < target + ins_fee(op)) return CASHU_EFUNDS;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* load_mint */

static void load_only_done(op_t *op, int err) {
    op_finish(op, err, NULL);
}

static int start_op(cashu_wallet_t *w, const char *mint, const char *kind, cashu_wallet_cb cb,
                    void *ud, op_t **out) {
    mintc_t *mc = mint_get(w, mint, 1);
    if (!mc) return COMMON_EINVAL;
    op_t *op = op_new(w, mc, kind, cb, ud);
    if (!op) return COMMON_ENOMEM;
    *out = op;
    return 0;
}

int cashu_wallet_load_mint(cashu_wallet_t *w, const char *mint, cashu_wallet_cb cb, void *ud) {
    op_t *op;
    int rc = start_op(w, mint, "load", cb, ud, &op);
    if (rc) return rc;
    op->mc->loaded = 0; /* explicit refresh */
    ensure_mint(op, load_only_done);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* mint quote / finish */

static void quote_done(void *ud, const cashu_mint_resp_t *r) {
    op_t *op = ud;
    if (r->err) return op_fail_mint(op, r, "mint quote");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(r->json, "quote");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(r->json, "request");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "state");
    if (!cJSON_IsString(q) || !cJSON_IsString(req) || strlen(q->valuestring) >= sizeof op->quote ||
        strlen(req->valuestring) >= sizeof op->request)
        return op_finish(op, CASHU_EMINT, "malformed quote from the mint");
    snprintf(op->quote, sizeof op->quote, "%s", q->valuestring);
    snprintf(op->request, sizeof op->request, "%s", req->valuestring);
    snprintf(op->state, sizeof op->state, "%s", cJSON_IsString(st) ? st->valuestring : "UNPAID");
    int64_t now = (int64_t)common_unix_ms(op->w->env);
    /* Remember the quote (a bearer secret for minting) so a crash while waiting loses nothing. */
    int rc = db_run(op->w,
                    "INSERT INTO ops(kind,state,mint,quote,request,amount,created,updated) "
                    "VALUES('mint','quote',?,?,?,?,?,?)",
                    "tttuii", op->mc->url, op->quote, op->request, op->amount, now, now);
    op->res.amount = op->amount;
    op_finish(op, rc, NULL);
}

static void quote_loaded(op_t *op, int err) {
    if (err) return op_finish(op, err, NULL);
    cJSON *body = cJSON_CreateObject();
    char a[24];
    snprintf(a, sizeof a, "%llu", (unsigned long long)op->amount);
    cJSON_AddItemToObject(body, "amount", cJSON_CreateRaw(a));
    cJSON_AddStringToObject(body, "unit", "sat");
    int rc = cashu_mint_post(op->mc->api, "/v1/mint/quote/bolt11", body, 0, quote_done, op);
    cJSON_Delete(body);
    if (rc) op_finish(op, rc, NULL);
}

int cashu_wallet_mint_quote(cashu_wallet_t *w, const char *mint, uint64_t amount,
                            cashu_wallet_cb cb, void *ud) {
    if (amount == 0 || amount > INT64_MAX) return COMMON_ERANGE;
    op_t *op;
    int rc = start_op(w, mint, "mint", cb, ud, &op);
    if (rc) return rc;
    op->amount = amount;
    ensure_mint(op, quote_loaded);
    return 0;
}

static void mint_minted(op_t *op, int err) {
    if (!err) op->res.amount = op->amount;
    if (!err) snprintf(op->state, sizeof op->state, "ISSUED");
    op_finish(op, err, NULL);
}

static void mint_state_done(void *ud, const cashu_mint_resp_t *r) {
    op_t *op = ud;
    if (r->err) return op_fail_mint(op, r, "quote state");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "state");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(r->json, "amount");
    snprintf(op->state, sizeof op->state, "%s", cJSON_IsString(st) ? st->valuestring : "?");
    if (strcmp(op->state, "PAID") != 0) return op_finish(op, 0, NULL); /* caller polls again */
    uint64_t amount;
    if (cashu_json_u64(am, &amount) || amount == 0)
        return op_finish(op, CASHU_EMINT, "quote without amount");
    op->amount = amount;
    /* find the op row of this quote (created by mint_quote) to reuse it */
    sqlite3_stmt *q;
    if (db_query(op->w, &q, "SELECT id FROM ops WHERE kind='mint' AND quote=? AND state='quote'",
                 "t", op->quote) == 0) {
        if (sqlite3_step(q) == SQLITE_ROW) op->id = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    int rc = op_add_outputs(op, amount, "unspent", 0, NULL, 0, NULL);
    if (rc) return op_finish(op, rc, NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "quote", op->quote);
    cJSON_AddItemToObject(body, "outputs", outputs_json(op));
    op_post(op, "/v1/mint/bolt11", body, 1, op->quote, amount, 0, mint_minted);
}

static void mint_finish_loaded(op_t *op, int err) {
    if (err) return op_finish(op, err, NULL);
    char path[256];
    snprintf(path, sizeof path, "/v1/mint/quote/bolt11/%s", op->quote);
    int rc = cashu_mint_get(op->mc->api, path, mint_state_done, op);
    if (rc) op_finish(op, rc, NULL);
}

int cashu_wallet_mint_finish(cashu_wallet_t *w, const char *mint, const char *quote,
                             cashu_wallet_cb cb, void *ud) {
    if (!quote || strlen(quote) >= 128 || strchr(quote, '/')) return COMMON_EINVAL;
    op_t *op;
    int rc = start_op(w, mint, "mint", cb, ud, &op);
    if (rc) return rc;
    snprintf(op->quote, sizeof op->quote, "%s", quote);
    ensure_mint(op, mint_finish_loaded);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* prepare / send */

static int bundle_token(cashu_wallet_t *w, const char *mint, int64_t bundle, char **out) {
    sqlite3_stmt *st;
    int rc = db_query(w, &st,
                      "SELECT keyset,amount,secret,c,dleq_e,dleq_s,dleq_r FROM proofs WHERE "
                      "bundle=? ORDER BY amount",
                      "i", bundle);
    if (rc) return rc;
    cashu_token_t t;
    memset(&t, 0, sizeof t);
    t.mint = (char *)mint;
    t.unit = "sat";
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (t.nproofs == cap) {
            cap = cap ? cap * 2 : 8;
            cashu_proof_t *np = realloc(t.proofs, cap * sizeof *np);
            if (!np) {
                rc = COMMON_ENOMEM;
                break;
            }
            t.proofs = np;
        }
        cashu_proof_t *p = &t.proofs[t.nproofs];
        memset(p, 0, sizeof *p);
        snprintf(p->id, sizeof p->id, "%s", col_text(st, 0));
        p->amount = (uint64_t)sqlite3_column_int64(st, 1);
        p->secret = strdup(col_text(st, 2));
        common_hex_decode_exact(col_text(st, 3), p->C, 33);
        if (col_text(st, 4) && col_text(st, 5) && col_text(st, 6)) {
            p->has_dleq = 1;
            p->dleq.has_r = 1;
            common_hex_decode_exact(col_text(st, 4), p->dleq.e, 32);
            common_hex_decode_exact(col_text(st, 5), p->dleq.s, 32);
            common_hex_decode_exact(col_text(st, 6), p->dleq.r, 32);
        }
        t.nproofs++;
        if (!p->secret) {
            rc = COMMON_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    common_buf_t b = {0};
    if (!rc && t.nproofs == 0) rc = COMMON_ENOTFOUND;
    if (!rc) rc = w->token_v3 ? cashu_token_encode_v3(&t, &b) : cashu_token_encode_v4(&t, 1, &b);
    for (size_t i = 0; i < t.nproofs; i++) free(t.proofs[i].secret);
    free(t.proofs);
    if (rc) {
        common_buf_free(&b);
        return rc;
    }
    *out = strndup((char *)b.data, b.len);
    common_buf_free(&b);
    return *out ? 0 : COMMON_ENOMEM;
}

static void prepare_swapped(op_t *op, int err) {
    if (err) return op_finish(op, err, NULL);
    op->tokens = calloc(op->ntokens, sizeof *op->tokens);
    if (!op->tokens) return op_finish(op, COMMON_ENOMEM, NULL);
    for (size_t i = 0; i < op->ntokens; i++) {
        int rc = bundle_token(op->w, op->mc->url, op->bundle_ids[i], &op->tokens[i]);
        if (rc) return op_finish(op, rc, "encoding prepared token");
    }
    op->res.amount = op->amount * op->ntokens;
    op_finish(op, 0, NULL);
}

static void prepare_loaded(op_t *op, int err) {
    cashu_wallet_t *w = op->w;
    const op_t *pa = op;
    if (err) return op_finish(op, err, NULL);
    if (pa->has_lock && !op->mc->nut11)
        return op_finish(op, COMMON_EUNSUPPORTED, "the mint does not advertise NUT-11 (P2PK)");
    uint64_t total = op->amount * op->ntokens;
    /* outputs: n bundles + change; the fee depends on the inputs chosen */
    int rc = select_proofs(op, total);
    if (rc == CASHU_EFUNDS) {
        cashu_balance_t b;
        cashu_wallet_balance(w, op->mc->url, &b);
        return op_finish(op, rc, "need %llu sat plus fees, have %llu spendable",
                         (unsigned long long)total, (unsigned long long)b.unspent);
    }
    if (rc) return op_finish(op, rc, NULL);
    uint64_t fee = ins_fee(op), sum = ins_sum(op);
    /* bundles are created inside the journal transaction below, so ids first */
    op->bundle_ids = calloc(op->ntokens, sizeof *op->bundle_ids);
    if (!op->bundle_ids) return op_finish(op, COMMON_ENOMEM, NULL);
    if ((rc = db_begin(w))) return op_finish(op, rc, NULL);
    for (size_t i = 0; i < op->ntokens && !rc; i++) {
        rc = db_run(w, "INSERT INTO bundles(op,amount,state) VALUES(0,?,'pending')", "u",
                    op->amount);
        op->bundle_ids[i] = sqlite3_last_insert_rowid(w->db);
    }
    if (rc || (rc = db_commit(w))) {
        db_rollback(w);
        return op_finish(op, rc, NULL);
    }
    for (size_t i = 0; i < op->ntokens && !rc; i++)
        rc = op_add_outputs(op, op->amount, "reserved", op->bundle_ids[i],
                            pa->has_lock ? pa->lock : NULL, pa->locktime,
                            pa->has_lock ? w->pk : NULL);
    if (!rc) rc = op_add_outputs(op, sum - fee - total, "unspent", 0, NULL, 0, NULL);
    if (rc) {
        db_run(w, "DELETE FROM bundles WHERE op=0 AND state='pending'", "");
        return op_finish(op, rc, rc == COMMON_ETOOBIG ? "too many outputs for one swap" : NULL);
    }
    op->res.fee = fee;
    op_swap(op, total, fee, prepare_swapped);
}

int cashu_wallet_prepare(cashu_wallet_t *w, const char *mint, size_t n, uint64_t amount,
                         const uint8_t *lock_pubkey, uint64_t locktime, cashu_wallet_cb cb,
                         void *ud) {
    if (n == 0 || n > CASHU_PREPARE_MAX || amount == 0 || amount > INT64_MAX / n)
        return COMMON_ERANGE;
    if (lock_pubkey && !cashu_point_valid(lock_pubkey)) return COMMON_EINVAL;
    op_t *op;
    int rc = start_op(w, mint, "prepare", cb, ud, &op);
    if (rc) return rc;
    if (lock_pubkey) {
        memcpy(op->lock, lock_pubkey, 33);
        op->has_lock = 1;
        op->locktime = locktime;
    }
    op->amount = amount;
    op->ntokens = n;
    ensure_mint(op, prepare_loaded);
    return 0;
}

int cashu_wallet_mark_sent(cashu_wallet_t *w, int64_t bundle_id) {
    int rc = db_begin(w);
    if (rc) return rc;
    rc = db_run(w, "UPDATE proofs SET state='sent' WHERE bundle=? AND state='reserved'", "i",
                bundle_id);
    if (!rc) rc = db_run(w, "UPDATE bundles SET state='sent' WHERE id=?", "i", bundle_id);
    if (rc) {
        db_rollback(w);
        return rc;
    }
    return db_commit(w);
}

int cashu_wallet_release(cashu_wallet_t *w, int64_t bundle_id) {
    sqlite3_stmt *st;
    int rc = db_query(
        w, &st,
        "SELECT COUNT(*) FROM proofs WHERE bundle=? AND state='reserved' AND lock_key IS NOT NULL",
        "i", bundle_id);
    if (rc) return rc;
    int locked = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (locked) return COMMON_ESTATE; /* locked to someone else: only the refund path frees it */
    if ((rc = db_begin(w))) return rc;
    rc = db_run(
        w, "UPDATE proofs SET state='unspent', bundle=NULL WHERE bundle=? AND state='reserved'",
        "i", bundle_id);
    if (!rc)
        rc = db_run(w, "UPDATE bundles SET state='released' WHERE id=? AND state='ready'", "i",
                    bundle_id);
    if (rc) {
        db_rollback(w);
        return rc;
    }
    return db_commit(w);
}

/* ------------------------------------------------------------------------------------------ */
/* incoming tokens: offline verification */

/* own_ok: a proof we sent ourselves (state sent/reserved) may come back (receive only). */
static int verify_token_ex(cashu_wallet_t *w, cashu_token_t *t, const cashu_policy_t *pol,
                           mintc_t **mc_out, int need_lock, int own_ok);

static int verify_token(cashu_wallet_t *w, cashu_token_t *t, const cashu_policy_t *pol,
                        mintc_t **mc_out, int need_lock) {
    return verify_token_ex(w, t, pol, mc_out, need_lock, 0);
}

static int proof_state(const wdb_t *d, const char *y, char *out, size_t cap) {
    sqlite3_stmt *st;
    out[0] = 0;
    if (wdb_query(d, &st, "SELECT state FROM proofs WHERE y=?", "t", y)) return COMMON_EDB;
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) snprintf(out, cap, "%s", col_text(st, 0));
    sqlite3_finalize(st);
    return found;
}

/* The checks of one proof that need neither the store nor an EC multiplication: its key
 * (*A_out, borrowed from the keyset) and the P2PK lock rules. *need_dleq: a DLEQ must be
 * present and verify. */
static int proof_check_static(cashu_wallet_t *w, const mintc_t *mc, const cashu_proof_t *p,
                              const cashu_policy_t *pol, int need_lock, uint64_t now,
                              const uint8_t **A_out, int *need_dleq) {
    const cashu_keyset_t *ks = mint_keyset(mc, p->id);
    if (!ks || strcmp(ks->unit, "sat") != 0) return CASHU_EKEYSET;
    const uint8_t *A = cashu_keyset_key(ks, p->amount);
    if (!A) return CASHU_EBAD_TOKEN;
    *A_out = A;
    cashu_p2pk_t pk;
    int prc = cashu_p2pk_parse(p->secret, &pk);
    if (prc == CASHU_EBAD_TOKEN) return CASHU_EBAD_TOKEN;
    int locked = prc == 0;
    if (locked && !pk.is_p2pk) return CASHU_ENOT_LOCKED; /* other NUT-10 kinds */
    if (need_lock || locked) {
        if (!locked || memcmp(pk.data + 1, w->pk + 1, 32) != 0 || pk.npubkeys || pk.n_sigs != 1 ||
            pk.sig_all)
            return CASHU_ENOT_LOCKED;
        if (need_lock) {
            uint64_t min = pol ? pol->min_locktime : 0;
            /* no locktime = locked to us for ever, which is at least as good */
            if (pk.has_locktime && pk.locktime < now + min) return CASHU_ENOT_LOCKED;
        }
        if (!mc->nut11) return CASHU_ENOT_LOCKED; /* a mint without NUT-11 ignores locks */
    }
    *need_dleq = (pol && pol->require_dleq) || need_lock;
    if (!p->has_dleq || !p->dleq.has_r) return *need_dleq ? CASHU_EDLEQ : 0;
    return 0;
}

/* The DLEQ of one proof, if it carries a complete one (pure: any thread). */
static int proof_check_dleq(const uint8_t A[33], const cashu_proof_t *p) {
    if (!p->has_dleq || !p->dleq.has_r) return 0;
    return cashu_dleq_verify_proof(A, p->secret, strlen(p->secret), p->C, p->dleq.e, p->dleq.s,
                                   p->dleq.r)
               ? CASHU_EDLEQ
               : 0;
}

/* Replay: a Y (given as hex) we have seen before in any state, or proof i's secret repeated
 * earlier in the token. own_ok: our own sent/reserved/incoming proofs may come back. */
static int proof_check_replay(const wdb_t *d, const cashu_token_t *t, size_t i, const char *y,
                              int own_ok) {
    char pst[16];
    int seen = proof_state(d, y, pst, sizeof pst) == 1;
    if (seen && own_ok &&
        (!strcmp(pst, "sent") || !strcmp(pst, "reserved") || !strcmp(pst, "incoming")))
        seen = 0; /* ours: coming back, or recorded earlier and not claimed yet */
    for (size_t j = 0; j < i && !seen; j++)
        seen = strcmp(t->proofs[j].secret, t->proofs[i].secret) == 0;
    return seen ? CASHU_EREPLAY : 0;
}

/* The token-level checks before any proof: unit, accepted mint, keyset ids. */
static int token_check_mint(cashu_wallet_t *w, cashu_token_t *t, const cashu_policy_t *pol,
                            mintc_t **mc_out) {
    if (strcmp(t->unit, "sat") != 0) return CASHU_EUNIT;
    if (pol && pol->mints) {
        int ok = 0;
        for (const char *const *m = pol->mints; *m && !ok; m++) {
            size_t n = strlen(*m);
            while (n > 0 && (*m)[n - 1] == '/') n--;
            ok = strlen(t->mint) == n && strncmp(*m, t->mint, n) == 0;
        }
        if (!ok) return CASHU_EMINT_NOT_ACCEPTED;
    }
    mintc_t *mc = mint_get(w, t->mint, 1);
    if (!mc) return COMMON_ENOMEM;
    *mc_out = mc;
    if (cashu_token_resolve_ids(t, (const cashu_keyset_t *const *)mc->ks, mc->nks))
        return CASHU_EKEYSET;
    return 0;
}

static int verify_token_ex(cashu_wallet_t *w, cashu_token_t *t, const cashu_policy_t *pol,
                           mintc_t **mc_out, int need_lock, int own_ok) {
    int rc = token_check_mint(w, t, pol, mc_out);
    if (rc) return rc;
    uint64_t now = now_unix(w);
    for (size_t i = 0; i < t->nproofs; i++) {
        const cashu_proof_t *p = &t->proofs[i];
        const uint8_t *A = NULL;
        int need_dleq = 0;
        uint8_t Y[33];
        char y[67];
        if ((rc = proof_check_static(w, *mc_out, p, pol, need_lock, now, &A, &need_dleq)))
            return rc;
        if (cashu_proof_Y(p, Y)) return CASHU_EBAD_TOKEN;
        common_hex_encode(Y, 33, y);
        if ((rc = proof_check_replay(WDB(w), t, i, y, own_ok))) return rc;
        if ((rc = proof_check_dleq(A, p))) return rc;
    }
    return 0;
}

int cashu_wallet_verify_offline(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                                uint64_t *amount, size_t *nproofs) {
    if (!policy || !token) return COMMON_EINVAL;
    cashu_token_t t;
    int rc = cashu_token_decode(token, strlen(token), &t);
    if (rc) return rc == COMMON_ENOMEM ? rc : CASHU_EBAD_TOKEN;
    mintc_t *mc = NULL;
    rc = verify_token(w, &t, policy, &mc, policy->require_lock);
    if (!rc && !policy->require_lock && !policy->require_dleq) rc = COMMON_EINVAL;
    uint64_t sum = 0;
    if (!rc) rc = cashu_token_amount(&t, &sum);
    if (!rc && amount) *amount = sum;
    if (!rc && nproofs) *nproofs = t.nproofs;
    cashu_token_free(&t);
    return rc;
}

/* Record an offline-verified token's proofs as incoming (inside the caller's transaction);
 * ys: the proofs' Y as hex. */
static int accept_record(const wdb_t *d, const cashu_token_t *t, const char (*ys)[67],
                         const char *mint, uint64_t sum) {
    int rc = 0;
    for (size_t i = 0; i < t->nproofs && !rc; i++)
        rc = proof_insert(d, mint, &t->proofs[i], ys[i], "incoming", 0, 0);
    if (!rc)
        rc = wdb_run(d,
                     "INSERT INTO ops(kind,state,mint,amount,created,updated) "
                     "VALUES('accept','done',?,?,?,?)",
                     "tuii", mint, sum, (int64_t)common_unix_ms(d->env),
                     (int64_t)common_unix_ms(d->env));
    return rc;
}

/* An offline acceptance in progress (cashu_wallet.h: prepare, run, commit). */
struct cashu_offline_check {
    int rc; /* first failure so far (0: none) */
    cashu_token_t t;
    char *mint;       /* the mint's URL as the wallet spells it (owned copy) */
    uint64_t sum;     /* token amount */
    uint8_t (*A)[33]; /* each proof's key, copied from the keyset */
    char (*ys)[67];   /* each proof's Y in hex (filled by run) */
    int ran;
};

void cashu_offline_check_free(cashu_offline_check_t *c) {
    if (!c) return;
    cashu_token_free(&c->t);
    free(c->mint);
    free(c->A);
    free(c->ys);
    free(c);
}

int cashu_offline_check_result(const cashu_offline_check_t *c) {
    return c ? c->rc : COMMON_EINVAL;
}

int cashu_wallet_offline_prepare(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                                 cashu_offline_check_t **out) {
    *out = NULL;
    if (!policy || !token) return COMMON_EINVAL;
    cashu_offline_check_t *c = calloc(1, sizeof *c);
    if (!c) return COMMON_ENOMEM;
    int rc = cashu_token_decode(token, strlen(token), &c->t);
    if (rc) {
        free(c);
        return rc == COMMON_ENOMEM ? rc : CASHU_EBAD_TOKEN;
    }
    *out = c;
    if (!policy->require_lock && !policy->require_dleq) /* offline needs DLEQ */
        return c->rc = COMMON_EINVAL;
    mintc_t *mc = NULL;
    if ((rc = token_check_mint(w, &c->t, policy, &mc))) return c->rc = rc;
    if (!(c->mint = strdup(mc->url))) return c->rc = COMMON_ENOMEM;
    if ((rc = cashu_token_amount(&c->t, &c->sum))) return c->rc = rc;
    size_t n = c->t.nproofs ? c->t.nproofs : 1;
    if (!(c->A = calloc(n, sizeof *c->A)) || !(c->ys = calloc(n, sizeof *c->ys)))
        return c->rc = COMMON_ENOMEM;
    uint64_t now = now_unix(w);
    for (size_t i = 0; i < c->t.nproofs; i++) {
        const uint8_t *A = NULL;
        int need_dleq = 0;
        rc = proof_check_static(w, mc, &c->t.proofs[i], policy, policy->require_lock, now, &A,
                                &need_dleq);
        if (rc) return c->rc = rc;
        memcpy(c->A[i], A, 33);
    }
    return 0;
}

void cashu_offline_check_run(cashu_offline_check_t *c) {
    if (!c || c->rc || c->ran) return;
    c->ran = 1;
    for (size_t i = 0; i < c->t.nproofs && !c->rc; i++) {
        uint8_t Y[33];
        if (cashu_proof_Y(&c->t.proofs[i], Y)) {
            c->rc = CASHU_EBAD_TOKEN;
            break;
        }
        common_hex_encode(Y, 33, c->ys[i]);
        c->rc = proof_check_dleq(c->A[i], &c->t.proofs[i]);
    }
}

static int commit_many(const wdb_t *d, size_t n, cashu_offline_check_t *const *checks,
                       uint64_t *amounts, int *rcs) {
    if (!n) return 0;
    if (!checks || !amounts || !rcs) return COMMON_EINVAL;
    for (size_t i = 0; i < n; i++) {
        amounts[i] = 0;
        rcs[i] = !checks[i]        ? COMMON_EINVAL
                 : checks[i]->rc   ? checks[i]->rc
                 : !checks[i]->ran ? COMMON_ESTATE
                                   : 0;
    }
    int rc = common_db_begin(d->db, d->env);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            if (!rcs[i]) rcs[i] = rc;
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (rcs[i]) continue;
        cashu_offline_check_t *c = checks[i];
        /* inside the transaction: the replay check also sees the tokens recorded above */
        int r = 0;
        for (size_t k = 0; k < c->t.nproofs && !r; k++)
            r = proof_check_replay(d, &c->t, k, c->ys[k], 0);
        if (!r) { /* one savepoint per token: a failed one leaves the others recorded */
            r = common_db_exec(d->db, "SAVEPOINT accept_one", d->env);
            if (!r) {
                r = accept_record(d, &c->t, (const char(*)[67])c->ys, c->mint, c->sum);
                if (r) common_db_exec(d->db, "ROLLBACK TO accept_one", d->env);
                if (common_db_exec(d->db, "RELEASE accept_one", d->env) && !r) r = COMMON_EDB;
            }
        }
        rcs[i] = r;
        if (!r) amounts[i] = c->sum;
    }
    rc = common_db_commit(d->db, d->env);
    if (rc) { /* nothing is recorded: no token may count as accepted */
        common_db_rollback(d->db);
        for (size_t i = 0; i < n; i++) {
            if (!rcs[i]) rcs[i] = rc;
            amounts[i] = 0;
        }
    }
    return rc;
}

int cashu_wallet_offline_commit_many(cashu_wallet_t *w, size_t n,
                                     cashu_offline_check_t *const *checks, uint64_t *amounts,
                                     int *rcs) {
    return commit_many(WDB(w), n, checks, amounts, rcs);
}

struct cashu_accept_store {
    wdb_t d;
};

int cashu_wallet_accept_store_open(cashu_wallet_t *w, cashu_accept_store_t **out) {
    *out = NULL;
    const char *path = sqlite3_db_filename(w->db, "main");
    if (!path || !*path) return COMMON_EINVAL;
    cashu_accept_store_t *s = calloc(1, sizeof *s);
    if (!s) return COMMON_ENOMEM;
    s->d.env = w->env;
    int rc = common_db_open(path, w->env, &s->d.db);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int cashu_accept_store_commit_many(cashu_accept_store_t *s, size_t n,
                                   cashu_offline_check_t *const *checks, uint64_t *amounts,
                                   int *rcs) {
    return commit_many(&s->d, n, checks, amounts, rcs);
}

void cashu_accept_store_close(cashu_accept_store_t *s) {
    if (!s) return;
    common_db_close(s->d.db);
    free(s);
}

int cashu_wallet_accept_offline_many(cashu_wallet_t *w, size_t n, const char *const *tokens,
                                     const cashu_policy_t *const *policies, uint64_t *amounts,
                                     int *rcs) {
    if (!n) return 0;
    if (!tokens || !policies || !amounts || !rcs) return COMMON_EINVAL;
    cashu_offline_check_t **checks = calloc(n, sizeof *checks);
    int *prc = calloc(n, sizeof *prc);
    if (!checks || !prc) {
        free(checks);
        free(prc);
        return COMMON_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        prc[i] = COMMON_EINVAL;
        if (!policies[i] || !tokens[i]) continue;
        prc[i] = cashu_wallet_offline_prepare(w, tokens[i], policies[i], &checks[i]);
        cashu_offline_check_run(checks[i]);
    }
    int rc = cashu_wallet_offline_commit_many(w, n, checks, amounts, rcs);
    for (size_t i = 0; i < n; i++) {
        if (!checks[i]) rcs[i] = prc[i]; /* did not decode: prepare's answer */
        cashu_offline_check_free(checks[i]);
    }
    free(checks);
    free(prc);
    return rc;
}

int cashu_wallet_accept_offline(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                                uint64_t *amount) {
    const char *toks[1] = {token};
    const cashu_policy_t *pols[1] = {policy};
    uint64_t sum = 0;
    int rcs[1];
    int rc = cashu_wallet_accept_offline_many(w, 1, toks, pols, &sum, rcs);
    if (!rc) rc = rcs[0];
    if (!rc && amount) *amount = sum;
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* claim / receive: swap incoming proofs (signing witnesses) into fresh ones */

static int sign_if_locked(cashu_wallet_t *w, cashu_proof_t *p) {
    cashu_p2pk_t pk;
    if (cashu_p2pk_parse(p->secret, &pk) != 0 || !pk.is_p2pk) return 0;
    free(p->witness);
    p->witness = NULL;
    return cashu_p2pk_sign(w->env, p->secret, w->sk, &p->witness);
}

static void claim_next(op_t *op, int err);
static void claim_batch_done(op_t *op, int err);

static void sign_more(uv_timer_t *t);

/* Sign op->ins (the locked ones) CASHU_SIGN_SLICE at a time, letting the loop run between
 * slices, then go on with @p next. A failure finishes the op; so does wallet free (it closes
 * the timer). */
static void sign_slice(op_t *op) {
    op->sign_turns++;
    size_t end = op->nsigned + CASHU_SIGN_SLICE;
    if (end > op->nin) end = op->nin;
    for (; op->nsigned < end; op->nsigned++) {
        int rc = sign_if_locked(op->w, &op->ins[op->nsigned]);
        if (rc) return op_finish(op, rc, NULL);
    }
    /* 1 ms, not 0: libuv runs a timer re-armed at 0 from its callback in the same pass,
     * before any I/O */
    if (op->nsigned < op->nin) return (void)uv_timer_start(&op->timer, sign_more, 1, 0);
    LOG_DEBUG(LOGP(op->w), MOD, "%s: %zu inputs signed over %zu loop turn(s)", op->kind, op->nin,
              op->sign_turns);
    op->after_sign(op);
}

static void sign_more(uv_timer_t *t) {
    sign_slice(t->data);
}

static void sign_inputs_then(op_t *op, void (*next)(op_t *op)) {
    op->nsigned = op->sign_turns = 0;
    op->after_sign = next;
    sign_slice(op);
}

/* Swap the signed inputs (@p what: for the error) into new unspent proofs, then @p done. */
static void swap_inputs(op_t *op, const char *what, void (*done)(op_t *op, int err)) {
    uint64_t sum = ins_sum(op), fee = ins_fee(op);
    if (sum <= fee) return op_finish(op, CASHU_EFUNDS, "%s proofs worth less than the fee", what);
    int rc = op_add_outputs(op, sum - fee, "unspent", 0, NULL, 0, NULL);
    if (rc) return op_finish(op, rc, NULL);
    op->amount2 = sum - fee;
    op->res.fee += fee;
    op_swap(op, sum - fee, fee, done);
}

static void claim_swap(op_t *op) {
    swap_inputs(op, "incoming", claim_batch_done);
}

static void claim_batch_done(op_t *op, int err) {
    if (err) return op_finish(op, err, NULL);
    op->res.amount += op->amount2;
    op_reset_io(op);
    claim_next(op, 0);
}

static void claim_next(op_t *op, int err) {
    cashu_wallet_t *w = op->w;
    if (err) return op_finish(op, err, NULL);
    sqlite3_stmt *st;
    int rc = db_query(
        w, &st,
        "SELECT keyset,amount,secret,c FROM proofs WHERE mint=? AND state='incoming' LIMIT ?", "ti",
        op->mc->url, (int64_t)op->mc->max_inputs);
    if (rc) return op_finish(op, rc, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cashu_proof_t p;
        proof_from_row(st, &p);
        if ((rc = op_add_input(op, &p))) break;
    }
    sqlite3_finalize(st);
    if (rc) return op_finish(op, rc, NULL);
    if (op->nin == 0) return op_finish(op, 0, NULL); /* nothing (more) to claim */
    sign_inputs_then(op, claim_swap);
}

int cashu_wallet_claim(cashu_wallet_t *w, const char *mint, cashu_wallet_cb cb, void *ud) {
    op_t *op;
    int rc = start_op(w, mint, "claim", cb, ud, &op);
    if (rc) return rc;
    ensure_mint(op, claim_next);
    return 0;
}

static void receive_done(op_t *op, int err) {
    if (!err) op->res.amount = op->amount2;
    op_finish(op, err, NULL);
}

static void receive_loaded(op_t *op, int err) {
    cashu_wallet_t *w = op->w;
    op_t *ra = op;
    if (err) return op_finish(op, err, NULL);
    cashu_token_t t;
    int rc = cashu_token_decode(ra->token, strlen(ra->token), &t);
    if (rc) return op_finish(op, CASHU_EBAD_TOKEN, NULL);
    mintc_t *mc = NULL;
    rc = verify_token_ex(w, &t, ra->has_pol ? &ra->pol : NULL, &mc, 0, 1);
    if (rc) {
        cashu_token_free(&t);
        return op_finish(op, rc, NULL);
    }
    /* record as incoming (replay set), then swap them (journaled) */
    if ((rc = db_begin(w)) == 0) {
        for (size_t i = 0; i < t.nproofs && !rc; i++) {
            uint8_t Y[33];
            char y[67];
            cashu_proof_Y(&t.proofs[i], Y);
            common_hex_encode(Y, 33, y);
            char pst[16];
            if (proof_state(WDB(w), y, pst, sizeof pst) !=
                1) /* else: our own sent proof coming back */
                rc = proof_insert(WDB(w), mc->url, &t.proofs[i], y, "incoming", 0, 0);
            if (!rc) rc = op_add_input(op, &t.proofs[i]);
            if (!rc) rc = sign_if_locked(w, &op->ins[op->nin - 1]);
        }
        if (rc)
            db_rollback(w);
        else
            rc = db_commit(w);
    }
    cashu_token_free(&t);
    if (rc) return op_finish(op, rc, NULL);
    uint64_t sum = ins_sum(op), fee = ins_fee(op);
    if (sum <= fee) return op_finish(op, CASHU_EFUNDS, "token worth less than the fee");
    if ((rc = op_add_outputs(op, sum - fee, "unspent", 0, NULL, 0, NULL)))
        return op_finish(op, rc, NULL);
    op->amount2 = sum - fee;
    op->res.fee = fee;
    op_swap(op, sum - fee, fee, receive_done);
}

int cashu_wallet_receive(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                         cashu_wallet_cb cb, void *ud) {
    cashu_token_t t;
    int rc = cashu_token_decode(token, strlen(token), &t);
    if (rc) return CASHU_EBAD_TOKEN;
    op_t *op;
    rc = start_op(w, t.mint, "receive", cb, ud, &op);
    cashu_token_free(&t);
    if (rc) return rc;
    if (!(op->token = strdup(token))) {
        op->cb = NULL;
        op_finish(op, COMMON_ENOMEM, NULL);
        return COMMON_ENOMEM;
    }
    if (policy) {
        op->pol = *policy;
        op->has_pol = 1;
    }
    ensure_mint(op, receive_loaded);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* refund */

static void refund_swapped(op_t *op, int err) {
    if (!err) op->res.amount = op->amount2;
    op_finish(op, err, NULL);
}

static void refund_swap(op_t *op) {
    swap_inputs(op, "refundable", refund_swapped); /* one swap: res.fee starts at 0 */
}

static void refund_checked(void *ud, const cashu_mint_resp_t *r) {
    op_t *op = ud;
    cashu_wallet_t *w = op->w;
    if (r->err) return op_fail_mint(op, r, "checkstate");
    const cJSON *states = cJSON_GetObjectItemCaseSensitive(r->json, "states");
    if (!cJSON_IsArray(states) || (size_t)cJSON_GetArraySize(states) != op->nin)
        return op_finish(op, CASHU_EMINT, "malformed checkstate answer");
    /* drop the spent ones (the receiver claimed them) */
    size_t keep = 0;
    int rc = db_begin(w);
    for (size_t i = 0; i < op->nin && !rc; i++) {
        const cJSON *s =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(states, (int)i), "state");
        if (cJSON_IsString(s) && strcmp(s->valuestring, "UNSPENT") == 0) {
            if (keep != i) {
                cashu_proof_t tmp = op->ins[keep];
                op->ins[keep] = op->ins[i];
                op->ins[i] = tmp;
                char ty[67];
                memcpy(ty, op->in_y[keep], 67);
                memcpy(op->in_y[keep], op->in_y[i], 67);
                memcpy(op->in_y[i], ty, 67);
            }
            keep++;
        } else if (cJSON_IsString(s) && strcmp(s->valuestring, "SPENT") == 0) {
            rc = db_run(w, "UPDATE proofs SET state='spent' WHERE y=?", "t", op->in_y[i]);
        }
    }
    if (rc)
        db_rollback(w);
    else
        rc = db_commit(w);
    if (rc) return op_finish(op, rc, NULL);
    for (size_t i = keep; i < op->nin; i++) cashu_proof_free(&op->ins[i]);
    op->nin = keep;
    if (keep == 0) return op_finish(op, 0, "nothing to refund");
    sign_inputs_then(op, refund_swap);
}

static void refund_loaded(op_t *op, int err) {
    cashu_wallet_t *w = op->w;
    if (err) return op_finish(op, err, NULL);
    char pkh[67];
    common_hex_encode(w->pk, 33, pkh);
    /* plain reserved bundles never left the wallet: release them without the mint */
    int rc = db_run(w,
                    "UPDATE proofs SET state='unspent', bundle=NULL WHERE mint=? AND "
                    "state='reserved' AND lock_key IS NULL",
                    "t", op->mc->url);
    if (rc) return op_finish(op, rc, NULL);
    sqlite3_stmt *st;
    rc = db_query(
        w, &st,
        "SELECT keyset,amount,secret,c FROM proofs WHERE mint=? AND state IN ('reserved','sent') "
        "AND locktime > 0 AND locktime <= ? AND refund_key=? LIMIT ?",
        "tuti", op->mc->url, now_unix(w), pkh, (int64_t)op->mc->max_inputs);
    if (rc) return op_finish(op, rc, NULL);
    rc = op_add_rows(op, st);
    if (rc) return op_finish(op, rc, NULL);
    if (op->nin == 0) return op_finish(op, 0, "nothing to refund");
    cJSON *body = cJSON_CreateObject();
    cJSON *ys = cJSON_AddArrayToObject(body, "Ys");
    for (size_t i = 0; i < op->nin; i++) cJSON_AddItemToArray(ys, cJSON_CreateString(op->in_y[i]));
    rc = cashu_mint_post(op->mc->api, "/v1/checkstate", body, 0, refund_checked, op);
    cJSON_Delete(body);
    if (rc) op_finish(op, rc, NULL);
}

int cashu_wallet_refund(cashu_wallet_t *w, const char *mint, cashu_wallet_cb cb, void *ud) {
    op_t *op;
    int rc = start_op(w, mint, "refund", cb, ud, &op);
    if (rc) return rc;
    ensure_mint(op, refund_loaded);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* melt */

int cashu_wallet_release(cashu_wallet_t *w, int64_t bundle_id);

static void melt_paid(op_t *op, int err) {
    if (!err) op->res.amount = op->amount;
    /* a definite failure: the exact-amount proofs become spendable again */
    if (err && err != CASHU_EMINT_UNREACHABLE && op->bundle_ids)
        (void)cashu_wallet_release(op->w, op->bundle_ids[0]);
    op_finish(op, err, NULL);
}

static void melt_send(op_t *op) {
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "quote", op->quote);
    cJSON_AddItemToObject(body, "inputs", inputs_json(op));
    op->kind = "melt";
    op_post(op, "/v1/melt/bolt11", body, 2, op->quote, op->amount, op->res.fee, melt_paid);
}

/* After the exact-amount swap: pick the melt proofs (the 'reserved' bundle of that swap). */
static void melt_after_swap(op_t *op, int err) {
    cashu_wallet_t *w = op->w;
    if (err) return op_finish(op, err, NULL);
    int64_t bundle = op->bundle_ids ? op->bundle_ids[0] : 0;
    op_reset_io(op);
    sqlite3_stmt *st;
    int rc = db_query(
        w, &st, "SELECT keyset,amount,secret,c FROM proofs WHERE bundle=? AND state='reserved'",
        "i", bundle);
    if (rc) return op_finish(op, rc, NULL);
    rc = op_add_rows(op, st);
    if (rc) return op_finish(op, rc, NULL);
    op->res.fee += ins_fee(op);
    melt_send(op);
}

static void melt_quoted(void *ud, const cashu_mint_resp_t *r) {
    op_t *op = ud;
    cashu_wallet_t *w = op->w;
    if (r->err) return op_fail_mint(op, r, "melt quote");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(r->json, "quote");
    uint64_t amount, reserve = 0;
    if (!cJSON_IsString(q) || strlen(q->valuestring) >= sizeof op->quote ||
        cashu_json_u64(cJSON_GetObjectItemCaseSensitive(r->json, "amount"), &amount))
        return op_finish(op, CASHU_EMINT, "malformed melt quote");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(r->json, "fee_reserve");
    if (fr && cashu_json_u64(fr, &reserve))
        return op_finish(op, CASHU_EMINT, "malformed fee_reserve");
    snprintf(op->quote, sizeof op->quote, "%s", q->valuestring);
    op->amount = amount;
    uint64_t need = amount + reserve;
    /* the melt's own input fee depends on how many proofs it spends: find a fixpoint */
    const cashu_keyset_t *ks = mint_active(op->mc);
    if (!ks) return op_finish(op, CASHU_EKEYSET, NULL);
    uint64_t parts[128], target = need;
    for (int it = 0; it < 4; it++) {
        int n = cashu_split_amount(ks, target, parts, 128);
        if (n < 0) return op_finish(op, n, NULL);
        uint64_t t2 = need + cashu_fee_from_ppk_sum((uint64_t)n * ks->input_fee_ppk);
        if (t2 == target) break;
        target = t2;
    }
    /* exact proofs: one swap into a 'reserved' bundle of `target`, then melt those */
    int rc = select_proofs(op, target);
    if (rc == CASHU_EFUNDS) {
        cashu_balance_t b;
        cashu_wallet_balance(w, op->mc->url, &b);
        return op_finish(op, rc, "invoice needs %llu sat (with fees), have %llu spendable",
                         (unsigned long long)target, (unsigned long long)b.unspent);
    }
    if (rc) return op_finish(op, rc, NULL);
    uint64_t fee = ins_fee(op), sum = ins_sum(op);
    op->bundle_ids = calloc(1, sizeof *op->bundle_ids);
    if (!op->bundle_ids) return op_finish(op, COMMON_ENOMEM, NULL);
    rc = db_run(w, "INSERT INTO bundles(op,amount,state) VALUES(0,?,'pending')", "u", target);
    if (rc) return op_finish(op, rc, NULL);
    op->bundle_ids[0] = sqlite3_last_insert_rowid(w->db);
    if ((rc = op_add_outputs(op, target, "reserved", op->bundle_ids[0], NULL, 0, NULL)) ||
        (rc = op_add_outputs(op, sum - fee - target, "unspent", 0, NULL, 0, NULL)))
        return op_finish(op, rc, NULL);
    op->res.fee = fee;
    op->kind = "swap";
    op_swap(op, target, fee, melt_after_swap);
}

static void melt_loaded(op_t *op, int err) {
    if (err) return op_finish(op, err, NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "request", op->request);
    cJSON_AddStringToObject(body, "unit", "sat");
    int rc = cashu_mint_post(op->mc->api, "/v1/melt/quote/bolt11", body, 0, melt_quoted, op);
    cJSON_Delete(body);
    if (rc) op_finish(op, rc, NULL);
}

int cashu_wallet_melt(cashu_wallet_t *w, const char *mint, const char *bolt11, cashu_wallet_cb cb,
                      void *ud) {
    if (!bolt11 || !*bolt11 || strlen(bolt11) >= 1024) return COMMON_EINVAL;
    op_t *op;
    int rc = start_op(w, mint, "melt", cb, ud, &op);
    if (rc) return rc;
    snprintf(op->request, sizeof op->request, "%s", bolt11);
    ensure_mint(op, melt_loaded);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* recover: every open op, one after the other */

static void recover_next(op_t *op);

/* After the journal: learn which of our sent proofs the receivers have claimed (NUT-07), so
 * "sent" only counts sats that may still come back. One checkstate per mint (≤ max inputs). */
static void sent_refresh(op_t *op);

static void sent_checked(void *ud, const cashu_mint_resp_t *r) {
    op_t *op = ud;
    cashu_wallet_t *w = op->w;
    if (!r->err) {
        const cJSON *states = cJSON_GetObjectItemCaseSensitive(r->json, "states"), *s;
        int rc = db_begin(w);
        cJSON_ArrayForEach(s, states) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(s, "Y");
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "state");
            if (!rc && cJSON_IsString(y) && cJSON_IsString(st) &&
                strcmp(st->valuestring, "SPENT") == 0)
                rc = db_run(w, "UPDATE proofs SET state='spent' WHERE y=? AND state='sent'", "t",
                            y->valuestring);
        }
        if (rc)
            db_rollback(w);
        else
            db_commit(w);
    } else if (!op->res.err) {
        op->res.err = r->err;
    }
    sent_refresh(op);
}

static void sent_refresh(op_t *op) {
    cashu_wallet_t *w = op->w;
    /* (mint, y) order; op->request = mint and op->quote = last Y of the previous batch */
    sqlite3_stmt *st;
    char url[CASHU_MINT_URL_MAX + 1] = "";
    if (db_query(
            w, &st,
            "SELECT mint FROM proofs WHERE state='sent' AND (mint > ?1 OR (mint = ?1 AND y > ?2)) "
            "ORDER BY mint, y LIMIT 1",
            "tt", op->request, op->quote) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW) snprintf(url, sizeof url, "%s", col_text(st, 0));
        sqlite3_finalize(st);
    }
    if (!url[0]) {
        op->idx = op->nrec; /* done */
        return recover_next(op);
    }
    if (strcmp(url, op->request) != 0) op->quote[0] = 0; /* a new mint: from its first Y */
    snprintf(op->request, sizeof op->request, "%s", url);
    mintc_t *mc = mint_get(w, url, 1);
    if (!mc ||
        db_query(w, &st,
                 "SELECT y FROM proofs WHERE mint=? AND state='sent' AND y > ? ORDER BY y LIMIT ?",
                 "tti", url, op->quote, (int64_t)mc->max_inputs)) {
        snprintf(op->quote, sizeof op->quote, "~"); /* skip this mint */
        return sent_refresh(op);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *ys = cJSON_AddArrayToObject(body, "Ys");
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON_AddItemToArray(ys, cJSON_CreateString(col_text(st, 0)));
        snprintf(op->quote, sizeof op->quote, "%s", col_text(st, 0));
    }
    sqlite3_finalize(st);
    int rc = cashu_mint_post(mc->api, "/v1/checkstate", body, 0, sent_checked, op);
    cJSON_Delete(body);
    if (rc) sent_refresh(op);
}

static void recover_one_done(rec_t *r, int err) {
    op_t *op = r->parent;
    tmp_op_free(r->op);
    op->live_rec = NULL;
    free(r);
    if (!err || err == CASHU_ESPENT || err == CASHU_EMINT)
        op->res.recovered++; /* resolved */
    else if (err == COMMON_EAGAIN)
        op->amount2++; /* still open */
    else if (!op->res.err)
        op->res.err = err;
    recover_next(op);
}

static void recover_next(op_t *op) {
    cashu_wallet_t *w = op->w;
    while (!op->step && op->idx < op->nrec) {
        int64_t id = op->rec_ids[op->idx++];
        rec_t *r = calloc(1, sizeof *r);
        op_t *tmp = calloc(1, sizeof *tmp);
        if (!r || !tmp) {
            free(r);
            free(tmp);
            return op_finish(op, COMMON_ENOMEM, NULL);
        }
        tmp->w = w;
        char kind[16];
        int rc = load_op(w, id, tmp, r->quote, sizeof r->quote, kind, sizeof kind);
        if (rc) {
            free(tmp);
            free(r);
            continue;
        }
        tmp->kind = "recover";
        r->w = w;
        r->mc = tmp->mc;
        r->op = tmp;
        r->parent = op;
        r->done = recover_one_done;
        op->live_rec = r;
        snprintf(r->kind, sizeof r->kind, "%s", kind);
        /* keysets are needed to unblind restored signatures: use the cache (loaded at mint_get) */
        rec_start(r);
        return;
    }
    if (!op->step) {
        op->step = 1;
        return sent_refresh(op);
    }
    int err = op->res.err;
    op->res.err = 0;
    if (op->amount2)
        return op_finish(op, err ? err : 0,
                         "%zu resolved, %llu still open (mint unreachable or quote unpaid)",
                         op->res.recovered, (unsigned long long)op->amount2);
    op_finish(op, err, "%zu resolved", op->res.recovered);
}

int cashu_wallet_recover(cashu_wallet_t *w, cashu_wallet_cb cb, void *ud) {
    op_t *op = op_new(w, NULL, "recover", cb, ud);
    if (!op) return COMMON_ENOMEM;
    sqlite3_stmt *st;
    int rc = db_query(w, &st, "SELECT id FROM ops WHERE state IN ('open','quote') ORDER BY id", "");
    if (rc) {
        op_finish(op, rc, NULL);
        return 0;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t *n = realloc(op->rec_ids, (op->nrec + 1) * sizeof *n);
        if (!n) break;
        op->rec_ids = n;
        op->rec_ids[op->nrec++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    recover_next(op);
    return 0;
}
