/*
 * dw_trigger.c - retraining triggers: guardrails and the message.
 *
 * Why window time: the guardrails compare window starts, never the wall clock, because the
 * evaluation of a window may run twice (at least once: a crash between the trigger and the
 * commit of its state) or late (a pod restarted after an hour). Counting by window keeps the
 * decision a function of the data, so every pod and every replay agrees, and the message's
 * trigger_id (hash of group, model, window) lets consumers drop a repeat.
 */
#include "driftwatch/core/dw_trigger.h"

#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/core/dw_rules.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define MS_PER_DAY 86400000LL /* milliseconds */

/* A member that must be an integer. @returns 0, or -1 when absent or of another type. */
static int get_int(const json_t *doc, const char *key, int64_t *out)
{
    json_t *v = json_object_get(doc, key);
    if (!json_is_integer(v)) {
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int dw_trigger_state_load(struct dw_trigger_state *st, const char *text, char *errstr,
                          size_t errstr_size)
{
    st->last_start_ms = DW_NO_TS;
    st->day = 0;
    st->count = 0;
    if (!text) {
        return 0;
    }
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return dw_err(errstr, errstr_size, "trigger state: not a JSON object%s%s", doc ? "" : ": ",
                      doc ? "" : jerr.text);
    }
    if (json_object_size(doc) == 0) { /* dump's "no trigger yet" */
        json_decref(doc);
        return 0;
    }
    struct dw_trigger_state t;
    const char *bad = NULL;
    if (get_int(doc, "last_start_ms", &t.last_start_ms) != 0 ||
        t.last_start_ms < -DW_STATE_MS_MAX || t.last_start_ms > DW_STATE_MS_MAX) {
        bad = "last_start_ms is not a window start";
    } else if (get_int(doc, "day", &t.day) != 0 ||
               t.day != dw_floor_div(t.last_start_ms, MS_PER_DAY)) {
        bad = "day is not the UTC day of last_start_ms";
    } else if (get_int(doc, "count", &t.count) != 0 || t.count < 1 || t.count == INT64_MAX) {
        bad = "count is not a positive integer";
    }
    json_decref(doc);
    if (bad) {
        return dw_err(errstr, errstr_size, "trigger state: %s", bad);
    }
    *st = t;
    return 0;
}

char *dw_trigger_state_dump(const struct dw_trigger_state *st)
{
    json_t *doc = st->last_start_ms == DW_NO_TS
                      ? json_object()
                      : json_pack("{s:I,s:I,s:I}", "last_start_ms", (json_int_t)st->last_start_ms,
                                  "day", (json_int_t)st->day, "count", (json_int_t)st->count);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/*
 * A trigger rule of the report's stage: the other stage's alerts are judged with its reports.
 * No triggers.rules means every rule except the models' own (models.<m>.sla and canary, the
 * last n_model_rules): slow or failing serving, or a bad candidate version, is not fixed by
 * retraining the model; name them to have them trigger.
 */
static int is_trigger_rule(const struct dw_config *cfg, const char *rule, int final)
{
    enum dw_rule_stage want = final ? DW_STAGE_FINAL : DW_STAGE_CLOSE;
    size_t r = 0;
    while (r < cfg->n_rules && !(rule && strcmp(cfg->rules[r].name, rule) == 0)) {
        r++;
    }
    if (r == cfg->n_rules || dw_rule_stage_of(&cfg->rules[r]) != want) {
        return 0;
    }
    if (cfg->n_trigger_rules == 0) {
        return r < cfg->n_rules - cfg->n_model_rules;
    }
    for (size_t i = 0; i < cfg->n_trigger_rules; i++) {
        if (rule && strcmp(cfg->trigger_rules[i], rule) == 0) {
            return 1;
        }
    }
    return 0;
}

static json_t *member_or_null(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v ? json_deep_copy(v) : json_null();
}

/* The firing alerts of trigger rules, as reasons. */
static json_t *trigger_reasons(const struct dw_config *cfg, const json_t *firing, int final)
{
    json_t *reasons = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(firing, i, a)
    {
        if (!is_trigger_rule(cfg, json_string_value(json_object_get(a, "rule")), final)) {
            continue;
        }
        json_array_append_new(reasons, dw_rules_alert_summary(a));
    }
    return reasons;
}

json_t *dw_trigger_decide(const struct dw_config *cfg, const json_t *report, const json_t *firing,
                          struct dw_trigger_state *st, const char **why)
{
    *why = NULL;
    if (!cfg->triggers_enabled) {
        *why = "triggers.enabled is false";
        return NULL;
    }
    json_t *reasons = trigger_reasons(cfg, firing, json_is_true(json_object_get(report, "final")));
    if (json_array_size(reasons) == 0) {
        json_decref(reasons);
        return NULL;
    }
    int64_t start = (int64_t)json_integer_value(json_object_get(report, "window_start_ms"));
    int64_t n = (int64_t)json_integer_value(json_object_get(report, "predictions"));
    int64_t day = dw_floor_div(start, MS_PER_DAY);
    if (n < cfg->trigger_min_samples) {
        *why = "triggers.min_samples";
    } else if (st->last_start_ms != DW_NO_TS && start >= st->last_start_ms &&
               (uint64_t)start - (uint64_t)st->last_start_ms <
                   (uint64_t)DW_MAX(cfg->trigger_cooldown_ms, 0)) {
        *why = "triggers.cooldown";
    } else if (st->last_start_ms != DW_NO_TS && start <= st->last_start_ms) {
        *why = "an earlier or the same window was already triggered";
    } else if (st->last_start_ms != DW_NO_TS && day == st->day &&
               st->count >= cfg->trigger_max_per_day) {
        *why = "triggers.max_per_day";
    }
    if (*why) {
        json_decref(reasons);
        return NULL;
    }
    st->count = (st->last_start_ms != DW_NO_TS && day == st->day) ? st->count + 1 : 1;
    st->day = day;
    st->last_start_ms = start;
    return reasons;
}

/* The version that served most of the window (ties: the smallest name, deterministic). */
static const char *main_version(const json_t *report)
{
    const char *best = NULL;
    json_int_t best_n = -1;
    const char *vname;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(report, "versions"), vname, v)
    {
        json_int_t n = json_integer_value(json_object_get(v, "predictions"));
        if (n > best_n || (n == best_n && best && strcmp(vname, best) < 0)) {
            best = vname;
            best_n = n;
        }
    }
    return best;
}

json_t *dw_trigger_message(const char *group, const json_t *report, json_t *reasons,
                           int64_t created_ms)
{
    const char *model = json_string_value(json_object_get(report, "model"));
    int64_t start = (int64_t)json_integer_value(json_object_get(report, "window_start_ms"));
    const char *version = main_version(report);
    char created[40];
    dw_time_format_rfc3339(created_ms, created, sizeof(created));
    char *id = dw_idempotency_key(group, model ? model : "", start, "trigger");
    json_t *evidence = json_object();
    static const char *const keys[] = {"predictions", "labeled", "drift", "performance"};
    for (size_t k = 0; k < DW_ARRAY_SIZE(keys); k++) {
        json_object_set_new(evidence, keys[k], member_or_null(report, keys[k]));
    }
    json_t *out = json_object();
    json_object_set_new(out, "trigger_id", json_string(id));
    json_object_set_new(out, "group", json_string(group));
    json_object_set_new(out, "model", model ? json_string(model) : json_null());
    json_object_set_new(out, "model_version", version ? json_string(version) : json_null());
    json_object_set_new(out, "window_start", member_or_null(report, "window_start"));
    json_object_set_new(out, "window_end", member_or_null(report, "window_end"));
    json_object_set(out, "reasons", reasons);
    json_object_set_new(out, "evidence", evidence);
    json_object_set_new(out, "created_at", json_string(created));
    free(id);
    return out;
}
