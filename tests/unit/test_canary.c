/*
 * test_canary.c - dw_canary: the z-test, Wald interval and sample size against the formulas
 * written out independently in tests/fixtures/make_canary_fixtures.py (scipy.stats.norm,
 * statsmodels' definitions, cross-checked there with chi2_contingency), the verdict on scripted
 * counts, and the report object.
 *
 * Tolerance: 1e-9 relative for every fixture value; values that are exactly 0 in the fixture
 * (z and interval bounds of equal proportions) need an absolute 1e-15.
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

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_canary.h"
#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_kll.h"
#include "driftwatch/core/dw_perf.h"

#include "dw_test.h"
#include "dw_test_fixture.h"
#include "dw_test_json.h"

#define REL 1e-9
#define ABS_ZERO 1e-15

/* got equals the fixture's obj[key]: both NaN (null), or within REL. */
static void assert_fixture(const char *name, const json_t *obj, const char *key, double got)
{
    char what[128];
    double want = jval(obj, key);
    snprintf(what, sizeof(what), "%s: %s", name, key);
    if (isnan(want)) {
        if (!isnan(got)) {
            fail_msg("%s: got %.17g, want null", what, got);
        }
        return;
    }
    assert_close_what(what, got, want, REL, ABS_ZERO);
}

static void test_ztest_fixture(void **state)
{
    json_t *doc = load_fixture("canary_cases.json");
    const json_t *cases = json_object_get(doc, "ztest");
    size_t i;
    const json_t *c;
    assert_true(json_array_size(cases) >= 20);
    json_array_foreach(cases, i, c)
    {
        const char *name = jstr(c, "name");
        uint64_t x1 = (uint64_t)jint(c, "x1"), n1 = (uint64_t)jint(c, "n1");
        uint64_t x2 = (uint64_t)jint(c, "x2"), n2 = (uint64_t)jint(c, "n2");
        double alpha = jreal(c, "alpha");
        struct dw_canary_ztest t;
        dw_canary_ztest(x1, n1, x2, n2, alpha, &t);
        assert_fixture(name, c, "p1", t.p1);
        assert_fixture(name, c, "p2", t.p2);
        assert_fixture(name, c, "diff", t.diff);
        assert_fixture(name, c, "z", t.z);
        assert_fixture(name, c, "p_value", t.p_value);
        assert_fixture(name, c, "ci_low", t.ci_low);
        assert_fixture(name, c, "ci_high", t.ci_high);
        /* an undefined number always comes with its reason */
        assert_true(isnan(t.z) == (t.reason != NULL));

        /* the analysis plans its sample size from this baseline's accuracy */
        struct dw_canary_cfg cc;
        dw_canary_cfg_default(&cc);
        cc.alpha = alpha;
        struct dw_canary_group base = {.labeled = n1, .correct = x1};
        struct dw_canary_group cand = {.labeled = n2, .correct = x2};
        struct dw_canary_result res;
        dw_canary_analyze(&cc, &base, &cand, &res);
        assert_fixture(name, c, "required_n", res.required_n_exact);
        assert_fixture(name, c, "z", res.accuracy.z);
        if (isnan(res.required_n_exact)) {
            assert_non_null(res.required_n_reason);
            assert_int_equal(res.samples_needed, cc.min_samples);
        } else {
            assert_int_equal(res.required_n, (uint64_t)ceil(jreal(c, "required_n")));
        }
    }
    json_decref(doc);
}

static void test_required_n_fixture(void **state)
{
    json_t *doc = load_fixture("canary_cases.json");
    const json_t *cases = json_object_get(doc, "required_n");
    size_t i;
    const json_t *c;
    assert_true(json_array_size(cases) >= 60);
    json_array_foreach(cases, i, c)
    {
        char name[96];
        snprintf(name, sizeof(name), "n(%g, %g, %g, %g)", jreal(c, "p1"), jreal(c, "p2"),
                 jreal(c, "alpha"), jreal(c, "power"));
        double got = dw_canary_required_n(jreal(c, "p1"), jreal(c, "p2"), jreal(c, "alpha"),
                                          jreal(c, "power"));
        assert_fixture(name, c, "n", got);
    }
    json_decref(doc);
}

static void test_required_n_hand_values(void **state)
{
    /* 0.9 -> 0.88 at 5 % and 80 %: (1.95996 sqrt(2 .89 .11) + .84162 sqrt(.09 + .1056))^2 /
     * .0004 = 3840.85 (the classic order of magnitude for a 2-point drop at 90 %) */
    assert_close(dw_canary_required_n(0.9, 0.88, 0.05, 0.8), 3840.847482436265, 1e-9, 0);
    /* symmetric in the two proportions */
    assert_close(dw_canary_required_n(0.88, 0.9, 0.05, 0.8),
                 dw_canary_required_n(0.9, 0.88, 0.05, 0.8), 1e-15, 0);
    assert_nan(dw_canary_required_n(0.9, 0.9, 0.05, 0.8));
    assert_nan(dw_canary_required_n(0.9, -0.1, 0.05, 0.8));
    assert_nan(dw_canary_required_n(0.9, 0.8, 0.0, 0.8));
    assert_nan(dw_canary_required_n(0.9, 0.8, 0.05, 1.0));
}

/* ------------------------------------------------------------------ verdict */

static struct dw_canary_cfg defaults(void)
{
    struct dw_canary_cfg cc;
    dw_canary_cfg_default(&cc);
    return cc;
}

/* A version with n labelled outcomes at accuracy acc, as many served with err errors, and a
 * latency p95 over n predictions. */
static struct dw_canary_group group(uint64_t n, double acc, uint64_t err, double p95_ms)
{
    return (struct dw_canary_group){.labeled = n,
                                    .correct = (uint64_t)llround((double)n * acc),
                                    .served = n,
                                    .errors = err,
                                    .latency_n = n,
                                    .latency_p95_ms = p95_ms};
}

static void assert_reason(const struct dw_canary_result *res, size_t i, const char *check,
                          double value, double threshold)
{
    assert_true(i < res->n_reasons);
    assert_string_equal(res->reasons[i].check, check);
    assert_close(res->reasons[i].value, value, 1e-12, 1e-15);
    assert_close(res->reasons[i].threshold, threshold, 1e-12, 1e-15);
}

static void test_verdict_promote(void **state)
{
    struct dw_canary_cfg cc = defaults();
    struct dw_canary_group base = group(100000, 0.9, 100, 35.0);
    struct dw_canary_group cand = group(5000, 0.9, 5, 37.0);
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_PROMOTE);
    assert_int_equal(res.n_reasons, 0);
    assert_int_equal(res.more_samples, 0);
    assert_int_equal(res.required_n, 3841);
    assert_int_equal(res.samples_needed, 3841);
    assert_double_exact(res.progress, 1.0);
    assert_double_exact(res.error_rate_ratio, 1.0);
    assert_close(res.latency_delta_ms, 2.0, 1e-15, 0);
    assert_string_equal(dw_canary_verdict_name(res.verdict), "promote");
}

static void test_verdict_hold_says_how_many_more(void **state)
{
    struct dw_canary_cfg cc = defaults();
    /* the same accuracy at 5 % traffic: 1000 of the 3841 needed so far */
    struct dw_canary_group base = group(19000, 0.9, 0, 35.0);
    struct dw_canary_group cand = group(1000, 0.9, 0, 35.0);
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    assert_int_equal(res.more_samples, 3841 - 1000);
    assert_int_equal(res.n_reasons, 1);
    assert_reason(&res, 0, "candidate_samples", 1000, 3841);
    assert_close(res.progress, 1000.0 / 3841.0, 1e-15, 0);

    /* below min_samples nothing is judged, not even a candidate that looks bad */
    struct dw_canary_group few = group(50, 0.5, 25, 500.0);
    dw_canary_analyze(&cc, &base, &few, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    assert_int_equal(res.more_samples, 3841 - 50);

    /* a short baseline counts too: the group short most sets more_samples */
    struct dw_canary_group small_base = group(2000, 0.9, 0, 35.0);
    dw_canary_analyze(&cc, &small_base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    assert_int_equal(res.n_reasons, 2);
    assert_reason(&res, 0, "baseline_samples", 2000, 3841);
    assert_reason(&res, 1, "candidate_samples", 1000, 3841);
    assert_int_equal(res.more_samples, 3841 - 1000);

    /* no labels at all yet: hold, with the numbers null and said why */
    struct dw_canary_group unlabelled = {.served = 500, .latency_n = 500, .latency_p95_ms = 30};
    dw_canary_analyze(&cc, &base, &unlabelled, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    assert_nan(res.accuracy.z);
    assert_non_null(res.accuracy.reason);
    assert_int_equal(res.more_samples, 3841);
    assert_double_exact(res.progress, 0.0);
}

static void test_verdict_rollback_on_accuracy(void **state)
{
    struct dw_canary_cfg cc = defaults();
    /* 0.8 against 0.9: significant long before the planned size, rolled back early */
    struct dw_canary_group base = group(20000, 0.9, 0, 35.0);
    struct dw_canary_group cand = group(400, 0.8, 0, 35.0);
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_int_equal(res.n_reasons, 1);
    assert_reason(&res, 0, "accuracy_drop", 0.1, 0.02);
    assert_true(res.accuracy.ci_high < -cc.max_accuracy_drop);

    /* an equal candidate that looks 3.9 points worse by chance on its first 329 outcomes (gen's
     * 95/5 rollout, first window): significant at 5 %, but the interval reaches within the
     * margin, so it waits instead of rolling back */
    struct dw_canary_group base_gen = {.labeled = 19000, .correct = 17024};
    struct dw_canary_group lucky = {.labeled = 329, .correct = 282};
    dw_canary_analyze(&cc, &base_gen, &lucky, &res);
    assert_true(res.accuracy.p_value < cc.alpha);
    assert_true(res.accuracy.p1 - res.accuracy.p2 > cc.max_accuracy_drop);
    assert_true(res.accuracy.ci_high > -cc.max_accuracy_drop);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);

    /* a drop above the margin that is not significant yet waits */
    struct dw_canary_group small = group(200, 0.87, 0, 35.0);
    dw_canary_analyze(&cc, &base, &small, &res);
    assert_true(res.accuracy.p_value >= cc.alpha);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);

    /* at the planned size the observed drop decides: 2.5 points > 2 rolls back ... */
    struct dw_canary_group planned = group(4000, 0.875, 0, 35.0);
    dw_canary_analyze(&cc, &base, &planned, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_reason(&res, 0, "accuracy_drop", 0.025, 0.02);
    /* ... while a significant drop within the margin (1.5 points) is promoted */
    struct dw_canary_group tolerated = group(20000, 0.885, 0, 35.0);
    dw_canary_analyze(&cc, &base, &tolerated, &res);
    assert_true(res.accuracy.p_value < cc.alpha);
    assert_int_equal(res.verdict, DW_CANARY_PROMOTE);

    /* the accuracy floor, when set: at the planned size on the point estimate ... */
    cc.min_accuracy = 0.95;
    dw_canary_analyze(&cc, &base, &tolerated, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_reason(&res, 0, "min_accuracy", 0.885, 0.95);
    /* ... before it only when the candidate's own interval is below the floor: 0.93 on 200
     * (interval up to 0.965) waits, 0.85 on 200 (up to 0.90) is rolled back */
    cc.min_accuracy = 0.95;
    struct dw_canary_group near = group(200, 0.93, 0, 35.0);
    dw_canary_analyze(&cc, &base, &near, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    struct dw_canary_group below = group(200, 0.85, 0, 35.0);
    cc.max_accuracy_drop = 0.2; /* only the floor fails */
    dw_canary_analyze(&cc, &base, &below, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_int_equal(res.n_reasons, 1);
    assert_reason(&res, 0, "min_accuracy", 0.85, 0.95);
}

static void test_verdict_rollback_on_latency(void **state)
{
    struct dw_canary_cfg cc = defaults();
    struct dw_canary_group base = group(20000, 0.9, 0, 35.0);
    struct dw_canary_group cand = group(300, 0.9, 0, 75.0);
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_int_equal(res.n_reasons, 1);
    assert_reason(&res, 0, "latency_p95_increase_ms", 40.0, 20.0);
    /* exactly at the threshold is tolerated */
    cand.latency_p95_ms = 55.0;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    /* no latency on a side: no check, said in the result */
    cand.latency_n = 0;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_nan(res.latency_delta_ms);
    assert_string_equal(res.latency_reason, "the candidate has no latency");
}

static void test_verdict_rollback_on_error_rate(void **state)
{
    struct dw_canary_cfg cc = defaults();
    /* 1 % against 0.2 %: ratio 5, significant */
    struct dw_canary_group base = group(20000, 0.9, 40, 35.0);
    struct dw_canary_group cand = group(2000, 0.9, 20, 35.0);
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_int_equal(res.n_reasons, 1);
    assert_reason(&res, 0, "error_rate_ratio", 5.0, 2.0);

    /* a high ratio on a handful of errors is not significant: no rollback on it */
    struct dw_canary_group few = group(2000, 0.9, 1, 35.0);
    struct dw_canary_group base_low = group(20000, 0.9, 2, 35.0);
    dw_canary_analyze(&cc, &base_low, &few, &res);
    assert_close(res.error_rate_ratio, 5.0, 1e-12, 0);
    assert_true(res.error_rate.p_value >= cc.alpha);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);

    /* 3 errors in 300 against 0.2 %: significant and 5 times the rate, but 3 errors do not
     * show the rate is above twice the baseline's: no rollback */
    struct dw_canary_group three = group(300, 0.9, 3, 35.0);
    dw_canary_analyze(&cc, &base, &three, &res);
    assert_true(res.error_rate.p_value < cc.alpha);
    assert_close(res.error_rate_ratio, 5.0, 1e-12, 0);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);

    /* a baseline without errors: the ratio is undefined, the rate itself is checked */
    struct dw_canary_group clean = group(20000, 0.9, 0, 35.0);
    dw_canary_analyze(&cc, &clean, &cand, &res);
    assert_nan(res.error_rate_ratio);
    assert_string_equal(res.error_rate_ratio_reason, "the baseline error rate is 0");
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_reason(&res, 0, "error_rate", 0.01, 0.0);

    /* no serving status anywhere: no error rate, said so */
    clean.served = clean.errors = 0;
    cand.served = cand.errors = 0;
    dw_canary_analyze(&cc, &clean, &cand, &res);
    assert_nan(res.error_rate.p1);
    assert_nan(res.error_rate_ratio);
    assert_non_null(strstr(res.error_rate.reason, "no serving status"));
}

static void test_verdict_several_reasons(void **state)
{
    struct dw_canary_cfg cc = defaults();
    struct dw_canary_group base = group(20000, 0.9, 40, 35.0);
    struct dw_canary_group cand = group(1000, 0.8, 30, 80.0);
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_int_equal(res.verdict, DW_CANARY_ROLLBACK);
    assert_int_equal(res.n_reasons, 3);
    assert_reason(&res, 0, "accuracy_drop", 0.1, 0.02);
    assert_reason(&res, 1, "error_rate_ratio", 15.0, 2.0);
    assert_reason(&res, 2, "latency_p95_increase_ms", 45.0, 20.0);
    /* a rollback gives no hold reasons and asks for no more samples */
    assert_int_equal(res.more_samples, 0);
}

static void test_edge_cases_defined(void **state)
{
    struct dw_canary_cfg cc = defaults();
    struct dw_canary_result res;
    /* both perfect: pooled variance 0, z 0, p 1, interval [0, 0]; baseline 1 plans 0.98 */
    struct dw_canary_group base = group(5000, 1.0, 0, 10.0);
    struct dw_canary_group cand = group(5000, 1.0, 0, 10.0);
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_double_exact(res.accuracy.z, 0.0);
    assert_double_exact(res.accuracy.p_value, 1.0);
    assert_double_exact(res.accuracy.ci_low, 0.0);
    assert_double_exact(res.accuracy.ci_high, 0.0);
    assert_null(res.required_n_reason);
    assert_int_equal(res.verdict, DW_CANARY_PROMOTE);
    /* both always wrong: baseline accuracy 0 is below the drop, the plan is min_samples */
    base = group(500, 0.0, 0, 10.0);
    cand = group(500, 0.0, 0, 10.0);
    dw_canary_analyze(&cc, &base, &cand, &res);
    assert_double_exact(res.accuracy.p_value, 1.0);
    assert_nan(res.required_n_exact);
    assert_string_equal(res.required_n_reason, "the baseline accuracy is below max_accuracy_drop");
    assert_int_equal(res.samples_needed, cc.min_samples);
    assert_int_equal(res.verdict, DW_CANARY_PROMOTE);
    /* nothing at all */
    struct dw_canary_group none = {0};
    dw_canary_analyze(&cc, &none, &none, &res);
    assert_int_equal(res.verdict, DW_CANARY_HOLD);
    assert_int_equal(res.more_samples, cc.min_samples);
    assert_nan(res.latency_delta_ms);
    assert_non_null(res.latency_reason);
}

/* ------------------------------------------------------------------ configuration */

static void test_cfg_check(void **state)
{
    char err[256];
    struct dw_canary_cfg cc = defaults();
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), 0);
    assert_double_exact(cc.alpha, 0.05);
    assert_int_equal(cc.min_samples, 100);
    assert_double_exact(cc.max_accuracy_drop, 0.02);
    cc.alpha = 0.0;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.alpha"));
    cc = defaults();
    cc.min_samples = 0;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.min_samples"));
    cc = defaults();
    cc.max_accuracy_drop = 0.0;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.max_accuracy_drop"));
    cc = defaults();
    cc.max_latency_p95_increase_ms = -1.0;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.max_latency_p95_increase_ms"));
    cc = defaults();
    cc.max_error_rate_ratio = 0.5;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.max_error_rate_ratio"));
    cc = defaults();
    cc.min_accuracy = 1.5;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.min_accuracy"));
    cc = defaults();
    cc.windows = 0;
    assert_int_equal(dw_canary_cfg_check(&cc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "canary.windows"));
}

/* ------------------------------------------------------------------ report */

static void test_render(void **state)
{
    struct dw_canary_cfg cc = defaults();
    struct dw_canary_group base = group(20000, 0.9, 0, 35.0);
    struct dw_canary_group cand = group(400, 0.8, 0, 35.0);
    cand.latency_n = 0;
    struct dw_canary_result res;
    dw_canary_analyze(&cc, &base, &cand, &res);
    json_t *o = dw_canary_render(&cc, &res, "1.0.0", "1.1.0");
    assert_string_equal(jstr(o, "baseline"), "1.0.0");
    assert_string_equal(jstr(o, "candidate"), "1.1.0");
    assert_int_equal(jint(o, "windows"), DW_CANARY_DEFAULT_WINDOWS);
    assert_string_equal(jstr(o, "verdict"), "rollback");
    const json_t *reasons = json_object_get(o, "reasons");
    assert_int_equal(json_array_size(reasons), 1);
    const json_t *r0 = json_array_get(reasons, 0);
    assert_string_equal(jstr(r0, "check"), "accuracy_drop");
    assert_close(jreal(r0, "value"), 0.1, 1e-12, 0);
    assert_close(jreal(r0, "threshold"), 0.02, 1e-15, 0);
    assert_true(json_is_true(json_object_get(o, "rollback")));
    assert_string_equal(jstr(o, "summary"), "rollback: accuracy_drop 0.1 (threshold 0.02)");

    const json_t *acc = json_object_get(o, "accuracy");
    assert_int_equal(jint(acc, "baseline_n"), 20000);
    assert_int_equal(jint(acc, "baseline_correct"), 18000);
    assert_int_equal(jint(acc, "candidate_n"), 400);
    assert_int_equal(jint(acc, "candidate_correct"), 320);
    assert_close(jreal(acc, "z"), res.accuracy.z, 1e-15, 0);
    assert_close(jreal(acc, "p_value"), res.accuracy.p_value, 1e-15, 0);
    assert_true(jreal(acc, "ci_low") < jreal(acc, "ci_high"));
    assert_int_equal(jint(acc, "required_n"), 3841);
    assert_null(json_object_get(acc, "reason"));

    /* undefined numbers are null with a reason member */
    const json_t *lat = json_object_get(o, "latency_p95_ms");
    assert_close(jreal(lat, "baseline"), 35.0, 1e-15, 0);
    assert_true(json_is_null(json_object_get(lat, "candidate")));
    assert_true(json_is_null(json_object_get(lat, "delta")));
    assert_string_equal(jstr(lat, "reason"), "the candidate has no latency");
    const json_t *er = json_object_get(o, "error_rate");
    assert_double_exact(jreal(er, "baseline"), 0.0);
    assert_double_exact(jreal(er, "ratio"), 1.0);
    assert_int_equal(jint(er, "candidate_errors"), 0);
    json_decref(o);

    /* hold: more_samples and progress */
    cand = group(1000, 0.9, 0, 35.0);
    dw_canary_analyze(&cc, &base, &cand, &res);
    o = dw_canary_render(&cc, &res, "1.0.0", "1.1.0");
    assert_string_equal(jstr(o, "verdict"), "hold");
    assert_int_equal(jint(o, "more_samples"), 2841);
    assert_int_equal(jint(o, "samples_needed"), 3841);
    assert_close(jreal(o, "progress"), 1000.0 / 3841.0, 1e-15, 0);
    json_decref(o);

    /* an empty baseline: accuracy numbers null, both reasons present */
    struct dw_canary_group none = {0};
    dw_canary_analyze(&cc, &none, &cand, &res);
    o = dw_canary_render(&cc, &res, NULL, "1.1.0");
    assert_true(json_is_null(json_object_get(o, "baseline")));
    acc = json_object_get(o, "accuracy");
    assert_true(json_is_null(json_object_get(acc, "z")));
    assert_true(json_is_null(json_object_get(acc, "required_n")));
    assert_string_equal(jstr(acc, "reason"), "the baseline group is empty (n = 0)");
    assert_string_equal(jstr(acc, "required_n_reason"), "the baseline has no labelled outcome");
    er = json_object_get(o, "error_rate");
    assert_true(json_is_null(json_object_get(er, "ratio")));
    assert_non_null(strstr(jstr(er, "reason"), "group is empty"));
    json_decref(o);
}

/* ---- window records ---- */

/* A version of a window record with `lat` latencies from `base` (none when lat is 0). */
static void set_version(struct dw_canary_version *v, const char *name, uint64_t pred,
                        uint64_t labeled, uint64_t correct, uint64_t served, uint64_t errors,
                        int lat, double base)
{
    memset(v, 0, sizeof(*v));
    v->name = dw_strdup(name);
    v->predictions = pred;
    v->labeled = labeled;
    v->correct = correct;
    v->served = served;
    v->errors = errors;
    for (int i = 0; i < lat; i++) {
        dw_perf_latency_update(&v->latency, base + (double)(i % 100));
    }
}

static void make_window(struct dw_canary_window *w, int64_t start, size_t n)
{
    w->start_ms = start;
    w->n = n;
    w->v = dw_calloc(n, sizeof(*w->v));
}

/* A record keeps every count and the latency sketch through the encoding; a corrupt one is
 * refused with a reason, never half read. */
static void test_window_record_round_trip(void **state)
{
    (void)state;
    struct dw_model_cfg m = {.name = "m"};
    struct dw_agg *agg = dw_agg_new(&m, 60000);
    assert_int_equal(dw_agg_version_slot(agg, "1.0.0", 5), 0);
    assert_int_equal(dw_agg_version_slot(agg, "1.1.0", 5), 1);
    agg->versions[0].c.predictions = 950;
    agg->versions[0].c.labeled = 900;
    agg->versions[0].c.correct = 810;
    agg->versions[0].served = 950;
    agg->versions[0].errors = 3;
    dw_perf_latency_update(&agg->versions[0].latency, 12.5);
    agg->versions[1].c.predictions = 50;
    struct dw_canary_window w, back;
    dw_canary_window_from_agg(&w, agg);
    dw_agg_free(agg);
    struct dw_buf buf;
    dw_buf_init(&buf);
    dw_canary_window_encode(&w, &buf);
    char err[256];
    assert_int_equal(dw_canary_window_decode(&back, buf.data, buf.len, err, sizeof(err)), 0);
    assert_int_equal(back.start_ms, 60000);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.v[0].name, "1.0.0");
    assert_int_equal(back.v[0].predictions, 950);
    assert_int_equal(back.v[0].labeled, 900);
    assert_int_equal(back.v[0].correct, 810);
    assert_int_equal(back.v[0].served, 950);
    assert_int_equal(back.v[0].errors, 3);
    assert_int_equal(dw_kll_count(back.v[0].latency), 1);
    assert_null(back.v[1].latency);
    /* the final record takes the close record's latency sketches */
    struct dw_canary_window fin;
    make_window(&fin, 60000, 1);
    set_version(&fin.v[0], "1.0.0", 950, 940, 850, 950, 3, 0, 0);
    dw_canary_window_add_latency(&fin, &back);
    assert_int_equal(dw_kll_count(fin.v[0].latency), 1);
    assert_int_equal(dw_kll_count(back.v[0].latency), 1);
    dw_canary_window_free(&fin);
    dw_canary_window_free(&back);
    /* truncated at every length, and counts that contradict each other */
    for (size_t len = 0; len < buf.len; len++) {
        assert_int_equal(dw_canary_window_decode(&back, buf.data, len, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "canary record: "));
        assert_null(back.v);
    }
    w.v[1].labeled = 51; /* more labelled than predictions */
    dw_buf_reset(&buf);
    dw_canary_window_encode(&w, &buf);
    assert_int_equal(dw_canary_window_decode(&back, buf.data, buf.len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "1.1.0: counts contradict"));
    dw_buf_free(&buf);
    dw_canary_window_free(&w);
}

/* The analysis merges the windows' records per version and picks the versions by itself:
 * the verdict is the one of dw_canary_analyze on the merged counts. */
static void test_report_merges_and_picks(void **state)
{
    (void)state;
    struct dw_model_canary mc = {.on = 1, .baseline = "auto", .candidate = "auto"};
    dw_canary_cfg_default(&mc.cfg);
    mc.cfg.min_samples = 50;
    struct dw_canary_window wins[3];
    make_window(&wins[0], 0, 1);
    set_version(&wins[0].v[0], "1.0.0", 1000, 900, 810, 0, 0, 300, 10);
    make_window(&wins[1], 60000, 3);
    set_version(&wins[1].v[0], "1.0.0", 950, 850, 760, 0, 0, 300, 10);
    set_version(&wins[1].v[1], "0.9.0", 20, 20, 18, 0, 0, 0, 0); /* old, small */
    set_version(&wins[1].v[2], "1.1.0", 50, 45, 30, 0, 0, 100, 60);
    make_window(&wins[2], 120000, 2);
    set_version(&wins[2].v[0], "1.1.0", 60, 55, 35, 0, 0, 100, 60);
    set_version(&wins[2].v[1], "1.0.0", 940, 850, 770, 0, 0, 300, 10);
    json_t *o = dw_canary_report(&mc, wins, 3, "final");
    assert_string_equal(json_string_value(json_object_get(o, "baseline")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(o, "candidate")), "1.1.0");
    assert_string_equal(json_string_value(json_object_get(o, "stage")), "final");
    json_t *pred = json_object_get(o, "predictions");
    assert_int_equal(json_integer_value(json_object_get(pred, "baseline")), 2890);
    assert_int_equal(json_integer_value(json_object_get(pred, "candidate")), 110);
    struct dw_canary_group gb = {.labeled = 2600, .correct = 2340, .latency_n = 900},
                           gc = {.labeled = 100, .correct = 65, .latency_n = 200};
    gb.latency_p95_ms = 104; /* the sketches': 10..109 and 60..159 */
    gc.latency_p95_ms = 154;
    struct dw_canary_result res;
    dw_canary_analyze(&mc.cfg, &gb, &gc, &res);
    assert_string_equal(json_string_value(json_object_get(o, "verdict")),
                        dw_canary_verdict_name(res.verdict));
    assert_string_equal(json_string_value(json_object_get(o, "verdict")), "rollback");
    json_t *acc = json_object_get(o, "accuracy");
    assert_int_equal(json_integer_value(json_object_get(acc, "baseline_n")), 2600);
    assert_int_equal(json_integer_value(json_object_get(acc, "candidate_correct")), 65);
    assert_double_exact(json_real_value(json_object_get(acc, "p_value")), res.accuracy.p_value);
    json_t *lat = json_object_get(o, "latency_p95_ms");
    assert_true(json_real_value(json_object_get(lat, "delta")) > 45);
    json_decref(o);

    /* configured versions win over auto; a configured candidate not seen yet holds */
    mc.baseline = "0.9.0";
    mc.candidate = "2.0.0";
    o = dw_canary_report(&mc, wins, 3, "close");
    assert_string_equal(json_string_value(json_object_get(o, "baseline")), "0.9.0");
    assert_string_equal(json_string_value(json_object_get(o, "candidate")), "2.0.0");
    assert_string_equal(json_string_value(json_object_get(o, "verdict")), "hold");
    json_decref(o);

    /* one version only: nothing to compare, said so */
    mc.baseline = "auto";
    mc.candidate = "auto";
    o = dw_canary_report(&mc, wins, 1, "close");
    assert_string_equal(json_string_value(json_object_get(o, "baseline")), "1.0.0");
    assert_true(json_is_null(json_object_get(o, "candidate")));
    assert_true(json_is_null(json_object_get(o, "verdict")));
    assert_non_null(strstr(json_string_value(json_object_get(o, "reason")), "two versions"));
    json_decref(o);
    for (size_t i = 0; i < 3; i++) {
        dw_canary_window_free(&wins[i]);
    }
}

/* The endpoint's one verdict: a rollback of either stage wins (the close one first), a
 * promote needs the final analysis, nothing analysed yet is said. */
static void test_latest(void **state)
{
    (void)state;
    json_t *close_ok =
        json_pack("{s:s,s:s,s:s,s:[]}", "verdict", "promote", "window_start",
                  "2026-01-01T00:05:00Z", "summary", "promote: no check failed", "reasons");
    json_t *close_bad = json_pack("{s:s,s:s,s:s,s:[]}", "verdict", "rollback", "window_start",
                                  "2026-01-01T00:05:00Z", "summary", "rollback: ...", "reasons");
    json_t *final_hold =
        json_pack("{s:s,s:s}", "verdict", "hold", "window_start", "2026-01-01T00:02:00Z");
    json_t *final_bad =
        json_pack("{s:s,s:s}", "verdict", "rollback", "window_start", "2026-01-01T00:02:00Z");
    json_t *final_ok =
        json_pack("{s:s,s:s}", "verdict", "promote", "window_start", "2026-01-01T00:02:00Z");
    json_t *none = json_pack("{s:n,s:s}", "verdict", "reason", "fewer than two versions");
    struct {
        const json_t *close, *final;
        const char *verdict, *stage;
    } cases[] = {
        {close_bad, final_ok, "rollback", "close"}, {close_ok, final_bad, "rollback", "final"},
        {close_ok, final_ok, "promote", "final"},   {close_ok, final_hold, "hold", "final"},
        {close_ok, NULL, "hold", "close"},          {close_bad, NULL, "rollback", "close"},
        {close_ok, none, "hold", "close"},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        json_t *o = dw_canary_latest("fraud", cases[i].close, cases[i].final);
        assert_string_equal(json_string_value(json_object_get(o, "model")), "fraud");
        assert_string_equal(json_string_value(json_object_get(o, "verdict")), cases[i].verdict);
        assert_string_equal(json_string_value(json_object_get(o, "stage")), cases[i].stage);
        assert_true(json_equal(json_object_get(o, "close"), (json_t *)cases[i].close));
        json_decref(o);
    }
    json_t *o = dw_canary_latest("fraud", close_ok, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(o, "reason")), "final analysis"));
    json_decref(o);
    o = dw_canary_latest("fraud", NULL, NULL);
    assert_true(json_is_null(json_object_get(o, "verdict")));
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "no window analysed yet");
    json_decref(o);
    o = dw_canary_latest("fraud", none, NULL);
    assert_true(json_is_null(json_object_get(o, "verdict")));
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "nothing to compare yet");
    json_decref(o);
    json_decref(close_ok);
    json_decref(close_bad);
    json_decref(final_hold);
    json_decref(final_bad);
    json_decref(final_ok);
    json_decref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ztest_fixture),
        cmocka_unit_test(test_required_n_fixture),
        cmocka_unit_test(test_required_n_hand_values),
        cmocka_unit_test(test_verdict_promote),
        cmocka_unit_test(test_verdict_hold_says_how_many_more),
        cmocka_unit_test(test_verdict_rollback_on_accuracy),
        cmocka_unit_test(test_verdict_rollback_on_latency),
        cmocka_unit_test(test_verdict_rollback_on_error_rate),
        cmocka_unit_test(test_verdict_several_reasons),
        cmocka_unit_test(test_edge_cases_defined),
        cmocka_unit_test(test_cfg_check),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_window_record_round_trip),
        cmocka_unit_test(test_report_merges_and_picks),
        cmocka_unit_test(test_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
