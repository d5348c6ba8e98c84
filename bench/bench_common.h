/*
 * bench_common.h - what the benchmark programs share: the thread's CPU clock (on a shared
 * machine, time spent waiting for a core is not the code's cost) and the comparison that sorts
 * their runs for a median. Header-only: each bench is one program of its own.
 */
#ifndef DW_BENCH_COMMON_H
#define DW_BENCH_COMMON_H

#include <time.h>

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

#endif
