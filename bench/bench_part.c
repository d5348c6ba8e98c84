/*
 * bench_part.c - the core's path of every message, without Kafka and Redis: gen's predictions
 * and labels decoded and counted into partitions (dw_decode_*, dw_part_on_prediction(),
 * dw_part_on_label()), with what a checkpoint does to the partitions in memory (dw_part_seal(),
 * dw_part_maintain(), dw_part_checkpoint_done()) every CHECKPOINT_EVERY messages.
 *
 * Why: on this shared machine `bench/run.sh` moves by a fifth from run to run, and a profile
 * of it counts samples, not work. This program does the same work on the same traffic every
 * time: under cachegrind its instruction count is exact, so a change to the join or the window
 * updates shows as a number of instructions per message (bench/part.sh takes the difference of
 * a run over N and over 2N messages, as bench/decode.sh does). Like run, it merges the two
 * topics by event time (run holds a labels partition that runs ahead) and sends a prediction
 * and its label to the same partition, the one gen's producer picks (Kafka's murmur2 of the
 * prediction_id). Every message must be
 * counted: a refused message or a label that joins nothing is a failure (exit 1).
 *
 *   bench_part CONFIG PREDICTIONS LABELS [PARTITIONS]   PARTITIONS defaults to 128
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/io/dw_config_load.h"

#define PARTITIONS_DEFAULT 128
#define CHECKPOINT_EVERY 200000 /* messages: about a second of run at its speed here */

/* ms; the Kafka timestamp of every message (bench_decode.c: within gen's skew bounds) */
#define KAFKA_TS_MS (1767225600000LL + 1800000LL)

/* the two topics, each a file of lines and the decoded next message */
struct feed {
    struct dw_decoder *preds_dec, *labels_dec;
    struct dw_prediction *p;
    struct dw_label l;
    struct bench_lines preds, labels;
    size_t next_pred, next_label; /* lines decoded so far */
    int has_pred, has_label;      /* p, l hold a message not counted yet */
};

static int decode_next(struct feed *f, int pred)
{
    char err[256];
    if (pred && f->next_pred < f->preds.n) {
        size_t i = f->next_pred++;
        f->has_pred = 1;
        return dw_decode_prediction(f->preds_dec, f->preds.buf + f->preds.start[i], f->preds.len[i],
                                    KAFKA_TS_MS, f->p, err, sizeof(err)) == DW_BAD_NONE
                   ? 0
                   : (fprintf(stderr, "bench_part: prediction %zu refused: %s\n", i + 1, err), -1);
    }
    if (!pred && f->next_label < f->labels.n) {
        size_t i = f->next_label++;
        f->has_label = 1;
        return dw_decode_label(f->labels_dec, f->labels.buf + f->labels.start[i], f->labels.len[i],
                               KAFKA_TS_MS, &f->l, err, sizeof(err)) == DW_BAD_NONE
                   ? 0
                   : (fprintf(stderr, "bench_part: label %zu refused: %s\n", i + 1, err), -1);
    }
    if (pred) {
        f->has_pred = 0;
    } else {
        f->has_label = 0;
    }
    return 0;
}

/* what a checkpoint does to every partition in memory */
static void checkpoint(struct dw_part **parts, int n, int64_t max_records)
{
    for (int i = 0; i < n; i++) {
        dw_part_maintain(parts[i], max_records);
        dw_part_seal(parts[i]);
        dw_part_checkpoint_done(parts[i]);
    }
}

/* the partition gen's producer sends the id to (its partitioner, murmur2_random: Kafka's) */
static struct dw_part *part_of(struct dw_part **parts, int n, const char *id, size_t len)
{
    return parts[rd_kafka_msg_partitioner_murmur2_random(NULL, id, len, n, NULL, NULL)];
}

/* Counts every message, the earlier event first. @returns 0, -1 on a refused message. */
static int run(struct feed *f, struct dw_part **parts, int n, const struct dw_config *cfg)
{
    uint64_t done = 0;
    if (decode_next(f, 1) != 0 || decode_next(f, 0) != 0) {
        return -1;
    }
    while (f->has_pred || f->has_label) {
        int pred = f->has_pred && (!f->has_label || f->p->ts_ms <= f->l.ts_ms);
        enum dw_part_result r =
            pred ? dw_part_on_prediction(part_of(parts, n, f->p->id, f->p->id_len), f->p)
                 : dw_part_on_label(part_of(parts, n, f->l.id, f->l.id_len), &f->l);
        if (r != DW_PART_OK) {
            fprintf(stderr, "bench_part: %s %zu not counted (%d)\n", pred ? "prediction" : "label",
                    pred ? f->next_pred : f->next_label, (int)r);
            return -1;
        }
        if (++done % CHECKPOINT_EVERY == 0) {
            checkpoint(parts, n, cfg->join_max_records);
        }
        if (decode_next(f, pred) != 0) {
            return -1;
        }
    }
    checkpoint(parts, n, cfg->join_max_records);
    return 0;
}

/* bytes malloc has handed out and not taken back (glibc) */
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

int main(int argc, char **argv)
{
    int n = argc > 4 ? atoi(argv[4]) : PARTITIONS_DEFAULT;
    if (argc < 4 || n < 1) {
        fprintf(stderr, "usage: bench_part CONFIG PREDICTIONS LABELS [PARTITIONS]\n");
        return 2;
    }
    struct dw_config cfg;
    struct feed f = {0};
    if (bench_load("bench_part", argv, &cfg, &f.preds, &f.labels) != 0) {
        return 2;
    }
    char err[512];
    f.preds_dec = dw_decoder_new(&cfg, err, sizeof(err));
    f.labels_dec = f.preds_dec ? dw_decoder_new(&cfg, err, sizeof(err)) : NULL;
    if (!f.labels_dec) {
        fprintf(stderr, "bench_part: %s\n", err);
        return 2;
    }
    f.p = dw_prediction_new(f.preds_dec);
    struct dw_part **parts = dw_calloc((size_t)n, sizeof(*parts));
    for (int i = 0; i < n; i++) {
        parts[i] = dw_part_new(&cfg, i);
    }
    double t0 = bench_thread_seconds();
    int rc = run(&f, parts, n, &cfg);
    double secs = bench_thread_seconds() - t0;
    size_t msgs = f.preds.n + f.labels.n;
    if (rc == 0) {
        printf("bench_part: %zu predictions + %zu labels into %d partitions: %.1f ns per message "
               "(decode and count, one run)\n",
               f.preds.n, f.labels.n, n, secs / (double)msgs * 1e9);
    }
    /* what the partitions hold once caught up (the last checkpoint sealed every window but the
     * newest): the heap their freeing gives back, exact on every run of the same binary */
    size_t wins = 0, heap = heap_bytes();
    for (int i = 0; i < n; i++) {
        wins += parts[i]->n_wins;
        dw_part_free(parts[i]);
    }
    free(parts);
    if (rc == 0) {
        heap -= heap_bytes();
        printf("bench_part: the partitions hold %zu windows and %zu bytes of heap at the end "
               "(%.0f bytes a window with its share of the join)\n",
               wins, heap, (double)heap / (double)(wins ? wins : 1));
    }
    free(f.p);
    dw_decoder_destroy(f.preds_dec);
    dw_decoder_destroy(f.labels_dec);
    dw_config_free(&cfg);
    bench_free_lines(&f.preds);
    bench_free_lines(&f.labels);
    return rc == 0 ? 0 : 1;
}
