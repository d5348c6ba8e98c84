/*
 * dw_kafka.h - the librdkafka adapter: client construction from the config, the
 * co-partitioning check, and a produce call that never drops a message on a full queue.
 */
#ifndef DW_KAFKA_H
#define DW_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "driftwatch/dw_config.h"

typedef void(dw_rebalance_cb_t)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque);

/**
 * @brief The group consumer: group.id = cfg->group, manual offsets (Redis holds the truth),
 *        partition EOF events on (idle detection), range assignment (co-location, see
 *        docs/design.md), then every kafka.* key of the config.
 */
rd_kafka_t *dw_kafka_consumer_new(const struct dw_config *cfg, dw_rebalance_cb_t *rebalance_cb,
                                  void *opaque, char *errstr, size_t errstr_size);

/** @brief The producer for dead letters and triggers (idempotent, delivery reports counted). */
rd_kafka_t *dw_kafka_producer_new(const struct dw_config *cfg, char *errstr, size_t errstr_size);

/**
 * @brief Checks that both topics exist and have the same partition count.
 * @returns 0 and *n_parts, or -1 with a message saying what is wrong and how to fix it.
 */
int dw_kafka_check_copartitioned(rd_kafka_t *rk, const struct dw_config *cfg, int *n_parts,
                                 char *errstr, size_t errstr_size);

/** @brief Produces a copy of (key, value); on a full queue polls and retries (bounded). */
int dw_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, char *errstr, size_t errstr_size);

/** @returns delivery failures reported so far by the producer's delivery callback. */
long dw_kafka_delivery_failures(void);

/**
 * @brief The group's committed offsets of partition p of two topics (blocking, bounded by
 *        timeout_ms). *off_a / *off_b are -1 where nothing is committed.
 * @returns 0, or -1 when the coordinator did not answer.
 */
int dw_kafka_committed(rd_kafka_t *rk, const char *topic_a, const char *topic_b, int32_t p,
                       int timeout_ms, int64_t *off_a, int64_t *off_b);

#endif
