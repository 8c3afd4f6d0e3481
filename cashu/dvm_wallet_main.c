/* SPDX-License-Identifier: MIT */
/* dvm-wallet: the Cashu wallet on the command line (a thin driver of cashu_wallet.h on one
 * libuv loop). Every command that talks to a mint first resolves open operations left by a
 * crash (restore + checkstate), so a killed run never loses sats. */
#include <cjson/cJSON.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cashu/cashu_wallet.h"
#include "common/common_codec.h"
#include "common/common_err.h"
#include "common/common_fs.h"
#include "common/common_http.h"
#include "common/common_prog.h"

enum { EXIT_MINT = 3, EXIT_FUNDS = 4, EXIT_TOKEN = 5, EXIT_PENDING = 6 };

static const common_opt_t opts[] = {
    COMMON_OPTS_STANDARD,
    {"mint", "DVM_MINT", COMMON_OPT_STR, NULL, 0, 0, "URL",
     "mint URL (required by mint/send/receive/claim/refund/melt)"},
    {"json", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL, "print results as one JSON object"},
    {"lock", NULL, COMMON_OPT_STR, NULL, 0, 0, "PUBKEY", "send: P2PK-lock to this 33-byte hex key"},
    {"locktime", NULL, COMMON_OPT_U64, "0", 0, 0, "S",
     "send: locktime, seconds from now (or a unix time ≥ 1e9); refund key = ours"},
    {"format", NULL, COMMON_OPT_STR, "v4", 0, 0, "V",
     "send: token format v4 (cashuB) or v3 (cashuA)"},
    {"count", NULL, COMMON_OPT_U64, "1", 1, 1000, "N",
     "send: prepare N tokens of AMOUNT in one swap"},
    {"wait", NULL, COMMON_OPT_U64, "600", 0, 86400, "S",
     "mint: wait at most S seconds for payment"},
    {"no-qr", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL,
     "mint: do not draw the invoice as a QR code"},
    {"accept-mint", NULL, COMMON_OPT_LIST, NULL, 0, 0, "URL",
     "accept/receive: accepted mints (default: --mint)"},
    {"require-lock", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL,
     "accept: proofs must be locked to our key"},
    {"min-locktime", NULL, COMMON_OPT_U64, "0", 0, 0, "S",
     "accept: required locktime margin (seconds)"},
    {"timeout", NULL, COMMON_OPT_U64, "30000", 100, 3600000, "MS", "per mint request timeout"},
};

typedef struct app {
    uv_loop_t *loop;
    common_env_t env;
    common_http_t *http;
    cashu_wallet_t *w;
    const char *cmd;
    const char *arg;
    const char *mint;
    common_cfg_t *cfg;
    int json;
    int exit_code;
    int step;
    uint64_t amount;
    char quote[128];
    uint64_t deadline;
    uv_timer_t poll;
    uint64_t polls;
    const char *mints[17]; /* accepted mints (policy; lives as long as the app) */
} app_t;

static int exit_for(int err) {
    switch (err) {
    case 0: return 0;
    case CASHU_EFUNDS: return EXIT_FUNDS;
    case CASHU_EMINT:
    case CASHU_ESPENT:
    case CASHU_EMINT_UNREACHABLE: return EXIT_MINT;
    case CASHU_EREPLAY:
    case CASHU_EMINT_NOT_ACCEPTED:
    case CASHU_ENOT_LOCKED:
    case CASHU_EBAD_TOKEN:
    case CASHU_EDLEQ:
    case CASHU_EKEYSET:
    case CASHU_EUNIT: return EXIT_TOKEN;
    default: return 1;
    }
}

static void print_result(app_t *a, const cashu_result_t *r) {
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        char num[24];
        cJSON_AddStringToObject(o, "command", a->cmd);
        cJSON_AddBoolToObject(o, "ok", r->err == 0);
        if (r->err) {
            cJSON_AddStringToObject(o, "error", common_err_name(r->err));
            if (r->mint_code) cJSON_AddNumberToObject(o, "mint_code", r->mint_code);
        }
        cJSON_AddStringToObject(o, "detail", r->detail);
        snprintf(num, sizeof num, "%llu", (unsigned long long)r->amount);
        cJSON_AddItemToObject(o, "amount", cJSON_CreateRaw(num));
        snprintf(num, sizeof num, "%llu", (unsigned long long)r->fee);
        cJSON_AddItemToObject(o, "fee", cJSON_CreateRaw(num));
        if (r->ntokens) {
            cJSON *t = cJSON_AddArrayToObject(o, "tokens");
            for (size_t i = 0; i < r->ntokens; i++)
                cJSON_AddItemToArray(t, cJSON_CreateString(r->tokens[i]));
        }
        if (r->state) cJSON_AddStringToObject(o, "state", r->state);
        if (!strcmp(a->cmd, "check")) cJSON_AddNumberToObject(o, "recovered", (double)r->recovered);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
        return;
    }
    if (r->err) {
        fprintf(stderr, "dvm-wallet %s: %s: %s\n", a->cmd, common_strerror(r->err), r->detail);
        return;
    }
    for (size_t i = 0; i < r->ntokens; i++) printf("%s\n", r->tokens[i]);
    if (!strcmp(a->cmd, "send")) {
        fprintf(stderr, "sent %llu sat (fee %llu)\n", (unsigned long long)r->amount,
                (unsigned long long)r->fee);
    } else if (!strcmp(a->cmd, "check")) {
        printf("%s\n", r->detail);
    } else {
        printf("%s: %llu sat (fee %llu)%s%s\n", a->cmd, (unsigned long long)r->amount,
               (unsigned long long)r->fee, r->detail && strcmp(r->detail, "ok") ? " - " : "",
               r->detail && strcmp(r->detail, "ok") ? r->detail : "");
    }
}

static void finish(app_t *a, const cashu_result_t *r) {
    print_result(a, r);
    fflush(stdout);
    a->exit_code = exit_for(r->err);
    uv_stop(a->loop); /* idle keep-alive connections must not keep the process waiting */
}

static void draw_qr(const char *text) {
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 0);
    if (!q) return;
    /* two modules per character row using half blocks; quiet zone of 2 */
    int n = q->width, qz = 2;
    for (int y = -qz; y < n + qz; y += 2) {
        for (int x = -qz; x < n + qz; x++) {
            int top = (y >= 0 && y < n && x >= 0 && x < n) ? q->data[y * n + x] & 1 : 0;
            int bot =
                (y + 1 >= 0 && y + 1 < n && x >= 0 && x < n) ? q->data[(y + 1) * n + x] & 1 : 0;
            fputs(top && bot ? " "
                  : top      ? "\xe2\x96\x84"
                  : bot      ? "\xe2\x96\x80"
                             : "\xe2\x96\x88",
                  stderr);
        }
        fputc('\n', stderr);
    }
    QRcode_free(q);
}

static void on_mint_poll(void *ud, const cashu_result_t *r);

static void poll_tick(uv_timer_t *t) {
    app_t *a = t->data;
    int rc = cashu_wallet_mint_finish(a->w, a->mint, a->quote, on_mint_poll, a);
    if (rc) {
        fprintf(stderr, "dvm-wallet mint: %s\n", common_strerror(rc));
        a->exit_code = exit_for(rc);
    }
}

static void on_mint_poll(void *ud, const cashu_result_t *r) {
    app_t *a = ud;
    if (r->err) return finish(a, r);
    if (r->state && !strcmp(r->state, "ISSUED") && r->amount) {
        if (!a->json) fprintf(stderr, "\npaid\n");
        return finish(a, r);
    }
    if (common_now_ms(&a->env) >= a->deadline) {
        cashu_result_t x = *r;
        x.err = COMMON_ETIMEDOUT;
        x.detail = "not paid in time; the quote is kept: run `dvm-wallet check` after paying";
        finish(a, &x);
        a->exit_code = EXIT_PENDING;
        return;
    }
    if (!a->json) {
        fprintf(stderr, "\rwaiting for payment%.*s   ", (int)(a->polls++ % 4), "...");
        fflush(stderr);
    }
    uv_timer_start(&a->poll, poll_tick, 1000, 0);
}

static void on_quote(void *ud, const cashu_result_t *r) {
    app_t *a = ud;
    if (r->err) return finish(a, r);
    snprintf(a->quote, sizeof a->quote, "%s", r->quote);
    if (a->json) {
        printf("{\"command\":\"mint-quote\",\"quote\":\"%s\",\"request\":\"%s\",\"amount\":%llu}\n",
               r->quote, r->request, (unsigned long long)r->amount);
        fflush(stdout);
    } else {
        fprintf(stderr, "Pay this Lightning invoice (%llu sat):\n%s\n",
                (unsigned long long)r->amount, r->request);
        if (!common_cfg_bool(a->cfg, "no-qr")) draw_qr(r->request);
    }
    a->deadline = common_now_ms(&a->env) + common_cfg_u64(a->cfg, "wait") * 1000;
    uv_timer_start(&a->poll, poll_tick, 0, 0);
}

static void on_send(void *ud, const cashu_result_t *r) {
    app_t *a = ud;
    if (!r->err)
        for (size_t i = 0; i < r->ntokens; i++) cashu_wallet_mark_sent(a->w, r->bundle_ids[i]);
    finish(a, r);
}

static void on_done(void *ud, const cashu_result_t *r) {
    finish(ud, r);
}

static void run_command(app_t *a);

static size_t policy_mints(app_t *a) {
    char *const *accept = NULL;
    size_t nacc = common_cfg_list(a->cfg, "accept-mint", &accept);
    memset(a->mints, 0, sizeof a->mints);
    for (size_t i = 0; i < nacc && i < 16; i++) a->mints[i] = accept[i];
    if (nacc == 0) a->mints[0] = a->mint;
    return nacc;
}

static void on_recovered(void *ud, const cashu_result_t *r) {
    app_t *a = ud;
    if (!strcmp(a->cmd, "check")) return finish(a, r);
    if (r->recovered && !a->json)
        fprintf(stderr, "dvm-wallet: recovered %zu interrupted operation(s)\n", r->recovered);
    run_command(a);
}

static int need_amount(app_t *a, uint64_t *amt) {
    if (!a->arg || common_parse_u64(a->arg, 1, INT64_MAX, amt)) {
        fprintf(stderr, "dvm-wallet %s: AMOUNT must be a whole number of sats ≥ 1\n", a->cmd);
        a->exit_code = COMMON_EXIT_USAGE;
        return -1;
    }
    return 0;
}

static void fail_now(app_t *a, int rc) {
    fprintf(stderr, "dvm-wallet %s: %s\n", a->cmd, common_strerror(rc));
    a->exit_code = exit_for(rc);
    uv_stop(a->loop);
}

static void run_command(app_t *a) {
    int rc = 0;
    uint64_t amt;
    size_t nacc = policy_mints(a);
    cashu_policy_t pol = {a->mints, common_cfg_bool(a->cfg, "require-lock"),
                          common_cfg_u64(a->cfg, "min-locktime"), 1};
    if (!strcmp(a->cmd, "mint")) {
        if (need_amount(a, &amt)) return;
        rc = cashu_wallet_mint_quote(a->w, a->mint, amt, on_quote, a);
    } else if (!strcmp(a->cmd, "send")) {
        if (need_amount(a, &amt)) return;
        uint8_t lock[33];
        const char *lk = common_cfg_str(a->cfg, "lock");
        uint64_t lt = common_cfg_u64(a->cfg, "locktime");
        if (lk && (strlen(lk) != 66 || common_hex_decode_exact(lk, lock, 33))) {
            fprintf(stderr,
                    "dvm-wallet send: --lock must be a 33-byte compressed public key in hex\n");
            a->exit_code = COMMON_EXIT_USAGE;
            return;
        }
        if (lt && lt < 1000000000) lt += common_unix_ms(&a->env) / 1000;
        rc = cashu_wallet_prepare(a->w, a->mint, common_cfg_u64(a->cfg, "count"), amt,
                                  lk ? lock : NULL, lt, on_send, a);
    } else if (!strcmp(a->cmd, "receive")) {
        if (!a->arg) {
            fprintf(stderr, "dvm-wallet receive: TOKEN required\n");
            a->exit_code = COMMON_EXIT_USAGE;
            return;
        }
        pol.require_dleq = 0; /* online swap: DLEQ is verified when present */
        rc = cashu_wallet_receive(a->w, a->arg, nacc || a->mint ? &pol : NULL, on_done, a);
    } else if (!strcmp(a->cmd, "claim")) {
        rc = cashu_wallet_claim(a->w, a->mint, on_done, a);
    } else if (!strcmp(a->cmd, "refund")) {
        rc = cashu_wallet_refund(a->w, a->mint, on_done, a);
    } else if (!strcmp(a->cmd, "melt")) {
        if (!a->arg) {
            fprintf(stderr, "dvm-wallet melt: BOLT11 invoice required\n");
            a->exit_code = COMMON_EXIT_USAGE;
            return;
        }
        rc = cashu_wallet_melt(a->w, a->mint, a->arg, on_done, a);
    } else if (!strcmp(a->cmd, "load")) {
        rc = cashu_wallet_load_mint(a->w, a->mint, on_done, a);
    }
    if (rc) fail_now(a, rc);
}

static void on_loaded_for_accept(void *ud, const cashu_result_t *r) {
    app_t *a = ud;
    if (r->err) return finish(a, r);
    size_t nacc = policy_mints(a);
    cashu_policy_t pol = {a->mints, common_cfg_bool(a->cfg, "require-lock"),
                          common_cfg_u64(a->cfg, "min-locktime"), 1};
    (void)nacc;
    uint64_t amt = 0;
    int rc = cashu_wallet_accept_offline(a->w, a->arg, &pol, &amt);
    cashu_result_t x = {.err = rc,
                        .amount = amt,
                        .detail = rc ? common_strerror(rc) : "verified offline; pending claim"};
    finish(a, &x);
}

/* verify FILE: offline verification of every token in FILE (one per line), nothing recorded.
 * Used by scripts/bench/verify.sh; prints {n_tokens, n_proofs, bad, seconds, proofs_per_sec}. */
static void on_loaded_for_verify(void *ud, const cashu_result_t *r) {
    app_t *a = ud;
    if (r->err) return finish(a, r);
    policy_mints(a);
    cashu_policy_t pol = {a->mints, common_cfg_bool(a->cfg, "require-lock"),
                          common_cfg_u64(a->cfg, "min-locktime"), 1};
    FILE *f = fopen(a->arg, "r");
    if (!f) {
        fprintf(stderr, "dvm-wallet verify: cannot open %s\n", a->arg);
        a->exit_code = 1;
        uv_stop(a->loop);
        return;
    }
    size_t cap = 0, ntok = 0, nproofs = 0, bad = 0;
    char *line = NULL;
    ssize_t len;
    /* read everything first: the timing covers decode + DLEQ + P2PK checks only */
    char **toks = NULL;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        char **nt = realloc(toks, (ntok + 1) * sizeof *nt);
        if (!nt) break;
        toks = nt;
        toks[ntok++] = strdup(line);
    }
    free(line);
    fclose(f);
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < ntok; i++) {
        size_t np = 0;
        uint64_t amt;
        if (cashu_wallet_verify_offline(a->w, toks[i], &pol, &amt, &np)) bad++;
        nproofs += np;
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    for (size_t i = 0; i < ntok; i++) free(toks[i]);
    free(toks);
    printf("{\"n_tokens\":%zu,\"n_proofs\":%zu,\"bad\":%zu,\"seconds\":%.6f,\"proofs_per_sec\":%."
           "1f}\n",
           ntok, nproofs, bad, secs, secs > 0 ? (double)nproofs / secs : 0.0);
    a->exit_code = bad ? 5 : 0;
    uv_stop(a->loop);
}

static void print_history(void *ud, int64_t id, const char *kind, const char *state,
                          const char *mint, uint64_t amount, uint64_t fee, uint64_t created,
                          const char *detail) {
    app_t *a = ud;
    if (a->json) {
        printf("{\"id\":%lld,\"kind\":\"%s\",\"state\":\"%s\",\"amount\":%llu,\"fee\":%llu,"
               "\"created_ms\":%llu}\n",
               (long long)id, kind, state, (unsigned long long)amount, (unsigned long long)fee,
               (unsigned long long)created);
    } else {
        printf("%5lld %-8s %-7s %8llu sat fee %llu  %s%s%s\n", (long long)id, kind, state,
               (unsigned long long)amount, (unsigned long long)fee, mint, detail ? "  " : "",
               detail ? detail : "");
    }
}

int main(int argc, char **argv) {
    static const common_prog_desc_t desc = {
        .name = "dvm-wallet",
        .usage = "dvm-wallet [options] COMMAND [ARG]",
        .description =
            "Cashu wallet (sat). Commands:\n"
            "  balance            spendable / reserved / sent / incoming / pending sats\n"
            "  mint AMOUNT        get a Lightning invoice (shown as a QR code), wait, mint\n"
            "  send AMOUNT        print a cashuB token (--lock PUBKEY --locktime S to P2PK-lock)\n"
            "  receive TOKEN      swap a token into this wallet\n"
            "  accept TOKEN       verify a locked token offline (DLEQ, lock, replay) and keep it "
            "for claim\n"
            "  verify FILE        verify every token of FILE offline (one per line), record "
            "nothing\n"
            "  claim              swap every accepted incoming token (one swap per mint batch)\n"
            "  refund             reclaim our locked tokens whose locktime has passed\n"
            "  melt BOLT11        pay a Lightning invoice\n"
            "  history            past operations\n"
            "  check              resolve interrupted operations with the mint\n"
            "  pubkey             our P2PK public key (lock payments to us with it)",
        .opts = opts,
        .nopts = sizeof opts / sizeof opts[0],
        .epilog = "Exit status: 0 ok, 1 internal error, 2 usage, 3 mint error or unreachable,\n"
                  "4 insufficient funds, 5 token refused, 6 still pending (not paid in time).",
    };
    common_cfg_t cfg;
    common_log_t log;
    int code;
    if (common_prog_start(&desc, argc, argv, &cfg, &log, &code)) return code;
    app_t a;
    memset(&a, 0, sizeof a);
    a.cfg = &cfg;
    a.json = common_cfg_bool(&cfg, "json");
    if (cfg.npos < 1) {
        fprintf(stderr, "dvm-wallet: COMMAND required (try --help)\n");
        common_cfg_free(&cfg);
        return COMMON_EXIT_USAGE;
    }
    a.cmd = cfg.pos[0];
    a.arg = cfg.npos > 1 ? cfg.pos[1] : NULL;
    a.mint = common_cfg_str(&cfg, "mint");
    static const char *const cmds[] = {"balance", "mint",   "send",   "receive", "accept",
                                       "claim",   "refund", "melt",   "history", "check",
                                       "pubkey",  "load",   "verify", NULL};
    int known = 0;
    for (const char *const *c = cmds; *c; c++) known |= !strcmp(*c, a.cmd);
    if (!known) {
        fprintf(stderr, "dvm-wallet: unknown command '%s' (try --help)\n", a.cmd);
        common_cfg_free(&cfg);
        return COMMON_EXIT_USAGE;
    }
    int needs_mint = strcmp(a.cmd, "balance") && strcmp(a.cmd, "history") &&
                     strcmp(a.cmd, "check") && strcmp(a.cmd, "pubkey") && strcmp(a.cmd, "receive");
    if (needs_mint && !a.mint) {
        fprintf(stderr, "dvm-wallet %s: --mint URL is required\n", a.cmd);
        common_cfg_free(&cfg);
        return COMMON_EXIT_USAGE;
    }
    char dir[1024], dbp[1100], keyp[1100];
    int rc = common_datadir(common_cfg_str(&cfg, "data-dir"), "wallet", dir, sizeof dir);
    if (!rc) rc = common_path_join(dbp, sizeof dbp, dir, "wallet.sqlite");
    if (!rc) rc = common_path_join(keyp, sizeof keyp, dir, "wallet.key");
    if (rc) {
        fprintf(stderr, "dvm-wallet: data directory: %s\n", common_strerror(rc));
        common_cfg_free(&cfg);
        return 1;
    }
    a.loop = uv_default_loop();
    common_env_default(&a.env, a.loop, &log);
    a.http = common_http_new(a.loop, &a.env, &rc);
    if (a.http) {
        const char *fmt = common_cfg_str(&cfg, "format");
        cashu_wallet_opts_t wo = {.db_path = dbp,
                                  .key_path = keyp,
                                  .timeout_ms = common_cfg_u64(&cfg, "timeout"),
                                  .token_v3 = fmt && !strcmp(fmt, "v3")};
        rc = cashu_wallet_open(a.loop, a.http, &a.env, &wo, &a.w);
    }
    if (rc) {
        fprintf(stderr, "dvm-wallet: cannot open the wallet in %s: %s\n", dir, common_strerror(rc));
        if (a.http) common_http_free(a.http);
        uv_run(a.loop, UV_RUN_DEFAULT);
        common_cfg_free(&cfg);
        return 1;
    }
    uv_timer_init(a.loop, &a.poll);
    a.poll.data = &a;
    if (!strcmp(a.cmd, "balance")) {
        cashu_balance_t b;
        rc = cashu_wallet_balance(a.w, a.mint, &b);
        if (rc)
            fail_now(&a, rc);
        else if (a.json)
            printf("{\"unspent\":%llu,\"reserved\":%llu,\"sent\":%llu,\"incoming\":%llu,"
                   "\"pending\":%llu}\n",
                   (unsigned long long)b.unspent, (unsigned long long)b.reserved,
                   (unsigned long long)b.sent, (unsigned long long)b.incoming,
                   (unsigned long long)b.pending);
        else
            printf("spendable %llu sat\nreserved  %llu sat (prepared, not handed out)\nsent      "
                   "%llu sat (locked, refundable after locktime if unclaimed)\nincoming  %llu sat "
                   "(accepted, to claim)\npending   %llu sat (interrupted operations: run check)\n",
                   (unsigned long long)b.unspent, (unsigned long long)b.reserved,
                   (unsigned long long)b.sent, (unsigned long long)b.incoming,
                   (unsigned long long)b.pending);
    } else if (!strcmp(a.cmd, "history")) {
        rc = cashu_wallet_history(a.w, 100, print_history, &a);
        if (rc) fail_now(&a, rc);
    } else if (!strcmp(a.cmd, "pubkey")) {
        char h[67];
        common_hex_encode(cashu_wallet_pubkey(a.w), 33, h);
        printf("%s\n", h);
    } else if (!strcmp(a.cmd, "verify")) {
        if (!a.arg) {
            fprintf(stderr, "dvm-wallet verify: FILE required\n");
            a.exit_code = COMMON_EXIT_USAGE;
        } else if ((rc = cashu_wallet_load_mint(a.w, a.mint, on_loaded_for_verify, &a))) {
            fail_now(&a, rc);
        }
    } else if (!strcmp(a.cmd, "accept")) {
        if (!a.arg) {
            fprintf(stderr, "dvm-wallet accept: TOKEN required\n");
            a.exit_code = COMMON_EXIT_USAGE;
        } else if ((rc = cashu_wallet_load_mint(a.w, a.mint, on_loaded_for_accept, &a))) {
            fail_now(&a, rc);
        }
    } else {
        if (!strcmp(a.cmd, "receive") && a.arg && !a.mint) {
            /* no --mint: the token's mint is used, and any mint is accepted */
        }
        rc = cashu_wallet_recover(a.w, on_recovered, &a);
        if (rc) fail_now(&a, rc);
    }
    uv_run(a.loop, UV_RUN_DEFAULT);
    cashu_wallet_free(a.w);
    common_http_free(a.http);
    uv_close((uv_handle_t *)&a.poll, NULL);
    uv_run(a.loop, UV_RUN_DEFAULT);
    uv_loop_close(a.loop);
    common_cfg_free(&cfg);
    return a.exit_code;
}
