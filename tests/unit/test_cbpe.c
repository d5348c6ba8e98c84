/*
 * test_cbpe.c - dw_cbpe against scikit-learn 1.2's IsotonicRegression and NannyML's CBPE
 * formulas (fixtures made by tests/fixtures/make_cbpe_fixtures.py, read from the repo root),
 * against hand values, and the calibration's encoding and its decoder refusing corrupt bytes.
 *
 * Tolerance: 1e-12 relative for every fixture value (the fitted probabilities, calibration
 * errors, expected counts and metrics; the fixture's sums are exact, ours compensated, so the
 * two differ by a few ulps). Scores are compared exactly: the fit keeps input scores.
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
#include <jansson.h>

#include "driftwatch/core/dw_cbpe.h"
#include "driftwatch/core/dw_common.h"

#include "dw_test.h"
#include "dw_test_fixture.h"

#define REL 1e-12
#define LITERAL_AUC_ABS 1e-7 /* NannyML's rounding of tps and fps to 5 decimals (AUC units) */
#define REALIZED_ABS 0.03    /* issue #11: estimate within 0.03 of the realised accuracy */

static struct dw_cbpe_view as_view(const struct sample *s)
{
    return (struct dw_cbpe_view){s->v, s->w, s->len};
}

/* Fits the calibration of a fixture case's reference. */
static void fit_case(const json_t *c, struct dw_cbpe_calib *cal)
{
    const json_t *ref = json_object_get(c, "reference");
    struct sample neg, pos;
    sample_load(json_object_get(ref, "neg"), &neg);
    sample_load(json_object_get(ref, "pos"), &pos);
    struct dw_cbpe_view vn = as_view(&neg), vp = as_view(&pos);
    char err[256] = "";
    if (dw_cbpe_fit(cal, &vn, &vp, err, sizeof(err)) != 0) {
        fail_msg("%s: fit failed: %s", json_string_value(json_object_get(c, "name")), err);
    }
    sample_free(&neg);
    sample_free(&pos);
}

/* ------------------------------------------------------------------ fixtures */

static void check_calibration(const char *name, const json_t *c, const struct dw_cbpe_calib *cal)
{
    const json_t *want = json_object_get(c, "calibration");
    const json_t *x = json_object_get(want, "x"), *p = json_object_get(want, "p");
    char what[160];
    assert_int_equal(cal->n, json_array_size(x));
    for (uint32_t i = 0; i < cal->n; i++) {
        snprintf(what, sizeof(what), "%s: point %u", name, i);
        assert_close_what(what, cal->x[i], json_number_value(json_array_get(x, i)), 0, 0);
        assert_close_what(what, cal->p[i], json_number_value(json_array_get(p, i)), REL, 0);
    }
    assert_int_equal(cal->n_neg, json_integer_value(json_object_get(want, "n_neg")));
    assert_int_equal(cal->n_pos, json_integer_value(json_object_get(want, "n_pos")));
    snprintf(what, sizeof(what), "%s: ece_scores", name);
    assert_close_what(what, cal->ece_scores, jval(want, "ece_scores"), REL, 0);
    snprintf(what, sizeof(what), "%s: ece_calibrated", name);
    assert_close_what(what, cal->ece_calibrated, jval(want, "ece_calibrated"), REL, 0);
    size_t i;
    const json_t *probe;
    json_array_foreach(json_object_get(c, "probes"), i, probe)
    {
        double s = json_number_value(json_array_get(probe, 0));
        snprintf(what, sizeof(what), "%s: calibrate(%.17g)", name, s);
        assert_close_what(what, dw_cbpe_calibrate(cal, s),
                          json_number_value(json_array_get(probe, 1)), REL, 0);
    }
}

/* Every fitted point, both calibration errors and the probes, as scikit-learn has them. */
static void test_fixture_calibration(void **state)
{
    (void)state;
    json_t *doc = load_fixture("cbpe_cases.json");
    size_t k;
    const json_t *c;
    assert_true(json_array_size(json_object_get(doc, "cases")) >= 12);
    json_array_foreach(json_object_get(doc, "cases"), k, c)
    {
        struct dw_cbpe_calib cal = {0};
        fit_case(c, &cal);
        check_calibration(json_string_value(json_object_get(c, "name")), c, &cal);
        dw_cbpe_calib_free(&cal);
    }
    json_decref(doc);
}

/* The split at the threshold gives the fixture's two views. */
static void check_split(const json_t *w, struct dw_cbpe_view *vn, struct dw_cbpe_view *vp)
{
    struct sample all;
    sample_load(json_object_get(w, "scores"), &all);
    struct dw_cbpe_view va = as_view(&all), sn, sp;
    dw_cbpe_view_split(&va, jnum(w, "threshold"), &sn, &sp);
    assert_int_equal(sn.len, vn->len);
    assert_int_equal(sp.len, vp->len);
    if (sn.len) {
        assert_memory_equal(sn.values, vn->values, sn.len * sizeof(double));
    }
    if (sp.len) {
        assert_memory_equal(sp.values, vp->values, sp.len * sizeof(double));
    }
    sample_free(&all);
}

static void check_estimate(const char *name, const json_t *want, const struct dw_cbpe_estimate *e)
{
    static const char *const counts[] = {"tp", "fp", "fn", "tn"};
    const double got[] = {e->tp, e->fp, e->fn, e->tn};
    char what[160];
    assert_int_equal(e->n, json_integer_value(json_object_get(want, "n")));
    for (size_t i = 0; i < DW_ARRAY_SIZE(counts); i++) {
        snprintf(what, sizeof(what), "%s: %s", name, counts[i]);
        assert_close_what(what, got[i], jnum(want, counts[i]), REL, 0);
    }
    for (int m = 0; m < DW_CBPE__COUNT; m++) {
        const char *metric = dw_cbpe_metric_name((enum dw_cbpe_metric)m);
        double expect = jval(want, metric);
        snprintf(what, sizeof(what), "%s: %s", name, metric);
        assert_close_what(what, e->metric[m], expect, REL, 0);
        assert_int_equal(!!(e->undefined & DW_CBPE_UNDEFINED(m)), isnan(expect));
    }
}

/* Every window's expected counts and metrics, and NaN with its flag where NannyML says 0. */
static void test_fixture_estimates(void **state)
{
    (void)state;
    json_t *doc = load_fixture("cbpe_cases.json");
    size_t k, i, n_windows = 0, n_undefined = 0;
    const json_t *c, *w;
    json_array_foreach(json_object_get(doc, "cases"), k, c)
    {
        struct dw_cbpe_calib cal = {0};
        fit_case(c, &cal);
        json_array_foreach(json_object_get(c, "windows"), i, w)
        {
            char name[128];
            snprintf(name, sizeof(name), "%s/%s", json_string_value(json_object_get(c, "name")),
                     json_string_value(json_object_get(w, "name")));
            struct sample neg, pos;
            sample_load(json_object_get(w, "pred_neg"), &neg);
            sample_load(json_object_get(w, "pred_pos"), &pos);
            struct dw_cbpe_view vn = as_view(&neg), vp = as_view(&pos);
            if (json_object_get(w, "threshold")) {
                check_split(w, &vn, &vp);
            }
            struct dw_cbpe_estimate e;
            char err[256] = "";
            assert_int_equal(dw_cbpe_estimate(&cal, &vn, &vp, &e, err, sizeof(err)), 0);
            check_estimate(name, json_object_get(w, "expected"), &e);
            n_undefined += e.undefined != 0;
            n_windows++;
            sample_free(&neg);
            sample_free(&pos);
        }
        dw_cbpe_calib_free(&cal);
    }
    assert_true(n_windows >= 20);
    assert_true(n_undefined >= 5); /* the fixture does reach the zero denominators */
    json_decref(doc);
}

/* A fixture window's estimate (the case's calibration fitted again). */
static struct dw_cbpe_estimate estimate_of(const json_t *doc, const char *case_name,
                                           const char *window_name, const json_t **window)
{
    size_t k, i;
    const json_t *c, *w;
    json_array_foreach(json_object_get(doc, "cases"), k, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), case_name) != 0) {
            continue;
        }
        json_array_foreach(json_object_get(c, "windows"), i, w)
        {
            if (strcmp(json_string_value(json_object_get(w, "name")), window_name) != 0) {
                continue;
            }
            struct dw_cbpe_calib cal = {0};
            fit_case(c, &cal);
            struct sample neg, pos;
            sample_load(json_object_get(w, "pred_neg"), &neg);
            sample_load(json_object_get(w, "pred_pos"), &pos);
            struct dw_cbpe_view vn = as_view(&neg), vp = as_view(&pos);
            struct dw_cbpe_estimate e;
            assert_int_equal(dw_cbpe_estimate(&cal, &vn, &vp, &e, NULL, 0), 0);
            sample_free(&neg);
            sample_free(&pos);
            dw_cbpe_calib_free(&cal);
            *window = w;
            return e;
        }
    }
    fail_msg("fixture lacks %s/%s", case_name, window_name);
    return (struct dw_cbpe_estimate){0};
}

/*
 * What the issue asks of the estimates: within 0.03 of the realised accuracy where the window
 * is like the reference, moving when the scores shift, and NannyML's literal ROC AUC (no tie
 * grouping, counts rounded to 5 decimals) within its rounding where no score is tied.
 */
static void test_fixture_behaviour(void **state)
{
    (void)state;
    json_t *doc = load_fixture("cbpe_cases.json");
    static const char *const like_reference[][2] = {
        {"well_calibrated", "same"},  {"well_calibrated", "shifted_up"}, {"squashed", "same"},
        {"squashed", "shifted_down"}, {"shifted_scores", "same"},        {"ties", "grid"},
    };
    const json_t *w;
    for (size_t i = 0; i < DW_ARRAY_SIZE(like_reference); i++) {
        struct dw_cbpe_estimate e =
            estimate_of(doc, like_reference[i][0], like_reference[i][1], &w);
        assert_close_what(like_reference[i][0], e.metric[DW_CBPE_ACCURACY],
                          jnum(w, "realized_accuracy"), 0, REALIZED_ABS);
    }
    /* the squashed model's scores shift down: accuracy and recall move */
    struct dw_cbpe_estimate same = estimate_of(doc, "squashed", "same", &w);
    struct dw_cbpe_estimate down = estimate_of(doc, "squashed", "shifted_down", &w);
    assert_true(down.metric[DW_CBPE_ACCURACY] - same.metric[DW_CBPE_ACCURACY] > 0.03);
    assert_true(same.metric[DW_CBPE_RECALL] - down.metric[DW_CBPE_RECALL] > 0.3);
    /* calibrated scores shift up: recall rises */
    same = estimate_of(doc, "well_calibrated", "same", &w);
    struct dw_cbpe_estimate up = estimate_of(doc, "well_calibrated", "shifted_up", &w);
    assert_true(up.metric[DW_CBPE_RECALL] - same.metric[DW_CBPE_RECALL] > 0.15);
    /* NannyML's literal ROC AUC */
    static const char *const untied[][2] = {
        {"well_calibrated", "same"},
        {"squashed", "same"},
        {"out_of_range", "wide"},
        {"given_class", "flipped"},
        {"two_points_increasing", "between"},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(untied); i++) {
        struct dw_cbpe_estimate e = estimate_of(doc, untied[i][0], untied[i][1], &w);
        assert_close_what(untied[i][0], e.metric[DW_CBPE_ROC_AUC],
                          jnum(json_object_get(w, "nannyml"), "roc_auc_literal"), 0,
                          LITERAL_AUC_ABS);
    }
    json_decref(doc);
}

/* ------------------------------------------------------------------ hand cases */

static int fit(struct dw_cbpe_calib *cal, const double *neg, const uint64_t *wn, size_t n_neg,
               const double *pos, const uint64_t *wp, size_t n_pos)
{
    struct dw_cbpe_view vn = {neg, wn, n_neg}, vp = {pos, wp, n_pos};
    return dw_cbpe_fit(cal, &vn, &vp, NULL, 0);
}

static struct dw_cbpe_estimate estimate(const struct dw_cbpe_calib *cal, const double *neg,
                                        size_t n_neg, const double *pos, size_t n_pos)
{
    struct dw_cbpe_view vn = {neg, NULL, n_neg}, vp = {pos, NULL, n_pos};
    struct dw_cbpe_estimate e;
    assert_int_equal(dw_cbpe_estimate(cal, &vn, &vp, &e, NULL, 0), 0);
    return e;
}

/* Pooling, interpolation, clipping and sklearn's merging of scores closer than 1e-15. */
static void test_calibration_by_hand(void **state)
{
    (void)state;
    struct dw_cbpe_calib cal = {0};
    /* (0.25, 0) and (0.75, 1): a straight line between, 2 s - 0.5 */
    const double lo[] = {0.25}, hi[] = {0.75};
    assert_int_equal(fit(&cal, lo, NULL, 1, hi, NULL, 1), 0);
    assert_int_equal(cal.n, 2);
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.5), 0.5);
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.625), 0.75);
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.25), 0.0);
    assert_double_exact(dw_cbpe_calibrate(&cal, -5.0), 0.0); /* clipped */
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.75), 1.0);
    assert_double_exact(dw_cbpe_calibrate(&cal, 9.0), 1.0);
    assert_nan(dw_cbpe_calibrate(&cal, NAN));
    dw_cbpe_calib_free(&cal);
    assert_int_equal(cal.n, 0);
    assert_nan(dw_cbpe_calibrate(&cal, 0.5)); /* empty */
    /* labels 1, 0, 1 at 0.125, 0.25, 0.375: the first two pool to 0.5; every point is kept */
    const double neg[] = {0.25}, pos[] = {0.125, 0.375};
    assert_int_equal(fit(&cal, neg, NULL, 1, pos, NULL, 2), 0);
    assert_int_equal(cal.n, 3);
    assert_double_exact(cal.p[0], 0.5);
    assert_double_exact(cal.p[1], 0.5);
    assert_double_exact(cal.p[2], 1.0);
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.1875), 0.5);
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.3125), 0.75);
    dw_cbpe_calib_free(&cal);
    /* a constant stretch keeps its two ends only (trim_duplicates); weights count as copies */
    const double n4[] = {0.1, 0.2, 0.3, 0.4}, p1[] = {0.9};
    const uint64_t w4[] = {1, 2, 0, 1}; /* weight 0: the score is not in the reference */
    assert_int_equal(fit(&cal, n4, w4, 4, p1, NULL, 1), 0);
    assert_int_equal(cal.n, 3);
    assert_double_exact(cal.x[0], 0.1);
    assert_double_exact(cal.x[1], 0.4);
    assert_double_exact(cal.x[2], 0.9);
    assert_int_equal(cal.n_neg, 4);
    assert_int_equal(cal.n_pos, 1);
    dw_cbpe_calib_free(&cal);
    /* 0.5 and 0.5 + 4e-16 are one score for sklearn (its first), 0.5 + 1.2e-15 is another */
    const double near_neg[] = {0.5 + 4e-16}, near_pos[] = {0.5, 0.5 + 1.2e-15};
    assert_int_equal(fit(&cal, near_neg, NULL, 1, near_pos, NULL, 2), 0);
    assert_int_equal(cal.n, 2);
    assert_double_exact(cal.x[0], 0.5);
    assert_double_exact(cal.p[0], 0.5);
    assert_double_exact(cal.x[1], 0.5 + 1.2e-15);
    assert_double_exact(cal.p[1], 1.0);
    dw_cbpe_calib_free(&cal);
    /* one point: a constant */
    assert_int_equal(fit(&cal, NULL, NULL, 0, hi, NULL, 1), 0);
    assert_int_equal(cal.n, 1);
    assert_double_exact(dw_cbpe_calibrate(&cal, -1.0), 1.0);
    assert_double_exact(dw_cbpe_calibrate(&cal, 0.75), 1.0);
    assert_nan(cal.ece_scores);
    assert_nan(cal.ece_calibrated);
    dw_cbpe_calib_free(&cal);
}

/* Counts and metrics worked out by hand; ties form one point of the ROC curve. */
static void test_estimate_by_hand(void **state)
{
    (void)state;
    struct dw_cbpe_calib cal = {0};
    const double lo[] = {0.25}, hi[] = {0.75};
    assert_int_equal(fit(&cal, lo, NULL, 1, hi, NULL, 1), 0); /* p = 2 s - 0.5 on [0.25, 0.75] */
    /* 0.25 (p 0) and 0.5 (p 0.5) predicted negative, 0.75 (p 1) predicted positive */
    const double wn[] = {0.25, 0.5}, wp[] = {0.75};
    struct dw_cbpe_estimate e = estimate(&cal, wn, 2, wp, 1);
    assert_int_equal(e.n, 3);
    assert_double_exact(e.tp, 1.0);
    assert_double_exact(e.fp, 0.0);
    assert_double_exact(e.fn, 0.5);
    assert_double_exact(e.tn, 1.5);
    assert_double_exact(e.metric[DW_CBPE_ACCURACY], 2.5 / 3.0);
    assert_double_exact(e.metric[DW_CBPE_PRECISION], 1.0);
    assert_double_exact(e.metric[DW_CBPE_RECALL], 1.0 / 1.5);
    assert_double_exact(e.metric[DW_CBPE_F1], 1.0 / 1.25);
    /* curve (0,0) -> (0, 2/3) -> (1/3, 1) -> (1, 1): area 1/3 * 5/6 + 2/3 = 0.9444... */
    assert_close(e.metric[DW_CBPE_ROC_AUC], 1.0 / 3.0 * 5.0 / 6.0 + 2.0 / 3.0, 1e-15, 0);
    assert_int_equal(e.undefined, 0);
    /* all scores tied: one step of the curve, the diagonal */
    const double tied[] = {0.5, 0.5, 0.5};
    e = estimate(&cal, tied, 2, tied, 1);
    assert_double_exact(e.metric[DW_CBPE_ROC_AUC], 0.5);
    assert_double_exact(e.metric[DW_CBPE_ACCURACY], 0.5);
    /* a view with weights equals the same view written out */
    const double s2[] = {0.3, 0.6};
    const uint64_t w2[] = {3, 2};
    const double s5[] = {0.3, 0.3, 0.3, 0.6, 0.6};
    struct dw_cbpe_view v2 = {s2, w2, 2}, none = {NULL, NULL, 0};
    struct dw_cbpe_estimate a, b;
    assert_int_equal(dw_cbpe_estimate(&cal, &v2, &none, &a, NULL, 0), 0);
    b = estimate(&cal, s5, 5, NULL, 0);
    assert_int_equal(a.n, 5);
    for (int m = 0; m < DW_CBPE__COUNT; m++) {
        assert_close(a.metric[m], b.metric[m], 1e-15, 0);
    }
    assert_int_equal(a.undefined, b.undefined);
    /* the split at a threshold: scores equal to it are predicted positive */
    const double all[] = {0.1, 0.5, 0.5, 0.9};
    struct dw_cbpe_view va = {all, NULL, 4}, sn, sp;
    dw_cbpe_view_split(&va, 0.5, &sn, &sp);
    assert_int_equal(sn.len, 1);
    assert_int_equal(sp.len, 3);
    assert_ptr_equal(sp.values, all + 1);
    assert_null(sp.weights);
    dw_cbpe_view_split(&v2, 0.6, &sn, &sp);
    assert_ptr_equal(sp.weights, w2 + 1);
    dw_cbpe_calib_free(&cal);
}

/* Zero denominators: NaN and the metric's flag, never a division by 0. */
static void test_zero_denominators(void **state)
{
    (void)state;
    struct dw_cbpe_calib cal = {0};
    const double lo[] = {0.25}, hi[] = {0.75};
    assert_int_equal(fit(&cal, lo, NULL, 1, hi, NULL, 1), 0);
    /* an empty window: everything undefined */
    struct dw_cbpe_estimate e = estimate(&cal, NULL, 0, NULL, 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(e.undefined, (1u << DW_CBPE__COUNT) - 1);
    for (int m = 0; m < DW_CBPE__COUNT; m++) {
        assert_nan(e.metric[m]);
    }
    /* no predicted positive: precision undefined (NannyML: 0), the rest defined */
    const double wn[] = {0.3, 0.6};
    e = estimate(&cal, wn, 2, NULL, 0);
    assert_int_equal(e.undefined, DW_CBPE_UNDEFINED(DW_CBPE_PRECISION));
    assert_nan(e.metric[DW_CBPE_PRECISION]);
    assert_double_exact(e.metric[DW_CBPE_RECALL], 0.0);
    assert_double_exact(e.metric[DW_CBPE_F1], 0.0);
    /* every probability 0 or 1 at once: the window holds one expected class only */
    const double p0[] = {0.1, 0.2}, p1[] = {0.8, 0.9};
    e = estimate(&cal, p0, 2, NULL, 0); /* p = 0: no expected positive */
    assert_int_equal(e.undefined,
                     DW_CBPE_UNDEFINED(DW_CBPE_PRECISION) | DW_CBPE_UNDEFINED(DW_CBPE_RECALL) |
                         DW_CBPE_UNDEFINED(DW_CBPE_F1) | DW_CBPE_UNDEFINED(DW_CBPE_ROC_AUC));
    assert_double_exact(e.metric[DW_CBPE_ACCURACY], 1.0);
    e = estimate(&cal, NULL, 0, p1, 2); /* p = 1: no expected negative */
    assert_int_equal(e.undefined, DW_CBPE_UNDEFINED(DW_CBPE_ROC_AUC));
    assert_double_exact(e.metric[DW_CBPE_F1], 1.0);
    dw_cbpe_calib_free(&cal);
    /* a reference of negatives only: every probability is 0 */
    const double r[] = {0.1, 0.5, 0.9};
    assert_int_equal(fit(&cal, r, NULL, 3, NULL, NULL, 0), 0);
    assert_int_equal(cal.n, 2);
    assert_double_exact(cal.p[1], 0.0);
    e = estimate(&cal, p0, 2, p1, 2);
    assert_double_exact(e.metric[DW_CBPE_PRECISION], 0.0);
    assert_true(e.undefined & DW_CBPE_UNDEFINED(DW_CBPE_RECALL));
    assert_true(e.undefined & DW_CBPE_UNDEFINED(DW_CBPE_ROC_AUC));
    dw_cbpe_calib_free(&cal);
}

/* NannyML's ECE: equal-count bins by rank, its bin arithmetic, fewer than 4 outcomes NaN. */
static void test_ece_by_hand(void **state)
{
    (void)state;
    /* bins {0.1, 0.4 | 0, 0} and {0.6, 0.9 | 1, 1}: 0.5 * 0.25 + 0.5 * 0.25 */
    const double n2[] = {0.1, 0.4}, p2[] = {0.6, 0.9};
    struct dw_cbpe_view vn = {n2, NULL, 2}, vp = {p2, NULL, 2};
    double ece = -1;
    assert_int_equal(dw_cbpe_ece(&vn, &vp, &ece, NULL, 0), 0);
    assert_double_exact(ece, 0.25);
    vp.len = 1;
    assert_int_equal(dw_cbpe_ece(&vn, &vp, &ece, NULL, 0), 0);
    assert_nan(ece);
    /* 25 outcomes (scores i / 25, label 1 when i % 3 == 0): NannyML makes 12 bins of 2, 2, ...,
     * 3; nannyml.calibration._calculate_expected_calibration_error gives 0.32480000000000003 */
    double neg[25], pos[25];
    size_t nn = 0, np = 0;
    for (int i = 0; i < 25; i++) {
        if (i % 3 == 0) {
            pos[np++] = i / 25.0;
        } else {
            neg[nn++] = i / 25.0;
        }
    }
    vn = (struct dw_cbpe_view){neg, NULL, nn};
    vp = (struct dw_cbpe_view){pos, NULL, np};
    assert_int_equal(dw_cbpe_ece(&vn, &vp, &ece, NULL, 0), 0);
    assert_close(ece, 0.32480000000000003, 1e-15, 0);
    /* weights are copies: 4 outcomes at 0.5 (2 of each class) */
    const double half[] = {0.5};
    const uint64_t two[] = {2};
    vn = (struct dw_cbpe_view){half, two, 1};
    vp = (struct dw_cbpe_view){half, two, 1};
    assert_int_equal(dw_cbpe_ece(&vn, &vp, &ece, NULL, 0), 0);
    assert_double_exact(ece, 0.5); /* negatives first: bins {0, 0} and {1, 1}, 0.5 off each */
}

/* Input that is refused, with the reason. */
static void test_errors(void **state)
{
    (void)state;
    struct dw_cbpe_calib cal = {0};
    char err[256];
    const double unsorted[] = {0.5, 0.2}, bad[] = {0.1, NAN}, ok[] = {0.3};
    struct dw_cbpe_view vu = {unsorted, NULL, 2}, vb = {bad, NULL, 2}, vo = {ok, NULL, 1};
    struct dw_cbpe_view none = {NULL, NULL, 0};
    assert_int_equal(dw_cbpe_fit(&cal, &vu, &vo, err, sizeof(err)), -1);
    assert_contains(err, "negatives: scores not ascending at 1");
    assert_int_equal(dw_cbpe_fit(&cal, &vo, &vb, err, sizeof(err)), -1);
    assert_contains(err, "positives: score 1 is not finite");
    assert_int_equal(cal.n, 0);
    const uint64_t zero[] = {0};
    struct dw_cbpe_view vz = {ok, zero, 1};
    assert_int_equal(dw_cbpe_fit(&cal, &vz, &none, err, sizeof(err)), -1);
    assert_contains(err, "no labelled outcome");
    const uint64_t huge[] = {DW_CBPE_MAX_WEIGHT};
    struct dw_cbpe_view vh = {ok, huge, 1};
    assert_int_equal(dw_cbpe_fit(&cal, &vh, &vo, err, sizeof(err)), -1);
    assert_contains(err, "more than 2^53");
    struct dw_cbpe_estimate e;
    assert_int_equal(dw_cbpe_estimate(&cal, &vo, &none, &e, err, sizeof(err)), -1);
    assert_contains(err, "calibration is empty");
    assert_int_equal(dw_cbpe_fit(&cal, &vo, &vo, err, sizeof(err)), 0);
    assert_int_equal(dw_cbpe_estimate(&cal, &none, &vu, &e, err, sizeof(err)), -1);
    assert_contains(err, "predicted positives: scores not ascending");
    double ece;
    assert_int_equal(dw_cbpe_ece(&vb, &none, &ece, err, sizeof(err)), -1);
    assert_contains(err, "not finite");
    dw_cbpe_calib_free(&cal);
}

/* ------------------------------------------------------------------ encoding */

static struct dw_cbpe_calib fixture_calibration(const char *case_name)
{
    json_t *doc = load_fixture("cbpe_cases.json");
    size_t k;
    const json_t *c;
    struct dw_cbpe_calib cal = {0};
    json_array_foreach(json_object_get(doc, "cases"), k, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), case_name) == 0) {
            fit_case(c, &cal);
        }
    }
    json_decref(doc);
    assert_int_not_equal(cal.n, 0);
    return cal;
}

static int decode_bytes(const uint8_t *data, size_t len, struct dw_cbpe_calib *cal, char *msg)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    int rc = dw_cbpe_decode(cal, &rd);
    snprintf(msg, DW_READER_MSG, "%s", rd.msg);
    if (rc == 0) {
        assert_int_equal(rd.pos, len);
    }
    return rc;
}

/* Encoded and decoded, a calibration is the same and encodes to the same bytes. */
static void test_codec_round_trip(void **state)
{
    (void)state;
    static const char *const cases[] = {"well_calibrated", "one_point", "all_negative", "ties"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        struct dw_cbpe_calib cal = fixture_calibration(cases[i]), back = {0};
        struct dw_buf b, again;
        dw_buf_init(&b);
        dw_buf_init(&again);
        dw_cbpe_encode(&cal, &b);
        assert_int_equal(b.len, 1 + 4 + 16 * (size_t)cal.n + 32);
        char msg[DW_READER_MSG];
        assert_int_equal(decode_bytes(b.data, b.len, &back, msg), 0);
        assert_int_equal(back.n, cal.n);
        assert_memory_equal(back.x, cal.x, cal.n * sizeof(double));
        assert_memory_equal(back.p, cal.p, cal.n * sizeof(double));
        assert_int_equal(back.n_neg, cal.n_neg);
        assert_int_equal(back.n_pos, cal.n_pos);
        assert_close(back.ece_scores, cal.ece_scores, 0, 0); /* NaN close to NaN */
        assert_close(back.ece_calibrated, cal.ece_calibrated, 0, 0);
        dw_cbpe_encode(&back, &again);
        assert_int_equal(again.len, b.len);
        assert_memory_equal(again.data, b.data, b.len);
        dw_buf_free(&again);
        dw_buf_free(&b);
        dw_cbpe_calib_free(&back);
        dw_cbpe_calib_free(&cal);
    }
}

/* Patches the bytes of an encoding and expects the decoder to refuse them, naming why. */
static void expect_refused(const struct dw_buf *b, size_t at, const void *bytes, size_t n,
                           const char *why)
{
    uint8_t *copy = dw_malloc(b->len);
    memcpy(copy, b->data, b->len);
    memcpy(copy + at, bytes, n);
    struct dw_cbpe_calib cal = {0};
    char msg[DW_READER_MSG];
    assert_int_equal(decode_bytes(copy, b->len, &cal, msg), -1);
    assert_contains(msg, why);
    assert_int_equal(cal.n, 0); /* left empty */
    assert_null(cal.x);
    free(copy);
}

static void put_u64_at(const struct dw_buf *b, size_t at, uint64_t v, const char *why)
{
    struct dw_buf one;
    dw_buf_init(&one);
    dw_buf_put_u64(&one, v);
    expect_refused(b, at, one.data, one.len, why);
    dw_buf_free(&one);
}

/* A double is encoded as its IEEE-754 bits (dw_codec.h). */
static void put_f64_at(const struct dw_buf *b, size_t at, double v, const char *why)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_u64_at(b, at, bits, why);
}

/* Truncated and corrupt encodings are refused, the calibration left empty. */
static void test_codec_rejects(void **state)
{
    (void)state;
    struct dw_cbpe_calib cal = fixture_calibration("two_points_increasing");
    struct dw_buf b;
    dw_buf_init(&b);
    dw_cbpe_encode(&cal, &b); /* format, n = 2, (0.2, 0), (0.7, 1), 1, 1, NaN, NaN */
    char msg[DW_READER_MSG];
    for (size_t len = 0; len < b.len; len++) {
        struct dw_cbpe_calib back = {0};
        assert_int_equal(decode_bytes(b.data, len, &back, msg), -1);
        assert_int_equal(back.n, 0);
    }
    const size_t x0 = 5, p0 = 13, x1 = 21, p1 = 29, counts = 37, eces = 53;
    const uint8_t format = 2;
    expect_refused(&b, 0, &format, 1, "calibration format 2");
    const uint8_t zero_points[4] = {0}, many_points[4] = {0xff, 0xff, 0xff, 0x00};
    expect_refused(&b, 1, zero_points, 4, "0 calibration points");
    expect_refused(&b, 1, many_points, 4, "calibration points");
    put_f64_at(&b, x1, 0.2, "score 1 is not finite and 1e-15 above the last");
    put_f64_at(&b, x1, 0.2 + 5e-16, "score 1 is not finite and 1e-15 above the last");
    put_f64_at(&b, x0, NAN, "score 0 is not finite");
    put_f64_at(&b, x0, INFINITY, "score 0 is not finite");
    put_f64_at(&b, p0, -0.5, "probability 0 is outside [0, 1]");
    put_f64_at(&b, p1, 1.5, "probability 1 is outside [0, 1]");
    put_f64_at(&b, p0, NAN, "probability 0 is outside [0, 1]");
    const uint8_t only_pos[16] = {[8] = 5}, only_neg[16] = {5};
    expect_refused(&b, counts, only_pos, 16, "do not match a reference of one class");
    expect_refused(&b, counts, only_neg, 16, "do not match a reference of one class");
    put_u64_at(&b, counts, DW_CBPE_MAX_WEIGHT, "from 9007199254740993 outcomes");
    put_u64_at(&b, counts, UINT64_MAX, "calibration of 2 points");
    put_f64_at(&b, eces, 0.1, "calibration errors"); /* 2 outcomes: both must be NaN */
    dw_buf_free(&b);
    dw_cbpe_calib_free(&cal);
    /* decreasing probabilities, written by hand */
    dw_buf_init(&b);
    dw_buf_put_u8(&b, 1);
    dw_buf_put_u32(&b, 2);
    const double pts[] = {0.1, 0.75, 0.2, 0.5};
    for (size_t i = 0; i < DW_ARRAY_SIZE(pts); i++) {
        dw_buf_put_f64(&b, pts[i]);
    }
    dw_buf_put_u64(&b, 1);
    dw_buf_put_u64(&b, 1);
    dw_buf_put_f64(&b, NAN);
    dw_buf_put_f64(&b, NAN);
    expect_refused(&b, 0, b.data, 1, "probability 1 is outside [0, 1] or decreasing");
    dw_buf_free(&b);
    /* with at least 4 outcomes the out-of-fold error is a number in [0, 1] */
    cal = fixture_calibration("well_calibrated");
    dw_buf_init(&b);
    dw_cbpe_encode(&cal, &b);
    put_f64_at(&b, b.len - 8, NAN, "calibration errors");
    put_f64_at(&b, b.len - 8, 1.5, "calibration errors");
    put_f64_at(&b, b.len - 16, -0.1, "calibration errors");
    const uint8_t one_each[16] = {1, [8] = 1};
    expect_refused(&b, b.len - 32, one_each, 16, "calibration of 60 points from 2 outcomes");
    dw_buf_free(&b);
    dw_cbpe_calib_free(&cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_calibration), cmocka_unit_test(test_fixture_estimates),
        cmocka_unit_test(test_fixture_behaviour),   cmocka_unit_test(test_calibration_by_hand),
        cmocka_unit_test(test_estimate_by_hand),    cmocka_unit_test(test_zero_denominators),
        cmocka_unit_test(test_ece_by_hand),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_codec_round_trip),    cmocka_unit_test(test_codec_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
