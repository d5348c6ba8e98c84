/*
 * dw_kafka.c - librdkafka client construction and the co-partitioning check.
 *
 * Why the range assignor: driftwatch keeps the state of partition P of both topics together
 * (a prediction and its label share a partition because both topics are keyed by
 * prediction_id). Only the range assignor guarantees that one consumer receives partition P of
 * both co-partitioned topics; cooperative-sticky balances each topic on its own and can split
 * them. See docs/design.md.
 */
#include "driftwatch/dw_kafka.h"

#include <stdatomic.h>
#include <string.h>

#include "driftwatch/dw_common.h"
#include "driftwatch/dw_log.h"

#define PRODUCE_RETRY_MS 100 /* poll time when the local producer queue is full */
#define PRODUCE_MAX_RETRIES 300

static atomic_long delivery_failures;

long dw_kafka_delivery_failures(void)
{
    return atomic_load(&delivery_failures);
}

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

rd_kafka_t *dw_kafka_consumer_new(const struct dw_config *cfg, dw_rebalance_cb_t *rebalance_cb,
                                  void *opaque, char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {"auto.offset.reset", "earliest", "client.id",
                                           "driftwatch", NULL};
    rd_kafka_conf_t *conf = base_conf(cfg, defaults, errstr, errstr_size);
    if (!conf) {
        return NULL;
    }
    /* Keys driftwatch controls itself (the config loader rejects them from the file). */
    if (conf_set(conf, "group.id", cfg->group, errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) != 0 ||
        conf_set(conf, "partition.assignment.strategy", "range", errstr, errstr_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (rk) {
        rd_kafka_poll_set_consumer(rk);
    }
    return rk;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    if (rkm->err) {
        atomic_fetch_add(&delivery_failures, 1);
        dw_log_limited("kafka_delivery", 5, DW_LOG_ERROR, "kafka delivery failed", "{s:s,s:s}",
                       "topic", rd_kafka_topic_name(rkm->rkt), "error", rd_kafka_err2str(rkm->err));
    }
}

rd_kafka_t *dw_kafka_producer_new(const struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {"enable.idempotence", "true",       "linger.ms", "20",
                                           "client.id",          "driftwatch", NULL};
    /* Consumer-only keys from kafka.* would make the producer warn; they are harmless. */
    rd_kafka_conf_t *conf = base_conf(cfg, defaults, errstr, errstr_size);
    if (!conf) {
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    return new_client(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
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

int dw_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, char *errstr, size_t errstr_size)
{
    for (int attempt = 0; attempt < PRODUCE_MAX_RETRIES; attempt++) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key_len),
                              RD_KAFKA_V_VALUE((void *)value, value_len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
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
