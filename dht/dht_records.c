/* SPDX-License-Identifier: MIT */
/* Record store of a persistent node: see dht_records.h. */
#include "dht/dht_records.h"

#include <stdlib.h>
#include <string.h>

#include "common/common_err.h"

typedef struct rec_entry {
    dht_peer_record_t rec;
    uint64_t added;
} rec_entry_t;

typedef struct topic_entry {
    uint8_t topic[32];
    uint64_t bump;
    uint64_t updated;
    size_t n;
    rec_entry_t recs[DHT_RECORDS_PER_TOPIC];
} topic_entry_t;

struct dht_records {
    size_t max_topics, max_records, max_routes;
    uint64_t ttl;
    topic_entry_t *topics;
    size_t ntopics, cap_topics;
    size_t nrecords;
    dht_route_t *routes;
    size_t nroutes, cap_routes;
};

dht_records_t *dht_records_new(size_t max_topics, size_t max_records, size_t max_routes,
                               uint64_t ttl_ms) {
    dht_records_t *rs = calloc(1, sizeof *rs);
    if (!rs) return NULL;
    rs->max_topics = max_topics ? max_topics : DHT_RECORDS_MAX_TOPICS;
    rs->max_records = max_records ? max_records : DHT_RECORDS_MAX_RECORDS;
    rs->max_routes = max_routes ? max_routes : DHT_RECORDS_MAX_ROUTES;
    rs->ttl = ttl_ms ? ttl_ms : DHT_RECORDS_TTL_MS;
    return rs;
}

void dht_records_free(dht_records_t *rs) {
    if (!rs) return;
    free(rs->topics);
    free(rs->routes);
    free(rs);
}

static topic_entry_t *find_topic(dht_records_t *rs, const uint8_t topic[32]) {
    for (size_t i = 0; i < rs->ntopics; i++)
        if (memcmp(rs->topics[i].topic, topic, 32) == 0) return &rs->topics[i];
    return NULL;
}

static void drop_topic(dht_records_t *rs, topic_entry_t *t) {
    size_t i = (size_t)(t - rs->topics);
    rs->nrecords -= t->n;
    rs->topics[i] = rs->topics[rs->ntopics - 1];
    rs->ntopics--;
}

static void drop_rec(dht_records_t *rs, topic_entry_t *t, size_t j) {
    memmove(&t->recs[j], &t->recs[j + 1], (t->n - j - 1) * sizeof t->recs[0]);
    t->n--;
    rs->nrecords--;
}

/* evict the globally oldest record (and its topic if it empties) */
static void evict_oldest_record(dht_records_t *rs) {
    topic_entry_t *bt = NULL;
    size_t bj = 0;
    for (size_t i = 0; i < rs->ntopics; i++) {
        topic_entry_t *t = &rs->topics[i];
        /* records within a topic are kept oldest first */
        if (t->n && (!bt || t->recs[0].added < bt->recs[bj].added)) {
            bt = t;
            bj = 0;
        }
    }
    if (!bt) return;
    drop_rec(rs, bt, bj);
    if (bt->n == 0 && bt->bump == 0) drop_topic(rs, bt);
}

static topic_entry_t *get_or_add_topic(dht_records_t *rs, const uint8_t topic[32], uint64_t now) {
    topic_entry_t *t = find_topic(rs, topic);
    if (t) return t;
    if (rs->ntopics >= rs->max_topics) {
        size_t oi = 0;
        for (size_t i = 1; i < rs->ntopics; i++)
            if (rs->topics[i].updated < rs->topics[oi].updated) oi = i;
        drop_topic(rs, &rs->topics[oi]);
    }
    if (rs->ntopics == rs->cap_topics) {
        size_t nc = rs->cap_topics ? rs->cap_topics * 2 : 16;
        if (nc > rs->max_topics) nc = rs->max_topics;
        topic_entry_t *nt = realloc(rs->topics, nc * sizeof *nt);
        if (!nt) return NULL;
        rs->topics = nt;
        rs->cap_topics = nc;
    }
    t = &rs->topics[rs->ntopics++];
    memset(t, 0, sizeof *t);
    memcpy(t->topic, topic, 32);
    t->updated = now;
    return t;
}

int dht_records_add(dht_records_t *rs, const uint8_t topic[32], const dht_peer_record_t *rec,
                    uint64_t now) {
    topic_entry_t *t = get_or_add_topic(rs, topic, now);
    if (!t) return COMMON_ENOMEM;
    t->updated = now;
    for (size_t j = 0; j < t->n; j++) {
        if (memcmp(t->recs[j].rec.public_key, rec->public_key, 32) == 0) {
            drop_rec(rs, t, j);
            break;
        }
    }
    if (t->n == DHT_RECORDS_PER_TOPIC) drop_rec(rs, t, 0);
    while (rs->nrecords >= rs->max_records && rs->nrecords > 0) {
        evict_oldest_record(rs);
        t = find_topic(rs, topic); /* eviction may have moved or removed it */
        if (!t) {
            t = get_or_add_topic(rs, topic, now);
            if (!t) return COMMON_ENOMEM;
        }
    }
    t->recs[t->n].rec = *rec;
    if (t->recs[t->n].rec.nrelays > DHT_MAX_RELAYS) t->recs[t->n].rec.nrelays = DHT_MAX_RELAYS;
    t->recs[t->n].added = now;
    t->n++;
    rs->nrecords++;
    return 0;
}

int dht_records_remove(dht_records_t *rs, const uint8_t topic[32], const uint8_t public_key[32]) {
    topic_entry_t *t = find_topic(rs, topic);
    if (!t) return 0;
    for (size_t j = 0; j < t->n; j++) {
        if (memcmp(t->recs[j].rec.public_key, public_key, 32) == 0) {
            drop_rec(rs, t, j);
            if (t->n == 0 && t->bump == 0) drop_topic(rs, t);
            return 1;
        }
    }
    return 0;
}

size_t dht_records_get(dht_records_t *rs, const uint8_t topic[32], uint64_t now,
                       dht_peer_record_t *out, size_t max) {
    topic_entry_t *t = find_topic(rs, topic);
    if (!t) return 0;
    size_t n = 0;
    /* newest first */
    for (size_t j = t->n; j > 0 && n < max; j--) {
        if (now - t->recs[j - 1].added >= rs->ttl) continue;
        out[n++] = t->recs[j - 1].rec;
    }
    return n;
}

uint64_t dht_records_bump(dht_records_t *rs, const uint8_t topic[32]) {
    topic_entry_t *t = find_topic(rs, topic);
    return t ? t->bump : 0;
}

void dht_records_set_bump(dht_records_t *rs, const uint8_t topic[32], uint64_t bump, uint64_t now) {
    topic_entry_t *t = get_or_add_topic(rs, topic, now);
    if (t && bump > t->bump) t->bump = bump;
}

int dht_records_route_set(dht_records_t *rs, const uint8_t target[32], const dht_addr_t *relay,
                          const dht_peer_record_t *rec, uint64_t now) {
    dht_route_t *r = NULL;
    for (size_t i = 0; i < rs->nroutes; i++)
        if (memcmp(rs->routes[i].target, target, 32) == 0) r = &rs->routes[i];
    if (!r) {
        if (rs->nroutes >= rs->max_routes) {
            size_t oi = 0;
            for (size_t i = 1; i < rs->nroutes; i++)
                if (rs->routes[i].added < rs->routes[oi].added) oi = i;
            rs->routes[oi] = rs->routes[--rs->nroutes];
        }
        if (rs->nroutes == rs->cap_routes) {
            size_t nc = rs->cap_routes ? rs->cap_routes * 2 : 16;
            if (nc > rs->max_routes) nc = rs->max_routes;
            dht_route_t *nr = realloc(rs->routes, nc * sizeof *nr);
            if (!nr) return COMMON_ENOMEM;
            rs->routes = nr;
            rs->cap_routes = nc;
        }
        r = &rs->routes[rs->nroutes++];
    }
    memcpy(r->target, target, 32);
    r->relay = *relay;
    r->record = *rec;
    if (r->record.nrelays > DHT_MAX_RELAYS) r->record.nrelays = DHT_MAX_RELAYS;
    r->added = now;
    return 0;
}

const dht_route_t *dht_records_route_get(dht_records_t *rs, const uint8_t target[32],
                                         uint64_t now) {
    for (size_t i = 0; i < rs->nroutes; i++)
        if (memcmp(rs->routes[i].target, target, 32) == 0)
            return now - rs->routes[i].added < rs->ttl ? &rs->routes[i] : NULL;
    return NULL;
}

int dht_records_route_delete(dht_records_t *rs, const uint8_t target[32]) {
    for (size_t i = 0; i < rs->nroutes; i++) {
        if (memcmp(rs->routes[i].target, target, 32) == 0) {
            rs->routes[i] = rs->routes[--rs->nroutes];
            return 1;
        }
    }
    return 0;
}

void dht_records_expire(dht_records_t *rs, uint64_t now) {
    for (size_t i = 0; i < rs->ntopics;) {
        topic_entry_t *t = &rs->topics[i];
        while (t->n && now - t->recs[0].added >= rs->ttl) drop_rec(rs, t, 0);
        if (t->n == 0 && now - t->updated >= rs->ttl) {
            drop_topic(rs, t);
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < rs->nroutes;) {
        if (now - rs->routes[i].added >= rs->ttl) {
            rs->routes[i] = rs->routes[--rs->nroutes];
            continue;
        }
        i++;
    }
}

void dht_records_stats(const dht_records_t *rs, dht_records_stats_t *st) {
    st->topics = rs->ntopics;
    st->records = rs->nrecords;
    st->routes = rs->nroutes;
}
