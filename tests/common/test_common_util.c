/* SPDX-License-Identifier: MIT */
/* common/: errors, codecs, UTF-8, config parsing, environment, files, sqlite. */
#include "common/common_codec.h"
#include "common/common_config.h"
#include "common/common_db.h"
#include "common/common_env.h"
#include "common/common_err.h"
#include "common/common_fs.h"
#include "common/common_net.h"
#include "common/common_utf8.h"
#include "tests/test.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(err_strings) {
    ASSERT_STR_EQ(common_strerror(COMMON_ETIMEDOUT), "timed out");
    ASSERT_STR_EQ(common_err_name(CASHU_ESPENT), "CASHU_ESPENT");
    ASSERT_STR_EQ(common_strerror(-99999), "unknown error");
    ASSERT_STR_EQ(common_strerror(0), "success");
}

TEST(hex_roundtrip_and_errors) {
    uint8_t in[5] = {0x00, 0x01, 0xab, 0xff, 0x7f}, out[5];
    char hex[11];
    common_hex_encode(in, 5, hex);
    ASSERT_STR_EQ(hex, "0001abff7f");
    size_t n = 0;
    ASSERT_OK(common_hex_decode("0001ABff7f", 10, out, sizeof out, &n));
    ASSERT_EQ_U64(n, 5);
    ASSERT_MEM_EQ(out, in, 5);
    ASSERT_ERR(common_hex_decode("abc", 3, out, sizeof out, &n), COMMON_EINVAL);
    ASSERT_ERR(common_hex_decode("zz", 2, out, sizeof out, &n), COMMON_EINVAL);
    ASSERT_ERR(common_hex_decode("000102030405", 12, out, sizeof out, &n), COMMON_ETOOBIG);
    ASSERT_ERR(common_hex_decode_exact("0001", out, 3), COMMON_EINVAL);
}

TEST(base64_variants) {
    const char *msg = "\xfb\xff\xfe hello";
    size_t len = strlen(msg);
    char enc[64];
    uint8_t dec[64];
    size_t n;
    common_b64_encode(msg, len, enc, COMMON_B64_STD);
    ASSERT_STR_EQ(enc, "+//+IGhlbGxv");
    common_b64_encode(msg, len, enc, COMMON_B64_URL_RAW);
    ASSERT_STR_EQ(enc, "-__-IGhlbGxv");
    ASSERT_OK(common_b64_decode("+//+IGhlbGxv", 12, dec, sizeof dec, &n));
    ASSERT_EQ_U64(n, len);
    ASSERT_MEM_EQ(dec, msg, len);
    ASSERT_OK(common_b64_decode("-__-IGhlbGxv", 12, dec, sizeof dec, &n));
    ASSERT_MEM_EQ(dec, msg, len);
    /* Padded and unpadded forms of a 1-byte tail. */
    ASSERT_OK(common_b64_decode("YQ==", 4, dec, sizeof dec, &n));
    ASSERT_EQ_U64(n, 1);
    ASSERT_OK(common_b64_decode("YQ", 2, dec, sizeof dec, &n));
    ASSERT_EQ_U64(n, 1);
    ASSERT_EQ_U64(dec[0], 'a');
    ASSERT_ERR(common_b64_decode("Y", 1, dec, sizeof dec, &n), COMMON_EINVAL);
    ASSERT_ERR(common_b64_decode("YQ!=", 4, dec, sizeof dec, &n), COMMON_EINVAL);
    ASSERT_ERR(common_b64_decode("aGVsbG8=", 8, dec, 2, &n), COMMON_ETOOBIG);
}

TEST(parse_u64_strict) {
    uint64_t v;
    ASSERT_OK(common_parse_u64("50", 0, 100, &v));
    ASSERT_EQ_U64(v, 50);
    ASSERT_OK(common_parse_u64("18446744073709551615", 0, UINT64_MAX, &v));
    ASSERT_EQ_U64(v, UINT64_MAX);
    ASSERT_ERR(common_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), COMMON_ERANGE);
    ASSERT_ERR(common_parse_u64("", 0, 10, &v), COMMON_EINVAL);
    ASSERT_ERR(common_parse_u64("-1", 0, 10, &v), COMMON_EINVAL);
    ASSERT_ERR(common_parse_u64("+1", 0, 10, &v), COMMON_EINVAL);
    ASSERT_ERR(common_parse_u64(" 1", 0, 10, &v), COMMON_EINVAL);
    ASSERT_ERR(common_parse_u64("1e3", 0, 10000, &v), COMMON_EINVAL);
    ASSERT_ERR(common_parse_u64("0x10", 0, 100, &v), COMMON_EINVAL);
    ASSERT_ERR(common_parse_u64("11", 0, 10, &v), COMMON_ERANGE);
    ASSERT_ERR(common_parse_u64("0", 1, 10, &v), COMMON_ERANGE);
}

TEST(utf8) {
    ASSERT_TRUE(common_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    ASSERT_FALSE(common_utf8_valid("\xc0\xaf", 2));         /* overlong */
    ASSERT_FALSE(common_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    ASSERT_FALSE(common_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    ASSERT_FALSE(common_utf8_valid("\xe2\x82", 2));         /* truncated */
    ASSERT_FALSE(common_utf8_valid("\x80", 1));
    /* Complete prefix holds back an incomplete tail, never a complete one. */
    ASSERT_EQ_I64(common_utf8_char("a", 1), 1);
    ASSERT_EQ_I64(common_utf8_char("\xe2\x82\xac", 3), 3);
    ASSERT_EQ_I64(common_utf8_char("\xe2\x82", 2), -1); /* incomplete */
    ASSERT_EQ_I64(common_utf8_char("\xe0\x80", 2), 0);  /* overlong: never completes */
    ASSERT_EQ_I64(common_utf8_char("\xed\xa0", 2), 0);  /* surrogate */
    ASSERT_EQ_I64(common_utf8_char("\xf4\x90", 2), 0);  /* > U+10FFFF */
    ASSERT_EQ_I64(common_utf8_char("\xf0\x9f\x98", 3), -1);
    ASSERT_EQ_I64(common_utf8_char("\xc3\x28", 2), 0); /* bad continuation */
    ASSERT_EQ_I64(common_utf8_char("\xff", 1), 0);
    const char *euro = "a\xe2\x82\xac";
    ASSERT_EQ_U64(common_utf8_complete_prefix(euro, 4), 4);
    ASSERT_EQ_U64(common_utf8_complete_prefix(euro, 3), 1);
    ASSERT_EQ_U64(common_utf8_complete_prefix(euro, 2), 1);
    ASSERT_EQ_U64(common_utf8_complete_prefix(euro, 1), 1);
    const char *emoji = "\xf0\x9f\x98\x80";
    ASSERT_EQ_U64(common_utf8_complete_prefix(emoji, 3), 0);
    ASSERT_EQ_U64(common_utf8_complete_prefix(emoji, 4), 4);
    ASSERT_EQ_U64(common_utf8_complete_prefix("ab", 2), 2);
    ASSERT_EQ_U64(common_utf8_complete_prefix("", 0), 0);
}

static const common_opt_t test_opts[] = {
    {"kind", "DVM_KIND", COMMON_OPT_U64, "5100", 0, 65535, "KIND", "job kind"},
    {"budget", "BUDGET_SATS", COMMON_OPT_U64, "100", 1, 1000000, "SATS", "budget"},
    {"mint", "CASHU_MINT_URL", COMMON_OPT_LIST, "https://a.example", 0, 0, "URL", "mints"},
    {"json", NULL, COMMON_OPT_BOOL, "false", 0, 0, NULL, "json"},
    {"agent", "AGENT", COMMON_OPT_STR, NULL, 0, 0, "NAME", "name"},
};
#define NOPTS (sizeof test_opts / sizeof test_opts[0])

typedef struct {
    const char *k[4], *v[4];
} fake_env_t;

static const char *fake_getenv(const char *name, void *ud) {
    fake_env_t *e = ud;
    for (int i = 0; i < 4 && e->k[i]; i++)
        if (!strcmp(e->k[i], name)) return e->v[i];
    return NULL;
}

TEST(config_precedence_and_forms) {
    fake_env_t env = {{"BUDGET_SATS", "CASHU_MINT_URL"},
                      {"70", "https://b.example,https://c.example"}};
    char *argv[] = {"prog", "--kind=5302", "--budget", "50", "hello world", "--json", "-", NULL};
    common_cfg_t cfg;
    char err[256] = "";
    ASSERT_OK(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 7, argv, fake_getenv, &env, err, sizeof err));
    ASSERT_EQ_U64(common_cfg_u64(&cfg, "kind"), 5302);
    ASSERT_EQ_U64(common_cfg_u64(&cfg, "budget"), 50); /* flag beats env */
    ASSERT_EQ_U64(common_cfg_source(&cfg, "budget"), COMMON_SRC_FLAG);
    ASSERT_TRUE(common_cfg_bool(&cfg, "json"));
    char *const *mints;
    ASSERT_EQ_U64(common_cfg_list(&cfg, "mint", &mints), 2); /* env beats default */
    ASSERT_STR_EQ(mints[1], "https://c.example");
    ASSERT_TRUE(common_cfg_str(&cfg, "agent") == NULL);
    /* "--budget 50" consumed its value: it never becomes part of the prompt. */
    ASSERT_EQ_U64(cfg.npos, 2);
    ASSERT_STR_EQ(cfg.pos[0], "hello world");
    ASSERT_STR_EQ(cfg.pos[1], "-");
    common_cfg_free(&cfg);
}

TEST(config_repeatable_flag_replaces_env) {
    fake_env_t env = {{"CASHU_MINT_URL"}, {"https://b.example"}};
    char *argv[] = {"prog", "--mint", "https://x.example", "--mint=https://y.example", NULL};
    common_cfg_t cfg;
    char err[256];
    ASSERT_OK(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 4, argv, fake_getenv, &env, err, sizeof err));
    char *const *mints;
    ASSERT_EQ_U64(common_cfg_list(&cfg, "mint", &mints), 2);
    ASSERT_STR_EQ(mints[0], "https://x.example");
    ASSERT_STR_EQ(mints[1], "https://y.example");
    common_cfg_free(&cfg);
}

TEST(config_errors_are_clear) {
    fake_env_t none = {{NULL}, {NULL}};
    fake_env_t badenv = {{"BUDGET_SATS"}, {"lots"}};
    common_cfg_t cfg;
    char err[256];
    char *a1[] = {"prog", "--budget=abc", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 2, a1, fake_getenv, &none, err, sizeof err),
        COMMON_EINVAL);
    ASSERT_TRUE(strstr(err, "--budget") && strstr(err, "abc"));
    char *a2[] = {"prog", "--budget=0", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 2, a2, fake_getenv, &none, err, sizeof err),
        COMMON_ERANGE);
    char *a3[] = {"prog", "--nope", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 2, a3, fake_getenv, &none, err, sizeof err),
        COMMON_EUSAGE);
    char *a4[] = {"prog", "--budget", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 2, a4, fake_getenv, &none, err, sizeof err),
        COMMON_EUSAGE);
    char *a5[] = {"prog", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 1, a5, fake_getenv, &badenv, err, sizeof err),
        COMMON_EINVAL);
    ASSERT_TRUE(strstr(err, "BUDGET_SATS") != NULL);
    char *a6[] = {"prog", "--json=maybe", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 2, a6, fake_getenv, &none, err, sizeof err),
        COMMON_EINVAL);
    char *a7[] = {"prog", "-x", NULL};
    ASSERT_ERR(
        common_cfg_parse_env(&cfg, test_opts, NOPTS, 2, a7, fake_getenv, &none, err, sizeof err),
        COMMON_EUSAGE);
}

TEST(config_help_lists_every_option) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    common_cfg_help(f, "prog [options]", "desc", test_opts, NOPTS, "epilog");
    fclose(f);
    for (size_t i = 0; i < NOPTS; i++) ASSERT_TRUE(strstr(buf, test_opts[i].name) != NULL);
    ASSERT_TRUE(strstr(buf, "env BUDGET_SATS") != NULL);
    ASSERT_TRUE(strstr(buf, "default 5100") != NULL);
    free(buf);
}

TEST(seeded_rng_and_virtual_clock) {
    common_seeded_rng_t s1, s2;
    common_env_t e1 = {.rng = common_rng_seeded(&s1, 42)}, e2 = {.rng = common_rng_seeded(&s2, 42)};
    uint8_t a[32], b[32];
    common_random(&e1, a, sizeof a);
    common_random(&e2, b, sizeof b);
    ASSERT_MEM_EQ(a, b, 32);
    common_random(&e1, a, sizeof a);
    ASSERT_TRUE(memcmp(a, b, 32) != 0);
    for (int i = 0; i < 1000; i++) ASSERT_LE(common_random_uniform(&e1, 7), 6);
    common_vclock_t vc = {.now_ms = 5, .unix_ms = 1000};
    common_env_t e3 = {.clock = common_clock_virtual(&vc)};
    common_vclock_advance(&vc, 10);
    ASSERT_EQ_U64(common_now_ms(&e3), 15);
    ASSERT_EQ_U64(common_unix_ms(&e3), 1010);
}

TEST(private_files) {
    char dir[] = "/tmp/swarmdvm-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char path[512];
    ASSERT_OK(common_path_join(path, sizeof path, dir, "id.key"));
    ASSERT_OK(common_write_private(path, "secret", 6, 1));
    ASSERT_ERR(common_write_private(path, "other", 5, 1), COMMON_EEXIST);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ_U64(st.st_mode & 0777, 0600);
    char buf[16];
    size_t n;
    ASSERT_OK(common_read_private(path, buf, sizeof buf, &n));
    ASSERT_EQ_U64(n, 6);
    ASSERT_ERR(common_read_private(path, buf, 3, &n), COMMON_ETOOBIG);
    chmod(path, 0644);
    ASSERT_ERR(common_read_private(path, buf, sizeof buf, &n), COMMON_EPERM);
    unlink(path);
    ASSERT_ERR(common_read_private(path, buf, sizeof buf, &n), COMMON_ENOTFOUND);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    ASSERT_OK(common_datadir(sub, "x", path, sizeof path));
    ASSERT_OK(stat(sub, &st));
    ASSERT_TRUE(S_ISDIR(st.st_mode));
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/a", dir);
    rmdir(sub);
    rmdir(dir);
}

TEST(db_migrations) {
    char dir[] = "/tmp/swarmdvm-db-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char path[512];
    ASSERT_OK(common_path_join(path, sizeof path, dir, "t.db"));
    common_env_t env = {0};
    sqlite3 *db;
    ASSERT_OK(common_db_open(path, &env, &db));
    static const char *const m1[] = {"CREATE TABLE a(x INTEGER NOT NULL);"};
    static const char *const m2[] = {"CREATE TABLE a(x INTEGER NOT NULL);",
                                     "INSERT INTO a VALUES (7), (8);"};
    ASSERT_OK(common_db_migrate(db, m1, 1, &env));
    ASSERT_OK(common_db_migrate(db, m2, 2, &env)); /* only the second step runs */
    int64_t v;
    ASSERT_OK(common_db_query_i64(db, "SELECT SUM(x) FROM a", &v, &env));
    ASSERT_EQ_I64(v, 15);
    ASSERT_OK(common_db_query_i64(db, "PRAGMA user_version", &v, &env));
    ASSERT_EQ_I64(v, 2);
    ASSERT_OK(common_db_query_i64(db, "PRAGMA synchronous", &v, &env));
    ASSERT_EQ_I64(v, 2); /* FULL */
    /* A database newer than the code is refused. */
    ASSERT_ERR(common_db_migrate(db, m1, 1, &env), COMMON_ESTATE);
    /* A failing migration rolls back entirely. */
    const char *const m3[] = {m2[0], m2[1], "INSERT INTO a VALUES (1); BOGUS;"};
    ASSERT_ERR(common_db_migrate(db, m3, 3, &env), COMMON_EDB);
    ASSERT_OK(common_db_query_i64(db, "SELECT COUNT(*) FROM a", &v, &env));
    ASSERT_EQ_I64(v, 2);
    common_db_close(db);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ_U64(st.st_mode & 0777, 0600);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_OK(system(cmd));
}

TEST(buf_ops) {
    common_buf_t b = {0};
    ASSERT_OK(common_buf_append(&b, "hello", 5));
    ASSERT_OK(common_buf_printf(&b, " %d", 42));
    ASSERT_EQ_U64(b.len, 8);
    ASSERT_MEM_EQ(b.data, "hello 42", 8);
    common_buf_consume(&b, 6);
    ASSERT_MEM_EQ(b.data, "42", 2);
    common_buf_wipe_free(&b);
    ASSERT_TRUE(b.data == NULL);
}

TEST(parse_hostport) {
    char host[64];
    uint16_t port;
    ASSERT_OK(common_parse_hostport("127.0.0.1:7100", host, sizeof host, &port));
    ASSERT_STR_EQ(host, "127.0.0.1");
    ASSERT_EQ_U64(port, 7100);
    ASSERT_OK(common_parse_hostport("[::1]:0", host, sizeof host, &port));
    ASSERT_STR_EQ(host, "::1");
    ASSERT_EQ_U64(port, 0);
    ASSERT_OK(common_parse_hostport("localhost:65535", host, sizeof host, &port));
    ASSERT_ERR(common_parse_hostport("localhost:65536", host, sizeof host, &port), COMMON_EINVAL);
    ASSERT_ERR(common_parse_hostport("localhost", host, sizeof host, &port), COMMON_EINVAL);
    ASSERT_ERR(common_parse_hostport(":80", host, sizeof host, &port), COMMON_EINVAL);
    ASSERT_ERR(common_parse_hostport("h:8x", host, sizeof host, &port), COMMON_EINVAL);
    ASSERT_ERR(common_parse_hostport("[::1:80", host, sizeof host, &port), COMMON_EINVAL);
    ASSERT_ERR(common_parse_hostport("averyveryverylonghostname:1", host, 8, &port), COMMON_EINVAL);
}

/* Two processes opening a new database at once apply each migration exactly once. */
TEST(db_concurrent_first_open) {
    static const char *const m[] = {"CREATE TABLE a(x INTEGER NOT NULL);",
                                    "INSERT INTO a VALUES (1);", "INSERT INTO a VALUES (2);"};
    for (int round = 0; round < 10; round++) {
        char dir[] = "/tmp/swarmdvm-dbc-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        char path[512];
        ASSERT_OK(common_path_join(path, sizeof path, dir, "t.db"));
        common_log_t log;
        common_log_init(&log, "test", stderr);
        common_env_t env = {.log = &log};
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        sqlite3 *db;
        int rc = common_db_open(path, &env, &db);
        if (!rc) rc = common_db_migrate(db, m, 3, &env);
        if (!rc) common_db_close(db);
        if (pid == 0) _exit(rc ? 1 : 0);
        int status = 0;
        ASSERT_EQ_I64(waitpid(pid, &status, 0), pid);
        ASSERT_OK(rc);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        int64_t v;
        ASSERT_OK(common_db_open(path, &env, &db));
        ASSERT_OK(common_db_query_i64(db, "SELECT COUNT(*) FROM a", &v, &env));
        common_db_close(db);
        ASSERT_EQ_I64(v, 2);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ASSERT_OK(system(cmd));
    }
}

/* Opening a second connection to a database this process already has open must not drop the
 * first one's POSIX locks (closing any descriptor of the file would): otherwise another
 * process closing its connection takes the exclusive lock, checkpoints and deletes the WAL
 * under the first connection, and the database ends up corrupt (seen in dvm-agent, which
 * opens wallet.sqlite twice). */
TEST(db_second_open_keeps_locks) {
    char dir[] = "/tmp/swarmdvm-dbl-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char path[512], wal[600];
    ASSERT_OK(common_path_join(path, sizeof path, dir, "t.db"));
    snprintf(wal, sizeof wal, "%s-wal", path);
    common_env_t env = {0};
    sqlite3 *a, *b;
    ASSERT_OK(common_db_open(path, &env, &a));
    ASSERT_OK(common_db_exec(a, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", &env));
    struct stat st;
    ASSERT_OK(stat(wal, &st)); /* the WAL lives while a connection is open */
    ASSERT_OK(common_db_open(path, &env, &b));
    /* Another process asks whether it could write-lock sqlite's SHARED byte range of the file
     * (PENDING_BYTE + 2, 510 bytes): it must see our connections' shared lock. */
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {
            .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0x40000002, .l_len = 510};
        int held = fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        _exit(held ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ_I64(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_OK(stat(wal, &st));
    ASSERT_OK(common_db_exec(b, "INSERT INTO t VALUES (2);", &env));
    int64_t v;
    ASSERT_OK(common_db_query_i64(a, "SELECT SUM(x) FROM t", &v, &env));
    ASSERT_EQ_I64(v, 3);
    common_db_close(b);
    common_db_close(a);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_OK(system(cmd));
}

TEST_MAIN(TEST_ENTRY(db_concurrent_first_open), TEST_ENTRY(db_second_open_keeps_locks),
          TEST_ENTRY(parse_hostport), TEST_ENTRY(err_strings), TEST_ENTRY(hex_roundtrip_and_errors),
          TEST_ENTRY(base64_variants), TEST_ENTRY(parse_u64_strict), TEST_ENTRY(utf8),
          TEST_ENTRY(config_precedence_and_forms), TEST_ENTRY(config_repeatable_flag_replaces_env),
          TEST_ENTRY(config_errors_are_clear), TEST_ENTRY(config_help_lists_every_option),
          TEST_ENTRY(seeded_rng_and_virtual_clock), TEST_ENTRY(private_files),
          TEST_ENTRY(db_migrations), TEST_ENTRY(buf_ops))
