/*
 * dw_replay.c - `driftwatch replay`: the pipeline of `run` over JSON-lines files, one window
 * report per line. The offline and backtesting mode ("would this config have paged us?").
 *
 * Why it is built this way:
 * - Same code as run: lines go through dw_decode (the config's field paths and validation),
 *   dw_part (join, window aggregates, watermarks, lateness, label horizon, join TTL, early
 *   labels parked, duplicates), dw_evaluator (which windows are closed and final, the cursor
 *   walk, the rolling view, reference collection) and dw_eval_window / dw_baseline /
 *   dw_errstream (the report); only Kafka and Redis are left out, and every setting that
 *   shapes a report is the config's.
 * - Arrival is simulated: the events of both files are processed in one order, each file in
 *   its own order, merged by event time (a prediction's timestamp, a label's timestamp; a
 *   prediction first on a tie). That is what run reads when both topics are produced in event
 *   time order, as `driftwatch gen` writes them and real services roughly do: a prediction out
 *   of order in its file is late as it would be in its partition, a label stamped before its
 *   prediction is parked. A label without a timestamp arrives with the event before it (run
 *   would use its Kafka timestamp); a prediction without one is counted as missing_timestamp.
 * - After every event the evaluator runs as on run's evaluation tick: when the prediction clock
 *   passed a window's end + window.allowed_lateness it gets its close-stage report, when both
 *   clocks passed its end + window.label_horizon its final one, cursor by cursor, close before
 *   final for each model, models in configuration order. At the end of the files time passes:
 *   every window up to the end of the last one holding a prediction gets both reports (the
 *   labels at the end of their log, as run sees them once consumed).
 * - One partition: the files carry no partition, so replay is run with one partition holding
 *   all the traffic (others idle). window.idle_timeout therefore changes nothing here, and with
 *   several partitions run decides lateness per partition, so an event within a few events of
 *   its window's limit may be judged otherwise (docs/operations.md, "Backtesting a config").
 * - Windows are created exact up to DW_AGG_MERGE_EXACT values (run's merged evaluation views),
 *   so quantile-based statistics are exact while a window fits, as in a notebook; run's
 *   partitions sketch beyond DW_AGG_SKETCH_EXACT values per window and partition. Memory grows
 *   with the windows open and the join records (as in run); closed windows drop their
 *   sketches, and retired ones are freed once no reader needs them.
 * - No bound on event time (input.max_future_skew and max_past_skew are switched off): run
 *   holds each event against its Kafka message timestamp, and a file line has none. A line
 *   with a bad clock in the past is late for its window; one in the future moves the clock
 *   (as in run without the bounds).
 * - The reference is chosen as run chooses it (reference_for(), the one place): --reference's
 *   profile stands for one stored by `driftwatch reference set`; else the model's
 *   reference.source: reference.profile, the windows before each window (trailing: their close
 *   aggregates kept in memory as run keeps trailagg keys), or the first reference.windows
 *   windows with predictions, merged at their close and not judged themselves. Without -c,
 *   reference.windows is 1.
 * - The performance baseline is run's (judge_baseline(), as run's baseline_for()): a profile's
 *   labelled outcomes, the trailing windows' counts, or the reference windows' final counts,
 *   each merged at its final evaluation; judged by dw_baseline_judge(), the code run uses.
 * - Without -c the models come from the data (a first pass over the predictions), with the
 *   reference profile's types taking precedence. Unlike `profile`, whose training data is
 *   expected clean (one text value makes a column categorical, and a forced type names the
 *   bad line), production logs may hold a few malformed events: a feature is numeric when
 *   most of its values are JSON numbers, and the events that disagree count as wrong_type.
 * - A run of empty windows is one report, as in run; the length is found by jumping to the
 *   next window with data, so a bad clock in a file costs one report, not one per window.
 * - stdout carries only reports; bad lines are counted by reason and summarised on stderr with
 *   what no report shows (events late or expired outside any window, models left without a
 *   reference and so without final reports).
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
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
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/core/dw_trigger.h"
#include "driftwatch/io/dw_files.h"
#include "driftwatch/core/dw_part.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define REPLAY_BAD_SHOWN 10      /* bad lines described on stderr (the rest are counted) */
#define REPLAY_CLEAN_EVERY 65536 /* events between maintenance runs (expiry, dirty lists) */
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

/* An input file read in arrival order: its next event, decoded, waits at the head. */
struct stream {
    struct dw_files *f; /* NULL: no such file */
    struct dw_decoder *dec;
    int is_pred;
    int has;       /* an event waits at the head */
    int64_t ts_ms; /* its event time: its place in the arrival order */
    uint64_t lines;
    struct dw_prediction *pev; /* the head of the predictions */
    struct dw_label lab;       /* the head of the labels */
};

/* reference.per_version: a version's own reference, collected (run's vref keys). */
struct version_ref {
    char *version;
    json_t *wins;          /* the windows collected */
    struct dw_agg *merged; /* their views merged, until the reference is built */
    struct dw_ref *ref;
};

/* What run keeps in Redis for a model's evaluation, kept in memory here. */
struct model_eval {
    struct dw_model_cfg counts_only; /* the model without features: counts-only views */
    json_t *refwins;                 /* the first reference.windows windows with predictions */
    struct dw_agg **refaggs;         /* their merged aggregates, while the reference is built */
    size_t n_refaggs;
    struct dw_baseline bl;
    struct dw_agg **trail; /* source trailing: the close aggregates of the last windows with
                            * predictions, oldest first (run's trailagg keys) */
    size_t n_trail;
    struct dw_errstream es;
    int64_t cursor[2]; /* per stage (0 close, 1 final): the next window to evaluate */
    int found[2];      /* the cursor exists */
    int64_t rolling_first;
    int rolling_found;
    json_t *closes; /* window start (text) -> its close report, until its final one */
    /* models.<m>.canary: per stage (0 close, 1 final), the records of the last canary.windows
     * windows with data, oldest first (run's canary:<model>:<start>:<stage> keys) */
    struct dw_canary_window *canary[2];
    size_t n_canary[2];
    struct version_ref *vrefs; /* reference.per_version */
    size_t n_vrefs;
};

struct replayer {
    const struct replay_opts *o;
    struct dw_config cfg;
    json_t *ref_doc;
    struct stream in[2]; /* predictions, labels */
    int64_t now_ms;      /* event time of the last event processed (DW_NO_TS: none yet) */
    uint64_t events;
    struct dw_part *part;
    struct dw_ref **refs;  /* per model */
    int *ref_given;        /* per model: refs[i] came from --reference */
    struct model_eval *me; /* per model */
    struct dw_agg **kept;  /* retired windows' records, while a reader needs them */
    size_t n_kept, cap_kept;
    int64_t until[2];              /* what was closed / final at the last evaluation */
    uint64_t reports[2];           /* close and final reports written */
    FILE *alerts_out;              /* --alerts: notifications and triggers (backtest) */
    json_t **alert_state;          /* per model: the rules' instances (as in Redis) */
    struct dw_trigger_state *trig; /* per model: trigger guardrails */
    uint64_t notifications, triggers;
    uint64_t bad[REPLAY_N_REASONS];
    uint64_t bad_shown;
    uint64_t duplicate_predictions, duplicate_labels;
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
        m->reference = (struct dw_ref_cfg){rp->cfg.reference_source, rp->cfg.reference_windows,
                                           dw_strdup(""), 0};
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

/* ---- arrival: both files in one order ---- */

/* The time a label without a timestamp takes: that of the event before it in arrival order. */
static int64_t label_now(const struct replayer *rp)
{
    if (rp->now_ms != DW_NO_TS) {
        return rp->now_ms;
    }
    return rp->in[0].has ? rp->in[0].ts_ms : 0;
}

/* Decodes line `text` of s into its head. @returns 1 when it holds an event, 0 when the line
 * was bad (counted). */
static int decode_head(struct replayer *rp, struct stream *s, const char *text, size_t len)
{
    char msg[512];
    enum dw_bad_reason bad;
    if (s->is_pred) {
        bad = dw_decode_prediction(s->dec, text, len, DW_NO_TS, s->pev, msg, sizeof(msg));
        s->ts_ms = s->pev->ts_ms;
    } else {
        bad = dw_decode_label(s->dec, text, len, label_now(rp), &s->lab, msg, sizeof(msg));
        s->ts_ms = s->lab.ts_ms;
    }
    if (bad != DW_BAD_NONE) {
        count_bad(rp, (int)bad, s->f, msg);
        return 0;
    }
    if (s->ts_ms == DW_NO_TS) {
        count_bad(rp, REPLAY_EXTRA_MISSING_TS, s->f,
                  "no timestamp (no Kafka time to fall back on)");
        return 0;
    }
    return 1;
}

/* Reads the next event of s into its head (s->has is 0 at the end of the file): blank lines
 * are skipped, bad ones counted. @returns 0, or -1 on a read error. */
static int stream_next(struct replayer *rp, struct stream *s, char *errstr, size_t errstr_size)
{
    char *text;
    size_t len;
    int got;
    s->has = 0;
    if (!s->f) {
        return 0;
    }
    while ((got = dw_files_read_line(s->f, &text, &len, errstr, errstr_size)) > 0) {
        if (strspn(text, " \t\r") == len) {
            continue;
        }
        s->lines++;
        dw_decoder_reset(s->dec);
        if (decode_head(rp, s, text, len)) {
            s->has = 1;
            return 0;
        }
    }
    if (!s->is_pred && got == 0) {
        rp->part->labels_at_end = 1; /* as run's labels partition at the end of its log */
    }
    return got < 0 ? -1 : 0;
}

/* The prediction at the head of its file: placed in its window (created exact while open). */
static void on_prediction(struct replayer *rp, struct stream *s)
{
    const struct dw_prediction *ev = s->pev;
    int64_t L = rp->cfg.window_size_ms;
    int64_t start = dw_floor_div(ev->ts_ms, L) * L;
    int64_t wm = dw_part_watermark(rp->part);
    int closed = wm != DW_NO_TS && start + L <= wm; /* late: dw_part counts it, no window */
    if (!closed && !dw_part_window(rp->part, ev->model, start)) {
        dw_part_adopt_window(rp->part, dw_agg_new_exact(ev->model, start, DW_AGG_MERGE_EXACT));
    }
    enum dw_part_result res = dw_part_on_prediction(rp->part, ev);
    if (res == DW_PART_DUPLICATE) {
        rp->duplicate_predictions++;
    } else if (res == DW_PART_REJECTED) {
        count_bad(rp, (int)rp->part->reject.reason, s->f, rp->part->reject.msg);
    }
    if (rp->part->join_rejected) { /* the label(s) parked for it, judged now */
        count_bad(rp, (int)rp->part->join_reject.reason, s->f, rp->part->join_reject.msg);
        rp->bad[rp->part->join_reject.reason] += rp->part->join_rejected - 1;
    }
}

/* The label at the head of its file: joined with its prediction under run's time limits. */
static void on_label(struct replayer *rp, struct stream *s)
{
    enum dw_part_result res = dw_part_on_label(rp->part, &s->lab);
    if (res == DW_PART_DUPLICATE) {
        rp->duplicate_labels++;
    } else if (res == DW_PART_REJECTED) {
        count_bad(rp, (int)rp->part->reject.reason, s->f, rp->part->reject.msg);
    }
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

/* --alerts: one alert step of a model on a report (either stage), then the trigger decision,
 * as `run` takes them. */
static int backtest(struct replayer *rp, size_t mi, json_t *report, char *errstr,
                    size_t errstr_size)
{
    const struct dw_config *cfg = &rp->cfg;
    if (!rp->alerts_out) {
        return 0;
    }
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

/* ---- the evaluator: run's decisions over the windows in memory ---- */

/* The stored record of window `start` of model m, as run reads it from Redis: the window in
 * memory, or retired (kept until no reader needs it). NULL when it never held an event. */
static struct dw_agg *record(struct replayer *rp, const struct dw_model_cfg *m, int64_t start)
{
    struct dw_agg *agg = dw_part_window(rp->part, m, start);
    for (size_t i = 0; !agg && i < rp->n_kept; i++) {
        if (rp->kept[i]->model == m && rp->kept[i]->start_ms == start) {
            agg = rp->kept[i];
        }
    }
    return agg;
}

/* Window `start` of model m merged into a new aggregate of model `view` (m, or its counts-only
 * copy), as run's dw_redis_load_window() merges the partitions' records. */
static struct dw_agg *window_view(struct replayer *rp, const struct dw_model_cfg *view,
                                  const struct dw_model_cfg *m, int64_t start)
{
    struct dw_agg *merged = dw_agg_new_exact(view, start, DW_AGG_MERGE_EXACT);
    const struct dw_agg *agg = record(rp, m, start);
    if (agg) {
        dw_agg_merge(merged, agg);
    }
    return merged;
}

/*
 * Length in windows of the run of empty windows from `start` up to the next window of m
 * holding something, or `until`: what dw_evaluator_empty_run() measures by reading the windows
 * one by one, found here by jumping to the next record, so that a bad clock in a file (a line
 * stamped 1971) costs one report, not one step per window.
 */
static int64_t empty_run_length(struct replayer *rp, const struct dw_model_cfg *m, int64_t start,
                                int64_t until)
{
    int64_t next = until;
    for (size_t i = 0; i < rp->part->n_wins + rp->n_kept; i++) {
        const struct dw_agg *agg =
            i < rp->part->n_wins ? rp->part->wins[i] : rp->kept[i - rp->part->n_wins];
        if (agg->model == m && agg->start_ms > start && agg->start_ms < next &&
            !dw_eval_agg_empty(agg)) {
            next = agg->start_ms;
        }
    }
    return DW_MAX((next - start) / rp->cfg.window_size_ms, 1);
}

/*
 * Source trailing, at the close of window `start` (merged aggregate agg): the reference built
 * from the kept close aggregates of the reference.windows windows before it (NULL: none; the
 * caller frees it), and this window's aggregate kept for the windows after it, as run's
 * reference_trailing() keeps trailagg keys.
 */
static struct dw_ref *reference_trailing(struct replayer *rp, size_t mi, int64_t start,
                                         const struct dw_agg *agg)
{
    struct model_eval *me = &rp->me[mi];
    const struct dw_model_cfg *m = &rp->cfg.models[mi];
    int64_t span = m->reference.windows * rp->cfg.window_size_ms;
    struct dw_agg **in = dw_calloc(me->n_trail + 1, sizeof(*in));
    size_t n = 0, kept = 0;
    for (size_t i = 0; i < me->n_trail; i++) {
        int64_t ws = me->trail[i]->start_ms;
        if (ws >= start - span && ws < start) {
            in[n++] = me->trail[i];
        }
    }
    struct dw_ref *ref = n ? dw_ref_build(m, in, n, rp->cfg.psi_bins) : NULL;
    if (ref) {
        ref->source = DW_REF_SOURCE_TRAILING;
        ref->created_ms = dw_now_ms();
    }
    free(in);
    for (size_t i = 0; i < me->n_trail; i++) { /* what no later window needs goes */
        if (me->trail[i]->start_ms >= start + rp->cfg.window_size_ms - span) {
            me->trail[kept++] = me->trail[i];
        } else {
            dw_agg_free(me->trail[i]);
        }
    }
    me->n_trail = kept;
    if (dw_evaluator_reference_joins(agg)) {
        me->trail = dw_realloc(me->trail, (me->n_trail + 1) * sizeof(*me->trail));
        me->trail[me->n_trail] = dw_agg_new_exact(m, start, DW_AGG_MERGE_EXACT);
        dw_agg_merge(me->trail[me->n_trail++], agg);
    }
    return ref;
}

/*
 * The reference model mi's report of window `start` (merged aggregate agg) at a stage is judged
 * against, as run's reference_for() decides it, and whether the caller frees it (*owned): the
 * --reference profile (as `driftwatch reference set` would store it), else by the model's
 * source: reference.profile (read at setup); the windows before `start` (trailing; at the close
 * only: a final report takes its close report's); or the reference built from the first
 * reference.windows windows with predictions once the last of them closed (NULL before; those
 * windows are not judged themselves, and their final counts are the baseline's,
 * baseline_merge).
 */
static const struct dw_ref *reference_for(struct replayer *rp, size_t mi, int64_t start,
                                          const struct dw_agg *agg, int final, int *owned)
{
    const struct dw_model_cfg *m = &rp->cfg.models[mi];
    *owned = 0;
    if (final || rp->ref_given[mi] || m->reference.source == DW_REF_SOURCE_PROFILE) {
        return rp->refs[mi];
    }
    if (m->reference.source == DW_REF_SOURCE_TRAILING) {
        *owned = 1;
        return reference_trailing(rp, mi, start, agg);
    }
    struct model_eval *me = &rp->me[mi];
    int collecting = (int64_t)json_array_size(me->refwins) < m->reference.windows;
    if (!collecting || !dw_evaluator_reference_joins(agg)) {
        return rp->refs[mi];
    }
    int complete = dw_evaluator_reference_add(me->refwins, m->reference.windows, start);
    me->refaggs = dw_realloc(me->refaggs, (me->n_refaggs + 1) * sizeof(*me->refaggs));
    me->refaggs[me->n_refaggs++] = window_view(rp, m, m, start);
    if (complete) {
        rp->refs[mi] = dw_ref_build(m, me->refaggs, me->n_refaggs, rp->cfg.psi_bins);
        rp->refs[mi]->created_ms = dw_now_ms();
        for (size_t i = 0; i < me->n_refaggs; i++) {
            dw_agg_free(me->refaggs[i]);
        }
        me->n_refaggs = 0;
    }
    return NULL;
}

/* At the final evaluation of window `start` (agg: its final counts): merged into the
 * performance baseline when it is one of the reference windows, as run's baseline_step(). */
static void baseline_merge(struct replayer *rp, size_t mi, int64_t start, const struct dw_agg *agg)
{
    struct model_eval *me = &rp->me[mi];
    size_t i;
    json_t *v;
    json_array_foreach(me->refwins, i, v)
    {
        if (json_integer_value(v) == start) {
            dw_baseline_add(&me->bl, agg, rp->cfg.models[mi].reference.windows);
        }
    }
}

/*
 * Judges a report of window `start` against the model's baseline, as run's baseline_for()
 * chooses it: the outcomes of the profile in use (ref), the counts of the reference.windows
 * windows before `start` (trailing), else the reference windows' final counts merged so far.
 */
static void judge_baseline(struct replayer *rp, size_t mi, int64_t start, json_t *report,
                           struct dw_agg *agg, const struct dw_ref *ref)
{
    const struct dw_model_cfg *m = &rp->cfg.models[mi];
    struct model_eval *me = &rp->me[mi];
    int trailing = m->reference.source == DW_REF_SOURCE_TRAILING && !rp->ref_given[mi];
    if (!(ref && ref->source == DW_REF_SOURCE_PROFILE) && !trailing) {
        dw_baseline_judge(report, &rp->cfg, m, &me->bl, ref ? ref->predictions : 0);
        dw_baseline_judge_outputs(report, &rp->cfg, m, &me->bl, agg, ref);
        return;
    }
    struct dw_baseline bl;
    dw_baseline_init(&bl, m);
    if (trailing) {
        int64_t k = m->reference.windows;
        struct dw_agg **before = dw_calloc((size_t)k, sizeof(*before));
        for (int64_t i = 0; i < k; i++) {
            before[i] =
                window_view(rp, &me->counts_only, m, start - (k - i) * rp->cfg.window_size_ms);
        }
        dw_baseline_set_trailing(&bl, before, (size_t)k);
        for (int64_t i = 0; i < k; i++) {
            dw_agg_free(before[i]);
        }
        free(before);
    } else {
        dw_baseline_set_profile(&bl, ref->outcomes);
    }
    dw_baseline_judge(report, &rp->cfg, m, &bl, ref ? ref->predictions : 0);
    dw_baseline_judge_outputs(report, &rp->cfg, m, &bl, agg, ref);
    dw_baseline_free(&bl);
}

/*
 * The rolling view of a report covering the windows from..start (start: its last window,
 * aggregate cur), oldest first, as run's load_recent() reads it: counted from the model's first
 * evaluated window, the earlier windows' records read for their counts. *n is 0 when disabled.
 */
static struct dw_agg **rolling_view(struct replayer *rp, size_t mi, int64_t from, int64_t start,
                                    struct dw_agg *cur, size_t *n)
{
    struct model_eval *me = &rp->me[mi];
    int64_t first, k;
    int store;
    *n = 0;
    dw_evaluator_rolling(&rp->cfg, me->rolling_found, me->rolling_first, from, start, &first, &k,
                         &store);
    if (k <= 0) {
        return NULL;
    }
    if (store) {
        me->rolling_first = first;
        me->rolling_found = 1;
    }
    struct dw_agg **recent = dw_calloc((size_t)k, sizeof(*recent));
    for (int64_t i = 0; i < k - 1; i++) {
        recent[i] = window_view(rp, &me->counts_only, &rp->cfg.models[mi],
                                start - (k - 1 - i) * rp->cfg.window_size_ms);
    }
    recent[k - 1] = cur;
    *n = (size_t)k;
    return recent;
}

/* The close record of window `start` kept for model mi, or NULL. */
static const struct dw_canary_window *canary_close(const struct model_eval *me, int64_t start)
{
    for (size_t k = 0; k < me->n_canary[0]; k++) {
        if (me->canary[0][k].start_ms == start) {
            return &me->canary[0][k];
        }
    }
    return NULL;
}

/*
 * The canary analysis of model mi at window `start` as run's canary_for() makes it (NULL: the
 * model has none): this window's record of the stage joins the kept ones (a final one with its
 * close record's latency sketches), and the analysis merges those of the last canary.windows
 * windows. Older ones go, except a close record whose window's final record is still to come.
 */
static json_t *canary_for(struct replayer *rp, size_t mi, int64_t start, const struct dw_agg *agg,
                          int final)
{
    const struct dw_model_cfg *m = &rp->cfg.models[mi];
    if (!m->canary.on) {
        return NULL;
    }
    struct model_eval *me = &rp->me[mi];
    struct dw_canary_window **recs = &me->canary[final];
    size_t *n = &me->n_canary[final];
    if (!dw_eval_agg_empty(agg)) {
        *recs = dw_realloc(*recs, (*n + 1) * sizeof(**recs));
        dw_canary_window_from_agg(&(*recs)[*n], agg);
        const struct dw_canary_window *close = final ? canary_close(me, start) : NULL;
        if (close) {
            dw_canary_window_add_latency(&(*recs)[*n], close);
        }
        (*n)++;
    }
    int64_t oldest = start - (int64_t)(m->canary.cfg.windows - 1) * rp->cfg.window_size_ms;
    int64_t keep_from = final          ? oldest
                        : me->found[1] ? DW_MIN(oldest, me->cursor[1])
                                       : INT64_MIN; /* no final record made yet */
    size_t drop = 0, from = 0;
    while (drop < *n && (*recs)[drop].start_ms < keep_from) {
        dw_canary_window_free(&(*recs)[drop++]);
    }
    memmove(*recs, *recs + drop, (*n - drop) * sizeof(**recs));
    *n -= drop;
    while (from < *n && (*recs)[from].start_ms < oldest) {
        from++;
    }
    return dw_canary_report(&m->canary, *recs + from, *n - from, final ? "final" : "close");
}

/* The own reference state of `version` of model_eval me (created empty on first use). */
static struct version_ref *version_ref_of(struct model_eval *me, const char *version)
{
    for (size_t k = 0; k < me->n_vrefs; k++) {
        if (strcmp(me->vrefs[k].version, version) == 0) {
            return &me->vrefs[k];
        }
    }
    me->vrefs = dw_realloc(me->vrefs, (me->n_vrefs + 1) * sizeof(*me->vrefs));
    struct version_ref *vr = &me->vrefs[me->n_vrefs++];
    *vr = (struct version_ref){dw_strdup(version), json_array(), NULL, NULL};
    return vr;
}

/*
 * reference.per_version with source windows, at the close of a window: each version (but the
 * overflow bucket) collects its own first reference.windows windows, as run's
 * version_references() does, and is judged against its reference once it has one; a window
 * that completes it is a reference window itself, not judged.
 */
static void version_references(struct replayer *rp, size_t mi, const struct dw_agg *agg,
                               json_t *report)
{
    const struct dw_model_cfg *m = &rp->cfg.models[mi];
    if (!m->reference.per_version || m->reference.source != DW_REF_SOURCE_WINDOWS ||
        rp->ref_given[mi]) {
        return;
    }
    for (size_t s = 0; s < agg->n_versions; s++) {
        if (!agg->versions[s].feats || strcmp(agg->versions[s].name, DW_AGG_OTHER) == 0) {
            continue;
        }
        struct version_ref *vr = version_ref_of(&rp->me[mi], agg->versions[s].name);
        const struct dw_ref *before = vr->ref;
        struct dw_agg *view = dw_agg_version_view(agg, s);
        if (dw_evaluator_version_reference(m, view, vr->wins, &vr->merged, &vr->ref,
                                           (uint32_t)rp->cfg.psi_bins)) {
            vr->ref->created_ms = rp->now_ms;
        }
        dw_agg_free(view);
        dw_eval_version_reference(report, &rp->cfg, m, agg, s, before, json_array_size(vr->wins));
    }
}

/*
 * Evaluates window `start` of model mi at a stage (final 0: close, 1: the label horizon), or the
 * run of empty windows it starts (up to the next window with data or `until`), as run's
 * evaluate_window() does, and writes the report. *n_windows: the windows it covered.
 */
static int evaluate_window(struct replayer *rp, size_t mi, int64_t start, int64_t until, int final,
                           int64_t *n_windows, char *errstr, size_t errstr_size)
{
    const struct dw_config *cfg = &rp->cfg;
    const struct dw_model_cfg *m = &cfg->models[mi];
    struct model_eval *me = &rp->me[mi];
    const struct dw_model_cfg *view = final ? &me->counts_only : m;
    struct dw_agg *agg = window_view(rp, view, m, start);
    int empty = dw_eval_agg_empty(agg);
    int64_t n = empty ? empty_run_length(rp, m, start, until) : 1;
    int64_t last_start = start + (n - 1) * cfg->window_size_ms;
    struct dw_agg *last = n > 1 ? dw_agg_new(&me->counts_only, last_start) : agg;
    size_t n_recent;
    struct dw_agg **recent = rolling_view(rp, mi, start, last_start, last, &n_recent);
    int ref_owned;
    const struct dw_ref *ref = reference_for(rp, mi, start, agg, final, &ref_owned);
    if (final && !empty) {
        baseline_merge(rp, mi, start, agg);
    }
    json_t *report = dw_eval_window(cfg, view, agg, ref, final);
    json_t *canary = canary_for(rp, mi, start, agg, final);
    if (canary) {
        json_object_set_new(report, "canary", canary);
    }
    if (!final && !empty) {
        version_references(rp, mi, agg, report);
    }
    char key[32];
    snprintf(key, sizeof(key), "%" PRId64, start);
    if (empty) {
        dw_eval_empty_run(report, cfg, n);
    } else if (final) {
        dw_eval_take_close(report, json_object_get(me->closes, key));
        json_object_del(me->closes, key);
    } else {
        json_object_set(me->closes, key, report); /* the same object: complete once written */
    }
    dw_eval_add_rolling(report, cfg, m, recent, n_recent);
    for (size_t i = 0; i + 1 < n_recent; i++) {
        dw_agg_free(recent[i]);
    }
    free(recent);
    judge_baseline(rp, mi, start, report, agg, ref);
    if (ref_owned) {
        dw_ref_free((struct dw_ref *)ref);
    }
    if (final) {
        json_object_set_new(report, "change_detectors",
                            dw_errstream_feed_report(&me->es, m, report));
    }
    int rc = backtest(rp, mi, report, errstr, errstr_size);
    rc = rc == 0 ? write_report(rp, report, errstr, errstr_size) : rc;
    rp->reports[final]++;
    json_decref(report);
    if (last != agg) {
        dw_agg_free(last);
    }
    dw_agg_free(agg);
    *n_windows = n;
    return rc;
}

/* Walks model mi's cursor of a stage up to `until` (what is closed), as run's evaluate_cursor. */
static int walk_cursor(struct replayer *rp, size_t mi, int final, const struct dw_watermarks *w,
                       int64_t until, char *errstr, size_t errstr_size)
{
    struct model_eval *me = &rp->me[mi];
    struct dw_cursor_walk walk;
    if (dw_evaluator_cursor_begin(&walk, &rp->cfg, w, final, me->found[final], me->cursor[final]) !=
        DW_NEXT_WINDOW) {
        return 0;
    }
    walk.until = until;
    dw_evaluator_after_close(&walk, me->found[0], me->cursor[0]);
    int ready =
        rp->refs[mi] != NULL || rp->cfg.models[mi].reference.source == DW_REF_SOURCE_TRAILING;
    while (dw_evaluator_next(&walk, ready, INT_MAX) == DW_NEXT_WINDOW) {
        int64_t n = 0;
        if (evaluate_window(rp, mi, walk.cursor, walk.until, final, &n, errstr, errstr_size) != 0) {
            return -1;
        }
        me->cursor[final] = dw_evaluator_advance(&walk, &rp->cfg, n);
        me->found[final] = 1;
    }
    return 0;
}

/*
 * What run's checkpoint does to a partition before the evaluator reads it: join records past
 * join.ttl expire, windows past the label horizon retire (kept here as records for the final
 * evaluation and the rolling views), dirty lists are cleared.
 */
static void maintain(struct replayer *rp)
{
    struct dw_part *p = rp->part;
    dw_part_maintain(p, rp->cfg.join_max_records);
    for (size_t i = 0; i < p->n_retired; i++) {
        if (rp->n_kept == rp->cap_kept) {
            rp->cap_kept = rp->cap_kept ? 2 * rp->cap_kept : 16;
            rp->kept = dw_realloc(rp->kept, rp->cap_kept * sizeof(*rp->kept));
        }
        rp->kept[rp->n_kept++] = p->retired[i]; /* taken over */
    }
    p->n_retired = 0;
    for (size_t mi = 0; mi < rp->cfg.n_models; mi++) {
        int64_t *starts = NULL;
        dw_part_take_unmerged(p, &rp->cfg.models[mi], INT64_MAX, &starts); /* nothing to shrink */
        free(starts);
    }
    dw_part_checkpoint_done(p);
}

/* What the cursors let go, as run's apply_cursors(): sketches of windows the close evaluation
 * merged, records no reader needs (dw_evaluator_records_before the final cursor). */
static void apply_cursors(struct replayer *rp)
{
    size_t keep = 0;
    for (size_t mi = 0; mi < rp->cfg.n_models; mi++) {
        if (rp->me[mi].found[0]) {
            dw_part_drop_sketches(rp->part, &rp->cfg.models[mi], rp->me[mi].cursor[0]);
        }
    }
    for (size_t i = 0; i < rp->n_kept; i++) {
        struct dw_agg *agg = rp->kept[i];
        const struct model_eval *me = &rp->me[agg->model - rp->cfg.models];
        if (me->found[1] && agg->start_ms < dw_evaluator_records_before(&rp->cfg, me->cursor[1])) {
            dw_agg_free(agg);
        } else {
            rp->kept[keep++] = agg;
        }
    }
    rp->n_kept = keep;
}

/*
 * One evaluation after an event: the group's clocks (one partition, never idle) decide which
 * windows are closed and final (dw_evaluator); when either moved past a window boundary, every
 * model's close then final cursor walks, as on run's evaluation tick. At the end of the input
 * (at_end) time passes: every window up to the end of the last one holding a prediction gets
 * its close and final report.
 */
static int evaluate(struct replayer *rp, int at_end, char *errstr, size_t errstr_size)
{
    const struct dw_part *p = rp->part;
    struct dw_part_meta meta = {
        .present = 1, .max_ts = p->max_ts, .min_ts = p->min_ts, .max_label_ts = p->max_label_ts};
    struct dw_watermarks w;
    dw_evaluator_watermarks(&meta, 1, &rp->cfg, 0, &w);
    if (w.wm == DW_NO_TS) {
        return 0;
    }
    int64_t L = rp->cfg.window_size_ms;
    int64_t until[2] = {dw_evaluator_closed_until(&rp->cfg, &w, 0),
                        dw_evaluator_closed_until(&rp->cfg, &w, 1)};
    if (at_end) {
        until[0] = until[1] = dw_floor_div(p->max_ts, L) * L + L;
    } else if (until[0] == rp->until[0] && until[1] == rp->until[1]) {
        return 0; /* no window closed or became final since the last evaluation */
    }
    rp->until[0] = until[0];
    rp->until[1] = until[1];
    maintain(rp);
    rp->part->closed_upto_ms = w.wm;
    for (size_t mi = 0; mi < rp->cfg.n_models; mi++) {
        if (walk_cursor(rp, mi, 0, &w, until[0], errstr, errstr_size) != 0 ||
            walk_cursor(rp, mi, 1, &w, until[1], errstr, errstr_size) != 0) {
            return -1;
        }
    }
    apply_cursors(rp);
    return 0;
}

/*
 * Reads both files in arrival order (the design comment) and evaluates after every event, as
 * run would with the traffic arriving live; then lets time pass.
 */
static int replay_events(struct replayer *rp, char *errstr, size_t errstr_size)
{
    struct stream *pred = &rp->in[0], *lab = &rp->in[1];
    if (stream_next(rp, pred, errstr, errstr_size) != 0 ||
        stream_next(rp, lab, errstr, errstr_size) != 0) {
        return -1;
    }
    while (pred->has || lab->has) {
        struct stream *s = pred->has && (!lab->has || pred->ts_ms <= lab->ts_ms) ? pred : lab;
        if (s == pred) {
            on_prediction(rp, s);
        } else {
            on_label(rp, s);
        }
        rp->now_ms = s->ts_ms;
        if (++rp->events % REPLAY_CLEAN_EVERY == 0) {
            maintain(rp); /* expiry, and the dirty lists nothing writes */
        }
        if (evaluate(rp, 0, errstr, errstr_size) != 0 ||
            stream_next(rp, s, errstr, errstr_size) != 0) {
            return -1;
        }
    }
    rp->part->labels_at_end = 1;
    return evaluate(rp, 1, errstr, errstr_size);
}

/* ---- setup ---- */

static int load_reference(struct replayer *rp, char *errstr, size_t errstr_size)
{
    rp->ref_doc = dw_files_profile_doc(rp->o->reference, errstr, errstr_size);
    return rp->ref_doc ? 0 : -1;
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
    dw_ref_free(rp->refs[mi]); /* the --reference profile replaces reference.profile's */
    rp->refs[mi] = dw_files_load_profile(m, rp->o->reference, errstr, errstr_size);
    rp->ref_given[mi] = 1;
    return rp->refs[mi] ? 0 : -1;
}

static void replay_usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch replay --predictions FILE [--labels FILE]\n"
            "                         [--reference PROFILE.json] [-c CONFIG] [--window SECONDS]\n\n"
            "Runs run's pipeline over JSON-lines files (plain or .gz), without Kafka or Redis,\n"
            "as a backtest of the config: the events of both files arrive in one order (each\n"
            "file's order, merged by timestamp), under the config's allowed lateness, label\n"
            "horizon, join TTL and reference windows. Each (model, window) gets a close-stage\n"
            "report (\"stage\": \"close\") once the predictions' clock passed its end plus the\n"
            "allowed lateness, and a final one once both clocks passed its label horizon, as\n"
            "run writes them; at the end of the files time passes and every window up to the\n"
            "last one with data gets both. A run of empty windows is one report (predictions\n"
            "0, empty_windows N). Event times are not bounded (input.max_future_skew and\n"
            "max_past_skew need a Kafka timestamp).\n\n"
            "  -p, --predictions FILE  prediction events, one JSON object per line\n"
            "  -l, --labels FILE       label events, one JSON object per line\n"
            "  -r, --reference FILE    reference profile (driftwatch profile); default: each\n"
            "                          model's first reference.windows windows with data (1\n"
            "                          without -c)\n"
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
            "Bad lines are counted by reason; the summary is one JSON line on stderr (with the\n"
            "events late or expired outside any window).\n");
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

/* Each model's evaluation state, empty: no cursor, no reference window, no baseline yet. */
static void models_eval_init(struct replayer *rp)
{
    rp->me = dw_calloc(rp->cfg.n_models ? rp->cfg.n_models : 1, sizeof(*rp->me));
    for (size_t i = 0; i < rp->cfg.n_models; i++) {
        struct model_eval *me = &rp->me[i];
        me->counts_only = rp->cfg.models[i];
        me->counts_only.features = NULL;
        me->counts_only.n_features = 0;
        me->refwins = json_array();
        me->closes = json_object();
        dw_baseline_init(&me->bl, &rp->cfg.models[i]);
        dw_errstream_init(&me->es);
    }
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
    for (size_t i = 0; rp->me && i < rp->cfg.n_models; i++) {
        struct model_eval *me = &rp->me[i];
        json_decref(me->refwins);
        for (size_t k = 0; k < me->n_refaggs; k++) {
            dw_agg_free(me->refaggs[k]);
        }
        free(me->refaggs);
        for (size_t k = 0; k < me->n_trail; k++) {
            dw_agg_free(me->trail[k]);
        }
        free(me->trail);
        dw_baseline_free(&me->bl);
        dw_errstream_free(&me->es);
        json_decref(me->closes);
        for (int s = 0; s < 2; s++) {
            for (size_t k = 0; k < me->n_canary[s]; k++) {
                dw_canary_window_free(&me->canary[s][k]);
            }
            free(me->canary[s]);
        }
        for (size_t k = 0; k < me->n_vrefs; k++) {
            free(me->vrefs[k].version);
            json_decref(me->vrefs[k].wins);
            dw_agg_free(me->vrefs[k].merged);
            dw_ref_free(me->vrefs[k].ref);
        }
        free(me->vrefs);
    }
    free(rp->me);
    for (size_t i = 0; i < rp->n_kept; i++) {
        dw_agg_free(rp->kept[i]);
    }
    free(rp->kept);
    dw_part_free(rp->part);
    for (int i = 0; i < 2; i++) {
        dw_files_close(rp->in[i].f);
        free(rp->in[i].pev);
        dw_decoder_destroy(rp->in[i].dec);
    }
    json_decref(rp->ref_doc);
    dw_config_free(&rp->cfg);
}

/*
 * The summary on stderr: lines, events, bad lines by reason, and what no report shows: events
 * counted outside any window (late for a window already retired, expired in the join) and the
 * models whose final reports never came because their reference was never complete.
 */
static void summary(struct replayer *rp)
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
    const struct dw_part_counters *c = &rp->part->ctr;
    json_t *no_ref = json_array();
    for (size_t i = 0; i < rp->cfg.n_models; i++) {
        if (!rp->refs[i] && rp->cfg.models[i].reference.source == DW_REF_SOURCE_WINDOWS) {
            json_array_append_new(no_ref, json_string(rp->cfg.models[i].name));
        }
    }
    json_t *s = json_pack(
        "{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}}", "replay",
        "prediction_lines", (json_int_t)rp->in[0].lines, "predictions", (json_int_t)c->predictions,
        "duplicate_predictions", (json_int_t)rp->duplicate_predictions, "label_lines",
        (json_int_t)rp->in[1].lines, "duplicate_labels", (json_int_t)rp->duplicate_labels,
        "unmatched_labels", (json_int_t)unmatched, "late_predictions_outside_windows",
        (json_int_t)c->late_predictions, "late_labels", (json_int_t)c->late_labels,
        "expired_predictions", (json_int_t)c->expired_predictions, "expired_labels",
        (json_int_t)c->expired_labels, "evicted", (json_int_t)c->evicted, "reports",
        (json_int_t)(rp->reports[0] + rp->reports[1]), "close_reports", (json_int_t)rp->reports[0],
        "final_reports", (json_int_t)rp->reports[1], "bad", bad, "no_reference", no_ref);
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
    if (o->config) {
        if (dw_config_load(&rp.cfg, o->config, errstr, errstr_size) != 0) {
            goto err;
        }
    } else {
        dw_config_defaults(&rp.cfg);
        rp.cfg.reference_windows = 1; /* a first look at files: the first window is enough */
    }
    if (o->window) {
        int64_t ms;
        if (dw_duration_parse(o->window, &ms) != 0 || ms <= 0) {
            dw_err(errstr, errstr_size, "--window: '%s' is not a positive duration", o->window);
            goto err;
        }
        rp.cfg.window_size_ms = ms;
    }
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
    if (dw_files_load_profiles(&rp.cfg, rp.refs, errstr, errstr_size) != 0 ||
        attach_reference(&rp, errstr, errstr_size) != 0) {
        goto err;
    }
    for (int i = 0; i < 2; i++) {
        if (!(rp.in[i].dec = dw_decoder_new(&rp.cfg, errstr, errstr_size))) {
            goto err;
        }
        rp.in[i].is_pred = i == 0;
    }
    rp.in[0].pev = dw_prediction_new(rp.in[0].dec);
    rp.part = dw_part_new(&rp.cfg, 0);
    rp.part->labels_at_end = !o->labels;
    rp.now_ms = DW_NO_TS;
    rp.until[0] = rp.until[1] = INT64_MAX; /* nothing evaluated yet */
    models_eval_init(&rp);
    rc = -1;
    if (o->output && !(rp.out = fopen(o->output, "w"))) {
        rp.out = stdout;
        dw_err(errstr, errstr_size, "%s: cannot open for writing", o->output);
        goto err;
    }
    if (o->alerts && open_alerts(&rp, errstr, errstr_size) != 0) {
        goto err;
    }
    if (!(rp.in[0].f = dw_files_open(o->predictions, errstr, errstr_size)) ||
        (o->labels && !(rp.in[1].f = dw_files_open(o->labels, errstr, errstr_size))) ||
        replay_events(&rp, errstr, errstr_size) != 0) {
        goto err;
    }
    if (fflush(rp.out) != 0) {
        dw_err(errstr, errstr_size, "%s: write failed", o->output ? o->output : "stdout");
        goto err;
    }
    summary(&rp);
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
    if (dw_cmd_no_arguments("replay", argc, argv, optind) != 0) {
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
