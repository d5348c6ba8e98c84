/*
 * test_evaluator.c - the evaluator's decisions over plain values (dw_evaluator): which windows
 * are closed and final for the group given each partition's clocks (idle partitions, a
 * partition whose owner died, a quarantined or corrupt one, windows closing out of order
 * across partitions, the label horizon, Redis Cluster's replicated clocks and end-of-log
 * marks), the cursor walk (where a new cursor starts, the per-tick bound, the final stage
 * waiting for the reference and never passing the close cursor), runs of empty windows
 * measured over several calls, the rolling view's first window, and reference collection
 * across a restart (the stored windows list read back continues where it stopped).
 *
 * Times are in windows of W ms; the wall clock is NOW ms. Expected values are worked out by
 * hand next to each assertion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/core/dw_part.h"

#define W 60000LL          /* window size, milliseconds */
#define LATENESS 10000LL   /* allowed lateness, milliseconds */
#define HORIZON 120000LL   /* label horizon, milliseconds */
#define IDLE 30000LL       /* idle timeout, milliseconds */
#define NOW 1000000000LL   /* wall clock of the tests, milliseconds */
#define T0 1700000040000LL /* an event time on a window boundary (a multiple of W) */

static struct dw_config test_cfg(void)
{
    struct dw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.window_size_ms = W;
    cfg.allowed_lateness_ms = LATENESS;
    cfg.label_horizon_ms = HORIZON;
    cfg.idle_timeout_ms = IDLE;
    cfg.reference_windows = 3;
    cfg.rolling_windows = 4;
    return cfg;
}

/* A live partition with a checkpoint: prediction clock ts, label clock lts, not at its end. */
static struct dw_part_meta live(int64_t ts, int64_t lts)
{
    struct dw_part_meta m;
    memset(&m, 0, sizeof(m));
    m.present = 1;
    m.max_ts = ts;
    m.min_ts = ts == DW_NO_TS ? DW_NO_TS : T0;
    m.max_label_ts = lts;
    return m;
}

/* The same partition, at the end of both its logs since wall clock `since`. */
static struct dw_part_meta at_eof(struct dw_part_meta m, int64_t since)
{
    m.eof_ms = since;
    m.label_eof_ms = since;
    return m;
}

static void test_idle_partition_stops_holding(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    struct dw_part_meta metas[3] = {live(T0 + 10 * W, T0 + 10 * W), live(T0 + 2 * W, T0 + 2 * W),
                                    live(T0 + 7 * W, T0 + 7 * W)};
    struct dw_watermarks w;
    /* all live: the slowest (partition 1) holds: T0 + 2W - lateness */
    dw_evaluator_watermarks(metas, 3, &cfg, NOW, &w);
    assert_int_equal(w.wm, T0 + 2 * W - LATENESS);
    assert_int_equal(w.label_wm, T0 + 2 * W);
    /* partition 1 at its end, but not for idle_timeout yet: still holds */
    metas[1] = at_eof(metas[1], NOW - IDLE + 1);
    int64_t pwm;
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_CLOCK);
    dw_evaluator_watermarks(metas, 3, &cfg, NOW, &w);
    assert_int_equal(w.wm, T0 + 2 * W - LATENESS);
    /* idle for exactly idle_timeout: holds nothing; the next slowest is partition 2 */
    metas[1] = at_eof(metas[1], NOW - IDLE);
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_IDLE);
    assert_string_equal(dw_evaluator_hold_name(DW_HOLD_IDLE), "idle");
    assert_string_equal(dw_evaluator_hold_name(DW_HOLD_QUARANTINED), "quarantined");
    dw_evaluator_watermarks(metas, 3, &cfg, NOW, &w);
    assert_int_equal(w.wm, T0 + 7 * W - LATENESS);
    assert_int_equal(w.label_wm, T0 + 7 * W);
    /* windows up to T0 + 6W are closed (T0 + 6W + W <= T0 + 7W - lateness fails: 7W > 7W - L) */
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), T0 + 6 * W);
}

static void test_all_idle_takes_largest_clock(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    struct dw_part_meta metas[3] = {at_eof(live(T0 + 3 * W, T0 + W), NOW - IDLE),
                                    at_eof(live(T0 + 9 * W, T0 + 5 * W), NOW - 2 * IDLE),
                                    at_eof(live(DW_NO_TS, DW_NO_TS), NOW - IDLE)};
    struct dw_watermarks w;
    dw_evaluator_watermarks(metas, 3, &cfg, NOW, &w);
    /* every partition idle: the largest clock (partition 2 has none and does not count) */
    assert_int_equal(w.wm, T0 + 9 * W - LATENESS);
    assert_int_equal(w.label_wm, T0 + 5 * W);
    assert_int_equal(w.first_ts, T0);
    /* every partition idle and none has a clock: nothing closes */
    struct dw_part_meta none[2] = {at_eof(live(DW_NO_TS, DW_NO_TS), NOW - IDLE),
                                   at_eof(live(DW_NO_TS, DW_NO_TS), NOW - IDLE)};
    dw_evaluator_watermarks(none, 2, &cfg, NOW, &w);
    assert_true(w.wm == DW_NO_TS);
    assert_true(w.first_ts == DW_NO_TS);
    assert_true(dw_evaluator_closed_until(&cfg, &w, 0) == DW_NO_TS);
}

static void test_dead_owner_and_quarantine_hold(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    /* partition 1's owner died: its last checkpointed clock stays, with no eof mark, forever */
    struct dw_part_meta metas[2] = {at_eof(live(T0 + 20 * W, T0 + 20 * W), NOW - 100 * IDLE),
                                    live(T0 + 4 * W, T0 + 4 * W)};
    struct dw_watermarks w;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW + 1000 * IDLE, &w);
    /* partition 0 is idle, partition 1 holds with its clock however long it has been */
    assert_int_equal(w.wm, T0 + 4 * W - LATENESS);
    assert_int_equal(w.label_wm, T0 + 4 * W);
    assert_false(dw_evaluator_state_unknown(&metas[1]));
    /* a quarantined partition is never idle, even at its end: it holds with its last clock */
    metas[1] = at_eof(metas[1], NOW - 100 * IDLE);
    metas[1].quarantined = 1;
    int64_t pwm;
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_QUARANTINED);
    assert_int_equal(pwm, T0 + 4 * W - LATENESS);
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(w.wm, T0 + 4 * W - LATENESS);
    assert_true(dw_evaluator_state_unknown(&metas[1]));
    /* without the quarantine it would have been idle: partition 0's clock closes */
    metas[1].quarantined = 0;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(w.wm, T0 + 20 * W - LATENESS);
    /* a corrupt meta holds every window, even beside idle partitions */
    metas[1].corrupt = 1;
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_CORRUPT);
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_true(w.wm == DW_NO_TS);
    assert_true(w.label_wm == DW_NO_TS);
    assert_true(dw_evaluator_state_unknown(&metas[1]));
    /* a live partition without data yet holds every window */
    struct dw_part_meta fresh[2] = {live(T0 + 5 * W, T0), live(DW_NO_TS, DW_NO_TS)};
    assert_int_equal(dw_evaluator_part_hold(&fresh[1], &cfg, 0, NOW, &pwm), DW_HOLD_NO_DATA);
    dw_evaluator_watermarks(fresh, 2, &cfg, NOW, &w);
    assert_true(w.wm == DW_NO_TS);
    assert_int_equal(w.first_ts, T0);
}

static void test_windows_close_out_of_order(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    /* partition 0 runs ahead, partition 1 behind: the windows close with partition 1 */
    struct dw_part_meta metas[2] = {live(T0 + 8 * W + LATENESS, DW_NO_TS),
                                    live(T0 + 3 * W + LATENESS, DW_NO_TS)};
    struct dw_watermarks w;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    /* wm = T0 + 3W: windows before T0 + 3W are closed, T0 + 3W itself not */
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), T0 + 3 * W);
    /* partition 1 overtakes partition 0: now partition 0 holds */
    metas[1].max_ts = T0 + 12 * W + LATENESS;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), T0 + 8 * W);
    /* one ms short of a window's end: that window stays open */
    metas[0].max_ts = T0 + 9 * W + LATENESS - 1;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), T0 + 8 * W);
    metas[0].max_ts = T0 + 9 * W + LATENESS;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), T0 + 9 * W);
    /* no labels yet: nothing is final */
    assert_true(dw_evaluator_closed_until(&cfg, &w, 1) == DW_NO_TS);
    /* before the epoch: windows are floor-aligned */
    struct dw_part_meta neg[1] = {live(-W / 2 + LATENESS, DW_NO_TS)};
    dw_evaluator_watermarks(neg, 1, &cfg, NOW, &w);
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), -W);
}

static void test_label_horizon(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    struct dw_watermarks w = {T0 + 10 * W, T0 + 2 * W + HORIZON, T0};
    /* final only when the label clock passed end + horizon: window T0 + W ends T0 + 2W */
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 1), T0 + 2 * W);
    w.label_wm = T0 + 2 * W + HORIZON - 1; /* 1 ms short */
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 1), T0 + W);
    /* labels ahead of predictions: the prediction watermark bounds the final stage too */
    w.wm = T0 + 4 * W;
    w.label_wm = T0 + 50 * W;
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 1), T0 + 4 * W - HORIZON);
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 0), T0 + 4 * W);
    /* no prediction watermark: nothing final */
    w.wm = DW_NO_TS;
    assert_true(dw_evaluator_closed_until(&cfg, &w, 1) == DW_NO_TS);
    /* from partition metas: the label clock is not reduced by the allowed lateness */
    struct dw_part_meta metas[2] = {live(T0 + 20 * W, T0 + 5 * W + HORIZON),
                                    live(T0 + 20 * W, T0 + 9 * W + HORIZON)};
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(w.label_wm, T0 + 5 * W + HORIZON);
    assert_int_equal(dw_evaluator_closed_until(&cfg, &w, 1), T0 + 5 * W);
}

static void test_cursor_walk(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    struct dw_watermarks w = {T0 + 5 * W + W / 2, DW_NO_TS, DW_NO_TS};
    struct dw_cursor_walk walk;
    /* a new cursor before any data: nothing to do */
    assert_int_equal(dw_evaluator_cursor_begin(&walk, &cfg, &w, 0, 0, 0), DW_NEXT_NO_DATA);
    /* a new cursor starts at the window of the first prediction */
    w.first_ts = T0 + 2 * W + 17;
    assert_int_equal(dw_evaluator_cursor_begin(&walk, &cfg, &w, 0, 0, 0), DW_NEXT_WINDOW);
    assert_int_equal(walk.cursor, T0 + 2 * W);
    assert_int_equal(walk.until, T0 + 5 * W);
    /* a stored cursor wins over the first data */
    assert_int_equal(dw_evaluator_cursor_begin(&walk, &cfg, &w, 0, 1, T0 + 4 * W), DW_NEXT_WINDOW);
    assert_int_equal(walk.cursor, T0 + 4 * W);
    assert_int_equal(dw_evaluator_next(&walk, 0, 64), DW_NEXT_WINDOW);
    assert_int_equal(dw_evaluator_advance(&walk, &cfg, 1), T0 + 5 * W);
    assert_int_equal(dw_evaluator_next(&walk, 0, 64), DW_NEXT_NOT_CLOSED);
    /* the per-tick bound: two reports, then the rest waits */
    dw_evaluator_cursor_begin(&walk, &cfg, &w, 0, 1, T0);
    assert_int_equal(dw_evaluator_next(&walk, 0, 2), DW_NEXT_WINDOW);
    dw_evaluator_advance(&walk, &cfg, 1);
    assert_int_equal(dw_evaluator_next(&walk, 0, 2), DW_NEXT_WINDOW);
    dw_evaluator_advance(&walk, &cfg, 1);
    assert_int_equal(dw_evaluator_next(&walk, 0, 2), DW_NEXT_TICK_FULL);
    /* the final stage: nothing while labels are missing, then waits for the reference */
    dw_evaluator_cursor_begin(&walk, &cfg, &w, 1, 1, T0);
    assert_int_equal(dw_evaluator_next(&walk, 1, 64), DW_NEXT_NOT_CLOSED);
    w.label_wm = T0 + 10 * W;
    dw_evaluator_cursor_begin(&walk, &cfg, &w, 1, 1, T0);
    assert_int_equal(walk.until, T0 + 3 * W); /* T0 + 5.5W - 2W horizon, floored */
    assert_int_equal(dw_evaluator_next(&walk, 0, 64), DW_NEXT_NO_REFERENCE);
    assert_int_equal(dw_evaluator_next(&walk, 1, 64), DW_NEXT_WINDOW);
    /* a run of 3 empty windows is one report that moves the cursor past all of them; the step
     * commits that cursor with its alert state */
    assert_int_equal(dw_evaluator_step_cursor(&cfg, walk.cursor, 3), T0 + 3 * W);
    assert_int_equal(dw_evaluator_advance(&walk, &cfg, 3), T0 + 3 * W);
    assert_int_equal(dw_evaluator_next(&walk, 1, 64), DW_NEXT_NOT_CLOSED);
}

/* Walks `walk` to its end, one window per report. @returns the reports made. */
static int walk_all(struct dw_cursor_walk *walk, const struct dw_config *cfg)
{
    int n = 0;
    while (dw_evaluator_next(walk, 1, 64) == DW_NEXT_WINDOW) {
        dw_evaluator_advance(walk, cfg, 1);
        n++;
    }
    return n;
}

/* The final-after-close rule: the watermarks jump forward by 20 windows between two slices of
 * one round, after the close walk (which read the old ones) and before the final walk (which
 * reads the new ones). The final walk stops at the committed close cursor. */
static void test_final_never_passes_close(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    /* closed: the windows before T0 + 3W; final: none yet (horizon 2W) */
    struct dw_watermarks w = {T0 + 3 * W + W / 2, T0 + 3 * W + W / 2, T0};
    struct dw_cursor_walk close, fin;
    dw_evaluator_cursor_begin(&close, &cfg, &w, 0, 1, T0);
    dw_evaluator_after_close(&close, 1, T0); /* a close walk is not bounded by itself */
    assert_int_equal(walk_all(&close, &cfg), 3);
    assert_int_equal(close.cursor, T0 + 3 * W);
    /* next slice: both clocks at T0 + 23.5W: final by the watermarks up to T0 + 21W */
    w.wm = w.label_wm = T0 + 23 * W + W / 2;
    assert_int_equal(dw_evaluator_cursor_begin(&fin, &cfg, &w, 1, 1, T0), DW_NEXT_WINDOW);
    dw_evaluator_after_close(&fin, 1, close.cursor);
    assert_int_equal(fin.until, T0 + 3 * W);
    assert_int_equal(walk_all(&fin, &cfg), 3); /* T0, T0 + W, T0 + 2W: closed and committed */
    assert_int_equal(fin.cursor, T0 + 3 * W);
    assert_int_equal(dw_evaluator_next(&fin, 1, 64), DW_NEXT_NOT_CLOSED);
    /* the watermarks are behind the close cursor: they bound the walk as before */
    w.wm = w.label_wm = T0 + 3 * W + W / 2;
    dw_evaluator_cursor_begin(&fin, &cfg, &w, 1, 1, T0);
    dw_evaluator_after_close(&fin, 1, T0 + 10 * W);
    assert_int_equal(fin.until, T0 + W);
    /* no close cursor committed yet: no window is final, even a new final cursor's first */
    w.wm = w.label_wm = T0 + 23 * W + W / 2;
    assert_int_equal(dw_evaluator_cursor_begin(&fin, &cfg, &w, 1, 0, 0), DW_NEXT_WINDOW);
    dw_evaluator_after_close(&fin, 0, 0);
    assert_int_equal(dw_evaluator_next(&fin, 1, 64), DW_NEXT_NOT_CLOSED);
}

/* A round walked in slices keeps the watermarks of its first tick: a tick in between, with
 * clocks 20 windows further, changes what the next round walks, not this one. */
static void test_round_keeps_its_watermarks(void **state)
{
    (void)state;
    struct dw_eval_round r;
    memset(&r, 0, sizeof(r));
    struct dw_watermarks w1 = {T0 + 3 * W, T0 + 3 * W, T0};
    struct dw_watermarks w2 = {T0 + 23 * W, T0 + 23 * W, T0};
    assert_int_equal(dw_evaluator_round_tick(&r, 2, &w1), 1);
    assert_int_equal(r.left, 4); /* 2 models, close and final each */
    assert_int_equal(r.pos, 0);
    r.walked = 5;
    dw_evaluator_round_next(&r);
    assert_int_equal(r.pos, 1);
    assert_int_equal(r.walked, 0);
    /* a tick between two slices of the round */
    assert_int_equal(dw_evaluator_round_tick(&r, 2, &w2), 0);
    assert_int_equal(r.wms.wm, w1.wm);
    assert_int_equal(r.wms.label_wm, w1.label_wm);
    assert_int_equal(r.pos, 1);
    for (int i = 0; i < 3; i++) {
        dw_evaluator_round_next(&r);
    }
    assert_int_equal(r.left, 0);
    /* the next tick begins a round with its own watermarks */
    assert_int_equal(dw_evaluator_round_tick(&r, 2, &w2), 1);
    assert_int_equal(r.wms.wm, w2.wm);
    assert_int_equal(r.pos, 0);
}

/* Free memory goes back to the OS after a burst of messages, or after evaluations: after each
 * slice of their round while messages come, once the round is over when none come, since the
 * next slice would fault the same pages in again (it trimmed after every slice: 16 trims in a
 * bench run's catch-up instead of 5). */
static void test_trim_due(void **state)
{
    (void)state;
    struct dw_eval_round r;
    memset(&r, 0, sizeof(r));
    struct dw_watermarks w = {T0 + 3 * W, T0 + 3 * W, T0};
    assert_int_equal(dw_evaluator_trim_due(&r, 0, 100, 0), 0); /* nothing happened */
    assert_int_equal(dw_evaluator_trim_due(&r, 99, 100, 0), 0);
    assert_int_equal(dw_evaluator_trim_due(&r, 100, 100, 0), 1); /* a burst */
    assert_int_equal(dw_evaluator_round_tick(&r, 1, &w), 1);
    assert_int_equal(dw_evaluator_trim_due(&r, 0, 100, 3), 0);   /* between slices, idle */
    assert_int_equal(dw_evaluator_trim_due(&r, 1, 100, 3), 1);   /* between slices, consuming */
    assert_int_equal(dw_evaluator_trim_due(&r, 1, 100, 0), 0);   /* no evaluation, no burst */
    assert_int_equal(dw_evaluator_trim_due(&r, 100, 100, 3), 1); /* a burst all the same */
    dw_evaluator_round_next(&r);
    assert_int_equal(dw_evaluator_trim_due(&r, 0, 100, 3), 0); /* one cursor still to walk */
    dw_evaluator_round_next(&r);
    assert_int_equal(r.left, 0);
    assert_int_equal(dw_evaluator_trim_due(&r, 0, 100, 3), 1); /* the round is over */
    assert_int_equal(dw_evaluator_trim_due(&r, 0, 100, 0), 0); /* it evaluated nothing */
}

/* A checkpoint is due when its interval has passed, or once max_messages were consumed since
 * the last: the state a catch-up holds between two checkpoints (windows not sealed yet, their
 * blobs, the transaction's buffers) grows with the messages, not with the time (a 1M + 1M
 * bench run held ~30 MB more at its peak with a checkpoint a second than a checkpoint every
 * 500 ms, on a machine consuming 500k messages a second). */
static void test_checkpoint_due(void **state)
{
    (void)state;
    int64_t next = 5000;
    assert_int_equal(dw_evaluator_checkpoint_due(4999, next, 0, 1000), DW_CKPT_NONE);
    assert_int_equal(dw_evaluator_checkpoint_due(4999, next, 999, 1000), DW_CKPT_NONE);
    assert_int_equal(dw_evaluator_checkpoint_due(5000, next, 0, 1000), DW_CKPT_INTERVAL);
    assert_int_equal(dw_evaluator_checkpoint_due(4999, next, 1000, 1000), DW_CKPT_MESSAGES);
    assert_int_equal(dw_evaluator_checkpoint_due(100, next, 5000, 1000), DW_CKPT_MESSAGES);
    /* both: the interval's, the one an operator expects without a catch-up */
    assert_int_equal(dw_evaluator_checkpoint_due(6000, next, 5000, 1000), DW_CKPT_INTERVAL);
}

/* Windows for the empty-run tests: empty unless listed in data[]; reads counted. */
struct fake_windows {
    int64_t data[4];
    int n_data;
    int64_t broken; /* this window cannot be read */
    int reads;
};

static int fake_empty(void *ctx, int64_t start)
{
    struct fake_windows *f = ctx;
    f->reads++;
    if (start == f->broken) {
        return -1;
    }
    for (int i = 0; i < f->n_data; i++) {
        if (f->data[i] == start) {
            return 0;
        }
    }
    return 1;
}

static void test_empty_run(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    struct dw_empty_run run = {DW_NO_TS, DW_NO_TS};
    /* window T0 empty, T0 + W .. T0 + 4W empty, T0 + 5W has data: a run of 5 */
    struct fake_windows f = {{T0 + 5 * W}, 1, DW_NO_TS, 0};
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 100 * W, 1024, fake_empty, &f), 5);
    assert_int_equal(f.reads, 5);
    /* up to `until` when no data follows: the run stops at the first window not closed */
    f.n_data = 0;
    f.reads = 0;
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 7 * W, 1024, fake_empty, &f), 7);
    assert_int_equal(f.reads, 6);
    /* the last closed window: a run of 1 with nothing to read */
    f.reads = 0;
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + W, 1024, fake_empty, &f), 1);
    assert_int_equal(f.reads, 0);
    /* a long gap, 4 reads per call: measured over three calls, reported once with its length */
    f.data[0] = T0 + 10 * W;
    f.n_data = 1;
    f.reads = 0;
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 100 * W, 4, fake_empty, &f), 0);
    assert_int_equal(run.from, T0);
    assert_int_equal(run.to, T0 + 5 * W);
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 100 * W, 4, fake_empty, &f), 0);
    assert_int_equal(run.to, T0 + 9 * W);
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 100 * W, 4, fake_empty, &f), 10);
    /* T0 + W .. T0 + 10W (the window with data ends the run), each read once */
    assert_int_equal(f.reads, 10);
    assert_true(run.from == DW_NO_TS);
    /* progress of another start is not reused */
    f.reads = 0;
    run.from = T0 + W;
    run.to = T0 + 8 * W;
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 100 * W, 1024, fake_empty, &f),
                     10);
    assert_int_equal(f.reads, 10); /* read again from T0 + W */
    /* a window that cannot be read: an error, nothing reported */
    f.broken = T0 + 3 * W;
    assert_int_equal(dw_evaluator_empty_run(&run, &cfg, T0, T0 + 100 * W, 1024, fake_empty, &f),
                     -1);
}

static void test_rolling_first_window(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    int64_t first, k;
    int store;
    /* the first evaluation: the view starts with it and is stored */
    dw_evaluator_rolling(&cfg, 0, 0, T0, T0, &first, &k, &store);
    assert_int_equal(first, T0);
    assert_int_equal(k, 1);
    assert_true(store);
    /* later: the stored first window, up to rolling_windows (4) windows */
    dw_evaluator_rolling(&cfg, 1, T0, T0 + 2 * W, T0 + 2 * W, &first, &k, &store);
    assert_int_equal(k, 3);
    assert_false(store);
    dw_evaluator_rolling(&cfg, 1, T0, T0 + 9 * W, T0 + 9 * W, &first, &k, &store);
    assert_int_equal(k, 4);
    /* an empty run starting before the stored first window moves it back */
    dw_evaluator_rolling(&cfg, 1, T0 + 5 * W, T0 + 2 * W, T0 + 6 * W, &first, &k, &store);
    assert_int_equal(first, T0 + 2 * W);
    assert_true(store);
    assert_int_equal(k, 4);
    /* disabled: no window */
    cfg.rolling_windows = 0;
    dw_evaluator_rolling(&cfg, 1, T0, T0, T0 + 9 * W, &first, &k, &store);
    assert_int_equal(k, 0);
    assert_false(store);
}

/* Records before dw_evaluator_records_before() are read by no later report: every rolling view
 * of a window at or after the final cursor starts at or after it, and the final evaluation
 * reads the window at the cursor. */
static void test_records_before(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg(); /* rolling_windows 4 */
    int64_t final = T0 + 10 * W;
    int64_t before = dw_evaluator_records_before(&cfg, final);
    assert_int_equal(before, final - 3 * W);
    for (int64_t last = final; last < final + 8 * W; last += W) {
        int64_t first, k;
        int store;
        dw_evaluator_rolling(&cfg, 1, T0, last, last, &first, &k, &store);
        assert_true(last - (k - 1) * W >= before);
    }
    /* one window shown, or none: only the final evaluation reads them */
    cfg.rolling_windows = 1;
    assert_int_equal(dw_evaluator_records_before(&cfg, final), final);
    cfg.rolling_windows = 0;
    assert_int_equal(dw_evaluator_records_before(&cfg, final), final);
}

/* Adds window `start` to the reference list stored as *stored (replaced by its new form),
 * as run does on each closed window: read back, add, store. @returns complete. */
static int collect(char **stored, const struct dw_config *cfg, int64_t start)
{
    json_t *wins = dw_evaluator_reference_windows(*stored);
    int complete = dw_evaluator_reference_add(wins, cfg->reference_windows, start);
    free(*stored);
    *stored = json_dumps(wins, JSON_COMPACT);
    json_decref(wins);
    return complete;
}

static void test_reference_across_restart(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg(); /* reference.windows = 3 */
    struct dw_model_cfg model;
    memset(&model, 0, sizeof(model));
    char name[] = "m";
    model.name = name;
    struct dw_agg *empty = dw_agg_new(&model, T0);
    struct dw_agg *full = dw_agg_new(&model, T0 + W);
    full->all.predictions = 5;
    /* an empty window does not join the reference; a window with predictions does */
    assert_false(dw_evaluator_reference_joins(empty));
    assert_true(dw_evaluator_reference_joins(full));
    dw_agg_free(empty);
    dw_agg_free(full);

    char *stored = NULL; /* nothing stored yet */
    assert_false(collect(&stored, &cfg, T0 + W));
    assert_string_equal(stored, "[1700000100000]");
    /* a restart: the next evaluator reads the stored form back and continues */
    char *after_restart = strdup(stored);
    assert_false(collect(&after_restart, &cfg, T0 + 3 * W));
    assert_string_equal(after_restart, "[1700000100000,1700000220000]");
    /* the third non-empty window completes it */
    assert_true(collect(&after_restart, &cfg, T0 + 4 * W));
    assert_string_equal(after_restart, "[1700000100000,1700000220000,1700000280000]");
    json_t *wins = dw_evaluator_reference_windows(after_restart);
    assert_int_equal(json_array_size(wins), 3);
    assert_int_equal(json_integer_value(json_array_get(wins, 2)), T0 + 4 * W);
    json_decref(wins);
    free(after_restart);
    free(stored);
    /* a stored form that is not a list starts over */
    char *garbage = strdup("{\"not\":\"a list\"}");
    assert_false(collect(&garbage, &cfg, T0));
    assert_string_equal(garbage, "[1700000040000]");
    free(garbage);
    /* reference.windows = 1: the first non-empty window completes it at once */
    cfg.reference_windows = 1;
    char *one = NULL;
    assert_true(collect(&one, &cfg, T0));
    free(one);
}

/* Redis Cluster: the clocks that count are the replicated ones (the safe copies a checkpoint
 * writes once WAIT saw a replica acknowledge the checkpoint before it). */
static void test_cluster_uses_replicated_clocks(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    cfg.redis_cluster = 1;
    struct dw_part_meta metas[2] = {live(T0 + 5 * W, T0 + 5 * W), live(T0 + 5 * W, T0 + 5 * W)};
    struct dw_watermarks w;
    int64_t pwm;
    /* partition 1 has no replicated checkpoint yet: it holds every window, as without state */
    metas[0].safe_present = 1;
    metas[0].safe_max_ts = T0 + 5 * W;
    metas[0].safe_max_label_ts = T0 + 5 * W;
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_NO_DATA);
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_true(w.wm == DW_NO_TS && w.label_wm == DW_NO_TS);
    /* its replicated clocks lag its written ones by two windows: they are the ones used */
    metas[1].safe_present = 1;
    metas[1].safe_max_ts = T0 + 3 * W;
    metas[1].safe_max_label_ts = T0 + 2 * W;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_true(w.wm == T0 + 3 * W - LATENESS);
    assert_true(w.label_wm == T0 + 2 * W);
    /* at its end since long ago, but that end is not replicated: still holding */
    metas[1].eof_ms = NOW - 2 * IDLE;
    metas[1].label_eof_ms = NOW - 2 * IDLE;
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_CLOCK);
    metas[1].safe_eof_ms = NOW - 2 * IDLE;
    assert_int_equal(dw_evaluator_part_hold(&metas[1], &cfg, 0, NOW, &pwm), DW_HOLD_IDLE);
    /* a single server (or Sentinel) keeps the written clocks */
    cfg.redis_cluster = 0;
    metas[1].eof_ms = 0;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_true(w.wm == T0 + 5 * W - LATENESS);
}

/* Redis Cluster: the replicated end-of-log mark is idle only as long as the current one agrees.
 * The safe copies stay where they were while no replica acknowledges (and a new owner writes
 * none until one does), so a partition active again (eof_ms 0) can carry an old replicated
 * mark: it holds by its clock, it is not idle. */
static void test_cluster_stale_replicated_eof_holds(void **state)
{
    (void)state;
    struct dw_config cfg = test_cfg();
    cfg.redis_cluster = 1;
    struct dw_part_meta m = live(T0 + 5 * W, T0 + 5 * W);
    m.safe_present = 1;
    m.safe_max_ts = T0 + 3 * W;
    m.safe_max_label_ts = T0 + 2 * W;
    m.safe_eof_ms = NOW - 120000; /* at its end two minutes ago, as a replica last saw it */
    m.safe_label_eof_ms = NOW - 120000;
    int64_t pwm;
    /* active now (eof_ms 0): it holds by its replicated clocks, both sides */
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 0, NOW, &pwm), DW_HOLD_CLOCK);
    assert_int_equal(pwm, T0 + 3 * W - LATENESS);
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 1, NOW, &pwm), DW_HOLD_CLOCK);
    assert_int_equal(pwm, T0 + 2 * W);
    /* the same on a single server, where the written clocks count */
    cfg.redis_cluster = 0;
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 0, NOW, &pwm), DW_HOLD_CLOCK);
    assert_int_equal(pwm, T0 + 5 * W - LATENESS);
    cfg.redis_cluster = 1;
    /* at its end again, but only since less than idle_timeout: still holding */
    m.eof_ms = NOW - IDLE + 1;
    m.label_eof_ms = NOW - IDLE + 1;
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 0, NOW, &pwm), DW_HOLD_CLOCK);
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 1, NOW, &pwm), DW_HOLD_CLOCK);
    /* only the labels side is active: the predictions side is idle, the labels side holds */
    m.eof_ms = NOW - 2 * IDLE;
    m.label_eof_ms = 0;
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 0, NOW, &pwm), DW_HOLD_IDLE);
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 1, NOW, &pwm), DW_HOLD_CLOCK);
    /* both marks past idle_timeout: idle */
    m.label_eof_ms = NOW - 2 * IDLE;
    assert_int_equal(dw_evaluator_part_hold(&m, &cfg, 1, NOW, &pwm), DW_HOLD_IDLE);
    /* the group: an active partition with a stale replicated mark keeps its windows open */
    struct dw_part_meta metas[2] = {live(T0 + 9 * W, T0 + 9 * W), m};
    metas[0].safe_present = 1;
    metas[0].safe_max_ts = T0 + 9 * W;
    metas[0].safe_max_label_ts = T0 + 9 * W;
    metas[1].eof_ms = 0;
    metas[1].label_eof_ms = 0;
    struct dw_watermarks w;
    dw_evaluator_watermarks(metas, 2, &cfg, NOW, &w);
    assert_int_equal(w.wm, T0 + 3 * W - LATENESS);
    assert_int_equal(w.label_wm, T0 + 2 * W);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_partition_stops_holding),
        cmocka_unit_test(test_all_idle_takes_largest_clock),
        cmocka_unit_test(test_dead_owner_and_quarantine_hold),
        cmocka_unit_test(test_windows_close_out_of_order),
        cmocka_unit_test(test_label_horizon),
        cmocka_unit_test(test_cursor_walk),
        cmocka_unit_test(test_final_never_passes_close),
        cmocka_unit_test(test_round_keeps_its_watermarks),
        cmocka_unit_test(test_trim_due),
        cmocka_unit_test(test_checkpoint_due),
        cmocka_unit_test(test_empty_run),
        cmocka_unit_test(test_rolling_first_window),
        cmocka_unit_test(test_records_before),
        cmocka_unit_test(test_reference_across_restart),
        cmocka_unit_test(test_cluster_uses_replicated_clocks),
        cmocka_unit_test(test_cluster_stale_replicated_eof_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
