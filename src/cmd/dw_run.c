/*
 * dw_run.c - `driftwatch run`: the consumer service.
 *
 * One event loop on the main thread (Redis's serverCron style): poll a batch of messages,
 * decode, feed them to their partition's state, and on periods checkpoint to Redis (every
 * checkpoint.interval, or every checkpoint.max_messages messages when those come first, as in a
 * catch-up) and evaluate closed windows (every evaluation.interval). Other threads:
 * librdkafka's, the HTTP server's and the webhook delivery thread; a signal handler only sets
 * a flag.
 *
 * Exactness: a partition's state and the offsets it reflects are written together in one
 * MULTI/EXEC; on assignment the state is loaded and the consumer seeks to the stored offsets,
 * so after a crash the events after the checkpoint are replayed into the state they left.
 * Dead letters are at least once: a checkpoint waits until every dead letter produced since the
 * last one is delivered, and produces the failed ones again (settle_dead_letters()). An input
 * offset found out of range is never reset silently: offset_out_of_range() resumes at the
 * partition's own next offset clamped into the log and counts what was deleted unread.
 *
 * Evaluation: each model has its own evaluator lease in Redis, and the live pods share the
 * models, each taking at most ceil(models / live pods) (dw_evalshare decides; a heartbeat set
 * in Redis says who is live), so N pods evaluate different models and a dead pod's models move
 * within a lease period. A pod reads every partition's watermark, derives the global watermark
 * (min over partitions that are not idle), and walks the cursors of the models it holds over
 * the windows that closed: merge the partitions' aggregates, compare with the reference,
 * report, alert, trigger, then advance the cursor (at least once). It does so in slices of
 * RUN_EVAL_SLICE_MS of the loop, so a backlog of windows to evaluate never stalls consumption
 * for longer than one window's evaluation (docs/design.md says why slices and not a thread).
 * Each report carries the rolling performance of the model's last evaluation.rolling_windows
 * windows: the earlier ones are read back from Redis (kept there for window.retention windows)
 * at both the close and the final evaluation, so late labels reach the rolling view too.
 * The decisions (which windows are closed and final, the cursor walk, runs of empty windows,
 * the rolling view's windows, reference collection) are dw_evaluator's, pure and unit-tested;
 * this file reads what they need from Redis and writes what they decide.
 */
#define _GNU_SOURCE /* dladdr: which library malloc is (heap_init) */
#include <dlfcn.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <malloc.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/io/dw_actions.h"
#include "driftwatch/cmd/dw_api.h"
#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_baseline.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_evalshare.h"
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/io/dw_fetchwake.h"
#include "driftwatch/io/dw_files.h"
#include "driftwatch/io/dw_http.h"
#include "driftwatch/io/dw_kafka.h"
#include "driftwatch/io/dw_log.h"
#include "driftwatch/core/dw_metrics.h"
#include "driftwatch/core/dw_modelmetrics.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/io/dw_redis.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define RUN_BATCH 2048                 /* messages per poll */
#define RUN_POLL_MS 100                /* poll timeout, milliseconds */
#define RUN_MAX_WINDOWS_PER_TICK 64    /* reports (a window or an empty run) per model per tick */
#define RUN_EMPTY_PROBE 1024           /* windows of a gap read per cursor per tick */
#define RUN_STATUS_REPORTS 10          /* last reports kept for /status */
#define RUN_REVOKE_ATTEMPTS 30         /* checkpoint attempts before giving partitions up */
#define RUN_FLUSH_MS 5000              /* wait for deliveries (dead letters; all at stop), ms */
#define RUN_FLUSH_POLL_MS 10           /* one poll of that wait, milliseconds */
#define RUN_DLQ_KEPT_MAX (64 << 20)    /* bytes of failed dead letters kept before waiting */
#define RUN_SHUTDOWN_FLUSH_MS 3000     /* webhook flush at shutdown, milliseconds */
#define RUN_CLOSE_MS 10000             /* the consumer's close (leaving the group), milliseconds */
#define RUN_LIVE_WINDOW_MS 30000       /* /livez fails when the loop stalls this long */
#define RUN_EVICT_LOG_MS 60000         /* at most one eviction warning this often */
#define RUN_MMAP_THRESHOLD (4 << 20)   /* bytes: larger blocks come from mmap */
#define RUN_TRIM_THRESHOLD (8 << 20)   /* bytes of free heap kept before returning it */
#define RUN_TRIM_AFTER 100000          /* messages, then the first poll without one trims */
#define RUN_ASSIGN_LOAD_MS 10000       /* loading retried in the rebalance callback, milliseconds */
#define RUN_LOAD_RETRY_MS 1000         /* retry of a load that found Redis unavailable, ms */
#define RUN_REACQUIRE_MS 30000         /* a fenced or lost partition is tried again after, ms */
#define RUN_COMMITTED_TIMEOUT_MS 10000 /* wait for the group's committed offsets, milliseconds */
#define RUN_LOAD_LOST (-10)            /* load_part: state lost and state.on_loss is stop */
#define RUN_SEEK_MS 5000               /* seek of a partition whose state was loaded late, ms */
#define RUN_EVAL_SLICE_MS 25  /* evaluation per loop iteration before consuming again, ms */
#define RUN_LEASE_MIN_MS 5000 /* shortest evaluator lease, milliseconds */
#define RUN_LEASE_TICKS 10    /* a lease lasts this many evaluation intervals */

/* Where the event loop's wall time goes (driftwatch_loop_seconds_total{phase}). */
enum run_phase { PH_POLL, PH_MESSAGES, PH_CHECKPOINT, PH_EVALUATE, PH_OTHER, RUN_PHASES };
static const char *const run_phase_names[RUN_PHASES] = {"poll", "messages", "checkpoint",
                                                        "evaluate", "other"};

static volatile sig_atomic_t run_stop;

static void on_signal(int sig)
{
    (void)sig;
    run_stop = 1;
}

struct run_metrics {
    struct dw_metric *consumed_pred, *consumed_label;
    struct dw_metric *invalid[DW_BAD__COUNT];
    struct dw_metric *dead_letters, *dead_letter_failures, *dead_letters_pending;
    struct dw_metric *offset_resets, *consumer_errors, *lost_pred, *lost_label;
    struct dw_metric *gaps_pred, *gaps_label, *holes_pred, *holes_label;
    struct dw_metric *late, *duplicates, *labels_held, *label_holds;
    struct dw_metric *checkpoints, *checkpoint_failures, *checkpoint_seconds, *checkpoint_bytes;
    struct dw_metric *ckpt_rounds[DW_CKPT_MESSAGES + 1]; /* by dw_ckpt_reason; [0] unused */
    struct dw_metric *loop[RUN_PHASES];                  /* the event loop's wall time by phase */
    struct dw_metric *sketches_dropped;
    struct dw_metric *partitions, *windows_open, *join_records, *join_evicted, *paused;
    struct dw_metric *evaluated, *eval_failures, *global_wm, *evaluating;
    struct dw_metric *quarantined, *quarantines, *loading;
    struct dw_metric *fenced, *state_lost, *fencings, *state_losses;
    struct dw_metric *series_refused, *close_delay, *heap_releases;
    struct dw_metric **lag; /* [2 * p + is_labels]: driftwatch_consumer_lag_messages, once set */
};

/* Why a partition assigned by Kafka has no state in memory (struct runner.pend). */
enum pend_kind {
    PEND_NONE = 0,
    PEND_UNAVAILABLE, /* Redis did not answer: retried every RUN_LOAD_RETRY_MS */
    PEND_CORRUPT,     /* quarantined: retried every state.quarantine_recheck and on rebalance */
    PEND_FENCED,      /* another consumer claimed it in Redis (a rebalance under way), or
                         Redis lost or rolled back its state: retried every RUN_REACQUIRE_MS */
    PEND_LOST,        /* its state is gone from Redis and state.on_loss is stop: retried every
                         RUN_REACQUIRE_MS (a restored Redis, or a restart with another policy) */
};

struct pending {
    enum pend_kind kind;
    int64_t since_ms; /* wall clock of the first failure */
    int64_t next_try; /* monotonic clock of the next load attempt */
    char key[600];    /* the key at fault (corrupt) */
    char error[600];  /* what is wrong */
};

struct model_rt {
    struct dw_ref *ref; /* the stored reference, once read or built (reference_stored) */
    int64_t ref_gen;    /* refgen:<model> when ref was read (reference_sync) */
    int stored_checked; /* the stored reference was read and is not to be used: until
                         * refgen changes, not read again (sources profile, trailing) */
    /* Per stage (0 close, 1 final): a run of empty windows being measured (a long gap is read
     * over several ticks and still reported once; in memory only: lost, it is read again). */
    struct dw_empty_run run[2];
    /* driftwatch_canary_verdict of the (baseline, candidate) pair published last: set to 0
     * when another pair is published (publish_canary) */
    struct dw_metric *canary_verdict[DW_CANARY__COUNT];
    struct dw_modelmetrics_model series; /* the model's series set by publish_models */
    /* The window closed last here, its sketches dropped (counts only): the next close's merged
     * sketches are created with room for as many values (dw_redis_load_window's like). */
    struct dw_agg *sized_like;
};

struct runner {
    struct dw_config cfg;
    rd_kafka_t *consumer, *producer;
    struct dw_fetchwake *fetchwake; /* wakes librdkafka's fetchers when the queue runs low */
    struct dw_kafka_outbox *dlq;    /* dead letters until delivered (created on first use) */
    struct dw_redis *redis;
    /* one decoder per topic: each remembers the places of its own messages' keys (a label
     * decoded between two predictions made the predictions' root keys miss: +0.65 % of the
     * per-message instructions in bench/part.sh) */
    struct dw_decoder *dec_pred, *dec_label;
    struct dw_prediction *pev;
    struct dw_http *http;
    struct dw_api *api;         /* GET / and /api/v1/models... (reads Redis on the HTTP threads) */
    struct dw_actions *actions; /* alert rules, sinks, triggers (evaluator) */
    unsigned char *evaluating;  /* per model: held its evaluator lease at the last tick */
    struct dw_eval_round round; /* the evaluation round being walked (dw_evaluator) */
    int n_parts;
    struct dw_part **parts;    /* by partition number; NULL when not owned */
    int64_t *eof_ms;           /* wall clock since the predictions partition hit its end, 0 = not */
    int64_t *label_eof_ms;     /* the same for the labels partition */
    unsigned char *held;       /* labels partition paused by event-time alignment (align_labels) */
    unsigned char *refetching; /* [2 * p + is_pred]: fetched again from its next offset; the
                                * rest of the current batch is dropped (refetch_gap) */
    struct pending *pend;      /* assigned partitions whose state is not loaded (paused) */
    json_t *windows_held;      /* partitions whose state holds windows open, from the last read */
    char owner[128];
    int assigned;        /* an assignment was received */
    int paused;          /* consumption paused because Redis is unavailable */
    uint64_t since_trim; /* messages consumed since the last heap release (RUN_TRIM_AFTER) */
    uint64_t since_ckpt; /* messages consumed since the last checkpoint round */
    int64_t evaluated_since_trim; /* windows evaluated since then */
    /* the preloaded allocator's call that hands free memory back, if any (heap_init): mimalloc's
     * mi_collect(), tcmalloc's MallocExtension_ReleaseFreeMemory() */
    void (*mi_collect)(bool force);
    void (*tcmalloc_release)(void);
    int stop_unsaved; /* the last checkpoint tried while stopping failed */
    int failed;       /* stopped by an error (consumer_error()): exit status 1 */
    int64_t next_ckpt, next_eval;
    uint64_t evicted_unlogged; /* join records evicted since the last log line about it */
    int64_t evict_logged_ms;   /* monotonic time of that line */
    struct dw_watermarks wms;  /* the group's clocks (dw_evaluator), from the last read */
    struct model_rt *models;
    struct dw_ref **profiles;  /* per model: reference.profile (source profile), read at start */
    json_t *reports;           /* last reports for /status */
    struct dw_modelmetrics mm; /* the model series' bound (metrics.max_series) */
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

/*
 * The heap allocator: glibc's malloc, or mimalloc or tcmalloc when an operator preloads one to
 * spend an eighth to a quarter less CPU a message for 20-35 MB more peak RSS (docs/scaling.md,
 * "Another allocator"). Free memory goes back to the system through the allocator's own call:
 * malloc_trim() does not see their pages (without its release, tcmalloc kept ~60 MB more
 * resident once caught up). The allocator is the library that `malloc` resolves to. Looked up
 * once; the "started" line and driftwatch_heap_releases_total name it.
 */
static void heap_init(struct runner *rn)
{
    Dl_info info = {0};
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    const char *lib = m && dladdr(m, &info) && info.dli_fname ? info.dli_fname : "";
    if (strstr(lib, "libmimalloc")) {
        *(void **)&rn->mi_collect = dlsym(RTLD_DEFAULT, "mi_collect");
    } else if (strstr(lib, "libtcmalloc")) {
        *(void **)&rn->tcmalloc_release = dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
    }
}

/* "glibc", "mimalloc" or "tcmalloc": the allocator heap_release() goes through */
static const char *heap_name(const struct runner *rn)
{
    return rn->mi_collect ? "mimalloc" : rn->tcmalloc_release ? "tcmalloc" : "glibc";
}

static void heap_release(struct runner *rn)
{
    if (rn->mi_collect) {
        rn->mi_collect(true);
    } else if (rn->tcmalloc_release) {
        rn->tcmalloc_release();
    } else {
        malloc_trim(0);
    }
    dw_metric_inc(rn->m.heap_releases);
}

static void metrics_init(struct run_metrics *m, const char *allocator)
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
                              "Invalid messages written to the dead-letter topic (queued once; "
                              "a failed delivery is produced again, not counted again).",
                              NULL);
    m->dead_letter_failures =
        counter("driftwatch_dead_letter_failures_total",
                "Dead-letter deliveries that failed (each is kept and produced again; the "
                "checkpoint waits for it).",
                NULL);
    m->dead_letters_pending =
        gauge("driftwatch_dead_letters_pending",
              "Dead letters not confirmed delivered at the last checkpoint attempt (in flight, "
              "or failed and produced again); checkpoints wait while it is above 0.");
    m->offset_resets = counter("driftwatch_kafka_offset_resets_total",
                               "Fetches answered 'offset out of range', resolved by driftwatch "
                               "(resumed at its own offset, or moved into the log's bounds).",
                               NULL);
    m->consumer_errors =
        counter("driftwatch_kafka_consumer_errors_total",
                "Error events the Kafka consumer handed over and did not resolve itself (of the "
                "group, such as a refused FindCoordinator or JoinGroup, or of a partition), each "
                "logged as 'consume error'; a fatal one stops driftwatch.",
                NULL);
    const char *lost = "Input messages deleted (retention) before they were consumed: the gap "
                       "between the consumer's offset and the log start.";
    m->lost_pred = counter("driftwatch_messages_lost_total", lost, "topic=\"predictions\"");
    m->lost_label = counter("driftwatch_messages_lost_total", lost, "topic=\"labels\"");
    const char *gaps = "Fetches that returned a message past the consumer's next offset "
                       "(offsets skipped on the way): fetched again from the next offset.";
    m->gaps_pred = counter("driftwatch_kafka_fetch_gaps_total", gaps, "topic=\"predictions\"");
    m->gaps_label = counter("driftwatch_kafka_fetch_gaps_total", gaps, "topic=\"labels\"");
    const char *holes = "Offsets the log holds no message for, found by fetching a gap again "
                        "(transaction markers, aborted transactions, compaction).";
    m->holes_pred =
        counter("driftwatch_kafka_offsets_without_message_total", holes, "topic=\"predictions\"");
    m->holes_label =
        counter("driftwatch_kafka_offsets_without_message_total", holes, "topic=\"labels\"");
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
    m->sketches_dropped = counter("driftwatch_window_sketches_dropped_total",
                                  "Partition windows released once the close evaluation had "
                                  "merged them: sketches dropped, or sealed copy deleted.",
                                  NULL);
    m->checkpoint_bytes = counter("driftwatch_checkpoint_bytes_total",
                                  "Bytes written to Redis by checkpoints.", NULL);
    const char *rounds = "Checkpoint rounds (every owned partition), by what made them due: "
                         "checkpoint.interval, or checkpoint.max_messages consumed before it.";
    m->ckpt_rounds[DW_CKPT_INTERVAL] =
        counter("driftwatch_checkpoint_rounds_total", rounds, "reason=\"interval\"");
    m->ckpt_rounds[DW_CKPT_MESSAGES] =
        counter("driftwatch_checkpoint_rounds_total", rounds, "reason=\"messages\"");
    for (int i = 0; i < RUN_PHASES; i++) {
        char label[32];
        snprintf(label, sizeof(label), "phase=\"%s\"", run_phase_names[i]);
        m->loop[i] = counter("driftwatch_loop_seconds_total",
                             "Wall time of the consuming thread's loop by phase: poll (waiting "
                             "for and taking messages from librdkafka), messages (decoding and "
                             "applying them), checkpoint, evaluate (and the status), other.",
                             label);
    }
    m->partitions = gauge("driftwatch_partitions_assigned", "Partitions owned by this consumer.");
    m->windows_open = gauge("driftwatch_windows_open", "Windows held in memory.");
    m->join_records = gauge("driftwatch_join_records", "Records in the join cache.");
    m->join_evicted = counter("driftwatch_join_evicted_total",
                              "Join records evicted, oldest first, because join.max_records was "
                              "reached: the labels of evicted predictions and the duplicates of "
                              "evicted joined records are no longer recognised.",
                              NULL);
    m->paused = gauge("driftwatch_consumer_paused",
                      "1 while consumption is paused because Redis is unavailable.");
    m->labels_held = gauge("driftwatch_label_partitions_held",
                           "Labels partitions paused because their event time ran more than a "
                           "window ahead of their predictions' (event-time alignment).");
    m->label_holds = counter("driftwatch_label_holds_total",
                             "Times a labels partition was paused by event-time alignment.", NULL);
    m->evaluated = counter("driftwatch_windows_evaluated_total", "Window evaluations.", NULL);
    m->eval_failures = counter("driftwatch_window_evaluation_failures_total",
                               "Window evaluations that failed (Redis errors, evaluation state "
                               "that cannot be read); the window is evaluated again next tick.",
                               NULL);
    m->global_wm = gauge("driftwatch_global_watermark_seconds",
                         "Event time up to which windows are closed (epoch seconds).");
    m->evaluating = gauge("driftwatch_models_evaluating",
                          "Models whose evaluator lease this pod holds (it evaluates their "
                          "windows; the live pods share the models).");
    m->quarantined = gauge("driftwatch_partitions_quarantined",
                           "Assigned partitions not consumed because their stored state is "
                           "corrupt (see /status and `driftwatch state check`).");
    m->fenced = gauge("driftwatch_partitions_fenced",
                      "Assigned partitions held without state because another consumer "
                      "claimed them in Redis (paused, not consumed).");
    m->state_lost = gauge("driftwatch_partitions_state_lost",
                          "Assigned partitions held because their state is gone from Redis and "
                          "state.on_loss is stop (paused, not consumed).");
    m->fencings =
        counter("driftwatch_partition_fencings_total",
                "Checkpoints refused because another consumer owned the partition.", NULL);
    m->state_losses = counter("driftwatch_state_losses_total",
                              "Partitions found without state in Redis although Kafka held "
                              "offsets committed after a checkpoint of theirs.",
                              NULL);
    m->quarantines = counter("driftwatch_partition_quarantines_total",
                             "Times a partition was quarantined for corrupt state.", NULL);
    m->series_refused =
        counter("driftwatch_model_series_refused_total",
                "Model series not created because metrics.max_series was reached, counted at "
                "each refresh (every evaluation interval) that would have created them.",
                NULL);
    m->close_delay = gauge("driftwatch_window_close_delay_seconds",
                           "Seconds from a window's end (event time) to its close evaluation "
                           "(wall clock), the largest over the models' latest close "
                           "evaluations (NaN: none yet).");
    dw_metric_set(m->close_delay, NAN);
    m->loading = gauge("driftwatch_partitions_loading",
                       "Assigned partitions not consumed yet because Redis did not answer while "
                       "their state was loaded.");
    char label[64];
    snprintf(label, sizeof(label), "allocator=\"%s\"", allocator);
    m->heap_releases = counter("driftwatch_heap_releases_total",
                               "Times free heap memory was handed back to the system, after a "
                               "burst of messages or an evaluation round, through the allocator "
                               "driftwatch runs on (glibc's malloc_trim, mimalloc's or tcmalloc's "
                               "release).",
                               label);
}

/* ---- dead letters ---- */

/*
 * Dead letters are at least once. A checkpoint moves the committed offsets past the messages
 * its dead letters name, so it first waits for the delivery report of every dead letter
 * produced since the last checkpoint. One that failed (an error after librdkafka's retries,
 * message.timeout.ms, or a full queue) is still held by the outbox, and is produced again here;
 * while it does not get through, the checkpoint is postponed (consumption pauses) and a crash
 * replays its message from the last checkpoint, which dead-letters it again.
 * @returns 0 when every dead letter was delivered (the checkpoint may proceed), -1 otherwise.
 */
/*
 * Waits up to RUN_FLUSH_MS for the dead letters in flight to be settled by their delivery
 * reports, serving the producer's other reports on the way. Only the dead letters: the producer
 * also carries retraining triggers, and a trigger whose leader answers late (librdkafka retries
 * it for up to message.timeout.ms) held every checkpoint, so the consumption of every partition
 * paused for an output the checkpoint does not cover (test_broker_faults.py, trigger_stalled).
 * @returns 0 once none is in flight, -1 on timeout.
 */
static int dead_letters_flush(struct runner *rn)
{
    int64_t deadline = dw_mono_ms() + RUN_FLUSH_MS;
    rd_kafka_poll(rn->producer, 0);
    while (rn->dlq && dw_kafka_outbox_in_flight(rn->dlq) > 0) {
        if (dw_mono_ms() >= deadline) {
            return -1;
        }
        rd_kafka_poll(rn->producer, RUN_FLUSH_POLL_MS);
    }
    return 0;
}

static int settle_dead_letters(struct runner *rn)
{
    char errstr[512] = "";
    /* A fatal error of the idempotent producer refuses every message for good: replace it
     * (its messages come back to their outboxes as failed and are produced again below). */
    int renewed = dw_kafka_producer_renew(&rn->producer, &rn->cfg, errstr, sizeof(errstr));
    if (renewed != 0) {
        dw_log_limited("producer_renew", 1, DW_LOG_ERROR, "kafka producer failed fatally", "{s:s}",
                       "error", errstr);
    }
    if (renewed == 1) {
        dw_actions_set_producer(rn->actions, rn->producer);
    }
    for (int round = 0;; round++) {
        if (dead_letters_flush(rn) != 0) {
            dw_log(DW_LOG_WARN, "dead letters not confirmed in time; checkpoint postponed", "{s:i}",
                   "dead_letters_in_flight", (int)dw_kafka_outbox_in_flight(rn->dlq));
            if (rn->dlq) {
                dw_metric_set(rn->m.dead_letters_pending,
                              (double)(dw_kafka_outbox_in_flight(rn->dlq) +
                                       dw_kafka_outbox_failed(rn->dlq, NULL)));
            }
            return -1;
        }
        size_t failed = rn->dlq ? dw_kafka_outbox_failed(rn->dlq, NULL) : 0;
        if (failed == 0) {
            dw_metric_set(rn->m.dead_letters_pending, 0.0);
            return 0;
        }
        /* Each failure is counted once: the copies go back in flight right away. */
        dw_metric_add(rn->m.dead_letter_failures, (double)failed);
        dw_metric_set(rn->m.dead_letters_pending, (double)failed);
        errstr[0] = '\0';
        dw_kafka_outbox_retry(rn->producer, rn->dlq, errstr, sizeof(errstr));
        if (round == 1) {
            dw_log_limited("dead_letters_settle", 1, DW_LOG_ERROR,
                           "dead letters not delivered; checkpoint postponed until they are",
                           "{s:i,s:s}", "dead_letters", (int)failed, "error", errstr);
            return -1;
        }
    }
}

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
    char *text =
        dw_dead_letter_text(why, err, topic, rkm->partition, rkm->offset, rkm->payload, rkm->len);
    if (!rn->dlq) {
        rn->dlq = dw_kafka_outbox_new();
    }
    /* Not lost when it cannot be queued: the outbox keeps it among the failed ones. */
    char errstr[256];
    dw_kafka_outbox_produce(rn->producer, rn->dlq, rn->cfg.topic_dead_letter, NULL, rkm->key,
                            rkm->key_len, text, strlen(text), errstr, sizeof(errstr));
    dw_metric_inc(rn->m.dead_letters);
    free(text);
    /* Bounded memory: past RUN_DLQ_KEPT_MAX of failed dead letters, hand them back to the
     * producer (whose queue is bounded and blocks when full) before consuming more. */
    size_t kept = 0;
    dw_kafka_outbox_failed(rn->dlq, &kept);
    while (kept > RUN_DLQ_KEPT_MAX && !run_stop) {
        if (settle_dead_letters(rn) != 0) {
            sleep(1);
        }
        dw_kafka_outbox_failed(rn->dlq, &kept);
    }
}

static void offset_out_of_range(struct runner *rn, const rd_kafka_message_t *rkm,
                                struct dw_part *part, int is_pred);
static void refetch_gap(struct runner *rn, const rd_kafka_message_t *rkm,
                        const struct dw_part *part, int is_pred);
static void count_hole(struct runner *rn, const rd_kafka_message_t *rkm, const struct dw_part *part,
                       int is_pred);

/* ---- messages ---- */

/*
 * An error event of the consumer that librdkafka did not resolve itself: logged and counted.
 * Errors of the group (a refused FindCoordinator or JoinGroup, max.poll.interval.ms exceeded)
 * name no topic: rkm->rkt is NULL. A fatal error (e.g. a fenced group.instance.id) leaves the
 * consumer unusable: driftwatch stops with exit status 1, and its next start resumes from the
 * last checkpoint.
 */
static void consumer_error(struct runner *rn, const rd_kafka_message_t *rkm)
{
    dw_metric_inc(rn->m.consumer_errors);
    dw_log_limited("consume_error", 5, DW_LOG_WARN, "consume error", "{s:s,s:s,s:s,s:i}", "error",
                   rd_kafka_err2name(rkm->err), "detail", rd_kafka_message_errstr(rkm), "topic",
                   rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "", "partition", (int)rkm->partition);
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
        char reason[512];
        rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rn->consumer, reason, sizeof(reason));
        dw_log(DW_LOG_ERROR, "kafka consumer failed fatally: stopping", "{s:s,s:s,s:s}", "error",
               rd_kafka_err2name(fatal), "reason", reason, "consequence",
               "nothing is lost: the next start resumes from the last checkpoint");
        rn->failed = 1;
        run_stop = 1;
    }
}

static void handle_message(struct runner *rn, rd_kafka_message_t *rkm)
{
    if (!rkm->rkt) { /* an error of the group: it names no topic */
        consumer_error(rn, rkm);
        return;
    }
    int is_pred = strcmp(rd_kafka_topic_name(rkm->rkt), rn->cfg.topic_predictions) == 0;
    int32_t p = rkm->partition;
    if (p < 0 || p >= rn->n_parts || !rn->parts[p]) {
        return; /* not owned (revoked, or beyond the count: check_partition_count() stops) */
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
        if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            offset_out_of_range(rn, rkm, part, is_pred);
            return;
        }
        consumer_error(rn, rkm);
        return;
    }
    if (rn->refetching[2 * p + is_pred]) {
        return; /* fetched before refetch_gap went back: it comes again */
    }
    switch (dw_part_fetched(part, is_pred, rkm->offset)) {
    case DW_FETCH_REPEAT:
        return; /* counted already: fetched again after a restart (restart_fetch) */
    case DW_FETCH_REFETCH:
        refetch_gap(rn, rkm, part, is_pred);
        return;
    case DW_FETCH_HOLE:
        count_hole(rn, rkm, part, is_pred);
        break;
    case DW_FETCH_PROCESS:
        break;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t kts = rd_kafka_message_timestamp(rkm, &tstype);
    if (kts < 0) {
        kts = dw_now_ms();
    }
    char errstr[512];
    enum dw_bad_reason bad;
    struct dw_decoder *dec = is_pred ? rn->dec_pred : rn->dec_label;
    if (is_pred) {
        rn->eof_ms[p] = 0;
        dw_metric_inc(rn->m.consumed_pred);
        bad =
            dw_decode_prediction(dec, rkm->payload, rkm->len, kts, rn->pev, errstr, sizeof(errstr));
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
        bad = dw_decode_label(dec, rkm->payload, rkm->len, kts, &lab, errstr, sizeof(errstr));
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
    dw_decoder_reset(dec);
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

static void hold_part(struct runner *rn, int p, int64_t retry_in_ms, const char *why);
static int get_event_time(struct runner *rn, const char *name, int64_t *out);
static int get_cursor(struct runner *rn, const struct dw_model_cfg *m, int final, int64_t *out);

/*
 * Partition p's windows of model m that it retired with their sketches (the close evaluation
 * was behind, as when catching up with a short label horizon) and that are merged now (start
 * before `cursor`): their records are read back and written again without sketches by the next
 * checkpoint. (After a restart the list is empty: such records keep their sketches until they
 * expire, window.retention.) @returns the windows shrunk.
 */
static size_t shrink_retired(struct runner *rn, int p, const struct dw_model_cfg *m, int64_t cursor)
{
    int64_t *starts = NULL;
    size_t n = dw_part_take_unmerged(rn->parts[p], m, cursor, &starts), done = 0;
    for (size_t i = 0; i < n; i++) {
        struct dw_agg *agg = NULL;
        char errstr[512];
        int found =
            dw_redis_read_part_window(rn->redis, p, m, starts[i], &agg, errstr, sizeof(errstr));
        if (found == 1) {
            dw_agg_merged(agg); /* its sketches, or its sealed copy, are not needed any more */
            dw_part_rewrite_window(rn->parts[p], agg);
            done++;
        } else if (found < 0) {
            dw_log(DW_LOG_WARN, "cannot shrink a retired window; it expires with retention",
                   "{s:i,s:s,s:I,s:s}", "partition", p, "model", m->name, "window_start_ms",
                   (json_int_t)starts[i], "error", errstr);
        }
    }
    free(starts);
    return done;
}

/*
 * What the evaluator's cursors, read here before every checkpoint, let the partitions free:
 * - a window's feature sketches are final once it is closed, and once the close evaluation (on
 *   whichever pod holds the lease) has merged them, no partition needs them again: the
 *   partitions drop them before the close cursor and the checkpoint rewrites those windows with
 *   their counts only, in memory and in Redis;
 * - the window records of a model that no reader needs any more (dw_evaluator_records_before
 *   the final cursor) are deleted by the checkpoint (dw_part.h, "kept").
 */
static void apply_cursors(struct runner *rn)
{
    for (size_t mi = 0; mi < rn->cfg.n_models; mi++) {
        const struct dw_model_cfg *m = &rn->cfg.models[mi];
        int64_t cursor = 0, final = 0;
        if (get_cursor(rn, m, 0, &cursor) != 1) {
            continue;
        }
        int gc = get_cursor(rn, m, 1, &final) == 1;
        int64_t before = gc ? dw_evaluator_records_before(&rn->cfg, final) : 0;
        for (int p = 0; p < rn->n_parts; p++) {
            if (rn->parts[p]) {
                size_t n = dw_part_drop_sketches(rn->parts[p], m, cursor);
                n += shrink_retired(rn, p, m, cursor);
                dw_metric_add(rn->m.sketches_dropped, (double)n);
                if (gc) {
                    dw_part_set_gc(rn->parts[p], m, before);
                }
            }
        }
    }
}

/* Counts join records evicted by dw_part_maintain() (bound: the partition's share of
 * join.max_records) and says so in a warning, at most one a minute with the count since the
 * last one: eviction is a loss of what the join can recognise, never silent. */
static void note_evictions(struct runner *rn, uint64_t n, int64_t bound)
{
    if (n == 0) {
        return;
    }
    dw_metric_add(rn->m.join_evicted, (double)n);
    rn->evicted_unlogged += n;
    int64_t now = dw_mono_ms();
    if (rn->evict_logged_ms && now - rn->evict_logged_ms < RUN_EVICT_LOG_MS) {
        return;
    }
    dw_log(DW_LOG_WARN,
           "join records evicted: join.max_records reached (their labels and duplicates are no "
           "longer recognised; raise join.max_records or shorten join.ttl)",
           "{s:I,s:I,s:I}", "evicted", (json_int_t)rn->evicted_unlogged, "per_partition_bound",
           (json_int_t)bound, "join_max_records", (json_int_t)rn->cfg.join_max_records);
    rn->evicted_unlogged = 0;
    rn->evict_logged_ms = now;
}

/* Counts and logs one partition's checkpoint result; a fenced or lost partition is held.
 * @returns -1 when the checkpoint failed otherwise (the ones after it were not attempted). */
static int checkpoint_result(struct runner *rn, const struct dw_redis_ckpt *it)
{
    int p = (int)it->part->partition, res = it->result;
    if (res == 0) {
        dw_metric_inc(rn->m.checkpoints);
        dw_metric_add(rn->m.checkpoint_bytes, (double)it->bytes);
        return 0;
    }
    dw_metric_inc(rn->m.checkpoint_failures);
    dw_log(DW_LOG_ERROR, "checkpoint failed", "{s:i,s:s}", "partition", p, "error", it->err);
    if (res != -2 && res != -3 && res != -4) {
        return -1;
    }
    /* Fenced, or gone from Redis, or rolled back to an older checkpoint: held paused, never
     * consumed and discarded; acquired again as on assignment (the stored state and its
     * offsets, or state.on_loss), at once unless another consumer claimed it. */
    if (res == -2) {
        dw_metric_inc(rn->m.fencings);
    }
    hold_part(rn, p, res == -2 ? RUN_REACQUIRE_MS : 0, it->err);
    return 0;
}

/* Checkpoints every owned partition; release: they are being let go (revoked, stopping).
 * @returns 0 when every one was written, -1 otherwise. */
static int checkpoint_all(struct runner *rn, int release)
{
    int64_t t0 = dw_mono_ms();
    if (settle_dead_letters(rn) != 0) {
        return -1;
    }
    apply_cursors(rn);
    size_t owned = owned_count(rn);
    int64_t per_part = owned ? rn->cfg.join_max_records / (int64_t)owned : 0;
    /* Every owned partition in one batch (dw_redis_checkpoint_many: the owner check of the
     * next partition rides behind the transaction of the one before). */
    struct dw_redis_ckpt *items = dw_calloc(owned ? owned : 1, sizeof(*items));
    size_t n = 0;
    for (int p = 0; p < rn->n_parts; p++) {
        struct dw_part *part = rn->parts[p];
        if (!part) {
            continue;
        }
        uint64_t evicted = part->ctr.evicted;
        dw_part_maintain(part, per_part);
        note_evictions(rn, part->ctr.evicted - evicted, per_part);
        items[n++] = (struct dw_redis_ckpt){.part = part,
                                            .eof_ms = rn->eof_ms[p],
                                            .label_eof_ms = rn->label_eof_ms[p],
                                            .release = release};
    }
    dw_redis_checkpoint_many(rn->redis, items, n, rn->owner);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = checkpoint_result(rn, &items[i]);
    }
    free(items);
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

static void pause_pending(struct runner *rn);

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
            pause_pending(rn);
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

/* ---- input offsets out of range ---- */

static int64_t start_offset(const struct runner *rn, int64_t stored);

/*
 * librdkafka stops fetching a partition after "out of range" (auto.offset.reset is "error")
 * and refuses a seek there; a new assignment restarts it. Every partition resumes at its next
 * offset in memory (messages of the current batch fetched again are skipped by
 * handle_message()), the failed one at `target`. A partition paused before keeps its pause
 * across the new assignment (librdkafka), so the assignment is resumed, or paused whole while
 * consumption is paused; the alignment holds are released (align_labels() takes them again)
 * and the partitions without state paused again. Releasing a hold without resuming its
 * partition left it paused for good once its labels were within a window.
 */
static int restart_fetch(struct runner *rn, const char *topic, int32_t partition, int64_t target,
                         char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *asg = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(rn->consumer, &asg);
    if (err || !asg) {
        return dw_err(errstr, errstr_size, "assignment: %s", rd_kafka_err2str(err));
    }
    for (int i = 0; i < asg->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &asg->elems[i];
        int is_pred = strcmp(tp->topic, rn->cfg.topic_predictions) == 0;
        struct dw_part *pt =
            tp->partition >= 0 && tp->partition < rn->n_parts ? rn->parts[tp->partition] : NULL;
        tp->offset = strcmp(tp->topic, topic) == 0 && tp->partition == partition
                         ? target
                         : start_offset(rn, pt ? (is_pred ? pt->off_pred : pt->off_label) : -1);
    }
    err = rd_kafka_assign(rn->consumer, asg);
    if (rn->paused) {
        rd_kafka_pause_partitions(rn->consumer, asg);
    } else {
        rd_kafka_resume_partitions(rn->consumer, asg); /* lifts the holds released below */
    }
    release_holds(rn);
    pause_pending(rn); /* partitions held without state stay paused */
    rd_kafka_topic_partition_list_destroy(asg);
    if (err) {
        return dw_err(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
    }
    return 0;
}

/*
 * A fetch answered "offset out of range" (retention deleted what was not consumed yet, an
 * unclean leader election truncated the log, or a broker's transient error). librdkafka's own
 * reset would go to the configured start without a trace, re-counting or skipping messages;
 * driftwatch resumes at its own next offset clamped into the log, and says what was lost
 * (driftwatch_messages_lost_total, an error log line).
 */
static void offset_out_of_range(struct runner *rn, const rd_kafka_message_t *rkm,
                                struct dw_part *part, int is_pred)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int64_t pos = is_pred ? part->off_pred : part->off_label;
    if (pos < 0) {
        pos = rkm->offset; /* nothing consumed yet: where the fetch was */
    }
    int64_t target = pos >= 0 ? pos : start_offset(rn, -1);
    char errstr[512] = "", rerr[256] = "";
    dw_metric_inc(rn->m.offset_resets);
    /* Without the log's bounds: resume at pos; if it is still out of range, this comes back. */
    int rc = dw_kafka_offset_in_log(rn->consumer, topic, rkm->partition, pos, &target, errstr,
                                    sizeof(errstr));
    if (restart_fetch(rn, topic, rkm->partition, target, rerr, sizeof(rerr)) != 0) {
        rc = -1;
        snprintf(errstr, sizeof(errstr), "%s", rerr);
    }
    if (rc != 0) {
        dw_log_limited("offset_reset", 1, DW_LOG_WARN, "offset out of range; retried",
                       "{s:s,s:i,s:I,s:s}", "topic", topic, "partition", (int)rkm->partition,
                       "offset", (json_int_t)pos, "error", errstr);
        return;
    }
    const char *what = target > pos   ? "messages deleted before they were consumed (retention)"
                       : target < pos ? "log truncated below the consumed offset; reading on "
                                        "from its end"
                                      : "offset out of range at an offset the log holds; resumed";
    if (target > pos && pos >= 0) {
        dw_metric_add(is_pred ? rn->m.lost_pred : rn->m.lost_label, (double)(target - pos));
    }
    if (target < pos) {
        /* the offsets from target on hold other messages now: they are not repeats */
        *(is_pred ? &part->off_pred : &part->off_label) = target;
    }
    dw_log(target == pos ? DW_LOG_WARN : DW_LOG_ERROR, what, "{s:s,s:i,s:I,s:I}", "topic", topic,
           "partition", (int)rkm->partition, "offset", (json_int_t)pos, "resumed_at",
           (json_int_t)target);
}

/*
 * A fetched message past the next offset (dw_part_fetched): offsets were skipped on the way.
 * Fetch again from the next offset, and drop the rest of this batch's messages of the
 * partition (they come again); the message at the next offset fills the gap, or the same gap
 * again shows a hole in the log (count_hole).
 */
static void refetch_gap(struct runner *rn, const rd_kafka_message_t *rkm,
                        const struct dw_part *part, int is_pred)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int64_t next = is_pred ? part->off_pred : part->off_label;
    char errstr[256] = "";
    dw_metric_inc(is_pred ? rn->m.gaps_pred : rn->m.gaps_label);
    rn->refetching[2 * rkm->partition + is_pred] = 1;
    int rc = restart_fetch(rn, topic, rkm->partition, next, errstr, sizeof(errstr));
    dw_log_limited("fetch_gap", 1, DW_LOG_WARN,
                   rc == 0 ? "fetched past the next offset; fetching again from it"
                           : "fetched past the next offset; fetching again failed",
                   "{s:s,s:i,s:I,s:I,s:s}", "topic", topic, "partition", (int)rkm->partition,
                   "next_offset", (json_int_t)next, "fetched_offset", (json_int_t)rkm->offset,
                   "error", errstr);
}

/* The log has no messages between the next offset and this one (fetched again, the same gap):
 * transaction markers, aborted transactions or compaction. Counted and logged, never silent. */
static void count_hole(struct runner *rn, const rd_kafka_message_t *rkm, const struct dw_part *part,
                       int is_pred)
{
    int64_t next = is_pred ? part->off_pred : part->off_label;
    dw_metric_add(is_pred ? rn->m.holes_pred : rn->m.holes_label, (double)(rkm->offset - next));
    dw_log_limited("fetch_hole", 1, DW_LOG_INFO,
                   "offsets without a message in the log (transaction markers or compaction)",
                   "{s:s,s:i,s:I,s:I}", "topic", rd_kafka_topic_name(rkm->rkt), "partition",
                   (int)rkm->partition, "from", (json_int_t)next, "to", (json_int_t)rkm->offset);
}

/* ---- rebalance ---- */

/* Where a partition without a stored offset starts: auto.offset.reset (earliest by default). */
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

/* The first offset Kafka still holds of partition p of `topic` (-1 when it does not answer). */
static int64_t earliest_offset(struct runner *rn, const char *topic, int p)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_query_watermark_offsets(rn->consumer, topic, p, &lo, &hi,
                                         RUN_COMMITTED_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }
    return lo;
}

/*
 * A partition rebuilt from the earliest offset replays windows the group has closed: up to the
 * furthest close cursor of the models (dw_part.h, replay_upto_ms; DW_NO_TS when none has
 * moved). @returns 0, or -1 with errstr when Redis did not answer or holds a corrupt cursor.
 */
static int set_replay_bound(struct runner *rn, struct dw_part *part, char *errstr,
                            size_t errstr_size)
{
    part->replay_upto_ms = DW_NO_TS;
    for (size_t mi = 0; mi < rn->cfg.n_models; mi++) {
        int64_t cursor = 0;
        int found = get_cursor(rn, &rn->cfg.models[mi], 0, &cursor);
        if (found < 0) {
            return dw_err(errstr, errstr_size, "redis: cannot read model %s's close cursor",
                          rn->cfg.models[mi].name);
        }
        if (found == 1 && (part->replay_upto_ms == DW_NO_TS || cursor > part->replay_upto_ms)) {
            part->replay_upto_ms = cursor;
        }
    }
    return 0;
}

/*
 * Partition p's state was not in Redis. Kafka offsets are committed only after a checkpoint
 * of every partition they name, so an offset committed by the group proves that state existed
 * and is gone: state loss, handled by state.on_loss and never silently. Without a committed
 * offset the partition is new to the group; after `driftwatch state drop` (a tombstone in its
 * meta hash) the operator chose to rebuild it. The offsets chosen are also the state's offsets,
 * so that its first checkpoint records where it really started.
 * @returns DW_LOAD_NONE with part's offsets set, RUN_LOAD_LOST (hold: stop), or
 *          DW_LOAD_UNAVAILABLE when Redis or Kafka did not answer.
 */
static int start_without_state(struct runner *rn, struct dw_part *part, int p, char *errstr,
                               size_t errstr_size)
{
    int dropped = dw_redis_part_dropped(rn->redis, p);
    if (dropped < 0) {
        dw_err(errstr, errstr_size, "redis: cannot read partition %d's meta", p);
        return DW_LOAD_UNAVAILABLE;
    }
    if (dropped > 0) { /* the operator chose: rebuilt from the earliest offset */
        return set_replay_bound(rn, part, errstr, errstr_size) != 0 ? DW_LOAD_UNAVAILABLE
                                                                    : DW_LOAD_NONE;
    }
    int64_t c_pred = -1, c_label = -1;
    if (dw_kafka_committed(rn->consumer, rn->cfg.topic_predictions, rn->cfg.topic_labels, p,
                           RUN_COMMITTED_TIMEOUT_MS, &c_pred, &c_label) != 0) {
        dw_err(errstr, errstr_size, "kafka: the group's committed offsets did not arrive");
        return DW_LOAD_UNAVAILABLE;
    }
    if (c_pred < 0 && c_label < 0) {
        return DW_LOAD_NONE;
    }
    if (dw_redis_set_partitions(rn->redis, rn->n_parts) != 0) {
        /* the global keys went with it: `inspect` and the evaluator read this one */
        dw_err(errstr, errstr_size, "redis: cannot store the partition count");
        return DW_LOAD_UNAVAILABLE;
    }
    static const char *const policies[] = {"stop", "resume_from_committed",
                                           "rebuild_from_earliest"};
    dw_err(errstr, errstr_size,
           "state loss: partition %d has no state in Redis although the group committed offsets "
           "%" PRId64 " (predictions) and %" PRId64 " (labels) after checkpointing it; "
           "state.on_loss is %s",
           p, c_pred, c_label, policies[rn->cfg.on_loss]);
    if (rn->pend[p].kind != PEND_LOST) {
        dw_metric_inc(rn->m.state_losses);
        dw_log(DW_LOG_ERROR, "state loss", "{s:i,s:s,s:s}", "partition", p, "error", errstr,
               "on_loss", policies[rn->cfg.on_loss]);
    }
    switch (rn->cfg.on_loss) {
    case DW_ON_LOSS_STOP:
        return RUN_LOAD_LOST;
    case DW_ON_LOSS_RESUME_FROM_COMMITTED:
        part->off_pred = c_pred;
        part->off_label = c_label;
        break;
    case DW_ON_LOSS_REBUILD_FROM_EARLIEST:
        part->off_pred = earliest_offset(rn, rn->cfg.topic_predictions, p);
        part->off_label = earliest_offset(rn, rn->cfg.topic_labels, p);
        if (part->off_pred < 0 || part->off_label < 0) {
            dw_err(errstr, errstr_size, "kafka: the earliest offsets did not arrive");
            return DW_LOAD_UNAVAILABLE;
        }
        if (set_replay_bound(rn, part, errstr, errstr_size) != 0) {
            return DW_LOAD_UNAVAILABLE;
        }
        break;
    }
    part->meta_dirty = 1;
    return DW_LOAD_NONE;
}

/*
 * Loads partition p's state into *out. Redis unavailable and state corrupt are told apart
 * (dw_redis_load_part): the first is retried, the second quarantines the partition.
 * @returns 0 (state loaded or none stored), DW_LOAD_UNAVAILABLE or DW_LOAD_CORRUPT, with the
 *          fault in rn->pend[p].
 */
static int load_part(struct runner *rn, int p, struct dw_part **out)
{
    struct pending *pd = &rn->pend[p];
    char key[sizeof(pd->key)] = "", errstr[sizeof(pd->error)] = "";
    struct dw_part *part = dw_part_new(&rn->cfg, p);
    *out = NULL;
    int found = DW_LOAD_UNAVAILABLE;
    if (dw_redis_claim(rn->redis, p, rn->owner, errstr, sizeof(errstr)) == 0) {
        found = dw_redis_load_part(rn->redis, part, key, sizeof(key), errstr, sizeof(errstr));
    }
    /* A mark left by any pod (this one, or one before a repair by hand) must go before the
     * partition counts again: the evaluator would hold windows for it for ever. */
    if (found >= 0 && dw_redis_quarantine(rn->redis, p, NULL, errstr, sizeof(errstr)) != 0) {
        found = DW_LOAD_UNAVAILABLE;
    }
    if (found == DW_LOAD_NONE) {
        found = start_without_state(rn, part, p, errstr, sizeof(errstr));
    }
    if (found < 0) {
        dw_part_free(part);
        snprintf(pd->key, sizeof(pd->key), "%s", key);
        snprintf(pd->error, sizeof(pd->error), "%s", errstr);
        return found;
    }
    *out = part;
    dw_log(DW_LOG_INFO, "partition assigned", "{s:i,s:b,s:I,s:I,s:i}", "partition", p,
           "state_found", found, "offset_predictions", (json_int_t)part->off_pred, "offset_labels",
           (json_int_t)part->off_label, "windows", (int)part->n_wins);
    return 0;
}

/* Counts the partitions waiting for their state into the gauges. */
static void pend_metrics(struct runner *rn)
{
    int n[PEND_LOST + 1] = {0};
    for (int p = 0; p < rn->n_parts; p++) {
        n[rn->pend[p].kind]++;
    }
    dw_metric_set(rn->m.quarantined, n[PEND_CORRUPT]);
    dw_metric_set(rn->m.loading, n[PEND_UNAVAILABLE]);
    dw_metric_set(rn->m.fenced, n[PEND_FENCED]);
    dw_metric_set(rn->m.state_lost, n[PEND_LOST]);
}

/* Pauses (or resumes) both topic-partitions of partition p. */
static void pause_part(struct runner *rn, int p, int pause)
{
    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(tps, rn->cfg.topic_predictions, p);
    rd_kafka_topic_partition_list_add(tps, rn->cfg.topic_labels, p);
    if (pause) {
        rd_kafka_pause_partitions(rn->consumer, tps);
    } else {
        rd_kafka_resume_partitions(rn->consumer, tps);
    }
    rd_kafka_topic_partition_list_destroy(tps);
}

/* Pauses again every partition without state (after the whole assignment was resumed). */
static void pause_pending(struct runner *rn)
{
    for (int p = 0; p < rn->n_parts; p++) {
        if (rn->pend[p].kind != PEND_NONE) {
            pause_part(rn, p, 1);
        }
    }
}

/*
 * Records that partition p's state could not be loaded (fault `why`, details in pend[p]): it
 * stays assigned but paused, neither consumed nor checkpointed, until a later load succeeds.
 * Corrupt state is quarantined: logged with the partition and the key, counted, shown in
 * /readyz and /status, and marked in Redis so that every pod's evaluator holds the windows
 * this partition has not read.
 */
static void pend_set(struct runner *rn, int p, int why)
{
    struct pending *pd = &rn->pend[p];
    enum pend_kind kind = why == DW_LOAD_CORRUPT ? PEND_CORRUPT
                          : why == RUN_LOAD_LOST ? PEND_LOST
                                                 : PEND_UNAVAILABLE;
    int64_t mono = dw_mono_ms();
    if (kind == PEND_LOST) {
        pd->next_try = mono + RUN_REACQUIRE_MS;
        if (pd->kind != PEND_LOST) {
            pd->since_ms = dw_now_ms();
            dw_log(DW_LOG_ERROR, "partition held: its state is lost and state.on_loss is stop",
                   "{s:i,s:s,s:s}", "partition", p, "error", pd->error, "what_to_do",
                   "restore Redis, or choose state.on_loss and restart (docs/operations.md)");
        }
    } else if (kind == PEND_CORRUPT) {
        int64_t every = rn->cfg.quarantine_recheck_ms;
        pd->next_try = every > 0 ? mono + every : INT64_MAX;
        if (pd->kind != PEND_CORRUPT) {
            pd->since_ms = dw_now_ms();
            dw_metric_inc(rn->m.quarantines);
            dw_log(DW_LOG_ERROR, "partition quarantined", "{s:i,s:s,s:s,s:s}", "partition", p,
                   "key", pd->key, "error", pd->error, "repair",
                   "driftwatch state check, then driftwatch state drop --partition P "
                   "(docs/operations.md)");
        }
        char errstr[256];
        if (dw_redis_quarantine(rn->redis, p, pd->error, errstr, sizeof(errstr)) != 0) {
            dw_log(DW_LOG_WARN, "cannot mark the partition quarantined in Redis", "{s:i,s:s}",
                   "partition", p, "error", errstr);
        }
    } else {
        pd->next_try = mono + RUN_LOAD_RETRY_MS;
        if (pd->kind == PEND_NONE) {
            pd->since_ms = dw_now_ms();
        }
        dw_log_limited("state_unavailable", 1, DW_LOG_ERROR,
                       "cannot load partition state: Redis unavailable; partition paused",
                       "{s:i,s:s}", "partition", p, "error", pd->error);
    }
    pd->kind = kind;
    pend_metrics(rn);
}

static void pend_clear(struct runner *rn, int p)
{
    memset(&rn->pend[p], 0, sizeof(rn->pend[p]));
    pend_metrics(rn);
}

/*
 * Forgets partition p's state after a checkpoint found it fenced, gone or rolled back (`why`)
 * and holds it paused: retry_pending() acquires it again in retry_in_ms, loading what Redis
 * has and seeking to its offsets, so nothing consumed meanwhile is lost or counted twice.
 */
static void hold_part(struct runner *rn, int p, int64_t retry_in_ms, const char *why)
{
    struct pending *pd = &rn->pend[p];
    drop_part(rn, p);
    pause_part(rn, p, 1);
    pd->kind = PEND_FENCED;
    pd->since_ms = dw_now_ms();
    pd->next_try = dw_mono_ms() + retry_in_ms;
    pd->key[0] = '\0';
    snprintf(pd->error, sizeof(pd->error), "%s", why);
    pend_metrics(rn);
    dw_log(DW_LOG_WARN, "partition held without state: paused until acquired again",
           "{s:i,s:s,s:I}", "partition", p, "error", why, "retry_ms", (json_int_t)retry_in_ms);
    dw_metric_set(rn->m.partitions, (double)owned_count(rn));
}

/*
 * Starts consuming partition p, whose state was loaded after its assignment: seek both
 * topic-partitions to the state's offsets (the wait guarantees that no message fetched before
 * is delivered), then resume them. @returns 0, or -1 (part freed) when the seek failed.
 */
static int activate_part(struct runner *rn, int p, struct dw_part *part)
{
    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(tps, rn->cfg.topic_predictions, p)->offset =
        start_offset(rn, part->off_pred);
    rd_kafka_topic_partition_list_add(tps, rn->cfg.topic_labels, p)->offset =
        start_offset(rn, part->off_label);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(rn->consumer, tps, RUN_SEEK_MS);
    char why[256] = "";
    if (error) {
        snprintf(why, sizeof(why), "%s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    for (int i = 0; i < tps->cnt && !why[0]; i++) {
        if (tps->elems[i].err) {
            snprintf(why, sizeof(why), "%s [%d]: %s", tps->elems[i].topic, p,
                     rd_kafka_err2str(tps->elems[i].err));
        }
    }
    rd_kafka_topic_partition_list_destroy(tps);
    if (why[0]) {
        dw_log(DW_LOG_ERROR, "cannot seek a partition whose state was loaded; retried", "{s:i,s:s}",
               "partition", p, "error", why);
        dw_part_free(part);
        return -1;
    }
    rn->parts[p] = part;
    rn->eof_ms[p] = 0;
    rn->label_eof_ms[p] = 0;
    pause_part(rn, p, rn->paused);
    dw_metric_set(rn->m.partitions, (double)owned_count(rn));
    return 0;
}

/* Retries the partitions without state whose time has come (main loop). */
static void retry_pending(struct runner *rn)
{
    int64_t now = dw_mono_ms();
    for (int p = 0; p < rn->n_parts && !run_stop; p++) {
        struct pending *pd = &rn->pend[p];
        if (pd->kind == PEND_NONE || now < pd->next_try) {
            continue;
        }
        enum pend_kind was = pd->kind;
        struct dw_part *part;
        int rc = load_part(rn, p, &part);
        if (rc != 0) {
            pend_set(rn, p, rc);
            continue;
        }
        if (activate_part(rn, p, part) != 0) {
            pd->next_try = now + RUN_LOAD_RETRY_MS;
            continue;
        }
        dw_log(DW_LOG_INFO,
               was == PEND_CORRUPT  ? "partition out of quarantine: state loaded"
               : was == PEND_FENCED ? "partition acquired again: state loaded"
               : was == PEND_LOST   ? "partition acquired again after its state loss"
                                    : "partition state loaded: Redis answered",
               "{s:i,s:I}", "partition", p, "waited_ms", (json_int_t)(dw_now_ms() - pd->since_ms));
        pend_clear(rn, p);
    }
}

/*
 * Whether the input topics still have the partition count read at start-up (dw_part_count_now).
 * librdkafka rejoins the group when a subscribed topic's count changes, so every pod comes here
 * after partitions were added: one still on the old count stops (exit status 1) and its restart
 * reads the new count. Nothing is lost meanwhile: the new partitions' messages are not counted
 * and no offset of theirs is committed, so their next owner reads them from the start. The
 * metadata is read only when the assignment alone does not show the change; when it cannot be
 * read, the pod goes on (said in a warning) and the next rebalance checks again.
 */
static void check_partition_count(struct runner *rn, const rd_kafka_topic_partition_list_t *parts)
{
    int highest = -1;
    for (int i = 0; i < parts->cnt; i++) {
        highest = DW_MAX(highest, (int)parts->elems[i].partition);
    }
    int topics_now = 0;
    char errstr[512];
    if (highest < rn->n_parts && dw_kafka_check_copartitioned(rn->consumer, &rn->cfg, &topics_now,
                                                              errstr, sizeof(errstr)) != 0) {
        dw_log(DW_LOG_WARN, "cannot check the input topics' partition count", "{s:s}", "error",
               errstr);
        topics_now = 0;
    }
    int now = dw_part_count_now(rn->n_parts, topics_now, highest);
    if (now == rn->n_parts) {
        return;
    }
    dw_log(DW_LOG_ERROR, "the input topics' partition count changed: stopping", "{s:i,s:i,s:s}",
           "partitions_at_start", rn->n_parts, "partitions_now", now, "consequence",
           "the new partitions are not counted by this pod; its restart reads the new count. "
           "Nothing is lost: their offsets are not committed");
    rn->failed = 1;
    run_stop = 1;
}

static void on_assign(struct runner *rn, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    check_partition_count(rn, parts);
    /* Bounded: a partition whose state is corrupt is quarantined at once, and Redis is waited
     * for RUN_ASSIGN_LOAD_MS at most over the whole assignment (each attempt is bounded by
     * redis.timeout); the partitions still without state are paused and retried from the main
     * loop (retry_pending), which keeps serving /livez, /readyz and the other partitions. */
    int64_t deadline = dw_mono_ms() + RUN_ASSIGN_LOAD_MS;
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p < 0 || p >= rn->n_parts || rn->parts[p] || rn->pend[p].kind != PEND_NONE) {
            continue;
        }
        struct dw_part *part = NULL;
        int rc = DW_LOAD_UNAVAILABLE;
        snprintf(rn->pend[p].error, sizeof(rn->pend[p].error),
                 "not loaded within %d s of the assignment: Redis unavailable",
                 RUN_ASSIGN_LOAD_MS / 1000);
        for (int attempt = 0; !run_stop && dw_mono_ms() < deadline; attempt++) {
            rc = load_part(rn, p, &part);
            if (rc != DW_LOAD_UNAVAILABLE) {
                break;
            }
            if (attempt == 0) {
                dw_log(DW_LOG_WARN, "cannot load partition state: Redis unavailable; retrying",
                       "{s:i,s:s}", "partition", p, "error", rn->pend[p].error);
            }
            sleep(1);
        }
        if (rc == 0) {
            rn->parts[p] = part;
            rn->eof_ms[p] = 0;
            rn->label_eof_ms[p] = 0;
        } else {
            pend_set(rn, p, rc);
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct dw_part *part = tp->partition < rn->n_parts ? rn->parts[tp->partition] : NULL;
        if (!part) {
            /* Without state: paused below, sought when its state is loaded. A definite start
             * for now: with no offset librdkafka would look for a committed one and, finding
             * none, apply auto.offset.reset=error, leaving a partition that refuses the seek. */
            tp->offset = RD_KAFKA_OFFSET_BEGINNING;
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
    pause_pending(rn);
    rn->assigned = 1;
    rn->paused = 0;
    dw_metric_set(rn->m.partitions, (double)owned_count(rn));
}

static void on_revoke(struct runner *rn, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    /* At shutdown one attempt: what is not checkpointed is read again from Kafka by the
     * next owner (the Redis state and offsets stay consistent), and SIGTERM must not wait for
     * a broker that is gone. */
    int attempts = run_stop ? 1 : RUN_REVOKE_ATTEMPTS, attempt = 0;
    for (; attempt < attempts && checkpoint_all(rn, 1) != 0; attempt++) {
        sleep(1);
    }
    if (run_stop) {
        rn->stop_unsaved = attempt == attempts;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < rn->n_parts && rn->parts[p]) {
            drop_part(rn, p);
            dw_log(DW_LOG_INFO, "partition revoked", "{s:i}", "partition", p);
        }
        if (p >= 0 && p < rn->n_parts && rn->pend[p].kind != PEND_NONE) {
            pend_clear(rn, p); /* the next owner loads it again */
            dw_log(DW_LOG_INFO, "partition revoked before its state was loaded", "{s:i}",
                   "partition", p);
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
 * Records in /status (and logs when it changes) the partitions whose state holds windows open
 * because it is unknown: a corrupt meta holds every window, a quarantined partition the windows
 * past its last checkpoint.
 */
static void note_windows_held(struct runner *rn, const struct dw_part_meta *metas)
{
    json_t *held = json_array();
    for (int p = 0; p < rn->n_parts; p++) {
        if (dw_evaluator_state_unknown(&metas[p])) {
            json_array_append_new(
                held, json_pack("{s:i,s:s}", "partition", p, "reason", metas[p].problem));
        }
    }
    if (json_array_size(held) == 0) {
        json_decref(held);
        held = NULL;
    }
    if (!json_equal(held, rn->windows_held) && (held || rn->windows_held)) {
        if (held) {
            dw_log(DW_LOG_WARN, "windows held: partition state unknown", "{s:O}", "partitions",
                   held);
        } else {
            dw_log(DW_LOG_INFO, "windows no longer held by partition state", NULL);
        }
    }
    json_decref(rn->windows_held);
    rn->windows_held = held;
}

/* Reads every partition's clocks; sets rn->wms (dw_evaluator_watermarks). */
static int global_watermarks(struct runner *rn)
{
    struct dw_part_meta *metas = dw_calloc((size_t)rn->n_parts, sizeof(*metas));
    if (dw_redis_read_metas(rn->redis, rn->n_parts, metas) != 0) {
        free(metas);
        return -1;
    }
    dw_evaluator_watermarks(metas, rn->n_parts, &rn->cfg, dw_now_ms(), &rn->wms);
    note_windows_held(rn, metas);
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

/* ---- the reference (docs/statistics.md, "Reference sources") ---- */

static int reference_stored(struct runner *rn, size_t mi);

/*
 * Drops model mi's cached reference when `driftwatch reference set` or `reset` changed it since
 * it was read: refgen:<model> counts those changes. Read once per tick and stage, before the
 * walk: the final stage waits for a reference. @returns 0, or -1 when Redis could not say.
 */
static int reference_sync(struct runner *rn, size_t mi)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    struct model_rt *mr = &rn->models[mi];
    char name[DW_REDIS_NAME_MAX], key[DW_REDIS_KEY_MAX];
    dw_redis_name_refgen(m->name, name, sizeof(name));
    int64_t gen = 0;
    int got = dw_redis_get_i64(rn->redis, name, &gen);
    if (got < 0) {
        dw_redis_global_key(rn->redis, name, key, sizeof(key));
        dw_log_limited("refgen_unreadable", 1, DW_LOG_ERROR,
                       "reference generation unreadable; the model's windows wait", "{s:s,s:s}",
                       "model", m->name, "key", key);
        dw_metric_inc(rn->m.eval_failures);
        return -1;
    }
    if (gen != mr->ref_gen) {
        dw_log(DW_LOG_INFO, "reference changed by driftwatch reference; read again", "{s:s,s:I}",
               "model", m->name, "generation", (json_int_t)gen);
        dw_ref_free(mr->ref);
        mr->ref = NULL;
        mr->stored_checked = 0;
        mr->ref_gen = gen;
        return reference_stored(rn, mi) < 0 ? -1 : 0; /* what /status shows from now on */
    }
    return 0;
}

/* Whether model mi's final evaluations can start: the baseline of the windows source needs
 * the reference windows' list, complete once the reference is built. */
static int reference_ready(const struct runner *rn, size_t mi)
{
    return rn->models[mi].ref != NULL ||
           rn->cfg.models[mi].reference.source != DW_REF_SOURCE_WINDOWS;
}

/* Writes `sets` of model mi's reference state unless the reference changed since it was read
 * (dw_redis_write_fenced on refgen). @returns 0 written, -1 not (logged). */
static int reference_write(struct runner *rn, size_t mi, const struct dw_redis_bkv *sets, size_t n,
                           const char *what)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    char fence[DW_REDIS_NAME_MAX], errstr[512];
    dw_redis_name_refgen(m->name, fence, sizeof(fence));
    int rc = dw_redis_write_fenced(rn->redis, fence, rn->models[mi].ref_gen, sets, n, errstr,
                                   sizeof(errstr));
    if (rc != 0) {
        dw_log(rc > 0 ? DW_LOG_INFO : DW_LOG_ERROR,
               rc > 0 ? "reference changed meanwhile: not written"
                      : "cannot write the reference state",
               "{s:s,s:s,s:s}", "model", m->name, "what", what, "error", errstr);
    }
    return rc == 0 ? 0 : -1;
}

/* A reference's Redis form made as it is written (dw_redis_bkv's fill; arg: its writer). */
static int ref_fill(void *arg, struct dw_buf *chunk, size_t max)
{
    return dw_ref_writer_fill(arg, chunk, max);
}

/* One key of a fenced write: name, and the encoding of agg (NULL: delete) into buf. */
static struct dw_redis_bkv agg_kv(const char *name, const struct dw_agg *agg, struct dw_buf *buf)
{
    if (agg) {
        dw_agg_encode(agg, buf);
    }
    return (struct dw_redis_bkv){
        .name = name, .data = agg ? buf->data : NULL, .len = agg ? buf->len : 0};
}

/* A model's list of window starts at global key `name` (refwins, trailwins; absent: empty).
 * @returns it, or NULL when Redis failed (logged with the key). */
static json_t *read_window_list(struct runner *rn, const struct dw_model_cfg *m, const char *name)
{
    char *list = NULL;
    size_t len = 0;
    if (dw_redis_read_state(rn->redis, name, m->name, &list, &len) < 0) {
        return NULL;
    }
    json_t *wins = dw_evaluator_reference_windows(list);
    free(list);
    return wins;
}

/*
 * The merged aggregates of the reference windows `wins`, the last one being `agg` (the window
 * at hand): the others were stored as refagg:<model>:<start> when they joined (their
 * partitions have dropped their sketches since). @returns 0, or -1 when one cannot be read.
 */
static int reference_aggs(struct runner *rn, const struct dw_model_cfg *m, json_t *wins,
                          struct dw_agg *agg, struct dw_agg **aggs)
{
    size_t n = json_array_size(wins);
    for (size_t i = 0; i + 1 < n; i++) {
        char name[DW_REDIS_NAME_MAX], errstr[512] = "absent";
        int64_t ws = json_integer_value(json_array_get(wins, i));
        dw_redis_name_refagg(m->name, ws, name, sizeof(name));
        if (dw_redis_get_agg(rn->redis, name, m, ws, &aggs[i], errstr, sizeof(errstr)) != 1) {
            dw_log(DW_LOG_ERROR, "reference window unreadable; collecting the reference again",
                   "{s:s,s:I,s:s}", "model", m->name, "window_start_ms", (json_int_t)ws, "error",
                   errstr);
            return -1;
        }
    }
    aggs[n - 1] = agg;
    return 0;
}

/* Frees the aggregates reference_aggs() read (the last one, the caller's, stays). */
static void free_loaded_aggs(struct dw_agg **aggs, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        dw_agg_free(aggs[i]);
        aggs[i] = NULL;
    }
}

/*
 * Source windows, at the close of a window with predictions (start, merged aggregate agg): it
 * joins the reference windows (refwins:<model>; its aggregate kept as refagg:<model>:<start>),
 * and with the last one the reference is built from them all, stored with the list in one
 * fenced write and kept. A window already listed (an evaluation retried) changes nothing.
 * @returns 0, or -1 when Redis could not say what is stored.
 */
static int reference_collect(struct runner *rn, size_t mi, int64_t start, struct dw_agg *agg)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    char list_name[DW_REDIS_NAME_MAX];
    dw_redis_name_refwins(m->name, list_name, sizeof(list_name));
    json_t *wins = read_window_list(rn, m, list_name);
    if (!wins) {
        return -1;
    }
    if (dw_evaluator_reference_listed(wins, start)) {
        json_decref(wins);
        return 0;
    }
    int complete = dw_evaluator_reference_add(wins, m->reference.windows, start);
    size_t n = json_array_size(wins);
    struct dw_agg **aggs = dw_calloc(n, sizeof(*aggs));
    int built = complete && reference_aggs(rn, m, wins, agg, aggs) == 0;
    /* the keys written: the list, then the reference and its windows' aggregates deleted, or
     * this window's aggregate (and those of the windows listed before, when collected again) */
    char(*names)[DW_REDIS_NAME_MAX] = dw_calloc(n + 1, sizeof(*names));
    struct dw_redis_bkv *sets = dw_calloc(n + 1, sizeof(*sets));
    for (size_t i = 0; complete && i + 1 < n; i++) {
        dw_redis_name_refagg(m->name, json_integer_value(json_array_get(wins, i)), names[i + 1],
                             sizeof(names[0]));
    }
    if (complete && !built) { /* a stored window is gone: collect again, from this one */
        json_array_clear(wins);
        dw_evaluator_reference_add(wins, m->reference.windows, start);
    }
    struct dw_buf buf;
    dw_buf_init(&buf);
    struct dw_ref_writer writer = {0};
    char *dump = json_dumps(wins, JSON_COMPACT);
    sets[0] = (struct dw_redis_bkv){.name = list_name, .data = dump, .len = strlen(dump)};
    size_t n_sets = 1;
    struct dw_ref *ref = NULL;
    if (built) {
        ref = dw_ref_build(m, aggs, n, rn->cfg.psi_bins);
        ref->created_ms = dw_now_ms();
        free_loaded_aggs(aggs, n); /* before the encoding: the two were the run's peak */
        /* Kept in memory once stored: reading back what was just written would stall the
         * loop. Its Redis form holds the samples in binary (tests/unit/test_eval.c), made as
         * it is written. */
        dw_ref_writer_init(&writer, ref);
        dw_redis_name_ref(m->name, names[0], sizeof(names[0]));
        sets[n_sets++] = (struct dw_redis_bkv){.name = names[0], .fill = ref_fill, .arg = &writer};
        for (size_t i = 0; i + 1 < n; i++) {
            sets[n_sets++] = agg_kv(names[i + 1], NULL, NULL);
        }
    } else {
        dw_redis_name_refagg(m->name, start, names[0], sizeof(names[0]));
        sets[n_sets++] = agg_kv(names[0], agg, &buf);
        for (size_t i = 0; complete && i + 1 < n; i++) {
            sets[n_sets++] = agg_kv(names[i + 1], NULL, NULL);
        }
    }
    if (reference_write(rn, mi, sets, n_sets, built ? "reference" : "reference window") == 0 &&
        ref) {
        rn->models[mi].ref = ref;
        ref = NULL;
        dw_log(DW_LOG_INFO, "reference built", "{s:s,s:i}", "model", m->name, "windows", (int)n);
    }
    dw_ref_writer_free(&writer);
    dw_ref_free(ref);
    free(dump);
    dw_buf_free(&buf);
    free(sets);
    free(names);
    free_loaded_aggs(aggs, n); /* also those read before one that was unreadable */
    free(aggs);
    json_decref(wins);
    return 0; /* reference windows themselves are not judged */
}

/*
 * Source trailing, at the close of window `start` (merged aggregate agg): *out is the reference
 * built from the stored aggregates of the reference.windows windows before it (none: NULL),
 * and this window's aggregate is kept (trailagg:<model>:<start>, listed in trailwins:<model>)
 * for the windows after it; the ones no later window needs are deleted. A stored aggregate that
 * cannot be read is logged and left out (the report's reference.windows says how many there
 * were). @returns 0 (*out: the caller's to free), or -1 when Redis could not say.
 */
static int reference_trailing(struct runner *rn, size_t mi, int64_t start, struct dw_agg *agg,
                              struct dw_ref **out)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    int64_t span = m->reference.windows * rn->cfg.window_size_ms;
    char list_name[DW_REDIS_NAME_MAX];
    dw_redis_name_trailwins(m->name, list_name, sizeof(list_name));
    *out = NULL;
    json_t *wins = read_window_list(rn, m, list_name);
    if (!wins) {
        return -1;
    }
    size_t n_wins = json_array_size(wins), n = 0;
    struct dw_agg **aggs = dw_calloc(n_wins + 1, sizeof(*aggs));
    char(*names)[DW_REDIS_NAME_MAX] = dw_calloc(n_wins + 1, sizeof(*names));
    struct dw_redis_bkv *sets = dw_calloc(n_wins + 2, sizeof(*sets));
    size_t n_sets = 0;
    json_t *keep = json_array();
    for (size_t i = 0; i < n_wins; i++) {
        int64_t ws = json_integer_value(json_array_get(wins, i));
        char errstr[512] = "absent";
        dw_redis_name_trailagg(m->name, ws, names[i], sizeof(names[i]));
        if (ws >= start - span && ws < start &&
            dw_redis_get_agg(rn->redis, names[i], m, ws, &aggs[n], errstr, sizeof(errstr)) != 1) {
            dw_log(DW_LOG_ERROR, "trailing reference window unreadable; left out", "{s:s,s:I,s:s}",
                   "model", m->name, "window_start_ms", (json_int_t)ws, "error", errstr);
        } else if (ws >= start - span && ws < start) {
            n++;
        }
        if (ws >= start + rn->cfg.window_size_ms - span && ws != start) {
            json_array_append_new(keep, json_integer(ws)); /* a later window needs it */
        } else if (ws != start) {
            sets[n_sets++] = agg_kv(names[i], NULL, NULL);
        }
    }
    if (n > 0) {
        *out = dw_ref_build(m, aggs, n, rn->cfg.psi_bins);
        (*out)->source = DW_REF_SOURCE_TRAILING;
        (*out)->created_ms = dw_now_ms();
    }
    struct dw_buf buf;
    dw_buf_init(&buf);
    if (dw_evaluator_reference_joins(agg)) {
        json_array_append_new(keep, json_integer(start));
        dw_redis_name_trailagg(m->name, start, names[n_wins], sizeof(names[0]));
        sets[n_sets++] = agg_kv(names[n_wins], agg, &buf);
    }
    char *dump = json_dumps(keep, JSON_COMPACT);
    sets[n_sets++] = (struct dw_redis_bkv){.name = list_name, .data = dump, .len = strlen(dump)};
    reference_write(rn, mi, sets, n_sets, "trailing window");
    free(dump);
    dw_buf_free(&buf);
    for (size_t i = 0; i < n; i++) {
        dw_agg_free(aggs[i]);
    }
    free(aggs);
    free(names);
    free(sets);
    json_decref(keep);
    json_decref(wins);
    return 0;
}

/* What version_references() found for one version of the window: its own reference to judge
 * with (NULL: collected, not judged) and how many windows it has. */
struct vref_judge {
    size_t slot;
    struct dw_ref *ref;
    size_t collected;
};

/* Adds `version` to the model's vrefs list (a new key value to write in *kv) unless listed.
 * @returns 1 when it was added. */
static int vrefs_add(json_t *versions, const char *version)
{
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), version) == 0) {
            return 0;
        }
    }
    json_array_append_new(versions, json_string(version));
    return 1;
}

/* The stored own reference of a version (vref:<model>:<version>) into *ref: 1 found, 0 absent,
 * -1 Redis error; a corrupt one is logged and found as NULL (not collected over). */
static int version_reference_stored(struct runner *rn, const struct dw_model_cfg *m,
                                    const char *name, struct dw_ref **ref)
{
    char *text = NULL, errstr[256];
    size_t len = 0;
    *ref = NULL;
    int got = dw_redis_read_state(rn->redis, name, m->name, &text, &len);
    if (got == 1 && !(*ref = dw_ref_decode(m, text, len, errstr, sizeof(errstr)))) {
        dw_log_limited("corrupt_reference", 1, DW_LOG_ERROR,
                       "stored version reference unreadable; the version is not judged",
                       "{s:s,s:s,s:s}", "model", m->name, "key", name, "error", errstr);
    }
    free(text);
    return got;
}

/*
 * reference.per_version, at the close of window `start`: version `slot` of agg judged against
 * its own reference when it has one (vref), else this window's view of it joins its collection
 * (vrefagg, vrefwins, and the version in `versions`, the model's vrefs list), written fenced by
 * refgen like the model's reference windows; the window that completes it is a reference window
 * itself, not judged. @returns 0 with *j, -1 on a Redis error (the evaluation is retried).
 */
static int version_reference(struct runner *rn, size_t mi, const struct dw_agg *agg, size_t slot,
                             json_t *versions, struct vref_judge *j)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    const char *version = agg->versions[slot].name;
    char names[4][DW_REDIS_NAME_MAX], errstr[256];
    dw_redis_name_vref("vref", m->name, version, names[0], sizeof(names[0]));
    dw_redis_name_vref("vrefagg", m->name, version, names[1], sizeof(names[1]));
    dw_redis_name_vref("vrefwins", m->name, version, names[2], sizeof(names[2]));
    dw_redis_name_vrefs(m->name, names[3], sizeof(names[3]));
    *j = (struct vref_judge){.slot = slot};
    int got = version_reference_stored(rn, m, names[0], &j->ref);
    if (got != 0) {
        j->collected = j->ref ? (size_t)j->ref->windows : 0;
        if (j->ref && agg->start_ms <= j->ref->last_start_ms) {
            dw_ref_free(j->ref); /* one of its own windows, evaluated again: not judged */
            j->ref = NULL;
        }
        return got < 0 ? -1 : 0;
    }
    json_t *wins = read_window_list(rn, m, names[2]);
    if (!wins) {
        return -1;
    }
    struct dw_agg *merged = NULL;
    int rc = 0;
    if (json_array_size(wins) > 0) {
        int64_t first = json_integer_value(json_array_get(wins, 0));
        int g = dw_redis_get_agg(rn->redis, names[1], m, first, &merged, errstr, sizeof(errstr));
        if (g < 0) {
            dw_log(DW_LOG_ERROR, "version reference windows unreadable", "{s:s,s:s,s:s}", "model",
                   m->name, "key", names[1], "error", errstr);
            json_decref(wins);
            return -1;
        }
        if (g == 0) { /* gone: collected again from this window */
            json_array_clear(wins);
        }
    }
    size_t before = json_array_size(wins);
    struct dw_ref *ref = NULL;
    struct dw_agg *view = dw_agg_version_view(agg, slot);
    int built =
        dw_evaluator_version_reference(m, view, wins, &merged, &ref, (uint32_t)rn->cfg.psi_bins);
    dw_agg_free(view);
    if (built || json_array_size(wins) != before) {
        struct dw_buf buf;
        dw_buf_init(&buf);
        struct dw_ref_writer writer = {0};
        char *list = json_dumps(wins, JSON_COMPACT), *listed = NULL;
        struct dw_redis_bkv sets[4];
        size_t n = 0;
        sets[n++] = (struct dw_redis_bkv){.name = names[2], .data = list, .len = strlen(list)};
        if (built) {
            ref->created_ms = dw_now_ms();
            dw_ref_writer_init(&writer, ref);
            sets[n++] = (struct dw_redis_bkv){.name = names[0], .fill = ref_fill, .arg = &writer};
            sets[n++] = agg_kv(names[1], NULL, NULL);
        } else {
            sets[n++] = agg_kv(names[1], merged, &buf);
        }
        if (vrefs_add(versions, version)) {
            listed = json_dumps(versions, JSON_COMPACT);
            sets[n++] =
                (struct dw_redis_bkv){.name = names[3], .data = listed, .len = strlen(listed)};
        }
        rc = reference_write(rn, mi, sets, n, built ? "version reference" : "version window");
        if (rc == 0 && built) {
            dw_log(DW_LOG_INFO, "version reference built", "{s:s,s:s,s:i}", "model", m->name,
                   "version", version, "windows", (int)json_array_size(wins));
        }
        free(list);
        free(listed);
        dw_ref_writer_free(&writer);
        dw_buf_free(&buf);
    }
    j->collected = json_array_size(wins);
    dw_ref_free(ref);
    dw_agg_free(merged);
    json_decref(wins);
    return rc;
}

/*
 * reference.per_version with source windows, at the close of window `start` (agg): every
 * version but the overflow bucket, by version_reference(), into *out (n_out entries; free with
 * vref_judges_free). Nothing for a final evaluation (its report takes the close's), an empty
 * window, or a model whose reference is a profile stored by `driftwatch reference set` (it
 * replaces every source, the versions' too). @returns 0, or -1 on a Redis error.
 */
static int version_references(struct runner *rn, size_t mi, const struct dw_agg *agg, int final,
                              struct vref_judge **out, size_t *n_out)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    const struct dw_ref *stored = rn->models[mi].ref;
    *out = NULL;
    *n_out = 0;
    if (final || !m->reference.per_version || m->reference.source != DW_REF_SOURCE_WINDOWS ||
        (stored && stored->source == DW_REF_SOURCE_PROFILE) || dw_eval_agg_empty(agg)) {
        return 0;
    }
    char list_name[DW_REDIS_NAME_MAX];
    dw_redis_name_vrefs(m->name, list_name, sizeof(list_name));
    json_t *versions = read_window_list(rn, m, list_name);
    if (!versions) {
        return -1;
    }
    *out = dw_calloc(agg->n_versions ? agg->n_versions : 1, sizeof(**out));
    int rc = 0;
    for (size_t s = 0; rc == 0 && s < agg->n_versions; s++) {
        if (agg->versions[s].feats && strcmp(agg->versions[s].name, DW_AGG_OTHER) != 0) {
            rc = version_reference(rn, mi, agg, s, versions, &(*out)[(*n_out)++]);
        }
    }
    json_decref(versions);
    return rc;
}

static void vref_judges_free(struct vref_judge *j, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dw_ref_free(j[i].ref);
    }
    free(j);
}

/*
 * Reads the stored reference (ref:<model>) into the cache when it is the one to judge with: a
 * profile stored by `driftwatch reference set` (whatever the source), or one collected from
 * the windows with source windows; one collected before the source was changed is not used.
 * @returns 0, 1 when the stored reference is corrupt (windows are not judged: collecting
 * afresh would write over it; `driftwatch reference reset` starts again), -1 on a Redis error.
 */
static int reference_stored(struct runner *rn, size_t mi)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    struct model_rt *mr = &rn->models[mi];
    if (mr->stored_checked) {
        return 0;
    }
    char name[DW_REDIS_NAME_MAX], errstr[256];
    dw_redis_name_ref(m->name, name, sizeof(name));
    size_t len = 0;
    char *text = NULL;
    int got = dw_redis_read_state(rn->redis, name, m->name, &text, &len);
    if (got <= 0) {
        mr->stored_checked = got == 0 && m->reference.source != DW_REF_SOURCE_WINDOWS;
        return got;
    }
    struct dw_ref *ref = dw_ref_decode(m, text, len, errstr, sizeof(errstr));
    free(text);
    if (!ref) {
        dw_log_limited("corrupt_reference", 1, DW_LOG_ERROR,
                       "stored reference unreadable; windows are not judged", "{s:s,s:s}", "model",
                       m->name, "error", errstr);
        return 1;
    }
    if (ref->source == DW_REF_SOURCE_PROFILE || m->reference.source == DW_REF_SOURCE_WINDOWS) {
        mr->ref = ref;
    } else {
        dw_log(DW_LOG_INFO, "stored reference not used: reference.source changed", "{s:s,s:s,s:s}",
               "model", m->name, "stored", dw_ref_source_name(ref->source), "source",
               dw_ref_source_name(m->reference.source));
        dw_ref_free(ref);
    }
    mr->stored_checked = 1;
    return 0;
}

/*
 * The reference model mi's window `start` (merged aggregate agg) is judged against, in *out
 * (NULL: none), and whether the caller frees it (*owned): the stored one (reference_stored),
 * else by the model's source: reference.profile as read at start-up; the windows before
 * `start` (trailing; built at the close only: a final report takes its close report's
 * features); none while the reference windows are collected, this window joining them at its
 * close (reference windows themselves are not judged).
 * @returns 0, or -1 when Redis could not say (the evaluation is retried).
 */
static int reference_for(struct runner *rn, size_t mi, int64_t start, struct dw_agg *agg, int final,
                         struct dw_ref **out, int *owned)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    struct model_rt *mr = &rn->models[mi];
    *owned = 0;
    *out = mr->ref;
    int stored = *out ? 0 : reference_stored(rn, mi);
    if (stored != 0 || (*out = mr->ref) != NULL) {
        return stored < 0 ? -1 : 0;
    }
    switch (m->reference.source) {
    case DW_REF_SOURCE_PROFILE:
        *out = rn->profiles[mi];
        return 0;
    case DW_REF_SOURCE_TRAILING:
        *owned = 1;
        return final ? 0 : reference_trailing(rn, mi, start, agg, out);
    case DW_REF_SOURCE_WINDOWS:
        break;
    }
    return final || !dw_evaluator_reference_joins(agg) ? 0 : reference_collect(rn, mi, start, agg);
}

/*
 * Reads the evaluator's global key `name` holding an event time (a cursor, a rolling start).
 * A value that is not one is corruption: logged with the key, and the model's windows wait
 * (a cursor read as 0 would walk from 1970); `driftwatch state check` names it too.
 * @returns 1 found, 0 absent, -1 Redis error or corrupt.
 */
static int get_event_time(struct runner *rn, const char *name, int64_t *out)
{
    int found = dw_redis_get_i64(rn->redis, name, out);
    if (found == -2 || (found == 1 && (*out < -DW_TS_LIMIT_MS || *out > DW_TS_LIMIT_MS))) {
        char key[DW_REDIS_KEY_MAX];
        dw_redis_global_key(rn->redis, name, key, sizeof(key));
        dw_log_limited("corrupt_cursor", 1, DW_LOG_ERROR,
                       "corrupt evaluator state: not an event time; windows held", "{s:s}", "key",
                       key);
        return -1;
    }
    return found;
}

/* Model m's close cursor (final 0) or final cursor (final 1), as get_event_time(). */
static int get_cursor(struct runner *rn, const struct dw_model_cfg *m, int final, int64_t *out)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_cursor(m->name, final, name, sizeof(name));
    return get_event_time(rn, name, out);
}

/*
 * The counts of the k windows before window `start`, oldest first, into aggs[0..k-1], read
 * through `counts_only`, a feature-less copy of model m: their feature statistics and sketches
 * are skipped while decoding. A window that is not stored is empty. @returns 0, or -1 (logged;
 * nothing is left allocated).
 */
static int load_counts_before(struct runner *rn, const struct dw_model_cfg *m,
                              const struct dw_model_cfg *counts_only, int64_t start, int64_t k,
                              struct dw_agg **aggs)
{
    for (int64_t i = 0; i < k; i++) {
        int64_t ws = start - (k - i) * rn->cfg.window_size_ms;
        char errstr[512];
        aggs[i] = dw_redis_load_window(rn->redis, counts_only, ws, rn->n_parts, NULL, errstr,
                                       sizeof(errstr));
        if (!aggs[i]) {
            dw_log(DW_LOG_ERROR, "cannot read window", "{s:s,s:I,s:s}", "model", m->name,
                   "window_start_ms", (json_int_t)ws, "error", errstr);
            for (int64_t j = 0; j < i; j++) {
                dw_agg_free(aggs[j]);
            }
            return -1;
        }
    }
    return 0;
}

/*
 * The windows of the rolling view ending with `cur` (window `start`), oldest first, `cur`
 * last: up to evaluation.rolling_windows, counted from the model's first evaluated window
 * (Redis key rolling_first:<model>, set on the first evaluation to `from`, the first window
 * of that evaluation: a run of empty windows ends at `start`) as replay counts from the
 * first reported one. The earlier windows are read from Redis (a missing one is empty) through
 * `counts_only`, a feature-less copy of the model: their feature statistics and sketches are
 * skipped while decoding, so holding 23 of them costs their counts only.
 * @returns 0 with *aggs (free with free_recent) and *n (0 when disabled), -1 on a Redis error.
 */
static int load_recent(struct runner *rn, size_t mi, int64_t from, int64_t start,
                       struct dw_agg *cur, struct dw_model_cfg *counts_only, struct dw_agg ***aggs,
                       size_t *n)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    *aggs = NULL;
    *n = 0;
    if (rn->cfg.rolling_windows <= 0) {
        return 0;
    }
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_rolling_first(m->name, name, sizeof(name));
    int64_t stored = start;
    int found = get_event_time(rn, name, &stored);
    if (found < 0) {
        return -1;
    }
    int64_t first, k;
    int store;
    dw_evaluator_rolling(&rn->cfg, found, stored, from, start, &first, &k, &store);
    if (store && dw_redis_set_i64(rn->redis, name, first) != 0) {
        return -1;
    }
    *counts_only = *m;
    counts_only->features = NULL;
    counts_only->n_features = 0;
    struct dw_agg **recent = dw_calloc((size_t)k, sizeof(*recent));
    if (load_counts_before(rn, m, counts_only, start, k - 1, recent) != 0) {
        free(recent);
        return -1;
    }
    recent[k - 1] = cur;
    *aggs = recent;
    *n = (size_t)k;
    return 0;
}

/* Frees what load_recent() returned, except the last entry (the caller's window). */
static void free_recent(struct dw_agg **aggs, size_t n)
{
    free_loaded_aggs(aggs, n);
    free(aggs);
}

/* What empty_run_length() hands dw_evaluator_empty_run() to read a window's counts. */
struct empty_probe {
    struct runner *rn;
    size_t mi;
    const struct dw_model_cfg *counts_only;
};

/* dw_evaluator_empty_fn: reads window `start` (counts only: one pipelined GET per partition,
 * sketches skipped). */
static int probe_empty(void *ctx, int64_t start)
{
    struct empty_probe *pr = ctx;
    struct runner *rn = pr->rn;
    char errstr[512];
    struct dw_agg *agg = dw_redis_load_window(rn->redis, pr->counts_only, start, rn->n_parts, NULL,
                                              errstr, sizeof(errstr));
    if (!agg) {
        dw_log(DW_LOG_ERROR, "cannot read window", "{s:s,s:s}", "model",
               rn->cfg.models[pr->mi].name, "error", errstr);
        return -1;
    }
    int empty = dw_eval_agg_empty(agg);
    dw_agg_free(agg);
    return empty;
}

/*
 * Length in windows of the run of empty windows that starts with the empty window `start` of
 * model mi, up to `until` (dw_evaluator_empty_run: at most RUN_EMPTY_PROBE windows read per
 * call, a longer gap measured over several ticks in models[mi].run[final]).
 * @returns the length (>= 1), 0 while the gap is still being read, -1 on a Redis error.
 */
static int64_t empty_run_length(struct runner *rn, size_t mi, int final, int64_t start,
                                int64_t until, const struct dw_model_cfg *counts_only)
{
    struct empty_probe pr = {rn, mi, counts_only};
    return dw_evaluator_empty_run(&rn->models[mi].run[final], &rn->cfg, start, until,
                                  RUN_EMPTY_PROBE, probe_empty, &pr);
}

/*
 * The feature statistics, drift and latency of the final report of window `start`: its close
 * report (stored under the same name until the final report replaces it, or a final report
 * of an evaluation that is being repeated). No prediction is added to a window after it
 * closed, so they are final at the close; the partitions dropped their sketches since. When no
 * such report can be read (deleted by hand, expired: window.retention shorter than the label
 * horizon), the report says so instead of judging drift on nothing.
 */
static void final_features(const struct dw_model_cfg *m, int64_t start, json_t *report,
                           const json_t *close)
{
    if (dw_eval_take_close(report, close) != 0) {
        dw_log(DW_LOG_ERROR, "close report missing or not JSON; final report without drift",
               "{s:s,s:I}", "model", m->name, "window_start_ms", (json_int_t)start);
    }
}

/* The close report of window `start` into *close (NULL when absent or not JSON: final_features
 * says so). @returns 0, or -1 when Redis could not say (logged with the key by
 * dw_redis_read_state): the final evaluation waits, since a report committed without the
 * drift would stay so. */
static int read_close(struct runner *rn, const struct dw_model_cfg *m, int64_t start,
                      json_t **close)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_report(m->name, start, name, sizeof(name));
    char *text = NULL;
    size_t len = 0;
    *close = NULL;
    if (dw_redis_read_state(rn->redis, name, m->name, &text, &len) < 0) {
        return -1;
    }
    *close = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return 0;
}

/*
 * At the final evaluation of a window with data: what `inspect` shows of it (its partitions'
 * records merged, feature counts included) is stored once for the window, for
 * window.retention, since the partitions delete their records once no reader needs them. A
 * failure is logged and costs only inspect's view of that window once they are gone.
 */
static void store_summary(struct runner *rn, const struct dw_model_cfg *m, int64_t start)
{
    char errstr[512], name[DW_REDIS_NAME_MAX];
    struct dw_agg *agg =
        dw_redis_load_window(rn->redis, m, start, rn->n_parts, NULL, errstr, sizeof(errstr));
    if (!agg) {
        dw_log(DW_LOG_ERROR, "cannot read window for its summary", "{s:s,s:I,s:s}", "model",
               m->name, "window_start_ms", (json_int_t)start, "error", errstr);
        return;
    }
    dw_agg_drop_sketches(agg); /* some records may still hold theirs: retired before the close */
    char *text = dw_agg_to_text(agg);
    dw_redis_name_summary(m->name, start, name, sizeof(name));
    if (!text || dw_redis_set_str(rn->redis, name, text,
                                  rn->cfg.retention_windows * rn->cfg.window_size_ms) != 0) {
        dw_log(DW_LOG_ERROR, "cannot store window summary", "{s:s,s:I}", "model", m->name,
               "window_start_ms", (json_int_t)start);
    }
    free(text);
    dw_agg_free(agg);
}

/*
 * The model's performance baseline as committed (baseline:<model>) into *bl, and at the final
 * evaluation of window `start` (agg: its counts; NULL for a run of empty windows) that window's
 * final counts merged when it is a reference window: *text is then the new state to commit
 * with the step (NULL: unchanged). A stored state that cannot be read is logged and collected
 * again from the next reference window (the windows before it are then missed).
 * @returns 0, or -1 when Redis failed (bl is initialised either way: free it).
 */
static int baseline_step(struct runner *rn, const struct dw_model_cfg *m, int final, int64_t start,
                         const struct dw_agg *agg, struct dw_baseline *bl, char **text)
{
    char name[DW_REDIS_NAME_MAX], errstr[256];
    char *stored = NULL;
    size_t len = 0;
    *text = NULL;
    dw_redis_name_baseline(m->name, name, sizeof(name));
    int found = dw_redis_read_state(rn->redis, name, m->name, &stored, &len);
    if (dw_baseline_load(bl, m, stored, errstr, sizeof(errstr)) != 0) {
        dw_log_limited("corrupt_baseline", 1, DW_LOG_ERROR,
                       "stored baseline unreadable; collected again", "{s:s,s:s}", "model", m->name,
                       "error", errstr);
    }
    free(stored);
    if (found < 0) {
        return -1;
    }
    if (!final || dw_baseline_ready(bl) || bl->missed) {
        return 0;
    }
    dw_redis_name_refwins(m->name, name, sizeof(name));
    json_t *wins = read_window_list(rn, m, name);
    if (!wins) {
        return -1;
    }
    if (dw_baseline_step(bl, wins, start, agg)) {
        *text = dw_baseline_dump(bl);
    }
    json_decref(wins);
    return 0;
}

/*
 * The baseline window `start` is judged against, into *bl (initialised whatever this returns):
 * a profile's outcomes when the reference in use (ref) is a profile, the counts of the
 * reference.windows windows before `start` with source trailing, else the reference windows'
 * (baseline_step, whose new state *text is committed with the step).
 * @returns 0, or -1 when Redis failed.
 */
static int baseline_for(struct runner *rn, const struct dw_model_cfg *m, int final, int64_t start,
                        const struct dw_agg *agg, const struct dw_ref *ref, struct dw_baseline *bl,
                        char **text)
{
    *text = NULL;
    if (ref && ref->source == DW_REF_SOURCE_PROFILE) {
        dw_baseline_init(bl, m);
        dw_baseline_set_profile(bl, ref->outcomes);
        return 0;
    }
    if (m->reference.source != DW_REF_SOURCE_TRAILING) {
        return baseline_step(rn, m, final, start, agg, bl, text);
    }
    dw_baseline_init(bl, m);
    struct dw_model_cfg *counts_only = dw_model_counts_only(m);
    int64_t k = m->reference.windows;
    struct dw_agg **before = dw_calloc((size_t)k, sizeof(*before));
    int rc = load_counts_before(rn, m, counts_only, start, k, before);
    if (rc == 0) {
        dw_baseline_set_trailing(bl, before, (size_t)k);
        for (int64_t i = 0; i < k; i++) {
            dw_agg_free(before[i]);
        }
    }
    free(before);
    free(counts_only);
    return rc;
}

/* Model m's canary record of window `start` and `stage` into *w. A corrupt one is logged and
 * left out. @returns 1 read, 0 absent or corrupt, -1 on a Redis error (logged). */
static int canary_read(struct runner *rn, const struct dw_model_cfg *m, int64_t start,
                       const char *stage, struct dw_canary_window *w)
{
    char name[DW_REDIS_NAME_MAX], errstr[256];
    dw_redis_name_canary(m->name, start, stage, name, sizeof(name));
    char *data = NULL;
    size_t len = 0;
    int got = dw_redis_read_str(rn->redis, name, &data, &len);
    if (got < 0) {
        dw_log(DW_LOG_ERROR, "cannot read canary record", "{s:s,s:s}", "model", m->name, "key",
               name);
        return -1;
    }
    if (got == 1 && dw_canary_window_decode(w, data, len, errstr, sizeof(errstr)) != 0) {
        dw_log_limited("corrupt_canary", 1, DW_LOG_ERROR, "canary record unreadable; left out",
                       "{s:s,s:s,s:s}", "model", m->name, "key", name, "error", errstr);
        got = 0;
    }
    free(data);
    return got;
}

/* canarylast:<model>:<stage> := the analysis with its window_start, for every pod's
 * /api/v1/canary/<model> (publish_canary). A failure is logged: the endpoint shows the
 * previous analysis until the next window's. */
static void canary_store_last(struct runner *rn, const struct dw_model_cfg *m, int64_t start,
                              const char *stage, const json_t *analysis)
{
    char name[DW_REDIS_NAME_MAX], ws[40];
    dw_time_format_rfc3339(start, ws, sizeof(ws));
    json_t *doc = json_deep_copy(analysis);
    json_object_set_new(doc, "window_start", json_string(ws));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    dw_redis_name_canary_last(m->name, stage, name, sizeof(name));
    if (dw_redis_set_str(rn->redis, name, text,
                         rn->cfg.retention_windows * rn->cfg.window_size_ms) != 0) {
        dw_log(DW_LOG_ERROR, "cannot store the latest canary analysis", "{s:s,s:s}", "model",
               m->name, "key", name);
    }
    free(text);
}

/*
 * The canary analysis of model m at window `start` (docs/canary.md), into *out (NULL: the
 * model has none): this window's record of the stage is stored for window.retention (a final
 * record takes the close record's latency sketches, which the partitions dropped), and the
 * analysis merges the stage's records of the last canary.windows windows. Writes are
 * idempotent: a step retried after a failure writes the same record again.
 * @returns 0, or -1 on a Redis error (the evaluation is retried).
 */
static int canary_for(struct runner *rn, const struct dw_model_cfg *m, int64_t start,
                      const struct dw_agg *agg, int final, json_t **out)
{
    *out = NULL;
    if (!m->canary.on) {
        return 0;
    }
    const char *stage = final ? "final" : "close";
    size_t cap = m->canary.cfg.windows, n = 0;
    struct dw_canary_window *wins = dw_calloc(cap, sizeof(*wins));
    int rc = 0;
    if (!dw_eval_agg_empty(agg)) {
        dw_canary_window_from_agg(&wins[n++], agg);
        struct dw_canary_window close = {0};
        if (final && (rc = canary_read(rn, m, start, "close", &close)) == 1) {
            dw_canary_window_add_latency(&wins[0], &close);
            dw_canary_window_free(&close);
        }
        char name[DW_REDIS_NAME_MAX], errstr[256];
        struct dw_buf buf;
        dw_buf_init(&buf);
        dw_canary_window_encode(&wins[0], &buf);
        dw_redis_name_canary(m->name, start, stage, name, sizeof(name));
        if (rc >= 0 && dw_redis_set_bytes(rn->redis, name, buf.data, buf.len,
                                          rn->cfg.retention_windows * rn->cfg.window_size_ms,
                                          errstr, sizeof(errstr)) != 0) {
            dw_log(DW_LOG_ERROR, "cannot store canary record", "{s:s,s:s,s:s}", "model", m->name,
                   "key", name, "error", errstr);
            rc = -1;
        }
        dw_buf_free(&buf);
    }
    for (size_t k = 1; rc >= 0 && k < cap; k++) {
        int64_t ws = start - (int64_t)k * rn->cfg.window_size_ms;
        rc = canary_read(rn, m, ws, stage, &wins[n]);
        n += rc == 1;
    }
    if (rc >= 0) {
        *out = dw_canary_report(&m->canary, wins, n, stage);
        canary_store_last(rn, m, start, stage, *out);
    }
    for (size_t i = 0; i < n; i++) {
        dw_canary_window_free(&wins[i]);
    }
    free(wins);
    return rc < 0 ? -1 : 0;
}

/*
 * modelmetrics:<model>:<stage> (its name into name) := the digest of `report` (dw_modelmetrics)
 * as JSON into *text, committed with the report by the caller, so that every pod sets the
 * model series from it (publish_models). A final digest adds the window's predictions to the
 * totals of the previous final digest: unreadable ones are logged and counted again from this
 * window (the counter driftwatch_model_predictions_total then restarts, as after a reset).
 * @returns 0, or -1 on a Redis error (logged; the step is retried).
 */
static int digest_for(struct runner *rn, const struct dw_model_cfg *m, const json_t *report,
                      int final, int64_t window_end, char *name, size_t name_size, char **text)
{
    dw_redis_name_model_metrics(m->name, final ? "final" : "close", name, name_size);
    json_t *prev = NULL;
    char errstr[256] = "not JSON";
    int bad = 0;
    if (final) {
        char *data = NULL;
        size_t len = 0;
        int got = dw_redis_read_state(rn->redis, name, m->name, &data, &len);
        if (got < 0) {
            return -1;
        }
        prev = got == 1 ? json_loadb(data, len, 0, NULL) : NULL;
        bad = got == 1 && !prev;
        free(data);
    }
    json_t *d = NULL;
    bad |= dw_modelmetrics_digest(report, prev, dw_now_ms(), window_end, &d, errstr,
                                  sizeof(errstr)) != 0;
    if (bad) {
        dw_log(DW_LOG_ERROR, "model prediction totals unreadable; counted again from this window",
               "{s:s,s:s,s:s}", "model", m->name, "key", name, "error", errstr);
    }
    *text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(d);
    json_decref(prev);
    return 0;
}

/* Keeps agg, the window just closed, as what the model's next close is sized like: its counts,
 * not its sketches (a window's traffic is the best guess of the next one's), not even the
 * labels' that dw_agg_drop_sketches() keeps. */
static void keep_sized_like(struct model_rt *mr, struct dw_agg *agg)
{
    dw_agg_drop_sketches(agg);
    dw_feat_stats_free(&agg->out[DW_AGG_OUT_LABEL]);
    dw_agg_free(mr->sized_like);
    mr->sized_like = agg;
}

/*
 * Evaluates the window `start`, or the run of empty windows it starts (one report, "empty_windows"
 * windows, up to the next window with data or `until`); its alerts and trigger are committed
 * with cursor_name := the end of what was reported. *n_windows says how many windows that was,
 * 0 while a long gap is still being read (nothing was reported: try again next tick).
 */
static int evaluate_window(struct runner *rn, size_t mi, int64_t start, int64_t until, int final,
                           const char *cursor_name, int64_t *n_windows)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    int64_t L = rn->cfg.window_size_ms;
    char errstr[512];
    struct dw_model_cfg counts_only = *m; /* windows read for their counts: sketches skipped */
    counts_only.features = NULL;
    counts_only.n_features = 0;
    /* The final evaluation reads counts only: the feature statistics are the close report's
     * (final_features), since the partitions dropped their sketches once it was committed. */
    struct dw_agg *agg =
        dw_redis_load_window(rn->redis, final ? &counts_only : m, start, rn->n_parts,
                             final ? NULL : rn->models[mi].sized_like, errstr, sizeof(errstr));
    if (!agg) {
        dw_log(DW_LOG_ERROR, "cannot read window", "{s:s,s:s}", "model", m->name, "error", errstr);
        return -1;
    }
    int64_t n = 1;
    if (dw_eval_agg_empty(agg)) {
        n = empty_run_length(rn, mi, final, start, until, &counts_only);
    }
    if (n == 0) {
        dw_agg_free(agg);
        *n_windows = 0;
        return 0;
    }
    /* The rolling view ends with the last window reported: an empty one of its own. */
    struct dw_agg *last = n > 1 ? dw_agg_new(&counts_only, start + (n - 1) * L) : agg;
    struct dw_agg **recent = NULL;
    size_t n_recent = 0;
    struct dw_baseline bl;
    char *bl_text = NULL; /* the baseline's new state, committed with the step */
    struct dw_ref *ref = NULL;
    int ref_owned = 0;
    int failed = n < 0 || load_recent(rn, mi, start, start + (n - 1) * L, last, &counts_only,
                                      &recent, &n_recent) != 0;
    int recent_loaded = !failed;
    /* reference_for() records a reference window at most once: a failure after it is retried */
    failed = failed || reference_for(rn, mi, start, agg, final, &ref, &ref_owned) != 0;
    int bl_init = !failed; /* baseline_for() initialises bl whatever it returns */
    failed = failed || baseline_for(rn, m, final, start, dw_eval_agg_empty(agg) ? NULL : agg, ref,
                                    &bl, &bl_text) != 0;
    json_t *close = NULL, *canary = NULL;
    failed = failed || (final && !dw_eval_agg_empty(agg) && read_close(rn, m, start, &close) != 0);
    failed = failed || canary_for(rn, m, start, agg, final, &canary) != 0;
    struct vref_judge *vj = NULL;
    size_t n_vj = 0;
    failed = failed || version_references(rn, mi, agg, final, &vj, &n_vj) != 0;
    if (failed) {
        vref_judges_free(vj, n_vj);
        json_decref(close);
        json_decref(canary);
        if (bl_init) {
            dw_baseline_free(&bl);
            free(bl_text);
        }
        if (recent_loaded) {
            free_recent(recent, n_recent);
        }
        if (ref_owned) {
            dw_ref_free(ref);
        }
        if (last != agg) {
            dw_agg_free(last);
        }
        dw_agg_free(agg);
        return -1;
    }
    json_t *report = dw_eval_window(&rn->cfg, final ? &counts_only : m, agg, ref, final);
    if (canary) {
        json_object_set_new(report, "canary", canary);
    }
    for (size_t i = 0; i < n_vj; i++) {
        dw_eval_version_reference(report, &rn->cfg, m, agg, vj[i].slot, vj[i].ref, vj[i].collected);
    }
    vref_judges_free(vj, n_vj);
    if (dw_eval_agg_empty(agg)) {
        dw_eval_empty_run(report, &rn->cfg, n);
    } else if (final) {
        final_features(m, start, report, close);
        store_summary(rn, m, start);
    }
    json_decref(close);
    dw_eval_add_rolling(report, &rn->cfg, m, recent, n_recent);
    free_recent(recent, n_recent);
    dw_baseline_judge(report, &rn->cfg, m, &bl, ref ? ref->predictions : 0);
    dw_baseline_judge_outputs(report, &rn->cfg, m, &bl, agg, ref);
    if (ref_owned) {
        dw_ref_free(ref);
    }
    int baseline_done = bl_text && (dw_baseline_ready(&bl) || bl.missed);
    dw_baseline_free(&bl);
    if (last != agg) {
        dw_agg_free(last);
    }
    if (!final && !dw_eval_agg_empty(agg)) {
        keep_sized_like(&rn->models[mi], agg);
    } else {
        dw_agg_free(agg);
    }
    /* Actions first: they add the change detectors' verdicts to a final report, and commit it
     * with the cursor. */
    char name[DW_REDIS_NAME_MAX], bl_name[DW_REDIS_NAME_MAX], mm_name[DW_REDIS_NAME_MAX];
    char *mm_text = NULL;
    if (digest_for(rn, m, report, final, start + n * L, mm_name, sizeof(mm_name), &mm_text) != 0) {
        free(bl_text);
        json_decref(report);
        return -1;
    }
    dw_redis_name_report(m->name, start, name, sizeof(name));
    dw_redis_name_baseline(m->name, bl_name, sizeof(bl_name));
    struct dw_redis_kv extra[2] = {{mm_name, mm_text, 0}, {bl_name, bl_text, 0}};
    int rc =
        dw_actions_window(rn->actions, m, report, name, cursor_name,
                          dw_evaluator_step_cursor(&rn->cfg, start, n), extra, bl_text ? 2 : 1);
    free(mm_text);
    free(bl_text);
    if (rc != 0) {
        json_decref(report);
        return -1;
    }
    if (baseline_done) {
        dw_log(DW_LOG_INFO, "performance baseline complete", "{s:s,s:O}", "model", m->name,
               "baseline", json_object_get(report, "baseline"));
    }
    dw_log(DW_LOG_INFO, final ? "window final" : "window closed", "{s:s,s:O,s:O,s:O,s:I}", "model",
           m->name, "window_start", json_object_get(report, "window_start"), "predictions",
           json_object_get(report, "predictions"), "drift", json_object_get(report, "drift"),
           "windows", (json_int_t)n);
    remember_report(rn, report);
    json_decref(report);
    dw_metric_inc(rn->m.evaluated);
    *n_windows = n;
    return 0;
}

/*
 * Walks one cursor of model mi over the windows closed when the round began (the round's
 * watermarks; a final walk also stops at the committed close cursor), until
 * `deadline` (monotonic ms) passes after a window: the loop goes back to consuming and the
 * walk continues on the next iteration (the cursor lives in Redis). A new cursor
 * starts at the window of the smallest prediction time any partition has accepted (min_ts):
 * the group's first window with data. An event outside input.max_future_skew /
 * max_past_skew is rejected by the decoder and never reaches min_ts, so one bad clock cannot
 * start the evaluation decades early; the empty windows before a model's own first data (a
 * model that starts later than the others) are one empty-run report. *walked counts the
 * reports of this cursor in the round, at most RUN_MAX_WINDOWS_PER_TICK over its slices.
 * @returns 1 when the deadline stopped the walk, else 0 (done for this tick, or failed).
 */
static int evaluate_cursor(struct runner *rn, size_t mi, int final, int64_t deadline, int *walked)
{
    const struct dw_model_cfg *m = &rn->cfg.models[mi];
    char name[DW_REDIS_NAME_MAX]; /* the cursor's, which evaluate_window() moves */
    dw_redis_name_cursor(m->name, final, name, sizeof(name));
    int64_t cursor = 0;
    int found = get_event_time(rn, name, &cursor);
    if (found < 0 || reference_sync(rn, mi) != 0) {
        return 0;
    }
    struct dw_cursor_walk walk;
    if (dw_evaluator_cursor_begin(&walk, &rn->cfg, &rn->round.wms, final, found, cursor) !=
        DW_NEXT_WINDOW) {
        return 0;
    }
    if (final) {
        int64_t close_cursor = 0;
        int close_found = get_cursor(rn, m, 0, &close_cursor);
        if (close_found < 0) {
            return 0;
        }
        dw_evaluator_after_close(&walk, close_found, close_cursor);
    }
    int limit = RUN_MAX_WINDOWS_PER_TICK - *walked; /* walk.reports counts this call's */
    while (!run_stop &&
           dw_evaluator_next(&walk, reference_ready(rn, mi), limit) == DW_NEXT_WINDOW) {
        int64_t n = 0;
        if (evaluate_window(rn, mi, walk.cursor, walk.until, final, name, &n) != 0) {
            dw_metric_inc(rn->m.eval_failures);
            break;
        }
        if (n == 0) {
            break;
        }
        dw_evaluator_advance(&walk, &rn->cfg, n);
        (*walked)++;
        rn->evaluated_since_trim++;
        if (dw_mono_ms() >= deadline) {
            return 1;
        }
    }
    return 0;
}

/* The evaluator leases' period (milliseconds): a pod that stops renewing them (dead, stalled
 * or cut off from Redis) loses its models to the others after it; its heartbeat in the pods
 * set counts as live for as long. */
static int64_t lease_period_ms(const struct runner *rn)
{
    return DW_MAX(RUN_LEASE_MIN_MS, RUN_LEASE_TICKS * rn->cfg.eval_interval_ms);
}

/* Forgets the reference of model mi read here: another pod may build or store one while this
 * one does not evaluate the model. */
static void reference_forget(struct runner *rn, size_t mi)
{
    struct model_rt *mr = &rn->models[mi];
    dw_ref_free(mr->ref);
    mr->ref = NULL;
    mr->stored_checked = 0;
    memset(mr->run, 0, sizeof(mr->run)); /* another pod moved the cursors meanwhile */
}

/* Model mi's lease was taken (held: 1) or given up or lost (0). */
static void set_evaluating(struct runner *rn, size_t mi, int held, const char *why)
{
    if (rn->evaluating[mi] == held) {
        return;
    }
    rn->evaluating[mi] = (unsigned char)held;
    reference_forget(rn, mi);
    dw_log(DW_LOG_INFO, held ? "evaluating model" : "no longer evaluating model", "{s:s,s:s}",
           "model", rn->cfg.models[mi].name, "why", why);
    if (held) {
        /* deliver what the model's previous evaluator left pending, read what is stored */
        dw_actions_resume(rn->actions, mi);
        reference_stored(rn, mi);
    } else {
        dw_actions_drop(rn->actions, mi);
    }
}

/*
 * The evaluator leases, once per evaluation tick (dw_evalshare decides, docs/design.md
 * "Evaluation spread over pods"): the pod's heartbeat in the pods set (the live pods), the
 * leases it holds renewed, those beyond its share released, and free ones taken up to its
 * share. When Redis fails the leases held are kept (their commits are fenced anyway).
 */
static void evaluator_leases(struct runner *rn)
{
    size_t n = rn->cfg.n_models;
    int64_t ttl = lease_period_ms(rn);
    char lease[DW_REDIS_NAME_MAX];
    for (size_t mi = 0; mi < n; mi++) {
        dw_redis_name_eval_lease(rn->cfg.models[mi].name, lease, sizeof(lease));
        if (rn->evaluating[mi] && dw_redis_lease(rn->redis, lease, rn->owner, ttl) == 0) {
            set_evaluating(rn, mi, 0, "lease taken by another pod");
        }
    }
    char **pods = NULL;
    size_t n_pods = 0;
    if (dw_redis_pods_beat(rn->redis, rn->owner, dw_now_ms(), ttl, &pods, &n_pods) == 0) {
        const char **names = dw_calloc(n ? n : 1, sizeof(*names));
        enum dw_share_act *act = dw_calloc(n ? n : 1, sizeof(*act));
        size_t *order = dw_calloc(n ? n : 1, sizeof(*order));
        for (size_t mi = 0; mi < n; mi++) {
            names[mi] = rn->cfg.models[mi].name;
        }
        size_t share = 0, held = 0;
        size_t n_try = dw_evalshare_plan(rn->owner, names, n, (const char *const *)pods, n_pods,
                                         rn->evaluating, act, order, &share);
        /* Released only once this pod's alert deliveries are drained: the pod that takes the
         * model resumes the model's pending messages, and one still queued here would then be
         * sent by both. Until then it keeps the model (above its share for a while). */
        int drained = dw_actions_pending(rn->actions) == 0;
        for (size_t mi = 0; mi < n; mi++) {
            if (act[mi] == DW_SHARE_RELEASE && drained) {
                dw_redis_name_eval_lease(names[mi], lease, sizeof(lease));
                dw_redis_release(rn->redis, lease, rn->owner);
                set_evaluating(rn, mi, 0, "above this pod's share: released for another pod");
            }
            held += rn->evaluating[mi];
        }
        for (size_t k = 0; k < n_try && held < share; k++) {
            dw_redis_name_eval_lease(names[order[k]], lease, sizeof(lease));
            if (dw_redis_lease(rn->redis, lease, rn->owner, ttl) == 1) {
                set_evaluating(rn, order[k], 1, "lease taken");
                held++;
            }
        }
        free(order);
        free(act);
        free(names);
    }
    for (size_t i = 0; i < n_pods; i++) {
        free(pods[i]);
    }
    free(pods);
    size_t count = 0;
    for (size_t mi = 0; mi < n; mi++) {
        count += rn->evaluating[mi];
    }
    dw_metric_set(rn->m.evaluating, (double)count);
}

/* Gives up every lease and leaves the pods set (a clean shutdown: the others take the models
 * on their next tick instead of a lease period later). */
static void evaluator_leave(struct runner *rn)
{
    char lease[DW_REDIS_NAME_MAX];
    for (size_t mi = 0; rn->evaluating && mi < rn->cfg.n_models; mi++) {
        if (rn->evaluating[mi]) {
            dw_redis_name_eval_lease(rn->cfg.models[mi].name, lease, sizeof(lease));
            dw_redis_release(rn->redis, lease, rn->owner);
            rn->evaluating[mi] = 0;
        }
    }
    dw_redis_pods_leave(rn->redis, rn->owner);
}

/*
 * The evaluation, in slices: on an evaluation tick (`tick`) the leases are renewed, the group's
 * watermarks read and, unless the last round is still being walked, a round starts over every
 * cursor (model, stage) of the models evaluated here, with those watermarks for all its slices
 * (dw_evaluator_round_tick). Each call walks the round until RUN_EVAL_SLICE_MS passed after a
 * window, then returns to the consuming loop, which calls again on its next iteration while
 * the round is unfinished (rn->round.left): one window's
 * evaluation is the longest the loop waits (docs/design.md says why slices and not a thread).
 */
static void evaluate(struct runner *rn, int tick)
{
    if (tick) {
        evaluator_leases(rn);
        dw_actions_tick(rn->actions, dw_now_ms(), rn->evaluating);
        if (global_watermarks(rn) != 0 || rn->wms.wm == DW_NO_TS) {
            rn->round.left = 0;
            return;
        }
        int64_t wm = rn->wms.wm;
        dw_metric_set(rn->m.global_wm, (double)wm / 1000.0);
        for (int p = 0; p < rn->n_parts; p++) {
            if (rn->parts[p]) {
                rn->parts[p]->closed_upto_ms = wm;
            }
        }
        dw_evaluator_round_tick(&rn->round, rn->cfg.n_models, &rn->wms);
    }
    struct dw_eval_round *r = &rn->round;
    int64_t deadline = dw_mono_ms() + RUN_EVAL_SLICE_MS;
    while (r->left > 0 && !run_stop) {
        size_t mi = r->pos / 2;
        if (rn->evaluating[mi] &&
            evaluate_cursor(rn, mi, (int)(r->pos % 2), deadline, &r->walked)) {
            return; /* this cursor again next slice */
        }
        dw_evaluator_round_next(r);
        if (dw_mono_ms() >= deadline) {
            return;
        }
    }
}

/* ---- status ---- */

/* The partitions waiting for their state for `kind`, as /status entries; their numbers
 * ("1,2") appended to *list. */
static json_t *pending_json(const struct runner *rn, enum pend_kind kind, struct dw_sbuf *list)
{
    json_t *arr = json_array();
    for (int p = 0; p < rn->n_parts; p++) {
        const struct pending *pd = &rn->pend[p];
        if (pd->kind != kind) {
            continue;
        }
        char since[40];
        dw_time_format_rfc3339(pd->since_ms, since, sizeof(since));
        json_array_append_new(arr, json_pack("{s:i,s:s,s:s,s:s}", "partition", p, "key", pd->key,
                                             "error", pd->error, "since", since));
        dw_sbuf_printf(list, "%s%d", list->len ? "," : "", p);
    }
    return arr;
}

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

/* /status "references": model -> what its windows are judged against, as its evaluator knows
 * it (a pod reads no reference of the models it does not evaluate: it says so). */
static json_t *references_json(const struct runner *rn)
{
    json_t *refs = json_object();
    for (size_t i = 0; i < rn->cfg.n_models; i++) {
        const struct model_rt *mr = &rn->models[i];
        const struct dw_model_cfg *m = &rn->cfg.models[i];
        if (!rn->evaluating[i]) {
            json_object_set_new(refs, m->name,
                                json_pack("{s:s,s:s}", "status", "unknown_here", "reason",
                                          "this pod does not evaluate this model: see the "
                                          "/status of the pod that lists it in `evaluating`, "
                                          "or driftwatch reference show"));
            continue;
        }
        json_t *o = dw_eval_reference_json(m, mr->ref ? mr->ref : rn->profiles[i]);
        if (!mr->ref && m->reference.source == DW_REF_SOURCE_TRAILING) {
            json_object_set_new(o, "status", json_string("per_window"));
            json_object_del(o, "reason");
        }
        json_object_set_new(o, "generation", json_integer((json_int_t)mr->ref_gen));
        json_object_set_new(refs, m->name, o);
    }
    return refs;
}

/* canarylast:<model>:<stage> as JSON into *out (dw_redis_read_json). */
static int canary_last(struct runner *rn, const struct dw_model_cfg *m, const char *stage,
                       json_t **out)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_canary_last(m->name, stage, name, sizeof(name));
    return dw_redis_read_json(rn->redis, name, "corrupt_canary",
                              "latest canary analysis not JSON; not shown", out);
}

/* driftwatch_canary_*: the verdict of the endpoint's document (1 for it, 0 for the others and
 * for a pair no longer compared), the accuracy p-value and the labelled outcomes per group. */
static void canary_metrics(struct runner *rn, size_t mi, const json_t *doc)
{
    const char *model = rn->cfg.models[mi].name;
    struct model_rt *mr = &rn->models[mi];
    const char *verdict = json_string_value(json_object_get(doc, "verdict"));
    const char *base = json_string_value(json_object_get(doc, "baseline"));
    const char *cand = json_string_value(json_object_get(doc, "candidate"));
    for (int v = 0; v < DW_CANARY__COUNT; v++) {
        if (mr->canary_verdict[v]) {
            dw_metric_set(mr->canary_verdict[v], 0);
        }
    }
    char m_esc[256], b_esc[256], c_esc[256], labels[1024];
    dw_metrics_escape(model, m_esc, sizeof(m_esc));
    if (verdict && base && cand) {
        dw_metrics_escape(base, b_esc, sizeof(b_esc));
        dw_metrics_escape(cand, c_esc, sizeof(c_esc));
        for (int v = 0; v < DW_CANARY__COUNT; v++) {
            const char *name = dw_canary_verdict_name((enum dw_canary_verdict)v);
            snprintf(labels, sizeof(labels),
                     "model=\"%s\",baseline=\"%s\",candidate=\"%s\",verdict=\"%s\"", m_esc, b_esc,
                     c_esc, name);
            mr->canary_verdict[v] = dw_metrics_series(
                "driftwatch_canary_verdict",
                "1 for the verdict of the latest canary analysis of the model's candidate "
                "against its baseline (GET /api/v1/canary/<model>), 0 for the others.",
                DW_METRIC_GAUGE, labels);
            dw_metric_set(mr->canary_verdict[v], strcmp(verdict, name) == 0);
        }
    }
    const json_t *acc = json_object_get(doc, "accuracy");
    snprintf(labels, sizeof(labels), "model=\"%s\"", m_esc);
    const json_t *p = json_object_get(acc, "p_value");
    dw_metric_set(dw_metrics_series("driftwatch_canary_p_value",
                                    "Two-sided p-value of the accuracy z-test of the latest "
                                    "canary analysis (NaN: undefined).",
                                    DW_METRIC_GAUGE, labels),
                  json_is_number(p) ? json_number_value(p) : NAN);
    static const char *const groups[] = {"baseline", "candidate"};
    for (size_t g = 0; g < 2; g++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_n", groups[g]);
        snprintf(labels, sizeof(labels), "model=\"%s\",group=\"%s\"", m_esc, groups[g]);
        dw_metric_set(dw_metrics_series("driftwatch_canary_samples",
                                        "Labelled outcomes of each group in the latest canary "
                                        "analysis (merged over its windows).",
                                        DW_METRIC_GAUGE, labels),
                      (double)json_integer_value(json_object_get(acc, key)));
    }
}

/*
 * Every pod: the latest canary analyses from Redis (the evaluator writes them) to
 * /api/v1/canary/<model> and the driftwatch_canary_* metrics. On a Redis error the previous
 * documents stay.
 */
static void publish_canary(struct runner *rn)
{
    json_t *by_model = json_object();
    int failed = 0;
    for (size_t mi = 0; mi < rn->cfg.n_models && !failed; mi++) {
        const struct dw_model_cfg *m = &rn->cfg.models[mi];
        json_t *close = NULL, *final = NULL;
        if (!m->canary.on) {
            continue;
        }
        failed =
            canary_last(rn, m, "close", &close) != 0 || canary_last(rn, m, "final", &final) != 0;
        if (!failed) {
            json_t *doc = dw_canary_latest(m->name, close, final);
            canary_metrics(rn, mi, doc);
            json_object_set_new(by_model, m->name, doc);
        }
        json_decref(close);
        json_decref(final);
    }
    if (!failed && rn->http && json_object_size(by_model) > 0) {
        dw_http_set_canary(rn->http, by_model);
    }
    json_decref(by_model);
}

/* modelmetrics:<model>:<stage> as JSON into *out (dw_redis_read_json). */
static int digest_read(struct runner *rn, const struct dw_model_cfg *m, const char *stage,
                       json_t **out)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_model_metrics(m->name, stage, name, sizeof(name));
    return dw_redis_read_json(rn->redis, name, "corrupt_model_metrics",
                              "model metrics digest not JSON; its series are NaN", out);
}

/*
 * Every pod: the model series (dw_modelmetrics) from the digests the evaluator commits with
 * each report, so that a scrape of any pod is complete, and driftwatch_window_close_delay_
 * seconds. On a Redis error a model's series keep their values until the next interval.
 */
static void publish_models(struct runner *rn)
{
    double delay = NAN;
    for (size_t mi = 0; mi < rn->cfg.n_models; mi++) {
        const struct dw_model_cfg *m = &rn->cfg.models[mi];
        json_t *close = NULL, *final = NULL;
        if (digest_read(rn, m, "close", &close) != 0 || digest_read(rn, m, "final", &final) != 0) {
            json_decref(close);
            return;
        }
        size_t refused =
            dw_modelmetrics_publish(&rn->mm, &rn->models[mi].series, m->name, close, final);
        if (refused > 0) {
            dw_metric_add(rn->m.series_refused, (double)refused);
            dw_log_limited("model_series_refused", 60, DW_LOG_WARN,
                           "model series not created: metrics.max_series reached", "{s:s,s:I,s:I}",
                           "model", m->name, "refused", (json_int_t)refused, "max_series",
                           (json_int_t)rn->mm.max_series);
        }
        double d = dw_modelmetrics_close_delay(close);
        if (!isnan(d) && (isnan(delay) || d > delay)) {
            delay = d;
        }
        json_decref(close);
        json_decref(final);
    }
    dw_metric_set(rn->m.close_delay, delay);
}

/*
 * driftwatch_consumer_lag_messages{topic,partition} of the owned partitions: the partition's
 * high watermark as librdkafka last saw it in a fetch response (rd_kafka_get_watermark_offsets:
 * no request to the broker) minus the consumer's own next offset. A partition not owned any
 * more is set to 0 (another pod exports it now: sum or max by topic and partition across pods).
 */
static void publish_lag(struct runner *rn)
{
    if (!rn->consumer || rn->n_parts <= 0) {
        return;
    }
    if (!rn->m.lag) {
        rn->m.lag = dw_calloc(2 * (size_t)rn->n_parts, sizeof(*rn->m.lag));
    }
    for (int p = 0; p < rn->n_parts; p++) {
        for (int is_labels = 0; is_labels < 2; is_labels++) {
            struct dw_metric **slot = &rn->m.lag[2 * p + is_labels];
            struct dw_part *part = rn->parts[p];
            const char *topic = is_labels ? rn->cfg.topic_labels : rn->cfg.topic_predictions;
            int64_t next = part ? (is_labels ? part->off_label : part->off_pred) : -1;
            int64_t lo = -1, hi = -1;
            if (!part) {
                if (*slot) {
                    dw_metric_set(*slot, 0);
                }
                continue;
            }
            if (next < 0 ||
                rd_kafka_get_watermark_offsets(rn->consumer, topic, p, &lo, &hi) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR ||
                hi < 0) {
                continue; /* not known yet: the series keeps its value (or does not exist) */
            }
            if (!*slot) {
                char esc[256], labels[320];
                dw_metrics_escape(topic, esc, sizeof(esc));
                snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", esc, p);
                *slot = dw_metrics_series("driftwatch_consumer_lag_messages",
                                          "Messages of an owned input partition after the "
                                          "consumer's next offset, against the high watermark "
                                          "of librdkafka's last fetch (0: not owned here).",
                                          DW_METRIC_GAUGE, labels);
            }
            dw_metric_set(*slot, (double)(hi > next ? hi - next : 0));
        }
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
        records += dw_join_size(&part->join);
        int64_t wm = dw_part_watermark(part);
        json_array_append_new(
            parts,
            json_pack("{s:i,s:I,s:I,s:o,s:i,s:I,s:b,s:b}", "partition", p, "offset_predictions",
                      (json_int_t)part->off_pred, "offset_labels", (json_int_t)part->off_label,
                      "watermark_ms", wm == DW_NO_TS ? json_null() : json_integer(wm),
                      "windows_open", (int)part->n_wins, "join_records",
                      (json_int_t)dw_join_size(&part->join), "idle", rn->eof_ms[p] != 0,
                      "labels_held", rn->held[p] != 0));
    }
    dw_metric_set(rn->m.windows_open, (double)wins);
    dw_metric_set(rn->m.join_records, (double)records);
    publish_join_strings(rn);
    json_t *evaluating = json_array();
    for (size_t mi = 0; mi < rn->cfg.n_models; mi++) {
        if (rn->evaluating[mi]) {
            json_array_append_new(evaluating, json_string(rn->cfg.models[mi].name));
        }
    }
    json_t *st = json_pack("{s:s,s:s,s:o,s:b,s:o,s:O,s:b,s:o,s:o}", "group", rn->cfg.group, "owner",
                           rn->owner, "global_watermark_ms",
                           rn->wms.wm == DW_NO_TS ? json_null() : json_integer(rn->wms.wm),
                           "paused", rn->paused, "partitions", parts, "reports", rn->reports,
                           "evaluator", json_array_size(evaluating) > 0, "evaluating", evaluating,
                           "alerts_firing", dw_actions_status(rn->actions));
    struct dw_sbuf quarantined = {0}, loading = {0}, fenced = {0}, lost = {0};
    json_object_set_new(st, "quarantined", pending_json(rn, PEND_CORRUPT, &quarantined));
    json_object_set_new(st, "loading", pending_json(rn, PEND_UNAVAILABLE, &loading));
    json_object_set_new(st, "fenced", pending_json(rn, PEND_FENCED, &fenced));
    json_object_set_new(st, "state_lost", pending_json(rn, PEND_LOST, &lost));
    json_object_set(st, "windows_held", rn->windows_held ? rn->windows_held : json_null());
    json_object_set_new(st, "references", references_json(rn));
    char *text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    if (rn->http) {
        dw_http_set_status(rn->http, text);
        char reason[512] = "";
        if (!rn->assigned) {
            snprintf(reason, sizeof(reason), "waiting for partition assignment");
        } else if (rn->paused) {
            snprintf(reason, sizeof(reason), "redis unavailable");
        } else if (lost.len) {
            snprintf(reason, sizeof(reason),
                     "partitions held: state_lost (state gone from Redis, state.on_loss: stop): "
                     "%s; see docs/operations.md",
                     lost.s);
        } else if (quarantined.len) {
            snprintf(reason, sizeof(reason),
                     "partitions quarantined (corrupt state): %s; see /status and "
                     "`driftwatch state check`",
                     quarantined.s);
        } else if (loading.len) {
            snprintf(reason, sizeof(reason), "redis unavailable: state of partitions %s not loaded",
                     loading.s);
        } else if (fenced.len) {
            snprintf(reason, sizeof(reason),
                     "partitions held without state (fenced: claimed by another consumer, or "
                     "their state changed in Redis): %s",
                     fenced.s);
        }
        dw_http_set_ready(rn->http, reason[0] == '\0', reason);
    }
    free(quarantined.s);
    free(loading.s);
    free(fenced.s);
    free(lost.s);
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
    heap_init(rn);
    metrics_init(&rn->m, heap_name(rn));
    rn->reports = json_array();
    rn->wms.wm = DW_NO_TS;
    rn->wms.label_wm = DW_NO_TS;
    rn->wms.first_ts = DW_NO_TS;
    rn->models = dw_calloc(rn->cfg.n_models, sizeof(*rn->models));
    rn->evaluating = dw_calloc(rn->cfg.n_models ? rn->cfg.n_models : 1, sizeof(*rn->evaluating));
    rn->mm.max_series = (size_t)rn->cfg.metrics_max_series;
    rn->profiles = dw_calloc(rn->cfg.n_models ? rn->cfg.n_models : 1, sizeof(*rn->profiles));
    if (dw_files_load_profiles(&rn->cfg, rn->profiles, errstr, errstr_size) != 0) {
        return -1;
    }
    for (size_t i = 0; i < rn->cfg.n_models; i++) {
        if (rn->profiles[i]) {
            dw_log(DW_LOG_INFO, "reference profile read", "{s:s,s:s,s:b}", "model",
                   rn->cfg.models[i].name, "profile", rn->profiles[i]->profile, "outcomes",
                   rn->profiles[i]->outcomes != NULL);
        }
    }
    if (!(rn->dec_pred = dw_decoder_new(&rn->cfg, errstr, errstr_size)) ||
        !(rn->dec_label = dw_decoder_new(&rn->cfg, errstr, errstr_size))) {
        return -1;
    }
    rn->pev = dw_prediction_new(rn->dec_pred);
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
    if (!(rn->fetchwake = dw_fetchwake_start(rn->consumer, errstr, errstr_size))) {
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
    rn->refetching = dw_calloc(2 * (size_t)rn->n_parts, sizeof(*rn->refetching));
    rn->pend = dw_calloc((size_t)rn->n_parts, sizeof(*rn->pend));
    rn->label_eof_ms = dw_calloc((size_t)rn->n_parts, sizeof(*rn->label_eof_ms));
    if (!(rn->actions =
              dw_actions_new(&rn->cfg, rn->redis, rn->producer, rn->owner, errstr, errstr_size))) {
        return -1;
    }
    if (rn->cfg.http_listen[0] &&
        !(rn->http = dw_http_start(rn->cfg.http_listen, RUN_LIVE_WINDOW_MS, errstr, errstr_size))) {
        return -1;
    }
    if (rn->http) {
        rn->api = dw_api_new(&rn->cfg);
        dw_http_set_auth(rn->http, rn->cfg.http_auth_token);
        dw_http_set_app(rn->http, dw_api_serve, rn->api);
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
 * messages are smaller, so librdkafka fetches them faster), or labels come before any
 * prediction of a predictions log that has more, the labels partition is paused until the
 * predictions catch up to half a window behind or reach the end of their log
 * (dw_part_hold_labels). Otherwise every label of the backlog would wait parked in the join
 * cache for its prediction: memory and CPU spent for nothing (the 1M bench once parked 700,000
 * labels of partitions whose predictions had not been fetched yet). The results do not depend
 * on it (the two clocks make every interleaving give the same state); only memory and speed do.
 */
static void align_labels(struct runner *rn)
{
    for (int p = 0; p < rn->n_parts && !rn->paused; p++) {
        struct dw_part *part = rn->parts[p];
        if (!part) {
            continue;
        }
        int hold = dw_part_hold_labels(part, rn->eof_ms[p] != 0, rn->held[p]);
        if (hold != rn->held[p]) {
            hold_labels(rn, p, hold);
        }
    }
}

/* Adds the time since `since` to the loop's phase. @returns now. */
static double loop_phase(struct runner *rn, enum run_phase phase, double since)
{
    double now = dw_mono_s();
    dw_metric_add(rn->m.loop[phase], now - since);
    return now;
}

/*
 * After a burst (RUN_TRIM_AFTER messages) or an evaluation round that evaluated a window, the
 * first poll without a message or the next evaluation tick (whichever comes first) hands back
 * the free pages of every arena, holes included (heap_release), which the trim threshold cannot:
 * librdkafka's threads free the fetch buffers of a catch-up out of order, and their arena kept up
 * to ~30 MiB of them through the close evaluations that follow (bench/RESULTS.md, "Memory: the
 * sixteenth session"); an evaluation frees the windows' merged aggregates and the partitions their
 * closed windows' sketches, and the main heap kept ~58 MB of such holes resident once caught up
 * ("Memory: the seventeenth session"). A few milliseconds, at most once per evaluation round or per
 * RUN_TRIM_AFTER messages; between a round's slices only while messages come, since the next
 * slice would fault the same pages back in (dw_evaluator_trim_due; bench/RESULTS.md, "Trimming
 * once per round").
 */
static void trim_after_burst(struct runner *rn)
{
    if (dw_evaluator_trim_due(&rn->round, rn->since_trim, RUN_TRIM_AFTER,
                              rn->evaluated_since_trim)) {
        heap_release(rn);
        rn->since_trim = 0;
        rn->evaluated_since_trim = 0;
    }
}

static void runner_loop(struct runner *rn)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rn->consumer);
    rd_kafka_message_t **batch = dw_calloc(RUN_BATCH, sizeof(*batch));
    rn->next_ckpt = dw_mono_ms() + rn->cfg.checkpoint_interval_ms;
    rn->next_eval = dw_mono_ms() + rn->cfg.eval_interval_ms;
    double t = dw_mono_s();
    while (!run_stop) {
        ssize_t n = rd_kafka_consume_batch_queue(q, RUN_POLL_MS, batch, RUN_BATCH);
        dw_fetchwake_check(rn->fetchwake, rd_kafka_queue_length(q));
        memset(rn->refetching, 0, 2 * (size_t)rn->n_parts); /* a new batch: fetched again */
        t = loop_phase(rn, PH_POLL, t);
        for (ssize_t i = 0; i < n; i++) {
            handle_message(rn, batch[i]);
            rd_kafka_message_destroy(batch[i]);
        }
        t = loop_phase(rn, PH_MESSAGES, t);
        rn->since_trim += n > 0 ? (uint64_t)n : 0;
        rn->since_ckpt += n > 0 ? (uint64_t)n : 0;
        if (n <= 0) {
            trim_after_burst(rn);
            /* Serve rebalance and error events when no message came. A message or an error
             * event can come here too (it arrived since the batch returned): it is handled like
             * the batch's. It used to be dropped: a message skipped without a trace, or an
             * "offset out of range" event never resolved, its partition stopped for good. */
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rn->consumer, 0);
            if (rkm) {
                handle_message(rn, rkm);
                rd_kafka_message_destroy(rkm);
            }
        }
        align_labels(rn);
        retry_pending(rn);
        int64_t now = dw_mono_ms();
        enum dw_ckpt_reason due = dw_evaluator_checkpoint_due(
            now, rn->next_ckpt, rn->since_ckpt, (uint64_t)rn->cfg.checkpoint_max_messages);
        if (due != DW_CKPT_NONE) {
            t = loop_phase(rn, PH_OTHER, t);
            dw_metric_inc(rn->m.ckpt_rounds[due]);
            int ok = checkpoint_all(rn, 0) == 0;
            set_paused(rn, !ok);
            rn->next_ckpt = now + rn->cfg.checkpoint_interval_ms;
            rn->since_ckpt = 0;
            t = loop_phase(rn, PH_CHECKPOINT, t);
        }
        if (now >= rn->next_eval) {
            t = loop_phase(rn, PH_OTHER, t);
            trim_after_burst(rn);
            if (!rn->paused) {
                evaluate(rn, 1);
            }
            publish_status(rn);
            publish_canary(rn);
            publish_models(rn);
            publish_lag(rn);
            rn->next_eval = now + rn->cfg.eval_interval_ms;
            t = loop_phase(rn, PH_EVALUATE, t);
        } else if (rn->round.left > 0 && !rn->paused) {
            t = loop_phase(rn, PH_OTHER, t);
            evaluate(rn, 0); /* the next slice of the round */
            t = loop_phase(rn, PH_EVALUATE, t);
        }
        if (rn->http) {
            dw_http_tick(rn->http);
        }
        t = loop_phase(rn, PH_OTHER, t);
    }
    free(batch);
    rd_kafka_queue_destroy(q);
}

/* @returns 1 when the last checkpoint tried while stopping failed (logged), else 0. */
static int runner_stop(struct runner *rn)
{
    dw_fetchwake_stop(rn->fetchwake);
    if (rn->consumer) {
        if (rn->parts) {
            rn->stop_unsaved = checkpoint_all(rn, 1) != 0;
        }
        /* revokes: checkpoints again, frees state */
        if (dw_kafka_consumer_close(rn->consumer, rebalance_cb, RUN_CLOSE_MS) != 0) {
            dw_log(DW_LOG_WARN, "left the consumer group without its coordinator", "{s:i,s:s}",
                   "waited_ms", RUN_CLOSE_MS, "consequence",
                   "its partitions go to another pod once the group session times out "
                   "(session.timeout.ms)");
        }
    }
    if (rn->stop_unsaved) {
        dw_log(DW_LOG_ERROR, "stopped without its final checkpoint", "{s:s}", "consequence",
               "nothing is lost: the next owner consumes again from the last checkpoint");
    }
    if (rn->producer) {
        rd_kafka_flush(rn->producer, RUN_FLUSH_MS);
        rd_kafka_destroy(rn->producer);
    }
    dw_kafka_outbox_free(rn->dlq); /* after the producer: no delivery report can come now */
    dw_actions_free(rn->actions, RUN_SHUTDOWN_FLUSH_MS);
    /* after the deliveries stopped (what is left is in Redis): the next evaluator of a model
     * resumes its messages without this pod still sending them. Redis down: they expire. */
    if (rn->redis && !rn->paused) {
        evaluator_leave(rn);
    }
    if (rn->http) {
        dw_http_stop(rn->http); /* before the handler's state and the config it borrows */
    }
    dw_api_free(rn->api);
    for (int p = 0; p < rn->n_parts && rn->parts; p++) {
        dw_part_free(rn->parts[p]);
    }
    for (size_t i = 0; rn->models && i < rn->cfg.n_models; i++) {
        dw_modelmetrics_model_free(&rn->models[i].series);
        dw_ref_free(rn->models[i].ref);
        dw_agg_free(rn->models[i].sized_like);
        dw_ref_free(rn->profiles ? rn->profiles[i] : NULL);
    }
    free(rn->models);
    free(rn->evaluating);
    free(rn->profiles);
    free(rn->parts);
    free(rn->m.lag);
    free(rn->eof_ms);
    free(rn->label_eof_ms);
    free(rn->held);
    free(rn->refetching);
    free(rn->pend);
    json_decref(rn->windows_held);
    free(rn->pev);
    dw_decoder_destroy(rn->dec_pred);
    dw_decoder_destroy(rn->dec_label);
    dw_redis_free(rn->redis);
    json_decref(rn->reports);
    dw_config_free(&rn->cfg);
    return rn->stop_unsaved || rn->failed;
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
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, run_usage);
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
     * heap instead of mapping and zeroing fresh pages each time (glibc's defaults). The trim
     * threshold also holds for the arenas of librdkafka's threads, where the fetched messages
     * live: at 32 MiB, each kept ~30 MiB of freed fetch buffers after a catch-up; at 8 MiB the
     * 1M bench peaks 15-25 MiB lower for the same CPU within the machine's noise
     * (bench/RESULTS.md, "Memory: the sixteenth session"). */
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
        dw_log(DW_LOG_INFO, "started", "{s:s,s:s,s:i,s:s,s:s}", "version", DW_VERSION, "group",
               rn.cfg.group, "partitions", rn.n_parts, "owner", rn.owner, "allocator",
               heap_name(&rn));
        runner_loop(&rn);
        dw_log(DW_LOG_INFO, "stopping", NULL);
    }
    if (runner_stop(&rn) != 0) {
        rc = 1;
    }
    return rc;
}
