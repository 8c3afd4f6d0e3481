/* SPDX-License-Identifier: MIT */
#include "common/common_log.h"
#include "common/common_err.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void common_log_init(common_log_t *log, const char *prog, FILE *out) {
    log->level = COMMON_LOG_INFO;
    log->json = 0;
    log->out = out ? out : stderr;
    log->prog = prog ? prog : "swarmdvm";
}

int common_log_level_parse(const char *s, int *level) {
    if (!s || !*s) return COMMON_EINVAL;
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(s, level_names[i]) == 0 || (s[0] == '0' + i && s[1] == '\0')) {
            *level = i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *level = COMMON_LOG_WARN;
        return 0;
    }
    return COMMON_EINVAL;
}

/* JSON string body escaping for the --log-json form. */
static void put_json_escaped(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
}

void common_log_write(const common_log_t *log, int level, const char *mod, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    if (level < 0) level = 0;
    if (level > 4) level = 4;
    FILE *f = log->out ? log->out : stderr;
    if (log->json) {
        fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", ts, level_names[level]);
        put_json_escaped(f, log->prog);
        fputs("\",\"mod\":\"", f);
        put_json_escaped(f, mod ? mod : "");
        fputs("\",\"msg\":\"", f);
        put_json_escaped(f, msg);
        fputs("\"}\n", f);
    } else {
        fprintf(f, "%s %-5s %s: %s%s%s\n", ts, level_names[level], log->prog, mod ? mod : "",
                mod ? ": " : "", msg);
    }
    fflush(f);
}
