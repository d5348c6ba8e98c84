/*
 * test_kll.c - the quantile sketch: numpy type-7 answers while exact, rank error <= 1 % on
 * 1M values from five distributions (single sketch and 8-way merge), merge rules, byte-exact
 * serialization round trips, rejection of corrupt bytes, determinism, and update throughput.
 */
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_kll.h"

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dw_test.h"

/* Values per distribution in the accuracy tests (count). */
#define N_VALUES 1000000
/* Slices merged in the merge accuracy test (count). */
#define N_SLICES 8
/* Required max normalized rank error (fraction of n). */
#define MAX_RANK_ERROR 0.01
/* Updates timed in the throughput report (count). */
#define N_THROUGHPUT 10000000

/* ------------------------------------------------------------------------------------------ */
/* Seeded data                                                                                */

enum dist { DIST_UNIFORM, DIST_NORMAL, DIST_LOGNORMAL, DIST_EXPONENTIAL, DIST_BIMODAL, DIST_N };

static const char *dist_name[DIST_N] = {"uniform", "normal", "lognormal", "exponential", "bimodal"};

static void generate(enum dist d, uint64_t seed, double *out, size_t n)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        switch (d) {
        case DIST_UNIFORM:
            out[i] = -50.0 + 100.0 * dw_rand_u01(&s);
            break;
        case DIST_NORMAL:
            out[i] = 10.0 + 3.0 * dw_rand_normal(&s);
            break;
        case DIST_LOGNORMAL:
            out[i] = exp(1.0 + 1.5 * dw_rand_normal(&s));
            break;
        case DIST_EXPONENTIAL:
            out[i] = -log(1.0 - dw_rand_u01(&s)) / 0.25;
            break;
        default: /* bimodal: 70 % N(0, 1), 30 % N(8, 0.5) */
            if (dw_rand_u01(&s) < 0.7) {
                out[i] = dw_rand_normal(&s);
            } else {
                out[i] = 8.0 + 0.5 * dw_rand_normal(&s);
            }
            break;
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Number of sorted[] values < x (strict) or <= x. */
static size_t count_below(const double *sorted, size_t n, double x, int strict)
{
    size_t lo = 0;
    size_t hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int below = strict ? sorted[mid] < x : sorted[mid] <= x;
        if (below) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Independent type-7 quantile over a sorted array (the textbook formula). */
static double ref_quantile(const double *sorted, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) {
        return sorted[n - 1];
    }
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

/*
 * Max |estimated rank - true rank| over 200+ query points: 201 order statistics at evenly
 * spaced ranks, 100 random data values and 50 random points inside [min, max]. Also checks
 * that quantile(q) lands within the error of rank q.
 */
static double max_rank_error(struct dw_kll *sk, const double *sorted, size_t n, uint64_t seed)
{
    double worst = 0.0;
    uint64_t s = seed;
    for (int i = 0; i < 351; i++) {
        double x;
        if (i <= 200) {
            x = sorted[(size_t)((double)i / 200.0 * (double)(n - 1))];
        } else if (i <= 300) {
            x = sorted[dw_splitmix64(&s) % n];
        } else {
            x = sorted[0] + dw_rand_u01(&s) * (sorted[n - 1] - sorted[0]);
        }
        double lt = (double)count_below(sorted, n, x, 1) / (double)n;
        double le = (double)count_below(sorted, n, x, 0) / (double)n;
        double e1 = fabs(dw_kll_rank(sk, x) - lt);
        double e2 = fabs(dw_kll_rank_le(sk, x) - le);
        worst = fmax(worst, fmax(e1, e2));
    }
    for (int i = 1; i < 100; i++) {
        double q = i / 100.0;
        double v = dw_kll_quantile(sk, q);
        double lt = (double)count_below(sorted, n, v, 1) / (double)n;
        double le = (double)count_below(sorted, n, v, 0) / (double)n;
        double e = q < lt ? lt - q : (q > le ? q - le : 0.0);
        worst = fmax(worst, e);
    }
    return worst;
}

/* ------------------------------------------------------------------------------------------ */
/* Exact mode                                                                                 */

static struct dw_kll *sketch_of(const double *v, size_t n)
{
    struct dw_kll *sk = dw_kll_new(0, 0, 1);
    for (size_t i = 0; i < n; i++) {
        dw_kll_update(sk, v[i]);
    }
    return sk;
}

static void test_exact_hand_checked(void **state)
{
    const double a[] = {4, 2, 1, 3};
    struct dw_kll *sk = sketch_of(a, 4);
    assert_true(dw_kll_is_exact(sk));
    assert_int_equal(dw_kll_count(sk), 4);
    assert_near(dw_kll_quantile(sk, 0.25), 1.75, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.5), 2.5, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.9), 3.7, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.0), 1.0, 0);
    assert_near(dw_kll_quantile(sk, 1.0), 4.0, 0);
    assert_near(dw_kll_rank(sk, 2.0), 0.25, 0);
    assert_near(dw_kll_rank_le(sk, 2.0), 0.5, 0);
    assert_near(dw_kll_rank(sk, 0.5), 0.0, 0);
    assert_near(dw_kll_rank_le(sk, 9.0), 1.0, 0);
    assert_near(dw_kll_min(sk), 1.0, 0);
    assert_near(dw_kll_max(sk), 4.0, 0);
    assert_near(dw_kll_rank_error_bound(sk), 0.0, 0);
    dw_kll_destroy(sk);

    /* Ties: sorted [1 3 3 3 5 9]. */
    const double t[] = {5, 1, 3, 3, 3, 9};
    sk = sketch_of(t, 6);
    assert_near(dw_kll_quantile(sk, 0.5), 3.0, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.7), 4.0, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.9), 7.0, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.2), 3.0, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.1), 2.0, 1e-12);
    assert_near(dw_kll_rank(sk, 3.0), 1.0 / 6.0, 1e-15);
    assert_near(dw_kll_rank_le(sk, 3.0), 4.0 / 6.0, 1e-15);
    const double edges[] = {0, 1, 3, 3, 3.5, 9, 10};
    const uint64_t want[] = {0, 0, 1, 1, 4, 5, 6};
    uint64_t got[7];
    dw_kll_cdf(sk, edges, 7, got);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(got[i], want[i]);
    }
    double vals[6];
    uint64_t w[6];
    assert_int_equal(dw_kll_sorted_view(sk, NULL, NULL, 0), 6);
    assert_int_equal(dw_kll_sorted_view(sk, vals, w, 6), 6);
    const double sorted_t[] = {1, 3, 3, 3, 5, 9};
    for (int i = 0; i < 6; i++) {
        assert_near(vals[i], sorted_t[i], 0);
        assert_int_equal(w[i], 1);
    }
    /* A smaller value after a query: the cached order must not go stale. */
    dw_kll_update(sk, -1.0);
    assert_near(dw_kll_quantile(sk, 0.0), -1.0, 0);
    assert_near(dw_kll_rank(sk, 1.0), 1.0 / 7.0, 1e-15);
    dw_kll_destroy(sk);

    /* n = 1 and n = 2. */
    const double one[] = {42.0};
    sk = sketch_of(one, 1);
    assert_near(dw_kll_quantile(sk, 0.0), 42.0, 0);
    assert_near(dw_kll_quantile(sk, 0.37), 42.0, 0);
    assert_near(dw_kll_quantile(sk, 1.0), 42.0, 0);
    assert_near(dw_kll_rank(sk, 42.0), 0.0, 0);
    assert_near(dw_kll_rank_le(sk, 42.0), 1.0, 0);
    dw_kll_destroy(sk);
    const double two[] = {20.0, 10.0};
    sk = sketch_of(two, 2);
    assert_near(dw_kll_quantile(sk, 0.25), 12.5, 1e-12);
    assert_near(dw_kll_quantile(sk, 0.75), 17.5, 1e-12);
    assert_near(dw_kll_quantile(sk, 1.0), 20.0, 0);
    dw_kll_destroy(sk);

    /* Empty. */
    sk = dw_kll_new(0, 0, 1);
    assert_int_equal(dw_kll_count(sk), 0);
    assert_nan(dw_kll_quantile(sk, 0.5));
    assert_nan(dw_kll_rank(sk, 1.0));
    assert_nan(dw_kll_min(sk));
    assert_nan(dw_kll_max(sk));
    dw_kll_cdf(sk, edges, 7, got);
    assert_int_equal(got[6], 0);
    dw_kll_destroy(sk);
}

/* 4096 random values: every quantile and rank equals the textbook formula exactly. */
static void test_exact_random(void **state)
{
    size_t n = DW_KLL_DEFAULT_EXACT_CAPACITY;
    double *v = dw_malloc(n * sizeof(double));
    generate(DIST_LOGNORMAL, 99, v, n);
    for (size_t i = 0; i < n; i += 7) {
        v[i] = floor(v[i]); /* some ties */
    }
    struct dw_kll *sk = sketch_of(v, n);
    assert_true(dw_kll_is_exact(sk));
    qsort(v, n, sizeof(double), cmp_double);
    for (int i = 0; i <= 1000; i++) {
        double q = i / 1000.0;
        assert_near(dw_kll_quantile(sk, q), ref_quantile(v, n, q), 1e-9);
    }
    double edges[64];
    uint64_t counts[64];
    for (int i = 0; i < 64; i++) {
        edges[i] = i * 0.5;
    }
    dw_kll_cdf(sk, edges, 64, counts);
    for (int i = 0; i < 64; i++) {
        size_t lt = count_below(v, n, edges[i], 1);
        assert_int_equal(counts[i], lt);
        assert_near(dw_kll_rank(sk, edges[i]), (double)lt / (double)n, 0);
        assert_near(dw_kll_rank_le(sk, edges[i]),
                    (double)count_below(v, n, edges[i], 0) / (double)n, 0);
    }

    /* One more value crosses the exact capacity: estimated from here on. */
    dw_kll_update(sk, 1.0);
    assert_false(dw_kll_is_exact(sk));
    assert_int_equal(dw_kll_count(sk), n + 1);
    assert_true(dw_kll_rank_error_bound(sk) > 0.0);
    assert_true(dw_kll_rank_error_bound(sk) <= MAX_RANK_ERROR);
    assert_near(dw_kll_min(sk), v[0], 0);
    assert_near(dw_kll_max(sk), v[n - 1], 0);
    dw_kll_destroy(sk);
    free(v);
}

/* The serialized bytes of sk (malloc'd, length in *len). */
static uint8_t *bytes_of(struct dw_kll *sk, size_t *len)
{
    *len = dw_kll_serialize(sk, NULL, 0);
    uint8_t *b = dw_malloc(*len);
    assert_int_equal(dw_kll_serialize(sk, b, *len), *len);
    return b;
}

/* A reserved sketch holds what it reserved without growing, in the memory that growing by
 * doubling reaches for as many values, is capped at its exact capacity,
 * and gives the same bytes as one grown by doubling at every step, through the change to KLL
 * and beyond (reserving once compacting changes nothing). */
static void test_reserve(void **state)
{
    (void)state;
    enum { EXACT = 256, N = 1000 };
    double *v = dw_malloc(N * sizeof(double));
    generate(DIST_LOGNORMAL, 7, v, N);
    struct dw_kll *plain = dw_kll_new(0, EXACT, 11), *res = dw_kll_new(0, EXACT, 11);
    dw_kll_reserve(res, 100);
    size_t reserved = dw_kll_memory_bytes(res);
    assert_true(reserved >= dw_kll_memory_bytes(plain) + 100 * sizeof(double));
    for (size_t i = 0; i < N; i++) {
        dw_kll_update(plain, v[i]);
        dw_kll_update(res, v[i]);
        if (i + 1 == 100) {
            assert_int_equal(dw_kll_memory_bytes(res), reserved); /* no growth */
            /* the memory that doubling reached for the same values */
            assert_int_equal(dw_kll_memory_bytes(plain), reserved);
        }
        if (i % 37 == 0 || i + 1 == N) {
            size_t la, lb;
            uint8_t *a = bytes_of(plain, &la), *b = bytes_of(res, &lb);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
            free(a);
            free(b);
        }
        if (i == 500) {
            dw_kll_reserve(res, 10000); /* compacting: no effect */
        }
    }
    assert_false(dw_kll_is_exact(res));
    struct dw_kll *capped = dw_kll_new(0, EXACT, 11);
    dw_kll_reserve(capped, 1000000);
    assert_true(dw_kll_memory_bytes(capped) <= dw_kll_memory_bytes(plain) + EXACT * sizeof(double));
    dw_kll_destroy(capped);
    dw_kll_destroy(res);
    dw_kll_destroy(plain);
    free(v);
}

static void test_nan_asserts(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct dw_kll *sk = dw_kll_new(0, 0, 1);
        fclose(stderr); /* keep the expected assertion message out of the test log */
        dw_kll_update(sk, NAN);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ------------------------------------------------------------------------------------------ */
/* Accuracy on 1M values                                                                      */

static void test_rank_error_and_merge(void **state)
{
    double *data = dw_malloc(N_VALUES * sizeof(double));
    double *sorted = dw_malloc(N_VALUES * sizeof(double));
    for (int d = 0; d < DIST_N; d++) {
        generate((enum dist)d, 1000 + (uint64_t)d, data, N_VALUES);
        memcpy(sorted, data, N_VALUES * sizeof(double));
        qsort(sorted, N_VALUES, sizeof(double), cmp_double);

        /* One sketch over everything. */
        struct dw_kll *sk = dw_kll_new(0, 0, 7 + (uint64_t)d);
        for (size_t i = 0; i < N_VALUES; i++) {
            dw_kll_update(sk, data[i]);
        }
        assert_false(dw_kll_is_exact(sk));
        assert_int_equal(dw_kll_count(sk), N_VALUES);
        assert_near(dw_kll_min(sk), sorted[0], 0);
        assert_near(dw_kll_max(sk), sorted[N_VALUES - 1], 0);
        double err = max_rank_error(sk, sorted, N_VALUES, 5);
        /* Bounded memory: about 3k items plus 8 per level. */
        size_t retained = dw_kll_num_retained(sk);
        assert_true(retained < 3 * DW_KLL_DEFAULT_K + 8 * 20);
        assert_true(dw_kll_memory_bytes(sk) < 96 * 1024);

        /* N_SLICES sketches (as partitions would hold) merged into one. */
        struct dw_kll *merged = dw_kll_new(0, 0, 100 + (uint64_t)d);
        for (int p = 0; p < N_SLICES; p++) {
            struct dw_kll *part = dw_kll_new(0, 0, 200 + (uint64_t)p);
            size_t lo = (size_t)p * N_VALUES / N_SLICES;
            size_t hi = (size_t)(p + 1) * N_VALUES / N_SLICES;
            for (size_t i = lo; i < hi; i++) {
                dw_kll_update(part, data[i]);
            }
            dw_kll_merge(merged, part);
            dw_kll_destroy(part);
        }
        assert_int_equal(dw_kll_count(merged), N_VALUES);
        assert_near(dw_kll_min(merged), sorted[0], 0);
        assert_near(dw_kll_max(merged), sorted[N_VALUES - 1], 0);
        double merr = max_rank_error(merged, sorted, N_VALUES, 6);
        assert_true(dw_kll_num_retained(merged) < 3 * DW_KLL_DEFAULT_K + 8 * 20);

        /* The sorted view adds up, and cdf agrees with rank. */
        size_t m = dw_kll_sorted_view(merged, NULL, NULL, 0);
        double *vals = dw_malloc(m * sizeof(double));
        uint64_t *w = dw_malloc(m * sizeof(uint64_t));
        assert_int_equal(dw_kll_sorted_view(merged, vals, w, m), m);
        uint64_t total = 0;
        for (size_t i = 0; i < m; i++) {
            assert_true(i == 0 || vals[i] >= vals[i - 1]);
            total += w[i];
        }
        assert_int_equal(total, N_VALUES);
        double edges[11];
        uint64_t counts[11];
        for (int i = 0; i < 11; i++) {
            edges[i] = dw_kll_quantile(merged, i / 10.0);
        }
        dw_kll_cdf(merged, edges, 11, counts);
        for (int i = 0; i < 11; i++) {
            assert_near((double)counts[i] / N_VALUES, dw_kll_rank(merged, edges[i]), 1e-12);
        }
        assert_near(edges[0], sorted[0], 0);
        assert_near(edges[10], sorted[N_VALUES - 1], 0);
        free(vals);
        free(w);

        printf("[ kll      ] %-12s single max rank error %.5f, 8-way merge %.5f "
               "(retained %zu, %zu bytes)\n",
               dist_name[d], err, merr, retained, dw_kll_memory_bytes(sk));
        assert_true(err <= MAX_RANK_ERROR);
        assert_true(merr <= MAX_RANK_ERROR);
        dw_kll_destroy(merged);
        dw_kll_destroy(sk);
    }
    free(sorted);
    free(data);
}

/* ------------------------------------------------------------------------------------------ */
/* Merge rules                                                                                */

static void test_merge_modes(void **state)
{
    /* exact + exact within capacity stays exact and answers like one sketch. */
    struct dw_kll *a = dw_kll_new(0, 100, 1);
    struct dw_kll *b = dw_kll_new(0, 100, 2);
    struct dw_kll *all = dw_kll_new(0, 100, 3);
    for (int i = 0; i < 60; i++) {
        dw_kll_update(a, i);
        dw_kll_update(all, i);
    }
    for (int i = 60; i < 100; i++) {
        dw_kll_update(b, i * 1.5);
        dw_kll_update(all, i * 1.5);
    }
    dw_kll_merge(a, b);
    assert_true(dw_kll_is_exact(a));
    assert_int_equal(dw_kll_count(a), 100);
    assert_near(dw_kll_min(a), 0.0, 0);
    assert_near(dw_kll_max(a), 99 * 1.5, 0);
    for (int i = 0; i <= 20; i++) {
        assert_near(dw_kll_quantile(a, i / 20.0), dw_kll_quantile(all, i / 20.0), 0);
    }
    assert_int_equal(dw_kll_count(b), 40); /* src unchanged */

    /* One more exact value over the capacity: the merge leaves exact mode. */
    struct dw_kll *c = dw_kll_new(0, 100, 4);
    dw_kll_update(c, -5.0);
    dw_kll_merge(a, c);
    assert_false(dw_kll_is_exact(a));
    assert_int_equal(dw_kll_count(a), 101);
    assert_near(dw_kll_min(a), -5.0, 0);
    /* Few items: nothing compacted yet, so the answers are still those of all the data. */
    dw_kll_update(all, -5.0);
    for (int i = 0; i <= 20; i++) {
        assert_near(dw_kll_quantile(a, i / 20.0), dw_kll_quantile(all, i / 20.0), 0);
    }

    /* Empty source: no change; empty destination takes the source. */
    struct dw_kll *e = dw_kll_new(0, 100, 5);
    dw_kll_merge(a, e);
    assert_int_equal(dw_kll_count(a), 101);
    dw_kll_merge(e, b);
    assert_true(dw_kll_is_exact(e));
    assert_int_equal(dw_kll_count(e), 40);
    assert_near(dw_kll_min(e), 90.0, 0);

    /* KLL into exact, with a smaller k: the bound follows the smaller k. */
    struct dw_kll *big = dw_kll_new(64, 16, 6);
    for (int i = 0; i < 50000; i++) {
        dw_kll_update(big, (double)((i * 7919) % 50000));
    }
    assert_false(dw_kll_is_exact(big));
    dw_kll_merge(e, big);
    assert_false(dw_kll_is_exact(e));
    assert_int_equal(dw_kll_count(e), 50040);
    assert_near(dw_kll_min(e), 0.0, 0);
    assert_near(dw_kll_max(e), 49999.0, 0);
    assert_near(dw_kll_rank_error_bound(e), dw_kll_rank_error_for_k(64), 0);
    assert_true(fabs(dw_kll_rank(e, 25000.0) - 25000.0 / 50040.0) < 0.05);

    dw_kll_destroy(big);
    dw_kll_destroy(e);
    dw_kll_destroy(c);
    dw_kll_destroy(all);
    dw_kll_destroy(b);
    dw_kll_destroy(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Serialization                                                                              */

static uint8_t *serialize(struct dw_kll *sk, size_t *len)
{
    *len = dw_kll_serialize(sk, NULL, 0);
    uint8_t *buf = dw_malloc(*len);
    assert_int_equal(dw_kll_serialize(sk, buf, *len), *len);
    return buf;
}

static void assert_same_answers(struct dw_kll *x, struct dw_kll *y)
{
    assert_int_equal(dw_kll_count(x), dw_kll_count(y));
    assert_int_equal(dw_kll_is_exact(x), dw_kll_is_exact(y));
    assert_int_equal(dw_kll_num_retained(x), dw_kll_num_retained(y));
    assert_memory_equal(&(double){dw_kll_min(x)}, &(double){dw_kll_min(y)}, sizeof(double));
    assert_memory_equal(&(double){dw_kll_max(x)}, &(double){dw_kll_max(y)}, sizeof(double));
    for (int i = 0; i <= 100; i++) {
        double q = i / 100.0;
        double vx = dw_kll_quantile(x, q);
        double vy = dw_kll_quantile(y, q);
        assert_memory_equal(&vx, &vy, sizeof(double));
        double rx = dw_kll_rank(x, vx);
        double ry = dw_kll_rank(y, vx);
        assert_memory_equal(&rx, &ry, sizeof(double)); /* NaN when empty: compare bits */
        rx = dw_kll_rank_le(x, vx);
        ry = dw_kll_rank_le(y, vx);
        assert_memory_equal(&rx, &ry, sizeof(double));
    }
}

static void test_serialize_round_trip(void **state)
{
    size_t sizes[] = {0, 1, 1000, 200000};
    for (size_t t = 0; t < DW_ARRAY_SIZE(sizes); t++) {
        struct dw_kll *sk = dw_kll_new(0, 0, 42);
        uint64_t s = 17;
        for (size_t i = 0; i < sizes[t]; i++) {
            dw_kll_update(sk, dw_rand_normal(&s));
        }
        size_t len;
        uint8_t *buf = serialize(sk, &len);
        assert_int_equal(buf[0], DW_KLL_FORMAT);
        assert_int_equal(buf[1], DW_KLL_VERSION);
        /* Too small a buffer: size reported, nothing written. */
        uint8_t small[8] = {0};
        assert_int_equal(dw_kll_serialize(sk, small, sizeof(small)), len);
        assert_int_equal(small[0], 0);

        char err[256] = "";
        struct dw_kll *back = dw_kll_deserialize(buf, len, err, sizeof(err));
        assert_non_null(back);
        size_t len2;
        uint8_t *buf2 = serialize(back, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        /* (queries sort an exact level 0 in place: bytes first, answers after) */
        assert_same_answers(sk, back);

        /* Both continue identically (the coin-flip state travels with the bytes). */
        for (size_t i = 0; i < 50000; i++) {
            double x = dw_rand_normal(&s);
            dw_kll_update(sk, x);
            dw_kll_update(back, x);
        }
        free(buf2);
        free(buf);
        buf = serialize(sk, &len);
        buf2 = serialize(back, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        assert_same_answers(sk, back);
        free(buf2);
        free(buf);
        dw_kll_destroy(back);
        dw_kll_destroy(sk);
    }
}

static void swap_values(double *v, int i, int j)
{
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
}

/*
 * An exact level 0 is written in the order held. Whatever that order (ascending, an unsorted
 * head, one step down, descending, the last value out of place), the sketch read answers as one
 * built from the values, before and after more updates.
 */
static void test_deserialize_level0_order(void **state)
{
    enum { N = 200, HEAD = 10, MID = 120 };
    double asc[N];
    for (int i = 0; i < N; i++) {
        asc[i] = 1.0 + i / 2; /* pairs of ties */
    }
    for (int order = 0; order < 5; order++) {
        double v[N];
        for (int i = 0; i < N; i++) {
            v[i] = order == 3 ? asc[N - 1 - i] : asc[i]; /* 3: descending */
        }
        if (order == 1) { /* an unsorted head before an ascending tail */
            for (int i = 0; i < HEAD / 2; i++) {
                swap_values(v, i, HEAD - 1 - i);
            }
        } else if (order == 2) { /* one step down in the middle */
            swap_values(v, MID - 1, MID + 40);
        } else if (order == 4) { /* the last item below the one before */
            swap_values(v, N - 1, 0);
        }
        struct dw_kll *want = dw_kll_new(0, 0, 7);
        for (int i = 0; i < N; i++) {
            dw_kll_update(want, v[i]);
        }
        size_t len;
        uint8_t *buf = serialize(want, &len);
        assert_int_equal(len, 56 + 8 * N); /* the 52-byte header, level 0's count, its items */
        for (int i = 0; i < N; i++) {
            uint64_t bits;
            memcpy(&bits, &v[i], 8);
            for (int b = 0; b < 8; b++) {
                buf[56 + 8 * i + b] = (uint8_t)(bits >> (8 * b)); /* the items, in v's order */
            }
        }
        char err[256] = "";
        struct dw_kll *back = dw_kll_deserialize(buf, len, err, sizeof(err));
        assert_non_null(back);
        double vals[N];
        uint64_t w[N];
        assert_int_equal(dw_kll_sorted_view(back, vals, w, N), N);
        assert_memory_equal(vals, asc, sizeof(asc));
        assert_same_answers(back, want);
        dw_kll_destroy(back);

        back = dw_kll_deserialize(buf, len, err, sizeof(err));
        assert_non_null(back);
        const double more[3] = {0.5, 57.25, 1000.0}; /* in front of what was read */
        for (int i = 0; i < 3; i++) {
            dw_kll_update(back, more[i]);
            dw_kll_update(want, more[i]);
        }
        assert_same_answers(back, want);
        free(buf);
        dw_kll_destroy(back);
        dw_kll_destroy(want);
    }
}

/* Deserializing must survive anything: NULL with a reason, or a usable sketch. */
static void check_rejected(const uint8_t *buf, size_t len)
{
    char err[256] = "";
    struct dw_kll *sk = dw_kll_deserialize(buf, len, err, sizeof(err));
    assert_null(sk);
    assert_prefix(err, "kll: ");
}

static void test_deserialize_corrupt(void **state)
{
    struct dw_kll *sk = dw_kll_new(0, 0, 9);
    uint64_t s = 3;
    for (int i = 0; i < 30000; i++) {
        dw_kll_update(sk, dw_rand_u01(&s));
    }
    struct dw_kll *ex = dw_kll_new(0, 0, 9);
    for (int i = 0; i < 100; i++) {
        dw_kll_update(ex, dw_rand_u01(&s));
    }
    struct dw_kll *sks[2] = {sk, ex};
    for (int t = 0; t < 2; t++) {
        size_t len;
        uint8_t *buf = serialize(sks[t], &len);
        /* Every truncation. */
        for (size_t cut = 0; cut < len; cut++) {
            check_rejected(buf, cut);
        }
        check_rejected(NULL, 0);
        /* Trailing garbage. */
        uint8_t *longer = dw_malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        check_rejected(longer, len + 1);
        free(longer);
        /* Wrong version, wrong format, unknown flag, count that disagrees with the items. */
        uint8_t *bad = dw_malloc(len);
        const size_t pos[] = {1, 1, 0, 2, 12, 3};
        const uint8_t val[] = {3, 0, 0x4A, 0x80, 0xFF, 0};
        for (size_t i = 0; i < DW_ARRAY_SIZE(pos); i++) {
            memcpy(bad, buf, len);
            bad[pos[i]] = val[i];
            check_rejected(bad, len);
        }
        /* Every single-byte flip: never a crash; if accepted, the sketch must work. */
        for (size_t i = 0; i < len; i++) {
            memcpy(bad, buf, len);
            bad[i] ^= (uint8_t)(1u << (i % 8));
            char err[256] = "";
            struct dw_kll *back = dw_kll_deserialize(bad, len, err, sizeof(err));
            if (back) {
                (void)dw_kll_quantile(back, 0.5);
                dw_kll_update(back, 0.5);
                dw_kll_destroy(back);
            } else {
                assert_int_not_equal(err[0], '\0');
            }
        }
        free(bad);
        free(buf);
    }
    /* Random garbage of random lengths, raw and behind a valid-looking header. */
    uint8_t junk[4096];
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(dw_splitmix64(&s) % sizeof(junk));
        for (size_t j = 0; j < len; j++) {
            junk[j] = (uint8_t)dw_splitmix64(&s);
        }
        if (i % 2 == 1 && len >= 2) {
            junk[0] = DW_KLL_FORMAT;
            junk[1] = DW_KLL_VERSION;
        }
        check_rejected(junk, len);
    }
    dw_kll_destroy(ex);
    dw_kll_destroy(sk);
}

/*
 * The byte layout of docs/sketches.md, written out by hand. An exact sketch's level 0 is
 * written in the order held (the newest value first), not sorted: sorting is left to the
 * reader that needs it (the evaluation merges and sorts the partitions' values once).
 */
static void test_serialize_layout(void **state)
{
    const uint8_t want[] = {
        0x4B, 0x02, 0x01, 0x01,                         /* format, version, exact, 1 level */
        0x90, 0x01, 0x90, 0x01,                         /* k = 400, min_k = 400 */
        0x00, 0x10, 0x00, 0x00,                         /* exact_capacity = 4096 */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* n = 2 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* seed */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* rng state (no flips yet) */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x3F, /* min = 1.5 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40, /* max = 2.5 */
        0x02, 0x00, 0x00, 0x00,                         /* level 0: 2 items */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40, /* 2.5 (added last) */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x3F, /* 1.5 */
    };
    struct dw_kll *sk = dw_kll_new(400, 4096, 0x0102030405060708ULL);
    dw_kll_update(sk, 1.5);
    dw_kll_update(sk, 2.5);
    size_t len;
    uint8_t *buf = serialize(sk, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    char err[256] = "";
    struct dw_kll *back = dw_kll_deserialize(want, sizeof(want), err, sizeof(err));
    assert_non_null(back);
    assert_near(dw_kll_quantile(back, 0.5), 2.0, 0);
    assert_near(dw_kll_rank(back, 2.5), 0.5, 0);

    /* Version 1 (level 0 always ascending) is still read, and its order still checked. */
    uint8_t v1[sizeof(want)];
    memcpy(v1, want, sizeof(want));
    v1[1] = 0x01;
    check_rejected(v1, sizeof(v1));
    memcpy(v1 + 56, want + 64, 8);
    memcpy(v1 + 64, want + 56, 8);
    struct dw_kll *old = dw_kll_deserialize(v1, sizeof(v1), err, sizeof(err));
    assert_non_null(old);
    assert_same_answers(old, back);
    dw_kll_destroy(old);

    /* A count beyond 2^56 and an empty top level are refused. */
    uint8_t bad[sizeof(want) + 4];
    memcpy(bad, want, sizeof(want));
    bad[19] = 0x02; /* n += 2^57 */
    check_rejected(bad, sizeof(want));
    memcpy(bad, want, sizeof(want));
    bad[2] = 0x00; /* KLL mode */
    bad[3] = 0x02; /* 2 levels, the top one empty */
    memset(bad + sizeof(want), 0, 4);
    check_rejected(bad, sizeof(bad));
    free(buf);
    dw_kll_destroy(back);
    dw_kll_destroy(sk);
}

/* ------------------------------------------------------------------------------------------ */
/* Determinism and throughput                                                                 */

static void test_determinism(void **state)
{
    struct dw_kll *a = dw_kll_new(0, 0, 1234);
    struct dw_kll *b = dw_kll_new(0, 0, 1234);
    struct dw_kll *c = dw_kll_new(0, 0, 4321);
    uint64_t s = 11;
    for (int i = 0; i < 300000; i++) {
        double x = dw_rand_normal(&s);
        dw_kll_update(a, x);
        dw_kll_update(b, x);
        dw_kll_update(c, x);
        if (i % 1000 == 999) {
            /* Queries on one of the twins must not change its state. */
            (void)dw_kll_quantile(a, 0.5);
            (void)dw_kll_rank(a, 0.0);
        }
    }
    size_t la, lb, lc;
    uint8_t *ba = serialize(a, &la);
    uint8_t *bb = serialize(b, &lb);
    uint8_t *bc = serialize(c, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_true(la != lc || memcmp(ba, bc, la) != 0); /* another seed, other coin flips */

    /* reset restarts the coin flips: the same input gives the same bytes again. */
    dw_kll_reset(b);
    assert_int_equal(dw_kll_count(b), 0);
    assert_true(dw_kll_is_exact(b));
    s = 11;
    for (int i = 0; i < 300000; i++) {
        dw_kll_update(b, dw_rand_normal(&s));
    }
    free(bb);
    bb = serialize(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(bc);
    free(bb);
    free(ba);
    dw_kll_destroy(c);
    dw_kll_destroy(b);
    dw_kll_destroy(a);
}

static void test_throughput(void **state)
{
    double *v = dw_malloc(((size_t)1 << 20) * sizeof(double));
    generate(DIST_NORMAL, 77, v, 1 << 20);
    struct dw_kll *sk = dw_kll_new(0, 0, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < N_THROUGHPUT; i++) {
        dw_kll_update(sk, v[i & ((1 << 20) - 1)]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("[ kll      ] %d updates in %.3f s: %.1f M updates/s (%.1f ns each), "
           "%zu items retained, %zu bytes\n",
           N_THROUGHPUT, secs, N_THROUGHPUT / secs / 1e6, secs * 1e9 / N_THROUGHPUT,
           dw_kll_num_retained(sk), dw_kll_memory_bytes(sk));
    assert_int_equal(dw_kll_count(sk), N_THROUGHPUT);
    dw_kll_destroy(sk);
    free(v);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_hand_checked),
        cmocka_unit_test(test_exact_random),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_nan_asserts),
        cmocka_unit_test(test_rank_error_and_merge),
        cmocka_unit_test(test_merge_modes),
        cmocka_unit_test(test_serialize_round_trip),
        cmocka_unit_test(test_deserialize_corrupt),
        cmocka_unit_test(test_deserialize_level0_order),
        cmocka_unit_test(test_serialize_layout),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_throughput),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
