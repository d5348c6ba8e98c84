/*
 * dw_modelmetrics.c - the model series of /metrics, from digests of the window reports.
 *
 * Why this shape:
 * - Every pod must export the same model series (a scrape of any pod is complete), but only
 *   the evaluator pod evaluates. So the evaluator writes, in the MULTI/EXEC that commits a
 *   report and advances its cursor, a digest of that report per model and stage
 *   (`modelmetrics:<model>:<stage>`), and every pod reads the two digests per model each
 *   evaluation interval. A digest is what the series need and nothing else (hundreds of
 *   bytes where a report with its feature statistics is kilobytes), and the latest report is
 *   found without scanning report keys.
 * - driftwatch_model_predictions_total is a counter: it must only go up and count each
 *   prediction once, whichever pod is evaluator and however often a step is retried. The
 *   final digest carries the running totals (all versions and per version): the previous final
 *   digest's plus this window's final count, committed atomically with the cursor that moves
 *   past the window. A step retried after a failure did not commit, so it adds the window
 *   again to the same previous totals; a committed step is never evaluated again. The totals
 *   are therefore the exact sum of the final windows' predictions. (Final, not close: a window
 *   still takes late predictions until its close, and its final count is the one reported.)
 * - Series cannot be removed from the registry. A label set that is no longer reported (a
 *   version that stopped, a feature's method changed in the config) is set to NaN, which
 *   Prometheus stores as a value and every comparison with it is false, so an alert rule does
 *   not fire on a stale value and a panel shows a gap. Counters are left at their last total
 *   (still true). metrics.max_series bounds how many series this module creates; a refused
 *   one is counted by the caller.
 * - Model-wide series take version="all" ("" is the version of predictions without one,
 *   docs/messages.md); a version literally named "all" is not exported per version (it would
 *   overwrite the model-wide series) and the model-wide series stands for it.
 */
#include "driftwatch/core/dw_modelmetrics.h"

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Longest label text of a series (model, version, feature and metric names, escaped), bytes. */
#define MM_LABELS_MAX 2048
/* Escaped label value, bytes (names longer than this are cut by dw_metrics_escape). */
#define MM_VALUE_MAX 512

static const char *const HELP_PERF =
    "Realised performance of the model's latest final window report (labels at the label "
    "horizon), per metric; version=\"all\" is the model over all versions. NaN: undefined, or "
    "a version no longer reported.";
static const char *const HELP_EST =
    "Label-free estimate (CBPE) of the model's performance in its latest close window report, "
    "when there is one; NaN when the latest close report has none.";
static const char *const HELP_PRED =
    "Predictions of the model's windows that reached their final evaluation, summed by the "
    "evaluator in Redis (exact, each window once); version=\"all\" is every version.";
static const char *const HELP_LABELED =
    "Share of the predictions of the model's latest final window that have a label (NaN: no "
    "predictions).";
static const char *const HELP_SCORE =
    "Drift score of the feature in the model's latest close window report, by the feature's "
    "method (a p-value for ks, chi2 and g_test, a distance otherwise); NaN: not judged.";
static const char *const HELP_DRIFTED =
    "1 when the feature drifted in the model's latest close window report, 0 when it did not, "
    "NaN when it was not judged.";
static const char *const HELP_SHARE =
    "Share of the model's judged features that drifted in its latest close window report (NaN: "
    "none judged).";
static const char *const HELP_EVALUATED =
    "Wall-clock time of the model's latest window evaluation of the stage (close, final), "
    "seconds since the epoch.";

/* ---- digest ---- */

/* The number and null members of obj (nested objects and arrays left out), but the names of
 * `skip` (NULL-terminated), into a new object. */
static json_t *numbers_of(const json_t *obj, const char *const *skip)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        int skipped = 0;
        for (size_t i = 0; skip && skip[i]; i++) {
            skipped |= strcmp(k, skip[i]) == 0;
        }
        if (!skipped && (json_is_number(v) || json_is_null(v))) {
            json_object_set(out, k, v);
        }
    }
    return out;
}

static const char *const PERF_SKIP[] = {"roc_auc_error_bound", NULL};
static const char *const EST_SKIP[] = {"scores", "reference_outcomes", NULL};

/* The previous totals into *all and per version into vers (owned); -1 when malformed. */
static int prev_totals(const json_t *prev, json_int_t *all, json_t *vers, char *errstr,
                       size_t errstr_size)
{
    *all = 0;
    if (!prev) {
        return 0;
    }
    const json_t *t = json_object_get(prev, "totals");
    const json_t *p = json_object_get(t, "predictions");
    const json_t *pv = json_object_get(t, "versions");
    if (!json_is_integer(p) || json_integer_value(p) < 0 || !json_is_object(pv)) {
        return dw_err(errstr, errstr_size,
                      "totals: expected {\"predictions\": n >= 0, \"versions\": {...}}");
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pv, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            json_object_clear(vers);
            return dw_err(errstr, errstr_size, "totals.versions.%s: expected an integer >= 0", k);
        }
        json_object_set(vers, k, v);
    }
    *all = json_integer_value(p);
    return 0;
}

int dw_modelmetrics_digest(const json_t *report, const json_t *prev, int64_t evaluated_ms,
                           int64_t window_end_ms, json_t **out, char *errstr, size_t errstr_size)
{
    int final = json_is_true(json_object_get(report, "final"));
    json_t *d =
        json_pack("{s:s,s:I,s:I,s:I}", "stage", final ? "final" : "close", "window_start_ms",
                  json_integer_value(json_object_get(report, "window_start_ms")), "window_end_ms",
                  (json_int_t)window_end_ms, "evaluated_ms", (json_int_t)evaluated_ms);
    json_int_t preds = json_integer_value(json_object_get(report, "predictions"));
    json_object_set_new(d, "predictions", json_integer(preds));
    json_object_set_new(d, "labeled",
                        json_integer(json_integer_value(json_object_get(report, "labeled"))));
    json_object_set_new(d, "performance",
                        numbers_of(json_object_get(report, "performance"), PERF_SKIP));
    json_t *versions = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(report, "versions"), k, v)
    {
        json_object_set_new(versions, k,
                            json_pack("{s:I,s:o}", "predictions",
                                      json_integer_value(json_object_get(v, "predictions")),
                                      "performance",
                                      numbers_of(json_object_get(v, "performance"), PERF_SKIP)));
    }
    json_object_set_new(d, "versions", versions);
    const json_t *est = json_object_get(report, "estimated");
    const char *est_status = json_string_value(json_object_get(est, "status"));
    if (est_status && strcmp(est_status, "ready") == 0) {
        json_object_set_new(d, "estimated", numbers_of(est, EST_SKIP));
    }
    json_t *features = json_object();
    json_object_foreach(json_object_get(report, "features"), k, v)
    {
        const json_t *score = json_object_get(v, "score");
        const json_t *drift = json_object_get(v, "drift");
        json_object_set_new(
            features, k,
            json_pack("{s:O,s:O,s:O}", "method",
                      json_object_get(v, "method") ? json_object_get(v, "method") : json_null(),
                      "score", json_is_number(score) ? score : json_null(), "drift",
                      json_is_boolean(drift) ? drift : json_null()));
    }
    json_object_set_new(d, "features", features);
    const json_t *share = json_object_get(json_object_get(report, "drift"), "share");
    json_object_set_new(d, "drift_share",
                        json_is_number(share) ? json_copy((json_t *)share) : json_null());
    int rc = 0;
    if (final) {
        json_int_t all = 0;
        json_t *tv = json_object();
        rc = prev_totals(prev, &all, tv, errstr, errstr_size);
        if (rc != 0) {
            all = 0;
        }
        json_object_foreach(versions, k, v)
        {
            json_int_t n = json_integer_value(json_object_get(v, "predictions"));
            json_object_set_new(tv, k,
                                json_integer(json_integer_value(json_object_get(tv, k)) + n));
        }
        json_object_set_new(d, "totals",
                            json_pack("{s:I,s:o}", "predictions", all + preds, "versions", tv));
    }
    *out = d;
    return rc;
}

double dw_modelmetrics_close_delay(const json_t *close)
{
    const json_t *end = json_object_get(close, "window_end_ms");
    const json_t *at = json_object_get(close, "evaluated_ms");
    if (!json_is_integer(end) || !json_is_integer(at)) {
        return NAN;
    }
    return (double)(json_integer_value(at) - json_integer_value(end)) / 1000.0;
}

/* ---- publish ---- */

struct pub {
    struct dw_modelmetrics *mm;
    char model[MM_VALUE_MAX];  /* escaped */
    struct dw_metric **gauges; /* gauges set by this call */
    size_t n, cap;
    size_t refused;
};

/* A JSON number, or NaN (null, absent, anything else). */
static double num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Sets the series (name, labels) to value, creating it within the bound. */
static void put(struct pub *p, const char *name, const char *help, enum dw_metric_type type,
                const char *labels, double value)
{
    struct dw_metric *m = dw_metrics_find(name, labels);
    if (!m) {
        if (p->mm->n_series >= p->mm->max_series) {
            p->refused++;
            return;
        }
        m = dw_metrics_series(name, help, type, labels);
        p->mm->n_series++;
    }
    dw_metric_set(m, value);
    if (type == DW_METRIC_GAUGE) {
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 64;
            p->gauges = dw_realloc(p->gauges, p->cap * sizeof(*p->gauges));
        }
        p->gauges[p->n++] = m;
    }
}

/* `model="m",<name>="value"`, value escaped (label text for put) */
static void labels1(const struct pub *p, char *buf, const char *name, const char *value)
{
    char esc[MM_VALUE_MAX];
    dw_metrics_escape(value, esc, sizeof(esc));
    snprintf(buf, MM_LABELS_MAX, "model=\"%s\",%s=\"%s\"", p->model, name, esc);
}

static void labels2(const struct pub *p, char *buf, const char *n1, const char *v1, const char *n2,
                    const char *v2)
{
    char e1[MM_VALUE_MAX], e2[MM_VALUE_MAX];
    dw_metrics_escape(v1, e1, sizeof(e1));
    dw_metrics_escape(v2, e2, sizeof(e2));
    snprintf(buf, MM_LABELS_MAX, "model=\"%s\",%s=\"%s\",%s=\"%s\"", p->model, n1, e1, n2, e2);
}

/* driftwatch_model_performance of one version's metrics (or "all"). */
static void put_performance(struct pub *p, const char *version, const json_t *perf)
{
    const char *k;
    json_t *v;
    char labels[MM_LABELS_MAX];
    json_object_foreach((json_t *)perf, k, v)
    {
        labels2(p, labels, "version", version, "metric", k);
        put(p, "driftwatch_model_performance", HELP_PERF, DW_METRIC_GAUGE, labels, num(v));
    }
}

static void put_evaluated(struct pub *p, const char *stage, const json_t *d)
{
    char labels[MM_LABELS_MAX];
    labels1(p, labels, "stage", stage);
    put(p, "driftwatch_window_last_evaluated_timestamp_seconds", HELP_EVALUATED, DW_METRIC_GAUGE,
        labels, num(json_object_get(d, "evaluated_ms")) / 1000.0);
}

static void put_final(struct pub *p, const json_t *final)
{
    char labels[MM_LABELS_MAX];
    const char *k;
    json_t *v;
    put_performance(p, DW_MODELMETRICS_ALL_VERSIONS, json_object_get(final, "performance"));
    json_object_foreach(json_object_get(final, "versions"), k, v)
    {
        if (strcmp(k, DW_MODELMETRICS_ALL_VERSIONS) != 0) {
            put_performance(p, k, json_object_get(v, "performance"));
        }
    }
    const json_t *totals = json_object_get(final, "totals");
    labels1(p, labels, "version", DW_MODELMETRICS_ALL_VERSIONS);
    put(p, "driftwatch_model_predictions_total", HELP_PRED, DW_METRIC_COUNTER, labels,
        num(json_object_get(totals, "predictions")));
    json_object_foreach(json_object_get(totals, "versions"), k, v)
    {
        if (strcmp(k, DW_MODELMETRICS_ALL_VERSIONS) != 0) {
            labels1(p, labels, "version", k);
            put(p, "driftwatch_model_predictions_total", HELP_PRED, DW_METRIC_COUNTER, labels,
                num(v));
        }
    }
    double preds = num(json_object_get(final, "predictions"));
    snprintf(labels, sizeof(labels), "model=\"%s\"", p->model);
    put(p, "driftwatch_model_labeled_ratio", HELP_LABELED, DW_METRIC_GAUGE, labels,
        preds > 0 ? num(json_object_get(final, "labeled")) / preds : NAN);
    put_evaluated(p, "final", final);
}

static void put_close(struct pub *p, const json_t *close)
{
    char labels[MM_LABELS_MAX];
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(close, "estimated"), k, v)
    {
        labels1(p, labels, "metric", k);
        put(p, "driftwatch_model_estimated_performance", HELP_EST, DW_METRIC_GAUGE, labels, num(v));
    }
    json_object_foreach(json_object_get(close, "features"), k, v)
    {
        const char *method = json_string_value(json_object_get(v, "method"));
        if (method) {
            labels2(p, labels, "feature", k, "method", method);
            put(p, "driftwatch_feature_drift_score", HELP_SCORE, DW_METRIC_GAUGE, labels,
                num(json_object_get(v, "score")));
        }
        const json_t *drift = json_object_get(v, "drift");
        labels1(p, labels, "feature", k);
        put(p, "driftwatch_feature_drifted", HELP_DRIFTED, DW_METRIC_GAUGE, labels,
            json_is_boolean(drift) ? (double)json_is_true(drift) : NAN);
    }
    snprintf(labels, sizeof(labels), "model=\"%s\"", p->model);
    put(p, "driftwatch_dataset_drift_share", HELP_SHARE, DW_METRIC_GAUGE, labels,
        num(json_object_get(close, "drift_share")));
    put_evaluated(p, "close", close);
}

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (struct dw_metric *const *)a;
    uintptr_t y = (uintptr_t) * (struct dw_metric *const *)b;
    return (x > y) - (x < y);
}

size_t dw_modelmetrics_publish(struct dw_modelmetrics *mm, struct dw_modelmetrics_model *st,
                               const char *model, const json_t *close, const json_t *final)
{
    struct pub p = {.mm = mm};
    dw_metrics_escape(model, p.model, sizeof(p.model));
    if (final) {
        put_final(&p, final);
    }
    if (close) {
        put_close(&p, close);
    }
    if (p.n > 1) {
        qsort(p.gauges, p.n, sizeof(*p.gauges), ptr_cmp);
    }
    for (size_t i = 0; i < st->n_set; i++) {
        if (!p.n || !bsearch(&st->set[i], p.gauges, p.n, sizeof(*p.gauges), ptr_cmp)) {
            dw_metric_set(st->set[i], NAN);
        }
    }
    free(st->set);
    st->set = p.gauges;
    st->n_set = p.n;
    return p.refused;
}

void dw_modelmetrics_model_free(struct dw_modelmetrics_model *st)
{
    free(st->set);
    st->set = NULL;
    st->n_set = 0;
}
