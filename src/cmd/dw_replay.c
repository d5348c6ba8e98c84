/*
 * dw_replay.c - `driftwatch replay`: the pipeline of `run` over JSON-lines files, one window
 * report per line. The offline and backtesting mode ("would this config have paged us?").
 *
 * Why it is built this way:
 * - Same code as run: lines go through dw_decode (the config's field paths and validation),
 *   dw_part (join and window aggregates) and dw_eval_window (the report); only Kafka and
 *   Redis are left out. Nothing is late in a replay: the replay's copy of the config sets
 *   window.allowed_lateness, window.label_horizon and join.ttl to REPLAY_INFINITE_MS, and
 *   dw_part_maintain() is never called, so no window closes, retires or expires while reading.
 * - No bound on event time (input.max_future_skew and max_past_skew are switched off): run
 *   holds each event against its Kafka message timestamp, and a file line has none. Replay
 *   needs no protection either: nothing is late or expires in a replay, so a bad clock cannot
 *   harm the other events; it shows as one odd window, and the gap to it as one empty-run
 *   report. (A bound against the previous line's time would depend on the file's order and
 *   reject everything after a bad first line.)
 * - All predictions are processed first, then all labels, through one struct dw_part: every
 *   label finds its prediction whatever the files' order, and the first label in the labels
 *   file wins (later ones are duplicates), as docs/contract.md (section 2.2) defines.
 * - Windows are created before their first prediction with sketches exact up to
 *   DW_AGG_MERGE_EXACT values (what run's merged evaluation views keep), so quantile-based
 *   statistics are exact while a window fits, as in a notebook. Memory grows with the input
 *   (one join record per prediction, 8 bytes per numeric value): replay is for files, not
 *   for unbounded streams.
 * - The reference is --reference's profile, or else, like run with reference.windows = 1, the
 *   model's first non-empty window; that window is reported without a reference (run does
 *   not judge its reference windows either).
 * - The performance baseline is run's: the merged final counts of the first reference.windows
 *   windows with data (with or without --reference: a profile holds no labels), complete at
 *   once since every label is read first, and every report is judged against it by
 *   dw_baseline_judge(), the code run uses.
 * - Without -c the models come from the data (a first pass over the predictions), with the
 *   reference profile's types taking precedence. Unlike `profile`, whose training data is
 *   expected clean (one text value makes a column categorical, and a forced type names the
 *   bad line), production logs may hold a few malformed events: a feature is numeric when
 *   most of its values are JSON numbers, and the events that disagree count as wrong_type.
 * - Rolling performance (evaluation.rolling_windows) comes from the aggregates already in
 *   memory: each model keeps its last N windows (empty ones included, as run counts them),
 *   starting with its first reported window, and dw_eval_add_rolling() merges them.
 * - A run of empty windows between two windows with data is one report (dw_eval_empty_run),
 *   as in run, and the report loop jumps from one window with data to the next: its cost
 *   follows the windows with data, not the time they span.
 * - stdout carries only reports; bad lines are counted by reason and summarised on stderr.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_baseline.h"
#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_errstream.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/core/dw_trigger.h"
#include "driftwatch/io/dw_files.h"
#include "driftwatch/core/dw_part.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* "Infinite" lateness, label horizon and join TTL, milliseconds (some 73 million years): far
 * beyond any event time, yet small enough that time + it never overflows int64. */
#define REPLAY_INFINITE_MS (INT64_MAX / 4)
#define REPLAY_BAD_SHOWN 10      /* bad lines described on stderr (the rest are counted) */
#define REPLAY_CLEAN_EVERY 65536 /* lines between clearing dw_part's dirty lists */
#define REPLAY_EXTRA_MISSING_TS DW_BAD__COUNT /* reason index: no timestamp in the event */
#define REPLAY_N_REASONS (DW_BAD__COUNT + 1)

struct replay_opts {
    const char *predictions, *labels, *reference, *config, *output, *window, *alerts;
};

struct inferred {
    char *name;
    struct dw_files_tally tally;
    int all_numeric_pred; /* every prediction was a JSON number */
    int fractional_pred;  /* some prediction had a fractional part */
};

struct replayer {
    const struct replay_opts *o;
    struct dw_config cfg;
    json_t *ref_doc;
    struct dw_decoder *dec;
    struct dw_prediction *pev;
    struct dw_part *part;
    struct dw_ref **refs;          /* per model */
    int *ref_given;                /* per model: refs[i] came from --reference */
    FILE *alerts_out;              /* --alerts: notifications and triggers (backtest) */
    json_t **alert_state;          /* per model: the rules' instances (as in Redis) */
    struct dw_trigger_state *trig; /* per model: trigger guardrails */
    uint64_t notifications, triggers;
    uint64_t bad[REPLAY_N_REASONS];
    uint64_t bad_shown;
    uint64_t pred_lines, label_lines, duplicate_predictions, duplicate_labels;
    FILE *out;
};

static const char *reason_name(int r)
{
    if (r == REPLAY_EXTRA_MISSING_TS) {
        return "missing_timestamp";
    }
    return dw_bad_reason_name((enum dw_bad_reason)r);
}

static void count_bad(struct replayer *rp, int reason, struct dw_files *f, const char *msg)
{
    rp->bad[reason]++;
    if (rp->bad_shown++ < REPLAY_BAD_SHOWN) {
        fprintf(stderr, "driftwatch replay: %s:%llu: %s: %s\n", dw_files_path(f),
                (unsigned long long)dw_files_line_no(f), reason_name(reason), msg);
    }
}

/* ---- models from the data (no -c) ---- */

/* The entry of model `name`, or NULL. */
static struct inferred *inferred_find(struct inferred *arr, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(arr[i].name, name) == 0) {
            return &arr[i];
        }
    }
    return NULL;
}

static struct inferred *inferred_get(struct inferred **arr, size_t *n, const char *name)
{
    struct inferred *found = inferred_find(*arr, *n, name);
    if (found) {
        return found;
    }
    *arr = dw_realloc(*arr, (*n + 1) * sizeof(**arr));
    struct inferred *in = &(*arr)[(*n)++];
    memset(in, 0, sizeof(*in));
    in->name = dw_strdup(name);
    in->all_numeric_pred = 1;
    dw_files_tally_init(&in->tally);
    return in;
}

/* First pass over the predictions: models, feature names and value kinds. Bad lines are
 * skipped here and counted by the real pass. */
static int infer_pass(struct replayer *rp, struct inferred **arr, size_t *n, char *errstr,
                      size_t errstr_size)
{
    struct dw_files *f = dw_files_open(rp->o->predictions, errstr, errstr_size);
    if (!f) {
        return -1;
    }
    char *text;
    size_t len;
    int got;
    while ((got = dw_files_read_line(f, &text, &len, errstr, errstr_size)) > 0) {
        json_t *doc = json_loadb(text, len, 0, NULL);
        json_t *mv = doc ? dw_files_pointer(doc, rp->cfg.field_model) : NULL;
        if (!json_is_string(mv)) {
            json_decref(doc);
            continue;
        }
        struct inferred *in = inferred_get(arr, n, json_string_value(mv));
        json_t *pv = dw_files_pointer(doc, rp->cfg.field_prediction);
        if (json_is_number(pv)) {
            double x = json_number_value(pv);
            in->fractional_pred |= x != floor(x);
        } else if (pv) {
            in->all_numeric_pred = 0;
        }
        json_t *feats = dw_files_pointer(doc, rp->cfg.field_features);
        const char *key;
        json_t *v;
        json_object_foreach(feats, key, v)
        {
            size_t idx = dw_files_tally_index(&in->tally, key, strlen(key));
            dw_files_tally_add(&in->tally, idx, dw_files_json_kind(v));
        }
        json_decref(doc);
    }
    dw_files_close(f);
    return got < 0 ? -1 : 0;
}

/* The reference profile's type of a feature: 0 numeric, 1 categorical, -1 not in it. */
static int profile_type(json_t *ref_doc, const char *model, const char *feature)
{
    if (!ref_doc) {
        return -1;
    }
    const char *rm = json_string_value(json_object_get(ref_doc, "model"));
    if (!rm || strcmp(rm, model) != 0) {
        return -1;
    }
    json_t *f = json_object_get(json_object_get(ref_doc, "features"), feature);
    const char *t = json_string_value(json_object_get(f, "type"));
    if (!t) {
        return -1;
    }
    return strcmp(t, "categorical") == 0 ? 1 : 0;
}

static void add_feature(struct dw_model_cfg *m, const char *name, enum dw_feature_type type)
{
    for (size_t i = 0; i < m->n_features; i++) {
        if (strcmp(m->features[i].name, name) == 0) {
            return;
        }
    }
    m->features = dw_realloc(m->features, (m->n_features + 1) * sizeof(*m->features));
    m->features[m->n_features].name = dw_strdup(name);
    m->features[m->n_features].type = type;
    m->n_features++;
}

/*
 * The --reference profile against the models the predictions hold: its model must be one of
 * them (an error naming both otherwise), and each of its features must appear in the data (a
 * feature the model never sends would be judged missing in every window).
 */
static int profile_in_data(const struct replayer *rp, struct inferred *arr, size_t n,
                           const char *ref_model, char *errstr, size_t errstr_size)
{
    const struct inferred *in = inferred_find(arr, n, ref_model);
    if (!in) {
        struct dw_sbuf seen = {0};
        for (size_t i = 0; i < n; i++) {
            dw_sbuf_printf(&seen, "%s'%s'", i ? ", " : "", arr[i].name);
        }
        dw_err(errstr, errstr_size,
               "%s: a profile of model '%s', but the predictions in %s are of model %s",
               rp->o->reference, ref_model, rp->o->predictions, seen.s ? seen.s : "(none)");
        dw_sbuf_free(&seen);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(rp->ref_doc, "features"), key, v)
    {
        if (dw_files_tally_find(&in->tally, key, strlen(key)) < 0) {
            return dw_err(errstr, errstr_size,
                          "%s: feature '%s' of the profile never appears in the predictions of "
                          "model '%s' in %s",
                          rp->o->reference, key, ref_model, rp->o->predictions);
        }
    }
    return 0;
}

static int models_from_data(struct replayer *rp, char *errstr, size_t errstr_size)
{
    struct inferred *arr = NULL;
    size_t n = 0;
    int rc = infer_pass(rp, &arr, &n, errstr, errstr_size);
    const char *ref_model = json_string_value(json_object_get(rp->ref_doc, "model"));
    if (rc == 0 && ref_model) {
        rc = profile_in_data(rp, arr, n, ref_model, errstr, errstr_size);
    }
    rp->cfg.models = dw_calloc(n ? n : 1, sizeof(*rp->cfg.models));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct inferred *in = &arr[i];
        struct dw_model_cfg *m = &rp->cfg.models[rp->cfg.n_models++];
        m->name = dw_strdup(in->name);
        m->positive_class = dw_strdup("1");
        m->task = in->all_numeric_pred && in->fractional_pred ? DW_TASK_REGRESSION
                                                              : DW_TASK_CLASSIFICATION;
        for (size_t k = 0; k < in->tally.n; k++) {
            int pt = profile_type(rp->ref_doc, m->name, in->tally.names[k]);
            /* Production logs may hold bad events: numbers in the majority make a numeric
             * feature, and the other values are then counted as wrong_type, as run would. */
            int numeric = in->tally.texts[k] * 2 < in->tally.values[k] || in->tally.values[k] == 0;
            enum dw_feature_type t = pt >= 0   ? (enum dw_feature_type)pt
                                     : numeric ? DW_FEATURE_NUMERIC
                                               : DW_FEATURE_CATEGORICAL;
            add_feature(m, in->tally.names[k], t);
        }
        if (ref_model && strcmp(ref_model, m->name) == 0) {
            const char *key;
            json_t *v;
            json_object_foreach(json_object_get(rp->ref_doc, "features"), key, v)
            {
                add_feature(m, key, (enum dw_feature_type)profile_type(rp->ref_doc, m->name, key));
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(arr[i].name);
        dw_files_tally_free(&arr[i].tally);
    }
    free(arr);
    if (rc == 0 && rp->cfg.n_models == 0) {
        rc = dw_err(errstr, errstr_size, "%s: no prediction with a model (%s) found",
                    rp->o->predictions, rp->cfg.field_model);
    }
    return rc;
}

/* ---- the passes ---- */

/* One prediction line: decoded, placed in its (exact) window. */
static void on_prediction(struct replayer *rp, struct dw_files *f, const char *text, size_t len)
{
    char msg[512];
    int64_t L = rp->cfg.window_size_ms;
    enum dw_bad_reason bad =
        dw_decode_prediction(rp->dec, text, len, DW_NO_TS, rp->pev, msg, sizeof(msg));
    if (bad != DW_BAD_NONE) {
        count_bad(rp, (int)bad, f, msg);
        return;
    }
    if (rp->pev->ts_ms == DW_NO_TS) {
        count_bad(rp, REPLAY_EXTRA_MISSING_TS, f, "no timestamp (no Kafka time to fall back on)");
        return;
    }
    int64_t start = dw_floor_div(rp->pev->ts_ms, L) * L;
    if (!dw_part_window(rp->part, rp->pev->model, start)) {
        dw_part_adopt_window(rp->part, dw_agg_new_exact(rp->pev->model, start, DW_AGG_MERGE_EXACT));
    }
    enum dw_part_result res = dw_part_on_prediction(rp->part, rp->pev);
    if (res == DW_PART_DUPLICATE) {
        rp->duplicate_predictions++;
    } else if (res == DW_PART_REJECTED) {
        count_bad(rp, (int)rp->part->reject.reason, f, rp->part->reject.msg);
    }
    if (rp->part->join_rejected) { /* the label(s) parked for it, judged now */
        count_bad(rp, (int)rp->part->join_reject.reason, f, rp->part->join_reject.msg);
        rp->bad[rp->part->join_reject.reason] += rp->part->join_rejected - 1;
    }
}

/* One label line: joined with its prediction, without a time limit. */
static void on_label(struct replayer *rp, struct dw_files *f, const char *text, size_t len)
{
    char msg[512];
    struct dw_label lab;
    /* A label's own time only moves the label watermark, which decides nothing here. */
    enum dw_bad_reason bad = dw_decode_label(rp->dec, text, len, 0, &lab, msg, sizeof(msg));
    if (bad != DW_BAD_NONE) {
        count_bad(rp, (int)bad, f, msg);
        return;
    }
    enum dw_part_result res = dw_part_on_label(rp->part, &lab);
    if (res == DW_PART_DUPLICATE) {
        rp->duplicate_labels++;
    } else if (res == DW_PART_REJECTED) {
        count_bad(rp, (int)rp->part->reject.reason, f, rp->part->reject.msg);
    }
}

/* Feeds every non-blank line of path to on_line, counting the lines in *lines. */
static int read_events(struct replayer *rp, const char *path, uint64_t *lines,
                       void (*on_line)(struct replayer *, struct dw_files *, const char *, size_t),
                       char *errstr, size_t errstr_size)
{
    struct dw_files *f = dw_files_open(path, errstr, errstr_size);
    if (!f) {
        return -1;
    }
    char *text;
    size_t len;
    int got;
    while ((got = dw_files_read_line(f, &text, &len, errstr, errstr_size)) > 0) {
        if (strspn(text, " \t\r") == len) {
            continue;
        }
        (*lines)++;
        on_line(rp, f, text, len);
        dw_decoder_reset(rp->dec);
        if (*lines % REPLAY_CLEAN_EVERY == 0) {
            dw_part_checkpoint_done(rp->part); /* nothing is written: drop the dirty lists */
        }
    }
    dw_files_close(f);
    return got < 0 ? -1 : 0;
}

/* ---- reports ---- */

static int write_report(struct replayer *rp, json_t *report, char *errstr, size_t errstr_size)
{
    char *text = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int ok = text && fputs(text, rp->out) >= 0 && fputc('\n', rp->out) != EOF;
    free(text);
    return ok ? 0
              : dw_err(errstr, errstr_size, "%s: write failed",
                       rp->o->output ? rp->o->output : "stdout");
}

/* Writes {"<kind>": obj} as one line of the --alerts file. */
static int write_alert_line(struct replayer *rp, const char *kind, json_t *obj, char *errstr,
                            size_t errstr_size)
{
    json_t *line = json_pack("{s:O}", kind, obj);
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(line);
    int ok = text && fputs(text, rp->alerts_out) >= 0 && fputc('\n', rp->alerts_out) != EOF;
    free(text);
    return ok ? 0 : dw_err(errstr, errstr_size, "%s: write failed", rp->o->alerts);
}

/* One alert step of a model on a report, then the trigger decision, as `run` takes them. */
static int backtest_stage(struct replayer *rp, size_t mi, json_t *report, char *errstr,
                          size_t errstr_size)
{
    const struct dw_config *cfg = &rp->cfg;
    json_t *note = dw_rules_step(cfg->group, cfg->rules, cfg->n_rules, report, rp->alert_state[mi]);
    int rc = 0;
    if (note && json_array_size(json_object_get(note, "alerts")) > 0) {
        rp->notifications++;
        rc = write_alert_line(rp, "notification", note, errstr, errstr_size);
    }
    const char *why = NULL;
    json_t *reasons =
        dw_trigger_decide(cfg, report, json_object_get(note, "firing"), &rp->trig[mi], &why);
    if (reasons && rc == 0) {
        /* created_at = the window's end: a backtest's output depends on its input only */
        int64_t end =
            json_integer_value(json_object_get(report, "window_start_ms")) + cfg->window_size_ms;
        json_t *msg = dw_trigger_message(cfg->group, report, reasons, end);
        rp->triggers++;
        rc = write_alert_line(rp, "trigger", msg, errstr, errstr_size);
        json_decref(msg);
    }
    json_decref(reasons);
    json_decref(note);
    return rc;
}

/*
 * --alerts: every window's report is complete in a replay, so the rules of both stages read
 * it: first as the close report (final false), then as the final one.
 */
static int backtest(struct replayer *rp, size_t mi, json_t *report, char *errstr,
                    size_t errstr_size)
{
    if (!rp->alerts_out) {
        return 0;
    }
    json_t *at_close = json_copy(report);
    json_object_set_new(at_close, "final", json_false());
    int rc = backtest_stage(rp, mi, at_close, errstr, errstr_size);
    json_decref(at_close);
    return rc == 0 ? backtest_stage(rp, mi, report, errstr, errstr_size) : rc;
}

/* A model's latest windows, oldest first, for the rolling view. Empty windows have no
 * aggregate in dw_part: they are created for their report and owned here. */
struct recent {
    struct dw_agg **aggs;
    int *owned;
    size_t n, cap;
};

static void recent_push(struct recent *r, struct dw_agg *agg, int owned)
{
    if (r->n == r->cap) {
        if (r->owned[0]) {
            dw_agg_free(r->aggs[0]);
        }
        memmove(r->aggs, r->aggs + 1, (r->n - 1) * sizeof(*r->aggs));
        memmove(r->owned, r->owned + 1, (r->n - 1) * sizeof(*r->owned));
        r->n--;
    }
    r->aggs[r->n] = agg;
    r->owned[r->n] = owned;
    r->n++;
}

static void recent_free(struct recent *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->owned[i]) {
            dw_agg_free(r->aggs[i]);
        }
    }
    free(r->aggs);
    free(r->owned);
}

/* The first window of model m after `after` that holds data, or INT64_MAX. */
static int64_t next_with_data(const struct replayer *rp, const struct dw_model_cfg *m,
                              int64_t after)
{
    int64_t next = INT64_MAX;
    for (size_t w = 0; w < rp->part->n_wins; w++) {
        const struct dw_agg *agg = rp->part->wins[w];
        if (agg->model == m && agg->start_ms > after && agg->start_ms < next &&
            !dw_eval_agg_empty(agg)) {
            next = agg->start_ms;
        }
    }
    return next;
}

/*
 * The performance baseline of model m: the final counts of the windows run would take for its
 * reference, the first reference.windows windows with data (every label is read before any
 * report, so their counts are final at once), merged by the code run uses (dw_baseline).
 */
static void replay_baseline(const struct replayer *rp, const struct dw_model_cfg *m,
                            struct dw_baseline *bl)
{
    dw_baseline_init(bl, m);
    int64_t start = INT64_MIN;
    for (int64_t i = 0; i < rp->cfg.reference_windows; i++) {
        start = next_with_data(rp, m, start);
        if (start == INT64_MAX) {
            break;
        }
        dw_baseline_add(bl, dw_part_window(rp->part, m, start), rp->cfg.reference_windows);
    }
}

/*
 * Reports every model from its first to its last window with data, in window order (models in
 * configuration order at the same start). A run of empty windows between them is one report
 * (dw_eval_empty_run), as run writes it, so the loop jumps from window to window with data
 * and a bad clock in a file (a line stamped 1971) costs one report, not one per window.
 */
static int report_all(struct replayer *rp, uint64_t *n_reports, char *errstr, size_t errstr_size)
{
    const struct dw_config *cfg = &rp->cfg;
    int64_t L = cfg->window_size_ms;
    size_t nm = cfg->n_models;
    int64_t *next = dw_calloc(nm ? nm : 1, sizeof(*next)); /* next start to report */
    int64_t *hi = dw_calloc(nm ? nm : 1, sizeof(*hi));     /* last window with data */
    for (size_t mi = 0; mi < nm; mi++) {
        next[mi] = next_with_data(rp, &cfg->models[mi], INT64_MIN);
        hi[mi] = INT64_MIN;
        for (size_t w = 0; w < rp->part->n_wins; w++) {
            const struct dw_agg *agg = rp->part->wins[w];
            if (agg->model == &cfg->models[mi] && !dw_eval_agg_empty(agg)) {
                hi[mi] = DW_MAX(hi[mi], agg->start_ms);
            }
        }
    }
    size_t n_roll = cfg->rolling_windows > 0 ? (size_t)cfg->rolling_windows : 0;
    struct recent *recent = dw_calloc(nm ? nm : 1, sizeof(*recent));
    for (size_t mi = 0; mi < nm && n_roll > 0; mi++) {
        recent[mi].aggs = dw_calloc(n_roll, sizeof(*recent[mi].aggs));
        recent[mi].owned = dw_calloc(n_roll, sizeof(*recent[mi].owned));
        recent[mi].cap = n_roll;
    }
    /* Each model's error stream feeds the change detectors window after window, as in run. */
    struct dw_errstream *streams = dw_calloc(nm ? nm : 1, sizeof(*streams));
    struct dw_baseline *baselines = dw_calloc(nm ? nm : 1, sizeof(*baselines));
    for (size_t mi = 0; mi < nm; mi++) {
        dw_errstream_init(&streams[mi]);
        replay_baseline(rp, &cfg->models[mi], &baselines[mi]);
    }
    int rc = 0;
    for (;;) {
        int64_t start = INT64_MAX;
        for (size_t mi = 0; mi < nm; mi++) {
            if (next[mi] <= hi[mi]) {
                start = DW_MIN(start, next[mi]);
            }
        }
        if (rc != 0 || start == INT64_MAX) {
            break;
        }
        for (size_t mi = 0; rc == 0 && mi < nm; mi++) {
            if (next[mi] != start || start > hi[mi]) {
                continue;
            }
            const struct dw_model_cfg *m = &cfg->models[mi];
            struct dw_agg *agg = dw_part_window(rp->part, m, start);
            int64_t n_empty = 0; /* > 0: a run of empty windows up to the next with data */
            if (!agg || dw_eval_agg_empty(agg)) {
                n_empty = (next_with_data(rp, m, start) - start) / L;
                agg = NULL;
            }
            next[mi] = start + DW_MAX(n_empty, 1) * L;
            struct dw_agg *empty = agg ? NULL : dw_agg_new(m, start);
            const struct dw_ref *ref = rp->refs[mi];
            if (!ref && agg) {
                /* The first non-empty window becomes the reference; it is not judged. */
                rp->refs[mi] = dw_ref_build(m, &agg, 1, cfg->psi_bins);
            }
            json_t *report = dw_eval_window(cfg, m, agg ? agg : empty, ref, 1);
            if (empty) {
                dw_eval_empty_run(report, cfg, n_empty);
                dw_agg_free(empty);
            }
            if (n_roll > 0) {
                /* the rolling view as of the report's last window: a run pushes its empties */
                int64_t k0 = n_empty > (int64_t)n_roll ? n_empty - (int64_t)n_roll : 0;
                for (int64_t k = k0; k < n_empty; k++) {
                    recent_push(&recent[mi], dw_agg_new(m, start + k * L), 1);
                }
                if (agg) {
                    recent_push(&recent[mi], agg, 0);
                }
                dw_eval_add_rolling(report, cfg, m, recent[mi].aggs, recent[mi].n);
            }
            dw_baseline_judge(report, cfg, m, &baselines[mi], 0);
            dw_baseline_judge_outputs(report, cfg, m, &baselines[mi], agg, ref);
            json_object_set_new(report, "change_detectors",
                                dw_errstream_feed_report(&streams[mi], m, report));
            rc = backtest(rp, mi, report, errstr, errstr_size);
            rc = rc == 0 ? write_report(rp, report, errstr, errstr_size) : rc;
            json_decref(report);
            (*n_reports)++;
        }
    }
    for (size_t mi = 0; mi < nm; mi++) {
        recent_free(&recent[mi]);
        dw_errstream_free(&streams[mi]);
        dw_baseline_free(&baselines[mi]);
    }
    free(streams);
    free(baselines);
    free(recent);
    free(next);
    free(hi);
    return rc;
}

/* ---- setup ---- */

static int load_reference(struct replayer *rp, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    rp->ref_doc = json_load_file(rp->o->reference, 0, &jerr);
    if (!rp->ref_doc && jerr.line < 1) {
        return dw_err(errstr, errstr_size, "%s", jerr.text); /* names the file */
    }
    if (!rp->ref_doc) {
        return dw_err(errstr, errstr_size, "%s:%d: column %d: %s", rp->o->reference, jerr.line,
                      jerr.column, jerr.text);
    }
    if (!json_is_string(json_object_get(rp->ref_doc, "model")) ||
        !json_is_object(json_object_get(rp->ref_doc, "features"))) {
        return dw_err(errstr, errstr_size, "%s: not a profile (no \"model\" or \"features\")",
                      rp->o->reference);
    }
    return 0;
}

static int attach_reference(struct replayer *rp, char *errstr, size_t errstr_size)
{
    if (!rp->ref_doc) {
        return 0;
    }
    const char *name = json_string_value(json_object_get(rp->ref_doc, "model"));
    const struct dw_model_cfg *m = dw_config_model(&rp->cfg, name, strlen(name));
    if (!m) {
        return dw_err(errstr, errstr_size, "%s: model '%s' is not in the configuration",
                      rp->o->reference, name);
    }
    size_t mi = (size_t)(m - rp->cfg.models);
    char err[512];
    if (dw_ref_profile_matches(m, rp->ref_doc, err, sizeof(err)) != 0) {
        return dw_err(errstr, errstr_size, "%s: %s", rp->o->reference, err);
    }
    rp->refs[mi] = dw_ref_from_json(m, rp->ref_doc, err, sizeof(err));
    if (!rp->refs[mi]) {
        return dw_err(errstr, errstr_size, "%s: %s", rp->o->reference, err);
    }
    rp->ref_given[mi] = 1;
    return 0;
}

static void replay_usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch replay --predictions FILE [--labels FILE]\n"
            "                         [--reference PROFILE.json] [-c CONFIG] [--window SECONDS]\n\n"
            "Runs run's aggregation and evaluation over JSON-lines files (plain or .gz), without\n"
            "Kafka or Redis, and prints one JSON report per (model, window), in window order,\n"
            "from the first to the last non-empty window; a run of empty windows between\n"
            "them is one report (predictions 0, empty_windows N, window_end the run's end).\n"
            "Nothing is late in a replay; labels join without a time limit and the first\n"
            "label wins. Event times are not bounded (input.max_future_skew and\n"
            "max_past_skew need a Kafka timestamp).\n\n"
            "  -p, --predictions FILE  prediction events, one JSON object per line\n"
            "  -l, --labels FILE       label events, one JSON object per line\n"
            "  -r, --reference FILE    reference profile (driftwatch profile); default: each\n"
            "                          model's first non-empty window\n"
            "  -c, --config FILE       models, field paths, detectors (default: inferred from\n"
            "                          the data and the reference)\n"
            "  -w, --window SECONDS    window length (a duration: 60, 30s, 5m; default the\n"
            "                          config's window.size, 60s)\n"
            "  -o, --output FILE       write the reports there instead of stdout\n"
            "  -a, --alerts FILE       backtest: run the config's alert rules and trigger\n"
            "                          guardrails over the windows and write each\n"
            "                          {\"notification\": ...} and {\"trigger\": ...} there\n"
            "  -h, --help              this help\n"
            "      --version           print the version\n\n"
            "Bad lines are counted by reason; the summary is one JSON line on stderr.\n");
}

/* --alerts: the output file and each model's fresh alert and trigger state. */
static int open_alerts(struct replayer *rp, char *errstr, size_t errstr_size)
{
    if (!(rp->alerts_out = fopen(rp->o->alerts, "w"))) {
        return dw_err(errstr, errstr_size, "%s: cannot open for writing", rp->o->alerts);
    }
    if (!rp->cfg.rules) { /* no config file: the built-in rules */
        rp->cfg.rules = dw_rules_defaults(&rp->cfg.n_rules);
    }
    size_t n = rp->cfg.n_models ? rp->cfg.n_models : 1;
    rp->alert_state = dw_calloc(n, sizeof(*rp->alert_state));
    rp->trig = dw_calloc(n, sizeof(*rp->trig));
    for (size_t i = 0; i < rp->cfg.n_models; i++) {
        rp->alert_state[i] = json_object();
        dw_trigger_state_load(&rp->trig[i], NULL, NULL, 0); /* no text: cannot fail */
    }
    return 0;
}

static void replayer_free(struct replayer *rp)
{
    for (size_t i = 0; rp->refs && i < rp->cfg.n_models; i++) {
        dw_ref_free(rp->refs[i]);
    }
    free(rp->refs);
    free(rp->ref_given);
    for (size_t i = 0; rp->alert_state && i < rp->cfg.n_models; i++) {
        json_decref(rp->alert_state[i]);
    }
    free(rp->alert_state);
    free(rp->trig);
    dw_part_free(rp->part);
    free(rp->pev);
    dw_decoder_destroy(rp->dec);
    json_decref(rp->ref_doc);
    dw_config_free(&rp->cfg);
}

static void summary(struct replayer *rp, uint64_t n_reports)
{
    json_t *bad = json_object();
    for (int r = 0; r < REPLAY_N_REASONS; r++) {
        if (r != DW_BAD_NONE && rp->bad[r] > 0) {
            json_object_set_new(bad, reason_name(r), json_integer((json_int_t)rp->bad[r]));
        }
    }
    uint64_t unmatched = 0;
    for (size_t i = 0; i < rp->part->join.n_used; i++) {
        unmatched += (uint64_t)(rp->part->join.pool[i].state == DW_JOIN_LABEL);
    }
    json_t *s = json_pack(
        "{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}}", "replay", "prediction_lines",
        (json_int_t)rp->pred_lines, "predictions", (json_int_t)rp->part->ctr.predictions,
        "duplicate_predictions", (json_int_t)rp->duplicate_predictions, "label_lines",
        (json_int_t)rp->label_lines, "duplicate_labels", (json_int_t)rp->duplicate_labels,
        "unmatched_labels", (json_int_t)unmatched, "reports", (json_int_t)n_reports, "bad", bad);
    if (rp->alerts_out) {
        json_t *r = json_object_get(s, "replay");
        json_object_set_new(r, "notifications", json_integer((json_int_t)rp->notifications));
        json_object_set_new(r, "triggers", json_integer((json_int_t)rp->triggers));
    }
    char *text = json_dumps(s, JSON_COMPACT);
    if (text) {
        fprintf(stderr, "%s\n", text);
    }
    free(text);
    json_decref(s);
}

/* @returns 0, -1 (runtime failure) or -2 (usage / configuration error). */
static int replay(const struct replay_opts *o, char *errstr, size_t errstr_size)
{
    struct replayer rp;
    memset(&rp, 0, sizeof(rp));
    rp.o = o;
    rp.out = stdout;
    int rc = -2;
    uint64_t n_reports = 0;
    if (o->config) {
        if (dw_config_load(&rp.cfg, o->config, errstr, errstr_size) != 0) {
            goto err;
        }
    } else {
        dw_config_defaults(&rp.cfg);
    }
    if (o->window) {
        int64_t ms;
        if (dw_duration_parse(o->window, &ms) != 0 || ms <= 0) {
            dw_err(errstr, errstr_size, "--window: '%s' is not a positive duration", o->window);
            goto err;
        }
        rp.cfg.window_size_ms = ms;
    }
    rp.cfg.allowed_lateness_ms = REPLAY_INFINITE_MS;
    rp.cfg.label_horizon_ms = REPLAY_INFINITE_MS;
    rp.cfg.join_ttl_ms = REPLAY_INFINITE_MS;
    /* No clock to bound event time against: file lines have no Kafka timestamp (see the
     * design comment). */
    rp.cfg.max_future_skew_ms = 0;
    rp.cfg.max_past_skew_ms = 0;
    if (o->reference && load_reference(&rp, errstr, errstr_size) != 0) {
        goto err;
    }
    if (!o->config && models_from_data(&rp, errstr, errstr_size) != 0) {
        rc = -1;
        goto err;
    }
    rp.refs = dw_calloc(rp.cfg.n_models ? rp.cfg.n_models : 1, sizeof(*rp.refs));
    rp.ref_given = dw_calloc(rp.cfg.n_models ? rp.cfg.n_models : 1, sizeof(*rp.ref_given));
    if (attach_reference(&rp, errstr, errstr_size) != 0) {
        goto err;
    }
    if (!(rp.dec = dw_decoder_new(&rp.cfg, errstr, errstr_size))) {
        goto err;
    }
    rp.pev = dw_prediction_new(rp.dec);
    rp.part = dw_part_new(&rp.cfg, 0);
    rc = -1;
    if (o->output && !(rp.out = fopen(o->output, "w"))) {
        rp.out = stdout;
        dw_err(errstr, errstr_size, "%s: cannot open for writing", o->output);
        goto err;
    }
    if (o->alerts && open_alerts(&rp, errstr, errstr_size) != 0) {
        goto err;
    }
    if (read_events(&rp, o->predictions, &rp.pred_lines, on_prediction, errstr, errstr_size) != 0) {
        goto err;
    }
    if (o->labels &&
        read_events(&rp, o->labels, &rp.label_lines, on_label, errstr, errstr_size) != 0) {
        goto err;
    }
    if (report_all(&rp, &n_reports, errstr, errstr_size) != 0) {
        goto err;
    }
    if (fflush(rp.out) != 0) {
        dw_err(errstr, errstr_size, "%s: write failed", o->output ? o->output : "stdout");
        goto err;
    }
    summary(&rp, n_reports);
    rc = 0;
err:
    if (rp.out != stdout && fclose(rp.out) != 0 && rc == 0) {
        rc = dw_err(errstr, errstr_size, "%s: write failed", o->output);
    }
    if (rp.alerts_out && fclose(rp.alerts_out) != 0 && rc == 0) {
        rc = dw_err(errstr, errstr_size, "%s: write failed", o->alerts);
    }
    replayer_free(&rp);
    return rc;
}

int dw_cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"predictions", required_argument, NULL, 'p'}, {"labels", required_argument, NULL, 'l'},
        {"reference", required_argument, NULL, 'r'},   {"config", required_argument, NULL, 'c'},
        {"window", required_argument, NULL, 'w'},      {"output", required_argument, NULL, 'o'},
        {"alerts", required_argument, NULL, 'a'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},           {NULL, 0, NULL, 0},
    };
    struct replay_opts o;
    memset(&o, 0, sizeof(o));
    int c;
    optind = 0; /* glibc: 0 fully re-initialises getopt (tests call us repeatedly) */
    while ((c = getopt_long(argc, argv, "p:l:r:c:w:o:a:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o.predictions = optarg;
            break;
        case 'l':
            o.labels = optarg;
            break;
        case 'r':
            o.reference = optarg;
            break;
        case 'c':
            o.config = optarg;
            break;
        case 'w':
            o.window = optarg;
            break;
        case 'o':
            o.output = optarg;
            break;
        case 'a':
            o.alerts = optarg;
            break;
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, replay_usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "driftwatch replay: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o.predictions) {
        fprintf(stderr, "driftwatch replay: --predictions is required\n");
        replay_usage(stderr);
        return 2;
    }
    char errstr[1024];
    int rc = replay(&o, errstr, sizeof(errstr));
    if (rc != 0) {
        fprintf(stderr, "driftwatch replay: %s\n", errstr);
        return rc == -2 ? 2 : 1;
    }
    return 0;
}
