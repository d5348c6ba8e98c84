/*
 * dw_kafka.h - the librdkafka adapter: client construction from the config, the
 * co-partitioning check, and a produce call that never drops a message on a full queue.
 */
#ifndef DW_KAFKA_H
#define DW_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "driftwatch/core/dw_config.h"

typedef void(dw_rebalance_cb_t)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque);

/** The consumer's librdkafka properties where the config's kafka.* sets none: key, value, ...,
 *  NULL (auto.offset.reset, client.id and the prefetch; bench_fetch reads them too). */
extern const char *const dw_kafka_consumer_defaults[];

/**
 * @brief The group consumer: group.id = cfg->group, manual offsets (Redis holds the truth),
 *        partition EOF events on (idle detection), range assignment (co-location, see
 *        docs/design.md), then every kafka.* key of the config.
 */
rd_kafka_t *dw_kafka_consumer_new(const struct dw_config *cfg, dw_rebalance_cb_t *rebalance_cb,
                                  void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief Closes the consumer (leaves the group; rebalance_cb, the one it was made with, revokes
 *        its partitions; prefetched messages are dropped)
 *        and destroys it, waiting at most timeout_ms: a coordinator that is gone or stalled
 *        made rd_kafka_consumer_close() wait without end. Past the bound the handle is left
 *        as it is, for the process to exit (rd_kafka_destroy() would wait too): only for a
 *        process that is stopping. The group reassigns its partitions once its session times
 *        out (session.timeout.ms).
 * @returns 0 closed and destroyed, -1 left at the bound (or the close could not start:
 *          logged).
 */
int dw_kafka_consumer_close(rd_kafka_t *rk, dw_rebalance_cb_t *rebalance_cb, int timeout_ms);

/** @brief The producer for dead letters and triggers (idempotent; delivery failures are logged,
 *         and settled by the outbox a message was produced through). */
rd_kafka_t *dw_kafka_producer_new(const struct dw_config *cfg, char *errstr, size_t errstr_size);

/**
 * @brief After a fatal error of the idempotent producer (it then refuses every message for
 *        good), replaces *rk by a new producer: the old one's queued and in-flight messages
 *        are purged, so that their delivery reports hand them back to their outboxes as failed,
 *        and it is destroyed. Whoever else holds the old handle must be given the new one.
 * @returns 1 replaced, 0 no fatal error, -1 not replaced yet (errstr says why; retry later).
 */
int dw_kafka_producer_renew(rd_kafka_t **rk, const struct dw_config *cfg, char *errstr,
                            size_t errstr_size);

/**
 * @brief Where to resume a partition whose fetch was answered "offset out of range" (the
 *        consumer's auto.offset.reset is "error"): `position` (the next offset driftwatch
 *        wants; negative: none yet) clamped into the partition's log start and end.
 * @returns 0 with *target (> position: the messages in between were deleted before they were
 *          consumed; < position: the log was truncated below it), or -1 (errstr) when the
 *          log's bounds could not be read.
 */
int dw_kafka_offset_in_log(rd_kafka_t *consumer, const char *topic, int32_t partition,
                           int64_t position, int64_t *target, char *errstr, size_t errstr_size);

/**
 * @brief Checks that both topics exist and have the same partition count.
 * @returns 0 and *n_parts, or -1 with a message saying what is wrong and how to fix it.
 */
int dw_kafka_check_copartitioned(rd_kafka_t *rk, const struct dw_config *cfg, int *n_parts,
                                 char *errstr, size_t errstr_size);

/** @brief Produces a copy of (key, value); on a full queue polls and retries (bounded). */
int dw_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, char *errstr, size_t errstr_size);

/*
 * Outboxes: the delivery outcome of every message produced through one (see dw_kafka.c). Used
 * from the thread that polls and flushes the producer (delivery reports are served there).
 */
struct dw_kafka_outbox;

enum dw_outbox_state {
    DW_OUTBOX_UNKNOWN = 0, /* never produced, or delivered long ago (not remembered) */
    DW_OUTBOX_IN_FLIGHT,   /* queued or sent, no delivery report yet */
    DW_OUTBOX_DELIVERED,   /* among the last 64 ids delivered */
    DW_OUTBOX_FAILED       /* kept among the failed messages */
};

/** @returns an empty outbox. */
struct dw_kafka_outbox *dw_kafka_outbox_new(void);

/** @brief Frees the outbox; call it once every producer it was used with is destroyed. */
void dw_kafka_outbox_free(struct dw_kafka_outbox *ob);

/**
 * @brief Produces a copy of (key, value) to topic as dw_kafka_produce() does, tracked by ob
 *        under `id` (NULL: no id). A message that cannot be queued, or whose delivery report
 *        is an error, is kept (copied) among ob's failed messages; none is ever dropped.
 * @returns 0 when queued, -1 when not (then already kept as failed; errstr says why).
 */
int dw_kafka_outbox_produce(rd_kafka_t *rk, struct dw_kafka_outbox *ob, const char *topic,
                            const char *id, const void *key, size_t key_len, const void *value,
                            size_t value_len, char *errstr, size_t errstr_size);

/**
 * @brief Produces every failed message of ob again (in their order) and forgets the copies.
 * @returns 0, or -1 when some could not be queued (they are kept as failed again).
 */
int dw_kafka_outbox_retry(rd_kafka_t *rk, struct dw_kafka_outbox *ob, char *errstr,
                          size_t errstr_size);

/** @returns what ob knows of the message produced with `id`. */
enum dw_outbox_state dw_kafka_outbox_state(const struct dw_kafka_outbox *ob, const char *id);

/** @brief Forgets the failed messages produced with `id` (the caller makes a new one). */
void dw_kafka_outbox_discard(struct dw_kafka_outbox *ob, const char *id);

/** @returns the messages of ob without a delivery report yet. */
size_t dw_kafka_outbox_in_flight(const struct dw_kafka_outbox *ob);

/** @returns the failed messages kept by ob, and their key and value bytes in *bytes. */
size_t dw_kafka_outbox_failed(const struct dw_kafka_outbox *ob, size_t *bytes);

/**
 * @brief The group's committed offsets of partition p of two topics (blocking, bounded by
 *        timeout_ms). *off_a / *off_b are -1 where nothing is committed.
 * @returns 0, or -1 when the coordinator did not answer.
 */
int dw_kafka_committed(rd_kafka_t *rk, const char *topic_a, const char *topic_b, int32_t p,
                       int timeout_ms, int64_t *off_a, int64_t *off_b);

#endif
