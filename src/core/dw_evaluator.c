/*
 * dw_evaluator.c - the evaluator's decisions, apart from the Redis calls that feed them.
 *
 * Why it is its own module: the rules that decide when a window is closed and final for the
 * whole consumer group, where a cursor starts and how far it walks, how a gap of empty
 * windows becomes one report, and which windows become the reference, are the heart of the
 * service's correctness ("no window is judged before every partition that may still hold its
 * events has passed it"). Inside dw_run.c they could only be reached through end-to-end runs;
 * here they are pure functions over plain values (struct dw_part_meta, the config, a wall
 * clock passed in) with unit tests for every case (tests/unit/test_evaluator.c).
 *
 * The window-closing rule: a partition's prediction clock is its largest accepted event time
 * less window.allowed_lateness; the group's watermark is the minimum over the partitions that
 * are not idle. A partition is idle when it has been at the end of its log for
 * window.idle_timeout (eof_ms, written by its owner): it then holds no window. A partition
 * whose owner died keeps its last checkpointed clock and no eof mark, so it holds the windows
 * past it until another consumer takes it over - the safe side. A quarantined partition is
 * never idle (its unread events may belong to any later window); a corrupt meta holds every
 * window. When every partition is idle, the largest clock closes everything read.
 *
 * The final-after-close rule: a model's final cursor never passes its close cursor
 * (dw_evaluator_after_close). A window's final evaluation takes the feature statistics of its
 * committed close report, replaces that report under the same key, and lets the partitions
 * delete the records before it (dw_evaluator_records_before); so it runs only after the close
 * evaluation of the window was committed, whatever the watermarks read by the final walk say.
 *
 * With Redis Cluster a partition's meta lives on its slot's master and the cursors on another:
 * replication is asynchronous, so a failover can lose a partition's last checkpoints after
 * their clocks closed windows, and the replayed predictions would be late. There the clocks
 * used are the meta's safe copies (those of the last checkpoint a replica acknowledged, WAIT in
 * dw_redis.c); a partition without them holds every window like one without a clock. Its
 * end-of-log mark is not replaced but doubled: it is idle only when both the replicated and
 * the written mark say so (part_clocks).
 *
 * The consuming loop's timing rules live here too: when it hands free memory back
 * (dw_evaluator_trim_due) and when it checkpoints (dw_evaluator_checkpoint_due: every
 * checkpoint.interval, or sooner once checkpoint.max_messages were consumed, so that what a
 * catch-up holds between two checkpoints is bounded by messages, not by time).
 */
#include <stdlib.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/core/dw_part.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/*
 * The partition's clock and end-of-log mark (labels: of its label side). Redis Cluster: the
 * clock is that of a checkpoint a replica acknowledged, and none yet reads as no clock (a
 * failover may lose the others). The end-of-log mark is the other way round: a stale clock
 * errs toward holding windows, a stale mark toward not holding them. The replicated mark stays
 * where it was while no replica acknowledges (and a new owner writes none until one does), so
 * it can say "idle" for a partition being consumed again. There the partition is at its end
 * only when both marks say so, since the later of the two: the written mark saying "not at the
 * end" (0, or recent) wins even unreplicated, as asking it too can only hold more windows than
 * the replicated mark alone would.
 */
static void part_clocks(const struct dw_part_meta *m, const struct dw_config *cfg, int labels,
                        int64_t *ts, int64_t *eof)
{
    int64_t written = labels ? m->label_eof_ms : m->eof_ms;
    if (!cfg->redis_cluster) {
        *ts = labels ? m->max_label_ts : m->max_ts;
        *eof = written;
    } else if (!m->safe_present) {
        *ts = DW_NO_TS;
        *eof = 0;
    } else {
        int64_t safe = labels ? m->safe_label_eof_ms : m->safe_eof_ms;
        *ts = labels ? m->safe_max_label_ts : m->safe_max_ts;
        *eof = written > 0 && safe > 0 ? DW_MAX(written, safe) : 0;
    }
}

enum dw_part_hold dw_evaluator_part_hold(const struct dw_part_meta *m, const struct dw_config *cfg,
                                         int labels, int64_t now, int64_t *pwm)
{
    int64_t ts, eof;
    part_clocks(m, cfg, labels, &ts, &eof);
    *pwm = ts == DW_NO_TS ? DW_NO_TS : ts - (labels ? 0 : cfg->allowed_lateness_ms);
    if (m->corrupt) {
        return DW_HOLD_CORRUPT;
    }
    /* A quarantined partition is never idle: it holds the windows it has not read. */
    if (m->present && !m->quarantined && eof > 0 && now - eof >= cfg->idle_timeout_ms) {
        return DW_HOLD_IDLE;
    }
    if (*pwm == DW_NO_TS) {
        return DW_HOLD_NO_DATA;
    }
    return m->quarantined ? DW_HOLD_QUARANTINED : DW_HOLD_CLOCK;
}

/* Names of enum dw_part_hold, by value. */
static const char *const hold_names[] = {"clock", "idle", "no_data", "corrupt", "quarantined"};

const char *dw_evaluator_hold_name(enum dw_part_hold hold)
{
    size_t i = (size_t)hold;
    return i < sizeof(hold_names) / sizeof(hold_names[0]) ? hold_names[i] : "unknown";
}

int64_t dw_evaluator_min_over_live(const struct dw_part_meta *metas, int n,
                                   const struct dw_config *cfg, int labels, int64_t now)
{
    int64_t wm = DW_NO_TS, idle_max = DW_NO_TS;
    int holding = 0;
    for (int p = 0; p < n; p++) {
        int64_t pwm;
        enum dw_part_hold hold = dw_evaluator_part_hold(&metas[p], cfg, labels, now, &pwm);
        if (hold == DW_HOLD_CORRUPT || hold == DW_HOLD_NO_DATA) {
            return DW_NO_TS; /* its clock is unknown: no window may close */
        }
        if (hold == DW_HOLD_IDLE) {
            if (pwm != DW_NO_TS && (idle_max == DW_NO_TS || pwm > idle_max)) {
                idle_max = pwm;
            }
            continue;
        }
        wm = holding ? DW_MIN(wm, pwm) : pwm;
        holding = 1;
    }
    return holding ? wm : idle_max;
}

void dw_evaluator_watermarks(const struct dw_part_meta *metas, int n, const struct dw_config *cfg,
                             int64_t now, struct dw_watermarks *out)
{
    out->first_ts = DW_NO_TS;
    for (int p = 0; p < n; p++) {
        int64_t t = metas[p].min_ts;
        if (t != DW_NO_TS && (out->first_ts == DW_NO_TS || t < out->first_ts)) {
            out->first_ts = t;
        }
    }
    out->wm = dw_evaluator_min_over_live(metas, n, cfg, 0, now);
    out->label_wm = dw_evaluator_min_over_live(metas, n, cfg, 1, now);
}

int dw_evaluator_state_unknown(const struct dw_part_meta *m)
{
    return m->corrupt || m->quarantined;
}

int64_t dw_evaluator_closed_until(const struct dw_config *cfg, const struct dw_watermarks *w,
                                  int final)
{
    int64_t L = cfg->window_size_ms;
    int64_t wm = w->wm;
    if (final && (wm == DW_NO_TS || w->label_wm == DW_NO_TS)) {
        return DW_NO_TS;
    }
    if (final) {
        wm = DW_MIN(wm, w->label_wm) - cfg->label_horizon_ms;
    }
    if (wm == DW_NO_TS) {
        return DW_NO_TS;
    }
    /* window s is closed when s + L <= wm: the windows up to floor(wm / L) * L, exclusive */
    return dw_floor_div(wm, L) * L;
}

enum dw_next dw_evaluator_cursor_begin(struct dw_cursor_walk *walk, const struct dw_config *cfg,
                                       const struct dw_watermarks *w, int final, int found,
                                       int64_t stored)
{
    int64_t L = cfg->window_size_ms;
    walk->final = final;
    walk->reports = 0;
    walk->until = dw_evaluator_closed_until(cfg, w, final);
    walk->cursor = stored;
    if (!found) {
        if (w->first_ts == DW_NO_TS) {
            return DW_NEXT_NO_DATA;
        }
        walk->cursor = dw_floor_div(w->first_ts, L) * L;
    }
    return DW_NEXT_WINDOW;
}

void dw_evaluator_after_close(struct dw_cursor_walk *walk, int close_found, int64_t close_cursor)
{
    if (!walk->final) {
        return;
    }
    if (!close_found) {
        walk->until = DW_NO_TS; /* no close evaluation committed: nothing is final */
    } else if (walk->until != DW_NO_TS) {
        walk->until = DW_MIN(walk->until, close_cursor);
    }
}

enum dw_next dw_evaluator_next(const struct dw_cursor_walk *walk, int has_ref, int max_per_tick)
{
    if (walk->reports >= max_per_tick) {
        return DW_NEXT_TICK_FULL;
    }
    if (walk->until == DW_NO_TS || walk->cursor >= walk->until) {
        return DW_NEXT_NOT_CLOSED; /* for final: labels of that window may still be on their way */
    }
    if (walk->final && !has_ref) {
        return DW_NEXT_NO_REFERENCE;
    }
    return DW_NEXT_WINDOW;
}

int64_t dw_evaluator_step_cursor(const struct dw_config *cfg, int64_t start, int64_t n_windows)
{
    return start + n_windows * cfg->window_size_ms;
}

int64_t dw_evaluator_advance(struct dw_cursor_walk *walk, const struct dw_config *cfg,
                             int64_t n_windows)
{
    walk->cursor = dw_evaluator_step_cursor(cfg, walk->cursor, n_windows);
    walk->reports++;
    return walk->cursor;
}

int dw_evaluator_round_tick(struct dw_eval_round *r, size_t n_models,
                            const struct dw_watermarks *now)
{
    if (r->left > 0) {
        return 0;
    }
    r->wms = *now;
    r->left = 2 * n_models;
    r->pos = 0;
    r->walked = 0;
    return 1;
}

void dw_evaluator_round_next(struct dw_eval_round *r)
{
    r->pos++;
    r->left--;
    r->walked = 0;
}

int dw_evaluator_trim_due(const struct dw_eval_round *r, uint64_t msgs, uint64_t burst,
                          int64_t evaluated)
{
    return msgs >= burst || (evaluated > 0 && (r->left == 0 || msgs > 0));
}

enum dw_ckpt_reason dw_evaluator_checkpoint_due(int64_t now, int64_t next, uint64_t msgs,
                                                uint64_t max_msgs)
{
    if (now >= next) {
        return DW_CKPT_INTERVAL;
    }
    return msgs >= max_msgs ? DW_CKPT_MESSAGES : DW_CKPT_NONE;
}

int64_t dw_evaluator_empty_run(struct dw_empty_run *run, const struct dw_config *cfg, int64_t start,
                               int64_t until, int max_probe, dw_evaluator_empty_fn is_empty,
                               void *ctx)
{
    int64_t L = cfg->window_size_ms;
    int64_t next = start + L;
    if (run->from == start && run->to > next) {
        next = DW_MIN(run->to, until); /* read on an earlier call */
    }
    for (int i = 0; next < until; i++, next += L) {
        if (i == max_probe) {
            run->from = start;
            run->to = next;
            return 0;
        }
        int empty = is_empty(ctx, next);
        if (empty < 0) {
            return -1;
        }
        if (!empty) {
            break;
        }
    }
    run->from = DW_NO_TS;
    return (next - start) / L;
}

void dw_evaluator_rolling(const struct dw_config *cfg, int found, int64_t stored, int64_t from,
                          int64_t last, int64_t *first, int64_t *k, int *store)
{
    *first = stored;
    *store = 0;
    *k = 0;
    if (cfg->rolling_windows <= 0) {
        return;
    }
    if (!found || stored > from) {
        *first = from;
        *store = 1;
    }
    *k = DW_MIN(cfg->rolling_windows, (last - *first) / cfg->window_size_ms + 1);
}

int64_t dw_evaluator_records_before(const struct dw_config *cfg, int64_t final_cursor)
{
    int64_t back = cfg->rolling_windows > 1 ? cfg->rolling_windows - 1 : 0;
    return final_cursor - back * cfg->window_size_ms;
}

int dw_evaluator_reference_joins(const struct dw_agg *agg)
{
    return agg->all.predictions != 0;
}

json_t *dw_evaluator_reference_windows(const char *stored)
{
    json_t *wins = stored ? json_loads(stored, 0, NULL) : NULL;
    if (!json_is_array(wins)) {
        json_decref(wins);
        wins = json_array();
    }
    return wins;
}

int dw_evaluator_reference_listed(const json_t *wins, int64_t start)
{
    size_t i;
    json_t *v;
    json_array_foreach(wins, i, v)
    {
        if (json_integer_value(v) == start) {
            return 1;
        }
    }
    return 0;
}

int dw_evaluator_reference_add(json_t *wins, int64_t needed, int64_t start)
{
    json_array_append_new(wins, json_integer(start));
    return (int64_t)json_array_size(wins) >= needed;
}

int dw_evaluator_version_reference(const struct dw_model_cfg *m, const struct dw_agg *view,
                                   json_t *wins, struct dw_agg **merged, struct dw_ref **ref,
                                   uint32_t bins)
{
    if (*ref || view->all.predictions == 0 || dw_evaluator_reference_listed(wins, view->start_ms)) {
        return 0;
    }
    if (!*merged) {
        *merged = dw_agg_new_exact(m, view->start_ms, DW_AGG_MERGE_EXACT);
    }
    dw_agg_merge(*merged, view);
    if (!dw_evaluator_reference_add(wins, m->reference.windows, view->start_ms)) {
        return 0;
    }
    *ref = dw_ref_build(m, merged, 1, bins);
    (*ref)->source = DW_REF_SOURCE_WINDOWS;
    (*ref)->windows = (int64_t)json_array_size(wins);
    (*ref)->first_start_ms = json_integer_value(json_array_get(wins, 0));
    (*ref)->last_start_ms = view->start_ms;
    dw_agg_free(*merged);
    *merged = NULL;
    return 1;
}
