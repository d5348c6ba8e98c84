/*
 * dw_sink.c - routing, payloads and signatures of the alert sinks (pure C, no I/O).
 *
 * Why rendering and sending are split: a rendered message is persisted in Redis (in the same
 * transaction as the alert state that produced it) until it is delivered, so it must be
 * reproducible, identified by a stable id, and free of secrets. Everything secret (the
 * PagerDuty routing key, the Standard Webhooks signature, whose timestamp changes with every
 * attempt) is added by dw_sink_prepare() just before each attempt, from the config in memory.
 * docs/alerting-payloads.md documents every payload field by field.
 *
 * Routing happens at render time: an alert goes to a sink when its severity is one of the
 * sink's severities (0 = all) and every `match` label equals the alert's label of that name
 * (labels are compared as text, a number as its JSON text). A sink that receives no alert of
 * a notification gets no message at all.
 *
 * Per sink:
 *   webhook       the notification as one documented object ("type", "status", "alerts", and
 *                 the window report as "report" when the caller attached it);
 *   slack         {"text", "blocks"}: a one-line summary (what phones show) and Block Kit
 *                 blocks, at most DW_SLACK_MAX_SECTIONS alert sections so that a storm of
 *                 per-feature alerts stays under Slack's 50-block limit;
 *   pagerduty     one Events API v2 event per alert, dedup_key = fingerprint, so PagerDuty
 *                 itself groups the trigger and the resolve of one instance;
 *   alertmanager  the array of POST /api/v2/alerts. Alertmanager owns grouping, silences and
 *                 its own resolve timeout: we send the whole firing set (not only what changed
 *                 in this step) and the caller re-sends it every resend_interval (resend = 1,
 *                 id "<id>-r"), as Prometheus does. Label and annotation values are converted
 *                 to strings (Alertmanager rejects anything else) and label names that are not
 *                 [A-Za-z_][A-Za-z0-9_]* are rewritten with '_' (older Alertmanagers answer 400
 *                 to them, and a 400 is never retried).
 *
 * Signatures: Standard Webhooks "v1,<base64(HMAC-SHA256(key, id.ts.body))>" with the key the
 * base64-decoded secret after "whsec_", and GitHub's "sha256=<hex>" (offered for receivers
 * that only know that scheme). Both use OpenSSL's one-shot HMAC(); the tests reproduce the
 * published example vectors of both schemes.
 *
 * Errors never quote a secret, the URL or the routing key: they name the sink and the message.
 */
#include "driftwatch/core/dw_sink.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Slack: alert sections per message (Slack allows 50 blocks; 20 keeps a message readable). */
#define DW_SLACK_MAX_SECTIONS 20
/* Slack: alerts named in the one-line "text" before "and N more". */
#define DW_SLACK_TEXT_ITEMS 10
/* Slack limits, in bytes (Slack counts characters; bytes are never more): header text. */
#define DW_SLACK_HEADER_MAX 150
/* Slack: text of a section or context element, and the top-level text (bytes). */
#define DW_SLACK_TEXT_MAX 3000
/* Slack: bytes of an alert's summary quoted in its section, before escaping. */
#define DW_SLACK_SUMMARY_MAX 1500
/* PagerDuty: payload.summary is at most 1024 characters (bytes here). */
#define DW_PD_SUMMARY_MAX 1024
/* Longest webhook secret accepted (bytes of its base64 text). */
#define DW_SECRET_MAX 4096
/* Headers of one request: Content-Type + 4 webhook headers. */
#define DW_SINK_HEADERS_MAX 5

/* ---------------------------------------------------------------------------------------- */
/* Small string builder                                                                      */

/* Slack mrkdwn: &, < and > are control characters and must be escaped in any user text. */
static void sb_add_slack(struct dw_sbuf *sb, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '&') {
            dw_sbuf_adds(sb, "&amp;");
        } else if (*s == '<') {
            dw_sbuf_adds(sb, "&lt;");
        } else if (*s == '>') {
            dw_sbuf_adds(sb, "&gt;");
        } else {
            dw_sbuf_add(sb, s, 1);
        }
    }
}

/*
 * Cuts s (in place) to at most max bytes on a UTF-8 character boundary, ending with "..." (the
 * one-character ellipsis, 3 bytes) when anything was cut. max must be >= 4.
 */
static void utf8_truncate(char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max) {
        return;
    }
    size_t cut = max - 3;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut--;
    }
    memcpy(s + cut, "\xE2\x80\xA6", 4);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON helpers                                                                              */

/*
 * A JSON value as label text: a string as it is, a number or boolean as its JSON text, an
 * object or array as compact JSON. @returns malloc'ed text, or NULL for null/absent.
 */
static char *json_text(const json_t *v)
{
    char buf[64];
    if (v == NULL || json_is_null(v)) {
        return NULL;
    }
    if (json_is_string(v)) {
        return dw_strdup(json_string_value(v));
    }
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return dw_strdup(buf);
    }
    if (json_is_real(v)) {
        dw_fmt_double(json_real_value(v), buf, sizeof(buf));
        return dw_strdup(buf);
    }
    if (json_is_boolean(v)) {
        return dw_strdup(json_is_true(v) ? "true" : "false");
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        return dw_strdup("");
    }
    char *r = dw_strdup(s);
    free(s);
    return r;
}

/* A scalar for human text: like json_text but reals with %.6g (as the rules' summaries), "none"
 * for null/absent. */
static void json_human(const json_t *v, char *buf, size_t n)
{
    if (json_is_real(v)) {
        snprintf(buf, n, "%.6g", json_real_value(v));
        return;
    }
    char *t = json_text(v);
    snprintf(buf, n, "%s", t != NULL ? t : "none");
    free(t);
}

static const char *str_member(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A deep copy of obj[key], or JSON null when absent. */
static json_t *copy_member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v != NULL ? json_deep_copy(v) : json_null();
}

static int alert_is_firing(const json_t *alert)
{
    enum dw_alert_state st;
    return dw_alert_state_parse(str_member(alert, "status"), &st) == 0 && st == DW_ALERT_FIRING;
}

/* The routed alerts of arr (deep copies, in order); a new array, possibly empty. */
static json_t *routed_alerts(const struct dw_sink_cfg *s, const json_t *arr)
{
    json_t *out = json_array();
    size_t i;
    const json_t *alert;
    json_array_foreach(arr, i, alert)
    {
        if (dw_sink_routes(s, alert)) {
            json_array_append_new(out, json_deep_copy(alert));
        }
    }
    return out;
}

/* Serialises and stores one message (id and body copied). @returns 0, -1 when not encodable. */
static int msg_set(struct dw_sink_msg *m, const char *id, const json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        return -1;
    }
    m->id = dw_strdup(id);
    m->body = text;
    return 0;
}

/* One message (id, body) in *out; takes the body's reference. @returns 1, or 0 (*out NULL)
 * when the body is NULL or cannot be serialised. */
static size_t single_msg(const char *id, json_t *body, struct dw_sink_msg **out)
{
    struct dw_sink_msg *msgs = dw_calloc(1, sizeof(*msgs));
    size_t count = 1;
    if (body == NULL || msg_set(&msgs[0], id, body) != 0) {
        free(msgs);
        msgs = NULL;
        count = 0;
    }
    json_decref(body);
    *out = msgs;
    return count;
}

/* ---------------------------------------------------------------------------------------- */
/* Names and routing                                                                         */

static const char *const sink_type_names[] = {
    [DW_SINK_WEBHOOK] = "webhook",
    [DW_SINK_SLACK] = "slack",
    [DW_SINK_PAGERDUTY] = "pagerduty",
    [DW_SINK_ALERTMANAGER] = "alertmanager",
};

const char *dw_sink_type_name(enum dw_sink_type t)
{
    if ((size_t)t < DW_ARRAY_SIZE(sink_type_names)) {
        return sink_type_names[t];
    }
    return "unknown";
}

int dw_sink_type_parse(const char *name, enum dw_sink_type *out)
{
    int i = dw_name_index(sink_type_names, DW_ARRAY_SIZE(sink_type_names), name);
    if (i < 0) {
        return -1;
    }
    *out = (enum dw_sink_type)i;
    return 0;
}

static int severity_parse(const char *s, enum dw_severity *out)
{
    if (s == NULL) {
        return -1;
    }
    if (strcmp(s, "warning") == 0) {
        *out = DW_SEV_WARNING;
        return 0;
    }
    if (strcmp(s, "critical") == 0) {
        *out = DW_SEV_CRITICAL;
        return 0;
    }
    return -1;
}

int dw_sink_routes(const struct dw_sink_cfg *s, const json_t *alert)
{
    if (s == NULL || !json_is_object(alert)) {
        return 0;
    }
    if (s->severities != 0) {
        enum dw_severity sev;
        if (severity_parse(str_member(alert, "severity"), &sev) != 0) {
            return 0;
        }
        if ((s->severities & (1u << sev)) == 0) {
            return 0;
        }
    }
    const json_t *labels = json_object_get(alert, "labels");
    for (size_t i = 0; i < s->n_match; i++) {
        char *v = json_text(json_object_get(labels, s->match[i].key));
        int eq = v != NULL && s->match[i].value != NULL && strcmp(v, s->match[i].value) == 0;
        free(v);
        if (!eq) {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Webhook                                                                                   */

static size_t render_webhook(const struct dw_sink_cfg *s, const json_t *n, const char *id,
                             struct dw_sink_msg **out)
{
    json_t *alerts = routed_alerts(s, json_object_get(n, "alerts"));
    if (json_array_size(alerts) == 0) {
        json_decref(alerts);
        return 0;
    }
    int firing = 0;
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        if (alert_is_firing(a)) {
            firing = 1;
        }
    }
    json_t *p = json_object();
    json_object_set_new(p, "type",
                        json_string(json_is_true(json_object_get(n, "test")) ? "driftwatch.test"
                                                                             : "driftwatch.alert"));
    json_object_set_new(p, "id", json_string(id));
    json_object_set_new(p, "model", copy_member(n, "model"));
    json_object_set_new(p, "window_start", copy_member(n, "window_start"));
    json_object_set_new(p, "window_end", copy_member(n, "window_end"));
    json_object_set_new(p, "stage", copy_member(n, "stage"));
    json_object_set_new(
        p, "status",
        json_string(dw_alert_state_name(firing ? DW_ALERT_FIRING : DW_ALERT_RESOLVED)));
    json_object_set_new(p, "alerts", alerts);
    json_t *report = json_object_get(n, "report");
    if (json_is_object(report)) {
        json_object_set(p, "report", report); /* shared, only serialised: no copy */
    }
    return single_msg(id, p, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Slack                                                                                     */

/* "10:15" or "10:15:30" (UTC), with "2026-11-22 " in front when with_date. */
static void fmt_clock(int64_t ms, int with_date, char *buf, size_t n)
{
    time_t t = (time_t)dw_floor_div(ms, 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[48] = "";
    if (with_date) {
        snprintf(date, sizeof(date), "%04d-%02d-%02d ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
    }
    if (tm.tm_sec != 0) {
        snprintf(buf, n, "%s%02d:%02d:%02d", date, tm.tm_hour, tm.tm_min, tm.tm_sec);
    } else {
        snprintf(buf, n, "%s%02d:%02d", date, tm.tm_hour, tm.tm_min);
    }
}

/*
 * "10:15–10:16 UTC"; both ends dated ("2026-11-22 23:00–2026-11-23 00:00 UTC") when the window
 * is not within one UTC day; the raw texts when they are not RFC 3339.
 */
static void fmt_window(const char *ws, const char *we, char *buf, size_t n)
{
    int64_t s_ms;
    int64_t e_ms;
    if (ws == NULL || we == NULL || dw_time_parse_rfc3339(ws, strlen(ws), &s_ms) != 0 ||
        dw_time_parse_rfc3339(we, strlen(we), &e_ms) != 0) {
        snprintf(buf, n, "%s\xE2\x80\x93%s", ws != NULL ? ws : "?", we != NULL ? we : "?");
        return;
    }
    const int64_t day_ms = 86400000;
    int dated = dw_floor_div(s_ms, day_ms) != dw_floor_div(e_ms, day_ms);
    char a[96];
    char b[96];
    fmt_clock(s_ms, dated, a, sizeof(a));
    fmt_clock(e_ms, dated, b, sizeof(b));
    snprintf(buf, n, "%s\xE2\x80\x93%s UTC", a, b);
}

/* "feature_drift amount" or "dataset_drift". */
static void alert_name(const json_t *alert, struct dw_sbuf *sb, int slack_escape)
{
    const char *rule = str_member(alert, "rule");
    const char *feature = str_member(alert, "feature");
    if (slack_escape) {
        sb_add_slack(sb, rule != NULL ? rule : "alert");
    } else {
        dw_sbuf_adds(sb, rule != NULL ? rule : "alert");
    }
    if (feature != NULL && feature[0] != '\0') {
        dw_sbuf_adds(sb, " ");
        if (slack_escape) {
            sb_add_slack(sb, feature);
        } else {
            dw_sbuf_adds(sb, feature);
        }
    }
}

/* The alert's annotations.summary, or a built-in line. @returns malloc'ed text. */
static char *alert_summary(const json_t *alert, const char *model)
{
    const char *sum = str_member(json_object_get(alert, "annotations"), "summary");
    if (sum != NULL && sum[0] != '\0') {
        return dw_strdup(sum);
    }
    struct dw_sbuf sb = {0};
    char v[64];
    char t[64];
    json_human(json_object_get(alert, "value"), v, sizeof(v));
    json_human(json_object_get(alert, "threshold"), t, sizeof(t));
    alert_name(alert, &sb, 0);
    dw_sbuf_printf(&sb, " on %s: value %s, threshold %s", model != NULL ? model : "?", v, t);
    return dw_sbuf_take(&sb);
}

/* "[FIRING:2]", "[RESOLVED:1]" or "[FIRING:2 RESOLVED:1]". */
static void status_tag(size_t n_firing, size_t n_resolved, char *buf, size_t n)
{
    if (n_firing > 0 && n_resolved > 0) {
        snprintf(buf, n, "[FIRING:%zu RESOLVED:%zu]", n_firing, n_resolved);
    } else if (n_firing > 0) {
        snprintf(buf, n, "[FIRING:%zu]", n_firing);
    } else {
        snprintf(buf, n, "[RESOLVED:%zu]", n_resolved);
    }
}

static json_t *slack_text_obj(const char *type, char *text, size_t max)
{
    utf8_truncate(text, max);
    return json_pack("{s:s,s:s}", "type", type, "text", text);
}

static json_t *slack_section(const json_t *alert, const char *model)
{
    struct dw_sbuf sb = {0};
    const char *sev = str_member(alert, "severity");
    dw_sbuf_adds(&sb, alert_is_firing(alert) ? "*FIRING* " : "*RESOLVED* ");
    dw_sbuf_adds(&sb, "*");
    alert_name(alert, &sb, 1);
    dw_sbuf_adds(&sb, "*");
    if (sev != NULL) {
        dw_sbuf_adds(&sb, " (");
        sb_add_slack(&sb, sev);
        dw_sbuf_adds(&sb, ")");
    }
    if (json_is_true(json_object_get(alert, "repeat"))) {
        dw_sbuf_adds(&sb, " (repeat)");
    }
    char *sum = alert_summary(alert, model);
    utf8_truncate(sum, DW_SLACK_SUMMARY_MAX);
    dw_sbuf_adds(&sb, "\n");
    sb_add_slack(&sb, sum);
    free(sum);
    const char *desc = str_member(json_object_get(alert, "annotations"), "description");
    if (desc != NULL && desc[0] != '\0') {
        char *d = dw_strdup(desc);
        utf8_truncate(d, DW_SLACK_SUMMARY_MAX / 2);
        dw_sbuf_adds(&sb, "\n_");
        sb_add_slack(&sb, d);
        dw_sbuf_adds(&sb, "_");
        free(d);
    }
    char v[64];
    char t[64];
    json_human(json_object_get(alert, "value"), v, sizeof(v));
    json_human(json_object_get(alert, "threshold"), t, sizeof(t));
    dw_sbuf_adds(&sb, "\nvalue ");
    sb_add_slack(&sb, v);
    dw_sbuf_adds(&sb, ", threshold ");
    sb_add_slack(&sb, t);
    const char *runbook = str_member(json_object_get(alert, "annotations"), "runbook_url");
    if (runbook != NULL && runbook[0] != '\0' && strlen(runbook) < 1000) {
        dw_sbuf_adds(&sb, "\n<");
        sb_add_slack(&sb, runbook);
        dw_sbuf_adds(&sb, "|Runbook>");
    }
    char *text = dw_sbuf_take(&sb);
    json_t *sec = json_pack("{s:s,s:o}", "type", "section", "text",
                            slack_text_obj("mrkdwn", text, DW_SLACK_TEXT_MAX));
    free(text);
    return sec;
}

static json_t *slack_context(char *text)
{
    return json_pack("{s:s,s:[o]}", "type", "context", "elements",
                     slack_text_obj("mrkdwn", text, DW_SLACK_TEXT_MAX));
}

static size_t render_slack(const struct dw_sink_cfg *s, const json_t *n, const char *id,
                           struct dw_sink_msg **out)
{
    json_t *alerts = routed_alerts(s, json_object_get(n, "alerts"));
    size_t total = json_array_size(alerts);
    if (total == 0) {
        json_decref(alerts);
        return 0;
    }
    const char *model = str_member(n, "model");
    const char *ws = str_member(n, "window_start");
    const char *we = str_member(n, "window_end");
    int test = json_is_true(json_object_get(n, "test"));
    size_t n_firing = 0;
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        if (alert_is_firing(a)) {
            n_firing++;
        }
    }
    char tag[64];
    char win[256];
    status_tag(n_firing, total - n_firing, tag, sizeof(tag));
    fmt_window(ws, we, win, sizeof(win));

    /* text: "[FIRING:2] fraud window 10:15–10:16 UTC: feature_drift amount, dataset_drift" */
    struct dw_sbuf sb = {0};
    if (test) {
        dw_sbuf_adds(&sb, "[TEST] ");
    }
    dw_sbuf_printf(&sb, "%s ", tag);
    sb_add_slack(&sb, model != NULL ? model : "?");
    dw_sbuf_printf(&sb, " window %s: ", win);
    json_array_foreach(alerts, i, a)
    {
        if (i == DW_SLACK_TEXT_ITEMS) {
            dw_sbuf_printf(&sb, " and %zu more", total - i);
            break;
        }
        if (i > 0) {
            dw_sbuf_adds(&sb, ", ");
        }
        alert_name(a, &sb, 1);
    }
    char *text = dw_sbuf_take(&sb);
    utf8_truncate(text, DW_SLACK_TEXT_MAX);

    json_t *blocks = json_array();
    dw_sbuf_printf(&sb, "%s%s ", test ? "[TEST] " : "", tag);
    dw_sbuf_adds(&sb, model != NULL ? model : "?");
    dw_sbuf_adds(&sb, total == 1 ? ": 1 alert" : ": ");
    if (total != 1) {
        dw_sbuf_printf(&sb, "%zu alerts", total);
    }
    char *header = dw_sbuf_take(&sb);
    json_array_append_new(blocks,
                          json_pack("{s:s,s:o}", "type", "header", "text",
                                    slack_text_obj("plain_text", header, DW_SLACK_HEADER_MAX)));
    free(header);

    dw_sbuf_adds(&sb, "Window ");
    sb_add_slack(&sb, ws != NULL ? ws : "?");
    dw_sbuf_adds(&sb, " \xE2\x80\x93 ");
    sb_add_slack(&sb, we != NULL ? we : "?");
    const char *stage = str_member(n, "stage");
    if (stage != NULL) {
        dw_sbuf_adds(&sb, " \xC2\xB7 stage ");
        sb_add_slack(&sb, stage);
    }
    dw_sbuf_adds(&sb, " \xC2\xB7 id ");
    sb_add_slack(&sb, id);
    if (s->generator_url != NULL && s->generator_url[0] != '\0') {
        dw_sbuf_adds(&sb, " \xC2\xB7 <");
        sb_add_slack(&sb, s->generator_url);
        dw_sbuf_adds(&sb, "|driftwatch>");
    }
    char *ctx = dw_sbuf_take(&sb);
    json_array_append_new(blocks, slack_context(ctx));
    free(ctx);

    json_array_foreach(alerts, i, a)
    {
        if (i == DW_SLACK_MAX_SECTIONS) {
            dw_sbuf_printf(&sb, "and %zu more", total - i);
            char *more = dw_sbuf_take(&sb);
            json_array_append_new(blocks, slack_context(more));
            free(more);
            break;
        }
        json_array_append_new(blocks, slack_section(a, model));
    }

    json_t *p = json_pack("{s:s,s:o}", "text", text, "blocks", blocks);
    free(text);
    json_decref(alerts);
    return single_msg(id, p, out);
}

/* ---------------------------------------------------------------------------------------- */
/* PagerDuty                                                                                 */

static json_t *pd_event(const struct dw_sink_cfg *s, const json_t *n, const json_t *alert,
                        const char *fp)
{
    if (!alert_is_firing(alert)) {
        return json_pack("{s:s,s:s}", "event_action", "resolve", "dedup_key", fp);
    }
    const char *model = str_member(n, "model");
    const char *feature = str_member(alert, "feature");
    const char *sev = str_member(alert, "severity");
    const char *rule = str_member(alert, "rule");
    const char *starts = str_member(alert, "starts_at");
    char *sum = alert_summary(alert, model);
    if (json_is_true(json_object_get(n, "test"))) {
        char *t = dw_malloc(strlen(sum) + 8);
        snprintf(t, strlen(sum) + 8, "[TEST] %s", sum);
        free(sum);
        sum = t;
    }
    utf8_truncate(sum, DW_PD_SUMMARY_MAX);

    json_t *details = json_object();
    json_object_set_new(details, "value", copy_member(alert, "value"));
    json_object_set_new(details, "threshold", copy_member(alert, "threshold"));
    json_object_set_new(details, "window_start", copy_member(n, "window_start"));
    json_object_set_new(details, "window_end", copy_member(n, "window_end"));
    json_object_set_new(details, "labels", copy_member(alert, "labels"));

    json_t *payload = json_object();
    json_object_set_new(payload, "summary", json_string(sum));
    json_object_set_new(payload, "source", json_string("driftwatch"));
    json_object_set_new(
        payload, "severity",
        json_string(sev != NULL && strcmp(sev, "critical") == 0 ? "critical" : "warning"));
    if (starts != NULL) {
        json_object_set_new(payload, "timestamp", json_string(starts));
    }
    if (model != NULL) {
        json_object_set_new(payload, "component", json_string(model));
    }
    const char *group = feature != NULL && feature[0] != '\0' ? feature : model;
    if (group != NULL) {
        json_object_set_new(payload, "group", json_string(group));
    }
    if (rule != NULL) {
        json_object_set_new(payload, "class", json_string(rule));
    }
    json_object_set_new(payload, "custom_details", details);
    free(sum);

    json_t *ev =
        json_pack("{s:s,s:s,s:o}", "event_action", "trigger", "dedup_key", fp, "payload", payload);
    json_t *links = json_array();
    const char *runbook = str_member(json_object_get(alert, "annotations"), "runbook_url");
    if (runbook != NULL && runbook[0] != '\0') {
        json_array_append_new(links, json_pack("{s:s,s:s}", "href", runbook, "text", "Runbook"));
    }
    if (s->generator_url != NULL && s->generator_url[0] != '\0') {
        json_array_append_new(
            links, json_pack("{s:s,s:s}", "href", s->generator_url, "text", "driftwatch"));
    }
    if (json_array_size(links) > 0) {
        json_object_set_new(ev, "links", links);
    } else {
        json_decref(links);
    }
    return ev;
}

static size_t render_pagerduty(const struct dw_sink_cfg *s, const json_t *n, const char *id,
                               struct dw_sink_msg **out)
{
    json_t *alerts = routed_alerts(s, json_object_get(n, "alerts"));
    size_t total = json_array_size(alerts);
    if (total == 0) {
        json_decref(alerts);
        return 0;
    }
    struct dw_sink_msg *msgs = dw_calloc(total, sizeof(*msgs));
    size_t count = 0;
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        const char *fp = str_member(a, "fingerprint");
        if (fp == NULL || fp[0] == '\0') {
            dw_warn("alert without fingerprint not sent", "sink %s, notification %s",
                    s->name != NULL ? s->name : "", id);
            continue;
        }
        json_t *ev = pd_event(s, n, a, fp);
        size_t idlen = strlen(id) + strlen(fp) + 2;
        char *mid = dw_malloc(idlen);
        snprintf(mid, idlen, "%s-%s", id, fp);
        if (ev != NULL && msg_set(&msgs[count], mid, ev) == 0) {
            count++;
        }
        free(mid);
        json_decref(ev);
    }
    json_decref(alerts);
    if (count == 0) {
        free(msgs);
        msgs = NULL;
    }
    *out = msgs;
    return count;
}

/* ---------------------------------------------------------------------------------------- */
/* Alertmanager                                                                              */

/* A label name Alertmanager accepts: [A-Za-z_][A-Za-z0-9_]*, other bytes become '_'. */
static char *am_label_name(const char *key)
{
    size_t len = strlen(key);
    char *out = dw_malloc(len + 2);
    size_t j = 0;
    if (len == 0 || (key[0] >= '0' && key[0] <= '9')) {
        out[j++] = '_';
    }
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        int ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        out[j++] = ok ? c : '_';
    }
    out[j] = '\0';
    return out;
}

/* An object of strings from obj: non-string values as text, null values left out. */
static json_t *am_strings(const json_t *obj, int fix_names)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char *text = json_text(v);
        if (text == NULL) {
            continue;
        }
        char *name = fix_names ? am_label_name(key) : dw_strdup(key);
        json_object_set_new(out, name, json_string(text));
        free(name);
        free(text);
    }
    return out;
}

static json_t *am_alert(const struct dw_sink_cfg *s, const json_t *n, const json_t *alert)
{
    json_t *o = json_object();
    json_object_set_new(o, "labels", am_strings(json_object_get(alert, "labels"), 1));
    json_object_set_new(o, "annotations", am_strings(json_object_get(alert, "annotations"), 0));
    const char *starts = str_member(alert, "starts_at");
    if (starts != NULL) {
        json_object_set_new(o, "startsAt", json_string(starts));
    }
    if (!alert_is_firing(alert)) {
        const char *ends = str_member(alert, "ends_at");
        if (ends == NULL) {
            ends = str_member(n, "window_end");
        }
        if (ends != NULL) {
            json_object_set_new(o, "endsAt", json_string(ends));
        }
    }
    if (s->generator_url != NULL && s->generator_url[0] != '\0') {
        json_object_set_new(o, "generatorURL", json_string(s->generator_url));
    }
    return o;
}

static size_t render_alertmanager(const struct dw_sink_cfg *s, const json_t *n, const char *id,
                                  int resend, struct dw_sink_msg **out)
{
    json_t *arr = json_array();
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(n, "firing"), i, a)
    {
        if (alert_is_firing(a) && dw_sink_routes(s, a)) {
            json_array_append_new(arr, am_alert(s, n, a));
        }
    }
    if (!resend) {
        json_array_foreach(json_object_get(n, "alerts"), i, a)
        {
            if (!alert_is_firing(a) && dw_sink_routes(s, a)) {
                json_array_append_new(arr, am_alert(s, n, a));
            }
        }
    }
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return 0;
    }
    size_t idlen = strlen(id) + 3;
    char *mid = dw_malloc(idlen);
    snprintf(mid, idlen, "%s%s", id, resend ? "-r" : "");
    size_t count = single_msg(mid, arr, out);
    free(mid);
    return count;
}

/* ---------------------------------------------------------------------------------------- */
/* Render                                                                                    */

size_t dw_sink_render(const struct dw_sink_cfg *s, const json_t *notification, int resend,
                      struct dw_sink_msg **out)
{
    *out = NULL;
    if (s == NULL) {
        return 0;
    }
    const char *id = str_member(notification, "id");
    if (!json_is_object(notification) || id == NULL || id[0] == '\0') {
        dw_warn("notification without id not rendered", "sink %s", s->name != NULL ? s->name : "");
        return 0;
    }
    if (resend && s->type != DW_SINK_ALERTMANAGER) {
        return 0;
    }
    size_t count = 0;
    switch (s->type) {
    case DW_SINK_WEBHOOK:
        count = render_webhook(s, notification, id, out);
        break;
    case DW_SINK_SLACK:
        count = render_slack(s, notification, id, out);
        break;
    case DW_SINK_PAGERDUTY:
        count = render_pagerduty(s, notification, id, out);
        break;
    case DW_SINK_ALERTMANAGER:
        count = render_alertmanager(s, notification, id, resend, out);
        break;
    }
    if (count == 0 && *out != NULL) {
        free(*out);
        *out = NULL;
    }
    return count;
}

const char *dw_sink_order_key(const struct dw_sink_cfg *s, const char *msg_id)
{
    if (s->type != DW_SINK_PAGERDUTY) {
        return NULL;
    }
    const char *dash = strrchr(msg_id, '-');
    return dash ? dash + 1 : msg_id;
}

void dw_sink_msgs_free(struct dw_sink_msg *msgs, size_t n)
{
    if (msgs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].id);
        free(msgs[i].body);
    }
    free(msgs);
}

/* ---------------------------------------------------------------------------------------- */
/* Signatures                                                                                */

int dw_sign_standard(const char *secret, const char *msg_id, int64_t ts, const char *body,
                     size_t body_len, char *out, size_t out_size)
{
    /* "v1," + base64 of 32 bytes (44) + NUL */
    const size_t need = 3 + 44 + 1;
    if (secret == NULL || msg_id == NULL || (body == NULL && body_len > 0) || out == NULL ||
        out_size < need) {
        return -1;
    }
    const char *b64 = strncmp(secret, "whsec_", 6) == 0 ? secret + 6 : secret;
    unsigned char *key = NULL;
    long key_len = strlen(b64) <= DW_SECRET_MAX ? dw_base64_decode(b64, &key) : -1;
    if (key_len <= 0) {
        return -1;
    }
    char tsbuf[32];
    int tslen = snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    size_t idlen = strlen(msg_id);
    size_t mlen = idlen + 1 + (size_t)tslen + 1 + body_len;
    unsigned char *m = dw_malloc(mlen + 1);
    memcpy(m, msg_id, idlen);
    m[idlen] = '.';
    memcpy(m + idlen + 1, tsbuf, (size_t)tslen);
    m[idlen + 1 + (size_t)tslen] = '.';
    if (body_len > 0) {
        memcpy(m + idlen + 2 + (size_t)tslen, body, body_len);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char *r = HMAC(EVP_sha256(), key, (int)key_len, m, mlen, mac, &mac_len);
    OPENSSL_cleanse(key, (size_t)key_len);
    free(key);
    free(m);
    if (r == NULL || mac_len != 32) {
        return -1;
    }
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
    return 0;
}

int dw_sign_github(const char *secret, const char *body, size_t body_len, char *out,
                   size_t out_size)
{
    /* "sha256=" + 64 hex + NUL */
    const size_t need = 7 + 64 + 1;
    if (secret == NULL || (body == NULL && body_len > 0) || out == NULL || out_size < need) {
        return -1;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    static const unsigned char empty[1] = {0};
    const unsigned char *data = body_len > 0 ? (const unsigned char *)body : empty;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), data, body_len, mac, &mac_len) == NULL ||
        mac_len != 32) {
        return -1;
    }
    memcpy(out, "sha256=", 7);
    dw_hex(mac, mac_len, out + 7);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Prepare and classify                                                                      */

/* A header value must not break the header block: printable ASCII only. */
static int header_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    return 1;
}

static void req_add_header(struct dw_sink_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void req_add_header(struct dw_sink_request *req, const char *fmt, ...)
{
    dw_assert(req->n_headers < DW_SINK_HEADERS_MAX);
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    dw_assert(n >= 0 && (size_t)n < sizeof(line));
    req->headers[req->n_headers++] = dw_strdup(line);
}

int dw_sink_prepare(const struct dw_sink_cfg *s, const char *msg_id, const char *body,
                    int64_t now_s, struct dw_sink_request *req, char *errstr, size_t errstr_size)
{
    json_t *obj = NULL;
    json_t *full = NULL;
    memset(req, 0, sizeof(*req));
    const char *name = s != NULL && s->name != NULL ? s->name : "?";
    if (s == NULL || msg_id == NULL || body == NULL) {
        return dw_err(errstr, errstr_size, "sink %s: no message id or body", name);
    }
    if (msg_id[0] == '\0' || strlen(msg_id) > 256 || !header_safe(msg_id)) {
        return dw_err(errstr, errstr_size,
                      "sink %s: message id is empty, longer than 256 bytes or not printable "
                      "ASCII",
                      name);
    }
    req->headers = dw_calloc(DW_SINK_HEADERS_MAX, sizeof(char *));
    req_add_header(req, "Content-Type: application/json");

    switch (s->type) {
    case DW_SINK_WEBHOOK:
        req_add_header(req, "webhook-id: %s", msg_id);
        req_add_header(req, "webhook-timestamp: %lld", (long long)now_s);
        if (s->secret != NULL && s->secret[0] != '\0') {
            char sig[64];
            if (dw_sign_standard(s->secret, msg_id, now_s, body, strlen(body), sig, sizeof(sig)) !=
                0) {
                dw_err(errstr, errstr_size,
                       "sink %s: the webhook secret is not \"whsec_\" followed by base64", name);
                goto err;
            }
            req_add_header(req, "webhook-signature: %s", sig);
        }
        req_add_header(req, "Idempotency-Key: %s", msg_id);
        req->body = dw_strdup(body);
        break;
    case DW_SINK_PAGERDUTY: {
        if (s->routing_key == NULL || s->routing_key[0] == '\0') {
            dw_err(errstr, errstr_size, "sink %s: no routing_key", name);
            goto err;
        }
        json_error_t jerr;
        obj = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(obj)) {
            dw_err(errstr, errstr_size, "sink %s: message %s: body is not a JSON object", name,
                   msg_id);
            goto err;
        }
        full = json_pack("{s:s}", "routing_key", s->routing_key);
        if (full == NULL || json_object_update(full, obj) != 0) {
            dw_err(errstr, errstr_size, "sink %s: message %s: cannot add the routing key", name,
                   msg_id);
            goto err;
        }
        req->body = json_dumps(full, JSON_COMPACT);
        if (req->body == NULL) {
            dw_err(errstr, errstr_size, "sink %s: message %s: cannot encode the body", name,
                   msg_id);
            goto err;
        }
        json_decref(full);
        json_decref(obj);
        break;
    }
    case DW_SINK_SLACK:
    case DW_SINK_ALERTMANAGER:
        req->body = dw_strdup(body);
        break;
    default:
        dw_err(errstr, errstr_size, "sink %s: unknown type", name);
        goto err;
    }
    return 0;

err:
    json_decref(full);
    json_decref(obj);
    dw_sink_request_free(req);
    return -1;
}

void dw_sink_request_free(struct dw_sink_request *req)
{
    if (req == NULL) {
        return;
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        free(req->headers[i]);
    }
    free(req->headers);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

enum dw_sink_outcome dw_sink_classify(const struct dw_sink_cfg *s, long http_status)
{
    if (http_status <= 0) {
        return DW_SINK_RETRY;
    }
    if (http_status >= 200 && http_status <= 299) {
        return DW_SINK_DELIVERED;
    }
    if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599)) {
        return DW_SINK_RETRY;
    }
    return DW_SINK_REJECTED;
}
