/* SPDX-License-Identifier: MIT */
/* The official Cashu test vectors, committed in tests/cashu/data/ (a copy of
 * shared/data/cashu-vectors.json) so that a clone tests itself wherever it lies. ctest sets
 * SWARMDVM_SOURCE_DIR. The caller owns the returned tree (cJSON_Delete). */
#ifndef SWARMDVM_TESTS_CASHU_VECTORS_H
#define SWARMDVM_TESTS_CASHU_VECTORS_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static inline cJSON *cashu_test_vectors_load(void) {
    const char *src = getenv("SWARMDVM_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/cashu/data/cashu-vectors.json", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[got] = 0;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    return root;
}

#endif
