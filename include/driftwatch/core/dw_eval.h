/*
 * dw_eval.h - evaluation of a closed window against the model's frozen reference.
 *
 * Pure C over struct dw_agg, no I/O. The reference profile (struct dw_ref) is built from the
 * first N closed windows of a model (reference.windows), stored in Redis as JSON and frozen;
 * every later window is compared with it. dw_eval_window() produces the window report, the
 * product's report format (used by /status, the alert rules of dw_rules.h, triggers and
 * `driftwatch replay`); dw_idempotency_key() (dw_common) gives notifications and triggers
 * their stable ids.
 *
 * Every statistic follows the definitions in docs/statistics.md (summarised in docs/contract.md,
 * section 4).
 */
#ifndef DW_EVAL_H
#define DW_EVAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_config.h"

/* Proportion that replaces an empty bin's 0 on either side before PSI (a proportion). */
#define DW_PSI_EPSILON 1e-4
/* Version of the reference JSON document. */
#define DW_REF_FORMAT_VERSION 1

/** @brief Reference of one feature. */
struct dw_ref_feature {
    char *name;
    enum dw_feature_type type;
    uint64_t count; /* non-missing reference values; 0 = no reference for this feature */
    /* numeric */
    double *edges; /* n_edges strictly increasing bin edges */
    size_t n_edges;
    double *props; /* n_edges + 1 bin proportions: (-inf,e1), [e1,e2), ..., [ek,+inf) */
    double mean, std, min, max; /* std: population */
    /* numeric: the reference's weighted sorted sample for KS and Wasserstein, from the merged
     * reference sketch's dw_kll_sorted_view() (exact up to DW_AGG_MERGE_EXACT values), equal
     * values merged: sample[] strictly increasing, sample_w[] > 0 summing to count. NULL (and
     * n_sample 0) when unknown, as in a reference document written before it existed.
     * sample_w is NULL when the values are nearly all distinct (a continuous feature's): each
     * value is then there as many times as its weight, sample[] non-decreasing, every weight 1
     * (half the memory); read a weight with dw_ref_sample_weight(). */
    double *sample;
    uint64_t *sample_w;
    size_t n_sample;
    /* categorical: names sorted by strcmp (binary search), with their proportions and counts
     * (cat_counts NULL when unknown: the chi-squared and G-tests then have no table) */
    char **cats;
    double *cat_props;
    uint64_t *cat_counts;
    size_t n_cats;
};

/** @brief The model's outputs in a reference, judged like features (docs/statistics.md). */
enum dw_ref_out {
    DW_REF_OUT_SCORE, /* "score": scores (numeric) */
    DW_REF_OUT_PRED,  /* "prediction": predicted classes, or values (regression, numeric) */
    DW_REF_OUT_LABEL, /* "label": labels; from a profile only (dw_ref_build leaves it empty) */
    DW_REF_OUT__COUNT
};

/** @brief The frozen reference profile of one model. */
struct dw_ref {
    char *model;
    int64_t windows; /* windows merged into it */
    uint64_t predictions;
    int64_t first_start_ms; /* start of the earliest / latest window merged */
    int64_t last_start_ms;
    int64_t bins; /* requested numeric bins (edges may be fewer after dedup) */
    uint64_t labeled, correct;
    struct dw_ref_feature *feats; /* one per model feature, in the model's order */
    size_t n_feats;
    /* Where it came from (docs/statistics.md, "Reference sources"): the source, when it was
     * made (ms since the epoch; 0 when unknown) and, for a profile, its file (else NULL). */
    enum dw_ref_source source;
    int64_t created_ms;
    char *profile;
    /* The labelled outcomes of a profile made from training data with labels (counts only, of
     * outcomes_model): the performance baseline it gives. NULL when it holds none. */
    struct dw_agg *outcomes;
    struct dw_model_cfg *outcomes_model;
    /* the outputs (document member "outputs"); count 0 where there were none */
    struct dw_ref_feature out[DW_REF_OUT__COUNT];
    int has_outputs; /* 0: a document written before outputs were kept */
};

/**
 * @brief Builds the reference from n window aggregates of model m (merged into a scratch
 *        aggregate; the inputs are not changed).
 * @param bins numeric quantile bins (10 = deciles); values below 1 count as 1 (one bin).
 * @returns the reference, or NULL when n is 0.
 */
struct dw_ref *dw_ref_build(const struct dw_model_cfg *m, struct dw_agg *const *aggs, size_t n,
                            int64_t bins);

/**
 * @brief Gives ref the labelled outcomes `counts` (an aggregate of model m; its counts and
 *        performance statistics are copied, not its features): a profile's baseline.
 */
void dw_ref_set_outcomes(struct dw_ref *ref, const struct dw_model_cfg *m,
                         const struct dw_agg *counts);
/**
 * @brief Sets the reference's label distribution from final labels (a training profile's:
 *        dw_ref_build leaves it empty, the labels of reference windows not being final when
 *        it is built), binned as the reference's numeric features are.
 */
void dw_ref_set_labels(struct dw_ref *ref, struct dw_feat_stats *fs);

/** @brief The weight of the k-th value of rf's sample (k < rf->n_sample). */
static inline uint64_t dw_ref_sample_weight(const struct dw_ref_feature *rf, size_t k)
{
    return rf->sample_w ? rf->sample_w[k] : 1;
}

/** @brief Frees the reference (NULL is a no-op). */
void dw_ref_free(struct dw_ref *ref);

/**
 * @brief The reference as a JSON document (format in docs/statistics.md). Doubles are JSON
 *        reals: callers that dump it must keep 17 significant digits (jansson's default, or
 *        JSON_REAL_PRECISION(17)) so that dw_ref_from_json() gives back identical doubles.
 */
json_t *dw_ref_to_json(const struct dw_ref *ref);

/**
 * @brief The same document with each numeric "sample" packed: {"encoding":
 *        "base64-f64le-u64le", "n", "data": base64 of n (value, weight) little-endian pairs}.
 *        What run keeps in Redis: a reference holds up to 2^20 values per feature, and their
 *        decimal text costs seconds to print and parse. dw_ref_from_json() reads both forms.
 */
json_t *dw_ref_to_json_packed(const struct dw_ref *ref);

/**
 * @brief The reference's Redis form: the JSON document (samples replaced by
 *        {"encoding": "f64le-uvarint-tail", "n", "offset"}), a NUL byte, then each sample's n
 *        (little-endian f64 value, LEB128 weight) pairs at its offset. Printed and parsed in a
 *        fraction of the packed JSON's time and size (2^20 values per feature of weight 1 are
 *        9 MiB instead of 21 MiB of base64 in a document built, printed and copied several
 *        times). The tail's earlier form, "f64le-u64le-tail" (u64 weights), is still read.
 *        Appended to out (dw_ref_writer_fill() with no limit).
 */
void dw_ref_encode(const struct dw_ref *ref, struct dw_buf *out);

/**
 * @brief dw_ref_encode()'s bytes in pieces, made as they are written: a reference of 10^6
 *        values is ~11 MB in its Redis form, and a buffer of all of it beside the reference
 *        made the 1M bench's peak (bench/RESULTS.md, "Memory: the seventeenth session").
 *        The JSON text is made first (the samples' offsets come from their sizes), then each
 *        fill appends the samples' bytes.
 */
struct dw_ref_writer {
    const struct dw_ref *ref; /* must outlive the writer, unchanged */
    char *head;               /* the JSON text, until written */
    size_t dist, k;           /* the next value: tail distribution, index in its sample */
    uint64_t prev;            /* the key before it */
};

void dw_ref_writer_init(struct dw_ref_writer *w, const struct dw_ref *ref);

/**
 * @brief Appends the next bytes to out: at most about max of them (the JSON text goes whole, a
 *        value's pair is not split).
 * @returns 1 while bytes remain to be written, 0 once the last were appended.
 */
int dw_ref_writer_fill(struct dw_ref_writer *w, struct dw_buf *out, size_t max);

void dw_ref_writer_free(struct dw_ref_writer *w);

/**
 * @brief Reads what dw_ref_encode() wrote, or a JSON document alone (the packed form older
 *        versions kept in Redis, a profile), with every check of dw_ref_from_json().
 * @returns the reference of model m, or NULL with errstr.
 */
struct dw_ref *dw_ref_decode(const struct dw_model_cfg *m, const void *data, size_t len,
                             char *errstr, size_t errstr_size);

/**
 * @brief Whether a profile (a reference a user gives: `replay --reference`) describes model m's
 *        features exactly: each configured feature in it, and none that is not configured.
 *        dw_ref_from_json() is lenient there (a feature added after a stored reference has
 *        none), a profile is not: a mismatch is a mistake to name.
 * @returns 0, or -1 with errstr naming the first feature that differs.
 */
int dw_ref_profile_matches(const struct dw_model_cfg *m, json_t *doc, char *errstr,
                           size_t errstr_size);

/**
 * @brief Reads a reference of model m from its JSON document. Features are matched by name: a
 *        model feature absent from the document has no reference (count 0); unknown ones are
 *        ignored; a type mismatch or malformed field is an error naming the feature. "sample"
 *        (numeric) and "category_counts" (categorical) are optional: without them the
 *        feature's sample / cat_counts are NULL (older documents).
 * @returns the reference, or NULL with errstr.
 */
struct dw_ref *dw_ref_from_json(const struct dw_model_cfg *m, json_t *doc, char *errstr,
                                size_t errstr_size);

/**
 * @brief Population stability index of two distributions over the same n bins (proportions).
 *        Each proportion that is 0 is replaced by DW_PSI_EPSILON first (no renormalisation);
 *        PSI = Σ (c - r) ln(c / r).
 */
double dw_psi(const double *cur, const double *ref, size_t n);

/**
 * @brief Counts of a numeric sketch in the reference bins (n_edges + 1 counts), from
 *        dw_kll_cdf(): bin0 = cdf[0], bin i = cdf[i] - cdf[i-1], last = count - cdf[k-1].
 */
void dw_eval_bin_counts(struct dw_kll *sk, const double *edges, size_t n_edges, uint64_t *counts);

/**
 * @brief The window report of agg (format in docs/statistics.md): every statistic of every
 *        feature against the reference, and the verdicts. Each feature is judged by its
 *        method (cfg->detectors, else auto: KS / chi2 while the smaller sample is at most
 *        cfg->auto_max_sample, else normalised Wasserstein / JS); p-values are adjusted by
 *        Benjamini-Hochberg across the model's tested features and drift below cfg->alpha,
 *        distances drift at or above their threshold; nothing drifts in a window of fewer
 *        than cfg->min_samples predictions; the dataset drifts when the share of drifting
 *        features is at least cfg->drift_share. "accuracy_drop" is null here: the performance
 *        verdicts are the baseline's (dw_baseline_judge), which run and replay add next.
 * @param ref   the model's reference, or NULL while there is none.
 * @param final 1 when evaluated at the label horizon, 0 at window close: the report's "stage"
 *              ("final" or "close") and, for compatibility, its boolean "final".
 * @returns a new JSON object.
 */
json_t *dw_eval_window(const struct dw_config *cfg, const struct dw_model_cfg *m,
                       struct dw_agg *agg, const struct dw_ref *ref, int final);

/**
 * @brief A report's "reference": what the window is judged against. {"status": "ready",
 *        "source", "windows", "predictions", "accuracy", "created_at", and "profile" (a
 *        profile) or "first_window_start" / "last_window_start" (windows)}, or while there is
 *        none {"status": "collecting", "source", "windows": 0, "windows_needed"}: run and
 *        replay change status, windows and reason when they know more (docs/statistics.md).
 * @param ref the reference, or NULL
 */
json_t *dw_eval_reference_json(const struct dw_model_cfg *m, const struct dw_ref *ref);

/**
 * @brief reference.per_version: judges version `slot` of agg in the close report against its
 *        own reference `ref` instead of the model's (versions.<v>.features and .drift), or,
 *        while it is collected (ref NULL; `collected` windows of it so far), reports its
 *        statistics without verdicts, as the model's reference windows are; versions.<v>
 *        gains `reference` (dw_eval_reference_json with "per_version": true).
 */
void dw_eval_version_reference(json_t *report, const struct dw_config *cfg,
                               const struct dw_model_cfg *m, const struct dw_agg *agg, size_t slot,
                               const struct dw_ref *ref, size_t collected);
/** @returns a report's number as JSON: a real, or null when it is NaN or infinite (undefined). */
json_t *dw_jnum(double v);

/**
 * @brief The "performance" object of a report for the counts c (and perf: ROC AUC, macro and
 *        micro F1; NULL leaves them out): accuracy, precision, recall, f1, log_loss, brier and
 *        confusion (classification), or mae, rmse, mape and r2 (regression), as
 *        docs/statistics.md defines them. What a window, a version, the rolling view and the
 *        baseline (dw_baseline.h) report, computed here only.
 * @returns a new JSON object.
 */
json_t *dw_eval_performance(const struct dw_model_cfg *m, const struct dw_counts *c,
                            const struct dw_perf *perf);

/**
 * @brief Sets a final report's "label_drift": the window's labels (agg) judged like a feature
 *        against the reference's label distribution (a profile's), else the labels of
 *        `labels` (the performance baseline's merged final counts of the reference windows;
 *        NULL while it is incomplete), else {"status": status_without, "reason": why_without,
 *        NULL for the default: what the baseline must hold}. "no_labels"
 *        when the window has none. Format in docs/statistics.md, "Output and label drift".
 */
void dw_eval_label_drift(json_t *report, const struct dw_config *cfg, struct dw_agg *agg,
                         const struct dw_ref *ref, struct dw_agg *labels,
                         const char *status_without, const char *why_without);

/**
 * @brief Gives a final report (computed from counts only) the `features`, `drift`,
 *        `prediction_drift`, `estimated`, `estimated_drop`, `latency_ms` (the model's and
 *        each `versions.<v>.latency_ms`) and `reference` of its
 * window's close report `close` (NULL when it could not be read): they are final at the close (the
 * estimate is the label-free one, made before the labels). Without them the report says they are
 * unavailable.
 * @returns 0, or -1 when `close` lacks them.
 */
int dw_eval_take_close(json_t *report, const json_t *close);

/**
 * @returns 1 when agg holds nothing: no prediction, no late prediction or label, no duplicate.
 *          Such windows are reported as runs (dw_eval_empty_run), not one by one.
 */
int dw_eval_agg_empty(const struct dw_agg *agg);

/**
 * @brief Makes the report of an empty window (dw_eval_window() of an aggregate for which
 *        dw_eval_agg_empty() holds) the report of the run of n_windows consecutive empty
 *        windows it starts: "window_end" becomes the end of the run's last window and
 *        "empty_windows" is n_windows (1 for a lone empty window). A gap is thus one report,
 *        one Redis key and one alert step however long it is, and still visible; the alert
 *        rules count it as n_windows windows (dw_rules.h).
 */
void dw_eval_empty_run(json_t *report, const struct dw_config *cfg, int64_t n_windows);

/**
 * @brief Adds "rolling" to a window report: {"windows": k, "window_start" (RFC 3339, the
 *        first included window's start), "predictions", "labeled", "unlabeled_share",
 *        "performance" (the window's shape; null when the k windows hold no prediction)},
 *        the performance of the merge of the last k = min(n, cfg->rolling_windows) aggregates
 *        (empty windows count as windows). Does nothing when cfg->rolling_windows is 0 or n
 *        is 0. The inputs are not changed.
 * @param aggs the model's n latest windows, oldest first, ending with the report's window
 *             (fewer than cfg->rolling_windows at the start); none NULL (pass an empty
 *             aggregate for a window without data).
 */
void dw_eval_add_rolling(json_t *report, const struct dw_config *cfg, const struct dw_model_cfg *m,
                         struct dw_agg *const *aggs, size_t n);

#endif
