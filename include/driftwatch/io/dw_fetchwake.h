/*
 * dw_fetchwake.h - wakes librdkafka's fetchers when the consumer queue runs low (see
 * dw_fetchwake.c for why).
 */
#ifndef DW_FETCHWAKE_H
#define DW_FETCHWAKE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

struct dw_fetchwake;

/**
 * @brief Starts the waker of a group consumer: a thread that sleeps until
 *        dw_fetchwake_check() asks it to wake the fetchers.
 * @returns the waker, or NULL (errstr) when its thread could not start.
 */
struct dw_fetchwake *dw_fetchwake_start(rd_kafka_t *consumer, char *errstr, size_t errstr_size);

/**
 * @brief After each consume call, with the consumer queue's length
 *        (rd_kafka_queue_length()): once the queue has held queued.min.messages or more and
 *        now holds fewer, asks the thread to wake the fetchers (at most one request at a time;
 *        one per fall below the threshold). Cheap: a comparison, and a mutex only on a fall.
 * @locality the thread that consumes
 */
void dw_fetchwake_check(struct dw_fetchwake *fw, size_t queued);

/** @returns the queue length below which the fetchers are woken (queued.min.messages). */
size_t dw_fetchwake_threshold(const struct dw_fetchwake *fw);

/** @returns how many wakes were sent so far (each one a request to every leader; a wake asked
 *           for while no partition is assigned sends nothing and is not counted). */
unsigned long dw_fetchwake_sent(struct dw_fetchwake *fw);

/** @returns how many wakes the thread has taken up so far, sent or not. */
unsigned long dw_fetchwake_taken(struct dw_fetchwake *fw);

/**
 * @brief Stops the thread (waits for a wake in flight: at most its request timeout) and frees
 *        the waker. Call it before the consumer is closed. NULL is a no-op.
 */
void dw_fetchwake_stop(struct dw_fetchwake *fw);

#endif
