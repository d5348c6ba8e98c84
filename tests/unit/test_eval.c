/*
 * test_eval.c - reference profile, PSI, performance metrics, window report, findings and
 * payloads. Expected values are worked out by hand (or by a separate loop written here, with
 * the formula of docs/statistics.md), never by calling the code under test; the literal
 * constants were checked with Python's math/hashlib:
 *   PSI([.5,.5,0] | [.25,.25,.5]) = .5 ln 2 + (1e-4 - .5) ln(1e-4 / .5) = 4.60431846666895
 *   sklearn's regression example y=[3,-0.5,2,7], p=[2.5,0,2,8]: MAE .5, RMSE .6123724356957945,
 *   R² .9486081370449679, MAPE .3273809523809524.
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

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_baseline.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/core/dw_kll.h"
#include "driftwatch/core/dw_stats.h"

#include "dw_test.h"
#include "dw_test_json.h"

#define START 1794999900000LL /* 2026-11-18T11:05:00Z */
#define SIZE 300000LL         /* window size, milliseconds (5 minutes) */
#define EPS 1e-4              /* the PSI empty-bin proportion, restated for the tests */

static struct dw_feature_cfg g_feats[] = {
    {"amount", DW_FEATURE_NUMERIC},
    {"country", DW_FEATURE_CATEGORICAL},
    {"age", DW_FEATURE_NUMERIC},
};
static struct dw_model_cfg g_model = {.name = "fraud",
                                      .task = DW_TASK_CLASSIFICATION,
                                      .positive_class = "1",
                                      .features = g_feats,
                                      .n_features = 3};

static struct dw_feature_cfg g_reg_feats[] = {{"x", DW_FEATURE_NUMERIC}};
static struct dw_model_cfg g_reg_model = {.name = "price",
                                          .task = DW_TASK_REGRESSION,
                                          .positive_class = "1",
                                          .features = g_reg_feats,
                                          .n_features = 1};

static struct dw_config make_cfg(void)
{
    struct dw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.group = "prod";
    cfg.window_size_ms = SIZE;
    cfg.psi_threshold = 0.2;
    cfg.accuracy_drop = 0.05;
    cfg.min_samples = 10;
    cfg.psi_bins = 10;
    cfg.reference_windows = 1;
    /* the detectors.* defaults */
    cfg.drift_share = 0.5;
    cfg.alpha = 0.05;
    cfg.auto_max_sample = 1000;
    cfg.wasserstein_threshold = 0.1;
    cfg.js_threshold = 0.1;
    cfg.kl_threshold = 0.1;
    cfg.hellinger_threshold = 0.1;
    cfg.tvd_threshold = 0.1;
    return cfg;
}

/* Every feature of g_model judged by PSI (models.fraud.features.<f>: {method: psi}). */
static struct dw_feature_detector g_psi_dets[] = {
    {"fraud", "amount", DW_METHOD_PSI, NAN},
    {"fraud", "country", DW_METHOD_PSI, NAN},
    {"fraud", "age", DW_METHOD_PSI, NAN},
};

/* One prediction of model g_model: NaN amount/age or NULL country = missing. */
static void add3(struct dw_agg *agg, const char *version, double amount, const char *country,
                 double age)
{
    struct dw_prediction *p = calloc(1, sizeof(*p) + 3 * sizeof(struct dw_val));
    assert_non_null(p);
    p->model = &g_model;
    p->features[0].kind = isnan(amount) ? DW_VAL_MISSING : DW_VAL_NUM;
    p->features[0].num = amount;
    p->features[1].kind = country ? DW_VAL_STR : DW_VAL_MISSING;
    p->features[1].str = country;
    p->features[1].len = country ? strlen(country) : 0;
    p->features[2].kind = isnan(age) ? DW_VAL_MISSING : DW_VAL_NUM;
    p->features[2].num = age;
    dw_agg_add_prediction(agg, dw_agg_version_slot(agg, version, strlen(version)), p);
    free(p);
}

/* A joined label: pred/label class texts, score < 0 = no score. */
static void outcome(struct dw_agg *agg, const char *version, const char *pred, const char *label,
                    double score)
{
    struct dw_outcome o = {.pred = pred, .label = label};
    if (score >= 0) {
        o.has_score = 1;
        o.score = score;
    }
    dw_agg_add_outcome(agg, dw_agg_version_slot(agg, version, strlen(version)), &o);
}

/* n predictions with `correct` of them labelled right (pred "1"; label "1" or "0");
 * amounts base + 0 .. base + n-1. */
static void add_labeled(struct dw_agg *agg, const char *version, int n, int correct, double base)
{
    for (int i = 0; i < n; i++) {
        add3(agg, version, base + i, "DE", NAN);
        outcome(agg, version, "1", i < correct ? "1" : "0", -1);
    }
}

static json_t *jpath(const json_t *obj, const char *a, const char *b)
{
    return json_object_get(json_object_get(obj, a), b);
}

static json_t *jpath3(const json_t *obj, const char *a, const char *b, const char *c)
{
    return json_object_get(jpath(obj, a, b), c);
}

/* PSI written out again for the tests: independent of dw_psi(). */
static double psi_by_hand(const double *c, const double *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double ci = c[i] == 0 ? EPS : c[i];
        double ri = r[i] == 0 ? EPS : r[i];
        s += (ci - ri) * log(ci / ri);
    }
    return s;
}

/* ------------------------------------------------------------------ PSI */

static void test_psi_known(void **state)
{
    double cur[] = {0.5, 0.5, 0.0};
    double ref[] = {0.25, 0.25, 0.5};
    assert_float_equal(dw_psi(cur, ref, 3), 4.60431846666895, 1e-12);
    /* both bins empty: 1e-4 on both sides, contributes 0 */
    double a[] = {0.5, 0.5, 0.0};
    assert_float_equal(dw_psi(a, a, 3), 0.0, 0.0);
    /* symmetric in a swap of sides: (c-r)ln(c/r) = (r-c)ln(r/c) */
    assert_float_equal(dw_psi(ref, cur, 3), 4.60431846666895, 1e-12);
    /* no renormalisation: one empty side of a 2-bin split */
    double c2[] = {1.0, 0.0};
    double r2[] = {0.5, 0.5};
    double want = 0.5 * log(2.0) + (EPS - 0.5) * log(EPS / 0.5);
    assert_float_equal(dw_psi(c2, r2, 2), want, 1e-12);
}

/* ------------------------------------------------------------------ reference edges */

static void test_ref_deciles_1_to_100(void **state)
{
    struct dw_agg *w1 = dw_agg_new(&g_model, START);
    struct dw_agg *w2 = dw_agg_new(&g_model, START + SIZE);
    for (int i = 1; i <= 100; i++) {
        add3(i <= 50 ? w1 : w2, "v1", (double)i, "DE", NAN);
    }
    struct dw_agg *aggs[] = {w1, w2};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 2, 10);
    assert_non_null(ref);
    assert_int_equal(ref->windows, 2);
    assert_int_equal(ref->predictions, 100);
    assert_int_equal(ref->first_start_ms, START);
    assert_int_equal(ref->last_start_ms, START + SIZE);
    const struct dw_ref_feature *rf = &ref->feats[0];
    assert_string_equal(rf->name, "amount");
    assert_int_equal(rf->count, 100);
    /* type 7: q = k/10, h = 99 q, x = 1 + h  ->  10.9, 20.8, ..., 90.1 */
    static const double want[] = {10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1};
    assert_int_equal(rf->n_edges, 9);
    for (size_t i = 0; i < 9; i++) {
        assert_float_equal(rf->edges[i], want[i], 1e-9);
    }
    for (size_t i = 0; i < 10; i++) {
        assert_float_equal(rf->props[i], 0.1, 1e-15);
    }
    assert_float_equal(rf->mean, 50.5, 1e-12);
    assert_float_equal(rf->std, sqrt((100.0 * 100.0 - 1.0) / 12.0), 1e-12); /* population */
    assert_float_equal(rf->min, 1.0, 0.0);
    assert_float_equal(rf->max, 100.0, 0.0);
    /* categorical: one category */
    assert_int_equal(ref->feats[1].n_cats, 1);
    assert_string_equal(ref->feats[1].cats[0], "DE");
    assert_float_equal(ref->feats[1].cat_props[0], 1.0, 0.0);
    /* all-missing numeric feature: no reference distribution */
    assert_int_equal(ref->feats[2].count, 0);
    assert_null(ref->feats[2].props);
    dw_ref_free(ref);
    dw_agg_free(w1);
    dw_agg_free(w2);
    assert_null(dw_ref_build(&g_model, NULL, 0, 10));
}

static void test_ref_duplicate_edges(void **state)
{
    /* 60 zeros, 20 ones, then 2..21. Type 7 with h = 99q:
     * q=.1..0.5 -> 0; q=.6: h=59.4 between x[59]=0 and x[60]=1 -> 0.4; q=.7: h=69.3 -> 1;
     * q=.8: h=79.2 between x[79]=1 and x[80]=2 -> 1.2; q=.9: h=89.1 between 11 and 12 -> 11.1.
     * Distinct edges 0, 0.4, 1, 1.2, 11.1; bins (-inf,0) [0,.4) [.4,1) [1,1.2) [1.2,11.1)
     * [11.1,inf) hold 0, 60, 0, 20, 10 (2..11), 10 (12..21). */
    struct dw_agg *w = dw_agg_new(&g_model, START);
    for (int i = 0; i < 60; i++) {
        add3(w, "v1", 0.0, "DE", NAN);
    }
    for (int i = 0; i < 20; i++) {
        add3(w, "v1", 1.0, "DE", NAN);
    }
    for (int i = 2; i <= 21; i++) {
        add3(w, "v1", (double)i, "DE", NAN);
    }
    struct dw_agg *aggs[] = {w};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    const struct dw_ref_feature *rf = &ref->feats[0];
    static const double edges[] = {0.0, 0.4, 1.0, 1.2, 11.1};
    static const double props[] = {0.0, 0.6, 0.0, 0.2, 0.1, 0.1};
    assert_int_equal(rf->n_edges, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_float_equal(rf->edges[i], edges[i], 1e-9);
    }
    for (size_t i = 0; i < 6; i++) {
        assert_float_equal(rf->props[i], props[i], 1e-15);
    }
    dw_ref_free(ref);
    dw_agg_free(w);
}

/* ------------------------------------------------------------------ bin counts */

static void test_bin_counts(void **state)
{
    /* A value equal to an edge belongs to the bin that edge opens: [e_i, e_i+1). */
    struct dw_kll *sk = dw_kll_new(0, 0, 1);
    static const double vals[] = {0.5, 1.0, 1.0, 2.0, 3.0};
    for (size_t i = 0; i < 5; i++) {
        dw_kll_update(sk, vals[i]);
    }
    static const double edges[] = {1.0, 2.0};
    uint64_t counts[3];
    dw_eval_bin_counts(sk, edges, 2, counts);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 2);
    uint64_t one;
    dw_eval_bin_counts(sk, NULL, 0, &one);
    assert_int_equal(one, 5);
    dw_kll_destroy(sk);
}

static void test_numeric_psi_in_report(void **state)
{
    struct dw_config cfg = make_cfg();
    cfg.min_samples = 5;
    cfg.detectors = g_psi_dets;
    cfg.n_detectors = 3;
    struct dw_agg *r = dw_agg_new(&g_model, START);
    for (int i = 1; i <= 100; i++) {
        add3(r, "v1", (double)i, "DE", NAN);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);

    /* Current: bins of the deciles 10.9 .. 90.1 hold 2 (-3, 5), 2 (11, 15), 0, 0, 0,
     * 1 (50.5 is in [50.5, 60.4)), 0, 0, 0, 3 (95, 100, 200); one missing. */
    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    static const double vals[] = {5, 11, 15, 50.6, 95, 100, 200, -3};
    for (size_t i = 0; i < 8; i++) {
        add3(w, "v1", vals[i], "DE", NAN);
    }
    add3(w, "v1", NAN, "DE", NAN);
    json_t *rep = dw_eval_window(&cfg, &g_model, w, ref, 0);
    json_t *f = jpath(rep, "features", "amount");
    assert_non_null(f);
    assert_string_equal(jstr(f, "type"), "numeric");
    assert_int_equal(jint(f, "count"), 8);
    assert_int_equal(jint(f, "missing"), 1);
    assert_float_equal(jreal(f, "mean"), (5 + 11 + 15 + 50.6 + 95 + 100 + 200 - 3) / 8.0, 1e-9);
    assert_float_equal(jreal(f, "min"), -3.0, 0.0);
    assert_float_equal(jreal(f, "max"), 200.0, 0.0);
    double cur[10] = {2 / 8.0, 2 / 8.0, 0, 0, 0, 1 / 8.0, 0, 0, 0, 3 / 8.0};
    double rp[10];
    for (size_t i = 0; i < 10; i++) {
        rp[i] = 0.1;
    }
    double want = psi_by_hand(cur, rp, 10);
    assert_float_equal(jreal(f, "psi"), want, 1e-12);
    assert_string_equal(jstr(f, "method"), "psi");
    assert_float_equal(jreal(f, "threshold"), 0.2, 0.0);
    assert_true(json_is_true(json_object_get(f, "drift")));
    /* age has no values and no reference: psi and drift null */
    json_t *age = jpath(rep, "features", "age");
    assert_true(json_is_null(json_object_get(age, "psi")));
    assert_true(json_is_null(json_object_get(age, "drift")));
    assert_true(json_is_null(json_object_get(age, "mean")));
    /* country is DE in both: psi 0, evaluated; share = 1 of 2 */
    assert_float_equal(jreal(jpath(rep, "features", "country"), "psi"), 0.0, 0.0);
    assert_float_equal(jreal(json_object_get(rep, "drift"), "share"), 0.5, 0.0);
    assert_true(json_is_true(jpath(rep, "drift", "dataset")));
    json_decref(rep);

    /* without a reference: psi null, unseen null */
    rep = dw_eval_window(&cfg, &g_model, w, NULL, 0);
    assert_true(json_is_null(json_object_get(jpath(rep, "features", "amount"), "psi")));
    assert_true(json_is_null(json_object_get(jpath(rep, "features", "country"), "unseen")));
    assert_string_equal(jstr(json_object_get(rep, "reference"), "status"), "collecting");
    assert_true(json_is_null(jpath(rep, "drift", "share")));
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));
    json_decref(rep);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* ------------------------------------------------------------------ categorical */

static void test_categorical_psi_new_and_vanished(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START);
    for (int i = 0; i < 100; i++) {
        add3(r, "v1", NAN, i < 50 ? "DE" : i < 80 ? "FR" : "IT", NAN);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    /* reference categories are sorted by name */
    assert_int_equal(ref->feats[1].n_cats, 3);
    assert_string_equal(ref->feats[1].cats[0], "DE");
    assert_string_equal(ref->feats[1].cats[2], "IT");
    assert_float_equal(ref->feats[1].cat_props[1], 0.3, 1e-15);

    /* Current: DE 40, FR 40, XX 20 (new), IT vanished, 5 missing (not a category).
     * Bins DE .4|.5, FR .4|.3, XX .2|1e-4, IT 1e-4|.2. */
    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 100; i++) {
        add3(w, "v1", NAN, i < 40 ? "DE" : i < 80 ? "FR" : "XX", NAN);
    }
    for (int i = 0; i < 5; i++) {
        add3(w, "v1", NAN, NULL, NAN);
    }
    json_t *rep = dw_eval_window(&cfg, &g_model, w, ref, 0);
    json_t *f = jpath(rep, "features", "country");
    assert_string_equal(jstr(f, "type"), "categorical");
    assert_int_equal(jint(f, "count"), 100);
    assert_int_equal(jint(f, "missing"), 5);
    assert_int_equal(jint(f, "unseen"), 20);
    double want = -0.1 * log(0.8) + 0.1 * log(4.0 / 3.0) + (0.2 - EPS) * log(0.2 / EPS) +
                  (EPS - 0.2) * log(EPS / 0.2);
    assert_float_equal(want, 3.089923365701524, 1e-12);
    assert_float_equal(jreal(f, "psi"), want, 1e-12);
    assert_true(json_is_true(json_object_get(f, "drift")));
    json_t *names = jpath(rep, "drift", "features");
    assert_int_equal(json_array_size(names), 1);
    assert_string_equal(json_string_value(json_array_get(names, 0)), "country");
    json_decref(rep);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
}

static void test_categorical_overflow_bucket(void **state)
{
    /* 1,001 distinct categories: the 1,001st goes to "__other__", a category like any other. */
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START);
    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    char name[16];
    for (int i = 0; i <= DW_AGG_MAX_CATEGORIES; i++) {
        snprintf(name, sizeof(name), "c%04d", i);
        add3(r, "v1", NAN, name, NAN);
        add3(w, "v1", NAN, name, NAN);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    const struct dw_ref_feature *rf = &ref->feats[1];
    assert_int_equal(rf->n_cats, DW_AGG_MAX_CATEGORIES + 1);
    /* sorted, "__other__" < "c..."; c1000 itself is inside "__other__" */
    assert_string_equal(rf->cats[rf->n_cats - 1], "c0999");
    assert_string_equal(rf->cats[0], "__other__");
    assert_float_equal(rf->cat_props[0], 1.0 / 1001.0, 1e-15);
    json_t *rep = dw_eval_window(&cfg, &g_model, w, ref, 0);
    json_t *f = jpath(rep, "features", "country");
    assert_float_equal(jreal(f, "psi"), 0.0, 1e-15);
    assert_int_equal(jint(f, "unseen"), 0);
    json_decref(rep);
    dw_ref_free(ref);
    dw_agg_free(w);
    dw_agg_free(r);
}

/* ------------------------------------------------------------------ accuracy drop */

/* The report as run and replay make it: dw_eval_window(), then judged against the baseline of
 * the n reference windows `base` (their counts final). */
static json_t *judged(const struct dw_config *cfg, const struct dw_model_cfg *m, struct dw_agg *w,
                      const struct dw_ref *ref, struct dw_agg *const *base, size_t n, int final)
{
    json_t *rep = dw_eval_window(cfg, m, w, ref, final);
    struct dw_baseline bl;
    dw_baseline_init(&bl, m);
    for (size_t i = 0; i < n; i++) {
        dw_baseline_add(&bl, base[i], (int64_t)n);
    }
    dw_baseline_judge(rep, cfg, m, &bl, 0);
    dw_baseline_free(&bl);
    return rep;
}

/* Every report names its stage: "close" at window close, "final" at the label horizon; the
 * older boolean "final" says the same. */
static void test_report_stage(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_agg *w = dw_agg_new(&g_model, START);
    add_labeled(w, "v1", 10, 9, 1.0);
    json_t *close = dw_eval_window(&cfg, &g_model, w, NULL, 0);
    json_t *final = dw_eval_window(&cfg, &g_model, w, NULL, 1);
    assert_string_equal(jstr(close, "stage"), "close");
    assert_true(json_is_false(json_object_get(close, "final")));
    assert_string_equal(jstr(final, "stage"), "final");
    assert_true(json_is_true(json_object_get(final, "final")));
    json_decref(close);
    json_decref(final);
    dw_agg_free(w);
}

static void test_accuracy_drop_thresholds(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START);
    add_labeled(r, "v1", 100, 90, 1.0); /* reference accuracy .9 */
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    add_labeled(w, "v1", 100, 80, 1.0); /* accuracy .8: drop (.9 - .8) / .9 = 1/9 */

    json_t *rep = judged(&cfg, &g_model, w, ref, aggs, 1, 1);
    assert_true(json_is_true(json_object_get(rep, "final")));
    json_t *d = json_object_get(rep, "accuracy_drop");
    assert_float_equal(jreal(d, "value"), 1.0 / 9.0, 1e-12);
    assert_float_equal(jreal(d, "accuracy"), 0.8, 1e-15);
    assert_float_equal(jreal(d, "reference"), 0.9, 1e-15);
    assert_float_equal(jreal(d, "threshold"), 0.05, 0.0);
    assert_true(json_is_true(json_object_get(d, "alert")));
    /* the built-in rule's verdict says the same */
    d = json_object_get(rep, "performance_drop");
    assert_string_equal(jstr(d, "metric"), "accuracy");
    assert_float_equal(jreal(d, "value"), 1.0 / 9.0, 1e-12);
    assert_float_equal(jreal(d, "current"), 0.8, 1e-15);
    assert_float_equal(jreal(d, "baseline"), 0.9, 1e-15);
    assert_true(json_is_true(json_object_get(d, "alert")));
    assert_float_equal(jreal(jpath(rep, "performance", "drop"), "accuracy"), 1.0 / 9.0, 1e-12);
    assert_float_equal(jreal(json_object_get(rep, "reference"), "accuracy"), 0.9, 1e-15);
    assert_int_equal(jint(json_object_get(rep, "reference"), "windows"), 1);
    json_decref(rep);

    /* labeled == min_samples still alerts (>=); one more than labeled does not */
    cfg.min_samples = 100;
    rep = judged(&cfg, &g_model, w, ref, aggs, 1, 1);
    assert_true(json_is_true(jpath(rep, "accuracy_drop", "alert")));
    json_decref(rep);
    cfg.min_samples = 101;
    rep = judged(&cfg, &g_model, w, ref, aggs, 1, 1);
    assert_true(json_is_false(jpath(rep, "accuracy_drop", "alert")));
    assert_true(json_is_false(jpath(rep, "performance_drop", "alert")));
    assert_float_equal(jreal(json_object_get(rep, "accuracy_drop"), "value"), 1.0 / 9.0, 1e-12);
    json_decref(rep);

    /* a drop below the threshold does not alert (strictly greater) */
    cfg.min_samples = 10;
    cfg.accuracy_drop = 0.2;
    rep = judged(&cfg, &g_model, w, ref, aggs, 1, 1);
    assert_true(json_is_false(jpath(rep, "accuracy_drop", "alert")));
    json_decref(rep);

    /* drift needs predictions >= min_samples too */
    struct dw_agg *s = dw_agg_new(&g_model, START + 2 * SIZE);
    add_labeled(s, "v1", 20, 20, 1000.0); /* amount shifted far out of the reference */
    cfg.min_samples = 21;
    rep = judged(&cfg, &g_model, s, ref, aggs, 1, 0);
    json_t *f = jpath(rep, "features", "amount");
    assert_true(jreal(f, "psi") > 0.2);
    assert_true(json_is_false(json_object_get(f, "drift")));
    json_decref(rep);
    cfg.min_samples = 20;
    rep = judged(&cfg, &g_model, s, ref, aggs, 1, 0);
    assert_true(json_is_true(json_object_get(jpath(rep, "features", "amount"), "drift")));
    /* better accuracy than the reference: negative drop, no alert */
    assert_true(jreal(json_object_get(rep, "accuracy_drop"), "value") < 0);
    assert_true(json_is_false(jpath(rep, "accuracy_drop", "alert")));
    json_decref(rep);

    /* no labels yet: accuracy_drop null, unlabeled_share 1 */
    struct dw_agg *u = dw_agg_new(&g_model, START + 3 * SIZE);
    add3(u, "v1", 5.0, "DE", NAN);
    rep = judged(&cfg, &g_model, u, ref, aggs, 1, 0);
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
    assert_true(json_is_null(jpath(rep, "performance_drop", "value")));
    assert_string_equal(jstr(json_object_get(rep, "performance_drop"), "reason"),
                        "value_undefined");
    assert_true(json_is_false(jpath(rep, "performance_drop", "alert")));
    assert_float_equal(jreal(rep, "unlabeled_share"), 1.0, 0.0);
    assert_true(json_is_null(json_object_get(json_object_get(rep, "performance"), "accuracy")));
    json_decref(rep);

    dw_agg_free(u);
    dw_agg_free(s);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* ------------------------------------------------------------------ classification metrics */

static void test_binary_metrics(void **state)
{
    struct dw_config cfg = make_cfg();
    /* All negative, all right: tp = fp = fn = 0 -> precision, recall, F1 0.0 (sklearn). */
    struct dw_agg *a = dw_agg_new(&g_model, START);
    for (int i = 0; i < 10; i++) {
        add3(a, "v1", 1.0, "DE", NAN);
        outcome(a, "v1", "0", "0", -1);
    }
    json_t *rep = dw_eval_window(&cfg, &g_model, a, NULL, 0);
    json_t *p = json_object_get(rep, "performance");
    assert_float_equal(jreal(p, "accuracy"), 1.0, 0.0);
    assert_float_equal(jreal(p, "precision"), 0.0, 0.0);
    assert_float_equal(jreal(p, "recall"), 0.0, 0.0);
    assert_float_equal(jreal(p, "f1"), 0.0, 0.0);
    assert_true(json_is_null(json_object_get(p, "log_loss")));
    assert_true(json_is_null(json_object_get(p, "brier")));
    assert_int_equal(jint(json_object_get(p, "confusion"), "tn"), 10);
    assert_float_equal(jreal(rep, "unlabeled_share"), 0.0, 0.0);
    json_decref(rep);
    dw_agg_free(a);

    /* tp 3 (score .9), fp 1 (.8), fn 2 (.2), tn 4 (.1); versions 1.4.0 x6, 1.5.0 x4. */
    struct dw_agg *b = dw_agg_new(&g_model, START);
    struct {
        const char *pred, *label;
        double score;
        int n;
    } rows[] = {{"1", "1", 0.9, 3}, {"1", "0", 0.8, 1}, {"0", "1", 0.2, 2}, {"0", "0", 0.1, 4}};
    int k = 0;
    for (size_t r = 0; r < 4; r++) {
        for (int i = 0; i < rows[r].n; i++, k++) {
            const char *v = k < 6 ? "1.4.0" : "1.5.0";
            add3(b, v, 1.0, "DE", NAN);
            outcome(b, v, rows[r].pred, rows[r].label, rows[r].score);
        }
    }
    add3(b, "1.5.0", 1.0, "DE", NAN); /* one unlabeled */
    rep = dw_eval_window(&cfg, &g_model, b, NULL, 0);
    p = json_object_get(rep, "performance");
    assert_float_equal(jreal(p, "accuracy"), 7.0 / 10.0, 1e-15);
    assert_float_equal(jreal(p, "precision"), 3.0 / 4.0, 1e-15);
    assert_float_equal(jreal(p, "recall"), 3.0 / 5.0, 1e-15);
    assert_float_equal(jreal(p, "f1"), 6.0 / 9.0, 1e-15);
    /* log loss: 3(-ln .9) + 1(-ln .2) + 2(-ln .2) + 4(-ln .9), over 10 */
    assert_float_equal(jreal(p, "log_loss"), (7 * -log(0.9) + 3 * -log(0.2)) / 10.0, 1e-12);
    /* Brier: 3(.01) + .64 + 2(.64) + 4(.01) = 1.99, over 10 */
    assert_float_equal(jreal(p, "brier"), 0.199, 1e-12);
    json_t *cm = json_object_get(p, "confusion");
    assert_int_equal(jint(cm, "tp"), 3);
    assert_int_equal(jint(cm, "fp"), 1);
    assert_int_equal(jint(cm, "fn"), 2);
    assert_int_equal(jint(cm, "tn"), 4);
    assert_int_equal(jint(rep, "predictions"), 11);
    assert_int_equal(jint(rep, "labeled"), 10);
    assert_float_equal(jreal(rep, "unlabeled_share"), 1.0 - 10.0 / 11.0, 1e-15);
    json_t *v14 = jpath(rep, "versions", "1.4.0");
    json_t *v15 = jpath(rep, "versions", "1.5.0");
    assert_int_equal(jint(v14, "predictions"), 6);
    assert_int_equal(jint(v15, "predictions"), 5);
    assert_int_equal(jint(v15, "labeled"), 4);
    /* 1.4.0: tp 3, fp 1, fn 2 -> recall 3/5; 1.5.0: tn 4 only -> precision 0 */
    assert_float_equal(jreal(json_object_get(v14, "performance"), "recall"), 0.6, 1e-15);
    assert_float_equal(jreal(json_object_get(v15, "performance"), "precision"), 0.0, 0.0);
    assert_float_equal(jreal(json_object_get(v15, "performance"), "accuracy"), 1.0, 0.0);
    json_decref(rep);
    dw_agg_free(b);
}

/* ------------------------------------------------------------------ per-version evidence */

/* A prediction of version with a latency (< 0: none) and a status (-1 none, 0 ok, 1 error). */
static void add_served(struct dw_agg *agg, const char *version, double latency_ms, int status)
{
    struct dw_prediction *p = calloc(1, sizeof(*p) + 3 * sizeof(struct dw_val));
    assert_non_null(p);
    p->model = &g_model;
    p->has_latency = latency_ms >= 0.0;
    p->latency_ms = latency_ms;
    p->has_status = status >= 0;
    p->status_error = status == 1;
    dw_agg_add_prediction(agg, dw_agg_version_slot(agg, version, strlen(version)), p);
    free(p);
}

static void assert_serving(const json_t *s, json_int_t served, json_int_t errors, double rate)
{
    assert_int_equal(jint(s, "served"), served);
    assert_int_equal(jint(s, "errors"), errors);
    assert_double_exact(jreal(s, "error_rate"), rate);
    assert_double_exact(jreal(s, "availability"), 1.0 - rate);
}

/*
 * versions.<v>: share of the window's predictions, latency percentiles of the version's own
 * predictions (numpy.percentile), serving errors; the window's serving errors; null with the
 * reason without input.fields.status. The final report, computed once the sketches are
 * dropped, carries each version's latency of the close report.
 */
static void test_versions_evidence(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    cfg.field_status = "/status";
    struct dw_agg *agg = dw_agg_new(&g_model, START);
    for (int i = 0; i < 90; i++) {
        add_served(agg, "1.0.0", 10.0 + (double)(i % 10), i % 30 == 0);
    }
    for (int i = 0; i < 10; i++) {
        add_served(agg, "1.1.0", 50.0 + (double)i, i < 2);
    }
    add_served(agg, "1.1.0", -1.0, -1); /* neither latency nor status */
    json_t *rep = dw_eval_window(&cfg, &g_model, agg, NULL, 0);
    json_t *v0 = jpath(rep, "versions", "1.0.0"), *v1 = jpath(rep, "versions", "1.1.0");
    assert_double_exact(jreal(v0, "share"), 90.0 / 101.0);
    assert_double_exact(jreal(v1, "share"), 11.0 / 101.0);
    /* numpy.percentile([10 + i % 10 for i in range(90)], [50, 95, 99]) = 14.5, 19, 19 */
    json_t *l0 = json_object_get(v0, "latency_ms");
    assert_int_equal(jint(l0, "count"), 90);
    assert_double_exact(jreal(l0, "p50"), 14.5);
    assert_double_exact(jreal(l0, "p95"), 19.0);
    assert_double_exact(jreal(l0, "p99"), 19.0);
    /* numpy.percentile(range(50, 60), [50, 95, 99]) = 54.5, 58.55, 58.91 */
    json_t *l1 = json_object_get(v1, "latency_ms");
    assert_int_equal(jint(l1, "count"), 10);
    assert_double_exact(jreal(l1, "p50"), 54.5);
    assert_near(jreal(l1, "p95"), 58.55, 1e-12);
    assert_near(jreal(l1, "p99"), 58.91, 1e-12);
    assert_serving(json_object_get(v0, "serving"), 90, 3, 3.0 / 90.0);
    assert_serving(json_object_get(v1, "serving"), 10, 2, 0.2);
    assert_serving(json_object_get(rep, "serving"), 100, 5, 0.05);
    assert_int_equal(jint(json_object_get(rep, "latency_ms"), "count"), 100);

    /* the final report: sketches dropped, each version's latency taken from the close */
    dw_agg_drop_sketches(agg);
    json_t *fin = dw_eval_window(&cfg, &g_model, agg, NULL, 1);
    assert_true(json_is_null(json_object_get(jpath(fin, "versions", "1.1.0"), "latency_ms")));
    assert_serving(json_object_get(jpath(fin, "versions", "1.1.0"), "serving"), 10, 2, 0.2);
    assert_int_equal(dw_eval_take_close(fin, rep), 0);
    assert_true(json_equal(json_object_get(jpath(fin, "versions", "1.0.0"), "latency_ms"), l0));
    assert_true(json_equal(json_object_get(jpath(fin, "versions", "1.1.0"), "latency_ms"), l1));
    json_decref(fin);
    /* without a readable close report: null, not stale */
    fin = dw_eval_window(&cfg, &g_model, agg, NULL, 1);
    dw_eval_take_close(fin, NULL);
    assert_true(json_is_null(json_object_get(jpath(fin, "versions", "1.0.0"), "latency_ms")));
    json_decref(fin);
    json_decref(rep);

    /* no status configured: every number null, with the reason */
    cfg.field_status = "";
    rep = dw_eval_window(&cfg, &g_model, agg, NULL, 0);
    const char *members[] = {"served", "errors", "error_rate", "availability"};
    const json_t *objs[] = {json_object_get(rep, "serving"), jpath(rep, "versions", "1.0.0")};
    objs[1] = json_object_get(objs[1], "serving");
    for (size_t o = 0; o < 2; o++) {
        for (size_t k = 0; k < DW_ARRAY_SIZE(members); k++) {
            assert_true(json_is_null(json_object_get(objs[o], members[k])));
        }
        assert_string_equal(jstr(objs[o], "reason"), "input.fields.status is not configured");
    }
    json_decref(rep);
    dw_agg_free(agg);

    /* statuses configured, none carried: counts 0, rates null */
    cfg.field_status = "/status";
    struct dw_agg *none = dw_agg_new(&g_model, START);
    add_served(none, "1.0.0", 12.0, -1);
    rep = dw_eval_window(&cfg, &g_model, none, NULL, 0);
    json_t *sv = json_object_get(rep, "serving");
    assert_int_equal(jint(sv, "served"), 0);
    assert_true(json_is_null(json_object_get(sv, "error_rate")));
    assert_true(json_is_null(json_object_get(sv, "availability")));
    assert_double_exact(jreal(jpath(rep, "versions", "1.0.0"), "share"), 1.0);
    json_decref(rep);
    dw_agg_free(none);
}

/* ------------------------------------------------------------------ regression */

static void reg_add(struct dw_agg *agg, double pred, double label)
{
    struct dw_prediction *p = calloc(1, sizeof(*p) + sizeof(struct dw_val));
    assert_non_null(p);
    p->model = &g_reg_model;
    p->features[0].kind = DW_VAL_NUM;
    p->features[0].num = pred;
    size_t slot = dw_agg_version_slot(agg, "v1", 2);
    dw_agg_add_prediction(agg, slot, p);
    free(p);
    char pt[32], lt[32];
    snprintf(pt, sizeof(pt), "%g", pred);
    snprintf(lt, sizeof(lt), "%g", label);
    struct dw_outcome o = {.pred = pt,
                           .label = lt,
                           .pred_is_num = 1,
                           .label_is_num = 1,
                           .pred_num = pred,
                           .label_num = label};
    dw_agg_add_outcome(agg, slot, &o);
}

static void test_regression_metrics(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *w = dw_agg_new(&g_reg_model, START);
    static const double y[] = {3, -0.5, 2, 7};
    static const double p[] = {2.5, 0.0, 2, 8};
    for (size_t i = 0; i < 4; i++) {
        reg_add(w, p[i], y[i]);
    }
    struct dw_agg *aggs[] = {w};
    struct dw_ref *ref = dw_ref_build(&g_reg_model, aggs, 1, 10);
    json_t *rep = dw_eval_window(&cfg, &g_reg_model, w, ref, 1);
    json_t *perf = json_object_get(rep, "performance");
    assert_float_equal(jreal(perf, "mae"), 0.5, 1e-15);
    assert_float_equal(jreal(perf, "rmse"), 0.6123724356957945, 1e-12);
    assert_float_equal(jreal(perf, "r2"), 0.9486081370449679, 1e-12);
    assert_float_equal(jreal(perf, "mape"), 0.3273809523809524, 1e-12);
    assert_null(json_object_get(perf, "accuracy"));
    /* accuracy is not a regression metric: no drop, reference accuracy null */
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
    assert_true(json_is_null(jpath(rep, "reference", "accuracy")));
    json_decref(rep);

    /* constant labels: SST = 0, R² undefined */
    struct dw_agg *c = dw_agg_new(&g_reg_model, START);
    reg_add(c, 1.0, 2.0);
    reg_add(c, 3.0, 2.0);
    rep = dw_eval_window(&cfg, &g_reg_model, c, NULL, 1);
    perf = json_object_get(rep, "performance");
    assert_true(json_is_null(json_object_get(perf, "r2")));
    assert_float_equal(jreal(perf, "mae"), 1.0, 0.0);
    json_decref(rep);
    dw_agg_free(c);
    dw_ref_free(ref);
    dw_agg_free(w);
}

/* ------------------------------------------------------------------ empty window */

static void test_empty_window(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START - SIZE);
    add_labeled(r, "v1", 50, 40, 3.0);
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_agg *w = dw_agg_new(&g_model, START);
    json_t *rep = dw_eval_window(&cfg, &g_model, w, ref, 1);
    assert_string_equal(jstr(rep, "model"), "fraud");
    assert_string_equal(jstr(rep, "window_start"), "2026-11-18T11:05:00Z");
    assert_string_equal(jstr(rep, "window_end"), "2026-11-18T11:10:00Z");
    assert_int_equal(jint(rep, "window_start_ms"), START);
    assert_int_equal(jint(rep, "predictions"), 0);
    assert_int_equal(jint(rep, "labeled"), 0);
    assert_true(json_is_null(json_object_get(rep, "unlabeled_share")));
    assert_true(json_is_null(json_object_get(rep, "performance")));
    assert_true(json_is_object(json_object_get(rep, "features")));
    assert_int_equal(json_object_size(json_object_get(rep, "features")), 0);
    assert_int_equal(json_object_size(json_object_get(rep, "versions")), 0);
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
    assert_true(json_is_null(jpath(rep, "drift", "share")));
    assert_int_equal(json_array_size(jpath(rep, "drift", "features")), 0);
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));
    assert_int_equal(jint(json_object_get(rep, "reference"), "predictions"), 50);
    json_decref(rep);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* A run of empty windows is one report: the empty window's report spanning the run, with
 * "empty_windows"; a window with nothing but late counts is not empty (it is reported alone). */
static void test_empty_run(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *w = dw_agg_new(&g_model, START);
    assert_true(dw_eval_agg_empty(w));
    json_t *rep = dw_eval_window(&cfg, &g_model, w, NULL, 0);
    dw_eval_empty_run(rep, &cfg, 7);
    assert_string_equal(jstr(rep, "window_start"), "2026-11-18T11:05:00Z");
    assert_int_equal(jint(rep, "window_start_ms"), START);
    assert_string_equal(jstr(rep, "window_end"), "2026-11-18T11:40:00Z"); /* 7 windows of 5m */
    assert_int_equal(jint(rep, "empty_windows"), 7);
    assert_int_equal(jint(rep, "predictions"), 0);
    assert_true(json_is_null(json_object_get(rep, "performance")));
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));
    json_decref(rep);

    /* a lone empty window: the same report as before, with empty_windows 1 */
    rep = dw_eval_window(&cfg, &g_model, w, NULL, 0);
    dw_eval_empty_run(rep, &cfg, 1);
    assert_string_equal(jstr(rep, "window_end"), "2026-11-18T11:10:00Z");
    assert_int_equal(jint(rep, "empty_windows"), 1);
    json_decref(rep);

    /* anything counted makes a window hold data */
    w->late_predictions = 1;
    assert_false(dw_eval_agg_empty(w));
    w->late_predictions = 0;
    w->late_labels = 2;
    assert_false(dw_eval_agg_empty(w));
    w->late_labels = 0;
    add3(w, "v1", 1.0, "DE", NAN);
    assert_false(dw_eval_agg_empty(w));
    dw_agg_free(w);
}

/* ------------------------------------------------------------------ rolling */

/* The rolling block of a report for aggs[0..n-1] (oldest first, the last is the window). */
static json_t *rolling_report(const struct dw_config *cfg, const struct dw_model_cfg *m,
                              struct dw_agg *const *aggs, size_t n)
{
    json_t *rep = dw_eval_window(cfg, m, aggs[n - 1], NULL, 1);
    dw_eval_add_rolling(rep, cfg, m, aggs, n);
    return rep;
}

static void test_rolling_counts(void **state)
{
    struct dw_config cfg = make_cfg();
    cfg.rolling_windows = 3;
    /* w0: 10 labelled (8 right: tp 8, fp 2) + 2 unlabelled; w1: empty; w2: 20 labelled (5 right);
     * w3: 30 labelled (27 right); every prediction is class "1". */
    struct dw_agg *w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = dw_agg_new(&g_model, START + i * SIZE);
    }
    add_labeled(w[0], "v1", 10, 8, 0.0);
    add3(w[0], "v1", 1.0, "DE", NAN);
    add3(w[0], "v2", 1.0, "DE", NAN);
    add_labeled(w[2], "v1", 20, 5, 0.0);
    add_labeled(w[3], "v1", 30, 27, 0.0);

    /* the first window: one window, its own numbers */
    json_t *rep = rolling_report(&cfg, &g_model, w, 1);
    json_t *ro = json_object_get(rep, "rolling");
    assert_int_equal(jint(ro, "windows"), 1);
    assert_string_equal(jstr(ro, "window_start"), "2026-11-18T11:05:00Z");
    assert_int_equal(jint(ro, "predictions"), 12);
    assert_int_equal(jint(ro, "labeled"), 10);
    assert_float_equal(jreal(ro, "unlabeled_share"), 2.0 / 12.0, 1e-15);
    assert_float_equal(jreal(json_object_get(ro, "performance"), "accuracy"), 0.8, 1e-15);
    json_decref(rep);

    /* the empty window counts as a window; its own performance is null, the rolling one not */
    rep = rolling_report(&cfg, &g_model, w, 2);
    ro = json_object_get(rep, "rolling");
    assert_true(json_is_null(json_object_get(rep, "performance")));
    assert_int_equal(jint(ro, "windows"), 2);
    assert_string_equal(jstr(ro, "window_start"), "2026-11-18T11:05:00Z");
    assert_int_equal(jint(ro, "predictions"), 12);
    assert_float_equal(jreal(json_object_get(ro, "performance"), "accuracy"), 0.8, 1e-15);
    json_decref(rep);

    /* three windows: (8 + 0 + 5) / (10 + 0 + 20) */
    rep = rolling_report(&cfg, &g_model, w, 3);
    ro = json_object_get(rep, "rolling");
    assert_int_equal(jint(ro, "windows"), 3);
    assert_string_equal(jstr(ro, "window_start"), "2026-11-18T11:05:00Z");
    assert_int_equal(jint(ro, "predictions"), 32);
    assert_int_equal(jint(ro, "labeled"), 30);
    json_t *p = json_object_get(ro, "performance");
    assert_float_equal(jreal(p, "accuracy"), 13.0 / 30.0, 1e-15);
    assert_int_equal(jint(json_object_get(p, "confusion"), "tp"), 13);
    assert_int_equal(jint(json_object_get(p, "confusion"), "fp"), 17);
    assert_float_equal(jreal(p, "precision"), 13.0 / 30.0, 1e-15);
    /* the window's own accuracy stays its own */
    assert_float_equal(jreal(json_object_get(rep, "performance"), "accuracy"), 0.25, 1e-15);
    json_decref(rep);

    /* four windows given, three kept: w1 (empty) .. w3, w0 left out */
    rep = rolling_report(&cfg, &g_model, w, 4);
    ro = json_object_get(rep, "rolling");
    assert_int_equal(jint(ro, "windows"), 3);
    assert_string_equal(jstr(ro, "window_start"), "2026-11-18T11:10:00Z");
    assert_int_equal(jint(ro, "predictions"), 50);
    assert_int_equal(jint(ro, "labeled"), 50);
    assert_float_equal(jreal(ro, "unlabeled_share"), 0.0, 0.0);
    p = json_object_get(ro, "performance");
    assert_float_equal(jreal(p, "accuracy"), 32.0 / 50.0, 1e-15);
    assert_int_equal(jint(json_object_get(p, "confusion"), "tp"), 32);
    assert_int_equal(jint(json_object_get(p, "confusion"), "fp"), 18);
    assert_int_equal(jint(json_object_get(p, "confusion"), "fn"), 0);
    assert_float_equal(jreal(p, "recall"), 1.0, 0.0);
    json_decref(rep);

    /* the inputs are not changed by the merge */
    assert_int_equal(w[0]->all.predictions, 12);
    assert_int_equal(w[1]->all.predictions, 0);
    assert_int_equal(w[2]->feats[0].count, 20);

    /* only empty windows: counts 0, performance null */
    struct dw_agg *e[2] = {dw_agg_new(&g_model, START), dw_agg_new(&g_model, START + SIZE)};
    rep = rolling_report(&cfg, &g_model, e, 2);
    ro = json_object_get(rep, "rolling");
    assert_int_equal(jint(ro, "windows"), 2);
    assert_int_equal(jint(ro, "predictions"), 0);
    assert_true(json_is_null(json_object_get(ro, "performance")));
    assert_true(json_is_null(json_object_get(ro, "unlabeled_share")));
    json_decref(rep);

    /* rolling_windows 0: no rolling block */
    cfg.rolling_windows = 0;
    rep = rolling_report(&cfg, &g_model, w, 4);
    assert_null(json_object_get(rep, "rolling"));
    json_decref(rep);
    /* rolling_windows 1: the window alone */
    cfg.rolling_windows = 1;
    rep = rolling_report(&cfg, &g_model, w, 4);
    ro = json_object_get(rep, "rolling");
    assert_int_equal(jint(ro, "windows"), 1);
    assert_string_equal(jstr(ro, "window_start"), "2026-11-18T11:20:00Z");
    assert_float_equal(jreal(json_object_get(ro, "performance"), "accuracy"), 0.9, 1e-15);
    json_decref(rep);

    dw_agg_free(e[0]);
    dw_agg_free(e[1]);
    for (int i = 0; i < 4; i++) {
        dw_agg_free(w[i]);
    }
}

/* ROC AUC, log loss and regression metrics of the merge equal those of the pooled data, not
 * an average of the windows'. */
static void test_rolling_pooled_metrics(void **state)
{
    struct dw_config cfg = make_cfg();
    cfg.rolling_windows = 6;
    /* a: positive .9, negative .8; b: positive .2, negative .1. Each window alone has AUC 1;
     * pooled, 3 of the 4 (positive, negative) pairs are ordered right: 0.75. */
    struct dw_agg *a = dw_agg_new(&g_model, START);
    struct dw_agg *b = dw_agg_new(&g_model, START + SIZE);
    add3(a, "v1", 1.0, "DE", NAN);
    outcome(a, "v1", "1", "1", 0.9);
    add3(a, "v1", 1.0, "DE", NAN);
    outcome(a, "v1", "1", "0", 0.8);
    add3(b, "v1", 1.0, "DE", NAN);
    outcome(b, "v1", "0", "1", 0.2);
    add3(b, "v1", 1.0, "DE", NAN);
    outcome(b, "v1", "0", "0", 0.1);
    struct dw_agg *ab[] = {a, b};
    json_t *rep = rolling_report(&cfg, &g_model, ab, 2);
    assert_float_equal(jreal(json_object_get(rep, "performance"), "roc_auc"), 1.0, 0.0);
    json_t *p = jpath(rep, "rolling", "performance");
    assert_float_equal(jreal(p, "roc_auc"), 0.75, 1e-15);
    assert_float_equal(jreal(p, "accuracy"), 0.5, 0.0);
    /* log loss: -(ln .9 + ln .2 + ln .2 + ln .9) / 4; Brier: (.01 + .64 + .64 + .01) / 4 */
    assert_float_equal(jreal(p, "log_loss"), -(2 * log(0.9) + 2 * log(0.2)) / 4.0, 1e-12);
    assert_float_equal(jreal(p, "brier"), 1.3 / 4.0, 1e-12);
    json_t *cm = json_object_get(p, "confusion");
    assert_int_equal(jint(cm, "tp"), 1);
    assert_int_equal(jint(cm, "fp"), 1);
    assert_int_equal(jint(cm, "fn"), 1);
    assert_int_equal(jint(cm, "tn"), 1);
    json_decref(rep);
    dw_agg_free(a);
    dw_agg_free(b);

    /* regression: sklearn's example y=[3,-0.5,2,7], p=[2.5,0,2,8] split over two windows */
    struct dw_agg *r1 = dw_agg_new(&g_reg_model, START);
    struct dw_agg *r2 = dw_agg_new(&g_reg_model, START + SIZE);
    reg_add(r1, 2.5, 3);
    reg_add(r1, 0.0, -0.5);
    reg_add(r2, 2, 2);
    reg_add(r2, 8, 7);
    struct dw_agg *rr[] = {r1, r2};
    rep = rolling_report(&cfg, &g_reg_model, rr, 2);
    p = jpath(rep, "rolling", "performance");
    assert_float_equal(jreal(p, "mae"), 0.5, 1e-15);
    assert_float_equal(jreal(p, "rmse"), 0.6123724356957945, 1e-12);
    assert_float_equal(jreal(p, "r2"), 0.9486081370449679, 1e-12);
    assert_float_equal(jreal(p, "mape"), 0.3273809523809524, 1e-12);
    assert_null(json_object_get(p, "accuracy"));
    /* the window alone: (2, 2) and (8, 7): MAE 0.5, RMSE sqrt(1/2) */
    assert_float_equal(jreal(json_object_get(rep, "performance"), "rmse"), sqrt(0.5), 1e-15);
    json_decref(rep);
    dw_agg_free(r1);
    dw_agg_free(r2);
}

/* ------------------------------------------------------------------ reference JSON */

static void test_ref_json_round_trip(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START);
    for (int i = 0; i < 300; i++) {
        /* irrational-looking values so that the edges need all 17 digits */
        add3(r, "v1", sqrt((double)i) * 3.14159, i % 3 ? "DE" : "FR", NAN);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    json_t *doc = dw_ref_to_json(ref);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    char err[256] = "";
    struct dw_ref *ref2 = dw_ref_from_json(&g_model, back, err, sizeof(err));
    if (!ref2) {
        fail_msg("from_json: %s", err);
    }
    assert_int_equal(ref2->windows, 1);
    assert_int_equal(ref2->predictions, 300);
    assert_int_equal(ref2->first_start_ms, START);
    const struct dw_ref_feature *a = &ref->feats[0], *b = &ref2->feats[0];
    assert_int_equal(a->n_edges, b->n_edges);
    for (size_t i = 0; i < a->n_edges; i++) {
        assert_double_exact(a->edges[i], b->edges[i]);
    }
    for (size_t i = 0; i <= a->n_edges; i++) {
        assert_double_exact(a->props[i], b->props[i]);
    }
    assert_double_exact(a->mean, b->mean);
    assert_double_exact(a->std, b->std);
    assert_int_equal(ref2->feats[1].n_cats, 2);
    assert_int_equal(ref2->feats[2].count, 0);

    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 77; i++) {
        add3(w, "v1", sqrt((double)i * 7.0) * 2.5, i % 5 ? "DE" : "IT", NAN);
    }
    json_t *r1 = dw_eval_window(&cfg, &g_model, w, ref, 0);
    json_t *r2 = dw_eval_window(&cfg, &g_model, w, ref2, 0);
    assert_true(jreal(jpath(r1, "features", "amount"), "psi") > 0);
    assert_double_exact(jreal(jpath(r1, "features", "amount"), "psi"),
                        jreal(jpath(r2, "features", "amount"), "psi"));
    assert_double_exact(jreal(jpath(r1, "features", "country"), "psi"),
                        jreal(jpath(r2, "features", "country"), "psi"));
    assert_true(json_equal(r1, r2));
    /* the sample and the category counts come back identical, and so does KS */
    assert_true(a->n_sample > 0);
    assert_int_equal(a->n_sample, b->n_sample);
    for (size_t i = 0; i < a->n_sample; i++) {
        assert_double_exact(a->sample[i], b->sample[i]);
        assert_int_equal(dw_ref_sample_weight(a, i), dw_ref_sample_weight(b, i));
    }
    assert_non_null(ref2->feats[1].cat_counts);
    assert_int_equal(ref2->feats[1].cat_counts[0], 200); /* DE */
    assert_int_equal(ref2->feats[1].cat_counts[1], 100); /* FR */
    json_t *ks1 = json_object_get(jpath(r1, "features", "amount"), "ks");
    json_t *ks2 = json_object_get(jpath(r2, "features", "amount"), "ks");
    assert_true(json_is_object(ks1));
    assert_double_exact(jreal(ks1, "statistic"), jreal(ks2, "statistic"));
    assert_double_exact(jreal(ks1, "p_value"), jreal(ks2, "p_value"));
    assert_double_exact(jreal(jpath(r1, "features", "amount"), "wasserstein"),
                        jreal(jpath(r2, "features", "amount"), "wasserstein"));
    assert_true(json_is_object(json_object_get(jpath(r2, "features", "country"), "chi2")));

    /* the packed form (what run keeps in Redis) gives the same reference, hence the same
     * report; a malformed packed sample is refused with the feature's name */
    json_t *pdoc = dw_ref_to_json_packed(ref);
    char *ptext = json_dumps(pdoc, JSON_COMPACT);
    json_t *pback = json_loads(ptext, 0, &jerr);
    struct dw_ref *pref = dw_ref_from_json(&g_model, pback, err, sizeof(err));
    if (!pref) {
        fail_msg("from_json (packed): %s", err);
    }
    json_t *rp = dw_eval_window(&cfg, &g_model, w, pref, 0);
    assert_true(json_equal(r1, rp));
    json_t *psample = json_object_get(jpath(pback, "features", "amount"), "sample");
    assert_string_equal(jstr(psample, "encoding"), "base64-f64le-u64le");
    json_object_set_new(psample, "n",
                        json_integer(json_integer_value(json_object_get(psample, "n")) + 1));
    assert_null(dw_ref_from_json(&g_model, pback, err, sizeof(err)));
    assert_contains(err, "reference feature amount: malformed packed sample");
    json_object_set_new(psample, "n", json_integer((json_int_t)a->n_sample));
    json_object_set_new(psample, "data", json_string("!!!!"));
    assert_null(dw_ref_from_json(&g_model, pback, err, sizeof(err)));
    json_decref(rp);
    dw_ref_free(pref);
    json_decref(pback);
    free(ptext);
    json_decref(pdoc);

    /* a reference document from before samples and counts still loads: KS, Wasserstein,
     * chi2 and G are null, the binned statistics unchanged, auto falls back to psi / js */
    json_t *old = json_deep_copy(back);
    json_object_del(jpath(old, "features", "amount"), "sample");
    json_object_del(jpath(old, "features", "country"), "category_counts");
    struct dw_ref *ref3 = dw_ref_from_json(&g_model, old, err, sizeof(err));
    if (!ref3) {
        fail_msg("old document: %s", err);
    }
    assert_null(ref3->feats[0].sample);
    assert_null(ref3->feats[1].cat_counts);
    json_t *r3 = dw_eval_window(&cfg, &g_model, w, ref3, 0);
    json_t *a3 = jpath(r3, "features", "amount"), *c3 = jpath(r3, "features", "country");
    assert_true(json_is_null(json_object_get(a3, "ks")));
    assert_true(json_is_null(json_object_get(a3, "wasserstein")));
    assert_true(json_is_null(json_object_get(a3, "wasserstein_norm")));
    assert_true(json_is_null(json_object_get(c3, "chi2")));
    assert_true(json_is_null(json_object_get(c3, "g_test")));
    assert_double_exact(jreal(a3, "psi"), jreal(jpath(r1, "features", "amount"), "psi"));
    assert_double_exact(jreal(a3, "js"), jreal(jpath(r1, "features", "amount"), "js"));
    assert_double_exact(jreal(c3, "tvd"), jreal(jpath(r1, "features", "country"), "tvd"));
    assert_string_equal(jstr(a3, "method"), "psi");
    assert_float_equal(jreal(a3, "threshold"), 0.2, 0.0);
    assert_double_exact(jreal(a3, "score"), jreal(a3, "psi"));
    assert_string_equal(jstr(c3, "method"), "js");
    assert_true(json_is_boolean(json_object_get(c3, "drift")));
    json_decref(r3);
    dw_ref_free(ref3);

    /* a malformed sample or counts is an error naming the feature */
    json_decref(old);
    old = json_deep_copy(back);
    json_t *sample = json_object_get(jpath(old, "features", "amount"), "sample");
    json_array_set_new(json_object_get(sample, "weights"), 0, json_integer(2));
    assert_null(dw_ref_from_json(&g_model, old, err, sizeof(err)));
    assert_contains(err, "amount");
    assert_contains(err, "sum");
    json_decref(old);
    old = json_deep_copy(back);
    sample = json_object_get(jpath(old, "features", "amount"), "sample");
    json_array_set_new(json_object_get(sample, "values"), 1, json_real(-1e9));
    assert_null(dw_ref_from_json(&g_model, old, err, sizeof(err)));
    assert_contains(err, "ascending");
    json_decref(old);
    old = json_deep_copy(back);
    json_object_set_new(json_object_get(jpath(old, "features", "country"), "category_counts"), "DE",
                        json_integer(-1));
    assert_null(dw_ref_from_json(&g_model, old, err, sizeof(err)));
    assert_contains(err, "country");
    json_decref(old);
    json_decref(r1);
    json_decref(r2);

    /* errors name what is wrong */
    json_object_set_new(jpath(back, "features", "amount"), "type", json_string("categorical"));
    assert_null(dw_ref_from_json(&g_model, back, err, sizeof(err)));
    assert_contains(err, "amount");
    json_t *other = json_deep_copy(doc);
    json_object_set_new(other, "model", json_string("churn"));
    assert_null(dw_ref_from_json(&g_model, other, err, sizeof(err)));
    assert_contains(err, "churn");
    json_decref(other);
    other = json_deep_copy(doc);
    json_array_append_new(json_object_get(jpath(other, "features", "amount"), "proportions"),
                          json_real(0.5));
    assert_null(dw_ref_from_json(&g_model, other, err, sizeof(err)));
    assert_contains(err, "amount");
    json_decref(other);

    dw_agg_free(w);
    dw_ref_free(ref2);
    json_decref(back);
    free(text);
    json_decref(doc);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* ------------------------------------------------------------------ verdicts and rules */

/* Reference: amount and age 1..100, country DE/FR, accuracy .8. Current: 200 predictions of
 * version 1.4.0 (150) and 1.5.0 (50), amount 1000, country XX, age as before, 123 right:
 * accuracy .615, drop (.8 - .615) / .8 = 23.125 %. */
static json_t *drifting_report(struct dw_config *cfg)
{
    struct dw_agg *r = dw_agg_new(&g_model, START - SIZE);
    for (int i = 1; i <= 100; i++) {
        add3(r, "1.4.0", (double)i, i % 2 ? "DE" : "FR", (double)i);
        outcome(r, "1.4.0", "1", i <= 80 ? "1" : "0", -1);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_agg *w = dw_agg_new(&g_model, START);
    for (int i = 0; i < 200; i++) {
        const char *v = i < 150 ? "1.4.0" : "1.5.0";
        add3(w, v, 1000.0, "XX", (double)(i % 100 + 1));
        outcome(w, v, "1", i < 123 ? "1" : "0", -1);
    }
    json_t *rep = judged(cfg, &g_model, w, ref, aggs, 1, 1);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
    return rep;
}

/* The verdicts of a drifting window, and what the built-in alert rules make of them (the
 * production path: dw_rules_step over the report, close then final). */
static void test_verdicts_and_default_rules(void **state)
{
    struct dw_config cfg = make_cfg();
    json_t *rep = drifting_report(&cfg);
    json_t *amount = jpath(rep, "features", "amount");
    json_t *country = jpath(rep, "features", "country");
    assert_float_equal(jreal(jpath(rep, "features", "age"), "psi"), 0.0, 1e-15);
    assert_float_equal(jreal(json_object_get(rep, "drift"), "share"), 2.0 / 3.0, 1e-15);
    /* 200 vs 100 values: method auto runs KS (numeric) and chi-squared (categorical) */
    assert_string_equal(jstr(amount, "method"), "ks");
    assert_true(jreal(amount, "score") < 1e-10);
    assert_float_equal(jreal(amount, "threshold"), 0.05, 0.0);
    assert_true(json_is_true(json_object_get(amount, "drift")));
    assert_string_equal(jstr(country, "method"), "chi2");
    assert_true(json_is_true(json_object_get(country, "drift")));
    assert_float_equal(jreal(json_object_get(rep, "accuracy_drop"), "value"), 0.23125, 1e-12);
    assert_true(json_is_true(json_object_get(json_object_get(rep, "accuracy_drop"), "alert")));

    size_t n_rules = 0;
    struct dw_rule *rules = dw_rules_defaults(&n_rules);
    json_t *state_json = json_object();
    json_t *at_close = json_copy(rep);
    json_object_set_new(at_close, "final", json_false());
    json_t *note = dw_rules_step("prod", rules, n_rules, at_close, state_json);
    /* dataset drift (2 of 3 features) fires and mutes the per-feature alerts */
    json_t *alerts = json_object_get(note, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(jstr(json_array_get(alerts, 0), "rule"), "dataset_drift");
    assert_string_equal(jstr(json_array_get(alerts, 0), "severity"), "critical");
    json_decref(note);
    json_decref(at_close);
    note = dw_rules_step("prod", rules, n_rules, rep, state_json);
    alerts = json_object_get(note, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    json_t *acc = json_array_get(alerts, 0);
    assert_string_equal(jstr(acc, "rule"), "accuracy_drop");
    assert_float_equal(jreal(acc, "value"), 0.23125, 1e-12);
    assert_float_equal(jreal(acc, "threshold"), 0.05, 0.0);
    json_decref(note);
    json_decref(state_json);
    dw_rules_free(rules, n_rules);
    json_decref(rep);
}

/* ------------------------------------------------------------------ detectors */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Population standard deviation, written out for the tests. */
static double pop_std(const double *x, size_t n)
{
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        mean += x[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        ss += (x[i] - mean) * (x[i] - mean);
    }
    return sqrt(ss / (double)n);
}

/* Every numeric statistic of the report is the dw_stats function on the same data: the sorted
 * samples of the window and of the reference, and the window's proportions in the reference
 * bins (counted here from the edges, bins (-inf,e1), [e1,e2), ..., [ek,+inf)). */
static void test_numeric_stats_equal_dw_stats(void **state)
{
    struct dw_config cfg = make_cfg();
    enum { NR = 300, NW = 250, MISS = 10 };
    double r[NR], w[NW];
    struct dw_agg *ra = dw_agg_new(&g_model, START);
    for (int i = 0; i < NR; i++) {
        r[i] = 40.0 + 0.37 * i + 5.0 * sin((double)i);
        add3(ra, "v1", r[i], "DE", NAN);
    }
    struct dw_agg *aggs[] = {ra};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_agg *wa = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < NW; i++) {
        w[i] = 55.0 + 0.41 * i + 4.0 * cos((double)i);
        add3(wa, "v1", w[i], "DE", NAN);
    }
    for (int i = 0; i < MISS; i++) {
        add3(wa, "v1", NAN, "DE", NAN);
    }
    json_t *rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
    json_t *f = jpath(rep, "features", "amount");

    qsort(r, NR, sizeof(double), cmp_double);
    qsort(w, NW, sizeof(double), cmp_double);
    char err[256];
    struct dw_stats_ks ks;
    assert_int_equal(dw_stats_ks_2samp(w, NULL, NW, r, NULL, NR, &ks, err, sizeof(err)), 0);
    json_t *jks = json_object_get(f, "ks");
    assert_rel_near(jreal(jks, "statistic"), ks.statistic, 1e-12);
    assert_rel_near(jreal(jks, "p_value"), ks.p_value, 1e-12);
    assert_true(ks.p_value < 0.05); /* a real difference: the test means something */
    double wd;
    assert_int_equal(dw_stats_wasserstein(w, NULL, NW, r, NULL, NR, &wd, err, sizeof(err)), 0);
    assert_rel_near(jreal(f, "wasserstein"), wd, 1e-12);
    assert_rel_near(jreal(f, "wasserstein_norm"), wd / pop_std(r, NR), 1e-12);

    const struct dw_ref_feature *rf = &ref->feats[0];
    size_t nb = rf->n_edges + 1;
    assert_int_equal(nb, 10);
    double cur[10] = {0};
    for (int i = 0; i < NW; i++) {
        size_t b = 0;
        while (b < rf->n_edges && w[i] >= rf->edges[b]) {
            b++;
        }
        cur[b] += 1.0 / NW;
    }
    assert_rel_near(jreal(f, "psi"), psi_by_hand(cur, rf->props, nb), 1e-12);
    assert_rel_near(jreal(f, "kl"), dw_stats_kl(cur, rf->props, nb), 1e-12);
    assert_rel_near(jreal(f, "js"), dw_stats_js(cur, rf->props, nb), 1e-12);
    assert_rel_near(jreal(f, "hellinger"), dw_stats_hellinger(cur, rf->props, nb), 1e-12);
    assert_rel_near(jreal(f, "missing_share"), (double)MISS / (NW + MISS), 1e-15);
    int out = 0;
    for (int i = 0; i < NW; i++) {
        out += w[i] < r[0] || w[i] > r[NR - 1];
    }
    assert_true(out > 0);
    assert_rel_near(jreal(f, "out_of_range_share"), (double)out / NW, 1e-15);

    /* 250 vs 300 values: auto runs KS; country (DE only on both sides: chi2 p = 1) is the
     * other p-value test of the window, so the score is BH over the two */
    assert_string_equal(jstr(f, "method"), "ks");
    json_t *country = jpath(rep, "features", "country");
    assert_string_equal(jstr(country, "method"), "chi2");
    double p[2] = {ks.p_value, jreal(json_object_get(country, "chi2"), "p_value")};
    assert_float_equal(p[1], 1.0, 0.0);
    double adj[2];
    dw_stats_bh_adjust(p, 2, adj);
    assert_rel_near(jreal(f, "score"), adj[0], 1e-12);
    assert_rel_near(jreal(f, "score"), 2.0 * ks.p_value, 1e-12);
    assert_float_equal(jreal(f, "threshold"), 0.05, 0.0);
    assert_true(json_is_true(json_object_get(f, "drift")));
    /* age has neither values nor reference: every statistic null */
    json_t *age = jpath(rep, "features", "age");
    const char *nulls[] = {"ks",    "psi",   "wasserstein", "wasserstein_norm",
                           "js",    "kl",    "hellinger",   "out_of_range_share",
                           "score", "drift", "mean"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (!json_is_null(json_object_get(age, nulls[i]))) {
            fail_msg("age.%s is not null", nulls[i]);
        }
    }
    assert_rel_near(jreal(age, "missing_share"), 1.0, 0.0);
    json_decref(rep);
    dw_agg_free(wa);
    dw_ref_free(ref);
    dw_agg_free(ra);
}

/* A constant reference has std 0: wasserstein_norm is null, and auto keeps KS for it. */
static void test_constant_reference(void **state)
{
    struct dw_config cfg = make_cfg();
    cfg.auto_max_sample = 10; /* large samples: auto would take Wasserstein */
    struct dw_agg *ra = dw_agg_new(&g_model, START);
    struct dw_agg *wa = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 100; i++) {
        add3(ra, "v1", 5.0, "DE", NAN);
        add3(wa, "v1", i < 90 ? 5.0 : 6.0, "DE", NAN);
    }
    struct dw_agg *aggs[] = {ra};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    assert_int_equal(ref->feats[0].n_sample, 1); /* 100 equal values merged into one */
    assert_int_equal(ref->feats[0].sample_w[0], 100);
    json_t *rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
    json_t *f = jpath(rep, "features", "amount");
    assert_rel_near(jreal(f, "wasserstein"), 0.1, 1e-15);
    assert_true(json_is_null(json_object_get(f, "wasserstein_norm")));
    assert_string_equal(jstr(f, "method"), "ks");
    assert_rel_near(jreal(json_object_get(f, "ks"), "statistic"), 0.1, 1e-15);
    assert_rel_near(jreal(f, "out_of_range_share"), 0.1, 1e-15);
    json_decref(rep);
    dw_ref_free(ref);
    dw_agg_free(wa);
    dw_agg_free(ra);
}

/* Categorical: chi2 and the G-test on the 2 x K table of counts over the union of categories,
 * JS and TVD on its proportions, unseen and missing shares. */
static void test_categorical_stats_equal_dw_stats(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *ra = dw_agg_new(&g_model, START);
    for (int i = 0; i < 100; i++) {
        add3(ra, "v1", NAN, i < 50 ? "DE" : i < 80 ? "FR" : "IT", NAN);
    }
    struct dw_agg *aggs[] = {ra};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    assert_non_null(ref->feats[1].cat_counts);
    assert_int_equal(ref->feats[1].cat_counts[1], 30); /* FR, names sorted */
    struct dw_agg *wa = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 100; i++) {
        add3(wa, "v1", NAN, i < 40 ? "DE" : i < 75 ? "FR" : i < 80 ? "IT" : "XX", NAN);
    }
    for (int i = 0; i < 5; i++) {
        add3(wa, "v1", NAN, NULL, NAN);
    }
    json_t *rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
    json_t *f = jpath(rep, "features", "country");
    /* columns DE FR IT XX */
    const uint64_t rc[] = {50, 30, 20, 0}, cc[] = {40, 35, 5, 20};
    const double rp[] = {.5, .3, .2, 0}, cp[] = {.4, .35, .05, .2};
    char err[256];
    struct dw_stats_chi2 chi, g;
    assert_int_equal(dw_stats_chi2_test(rc, cc, 4, false, &chi, err, sizeof(err)), 0);
    assert_int_equal(dw_stats_g_test(rc, cc, 4, false, &g, err, sizeof(err)), 0);
    json_t *jc = json_object_get(f, "chi2"), *jg = json_object_get(f, "g_test");
    assert_rel_near(jreal(jc, "statistic"), chi.statistic, 1e-12);
    assert_rel_near(jreal(jc, "p_value"), chi.p_value, 1e-12);
    assert_int_equal(jint(jc, "dof"), 3);
    assert_rel_near(jreal(jg, "statistic"), g.statistic, 1e-12);
    assert_rel_near(jreal(jg, "p_value"), g.p_value, 1e-12);
    assert_int_equal(jint(jg, "dof"), 3);
    assert_rel_near(jreal(f, "js"), dw_stats_js(cp, rp, 4), 1e-12);
    assert_rel_near(jreal(f, "tvd"), dw_stats_tvd(cp, rp, 4), 1e-12);
    assert_rel_near(jreal(f, "tvd"), 0.5 * (0.1 + 0.05 + 0.15 + 0.2), 1e-12);
    assert_rel_near(jreal(f, "psi"), psi_by_hand(cp, rp, 4), 1e-12);
    assert_int_equal(jint(f, "unseen"), 20);
    assert_rel_near(jreal(f, "unseen_share"), 0.2, 1e-15);
    assert_rel_near(jreal(f, "missing_share"), 5.0 / 105.0, 1e-15);
    assert_string_equal(jstr(f, "method"), "chi2");
    assert_rel_near(jreal(f, "score"), chi.p_value, 1e-12);
    json_decref(rep);

    /* Yates' correction when configured (a 2 x 2 table: DE and FR only) */
    struct dw_agg *w2 = dw_agg_new(&g_model, START + SIZE);
    struct dw_agg *r2 = dw_agg_new(&g_model, START);
    for (int i = 0; i < 60; i++) {
        add3(r2, "v1", NAN, i < 30 ? "DE" : "FR", NAN);
        add3(w2, "v1", NAN, i < 40 ? "DE" : "FR", NAN);
    }
    struct dw_agg *aggs2[] = {r2};
    struct dw_ref *ref2 = dw_ref_build(&g_model, aggs2, 1, 10);
    cfg.chi2_correction = 1;
    rep = dw_eval_window(&cfg, &g_model, w2, ref2, 0);
    const uint64_t a2[] = {30, 30}, b2[] = {40, 20};
    assert_int_equal(dw_stats_chi2_test(a2, b2, 2, true, &chi, err, sizeof(err)), 0);
    assert_rel_near(jreal(json_object_get(jpath(rep, "features", "country"), "chi2"), "statistic"),
                    chi.statistic, 1e-12);
    assert_int_equal(dw_stats_chi2_test(a2, b2, 2, false, &g, err, sizeof(err)), 0);
    assert_true(chi.statistic < g.statistic); /* the correction made a difference */
    json_decref(rep);
    dw_ref_free(ref2);
    dw_agg_free(r2);
    dw_agg_free(w2);
    dw_agg_free(wa);
    dw_ref_free(ref);
    dw_agg_free(ra);
}

/* auto: a p-value test while the smaller sample is at most auto_max_sample (1000), else a
 * distance; 1000 vs 1001 window values against a 1500-value reference. */
static void test_auto_boundary(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *ra = dw_agg_new_exact(&g_model, START, DW_AGG_MERGE_EXACT);
    for (int i = 0; i < 1500; i++) {
        add3(ra, "v1", (double)(i % 97) + 0.5 * (i % 7), i % 3 ? "DE" : "FR", NAN);
    }
    struct dw_agg *aggs[] = {ra};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    for (int n = 1000; n <= 1001; n++) {
        struct dw_agg *wa = dw_agg_new_exact(&g_model, START + SIZE, DW_AGG_MERGE_EXACT);
        for (int i = 0; i < n; i++) {
            add3(wa, "v1", (double)(i % 89) + 0.25 * (i % 5), i % 4 ? "DE" : "FR", NAN);
        }
        json_t *rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
        json_t *amount = jpath(rep, "features", "amount");
        json_t *country = jpath(rep, "features", "country");
        if (n == 1000) {
            assert_string_equal(jstr(amount, "method"), "ks");
            assert_string_equal(jstr(country, "method"), "chi2");
            assert_float_equal(jreal(amount, "threshold"), 0.05, 0.0);
        } else {
            assert_string_equal(jstr(amount, "method"), "wasserstein");
            assert_string_equal(jstr(country, "method"), "js");
            assert_double_exact(jreal(amount, "score"), jreal(amount, "wasserstein_norm"));
            assert_double_exact(jreal(country, "score"), jreal(country, "js"));
            assert_float_equal(jreal(amount, "threshold"), 0.1, 0.0);
            assert_float_equal(jreal(country, "threshold"), 0.1, 0.0);
            assert_true(json_is_boolean(json_object_get(amount, "drift")));
            assert_int_equal(json_is_true(json_object_get(amount, "drift")),
                             jreal(amount, "wasserstein_norm") >= 0.1);
        }
        json_decref(rep);
        /* the limit is configurable, and it is the smaller sample that counts */
        cfg.auto_max_sample = 999;
        rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
        assert_string_equal(jstr(jpath(rep, "features", "amount"), "method"), "wasserstein");
        json_decref(rep);
        cfg.auto_max_sample = 1000;
        dw_agg_free(wa);
    }
    dw_ref_free(ref);
    dw_agg_free(ra);
}

/* The borderline window of test_bh_borderline: amount shifted by 19.5 (KS p = 0.036 on 100 vs
 * 100 values), age and country as in the reference (p = 1). */
static void bh_data(struct dw_agg **ra, struct dw_ref **ref, struct dw_agg **wa)
{
    *ra = dw_agg_new(&g_model, START);
    *wa = dw_agg_new(&g_model, START + SIZE);
    for (int i = 1; i <= 100; i++) {
        add3(*ra, "v1", (double)i, i % 2 ? "DE" : "FR", (double)i);
        add3(*wa, "v1", i + 19.5, i % 2 ? "DE" : "FR", (double)i);
    }
    struct dw_agg *aggs[] = {*ra};
    *ref = dw_ref_build(&g_model, aggs, 1, 10);
}

static void test_bh_borderline(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *ra, *wa;
    struct dw_ref *ref;
    bh_data(&ra, &ref, &wa);
    /* three p-value tests (auto: ks, chi2, ks): BH lifts amount's 0.036 to 3 x 0.036 */
    json_t *rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
    json_t *amount = jpath(rep, "features", "amount");
    double p[3] = {jreal(json_object_get(amount, "ks"), "p_value"),
                   jreal(json_object_get(jpath(rep, "features", "country"), "chi2"), "p_value"),
                   jreal(json_object_get(jpath(rep, "features", "age"), "ks"), "p_value")};
    assert_true(p[0] > 0.05 / 3 && p[0] < 0.05); /* borderline: significant alone */
    double adj[3];
    dw_stats_bh_adjust(p, 3, adj);
    assert_rel_near(jreal(amount, "score"), adj[0], 1e-15);
    assert_rel_near(jreal(jpath(rep, "features", "country"), "score"), adj[1], 1e-15);
    assert_rel_near(jreal(jpath(rep, "features", "age"), "score"), adj[2], 1e-15);
    assert_rel_near(adj[0], 3.0 * p[0], 1e-12);
    assert_true(json_is_false(json_object_get(amount, "drift")));
    assert_int_equal(json_array_size(jpath(rep, "drift", "features")), 0);
    json_decref(rep);

    /* the same data with age and country judged by distances: amount is the only test */
    static struct dw_feature_detector dets[] = {{"fraud", "country", DW_METHOD_JS, NAN},
                                                {"fraud", "age", DW_METHOD_PSI, NAN}};
    cfg.detectors = dets;
    cfg.n_detectors = 2;
    rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
    amount = jpath(rep, "features", "amount");
    assert_rel_near(jreal(amount, "score"), p[0], 1e-15);
    assert_true(json_is_true(json_object_get(amount, "drift")));
    assert_float_equal(jreal(json_object_get(rep, "drift"), "share"), 1.0 / 3.0, 1e-15);
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));
    assert_string_equal(jstr(amount, "method"), "ks");
    json_decref(rep);
    dw_ref_free(ref);
    dw_agg_free(wa);
    dw_agg_free(ra);
}

/* min_samples: a window with fewer predictions is reported (scores and all) but nothing
 * drifts; drift_share decides the dataset verdict (at least the share). */
static void test_min_samples_and_drift_share(void **state)
{
    struct dw_config cfg = make_cfg();
    cfg.min_samples = 201; /* drifting_report has 200 predictions */
    json_t *rep = drifting_report(&cfg);
    json_t *amount = jpath(rep, "features", "amount");
    assert_true(jreal(amount, "score") < 1e-10);
    assert_true(json_is_false(json_object_get(amount, "drift")));
    assert_true(json_is_false(json_object_get(jpath(rep, "features", "country"), "drift")));
    assert_int_equal(json_array_size(jpath(rep, "drift", "features")), 0);
    assert_float_equal(jreal(json_object_get(rep, "drift"), "share"), 0.0, 0.0);
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));
    json_decref(rep);

    cfg.min_samples = 200;
    rep = drifting_report(&cfg);
    assert_true(json_is_true(json_object_get(jpath(rep, "features", "amount"), "drift")));
    assert_float_equal(jreal(json_object_get(rep, "drift"), "share"), 2.0 / 3.0, 1e-15);
    assert_true(json_is_true(jpath(rep, "drift", "dataset")));
    json_decref(rep);
    cfg.drift_share = 2.0 / 3.0; /* reached exactly: drifts */
    rep = drifting_report(&cfg);
    assert_true(json_is_true(jpath(rep, "drift", "dataset")));
    json_decref(rep);
    cfg.drift_share = 0.7;
    rep = drifting_report(&cfg);
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));
    assert_int_equal(json_array_size(jpath(rep, "drift", "features")), 2);
    json_decref(rep);
}

/* models.<m>.features.<f>: {method, threshold} decide the verdict and what is reported. */
static void test_method_threshold_from_config(void **state)
{
    struct dw_config cfg = make_cfg();
    static struct dw_feature_detector d1[] = {{"fraud", "amount", DW_METHOD_PSI, 1e6},
                                              {"fraud", "country", DW_METHOD_TVD, NAN},
                                              {"fraud", "age", DW_METHOD_KS, 0.01}};
    cfg.detectors = d1;
    cfg.n_detectors = 3;
    json_t *rep = drifting_report(&cfg);
    json_t *amount = jpath(rep, "features", "amount");
    json_t *country = jpath(rep, "features", "country");
    json_t *age = jpath(rep, "features", "age");
    assert_string_equal(jstr(amount, "method"), "psi");
    assert_double_exact(jreal(amount, "score"), jreal(amount, "psi"));
    assert_float_equal(jreal(amount, "threshold"), 1e6, 0.0);
    assert_true(json_is_false(json_object_get(amount, "drift"))); /* psi 8.3 < 1e6 */
    assert_string_equal(jstr(country, "method"), "tvd");
    assert_float_equal(jreal(country, "score"), 1.0, 1e-15); /* XX against DE/FR */
    assert_float_equal(jreal(country, "threshold"), 0.1, 0.0);
    assert_true(json_is_true(json_object_get(country, "drift")));
    assert_string_equal(jstr(age, "method"), "ks");
    assert_float_equal(jreal(age, "threshold"), 0.01, 0.0);
    assert_float_equal(jreal(age, "score"), 1.0, 1e-12); /* the same distribution */
    assert_true(json_is_false(json_object_get(age, "drift")));
    assert_int_equal(json_array_size(jpath(rep, "drift", "features")), 1);
    assert_string_equal(json_string_value(json_array_get(jpath(rep, "drift", "features"), 0)),
                        "country");
    json_decref(rep);

    static struct dw_feature_detector d2[] = {{"fraud", "amount", DW_METHOD_WASSERSTEIN, 5.0},
                                              {"fraud", "country", DW_METHOD_G_TEST, NAN},
                                              {"fraud", "age", DW_METHOD_HELLINGER, NAN}};
    cfg.detectors = d2;
    cfg.psi_threshold = 123.0; /* not used by any feature now */
    rep = drifting_report(&cfg);
    amount = jpath(rep, "features", "amount");
    country = jpath(rep, "features", "country");
    age = jpath(rep, "features", "age");
    assert_string_equal(jstr(amount, "method"), "wasserstein");
    assert_double_exact(jreal(amount, "score"), jreal(amount, "wasserstein_norm"));
    assert_float_equal(jreal(amount, "threshold"), 5.0, 0.0);
    /* reference 1..100 (std 28.866), window all 1000: W1 = 949.5, normalised 32.9 */
    assert_rel_near(jreal(amount, "wasserstein"), 949.5, 1e-12);
    assert_true(json_is_true(json_object_get(amount, "drift")));
    assert_string_equal(jstr(country, "method"), "g_test");
    /* the only p-value test of the window: its score is its own p-value */
    assert_double_exact(jreal(country, "score"),
                        jreal(json_object_get(country, "g_test"), "p_value"));
    assert_float_equal(jreal(country, "threshold"), 0.05, 0.0);
    assert_string_equal(jstr(age, "method"), "hellinger");
    assert_double_exact(jreal(age, "score"), jreal(age, "hellinger"));
    assert_float_equal(jreal(age, "threshold"), 0.1, 0.0);
    json_decref(rep);

    /* a detector of another model changes nothing */
    static struct dw_feature_detector d3[] = {{"churn", "amount", DW_METHOD_PSI, NAN}};
    cfg.detectors = d3;
    cfg.n_detectors = 1;
    rep = drifting_report(&cfg);
    assert_string_equal(jstr(jpath(rep, "features", "amount"), "method"), "ks");
    json_decref(rep);
}

static int is_hex32(const char *s)
{
    if (strlen(s) != 32) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static void test_idempotency_key(void **state)
{
    char *k1 = dw_idempotency_key("prod", "fraud", START, "alert");
    char *k2 = dw_idempotency_key("prod", "fraud", START, "alert");
    char *k3 = dw_idempotency_key("prod", "fraud", START + SIZE, "alert");
    char *k4 = dw_idempotency_key("prod", "fraud", START, "trigger");
    char *k5 = dw_idempotency_key("staging", "fraud", START, "alert");
    char *k6 = dw_idempotency_key("prod", "churn", START, "alert");
    assert_true(is_hex32(k1));
    /* SHA-256("prod\x1f" "fraud\x1f" "1794999900000\x1f" "alert")[:16 bytes], from hashlib */
    assert_string_equal(k1, "453ce2a47d0b3648c65ec70ec60c1dc5");
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3);
    assert_string_not_equal(k1, k4);
    assert_string_not_equal(k1, k5);
    assert_string_not_equal(k1, k6);
    assert_string_not_equal(k3, k4);
    free(k1);
    free(k2);
    free(k3);
    free(k4);
    free(k5);
    free(k6);
}

/* One prediction whose amount is a raw value (NaN and +-inf as values, not "missing"). */
static void add_raw_amount(struct dw_agg *agg, double amount)
{
    struct dw_prediction *p = calloc(1, sizeof(*p) + 3 * sizeof(struct dw_val));
    assert_non_null(p);
    p->model = &g_model;
    p->features[0].kind = DW_VAL_NUM;
    p->features[0].num = amount;
    p->features[1].kind = DW_VAL_STR;
    p->features[1].str = "NaN"; /* a categorical feature's NaN is a category */
    p->features[1].len = 3;
    p->features[2].kind = DW_VAL_MISSING;
    dw_agg_add_prediction(agg, dw_agg_version_slot(agg, "v1", 2), p);
    free(p);
}

/*
 * Non-finite values of a numeric feature: counted in nan / inf with their shares of all the
 * feature's values (count + missing + nan + inf, missing_share too); every statistic is that
 * of the finite values alone, equal to the report of the same window without them.
 */
static void test_non_finite_report(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *ra = dw_agg_new(&g_model, START);
    for (int i = 0; i < 200; i++) {
        add3(ra, "v1", 10.0 + 0.5 * i, "DE", NAN);
    }
    struct dw_agg *aggs[] = {ra};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_agg *wa = dw_agg_new(&g_model, START + SIZE); /* with non-finite values */
    struct dw_agg *wf = dw_agg_new(&g_model, START + SIZE); /* the same without them */
    for (int i = 0; i < 150; i++) {
        double v = 30.0 + 0.7 * i;
        add_raw_amount(wa, v);
        add_raw_amount(wf, v);
    }
    for (int i = 0; i < 10; i++) {
        add3(wa, "v1", NAN, "DE", NAN); /* missing */
        add3(wf, "v1", NAN, "DE", NAN);
    }
    for (int i = 0; i < 24; i++) {
        add_raw_amount(wa, NAN);
    }
    for (int i = 0; i < 16; i++) {
        add_raw_amount(wa, i % 4 ? INFINITY : -INFINITY);
    }
    json_t *rep = dw_eval_window(&cfg, &g_model, wa, ref, 0);
    json_t *base = dw_eval_window(&cfg, &g_model, wf, ref, 0);
    json_t *f = jpath(rep, "features", "amount");
    json_t *b = jpath(base, "features", "amount");
    assert_int_equal(jint(f, "count"), 150);
    assert_int_equal(jint(f, "missing"), 10);
    assert_int_equal(jint(f, "nan"), 24);
    assert_int_equal(jint(f, "inf"), 16);
    assert_rel_near(jreal(f, "missing_share"), 10.0 / 200.0, 1e-15);
    assert_rel_near(jreal(f, "nan_share"), 24.0 / 200.0, 1e-15);
    assert_rel_near(jreal(f, "inf_share"), 16.0 / 200.0, 1e-15);
    assert_int_equal(jint(b, "nan"), 0);
    assert_int_equal(jint(b, "inf"), 0);
    assert_rel_near(jreal(b, "nan_share"), 0.0, 0.0);
    assert_rel_near(jreal(b, "missing_share"), 10.0 / 160.0, 1e-15);
    const char *same[] = {"mean",
                          "std",
                          "min",
                          "max",
                          "psi",
                          "wasserstein",
                          "wasserstein_norm",
                          "js",
                          "kl",
                          "hellinger",
                          "out_of_range_share",
                          "score"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        json_t *x = json_object_get(f, same[i]);
        if (!json_is_real(x) || !isfinite(json_real_value(x)) ||
            !json_equal(x, json_object_get(b, same[i]))) {
            fail_msg("amount.%s differs from the window without non-finite values", same[i]);
        }
    }
    assert_true(json_equal(json_object_get(f, "ks"), json_object_get(b, "ks")));
    assert_true(json_equal(json_object_get(f, "drift"), json_object_get(b, "drift")));
    /* the categorical feature counts "NaN" as a category and has no nan / inf fields */
    json_t *c = jpath(rep, "features", "country");
    assert_int_equal(jint(c, "count"), 200);
    assert_null(json_object_get(c, "nan"));
    assert_null(json_object_get(c, "nan_share"));
    /* a feature with no value at all: shares null */
    struct dw_agg *empty = dw_agg_new(&g_model, START + 2 * SIZE);
    add3(empty, "v1", NAN, NULL, NAN);
    json_t *re = dw_eval_window(&cfg, &g_model, empty, ref, 0);
    json_t *age = jpath(re, "features", "age");
    assert_rel_near(jreal(age, "missing_share"), 1.0, 0.0);
    assert_rel_near(jreal(age, "nan_share"), 0.0, 0.0);
    json_decref(re);
    dw_agg_free(empty);
    json_decref(base);
    json_decref(rep);
    dw_agg_free(wf);
    dw_agg_free(wa);
    dw_ref_free(ref);
    dw_agg_free(ra);
}

/* ------------------------------------------------------------------ hostile references */

/* A packed reference document of g_model whose "amount" sample is one value (weight 1). */
static json_t *one_value_ref_doc(void)
{
    struct dw_agg *r = dw_agg_new(&g_model, START);
    add3(r, "v1", 42.0, "DE", NAN);
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    json_t *doc = dw_ref_to_json_packed(ref);
    dw_ref_free(ref);
    dw_agg_free(r);
    return doc;
}

/*
 * Regression: a packed sample whose "n" times 16 wraps around 2^64 to the byte count of its
 * data ("n": 2^61 + 1 with 16 bytes) passed the size check, and sample_unpack wrote n pairs
 * into arrays sized by the wrapped product. The reader refuses it and names the feature.
 */
/* Decodes a reference's Redis form (or JSON) and checks that it reports on w exactly as
 * `want` (the report against the reference it was made from). */
static void assert_decodes_same(const struct dw_config *cfg, struct dw_agg *w, const void *data,
                                size_t len, json_t *want)
{
    char err[256] = "";
    struct dw_ref *back = dw_ref_decode(&g_model, data, len, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    json_t *got = dw_eval_window(cfg, &g_model, w, back, 0);
    assert_true(json_equal(want, got));
    json_decref(got);
    dw_ref_free(back);
}

/*
 * The reference's Redis form (dw_ref_encode): JSON without the samples, a NUL byte, then the
 * samples in binary. It decodes to the identical reference (identical reports), much smaller
 * than the packed JSON; the packed JSON alone (older versions) still decodes through
 * dw_ref_decode; a tail that does not hold what the document announces is refused, naming the
 * feature, whatever the offset and count (no read beyond the tail, no size overflow).
 */
/* dw_ref_writer_fill() in pieces of at most max bytes (the JSON text whole, then a pair may
 * pass max by its 20 bytes at most) gives dw_ref_encode()'s bytes, and says 1 until its last. */
static void assert_writer_pieces(const struct dw_ref *ref, const struct dw_buf *whole, size_t max)
{
    struct dw_ref_writer w;
    dw_ref_writer_init(&w, ref);
    struct dw_buf got, piece;
    dw_buf_init(&got);
    dw_buf_init(&piece);
    size_t head = strlen((const char *)whole->data) + 1, pieces = 0;
    int more = 1;
    while (more) {
        dw_buf_reset(&piece);
        more = dw_ref_writer_fill(&w, &piece, max);
        size_t limit = (pieces++ == 0 ? head : 0) + max + 20;
        if (piece.len > limit || (more && piece.len == 0)) {
            fail_msg("piece %zu of at most %zu bytes: %zu (more: %d)", pieces, max, piece.len,
                     more);
        }
        dw_buf_put(&got, piece.data, piece.len);
    }
    assert_int_equal(got.len, whole->len);
    assert_memory_equal(got.data, whole->data, whole->len);
    if (whole->len > head + 2 * max + 40) {
        assert_true(pieces > 2);
    }
    dw_ref_writer_free(&w);
    dw_buf_free(&piece);
    dw_buf_free(&got);
}

/* ref's Redis form (dw_ref_encode, into blob: free it) read back for g_model; a reference that
 * does not decode fails the test. The writer's pieces make the same bytes. */
static struct dw_ref *encode_decode(const struct dw_ref *ref, struct dw_buf *blob)
{
    char err[256] = "";
    dw_buf_init(blob);
    dw_ref_encode(ref, blob);
    for (size_t max = 1; max < 100000; max *= 17) {
        assert_writer_pieces(ref, blob, max);
    }
    struct dw_ref *back = dw_ref_decode(&g_model, blob->data, blob->len, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    return back;
}

/* Where a reference came from (source, created_at, profile) and a profile's labelled outcomes
 * survive both forms (the JSON document and the Redis form); a profile written before origin
 * existed reads as a profile; malformed ones are errors naming the member. */
static void test_ref_origin_and_outcomes(void **state)
{
    (void)state;
    struct dw_agg *r = dw_agg_new(&g_model, START);
    add_labeled(r, "v1", 40, 30, 1.0);
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    assert_int_equal(ref->source, DW_REF_SOURCE_WINDOWS);
    ref->source = DW_REF_SOURCE_PROFILE;
    ref->created_ms = START - 86400000;
    ref->profile = strdup("/data/fraud.json");
    dw_ref_set_outcomes(ref, &g_model, r);
    assert_int_equal(ref->outcomes->all.labeled, 40);

    struct dw_buf blob;
    char err[256] = "";
    struct dw_ref *back = encode_decode(ref, &blob);
    assert_int_equal(back->source, DW_REF_SOURCE_PROFILE);
    assert_int_equal(back->created_ms, START - 86400000);
    assert_string_equal(back->profile, "/data/fraud.json");
    assert_non_null(back->outcomes);
    assert_int_equal(back->outcomes->all.labeled, 40);
    assert_int_equal(back->outcomes->all.correct, 30);
    assert_int_equal(back->outcomes->n_versions, 1);
    json_t *rj = dw_eval_reference_json(&g_model, back);
    assert_string_equal(jstr(rj, "source"), "profile");
    assert_string_equal(jstr(rj, "status"), "ready");
    assert_string_equal(jstr(rj, "profile"), "/data/fraud.json");
    assert_string_equal(jstr(rj, "created_at"), "2026-11-17T11:05:00Z");
    assert_near(jreal(rj, "accuracy"), 0.75, 0.0);
    json_decref(rj);
    dw_ref_free(back);

    /* a profile as `driftwatch profile` wrote it before: "source" is its input file */
    json_t *doc = dw_ref_to_json(ref);
    json_object_del(doc, "origin");
    json_object_del(doc, "outcomes");
    json_object_set_new(
        doc, "source",
        json_pack("{s:s,s:s}", "file", "train.csv", "created_at", "2026-11-01T00:00:00Z"));
    back = dw_ref_from_json(&g_model, doc, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(back->source, DW_REF_SOURCE_PROFILE);
    assert_string_equal(back->profile, "train.csv");
    assert_int_equal(back->created_ms, 1793491200000LL); /* 2026-11-01 */
    assert_null(back->outcomes);
    dw_ref_free(back);
    /* an older stored reference: the first windows */
    json_object_del(doc, "source");
    back = dw_ref_from_json(&g_model, doc, err, sizeof(err));
    assert_int_equal(back->source, DW_REF_SOURCE_WINDOWS);
    assert_int_equal(back->created_ms, 0);
    dw_ref_free(back);
    json_decref(doc);

    doc = dw_ref_to_json(ref);
    json_object_set_new(json_object_get(doc, "origin"), "source", json_string("yesterday"));
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_non_null(strstr(err, "reference: origin needs a source"));
    json_decref(doc);
    doc = dw_ref_to_json(ref);
    json_object_set_new(json_object_get(doc, "outcomes"), "data", json_string("AAAA"));
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_non_null(strstr(err, "reference: outcomes: "));
    json_decref(doc);
    dw_buf_free(&blob);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* The reference `ref` (its Redis document doc) written with an earlier form of the tail:
 * whole little-endian f64 values and varint (or u64) weights. Checks that it decodes to the
 * same report of w as r1; @returns its size. */
static size_t old_tail_form(const struct dw_ref *ref, json_t *doc, const char *encoding, int varint,
                            const struct dw_config *cfg, struct dw_agg *w, json_t *r1)
{
    json_t *old_doc = json_deep_copy(doc);
    struct dw_buf old_tail;
    dw_buf_init(&old_tail);
    for (size_t f = 0; f < ref->n_feats; f++) {
        const struct dw_ref_feature *rf = &ref->feats[f];
        json_t *os = json_object_get(jpath(old_doc, "features", rf->name), "sample");
        if (!rf->sample) {
            continue;
        }
        json_object_set_new(os, "encoding", json_string(encoding));
        json_object_set_new(os, "offset", json_integer((json_int_t)old_tail.len));
        for (size_t k = 0; k < rf->n_sample; k++) {
            dw_buf_put_f64(&old_tail, rf->sample[k]);
            if (varint) {
                dw_buf_put_uvarint(&old_tail, dw_ref_sample_weight(rf, k));
            } else {
                dw_buf_put_u64(&old_tail, dw_ref_sample_weight(rf, k));
            }
        }
    }
    char *old_text = json_dumps(old_doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    struct dw_buf old_blob;
    dw_buf_init(&old_blob);
    dw_buf_put(&old_blob, old_text, strlen(old_text) + 1); /* with its NUL */
    dw_buf_put(&old_blob, old_tail.data, old_tail.len);
    assert_decodes_same(cfg, w, old_blob.data, old_blob.len, r1);
    size_t len = old_blob.len;
    free(old_text);
    json_decref(old_doc);
    dw_buf_free(&old_tail);
    dw_buf_free(&old_blob);
    return len;
}

/* Every double the sample can hold comes back bit for bit from the tail's key differences:
 * negative and positive, -0.0, subnormal and huge values; a difference that carries the key
 * beyond 64 bits is a malformed sample. */
static void test_ref_tail_keys(void **state)
{
    (void)state;
    static const double vals[] = {
        -1.7976931348623157e308, -1e300, -3.5, -1.0, -4.9e-324,     -0.0, 4.9e-324,
        2.2250738585072014e-308, 1e-300, 0.5,  1.0,  1.0 + 2.2e-16, 3.5,  1e300,
        1.7976931348623157e308};
    struct dw_agg *r = dw_agg_new(&g_model, START);
    for (size_t i = 0; i < DW_ARRAY_SIZE(vals); i++) {
        for (size_t k = 0; k <= i % 3; k++) { /* weights 1 to 3 */
            add3(r, "v1", vals[i], "DE", 1.0);
        }
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_buf blob;
    struct dw_ref *back = encode_decode(ref, &blob);
    const struct dw_ref_feature *a = &ref->feats[0], *b = &back->feats[0];
    assert_int_equal(a->n_sample, 30); /* each value as often as its weight: 5 * (1 + 2 + 3) */
    assert_int_equal(b->n_sample, a->n_sample);
    for (size_t i = 0; i < a->n_sample; i++) {
        assert_memory_equal(&a->sample[i], &b->sample[i], sizeof(double));
        assert_int_equal(dw_ref_sample_weight(a, i), dw_ref_sample_weight(b, i));
    }
    /* the first pair's key difference (the whole key of the smallest value, a varint of 9
     * bytes here) made 0xff...: the next difference then passes 2^64 */
    const unsigned char *nul = memchr(blob.data, 0, blob.len);
    size_t at = (size_t)(nul - blob.data) + 1; /* amount's sample is the tail's first */
    struct dw_buf bad;
    dw_buf_init(&bad);
    dw_buf_put(&bad, blob.data, at);
    dw_buf_put_uvarint(&bad, UINT64_MAX);
    struct dw_reader rd;
    dw_reader_init(&rd, blob.data + at, blob.len - at);
    (void)dw_rd_uvarint(&rd); /* the original first difference */
    dw_buf_put(&bad, blob.data + at + rd.pos, blob.len - at - rd.pos);
    char err[256] = "";
    assert_null(dw_ref_decode(&g_model, bad.data, bad.len, err, sizeof(err)));
    assert_contains(err, "reference feature amount: malformed sample");
    assert_contains(err, "beyond 64 bits");
    dw_buf_free(&bad);
    dw_buf_free(&blob);
    dw_ref_free(back);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* The sample's equal values merged: distinct values and their weights; returns their number. */
static size_t merge_equal(const double *x, size_t n, double *v, uint64_t *w)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && v[out - 1] == x[i]) {
            w[out - 1]++;
        } else {
            v[out] = x[i];
            w[out++] = 1;
        }
    }
    return out;
}

/*
 * A sample whose values are nearly all distinct (a continuous feature's) keeps no weights:
 * sample_w is NULL and a value seen k times is there k times, in the reference built and in
 * the one read back from its Redis form; KS and Wasserstein are the same as over the weighted
 * distinct values, and the two references judge a window alike. A sample of few distinct values
 * keeps its weights.
 */
static void test_ref_unit_weights(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new_exact(&g_model, START, 4096); /* an exact sketch */
    const double twice = sqrt(5.0) * 3.14159; /* the value of i = 5, and of the last 100 */
    for (int i = 0; i < 2000; i++) {
        add3(r, "v1", i < 1900 ? sqrt((double)i) * 3.14159 : twice, "DE", (double)(i % 7));
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    const struct dw_ref_feature *amount = &ref->feats[0];
    const struct dw_ref_feature *few = &ref->feats[2];
    assert_int_equal(amount->n_sample, 2000);
    assert_null(amount->sample_w);
    assert_int_equal(dw_ref_sample_weight(amount, 1999), 1);
    size_t seen = 0;
    for (size_t i = 0; i < amount->n_sample; i++) {
        seen += amount->sample[i] == twice;
        assert_true(i == 0 || amount->sample[i] >= amount->sample[i - 1]);
    }
    assert_int_equal(seen, 101);
    assert_int_equal(few->n_sample, 7);
    assert_non_null(few->sample_w);
    assert_int_equal(dw_ref_sample_weight(few, 6), 285); /* 2000 = 7 * 285 + 5 */
    struct dw_buf blob;
    struct dw_ref *back = encode_decode(ref, &blob);
    assert_null(back->feats[0].sample_w);
    assert_int_equal(back->feats[0].n_sample, 2000);
    assert_int_equal(back->feats[2].sample_w[0], 286);

    double v[2000], x[300];
    uint64_t wt[2000];
    size_t nv = merge_equal(amount->sample, amount->n_sample, v, wt);
    assert_int_equal(nv, 1900);
    for (int i = 0; i < 300; i++) {
        x[i] = sqrt((double)i * 5.0) * 2.0;
    }
    struct dw_stats_ks ks1, ks2;
    double wd1, wd2;
    char err[128];
    assert_int_equal(dw_stats_ks_wasserstein(x, NULL, 300, amount->sample, NULL, 2000, &ks1, &wd1,
                                             err, sizeof(err)),
                     0);
    assert_int_equal(dw_stats_ks_wasserstein(x, NULL, 300, v, wt, nv, &ks2, &wd2, err, sizeof(err)),
                     0);
    assert_double_exact(ks1.statistic, ks2.statistic);
    assert_double_exact(ks1.p_value, ks2.p_value);
    assert_double_exact(wd1, wd2);

    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 300; i++) {
        add3(w, "v1", x[i], "DE", (double)(i % 5));
    }
    json_t *r1 = dw_eval_window(&cfg, &g_model, w, ref, 0);
    json_t *r2 = dw_eval_window(&cfg, &g_model, w, back, 0);
    assert_true(json_equal(r1, r2));
    assert_double_exact(jreal(json_object_get(jpath(r1, "features", "amount"), "ks"), "p_value"),
                        ks1.p_value);
    json_decref(r1);
    json_decref(r2);
    dw_agg_free(w);
    dw_buf_free(&blob);
    dw_ref_free(back);
    dw_ref_free(ref);
    dw_agg_free(r);
}

static void test_ref_binary_form(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START);
    for (int i = 0; i < 3000; i++) {
        add3(r, "v1", sqrt((double)i) * 3.14159, i % 3 ? "DE" : "FR", (double)(i % 97) / 7.0);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_buf blob;
    char err[256] = "";
    struct dw_ref *back = encode_decode(ref, &blob);
    for (size_t f = 0; f < ref->n_feats; f++) {
        assert_int_equal(ref->feats[f].n_sample, back->feats[f].n_sample);
        for (size_t i = 0; i < ref->feats[f].n_sample; i++) {
            assert_double_exact(ref->feats[f].sample[i], back->feats[f].sample[i]);
            assert_int_equal(dw_ref_sample_weight(&ref->feats[f], i),
                             dw_ref_sample_weight(&back->feats[f], i));
        }
    }
    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 500; i++) {
        add3(w, "v1", sqrt((double)i * 7.0) * 2.5, i % 5 ? "DE" : "IT", (double)(i % 13));
    }
    json_t *r1 = dw_eval_window(&cfg, &g_model, w, ref, 0);
    dw_ref_free(back);
    assert_decodes_same(&cfg, w, blob.data, blob.len, r1);

    /* smaller than the packed JSON, which still decodes */
    json_t *pdoc = dw_ref_to_json_packed(ref);
    char *ptext = json_dumps(pdoc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    assert_true(blob.len * 5 < strlen(ptext) * 4);
    assert_decodes_same(&cfg, w, ptext, strlen(ptext), r1);
    free(ptext);
    json_decref(pdoc);

    /* hostile tails: cut short, an offset or count past it, a count that overflows n * 16 */
    assert_null(dw_ref_decode(&g_model, blob.data, blob.len - 1, err, sizeof(err)));
    assert_contains(err, "reference feature age: malformed sample"); /* the last in the tail */
    const unsigned char *nul = memchr(blob.data, 0, blob.len);
    size_t text_len = (size_t)(nul - blob.data);
    char *text = dw_strndup((const char *)blob.data, text_len);
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    json_t *sample = json_object_get(jpath(doc, "features", "amount"), "sample");
    assert_string_equal(jstr(sample, "encoding"), "f64key-delta-uvarint-tail");
    /* The tail's earlier forms (whole f64 values with varint weights, 9 bytes a pair at least;
     * with u64 weights, 16) still decode, to the same reports; each form is smaller than the
     * one before it (values as differences of ascending keys, weights of 1 in a byte). */
    size_t f64_len = old_tail_form(ref, doc, "f64le-uvarint-tail", 1, &cfg, w, r1);
    size_t u64_len = old_tail_form(ref, doc, "f64le-u64le-tail", 0, &cfg, w, r1);
    assert_true(blob.len < f64_len);
    assert_true(f64_len < u64_len);
    const json_int_t bad[][2] = {{(json_int_t)1 << 61, 0},
                                 {1, (json_int_t)blob.len},
                                 {1, -1},
                                 {0, 0},
                                 {((json_int_t)1 << 60) + 1, 16}};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        json_object_set_new(sample, "n", json_integer(bad[k][0]));
        json_object_set_new(sample, "offset", json_integer(bad[k][1]));
        char *t = json_dumps(doc, JSON_COMPACT);
        struct dw_buf hostile;
        dw_buf_init(&hostile);
        dw_buf_put(&hostile, t, strlen(t));
        dw_buf_put(&hostile, nul, blob.len - text_len);
        err[0] = '\0';
        assert_null(dw_ref_decode(&g_model, hostile.data, hostile.len, err, sizeof(err)));
        assert_contains(err, "reference feature amount: malformed sample");
        dw_buf_free(&hostile);
        free(t);
    }
    /* the tail form without its tail */
    assert_null(dw_ref_decode(&g_model, blob.data, text_len, err, sizeof(err)));
    assert_contains(err, "malformed sample");
    json_decref(doc);
    free(text);
    json_decref(r1);
    dw_agg_free(w);
    dw_agg_free(r);
    dw_ref_free(ref);
    dw_buf_free(&blob);
}

static void test_ref_packed_sample_count_overflow(void **state)
{
    (void)state;
    char err[256];
    json_t *doc = one_value_ref_doc();
    json_t *sample = json_object_get(jpath(doc, "features", "amount"), "sample");
    assert_int_equal(jint(sample, "n"), 1);
    struct dw_ref *ok = dw_ref_from_json(&g_model, doc, err, sizeof(err));
    if (!ok) {
        fail_msg("from_json: %s", err);
    }
    assert_int_equal(ok->feats[0].n_sample, 1);
    dw_ref_free(ok);
    /* 16 * (2^61 + 1) = 2^65 + 16 = 16 (mod 2^64); 16 * (2^60 + 2) = 32 with two pairs */
    json_object_set_new(sample, "n", json_integer((json_int_t)((1ULL << 61) + 1)));
    err[0] = '\0';
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_contains(err, "reference feature amount");
    assert_contains(err, "n ");
    json_object_set_new(sample, "n", json_integer((json_int_t)((1ULL << 60) + 2)));
    unsigned char two[32] = {0};
    memcpy(two, (const unsigned char[]){0, 0, 0, 0, 0, 0, 0x45, 0x40, 1}, 9); /* 42.0, 1 */
    memcpy(two + 16, two, 16);
    char *b64 = dw_base64(two, sizeof(two));
    json_object_set_new(sample, "data", json_string(b64));
    free(b64);
    err[0] = '\0';
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_contains(err, "reference feature amount");
    json_decref(doc);
}

/*
 * Sample weights and category counts that add up to the feature's count only modulo 2^64 are
 * refused: the sum is checked for overflow, not wrapped.
 */
static void test_ref_counts_overflow(void **state)
{
    (void)state;
    char err[256];
    json_t *doc = one_value_ref_doc();
    json_t *amount = jpath(doc, "features", "amount");
    /* the arrays form (profiles): (2^63 - 1) + (2^63 - 1) + 3 = 2^64 + 1 = 1 (mod 2^64) */
    json_t *arrays = json_pack("{s:[f,f,f],s:[I,I,I]}", "values", 1.0, 2.0, 3.0, "weights",
                               (json_int_t)INT64_MAX, (json_int_t)INT64_MAX, (json_int_t)3);
    json_object_set_new(amount, "sample", arrays);
    err[0] = '\0';
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_contains(err, "reference feature amount");
    assert_contains(err, "weights");
    /* the packed form: 2^63 + 2^63 + 1 */
    json_object_del(amount, "sample");
    struct dw_buf b;
    dw_buf_init(&b);
    const uint64_t w[] = {1ULL << 63, 1ULL << 63, 1};
    for (int i = 0; i < 3; i++) {
        dw_buf_put_f64(&b, (double)i);
        dw_buf_put_u64(&b, w[i]);
    }
    char *b64 = dw_base64(b.data, b.len);
    json_object_set_new(
        amount, "sample",
        json_pack("{s:s,s:i,s:s}", "encoding", "base64-f64le-u64le", "n", 3, "data", b64));
    free(b64);
    dw_buf_free(&b);
    err[0] = '\0';
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_contains(err, "reference feature amount");
    assert_contains(err, "weights");
    json_object_del(amount, "sample");
    /* category counts: three categories, (2^63 - 1) + (2^63 - 1) + 3 against count 1 */
    json_t *country = jpath(doc, "features", "country");
    json_object_set_new(country, "categories",
                        json_pack("{s:f,s:f,s:f}", "DE", 0.5, "FR", 0.5, "IT", 0.0));
    json_object_set_new(country, "category_counts",
                        json_pack("{s:I,s:I,s:I}", "DE", (json_int_t)INT64_MAX, "FR",
                                  (json_int_t)INT64_MAX, "IT", (json_int_t)3));
    err[0] = '\0';
    assert_null(dw_ref_from_json(&g_model, doc, err, sizeof(err)));
    assert_contains(err, "reference feature country");
    assert_contains(err, "counts");
    json_decref(doc);
}

/* ------------------------------------------------------------------ output and label drift */

/* A prediction of model m with every feature missing, class cls (value num) and score
 * (negative: none). */
static void add_out(struct dw_agg *agg, const char *cls, double num, double score)
{
    const struct dw_model_cfg *m = agg->model;
    struct dw_prediction *p = calloc(1, sizeof(*p) + m->n_features * sizeof(struct dw_val));
    assert_non_null(p);
    p->model = m;
    snprintf(p->pred.text, sizeof(p->pred.text), "%s", cls);
    p->pred.len = strlen(cls);
    p->pred.num = num;
    p->has_score = score >= 0;
    p->score = score;
    dw_agg_add_prediction(agg, dw_agg_version_slot(agg, "v1", 2), p);
    free(p);
}

/* 100 predictions: scores i / 100, class "1" for even i; labels "1" for i % 4 < 2 (half). */
static struct dw_agg *out_reference_window(void)
{
    struct dw_agg *agg = dw_agg_new_exact(&g_model, START, DW_AGG_MERGE_EXACT);
    for (int i = 0; i < 100; i++) {
        add_out(agg, i % 2 ? "0" : "1", 0, (double)i / 100.0);
        outcome(agg, "v1", i % 2 ? "0" : "1", i % 4 < 2 ? "1" : "0", -1);
    }
    return agg;
}

/* The score distribution and the predicted class are judged like features (KS, chi-squared
 * for these sample sizes), on their own: the dataset verdict stays about the inputs. */
static void test_prediction_drift(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = out_reference_window();
    struct dw_ref *ref = dw_ref_build(&g_model, &r, 1, 10);
    assert_true(ref->has_outputs);
    assert_int_equal(ref->out[DW_REF_OUT_SCORE].count, 100);
    assert_int_equal(ref->out[DW_REF_OUT_PRED].count, 100);
    assert_int_equal(ref->out[DW_REF_OUT_LABEL].count, 0); /* not final when built */

    /* the same traffic: nothing drifts */
    struct dw_agg *same = out_reference_window();
    json_t *rep = dw_eval_window(&cfg, &g_model, same, ref, 0);
    json_t *pd = json_object_get(rep, "prediction_drift");
    assert_string_equal(jstr(pd, "status"), "ready");
    assert_string_equal(jstr(json_object_get(pd, "score"), "method"), "ks");
    assert_double_exact(jreal(jpath(pd, "score", "ks"), "statistic"), 0.0);
    assert_true(json_is_false(jpath(pd, "score", "drift")));
    assert_string_equal(jstr(json_object_get(pd, "class"), "method"), "chi2");
    assert_true(json_is_false(jpath(pd, "class", "drift")));
    assert_true(json_is_false(json_object_get(pd, "drift")));
    assert_string_equal(jstr(json_object_get(rep, "label_drift"), "status"), "not_final");
    json_decref(rep);

    /* scores 0.5 + i / 200, every prediction of class "1": D = 0.5 just below 0.5 */
    struct dw_agg *cur = dw_agg_new_exact(&g_model, START + SIZE, DW_AGG_MERGE_EXACT);
    for (int i = 0; i < 100; i++) {
        add_out(cur, "1", 0, 0.5 + (double)i / 200.0);
    }
    rep = dw_eval_window(&cfg, &g_model, cur, ref, 0);
    pd = json_object_get(rep, "prediction_drift");
    assert_near(jreal(jpath(pd, "score", "ks"), "statistic"), 0.5, 1e-12);
    assert_true(jreal(json_object_get(pd, "score"), "score") < 1e-6);
    assert_true(json_is_true(jpath(pd, "score", "drift")));
    assert_int_equal(jint(json_object_get(pd, "class"), "count"), 100);
    assert_true(json_is_true(jpath(pd, "class", "drift")));
    assert_true(json_is_true(json_object_get(pd, "drift")));
    /* not a feature: the dataset verdict is unchanged */
    assert_int_equal(json_array_size(jpath(rep, "drift", "features")), 0);
    assert_true(json_is_false(jpath(rep, "drift", "dataset")));

    /* a rule on the score's verdict fires on the close report */
    json_t *alert = jrule_alert(rep, "score_drift", "prediction_drift.score.drift", DW_STAGE_CLOSE);
    assert_string_equal(jstr(alert, "rule"), "score_drift");
    assert_string_equal(jstr(alert, "status"), "firing");
    json_decref(alert);

    /* the final report takes it from the close report */
    json_t *fin = dw_eval_window(&cfg, &g_model, cur, ref, 1);
    json_object_set_new(fin, "prediction_drift", json_null());
    assert_int_equal(dw_eval_take_close(fin, rep), 0);
    assert_true(json_is_true(jpath(json_object_get(fin, "prediction_drift"), "score", "drift")));
    json_decref(fin);
    json_decref(rep);

    /* a stored reference of an earlier version (no "outputs"): unavailable, and why */
    json_t *doc = dw_ref_to_json(ref);
    assert_non_null(json_object_get(json_object_get(doc, "outputs"), "score"));
    assert_null(json_object_get(json_object_get(doc, "outputs"), "label"));
    json_object_del(doc, "outputs");
    char err[256] = "";
    struct dw_ref *old = dw_ref_from_json(&g_model, doc, err, sizeof(err));
    if (!old) {
        fail_msg("from_json: %s", err);
    }
    assert_false(old->has_outputs);
    rep = dw_eval_window(&cfg, &g_model, cur, old, 0);
    pd = json_object_get(rep, "prediction_drift");
    assert_string_equal(jstr(pd, "status"), "unavailable");
    assert_contains(jstr(pd, "reason"), "earlier version");
    json_decref(rep);
    rep = dw_eval_window(&cfg, &g_model, cur, NULL, 0);
    assert_string_equal(jstr(json_object_get(rep, "prediction_drift"), "status"),
                        "waiting_for_reference");
    json_decref(rep);

    /* the Redis form keeps the outputs */
    struct dw_buf b;
    struct dw_ref *back = encode_decode(ref, &b);
    assert_true(back->has_outputs);
    assert_int_equal(back->out[DW_REF_OUT_SCORE].n_sample, 100);
    assert_int_equal(back->out[DW_REF_OUT_PRED].n_cats, 2);
    dw_buf_free(&b);
    dw_ref_free(back);
    dw_ref_free(old);
    json_decref(doc);
    dw_ref_free(ref);
    dw_agg_free(cur);
    dw_agg_free(same);
    dw_agg_free(r);
}

/* A regression model's predicted values are numeric ("value"). */
static void test_prediction_drift_regression(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new_exact(&g_reg_model, START, DW_AGG_MERGE_EXACT);
    struct dw_agg *cur = dw_agg_new_exact(&g_reg_model, START + SIZE, DW_AGG_MERGE_EXACT);
    for (int i = 0; i < 50; i++) {
        add_out(r, "", (double)i, -1);
        add_out(cur, "", (double)i + 100.0, -1);
    }
    struct dw_ref *ref = dw_ref_build(&g_reg_model, &r, 1, 10);
    assert_int_equal(ref->out[DW_REF_OUT_PRED].type, DW_FEATURE_NUMERIC);
    json_t *rep = dw_eval_window(&cfg, &g_reg_model, cur, ref, 0);
    json_t *pd = json_object_get(rep, "prediction_drift");
    assert_null(json_object_get(pd, "score"));
    assert_null(json_object_get(pd, "class"));
    assert_string_equal(jstr(json_object_get(pd, "value"), "type"), "numeric");
    assert_double_exact(jreal(jpath(pd, "value", "ks"), "statistic"), 1.0);
    assert_true(json_is_true(jpath(pd, "value", "drift")));
    json_decref(rep);
    dw_ref_free(ref);
    dw_agg_free(cur);
    dw_agg_free(r);
}

/* The labels are judged on the final report: against the performance baseline's final labels,
 * or a profile's label distribution; until there is one the report says what it waits for. */
static void test_label_drift(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = out_reference_window();
    struct dw_ref *ref = dw_ref_build(&g_model, &r, 1, 10);
    /* 100 labels, 80 of them "1" (the reference windows: 50) */
    struct dw_agg *cur = dw_agg_new_exact(&g_model, START + SIZE, DW_AGG_MERGE_EXACT);
    for (int i = 0; i < 100; i++) {
        add_out(cur, "1", 0, 0.5);
        outcome(cur, "v1", "1", i < 80 ? "1" : "0", -1);
    }
    json_t *rep = dw_eval_window(&cfg, &g_model, cur, ref, 1);
    json_t *ld = json_object_get(rep, "label_drift");
    assert_string_equal(jstr(ld, "status"), "waiting_for_baseline");
    assert_contains(jstr(ld, "reason"), "label horizon");

    /* the baseline holds the reference windows' final counts */
    struct dw_baseline bl;
    dw_baseline_init(&bl, &g_model);
    dw_baseline_judge_outputs(rep, &cfg, &g_model, &bl, cur, ref);
    assert_string_equal(jstr(json_object_get(rep, "label_drift"), "status"),
                        "waiting_for_baseline");
    assert_int_equal(dw_baseline_add(&bl, r, 1), 1);
    dw_baseline_judge_outputs(rep, &cfg, &g_model, &bl, cur, ref);
    ld = json_object_get(rep, "label_drift");
    assert_string_equal(jstr(ld, "status"), "ready");
    assert_string_equal(jstr(ld, "source"), "baseline");
    assert_string_equal(jstr(ld, "type"), "categorical");
    assert_int_equal(jint(ld, "count"), 100);
    assert_string_equal(jstr(ld, "method"), "chi2");
    /* chi-squared of [[50, 50], [80, 20]] with Yates off: 2 x 2, dof 1, statistic by hand */
    double e1 = 130.0 / 2.0, e0 = 70.0 / 2.0;
    double want = 2 * ((50 - e1) * (50 - e1) / e1 + (50 - e0) * (50 - e0) / e0);
    assert_near(jreal(json_object_get(ld, "chi2"), "statistic"), want, 1e-9);
    assert_true(json_is_true(json_object_get(ld, "drift")));
    /* a baseline completed by an earlier version has no labels' distribution: unavailable,
     * and why (it would never come) */
    struct dw_baseline old_bl;
    dw_baseline_init(&old_bl, &g_model);
    assert_int_equal(dw_baseline_add(&old_bl, r, 1), 1);
    dw_feat_stats_free(&old_bl.sum->out[DW_AGG_OUT_LABEL]);
    old_bl.sum->out[DW_AGG_OUT_LABEL].count = 0;
    json_t *older = dw_eval_window(&cfg, &g_model, cur, ref, 1);
    dw_baseline_judge_outputs(older, &cfg, &g_model, &old_bl, cur, ref);
    assert_string_equal(jstr(json_object_get(older, "label_drift"), "status"), "unavailable");
    assert_contains(jstr(json_object_get(older, "label_drift"), "reason"), "earlier version");
    json_decref(older);
    dw_baseline_free(&old_bl);
    /* a close report keeps its status */
    json_t *close = dw_eval_window(&cfg, &g_model, cur, ref, 0);
    dw_baseline_judge_outputs(close, &cfg, &g_model, &bl, cur, ref);
    assert_string_equal(jstr(json_object_get(close, "label_drift"), "status"), "not_final");
    json_decref(close);
    json_decref(rep);

    /* a profile's label distribution is the reference's */
    json_t *doc = dw_ref_to_json(ref);
    json_object_set_new(json_object_get(doc, "outputs"), "label",
                        json_pack("{s:s,s:i,s:{s:f,s:f},s:{s:i,s:i}}", "type", "categorical",
                                  "count", 100, "categories", "0", 0.2, "1", 0.8, "category_counts",
                                  "0", 20, "1", 80));
    char err[256] = "";
    struct dw_ref *prof = dw_ref_from_json(&g_model, doc, err, sizeof(err));
    if (!prof) {
        fail_msg("from_json: %s", err);
    }
    rep = dw_eval_window(&cfg, &g_model, cur, prof, 1);
    dw_baseline_judge_outputs(rep, &cfg, &g_model, &bl, cur, prof);
    ld = json_object_get(rep, "label_drift");
    assert_string_equal(jstr(ld, "source"), "reference");
    assert_double_exact(jreal(json_object_get(ld, "chi2"), "statistic"), 0.0);
    assert_true(json_is_false(json_object_get(ld, "drift")));
    json_decref(rep);
    dw_ref_free(prof);
    json_decref(doc);
    dw_baseline_free(&bl);
    dw_ref_free(ref);
    dw_agg_free(cur);
    dw_agg_free(r);
}

/* versions.<v>.features and .drift of a model comparing versions: each version judged alone
 * against the model's reference with the model's detectors (a shifted candidate drifts, the
 * baseline does not); the final report takes them from the close report; a model that does not
 * compare versions has none. */
static void test_version_feature_drift(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_model_cfg m = g_model;
    m.version_features = 1;
    struct dw_agg *r = dw_agg_new(&m, START - SIZE);
    for (int i = 0; i < 400; i++) {
        add3(r, "1.0.0", (double)(i % 100), i % 2 ? "DE" : "FR", 30.0 + (double)(i % 10));
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&m, aggs, 1, 10);
    struct dw_agg *w = dw_agg_new(&m, START);
    for (int i = 0; i < 400; i++) {
        add3(w, "1.0.0", (double)(i % 100), i % 2 ? "DE" : "FR", 30.0 + (double)(i % 10));
    }
    for (int i = 0; i < 200; i++) {
        add3(w, "1.1.0", 200.0 + (double)(i % 100), i % 2 ? "DE" : "FR", 30.0 + (double)(i % 10));
    }
    json_t *rep = dw_eval_window(&cfg, &m, w, ref, 0);
    json_t *v0 = jpath(rep, "versions", "1.0.0"), *v1 = jpath(rep, "versions", "1.1.0");
    assert_false(json_is_true(jpath3(v0, "features", "amount", "drift")));
    assert_true(json_is_true(jpath3(v1, "features", "amount", "drift")));
    assert_false(json_is_true(jpath3(v1, "features", "country", "drift")));
    assert_int_equal(json_array_size(jpath(v0, "drift", "features")), 0);
    assert_int_equal(json_array_size(jpath(v1, "drift", "features")), 1);
    assert_string_equal(json_string_value(json_array_get(jpath(v1, "drift", "features"), 0)),
                        "amount");
    assert_double_exact(jreal(json_object_get(v1, "drift"), "share"), 1.0 / 3.0);
    /* the version's statistics are its own: 200 values of amount, mean 249.5 */
    assert_int_equal(jint(jpath(v1, "features", "amount"), "count"), 200);

    /* the final report takes each version's features and drift of the close report */
    dw_agg_drop_sketches(w);
    json_t *fin = dw_eval_window(&cfg, &m, w, NULL, 1);
    assert_int_equal(dw_eval_take_close(fin, rep), 0);
    assert_true(
        json_equal(jpath3(fin, "versions", "1.1.0", "drift"), json_object_get(v1, "drift")));
    assert_true(
        json_equal(jpath3(fin, "versions", "1.1.0", "features"), json_object_get(v1, "features")));
    json_decref(fin);
    json_decref(rep);
    dw_agg_free(w);

    /* a model that does not compare versions: no per-version features */
    w = dw_agg_new(&g_model, START);
    add3(w, "1.0.0", 1.0, "DE", 2.0);
    rep = dw_eval_window(&cfg, &g_model, w, ref, 0);
    assert_null(json_object_get(jpath(rep, "versions", "1.0.0"), "features"));
    json_decref(rep);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* reference.per_version: a version collects its own first reference.windows windows (not
 * judged meanwhile, saying how many it has), then is judged against its own reference: a
 * version whose inputs differ from the model's from its start does not drift against itself. */
static void test_version_own_reference(void **state)
{
    (void)state;
    struct dw_config cfg = make_cfg();
    struct dw_model_cfg m = g_model;
    m.version_features = 1;
    m.reference.source = DW_REF_SOURCE_WINDOWS;
    m.reference.windows = 2;
    m.reference.per_version = 1;
    json_t *wins = json_array();
    struct dw_agg *merged = NULL;
    struct dw_ref *own = NULL;
    for (int k = 0; k < 4; k++) {
        struct dw_agg *w = dw_agg_new(&m, START + k * SIZE);
        for (int i = 0; i < 300; i++) {
            add3(w, "1.0.0", (double)(i % 100), i % 2 ? "DE" : "FR", 30.0 + (double)(i % 10));
            if (i < 150) {
                add3(w, "1.1.0", 200.0 + (double)(i % 100), "DE", 30.0 + (double)(i % 10));
            }
        }
        size_t slot = dw_agg_version_slot(w, "1.1.0", 5);
        json_t *rep = dw_eval_window(&cfg, &m, w, NULL, 0);
        struct dw_agg *view = dw_agg_version_view(w, slot);
        int built = dw_evaluator_version_reference(&m, view, wins, &merged, &own, 10);
        assert_int_equal(built, k == 1);
        /* evaluated again (a retried step): nothing changes */
        assert_int_equal(dw_evaluator_version_reference(&m, view, wins, &merged, &own, 10), 0);
        assert_int_equal(json_array_size(wins), k < 2 ? (size_t)k + 1 : 2);
        const struct dw_ref *judge = k >= 2 ? own : NULL;
        dw_eval_version_reference(rep, &cfg, &m, w, slot, judge, json_array_size(wins));
        json_t *v1 = jpath(rep, "versions", "1.1.0");
        json_t *r = json_object_get(v1, "reference");
        assert_true(json_is_true(json_object_get(r, "per_version")));
        if (k < 2) {
            assert_string_equal(jstr(r, "status"), "collecting");
            assert_int_equal(jint(r, "windows"), k + 1);
            assert_true(json_is_null(jpath3(v1, "features", "amount", "drift")));
        } else {
            assert_string_equal(jstr(r, "status"), "ready");
            assert_int_equal(jint(r, "windows"), 2);
            assert_int_equal(jint(r, "predictions"), 300);
            assert_false(json_is_true(jpath3(v1, "features", "amount", "drift")));
            assert_false(json_is_true(jpath3(v1, "features", "country", "drift")));
        }
        dw_agg_free(view);
        json_decref(rep);
        dw_agg_free(w);
    }
    assert_null(merged);
    dw_ref_free(own);
    json_decref(wins);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psi_known),
        cmocka_unit_test(test_report_stage),
        cmocka_unit_test(test_ref_deciles_1_to_100),
        cmocka_unit_test(test_ref_duplicate_edges),
        cmocka_unit_test(test_bin_counts),
        cmocka_unit_test(test_numeric_psi_in_report),
        cmocka_unit_test(test_categorical_psi_new_and_vanished),
        cmocka_unit_test(test_categorical_overflow_bucket),
        cmocka_unit_test(test_accuracy_drop_thresholds),
        cmocka_unit_test(test_binary_metrics),
        cmocka_unit_test(test_versions_evidence),
        cmocka_unit_test(test_version_feature_drift),
        cmocka_unit_test(test_version_own_reference),
        cmocka_unit_test(test_regression_metrics),
        cmocka_unit_test(test_empty_window),
        cmocka_unit_test(test_empty_run),
        cmocka_unit_test(test_rolling_counts),
        cmocka_unit_test(test_rolling_pooled_metrics),
        cmocka_unit_test(test_ref_json_round_trip),
        cmocka_unit_test(test_ref_origin_and_outcomes),
        cmocka_unit_test(test_ref_unit_weights),
        cmocka_unit_test(test_ref_binary_form),
        cmocka_unit_test(test_ref_tail_keys),
        cmocka_unit_test(test_ref_packed_sample_count_overflow),
        cmocka_unit_test(test_ref_counts_overflow),
        cmocka_unit_test(test_verdicts_and_default_rules),
        cmocka_unit_test(test_idempotency_key),
        cmocka_unit_test(test_numeric_stats_equal_dw_stats),
        cmocka_unit_test(test_constant_reference),
        cmocka_unit_test(test_categorical_stats_equal_dw_stats),
        cmocka_unit_test(test_non_finite_report),
        cmocka_unit_test(test_auto_boundary),
        cmocka_unit_test(test_bh_borderline),
        cmocka_unit_test(test_min_samples_and_drift_share),
        cmocka_unit_test(test_method_threshold_from_config),
        cmocka_unit_test(test_prediction_drift),
        cmocka_unit_test(test_prediction_drift_regression),
        cmocka_unit_test(test_label_drift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
