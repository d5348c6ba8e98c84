/*
 * dw_perf.h - the performance statistics of a window that plain counters cannot give:
 * the confusion table by class (multi-class F1), the scores of labelled predictions by true
 * class (ROC AUC) and the latency distribution. Pure C over a plain struct, mergeable,
 * serialisable; part of struct dw_agg.
 *
 * ROC AUC is exact while each class holds at most DW_PERF_EXACT_SCORES scores (the
 * Mann-Whitney statistic with ties counted one half, which equals sklearn's roc_auc_score);
 * beyond that it comes from per-class histograms of DW_PERF_SCORE_BINS equal-width bins over
 * [0, 1], where pairs that share a bin count one half: the error is at most half the share of
 * (positive, negative) pairs that share a bin, and dw_perf_roc_auc() reports that bound.
 */
#ifndef DW_PERF_H
#define DW_PERF_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_kll.h"

#define DW_PERF_SCORE_BINS 1000   /* histogram bins of scores over [0, 1] */
#define DW_PERF_EXACT_SCORES 1024 /* scores kept exactly per true class */
#define DW_PERF_MAX_PAIRS 1024    /* distinct (predicted, true) class pairs; more: "other" */

struct dw_class_pair {
    char *pred;
    char *label;
    uint64_t count;
};

struct dw_perf {
    struct dw_class_pair *pairs; /* open addressing, pair_slots (a power of two, doubled at a
                                  * load factor of 1/2, up to 2 * DW_PERF_MAX_PAIRS) */
    size_t pair_slots;
    size_t n_pairs;
    uint64_t pairs_other; /* outcomes beyond the pair bound */
    uint64_t *hist;       /* once inexact: [0, BINS) true negatives, [BINS, 2 BINS) positives */
    double *exact[2];     /* scores by true class (0 negative, 1 positive), until inexact */
    uint32_t n_exact[2];
    uint32_t cap_exact[2];  /* allocated entries of exact[c] (grown up to EXACT_SCORES) */
    uint32_t n_sorted[2];   /* exact[c][0 .. n_sorted[c]) is ascending */
    int inexact;            /* a class overflowed: the scores are binned in hist */
    struct dw_kll *latency; /* latency_ms of predictions */
};

void dw_perf_init(struct dw_perf *p);
void dw_perf_free(struct dw_perf *p);

/** @brief Counts one labelled prediction (class texts; score when has_score). */
void dw_perf_add_outcome(struct dw_perf *p, const char *pred, const char *label, int positive,
                         int has_score, double score);

/** @brief Counts one prediction's latency (milliseconds, finite). */
void dw_perf_add_latency(struct dw_perf *p, double latency_ms);

/**
 * @brief Counts a latency (milliseconds, finite) into *sk, created on the first value with the
 *        fixed seed of every latency sketch (the model's in struct dw_perf, each version's in
 *        dw_agg.h), so that replays make the same coin flips.
 */
void dw_perf_latency_update(struct dw_kll **sk, double latency_ms);

/** @brief Merges the latency sketch src (NULL: nothing) into *sk, created when NULL. */
void dw_perf_latency_merge(struct dw_kll **sk, const struct dw_kll *src);

/** @brief Quantile q of a latency sketch (numpy linear interpolation while exact); NaN when sk
 *         is NULL or empty. */
double dw_perf_sketch_quantile(struct dw_kll *sk, double q);

void dw_perf_merge(struct dw_perf *dst, const struct dw_perf *src);

void dw_perf_encode(const struct dw_perf *p, struct dw_buf *out);
/** Decodes into p, which dw_perf_init() left empty. @returns 0, or -1 on a corrupt encoding
 *  (rd->err set). */
int dw_perf_decode(struct dw_perf *p, struct dw_reader *rd);

/**
 * @brief ROC AUC of the scored outcomes (positive = the model's positive class).
 * @param err_bound set to 0 when exact, else the histogram's error bound (may be NULL)
 * @returns NaN when there are no scores or only one class.
 */
double dw_perf_roc_auc(const struct dw_perf *p, double *err_bound);

/**
 * @brief Macro and micro F1 over the union of predicted and true classes (sklearn's
 *        f1_score(average="macro"/"micro"), zero_division = 0). @returns -1 when empty.
 */
int dw_perf_f1(const struct dw_perf *p, double *macro, double *micro);

/**
 * @brief The scores of the labelled outcomes of true class cls (0: negative, 1: the positive
 *        class) as a weighted sorted view: the exact scores ascending, weight 1 each, or once
 *        inexact the histogram's non-empty bins at their centres ((b + 0.5) / BINS) with their
 *        counts. What the label-free estimate's calibration is fitted on (dw_cbpe.h).
 * @returns the length; *values and *weights are malloc'd (NULL when 0).
 */
size_t dw_perf_score_view(const struct dw_perf *p, int cls, double **values, uint64_t **weights);

/** @returns the distinct class texts of the confusion pairs (predicted and true), counting up
 *           to `stop` (the pairs beyond DW_PERF_MAX_PAIRS count as one more). */
size_t dw_perf_n_classes(const struct dw_perf *p, size_t stop);

/** @brief Latency quantile q (numpy linear interpolation while exact). NaN when none. */
double dw_perf_latency_quantile(const struct dw_perf *p, double q);

#endif
