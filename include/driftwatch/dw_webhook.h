/*
 * dw_webhook.h - alert delivery over HTTP, off the consumer's thread.
 *
 * dw_webhook_enqueue() copies the payload into a bounded queue and returns at once; a delivery
 * thread POSTs it with libcurl (Content-Type: application/json, header `Idempotency-Key` and
 * `webhook-id` set to the caller's stable key), with a per-attempt timeout, and retries failed
 * attempts (connection errors, timeouts, 408, 429, 5xx) with exponential backoff and full
 * jitter up to max_attempts; other 4xx are not retried. A full queue rejects the payload
 * (counted as dropped); the consumer never blocks on a slow receiver.
 * Metrics: driftwatch_alerts_sent_total, driftwatch_alerts_failed_total,
 * driftwatch_alerts_retried_total, driftwatch_alerts_dropped_total,
 * driftwatch_alert_queue_depth, driftwatch_alert_delivery_seconds_total.
 */
#ifndef DW_WEBHOOK_H
#define DW_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct dw_webhook_cfg {
    const char *url;
    int64_t timeout_ms;         /* per attempt */
    int64_t max_attempts;       /* >= 1 */
    int64_t backoff_initial_ms; /* first retry delay (before jitter) */
    int64_t backoff_max_ms;     /* cap of the exponential delay */
    int64_t queue_size;         /* payloads waiting or being retried */
};

struct dw_webhook;

/** @brief Starts the delivery thread. @returns NULL with errstr on a bad config. */
struct dw_webhook *dw_webhook_new(const struct dw_webhook_cfg *cfg, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Queues one payload. @returns 0, or -1 when the queue is full (counted as dropped).
 * @locality any thread
 */
int dw_webhook_enqueue(struct dw_webhook *wh, const char *idempotency_key, const char *body);

/** @returns payloads queued or in flight. */
size_t dw_webhook_pending(struct dw_webhook *wh);

/**
 * @brief Stops the thread after trying to deliver what is queued for up to flush_ms
 *        milliseconds (retries stop at the deadline); frees everything.
 */
void dw_webhook_destroy(struct dw_webhook *wh, int64_t flush_ms);

#endif
