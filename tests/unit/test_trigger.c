/*
 * test_trigger.c - retraining trigger guardrails and message (dw_trigger).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/core/dw_trigger.h"

#include "dw_test.h"

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

static int g_final; /* stage of the reports built by report() */

static json_t *report(int64_t start, int64_t predictions)
{
    return json_pack("{s:s,s:b,s:I,s:s,s:s,s:I,s:I,s:{s:{s:I}},s:{s:b}}", "model", "fraud", "final",
                     g_final, "window_start_ms", (json_int_t)start, "window_start", "x",
                     "window_end", "y", "predictions", (json_int_t)predictions, "labeled",
                     (json_int_t)0, "versions", "1.0.0", "predictions", (json_int_t)predictions,
                     "drift", "dataset", 1);
}

static json_t *firing(const char *rule)
{
    return json_pack("[{s:s,s:n,s:s,s:b,s:n,s:s}]", "rule", rule, "feature", "severity", "critical",
                     "value", 1, "threshold", "starts_at", "2026-01-01T00:00:00Z");
}

static void config(struct dw_config *cfg)
{
    dw_config_defaults(cfg);
    cfg->rules = dw_rules_defaults(&cfg->n_rules);
    g_final = 0;
    cfg->trigger_cooldown_ms = 60 * MIN_MS;
    cfg->trigger_min_samples = 100;
    cfg->trigger_max_per_day = 2;
}

/* Decides window `start`; returns 1 when it triggers (and checks why is NULL then). */
static int decide(const struct dw_config *cfg, struct dw_trigger_state *st, int64_t start,
                  int64_t n, const char *rule, const char **why)
{
    json_t *rep = report(start, n);
    json_t *f = firing(rule);
    json_t *reasons = dw_trigger_decide(cfg, rep, f, st, why);
    int fired = reasons != NULL;
    if (fired) {
        assert_null(*why);
        assert_int_equal(json_array_size(reasons), 1);
    }
    json_decref(reasons);
    json_decref(f);
    json_decref(rep);
    return fired;
}

static void test_cooldown_one_trigger_for_ten_windows(void **state)
{
    struct dw_config cfg;
    config(&cfg);
    struct dw_trigger_state st;
    assert_int_equal(dw_trigger_state_load(&st, NULL, NULL, 0), 0);
    const char *why;
    int fired = 0;
    for (int i = 0; i < 10; i++) {
        fired += decide(&cfg, &st, T0 + i * MIN_MS, 500, "dataset_drift", &why);
        if (i > 0) {
            assert_string_equal(why, "triggers.cooldown");
        }
    }
    assert_int_equal(fired, 1);
    /* the same windows again (an evaluation repeated after a crash, state reloaded) */
    char *text = dw_trigger_state_dump(&st);
    struct dw_trigger_state back;
    assert_int_equal(dw_trigger_state_load(&back, text, NULL, 0), 0);
    free(text);
    assert_int_equal(back.last_start_ms, T0);
    assert_false(decide(&cfg, &back, T0 + 5 * MIN_MS, 500, "dataset_drift", &why));
    /* a window after the cooldown triggers again */
    assert_true(decide(&cfg, &back, T0 + 60 * MIN_MS, 500, "dataset_drift", &why));
    /* an earlier window re-evaluated never triggers twice */
    assert_false(decide(&cfg, &back, T0, 500, "dataset_drift", &why));
    dw_config_free(&cfg);
}

static void test_min_samples_and_max_per_day(void **state)
{
    struct dw_config cfg;
    config(&cfg);
    cfg.trigger_cooldown_ms = 0;
    struct dw_trigger_state st;
    char err[256] = "";
    assert_int_equal(dw_trigger_state_load(&st, "not json", err, sizeof(err)), -1);
    assert_contains(err, "trigger state: not a JSON object");
    assert_int_equal(st.last_start_ms, DW_NO_TS);
    const char *why;
    assert_false(decide(&cfg, &st, T0, 99, "dataset_drift", &why));
    assert_string_equal(why, "triggers.min_samples");
    assert_int_equal(st.last_start_ms, DW_NO_TS); /* a suppressed window changes nothing */
    assert_true(decide(&cfg, &st, T0 + MIN_MS, 100, "dataset_drift", &why));
    assert_true(decide(&cfg, &st, T0 + 2 * MIN_MS, 100, "dataset_drift", &why));
    assert_false(decide(&cfg, &st, T0 + 3 * MIN_MS, 100, "dataset_drift", &why));
    assert_string_equal(why, "triggers.max_per_day");
    assert_int_equal(st.count, 2);
    /* the next UTC day starts a new count */
    assert_true(decide(&cfg, &st, T0 + DAY_MS, 100, "dataset_drift", &why));
    assert_int_equal(st.count, 1);
    dw_config_free(&cfg);
}

/*
 * A guardrail state read from Redis that dump did not write is refused with the field named,
 * and the state is "no trigger yet": a negative or huge count (which let the daily limit be
 * passed, or overflowed count + 1), a day that is not the window's, wrong types. A state far
 * in the past no longer overflows the cooldown arithmetic.
 */
static void test_state_hostile(void **state)
{
    struct dw_config cfg;
    config(&cfg);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"last_start_ms\": \"1\", \"day\": 0, \"count\": 1}", "last_start_ms"},
        {"{\"last_start_ms\": -9223372036854775807, \"day\": -106751991168, \"count\": 1}",
         "last_start_ms"},
        {"{\"last_start_ms\": 86400000, \"day\": 0, \"count\": 1}", "day"},
        {"{\"last_start_ms\": 86400000, \"day\": 1, \"count\": -5}", "count"},
        {"{\"last_start_ms\": 86400000, \"day\": 1, \"count\": 0}", "count"},
        {"{\"last_start_ms\": 86400000, \"day\": 1, \"count\": 9223372036854775807}", "count"},
        {"{\"last_start_ms\": 86400000, \"day\": 1}", "count"},
        {"{\"last_start_ms\": 1, \"last_start_ms\": 2, \"day\": 0, \"count\": 1}", "JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dw_trigger_state st = {5, 5, 5};
        char err[256] = "";
        if (dw_trigger_state_load(&st, bad[i].text, err, sizeof(err)) != -1) {
            fail_msg("accepted: %s", bad[i].text);
        }
        if (!strstr(err, bad[i].want)) {
            fail_msg("%s: message \"%s\" does not name %s", bad[i].text, err, bad[i].want);
        }
        assert_int_equal(st.last_start_ms, DW_NO_TS);
        assert_int_equal(st.count, 0);
    }
    struct dw_trigger_state st;
    assert_int_equal(dw_trigger_state_load(&st, "{}", NULL, 0), 0);
    assert_int_equal(st.last_start_ms, DW_NO_TS);
    /* a trigger at the earliest window there is, then one now: no overflow, cooldown passed */
    char text[128];
    /* the earliest time a state may hold, -2^62: floor(-2^62 / 86400000) = -53375995584 */
    snprintf(text, sizeof(text),
             "{\"last_start_ms\": -4611686018427387904, \"day\": -53375995584, \"count\": 1}");
    assert_int_equal(dw_trigger_state_load(&st, text, NULL, 0), 0);
    const char *why;
    assert_true(decide(&cfg, &st, T0, 500, "dataset_drift", &why));
    dw_config_free(&cfg);
}

static void test_trigger_rules_and_disabled(void **state)
{
    struct dw_config cfg;
    config(&cfg);
    char *rules[] = {strdup("accuracy_drop")};
    cfg.trigger_rules = rules;
    cfg.n_trigger_rules = 1;
    struct dw_trigger_state st;
    assert_int_equal(dw_trigger_state_load(&st, NULL, NULL, 0), 0);
    const char *why = "x";
    assert_false(decide(&cfg, &st, T0, 500, "feature_drift", &why));
    assert_null(why); /* not a trigger rule: nothing to suppress */
    /* accuracy_drop reads the final report: its alerts trigger with final reports only */
    assert_false(decide(&cfg, &st, T0, 500, "accuracy_drop", &why));
    assert_null(why);
    g_final = 1;
    assert_true(decide(&cfg, &st, T0, 500, "accuracy_drop", &why));
    /* every rule (no triggers.rules): a close-stage alert seen in a final report is not one */
    free(rules[0]);
    cfg.trigger_rules = NULL;
    cfg.n_trigger_rules = 0;
    assert_false(decide(&cfg, &st, T0 + DAY_MS, 500, "feature_drift", &why));
    assert_null(why);
    cfg.triggers_enabled = 0;
    assert_false(decide(&cfg, &st, T0 + DAY_MS, 500, "accuracy_drop", &why));
    assert_string_equal(why, "triggers.enabled is false");
    dw_config_free(&cfg);
}

/* An SLA breach is not something retraining fixes: with triggers.rules empty ("every rule")
 * the rules of models.<m>.sla do not trigger; named in triggers.rules they do. */
static void test_sla_rules_trigger_only_when_named(void **state)
{
    (void)state;
    struct dw_config cfg;
    char err[256];
    const char *yaml = "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                       "models: {fraud: {sla: {latency_p95_ms: 250}}}\n";
    assert_int_equal(dw_config_load_string(&cfg, yaml, err, sizeof(err)), 0);
    struct dw_trigger_state st;
    assert_int_equal(dw_trigger_state_load(&st, NULL, NULL, 0), 0);
    const char *why = "x";
    g_final = 0;
    assert_false(decide(&cfg, &st, T0, 500, "sla_latency_p95", &why));
    assert_null(why);
    assert_true(decide(&cfg, &st, T0, 500, "feature_drift", &why)); /* still every other rule */
    dw_config_free(&cfg);

    yaml = "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
           "models: {fraud: {sla: {latency_p95_ms: 250}}}\n"
           "triggers: {rules: [sla_latency_p95], cooldown: 0s}\n";
    assert_int_equal(dw_config_load_string(&cfg, yaml, err, sizeof(err)), 0);
    assert_int_equal(dw_trigger_state_load(&st, NULL, NULL, 0), 0);
    assert_true(decide(&cfg, &st, T0, 500, "sla_latency_p95", &why));
    dw_config_free(&cfg);
}

static void test_message(void **state)
{
    json_t *rep = report(T0, 500);
    json_t *reasons = firing("dataset_drift");
    json_t *m1 = dw_trigger_message("prod", rep, reasons, T0 + 5 * MIN_MS);
    json_t *m2 = dw_trigger_message("prod", rep, reasons, T0 + 9 * MIN_MS);
    const char *id = json_string_value(json_object_get(m1, "trigger_id"));
    assert_int_equal(strlen(id), 32);
    /* deterministic: same group, model and window give the same id */
    assert_string_equal(id, json_string_value(json_object_get(m2, "trigger_id")));
    assert_string_equal(json_string_value(json_object_get(m1, "model_version")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(m1, "created_at")),
                        "2026-01-01T00:05:00Z");
    assert_true(json_equal(json_object_get(m1, "reasons"), reasons));
    json_t *ev = json_object_get(m1, "evidence");
    assert_int_equal(json_integer_value(json_object_get(ev, "predictions")), 500);
    assert_true(json_is_true(json_object_get(json_object_get(ev, "drift"), "dataset")));
    assert_int_equal(json_object_size(m1), 9);
    json_t *m3 = dw_trigger_message("staging", rep, reasons, T0);
    assert_string_not_equal(id, json_string_value(json_object_get(m3, "trigger_id")));
    json_decref(m1);
    json_decref(m2);
    json_decref(m3);
    json_decref(reasons);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cooldown_one_trigger_for_ten_windows),
        cmocka_unit_test(test_min_samples_and_max_per_day),
        cmocka_unit_test(test_state_hostile),
        cmocka_unit_test(test_trigger_rules_and_disabled),
        cmocka_unit_test(test_sla_rules_trigger_only_when_named),
        cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
