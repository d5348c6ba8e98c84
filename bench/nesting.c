/*
 * nesting.c - how long the event decoder takes on hostile nesting (bench_nesting).
 *
 * Why: jsmn, the tokenizer the decoder used until 2026-12-04, found the opener of a closing
 * bracket by walking parent links up from the last token, so N nested arrays cost O(N^2) steps;
 * a message at the 256 KiB size limit once blocked the consumer loop for half a minute. The
 * decoder has had a depth limit (input.max_depth) since, and its one-pass parser checks it as it
 * goes, in time linear in the message's size at any depth. This program times
 * dw_decode_prediction() on messages of exactly 256 KiB (the default input.max_message_bytes)
 * and prints the median of RUNS runs, so that bench/RESULTS.md can record the figures. Times are
 * the thread's CPU time (the machine is shared: waiting for a core is not the decoder's cost). It
 * is not a test: nothing fails.
 *
 *   bench_nesting [RUNS [CASE...]]   RUNS defaults to 7; CASE is one of the names printed
 *
 * Cases: arrays and objects nested as deep as the size allows (too_deep: the parse stops at the
 * limit, then the depth pass of the error path names the depth); two shapes at the depth limit
 * that were jsmn's worst below it, kept to show that the parser stays linear on them (a
 * colon-chained token list, invalid JSON; sibling arrays 64 deep, valid); the brackets inside a
 * string (decodes); and a typical 400-byte event (the cost of an ordinary decode).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "../tests/unit/dw_test_nested.h"
#include "bench_common.h"

#define MSG_BYTES 262144   /* bytes; the default input.max_message_bytes (256 KiB) */
#define RUNS_DEFAULT 7     /* runs per case; the median is reported */
#define EVENT_LOOPS 100000 /* decodes of the small event per run */
#define LIMIT_DEPTH 64     /* levels; the default input.max_depth */
/* ms; the Kafka timestamp of every message: the event's own time (2026-12-03T10:15:03.123Z), so
 * that the event decodes (with 0 it was refused by input.max_past_skew, and the figures were those
 * of the error path) */
#define KAFKA_TS_MS 1796292903123LL

static const char *const CONFIG_YAML = "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                                       "models:\n"
                                       "  m:\n"
                                       "    task: classification\n"
                                       "    features:\n"
                                       "      amount: numeric\n"
                                       "      country: categorical\n"
                                       "      age: numeric\n"
                                       "      merchant: categorical\n"
                                       "      device: categorical\n"
                                       "      hour: numeric\n"
                                       "      dow: numeric\n"
                                       "      items: numeric\n"
                                       "      basket: numeric\n"
                                       "      tier: categorical\n"
                                       "      zip: categorical\n"
                                       "      channel: categorical\n"
                                       "      retries: numeric\n"
                                       "      velocity: numeric\n"
                                       "      is_new: numeric\n";

static const char *const HEAD = "{\"prediction_id\":\"p\",\"model\":\"m\",\"prediction\":1,\"x\":";

/* as deep as `open` + closer fit in MSG_BYTES around HEAD (dw_test_nested.h) */
static size_t nested(char *buf, const char *open, char close, const char *mid)
{
    char *msg = dw_test_nested(HEAD, open, mid, close, 0, MSG_BYTES);
    memcpy(buf, msg, MSG_BYTES);
    free(msg);
    return MSG_BYTES;
}

/* [[[... (LIMIT_DEPTH - 1 levels inside the event) []:[]:[]:... ]]]: invalid JSON whose tokens
 * jsmn hung in one long parent chain that every closing bracket walked (the parse stops at the
 * first ':', and the depth pass then reads the whole message) */
static size_t colon_chain(char *buf)
{
    size_t levels = LIMIT_DEPTH - 2; /* the event is level 1, the chain's arrays one more */
    size_t n = strlen(HEAD);
    memcpy(buf, HEAD, n);
    memset(buf + n, '[', levels);
    n += levels;
    while (n + 3 + levels + 1 <= MSG_BYTES) {
        memcpy(buf + n, "[]:", 3);
        n += 3;
    }
    memset(buf + n, ']', levels);
    n += levels;
    while (n < MSG_BYTES - 1) {
        buf[n++] = ' ';
    }
    buf[n++] = '}';
    return n;
}

/* [ [[[...62 levels...]]], [[[...]]], ... ]: valid JSON at exactly the depth limit, the worst
 * shape for jsmn's walk that was not rejected (each closing bracket walked up from the deepest
 * token of its sibling); the parse reads it once */
static size_t siblings(char *buf)
{
    size_t levels = LIMIT_DEPTH - 2; /* the event is level 1, the outer array level 2 */
    size_t n = strlen(HEAD);
    memcpy(buf, HEAD, n);
    buf[n++] = '[';
    int first = 1;
    while (n + 1 + 2 * levels + 2 <= MSG_BYTES) {
        if (!first) {
            buf[n++] = ',';
        }
        first = 0;
        memset(buf + n, '[', levels);
        n += levels;
        memset(buf + n, ']', levels);
        n += levels;
    }
    buf[n++] = ']';
    while (n < MSG_BYTES - 1) {
        buf[n++] = ' ';
    }
    buf[n++] = '}';
    return n;
}

static size_t in_string(char *buf)
{
    size_t n = strlen(HEAD);
    memcpy(buf, HEAD, n);
    buf[n++] = '"';
    size_t body = MSG_BYTES - n - 2;
    for (size_t i = 0; i < body; i++) {
        buf[n++] = i < body / 2 ? '[' : ']';
    }
    buf[n++] = '"';
    buf[n++] = '}';
    return n;
}

static size_t event(char *buf)
{
    int n = snprintf(buf, MSG_BYTES,
                     "{\"prediction_id\":\"6f1c2b9e-3a47-4d2e-9b1f-0c5e7a8d4f21\",\"model\":\"m\","
                     "\"model_version\":\"1.1.0\",\"timestamp\":\"2026-12-03T10:15:03.123Z\","
                     "\"prediction\":1,\"score\":0.8731,\"latency_ms\":12.5,\"features\":{"
                     "\"amount\":1234.56,\"country\":\"FR\",\"age\":41,\"merchant\":\"m-1187\","
                     "\"device\":\"ios\",\"hour\":13,\"dow\":4,\"items\":3,\"basket\":88.2,"
                     "\"tier\":\"gold\",\"zip\":\"75001\",\"channel\":\"web\",\"retries\":0,"
                     "\"velocity\":0.37,\"is_new\":false}}");
    return n < 0 ? 0 : (size_t)n;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : RUNS_DEFAULT;
    if (runs < 1) {
        runs = 1;
    }
    struct dw_config cfg;
    char err[512];
    if (dw_config_load_string(&cfg, CONFIG_YAML, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_nesting: %s\n", err);
        return 1;
    }
    struct dw_decoder *dec = dw_decoder_new(&cfg, err, sizeof(err));
    if (!dec) {
        fprintf(stderr, "bench_nesting: %s\n", err);
        return 1;
    }
    struct dw_prediction *p = dw_prediction_new(dec);
    char *buf = malloc(MSG_BYTES + 1);
    double *t = calloc((size_t)runs, sizeof(*t));

    const char *names[] = {"arrays", "objects", "colon_chain", "siblings", "in_string", "event"};
    printf("bench_nesting: %d runs per case, median (min - max)\n", runs);
    for (size_t c = 0; c < sizeof(names) / sizeof(names[0]); c++) {
        int wanted = argc <= 2;
        for (int a = 2; a < argc; a++) {
            wanted |= strcmp(argv[a], names[c]) == 0;
        }
        if (!wanted) {
            continue;
        }
        size_t len;
        switch (c) {
        case 0:
            len = nested(buf, "[", ']', "");
            break;
        case 1:
            len = nested(buf, "{\"k\":", '}', "1");
            break;
        case 2:
            len = colon_chain(buf);
            break;
        case 3:
            len = siblings(buf);
            break;
        case 4:
            len = in_string(buf);
            break;
        default:
            len = event(buf);
            break;
        }
        int loops = c == 5 ? EVENT_LOOPS : 1;
        enum dw_bad_reason r = DW_BAD_NONE;
        for (int i = 0; i < runs; i++) {
            double t0 = bench_thread_seconds() * 1e3;
            for (int k = 0; k < loops; k++) {
                r = dw_decode_prediction(dec, buf, len, KAFKA_TS_MS, p, err, sizeof(err));
            }
            t[i] = (bench_thread_seconds() * 1e3 - t0) / loops;
        }
        qsort(t, (size_t)runs, sizeof(*t), bench_cmp_double);
        if (c == 5) {
            printf("%-12s %7zu bytes  %9.0f ns/msg (%.0f - %.0f)  %s\n", names[c], len,
                   t[runs / 2] * 1e6, t[0] * 1e6, t[runs - 1] * 1e6, dw_bad_reason_name(r));
        } else {
            printf("%-12s %7zu bytes  %9.3f ms (%.3f - %.3f)  %s: %.90s\n", names[c], len,
                   t[runs / 2], t[0], t[runs - 1], dw_bad_reason_name(r), err);
        }
        fflush(stdout);
    }
    free(t);
    free(buf);
    free(p);
    dw_decoder_destroy(dec);
    dw_config_free(&cfg);
    return 0;
}
