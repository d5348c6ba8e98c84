/*
 * dw_join.h - the join cache of one partition: prediction_id -> compact record.
 *
 * A record is in one of three states:
 *   PRED   a prediction waiting for its label
 *   LABEL  a label that arrived first, parked until its prediction comes
 *   DONE   joined; kept until its TTL so that later labels count as duplicates
 * Records hold only what the metrics need (window, version, classes, score, numbers), never
 * the raw event. PRED and LABEL records live in the record table below, keyed by the id
 * itself. A DONE record needs far less, and most records of a partition are DONE (they stay
 * join.ttl, a prediction waits only for its label's delay): it moves out of the table into the
 * joined set, struct dw_join_done, 32 bytes in memory and 21 in Redis, where the id is kept as
 * its 64-bit fingerprint (dw_fp64) and the label as its number or the fingerprint of its class.
 * What the fingerprints may confuse: a label or prediction whose id is not in the record table
 * and whose fingerprint equals a joined record's is taken for a duplicate of it, and a
 * duplicate label whose class's fingerprint equals the first label's is taken as agreeing; each
 * with probability about n / 2^64 for n joined records kept (5e-14 at a million).
 *
 * The joined set in Redis: its entries are appended, never rewritten one by one, to one list
 * per model and span of event time (a bucket, DW_JOIN_BUCKET_* below): the checkpoint pushes
 * what joined since the last one as one more piece, drops a bucket once join.ttl has passed its
 * end on the label clock, and rewrites a bucket whole only when an entry left it for another
 * reason (eviction, expiry at the end of the labels on the prediction clock). Entries expired
 * by the label clock stay in their bucket until it goes and are skipped when it is loaded.
 *
 * Strings: a regression model's predictions and labels are numbers and stay numbers in the
 * record. A classification model's classes and every model's versions are interned in tables
 * of the join itself, one pair per model (struct dw_join_model), with reference counts: a
 * record points at the text, and a text is freed when the last record holding it goes, so a
 * table holds the distinct strings of the live records and nothing else. A model's tables are
 * bounded (models.<m>.max_classes, models.<m>.max_versions): dw_strtab_ref() refuses a string
 * that would exceed the bound, and the caller (dw_part.c) rejects the event. A parked label's
 * model is not known yet, so its text goes to the join's table of parked labels (bounded by the
 * records, since each parked record holds one reference) until its prediction says which model
 * it belongs to. Nothing is process-wide: the tables go with the partition, and the checkpoint
 * stores strings, never pointers or indices.
 *
 * Memory: a record is 96 bytes in one flat pool; ids up to DW_JOIN_ID_INLINE bytes live in the
 * record, longer ones in an arena of size classes owned by the join (no allocation per event
 * once warm). The table is open addressing with linear probing over 64-bit slots (32-bit hash
 * tag, 32-bit pool index), load factor at most 1/2, backward-shift deletion (no tombstones).
 * The pool and the slots are mapped pages: growth moves no bytes, only touched pages are
 * resident, freeing returns them. Measured bytes per record (pool, slots, dirty list, malloc
 * and page overhead): bench/RESULTS.md, docs/design.md "Memory bounds". Records changed since
 * the last checkpoint are listed (dirty) and deleted ids are kept for the checkpoint's HDEL.
 */
#ifndef DW_JOIN_H
#define DW_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_codec.h"

#define DW_JOIN_ID_INLINE 40     /* bytes of prediction_id stored inside the record */
#define DW_JOIN_MAX_CLASSES 1000 /* default classes per model and partition (max_classes) */
#define DW_JOIN_MAX_VERSIONS 100 /* default versions per model and partition (max_versions) */

/*
 * ---- interned strings with reference counts ----
 * @locality the thread that processes events (the main loop): no lock.
 */

struct dw_str; /* one interned string: reference count, hash, length, bytes */

struct dw_strtab {
    struct dw_str **slots; /* open addressing, NULL = empty; n_slots a power of two (or 0) */
    size_t n_slots;
    size_t count; /* distinct strings held */
    size_t bytes; /* bytes allocated for them (entries and slots) */
};

/**
 * @brief Takes a reference to s (interning it when new).
 * @param bound most distinct strings (0: no bound)
 * @returns the NUL-terminated interned text, or NULL when s is new and the table already
 *          holds `bound` strings.
 */
const char *dw_strtab_ref(struct dw_strtab *t, const char *s, size_t len, size_t bound);

/** @returns 1 when s is in the table. */
int dw_strtab_has(const struct dw_strtab *t, const char *s, size_t len);

/** @brief Drops a reference taken by dw_strtab_ref(); the string goes with the last one. */
void dw_strtab_unref(struct dw_strtab *t, const char *text);

/** @returns the length of an interned text (it may hold NUL bytes). */
size_t dw_strtab_len(const char *text);

/** @brief Frees every string, whatever its references. */
void dw_strtab_free(struct dw_strtab *t);

enum dw_join_state { DW_JOIN_FREE = 0, DW_JOIN_PRED = 1, DW_JOIN_LABEL = 2, DW_JOIN_DONE = 3 };

#define DW_JREC_SCORE 0x01     /* score present */
#define DW_JREC_PRED_NUM 0x02  /* the prediction is a number (regression): pred_num valid */
#define DW_JREC_LABEL_NUM 0x04 /* the label is a number: label_num valid (parked: also text) */
#define DW_JREC_LATE 0x08      /* the prediction was late: its labels are late too */
#define DW_JREC_STORED 0x40    /* may be in Redis: loaded, or in a checkpoint sent (memory) */
#define DW_JREC_DIRTY 0x80     /* changed since the last checkpoint */

/* What a duplicate of a parked label is, compared with the parked (first) label. */
#define DW_JOIN_DUP_TEXT_DIFFERS 0x1 /* the texts differ: a conflict for a classification model */
#define DW_JOIN_DUP_SAME_NUMBER 0x2  /* both are numbers and equal: no conflict for regression */

/** @brief A duplicate of a parked label: its label watermark and how it compared. */
struct dw_join_dup {
    int64_t label_wm;
    uint8_t conflict; /* DW_JOIN_DUP_* bits */
};

#define DW_JOIN_MAX_DUPS 1000 /* duplicates remembered per parked label; more are dropped */

/* The fields of a record by state (unions: each holds what its state needs). */
struct dw_join_rec {
    int64_t ts_ms; /* prediction event time; label event time while parked */
    union {
        int64_t win_ms;   /* PRED, DONE: window start of the prediction */
        int64_t label_wm; /* LABEL: the partition's label watermark when the label arrived */
    };
    union {
        double score;             /* PRED, DONE: the score (DW_JREC_SCORE) */
        struct dw_join_dup *dups; /* LABEL: label events beyond the first (n_dups), or NULL */
    };
    union {
        double pred_num;      /* DW_JREC_PRED_NUM (regression): the predicted value */
        const char *pred_cls; /* otherwise: the predicted class (the model's class table) */
    };
    union {
        double label_num;      /* DW_JREC_LABEL_NUM: the label's value */
        const char *label_cls; /* otherwise (DONE): the true class (the model's class table) */
    };
    union {
        const char *version;      /* PRED, DONE: model version (the model's version table) */
        const char *parked_label; /* LABEL: the label's text (the join's parked table) */
    };
    uint16_t model_idx;
    uint16_t n_dups;
    uint16_t id_len;
    uint8_t state;
    uint8_t flags;
    union {
        char id[DW_JOIN_ID_INLINE]; /* ids up to DW_JOIN_ID_INLINE bytes */
        char *id_long;              /* longer ids, in the join's arena */
    };
};

/** @brief A model's interned strings in one join, and their bounds (0: none). */
struct dw_join_model {
    struct dw_strtab classes;  /* classification: predicted and true classes of live records */
    struct dw_strtab versions; /* versions of live records */
    uint32_t max_classes, max_versions;
    int regression; /* -1 not configured (then guessed from a loaded record), 0, 1 */
};

#define DW_JOIN_ARENA_CLASSES 14 /* size classes of long ids: 48, 64, ..., 256 bytes */

/** @brief Storage of ids longer than DW_JOIN_ID_INLINE: chunks cut into size classes. */
struct dw_join_arena {
    char **chunks;
    size_t n_chunks;
    size_t chunk_used;                      /* bytes cut from the last chunk */
    void *free_list[DW_JOIN_ARENA_CLASSES]; /* freed blocks by size class (linked in place) */
    size_t bytes;                           /* bytes of the chunks */
};

/** @brief A joined (DONE) record: what a later label or prediction with its id needs. */
struct dw_join_done {
    uint64_t fp;        /* dw_fp64 of prediction_id; 0: an empty slot */
    int64_t ts_ms;      /* the prediction's event time (its window and its expiry follow) */
    uint64_t label;     /* DW_JREC_LABEL_NUM: the number's bits; else dw_fp64 of the class */
    uint16_t model_idx; /* the prediction's model */
    uint8_t flags;      /* DW_JREC_LATE, DW_JREC_LABEL_NUM */
};

#define DW_JOIN_DONE_BYTES                                                                         \
    21 /* one entry in Redis: fp u64, ts - bucket start u32, label, flags                          \
        */
#define DW_JOIN_BUCKET_MIN_MS 60000LL    /* span of a bucket: join.ttl / 32 within these */
#define DW_JOIN_BUCKET_MAX_MS 86400000LL /* (a u32 offset of milliseconds holds it) */

/** @brief One Redis string of joined entries: a model's entries of [start, start + span). */
struct dw_join_bucket {
    int64_t start_ms, span_ms;
    uint16_t model_idx;
    uint8_t rewrite; /* an entry left it: the next checkpoint writes it whole (SET) */
    uint8_t drop;    /* of another span (join.ttl changed): its entries are appended anew to
                      * buckets of the current span, and it goes at the next checkpoint */
    uint32_t new_first, new_n; /* its new entries in dw_join_new_entry()'s order (ckpt_plan) */
};

struct dw_join {
    struct dw_join_rec *pool; /* mapped pages, pool_cap records */
    size_t pool_cap;
    size_t n_used;      /* high-water mark of the pool */
    size_t n_free;      /* free records below n_used (linked through their ts_ms) */
    uint32_t free_head; /* pool index + 1 of the first free record, 0 = none */
    uint64_t *slots;    /* hash table: hash tag << 32 | pool index + 1, 0 = empty */
    size_t n_slots;     /* power of two */
    size_t count;       /* live records */
    uint32_t *dirty;    /* pool indices changed since the last checkpoint */
    size_t n_dirty, dirty_cap;
    struct dw_buf deleted; /* ids deleted since the last checkpoint: u32 len + bytes each */
    size_t n_deleted;
    struct dw_join_model *models; /* by model index, grown on demand */
    size_t n_models;
    struct dw_strtab parked; /* texts of parked labels */
    struct dw_join_arena arena;
    /* the joined set: entries in a dense array (n_done of done_cap), found through slots
     * (fp's upper 32 bits << 32 | index + 1) at a load factor of at most 3/4; mapped pages */
    struct dw_join_done *done;
    size_t done_cap, n_done;
    uint64_t *done_slots;
    size_t n_done_slots;
    int64_t done_min_ts; /* at most the least ts_ms in the set: a sweep before it is free */
    /* Entries before done_saved are in Redis; from it to n_done they joined since the last
     * checkpoint (its next pieces). Kept apart in the array, not copied: a labels fetch can
     * join most of a partition's records between two checkpoints. */
    size_t done_saved;
    uint32_t *done_order; /* the new entries' indices grouped by bucket (dw_join_ckpt_plan) */
    size_t n_done_order, cap_done_order;
    struct dw_join_bucket *buckets; /* every bucket in Redis or to be written there */
    size_t n_buckets, cap_buckets;
    int64_t bucket_ms; /* span of the buckets written now (dw_join_set_ttl) */
};

void dw_join_init(struct dw_join *j);
void dw_join_free(struct dw_join *j);

/**
 * @brief Configures model model_idx: regression (numbers) or classification (classes), and the
 *        bounds of its class and version tables (0: none).
 */
void dw_join_set_model(struct dw_join *j, size_t model_idx, int regression, uint32_t max_classes,
                       uint32_t max_versions);

/** @returns the tables of model model_idx (created, unconfigured, on first use). */
struct dw_join_model *dw_join_model(struct dw_join *j, size_t model_idx);

/** @returns the distinct classes the join holds for a model (0 for an unknown index). */
size_t dw_join_classes(const struct dw_join *j, size_t model_idx);

/** @returns the distinct versions the join holds for a model. */
size_t dw_join_versions(const struct dw_join *j, size_t model_idx);

/** @returns the record for id or NULL. */
struct dw_join_rec *dw_join_find(struct dw_join *j, const char *id, size_t len);

/**
 * @brief Inserts a fresh record for id (must not exist) in state `state`, marked dirty, with no
 *        strings, numbers or score. May move the pool: earlier record pointers become stale.
 */
struct dw_join_rec *dw_join_insert(struct dw_join *j, const char *id, size_t len, uint8_t state);

/** @brief Deletes a record (dropping its string references), remembering its id. */
void dw_join_delete(struct dw_join *j, struct dw_join_rec *rec);

/** @brief Remembers a duplicate of a parked label. @returns 0, -1 beyond DW_JOIN_MAX_DUPS. */
int dw_join_add_dup(struct dw_join_rec *rec, int64_t label_wm, uint8_t conflict);

/** @brief Marks a record changed since the last checkpoint. */
void dw_join_touch(struct dw_join *j, struct dw_join_rec *rec);

/** @returns the id of a record (not NUL-terminated; length rec->id_len). */
const char *dw_join_id(const struct dw_join_rec *rec);

/** @brief Encodes a record's value for the checkpoint (strings, never pointers or indices). */
void dw_join_rec_encode(const struct dw_join_rec *rec, const char *model_name, struct dw_buf *out);

/**
 * @brief Decodes a checkpointed record into a new record of j (state from the encoding). Its
 *        strings are interned again without the bounds (what was checkpointed is restored).
 * @param model_idx_of callback mapping a model name to its index (-1 unknown → dropped)
 * @returns 0, 1 when dropped (unknown model), -1 when corrupt.
 */
int dw_join_rec_decode(struct dw_join *j, const char *id, size_t id_len, const void *data,
                       size_t len, long (*model_idx_of)(const char *name, size_t len, void *opaque),
                       void *opaque);

/**
 * @brief Marks the live dirty records DW_JREC_STORED: the checkpoint writer calls it before it
 *        sends them. Deleting a record never stored lists no id for the checkpoint's HDEL (Redis
 *        never had it: most records of a catch-up join before the next checkpoint); one that was,
 *        even by a checkpoint whose answer was lost, is deleted from Redis.
 */
void dw_join_mark_stored(struct dw_join *j);

/** @brief Forgets the dirty list and deleted ids (after a successful checkpoint). */
void dw_join_clear_dirty(struct dw_join *j);

/**
 * @brief Gives back the pages of a pool that is at most a quarter live: its records move to a
 *        smaller pool and the table is rebuilt. Record pointers taken before are invalid after
 *        it; call it with the dirty list empty (after dw_join_clear_dirty()).
 */
void dw_join_compact(struct dw_join *j);

/* ---- the joined set ---- */

/** @brief Sets the span of new buckets from join.ttl (DW_JOIN_BUCKET_*). */
void dw_join_set_ttl(struct dw_join *j, int64_t ttl_ms);

/** @returns the records the join keeps: the table's and the joined set's. */
size_t dw_join_size(const struct dw_join *j);

/**
 * @brief Moves a PRED record whose label has been set (label_cls or DW_JREC_LABEL_NUM) into the
 *        joined set and deletes it from the table (the checkpoint deletes its hash field and
 *        appends the entry). rec is gone afterwards.
 */
void dw_join_finish(struct dw_join *j, struct dw_join_rec *rec);

/** @returns the joined entry of id or NULL. The pointer is valid until the set changes. */
struct dw_join_done *dw_join_done_find(const struct dw_join *j, const char *id, size_t len);

/**
 * @brief Deletes a joined entry. @param rewrite 0 when it expired by the label clock (loading
 *        skips such entries: its bucket stays as it is), 1 otherwise (its bucket is rewritten).
 */
void dw_join_done_delete(struct dw_join *j, struct dw_join_done *d, int rewrite);

/**
 * @brief Deletes every joined entry with ts_ms < before_ms (rewrite: as dw_join_done_delete).
 * @returns how many.
 */
size_t dw_join_done_sweep(struct dw_join *j, int64_t before_ms, int rewrite);

/**
 * @brief Prepares the joined set's part of a checkpoint: groups the new entries by the bucket
 *        they go to (each bucket's in the order they joined), lists those buckets, marks for
 *        dropping the buckets whose whole span is before before_ms (expired on the label
 *        clock: ts + join.ttl < label watermark), and a bucket to rewrite that holds no entry
 *        any more. Idempotent: a failed checkpoint leaves it to be done again.
 */
void dw_join_ckpt_plan(struct dw_join *j, int64_t before_ms);

/** @returns how many entries joined since the last checkpoint (the next pieces to append). */
size_t dw_join_n_new(const struct dw_join *j);

/**
 * @returns the i-th of them (i < j->n_done_order) in the order dw_join_ckpt_plan() grouped them
 *          (bucket b's are i in [b->new_first, b->new_first + b->new_n), in the order they
 *          joined); valid until the set changes.
 */
const struct dw_join_done *dw_join_new_entry(const struct dw_join *j, size_t i);

/** @brief Appends the Redis form of every entry of bucket b in the joined set to out. */
void dw_join_bucket_encode(const struct dw_join *j, const struct dw_join_bucket *b,
                           struct dw_buf *out);

/** @brief Appends the Redis form of entry d of bucket b to out. */
void dw_join_done_encode(const struct dw_join_done *d, const struct dw_join_bucket *b,
                         struct dw_buf *out);

/**
 * @brief Loads a bucket read from Redis: lists it, and adds its entries with ts_ms >= before_ms
 *        (older ones expired by the label clock) to the joined set; an entry already there
 *        (a piece pushed again after a lost reply) is kept once. A bucket of another span than
 *        the current one is marked to drop and its entries to append anew; an empty one (listed,
 *        but gone from Redis) to rewrite, which drops it.
 * @returns 0, -1 when corrupt (a length that is not a multiple of DW_JOIN_DONE_BYTES, an
 *          offset beyond the span, unknown flags, a span out of range).
 */
int dw_join_bucket_load(struct dw_join *j, uint16_t model_idx, int64_t start_ms, int64_t span_ms,
                        const void *data, size_t len, int64_t before_ms);

#endif
