/*
 * dw_part.h - the state of one partition number: the join cache, the open windows, the
 * watermark and the consumed offsets of both topics. Pure logic, no I/O: the Kafka loop feeds
 * decoded events in, the Redis adapter writes what dw_part_collect() gathers.
 *
 * Window life cycle (event time, L = window.size):
 *   open      a prediction with timestamp t creates window [floor(t/L)*L, +L) of its model
 *   closed    for this partition once its watermark (max prediction time - allowed_lateness)
 *             reaches the window end; later predictions for it are counted as late
 *   sealed    at the next checkpoint after it closed here: its whole record is written once
 *             more, to a sealed copy, and the partition drops its sketches from memory, since
 *             no prediction changes them here any more; labels keep changing the record
 *             proper, which is small from then on (dw_part_seal). The close evaluation reads
 *             both. Memory thus holds the sketches of the windows still open here, not of
 *             every window waiting for the slowest partition to close it
 *   merged    once the close evaluation is past it (its cursor, read at each checkpoint): its
 *             feature sketches are dropped, counts and moments stay, and its sealed copy is
 *             deleted (dw_part_drop_sketches); a prediction for it is late even if this
 *             partition's watermark is behind
 *   retired   once the watermark passes window end + label_horizon: its aggregate is written
 *             one last time and dropped from memory; later labels for it are counted as late
 *   kept      its record stays in Redis, listed in the partition's kept set, while a reader
 *             may still need it: the final evaluation and the rolling views of the windows
 *             after it (dw_evaluator_records_before())
 *   deleted   once the consumer learns that no reader needs it (dw_part_set_gc): the next
 *             checkpoint deletes the record and its kept entry (a window retired past that
 *             point is deleted instead of written)
 * The watermark follows predictions only: labels update their prediction's window and say
 * nothing about event-time progress. Because the prediction stream of a partition is replayed
 * in offset order after a restart, late/not-late decisions are the same on every replay.
 *
 * The two topics are consumed at their own pace (a backlog of labels may trail the
 * predictions by minutes), so every decision about labels is taken on the label stream's own
 * clock, the label watermark (max label event time seen), which replays identically too:
 *   - a label is late when its prediction's window end + label_horizon <= label watermark
 *     (for a label parked before its prediction: the label watermark when it arrived);
 *   - a prediction waiting for its label expires when its time + join.ttl < label watermark;
 *   - a parked label expires when its time + join.ttl < prediction watermark;
 *   - a window retires when both watermarks passed its end + label_horizon (or the labels
 *     partition is at the end of its log, so that no label backlog can be left behind).
 */
#ifndef DW_PART_H
#define DW_PART_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_join.h"

#define DW_NO_TS INT64_MIN
/* milliseconds: the largest |event time| the decoder accepts (9e15 ms, about 285,000 years);
 * any stored event time beyond it is corruption */
#define DW_TS_LIMIT_MS 9000000000000000LL

/** @brief Counters kept per partition (checkpointed with it). */
struct dw_part_counters {
    uint64_t predictions;           /* valid predictions processed */
    uint64_t labels;                /* valid label events processed */
    uint64_t late_predictions;      /* late predictions whose window was no longer in memory */
    uint64_t late_labels;           /* labels whose prediction's window was already retired */
    uint64_t duplicate_predictions; /* a prediction_id seen again: ignored */
    uint64_t expired_predictions;   /* predictions whose join TTL passed without a label */
    uint64_t expired_labels;        /* parked labels whose TTL passed without a prediction */
    uint64_t evicted;               /* records evicted because join.max_records was reached */
    uint64_t rejected_classes;      /* events rejected by dw_part: a class or version beyond
                                     * the model's bound (max_classes, max_versions) or a
                                     * regression label that is not a number; on arrival they
                                     * are also dead-lettered, a parked label at its join */
};

/** @brief Why dw_part rejected events: the dead-letter reason and a message naming the value. */
struct dw_part_reject {
    enum dw_bad_reason reason;
    char msg[512];
};

/** @brief A window of a model, by its start. */
struct dw_part_window_id {
    const struct dw_model_cfg *model;
    int64_t start_ms;
};

/** @brief A retired window whose record is kept in Redis for its last readers. */
struct dw_part_kept {
    const struct dw_model_cfg *model;
    int64_t start_ms;
    int going; /* the checkpoint being written deletes it (dw_part_gc_plan) */
};

/*
 * Skipped offsets. Offsets of a topic without transactions or compaction are contiguous, so a
 * fetched message past the partition's next offset means messages were skipped on the way
 * (CI once lost 326 predictions under fetch errors and leader moves, and nothing said so). The
 * consumer then fetches again from the next offset, once; a message past it again proves the
 * log has no messages there (transaction markers, aborted transactions, compaction): a hole,
 * counted and logged. After DW_FETCH_HOLES_TRUSTED holes, a topic's partition is known to have
 * them and its later gaps are counted without a refetch.
 */
#define DW_FETCH_HOLES_TRUSTED 3

/** @brief What the consumer does with a fetched message (dw_part_fetched). */
enum dw_fetch_action {
    DW_FETCH_PROCESS, /* the next offset, or the first of the partition: count it */
    DW_FETCH_REPEAT,  /* below the next offset: counted already (fetched again) */
    DW_FETCH_REFETCH, /* past the next offset: fetch again from it, drop this fetch's rest */
    DW_FETCH_HOLE     /* past the next offset after a refetch there: the log's hole; count it */
};

/** @brief One topic's guard against skipped offsets (dw_part_fetched). */
struct dw_fetch_guard {
    int64_t refetched_at; /* the next offset the last refetch went back to (-1: none) */
    uint32_t holes;       /* holes the log was found to have */
};

struct dw_part {
    const struct dw_config *cfg;
    int32_t partition;
    int64_t off_pred;  /* next offset to consume on the predictions topic (-1: none yet) */
    int64_t off_label; /* next offset to consume on the labels topic (-1: none yet) */
    struct dw_fetch_guard gap_pred, gap_label; /* skipped offsets (dw_part_fetched) */
    int64_t max_ts;                            /* max prediction event time seen (DW_NO_TS: none) */
    int64_t min_ts;                            /* first (smallest) prediction event time seen */
    int64_t max_label_ts;   /* label watermark: max label event time seen (DW_NO_TS: none) */
    int labels_at_end;      /* set by the consumer: the labels partition is at the end of its log */
    int64_t closed_upto_ms; /* windows ending at or before this are closed globally */
    /* A partition rebuilt from the earliest offset (state drop, state.on_loss
     * rebuild_from_earliest) replays windows the group had closed and merged: those ending at
     * or before this are judged by its own watermark only, and a prediction of one whose
     * sketches were dropped is counted without them (dw_part_on_prediction). DW_NO_TS once
     * its own watermark passed it, and for every other partition. Stored in the meta. */
    int64_t replay_upto_ms;
    struct dw_part_counters ctr;
    struct dw_join join;
    struct dw_agg **wins; /* windows in memory (open or closed, not retired) */
    size_t n_wins, cap_wins;
    struct dw_agg **retired; /* retired windows waiting for their last checkpoint */
    size_t n_retired, cap_retired;
    /* windows retired with their sketches, before the close evaluation merged them (catching
     * up): their stored records are shrunk once it has (dw_part_take_unmerged) */
    struct dw_part_window_id *unmerged;
    size_t n_unmerged, cap_unmerged;
    /* retired windows whose records stay in Redis until no reader needs them (the kept set) */
    struct dw_part_kept *kept;
    size_t n_kept, cap_kept;
    /* per model (cfg->models order): records of windows starting before this are needed by no
     * reader (DW_NO_TS: not known yet); dw_part_set_gc */
    int64_t *gc_before;
    int meta_dirty;
    uint64_t ckpt_seq; /* checkpoints written (meta field ckpt_seq): detects a Redis rollback */
    /* Redis Cluster: the clocks of the last checkpoint a replica acknowledged (WAIT), written
     * as the meta's safe_* fields by the next checkpoint; ok 0 while none is (the evaluator
     * holds the windows past them: dw_evaluator_part_hold). */
    struct {
        int ok;
        int64_t max_ts, max_label_ts, eof_ms, label_eof_ms;
    } safe;
    struct dw_part_reject reject; /* why the last call returned DW_PART_REJECTED */
    /* Label events a dw_part_on_prediction() call dropped: the label parked before the
     * prediction (and its remembered duplicates) was rejected at the join (why in join_reject).
     * Set by each call; the caller counts and logs them (they have no message left to
     * dead-letter). */
    uint64_t join_rejected;
    struct dw_part_reject join_reject;
};

struct dw_part *dw_part_new(const struct dw_config *cfg, int32_t partition);
void dw_part_free(struct dw_part *p);

/** @returns the partition watermark: max_ts - allowed_lateness (DW_NO_TS when empty). */
int64_t dw_part_watermark(const struct dw_part *p);

/**
 * @brief Event-time alignment of the two topics (dw_run.c pauses the labels partition):
 *        whether its labels partition should be held now, given whether it is held
 *        (`held`) and whether its predictions are at the end of their log
 *        (`preds_at_end`). Held while the labels' clock runs more than a window ahead of the
 *        predictions', or while labels came and no prediction did yet; let go once within
 *        half a window, or when the predictions are at their end, or without labels.
 */
int dw_part_hold_labels(const struct dw_part *p, int preds_at_end, int held);

/**
 * @brief Judges a fetched message's offset against the topic's next offset (off_pred or
 *        off_label, which the caller advances after counting the message).
 * @param is_pred 1: the predictions topic, 0: the labels topic.
 */
enum dw_fetch_action dw_part_fetched(struct dw_part *p, int is_pred, int64_t offset);

/**
 * @brief The input topics' partition count as an assignment shows it: `at_start`, the count
 *        read at start-up (it sizes every per-partition array), unless the topics' metadata
 *        says more (`topics_now`; 0 when unknown) or a partition at or beyond it is assigned
 *        (`highest_assigned`; -1 for none). Kafka only adds partitions. A pod still on the old
 *        count would drop the new partitions' messages and evaluate windows without them, so
 *        the consumer stops when this differs from `at_start`; its restart reads the new count.
 */
int dw_part_count_now(int at_start, int topics_now, int highest_assigned);

enum dw_part_result { DW_PART_OK = 0, DW_PART_LATE, DW_PART_DUPLICATE, DW_PART_REJECTED };

/**
 * @brief Processes a decoded prediction (the caller set offsets).
 * @returns DW_PART_REJECTED when its class or version is beyond the model's bound (nothing
 *          changed; why in p->reject). Check p->join_rejected after every call.
 */
enum dw_part_result dw_part_on_prediction(struct dw_part *p, const struct dw_prediction *ev);

/**
 * @brief Processes a decoded label.
 * @returns DW_PART_REJECTED when it would join a prediction of a classification model and its
 *          class is beyond the model's bound, or of a regression model and it is not a number
 *          (nothing changed; why in p->reject).
 */
enum dw_part_result dw_part_on_label(struct dw_part *p, const struct dw_label *lab);

/**
 * @brief Expires join records past join.ttl, evicts the oldest beyond join.max_records and
 *        retires windows past the label horizon. Call periodically (before a checkpoint).
 */
void dw_part_maintain(struct dw_part *p, int64_t max_records);

/** @returns the window of (model, start) in memory or NULL. */
struct dw_agg *dw_part_window(struct dw_part *p, const struct dw_model_cfg *model,
                              int64_t start_ms);

/** @brief Adds a window loaded from a checkpoint (takes ownership). */
void dw_part_adopt_window(struct dw_part *p, struct dw_agg *agg);

/**
 * @brief Seals every window (open or retired) that no prediction can change any more here (the
 *        partition's watermark or the global close passed its end) and still holds its
 *        sketches (dw_agg_seal): the checkpoint then writes its whole encoding apart once and
 *        the partition keeps only what labels change. Called before each checkpoint; the
 *        blobs are freed by dw_part_checkpoint_done(). @returns the windows sealed.
 */
size_t dw_part_seal(struct dw_part *p);

/**
 * @brief Drops the sketches (dw_agg_drop_sketches) of model's windows starting before
 *        before_ms: the close evaluation has merged them (its cursor is past them). A later
 *        prediction for such a window is late. The checkpoint writes the smaller records.
 *        A sealed window loses its sealed copy (dw_agg_merged).
 * @returns the windows whose sketches or sealed copy were dropped now.
 */
size_t dw_part_drop_sketches(struct dw_part *p, const struct dw_model_cfg *model,
                             int64_t before_ms);

/**
 * @brief Removes from p->unmerged the windows of model starting before before_ms: retired with
 *        their sketches while the close evaluation was behind, merged by it now, and written
 *        (a window whose last checkpoint failed stays until it is: Redis holds an older record).
 * @returns how many, their starts in *starts (malloc'd; NULL when none).
 */
size_t dw_part_take_unmerged(struct dw_part *p, const struct dw_model_cfg *model, int64_t before_ms,
                             int64_t **starts);

/**
 * @brief Hands over an aggregate to be written by the next checkpoint and freed: a retired
 *        window's record read back and shrunk (dw_agg_drop_sketches).
 */
void dw_part_rewrite_window(struct dw_part *p, struct dw_agg *agg);

/**
 * @brief Records that no reader needs the records of model's windows starting before
 *        before_ms any more (the evaluator's cursors say so: dw_evaluator_records_before).
 *        Monotonic: an earlier point is ignored.
 */
void dw_part_set_gc(struct dw_part *p, const struct dw_model_cfg *model, int64_t before_ms);

/** @returns 1 when the record of (model, start) is needed by no reader (dw_part_set_gc). */
int dw_part_gc_due(const struct dw_part *p, const struct dw_model_cfg *model, int64_t start_ms);

/**
 * @brief Marks the kept windows whose records the next checkpoint deletes (going).
 * @returns how many.
 */
size_t dw_part_gc_plan(struct dw_part *p);

/** @brief Lists a retired window's record as kept (loaded from the kept set); once only. */
void dw_part_keep_window(struct dw_part *p, const struct dw_model_cfg *model, int64_t start_ms);

/**
 * @brief Clears dirty marks and frees retired windows after a successful checkpoint; the
 *        retired windows it wrote are kept, the kept ones it deleted are forgotten. A join
 *        pool at most a quarter live gives its pages back (dw_join_compact(): record pointers
 *        do not survive this call).
 */
void dw_part_checkpoint_done(struct dw_part *p);

#endif
