/*
 * bench_sort.c - dw_sort_doubles() per value at the sizes driftwatch sorts (bench_sort).
 *
 * Why: the close evaluation sorts each window's merged values (a feature's values from every
 * partition: 10^4 to 10^5 of them in bench/run.sh), and the radix sort's digit width was chosen
 * by these figures (bench/RESULTS.md). Values are normal (mean 10, sd 3) like gen's features.
 * Prints, per size, the median over RUNS of the thread's CPU time per value, in ns. It is not a
 * test: nothing fails, except an unsorted result.
 *
 *   bench_sort [RUNS]   RUNS defaults to 15
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "driftwatch/core/dw_common.h"

#define RUNS_DEFAULT 15

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : RUNS_DEFAULT;
    if (runs < 1) {
        fprintf(stderr, "usage: bench_sort [RUNS]\n");
        return 2;
    }
    static const size_t sizes[] = {256, 2048, 8192, 16384, 32768, 60000, 180000};
    uint64_t s = 1;
    for (size_t q = 0; q < sizeof(sizes) / sizeof(sizes[0]); q++) {
        size_t n = sizes[q];
        double *v = dw_malloc(n * sizeof(*v)), *w = dw_malloc(n * sizeof(*w));
        for (size_t i = 0; i < n; i++) {
            v[i] = dw_rand_normal(&s) * 3.0 + 10.0;
        }
        double *t = dw_malloc((size_t)runs * sizeof(*t));
        for (int r = 0; r < runs; r++) {
            memcpy(w, v, n * sizeof(*w));
            double t0 = bench_thread_seconds();
            dw_sort_doubles(w, n);
            t[r] = bench_thread_seconds() - t0;
            for (size_t i = 1; i < n; i++) {
                if (w[i - 1] > w[i]) {
                    fprintf(stderr, "bench_sort: not sorted at %zu of %zu\n", i, n);
                    return 1;
                }
            }
        }
        qsort(t, (size_t)runs, sizeof(*t), bench_cmp_double);
        printf("n=%zu: %.1f ns per value (median of %d)\n", n, t[runs / 2] / (double)n * 1e9, runs);
        free(t);
        free(w);
        free(v);
    }
    return 0;
}
