/*
 * dw_join.h - the join cache of one partition: prediction_id -> compact record.
 *
 * A record is in one of three states:
 *   PRED   a prediction waiting for its label
 *   LABEL  a label that arrived first, parked until its prediction comes
 *   DONE   joined; kept until its TTL so that later labels count as duplicates
 * Records hold only what the metrics need (window, version, classes, score, numbers), never
 * the raw event.
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

/** @brief Forgets the dirty list and deleted ids (after a successful checkpoint). */
void dw_join_clear_dirty(struct dw_join *j);

#endif
