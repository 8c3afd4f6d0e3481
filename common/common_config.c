/* SPDX-License-Identifier: MIT */
#include "common/common_config.h"
#include "common/common_codec.h"
#include "common/common_err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int find_opt(const common_opt_t *opts, size_t n, const char *name, size_t namelen) {
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == namelen && strncmp(opts[i].name, name, namelen) == 0)
            return (int)i;
    }
    return -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int parse_bool(const char *s, uint64_t *out) {
    if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
        !strcasecmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
        !strcasecmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return COMMON_EINVAL;
}

static int list_push(common_cfg_val_t *v, const char *s, size_t len) {
    char **items = realloc(v->items, (v->nitems + 1) * sizeof *items);
    if (!items) return COMMON_ENOMEM;
    v->items = items;
    items[v->nitems] = strndup(s, len);
    if (!items[v->nitems]) return COMMON_ENOMEM;
    v->nitems++;
    return 0;
}

static void val_clear(common_cfg_val_t *v) {
    free(v->str);
    for (size_t i = 0; i < v->nitems; i++) free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* Assign @p text to option @p i from source @p src; `who` names it in errors. */
static int assign(common_cfg_t *cfg, size_t i, const char *text, common_src_t src, const char *who,
                  char *err, size_t errlen) {
    const common_opt_t *o = &cfg->opts[i];
    common_cfg_val_t *v = &cfg->vals[i];
    if (o->type == COMMON_OPT_LIST) {
        /* A flag replaces env/default values on first use, then accumulates. */
        if (v->src != src || src != COMMON_SRC_FLAG) val_clear(v);
        if (src == COMMON_SRC_FLAG) {
            if (!*text) {
                set_err(err, errlen, "%s: empty value", who);
                return COMMON_EINVAL;
            }
            if (list_push(v, text, strlen(text))) return COMMON_ENOMEM;
        } else {
            const char *p = text;
            while (*p) {
                const char *c = strchr(p, ',');
                size_t len = c ? (size_t)(c - p) : strlen(p);
                if (len && list_push(v, p, len)) return COMMON_ENOMEM;
                p += len;
                if (*p == ',') p++;
            }
        }
        v->src = src;
        return 0;
    }
    uint64_t num = 0;
    if (o->type == COMMON_OPT_U64) {
        uint64_t min = o->min, max = o->max;
        if (min == 0 && max == 0) max = UINT64_MAX;
        int rc = common_parse_u64(text, min, max, &num);
        if (rc == COMMON_EINVAL) {
            set_err(err, errlen, "%s: not a whole number: '%s'", who, text);
            return rc;
        }
        if (rc == COMMON_ERANGE) {
            set_err(err, errlen, "%s: '%s' is out of range (%llu..%llu)", who, text,
                    (unsigned long long)min, (unsigned long long)max);
            return rc;
        }
    } else if (o->type == COMMON_OPT_BOOL) {
        if (parse_bool(text, &num)) {
            set_err(err, errlen, "%s: expected true or false, got '%s'", who, text);
            return COMMON_EINVAL;
        }
    }
    char *dup = strdup(text);
    if (!dup) return COMMON_ENOMEM;
    val_clear(v);
    v->str = dup;
    v->u64 = num;
    v->src = src;
    return 0;
}

static const char *real_getenv(const char *name, void *ud) {
    (void)ud;
    return getenv(name);
}

int common_cfg_parse(common_cfg_t *cfg, const common_opt_t *opts, size_t nopts, int argc,
                     char **argv, char *err, size_t errlen) {
    return common_cfg_parse_env(cfg, opts, nopts, argc, argv, real_getenv, NULL, err, errlen);
}

int common_cfg_parse_env(common_cfg_t *cfg, const common_opt_t *opts, size_t nopts, int argc,
                         char **argv, const char *(*get_env)(const char *, void *), void *ud,
                         char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    cfg->opts = opts;
    cfg->nopts = nopts;
    cfg->vals = calloc(nopts ? nopts : 1, sizeof *cfg->vals);
    cfg->pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *cfg->pos);
    if (!cfg->vals || !cfg->pos) {
        common_cfg_free(cfg);
        return COMMON_ENOMEM;
    }
    int rc = 0;
    char who[160];
    /* Defaults, then the environment. */
    for (size_t i = 0; i < nopts && !rc; i++) {
        if (opts[i].def) {
            snprintf(who, sizeof who, "default of --%s", opts[i].name);
            rc = assign(cfg, i, opts[i].def, COMMON_SRC_DEFAULT, who, err, errlen);
        }
        const char *e = opts[i].env ? get_env(opts[i].env, ud) : NULL;
        if (!rc && e && *e) {
            snprintf(who, sizeof who, "%s (environment)", opts[i].env);
            rc = assign(cfg, i, e, COMMON_SRC_ENV, who, err, errlen);
        }
    }
    /* Flags. */
    int only_pos = 0;
    for (int a = 1; a < argc && !rc; a++) {
        char *arg = argv[a];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            cfg->pos[cfg->npos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            cfg->help = 1;
            continue;
        }
        if (arg[1] != '-') {
            set_err(err, errlen, "unknown option '%s' (options are long: --name)", arg);
            rc = COMMON_EUSAGE;
            break;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        int i = find_opt(opts, nopts, name, namelen);
        if (i < 0) {
            set_err(err, errlen, "unknown option '--%.*s' (see --help)", (int)namelen, name);
            rc = COMMON_EUSAGE;
            break;
        }
        snprintf(who, sizeof who, "--%s", opts[i].name);
        const char *val;
        if (eq) {
            val = eq + 1;
        } else if (opts[i].type == COMMON_OPT_BOOL) {
            val = "true";
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            set_err(err, errlen, "--%s needs a value", opts[i].name);
            rc = COMMON_EUSAGE;
            break;
        }
        rc = assign(cfg, (size_t)i, val, COMMON_SRC_FLAG, who, err, errlen);
    }
    if (rc) common_cfg_free(cfg);
    return rc;
}

void common_cfg_free(common_cfg_t *cfg) {
    if (cfg->vals) {
        for (size_t i = 0; i < cfg->nopts; i++) val_clear(&cfg->vals[i]);
    }
    free(cfg->vals);
    free(cfg->pos);
    memset(cfg, 0, sizeof *cfg);
}

static const common_cfg_val_t *val_of(const common_cfg_t *cfg, const char *name) {
    int i = find_opt(cfg->opts, cfg->nopts, name, strlen(name));
    if (i < 0) {
        fprintf(stderr, "internal error: unknown option '%s' looked up\n", name);
        abort();
    }
    return &cfg->vals[i];
}

const char *common_cfg_str(const common_cfg_t *cfg, const char *name) {
    return val_of(cfg, name)->str;
}

uint64_t common_cfg_u64(const common_cfg_t *cfg, const char *name) {
    return val_of(cfg, name)->u64;
}

int common_cfg_bool(const common_cfg_t *cfg, const char *name) {
    return val_of(cfg, name)->u64 != 0;
}

size_t common_cfg_list(const common_cfg_t *cfg, const char *name, char *const **items) {
    const common_cfg_val_t *v = val_of(cfg, name);
    if (items) *items = v->items;
    return v->nitems;
}

common_src_t common_cfg_source(const common_cfg_t *cfg, const char *name) {
    return val_of(cfg, name)->src;
}

void common_cfg_help(FILE *f, const char *usage, const char *description, const common_opt_t *opts,
                     size_t nopts, const char *epilog) {
    fprintf(f, "Usage: %s\n", usage);
    if (description) fprintf(f, "\n%s\n", description);
    fprintf(f, "\nOptions (flag > environment > default):\n");
    for (size_t i = 0; i < nopts; i++) {
        const common_opt_t *o = &opts[i];
        char lhs[96];
        if (o->type == COMMON_OPT_BOOL)
            snprintf(lhs, sizeof lhs, "--%s", o->name);
        else
            snprintf(lhs, sizeof lhs, "--%s=%s", o->name, o->metavar ? o->metavar : "VALUE");
        fprintf(f, "  %-28s %s", lhs, o->help ? o->help : "");
        if (o->type == COMMON_OPT_LIST) fprintf(f, " (repeatable)");
        if (o->env || o->def) {
            fprintf(f, " [");
            if (o->env) fprintf(f, "env %s", o->env);
            if (o->env && o->def) fprintf(f, "; ");
            if (o->def) fprintf(f, "default %s", *o->def ? o->def : "\"\"");
            fprintf(f, "]");
        }
        fputc('\n', f);
    }
    fprintf(f, "  %-28s %s\n", "--help", "show this help and exit");
    if (epilog) fprintf(f, "\n%s\n", epilog);
}
