/* SPDX-License-Identifier: MIT */
#include "agent/agent_ledger.h"
#include "common/common_err.h"
#include "tests/test.h"

#include <unistd.h>

TEST(jobs_and_stats_survive_reopen) {
    char dir[] = "/tmp/swarmdvm-ledger-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    common_vclock_t vc = {.now_ms = 0, .unix_ms = 1700000000000ull};
    common_env_t env = {.clock = common_clock_virtual(&vc)};
    agent_ledger_t *l = agent_ledger_open(path, &env, NULL);
    ASSERT_TRUE(l != NULL);
    int64_t a, b, c;
    ASSERT_OK(agent_ledger_job_start(l, "job1", "e69a185f", 5100, 1, 10, &a));
    ASSERT_OK(
        agent_ledger_job_start(l, "job1", "77aa0011", 5100, 1, 10, &b)); /* same id, other peer */
    ASSERT_TRUE(a != b);
    ASSERT_OK(agent_ledger_job_paid(l, a, 10));
    ASSERT_OK(agent_ledger_job_paid(l, a, 10));
    ASSERT_OK(agent_ledger_job_chunks(l, a, 15));
    ASSERT_OK(agent_ledger_job_chunks(l, a, 3)); /* never goes back */
    ASSERT_OK(agent_ledger_job_end(l, a, "done"));
    ASSERT_OK(agent_ledger_job_end(l, a, "stopped")); /* first end wins */
    ASSERT_OK(agent_ledger_job_end(l, b, "timeout"));
    ASSERT_OK(agent_ledger_job_start(l, "job2", "77aa0011", 5100, 2, 5, &c));
    agent_ledger_close(l); /* c stays open, as after a crash */

    l = agent_ledger_open(path, &env, NULL);
    ASSERT_TRUE(l != NULL);
    agent_ledger_stats_t s;
    ASSERT_OK(agent_ledger_stats(l, &s));
    ASSERT_EQ_U64(s.jobs, 3);
    ASSERT_EQ_U64(s.jobs_paid, 1);
    ASSERT_EQ_U64(s.jobs_open, 1);
    ASSERT_EQ_U64(s.chunks, 15);
    ASSERT_EQ_U64(s.sats_received, 20);
    uint64_t closed = 0;
    ASSERT_OK(agent_ledger_close_orphans(l, &closed));
    ASSERT_EQ_U64(closed, 1);
    ASSERT_OK(agent_ledger_stats(l, &s));
    ASSERT_EQ_U64(s.jobs_open, 0);
    agent_ledger_close(l);
    unlink(path);
    char p2[300];
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
    ASSERT_OK(rmdir(dir));
}

/* Write-behind mode: rows assigned after the existing ones, writes committed in order by the
 * worker (one batch while the next queues), nothing pending once the loop ran dry. */
TEST(async_group_commit_in_order) {
    char dir[] = "/tmp/swarmdvm-ledger-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    common_vclock_t vc = {.now_ms = 0, .unix_ms = 1700000000000ull};
    common_env_t env = {.clock = common_clock_virtual(&vc)};
    uv_loop_t loop;
    ASSERT_OK(uv_loop_init(&loop));
    agent_ledger_t *l = agent_ledger_open(path, &env, NULL);
    ASSERT_TRUE(l != NULL);
    int64_t first, rows[40];
    ASSERT_OK(agent_ledger_job_start(l, "old", "e69a185f", 5100, 1, 10, &first)); /* left open */
    agent_ledger_close(l);
    l = agent_ledger_open(path, &env, NULL);
    ASSERT_TRUE(l != NULL);
    uint64_t closed = 0;
    ASSERT_OK(agent_ledger_close_orphans(l, &closed));
    ASSERT_EQ_U64(closed, 1);
    ASSERT_OK(agent_ledger_async(l, &loop));
    ASSERT_ERR(agent_ledger_close_orphans(l, &closed), COMMON_ESTATE);
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "j%d", i);
        ASSERT_OK(agent_ledger_job_start(l, id, "77aa0011", 5100, 1, 10, &rows[i]));
        ASSERT_TRUE(rows[i] == first + 1 + i);
        ASSERT_OK(agent_ledger_job_paid(l, rows[i], 10));
        if (i % 10 == 9) uv_run(&loop, UV_RUN_NOWAIT); /* let some batches go */
    }
    ASSERT_TRUE(agent_ledger_pending(l) > 0);
    for (int i = 0; i < 40; i++) {
        ASSERT_OK(agent_ledger_job_chunks(l, rows[i], 30));
        ASSERT_OK(agent_ledger_job_end(l, rows[i], i % 2 ? "done" : "stopped"));
        ASSERT_OK(agent_ledger_job_end(l, rows[i], "timeout")); /* first end wins */
    }
    for (int k = 0; k < 2000 && agent_ledger_pending(l); k++) uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ_U64(agent_ledger_pending(l), 0);
    agent_ledger_stats_t s;
    ASSERT_OK(agent_ledger_stats(l, &s)); /* the main connection sees the worker's commits */
    ASSERT_EQ_U64(s.jobs, 41);
    ASSERT_EQ_U64(s.jobs_paid, 40);
    ASSERT_EQ_U64(s.jobs_open, 0);
    ASSERT_EQ_U64(s.chunks, 1200);
    ASSERT_EQ_U64(s.sats_received, 400);
    /* written after the loop's last run: close waits for the commit */
    int64_t late;
    ASSERT_OK(agent_ledger_job_start(l, "late", "77aa0011", 5100, 1, 10, &late));
    ASSERT_EQ_U64(agent_ledger_pending(l), 1);
    agent_ledger_close(l);
    ASSERT_OK(uv_loop_close(&loop));
    l = agent_ledger_open(path, &env, NULL);
    ASSERT_TRUE(l != NULL);
    ASSERT_OK(agent_ledger_stats(l, &s));
    ASSERT_EQ_U64(s.jobs, 42);
    ASSERT_EQ_U64(s.jobs_open, 1);
    agent_ledger_close(l);
    unlink(path);
    char p2[300];
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
    ASSERT_OK(rmdir(dir));
}

TEST_MAIN(TEST_ENTRY(jobs_and_stats_survive_reopen), TEST_ENTRY(async_group_commit_in_order))
