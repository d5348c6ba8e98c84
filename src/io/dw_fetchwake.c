/*
 * dw_fetchwake.c - wakes librdkafka's fetchers when the consumer queue runs low.
 *
 * Why: librdkafka (2.0.2, Debian 12's) stops fetching once the consumer queue holds
 * queued.min.messages messages (or queued.max.messages.kbytes), and looks at the queue again
 * only when its broker thread next wakes: on an operation or a socket event, or after at most
 * one second. Nothing wakes it when the application drains the queue (a fetch in flight does:
 * its response re-runs the decision). A consumer slower than the fetcher, which is every
 * consumer in a catch-up, therefore runs its queue dry and waits up to a second, again and
 * again: bench/RESULTS.md measured half of a catch-up spent so, and a larger prefetch as the
 * only cure, which costs the memory the prefetch holds. librdkafka 2.2.0 added
 * fetch.queue.backoff.ms for this; Debian 12 does not have it.
 *
 * What: when the queue falls below queued.min.messages after having reached it (the only case
 * in which the fetchers may be asleep on the threshold), a thread of ours sends one
 * ListOffsets request for the latest offsets of the assignment (rd_kafka_offsets_for_times()
 * with OFFSET_END: the cheapest request that reaches every partition leader, the brokers that
 * fetch; a broker needs no index lookup for it). Queueing a request is an operation on the
 * broker thread: it wakes, serves it, and runs its fetch decision again, now below the
 * threshold. The answer is not used. At most one request is in flight (the call blocks, so it
 * runs on this thread, not on the event loop), and one is sent per fall below the threshold,
 * about ten a second in bench_fetch's catch-up with the default prefetch; a caught-up
 * consumer never fills its queue and sends none. A failed or slow wake costs nothing but the
 * wait librdkafka would have had anyway (counted:
 * driftwatch_kafka_fetch_wakes_total{result="failed"}).
 *
 * With follower fetching (client.rack, KIP-392) the broker a partition is fetched from may not
 * be its leader; its fetcher then wakes on librdkafka's own clock as before.
 */
#include "driftwatch/io/dw_fetchwake.h"

#include <pthread.h>
#include <stdlib.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_metrics.h"
#include "driftwatch/io/dw_log.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define FETCHWAKE_TIMEOUT_MS 1000 /* a wake's ListOffsets request, milliseconds */

struct dw_fetchwake {
    rd_kafka_t *rk;
    size_t threshold; /* queued.min.messages in effect */
    int armed;        /* the queue reached the threshold since the last wake (consuming thread) */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int requested, stop; /* under lock */
    unsigned long sent;  /* under lock */
    unsigned long taken; /* under lock: wakes taken up, sent or not */
    struct dw_metric *ok, *failed;
};

static size_t conf_threshold(rd_kafka_t *rk)
{
    char buf[64];
    size_t size = sizeof(buf);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "queued.min.messages", buf, &size) !=
        RD_KAFKA_CONF_OK) {
        return 100000; /* librdkafka's default */
    }
    return (size_t)strtoull(buf, NULL, 10);
}

/* One wake: a ListOffsets request for the latest offsets of the assignment. @returns 1 when it
 * was sent (or failed), 0 when no partition is assigned: nothing to wake, nothing counted. */
static int wake(struct dw_fetchwake *fw)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(fw->rk, &parts);
    int none = !err && parts->cnt == 0;
    if (!err && !none) {
        for (int i = 0; i < parts->cnt; i++) {
            parts->elems[i].offset = RD_KAFKA_OFFSET_END; /* "latest": no index lookup */
        }
        err = rd_kafka_offsets_for_times(fw->rk, parts, FETCHWAKE_TIMEOUT_MS);
    }
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (none) {
        return 0;
    }
    dw_metric_inc(err ? fw->failed : fw->ok);
    if (err) {
        dw_log_limited("kafka_fetch_wake", 1, DW_LOG_WARN,
                       "waking the fetchers failed; they fetch again within librdkafka's second",
                       "{s:s}", "error", rd_kafka_err2str(err));
    }
    return 1;
}

static void *fetchwake_main(void *arg)
{
    struct dw_fetchwake *fw = arg;
    pthread_mutex_lock(&fw->lock);
    while (!fw->stop) {
        if (!fw->requested) {
            pthread_cond_wait(&fw->cond, &fw->lock);
            continue;
        }
        fw->requested = 0;
        pthread_mutex_unlock(&fw->lock);
        int sent = wake(fw);
        pthread_mutex_lock(&fw->lock);
        fw->sent += (unsigned long)sent;
        fw->taken++;
    }
    pthread_mutex_unlock(&fw->lock);
    return NULL;
}

struct dw_fetchwake *dw_fetchwake_start(rd_kafka_t *consumer, char *errstr, size_t errstr_size)
{
    struct dw_fetchwake *fw = dw_calloc(1, sizeof(*fw));
    fw->rk = consumer;
    fw->threshold = conf_threshold(consumer);
    const char *help = "Requests sent to wake librdkafka's fetchers when the consumer queue fell "
                       "below queued.min.messages, by result (docs/design.md).";
    fw->ok = dw_metrics_series("driftwatch_kafka_fetch_wakes_total", help, DW_METRIC_COUNTER,
                               "result=\"ok\"");
    fw->failed = dw_metrics_series("driftwatch_kafka_fetch_wakes_total", help, DW_METRIC_COUNTER,
                                   "result=\"failed\"");
    pthread_mutex_init(&fw->lock, NULL);
    pthread_cond_init(&fw->cond, NULL);
    if (pthread_create(&fw->thread, NULL, fetchwake_main, fw) != 0) {
        pthread_cond_destroy(&fw->cond);
        pthread_mutex_destroy(&fw->lock);
        free(fw);
        dw_err(errstr, errstr_size, "the fetch waker's thread could not start");
        return NULL;
    }
    return fw;
}

void dw_fetchwake_check(struct dw_fetchwake *fw, size_t queued)
{
    if (queued >= fw->threshold) {
        fw->armed = 1;
        return;
    }
    if (!fw->armed) {
        return;
    }
    fw->armed = 0;
    pthread_mutex_lock(&fw->lock);
    fw->requested = 1; /* a request not yet taken stays one request */
    pthread_cond_signal(&fw->cond);
    pthread_mutex_unlock(&fw->lock);
}

size_t dw_fetchwake_threshold(const struct dw_fetchwake *fw)
{
    return fw->threshold;
}

unsigned long dw_fetchwake_sent(struct dw_fetchwake *fw)
{
    pthread_mutex_lock(&fw->lock);
    unsigned long n = fw->sent;
    pthread_mutex_unlock(&fw->lock);
    return n;
}

unsigned long dw_fetchwake_taken(struct dw_fetchwake *fw)
{
    pthread_mutex_lock(&fw->lock);
    unsigned long n = fw->taken;
    pthread_mutex_unlock(&fw->lock);
    return n;
}

void dw_fetchwake_stop(struct dw_fetchwake *fw)
{
    if (!fw) {
        return;
    }
    pthread_mutex_lock(&fw->lock);
    fw->stop = 1;
    pthread_cond_signal(&fw->cond);
    pthread_mutex_unlock(&fw->lock);
    pthread_join(fw->thread, NULL);
    pthread_cond_destroy(&fw->cond);
    pthread_mutex_destroy(&fw->lock);
    free(fw);
}
