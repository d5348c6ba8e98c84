/*
 * dw_actions.c - alert rules, sinks and retraining triggers of the evaluator (I/O glue).
 *
 * Why one commit: an alert step changes state (pending -> firing), produces messages and may
 * produce a trigger. If the state were written apart from the messages, a crash in between
 * would either forget a firing alert (state written, message lost) or fire it twice (message
 * sent, state lost, step repeated with a new decision). Writing state, pending messages and
 * the cursor in one MULTI/EXEC makes the step atomic; delivery is then at least once with a
 * stable message id, which receivers can use to drop repeats.
 *
 * A commit whose connection went after EXEC was sent (dw_redis_eval_commit() -2) may have been
 * applied with its reply lost. Taken as not committed, its messages would sit in Redis while
 * the cursor, moved, sends the evaluator on to the next window: nobody re-submits them before
 * the lease moves. So the cursor is read back at once (commit_lookup): at next_cursor, the step
 * was committed and goes on as one. When even that read is not answered, the model is marked
 * (resume[]) and the next tick that reaches Redis re-submits what the deliveries hash holds of
 * the model and reloads its firing set, as a new evaluator does (resume_model). Re-submitting is
 * safe either way: same message ids, and the delivery queue drops an id it already holds.
 *
 * The trigger goes out before the commit and is awaited (delivery report): a trigger that
 * could not be produced leaves the step uncommitted, so it is retried with the same
 * trigger_id; one produced just before a crash is produced again with the same id. Within a
 * process a trigger_id is produced once at a time: a retry whose earlier attempt is still in
 * flight (its delivery report came later than ACTIONS_FLUSH_MS) waits for that attempt instead
 * of producing a second copy, and one that was delivered meanwhile counts as produced (the
 * outbox remembers the ids of the last deliveries).
 *
 * Redis keys (global, {dw:G} tag, named by dw_redis_name_*): alerts:<model> (rule instance
 * state), trigger:<model> (guardrails), firing:<model> (last notification with firing alerts,
 * for Alertmanager re-sends after a restart), errstream:<model> (change detectors),
 * deliveries (hash of pending messages), and the caller's own evaluation state (the baseline).
 */
#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/io/dw_actions.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_deliver.h"
#include "driftwatch/core/dw_errstream.h"
#include "driftwatch/io/dw_kafka.h"
#include "driftwatch/io/dw_log.h"
#include "driftwatch/core/dw_metrics.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/core/dw_sink.h"
#include "driftwatch/core/dw_trigger.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define ACTIONS_FLUSH_MS 5000 /* wait for a trigger's delivery report, milliseconds */
#define ACTIONS_EXTRA_MAX 2   /* keys of the caller's own evaluation state per commit */

struct pending_msg {
    const char *sink;
    struct dw_sink_msg msg;
};

struct dw_actions {
    const struct dw_config *cfg;
    struct dw_redis *redis;
    rd_kafka_t *producer;
    struct dw_kafka_outbox *outbox; /* triggers until delivered */
    const char *owner;
    struct dw_deliver *deliver;
    json_t **firing;                 /* per model: last notification with firing alerts, or NULL */
    struct dw_metric **firing_gauge; /* per model: driftwatch_alerts_firing{model} */
    int64_t *resent_ms;              /* per model: wall clock of the last Alertmanager re-send */
    unsigned char *resume;           /* per model: a commit's outcome is unknown (see above) */
    unsigned char *left;             /* per model: a resume left messages in Redis (queue full) */
    const char **model_names;        /* the models' names, for the delivery's resume */
    int64_t last_created_ms;         /* the last commit's records' created_ms (see below) */
    struct dw_metric *notes, *triggers, *trigger_failures, *commit_failures;
};

struct dw_actions *dw_actions_new(const struct dw_config *cfg, struct dw_redis *redis,
                                  rd_kafka_t *producer, const char *owner, char *errstr,
                                  size_t errstr_size)
{
    struct dw_actions *a = dw_calloc(1, sizeof(*a));
    a->cfg = cfg;
    a->redis = redis;
    a->producer = producer;
    a->outbox = dw_kafka_outbox_new();
    a->owner = owner;
    char name[DW_REDIS_NAME_MAX], key[DW_REDIS_KEY_MAX];
    dw_redis_name_deliveries(name, sizeof(name));
    dw_redis_global_key(redis, name, key, sizeof(key));
    a->model_names = dw_calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*a->model_names));
    for (size_t mi = 0; mi < cfg->n_models; mi++) {
        a->model_names[mi] = cfg->models[mi].name;
    }
    struct dw_deliver_cfg dc = {.sinks = cfg->sinks,
                                .n_sinks = cfg->n_sinks,
                                .queue_size = cfg->alert_queue_size,
                                .redis_host = cfg->redis_host,
                                .redis_port = cfg->redis_port,
                                .redis_password = cfg->redis_password,
                                .redis_username = cfg->redis_username,
                                .redis_sentinels = cfg->redis_sentinels,
                                .n_redis_sentinels = cfg->n_redis_sentinels,
                                .redis_master_name = cfg->redis_master_name,
                                .redis_sentinel_password = cfg->redis_sentinel_password,
                                .redis_db = cfg->redis_db,
                                .redis_cluster = cfg->redis_cluster,
                                .redis_nodes = cfg->redis_nodes,
                                .n_redis_nodes = cfg->n_redis_nodes,
                                .key = key,
                                .redis_timeout_ms = cfg->redis_timeout_ms,
                                .models = a->model_names,
                                .n_models = cfg->n_models};
    a->deliver = dw_deliver_new(&dc, errstr, errstr_size);
    if (!a->deliver) {
        dw_kafka_outbox_free(a->outbox);
        free(a->model_names);
        free(a);
        return NULL;
    }
    a->firing = dw_calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*a->firing));
    a->resent_ms = dw_calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*a->resent_ms));
    a->resume = dw_calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*a->resume));
    a->left = dw_calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*a->left));
    a->firing_gauge = dw_calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*a->firing_gauge));
    for (size_t mi = 0; mi < cfg->n_models; mi++) {
        char esc[256], labels[300];
        dw_metrics_escape(cfg->models[mi].name, esc, sizeof(esc));
        snprintf(labels, sizeof(labels), "model=\"%s\"", esc);
        a->firing_gauge[mi] = dw_metrics_series(
            "driftwatch_alerts_firing",
            "Alerts firing (not inhibited) after the model's last evaluation step on this pod.",
            DW_METRIC_GAUGE, labels);
    }
    a->notes = dw_metrics_series("driftwatch_alert_notifications_total",
                                 "Alert notifications (one per model and window with alerts to "
                                 "send), before routing to sinks.",
                                 DW_METRIC_COUNTER, NULL);
    a->triggers = dw_metrics_series("driftwatch_triggers_produced_total",
                                    "Retraining triggers produced (delivery report received).",
                                    DW_METRIC_COUNTER, NULL);
    a->trigger_failures = dw_metrics_series(
        "driftwatch_trigger_failures_total",
        "Retraining triggers that could not be produced (retried later).", DW_METRIC_COUNTER, NULL);
    a->commit_failures =
        dw_metrics_series("driftwatch_evaluation_commit_failures_total",
                          "Window evaluations whose alert state could not be committed (retried).",
                          DW_METRIC_COUNTER, NULL);
    return a;
}

static size_t model_index(const struct dw_actions *a, const struct dw_model_cfg *m)
{
    return (size_t)(m - a->cfg->models);
}

/* Renders the notification for every sink into *msgs (appended). */
static void render_all(struct dw_actions *a, const json_t *note, int resend,
                       struct pending_msg **msgs, size_t *n)
{
    for (size_t s = 0; s < a->cfg->n_sinks; s++) {
        const struct dw_sink_cfg *sink = &a->cfg->sinks[s];
        struct dw_sink_msg *out = NULL;
        size_t k = dw_sink_render(sink, note, resend, &out);
        if (k == 0) {
            continue;
        }
        *msgs = dw_realloc(*msgs, (*n + k) * sizeof(**msgs));
        for (size_t i = 0; i < k; i++) {
            (*msgs)[*n + i].sink = sink->name;
            (*msgs)[*n + i].msg = out[i];
        }
        *n += k;
        free(out); /* members moved into *msgs */
    }
}

static void free_msgs(struct pending_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].msg.id);
        free(msgs[i].msg.body);
    }
    free(msgs);
}

/* Produces the trigger and waits for its delivery report. 0 delivered, -1 not. */
static int produce_trigger(struct dw_actions *a, const char *model, json_t *trig)
{
    if (!a->producer || !a->cfg->topic_triggers[0]) {
        return 0;
    }
    const char *id = json_string_value(json_object_get(trig, "trigger_id"));
    char errstr[256] = "";
    enum dw_outbox_state st = dw_kafka_outbox_state(a->outbox, id);
    if (st == DW_OUTBOX_IN_FLIGHT) {
        /* An earlier attempt is still on its way: wait for it, never send a second copy. */
        rd_kafka_flush(a->producer, ACTIONS_FLUSH_MS);
        st = dw_kafka_outbox_state(a->outbox, id);
    }
    if (st == DW_OUTBOX_FAILED || st == DW_OUTBOX_UNKNOWN) {
        dw_kafka_outbox_discard(a->outbox, id); /* this attempt renders it anew */
        char *text = json_dumps(trig, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (dw_kafka_outbox_produce(a->producer, a->outbox, a->cfg->topic_triggers, id, model,
                                    strlen(model), text, strlen(text), errstr,
                                    sizeof(errstr)) == 0) {
            rd_kafka_flush(a->producer, ACTIONS_FLUSH_MS);
        }
        free(text);
        st = dw_kafka_outbox_state(a->outbox, id);
    }
    if (st == DW_OUTBOX_IN_FLIGHT) {
        snprintf(errstr, sizeof(errstr), "no delivery report within %d ms", ACTIONS_FLUSH_MS);
    } else if (st == DW_OUTBOX_FAILED && !errstr[0]) {
        snprintf(errstr, sizeof(errstr), "the broker did not accept the message");
    }
    if (st == DW_OUTBOX_FAILED) {
        dw_kafka_outbox_discard(a->outbox, id);
    }
    if (st != DW_OUTBOX_DELIVERED) {
        dw_metric_inc(a->trigger_failures);
        dw_log(DW_LOG_ERROR, "retraining trigger not produced; the window is evaluated again",
               "{s:s,s:O,s:s}", "model", model, "trigger_id", json_object_get(trig, "trigger_id"),
               "error", errstr);
        return -1;
    }
    dw_metric_inc(a->triggers);
    dw_log(DW_LOG_INFO, "retraining trigger produced", "{s:s,s:O,s:O}", "model", model,
           "trigger_id", json_object_get(trig, "trigger_id"), "window_start",
           json_object_get(trig, "window_start"));
    return 0;
}

/* Decides and produces the trigger of this window; st is updated when it triggers. */
static int trigger_step(struct dw_actions *a, const char *model, const json_t *report,
                        const json_t *note, struct dw_trigger_state *st)
{
    const char *why = NULL;
    json_t *reasons = dw_trigger_decide(a->cfg, report, json_object_get(note, "firing"), st, &why);
    if (!reasons) {
        if (why) {
            dw_log(DW_LOG_INFO, "retraining trigger suppressed", "{s:s,s:O,s:s}", "model", model,
                   "window_start", json_object_get(report, "window_start"), "by", why);
        }
        return 0;
    }
    json_t *trig = dw_trigger_message(a->cfg->group, report, reasons, dw_now_ms());
    json_decref(reasons);
    int rc = produce_trigger(a, model, trig);
    json_decref(trig);
    return rc;
}

static void log_note(const json_t *note)
{
    size_t i;
    json_t *al;
    json_array_foreach(json_object_get(note, "alerts"), i, al)
    {
        dw_log(DW_LOG_WARN, "alert", "{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "model",
               json_object_get(note, "model"), "rule", json_object_get(al, "rule"), "feature",
               json_object_get(al, "feature"), "status", json_object_get(al, "status"), "severity",
               json_object_get(al, "severity"), "fingerprint", json_object_get(al, "fingerprint"),
               "window_start", json_object_get(note, "window_start"));
    }
}

/* The keys and fields of one commit, and the texts they point to. */
struct commit {
    struct dw_redis_kv sets[6 + ACTIONS_EXTRA_MAX];
    size_t n_sets;
    struct dw_redis_kv *fields;
    char **texts;
    size_t n_texts;
};

static const char *commit_keep(struct commit *c, char *text)
{
    c->texts = dw_realloc(c->texts, (c->n_texts + 1) * sizeof(*c->texts));
    c->texts[c->n_texts++] = text;
    return text;
}

static void commit_free(struct commit *c)
{
    for (size_t i = 0; i < c->n_texts; i++) {
        free(c->texts[i]);
    }
    free(c->texts);
    free(c->fields);
}

/* Evaluation state `name` into *text (NULL when absent): 0, or -1 when unreadable (logged). */
static int read_state(struct dw_actions *a, const struct dw_model_cfg *m, const char *name,
                      char **text)
{
    size_t len = 0;
    return dw_redis_read_state(a->redis, name, m->name, text, &len) < 0 ? -1 : 0;
}

/*
 * The final report of a window feeds the model's error stream (change detectors) and carries
 * their verdicts as "change_detectors", so that rules can use them. *out is the new state text
 * to commit (malloc'ed), or NULL for a close-stage report. @returns 0, or -1 when the stored
 * state cannot be read.
 */
static int errstream_step(struct dw_actions *a, const struct dw_model_cfg *m, json_t *report,
                          char **out)
{
    *out = NULL;
    if (!json_is_true(json_object_get(report, "final"))) {
        return 0;
    }
    char key[DW_REDIS_NAME_MAX], errstr[256];
    dw_redis_name_errstream(m->name, key, sizeof(key));
    char *text = NULL;
    if (read_state(a, m, key, &text) != 0) {
        return -1;
    }
    struct dw_errstream es;
    if (dw_errstream_load(&es, text, errstr, sizeof(errstr)) != 0 && text) {
        dw_log(DW_LOG_ERROR, "change detector state unreadable; starting afresh", "{s:s,s:s}",
               "model", m->name, "error", errstr);
    }
    free(text);
    json_object_set_new(report, "change_detectors", dw_errstream_feed_report(&es, m, report));
    *out = dw_errstream_dump(&es);
    dw_errstream_free(&es);
    return 0;
}

/*
 * The commit of model m's step was sent and its reply lost (dw_redis_eval_commit() -2). The
 * runner read the cursor below next_cursor, and a cursor moves only forward and only through
 * these commits: found at next_cursor, the step is committed (by this one, or by another
 * evaluator's commit of the same step, which wrote the same message ids). @returns 0 committed,
 * -1 not, or not known (Redis did not answer; a->resume[mi] then).
 */
static int commit_lookup(struct dw_actions *a, const struct dw_model_cfg *m,
                         const char *cursor_name, int64_t next_cursor, const char *why)
{
    size_t mi = model_index(a, m);
    int64_t cursor = 0;
    int found = dw_redis_get_i64(a->redis, cursor_name, &cursor);
    if (found == 1 && cursor == next_cursor) {
        dw_log(DW_LOG_WARN, "evaluation commit's reply lost; found committed", "{s:s,s:s}", "model",
               m->name, "error", why);
        return 0;
    }
    /* Not committed as read; but a commit that Redis was still to run (its connection timed
     * out) would show only later: the next tick reads what is owed anyway. */
    a->resume[mi] = 1;
    dw_log(DW_LOG_WARN,
           found < 0 ? "evaluation commit's outcome unknown; what it owes is read again from "
                       "redis on the next tick"
                     : "evaluation commit's reply lost; found not committed",
           "{s:s,s:s}", "model", m->name, "error", why);
    return -1;
}

int dw_actions_window(struct dw_actions *a, const struct dw_model_cfg *m, json_t *report,
                      const char *report_name, const char *cursor_name, int64_t next_cursor,
                      const struct dw_redis_kv *extra, size_t n_extra)
{
    dw_assert(n_extra <= ACTIONS_EXTRA_MAX);
    char alerts_key[DW_REDIS_NAME_MAX], trig_key[DW_REDIS_NAME_MAX], firing_key[DW_REDIS_NAME_MAX];
    char es_key[DW_REDIS_NAME_MAX], deliveries[DW_REDIS_NAME_MAX];
    dw_redis_name_alerts(m->name, alerts_key, sizeof(alerts_key));
    dw_redis_name_trigger(m->name, trig_key, sizeof(trig_key));
    dw_redis_name_firing(m->name, firing_key, sizeof(firing_key));
    dw_redis_name_errstream(m->name, es_key, sizeof(es_key));
    dw_redis_name_deliveries(deliveries, sizeof(deliveries));
    char *es_text = NULL, *alerts_text = NULL, *trig_text = NULL;
    if (read_state(a, m, alerts_key, &alerts_text) != 0 ||
        read_state(a, m, trig_key, &trig_text) != 0 ||
        errstream_step(a, m, report, &es_text) != 0) {
        free(alerts_text);
        free(trig_text);
        return -1;
    }
    json_t *state;
    char serr[256];
    if (dw_rules_state_load(m->name, alerts_text, &state, serr, sizeof(serr)) != 0) {
        dw_log(DW_LOG_ERROR, "alert state partly unreadable; dropped what could not be read",
               "{s:s,s:s}", "model", m->name, "error", serr);
    }
    free(alerts_text);
    struct dw_trigger_state st;
    char terr[256];
    if (dw_trigger_state_load(&st, trig_text, terr, sizeof(terr)) != 0) {
        dw_log(DW_LOG_ERROR, "trigger guardrail state unreadable; starting afresh", "{s:s,s:s}",
               "model", m->name, "error", terr);
    }
    free(trig_text);

    json_t *note = dw_rules_step(a->cfg->group, a->cfg->rules, a->cfg->n_rules, report, state);
    struct pending_msg *msgs = NULL;
    size_t n_msgs = 0;
    if (note) {
        json_object_set(note, "report", report);
        render_all(a, note, 0, &msgs, &n_msgs);
    }
    if (trigger_step(a, m->name, report, note, &st) != 0) {
        free(es_text);
        free_msgs(msgs, n_msgs);
        json_decref(note);
        json_decref(state);
        return -1;
    }

    struct commit c = {0};
    char cursor_text[32];
    snprintf(cursor_text, sizeof(cursor_text), "%" PRId64, next_cursor);
    c.sets[c.n_sets++] =
        (struct dw_redis_kv){alerts_key, commit_keep(&c, json_dumps(state, JSON_COMPACT)), 0};
    c.sets[c.n_sets++] =
        (struct dw_redis_kv){trig_key, commit_keep(&c, dw_trigger_state_dump(&st)), 0};
    json_t *firing = note ? json_object_get(note, "firing") : NULL;
    json_t *am = NULL;
    if (json_array_size(firing) > 0) {
        am = json_copy(note);
        json_object_del(am, "report");
        json_object_set_new(am, "alerts", json_array());
    }
    c.sets[c.n_sets++] = (struct dw_redis_kv){
        firing_key, am ? commit_keep(&c, json_dumps(am, JSON_COMPACT)) : NULL, 0};
    c.sets[c.n_sets++] = (struct dw_redis_kv){cursor_name, cursor_text, 0};
    c.sets[c.n_sets++] = (struct dw_redis_kv){
        report_name, commit_keep(&c, json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(17))),
        a->cfg->retention_windows * a->cfg->window_size_ms};
    if (es_text) {
        c.sets[c.n_sets++] = (struct dw_redis_kv){es_key, commit_keep(&c, es_text), 0};
    }
    for (size_t i = 0; i < n_extra; i++) {
        c.sets[c.n_sets++] = extra[i];
    }
    c.fields = dw_calloc(n_msgs ? n_msgs : 1, sizeof(*c.fields));
    /* Strictly increasing from commit to commit: a resume submits the records in this order
     * (dw_deliver_resume), and a PagerDuty resolve must not overtake its trigger, committed
     * a step before, possibly within the same millisecond. */
    int64_t now = DW_MAX(dw_now_ms(), a->last_created_ms + 1);
    a->last_created_ms = now;
    for (size_t i = 0; i < n_msgs; i++) {
        c.fields[i].name = commit_keep(&c, dw_deliver_field(msgs[i].sink, msgs[i].msg.id));
        c.fields[i].value = commit_keep(
            &c, dw_deliver_record(msgs[i].sink, msgs[i].msg.id, msgs[i].msg.body, now, m->name));
    }
    char errstr[256];
    int rc = dw_redis_eval_commit(a->redis, a->owner, m->name, c.sets, c.n_sets, deliveries,
                                  c.fields, n_msgs, errstr, sizeof(errstr));
    commit_free(&c);
    if (rc == -2) {
        rc = commit_lookup(a, m, cursor_name, next_cursor, errstr); /* logged */
    } else if (rc != 0) {
        dw_log(DW_LOG_WARN, "evaluation not committed; retried", "{s:s,s:s}", "model", m->name,
               "error", errstr);
    }
    if (rc != 0) {
        dw_metric_inc(a->commit_failures);
        json_decref(am);
    } else {
        if (note && json_array_size(json_object_get(note, "alerts")) > 0) {
            dw_metric_inc(a->notes);
            log_note(note);
        }
        for (size_t i = 0; i < n_msgs; i++) {
            dw_deliver_submit(a->deliver, msgs[i].sink, msgs[i].msg.id, msgs[i].msg.body);
        }
        size_t mi = model_index(a, m);
        json_decref(a->firing[mi]);
        a->firing[mi] = am;
        a->resent_ms[mi] = dw_now_ms();
        dw_metric_set(a->firing_gauge[mi], (double)json_array_size(json_object_get(am, "firing")));
    }
    free_msgs(msgs, n_msgs);
    json_decref(note);
    json_decref(state);
    return rc == 0 ? 0 : -1;
}

/* Re-submits model mi's pending deliveries; those a full queue left in Redis are tried again
 * on the next ticks (a->left), not only when the lease next moves. @returns 0, or -1 when Redis
 * did not answer. */
static int resubmit(struct dw_actions *a, size_t mi)
{
    const char *model = a->cfg->models[mi].name;
    size_t left = 0;
    /* the first model also takes the records naming no model (written before records named it)
     * or a model no longer configured */
    int n = dw_deliver_resume(a->deliver, model, mi == 0, &left);
    if (n > 0) {
        dw_log(DW_LOG_INFO, "pending alert deliveries resumed", "{s:s,s:i}", "model", model,
               "messages", n);
    }
    a->left[mi] = n >= 0 && left > 0;
    return n < 0 ? -1 : 0;
}

/* Re-submits model mi's pending deliveries and reloads its firing set from Redis (kept as it
 * was when unreadable). @returns 0, or -1 when Redis did not answer one of the two. */
static int resume_model(struct dw_actions *a, size_t mi)
{
    const char *model = a->cfg->models[mi].name;
    int n = resubmit(a, mi);
    char key[DW_REDIS_NAME_MAX], *text = NULL;
    size_t len = 0;
    dw_redis_name_firing(model, key, sizeof(key));
    int got = dw_redis_read_str(a->redis, key, &text, &len);
    if (got >= 0) {
        json_decref(a->firing[mi]);
        a->firing[mi] = text ? json_loadb(text, len, 0, NULL) : NULL;
        a->resent_ms[mi] = 0;
        dw_metric_set(a->firing_gauge[mi],
                      (double)json_array_size(json_object_get(a->firing[mi], "firing")));
    }
    free(text);
    return n < 0 || got < 0 ? -1 : 0;
}

void dw_actions_resume(struct dw_actions *a, size_t mi)
{
    a->resume[mi] = 0;
    (void)resume_model(a, mi);
}

void dw_actions_drop(struct dw_actions *a, size_t mi)
{
    json_decref(a->firing[mi]);
    a->firing[mi] = NULL;
    a->resume[mi] = 0; /* the next evaluator resumes the model */
    a->left[mi] = 0;
    dw_metric_set(a->firing_gauge[mi], 0);
}

static int has_alertmanager(const struct dw_config *cfg, int64_t *interval_ms)
{
    int found = 0;
    for (size_t s = 0; s < cfg->n_sinks; s++) {
        if (cfg->sinks[s].type == DW_SINK_ALERTMANAGER) {
            *interval_ms = found ? DW_MIN(*interval_ms, cfg->sinks[s].resend_interval_ms)
                                 : cfg->sinks[s].resend_interval_ms;
            found = 1;
        }
    }
    return found;
}

void dw_actions_tick(struct dw_actions *a, int64_t now_ms, const unsigned char *evaluating)
{
    for (size_t mi = 0; mi < a->cfg->n_models; mi++) {
        if (evaluating[mi] && a->resume[mi] && resume_model(a, mi) == 0) {
            a->resume[mi] = 0;
            dw_log(DW_LOG_INFO, "evaluation commit of unknown outcome: what it owes was read again",
                   "{s:s}", "model", a->cfg->models[mi].name);
        } else if (evaluating[mi] && a->left[mi]) {
            (void)resubmit(a, mi);
        }
    }
    int64_t interval = 0;
    if (!has_alertmanager(a->cfg, &interval)) {
        return;
    }
    for (size_t mi = 0; mi < a->cfg->n_models; mi++) {
        if (!evaluating[mi] || !a->firing[mi] || now_ms - a->resent_ms[mi] < interval) {
            continue;
        }
        a->resent_ms[mi] = now_ms;
        struct pending_msg *msgs = NULL;
        size_t n = 0;
        render_all(a, a->firing[mi], 1, &msgs, &n);
        for (size_t i = 0; i < n; i++) {
            dw_deliver_submit(a->deliver, msgs[i].sink, msgs[i].msg.id, msgs[i].msg.body);
        }
        free_msgs(msgs, n);
    }
}

json_t *dw_actions_status(const struct dw_actions *a)
{
    json_t *out = json_object();
    for (size_t mi = 0; a && mi < a->cfg->n_models; mi++) {
        json_t *list = json_array();
        size_t i;
        json_t *al;
        json_array_foreach(json_object_get(a->firing[mi], "firing"), i, al)
        {
            json_array_append_new(list, dw_rules_alert_summary(al));
        }
        json_object_set_new(out, a->cfg->models[mi].name, list);
    }
    return out;
}

size_t dw_actions_pending(struct dw_actions *a)
{
    return dw_deliver_pending(a->deliver);
}

void dw_actions_set_producer(struct dw_actions *a, rd_kafka_t *producer)
{
    a->producer = producer;
}

void dw_actions_free(struct dw_actions *a, int64_t flush_ms)
{
    if (!a) {
        return;
    }
    dw_deliver_destroy(a->deliver, flush_ms);
    dw_kafka_outbox_free(a->outbox);
    for (size_t mi = 0; mi < a->cfg->n_models; mi++) {
        json_decref(a->firing[mi]);
    }
    free(a->firing);
    free(a->firing_gauge);
    free(a->resent_ms);
    free(a->resume);
    free(a->left);
    free(a->model_names); /* after the delivery, which borrowed them */
    free(a);
}

/* ---- driftwatch alerts test ---- */

#define TEST_WAIT_SLACK_MS 2000 /* beyond the sink's timeout, milliseconds */

static void alerts_usage(FILE *out)
{
    fputs("usage: driftwatch alerts test -c FILE [--sink NAME]\n\n"
          "Sends a clearly marked test notification (rule driftwatch_test, label test=\"true\")\n"
          "through every configured sink, or only NAME, and prints each one's result. Routing\n"
          "(severities, match) is bypassed and each sink gets one attempt, so the answer is\n"
          "quick. PagerDuty and Alertmanager receive the test alert and then its resolution.\n\n"
          "options:\n"
          "  -c, --config FILE   the driftwatch config (its alerting.sinks)\n"
          "  -s, --sink NAME     only this sink\n"
          "  -h, --help          this text\n\n"
          "exit status: 0 every sink accepted, 1 some did not, 2 usage or config error\n",
          out);
}

/* The test notification: one critical alert, firing or resolved. */
static json_t *test_note(const char *id, int64_t now, int resolved)
{
    char ts[40];
    dw_time_format_rfc3339(now, ts, sizeof(ts));
    const char *status = dw_alert_state_name(resolved ? DW_ALERT_RESOLVED : DW_ALERT_FIRING);
    json_t *alert = json_pack(
        "{s:s,s:s,s:n,s:s,s:s,s:b,s:n,s:n,s:s,s:{s:s,s:s,s:s,s:s},s:{s:s,s:s}}", "fingerprint",
        "0000000000000000", "rule", "driftwatch_test", "feature", "status", status, "severity",
        "critical", "repeat", 0, "value", "threshold", "starts_at", ts, "labels", "alertname",
        "driftwatch_test", "model", "driftwatch-test", "severity", "critical", "test", "true",
        "annotations", "summary", "driftwatch test notification: not a real alert", "description",
        "Sent by `driftwatch alerts test` to check the wiring of this sink.");
    if (resolved) {
        json_object_set_new(alert, "ends_at", json_string(ts));
    }
    json_t *firing = json_array();
    if (!resolved) {
        json_array_append(firing, alert);
    }
    return json_pack("{s:s,s:b,s:s,s:s,s:s,s:I,s:s,s:[o],s:o}", "id", id, "test", 1, "model",
                     "driftwatch-test", "window_start", ts, "window_end", ts, "window_start_ms",
                     (json_int_t)now, "stage", "close", "alerts", alert, "firing", firing);
}

/* Sends the test through one sink (routing bypassed, one attempt). 0 accepted. */
static int test_sink(const struct dw_sink_cfg *orig)
{
    struct dw_sink_cfg s = *orig;
    s.severities = 0;
    s.n_match = 0;
    s.max_attempts = 1;
    char errstr[256];
    struct dw_deliver_cfg dc = {.sinks = &s, .n_sinks = 1, .queue_size = 16};
    struct dw_deliver *d = dw_deliver_new(&dc, errstr, sizeof(errstr));
    if (!d) {
        printf("%s (%s): cannot start delivery: %s\n", s.name, dw_sink_type_name(s.type), errstr);
        return -1;
    }
    int64_t now = dw_now_ms();
    char id[64];
    snprintf(id, sizeof(id), "test-%" PRId64, now);
    int rc = 0;
    char result[256] = "";
    int steps = s.type == DW_SINK_PAGERDUTY || s.type == DW_SINK_ALERTMANAGER ? 2 : 1;
    for (int resolved = 0; resolved < steps && rc == 0; resolved++) {
        if (resolved) {
            snprintf(id, sizeof(id), "test-%" PRId64 "-resolved", now);
        }
        json_t *note = test_note(id, now, resolved);
        struct dw_sink_msg *msgs = NULL;
        size_t n = dw_sink_render(&s, note, 0, &msgs);
        for (size_t i = 0; i < n; i++) {
            dw_deliver_submit(d, s.name, msgs[i].id, msgs[i].body);
        }
        dw_sink_msgs_free(msgs, n);
        json_decref(note);
        rc =
            dw_deliver_result(d, s.name, s.timeout_ms + TEST_WAIT_SLACK_MS, result, sizeof(result));
    }
    printf("%s (%s): %s\n", s.name, dw_sink_type_name(s.type), result);
    dw_deliver_destroy(d, 0);
    return rc;
}

int dw_cmd_alerts(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"sink", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *only = NULL;
    if (argc < 2 || strcmp(argv[1], "test") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            alerts_usage(stdout);
            return 0;
        }
        alerts_usage(stderr);
        return 2;
    }
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 's':
            only = optarg;
            break;
        case 'h':
            alerts_usage(stdout);
            return 0;
        default:
            alerts_usage(stderr);
            return 2;
        }
    }
    struct dw_config cfg;
    if (dw_config_load_cli(&cfg, "alerts test", path) != 0) {
        return 2;
    }
    int rc = 0, found = 0;
    for (size_t i = 0; i < cfg.n_sinks; i++) {
        if (only && strcmp(only, cfg.sinks[i].name) != 0) {
            continue;
        }
        found = 1;
        if (test_sink(&cfg.sinks[i]) != 0) {
            rc = 1;
        }
    }
    if (!found) {
        fprintf(stderr, "alerts test: %s\n",
                only ? "no sink of that name in alerting.sinks" : "alerting.sinks is empty");
        rc = 2;
    }
    dw_config_free(&cfg);
    return rc;
}
