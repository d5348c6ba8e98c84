/*
 * dw_kafka.c - librdkafka client construction and the co-partitioning check.
 *
 * Why the range assignor: driftwatch keeps the state of partition P of both topics together
 * (a prediction and its label share a partition because both topics are keyed by
 * prediction_id). Only the range assignor guarantees that one consumer receives partition P of
 * both co-partitioned topics; cooperative-sticky balances each topic on its own and can split
 * them. See docs/design.md.
 *
 * Why outboxes: a produce call only queues a message; whether the broker took it is known
 * later, from the delivery report, after librdkafka's own retries (message.timeout.ms). A
 * message whose report is an error is gone unless someone kept it, and a counter alone cannot
 * say which one it was. An outbox owns the outcome of every message produced through it: the
 * ones still in flight, the ids of the last ones delivered, and a copy of each one that failed,
 * to be produced again. The caller decides what a failure blocks (dead letters: the checkpoint
 * that would move the offsets past them; triggers: the commit of the window's evaluation).
 * Delivery reports are served by whoever polls or flushes the producer (the main loop).
 *
 * Why a bounded close: rd_kafka_consumer_close() waits, without a bound, for what the group
 * still has in flight (an offset commit to a coordinator that is gone or stalled): a consumer
 * stopped after its broker waited until SIGKILL (tests/integration/test_broker_faults.py,
 * shutdown_coordinator_stalled).
 * dw_kafka_consumer_close() closes through a queue of its own, calling the rebalance callback
 * for its events there, and gives up at its bound; it then leaves the handle to the process's exit,
 * since rd_kafka_destroy() waits for the same thing (with or without
 * RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE).
 */
#include "driftwatch/io/dw_kafka.h"

#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_log.h"
#include "driftwatch/core/dw_metrics.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define PRODUCE_RETRY_MS 100 /* poll time when the local producer queue is full */
#define PRODUCE_MAX_RETRIES 300
#define PRODUCE_RENEW_FLUSH_MS 5000 /* wait for the reports of purged messages, milliseconds */
#define OFFSET_QUERY_MS 5000        /* watermark query after "out of range", milliseconds */
#define OUTBOX_DELIVERED 64         /* ids of the last delivered messages an outbox remembers */

/* A message produced through an outbox, from produce to delivery report (librdkafka's
 * msg_opaque). */
struct outbox_msg {
    struct dw_kafka_outbox *ob;
    struct outbox_msg *prev, *next; /* the outbox's in-flight list */
    char *id;                       /* NULL or the caller's id */
};

/* A copy of a message whose delivery failed, to be produced again. */
struct outbox_failed {
    char *topic, *id;
    void *key, *value;
    size_t key_len, value_len;
};

struct dw_kafka_outbox {
    struct outbox_msg in_flight; /* list head (sentinel) */
    size_t n_in_flight;
    struct outbox_failed *failed;
    size_t n_failed, cap_failed, failed_bytes;
    char *delivered[OUTBOX_DELIVERED]; /* ring of ids */
    size_t delivered_next;
};

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                    size_t errstr_size)
{
    char kerr[512];
    if (rd_kafka_conf_set(conf, key, value, kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
        return dw_err(errstr, errstr_size, "kafka.%s: %s", key, kerr);
    }
    return 0;
}

static int has_key(const struct dw_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return 1;
        }
    }
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    dw_log(level <= 3   ? DW_LOG_ERROR
           : level <= 5 ? DW_LOG_WARN
                        : DW_LOG_DEBUG,
           buf, "{s:s,s:s}", "component", "librdkafka", "facility", fac);
}

static rd_kafka_conf_t *base_conf(const struct dw_config *cfg, const char *const *defaults,
                                  char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    for (size_t i = 0; defaults[i]; i += 2) {
        if (!has_key(cfg, defaults[i]) &&
            conf_set(conf, defaults[i], defaults[i + 1], errstr, errstr_size) != 0) {
            goto err;
        }
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr, errstr_size) != 0) {
            goto err;
        }
    }
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* rd_kafka_new() that owns conf on success and frees it on failure. */
static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                              size_t errstr_size)
{
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, kerr, sizeof(kerr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        dw_err(errstr, errstr_size, "kafka %s: %s",
               type == RD_KAFKA_CONSUMER ? "consumer" : "producer", kerr);
    }
    return rk;
}

/*
 * Offset commits are asynchronous and only a mirror of the offsets in Redis (the truth), so a
 * failed one (coordinator moved or down) is not retried here: the next checkpoint commits the
 * newer offsets. It is counted and logged, so that commits that stop for good are visible.
 */
static struct dw_metric *commits_ok, *commits_failed;

static void commit_metrics_init(void)
{
    const char *help = "Kafka offset commits of the consumer group, by result (the offsets in "
                       "Redis are the truth; a failed commit is redone by the next checkpoint).";
    commits_ok = dw_metrics_series("driftwatch_kafka_offset_commits_total", help, DW_METRIC_COUNTER,
                                   "result=\"ok\"");
    commits_failed = dw_metrics_series("driftwatch_kafka_offset_commits_total", help,
                                       DW_METRIC_COUNTER, "result=\"failed\"");
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return; /* nothing to commit */
    }
    for (int i = 0; !err && offsets && i < offsets->cnt; i++) {
        err = offsets->elems[i].err;
    }
    dw_metric_inc(err ? commits_failed : commits_ok);
    if (err) {
        dw_log_limited("kafka_commit", 1, DW_LOG_WARN,
                       "kafka offset commit failed; the next checkpoint commits again", "{s:s}",
                       "error", rd_kafka_err2str(err));
    }
}

/* A small prefetch: 20,000 messages (librdkafka: 100,000) and at most 16 MiB (librdkafka:
 * 64 MiB) in fetch responses of at most 8 MiB (librdkafka: 50 MiB). It was slow on its own
 * (librdkafka 2.0.2 waited up to a second before fetching again); with dw_fetchwake waking the
 * fetchers it is as fast as a large one and holds a fraction of its memory (bench/RESULTS.md,
 * "Waking the fetcher", "Memory: the sixteenth session"). kafka.* sets them. */
/* clang-format off */
const char *const dw_kafka_consumer_defaults[] = {
    "auto.offset.reset",   "earliest", /* where a partition without state starts */
    "client.id",           "driftwatch",
    "queued.min.messages", "20000",    /* the prefetch, all partitions together */
    "fetch.max.bytes",     "8388608",  /* the largest fetch response */
    "queued.max.messages.kbytes", "16384", /* the prefetch's bytes */
    NULL};
/* clang-format on */

rd_kafka_t *dw_kafka_consumer_new(const struct dw_config *cfg, dw_rebalance_cb_t *rebalance_cb,
                                  void *opaque, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = base_conf(cfg, dw_kafka_consumer_defaults, errstr, errstr_size);
    if (!conf) {
        return NULL;
    }
    /* Keys driftwatch controls itself (the config loader rejects them from the file).
     * auto.offset.reset: the configured value only chooses where a partition without state
     * starts (driftwatch passes that offset itself); an offset found out of range later must
     * not be reset silently by librdkafka, which would re-count or skip messages without a
     * trace: it becomes an error event that dw_kafka_offset_reset() resolves. */
    if (conf_set(conf, "auto.offset.reset", "error", errstr, errstr_size) != 0 ||
        conf_set(conf, "group.id", cfg->group, errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) != 0 ||
        conf_set(conf, "partition.assignment.strategy", "range", errstr, errstr_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    commit_metrics_init();
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (rk) {
        rd_kafka_poll_set_consumer(rk);
    }
    return rk;
}

static void *copy_bytes(const void *p, size_t n)
{
    void *out = dw_malloc(n ? n : 1);
    if (n) {
        memcpy(out, p, n);
    }
    return out;
}

static void outbox_keep_failed(struct dw_kafka_outbox *ob, const char *topic, const char *id,
                               const void *key, size_t key_len, const void *value, size_t value_len)
{
    if (ob->n_failed == ob->cap_failed) {
        ob->cap_failed = ob->cap_failed ? 2 * ob->cap_failed : 16;
        ob->failed = dw_realloc(ob->failed, ob->cap_failed * sizeof(*ob->failed));
    }
    struct outbox_failed *f = &ob->failed[ob->n_failed++];
    f->topic = dw_strdup(topic);
    f->id = id ? dw_strdup(id) : NULL;
    f->key = key ? copy_bytes(key, key_len) : NULL;
    f->key_len = key_len;
    f->value = copy_bytes(value, value_len);
    f->value_len = value_len;
    ob->failed_bytes += key_len + value_len;
}

static void outbox_failed_free(struct outbox_failed *f)
{
    free(f->topic);
    free(f->id);
    free(f->key);
    free(f->value);
}

static void outbox_unlink(struct outbox_msg *om)
{
    om->prev->next = om->next;
    om->next->prev = om->prev;
    om->ob->n_in_flight--;
}

/* The delivery report of a message of an outbox: remember its id or keep a copy. */
static void outbox_settle(struct outbox_msg *om, const rd_kafka_message_t *rkm)
{
    struct dw_kafka_outbox *ob = om->ob;
    outbox_unlink(om);
    if (rkm->err) {
        outbox_keep_failed(ob, rd_kafka_topic_name(rkm->rkt), om->id, rkm->key, rkm->key_len,
                           rkm->payload, rkm->len);
        free(om->id);
    } else if (om->id) {
        free(ob->delivered[ob->delivered_next]);
        ob->delivered[ob->delivered_next] = om->id;
        ob->delivered_next = (ob->delivered_next + 1) % OUTBOX_DELIVERED;
    }
    free(om);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (rkm->err) {
        dw_log_limited("kafka_delivery", 5, DW_LOG_ERROR, "kafka delivery failed", "{s:s,s:s,s:b}",
                       "topic", rd_kafka_topic_name(rkm->rkt), "error", rd_kafka_err2str(rkm->err),
                       "tracked", rkm->_private != NULL);
    }
    if (rkm->_private) {
        outbox_settle(rkm->_private, rkm);
    }
}

rd_kafka_t *dw_kafka_producer_new(const struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    /* queue.buffering.max.kbytes: 1 GiB by default; dead letters and triggers need far less,
     * and a full queue is handled (the outbox keeps the message and produces it again). */
    static const char *const defaults[] = {
        "enable.idempotence",         "true",  "linger.ms", "20", "client.id", "driftwatch",
        "queue.buffering.max.kbytes", "65536", NULL};
    /* Consumer-only keys from kafka.* would make the producer warn; they are harmless. */
    rd_kafka_conf_t *conf = base_conf(cfg, defaults, errstr, errstr_size);
    if (!conf) {
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    return new_client(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
}

int dw_kafka_producer_renew(rd_kafka_t **rk, const struct dw_config *cfg, char *errstr,
                            size_t errstr_size)
{
    char reason[512];
    rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(*rk, reason, sizeof(reason));
    if (!fatal) {
        return 0;
    }
    /* Every message gets its delivery report (purged): none is left in an outbox's flight. */
    rd_kafka_purge(*rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(*rk, PRODUCE_RENEW_FLUSH_MS);
    if (rd_kafka_outq_len(*rk) > 0) {
        return dw_err(errstr, errstr_size,
                      "producer failed fatally (%s: %s); %d messages still to be reported",
                      rd_kafka_err2name(fatal), reason, rd_kafka_outq_len(*rk));
    }
    char kerr[512];
    rd_kafka_t *fresh = dw_kafka_producer_new(cfg, kerr, sizeof(kerr));
    if (!fresh) {
        return dw_err(errstr, errstr_size, "producer failed fatally (%s: %s); a new one: %s",
                      rd_kafka_err2name(fatal), reason, kerr);
    }
    rd_kafka_destroy(*rk);
    *rk = fresh;
    dw_err(errstr, errstr_size, "producer failed fatally (%s: %s); replaced by a new one",
           rd_kafka_err2name(fatal), reason);
    return 1;
}

int dw_kafka_offset_in_log(rd_kafka_t *consumer, const char *topic, int32_t partition,
                           int64_t position, int64_t *target, char *errstr, size_t errstr_size)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(consumer, topic, partition, &lo, &hi, OFFSET_QUERY_MS);
    if (err) {
        return dw_err(errstr, errstr_size, "%s [%d]: cannot read the log's start and end: %s",
                      topic, (int)partition, rd_kafka_err2str(err));
    }
    *target = position < lo ? lo : position > hi ? hi : position;
    return 0;
}

static int topic_partitions(const rd_kafka_metadata_t *md, const char *topic, char *errstr,
                            size_t errstr_size)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0) {
            continue;
        }
        if (md->topics[i].err) {
            return dw_err(errstr, errstr_size, "topic '%s': %s", topic,
                          rd_kafka_err2str(md->topics[i].err));
        }
        return md->topics[i].partition_cnt;
    }
    return dw_err(errstr, errstr_size, "topic '%s' does not exist", topic);
}

int dw_kafka_check_copartitioned(rd_kafka_t *rk, const struct dw_config *cfg, int *n_parts,
                                 char *errstr, size_t errstr_size)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (err) {
        return dw_err(errstr, errstr_size, "cannot read Kafka metadata: %s", rd_kafka_err2str(err));
    }
    int np = topic_partitions(md, cfg->topic_predictions, errstr, errstr_size);
    int nl = np < 0 ? -1 : topic_partitions(md, cfg->topic_labels, errstr, errstr_size);
    rd_kafka_metadata_destroy(md);
    if (np < 0 || nl < 0) {
        return -1;
    }
    if (np != nl) {
        return dw_err(errstr, errstr_size,
                      "topics '%s' (%d partitions) and '%s' (%d partitions) are not "
                      "co-partitioned: driftwatch joins a prediction and its label inside one "
                      "partition number, so both topics must have the same partition count and "
                      "be keyed by prediction_id with the same partitioner",
                      cfg->topic_predictions, np, cfg->topic_labels, nl);
    }
    *n_parts = np;
    return 0;
}

/* Queues a copy of the message with msg_opaque `opaque`; polls and retries on a full queue. */
static int produce_copy(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                        const void *value, size_t value_len, void *opaque, char *errstr,
                        size_t errstr_size)
{
    for (int attempt = 0; attempt < PRODUCE_MAX_RETRIES; attempt++) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (!err) {
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            return dw_err(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
        }
        rd_kafka_poll(rk, PRODUCE_RETRY_MS);
    }
    return dw_err(errstr, errstr_size, "produce to %s: local queue stayed full", topic);
}

int dw_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, char *errstr, size_t errstr_size)
{
    return produce_copy(rk, topic, key, key_len, value, value_len, NULL, errstr, errstr_size);
}

/* ---- outboxes ---- */

struct dw_kafka_outbox *dw_kafka_outbox_new(void)
{
    struct dw_kafka_outbox *ob = dw_calloc(1, sizeof(*ob));
    ob->in_flight.next = ob->in_flight.prev = &ob->in_flight;
    return ob;
}

void dw_kafka_outbox_free(struct dw_kafka_outbox *ob)
{
    if (!ob) {
        return;
    }
    while (ob->in_flight.next != &ob->in_flight) {
        struct outbox_msg *om = ob->in_flight.next;
        outbox_unlink(om);
        free(om->id);
        free(om);
    }
    for (size_t i = 0; i < ob->n_failed; i++) {
        outbox_failed_free(&ob->failed[i]);
    }
    free(ob->failed);
    for (size_t i = 0; i < OUTBOX_DELIVERED; i++) {
        free(ob->delivered[i]);
    }
    free(ob);
}

int dw_kafka_outbox_produce(rd_kafka_t *rk, struct dw_kafka_outbox *ob, const char *topic,
                            const char *id, const void *key, size_t key_len, const void *value,
                            size_t value_len, char *errstr, size_t errstr_size)
{
    struct outbox_msg *om = dw_calloc(1, sizeof(*om));
    om->ob = ob;
    om->id = id ? dw_strdup(id) : NULL;
    om->next = &ob->in_flight;
    om->prev = ob->in_flight.prev;
    om->prev->next = om;
    ob->in_flight.prev = om;
    ob->n_in_flight++;
    if (produce_copy(rk, topic, key, key_len, value, value_len, om, errstr, errstr_size) == 0) {
        return 0;
    }
    outbox_unlink(om);
    outbox_keep_failed(ob, topic, id, key, key_len, value, value_len);
    free(om->id);
    free(om);
    return -1;
}

int dw_kafka_outbox_retry(rd_kafka_t *rk, struct dw_kafka_outbox *ob, char *errstr,
                          size_t errstr_size)
{
    struct outbox_failed *failed = ob->failed;
    size_t n = ob->n_failed;
    ob->failed = NULL;
    ob->n_failed = ob->cap_failed = ob->failed_bytes = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct outbox_failed *f = &failed[i];
        if (dw_kafka_outbox_produce(rk, ob, f->topic, f->id, f->key, f->key_len, f->value,
                                    f->value_len, errstr, errstr_size) != 0) {
            rc = -1;
        }
        outbox_failed_free(f);
    }
    free(failed);
    return rc;
}

enum dw_outbox_state dw_kafka_outbox_state(const struct dw_kafka_outbox *ob, const char *id)
{
    for (size_t i = 0; i < OUTBOX_DELIVERED; i++) {
        if (ob->delivered[i] && strcmp(ob->delivered[i], id) == 0) {
            return DW_OUTBOX_DELIVERED;
        }
    }
    for (const struct outbox_msg *om = ob->in_flight.next; om != &ob->in_flight; om = om->next) {
        if (om->id && strcmp(om->id, id) == 0) {
            return DW_OUTBOX_IN_FLIGHT;
        }
    }
    for (size_t i = 0; i < ob->n_failed; i++) {
        if (ob->failed[i].id && strcmp(ob->failed[i].id, id) == 0) {
            return DW_OUTBOX_FAILED;
        }
    }
    return DW_OUTBOX_UNKNOWN;
}

void dw_kafka_outbox_discard(struct dw_kafka_outbox *ob, const char *id)
{
    size_t keep = 0;
    for (size_t i = 0; i < ob->n_failed; i++) {
        struct outbox_failed *f = &ob->failed[i];
        if (f->id && strcmp(f->id, id) == 0) {
            ob->failed_bytes -= f->key_len + f->value_len;
            outbox_failed_free(f);
        } else {
            ob->failed[keep++] = *f;
        }
    }
    ob->n_failed = keep;
}

size_t dw_kafka_outbox_in_flight(const struct dw_kafka_outbox *ob)
{
    return ob->n_in_flight;
}

size_t dw_kafka_outbox_failed(const struct dw_kafka_outbox *ob, size_t *bytes)
{
    if (bytes) {
        *bytes = ob->failed_bytes;
    }
    return ob->n_failed;
}

int dw_kafka_committed(rd_kafka_t *rk, const char *topic_a, const char *topic_b, int32_t p,
                       int timeout_ms, int64_t *off_a, int64_t *off_b)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, topic_a, p);
    rd_kafka_topic_partition_list_add(l, topic_b, p);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, timeout_ms);
    *off_a = l->elems[0].err || l->elems[0].offset < 0 ? -1 : l->elems[0].offset;
    *off_b = l->elems[1].err || l->elems[1].offset < 0 ? -1 : l->elems[1].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int dw_kafka_consumer_close(rd_kafka_t *rk, dw_rebalance_cb_t *rebalance_cb, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(rk, q);
    int closed = 0;
    if (error) {
        dw_log(DW_LOG_WARN, "cannot close the consumer", "{s:s}", "error",
               rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        int64_t deadline = dw_mono_ms() + timeout_ms;
        while (!(closed = rd_kafka_consumer_closed(rk)) && dw_mono_ms() < deadline) {
            /* Events, not callbacks: the queue also gets the prefetched messages, which
             * rd_kafka_queue_poll_callback() cannot serve (librdkafka asserts). They are
             * dropped: the next owner reads them again from the last checkpoint. */
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                rebalance_cb(rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                             rd_kafka_opaque(rk));
            }
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    if (!closed) {
        return -1; /* rd_kafka_destroy() would wait for the same thing: left to the exit */
    }
    rd_kafka_destroy(rk);
    return 0;
}
