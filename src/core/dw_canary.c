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

#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_kll.h"
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

/* One line for people and annotations: the verdict and every reason with its value and
 * threshold ("rollback: accuracy_drop 0.3126 (threshold 0.1)"). */
static json_t *render_summary(const struct dw_canary_result *res)
{
    struct dw_sbuf sb = {0};
    dw_sbuf_printf(&sb, "%s", dw_canary_verdict_name(res->verdict));
    for (size_t i = 0; i < res->n_reasons; i++) {
        const struct dw_canary_reason *r = &res->reasons[i];
        dw_sbuf_printf(&sb, "%s %s %.4g (threshold %.4g)", i ? ";" : ":", r->check, r->value,
                       r->threshold);
    }
    if (res->n_reasons == 0) {
        dw_sbuf_printf(&sb, ": no check failed");
    }
    json_t *s = json_string(sb.s);
    dw_sbuf_free(&sb);
    return s;
}

json_t *dw_canary_render(const struct dw_canary_cfg *cc, const struct dw_canary_result *res,
                         const char *baseline, const char *candidate)
{
    json_t *o = json_object();
    json_object_set_new(o, "baseline", baseline ? json_string(baseline) : json_null());
    json_object_set_new(o, "candidate", candidate ? json_string(candidate) : json_null());
    json_object_set_new(o, "windows", juint(cc->windows));
    json_object_set_new(o, "verdict", json_string(dw_canary_verdict_name(res->verdict)));
    json_object_set_new(o, "rollback", json_boolean(res->verdict == DW_CANARY_ROLLBACK));
    json_object_set_new(o, "summary", render_summary(res));
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

/* ---- window records ---- */

#define RECORD_VERSION 1 /* encoding of a window record */

void dw_canary_window_from_agg(struct dw_canary_window *w, const struct dw_agg *agg)
{
    w->start_ms = agg->start_ms;
    w->n = agg->n_versions;
    w->v = dw_calloc(w->n ? w->n : 1, sizeof(*w->v));
    for (size_t i = 0; i < w->n; i++) {
        const struct dw_version_stats *vs = &agg->versions[i];
        struct dw_canary_version *v = &w->v[i];
        v->name = dw_strdup(vs->name);
        v->predictions = vs->c.predictions;
        v->labeled = vs->c.labeled;
        v->correct = vs->c.correct;
        v->served = vs->served;
        v->errors = vs->errors;
        v->first_ms = agg->start_ms;
        dw_perf_latency_merge(&v->latency, vs->latency);
    }
}

static struct dw_canary_version *find_version(const struct dw_canary_window *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->v[i].name, name) == 0) {
            return &w->v[i];
        }
    }
    return NULL;
}

void dw_canary_window_add_latency(struct dw_canary_window *w, const struct dw_canary_window *close)
{
    for (size_t i = 0; i < close->n; i++) {
        struct dw_canary_version *v = find_version(w, close->v[i].name);
        if (v && !v->latency) {
            dw_perf_latency_merge(&v->latency, close->v[i].latency);
        }
    }
}

void dw_canary_window_encode(const struct dw_canary_window *w, struct dw_buf *out)
{
    dw_buf_put_u8(out, RECORD_VERSION);
    dw_buf_put_i64(out, w->start_ms);
    dw_buf_put_u16(out, (uint16_t)w->n);
    for (size_t i = 0; i < w->n; i++) {
        const struct dw_canary_version *v = &w->v[i];
        dw_buf_put_str(out, v->name, strlen(v->name));
        dw_buf_put_uvarint(out, v->predictions);
        dw_buf_put_uvarint(out, v->labeled);
        dw_buf_put_uvarint(out, v->correct);
        dw_buf_put_uvarint(out, v->served);
        dw_buf_put_uvarint(out, v->errors);
        dw_kll_put(out, v->latency);
    }
}

/* One version of a record; counts that contradict each other are corruption. */
static int decode_version(struct dw_reader *rd, struct dw_canary_version *v)
{
    const char *name = NULL;
    size_t len = dw_rd_name(rd, &name, "version name");
    v->predictions = dw_rd_uvarint(rd);
    v->labeled = dw_rd_uvarint(rd);
    v->correct = dw_rd_uvarint(rd);
    v->served = dw_rd_uvarint(rd);
    v->errors = dw_rd_uvarint(rd);
    if (rd->err) {
        return -1;
    }
    v->name = dw_strndup(name, len);
    if (v->correct > v->labeled || v->labeled > v->predictions || v->errors > v->served ||
        v->served > v->predictions) {
        dw_rd_fail(rd, "version %s: counts contradict each other", v->name);
        return -1;
    }
    return dw_kll_get(rd, &v->latency);
}

int dw_canary_window_decode(struct dw_canary_window *w, const void *data, size_t len, char *errstr,
                            size_t errstr_size)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    memset(w, 0, sizeof(*w));
    uint8_t version = dw_rd_u8(&rd);
    if (!rd.err && version != RECORD_VERSION) {
        dw_rd_fail(&rd, "unknown canary record version %u", (unsigned)version);
    }
    w->start_ms = dw_rd_i64(&rd);
    uint16_t n = dw_rd_u16(&rd);
    if (!rd.err) {
        w->v = dw_calloc(n ? n : 1, sizeof(*w->v));
    }
    for (uint16_t i = 0; !rd.err && i < n; i++) {
        w->n++;
        if (decode_version(&rd, &w->v[i]) != 0 && !rd.err) {
            dw_rd_fail(&rd, "version %u: corrupt latency sketch", (unsigned)i);
        }
    }
    if (!rd.err && dw_rd_left(&rd) != 0) {
        dw_rd_fail(&rd, "%zu bytes after the record", dw_rd_left(&rd));
    }
    if (rd.err) {
        dw_err(errstr, errstr_size, "canary record: %s", rd.msg);
        dw_canary_window_free(w);
        return -1;
    }
    return 0;
}

void dw_canary_window_free(struct dw_canary_window *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].name);
        dw_kll_destroy(w->v[i].latency);
    }
    free(w->v);
    memset(w, 0, sizeof(*w));
}

/* ---- the analysis over window records ---- */

/* Adds src (one window's version) into the merged set m. */
static void merge_version(struct dw_canary_window *m, const struct dw_canary_version *src,
                          int64_t start_ms)
{
    struct dw_canary_version *v = find_version(m, src->name);
    if (!v) {
        m->v = dw_realloc(m->v, (m->n + 1) * sizeof(*m->v));
        v = &m->v[m->n++];
        memset(v, 0, sizeof(*v));
        v->name = dw_strdup(src->name);
        v->first_ms = INT64_MAX;
    }
    v->predictions += src->predictions;
    v->labeled += src->labeled;
    v->correct += src->correct;
    v->served += src->served;
    v->errors += src->errors;
    if (src->predictions > 0 && start_ms < v->first_ms) {
        v->first_ms = start_ms;
    }
    dw_perf_latency_merge(&v->latency, src->latency);
}

/* The configured version, or auto: the baseline has the most predictions (ties: the first
 * seen, then the name); the candidate is, of the others, the one seen first most recently
 * (ties: the most predictions, then the name). "__other__" (versions beyond the bound) is
 * never chosen. @returns an index into m->v, or -1. */
static long pick(const struct dw_canary_window *m, const char *want, long not )
{
    long best = -1;
    for (size_t i = 0; i < m->n; i++) {
        const struct dw_canary_version *v = &m->v[i];
        if (strcmp(want, "auto") != 0) {
            if (strcmp(v->name, want) == 0) {
                return (long)i;
            }
            continue;
        }
        if ((long)i == not || strcmp(v->name, DW_AGG_OTHER) == 0 || v->predictions == 0) {
            continue;
        }
        const struct dw_canary_version *b = best >= 0 ? &m->v[best] : NULL;
        int better;
        if (!b) {
            better = 1;
        } else if (not < 0) { /* baseline */
            better = v->predictions != b->predictions ? v->predictions > b->predictions
                     : v->first_ms != b->first_ms     ? v->first_ms < b->first_ms
                                                      : strcmp(v->name, b->name) < 0;
        } else { /* candidate */
            better = v->first_ms != b->first_ms         ? v->first_ms > b->first_ms
                     : v->predictions != b->predictions ? v->predictions > b->predictions
                                                        : strcmp(v->name, b->name) < 0;
        }
        if (better) {
            best = (long)i;
        }
    }
    return best;
}

static void to_group(const struct dw_canary_version *v, struct dw_canary_group *g)
{
    memset(g, 0, sizeof(*g));
    g->latency_p95_ms = NAN;
    if (!v) {
        return;
    }
    g->labeled = v->labeled;
    g->correct = v->correct;
    g->served = v->served;
    g->errors = v->errors;
    if (v->latency && dw_kll_count(v->latency) > 0) {
        g->latency_n = dw_kll_count(v->latency);
        g->latency_p95_ms = dw_kll_quantile(v->latency, 0.95);
    }
}

json_t *dw_canary_report(const struct dw_model_canary *mc, const struct dw_canary_window *wins,
                         size_t n, const char *stage)
{
    struct dw_canary_window m = {0};
    for (size_t w = 0; w < n; w++) {
        for (size_t i = 0; i < wins[w].n; i++) {
            merge_version(&m, &wins[w].v[i], wins[w].start_ms);
        }
    }
    long b = pick(&m, mc->baseline, -1);
    long c = pick(&m, mc->candidate, b);
    const char *bname = strcmp(mc->baseline, "auto") != 0 ? mc->baseline
                        : b >= 0                          ? m.v[b].name
                                                          : NULL;
    const char *cname = strcmp(mc->candidate, "auto") != 0 ? mc->candidate
                        : c >= 0                           ? m.v[c].name
                                                           : NULL;
    json_t *o;
    if (!bname || !cname || (b >= 0 && b == c)) {
        const char *why = "fewer than two versions in the analysis windows: nothing to compare";
        o = json_pack(
            "{s:o,s:o,s:I,s:n,s:b,s:s,s:s}", "baseline", bname ? json_string(bname) : json_null(),
            "candidate", cname ? json_string(cname) : json_null(), "windows",
            (json_int_t)mc->cfg.windows, "verdict", "rollback", 0, "summary", why, "reason", why);
    } else {
        struct dw_canary_group gb, gc;
        to_group(b >= 0 ? &m.v[b] : NULL, &gb);
        to_group(c >= 0 ? &m.v[c] : NULL, &gc);
        struct dw_canary_result res;
        dw_canary_analyze(&mc->cfg, &gb, &gc, &res);
        o = dw_canary_render(&mc->cfg, &res, bname, cname);
        json_object_set_new(o, "predictions",
                            json_pack("{s:o,s:o}", "baseline",
                                      juint(b >= 0 ? m.v[b].predictions : 0), "candidate",
                                      juint(c >= 0 ? m.v[c].predictions : 0)));
    }
    json_object_set_new(o, "stage", json_string(stage));
    dw_canary_window_free(&m);
    return o;
}

/* ---- the latest analysis, for rollout tools ---- */

static int says(const json_t *analysis, const char *verdict)
{
    const char *v = json_string_value(json_object_get(analysis, "verdict"));
    return v && strcmp(v, verdict) == 0;
}

json_t *dw_canary_latest(const char *model, const json_t *close, const json_t *final)
{
    const json_t *from = says(close, "rollback")                                         ? close
                         : says(final, "rollback")                                       ? final
                         : final && json_string_value(json_object_get(final, "verdict")) ? final
                                                                                         : close;
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(model));
    if (!from || !json_string_value(json_object_get(from, "verdict"))) {
        json_object_set_new(o, "verdict", json_null());
        json_object_set_new(
            o, "reason", json_string(from ? "nothing to compare yet" : "no window analysed yet"));
    } else {
        int hold = from == close && !says(close, "rollback"); /* no final verdict yet */
        json_object_set_new(
            o, "verdict",
            json_string(hold ? "hold" : json_string_value(json_object_get(from, "verdict"))));
        if (hold && says(close, "promote")) {
            json_object_set_new(o, "reason",
                                json_string("promote needs a final analysis (the labels of "
                                            "the label horizon); the close one says promote"));
        }
        json_object_set_new(o, "stage", json_string(from == close ? "close" : "final"));
        static const char *const keys[] = {"window_start",   "baseline",  "candidate",
                                           "reasons",        "summary",   "accuracy",
                                           "latency_p95_ms", "error_rate"};
        for (size_t i = 0; i < DW_ARRAY_SIZE(keys); i++) {
            json_t *v = json_object_get(from, keys[i]);
            json_object_set_new(o, keys[i], v ? json_deep_copy(v) : json_null());
        }
    }
    json_object_set_new(o, "close", close ? json_deep_copy(close) : json_null());
    json_object_set_new(o, "final", final ? json_deep_copy(final) : json_null());
    return o;
}
