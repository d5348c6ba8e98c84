/*
 * dw_evaluator.h - the evaluator's decisions: which windows are closed and final for the
 * group, where a cursor starts and what it evaluates next, how long a run of empty windows is,
 * which windows of the rolling view to read, and which closed windows become the reference.
 *
 * Pure C over plain structs: the caller (`driftwatch run`) reads the partitions' clocks, the
 * cursors, the windows and the reference windows list from Redis, feeds them here and writes
 * what comes back (reports, cursors, the reference). Nothing here reads a clock, logs or
 * speaks to a server, so every rule is tested in tests/unit/test_evaluator.c with plain
 * values: idle partitions, a partition whose owner died, a quarantined one, the label horizon,
 * runs of empty windows, reference collection across a restart.
 */
#ifndef DW_EVALUATOR_H
#define DW_EVALUATOR_H

#include <jansson.h>
#include <stdint.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_config.h"

/** @brief What other pods need to know of a partition to close windows (read from Redis). */
struct dw_part_meta {
    int present;       /* the partition has a checkpoint */
    int corrupt;       /* its meta cannot be read: a number failed its check, or the wrong type */
    int quarantined;   /* its owner could not load its state (see dw_redis_quarantine) */
    char problem[400]; /* what is wrong, when corrupt or quarantined */
    int64_t max_ts;    /* DW_NO_TS when no prediction yet */
    int64_t min_ts;
    int64_t eof_ms;       /* wall clock since the partition is at the end of its log, 0 = not */
    int64_t max_label_ts; /* label watermark (DW_NO_TS when no label yet) */
    int64_t label_eof_ms; /* same as eof_ms for the labels partition */
    /* Redis Cluster: the same four clocks as of the last checkpoint a replica acknowledged
     * (WAIT); safe_present 0 while none is. Read only when cfg->redis_cluster. */
    int safe_present;
    int64_t safe_max_ts, safe_max_label_ts, safe_eof_ms, safe_label_eof_ms;
};

/** @brief How one partition's clock takes part in the group's watermark. */
enum dw_part_hold {
    DW_HOLD_CLOCK = 0,   /* live: holds the windows past its clock */
    DW_HOLD_IDLE,        /* at the end of its log for window.idle_timeout: holds nothing */
    DW_HOLD_NO_DATA,     /* live without a clock yet: holds every window */
    DW_HOLD_CORRUPT,     /* its meta cannot be read: its clock is unknown, holds every window */
    DW_HOLD_QUARANTINED, /* state not loadable: holds the windows past its last checkpoint */
};

/** @brief The group's clocks, from every partition's meta. */
struct dw_watermarks {
    int64_t wm;       /* predictions: windows ending at or before it are closed (DW_NO_TS) */
    int64_t label_wm; /* labels: windows ending at or before it - label_horizon are final */
    int64_t first_ts; /* smallest prediction time any partition accepted (DW_NO_TS: none) */
};

/**
 * @brief How partition meta `m` takes part in the predictions (labels = 0) or labels
 * (labels = 1) watermark at wall clock `now` (ms); *pwm gets its clock (DW_NO_TS: none): the
 * prediction clock less window.allowed_lateness, the label clock as is. A quarantined
 * partition is never idle (it holds the windows it has not read); an idle one still has a
 * clock (used when every partition is idle).
 */
enum dw_part_hold dw_evaluator_part_hold(const struct dw_part_meta *m, const struct dw_config *cfg,
                                         int labels, int64_t now, int64_t *pwm);

/** @brief The name of a hold reason ("clock", "idle", "no_data", "corrupt", "quarantined"). */
const char *dw_evaluator_hold_name(enum dw_part_hold hold);

/**
 * @brief Minimum over the partitions that are not idle of their clock (dw_evaluator_part_hold);
 * when every partition is idle, the largest clock. DW_NO_TS while a live partition has no
 * clock yet or a meta is corrupt (no window may close).
 */
int64_t dw_evaluator_min_over_live(const struct dw_part_meta *metas, int n,
                                   const struct dw_config *cfg, int labels, int64_t now);

/** @brief The group's watermarks from the n partitions' metas at wall clock `now` (ms). */
void dw_evaluator_watermarks(const struct dw_part_meta *metas, int n, const struct dw_config *cfg,
                             int64_t now, struct dw_watermarks *out);

/**
 * @brief Whether partition meta `m` holds windows because its state is unknown (corrupt, or
 * quarantined): what /status lists under windows_held, with m->problem as the reason.
 */
int dw_evaluator_state_unknown(const struct dw_part_meta *m);

/**
 * @brief Start of the first window of a stage (final = 0 close, 1 final) that is not closed
 * yet: the windows before it may be evaluated (close: the prediction watermark passed their
 * end; final: both watermarks passed their end + label_horizon). DW_NO_TS while none is.
 */
int64_t dw_evaluator_closed_until(const struct dw_config *cfg, const struct dw_watermarks *w,
                                  int final);

/** @brief Why a cursor evaluates nothing (more) on this tick, or DW_NEXT_WINDOW. */
enum dw_next {
    DW_NEXT_WINDOW = 0,   /* evaluate the window at the cursor (or the empty run it starts) */
    DW_NEXT_NO_DATA,      /* a new cursor, and no partition has accepted a prediction yet */
    DW_NEXT_NOT_CLOSED,   /* the window at the cursor is not closed (final: not final) yet */
    DW_NEXT_NO_REFERENCE, /* final stage: performance is judged once the reference exists */
    DW_NEXT_TICK_FULL,    /* max_per_tick reports made on this tick: the rest waits */
};

/** @brief One cursor's walk over the windows of a stage on one tick. */
struct dw_cursor_walk {
    int final;      /* 0: at close, 1: final */
    int64_t cursor; /* start of the next window to evaluate */
    int64_t until;  /* dw_evaluator_closed_until() of the stage */
    int reports;    /* reports made on this tick */
};

/**
 * @brief Starts the walk of a cursor: at the stored cursor when `found`, else (a new cursor)
 * at the window of w->first_ts, the group's first window with data.
 * @returns DW_NEXT_WINDOW, or DW_NEXT_NO_DATA for a new cursor before any data.
 */
enum dw_next dw_evaluator_cursor_begin(struct dw_cursor_walk *walk, const struct dw_config *cfg,
                                       const struct dw_watermarks *w, int final, int found,
                                       int64_t stored);

/**
 * @brief The final-after-close rule, for a final walk begun with dw_evaluator_cursor_begin():
 *        a window's final evaluation comes only after its close evaluation was committed. The
 *        walk is bounded by the model's committed close cursor (close_found 0: none yet, so no
 *        window is final), whatever the watermarks say: the close and final walks of one round
 *        may read different watermarks (slices), or the close walk may stop early (a failure,
 *        the per-round bound). Past it, the final report would be overwritten by the later
 *        close report of its window (same key), and the window records the final cursor lets
 *        the partitions delete (dw_evaluator_records_before) could still be unread by the close
 *        evaluation. A close walk is left as it is.
 */
void dw_evaluator_after_close(struct dw_cursor_walk *walk, int close_found, int64_t close_cursor);

/**
 * @brief What the walk does next: DW_NEXT_WINDOW (evaluate walk->cursor), or why it stops.
 * has_ref: the model's reference exists.
 */
enum dw_next dw_evaluator_next(const struct dw_cursor_walk *walk, int has_ref, int max_per_tick);

/**
 * @brief What one evaluation step commits as the cursor, in the same transaction as its alert
 *        state, trigger guardrails and pending deliveries: the start of the window after the
 *        n_windows windows its report covered (a window, or a run of empty ones) from `start`.
 *        Committed together, a crash between two steps replays the step whole or not at all.
 */
int64_t dw_evaluator_step_cursor(const struct dw_config *cfg, int64_t start, int64_t n_windows);

/**
 * @brief Moves the cursor past the n_windows windows one report covered.
 * @returns the new cursor: what the report commits as the cursor's value.
 */
int64_t dw_evaluator_advance(struct dw_cursor_walk *walk, const struct dw_config *cfg,
                             int64_t n_windows);

/**
 * @brief An evaluation round: each cursor (model, stage) of the models evaluated here walked
 *        once, in slices over several loop iterations and evaluation ticks, over the windows
 *        closed when the round began: its watermarks stay those of its first tick. Read again
 *        at every tick, they let a close walk follow the clocks forward slice after slice while
 *        the final walks waited for it (every close report of a catch-up before the first
 *        final one), and the final walk see windows that closed after the close walk ended.
 */
struct dw_eval_round {
    struct dw_watermarks wms; /* the group's watermarks when the round began */
    size_t left;              /* cursors still to walk; 0: no round in progress */
    size_t pos;               /* the cursor being walked: 2 * model + final */
    int walked;               /* its reports in this round so far */
};

/**
 * @brief On an evaluation tick, with the group's watermarks `now`: begins a round over the
 *        cursors of n_models models, unless one is in progress (it keeps its watermarks).
 * @returns 1 when a round began, 0 otherwise.
 */
int dw_evaluator_round_tick(struct dw_eval_round *r, size_t n_models,
                            const struct dw_watermarks *now);

/** @brief The cursor at r->pos is done for this round: on to the next one. */
void dw_evaluator_round_next(struct dw_eval_round *r);

/**
 * @brief Whether the loop should hand its free heap memory back to the OS now (malloc_trim):
 *        after `msgs` messages since the last trim, at least `burst`, or after `evaluated`
 *        window evaluations: after each slice of their round `r` while messages still come
 *        (`msgs` > 0: the prefetch and the partitions' windows are at their peak then), once
 *        the round is over when none come (a catch-up's last evaluations), since the next
 *        slice allocates the same buffers again and would fault the pages back in.
 * @returns 1 when due, 0 otherwise.
 */
int dw_evaluator_trim_due(const struct dw_eval_round *r, uint64_t msgs, uint64_t burst,
                          int64_t evaluated);

/** @brief Why a checkpoint round is due (dw_evaluator_checkpoint_due). */
enum dw_ckpt_reason {
    DW_CKPT_NONE = 0,
    DW_CKPT_INTERVAL, /* checkpoint.interval passed */
    DW_CKPT_MESSAGES, /* checkpoint.max_messages consumed since the last round, before it */
};

/**
 * @brief Whether the loop should checkpoint now: at `now` (ms) once `next` (the last round's
 *        time plus checkpoint.interval) is reached, or once `msgs` messages were consumed
 *        since the last round, at least `max_msgs` (checkpoint.max_messages): what a catch-up
 *        holds between two rounds (the windows its partitions have not sealed yet, the sealed
 *        blobs, the transactions' buffers) is then bounded by messages, whatever the speed.
 * @returns DW_CKPT_INTERVAL, DW_CKPT_MESSAGES, or DW_CKPT_NONE when not due.
 */
enum dw_ckpt_reason dw_evaluator_checkpoint_due(int64_t now, int64_t next, uint64_t msgs,
                                                uint64_t max_msgs);

/** @brief A run of empty windows measured over several ticks (in memory; lost, read again). */
struct dw_empty_run {
    int64_t from; /* the run's first window (the cursor); DW_NO_TS: none being measured */
    int64_t to;   /* windows before it (exclusive) were read empty */
};

/** @brief Reads the window starting at `start`: 1 empty, 0 holds data, -1 cannot be read. */
typedef int (*dw_evaluator_empty_fn)(void *ctx, int64_t start);

/**
 * @brief Length in windows of the run of empty windows that starts with the empty window
 * `start`: up to the next window holding data, or to `until` (not closed yet). The windows
 * after it are read through is_empty, at most max_probe per call; a longer gap continues on
 * the next call from *run and is still one report. A closed window read empty stays empty (a
 * late prediction creates no window), so the progress in *run stays true.
 * @returns the length (>= 1), 0 while the gap is still being read, -1 when a read failed.
 */
int64_t dw_evaluator_empty_run(struct dw_empty_run *run, const struct dw_config *cfg, int64_t start,
                               int64_t until, int max_probe, dw_evaluator_empty_fn is_empty,
                               void *ctx);

/**
 * @brief The rolling view of a report covering the windows from..last (starts, ms):
 * *first is the model's first evaluated window (stored: the stored one, found = 1; a
 * missing or later one becomes `from`, and *store says to write it back), *k the number of
 * windows the view holds, last included (up to evaluation.rolling_windows). *k is 0 when the
 * rolling view is disabled.
 */
void dw_evaluator_rolling(const struct dw_config *cfg, int found, int64_t stored, int64_t from,
                          int64_t last, int64_t *first, int64_t *k, int *store);

/**
 * @brief Where the partitions' window records stop being read, given the final cursor (the
 * next window to evaluate at the label horizon): records of windows starting before the
 * returned start are needed by no reader. The final evaluation of a window reads its records,
 * and the rolling view of every report reads the evaluation.rolling_windows - 1 windows before
 * the one reported; the close cursor is never behind the final one (dw_evaluator_after_close),
 * so the last reader of window w is the final evaluation of w + (rolling_windows - 1) *
 * window.size.
 * @returns final_cursor - max(rolling_windows - 1, 0) * window.size.
 */
int64_t dw_evaluator_records_before(const struct dw_config *cfg, int64_t final_cursor);

/**
 * @brief Whether the closed window with aggregate `agg` joins the reference while it is being
 * collected: only windows with predictions do (an empty one is judged without a reference).
 */
int dw_evaluator_reference_joins(const struct dw_agg *agg);

/**
 * @brief The reference windows list from its stored form (a JSON array of window starts;
 * NULL when absent): collection continues where it stopped. Absent or not an array: empty.
 * @returns a new JSON array.
 */
json_t *dw_evaluator_reference_windows(const char *stored);

/** @returns 1 when window `start` is in the reference windows list `wins`. */
int dw_evaluator_reference_listed(const json_t *wins, int64_t start);

/**
 * @brief Adds window `start` to the reference windows list `wins`.
 * @param needed the model's reference windows (its reference.windows)
 * @returns 1 when the list is complete (build the reference from them), 0 while collecting.
 */
int dw_evaluator_reference_add(json_t *wins, int64_t needed, int64_t start);

struct dw_ref;

/**
 * @brief A version's own reference (reference.per_version), one closed window at a time:
 *        `view` (dw_agg_version_view of the window) joins the version's collection *merged
 *        (created on the first) and its start the list `wins`, once per window (a window
 *        evaluated again changes nothing); with m->reference.windows windows listed, *ref is
 *        built from the merged collection, which is freed. Nothing changes once *ref exists,
 *        or for a view without predictions.
 * @returns 1 when this call built *ref (the caller sets created_ms and stores it), 0 otherwise.
 */
int dw_evaluator_version_reference(const struct dw_model_cfg *m, const struct dw_agg *view,
                                   json_t *wins, struct dw_agg **merged, struct dw_ref **ref,
                                   uint32_t bins);

#endif
