/*
 * dw_actions.h - what the evaluator does with a window report: alert rules, sinks, triggers.
 *
 * For one (model, window, stage) report, dw_actions_window():
 *   1. reads the model's alert state and trigger guardrail state from Redis;
 *   2. steps the alert rules (dw_rules_step) and renders the notification for every sink
 *      (dw_sink_render; messages carry no secret);
 *   3. decides the retraining trigger (dw_trigger_decide) and, when it fires, produces it with
 *      the idempotent producer and waits for its delivery report (a failure leaves everything
 *      uncommitted: the window is evaluated again on the next tick);
 *   4. commits in one MULTI/EXEC fenced by the model's evaluator lease: the alert state, the
 * trigger state, the messages as pending deliveries, the last firing set (for Alertmanager
 *      re-sends), the report itself and the evaluation cursor (a report is stored if and only
 *      if its cursor moved past it: the label-horizon evaluation reads the close report's
 *      feature statistics, which the partitions no longer keep);
 *   5. hands the messages to the delivery thread, which removes each from Redis once it is
 *      delivered or finally failed.
 * A crash between 4 and 5 loses nothing: dw_actions_resume() (called when a model's lease is
 * acquired) re-submits what is still pending of that model. A crash before 4 repeats the step from
 * the same state, so it decides the same and sends the same message ids. A commit whose reply
 * was lost (the connection went after EXEC was sent) is looked up by its cursor: committed, it
 * goes on to 5; when Redis does not answer that either, the next dw_actions_tick() that reaches
 * Redis re-submits what is pending of the model, as a resume would, without the lease moving.
 */
#ifndef DW_ACTIONS_H
#define DW_ACTIONS_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "driftwatch/core/dw_config.h"
#include "driftwatch/io/dw_redis.h"

struct dw_actions;

/**
 * @brief Starts the delivery thread (own Redis connection) for cfg's sinks.
 * @param producer for triggers (NULL: triggers are not produced)
 * @returns NULL with errstr.
 */
struct dw_actions *dw_actions_new(const struct dw_config *cfg, struct dw_redis *redis,
                                  rd_kafka_t *producer, const char *owner, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Alerts and trigger of one window report, committed with the report (report_name :=
 *        the report as JSON, expiring after window.retention), the cursor
 *        (cursor_name := next_cursor) and the caller's evaluation state that this step changed
 *        (extra: at most 2 keys, no expiry; n_extra 0 for none), such as the baseline.
 * @returns 0 committed (also a commit whose reply was lost, found committed), -1 not committed
 *          (Redis or Kafka failure, or the lease was lost) or not known to be: evaluate the
 *          window again later, from the cursor then in Redis.
 */
int dw_actions_window(struct dw_actions *a, const struct dw_model_cfg *m, json_t *report,
                      const char *report_name, const char *cursor_name, int64_t next_cursor,
                      const struct dw_redis_kv *extra, size_t n_extra);

/** @brief Re-submits model mi's pending deliveries and reloads its firing set (after taking its
 *         lease). The first model's resume also takes the records that name no model. */
void dw_actions_resume(struct dw_actions *a, size_t mi);

/** @brief Forgets model mi's firing set (its lease was released or lost: another pod re-sends
 *         its alerts now); driftwatch_alerts_firing{model} := 0 here. */
void dw_actions_drop(struct dw_actions *a, size_t mi);

/** @brief Periodic work for the models evaluated here (evaluating[mi] != 0): for one whose
 *         last commit's outcome was not known, re-submitting its pending deliveries and reloading
 *         its firing set (once Redis answers); Alertmanager re-sends of the firing alerts. */
void dw_actions_tick(struct dw_actions *a, int64_t now_ms, const unsigned char *evaluating);

/**
 * @returns the alerts firing per model as this pod last committed or loaded them (a new
 *          object model -> [{rule, feature, severity, value, threshold, starts_at}], for
 *          /status; empty on a pod that is not the evaluator).
 */
json_t *dw_actions_status(const struct dw_actions *a);

/** @returns messages waiting for delivery. */
size_t dw_actions_pending(struct dw_actions *a);

/** @brief The producer for triggers from now on (the runner replaced a failed one). */
void dw_actions_set_producer(struct dw_actions *a, rd_kafka_t *producer);

/** @brief Flushes deliveries for up to flush_ms, then frees (after the producer given to
 *         dw_actions_new() is destroyed: triggers in flight are tracked until then). NULL is a
 *         no-op. */
void dw_actions_free(struct dw_actions *a, int64_t flush_ms);

#endif
