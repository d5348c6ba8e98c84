/*
 * dw_cbpe.h - label-free performance estimates of a binary classifier (NannyML's
 * Confidence-Based Performance Estimation, CBPE): calibrate the model's scores on a labelled
 * reference, then estimate a window's accuracy, precision, recall, F1 and ROC AUC from its
 * scores alone. Pure C, no I/O; the definitions are in docs/statistics.md ("Label-free
 * estimates (CBPE)") and the design in src/core/dw_cbpe.c.
 *
 * Samples are weighted sorted views (dw_stats.h's convention): scores ascending, each with an
 * integer weight, standing for the sample in which each score is repeated `weight` times. The
 * reference is two views (scores of the outcomes labelled negative, and positive); a window is
 * two views (scores predicted negative, and positive: split one view at a threshold with
 * dw_cbpe_view_split(), or pass the events' own predicted classes).
 *
 * Exactness: with views that hold every score with its multiplicity (exact samples), every
 * number equals, to rounding (1e-12 relative in tests/unit/test_cbpe.c), what scikit-learn
 * 1.2's IsotonicRegression and NannyML's formulas give on the expanded sample
 * (tests/fixtures/make_cbpe_fixtures.py). A view from a histogram or a sketch gives the
 * answer for the sample it stands for (each score moved to its representative value): its
 * error is the error of that sample, which also moves scores across a threshold and merges
 * distinct scores into ties. Weights must add up to at most 2^53 per call (sums of weights are
 * then exact in a double).
 */
#ifndef DW_CBPE_H
#define DW_CBPE_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_codec.h"

#define DW_CBPE_FOLDS 10         /* folds of the out-of-fold calibration error (count) */
#define DW_CBPE_ECE_BINS 10      /* NannyML's bins of the expected calibration error (count) */
#define DW_CBPE_MAX_POINTS 65536 /* points of a calibration that are kept and decoded */
#define DW_CBPE_MAX_WEIGHT (1ULL << 53) /* total weight of a call's views (outcomes) */

/** A weighted sorted view: len finite values ascending (equal values may repeat). */
struct dw_cbpe_view {
    const double *values;
    const uint64_t *weights; /* NULL: every weight is 1; weights of 0 are skipped */
    size_t len;
};

/**
 * The calibration fitted on a reference: scikit-learn's IsotonicRegression(out_of_bounds=
 * "clip", increasing=True) as its fitted state (X_thresholds_, y_thresholds_), and how far the
 * reference says it can be trusted. A zeroed struct is empty; dw_cbpe_calib_free() empties it.
 */
struct dw_cbpe_calib {
    double *x;      /* n scores, strictly ascending: sklearn's X_thresholds_ */
    double *p;      /* n probabilities, non-decreasing in [0, 1]: y_thresholds_ */
    uint32_t n;     /* points (1 .. DW_CBPE_MAX_POINTS); 0 when empty */
    uint64_t n_neg; /* reference outcomes labelled negative (total weight) */
    uint64_t n_pos; /* ... labelled positive */
    /* Expected calibration error (NannyML's definition, dw_cbpe_ece()) of the reference's raw
     * scores taken as probabilities: how miscalibrated the model's scores are. NaN (reported as
     * null) when the reference holds fewer than 4 outcomes (or scores so large, ~1e300, that
     * their sums overflow). */
    double ece_scores;
    /* The same error of the calibrated probabilities, out of fold (DW_CBPE_FOLDS folds, each
     * calibrated on the others): how far the calibration is off on outcomes it was not fitted
     * on, the figure that says how far to trust the estimates. NaN below 4 outcomes. */
    double ece_calibrated;
};

/** The estimated metrics, in report order. */
enum dw_cbpe_metric {
    DW_CBPE_ACCURACY,
    DW_CBPE_PRECISION,
    DW_CBPE_RECALL,
    DW_CBPE_F1,
    DW_CBPE_ROC_AUC,
    DW_CBPE__COUNT
};

/** Bit of dw_cbpe_estimate.undefined for metric m. */
#define DW_CBPE_UNDEFINED(m) (1u << (m))

/** The estimates of one window. */
struct dw_cbpe_estimate {
    uint64_t n; /* predictions (total weight of both views) */
    /* Expected confusion counts: tp = Σ_{ŷ=1} p, fp = Σ_{ŷ=1} (1 - p), fn = Σ_{ŷ=0} p,
     * tn = Σ_{ŷ=0} (1 - p), p the calibrated probability of each prediction. */
    double tp, fp, fn, tn;
    double metric[DW_CBPE__COUNT]; /* NaN where undefined */
    /* DW_CBPE_UNDEFINED(m) set: metric m is NaN because its denominator is 0 (no predictions;
     * no predicted positive for precision; an expected positive count of 0 for recall and ROC
     * AUC; an expected negative count of 0 for ROC AUC). NannyML returns 0 for precision,
     * recall and F1 there; driftwatch reports null. */
    unsigned undefined;
};

/** @returns the metric's name in reports ("accuracy", "precision", "recall", "f1", "roc_auc"). */
const char *dw_cbpe_metric_name(enum dw_cbpe_metric m);

/**
 * @brief Fits the calibration on a labelled reference as scikit-learn does (duplicate scores
 *        merged into their mean label, scores closer than 1e-15 to the first of a run counting
 *        as that score, pool-adjacent-violators, points whose neighbours share their
 *        probability dropped), and computes both calibration errors.
 * @param cal empty (zeroed or freed); filled on success, left empty on failure.
 * @param neg scores of the reference outcomes labelled negative (0).
 * @param pos scores of the outcomes labelled positive (1). One of the two may be empty.
 * @returns 0, or -1 and errstr when there is no outcome, a view is unsorted or not finite, the
 *          weights add up to more than DW_CBPE_MAX_WEIGHT, or the fit has more than
 *          DW_CBPE_MAX_POINTS points.
 */
int dw_cbpe_fit(struct dw_cbpe_calib *cal, const struct dw_cbpe_view *neg,
                const struct dw_cbpe_view *pos, char *errstr, size_t errstr_size);

/** @brief Frees the calibration's arrays; the struct is empty afterwards. */
void dw_cbpe_calib_free(struct dw_cbpe_calib *cal);

/**
 * @brief The calibrated probability of a score (IsotonicRegression.predict): the score clipped
 *        to [x[0], x[n-1]], then numpy.interp between the points.
 * @returns the probability in [0, 1]; NaN for a NaN score or an empty calibration.
 */
double dw_cbpe_calibrate(const struct dw_cbpe_calib *cal, double score);

/**
 * @brief Splits a view at a threshold into the scores predicted negative (< threshold) and
 *        positive (>= threshold), as views into the same arrays (no copy).
 */
void dw_cbpe_view_split(const struct dw_cbpe_view *all, double threshold, struct dw_cbpe_view *neg,
                        struct dw_cbpe_view *pos);

/**
 * @brief Estimates a window's performance from its scores (NannyML's estimate_accuracy,
 *        _precision, _recall, _f1 and estimate_roc_auc, the last with tied scores forming one
 *        point of the expected ROC curve, as sklearn's _binary_clf_curve groups them).
 * @param pred_neg scores of the predictions of the negative class (either view may be empty).
 * @param pred_pos scores of the predictions of the positive class.
 * @returns 0 and *out (metrics NaN and flagged in out->undefined where a denominator is 0), or
 *          -1 and errstr when the calibration is empty, a view is unsorted or not finite, or the
 *          weights add up to more than DW_CBPE_MAX_WEIGHT.
 */
int dw_cbpe_estimate(const struct dw_cbpe_calib *cal, const struct dw_cbpe_view *pred_neg,
                     const struct dw_cbpe_view *pred_pos, struct dw_cbpe_estimate *out,
                     char *errstr, size_t errstr_size);

/**
 * @brief Expected calibration error of scores taken as probabilities, as NannyML's
 *        _calculate_expected_calibration_error over _get_bin_index_edges(n, 10): the outcomes
 *        sorted by score (ties: negatives first), cut by rank into bins of n / 10 outcomes (the
 *        last takes the rest; n / 2 bins of 2 when n <= 20), ECE = Σ (n_bin / n)
 *        |mean score - mean label|. Equal-count bins, not equal-width ones: NannyML's choice.
 * @param neg,pos scores of the outcomes labelled negative and positive.
 * @returns 0 and *out (NaN when there are fewer than 4 outcomes: NannyML refuses fewer than 2
 *          bins), or -1 and errstr as dw_cbpe_fit().
 */
int dw_cbpe_ece(const struct dw_cbpe_view *neg, const struct dw_cbpe_view *pos, double *out,
                char *errstr, size_t errstr_size);

/** @brief Appends the calibration's encoding (format in src/core/dw_cbpe.c). */
void dw_cbpe_encode(const struct dw_cbpe_calib *cal, struct dw_buf *out);

/**
 * @brief Reads a calibration written by dw_cbpe_encode() from untrusted bytes: every field is
 *        checked (format, point count, finite scores ascending by at least 1e-15 as a fit's
 *        are, non-decreasing probabilities in [0, 1] consistent with the label counts,
 *        calibration errors).
 * @param cal empty; filled on success, left empty on failure.
 * @returns 0, or -1 with rd->err set and rd->msg saying what is wrong.
 */
int dw_cbpe_decode(struct dw_cbpe_calib *cal, struct dw_reader *rd);

#endif
