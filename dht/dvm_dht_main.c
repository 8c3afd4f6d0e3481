/* SPDX-License-Identifier: MIT */
/* dvm-dht: a standalone Hyperswarm-compatible DHT node (persistent by default, usable as the
 * bootstrap of a private or test network), plus one-shot client commands:
 *
 *   dvm-dht [--host H] [--port P] [--bootstrap B ...] [--allow-local]   run a node
 *   dvm-dht lookup TOPIC_HEX          print "peer <pk> <relay,...>" lines, then "done N"
 *   dvm-dht find-peer PK_HEX          same for FIND_PEER
 *   dvm-dht announce TOPIC_HEX --seed SEED_HEX [--relay ip:port ...]
 *   dvm-dht unannounce TOPIC_HEX --seed SEED_HEX
 *   dvm-dht serve --seed SEED_HEX     keep our route on 3 relays (announcer); "relays ..."
 *   dvm-dht serve --topic HEX         announce on a topic, pipe stdin/stdout over the first
 *                                     connection (Hyperswarm server; status on stderr)
 *   dvm-dht connect --topic HEX       look the topic up, connect, pipe stdin/stdout
 *   dvm-dht testnet --nodes N         N persistent nodes in one process
 * The node prints "listening <ip:port>" on stdout once bound, "persistent <id>" and
 * "ready" as they happen. Client commands run an ephemeral node and exit 0 on success. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/common_codec.h"
#include "common/common_env.h"
#include "common/common_err.h"
#include "common/common_prog.h"
#include "dht/dht_node_uv.h"
#include "dht/dht_swarm_cli.h"

static const common_opt_t opts[] = {
    {"host", "DVM_DHT_HOST", COMMON_OPT_STR, "0.0.0.0", 0, 0, "IP",
     "bind address; a specific IP is also taken as our public address"},
    {"port", "DVM_DHT_PORT", COMMON_OPT_U64, "49737", 0, 65535, "PORT",
     "server UDP port (0 = random); commands always use a random port"},
    {"bootstrap", "DVM_DHT_BOOTSTRAP", COMMON_OPT_LIST, NULL, 0, 0, "HOST:PORT",
     "bootstrap node (host:port or ip@host:port); 'none' for the first node; "
     "default: the public hyperdht nodes"},
    {"allow-local", "DVM_DHT_ALLOW_LOCAL", COMMON_OPT_BOOL, "false", 0, 0, NULL,
     "accept loopback/private addresses (test and LAN networks only)"},
    {"ephemeral", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL,
     "run as an ephemeral (client) node instead of a persistent one"},
    {"seed", "DVM_DHT_SEED", COMMON_OPT_STR, NULL, 0, 0, "HEX",
     "32-byte key pair seed for announce/unannounce/serve, and the identity of "
     "serve/connect --topic (random when absent)"},
    {"relay", NULL, COMMON_OPT_LIST, NULL, 0, 0, "IP:PORT", "relay address to announce"},
    {"repeat", NULL, COMMON_OPT_U64, "1", 1, 10000, "N",
     "lookup: run N lookups one after another, printing 'lookup_ms <ms> <datagrams>' each"},
    {"topic", NULL, COMMON_OPT_STR, NULL, 0, 0, "HEX",
     "serve/connect: 32-byte topic; serve with --topic pipes stdin/stdout over the first "
     "swarm connection (without it, serve only keeps the announcer running)"},
    {"refresh-ms", NULL, COMMON_OPT_U64, "600000", 100, 3600000, "MS",
     "serve/connect --topic: re-run the topic lookup/announce this often"},
    {"nodes", NULL, COMMON_OPT_U64, "10", 1, 500, "N", "testnet: number of nodes"},
    {"timeout", NULL, COMMON_OPT_U64, "30000", 100, 600000, "MS",
     "client commands and connect --topic: give up after this long; serve --topic: only "
     "when given (exit 1 if no connection came)"},
    COMMON_OPTS_STANDARD,
};

typedef struct app {
    uv_loop_t *loop;
    dht_node_uv_t *u;
    uv_signal_t sigint, sigterm;
    uv_timer_t deadline;
    const char *cmd;
    uint8_t arg[32];
    dht_keypair_t kp;
    dht_addr_t relays[DHT_MAX_RELAYS];
    size_t nrelays;
    size_t found;
    int status;
    int started_cmd;
    int closing;
    uint64_t repeat, done_lookups, t0, sent0;
    common_env_t *env;
    /* testnet mode */
    dht_node_uv_t *tn[500];
    size_t ntn, tn_ready;
    uint64_t tn_nodes;
    const common_env_t *tn_env;
    char tn_boot[32];
    char *tn_boot_list[1];
    dht_announcer_t *ann;
} app_t;

static void on_closed(void *ud) {
    app_t *a = ud;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->deadline, NULL);
}

static void on_tn_closed(void *ud) {
    (void)ud;
}

static void shutdown_app(app_t *a, int status) {
    if (a->closing) return;
    a->closing = 1;
    if (a->ann) dht_announcer_stop(a->ann);
    a->ann = NULL;
    a->status = status;
    for (size_t i = 0; i < a->ntn; i++) dht_node_uv_close(a->tn[i], on_tn_closed, NULL);
    dht_node_uv_close(a->u, on_closed, a);
}

static void on_signal(uv_signal_t *s, int sig) {
    (void)sig;
    shutdown_app(s->data, 0);
}

static void on_deadline(uv_timer_t *t) {
    app_t *a = t->data;
    fprintf(stdout, "timeout\n");
    fflush(stdout);
    shutdown_app(a, 1);
}

static void on_peer(void *ud, const dht_peer_record_t *p, const dht_addr_t *from) {
    (void)from;
    app_t *a = ud;
    char hex[65];
    common_hex_encode(p->public_key, 32, hex);
    printf("peer %s", hex);
    for (size_t i = 0; i < p->nrelays; i++) {
        char s[24];
        dht_ipv4_format(&p->relays[i], s, sizeof s);
        printf("%c%s", i ? ',' : ' ', s);
    }
    printf("\n");
    fflush(stdout);
    a->found++;
}

static void on_ready(void *ud);

static uint64_t sent_now(app_t *a) {
    dht_node_stats_t st;
    dht_node_stats(dht_node_uv_node(a->u), &st);
    return st.requests_sent;
}

static void on_done(void *ud, int status) {
    app_t *a = ud;
    if (a->repeat > 1 || a->done_lookups > 0) {
        uint64_t now = uv_hrtime();
        printf("lookup_ms %.3f %llu\n", (double)(now - a->t0) / 1e6,
               (unsigned long long)(sent_now(a) - a->sent0));
        fflush(stdout);
        if (++a->done_lookups < a->repeat) {
            a->found = 0;
            a->started_cmd = 0;
            on_ready(a);
            return;
        }
    }
    printf("done %zu %s\n", a->found, status ? common_err_name(status) : "ok");
    fflush(stdout);
    shutdown_app(a, status ? 1 : 0);
}

static void on_relays(void *ud, const dht_addr_t *addrs, size_t n) {
    (void)ud;
    printf("relays");
    for (size_t i = 0; i < n; i++) {
        char s[24];
        dht_ipv4_format(&addrs[i], s, sizeof s);
        printf(" %s", s);
    }
    printf("\n");
    fflush(stdout);
}

static void on_ready(void *ud) {
    app_t *a = ud;
    if (!a->done_lookups) {
        printf("ready\n");
        fflush(stdout);
    }
    if (!a->cmd || a->started_cmd) return;
    a->started_cmd = 1;
    dht_node_t *n = dht_node_uv_node(a->u);
    a->t0 = uv_hrtime();
    a->sent0 = sent_now(a);
    dht_query_t *q = NULL;
    if (strcmp(a->cmd, "lookup") == 0)
        q = dht_lookup(n, a->arg, on_peer, on_done, a);
    else if (strcmp(a->cmd, "find-peer") == 0)
        q = dht_find_peer(n, a->arg, on_peer, on_done, a);
    else if (strcmp(a->cmd, "announce") == 0)
        q = dht_announce(n, a->arg, &a->kp, a->relays, a->nrelays, on_done, a);
    else if (strcmp(a->cmd, "unannounce") == 0)
        q = dht_unannounce(n, a->arg, &a->kp, on_done, a);
    else if (strcmp(a->cmd, "serve") == 0) {
        a->ann = dht_announcer_start(n, &a->kp, on_relays, a);
        if (!a->ann) shutdown_app(a, 1);
        return;
    }
    if (!q) shutdown_app(a, 1);
}

static void on_tn_ready(void *ud) {
    app_t *a = ud;
    if (++a->tn_ready == a->tn_nodes) {
        printf("testnet-ready %zu\n", a->ntn + 1);
        fflush(stdout);
    }
}

static void on_persistent(void *ud) {
    app_t *a = ud;
    char hex[65];
    common_hex_encode(dht_node_id(dht_node_uv_node(a->u)), 32, hex);
    printf("persistent %s\n", hex);
    fflush(stdout);
}

static int run_swarm_cli(const common_cfg_t *cfg, common_log_t *log, int server) {
    dht_swarm_cli_opts_t o;
    memset(&o, 0, sizeof o);
    o.server = server;
    const char *t = common_cfg_str(cfg, "topic");
    if (!t || common_hex_decode_exact(t, o.topic, 32) != 0 || cfg->npos != 1) {
        fprintf(stderr, "dvm-dht: %s needs --topic with 64 hex digits\n",
                server ? "serve" : "connect");
        return COMMON_EXIT_USAGE;
    }
    uint8_t seed[32];
    const char *sd = common_cfg_str(cfg, "seed");
    if (sd) {
        if (common_hex_decode_exact(sd, seed, 32) != 0) {
            fprintf(stderr, "dvm-dht: --seed needs 64 hex digits\n");
            return COMMON_EXIT_USAGE;
        }
        o.seed = seed;
    }
    char *const *bl;
    size_t nb = common_cfg_list(cfg, "bootstrap", &bl);
    o.bootstrap = nb ? bl : NULL;
    o.nbootstrap = nb;
    o.host = common_cfg_str(cfg, "host");
    o.port = 0;
    o.allow_local = common_cfg_bool(cfg, "allow-local");
    o.refresh_ms = (uint32_t)common_cfg_u64(cfg, "refresh-ms");
    o.timeout_ms = !server || common_cfg_source(cfg, "timeout") != COMMON_SRC_DEFAULT
                       ? common_cfg_u64(cfg, "timeout")
                       : 0;
    int rc = dht_swarm_cli_run(&o, log);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int main(int argc, char **argv) {
    static const common_prog_desc_t desc = {
        .name = "dvm-dht",
        .usage = "dvm-dht [options] [testnet | serve [--topic HEX] | connect --topic HEX | "
                 "lookup TOPIC | find-peer PK | announce TOPIC | unannounce TOPIC]",
        .description =
            "A standalone Hyperswarm-compatible DHT node (dht-rpc + hyperdht records), "
            "persistent by default and usable as the bootstrap of a private or test network. "
            "Prints 'listening IP:PORT' once bound. With a command, runs an ephemeral node, "
            "performs it and exits (0 on success). 'connect --topic' and 'serve --topic' join a "
            "topic as a Hyperswarm client or server and pipe stdin/stdout over the first "
            "encrypted connection (status lines on stderr; --timeout bounds the wait for it).",
        .opts = opts,
        .nopts = sizeof opts / sizeof opts[0],
        .epilog = "Exit status: 0 ok, 1 failure, 2 usage error.",
    };
    common_cfg_t cfg;
    common_log_t log;
    int code;
    if (common_prog_start(&desc, argc, argv, &cfg, &log, &code)) return code;
    app_t a;
    memset(&a, 0, sizeof a);
    int rc = COMMON_EXIT_USAGE;
    if (cfg.npos > 0) {
        a.cmd = cfg.pos[0];
        if (strcmp(a.cmd, "testnet") == 0) goto testnet;
        if (strcmp(a.cmd, "connect") == 0 ||
            (strcmp(a.cmd, "serve") == 0 && common_cfg_str(&cfg, "topic"))) {
            rc = run_swarm_cli(&cfg, &log, strcmp(a.cmd, "serve") == 0);
            goto out;
        }
        if (strcmp(a.cmd, "serve") == 0) {
            uint8_t seed[32];
            const char *sd = common_cfg_str(&cfg, "seed");
            if (cfg.npos != 1 || !sd || common_hex_decode_exact(sd, seed, 32) != 0) {
                fprintf(stderr, "dvm-dht: serve needs --seed with 64 hex digits\n");
                goto out;
            }
            dht_crypto_keypair_seed(&a.kp, seed);
            sodium_memzero(seed, sizeof seed);
            goto serve;
        }
        if (strcmp(a.cmd, "lookup") && strcmp(a.cmd, "find-peer") && strcmp(a.cmd, "announce") &&
            strcmp(a.cmd, "unannounce")) {
            fprintf(stderr, "dvm-dht: unknown command '%s'\n", a.cmd);
            goto out;
        }
        if (cfg.npos != 2 || common_hex_decode_exact(cfg.pos[1], a.arg, 32) != 0) {
            fprintf(stderr, "dvm-dht: %s needs one 64-hex-digit argument\n", a.cmd);
            goto out;
        }
        if (!strcmp(a.cmd, "announce") || !strcmp(a.cmd, "unannounce")) {
            uint8_t seed[32];
            const char *s = common_cfg_str(&cfg, "seed");
            if (!s || common_hex_decode_exact(s, seed, 32) != 0) {
                fprintf(stderr, "dvm-dht: %s needs --seed with 64 hex digits\n", a.cmd);
                goto out;
            }
            dht_crypto_keypair_seed(&a.kp, seed);
            sodium_memzero(seed, sizeof seed);
        }
        char *const *rl;
        size_t nr = common_cfg_list(&cfg, "relay", &rl);
        for (size_t i = 0; i < nr && a.nrelays < DHT_MAX_RELAYS; i++) {
            if (dht_addr_parse(rl[i], &a.relays[a.nrelays]) != 0) {
                fprintf(stderr, "dvm-dht: --relay: not ip:port: '%s'\n", rl[i]);
                goto out;
            }
            a.nrelays++;
        }
    }
    if (0) {
    testnet:
        a.tn_nodes = common_cfg_u64(&cfg, "nodes");
    }
serve:
    a.repeat = common_cfg_u64(&cfg, "repeat");
    char *const *bl;
    size_t nb = common_cfg_list(&cfg, "bootstrap", &bl);
    int none = nb == 1 && strcmp(bl[0], "none") == 0;
    for (size_t i = 0; i < nb && !none; i++) {
        dht_bootstrap_entry_t e;
        if (dht_bootstrap_parse(bl[i], &e) != 0) {
            fprintf(stderr, "dvm-dht: --bootstrap: bad entry '%s'\n", bl[i]);
            goto out;
        }
    }
    a.loop = uv_default_loop();
    common_env_t env;
    common_env_default(&env, a.loop, &log);
    a.env = &env;
    int tnmode = a.cmd && strcmp(a.cmd, "testnet") == 0;
    if (tnmode) a.cmd = NULL;
    dht_node_uv_opts_t uo;
    memset(&uo, 0, sizeof uo);
    uo.host = common_cfg_str(&cfg, "host");
    uo.port = a.cmd || tnmode ? 0 : (uint16_t)common_cfg_u64(&cfg, "port");
    uo.ephemeral = a.cmd ? 1 : common_cfg_bool(&cfg, "ephemeral");
    uo.firewalled = uo.ephemeral;
    uo.allow_local = common_cfg_bool(&cfg, "allow-local");
    uo.public_host = !uo.ephemeral && strcmp(uo.host, "0.0.0.0") != 0;
    static char *const no_boot[1] = {NULL};
    uo.bootstrap = none ? no_boot : (nb ? bl : NULL);
    uo.nbootstrap = none ? 0 : nb;
    dht_node_events_t ev = {on_ready, on_persistent, &a};
    int err = 0;
    a.u = dht_node_uv_new(a.loop, &uo, &env, &ev, &err);
    if (!a.u) {
        fprintf(stderr, "dvm-dht: cannot start: %s\n", common_strerror(err));
        rc = COMMON_EXIT_INTERNAL;
        goto out;
    }
    dht_addr_t addr;
    dht_node_uv_server_addr(a.u, &addr);
    char as[24];
    dht_ipv4_format(&addr, as, sizeof as);
    printf("listening %s\n", as);
    fflush(stdout);
    if (tnmode) {
        /* N-1 more persistent nodes in this process, bootstrapping from the first */
        snprintf(a.tn_boot, sizeof a.tn_boot, "%s", as);
        a.tn_boot_list[0] = a.tn_boot;
        dht_node_uv_opts_t to = uo;
        to.bootstrap = a.tn_boot_list;
        to.nbootstrap = 1;
        dht_node_events_t tev = {on_tn_ready, NULL, &a};
        a.tn_ready = 0;
        a.tn_nodes = a.tn_nodes > 1 ? a.tn_nodes - 1 : 0;
        for (uint64_t i = 0; i < a.tn_nodes && a.ntn < 500; i++) {
            a.tn[a.ntn] = dht_node_uv_new(a.loop, &to, &env, &tev, &err);
            if (!a.tn[a.ntn]) {
                fprintf(stderr, "dvm-dht: testnet node %llu: %s\n", (unsigned long long)i,
                        common_strerror(err));
                break;
            }
            a.ntn++;
        }
        if (a.tn_nodes == 0) printf("testnet-ready 1\n");
        fflush(stdout);
    }
    uv_signal_init(a.loop, &a.sigint);
    uv_signal_init(a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_timer_init(a.loop, &a.deadline);
    a.deadline.data = &a;
    if (a.cmd && strcmp(a.cmd, "serve") != 0)
        uv_timer_start(&a.deadline, on_deadline, common_cfg_u64(&cfg, "timeout"), 0);
    else
        uv_unref((uv_handle_t *)&a.deadline);
    uv_run(a.loop, UV_RUN_DEFAULT);
    uv_loop_close(a.loop);
    rc = a.status ? COMMON_EXIT_INTERNAL : COMMON_EXIT_OK;
out:
    dht_crypto_keypair_wipe(&a.kp);
    common_cfg_free(&cfg);
    return rc;
}
