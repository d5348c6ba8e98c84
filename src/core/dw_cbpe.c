/*
 * dw_cbpe.c - label-free performance estimates (NannyML's CBPE, binary), dw_cbpe.h.
 *
 * Why it looks like this: the estimates must be the numbers a user gets from NannyML in a
 * notebook, and NannyML calibrates with scikit-learn. So the calibration follows
 * IsotonicRegression(out_of_bounds="clip", increasing=True) of scikit-learn 1.2 step by step,
 * floating-point operations in the same order:
 *
 * - The reference is walked in (score, label) order, negatives first among equal scores
 *   (sklearn's np.lexsort((y, X))), and cut into runs: a run starts at a score at least 1e-15
 *   (np.finfo(float64).resolution) above the run's first score, and stands for that first
 *   score with the mean label of its outcomes (sklearn's _make_unique). With integer weights
 *   the run's weight and positive count are exact integers, so the mean is one division.
 * - Pool-adjacent-violators over the runs as sklearn's _inplace_contiguous_isotonic_regression
 *   does it: one pass with backtracking, blocks kept as (first, last) index pairs in one array,
 *   a block's mean as Σwy / Σw accumulated left to right, and equal neighbours pooled too.
 * - Only the first and last run and those whose probability differs from a neighbour's are
 *   kept (sklearn's trim_duplicates): those points are the fitted state, small (a few
 *   hundred for a million outcomes) and what dw_cbpe_encode() stores.
 * - A score is clipped to [x0, x_last] and interpolated as numpy.interp does it:
 *   slope = (p[j+1] - p[j]) / (x[j+1] - x[j]), p = slope (s - x[j]) + p[j], p[j] itself when
 *   s equals x[j].
 *
 * NannyML calibrates only when needs_calibration() finds that the isotonic probabilities have
 * a lower expected calibration error (ECE) than the raw scores, out of fold over 10 random
 * StratifiedShuffleSplit draws (and never with one class or a ROC AUC above 0.999). driftwatch
 * always calibrates: that test draws from numpy's generator (a C port could not give the same
 * folds, so two tools would disagree on which probabilities they used), it needs every
 * reference outcome (a reference kept as a histogram or sketch has views, not rows), it flips
 * between two near-equal noisy numbers, and skipping calibration treats the raw scores as
 * probabilities, which is wrong for any score that is not one (a margin, a rank, a squashed
 * output). Isotonic calibration of scores that are already calibrated costs little: the step
 * function stays within sampling noise of the identity. Instead the calibration carries both
 * numbers NannyML compares, computed deterministically: the ECE of the raw scores and the
 * out-of-fold ECE of the calibrated probabilities (the outcome of rank r in (score, label)
 * order in fold r mod 10, each fold calibrated on the other nine). The second is the honest
 * one to report: the in-sample ECE of an isotonic fit is close to 0 by construction.
 *
 * ECE is NannyML's: equal-count bins by rank (not equal-width bins over [0, 1]), with
 * NannyML's bin arithmetic (n / 10 outcomes a bin, the last takes the rest, which can make more
 * than 10 bins). NannyML orders tied probabilities with an unstable argsort; here ties are
 * ordered by score, then label (negatives first), so that the number is deterministic. The
 * out-of-fold outcomes are visited in that order by merging the ten folds' walks (each fold's
 * probabilities do not decrease along the reference's order), so nothing of the reference's
 * size is sorted or copied per fold. (Should rounding put an interpolated probability one ulp
 * above the next point's, the walk keeps the two in score order where a sort would swap them;
 * that moves the error only when a bin boundary falls between two such outcomes of different
 * labels.)
 *
 * The expected ROC curve is NannyML's (calibrated probabilities in order of descending raw
 * score, tpr = cumsum(p) / Σp, fpr = cumsum(1 - p) / Σ(1 - p), trapezoids), with two
 * deviations: tied raw scores form one point, as sklearn's _binary_clf_curve groups them
 * (NannyML's argsort would order them arbitrarily, and a weighted view has no order inside a
 * score), and the cumulative sums are not rounded to 5 decimals (a change below 1e-8 on the
 * fixtures). Where NannyML returns 0 for a metric whose denominator is 0, it is NaN here and
 * flagged: an estimate of 0 would read as a model that is always wrong.
 *
 * Sums run through Neumaier's compensated sum, so each estimate is within a few ulps of the
 * exact value of its formula; weights are integers below 2^53, so counts are exact. A fit
 * allocates its working arrays once (the reference's length, a few times); an estimate
 * allocates nothing.
 *
 * Encoding: u8 format (1), u32 n, n x {f64 x, f64 p}, u64 n_neg, u64 n_pos, f64 ece_scores,
 * f64 ece_calibrated (NaN when undefined).
 */
#include "driftwatch/core/dw_cbpe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define X_RESOLUTION 1e-15 /* sklearn's _make_unique merges scores closer than this (score) */
#define ECE_MIN_OUTCOMES 4 /* fewer make fewer than 2 of NannyML's bins (outcomes) */
#define CALIB_FORMAT 1     /* the encoding's format byte */
#define POINT_BYTES 16     /* an encoded point: two f64 */

static const char *const metric_names[DW_CBPE__COUNT] = {"accuracy", "precision", "recall", "f1",
                                                         "roc_auc"};

const char *dw_cbpe_metric_name(enum dw_cbpe_metric m)
{
    dw_assert((unsigned)m < DW_CBPE__COUNT);
    return metric_names[m];
}

/* ------------------------------------------------------------------ views */

static uint64_t view_weight(const struct dw_cbpe_view *v, size_t i)
{
    return v->weights ? v->weights[i] : 1;
}

/* Checks a view (finite, ascending) and adds its weights to *total (at most MAX_WEIGHT). */
static int view_check(const struct dw_cbpe_view *v, const char *what, uint64_t *total, char *errstr,
                      size_t errstr_size)
{
    for (size_t i = 0; i < v->len; i++) {
        if (!isfinite(v->values[i])) {
            return dw_err(errstr, errstr_size, "%s: score %zu is not finite", what, i);
        }
        if (i > 0 && v->values[i] < v->values[i - 1]) {
            return dw_err(errstr, errstr_size, "%s: scores not ascending at %zu", what, i);
        }
        if (dw_u64_add(total, view_weight(v, i)) != 0 || *total > DW_CBPE_MAX_WEIGHT) {
            return dw_err(errstr, errstr_size, "%s: weights add up to more than 2^53", what);
        }
    }
    return 0;
}

void dw_cbpe_view_split(const struct dw_cbpe_view *all, double threshold, struct dw_cbpe_view *neg,
                        struct dw_cbpe_view *pos)
{
    size_t lo = 0, hi = all->len; /* the first index whose score is >= threshold */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (all->values[mid] < threshold) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *neg = (struct dw_cbpe_view){all->values, all->weights, lo};
    *pos = (struct dw_cbpe_view){all->values ? all->values + lo : NULL,
                                 all->weights ? all->weights + lo : NULL, all->len - lo};
}

/* ------------------------------------------------------------------ reference outcomes */

/* The reference in (score, label) order, equal (score, label) items merged, no weight 0. */
struct outcomes {
    double *s;
    uint64_t *w;
    uint64_t *rank; /* outcomes before the item (its first rank in the expanded sample) */
    uint8_t *y;
    size_t n;
    uint64_t total;
};

static void outcomes_push(struct outcomes *o, double s, int y, uint64_t w)
{
    if (w == 0) {
        return;
    }
    if (o->n > 0 && o->s[o->n - 1] == s && o->y[o->n - 1] == y) {
        o->w[o->n - 1] += w;
    } else {
        o->s[o->n] = s;
        o->y[o->n] = (uint8_t)y;
        o->w[o->n] = w;
        o->rank[o->n] = o->total;
        o->n++;
    }
    o->total += w;
}

/* Merges the two checked views, negatives first among equal scores (np.lexsort((y, X))). */
static void outcomes_build(struct outcomes *o, const struct dw_cbpe_view *neg,
                           const struct dw_cbpe_view *pos)
{
    size_t cap = neg->len + pos->len + 1;
    o->s = dw_malloc(cap * sizeof(*o->s));
    o->w = dw_malloc(cap * sizeof(*o->w));
    o->rank = dw_malloc(cap * sizeof(*o->rank));
    o->y = dw_malloc(cap);
    o->n = 0;
    o->total = 0;
    size_t i = 0, j = 0;
    while (i < neg->len || j < pos->len) {
        if (j == pos->len || (i < neg->len && neg->values[i] <= pos->values[j])) {
            outcomes_push(o, neg->values[i], 0, view_weight(neg, i));
            i++;
        } else {
            outcomes_push(o, pos->values[j], 1, view_weight(pos, j));
            j++;
        }
    }
}

static void outcomes_free(struct outcomes *o)
{
    free(o->s);
    free(o->w);
    free(o->rank);
    free(o->y);
}

/* ------------------------------------------------------------------ isotonic regression */

/* Working arrays of a fit, as long as the outcomes. */
struct iso_work {
    double *x, *y, *w; /* runs: first score, mean label, weight */
    size_t *target;    /* PAVA's blocks: target[first] = last, target[last] = first */
};

/* Closes run g: its weight and mean label (one division of two exact integers). */
static void run_close(struct iso_work *wk, size_t g, uint64_t run_w, uint64_t run_pos)
{
    wk->w[g] = (double)run_w;
    wk->y[g] = (double)run_pos / (double)run_w;
}

/* sklearn's _make_unique over the outcomes weighted by w (0 leaves an item out). */
static size_t iso_runs(const struct outcomes *o, const uint64_t *w, struct iso_work *wk)
{
    size_t g = 0;
    uint64_t run_w = 0, run_pos = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (w[i] == 0) {
            continue;
        }
        if (run_w > 0 && o->s[i] - wk->x[g] >= X_RESOLUTION) {
            run_close(wk, g++, run_w, run_pos);
            run_w = run_pos = 0;
        }
        if (run_w == 0) {
            wk->x[g] = o->s[i];
        }
        run_w += w[i];
        run_pos += o->y[i] ? w[i] : 0;
    }
    if (run_w > 0) {
        run_close(wk, g++, run_w, run_pos);
    }
    return g;
}

/* Pools the decreasing run starting at block i with the blocks after it (one PAVA step). */
static size_t pava_pool(double *y, double *w, size_t *target, size_t n, size_t i, size_t k)
{
    double sum_wy = w[i] * y[i], sum_w = w[i];
    for (;;) {
        double prev_y = y[k];
        sum_wy += w[k] * y[k];
        sum_w += w[k];
        k = target[k] + 1;
        if (k == n || prev_y < y[k]) {
            y[i] = sum_wy / sum_w;
            w[i] = sum_w;
            target[i] = k - 1;
            target[k - 1] = i;
            return i > 0 ? target[i - 1] : i; /* backtrack to the block before, if any */
        }
    }
}

/* sklearn's _inplace_contiguous_isotonic_regression: y becomes the non-decreasing fit. */
static void pava(double *y, double *w, size_t *target, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        target[i] = i;
    }
    size_t i = 0;
    while (i < n) {
        size_t k = target[i] + 1;
        if (k == n) {
            break;
        }
        if (y[i] < y[k]) {
            i = k;
            continue;
        }
        i = pava_pool(y, w, target, n, i, k);
    }
    for (i = 0; i < n;) {
        size_t k = target[i] + 1;
        for (size_t m = i + 1; m < k; m++) {
            y[m] = y[i];
        }
        i = k;
    }
}

/* Fits on the outcomes weighted by w; the kept points into px, pp. @returns their count. */
static size_t iso_fit(const struct outcomes *o, const uint64_t *w, struct iso_work *wk, double *px,
                      double *pp)
{
    size_t g = iso_runs(o, w, wk);
    pava(wk->y, wk->w, wk->target, g);
    size_t kept = 0;
    for (size_t i = 0; i < g; i++) {
        if (i == 0 || i + 1 == g || wk->y[i] != wk->y[i - 1] || wk->y[i] != wk->y[i + 1]) {
            px[kept] = wk->x[i];
            pp[kept] = wk->y[i];
            kept++;
        }
    }
    return kept;
}

/* numpy.interp(clip(s, x[0], x[n-1]), x, p) for n >= 1 strictly ascending points. */
static double interp(const double *x, const double *p, size_t n, double s)
{
    if (s <= x[0]) {
        return p[0];
    }
    if (s >= x[n - 1]) {
        return p[n - 1];
    }
    size_t lo = 0, hi = n - 1; /* x[lo] <= s < x[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (x[mid] <= s) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if (x[lo] == s) {
        return p[lo];
    }
    double slope = (p[lo + 1] - p[lo]) / (x[lo + 1] - x[lo]);
    double r = slope * (s - x[lo]) + p[lo];
    if (isnan(r)) { /* numpy's way out of 0 * inf, with points ~1e308 apart */
        r = slope * (s - x[lo + 1]) + p[lo + 1];
        if (isnan(r) && p[lo] == p[lo + 1]) {
            r = p[lo];
        }
    }
    return r;
}

double dw_cbpe_calibrate(const struct dw_cbpe_calib *cal, double score)
{
    if (cal->n == 0 || isnan(score)) {
        return NAN;
    }
    return interp(cal->x, cal->p, cal->n, score);
}

/* ------------------------------------------------------------------ calibration error */

/* NannyML's ECE over outcomes given in order, a run of equal (p, label) outcomes at a time. */
struct ece_acc {
    uint64_t total;  /* outcomes */
    uint64_t width;  /* outcomes a bin, but the last */
    uint64_t n_bins; /* NannyML's edges: multiples of width up to total, the last moved to it */
    uint64_t bin;    /* the bin being filled */
    uint64_t in_bin; /* its outcomes so far */
    uint64_t sum_y;
    struct dw_ksum sum_p;
    struct dw_ksum ece;
};

/* _get_bin_index_edges(total, 10). @returns -1 where NannyML raises (fewer than 2 bins). */
static int ece_begin(struct ece_acc *a, uint64_t total)
{
    uint64_t bins = DW_CBPE_ECE_BINS;
    if (total <= 2 * bins) {
        bins = total / 2;
    }
    if (bins < 2) {
        return -1;
    }
    memset(a, 0, sizeof(*a));
    a->total = total;
    a->width = total / bins;
    a->n_bins = total / a->width;
    return 0;
}

static uint64_t ece_bin_size(const struct ece_acc *a)
{
    return a->bin + 1 < a->n_bins ? a->width : a->total - (a->n_bins - 1) * a->width;
}

static void ece_add(struct ece_acc *a, double p, int y, uint64_t count)
{
    while (count > 0) {
        uint64_t size = ece_bin_size(a);
        uint64_t take = DW_MIN(count, size - a->in_bin);
        dw_ksum_add(&a->sum_p, (double)take * p);
        a->sum_y += y ? take : 0;
        a->in_bin += take;
        count -= take;
        if (a->in_bin == size) { /* (n_bin / n) |mean(p) - mean(y)| */
            double k = (double)size;
            double gap = fabs(dw_ksum_get(&a->sum_p) / k - (double)a->sum_y / k);
            dw_ksum_add(&a->ece, k / (double)a->total * gap);
            a->bin++;
            a->in_bin = a->sum_y = 0;
            a->sum_p = (struct dw_ksum){0.0, 0.0};
        }
    }
}

static double ece_end(const struct ece_acc *a)
{
    dw_assert(a->bin == a->n_bins && a->in_bin == 0);
    return dw_ksum_get(&a->ece);
}

/* The raw scores taken as probabilities, in the outcomes' (score, label) order. */
static double ece_of_scores(const struct outcomes *o)
{
    struct ece_acc a;
    if (ece_begin(&a, o->total) != 0) {
        return NAN;
    }
    for (size_t i = 0; i < o->n; i++) {
        ece_add(&a, o->s[i], o->y[i], o->w[i]);
    }
    return ece_end(&a);
}

int dw_cbpe_ece(const struct dw_cbpe_view *neg, const struct dw_cbpe_view *pos, double *out,
                char *errstr, size_t errstr_size)
{
    uint64_t total = 0;
    if (view_check(neg, "negatives", &total, errstr, errstr_size) != 0 ||
        view_check(pos, "positives", &total, errstr, errstr_size) != 0) {
        return -1;
    }
    struct outcomes o;
    outcomes_build(&o, neg, pos);
    *out = ece_of_scores(&o);
    outcomes_free(&o);
    return 0;
}

/* Outcomes of ranks [a, b) in fold k (rank r is in fold r mod FOLDS). */
static uint64_t fold_count(uint64_t a, uint64_t b, unsigned k)
{
    uint64_t below_b = b / DW_CBPE_FOLDS + (k < b % DW_CBPE_FOLDS);
    uint64_t below_a = a / DW_CBPE_FOLDS + (k < a % DW_CBPE_FOLDS);
    return below_b - below_a;
}

/* A fold's calibration and its walk over the outcomes it holds. */
struct fold {
    double *x, *p;
    size_t n_points;
    size_t next; /* the next outcome item with members in the fold (o->n: done) */
    double head; /* its out-of-fold probability */
};

static uint64_t fold_members(const struct outcomes *o, size_t i, unsigned k)
{
    return fold_count(o->rank[i], o->rank[i] + o->w[i], k);
}

static void fold_advance(struct fold *f, const struct outcomes *o, unsigned k)
{
    while (f->next < o->n && fold_members(o, f->next, k) == 0) {
        f->next++;
    }
    if (f->next < o->n) {
        f->head = interp(f->x, f->p, f->n_points, o->s[f->next]);
    }
}

/* Whether fold a's next outcome comes before fold b's in (p, score, label) order. */
static int fold_before(const struct fold *a, const struct fold *b, const struct outcomes *o)
{
    if (a->head != b->head) {
        return a->head < b->head;
    }
    double sa = o->s[a->next], sb = o->s[b->next];
    return sa != sb ? sa < sb : o->y[a->next] < o->y[b->next];
}

/* Fits the fold calibrations (each on the other folds' outcomes). */
static void folds_fit(struct fold *folds, const struct outcomes *o, struct iso_work *wk,
                      uint64_t *train, double *px, double *pp)
{
    for (unsigned k = 0; k < DW_CBPE_FOLDS; k++) {
        for (size_t i = 0; i < o->n; i++) {
            train[i] = o->w[i] - fold_members(o, i, k);
        }
        size_t n = iso_fit(o, train, wk, px, pp);
        dw_assert(n > 0); /* of >= 4 outcomes a fold holds at most a quarter */
        folds[k].x = dw_malloc(n * sizeof(double));
        folds[k].p = dw_malloc(n * sizeof(double));
        memcpy(folds[k].x, px, n * sizeof(double));
        memcpy(folds[k].p, pp, n * sizeof(double));
        folds[k].n_points = n;
        folds[k].next = 0;
        fold_advance(&folds[k], o, k);
    }
}

/* The out-of-fold ECE: the folds' walks merged in (p, score, label) order. */
static double ece_out_of_fold(const struct outcomes *o, struct iso_work *wk, uint64_t *train,
                              double *px, double *pp)
{
    struct ece_acc a;
    if (ece_begin(&a, o->total) != 0) {
        return NAN;
    }
    struct fold folds[DW_CBPE_FOLDS];
    folds_fit(folds, o, wk, train, px, pp);
    for (;;) {
        int best = -1;
        for (unsigned k = 0; k < DW_CBPE_FOLDS; k++) {
            if (folds[k].next < o->n && (best < 0 || fold_before(&folds[k], &folds[best], o))) {
                best = (int)k;
            }
        }
        if (best < 0) {
            break;
        }
        struct fold *f = &folds[best];
        ece_add(&a, f->head, o->y[f->next], fold_members(o, f->next, (unsigned)best));
        f->next++;
        fold_advance(f, o, (unsigned)best);
    }
    for (unsigned k = 0; k < DW_CBPE_FOLDS; k++) {
        free(folds[k].x);
        free(folds[k].p);
    }
    return ece_end(&a);
}

/* ------------------------------------------------------------------ fit */

int dw_cbpe_fit(struct dw_cbpe_calib *cal, const struct dw_cbpe_view *neg,
                const struct dw_cbpe_view *pos, char *errstr, size_t errstr_size)
{
    memset(cal, 0, sizeof(*cal));
    uint64_t total = 0;
    if (view_check(neg, "negatives", &total, errstr, errstr_size) != 0 ||
        view_check(pos, "positives", &total, errstr, errstr_size) != 0) {
        return -1;
    }
    if (total == 0) {
        return dw_err(errstr, errstr_size, "reference: no labelled outcome with a score");
    }
    struct outcomes o;
    outcomes_build(&o, neg, pos);
    size_t cap = o.n;
    struct iso_work wk = {dw_malloc(cap * sizeof(double)), dw_malloc(cap * sizeof(double)),
                          dw_malloc(cap * sizeof(double)), dw_malloc(cap * sizeof(size_t))};
    double *px = dw_malloc(cap * sizeof(double)), *pp = dw_malloc(cap * sizeof(double));
    uint64_t *train = dw_malloc(cap * sizeof(uint64_t));
    int rc = -1;
    size_t n = iso_fit(&o, o.w, &wk, px, pp);
    if (n > DW_CBPE_MAX_POINTS) {
        dw_err(errstr, errstr_size,
               "reference: the calibration has %zu points, at most %d are kept", n,
               DW_CBPE_MAX_POINTS);
        goto err;
    }
    cal->x = dw_malloc(n * sizeof(double));
    cal->p = dw_malloc(n * sizeof(double));
    memcpy(cal->x, px, n * sizeof(double));
    memcpy(cal->p, pp, n * sizeof(double));
    cal->n = (uint32_t)n;
    for (size_t i = 0; i < o.n; i++) {
        *(o.y[i] ? &cal->n_pos : &cal->n_neg) += o.w[i];
    }
    cal->ece_scores = ece_of_scores(&o);
    cal->ece_calibrated = ece_out_of_fold(&o, &wk, train, px, pp);
    rc = 0;
err:
    free(train);
    free(pp);
    free(px);
    free(wk.target);
    free(wk.w);
    free(wk.y);
    free(wk.x);
    outcomes_free(&o);
    return rc;
}

void dw_cbpe_calib_free(struct dw_cbpe_calib *cal)
{
    free(cal->x);
    free(cal->p);
    memset(cal, 0, sizeof(*cal));
}

/* ------------------------------------------------------------------ estimate */

/* Running sums of an estimate (a window's views walked by descending score). */
struct est_acc {
    struct dw_ksum tp, fp, fn, tn;
    struct dw_ksum tps, fps; /* the expected ROC curve's cumulative counts */
    struct dw_ksum area;     /* Σ fp_k (tps before k + tp_k / 2): the area times tps fps */
};

/* One tied score: w_neg predictions of the negative class, w_pos of the positive, prob p. */
static void est_add(struct est_acc *a, double p, uint64_t w_neg, uint64_t w_pos)
{
    double q = 1.0 - p; /* as NannyML takes it: 1 - p per prediction */
    dw_ksum_add(&a->tp, (double)w_pos * p);
    dw_ksum_add(&a->fp, (double)w_pos * q);
    dw_ksum_add(&a->fn, (double)w_neg * p);
    dw_ksum_add(&a->tn, (double)w_neg * q);
    double w = (double)(w_neg + w_pos), tp_k = w * p, fp_k = w * q;
    dw_ksum_add(&a->area, fp_k * (dw_ksum_get(&a->tps) + tp_k / 2.0));
    dw_ksum_add(&a->tps, tp_k);
    dw_ksum_add(&a->fps, fp_k);
}

/* The weight of the scores equal to s at the end of a view's unread part, which they leave. */
static uint64_t view_take(const struct dw_cbpe_view *v, size_t *left, double s)
{
    uint64_t w = 0;
    while (*left > 0 && v->values[*left - 1] == s) {
        w += view_weight(v, *left - 1);
        (*left)--;
    }
    return w;
}

/* The highest unread score of two views read from their ends (one at least is not done). */
static double view_top(const struct dw_cbpe_view *a, size_t i, const struct dw_cbpe_view *b,
                       size_t j)
{
    if (i == 0) {
        return b->values[j - 1];
    }
    if (j == 0) {
        return a->values[i - 1];
    }
    return DW_MAX(a->values[i - 1], b->values[j - 1]);
}

/* a / b, or NaN and the metric's flag when b is 0. */
static void est_ratio(struct dw_cbpe_estimate *out, enum dw_cbpe_metric m, double a, double b)
{
    if (b == 0.0) {
        out->metric[m] = NAN;
        out->undefined |= DW_CBPE_UNDEFINED(m);
    } else {
        out->metric[m] = a / b;
    }
}

static void est_finish(const struct est_acc *a, struct dw_cbpe_estimate *out)
{
    double tp = dw_ksum_get(&a->tp), fp = dw_ksum_get(&a->fp);
    double fn = dw_ksum_get(&a->fn), tn = dw_ksum_get(&a->tn);
    out->tp = tp;
    out->fp = fp;
    out->fn = fn;
    out->tn = tn;
    est_ratio(out, DW_CBPE_ACCURACY, tp + tn, (double)out->n);
    est_ratio(out, DW_CBPE_PRECISION, tp, tp + fp);
    est_ratio(out, DW_CBPE_RECALL, tp, tp + fn);
    est_ratio(out, DW_CBPE_F1, tp, tp + 0.5 * (fp + fn));
    double tps = dw_ksum_get(&a->tps), fps = dw_ksum_get(&a->fps);
    est_ratio(out, DW_CBPE_ROC_AUC, dw_ksum_get(&a->area), tps == 0.0 ? 0.0 : tps * fps);
}

int dw_cbpe_estimate(const struct dw_cbpe_calib *cal, const struct dw_cbpe_view *pred_neg,
                     const struct dw_cbpe_view *pred_pos, struct dw_cbpe_estimate *out,
                     char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (cal->n == 0) {
        return dw_err(errstr, errstr_size, "estimate: the calibration is empty");
    }
    if (view_check(pred_neg, "predicted negatives", &out->n, errstr, errstr_size) != 0 ||
        view_check(pred_pos, "predicted positives", &out->n, errstr, errstr_size) != 0) {
        return -1;
    }
    struct est_acc a;
    memset(&a, 0, sizeof(a));
    size_t i = pred_neg->len, j = pred_pos->len;
    while (i > 0 || j > 0) { /* one tied score at a time, highest first */
        double s = view_top(pred_neg, i, pred_pos, j);
        uint64_t w_neg = view_take(pred_neg, &i, s);
        uint64_t w_pos = view_take(pred_pos, &j, s);
        if (w_neg + w_pos > 0) {
            est_add(&a, interp(cal->x, cal->p, cal->n, s), w_neg, w_pos);
        }
    }
    est_finish(&a, out);
    return 0;
}

/* ------------------------------------------------------------------ encoding */

void dw_cbpe_encode(const struct dw_cbpe_calib *cal, struct dw_buf *out)
{
    dw_buf_put_u8(out, CALIB_FORMAT);
    dw_buf_put_u32(out, cal->n);
    for (uint32_t i = 0; i < cal->n; i++) {
        dw_buf_put_f64(out, cal->x[i]);
        dw_buf_put_f64(out, cal->p[i]);
    }
    dw_buf_put_u64(out, cal->n_neg);
    dw_buf_put_u64(out, cal->n_pos);
    dw_buf_put_f64(out, cal->ece_scores);
    dw_buf_put_f64(out, cal->ece_calibrated);
}

/*
 * Point i read: scores finite and ascending by at least X_RESOLUTION (as every fit's are: runs
 * start that far apart, so interpolation slopes stay below 1e15), probabilities non-decreasing
 * in [0, 1].
 */
static void decode_point(struct dw_cbpe_calib *cal, struct dw_reader *rd, uint32_t i)
{
    double x = dw_rd_f64(rd), p = dw_rd_f64(rd);
    if (rd->err) {
        return;
    }
    if (!isfinite(x) || (i > 0 && !(x - cal->x[i - 1] >= X_RESOLUTION))) {
        dw_rd_fail(rd, "calibration score %u is not finite and 1e-15 above the last", i);
    } else if (!(p >= 0.0 && p <= 1.0) || (i > 0 && p < cal->p[i - 1])) {
        dw_rd_fail(rd, "calibration probability %u is outside [0, 1] or decreasing", i);
    }
    cal->x[i] = x;
    cal->p[i] = p;
}

/* Both errors NaN below 4 outcomes; else the out-of-fold one in [0, 1], the scores' one >= 0
 * (or NaN: sums of scores near the double range overflow). */
static int eces_valid(const struct dw_cbpe_calib *cal, uint64_t total)
{
    if (total < ECE_MIN_OUTCOMES) {
        return isnan(cal->ece_scores) && isnan(cal->ece_calibrated);
    }
    return cal->ece_calibrated >= 0.0 && cal->ece_calibrated <= 1.0 && !(cal->ece_scores < 0.0);
}

/* The label counts and errors, consistent with the points. */
static void decode_tail(struct dw_cbpe_calib *cal, struct dw_reader *rd)
{
    cal->n_neg = dw_rd_u64(rd);
    cal->n_pos = dw_rd_u64(rd);
    cal->ece_scores = dw_rd_f64(rd);
    cal->ece_calibrated = dw_rd_f64(rd);
    uint64_t total = cal->n_neg;
    if (rd->err) {
        return;
    }
    if (dw_u64_add(&total, cal->n_pos) != 0 || total > DW_CBPE_MAX_WEIGHT || total < cal->n) {
        dw_rd_fail(rd, "calibration of %u points from %llu outcomes", cal->n,
                   (unsigned long long)total);
    } else if ((cal->n_pos == 0 && cal->p[cal->n - 1] != 0.0) ||
               (cal->n_neg == 0 && cal->p[0] != 1.0)) {
        dw_rd_fail(rd, "calibration probabilities do not match a reference of one class");
    } else if (!eces_valid(cal, total)) {
        dw_rd_fail(rd, "calibration errors %g, %g for %llu outcomes", cal->ece_scores,
                   cal->ece_calibrated, (unsigned long long)total);
    }
}

int dw_cbpe_decode(struct dw_cbpe_calib *cal, struct dw_reader *rd)
{
    memset(cal, 0, sizeof(*cal));
    uint8_t format = dw_rd_u8(rd);
    if (!rd->err && format != CALIB_FORMAT) {
        dw_rd_fail(rd, "calibration format %u (want %d)", format, CALIB_FORMAT);
    }
    uint32_t n = dw_rd_count(rd, POINT_BYTES, "calibration points");
    if (!rd->err && (n == 0 || n > DW_CBPE_MAX_POINTS)) {
        dw_rd_fail(rd, "%u calibration points (1 to %d)", n, DW_CBPE_MAX_POINTS);
    }
    if (rd->err) {
        return -1;
    }
    cal->x = dw_malloc(n * sizeof(double));
    cal->p = dw_malloc(n * sizeof(double));
    cal->n = n;
    for (uint32_t i = 0; i < n && !rd->err; i++) {
        decode_point(cal, rd, i);
    }
    if (!rd->err) {
        decode_tail(cal, rd);
    }
    if (rd->err) {
        dw_cbpe_calib_free(cal);
        return -1;
    }
    return 0;
}
