/*
 * dw_devbroker.c - `driftwatch dev-broker`: librdkafka's mock cluster on loopback for the
 * quick start and the tests. It prints one line `BOOTSTRAP=host:port,...` on stdout and runs
 * until SIGTERM or SIGINT. Known limits of the mock: it keeps only a few MiB per partition
 * (use enough partitions for large loads) and a joining group member waits for the group's
 * session timeout (set session.timeout.ms low in tests).
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftwatch/dw_cmd.h"
#include "driftwatch/dw_common.h"

#define DEVBROKER_MAX_TOPICS 32

static volatile sig_atomic_t devbroker_stop;

static void on_signal(int sig)
{
    (void)sig;
    devbroker_stop = 1;
}

static void devbroker_usage(FILE *out)
{
    fprintf(out, "usage: driftwatch dev-broker [--brokers N] [--topic NAME:PARTITIONS]...\n\n"
                 "Runs an in-process Kafka cluster (librdkafka's mock cluster) on loopback,\n"
                 "prints BOOTSTRAP=host:port,... and serves until SIGTERM or SIGINT.\n\n"
                 "  --brokers N              number of brokers (default 1)\n"
                 "  --topic NAME:PARTITIONS  create a topic (repeatable); other topics are\n"
                 "                           auto-created with 1 partition on first use\n"
                 "  -h, --help               this help\n");
}

struct topic_spec {
    char name[256];
    int partitions;
};

static int parse_topic(const char *arg, struct topic_spec *t)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof(t->name)) {
        return -1;
    }
    char *end = NULL;
    long n = strtol(colon + 1, &end, 10);
    if (!end || *end || n < 1 || n > 10000) {
        return -1;
    }
    memcpy(t->name, arg, (size_t)(colon - arg));
    t->name[colon - arg] = '\0';
    t->partitions = (int)n;
    return 0;
}

int dw_cmd_dev_broker(int argc, char **argv)
{
    static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    struct topic_spec topics[DEVBROKER_MAX_TOPICS];
    int n_topics = 0, brokers = 1, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'b':
            brokers = (int)strtol(optarg, &end, 10);
            if (!end || *end || brokers < 1 || brokers > 16) {
                fprintf(stderr, "dev-broker: --brokers must be 1..16, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (n_topics == DEVBROKER_MAX_TOPICS || parse_topic(optarg, &topics[n_topics]) != 0) {
                fprintf(stderr, "dev-broker: --topic wants NAME:PARTITIONS, got '%s'\n", optarg);
                return 2;
            }
            n_topics++;
            break;
        case 'h':
            devbroker_usage(stdout);
            return 0;
        case 'V':
            printf("driftwatch %s\n", DW_VERSION);
            return 0;
        default:
            devbroker_usage(stderr);
            return 2;
        }
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "dev-broker: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "dev-broker: cannot start the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < n_topics; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].partitions, 1);
        if (err) {
            fprintf(stderr, "dev-broker: topic %s: %s\n", topics[i].name, rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("BOOTSTRAP=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!devbroker_stop) {
        usleep(100 * 1000);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
