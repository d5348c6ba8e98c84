/*
 * dw_rules.h - alert rules with on-call semantics over window reports (pure C, no I/O).
 *
 * A rule is a condition on the window report of dw_eval_window() (the object `replay` prints):
 * a dotted path into the report, optionally compared with a number:
 *
 *     features.*.drift                   true when the value is JSON true; `*` = one alert
 *                                        instance per feature (the key of "features")
 *     drift.dataset                      dataset drift
 *     performance.accuracy < 0.8         op is one of < <= > >= == !=
 *     performance.drop.roc_auc > 0.05    relative ROC AUC drop against the baseline
 *     latency_ms.p95 > 250
 *     predictions == 0                   no data (with `for: 3`: three empty windows)
 *
 * A path that is missing or null in a report, or a comparison with a non-number, is "no value":
 * the instance counts as inactive in that window.
 *
 * Time is the windows' own: each (model, window, stage) report is one evaluation step, so a
 * replay, a restart or a second pod gives the same transitions. `for` and `keep_firing_for`
 * count windows, `repeat_interval` is compared with window start times.
 *
 * States of an instance (fingerprint = model, rule, feature):
 *   inactive -> pending      condition true, fewer than `for` consecutive windows so far
 *   pending  -> firing       condition true in `for` consecutive windows   => notify "firing"
 *   pending  -> inactive     condition false (no notification)
 *   firing   -> firing       condition true; re-notify when repeat_interval has passed since
 *                            the last notification (window start times)
 *   firing   -> firing       condition false for at most keep_firing_for windows
 *   firing   -> inactive     condition false for keep_firing_for + 1 windows => notify "resolved"
 *                            (only when its firing was notified)
 * Inhibition: while an instance of a rule with `inhibits_features` fires for a model, that
 * model's per-feature instances (rules whose path has `*`) still change state but are not
 * notified; a firing instance not yet notified is notified in the first step it is no longer
 * inhibited; a resolved notice is sent only for an instance whose firing was notified.
 * Inhibition mutes firing notices (and repeats) only: the resolved notice of an instance whose
 * firing was notified is sent even while inhibited, so no receiver keeps an incident open.
 * The inhibiting rules themselves (those with `inhibits_features`) are never muted.
 * Grouping: one step returns one notification holding every alert of that (model, window).
 *
 * An instance remembers the last window it was evaluated in: a report for a window not later
 * than that one (the same report stepped twice) leaves it unchanged.
 *
 * Value and threshold of an alert:
 *   - comparison (`path op number`): value = the number at the path, threshold = the number;
 *   - DW_OP_TRUE: value = the numeric member "score" of the object holding the last path
 *     segment, else its numeric "value", else the boolean at the path; threshold = that
 *     object's numeric "threshold", else null. So `features.*.drift` reports the feature's
 *     score and threshold, `performance_drop.alert` the drop and its threshold,
 *     `drift.dataset` true and null.
 *   Both are those of the latest evaluated window (null when it had no value).
 *
 * Built-in summary (rule->summary NULL), numbers with %.6g:
 *   firing    "fraud: feature amount drifted (ks 0.003 <= 0.05)"   (a `*` rule on ".drift";
 *                                  "<=" or ">=" as the score stands to the threshold)
 *             "fraud: drift.dataset is true"  ("... is true (value 0.12, threshold 0.05)" when
 *                                  value is a number)
 *             "fraud: performance.accuracy 0.71 < 0.8"  (`*` replaced by the feature name)
 *   resolved  "fraud: feature amount no longer drifting (now 0.4)",
 *             "fraud: drift.dataset no longer true", "fraud: performance.accuracy < 0.8
 *             resolved (now 0.85)"  ("(now ...)" only when the value is a number)
 */
#ifndef DW_RULES_H
#define DW_RULES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define DW_RULE_PATH_MAX 256 /* bytes of a condition's path */
/* Largest |time| a stored alert or trigger state may hold (ms, about 146 million years): any
 * real window, and far enough from the ends of int64 that formatting and differences of such
 * times cannot overflow. */
#define DW_STATE_MS_MAX (1LL << 62)

enum dw_severity { DW_SEV_WARNING = 0, DW_SEV_CRITICAL = 1 };

/* The state of an alert instance (inactive, pending, firing: the diagram above) and the status
 * of a notified alert (firing, resolved). Stored in Redis ("state") and sent to sinks
 * ("status") as its name from dw_alert_state_name(); an inactive instance is not stored. */
enum dw_alert_state {
    DW_ALERT_INACTIVE = 0,
    DW_ALERT_PENDING = 1,
    DW_ALERT_FIRING = 2,
    DW_ALERT_RESOLVED = 3
};

/* Which report of a window a rule reads: the one at window close or the one at the label
 * horizon ("final": performance with its labels). AUTO = FINAL when the path starts with
 * performance, performance_drop, accuracy_drop, baseline, rolling, versions, labeled, correct,
 * unlabeled_share or change_detectors; else CLOSE. */
enum dw_rule_stage { DW_STAGE_AUTO = 0, DW_STAGE_CLOSE = 1, DW_STAGE_FINAL = 2 };

enum dw_rule_op { DW_OP_TRUE = 0, DW_OP_LT, DW_OP_LE, DW_OP_GT, DW_OP_GE, DW_OP_EQ, DW_OP_NE };

/** @brief A parsed condition. */
struct dw_rule_expr {
    char path[DW_RULE_PATH_MAX]; /* dotted path, at most one "*" segment */
    enum dw_rule_op op;          /* DW_OP_TRUE: the value must be JSON true */
    double threshold;            /* compared with (value op threshold) */
};

struct dw_rule_label {
    char *key;
    char *value;
};

/** @brief One rule of `alerting.rules` (owned by struct dw_config). */
struct dw_rule {
    char *name;  /* alerting.rules[i].name: unique, [A-Za-z0-9_:-]+ */
    char *model; /* alerting.rules[i].model: NULL = every model */
    char *expr_text;
    struct dw_rule_expr expr;
    enum dw_rule_stage stage;
    int64_t for_windows;         /* >= 1: consecutive windows before firing */
    int64_t keep_firing_windows; /* >= 0 */
    int64_t repeat_interval_ms;  /* >= 0; 0 = never repeat */
    enum dw_severity severity;
    struct dw_rule_label *labels; /* extra labels, sent with the alert */
    size_t n_labels;
    char *summary;         /* annotation templates (NULL = built-in text) */
    char *description;     /* NULL = none */
    char *runbook_url;     /* NULL = none */
    int inhibits_features; /* while firing, mutes the model's per-feature alerts */
};

/**
 * @brief Parses a condition ("features.*.drift", "performance.accuracy < 0.8").
 * @returns 0, or -1 with errstr naming what is wrong (the text itself is quoted).
 */
int dw_rule_expr_parse(const char *text, struct dw_rule_expr *out, char *errstr,
                       size_t errstr_size);

/** @returns the stage a rule reads (DW_STAGE_AUTO resolved to CLOSE or FINAL). */
enum dw_rule_stage dw_rule_stage_of(const struct dw_rule *rule);

/** @returns "warning" or "critical". */
const char *dw_severity_name(enum dw_severity s);

/** @returns "inactive", "pending", "firing" or "resolved". */
const char *dw_alert_state_name(enum dw_alert_state s);

/**
 * @brief The state of a name from dw_alert_state_name() (exact, case-sensitive).
 * @returns 0 and *out, or -1 (*out untouched) when name is NULL or no state's name.
 */
int dw_alert_state_parse(const char *name, enum dw_alert_state *out);

/**
 * @brief The built-in rules used when the config has none: feature_drift (features.*.drift,
 *        warning), dataset_drift (drift.dataset, critical, inhibits features), accuracy_drop
 *        (performance_drop.alert: accuracy, or RMSE for regression, against the baseline;
 *        critical). Each with for 1, keep_firing_for 0, repeat 0.
 * @returns a malloc'ed array of *n rules (free with dw_rules_free).
 */
struct dw_rule *dw_rules_defaults(size_t *n);

/** @brief Frees an array of n rules (members and the array). */
void dw_rules_free(struct dw_rule *rules, size_t n);

/**
 * @returns the 16-hex-digit fingerprint of (model, rule, feature) in buf (>= 17 bytes):
 *          the first 64 bits of SHA-256(model 0x1f rule 0x1f feature); feature "" for rules
 *          without "*".
 */
void dw_rule_fingerprint(const char *model, const char *rule, const char *feature, char *buf);

/**
 * @brief The alert state of one model: JSON object fingerprint -> instance
 *        {"rule","feature","state":"pending"|"firing","active":n,"inactive":n,
 *         "active_since_ms","fired_ms","notified":bool,"last_sent_ms","value",
 *         "threshold","method"? (the feature's method, for the summary),
 *         "last_ms" (window_start_ms of the last window evaluated)}.
 *        "feature" is null for rules without "*". Inactive instances are not kept, nor
 *        instances of a rule the model no longer has (removed without notice). Stored in
 *        Redis as text between steps (json_dumps keeps 17 digits: a round trip changes
 *        nothing).
 */

/**
 * @brief Reads the stored alert state of a model from its text (NULL: no state yet).
 * @param state set to the state (a new JSON object, never NULL): every instance that is as
 *              dw_rules_step() writes it (fields of the right types, counts non-negative, the
 *              fingerprint the one of its model, rule and feature); the others are dropped.
 * @returns 0, or -1 with errstr naming the first instance dropped and why (or the text is not a
 *          JSON object: the state is then empty).
 */
int dw_rules_state_load(const char *model, const char *text, json_t **state, char *errstr,
                        size_t errstr_size);

/**
 * @brief One evaluation step for one model and one report (the report's "model",
 *        "window_start_ms" and "final" say which). Rules of the other stage, and rules
 *        for another model, are skipped. `state` (a JSON object as above, may be empty) is
 *        updated in place.
 * @param group consumer group (part of the notification id)
 * @returns a new notification, or NULL when both "alerts" and "firing" are empty:
 *   {"id": 32 hex (dw_idempotency_key(group, model, window_start_ms, "alerts-close" or
 *          "alerts-final")),
 *    "model", "window_start", "window_end" (RFC 3339), "window_start_ms", "stage":"close"|"final",
 *    "alerts": [ {"fingerprint", "rule", "feature" (or null), "status":"firing"|"resolved",
 *                 "severity", "repeat": bool, "value" (number or bool, null when none),
 *                 "threshold" (number or null), "starts_at" (RFC 3339, the window that fired),
 *                 "ends_at" (RFC 3339 window end of the resolving step; resolved only),
 *                 "labels": {"alertname": rule, "model", "feature" (when any), "severity",
 *                            ...rule labels},
 *                 "annotations": {"summary", "description"?, "runbook_url"?}} ... ],
 *    "firing": [ the same objects for every instance firing after this step and not
 *                inhibited, whether notified in this step or earlier (Alertmanager re-sends
 *                them) ]}
 *   "alerts" lists, in rule order then feature name order, the instances notified in this
 *   step. "firing" holds the instances of both stages' rules, in the same order (an instance
 *   of the other stage that was waiting for its inhibition to end is notified here too).
 *   Labels: the built-in ones win over a rule label of the same name.
 *   Templates (summary, description, runbook_url): "{{model}}", "{{feature}}" ("" when none),
 *   "{{rule}}", "{{value}}", "{{threshold}}" (%.6g, true/false, "none" when null),
 *   "{{severity}}", "{{window_start}}", "{{window_end}}", "{{labels.KEY}}" (the alert's
 *   labels), "{{report.PATH}}" (a string of the report stepped at the dotted PATH, e.g.
 *   "{{report.canary.summary}}") are replaced, with blanks allowed inside the braces
 *   ("{{ model }}"); an unknown name, or a PATH that is not a string, is left as written.
 *   NULL too when the report has no string "model" or integer "window_start_ms", or state is
 *   not an object (nothing changed).
 */
/**
 * @returns the summary of an alert object (an element of "alerts" or "firing"):
 *          {"rule", "feature", "severity", "value", "threshold", "starts_at"} (null when
 *          absent); the reasons of a retraining trigger and the alerts of /status.
 */
json_t *dw_rules_alert_summary(const json_t *alert);

json_t *dw_rules_step(const char *group, const struct dw_rule *rules, size_t n_rules,
                      const json_t *report, json_t *state);

#endif
