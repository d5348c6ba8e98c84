/*
 * test_fetchwake.c - the fetch waker (dw_fetchwake) against librdkafka's mock cluster started in
 * this process (loopback, one broker). A consumer slower than the fetcher, with a small prefetch
 * (queued.min.messages 1,000; the mock answers a fetch with one 500-message set), reads 12,000
 * messages as run's loop does (a batch, then the queue's length to the waker, then 2 ms of
 * "work" per 100 messages). Without the waker librdkafka 2.0.2 stops fetching at the threshold
 * and looks again only when its broker thread next wakes, up to a second later: the control
 * case spends seconds waiting with the log not yet read, and fails the test if it does not (then
 * this librdkafka needs no waker, and the test says so). With the waker the same read waits
 * almost nothing; a consumer that has caught up sends no wake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_fetchwake.h"

#define TOPIC "wake-test"
#define COUNT 12000       /* messages: 12 refills of the 1,000-message prefetch */
#define SET 500           /* messages per message set (one set per fetch from the mock) */
#define BATCH 100         /* messages per consume call */
#define WORK_NS 2000000   /* "work" per batch: 50,000 messages a second, slower than the fetch */
#define POLL_MS 100       /* as RUN_POLL_MS */
#define WAIT_LIMIT_S 1.5  /* waiting allowed with the waker (expected: a few milliseconds) */
#define CONTROL_MIN_S 3.0 /* waiting expected without it (about a second per refill) */

struct fixture {
    rd_kafka_t *mock_rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
};

static void set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[256];
    assert_int_equal(rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "log_level", "0");
    f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(f->mock_rk);
    f->mc = rd_kafka_mock_cluster_new(f->mock_rk, 1);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, TOPIC, 1, 1), 0);
    conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc));
    set(conf, "batch.num.messages", "500");
    set(conf, "linger.ms", "50");
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(p);
    char value[100];
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < COUNT; i++) {
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE(value, sizeof(value)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        if (i % SET == SET - 1) {
            assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    }
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->mock_rk);
    free(f);
    return 0;
}

/* A consumer of the topic's partition 0 from its start (none assigned: assign 0), with a
 * 1,000-message prefetch. */
static rd_kafka_t *consumer_of(struct fixture *f, int assign)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc));
    set(conf, "group.id", "wake-test");
    set(conf, "enable.auto.commit", "false");
    set(conf, "queued.min.messages", "1000");
    set(conf, "log_level", "0");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, assign ? parts : NULL), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

static rd_kafka_t *consumer_new(struct fixture *f)
{
    return consumer_of(f, 1);
}

static void work(void)
{
    struct timespec ts = {0, WORK_NS};
    nanosleep(&ts, NULL);
}

/* Reads the whole topic as run's loop does (fw may be NULL: no waker). @returns the seconds
 * spent in consume calls that returned nothing, between the first message and the last. */
static double read_all(rd_kafka_t *rk, struct dw_fetchwake *fw)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *batch[BATCH];
    long got = 0;
    double waited = 0, deadline = dw_mono_s() + 120;
    while (got < COUNT && dw_mono_s() < deadline) {
        double t0 = dw_mono_s();
        ssize_t n = rd_kafka_consume_batch_queue(q, POLL_MS, batch, BATCH);
        if (fw) {
            dw_fetchwake_check(fw, rd_kafka_queue_length(q));
        }
        long before = got;
        for (ssize_t i = 0; i < n; i++) {
            got += !batch[i]->err;
            rd_kafka_message_destroy(batch[i]);
        }
        if (got == before && got > 0) {
            waited += dw_mono_s() - t0;
        }
        if (got > before) {
            work();
        }
    }
    rd_kafka_queue_destroy(q);
    assert_int_equal(got, COUNT);
    return waited;
}

static void test_without_waker_the_fetch_stalls(void **state)
{
    rd_kafka_t *rk = consumer_new(*state);
    double waited = read_all(rk, NULL);
    print_message("without the waker: %.2f s waiting with the log not yet read\n", waited);
    /* if this fails, this librdkafka wakes its fetchers itself: the waker is not needed */
    assert_true(waited > CONTROL_MIN_S);
    rd_kafka_destroy(rk);
}

static void test_waker_keeps_the_fetch_going(void **state)
{
    rd_kafka_t *rk = consumer_new(*state);
    char errstr[256];
    struct dw_fetchwake *fw = dw_fetchwake_start(rk, errstr, sizeof(errstr));
    assert_non_null(fw);
    assert_int_equal(dw_fetchwake_threshold(fw), 1000);
    double waited = read_all(rk, fw);
    print_message("with the waker: %.2f s waiting, %lu wakes\n", waited, dw_fetchwake_sent(fw));
    assert_true(waited < WAIT_LIMIT_S);
    assert_true(dw_fetchwake_sent(fw) > 0);
    /* caught up: the queue never fills again, no wake is sent (the first polls let a wake
     * asked for at the end finish) */
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    unsigned long sent = 0;
    for (int i = 0; i < 10; i++) {
        if (i == 5) {
            sent = dw_fetchwake_sent(fw);
        }
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, POLL_MS);
        if (m) {
            rd_kafka_message_destroy(m);
        }
        dw_fetchwake_check(fw, rd_kafka_queue_length(q));
    }
    rd_kafka_queue_destroy(q);
    assert_int_equal(dw_fetchwake_sent(fw), sent);
    dw_fetchwake_stop(fw);
    rd_kafka_destroy(rk);
}

/* A wake asked for while no partition is assigned sends nothing, and is not counted as sent
 * (driftwatch_kafka_fetch_wakes_total{result="ok"} counted it). */
static void test_no_wake_without_partitions(void **state)
{
    rd_kafka_t *rk = consumer_of(*state, 0);
    char errstr[256];
    struct dw_fetchwake *fw = dw_fetchwake_start(rk, errstr, sizeof(errstr));
    assert_non_null(fw);
    dw_fetchwake_check(fw, dw_fetchwake_threshold(fw)); /* full, */
    dw_fetchwake_check(fw, 0);                          /* then fallen: a wake is asked for */
    for (int i = 0; i < 500 && dw_fetchwake_taken(fw) == 0; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(dw_fetchwake_taken(fw), 1);
    assert_int_equal(dw_fetchwake_sent(fw), 0);
    dw_fetchwake_stop(fw);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_without_waker_the_fetch_stalls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waker_keeps_the_fetch_going, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_wake_without_partitions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
