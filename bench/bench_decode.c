/*
 * bench_decode.c - the decoder alone: CPU per message of dw_decode_prediction() and
 * dw_decode_label() over gen's messages (bench_decode; bench/decode.sh builds the inputs).
 *
 * Why: the decoder is about a third of the 1M bench's samples, and this machine's run-to-run
 * noise (+-15 %) hides a 10 % change end to end. This program takes the Kafka, Redis and join
 * work away: it reads the two JSON-lines files into memory once, then decodes every line RUNS
 * times and prints the median over the runs of the thread's CPU time per message. Under
 * cachegrind the count is exact: bench/decode.sh runs it with 1 and with 3 runs, and the
 * difference of the instruction counts over twice the messages is the decoder's instructions
 * per message, the same on every run of the same binary. Every message must decode: a message
 * refused is a failure (exit 1), so a faster decoder that refuses gen's traffic cannot pass.
 *
 *   bench_decode CONFIG PREDICTIONS LABELS [RUNS]   RUNS defaults to 9
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/io/dw_config_load.h"

#define RUNS_DEFAULT 9

/* ms; the Kafka timestamp every message is decoded with, as run passes one: half an hour after
 * gen's first event (2026-01-01T00:00:00Z), within the skew bounds of all of its traffic */
#define KAFKA_TS_MS (1767225600000LL + 1800000LL)

/* one pass over both files; -1 when a message is refused */
static int decode_all(struct dw_decoder *dec, const struct bench_lines *preds,
                      const struct bench_lines *labels, struct dw_prediction *p)
{
    char err[256];
    struct dw_label l;
    for (size_t i = 0; i < preds->n; i++) {
        if (dw_decode_prediction(dec, preds->buf + preds->start[i], preds->len[i], KAFKA_TS_MS, p,
                                 err, sizeof(err)) != DW_BAD_NONE) {
            fprintf(stderr, "bench_decode: prediction %zu refused: %s\n", i + 1, err);
            return -1;
        }
    }
    for (size_t i = 0; i < labels->n; i++) {
        if (dw_decode_label(dec, labels->buf + labels->start[i], labels->len[i], KAFKA_TS_MS, &l,
                            err, sizeof(err)) != DW_BAD_NONE) {
            fprintf(stderr, "bench_decode: label %zu refused: %s\n", i + 1, err);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int runs = argc > 4 ? atoi(argv[4]) : RUNS_DEFAULT;
    if (argc < 4 || runs < 1) {
        fprintf(stderr, "usage: bench_decode CONFIG PREDICTIONS LABELS [RUNS]\n");
        return 2;
    }
    struct dw_config cfg;
    struct bench_lines preds, labels;
    if (bench_load("bench_decode", argv, &cfg, &preds, &labels) != 0) {
        return 2;
    }
    char err[512];
    struct dw_decoder *dec = dw_decoder_new(&cfg, err, sizeof(err));
    if (!dec) {
        fprintf(stderr, "bench_decode: %s\n", err);
        return 2;
    }
    struct dw_prediction *p = dw_prediction_new(dec);
    size_t n = preds.n + labels.n;
    double *per_msg = dw_malloc((size_t)runs * sizeof(*per_msg));
    for (int r = 0; r < runs; r++) {
        double t0 = bench_thread_seconds();
        if (decode_all(dec, &preds, &labels, p) != 0) {
            return 1;
        }
        per_msg[r] = (bench_thread_seconds() - t0) / (double)n * 1e9;
    }
    qsort(per_msg, (size_t)runs, sizeof(*per_msg), bench_cmp_double);
    printf("bench_decode: %zu predictions + %zu labels, %d runs: median %.1f ns per message "
           "(min %.1f, max %.1f)\n",
           preds.n, labels.n, runs, per_msg[runs / 2], per_msg[0], per_msg[runs - 1]);
    free(per_msg);
    free(p);
    dw_decoder_destroy(dec);
    dw_config_free(&cfg);
    bench_free_lines(&preds);
    bench_free_lines(&labels);
    return 0;
}
