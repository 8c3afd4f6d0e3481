/* SPDX-License-Identifier: MIT */
/**
 * @file agent_pipe_setup.h
 * @brief dvm-agent's pipeline wiring: the extra options (AGENT_PIPE_OPTS), reading the
 *        §8 settings (SUB_KIND, SUB_BUDGET / --budget, SUB_BATCH_SIZE, SUB_CHANNEL,
 *        MAX_SATS_PER_CHUNK, --sub-peer, --sub-prompt, --target-lang), and paying the
 *        sub-providers from the agent's own Cashu wallet (customer_pay_cashu per job).
 *
 * main: when --sub-kind is given, agent_pipe_setup() replaces the generator handed to
 * agent_server by the pipeline one (which drives @p local per batch); at shutdown, wait
 * until agent_pipe_busy() is 0 before freeing the wallet, then agent_pipe_teardown().
 */
#ifndef SWARMDVM_AGENT_PIPE_SETUP_H
#define SWARMDVM_AGENT_PIPE_SETUP_H

#include "agent/agent_pipe.h"
#include "cashu/cashu_wallet.h"
#include "common/common_config.h"

/* clang-format off */
#define AGENT_PIPE_OPTS                                                                          \
    {"sub-peer", "SUB_PEER", COMMON_OPT_LIST, NULL, 0, 0, "HOST:PORT",                           \
     "pipeline: sub-provider to buy from (secret-stream over TCP; repeat for fallbacks; "       \
     "none: Hyperswarm topic of --sub-kind)"},                                                   \
    {"sub-channel", "SUB_CHANNEL", COMMON_OPT_STR, "p2p", 0, 0, "CHANNEL",                      \
     "pipeline delegation channel: p2p (api is not supported)"},                                 \
    {"sub-prompt", "SUB_PROMPT", COMMON_OPT_STR, NULL, 0, 0, "TEMPLATE",                         \
     "pipeline: instruction per batch; {text} {lang} {kind} (default for 5302: translate)"},     \
    {"target-lang", "TARGET_LANG", COMMON_OPT_STR, "English", 0, 0, "LANG",                      \
     "pipeline: {lang} of the instruction template"},                                            \
    {"sub-idle-timeout", "SUB_IDLE_TIMEOUT", COMMON_OPT_U64, "30000", 100, 86400000, "MS",       \
     "pipeline: give up on a sub-provider silent this long"},                                    \
    {"sub-discover-timeout", "SUB_DISCOVER_TIMEOUT", COMMON_OPT_U64, "30000", 100, 3600000,      \
     "MS", "pipeline without --sub-peer: wait this long for a sub-provider on the topic"},       \
    {"sub-flush-ms", "SUB_FLUSH_MS", COMMON_OPT_U64, "5000", 0, 86400000, "MS",                  \
     "pipeline: give the local model a partial batch after sub-output waited this long (0: off)"}
/* clang-format on */

typedef struct agent_pipe_setup {
    agent_pipe_t *pipe;
    agent_gen_t gen; /* hand this to agent_server */
    uv_loop_t *loop;
    cashu_wallet_t *wallet;
    char *mint;
    agent_swarm_opts_t swarm; /* sub-provider discovery when no --sub-peer is given */
} agent_pipe_setup_t;

/** @brief Usage checks only (SUB_CHANNEL, --sub-peer, budget, kinds): call early in main. */
int agent_pipe_check_cfg(const common_cfg_t *cfg, uint32_t kind, char *why, size_t whylen);

/**
 * @brief Build the pipeline from the parsed options. @p local (the LLM generator), @p kp,
 * @p wallet and @p cfg are borrowed and must outlive the pipeline. @return 0, or
 * COMMON_EINVAL with a message in @p why (usage error), or another error.
 */
int agent_pipe_setup(uv_loop_t *loop, const common_env_t *env, const common_cfg_t *cfg,
                     uint32_t kind, const char *mint, cashu_wallet_t *wallet,
                     const dht_keypair_t *kp, agent_gen_t *local, agent_pipe_setup_t *out,
                     char *why, size_t whylen);
void agent_pipe_teardown(agent_pipe_setup_t *s);

#endif
