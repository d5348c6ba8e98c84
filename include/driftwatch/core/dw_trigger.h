/*
 * dw_trigger.h - retraining triggers: guardrails and the message (pure C, no I/O).
 *
 * A window asks for a retraining trigger when, after its alert step, an instance of a trigger
 * rule (triggers.rules; none = every rule but those of models.<m>.sla) of the report's stage (close
 * or final, see dw_rules.h) is firing for the model. The guardrails then decide, on window time
 * only (so a restart, a second pod or a replay decides the same):
 *   - min_samples: the window holds at least triggers.min_samples predictions;
 *   - cooldown:    at least triggers.cooldown between the starts of two triggered windows;
 *   - max_per_day: at most triggers.max_per_day triggers per model per UTC day (of the window).
 * The guardrail state is a small JSON object kept in Redis and committed with the alert state
 * and the evaluation cursor, so "ten drifted windows in a row within the cooldown give one
 * trigger" holds across restarts.
 */
#ifndef DW_TRIGGER_H
#define DW_TRIGGER_H

#include <jansson.h>
#include <stdint.h>

#include "driftwatch/core/dw_config.h"

/** @brief Guardrail state of one model. */
struct dw_trigger_state {
    int64_t last_start_ms; /* window start of the last trigger; DW_NO_TS = none yet */
    int64_t day;           /* UTC day (window start / 86400000) of count */
    int64_t count;         /* triggers in that day */
};

/**
 * @brief Reads the state from its JSON text (NULL or "{}": no trigger yet).
 * @returns 0, or -1 with errstr naming the field when the text is not a state dump wrote
 *          (not a JSON object, a field of the wrong type, a day that is not the window's, a
 *          count below 1); st is then "no trigger yet".
 */
int dw_trigger_state_load(struct dw_trigger_state *st, const char *text, char *errstr,
                          size_t errstr_size);

/** @returns the state as compact JSON (malloc'ed). */
char *dw_trigger_state_dump(const struct dw_trigger_state *st);

/**
 * @brief Decides whether this window triggers, updating st when it does.
 * @param report the window report ("window_start_ms", "predictions")
 * @param firing the "firing" array of the window's alert notification (NULL = none)
 * @param why set to a static text naming the guardrail that suppressed a trigger (or NULL
 *            when no trigger rule fires)
 * @returns the reasons (a new JSON array of the firing trigger-rule alerts: rule, feature,
 *          severity, value, threshold, starts_at), or NULL when the window does not trigger.
 */
json_t *dw_trigger_decide(const struct dw_config *cfg, const json_t *report, const json_t *firing,
                          struct dw_trigger_state *st, const char **why);

/**
 * @brief The trigger message: {"trigger_id" (dw_idempotency_key(group, model,
 *        window_start_ms, "trigger")), "group", "model", "model_version" (the version with the
 *        most predictions in the window, ties by name; null without versions), "window_start",
 *        "window_end", "reasons", "evidence": {"predictions", "labeled", "drift",
 *        "performance"}, "created_at"}.
 */
json_t *dw_trigger_message(const char *group, const json_t *report, json_t *reasons,
                           int64_t created_ms);

#endif
