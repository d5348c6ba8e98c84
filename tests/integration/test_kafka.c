/*
 * test_kafka.c - the librdkafka adapter (dw_kafka) against librdkafka's mock cluster started in
 * this process (loopback, one broker) with its fault API. The delivery outcome of messages
 * produced through an outbox: a message delivered; one rejected by the broker (kept, produced
 * again, then in the topic once); one whose answer comes late (in flight, then delivered); a failed
 * copy discarded; an outbox freed while messages are still in flight (no leak, no late callback);
 * a fatal error of the idempotent producer (it refuses everything from then on), after which
 * dw_kafka_producer_renew() gives a working producer and no message is lost. Where a
 * partition resumes after "offset out of range" (dw_kafka_offset_in_log): inside the log, at
 * its end when beyond it, at its start when the mock's size limit dropped the first messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/io/dw_kafka.h"

#define TOPIC "outbox-test"
#define FLUSH_MS 10000             /* long enough for any answer of the mock, milliseconds */
#define SLOW_MS 3000               /* a late answer, milliseconds */
#define MOCK_BIG_BYTES (256 << 10) /* bytes of one large message */
#define MOCK_BIG_COUNT 64          /* 16 MiB: more than a partition of the mock keeps */

struct fixture {
    rd_kafka_t *mock_rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    struct dw_config cfg;
    rd_kafka_t *producer;
    struct dw_kafka_outbox *ob;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(f->mock_rk);
    f->mc = rd_kafka_mock_cluster_new(f->mock_rk, 1);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, TOPIC, 1, 1), 0);
    dw_config_defaults(&f->cfg);
    f->cfg.kafka = calloc(2, sizeof(*f->cfg.kafka));
    f->cfg.kafka[0].key = strdup("bootstrap.servers");
    f->cfg.kafka[0].value = strdup(rd_kafka_mock_cluster_bootstraps(f->mc));
    f->cfg.kafka[1].key = strdup("log_level");
    f->cfg.kafka[1].value = strdup("0");
    f->cfg.n_kafka = 2;
    f->producer = dw_kafka_producer_new(&f->cfg, errstr, sizeof(errstr));
    assert_non_null(f->producer);
    f->ob = dw_kafka_outbox_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rd_kafka_destroy(f->producer);
    dw_kafka_outbox_free(f->ob); /* after the producer: what is still in flight is freed */
    dw_config_free(&f->cfg);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->mock_rk);
    free(f);
    return 0;
}

static void produce(struct fixture *f, const char *id, const char *value)
{
    char errstr[256];
    assert_int_equal(dw_kafka_outbox_produce(f->producer, f->ob, TOPIC, id, "k", 1, value,
                                             strlen(value), errstr, sizeof(errstr)),
                     0);
}

/* Messages in the topic (its high watermark). */
static int64_t topic_messages(struct fixture *f)
{
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(f->producer, TOPIC, 0, &lo, &hi, FLUSH_MS),
                     0);
    return hi;
}

static void test_delivered(void **state)
{
    struct fixture *f = *state;
    produce(f, "a", "first");
    assert_int_equal(dw_kafka_outbox_state(f->ob, "a"), DW_OUTBOX_IN_FLIGHT);
    assert_int_equal(dw_kafka_outbox_in_flight(f->ob), 1);
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "a"), DW_OUTBOX_DELIVERED);
    assert_int_equal(dw_kafka_outbox_in_flight(f->ob), 0);
    assert_int_equal(dw_kafka_outbox_failed(f->ob, NULL), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "never"), DW_OUTBOX_UNKNOWN);
    assert_int_equal(topic_messages(f), 1);
}

static void test_rejected_kept_and_produced_again(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_push_request_errors(f->mc, 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    produce(f, "b", "rejected once");
    produce(f, NULL, "no id");
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    size_t bytes = 0;
    assert_int_equal(dw_kafka_outbox_failed(f->ob, &bytes), 2); /* one batch, both failed */
    assert_int_equal(bytes, 1 + strlen("rejected once") + 1 + strlen("no id"));
    assert_int_equal(dw_kafka_outbox_state(f->ob, "b"), DW_OUTBOX_FAILED);
    assert_int_equal(topic_messages(f), 0);
    char errstr[256];
    assert_int_equal(dw_kafka_outbox_retry(f->producer, f->ob, errstr, sizeof(errstr)), 0);
    assert_int_equal(dw_kafka_outbox_failed(f->ob, NULL), 0);
    assert_int_equal(dw_kafka_outbox_in_flight(f->ob), 2);
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "b"), DW_OUTBOX_DELIVERED);
    assert_int_equal(dw_kafka_outbox_failed(f->ob, NULL), 0);
    assert_int_equal(topic_messages(f), 2); /* each once */
}

static void test_late_answer_stays_in_flight(void **state)
{
    struct fixture *f = *state;
    /* the first answer needs a connection: make one before the slow request */
    produce(f, NULL, "warm up");
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         f->mc, 1, 0 /* Produce */, 1, RD_KAFKA_RESP_ERR_NO_ERROR, SLOW_MS),
                     0);
    produce(f, "c", "slow");
    assert_int_not_equal(rd_kafka_flush(f->producer, 200), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "c"), DW_OUTBOX_IN_FLIGHT);
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "c"), DW_OUTBOX_DELIVERED);
    assert_int_equal(topic_messages(f), 2);
}

static void test_discard(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_push_request_errors(f->mc, 0, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    produce(f, "d", "dropped by its owner");
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "d"), DW_OUTBOX_FAILED);
    dw_kafka_outbox_discard(f->ob, "d");
    size_t bytes = 1;
    assert_int_equal(dw_kafka_outbox_failed(f->ob, &bytes), 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "d"), DW_OUTBOX_UNKNOWN);
}

static void test_freed_with_messages_in_flight(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 1), 0);
    produce(f, "e", "never delivered");
    produce(f, NULL, "nor this one");
    assert_int_equal(dw_kafka_outbox_in_flight(f->ob), 2);
    /* teardown destroys the producer, then frees the outbox: no leak (ASan), no late report */
}

static void test_fatal_producer_renewed(void **state)
{
    struct fixture *f = *state;
    produce(f, NULL, "warm up"); /* the producer id is acquired */
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    char errstr[512];
    assert_int_equal(dw_kafka_producer_renew(&f->producer, &f->cfg, errstr, sizeof(errstr)), 0);
    /* a sequence error on the first batch in flight is fatal for an idempotent producer */
    rd_kafka_mock_push_request_errors(f->mc, 0, 1, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    produce(f, "f", "before the fatal error");
    rd_kafka_flush(f->producer, FLUSH_MS);
    assert_int_not_equal(rd_kafka_fatal_error(f->producer, NULL, 0), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "f"), DW_OUTBOX_FAILED);
    /* the fatal producer refuses even to queue: kept as failed too */
    assert_int_equal(dw_kafka_outbox_produce(f->producer, f->ob, TOPIC, "g", "k", 1, "after", 5,
                                             errstr, sizeof(errstr)),
                     -1);
    assert_int_equal(dw_kafka_outbox_failed(f->ob, NULL), 2);
    rd_kafka_t *old = f->producer;
    assert_int_equal(dw_kafka_producer_renew(&f->producer, &f->cfg, errstr, sizeof(errstr)), 1);
    assert_ptr_not_equal(f->producer, old);
    assert_int_equal(rd_kafka_fatal_error(f->producer, NULL, 0), 0);
    assert_int_equal(dw_kafka_outbox_retry(f->producer, f->ob, errstr, sizeof(errstr)), 0);
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "f"), DW_OUTBOX_DELIVERED);
    assert_int_equal(dw_kafka_outbox_state(f->ob, "g"), DW_OUTBOX_DELIVERED);
    assert_int_equal(topic_messages(f), 3);
}

static void test_offset_in_log(void **state)
{
    struct fixture *f = *state;
    char errstr[512];
    int64_t target = 0;
    for (int i = 0; i < 10; i++) {
        produce(f, NULL, "m");
    }
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(
        dw_kafka_offset_in_log(f->producer, TOPIC, 0, 4, &target, errstr, sizeof(errstr)), 0);
    assert_int_equal(target, 4);
    assert_int_equal(
        dw_kafka_offset_in_log(f->producer, TOPIC, 0, 25, &target, errstr, sizeof(errstr)), 0);
    assert_int_equal(target, 10); /* truncated below 25: from its end */
    assert_int_equal(
        dw_kafka_offset_in_log(f->producer, TOPIC, 0, -1, &target, errstr, sizeof(errstr)), 0);
    assert_int_equal(target, 0);
    /* the mock keeps a few MiB a partition: older messages are dropped, as by retention */
    char errs[256];
    char *big = calloc(1, MOCK_BIG_BYTES);
    for (int i = 0; i < MOCK_BIG_COUNT; i++) {
        assert_int_equal(
            dw_kafka_produce(f->producer, TOPIC, NULL, 0, big, MOCK_BIG_BYTES, errs, sizeof(errs)),
            0);
    }
    free(big);
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    assert_int_equal(
        dw_kafka_offset_in_log(f->producer, TOPIC, 0, 4, &target, errstr, sizeof(errstr)), 0);
    assert_true(target > 4); /* the messages 4 .. target-1 are gone */
}

/* The consumer's value of a librdkafka property. */
static void assert_consumer_conf(struct dw_config *cfg, const char *key, const char *want)
{
    char errstr[512], got[64];
    size_t size = sizeof(got);
    rd_kafka_t *rk = dw_kafka_consumer_new(cfg, NULL, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    assert_int_equal(rd_kafka_conf_get(rd_kafka_conf(rk), key, got, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(got, want);
    rd_kafka_destroy(rk);
}

/* The consumer's small prefetch (woken by dw_fetchwake), in messages and in bytes, and kafka.*
 * above it. */
static void test_consumer_prefetch(void **state)
{
    struct fixture *f = *state;
    assert_consumer_conf(&f->cfg, "queued.min.messages", "20000");
    assert_consumer_conf(&f->cfg, "fetch.max.bytes", "8388608");
    assert_consumer_conf(&f->cfg, "queued.max.messages.kbytes", "16384");
    f->cfg.kafka = realloc(f->cfg.kafka, 3 * sizeof(*f->cfg.kafka));
    f->cfg.kafka[2].key = strdup("queued.min.messages");
    f->cfg.kafka[2].value = strdup("500");
    f->cfg.n_kafka = 3;
    assert_consumer_conf(&f->cfg, "queued.min.messages", "500");
}

static int g_revoked; /* revocations seen by close_rebalance() */

/* As run's rebalance callback does, without state: take what is assigned (from the start),
 * give up the rest. */
static void close_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    int assigned = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    g_revoked += !assigned;
    for (int i = 0; assigned && i < parts->cnt; i++) {
        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* run's come from Redis */
    }
    rd_kafka_assign(rk, assigned ? parts : NULL);
}

/* A consumer closed with messages still prefetched: its close queue gets them with the
 * revocation, and librdkafka aborted ("rd_kafka_q_serve: assert: res !=
 * RD_KAFKA_OP_RES_PASS") when the queue was served by callbacks. It closes, within its bound,
 * calling the rebalance callback once. */
static void test_close_with_prefetched_messages(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 2000; i++) {
        produce(f, NULL, "a message the consumer fetches ahead");
    }
    assert_int_equal(rd_kafka_flush(f->producer, FLUSH_MS), 0);
    free(f->cfg.group);
    f->cfg.group = strdup("close-test");
    char errstr[512];
    rd_kafka_t *rk = dw_kafka_consumer_new(&f->cfg, close_rebalance, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, TOPIC, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, topics), 0);
    rd_kafka_topic_partition_list_destroy(topics);
    rd_kafka_message_t *m = NULL;
    for (int i = 0; i < 200 && !(m && !m->err); i++) {
        if (m) {
            rd_kafka_message_destroy(m);
        }
        m = rd_kafka_consumer_poll(rk, 100);
    }
    assert_non_null(m);
    assert_int_equal(m->err, 0);
    rd_kafka_message_destroy(m);
    g_revoked = 0;
    assert_int_equal(dw_kafka_consumer_close(rk, close_rebalance, 10000), 0);
    assert_int_equal(g_revoked, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_kept_and_produced_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_answer_stays_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_with_messages_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_producer_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_prefetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_prefetched_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
