/*
 * test_baseline.c - the performance baseline and the drops of a window against it
 * (dw_baseline): the sign of every metric's drop, the undefined cases, the baseline from the
 * merged counts of the reference windows, the configured baseline's precedence, the waiting
 * status, run's step over the reference windows and the stored state; the label-free
 * estimate fitted on the baseline's labelled scores and its drops (values worked out by hand).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_baseline.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_eval.h"

#include "dw_test.h"
#include "dw_test_json.h"

#define SIZE 60000LL          /* window length, ms */
#define START 1794999600000LL /* a window start, ms */

static struct dw_model_cfg g_cls = {.name = "fraud",
                                    .task = DW_TASK_CLASSIFICATION,
                                    .positive_class = "1",
                                    .reference = {.windows = 3}};
static struct dw_model_cfg g_reg = {.name = "price",
                                    .task = DW_TASK_REGRESSION,
                                    .positive_class = "1",
                                    .reference = {.windows = 3}};

static struct dw_config make_cfg(void)
{
    struct dw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.window_size_ms = SIZE;
    cfg.accuracy_drop = 0.05;
    cfg.min_samples = 10;
    cfg.reference_windows = 3;
    return cfg;
}

/* One labelled prediction of a classification window: pred and label "0" or "1", score < 0:
 * none. */
static void add_cls(struct dw_agg *agg, const char *pred, const char *label, double score)
{
    struct dw_prediction p;
    memset(&p, 0, sizeof(p));
    size_t slot = dw_agg_version_slot(agg, "v1", 2);
    dw_agg_add_prediction(agg, slot, &p);
    struct dw_outcome o = {.pred = pred, .label = label, .has_score = score >= 0, .score = score};
    dw_agg_add_outcome(agg, slot, &o);
}

/* n predictions of which `right` are right, positives first; scores spread by i. */
static struct dw_agg *cls_window(int64_t k, int n, int right)
{
    struct dw_agg *agg = dw_agg_new(&g_cls, START + k * SIZE);
    for (int i = 0; i < n; i++) {
        const char *label = i % 3 == 0 ? "1" : "0";
        const char *wrong = label[0] == '1' ? "0" : "1";
        const char *pred = i < right ? label : wrong;
        double score = (pred[0] == '1' ? 0.5 : 0.0) + 0.49 * (double)(i % 7) / 7.0;
        add_cls(agg, pred, label, score);
    }
    return agg;
}

static void add_reg(struct dw_agg *agg, double pred, double label)
{
    struct dw_prediction p;
    memset(&p, 0, sizeof(p));
    size_t slot = dw_agg_version_slot(agg, "v1", 2);
    dw_agg_add_prediction(agg, slot, &p);
    struct dw_outcome o = {
        .pred_is_num = 1, .label_is_num = 1, .pred_num = pred, .label_num = label};
    dw_agg_add_outcome(agg, slot, &o);
}

/* n regression predictions, label 10 + i % 5, off by err (alternating sign). */
static struct dw_agg *reg_window(int64_t k, int n, double err)
{
    struct dw_agg *agg = dw_agg_new(&g_reg, START + k * SIZE);
    for (int i = 0; i < n; i++) {
        double y = 10.0 + (double)(i % 5);
        add_reg(agg, y + (i % 2 ? err : -err), y);
    }
    return agg;
}

/* The window report of agg judged against bl. */
static json_t *judge(const struct dw_config *cfg, const struct dw_model_cfg *m, struct dw_agg *agg,
                     const struct dw_baseline *bl, uint64_t ref_predictions)
{
    json_t *rep = dw_eval_window(cfg, m, agg, NULL, 1);
    dw_baseline_judge(rep, cfg, m, bl, ref_predictions);
    return rep;
}

/* ------------------------------------------------------------------ drops */

/* Which way is worse, written out independently of dw_config.c's table. */
static const struct {
    const char *name;
    int higher_better;
} g_directions[] = {
    {"accuracy", 1}, {"precision", 1}, {"recall", 1},   {"f1", 1},    {"f1_macro", 1},
    {"f1_micro", 1}, {"roc_auc", 1},   {"log_loss", 0}, {"brier", 0}, {"mae", 0},
    {"rmse", 0},     {"mape", 0},      {"r2", 1},
};

static void test_drop_signs(void **state)
{
    assert_int_equal(DW_ARRAY_SIZE(g_directions), DW_PM_COUNT);
    for (size_t i = 0; i < DW_ARRAY_SIZE(g_directions); i++) {
        int k = dw_perf_metric_find(g_directions[i].name);
        assert_true(k >= 0);
        const char *why = "x";
        /* from 0.8 to 0.6: a fall, worse when higher is better */
        double d = dw_baseline_drop((enum dw_perf_metric)k, 0.8, 0.6, &why);
        assert_null(why);
        assert_near(d, g_directions[i].higher_better ? 0.25 : -0.25, 1e-15);
        /* from 0.8 to 1.0: a rise, worse when lower is better */
        d = dw_baseline_drop((enum dw_perf_metric)k, 0.8, 1.0, &why);
        assert_near(d, g_directions[i].higher_better ? -0.25 : 0.25, 1e-15);
        /* no change: exactly 0 */
        assert_double_exact(dw_baseline_drop((enum dw_perf_metric)k, 0.8, 0.8, &why), 0.0);
    }
    /* a negative baseline (R² below 0) divides by its magnitude: falling is still positive */
    const char *why = NULL;
    assert_near(dw_baseline_drop(DW_PM_R2, -0.5, -1.0, &why), 1.0, 1e-15);
    assert_near(dw_baseline_drop(DW_PM_R2, -0.5, 0.0, &why), -1.0, 1e-15);
}

static void test_drop_undefined(void **state)
{
    const char *why = NULL;
    assert_nan(dw_baseline_drop(DW_PM_ACCURACY, NAN, 0.5, &why));
    assert_string_equal(why, "baseline_undefined");
    assert_nan(dw_baseline_drop(DW_PM_ROC_AUC, 0.9, NAN, &why));
    assert_string_equal(why, "value_undefined");
    assert_nan(dw_baseline_drop(DW_PM_RMSE, 0.0, 1.0, &why));
    assert_string_equal(why, "baseline_zero");
    assert_nan(dw_baseline_drop(DW_PM_R2, 0.0, 0.5, &why));
    assert_string_equal(why, "baseline_zero");
    /* the baseline's reason comes first */
    assert_nan(dw_baseline_drop(DW_PM_LOG_LOSS, NAN, NAN, &why));
    assert_string_equal(why, "baseline_undefined");

    /* in a report: a window without scores has no roc_auc, log_loss or brier; the reference
     * windows had scores, so those drops are null for the window's reason */
    struct dw_config cfg = make_cfg();
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    struct dw_agg *ref = cls_window(0, 90, 81);
    dw_baseline_add(&bl, ref, 1);
    struct dw_agg *w = dw_agg_new(&g_cls, START + SIZE);
    for (int i = 0; i < 20; i++) {
        add_cls(w, "1", i < 15 ? "1" : "0", -1);
    }
    json_t *rep = judge(&cfg, &g_cls, w, &bl, 0);
    json_t *drop = json_object_get(json_object_get(rep, "performance"), "drop");
    json_t *undef = json_object_get(json_object_get(rep, "performance"), "drop_undefined");
    assert_true(json_is_null(json_object_get(drop, "roc_auc")));
    assert_true(json_is_null(json_object_get(drop, "log_loss")));
    assert_string_equal(jstr(undef, "roc_auc"), "value_undefined");
    assert_string_equal(jstr(undef, "brier"), "value_undefined");
    assert_true(json_is_number(json_object_get(drop, "accuracy")));
    assert_null(json_object_get(undef, "accuracy"));
    json_decref(rep);
    dw_agg_free(w);
    dw_agg_free(ref);
    dw_baseline_free(&bl);
}

/* ------------------------------------------------------------------ the windows' baseline */

/* The baseline is the performance of the merged counts (one long window), not the mean of the
 * windows' metrics; every metric as a window report computes it. */
static void test_baseline_from_merged_counts(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *w[3] = {cls_window(0, 100, 90), cls_window(1, 300, 240), cls_window(2, 60, 57)};
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    for (int i = 0; i < 3; i++) {
        assert_false(dw_baseline_ready(&bl));
        assert_int_equal(dw_baseline_add(&bl, w[i], 3), 1);
    }
    assert_int_equal(dw_baseline_add(&bl, w[1], 3), 0); /* merged once */
    assert_true(dw_baseline_ready(&bl));

    /* one window holding every outcome of the three: its metrics are the baseline's */
    struct dw_agg *all = dw_agg_new(&g_cls, START + 5 * SIZE);
    for (int i = 0; i < 3; i++) {
        dw_agg_merge(all, w[i]);
    }
    json_t *rep = judge(&cfg, &g_cls, all, &bl, 0);
    json_t *perf = json_object_get(rep, "performance");
    json_t *base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "status"), "ready");
    assert_string_equal(jstr(base, "source"), "windows");
    assert_int_equal(json_integer_value(json_object_get(base, "windows")), 3);
    assert_double_exact(jreal(base, "labeled_share"), 1.0);
    assert_near(jreal(base, "accuracy"), (90.0 + 240.0 + 57.0) / 460.0, 1e-15);
    for (size_t k = 0; k < DW_PM_MAE; k++) {
        const char *name = dw_perf_metric_info((enum dw_perf_metric)k)->name;
        assert_double_exact(jreal(json_object_get(perf, "baseline"), name), jreal(perf, name));
        assert_double_exact(jreal(base, name), jreal(perf, name));
        assert_double_exact(jreal(json_object_get(perf, "drop"), name), 0.0);
    }
    assert_int_equal(json_object_size(json_object_get(perf, "drop_undefined")), 0);
    assert_null(json_object_get(perf, "mae")); /* classification metrics only */
    assert_null(json_object_get(json_object_get(perf, "drop"), "rmse"));
    assert_double_exact(jreal(json_object_get(rep, "performance_drop"), "value"), 0.0);
    json_decref(rep);

    /* a worse window: accuracy 0.6 against 387/460 */
    struct dw_agg *bad = cls_window(6, 100, 60);
    rep = judge(&cfg, &g_cls, bad, &bl, 0);
    double want = (387.0 / 460.0 - 0.6) / (387.0 / 460.0);
    assert_near(jreal(json_object_get(json_object_get(rep, "performance"), "drop"), "accuracy"),
                want, 1e-15);
    json_t *pd = json_object_get(rep, "performance_drop");
    assert_string_equal(jstr(pd, "metric"), "accuracy");
    assert_near(jreal(pd, "value"), want, 1e-15);
    assert_near(jreal(pd, "current"), 0.6, 1e-15);
    assert_true(json_is_true(json_object_get(pd, "alert")));
    /* the older object: reference = the baseline accuracy */
    json_t *ad = json_object_get(rep, "accuracy_drop");
    assert_near(jreal(ad, "reference"), 387.0 / 460.0, 1e-15);
    assert_near(jreal(ad, "value"), want, 1e-15);
    assert_true(json_is_true(json_object_get(ad, "alert")));
    json_decref(rep);
    /* too few labels to alert */
    cfg.min_samples = 101;
    rep = judge(&cfg, &g_cls, bad, &bl, 0);
    assert_true(json_is_false(json_object_get(json_object_get(rep, "performance_drop"), "alert")));
    json_decref(rep);

    dw_agg_free(bad);
    dw_agg_free(all);
    for (int i = 0; i < 3; i++) {
        dw_agg_free(w[i]);
    }
    dw_baseline_free(&bl);
}

/* A profile's outcomes are the baseline at once (source profile); a profile without them makes
 * it unavailable and says why; the trailing windows' counts, merged, are a baseline of source
 * trailing, unavailable while they hold no prediction. */
static void test_profile_and_trailing(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *train = cls_window(-100, 500, 450);
    struct dw_agg *w = cls_window(1, 100, 60);
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    dw_baseline_set_profile(&bl, train);
    assert_true(dw_baseline_ready(&bl));
    json_t *rep = judge(&cfg, &g_cls, w, &bl, 0);
    json_t *base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "status"), "ready");
    assert_string_equal(jstr(base, "source"), "profile");
    assert_int_equal(jint(base, "labeled"), 500);
    assert_near(jreal(base, "accuracy"), 0.9, 1e-15);
    assert_near(jreal(json_object_get(rep, "performance_drop"), "value"), (0.9 - 0.6) / 0.9, 1e-15);
    json_decref(rep);

    dw_baseline_set_profile(&bl, NULL);
    assert_false(dw_baseline_ready(&bl));
    rep = judge(&cfg, &g_cls, w, &bl, 0);
    base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "status"), "unavailable");
    assert_string_equal(jstr(base, "source"), "profile");
    assert_non_null(strstr(jstr(base, "reason"), "no labelled outcomes"));
    assert_true(json_is_null(json_object_get(json_object_get(rep, "performance_drop"), "value")));
    assert_string_equal(
        jstr(json_object_get(json_object_get(rep, "performance"), "drop_undefined"), "accuracy"),
        "unavailable");
    json_decref(rep);

    /* trailing: two windows, accuracy 0.8 and 0.9 over 100 each, and an empty one */
    struct dw_agg *t[3] = {cls_window(-3, 100, 80), dw_agg_new(&g_cls, START - 2 * SIZE),
                           cls_window(-1, 100, 90)};
    dw_baseline_set_trailing(&bl, t, 3);
    assert_true(dw_baseline_ready(&bl));
    rep = judge(&cfg, &g_cls, w, &bl, 0);
    base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "source"), "trailing");
    assert_int_equal(jint(base, "windows"), 2);
    assert_near(jreal(base, "accuracy"), 0.85, 1e-15);
    json_decref(rep);
    dw_baseline_set_trailing(&bl, &t[1], 1);
    rep = judge(&cfg, &g_cls, w, &bl, 0);
    base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "status"), "unavailable");
    assert_non_null(strstr(jstr(base, "reason"), "no predictions in the 3 windows before"));
    json_decref(rep);
    for (int i = 0; i < 3; i++) {
        dw_agg_free(t[i]);
    }
    dw_baseline_free(&bl);
    dw_agg_free(w);
    dw_agg_free(train);
}

static json_t *close_report(const struct dw_config *cfg, const struct dw_baseline *bl, int n_neg,
                            int n_pos, double score_pos);

/* With a profile that holds no labels, or trailing windows without predictions, there is
 * nothing to wait for: the estimate and the label drift say they are unavailable, and why. */
static void test_outputs_unavailable_without_outcomes(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    dw_baseline_set_profile(&bl, NULL);
    json_t *rep = close_report(&cfg, &bl, 10, 10, 0.8);
    json_t *est = json_object_get(rep, "estimated");
    assert_string_equal(jstr(est, "status"), "unavailable");
    assert_non_null(strstr(jstr(est, "reason"), "profile holds no labelled outcomes"));
    json_decref(rep);
    dw_baseline_set_trailing(&bl, NULL, 0);
    rep = close_report(&cfg, &bl, 10, 10, 0.8);
    est = json_object_get(rep, "estimated");
    assert_string_equal(jstr(est, "status"), "unavailable");
    assert_non_null(strstr(jstr(est, "reason"), "no predictions in the windows before"));
    json_decref(rep);

    /* the label drift of a final report */
    dw_baseline_set_profile(&bl, NULL);
    struct dw_agg *agg = cls_window(1, 20, 10);
    json_t *fin = dw_eval_window(&cfg, &g_cls, agg, NULL, 1);
    dw_baseline_judge(fin, &cfg, &g_cls, &bl, 0);
    dw_baseline_judge_outputs(fin, &cfg, &g_cls, &bl, agg, NULL);
    json_t *ld = json_object_get(fin, "label_drift");
    assert_string_equal(jstr(ld, "status"), "unavailable");
    assert_non_null(strstr(jstr(ld, "reason"), "profile holds no labelled outcomes"));
    json_decref(fin);
    dw_agg_free(agg);
    dw_baseline_free(&bl);
}

/* Regression: drops of mae, rmse, mape (rises are worse) and r2; the rule's metric is rmse. */
static void test_regression(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *ref = reg_window(0, 100, 1.0);
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_reg);
    dw_baseline_add(&bl, ref, 1);
    struct dw_agg *w = reg_window(1, 100, 2.0); /* errors doubled */
    json_t *rep = judge(&cfg, &g_reg, w, &bl, 0);
    json_t *drop = json_object_get(json_object_get(rep, "performance"), "drop");
    assert_near(jreal(drop, "mae"), 1.0, 1e-12);
    assert_near(jreal(drop, "rmse"), 1.0, 1e-12);
    assert_true(jreal(drop, "mape") > 0.9);
    assert_true(jreal(drop, "r2") > 0.0); /* R² fell */
    assert_null(json_object_get(drop, "accuracy"));
    json_t *pd = json_object_get(rep, "performance_drop");
    assert_string_equal(jstr(pd, "metric"), "rmse");
    assert_near(jreal(pd, "value"), 1.0, 1e-12);
    assert_near(jreal(pd, "baseline"), 1.0, 1e-12);
    assert_near(jreal(pd, "current"), 2.0, 1e-12);
    assert_true(json_is_true(json_object_get(pd, "alert")));
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
    json_decref(rep);
    dw_agg_free(w);
    dw_agg_free(ref);
    dw_baseline_free(&bl);
}

/* ------------------------------------------------------------------ sources and status */

/* A configured baseline is the baseline, ready at once; the metrics it leaves out have none. */
static void test_config_precedence(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_model_cfg m = g_cls;
    m.baseline[DW_PM_ACCURACY] = 0.95;
    m.baseline[DW_PM_ROC_AUC] = 0.9;
    m.baseline_set = 1u << DW_PM_ACCURACY | 1u << DW_PM_ROC_AUC;
    struct dw_agg *ref = cls_window(0, 100, 90);
    struct dw_agg *w = cls_window(1, 100, 76);
    for (int windows = 0; windows < 2; windows++) { /* without, then with, a windows' baseline */
        struct dw_baseline bl;
        dw_baseline_init(&bl, &m);
        if (windows) {
            dw_baseline_add(&bl, ref, 1);
            assert_true(dw_baseline_ready(&bl));
        }
        json_t *rep = judge(&cfg, &m, w, &bl, 0);
        json_t *base = json_object_get(rep, "baseline");
        assert_string_equal(jstr(base, "status"), "ready");
        assert_string_equal(jstr(base, "source"), "config");
        assert_double_exact(jreal(base, "accuracy"), 0.95);
        assert_true(json_is_null(json_object_get(base, "precision")));
        assert_null(json_object_get(base, "labeled_share"));
        json_t *perf = json_object_get(rep, "performance");
        assert_near(jreal(json_object_get(perf, "drop"), "accuracy"), (0.95 - 0.76) / 0.95, 1e-15);
        assert_true(json_is_number(json_object_get(json_object_get(perf, "drop"), "roc_auc")));
        assert_true(json_is_null(json_object_get(json_object_get(perf, "drop"), "f1")));
        assert_string_equal(jstr(json_object_get(perf, "drop_undefined"), "f1"), "not_configured");
        assert_near(jreal(json_object_get(rep, "accuracy_drop"), "reference"), 0.95, 0.0);
        json_decref(rep);
        dw_baseline_free(&bl);
    }
    dw_agg_free(w);
    dw_agg_free(ref);
}

/* Until the reference windows' labels are final every report says so, with the share of
 * their predictions whose labels the baseline holds. */
static void test_waiting(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *w = cls_window(5, 100, 90);
    /* nothing collected (the reference is not even built): share 0 */
    json_t *rep = judge(&cfg, &g_cls, w, NULL, 0);
    json_t *base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "status"), "waiting_for_labels");
    assert_string_equal(jstr(base, "source"), "windows");
    assert_double_exact(jreal(base, "labeled_share"), 0.0);
    assert_int_equal(json_integer_value(json_object_get(base, "windows")), 0);
    assert_int_equal(json_integer_value(json_object_get(base, "windows_needed")), 3);
    assert_true(json_is_null(json_object_get(base, "accuracy")));
    json_t *perf = json_object_get(rep, "performance");
    assert_true(json_is_null(json_object_get(json_object_get(perf, "baseline"), "accuracy")));
    assert_true(json_is_null(json_object_get(json_object_get(perf, "drop"), "accuracy")));
    assert_string_equal(jstr(json_object_get(perf, "drop_undefined"), "accuracy"),
                        "waiting_for_labels");
    json_t *pd = json_object_get(rep, "performance_drop");
    assert_true(json_is_null(json_object_get(pd, "value")));
    assert_string_equal(jstr(pd, "reason"), "waiting_for_labels");
    assert_true(json_is_false(json_object_get(pd, "alert")));
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
    json_decref(rep);

    /* one of three reference windows final (80 of its 100 predictions labelled), the
     * reference holding 300 predictions: 80 / 300 */
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    struct dw_agg *r0 = dw_agg_new(&g_cls, START);
    for (int i = 0; i < 100; i++) {
        struct dw_prediction p;
        memset(&p, 0, sizeof(p));
        dw_agg_add_prediction(r0, dw_agg_version_slot(r0, "v1", 2), &p);
    }
    for (int i = 0; i < 80; i++) {
        struct dw_outcome o = {.pred = "1", .label = "1"};
        dw_agg_add_outcome(r0, dw_agg_version_slot(r0, "v1", 2), &o);
    }
    dw_baseline_add(&bl, r0, 3);
    rep = judge(&cfg, &g_cls, w, &bl, 300);
    base = json_object_get(rep, "baseline");
    assert_string_equal(jstr(base, "status"), "waiting_for_labels");
    assert_near(jreal(base, "labeled_share"), 80.0 / 300.0, 1e-15);
    assert_int_equal(json_integer_value(json_object_get(base, "windows")), 1);
    json_decref(rep);

    /* an empty window: no performance, the baseline still said */
    struct dw_agg *empty = dw_agg_new(&g_cls, START + 9 * SIZE);
    rep = judge(&cfg, &g_cls, empty, &bl, 300);
    assert_string_equal(jstr(json_object_get(rep, "baseline"), "status"), "waiting_for_labels");
    assert_true(json_is_null(json_object_get(rep, "performance_drop")));
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
    json_decref(rep);
    dw_agg_free(empty);
    dw_agg_free(r0);
    dw_agg_free(w);
    dw_baseline_free(&bl);
}

/* ------------------------------------------------------------------ run's step and state */

static void test_step_and_state(void **state)
{
    json_t *refwins = json_pack("[I,I,I]", (json_int_t)START, (json_int_t)(START + 2 * SIZE),
                                (json_int_t)(START + 3 * SIZE));
    struct dw_agg *w0 = cls_window(0, 50, 45), *w2 = cls_window(2, 70, 60);
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    assert_int_equal(dw_baseline_step(&bl, refwins, START, w0), 1);
    assert_int_equal(dw_baseline_step(&bl, refwins, START, w0), 0); /* repeated step */
    /* a window that is not a reference window, and an empty run: nothing */
    struct dw_agg *w1 = cls_window(1, 10, 1);
    assert_int_equal(dw_baseline_step(&bl, refwins, START + SIZE, w1), 0);
    assert_int_equal(dw_baseline_step(&bl, refwins, START + SIZE, NULL), 0);
    assert_int_equal(dw_baseline_step(&bl, refwins, START + 2 * SIZE, w2), 1);
    assert_false(dw_baseline_ready(&bl));
    assert_int_equal(bl.needed, 3);

    /* the state text round-trips exactly */
    char *text = dw_baseline_dump(&bl);
    struct dw_baseline back;
    char err[256];
    assert_int_equal(dw_baseline_load(&back, &g_cls, text, err, sizeof(err)), 0);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.needed, 3);
    char *again = dw_baseline_dump(&back);
    assert_string_equal(again, text);
    free(again);
    free(text);
    struct dw_agg *w3 = cls_window(3, 40, 30);
    assert_int_equal(dw_baseline_step(&back, refwins, START + 3 * SIZE, w3), 1);
    assert_true(dw_baseline_ready(&back));
    struct dw_config cfg = make_cfg();
    json_t *rep = judge(&cfg, &g_cls, w1, &back, 0);
    assert_near(jreal(json_object_get(rep, "baseline"), "accuracy"), 135.0 / 160.0, 1e-15);
    json_decref(rep);
    dw_baseline_free(&back);

    /* a reference window passed without being merged (state of an older version): missed */
    struct dw_baseline late;
    dw_baseline_init(&late, &g_cls);
    assert_int_equal(dw_baseline_step(&late, refwins, START + 2 * SIZE, w2), 1);
    assert_int_equal(late.missed, 1);
    assert_false(dw_baseline_ready(&late));
    rep = judge(&cfg, &g_cls, w1, &late, 0);
    assert_string_equal(jstr(json_object_get(rep, "baseline"), "status"), "unavailable");
    assert_contains(jstr(json_object_get(rep, "baseline"), "reason"), "models.fraud.baseline");
    assert_string_equal(
        jstr(json_object_get(json_object_get(rep, "performance"), "drop_undefined"), "accuracy"),
        "unavailable");
    json_decref(rep);
    dw_baseline_free(&late);

    /* no state yet; unreadable states are refused and leave an empty baseline */
    assert_int_equal(dw_baseline_load(&back, &g_cls, NULL, err, sizeof(err)), 0);
    assert_int_equal(back.n, 0);
    dw_baseline_free(&back);
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"format\":2,\"needed\":3,\"windows\":[],\"missed\":false}",
        "{\"format\":1,\"needed\":-1,\"windows\":[],\"missed\":false}",
        "{\"format\":1,\"needed\":3,\"windows\":[1,1],\"missed\":false,\"counts\":\"AA==\"}",
        "{\"format\":1,\"needed\":3,\"windows\":[1],\"missed\":false}",
        "{\"format\":1,\"needed\":3,\"windows\":[],\"missed\":false,\"counts\":\"AA==\"}",
        "{\"format\":1,\"needed\":3,\"windows\":[1],\"missed\":false,\"counts\":\"!!\"}",
        "{\"format\":1,\"needed\":3,\"windows\":[1],\"missed\":false,\"counts\":\"AAAA\"}",
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        assert_int_equal(dw_baseline_load(&back, &g_cls, bad[i], err, sizeof(err)), -1);
        assert_prefix(err, "baseline state");
        assert_int_equal(back.n, 0);
        assert_null(back.sum);
        dw_baseline_free(&back);
    }
    dw_agg_free(w0);
    dw_agg_free(w1);
    dw_agg_free(w2);
    dw_agg_free(w3);
    dw_baseline_free(&bl);
    json_decref(refwins);
}

/* ------------------------------------------------------------------ label-free estimates */

/* A prediction of class pred with a score, labelled `label` unless NULL. */
static void add_scored(struct dw_agg *agg, const char *pred, double score, const char *label)
{
    struct dw_prediction p;
    memset(&p, 0, sizeof(p));
    snprintf(p.pred.text, sizeof(p.pred.text), "%s", pred);
    p.pred.len = strlen(pred);
    p.has_score = 1;
    p.score = score;
    size_t slot = dw_agg_version_slot(agg, "v1", 2);
    dw_agg_add_prediction(agg, slot, &p);
    if (label) {
        struct dw_outcome o = {.pred = pred, .label = label, .has_score = 1, .score = score};
        dw_agg_add_outcome(agg, slot, &o);
    }
}

/* The reference: score 0.2 (predicted "0") with labels 0,0,0,0,1 and score 0.8 (predicted "1")
 * with labels 1,1,1,1,0. Isotonic calibration: 0.2 -> 0.2, 0.8 -> 0.8, linear between. */
static struct dw_agg *cbpe_reference(void)
{
    struct dw_agg *agg = dw_agg_new(&g_cls, START);
    for (int i = 0; i < 5; i++) {
        add_scored(agg, "0", 0.2, i < 4 ? "0" : "1");
        add_scored(agg, "1", 0.8, i < 4 ? "1" : "0");
    }
    return agg;
}

/* The close report of a window of n_neg predictions "0" at 0.2 and n_pos "1" at score_pos. */
static json_t *close_report(const struct dw_config *cfg, const struct dw_baseline *bl, int n_neg,
                            int n_pos, double score_pos)
{
    struct dw_agg *agg = dw_agg_new(&g_cls, START + 5 * SIZE);
    for (int i = 0; i < n_neg; i++) {
        add_scored(agg, "0", 0.2, NULL);
    }
    for (int i = 0; i < n_pos; i++) {
        add_scored(agg, "1", score_pos, NULL);
    }
    json_t *rep = dw_eval_window(cfg, &g_cls, agg, NULL, 0);
    dw_baseline_judge(rep, cfg, &g_cls, bl, 0);
    dw_baseline_judge_outputs(rep, cfg, &g_cls, bl, agg, NULL);
    dw_agg_free(agg);
    return rep;
}

/* The estimate of a close report from the window's scores and the calibration fitted on the
 * baseline's labelled scores, worked out by hand: 10 predictions at 0.2 ("0") and 10 at 0.8
 * ("1") expect tp = 8, fp = 2, fn = 2, tn = 8; the expected ROC curve has the one point
 * (FPR 0.2, TPR 0.8), so AUC = 0.2 * 0.8 / 2 + 0.8 * (0.8 + 1) / 2 = 0.8. */
static void test_estimated(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_cls);
    struct dw_agg *ref = cbpe_reference();

    /* no baseline yet: it says what it waits for */
    json_t *rep = close_report(&cfg, &bl, 10, 10, 0.8);
    json_t *est = json_object_get(rep, "estimated");
    assert_string_equal(jstr(est, "status"), "waiting_for_baseline");
    assert_contains(jstr(est, "reason"), "label horizon");
    assert_true(json_is_null(json_object_get(rep, "estimated_drop")));
    json_decref(rep);

    assert_int_equal(dw_baseline_add(&bl, ref, 1), 1);
    rep = close_report(&cfg, &bl, 10, 10, 0.8);
    est = json_object_get(rep, "estimated");
    assert_string_equal(jstr(est, "status"), "ready");
    assert_string_equal(jstr(est, "method"), "cbpe");
    assert_near(jreal(est, "accuracy"), 0.8, 1e-12);
    assert_near(jreal(est, "precision"), 0.8, 1e-12);
    assert_near(jreal(est, "recall"), 0.8, 1e-12);
    assert_near(jreal(est, "f1"), 0.8, 1e-12);
    assert_near(jreal(est, "roc_auc"), 0.8, 1e-12);
    assert_int_equal(jint(est, "scores"), 20);
    assert_int_equal(jint(est, "reference_outcomes"), 10);
    /* NannyML's ECE of the raw scores: 10 outcomes, 5 bins of 2 by rank (ties: negatives
     * first): |.2-0|, |.2-0|, |.5-.5|, |.8-1|, |.8-1|, each weighing 2/10: 0.16 */
    json_t *ce = json_object_get(est, "calibration_error");
    assert_near(jreal(ce, "scores"), 0.16, 1e-12);
    assert_true(json_is_number(json_object_get(ce, "calibrated")));
    /* the baseline (accuracy 0.8, precision 0.8, ...) against the same expectations: 0 */
    json_t *drop = json_object_get(rep, "estimated_drop");
    assert_near(jreal(drop, "accuracy"), 0.0, 1e-12);
    assert_near(jreal(drop, "roc_auc"), 0.0, 1e-12);
    json_decref(rep);

    /* 20 predictions at 0.5, all "1": p = 0.5 each, estimated accuracy 0.5, a drop of
     * (0.8 - 0.5) / 0.8 = 0.375, which a rule on estimated_drop.accuracy sees at the close */
    rep = close_report(&cfg, &bl, 0, 20, 0.5);
    assert_near(jreal(json_object_get(rep, "estimated"), "accuracy"), 0.5, 1e-12);
    assert_near(jreal(json_object_get(rep, "estimated_drop"), "accuracy"), 0.375, 1e-12);
    json_t *alert =
        jrule_alert(rep, "estimated_accuracy", "estimated_drop.accuracy > 0.05", DW_STAGE_CLOSE);
    assert_string_equal(jstr(alert, "status"), "firing");
    assert_near(jreal(alert, "value"), 0.375, 1e-12);
    json_decref(alert);

    /* the final report carries the close report's estimate beside its performance */
    struct dw_agg *counts = dw_agg_new(&g_cls, START + 5 * SIZE);
    json_t *fin = dw_eval_window(&cfg, &g_cls, counts, NULL, 1);
    assert_int_equal(dw_eval_take_close(fin, rep), 0);
    dw_baseline_judge_outputs(fin, &cfg, &g_cls, &bl, counts, NULL);
    assert_near(jreal(json_object_get(fin, "estimated"), "accuracy"), 0.5, 1e-12);
    assert_near(jreal(json_object_get(fin, "estimated_drop"), "accuracy"), 0.375, 1e-12);
    json_decref(fin);
    dw_agg_free(counts);
    json_decref(rep);

    /* a window without scores, a regression model, a multi-class reference: unavailable */
    rep = close_report(&cfg, &bl, 0, 0, 0.5);
    assert_string_equal(jstr(json_object_get(rep, "estimated"), "status"), "no_predictions");
    json_decref(rep);
    struct dw_agg *plain = cls_window(6, 20, 18);
    rep = dw_eval_window(&cfg, &g_cls, plain, NULL, 0);
    dw_baseline_judge_outputs(rep, &cfg, &g_cls, &bl, plain, NULL);
    assert_string_equal(jstr(json_object_get(rep, "estimated"), "reason"),
                        "the window's predictions carry no score");
    json_decref(rep);
    dw_agg_free(plain);
    struct dw_agg *reg = reg_window(0, 10, 1.0);
    rep = dw_eval_window(&cfg, &g_reg, reg, NULL, 0);
    dw_baseline_judge_outputs(rep, &cfg, &g_reg, &bl, reg, NULL);
    assert_string_equal(jstr(json_object_get(rep, "estimated"), "status"), "unavailable");
    json_decref(rep);
    dw_agg_free(reg);
    struct dw_agg *three = cbpe_reference();
    add_scored(three, "2", 0.1, "2");
    struct dw_baseline multi;
    dw_baseline_init(&multi, &g_cls);
    dw_baseline_add(&multi, three, 1);
    rep = close_report(&cfg, &multi, 10, 10, 0.8);
    assert_contains(jstr(json_object_get(rep, "estimated"), "reason"), "more than two classes");
    json_decref(rep);
    dw_baseline_free(&multi);
    dw_agg_free(three);
    dw_baseline_free(&bl);
    dw_agg_free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_signs),
        cmocka_unit_test(test_drop_undefined),
        cmocka_unit_test(test_baseline_from_merged_counts),
        cmocka_unit_test(test_regression),
        cmocka_unit_test(test_profile_and_trailing),
        cmocka_unit_test(test_outputs_unavailable_without_outcomes),
        cmocka_unit_test(test_config_precedence),
        cmocka_unit_test(test_waiting),
        cmocka_unit_test(test_step_and_state),
        cmocka_unit_test(test_estimated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
