/* SPDX-License-Identifier: MIT */
/**
 * @file cashu_wallet.h
 * @brief The crash-safe Cashu wallet: sqlite store + mint client + the operations the job
 *        protocol needs. Asynchronous on the caller's libuv loop (used by dvm-agent,
 *        dvm-customer and dvm-wallet on one loop).
 *
 * Money rules (enforced here, not by callers):
 *  - Before any request that can move money (mint, swap, melt) the wallet COMMITs an operation
 *    journal entry: the inputs (marked pending, with their previous state), every output's
 *    secret, blinding factor r and B_. Only then does it POST.
 *  - A definite refusal returns inputs to their previous state; an ambiguous outcome (network
 *    error, HTTP 5xx, lost connection) leaves the operation open. cashu_wallet_recover (run by
 *    cashu_wallet_open's caller at start, and by `dvm-wallet check`) resolves open operations
 *    with NUT-09 restore (signatures for our saved B_) and NUT-07 checkstate (inputs), so a
 *    crash at any step loses nothing and never counts twice.
 *  - Amounts are uint64 in the API; the store keeps them in sqlite INTEGER (≤ 2^63-1).
 *
 * Proof states: unspent (ours, spendable), reserved (prepared micro-token not yet handed out),
 * sent (handed out; locked ones may come back through refund), incoming (received and
 * verified offline, not yet claimed), pending (input of an open operation), spent.
 *
 * Lifetime: cashu_wallet_t is owned by the caller; every async call invokes its callback
 * exactly once unless the wallet is freed first (then no callback). Result structs passed to
 * callbacks are borrowed for the duration of the callback.
 *
 * Crash-test hook: if the environment variable CASHU_CRASH_AT equals "<op>:<point>" (op in
 * mint|swap|prepare|send|receive|claim|refund|melt; point journal|response), the process
 * raises SIGKILL at that point. Used only by scripts/interop/cashu-crash.sh.
 */
#ifndef SWARMDVM_CASHU_WALLET_H
#define SWARMDVM_CASHU_WALLET_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_env.h"
#include "common/common_http.h"

typedef struct cashu_wallet cashu_wallet_t;

typedef struct cashu_wallet_opts {
    const char *db_path;      /* sqlite file (created 0600) */
    const char *key_path;     /* P2PK private key file (created 0600 if missing) */
    uint64_t timeout_ms;      /* per mint request, 0: 30 000 */
    uint64_t melt_timeout_ms; /* 0: 600 000 */
    int token_v3; /* 1: prepared tokens as cashuA (full ids); default cashuB (short ids) */
} cashu_wallet_opts_t;

typedef struct cashu_balance {
    uint64_t unspent;  /* spendable now */
    uint64_t reserved; /* prepared micro-tokens not yet handed out */
    uint64_t sent;     /* handed out, not known to be claimed (locked ones may be refunded) */
    uint64_t incoming; /* received, verified offline, not yet claimed */
    uint64_t pending;  /* inputs of open operations */
} cashu_balance_t;

typedef struct cashu_result {
    int err;             /* 0 or CASHU_E* / COMMON_E* */
    int mint_code;       /* mint's error code when err comes from the mint */
    const char *detail;  /* human explanation (never NULL) */
    uint64_t amount;     /* amount credited / minted / sent / melted */
    uint64_t fee;        /* fees paid */
    const char *quote;   /* mint quote id (mint_quote) */
    const char *request; /* bolt11 invoice (mint_quote) */
    const char *state;   /* quote state (mint_quote/check) */
    size_t ntokens;      /* prepare/send: encoded tokens (cashuB) */
    char *const *tokens;
    const int64_t *bundle_ids; /* prepare: ids for cashu_wallet_mark_sent */
    size_t recovered;          /* recover: operations resolved */
} cashu_result_t;

typedef void (*cashu_wallet_cb)(void *ud, const cashu_result_t *res);

/** Policy for verifying an incoming token offline (provider side, dvm-protocol.md §6). */
typedef struct cashu_policy {
    const char *const *mints; /* accepted mint URLs; NULL-terminated */
    int require_lock;         /* 1: each proof must be P2PK-locked to our key */
    uint64_t min_locktime;    /* required locktime ≥ now + this (seconds), when locked */
    int require_dleq;         /* 1: each proof must carry a valid complete DLEQ */
} cashu_policy_t;

int cashu_wallet_open(uv_loop_t *loop, common_http_t *http, const common_env_t *env,
                      const cashu_wallet_opts_t *opts, cashu_wallet_t **out);
void cashu_wallet_free(cashu_wallet_t *w);

/** @brief Our P2PK public key (33 bytes): the lock key for payments to us and refund key. */
const uint8_t *cashu_wallet_pubkey(const cashu_wallet_t *w);

/** @brief Pin a keyset of @p mint (id re-derived and checked) without asking the mint, with
 *  whether the mint enforces NUT-11. For tests and providers that pin keysets in advance. */
struct cashu_keyset;
int cashu_wallet_add_keyset(cashu_wallet_t *w, const char *mint, const struct cashu_keyset *ks,
                            int nut11);

/** @brief Balance over all mints (@p mint NULL) or one mint. */
int cashu_wallet_balance(cashu_wallet_t *w, const char *mint, cashu_balance_t *out);

/** @brief Fetch /v1/info, /v1/keysets and keys (ids re-derived and checked), cache in the
 *  store. Needed once per mint before the other calls (they also load lazily). */
int cashu_wallet_load_mint(cashu_wallet_t *w, const char *mint, cashu_wallet_cb cb, void *ud);

/** @brief Ask for a mint quote: result carries quote and request (bolt11). */
int cashu_wallet_mint_quote(cashu_wallet_t *w, const char *mint, uint64_t amount,
                            cashu_wallet_cb cb, void *ud);
/** @brief Check a quote; if PAID, mint its tokens (journaled). res->state = quote state. */
int cashu_wallet_mint_finish(cashu_wallet_t *w, const char *mint, const char *quote,
                             cashu_wallet_cb cb, void *ud);

/**
 * @brief Prepare @p n micro-tokens of @p amount each in ONE swap (fees from our balance),
 * each optionally P2PK-locked to @p lock_pubkey (NULL: plain) with @p locktime (unix s) and
 * our key as refund key. Tokens stay "reserved" until cashu_wallet_mark_sent. res->tokens.
 */
int cashu_wallet_prepare(cashu_wallet_t *w, const char *mint, size_t n, uint64_t amount,
                         const uint8_t *lock_pubkey, uint64_t locktime, cashu_wallet_cb cb,
                         void *ud);
/** @brief A prepared micro-token has been handed out (reserved → sent). */
int cashu_wallet_mark_sent(cashu_wallet_t *w, int64_t bundle_id);
/** @brief An unsent PLAIN micro-token goes back to the spendable balance at once (no mint
 *  call). Locked ones return COMMON_ESTATE: they come back through cashu_wallet_refund after
 *  their locktime. */
int cashu_wallet_release(cashu_wallet_t *w, int64_t bundle_id);

/**
 * @brief Verify an incoming token offline under @p policy (borrowed for the call; for
 * cashu_wallet_receive it must stay valid until the callback) and, if it passes, record its
 * proofs as incoming (this also records each Y, so a replay is refused). No mint contact.
 * @return 0 (and *amount), CASHU_EBAD_TOKEN, CASHU_EUNIT, CASHU_EMINT_NOT_ACCEPTED,
 * CASHU_EKEYSET (keyset unknown: call load_mint first), CASHU_EREPLAY, CASHU_ENOT_LOCKED,
 * CASHU_EDLEQ.
 */
int cashu_wallet_accept_offline(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                                uint64_t *amount);

/**
 * @brief cashu_wallet_accept_offline for @p n tokens in one transaction (one fsync): each
 * token is checked and recorded under its own savepoint, so rcs[i] / amounts[i] are exactly
 * what accept_offline would have answered for it in this order (a token repeating an earlier
 * one of the batch is CASHU_EREPLAY). Nothing is durable before the call returns: act on
 * rcs[i] == 0 only after it. Returns 0, or the COMMIT/BEGIN error, in which case nothing was
 * recorded and every rcs[i] that was 0 carries that error. Arrays borrowed for the call.
 */
int cashu_wallet_accept_offline_many(cashu_wallet_t *w, size_t n, const char *const *tokens,
                                     const cashu_policy_t *const *policies, uint64_t *amounts,
                                     int *rcs);

/**
 * Offline acceptance in three steps, so that its expensive part (hash-to-curve and the DLEQ
 * of every proof: several EC multiplications each, ~0.2 ms a proof) can leave the loop
 * thread while the durable record stays on it:
 *  1. cashu_wallet_offline_prepare (loop thread): decode, unit, accepted mint, keyset, P2PK
 *     lock and locktime rules; copies each proof's mint key into the check. A check is
 *     returned (in *out) whenever the token decodes, also when a rule failed: its result is
 *     then that failure and the other steps pass it through.
 *  2. cashu_offline_check_run (any thread; one thread at a time per check): Y and DLEQ of
 *     every proof. Touches only the check: no wallet, no database, no log.
 *  3. cashu_wallet_offline_commit_many (loop thread): the replay checks against the store
 *     and the earlier tokens of the batch, then the proofs recorded as incoming, all in one
 *     transaction (one fsync). rcs[i] / amounts[i] as cashu_wallet_accept_offline_many.
 * A check owns copies of everything it needs (token, keys, mint URL): it may outlive the
 * wallet.
 * cashu_wallet_accept_offline(_many) are these three steps run in a row.
 */
typedef struct cashu_offline_check cashu_offline_check_t;
/** @return 0, the first failed rule (the check carries it too), or CASHU_EBAD_TOKEN /
 *  COMMON_ENOMEM / COMMON_EINVAL with *out = NULL. Unknown keyset: CASHU_EKEYSET (load the
 *  mint, free the check, prepare again). */
int cashu_wallet_offline_prepare(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                                 cashu_offline_check_t **out);
void cashu_offline_check_run(cashu_offline_check_t *c);
/** @brief The check's verdict so far (0: passed every step run). */
int cashu_offline_check_result(const cashu_offline_check_t *c);
/** @brief Step 3; a check not yet run counts as COMMON_ESTATE, a NULL one as COMMON_EINVAL.
 *  Checks borrowed (free them after). Returns 0 or the BEGIN/COMMIT error (then nothing is
 *  recorded and every rcs[i] that was 0 carries it). */
int cashu_wallet_offline_commit_many(cashu_wallet_t *w, size_t n,
                                     cashu_offline_check_t *const *checks, uint64_t *amounts,
                                     int *rcs);
void cashu_offline_check_free(cashu_offline_check_t *c);

/**
 * An accept store: a second connection to the wallet's database (same file, WAL, FULL sync)
 * on which step 3 can run off the loop thread, so its fsync does not hold up the loop.
 * Opened on the loop thread; cashu_accept_store_commit_many may then run on any ONE thread
 * at a time (callers serialise their batches: the replay check of a batch must see the
 * batch before it). Writers of the two connections are serialised by sqlite (BEGIN
 * IMMEDIATE, 5 s busy timeout). Close it after its last commit returned. The wallet's env
 * (clock, log) must be safe to use from that thread: the real clock and stderr log are.
 */
typedef struct cashu_accept_store cashu_accept_store_t;
int cashu_wallet_accept_store_open(cashu_wallet_t *w, cashu_accept_store_t **out);
int cashu_accept_store_commit_many(cashu_accept_store_t *s, size_t n,
                                   cashu_offline_check_t *const *checks, uint64_t *amounts,
                                   int *rcs);
void cashu_accept_store_close(cashu_accept_store_t *s);

/** @brief The same checks as cashu_wallet_accept_offline without recording anything (the
 *  replay check only reads the store). *nproofs (may be NULL) = proofs in the token. */
int cashu_wallet_verify_offline(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                                uint64_t *amount, size_t *nproofs);

/** @brief Receive a token by swapping it at once (online, final): checks as offline (no lock
 *  required; DLEQ verified when present), then one swap; witnesses signed if locked to us. */
int cashu_wallet_receive(cashu_wallet_t *w, const char *token, const cashu_policy_t *policy,
                         cashu_wallet_cb cb, void *ud);

/** @brief Claim every incoming proof of @p mint in one swap per ≤max-inputs batch, signing
 *  P2PK witnesses with our key. res->amount = credited (after fees). */
int cashu_wallet_claim(cashu_wallet_t *w, const char *mint, cashu_wallet_cb cb, void *ud);

/** @brief Reclaim our locked reserved/sent proofs whose locktime has passed (refund path);
 *  ones the receiver already claimed are marked spent (checkstate first). */
int cashu_wallet_refund(cashu_wallet_t *w, const char *mint, cashu_wallet_cb cb, void *ud);

/** @brief Pay a bolt11 invoice: melt quote, exact-amount swap if needed, melt (long timeout). */
int cashu_wallet_melt(cashu_wallet_t *w, const char *mint, const char *bolt11, cashu_wallet_cb cb,
                      void *ud);

/** @brief Resolve every open operation (restore + checkstate). res->recovered. */
int cashu_wallet_recover(cashu_wallet_t *w, cashu_wallet_cb cb, void *ud);

/** @brief Iterate the operation history (newest first), at most @p limit rows. */
typedef void (*cashu_history_fn)(void *ud, int64_t id, const char *kind, const char *state,
                                 const char *mint, uint64_t amount, uint64_t fee,
                                 uint64_t created_unix_ms, const char *detail);
int cashu_wallet_history(cashu_wallet_t *w, size_t limit, cashu_history_fn fn, void *ud);

#endif
