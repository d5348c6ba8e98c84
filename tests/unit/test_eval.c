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

#include "driftwatch/dw_agg.h"
#include "driftwatch/dw_eval.h"
#include "driftwatch/dw_kll.h"

#define START 1794999900000LL /* 2026-11-18T11:05:00Z */
#define SIZE 300000LL         /* window size, milliseconds (5 minutes) */
#define EPS 1e-4              /* the PSI empty-bin proportion, restated for the tests */

static struct dw_feature_cfg g_feats[] = {
    {"amount", DW_FEATURE_NUMERIC},
    {"country", DW_FEATURE_CATEGORICAL},
    {"age", DW_FEATURE_NUMERIC},
};
static struct dw_model_cfg g_model = {"fraud", DW_TASK_CLASSIFICATION, "1", g_feats, 3};

static struct dw_feature_cfg g_reg_feats[] = {{"x", DW_FEATURE_NUMERIC}};
static struct dw_model_cfg g_reg_model = {"price", DW_TASK_REGRESSION, "1", g_reg_feats, 1};

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

static double jreal(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) {
        fail_msg("%s is not a number", key);
    }
    return json_number_value(v);
}

static json_int_t jint(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        fail_msg("%s is not an integer", key);
    }
    return json_integer_value(v);
}

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) {
        fail_msg("%s is not a string", key);
    }
    return s;
}

static json_t *jpath(const json_t *obj, const char *a, const char *b)
{
    return json_object_get(json_object_get(obj, a), b);
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
    assert_true(json_is_null(json_object_get(rep, "reference")));
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

static void test_accuracy_drop_thresholds(void **state)
{
    struct dw_config cfg = make_cfg();
    struct dw_agg *r = dw_agg_new(&g_model, START);
    add_labeled(r, "v1", 100, 90, 1.0); /* reference accuracy .9 */
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    add_labeled(w, "v1", 100, 80, 1.0); /* accuracy .8: drop (.9 - .8) / .9 = 1/9 */

    json_t *rep = dw_eval_window(&cfg, &g_model, w, ref, 1);
    assert_true(json_is_true(json_object_get(rep, "final")));
    json_t *d = json_object_get(rep, "accuracy_drop");
    assert_float_equal(jreal(d, "value"), 1.0 / 9.0, 1e-12);
    assert_float_equal(jreal(d, "accuracy"), 0.8, 1e-15);
    assert_float_equal(jreal(d, "reference"), 0.9, 1e-15);
    assert_float_equal(jreal(d, "threshold"), 0.05, 0.0);
    assert_true(json_is_true(json_object_get(d, "alert")));
    assert_float_equal(jreal(json_object_get(rep, "reference"), "accuracy"), 0.9, 1e-15);
    assert_int_equal(jint(json_object_get(rep, "reference"), "windows"), 1);
    json_decref(rep);

    /* labeled == min_samples still alerts (>=); one more than labeled does not */
    cfg.min_samples = 100;
    rep = dw_eval_window(&cfg, &g_model, w, ref, 1);
    assert_true(json_is_true(jpath(rep, "accuracy_drop", "alert")));
    json_decref(rep);
    cfg.min_samples = 101;
    rep = dw_eval_window(&cfg, &g_model, w, ref, 1);
    assert_true(json_is_false(jpath(rep, "accuracy_drop", "alert")));
    assert_float_equal(jreal(json_object_get(rep, "accuracy_drop"), "value"), 1.0 / 9.0, 1e-12);
    json_decref(rep);

    /* a drop below the threshold does not alert (strictly greater) */
    cfg.min_samples = 10;
    cfg.accuracy_drop = 0.2;
    rep = dw_eval_window(&cfg, &g_model, w, ref, 1);
    assert_true(json_is_false(jpath(rep, "accuracy_drop", "alert")));
    json_decref(rep);

    /* drift needs predictions >= min_samples too */
    struct dw_agg *s = dw_agg_new(&g_model, START + 2 * SIZE);
    add_labeled(s, "v1", 20, 20, 1000.0); /* amount shifted far out of the reference */
    cfg.min_samples = 21;
    rep = dw_eval_window(&cfg, &g_model, s, ref, 0);
    json_t *f = jpath(rep, "features", "amount");
    assert_true(jreal(f, "psi") > 0.2);
    assert_true(json_is_false(json_object_get(f, "drift")));
    json_decref(rep);
    cfg.min_samples = 20;
    rep = dw_eval_window(&cfg, &g_model, s, ref, 0);
    assert_true(json_is_true(json_object_get(jpath(rep, "features", "amount"), "drift")));
    /* better accuracy than the reference: negative drop, no alert */
    assert_true(jreal(json_object_get(rep, "accuracy_drop"), "value") < 0);
    assert_true(json_is_false(jpath(rep, "accuracy_drop", "alert")));
    json_decref(rep);

    /* no labels yet: accuracy_drop null, unlabeled_share 1 */
    struct dw_agg *u = dw_agg_new(&g_model, START + 3 * SIZE);
    add3(u, "v1", 5.0, "DE", NAN);
    rep = dw_eval_window(&cfg, &g_model, u, ref, 0);
    assert_true(json_is_null(json_object_get(rep, "accuracy_drop")));
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
    json_t *findings = dw_eval_findings(rep);
    assert_int_equal(json_array_size(findings), 0);
    assert_null(dw_eval_alert_payload("prod", rep, findings));
    assert_null(dw_eval_trigger("prod", rep, findings, START));
    json_decref(findings);
    json_decref(rep);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
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
        assert_true(a->edges[i] == b->edges[i]);
    }
    for (size_t i = 0; i <= a->n_edges; i++) {
        assert_true(a->props[i] == b->props[i]);
    }
    assert_true(a->mean == b->mean && a->std == b->std);
    assert_int_equal(ref2->feats[1].n_cats, 2);
    assert_int_equal(ref2->feats[2].count, 0);

    struct dw_agg *w = dw_agg_new(&g_model, START + SIZE);
    for (int i = 0; i < 77; i++) {
        add3(w, "v1", sqrt((double)i * 7.0) * 2.5, i % 5 ? "DE" : "IT", NAN);
    }
    json_t *r1 = dw_eval_window(&cfg, &g_model, w, ref, 0);
    json_t *r2 = dw_eval_window(&cfg, &g_model, w, ref2, 0);
    assert_true(jreal(jpath(r1, "features", "amount"), "psi") > 0);
    assert_true(jreal(jpath(r1, "features", "amount"), "psi") ==
                jreal(jpath(r2, "features", "amount"), "psi"));
    assert_true(jreal(jpath(r1, "features", "country"), "psi") ==
                jreal(jpath(r2, "features", "country"), "psi"));
    assert_true(json_equal(r1, r2));
    json_decref(r1);
    json_decref(r2);

    /* errors name what is wrong */
    json_object_set_new(jpath(back, "features", "amount"), "type", json_string("categorical"));
    assert_null(dw_ref_from_json(&g_model, back, err, sizeof(err)));
    assert_non_null(strstr(err, "amount"));
    json_t *other = json_deep_copy(doc);
    json_object_set_new(other, "model", json_string("churn"));
    assert_null(dw_ref_from_json(&g_model, other, err, sizeof(err)));
    assert_non_null(strstr(err, "churn"));
    json_decref(other);
    other = json_deep_copy(doc);
    json_array_append_new(json_object_get(jpath(other, "features", "amount"), "proportions"),
                          json_real(0.5));
    assert_null(dw_ref_from_json(&g_model, other, err, sizeof(err)));
    assert_non_null(strstr(err, "amount"));
    json_decref(other);

    dw_agg_free(w);
    dw_ref_free(ref2);
    json_decref(back);
    free(text);
    json_decref(doc);
    dw_ref_free(ref);
    dw_agg_free(r);
}

/* ------------------------------------------------------------------ findings and payloads */

/* FNV-1a 64 written out again for the test. */
static uint64_t fnv1a(const char *s, size_t len)
{
    /* published test vector: FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c */
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

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
    json_t *rep = dw_eval_window(cfg, &g_model, w, ref, 1);
    dw_agg_free(w);
    dw_ref_free(ref);
    dw_agg_free(r);
    return rep;
}

static void test_findings_and_fingerprint(void **state)
{
    struct dw_config cfg = make_cfg();
    json_t *rep = drifting_report(&cfg);
    assert_float_equal(jreal(jpath(rep, "features", "age"), "psi"), 0.0, 1e-15);
    assert_float_equal(jreal(json_object_get(rep, "drift"), "share"), 2.0 / 3.0, 1e-15);
    json_t *fs = dw_eval_findings(rep);
    assert_int_equal(json_array_size(fs), 3);
    json_t *f0 = json_array_get(fs, 0), *f1 = json_array_get(fs, 1), *f2 = json_array_get(fs, 2);
    assert_string_equal(jstr(f0, "rule"), "feature_drift");
    assert_string_equal(jstr(f0, "feature"), "amount");
    /* 200 vs 100 values: method auto runs KS (numeric) and chi-squared (categorical) */
    assert_string_equal(jstr(f0, "detector"), "ks");
    assert_string_equal(jstr(f0, "severity"), "critical"); /* dataset drift: 2 of 3 */
    assert_float_equal(jreal(f0, "value"), jreal(jpath(rep, "features", "amount"), "score"), 0.0);
    assert_true(jreal(f0, "value") < 1e-10);
    assert_float_equal(jreal(f0, "threshold"), 0.05, 0.0);
    assert_string_equal(jstr(f0, "fingerprint"), "78fb2b4f3704b129");
    assert_string_equal(jstr(f1, "feature"), "country");
    assert_string_equal(jstr(f1, "detector"), "chi2");
    assert_float_equal(jreal(f1, "value"), jreal(jpath(rep, "features", "country"), "score"), 0.0);
    assert_true(fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    char want[17];
    snprintf(want, sizeof(want), "%016llx",
             (unsigned long long)fnv1a("fraud\x1f"
                                       "feature_drift\x1f"
                                       "country",
                                       27));
    assert_string_equal(jstr(f1, "fingerprint"), want);
    assert_string_equal(jstr(f2, "rule"), "accuracy_drop");
    assert_true(json_is_null(json_object_get(f2, "feature")));
    assert_string_equal(jstr(f2, "detector"), "accuracy");
    assert_string_equal(jstr(f2, "severity"), "critical");
    assert_float_equal(jreal(f2, "value"), 0.23125, 1e-12);
    assert_float_equal(jreal(f2, "threshold"), 0.05, 0.0);
    assert_string_equal(jstr(f2, "fingerprint"), "7c1cd1f0300a693e");

    /* stable: the same report gives the same findings */
    json_t *again = dw_eval_findings(rep);
    assert_true(json_equal(fs, again));
    json_decref(again);

    /* one drifting feature of three: warning */
    json_t *small = json_loads("{\"model\":\"m\",\"window_start_ms\":0,"
                               "\"features\":{\"a\":{\"psi\":0.3,\"threshold\":0.2}},"
                               "\"drift\":{\"features\":[\"a\"],\"dataset\":false},"
                               "\"accuracy_drop\":null}",
                               0, NULL);
    assert_non_null(small);
    json_t *sf = dw_eval_findings(small);
    assert_int_equal(json_array_size(sf), 1);
    assert_string_equal(jstr(json_array_get(sf, 0), "severity"), "warning");
    json_decref(sf);
    json_decref(small);
    json_decref(fs);
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
    char *k1 = dw_eval_idempotency_key("prod", "fraud", START, "alert");
    char *k2 = dw_eval_idempotency_key("prod", "fraud", START, "alert");
    char *k3 = dw_eval_idempotency_key("prod", "fraud", START + SIZE, "alert");
    char *k4 = dw_eval_idempotency_key("prod", "fraud", START, "trigger");
    char *k5 = dw_eval_idempotency_key("staging", "fraud", START, "alert");
    char *k6 = dw_eval_idempotency_key("prod", "churn", START, "alert");
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

static void test_alert_payload(void **state)
{
    struct dw_config cfg = make_cfg();
    json_t *rep = drifting_report(&cfg);
    json_t *fs = dw_eval_findings(rep);
    json_t *a = dw_eval_alert_payload("prod", rep, fs);
    assert_non_null(a);
    assert_string_equal(jstr(a, "type"), "driftwatch.alert");
    assert_string_equal(jstr(a, "id"), "453ce2a47d0b3648c65ec70ec60c1dc5");
    assert_string_equal(jstr(a, "group"), "prod");
    assert_string_equal(jstr(a, "model"), "fraud");
    assert_string_equal(jstr(a, "window_start"), "2026-11-18T11:05:00Z");
    assert_string_equal(jstr(a, "window_end"), "2026-11-18T11:10:00Z");
    assert_string_equal(jstr(a, "severity"), "critical");
    assert_string_equal(jstr(a, "summary"),
                        "fraud: drift in amount, country; accuracy fell 23.1 % below reference");
    assert_true(json_equal(json_object_get(a, "findings"), fs));
    assert_true(json_equal(json_object_get(a, "report"), rep));
    json_decref(a);

    /* summaries with one kind of finding, severity of warnings only */
    json_t *r2 = json_loads("{\"model\":\"m\",\"window_start_ms\":0,"
                            "\"window_start\":\"1970-01-01T00:00:00Z\"}",
                            0, NULL);
    json_t *f2 = json_loads("[{\"rule\":\"feature_drift\",\"feature\":\"a\",\"severity\":"
                            "\"warning\",\"value\":0.3}]",
                            0, NULL);
    a = dw_eval_alert_payload("g", r2, f2);
    assert_string_equal(jstr(a, "summary"), "m: drift in a");
    assert_string_equal(jstr(a, "severity"), "warning");
    json_decref(a);
    json_decref(f2);
    f2 = json_loads("[{\"rule\":\"accuracy_drop\",\"feature\":null,\"severity\":\"critical\","
                    "\"value\":0.1}]",
                    0, NULL);
    a = dw_eval_alert_payload("g", r2, f2);
    assert_string_equal(jstr(a, "summary"), "m: accuracy fell 10.0 % below reference");
    json_decref(a);
    json_decref(f2);
    json_decref(r2);
    json_decref(fs);
    json_decref(rep);
}

static void test_trigger(void **state)
{
    struct dw_config cfg = make_cfg();
    json_t *rep = drifting_report(&cfg);
    json_t *fs = dw_eval_findings(rep);
    json_t *t = dw_eval_trigger("prod", rep, fs, START + 2 * SIZE);
    assert_non_null(t);
    assert_string_equal(jstr(t, "trigger_id"), "d68b1af1bba6166f1a6bffeecf388f27");
    assert_string_equal(jstr(t, "model"), "fraud");
    assert_string_equal(jstr(t, "model_version"), "1.4.0"); /* 150 of 200 predictions */
    assert_string_equal(jstr(t, "window_start"), "2026-11-18T11:05:00Z");
    assert_string_equal(jstr(t, "window_end"), "2026-11-18T11:10:00Z");
    assert_string_equal(jstr(t, "created_at"), "2026-11-18T11:15:00Z");
    json_t *reasons = json_object_get(t, "reasons");
    assert_int_equal(json_array_size(reasons), 3);
    json_t *r0 = json_array_get(reasons, 0);
    assert_string_equal(jstr(r0, "detector"), "ks");
    assert_string_equal(jstr(r0, "feature"), "amount");
    assert_float_equal(jreal(r0, "threshold"), 0.05, 0.0);
    json_t *r2 = json_array_get(reasons, 2);
    assert_string_equal(jstr(r2, "detector"), "accuracy");
    assert_true(json_is_null(json_object_get(r2, "feature")));
    assert_float_equal(jreal(r2, "value"), 0.23125, 1e-12);
    /* same window and rule: same id on a second evaluation */
    json_t *t2 = dw_eval_trigger("prod", rep, fs, START + 3 * SIZE);
    assert_string_equal(jstr(t, "trigger_id"), jstr(t2, "trigger_id"));
    json_decref(t2);
    json_decref(t);
    json_decref(fs);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psi_known),
        cmocka_unit_test(test_ref_deciles_1_to_100),
        cmocka_unit_test(test_ref_duplicate_edges),
        cmocka_unit_test(test_bin_counts),
        cmocka_unit_test(test_numeric_psi_in_report),
        cmocka_unit_test(test_categorical_psi_new_and_vanished),
        cmocka_unit_test(test_categorical_overflow_bucket),
        cmocka_unit_test(test_accuracy_drop_thresholds),
        cmocka_unit_test(test_binary_metrics),
        cmocka_unit_test(test_regression_metrics),
        cmocka_unit_test(test_empty_window),
        cmocka_unit_test(test_ref_json_round_trip),
        cmocka_unit_test(test_findings_and_fingerprint),
        cmocka_unit_test(test_idempotency_key),
        cmocka_unit_test(test_alert_payload),
        cmocka_unit_test(test_trigger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
