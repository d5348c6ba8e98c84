/*
 * dw_run.c - `driftwatch run`: the consumer service.
 *
 * One event loop on the main thread (Redis's serverCron style): poll a batch of messages,
 * decode, feed them to their partition's state, and on periods checkpoint to Redis (every
 * checkpoint.interval) and evaluate closed windows (every evaluation.interval). Other threads:
 * librdkafka's, the HTTP server's and the webhook delivery thread; a signal handler only sets
 * a flag.
 *
 * Exactness: a partition's state and the offsets it reflects are written together in one
 * MULTI/EXEC; on assignment the state is loaded and the consumer seeks to the stored offsets,
 * so after a crash the events after the checkpoint are replayed into the state they left.
 * Dead letters are flushed to Kafka before each checkpoint (at least once).
 *
 * Evaluation: one pod at a time holds the evaluator lease in Redis. It reads every partition's
 * watermark, derives the global watermark (min over partitions that are not idle), and walks
 * each model's cursor over the windows that closed: merge the partitions' aggregates, compare
 * with the reference, report, alert, trigger, then advance the cursor (at least once).
 * Each report carries the rolling performance of the model's last evaluation.rolling_windows
 * windows: the earlier ones are read back from Redis (kept there for window.retention windows)
 * at both the close and the final evaluation, so late labels reach the rolling view too.
 */
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftwatch/dw_actions.h"
#include "driftwatch/dw_cmd.h"
#include "driftwatch/dw_common.h"
#include "driftwatch/dw_config.h"
#include "driftwatch/dw_decode.h"
#include "driftwatch/dw_eval.h"
#include "driftwatch/dw_http.h"
#include "driftwatch/dw_kafka.h"
#include "driftwatch/dw_log.h"
#include "driftwatch/dw_metrics.h"
#include "driftwatch/dw_part.h"
#include "driftwatch/dw_redis.h"

#define RUN_BATCH 2048                 /* messages per poll */
#define RUN_POLL_MS 100                /* poll timeout, milliseconds */
#define RUN_MAX_WINDOWS_PER_TICK 64    /* windows evaluated per model per evaluation tick */
#define RUN_STATUS_REPORTS 10          /* last reports kept for /status */
#define RUN_DLQ_PAYLOAD_MAX 1024       /* bytes of an oversize payload kept in its dead letter */
#define RUN_REVOKE_ATTEMPTS 30         /* checkpoint attempts before giving partitions up */
#define RUN_FLUSH_MS 5000              /* producer flush before a checkpoint, milliseconds */
#define RUN_SHUTDOWN_FLUSH_MS 3000     /* webhook flush at shutdown, milliseconds */
#define RUN_LIVE_WINDOW_MS 30000       /* /livez fails when the loop stalls this long */
#define RUN_MMAP_THRESHOLD (64 << 20)  /* bytes: larger blocks come from mmap */
#define RUN_TRIM_THRESHOLD (256 << 20) /* bytes of free heap kept before returning it */

static volatile sig_atomic_t run_stop;

static void on_signal(int sig)
{
    (void)sig;
    run_stop = 1;
}

struct run_metrics {
    struct dw_metric *consumed_pred, *consumed_label;
    struct dw_metric *invalid[DW_BAD__COUNT];
    struct dw_metric *dead_letters, *dead_letter_failures;
    struct dw_metric *late, *duplicates, *labels_held, *label_holds;
    struct dw_metric *checkpoints, *checkpoint_failures, *checkpoint_seconds, *checkpoint_bytes;
    struct dw_metric *partitions, *windows_open, *join_records, *paused;
    struct dw_metric *evaluated, *global_wm;
};

struct model_rt {
    struct dw_ref *ref;
};

struct runner {
    struct dw_config cfg;
    rd_kafka_t *consumer, *producer;
    struct dw_redis *redis;
    struct dw_decoder *dec;
    struct dw_prediction *pev;
    struct dw_http *http;
    struct dw_actions *actions; /* alert rules, sinks, triggers (evaluator) */
    int eval_lease;             /* held the evaluator lease at the last tick */
    int n_parts;
    struct dw_part **parts; /* by partition number; NULL when not owned */
    int64_t *eof_ms;        /* wall clock since the predictions partition hit its end, 0 = not */
    int64_t *label_eof_ms;  /* the same for the labels partition */
    unsigned char *held;    /* labels partition paused by event-time alignment (align_labels) */
    char owner[128];
    int assigned; /* an assignment was received */
    int paused;   /* consumption paused because Redis is unavailable */
    int64_t next_ckpt, next_eval;
    int64_t global_wm;       /* predictions: windows ending before it are closed */
    int64_t global_label_wm; /* labels: windows ending before it - horizon are final */
    struct model_rt *models;
    json_t *reports; /* last reports for /status */
    struct run_metrics m;
};

/* ---- metrics ---- */

static struct dw_metric *counter(const char *name, const char *help, const char *labels)
{
    return dw_metrics_series(name, help, DW_METRIC_COUNTER, labels);
}

static struct dw_metric *gauge(const char *name, const char *help)
{
    return dw_metrics_series(name, help, DW_METRIC_GAUGE, NULL);
}

static void metrics_init(struct run_metrics *m)
{
    const char *consumed = "Messages consumed from the input topics.";
    m->consumed_pred =
        counter("driftwatch_messages_consumed_total", consumed, "topic=\"predictions\"");
    m->consumed_label = counter("driftwatch_messages_consumed_total", consumed, "topic=\"labels\"");
    for (int r = 1; r < DW_BAD__COUNT; r++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "reason=\"%s\"", dw_bad_reason_name(r));
        m->invalid[r] = counter("driftwatch_messages_invalid_total",
                                "Messages that could not be used, by reason.", labels);
    }
    m->dead_letters = counter("driftwatch_dead_letters_total",
                              "Invalid messages written to the dead-letter topic.", NULL);
    m->dead_letter_failures = counter("driftwatch_dead_letter_failures_total",
                                      "Dead letters that could not be produced.", NULL);
    m->late = counter("driftwatch_late_predictions_total",
                      "Predictions whose window had already closed.", NULL);
    m->duplicates = counter("driftwatch_duplicate_events_total",
                            "Duplicate label events and repeated prediction ids.", NULL);
    m->checkpoints =
        counter("driftwatch_checkpoints_total", "Partition checkpoints written.", NULL);
    m->checkpoint_failures =
        counter("driftwatch_checkpoint_failures_total", "Partition checkpoints that failed.", NULL);
    m->checkpoint_seconds = gauge("driftwatch_checkpoint_duration_seconds",
                                  "Duration of the last checkpoint of all owned partitions.");
    m->checkpoint_bytes = counter("driftwatch_checkpoint_bytes_total",
                                  "Bytes written to Redis by checkpoints.", NULL);
    m->partitions = gauge("driftwatch_partitions_assigned", "Partitions owned by this consumer.");
    m->windows_open = gauge("driftwatch_windows_open", "Windows held in memory.");
    m->join_records = gauge("driftwatch_join_records", "Records in the join cache.");
    m->paused = gauge("driftwatch_consumer_paused",
                      "1 while consumption is paused because Redis is unavailable.");
    m->labels_held = gauge("driftwatch_label_partitions_held",
                           "Labels partitions paused because their event time ran more than a "
                           "window ahead of their predictions' (event-time alignment).");
    m->label_holds = counter("driftwatch_label_holds_total",
                             "Times a labels partition was paused by event-time alignment.", NULL);
    m->evaluated = counter("driftwatch_windows_evaluated_total", "Window evaluations.", NULL);
    m->global_wm = gauge("driftwatch_global_watermark_seconds",
                         "Event time up to which windows are closed (epoch seconds).");
}

/* ---- dead letters ---- */

static void dead_letter(struct runner *rn, const rd_kafka_message_t *rkm, enum dw_bad_reason why,
                        const char *err)
{
    dw_metric_inc(rn->m.invalid[why]);
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    dw_log_limited("bad_message", (int)rn->cfg.log_bad_per_second, DW_LOG_WARN, "invalid message",
                   "{s:s,s:s,s:s,s:i,s:I}", "reason", dw_bad_reason_name(why), "error", err,
                   "topic", topic, "partition", (int)rkm->partition, "offset",
                   (json_int_t)rkm->offset);
    if (!rn->cfg.topic_dead_letter[0]) {
        return;
    }
    json_t *dl = json_pack("{s:s,s:s,s:s,s:i,s:I,s:I}", "reason", dw_bad_reason_name(why), "error",
                           err, "topic", topic, "partition", (int)rkm->partition, "offset",
                           (json_int_t)rkm->offset, "payload_size", (json_int_t)rkm->len);
    size_t keep = rkm->len;
    if (why == DW_BAD_TOO_LARGE && keep > RUN_DLQ_PAYLOAD_MAX) {
        keep = RUN_DLQ_PAYLOAD_MAX;
        json_object_set_new(dl, "payload_truncated", json_true());
    }
    if (why != DW_BAD_UTF8 && why != DW_BAD_TOO_LARGE && dw_utf8_valid(rkm->payload, keep)) {
        json_object_set_new(dl, "payload", json_stringn(rkm->payload, keep));
    } else {
        char *b64 = dw_base64(rkm->payload, keep);
        json_object_set_new(dl, "payload_base64", json_string(b64));
        free(b64);
    }
    char *text = json_dumps(dl, JSON_COMPACT);
    json_decref(dl);
    char errstr[256];
    if (!text || dw_kafka_produce(rn->producer, rn->cfg.topic_dead_letter, rkm->key, rkm->key_len,
                                  text, strlen(text), errstr, sizeof(errstr)) != 0) {
        dw_metric_inc(rn->m.dead_letter_failures);
    } else {
        dw_metric_inc(rn->m.dead_letters);
    }
    free(text);
}

/* ---- messages ---- */

static void handle_message(struct runner *rn, rd_kafka_message_t *rkm)
{
    int is_pred = strcmp(rd_kafka_topic_name(rkm->rkt), rn->cfg.topic_predictions) == 0;
    int32_t p = rkm->partition;
    if (p < 0 || p >= rn->n_parts || !rn->parts[p]) {
        return;
    }
    struct dw_part *part = rn->parts[p];
    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int64_t *eof = is_pred ? &rn->eof_ms[p] : &rn->label_eof_ms[p];
            if (*eof == 0) {
                *eof = dw_now_ms();
            }
            part->labels_at_end = rn->label_eof_ms[p] != 0;
            return;
        }
        dw_log_limited("consume_error", 5, DW_LOG_WARN, "consume error", "{s:s}", "error",
                       rd_kafka_message_errstr(rkm));
        return;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t kts = rd_kafka_message_timestamp(rkm, &tstype);
    if (kts < 0) {
        kts = dw_now_ms();
    }
    char errstr[512];
    enum dw_bad_reason bad;
    if (is_pred) {
        rn->eof_ms[p] = 0;
        dw_metric_inc(rn->m.consumed_pred);
        bad = dw_decode_prediction(rn->dec, rkm->payload, rkm->len, kts, rn->pev, errstr,
                                   sizeof(errstr));
        if (!bad) {
            enum dw_part_result res = dw_part_on_prediction(part, rn->pev);
            if (res == DW_PART_LATE) {
                dw_metric_inc(rn->m.late);
            } else if (res == DW_PART_DUPLICATE) {
                dw_metric_inc(rn->m.duplicates);
            } else if (res == DW_PART_REJECTED) {
                bad = part->reject.reason;
                snprintf(errstr, sizeof(errstr), "%s", part->reject.msg);
            }
            if (part->join_rejected) { /* its parked label, consumed earlier: no dead letter */
                dw_metric_add(rn->m.invalid[part->join_reject.reason], (double)part->join_rejected);
                dw_log_limited("bad_message", (int)rn->cfg.log_bad_per_second, DW_LOG_WARN,
                               "parked label rejected at its join", "{s:s,s:s,s:i,s:I}", "reason",
                               dw_bad_reason_name(part->join_reject.reason), "error",
                               part->join_reject.msg, "partition", (int)p, "label_events",
                               (json_int_t)part->join_rejected);
            }
        }
        part->off_pred = rkm->offset + 1;
    } else {
        struct dw_label lab;
        rn->label_eof_ms[p] = 0;
        part->labels_at_end = 0;
        dw_metric_inc(rn->m.consumed_label);
        bad = dw_decode_label(rn->dec, rkm->payload, rkm->len, kts, &lab, errstr, sizeof(errstr));
        enum dw_part_result res = bad ? DW_PART_OK : dw_part_on_label(part, &lab);
        if (res == DW_PART_DUPLICATE) {
            dw_metric_inc(rn->m.duplicates);
        } else if (res == DW_PART_REJECTED) {
            bad = part->reject.reason;
            snprintf(errstr, sizeof(errstr), "%s", part->reject.msg);
        }
        part->off_label = rkm->offset + 1;
    }
    part->meta_dirty = 1;
    if (bad) {
        dead_letter(rn, rkm, bad, errstr);
    }
    dw_decoder_reset(rn->dec);
}

/* ---- checkpoints ---- */

static size_t owned_count(const struct runner *rn)
{
    size_t n = 0;
    for (int p = 0; p < rn->n_parts; p++) {
        n += rn->parts[p] != NULL;
    }
    return n;
}

static void commit_offsets(struct runner *rn)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(2 * rn->n_parts);
    for (int p = 0; p < rn->n_parts; p++) {
        struct dw_part *part = rn->parts[p];
        if (part && part->off_pred >= 0) {
            rd_kafka_topic_partition_list_add(offs, rn->cfg.topic_predictions, p)->offset =
                part->off_pred;
        }
        if (part && part->off_label >= 0) {
            rd_kafka_topic_partition_list_add(offs, rn->cfg.topic_labels, p)->offset =
                part->off_label;
        }
    }
    if (offs->cnt > 0) {
        rd_kafka_commit(rn->consumer, offs, 1);
    }
    rd_kafka_topic_partition_list_destroy(offs);
}

static void drop_part(struct runner *rn, int p)
{
    dw_part_free(rn->parts[p]);
    rn->parts[p] = NULL;
    rn->eof_ms[p] = 0;
    rn->label_eof_ms[p] = 0;
    if (rn->held[p]) {
        rn->held[p] = 0;
        dw_metric_add(rn->m.labels_held, -1.0);
    }
}

/* @returns 0 when every owned partition was written, -1 otherwise. */
static int checkpoint_all(struct runner *rn)
{
    int64_t t0 = dw_mono_ms();
    if (rd_kafka_flush(rn->producer, RUN_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        dw_log(DW_LOG_WARN, "producer flush timed out; checkpoint postponed", "{s:i}",
               "messages_queued", rd_kafka_outq_len(rn->producer));
        return -1;
    }
    size_t owned = owned_count(rn);
    int64_t per_part = owned ? rn->cfg.join_max_records / (int64_t)owned : 0;
    int rc = 0;
    for (int p = 0; p < rn->n_parts; p++) {
        struct dw_part *part = rn->parts[p];
        if (!part) {
            continue;
        }
        dw_part_maintain(part, per_part);
        char errstr[512];
        size_t bytes = 0;
        int res = dw_redis_checkpoint(rn->redis, part, rn->owner, rn->eof_ms[p],
                                      rn->label_eof_ms[p], &bytes, errstr, sizeof(errstr));
        if (res == 0) {
            dw_metric_inc(rn->m.checkpoints);
            dw_metric_add(rn->m.checkpoint_bytes, (double)bytes);
            continue;
        }
        dw_metric_inc(rn->m.checkpoint_failures);
        dw_log(DW_LOG_ERROR, "checkpoint failed", "{s:i,s:s}", "partition", p, "error", errstr);
        if (res == -2) {
            drop_part(rn, p); /* fenced: another consumer owns it now */
        } else {
            rc = -1;
            break;
        }
    }
    dw_metric_set(rn->m.checkpoint_seconds, (double)(dw_mono_ms() - t0) / 1000.0);
    if (rc == 0) {
        commit_offsets(rn);
    }
    return rc;
}

/* Forgets the alignment pauses (their partitions were resumed or unassigned). */
static void release_holds(struct runner *rn)
{
    if (rn->held) {
        memset(rn->held, 0, (size_t)rn->n_parts);
    }
    dw_metric_set(rn->m.labels_held, 0.0);
}

static void set_paused(struct runner *rn, int paused)
{
    if (rn->paused == paused) {
        return;
    }
    rd_kafka_topic_partition_list_t *asg = NULL;
    if (rd_kafka_assignment(rn->consumer, &asg) == RD_KAFKA_RESP_ERR_NO_ERROR && asg) {
        if (paused) {
            rd_kafka_pause_partitions(rn->consumer, asg);
        } else {
            rd_kafka_resume_partitions(rn->consumer, asg);
            release_holds(rn);
        }
        rd_kafka_topic_partition_list_destroy(asg);
    }
    rn->paused = paused;
    dw_metric_set(rn->m.paused, paused);
    dw_log(paused ? DW_LOG_ERROR : DW_LOG_INFO,
           paused ? "consumption paused: state cannot be checkpointed"
                  : "consumption resumed: checkpoint succeeded",
           NULL);
}

/* ---- rebalance ---- */

static int load_part(struct runner *rn, int p)
{
    char errstr[512];
    struct dw_part *part = dw_part_new(&rn->cfg, p);
    if (dw_redis_claim(rn->redis, p, rn->owner, errstr, sizeof(errstr)) != 0) {
        goto err;
    }
    int found = dw_redis_load_part(rn->redis, part, errstr, sizeof(errstr));
    if (found < 0) {
        goto err;
    }
    rn->parts[p] = part;
    rn->eof_ms[p] = 0;
    rn->label_eof_ms[p] = 0;
    dw_log(DW_LOG_INFO, "partition assigned", "{s:i,s:b,s:I,s:I,s:i}", "partition", p,
           "state_found", found, "offset_predictions", (json_int_t)part->off_pred, "offset_labels",
           (json_int_t)part->off_label, "windows", (int)part->n_wins);
    return 0;
err:
    dw_log(DW_LOG_ERROR, "cannot load partition state", "{s:i,s:s}", "partition", p, "error",
           errstr);
    dw_part_free(part);
    return -1;
}

static int64_t start_offset(const struct runner *rn, int64_t stored)
{
    if (stored >= 0) {
        return stored;
    }
    for (size_t i = 0; i < rn->cfg.n_kafka; i++) {
        if (strcmp(rn->cfg.kafka[i].key, "auto.offset.reset") == 0 &&
            (strcmp(rn->cfg.kafka[i].value, "latest") == 0 ||
             strcmp(rn->cfg.kafka[i].value, "largest") == 0 ||
             strcmp(rn->cfg.kafka[i].value, "end") == 0)) {
            return RD_KAFKA_OFFSET_END;
        }
    }
    return RD_KAFKA_OFFSET_BEGINNING;
}

static void on_assign(struct runner *rn, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p < 0 || p >= rn->n_parts) {
            continue;
        }
        /* State must be loaded before consuming: retry while Redis is unavailable. */
        while (!rn->parts[p] && load_part(rn, p) != 0 && !run_stop) {
            sleep(1);
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct dw_part *part = tp->partition < rn->n_parts ? rn->parts[tp->partition] : NULL;
        if (!part) {
            continue;
        }
        int is_pred = strcmp(tp->topic, rn->cfg.topic_predictions) == 0;
        tp->offset = start_offset(rn, is_pred ? part->off_pred : part->off_label);
    }
    rd_kafka_assign(rk, parts);
    /* A partition paused by an earlier owner of this process starts unpaused (align_labels
     * pauses it again if its labels still run ahead). */
    rd_kafka_resume_partitions(rk, parts);
    release_holds(rn);
    rn->assigned = 1;
    rn->paused = 0;
    dw_metric_set(rn->m.partitions, (double)owned_count(rn));
}

static void on_revoke(struct runner *rn, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    /* At shutdown one attempt: what is not checkpointed is read again from Kafka by the
     * next owner (the Redis state and offsets stay consistent), and SIGTERM must not wait for
     * a broker that is gone. */
    int attempts = run_stop ? 1 : RUN_REVOKE_ATTEMPTS;
    for (int attempt = 0; attempt < attempts && checkpoint_all(rn) != 0; attempt++) {
        sleep(1);
    }
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < rn->n_parts && rn->parts[p]) {
            drop_part(rn, p);
            dw_log(DW_LOG_INFO, "partition revoked", "{s:i}", "partition", p);
        }
    }
    rd_kafka_assign(rk, NULL);
    dw_metric_set(rn->m.partitions, (double)owned_count(rn));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct runner *rn = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(rn, rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(rn, rk, parts);
    } else {
        dw_log(DW_LOG_ERROR, "rebalance failed", "{s:s}", "error", rd_kafka_err2str(err));
        on_revoke(rn, rk, parts);
    }
}

/* ---- evaluation ---- */

/*
 * Minimum over partitions that are not idle of a per-partition clock; idle partitions (at the
 * end of their log for window.idle_timeout) stop holding windows open. When every partition is
 * idle, the largest clock. DW_NO_TS while a live partition has no data yet.
 */
static int64_t min_over_live(const struct runner *rn, const struct dw_part_meta *metas, int labels,
                             int64_t now)
{
    int64_t wm = DW_NO_TS, idle_max = DW_NO_TS;
    int holding = 0;
    for (int p = 0; p < rn->n_parts; p++) {
        const struct dw_part_meta *m = &metas[p];
        int64_t ts = labels ? m->max_label_ts : m->max_ts;
        int64_t eof = labels ? m->label_eof_ms : m->eof_ms;
        int64_t pwm = ts == DW_NO_TS ? DW_NO_TS : ts - (labels ? 0 : rn->cfg.allowed_lateness_ms);
        if (m->present && eof > 0 && now - eof >= rn->cfg.idle_timeout_ms) {
            if (pwm != DW_NO_TS && (idle_max == DW_NO_TS || pwm > idle_max)) {
                idle_max = pwm;
            }
            continue;
        }
        if (pwm == DW_NO_TS) {
            return DW_NO_TS;
        }
        wm = holding ? DW_MIN(wm, pwm) : pwm;
        holding = 1;
    }
    return holding ? wm : idle_max;
}

/* Reads every partition's clocks; sets rn->global_wm and rn->global_label_wm. */
static int global_watermarks(struct runner *rn, int64_t *first_ts)
{
    struct dw_part_meta *metas = dw_calloc((size_t)rn->n_parts, sizeof(*metas));
    *first_ts = DW_NO_TS;
    if (dw_redis_read_metas(rn->redis, rn->n_parts, metas) != 0) {
        free(metas);
        return -1;
    }
    for (int p = 0; p < rn->n_parts; p++) {
        int64_t t = metas[p].min_ts;
        if (t != DW_NO_TS && (*first_ts == DW_NO_TS || t < *first_ts)) {
            *first_ts = t;
        }
    }
    int64_t now = dw_now_ms();
    rn->global_wm = min_over_live(rn, metas, 0, now);
    rn->global_label_wm = min_over_live(rn, metas, 1, now);
    free(metas);
    return 0;
}

static void remember_report(struct runner *rn, json_t *report)
{
    json_array_append(rn->reports, report);
    while (json_array_size(rn->reports) > RUN_STATUS_REPORTS) {
        json_array_remove(rn->reports, 0);
    }
}

static struct dw_ref *reference_for(struct runner *rn, size_t mi, int64_t start,
                                    const struct dw_agg *agg)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    if (rn->models[mi].ref) {
        return rn->models[mi].ref;
    }
    char name[512];
    snprintf(name, sizeof(name), "ref:%s", m->name);
    char *text = dw_redis_get_str(rn->redis, name);
    if (text) {
        json_t *doc = json_loads(text, 0, NULL);
        char errstr[256];
        rn->models[mi].ref = doc ? dw_ref_from_json(m, doc, errstr, sizeof(errstr)) : NULL;
        json_decref(doc);
        free(text);
        return rn->models[mi].ref;
    }
    if (agg->all.predictions == 0) {
        return NULL;
    }
    /* Still collecting: this non-empty window joins the reference windows. */
    snprintf(name, sizeof(name), "refwins:%s", m->name);
    char *list = dw_redis_get_str(rn->redis, name);
    json_t *wins = list ? json_loads(list, 0, NULL) : NULL;
    free(list);
    if (!json_is_array(wins)) {
        json_decref(wins);
        wins = json_array();
    }
    json_array_append_new(wins, json_integer(start));
    char *dump = json_dumps(wins, JSON_COMPACT);
    dw_redis_set_str(rn->redis, name, dump, 0);
    free(dump);
    if ((int64_t)json_array_size(wins) >= rn->cfg.reference_windows) {
        size_t n = json_array_size(wins);
        struct dw_agg **aggs = dw_calloc(n, sizeof(*aggs));
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            char errstr[256];
            aggs[i] =
                dw_redis_load_window(rn->redis, m, json_integer_value(json_array_get(wins, i)),
                                     rn->n_parts, errstr, sizeof(errstr));
            ok = aggs[i] != NULL;
        }
        if (ok) {
            struct dw_ref *ref = dw_ref_build(m, aggs, n, rn->cfg.psi_bins);
            json_t *doc = dw_ref_to_json_packed(ref);
            char *rtext = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
            snprintf(name, sizeof(name), "ref:%s", m->name);
            /* Kept in memory once stored: reading back the document it was just written as
             * (up to 2^20 values per numeric feature) would stall the loop for seconds. The
             * JSON round trip is exact (17 digits; tests/unit/test_eval.c). */
            if (dw_redis_set_str(rn->redis, name, rtext, 0) == 0) {
                rn->models[mi].ref = ref;
            } else {
                dw_ref_free(ref);
            }
            free(rtext);
            json_decref(doc);
            dw_log(DW_LOG_INFO, "reference built", "{s:s,s:i}", "model", m->name, "windows",
                   (int)n);
        }
        for (size_t i = 0; i < n; i++) {
            dw_agg_free(aggs[i]);
        }
        free(aggs);
    }
    json_decref(wins);
    return NULL; /* reference windows themselves are not judged */
}

/*
 * The windows of the rolling view ending with `cur` (window `start`), oldest first, `cur`
 * last: up to evaluation.rolling_windows, counted from the model's first evaluated window
 * (Redis key rolling_first:<model>, set on the first evaluation) as replay counts from the
 * first reported one. The earlier windows are read from Redis (a missing one is empty) through
 * `counts_only`, a feature-less copy of the model: their feature statistics and sketches are
 * skipped while decoding, so holding 23 of them costs their counts only.
 * @returns 0 with *aggs (free with free_recent) and *n (0 when disabled), -1 on a Redis error.
 */
static int load_recent(struct runner *rn, size_t mi, int64_t start, struct dw_agg *cur,
                       struct dw_model_cfg *counts_only, struct dw_agg ***aggs, size_t *n)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    int64_t L = rn->cfg.window_size_ms;
    *aggs = NULL;
    *n = 0;
    if (rn->cfg.rolling_windows <= 0) {
        return 0;
    }
    char name[512];
    snprintf(name, sizeof(name), "rolling_first:%s", m->name);
    int64_t first = start;
    int found = dw_redis_get_i64(rn->redis, name, &first);
    if (found < 0) {
        return -1;
    }
    if (found == 0 || first > start) {
        first = start;
        if (dw_redis_set_i64(rn->redis, name, first) != 0) {
            return -1;
        }
    }
    int64_t k = DW_MIN(rn->cfg.rolling_windows, (start - first) / L + 1);
    *counts_only = *m;
    counts_only->features = NULL;
    counts_only->n_features = 0;
    struct dw_agg **recent = dw_calloc((size_t)k, sizeof(*recent));
    for (int64_t i = 0; i < k - 1; i++) {
        int64_t ws = start - (k - 1 - i) * L;
        char errstr[512];
        /* Read through the feature-less model: sketches are skipped, not decoded. */
        struct dw_agg *full =
            dw_redis_load_window(rn->redis, counts_only, ws, rn->n_parts, errstr, sizeof(errstr));
        if (!full) {
            dw_log(DW_LOG_ERROR, "cannot read window", "{s:s,s:I,s:s}", "model", m->name,
                   "window_start_ms", (json_int_t)ws, "error", errstr);
            for (int64_t j = 0; j < i; j++) {
                dw_agg_free(recent[j]);
            }
            free(recent);
            return -1;
        }
        recent[i] = full;
    }
    recent[k - 1] = cur;
    *aggs = recent;
    *n = (size_t)k;
    return 0;
}

/* Frees what load_recent() returned, except the last entry (the caller's window). */
static void free_recent(struct dw_agg **aggs, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        dw_agg_free(aggs[i]);
    }
    free(aggs);
}

/* Evaluates one window; its alerts and trigger are committed with cursor_name := start + L. */
static int evaluate_window(struct runner *rn, size_t mi, int64_t start, int final,
                           const char *cursor_name)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    char errstr[512];
    struct dw_agg *agg =
        dw_redis_load_window(rn->redis, m, start, rn->n_parts, errstr, sizeof(errstr));
    if (!agg) {
        dw_log(DW_LOG_ERROR, "cannot read window", "{s:s,s:s}", "model", m->name, "error", errstr);
        return -1;
    }
    /* Before reference_for(), which records reference windows: a failure here is retried. */
    struct dw_model_cfg counts_only;
    struct dw_agg **recent = NULL;
    size_t n_recent = 0;
    if (load_recent(rn, mi, start, agg, &counts_only, &recent, &n_recent) != 0) {
        dw_agg_free(agg);
        return -1;
    }
    struct dw_ref *ref = final ? rn->models[mi].ref : reference_for(rn, mi, start, agg);
    json_t *report = dw_eval_window(&rn->cfg, m, agg, ref, final);
    dw_eval_add_rolling(report, &rn->cfg, m, recent, n_recent);
    free_recent(recent, n_recent);
    dw_agg_free(agg);
    /* Actions first: they add the change detectors' verdicts to a final report. */
    if (dw_actions_window(rn->actions, m, report, cursor_name, start + rn->cfg.window_size_ms) !=
        0) {
        json_decref(report);
        return -1;
    }
    char name[512];
    snprintf(name, sizeof(name), "report:%s:%" PRId64, m->name, start);
    char *text = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(17));
    dw_redis_set_str(rn->redis, name, text, rn->cfg.retention_windows * rn->cfg.window_size_ms);
    dw_log(DW_LOG_INFO, final ? "window final" : "window closed", "{s:s,s:O,s:O,s:O}", "model",
           m->name, "window_start", json_object_get(report, "window_start"), "predictions",
           json_object_get(report, "predictions"), "drift", json_object_get(report, "drift"));
    free(text);
    remember_report(rn, report);
    json_decref(report);
    dw_metric_inc(rn->m.evaluated);
    return 0;
}

static void evaluate_cursor(struct runner *rn, size_t mi, int final, int64_t first_ts)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    int64_t L = rn->cfg.window_size_ms;
    int64_t delay = final ? rn->cfg.label_horizon_ms : 0;
    char name[512];
    snprintf(name, sizeof(name), "%s:%s", final ? "cursor_final" : "cursor", m->name);
    int64_t cursor = 0;
    int found = dw_redis_get_i64(rn->redis, name, &cursor);
    if (found < 0) {
        return;
    }
    if (found == 0) {
        if (first_ts == DW_NO_TS) {
            return;
        }
        cursor = dw_floor_div(first_ts, L) * L;
    }
    for (int i = 0; i < RUN_MAX_WINDOWS_PER_TICK && !run_stop; i++) {
        int64_t due = cursor + L + delay;
        if (rn->global_wm == DW_NO_TS || due > rn->global_wm) {
            break;
        }
        if (final && (rn->global_label_wm == DW_NO_TS || due > rn->global_label_wm)) {
            break; /* labels of that window may still be on their way */
        }
        if (final && !rn->models[mi].ref) {
            break; /* performance is judged once the reference exists */
        }
        if (evaluate_window(rn, mi, cursor, final, name) != 0) {
            break;
        }
        cursor += L;
    }
}

static void evaluate(struct runner *rn)
{
    int64_t lease_ms = DW_MAX(5000, 10 * rn->cfg.eval_interval_ms);
    if (dw_redis_lease(rn->redis, "eval", rn->owner, lease_ms) != 1) {
        rn->eval_lease = 0;
        return;
    }
    if (!rn->eval_lease) {
        /* Just became the evaluator: deliver what the previous one left pending. */
        rn->eval_lease = 1;
        dw_actions_resume(rn->actions);
    }
    dw_actions_tick(rn->actions, dw_now_ms());
    int64_t first_ts;
    if (global_watermarks(rn, &first_ts) != 0 || rn->global_wm == DW_NO_TS) {
        return;
    }
    int64_t wm = rn->global_wm;
    dw_metric_set(rn->m.global_wm, (double)wm / 1000.0);
    for (int p = 0; p < rn->n_parts; p++) {
        if (rn->parts[p]) {
            rn->parts[p]->closed_upto_ms = wm;
        }
    }
    for (size_t mi = 0; mi < rn->cfg.n_models; mi++) {
        evaluate_cursor(rn, mi, 0, first_ts);
        evaluate_cursor(rn, mi, 1, first_ts);
    }
}

/* ---- status ---- */

/* Distinct classes and versions the owned partitions' join records hold, per model. */
static void publish_join_strings(struct runner *rn)
{
    for (size_t m = 0; m < rn->cfg.n_models; m++) {
        size_t classes = 0, versions = 0;
        for (int p = 0; p < rn->n_parts; p++) {
            if (rn->parts[p]) {
                classes += dw_join_classes(&rn->parts[p]->join, m);
                versions += dw_join_versions(&rn->parts[p]->join, m);
            }
        }
        char name[256], labels[300];
        dw_metrics_escape(rn->cfg.models[m].name, name, sizeof(name));
        snprintf(labels, sizeof(labels), "model=\"%s\"", name);
        dw_metric_set(dw_metrics_series("driftwatch_join_classes",
                                        "Distinct classes held by the join records of the owned "
                                        "partitions (bounded per partition by "
                                        "models.<m>.max_classes).",
                                        DW_METRIC_GAUGE, labels),
                      (double)classes);
        dw_metric_set(dw_metrics_series("driftwatch_join_versions",
                                        "Distinct model versions held by the join records of the "
                                        "owned partitions (bounded per partition by "
                                        "models.<m>.max_versions).",
                                        DW_METRIC_GAUGE, labels),
                      (double)versions);
    }
}

static void publish_status(struct runner *rn)
{
    json_t *parts = json_array();
    size_t wins = 0, records = 0;
    for (int p = 0; p < rn->n_parts; p++) {
        struct dw_part *part = rn->parts[p];
        if (!part) {
            continue;
        }
        wins += part->n_wins;
        records += part->join.count;
        int64_t wm = dw_part_watermark(part);
        json_array_append_new(
            parts,
            json_pack("{s:i,s:I,s:I,s:o,s:i,s:I,s:b}", "partition", p, "offset_predictions",
                      (json_int_t)part->off_pred, "offset_labels", (json_int_t)part->off_label,
                      "watermark_ms", wm == DW_NO_TS ? json_null() : json_integer(wm),
                      "windows_open", (int)part->n_wins, "join_records",
                      (json_int_t)part->join.count, "idle", rn->eof_ms[p] != 0));
    }
    dw_metric_set(rn->m.windows_open, (double)wins);
    dw_metric_set(rn->m.join_records, (double)records);
    publish_join_strings(rn);
    json_t *st =
        json_pack("{s:s,s:s,s:o,s:b,s:o,s:O,s:b,s:o}", "group", rn->cfg.group, "owner", rn->owner,
                  "global_watermark_ms",
                  rn->global_wm == DW_NO_TS ? json_null() : json_integer(rn->global_wm), "paused",
                  rn->paused, "partitions", parts, "reports", rn->reports, "evaluator",
                  rn->eval_lease, "alerts_firing", dw_actions_status(rn->actions));
    char *text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    if (rn->http) {
        dw_http_set_status(rn->http, text);
        int redis_ok = !rn->paused;
        dw_http_set_ready(rn->http, rn->assigned && redis_ok,
                          !rn->assigned ? "waiting for partition assignment" : "redis unavailable");
    }
    free(text);
}

/* ---- lifecycle ---- */

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch run -c FILE [--check-config]\n"
            "       driftwatch run --config-reference\n\n"
            "Consumes the prediction and label topics, joins them, keeps windows in Redis,\n"
            "detects drift and sends alerts and retraining triggers.\n\n"
            "  -c, --config FILE   configuration (see deploy/driftwatch.example.yaml)\n"
            "      --check-config  validate the configuration, print the effective config, exit\n"
            "      --config-reference  print every configuration key (Markdown table), exit\n"
            "  -h, --help          this help\n"
            "      --version       print the version\n");
}

static int runner_start(struct runner *rn, char *errstr, size_t errstr_size)
{
    /* Owner token: fences checkpoints of a previous owner of a partition (dw_redis_claim). */
    char host[64] = "";
    if (gethostname(host, sizeof(host) - 1) != 0) {
        snprintf(host, sizeof(host), "unknown");
    }
    snprintf(rn->owner, sizeof(rn->owner), "%.63s-%ld-%lld", host, (long)getpid(),
             (long long)dw_now_ms());
    metrics_init(&rn->m);
    rn->reports = json_array();
    rn->global_wm = DW_NO_TS;
    rn->global_label_wm = DW_NO_TS;
    rn->models = dw_calloc(rn->cfg.n_models, sizeof(*rn->models));
    if (!(rn->dec = dw_decoder_new(&rn->cfg, errstr, errstr_size))) {
        return -1;
    }
    rn->pev = dw_prediction_new(rn->dec);
    if (!(rn->redis = dw_redis_connect(&rn->cfg, errstr, errstr_size))) {
        return -1;
    }
    if (!(rn->producer = dw_kafka_producer_new(&rn->cfg, errstr, errstr_size))) {
        return -1;
    }
    rn->consumer = dw_kafka_consumer_new(&rn->cfg, rebalance_cb, rn, errstr, errstr_size);
    if (!rn->consumer) {
        return -1;
    }
    if (dw_kafka_check_copartitioned(rn->consumer, &rn->cfg, &rn->n_parts, errstr, errstr_size) !=
        0) {
        return -1;
    }
    if (dw_redis_set_partitions(rn->redis, rn->n_parts) != 0) {
        return dw_err(errstr, errstr_size, "redis: cannot store the partition count");
    }
    rn->parts = dw_calloc((size_t)rn->n_parts, sizeof(*rn->parts));
    rn->eof_ms = dw_calloc((size_t)rn->n_parts, sizeof(*rn->eof_ms));
    rn->held = dw_calloc((size_t)rn->n_parts, sizeof(*rn->held));
    rn->label_eof_ms = dw_calloc((size_t)rn->n_parts, sizeof(*rn->label_eof_ms));
    if (!(rn->actions =
              dw_actions_new(&rn->cfg, rn->redis, rn->producer, rn->owner, errstr, errstr_size))) {
        return -1;
    }
    if (rn->cfg.http_listen[0] &&
        !(rn->http = dw_http_start(rn->cfg.http_listen, RUN_LIVE_WINDOW_MS, errstr, errstr_size))) {
        return -1;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, rn->cfg.topic_predictions, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, rn->cfg.topic_labels, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rn->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        return dw_err(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
    }
    return 0;
}

/* Pauses or resumes the labels partition p (event-time alignment). */
static void hold_labels(struct runner *rn, int p, int hold)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, rn->cfg.topic_labels, p);
    rd_kafka_resp_err_t err = hold ? rd_kafka_pause_partitions(rn->consumer, tp)
                                   : rd_kafka_resume_partitions(rn->consumer, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rn->held[p] = (unsigned char)hold;
        dw_metric_add(rn->m.labels_held, hold ? 1.0 : -1.0);
        if (hold) {
            dw_metric_inc(rn->m.label_holds);
        }
    }
}

/*
 * Event-time alignment of the two topics of a partition (as Flink's watermark alignment): when
 * the labels' clock runs more than one window ahead of the predictions' (a backlog: label
 * messages are smaller, so librdkafka fetches them faster), the labels partition is paused
 * until the predictions catch up to half a window behind, or reach the end of their log, or
 * have no event yet. Otherwise every label of the backlog would wait parked in the join cache
 * for its prediction: memory and CPU spent for nothing. The results do not depend on it (the
 * two clocks make every interleaving give the same state); only memory and speed do.
 */
static void align_labels(struct runner *rn)
{
    int64_t slack = rn->cfg.window_size_ms;
    for (int p = 0; p < rn->n_parts && !rn->paused; p++) {
        struct dw_part *part = rn->parts[p];
        if (!part) {
            continue;
        }
        int ahead_by_more = 0, caught_up = 1;
        if (part->max_ts != DW_NO_TS && part->max_label_ts != DW_NO_TS && rn->eof_ms[p] == 0) {
            ahead_by_more = part->max_label_ts > part->max_ts + slack;
            caught_up = part->max_label_ts <= part->max_ts + slack / 2;
        }
        if (!rn->held[p] && ahead_by_more) {
            hold_labels(rn, p, 1);
        } else if (rn->held[p] && caught_up) {
            hold_labels(rn, p, 0);
        }
    }
}

static void runner_loop(struct runner *rn)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rn->consumer);
    rd_kafka_message_t **batch = dw_calloc(RUN_BATCH, sizeof(*batch));
    rn->next_ckpt = dw_mono_ms() + rn->cfg.checkpoint_interval_ms;
    rn->next_eval = dw_mono_ms() + rn->cfg.eval_interval_ms;
    while (!run_stop) {
        ssize_t n = rd_kafka_consume_batch_queue(q, RUN_POLL_MS, batch, RUN_BATCH);
        for (ssize_t i = 0; i < n; i++) {
            handle_message(rn, batch[i]);
            rd_kafka_message_destroy(batch[i]);
        }
        if (n <= 0) {
            /* Serve rebalance and error events when no message came. */
            rd_kafka_consumer_poll(rn->consumer, 0);
        }
        align_labels(rn);
        int64_t now = dw_mono_ms();
        if (now >= rn->next_ckpt) {
            int ok = checkpoint_all(rn) == 0;
            set_paused(rn, !ok);
            rn->next_ckpt = now + rn->cfg.checkpoint_interval_ms;
        }
        if (now >= rn->next_eval) {
            if (!rn->paused) {
                evaluate(rn);
            }
            publish_status(rn);
            rn->next_eval = now + rn->cfg.eval_interval_ms;
        }
        if (rn->http) {
            dw_http_tick(rn->http);
        }
    }
    free(batch);
    rd_kafka_queue_destroy(q);
}

static void runner_stop(struct runner *rn)
{
    if (rn->consumer) {
        if (rn->parts) {
            checkpoint_all(rn);
        }
        rd_kafka_consumer_close(rn->consumer); /* revokes: checkpoints again, frees state */
        rd_kafka_destroy(rn->consumer);
    }
    if (rn->producer) {
        rd_kafka_flush(rn->producer, RUN_FLUSH_MS);
        rd_kafka_destroy(rn->producer);
    }
    dw_actions_free(rn->actions, RUN_SHUTDOWN_FLUSH_MS);
    if (rn->http) {
        dw_http_stop(rn->http);
    }
    for (int p = 0; p < rn->n_parts && rn->parts; p++) {
        dw_part_free(rn->parts[p]);
    }
    for (size_t i = 0; rn->models && i < rn->cfg.n_models; i++) {
        dw_ref_free(rn->models[i].ref);
    }
    free(rn->models);
    free(rn->parts);
    free(rn->eof_ms);
    free(rn->label_eof_ms);
    free(rn->held);
    free(rn->pev);
    dw_decoder_destroy(rn->dec);
    dw_redis_free(rn->redis);
    json_decref(rn->reports);
    dw_config_free(&rn->cfg);
}

int dw_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},     {"check-config", no_argument, NULL, 'C'},
        {"config-reference", no_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int check = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check = 1;
            break;
        case 'R':
            dw_config_reference(stdout);
            return 0;
        case 'h':
            run_usage(stdout);
            return 0;
        case 'V':
            printf("driftwatch %s\n", DW_VERSION);
            return 0;
        default:
            run_usage(stderr);
            return 2;
        }
    }
    static struct runner rn;
    memset(&rn, 0, sizeof(rn));
    if (dw_config_load_cli(&rn.cfg, "run", path) != 0) {
        if (!path) {
            run_usage(stderr);
        }
        return 2;
    }
    if (check) {
        dw_config_dump(&rn.cfg, stdout);
        dw_config_free(&rn.cfg);
        return 0;
    }
    dw_log_set_level(rn.cfg.log_level);
    /* Checkpoint and evaluation buffers of a few MB come and go every second: keep them on the
     * heap instead of mapping and zeroing fresh pages each time (glibc's defaults). */
    mallopt(M_MMAP_THRESHOLD, RUN_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    run_stop = 0;
    int rc = 0;
    char errstr[1024];
    if (runner_start(&rn, errstr, sizeof(errstr)) != 0) {
        dw_log(DW_LOG_ERROR, "cannot start", "{s:s}", "error", errstr);
        fprintf(stderr, "driftwatch: %s\n", errstr);
        rc = 1;
    } else {
        dw_log(DW_LOG_INFO, "started", "{s:s,s:s,s:i,s:s}", "version", DW_VERSION, "group",
               rn.cfg.group, "partitions", rn.n_parts, "owner", rn.owner);
        runner_loop(&rn);
        dw_log(DW_LOG_INFO, "stopping", NULL);
    }
    runner_stop(&rn);
    return rc;
}
