/* SPDX-License-Identifier: MIT */
/* dvm-customer: buys one streamed job from a provider, pays per cycle from a budget, prints
 * only the generated text on stdout (status on stderr, or NDJSON events with --json). */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/common_err.h"
#include "common/common_fs.h"
#include "common/common_prog.h"
#include "dht/dht_swarm.h"
#include "customer/customer_pay.h"
#include "customer/customer_pay_cashu.h"
#include "cashu/cashu_wallet.h"
#include "common/common_http.h"
#include "customer/customer_run.h"
#include "customer/customer_tcp.h"
#include "customer/customer_swarm.h"
#include "dht/dht_identity.h"
#include "protocol/proto_joinlink.h"

#define MAX_PROMPT (64u * 1024u)

static const common_opt_t opts[] = {
    COMMON_OPTS_STANDARD,
    {"kind", "DVM_KIND", COMMON_OPT_U64, "5100", 0, PROTO_MAX_KIND, "N", "job kind"},
    {"budget", "BUDGET_SATS", COMMON_OPT_U64, "100", 1, PROTO_MAX_INT, "SATS", "total budget"},
    {"max-price", "MAX_SATS_PER_CHUNK", COMMON_OPT_U64, "5", 1, PROTO_MAX_INT, "SATS",
     "highest sats per chunk accepted"},
    {"mint", "CASHU_MINT_URL", COMMON_OPT_STR, "https://nofee.testnut.cashu.space", 0, 0, "URL",
     "our mint (the provider must accept it)"},
    {"peer", "DVM_PEER", COMMON_OPT_LIST, NULL, 0, 0, "HOST:PORT",
     "connect directly (secret-stream over TCP); repeat for fallback providers"},
    {"join", "DVM_JOIN", COMMON_OPT_STR, NULL, 0, 0, "LINK",
     "dvm://<kind>/<topic>?pk=..&name=.. join link: connect to that provider"},
    DHT_SWARM_NET_OPTS,
    {"discover-timeout", "DVM_DISCOVER_TIMEOUT", COMMON_OPT_U64, "30000", 100, 3600000, "MS",
     "give up when no provider is found on the topic this long"},
    {"json", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL, "status as NDJSON events on stderr"},
    {"idle-timeout", "DVM_IDLE_TIMEOUT", COMMON_OPT_U64, "30000", 100, 86400000, "MS",
     "give up on a provider silent this long"},
    {"model", NULL, COMMON_OPT_STR, NULL, 0, 0, "NAME", "ask for a model (request params)"},
    {"max-tokens", NULL, COMMON_OPT_U64, NULL, 1, 1000000, "N", "ask for at most N tokens"},
    {"system", NULL, COMMON_OPT_STR, NULL, 0, 0, "TEXT", "system prompt (request params)"},
    {"seed", NULL, COMMON_OPT_U64, NULL, 0, PROTO_MAX_INT, "N", "sampling seed (request params)"},
};

static const char *EPILOG =
    "Prompt: the arguments, joined by spaces; '-' or no argument with a pipe reads stdin.\n"
    "Exit status: 0 complete, 1 internal error, 2 usage, 3 no provider, 4 price above "
    "--max-price, 5 budget exhausted before completion (partial output printed), 6 mint/payment "
    "failure, 7 provider error, 130 interrupted (SIGINT; partial output printed).";

typedef struct app {
    uv_loop_t *loop;
    common_log_t *log;
    int json;
    uint64_t budget;
    int exit_code;
    uint64_t t0, chunks;
    customer_t *cu;
    uv_signal_t sigint, sigterm;
    char provider[17];
    uint64_t spc, cpp;
    customer_pay_t *pay;
    cashu_wallet_t *wallet;
    common_http_t *http;
    uv_timer_t fin;
    customer_swarm_dialer_t *swd;
} app_t;

/* After the job: wait for the wallet (release of unsent micro-tokens), then close it. */
static void on_fin(uv_timer_t *t) {
    app_t *a = t->data;
    if (customer_pay_cashu_outstanding(a->pay) > 0) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    if (a->swd) {
        customer_swarm_close(a->swd, NULL, NULL);
        a->swd = NULL;
    }
    a->pay->ops->close(a->pay->self);
    cashu_wallet_free(a->wallet);
    a->wallet = NULL;
    common_http_free(a->http);
    a->http = NULL;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void on_output(void *ud, const char *d, size_t n) {
    app_t *a = ud;
    a->chunks++;
    fwrite(d, 1, n, stdout);
    fflush(stdout);
}

static void on_note(void *ud, const customer_note_t *n) {
    app_t *a = ud;
    FILE *f = stderr;
    double secs = (double)(uv_now(a->loop) - a->t0) / 1000.0;
    if (a->json) {
        switch (n->kind) {
        case CUSTOMER_N_CONNECTED:
            fprintf(f, "{\"event\":\"connected\",\"provider\":");
            json_str(f, n->text);
            fprintf(f, "}\n");
            break;
        case CUSTOMER_N_OFFER:
            fprintf(f,
                    "{\"event\":\"offer\",\"sats_per_chunk\":%llu,\"chunks_per_payment\":%llu,"
                    "\"locked\":%s}\n",
                    (unsigned long long)n->a, (unsigned long long)n->b, n->code ? "true" : "false");
            break;
        case CUSTOMER_N_TOKENS:
            fprintf(f, "{\"event\":\"tokens\",\"count\":%llu,\"sats_each\":%llu}\n",
                    (unsigned long long)n->a, (unsigned long long)n->b);
            break;
        case CUSTOMER_N_PAYMENT:
            fprintf(f, "{\"event\":\"payment\",\"spent\":%llu,\"budget\":%llu}\n",
                    (unsigned long long)n->a, (unsigned long long)n->b);
            break;
        case CUSTOMER_N_ACK:
            fprintf(f, "{\"event\":\"ack\",\"amount\":%llu}\n", (unsigned long long)n->a);
            break;
        case CUSTOMER_N_ERROR:
            fprintf(f, "{\"event\":\"error\",\"code\":");
            json_str(f, proto_error_code_name((proto_error_code_t)n->code)
                            ? proto_error_code_name((proto_error_code_t)n->code)
                            : "");
            fprintf(f, ",\"message\":");
            json_str(f, n->text);
            fprintf(f, "}\n");
            break;
        case CUSTOMER_N_RESULT:
            fprintf(f, "{\"event\":\"result\",\"total_sats\":%llu,\"chunks\":%llu}\n",
                    (unsigned long long)n->a, (unsigned long long)n->b);
            break;
        case CUSTOMER_N_FALLBACK:
            fprintf(f, "{\"event\":\"fallback\",\"why\":");
            json_str(f, n->text);
            fprintf(f, "}\n");
            break;
        case CUSTOMER_N_DONE:
            fprintf(f, "{\"event\":\"done\",\"exit\":%d,\"outcome\":", n->code);
            json_str(f, n->text);
            fprintf(f, ",\"spent\":%llu,\"budget\":%llu,\"chunks\":%llu,\"seconds\":%.3f}\n",
                    (unsigned long long)n->a, (unsigned long long)a->budget,
                    (unsigned long long)n->b, secs);
            break;
        default: break;
        }
        fflush(f);
        return;
    }
    switch (n->kind) {
    case CUSTOMER_N_CONNECTED:
        snprintf(a->provider, sizeof a->provider, "%s", n->text ? n->text : "");
        break;
    case CUSTOMER_N_OFFER:
        a->spc = n->a;
        a->cpp = n->b;
        fprintf(f, "[dvm] provider %s: %llu sat/chunk, %llu chunks per payment%s\n", a->provider,
                (unsigned long long)n->a, (unsigned long long)n->b, n->code ? ", locked" : "");
        break;
    case CUSTOMER_N_PAYMENT:
        LOG_DEBUG(a->log, "customer", "paid %llu/%llu sats", (unsigned long long)n->a,
                  (unsigned long long)n->b);
        break;
    case CUSTOMER_N_ERROR:
        fprintf(f, "\n[dvm] provider error (%s): %s\n",
                proto_error_code_name((proto_error_code_t)n->code)
                    ? proto_error_code_name((proto_error_code_t)n->code)
                    : "-",
                n->text ? n->text : "");
        break;
    case CUSTOMER_N_FALLBACK: fprintf(f, "\n[dvm] trying another provider (%s)\n", n->text); break;
    case CUSTOMER_N_DONE:
        fprintf(f, "\n[dvm] %s: %llu/%llu sats spent, %llu chunks in %.1fs (%.1f chunks/s)\n",
                n->text ? n->text : "", (unsigned long long)n->a, (unsigned long long)a->budget,
                (unsigned long long)n->b, secs, secs > 0 ? (double)n->b / secs : 0.0);
        break;
    default: break;
    }
    fflush(f);
}

static void on_done(void *ud, int code) {
    app_t *a = ud;
    a->exit_code = code;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_timer_start(&a->fin, on_fin, 0, 20);
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    app_t *a = s->data;
    customer_stop(a->cu);
}

static int read_stdin(common_buf_t *b) {
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, stdin)) > 0) {
        if (b->len + n > MAX_PROMPT) return COMMON_ETOOBIG;
        if (common_buf_append(b, tmp, n)) return COMMON_ENOMEM;
    }
    return 0;
}

int main(int argc, char **argv) {
    static common_prog_desc_t desc = {
        .name = "dvm-customer",
        .usage = "dvm-customer [options] [PROMPT... | -]",
        .description =
            "Customer: finds a provider on the Hyperswarm topic of the kind (or the one of "
            "--join LINK, or --peer HOST:PORT over TCP), checks the price, pays one micro-token "
            "per cycle from the budget, prints the text on stdout as it arrives.",
        .opts = opts,
        .nopts = sizeof opts / sizeof opts[0],
    };
    desc.epilog = EPILOG;
    common_cfg_t cfg;
    common_log_t log;
    int code;
    if (common_prog_start(&desc, argc, argv, &cfg, &log, &code)) return code;
    app_t a;
    memset(&a, 0, sizeof a);
    a.log = &log;
    int rc = CUSTOMER_EXIT_USAGE;
    common_buf_t prompt = {0};
    dht_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    customer_pay_t pay;
    memset(&pay, 0, sizeof pay);
    int use_stdin = (cfg.npos == 1 && !strcmp(cfg.pos[0], "-")) || (cfg.npos == 0 && !isatty(0));
    if (use_stdin) {
        int e = read_stdin(&prompt);
        if (e) {
            fprintf(stderr, "dvm-customer: stdin: %s\n", common_strerror(e));
            goto out;
        }
    } else {
        for (size_t i = 0; i < cfg.npos; i++) {
            if (i) common_buf_append(&prompt, " ", 1);
            common_buf_append(&prompt, cfg.pos[i], strlen(cfg.pos[i]));
        }
    }
    while (prompt.len &&
           (prompt.data[prompt.len - 1] == '\n' || prompt.data[prompt.len - 1] == '\r'))
        prompt.len--;
    if (prompt.len == 0 || prompt.len > MAX_PROMPT) {
        fprintf(stderr, "dvm-customer: give a prompt (arguments, '-' or a pipe); see --help\n");
        goto out;
    }
    common_buf_append(&prompt, "", 1); /* NUL */
    char *const *peers;
    size_t npeers = common_cfg_list(&cfg, "peer", &peers);
    const char *join = common_cfg_str(&cfg, "join");
    uint8_t join_pk[32];
    int has_join_pk = 0;
    uint32_t kind = (uint32_t)common_cfg_u64(&cfg, "kind");
    if (join) {
        proto_joinlink_t jl;
        char why[160];
        if (proto_joinlink_parse(join, &jl, why, sizeof why)) {
            fprintf(stderr, "dvm-customer: --join: %s\n", why);
            goto out;
        }
        if (common_cfg_source(&cfg, "kind") == COMMON_SRC_FLAG && jl.kind != kind) {
            fprintf(stderr, "dvm-customer: --join is for kind %u, not %u\n", jl.kind, kind);
            goto out;
        }
        kind = jl.kind;
        if (jl.has_pk) {
            memcpy(join_pk, jl.pk, 32);
            has_join_pk = 1;
        }
    }
    rc = CUSTOMER_EXIT_INTERNAL;
    a.loop = uv_default_loop();
    common_env_t env;
    common_env_default(&env, a.loop, &log);
    char datadir[1024];
    int e =
        common_datadir(common_cfg_str(&cfg, "data-dir"), "dvm-customer", datadir, sizeof datadir);
    if (!e) e = dht_identity_load_or_create(datadir, &env, &kp, NULL);
    if (e) {
        fprintf(stderr, "dvm-customer: identity: %s\n", common_strerror(e));
        goto out;
    }
    /* Payments: the Cashu wallet in the data directory (wallet.sqlite, wallet.key; fund it
     * with `dvm-wallet --data-dir DIR --mint URL mint AMOUNT`). */
    char wdb[1200], wkey[1200];
    common_path_join(wdb, sizeof wdb, datadir, "wallet.sqlite");
    common_path_join(wkey, sizeof wkey, datadir, "wallet.key");
    cashu_wallet_opts_t wo = {.db_path = wdb, .key_path = wkey};
    a.http = common_http_new(a.loop, &env, &e);
    if (!a.http || (e = cashu_wallet_open(a.loop, a.http, &env, &wo, &a.wallet))) {
        fprintf(stderr, "dvm-customer: wallet in %s: %s\n", datadir, common_strerror(e));
        rc = CUSTOMER_EXIT_PAYMENT;
        goto out;
    }
    if ((e = customer_pay_cashu(a.loop, a.wallet, common_cfg_str(&cfg, "mint"), &pay))) goto out;
    a.pay = &pay;
    uv_timer_init(a.loop, &a.fin);
    a.fin.data = &a;
    proto_params_t params;
    memset(&params, 0, sizeof params);
    int has_params = 0;
    if (common_cfg_str(&cfg, "model"))
        params.model = (char *)common_cfg_str(&cfg, "model"), has_params = 1;
    if (common_cfg_str(&cfg, "system"))
        params.system = (char *)common_cfg_str(&cfg, "system"), has_params = 1;
    if (common_cfg_source(&cfg, "max-tokens") != COMMON_SRC_NONE) {
        params.has_max_tokens = 1;
        params.max_tokens = common_cfg_u64(&cfg, "max-tokens");
        has_params = 1;
    }
    if (common_cfg_source(&cfg, "seed") != COMMON_SRC_NONE) {
        params.has_seed = 1;
        params.seed = common_cfg_u64(&cfg, "seed");
        has_params = 1;
    }
    customer_cfg_t cc;
    memset(&cc, 0, sizeof cc);
    cc.kind = kind;
    cc.budget = a.budget = common_cfg_u64(&cfg, "budget");
    cc.max_sats_per_chunk = common_cfg_u64(&cfg, "max-price");
    cc.mint_url = common_cfg_str(&cfg, "mint");
    cc.idle_timeout_ms = common_cfg_u64(&cfg, "idle-timeout");
    cc.params = has_params ? &params : NULL;
    cc.input = (const char *)prompt.data;
    customer_tcp_dialer_t td = {
        .loop = a.loop, .env = &env, .kp = &kp, .peers = peers, .npeers = npeers};
    customer_dialer_t dl;
    if (npeers) {
        customer_tcp_dialer(&td, &dl);
    } else { /* Hyperswarm: the kind's topic, or the provider of the join link */
        char *const *boot;
        dht_swarm_opts_t so;
        memset(&so, 0, sizeof so);
        so.nbootstrap = common_cfg_list(&cfg, "bootstrap", &boot);
        so.bootstrap = so.nbootstrap ? boot : NULL;
        so.allow_local = common_cfg_bool(&cfg, "allow-local");
        so.host = common_cfg_str(&cfg, "swarm-host");
        uint8_t topic[32];
        proto_topic(kind, topic);
        a.swd = customer_swarm_new(a.loop, &env, &kp, &so, topic, has_join_pk ? join_pk : NULL,
                                   common_cfg_u64(&cfg, "discover-timeout"), &e);
        if (!a.swd) {
            fprintf(stderr, "dvm-customer: swarm: %s\n", common_strerror(e));
            goto out;
        }
        customer_swarm_dialer(a.swd, &dl);
    }
    a.json = common_cfg_bool(&cfg, "json");
    customer_sink_t sink = {on_output, on_note, on_done, &a};
    a.cu = customer_new(a.loop, &env, &cc, &pay, &dl, &sink, &e);
    if (!a.cu) {
        fprintf(stderr, "dvm-customer: %s\n", common_strerror(e));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(a.loop, &a.sigint);
    uv_signal_init(a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_update_time(a.loop);
    a.t0 = uv_now(a.loop);
    a.exit_code = -1;
    customer_start(a.cu);
    uv_run(a.loop, UV_RUN_DEFAULT);
    rc = a.exit_code < 0 ? CUSTOMER_EXIT_INTERNAL : a.exit_code;
out:
    if (a.swd) customer_swarm_close(a.swd, NULL, NULL); /* error path: not closed by on_fin */
    if (a.cu) customer_free(a.cu);
    if (a.wallet) { /* not reached through on_fin (error path) */
        pay.ops ? pay.ops->close(pay.self) : (void)0;
        cashu_wallet_free(a.wallet);
    }
    if (a.http) common_http_free(a.http);
    if (a.loop) {
        uv_run(a.loop, UV_RUN_DEFAULT);
        uv_loop_close(a.loop);
    }
    if (pay.ops) customer_pay_cashu_free(&pay);
    sodium_memzero(&kp, sizeof kp);
    common_buf_free(&prompt);
    common_cfg_free(&cfg);
    return rc;
}
