/*
 * bench_fetch.c - the fetch path's ceiling: a librdkafka consumer that does nothing with its
 * messages (bench_fetch; bench/run.sh runs it after driftwatch with BENCH_FETCH=1).
 *
 * Why: in bench/run.sh driftwatch's event loop waits in its poll for about half of the catch-up
 * (the loop's phase metrics), so messages per second from the first message may be bounded by
 * how fast librdkafka and the mock broker deliver, not by driftwatch. This program measures that
 * bound on the same topics, the same machine and the same consume call as run's loop
 * (rd_kafka_consume_batch_queue(), RUN_BATCH messages, RUN_POLL_MS): it subscribes in a group of
 * its own, reads until COUNT messages have come (end-of-partition events do not count), and
 * prints messages per second from the first message and its CPU seconds. It is not a test.
 * With SPIN_NS it also spins that long per message, standing in for driftwatch's work: the rate
 * that a consumer of that cost gets from the same fetch path. With FETCHWAKE=1 it wakes the
 * fetchers as run does (dw_fetchwake: docs/design.md, "Waking the fetcher"). It also prints its
 * peak RSS: librdkafka's prefetch is most of it. Its consumer is configured as run's: run's
 * defaults (dw_kafka_consumer_defaults: the prefetch), offsets not stored per message,
 * end-of-partition events; -X overrides any of it.
 *
 *   bench_fetch BROKERS COUNT TOPIC... [-X key=value]...   (environment: SPIN_NS, FETCHWAKE)
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_fetchwake.h"
#include "driftwatch/io/dw_kafka.h"

#define BATCH 2048  /* messages per consume call, as RUN_BATCH in dw_run.c */
#define POLL_MS 100 /* as RUN_POLL_MS */

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "bench_fetch: %s\n", err);
        return -1;
    }
    return 0;
}

/* the consumer of argv's brokers, group and -X properties, subscribed to argv's topics */
static rd_kafka_t *consumer_new(int argc, char **argv)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; dw_kafka_consumer_defaults[i]; i += 2) {
        if (set(conf, dw_kafka_consumer_defaults[i], dw_kafka_consumer_defaults[i + 1]) != 0) {
            return NULL;
        }
    }
    if (set(conf, "bootstrap.servers", argv[1]) != 0 || set(conf, "group.id", "bench-fetch") ||
        set(conf, "enable.auto.commit", "false") ||
        set(conf, "enable.auto.offset.store", "false") ||
        set(conf, "enable.partition.eof", "true")) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(argc);
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "-X") == 0 && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');
            if (!eq) {
                fprintf(stderr, "bench_fetch: -X %s: key=value expected\n", argv[i]);
                return NULL;
            }
            *eq = '\0';
            if (set(conf, argv[i], eq + 1) != 0) {
                return NULL;
            }
        } else {
            rd_kafka_topic_partition_list_add(topics, argv[i], RD_KAFKA_PARTITION_UA);
        }
    }
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "bench_fetch: %s\n", err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        fprintf(stderr, "bench_fetch: subscribe: %s\n", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

int main(int argc, char **argv)
{
    long long count = argc > 2 ? atoll(argv[2]) : 0;
    if (argc < 4 || count <= 0) {
        fprintf(stderr, "usage: bench_fetch BROKERS COUNT TOPIC... [-X key=value]...\n");
        return 2;
    }
    rd_kafka_t *rk = consumer_new(argc, argv);
    if (!rk) {
        return 2;
    }
    const char *spin_env = getenv("SPIN_NS");
    double spin_s = spin_env ? atof(spin_env) * 1e-9 : 0;
    double loop_wait = 0;
    const char *wake_env = getenv("FETCHWAKE");
    struct dw_fetchwake *fw = NULL;
    char err[256];
    if (wake_env && strcmp(wake_env, "1") == 0 &&
        !(fw = dw_fetchwake_start(rk, err, sizeof(err)))) {
        fprintf(stderr, "bench_fetch: %s\n", err);
        return 2;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *batch[BATCH];
    long long got = 0;
    double first = 0, cpu0 = 0;
    while (got < count) {
        double t0 = dw_mono_s();
        ssize_t n = rd_kafka_consume_batch_queue(q, POLL_MS, batch, BATCH);
        if (fw) {
            dw_fetchwake_check(fw, rd_kafka_queue_length(q));
        }
        if (got > 0) {
            loop_wait += dw_mono_s() - t0;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (!batch[i]->err) {
                if (got++ == 0) {
                    first = dw_mono_s();
                    cpu0 = cpu_s();
                }
                for (double until = dw_mono_s() + spin_s; spin_s > 0 && dw_mono_s() < until;) {
                }
            }
            rd_kafka_message_destroy(batch[i]);
        }
    }
    double secs = dw_mono_s() - first;
    double cpu = cpu_s() - cpu0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(
        "bench: fetch ceiling (bench_fetch): %lld messages in %.2f s "
        "from the first message = %.0f msgs/s; %.2f CPU-s (%.2f us per message); spin %.0f ns per "
        "message; %.2f s waiting in the consume call; %lu fetch wakes; peak RSS %ld MiB\n",
        got, secs, (double)got / secs, cpu, cpu * 1e6 / (double)got, spin_s * 1e9, loop_wait,
        fw ? dw_fetchwake_sent(fw) : 0UL, ru.ru_maxrss / 1024);
    dw_fetchwake_stop(fw);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
