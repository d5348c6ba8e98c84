/*
 * dw_canary.h - canary analysis of a model rollout: compares a candidate version with the
 * baseline version over merged window counts and gives a verdict (promote, hold, rollback).
 * Pure C, no I/O; the statistics, the defaults and the edge cases are written out in
 * docs/canary.md, the design in src/core/dw_canary.c.
 *
 * Statistics (the candidate is group 2, the baseline group 1; differences are candidate minus
 * baseline, so a worse candidate has a negative accuracy difference):
 *
 * - two-proportion z-test with the pooled standard error,
 *   z = (p2 - p1) / sqrt(p̄ (1 - p̄) (1/n1 + 1/n2)), p̄ = (x1 + x2) / (n1 + n2), two-sided
 *   p-value 2 P(Z > |z|) (statsmodels' proportions_ztest);
 * - the Wald interval of p2 - p1 at 1 - alpha with the unpooled standard error,
 *   (p2 - p1) ± z_{1-α/2} sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2) (statsmodels'
 *   confint_proportions_2indep(method="wald"));
 * - the sample size per group (equal groups) that detects a drop of the accuracy from p1 to
 *   p2 = p1 - max_accuracy_drop at alpha (two-sided) with power 1 - β = DW_CANARY_POWER,
 *   without continuity correction (Fleiss, Levin and Paik, Statistical Methods for Rates and
 *   Proportions, 3rd ed. 2003, chapter 4):
 *   n = (z_{1-α/2} sqrt(2 p̄ q̄) + z_{1-β} sqrt(p1 q1 + p2 q2))² / (p1 - p2)²,
 *   p̄ = (p1 + p2) / 2, q = 1 - p; reported rounded up.
 */
#ifndef DW_CANARY_H
#define DW_CANARY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults; docs/canary.md says why each is what it is. */
#define DW_CANARY_DEFAULT_ALPHA 0.05                       /* significance level (probability) */
#define DW_CANARY_DEFAULT_MIN_SAMPLES 100                  /* outcomes per group before any check */
#define DW_CANARY_DEFAULT_MAX_ACCURACY_DROP 0.02           /* absolute accuracy (proportion) */
#define DW_CANARY_DEFAULT_MAX_LATENCY_P95_INCREASE_MS 20.0 /* milliseconds */
#define DW_CANARY_DEFAULT_MAX_ERROR_RATE_RATIO 2.0         /* candidate / baseline (ratio) */
#define DW_CANARY_DEFAULT_MIN_ACCURACY 0.0 /* accuracy floor (proportion); 0 is off */
#define DW_CANARY_DEFAULT_WINDOWS 30       /* windows merged into one analysis (count) */
#define DW_CANARY_POWER 0.8                /* power of the sample size (probability), fixed */
#define DW_CANARY_MAX_REASONS 8            /* reasons a verdict can give (count) */

/** Thresholds of one model's canary analysis (models.<m>.canary). */
struct dw_canary_cfg {
    double alpha;                       /* two-sided significance level, (0, 0.5] */
    uint64_t min_samples;               /* per group, >= 1 */
    double max_accuracy_drop;           /* tolerated baseline - candidate accuracy, (0, 1) */
    double max_latency_p95_increase_ms; /* tolerated candidate - baseline p95, >= 0 */
    double max_error_rate_ratio;        /* tolerated candidate / baseline error rate, >= 1 */
    double min_accuracy;                /* candidate accuracy floor, [0, 1]; 0: off */
    uint32_t windows;                   /* windows merged, >= 1 */
};

/** What one version did over the analysis windows (merged counts). */
struct dw_canary_group {
    uint64_t labeled;      /* predictions with their label */
    uint64_t correct;      /* of them, correct (<= labeled) */
    uint64_t served;       /* predictions with a serving status (0: no status field) */
    uint64_t errors;       /* of them, errors (<= served) */
    uint64_t latency_n;    /* predictions with a latency */
    double latency_p95_ms; /* their p95 (from the merged sketch); NaN when none */
};

/** A two-proportion comparison: x2 / n2 (candidate) against x1 / n1 (baseline). */
struct dw_canary_ztest {
    uint64_t n1, x1, n2, x2;
    double p1, p2;          /* the proportions; NaN when its n is 0 */
    double diff;            /* p2 - p1 */
    double z;               /* pooled z; 0 when the pooled variance is 0 (p1 == p2 ∈ {0, 1}) */
    double p_value;         /* two-sided; 1 when the pooled variance is 0 */
    double ci_low, ci_high; /* Wald interval of diff at 1 - alpha (unpooled) */
    const char *reason;     /* why the numbers are NaN (a group is empty), else NULL */
};

enum dw_canary_verdict { DW_CANARY_PROMOTE, DW_CANARY_HOLD, DW_CANARY_ROLLBACK, DW_CANARY__COUNT };

/** One reason of a verdict: a check with its value and the threshold it was held against. */
struct dw_canary_reason {
    const char *check; /* static name (docs/canary.md, "Verdict") */
    double value;
    double threshold;
};

/** The analysis of a candidate against a baseline. */
struct dw_canary_result {
    enum dw_canary_verdict verdict;
    struct dw_canary_reason reasons[DW_CANARY_MAX_REASONS];
    size_t n_reasons;
    uint64_t more_samples; /* hold: labelled outcomes still missing in the group short most */

    struct dw_canary_ztest accuracy;
    double required_n_exact;       /* the formula's value; NaN when undefined */
    uint64_t required_n;           /* its ceiling; 0 when undefined */
    const char *required_n_reason; /* why undefined, else NULL */
    uint64_t samples_needed;       /* per group: max(min_samples, required_n) */
    double progress;               /* candidate labelled / samples_needed, at most 1 */

    struct dw_canary_ztest error_rate; /* errors / served */
    double error_rate_ratio;           /* candidate / baseline; 1 when both are 0, else NaN
                                          when undefined */
    const char *error_rate_ratio_reason;

    double latency_baseline_ms, latency_candidate_ms, latency_delta_ms; /* NaN: undefined */
    const char *latency_reason;
};

/** @brief Fills cc with the defaults (DW_CANARY_DEFAULT_*). */
void dw_canary_cfg_default(struct dw_canary_cfg *cc);

/**
 * @brief Checks the thresholds' ranges (see struct dw_canary_cfg).
 * @returns 0, or -1 and errstr naming the key ("canary.alpha: ...").
 */
int dw_canary_cfg_check(const struct dw_canary_cfg *cc, char *errstr, size_t errstr_size);

/**
 * @brief The two-proportion z-test and Wald interval of x2 / n2 against x1 / n1 (header
 *        comment). Defined everywhere: a group with n == 0 gives NaN numbers and a reason;
 *        equal proportions of exactly 0 or 1 (pooled variance 0) give z = 0, p-value 1 and the
 *        interval [0, 0].
 * @param x1,n1,x2,n2 counts with x <= n (asserted: they are the caller's own merged counts).
 * @param alpha in (0, 1).
 */
void dw_canary_ztest(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2, double alpha,
                     struct dw_canary_ztest *out);

/**
 * @brief Sample size per group to detect p1 -> p2 at alpha (two-sided) with the given power
 *        (Fleiss' formula, header comment), not rounded.
 * @returns n > 0; NaN when p1 == p2 or an argument is outside its range (p in [0, 1],
 *          alpha and power in (0, 1)).
 */
double dw_canary_required_n(double p1, double p2, double alpha, double power);

/**
 * @brief The canary analysis and verdict (docs/canary.md, "Verdict"): rollback when a check
 *        fails (every failed check is a reason), else hold while a group has fewer labelled
 *        outcomes than samples_needed (the shortfalls are the reasons), else promote.
 * @param cc thresholds that passed dw_canary_cfg_check().
 * @param baseline,candidate merged counts, correct <= labeled and errors <= served (asserted).
 */
void dw_canary_analyze(const struct dw_canary_cfg *cc, const struct dw_canary_group *baseline,
                       const struct dw_canary_group *candidate, struct dw_canary_result *out);

/*
 * Window records. The analysis merges the last `windows` windows, whose partitions' records are
 * long gone by then, so each window leaves a small record per stage (close, final): every
 * version's predictions, labelled and correct outcomes, served and errors, and its latency
 * sketch (kept from the close: the partitions drop latency sketches once the close is
 * evaluated). A report of stage S merges the stage-S records of its window and the windows
 * before it, so the verdict does not depend on when the other windows' final evaluations ran:
 * run and replay give the same one (docs/canary.md, "Stages").
 */
struct dw_agg;
struct dw_buf;
struct dw_kll;
struct dw_model_canary;

/** One version's evidence in one window (or merged over windows). */
struct dw_canary_version {
    char *name;
    uint64_t predictions, labeled, correct, served, errors;
    struct dw_kll *latency; /* latency_ms values; NULL: none */
    int64_t first_ms;       /* merged: start of the first window it has predictions in */
};

struct dw_canary_window {
    int64_t start_ms;
    struct dw_canary_version *v;
    size_t n;
};

/** @brief The record of window agg: its versions' counts and latency sketches (copied). */
void dw_canary_window_from_agg(struct dw_canary_window *w, const struct dw_agg *agg);

/** @brief Copies the latency sketches of `close`'s versions into w's versions of the same name
 *         that have none (a final record: its partitions dropped theirs at the close). */
void dw_canary_window_add_latency(struct dw_canary_window *w, const struct dw_canary_window *close);

void dw_canary_window_encode(const struct dw_canary_window *w, struct dw_buf *out);

/** @returns 0, or -1 with errstr on a corrupt record (w is then empty). */
int dw_canary_window_decode(struct dw_canary_window *w, const void *data, size_t len, char *errstr,
                            size_t errstr_size);

void dw_canary_window_free(struct dw_canary_window *w);

/**
 * @brief The report's "canary" object from the records of the analysis windows (any order;
 *        the caller passes those of the last `windows` windows): versions merged, baseline and
 *        candidate chosen (configured, or auto: the baseline has the most predictions, the
 *        candidate is the other version seen first most recently, "__other__" never), then
 *        dw_canary_analyze() and dw_canary_render(), plus `predictions` per group and
 *        `stage`. With fewer than two versions the verdict is null and `reason` says why.
 * @returns a new JSON object.
 */
json_t *dw_canary_report(const struct dw_model_canary *mc, const struct dw_canary_window *wins,
                         size_t n, const char *stage);

/**
 * @brief What GET /api/v1/canary/<model> answers: the latest analysis of each stage (the
 *        `canary` object of the latest close and final reports, each with its window_start;
 *        NULL: none yet) and one verdict for rollout tools: rollback when either says rollback
 *        (the close one first: harm shows early), else the final one's (promote or hold), else
 *        hold; `stage` says which analysis the verdict and the top-level numbers come from.
 *        Without any analysis: verdict null and a reason.
 * @returns a new JSON object {model, verdict, stage, window_start, baseline, candidate,
 *          reasons, summary, accuracy, latency_p95_ms, error_rate, close, final}.
 */
json_t *dw_canary_latest(const char *model, const json_t *close, const json_t *final);

/** @returns "promote", "hold" or "rollback". */
const char *dw_canary_verdict_name(enum dw_canary_verdict v);

/**
 * @brief The report's "canary" object (docs/canary.md, "Report"): baseline, candidate,
 *        windows, verdict, reasons, more_samples, samples_needed, progress, accuracy,
 *        latency_p95_ms and error_rate; null where a number is undefined, with a reason member
 *        saying why.
 * @returns a new JSON object.
 */
json_t *dw_canary_render(const struct dw_canary_cfg *cc, const struct dw_canary_result *res,
                         const char *baseline, const char *candidate);

#endif
