/*
 * test_changedet.c - Page-Hinkley, ADWIN and DDM against river's documented detections, plus
 * behaviour on stationary and abruptly changing error streams, checkpoint round trips and
 * corrupt records.
 *
 * river's examples build their streams with Python's `random` module (random.Random(seed),
 * rng.choices) or numpy's legacy RandomState. Both are MT19937, so this file carries a small
 * MT19937 and reproduces the exact streams:
 *   - Python: random.seed(int) is init_by_array over the int's 32-bit words (one word here);
 *     random() is genrand_res53; choices(pop, k) picks pop[floor(random() * len(pop))];
 *     choices(pop, weights) bisects random() * total in the cumulative weights.
 *   - numpy legacy: seed(int) is init_genrand(int); randint(0, n) for n a power of two draws
 *     one 32-bit word per value and masks it with n - 1 (masked rejection never rejects).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_changedet.h"
#include "driftwatch/core/dw_codec.h"

#include "dw_test.h"

/* ---------------------------------------------------------------- MT19937 */

#define MT_N 624
#define MT_M 397

struct mt {
    uint32_t s[MT_N];
    int i;
};

static void mt_init_genrand(struct mt *m, uint32_t seed)
{
    m->s[0] = seed;
    for (int i = 1; i < MT_N; i++) {
        m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + (uint32_t)i;
    }
    m->i = MT_N;
}

static void mt_init_by_array(struct mt *m, const uint32_t *key, int len)
{
    mt_init_genrand(m, 19650218u);
    int i = 1;
    int j = 0;
    for (int k = (MT_N > len ? MT_N : len); k; k--) {
        m->s[i] =
            (m->s[i] ^ ((m->s[i - 1] ^ (m->s[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) {
            m->s[0] = m->s[MT_N - 1];
            i = 1;
        }
        if (j >= len) {
            j = 0;
        }
    }
    for (int k = MT_N - 1; k; k--) {
        m->s[i] = (m->s[i] ^ ((m->s[i - 1] ^ (m->s[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) {
            m->s[0] = m->s[MT_N - 1];
            i = 1;
        }
    }
    m->s[0] = 0x80000000u;
}

static uint32_t mt_next(struct mt *m)
{
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    uint32_t y;
    if (m->i >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (m->s[kk] & 0x80000000u) | (m->s[kk + 1] & 0x7fffffffu);
            m->s[kk] = m->s[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (m->s[kk] & 0x80000000u) | (m->s[kk + 1] & 0x7fffffffu);
            m->s[kk] = m->s[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (m->s[MT_N - 1] & 0x80000000u) | (m->s[0] & 0x7fffffffu);
        m->s[MT_N - 1] = m->s[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        m->i = 0;
    }
    y = m->s[m->i++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

/* Python's random.Random(seed) for 0 <= seed < 2^32. */
static void py_seed(struct mt *m, uint32_t seed)
{
    mt_init_by_array(m, &seed, 1);
}

/* Python's random.random(). */
static double py_random(struct mt *m)
{
    uint32_t a = mt_next(m) >> 5;
    uint32_t b = mt_next(m) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* rng.choices(population, k=k) appended to out[*n]. */
static void py_choices(struct mt *m, const double *pop, int npop, int k, double *out, int *n)
{
    double len = (double)npop;
    for (int i = 0; i < k; i++) {
        out[(*n)++] = pop[(int)floor(py_random(m) * len)];
    }
}

/* rng.choices([0, 1], k=k, weights=[w0, w1]) appended to out[*n]. */
static void py_choices01_weighted(struct mt *m, double w0, double w1, int k, double *out, int *n)
{
    double cum0 = w0;
    double total = (w0 + w1) + 0.0;
    for (int i = 0; i < k; i++) {
        /* bisect_right(cum_weights, random() * total, 0, hi=1) */
        out[(*n)++] = (py_random(m) * total < cum0) ? 0.0 : 1.0;
    }
}

/* ---------------------------------------------------------------- helpers */

#define MAX_STREAM 4000
#define MAX_DET 64

static int run_ph(const double *xs, int n, int *det)
{
    struct dw_cd_ph ph;
    struct dw_cd_ph_params p = dw_cd_ph_defaults();
    assert_int_equal(dw_cd_ph_init(&ph, &p, NULL, 0), 0);
    int nd = 0;
    for (int i = 0; i < n; i++) {
        if (dw_cd_ph_update(&ph, xs[i])) {
            assert_true(nd < MAX_DET);
            det[nd++] = i;
        }
    }
    return nd;
}

static int run_adwin(const double *xs, int n, int *det)
{
    struct dw_cd_adwin ad;
    struct dw_cd_adwin_params p = dw_cd_adwin_defaults();
    assert_int_equal(dw_cd_adwin_init(&ad, &p, NULL, 0), 0);
    int nd = 0;
    for (int i = 0; i < n; i++) {
        if (dw_cd_adwin_update(&ad, xs[i])) {
            assert_true(nd < MAX_DET);
            det[nd++] = i;
        }
    }
    dw_cd_adwin_free(&ad);
    return nd;
}

/* The doctest stream of PageHinkley and ADWIN: Random(12345), 1000 of {0,1}, 1000 of 4..7. */
static int stream_12345(double *xs)
{
    static const double bits[2] = {0, 1};
    static const double four_to_seven[4] = {4, 5, 6, 7};
    struct mt m;
    int n = 0;
    py_seed(&m, 12345);
    py_choices(&m, bits, 2, 1000, xs, &n);
    py_choices(&m, four_to_seven, 4, 1000, xs, &n);
    return n;
}

/* ---------------------------------------------------------------- generator checks */

static void test_mt_matches_references(void **state)
{
    (void)state;
    struct mt m;
    /* MT19937 reference: the first output for the default seed 5489 */
    mt_init_genrand(&m, 5489u);
    assert_int_equal(mt_next(&m), 3499211612u);
    /* CPython 3.11: random.Random(12345).random() == 0.41661987254534116 */
    py_seed(&m, 12345);
    assert_double_exact(py_random(&m), 0.41661987254534116);
    /* CPython 3.11: random.Random(42).choices([0, 1], k=5) == [1, 0, 0, 0, 1] */
    static const double bits[2] = {0, 1};
    double out[5];
    int n = 0;
    py_seed(&m, 42);
    py_choices(&m, bits, 2, 5, out, &n);
    assert_double_exact(out[0], 1);
    assert_double_exact(out[1], 0);
    assert_double_exact(out[2], 0);
    assert_double_exact(out[3], 0);
    assert_double_exact(out[4], 1);
}

/* ---------------------------------------------------------------- river's examples */

static void test_ph_river_doctest(void **state)
{
    (void)state;
    static double xs[MAX_STREAM];
    int det[MAX_DET];
    int n = stream_12345(xs);
    int nd = run_ph(xs, n, det);
    /* river PageHinkley docstring: "Change detected at index 1006, input value: 5" */
    assert_int_equal(nd, 1);
    assert_int_equal(det[0], 1006);
    assert_double_exact(xs[1006], 5.0);
}

static void test_adwin_river_doctest(void **state)
{
    (void)state;
    static double xs[MAX_STREAM];
    int det[MAX_DET];
    int n = stream_12345(xs);
    int nd = run_adwin(xs, n, det);
    /* river ADWIN docstring: "Change detected at index 1023, input value: 4" */
    assert_int_equal(nd, 1);
    assert_int_equal(det[0], 1023);
    assert_double_exact(xs[1023], 4.0);
}

static void test_adwin_river_multiple_drifts(void **state)
{
    (void)state;
    static const double bits[2] = {0, 1};
    static const double four_to_seven[4] = {4, 5, 6, 7};
    static double xs[MAX_STREAM];
    int det[MAX_DET];
    struct mt m;
    int n = 0;
    py_seed(&m, 42);
    py_choices(&m, bits, 2, 1000, xs, &n);
    py_choices(&m, four_to_seven, 4, 1000, xs, &n);
    py_choices(&m, bits, 2, 1000, xs, &n);
    py_choices(&m, four_to_seven, 4, 1000, xs, &n);
    int nd = run_adwin(xs, n, det);
    /* river drift/test_adwin_regression.py test_multiple_drifts: [1023, 2015, 3007] */
    assert_int_equal(nd, 3);
    assert_int_equal(det[0], 1023);
    assert_int_equal(det[1], 2015);
    assert_int_equal(det[2], 3007);
}

static void test_adwin_river_numpy_stream(void **state)
{
    (void)state;
    static double xs[MAX_STREAM];
    int det[MAX_DET];
    struct mt m;
    /* np.random.seed(12345); randint(2, size=1000) then randint(8, size=1000) */
    mt_init_genrand(&m, 12345u);
    for (int i = 0; i < 1000; i++) {
        xs[i] = (double)(mt_next(&m) & 1u);
    }
    for (int i = 1000; i < 2000; i++) {
        xs[i] = (double)(mt_next(&m) & 7u);
    }
    int nd = run_adwin(xs, 2000, det);
    /* river drift/test_adwin_regression.py test_basic_drift_at_expected_index: [1023] */
    assert_int_equal(nd, 1);
    assert_int_equal(det[0], 1023);
}

static void test_ddm_river_doctest(void **state)
{
    (void)state;
    static const double bits[2] = {0, 1};
    static double xs[MAX_STREAM];
    struct mt m;
    int n = 0;
    py_seed(&m, 42);
    py_choices(&m, bits, 2, 1000, xs, &n);
    py_choices01_weighted(&m, 0.3, 0.7, 1000, xs, &n);

    struct dw_cd_ddm ddm;
    struct dw_cd_ddm_params p = dw_cd_ddm_defaults();
    assert_int_equal(dw_cd_ddm_init(&ddm, &p, NULL, 0), 0);
    /* the docstring prints the first warning after each change, and every change */
    int warn_idx[8];
    int change_idx[8];
    int nw = 0;
    int nc = 0;
    int print_warning = 1;
    for (int i = 0; i < n; i++) {
        dw_cd_ddm_update(&ddm, xs[i]);
        if (dw_cd_ddm_warning(&ddm) && print_warning) {
            assert_true(nw < 8);
            warn_idx[nw++] = i;
            print_warning = 0;
        }
        if (ddm.drift) {
            assert_true(nc < 8);
            change_idx[nc++] = i;
            print_warning = 1;
        }
    }
    /* river DDM docstring: warning 1084, change 1334, warning 1492 */
    assert_int_equal(nw, 2);
    assert_int_equal(nc, 1);
    assert_int_equal(warn_idx[0], 1084);
    assert_int_equal(change_idx[0], 1334);
    assert_int_equal(warn_idx[1], 1492);
}

/* ---------------------------------------------------------------- semantics */

static void test_reset_after_detection(void **state)
{
    (void)state;
    static double xs[MAX_STREAM];
    int n = stream_12345(xs);
    struct dw_cd_adwin ad;
    struct dw_cd_adwin_params p = dw_cd_adwin_defaults();
    assert_int_equal(dw_cd_adwin_init(&ad, &p, NULL, 0), 0);
    int i = 0;
    for (; i < n; i++) {
        if (dw_cd_adwin_update(&ad, xs[i])) {
            break;
        }
    }
    assert_int_equal(i, 1023);
    /* the detecting state stays readable: the window dropped its oldest part only */
    assert_true(dw_cd_adwin_width(&ad) > 1.0);
    assert_true(dw_cd_adwin_estimation(&ad) > 1.0);
    /* the next element starts a fresh window (river: `if self.drift_detected: self._reset()`) */
    assert_int_equal(dw_cd_adwin_update(&ad, 42.0), 0);
    assert_double_exact(dw_cd_adwin_width(&ad), 1.0);
    assert_double_exact(dw_cd_adwin_estimation(&ad), 42.0);
    assert_double_exact(dw_cd_adwin_variance(&ad), 0.0);
    dw_cd_adwin_free(&ad);

    /* Page-Hinkley: the mean restarts from the element after the detection */
    struct dw_cd_ph ph;
    struct dw_cd_ph_params pp = dw_cd_ph_defaults();
    assert_int_equal(dw_cd_ph_init(&ph, &pp, NULL, 0), 0);
    for (i = 0; i < n; i++) {
        if (dw_cd_ph_update(&ph, xs[i])) {
            break;
        }
    }
    assert_int_equal(i, 1006);
    assert_true(dw_cd_ph_mean(&ph) > 0.5);
    dw_cd_ph_update(&ph, 3.0);
    assert_double_exact(dw_cd_ph_mean(&ph), 3.0);
    assert_int_equal(ph.n_seen, 1008);
    assert_int_equal(ph.n_detections, 1);
}

static void test_adwin_statistics(void **state)
{
    (void)state;
    struct dw_cd_adwin ad;
    struct dw_cd_adwin_params p = dw_cd_adwin_defaults();
    assert_int_equal(dw_cd_adwin_init(&ad, &p, NULL, 0), 0);
    assert_double_exact(dw_cd_adwin_estimation(&ad), 0.0);
    for (int v = 1; v <= 5; v++) {
        dw_cd_adwin_update(&ad, (double)v);
    }
    assert_double_exact(dw_cd_adwin_width(&ad), 5.0);
    assert_double_exact(dw_cd_adwin_estimation(&ad), 3.0);
    assert_true(fabs(dw_cd_adwin_variance(&ad) - 10.0) < 1e-12);
    dw_cd_adwin_free(&ad);

    /* no check ever (huge clock): the buckets keep the exact sum of squared deviations */
    p.clock = 1000000;
    assert_int_equal(dw_cd_adwin_init(&ad, &p, NULL, 0), 0);
    double sum = 0.0;
    for (int i = 0; i < 200; i++) {
        dw_cd_adwin_update(&ad, (double)(i % 7));
        sum += (double)(i % 7);
    }
    double mean = sum / 200.0;
    double ss = 0.0;
    for (int i = 0; i < 200; i++) {
        ss += ((double)(i % 7) - mean) * ((double)(i % 7) - mean);
    }
    assert_double_exact(dw_cd_adwin_width(&ad), 200.0);
    assert_near(dw_cd_adwin_variance(&ad), ss, 1e-9 * ss);
    /* exponential histogram: at most max_buckets summaries per level, log2 levels */
    assert_true(ad.n_levels <= 8);
    double width = 0.0;
    for (uint32_t l = 0; l < ad.n_levels; l++) {
        assert_true(ad.count[l] <= p.max_buckets);
        width += ldexp((double)ad.count[l], (int)l);
    }
    assert_double_exact(width, 200.0);
    dw_cd_adwin_free(&ad);
}

static void test_non_finite_ignored(void **state)
{
    (void)state;
    struct dw_cd cd;
    static const enum dw_cd_kind kinds[3] = {DW_CD_PAGE_HINKLEY, DW_CD_ADWIN, DW_CD_DDM};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(dw_cd_init_default(&cd, kinds[k], NULL, 0), 0);
        dw_cd_update(&cd, 1.0);
        dw_cd_update(&cd, 0.0);
        assert_int_equal(dw_cd_update(&cd, NAN), 0);
        assert_int_equal(dw_cd_update(&cd, INFINITY), 0);
        assert_double_exact(dw_cd_estimation(&cd), 0.5);
        dw_cd_free(&cd);
    }
}

static void test_params_and_kinds(void **state)
{
    (void)state;
    char err[256];
    struct dw_cd_adwin_params ap = dw_cd_adwin_defaults();
    assert_double_exact(ap.delta, 0.002);
    assert_int_equal(ap.clock, 32);
    assert_int_equal(ap.max_buckets, 5);
    assert_int_equal(ap.min_window_length, 5);
    assert_int_equal(ap.grace_period, 10);
    struct dw_cd_ph_params pp = dw_cd_ph_defaults();
    assert_int_equal(pp.min_instances, 30);
    assert_double_exact(pp.delta, 0.005);
    assert_double_exact(pp.threshold, 50.0);
    assert_double_exact(pp.alpha, 1 - 0.0001);
    assert_int_equal(pp.mode, DW_CD_PH_BOTH);
    struct dw_cd_ddm_params dp = dw_cd_ddm_defaults();
    assert_int_equal(dp.warm_start, 30);
    assert_double_exact(dp.warning_threshold, 2.0);
    assert_double_exact(dp.drift_threshold, 3.0);

    struct dw_cd_adwin ad;
    ap.delta = 0.0;
    assert_int_equal(dw_cd_adwin_init(&ad, &ap, err, sizeof(err)), -1);
    assert_contains(err, "delta");
    ap = dw_cd_adwin_defaults();
    ap.clock = 0;
    assert_int_equal(dw_cd_adwin_init(&ad, &ap, err, sizeof(err)), -1);
    assert_contains(err, "clock");
    struct dw_cd_ph ph;
    pp.alpha = NAN;
    assert_int_equal(dw_cd_ph_init(&ph, &pp, err, sizeof(err)), -1);
    struct dw_cd_ddm ddm;
    dp.drift_threshold = INFINITY;
    assert_int_equal(dw_cd_ddm_init(&ddm, &dp, err, sizeof(err)), -1);

    enum dw_cd_kind kind;
    assert_int_equal(dw_cd_kind_parse("adwin", &kind), 0);
    assert_int_equal(kind, DW_CD_ADWIN);
    assert_int_equal(dw_cd_kind_parse("page_hinkley", &kind), 0);
    assert_string_equal(dw_cd_kind_name(kind), "page_hinkley");
    assert_int_equal(dw_cd_kind_parse("ddm", &kind), 0);
    assert_string_equal(dw_cd_kind_name(kind), "ddm");
    assert_int_equal(dw_cd_kind_parse("eddm", &kind), -1);
}

static void test_ph_modes(void **state)
{
    (void)state;
    struct dw_cd_ph ph;
    struct dw_cd_ph_params p = dw_cd_ph_defaults();
    /* a drop of the mean from 5 to 0: seen by "down" and "both", never by "up" */
    int first[3] = {-1, -1, -1};
    for (int mode = 0; mode < 3; mode++) {
        p.mode = (enum dw_cd_ph_mode)mode;
        assert_int_equal(dw_cd_ph_init(&ph, &p, NULL, 0), 0);
        for (int i = 0; i < 2000; i++) {
            if (dw_cd_ph_update(&ph, i < 1000 ? 5.0 : 0.0) && first[mode] < 0) {
                first[mode] = i;
            }
        }
    }
    assert_int_equal(first[DW_CD_PH_UP], -1);
    assert_true(first[DW_CD_PH_DOWN] > 1000 && first[DW_CD_PH_DOWN] < 1030);
    assert_int_equal(first[DW_CD_PH_BOTH], first[DW_CD_PH_DOWN]);
}

/* ---------------------------------------------------------------- error-rate streams */

/* Bernoulli(p) errors drawn with Python's random(): 1 when random() < p. */
static double bernoulli(struct mt *m, double p)
{
    return py_random(m) < p ? 1.0 : 0.0;
}

static void test_stationary_no_false_alarm(void **state)
{
    (void)state;
    struct dw_cd_adwin ad;
    struct dw_cd_ddm ddm;
    struct dw_cd_adwin_params ap = dw_cd_adwin_defaults();
    struct dw_cd_ddm_params dp = dw_cd_ddm_defaults();
    assert_int_equal(dw_cd_adwin_init(&ad, &ap, NULL, 0), 0);
    assert_int_equal(dw_cd_ddm_init(&ddm, &dp, NULL, 0), 0);
    struct mt m;
    py_seed(&m, 1);
    int warnings = 0;
    for (int i = 0; i < 100000; i++) {
        double x = bernoulli(&m, 0.1);
        dw_cd_adwin_update(&ad, x);
        dw_cd_ddm_update(&ddm, x);
        warnings += dw_cd_ddm_warning(&ddm);
    }
    /* Random(1), 100k Bernoulli(0.1) errors: neither ADWIN nor DDM fires */
    assert_int_equal(ad.n_detections, 0);
    assert_int_equal(ddm.n_detections, 0);
    /* ADWIN kept every element (no cut) and both estimate the rate */
    assert_double_exact(dw_cd_adwin_width(&ad), 100000.0);
    assert_true(fabs(dw_cd_adwin_estimation(&ad) - 0.1) < 0.005);
    assert_true(fabs(dw_cd_ddm_error_rate(&ddm) - 0.1) < 0.005);
    print_message("stationary, Random(1): DDM elements in the warning zone: %d of 100000\n",
                  warnings);
    dw_cd_adwin_free(&ad);
}

/*
 * Over more seeds the behaviour documented in docs/change-detectors.md: ADWIN stays silent;
 * DDM raises false alarms, mostly within a few hundred elements of a (re)start, where its
 * minimum p + s is estimated from a few dozen elements (p = 0 after warm start even gives
 * s = 0, so the first error "drifts"); Page-Hinkley with river's threshold 50 fires a few times
 * per 100k elements on 0/1 errors.
 */
static void test_stationary_false_alarm_rates(void **state)
{
    (void)state;
    static const enum dw_cd_kind kinds[3] = {DW_CD_PAGE_HINKLEY, DW_CD_ADWIN, DW_CD_DDM};
    uint64_t total[3] = {0, 0, 0};
    uint64_t ddm_early = 0;
    for (uint32_t seed = 1; seed <= 10; seed++) {
        for (int k = 0; k < 3; k++) {
            struct dw_cd cd;
            struct mt m;
            assert_int_equal(dw_cd_init_default(&cd, kinds[k], NULL, 0), 0);
            py_seed(&m, seed);
            for (int i = 0; i < 100000; i++) {
                if (dw_cd_update(&cd, bernoulli(&m, 0.1)) && kinds[k] == DW_CD_DDM &&
                    cd.u.ddm.n <= 1000.0) {
                    ddm_early++;
                }
            }
            total[k] += dw_cd_detections(&cd);
            dw_cd_free(&cd);
        }
    }
    print_message("10 x 100k stationary: page_hinkley %lu, adwin %lu, ddm %lu (%lu within 1000 "
                  "elements of a start)\n",
                  (unsigned long)total[0], (unsigned long)total[1], (unsigned long)total[2],
                  (unsigned long)ddm_early);
    assert_int_equal(total[1], 0);
    /* observed: ~0.85 DDM alarms and ~2.7 PH alarms per 100k-element stream */
    assert_true(total[2] <= 20);
    assert_true(ddm_early * 2 >= total[2]);
    assert_true(total[0] >= 10 && total[0] <= 50);
}

static void test_abrupt_change_detected(void **state)
{
    (void)state;
    /* 0.1 -> 0.5 error rate at element 5000, over ten seeds: every detector fires soon after
     * the change. Alarms before it are counted apart (DDM's early false alarms, see above). */
    static const enum dw_cd_kind kinds[3] = {DW_CD_PAGE_HINKLEY, DW_CD_ADWIN, DW_CD_DDM};
    /* Worst delay allowed, in elements. ADWIN checks every 32 elements; PH needs its sum past
     * 50; DDM compares the error rate since its last reset with its running minimum, so its
     * delay grows with the length of the stable period (observed up to ~650 elements after
     * 5000 stable ones over 30 seeds). The median delay of each must stay under 150. */
    static const int max_delay[3] = {200, 100, 1000};
    int before[3] = {0, 0, 0};
    int delays[3][10];
    for (uint32_t seed = 1; seed <= 10; seed++) {
        for (int k = 0; k < 3; k++) {
            struct dw_cd cd;
            struct mt m;
            assert_int_equal(dw_cd_init_default(&cd, kinds[k], NULL, 0), 0);
            py_seed(&m, seed);
            int first = -1;
            for (int i = 0; i < 6000 && first < 0; i++) {
                double x = bernoulli(&m, i < 5000 ? 0.1 : 0.5);
                if (dw_cd_update(&cd, x)) {
                    if (i < 5000) {
                        before[k]++;
                    } else {
                        first = i;
                    }
                }
            }
            print_message("seed %u %s: first detection after the change at %d\n", (unsigned)seed,
                          dw_cd_kind_name(kinds[k]), first);
            assert_true(first >= 5000);
            assert_true(first - 5000 <= max_delay[k]);
            delays[k][seed - 1] = first - 5000;
            dw_cd_free(&cd);
        }
    }
    for (int k = 0; k < 3; k++) {
        /* median of ten: at least six delays under 150 elements */
        int fast = 0;
        for (int s = 0; s < 10; s++) {
            fast += delays[k][s] < 150;
        }
        assert_true(fast >= 6);
    }
    print_message("alarms before the change: page_hinkley %d, adwin %d, ddm %d\n", before[0],
                  before[1], before[2]);
    assert_int_equal(before[1], 0);
}

/* ---------------------------------------------------------------- checkpoints */

/* A stream with several changes: error rates 0.1, 0.5, 0.1, 0.6, 0.2 over 3000 each. */
static int changing_stream(double *xs, int cap)
{
    static const double rates[5] = {0.1, 0.5, 0.1, 0.6, 0.2};
    struct mt m;
    py_seed(&m, 77);
    int n = 0;
    for (int r = 0; r < 5; r++) {
        for (int i = 0; i < 3000 && n < cap; i++) {
            xs[n++] = bernoulli(&m, rates[r]);
        }
    }
    return n;
}

/* Serialize, free, restore into fresh storage; checks the record is fully consumed. */
static void checkpoint_restore(struct dw_cd *cd)
{
    struct dw_buf buf;
    struct dw_reader rd;
    char err[256];
    dw_buf_init(&buf);
    dw_cd_serialize(cd, &buf);
    dw_cd_free(cd);
    memset(cd, 0xA5, sizeof(*cd));
    dw_reader_init(&rd, buf.data, buf.len);
    assert_int_equal(dw_cd_deserialize(cd, &rd, err, sizeof(err)), 0);
    assert_int_equal(rd.err, 0);
    assert_int_equal(rd.pos, buf.len);
    /* serializing the restored detector gives the same bytes */
    struct dw_buf again;
    dw_buf_init(&again);
    dw_cd_serialize(cd, &again);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    dw_buf_free(&again);
    dw_buf_free(&buf);
}

static void test_checkpoint_continues_identically(void **state)
{
    (void)state;
    static double xs[15000];
    int n = changing_stream(xs, 15000);
    static const enum dw_cd_kind kinds[3] = {DW_CD_PAGE_HINKLEY, DW_CD_ADWIN, DW_CD_DDM};
    for (int k = 0; k < 3; k++) {
        struct dw_cd plain;
        struct dw_cd restarted;
        assert_int_equal(dw_cd_init_default(&plain, kinds[k], NULL, 0), 0);
        assert_int_equal(dw_cd_init_default(&restarted, kinds[k], NULL, 0), 0);
        int det_plain = 0;
        int det_restarted = 0;
        int restore_after_detection = 0;
        for (int i = 0; i < n; i++) {
            int a = dw_cd_update(&plain, xs[i]);
            int b = dw_cd_update(&restarted, xs[i]);
            assert_int_equal(a, b);
            assert_int_equal(dw_cd_warning(&plain), dw_cd_warning(&restarted));
            assert_double_exact(dw_cd_estimation(&plain), dw_cd_estimation(&restarted));
            det_plain += a;
            det_restarted += b;
            /* restart every 997 elements, and right after every detection (the pending reset
             * must survive the checkpoint) */
            if (i % 997 == 0 || b) {
                restore_after_detection += b;
                checkpoint_restore(&restarted);
            }
        }
        print_message("%s: %d detections over the changing stream\n", dw_cd_kind_name(kinds[k]),
                      det_plain);
        /* PH and ADWIN see all four changes, DDM only the two increases */
        assert_true(det_plain >= (kinds[k] == DW_CD_DDM ? 2 : 4));
        assert_int_equal(det_plain, det_restarted);
        assert_int_equal(restore_after_detection, det_plain);
        assert_int_equal(dw_cd_detections(&plain), dw_cd_detections(&restarted));
        dw_cd_free(&plain);
        dw_cd_free(&restarted);
    }
}

static void test_checkpoint_several_in_one_blob(void **state)
{
    (void)state;
    struct dw_cd cds[3];
    static const enum dw_cd_kind kinds[3] = {DW_CD_DDM, DW_CD_ADWIN, DW_CD_PAGE_HINKLEY};
    struct dw_buf buf;
    dw_buf_init(&buf);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(dw_cd_init_default(&cds[k], kinds[k], NULL, 0), 0);
        for (int i = 0; i < 500; i++) {
            dw_cd_update(&cds[k], (double)(i % 3 == 0));
        }
        dw_cd_serialize(&cds[k], &buf);
    }
    struct dw_reader rd;
    dw_reader_init(&rd, buf.data, buf.len);
    for (int k = 0; k < 3; k++) {
        struct dw_cd back;
        assert_int_equal(dw_cd_deserialize(&back, &rd, NULL, 0), 0);
        assert_int_equal(back.kind, kinds[k]);
        assert_double_exact(dw_cd_estimation(&back), dw_cd_estimation(&cds[k]));
        dw_cd_free(&back);
        dw_cd_free(&cds[k]);
    }
    assert_int_equal(rd.pos, buf.len);
    dw_buf_free(&buf);
}

static void test_corrupt_records_rejected(void **state)
{
    (void)state;
    static const enum dw_cd_kind kinds[3] = {DW_CD_PAGE_HINKLEY, DW_CD_ADWIN, DW_CD_DDM};
    char err[256];
    for (int k = 0; k < 3; k++) {
        struct dw_cd cd;
        struct dw_cd back;
        struct dw_reader rd;
        struct dw_buf buf;
        assert_int_equal(dw_cd_init_default(&cd, kinds[k], NULL, 0), 0);
        for (int i = 0; i < 3000; i++) {
            dw_cd_update(&cd, (double)((i * 7919) % 10 < 3));
        }
        dw_buf_init(&buf);
        dw_cd_serialize(&cd, &buf);

        /* every truncation is an error, never a crash or a half-read detector */
        for (size_t len = 0; len < buf.len; len++) {
            dw_reader_init(&rd, buf.data, len);
            assert_int_equal(dw_cd_deserialize(&back, &rd, err, sizeof(err)), -1);
        }
        /* wrong version */
        uint8_t *copy = malloc(buf.len);
        assert_non_null(copy);
        memcpy(copy, buf.data, buf.len);
        copy[1] = 99;
        dw_reader_init(&rd, copy, buf.len);
        assert_int_equal(dw_cd_deserialize(&back, &rd, err, sizeof(err)), -1);
        assert_contains(err, "version");
        /* unknown kind */
        copy[1] = buf.data[1];
        copy[0] = 9;
        dw_reader_init(&rd, copy, buf.len);
        assert_int_equal(dw_cd_deserialize(&back, &rd, err, sizeof(err)), -1);
        assert_contains(err, "kind");
        /* every single-byte corruption either fails cleanly or yields a usable detector */
        for (size_t pos = 0; pos < buf.len; pos++) {
            memcpy(copy, buf.data, buf.len);
            copy[pos] ^= 0xFF;
            dw_reader_init(&rd, copy, buf.len);
            if (dw_cd_deserialize(&back, &rd, err, sizeof(err)) == 0) {
                for (int i = 0; i < 100; i++) {
                    dw_cd_update(&back, (double)(i & 1));
                }
                dw_cd_free(&back);
            }
        }
        free(copy);
        dw_buf_free(&buf);
        dw_cd_free(&cd);
    }
}

static void test_adwin_inconsistent_width_rejected(void **state)
{
    (void)state;
    struct dw_cd_adwin ad;
    struct dw_cd_adwin_params p = dw_cd_adwin_defaults();
    assert_int_equal(dw_cd_adwin_init(&ad, &p, NULL, 0), 0);
    for (int i = 0; i < 100; i++) {
        dw_cd_adwin_update(&ad, 1.0);
    }
    ad.width += 1.0; /* buckets no longer add up to the header's width */
    struct dw_buf buf;
    dw_buf_init(&buf);
    dw_cd_adwin_serialize(&ad, &buf);
    dw_cd_adwin_free(&ad);
    struct dw_reader rd;
    char err[256];
    dw_reader_init(&rd, buf.data, buf.len);
    assert_int_equal(dw_cd_adwin_deserialize(&ad, &rd, err, sizeof(err)), -1);
    assert_contains(err, "elements");
    assert_null(ad.count);
    dw_buf_free(&buf);
}

/*
 * An ADWIN record that announces more levels (or buckets) than its bytes can hold is refused
 * before the levels are allocated: 64 levels of 65536 buckets would be 64 MiB for 70 bytes.
 */
static void test_adwin_levels_beyond_bytes(void **state)
{
    (void)state;
    struct dw_cd_adwin ad;
    struct dw_cd_adwin_params p = dw_cd_adwin_defaults();
    p.max_buckets = 65536;
    assert_int_equal(dw_cd_adwin_init(&ad, &p, NULL, 0), 0);
    struct dw_buf buf;
    dw_buf_init(&buf);
    dw_cd_adwin_serialize(&ad, &buf);
    dw_cd_adwin_free(&ad);
    /* the record ends with u32 n_levels (1) and level 0's u32 count (0) */
    buf.len -= 8;
    dw_buf_put_u32(&buf, 64);
    dw_buf_put_u32(&buf, 0);
    struct dw_reader rd;
    char err[256] = "";
    dw_reader_init(&rd, buf.data, buf.len);
    assert_int_equal(dw_cd_adwin_deserialize(&ad, &rd, err, sizeof(err)), -1);
    assert_contains(err, "64 levels");
    assert_null(ad.count);
    /* a level-0 summary (one element) with squared deviations, and a negative one */
    struct dw_buf one;
    dw_buf_init(&one);
    dw_buf_put(&one, buf.data, buf.len - 8);
    dw_buf_put_u32(&one, 1);
    dw_buf_put_u32(&one, 1);
    dw_buf_put_f64(&one, 1.0);
    dw_buf_put_f64(&one, 0.5);
    dw_reader_init(&rd, one.data, one.len);
    assert_int_equal(dw_cd_adwin_deserialize(&ad, &rd, err, sizeof(err)), -1);
    assert_contains(err, "corrupt bucket at level 0");
    dw_buf_free(&one);
    /* one level announcing 5 buckets with the bytes of none */
    buf.len -= 8;
    dw_buf_put_u32(&buf, 1);
    dw_buf_put_u32(&buf, 5);
    dw_reader_init(&rd, buf.data, buf.len);
    assert_int_equal(dw_cd_adwin_deserialize(&ad, &rd, err, sizeof(err)), -1);
    assert_contains(err, "5 buckets");
    assert_null(ad.count);
    dw_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mt_matches_references),
        cmocka_unit_test(test_ph_river_doctest),
        cmocka_unit_test(test_adwin_river_doctest),
        cmocka_unit_test(test_adwin_river_multiple_drifts),
        cmocka_unit_test(test_adwin_river_numpy_stream),
        cmocka_unit_test(test_ddm_river_doctest),
        cmocka_unit_test(test_reset_after_detection),
        cmocka_unit_test(test_adwin_statistics),
        cmocka_unit_test(test_non_finite_ignored),
        cmocka_unit_test(test_params_and_kinds),
        cmocka_unit_test(test_ph_modes),
        cmocka_unit_test(test_stationary_no_false_alarm),
        cmocka_unit_test(test_stationary_false_alarm_rates),
        cmocka_unit_test(test_abrupt_change_detected),
        cmocka_unit_test(test_checkpoint_continues_identically),
        cmocka_unit_test(test_checkpoint_several_in_one_blob),
        cmocka_unit_test(test_corrupt_records_rejected),
        cmocka_unit_test(test_adwin_inconsistent_width_rejected),
        cmocka_unit_test(test_adwin_levels_beyond_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
