/*
 * dw_baseline.h - the performance baseline of a model, and every window's drop against it.
 *
 * The baseline is what "is my model getting worse?" compares with: a value per performance
 * metric (accuracy ... brier, or mae ... r2). It comes from one source, in this order:
 *   - config: models.<m>.baseline.<metric> (the metrics given; the others have none);
 *   - windows: the model's reference windows once their labels are final. Their final counts
 *     (each window's label-horizon evaluation in run; every label at once in replay) are merged
 *     as the rolling view merges windows, and each metric is computed from the merged counts
 *     exactly as a window report computes it (dw_eval_performance).
 *   - profile: the labelled outcomes of a training profile (`driftwatch profile` with the
 *     prediction and label columns) when the model's reference is that profile;
 *   - trailing: with reference.source trailing, the final counts of the N windows before the
 *     one judged (the run loop reads them; dw_baseline_set_trailing).
 * Until the windows' baseline exists, the report says so ("status": "waiting_for_labels",
 * with the share of the reference windows' predictions whose labels it holds).
 *
 * Pure C over plain values. `run` keeps the state (struct dw_baseline) in Redis as text
 * (dw_baseline_dump) committed with the final cursor, so a window is merged exactly once and
 * every pod and restart sees the same baseline; `replay` builds it in memory. Both judge their
 * reports with dw_baseline_judge(), so the drops are computed in one place, and with
 * dw_baseline_judge_outputs(): the label drift and the label-free estimates (CBPE, calibrated
 * on the baseline's labelled scores), which need the baseline's final labels too.
 */
#ifndef DW_BASELINE_H
#define DW_BASELINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_eval.h"

#define DW_BASELINE_FORMAT 1 /* version of the state text */
/* Where the counts of a baseline come from (the config's values are not counts: see above). */
enum dw_baseline_source { DW_BASELINE_WINDOWS = 0, DW_BASELINE_PROFILE, DW_BASELINE_TRAILING };

/** @brief The windows' baseline of one model while it is collected, and once complete. */
struct dw_baseline {
    struct dw_model_cfg *counts_model; /* the model without features: what `sum` counts */
    int64_t needed;                    /* reference windows to merge; 0 while unknown */
    int64_t *starts;                   /* starts of the reference windows merged, in order */
    size_t n;
    int missed;         /* a reference window was final before it could be merged (state of an
                         * older version, or lost): the windows' baseline cannot be completed */
    struct dw_agg *sum; /* the merged final counts; NULL while n is 0 */
    enum dw_baseline_source source;
};

/** @brief An empty baseline of model m (borrowed: it must outlive bl). */
void dw_baseline_init(struct dw_baseline *bl, const struct dw_model_cfg *m);

void dw_baseline_free(struct dw_baseline *bl);

/**
 * @brief Merges the final counts of reference window `agg` (one of `needed`); a window already
 *        merged changes nothing (a step repeated after a failed commit).
 * @returns 1 when merged, 0 when it already was.
 */
int dw_baseline_add(struct dw_baseline *bl, const struct dw_agg *agg, int64_t needed);

/**
 * @brief run's final evaluation of the window(s) from `start`: agg holds its final counts (NULL
 *        for a run of empty windows). Merged when `start` is one of the reference windows
 *        `refwins` (a JSON array of starts, the complete list: run evaluates at the label
 *        horizon only once the reference is built); a reference window before `start` that
 *        was never merged marks the baseline missed.
 * @returns 1 when the state changed (commit dw_baseline_dump()), 0 when not.
 */
int dw_baseline_step(struct dw_baseline *bl, const json_t *refwins, int64_t start,
                     const struct dw_agg *agg);

/**
 * @brief Makes bl the baseline of a profile's labelled outcomes (copied), ready at once;
 *        outcomes NULL (a profile made without labels) makes it unavailable, with the reason.
 */
void dw_baseline_set_profile(struct dw_baseline *bl, const struct dw_agg *outcomes);
/**
 * @brief Makes bl the baseline of the trailing windows aggs[0..n-1] (their counts, merged; the
 *        empty ones add nothing): ready when one of them has predictions, else unavailable.
 */
void dw_baseline_set_trailing(struct dw_baseline *bl, struct dw_agg *const *aggs, size_t n);
/** @returns 1 when the windows' baseline is complete: every reference window merged. */
int dw_baseline_ready(const struct dw_baseline *bl);

/**
 * @brief The state as text (JSON: format, needed, windows, missed, and the merged counts as
 *        base64 of dw_agg_encode), malloc'ed: what run commits as baseline:<model>.
 */
char *dw_baseline_dump(const struct dw_baseline *bl);

/**
 * @brief Reads what dw_baseline_dump() wrote into bl (initialised here); text NULL (no state
 *        yet) gives an empty baseline.
 * @returns 0, or -1 with errstr (bl is then empty).
 */
int dw_baseline_load(struct dw_baseline *bl, const struct dw_model_cfg *m, const char *text,
                     char *errstr, size_t errstr_size);

/**
 * @brief The relative drop of metric k from `base` to `value`, signed so that a positive drop
 *        is always worse: (base - value) / |base| when higher is better (accuracy, r2),
 *        (value - base) / |base| when lower is better (log_loss, rmse).
 * @param why set to the reason when the drop is undefined ("baseline_undefined",
 *            "baseline_zero", "value_undefined"), else to NULL
 * @returns the drop, or NaN when undefined.
 */
double dw_baseline_drop(enum dw_perf_metric k, double base, double value, const char **why);

/**
 * @brief Judges a window report (dw_eval_window's) against the baseline: adds "baseline" (its
 *        status, source and values), and when the report has performance "performance.baseline",
 *        "performance.drop" (every metric of the model's task; null when undefined) and
 *        "performance.drop_undefined" (metric -> why), "performance_drop" (the built-in rule's
 *        verdict: accuracy for classification, rmse for regression, alerting above
 *        detectors.accuracy_drop with at least detectors.min_samples labels) and the older
 *        "accuracy_drop" (classification, kept for compatibility). Format in
 *        docs/statistics.md, "Baselines and drops".
 * @param bl the windows' baseline (NULL: none collected yet)
 * @param ref_predictions predictions in the reference windows when known (run: its reference's),
 *        else 0: the denominator of labeled_share while the baseline is collected
 */
void dw_baseline_judge(json_t *report, const struct dw_config *cfg, const struct dw_model_cfg *m,
                       const struct dw_baseline *bl, uint64_t ref_predictions);

/**
 * @brief What a report gets from the baseline beside the performance drops (one call after
 *        dw_baseline_judge): on a final report the label drift (dw_eval_label_drift) against
 *        the reference's labels, else the baseline's merged final labels once it is complete;
 *        and, unless the report already has it (run's final report takes its close report's),
 *        the label-free estimate "estimated" and its drops "estimated_drop": the calibration
 *        (dw_cbpe_fit) is fitted on the baseline's labelled scores by true class, the window's
 *        scores by predicted class are estimated with it (dw_cbpe_estimate), and each estimate
 *        is judged with dw_baseline_drop(). Until there is a complete baseline, or when the
 *        model is not a binary classifier with scores, "estimated" says why.
 *        Format in docs/statistics.md, "Label-free estimates (CBPE)".
 * @param agg the window's aggregate (its scores' sketches, its labels), NULL for a run of
 *            empty windows.
 */
void dw_baseline_judge_outputs(json_t *report, const struct dw_config *cfg,
                               const struct dw_model_cfg *m, const struct dw_baseline *bl,
                               struct dw_agg *agg, const struct dw_ref *ref);

#endif
