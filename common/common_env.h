/* SPDX-License-Identifier: MIT */
/**
 * @file common_env.h
 * @brief The injected environment: clock, randomness and logger (c-toxcore style).
 *
 * Protocol cores never read the time or draw random bytes themselves: they take a
 * `const common_env_t *` (borrowed, must outlive the object that keeps it). Production code
 * uses common_env_default(); tests use the virtual clock and the seeded RNG so that runs are
 * deterministic. Nothing here is global: several environments may coexist in one process.
 */
#ifndef SWARMDVM_COMMON_ENV_H
#define SWARMDVM_COMMON_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "common/common_log.h"

typedef struct uv_loop_s uv_loop_t;

typedef struct common_clock {
    /** Monotonic milliseconds (arbitrary origin): timeouts, RTT, deadlines. */
    uint64_t (*now_ms)(void *ud);
    /** Wall-clock milliseconds since the Unix epoch: locktimes, expiry, ledgers. */
    uint64_t (*unix_ms)(void *ud);
    void *ud;
} common_clock_t;

typedef struct common_rng {
    void (*fill)(void *ud, void *buf, size_t len);
    void *ud;
} common_rng_t;

typedef struct common_env {
    common_clock_t clock;
    common_rng_t rng;
    const common_log_t *log; /* borrowed; may be NULL (silent) */
} common_env_t;

static inline uint64_t common_now_ms(const common_env_t *env) {
    return env->clock.now_ms(env->clock.ud);
}
static inline uint64_t common_unix_ms(const common_env_t *env) {
    return env->clock.unix_ms(env->clock.ud);
}
static inline void common_random(const common_env_t *env, void *buf, size_t len) {
    env->rng.fill(env->rng.ud, buf, len);
}
/** @brief A uniformly random integer in [0, upper) (0 when upper is 0). */
uint32_t common_random_uniform(const common_env_t *env, uint32_t upper);

/** @brief System clocks: uv_hrtime for monotonic time, gettimeofday for wall time. */
common_clock_t common_clock_system(void);

/** @brief libuv's cached loop time for monotonic time (cheap; updated every loop turn). */
common_clock_t common_clock_uv(uv_loop_t *loop);

/** A virtual clock for tests: the test advances `now_ms` and `unix_ms` itself. */
typedef struct common_vclock {
    uint64_t now_ms;
    uint64_t unix_ms;
} common_vclock_t;
common_clock_t common_clock_virtual(common_vclock_t *vc);
static inline void common_vclock_advance(common_vclock_t *vc, uint64_t ms) {
    vc->now_ms += ms;
    vc->unix_ms += ms;
}

/** @brief libsodium's randombytes_buf. Call sodium_init() first (main does). */
common_rng_t common_rng_sodium(void);

/** A deterministic RNG for tests: a stream keyed by the seed. Not for secrets in production. */
typedef struct common_seeded_rng {
    uint8_t key[32];
    uint64_t counter;
} common_seeded_rng_t;
common_rng_t common_rng_seeded(common_seeded_rng_t *s, uint64_t seed);

/** @brief System clock (or the loop's clock when @p loop is given), sodium RNG, @p log. */
void common_env_default(common_env_t *env, uv_loop_t *loop, const common_log_t *log);

#endif
