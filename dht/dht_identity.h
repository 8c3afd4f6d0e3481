/* SPDX-License-Identifier: MIT */
/**
 * @file dht_identity.h
 * @brief The node's long-term Ed25519 identity (Noise static key and announce signing key).
 *
 * Stored as DHT_IDENTITY_FILE ("identity.key") in the data directory: one line
 * "swarmdvm-ed25519-seed-v1 <64 hex chars of the 32-byte seed>\n", mode 0600, written
 * atomically (common_write_private). The key pair is derived from the seed with
 * crypto_sign_seed_keypair. A file that is group- or world-accessible is refused
 * (COMMON_EPERM) rather than used, so a leaked key is noticed.
 *
 * Who calls it: each program's main (dvm-agent, dvm-customer, dvm-dht) once at start-up,
 * with the resolved data directory (common_datadir). The key pair is then borrowed by the
 * DHT / TCP transport. Callers wipe it with dht_crypto_keypair_wipe() at exit.
 */
#ifndef SWARMDVM_DHT_IDENTITY_H
#define SWARMDVM_DHT_IDENTITY_H

#include "common/common_env.h"
#include "dht/dht_crypto.h"

#define DHT_IDENTITY_FILE "identity.key"

/**
 * @brief Load the identity from @p datadir, or create it (seed from @p env's RNG, or
 * libsodium's when env is NULL) when the file does not exist.
 * @param created optional: set to 1 when a new identity was written, else 0.
 * @return 0; COMMON_EPERM (unsafe permissions); COMMON_EPROTO (malformed file);
 *         COMMON_EIO / COMMON_ESYS / COMMON_ETOOBIG (file system).
 */
int dht_identity_load_or_create(const char *datadir, const common_env_t *env, dht_keypair_t *kp,
                                int *created);

/** @brief Load only (COMMON_ENOTFOUND when there is no identity yet). */
int dht_identity_load(const char *datadir, dht_keypair_t *kp);

#endif
