/*
 * dw_baseline.c - the performance baseline of a model and the drops of every window against it.
 *
 * Why final counts: labels arrive minutes to hours after their predictions. The reference used
 * to carry the accuracy its windows had when they closed, which with labels a few windows late
 * was null or a guess from the first labels back, for ever: accuracy_drop stayed null and the
 * built-in rule could never fire. A window's counts are complete at its final evaluation (the
 * label horizon), so the baseline is the merge of the reference windows' final counts, one
 * window at a time as each reaches its horizon, and is reported as waiting until the last one
 * has (docs/statistics.md, "Baselines and drops").
 *
 * Why merged counts and not an average of window metrics: the baseline is then the performance
 * of one long window over the reference windows (as the rolling view), weighted by labels, and
 * each metric comes from dw_eval_performance(), the code that computes a window's: a window
 * identical to the reference windows has a drop of exactly 0.
 *
 * Why one source at a time: a configured baseline (models.<m>.baseline) replaces the windows'
 * for every metric, the ones it leaves out having none. Mixing a training-time accuracy with a
 * production-time F1 would judge one window against two different periods. The windows'
 * baseline is still collected, so that removing the setting falls back to it.
 *
 * The state is merged counts and the list of windows merged, so that merging is idempotent and
 * the text (JSON, the counts as base64 of dw_agg_encode) travels in the evaluator's commit with
 * the final cursor: every pod and every restart sees the same baseline. Nothing here does I/O.
 *
 * Why the label-free estimate and the label drift are judged here (dw_baseline_judge_outputs):
 * both need the reference windows' final labels, which only the baseline holds. The
 * calibration of the estimate is fitted on the baseline's labelled scores by true class at
 * every evaluation (well under a millisecond for the usual few thousand outcomes, so no state
 * of its own), and the estimates' drops use dw_baseline_drop() like the realised metrics', so
 * a window estimated exactly as the baseline performed has a drop of 0.
 */
#include "driftwatch/core/dw_baseline.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_cbpe.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_kll.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Why a window's baseline or drop of a metric is missing (docs/statistics.md). */
#define WHY_WAITING "waiting_for_labels"
#define WHY_UNAVAILABLE "unavailable"
#define WHY_NOT_CONFIGURED "not_configured"

/* ---------------------------------------------------------------- state */

void dw_baseline_init(struct dw_baseline *bl, const struct dw_model_cfg *m)
{
    memset(bl, 0, sizeof(*bl));
    bl->counts_model = dw_model_counts_only(m); /* feature statistics are not merged */
}

void dw_baseline_free(struct dw_baseline *bl)
{
    dw_agg_free(bl->sum);
    free(bl->starts);
    free(bl->counts_model);
    memset(bl, 0, sizeof(*bl));
}

static int merged(const struct dw_baseline *bl, int64_t start)
{
    for (size_t i = 0; i < bl->n; i++) {
        if (bl->starts[i] == start) {
            return 1;
        }
    }
    return 0;
}

/* Lists window `start` as merged. */
static void starts_push(struct dw_baseline *bl, int64_t start)
{
    bl->starts = dw_realloc(bl->starts, (bl->n + 1) * sizeof(*bl->starts));
    bl->starts[bl->n++] = start;
}

int dw_baseline_add(struct dw_baseline *bl, const struct dw_agg *agg, int64_t needed)
{
    if (merged(bl, agg->start_ms)) {
        return 0;
    }
    if (!bl->sum) {
        bl->sum = dw_agg_new_exact(bl->counts_model, agg->start_ms, DW_AGG_MERGE_EXACT);
    }
    dw_agg_merge(bl->sum, agg);
    starts_push(bl, agg->start_ms);
    bl->needed = needed;
    return 1;
}

int dw_baseline_step(struct dw_baseline *bl, const json_t *refwins, int64_t start,
                     const struct dw_agg *agg)
{
    int changed = 0;
    size_t i;
    json_t *v;
    json_array_foreach(refwins, i, v)
    {
        int64_t ws = json_integer_value(v);
        if (ws == start && agg) {
            changed |= dw_baseline_add(bl, agg, (int64_t)json_array_size(refwins));
        } else if (ws < start && !merged(bl, ws) && !bl->missed) {
            bl->missed = 1;
            bl->needed = (int64_t)json_array_size(refwins);
            changed = 1;
        }
    }
    return changed;
}

/* Empties bl's counts, keeping its model. */
static void clear(struct dw_baseline *bl)
{
    dw_agg_free(bl->sum);
    free(bl->starts);
    bl->sum = NULL;
    bl->starts = NULL;
    bl->n = 0;
    bl->missed = 0;
}

void dw_baseline_set_profile(struct dw_baseline *bl, const struct dw_agg *outcomes)
{
    clear(bl);
    bl->source = DW_BASELINE_PROFILE;
    bl->needed = 1;
    if (outcomes) {
        dw_baseline_add(bl, outcomes, 1);
    }
}

void dw_baseline_set_trailing(struct dw_baseline *bl, struct dw_agg *const *aggs, size_t n)
{
    clear(bl);
    bl->source = DW_BASELINE_TRAILING;
    bl->needed = 1;
    for (size_t i = 0; i < n; i++) {
        if (aggs[i]->all.predictions > 0) {
            dw_baseline_add(bl, aggs[i], 1);
        }
    }
}

int dw_baseline_ready(const struct dw_baseline *bl)
{
    return bl && !bl->missed && bl->needed > 0 && (int64_t)bl->n >= bl->needed;
}

char *dw_baseline_dump(const struct dw_baseline *bl)
{
    json_t *wins = json_array();
    for (size_t i = 0; i < bl->n; i++) {
        json_array_append_new(wins, json_integer(bl->starts[i]));
    }
    json_t *doc = json_pack("{s:i,s:I,s:o,s:b}", "format", DW_BASELINE_FORMAT, "needed",
                            (json_int_t)bl->needed, "windows", wins, "missed", bl->missed);
    if (bl->sum) {
        struct dw_buf buf;
        dw_buf_init(&buf);
        dw_agg_encode(bl->sum, &buf);
        char *b64 = dw_base64(buf.data, buf.len);
        json_object_set_new(doc, "counts", json_string(b64));
        free(b64);
        dw_buf_free(&buf);
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/* The merged counts of a stored state: base64 of dw_agg_encode(). */
static int load_counts(struct dw_baseline *bl, const json_t *counts, char *errstr,
                       size_t errstr_size)
{
    unsigned char *bytes = NULL;
    long n = json_is_string(counts) ? dw_base64_decode(json_string_value(counts), &bytes) : -1;
    if (n < 0) {
        return dw_err(errstr, errstr_size, "baseline state: counts is not base64");
    }
    char err[256];
    bl->sum = dw_agg_decode(bl->counts_model, bytes, (size_t)n, err, sizeof(err));
    free(bytes);
    return bl->sum ? 0 : dw_err(errstr, errstr_size, "baseline state: counts: %s", err);
}

static int load_doc(struct dw_baseline *bl, const json_t *doc, char *errstr, size_t errstr_size)
{
    json_t *format = json_object_get(doc, "format"), *needed = json_object_get(doc, "needed");
    json_t *wins = json_object_get(doc, "windows"), *missed = json_object_get(doc, "missed");
    json_t *counts = json_object_get(doc, "counts");
    if (!json_is_object(doc)) {
        return dw_err(errstr, errstr_size, "baseline state: not a JSON object");
    }
    if (!json_is_integer(format) || json_integer_value(format) != DW_BASELINE_FORMAT) {
        return dw_err(errstr, errstr_size, "baseline state: format is not %d", DW_BASELINE_FORMAT);
    }
    if (!json_is_integer(needed) || json_integer_value(needed) < 0 || !json_is_array(wins) ||
        !json_is_boolean(missed)) {
        return dw_err(errstr, errstr_size,
                      "baseline state: needed, windows or missed of the wrong type");
    }
    size_t i;
    json_t *v;
    json_array_foreach(wins, i, v)
    {
        if (!json_is_integer(v) || merged(bl, json_integer_value(v))) {
            return dw_err(errstr, errstr_size, "baseline state: windows[%zu] is not a new start",
                          i);
        }
        starts_push(bl, json_integer_value(v));
    }
    bl->needed = json_integer_value(needed);
    bl->missed = json_is_true(missed);
    if ((bl->n > 0) != (counts != NULL)) {
        return dw_err(errstr, errstr_size, "baseline state: counts %s",
                      counts ? "without windows" : "missing");
    }
    return counts ? load_counts(bl, counts, errstr, errstr_size) : 0;
}

int dw_baseline_load(struct dw_baseline *bl, const struct dw_model_cfg *m, const char *text,
                     char *errstr, size_t errstr_size)
{
    dw_baseline_init(bl, m);
    if (!text) {
        return 0;
    }
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    int rc = doc ? load_doc(bl, doc, errstr, errstr_size)
                 : dw_err(errstr, errstr_size, "baseline state: %s", jerr.text);
    json_decref(doc);
    if (rc != 0) {
        dw_baseline_free(bl);
        dw_baseline_init(bl, m);
    }
    return rc;
}

/* ---------------------------------------------------------------- drops */

double dw_baseline_drop(enum dw_perf_metric k, double base, double value, const char **why)
{
    *why = NULL;
    if (!isfinite(base)) {
        *why = "baseline_undefined";
        return NAN;
    }
    if (!isfinite(value)) {
        *why = "value_undefined";
        return NAN;
    }
    if (base == 0.0) {
        *why = "baseline_zero";
        return NAN;
    }
    double worse = dw_perf_metric_info(k)->higher_better ? base - value : value - base;
    return worse / fabs(base);
}

/* Metric k of a report's "performance" object, NaN when null or absent. */
static double perf_value(const json_t *perf, enum dw_perf_metric k)
{
    json_t *v = json_object_get(perf, dw_perf_metric_info(k)->name);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The model's metrics: those of its task, in enum order. */
static int of_task(enum dw_perf_metric k, const struct dw_model_cfg *m)
{
    return dw_perf_metric_info(k)->task == m->task;
}

/* What a whole baseline lacks: NULL when it exists. */
static const char *baseline_missing(const struct dw_baseline *bl, const struct dw_model_cfg *m)
{
    if (m->baseline_set || dw_baseline_ready(bl)) {
        return NULL;
    }
    return bl && (bl->missed || bl->source != DW_BASELINE_WINDOWS) ? WHY_UNAVAILABLE : WHY_WAITING;
}

/* The baseline value of every metric of model m (NaN: none); @returns its source. */
static const char *baseline_values(const struct dw_baseline *bl, const struct dw_model_cfg *m,
                                   double base[DW_PM_COUNT])
{
    for (size_t k = 0; k < DW_PM_COUNT; k++) {
        base[k] = NAN;
        if (m->baseline_set & (1u << k)) {
            base[k] = m->baseline[k];
        }
    }
    static const char *const sources[] = {"windows", "profile", "trailing"};
    if (m->baseline_set) {
        return "config";
    }
    if (dw_baseline_ready(bl)) {
        json_t *perf = dw_eval_performance(bl->counts_model, &bl->sum->all, &bl->sum->perf);
        for (size_t k = 0; k < DW_PM_COUNT; k++) {
            enum dw_perf_metric pm = (enum dw_perf_metric)k;
            base[k] = of_task(pm, m) ? perf_value(perf, pm) : NAN;
        }
        json_decref(perf);
    }
    return sources[bl ? bl->source : DW_BASELINE_WINDOWS];
}

/* Share of the reference windows' predictions whose final labels the baseline holds. */
static double labeled_share(const struct dw_baseline *bl, uint64_t ref_predictions)
{
    uint64_t labeled = bl && bl->sum ? bl->sum->all.labeled : 0;
    uint64_t predictions = bl && bl->sum ? bl->sum->all.predictions : 0;
    predictions = DW_MAX(predictions, ref_predictions);
    return predictions ? (double)labeled / (double)predictions : 0.0;
}

/* The "baseline" of a profile's or the trailing windows' counts: what they hold, and why there
 * is no baseline when there is none. */
static void counts_status(json_t *o, const struct dw_model_cfg *m, const struct dw_baseline *bl,
                          int missing)
{
    uint64_t labeled = bl->sum ? bl->sum->all.labeled : 0;
    json_object_set_new(o, "labeled", json_integer((json_int_t)labeled));
    if (bl->source == DW_BASELINE_TRAILING) {
        json_object_set_new(o, "windows", json_integer((json_int_t)bl->n));
    }
    if (!missing) {
        return;
    }
    char reason[512];
    if (bl->source == DW_BASELINE_PROFILE) {
        snprintf(reason, sizeof(reason),
                 "the reference profile holds no labelled outcomes: make it with the training "
                 "data's prediction and label columns (driftwatch profile), or set "
                 "models.%s.baseline",
                 m->name);
    } else {
        snprintf(reason, sizeof(reason),
                 "no predictions in the %" PRId64 " windows before this one (reference.source "
                 "trailing)",
                 m->reference.windows);
    }
    json_object_set_new(o, "reason", json_string(reason));
}

/* The report's "baseline": status, source, progress (windows) and the metric values. */
static json_t *status_json(const struct dw_config *cfg, const struct dw_model_cfg *m,
                           const struct dw_baseline *bl, const char *source,
                           const double base[DW_PM_COUNT], uint64_t ref_predictions)
{
    const char *missing = baseline_missing(bl, m);
    json_t *o = json_pack("{s:s,s:s}", "status", missing ? missing : "ready", "source", source);
    if (!m->baseline_set && bl && bl->source != DW_BASELINE_WINDOWS) {
        counts_status(o, m, bl, missing != NULL);
    } else if (!m->baseline_set) {
        int64_t needed = bl && bl->needed ? bl->needed : m->reference.windows;
        json_object_set_new(o, "windows", json_integer(bl ? (json_int_t)bl->n : 0));
        if (missing) {
            json_object_set_new(o, "windows_needed", json_integer((json_int_t)needed));
        }
        json_object_set_new(o, "labeled_share", dw_jnum(labeled_share(bl, ref_predictions)));
    }
    if (bl && bl->missed && !m->baseline_set) {
        char reason[512];
        snprintf(reason, sizeof(reason),
                 "a reference window reached its label horizon before its counts were kept "
                 "(state of an older version); set models.%s.baseline",
                 m->name);
        json_object_set_new(o, "reason", json_string(reason));
    }
    for (size_t k = 0; k < DW_PM_COUNT; k++) {
        if (of_task((enum dw_perf_metric)k, m)) {
            json_object_set_new(o, dw_perf_metric_info((enum dw_perf_metric)k)->name,
                                dw_jnum(base[k]));
        }
    }
    return o;
}

/*
 * The built-in rule's verdict on metric k ("performance_drop") and, for accuracy, the
 * "accuracy_drop" object of earlier versions: value > detectors.accuracy_drop with at least
 * detectors.min_samples labels alerts.
 */
static void verdicts(json_t *report, const struct dw_config *cfg, enum dw_perf_metric k,
                     const double base[DW_PM_COUNT], const double drop[DW_PM_COUNT],
                     const json_t *why)
{
    const char *name = dw_perf_metric_info(k)->name;
    json_t *perf = json_object_get(report, "performance");
    int64_t labeled = (int64_t)json_integer_value(json_object_get(report, "labeled"));
    int alert = isfinite(drop[k]) && drop[k] > cfg->accuracy_drop && labeled >= cfg->min_samples;
    json_t *v = json_pack("{s:s,s:o,s:o,s:o,s:f,s:b}", "metric", name, "value", dw_jnum(drop[k]),
                          "current", dw_jnum(perf_value(perf, k)), "baseline", dw_jnum(base[k]),
                          "threshold", cfg->accuracy_drop, "alert", alert);
    json_t *reason = json_object_get(why, name);
    if (reason) {
        json_object_set(v, "reason", reason);
    }
    json_object_set_new(report, "performance_drop", v);
    if (k == DW_PM_ACCURACY && isfinite(drop[k])) {
        json_object_set_new(report, "accuracy_drop",
                            json_pack("{s:f,s:o,s:f,s:f,s:b}", "value", drop[k], "accuracy",
                                      dw_jnum(perf_value(perf, k)), "reference", base[k],
                                      "threshold", cfg->accuracy_drop, "alert", alert));
    }
}

void dw_baseline_judge(json_t *report, const struct dw_config *cfg, const struct dw_model_cfg *m,
                       const struct dw_baseline *bl, uint64_t ref_predictions)
{
    double base[DW_PM_COUNT], drop[DW_PM_COUNT];
    const char *source = baseline_values(bl, m, base);
    json_object_set_new(report, "baseline", status_json(cfg, m, bl, source, base, ref_predictions));
    json_t *perf = json_object_get(report, "performance");
    if (!json_is_object(perf)) {
        json_object_set_new(report, "performance_drop", json_null());
        return;
    }
    const char *missing = baseline_missing(bl, m);
    json_t *jbase = json_object(), *jdrop = json_object(), *why = json_object();
    for (size_t i = 0; i < DW_PM_COUNT; i++) {
        enum dw_perf_metric k = (enum dw_perf_metric)i;
        drop[k] = NAN;
        if (!of_task(k, m)) {
            continue;
        }
        const char *reason = missing;
        if (!missing && m->baseline_set && !(m->baseline_set & (1u << k))) {
            reason = WHY_NOT_CONFIGURED;
        }
        if (!reason) {
            drop[k] = dw_baseline_drop(k, base[k], perf_value(perf, k), &reason);
        }
        const char *name = dw_perf_metric_info(k)->name;
        json_object_set_new(jbase, name, dw_jnum(base[k]));
        json_object_set_new(jdrop, name, dw_jnum(drop[k]));
        if (reason) {
            json_object_set_new(why, name, json_string(reason));
        }
    }
    json_object_set_new(perf, "baseline", jbase);
    json_object_set_new(perf, "drop", jdrop);
    json_object_set_new(perf, "drop_undefined", why);
    verdicts(report, cfg, m->task == DW_TASK_REGRESSION ? DW_PM_RMSE : DW_PM_ACCURACY, base, drop,
             why);
}

/* ---------------------------------------------------------------- outputs */

#define WHY_NOT_BINARY "label-free estimates are for binary classifiers with scores"
#define WHY_NO_SCORES "the window's predictions carry no score"
#define WHY_NO_REF_SCORES "the reference windows' labelled predictions carry no score"
#define WHY_CALIBRATION                                                                            \
    "the calibration is fitted on the reference windows' final labelled scores (the "              \
    "performance baseline), complete once the last of them reaches its label horizon"
#define WHY_MISSED "the performance baseline missed a reference window (see baseline.reason)"
#define WHY_PROFILE_NO_OUTCOMES                                                                    \
    "the reference profile holds no labelled outcomes: make it with the training data's "          \
    "prediction, label and score columns (driftwatch profile)"
#define WHY_TRAILING_EMPTY                                                                         \
    "no predictions in the windows before this one (reference.source trailing)"
#define WHY_OLD_BASELINE                                                                           \
    "the performance baseline was completed by an earlier version, which did not keep the "        \
    "labels' distribution; collect the reference again to judge the label drift"
#define WHY_MULTICLASS "the reference windows hold more than two classes: not a binary classifier"

static json_t *why_json(const char *status, const char *reason)
{
    json_t *o = json_pack("{s:s}", "status", status);
    if (reason) {
        json_object_set_new(o, "reason", json_string(reason));
    }
    return o;
}

/* A statistic's sketch as a weighted sorted view (arrays malloc'd into *v, *w; free both). */
static struct dw_cbpe_view sketch_view(struct dw_kll *sk, double **v, uint64_t **w)
{
    size_t n = sk ? dw_kll_sorted_view(sk, NULL, NULL, 0) : 0;
    *v = dw_malloc((n ? n : 1) * sizeof(**v));
    *w = dw_malloc((n ? n : 1) * sizeof(**w));
    if (n > 0) {
        dw_kll_sorted_view(sk, *v, *w, n);
    }
    struct dw_cbpe_view view = {*v, *w, n};
    return view;
}

/* The calibration fitted on the baseline's labelled scores; NULL with *why when it cannot be. */
static int fit_baseline(const struct dw_baseline *bl, struct dw_cbpe_calib *cal, char *why,
                        size_t why_size)
{
    double *v[2];
    uint64_t *w[2];
    struct dw_cbpe_view views[2];
    for (int cls = 0; cls < 2; cls++) {
        views[cls].len = dw_perf_score_view(&bl->sum->perf, cls, &v[cls], &w[cls]);
        views[cls].values = v[cls];
        views[cls].weights = w[cls];
    }
    int rc = -1;
    if (views[0].len + views[1].len == 0) {
        snprintf(why, why_size, "%s", WHY_NO_REF_SCORES);
    } else {
        char err[256];
        rc = dw_cbpe_fit(cal, &views[0], &views[1], err, sizeof(err));
        if (rc != 0) {
            snprintf(why, why_size, "the calibration cannot be fitted: %s", err);
        }
    }
    for (int cls = 0; cls < 2; cls++) {
        free(v[cls]);
        free(w[cls]);
    }
    return rc;
}

/* The "estimated" object of a window with scores, and est (ready: *ready = 1). */
/* Why a baseline that is not ready never will be (NULL: it may still come): a reference window
 * missed, a profile without labels, trailing windows without predictions. */
static const char *not_coming(const struct dw_baseline *bl)
{
    if (!bl || dw_baseline_ready(bl)) {
        return NULL;
    }
    if (bl->missed) {
        return WHY_MISSED;
    }
    return bl->source == DW_BASELINE_PROFILE    ? WHY_PROFILE_NO_OUTCOMES
           : bl->source == DW_BASELINE_TRAILING ? WHY_TRAILING_EMPTY
                                                : NULL;
}

static json_t *estimate_json(const struct dw_model_cfg *m, const struct dw_baseline *bl,
                             struct dw_agg *agg, struct dw_cbpe_estimate *est, int *ready)
{
    *ready = 0;
    const struct dw_feat_stats *pos = &agg->out[DW_AGG_OUT_SCORE_POS];
    const struct dw_feat_stats *neg = &agg->out[DW_AGG_OUT_SCORE_NEG];
    if (m->task == DW_TASK_REGRESSION) {
        return why_json(WHY_UNAVAILABLE, WHY_NOT_BINARY);
    }
    if (agg->all.predictions == 0) {
        return why_json("no_predictions", NULL);
    }
    if (pos->count + neg->count == 0) {
        return why_json(WHY_UNAVAILABLE, WHY_NO_SCORES);
    }
    if (!dw_baseline_ready(bl)) {
        const char *why = not_coming(bl);
        return why ? why_json(WHY_UNAVAILABLE, why)
                   : why_json("waiting_for_baseline", WHY_CALIBRATION);
    }
    if (dw_perf_n_classes(&bl->sum->perf, 3) > 2) {
        return why_json(WHY_UNAVAILABLE, WHY_MULTICLASS);
    }
    char why[512];
    struct dw_cbpe_calib cal;
    memset(&cal, 0, sizeof(cal));
    if (fit_baseline(bl, &cal, why, sizeof(why)) != 0) {
        return why_json(WHY_UNAVAILABLE, why);
    }
    double *v[2];
    uint64_t *w[2];
    struct dw_cbpe_view vneg = sketch_view(neg->sk, &v[0], &w[0]);
    struct dw_cbpe_view vpos = sketch_view(pos->sk, &v[1], &w[1]);
    char err[256];
    int rc = dw_cbpe_estimate(&cal, &vneg, &vpos, est, err, sizeof(err));
    json_t *o;
    if (rc != 0) {
        snprintf(why, sizeof(why), "the estimate failed: %s", err);
        o = why_json(WHY_UNAVAILABLE, why);
    } else {
        o = why_json("ready", NULL);
        json_object_set_new(o, "method", json_string("cbpe"));
        for (size_t k = 0; k < DW_CBPE__COUNT; k++) {
            json_object_set_new(o, dw_cbpe_metric_name((enum dw_cbpe_metric)k),
                                dw_jnum(est->metric[k]));
        }
        json_object_set_new(o, "calibration_error",
                            json_pack("{s:o,s:o}", "scores", dw_jnum(cal.ece_scores), "calibrated",
                                      dw_jnum(cal.ece_calibrated)));
        json_object_set_new(o, "scores", json_integer((json_int_t)est->n));
        json_object_set_new(o, "reference_outcomes",
                            json_integer((json_int_t)(cal.n_neg + cal.n_pos)));
        *ready = 1;
    }
    for (int i = 0; i < 2; i++) {
        free(v[i]);
        free(w[i]);
    }
    dw_cbpe_calib_free(&cal);
    return o;
}

/* "estimated_drop": each estimate's drop against the baseline (dw_baseline_drop), with why
 * a drop is null in "undefined". */
static json_t *estimated_drop_json(const struct dw_baseline *bl, const struct dw_model_cfg *m,
                                   const struct dw_cbpe_estimate *est)
{
    double base[DW_PM_COUNT];
    baseline_values(bl, m, base);
    const char *missing = baseline_missing(bl, m);
    json_t *o = json_object(), *why = json_object();
    for (size_t c = 0; c < DW_CBPE__COUNT; c++) {
        const char *name = dw_cbpe_metric_name((enum dw_cbpe_metric)c);
        const char *reason = missing;
        double drop = NAN;
        for (size_t k = 0; k < DW_PM_COUNT && !missing; k++) {
            if (strcmp(dw_perf_metric_info((enum dw_perf_metric)k)->name, name) == 0) {
                reason =
                    m->baseline_set && !(m->baseline_set & (1u << k)) ? WHY_NOT_CONFIGURED : NULL;
                drop = reason ? NAN
                              : dw_baseline_drop((enum dw_perf_metric)k, base[k], est->metric[c],
                                                 &reason);
            }
        }
        json_object_set_new(o, name, dw_jnum(drop));
        if (reason) {
            json_object_set_new(why, name, json_string(reason));
        }
    }
    json_object_set_new(o, "undefined", why);
    return o;
}

void dw_baseline_judge_outputs(json_t *report, const struct dw_config *cfg,
                               const struct dw_model_cfg *m, const struct dw_baseline *bl,
                               struct dw_agg *agg, const struct dw_ref *ref)
{
    int final = json_is_true(json_object_get(report, "final"));
    if (agg && final) {
        const char *status = "waiting_for_baseline", *why = not_coming(bl);
        if (why) {
            status = WHY_UNAVAILABLE;
        } else if (dw_baseline_ready(bl) && bl->sum->out[DW_AGG_OUT_LABEL].count == 0) {
            status = WHY_UNAVAILABLE;
            why = WHY_OLD_BASELINE;
        }
        dw_eval_label_drift(report, cfg, agg, ref, dw_baseline_ready(bl) ? bl->sum : NULL, status,
                            why);
    }
    if (json_object_get(report, "estimated")) {
        return; /* a final report of run: the close report's (dw_eval_take_close) */
    }
    if (!agg) {
        json_object_set_new(report, "estimated", why_json("no_predictions", NULL));
        json_object_set_new(report, "estimated_drop", json_null());
        return;
    }
    struct dw_cbpe_estimate est;
    int ready = 0;
    json_object_set_new(report, "estimated", estimate_json(m, bl, agg, &est, &ready));
    json_object_set_new(report, "estimated_drop",
                        ready ? estimated_drop_json(bl, m, &est) : json_null());
}
