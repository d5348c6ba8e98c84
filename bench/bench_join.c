/*
 * bench_join.c - memory of the join cache per record, as `driftwatch run` holds it.
 *
 * Feeds N unlabelled predictions of one classification model (no features, so that the window
 * aggregate stays a few hundred bytes) through dw_part_on_prediction(), the path of every
 * prediction in `run`, clearing the dirty lists every 100,000 events as a checkpoint would,
 * then prints the growth of the process's resident set (/proc/self/statm) and of the bytes
 * allocated (malloc's in use, mallinfo2: uordblks + hblkhd, plus the join's mapped pool and
 * slot table, whose untouched pages are not resident) divided by N. Prediction ids look like
 * gen's ("p-<seed>-<n>", 9 to 16 bytes) or, with --uuid, like 36-byte UUIDs. With
 * --parked-texts the records are labels parked before their predictions instead, each with a
 * distinct 64-byte text (the worst case of the parked-label table). The allocator is
 * set up as dw_run.c sets it (mmap threshold 64 MiB, trim threshold 256 MiB), so freed blocks
 * stay in the heap as they do in the service.
 *
 *   bench_join [--count N] [--uuid] [--parked-texts]
 * one measurement; bench/join_memory.sh takes medians
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_part.h"

#define BENCH_DEFAULT_COUNT 1000000      /* predictions (records) inserted */
#define BENCH_CHECKPOINT_EVERY 100000    /* events between dirty-list clearings (a checkpoint) */
#define BENCH_MMAP_THRESHOLD (64 << 20)  /* bytes, as dw_run.c sets M_MMAP_THRESHOLD */
#define BENCH_TRIM_THRESHOLD (256 << 20) /* bytes, as dw_run.c sets M_TRIM_THRESHOLD */
#define BENCH_T0_MS 1796000000000LL      /* event time of the first prediction (epoch ms) */

/* Resident set size in bytes. */
static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) {
        resident = 0;
    }
    if (f) {
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Bytes malloc hands out (small blocks in the heap plus mmapped blocks). */
static double heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

int main(int argc, char **argv)
{
    long long count = BENCH_DEFAULT_COUNT;
    int uuid = 0, parked = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end;
            count = strtoll(argv[++i], &end, 10);
            if (*end || count <= 0) {
                fprintf(stderr, "bench_join: --count: '%s' is not a positive integer\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--uuid") == 0) {
            uuid = 1;
        } else if (strcmp(argv[i], "--parked-texts") == 0) {
            parked = 1;
        } else {
            fprintf(stderr, "usage: bench_join [--count N] [--uuid] [--parked-texts]\n");
            return 2;
        }
    }
    mallopt(M_MMAP_THRESHOLD, BENCH_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, BENCH_TRIM_THRESHOLD);

    static struct dw_model_cfg model = {
        .name = "fraud", .task = DW_TASK_CLASSIFICATION, .positive_class = "1"};
    static struct dw_config cfg;
    cfg.window_size_ms = 3600000;
    cfg.allowed_lateness_ms = 3600000;
    cfg.label_horizon_ms = 3600000;
    cfg.join_ttl_ms = 3600000;
    cfg.join_max_records = count;
    cfg.models = &model;
    cfg.n_models = 1;

    struct dw_prediction *ev = dw_calloc(1, sizeof(*ev) + sizeof(struct dw_val));
    ev->model = &model;
    ev->model_idx = 0;
    ev->version = "1.0.0";
    ev->version_len = 5;
    ev->has_score = 1;
    ev->score = 0.75;
    memcpy(ev->pred.text, "1", 2);
    ev->pred.len = 1;

    double rss0 = rss_bytes(), heap0 = heap_bytes();
    struct dw_part *p = dw_part_new(&cfg, 0);
    char id[64];
    uint64_t seed = 42;
    for (long long i = 0; i < count; i++) {
        int n;
        if (uuid) {
            uint64_t a = dw_splitmix64(&seed), b = dw_splitmix64(&seed);
            n = snprintf(id, sizeof(id), "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(a >> 32),
                         (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                         (unsigned)(b >> 52) & 0xfff, (unsigned long long)(b & 0xffffffffffffULL));
        } else {
            n = snprintf(id, sizeof(id), "p-42-%lld", i);
        }
        if (parked) {
            struct dw_label lab = {.id = id, .id_len = (size_t)n, .ts_ms = BENCH_T0_MS};
            lab.label.len = (size_t)snprintf(lab.label.text, sizeof(lab.label.text), "%064lld", i);
            if (dw_part_on_label(p, &lab) != DW_PART_OK) {
                fprintf(stderr, "bench_join: label %lld not parked\n", i);
                return 1;
            }
        }
        ev->id = id;
        ev->id_len = (size_t)n;
        ev->ts_ms = BENCH_T0_MS + i % 1000;
        if (!parked && dw_part_on_prediction(p, ev) != DW_PART_OK) {
            fprintf(stderr, "bench_join: prediction %lld not counted\n", i);
            return 1;
        }
        if ((i + 1) % BENCH_CHECKPOINT_EVERY == 0) {
            dw_part_checkpoint_done(p);
        }
    }
    dw_part_checkpoint_done(p);
    double rss1 = rss_bytes(), heap1 = heap_bytes();
    if ((long long)p->join.count != count) {
        fprintf(stderr, "bench_join: %zu records, expected %lld\n", p->join.count, count);
        return 1;
    }
    /* The pool and the slots are mapped pages, not malloc's (dw_join.c): added here. */
    double mapped = (double)p->join.pool_cap * (double)sizeof(struct dw_join_rec) +
                    (double)p->join.n_slots * (double)sizeof(*p->join.slots);
    printf("records %lld ids %s rss_bytes_per_record %.1f heap_bytes_per_record %.1f "
           "rss_mib %.1f\n",
           count,
           parked ? "gen, parked labels with distinct 64-byte texts"
           : uuid ? "uuid36"
                  : "gen",
           (rss1 - rss0) / (double)count, (heap1 - heap0 + mapped) / (double)count,
           rss1 / 1048576.0);
    dw_part_free(p);
    free(ev);
    return 0;
}
