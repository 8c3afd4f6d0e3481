/* SPDX-License-Identifier: MIT */
/* dvm-agent: the provider. Sells LLM output chunk by chunk for Cashu on the kind's topic
 * (Hyperswarm discovery lands with the swarm module) and on --listen host:port (secret-stream
 * over TCP). See agent/README.md and dvm-protocol.md. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/agent_bench.h"
#include "agent/agent_gen.h"
#include "agent/agent_ledger.h"
#include "agent/agent_llm.h"
#include "agent/agent_pay.h"
#include "agent/agent_pay_cashu.h"
#include "agent/agent_pipe_setup.h"
#include "cashu/cashu_wallet.h"
#include "agent/agent_qr.h"
#include "agent/agent_server.h"
#include "agent/agent_tcp.h"
#include "agent/agent_swarm.h"
#include "common/common_net.h"
#include "common/common_err.h"
#include "common/common_fs.h"
#include "common/common_http.h"
#include "common/common_prog.h"
#include "dht/dht_swarm.h"
#include "dht/dht_identity.h"
#include "protocol/proto_joinlink.h"

#define AGENT_VERSION "swarmdvm-0.1"

static const common_opt_t opts[] = {
    COMMON_OPTS_STANDARD,
    {"kind", "DVM_KIND", COMMON_OPT_U64, "5100", 0, PROTO_MAX_KIND, "N", "job kind served"},
    {"agent", "AGENT", COMMON_OPT_STR, "dvm-agent", 0, 0, "NAME",
     "agent name (logs, join link, data directory)"},
    {"ollama-url", NULL, COMMON_OPT_STR, NULL, 0, 0, "URL", "alias of --llm-url"},
    AGENT_LLM_OPTS,
    {"max-jobs", "MAX_JOBS", COMMON_OPT_U64, "3", 1, 100000, "N",
     "concurrent jobs (capacity slots)"},
    {"sats-per-chunk", "SATS_PER_CHUNK", COMMON_OPT_U64, "1", 1, 1000000, "N",
     "price of one chunk"},
    {"chunks-per-payment", "CHUNKS_PER_PAYMENT", COMMON_OPT_U64, "10", 1, 100000, "N",
     "chunks unlocked per payment cycle"},
    {"payment-timeout", "PAYMENT_TIMEOUT", COMMON_OPT_U64, "30000", 1, 86400000, "MS",
     "wait for a payment before ending the job"},
    {"mint", "CASHU_MINT_URL", COMMON_OPT_LIST, "https://nofee.testnut.cashu.space", 0, 0, "URL",
     "accepted mint (the environment form is comma-separated)"},
    {"accept-unlocked", "ACCEPT_UNLOCKED", COMMON_OPT_STR, "swap", 0, 0, "POLICY",
     "plain (unlocked) tokens: swap (with the mint, default), peek (offline, provider's risk), "
     "reject"},
    {"min-locktime", "MIN_LOCKTIME", COMMON_OPT_U64, "3600", 60, 31536000, "S",
     "locked payments must stay locked this long"},
    {"max-input", "MAX_INPUT", COMMON_OPT_U64, "65536", 1, 1048576, "BYTES",
     "longest prompt accepted"},
    {"listen", "DVM_LISTEN", COMMON_OPT_STR, NULL, 0, 0, "HOST:PORT",
     "also accept secret-stream connections over TCP (tests, LAN; bind 127.0.0.1 for local use)"},
    {"swarm", "DVM_SWARM", COMMON_OPT_BOOL, "true", 0, 0, NULL,
     "join the kind's Hyperswarm topic as a server (--swarm=false: --listen only)"},
    DHT_SWARM_NET_OPTS,
    {"swarm-port", "DVM_SWARM_PORT", COMMON_OPT_U64, "0", 0, 65535, "PORT",
     "DHT/UDX port (0: random)"},
    {"sub-kind", "SUB_KIND", COMMON_OPT_U64, NULL, 0, PROTO_MAX_KIND, "N",
     "pipeline: buy this kind per job (--sub-peer) and run its output through the local model"},
    {"sub-budget", "SUB_BUDGET", COMMON_OPT_U64, "50", 0, PROTO_MAX_INT, "SATS", "pipeline budget"},
    {"budget", NULL, COMMON_OPT_U64, NULL, 0, PROTO_MAX_INT, "SATS", "alias of --sub-budget"},
    {"sub-batch-size", "SUB_BATCH_SIZE", COMMON_OPT_U64, "500", 1, 1048576, "CHARS",
     "pipeline batch size"},
    {"max-sats-per-chunk", "MAX_SATS_PER_CHUNK", COMMON_OPT_U64, "5", 1, PROTO_MAX_INT, "N",
     "pipeline: highest price accepted as a sub-customer"},
    AGENT_PIPE_OPTS,
    {"stats", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL,
     "print jobs, chunks, sats earned / claimed / pending from agent.db and exit"},
    {"qr", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL, "print the join link as a QR code"},
    {"qr-svg", NULL, COMMON_OPT_STR, NULL, 0, 0, "FILE", "write the join link's QR code as SVG"},
    {"no-llm-check", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL, "skip the model check at start"},
};

typedef struct app {
    uv_loop_t *loop;
    common_log_t *log;
    common_env_t env;
    agent_server_t *srv;
    dht_tcp_server_t *tcp;
    uv_signal_t sigint, sigterm;
    int stopping;
    common_http_t *http;
    agent_llm_t *llm;
    agent_pay_t pay;
    agent_ledger_t *ledger;
    cashu_wallet_t *wallet;
    agent_swarm_t *swarm;
    uv_timer_t grace, fin;
    uint64_t fin_start;
    int pay_closed;
    agent_pipe_setup_t pipe; /* --sub-kind: the pipeline generator (agent_pipe.h) */
    agent_bench_t *bench;    /* bench only: DVM_BENCH_STAMP_LOG (agent_bench.h) */
    agent_gen_t bench_gen;
} app_t;

static void on_fin(uv_timer_t *t) {
    app_t *a = t->data;
    uint64_t waited = uv_now(a->loop) - a->fin_start;
    if (a->wallet && agent_pay_cashu_claiming(&a->pay) && waited < 15000) return; /* claims */
    if (a->pipe.pipe && agent_pipe_busy(a->pipe.pipe) && waited < 15000) return;  /* sub-jobs */
    if (a->wallet && agent_pay_cashu_claiming(&a->pay))
        LOG_WARN(a->log, "agent", "claims still pending; they are retried at the next start");
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    a->pay.ops->close(a->pay.self);
    a->pay_closed = 1;
    if (a->swarm) {
        agent_swarm_close(a->swarm, NULL, NULL);
        a->swarm = NULL;
    }
    agent_llm_free(a->llm);
    a->llm = NULL;
    if (a->wallet) {
        cashu_wallet_free(a->wallet);
        a->wallet = NULL;
    }
    common_http_free(a->http);
    a->http = NULL;
}

static void on_idle(void *ud) {
    app_t *a = ud;
    LOG_INFO(a->log, "agent", "all jobs ended; closing connections");
    agent_server_close_all(a->srv);
    if (a->wallet) agent_pay_cashu_claim_now(&a->pay); /* no claim window on the way out */
    /* no job is left: wait for the claims, then release the wallet and the HTTP clients */
    a->fin_start = uv_now(a->loop);
    uv_timer_start(&a->fin, on_fin, 0, 50);
    uv_timer_stop(&a->grace);
    uv_close((uv_handle_t *)&a->grace, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_grace(uv_timer_t *t) {
    app_t *a = t->data;
    LOG_WARN(a->log, "agent", "jobs did not end in time; dropping connections");
    agent_server_close_all(a->srv);
}

static void on_signal(uv_signal_t *s, int signum) {
    app_t *a = s->data;
    if (a->stopping) {
        LOG_WARN(a->log, "agent", "second signal: exiting now");
        exit(1);
    }
    a->stopping = 1;
    LOG_INFO(a->log, "agent", "%s: stopping (no new jobs; running jobs get their result)",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (a->tcp) {
        dht_tcp_server_close(a->tcp);
        a->tcp = NULL;
    }
    if (a->swarm) agent_swarm_leave(a->swarm); /* unannounce */
    uv_timer_start(&a->grace, on_grace, 10000, 0);
    agent_server_shutdown(a->srv, on_idle, a);
}

static void on_check(void *ud, int err, const char *message) {
    app_t *a = ud;
    if (err)
        LOG_WARN(a->log, "agent", "LLM check: %s", message);
    else
        LOG_INFO(a->log, "agent", "LLM ready: %s", message ? message : "ok");
}

int main(int argc, char **argv) {
    static const common_prog_desc_t desc = {
        .name = "dvm-agent",
        .usage = "dvm-agent [options]",
        .description =
            "Provider: sells LLM output chunk by chunk for Cashu (dvm-protocol.md). Joins the "
            "Hyperswarm topic sha256(\"2020117-dvm-kind-<kind>\") as a server and, with "
            "--listen HOST:PORT, also accepts secret-stream connections over TCP. Prints "
            "'topic', 'join' (the dvm:// link), 'swarm IP:PORT' and 'listening IP:PORT'.",
        .opts = opts,
        .nopts = sizeof opts / sizeof opts[0],
        .epilog = "Signals: SIGINT/SIGTERM stop accepting, end running jobs with their result, "
                  "claim, exit 0.\nExit status: 0 ok, 1 failure, 2 usage error.",
    };
    common_cfg_t cfg;
    common_log_t log;
    int code;
    if (common_prog_start(&desc, argc, argv, &cfg, &log, &code)) return code;
    app_t a;
    memset(&a, 0, sizeof a);
    a.log = &log;
    int rc = COMMON_EXIT_USAGE;
    char err[256];
    const char *name = common_cfg_str(&cfg, "agent");
    uint32_t kind = (uint32_t)common_cfg_u64(&cfg, "kind");
    agent_unlocked_policy_t pol;
    dht_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    char *const *mints;
    size_t nmints = common_cfg_list(&cfg, "mint", &mints);
    if (cfg.npos) {
        fprintf(stderr, "dvm-agent: unexpected argument '%s' (see --help)\n", cfg.pos[0]);
        goto out;
    }
    if (agent_unlocked_policy_parse(common_cfg_str(&cfg, "accept-unlocked"), &pol)) {
        fprintf(stderr, "dvm-agent: --accept-unlocked: expected swap, peek or reject\n");
        goto out;
    }
    if (common_cfg_source(&cfg, "sub-kind") != COMMON_SRC_NONE &&
        agent_pipe_check_cfg(&cfg, kind, err, sizeof err)) {
        fprintf(stderr, "dvm-agent: %s\n", err);
        goto out;
    }
    if (nmints == 0 || nmints > PROTO_MAX_MINTS) {
        fprintf(stderr, "dvm-agent: --mint: give 1..%d mint URLs\n", PROTO_MAX_MINTS);
        goto out;
    }
    char datadir[1024];
    rc = COMMON_EXIT_INTERNAL;
    int e = common_datadir(common_cfg_str(&cfg, "data-dir"), name, datadir, sizeof datadir);
    if (e) {
        fprintf(stderr, "dvm-agent: data directory: %s\n", common_strerror(e));
        goto out;
    }
    a.loop = uv_default_loop();
    common_env_default(&a.env, a.loop, &log);
    if ((e = dht_identity_load_or_create(datadir, &a.env, &kp, NULL))) {
        fprintf(stderr, "dvm-agent: identity in %s: %s\n", datadir, common_strerror(e));
        goto out;
    }
    char dbpath[1200];
    common_path_join(dbpath, sizeof dbpath, datadir, "agent.db");
    a.ledger = agent_ledger_open(dbpath, &a.env, &e);
    if (!a.ledger) {
        fprintf(stderr, "dvm-agent: %s: %s\n", dbpath, common_strerror(e));
        goto out;
    }
    uint64_t orphans = 0;
    agent_ledger_close_orphans(a.ledger, &orphans);
    if (orphans)
        LOG_WARN(&log, "agent", "%llu job(s) left open by a crash closed as 'crashed'",
                 (unsigned long long)orphans);
    /* Payments: the Cashu wallet in the data directory (wallet.sqlite, wallet.key; the same
     * files `dvm-wallet --data-dir DIR` uses). */
    a.http = common_http_new(a.loop, &a.env, &e);
    char wdb[1200], wkey[1200];
    common_path_join(wdb, sizeof wdb, datadir, "wallet.sqlite");
    common_path_join(wkey, sizeof wkey, datadir, "wallet.key");
    cashu_wallet_opts_t wo = {.db_path = wdb, .key_path = wkey};
    if (!a.http || (e = cashu_wallet_open(a.loop, a.http, &a.env, &wo, &a.wallet))) {
        fprintf(stderr, "dvm-agent: wallet in %s: %s\n", datadir, common_strerror(e));
        goto out;
    }
    if (common_cfg_bool(&cfg, "stats")) {
        agent_pay_unavailable(a.loop, &a.pay); /* unused: totals come from the wallet */
        cashu_balance_t wb;
        agent_ledger_stats_t st;
        if (cashu_wallet_balance(a.wallet, NULL, &wb) || agent_ledger_stats(a.ledger, &st))
            goto out;
        printf("jobs %llu\njobs_paid %llu\njobs_open %llu\nchunks %llu\nsats_earned %llu\n"
               "sats_claimed %llu\nsats_pending %llu\n",
               (unsigned long long)st.jobs, (unsigned long long)st.jobs_paid,
               (unsigned long long)st.jobs_open, (unsigned long long)st.chunks,
               (unsigned long long)st.sats_received,
               (unsigned long long)(wb.unspent + wb.reserved + wb.sent),
               (unsigned long long)(wb.incoming + wb.pending));
        rc = 0;
        goto out;
    }
    /* from here on the ledger's commits run on a worker thread (agent_ledger.h) */
    if ((e = agent_ledger_async(a.ledger, a.loop))) {
        fprintf(stderr, "dvm-agent: %s: %s\n", dbpath, common_strerror(e));
        goto out;
    }
    if ((e = agent_pay_cashu(a.loop, &a.env, a.wallet, (const char *const *)mints, nmints,
                             &a.pay))) {
        fprintf(stderr, "dvm-agent: payments: %s\n", common_strerror(e));
        goto out;
    }
    /* join link + QR */
    char link[512];
    if (proto_joinlink_format(kind, kp.pk, name, link, sizeof link) == 0) {
        uint8_t topic[32];
        char th[65];
        proto_topic(kind, topic);
        common_hex_encode(topic, 32, th);
        printf("topic %s\njoin %s\n", th, link);
        if (common_cfg_bool(&cfg, "qr")) {
            agent_qr_t qr;
            common_buf_t b = {0};
            if (!agent_qr_encode(link, &qr) && !agent_qr_render_text(&qr, 0, &b))
                fwrite(b.data, 1, b.len, stdout);
            agent_qr_free(&qr);
            common_buf_free(&b);
        }
        const char *svg = common_cfg_str(&cfg, "qr-svg");
        if (svg && (e = agent_qr_write_svg(link, svg))) {
            fprintf(stderr, "dvm-agent: --qr-svg %s: %s\n", svg, common_strerror(e));
            goto out;
        }
    }
    /* LLM */
    agent_llm_config_t lc;
    if (agent_llm_config_from_cfg(&cfg, &lc, err, sizeof err)) {
        fprintf(stderr, "dvm-agent: %s\n", err);
        rc = COMMON_EXIT_USAGE;
        goto out;
    }
    if (common_cfg_str(&cfg, "ollama-url") && common_cfg_source(&cfg, "llm-url") != COMMON_SRC_FLAG)
        lc.base_url = common_cfg_str(&cfg, "ollama-url"); /* §8 spelling; --llm-url wins */
    a.llm = agent_llm_new(a.loop, a.http, &a.env, &lc, &e);
    if (!a.llm) {
        fprintf(stderr, "dvm-agent: LLM backend: %s\n", common_strerror(e));
        goto out;
    }
    if (!common_cfg_bool(&cfg, "no-llm-check"))
        agent_llm_check(a.llm, common_cfg_bool(&cfg, "pull"), stderr, on_check, &a);
    agent_gen_t gen;
    agent_gen_llm(a.llm, &gen);
    agent_gen_t *served = &gen;
    if (common_cfg_source(&cfg, "sub-kind") != COMMON_SRC_NONE) {
        e = agent_pipe_setup(a.loop, &a.env, &cfg, kind, mints[0], a.wallet, &kp, &gen, &a.pipe,
                             err, sizeof err);
        if (e) {
            fprintf(stderr, "dvm-agent: %s\n", err);
            rc = e == COMMON_EINVAL ? COMMON_EXIT_USAGE : COMMON_EXIT_INTERNAL;
            goto out;
        }
        served = &a.pipe.gen;
        LOG_INFO(&log, "agent", "pipeline: kind %llu bought per job, paid from this agent's wallet",
                 (unsigned long long)common_cfg_u64(&cfg, "sub-kind"));
    }
    const char *bench_log = getenv("DVM_BENCH_STAMP_LOG"); /* bench only: agent_bench.h */
    if (bench_log && bench_log[0]) {
        a.bench = agent_bench_new(a.loop, bench_log, &e);
        if (!a.bench) {
            fprintf(stderr, "dvm-agent: DVM_BENCH_STAMP_LOG %s: %s\n", bench_log,
                    common_strerror(e));
            goto out;
        }
        agent_bench_gen(a.bench, served, &a.bench_gen);
        served = &a.bench_gen;
    }
    /* server */
    agent_server_cfg_t sc;
    memset(&sc, 0, sizeof sc);
    sc.job.kind = kind;
    sc.job.sats_per_chunk = common_cfg_u64(&cfg, "sats-per-chunk");
    sc.job.chunks_per_payment = common_cfg_u64(&cfg, "chunks-per-payment");
    sc.job.payment_timeout_ms = common_cfg_u64(&cfg, "payment-timeout");
    sc.job.max_input = (size_t)common_cfg_u64(&cfg, "max-input");
    sc.job.mints = (const char *const *)mints;
    sc.job.n_mints = nmints;
    sc.job.pubkey = cashu_wallet_pubkey(a.wallet); /* ask for payments locked to us */
    sc.job.min_locktime_s = common_cfg_u64(&cfg, "min-locktime");
    sc.max_jobs = (uint32_t)common_cfg_u64(&cfg, "max-jobs");
    sc.unlocked = pol;
    sc.model = lc.model;
    sc.version = AGENT_VERSION;
    a.srv = agent_server_new(a.loop, &a.env, &sc, served, &a.pay, a.ledger, &e);
    if (!a.srv) {
        fprintf(stderr, "dvm-agent: %s\n", common_strerror(e));
        goto out;
    }
    const char *listen = common_cfg_str(&cfg, "listen");
    int use_swarm = common_cfg_bool(&cfg, "swarm");
    if (!listen && !use_swarm) {
        fprintf(stderr, "dvm-agent: nothing to serve on: --swarm=false needs --listen HOST:PORT\n");
        rc = COMMON_EXIT_USAGE;
        goto out;
    }
    char host[256];
    uint16_t port = 0;
    if (listen) {
        if (common_parse_hostport(listen, host, sizeof host, &port)) {
            fprintf(stderr, "dvm-agent: --listen: expected HOST:PORT, got '%s'\n", listen);
            rc = COMMON_EXIT_USAGE;
            goto out;
        }
        a.tcp = agent_tcp_listen(a.loop, &a.env, &kp, host, port, a.srv, &e);
        if (!a.tcp) {
            fprintf(stderr, "dvm-agent: --listen %s: %s\n", listen, common_strerror(e));
            goto out;
        }
    }
    if (use_swarm) {
        char *const *boot;
        agent_swarm_opts_t so;
        memset(&so, 0, sizeof so);
        so.nbootstrap = common_cfg_list(&cfg, "bootstrap", &boot);
        so.bootstrap = so.nbootstrap ? boot : NULL;
        so.allow_local = common_cfg_bool(&cfg, "allow-local");
        so.host = common_cfg_str(&cfg, "swarm-host");
        so.port = (uint16_t)common_cfg_u64(&cfg, "swarm-port");
        uint8_t topic[32];
        proto_topic(kind, topic);
        a.swarm = agent_swarm_serve(a.loop, &a.env, &kp, &so, topic, a.srv, &e);
        if (!a.swarm) {
            fprintf(stderr, "dvm-agent: swarm: %s\n", common_strerror(e));
            goto out;
        }
        dht_addr_t sa;
        char sas[32] = "?";
        if (dht_swarm_server_addr(agent_swarm_dht(a.swarm), &sa) == 0)
            dht_ipv4_format(&sa, sas, sizeof sas);
        printf("swarm %s\n", sas);
    }
    if (a.tcp) printf("listening %s:%u\n", host, dht_tcp_server_port(a.tcp));
    printf("payments %s\n", a.pay.name);
    fflush(stdout);
    uv_timer_init(a.loop, &a.grace);
    a.grace.data = &a;
    uv_timer_init(a.loop, &a.fin);
    a.fin.data = &a;
    uv_signal_init(a.loop, &a.sigint);
    uv_signal_init(a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    uv_run(a.loop, UV_RUN_DEFAULT);
    /* the loop ends once connections, timers and signals are closed */
    agent_server_stats_t st;
    agent_server_get_stats(a.srv, &st);
    LOG_INFO(&log, "agent", "stopped: %llu jobs, %llu chunks, %llu sats verified",
             (unsigned long long)st.jobs_total, (unsigned long long)st.chunks_sent,
             (unsigned long long)st.sats_verified);
    uint64_t l50, l99, lmax;
    size_t ln = agent_server_chunk_latency(a.srv, &l50, &l99, &lmax);
    if (ln) /* for scripts/bench.sh agent */
        printf("chunk_path_us p50=%llu p99=%llu max=%llu n=%zu\n", (unsigned long long)l50,
               (unsigned long long)l99, (unsigned long long)lmax, ln);
    if (a.bench) {
        size_t brec, bdrop;
        agent_bench_counts(a.bench, &brec, &bdrop);
        printf("bench_stamps recorded=%zu dropped=%zu\n", brec, bdrop);
    }
    rc = 0;
out:
    if (a.swarm) agent_swarm_close(a.swarm, NULL, NULL);
    if (a.srv) agent_server_free(a.srv);
    agent_bench_free(a.bench);
    if (a.pipe.pipe && agent_pipe_busy(a.pipe.pipe) == 0) agent_pipe_teardown(&a.pipe);
    if (a.llm) agent_llm_free(a.llm);
    int is_cashu = a.pay.ops && strcmp(a.pay.name, "cashu") == 0;
    if (a.pay.ops && !a.pay_closed) a.pay.ops->close(a.pay.self);
    if (a.wallet) cashu_wallet_free(a.wallet);
    if (a.http) common_http_free(a.http);
    if (a.loop) {
        for (int i = 0; i < 4; i++) uv_run(a.loop, UV_RUN_NOWAIT);
    }
    if (is_cashu) agent_pay_cashu_free(&a.pay);
    if (a.ledger) agent_ledger_close(a.ledger);
    if (a.loop) uv_loop_close(a.loop);
    sodium_memzero(&kp, sizeof kp);
    common_cfg_free(&cfg);
    return rc;
}
