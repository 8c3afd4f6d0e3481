/* SPDX-License-Identifier: MIT */
#include "agent/agent_pipe_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"
#include "customer/customer_pay_cashu.h"

static int pay_new(void *ud, customer_pay_t *out) {
    agent_pipe_setup_t *s = ud;
    return customer_pay_cashu(s->loop, s->wallet, s->mint, out);
}
static unsigned pay_busy(void *ud, const customer_pay_t *p) {
    (void)ud;
    return customer_pay_cashu_outstanding(p);
}
static void pay_free(void *ud, customer_pay_t *p) {
    (void)ud;
    customer_pay_cashu_free(p);
}

static uint64_t sub_budget(const common_cfg_t *cfg) {
    if (common_cfg_source(cfg, "budget") != COMMON_SRC_NONE &&
        common_cfg_source(cfg, "sub-budget") != COMMON_SRC_FLAG)
        return common_cfg_u64(cfg, "budget"); /* the seed guide's spelling */
    return common_cfg_u64(cfg, "sub-budget");
}

int agent_pipe_check_cfg(const common_cfg_t *cfg, uint32_t kind, char *why, size_t whylen) {
    if (agent_pipe_channel_check(common_cfg_str(cfg, "sub-channel"), why, whylen))
        return COMMON_EINVAL;
    char *const *peers;
    if (common_cfg_list(cfg, "sub-peer", &peers) == 0 && !common_cfg_bool(cfg, "swarm")) {
        snprintf(why, whylen,
                 "--sub-kind needs Hyperswarm (--swarm, the default) to find "
                 "sub-providers on their topic, or --sub-peer HOST:PORT");
        return COMMON_EINVAL;
    }
    if (sub_budget(cfg) == 0) {
        snprintf(why, whylen, "--sub-budget must be at least 1 sat");
        return COMMON_EINVAL;
    }
    uint64_t sub_kind = common_cfg_u64(cfg, "sub-kind");
    if (sub_kind == kind) {
        snprintf(why, whylen, "--sub-kind %llu is the agent's own kind",
                 (unsigned long long)sub_kind);
        return COMMON_EINVAL;
    }
    return 0;
}

int agent_pipe_setup(uv_loop_t *loop, const common_env_t *env, const common_cfg_t *cfg,
                     uint32_t kind, const char *mint, cashu_wallet_t *wallet,
                     const dht_keypair_t *kp, agent_gen_t *local, agent_pipe_setup_t *out,
                     char *why, size_t whylen) {
    memset(out, 0, sizeof *out);
    int rc = agent_pipe_check_cfg(cfg, kind, why, whylen);
    if (rc) return rc;
    char *const *peers;
    size_t npeers = common_cfg_list(cfg, "sub-peer", &peers);
    uint64_t sub_kind = common_cfg_u64(cfg, "sub-kind");
    uint64_t budget = sub_budget(cfg);
    out->loop = loop;
    out->wallet = wallet;
    out->mint = strdup(mint);
    if (!out->mint) return COMMON_ENOMEM;
    agent_pipe_cfg_t pc;
    memset(&pc, 0, sizeof pc);
    pc.kind = kind;
    pc.sub_kind = (uint32_t)sub_kind;
    pc.sub_budget = budget;
    pc.max_sats_per_chunk = common_cfg_u64(cfg, "max-sats-per-chunk");
    pc.batch_chars = (size_t)common_cfg_u64(cfg, "sub-batch-size");
    pc.mint_url = out->mint;
    pc.prompt_template = common_cfg_str(cfg, "sub-prompt");
    pc.target_lang = common_cfg_str(cfg, "target-lang");
    pc.idle_timeout_ms = common_cfg_u64(cfg, "sub-idle-timeout");
    agent_pipe_deps_t d;
    memset(&d, 0, sizeof d);
    d.local = local;
    d.kp = kp;
    d.peers = peers;
    d.npeers = npeers;
    if (npeers == 0) { /* per job, a client swarm on the sub-kind's topic */
        char *const *boot;
        out->swarm.nbootstrap = common_cfg_list(cfg, "bootstrap", &boot);
        out->swarm.bootstrap = out->swarm.nbootstrap ? boot : NULL;
        out->swarm.allow_local = common_cfg_bool(cfg, "allow-local");
        out->swarm.host = common_cfg_str(cfg, "swarm-host");
        out->swarm.port = 0; /* not the server's port: a random one per job */
        d.swarm = &out->swarm;
        d.discover_ms = common_cfg_u64(cfg, "sub-discover-timeout");
    }
    d.pay_new = pay_new;
    d.pay_busy = pay_busy;
    d.pay_free = pay_free;
    d.pay_ud = out;
    int err = 0;
    out->pipe = agent_pipe_new(loop, env, &pc, &d, &err);
    if (!out->pipe) {
        snprintf(why, whylen, "pipeline: %s", common_strerror(err));
        free(out->mint);
        out->mint = NULL;
        return err;
    }
    agent_pipe_gen(out->pipe, &out->gen);
    return 0;
}

void agent_pipe_teardown(agent_pipe_setup_t *s) {
    agent_pipe_free(s->pipe);
    s->pipe = NULL;
    free(s->mint);
    s->mint = NULL;
}
