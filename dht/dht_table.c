/* SPDX-License-Identifier: MIT */
/* Routing table: see dht_table.h. Rows keep nodes sorted by id for O(log k) lookups. */
#include "dht/dht_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

typedef struct dht_table_row {
    size_t n;
    dht_table_node_t nodes[DHT_TABLE_K];
} dht_table_row_t;

struct dht_table {
    uint8_t id[32];
    size_t size;
    dht_table_row_t *rows[DHT_TABLE_ROWS];
};

dht_table_t *dht_table_new(const uint8_t id[32]) {
    dht_table_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    memcpy(t->id, id, 32);
    return t;
}

void dht_table_free(dht_table_t *t) {
    if (!t) return;
    for (size_t i = 0; i < DHT_TABLE_ROWS; i++) free(t->rows[i]);
    free(t);
}

const uint8_t *dht_table_id(const dht_table_t *t) {
    return t->id;
}
size_t dht_table_size(const dht_table_t *t) {
    return t->size;
}

unsigned dht_table_row_of(const dht_table_t *t, const uint8_t id[32]) {
    for (unsigned i = 0; i < 32; i++) {
        uint8_t x = (uint8_t)(id[i] ^ t->id[i]);
        if (x) {
            unsigned b = 0;
            while (!(x & 0x80)) {
                x = (uint8_t)(x << 1);
                b++;
            }
            return i * 8 + b;
        }
    }
    return DHT_TABLE_ROWS - 1;
}

/* binary search in a row; returns index of match or insertion point (negative-1 encoded) */
static long row_find(const dht_table_row_t *r, const uint8_t id[32], size_t *ins) {
    size_t l = 0, h = r->n;
    while (l < h) {
        size_t m = (l + h) / 2;
        int c = memcmp(id, r->nodes[m].id, 32);
        if (c == 0) return (long)m;
        if (c < 0)
            h = m;
        else
            l = m + 1;
    }
    if (ins) *ins = l;
    return -1;
}

dht_table_add_result_t dht_table_add(dht_table_t *t, const dht_table_node_t *n, uint32_t tick,
                                     dht_table_node_t **oldest) {
    if (oldest) *oldest = NULL;
    if (memcmp(n->id, t->id, 32) == 0) return DHT_TABLE_SELF;
    unsigned i = dht_table_row_of(t, n->id);
    dht_table_row_t *r = t->rows[i];
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return DHT_TABLE_FULL; /* out of memory: behave as full, nothing to ping */
        t->rows[i] = r;
    }
    size_t ins = 0;
    long at = row_find(r, n->id, &ins);
    if (at >= 0) {
        r->nodes[at] = *n;
        return DHT_TABLE_ADDED;
    }
    if (r->n >= DHT_TABLE_K) {
        if (oldest) {
            dht_table_node_t *o = NULL;
            for (size_t j = 0; j < r->n; j++) {
                dht_table_node_t *c = &r->nodes[j];
                if (c->pinged == tick) continue;
                if (!o || o->pinged > c->pinged || (o->pinged == c->pinged && o->added > c->added))
                    o = c;
            }
            *oldest = o;
        }
        return DHT_TABLE_FULL;
    }
    memmove(&r->nodes[ins + 1], &r->nodes[ins], (r->n - ins) * sizeof r->nodes[0]);
    r->nodes[ins] = *n;
    r->n++;
    t->size++;
    return DHT_TABLE_ADDED;
}

dht_table_node_t *dht_table_get(dht_table_t *t, const uint8_t id[32]) {
    dht_table_row_t *r = t->rows[dht_table_row_of(t, id)];
    if (!r) return NULL;
    long at = row_find(r, id, NULL);
    return at >= 0 ? &r->nodes[at] : NULL;
}

int dht_table_remove(dht_table_t *t, const uint8_t id[32]) {
    unsigned i = dht_table_row_of(t, id);
    dht_table_row_t *r = t->rows[i];
    if (!r) return 0;
    long at = row_find(r, id, NULL);
    if (at < 0) return 0;
    memmove(&r->nodes[at], &r->nodes[at + 1], (r->n - (size_t)at - 1) * sizeof r->nodes[0]);
    r->n--;
    t->size--;
    if (r->n == 0) {
        free(r);
        t->rows[i] = NULL;
    }
    return 1;
}

int dht_xor_cmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]) {
    for (size_t i = 0; i < 32; i++) {
        if (a[i] == b[i]) continue;
        return (int)(target[i] ^ a[i]) - (int)(target[i] ^ b[i]);
    }
    return 0;
}

size_t dht_table_closest(const dht_table_t *t, const uint8_t target[32], dht_table_node_t *out,
                         size_t max) {
    size_t n = 0;
    if (max == 0) return 0;
    /* Insertion into a bounded sorted array over all nodes: at most 256*20 candidates. */
    for (size_t i = 0; i < DHT_TABLE_ROWS; i++) {
        const dht_table_row_t *r = t->rows[i];
        if (!r) continue;
        for (size_t j = 0; j < r->n; j++) {
            const dht_table_node_t *c = &r->nodes[j];
            if (n == max && dht_xor_cmp(target, c->id, out[n - 1].id) >= 0) continue;
            size_t k = n < max ? n : max - 1;
            while (k > 0 && dht_xor_cmp(target, c->id, out[k - 1].id) < 0) {
                out[k] = out[k - 1];
                k--;
            }
            out[k] = *c;
            if (n < max) n++;
        }
    }
    return n;
}

dht_table_node_t *dht_table_random(dht_table_t *t, uint32_t r) {
    if (t->size == 0) return NULL;
    size_t k = r % t->size;
    for (size_t i = 0; i < DHT_TABLE_ROWS; i++) {
        dht_table_row_t *row = t->rows[i];
        if (!row) continue;
        if (k < row->n) return &row->nodes[k];
        k -= row->n;
    }
    return NULL;
}

void dht_table_foreach(dht_table_t *t, void (*fn)(void *ud, dht_table_node_t *n), void *ud) {
    for (size_t i = 0; i < DHT_TABLE_ROWS; i++) {
        dht_table_row_t *row = t->rows[i];
        if (!row) continue;
        for (size_t j = 0; j < row->n; j++) fn(ud, &row->nodes[j]);
    }
}

int dht_table_set_id(dht_table_t *t, const uint8_t id[32]) {
    dht_table_t *nt = dht_table_new(id);
    if (!nt) return COMMON_ENOMEM;
    for (size_t i = 0; i < DHT_TABLE_ROWS; i++) {
        dht_table_row_t *row = t->rows[i];
        if (!row) continue;
        for (size_t j = 0; j < row->n; j++) (void)dht_table_add(nt, &row->nodes[j], 0, NULL);
        free(row);
        t->rows[i] = NULL;
    }
    memcpy(t->id, id, 32);
    memcpy(t->rows, nt->rows, sizeof t->rows);
    t->size = nt->size;
    free(nt);
    return 0;
}
