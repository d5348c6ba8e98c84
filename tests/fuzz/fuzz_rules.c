/*
 * fuzz_rules.c - the alert rules: condition parser, templates, rule config and rule state
 * (see dw_fuzz.h).
 *
 * The first byte of an input picks what the rest is:
 *   0 condition: "CONDITION\nTEMPLATE" - dw_rule_expr_parse() on the first line; a rule made
 *     of it (summary, description, runbook URL and a label all TEMPLATE; for, keep_firing_for,
 *     repeat, severity, stage, inhibition from the second byte) steps with the built-in rules
 *     over a series of window reports;
 *   1 config: YAML after a fixed kafka/models header - the alerting: and triggers: sections
 *     through dw_config_load_string(), whose rules then step over the reports;
 *   2 state: the alert state as read back from Redis (JSON text), stepped with the built-in
 *     rules and a templated one;
 *   3 report: a window report (JSON text) stepped twice with the same rules.
 * Every step's state is written as JSON and read back, as between two evaluations. A step
 * must never crash, leak or hang; its notification carries a 32-hex-digit id, and every alert
 * of it has a summary (dw_rules_alert_summary()).
 *
 * Seeds: conditions and templates from docs/alerting.md and the unit tests, the rules section
 * of deploy/driftwatch.example.yaml, states written by dw_rules_step() itself over the series,
 * and the series' reports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_rules.h"
#include "dw_fuzz.h"

#define T0 1772323200000LL /* 2026-03-01T00:00:00Z, milliseconds: the first window */
#define MINUTE_MS 60000LL  /* window length, milliseconds */
#define N_WINDOWS 6        /* reports per series: drift in the first three, close and final */
#define GROUP "fuzz"       /* consumer group of the notification ids */

enum mode { MODE_CONDITION = 0, MODE_CONFIG, MODE_STATE, MODE_REPORT, N_MODES };

static const char CONFIG_HEAD[] = "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                                  "models: {fraud: {features: {amount: numeric, "
                                  "country: categorical}}, price: {task: regression}}\n";

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_rules: %s\n", what);
    abort();
}

/* window k of model fraud: drifting (features, dataset, accuracy) while drift is set */
static json_t *report_of(int k, int final, int drift)
{
    char ws[48], we[48];
    int64_t start = T0 + (int64_t)k * MINUTE_MS;
    dw_time_format_rfc3339(start, ws, sizeof(ws));
    dw_time_format_rfc3339(start + MINUTE_MS, we, sizeof(we));
    json_t *r = json_pack(
        "{s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:f, s:{s:f, s:f}, s:{s:b, s:f},"
        " s:{s:f, s:f, s:b}, s:{s:f, s:f}, s:{s:{s:s, s:s, s:f, s:f, s:b},"
        " s:{s:s, s:s, s:f, s:f, s:b}}}",
        "model", "fraud", "window_start", ws, "window_end", we, "window_start_ms",
        (json_int_t)start, "final", final, "predictions", (json_int_t)(drift ? 0 : 100), "labeled",
        (json_int_t)80, "unlabeled_share", 0.2, "performance", "accuracy", drift ? 0.6 : 0.95, "f1",
        0.5, "drift", "dataset", drift, "share", drift ? 0.5 : 0.0, "accuracy_drop", "value",
        drift ? 0.3 : 0.0, "threshold", 0.05, "alert", drift, "latency_ms", "p95",
        drift ? 300.0 : 20.0, "p50", 10.0, "features", "amount", "type", "numeric", "method", "ks",
        "score", drift ? 0.001 : 0.5, "threshold", 0.05, "drift", drift, "country", "type",
        "categorical", "method", "chi2", "score", 0.5, "threshold", 0.05, "drift", 0);
    if (!r) {
        fail("report_of: json_pack failed");
    }
    return r;
}

static void check_note(json_t *note)
{
    const char *id = json_string_value(json_object_get(note, "id"));
    if (!id || strlen(id) != 32) {
        fail("a notification without a 32-hex-digit id");
    }
    const char *lists[] = {"alerts", "firing"};
    for (size_t l = 0; l < DW_ARRAY_SIZE(lists); l++) {
        json_t *arr = json_object_get(note, lists[l]);
        if (!json_is_array(arr)) {
            fail("a notification without its alert lists");
        }
        size_t i;
        json_t *al;
        json_array_foreach(arr, i, al)
        {
            json_t *sum = dw_rules_alert_summary(al);
            char *text = json_dumps(al, JSON_COMPACT);
            if (!sum || !text) {
                fail("an alert without a summary");
            }
            free(text);
            json_decref(sum);
        }
    }
}

/*
 * One step of the rules on a report, then the state through its JSON text (as through Redis).
 * Takes *state (an object or anything read back) and leaves the next one there.
 */
static void step(const struct dw_rule *rules, size_t n, const json_t *report, json_t **state)
{
    json_t *note = dw_rules_step(GROUP, rules, n, report, *state);
    if (note) {
        check_note(note);
        json_decref(note);
    }
    char *text = json_dumps(*state, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        fail("the state does not serialise");
    }
    json_decref(*state);
    *state = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!*state) {
        fail("the serialised state does not read back");
    }
    free(text);
}

/* the series of windows; reports[] (may be NULL) receives each report's text */
static void series(const struct dw_rule *rules, size_t n, json_t **state, char **reports)
{
    for (int k = 0; k < N_WINDOWS; k++) {
        for (int final = 0; final <= 1; final++) {
            json_t *r = report_of(k, final, k < 3);
            step(rules, n, r, state);
            if (reports && final == 0) {
                reports[k] = json_dumps(r, JSON_COMPACT);
            }
            json_decref(r);
        }
    }
}

/* the built-in rules plus one more of `expr` with every template `tmpl`; params: its knobs */
static struct dw_rule *rules_with(const char *expr, const struct dw_rule_expr *parsed,
                                  const char *tmpl, unsigned params, size_t *n)
{
    size_t nd;
    struct dw_rule *defaults = dw_rules_defaults(&nd);
    struct dw_rule *rules = dw_calloc(nd + 1, sizeof(*rules));
    memcpy(rules, defaults, nd * sizeof(*rules));
    free(defaults); /* the members moved to rules */
    struct dw_rule *r = &rules[nd];
    r->name = dw_strdup("fuzzed");
    r->model = params & 0x80 ? dw_strdup("fraud") : NULL;
    r->expr_text = dw_strdup(expr);
    r->expr = *parsed;
    r->stage = (enum dw_rule_stage)((params >> 5) % 3);
    r->for_windows = 1 + (params & 1);
    r->keep_firing_windows = (params >> 1) & 1;
    r->repeat_interval_ms = (params >> 2) & 1 ? MINUTE_MS : 0;
    r->severity = (params >> 3) & 1 ? DW_SEV_CRITICAL : DW_SEV_WARNING;
    r->inhibits_features = (params >> 4) & 1;
    r->summary = dw_strdup(tmpl);
    r->description = dw_strdup(tmpl);
    r->runbook_url = dw_strdup(tmpl);
    r->labels = dw_calloc(1, sizeof(*r->labels));
    r->labels[0].key = dw_strdup("team");
    r->labels[0].value = dw_strdup(tmpl);
    r->n_labels = 1;
    *n = nd + 1;
    return rules;
}

static void run_condition(const char *text, unsigned params)
{
    const char *nl = strchr(text, '\n');
    char *cond = nl ? dw_strndup(text, (size_t)(nl - text)) : dw_strdup(text);
    const char *tmpl = nl ? nl + 1 : "";
    struct dw_rule_expr e;
    char err[512] = "";
    if (dw_rule_expr_parse(cond, &e, err, sizeof(err)) != 0) {
        if (err[0] == '\0') {
            fail("a refused condition without an error text");
        }
        free(cond);
        return;
    }
    if (strlen(e.path) >= DW_RULE_PATH_MAX) {
        fail("a parsed path longer than DW_RULE_PATH_MAX");
    }
    size_t n;
    struct dw_rule *rules = rules_with(cond, &e, tmpl, params, &n);
    json_t *state = json_object();
    series(rules, n, &state, NULL);
    json_decref(state);
    dw_rules_free(rules, n);
    free(cond);
}

static void run_config(const char *text)
{
    struct dw_sbuf sb = {0};
    dw_sbuf_adds(&sb, CONFIG_HEAD);
    dw_sbuf_adds(&sb, text);
    struct dw_config cfg;
    char err[1024] = "";
    if (dw_config_load_string(&cfg, sb.s, err, sizeof(err)) == 0) {
        json_t *state = json_object();
        series(cfg.rules, cfg.n_rules, &state, NULL);
        json_decref(state);
        dw_config_free(&cfg);
    } else if (err[0] == '\0') {
        fail("a refused rule configuration without an error text");
    }
    free(sb.s);
}

static void run_json(enum mode mode, const char *text, size_t len)
{
    json_t *doc = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!doc) {
        return;
    }
    struct dw_rule_expr e;
    if (dw_rule_expr_parse("features.*.score <= 0.05", &e, NULL, 0) != 0) {
        fail("the templated rule's condition does not parse");
    }
    size_t n;
    struct dw_rule *rules =
        rules_with("features.*.score <= 0.05", &e,
                   "{{model}} {{feature}} {{value}} {{threshold}} {{labels.team}}", 0x13, &n);
    if (mode == MODE_STATE) {
        series(rules, n, &doc, NULL);
    } else {
        json_t *state = json_object();
        step(rules, n, doc, &state);
        step(rules, n, doc, &state);
        json_decref(state);
    }
    json_decref(doc);
    dw_rules_free(rules, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    enum mode mode = (enum mode)(data[0] % N_MODES);
    unsigned params = data[1];
    char *text = dw_strndup((const char *)data + 2, size - 2); /* stops at a NUL byte */
    switch (mode) {
    case MODE_CONDITION:
        run_condition(text, params);
        break;
    case MODE_CONFIG:
        run_config(text);
        break;
    default:
        run_json(mode, (const char *)data + 2, size - 2);
        break;
    }
    free(text);
    return 0;
}

/* mode byte, params byte, then the text */
static void seed(const char *dir, const char *name, enum mode mode, unsigned params,
                 const char *text)
{
    size_t len = strlen(text);
    char *buf = dw_malloc(len + 2);
    buf[0] = (char)mode;
    buf[1] = (char)params;
    memcpy(buf + 2, text, len);
    dw_fuzz_write_seed(dir, name, buf, len + 2);
    free(buf);
}

void dw_fuzz_seeds(const char *dir)
{
    static const char *const conditions[] = {
        "features.*.drift\n{{model}}: feature {{feature}} drifted ({{value}} vs {{threshold}})",
        "drift.dataset\n{{ rule }} {{severity}} {{window_start}}..{{window_end}} {{nope}} {{",
        "performance.accuracy < 0.8\n{{labels.team}} {{labels.severity}} {{labels.}}",
        "accuracy_drop.alert",
        "accuracy_drop.value > 0.05\nhttps://runbooks.example/{{model}}/{{rule}}",
        "latency_ms.p95 >= 250",
        "predictions == 0",
        "features.*.score != 1e-3",
        "  performance.f1<=0.5  ",
        "*.drift",
        "features.*",
        "unlabeled_share > -0.5e1",
    };
    char name[64];
    for (size_t i = 0; i < DW_ARRAY_SIZE(conditions); i++) {
        snprintf(name, sizeof(name), "condition-%zu", i);
        seed(dir, name, MODE_CONDITION, (unsigned)(i * 37) & 0xff, conditions[i]);
    }

    static const char *const configs[] = {
        "alerting:\n  rules:\n    - name: feature_drift\n      condition: features.*.drift\n"
        "      model: \"\"\n      stage: auto\n      for: 1\n      keep_firing_for: 0\n"
        "      repeat_interval: 0s\n      severity: warning\n      labels: {team: ml}\n"
        "      summary: \"{{model}}: feature {{feature}} drifted ({{value}} vs {{threshold}})\"\n"
        "      description: \"\"\n      runbook_url: \"\"\n      inhibits_features: false\n"
        "    - name: dataset_drift\n      condition: drift.dataset\n      severity: critical\n"
        "      inhibits_features: true\n"
        "    - name: accuracy_drop\n      condition: accuracy_drop.alert\n"
        "      severity: critical\n"
        "triggers: {enabled: true, rules: [dataset_drift, accuracy_drop], cooldown: 1h}\n",
        "alerting:\n  rules:\n    - name: acc_low\n      condition: performance.accuracy < 0.8\n"
        "      for: 3\n      keep_firing_for: 2\n      repeat_interval: 4h\n"
        "      severity: critical\n      labels: {team: ml, tier: '1'}\n"
        "      summary: '{{model}} accuracy {{value}}'\n"
        "    - {name: drift, condition: 'features.*.drift', model: fraud, stage: final}\n",
        "alerting: {rules: []}\n",
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(configs); i++) {
        snprintf(name, sizeof(name), "config-%zu", i);
        seed(dir, name, MODE_CONFIG, 0, configs[i]);
    }

    /* states as dw_rules_step() writes them after each window, and the reports */
    size_t nd;
    struct dw_rule *rules = dw_rules_defaults(&nd);
    json_t *state = json_object();
    char *reports[N_WINDOWS] = {0};
    for (int k = 0; k < N_WINDOWS; k++) {
        json_t *r = report_of(k, 0, k < 3);
        step(rules, nd, r, &state);
        json_decref(r);
        char *text = json_dumps(state, JSON_COMPACT);
        snprintf(name, sizeof(name), "state-%d", k);
        seed(dir, name, MODE_STATE, 0, text);
        free(text);
    }
    json_decref(state);
    state = json_object();
    series(rules, nd, &state, reports);
    for (int k = 0; k < N_WINDOWS; k++) {
        snprintf(name, sizeof(name), "report-%d", k);
        seed(dir, name, MODE_REPORT, 0, reports[k]);
        free(reports[k]);
    }
    json_decref(state);
    dw_rules_free(rules, nd);
}
