/*
 * dw_deliver.h - alert delivery to every sink, off the consumer's path, at least once.
 *
 * One delivery thread drives a libcurl multi handle: messages of all sinks are in flight
 * concurrently, each attempt with its sink's timeout. Failed attempts (dw_sink_classify:
 * RETRY) are retried with exponential backoff and jitter up to the sink's max_attempts; a
 * rejected message or the last failed attempt is final (counted failed, logged with the
 * message id and sink name, never the URL's path or a secret).
 *
 * Persistence: the caller writes each message into the Redis hash `key` (field =
 * dw_deliver_field(), value = dw_deliver_record()) in the same transaction as the alert state
 * that produced it, then submits it here. When a message is delivered or finally failed the
 * thread HDELs its field. dw_deliver_resume() loads a model's fields still in the hash (a
 * crash between firing and delivery) and submits those not already queued, so an alert is delivered
 * at least once, with the same message id (webhook-id, dedup_key) on every attempt and after a
 * restart.
 *
 * Redis is reached through a dw_redis connection of dw_deliver's own (dw_redis_connect() with
 * the redis_* settings below), never the caller's: a dw_redis serves one thread at a time, and
 * this one belongs to the delivery thread (dw_deliver_resume() borrows it under a lock).
 *
 * The queue is bounded (queue_size messages waiting or in flight); a submit beyond it is
 * dropped: counted, logged, and its field removed from Redis. dw_deliver_resume() never drops:
 * it stops at a full queue and leaves the rest in Redis for a later call.
 *
 * Redis failures (connection lost while HDEL-ing) are logged and the HDEL retried later on a
 * new connection; a field that could not be removed only means one more delivery (same id)
 * after the next resume.
 *
 * Metrics, label sink="<name>": driftwatch_alert_deliveries_sent_total,
 * driftwatch_alert_deliveries_failed_total, driftwatch_alert_deliveries_retried_total,
 * driftwatch_alert_deliveries_dropped_total, driftwatch_alert_delivery_seconds_total and
 * driftwatch_alert_deliveries_timed_total (submit-to-accepted latency sum and count), and
 * driftwatch_alert_queue_depth (all sinks).
 */
#ifndef DW_DELIVER_H
#define DW_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_sink.h"

struct dw_deliver_cfg {
    const struct dw_sink_cfg *sinks; /* borrowed; must outlive the dw_deliver */
    size_t n_sinks;
    int64_t queue_size;     /* messages waiting or in flight, all sinks */
    const char *redis_host; /* loopback in tests */
    int redis_port;
    const char *redis_password;   /* "" or NULL = none */
    const char *redis_username;   /* "" or NULL = none (AUTH <password> alone) */
    char *const *redis_sentinels; /* "host:port" of each sentinel; none: redis_host/port */
    size_t n_redis_sentinels;
    const char *redis_master_name;       /* with sentinels */
    const char *redis_sentinel_password; /* "" or NULL = none */
    int redis_db;
    int redis_cluster;        /* redis.cluster: redis_nodes are the seeds */
    char *const *redis_nodes; /* "host:port" each; borrowed, copied */
    size_t n_redis_nodes;
    const char *key;           /* the Redis hash of pending messages, e.g. "{dw:G}:deliveries";
                                * NULL = no persistence (the `alerts test` command) */
    int64_t redis_timeout_ms;  /* connect and command timeout (milliseconds); 0 = 2000 */
    const char *const *models; /* the configured models' names (borrowed: must outlive it); a
                                * resume with `unowned` takes the records of any other model */
    size_t n_models;
};

struct dw_deliver;
struct dw_metric;

/** @returns the Redis hash field of a message: "<sink name>/<message id>" (malloc'ed). */
char *dw_deliver_field(const char *sink, const char *msg_id);

/**
 * @returns the Redis hash value: {"sink","id","body","created_ms"} and "model" (the model whose
 *          evaluation produced it, unless NULL) as compact JSON (malloc'ed), or NULL when a
 *          string is not valid UTF-8.
 */
char *dw_deliver_record(const char *sink, const char *msg_id, const char *body, int64_t created_ms,
                        const char *model);

/** @brief Connects to Redis (when key is set) and starts the thread. NULL with errstr. */
struct dw_deliver *dw_deliver_new(const struct dw_deliver_cfg *cfg, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Queues one message for the sink of that name (copied). A message whose (sink, id)
 *        is already queued is ignored (returns 0).
 * @returns 0, or -1: unknown sink, invalid id (empty, 512 bytes or more, control characters:
 *          dropped), queue full (dropped), or dw_deliver_destroy() running (the message
 *          stays in Redis).
 * @locality any thread
 */
int dw_deliver_submit(struct dw_deliver *d, const char *sink, const char *msg_id, const char *body);

/**
 * @brief Submits the messages still in the Redis hash (not already queued) of `model` (NULL:
 *        of every model), and with `unowned` those whose record names no model (written before
 *        records named it) or a model not among the configured ones (removed or renamed while
 *        its messages were pending: taken, not left in Redis for an evaluator that will never
 *        come). They are submitted in the order they were committed (the records' created_ms),
 *        not the hash's, which is arbitrary: a PagerDuty resolve must not overtake its trigger.
 *        Stops at a full queue: the rest stays in Redis, counted in *left (when not NULL) and
 *        logged, for the next resume. Records that cannot be parsed or name a sink no longer
 *        configured are logged and removed. Pods evaluating different models each resume
 *        their own models' messages, so a message another live pod is delivering is not sent
 *        again by a pod taking over another model.
 * @returns the number submitted, or -1 when Redis cannot be read (or no key is set).
 * @locality any thread
 */
int dw_deliver_resume(struct dw_deliver *d, const char *model, int unowned, size_t *left);

/** @returns messages queued or in flight. */
size_t dw_deliver_pending(struct dw_deliver *d);

/**
 * @brief Result of the last finished message of a sink, for `driftwatch alerts test`:
 *        waits up to wait_ms for that sink's messages to drain, then fills buf with
 *        "delivered (HTTP n)", "rejected (HTTP n)" or "failed after k attempts: <reason>"
 *        ("nothing sent" / "still being delivered" when no message of the sink finished).
 * @returns 0 when the last message was delivered, -1 otherwise.
 */
int dw_deliver_result(struct dw_deliver *d, const char *sink, int64_t wait_ms, char *buf,
                      size_t size);

/**
 * @brief The delivery metric series of a sink, e.g. ("driftwatch_alert_deliveries_sent_total",
 *        "hook"), registered with the help text dw_deliver uses (for tests and the CLI).
 *        "driftwatch_alert_queue_depth" has no sink label (sink ignored).
 * @returns the series, or NULL for a name that is not one of the delivery metrics.
 */
struct dw_metric *dw_deliver_metric(const char *name, const char *sink);

/**
 * @brief The series of driftwatch_alert_records_discarded_total{reason}: records read back from
 *        Redis that can never be delivered, removed and logged. `reason`: "not_a_record" or
 *        "sink_removed".
 */
struct dw_metric *dw_deliver_discarded(const char *reason);

/**
 * @brief Keeps delivering for up to flush_ms milliseconds, then stops the thread and frees
 *        everything. Messages not delivered stay in Redis for the next resume (without a key
 *        they are counted failed); attempts still in flight at the deadline are abandoned.
 */
void dw_deliver_destroy(struct dw_deliver *d, int64_t flush_ms);

#endif
