/*
 * bench_common.h - what the benchmark programs share: the thread's CPU clock (on a shared
 * machine, time spent waiting for a core is not the code's cost), the comparison that sorts
 * their runs for a median, a file read as lines into memory, and the config and traffic files
 * the component benches take. Header-only: each bench is one program of its own.
 */
#ifndef DW_BENCH_COMMON_H
#define DW_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_config_load.h"

/* seconds of CPU this thread has used */
static inline double bench_thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* qsort() comparison of doubles, ascending */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* a file's lines, kept in one buffer (bench_read_lines(); bench_free_lines()) */
struct bench_lines {
    char *buf;
    size_t *start;
    size_t *len;
    size_t n;
};

static inline int bench_read_lines(const char *path, struct bench_lines *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 20, size = 0;
    out->buf = dw_malloc(cap);
    size_t got;
    while ((got = fread(out->buf + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) {
            cap *= 2;
            out->buf = dw_realloc(out->buf, cap);
        }
    }
    fclose(f);
    size_t lines_cap = 1024;
    out->start = dw_malloc(lines_cap * sizeof(*out->start));
    out->len = dw_malloc(lines_cap * sizeof(*out->len));
    out->n = 0;
    for (size_t i = 0; i < size;) {
        const char *nl = memchr(out->buf + i, '\n', size - i);
        size_t e = nl ? (size_t)(nl - out->buf) : size;
        if (out->n == lines_cap) {
            lines_cap *= 2;
            out->start = dw_realloc(out->start, lines_cap * sizeof(*out->start));
            out->len = dw_realloc(out->len, lines_cap * sizeof(*out->len));
        }
        out->start[out->n] = i;
        out->len[out->n] = e - i;
        out->n++;
        i = e + 1;
    }
    return 0;
}

static inline void bench_free_lines(struct bench_lines *l)
{
    free(l->buf);
    free(l->start);
    free(l->len);
}

/* A component bench's CONFIG PREDICTIONS LABELS (argv[1..3]): the config, and the two traffic
 * files as lines; prog names the bench in errors. @returns 0, or -1 said on stderr. */
static inline int bench_load(const char *prog, char **argv, struct dw_config *cfg,
                             struct bench_lines *preds, struct bench_lines *labels)
{
    char err[512];
    dw_config_defaults(cfg);
    if (dw_config_load(cfg, argv[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -1;
    }
    return bench_read_lines(argv[2], preds) == 0 && bench_read_lines(argv[3], labels) == 0 ? 0 : -1;
}

#endif
