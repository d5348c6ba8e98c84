/*
 * bench_walk.c - dw_stats_ks_wasserstein() per value at the sizes the close evaluation walks
 * (bench_walk).
 *
 * Why: every numeric feature of every closed window is walked against its reference, both in
 * ascending order, for the KS statistic and the Wasserstein distance together; in bench/run.sh
 * (60,000 values a window against a reference of 180,000) the walk was the evaluation's largest
 * cost (bench/RESULTS.md). The window's side is a deduplicated sorted view with weights (all 1
 * while its sketch is exact; a KLL's compacted items weigh more), the reference's side values
 * without weights. Values are normal (sd 3) like gen's features, the window's mean shifted by
 * 0.3. Prints, per case, the median over RUNS of the thread's CPU time per value walked, in ns,
 * and the statistics (so that a change of the walk can be seen to keep them). It is not a test.
 * With WALK_ONLY=1 it times dw_stats_wasserstein(), the walk without the KS p-value (which, for
 * samples this far apart, costs more than the walk: dw_stats_smirnov_sf()).
 *
 *   bench_walk [RUNS]   RUNS defaults to 15   (environment: WALK_ONLY)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_stats.h"

#define RUNS_DEFAULT 15

/* n sorted normal values (mean mu, sd 3) */
static double *normal_sorted(size_t n, double mu, uint64_t *s)
{
    double *v = dw_malloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = dw_rand_normal(s) * 3.0 + mu;
    }
    dw_sort_doubles(v, n);
    return v;
}

/* The window's view: n values, every step-th kept with weight step (step 1: all, weight 1). */
static size_t window_view(const double *v, size_t n, size_t step, double *x, uint64_t *w)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i += step) {
        x[m] = v[i];
        w[m] = (uint64_t)DW_MIN(step, n - i);
        m++;
    }
    return m;
}

static void run_case(const char *name, const double *x1, const uint64_t *w1, size_t len1,
                     const double *x2, size_t len2, int runs)
{
    char err[128];
    struct dw_stats_ks ks;
    double wd;
    if (dw_stats_ks_wasserstein(x1, w1, len1, x2, NULL, len2, &ks, &wd, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_walk: %s\n", err);
        exit(1);
    }
    int walk_only = getenv("WALK_ONLY") != NULL;
    double *t = dw_malloc((size_t)runs * sizeof(*t));
    for (int r = 0; r < runs; r++) {
        struct dw_stats_ks k;
        double d;
        double t0 = bench_thread_seconds();
        if (walk_only) {
            dw_stats_wasserstein(x1, w1, len1, x2, NULL, len2, &d, NULL, 0);
        } else {
            dw_stats_ks_wasserstein(x1, w1, len1, x2, NULL, len2, &k, &d, NULL, 0);
        }
        t[r] = bench_thread_seconds() - t0;
    }
    qsort(t, (size_t)runs, sizeof(*t), bench_cmp_double);
    printf("%s: %zu + %zu values: %.2f ns per value (median of %d); d=%.17g p=%.17g w=%.17g\n",
           name, len1, len2, t[runs / 2] / (double)(len1 + len2) * 1e9, runs, ks.statistic,
           ks.p_value, wd);
    free(t);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : RUNS_DEFAULT;
    if (runs < 1) {
        fprintf(stderr, "usage: bench_walk [RUNS]\n");
        return 2;
    }
    uint64_t s = 1;
    size_t n_ref = 180000, n_win = 60000;
    double *ref = normal_sorted(n_ref, 10.0, &s);
    double *win = normal_sorted(n_win, 10.3, &s);
    double *x = dw_malloc(n_win * sizeof(*x));
    uint64_t *w = dw_malloc(n_win * sizeof(*w));
    size_t m = window_view(win, n_win, 1, x, w);
    run_case("exact window", x, w, m, ref, n_ref, runs);
    m = window_view(win, n_win, 32, x, w);
    run_case("compacted window", x, w, m, ref, n_ref, runs);
    free(x);
    free(w);
    free(win);
    free(ref);
    return 0;
}
