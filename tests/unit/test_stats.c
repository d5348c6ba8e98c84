/*
 * test_stats.c - dw_stats against scipy 1.10 (fixtures made by
 * tests/fixtures/make_stats_fixtures.py, read from the repo root) and against hand values.
 *
 * Tolerances: 1e-10 relative for special functions, 1e-9 relative for tests and distances;
 * probabilities below 1e-300 compare absolutely (1e-300 floor), and values that are exactly
 * 0 in both tools (distances of identical inputs) need an absolute 1e-15.
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

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_stats.h"

#include "dw_test.h"
#include "dw_test_fixture.h"

#define REL_SPECIAL 1e-10
#define REL_STATS 1e-9
#define ABS_PROB 1e-300
#define ABS_ZERO 1e-15

/* ------------------------------------------------------------------ special functions */

static void test_chi2_sf_fixture(void **state)
{
    json_t *doc = load_fixture("stats_special.json");
    const json_t *rows = json_object_get(doc, "chi2_sf");
    size_t i;
    const json_t *row;
    assert_true(json_array_size(rows) > 400);
    int tiny = 0;
    json_array_foreach(rows, i, row)
    {
        double dof = json_number_value(json_array_get(row, 0));
        double x = json_number_value(json_array_get(row, 1));
        double want = json_number_value(json_array_get(row, 2));
        char what[96];
        snprintf(what, sizeof(what), "chi2.sf(%g, %g)", x, dof);
        assert_close_what(what, dw_stats_chi2_sf(x, dof), want, REL_SPECIAL, ABS_PROB);
        tiny += want > 0 && want < 1e-250;
    }
    assert_true(tiny >= 3); /* the fixture does reach the 1e-300 range */
    json_decref(doc);
}

/* Each row [x, f(x)] of table `name` of stats_special.json (more than min_rows of them) against
 * fn(x), to REL_SPECIAL relative or abs absolute. */
static void check_table(const char *name, double (*fn)(double), size_t min_rows, double abs)
{
    json_t *doc = load_fixture("stats_special.json");
    const json_t *rows = json_object_get(doc, name);
    size_t i;
    const json_t *row;
    assert_true(json_array_size(rows) > min_rows);
    json_array_foreach(rows, i, row)
    {
        double x = json_number_value(json_array_get(row, 0));
        double want = json_number_value(json_array_get(row, 1));
        char what[64];
        snprintf(what, sizeof(what), "%s(%.17g)", name, x);
        assert_close_what(what, fn(x), want, REL_SPECIAL, abs);
    }
    json_decref(doc);
}

static void test_kstwobign_fixture(void **state)
{
    check_table("kstwobign_sf", dw_stats_kolmogorov_sf, 40, ABS_PROB);
}

static void test_kstwo_fixture(void **state)
{
    json_t *doc = load_fixture("stats_special.json");
    const json_t *rows = json_object_get(doc, "kstwo_sf");
    size_t i;
    const json_t *row;
    assert_true(json_array_size(rows) > 300);
    json_array_foreach(rows, i, row)
    {
        uint64_t n = (uint64_t)json_number_value(json_array_get(row, 0));
        double d = json_number_value(json_array_get(row, 1));
        double want = json_number_value(json_array_get(row, 2));
        char what[96];
        snprintf(what, sizeof(what), "kstwo.sf(%.17g, %llu)", d, (unsigned long long)n);
        assert_close_what(what, dw_stats_kstwo_sf(d, n), want, REL_SPECIAL, ABS_PROB);
    }
    json_decref(doc);
}

static void test_smirnov_fixture(void **state)
{
    json_t *doc = load_fixture("stats_special.json");
    const json_t *rows = json_object_get(doc, "smirnov");
    size_t i;
    const json_t *row;
    assert_true(json_array_size(rows) > 60);
    json_array_foreach(rows, i, row)
    {
        uint64_t n = (uint64_t)json_number_value(json_array_get(row, 0));
        double d = json_number_value(json_array_get(row, 1));
        double want = json_number_value(json_array_get(row, 2));
        char what[96];
        snprintf(what, sizeof(what), "smirnov(%llu, %.17g)", (unsigned long long)n, d);
        assert_close_what(what, dw_stats_smirnov_sf(n, d), want, REL_SPECIAL, ABS_PROB);
    }
    json_decref(doc);
}

static void test_norm_fixture(void **state)
{
    check_table("norm_sf", dw_stats_norm_sf, 60, ABS_PROB);
    check_table("norm_ppf", dw_stats_norm_ppf, 40, 0);
}

static void test_norm_hand_values(void **state)
{
    assert_double_exact(dw_stats_norm_sf(0.0), 0.5);
    assert_close(dw_stats_norm_ppf(0.975), 1.959963984540054, 1e-15, 0);
    assert_close(dw_stats_norm_ppf(0.8), 0.8416212335729143, 1e-15, 0);
    assert_double_exact(dw_stats_norm_ppf(0.5), 0.0);
    /* the quantile inverts the survival function: sf(-ppf(p)) = p */
    for (double p = 1e-12; p < 1.0; p *= 7.0) {
        assert_close(dw_stats_norm_sf(-dw_stats_norm_ppf(p)), p, 1e-13, 0);
    }
    assert_true(isinf(dw_stats_norm_ppf(0.0)) && dw_stats_norm_ppf(0.0) < 0);
    assert_true(isinf(dw_stats_norm_ppf(1.0)) && dw_stats_norm_ppf(1.0) > 0);
    assert_nan(dw_stats_norm_ppf(-0.1));
    assert_nan(dw_stats_norm_ppf(1.5));
    assert_nan(dw_stats_norm_ppf(NAN));
    assert_nan(dw_stats_norm_sf(NAN));
}

static void test_special_hand_values(void **state)
{
    /* chi2 with 2 dof is exp(-x/2); with 1 dof it is erfc(sqrt(x/2)). */
    assert_close(dw_stats_chi2_sf(3.0, 2.0), exp(-1.5), 1e-14, 0);
    assert_close(dw_stats_chi2_sf(3.84, 1.0), erfc(sqrt(1.92)), 1e-13, 0);
    assert_close(dw_stats_gamma_q(1.0, 700.0), exp(-700.0), 1e-13, 0);
    assert_double_exact(dw_stats_chi2_sf(0.0, 3.0), 1.0);
    assert_double_exact(dw_stats_chi2_sf(-1.0, 3.0), 1.0);
    assert_nan(dw_stats_chi2_sf(1.0, 0.0));
    assert_nan(dw_stats_gamma_q(-1.0, 1.0));
    /* K(x) ~ 2 exp(-2x²) for large x; K(0) = 1 */
    assert_close(dw_stats_kolmogorov_sf(5.0), 2.0 * exp(-50.0), 1e-13, 0);
    assert_double_exact(dw_stats_kolmogorov_sf(0.0), 1.0);
    /* kstwo: P(D_n >= d) for d >= 1 is 0; n = 1: D_1 >= d has probability 2(1-d) (d>=1/2) */
    assert_double_exact(dw_stats_kstwo_sf(1.0, 10), 0.0);
    assert_close(dw_stats_kstwo_sf(0.75, 1), 0.5, 1e-15, 0);
    /* Smirnov n = 1: P(D+ >= d) = 1 - d */
    assert_close(dw_stats_smirnov_sf(1, 0.3), 0.7, 1e-15, 0);
    assert_nan(dw_stats_smirnov_sf(0, 0.3));
}

/* ------------------------------------------------------------------ numeric samples */

static void test_numeric_fixture(void **state)
{
    json_t *doc = load_fixture("stats_numeric.json");
    const json_t *cases = json_object_get(doc, "cases");
    size_t i;
    const json_t *c;
    char err[128];
    assert_true(json_array_size(cases) >= 30);
    size_t n_exact = 0;
    size_t n_asymp = 0;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        struct sample x;
        struct sample y;
        struct dw_stats_ks ks;
        double wd;
        char what[128];
        sample_load(json_object_get(c, "x"), &x);
        sample_load(json_object_get(c, "y"), &y);
        assert_int_equal(dw_stats_ks_2samp(x.v, x.w, x.len, y.v, y.w, y.len, &ks, err, sizeof(err)),
                         0);
        snprintf(what, sizeof(what), "%s ks statistic", name);
        assert_close_what(what, ks.statistic, jnum(c, "ks_statistic"), REL_STATS, ABS_ZERO);
        snprintf(what, sizeof(what), "%s ks p-value", name);
        assert_close_what(what, ks.p_value, jnum(c, "ks_pvalue"), REL_STATS, ABS_PROB);
        /* scipy's exact path never fell back on these; the flag must follow the size rule */
        assert_int_equal(ks.exact, json_is_true(json_object_get(c, "ks_auto_exact")));
        n_exact += ks.exact;
        n_asymp += !ks.exact;
        assert_int_equal(
            dw_stats_wasserstein(x.v, x.w, x.len, y.v, y.w, y.len, &wd, err, sizeof(err)), 0);
        snprintf(what, sizeof(what), "%s wasserstein", name);
        assert_close_what(what, wd, jnum(c, "wasserstein"), REL_STATS, ABS_ZERO);
        /* Both in one walk (what the evaluation calls), against scipy as well. */
        struct dw_stats_ks ks2;
        double wd2;
        assert_int_equal(
            dw_stats_ks_wasserstein(x.v, x.w, x.len, y.v, y.w, y.len, &ks2, &wd2, err, sizeof(err)),
            0);
        snprintf(what, sizeof(what), "%s ks statistic (one walk)", name);
        assert_close_what(what, ks2.statistic, jnum(c, "ks_statistic"), REL_STATS, ABS_ZERO);
        snprintf(what, sizeof(what), "%s ks p-value (one walk)", name);
        assert_close_what(what, ks2.p_value, jnum(c, "ks_pvalue"), REL_STATS, ABS_PROB);
        assert_int_equal(ks2.exact, ks.exact);
        snprintf(what, sizeof(what), "%s wasserstein (one walk)", name);
        assert_close_what(what, wd2, jnum(c, "wasserstein"), REL_STATS, ABS_ZERO);
        sample_free(&y);
        sample_free(&x);
    }
    assert_true(n_exact >= 15);
    assert_true(n_asymp >= 10);
    json_decref(doc);
}

/* A weighted view gives the same answers as the sample it stands for, and order of args
 * only flips nothing (both statistics are symmetric). */
static void test_weighted_view_equals_expanded(void **state)
{
    const double v1[] = {1.0, 2.0, 2.0, 3.5, 7.0};
    const uint64_t w1[] = {3, 1, 2, 0, 4};
    const double v2[] = {0.5, 2.0, 3.0, 7.0};
    const uint64_t w2[] = {1, 5, 2, 1};
    double e1[10];
    double e2[9];
    size_t n1 = 0;
    size_t n2 = 0;
    for (size_t i = 0; i < DW_ARRAY_SIZE(v1); i++) {
        for (uint64_t k = 0; k < w1[i]; k++) {
            e1[n1++] = v1[i];
        }
    }
    for (size_t i = 0; i < DW_ARRAY_SIZE(v2); i++) {
        for (uint64_t k = 0; k < w2[i]; k++) {
            e2[n2++] = v2[i];
        }
    }
    assert_int_equal(n1, 10);
    assert_int_equal(n2, 9);
    struct dw_stats_ks a;
    struct dw_stats_ks b;
    struct dw_stats_ks c;
    double wa;
    double wb;
    double wc;
    assert_int_equal(dw_stats_ks_2samp(v1, w1, 5, v2, w2, 4, &a, NULL, 0), 0);
    assert_int_equal(dw_stats_ks_2samp(e1, NULL, n1, e2, NULL, n2, &b, NULL, 0), 0);
    assert_int_equal(dw_stats_ks_2samp(e2, NULL, n2, e1, NULL, n1, &c, NULL, 0), 0);
    assert_double_exact(a.statistic, b.statistic);
    assert_double_exact(a.p_value, b.p_value);
    assert_double_exact(c.statistic, b.statistic);
    assert_double_exact(c.p_value, b.p_value);
    assert_int_equal(dw_stats_wasserstein(v1, w1, 5, v2, w2, 4, &wa, NULL, 0), 0);
    assert_int_equal(dw_stats_wasserstein(e1, NULL, n1, e2, NULL, n2, &wb, NULL, 0), 0);
    assert_int_equal(dw_stats_wasserstein(e2, NULL, n2, e1, NULL, n1, &wc, NULL, 0), 0);
    assert_close(wa, wb, 1e-15, 0);
    assert_close(wc, wb, 1e-15, 0);
    /* Ties: F1 after all 2.0s is 6/10, F2 is 6/9; D is evaluated only after equal values:
     * at 1.0: 3/10 - 1/9 = 0.18888, at 7: 0. Largest |diff| is at 3.0: 6/10 vs 8/9. */
    assert_close(a.statistic, 8.0 / 9.0 - 0.6, 1e-12, 0);
}

/* A random sorted sample for test_walk_against_definition(): values from a given number of
 * levels (ties within the sample and with the other one), weights 0..3 times scale, or NULL. */
static size_t walk_sample(uint64_t *seed, double *v, uint64_t *w, size_t cap, int levels,
                          uint64_t scale)
{
    size_t n = 1 + (size_t)(dw_rand_u01(seed) * (double)cap);
    for (size_t i = 0; i < n; i++) {
        v[i] = floor(dw_rand_u01(seed) * levels) * 0.37 - 3.0;
        if (w) {
            w[i] = (uint64_t)(dw_rand_u01(seed) * 4.0) * scale;
        }
    }
    dw_sort_doubles(v, n);
    if (w) {
        w[n - 1] += 1; /* a total above 0 */
    }
    return n;
}

/* weight of the items <= x */
static uint64_t weight_le(const double *v, const uint64_t *w, size_t n, double x)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n && v[i] <= x; i++) {
        c += w ? w[i] : 1;
    }
    return c;
}

/*
 * The walk behind KS and Wasserstein against their definitions, point by point: at every
 * distinct value of the union, F1 - F2 (items <= it), and the sum of |F1 - F2| times the gap to
 * the next distinct value, in the same order and arithmetic, so equal to the bit. Ties within
 * and across samples, weights of 0 and samples without weights.
 */
static void test_walk_against_definition(void **state)
{
    (void)state;
    uint64_t seed = 20261205;
    double v1[64], v2[64], u[128];
    uint64_t w1[64], w2[64];
    int n_asymptotic = 0;
    for (int round = 0; round < 400; round++) {
        int levels = round % 2 ? 12 : 1000;
        uint64_t *pw1 = round % 3 ? w1 : NULL;
        uint64_t *pw2 = round % 5 ? w2 : NULL;
        uint64_t scale = round % 4 ? 1 : 5000; /* totals above 10000: the asymptotic p */
        size_t n1 = walk_sample(&seed, v1, pw1, 64, levels, scale);
        size_t n2 = walk_sample(&seed, v2, pw2, 64, levels, scale);
        uint64_t t1 = weight_le(v1, pw1, n1, INFINITY);
        uint64_t t2 = weight_le(v2, pw2, n2, INFINITY);
        memcpy(u, v1, n1 * sizeof(*u));
        memcpy(u + n1, v2, n2 * sizeof(*u));
        dw_sort_doubles(u, n1 + n2);
        double max_s = -INFINITY, min_s = INFINITY;
        struct dw_ksum sum = {0.0, 0.0};
        for (size_t i = 0; i < n1 + n2; i++) {
            if (i + 1 < n1 + n2 && u[i + 1] == u[i]) {
                continue;
            }
            double diff = (double)weight_le(v1, pw1, n1, u[i]) / (double)t1 -
                          (double)weight_le(v2, pw2, n2, u[i]) / (double)t2;
            max_s = DW_MAX(max_s, diff);
            min_s = DW_MIN(min_s, diff);
            if (i + 1 < n1 + n2) {
                dw_ksum_add(&sum, fabs(diff) * (u[i + 1] - u[i]));
            }
        }
        struct dw_stats_ks ks;
        double wd;
        assert_int_equal(dw_stats_ks_wasserstein(v1, pw1, n1, v2, pw2, n2, &ks, &wd, NULL, 0), 0);
        double d = DW_MAX(max_s, DW_MIN(DW_MAX(-min_s, 0.0), 1.0));
        if (ks.exact) { /* scipy rounds D to a multiple of 1 / lcm(n1, n2) there */
            assert_close(ks.statistic, d, 1e-12, 1e-15);
        } else {
            assert_double_exact(ks.statistic, d);
            n_asymptotic++;
        }
        assert_double_exact(wd, dw_ksum_get(&sum));
    }
    assert_true(n_asymptotic >= 50);
}

static void test_ks_hand_cases(void **state)
{
    /* Disjoint 3 vs 3: D = 1, exact p = 2 / C(6,3) = 0.1 (scipy: 0.1). */
    const double a[] = {1, 2, 3};
    const double b[] = {4, 5, 6};
    struct dw_stats_ks ks;
    char err[128];
    assert_int_equal(dw_stats_ks_2samp(a, NULL, 3, b, NULL, 3, &ks, err, sizeof(err)), 0);
    assert_close(ks.statistic, 1.0, 0, 0);
    assert_close(ks.p_value, 0.1, 1e-14, 0);
    assert_true(ks.exact);
    /* Disjoint 2 vs 3: p = 2 / C(5,2) = 0.2 (the unequal-size recursion). */
    assert_int_equal(dw_stats_ks_2samp(a, NULL, 2, b, NULL, 3, &ks, err, sizeof(err)), 0);
    assert_close(ks.p_value, 0.2, 1e-14, 0);
    /* Same sample: D = 0, p = 1. */
    assert_int_equal(dw_stats_ks_2samp(a, NULL, 3, a, NULL, 3, &ks, err, sizeof(err)), 0);
    assert_double_exact(ks.statistic, 0.0);
    assert_double_exact(ks.p_value, 1.0);
    /* Large weights switch to the asymptotic distribution: 20000 vs 20000 at one point each
     * side, D = 1 -> kstwo.sf(1, 10000) = 0. */
    const uint64_t big[] = {20000};
    assert_int_equal(dw_stats_ks_2samp(a, big, 1, b, big, 1, &ks, err, sizeof(err)), 0);
    assert_false(ks.exact);
    assert_double_exact(ks.statistic, 1.0);
    assert_double_exact(ks.p_value, 0.0);
    /* Errors: empty, unsorted, NaN, zero total weight. */
    const double unsorted[] = {3, 1};
    const double withnan[] = {1, NAN};
    const uint64_t zeros[] = {0, 0};
    assert_int_equal(dw_stats_ks_2samp(a, NULL, 0, b, NULL, 3, &ks, err, sizeof(err)), -1);
    assert_contains(err, "empty");
    assert_int_equal(dw_stats_ks_2samp(a, NULL, 3, unsorted, NULL, 2, &ks, err, sizeof(err)), -1);
    assert_contains(err, "ascending");
    assert_int_equal(dw_stats_ks_2samp(withnan, NULL, 2, b, NULL, 3, &ks, err, sizeof(err)), -1);
    assert_contains(err, "finite");
    assert_int_equal(dw_stats_wasserstein(a, zeros, 2, b, NULL, 3, &ks.statistic, err, sizeof(err)),
                     -1);
    assert_contains(err, "weight 0");
    double wd;
    assert_int_equal(
        dw_stats_ks_wasserstein(a, NULL, 3, unsorted, NULL, 2, &ks, &wd, err, sizeof(err)), -1);
    assert_contains(err, "second sample");
    /* The first fault of a long view is named, wherever it is. */
    double *longv = malloc(1000 * sizeof(double));
    assert_non_null(longv);
    const struct {
        size_t at;
        double v;
        const char *msg;
    } faults[] = {{700, INFINITY, "first sample: value 700 is not finite"},
                  {0, NAN, "first sample: value 0 is not finite"},
                  {999, INFINITY, "first sample: value 999 is not finite"},
                  {300, NAN, "first sample: value 300 is not finite"},
                  {500, 0.25, "first sample: values not ascending at 500"}};
    for (size_t f = 0; f < DW_ARRAY_SIZE(faults); f++) {
        for (size_t i = 0; i < 1000; i++) {
            longv[i] = (double)i;
        }
        longv[faults[f].at] = faults[f].v;
        assert_int_equal(
            dw_stats_ks_wasserstein(longv, NULL, 1000, b, NULL, 3, &ks, &wd, err, sizeof(err)), -1);
        assert_string_equal(err, faults[f].msg);
    }
    free(longv);
}

static void test_wasserstein_hand_cases(void **state)
{
    /* scipy: wasserstein_distance([0, 1], [1]) = 0.5; shifting by c costs c. */
    const double a[] = {0, 1};
    const double b[] = {1};
    const double c[] = {10, 11};
    double w;
    assert_int_equal(dw_stats_wasserstein(a, NULL, 2, b, NULL, 1, &w, NULL, 0), 0);
    assert_close(w, 0.5, 1e-15, 0);
    assert_int_equal(dw_stats_wasserstein(a, NULL, 2, c, NULL, 2, &w, NULL, 0), 0);
    assert_close(w, 10.0, 1e-15, 0);
    assert_int_equal(dw_stats_wasserstein(a, NULL, 2, a, NULL, 2, &w, NULL, 0), 0);
    assert_double_exact(w, 0.0);
}

/* ------------------------------------------------------------------ categorical */

static void load_counts(const json_t *arr, uint64_t *out, double *dout)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        out[i] = (uint64_t)json_integer_value(v);
        dout[i] = (double)out[i];
    }
}

static void check_test(const char *name, const char *which, const struct dw_stats_chi2 *got,
                       const json_t *want)
{
    char what[128];
    snprintf(what, sizeof(what), "%s %s statistic", name, which);
    assert_close_what(what, got->statistic, jnum(want, "statistic"), REL_STATS, ABS_ZERO);
    snprintf(what, sizeof(what), "%s %s p-value", name, which);
    assert_close_what(what, got->p_value, jnum(want, "p_value"), REL_STATS, ABS_PROB);
    if (got->dof != (int)json_integer_value(json_object_get(want, "dof"))) {
        fail_msg("%s %s dof: got %d, scipy %d", name, which, got->dof,
                 (int)json_integer_value(json_object_get(want, "dof")));
    }
}

static void test_categorical_fixture(void **state)
{
    json_t *doc = load_fixture("stats_categorical.json");
    const json_t *cases = json_object_get(doc, "cases");
    size_t i;
    const json_t *c;
    char err[128];
    assert_true(json_array_size(cases) >= 15);
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const json_t *ref = json_object_get(c, "ref");
        size_t k = json_array_size(ref);
        assert_int_equal(k, json_array_size(json_object_get(c, "labels")));
        uint64_t *rc = dw_malloc(k * sizeof(uint64_t));
        uint64_t *cc = dw_malloc(k * sizeof(uint64_t));
        double *rd = dw_malloc(k * sizeof(double));
        double *cd = dw_malloc(k * sizeof(double));
        char what[128];
        load_counts(ref, rc, rd);
        load_counts(json_object_get(c, "cur"), cc, cd);

        snprintf(what, sizeof(what), "%s kl", name);
        assert_close_what(what, dw_stats_kl(cd, rd, k), jnum(c, "kl"), REL_STATS, ABS_ZERO);
        snprintf(what, sizeof(what), "%s js", name);
        assert_close_what(what, dw_stats_js(cd, rd, k), jnum(c, "js"), REL_STATS, ABS_ZERO);
        snprintf(what, sizeof(what), "%s hellinger", name);
        assert_close_what(what, dw_stats_hellinger(cd, rd, k), jnum(c, "hellinger"), REL_STATS,
                          ABS_ZERO);
        snprintf(what, sizeof(what), "%s tvd", name);
        assert_close_what(what, dw_stats_tvd(cd, rd, k), jnum(c, "tvd"), REL_STATS, ABS_ZERO);

        struct dw_stats_chi2 t;
        assert_int_equal(dw_stats_chi2_test(rc, cc, k, false, &t, err, sizeof(err)), 0);
        check_test(name, "chi2", &t, json_object_get(c, "chi2"));
        assert_int_equal(dw_stats_chi2_test(rc, cc, k, true, &t, err, sizeof(err)), 0);
        check_test(name, "chi2 yates", &t, json_object_get(c, "chi2_yates"));
        assert_int_equal(dw_stats_g_test(rc, cc, k, false, &t, err, sizeof(err)), 0);
        check_test(name, "g", &t, json_object_get(c, "g_test"));
        assert_int_equal(dw_stats_g_test(rc, cc, k, true, &t, err, sizeof(err)), 0);
        check_test(name, "g yates", &t, json_object_get(c, "g_test_yates"));
        free(cd);
        free(rd);
        free(cc);
        free(rc);
    }
    json_decref(doc);
}

static void test_categorical_hand_cases(void **state)
{
    /* The PSI example of docs/statistics.md, as KL: c = [.5,.5,0] -> [.5,.5,1e-4],
     * r = [.25,.25,.5]: KL = ln 2 + 1e-4 ln(1e-4/0.5). Counts give the same as proportions. */
    const double c[] = {0.5, 0.5, 0.0};
    const double r[] = {0.25, 0.25, 0.5};
    const double c_counts[] = {50, 50, 0};
    double want = log(2.0) + 1e-4 * log(1e-4 / 0.5);
    assert_close(dw_stats_kl(c, r, 3), want, 1e-14, 0);
    assert_close(dw_stats_kl(c_counts, r, 3), want, 1e-14, 0);
    /* Disjoint supports: JS = 1 (base 2), TVD = 1, Hellinger = 1. Equal: all 0. */
    const double p[] = {1, 0};
    const double q[] = {0, 1};
    assert_close(dw_stats_js(p, q, 2), 1.0, 1e-15, 0);
    assert_close(dw_stats_tvd(p, q, 2), 1.0, 1e-15, 0);
    assert_close(dw_stats_hellinger(p, q, 2), 1.0, 1e-15, 0);
    assert_double_exact(dw_stats_js(r, r, 3), 0.0);
    assert_double_exact(dw_stats_tvd(r, r, 3), 0.0);
    assert_double_exact(dw_stats_hellinger(r, r, 3), 0.0);
    /* Hellinger's two forms agree: sqrt(1 - sum sqrt(p q)). */
    const double h1[] = {0.1, 0.2, 0.7};
    const double h2[] = {0.3, 0.3, 0.4};
    double bc = sqrt(0.03) + sqrt(0.06) + sqrt(0.28);
    assert_close(dw_stats_hellinger(h1, h2, 3), sqrt(1.0 - bc), 1e-12, 0);
    /* Undefined inputs. */
    const double zero[] = {0, 0, 0};
    const double neg[] = {1, -1, 1};
    assert_nan(dw_stats_js(zero, r, 3));
    assert_nan(dw_stats_kl(neg, r, 3));
    assert_nan(dw_stats_tvd(r, r, 0));

    /* 2x2 by hand: [[10, 20], [20, 10]], E = 15 everywhere, chi2 = 4 * 25/15 = 20/3,
     * Yates: |O-E| - 0.5 = 4.5 -> 4 * 20.25/15 = 5.4. Zero columns are dropped (dof 1). */
    const uint64_t a[] = {10, 0, 20};
    const uint64_t b[] = {20, 0, 10};
    struct dw_stats_chi2 t;
    char err[128];
    assert_int_equal(dw_stats_chi2_test(a, b, 3, false, &t, err, sizeof(err)), 0);
    assert_close(t.statistic, 20.0 / 3.0, 1e-14, 0);
    assert_int_equal(t.dof, 1);
    assert_int_equal(t.columns, 2);
    assert_close(t.p_value, erfc(sqrt(10.0 / 3.0)), 1e-12, 0);
    assert_int_equal(dw_stats_chi2_test(a, b, 3, true, &t, err, sizeof(err)), 0);
    assert_close(t.statistic, 5.4, 1e-14, 0);
    /* G = 2 sum O ln(O/E) = 4 (10 ln(10/15) + 20 ln(20/15)) */
    assert_int_equal(dw_stats_g_test(a, b, 3, false, &t, err, sizeof(err)), 0);
    assert_close(t.statistic, 4.0 * (10 * log(10.0 / 15) + 20 * log(20.0 / 15)), 1e-13, 0);
    /* One non-empty column: scipy's degenerate case. */
    const uint64_t one_a[] = {5, 0};
    const uint64_t one_b[] = {7, 0};
    assert_int_equal(dw_stats_chi2_test(one_a, one_b, 2, false, &t, err, sizeof(err)), 0);
    assert_double_exact(t.statistic, 0.0);
    assert_double_exact(t.p_value, 1.0);
    assert_int_equal(t.dof, 0);
    /* An empty row is refused. */
    const uint64_t empty[] = {0, 0, 0};
    assert_int_equal(dw_stats_chi2_test(a, empty, 3, false, &t, err, sizeof(err)), -1);
    assert_contains(err, "second row");
    assert_int_equal(dw_stats_g_test(a, b, 0, false, &t, err, sizeof(err)), -1);
}

/* ------------------------------------------------------------------ Benjamini-Hochberg */

static void test_bh_fixture(void **state)
{
    json_t *doc = load_fixture("stats_categorical.json");
    const json_t *sets = json_object_get(doc, "bh");
    size_t i;
    const json_t *set;
    assert_true(json_array_size(sets) >= 5);
    json_array_foreach(sets, i, set)
    {
        const json_t *ps = json_object_get(set, "p");
        size_t n = json_array_size(ps);
        double *p = dw_malloc(n * sizeof(double));
        double *adj = dw_malloc(n * sizeof(double));
        bool *rej = dw_malloc(n * sizeof(bool));
        size_t want_rej = 0;
        for (size_t k = 0; k < n; k++) {
            p[k] = json_number_value(json_array_get(ps, k));
        }
        dw_stats_bh_adjust(p, n, adj);
        size_t nrej = dw_stats_bh_reject(p, n, 0.05, rej);
        for (size_t k = 0; k < n; k++) {
            char what[64];
            snprintf(what, sizeof(what), "bh set %zu p[%zu]", i, k);
            assert_close_what(
                what, adj[k],
                json_number_value(json_array_get(json_object_get(set, "adjusted"), k)), 1e-15, 0);
            bool want = json_is_true(json_array_get(json_object_get(set, "reject_005"), k));
            assert_int_equal(rej[k], want);
            want_rej += want;
        }
        assert_int_equal(nrej, want_rej);
        free(rej);
        free(adj);
        free(p);
    }
    json_decref(doc);
}

static void test_bh_hand(void **state)
{
    /* m = 4: p = .01 .02 .03 .5 -> .04 .04 .04 .5 (step-up: .01 and .02 share .03's
     * verdict); three rejections at alpha .041, none at .039. In place works. */
    double p[] = {0.5, 0.03, 0.01, 0.02};
    bool rej[4];
    assert_int_equal(dw_stats_bh_reject(p, 4, 0.041, rej), 3);
    assert_false(rej[0]);
    assert_true(rej[1] && rej[2] && rej[3]);
    assert_int_equal(dw_stats_bh_reject(p, 4, 0.039, NULL), 0);
    dw_stats_bh_adjust(p, 4, p);
    assert_close(p[0], 0.5, 1e-15, 0);
    assert_close(p[1], 0.04, 1e-15, 0);
    assert_close(p[2], 0.04, 1e-15, 0);
    assert_int_equal(dw_stats_bh_reject(p, 0, 0.05, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chi2_sf_fixture),
        cmocka_unit_test(test_kstwobign_fixture),
        cmocka_unit_test(test_kstwo_fixture),
        cmocka_unit_test(test_smirnov_fixture),
        cmocka_unit_test(test_special_hand_values),
        cmocka_unit_test(test_norm_fixture),
        cmocka_unit_test(test_norm_hand_values),
        cmocka_unit_test(test_numeric_fixture),
        cmocka_unit_test(test_weighted_view_equals_expanded),
        cmocka_unit_test(test_walk_against_definition),
        cmocka_unit_test(test_ks_hand_cases),
        cmocka_unit_test(test_wasserstein_hand_cases),
        cmocka_unit_test(test_categorical_fixture),
        cmocka_unit_test(test_categorical_hand_cases),
        cmocka_unit_test(test_bh_fixture),
        cmocka_unit_test(test_bh_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
