/*
 * test_agg.c - window aggregates: counts and per-version slots (overflow into "__other__"),
 * Welford moments against a two-pass long-double reference, merge of two halves against one
 * pass, category tables (exact up to the model's bound, then SpaceSaving heavy hitters and
 * `other`: totals, error bounds against true counts, merges of several partitions, round trips,
 * version 2 and 3 blobs), missing values, NaN and infinite values (counted apart, never in the
 * moments or sketch), outcome
 * metrics (confusion counts, Brier, clipped log loss, regression sums), and the checkpoint
 * encoding: round trip to identical bytes, decoding under a changed feature list, and every
 * truncation of a real blob rejected with a message. Expected values are computed here
 * independently (hand sums, long double two-pass loops), never by the code under test.
 */
#include <float.h>
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
#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_kll.h"

#include "dw_test.h"
#include "dw_test_agg.h"
#include "dw_test_agg_layouts.h"

/* Values in the moment and merge tests (count): past DW_AGG_SKETCH_EXACT, so sketches compact. */
#define N_VALUES 20000
/* Relative tolerance of moments against the two-pass reference. */
#define REL_TOL 1e-12

static struct dw_feature_cfg g_feats[] = {
    {"x", DW_FEATURE_NUMERIC},
    {"c", DW_FEATURE_CATEGORICAL},
    {"y", DW_FEATURE_NUMERIC},
};
static struct dw_model_cfg g_model = {.name = "fraud",
                                      .task = DW_TASK_CLASSIFICATION,
                                      .positive_class = "1",
                                      .features = g_feats,
                                      .n_features = 3};

/* The version slot of events without a model version (as run names them: ""). */
static size_t unversioned(struct dw_agg *agg)
{
    return dw_agg_version_slot(agg, "", 0);
}

static struct dw_prediction *pred_new(size_t n_features)
{
    struct dw_prediction *ev =
        calloc(1, sizeof(struct dw_prediction) + n_features * sizeof(struct dw_val));
    assert_non_null(ev);
    return ev;
}

static void set_num(struct dw_prediction *ev, size_t i, double v)
{
    ev->features[i].kind = DW_VAL_NUM;
    ev->features[i].num = v;
}

static void set_str(struct dw_prediction *ev, size_t i, const char *s)
{
    ev->features[i].kind = DW_VAL_STR;
    ev->features[i].str = s;
    ev->features[i].len = strlen(s);
}

static void set_missing(struct dw_prediction *ev, size_t i)
{
    ev->features[i].kind = DW_VAL_MISSING;
    ev->features[i].str = NULL;
    ev->features[i].len = 0;
}

/* The count of category name in fs (0 when absent), found by a plain scan of the table. */
static uint64_t cat_count(const struct dw_feat_stats *fs, const char *name)
{
    if (!fs->cats) {
        return 0;
    }
    size_t found = 0;
    uint64_t count = 0;
    for (size_t s = 0; s < fs->cat_cap; s++) {
        if (fs->cats[s].name && strcmp(fs->cats[s].name, name) == 0) {
            found++;
            count = fs->cats[s].count;
        }
    }
    assert_true(found <= 1);
    return count;
}

static size_t cat_total(const struct dw_feat_stats *fs)
{
    size_t n = 0;
    for (size_t s = 0; fs->cats && s < fs->cat_cap; s++) {
        n += fs->cats[s].name != NULL;
    }
    return n;
}

static void test_versions(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_model, 600000);
    assert_int_equal(agg->start_ms, 600000);
    assert_ptr_equal(agg->model, &g_model);
    struct dw_prediction *ev = pred_new(3);
    for (size_t f = 0; f < 3; f++) {
        set_missing(ev, f);
    }
    char name[16];
    uint64_t want_other = 0, want_all = 0;
    for (size_t k = 0; k < 20; k++) {
        int n = snprintf(name, sizeof(name), "v%zu", k);
        size_t slot = dw_agg_version_slot(agg, name, (size_t)n);
        assert_int_equal(slot, k < DW_AGG_MAX_VERSIONS ? k : DW_AGG_MAX_VERSIONS);
        for (size_t r = 0; r <= k; r++) {
            dw_agg_add_prediction(agg, slot, ev);
        }
        want_all += k + 1;
        if (k >= DW_AGG_MAX_VERSIONS) {
            want_other += k + 1;
        }
    }
    assert_int_equal(agg->n_versions, DW_AGG_MAX_VERSIONS + 1);
    assert_string_equal(agg->versions[DW_AGG_MAX_VERSIONS].name, DW_AGG_OTHER);
    for (size_t k = 0; k < DW_AGG_MAX_VERSIONS; k++) {
        snprintf(name, sizeof(name), "v%zu", k);
        assert_string_equal(agg->versions[k].name, name);
        assert_int_equal(agg->versions[k].c.predictions, k + 1);
    }
    assert_int_equal(agg->versions[DW_AGG_MAX_VERSIONS].c.predictions, want_other);
    assert_int_equal(agg->all.predictions, want_all);
    /* Known versions keep their slot after the overflow; names compare by length. */
    assert_int_equal(dw_agg_version_slot(agg, "v3", 2), 3);
    assert_int_equal(dw_agg_version_slot(agg, "v1x", 2), 1);
    assert_int_equal(dw_agg_version_slot(agg, "v99", 3), DW_AGG_MAX_VERSIONS);
    assert_int_equal(agg->n_versions, DW_AGG_MAX_VERSIONS + 1);
    /* Missing values: counted apart, never as values. */
    for (size_t f = 0; f < 3; f++) {
        assert_int_equal(agg->feats[f].missing, want_all);
        assert_int_equal(agg->feats[f].count, 0);
        assert_int_equal(agg->feats[f].n_cats, 0);
    }
    assert_null(agg->feats[0].sk);
    assert_true(isinf(agg->feats[0].min) && agg->feats[0].min > 0);
    assert_true(isinf(agg->feats[0].max) && agg->feats[0].max < 0);
    assert_true(agg->dirty);
    /* An outcome counts overall and in its version only. */
    struct dw_outcome o = {.pred = "1", .label = "1"};
    dw_agg_add_outcome(agg, 3, &o);
    assert_int_equal(agg->all.labeled, 1);
    assert_int_equal(agg->versions[3].c.labeled, 1);
    assert_int_equal(agg->versions[2].c.labeled, 0);
    free(ev);
    dw_agg_free(agg);
}

/* Two-pass reference over the non-NaN entries of v (long double accumulators). */
static void two_pass(const double *v, size_t n, double *mean, double *var)
{
    long double s = 0;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
    }
    long double m = s / (long double)n;
    long double q = 0;
    for (size_t i = 0; i < n; i++) {
        q += ((long double)v[i] - m) * ((long double)v[i] - m);
    }
    *mean = (double)m;
    *var = (double)(q / (long double)n);
}

static double *make_values(uint64_t seed, size_t n, double offset, double spread)
{
    double *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        /* Roughly normal: a sum of four uniforms. */
        double u =
            dw_rand_u01(&seed) + dw_rand_u01(&seed) + dw_rand_u01(&seed) + dw_rand_u01(&seed) - 2.0;
        v[i] = offset + spread * u;
    }
    return v;
}

static void test_numeric_moments(void **state)
{
    (void)state;
    double *x = make_values(1, N_VALUES, 1000.0, 50.0);
    double *y = make_values(2, N_VALUES, -3.5, 1e-3);
    struct dw_agg *agg = dw_agg_new(&g_model, 0);
    struct dw_prediction *ev = pred_new(3);
    set_str(ev, 1, "k");
    size_t n_missing = 0;
    double *present = malloc(N_VALUES * sizeof(*present));
    assert_non_null(present);
    size_t n_present = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    for (size_t i = 0; i < N_VALUES; i++) {
        if (i % 7 == 3) {
            set_missing(ev, 0);
            n_missing++;
        } else {
            set_num(ev, 0, x[i]);
            present[n_present++] = x[i];
            xmin = x[i] < xmin ? x[i] : xmin;
            xmax = x[i] > xmax ? x[i] : xmax;
        }
        set_num(ev, 2, y[i]);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
    }
    double mean, var;
    two_pass(present, n_present, &mean, &var);
    const struct dw_feat_stats *fx = &agg->feats[0];
    assert_int_equal(fx->type, DW_FEATURE_NUMERIC);
    assert_int_equal(fx->count, n_present);
    assert_int_equal(fx->missing, n_missing);
    assert_rel_near(fx->mean, mean, REL_TOL);
    assert_rel_near(fx->m2 / (double)fx->count, var, REL_TOL);
    assert_rel_near(dw_feat_std(fx), sqrt(var), REL_TOL);
    assert_double_exact(fx->min, xmin);
    assert_double_exact(fx->max, xmax);
    assert_non_null(fx->sk);
    assert_int_equal(dw_kll_count(fx->sk), n_present);
    assert_double_exact(dw_kll_min(fx->sk), xmin);

    /* A feature with a large offset and a tiny spread (catastrophic cancellation for a naive
     * sum of squares): Welford still matches. */
    two_pass(y, N_VALUES, &mean, &var);
    const struct dw_feat_stats *fy = &agg->feats[2];
    assert_int_equal(fy->count, N_VALUES);
    assert_rel_near(fy->mean, mean, REL_TOL);
    assert_near(fy->m2 / (double)fy->count, var, 1e-9 * var);

    /* Empty and single-value features. */
    struct dw_agg *one = dw_agg_new(&g_model, 0);
    assert_double_exact(dw_feat_std(&one->feats[0]), 0.0);
    set_num(ev, 0, 42.0);
    dw_agg_add_prediction(one, unversioned(one), ev);
    assert_double_exact(one->feats[0].mean, 42.0);
    assert_double_exact(one->feats[0].m2, 0.0);
    assert_double_exact(one->feats[0].min, 42.0);
    assert_double_exact(one->feats[0].max, 42.0);
    assert_double_exact(dw_feat_std(&one->feats[0]), 0.0);
    dw_agg_free(one);
    free(present);
    free(x);
    free(y);
    free(ev);
    dw_agg_free(agg);
}

static void test_categories(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_model, 0);
    struct dw_prediction *ev = pred_new(3);
    set_missing(ev, 0);
    set_missing(ev, 2);
    char name[32];
    /* DW_AGG_MAX_CATEGORIES distinct values, value k seen (k % 3) + 1 times. */
    uint64_t total = 0;
    for (size_t k = 0; k < DW_AGG_MAX_CATEGORIES; k++) {
        snprintf(name, sizeof(name), "cat-%zu", k);
        for (size_t r = 0; r <= k % 3; r++) {
            set_str(ev, 1, name);
            dw_agg_add_prediction(agg, unversioned(agg), ev);
            total++;
        }
    }
    const struct dw_feat_stats *fc = &agg->feats[1];
    assert_int_equal(fc->n_cats, DW_AGG_MAX_CATEGORIES);
    assert_int_equal(fc->other, 0);
    /* New values beyond the bound go to `other` (each occurrence); known ones still count. */
    for (size_t k = 0; k < 25; k++) {
        snprintf(name, sizeof(name), "new-%zu", k % 10);
        set_str(ev, 1, name);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
        set_str(ev, 1, "cat-0");
        dw_agg_add_prediction(agg, unversioned(agg), ev);
        total += 2;
    }
    /* Missing values are not a category. */
    for (size_t k = 0; k < 4; k++) {
        set_missing(ev, 1);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
    }
    /* A value given by length, not NUL: "cat-5" out of "cat-5xyz". */
    ev->features[1].kind = DW_VAL_STR;
    ev->features[1].str = "cat-5xyz";
    ev->features[1].len = 5;
    dw_agg_add_prediction(agg, unversioned(agg), ev);
    total++;

    /* The 10 late values hold SpaceSaving counters (1000 of them: none evicted, so exact).
     * new-0..4 come 3 times, new-5..9 twice, at counts 2000..2049: a counter is reported once
     * it exceeds count / 1000 = 2, so new-0..4 are categories and new-5..9 stay in `other`. */
    assert_int_equal(fc->n_exact, DW_AGG_MAX_CATEGORIES);
    assert_int_equal(fc->n_hh, 10);
    assert_int_equal(fc->n_cats, DW_AGG_MAX_CATEGORIES + 10);
    assert_int_equal(cat_total(fc), DW_AGG_MAX_CATEGORIES + 10);
    assert_int_equal(fc->hh_total, 25);
    assert_int_equal(fc->hh_floor, 0);
    assert_int_equal(fc->other, 10);
    assert_int_equal(fc->missing, 4);
    assert_int_equal(fc->count, total);
    assert_int_equal(cat_count(fc, "cat-0"), 1 + 25);
    assert_int_equal(cat_count(fc, "cat-5"), 3 + 1);
    assert_int_equal(cat_count(fc, "cat-7"), 2);
    assert_int_equal(cat_count(fc, "new-0"), 3);
    assert_int_equal(cat_count(fc, "new-4"), 3);
    assert_int_equal(cat_count(fc, "new-7"), 0);
    assert_int_equal(cat_count(fc, "cat-5xyz"), 0);
    uint64_t sum = fc->other;
    for (size_t s = 0; s < fc->cat_cap; s++) {
        sum += fc->cats[s].name ? fc->cats[s].count : 0;
    }
    assert_int_equal(sum, fc->count);
    free(ev);
    dw_agg_free(agg);
}

static void test_outcomes_classification(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_model, 0);
    size_t v = dw_agg_version_slot(agg, "1.0", 3);
    static const struct {
        const char *pred, *label;
        int has_score;
        double score;
    } rows[] = {
        {"1", "1", 1, 0.9}, /* tp */
        {"1", "0", 1, 0.6}, /* fp */
        {"0", "1", 1, 0.3}, /* fn */
        {"0", "0", 0, 0.0}, /* tn, unscored */
        {"2", "2", 0, 0.0}, /* another class: correct, negative on both sides */
        {"0", "1", 1, 0.0}, /* fn, p clipped to 1e-15 */
        {"1", "0", 1, 1.0}, /* fp, p clipped to 1 - 1e-15 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dw_outcome o = {.pred = rows[i].pred,
                               .label = rows[i].label,
                               .has_score = rows[i].has_score,
                               .score = rows[i].score};
        dw_agg_add_outcome(agg, v, &o);
    }
    for (int pass = 0; pass < 2; pass++) {
        const struct dw_counts *c = pass ? &agg->versions[v].c : &agg->all;
        assert_int_equal(c->labeled, 7);
        assert_int_equal(c->correct, 3);
        assert_int_equal(c->tp, 1);
        assert_int_equal(c->fp, 2);
        assert_int_equal(c->fn, 2);
        assert_int_equal(c->tn, 2);
        assert_int_equal(c->scored, 5);
        assert_int_equal(c->predictions, 0); /* outcomes do not count predictions */
        assert_int_equal(c->regressed, 0);
        /* (0.9-1)^2 + 0.6^2 + (0.3-1)^2 + (0-1)^2 + 1^2 */
        assert_rel_near(c->sum_brier, 0.01 + 0.36 + 0.49 + 1.0 + 1.0, 1e-14);
        /* -ln .9 - ln .4 - ln .3, and the clipped terms: -ln 1e-15 = 15 ln 10, and
         * -ln(1 - p) with p = 1 - 1e-15 rounded to a double, 1 - 9 * 2^-53 (Python:
         * 1 - (1 - 1e-15) = 9.992007221626409e-16, -ln of it 34.53957599234088). */
        double clip_lo = 15.0 * 2.302585092994045684;
        double clip_hi = 34.53957599234088;
        double want =
            0.105360515657826301 + 0.916290731874155065 + 1.203972804325935993 + clip_lo + clip_hi;
        assert_true(isfinite(c->sum_logloss));
        assert_rel_near(c->sum_logloss, want, 1e-12);
    }

    /* The positive class is the model's, not "1". */
    struct dw_model_cfg yes = g_model;
    yes.positive_class = "yes";
    struct dw_agg *ay = dw_agg_new(&yes, 0);
    struct dw_outcome o1 = {.pred = "yes", .label = "yes", .has_score = 1, .score = 0.75};
    struct dw_outcome o2 = {.pred = "1", .label = "yes", .has_score = 1, .score = 0.25};
    struct dw_outcome o3 = {.pred = "yes", .label = "1"};
    dw_agg_add_outcome(ay, unversioned(ay), &o1);
    dw_agg_add_outcome(ay, unversioned(ay), &o2);
    dw_agg_add_outcome(ay, unversioned(ay), &o3);
    assert_int_equal(ay->all.tp, 1);
    assert_int_equal(ay->all.fn, 1);
    assert_int_equal(ay->all.fp, 1);
    assert_int_equal(ay->all.tn, 0);
    assert_int_equal(ay->all.correct, 1);
    /* y = 1 for both scored rows: (0.25)^2 + (0.75)^2, -ln .75 - ln .25 */
    assert_rel_near(ay->all.sum_brier, 0.0625 + 0.5625, 1e-15);
    assert_rel_near(ay->all.sum_logloss, 0.287682072451780927 + 1.386294361119890618, 1e-12);
    dw_agg_free(ay);
    dw_agg_free(agg);
}

static void test_outcomes_regression(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_model, 0);
    struct {
        double pred, label;
        int pred_is_num, label_is_num;
    } rows[] = {
        {3.0, 2.0, 1, 1},   /* e = 1, ape = 1/2 */
        {1.5, -0.5, 1, 1},  /* e = 2, ape = 4 */
        {4.0, 0.0, 1, 1},   /* e = 4, ape = 4 / DBL_EPSILON */
        {9.0, 1.0, 1, 0},   /* label not numeric: not regressed */
        {9.0, 1.0, 0, 1},   /* prediction not numeric: not regressed */
        {-1.0, -3.0, 1, 1}, /* e = 2, ape = 2/3 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dw_outcome o = {.pred = "x",
                               .label = "y",
                               .pred_is_num = rows[i].pred_is_num,
                               .label_is_num = rows[i].label_is_num,
                               .pred_num = rows[i].pred,
                               .label_num = rows[i].label};
        dw_agg_add_outcome(agg, unversioned(agg), &o);
    }
    const struct dw_counts *c = &agg->all;
    assert_int_equal(c->labeled, 6);
    assert_int_equal(c->regressed, 4);
    assert_double_exact(c->sum_abs_err, 9.0);
    assert_double_exact(c->sum_sq_err, 1.0 + 4.0 + 16.0 + 4.0);
    assert_double_exact(c->sum_label, 2.0 - 0.5 + 0.0 - 3.0);
    assert_double_exact(c->sum_label_sq, 4.0 + 0.25 + 0.0 + 9.0);
    assert_rel_near(c->sum_ape, 0.5 + 4.0 + 4.0 / DBL_EPSILON + 2.0 / 3.0, 1e-15);
    assert_int_equal(c->scored, 0);
    assert_double_exact(c->sum_brier, 0.0);
    dw_agg_free(agg);
}

/* Fills agg with rows [from, to) of a fixed pseudo-random stream of events. */
static void fill_rows(struct dw_agg *agg, size_t from, size_t to, const double *x)
{
    struct dw_prediction *ev = pred_new(3);
    char cat[32];
    for (size_t i = from; i < to; i++) {
        const char *version = (i % 5 == 0) ? "2.0" : (i % 5 == 1 ? "2.1-canary" : "1.9");
        size_t v = dw_agg_version_slot(agg, version, strlen(version));
        if (i % 11 == 0) {
            set_missing(ev, 0);
        } else if (i % 19 == 5) {
            set_num(ev, 0, NAN);
        } else if (i % 23 == 7) {
            set_num(ev, 0, i % 2 ? INFINITY : -INFINITY);
        } else {
            set_num(ev, 0, x[i]);
        }
        snprintf(cat, sizeof(cat), "c%zu", (i * 7919) % 37);
        set_str(ev, 1, cat);
        if (i % 13 == 0) {
            set_missing(ev, 1);
        }
        set_num(ev, 2, (double)(i % 17) - 8.0);
        dw_agg_add_prediction(agg, v, ev);
        if (i % 3 != 2) {
            struct dw_outcome o = {.pred = (i % 4) ? "1" : "0",
                                   .label = (i % 6) ? "1" : "0",
                                   .has_score = (i % 2) == 0,
                                   .score = (double)(i % 8) / 8.0};
            dw_agg_add_outcome(agg, v, &o);
        }
    }
    free(ev);
}

/*
 * Merging the counts of every aggregate, then each feature in turn (what the reference build
 * does, to hold one merged feature at a time), gives the aggregate dw_agg_merge() gives, byte
 * for byte in its encoding.
 */
static void test_merge_feature_by_feature(void **state)
{
    (void)state;
    double *x = make_values(9, N_VALUES, 250.0, 40.0);
    struct dw_agg *a = dw_agg_new(&g_model, 0);
    struct dw_agg *b = dw_agg_new(&g_model, 0);
    fill_rows(a, 0, 5000, x);
    fill_rows(b, 5000, N_VALUES, x);
    struct dw_agg *whole = dw_agg_new_exact(&g_model, 0, DW_AGG_MERGE_EXACT);
    struct dw_agg *split = dw_agg_new_exact(&g_model, 0, DW_AGG_MERGE_EXACT);
    dw_agg_merge(whole, a);
    dw_agg_merge(whole, b);
    dw_agg_merge_counts(split, a);
    dw_agg_merge_counts(split, b);
    for (size_t f = 0; f < g_model.n_features; f++) {
        assert_int_equal(split->feats[f].count, 0); /* not merged yet */
        dw_agg_merge_feature(split, a, f);
        dw_agg_merge_feature(split, b, f);
    }
    dw_test_assert_same_encoding(whole, split);
    dw_agg_free(whole);
    dw_agg_free(split);
    dw_agg_free(a);
    dw_agg_free(b);
    free(x);
}

static void test_merge_halves(void **state)
{
    (void)state;
    double *x = make_values(5, N_VALUES, 250.0, 40.0);
    struct dw_agg *whole = dw_agg_new(&g_model, 0);
    fill_rows(whole, 0, N_VALUES, x);
    whole->duplicate_labels = 7;
    whole->conflicts = 3;
    whole->late_predictions = 11;
    whole->late_labels = 13;

    const size_t cut = 6173;
    struct dw_agg *a = dw_agg_new(&g_model, 0);
    struct dw_agg *b = dw_agg_new(&g_model, 0);
    /* b sees the versions in another order than a: merge matches them by name. */
    fill_rows(b, cut, N_VALUES, x);
    fill_rows(a, 0, cut, x);
    a->duplicate_labels = 4;
    b->duplicate_labels = 3;
    a->conflicts = 1;
    b->conflicts = 2;
    a->late_predictions = 5;
    b->late_predictions = 6;
    a->late_labels = 6;
    b->late_labels = 7;
    a->dirty = 0;
    dw_agg_merge(a, b);
    assert_true(a->dirty);

    /* Counts: exact. */
    assert_memory_equal(&a->all.predictions, &whole->all.predictions, 8 * sizeof(uint64_t));
    assert_int_equal(a->all.regressed, whole->all.regressed);
    assert_rel_near(a->all.sum_brier, whole->all.sum_brier, 1e-12);
    assert_rel_near(a->all.sum_logloss, whole->all.sum_logloss, 1e-12);
    assert_int_equal(a->n_versions, whole->n_versions);
    for (size_t i = 0; i < whole->n_versions; i++) {
        const char *name = whole->versions[i].name;
        size_t slot = dw_agg_version_slot(a, name, strlen(name));
        assert_int_equal(a->versions[slot].c.predictions, whole->versions[i].c.predictions);
        assert_int_equal(a->versions[slot].c.labeled, whole->versions[i].c.labeled);
        assert_int_equal(a->versions[slot].c.tp, whole->versions[i].c.tp);
    }
    assert_int_equal(a->n_versions, whole->n_versions); /* the lookups created nothing */
    assert_int_equal(a->duplicate_labels, 7);
    assert_int_equal(a->conflicts, 3);
    assert_int_equal(a->late_predictions, 11);
    assert_int_equal(a->late_labels, 13);

    /* Numeric features: counts exact, moments within 1e-12, min/max exact, sketch count. */
    for (size_t f = 0; f < 3; f += 2) {
        const struct dw_feat_stats *m = &a->feats[f], *w = &whole->feats[f];
        assert_int_equal(m->count, w->count);
        assert_int_equal(m->missing, w->missing);
        assert_int_equal(m->nan, w->nan);
        assert_int_equal(m->inf, w->inf);
        assert_rel_near(m->mean, w->mean, REL_TOL);
        assert_rel_near(m->m2, w->m2, REL_TOL);
        assert_double_exact(m->min, w->min);
        assert_double_exact(m->max, w->max);
        assert_int_equal(dw_kll_count(m->sk), w->count);
        assert_double_exact(dw_kll_min(m->sk), w->min);
        assert_double_exact(dw_kll_max(m->sk), w->max);
    }
    /* fill_rows's non-finite x values (i % 19 == 5, i % 23 == 7, not missing), counted by hand */
    uint64_t want_nan = 0, want_inf = 0;
    for (size_t i = 0; i < N_VALUES; i++) {
        want_nan += i % 11 != 0 && i % 19 == 5;
        want_inf += i % 11 != 0 && i % 19 != 5 && i % 23 == 7;
    }
    assert_true(want_nan > 0 && want_inf > 0);
    assert_int_equal(a->feats[0].nan, want_nan);
    assert_int_equal(a->feats[0].inf, want_inf);
    assert_int_equal(a->feats[0].count + a->feats[0].missing + want_nan + want_inf, N_VALUES);
    assert_true(isfinite(a->feats[0].mean) && isfinite(a->feats[0].m2));
    assert_int_equal(a->feats[2].nan + a->feats[2].inf, 0);
    /* Categorical: every category count and the missing count. */
    const struct dw_feat_stats *mc = &a->feats[1], *wc = &whole->feats[1];
    assert_int_equal(mc->count, wc->count);
    assert_int_equal(mc->missing, wc->missing);
    assert_int_equal(mc->n_cats, wc->n_cats);
    assert_int_equal(mc->n_cats, 37);
    char cat[32];
    for (size_t k = 0; k < 37; k++) {
        snprintf(cat, sizeof(cat), "c%zu", k);
        assert_int_equal(cat_count(mc, cat), cat_count(wc, cat));
    }
    /* Merging into an empty aggregate copies; merging an empty one changes nothing. */
    struct dw_agg *empty = dw_agg_new(&g_model, 0);
    struct dw_agg *copy = dw_agg_new(&g_model, 0);
    dw_agg_merge(copy, whole);
    dw_agg_merge(copy, empty);
    assert_int_equal(copy->feats[0].count, whole->feats[0].count);
    assert_double_exact(copy->feats[0].mean, whole->feats[0].mean);
    assert_double_exact(copy->feats[0].m2, whole->feats[0].m2);
    assert_double_exact(copy->feats[0].min, whole->feats[0].min);
    assert_int_equal(copy->all.labeled, whole->all.labeled);
    assert_int_equal(cat_count(&copy->feats[1], "c3"), cat_count(wc, "c3"));
    dw_agg_free(copy);
    dw_agg_free(empty);
    dw_agg_free(a);
    dw_agg_free(b);
    dw_agg_free(whole);
    free(x);
}

/* A rich aggregate: versions past the bound, a compacted sketch, a full category table. */
static struct dw_agg *rich_agg(const struct dw_model_cfg *model, size_t n_rows, size_t n_cats)
{
    struct dw_agg *agg = dw_agg_new(model, -1794999900000LL);
    double *x = make_values(9, n_rows, 10.0, 3.0);
    fill_rows(agg, 0, n_rows, x);
    free(x);
    char name[32];
    for (size_t k = 0; k < DW_AGG_MAX_VERSIONS + 2; k++) {
        snprintf(name, sizeof(name), "v%zu", k);
        dw_agg_version_slot(agg, name, strlen(name));
    }
    struct dw_prediction *ev = pred_new(3);
    set_missing(ev, 0);
    set_missing(ev, 2);
    for (size_t k = 0; k < n_cats; k++) {
        snprintf(name, sizeof(name), "cat-%zu", k);
        set_str(ev, 1, name);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
    }
    free(ev);
    struct dw_outcome o = {.pred = "1.5",
                           .label = "2.5",
                           .pred_is_num = 1,
                           .label_is_num = 1,
                           .pred_num = 1.5,
                           .label_num = 2.5};
    dw_agg_add_outcome(agg, DW_AGG_MAX_VERSIONS, &o);
    agg->duplicate_labels = 17;
    agg->conflicts = 5;
    agg->late_predictions = 19;
    agg->late_labels = 23;
    return agg;
}

static void assert_counts_equal(const struct dw_counts *a, const struct dw_counts *b)
{
    /* Integer and double fields alike: bit-identical after a round trip. */
    assert_memory_equal(a, b, sizeof(*a));
}

/* Encodes agg in the version 6 layout (dw_test_agg_layouts.h). */
static void encode_v6(const struct dw_agg *agg, struct dw_buf *out)
{
    assert_int_equal(dw_test_agg_encode_v6(agg, out), 0);
}

/* Encodes agg in the version 5 layout: version 6 without its outputs section (a u32 length at
 * offset 10 and the bytes it counts). */
static void encode_v5(const struct dw_agg *agg, struct dw_buf *out)
{
    struct dw_buf v6;
    dw_buf_init(&v6);
    encode_v6(agg, &v6);
    assert_int_equal(v6.data[0], 6);
    struct dw_reader rd;
    dw_reader_init(&rd, v6.data + 10, 4);
    size_t section = 4 + dw_rd_u32(&rd);
    dw_buf_put_u8(out, 5);
    dw_buf_put(out, v6.data + 1, 9);
    dw_buf_put(out, v6.data + 10 + section, v6.len - 10 - section);
    dw_buf_free(&v6);
}

/* Encodes agg in the version 4 layout: version 5 without its flags byte (offset 9). */
static void encode_v4(const struct dw_agg *agg, struct dw_buf *out)
{
    struct dw_buf v5;
    dw_buf_init(&v5);
    encode_v5(agg, &v5);
    assert_int_equal(v5.data[0], 5);
    assert_int_equal(v5.data[9], 0); /* sketches kept */
    dw_buf_put_u8(out, 4);
    dw_buf_put(out, v5.data + 1, 8);
    dw_buf_put(out, v5.data + 10, v5.len - 10);
    dw_buf_free(&v5);
}

/* Encodes agg, decodes it, checks every field; returns the decoded aggregate. */
static struct dw_agg *round_trip(const struct dw_agg *agg, size_t n_cat_names, struct dw_buf *b1)
{
    dw_agg_encode(agg, b1);
    assert_int_equal(b1->data[0], 7); /* codec version */
    char err[256] = "";
    struct dw_agg *back = dw_agg_decode(agg->model, b1->data, b1->len, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    assert_false(back->dirty);
    assert_int_equal(back->start_ms, agg->start_ms);
    assert_ptr_equal(back->model, agg->model);
    assert_counts_equal(&back->all, &agg->all);
    assert_int_equal(back->n_versions, agg->n_versions);
    for (size_t i = 0; i < agg->n_versions; i++) {
        assert_string_equal(back->versions[i].name, agg->versions[i].name);
        assert_counts_equal(&back->versions[i].c, &agg->versions[i].c);
        assert_int_equal(back->versions[i].served, agg->versions[i].served);
        assert_int_equal(back->versions[i].errors, agg->versions[i].errors);
        assert_int_equal(back->versions[i].latency ? dw_kll_count(back->versions[i].latency) : 0,
                         agg->versions[i].latency ? dw_kll_count(agg->versions[i].latency) : 0);
    }
    assert_int_equal(back->served, agg->served);
    assert_int_equal(back->errors, agg->errors);
    assert_int_equal(back->duplicate_labels, 17);
    assert_int_equal(back->conflicts, 5);
    assert_int_equal(back->late_predictions, 19);
    assert_int_equal(back->late_labels, 23);
    for (size_t f = 0; f < agg->model->n_features; f++) {
        const struct dw_feat_stats *o = &agg->feats[f], *n = &back->feats[f];
        assert_int_equal(n->type, o->type);
        assert_int_equal(n->count, o->count);
        assert_int_equal(n->missing, o->missing);
        assert_int_equal(n->nan, o->nan);
        assert_int_equal(n->inf, o->inf);
        assert_memory_equal(&n->min, &o->min, sizeof(double));
        assert_memory_equal(&n->max, &o->max, sizeof(double));
        assert_memory_equal(&n->mean, &o->mean, sizeof(double));
        assert_memory_equal(&n->m2, &o->m2, sizeof(double));
        assert_int_equal(n->other, o->other);
        assert_int_equal(n->n_cats, o->n_cats);
        assert_int_equal(n->n_exact, o->n_exact);
        assert_int_equal(n->n_hh, o->n_hh);
        assert_int_equal(n->bound, o->bound);
        assert_int_equal(n->hh_cap, o->hh_cap);
        assert_int_equal(n->hh_total, o->hh_total);
        assert_int_equal(n->hh_floor, o->hh_floor);
        for (size_t s = 0; o->cats && s < o->cat_cap; s++) {
            const struct dw_category *oc = &o->cats[s], *nc = NULL;
            if (!oc->name) {
                continue;
            }
            for (size_t t = 0; t < n->cat_cap; t++) {
                if (n->cats[t].name && strcmp(n->cats[t].name, oc->name) == 0) {
                    nc = &n->cats[t];
                }
            }
            assert_non_null(nc);
            assert_int_equal(nc->count, oc->count);
            assert_int_equal(nc->flags, oc->flags);
            assert_int_equal(nc->hh, oc->hh);
            assert_int_equal(nc->hh_err, oc->hh_err);
        }
        if (o->sk) {
            assert_int_equal(dw_kll_count(n->sk), dw_kll_count(o->sk));
            assert_int_equal(dw_kll_is_exact(n->sk), dw_kll_is_exact(o->sk));
        } else {
            assert_null(n->sk);
        }
    }
    char name[32];
    for (size_t k = 0; k < n_cat_names; k++) {
        snprintf(name, sizeof(name), "cat-%zu", k);
        assert_int_equal(cat_count(&back->feats[1], name), cat_count(&agg->feats[1], name));
    }
    return back;
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    struct dw_buf b1, b2;
    dw_buf_init(&b1);
    dw_buf_init(&b2);

    /* A full category table (and `other`): every field and category count comes back. */
    struct dw_agg *full = rich_agg(&g_model, 300, DW_AGG_MAX_CATEGORIES + 50);
    assert_int_equal(full->feats[1].n_exact, DW_AGG_MAX_CATEGORIES);
    /* fill_rows's 37 values came first: 963 cat-k fit, 87 values are late */
    assert_int_equal(full->feats[1].n_hh, 37 + 50);
    assert_true(full->feats[1].other > 0);
    assert_true(full->feats[0].nan > 0 && full->feats[0].inf > 0); /* they travel too */
    struct dw_agg *back = round_trip(full, DW_AGG_MAX_CATEGORIES + 50, &b1);
    dw_agg_free(back);
    dw_agg_free(full);

    /* A compacted sketch and a few hundred categories: re-encoding gives the same bytes. */
    dw_buf_reset(&b1);
    struct dw_agg *agg = rich_agg(&g_model, 5000, 300);
    assert_false(dw_kll_is_exact(agg->feats[0].sk)); /* the sketch really compacted */
    back = round_trip(agg, 300, &b1);
    dw_agg_encode(back, &b2);
    assert_int_equal(b2.len, b1.len);
    assert_memory_equal(b2.data, b1.data, b1.len);
    dw_agg_free(back);
    dw_agg_free(agg);

    /* An empty aggregate round-trips too (no sketch, no categories). */
    char err[256] = "";
    struct dw_agg *empty = dw_agg_new(&g_model, 0);
    dw_buf_reset(&b1);
    dw_buf_reset(&b2);
    dw_agg_encode(empty, &b1);
    struct dw_agg *eback = dw_agg_decode(&g_model, b1.data, b1.len, err, sizeof(err));
    assert_non_null(eback);
    assert_null(eback->feats[0].sk);
    assert_true(isinf(eback->feats[0].min));
    dw_agg_encode(eback, &b2);
    assert_int_equal(b2.len, b1.len);
    assert_memory_equal(b2.data, b1.data, b1.len);
    dw_agg_free(eback);
    dw_agg_free(empty);
    dw_buf_free(&b1);
    dw_buf_free(&b2);
}

static void test_decode_changed_model(void **state)
{
    (void)state;
    struct dw_agg *agg = rich_agg(&g_model, 300, 20);
    struct dw_buf b;
    dw_buf_init(&b);
    dw_agg_encode(agg, &b);

    /* "y" renamed to "y2", a new feature "z", the order changed; "x" and "c" kept. */
    struct dw_feature_cfg feats2[] = {
        {"z", DW_FEATURE_NUMERIC},
        {"c", DW_FEATURE_CATEGORICAL},
        {"y2", DW_FEATURE_NUMERIC},
        {"x", DW_FEATURE_NUMERIC},
    };
    struct dw_model_cfg model2 = {.name = "fraud",
                                  .task = DW_TASK_CLASSIFICATION,
                                  .positive_class = "1",
                                  .features = feats2,
                                  .n_features = 4};
    char err[256] = "";
    struct dw_agg *back = dw_agg_decode(&model2, b.data, b.len, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    assert_ptr_equal(back->model, &model2);
    /* x and c carried over by name. */
    assert_int_equal(back->feats[3].count, agg->feats[0].count);
    assert_int_equal(back->feats[3].missing, agg->feats[0].missing);
    assert_double_exact(back->feats[3].mean, agg->feats[0].mean);
    assert_double_exact(back->feats[3].m2, agg->feats[0].m2);
    assert_int_equal(dw_kll_count(back->feats[3].sk), agg->feats[0].count);
    assert_int_equal(back->feats[1].count, agg->feats[1].count);
    assert_int_equal(back->feats[1].n_cats, agg->feats[1].n_cats);
    assert_int_equal(cat_count(&back->feats[1], "cat-7"), 1);
    assert_int_equal(cat_count(&back->feats[1], "c5"), cat_count(&agg->feats[1], "c5"));
    /* The renamed and the new feature start empty; the dropped one went nowhere. */
    for (size_t f = 0; f < 4; f += 2) {
        assert_int_equal(back->feats[f].count, 0);
        assert_int_equal(back->feats[f].missing, 0);
        assert_null(back->feats[f].sk);
        assert_true(isinf(back->feats[f].min));
    }
    assert_int_equal(back->all.predictions, agg->all.predictions);
    dw_agg_free(back);

    /* A feature whose type changed is not carried over either. */
    struct dw_feature_cfg feats3[] = {
        {"x", DW_FEATURE_CATEGORICAL},
        {"c", DW_FEATURE_NUMERIC},
    };
    struct dw_model_cfg model3 = {.name = "fraud",
                                  .task = DW_TASK_CLASSIFICATION,
                                  .positive_class = "1",
                                  .features = feats3,
                                  .n_features = 2};
    back = dw_agg_decode(&model3, b.data, b.len, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(back->feats[0].count, 0);
    assert_int_equal(back->feats[0].n_cats, 0);
    assert_int_equal(back->feats[1].count, 0);
    assert_null(back->feats[1].sk);
    assert_int_equal(back->all.labeled, agg->all.labeled);
    dw_agg_free(back);
    dw_buf_free(&b);
    dw_agg_free(agg);
}

/* Counts that no update could have written (more correct than labeled, a confusion matrix
 * that does not sum to labeled) are refused by name. */
static void test_decode_counts_that_do_not_add_up(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        struct dw_agg *agg = rich_agg(&g_model, 40, 12);
        if (kind == 0) {
            agg->all.correct = agg->all.labeled + 1;
        } else {
            agg->all.tp++;
        }
        struct dw_buf b;
        dw_buf_init(&b);
        dw_agg_encode(agg, &b);
        char err[256] = "";
        assert_null(dw_agg_decode(&g_model, b.data, b.len, err, sizeof(err)));
        assert_non_null(strstr(err, "counts do not add up"));
        dw_buf_free(&b);
        dw_agg_free(agg);
    }
}

static void test_decode_corrupt(void **state)
{
    (void)state;
    struct dw_agg *agg = rich_agg(&g_model, 40, 12);
    struct dw_buf b;
    dw_buf_init(&b);
    dw_agg_encode(agg, &b);
    char err[256];
    /* Every truncation, each in an exactly-sized heap copy (ASan sees any overread). */
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, cut);
        err[0] = '\0';
        struct dw_agg *back = dw_agg_decode(&g_model, copy, cut, err, sizeof(err));
        if (back) {
            fail_msg("truncated at %zu of %zu bytes: accepted", cut, b.len);
        }
        assert_true(strlen(err) > 0);
        free(copy);
    }
    /* Trailing bytes. */
    uint8_t *longer = malloc(b.len + 1);
    assert_non_null(longer);
    memcpy(longer, b.data, b.len);
    longer[b.len] = 0;
    err[0] = '\0';
    assert_null(dw_agg_decode(&g_model, longer, b.len + 1, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    /* Unknown version. */
    longer[0] = 99;
    err[0] = '\0';
    assert_null(dw_agg_decode(&g_model, longer, b.len, err, sizeof(err)));
    assert_contains(err, "version");
    free(longer);
    /* A corrupt sketch inside (its format byte, right after the first feature's header). */
    static const char first_feat[] = "x";
    size_t at = 0;
    for (size_t i = 0; i + 6 <= b.len; i++) {
        if (memcmp(b.data + i, "\x01\x00\x00\x00x\x00", 6) == 0) {
            at = i + 4 + strlen(first_feat) + 1 + 7 * 8 + 4; /* name, type, 7 fields, len */
            break;
        }
    }
    assert_true(at > 0 && at < b.len);
    assert_int_equal(b.data[at], DW_KLL_FORMAT);
    uint8_t *bad = malloc(b.len);
    assert_non_null(bad);
    memcpy(bad, b.data, b.len);
    bad[at] = 0;
    err[0] = '\0';
    assert_null(dw_agg_decode(&g_model, bad, b.len, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    free(bad);
    dw_buf_free(&b);
    dw_agg_free(agg);
}

/*
 * Regression: two categories with the same home slot, the second wrapping around the table,
 * change places when decoded; the encoding sorts categories so the bytes do not change.
 */
static void test_encode_canonical_categories(void **state)
{
    (void)state;
    static struct dw_feature_cfg feats[] = {{"c", DW_FEATURE_CATEGORICAL}};
    static struct dw_model_cfg model = {.name = "m",
                                        .task = DW_TASK_CLASSIFICATION,
                                        .positive_class = "1",
                                        .features = feats,
                                        .n_features = 1};
    size_t slots = 16; /* the first table: both names share its last slot, the 2nd wraps */
    char names[2][32] = {"", ""};
    for (int i = 0; !names[1][0]; i++) {
        char name[32];
        int n = snprintf(name, sizeof(name), "k%d", i);
        if (dw_hash64(name, (size_t)n) % slots == slots - 1) {
            snprintf(names[names[0][0] ? 1 : 0], sizeof(names[0]), "%s", name);
        }
    }
    struct dw_agg *agg = dw_agg_new(&model, 0);
    struct dw_prediction *ev = pred_new(1);
    for (int i = 0; i < 2; i++) {
        set_str(ev, 0, names[i]);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
    }
    struct dw_buf b1;
    dw_buf_init(&b1);
    dw_agg_encode(agg, &b1);
    struct dw_agg *back = dw_agg_decode(&model, b1.data, b1.len, NULL, 0);
    assert_non_null(back);
    dw_buf_free(&b1);
    dw_test_assert_same_encoding(agg, back);
    dw_agg_free(back);
    dw_agg_free(agg);
    free(ev);
}

/* ------------------------------------------------------------------ heavy hitters */

/* A model of one categorical feature whose bound is 5 (models.<m>.max_categories). */
static struct dw_feature_cfg g_cat_feats[] = {{"c", DW_FEATURE_CATEGORICAL}};
static struct dw_model_cfg g_small = {.name = "small",
                                      .task = DW_TASK_CLASSIFICATION,
                                      .positive_class = "1",
                                      .features = g_cat_feats,
                                      .n_features = 1,
                                      .max_categories = 5};
#define SMALL_K 5

static void add_cat(struct dw_agg *agg, const char *name)
{
    struct dw_prediction *ev = pred_new(1);
    set_str(ev, 0, name);
    dw_agg_add_prediction(agg, unversioned(agg), ev);
    free(ev);
}

static const struct dw_category *cat_entry(const struct dw_feat_stats *fs, const char *name)
{
    for (size_t s = 0; fs->cats && s < fs->cat_cap; s++) {
        if (fs->cats[s].name && strcmp(fs->cats[s].name, name) == 0) {
            return &fs->cats[s];
        }
    }
    return NULL;
}

/* Table + other == non-missing count, and the bookkeeping fields agree with the table. */
static void assert_totals(const struct dw_feat_stats *fs)
{
    uint64_t sum = fs->other, reported = 0, hh_sum = 0;
    size_t n = 0, n_exact = 0, n_hh = 0;
    for (size_t s = 0; fs->cats && s < fs->cat_cap; s++) {
        const struct dw_category *c = &fs->cats[s];
        if (!c->name) {
            continue;
        }
        n++;
        sum += c->count;
        n_exact += (c->flags & DW_CAT_EXACT) != 0;
        if (c->flags & DW_CAT_MONITORED) {
            n_hh++;
            hh_sum += c->hh;
            assert_true(c->hh_err <= fs->hh_floor);
            assert_true(c->heap >= 1 && c->heap <= fs->n_hh);
            assert_int_equal(fs->hh_heap[c->heap - 1], s);
        }
        if (c->flags & DW_CAT_REPORTED) {
            reported += c->hh;
        }
    }
    assert_int_equal(sum, fs->count);
    assert_int_equal(n, fs->n_cats);
    assert_int_equal(n_exact, fs->n_exact);
    assert_int_equal(n_hh, fs->n_hh);
    assert_true(fs->n_exact <= fs->bound);
    assert_true(fs->n_hh <= fs->hh_cap);
    assert_int_equal(fs->other + reported, fs->hh_total);
    assert_true(hh_sum <= fs->hh_total);
    /* The documented bound: floor <= N_over / k. */
    assert_true(fs->hh_floor * fs->hh_cap <= fs->hh_total);
    assert_true(fs->cat_cap <= dw_agg_cat_slots(fs->bound));
}

static void test_bound_from_model(void **state)
{
    (void)state;
    struct dw_model_cfg m = g_small;
    assert_int_equal(dw_agg_max_categories(&m), 5);
    m.max_categories = 0; /* a struct built by hand: the default */
    assert_int_equal(dw_agg_max_categories(&m), DW_AGG_MAX_CATEGORIES);
    m.max_categories = 100000;
    assert_int_equal(dw_agg_max_categories(&m), 100000);
    assert_int_equal(dw_agg_cat_slots(5), 32);      /* 10 entries at load <= 1/2 */
    assert_int_equal(dw_agg_cat_slots(1000), 4096); /* 2000 entries */
    struct dw_agg *agg = dw_agg_new(&g_small, 0);
    assert_int_equal(agg->feats[0].bound, 5);
    assert_int_equal(agg->feats[0].hh_cap, 5);
    /* Below the bound: every count exact, nothing in other, no counter. */
    static const char *const names[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) {
        for (size_t r = 0; r <= i * 3; r++) {
            add_cat(agg, names[i]);
        }
    }
    const struct dw_feat_stats *fs = &agg->feats[0];
    for (size_t i = 0; i < 5; i++) {
        const struct dw_category *c = cat_entry(fs, names[i]);
        assert_non_null(c);
        assert_int_equal(c->count, i * 3 + 1);
        assert_int_equal(c->flags, DW_CAT_EXACT);
    }
    assert_int_equal(fs->n_exact, 5);
    assert_int_equal(fs->n_hh, 0);
    assert_int_equal(fs->other, 0);
    assert_int_equal(fs->hh_total, 0);
    assert_totals(fs);
    /* The sixth distinct value is the first late one. */
    add_cat(agg, "f");
    assert_int_equal(fs->n_exact, 5);
    assert_int_equal(fs->n_hh, 1);
    assert_int_equal(fs->hh_total, 1);
    assert_int_equal(fs->other, 1); /* 1 is not above count / k = 36 / 5 */
    assert_totals(fs);
    /* An aggregate of the default model keeps the default bound. */
    struct dw_agg *def = dw_agg_new(&g_model, 0);
    assert_int_equal(def->feats[1].bound, DW_AGG_MAX_CATEGORIES);
    dw_agg_free(def);
    dw_agg_free(agg);
}

/*
 * The skewed stream: 5 exact values a..e (10 each), then N_SKEW late values: "hot" 40 %,
 * "warm" 10 %, and a tail of values seen once. truth() gives every value's true count.
 */
#define N_SKEW 2000

static const char *skew_value(size_t i, char *buf, size_t size)
{
    if (i % 5 == 0 || i % 5 == 2) {
        return "hot";
    }
    if (i % 10 == 1) {
        return "warm";
    }
    snprintf(buf, size, "t%zu", i);
    return buf;
}

static uint64_t truth(const char *name, size_t from, size_t to, size_t step, size_t phase)
{
    uint64_t n = 0;
    char buf[32];
    for (size_t i = from; i < to; i++) {
        if (i % step == phase && strcmp(skew_value(i, buf, sizeof(buf)), name) == 0) {
            n++;
        }
    }
    return n;
}

/* Every entry against the true overflow and exact counts of the whole stream. */
static void assert_bounds(const struct dw_feat_stats *fs, uint64_t hot, uint64_t warm,
                          uint64_t exact_each)
{
    static const char *const exact[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) {
        const struct dw_category *c = cat_entry(fs, exact[i]);
        assert_non_null(c);
        assert_true(c->flags & DW_CAT_EXACT);
        assert_int_equal(c->count, exact_each);
    }
    const char *names[] = {"hot", "warm"};
    uint64_t want[] = {hot, warm};
    for (size_t i = 0; i < 2; i++) {
        const struct dw_category *c = cat_entry(fs, names[i]);
        if (c && (c->flags & DW_CAT_MONITORED)) {
            assert_true(c->hh - c->hh_err <= want[i]);
            assert_true(want[i] <= c->hh);
        } else {
            assert_true(want[i] <= fs->hh_floor); /* not monitored: a small count */
        }
    }
    /* "hot" is over count / k: it must be reported, over-estimated by at most N_over / k. */
    const struct dw_category *h = cat_entry(fs, "hot");
    assert_non_null(h);
    assert_true(hot * fs->hh_cap > fs->count);
    assert_true(h->flags & DW_CAT_REPORTED);
    assert_true(h->count >= hot);
    assert_true(h->count - hot <= h->hh_err);
    assert_true((h->count - hot) * fs->hh_cap <= fs->hh_total);
    /* Tail values are seen once: monitored ones hold at least that, others are under floor. */
    char buf[32];
    for (size_t i = 0; i < N_SKEW; i++) {
        const char *v = skew_value(i, buf, sizeof(buf));
        if (v[0] != 't') {
            continue;
        }
        const struct dw_category *c = cat_entry(fs, v);
        if (c) {
            assert_true(c->hh >= 1 && c->hh - c->hh_err <= 1);
        } else {
            assert_true(fs->hh_floor >= 1);
        }
    }
    assert_totals(fs);
}

static void fill_skew(struct dw_agg *agg, size_t from, size_t to, size_t step, size_t phase)
{
    char buf[32];
    for (size_t i = from; i < to; i++) {
        if (i % step == phase) {
            add_cat(agg, skew_value(i, buf, sizeof(buf)));
        }
    }
}

static void fill_exact(struct dw_agg *agg, size_t times, size_t rotate)
{
    static const char *const exact[] = {"a", "b", "c", "d", "e"};
    for (size_t r = 0; r < times; r++) {
        for (size_t i = 0; i < 5; i++) {
            add_cat(agg, exact[(i + rotate) % 5]);
        }
    }
}

static void test_heavy_hitters_skewed(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_small, 0);
    fill_exact(agg, 10, 0);
    fill_skew(agg, 0, N_SKEW, 1, 0);
    const struct dw_feat_stats *fs = &agg->feats[0];
    assert_int_equal(fs->count, 50 + N_SKEW);
    assert_int_equal(fs->hh_total, N_SKEW);
    assert_int_equal(fs->n_hh, SMALL_K);
    assert_true(fs->hh_floor > 0); /* the tail really evicted counters */
    assert_int_equal(truth("hot", 0, N_SKEW, 1, 0), 800);
    assert_int_equal(truth("warm", 0, N_SKEW, 1, 0), 200);
    assert_bounds(fs, 800, 200, 10);
    /* The long tail is in other: at least the 1000 values seen once that no counter reports. */
    assert_true(fs->other >= 1000 - SMALL_K);
    dw_agg_free(agg);
}

/* Four partitions of the stream, each seeing the exact values in another order, and one seeing
 * "hot" before its table fills (so "hot" is exact there and late elsewhere). */
static void test_heavy_hitters_merge(void **state)
{
    (void)state;
    struct dw_agg *parts[4];
    for (size_t p = 0; p < 4; p++) {
        parts[p] = dw_agg_new(&g_small, 0);
        if (p == 3) {
            add_cat(parts[p], "hot");
        }
        fill_exact(parts[p], 10, p);
        fill_skew(parts[p], 0, N_SKEW, 4, p);
        assert_totals(&parts[p]->feats[0]);
    }
    /* p = 3: "hot" entered the exact table; of d, e, a, b, c (rotated by 3) "c" went late. */
    assert_true(cat_entry(&parts[3]->feats[0], "hot")->flags & DW_CAT_EXACT);
    const struct dw_category *late = cat_entry(&parts[3]->feats[0], "c");
    assert_true(late == NULL || !(late->flags & DW_CAT_EXACT));
    struct dw_agg *all = dw_agg_new_exact(&g_small, 0, DW_AGG_MERGE_EXACT);
    for (size_t p = 0; p < 4; p++) {
        dw_agg_merge(all, parts[p]);
        assert_totals(&all->feats[0]);
    }
    const struct dw_feat_stats *fs = &all->feats[0];
    uint64_t hot = 1 + truth("hot", 0, N_SKEW, 1, 0);
    assert_int_equal(fs->count, 4 * 50 + N_SKEW + 1);
    /* Values counted exactly on every side stay exact (a, b, d, e); "c" was late in one
     * partition: its 10 values there are estimated (within the floor) or in other. */
    for (size_t i = 0; i < 4; i++) {
        static const char *const exact[] = {"a", "b", "d", "e"};
        const struct dw_category *c = cat_entry(fs, exact[i]);
        assert_non_null(c);
        assert_int_equal(c->count, 40);
        assert_int_equal(c->flags, DW_CAT_EXACT);
    }
    const struct dw_category *lc = cat_entry(fs, "c");
    assert_non_null(lc);
    assert_true(lc->flags & DW_CAT_EXACT);
    assert_true(lc->count >= 30);
    if (lc->flags & DW_CAT_REPORTED) {
        assert_true(lc->count >= 40 && lc->count - 40 <= lc->hh_err);
    } else if (lc->flags & DW_CAT_MONITORED) {
        assert_int_equal(lc->count, 30);
        assert_true(lc->hh >= 10 && lc->hh - lc->hh_err <= 10);
    } else {
        assert_int_equal(lc->count, 30);
        assert_true(10 <= fs->hh_floor);
    }
    const struct dw_category *h = cat_entry(fs, "hot");
    assert_non_null(h);
    assert_true(h->flags & DW_CAT_REPORTED);
    assert_true(h->count >= hot);
    assert_true(h->count - hot <= h->hh_err);
    assert_true(h->hh_err <= fs->hh_floor);
    assert_true(fs->hh_floor * fs->hh_cap <= fs->hh_total);
    const struct dw_category *w = cat_entry(fs, "warm");
    if (w && (w->flags & DW_CAT_MONITORED)) {
        assert_true(w->hh - w->hh_err <= 200 && 200 <= w->hh);
    } else {
        assert_true(200 <= fs->hh_floor);
    }
    /* Merging the same parts in another order gives the same guarantees. */
    struct dw_agg *rev = dw_agg_new_exact(&g_small, 0, DW_AGG_MERGE_EXACT);
    for (size_t p = 4; p-- > 0;) {
        dw_agg_merge(rev, parts[p]);
    }
    assert_totals(&rev->feats[0]);
    h = cat_entry(&rev->feats[0], "hot");
    assert_non_null(h);
    assert_true(h->flags & DW_CAT_REPORTED);
    assert_true(h->count >= hot && h->count - hot <= h->hh_err);
    assert_int_equal(rev->feats[0].count, fs->count);
    dw_agg_free(rev);
    /* Pruning: two sides with 5 frequent late values each (x: 100, y: 50 times) leave room for
     * 5 counters. The y values dropped have 50 occurrences each: the merged floor must cover
     * them, and every kept x must still be over-estimated. */
    struct dw_agg *xs = dw_agg_new(&g_small, 0), *ys = dw_agg_new(&g_small, 0);
    fill_exact(xs, 1, 0);
    fill_exact(ys, 1, 0);
    char nm[8];
    for (size_t r = 0; r < 100; r++) {
        for (size_t j = 0; j < 5; j++) {
            snprintf(nm, sizeof(nm), "x%zu", j);
            add_cat(xs, nm);
            if (r < 50) {
                snprintf(nm, sizeof(nm), "y%zu", j);
                add_cat(ys, nm);
            }
        }
    }
    dw_agg_merge(xs, ys);
    const struct dw_feat_stats *fx = &xs->feats[0];
    assert_totals(fx);
    assert_int_equal(fx->n_hh, SMALL_K);
    assert_true(fx->hh_floor >= 50);
    for (size_t j = 0; j < 5; j++) {
        snprintf(nm, sizeof(nm), "x%zu", j);
        const struct dw_category *c = cat_entry(fx, nm);
        assert_non_null(c);
        assert_true(c->hh >= 100 && c->hh - c->hh_err <= 100);
        snprintf(nm, sizeof(nm), "y%zu", j);
        c = cat_entry(fx, nm);
        if (c) {
            assert_true(c->hh >= 50 && c->hh - c->hh_err <= 50);
        } else {
            assert_true(50 <= fx->hh_floor);
        }
    }
    dw_agg_free(xs);
    dw_agg_free(ys);
    /* Two summaries that never evicted (small, disjoint) merge without any error. */
    struct dw_agg *x = dw_agg_new(&g_small, 0), *y = dw_agg_new(&g_small, 0);
    fill_exact(x, 2, 0);
    fill_exact(y, 2, 0);
    add_cat(x, "p");
    add_cat(x, "p");
    add_cat(y, "q");
    dw_agg_merge(x, y);
    assert_int_equal(x->feats[0].hh_floor, 0);
    assert_int_equal(cat_entry(&x->feats[0], "p")->hh, 2);
    assert_int_equal(cat_entry(&x->feats[0], "q")->hh, 1);
    assert_int_equal(cat_entry(&x->feats[0], "a")->count, 4);
    assert_totals(&x->feats[0]);
    dw_agg_free(x);
    dw_agg_free(y);
    dw_agg_free(all);
    for (size_t p = 0; p < 4; p++) {
        dw_agg_free(parts[p]);
    }
}

static void test_heavy_hitters_encode(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_small, 0);
    fill_exact(agg, 10, 0);
    fill_skew(agg, 0, N_SKEW / 2, 1, 0);
    struct dw_buf b1, b2;
    dw_buf_init(&b1);
    dw_buf_init(&b2);
    dw_agg_encode(agg, &b1);
    assert_int_equal(b1.data[0], 7);
    char err[256] = "";
    struct dw_agg *back = dw_agg_decode(&g_small, b1.data, b1.len, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    const struct dw_feat_stats *o = &agg->feats[0], *n = &back->feats[0];
    assert_int_equal(n->hh_total, o->hh_total);
    assert_int_equal(n->hh_floor, o->hh_floor);
    assert_int_equal(n->n_hh, o->n_hh);
    assert_int_equal(n->other, o->other);
    assert_totals(n);
    dw_agg_encode(back, &b2);
    assert_int_equal(b2.len, b1.len);
    assert_memory_equal(b2.data, b1.data, b1.len);
    /* Both continue alike: same evictions (ties broken by name, not by table layout). */
    fill_skew(agg, N_SKEW / 2, N_SKEW, 1, 0);
    fill_skew(back, N_SKEW / 2, N_SKEW, 1, 0);
    assert_bounds(&back->feats[0], 800, 200, 10);
    dw_buf_reset(&b1);
    dw_buf_reset(&b2);
    dw_agg_encode(agg, &b1);
    dw_agg_encode(back, &b2);
    assert_int_equal(b2.len, b1.len);
    assert_memory_equal(b2.data, b1.data, b1.len);
    /* Inconsistent totals are refused: flip the first entry's count (its last byte). */
    size_t at = 0;
    for (size_t i = 0; i + 6 <= b1.len; i++) {
        if (memcmp(b1.data + i,
                   "\x01\x00\x00\x00"
                   "a"
                   "\x01",
                   6) == 0) {
            at = i + 6; /* name "a", flags EXACT, then its u64 count */
        }
    }
    assert_true(at > 0);
    assert_int_equal(b1.data[at], 10);
    b1.data[at] = 11;
    assert_null(dw_agg_decode(&g_small, b1.data, b1.len, err, sizeof(err)));
    assert_contains(err, "feature c: categories do not add up");
    dw_agg_free(back);
    dw_agg_free(agg);
    dw_buf_free(&b1);
    dw_buf_free(&b2);
}

/* A version 2 blob (categories without counters) still decodes: its categories beyond the
 * bound go through SpaceSaving and its old "other" stays other. The blob is a version 3 one
 * whose category section is replaced by the version 2 layout. */
static void test_decode_v2(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_small, 0);
    fill_exact(agg, 3, 0);    /* a..e, 3 each: exact entries only */
    agg->feats[0].count += 3; /* "f", 3 times: a sixth category, in the version 2 table */
    agg->feats[0].count += 4; /* and 4 values that version 2 had put in other */
    agg->feats[0].other = 4;
    struct dw_buf b, v2;
    dw_buf_init(&b);
    dw_buf_init(&v2);
    encode_v4(agg, &b);
    /* v4 ends with the category section, 28 bytes and 5 x (u32 len, 1 byte name, u8, u64),
     * then u64 nan and inf. */
    size_t v3_cats = 28 + 5 * (4 + 1 + 1 + 8);
    dw_buf_put(&v2, b.data, b.len - 16 - v3_cats);
    v2.data[0] = 2;
    dw_buf_put_u32(&v2, 6);
    static const char *const names[] = {"a", "b", "c", "d", "e", "f"};
    for (size_t i = 0; i < 6; i++) {
        dw_buf_put_str(&v2, names[i], 1);
        dw_buf_put_u64(&v2, 3);
    }
    char err[256] = "";
    struct dw_agg *back = dw_agg_decode(&g_small, v2.data, v2.len, err, sizeof(err));
    if (!back) {
        fail_msg("decode v2: %s", err);
    }
    const struct dw_feat_stats *fs = &back->feats[0];
    assert_int_equal(fs->count, 15 + 3 + 4);
    assert_int_equal(fs->n_exact, 5);
    assert_int_equal(cat_entry(fs, "a")->count, 3);
    assert_true(cat_entry(fs, "f")->flags & DW_CAT_MONITORED);
    assert_int_equal(cat_entry(fs, "f")->hh, 3);
    assert_int_equal(cat_entry(fs, "f")->hh_err, 0);
    assert_int_equal(fs->hh_total, 3 + 4);
    assert_int_equal(fs->other, 3 + 4); /* 3 is not above count / k = 22 / 5 */
    assert_totals(fs);
    dw_agg_free(back);
    dw_agg_free(agg);
    dw_buf_free(&b);
    dw_buf_free(&v2);
}

/* ------------------------------------------------------------------ non-finite values */

static struct dw_feature_cfg g_num_feats[] = {{"x", DW_FEATURE_NUMERIC}};
static struct dw_model_cfg g_num = {.name = "num",
                                    .task = DW_TASK_CLASSIFICATION,
                                    .positive_class = "1",
                                    .features = g_num_feats,
                                    .n_features = 1};

/*
 * NaN and +-inf of a numeric feature are counted in nan / inf and nowhere else: count, moments,
 * min/max and the sketch are those of the finite values alone, exactly as if the non-finite
 * ones had never come. A categorical feature takes "NaN" as any other text.
 */
static void test_non_finite_values(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_model, 0);
    struct dw_agg *finite = dw_agg_new(&g_model, 0); /* the same finite values only */
    struct dw_prediction *ev = pred_new(3);
    static const double xs[] = {3.0, NAN, 1.0, INFINITY, -INFINITY, 8.0, NAN, -2.0, NAN};
    size_t n_finite = 0;
    for (size_t i = 0; i < DW_ARRAY_SIZE(xs); i++) {
        set_num(ev, 0, xs[i]);
        set_str(ev, 1, i % 2 ? "NaN" : "Infinity");
        set_num(ev, 2, (double)i);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
        if (isfinite(xs[i])) {
            dw_agg_add_prediction(finite, unversioned(finite), ev);
            n_finite++;
        }
    }
    set_missing(ev, 0);
    dw_agg_add_prediction(agg, unversioned(agg), ev);
    const struct dw_feat_stats *fs = &agg->feats[0], *ff = &finite->feats[0];
    assert_int_equal(fs->count, n_finite);
    assert_int_equal(fs->count, 4);
    assert_int_equal(fs->nan, 3);
    assert_int_equal(fs->inf, 2);
    assert_int_equal(fs->missing, 1);
    assert_int_equal(fs->count + fs->missing + fs->nan + fs->inf, agg->all.predictions);
    assert_double_exact(fs->mean, 2.5); /* (3 + 1 + 8 - 2) / 4 */
    assert_double_exact(fs->mean, ff->mean);
    assert_double_exact(fs->m2, ff->m2);
    assert_double_exact(fs->min, -2.0);
    assert_double_exact(fs->max, 8.0);
    assert_int_equal(dw_kll_count(fs->sk), 4);
    assert_double_exact(dw_kll_min(fs->sk), -2.0);
    assert_double_exact(dw_kll_max(fs->sk), 8.0);
    /* categorical: text; the other numeric feature: all finite */
    assert_int_equal(cat_count(&agg->feats[1], "NaN"), 4);      /* odd i */
    assert_int_equal(cat_count(&agg->feats[1], "Infinity"), 6); /* even i and the last event */
    assert_int_equal(agg->feats[1].nan + agg->feats[1].inf, 0);
    assert_int_equal(agg->feats[2].count, DW_ARRAY_SIZE(xs) + 1);

    /* merge adds them; a side with only non-finite values leaves the moments alone */
    struct dw_agg *only = dw_agg_new(&g_model, 0);
    set_num(ev, 0, INFINITY);
    dw_agg_add_prediction(only, unversioned(only), ev);
    set_num(ev, 0, NAN);
    dw_agg_add_prediction(only, unversioned(only), ev);
    assert_int_equal(only->feats[0].count, 0);
    assert_null(only->feats[0].sk);
    dw_agg_merge(agg, only);
    assert_int_equal(fs->nan, 4);
    assert_int_equal(fs->inf, 3);
    assert_int_equal(fs->count, 4);
    assert_double_exact(fs->mean, 2.5);
    assert_double_exact(fs->min, -2.0);
    assert_double_exact(fs->max, 8.0);
    struct dw_agg *into = dw_agg_new(&g_model, 0);
    dw_agg_merge(into, only);
    assert_int_equal(into->feats[0].nan, 1);
    assert_int_equal(into->feats[0].inf, 1);
    assert_true(isinf(into->feats[0].min) && into->feats[0].min > 0); /* still empty */

    /* inspect's JSON shows them for numeric features */
    json_t *j = dw_agg_to_json(agg);
    json_t *jx = json_object_get(json_object_get(j, "features"), "x");
    assert_int_equal(json_integer_value(json_object_get(jx, "count")), 4);
    assert_int_equal(json_integer_value(json_object_get(jx, "nan")), 4);
    assert_int_equal(json_integer_value(json_object_get(jx, "inf")), 3);
    json_t *jc = json_object_get(json_object_get(j, "features"), "c");
    assert_non_null(jc);
    assert_null(json_object_get(jc, "nan"));
    json_decref(j);

    dw_agg_free(into);
    dw_agg_free(only);
    dw_agg_free(finite);
    dw_agg_free(agg);
    free(ev);
}

/* A version 3 blob (no nan / inf) still decodes, with both 0; a version 4 one carries them. */
static void test_decode_v3(void **state)
{
    (void)state;
    struct dw_agg *agg = dw_agg_new(&g_num, 0);
    struct dw_prediction *ev = pred_new(1);
    static const double xs[] = {1.5, NAN, 2.5, INFINITY, NAN};
    for (size_t i = 0; i < DW_ARRAY_SIZE(xs); i++) {
        set_num(ev, 0, xs[i]);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
    }
    struct dw_buf b;
    dw_buf_init(&b);
    encode_v4(agg, &b);
    char err[256] = "";
    struct dw_agg *back = dw_agg_decode(&g_num, b.data, b.len, err, sizeof(err));
    if (!back) {
        fail_msg("decode v4: %s", err);
    }
    assert_int_equal(back->feats[0].nan, 2);
    assert_int_equal(back->feats[0].inf, 1);
    assert_int_equal(back->feats[0].count, 2);
    dw_agg_free(back);

    /* the same record as version 3: the one feature's trailing u64 nan, u64 inf dropped */
    b.data[0] = 3;
    back = dw_agg_decode(&g_num, b.data, b.len - 16, err, sizeof(err));
    if (!back) {
        fail_msg("decode v3: %s", err);
    }
    assert_int_equal(back->feats[0].nan, 0);
    assert_int_equal(back->feats[0].inf, 0);
    assert_int_equal(back->feats[0].count, 2);
    assert_double_exact(back->feats[0].mean, 2.0);
    assert_int_equal(dw_kll_count(back->feats[0].sk), 2);
    dw_agg_free(back);
    /* version 4 read as version 3 leaves 16 bytes over: corrupt, not silently misread */
    assert_null(dw_agg_decode(&g_num, b.data, b.len, err, sizeof(err)));
    dw_buf_free(&b);
    dw_agg_free(agg);

    /* a categorical feature with a nan count is corrupt (its NaN is a category) */
    struct dw_agg *cat = dw_agg_new(&g_small, 0);
    add_cat(cat, "NaN");
    dw_buf_init(&b);
    dw_agg_encode(cat, &b);
    b.data[b.len - 16] = 1; /* low byte of nan */
    assert_null(dw_agg_decode(&g_small, b.data, b.len, err, sizeof(err)));
    b.data[b.len - 16] = 0;
    back = dw_agg_decode(&g_small, b.data, b.len, err, sizeof(err));
    assert_non_null(back);
    dw_agg_free(back);
    dw_buf_free(&b);
    dw_agg_free(cat);
    free(ev);
}

/* ------------------------------------------------------------------ hostile encodings */

/* A model of one categorical feature "c" (bound 5) and one numeric feature "x". */
static struct dw_feature_cfg g_two_feats[] = {{"c", DW_FEATURE_CATEGORICAL},
                                              {"x", DW_FEATURE_NUMERIC}};
static struct dw_model_cfg g_two = {.name = "two",
                                    .task = DW_TASK_CLASSIFICATION,
                                    .positive_class = "1",
                                    .features = g_two_feats,
                                    .n_features = 2,
                                    .max_categories = 5};

/*
 * The feature sections of an encoding of agg: everything after its u16 feature count. With no
 * versions, outcomes or latencies, the part before them has the length of the encoding of a
 * model without features.
 */
static void feature_sections(const struct dw_agg *agg, struct dw_buf *out)
{
    static struct dw_model_cfg none = {.name = "none", .positive_class = "1"};
    struct dw_agg *empty = dw_agg_new(&none, agg->start_ms);
    for (size_t v = 0; v < agg->n_versions; v++) { /* the same header: its versions too */
        const char *name = agg->versions[v].name;
        dw_agg_version_slot(empty, name, strlen(name));
    }
    struct dw_buf head, full;
    dw_buf_init(&head);
    dw_buf_init(&full);
    encode_v5(empty, &head); /* without the outputs, which come before the features */
    encode_v5(agg, &full);
    assert_true(full.len > head.len);
    dw_buf_put(out, full.data + head.len, full.len - head.len);
    dw_buf_free(&head);
    dw_buf_free(&full);
    dw_agg_free(empty);
}

/* An encoding of model `none`'s header (the window's counts) followed by n_features sections. */
static void blob_with_sections(struct dw_buf *blob, uint16_t n_features, const struct dw_buf *s1,
                               const struct dw_buf *s2)
{
    static struct dw_model_cfg none = {.name = "none", .positive_class = "1"};
    struct dw_agg *empty = dw_agg_new(&none, 0);
    dw_agg_encode(empty, blob);
    blob->len -= 2; /* the u16 feature count, 0 */
    dw_buf_put_u16(blob, n_features);
    dw_buf_put(blob, s1->data, s1->len);
    if (s2) {
        dw_buf_put(blob, s2->data, s2->len);
    }
    dw_agg_free(empty);
}

/* Decodes blob from an exactly-sized heap copy (ASan sees any overread). */
static struct dw_agg *decode_copy(const struct dw_model_cfg *m, const struct dw_buf *blob,
                                  char *err, size_t err_size)
{
    uint8_t *copy = malloc(blob->len ? blob->len : 1);
    assert_non_null(copy);
    memcpy(copy, blob->data, blob->len);
    err[0] = '\0';
    struct dw_agg *agg = dw_agg_decode(m, copy, blob->len, err, err_size);
    free(copy);
    return agg;
}

/* ------------------------------------------------------------------ dropped sketches */

/* g_model's window with n predictions: x = i, c one of 7 texts (every third missing), y = i/3,
 * and a label for every other one. */
static struct dw_agg *window_of(int64_t start, int n)
{
    struct dw_agg *agg = dw_agg_new(&g_model, start);
    struct dw_prediction *ev = pred_new(3);
    static const char *const cats[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < n; i++) {
        set_num(ev, 0, (double)i);
        if (i % 3 == 0) {
            set_missing(ev, 1);
        } else {
            set_str(ev, 1, cats[i % 7]);
        }
        set_num(ev, 2, (double)i / 3.0);
        ev->has_latency = 1;
        ev->latency_ms = (double)(i % 50);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
        if (i % 2 == 0) {
            struct dw_outcome o = {.pred = "1", .label = i % 4 ? "1" : "0"};
            dw_agg_add_outcome(agg, unversioned(agg), &o);
        }
    }
    free(ev);
    return agg;
}

/* The counts and moments of every feature of a and b are bit-identical. */
static void assert_feature_counts_equal(const struct dw_agg *a, const struct dw_agg *b)
{
    for (size_t i = 0; i < a->model->n_features; i++) {
        const struct dw_feat_stats *x = &a->feats[i], *y = &b->feats[i];
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->missing, y->missing);
        assert_int_equal(x->nan, y->nan);
        assert_int_equal(x->inf, y->inf);
        assert_memory_equal(&x->min, &y->min, sizeof(double));
        assert_memory_equal(&x->max, &y->max, sizeof(double));
        assert_memory_equal(&x->mean, &y->mean, sizeof(double));
        assert_memory_equal(&x->m2, &y->m2, sizeof(double));
    }
}

/*
 * A partition drops a window's sketches once the close evaluation merged them: the counts,
 * moments and every label-side counter stay bit-identical, through the checkpoint encoding too,
 * which shrinks to the counts; a merge with a dropped side is dropped and still adds the
 * counts; hostile dropped records and unknown flags are refused.
 */
static void test_drop_sketches(void **state)
{
    (void)state;
    struct dw_agg *agg = window_of(60000, 3000);
    struct dw_agg *whole = window_of(60000, 3000);
    struct dw_buf full, dropped;
    dw_buf_init(&full);
    dw_buf_init(&dropped);
    dw_agg_encode(agg, &full);
    agg->dirty = 0;
    dw_agg_drop_sketches(agg);
    assert_true(agg->sketches_dropped);
    assert_true(agg->dirty); /* the checkpoint writes the smaller record */
    assert_null(agg->feats[0].sk);
    assert_null(agg->feats[1].cats);
    assert_null(agg->perf.latency);
    assert_int_equal(agg->feats[1].other, 0);
    assert_feature_counts_equal(agg, whole);
    assert_counts_equal(&agg->all, &whole->all);
    assert_counts_equal(&agg->versions[0].c, &whole->versions[0].c);
    dw_agg_drop_sketches(agg); /* twice: nothing more to free */

    dw_agg_encode(agg, &dropped);
    assert_int_equal(dropped.data[0], 7);
    assert_int_equal(dropped.data[9], 1); /* flags: dropped */
    assert_true(dropped.len * 20 < full.len);
    char err[256] = "";
    struct dw_agg *back = decode_copy(&g_model, &dropped, err, sizeof(err));
    if (!back) {
        fail_msg("decode dropped: %s", err);
    }
    assert_true(back->sketches_dropped);
    assert_null(back->feats[0].sk);
    assert_feature_counts_equal(back, whole);
    assert_counts_equal(&back->all, &whole->all);
    json_t *js = dw_agg_to_json(back);
    assert_true(json_is_true(json_object_get(js, "sketches_dropped")));
    json_decref(js);
    struct dw_buf again;
    dw_buf_init(&again);
    dw_agg_encode(back, &again);
    assert_int_equal(again.len, dropped.len);
    assert_memory_equal(again.data, dropped.data, dropped.len);
    dw_buf_free(&again);

    /* full + dropped: dropped, with both sides' counts */
    struct dw_agg *sum = window_of(60000, 1000);
    struct dw_agg *sum_want = window_of(60000, 1000);
    dw_agg_merge(sum_want, whole);
    dw_agg_merge(sum, back);
    assert_true(sum->sketches_dropped);
    assert_null(sum->feats[0].sk);
    assert_int_equal(sum->feats[0].count, sum_want->feats[0].count);
    assert_int_equal(sum->feats[1].count, sum_want->feats[1].count);
    assert_int_equal(sum->feats[1].missing, sum_want->feats[1].missing);
    assert_double_exact(sum->feats[0].max, 2999.0);
    assert_counts_equal(&sum->all, &sum_want->all);
    dw_agg_free(sum);
    dw_agg_free(sum_want);

    /* hostile: min above max, values without bounds, an unknown flag */
    size_t x_min = dropped.len;
    for (size_t i = 0; i + 9 < dropped.len; i++) { /* the x section: "x", type, count, ... */
        if (memcmp(dropped.data + i, "\x01\0\0\0x\0", 6) == 0) {
            x_min = i + 6 + 16;
            break;
        }
    }
    assert_true(x_min < dropped.len);
    double bad = 1e9;
    memcpy(dropped.data + x_min, &bad, sizeof(bad)); /* min 1e9 > max 2999 */
    assert_null(decode_copy(&g_model, &dropped, err, sizeof(err)));
    assert_contains(err, "feature x");
    assert_contains(err, "above max");
    bad = INFINITY;
    memcpy(dropped.data + x_min, &bad, sizeof(bad));
    bad = -INFINITY;
    memcpy(dropped.data + x_min + 8, &bad, sizeof(bad)); /* 3000 values, no bounds */
    assert_null(decode_copy(&g_model, &dropped, err, sizeof(err)));
    assert_contains(err, "with 3000 values");
    dropped.data[9] = 0x5; /* 0x4: no such flag (0x2 is "sealed") */
    assert_null(decode_copy(&g_model, &dropped, err, sizeof(err)));
    assert_contains(err, "unknown flags");

    dw_agg_free(back);
    dw_agg_free(agg);
    dw_agg_free(whole);
    dw_buf_free(&full);
    dw_buf_free(&dropped);
}

/*
 * Regression: a checkpoint that names a feature twice. The second section of a categorical
 * feature restored its counters into the heap the first one had sized (a heap overflow in
 * heap_put when its hh_cap was larger); the second section of a numeric feature replaced the
 * first one's sketch (a leak). The decoder refuses the blob and names the feature.
 */
static void test_decode_feature_twice(void **state)
{
    (void)state;
    /* "c" with 2 counters (bound 2), then "c" with 5 counters of other names (bound 5) */
    struct dw_model_cfg m2 = g_two, m5 = g_two;
    m2.max_categories = 2;
    struct dw_agg *a2 = dw_agg_new(&m2, 0), *a5 = dw_agg_new(&m5, 0);
    struct dw_prediction *ev = pred_new(2);
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "a%d", i % 8);
        set_str(ev, 0, name);
        set_num(ev, 1, (double)i);
        dw_agg_add_prediction(a2, unversioned(a2), ev);
        snprintf(name, sizeof(name), "b%d", i % 12);
        set_str(ev, 0, name);
        dw_agg_add_prediction(a5, unversioned(a5), ev);
    }
    assert_int_equal(a2->feats[0].n_hh, 2);
    assert_int_equal(a5->feats[0].n_hh, 5);
    struct dw_buf s2, s5, blob;
    dw_buf_init(&s2);
    dw_buf_init(&s5);
    dw_buf_init(&blob);
    feature_sections(a2, &s2);
    feature_sections(a5, &s5);
    char err[256];
    /* one copy of each section decodes: the blob builder is right */
    blob_with_sections(&blob, 2, &s2, NULL); /* "c" then "x" */
    struct dw_agg *ok = decode_copy(&g_two, &blob, err, sizeof(err));
    if (!ok) {
        fail_msg("decode: %s", err);
    }
    assert_int_equal(ok->feats[0].n_hh, 2);
    assert_int_equal(dw_kll_count(ok->feats[1].sk), 40);
    dw_agg_free(ok);
    /* both copies: "c" twice (smaller heap first), "x" twice (two sketches) */
    dw_buf_reset(&blob);
    blob_with_sections(&blob, 4, &s2, &s5);
    assert_null(decode_copy(&g_two, &blob, err, sizeof(err)));
    assert_contains(err, "feature c");
    assert_contains(err, "twice");
    /* "x" alone, twice: the first sketch must not leak (LeakSanitizer) */
    struct dw_agg *xn = dw_agg_new(&g_num, 0);
    for (int i = 0; i < 10; i++) {
        set_num(ev, 0, (double)i);
        dw_agg_add_prediction(xn, unversioned(xn), ev);
    }
    struct dw_buf sx;
    dw_buf_init(&sx);
    feature_sections(xn, &sx);
    dw_buf_reset(&blob);
    blob_with_sections(&blob, 2, &sx, &sx);
    assert_null(decode_copy(&g_num, &blob, err, sizeof(err)));
    assert_contains(err, "feature x");
    assert_contains(err, "twice");
    dw_buf_free(&sx);
    dw_agg_free(xn);
    dw_buf_free(&s2);
    dw_buf_free(&s5);
    dw_buf_free(&blob);
    dw_agg_free(a2);
    dw_agg_free(a5);
    free(ev);
}

/* One category entry of a hand-made section (flags and counter as dw_agg.h defines them). */
struct cat_rec {
    const char *name;
    size_t len;
    uint8_t flags;
    uint64_t count, hh, hh_err;
};

/* The section of categorical feature "c": count values, `other`, the summary and entries,
 * in version 3/4 layout (with_nan: the trailing u64 nan and inf of version 4). */
static void cat_section(struct dw_buf *out, uint64_t count, uint64_t other, uint32_t bound,
                        uint32_t hh_cap, uint64_t hh_total, uint64_t hh_floor,
                        const struct cat_rec *recs, uint32_t n)
{
    dw_buf_put_str(out, "c", 1);
    dw_buf_put_u8(out, DW_FEATURE_CATEGORICAL);
    dw_buf_put_u64(out, count);
    dw_buf_put_u64(out, 0); /* missing */
    dw_buf_put_f64(out, INFINITY);
    dw_buf_put_f64(out, -INFINITY);
    dw_buf_put_f64(out, 0.0);
    dw_buf_put_f64(out, 0.0);
    dw_buf_put_u64(out, other);
    dw_buf_put_u32(out, 0); /* no sketch */
    dw_buf_put_u32(out, bound);
    dw_buf_put_u32(out, hh_cap);
    dw_buf_put_u64(out, hh_total);
    dw_buf_put_u64(out, hh_floor);
    dw_buf_put_u32(out, n);
    for (uint32_t i = 0; recs && i < n; i++) {
        dw_buf_put_str(out, recs[i].name, recs[i].len);
        dw_buf_put_u8(out, recs[i].flags);
        dw_buf_put_u64(out, recs[i].count);
        if (recs[i].flags & DW_CAT_MONITORED) {
            dw_buf_put_u64(out, recs[i].hh);
            dw_buf_put_u64(out, recs[i].hh_err);
        }
    }
    dw_buf_put_u64(out, 0); /* nan */
    dw_buf_put_u64(out, 0); /* inf */
}

/* Decodes "c" alone from a hand-made section; @returns whether it was accepted (err set). */
static int decode_cat_section(const struct dw_buf *sec, char *err, size_t err_size)
{
    struct dw_buf blob;
    dw_buf_init(&blob);
    blob_with_sections(&blob, 1, sec, NULL);
    struct dw_agg *agg = decode_copy(&g_small, &blob, err, err_size);
    dw_buf_free(&blob);
    if (agg) {
        assert_totals(&agg->feats[0]);
    }
    dw_agg_free(agg);
    return agg != NULL;
}

/*
 * Category sections whose numbers do not add up, or add up only because a sum wraps around
 * 2^64, names with a NUL byte and counts far beyond the bytes present: each is refused with a
 * message naming the feature and what is wrong, before anything is inserted or allocated.
 */
static void test_decode_hostile_categories(void **state)
{
    (void)state;
    char err[256];
    struct dw_buf sec;
    dw_buf_init(&sec);
    const uint64_t half = 1ULL << 63;
    /* a well-formed section first: a (7, exact), b (3, exact), "z" a reported counter of 2 */
    const struct cat_rec good[] = {{"a", 1, DW_CAT_EXACT, 7, 0, 0},
                                   {"b", 1, DW_CAT_EXACT, 3, 0, 0},
                                   {"z", 1, DW_CAT_MONITORED | DW_CAT_REPORTED, 2, 2, 0}};
    cat_section(&sec, 12, 0, 2, 2, 2, 0, good, 3);
    if (!decode_cat_section(&sec, err, sizeof(err))) {
        fail_msg("well-formed section refused: %s", err);
    }
    /* exact counts 2^63 + (2^63 + 10) wrap around to the count 10 */
    const struct cat_rec wrap[] = {{"a", 1, DW_CAT_EXACT, half, 0, 0},
                                   {"b", 1, DW_CAT_EXACT, half + 10, 0, 0}};
    dw_buf_reset(&sec);
    cat_section(&sec, 10, 0, 2, 2, 0, 0, wrap, 2);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "feature c: category \"b\": counts overflow");
    /* counters summing past 2^64 to within the overflow */
    const struct cat_rec hh_wrap[] = {
        {"x", 1, DW_CAT_MONITORED, 0, half, 0},
        {"y", 1, DW_CAT_MONITORED, 0, half + 1, 0},
    };
    dw_buf_reset(&sec);
    cat_section(&sec, 1, 1, 2, 2, 1, 0, hh_wrap, 2);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "feature c");
    /* a counter's entry whose count is not its reported estimate */
    const struct cat_rec stray[] = {{"x", 1, DW_CAT_MONITORED, 5, 1, 0}};
    dw_buf_reset(&sec);
    cat_section(&sec, 1, 1, 2, 2, 1, 0, stray, 1);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "category \"x\": count 5 does not match");
    /* a counter's error above the summary's error floor */
    const struct cat_rec err_floor[] = {{"x", 1, DW_CAT_MONITORED, 0, 4, 2}};
    dw_buf_reset(&sec);
    cat_section(&sec, 4, 4, 2, 1, 4, 1, err_floor, 1);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "error floor");
    /* an error floor above N_over / k */
    dw_buf_reset(&sec);
    cat_section(&sec, 4, 4, 2, 2, 4, 3, NULL, 0);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "error floor 3");
    /* a name with a NUL byte: "a\0x" would become "a" and collide with it */
    const struct cat_rec nul[] = {{"a", 1, DW_CAT_EXACT, 1, 0, 0},
                                  {"a\0x", 3, DW_CAT_EXACT, 1, 0, 0}};
    dw_buf_reset(&sec);
    cat_section(&sec, 2, 0, 2, 2, 0, 0, nul, 2);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "NUL");
    /* the same name twice */
    const struct cat_rec twice[] = {{"a", 1, DW_CAT_EXACT, 1, 0, 0},
                                    {"a", 1, DW_CAT_EXACT, 1, 0, 0}};
    dw_buf_reset(&sec);
    cat_section(&sec, 2, 0, 2, 2, 0, 0, twice, 2);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "category \"a\" appears twice");
    /* 4 Gi - 1 entries announced, none present: refused on the count, nothing allocated */
    dw_buf_reset(&sec);
    cat_section(&sec, 0, 0, 2, 2, 0, 0, NULL, 0xFFFFFFFFu);
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "4294967295 categories");
    /* more entries than the bound plus the counters allow */
    dw_buf_reset(&sec);
    cat_section(&sec, 0, 0, 1, 1, 0, 0, NULL, 3);
    static const uint8_t zeros[39] = {0}; /* the bytes of three entries, so that the count fits */
    dw_buf_put(&sec, zeros, sizeof(zeros));
    assert_false(decode_cat_section(&sec, err, sizeof(err)));
    assert_contains(err, "3 categories, more than its bound 1 plus 1 counters");
    dw_buf_free(&sec);
}

/* A version 2 section: counts and other must add up to the count without wrapping around. */
static void test_decode_v2_hostile(void **state)
{
    (void)state;
    static struct dw_model_cfg none = {.name = "none", .positive_class = "1"};
    char err[256];
    const uint64_t counts[][3] = {
        {5, 2, 3},          /* 0 + 2 + 3 = count 5: accepted */
        {5, 2, 4},          /* 6: refused */
        {5, UINT64_MAX, 6}, /* wraps around to 5: refused */
    };
    for (size_t k = 0; k < DW_ARRAY_SIZE(counts); k++) {
        struct dw_agg *empty = dw_agg_new(&none, 0);
        struct dw_buf blob;
        dw_buf_init(&blob);
        encode_v4(empty, &blob);
        dw_agg_free(empty);
        blob.data[0] = 2;
        blob.len -= 2;
        dw_buf_put_u16(&blob, 1);
        dw_buf_put_str(&blob, "c", 1);
        dw_buf_put_u8(&blob, DW_FEATURE_CATEGORICAL);
        dw_buf_put_u64(&blob, counts[k][0]);
        dw_buf_put_u64(&blob, 0);
        dw_buf_put_f64(&blob, INFINITY);
        dw_buf_put_f64(&blob, -INFINITY);
        dw_buf_put_f64(&blob, 0.0);
        dw_buf_put_f64(&blob, 0.0);
        dw_buf_put_u64(&blob, 0); /* other */
        dw_buf_put_u32(&blob, 0); /* no sketch */
        dw_buf_put_u32(&blob, 2);
        dw_buf_put_str(&blob, "a", 1);
        dw_buf_put_u64(&blob, counts[k][1]);
        dw_buf_put_str(&blob, "b", 1);
        dw_buf_put_u64(&blob, counts[k][2]);
        struct dw_agg *back = decode_copy(&g_small, &blob, err, sizeof(err));
        if (k == 0) {
            if (!back) {
                fail_msg("version 2 refused: %s", err);
            }
            assert_totals(&back->feats[0]);
        } else {
            assert_null(back);
            assert_contains(err, "feature c: categories");
        }
        dw_agg_free(back);
        dw_buf_free(&blob);
    }
}

/* A numeric feature's count, min and max must be its sketch's; its type byte must be known. */
static void test_decode_numeric_against_sketch(void **state)
{
    (void)state;
    char err[256];
    struct dw_agg *agg = dw_agg_new(&g_num, 0);
    struct dw_prediction *ev = pred_new(1);
    for (int i = 0; i < 10; i++) {
        set_num(ev, 0, (double)i);
        dw_agg_add_prediction(agg, unversioned(agg), ev);
    }
    struct dw_buf sec, blob;
    dw_buf_init(&sec);
    dw_buf_init(&blob);
    feature_sections(agg, &sec);
    /* section: u32 1, "x", u8 type, u64 count at offset 6, u64 missing, f64 min at 22, max 30 */
    const size_t type_at = 5, count_at = 6, min_at = 22;
    blob_with_sections(&blob, 1, &sec, NULL);
    struct dw_agg *back = decode_copy(&g_num, &blob, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    dw_agg_free(back);
    sec.data[count_at] = 11;
    dw_buf_reset(&blob);
    blob_with_sections(&blob, 1, &sec, NULL);
    assert_null(decode_copy(&g_num, &blob, err, sizeof(err)));
    assert_contains(err, "feature x: its sketch holds 10 values, its count is 11");
    sec.data[count_at] = 10;
    double bad_min = -1.0;
    memcpy(sec.data + min_at, &bad_min, sizeof(bad_min)); /* little-endian hosts */
    dw_buf_reset(&blob);
    blob_with_sections(&blob, 1, &sec, NULL);
    assert_null(decode_copy(&g_num, &blob, err, sizeof(err)));
    assert_contains(err, "feature x: min -1");
    sec.data[type_at] = 7;
    dw_buf_reset(&blob);
    blob_with_sections(&blob, 1, &sec, NULL);
    assert_null(decode_copy(&g_num, &blob, err, sizeof(err)));
    assert_contains(err, "feature x: unknown type 7");
    dw_buf_free(&sec);
    dw_buf_free(&blob);
    dw_agg_free(agg);
    free(ev);
}

/* ------------------------------------------------------------------ outputs */

static struct dw_model_cfg g_reg = {.name = "price",
                                    .task = DW_TASK_REGRESSION,
                                    .positive_class = "1",
                                    .features = g_feats,
                                    .n_features = 1};

/* A prediction of class cls (its number num) with a score when score is finite. */
static void add_output(struct dw_agg *agg, struct dw_prediction *ev, const char *cls, double num,
                       double score)
{
    snprintf(ev->pred.text, sizeof(ev->pred.text), "%s", cls);
    ev->pred.len = strlen(cls);
    ev->pred.num = num;
    ev->has_score = isfinite(score);
    ev->score = score;
    set_num(ev, 0, 1.0);
    for (size_t i = 1; i < agg->model->n_features; i++) {
        set_missing(ev, i);
    }
    dw_agg_add_prediction(agg, unversioned(agg), ev);
}

/* 12 predictions of g_model: classes 1, 0, 2 in turn, scores i / 12 on all but every fourth;
 * labels "1" for even i on the first 10. */
static struct dw_agg *outputs_window(void)
{
    static const char *const cls[] = {"1", "0", "2"};
    struct dw_agg *agg = dw_agg_new(&g_model, 0);
    struct dw_prediction *ev = pred_new(3);
    for (int i = 0; i < 12; i++) {
        add_output(agg, ev, cls[i % 3], 0.0, i % 4 == 3 ? NAN : (double)i / 12.0);
    }
    for (int i = 0; i < 10; i++) {
        struct dw_outcome o = {.pred = cls[i % 3], .label = i % 2 ? "0" : "1"};
        dw_agg_add_outcome(agg, unversioned(agg), &o);
    }
    free(ev);
    return agg;
}

/* Scores by predicted class, predicted classes and labels are counted like features. */
static void test_outputs_counted(void **state)
{
    (void)state;
    struct dw_agg *agg = outputs_window();
    const struct dw_feat_stats *pos = &agg->out[DW_AGG_OUT_SCORE_POS];
    const struct dw_feat_stats *neg = &agg->out[DW_AGG_OUT_SCORE_NEG];
    /* class "1" at i = 0, 3, 6, 9; scored unless i % 4 == 3: 0, 6, 9 -> 0, 0.5, 0.75 */
    assert_int_equal(pos->type, DW_FEATURE_NUMERIC);
    assert_int_equal(pos->count, 3);
    assert_double_exact(pos->min, 0.0);
    assert_double_exact(pos->max, 0.75);
    assert_near(pos->mean, 1.25 / 3.0, 1e-15);
    /* the other 9 scored predictions of 12 minus 3 unscored (3, 7, 11), minus class "1"'s 3 */
    assert_int_equal(neg->count, 6);
    assert_int_equal(dw_kll_count(neg->sk), 6);
    struct dw_feat_stats scores;
    dw_agg_scores(agg, &scores);
    assert_int_equal(scores.count, 9);
    assert_int_equal(dw_kll_count(scores.sk), 9);
    assert_double_exact(scores.max, 10.0 / 12.0);
    dw_feat_stats_free(&scores);
    const struct dw_feat_stats *pred = &agg->out[DW_AGG_OUT_PRED];
    assert_int_equal(pred->type, DW_FEATURE_CATEGORICAL);
    assert_int_equal(pred->count, 12);
    assert_int_equal(cat_count(pred, "1"), 4);
    assert_int_equal(cat_count(pred, "2"), 4);
    const struct dw_feat_stats *label = &agg->out[DW_AGG_OUT_LABEL];
    assert_int_equal(label->count, 10);
    assert_int_equal(cat_count(label, "1"), 5);
    assert_int_equal(cat_count(label, "0"), 5);
    dw_agg_free(agg);

    /* Regression: the predicted value and the label are numeric. */
    struct dw_agg *reg = dw_agg_new(&g_reg, 0);
    struct dw_prediction *ev = pred_new(1);
    add_output(reg, ev, "2.5", 2.5, NAN);
    add_output(reg, ev, "-1", -1.0, NAN);
    struct dw_outcome o = {.pred_is_num = 1, .label_is_num = 1, .pred_num = 2.5, .label_num = 4};
    dw_agg_add_outcome(reg, unversioned(reg), &o);
    assert_int_equal(reg->out[DW_AGG_OUT_PRED].type, DW_FEATURE_NUMERIC);
    assert_int_equal(reg->out[DW_AGG_OUT_PRED].count, 2);
    assert_double_exact(reg->out[DW_AGG_OUT_PRED].min, -1.0);
    assert_int_equal(reg->out[DW_AGG_OUT_SCORE_POS].count + reg->out[DW_AGG_OUT_SCORE_NEG].count,
                     0);
    assert_int_equal(reg->out[DW_AGG_OUT_LABEL].count, 1);
    assert_double_exact(reg->out[DW_AGG_OUT_LABEL].max, 4.0);
    free(ev);
    dw_agg_free(reg);
}

/* Dropping sketches keeps the label's (it changes until the label horizon), through the
 * encoding and a merge with an aggregate that kept everything. */
static void test_outputs_label_survives_drop(void **state)
{
    (void)state;
    struct dw_agg *agg = outputs_window();
    dw_agg_drop_sketches(agg);
    assert_null(agg->out[DW_AGG_OUT_SCORE_POS].sk);
    assert_null(agg->out[DW_AGG_OUT_PRED].cats);
    assert_int_equal(agg->out[DW_AGG_OUT_PRED].count, 12);
    assert_int_equal(cat_count(&agg->out[DW_AGG_OUT_LABEL], "1"), 5);
    /* labels keep arriving after the drop */
    struct dw_outcome o = {.pred = "0", .label = "2"};
    dw_agg_add_outcome(agg, unversioned(agg), &o);
    struct dw_buf b, again;
    dw_buf_init(&b);
    dw_buf_init(&again);
    dw_agg_encode(agg, &b);
    char err[256] = "";
    struct dw_agg *back = decode_copy(&g_model, &b, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    assert_int_equal(cat_count(&back->out[DW_AGG_OUT_LABEL], "2"), 1);
    assert_int_equal(back->out[DW_AGG_OUT_SCORE_NEG].count, 6);
    assert_null(back->out[DW_AGG_OUT_SCORE_NEG].sk);
    dw_agg_encode(back, &again);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    /* full + dropped: dropped, the labels of both sides with their table */
    struct dw_agg *sum = outputs_window();
    dw_agg_merge(sum, back);
    assert_true(sum->sketches_dropped);
    assert_int_equal(sum->out[DW_AGG_OUT_LABEL].count, 21);
    assert_int_equal(cat_count(&sum->out[DW_AGG_OUT_LABEL], "1"), 10);
    assert_int_equal(sum->out[DW_AGG_OUT_PRED].count, 24);
    assert_null(sum->out[DW_AGG_OUT_PRED].cats);
    dw_agg_free(sum);
    dw_agg_free(back);
    dw_agg_free(agg);
    dw_buf_free(&b);
    dw_buf_free(&again);
}

/* A version 5 record (no outputs) still decodes: same counts and features, empty outputs. */
static void test_decode_v5(void **state)
{
    (void)state;
    struct dw_agg *agg = outputs_window();
    struct dw_buf b;
    dw_buf_init(&b);
    encode_v5(agg, &b);
    char err[256] = "";
    struct dw_agg *back = decode_copy(&g_model, &b, err, sizeof(err));
    if (!back) {
        fail_msg("decode v5: %s", err);
    }
    assert_counts_equal(&back->all, &agg->all);
    assert_int_equal(back->feats[0].count, 12);
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        assert_int_equal(back->out[k].count, 0);
        assert_int_equal(back->out[k].type, agg->out[k].type);
    }
    /* a section whose length does not match its contents is corrupt */
    struct dw_buf v6;
    dw_buf_init(&v6);
    dw_agg_encode(agg, &v6);
    v6.data[10]++;
    assert_null(decode_copy(&g_model, &v6, err, sizeof(err)));
    assert_contains(err, "bytes where the section says");
    dw_buf_free(&v6);
    dw_agg_free(back);
    dw_agg_free(agg);
    dw_buf_free(&b);
}

/* ------------------------------------------------------------------ serving evidence */

/* g_model's window of two versions: n predictions of "a" (every 10th status an error, latency
 * i % 20 ms), n / 2 of "b" (every 4th an error, latency 40 + i % 20 ms) and n / 4 of "a"
 * without status or latency. */
static struct dw_agg *serving_window(int64_t start, int n)
{
    struct dw_agg *agg = dw_agg_new(&g_model, start);
    size_t a = dw_agg_version_slot(agg, "a", 1), b = dw_agg_version_slot(agg, "b", 1);
    struct dw_prediction *ev = pred_new(3);
    set_num(ev, 0, 1.0);
    set_missing(ev, 1);
    set_num(ev, 2, 2.0);
    for (int i = 0; i < n + n / 2 + n / 4; i++) {
        int in_b = i >= n && i < n + n / 2;
        int bare = i >= n + n / 2;
        int k = in_b ? i - n : i;
        ev->has_status = !bare;
        ev->status_error = !bare && (in_b ? k % 4 == 0 : k % 10 == 0);
        ev->has_latency = !bare;
        ev->latency_ms = (in_b ? 40.0 : 0.0) + (double)(k % 20);
        dw_agg_add_prediction(agg, in_b ? b : a, ev);
    }
    free(ev);
    return agg;
}

static double version_p50(struct dw_agg *agg, size_t slot)
{
    return dw_perf_sketch_quantile(agg->versions[slot].latency, 0.5);
}

/*
 * Served and errors count the predictions with a status, per version and for the model; each
 * version's latency sketch holds its own predictions' latencies. All of it adds in a merge,
 * survives the version 7 encoding, reads as unknown (0, no sketch) from version 6, and the
 * sketches go with the others' when they are dropped, the counts stay.
 */
static void test_serving_evidence(void **state)
{
    (void)state;
    struct dw_agg *agg = serving_window(60000, 200);
    const struct dw_version_stats *a = &agg->versions[0], *b = &agg->versions[1];
    assert_int_equal(agg->n_versions, 2);
    assert_int_equal(a->c.predictions, 250);
    assert_int_equal(a->served, 200);
    assert_int_equal(a->errors, 20);
    assert_int_equal(b->served, 100);
    assert_int_equal(b->errors, 25);
    assert_int_equal(agg->served, 300);
    assert_int_equal(agg->errors, 45);
    assert_int_equal(dw_kll_count(a->latency), 200);
    assert_int_equal(dw_kll_count(b->latency), 100);
    assert_int_equal(dw_kll_count(agg->perf.latency), 300);
    /* numpy.percentile(np.arange(200) % 20, 50) = 9.5; the same + 40 for b */
    assert_double_exact(version_p50(agg, 0), 9.5);
    assert_double_exact(version_p50(agg, 1), 49.5);
    json_t *js = dw_agg_to_json(agg);
    assert_int_equal(json_integer_value(json_object_get(js, "served")), 300);
    assert_int_equal(json_integer_value(json_object_get(js, "errors")), 45);
    json_t *jb = json_object_get(json_object_get(js, "versions"), "b");
    assert_int_equal(json_integer_value(json_object_get(jb, "served")), 100);
    assert_int_equal(json_integer_value(json_object_get(jb, "errors")), 25);
    json_decref(js);

    /* merge: counts add, sketches merge (b first here: slots are matched by name) */
    struct dw_agg *sum = dw_agg_new_exact(&g_model, 60000, DW_AGG_MERGE_EXACT);
    dw_agg_version_slot(sum, "b", 1);
    dw_agg_merge(sum, agg);
    dw_agg_merge(sum, agg);
    assert_string_equal(sum->versions[0].name, "b");
    assert_int_equal(sum->versions[0].served, 200);
    assert_int_equal(sum->versions[0].errors, 50);
    assert_int_equal(sum->versions[1].served, 400);
    assert_int_equal(sum->served, 600);
    assert_int_equal(sum->errors, 90);
    assert_int_equal(dw_kll_count(sum->versions[1].latency), 400);
    assert_double_exact(version_p50(sum, 0), 49.5);
    assert_double_exact(version_p50(sum, 1), 9.5);

    /* version 7 round trip */
    struct dw_buf buf;
    dw_buf_init(&buf);
    dw_agg_encode(agg, &buf);
    assert_int_equal(buf.data[0], 7);
    char err[256] = "";
    struct dw_agg *back = decode_copy(&g_model, &buf, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    assert_int_equal(back->served, 300);
    assert_int_equal(back->errors, 45);
    assert_int_equal(back->versions[1].served, 100);
    assert_int_equal(back->versions[1].errors, 25);
    assert_int_equal(dw_kll_count(back->versions[0].latency), 200);
    assert_double_exact(version_p50(back, 0), 9.5);
    assert_double_exact(version_p50(back, 1), 49.5);
    dw_agg_free(back);

    /* version 6: no serving evidence (unknown, not zero errors of zero) */
    dw_buf_reset(&buf);
    encode_v6(agg, &buf);
    back = decode_copy(&g_model, &buf, err, sizeof(err));
    if (!back) {
        fail_msg("decode v6: %s", err);
    }
    assert_int_equal(back->n_versions, 2);
    assert_counts_equal(&back->versions[1].c, &agg->versions[1].c);
    assert_int_equal(back->served, 0);
    assert_int_equal(back->errors, 0);
    for (size_t i = 0; i < back->n_versions; i++) {
        assert_int_equal(back->versions[i].served, 0);
        assert_int_equal(back->versions[i].errors, 0);
        assert_null(back->versions[i].latency);
    }
    assert_int_equal(dw_kll_count(back->perf.latency), 300); /* the model's is in v6 */
    dw_agg_free(back);

    /* dropped: the version sketches go, the counts stay, through the encoding too */
    dw_agg_drop_sketches(agg);
    assert_null(agg->versions[0].latency);
    assert_null(agg->versions[1].latency);
    assert_int_equal(agg->versions[1].errors, 25);
    assert_int_equal(agg->served, 300);
    dw_buf_reset(&buf);
    dw_agg_encode(agg, &buf);
    back = decode_copy(&g_model, &buf, err, sizeof(err));
    if (!back) {
        fail_msg("decode dropped: %s", err);
    }
    assert_int_equal(back->versions[1].served, 100);
    assert_int_equal(back->errors, 45);
    assert_null(back->versions[0].latency);
    /* a dropped destination takes counts, never a sketch */
    struct dw_agg *fresh = serving_window(60000, 40);
    dw_agg_merge(back, fresh);
    assert_int_equal(back->versions[0].served, 240);
    assert_null(back->versions[0].latency);
    assert_null(back->versions[1].latency);
    /* and a dropped source drops the destination's */
    dw_agg_merge(fresh, agg);
    assert_true(fresh->sketches_dropped);
    assert_null(fresh->versions[0].latency);
    assert_int_equal(fresh->versions[1].errors, 5 + 25);
    dw_agg_free(fresh);
    dw_agg_free(back);

    dw_buf_free(&buf);
    dw_agg_free(sum);
    dw_agg_free(agg);
}

/* More errors than served, or more served than predictions, is a corrupt record: refused with
 * the numbers, never passed on (the canary asserts errors <= served). */
static void test_decode_serving_that_does_not_add_up(void **state)
{
    (void)state;
    struct dw_buf buf;
    dw_buf_init(&buf);
    char err[256];

    struct dw_agg *agg = serving_window(0, 40);
    agg->errors = agg->served + 1;
    dw_agg_encode(agg, &buf);
    assert_null(decode_copy(&g_model, &buf, err, sizeof(err)));
    assert_contains(err, "counts: 61 errors of 60 served of 70 predictions");
    dw_agg_free(agg);

    agg = serving_window(0, 40);
    agg->versions[1].served = agg->versions[1].c.predictions + 1;
    dw_buf_reset(&buf);
    dw_agg_encode(agg, &buf);
    assert_null(decode_copy(&g_model, &buf, err, sizeof(err)));
    assert_contains(err, "model version b: 5 errors of 21 served of 20 predictions");
    dw_agg_free(agg);
    dw_buf_free(&buf);
}

/* ------------------------------------------------------------------ version features */

/* A window of a model with version_features: versions a (x = i, c "u"/"v") and b (x = 1000 + i,
 * c "w"), n predictions each. */
static struct dw_agg *version_feature_window(const struct dw_model_cfg *m, int64_t start, int n)
{
    struct dw_agg *agg = dw_agg_new(m, start);
    size_t a = dw_agg_version_slot(agg, "a", 1), b = dw_agg_version_slot(agg, "b", 1);
    struct dw_prediction *ev = pred_new(3);
    for (int i = 0; i < 2 * n; i++) {
        int in_b = i >= n;
        int k = in_b ? i - n : i;
        set_num(ev, 0, (in_b ? 1000.0 : 0.0) + (double)k);
        set_str(ev, 1, in_b ? "w" : (k % 2 ? "u" : "v"));
        if (k % 5 == 0) {
            set_missing(ev, 2);
        } else {
            set_num(ev, 2, (double)k / 2.0);
        }
        dw_agg_add_prediction(agg, in_b ? b : a, ev);
    }
    free(ev);
    return agg;
}

/* Each version's features are counted apart when the model asks for it (the model's stay the
 * union), merge by version name, survive the encoding and the dropped sketches; a model that
 * does not ask keeps none (and its encoding does not change). */
static void test_version_features(void **state)
{
    (void)state;
    struct dw_model_cfg m = g_model;
    m.version_features = 1;
    struct dw_agg *agg = version_feature_window(&m, 60000, 2000);
    const struct dw_version_stats *a = &agg->versions[0], *b = &agg->versions[1];
    assert_non_null(a->feats);
    assert_non_null(b->feats);
    assert_int_equal(a->feats[0].count, 2000);
    assert_int_equal(b->feats[0].count, 2000);
    assert_int_equal(agg->feats[0].count, 4000);
    assert_double_exact(a->feats[0].mean, 999.5);
    assert_double_exact(b->feats[0].mean, 1999.5);
    /* 2000 values: past the exact ones, within the sketch's rank error (about 1 %) */
    assert_true(fabs(dw_kll_quantile(a->feats[0].sk, 0.5) - 999.5) < 40);
    assert_int_equal(cat_count(&a->feats[1], "u"), 1000);
    assert_int_equal(cat_count(&a->feats[1], "w"), 0);
    assert_int_equal(cat_count(&b->feats[1], "w"), 2000);
    assert_int_equal(cat_count(&agg->feats[1], "w"), 2000);
    assert_int_equal(a->feats[2].missing, 400);
    assert_int_equal(a->feats[2].count, 1600);

    /* merged by name, whatever the slots' order */
    struct dw_agg *sum = dw_agg_new_exact(&m, 60000, DW_AGG_MERGE_EXACT);
    dw_agg_version_slot(sum, "b", 1);
    dw_agg_merge(sum, agg);
    dw_agg_merge(sum, agg);
    assert_string_equal(sum->versions[0].name, "b");
    assert_int_equal(sum->versions[0].feats[0].count, 4000);
    assert_double_exact(sum->versions[0].feats[0].mean, 1999.5);
    assert_int_equal(cat_count(&sum->versions[1].feats[1], "v"), 2000);
    dw_agg_free(sum);

    /* the encoding keeps them (version 8), byte for byte through a decode */
    struct dw_buf buf, again;
    dw_buf_init(&buf);
    dw_buf_init(&again);
    dw_agg_encode(agg, &buf);
    assert_int_equal(buf.data[0], 8);
    char err[256];
    struct dw_agg *back = decode_copy(&m, &buf, err, sizeof(err));
    if (!back) {
        fail_msg("decode: %s", err);
    }
    assert_int_equal(back->versions[1].feats[0].count, 2000);
    dw_agg_encode(back, &again);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    dw_agg_free(back);
    /* truncated anywhere: refused, never half read */
    for (size_t len = 1; len < buf.len; len += 97) {
        struct dw_buf cut = {.data = buf.data, .len = len};
        assert_null(decode_copy(&m, &cut, err, sizeof(err)));
    }

    /* dropped: counts and moments stay, sketches and tables go, and that round-trips too */
    dw_agg_drop_sketches(agg);
    assert_null(agg->versions[0].feats[0].sk);
    assert_null(agg->versions[0].feats[1].cats);
    assert_int_equal(agg->versions[1].feats[0].count, 2000);
    dw_buf_reset(&buf);
    dw_agg_encode(agg, &buf);
    back = decode_copy(&m, &buf, err, sizeof(err));
    if (!back) {
        fail_msg("decode dropped: %s", err);
    }
    assert_double_exact(back->versions[1].feats[0].mean, 1999.5);
    dw_agg_free(back);
    dw_agg_free(agg);

    /* a model that does not ask: no version features, the version 7 encoding as before */
    agg = version_feature_window(&g_model, 60000, 10);
    assert_null(agg->versions[0].feats);
    dw_buf_reset(&buf);
    dw_agg_encode(agg, &buf);
    assert_int_equal(buf.data[0], 7);
    dw_agg_free(agg);
    dw_buf_free(&buf);
    dw_buf_free(&again);
}

/* A window of model m with everything a seal moves: two versions with their own features and
 * latencies, scores and predicted classes, then labels for the first `labels` predictions. */
static struct dw_agg *sealable_window(const struct dw_model_cfg *m, int n, int labels)
{
    struct dw_agg *agg = version_feature_window(m, 60000, n);
    struct dw_prediction *ev = pred_new(3);
    for (int i = 0; i < n; i++) {
        ev->has_latency = 1;
        ev->latency_ms = (double)(i % 37);
        ev->has_status = 1;
        ev->status_error = i % 9 == 0;
        add_output(agg, ev, i % 2 ? "1" : "0", 0.0, (double)(i % 100) / 100.0);
    }
    free(ev);
    for (int i = 0; i < labels; i++) {
        struct dw_outcome o = {.pred = i % 2 ? "1" : "0",
                               .label = i % 3 ? "1" : "0",
                               .has_score = 1,
                               .score = (double)(i % 100) / 100.0};
        dw_agg_add_outcome(agg, (size_t)(i % 2), &o);
    }
    return agg;
}

/* What labels and late predictions bring after the seal (the same to both windows). */
static void after_seal(struct dw_agg *agg, int from, int to)
{
    for (int i = from; i < to; i++) {
        struct dw_outcome o = {.pred = "1",
                               .label = i % 4 ? "0" : "1",
                               .has_score = 1,
                               .score = (double)i / (double)to};
        dw_agg_add_outcome(agg, (size_t)(i % 2), &o);
    }
    agg->late_predictions += 3;
    agg->duplicate_labels += 2;
}

/* A sealed window keeps only what labels change; its record and its sealed copy, decoded and
 * unsealed, are byte for byte the window that was never sealed. */
static void test_seal_and_unseal(void **state)
{
    (void)state;
    struct dw_model_cfg m = g_model;
    m.version_features = 1;
    struct dw_agg *sealed = sealable_window(&m, 600, 300);
    struct dw_agg *whole = sealable_window(&m, 600, 300);
    dw_agg_seal(sealed);
    assert_true(sealed->sealed);
    assert_true(sealed->sketches_dropped);
    assert_true(sealed->seal_blob.len > 0);
    assert_null(sealed->feats[0].sk);
    assert_null(sealed->perf.latency);
    after_seal(sealed, 300, 500);
    after_seal(whole, 300, 500);

    struct dw_buf rec, want, got;
    dw_buf_init(&rec);
    dw_buf_init(&want);
    dw_buf_init(&got);
    dw_agg_encode(sealed, &rec);
    char err[256] = "";
    struct dw_agg *r = dw_agg_decode(&m, rec.data, rec.len, err, sizeof(err));
    assert_non_null(r);
    assert_true(r->sealed);
    struct dw_agg *copy =
        dw_agg_decode(&m, sealed->seal_blob.data, sealed->seal_blob.len, err, sizeof(err));
    assert_non_null(copy);
    assert_int_equal(dw_agg_unseal(r, copy, err, sizeof(err)), 0);
    assert_false(r->sealed);
    dw_agg_encode(r, &got);
    dw_agg_encode(whole, &want);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);

    /* a copy that is not the window's as sealed is refused */
    struct dw_agg *r2 = dw_agg_decode(&m, rec.data, rec.len, err, sizeof(err));
    struct dw_agg *other = sealable_window(&m, 601, 0);
    assert_int_equal(dw_agg_unseal(r2, other, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "counts other"));
    assert_int_equal(dw_agg_unseal(whole, other, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not sealed"));

    /* merged by the close: the copy goes, once */
    assert_int_equal(dw_agg_merged(sealed), 1);
    assert_false(sealed->sealed);
    assert_true(sealed->seal_gone);
    assert_int_equal(sealed->seal_blob.len, 0);
    assert_int_equal(dw_agg_merged(sealed), 0);

    /* a record flagged sealed but holding sketches is corrupt */
    dw_buf_reset(&got);
    dw_agg_encode(whole, &got);
    got.data[9] |= 0x2;
    assert_null(dw_agg_decode(&m, got.data, got.len, err, sizeof(err)));
    assert_non_null(strstr(err, "sealed with its sketches"));

    dw_agg_free(other);
    dw_agg_free(r2);
    dw_agg_free(copy);
    dw_agg_free(r);
    dw_agg_free(whole);
    dw_agg_free(sealed);
    dw_buf_free(&rec);
    dw_buf_free(&want);
    dw_buf_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_numeric_moments),
        cmocka_unit_test(test_categories),
        cmocka_unit_test(test_outcomes_classification),
        cmocka_unit_test(test_outcomes_regression),
        cmocka_unit_test(test_merge_halves),
        cmocka_unit_test(test_merge_feature_by_feature),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_drop_sketches),
        cmocka_unit_test(test_decode_changed_model),
        cmocka_unit_test(test_decode_counts_that_do_not_add_up),
        cmocka_unit_test(test_decode_corrupt),
        cmocka_unit_test(test_encode_canonical_categories),
        cmocka_unit_test(test_bound_from_model),
        cmocka_unit_test(test_heavy_hitters_skewed),
        cmocka_unit_test(test_heavy_hitters_merge),
        cmocka_unit_test(test_heavy_hitters_encode),
        cmocka_unit_test(test_decode_v2),
        cmocka_unit_test(test_non_finite_values),
        cmocka_unit_test(test_decode_v3),
        cmocka_unit_test(test_decode_feature_twice),
        cmocka_unit_test(test_decode_hostile_categories),
        cmocka_unit_test(test_decode_v2_hostile),
        cmocka_unit_test(test_decode_numeric_against_sketch),
        cmocka_unit_test(test_outputs_counted),
        cmocka_unit_test(test_outputs_label_survives_drop),
        cmocka_unit_test(test_decode_v5),
        cmocka_unit_test(test_serving_evidence),
        cmocka_unit_test(test_version_features),
        cmocka_unit_test(test_decode_serving_that_does_not_add_up),
        cmocka_unit_test(test_seal_and_unseal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
