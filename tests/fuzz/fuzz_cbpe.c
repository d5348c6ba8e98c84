/*
 * fuzz_cbpe.c - dw_cbpe_decode(), the reader of a stored CBPE calibration, on arbitrary bytes.
 *
 * A calibration the reader accepts must behave like one dw_cbpe_fit() made: it encodes to the
 * very bytes it was read from (the encoding is canonical) and those decode again; its
 * probabilities stay in [0, 1] and do not decrease along the scores (up to an ulp of
 * interpolation rounding), clipped beyond its ends; it estimates a window made of its own
 * points and of scores around them, every metric NaN exactly when flagged and in [0, 1]
 * otherwise. A refused input leaves the calibration empty and says why.
 *
 * Seeds: dw_cbpe_encode() of calibrations fitted by dw_cbpe_fit() on references made here:
 * calibrated and squashed scores, one point, one class, two points pooled into one level,
 * weighted duplicates, scores closer than 1e-15 (merged as sklearn merges them).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_cbpe.h"
#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_common.h"
#include "dw_fuzz.h"

#define ROUNDING 1e-12 /* interpolation rounding allowed beyond [0, 1] and monotony */
#define GRID_STEPS 8   /* probes between two points of the calibration */
#define SEED_OUTCOMES 2000

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_cbpe: %s\n", what);
        abort();
    }
}

/* Probes the calibration along its scores and beyond its ends. */
static void probe(const struct dw_cbpe_calib *cal)
{
    double prev = -1.0;
    double lo = cal->x[0], hi = cal->x[cal->n - 1];
    check(dw_cbpe_calibrate(cal, lo - 1.0) == cal->p[0], "not clipped below");
    check(dw_cbpe_calibrate(cal, hi + 1.0) == cal->p[cal->n - 1], "not clipped above");
    for (uint32_t i = 0; i < cal->n; i++) {
        double gap = i + 1 < cal->n ? cal->x[i + 1] - cal->x[i] : 0.0;
        int steps = isfinite(gap) ? GRID_STEPS : 1; /* points ~1e308 apart: the point only */
        for (int k = 0; k < steps; k++) {
            double s = cal->x[i] + gap / GRID_STEPS * k; /* ascending in k, finite */
            double p = dw_cbpe_calibrate(cal, s);
            check(p >= -ROUNDING && p <= 1.0 + ROUNDING, "probability outside [0, 1]");
            check(p >= prev - ROUNDING, "probabilities decrease");
            prev = p;
        }
        check(dw_cbpe_calibrate(cal, cal->x[i]) == cal->p[i], "a point is not interpolated");
    }
    check(isnan(dw_cbpe_calibrate(cal, NAN)), "NaN score gave a probability");
}

/* A window of the points' scores (predicted negative) and midpoints (predicted positive). */
static void estimate(const struct dw_cbpe_calib *cal)
{
    double *mid = dw_malloc(cal->n * sizeof(double));
    for (uint32_t i = 0; i < cal->n; i++) {
        /* halves first: no overflow with points ~1e308 apart */
        mid[i] = i + 1 < cal->n ? cal->x[i] / 2 + cal->x[i + 1] / 2 : cal->x[i] + 1;
    }
    struct dw_cbpe_view neg = {cal->x, NULL, cal->n}, pos = {mid, NULL, cal->n};
    struct dw_cbpe_estimate e;
    char err[256];
    check(dw_cbpe_estimate(cal, &neg, &pos, &e, err, sizeof(err)) == 0, "estimate refused");
    check(e.n == 2ULL * cal->n, "estimate miscounts");
    for (int m = 0; m < DW_CBPE__COUNT; m++) {
        int flagged = (e.undefined & DW_CBPE_UNDEFINED(m)) != 0;
        check(flagged == isnan(e.metric[m]), "a metric is NaN without its flag");
        check(flagged || (e.metric[m] >= -ROUNDING && e.metric[m] <= 1.0 + ROUNDING),
              "a metric outside [0, 1]");
    }
    free(mid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, size);
    struct dw_cbpe_calib cal = {0};
    if (dw_cbpe_decode(&cal, &rd) != 0) {
        check(rd.msg[0] != '\0', "refused without a message");
        check(cal.n == 0 && cal.x == NULL && cal.p == NULL, "a refused calibration is not empty");
        return 0;
    }
    struct dw_buf out;
    dw_buf_init(&out);
    dw_cbpe_encode(&cal, &out);
    check(out.len == rd.pos && memcmp(out.data, data, out.len) == 0, "encoding not canonical");
    struct dw_reader again;
    dw_reader_init(&again, out.data, out.len);
    struct dw_cbpe_calib back = {0};
    check(dw_cbpe_decode(&back, &again) == 0, "a re-encoded calibration is refused");
    probe(&cal);
    estimate(&cal);
    dw_cbpe_calib_free(&back);
    dw_buf_free(&out);
    dw_cbpe_calib_free(&cal);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Seeds
 */

static void write_fit(const char *dir, const char *name, const struct dw_cbpe_view *neg,
                      const struct dw_cbpe_view *pos)
{
    struct dw_cbpe_calib cal = {0};
    char err[256];
    if (dw_cbpe_fit(&cal, neg, pos, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_cbpe: seed %s: %s\n", name, err);
        exit(1);
    }
    struct dw_buf b;
    dw_buf_init(&b);
    dw_cbpe_encode(&cal, &b);
    dw_fuzz_write_seed(dir, name, b.data, b.len);
    dw_buf_free(&b);
    dw_cbpe_calib_free(&cal);
}

/* Outcomes with true probability u, scored a + b u; labels drawn from rng. */
static void write_random(const char *dir, const char *name, double a, double b, uint64_t seed)
{
    double *neg = dw_malloc(SEED_OUTCOMES * sizeof(double));
    double *pos = dw_malloc(SEED_OUTCOMES * sizeof(double));
    size_t nn = 0, np = 0;
    uint64_t rng = seed;
    for (int i = 0; i < SEED_OUTCOMES; i++) {
        double u = dw_rand_u01(&rng);
        double *dst = dw_rand_u01(&rng) < u ? &pos[np++] : &neg[nn++];
        *dst = a + b * u;
    }
    dw_sort_doubles(neg, nn);
    dw_sort_doubles(pos, np);
    struct dw_cbpe_view vn = {neg, NULL, nn}, vp = {pos, NULL, np};
    write_fit(dir, name, &vn, &vp);
    free(neg);
    free(pos);
}

void dw_fuzz_seeds(const char *dir)
{
    write_random(dir, "calibrated", 0.0, 1.0, 11);
    write_random(dir, "squashed", 0.4, 0.2, 13);
    const double one[] = {0.3}, two_lo[] = {0.2}, two_hi[] = {0.7};
    struct dw_cbpe_view none = {NULL, NULL, 0}, v1 = {one, NULL, 1};
    write_fit(dir, "one_point", &none, &v1);
    const double spread[] = {0.1, 0.4, 0.6, 0.9};
    struct dw_cbpe_view vs = {spread, NULL, 4};
    write_fit(dir, "negatives_only", &vs, &none);
    struct dw_cbpe_view lo = {two_lo, NULL, 1}, hi = {two_hi, NULL, 1};
    write_fit(dir, "two_points_pooled", &hi, &lo);
    const double dup[] = {0.25, 0.5, 0.75};
    const uint64_t wn[] = {7, 3, 1}, wp[] = {1, 3, 9};
    struct dw_cbpe_view dn = {dup, wn, 3}, dp = {dup, wp, 3};
    write_fit(dir, "weighted", &dn, &dp);
    const double near_neg[] = {0.5 + 4e-16, 0.6}, near_pos[] = {0.5, 0.5 + 1.2e-15, 0.9};
    struct dw_cbpe_view nn = {near_neg, NULL, 2}, np = {near_pos, NULL, 3};
    write_fit(dir, "near_duplicates", &nn, &np);
}
