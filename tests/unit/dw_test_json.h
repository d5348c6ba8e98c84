/*
 * dw_test_json.h - members of a JSON object (a report, a payload) read by the tests: each fails
 * the test, naming the key, when the member is missing or of another type, so that a test
 * never compares against the 0 or NULL jansson gives for a missing member; and the alert one
 * rule raises on a report.
 */
#ifndef DW_TEST_JSON_H
#define DW_TEST_JSON_H

#include <jansson.h>
#include <string.h>

#include "driftwatch/core/dw_rules.h"

#include "dw_test.h"

/** @returns the number obj[key]. */
static inline double jreal(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) {
        fail_msg("%s is not a number", key);
    }
    return json_number_value(v);
}

/** @returns the integer obj[key]. */
static inline json_int_t jint(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        fail_msg("%s is not an integer", key);
    }
    return json_integer_value(v);
}

/** @returns the string obj[key]. */
static inline const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) {
        fail_msg("%s is not a string", key);
    }
    return s;
}

/**
 * @brief Steps one rule, `name` with condition `expr` (stage auto, which must resolve to
 *        `stage`), over report from an empty alert state.
 * @returns the one alert of the notification (a new reference); fails the test when there is
 *          not exactly one.
 */
static inline json_t *jrule_alert(json_t *report, const char *name, const char *expr,
                                  enum dw_rule_stage stage)
{
    struct dw_rule rule;
    memset(&rule, 0, sizeof(rule));
    rule.name = (char *)name;
    rule.expr_text = (char *)expr;
    if (dw_rule_expr_parse(expr, &rule.expr, NULL, 0) != 0) {
        fail_msg("rule condition %s does not parse", expr);
    }
    if (dw_rule_stage_of(&rule) != stage) {
        fail_msg("rule condition %s: stage %d, want %d", expr, dw_rule_stage_of(&rule), stage);
    }
    json_t *state = json_object();
    json_t *note = dw_rules_step("prod", &rule, 1, report, state);
    json_t *alerts = json_object_get(note, "alerts");
    if (json_array_size(alerts) != 1) {
        fail_msg("rule %s: %zu alerts, want 1", expr, json_array_size(alerts));
    }
    json_t *alert = json_incref(json_array_get(alerts, 0));
    json_decref(note);
    json_decref(state);
    return alert;
}

#endif
