/*
 * test_join.c - the join cache: 100k ids inserted, found and deleted at random, checked against
 * a plain reference array; ids longer than DW_JOIN_ID_INLINE; table growth at load 1/2;
 * backward-shift deletion across the end of the table (ids picked so that their home slots
 * collide at the wrap-around); the dirty list and the deleted-id buffer; record encode/decode
 * (every state, flag and class, classes and numbers by the model's task, records of the previous
 * encoder) with unknown models and corrupt blobs; the reference-counted string tables and their
 * bounds; the strings a join holds go back down as records are deleted.
 *
 * After every structural step the test checks the open-addressing invariants itself by walking
 * j->slots: every live record is in exactly one slot, and no empty slot lies between a record's
 * home slot and its actual slot (otherwise lookups would stop early and lose it).
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_join.h"

#include "dw_test.h"

/* Distinct ids in the randomized test (count). */
#define N_IDS 100000
/* Random insert/delete operations after the initial fill (count). */
#define N_RANDOM_OPS 200000
/* Slots of a fresh table (the first growth), restated from dw_join.c for the wrap test. */
#define FIRST_SLOTS 1024

static size_t make_id(char *buf, size_t cap, const char *prefix, size_t i)
{
    int n = snprintf(buf, cap, "%s-%07zu", prefix, i);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static uint64_t f64_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

/* Walks the table: slot/record consistency, no holes inside probe runs, counts. */
static void check_table(struct dw_join *j)
{
    if (j->n_slots == 0) {
        assert_int_equal(j->count, 0);
        return;
    }
    assert_int_equal(j->n_slots & (j->n_slots - 1), 0); /* power of two */
    assert_true(j->count * 2 <= j->n_slots);            /* load factor <= 1/2 */
    size_t mask = j->n_slots - 1;
    size_t occupied = 0;
    unsigned char *seen = calloc(j->n_used ? j->n_used : 1, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < j->n_slots; i++) {
        uint32_t v = (uint32_t)j->slots[i]; /* low half: pool index + 1; high: hash tag */
        if (!v) {
            continue;
        }
        occupied++;
        assert_true(v - 1 < j->n_used);
        assert_int_equal(seen[v - 1], 0); /* one slot per record */
        seen[v - 1] = 1;
        struct dw_join_rec *rec = &j->pool[v - 1];
        uint64_t hash = dw_hash64(dw_join_id(rec), rec->id_len);
        assert_int_equal(j->slots[i] >> 32, hash >> 32);
        assert_int_not_equal(rec->state, DW_JOIN_FREE);
        for (size_t k = (size_t)hash & mask; k != i; k = (k + 1) & mask) {
            if (!j->slots[k]) {
                fail_msg("hole at slot %zu in the probe run of slot %zu", k, i);
            }
        }
        assert_ptr_equal(dw_join_find(j, dw_join_id(rec), rec->id_len), rec);
    }
    assert_int_equal(occupied, j->count);
    /* Pool slots not in the table are free and on the free list. */
    size_t n_free = 0;
    for (size_t i = 0; i < j->n_used; i++) {
        if (!seen[i]) {
            assert_int_equal(j->pool[i].state, DW_JOIN_FREE);
            n_free++;
        }
    }
    assert_int_equal(n_free, j->n_free);
    free(seen);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    assert_null(dw_join_find(&j, "x", 1)); /* empty table */
    unsigned char *present = calloc(N_IDS, 1);
    assert_non_null(present);
    char id[64];
    size_t live = 0, max_live = 0;
    for (size_t i = 0; i < N_IDS; i++) {
        size_t len = make_id(id, sizeof(id), "p", i);
        struct dw_join_rec *rec = dw_join_insert(&j, id, len, DW_JOIN_PRED);
        rec->ts_ms = (int64_t)i * 3 - 7; /* a tag to recognise the record by */
        present[i] = 1;
        live++;
    }
    max_live = live;
    assert_int_equal(j.count, N_IDS);
    check_table(&j);

    /* Random deletes and re-inserts, mirrored in the reference. */
    uint64_t seed = 42;
    for (size_t op = 0; op < N_RANDOM_OPS; op++) {
        size_t i = (size_t)(dw_splitmix64(&seed) % N_IDS);
        size_t len = make_id(id, sizeof(id), "p", i);
        struct dw_join_rec *rec = dw_join_find(&j, id, len);
        if (present[i]) {
            assert_non_null(rec);
            assert_int_equal(rec->ts_ms, (int64_t)i * 3 - 7);
            dw_join_delete(&j, rec);
            present[i] = 0;
            live--;
        } else {
            assert_null(rec);
            /* Re-insert only sometimes, so the table drifts away from full. */
            if (dw_splitmix64(&seed) % 3 == 0) {
                rec = dw_join_insert(&j, id, len, DW_JOIN_LABEL);
                rec->ts_ms = (int64_t)i * 3 - 7;
                present[i] = 1;
                live++;
            }
        }
        max_live = DW_MAX(max_live, live);
    }
    assert_int_equal(j.count, live);
    assert_true(live < N_IDS / 2); /* the random walk really deleted most ids */
    for (size_t i = 0; i < N_IDS; i++) {
        size_t len = make_id(id, sizeof(id), "p", i);
        struct dw_join_rec *rec = dw_join_find(&j, id, len);
        if (present[i]) {
            assert_non_null(rec);
            assert_int_equal(rec->ts_ms, (int64_t)i * 3 - 7);
            assert_int_equal(rec->id_len, len);
            assert_memory_equal(dw_join_id(rec), id, len);
        } else if (rec) {
            fail_msg("deleted id %s still found", id);
        }
    }
    /* Freed pool slots are reused: the pool never outgrows the live high-water mark. */
    assert_true(j.n_used <= max_live);
    check_table(&j);
    /* Ids never inserted are not found. */
    for (size_t i = 0; i < 1000; i++) {
        size_t len = make_id(id, sizeof(id), "q", i);
        assert_null(dw_join_find(&j, id, len));
    }
    free(present);
    dw_join_free(&j);
    assert_null(j.pool);
}

static void test_long_ids(void **state)
{
    (void)state;
    static const size_t lens[] = {
        1, DW_JOIN_ID_INLINE - 1, DW_JOIN_ID_INLINE, DW_JOIN_ID_INLINE + 1, 100, 256, 1000};
    size_t n = sizeof(lens) / sizeof(lens[0]);
    char *ids[2 * sizeof(lens) / sizeof(lens[0])];
    struct dw_join j;
    dw_join_init(&j);
    /* Two ids per length that share every byte but the last (long ids share 40+ bytes). */
    for (size_t k = 0; k < 2 * n; k++) {
        size_t len = lens[k / 2];
        ids[k] = malloc(len);
        assert_non_null(ids[k]);
        for (size_t b = 0; b < len; b++) {
            ids[k][b] = (char)('a' + (b % 26));
        }
        ids[k][len ? len - 1 : 0] = (char)('0' + (k % 2));
        struct dw_join_rec *rec = dw_join_insert(&j, ids[k], len, DW_JOIN_PRED);
        rec->win_ms = (int64_t)k;
        if (len > DW_JOIN_ID_INLINE) {
            assert_ptr_equal(dw_join_id(rec), rec->id_long);
        } else {
            assert_ptr_equal(dw_join_id(rec), rec->id);
        }
    }
    check_table(&j);
    for (size_t k = 0; k < 2 * n; k++) {
        size_t len = lens[k / 2];
        struct dw_join_rec *rec = dw_join_find(&j, ids[k], len);
        assert_non_null(rec);
        assert_int_equal(rec->win_ms, (int64_t)k);
        assert_int_equal(rec->id_len, len);
        assert_memory_equal(dw_join_id(rec), ids[k], len);
        /* A prefix of an id is another id. */
        if (len > 1) {
            assert_null(dw_join_find(&j, ids[k], len - 1));
        }
    }
    /* Deleting a long id a checkpoint wrote records its full bytes for the next one. */
    dw_join_mark_stored(&j);
    dw_join_clear_dirty(&j);
    size_t k_long = 2 * (n - 1); /* the 1000-byte id */
    dw_join_delete(&j, dw_join_find(&j, ids[k_long], 1000));
    assert_null(dw_join_find(&j, ids[k_long], 1000));
    assert_non_null(dw_join_find(&j, ids[k_long + 1], 1000));
    assert_int_equal(j.n_deleted, 1);
    struct dw_reader rd;
    dw_reader_init(&rd, j.deleted.data, j.deleted.len);
    const char *s;
    assert_int_equal(dw_rd_str(&rd, &s), 1000);
    assert_memory_equal(s, ids[k_long], 1000);
    assert_int_equal(rd.pos, rd.len);
    /* The freed slot takes a short id next: no stale long pointer. */
    struct dw_join_rec *rec = dw_join_insert(&j, "short", 5, DW_JOIN_PRED);
    assert_ptr_equal(dw_join_id(rec), rec->id);
    assert_memory_equal(dw_join_id(rec), "short", 5);
    check_table(&j);
    for (size_t k = 0; k < 2 * n; k++) {
        free(ids[k]);
    }
    dw_join_free(&j); /* LeakSanitizer: the long ids are released */
}

static void test_growth(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    assert_int_equal(j.n_slots, 0);
    char id[64];
    size_t prev_slots = 0, growths = 0;
    for (size_t i = 0; i < 5000; i++) {
        size_t len = make_id(id, sizeof(id), "g", i);
        struct dw_join_rec *rec = dw_join_insert(&j, id, len, DW_JOIN_PRED);
        rec->ts_ms = (int64_t)i;
        assert_int_equal(j.count, i + 1);
        /* Load factor at most 1/2 after every insert; the table only doubles. */
        assert_true(j.count * 2 <= j.n_slots);
        if (j.n_slots != prev_slots) {
            assert_true(prev_slots == 0 || j.n_slots == 2 * prev_slots);
            growths++;
            prev_slots = j.n_slots;
            /* Right after a growth, everything inserted before is still there. */
            for (size_t k = 0; k <= i; k++) {
                size_t klen = make_id(id, sizeof(id), "g", k);
                struct dw_join_rec *r = dw_join_find(&j, id, klen);
                assert_non_null(r);
                assert_int_equal(r->ts_ms, (int64_t)k);
            }
        }
    }
    /* 1024 slots hold 512 records; 5000 need 16384 slots: 1024, 2048, ..., 16384. */
    assert_int_equal(j.n_slots, 16384);
    assert_int_equal(growths, 5);
    assert_true(j.pool_cap >= 5000);
    check_table(&j);
    dw_join_free(&j);
}

/*
 * A pool that held a burst of waiting records and is now mostly free gives its pages back:
 * dw_join_compact() moves the live records into a pool of about twice their number and rebuilds
 * the slots; every record is found with its contents, a long id included, and the join goes on.
 * A pool more than a quarter live is left as it is.
 */
static void test_compact(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    char id[64], long_id[128];
    for (size_t i = 0; i < 8000; i++) {
        size_t len = make_id(id, sizeof(id), "c", i);
        dw_join_insert(&j, id, len, DW_JOIN_PRED)->ts_ms = (int64_t)i;
    }
    memset(long_id, 'L', 100);
    struct dw_join_rec *lr = dw_join_insert(&j, long_id, 100, DW_JOIN_PRED);
    lr->ts_ms = -1;
    dw_join_clear_dirty(&j);
    size_t big_cap = j.pool_cap, big_slots = j.n_slots;
    assert_true(big_cap >= 8001);
    for (size_t i = 0; i < 8000; i++) {
        if (i % 20 != 0) { /* 400 stay */
            size_t len = make_id(id, sizeof(id), "c", i);
            dw_join_delete(&j, dw_join_find(&j, id, len));
        }
    }
    dw_join_clear_dirty(&j);
    dw_join_compact(&j);
    assert_int_equal(j.count, 401);
    assert_int_equal(j.n_used, 401);
    assert_int_equal(j.n_free, 0);
    assert_int_equal(j.pool_cap, 1024);
    assert_true(j.n_slots < big_slots);
    check_table(&j);
    for (size_t i = 0; i < 8000; i++) {
        size_t len = make_id(id, sizeof(id), "c", i);
        struct dw_join_rec *r = dw_join_find(&j, id, len);
        if (i % 20 == 0) {
            assert_non_null(r);
            assert_int_equal(r->ts_ms, (int64_t)i);
            assert_int_equal(r->state, DW_JOIN_PRED);
        } else {
            assert_null(r);
        }
    }
    struct dw_join_rec *l2 = dw_join_find(&j, long_id, 100);
    assert_non_null(l2);
    assert_int_equal(l2->ts_ms, -1);
    for (size_t i = 8000; i < 9000; i++) { /* and it grows again */
        size_t len = make_id(id, sizeof(id), "c", i);
        dw_join_insert(&j, id, len, DW_JOIN_PRED)->ts_ms = (int64_t)i;
    }
    check_table(&j);
    dw_join_clear_dirty(&j);
    size_t cap = j.pool_cap;
    dw_join_compact(&j); /* 1401 live of 1401: nothing to do */
    assert_int_equal(j.pool_cap, cap);
    check_table(&j);
    dw_join_free(&j);
}

/* Finds up to `want` ids "w-<n>" whose home slot (hash & (slots - 1)) is `home`. */
static size_t ids_with_home(size_t home, size_t want, size_t *next, char ids[][32], size_t *lens)
{
    size_t got = 0;
    while (got < want) {
        size_t len = make_id(ids[got], sizeof(ids[got]), "w", (*next)++);
        if ((dw_hash64(ids[got], len) & (FIRST_SLOTS - 1)) == home) {
            lens[got] = len;
            got++;
        }
    }
    return got;
}

#define N_WRAP 12

static void wrap_fill(struct dw_join *j, char ids[N_WRAP][32], size_t *lens)
{
    dw_join_init(j);
    for (size_t i = 0; i < N_WRAP; i++) {
        struct dw_join_rec *rec = dw_join_insert(j, ids[i], lens[i], DW_JOIN_PRED);
        rec->ts_ms = (int64_t)i;
    }
    assert_int_equal(j->n_slots, FIRST_SLOTS);
}

static size_t slot_of(const struct dw_join *j, const struct dw_join_rec *rec)
{
    uint32_t v = (uint32_t)(rec - j->pool) + 1;
    for (size_t i = 0; i < j->n_slots; i++) {
        if ((uint32_t)j->slots[i] == v) {
            return i;
        }
    }
    fail_msg("record not in the table");
    return 0;
}

static void test_backward_shift_wraparound(void **state)
{
    (void)state;
    /* Homes 1022 (x4), 1023 (x3), 0 (x3), 1 (x2): one probe run across the table's end. */
    char ids[N_WRAP][32];
    size_t lens[N_WRAP];
    size_t next = 0;
    ids_with_home(FIRST_SLOTS - 2, 4, &next, ids, lens);
    ids_with_home(FIRST_SLOTS - 1, 3, &next, ids + 4, lens + 4);
    ids_with_home(0, 3, &next, ids + 7, lens + 7);
    ids_with_home(1, 2, &next, ids + 10, lens + 10);

    struct dw_join j;
    wrap_fill(&j, ids, lens);
    /* The run really wraps: 1022..1023 then 0..9, all occupied, and every record with home 1022
     * or 1023 sits at a slot below its home. */
    size_t wrapped = 0;
    for (size_t i = 0; i < N_WRAP; i++) {
        struct dw_join_rec *rec = dw_join_find(&j, ids[i], lens[i]);
        assert_non_null(rec);
        size_t s = slot_of(&j, rec);
        size_t home = (size_t)dw_hash64(ids[i], lens[i]) & (FIRST_SLOTS - 1);
        wrapped += s < home;
    }
    assert_int_equal(wrapped, 5); /* two of home 1022, all three of home 1023 */
    for (size_t s = 0; s < 10; s++) {
        assert_int_not_equal(j.slots[s], 0);
    }
    assert_int_not_equal(j.slots[FIRST_SLOTS - 2], 0);
    assert_int_not_equal(j.slots[FIRST_SLOTS - 1], 0);
    check_table(&j);
    dw_join_free(&j);

    /* Delete each id alone from a fresh fill, then the rest in a seeded random order: the
     * others stay findable and the run stays compact after every step. */
    uint64_t seed = 7;
    for (size_t first = 0; first < N_WRAP; first++) {
        wrap_fill(&j, ids, lens);
        unsigned char gone[N_WRAP] = {0};
        size_t order[N_WRAP];
        order[0] = first;
        size_t n_order = 1;
        for (size_t i = 0; i < N_WRAP; i++) {
            if (i != first) {
                order[n_order++] = i;
            }
        }
        for (size_t i = N_WRAP - 1; i > 1; i--) {
            size_t k = 1 + (size_t)(dw_splitmix64(&seed) % i);
            size_t t = order[i];
            order[i] = order[k];
            order[k] = t;
        }
        for (size_t step = 0; step < N_WRAP; step++) {
            size_t victim = order[step];
            struct dw_join_rec *rec = dw_join_find(&j, ids[victim], lens[victim]);
            assert_non_null(rec);
            dw_join_delete(&j, rec);
            gone[victim] = 1;
            for (size_t i = 0; i < N_WRAP; i++) {
                rec = dw_join_find(&j, ids[i], lens[i]);
                if (gone[i]) {
                    assert_null(rec);
                } else {
                    if (!rec) {
                        fail_msg("id %zu lost after deleting %zu (step %zu)", i, victim, step);
                    }
                    assert_int_equal(rec->ts_ms, (int64_t)i);
                }
            }
            check_table(&j);
        }
        /* Every slot is empty again: no stale entry was left behind. */
        for (size_t s = 0; s < j.n_slots; s++) {
            assert_int_equal(j.slots[s], 0);
        }
        dw_join_free(&j);
    }
}

static void test_dirty_and_deleted(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    struct dw_join_rec *a = dw_join_insert(&j, "a", 1, DW_JOIN_PRED);
    uint32_t ia = (uint32_t)(a - j.pool);
    struct dw_join_rec *b = dw_join_insert(&j, "bb", 2, DW_JOIN_LABEL);
    uint32_t ib = (uint32_t)(b - j.pool);
    struct dw_join_rec *c = dw_join_insert(&j, "ccc", 3, DW_JOIN_DONE);
    uint32_t ic = (uint32_t)(c - j.pool);
    /* Fresh records are dirty, listed once each, in insertion order. */
    assert_int_equal(j.n_dirty, 3);
    assert_int_equal(j.dirty[0], ia);
    assert_int_equal(j.dirty[1], ib);
    assert_int_equal(j.dirty[2], ic);
    for (size_t i = 0; i < 3; i++) {
        assert_true(j.pool[j.dirty[i]].flags & DW_JREC_DIRTY);
    }
    /* Insert leaves the id, state and empty classes in place. */
    assert_int_equal(b->state, DW_JOIN_LABEL);
    assert_null(b->parked_label);
    assert_null(b->dups);
    assert_null(a->version);
    assert_null(a->pred_cls);
    assert_null(a->label_cls);
    /* Touching a dirty record does not list it twice. */
    dw_join_touch(&j, a);
    assert_int_equal(j.n_dirty, 3);

    /* The checkpoint writes them: they may be in Redis from now on. */
    dw_join_mark_stored(&j);
    for (size_t i = 0; i < 3; i++) {
        assert_true(j.pool[j.dirty[i]].flags & DW_JREC_STORED);
    }
    dw_join_clear_dirty(&j);
    assert_int_equal(j.n_dirty, 0);
    assert_int_equal(j.n_deleted, 0);
    assert_int_equal(j.deleted.len, 0);
    for (uint32_t i = 0; i < 3; i++) {
        assert_false(j.pool[i].flags & DW_JREC_DIRTY);
    }
    /* Other flags survive the clearing. */
    b->flags |= DW_JREC_SCORE | DW_JREC_LATE;
    dw_join_touch(&j, b);
    dw_join_touch(&j, b);
    assert_int_equal(j.n_dirty, 1);
    assert_int_equal(j.dirty[0], ib);
    dw_join_clear_dirty(&j);
    assert_int_equal(b->flags, DW_JREC_SCORE | DW_JREC_LATE | DW_JREC_STORED);

    /* Deletions: each id once, in order, as u32 length + bytes. */
    dw_join_delete(&j, dw_join_find(&j, "ccc", 3));
    dw_join_delete(&j, dw_join_find(&j, "a", 1));
    assert_int_equal(j.n_deleted, 2);
    assert_int_equal(j.count, 1);
    static const uint8_t want[] = {3, 0, 0, 0, 'c', 'c', 'c', 1, 0, 0, 0, 'a'};
    assert_int_equal(j.deleted.len, sizeof(want));
    assert_memory_equal(j.deleted.data, want, sizeof(want));
    assert_int_equal(j.n_dirty, 0); /* deleting does not dirty anything */
    assert_null(dw_join_find(&j, "a", 1));
    assert_non_null(dw_join_find(&j, "bb", 2));
    /* A new record reuses a freed pool slot and is dirty. */
    size_t used = j.n_used;
    struct dw_join_rec *d = dw_join_insert(&j, "dddd", 4, DW_JOIN_PRED);
    assert_int_equal(j.n_used, used);
    assert_int_equal(j.n_dirty, 1);
    assert_int_equal(j.dirty[0], (uint32_t)(d - j.pool));
    assert_true(d->flags & DW_JREC_DIRTY);
    dw_join_clear_dirty(&j);
    assert_int_equal(j.deleted.len, 0);
    assert_int_equal(j.n_deleted, 0);
    assert_int_equal(j.n_dirty, 0);
    assert_false(d->flags & DW_JREC_DIRTY);
    /* No checkpoint wrote "dddd" (cleared without one), nor "eeeee": no id to delete, no HDEL
     * of what Redis never had; a record loaded from Redis counts as written. */
    assert_false(d->flags & DW_JREC_STORED);
    dw_join_delete(&j, d);
    dw_join_delete(&j, dw_join_insert(&j, "eeeee", 5, DW_JOIN_PRED));
    assert_int_equal(j.n_deleted, 0);
    assert_int_equal(j.deleted.len, 0);
    check_table(&j);
    dw_join_free(&j);
}

/* ---- record codec ---- */

static long model_idx_of(const char *name, size_t len, void *opaque)
{
    int *calls = opaque;
    (*calls)++;
    if (len == 5 && memcmp(name, "churn", 5) == 0) {
        return 0;
    }
    if (len == 5 && memcmp(name, "fraud", 5) == 0) {
        return 1;
    }
    return -1;
}

/* Strings of the records built by hand below (a record points at interned texts). */
static struct dw_strtab g_strings;

static const char *intern(const char *s)
{
    const char *t = dw_strtab_ref(&g_strings, s, strlen(s), 0);
    assert_non_null(t);
    return t;
}

static void assert_same_text(const char *got, const char *want)
{
    if (!want) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_int_equal(dw_strtab_len(got), strlen(want));
        assert_string_equal(got, want);
    }
}

/* A joined record of the older layout, decoded into j: it moved to the joined set (the next
 * checkpoint deletes its hash field and appends the entry), holding no string. */
static void round_trip_joined(struct dw_join *j, const struct dw_join_rec *src, const char *id,
                              uint16_t want_model)
{
    const struct dw_join_done *d = dw_join_done_find(j, id, strlen(id));
    assert_non_null(d);
    assert_null(dw_join_find(j, id, strlen(id)));
    assert_int_equal(j->count, 0);
    assert_int_equal(j->n_done, 1);
    assert_int_equal(dw_join_n_new(j), 1);
    assert_int_equal(j->n_deleted, 1);
    assert_int_equal(j->n_dirty, 0);
    assert_int_equal(d->ts_ms, src->ts_ms);
    assert_int_equal(d->model_idx, want_model);
    assert_int_equal(d->flags, src->flags & (DW_JREC_LATE | DW_JREC_LABEL_NUM));
    if (src->flags & DW_JREC_LABEL_NUM) {
        assert_int_equal(d->label, f64_bits(src->label_num));
    } else if (src->label_cls) {
        assert_int_equal(d->label, dw_fp64(src->label_cls, strlen(src->label_cls)));
    }
    assert_int_equal(dw_join_classes(j, want_model), 0);
    assert_int_equal(dw_join_versions(j, want_model), 0);
    dw_join_free(j);
}

/* Encodes src, decodes it into a fresh join under id, checks every field, re-encodes. */
static void round_trip(const struct dw_join_rec *src, const char *model, uint16_t want_model)
{
    struct dw_buf b;
    dw_buf_init(&b);
    dw_join_rec_encode(src, model, &b);
    assert_int_equal(b.data[0], 1); /* codec version */
    assert_int_equal(b.data[1], src->state);
    assert_int_equal(b.data[2], src->flags & (uint8_t) ~(DW_JREC_DIRTY | DW_JREC_STORED));
    struct dw_join j;
    dw_join_init(&j);
    int calls = 0;
    const char *id = "round-trip-id-that-is-longer-than-forty-bytes-0123456789";
    assert_int_equal(dw_join_rec_decode(&j, id, strlen(id), b.data, b.len, model_idx_of, &calls),
                     0);
    assert_int_equal(calls, 1);
    if (src->state == DW_JOIN_DONE) {
        round_trip_joined(&j, src, id, want_model);
        dw_buf_free(&b);
        return;
    }
    struct dw_join_rec *rec = dw_join_find(&j, id, strlen(id));
    assert_non_null(rec);
    assert_int_equal(j.count, 1);
    assert_int_equal(rec->state, src->state);
    /* loaded from Redis: stored (the in-memory bit is not encoded) */
    assert_int_equal(rec->flags,
                     (src->flags & (uint8_t) ~(DW_JREC_DIRTY | DW_JREC_STORED)) | DW_JREC_STORED);
    assert_int_equal(rec->ts_ms, src->ts_ms);
    assert_int_equal(rec->model_idx, want_model);
    if (src->flags & DW_JREC_LABEL_NUM) {
        assert_int_equal(f64_bits(rec->label_num), f64_bits(src->label_num));
    }
    if (src->state == DW_JOIN_LABEL) {
        assert_int_equal(rec->label_wm, src->label_wm);
        assert_int_equal(rec->n_dups, src->n_dups);
        for (uint16_t d = 0; d < src->n_dups; d++) {
            assert_int_equal(rec->dups[d].label_wm, src->dups[d].label_wm);
            assert_int_equal(rec->dups[d].conflict, src->dups[d].conflict);
        }
        assert_same_text(rec->parked_label, src->parked_label);
        /* A parked label's text is in the parked table, not in a model's. */
        assert_int_equal(j.parked.count, src->parked_label != NULL);
        assert_int_equal(dw_join_classes(&j, want_model), 0);
    } else {
        assert_int_equal(rec->win_ms, src->win_ms);
        assert_int_equal(f64_bits(rec->score), f64_bits(src->score));
        assert_same_text(rec->version, src->version);
        assert_int_equal(dw_join_versions(&j, want_model), 1);
        if (src->flags & DW_JREC_PRED_NUM) {
            assert_int_equal(f64_bits(rec->pred_num), f64_bits(src->pred_num));
        } else {
            assert_same_text(rec->pred_cls, src->pred_cls);
        }
        if (!(src->flags & DW_JREC_LABEL_NUM)) {
            assert_same_text(rec->label_cls, src->label_cls);
        }
        /* Regression values are never interned. */
        if (src->flags & DW_JREC_PRED_NUM) {
            assert_int_equal(dw_join_classes(&j, want_model), 0);
        }
    }
    /* Loaded state is not dirty. */
    assert_int_equal(j.n_dirty, 0);
    assert_false(rec->flags & DW_JREC_DIRTY);
    /* Re-encoding gives the same bytes. */
    struct dw_buf b2;
    dw_buf_init(&b2);
    dw_join_rec_encode(rec, model, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    /* Deleting the record releases its strings. */
    dw_join_delete(&j, rec);
    assert_int_equal(j.parked.count, 0);
    assert_int_equal(dw_join_classes(&j, want_model), 0);
    assert_int_equal(dw_join_versions(&j, want_model), 0);
    dw_buf_free(&b2);
    dw_buf_free(&b);
    dw_join_free(&j);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    struct dw_join_rec r;

    /* A prediction of a classification model waiting for its label: score, negative times. */
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_PRED;
    r.flags = DW_JREC_SCORE | DW_JREC_DIRTY;
    r.ts_ms = -1794999900123LL;
    r.win_ms = -1795000200000LL;
    r.score = 0.91;
    r.version = intern("1.4.0");
    r.pred_cls = intern("1");
    round_trip(&r, "fraud", 1);

    /* A prediction of a regression model: a number, -0.0 kept bit for bit. */
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_PRED;
    r.flags = DW_JREC_PRED_NUM;
    r.ts_ms = 5;
    r.pred_num = -0.0;
    r.version = intern("");
    round_trip(&r, "churn", 0);

    /* A parked label: numeric label with its text, duplicates and how they compared. */
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_LABEL;
    r.flags = DW_JREC_LABEL_NUM;
    r.ts_ms = 1794999900000LL;
    r.label_wm = 1794999800000LL;
    r.label_num = 2.5e300;
    struct dw_join_dup dups[4] = {{1794999800001LL, DW_JOIN_DUP_TEXT_DIFFERS},
                                  {INT64_MIN, 0},
                                  {-5, DW_JOIN_DUP_SAME_NUMBER},
                                  {7, DW_JOIN_DUP_TEXT_DIFFERS | DW_JOIN_DUP_SAME_NUMBER}};
    r.dups = dups;
    r.n_dups = 4;
    r.parked_label = intern("2.5e300");
    round_trip(&r, "churn", 0);

    /* Joined, late, a classification model: an empty-string class is present, not absent. */
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_DONE;
    r.flags = DW_JREC_SCORE | DW_JREC_LATE;
    r.ts_ms = 5;
    r.label_wm = -1;
    r.score = 1.0;
    r.version = intern("");
    r.pred_cls = intern("");
    r.label_cls = intern("0");
    round_trip(&r, "fraud", 1);

    /* Joined, a regression model: both numbers, infinities kept. */
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_DONE;
    r.flags = DW_JREC_SCORE | DW_JREC_PRED_NUM | DW_JREC_LABEL_NUM | DW_JREC_LATE;
    r.ts_ms = 5;
    r.score = 0.5;
    r.pred_num = INFINITY;
    r.label_num = -INFINITY;
    r.version = intern("v");
    round_trip(&r, "fraud", 1);

    /* A parked label whose model field names an unknown model: kept (labels have no model). */
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_LABEL;
    r.parked_label = intern("1");
    round_trip(&r, "retired-model", 0);
}

static void encode_sample(struct dw_buf *b, uint8_t state, const char *model)
{
    struct dw_join_rec r;
    memset(&r, 0, sizeof(r));
    r.state = state;
    r.flags = DW_JREC_SCORE;
    r.ts_ms = 123456;
    r.win_ms = 120000;
    r.score = 0.25;
    r.version = intern("2.0");
    r.pred_cls = intern("cat");
    r.label_cls = state == DW_JOIN_PRED ? NULL : intern("dog");
    dw_join_rec_encode(&r, model, b);
}

static void test_record_unknown_model_and_corrupt(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    int calls = 0;
    struct dw_buf b;
    dw_buf_init(&b);

    /* Unknown model: a prediction or joined record is dropped (1), nothing inserted. */
    encode_sample(&b, DW_JOIN_PRED, "gone");
    assert_int_equal(dw_join_rec_decode(&j, "x", 1, b.data, b.len, model_idx_of, &calls), 1);
    dw_buf_reset(&b);
    encode_sample(&b, DW_JOIN_DONE, "gone");
    assert_int_equal(dw_join_rec_decode(&j, "x", 1, b.data, b.len, model_idx_of, &calls), 1);
    assert_int_equal(j.count, 0);
    assert_null(dw_join_find(&j, "x", 1));
    assert_int_equal(j.n_dirty, 0);

    /* A valid blob, then every truncation of it: -1, nothing inserted, no overread. */
    dw_buf_reset(&b);
    encode_sample(&b, DW_JOIN_DONE, "fraud");
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, cut);
        if (dw_join_rec_decode(&j, "t", 1, copy, cut, model_idx_of, &calls) != -1) {
            fail_msg("truncated at %zu of %zu: not rejected", cut, b.len);
        }
        free(copy);
    }
    assert_int_equal(j.count, 0);
    assert_int_equal(j.n_dirty, 0);

    /* Trailing garbage. */
    uint8_t *longer = malloc(b.len + 1);
    assert_non_null(longer);
    memcpy(longer, b.data, b.len);
    longer[b.len] = 0;
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, longer, b.len + 1, model_idx_of, &calls), -1);
    free(longer);

    /* Unknown codec version, states out of range, empty id. */
    uint8_t *bad = malloc(b.len);
    assert_non_null(bad);
    memcpy(bad, b.data, b.len);
    bad[0] = 2;
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, bad, b.len, model_idx_of, &calls), -1);
    bad[0] = 1;
    bad[1] = DW_JOIN_FREE;
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, bad, b.len, model_idx_of, &calls), -1);
    bad[1] = 4;
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, bad, b.len, model_idx_of, &calls), -1);
    bad[1] = DW_JOIN_DONE;
    assert_int_equal(dw_join_rec_decode(&j, "", 0, bad, b.len, model_idx_of, &calls), -1);
    /* A string length running past the end: the model name's u32 length at offset 55. */
    memcpy(bad, b.data, b.len);
    bad[55] = 0xFF;
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, bad, b.len, model_idx_of, &calls), -1);
    assert_int_equal(j.count, 0);
    /* Nothing was interned by the rejected blobs. */
    assert_int_equal(dw_join_classes(&j, 1), 0);
    assert_int_equal(dw_join_versions(&j, 1), 0);

    /* The DIRTY bit in a stored blob is not carried into memory; a record read from Redis is
     * STORED. */
    memcpy(bad, b.data, b.len);
    bad[1] = DW_JOIN_PRED; /* a record that stays in the table (a joined one moves out) */
    bad[2] |= DW_JREC_DIRTY;
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, bad, b.len, model_idx_of, &calls), 0);
    struct dw_join_rec *rec = dw_join_find(&j, "t", 1);
    assert_non_null(rec);
    assert_int_equal(rec->flags, DW_JREC_SCORE | DW_JREC_STORED);
    assert_int_equal(j.n_dirty, 0);
    assert_string_equal(rec->label_cls, "dog");
    assert_string_equal(rec->pred_cls, "cat");
    assert_string_equal(rec->version, "2.0");
    assert_int_equal(rec->model_idx, 1);
    assert_int_equal(dw_join_classes(&j, 1), 2);

    /* An id already present is corrupt input: -1 and the record is untouched. */
    dw_buf_reset(&b);
    encode_sample(&b, DW_JOIN_PRED, "churn");
    assert_int_equal(dw_join_rec_decode(&j, "t", 1, b.data, b.len, model_idx_of, &calls), -1);
    rec = dw_join_find(&j, "t", 1);
    assert_int_equal(rec->state, DW_JOIN_PRED);
    assert_int_equal(rec->model_idx, 1);
    assert_int_equal(j.count, 1);
    free(bad);
    dw_buf_free(&b);
    dw_join_free(&j);
}

/* @returns dw_join_rec_decode's result for rec (encoded) in a fresh join, patched by `patch`. */
static int decode_patched(const struct dw_join_rec *rec, void (*patch)(struct dw_buf *b))
{
    struct dw_buf b;
    dw_buf_init(&b);
    dw_join_rec_encode(rec, "fraud", &b);
    if (patch) {
        patch(&b);
    }
    uint8_t *copy = malloc(b.len);
    assert_non_null(copy);
    memcpy(copy, b.data, b.len);
    struct dw_join j;
    dw_join_init(&j);
    int calls = 0;
    int rc = dw_join_rec_decode(&j, "h", 1, copy, b.len, model_idx_of, &calls);
    assert_int_equal(j.count, rc == 0 ? 1 : 0);
    dw_join_free(&j);
    free(copy);
    dw_buf_free(&b);
    return rc;
}

static void set_unknown_flag(struct dw_buf *b)
{
    b->data[2] |= 0x10;
}

static void set_has_pred_2(struct dw_buf *b)
{
    /* ..., str pred, u8 has_pred, str label (0 bytes: u32 0), u8 has_label */
    b->data[b->len - 6] = 2;
}

static void nul_in_class(struct dw_buf *b)
{
    uint8_t *x = memchr(b->data + 53, 'X', b->len - 53);
    assert_non_null(x);
    *x = '\0';
}

static void dup_conflict_2(struct dw_buf *b)
{
    b->data[53 + 8] = 4; /* the first duplicate: i64 label_wm, u8 conflict (bits 0x1, 0x2) */
}

/*
 * Fields that no encoder writes: unknown flag bits, presence bytes other than 0/1, a score
 * outside [0, 1] (or NaN), duplicates on a record that is not a parked label, a conflict byte
 * other than 0/1 and a class with a NUL byte (interned as another string each time) are
 * refused: -1, nothing inserted.
 */
static void test_record_hostile_fields(void **state)
{
    (void)state;
    struct dw_join_rec r;
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_PRED;
    r.flags = DW_JREC_SCORE;
    r.score = 0.5;
    r.version = intern("1.0");
    r.pred_cls = intern("cXt");
    r.label_cls = NULL;
    assert_int_equal(decode_patched(&r, NULL), 0);
    assert_int_equal(decode_patched(&r, set_unknown_flag), -1);
    assert_int_equal(decode_patched(&r, set_has_pred_2), -1);
    assert_int_equal(decode_patched(&r, nul_in_class), -1);
    r.score = 1.5;
    assert_int_equal(decode_patched(&r, NULL), -1);
    r.score = NAN;
    assert_int_equal(decode_patched(&r, NULL), -1);
    r.flags = 0; /* no score: its field is not looked at */
    assert_int_equal(decode_patched(&r, NULL), 0);
    /* (a prediction with duplicates cannot be encoded any more: the encoder writes none) */
    struct dw_join_dup dup = {5, 1};
    r.state = DW_JOIN_LABEL;
    r.dups = &dup;
    r.n_dups = 1;
    r.label_cls = intern("1");
    assert_int_equal(decode_patched(&r, NULL), 0);
    assert_int_equal(decode_patched(&r, dup_conflict_2), -1);
}

/* A joined record as the previous encoder wrote it: a numeric class kept as text and number. */
static void encode_previous(struct dw_buf *b, const char *pred, double pred_num, const char *label,
                            double label_num)
{
    dw_buf_put_u8(b, 1);
    dw_buf_put_u8(b, DW_JOIN_DONE);
    dw_buf_put_u8(b, DW_JREC_PRED_NUM | DW_JREC_LABEL_NUM);
    dw_buf_put_i64(b, 1000); /* ts */
    dw_buf_put_i64(b, 0);    /* window */
    dw_buf_put_i64(b, 0);    /* label watermark */
    dw_buf_put_f64(b, 0.0);  /* score */
    dw_buf_put_f64(b, pred_num);
    dw_buf_put_f64(b, label_num);
    dw_buf_put_u16(b, 0);
    dw_buf_put_str(b, "fraud", 5);
    dw_buf_put_str(b, "1.0", 3);
    dw_buf_put_str(b, pred, strlen(pred));
    dw_buf_put_u8(b, 1);
    dw_buf_put_str(b, label, strlen(label));
    dw_buf_put_u8(b, 1);
}

/* Records checkpointed by the previous version: the configured task decides what is kept. */
static void test_record_previous_encoding(void **state)
{
    (void)state;
    struct dw_buf b;
    dw_buf_init(&b);
    encode_previous(&b, "1", 1.0, "0", 0.0);
    int calls = 0;
    /* Classification: the texts are the classes; the numbers are not kept. */
    struct dw_join j;
    dw_join_init(&j);
    dw_join_set_model(&j, 1, 0, 10, 10);
    assert_int_equal(dw_join_rec_decode(&j, "a", 1, b.data, b.len, model_idx_of, &calls), 0);
    const struct dw_join_done *d = dw_join_done_find(&j, "a", 1); /* joined: moved there */
    assert_non_null(d);
    assert_int_equal(d->flags, 0);
    assert_int_equal(d->label, dw_fp64("0", 1));
    assert_int_equal(dw_join_classes(&j, 1), 0);
    dw_join_free(&j);
    /* Regression: the numbers; the texts are not interned. */
    dw_buf_reset(&b);
    encode_previous(&b, "2.50", 2.5, "4", 4.0);
    dw_join_init(&j);
    dw_join_set_model(&j, 1, 1, 10, 10);
    assert_int_equal(dw_join_rec_decode(&j, "a", 1, b.data, b.len, model_idx_of, &calls), 0);
    d = dw_join_done_find(&j, "a", 1);
    assert_non_null(d);
    assert_int_equal(d->flags, DW_JREC_LABEL_NUM);
    assert_int_equal(d->label, f64_bits(4.0));
    assert_int_equal(dw_join_classes(&j, 1), 0);
    assert_int_equal(dw_join_versions(&j, 1), 0);
    dw_join_free(&j);
    dw_buf_free(&b);
}

static void test_strtab(void **state)
{
    (void)state;
    struct dw_strtab t;
    memset(&t, 0, sizeof(t));
    assert_false(dw_strtab_has(&t, "alpha", 5));
    const char *a = dw_strtab_ref(&t, "alpha", 5, 0);
    const char *b = dw_strtab_ref(&t, "beta", 4, 0);
    const char *a2 = dw_strtab_ref(&t, "alpha", 5, 0);
    const char *pre = dw_strtab_ref(&t, "alph", 4, 0);
    const char *from_prefix = dw_strtab_ref(&t, "alphabet", 5, 0); /* len 5: "alpha" */
    const char *empty = dw_strtab_ref(&t, "", 0, 0);
    const char *nul = dw_strtab_ref(&t, "a\0b", 3, 0); /* a NUL inside a JSON string */
    assert_ptr_equal(a, a2);
    assert_ptr_equal(a, from_prefix);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a, pre);
    assert_ptr_not_equal(a, empty);
    assert_string_equal(a, "alpha");
    assert_string_equal(b, "beta");
    assert_string_equal(pre, "alph");
    assert_string_equal(empty, "");
    assert_int_equal(dw_strtab_len(nul), 3);
    assert_memory_equal(nul, "a\0b", 4);
    assert_ptr_not_equal(nul, dw_strtab_ref(&t, "a", 1, 0));
    assert_int_equal(t.count, 6);
    assert_true(dw_strtab_has(&t, "alpha", 5));
    /* Numbers as text: "1" and "1.0" are different strings. */
    assert_ptr_not_equal(dw_strtab_ref(&t, "1", 1, 0), dw_strtab_ref(&t, "1.0", 3, 0));
    assert_int_equal(t.count, 8);

    /* References: "alpha" was taken three times and stays until the third release. */
    dw_strtab_unref(&t, a);
    dw_strtab_unref(&t, a);
    assert_true(dw_strtab_has(&t, "alpha", 5));
    dw_strtab_unref(&t, a);
    assert_false(dw_strtab_has(&t, "alpha", 5));
    assert_int_equal(t.count, 7);
    assert_ptr_equal(dw_strtab_ref(&t, "beta", 4, 0), b); /* the others are still found */

    /* A bound: a new string beyond it is refused, a known one is not; a release makes room. */
    assert_null(dw_strtab_ref(&t, "new", 3, 7));
    assert_int_equal(t.count, 7);
    assert_ptr_equal(dw_strtab_ref(&t, "beta", 4, 7), b);
    dw_strtab_unref(&t, pre);
    assert_non_null(dw_strtab_ref(&t, "new", 3, 7));
    assert_null(dw_strtab_ref(&t, "newer", 5, 7));
    dw_strtab_free(&t);
    assert_int_equal(t.count, 0);

    /* Thousands of strings: the table grows, every text stays valid; releasing all of them in
     * a scrambled order (backward-shift deletion) leaves an empty table and no memory. */
    enum { N = 3000 };
    static const char *txt[N];
    char s[32];
    for (size_t i = 0; i < N; i++) {
        int n = snprintf(s, sizeof(s), "class-%zu", i);
        txt[i] = dw_strtab_ref(&t, s, (size_t)n, 0);
        assert_non_null(txt[i]);
    }
    assert_int_equal(t.count, N);
    size_t bytes_full = t.bytes;
    for (size_t i = 0; i < N; i++) {
        int n = snprintf(s, sizeof(s), "class-%zu", i);
        assert_ptr_equal(dw_strtab_ref(&t, s, (size_t)n, 0), txt[i]);
        assert_string_equal(txt[i], s);
    }
    uint64_t seed = 11;
    for (size_t k = 0; k < N; k++) {
        size_t i = (size_t)(dw_splitmix64(&seed) % N);
        while (!txt[i]) {
            i = (i + 1) % N;
        }
        dw_strtab_unref(&t, txt[i]);
        assert_true(dw_strtab_has(&t, txt[i], strlen(txt[i]))); /* referenced twice */
        dw_strtab_unref(&t, txt[i]);
        txt[i] = NULL;
        if (k % 500 == 0) {
            for (size_t m = 0; m < N; m++) { /* every string still held is found */
                if (txt[m]) {
                    assert_true(dw_strtab_has(&t, txt[m], strlen(txt[m])));
                }
            }
        }
    }
    assert_int_equal(t.count, 0);
    assert_true(t.bytes < bytes_full / 4); /* only the empty slot array is left */
    dw_strtab_free(&t);
}

/* The strings a join holds are those of its live records: deleting records releases them. */
static void test_strings_follow_records(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    dw_join_set_model(&j, 0, 0, 0, 0);
    struct dw_join_model *m = dw_join_model(&j, 0);
    char id[32], cls[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        snprintf(cls, sizeof(cls), "class-%d", i % 2500);
        struct dw_join_rec *rec = dw_join_insert(&j, id, strlen(id), DW_JOIN_DONE);
        rec->version = dw_strtab_ref(&m->versions, "1.0", 3, 0);
        rec->pred_cls = dw_strtab_ref(&m->classes, cls, strlen(cls), 0);
        rec->label_cls = dw_strtab_ref(&m->classes, "yes", 3, 0);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "parked%d", i);
        snprintf(cls, sizeof(cls), "label-%d", i);
        struct dw_join_rec *rec = dw_join_insert(&j, id, strlen(id), DW_JOIN_LABEL);
        rec->parked_label = dw_strtab_ref(&j.parked, cls, strlen(cls), 0);
    }
    assert_int_equal(dw_join_classes(&j, 0), 2501);
    assert_int_equal(dw_join_versions(&j, 0), 1);
    assert_int_equal(j.parked.count, 100);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        dw_join_delete(&j, dw_join_find(&j, id, strlen(id)));
        /* class-k is held by records k and k + 2500 */
        assert_int_equal(dw_join_classes(&j, 0),
                         1 + (i < 2500 ? 2500 : 5000 - 1 - i) + (i < 4999 ? 0 : -1));
    }
    assert_int_equal(dw_join_versions(&j, 0), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "parked%d", i);
        dw_join_delete(&j, dw_join_find(&j, id, strlen(id)));
    }
    assert_int_equal(j.parked.count, 0);
    assert_int_equal(j.count, 0);
    dw_join_free(&j);
}

static int teardown_strings(void **state)
{
    (void)state;
    dw_strtab_free(&g_strings);
    return 0;
}

/* ---- the joined set ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* No two of 2M ids in gen's style and 1M UUID-like ids share a fingerprint (a collision would
 * take a first label for a duplicate: dw_join.h). */
static void test_fingerprints_distinct(void **state)
{
    (void)state;
    enum { N_GEN = 2000000, N_UUID = 1000000 };
    uint64_t *fp = malloc((N_GEN + N_UUID) * sizeof(*fp));
    assert_non_null(fp);
    char id[64];
    for (size_t i = 0; i < N_GEN; i++) {
        int n = snprintf(id, sizeof(id), "p-%zu-%zu", i % 128, i);
        fp[i] = dw_fp64(id, (size_t)n);
    }
    uint64_t seed = 7;
    for (size_t i = 0; i < N_UUID; i++) {
        uint64_t a = dw_splitmix64(&seed), b = dw_splitmix64(&seed);
        int n = snprintf(id, sizeof(id), "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
                         (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                         (unsigned)(b >> 48) & 0xffff, (unsigned long long)(b & 0xffffffffffffULL));
        fp[N_GEN + i] = dw_fp64(id, (size_t)n);
    }
    qsort(fp, N_GEN + N_UUID, sizeof(*fp), cmp_u64);
    for (size_t i = 1; i < N_GEN + N_UUID; i++) {
        if (fp[i] == fp[i - 1]) {
            fail_msg("two ids share the fingerprint %016llx", (unsigned long long)fp[i]);
        }
    }
    free(fp);
}

/* A PRED record of model 1 at ts with class label cls, finished into the joined set. */
static void join_model(struct dw_join *j, uint16_t model, const char *id, int64_t ts,
                       const char *cls)
{
    struct dw_join_model *m = dw_join_model(j, model);
    struct dw_join_rec *rec = dw_join_insert(j, id, strlen(id), DW_JOIN_PRED);
    rec->ts_ms = ts;
    rec->model_idx = model;
    rec->version = dw_strtab_ref(&m->versions, "1.0", 3, 0);
    rec->pred_cls = dw_strtab_ref(&m->classes, "1", 1, 0);
    rec->label_cls = dw_strtab_ref(&m->classes, cls, strlen(cls), 0);
    rec->state = DW_JOIN_DONE;
    dw_join_finish(j, rec);
}

static void join_one(struct dw_join *j, const char *id, int64_t ts, const char *cls)
{
    join_model(j, 1, id, ts, cls);
}

/* At a checkpoint: the entries to append are exactly those joined since the last one (ref_new),
 * each once, and the others are not; then the checkpoint is done. */
static void check_new_entries(struct dw_join *j, const int64_t *ref_ts, unsigned char *ref_new,
                              size_t n)
{
    dw_join_ckpt_plan(j, INT64_MIN);
    size_t want = 0;
    char id[32];
    for (size_t k = 0; k < n; k++) {
        if (!ref_ts[k]) {
            continue;
        }
        size_t len = make_id(id, sizeof(id), "j", k);
        const struct dw_join_done *d = dw_join_done_find(j, id, len);
        assert_int_equal((size_t)(d - j->done) >= j->done_saved, ref_new[k]);
        want += ref_new[k];
    }
    assert_int_equal(dw_join_n_new(j), want);
    assert_int_equal(j->n_done_order, want);
    unsigned char *seen = calloc(j->n_done + 1, 1);
    for (size_t i = 0; i < j->n_done_order; i++) {
        uint32_t idx = j->done_order[i];
        assert_true(idx >= j->done_saved && idx < j->n_done && !seen[idx]);
        seen[idx] = 1;
    }
    free(seen);
    dw_join_clear_dirty(j);
    memset(ref_new, 0, n);
}

/* Random joins, deletions and sweeps against a plain array: every id is found exactly when
 * the reference holds it, through table growth and backward-shift deletions; the entries a
 * checkpoint appends are those joined since the last one, whatever was deleted in between. */
static void test_joined_set_against_reference(void **state)
{
    (void)state;
    enum { N = 20000 };
    static int64_t ref_ts[N];        /* 0: absent */
    static unsigned char ref_new[N]; /* joined since the last checkpoint */
    struct dw_join j;
    dw_join_init(&j);
    dw_join_set_model(&j, 1, 0, 0, 0);
    dw_join_set_ttl(&j, 3600000);
    uint64_t seed = 11;
    char id[32];
    for (int op = 0; op < 100000; op++) {
        size_t i = dw_splitmix64(&seed) % N;
        size_t len = make_id(id, sizeof(id), "j", i);
        struct dw_join_done *d = dw_join_done_find(&j, id, len);
        assert_int_equal(d != NULL, ref_ts[i] != 0);
        if (!d) {
            join_one(&j, id, 1 + (int64_t)(dw_splitmix64(&seed) % 100000), i % 2 ? "a" : "b");
            ref_ts[i] = dw_join_done_find(&j, id, len)->ts_ms;
            ref_new[i] = 1;
        } else if (op % 3 == 0) {
            assert_int_equal(d->ts_ms, ref_ts[i]);
            assert_int_equal(d->label, dw_fp64(i % 2 ? "a" : "b", 1));
            dw_join_done_delete(&j, d, op % 2);
            ref_ts[i] = 0;
            ref_new[i] = 0;
        }
        if (op % 3000 == 2999) {
            check_new_entries(&j, ref_ts, ref_new, N);
        }
        if (op % 10000 == 9999) { /* a sweep of the oldest */
            int64_t before = 1 + (op / 10000) * 5000;
            size_t n = dw_join_done_sweep(&j, before, 0), want = 0;
            for (size_t k = 0; k < N; k++) {
                if (ref_ts[k] && ref_ts[k] < before) {
                    ref_ts[k] = 0;
                    ref_new[k] = 0;
                    want++;
                }
            }
            assert_int_equal(n, want);
            /* the bound the next sweep starts from: the least time left, or below it */
            for (size_t k = 0; k < N; k++) {
                assert_true(!ref_ts[k] || j.done_min_ts <= ref_ts[k]);
            }
            assert_int_equal(dw_join_done_sweep(&j, j.done_min_ts, 0), 0);
        }
    }
    size_t live = 0;
    for (size_t k = 0; k < N; k++) {
        size_t len = make_id(id, sizeof(id), "j", k);
        assert_int_equal(dw_join_done_find(&j, id, len) != NULL, ref_ts[k] != 0);
        live += ref_ts[k] != 0;
    }
    assert_int_equal(j.n_done, live);
    assert_true(4 * j.n_done <= 3 * j.n_done_slots);
    /* Joined records hold no strings: the tables are empty, the table of records too. */
    assert_int_equal(j.count, 0);
    assert_int_equal(dw_join_classes(&j, 1), 0);
    assert_int_equal(dw_join_versions(&j, 1), 0);
    dw_join_free(&j);
}

/* Writes every listed bucket of j (after dw_join_ckpt_plan) into k as a checkpoint would. */
static void copy_buckets(struct dw_join *j, struct dw_join *k, int64_t before_ms)
{
    for (size_t i = 0; i < j->n_buckets; i++) {
        const struct dw_join_bucket *b = &j->buckets[i];
        if (b->drop) {
            continue;
        }
        struct dw_buf buf;
        dw_buf_init(&buf);
        dw_join_bucket_encode(j, b, &buf);
        assert_int_equal(buf.len % DW_JOIN_DONE_BYTES, 0);
        assert_int_equal(dw_join_bucket_load(k, b->model_idx, b->start_ms, b->span_ms, buf.data,
                                             buf.len, before_ms),
                         0);
        dw_buf_free(&buf);
    }
}

/* Buckets: the new entries are planned into buckets of the span, written and read back (an
 * entry twice is kept once, expired ones are skipped); a bucket is dropped once its span is
 * expired, or when a rewrite finds it empty; one of another span is re-appended. */
/* The checkpoint's plan groups the new entries by bucket, each bucket's in the order they
 * joined, whatever order of model and time they joined in; every new entry is in it once, in
 * the run of its own bucket. */
static void test_new_entries_grouped_by_bucket(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    dw_join_set_model(&j, 1, 0, 0, 0);
    dw_join_set_model(&j, 2, 0, 0, 0);
    dw_join_set_ttl(&j, 1000); /* buckets of a minute */
    char id[32];
    uint64_t x = 12345;
    enum { N = 400 };
    for (size_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        make_id(id, sizeof(id), "g", i);
        join_model(&j, (x >> 40) % 3 == 0 ? 2 : 1, id, (int64_t)((x >> 20) % 300000), "cat");
    }
    dw_join_ckpt_plan(&j, INT64_MIN);
    assert_int_equal(j.n_done_order, N);
    assert_true(j.n_buckets >= 8); /* five minutes of two models */
    unsigned char *seen = calloc(j.n_done, 1);
    size_t placed = 0, next_first = 0;
    for (size_t bi = 0; bi < j.n_buckets; bi++) {
        const struct dw_join_bucket *b = &j.buckets[bi];
        assert_int_equal(b->new_first, next_first); /* the ranges tile done_order */
        next_first += b->new_n;
        for (size_t i = b->new_first; i < b->new_first + b->new_n; i++) {
            const struct dw_join_done *d = dw_join_new_entry(&j, i);
            assert_int_equal(b->model_idx, d->model_idx);
            assert_int_equal(b->start_ms, d->ts_ms / 60000 * 60000);
            assert_int_equal(b->span_ms, 60000);
            size_t idx = (size_t)(d - j.done);
            assert_false(seen[idx]);
            seen[idx] = 1;
            if (i > b->new_first) {
                assert_true(dw_join_new_entry(&j, i - 1) < d); /* the order they joined */
            }
            placed++;
        }
    }
    assert_int_equal(placed, N);
    /* a checkpoint done: no bucket has new entries until more join */
    dw_join_clear_dirty(&j);
    for (size_t bi = 0; bi < j.n_buckets; bi++) {
        assert_int_equal(j.buckets[bi].new_n, 0);
    }
    free(seen);
    dw_join_free(&j);
}

static void test_buckets(void **state)
{
    (void)state;
    struct dw_join j, k;
    dw_join_init(&j);
    dw_join_set_model(&j, 1, 0, 0, 0);
    dw_join_set_ttl(&j, 3600000); /* span: 112.5 s */
    assert_int_equal(j.bucket_ms, 112500);
    dw_join_set_ttl(&j, 1000); /* at least a minute */
    assert_int_equal(j.bucket_ms, DW_JOIN_BUCKET_MIN_MS);
    char id[32];
    for (size_t i = 0; i < 300; i++) {
        size_t len = make_id(id, sizeof(id), "b", i);
        (void)len;
        join_one(&j, id, (int64_t)i * 1000, "cat"); /* 0 .. 299 s: buckets 0, 60, .., 240 s */
    }
    assert_int_equal(dw_join_n_new(&j), 300);
    dw_join_ckpt_plan(&j, INT64_MIN);
    assert_int_equal(j.n_done_order, 300);
    assert_int_equal(j.n_buckets, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_false(j.buckets[i].drop);
        assert_int_equal(j.buckets[i].span_ms, 60000);
    }
    /* The new entries are sorted: each bucket's are one run. */
    for (size_t i = 1; i < j.n_done_order; i++) {
        assert_true(dw_join_new_entry(&j, i - 1)->ts_ms <= dw_join_new_entry(&j, i)->ts_ms);
    }
    struct dw_join_bucket *b1 = NULL;
    for (size_t bi = 0; bi < j.n_buckets; bi++) {
        if (j.buckets[bi].new_first <= 70 && 70 < j.buckets[bi].new_first + j.buckets[bi].new_n) {
            b1 = &j.buckets[bi];
        }
    }
    assert_non_null(b1);
    assert_int_equal(b1->start_ms, 60000);

    /* Read back, skipping what expired (ts < 100 s), twice (a repeated APPEND): once each. */
    dw_join_init(&k);
    copy_buckets(&j, &k, 100000);
    copy_buckets(&j, &k, 100000);
    assert_int_equal(k.n_done, 200);
    assert_int_equal(dw_join_n_new(&k), 0); /* loaded: nothing to write */
    assert_int_equal(k.n_buckets, 5);
    make_id(id, sizeof(id), "b", 150);
    const struct dw_join_done *d = dw_join_done_find(&k, id, strlen(id));
    assert_non_null(d);
    assert_int_equal(d->ts_ms, 150000);
    assert_int_equal(d->model_idx, 1);
    assert_int_equal(d->label, dw_fp64("cat", 3));
    make_id(id, sizeof(id), "b", 99);
    assert_null(dw_join_done_find(&k, id, strlen(id)));

    /* The checkpoint is done; the label clock passes join.ttl after 120 s: buckets 0 and 60 s
     * go (their whole span is before), 120 s stays (119.5 < 120 < 180). */
    dw_join_clear_dirty(&k);
    dw_join_ckpt_plan(&k, 120000);
    assert_true(k.buckets[0].drop && k.buckets[1].drop);
    assert_false(k.buckets[2].drop);
    dw_join_clear_dirty(&k);
    assert_int_equal(k.n_buckets, 3);

    /* An eviction of everything before 240 s: the 120 s and 180 s buckets are rewritten,
     * found empty and dropped; the entries at 100-119 s list the 60 s bucket again, which is
     * dropped as expired. */
    assert_int_equal(dw_join_done_sweep(&k, 240000, 1), 140);
    dw_join_ckpt_plan(&k, 120000);
    assert_int_equal(k.n_buckets, 4);
    assert_true(k.buckets[0].drop && k.buckets[1].drop);
    assert_false(k.buckets[2].drop);
    assert_false(k.buckets[2].rewrite);
    assert_int_equal(k.buckets[3].start_ms, 60000);
    assert_true(k.buckets[3].drop);
    /* One entry of 240 s evicted: that bucket is written whole. */
    make_id(id, sizeof(id), "b", 250);
    dw_join_done_delete(&k, dw_join_done_find(&k, id, strlen(id)), 1);
    dw_join_ckpt_plan(&k, 120000);
    assert_true(k.buckets[2].rewrite);
    struct dw_buf whole;
    dw_buf_init(&whole);
    dw_join_bucket_encode(&k, &k.buckets[2], &whole);
    assert_int_equal(whole.len, 59 * DW_JOIN_DONE_BYTES);
    dw_buf_free(&whole);
    dw_join_clear_dirty(&k);
    assert_int_equal(k.n_buckets, 1);
    assert_false(k.buckets[0].rewrite);

    /* join.ttl changed: a bucket of another span is re-appended to the current span's. */
    struct dw_join m;
    dw_join_init(&m);
    dw_join_set_ttl(&m, 32 * 120000); /* span 120 s */
    copy_buckets(&j, &m, INT64_MIN);
    assert_int_equal(m.n_done, 300);
    assert_int_equal(dw_join_n_new(&m), 300);
    dw_join_ckpt_plan(&m, INT64_MIN);
    size_t old = 0, fresh = 0;
    for (size_t i = 0; i < m.n_buckets; i++) {
        if (m.buckets[i].span_ms == 60000) {
            assert_true(m.buckets[i].drop);
            old++;
        } else {
            assert_int_equal(m.buckets[i].span_ms, 120000);
            assert_false(m.buckets[i].drop);
            fresh++;
        }
    }
    assert_int_equal(old, 5);
    assert_int_equal(fresh, 3); /* 0, 120 and 240 s */
    dw_join_free(&m);
    dw_join_free(&k);
    dw_join_free(&j);
}

/* Corrupt buckets add nothing: a length that is not a multiple of an entry, a zero
 * fingerprint, an offset beyond the span, unknown flags, a start off the span's grid. */
static void test_bucket_corrupt(void **state)
{
    (void)state;
    struct dw_join j;
    dw_join_init(&j);
    struct dw_buf b;
    dw_buf_init(&b);
    struct dw_join_bucket bk = {.start_ms = 60000, .span_ms = 60000, .model_idx = 0};
    struct dw_join_done good = {.fp = 42, .ts_ms = 61000, .label = 7, .flags = DW_JREC_LATE};
    dw_join_done_encode(&good, &bk, &b);
    assert_int_equal(b.len, DW_JOIN_DONE_BYTES);
    uint8_t raw[DW_JOIN_DONE_BYTES];
    memcpy(raw, b.data, sizeof(raw));
    assert_int_equal(dw_join_bucket_load(&j, 0, 60000, 60000, raw, sizeof(raw) - 1, INT64_MIN), -1);
    assert_int_equal(dw_join_bucket_load(&j, 0, 60001, 60000, raw, sizeof(raw), INT64_MIN), -1);
    assert_int_equal(dw_join_bucket_load(&j, 0, 60000, 0, raw, sizeof(raw), INT64_MIN), -1);
    uint8_t bad[DW_JOIN_DONE_BYTES];
    memcpy(bad, raw, sizeof(bad));
    memset(bad, 0, 8); /* fingerprint 0 */
    assert_int_equal(dw_join_bucket_load(&j, 0, 60000, 60000, bad, sizeof(bad), INT64_MIN), -1);
    memcpy(bad, raw, sizeof(bad));
    bad[8] = 0x60, bad[9] = 0xea, bad[10] = 0, bad[11] = 0; /* offset 60000: the span's end */
    assert_int_equal(dw_join_bucket_load(&j, 0, 60000, 60000, bad, sizeof(bad), INT64_MIN), -1);
    memcpy(bad, raw, sizeof(bad));
    bad[20] = DW_JREC_SCORE;
    assert_int_equal(dw_join_bucket_load(&j, 0, 60000, 60000, bad, sizeof(bad), INT64_MIN), -1);
    assert_int_equal(j.n_done, 0);
    assert_int_equal(j.n_buckets, 0);
    assert_int_equal(dw_join_bucket_load(&j, 0, 60000, 60000, raw, sizeof(raw), INT64_MIN), 0);
    assert_int_equal(j.n_done, 1);
    dw_buf_free(&b);
    dw_join_free(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_long_ids),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_backward_shift_wraparound),
        cmocka_unit_test(test_dirty_and_deleted),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_unknown_model_and_corrupt),
        cmocka_unit_test(test_record_hostile_fields),
        cmocka_unit_test(test_record_previous_encoding),
        cmocka_unit_test(test_strtab),
        cmocka_unit_test(test_fingerprints_distinct),
        cmocka_unit_test(test_joined_set_against_reference),
        cmocka_unit_test(test_new_entries_grouped_by_bucket),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_bucket_corrupt),
        cmocka_unit_test(test_strings_follow_records),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_strings);
}
