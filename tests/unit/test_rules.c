/*
 * test_rules.c - alert rules: condition parsing, and scripted series of 1-minute windows
 * checked notification by notification (for, keep_firing_for, repeat_interval, inhibition,
 * grouping, labels, templates). Every step runs twice, once on the in-memory state and once on
 * the state read back from its JSON text by dw_rules_state_load (as from Redis): both must give
 * identical results. A stored state that the steps did not write is refused instance by
 * instance, and no stored number makes a step overflow.
 */
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
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/io/dw_config_load.h"

#include "dw_test.h"

#define T0 1772323200000LL /* 2026-03-01T00:00:00Z, milliseconds */
#define MINUTE_MS 60000LL  /* window length, milliseconds */
#define DESC_MAX 1024      /* bytes of an alert list description */

/* ---------------------------------------------------------------------------------------------
 * Reports
 */

/* One window of model "fraud" unless said otherwise. */
struct win {
    const char *model;     /* NULL = "fraud" */
    int final;             /* the label-horizon report */
    int dataset;           /* drift.dataset */
    double accuracy;       /* performance.accuracy; < 0 = null */
    int64_t predictions;   /* predictions */
    const char *drifting;  /* comma-separated drifting features among age, amount, country */
    int64_t empty_windows; /* > 0: the report of a run of this many empty windows (no data) */
};

static json_t *report_of(int k, const struct win *w)
{
    static const char *const names[] = {"age", "amount", "country"};
    char ws[48];
    char we[48];
    int64_t start = T0 + (int64_t)k * MINUTE_MS;
    dw_time_format_rfc3339(start, ws, sizeof(ws));
    int64_t n = w->empty_windows > 0 ? w->empty_windows : 1;
    dw_time_format_rfc3339(start + n * MINUTE_MS, we, sizeof(we));
    json_t *r =
        json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:{s:o}, s:{}, s:{s:f, s:[], s:b},"
                  " s:{s:f, s:f, s:b}, s:{s:s, s:f, s:f, s:b}, s:n}",
                  "model", w->model ? w->model : "fraud", "window_start", ws, "window_end", we,
                  "window_start_ms", (json_int_t)start, "final", w->final, "predictions",
                  (json_int_t)w->predictions, "performance", "accuracy",
                  w->accuracy < 0 ? json_null() : json_real(w->accuracy), "features", "drift",
                  "share", 0.0, "features", "dataset", w->dataset, "accuracy_drop", "value", 0.01,
                  "threshold", 0.05, "alert", 0, "performance_drop", "metric", "accuracy", "value",
                  0.01, "threshold", 0.05, "alert", 0, "latency_ms");
    assert_non_null(r);
    if (w->empty_windows > 0) {
        json_object_set_new(r, "empty_windows", json_integer((json_int_t)w->empty_windows));
    }
    json_t *feats = json_object_get(r, "features");
    for (size_t i = 0; i < DW_ARRAY_SIZE(names); i++) {
        int drift = 0;
        const char *d = w->drifting ? w->drifting : "";
        size_t len = strlen(names[i]);
        while (*d) {
            size_t seg = strcspn(d, ",");
            if (seg == len && memcmp(d, names[i], len) == 0) {
                drift = 1;
            }
            d += seg;
            if (*d == ',') {
                d++;
            }
        }
        json_object_set_new(feats, names[i],
                            json_pack("{s:s, s:s, s:f, s:f, s:b}", "type", "numeric", "method",
                                      "ks", "score", drift ? 0.001 : 0.5, "threshold", 0.05,
                                      "drift", drift));
    }
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Rules
 */

static struct dw_rule *rules_new(size_t n)
{
    return dw_calloc(n, sizeof(struct dw_rule));
}

static void rule_set(struct dw_rule *r, const char *name, const char *expr, int64_t for_w,
                     int64_t keep_w, int64_t repeat_ms)
{
    char err[256];
    r->name = dw_strdup(name);
    r->expr_text = dw_strdup(expr);
    assert_int_equal(dw_rule_expr_parse(expr, &r->expr, err, sizeof(err)), 0);
    r->stage = DW_STAGE_AUTO;
    r->for_windows = for_w;
    r->keep_firing_windows = keep_w;
    r->repeat_interval_ms = repeat_ms;
    r->severity = DW_SEV_WARNING;
}

/* ---------------------------------------------------------------------------------------------
 * Harness: the state kept in memory and the same state as text, stepped side by side.
 */

struct harness {
    const struct dw_rule *rules;
    size_t n_rules;
    json_t *state;
    char *text;
};

static void h_init(struct harness *h, const struct dw_rule *rules, size_t n)
{
    h->rules = rules;
    h->n_rules = n;
    h->state = json_object();
    h->text = json_dumps(h->state, JSON_COMPACT);
}

static void h_free(struct harness *h)
{
    json_decref(h->state);
    free(h->text);
}

/* Steps window k; returns the notification (the caller frees it). */
static json_t *h_step(struct harness *h, int k, const struct win *w)
{
    json_t *report = report_of(k, w);
    json_t *a = dw_rules_step("g", h->rules, h->n_rules, report, h->state);

    json_t *loaded = NULL;
    char err[256];
    if (dw_rules_state_load(w->model ? w->model : "fraud", h->text, &loaded, err, sizeof(err))) {
        fail_msg("state read back refused: %s", err);
    }
    json_t *b = dw_rules_step("g", h->rules, h->n_rules, report, loaded);
    if (a || b) {
        assert_non_null(a);
        assert_non_null(b);
        assert_true(json_equal(a, b));
    }
    assert_true(json_equal(h->state, loaded));
    free(h->text);
    h->text = json_dumps(loaded, JSON_COMPACT);
    json_decref(loaded);
    json_decref(b);
    json_decref(report);
    return a;
}

/* "rule[/feature]:status[+repeat], ..." of a notification's "alerts" or "firing" list;
 * "(none)" for no notification. */
static const char *desc(const json_t *notif, const char *list)
{
    static char buf[DESC_MAX];
    if (!notif) {
        return "(none)";
    }
    json_t *arr = json_object_get(notif, list);
    assert_true(json_is_array(arr));
    buf[0] = '\0';
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        const char *feature = json_string_value(json_object_get(a, "feature"));
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof(buf) - len, "%s%s%s%s:%s%s", i ? ", " : "",
                 json_string_value(json_object_get(a, "rule")), feature ? "/" : "",
                 feature ? feature : "", json_string_value(json_object_get(a, "status")),
                 json_is_true(json_object_get(a, "repeat")) ? "+repeat" : "");
    }
    return buf;
}

static void expect(const json_t *notif, const char *alerts, const char *firing)
{
    assert_string_equal(desc(notif, "alerts"), alerts);
    if (notif) {
        assert_string_equal(desc(notif, "firing"), firing);
    }
}

static const char *astr(const json_t *notif, const char *list, size_t i, const char *key)
{
    json_t *a = json_array_get(json_object_get(notif, list), i);
    assert_non_null(a);
    return json_string_value(json_object_get(a, key));
}

static json_t *aget(const json_t *notif, const char *list, size_t i, const char *key)
{
    json_t *a = json_array_get(json_object_get(notif, list), i);
    assert_non_null(a);
    return json_object_get(a, key);
}

static const char *time_of(int k)
{
    static char buf[48];
    dw_time_format_rfc3339(T0 + (int64_t)k * MINUTE_MS, buf, sizeof(buf));
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

static void expect_parse_error(const char *text, const char *needle)
{
    struct dw_rule_expr e;
    char err[512] = "";
    char quoted[300];
    assert_int_equal(dw_rule_expr_parse(text, &e, err, sizeof(err)), -1);
    if (!strstr(err, needle)) {
        fail_msg("error for \"%s\" is \"%s\", expected \"%s\" in it", text, err, needle);
    }
    snprintf(quoted, sizeof(quoted), "alerting rule condition \"%s\"", text);
    if (!strstr(err, quoted)) {
        fail_msg("error \"%s\" does not quote the condition", err);
    }
}

static void test_expr_parse(void **unused)
{
    struct dw_rule_expr e;
    char err[256];

    assert_int_equal(dw_rule_expr_parse("features.*.drift", &e, err, sizeof(err)), 0);
    assert_string_equal(e.path, "features.*.drift");
    assert_int_equal(e.op, DW_OP_TRUE);

    assert_int_equal(dw_rule_expr_parse("performance.accuracy < 0.8", &e, err, sizeof(err)), 0);
    assert_string_equal(e.path, "performance.accuracy");
    assert_int_equal(e.op, DW_OP_LT);
    assert_double_exact(e.threshold, 0.8);

    assert_int_equal(dw_rule_expr_parse("latency_ms.p95>250", &e, err, sizeof(err)), 0);
    assert_string_equal(e.path, "latency_ms.p95");
    assert_int_equal(e.op, DW_OP_GT);
    assert_double_exact(e.threshold, 250.0);

    assert_int_equal(dw_rule_expr_parse("  predictions == 0  ", &e, err, sizeof(err)), 0);
    assert_string_equal(e.path, "predictions");
    assert_int_equal(e.op, DW_OP_EQ);
    assert_double_exact(e.threshold, 0.0);

    assert_int_equal(dw_rule_expr_parse("a-b.c_d <= 1e-3", &e, err, sizeof(err)), 0);
    assert_string_equal(e.path, "a-b.c_d");
    assert_int_equal(e.op, DW_OP_LE);
    assert_double_exact(e.threshold, 1e-3);

    assert_int_equal(dw_rule_expr_parse("x >= -2.5", &e, err, sizeof(err)), 0);
    assert_int_equal(e.op, DW_OP_GE);
    assert_double_exact(e.threshold, -2.5);
    assert_int_equal(dw_rule_expr_parse("x != 1", &e, err, sizeof(err)), 0);
    assert_int_equal(e.op, DW_OP_NE);
    assert_int_equal(dw_rule_expr_parse("*.drift", &e, err, sizeof(err)), 0);

    expect_parse_error("performance.accuracy =< 0.8", "unknown operator '=<'");
    expect_parse_error("performance.accuracy = 0.8", "unknown operator '='");
    expect_parse_error("", "empty");
    expect_parse_error("   ", "empty");
    expect_parse_error("features.*.*.drift", "at most one '*'");
    expect_parse_error("features.a*.drift", "'*' must be a whole path segment");
    expect_parse_error("features..drift", "empty segment");
    expect_parse_error("features.", "empty segment");
    expect_parse_error("accuracy <", "missing number after '<'");
    expect_parse_error("accuracy < abc", "\"abc\" is not a number");
    expect_parse_error("accuracy < 1 2", "unexpected text \"2\" after the number");
    expect_parse_error("accuracy < 0.8x", "unexpected text \"x\"");
    expect_parse_error("accuracy < nan", "not a finite number");
    expect_parse_error("accuracy < 1e999", "not a finite number");
    expect_parse_error("accuracy drop", "unexpected character 'd' after the path");
    expect_parse_error("< 0.8", "missing path");
    expect_parse_error("feat#ures.x", "unexpected character '#' in the path");

    char long_path[DW_RULE_PATH_MAX + 8];
    char long_err[2 * DW_RULE_PATH_MAX];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(dw_rule_expr_parse(long_path, &e, long_err, sizeof(long_err)), -1);
    assert_contains(long_err, "path longer than 255 bytes");
    long_path[DW_RULE_PATH_MAX - 1] = '\0'; /* 255 bytes: accepted */
    assert_int_equal(dw_rule_expr_parse(long_path, &e, long_err, sizeof(long_err)), 0);
    assert_int_equal(strlen(e.path), DW_RULE_PATH_MAX - 1);
}

static void test_stage_severity_defaults_fingerprint(void **unused)
{
    struct dw_rule r;
    memset(&r, 0, sizeof(r));
    static const struct {
        const char *expr;
        enum dw_rule_stage stage;
    } cases[] = {
        {"performance.accuracy < 0.8", DW_STAGE_FINAL},
        {"accuracy_drop.alert", DW_STAGE_FINAL},
        {"performance_drop.alert", DW_STAGE_FINAL},
        {"performance.drop.roc_auc > 0.05", DW_STAGE_FINAL},
        {"baseline.accuracy < 0.8", DW_STAGE_FINAL},
        {"rolling.performance.f1 < 0.5", DW_STAGE_FINAL},
        {"labeled < 10", DW_STAGE_FINAL},
        {"unlabeled_share > 0.5", DW_STAGE_FINAL},
        {"change_detectors.adwin.drift", DW_STAGE_FINAL},
        {"versions.a.labeled < 1", DW_STAGE_FINAL},
        {"labeledx < 10", DW_STAGE_CLOSE},
        {"features.*.drift", DW_STAGE_CLOSE},
        {"drift.dataset", DW_STAGE_CLOSE},
        {"predictions == 0", DW_STAGE_CLOSE},
        {"latency_ms.p95 > 250", DW_STAGE_CLOSE},
        {"prediction_drift.score.drift", DW_STAGE_CLOSE},
        {"label_drift.drift", DW_STAGE_FINAL},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        assert_int_equal(dw_rule_expr_parse(cases[i].expr, &r.expr, NULL, 0), 0);
        r.stage = DW_STAGE_AUTO;
        assert_int_equal(dw_rule_stage_of(&r), cases[i].stage);
    }
    r.stage = DW_STAGE_CLOSE;
    assert_int_equal(dw_rule_stage_of(&r), DW_STAGE_CLOSE);
    assert_int_equal(dw_rule_expr_parse("performance.accuracy < 0.8", &r.expr, NULL, 0), 0);
    assert_int_equal(dw_rule_stage_of(&r), DW_STAGE_CLOSE);
    r.stage = DW_STAGE_FINAL;
    assert_int_equal(dw_rule_expr_parse("features.*.drift", &r.expr, NULL, 0), 0);
    assert_int_equal(dw_rule_stage_of(&r), DW_STAGE_FINAL);

    assert_string_equal(dw_severity_name(DW_SEV_WARNING), "warning");
    assert_string_equal(dw_severity_name(DW_SEV_CRITICAL), "critical");

    size_t n = 0;
    struct dw_rule *d = dw_rules_defaults(&n);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].name, "feature_drift");
    assert_string_equal(d[0].expr_text, "features.*.drift");
    assert_string_equal(d[0].expr.path, "features.*.drift");
    assert_int_equal(d[0].expr.op, DW_OP_TRUE);
    assert_int_equal(d[0].severity, DW_SEV_WARNING);
    assert_false(d[0].inhibits_features);
    assert_string_equal(d[1].name, "dataset_drift");
    assert_string_equal(d[1].expr.path, "drift.dataset");
    assert_int_equal(d[1].severity, DW_SEV_CRITICAL);
    assert_true(d[1].inhibits_features);
    assert_string_equal(d[2].name, "accuracy_drop");
    assert_string_equal(d[2].expr.path, "performance_drop.alert");
    assert_int_equal(d[2].severity, DW_SEV_CRITICAL);
    assert_int_equal(dw_rule_stage_of(&d[2]), DW_STAGE_FINAL);
    for (size_t i = 0; i < n; i++) {
        assert_null(d[i].model);
        assert_int_equal(d[i].for_windows, 1);
        assert_int_equal(d[i].keep_firing_windows, 0);
        assert_int_equal(d[i].repeat_interval_ms, 0);
        assert_null(d[i].summary);
    }
    dw_rules_free(d, n);
    dw_rules_free(NULL, 0);

    /* Expected values from Python: hashlib.sha256(b"fraud\x1ffeature_drift\x1famount"). */
    char fp[17];
    dw_rule_fingerprint("fraud", "feature_drift", "amount", fp);
    assert_string_equal(fp, "482f059769d384aa");
    dw_rule_fingerprint("fraud", "feature_drift", "", fp);
    assert_string_equal(fp, "14aa5098c085149f");
}

/* for: 3 -> pending twice, fires in the third window; then pending -> inactive is silent. */
static void test_for_windows(void **unused)
{
    struct dw_rule *rules = rules_new(1);
    rule_set(&rules[0], "accuracy_low", "performance.accuracy < 0.8", 3, 0, 0);
    struct harness h;
    h_init(&h, rules, 1);
    struct win low = {.final = 1, .accuracy = 0.71, .predictions = 100};
    struct win ok = {.final = 1, .accuracy = 0.9, .predictions = 100};

    json_t *n = h_step(&h, 0, &low);
    assert_null(n);
    assert_int_equal(json_object_size(h.state), 1);
    char fp[17];
    dw_rule_fingerprint("fraud", "accuracy_low", "", fp);
    json_t *inst = json_object_get(h.state, fp);
    assert_string_equal(json_string_value(json_object_get(inst, "state")), "pending");
    assert_int_equal(json_integer_value(json_object_get(inst, "active")), 1);
    assert_null(h_step(&h, 1, &low));
    inst = json_object_get(h.state, fp);
    assert_string_equal(json_string_value(json_object_get(inst, "state")), "pending");
    assert_int_equal(json_integer_value(json_object_get(inst, "active")), 2);

    n = h_step(&h, 2, &low);
    expect(n, "accuracy_low:firing", "accuracy_low:firing");
    assert_string_equal(json_string_value(json_object_get(n, "id")),
                        "3384f06eee106c40c9d088beb9c956f7");
    char *id = dw_idempotency_key("g", "fraud", T0 + 2 * MINUTE_MS, "alerts-final");
    assert_string_equal(json_string_value(json_object_get(n, "id")), id);
    free(id);
    assert_string_equal(json_string_value(json_object_get(n, "model")), "fraud");
    assert_string_equal(json_string_value(json_object_get(n, "stage")), "final");
    assert_string_equal(json_string_value(json_object_get(n, "window_start")), time_of(2));
    assert_string_equal(json_string_value(json_object_get(n, "window_end")), time_of(3));
    assert_int_equal(json_integer_value(json_object_get(n, "window_start_ms")), T0 + 2 * MINUTE_MS);
    assert_string_equal(astr(n, "alerts", 0, "fingerprint"), fp);
    assert_true(json_is_null(aget(n, "alerts", 0, "feature")));
    assert_string_equal(astr(n, "alerts", 0, "severity"), "warning");
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "value")), 0.71);
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "threshold")), 0.8);
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(2));
    assert_null(aget(n, "alerts", 0, "ends_at"));
    json_t *labels = aget(n, "alerts", 0, "labels");
    assert_int_equal(json_object_size(labels), 3);
    assert_string_equal(json_string_value(json_object_get(labels, "alertname")), "accuracy_low");
    assert_string_equal(json_string_value(json_object_get(labels, "model")), "fraud");
    assert_string_equal(json_string_value(json_object_get(labels, "severity")), "warning");
    json_t *ann = aget(n, "alerts", 0, "annotations");
    assert_int_equal(json_object_size(ann), 1);
    assert_string_equal(json_string_value(json_object_get(ann, "summary")),
                        "fraud: performance.accuracy 0.71 < 0.8");
    assert_true(json_equal(json_array_get(json_object_get(n, "alerts"), 0),
                           json_array_get(json_object_get(n, "firing"), 0)));
    json_decref(n);

    /* Still true: nothing new to notify, the firing list stays. */
    n = h_step(&h, 3, &low);
    expect(n, "", "accuracy_low:firing");
    json_decref(n);
    json_decref(h_step(&h, 4, &ok)); /* resolves (keep 0): checked in test_keep_firing */
    assert_int_equal(json_object_size(h.state), 0);

    /* pending -> inactive: no notification, the count starts over. */
    assert_null(h_step(&h, 5, &low));
    assert_null(h_step(&h, 6, &low));
    assert_null(h_step(&h, 7, &ok));
    assert_int_equal(json_object_size(h.state), 0);
    assert_null(h_step(&h, 8, &low));
    assert_null(h_step(&h, 9, &low));
    n = h_step(&h, 10, &low);
    expect(n, "accuracy_low:firing", "accuracy_low:firing");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(10));
    json_decref(n);

    h_free(&h);
    dw_rules_free(rules, 1);
}

/* keep_firing_for: 2 -> firing through two clear windows, resolved on the third. */
static void test_keep_firing(void **unused)
{
    struct dw_rule *rules = rules_new(1);
    rule_set(&rules[0], "no_data", "predictions == 0", 1, 2, 0);
    rules[0].severity = DW_SEV_CRITICAL;
    struct harness h;
    h_init(&h, rules, 1);
    struct win empty = {.accuracy = -1, .predictions = 0};
    struct win data = {.accuracy = -1, .predictions = 100};

    json_t *n = h_step(&h, 0, &empty);
    expect(n, "no_data:firing", "no_data:firing");
    assert_string_equal(json_string_value(json_object_get(n, "stage")), "close");
    assert_true(json_is_integer(aget(n, "alerts", 0, "value")));
    assert_int_equal(json_integer_value(aget(n, "alerts", 0, "value")), 0);
    assert_string_equal(astr(n, "alerts", 0, "severity"), "critical");
    json_decref(n);

    n = h_step(&h, 1, &data);
    expect(n, "", "no_data:firing");
    json_decref(n);
    n = h_step(&h, 2, &data);
    expect(n, "", "no_data:firing");
    json_decref(n);
    n = h_step(&h, 3, &data);
    expect(n, "no_data:resolved", "");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(0));
    assert_string_equal(astr(n, "alerts", 0, "ends_at"), time_of(4)); /* window 3's end */
    assert_int_equal(json_integer_value(aget(n, "alerts", 0, "value")), 100);
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 0, "annotations"), "summary")),
        "fraud: predictions == 0 resolved (now 100)");
    json_decref(n);
    assert_int_equal(json_object_size(h.state), 0);
    assert_null(h_step(&h, 4, &data));

    /* A true window during keep_firing_for starts the count of clear windows over. */
    n = h_step(&h, 5, &empty);
    expect(n, "no_data:firing", "no_data:firing");
    json_decref(n);
    const struct win *seq[] = {&data, &empty, &data, &data};
    for (size_t i = 0; i < DW_ARRAY_SIZE(seq); i++) {
        n = h_step(&h, 6 + (int)i, seq[i]);
        expect(n, "", "no_data:firing");
        json_decref(n);
    }
    n = h_step(&h, 10, &data);
    expect(n, "no_data:resolved", "");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(5));
    json_decref(n);

    h_free(&h);
    dw_rules_free(rules, 1);
}

/*
 * A run of empty windows is one report ("empty_windows": n) that counts as n windows: `for` and
 * keep_firing_for count across it exactly as over n single reports, and the alert's starts_at /
 * ends_at name the window inside the run where it fired / resolved.
 */
static void test_empty_run(void **unused)
{
    struct dw_rule *rules = rules_new(3);
    rule_set(&rules[0], "no_data", "predictions == 0", 5, 0, 10 * MINUTE_MS);
    rule_set(&rules[1], "dataset_drift", "drift.dataset", 1, 2, 0);
    rule_set(&rules[2], "low_volume", "predictions < 100", 3, 0, 0);
    struct harness h;
    h_init(&h, rules, 3);
    struct win drift = {.dataset = 1, .accuracy = -1, .predictions = 500};
    struct win thin = {.accuracy = -1, .predictions = 50};
    struct win data = {.accuracy = -1, .predictions = 500};

    json_t *n = h_step(&h, 0, &drift);
    expect(n, "dataset_drift:firing", "dataset_drift:firing");
    json_decref(n);
    /* windows 1..12 empty, one report: no_data fires in its 5th window (window 5), drift
     * resolves after keep_firing_for (2) clear windows, in window 3, low_volume fires in the
     * run's 3rd window */
    struct win gap12 = {.accuracy = -1, .predictions = 0, .empty_windows = 12};
    n = h_step(&h, 1, &gap12);
    expect(n, "no_data:firing, dataset_drift:resolved, low_volume:firing",
           "no_data:firing, low_volume:firing");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(5));
    assert_string_equal(astr(n, "alerts", 1, "ends_at"), time_of(4)); /* window 3's end */
    assert_string_equal(astr(n, "alerts", 2, "starts_at"), time_of(3));
    assert_string_equal(json_string_value(json_object_get(n, "window_start")), time_of(1));
    assert_string_equal(json_string_value(json_object_get(n, "window_end")), time_of(13));
    json_decref(n);
    /* the next window has data: both resolve (keep_firing_for 0), at its end */
    n = h_step(&h, 13, &data);
    expect(n, "no_data:resolved, low_volume:resolved", "");
    assert_string_equal(astr(n, "alerts", 0, "ends_at"), time_of(14));
    json_decref(n);

    /* `for` counts across a gap reported in two parts as over the single windows:
     * low_volume: a thin window (1 of 3), a run of 1 (2 of 3), a run of 4: fires in its first
     * window; no_data: 1 + 4 = 5 empty windows: fires in window 19, the run's last */
    assert_null(h_step(&h, 14, &thin));
    struct win gap1 = {.accuracy = -1, .predictions = 0, .empty_windows = 1};
    assert_null(h_step(&h, 15, &gap1));
    struct win gap4 = {.accuracy = -1, .predictions = 0, .empty_windows = 4};
    n = h_step(&h, 16, &gap4);
    expect(n, "no_data:firing, low_volume:firing", "no_data:firing, low_volume:firing");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(19));
    assert_string_equal(astr(n, "alerts", 1, "starts_at"), time_of(16));
    json_decref(n);
    json_t *inst = NULL;
    const char *key;
    json_object_foreach(h.state, key, inst)
    {
        if (strcmp(json_string_value(json_object_get(inst, "rule")), "no_data") == 0) {
            break;
        }
    }
    assert_non_null(inst);
    assert_int_equal(json_integer_value(json_object_get(inst, "active")), 5);
    assert_int_equal(json_integer_value(json_object_get(inst, "fired_ms")), T0 + 19 * MINUTE_MS);

    /* repeat_interval (10 windows) is measured to a run's last window: fired in 19 (notified
     * by the report ending with window 19), a run 20..30 ends 11 windows later: one repeat */
    struct win gap11 = {.accuracy = -1, .predictions = 0, .empty_windows = 11};
    n = h_step(&h, 20, &gap11);
    expect(n, "no_data:firing+repeat", "no_data:firing+repeat, low_volume:firing");
    json_decref(n);

    h_free(&h);
    dw_rules_free(rules, 3);
}

/* repeat_interval 10 minutes on 1-minute windows: again at +10 windows, not before. */
static void test_repeat_interval(void **unused)
{
    struct dw_rule *rules = rules_new(1);
    rule_set(&rules[0], "dataset_drift", "drift.dataset", 1, 0, 10 * MINUTE_MS);
    struct harness h;
    h_init(&h, rules, 1);
    struct win drift = {.dataset = 1, .accuracy = -1, .predictions = 100};

    json_t *n = h_step(&h, 0, &drift);
    expect(n, "dataset_drift:firing", "dataset_drift:firing");
    assert_true(json_is_true(aget(n, "alerts", 0, "value")));
    assert_true(json_is_null(aget(n, "alerts", 0, "threshold")));
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 0, "annotations"), "summary")),
        "fraud: drift.dataset is true");
    json_decref(n);
    for (int k = 1; k < 10; k++) {
        n = h_step(&h, k, &drift);
        expect(n, "", "dataset_drift:firing");
        json_decref(n);
    }
    n = h_step(&h, 10, &drift);
    expect(n, "dataset_drift:firing+repeat", "dataset_drift:firing+repeat");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(0));
    json_decref(n);
    for (int k = 11; k < 20; k++) {
        n = h_step(&h, k, &drift);
        expect(n, "", "dataset_drift:firing");
        json_decref(n);
    }
    n = h_step(&h, 20, &drift);
    expect(n, "dataset_drift:firing+repeat", "dataset_drift:firing+repeat");
    json_decref(n);

    h_free(&h);
    dw_rules_free(rules, 1);
}

/* Inhibition: dataset drift mutes feature alerts; muted ones are notified when it resolves. */
static void test_inhibition(void **unused)
{
    struct dw_rule *rules = rules_new(2);
    rule_set(&rules[0], "feature_drift", "features.*.drift", 1, 0, 0);
    rule_set(&rules[1], "dataset_drift", "drift.dataset", 1, 0, 0);
    rules[1].inhibits_features = 1;
    rules[1].severity = DW_SEV_CRITICAL;
    struct harness h;
    h_init(&h, rules, 2);

    struct win w0 = {.accuracy = -1, .predictions = 100, .drifting = "amount"};
    json_t *n = h_step(&h, 0, &w0);
    expect(n, "feature_drift/amount:firing", "feature_drift/amount:firing");
    json_decref(n);

    /* The dataset fires: age fires muted, amount (notified) leaves the firing list. */
    struct win w1 = {.dataset = 1, .accuracy = -1, .predictions = 100, .drifting = "age,amount"};
    n = h_step(&h, 1, &w1);
    expect(n, "dataset_drift:firing", "dataset_drift:firing");
    json_decref(n);

    /* age resolves while muted and never notified: no resolved notice; country fires muted. */
    struct win w2 = {
        .dataset = 1, .accuracy = -1, .predictions = 100, .drifting = "amount,country"};
    n = h_step(&h, 2, &w2);
    expect(n, "", "dataset_drift:firing");
    json_decref(n);
    assert_int_equal(json_object_size(h.state), 3); /* amount, country, dataset */

    /* The dataset resolves: country (muted) is notified now, amount is not notified again. */
    struct win w3 = {.accuracy = -1, .predictions = 100, .drifting = "amount,country"};
    n = h_step(&h, 3, &w3);
    expect(n, "feature_drift/country:firing, dataset_drift:resolved",
           "feature_drift/amount:firing, feature_drift/country:firing");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(2));
    assert_false(json_is_true(aget(n, "alerts", 0, "repeat")));
    assert_string_equal(astr(n, "alerts", 1, "ends_at"), time_of(4));
    json_decref(n);

    /* Inhibited again: a notified feature that resolves still gets its resolved notice. */
    struct win w4 = {.dataset = 1, .accuracy = -1, .predictions = 100, .drifting = "country"};
    n = h_step(&h, 4, &w4);
    expect(n, "feature_drift/amount:resolved, dataset_drift:firing", "dataset_drift:firing");
    json_decref(n);

    /* Everything clears. */
    struct win w5 = {.accuracy = -1, .predictions = 100};
    n = h_step(&h, 5, &w5);
    expect(n, "feature_drift/country:resolved, dataset_drift:resolved", "");
    json_decref(n);
    assert_int_equal(json_object_size(h.state), 0);

    /* Feature and dataset fire together: the feature is muted from the start, and resolves
     * silently together with the dataset. */
    n = h_step(&h, 6, &w4);
    expect(n, "dataset_drift:firing", "dataset_drift:firing");
    json_decref(n);
    n = h_step(&h, 7, &w5);
    expect(n, "dataset_drift:resolved", "");
    json_decref(n);

    h_free(&h);
    dw_rules_free(rules, 2);
}

/* Two features in one window: one notification, two alerts; labels, templates, summaries. */
static void test_grouping_labels_templates(void **unused)
{
    struct dw_rule *rules = rules_new(2);
    rule_set(&rules[0], "drift_tpl", "features.*.drift", 1, 0, 0);
    rules[0].labels = dw_calloc(2, sizeof(struct dw_rule_label));
    rules[0].n_labels = 2;
    rules[0].labels[0].key = dw_strdup("team");
    rules[0].labels[0].value = dw_strdup("risk");
    rules[0].labels[1].key = dw_strdup("severity"); /* the built-in label wins */
    rules[0].labels[1].value = dw_strdup("page");
    rules[0].summary =
        dw_strdup("{{ model }}/{{feature}}: {{value}} vs {{threshold}} "
                  "({{severity}}, {{labels.team}}, {{window_start}}..{{window_end}}) "
                  "{{unknown}} {{labels.nope}} {{rule}} {{ oops");
    rules[0].description = dw_strdup("{{labels.alertname}} on {{labels.feature}} "
                                     "({{report.model}}; {{report.predictions}} is no string)");
    rules[0].runbook_url = dw_strdup("https://runbooks.example/{{rule}}#{{ feature }}");
    rule_set(&rules[1], "feature_drift", "features.*.drift", 1, 0, 0);
    struct harness h;
    h_init(&h, rules, 2);

    struct win w0 = {.accuracy = -1, .predictions = 100, .drifting = "country,amount"};
    json_t *n = h_step(&h, 0, &w0);
    expect(n,
           "drift_tpl/amount:firing, drift_tpl/country:firing, "
           "feature_drift/amount:firing, feature_drift/country:firing",
           "drift_tpl/amount:firing, drift_tpl/country:firing, "
           "feature_drift/amount:firing, feature_drift/country:firing");

    char fp[17];
    dw_rule_fingerprint("fraud", "drift_tpl", "amount", fp);
    assert_string_equal(astr(n, "alerts", 0, "fingerprint"), fp);
    assert_string_equal(astr(n, "alerts", 0, "feature"), "amount");
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "value")), 0.001);
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "threshold")), 0.05);
    json_t *labels = aget(n, "alerts", 0, "labels");
    assert_int_equal(json_object_size(labels), 5);
    assert_string_equal(json_string_value(json_object_get(labels, "alertname")), "drift_tpl");
    assert_string_equal(json_string_value(json_object_get(labels, "model")), "fraud");
    assert_string_equal(json_string_value(json_object_get(labels, "feature")), "amount");
    assert_string_equal(json_string_value(json_object_get(labels, "severity")), "warning");
    assert_string_equal(json_string_value(json_object_get(labels, "team")), "risk");
    json_t *ann = aget(n, "alerts", 0, "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "summary")),
                        "fraud/amount: 0.001 vs 0.05 (warning, risk, "
                        "2026-03-01T00:00:00Z..2026-03-01T00:01:00Z) "
                        "{{unknown}} {{labels.nope}} drift_tpl {{ oops");
    assert_string_equal(json_string_value(json_object_get(ann, "description")),
                        "drift_tpl on amount (fraud; {{report.predictions}} is no string)");
    assert_string_equal(json_string_value(json_object_get(ann, "runbook_url")),
                        "https://runbooks.example/drift_tpl#amount");

    /* The built-in summary of a feature drift. */
    ann = aget(n, "alerts", 2, "annotations");
    assert_int_equal(json_object_size(ann), 1);
    assert_string_equal(json_string_value(json_object_get(ann, "summary")),
                        "fraud: feature amount drifted (ks 0.001 <= 0.05)");
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 3, "annotations"), "summary")),
        "fraud: feature country drifted (ks 0.001 <= 0.05)");
    json_decref(n);

    struct win w1 = {.accuracy = -1, .predictions = 100, .drifting = "country"};
    n = h_step(&h, 1, &w1);
    expect(n, "drift_tpl/amount:resolved, feature_drift/amount:resolved",
           "drift_tpl/country:firing, feature_drift/country:firing");
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 1, "annotations"), "summary")),
        "fraud: feature amount no longer drifting (now 0.5)");
    json_decref(n);

    h_free(&h);
    dw_rules_free(rules, 2);
}

/* Rules of another model or the other stage are skipped; a missing path is inactive. */
static void test_skip_and_missing(void **unused)
{
    struct dw_rule *rules = rules_new(5);
    rule_set(&rules[0], "other_model", "drift.dataset", 1, 0, 0);
    rules[0].model = dw_strdup("churn");
    rule_set(&rules[1], "final_features", "features.*.drift", 1, 0, 0);
    rules[1].stage = DW_STAGE_FINAL;
    rule_set(&rules[2], "slow", "latency_ms.p95 > 250", 1, 0, 0);
    rule_set(&rules[3], "accuracy_low", "performance.accuracy < 0.8", 2, 0, 0);
    rule_set(&rules[4], "fraud_dataset", "drift.dataset", 1, 0, 0);
    rules[4].model = dw_strdup("fraud");
    struct harness h;
    h_init(&h, rules, 5);

    /* Close stage: other model and the final-stage rule skipped; latency_ms is null. */
    struct win close_w = {.dataset = 1, .accuracy = 0.5, .predictions = 100, .drifting = "amount"};
    json_t *n = h_step(&h, 0, &close_w);
    expect(n, "fraud_dataset:firing", "fraud_dataset:firing");
    json_decref(n);
    assert_int_equal(json_object_size(h.state), 1);

    /* Final stage: the final-stage feature rule fires; accuracy pending. The close-stage alert
     * stays in the firing list. */
    struct win final_w = {
        .final = 1, .dataset = 1, .accuracy = 0.5, .predictions = 100, .drifting = "amount"};
    n = h_step(&h, 0, &final_w);
    expect(n, "final_features/amount:firing",
           "final_features/amount:firing, "
           "fraud_dataset:firing");
    assert_string_equal(json_string_value(json_object_get(n, "stage")), "final");
    json_decref(n);

    /* Accuracy becomes null (missing): the pending instance goes away without notice. */
    struct win final_null = {
        .final = 1, .dataset = 1, .accuracy = -1, .predictions = 100, .drifting = "amount"};
    n = h_step(&h, 1, &final_null);
    expect(n, "", "final_features/amount:firing, fraud_dataset:firing");
    json_decref(n);
    char fp[17];
    dw_rule_fingerprint("fraud", "accuracy_low", "", fp);
    assert_null(json_object_get(h.state, fp));

    /* A feature missing from the report counts as inactive: it resolves. */
    json_t *report = report_of(2, &final_null);
    json_object_del(json_object_get(report, "features"), "amount");
    n = dw_rules_step("g", rules, 5, report, h.state);
    expect(n, "final_features/amount:resolved", "fraud_dataset:firing");
    assert_true(json_is_null(aget(n, "alerts", 0, "value")));
    json_decref(n);
    json_decref(report);

    /* The other model's report only sees its own rule and state. */
    json_t *churn_state = json_object();
    struct win churn = {.model = "churn", .dataset = 1, .accuracy = -1, .predictions = 10};
    report = report_of(0, &churn);
    n = dw_rules_step("g", rules, 5, report, churn_state);
    expect(n, "other_model:firing", "other_model:firing");
    assert_string_equal(json_string_value(json_object_get(n, "model")), "churn");
    json_decref(n);
    json_decref(report);
    json_decref(churn_state);

    h_free(&h);
    dw_rules_free(rules, 5);
}

/* The same report stepped twice counts once; stale instances go; bad input gives NULL. */
static void test_duplicates_stale_bad_input(void **unused)
{
    struct dw_rule *rules = rules_new(1);
    rule_set(&rules[0], "accuracy_low", "performance.accuracy < 0.8", 2, 0, 0);
    struct win low = {.final = 1, .accuracy = 0.7, .predictions = 100};
    json_t *state = json_object();
    json_t *report = report_of(0, &low);
    assert_null(dw_rules_step("g", rules, 1, report, state));
    json_t *before = json_deep_copy(state);
    assert_null(dw_rules_step("g", rules, 1, report, state)); /* not the second window */
    assert_true(json_equal(before, state));
    json_decref(before);
    json_decref(report);
    report = report_of(1, &low);
    json_t *n = dw_rules_step("g", rules, 1, report, state);
    expect(n, "accuracy_low:firing", "accuracy_low:firing");
    json_decref(n);
    n = dw_rules_step("g", rules, 1, report, state); /* redelivered: no second notice */
    expect(n, "", "accuracy_low:firing");
    json_decref(n);

    /* An instance of a rule that no longer exists is dropped. */
    json_object_set_new(state, "0123456789abcdef",
                        json_pack("{s:s, s:n, s:s}", "rule", "gone", "feature", "state", "firing"));
    json_decref(report);
    report = report_of(2, &low);
    n = dw_rules_step("g", rules, 1, report, state);
    expect(n, "", "accuracy_low:firing");
    json_decref(n);
    assert_null(json_object_get(state, "0123456789abcdef"));
    assert_int_equal(json_object_size(state), 1);

    /* Bad input. */
    before = json_deep_copy(state);
    json_object_del(report, "window_start_ms");
    assert_null(dw_rules_step("g", rules, 1, report, state));
    json_object_set_new(report, "window_start_ms", json_integer(T0 + 3 * MINUTE_MS));
    json_object_del(report, "model");
    assert_null(dw_rules_step("g", rules, 1, report, state));
    assert_true(json_equal(before, state));
    json_t *arr = json_array();
    assert_null(dw_rules_step("g", rules, 1, report, arr));
    json_decref(arr);
    json_decref(before);
    json_decref(report);
    json_decref(state);
    dw_rules_free(rules, 1);
}

/* accuracy_drop.alert: value and threshold from the sibling members. */
/* A stored instance that a step did not write is dropped, named in the message; the others
 * stay. Counters and times at the ends of int64 do not overflow a step. */
static void test_state_load_hostile(void **unused)
{
    struct dw_rule *rules = rules_new(1);
    rule_set(&rules[0], "dataset_drift", "drift.dataset", 1, 0, 10 * MINUTE_MS);
    struct win drift = {.dataset = 1, .accuracy = -1, .predictions = 100};
    json_t *state = json_object();
    json_t *report = report_of(0, &drift);
    json_decref(dw_rules_step("g", rules, 1, report, state));
    json_decref(report);
    assert_int_equal(json_object_size(state), 1);
    const char *fp = NULL;
    json_t *inst = NULL;
    json_object_foreach(state, fp, inst)
    {
        break;
    }
    char *good = json_dumps(state, JSON_COMPACT);
    json_t *back = NULL;
    char err[256] = "";
    assert_int_equal(dw_rules_state_load("fraud", good, &back, err, sizeof(err)), 0);
    assert_true(json_equal(back, state));
    json_decref(back);
    /* the same state read for another model: its fingerprint is not that model's */
    assert_int_equal(dw_rules_state_load("churn", good, &back, err, sizeof(err)), -1);
    assert_contains(err, "fingerprint");
    assert_int_equal(json_object_size(back), 0);
    json_decref(back);
    /* one field at a time made wrong */
    static const struct {
        const char *key, *value, *want;
    } bad[] = {
        {"state", "\"resolved\"", "state must be"},
        {"active", "-1", "active and inactive"},
        {"inactive", "\"2\"", "active and inactive"},
        {"last_ms", "null", "last_ms"},
        {"fired_ms", "\"now\"", "fired_ms"},
        {"fired_ms", "-9223372036854775808", "fired_ms"}, /* formatting it overflowed */
        {"last_ms", "9223372036854775807", "last_ms"},
        {"notified", "1", "notified"},
        {"value", "{}", "value"},
        {"rule", "\"other\"", "fingerprint"},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
        json_t *copy = json_deep_copy(state);
        json_object_set_new(json_object_get(copy, fp), bad[i].key,
                            json_loads(bad[i].value, JSON_DECODE_ANY, NULL));
        /* and a good instance beside it, which stays */
        json_object_set(copy, "0000000000000000", json_object_get(state, fp));
        char *text = json_dumps(copy, JSON_COMPACT);
        assert_int_equal(dw_rules_state_load("fraud", text, &back, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].want)) {
            fail_msg("%s: message \"%s\" does not say %s", bad[i].key, err, bad[i].want);
        }
        json_decref(back);
        free(text);
        json_decref(copy);
    }
    assert_int_equal(dw_rules_state_load("fraud", "[1]", &back, err, sizeof(err)), -1);
    assert_contains(err, "not a JSON object");
    assert_int_equal(json_object_size(back), 0);
    json_decref(back);
    assert_int_equal(dw_rules_state_load("fraud", NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(json_object_size(back), 0);
    json_decref(back);
    /* counters and times at the ends of int64: a step neither overflows nor misbehaves */
    json_object_set_new(inst, "active", json_integer(INT64_MAX));
    json_object_set_new(inst, "last_sent_ms", json_integer(INT64_MIN));
    json_object_set_new(inst, "last_ms", json_integer(T0));
    report = report_of(1, &drift);
    json_t *n = dw_rules_step("g", rules, 1, report, state);
    json_decref(report);
    /* last sent at the earliest time there is: the repeat interval has long passed */
    expect(n, "dataset_drift:firing+repeat", "dataset_drift:firing+repeat");
    assert_int_equal(json_integer_value(json_object_get(inst, "active")), INT64_MAX);
    json_decref(n);
    free(good);
    json_decref(state);
    dw_rules_free(rules, 1);
}

static void test_default_rules_accuracy_drop(void **unused)
{
    size_t n_rules = 0;
    struct dw_rule *rules = dw_rules_defaults(&n_rules);
    struct harness h;
    h_init(&h, rules, n_rules);
    struct win w = {.final = 1, .accuracy = 0.6, .predictions = 100};
    json_t *report = report_of(0, &w);
    /* the built-in rule reads performance_drop (accuracy, or rmse for regression) */
    json_t *drop = json_object_get(report, "performance_drop");
    json_object_set_new(drop, "value", json_real(0.12));
    json_object_set_new(drop, "alert", json_true());
    json_t *n = dw_rules_step("g", rules, n_rules, report, h.state);
    expect(n, "accuracy_drop:firing", "accuracy_drop:firing");
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "value")), 0.12);
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "threshold")), 0.05);
    assert_string_equal(astr(n, "alerts", 0, "severity"), "critical");
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 0, "annotations"), "summary")),
        "fraud: performance_drop.alert is true (value 0.12, threshold 0.05)");
    json_decref(n);
    json_decref(report);
    /* the older accuracy_drop object alone no longer fires the built-in rule */
    struct win w2 = {.final = 1, .accuracy = 0.6, .predictions = 100};
    report = report_of(1, &w2);
    json_object_set_new(json_object_get(report, "accuracy_drop"), "alert", json_true());
    n = dw_rules_step("g", rules, n_rules, report, h.state);
    expect(n, "accuracy_drop:resolved", "");
    json_decref(n);
    json_decref(report);
    h_free(&h);
    dw_rules_free(rules, n_rules);
}

/* The alert states by name: the strings stored in Redis and sent to sinks. */
/* Any metric's drop is a rule's path (performance.drop.<metric>, final stage); null is no value. */
static void test_drop_rule(void **unused)
{
    struct dw_rule *rules = rules_new(1);
    rule_set(&rules[0], "auc_drop", "performance.drop.roc_auc > 0.05", 1, 0, 0);
    assert_int_equal(dw_rule_stage_of(&rules[0]), DW_STAGE_FINAL);
    json_t *state = json_object();
    struct win w = {.final = 1, .accuracy = 0.9, .predictions = 100};
    json_t *report = report_of(0, &w);
    json_object_set_new(json_object_get(report, "performance"), "drop",
                        json_pack("{s:f,s:f}", "accuracy", 0.01, "roc_auc", 0.08));
    json_t *n = dw_rules_step("g", rules, 1, report, state);
    expect(n, "auc_drop:firing", "auc_drop:firing");
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "value")), 0.08);
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "threshold")), 0.05);
    json_decref(n);
    json_decref(report);
    report = report_of(1, &w);
    json_object_set_new(json_object_get(report, "performance"), "drop",
                        json_pack("{s:f,s:n}", "accuracy", 0.01, "roc_auc"));
    n = dw_rules_step("g", rules, 1, report, state);
    expect(n, "auc_drop:resolved", "");
    json_decref(n);
    json_decref(report);
    json_decref(state);
    dw_rules_free(rules, 1);
}

/* ---------------------------------------------------------------------------------------------
 * SLA rules (models.<m>.sla), made by the config loader and stepped on scripted windows.
 */

#define SLA_NONE (-1.0) /* a report value that is null */

/* The report of window k (close or final) with latency p95 and serving rates (SLA_NONE: null;
 * latency_ms itself is null when p95 is). */
static json_t *sla_report(int k, int final, double p95, double error_rate, double availability)
{
    char ws[48];
    char we[48];
    dw_time_format_rfc3339(T0 + (int64_t)k * MINUTE_MS, ws, sizeof(ws));
    dw_time_format_rfc3339(T0 + (int64_t)(k + 1) * MINUTE_MS, we, sizeof(we));
    json_t *serving =
        json_pack("{s:I, s:I, s:o, s:o}", "served", (json_int_t)1000, "errors", (json_int_t)0,
                  "error_rate", error_rate < 0 ? json_null() : json_real(error_rate),
                  "availability", availability < 0 ? json_null() : json_real(availability));
    json_t *latency = p95 < 0 ? json_null()
                              : json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t)1000, "p50",
                                          10.0, "p95", p95, "p99", p95 * 2);
    json_t *r = json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:o, s:o}", "model", "fraud",
                          "window_start", ws, "window_end", we, "window_start_ms",
                          (json_int_t)(T0 + (int64_t)k * MINUTE_MS), "final", final, "predictions",
                          (json_int_t)1000, "latency_ms", latency, "serving", serving);
    assert_non_null(r);
    return r;
}

/* Steps one report; the notification (NULL: none). The state also survives its text. */
static json_t *sla_step(const struct dw_config *cfg, json_t **state, json_t *report)
{
    json_t *n = dw_rules_step("g", cfg->rules, cfg->n_rules, report, *state);
    char *text = json_dumps(*state, JSON_COMPACT);
    json_t *loaded = NULL;
    char err[256];
    assert_int_equal(dw_rules_state_load("fraud", text, &loaded, err, sizeof(err)), 0);
    assert_true(json_equal(loaded, *state));
    json_decref(*state);
    *state = loaded;
    free(text);
    json_decref(report);
    return n;
}

static void sla_config(struct dw_config *cfg, const char *sla)
{
    char yaml[512];
    char err[256];
    snprintf(yaml, sizeof(yaml),
             "kafka: {bootstrap.servers: 127.0.0.1:9092}\nalerting: {rules: []}\n"
             "models: {fraud: {sla: %s}, other: {}}\n",
             sla);
    if (dw_config_load_string(cfg, yaml, err, sizeof(err)) != 0) {
        fail_msg("config did not load: %s", err);
    }
}

/* An SLA rule fires after `for` windows over its threshold, on close reports only, and
 * resolves after keep_firing_for + 1 windows within it; a null value counts as within. */
static void test_sla_fire_resolve(void **unused)
{
    struct dw_config cfg;
    sla_config(&cfg, "{latency_p95_ms: 250, for: 2, keep_firing_for: 1, severity: critical}");
    assert_int_equal(cfg.n_rules, 1);
    json_t *state = json_object();
    char fp[17];
    dw_rule_fingerprint("fraud", "sla_latency_p95", "", fp);

    /* window 0 over: pending; its final report (same numbers, later) changes nothing */
    assert_null(sla_step(&cfg, &state, sla_report(0, 0, 300, 0, 1)));
    json_t *inst = json_object_get(state, fp);
    assert_string_equal(json_string_value(json_object_get(inst, "state")), "pending");
    assert_int_equal(json_integer_value(json_object_get(inst, "active")), 1);
    assert_null(sla_step(&cfg, &state, sla_report(0, 1, 300, 0, 1)));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(state, fp), "active")), 1);
    /* a final report alone never counts, over or not */
    assert_null(sla_step(&cfg, &state, sla_report(1, 1, 900, 0, 1)));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(state, fp), "active")), 1);

    /* window 1 over too: fires (for 2) at close */
    json_t *n = sla_step(&cfg, &state, sla_report(1, 0, 412.5, 0, 1));
    expect(n, "sla_latency_p95:firing", "sla_latency_p95:firing");
    assert_string_equal(json_string_value(json_object_get(n, "stage")), "close");
    assert_string_equal(astr(n, "alerts", 0, "fingerprint"), fp);
    assert_string_equal(astr(n, "alerts", 0, "severity"), "critical");
    assert_string_equal(astr(n, "alerts", 0, "starts_at"), time_of(1));
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "value")), 412.5);
    assert_double_exact(json_real_value(aget(n, "alerts", 0, "threshold")), 250);
    json_t *ann = aget(n, "alerts", 0, "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "summary")),
                        "fraud: latency_ms.p95 412.5 > 250");
    assert_string_equal(json_string_value(json_object_get(ann, "description")),
                        "SLA of fraud (sla.latency_p95_ms): latency_ms.p95 at most 250 ms; latest "
                        "window: 412.5 ms");
    json_decref(n);

    /* window 2 has no latency (null): within the SLA, kept firing (keep_firing_for 1) */
    n = sla_step(&cfg, &state, sla_report(2, 0, SLA_NONE, 0, 1));
    expect(n, "", "sla_latency_p95:firing");
    json_decref(n);
    /* window 3 under: resolved (keep_firing_for + 1 = 2 windows within) */
    n = sla_step(&cfg, &state, sla_report(3, 0, 100, 0, 1));
    expect(n, "sla_latency_p95:resolved", "");
    assert_string_equal(astr(n, "alerts", 0, "ends_at"), time_of(4));
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 0, "annotations"), "summary")),
        "fraud: latency_ms.p95 > 250 resolved (now 100)");
    json_decref(n);
    assert_int_equal(json_object_size(state), 0);

    /* exactly at the threshold is within it; one window over is pending only */
    assert_null(sla_step(&cfg, &state, sla_report(4, 0, 250, 0, 1)));
    assert_int_equal(json_object_size(state), 0);
    assert_null(sla_step(&cfg, &state, sla_report(5, 0, 251, 0, 1)));
    assert_null(sla_step(&cfg, &state, sla_report(6, 0, 249, 0, 1)));
    assert_int_equal(json_object_size(state), 0);

    /* the other model has no SLA: nothing */
    json_t *r = sla_report(7, 0, 5000, 0, 1);
    json_object_set_new(r, "model", json_string("other"));
    json_t *other = json_object();
    assert_null(dw_rules_step("g", cfg.rules, cfg.n_rules, r, other));
    assert_int_equal(json_object_size(other), 0);
    json_decref(other);
    json_decref(r);

    json_decref(state);
    dw_config_free(&cfg);
}

/* serving.error_rate above and serving.availability below their thresholds fire together in
 * rule order; null rates (no status field, nothing served) never make an instance. */
static void test_sla_serving_and_null(void **unused)
{
    struct dw_config cfg;
    sla_config(&cfg, "{latency_p99_ms: 800, error_rate: 0.01, availability: 0.995}");
    assert_int_equal(cfg.n_rules, 3);
    json_t *state = json_object();
    for (int k = 0; k < 5; k++) {
        assert_null(sla_step(&cfg, &state, sla_report(k, 0, SLA_NONE, SLA_NONE, SLA_NONE)));
        assert_int_equal(json_object_size(state), 0);
    }
    /* p99 = 2 * 300 = 600 <= 800; error rate 0.02 > 0.01; availability 0.98 < 0.995 */
    json_t *n = sla_step(&cfg, &state, sla_report(5, 0, 300, 0.02, 0.98));
    expect(n, "sla_error_rate:firing, sla_availability:firing",
           "sla_error_rate:firing, sla_availability:firing");
    assert_string_equal(astr(n, "alerts", 0, "severity"), "warning");
    assert_double_exact(json_real_value(aget(n, "alerts", 1, "value")), 0.98);
    assert_double_exact(json_real_value(aget(n, "alerts", 1, "threshold")), 0.995);
    assert_string_equal(
        json_string_value(json_object_get(aget(n, "alerts", 1, "annotations"), "summary")),
        "fraud: serving.availability 0.98 < 0.995");
    json_decref(n);
    /* p99 = 1000 > 800 fires; the rates turn null (the status field went away): resolved */
    n = sla_step(&cfg, &state, sla_report(6, 0, 500, SLA_NONE, SLA_NONE));
    expect(n, "sla_latency_p99:firing, sla_error_rate:resolved, sla_availability:resolved",
           "sla_latency_p99:firing");
    json_decref(n);
    json_decref(state);
    dw_config_free(&cfg);
}

static void test_alert_state_names(void **state)
{
    (void)state;
    static const struct {
        enum dw_alert_state st;
        const char *name;
    } names[] = {{DW_ALERT_INACTIVE, "inactive"},
                 {DW_ALERT_PENDING, "pending"},
                 {DW_ALERT_FIRING, "firing"},
                 {DW_ALERT_RESOLVED, "resolved"}};
    for (size_t i = 0; i < DW_ARRAY_SIZE(names); i++) {
        assert_string_equal(dw_alert_state_name(names[i].st), names[i].name);
        enum dw_alert_state st = DW_ALERT_INACTIVE;
        assert_int_equal(dw_alert_state_parse(names[i].name, &st), 0);
        assert_int_equal(st, names[i].st);
    }
    const char *bad[] = {NULL, "", "Firing", "firing ", "fire", "unknown"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
        enum dw_alert_state st = DW_ALERT_RESOLVED;
        assert_int_equal(dw_alert_state_parse(bad[i], &st), -1);
        assert_int_equal(st, DW_ALERT_RESOLVED); /* untouched */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expr_parse),
        cmocka_unit_test(test_stage_severity_defaults_fingerprint),
        cmocka_unit_test(test_for_windows),
        cmocka_unit_test(test_keep_firing),
        cmocka_unit_test(test_empty_run),
        cmocka_unit_test(test_repeat_interval),
        cmocka_unit_test(test_inhibition),
        cmocka_unit_test(test_grouping_labels_templates),
        cmocka_unit_test(test_skip_and_missing),
        cmocka_unit_test(test_duplicates_stale_bad_input),
        cmocka_unit_test(test_sla_fire_resolve),
        cmocka_unit_test(test_sla_serving_and_null),
        cmocka_unit_test(test_state_load_hostile),
        cmocka_unit_test(test_default_rules_accuracy_drop),
        cmocka_unit_test(test_drop_rule),
        cmocka_unit_test(test_alert_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
