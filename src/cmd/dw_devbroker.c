/*
 * dw_devbroker.c - `driftwatch dev-broker`: librdkafka's mock cluster on loopback for the
 * quick start and the tests. It prints one line `BOOTSTRAP=host:port,...` on stdout and runs
 * until SIGTERM or SIGINT. Known limits of the mock: it keeps only a few MiB per partition
 * (use enough partitions for large loads) and a joining group member waits for the group's
 * session timeout (set session.timeout.ms low in tests).
 *
 * Fault injection (--control): line commands on stdin, one answer line each on stdout, drive
 * the mock cluster's own fault API (request errors, broker down/up, coordinator and leader
 * moves, round-trip delays), so that integration tests can show what driftwatch does when the
 * broker fails. Why stdin and not a port: the channel then belongs to the process that started
 * the broker (a test), nothing else on the machine can reach it, and without --control the
 * broker never reads stdin (a backgrounded dev-broker in a terminal would stop on SIGTTIN).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define DEVBROKER_MAX_TOPICS 32
#define DEVBROKER_TICK_MS 100     /* wait for a control line or a signal, milliseconds */
#define DEVBROKER_LINE_MAX 1024   /* bytes of one control line */
#define DEVBROKER_MAX_ARGS 8      /* words of one control line */
#define DEVBROKER_MAX_ERRORS 1000 /* errors pushed by one `errors` command */
#define DEVBROKER_MAX_RTT_MS 600000

static volatile sig_atomic_t devbroker_stop;

static void on_signal(int sig)
{
    (void)sig;
    devbroker_stop = 1;
}

static void devbroker_usage(FILE *out)
{
    fprintf(
        out,
        "usage: driftwatch dev-broker [--brokers N] [--topic NAME:PARTITIONS]... [--control]\n\n"
        "Runs an in-process Kafka cluster (librdkafka's mock cluster) on loopback,\n"
        "prints BOOTSTRAP=host:port,... and serves until SIGTERM or SIGINT.\n\n"
        "  --brokers N              number of brokers (default 1, ids 1..N)\n"
        "  --topic NAME:PARTITIONS  create a topic (repeatable); other topics are\n"
        "                           auto-created with 1 partition on first use\n"
        "  --control                read fault-injection commands from stdin, one per line;\n"
        "                           each is answered with one line on stdout: `ok`,\n"
        "                           `ok VALUE` or `error: REASON` (a test tool)\n"
        "  -h, --help               this help\n\n"
        "Control commands (API: an ApiKey name such as Produce, Fetch, OffsetCommit,\n"
        "Heartbeat, JoinGroup, SyncGroup, FindCoordinator, Metadata, or its number;\n"
        "ERROR: a Kafka error name such as NOT_LEADER_FOR_PARTITION, _TRANSPORT\n"
        "(disconnects the client), NO_ERROR, or its number):\n"
        "  errors API COUNT ERROR       the next COUNT requests of API, to any broker, fail\n"
        "  errors API clear             forget the errors still pushed for API\n"
        "  broker-errors ID API COUNT ERROR [RTT_MS]\n"
        "                               the next COUNT requests of API to broker ID fail\n"
        "                               (NO_ERROR: succeed) after RTT_MS milliseconds;\n"
        "                               from then on broker ID ignores `errors` for API\n"
        "                               (the mock reads its own stack first, even empty)\n"
        "  pending ID API               errors still pushed on broker ID for API (`ok N`)\n"
        "  broker down ID | broker up ID  closes / reopens broker ID's listener and\n"
        "                               connections\n"
        "  rtt ID MS                    delays every answer of broker ID by MS\n"
        "  coordinator GROUP ID         moves GROUP's coordinator to broker ID\n"
        "  leader TOPIC PARTITION ID    moves the partition's leader to broker ID\n"
        "  topic-error TOPIC ERROR      metadata answers ERROR for TOPIC (NO_ERROR clears)\n"
        "  help                         lists the commands\n");
}

struct topic_spec {
    char name[256];
    int partitions;
};

/* ---- control channel ---- */

struct api_name {
    const char *name;
    int16_t key;
};

/* Kafka protocol ApiKeys of the requests a consumer group and a producer send. */
static const struct api_name api_names[] = {
    {"Produce", 0},          {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},      {"Heartbeat", 12},
    {"LeaveGroup", 13},      {"SyncGroup", 14},      {"DescribeGroups", 15},
    {"ListGroups", 16},      {"ApiVersions", 18},    {"CreateTopics", 19},
    {"DeleteTopics", 20},    {"InitProducerId", 22}, {"OffsetForLeaderEpoch", 23}};

#define DEVBROKER_MAX_API_KEY 100 /* largest ApiKey accepted as a number */

/* Parses a decimal integer in [lo, hi]; 0 or -1. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_api(const char *s, int16_t *key)
{
    for (size_t i = 0; i < DW_ARRAY_SIZE(api_names); i++) {
        if (strcasecmp(s, api_names[i].name) == 0) {
            *key = api_names[i].key;
            return 0;
        }
    }
    long v;
    if (parse_long(s, 0, DEVBROKER_MAX_API_KEY, &v) != 0) {
        return -1;
    }
    *key = (int16_t)v;
    return 0;
}

/* An error by librdkafka's name (with or without RD_KAFKA_RESP_ERR_) or by number. */
static int parse_error(const char *s, rd_kafka_resp_err_t *err)
{
    static const char prefix[] = "RD_KAFKA_RESP_ERR_";
    if (strncasecmp(s, prefix, sizeof(prefix) - 1) == 0) {
        s += sizeof(prefix) - 1;
    }
    const struct rd_kafka_err_desc *descs = NULL;
    size_t n = 0;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].name && strcasecmp(s, descs[i].name) == 0) {
            *err = descs[i].code;
            return 0;
        }
    }
    long v;
    if (parse_long(s, -200, 1000, &v) != 0) {
        return -1;
    }
    *err = (rd_kafka_resp_err_t)v;
    return 0;
}

/* Splits line into at most max words (in place); @returns the word count, -1 when more. */
static int split_words(char *line, char **words, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) {
            p++;
        }
        if (!*p) {
            return n;
        }
        if (n == max) {
            return -1;
        }
        words[n++] = p;
        while (*p && !isspace((unsigned char)*p)) {
            p++;
        }
        if (*p) {
            *p++ = '\0';
        }
    }
}

static int mock_result(rd_kafka_resp_err_t err, char *reply, size_t reply_size)
{
    if (err) {
        return dw_err(reply, reply_size, "error: %s", rd_kafka_err2str(err));
    }
    snprintf(reply, reply_size, "ok");
    return 0;
}

/* `errors API COUNT ERROR` and `errors API clear`. */
static int cmd_errors(rd_kafka_mock_cluster_t *mc, char **w, int n, char *reply, size_t reply_size)
{
    int16_t api;
    if (n < 3 || parse_api(w[1], &api) != 0) {
        return dw_err(reply, reply_size, "error: usage: errors API COUNT ERROR | errors API clear");
    }
    if (n == 3 && strcmp(w[2], "clear") == 0) {
        rd_kafka_mock_clear_request_errors(mc, api);
        return mock_result(0, reply, reply_size);
    }
    long cnt;
    rd_kafka_resp_err_t err;
    if (n != 4 || parse_long(w[2], 1, DEVBROKER_MAX_ERRORS, &cnt) != 0 ||
        parse_error(w[3], &err) != 0) {
        return dw_err(reply, reply_size, "error: usage: errors API COUNT(1..%d) ERROR, got '%s %s'",
                      DEVBROKER_MAX_ERRORS, w[2], n > 3 ? w[3] : "");
    }
    rd_kafka_resp_err_t errs[DEVBROKER_MAX_ERRORS];
    for (long i = 0; i < cnt; i++) {
        errs[i] = err;
    }
    rd_kafka_mock_push_request_errors_array(mc, api, (size_t)cnt, errs);
    return mock_result(0, reply, reply_size);
}

/* `broker-errors ID API COUNT ERROR [RTT_MS]`. */
static int cmd_broker_errors(rd_kafka_mock_cluster_t *mc, char **w, int n, char *reply,
                             size_t reply_size)
{
    long id, cnt, rtt = 0;
    int16_t api;
    rd_kafka_resp_err_t err;
    if ((n != 5 && n != 6) || parse_long(w[1], 0, INT32_MAX, &id) != 0 ||
        parse_api(w[2], &api) != 0 || parse_long(w[3], 1, DEVBROKER_MAX_ERRORS, &cnt) != 0 ||
        parse_error(w[4], &err) != 0 ||
        (n == 6 && parse_long(w[5], 0, DEVBROKER_MAX_RTT_MS, &rtt) != 0)) {
        return dw_err(reply, reply_size, "error: usage: broker-errors ID API COUNT ERROR [RTT_MS]");
    }
    for (long i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t res =
            rd_kafka_mock_broker_push_request_error_rtts(mc, (int32_t)id, api, 1, err, (int)rtt);
        if (res) {
            return mock_result(res, reply, reply_size);
        }
    }
    return mock_result(0, reply, reply_size);
}

/* Runs one control line; the answer (one line, no newline) goes to reply. */
static int control_command(rd_kafka_mock_cluster_t *mc, char *line, char *reply, size_t reply_size)
{
    char *w[DEVBROKER_MAX_ARGS];
    int n = split_words(line, w, DEVBROKER_MAX_ARGS);
    long id, v;
    if (n < 0) {
        return dw_err(reply, reply_size, "error: too many words");
    }
    if (n == 0) {
        return dw_err(reply, reply_size, "error: empty command (try help)");
    }
    if (strcmp(w[0], "help") == 0 && n == 1) {
        snprintf(reply, reply_size,
                 "ok errors|broker-errors|pending|broker down|broker up|rtt|coordinator|leader|"
                 "topic-error (see dev-broker --help)");
        return 0;
    }
    if (strcmp(w[0], "errors") == 0) {
        return cmd_errors(mc, w, n, reply, reply_size);
    }
    if (strcmp(w[0], "broker-errors") == 0) {
        return cmd_broker_errors(mc, w, n, reply, reply_size);
    }
    if (strcmp(w[0], "pending") == 0) {
        int16_t api;
        size_t cnt = 0;
        if (n != 3 || parse_long(w[1], 0, INT32_MAX, &id) != 0 || parse_api(w[2], &api) != 0) {
            return dw_err(reply, reply_size, "error: usage: pending ID API");
        }
        rd_kafka_resp_err_t err = rd_kafka_mock_broker_error_stack_cnt(mc, (int32_t)id, api, &cnt);
        if (err) {
            return mock_result(err, reply, reply_size);
        }
        snprintf(reply, reply_size, "ok %zu", cnt);
        return 0;
    }
    if (strcmp(w[0], "broker") == 0) {
        int down = n == 3 && strcmp(w[1], "down") == 0;
        int up = n == 3 && strcmp(w[1], "up") == 0;
        if ((!down && !up) || parse_long(w[2], 0, INT32_MAX, &id) != 0) {
            return dw_err(reply, reply_size, "error: usage: broker down ID | broker up ID");
        }
        return mock_result(down ? rd_kafka_mock_broker_set_down(mc, (int32_t)id)
                                : rd_kafka_mock_broker_set_up(mc, (int32_t)id),
                           reply, reply_size);
    }
    if (strcmp(w[0], "rtt") == 0) {
        if (n != 3 || parse_long(w[1], 0, INT32_MAX, &id) != 0 ||
            parse_long(w[2], 0, DEVBROKER_MAX_RTT_MS, &v) != 0) {
            return dw_err(reply, reply_size, "error: usage: rtt ID MS");
        }
        return mock_result(rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)v), reply,
                           reply_size);
    }
    if (strcmp(w[0], "coordinator") == 0) {
        if (n != 3 || parse_long(w[2], 0, INT32_MAX, &id) != 0) {
            return dw_err(reply, reply_size, "error: usage: coordinator GROUP ID");
        }
        return mock_result(rd_kafka_mock_coordinator_set(mc, "group", w[1], (int32_t)id), reply,
                           reply_size);
    }
    if (strcmp(w[0], "leader") == 0) {
        if (n != 4 || parse_long(w[2], 0, INT32_MAX, &v) != 0 ||
            parse_long(w[3], 0, INT32_MAX, &id) != 0) {
            return dw_err(reply, reply_size, "error: usage: leader TOPIC PARTITION ID");
        }
        return mock_result(rd_kafka_mock_partition_set_leader(mc, w[1], (int32_t)v, (int32_t)id),
                           reply, reply_size);
    }
    if (strcmp(w[0], "topic-error") == 0) {
        rd_kafka_resp_err_t err;
        if (n != 3 || parse_error(w[2], &err) != 0) {
            return dw_err(reply, reply_size, "error: usage: topic-error TOPIC ERROR");
        }
        rd_kafka_mock_topic_set_error(mc, w[1], err);
        return mock_result(0, reply, reply_size);
    }
    return dw_err(reply, reply_size, "error: unknown command '%s' (try help)", w[0]);
}

/* Reads what stdin has, runs each complete line. @returns 0, or -1 at end of input. */
static int control_read(rd_kafka_mock_cluster_t *mc, char *buf, size_t *len)
{
    ssize_t got = read(STDIN_FILENO, buf + *len, DEVBROKER_LINE_MAX - *len);
    if (got < 0) {
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    }
    if (got == 0) {
        return -1;
    }
    *len += (size_t)got;
    char *nl;
    while ((nl = memchr(buf, '\n', *len)) != NULL) {
        *nl = '\0';
        char reply[512];
        control_command(mc, buf, reply, sizeof(reply));
        printf("%s\n", reply);
        fflush(stdout);
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, *len - used);
        *len -= used;
    }
    if (*len == DEVBROKER_LINE_MAX) {
        printf("error: line longer than %d bytes\n", DEVBROKER_LINE_MAX);
        fflush(stdout);
        *len = 0;
    }
    return 0;
}

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
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
        {"control", no_argument, NULL, 'c'},       {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0}};
    struct topic_spec topics[DEVBROKER_MAX_TOPICS];
    int n_topics = 0, brokers = 1, control = 0, c;
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
        case 'c':
            control = 1;
            break;
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, devbroker_usage);
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
    char line[DEVBROKER_LINE_MAX];
    size_t line_len = 0;
    while (!devbroker_stop) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        if (!control) {
            usleep(DEVBROKER_TICK_MS * 1000);
        } else if (poll(&pfd, 1, DEVBROKER_TICK_MS) > 0 && control_read(mc, line, &line_len) != 0) {
            control = 0; /* end of input: serve on until a signal */
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
