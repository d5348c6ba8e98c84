/*
 * test_modelmetrics.c - digests of window reports (running prediction totals, what is kept)
 * and the model series set from them: values, stale label sets to NaN, counters kept, the
 * metrics.max_series bound, the version named "all".
 */
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_metrics.h"
#include "driftwatch/core/dw_modelmetrics.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dw_test.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* A final report of two versions (the fields dw_modelmetrics reads, as run writes them). */
static const char *const FINAL_REPORT =
    "{\"model\":\"fraud\",\"window_start_ms\":60000,\"stage\":\"final\",\"final\":true,"
    "\"predictions\":300,\"labeled\":240,"
    "\"performance\":{\"accuracy\":0.875,\"f1\":0.5,\"log_loss\":null,\"roc_auc_error_bound\":0.01,"
    "\"confusion\":{\"tp\":1},\"baseline\":{\"accuracy\":0.9}},"
    "\"versions\":{\"1.0.0\":{\"predictions\":200,\"performance\":{\"accuracy\":0.75}},"
    "\"1.1.0\":{\"predictions\":100,\"performance\":{\"accuracy\":1.0}}},"
    "\"estimated\":{\"status\":\"ready\",\"method\":\"cbpe\",\"accuracy\":0.8,\"scores\":300,"
    "\"reference_outcomes\":900,\"calibration_error\":{\"scores\":0.1}},"
    "\"features\":{\"amount\":{\"type\":\"numeric\",\"method\":\"ks\",\"score\":0.001,"
    "\"drift\":true,\"mean\":3.0},\"country\":{\"method\":\"chi2\",\"score\":null,"
    "\"drift\":null}},\"drift\":{\"share\":0.5,\"dataset\":true}}";

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j) {
        fail_msg("bad test JSON: %s", err.text);
    }
    return j;
}

static json_t *digest(const char *report_text, const json_t *prev, int expect_rc)
{
    json_t *report = load(report_text);
    json_t *d = NULL;
    char errstr[256] = "";
    int rc = dw_modelmetrics_digest(report, prev, 130500, 120000, &d, errstr, sizeof(errstr));
    assert_int_equal(rc, expect_rc);
    assert_true(rc == 0 || errstr[0] != '\0');
    json_decref(report);
    assert_non_null(d);
    return d;
}

static int setup(void **state)
{
    (void)state;
    dw_metrics_reset();
    return 0;
}

static json_int_t total(const json_t *d, const char *version)
{
    const json_t *t = json_object_get(d, "totals");
    return json_integer_value(version ? json_object_get(json_object_get(t, "versions"), version)
                                      : json_object_get(t, "predictions"));
}

static void test_final_digest_adds_to_totals(void **state)
{
    (void)state;
    json_t *first = digest(FINAL_REPORT, NULL, 0);
    assert_int_equal(total(first, NULL), 300);
    assert_int_equal(total(first, "1.0.0"), 200);
    assert_int_equal(total(first, "1.1.0"), 100);
    /* the next final window adds to the totals committed before it */
    json_t *second = digest(FINAL_REPORT, first, 0);
    assert_int_equal(total(second, NULL), 600);
    assert_int_equal(total(second, "1.0.0"), 400);
    assert_int_equal(total(second, "1.1.0"), 200);
    /* numbers and nulls only; the error bound, the baseline and the confusion left out */
    const json_t *perf = json_object_get(second, "performance");
    assert_int_equal(json_object_size(perf), 3);
    assert_true(json_is_null(json_object_get(perf, "log_loss")));
    assert_null(json_object_get(perf, "roc_auc_error_bound"));
    const json_t *est = json_object_get(second, "estimated");
    assert_int_equal(json_object_size(est), 1);
    assert_double_exact(json_real_value(json_object_get(est, "accuracy")), 0.8);
    assert_int_equal(json_integer_value(json_object_get(second, "evaluated_ms")), 130500);
    assert_string_equal(json_string_value(json_object_get(second, "stage")), "final");
    json_decref(first);
    json_decref(second);
}

static void test_close_digest_has_no_totals(void **state)
{
    (void)state;
    json_t *d = digest("{\"final\":false,\"window_start_ms\":60000,\"predictions\":5,"
                       "\"estimated\":{\"status\":\"waiting_for_baseline\",\"reason\":\"x\"}}",
                       NULL, 0);
    assert_null(json_object_get(d, "totals"));
    assert_null(json_object_get(d, "estimated"));
    assert_true(json_is_null(json_object_get(d, "drift_share")));
    assert_double_exact(dw_modelmetrics_close_delay(d), 10.5);
    assert_true(isnan(dw_modelmetrics_close_delay(NULL)));
    json_decref(d);
}

static void test_malformed_prev_totals_restart(void **state)
{
    (void)state;
    json_t *prev = load("{\"totals\":{\"predictions\":\"many\",\"versions\":{}}}");
    json_t *d = digest(FINAL_REPORT, prev, -1);
    assert_int_equal(total(d, NULL), 300);
    json_decref(prev);
    json_decref(d);
    prev = load("{\"totals\":{\"predictions\":7,\"versions\":{\"1.0.0\":-1}}}");
    d = digest(FINAL_REPORT, prev, -1);
    assert_int_equal(total(d, NULL), 300);
    assert_int_equal(total(d, "1.0.0"), 200);
    json_decref(prev);
    json_decref(d);
}

static double value(const char *name, const char *labels)
{
    struct dw_metric *m = dw_metrics_find(name, labels);
    if (!m) {
        fail_msg("series %s{%s} missing", name, labels);
    }
    return dw_metric_get(m);
}

static void test_publish_sets_series(void **state)
{
    (void)state;
    json_t *final = digest(FINAL_REPORT, NULL, 0);
    json_t *close = digest(FINAL_REPORT, NULL, 0);
    json_object_set_new(close, "stage", json_string("close"));
    struct dw_modelmetrics mm = {.max_series = 1000};
    struct dw_modelmetrics_model st = {0};
    assert_int_equal(dw_modelmetrics_publish(&mm, &st, "fraud", close, final), 0);
    assert_double_exact(value("driftwatch_model_performance",
                              "model=\"fraud\",version=\"all\",metric=\"accuracy\""),
                        0.875);
    assert_double_exact(value("driftwatch_model_performance",
                              "model=\"fraud\",version=\"1.1.0\",metric=\"accuracy\""),
                        1.0);
    assert_true(isnan(value("driftwatch_model_performance",
                            "model=\"fraud\",version=\"all\",metric=\"log_loss\"")));
    assert_double_exact(
        value("driftwatch_model_predictions_total", "model=\"fraud\",version=\"all\""), 300);
    assert_double_exact(value("driftwatch_model_labeled_ratio", "model=\"fraud\""), 0.8);
    assert_double_exact(
        value("driftwatch_model_estimated_performance", "model=\"fraud\",metric=\"accuracy\""),
        0.8);
    assert_double_exact(
        value("driftwatch_feature_drift_score", "model=\"fraud\",feature=\"amount\",method=\"ks\""),
        0.001);
    assert_double_exact(value("driftwatch_feature_drifted", "model=\"fraud\",feature=\"amount\""),
                        1);
    assert_true(isnan(value("driftwatch_feature_drifted", "model=\"fraud\",feature=\"country\"")));
    assert_double_exact(value("driftwatch_dataset_drift_share", "model=\"fraud\""), 0.5);
    assert_double_exact(value("driftwatch_window_last_evaluated_timestamp_seconds",
                              "model=\"fraud\",stage=\"close\""),
                        130.5);
    char *text = dw_metrics_render();
    assert_non_null(strstr(text, "# TYPE driftwatch_model_predictions_total counter\n"));
    assert_non_null(strstr(text, "# TYPE driftwatch_model_performance gauge\n"));
    free(text);

    /* Version 1.1.0 stopped and the estimate is gone: their gauges become NaN; the
     * prediction counter keeps its total. */
    json_t *later = digest("{\"final\":true,\"window_start_ms\":120000,\"predictions\":10,"
                           "\"labeled\":0,\"performance\":{\"accuracy\":null},"
                           "\"versions\":{\"1.0.0\":{\"predictions\":10,\"performance\":{}}}}",
                           final, 0);
    assert_int_equal(dw_modelmetrics_publish(&mm, &st, "fraud", close, later), 0);
    assert_true(isnan(value("driftwatch_model_performance",
                            "model=\"fraud\",version=\"1.1.0\",metric=\"accuracy\"")));
    assert_true(isnan(
        value("driftwatch_model_performance", "model=\"fraud\",version=\"all\",metric=\"f1\"")));
    assert_double_exact(
        value("driftwatch_model_predictions_total", "model=\"fraud\",version=\"1.1.0\""), 100);
    assert_double_exact(
        value("driftwatch_model_predictions_total", "model=\"fraud\",version=\"all\""), 310);
    assert_double_exact(value("driftwatch_model_labeled_ratio", "model=\"fraud\""), 0);
    /* the close digest did not change: its series keep their values */
    assert_double_exact(value("driftwatch_dataset_drift_share", "model=\"fraud\""), 0.5);
    assert_int_equal(dw_modelmetrics_publish(&mm, &st, "fraud", NULL, later), 0);
    assert_true(isnan(value("driftwatch_dataset_drift_share", "model=\"fraud\"")));
    assert_true(isnan(
        value("driftwatch_model_estimated_performance", "model=\"fraud\",metric=\"accuracy\"")));
    dw_modelmetrics_model_free(&st);
    json_decref(final);
    json_decref(close);
    json_decref(later);
}

static void test_max_series_bound(void **state)
{
    (void)state;
    json_t *final = digest(FINAL_REPORT, NULL, 0);
    struct dw_modelmetrics mm = {.max_series = 3};
    struct dw_modelmetrics_model st = {0};
    /* the final digest has 3 + 2 performance series, 3 totals, the ratio and the time: 10 */
    assert_int_equal(dw_modelmetrics_publish(&mm, &st, "fraud", NULL, final), 7);
    assert_int_equal(mm.n_series, 3);
    assert_null(dw_metrics_find("driftwatch_window_last_evaluated_timestamp_seconds",
                                "model=\"fraud\",stage=\"final\""));
    /* counted again at the next refresh; the series created keep being updated */
    assert_int_equal(dw_modelmetrics_publish(&mm, &st, "fraud", NULL, final), 7);
    assert_int_equal(mm.n_series, 3);
    mm.max_series = 100;
    assert_int_equal(dw_modelmetrics_publish(&mm, &st, "fraud", NULL, final), 0);
    assert_int_equal(mm.n_series, 10);
    dw_modelmetrics_model_free(&st);
    json_decref(final);
}

static void test_version_named_all(void **state)
{
    (void)state;
    json_t *final =
        digest("{\"final\":true,\"window_start_ms\":0,\"predictions\":4,\"labeled\":4,"
               "\"performance\":{\"accuracy\":0.5},"
               "\"versions\":{\"all\":{\"predictions\":1,\"performance\":{\"accuracy\":1.0}},"
               "\"\":{\"predictions\":3,\"performance\":{\"accuracy\":0.25}}}}",
               NULL, 0);
    struct dw_modelmetrics mm = {.max_series = 100};
    struct dw_modelmetrics_model st = {0};
    dw_modelmetrics_publish(&mm, &st, "a\"b", NULL, final);
    /* the model-wide series is not overwritten by the version "all"; "" is a version */
    assert_double_exact(value("driftwatch_model_performance",
                              "model=\"a\\\"b\",version=\"all\",metric=\"accuracy\""),
                        0.5);
    assert_double_exact(
        value("driftwatch_model_predictions_total", "model=\"a\\\"b\",version=\"all\""), 4);
    assert_double_exact(
        value("driftwatch_model_performance", "model=\"a\\\"b\",version=\"\",metric=\"accuracy\""),
        0.25);
    dw_modelmetrics_model_free(&st);
    json_decref(final);
}

static void test_find_does_not_create(void **state)
{
    (void)state;
    assert_null(dw_metrics_find("driftwatch_x", "a=\"1\""));
    struct dw_metric *m = dw_metrics_series("driftwatch_x", "X.", DW_METRIC_GAUGE, "a=\"1\"");
    assert_ptr_equal(dw_metrics_find("driftwatch_x", "a=\"1\""), m);
    assert_null(dw_metrics_find("driftwatch_x", NULL));
    char *text = dw_metrics_render();
    assert_null(strstr(text, "\ndriftwatch_x "));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_final_digest_adds_to_totals, setup),
        cmocka_unit_test_setup(test_close_digest_has_no_totals, setup),
        cmocka_unit_test_setup(test_malformed_prev_totals_restart, setup),
        cmocka_unit_test_setup(test_publish_sets_series, setup),
        cmocka_unit_test_setup(test_max_series_bound, setup),
        cmocka_unit_test_setup(test_version_named_all, setup),
        cmocka_unit_test_setup(test_find_does_not_create, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
