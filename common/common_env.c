/* SPDX-License-Identifier: MIT */
#include "common/common_env.h"

#include <sodium.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

static uint64_t sys_now_ms(void *ud) {
    (void)ud;
    return uv_hrtime() / 1000000u;
}

static uint64_t sys_unix_ms(void *ud) {
    (void)ud;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

common_clock_t common_clock_system(void) {
    return (common_clock_t){.now_ms = sys_now_ms, .unix_ms = sys_unix_ms, .ud = NULL};
}

static uint64_t uv_now_ms(void *ud) {
    return uv_now((uv_loop_t *)ud);
}

common_clock_t common_clock_uv(uv_loop_t *loop) {
    return (common_clock_t){.now_ms = uv_now_ms, .unix_ms = sys_unix_ms, .ud = loop};
}

static uint64_t v_now_ms(void *ud) {
    return ((common_vclock_t *)ud)->now_ms;
}

static uint64_t v_unix_ms(void *ud) {
    return ((common_vclock_t *)ud)->unix_ms;
}

common_clock_t common_clock_virtual(common_vclock_t *vc) {
    return (common_clock_t){.now_ms = v_now_ms, .unix_ms = v_unix_ms, .ud = vc};
}

static void sodium_fill(void *ud, void *buf, size_t len) {
    (void)ud;
    randombytes_buf(buf, len);
}

common_rng_t common_rng_sodium(void) {
    return (common_rng_t){.fill = sodium_fill, .ud = NULL};
}

/* Each fill draws from a fresh stream: seed_i = BLAKE2b(key || counter). */
static void seeded_fill(void *ud, void *buf, size_t len) {
    common_seeded_rng_t *s = ud;
    uint8_t ctr[8];
    for (int i = 0; i < 8; i++) ctr[i] = (uint8_t)(s->counter >> (8 * i));
    s->counter++;
    uint8_t seed[randombytes_SEEDBYTES];
    crypto_generichash(seed, sizeof seed, ctr, sizeof ctr, s->key, sizeof s->key);
    randombytes_buf_deterministic(buf, len, seed);
}

common_rng_t common_rng_seeded(common_seeded_rng_t *s, uint64_t seed) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 8; i++) s->key[i] = (uint8_t)(seed >> (8 * i));
    return (common_rng_t){.fill = seeded_fill, .ud = s};
}

uint32_t common_random_uniform(const common_env_t *env, uint32_t upper) {
    if (upper < 2) return 0;
    /* Rejection sampling: no modulo bias. */
    uint32_t min = (uint32_t)(-upper) % upper;
    uint32_t r;
    do {
        common_random(env, &r, sizeof r);
    } while (r < min);
    return r % upper;
}

void common_env_default(common_env_t *env, uv_loop_t *loop, const common_log_t *log) {
    env->clock = loop ? common_clock_uv(loop) : common_clock_system();
    env->rng = common_rng_sodium();
    env->log = log;
}
