/*
 * dw_canary.c - canary analysis: is the candidate version safe to promote?
 *
 * Why it looks like this:
 *
 * - The decision is a fixed-sample design with early stopping for harm. The sample size per
 *   group is planned from the observed baseline accuracy and the tolerated drop (Fleiss'
 *   formula at alpha and 80 % power); until both groups have it the verdict is hold, unless
 *   the interval of the difference already lies entirely beyond the tolerance, which rolls
 *   back at once (a canary exists to stop harm early). Beyond the tolerance, not merely
 *   significant: the analysis is repeated every window, and "p < alpha" on the first few
 *   hundred outcomes of an equal candidate happens every few dozen looks, while an interval
 *   clear of the margin almost never does. Once the plan is reached, accuracy is judged on
 *   the observed drop against the tolerated one: at that size a drop of the margin is just
 *   significant, and deciding on the point estimate gives a verdict that never stays
 *   undecided. The z-test's p-value is reported (is there a difference at all?) but the
 *   verdict asks the other question (is it beyond the tolerance?).
 * - No check looks at fewer than min_samples outcomes per group: below ~100 the normal
 *   approximation behind the z-test is poor (n p (1 - p) >= 10 fails for p = 0.9), and a
 *   verdict from 3 requests is noise.
 * - Every number has a defined value: an empty group gives NaN (null in the report) with a
 *   reason string, equal proportions of exactly 0 or 1 give z = 0 and p = 1 (no difference,
 *   no variance), a ratio against a zero baseline rate is replaced by a check on the rate
 *   itself. Nothing divides by zero, so no NaN appears that is not stated.
 * - Counts are merged by the caller over the analysis windows; the latency p95 is the
 *   caller's too (from merged sketches): this module only compares, so the same function
 *   serves run, replay and the tests.
 */
#include "driftwatch/core/dw_canary.h"

#include <math.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_stats.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

static const char *const verdict_names[DW_CANARY__COUNT] = {"promote", "hold", "rollback"};

const char *dw_canary_verdict_name(enum dw_canary_verdict v)
{
    dw_assert(v < DW_CANARY__COUNT);
    return verdict_names[v];
}

void dw_canary_cfg_default(struct dw_canary_cfg *cc)
{
    cc->alpha = DW_CANARY_DEFAULT_ALPHA;
    cc->min_samples = DW_CANARY_DEFAULT_MIN_SAMPLES;
    cc->max_accuracy_drop = DW_CANARY_DEFAULT_MAX_ACCURACY_DROP;
    cc->max_latency_p95_increase_ms = DW_CANARY_DEFAULT_MAX_LATENCY_P95_INCREASE_MS;
    cc->max_error_rate_ratio = DW_CANARY_DEFAULT_MAX_ERROR_RATE_RATIO;
    cc->min_accuracy = DW_CANARY_DEFAULT_MIN_ACCURACY;
    cc->windows = DW_CANARY_DEFAULT_WINDOWS;
}

int dw_canary_cfg_check(const struct dw_canary_cfg *cc, char *errstr, size_t errstr_size)
{
    if (!(cc->alpha > 0.0 && cc->alpha <= 0.5)) {
        return dw_err(errstr, errstr_size, "canary.alpha: %g is out of range (0 < alpha <= 0.5)",
                      cc->alpha);
    }
    if (cc->min_samples < 1) {
        return dw_err(errstr, errstr_size, "canary.min_samples: must be at least 1");
    }
    if (!(cc->max_accuracy_drop > 0.0 && cc->max_accuracy_drop < 1.0)) {
        return dw_err(errstr, errstr_size,
                      "canary.max_accuracy_drop: %g is out of range (0 < drop < 1)",
                      cc->max_accuracy_drop);
    }
    if (!(cc->max_latency_p95_increase_ms >= 0.0 && isfinite(cc->max_latency_p95_increase_ms))) {
        return dw_err(errstr, errstr_size,
                      "canary.max_latency_p95_increase_ms: %g must be a finite number >= 0",
                      cc->max_latency_p95_increase_ms);
    }
    if (!(cc->max_error_rate_ratio >= 1.0 && isfinite(cc->max_error_rate_ratio))) {
        return dw_err(errstr, errstr_size,
                      "canary.max_error_rate_ratio: %g must be a finite number >= 1",
                      cc->max_error_rate_ratio);
    }
    if (!(cc->min_accuracy >= 0.0 && cc->min_accuracy <= 1.0)) {
        return dw_err(errstr, errstr_size, "canary.min_accuracy: %g is out of range [0, 1]",
                      cc->min_accuracy);
    }
    if (cc->windows < 1) {
        return dw_err(errstr, errstr_size, "canary.windows: must be at least 1");
    }
    return 0;
}

/* ------------------------------------------------------------------ statistics */

void dw_canary_ztest(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2, double alpha,
                     struct dw_canary_ztest *out)
{
    dw_assert(x1 <= n1 && x2 <= n2);
    *out = (struct dw_canary_ztest){.n1 = n1, .x1 = x1, .n2 = n2, .x2 = x2};
    out->p1 = n1 ? (double)x1 / (double)n1 : NAN;
    out->p2 = n2 ? (double)x2 / (double)n2 : NAN;
    if (!n1 || !n2) {
        out->diff = out->z = out->p_value = out->ci_low = out->ci_high = NAN;
        out->reason =
            !n1 ? "the baseline group is empty (n = 0)" : "the candidate group is empty (n = 0)";
        return;
    }
    double p1 = out->p1, p2 = out->p2;
    out->diff = p2 - p1;
    /* Pooled variance is 0 exactly when every outcome of both groups is a success, or none is
     * (decided on the counts, not on rounded doubles): then p1 == p2 and there is nothing to
     * test. */
    if (x1 + x2 == 0 || x1 + x2 == n1 + n2) {
        out->z = 0.0;
        out->p_value = 1.0;
    } else {
        double pooled = (double)(x1 + x2) / (double)(n1 + n2);
        double se = sqrt(pooled * (1.0 - pooled) * (1.0 / (double)n1 + 1.0 / (double)n2));
        out->z = out->diff / se;
        out->p_value = 2.0 * dw_stats_norm_sf(fabs(out->z));
    }
    double half = dw_stats_norm_ppf(1.0 - alpha / 2.0) *
                  sqrt(p1 * (1.0 - p1) / (double)n1 + p2 * (1.0 - p2) / (double)n2);
    out->ci_low = out->diff - half;
    out->ci_high = out->diff + half;
}

double dw_canary_required_n(double p1, double p2, double alpha, double power)
{
    if (!(p1 >= 0.0 && p1 <= 1.0 && p2 >= 0.0 && p2 <= 1.0 && alpha > 0.0 && alpha < 1.0 &&
          power > 0.0 && power < 1.0) ||
        p1 == p2) {
        return NAN;
    }
    double pbar = (p1 + p2) / 2.0;
    double za = dw_stats_norm_ppf(1.0 - alpha / 2.0);
    double zb = dw_stats_norm_ppf(power);
    double root =
        za * sqrt(2.0 * pbar * (1.0 - pbar)) + zb * sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2));
    double d = p1 - p2;
    return root * root / (d * d);
}

/* ------------------------------------------------------------------ verdict */

static void add_reason(struct dw_canary_result *res, const char *check, double value,
                       double threshold)
{
    dw_assert(res->n_reasons < DW_CANARY_MAX_REASONS);
    res->reasons[res->n_reasons++] =
        (struct dw_canary_reason){.check = check, .value = value, .threshold = threshold};
}

/* The planned sample size per group from the observed baseline accuracy. */
static void plan_samples(const struct dw_canary_cfg *cc, struct dw_canary_result *res)
{
    res->required_n_exact = NAN;
    if (!res->accuracy.n1) {
        res->required_n_reason = "the baseline has no labelled outcome";
    } else if (res->accuracy.p1 < cc->max_accuracy_drop) {
        res->required_n_reason = "the baseline accuracy is below max_accuracy_drop";
    } else {
        res->required_n_exact = dw_canary_required_n(
            res->accuracy.p1, res->accuracy.p1 - cc->max_accuracy_drop, cc->alpha, DW_CANARY_POWER);
        res->required_n = (uint64_t)ceil(res->required_n_exact);
    }
    res->samples_needed = res->required_n > cc->min_samples ? res->required_n : cc->min_samples;
    double progress = (double)res->accuracy.n2 / (double)res->samples_needed;
    res->progress = progress < 1.0 ? progress : 1.0;
}

/* Upper end of the Wald interval of one proportion p of n at 1 - alpha. */
static double upper_bound(double p, uint64_t n, double alpha)
{
    return p + dw_stats_norm_ppf(1.0 - alpha / 2.0) * sqrt(p * (1.0 - p) / (double)n);
}

static void check_accuracy(const struct dw_canary_cfg *cc, struct dw_canary_result *res)
{
    const struct dw_canary_ztest *a = &res->accuracy;
    if (a->n1 < cc->min_samples || a->n2 < cc->min_samples) {
        return;
    }
    double drop = a->p1 - a->p2;
    bool planned = a->n1 >= res->samples_needed && a->n2 >= res->samples_needed;
    /* before the plan, only when the whole interval lies beyond the tolerated drop */
    if (drop > cc->max_accuracy_drop && (planned || a->ci_high < -cc->max_accuracy_drop)) {
        add_reason(res, "accuracy_drop", drop, cc->max_accuracy_drop);
    }
    if (a->p2 < cc->min_accuracy &&
        (planned || upper_bound(a->p2, a->n2, cc->alpha) < cc->min_accuracy)) {
        add_reason(res, "min_accuracy", a->p2, cc->min_accuracy);
    }
}

static void check_error_rate(const struct dw_canary_cfg *cc, struct dw_canary_result *res)
{
    const struct dw_canary_ztest *e = &res->error_rate;
    res->error_rate_ratio = NAN;
    if (e->reason) {
        res->error_rate_ratio_reason = e->reason;
        return;
    }
    if (e->x1 == 0) {
        res->error_rate_ratio = e->x2 == 0 ? 1.0 : NAN;
        res->error_rate_ratio_reason = e->x2 == 0 ? NULL : "the baseline error rate is 0";
    } else {
        res->error_rate_ratio = e->p2 / e->p1;
    }
    /* The candidate's rate is above max_error_rate_ratio times the baseline's when the whole
     * interval of p2 - p1 lies above (ratio - 1) p1 (above 0 for an error-free baseline). */
    if (e->n1 < cc->min_samples || e->n2 < cc->min_samples ||
        !(e->ci_low > (cc->max_error_rate_ratio - 1.0) * e->p1)) {
        return;
    }
    if (e->x1 == 0) {
        add_reason(res, "error_rate", e->p2, 0.0); /* any error against none */
    } else if (res->error_rate_ratio > cc->max_error_rate_ratio) {
        add_reason(res, "error_rate_ratio", res->error_rate_ratio, cc->max_error_rate_ratio);
    }
}

static void check_latency(const struct dw_canary_cfg *cc, const struct dw_canary_group *baseline,
                          const struct dw_canary_group *candidate, struct dw_canary_result *res)
{
    res->latency_baseline_ms = baseline->latency_n ? baseline->latency_p95_ms : NAN;
    res->latency_candidate_ms = candidate->latency_n ? candidate->latency_p95_ms : NAN;
    res->latency_delta_ms = res->latency_candidate_ms - res->latency_baseline_ms;
    if (!isfinite(res->latency_baseline_ms) || !isfinite(res->latency_candidate_ms)) {
        res->latency_delta_ms = NAN;
        res->latency_reason = !isfinite(res->latency_baseline_ms) ? "the baseline has no latency"
                                                                  : "the candidate has no latency";
        return;
    }
    if (baseline->latency_n < cc->min_samples || candidate->latency_n < cc->min_samples) {
        return;
    }
    if (res->latency_delta_ms > cc->max_latency_p95_increase_ms) {
        add_reason(res, "latency_p95_increase_ms", res->latency_delta_ms,
                   cc->max_latency_p95_increase_ms);
    }
}

static void hold_for_samples(const char *check, uint64_t have, struct dw_canary_result *res)
{
    if (have >= res->samples_needed) {
        return;
    }
    uint64_t missing = res->samples_needed - have;
    res->more_samples = missing > res->more_samples ? missing : res->more_samples;
    add_reason(res, check, (double)have, (double)res->samples_needed);
}

void dw_canary_analyze(const struct dw_canary_cfg *cc, const struct dw_canary_group *baseline,
                       const struct dw_canary_group *candidate, struct dw_canary_result *out)
{
    *out = (struct dw_canary_result){0};
    dw_canary_ztest(baseline->correct, baseline->labeled, candidate->correct, candidate->labeled,
                    cc->alpha, &out->accuracy);
    dw_canary_ztest(baseline->errors, baseline->served, candidate->errors, candidate->served,
                    cc->alpha, &out->error_rate);
    if (!baseline->served && !candidate->served) {
        out->error_rate.reason = "no serving status (input.fields.status is not set or absent)";
    }
    plan_samples(cc, out);
    check_accuracy(cc, out);
    check_error_rate(cc, out);
    check_latency(cc, baseline, candidate, out);
    if (out->n_reasons) {
        out->verdict = DW_CANARY_ROLLBACK;
        return;
    }
    hold_for_samples("baseline_samples", baseline->labeled, out);
    hold_for_samples("candidate_samples", candidate->labeled, out);
    out->verdict = out->n_reasons ? DW_CANARY_HOLD : DW_CANARY_PROMOTE;
}

/* ------------------------------------------------------------------ report */

static json_t *juint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static void set_reason(json_t *obj, const char *key, const char *reason)
{
    if (reason) {
        json_object_set_new(obj, key, json_string(reason));
    }
}

/* The counts of a test: baseline_n, candidate_n and the successes under the names given. */
static void set_counts(json_t *obj, const struct dw_canary_ztest *t, const char *baseline_x,
                       const char *candidate_x)
{
    json_object_set_new(obj, "baseline_n", juint(t->n1));
    json_object_set_new(obj, baseline_x, juint(t->x1));
    json_object_set_new(obj, "candidate_n", juint(t->n2));
    json_object_set_new(obj, candidate_x, juint(t->x2));
}

/* z, p_value, ci_low, ci_high of a test. */
static void set_test(json_t *obj, const struct dw_canary_ztest *t)
{
    json_object_set_new(obj, "z", dw_jnum(t->z));
    json_object_set_new(obj, "p_value", dw_jnum(t->p_value));
    json_object_set_new(obj, "ci_low", dw_jnum(t->ci_low));
    json_object_set_new(obj, "ci_high", dw_jnum(t->ci_high));
    set_reason(obj, "reason", t->reason);
}

static json_t *render_accuracy(const struct dw_canary_result *res)
{
    const struct dw_canary_ztest *a = &res->accuracy;
    json_t *o = json_object();
    set_counts(o, a, "baseline_correct", "candidate_correct");
    json_object_set_new(o, "baseline", dw_jnum(a->p1));
    json_object_set_new(o, "candidate", dw_jnum(a->p2));
    json_object_set_new(o, "diff", dw_jnum(a->diff));
    set_test(o, a);
    json_object_set_new(o, "required_n",
                        res->required_n_reason ? json_null() : juint(res->required_n));
    set_reason(o, "required_n_reason", res->required_n_reason);
    return o;
}

static json_t *render_error_rate(const struct dw_canary_result *res)
{
    const struct dw_canary_ztest *e = &res->error_rate;
    json_t *o = json_object();
    json_object_set_new(o, "baseline", dw_jnum(e->p1));
    json_object_set_new(o, "candidate", dw_jnum(e->p2));
    json_object_set_new(o, "ratio", dw_jnum(res->error_rate_ratio));
    set_reason(o, "ratio_reason", e->reason ? NULL : res->error_rate_ratio_reason);
    set_counts(o, e, "baseline_errors", "candidate_errors");
    set_test(o, e);
    return o;
}

static json_t *render_latency(const struct dw_canary_result *res)
{
    json_t *o = json_object();
    json_object_set_new(o, "baseline", dw_jnum(res->latency_baseline_ms));
    json_object_set_new(o, "candidate", dw_jnum(res->latency_candidate_ms));
    json_object_set_new(o, "delta", dw_jnum(res->latency_delta_ms));
    set_reason(o, "reason", res->latency_reason);
    return o;
}

json_t *dw_canary_render(const struct dw_canary_cfg *cc, const struct dw_canary_result *res,
                         const char *baseline, const char *candidate)
{
    json_t *o = json_object();
    json_object_set_new(o, "baseline", baseline ? json_string(baseline) : json_null());
    json_object_set_new(o, "candidate", candidate ? json_string(candidate) : json_null());
    json_object_set_new(o, "windows", juint(cc->windows));
    json_object_set_new(o, "verdict", json_string(dw_canary_verdict_name(res->verdict)));
    json_t *reasons = json_array();
    for (size_t i = 0; i < res->n_reasons; i++) {
        const struct dw_canary_reason *r = &res->reasons[i];
        json_array_append_new(reasons,
                              json_pack("{s:s,s:o,s:o}", "check", r->check, "value",
                                        dw_jnum(r->value), "threshold", dw_jnum(r->threshold)));
    }
    json_object_set_new(o, "reasons", reasons);
    json_object_set_new(o, "more_samples", juint(res->more_samples));
    json_object_set_new(o, "samples_needed", juint(res->samples_needed));
    json_object_set_new(o, "progress", dw_jnum(res->progress));
    json_object_set_new(o, "alpha", dw_jnum(cc->alpha));
    json_object_set_new(o, "accuracy", render_accuracy(res));
    json_object_set_new(o, "latency_p95_ms", render_latency(res));
    json_object_set_new(o, "error_rate", render_error_rate(res));
    return o;
}
