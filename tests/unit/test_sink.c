/*
 * test_sink.c - dw_sink: signatures against published vectors, each sink's payload, routing,
 * the request prepared for an attempt, and the classification of HTTP answers.
 *
 * Notifications are built by hand (json_pack) in the shape documented for dw_rules_step(), so
 * these tests do not depend on the rules engine. The expected signatures are the Standard
 * Webhooks specification's example and the example of GitHub's "Validating webhook
 * deliveries" page; the two padded-secret vectors were computed with Python's hmac module
 * (secrets whose keys are longer than the SHA-256 block, so a key with stray decoded padding
 * bytes would give another signature).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_sink.h"

#include "dw_test.h"
#include "dw_test_json.h"

#define NOTIF_ID "0123456789abcdef0123456789abcdef"
#define URL_SECRET "https://hooks.example.invalid/services/T000/B000/URLTOKEN123"
#define SIGN_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ROUTING_KEY "R0UT1NGKEY0000000000000000000000"
#define GENERATOR "http://127.0.0.1:8080/status"
#define RUNBOOK "https://runbooks.example.invalid/drift"

/* ---------------------------------------------------------------------------------------- */
/* Fixtures                                                                                  */

static json_t *alert_new(const char *fp, const char *rule, const char *feature, const char *status,
                         const char *sev, double value, const char *summary, const char *runbook)
{
    json_t *labels = json_pack("{s:s,s:s,s:s,s:s}", "alertname", rule, "model", "fraud", "severity",
                               sev, "team", "risk");
    if (feature != NULL) {
        json_object_set_new(labels, "feature", json_string(feature));
    }
    json_t *ann = json_pack("{s:s}", "summary", summary);
    if (runbook != NULL) {
        json_object_set_new(ann, "runbook_url", json_string(runbook));
    }
    json_t *a =
        json_pack("{s:s,s:s,s:o,s:s,s:s,s:b,s:f,s:f,s:s,s:o,s:o}", "fingerprint", fp, "rule", rule,
                  "feature", feature != NULL ? json_string(feature) : json_null(), "status", status,
                  "severity", sev, "repeat", 0, "value", value, "threshold", 0.2, "starts_at",
                  "2026-11-22T10:15:00Z", "labels", labels, "annotations", ann);
    assert_non_null(a);
    if (strcmp(status, "resolved") == 0) {
        json_object_set_new(a, "ends_at", json_string("2026-11-22T10:20:00Z"));
    }
    return a;
}

static json_t *notif_new(json_t *alerts, json_t *firing)
{
    json_t *n =
        json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:o,s:o}", "id", NOTIF_ID, "model", "fraud",
                  "window_start", "2026-11-22T10:15:00Z", "window_end", "2026-11-22T10:16:00Z",
                  "window_start_ms", (json_int_t)1795255500000, "stage", "close", "alerts", alerts,
                  "firing", firing != NULL ? firing : json_array());
    assert_non_null(n);
    return n;
}

/* Two firing alerts: feature_drift on amount (warning), dataset_drift (critical). */
static json_t *notif_firing(void)
{
    json_t *alerts = json_array();
    json_array_append_new(alerts, alert_new("aaaaaaaaaaaaaaaa", "feature_drift", "amount", "firing",
                                            "warning", 0.31, "amount drifted on fraud", RUNBOOK));
    json_array_append_new(alerts, alert_new("bbbbbbbbbbbbbbbb", "dataset_drift", NULL, "firing",
                                            "critical", 1.0, "fraud dataset drift", NULL));
    return notif_new(alerts, json_deep_copy(alerts));
}

static struct dw_sink_cfg sink_cfg(enum dw_sink_type type)
{
    struct dw_sink_cfg s;
    memset(&s, 0, sizeof(s));
    s.name = "primary";
    s.type = type;
    s.url = URL_SECRET;
    s.secret = type == DW_SINK_WEBHOOK ? SIGN_SECRET : NULL;
    s.routing_key = type == DW_SINK_PAGERDUTY ? ROUTING_KEY : NULL;
    s.timeout_ms = 5000;
    s.max_attempts = 3;
    s.backoff_initial_ms = 100;
    s.backoff_max_ms = 1000;
    s.resend_interval_ms = 60000;
    return s;
}

static json_t *parse(const char *body)
{
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    if (j == NULL) {
        fail_msg("body is not JSON: %s (%s)", err.text, body);
    }
    return j;
}

/* Value of header `name` ("name: value") in req, or NULL. */
static const char *header_value(const struct dw_sink_request *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strncmp(req->headers[i], name, len) == 0 && req->headers[i][len] == ':' &&
            req->headers[i][len + 1] == ' ') {
            return req->headers[i] + len + 2;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Signatures                                                                                */

static void test_sign_standard_vector(void **state)
{
    (void)state;
    const char *body = "{\"test\": 2432232314}";
    char sig[64];
    assert_int_equal(dw_sign_standard(SIGN_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                      strlen(body), sig, sizeof(sig)),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

    /* Without the prefix the secret is decoded whole: same key, same signature. */
    memset(sig, 0, sizeof(sig));
    assert_int_equal(dw_sign_standard("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                      "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                      strlen(body), sig, sizeof(sig)),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

    /* Another timestamp, another signature. */
    assert_int_equal(dw_sign_standard(SIGN_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
                                      strlen(body), sig, sizeof(sig)),
                     0);
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

    /* 48 bytes are enough, 47 are not. */
    assert_int_equal(dw_sign_standard(SIGN_SECRET, "m", 1, body, strlen(body), sig, 48), 0);
    assert_int_equal(strlen(sig), 47);
    assert_int_equal(dw_sign_standard(SIGN_SECRET, "m", 1, body, strlen(body), sig, 47), -1);
}

static void test_sign_standard_padding(void **state)
{
    (void)state;
    /* Keys of 95 and 100 bytes (one and two '=' of padding), longer than the SHA-256 block:
     * decoded padding left on the key would change the signature. Python hmac vectors. */
    const char *body = "{\"a\":1}";
    char sig[64];
    assert_int_equal(
        dw_sign_standard("whsec_AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVM"
                         "U1phaG92fYSLkpmgp661vMPK0djf5u30+wIJEBceJSwzOkFIT1ZdZGtyeYCHjpU=",
                         "msg_pad", 1700000000, body, strlen(body), sig, sizeof(sig)),
        0);
    assert_string_equal(sig, "v1,DgtQtAfIK6ugIMxByOocXmJXV1SGk8NOzikbkf9AFvQ=");
    assert_int_equal(
        dw_sign_standard("whsec_AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVM"
                         "U1phaG92fYSLkpmgp661vMPK0djf5u30+wIJEBceJSwzOkFIT1ZdZGtyeYCHjpWco6qxuA==",
                         "msg_pad", 1700000000, body, strlen(body), sig, sizeof(sig)),
        0);
    assert_string_equal(sig, "v1,khCXCBAmc3a94JCvFRliO/LUJXgW6Gn9K8u+0VkWGxs=");
    /* The same 100-byte key without its padding. */
    assert_int_equal(
        dw_sign_standard("whsec_AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVM"
                         "U1phaG92fYSLkpmgp661vMPK0djf5u30+wIJEBceJSwzOkFIT1ZdZGtyeYCHjpWco6qxuA",
                         "msg_pad", 1700000000, body, strlen(body), sig, sizeof(sig)),
        0);
    assert_string_equal(sig, "v1,khCXCBAmc3a94JCvFRliO/LUJXgW6Gn9K8u+0VkWGxs=");
}

static void test_sign_standard_bad_secret(void **state)
{
    (void)state;
    char sig[64];
    const char *bad[] = {"whsec_",     "",           "whsec_not base64!", "whsec_abcde",
                         "whsec_ab=c", "whsec_****", "whsec_abcd==",      "whsec_abc==",
                         "whsec_ab==="};
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
        assert_int_equal(dw_sign_standard(bad[i], "m", 1, "{}", 2, sig, sizeof(sig)), -1);
    }
}

static void test_sign_github_vector(void **state)
{
    (void)state;
    char sig[80];
    assert_int_equal(
        dw_sign_github("It's a Secret to Everybody", "Hello, World!", 13, sig, sizeof(sig)), 0);
    assert_string_equal(sig,
                        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    assert_int_equal(dw_sign_github("It's a Secret to Everybody", "Hello, World!", 13, sig, 72), 0);
    assert_int_equal(dw_sign_github("It's a Secret to Everybody", "Hello, World!", 13, sig, 71),
                     -1);
    /* Only body_len bytes are signed. */
    assert_int_equal(
        dw_sign_github("It's a Secret to Everybody", "Hello, World!XYZ", 13, sig, sizeof(sig)), 0);
    assert_string_equal(sig,
                        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

/* ---------------------------------------------------------------------------------------- */
/* Names and routing                                                                         */

static void test_type_names(void **state)
{
    (void)state;
    const char *names[] = {"webhook", "slack", "pagerduty", "alertmanager"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(names); i++) {
        enum dw_sink_type t;
        assert_int_equal(dw_sink_type_parse(names[i], &t), 0);
        assert_int_equal(t, (enum dw_sink_type)i);
        assert_string_equal(dw_sink_type_name(t), names[i]);
    }
    enum dw_sink_type t = DW_SINK_SLACK;
    assert_int_equal(dw_sink_type_parse("Slack", &t), -1);
    assert_int_equal(dw_sink_type_parse("email", &t), -1);
    assert_int_equal(dw_sink_type_parse(NULL, &t), -1);
    assert_int_equal(t, DW_SINK_SLACK);
}

static void test_routes(void **state)
{
    (void)state;
    json_t *warn = alert_new("aaaaaaaaaaaaaaaa", "feature_drift", "amount", "firing", "warning",
                             0.3, "s", NULL);
    json_t *crit =
        alert_new("bbbbbbbbbbbbbbbb", "dataset_drift", NULL, "firing", "critical", 1.0, "s", NULL);
    json_object_set_new(json_object_get(crit, "labels"), "tier", json_integer(2));
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);

    /* 0 = every severity */
    assert_int_equal(dw_sink_routes(&s, warn), 1);
    assert_int_equal(dw_sink_routes(&s, crit), 1);

    s.severities = 1u << DW_SEV_CRITICAL;
    assert_int_equal(dw_sink_routes(&s, warn), 0);
    assert_int_equal(dw_sink_routes(&s, crit), 1);
    s.severities = 1u << DW_SEV_WARNING;
    assert_int_equal(dw_sink_routes(&s, warn), 1);
    assert_int_equal(dw_sink_routes(&s, crit), 0);
    s.severities = (1u << DW_SEV_WARNING) | (1u << DW_SEV_CRITICAL);
    assert_int_equal(dw_sink_routes(&s, warn), 1);
    assert_int_equal(dw_sink_routes(&s, crit), 1);
    s.severities = 0;

    /* every matcher must hold; a number label matches its JSON text */
    struct dw_rule_label m[2] = {{"team", "risk"}, {"tier", "2"}};
    s.match = m;
    s.n_match = 1;
    assert_int_equal(dw_sink_routes(&s, warn), 1);
    s.n_match = 2;
    assert_int_equal(dw_sink_routes(&s, warn), 0); /* no tier label */
    assert_int_equal(dw_sink_routes(&s, crit), 1);
    m[0].value = "growth";
    assert_int_equal(dw_sink_routes(&s, crit), 0);

    /* not an alert */
    assert_int_equal(dw_sink_routes(&s, NULL), 0);
    json_decref(warn);
    json_decref(crit);
}

/* ---------------------------------------------------------------------------------------- */
/* Webhook                                                                                   */

static void test_webhook_render(void **state)
{
    (void)state;
    json_t *n = notif_firing();
    json_object_set_new(n, "report", json_pack("{s:s,s:i}", "model", "fraud", "predictions", 1200));
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    assert_non_null(msgs);
    assert_string_equal(msgs[0].id, NOTIF_ID);
    assert_not_contains(msgs[0].body, "URLTOKEN123");
    assert_not_contains(msgs[0].body, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    json_t *p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "type"), "driftwatch.alert");
    assert_string_equal(jstr(p, "id"), NOTIF_ID);
    assert_string_equal(jstr(p, "model"), "fraud");
    assert_string_equal(jstr(p, "window_start"), "2026-11-22T10:15:00Z");
    assert_string_equal(jstr(p, "window_end"), "2026-11-22T10:16:00Z");
    assert_string_equal(jstr(p, "stage"), "close");
    assert_string_equal(jstr(p, "status"), "firing");
    assert_null(json_object_get(p, "firing"));
    json_t *alerts = json_object_get(p, "alerts");
    assert_int_equal(json_array_size(alerts), 2);
    /* the alerts are those of the notification, unchanged */
    assert_true(json_equal(alerts, json_object_get(n, "alerts")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(p, "report"), "predictions")), 1200);
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);

    /* severity routing keeps only the critical alert */
    s.severities = 1u << DW_SEV_CRITICAL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    p = parse(msgs[0].body);
    alerts = json_object_get(p, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(jstr(json_array_get(alerts, 0), "rule"), "dataset_drift");
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);

    /* a matcher that holds for no alert: no message */
    struct dw_rule_label m = {"team", "growth"};
    s.severities = 0;
    s.match = &m;
    s.n_match = 1;
    msgs = (struct dw_sink_msg *)&m; /* must be reset */
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 0);
    assert_null(msgs);
    s.match = NULL;
    s.n_match = 0;

    /* re-sends are for Alertmanager only */
    assert_int_equal(dw_sink_render(&s, n, 1, &msgs), 0);
    assert_null(msgs);

    /* a test notification */
    json_object_set_new(n, "test", json_true());
    json_object_del(n, "report");
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "type"), "driftwatch.test");
    assert_null(json_object_get(p, "report"));
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);
    json_decref(n);
}

static void test_webhook_resolved(void **state)
{
    (void)state;
    json_t *alerts = json_array();
    json_array_append_new(alerts, alert_new("aaaaaaaaaaaaaaaa", "feature_drift", "amount",
                                            "resolved", "warning", 0.01, "ok", NULL));
    json_t *n = notif_new(alerts, NULL);
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    json_t *p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "status"), "resolved");
    assert_string_equal(jstr(json_array_get(json_object_get(p, "alerts"), 0), "ends_at"),
                        "2026-11-22T10:20:00Z");
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);

    /* one firing among resolved ones: firing */
    json_array_append_new(alerts, alert_new("bbbbbbbbbbbbbbbb", "dataset_drift", NULL, "firing",
                                            "critical", 1.0, "s", NULL));
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "status"), "firing");
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);

    /* routed away, the firing one no longer counts */
    s.severities = 1u << DW_SEV_WARNING;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "status"), "resolved");
    assert_int_equal(json_array_size(json_object_get(p, "alerts")), 1);
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);
    json_decref(n);
}

static void test_render_malformed(void **state)
{
    (void)state;
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);
    struct dw_sink_msg *msgs = NULL;
    json_t *n = json_pack("{s:[]}", "alerts");
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 0); /* no id */
    assert_null(msgs);
    json_decref(n);
    n = json_array();
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 0);
    assert_null(msgs);
    json_decref(n);
    /* no alerts at all */
    n = notif_new(json_array(), NULL);
    for (int t = DW_SINK_WEBHOOK; t <= DW_SINK_ALERTMANAGER; t++) {
        s.type = (enum dw_sink_type)t;
        assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 0);
        assert_null(msgs);
    }
    json_decref(n);
}

/* ---------------------------------------------------------------------------------------- */
/* Slack                                                                                     */

static void test_slack_render(void **state)
{
    (void)state;
    json_t *n = notif_firing();
    struct dw_sink_cfg s = sink_cfg(DW_SINK_SLACK);
    s.generator_url = GENERATOR;
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    assert_string_equal(msgs[0].id, NOTIF_ID);
    assert_not_contains(msgs[0].body, "URLTOKEN123");
    json_t *p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "text"), "[FIRING:2] fraud window 10:15\xE2\x80\x93"
                                         "10:16 UTC: feature_drift amount, dataset_drift");
    json_t *blocks = json_object_get(p, "blocks");
    assert_int_equal(json_array_size(blocks), 4); /* header, context, 2 sections */
    json_t *h = json_array_get(blocks, 0);
    assert_string_equal(jstr(h, "type"), "header");
    assert_string_equal(jstr(json_object_get(h, "text"), "type"), "plain_text");
    assert_string_equal(jstr(json_object_get(h, "text"), "text"), "[FIRING:2] fraud: 2 alerts");
    json_t *ctx = json_array_get(blocks, 1);
    assert_string_equal(jstr(ctx, "type"), "context");
    const char *ctext = jstr(json_array_get(json_object_get(ctx, "elements"), 0), "text");
    assert_contains(ctext, "2026-11-22T10:15:00Z");
    assert_contains(ctext, "<" GENERATOR "|driftwatch>");
    json_t *sec = json_array_get(blocks, 2);
    assert_string_equal(jstr(sec, "type"), "section");
    const char *t1 = jstr(json_object_get(sec, "text"), "text");
    assert_string_equal(jstr(json_object_get(sec, "text"), "type"), "mrkdwn");
    assert_string_equal(t1, "*FIRING* *feature_drift amount* (warning)\namount drifted on fraud"
                            "\nvalue 0.31, threshold 0.2\n<" RUNBOOK "|Runbook>");
    const char *t2 = jstr(json_object_get(json_array_get(blocks, 3), "text"), "text");
    assert_not_contains(t2, "Runbook"); /* no runbook_url on that alert */
    assert_not_contains(t2, "\n_");     /* nor a description */
    assert_contains(t2, "*FIRING* *dataset_drift* (critical)");
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);

    /* routing applies: critical only */
    s.severities = 1u << DW_SEV_CRITICAL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    p = parse(msgs[0].body);
    assert_string_equal(jstr(p, "text"), "[FIRING:1] fraud window 10:15\xE2\x80\x93"
                                         "10:16 UTC: dataset_drift");
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);
    assert_int_equal(dw_sink_render(&s, n, 1, &msgs), 0);
    assert_null(msgs);
    json_decref(n);
}

static void test_slack_many_and_escaping(void **state)
{
    (void)state;
    json_t *alerts = json_array();
    for (int i = 0; i < 25; i++) {
        char fp[17];
        char feat[32];
        snprintf(fp, sizeof(fp), "%016x", i);
        snprintf(feat, sizeof(feat), i == 0 ? "a<b&c" : "f%02d", i);
        json_array_append_new(
            alerts, alert_new(fp, "feature_drift", feat, i < 3 ? "resolved" : "firing", "warning",
                              i == 0 ? 0.0031234567891 : 0.5, i == 0 ? "x > y" : "s", NULL));
    }
    json_object_set_new(json_object_get(json_array_get(alerts, 0), "annotations"), "description",
                        json_string("Check the <amount> feed"));
    json_t *n = notif_new(alerts, NULL);
    /* a window across midnight shows dates */
    json_object_set_new(n, "window_start", json_string("2026-11-22T23:00:00Z"));
    json_object_set_new(n, "window_end", json_string("2026-11-23T00:00:00Z"));
    json_object_set_new(n, "test", json_true());
    struct dw_sink_cfg s = sink_cfg(DW_SINK_SLACK);
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    json_t *p = parse(msgs[0].body);
    const char *text = jstr(p, "text");
    const char *prefix = "[TEST] [FIRING:22 RESOLVED:3] fraud window 2026-11-22 23:00\xE2\x80\x93"
                         "2026-11-23 00:00 UTC: feature_drift a&lt;b&amp;c, feature_drift f01, ";
    assert_prefix(text, prefix);
    size_t tl = strlen(text);
    assert_true(tl > 15);
    assert_string_equal(text + tl - strlen("feature_drift f09 and 15 more"),
                        "feature_drift f09 and 15 more");
    json_t *blocks = json_object_get(p, "blocks");
    assert_int_equal(json_array_size(blocks), 2 + 20 + 1);
    json_t *last = json_array_get(blocks, 22);
    assert_string_equal(jstr(last, "type"), "context");
    assert_string_equal(jstr(json_array_get(json_object_get(last, "elements"), 0), "text"),
                        "and 5 more");
    const char *s0 = jstr(json_object_get(json_array_get(blocks, 2), "text"), "text");
    assert_contains(s0, "\n_Check the &lt;amount&gt; feed_");
    assert_contains(s0, "*RESOLVED* *feature_drift a&lt;b&amp;c*");
    assert_contains(s0, "x &gt; y");
    assert_contains(s0, "\nvalue 0.00312346, threshold 0.2");
    assert_not_contains(s0, "a<b");
    assert_string_equal(jstr(json_object_get(json_array_get(blocks, 0), "text"), "text"),
                        "[TEST] [FIRING:22 RESOLVED:3] fraud: 25 alerts");
    json_decref(p);
    dw_sink_msgs_free(msgs, 1);
    json_decref(n);
}

/* ---------------------------------------------------------------------------------------- */
/* PagerDuty                                                                                 */

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : 3;
        p++;
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xC0) != 0x80) {
                return 0;
            }
        }
    }
    return 1;
}

static void test_pagerduty_render(void **state)
{
    (void)state;
    json_t *alerts = json_array();
    json_array_append_new(alerts, alert_new("bbbbbbbbbbbbbbbb", "dataset_drift", NULL, "firing",
                                            "critical", 1.0, "fraud dataset drift", RUNBOOK));
    json_array_append_new(alerts, alert_new("aaaaaaaaaaaaaaaa", "feature_drift", "amount",
                                            "resolved", "warning", 0.01, "ok", NULL));
    json_array_append_new(alerts, alert_new("cccccccccccccccc", "feature_drift", "age", "firing",
                                            "warning", 0.4, "age drifted", NULL));
    json_t *n = notif_new(alerts, NULL);
    struct dw_sink_cfg s = sink_cfg(DW_SINK_PAGERDUTY);
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 3);
    assert_string_equal(msgs[0].id, NOTIF_ID "-bbbbbbbbbbbbbbbb");
    assert_string_equal(msgs[1].id, NOTIF_ID "-aaaaaaaaaaaaaaaa");
    assert_string_equal(msgs[2].id, NOTIF_ID "-cccccccccccccccc");
    for (size_t i = 0; i < 3; i++) {
        assert_not_contains(msgs[i].body, ROUTING_KEY);
        assert_not_contains(msgs[i].body, "routing_key");
        assert_not_contains(msgs[i].body, "URLTOKEN123");
    }

    json_t *ev = parse(msgs[0].body);
    assert_string_equal(jstr(ev, "event_action"), "trigger");
    assert_string_equal(jstr(ev, "dedup_key"), "bbbbbbbbbbbbbbbb");
    json_t *pl = json_object_get(ev, "payload");
    assert_string_equal(jstr(pl, "summary"), "fraud dataset drift");
    assert_string_equal(jstr(pl, "source"), "driftwatch");
    assert_string_equal(jstr(pl, "severity"), "critical");
    assert_string_equal(jstr(pl, "timestamp"), "2026-11-22T10:15:00Z");
    assert_string_equal(jstr(pl, "component"), "fraud");
    assert_string_equal(jstr(pl, "group"), "fraud"); /* no feature: the model */
    assert_string_equal(jstr(pl, "class"), "dataset_drift");
    json_t *cd = json_object_get(pl, "custom_details");
    assert_double_exact(json_real_value(json_object_get(cd, "value")), 1.0);
    assert_double_exact(json_real_value(json_object_get(cd, "threshold")), 0.2);
    assert_string_equal(jstr(cd, "window_start"), "2026-11-22T10:15:00Z");
    assert_string_equal(jstr(cd, "window_end"), "2026-11-22T10:16:00Z");
    assert_string_equal(jstr(json_object_get(cd, "labels"), "team"), "risk");
    json_t *links = json_object_get(ev, "links");
    assert_int_equal(json_array_size(links), 1);
    assert_string_equal(jstr(json_array_get(links, 0), "href"), RUNBOOK);
    json_decref(ev);

    ev = parse(msgs[1].body);
    assert_int_equal(json_object_size(ev), 2);
    assert_string_equal(jstr(ev, "event_action"), "resolve");
    assert_string_equal(jstr(ev, "dedup_key"), "aaaaaaaaaaaaaaaa");
    json_decref(ev);

    ev = parse(msgs[2].body);
    pl = json_object_get(ev, "payload");
    assert_string_equal(jstr(pl, "severity"), "warning");
    assert_string_equal(jstr(pl, "group"), "age");
    assert_string_equal(jstr(pl, "class"), "feature_drift");
    assert_null(json_object_get(ev, "links"));
    json_decref(ev);
    dw_sink_msgs_free(msgs, 3);

    /* routing: warnings only */
    s.severities = 1u << DW_SEV_WARNING;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 2);
    assert_string_equal(msgs[0].id, NOTIF_ID "-aaaaaaaaaaaaaaaa");
    assert_string_equal(msgs[1].id, NOTIF_ID "-cccccccccccccccc");
    dw_sink_msgs_free(msgs, 2);
    assert_int_equal(dw_sink_render(&s, n, 1, &msgs), 0);
    assert_null(msgs);
    json_decref(n);
}

static void test_pagerduty_long_summary(void **state)
{
    (void)state;
    /* 700 two-byte characters: 1400 bytes, cut to at most 1024 on a character boundary */
    char *sum = malloc(1401);
    assert_non_null(sum);
    for (int i = 0; i < 700; i++) {
        sum[2 * i] = (char)0xC3;
        sum[2 * i + 1] = (char)0xA9; /* e acute */
    }
    sum[1400] = '\0';
    json_t *alerts = json_array();
    json_array_append_new(alerts, alert_new("aaaaaaaaaaaaaaaa", "feature_drift", "amount", "firing",
                                            "warning", 0.3, sum, NULL));
    json_t *n = notif_new(alerts, NULL);
    json_object_set_new(n, "test", json_true());
    struct dw_sink_cfg s = sink_cfg(DW_SINK_PAGERDUTY);
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    json_t *ev = parse(msgs[0].body);
    const char *got = jstr(json_object_get(ev, "payload"), "summary");
    assert_true(strlen(got) <= 1024);
    assert_true(strlen(got) > 1000);
    assert_true(utf8_valid(got));
    assert_prefix(got, "[TEST] \xC3\xA9");
    assert_string_equal(got + strlen(got) - 3, "\xE2\x80\xA6");
    json_decref(ev);
    dw_sink_msgs_free(msgs, 1);
    json_decref(n);
    free(sum);
}

/* ---------------------------------------------------------------------------------------- */
/* Alertmanager                                                                              */

static json_t *find_am(const json_t *arr, const char *alertname, const char *feature)
{
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        json_t *l = json_object_get(a, "labels");
        const char *f = json_string_value(json_object_get(l, "feature"));
        if (strcmp(jstr(l, "alertname"), alertname) == 0 &&
            ((feature == NULL && f == NULL) ||
             (feature != NULL && f != NULL && strcmp(f, feature) == 0))) {
            return a;
        }
    }
    fail_msg("no alert %s %s", alertname, feature != NULL ? feature : "");
    return NULL;
}

static void test_alertmanager_render(void **state)
{
    (void)state;
    json_t *alerts = json_array();
    json_t *newf = alert_new("cccccccccccccccc", "feature_drift", "age", "firing", "warning", 0.4,
                             "age drifted", RUNBOOK);
    json_t *l = json_object_get(newf, "labels");
    json_object_set_new(l, "tier", json_integer(2));
    json_object_set_new(l, "shadow", json_true());
    json_object_set_new(l, "ratio", json_real(0.1));
    json_object_set_new(l, "pvalue", json_real(0.0031234567891));
    json_object_set_new(l, "owner", json_null());
    json_object_set_new(l, "team-name", json_string("risk"));
    json_array_append_new(alerts, newf);
    json_array_append_new(alerts, alert_new("aaaaaaaaaaaaaaaa", "feature_drift", "amount",
                                            "resolved", "warning", 0.01, "ok", NULL));
    /* firing: the new one and one notified in an earlier step */
    json_t *firing = json_array();
    json_array_append_new(firing, json_deep_copy(newf));
    json_array_append_new(firing, alert_new("bbbbbbbbbbbbbbbb", "dataset_drift", NULL, "firing",
                                            "critical", 1.0, "fraud dataset drift", NULL));
    json_t *n = notif_new(alerts, firing);
    struct dw_sink_cfg s = sink_cfg(DW_SINK_ALERTMANAGER);
    s.generator_url = GENERATOR;
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    assert_string_equal(msgs[0].id, NOTIF_ID);
    assert_not_contains(msgs[0].body, "URLTOKEN123");
    json_t *arr = parse(msgs[0].body);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 3);

    json_t *a = find_am(arr, "feature_drift", "age");
    json_t *labels = json_object_get(a, "labels");
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v)
    {
        assert_true(json_is_string(v)); /* Alertmanager takes strings only */
    }
    assert_string_equal(jstr(labels, "tier"), "2");
    assert_string_equal(jstr(labels, "shadow"), "true");
    assert_string_equal(jstr(labels, "ratio"), "0.1");
    assert_string_equal(jstr(labels, "pvalue"), "0.0031234567891"); /* round-trip digits */
    assert_string_equal(jstr(labels, "team_name"), "risk");
    assert_string_equal(jstr(labels, "severity"), "warning");
    assert_string_equal(jstr(labels, "model"), "fraud");
    assert_null(json_object_get(labels, "owner"));
    assert_null(json_object_get(labels, "team-name"));
    json_t *ann = json_object_get(a, "annotations");
    assert_string_equal(jstr(ann, "summary"), "age drifted");
    assert_string_equal(jstr(ann, "runbook_url"), RUNBOOK);
    assert_string_equal(jstr(a, "startsAt"), "2026-11-22T10:15:00Z");
    assert_null(json_object_get(a, "endsAt"));
    assert_string_equal(jstr(a, "generatorURL"), GENERATOR);
    assert_int_equal(json_object_size(a), 4);

    a = find_am(arr, "dataset_drift", NULL);
    assert_null(json_object_get(a, "endsAt"));
    a = find_am(arr, "feature_drift", "amount");
    assert_string_equal(jstr(a, "endsAt"), "2026-11-22T10:20:00Z");
    assert_int_equal(json_object_size(a), 5);
    json_decref(arr);
    dw_sink_msgs_free(msgs, 1);

    /* re-send: the firing set only, its own id */
    s.generator_url = NULL;
    assert_int_equal(dw_sink_render(&s, n, 1, &msgs), 1);
    assert_string_equal(msgs[0].id, NOTIF_ID "-r");
    arr = parse(msgs[0].body);
    assert_int_equal(json_array_size(arr), 2);
    size_t i;
    json_array_foreach(arr, i, a)
    {
        assert_null(json_object_get(a, "endsAt"));
        assert_null(json_object_get(a, "generatorURL"));
    }
    json_decref(arr);
    dw_sink_msgs_free(msgs, 1);

    /* routing: critical only keeps dataset_drift */
    s.severities = 1u << DW_SEV_CRITICAL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    arr = parse(msgs[0].body);
    assert_int_equal(json_array_size(arr), 1);
    find_am(arr, "dataset_drift", NULL);
    json_decref(arr);
    dw_sink_msgs_free(msgs, 1);

    /* nothing routed: no message */
    struct dw_rule_label m = {"team", "growth"};
    s.severities = 0;
    s.match = &m;
    s.n_match = 1;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 0);
    assert_null(msgs);
    assert_int_equal(dw_sink_render(&s, n, 1, &msgs), 0);
    assert_null(msgs);
    json_decref(n);
}

/* ---------------------------------------------------------------------------------------- */
/* Prepare                                                                                   */

static void test_prepare_webhook(void **state)
{
    (void)state;
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);
    struct dw_sink_request req;
    char err[256];
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(dw_sink_prepare(&s, "msg_p5jXN8AQM9LWM0D4loKWxJek", body, 1614265330, &req,
                                     err, sizeof(err)),
                     0);
    assert_string_equal(req.body, body);
    assert_int_equal(req.n_headers, 5);
    assert_string_equal(header_value(&req, "Content-Type"), "application/json");
    assert_string_equal(header_value(&req, "webhook-id"), "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_string_equal(header_value(&req, "webhook-timestamp"), "1614265330");
    assert_string_equal(header_value(&req, "webhook-signature"),
                        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_string_equal(header_value(&req, "Idempotency-Key"), "msg_p5jXN8AQM9LWM0D4loKWxJek");
    dw_sink_request_free(&req);
    assert_null(req.body);
    assert_int_equal(req.n_headers, 0);

    /* a rendered message: the signature verifies over the exact body with now_s */
    json_t *n = notif_firing();
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 1);
    int64_t now_s = 1795255561;
    assert_int_equal(dw_sink_prepare(&s, msgs[0].id, msgs[0].body, now_s, &req, err, sizeof(err)),
                     0);
    assert_string_equal(req.body, msgs[0].body);
    assert_string_equal(header_value(&req, "webhook-id"), msgs[0].id);
    assert_string_equal(header_value(&req, "webhook-timestamp"), "1795255561");
    char sig[64];
    assert_int_equal(dw_sign_standard(SIGN_SECRET, msgs[0].id, now_s, msgs[0].body,
                                      strlen(msgs[0].body), sig, sizeof(sig)),
                     0);
    assert_string_equal(header_value(&req, "webhook-signature"), sig);
    assert_int_equal(dw_sign_standard(SIGN_SECRET, msgs[0].id, now_s + 1, msgs[0].body,
                                      strlen(msgs[0].body), sig, sizeof(sig)),
                     0);
    assert_string_not_equal(header_value(&req, "webhook-signature"), sig);
    for (size_t i = 0; i < req.n_headers; i++) {
        assert_not_contains(req.headers[i], "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_not_contains(req.headers[i], "URLTOKEN123");
    }
    dw_sink_request_free(&req);

    /* unsigned sink: no signature header */
    s.secret = "";
    assert_int_equal(dw_sink_prepare(&s, msgs[0].id, msgs[0].body, now_s, &req, err, sizeof(err)),
                     0);
    assert_null(header_value(&req, "webhook-signature"));
    assert_non_null(header_value(&req, "webhook-id"));
    assert_int_equal(req.n_headers, 4);
    dw_sink_request_free(&req);
    s.secret = NULL;
    assert_int_equal(dw_sink_prepare(&s, msgs[0].id, msgs[0].body, now_s, &req, err, sizeof(err)),
                     0);
    assert_null(header_value(&req, "webhook-signature"));
    dw_sink_request_free(&req);
    dw_sink_msgs_free(msgs, 1);
    json_decref(n);
}

static void test_prepare_bad_secret(void **state)
{
    (void)state;
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);
    const char *secrets[] = {"whsec_hunter2!secret", "plain-password-XYZ", "whsec_abcde"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(secrets); i++) {
        struct dw_sink_request req;
        char err[512] = "";
        s.secret = (char *)secrets[i];
        assert_int_equal(dw_sink_prepare(&s, "id1", "{}", 1, &req, err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
        assert_contains(err, "primary");
        assert_not_contains(err, secrets[i]);
        assert_not_contains(err, strchr(secrets[i], '_') != NULL ? strchr(secrets[i], '_') + 1
                                                                 : secrets[i]);
        assert_not_contains(err, "URLTOKEN123");
        assert_null(req.body);
        assert_null(req.headers);
        assert_int_equal(req.n_headers, 0);
    }
}

static void test_prepare_pagerduty(void **state)
{
    (void)state;
    json_t *n = notif_firing();
    struct dw_sink_cfg s = sink_cfg(DW_SINK_PAGERDUTY);
    struct dw_sink_msg *msgs = NULL;
    assert_int_equal(dw_sink_render(&s, n, 0, &msgs), 2);
    struct dw_sink_request req;
    char err[256];
    assert_int_equal(dw_sink_prepare(&s, msgs[0].id, msgs[0].body, 100, &req, err, sizeof(err)), 0);
    assert_int_equal(req.n_headers, 1);
    assert_string_equal(header_value(&req, "Content-Type"), "application/json");
    json_t *full = parse(req.body);
    assert_string_equal(jstr(full, "routing_key"), ROUTING_KEY);
    json_object_del(full, "routing_key");
    json_t *orig = parse(msgs[0].body);
    assert_true(json_equal(full, orig));
    json_decref(orig);
    json_decref(full);
    dw_sink_request_free(&req);

    /* no routing key; a body that is not an object: errors that quote no secret */
    s.routing_key = NULL;
    assert_int_equal(dw_sink_prepare(&s, msgs[0].id, msgs[0].body, 100, &req, err, sizeof(err)),
                     -1);
    assert_contains(err, "routing_key");
    s.routing_key = ROUTING_KEY;
    assert_int_equal(dw_sink_prepare(&s, "m1", "[1,2]", 100, &req, err, sizeof(err)), -1);
    assert_not_contains(err, ROUTING_KEY);
    assert_null(req.body);
    assert_int_equal(dw_sink_prepare(&s, "m1", "{not json", 100, &req, err, sizeof(err)), -1);
    assert_not_contains(err, ROUTING_KEY);
    dw_sink_msgs_free(msgs, 2);
    json_decref(n);
}

static void test_prepare_slack_alertmanager(void **state)
{
    (void)state;
    enum dw_sink_type types[] = {DW_SINK_SLACK, DW_SINK_ALERTMANAGER};
    for (size_t i = 0; i < DW_ARRAY_SIZE(types); i++) {
        struct dw_sink_cfg s = sink_cfg(types[i]);
        s.secret = SIGN_SECRET; /* ignored by these types */
        struct dw_sink_request req;
        char err[256];
        assert_int_equal(dw_sink_prepare(&s, "m1", "[]", 100, &req, err, sizeof(err)), 0);
        assert_int_equal(req.n_headers, 1);
        assert_string_equal(req.headers[0], "Content-Type: application/json");
        assert_string_equal(req.body, "[]");
        dw_sink_request_free(&req);
    }
}

static void test_prepare_bad_id(void **state)
{
    (void)state;
    struct dw_sink_cfg s = sink_cfg(DW_SINK_WEBHOOK);
    struct dw_sink_request req;
    char err[256];
    assert_int_equal(dw_sink_prepare(&s, "a\r\nX-Evil: 1", "{}", 1, &req, err, sizeof(err)), -1);
    assert_int_equal(dw_sink_prepare(&s, "", "{}", 1, &req, err, sizeof(err)), -1);
    assert_int_equal(dw_sink_prepare(&s, NULL, "{}", 1, &req, err, sizeof(err)), -1);
    assert_int_equal(dw_sink_prepare(&s, "id", NULL, 1, &req, err, sizeof(err)), -1);
    assert_null(req.headers);
}

/* ---------------------------------------------------------------------------------------- */
/* Classify                                                                                  */

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        long status;
        enum dw_sink_outcome want;
    } table[] = {
        {0, DW_SINK_RETRY},       {200, DW_SINK_DELIVERED}, {201, DW_SINK_DELIVERED},
        {202, DW_SINK_DELIVERED}, {204, DW_SINK_DELIVERED}, {299, DW_SINK_DELIVERED},
        {100, DW_SINK_REJECTED},  {301, DW_SINK_REJECTED},  {302, DW_SINK_REJECTED},
        {400, DW_SINK_REJECTED},  {401, DW_SINK_REJECTED},  {403, DW_SINK_REJECTED},
        {404, DW_SINK_REJECTED},  {408, DW_SINK_RETRY},     {409, DW_SINK_REJECTED},
        {413, DW_SINK_REJECTED},  {422, DW_SINK_REJECTED},  {429, DW_SINK_RETRY},
        {500, DW_SINK_RETRY},     {502, DW_SINK_RETRY},     {503, DW_SINK_RETRY},
        {504, DW_SINK_RETRY},     {599, DW_SINK_RETRY},
    };
    for (int t = DW_SINK_WEBHOOK; t <= DW_SINK_ALERTMANAGER; t++) {
        struct dw_sink_cfg s = sink_cfg((enum dw_sink_type)t);
        for (size_t i = 0; i < DW_ARRAY_SIZE(table); i++) {
            if (dw_sink_classify(&s, table[i].status) != table[i].want) {
                fail_msg("%s: HTTP %ld", dw_sink_type_name(s.type), table[i].status);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_standard_vector),
        cmocka_unit_test(test_sign_standard_padding),
        cmocka_unit_test(test_sign_standard_bad_secret),
        cmocka_unit_test(test_sign_github_vector),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_webhook_render),
        cmocka_unit_test(test_webhook_resolved),
        cmocka_unit_test(test_render_malformed),
        cmocka_unit_test(test_slack_render),
        cmocka_unit_test(test_slack_many_and_escaping),
        cmocka_unit_test(test_pagerduty_render),
        cmocka_unit_test(test_pagerduty_long_summary),
        cmocka_unit_test(test_alertmanager_render),
        cmocka_unit_test(test_prepare_webhook),
        cmocka_unit_test(test_prepare_bad_secret),
        cmocka_unit_test(test_prepare_pagerduty),
        cmocka_unit_test(test_prepare_slack_alertmanager),
        cmocka_unit_test(test_prepare_bad_id),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
