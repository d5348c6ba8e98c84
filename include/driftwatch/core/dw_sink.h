/*
 * dw_sink.h - what each alert sink receives: routing, payloads and signatures (pure C, no I/O).
 *
 * A notification (the JSON object of dw_rules_step(), optionally with a "report" member added
 * by the caller: the window report, the alert's evidence) becomes, per sink:
 *   - webhook      one message: the documented driftwatch payload (every sink's payload is
 *                  documented field by field in docs/alerting-payloads.md), signed
 *                  at send time per Standard Webhooks (webhook-id, webhook-timestamp,
 *                  webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">);
 *   - slack        one message: {"text", "blocks"} for an incoming webhook;
 *   - pagerduty    one message per alert: Events API v2, event_action trigger|resolve,
 *                  dedup_key = the alert's fingerprint, severity mapped (warning, critical);
 *   - alertmanager one message: the JSON array of POST /api/v2/alerts, made of the routed
 *                  "firing" alerts (no endsAt: Alertmanager's resolve_timeout applies, the
 *                  caller re-sends them every resend_interval) and the routed resolved alerts
 *                  of "alerts" (endsAt = their ends_at).
 * Rendering routes first: an alert goes to a sink when its severity is in the sink's
 * severities and every `match` label equals the alert's label of that name.
 *
 * Rendered messages hold no secret (they are persisted in Redis until delivered): the
 * PagerDuty routing key is inserted and the webhook signature computed by dw_sink_prepare()
 * at send time, from the config held in memory.
 */
#ifndef DW_SINK_H
#define DW_SINK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_rules.h"

#define DW_SINK_NAME_MAX 64 /* bytes of a sink name, [A-Za-z0-9_-]+ */

enum dw_sink_type {
    DW_SINK_WEBHOOK = 0,
    DW_SINK_SLACK,
    DW_SINK_PAGERDUTY,
    DW_SINK_ALERTMANAGER,
};

/** @brief One sink of `alerting.sinks` (owned by struct dw_config). */
struct dw_sink_cfg {
    char *name;
    enum dw_sink_type type;
    char *url;           /* secret: from ${VAR} or file:// in the config */
    char *secret;        /* webhook: "whsec_<base64>" signs the messages; NULL or "" = unsigned */
    char *routing_key;   /* pagerduty: the integration key (secret) */
    unsigned severities; /* bit (1u << DW_SEV_x) per severity sent; 0 = all */
    struct dw_rule_label *match; /* label matchers: all must equal */
    size_t n_match;
    int64_t timeout_ms;         /* per attempt */
    int64_t max_attempts;       /* >= 1 */
    int64_t backoff_initial_ms; /* first retry delay before jitter */
    int64_t backoff_max_ms;     /* cap of the exponential delay */
    int64_t resend_interval_ms; /* alertmanager: firing alerts re-sent this often */
    char *generator_url;        /* alertmanager generatorURL, links; NULL = none */
};

/** @brief A rendered message: stable id (also the idempotency key) and body, no secret. */
struct dw_sink_msg {
    char *id;
    char *body;
};

/** @brief An HTTP request ready for libcurl. */
struct dw_sink_request {
    char *body;     /* malloc'ed */
    char **headers; /* malloc'ed "Name: value" lines, Content-Type included */
    size_t n_headers;
};

enum dw_sink_outcome {
    DW_SINK_DELIVERED = 0, /* accepted */
    DW_SINK_RETRY,         /* try again later (transport error, timeout, 408, 429, 5xx) */
    DW_SINK_REJECTED,      /* final failure, not retried (other 4xx, 3xx) */
};

/** @returns "webhook", "slack", "pagerduty" or "alertmanager". */
const char *dw_sink_type_name(enum dw_sink_type t);

/** @returns 0 and *out for a type name, -1 for an unknown one. */
int dw_sink_type_parse(const char *name, enum dw_sink_type *out);

/** @returns 1 when the alert object (an element of "alerts"/"firing") is routed to the sink. */
int dw_sink_routes(const struct dw_sink_cfg *s, const json_t *alert);

/**
 * @brief Renders a notification for one sink (routing applied).
 *        Message ids: webhook, slack, alertmanager: "<notification id>"; pagerduty:
 *        "<notification id>-<fingerprint>". With `resend` set (alertmanager re-sends of the
 *        firing set), only the alertmanager type renders, with id "<notification id>-r".
 * @returns the number of messages stored in *out (0: nothing for this sink; *out NULL).
 */
size_t dw_sink_render(const struct dw_sink_cfg *s, const json_t *notification, int resend,
                      struct dw_sink_msg **out);

/**
 * @returns the key under which the sink needs a message delivered in order, or NULL when its
 *          messages may overtake each other. PagerDuty keys an incident by dedup_key: its
 *          message ids are "<notification id>-<fingerprint>", and the fingerprint is returned.
 */
const char *dw_sink_order_key(const struct dw_sink_cfg *s, const char *msg_id);

/** @brief Frees n messages and the array. */
void dw_sink_msgs_free(struct dw_sink_msg *msgs, size_t n);

/**
 * @brief The request for one attempt: headers (Content-Type: application/json; webhook:
 *        webhook-id, webhook-timestamp = now_s, webhook-signature when a secret is set, and
 *        Idempotency-Key; alertmanager/slack: Content-Type only), body (pagerduty: with
 *        "routing_key" inserted).
 * @returns 0, or -1 with errstr (a malformed secret or body; never quotes the secret).
 */
int dw_sink_prepare(const struct dw_sink_cfg *s, const char *msg_id, const char *body,
                    int64_t now_s, struct dw_sink_request *req, char *errstr, size_t errstr_size);

/** @brief Frees the request's members. */
void dw_sink_request_free(struct dw_sink_request *req);

/**
 * @brief Classifies an attempt's result. http_status 0 = no HTTP answer (refused, timeout).
 *        2xx delivered (PagerDuty answers 202); 408, 429 and 5xx retried; other statuses
 *        rejected (PagerDuty 400: invalid event, never retried).
 */
enum dw_sink_outcome dw_sink_classify(const struct dw_sink_cfg *s, long http_status);

/**
 * @brief Standard Webhooks signature "v1,<base64(HMAC-SHA256(key, id "." ts "." body))>",
 *        key = base64-decoded part of secret after "whsec_" (a secret without the prefix is
 *        decoded whole).
 * @returns 0, or -1 (secret not base64, out too small).
 */
int dw_sign_standard(const char *secret, const char *msg_id, int64_t ts, const char *body,
                     size_t body_len, char *out, size_t out_size);

/**
 * @brief GitHub's X-Hub-Signature-256 value "sha256=<hex HMAC-SHA256(secret, body)>".
 * @returns 0, or -1 when out is too small (72 bytes are enough).
 */
int dw_sign_github(const char *secret, const char *body, size_t body_len, char *out,
                   size_t out_size);

#endif
