/*
 * dw_join.h - the join cache of one partition: prediction_id -> compact record.
 *
 * A record is in one of three states:
 *   PRED   a prediction waiting for its label
 *   LABEL  a label that arrived first, parked until its prediction comes
 *   DONE   joined; kept until its TTL so that later labels count as duplicates
 * Records hold only what the metrics need (window, version, classes, score, numbers), never
 * the raw event. Class labels and versions are interned in a process-wide string table
 * (dw_strtab) so a record is a fixed-size struct; ids up to DW_JOIN_ID_INLINE bytes live in the
 * record, longer ones in one allocation. The table is open addressing with linear probing and
 * backward-shift deletion over a record pool with a free list: no allocation per event once
 * warm. Records changed since the last checkpoint are listed (dirty) and deleted ids are kept
 * for the checkpoint's HDEL.
 */
#ifndef DW_JOIN_H
#define DW_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/dw_codec.h"

#define DW_JOIN_ID_INLINE 40 /* bytes of prediction_id stored inside the record */

/*
 * ---- interned strings (classes, versions), shared by every partition of the process ----
 * @locality the thread that processes events (the main loop): no lock on the hot path.
 */

#define DW_STRTAB_NONE 0xFFFF
/** @returns the index of s (interning it), or DW_STRTAB_NONE when the table is full. */
uint16_t dw_strtab_intern(const char *s, size_t len);
/** @returns the string of an index ("" for DW_STRTAB_NONE). */
const char *dw_strtab_get(uint16_t idx);

enum dw_join_state { DW_JOIN_FREE = 0, DW_JOIN_PRED = 1, DW_JOIN_LABEL = 2, DW_JOIN_DONE = 3 };

#define DW_JREC_SCORE 0x01     /* score present */
#define DW_JREC_PRED_NUM 0x02  /* prediction is a number (pred_num valid) */
#define DW_JREC_LABEL_NUM 0x04 /* label is a number (label_num valid) */
#define DW_JREC_LATE 0x08      /* the prediction was late: its labels are late too */
#define DW_JREC_DIRTY 0x80     /* changed since the last checkpoint */

/** @brief A duplicate of a parked label: its label watermark and whether it disagreed. */
struct dw_join_dup {
    int64_t label_wm;
    uint8_t conflict;
};

#define DW_JOIN_MAX_DUPS 1000 /* duplicates remembered per parked label; more are dropped */

struct dw_join_rec {
    uint64_t hash;
    int64_t ts_ms;    /* prediction event time; label event time while parked */
    int64_t win_ms;   /* window start of the prediction */
    int64_t label_wm; /* parked: the partition's label watermark when the label arrived */
    double score;
    double pred_num;
    double label_num;
    char *id_long; /* ids longer than DW_JOIN_ID_INLINE */
    char id[DW_JOIN_ID_INLINE];
    uint16_t id_len;
    uint16_t model_idx;
    uint16_t version;         /* dw_strtab index */
    uint16_t pred_cls;        /* dw_strtab index */
    uint16_t label_cls;       /* dw_strtab index */
    uint16_t n_dups;          /* parked: label events beyond the first */
    struct dw_join_dup *dups; /* parked: those duplicates (allocated on the first one) */
    uint8_t state;
    uint8_t flags;
};

struct dw_join {
    struct dw_join_rec *pool;
    size_t pool_cap;
    uint32_t *free_list; /* indices of free pool slots */
    size_t n_free;
    size_t n_used;   /* high-water mark of the pool */
    uint64_t *slots; /* hash table: hash tag << 32 | pool index + 1, 0 = empty */
    size_t n_slots;  /* power of two */
    size_t count;    /* live records */
    uint32_t *dirty; /* pool indices changed since the last checkpoint */
    size_t n_dirty, dirty_cap;
    struct dw_buf deleted; /* ids deleted since the last checkpoint: u32 len + bytes each */
    size_t n_deleted;
};

void dw_join_init(struct dw_join *j);
void dw_join_free(struct dw_join *j);

/** @returns the record for id or NULL. */
struct dw_join_rec *dw_join_find(struct dw_join *j, const char *id, size_t len);

/** @brief Inserts a fresh record for id (must not exist) in state `state`, marked dirty. */
struct dw_join_rec *dw_join_insert(struct dw_join *j, const char *id, size_t len, uint8_t state);

/** @brief Deletes a record, remembering its id for the checkpoint. */
void dw_join_delete(struct dw_join *j, struct dw_join_rec *rec);

/** @brief Remembers a duplicate of a parked label. @returns 0, -1 beyond DW_JOIN_MAX_DUPS. */
int dw_join_add_dup(struct dw_join_rec *rec, int64_t label_wm, int conflict);

/** @brief Marks a record changed since the last checkpoint. */
void dw_join_touch(struct dw_join *j, struct dw_join_rec *rec);

/** @returns the id of a record (not NUL-terminated; length rec->id_len). */
const char *dw_join_id(const struct dw_join_rec *rec);

/** @brief Encodes a record's value for the checkpoint (strings, not interned indices). */
void dw_join_rec_encode(const struct dw_join_rec *rec, const char *model_name, struct dw_buf *out);

/**
 * @brief Decodes a checkpointed record into a new record of j (state from the encoding).
 * @param model_idx_of callback mapping a model name to its index (-1 unknown → dropped)
 * @returns 0, 1 when dropped (unknown model), -1 when corrupt.
 */
int dw_join_rec_decode(struct dw_join *j, const char *id, size_t id_len, const void *data,
                       size_t len, long (*model_idx_of)(const char *name, size_t len, void *opaque),
                       void *opaque);

/** @brief Forgets the dirty list and deleted ids (after a successful checkpoint). */
void dw_join_clear_dirty(struct dw_join *j);

#endif
