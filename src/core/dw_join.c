/*
 * dw_join.c - the per-partition join cache (see dw_join.h for the record states and layout).
 *
 * Layout: records live in a pool (array) and are found through an open-addressing table of
 * pool indices keyed by the 64-bit hash of the id (FNV-1a): the low bits pick the home slot,
 * the high 32 bits are kept in the slot as a tag so that most mismatches are settled without
 * touching a record; the full id is compared on a tag match. The record does not keep its
 * hash: growing the table and backward-shift deletion hash the ids again (short strings, and
 * both are rare next to lookups). Deletion shifts later entries of the probe run back (no
 * tombstones), so lookups stay short however many records come and go. The table doubles at
 * a load factor of 1/2. Free pool records form a list linked through their ts_ms field.
 *
 * Why mapped pages for the pool and the slots: they are the two large arrays (96 and 16-32
 * bytes per record), and the service tunes malloc to keep up to 256 MiB of freed heap
 * (dw_run.c). Grown with realloc, every doubling left the old copy in the heap as resident
 * garbage; with mremap the pages move without a copy, pages never touched are not resident,
 * and a freed table goes back to the system at once. Under AddressSanitizer they come from
 * malloc instead, so that an overflow is still caught.
 *
 * Interned strings (struct dw_str) carry a reference count: every string pointer in a record
 * holds one reference in the table its state says (dw_join.h), and dw_join_delete() drops
 * them, so the tables shrink as records expire or are evicted.
 */
#define _GNU_SOURCE /* mremap */
#include "driftwatch/core/dw_join.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define JOIN_CODEC_VERSION 1
#define JOIN_FIRST_SLOTS 1024     /* slots of a fresh table */
#define JOIN_FIRST_POOL 1024      /* records of a fresh pool */
#define JOIN_FIRST_DIRTY 1024     /* entries of a fresh dirty list */
#define STRTAB_FIRST_SLOTS 16     /* slots of a fresh string table */
#define ARENA_CHUNK (64 * 1024)   /* bytes of one arena chunk */
#define ARENA_GRAIN 16            /* bytes: size classes are multiples of this */
#define ARENA_MAX_ID 256          /* longest id kept in the arena; longer ones are malloc'd */
#define ARENA_FIRST_CLASS_UNITS 3 /* the smallest class is (3 + 0) * 16 = 48 bytes */

#if defined(__SANITIZE_ADDRESS__)
#define JOIN_BIG_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JOIN_BIG_MALLOC 1
#endif
#endif

/* ---- large arrays: mapped pages (see the comment on top) ---- */

/* Zeroed memory of `bytes`. */
static void *big_alloc(size_t bytes)
{
#ifdef JOIN_BIG_MALLOC
    return dw_calloc(1, bytes);
#else
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    dw_assert(p != MAP_FAILED);
    return p;
#endif
}

/* Grows a big_alloc() block from `old` to `bytes` (the new part zeroed); it may move. */
static void *big_grow(void *p, size_t old, size_t bytes)
{
#ifdef JOIN_BIG_MALLOC
    char *q = dw_realloc(p, bytes);
    memset(q + old, 0, bytes - old);
    return q;
#else
    void *q = mremap(p, old, bytes, MREMAP_MAYMOVE);
    dw_assert(q != MAP_FAILED);
    return q;
#endif
}

static void big_free(void *p, size_t bytes)
{
    if (!p) {
        return;
    }
#ifdef JOIN_BIG_MALLOC
    (void)bytes;
    free(p);
#else
    munmap(p, bytes);
#endif
}

/* ---- interned strings ---- */

struct dw_str {
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    char text[]; /* len bytes and a NUL */
};

static struct dw_str *str_of(const char *text)
{
    return (struct dw_str *)(void *)(text - offsetof(struct dw_str, text));
}

size_t dw_strtab_len(const char *text)
{
    return str_of(text)->len;
}

static void strtab_place(struct dw_str **slots, size_t n_slots, struct dw_str *e)
{
    size_t mask = n_slots - 1;
    size_t i = (size_t)e->hash & mask;
    while (slots[i]) {
        i = (i + 1) & mask;
    }
    slots[i] = e;
}

/* Rebuilds the slots at n (a power of two above twice the count). */
static void strtab_resize(struct dw_strtab *t, size_t n)
{
    struct dw_str **slots = dw_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < t->n_slots; i++) {
        if (t->slots[i]) {
            strtab_place(slots, n, t->slots[i]);
        }
    }
    free(t->slots);
    t->bytes = t->bytes - t->n_slots * sizeof(*slots) + n * sizeof(*slots);
    t->slots = slots;
    t->n_slots = n;
}

/* The slot of s, or of the empty slot where it would go. */
static size_t strtab_slot(const struct dw_strtab *t, uint64_t h, const char *s, size_t len)
{
    size_t mask = t->n_slots - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const struct dw_str *e = t->slots[i];
        if (!e || (e->hash == h && e->len == len && memcmp(e->text, s, len) == 0)) {
            return i;
        }
        i = (i + 1) & mask;
    }
}

int dw_strtab_has(const struct dw_strtab *t, const char *s, size_t len)
{
    return t->n_slots && t->slots[strtab_slot(t, dw_hash64(s, len), s, len)] != NULL;
}

const char *dw_strtab_ref(struct dw_strtab *t, const char *s, size_t len, size_t bound)
{
    if ((t->count + 1) * 2 > t->n_slots) {
        strtab_resize(t, t->n_slots ? t->n_slots * 2 : STRTAB_FIRST_SLOTS);
    }
    uint64_t h = dw_hash64(s, len);
    size_t i = strtab_slot(t, h, s, len);
    struct dw_str *e = t->slots[i];
    if (!e) {
        if (bound && t->count >= bound) {
            return NULL;
        }
        e = dw_malloc(sizeof(*e) + len + 1);
        e->hash = h;
        e->refs = 0;
        e->len = (uint32_t)len;
        memcpy(e->text, s, len);
        e->text[len] = '\0';
        t->slots[i] = e;
        t->count++;
        t->bytes += sizeof(*e) + len + 1;
    }
    e->refs++;
    return e->text;
}

void dw_strtab_unref(struct dw_strtab *t, const char *text)
{
    struct dw_str *e = str_of(text);
    dw_assert(e->refs > 0);
    if (--e->refs > 0) {
        return;
    }
    size_t mask = t->n_slots - 1;
    size_t hole = (size_t)e->hash & mask;
    while (t->slots[hole] != e) {
        hole = (hole + 1) & mask;
    }
    /* Backward-shift deletion, as in the join table below. */
    for (size_t k = (hole + 1) & mask; t->slots[k]; k = (k + 1) & mask) {
        size_t home = (size_t)t->slots[k]->hash & mask;
        int movable = hole <= k ? (home <= hole || home > k) : (home <= hole && home > k);
        if (movable) {
            t->slots[hole] = t->slots[k];
            hole = k;
        }
    }
    t->slots[hole] = NULL;
    t->count--;
    t->bytes -= sizeof(*e) + e->len + 1;
    free(e);
    /* Shrinks at a load of 1/8 (to 1/4): a table that once held many strings gives the
     * memory back when they go. */
    if (t->n_slots > STRTAB_FIRST_SLOTS && t->count * 8 < t->n_slots) {
        strtab_resize(t, t->n_slots / 2);
    }
}

void dw_strtab_free(struct dw_strtab *t)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        free(t->slots[i]);
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* ---- the arena of long ids ---- */

static size_t arena_class(size_t len)
{
    return (len + ARENA_GRAIN - 1) / ARENA_GRAIN - ARENA_FIRST_CLASS_UNITS;
}

static char *arena_alloc(struct dw_join_arena *a, size_t len)
{
    if (len > ARENA_MAX_ID) {
        return dw_malloc(len);
    }
    size_t c = arena_class(len);
    if (a->free_list[c]) {
        void *block = a->free_list[c];
        memcpy(&a->free_list[c], block, sizeof(void *));
        return block;
    }
    size_t size = (c + ARENA_FIRST_CLASS_UNITS) * ARENA_GRAIN;
    if (!a->n_chunks || a->chunk_used + size > ARENA_CHUNK) {
        a->chunks = dw_realloc(a->chunks, (a->n_chunks + 1) * sizeof(*a->chunks));
        a->chunks[a->n_chunks++] = dw_malloc(ARENA_CHUNK);
        a->chunk_used = 0;
        a->bytes += ARENA_CHUNK;
    }
    char *block = a->chunks[a->n_chunks - 1] + a->chunk_used;
    a->chunk_used += size;
    return block;
}

static void arena_release(struct dw_join_arena *a, char *block, size_t len)
{
    if (len > ARENA_MAX_ID) {
        free(block);
        return;
    }
    size_t c = arena_class(len);
    memcpy(block, &a->free_list[c], sizeof(void *));
    a->free_list[c] = block;
}

static void arena_free(struct dw_join_arena *a)
{
    for (size_t i = 0; i < a->n_chunks; i++) {
        free(a->chunks[i]);
    }
    free(a->chunks);
    memset(a, 0, sizeof(*a));
}

/* ---- models ---- */

struct dw_join_model *dw_join_model(struct dw_join *j, size_t model_idx)
{
    if (model_idx >= j->n_models) {
        size_t n = model_idx + 1;
        j->models = dw_realloc(j->models, n * sizeof(*j->models));
        memset(j->models + j->n_models, 0, (n - j->n_models) * sizeof(*j->models));
        for (size_t i = j->n_models; i < n; i++) {
            j->models[i].regression = -1;
        }
        j->n_models = n;
    }
    return &j->models[model_idx];
}

void dw_join_set_model(struct dw_join *j, size_t model_idx, int regression, uint32_t max_classes,
                       uint32_t max_versions)
{
    struct dw_join_model *m = dw_join_model(j, model_idx);
    m->regression = regression != 0;
    m->max_classes = max_classes;
    m->max_versions = max_versions;
}

size_t dw_join_classes(const struct dw_join *j, size_t model_idx)
{
    return model_idx < j->n_models ? j->models[model_idx].classes.count : 0;
}

size_t dw_join_versions(const struct dw_join *j, size_t model_idx)
{
    return model_idx < j->n_models ? j->models[model_idx].versions.count : 0;
}

/* Drops every string reference rec holds (by its state and flags, dw_join.h). */
static void rec_unref_strings(struct dw_join *j, struct dw_join_rec *rec)
{
    if (rec->state == DW_JOIN_LABEL) {
        if (rec->parked_label) {
            dw_strtab_unref(&j->parked, rec->parked_label);
        }
        return;
    }
    struct dw_join_model *m = dw_join_model(j, rec->model_idx);
    if (rec->version) {
        dw_strtab_unref(&m->versions, rec->version);
    }
    if (!(rec->flags & DW_JREC_PRED_NUM) && rec->pred_cls) {
        dw_strtab_unref(&m->classes, rec->pred_cls);
    }
    if (!(rec->flags & DW_JREC_LABEL_NUM) && rec->label_cls) {
        dw_strtab_unref(&m->classes, rec->label_cls);
    }
}

/* ---- join table ---- */

/* A slot holds the upper 32 bits of the id's hash and the pool index + 1 (0 = empty). */
#define SLOT_MAKE(hash, idx) ((((hash) >> 32) << 32) | ((uint64_t)(idx) + 1))
#define SLOT_TAG(v) ((v) >> 32)
#define SLOT_IDX(v) ((uint32_t)((v)&0xFFFFFFFFu) - 1)

/* ---- slot tables (the record table's and the joined set's) ---- */

/* The hash an entry's home slot comes from, by its index (the record's id, the joined fp). */
typedef uint64_t (*slot_hash_fn)(const struct dw_join *j, uint32_t idx);

/* Puts index idx with hash h into the first empty slot of its probe run. */
static void slot_place(uint64_t *slots, size_t n_slots, uint64_t h, uint32_t idx)
{
    size_t mask = n_slots - 1;
    size_t i = (size_t)h & mask;
    while (slots[i]) {
        i = (i + 1) & mask;
    }
    slots[i] = SLOT_MAKE(h, idx);
}

/* The slot that holds index idx of hash h (it must be there). */
static size_t slot_of(const uint64_t *slots, size_t n_slots, uint64_t h, uint32_t idx)
{
    size_t mask = n_slots - 1;
    size_t i = (size_t)h & mask;
    while (!slots[i] || SLOT_IDX(slots[i]) != idx) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Empties slot `hole` by backward-shift deletion: later members of its probe run move back into
 * the hole, so lookups stay short without tombstones. */
static void slot_erase(const struct dw_join *j, uint64_t *slots, size_t n_slots, size_t hole,
                       slot_hash_fn hash_of)
{
    size_t mask = n_slots - 1;
    for (size_t k = (hole + 1) & mask; slots[k]; k = (k + 1) & mask) {
        size_t home = (size_t)hash_of(j, SLOT_IDX(slots[k])) & mask;
        int movable = hole <= k ? (home <= hole || home > k) : (home <= hole && home > k);
        if (movable) {
            slots[hole] = slots[k];
            hole = k;
        }
    }
    slots[hole] = 0;
}

_Static_assert(sizeof(struct dw_join_rec) == 96, "the record layout is documented as 96 bytes");

void dw_join_init(struct dw_join *j)
{
    memset(j, 0, sizeof(*j));
    dw_buf_init(&j->deleted);
    j->bucket_ms = DW_JOIN_BUCKET_MIN_MS;
}

void dw_join_free(struct dw_join *j)
{
    for (size_t i = 0; i < j->n_used; i++) {
        struct dw_join_rec *rec = &j->pool[i];
        if (rec->state == DW_JOIN_LABEL) {
            free(rec->dups);
        }
        if (rec->state != DW_JOIN_FREE && rec->id_len > ARENA_MAX_ID) {
            free(rec->id_long);
        }
    }
    big_free(j->pool, j->pool_cap * sizeof(*j->pool));
    big_free(j->slots, j->n_slots * sizeof(*j->slots));
    free(j->dirty);
    dw_buf_free(&j->deleted);
    for (size_t i = 0; i < j->n_models; i++) {
        dw_strtab_free(&j->models[i].classes);
        dw_strtab_free(&j->models[i].versions);
    }
    free(j->models);
    dw_strtab_free(&j->parked);
    arena_free(&j->arena);
    big_free(j->done, j->done_cap * sizeof(*j->done));
    big_free(j->done_slots, j->n_done_slots * sizeof(*j->done_slots));
    free(j->done_order);
    free(j->buckets);
    memset(j, 0, sizeof(*j));
}

const char *dw_join_id(const struct dw_join_rec *rec)
{
    return rec->id_len > DW_JOIN_ID_INLINE ? rec->id_long : rec->id;
}

static uint64_t rec_hash(const struct dw_join_rec *rec)
{
    return dw_hash64(dw_join_id(rec), rec->id_len);
}

static uint64_t pool_hash(const struct dw_join *j, uint32_t idx)
{
    return rec_hash(&j->pool[idx]);
}

struct dw_join_rec *dw_join_find(struct dw_join *j, const char *id, size_t len)
{
    if (!j->n_slots) {
        return NULL;
    }
    uint64_t h = dw_hash64(id, len);
    size_t mask = j->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t v = j->slots[i];
        if (!v) {
            return NULL;
        }
        /* The slot's hash tag settles most mismatches without touching the record. */
        if (SLOT_TAG(v) == (h >> 32)) {
            struct dw_join_rec *rec = &j->pool[SLOT_IDX(v)];
            if (rec->id_len == len && memcmp(dw_join_id(rec), id, len) == 0) {
                return rec;
            }
        }
    }
}

/* A table of n slots (a power of two) for the live records of the pool. */
static void table_rebuild(struct dw_join *j, size_t n)
{
    big_free(j->slots, j->n_slots * sizeof(*j->slots));
    j->slots = big_alloc(n * sizeof(*j->slots));
    j->n_slots = n;
    for (size_t i = 0; i < j->n_used; i++) {
        if (j->pool[i].state != DW_JOIN_FREE) {
            slot_place(j->slots, j->n_slots, rec_hash(&j->pool[i]), (uint32_t)i);
        }
    }
}

static void table_grow(struct dw_join *j)
{
    table_rebuild(j, j->n_slots ? j->n_slots * 2 : JOIN_FIRST_SLOTS);
}

/* The smallest power of two that is at least n, from `from` (a power of two) up. */
static size_t pow2_at_least(size_t from, size_t n)
{
    while (from < n) {
        from *= 2;
    }
    return from;
}

/*
 * Why compaction: the pool keeps its high-water mark (freed records go to the free list), and a
 * catch-up that fetches a partition's predictions ahead of its labels leaves a pool of all of
 * them once they have joined. At most a quarter live, the records move into a pool of about
 * twice their number (a load of 1/4 on the table rebuilt for them), and the old pages go back.
 */
void dw_join_compact(struct dw_join *j)
{
    dw_assert(j->n_dirty == 0); /* the dirty list holds pool indices */
    if (j->count * 4 > j->n_used) {
        return;
    }
    size_t cap = pow2_at_least(JOIN_FIRST_POOL, 2 * j->count);
    if (cap >= j->pool_cap) {
        return;
    }
    struct dw_join_rec *pool = big_alloc(cap * sizeof(*pool));
    size_t n = 0;
    for (size_t i = 0; i < j->n_used; i++) {
        if (j->pool[i].state != DW_JOIN_FREE) {
            pool[n++] = j->pool[i];
        }
    }
    big_free(j->pool, j->pool_cap * sizeof(*j->pool));
    j->pool = pool;
    j->pool_cap = cap;
    j->n_used = n;
    j->n_free = 0;
    j->free_head = 0;
    table_rebuild(j, pow2_at_least(JOIN_FIRST_SLOTS, 4 * (n + 1)));
}

void dw_join_touch(struct dw_join *j, struct dw_join_rec *rec)
{
    if (rec->flags & DW_JREC_DIRTY) {
        return;
    }
    rec->flags |= DW_JREC_DIRTY;
    if (j->n_dirty == j->dirty_cap) {
        j->dirty_cap = j->dirty_cap ? j->dirty_cap * 2 : JOIN_FIRST_DIRTY;
        j->dirty = dw_realloc(j->dirty, j->dirty_cap * sizeof(*j->dirty));
    }
    j->dirty[j->n_dirty++] = (uint32_t)(rec - j->pool);
}

/* A pool record for a new entry: the head of the free list or a fresh one. */
static uint32_t pool_take(struct dw_join *j)
{
    if (j->free_head) {
        uint32_t idx = j->free_head - 1;
        j->free_head = (uint32_t)j->pool[idx].ts_ms;
        j->n_free--;
        return idx;
    }
    if (j->n_used == j->pool_cap) {
        size_t cap = j->pool_cap ? j->pool_cap * 2 : JOIN_FIRST_POOL;
        j->pool = j->pool
                      ? big_grow(j->pool, j->pool_cap * sizeof(*j->pool), cap * sizeof(*j->pool))
                      : big_alloc(cap * sizeof(*j->pool));
        j->pool_cap = cap;
    }
    return (uint32_t)j->n_used++;
}

struct dw_join_rec *dw_join_insert(struct dw_join *j, const char *id, size_t len, uint8_t state)
{
    dw_assert(len <= UINT16_MAX);
    if ((j->count + 1) * 2 > j->n_slots) {
        table_grow(j);
    }
    uint32_t idx = pool_take(j);
    struct dw_join_rec *rec = &j->pool[idx];
    memset(rec, 0, sizeof(*rec));
    rec->id_len = (uint16_t)len;
    if (len > DW_JOIN_ID_INLINE) {
        rec->id_long = arena_alloc(&j->arena, len);
        memcpy(rec->id_long, id, len);
    } else {
        memcpy(rec->id, id, len);
    }
    rec->state = state;
    slot_place(j->slots, j->n_slots, dw_hash64(id, len), idx);
    j->count++;
    dw_join_touch(j, rec);
    return rec;
}

void dw_join_delete(struct dw_join *j, struct dw_join_rec *rec)
{
    /* a live record of this join's pool: its slot exists, so the probe below ends */
    dw_assert(j->count > 0 && rec >= j->pool && rec < j->pool + j->pool_cap &&
              rec->state != DW_JOIN_FREE);
    uint32_t idx = (uint32_t)(rec - j->pool);
    slot_erase(j, j->slots, j->n_slots, slot_of(j->slots, j->n_slots, rec_hash(rec), idx),
               pool_hash);
    if (rec->flags & DW_JREC_STORED) {
        dw_buf_put_str(&j->deleted, dw_join_id(rec), rec->id_len);
        j->n_deleted++;
    }
    rec_unref_strings(j, rec);
    if (rec->state == DW_JOIN_LABEL) {
        free(rec->dups);
    }
    if (rec->id_len > DW_JOIN_ID_INLINE) {
        arena_release(&j->arena, rec->id_long, rec->id_len);
    }
    memset(rec, 0, sizeof(*rec));
    rec->ts_ms = j->free_head;
    j->free_head = idx + 1;
    j->n_free++;
    j->count--;
}

int dw_join_add_dup(struct dw_join_rec *rec, int64_t label_wm, uint8_t conflict)
{
    if (rec->n_dups >= DW_JOIN_MAX_DUPS) {
        return -1;
    }
    /* Capacity doubles at powers of two: no allocation for most duplicates. */
    uint16_t n = rec->n_dups;
    if ((n & (n - 1u)) == 0) {
        rec->dups = dw_realloc(rec->dups, (n ? 2u * n : 1u) * sizeof(*rec->dups));
    }
    rec->dups[n].label_wm = label_wm;
    rec->dups[n].conflict = conflict & (DW_JOIN_DUP_TEXT_DIFFERS | DW_JOIN_DUP_SAME_NUMBER);
    rec->n_dups++;
    return 0;
}

void dw_join_mark_stored(struct dw_join *j)
{
    for (size_t i = 0; i < j->n_dirty; i++) {
        struct dw_join_rec *rec = &j->pool[j->dirty[i]];
        if (rec->state != DW_JOIN_FREE) {
            rec->flags |= DW_JREC_STORED;
        }
    }
}

void dw_join_clear_dirty(struct dw_join *j)
{
    for (size_t i = 0; i < j->n_dirty; i++) {
        j->pool[j->dirty[i]].flags &= (uint8_t)~DW_JREC_DIRTY;
    }
    j->n_dirty = 0;
    dw_buf_reset(&j->deleted);
    j->n_deleted = 0;
    j->done_saved = j->n_done;
    j->n_done_order = 0;
    size_t keep = 0;
    for (size_t i = 0; i < j->n_buckets; i++) {
        if (!j->buckets[i].drop) {
            j->buckets[keep] = j->buckets[i];
            j->buckets[keep].new_n = 0;
            j->buckets[keep++].rewrite = 0;
        }
    }
    j->n_buckets = keep;
}

/* A string of the encoding: text or absent (written empty, with its presence apart). */
static void put_opt_str(struct dw_buf *out, const char *s)
{
    dw_buf_put_str(out, s ? s : "", s ? dw_strtab_len(s) : 0);
}

void dw_join_rec_encode(const struct dw_join_rec *rec, const char *model_name, struct dw_buf *out)
{
    int parked = rec->state == DW_JOIN_LABEL;
    const char *pred = (!parked && !(rec->flags & DW_JREC_PRED_NUM)) ? rec->pred_cls : NULL;
    const char *label = parked                              ? rec->parked_label
                        : !(rec->flags & DW_JREC_LABEL_NUM) ? rec->label_cls
                                                            : NULL;
    dw_buf_put_u8(out, JOIN_CODEC_VERSION);
    dw_buf_put_u8(out, rec->state);
    dw_buf_put_u8(out, rec->flags & (uint8_t) ~(DW_JREC_DIRTY | DW_JREC_STORED));
    dw_buf_put_i64(out, rec->ts_ms);
    dw_buf_put_i64(out, parked ? 0 : rec->win_ms);
    dw_buf_put_i64(out, parked ? rec->label_wm : 0);
    dw_buf_put_f64(out, parked ? 0.0 : rec->score);
    dw_buf_put_f64(out, (rec->flags & DW_JREC_PRED_NUM) ? rec->pred_num : 0.0);
    dw_buf_put_f64(out, (rec->flags & DW_JREC_LABEL_NUM) ? rec->label_num : 0.0);
    uint16_t n_dups = parked ? rec->n_dups : 0;
    dw_buf_put_u16(out, n_dups);
    for (uint16_t i = 0; i < n_dups; i++) {
        dw_buf_put_i64(out, rec->dups[i].label_wm);
        dw_buf_put_u8(out, rec->dups[i].conflict);
    }
    dw_buf_put_str(out, model_name, strlen(model_name));
    put_opt_str(out, parked ? NULL : rec->version);
    put_opt_str(out, pred);
    dw_buf_put_u8(out, pred != NULL);
    put_opt_str(out, label);
    dw_buf_put_u8(out, label != NULL);
}

int dw_join_rec_decode(struct dw_join *j, const char *id, size_t id_len, const void *data,
                       size_t len, long (*model_idx_of)(const char *name, size_t len, void *opaque),
                       void *opaque)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    if (dw_rd_u8(&rd) != JOIN_CODEC_VERSION) {
        return -1;
    }
    uint8_t state = dw_rd_u8(&rd);
    uint8_t flags = dw_rd_u8(&rd);
    int64_t ts_ms = dw_rd_i64(&rd);
    int64_t win_ms = dw_rd_i64(&rd);
    int64_t label_wm = dw_rd_i64(&rd);
    double score = dw_rd_f64(&rd);
    double pred_num = dw_rd_f64(&rd);
    double label_num = dw_rd_f64(&rd);
    uint16_t n_dups = dw_rd_u16(&rd);
    const uint8_t *dups_at = dw_rd_bytes(&rd, (size_t)n_dups * 9); /* i64 + u8 each */
    const char *model, *version, *pred, *label;
    /* names become C strings (interned): a NUL inside would make them another name */
    size_t model_len = dw_rd_name(&rd, &model, "model");
    size_t version_len = dw_rd_name(&rd, &version, "version");
    size_t pred_len = dw_rd_name(&rd, &pred, "prediction");
    uint8_t has_pred = dw_rd_u8(&rd);
    size_t label_len = dw_rd_name(&rd, &label, "label");
    uint8_t has_label = dw_rd_u8(&rd);
    const uint8_t known = DW_JREC_SCORE | DW_JREC_PRED_NUM | DW_JREC_LABEL_NUM | DW_JREC_LATE;
    if (rd.err || rd.pos != rd.len || n_dups > DW_JOIN_MAX_DUPS || state < DW_JOIN_PRED ||
        state > DW_JOIN_DONE || id_len == 0 || id_len > UINT16_MAX || dw_join_find(j, id, id_len)) {
        return -1;
    }
    /* Flags and presence bytes as written; a score as the decoder accepts it ([0, 1]); the
     * duplicates of a parked label only on a parked label (others never keep them). */
    if ((flags & (uint8_t) ~(known | DW_JREC_DIRTY)) || has_pred > 1 || has_label > 1 ||
        ((flags & DW_JREC_SCORE) && !(score >= 0.0 && score <= 1.0)) ||
        (n_dups > 0 && state != DW_JOIN_LABEL)) {
        return -1;
    }
    for (uint16_t i = 0; i < n_dups; i++) {
        /* the conflict byte: DW_JOIN_DUP_* bits */
        if (dups_at[(size_t)i * 9 + 8] & ~(DW_JOIN_DUP_TEXT_DIFFERS | DW_JOIN_DUP_SAME_NUMBER)) {
            return -1;
        }
    }
    long midx = model_idx_of(model, model_len, opaque);
    if (midx < 0 && state != DW_JOIN_LABEL) {
        return 1;
    }
    struct dw_join_rec *rec = dw_join_insert(j, id, id_len, state);
    rec->ts_ms = ts_ms;
    rec->model_idx = (uint16_t)(midx < 0 ? 0 : midx);
    flags = (uint8_t)((flags & ~DW_JREC_DIRTY) | DW_JREC_STORED); /* it came from Redis */
    if (state == DW_JOIN_LABEL) {
        rec->label_wm = label_wm;
        struct dw_reader drd;
        dw_reader_init(&drd, dups_at, (size_t)n_dups * 9);
        for (uint16_t i = 0; i < n_dups; i++) {
            int64_t wm = dw_rd_i64(&drd);
            dw_join_add_dup(rec, wm, dw_rd_u8(&drd));
        }
        rec->parked_label = has_label ? dw_strtab_ref(&j->parked, label, label_len, 0) : NULL;
        rec->label_num = label_num;
        rec->flags = flags;
    } else {
        struct dw_join_model *m = dw_join_model(j, (size_t)midx);
        /* A record of this code holds numbers xor classes; an older one may hold both (a
         * classification model's numeric classes): the model's task decides, or, for a join
         * whose models are not configured, the record itself. */
        int regression =
            m->regression >= 0 ? m->regression : ((flags & DW_JREC_PRED_NUM) && !has_pred);
        rec->win_ms = win_ms;
        rec->score = score;
        rec->version = dw_strtab_ref(&m->versions, version, version_len, 0);
        if (regression) {
            if (flags & DW_JREC_PRED_NUM) {
                rec->pred_num = pred_num;
            }
            if (flags & DW_JREC_LABEL_NUM) {
                rec->label_num = label_num;
            }
        } else {
            flags &= (uint8_t) ~(DW_JREC_PRED_NUM | DW_JREC_LABEL_NUM);
            rec->pred_cls = has_pred ? dw_strtab_ref(&m->classes, pred, pred_len, 0) : NULL;
            rec->label_cls = has_label ? dw_strtab_ref(&m->classes, label, label_len, 0) : NULL;
        }
        rec->flags = flags;
    }
    /* Loaded from the checkpoint: not dirty. */
    j->n_dirty--;
    if (state == DW_JOIN_DONE) {
        /* Written by a version that kept joined records in the table: moved to the joined
         * set; the next checkpoint deletes the hash field and appends the entry. */
        dw_join_finish(j, rec);
    }
    return 0;
}

/* ---- the joined set (dw_join.h) ---- */

#define DONE_FIRST_SLOTS 1024
#define DONE_KNOWN_FLAGS (DW_JREC_LATE | DW_JREC_LABEL_NUM)

void dw_join_set_ttl(struct dw_join *j, int64_t ttl_ms)
{
    j->bucket_ms = DW_MAX(DW_JOIN_BUCKET_MIN_MS, DW_MIN(DW_JOIN_BUCKET_MAX_MS, ttl_ms / 32));
}

size_t dw_join_size(const struct dw_join *j)
{
    return j->count + j->n_done;
}

static uint64_t done_hash(const struct dw_join *j, uint32_t idx)
{
    return j->done[idx].fp;
}

/* The joined entry of fingerprint fp, or NULL. */
static struct dw_join_done *done_lookup(const struct dw_join *j, uint64_t fp)
{
    if (!j->n_done) {
        return NULL;
    }
    size_t mask = j->n_done_slots - 1;
    for (size_t i = (size_t)fp & mask; j->done_slots[i]; i = (i + 1) & mask) {
        uint64_t v = j->done_slots[i];
        if (SLOT_TAG(v) == (fp >> 32) && j->done[SLOT_IDX(v)].fp == fp) {
            return &j->done[SLOT_IDX(v)];
        }
    }
    return NULL;
}

/* Room for one more entry: the dense array doubles when full (mapped pages: its untouched end
 * is not resident), the slots at a load factor of 3/4. */
static void done_reserve(struct dw_join *j)
{
    if (j->n_done == j->done_cap) {
        size_t cap = j->done_cap ? 2 * j->done_cap : DONE_FIRST_SLOTS;
        j->done = j->done
                      ? big_grow(j->done, j->done_cap * sizeof(*j->done), cap * sizeof(*j->done))
                      : big_alloc(cap * sizeof(*j->done));
        j->done_cap = cap;
    }
    if (4 * (j->n_done + 1) > 3 * j->n_done_slots) {
        big_free(j->done_slots, j->n_done_slots * sizeof(*j->done_slots));
        j->n_done_slots = j->n_done_slots ? 2 * j->n_done_slots : DONE_FIRST_SLOTS;
        j->done_slots = big_alloc(j->n_done_slots * sizeof(*j->done_slots));
        for (size_t i = 0; i < j->n_done; i++) {
            slot_place(j->done_slots, j->n_done_slots, j->done[i].fp, (uint32_t)i);
        }
    }
}

/* Adds d to the set unless its fp is there (the entry there is kept), in one probe: the run of
 * fp's home slot ends either at its entry or at the empty slot that takes it. @returns 1 if
 * added. */
static int done_put(struct dw_join *j, const struct dw_join_done *d)
{
    done_reserve(j); /* room first: growing the slots would move the empty slot found */
    size_t mask = j->n_done_slots - 1, i = (size_t)d->fp & mask;
    for (; j->done_slots[i]; i = (i + 1) & mask) {
        uint64_t v = j->done_slots[i];
        if (SLOT_TAG(v) == (d->fp >> 32) && j->done[SLOT_IDX(v)].fp == d->fp) {
            return 0;
        }
    }
    uint32_t idx = (uint32_t)j->n_done;
    j->done[idx] = *d;
    j->done_slots[i] = SLOT_MAKE(d->fp, idx);
    j->done_min_ts = j->n_done++ ? DW_MIN(j->done_min_ts, d->ts_ms) : d->ts_ms;
    return 1;
}

/* Moves entry `from` into index `to` (a hole, or one about to be overwritten), its slot with
 * it. */
static void done_move(struct dw_join *j, uint32_t from, uint32_t to)
{
    size_t at = slot_of(j->done_slots, j->n_done_slots, j->done[from].fp, from);
    j->done_slots[at] = SLOT_MAKE(j->done[from].fp, to);
    j->done[to] = j->done[from];
}

/* The last entry, just added, is one Redis holds already (loaded): it changes places with the
 * first new entry, and the saved part grows by one. */
static void done_settle_last(struct dw_join *j)
{
    uint32_t last = (uint32_t)j->n_done - 1, first = (uint32_t)j->done_saved++;
    if (last != first) {
        struct dw_join_done tmp = j->done[last];
        size_t at = slot_of(j->done_slots, j->n_done_slots, tmp.fp, last);
        done_move(j, first, last);
        j->done_slots[at] = SLOT_MAKE(tmp.fp, first);
        j->done[first] = tmp;
    }
}

/* The joined entry of a record: the label's number, or its class's fingerprint. */
static struct dw_join_done done_of(const struct dw_join_rec *rec, uint64_t fp)
{
    struct dw_join_done d = {.fp = fp,
                             .ts_ms = rec->ts_ms,
                             .model_idx = rec->model_idx,
                             .flags = rec->flags & DONE_KNOWN_FLAGS};
    if (rec->flags & DW_JREC_LABEL_NUM) {
        memcpy(&d.label, &rec->label_num, sizeof(d.label));
    } else if (rec->label_cls) {
        d.label = dw_fp64(rec->label_cls, dw_strtab_len(rec->label_cls));
    }
    return d;
}

void dw_join_finish(struct dw_join *j, struct dw_join_rec *rec)
{
    struct dw_join_done d = done_of(rec, dw_fp64(dw_join_id(rec), rec->id_len));
    done_put(j, &d); /* added at the end: among the new entries */
    dw_join_delete(j, rec);
}

struct dw_join_done *dw_join_done_find(const struct dw_join *j, const char *id, size_t len)
{
    return done_lookup(j, dw_fp64(id, len));
}

static int64_t span_start(int64_t ts_ms, int64_t span_ms)
{
    return dw_floor_div(ts_ms, span_ms) * span_ms;
}

/* The listed bucket (model, start, span), or NULL. */
static struct dw_join_bucket *bucket_find(struct dw_join *j, uint16_t model_idx, int64_t start_ms,
                                          int64_t span_ms)
{
    for (size_t i = 0; i < j->n_buckets; i++) {
        struct dw_join_bucket *b = &j->buckets[i];
        if (b->model_idx == model_idx && b->start_ms == start_ms && b->span_ms == span_ms) {
            return b;
        }
    }
    return NULL;
}

static struct dw_join_bucket *bucket_list(struct dw_join *j, uint16_t model_idx, int64_t start_ms,
                                          int64_t span_ms)
{
    struct dw_join_bucket *b = bucket_find(j, model_idx, start_ms, span_ms);
    if (b) {
        return b;
    }
    if (j->n_buckets == j->cap_buckets) {
        j->cap_buckets = j->cap_buckets ? 2 * j->cap_buckets : 16;
        j->buckets = dw_realloc(j->buckets, j->cap_buckets * sizeof(*j->buckets));
    }
    b = &j->buckets[j->n_buckets++];
    *b = (struct dw_join_bucket){.start_ms = start_ms, .span_ms = span_ms, .model_idx = model_idx};
    return b;
}

void dw_join_done_delete(struct dw_join *j, struct dw_join_done *d, int rewrite)
{
    dw_assert(j->n_done > 0 && d >= j->done && d < j->done + j->n_done && d->fp);
    if (rewrite) {
        bucket_list(j, d->model_idx, span_start(d->ts_ms, j->bucket_ms), j->bucket_ms)->rewrite = 1;
    }
    uint32_t idx = (uint32_t)(d - j->done), last = (uint32_t)j->n_done - 1;
    size_t n = j->n_done_slots;
    slot_erase(j, j->done_slots, n, slot_of(j->done_slots, n, d->fp, idx), done_hash);
    /* The array stays dense and its two parts apart: a hole among the saved entries takes the
     * last saved one, and the hole moves to where the new ones begin; the last entry fills it. */
    if (idx < j->done_saved) {
        uint32_t s = (uint32_t)--j->done_saved;
        if (idx != s) {
            done_move(j, s, idx);
        }
        idx = s;
    }
    if (idx != last) {
        done_move(j, last, idx);
    }
    memset(&j->done[last], 0, sizeof(j->done[last]));
    j->n_done--;
}

size_t dw_join_done_sweep(struct dw_join *j, int64_t before_ms, int rewrite)
{
    /* Called at every checkpoint: the scan is skipped while nothing can be that old. */
    if (!j->n_done || before_ms <= j->done_min_ts) {
        return 0;
    }
    size_t n = 0;
    int64_t least = INT64_MAX;
    for (size_t i = 0; i < j->n_done;) {
        if (j->done[i].ts_ms < before_ms) {
            dw_join_done_delete(j, &j->done[i], rewrite); /* the last entry moves to i */
            n++;
        } else {
            least = DW_MIN(least, j->done[i].ts_ms);
            i++;
        }
    }
    j->done_min_ts = least;
    return n;
}

/* Entries of the joined set in bucket b (of the current span). */
static int in_bucket(const struct dw_join_done *d, const struct dw_join_bucket *b)
{
    return d->fp && d->model_idx == b->model_idx && d->ts_ms >= b->start_ms &&
           d->ts_ms - b->start_ms < b->span_ms;
}

/*
 * Groups the new entries by bucket, each bucket's in the order they joined: a counting sort
 * over the buckets' indices, linear in the entries (a sort by model and time was 1.4 % of the
 * bench's CPU, and the checkpoint needs only each bucket's entries together). Each listed
 * bucket gets the range of done_order that holds its new entries.
 */
static void group_new_entries(struct dw_join *j, size_t n_new)
{
    uint32_t *bkt = dw_malloc(DW_MAX(n_new, (size_t)1) * sizeof(*bkt)); /* by entry */
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < n_new; i++) {
        const struct dw_join_done *d = &j->done[j->done_saved + i];
        int64_t start = span_start(d->ts_ms, j->bucket_ms);
        const struct dw_join_bucket *b = prev != SIZE_MAX ? &j->buckets[prev] : NULL;
        if (!b || b->model_idx != d->model_idx || b->start_ms != start ||
            b->span_ms != j->bucket_ms) {
            prev = (size_t)(bucket_list(j, d->model_idx, start, j->bucket_ms) - j->buckets);
        }
        bkt[i] = (uint32_t)prev;
    }
    for (size_t b = 0; b < j->n_buckets; b++) {
        j->buckets[b].new_n = 0;
    }
    for (size_t i = 0; i < n_new; i++) {
        j->buckets[bkt[i]].new_n++;
    }
    uint32_t pos = 0;
    for (size_t b = 0; b < j->n_buckets; b++) {
        j->buckets[b].new_first = pos;
        pos += j->buckets[b].new_n;
        j->buckets[b].new_n = 0; /* counted again as they are placed */
    }
    for (size_t i = 0; i < n_new; i++) {
        struct dw_join_bucket *b = &j->buckets[bkt[i]];
        j->done_order[b->new_first + b->new_n++] = (uint32_t)(j->done_saved + i);
    }
    free(bkt);
}

void dw_join_ckpt_plan(struct dw_join *j, int64_t before_ms)
{
    size_t n_new = dw_join_n_new(j);
    if (n_new > j->cap_done_order) {
        j->cap_done_order = DW_MAX(n_new, 2 * j->cap_done_order);
        j->done_order = dw_realloc(j->done_order, j->cap_done_order * sizeof(*j->done_order));
    }
    group_new_entries(j, n_new);
    j->n_done_order = n_new;
    for (size_t i = 0; i < j->n_buckets; i++) {
        struct dw_join_bucket *b = &j->buckets[i];
        /* decided anew each time: an entry may have joined since a failed checkpoint */
        b->drop = b->span_ms != j->bucket_ms ||
                  (before_ms != INT64_MIN && b->start_ms <= before_ms - b->span_ms);
        if (b->rewrite && !b->drop) {
            size_t n = 0;
            for (size_t k = 0; k < j->n_done && n == 0; k++) {
                n += (size_t)in_bucket(&j->done[k], b);
            }
            b->drop = n == 0;
        }
    }
}

size_t dw_join_n_new(const struct dw_join *j)
{
    return j->n_done - j->done_saved;
}

const struct dw_join_done *dw_join_new_entry(const struct dw_join *j, size_t i)
{
    dw_assert(i < j->n_done_order);
    return &j->done[j->done_order[i]];
}

void dw_join_done_encode(const struct dw_join_done *d, const struct dw_join_bucket *b,
                         struct dw_buf *out)
{
    dw_assert(d->ts_ms >= b->start_ms && d->ts_ms - b->start_ms < b->span_ms);
    dw_buf_put_u64(out, d->fp);
    dw_buf_put_u32(out, (uint32_t)(d->ts_ms - b->start_ms));
    dw_buf_put_u64(out, d->label);
    dw_buf_put_u8(out, d->flags);
}

void dw_join_bucket_encode(const struct dw_join *j, const struct dw_join_bucket *b,
                           struct dw_buf *out)
{
    for (size_t k = 0; k < j->n_done; k++) {
        if (in_bucket(&j->done[k], b)) {
            dw_join_done_encode(&j->done[k], b, out);
        }
    }
}

int dw_join_bucket_load(struct dw_join *j, uint16_t model_idx, int64_t start_ms, int64_t span_ms,
                        const void *data, size_t len, int64_t before_ms)
{
    if (len % DW_JOIN_DONE_BYTES != 0 || span_ms < 1 || span_ms > (int64_t)UINT32_MAX ||
        start_ms % span_ms != 0) {
        return -1;
    }
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    /* Checked whole before anything is added: a corrupt bucket adds nothing. */
    while (dw_rd_left(&rd) > 0) {
        uint64_t fp = dw_rd_u64(&rd);
        uint32_t off = dw_rd_u32(&rd);
        (void)dw_rd_u64(&rd);
        uint8_t flags = dw_rd_u8(&rd);
        if (fp == 0 || off >= span_ms || (flags & (uint8_t)~DONE_KNOWN_FLAGS)) {
            return -1;
        }
    }
    int other_span = span_ms != j->bucket_ms;
    struct dw_join_bucket *b = bucket_list(j, model_idx, start_ms, span_ms);
    b->drop = (uint8_t)other_span;
    b->rewrite = len == 0;
    dw_reader_init(&rd, data, len);
    while (dw_rd_left(&rd) > 0) {
        struct dw_join_done d = {.fp = dw_rd_u64(&rd), .model_idx = model_idx};
        d.ts_ms = start_ms + dw_rd_u32(&rd);
        d.label = dw_rd_u64(&rd);
        d.flags = dw_rd_u8(&rd);
        if (d.ts_ms >= before_ms && done_put(j, &d) && !other_span) {
            done_settle_last(j); /* of another span: new, appended to the current span's */
        }
    }
    return 0;
}
