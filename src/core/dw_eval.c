/*
 * dw_eval.c - reference profile, PSI, performance metrics, window report with every drift
 * detector and its verdict, alert payloads.
 *
 * Why it looks like this:
 * - The reference is frozen, so it is derived once (dw_ref_build) into plain arrays: numeric
 *   bin edges with the reference proportions per bin, categorical names sorted for binary
 *   search. A window's evaluation then needs only its own aggregate: bin counts come from its
 *   sketch's cdf at the reference edges, categories from its table. No event is revisited.
 * - Every definition users compare with numpy / scipy / sklearn (type-7 quantiles, population
 *   std, the 1e-4 rule of PSI, sklearn's zero_division = 0) lives here and nowhere else (the
 *   tests and distances themselves in dw_stats.c), and is written down in
 *   docs/statistics.md. Change one, change the other.
 * - Every statistic of a feature is computed for every window (KS, Wasserstein, binned
 *   distances, tests on the table of counts): the report explains a verdict with all the
 *   numbers users compare with, whichever detector decided. KS and Wasserstein need the
 *   reference data itself, so the reference keeps its weighted sorted sample (ties merged)
 *   and its category counts; the verdict then uses one method per feature (configured, or
 *   auto: a p-value test for small samples, a distance for large ones, where every tiny
 *   difference is significant), with Benjamini-Hochberg across the model's tests so that a
 *   model with many features does not page on chance alone.
 * - The model's outputs are judged like features, by the same code (distribution_stats,
 *   set_verdict): the score distribution and the predicted class (regression: the value) at
 *   the close ("prediction_drift"), the labels on the final report ("label_drift"), since they
 *   arrive until the label horizon. Each output is its own family of one test and none counts
 *   in the dataset verdict (drift.share stays about the inputs): a model whose inputs are
 *   stable but whose scores move is a different story, told by its own verdicts. The label
 *   reference is a profile's label distribution, else the performance baseline's final
 *   labels: the reference itself freezes at the close of its last window, before its labels
 *   are in.
 * - The report is built as JSON directly: it is the product's format (/status, webhooks,
 *   triggers, replay), and the alert rules (dw_rules.c) read the report alone, so an
 *   alert can always be explained by the report it carries.
 * - The rolling view (dw_eval_add_rolling) is the merge of the last N window aggregates, so it
 *   equals the performance of one window spanning them (counts add; ROC AUC from the merged
 *   scores). It reports performance only, so the merge runs over a copy of the model without
 *   features: the feature sketches, the costly part of a merge, are never touched.
 * - Idempotency keys are SHA-256 of (group, model, window, what) truncated to 128 bits: the
 *   same window and rule give the same key on every pod and after every restart.
 * - A run of consecutive empty windows is one report (dw_eval_empty_run): the first empty
 *   window's report, stretched to the run's end, with "empty_windows". Gaps stay visible
 *   (predictions 0) without one report, Redis key and alert step per window: a gap of days
 *   would otherwise cost thousands of each.
 */
#include "driftwatch/core/dw_eval.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_kll.h"
#include "driftwatch/core/dw_stats.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Sum of squares about the mean below this share of Σy² is rounding noise: R² undefined. */
#define R2_SST_REL_EPS (64.0 * DBL_EPSILON)

/* ---------------------------------------------------------------- small helpers */

/* A double as JSON: real, or null when NaN/infinite (undefined). */
json_t *dw_jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *juint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *jratio(uint64_t num, uint64_t den)
{
    return den > 0 ? json_real((double)num / (double)den) : json_null();
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------------------- PSI and bins */

double dw_psi(const double *cur, const double *ref, size_t n)
{
    double psi = 0.0;
    for (size_t i = 0; i < n; i++) {
        double c = cur[i] > 0.0 ? cur[i] : DW_PSI_EPSILON;
        double r = ref[i] > 0.0 ? ref[i] : DW_PSI_EPSILON;
        psi += (c - r) * log(c / r);
    }
    return psi;
}

void dw_eval_bin_counts(struct dw_kll *sk, const double *edges, size_t n_edges, uint64_t *counts)
{
    uint64_t total = dw_kll_count(sk);
    if (n_edges == 0) {
        counts[0] = total;
        return;
    }
    uint64_t *lt = dw_malloc(n_edges * sizeof(*lt));
    dw_kll_cdf(sk, edges, n_edges, lt);
    counts[0] = lt[0];
    for (size_t i = 1; i < n_edges; i++) {
        counts[i] = lt[i] >= lt[i - 1] ? lt[i] - lt[i - 1] : 0;
    }
    counts[n_edges] = total >= lt[n_edges - 1] ? total - lt[n_edges - 1] : 0;
    free(lt);
}

/*
 * A reference sample without weights (struct dw_ref_feature): when its values are nearly all
 * distinct (the total weight at most twice their number), each value is repeated as many times
 * as its weight, in place of the weights: 8 bytes a value instead of 16. KS and Wasserstein walk
 * past equal values together, so the statistics are the same. A sample of few distinct values
 * with large weights keeps them.
 */
static void repeat_weights(double **v, uint64_t **w, size_t *n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < *n; i++) {
        total += (*w)[i];
        if (total > 2 * (uint64_t)*n) {
            return;
        }
    }
    if (total > *n) {
        double *out = dw_malloc((size_t)total * sizeof(*out));
        size_t k = 0;
        for (size_t i = 0; i < *n; i++) {
            for (uint64_t c = 0; c < (*w)[i]; c++) {
                out[k++] = (*v)[i];
            }
        }
        free(*v);
        *v = out;
        *n = k;
    }
    free(*w);
    *w = NULL;
}

/*
 * The weighted sorted sample of a sketch with equal values merged (values strictly increasing,
 * weights summing to the sketch's count). Merging ties changes nothing for KS (D is taken after
 * all values equal to a point) nor for Wasserstein, and shrinks the reference document and the
 * work for samples with few distinct values. Returns the length (0 and NULLs when empty).
 */
static size_t sorted_sample(struct dw_kll *sk, double **values, uint64_t **weights)
{
    *values = NULL;
    *weights = NULL;
    size_t n = sk ? dw_kll_sorted_view(sk, NULL, NULL, 0) : 0;
    if (n == 0) {
        return 0;
    }
    double *v = dw_malloc(n * sizeof(*v));
    uint64_t *w = dw_malloc(n * sizeof(*w));
    dw_kll_sorted_view(sk, v, w, n);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0) {
            continue;
        }
        if (out > 0 && v[i] == v[out - 1]) {
            w[out - 1] += w[i];
        } else {
            v[out] = v[i];
            w[out] = w[i];
            out++;
        }
    }
    if (out == 0) {
        free(v);
        free(w);
        return 0;
    }
    *values = v;
    *weights = w;
    return out;
}

/* ---------------------------------------------------------------- reference */

static void ref_feature_clear(struct dw_ref_feature *rf)
{
    free(rf->name);
    free(rf->edges);
    free(rf->props);
    free(rf->sample);
    free(rf->sample_w);
    free(rf->cat_counts);
    for (size_t i = 0; i < rf->n_cats; i++) {
        free(rf->cats[i]);
    }
    free(rf->cats);
    free(rf->cat_props);
}

void dw_ref_free(struct dw_ref *ref)
{
    if (!ref) {
        return;
    }
    for (size_t i = 0; i < ref->n_feats; i++) {
        ref_feature_clear(&ref->feats[i]);
    }
    for (size_t k = 0; k < DW_REF_OUT__COUNT; k++) {
        ref_feature_clear(&ref->out[k]);
    }
    free(ref->feats);
    free(ref->model);
    free(ref->profile);
    dw_agg_free(ref->outcomes);
    free(ref->outcomes_model);
    free(ref);
}

void dw_ref_set_outcomes(struct dw_ref *ref, const struct dw_model_cfg *m,
                         const struct dw_agg *counts)
{
    dw_agg_free(ref->outcomes);
    free(ref->outcomes_model);
    ref->outcomes_model = dw_model_counts_only(m);
    ref->outcomes = dw_agg_new_exact(ref->outcomes_model, counts->start_ms, DW_AGG_MERGE_EXACT);
    dw_agg_merge(ref->outcomes, counts);
}

static void ref_numeric(struct dw_ref_feature *rf, struct dw_feat_stats *fs, int64_t bins)
{
    rf->mean = rf->std = rf->min = rf->max = NAN;
    if (fs->count == 0 || !fs->sk || dw_kll_count(fs->sk) == 0) {
        rf->count = 0;
        return;
    }
    rf->count = fs->count;
    rf->mean = fs->mean;
    rf->std = dw_feat_std(fs);
    rf->min = fs->min;
    rf->max = fs->max;
    size_t want = (size_t)(bins - 1);
    rf->edges = dw_calloc(want ? want : 1, sizeof(*rf->edges));
    for (size_t i = 1; i <= want; i++) {
        double e = dw_kll_quantile(fs->sk, (double)i / (double)bins);
        /* Quantiles are non-decreasing: keep only strictly larger ones (dedup). */
        if (rf->n_edges == 0 || e > rf->edges[rf->n_edges - 1]) {
            rf->edges[rf->n_edges++] = e;
        }
    }
    uint64_t *counts = dw_calloc(rf->n_edges + 1, sizeof(*counts));
    dw_eval_bin_counts(fs->sk, rf->edges, rf->n_edges, counts);
    uint64_t total = dw_kll_count(fs->sk);
    rf->props = dw_calloc(rf->n_edges + 1, sizeof(*rf->props));
    for (size_t i = 0; i <= rf->n_edges; i++) {
        rf->props[i] = (double)counts[i] / (double)total;
    }
    free(counts);
    rf->n_sample = sorted_sample(fs->sk, &rf->sample, &rf->sample_w);
    repeat_weights(&rf->sample, &rf->sample_w, &rf->n_sample);
}

/* Category names and counts of a window feature (table slots plus the overflow bucket). */
static size_t feat_categories(const struct dw_feat_stats *fs, char ***names, uint64_t **counts)
{
    size_t cap = fs->n_cats + 1, n = 0;
    *names = dw_calloc(cap, sizeof(**names));
    *counts = dw_calloc(cap, sizeof(**counts));
    for (size_t s = 0; fs->cats && s < fs->cat_cap && n < fs->n_cats; s++) {
        if (fs->cats[s].name && fs->cats[s].count > 0) {
            (*names)[n] = fs->cats[s].name;
            (*counts)[n] = fs->cats[s].count;
            n++;
        }
    }
    if (fs->other > 0) {
        (*names)[n] = DW_AGG_OTHER;
        (*counts)[n] = fs->other;
        n++;
    }
    return n;
}

struct name_count {
    const char *name;
    uint64_t count;
};

static int cmp_name_count(const void *a, const void *b)
{
    return strcmp(((const struct name_count *)a)->name, ((const struct name_count *)b)->name);
}

static void ref_categorical(struct dw_ref_feature *rf, const struct dw_feat_stats *fs)
{
    char **names;
    uint64_t *counts;
    size_t n = feat_categories(fs, &names, &counts);
    uint64_t total = 0;
    struct name_count *nc = dw_calloc(n ? n : 1, sizeof(*nc));
    for (size_t i = 0; i < n; i++) {
        nc[i].name = names[i];
        nc[i].count = counts[i];
        total += counts[i];
    }
    qsort(nc, n, sizeof(*nc), cmp_name_count);
    rf->count = total;
    if (total > 0) {
        rf->n_cats = n;
        rf->cats = dw_calloc(n, sizeof(*rf->cats));
        rf->cat_props = dw_calloc(n, sizeof(*rf->cat_props));
        rf->cat_counts = dw_calloc(n, sizeof(*rf->cat_counts));
        for (size_t i = 0; i < n; i++) {
            rf->cats[i] = dw_strdup(nc[i].name);
            rf->cat_props[i] = (double)nc[i].count / (double)total;
            rf->cat_counts[i] = nc[i].count;
        }
    }
    free(nc);
    free(names);
    free(counts);
}

/* Names of the outputs in a reference document ("outputs") and in messages. */
static const char *const out_names[DW_REF_OUT__COUNT] = {"score", "prediction", "label"};

/* The aggregate's statistic behind reference output k. */
static const enum dw_agg_out out_stat[DW_REF_OUT__COUNT] = {
    DW_AGG_OUT_SCORE_POS, /* its type: the scores' (both are numeric) */
    DW_AGG_OUT_PRED, DW_AGG_OUT_LABEL};

/* An empty reference output k of model m (count 0: no reference distribution). */
static void ref_out_init(struct dw_ref_feature *rf, const struct dw_model_cfg *m, size_t k)
{
    memset(rf, 0, sizeof(*rf));
    rf->name = dw_strdup(out_names[k]);
    rf->type = dw_agg_out_type(m, out_stat[k]);
    rf->mean = rf->std = rf->min = rf->max = NAN;
}

/* The reference distribution `name` of a window statistic (a feature or an output). */
static void ref_distribution(struct dw_ref_feature *rf, const char *name, struct dw_feat_stats *fs,
                             int64_t bins)
{
    rf->name = dw_strdup(name);
    rf->type = fs->type;
    if (rf->type == DW_FEATURE_NUMERIC) {
        ref_numeric(rf, fs, bins);
    } else {
        ref_categorical(rf, fs);
    }
}

struct dw_ref *dw_ref_build(const struct dw_model_cfg *m, struct dw_agg *const *aggs, size_t n,
                            int64_t bins)
{
    if (n == 0) {
        return NULL;
    }
    if (bins < 1) {
        bins = 1;
    }
    struct dw_agg *all = dw_agg_new_exact(m, aggs[0]->start_ms, DW_AGG_MERGE_EXACT);
    struct dw_ref *ref = dw_calloc(1, sizeof(*ref));
    ref->first_start_ms = aggs[0]->start_ms;
    ref->last_start_ms = aggs[0]->start_ms;
    for (size_t i = 0; i < n; i++) {
        dw_agg_merge_counts(all, aggs[i]); /* the features one at a time, below */
        ref->first_start_ms = DW_MIN(ref->first_start_ms, aggs[i]->start_ms);
        ref->last_start_ms = DW_MAX(ref->last_start_ms, aggs[i]->start_ms);
    }
    ref->model = dw_strdup(m->name);
    ref->windows = (int64_t)n;
    ref->bins = bins;
    ref->predictions = all->all.predictions;
    ref->labeled = all->all.labeled;
    ref->correct = all->all.correct;
    ref->n_feats = m->n_features;
    ref->feats = dw_calloc(m->n_features ? m->n_features : 1, sizeof(*ref->feats));
    for (size_t i = 0; i < m->n_features; i++) {
        for (size_t k = 0; k < n; k++) {
            dw_agg_merge_feature(all, aggs[k], i);
        }
        ref_distribution(&ref->feats[i], m->features[i].name, &all->feats[i], bins);
        /* its sample is taken: the merged sketch can go (one merged feature at a time: the 1M
         * bench's peak held all of them, and later all of them and every sample) */
        dw_feat_stats_free(&all->feats[i]);
    }
    struct dw_feat_stats scores;
    dw_agg_scores(all, &scores);
    ref_distribution(&ref->out[DW_REF_OUT_SCORE], out_names[DW_REF_OUT_SCORE], &scores, bins);
    dw_feat_stats_free(&scores);
    ref_distribution(&ref->out[DW_REF_OUT_PRED], out_names[DW_REF_OUT_PRED],
                     &all->out[DW_AGG_OUT_PRED], bins);
    /* The labels of reference windows are not final when the reference is built (it freezes at
     * the close of the last one): the label reference is the performance baseline's. */
    ref_out_init(&ref->out[DW_REF_OUT_LABEL], m, DW_REF_OUT_LABEL);
    ref->has_outputs = 1;
    dw_agg_free(all);
    return ref;
}

void dw_ref_set_labels(struct dw_ref *ref, struct dw_feat_stats *fs)
{
    ref_feature_clear(&ref->out[DW_REF_OUT_LABEL]);
    memset(&ref->out[DW_REF_OUT_LABEL], 0, sizeof(ref->out[DW_REF_OUT_LABEL]));
    ref_distribution(&ref->out[DW_REF_OUT_LABEL], out_names[DW_REF_OUT_LABEL], fs, ref->bins);
}

static json_t *jarray_reals(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_real(v[i]));
    }
    return a;
}

#define SAMPLE_PACKED "base64-f64le-u64le"      /* "encoding" of a packed sample */
#define SAMPLE_TAIL "f64key-delta-uvarint-tail" /* "encoding" of a sample in the binary tail */
#define SAMPLE_TAIL_F64 "f64le-uvarint-tail"    /* the tail's encoding before (whole values) */
#define SAMPLE_TAIL_U64 "f64le-u64le-tail"      /* and before that (u64 weights) */

/* The forms of a sample in the tail, newest first. */
enum tail_form { TAIL_DELTA, TAIL_F64, TAIL_U64 };
#define OUTCOMES_ENCODING "base64-dw-agg" /* "encoding" of a profile's outcomes */

/* How ref_to_json() writes samples: decimal arrays, base64 in the JSON, or into a tail. */
enum sample_form { SAMPLE_ARRAYS, SAMPLE_BASE64, SAMPLE_IN_TAIL };

static json_t *ref_to_json(const struct dw_ref *ref, enum sample_form form, size_t *tail_len);

/* The binary tail of a reference in its Redis form (dw_ref_encode); NULL data: none. */
struct ref_tail {
    const unsigned char *data;
    size_t len;
};

static struct dw_ref *ref_from_json(const struct dw_model_cfg *m, json_t *doc,
                                    const struct ref_tail *tail, char *errstr, size_t errstr_size);

/* The sample as base64 of n (f64 value, u64 weight) little-endian pairs: the reference kept in
 * Redis holds up to 2^20 values per feature, and printing and parsing them as decimal text
 * costs seconds on the evaluator's loop. */
static json_t *sample_packed(const struct dw_ref_feature *rf)
{
    struct dw_buf b;
    dw_buf_init(&b);
    for (size_t k = 0; k < rf->n_sample; k++) {
        dw_buf_put_f64(&b, rf->sample[k]);
        dw_buf_put_u64(&b, dw_ref_sample_weight(rf, k));
    }
    char *b64 = dw_base64(b.data, b.len);
    json_t *out = json_pack("{s:s,s:I,s:s}", "encoding", SAMPLE_PACKED, "n",
                            (json_int_t)rf->n_sample, "data", b64);
    free(b64);
    dw_buf_free(&b);
    return out;
}

static json_t *sample_arrays(const struct dw_ref_feature *rf)
{
    json_t *w = json_array();
    for (size_t k = 0; k < rf->n_sample; k++) {
        json_array_append_new(w, juint(dw_ref_sample_weight(rf, k)));
    }
    return json_pack("{s:o,s:o}", "values", jarray_reals(rf->sample, rf->n_sample), "weights", w);
}

/* An order-preserving key of a double: ascending finite doubles have ascending keys (-0.0 just
 * below 0.0), and f64_of_key() gives the double back bit for bit. */
static uint64_t key_of_f64(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return (b >> 63) ? ~b : b | (UINT64_C(1) << 63);
}

static double f64_of_key(uint64_t k)
{
    uint64_t b = (k >> 63) ? k & ~(UINT64_C(1) << 63) : ~k;
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

/*
 * The sample's (value, weight) pairs in the tail (dw_ref_writer_fill() writes them), and where
 * they are: *tail_len is where they start and grows by their size. The values are ascending, so
 * each is written as the difference of its key (key_of_f64) from the one before, an unsigned
 * varint: neighbours in a sample of 10^5 values differ in their low bits only, and 4-6 bytes
 * carry what 8 did (the reference is the largest key in Redis after the joined records). A
 * weight is a varint too: most are 1. Up to 2^20 pairs per feature.
 */
static json_t *sample_in_tail(const struct dw_ref_feature *rf, size_t *tail_len)
{
    size_t off = *tail_len;
    uint64_t prev = 0;
    for (size_t k = 0; k < rf->n_sample; k++) {
        uint64_t key = key_of_f64(rf->sample[k]);
        *tail_len += dw_uvarint_size(key - prev) + dw_uvarint_size(dw_ref_sample_weight(rf, k));
        prev = key;
    }
    return json_pack("{s:s,s:I,s:I}", "encoding", SAMPLE_TAIL, "n", (json_int_t)rf->n_sample,
                     "offset", (json_int_t)off);
}

json_t *dw_ref_to_json_packed(const struct dw_ref *ref)
{
    return ref_to_json(ref, SAMPLE_BASE64, NULL);
}

json_t *dw_ref_to_json(const struct dw_ref *ref)
{
    return ref_to_json(ref, SAMPLE_ARRAYS, NULL);
}

/* The distribution whose sample is the d-th in the tail (ref_to_json()'s order: the features,
 * then the outputs), or NULL when the d-th has none. */
static const struct dw_ref_feature *tail_dist(const struct dw_ref *ref, size_t d)
{
    const struct dw_ref_feature *rf = d < ref->n_feats ? &ref->feats[d] : NULL;
    if (!rf && ref->has_outputs && d - ref->n_feats < DW_REF_OUT__COUNT) {
        rf = &ref->out[d - ref->n_feats];
        rf = rf->count > 0 ? rf : NULL;
    }
    return rf && rf->type == DW_FEATURE_NUMERIC && rf->sample ? rf : NULL;
}

void dw_ref_writer_init(struct dw_ref_writer *w, const struct dw_ref *ref)
{
    *w = (struct dw_ref_writer){.ref = ref};
    size_t tail_len = 0;
    json_t *doc = ref_to_json(ref, SAMPLE_IN_TAIL, &tail_len);
    w->head = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    dw_assert(w->head);
    json_decref(doc);
}

int dw_ref_writer_fill(struct dw_ref_writer *w, struct dw_buf *out, size_t max)
{
    size_t start = out->len;
    if (w->head) { /* the JSON text and its NUL first */
        dw_buf_put(out, w->head, strlen(w->head) + 1);
        free(w->head);
        w->head = NULL;
    }
    for (; w->dist < w->ref->n_feats + DW_REF_OUT__COUNT; w->dist++, w->k = 0, w->prev = 0) {
        const struct dw_ref_feature *rf = tail_dist(w->ref, w->dist);
        for (; rf && w->k < rf->n_sample; w->k++) {
            if (out->len - start >= max) {
                return 1;
            }
            uint64_t key = key_of_f64(rf->sample[w->k]);
            dw_assert(key >= w->prev);
            dw_buf_put_uvarint(out, key - w->prev);
            dw_buf_put_uvarint(out, dw_ref_sample_weight(rf, w->k));
            w->prev = key;
        }
    }
    return 0;
}

void dw_ref_writer_free(struct dw_ref_writer *w)
{
    free(w->head);
    w->head = NULL;
}

void dw_ref_encode(const struct dw_ref *ref, struct dw_buf *out)
{
    struct dw_ref_writer w;
    dw_ref_writer_init(&w, ref);
    while (dw_ref_writer_fill(&w, out, SIZE_MAX)) {
    }
    dw_ref_writer_free(&w);
}

struct dw_ref *dw_ref_decode(const struct dw_model_cfg *m, const void *data, size_t len,
                             char *errstr, size_t errstr_size)
{
    const unsigned char *nul = memchr(data, 0, len);
    size_t text_len = nul ? (size_t)(nul - (const unsigned char *)data) : len;
    struct ref_tail tail = {nul ? nul + 1 : NULL, nul ? len - text_len - 1 : 0};
    json_error_t jerr;
    json_t *doc = json_loadb(data, text_len, 0, &jerr);
    if (!doc) {
        dw_err(errstr, errstr_size, "reference: not JSON: %s", jerr.text);
        return NULL;
    }
    struct dw_ref *ref = ref_from_json(m, doc, &tail, errstr, errstr_size);
    json_decref(doc);
    return ref;
}

int dw_ref_profile_matches(const struct dw_model_cfg *m, json_t *doc, char *errstr,
                           size_t errstr_size)
{
    json_t *feats = json_object_get(doc, "features");
    for (size_t i = 0; i < m->n_features; i++) {
        if (!json_object_get(feats, m->features[i].name)) {
            return dw_err(errstr, errstr_size,
                          "feature '%s' of model '%s' is not in the profile (a profile must "
                          "describe the model's features: make it again from data that has it)",
                          m->features[i].name, m->name);
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(feats, key, v)
    {
        if (dw_model_feature_index(m, key, strlen(key)) < 0) {
            return dw_err(errstr, errstr_size,
                          "feature '%s' of the profile is not a feature of model '%s'", key,
                          m->name);
        }
    }
    return 0;
}

struct dw_ref *dw_ref_from_json(const struct dw_model_cfg *m, json_t *doc, char *errstr,
                                size_t errstr_size)
{
    struct ref_tail none = {NULL, 0};
    return ref_from_json(m, doc, &none, errstr, errstr_size);
}

/* "origin" (source, created_at, profile) and, when there are some, "outcomes" (base64 of
 * dw_agg_encode of the counts): docs/statistics.md, "The reference document". */
static void origin_to_json(const struct dw_ref *ref, json_t *doc)
{
    char created[40];
    dw_time_format_rfc3339(ref->created_ms, created, sizeof(created));
    json_t *o = json_pack("{s:s,s:s,s:I}", "source", dw_ref_source_name(ref->source), "created_at",
                          created, "created_at_ms", (json_int_t)ref->created_ms);
    if (ref->profile) {
        json_object_set_new(o, "profile", json_string(ref->profile));
    }
    json_object_set_new(doc, "origin", o);
    if (ref->outcomes) {
        struct dw_buf b;
        dw_buf_init(&b);
        dw_agg_encode(ref->outcomes, &b);
        char *b64 = dw_base64(b.data, b.len);
        json_object_set_new(doc, "outcomes",
                            json_pack("{s:s,s:s}", "encoding", OUTCOMES_ENCODING, "data", b64));
        free(b64);
        dw_buf_free(&b);
    }
}
static json_t *ref_feature_to_json(const struct dw_ref_feature *rf, enum sample_form form,
                                   size_t *tail_len);

static json_t *ref_to_json(const struct dw_ref *ref, enum sample_form form, size_t *tail_len)
{
    char first[40], last[40];
    dw_time_format_rfc3339(ref->first_start_ms, first, sizeof(first));
    dw_time_format_rfc3339(ref->last_start_ms, last, sizeof(last));
    json_t *doc = json_object();
    json_object_set_new(doc, "format", json_integer(DW_REF_FORMAT_VERSION));
    json_object_set_new(doc, "model", json_string(ref->model));
    json_object_set_new(doc, "windows", json_integer(ref->windows));
    json_object_set_new(doc, "predictions", juint(ref->predictions));
    json_object_set_new(doc, "first_window_start", json_string(first));
    json_object_set_new(doc, "last_window_start", json_string(last));
    json_object_set_new(doc, "first_window_start_ms", json_integer(ref->first_start_ms));
    json_object_set_new(doc, "last_window_start_ms", json_integer(ref->last_start_ms));
    json_object_set_new(doc, "bins", json_integer(ref->bins));
    json_object_set_new(doc, "labeled", juint(ref->labeled));
    json_object_set_new(doc, "correct", juint(ref->correct));
    json_t *feats = json_object();
    for (size_t i = 0; i < ref->n_feats; i++) {
        const struct dw_ref_feature *rf = &ref->feats[i];
        json_object_set_new(feats, rf->name, ref_feature_to_json(rf, form, tail_len));
    }
    json_object_set_new(doc, "features", feats);
    origin_to_json(ref, doc);
    if (ref->has_outputs) {
        json_t *outs = json_object();
        for (size_t k = 0; k < DW_REF_OUT__COUNT; k++) {
            if (ref->out[k].count > 0) {
                json_object_set_new(outs, out_names[k],
                                    ref_feature_to_json(&ref->out[k], form, tail_len));
            }
        }
        json_object_set_new(doc, "outputs", outs);
    }
    return doc;
}

/* One distribution of a reference document: a feature's or an output's. */
static json_t *ref_feature_to_json(const struct dw_ref_feature *rf, enum sample_form form,
                                   size_t *tail_len)
{
    json_t *f = json_object();
    if (rf->type == DW_FEATURE_NUMERIC) {
        json_object_set_new(f, "type", json_string("numeric"));
        json_object_set_new(f, "count", juint(rf->count));
        json_object_set_new(f, "mean", dw_jnum(rf->mean));
        json_object_set_new(f, "std", dw_jnum(rf->std));
        json_object_set_new(f, "min", dw_jnum(rf->min));
        json_object_set_new(f, "max", dw_jnum(rf->max));
        json_object_set_new(f, "edges", jarray_reals(rf->edges, rf->n_edges));
        json_object_set_new(f, "proportions",
                            jarray_reals(rf->props, rf->props ? rf->n_edges + 1 : 0));
        if (rf->sample) {
            json_object_set_new(f, "sample",
                                form == SAMPLE_IN_TAIL  ? sample_in_tail(rf, tail_len)
                                : form == SAMPLE_BASE64 ? sample_packed(rf)
                                                        : sample_arrays(rf));
        }
    } else {
        json_object_set_new(f, "type", json_string("categorical"));
        json_object_set_new(f, "count", juint(rf->count));
        json_t *cats = json_object();
        for (size_t c = 0; c < rf->n_cats; c++) {
            json_object_set_new(cats, rf->cats[c], json_real(rf->cat_props[c]));
        }
        json_object_set_new(f, "categories", cats);
        if (rf->cat_counts) {
            json_t *counts = json_object();
            for (size_t c = 0; c < rf->n_cats; c++) {
                json_object_set_new(counts, rf->cats[c], juint(rf->cat_counts[c]));
            }
            json_object_set_new(f, "category_counts", counts);
        }
    }
    return f;
}

/* Non-negative integer member. */
static int get_count(json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_i64(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Number member, or null/absent as NaN. */
static int get_num_or_null(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v)) {
        return -1;
    }
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

static int is_proportion(json_t *v)
{
    if (!json_is_number(v)) {
        return 0;
    }
    double p = json_number_value(v);
    return isfinite(p) && p >= 0.0 && p <= 1.0;
}

/* The optional "sample": {"values": [...], "weights": [...]} of a numeric feature. */
/* The sample as two JSON arrays (profiles). */
static int sample_unarray(const struct dw_ref_feature *rf, json_t *s, double **v, uint64_t **w,
                          size_t *n, char *errstr, size_t errstr_size)
{
    json_t *vals = json_object_get(s, "values");
    json_t *wts = json_object_get(s, "weights");
    *n = json_array_size(vals);
    if (!json_is_array(vals) || !json_is_array(wts) || json_array_size(wts) != *n || *n == 0) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: sample needs values and weights of the same, "
                      "non-zero length",
                      rf->name);
    }
    *v = dw_malloc(*n * sizeof(**v));
    *w = dw_malloc(*n * sizeof(**w));
    for (size_t i = 0; i < *n; i++) {
        json_t *x = json_array_get(vals, i);
        json_t *y = json_array_get(wts, i);
        int ok = json_is_number(x) && json_is_integer(y) && json_integer_value(y) > 0;
        (*v)[i] = ok ? json_number_value(x) : NAN; /* NaN fails the caller's checks */
        (*w)[i] = ok ? (uint64_t)json_integer_value(y) : 0;
    }
    return 0;
}

/* Bytes of one packed sample value: f64 value, u64 weight. */
#define SAMPLE_PAIR_BYTES 16

/*
 * The packed sample (SAMPLE_PACKED: the reference in Redis). "n" is checked against the bytes
 * the data actually holds by division, not by multiplying n (a product that wraps around
 * would let a huge n through), before anything is allocated from it.
 */
/* One (value, weight) pair of a tail of form `form`; *prev is the key before (TAIL_DELTA). */
static void tail_pair(struct dw_reader *rd, enum tail_form form, uint64_t *prev, double *v,
                      uint64_t *w)
{
    if (form == TAIL_DELTA) {
        uint64_t d = dw_rd_uvarint(rd);
        if (!rd->err && d > UINT64_MAX - *prev) {
            dw_rd_fail(rd, "a value's key beyond 64 bits");
        }
        *prev += d;
        *v = f64_of_key(*prev);
    } else {
        *v = dw_rd_f64(rd);
    }
    *w = form == TAIL_U64 ? dw_rd_u64(rd) : dw_rd_uvarint(rd);
}

/* A sample in the tail: {"encoding": one of the SAMPLE_TAIL forms, "n": n, "offset": bytes into
 * the tail}. n is checked against the bytes after the offset (at least 2, 9 or 16 per pair)
 * before anything is allocated from it. */
static int sample_from_tail(const struct dw_ref_feature *rf, json_t *s, const struct ref_tail *tail,
                            enum tail_form form, double **v, uint64_t **w, size_t *n, char *errstr,
                            size_t errstr_size)
{
    json_t *jn = json_object_get(s, "n"), *jo = json_object_get(s, "offset");
    json_int_t cnt = json_integer_value(jn), off = json_integer_value(jo);
    size_t min_pair = form == TAIL_DELTA ? 2 : form == TAIL_F64 ? 9 : SAMPLE_PAIR_BYTES;
    if (!tail->data || !json_is_integer(jn) || !json_is_integer(jo) || cnt <= 0 || off < 0 ||
        (uint64_t)off > tail->len || (uint64_t)cnt > (tail->len - (uint64_t)off) / min_pair) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: malformed sample: needs a positive n and an offset "
                      "with at least n * %zu bytes after it in the binary part (%zu bytes)",
                      rf->name, min_pair, tail->data ? tail->len : (size_t)0);
    }
    *n = (size_t)cnt;
    struct dw_reader rd;
    dw_reader_init(&rd, tail->data + off, tail->len - (size_t)off);
    *v = dw_malloc(*n * sizeof(**v));
    *w = dw_malloc(*n * sizeof(**w));
    uint64_t prev = 0;
    for (size_t i = 0; i < *n && !rd.err; i++) {
        tail_pair(&rd, form, &prev, &(*v)[i], &(*w)[i]);
    }
    if (rd.err) {
        free(*v);
        free(*w);
        *v = NULL;
        *w = NULL;
        return dw_err(errstr, errstr_size, "reference feature %s: malformed sample: %s", rf->name,
                      rd.msg);
    }
    return 0;
}

static int sample_unpack(const struct dw_ref_feature *rf, json_t *s, const struct ref_tail *tail,
                         double **v, uint64_t **w, size_t *n, char *errstr, size_t errstr_size)
{
    const char *enc = json_string_value(json_object_get(s, "encoding"));
    static const char *const tails[] = {
        [TAIL_DELTA] = SAMPLE_TAIL, [TAIL_F64] = SAMPLE_TAIL_F64, [TAIL_U64] = SAMPLE_TAIL_U64};
    for (size_t f = 0; enc && f < DW_ARRAY_SIZE(tails); f++) {
        if (strcmp(enc, tails[f]) == 0) {
            return sample_from_tail(rf, s, tail, (enum tail_form)f, v, w, n, errstr, errstr_size);
        }
    }
    const char *data = json_string_value(json_object_get(s, "data"));
    json_t *jn = json_object_get(s, "n");
    if (!enc || strcmp(enc, SAMPLE_PACKED) != 0 || !data || !json_is_integer(jn) ||
        json_integer_value(jn) <= 0) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: malformed packed sample: needs encoding \"%s\", a "
                      "positive integer n and data",
                      rf->name, SAMPLE_PACKED);
    }
    unsigned char *bytes = NULL;
    long got = dw_base64_decode(data, &bytes);
    if (got < 0) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: malformed packed sample: data is not base64",
                      rf->name);
    }
    uint64_t want = (uint64_t)json_integer_value(jn);
    if ((size_t)got % SAMPLE_PAIR_BYTES != 0 || want != (uint64_t)got / SAMPLE_PAIR_BYTES) {
        free(bytes);
        return dw_err(errstr, errstr_size,
                      "reference feature %s: malformed packed sample: n %llu for %ld bytes of "
                      "data (%d per value)",
                      rf->name, (unsigned long long)want, got, SAMPLE_PAIR_BYTES);
    }
    *n = (size_t)got / SAMPLE_PAIR_BYTES;
    struct dw_reader rd;
    dw_reader_init(&rd, bytes, (size_t)got);
    *v = dw_malloc(*n * sizeof(**v));
    *w = dw_malloc(*n * sizeof(**w));
    for (size_t i = 0; i < *n; i++) {
        (*v)[i] = dw_rd_f64(&rd);
        (*w)[i] = dw_rd_u64(&rd);
    }
    free(bytes);
    return 0;
}

static int ref_sample_from_json(struct dw_ref_feature *rf, json_t *s, const struct ref_tail *tail,
                                char *errstr, size_t errstr_size)
{
    if (!s || json_is_null(s)) {
        return 0; /* a document from before samples: KS and Wasserstein are then null */
    }
    double *v = NULL;
    uint64_t *w = NULL;
    size_t n = 0;
    int rc = json_object_get(s, "encoding")
                 ? sample_unpack(rf, s, tail, &v, &w, &n, errstr, errstr_size)
                 : sample_unarray(rf, s, &v, &w, &n, errstr, errstr_size);
    if (rc != 0) {
        return -1;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (i > 0 && !(v[i] >= v[i - 1])) || w[i] == 0) {
            free(v);
            free(w);
            return dw_err(errstr, errstr_size,
                          "reference feature %s: sample values must be finite and ascending, "
                          "weights positive integers",
                          rf->name);
        }
        if (dw_u64_add(&total, w[i]) != 0) {
            free(v);
            free(w);
            return dw_err(errstr, errstr_size,
                          "reference feature %s: sample weights sum beyond 2^64, count is %llu",
                          rf->name, (unsigned long long)rf->count);
        }
    }
    if (total != rf->count) {
        free(v);
        free(w);
        return dw_err(errstr, errstr_size,
                      "reference feature %s: sample weights sum to %llu, count is %llu", rf->name,
                      (unsigned long long)total, (unsigned long long)rf->count);
    }
    repeat_weights(&v, &w, &n);
    rf->sample = v;
    rf->sample_w = w;
    rf->n_sample = n;
    return 0;
}

static int ref_numeric_from_json(struct dw_ref_feature *rf, json_t *f, const struct ref_tail *tail,
                                 char *errstr, size_t errstr_size)
{
    if (get_num_or_null(f, "mean", &rf->mean) || get_num_or_null(f, "std", &rf->std) ||
        get_num_or_null(f, "min", &rf->min) || get_num_or_null(f, "max", &rf->max)) {
        return dw_err(errstr, errstr_size, "reference feature %s: mean/std/min/max not numbers",
                      rf->name);
    }
    json_t *edges = json_object_get(f, "edges");
    json_t *props = json_object_get(f, "proportions");
    if (!json_is_array(edges) || !json_is_array(props)) {
        return dw_err(errstr, errstr_size, "reference feature %s: edges/proportions missing",
                      rf->name);
    }
    if (rf->count == 0) {
        return 0; /* no reference distribution */
    }
    size_t ne = json_array_size(edges);
    if (json_array_size(props) != ne + 1) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: %zu edges need %zu proportions, got %zu", rf->name, ne,
                      ne + 1, json_array_size(props));
    }
    rf->edges = dw_calloc(ne ? ne : 1, sizeof(*rf->edges));
    rf->props = dw_calloc(ne + 1, sizeof(*rf->props));
    for (size_t i = 0; i < ne; i++) {
        json_t *e = json_array_get(edges, i);
        double v = json_number_value(e);
        if (!json_is_number(e) || !isfinite(v) || (i > 0 && !(v > rf->edges[i - 1]))) {
            return dw_err(errstr, errstr_size,
                          "reference feature %s: edges must be finite and strictly increasing",
                          rf->name);
        }
        rf->edges[i] = v;
    }
    rf->n_edges = ne;
    for (size_t i = 0; i <= ne; i++) {
        json_t *p = json_array_get(props, i);
        if (!is_proportion(p)) {
            return dw_err(errstr, errstr_size,
                          "reference feature %s: proportions must be numbers in [0, 1]", rf->name);
        }
        rf->props[i] = json_number_value(p);
    }
    return ref_sample_from_json(rf, json_object_get(f, "sample"), tail, errstr, errstr_size);
}

static int ref_categorical_from_json(struct dw_ref_feature *rf, json_t *f, char *errstr,
                                     size_t errstr_size)
{
    json_t *cats = json_object_get(f, "categories");
    if (!json_is_object(cats)) {
        return dw_err(errstr, errstr_size, "reference feature %s: categories missing", rf->name);
    }
    if (rf->count == 0) {
        return 0;
    }
    size_t n = json_object_size(cats);
    struct name_count *nc = dw_calloc(n ? n : 1, sizeof(*nc));
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(cats, key, v)
    {
        if (!is_proportion(v)) {
            free(nc);
            return dw_err(errstr, errstr_size,
                          "reference feature %s: category %s: proportion not in [0, 1]", rf->name,
                          key);
        }
        nc[i++].name = key;
    }
    qsort(nc, n, sizeof(*nc), cmp_name_count);
    rf->cats = dw_calloc(n ? n : 1, sizeof(*rf->cats));
    rf->cat_props = dw_calloc(n ? n : 1, sizeof(*rf->cat_props));
    for (i = 0; i < n; i++) {
        rf->cats[i] = dw_strdup(nc[i].name);
        rf->cat_props[i] = json_number_value(json_object_get(cats, nc[i].name));
    }
    rf->n_cats = n;
    free(nc);
    /* Optional counts (absent from documents written before them: no chi2 / G-test). */
    json_t *counts = json_object_get(f, "category_counts");
    if (!counts || json_is_null(counts)) {
        return 0;
    }
    if (!json_is_object(counts) || json_object_size(counts) != n) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: category_counts must have the categories' names",
                      rf->name);
    }
    rf->cat_counts = dw_calloc(n ? n : 1, sizeof(*rf->cat_counts));
    uint64_t total = 0;
    for (i = 0; i < n; i++) {
        if (get_count(counts, rf->cats[i], &rf->cat_counts[i]) != 0) {
            return dw_err(errstr, errstr_size,
                          "reference feature %s: category %s: count missing or not a "
                          "non-negative integer",
                          rf->name, rf->cats[i]);
        }
        if (dw_u64_add(&total, rf->cat_counts[i]) != 0) {
            return dw_err(errstr, errstr_size,
                          "reference feature %s: category counts sum beyond 2^64, count is %llu",
                          rf->name, (unsigned long long)rf->count);
        }
    }
    if (total != rf->count) {
        return dw_err(errstr, errstr_size,
                      "reference feature %s: category counts sum to %llu, count is %llu", rf->name,
                      (unsigned long long)total, (unsigned long long)rf->count);
    }
    return 0;
}

/* A time member as RFC 3339 text into *ms; absent: 0. @returns 0, or -1 when malformed. */
static int get_time(json_t *obj, const char *key, int64_t *ms)
{
    json_t *v = json_object_get(obj, key);
    *ms = 0;
    if (!v) {
        return 0;
    }
    const char *s = json_string_value(v);
    return s && dw_time_parse_rfc3339(s, strlen(s), ms) == 0 ? 0 : -1;
}

/*
 * Where the reference came from: its "origin" (written since reference sources exist), else a
 * profile's "source" object ({"file", "created_at", ...}, what `driftwatch profile` writes), else
 * the first windows (a reference stored by an older version).
 */
static int origin_from_json(struct dw_ref *ref, json_t *doc, char *errstr, size_t errstr_size)
{
    json_t *o = json_object_get(doc, "origin");
    json_t *prof = json_object_get(doc, "source");
    ref->source = DW_REF_SOURCE_WINDOWS;
    if (!o && json_is_object(prof)) {
        const char *file = json_string_value(json_object_get(prof, "file"));
        ref->source = DW_REF_SOURCE_PROFILE;
        ref->profile = file ? dw_strdup(file) : NULL;
        return get_time(prof, "created_at", &ref->created_ms) == 0
                   ? 0
                   : dw_err(errstr, errstr_size, "reference: source.created_at is not RFC 3339");
    }
    if (!o) {
        return 0;
    }
    const char *source = json_string_value(json_object_get(o, "source"));
    int found = 0;
    for (int s = DW_REF_SOURCE_WINDOWS; source && s <= DW_REF_SOURCE_TRAILING; s++) {
        if (strcmp(source, dw_ref_source_name((enum dw_ref_source)s)) == 0) {
            ref->source = (enum dw_ref_source)s;
            found = 1;
        }
    }
    json_t *profile = json_object_get(o, "profile");
    if (!found || get_i64(o, "created_at_ms", &ref->created_ms) != 0 ||
        (profile && !json_is_string(profile))) {
        return dw_err(errstr, errstr_size,
                      "reference: origin needs a source (windows, profile or trailing), an "
                      "integer created_at_ms and a text profile");
    }
    ref->profile = profile ? dw_strdup(json_string_value(profile)) : NULL;
    return 0;
}

/* A profile's labelled outcomes ("outcomes"), when it has them. */
static int outcomes_from_json(struct dw_ref *ref, const struct dw_model_cfg *m, json_t *doc,
                              char *errstr, size_t errstr_size)
{
    json_t *o = json_object_get(doc, "outcomes");
    if (!o) {
        return 0;
    }
    const char *enc = json_string_value(json_object_get(o, "encoding"));
    const char *data = json_string_value(json_object_get(o, "data"));
    unsigned char *bytes = NULL;
    long n =
        enc && data && strcmp(enc, OUTCOMES_ENCODING) == 0 ? dw_base64_decode(data, &bytes) : -1;
    if (n < 0) {
        return dw_err(errstr, errstr_size,
                      "reference: outcomes need encoding \"%s\" and base64 data",
                      OUTCOMES_ENCODING);
    }
    char err[256];
    ref->outcomes_model = dw_model_counts_only(m);
    ref->outcomes = dw_agg_decode(ref->outcomes_model, bytes, (size_t)n, err, sizeof(err));
    free(bytes);
    return ref->outcomes ? 0 : dw_err(errstr, errstr_size, "reference: outcomes: %s", err);
}

/* One distribution of a reference document (rf's name and configured type set). */
static int ref_feature_from_json(struct dw_ref_feature *rf, json_t *f, const struct ref_tail *tail,
                                 char *errstr, size_t errstr_size)
{
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *want = rf->type == DW_FEATURE_NUMERIC ? "numeric" : "categorical";
    if (!type || strcmp(type, want) != 0) {
        return dw_err(errstr, errstr_size, "reference feature %s: type %s, configured %s", rf->name,
                      type ? type : "(none)", want);
    }
    if (get_count(f, "count", &rf->count)) {
        return dw_err(errstr, errstr_size, "reference feature %s: count not an integer", rf->name);
    }
    return rf->type == DW_FEATURE_NUMERIC ? ref_numeric_from_json(rf, f, tail, errstr, errstr_size)
                                          : ref_categorical_from_json(rf, f, errstr, errstr_size);
}

/* The optional "outputs" {"score", "prediction", "label"}: each optional too (count 0). The
 * types follow the model's task (a regression model's prediction and label are numeric). */
static int ref_outputs_from_json(struct dw_ref *ref, const struct dw_model_cfg *m, json_t *outs,
                                 const struct ref_tail *tail, char *errstr, size_t errstr_size)
{
    for (size_t k = 0; k < DW_REF_OUT__COUNT; k++) {
        ref_out_init(&ref->out[k], m, k);
    }
    if (!outs || json_is_null(outs)) {
        return 0; /* a document from before outputs: prediction and label drift unavailable */
    }
    if (!json_is_object(outs)) {
        return dw_err(errstr, errstr_size, "reference: outputs is not an object");
    }
    ref->has_outputs = 1;
    for (size_t k = 0; k < DW_REF_OUT__COUNT; k++) {
        json_t *f = json_object_get(outs, out_names[k]);
        if (f && ref_feature_from_json(&ref->out[k], f, tail, errstr, errstr_size) != 0) {
            return -1;
        }
    }
    return 0;
}

static struct dw_ref *ref_from_json(const struct dw_model_cfg *m, json_t *doc,
                                    const struct ref_tail *tail, char *errstr, size_t errstr_size)
{
    struct dw_ref *ref = NULL;
    if (!json_is_object(doc)) {
        dw_err(errstr, errstr_size, "reference: not a JSON object");
        goto err;
    }
    json_t *fmt = json_object_get(doc, "format");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != DW_REF_FORMAT_VERSION) {
        dw_err(errstr, errstr_size, "reference: unknown format (want %d)", DW_REF_FORMAT_VERSION);
        goto err;
    }
    const char *model = json_string_value(json_object_get(doc, "model"));
    if (!model || strcmp(model, m->name) != 0) {
        dw_err(errstr, errstr_size, "reference: of model %s, not %s", model ? model : "(none)",
               m->name);
        goto err;
    }
    ref = dw_calloc(1, sizeof(*ref));
    ref->model = dw_strdup(m->name);
    ref->n_feats = m->n_features;
    ref->feats = dw_calloc(m->n_features ? m->n_features : 1, sizeof(*ref->feats));
    for (size_t i = 0; i < m->n_features; i++) {
        ref->feats[i].name = dw_strdup(m->features[i].name);
        ref->feats[i].type = m->features[i].type;
        ref->feats[i].mean = ref->feats[i].std = NAN;
        ref->feats[i].min = ref->feats[i].max = NAN;
    }
    if (get_i64(doc, "windows", &ref->windows) ||
        get_count(doc, "predictions", &ref->predictions) ||
        get_i64(doc, "first_window_start_ms", &ref->first_start_ms) ||
        get_i64(doc, "last_window_start_ms", &ref->last_start_ms) ||
        get_i64(doc, "bins", &ref->bins) || get_count(doc, "labeled", &ref->labeled) ||
        get_count(doc, "correct", &ref->correct)) {
        dw_err(errstr, errstr_size,
               "reference: windows, predictions, first/last_window_start_ms, bins, labeled and "
               "correct must be integers");
        goto err;
    }
    json_t *feats = json_object_get(doc, "features");
    if (!json_is_object(feats)) {
        dw_err(errstr, errstr_size, "reference: features missing");
        goto err;
    }
    for (size_t i = 0; i < ref->n_feats; i++) {
        struct dw_ref_feature *rf = &ref->feats[i];
        json_t *f = json_object_get(feats, rf->name);
        /* no f: a feature added after the reference, which has no reference for it */
        if (f && ref_feature_from_json(rf, f, tail, errstr, errstr_size) != 0) {
            goto err;
        }
    }
    if (origin_from_json(ref, doc, errstr, errstr_size) != 0 ||
        outcomes_from_json(ref, m, doc, errstr, errstr_size) != 0 ||
        ref_outputs_from_json(ref, m, json_object_get(doc, "outputs"), tail, errstr, errstr_size) !=
            0) {
        goto err;
    }
    return ref;
err:
    dw_ref_free(ref);
    return NULL;
}

static const struct dw_ref_feature *ref_feature(const struct dw_ref *ref, const char *name,
                                                enum dw_feature_type type)
{
    for (size_t i = 0; ref && i < ref->n_feats; i++) {
        if (strcmp(ref->feats[i].name, name) == 0) {
            return ref->feats[i].type == type ? &ref->feats[i] : NULL;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- performance */

/* Window-level extras from dw_perf: ROC AUC, macro/micro F1 (NULL perf: none, for versions). */
static void perf_extras(json_t *p, const struct dw_perf *perf)
{
    if (!perf) {
        return;
    }
    double bound = 0.0;
    double auc = dw_perf_roc_auc(perf, &bound);
    json_object_set_new(p, "roc_auc", dw_jnum(auc));
    if (bound > 0.0) {
        json_object_set_new(p, "roc_auc_error_bound", dw_jnum(bound));
    }
    double macro, micro;
    int ok = dw_perf_f1(perf, &macro, &micro) == 0;
    json_object_set_new(p, "f1_macro", ok ? dw_jnum(macro) : json_null());
    json_object_set_new(p, "f1_micro", ok ? dw_jnum(micro) : json_null());
}

static json_t *perf_classification(const struct dw_counts *c, const struct dw_perf *perf)
{
    json_t *p = json_object();
    if (c->labeled > 0) {
        uint64_t tp = c->tp, fp = c->fp, fn = c->fn;
        /* sklearn's zero_division: a 0/0 precision, recall or F1 is 0.0. */
        json_object_set_new(p, "accuracy", jratio(c->correct, c->labeled));
        json_object_set_new(p, "precision", tp + fp ? jratio(tp, tp + fp) : json_real(0.0));
        json_object_set_new(p, "recall", tp + fn ? jratio(tp, tp + fn) : json_real(0.0));
        json_object_set_new(p, "f1",
                            2 * tp + fp + fn ? jratio(2 * tp, 2 * tp + fp + fn) : json_real(0.0));
    } else {
        json_object_set_new(p, "accuracy", json_null());
        json_object_set_new(p, "precision", json_null());
        json_object_set_new(p, "recall", json_null());
        json_object_set_new(p, "f1", json_null());
    }
    double n = (double)c->scored;
    json_object_set_new(p, "log_loss", c->scored ? dw_jnum(c->sum_logloss / n) : json_null());
    json_object_set_new(p, "brier", c->scored ? dw_jnum(c->sum_brier / n) : json_null());
    json_object_set_new(p, "confusion",
                        json_pack("{s:o,s:o,s:o,s:o}", "tp", juint(c->tp), "fp", juint(c->fp), "tn",
                                  juint(c->tn), "fn", juint(c->fn)));
    perf_extras(p, perf);
    return p;
}

static json_t *perf_regression(const struct dw_counts *c)
{
    json_t *p = json_object();
    if (c->regressed == 0) {
        json_object_set_new(p, "mae", json_null());
        json_object_set_new(p, "rmse", json_null());
        json_object_set_new(p, "mape", json_null());
        json_object_set_new(p, "r2", json_null());
        return p;
    }
    double n = (double)c->regressed;
    double sst = c->sum_label_sq - c->sum_label * c->sum_label / n;
    json_object_set_new(p, "mae", dw_jnum(c->sum_abs_err / n));
    json_object_set_new(p, "rmse", dw_jnum(sqrt(c->sum_sq_err / n)));
    json_object_set_new(p, "mape", dw_jnum(c->sum_ape / n));
    json_object_set_new(p, "r2",
                        sst > R2_SST_REL_EPS * c->sum_label_sq ? dw_jnum(1.0 - c->sum_sq_err / sst)
                                                               : json_null());
    return p;
}

json_t *dw_eval_performance(const struct dw_model_cfg *m, const struct dw_counts *c,
                            const struct dw_perf *perf)
{
    return m->task == DW_TASK_REGRESSION ? perf_regression(c) : perf_classification(c, perf);
}

/* Latency percentiles of the predictions (the window's, or a version's) that carried
 * latency_ms, from their sketch; null when none did or the sketch was dropped. */
static json_t *latency_json(struct dw_kll *sk)
{
    if (!sk || dw_kll_count(sk) == 0) {
        return json_null();
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "count", juint(dw_kll_count(sk)), "p50",
                     dw_jnum(dw_perf_sketch_quantile(sk, 0.50)), "p95",
                     dw_jnum(dw_perf_sketch_quantile(sk, 0.95)), "p99",
                     dw_jnum(dw_perf_sketch_quantile(sk, 0.99)));
}

#define WHY_NO_STATUS "input.fields.status is not configured"

/* Serving errors of the predictions that carried a status (the window's, or a version's):
 * error_rate = errors / served, availability = 1 - error_rate, both null when none did; every
 * member null, with the reason, when events carry no status. */
static json_t *serving_json(const struct dw_config *cfg, uint64_t served, uint64_t errors)
{
    if (!cfg->field_status || !*cfg->field_status) {
        return json_pack("{s:n,s:n,s:n,s:n,s:s}", "served", "errors", "error_rate", "availability",
                         "reason", WHY_NO_STATUS);
    }
    double rate = served ? (double)errors / (double)served : NAN;
    return json_pack("{s:o,s:o,s:o,s:o}", "served", juint(served), "errors", juint(errors),
                     "error_rate", dw_jnum(rate), "availability", dw_jnum(1.0 - rate));
}

/* ---------------------------------------------------------------- features */

/* Method names in reports, indexed by enum dw_method (as in the config file). */
static const char *const method_names[DW_METHOD_COUNT] = {
    "auto", "ks", "psi", "wasserstein", "js", "chi2", "g_test", "kl", "hellinger", "tvd",
};

static int method_is_test(enum dw_method m)
{
    return m == DW_METHOD_KS || m == DW_METHOD_CHI2 || m == DW_METHOD_G_TEST;
}

/* The statistics of one feature in one window; NaN where undefined. */
struct feat_stats {
    /* numeric */
    double ks_d, ks_p, wasserstein, wasserstein_norm, kl, hellinger, out_of_range;
    /* categorical */
    double chi2, chi2_p, g, g_p, tvd, unseen_share;
    int chi2_dof, g_dof;
    uint64_t unseen;
    /* both */
    double psi, js;
};

static void feat_stats_init(struct feat_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->ks_d = st->ks_p = st->wasserstein = st->wasserstein_norm = NAN;
    st->kl = st->hellinger = st->out_of_range = NAN;
    st->chi2 = st->chi2_p = st->g = st->g_p = st->tvd = st->unseen_share = NAN;
    st->psi = st->js = NAN;
}

/*
 * Numeric: PSI, KL, JS and Hellinger over the reference bins (the window's counts in them from
 * its sketch's cdf); KS and Wasserstein between the window's and the reference's weighted
 * sorted samples (current first, as scipy's ks_2samp(current, reference)); out-of-range share
 * from the window's sample against the reference's [min, max].
 */
static void numeric_stats(const struct dw_feat_stats *fs, const struct dw_ref_feature *rf,
                          struct feat_stats *st)
{
    if (!rf || rf->count == 0 || fs->count == 0 || !fs->sk || dw_kll_count(fs->sk) == 0) {
        return;
    }
    if (rf->props) {
        size_t nb = rf->n_edges + 1;
        uint64_t *counts = dw_calloc(nb, sizeof(*counts));
        double *cur = dw_calloc(nb, sizeof(*cur));
        dw_eval_bin_counts(fs->sk, rf->edges, rf->n_edges, counts);
        double total = (double)dw_kll_count(fs->sk);
        for (size_t i = 0; i < nb; i++) {
            cur[i] = (double)counts[i] / total;
        }
        st->psi = dw_psi(cur, rf->props, nb);
        st->kl = dw_stats_kl(cur, rf->props, nb);
        st->js = dw_stats_js(cur, rf->props, nb);
        st->hellinger = dw_stats_hellinger(cur, rf->props, nb);
        free(cur);
        free(counts);
    }
    double *v;
    uint64_t *w;
    size_t n = sorted_sample(fs->sk, &v, &w);
    if (n == 0) {
        return;
    }
    if (isfinite(rf->min) && isfinite(rf->max)) {
        uint64_t out = 0, all = 0;
        for (size_t i = 0; i < n; i++) {
            all += w[i];
            if (v[i] < rf->min || v[i] > rf->max) {
                out += w[i];
            }
        }
        st->out_of_range = (double)out / (double)all;
    }
    if (rf->sample) {
        char err[256];
        struct dw_stats_ks ks;
        double wd;
        if (dw_stats_ks_wasserstein(v, w, n, rf->sample, rf->sample_w, rf->n_sample, &ks, &wd, err,
                                    sizeof(err)) == 0) {
            st->ks_d = ks.statistic;
            st->ks_p = ks.p_value;
            st->wasserstein = wd;
            if (isfinite(rf->std) && rf->std > 0.0) {
                st->wasserstein_norm = wd / rf->std;
            }
        }
    }
    free(v);
    free(w);
}

/*
 * Categorical: the bins are the union of the window's and the reference's categories. PSI, JS
 * and TVD on their proportions; the chi-squared and G-tests on the 2 x K table of counts
 * (reference row, window row) when the reference has counts. *unseen counts window values
 * whose category the reference does not have.
 */
static void categorical_stats(const struct dw_config *cfg, const struct dw_feat_stats *fs,
                              const struct dw_ref_feature *rf, struct feat_stats *st)
{
    if (!rf || rf->count == 0) {
        return;
    }
    char **names;
    uint64_t *counts;
    size_t n = feat_categories(fs, &names, &counts);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += counts[i];
    }
    size_t cap = n + rf->n_cats ? n + rf->n_cats : 1;
    double *cur = dw_calloc(cap, sizeof(*cur));
    double *refp = dw_calloc(cap, sizeof(*refp));
    uint64_t *cur_n = dw_calloc(cap, sizeof(*cur_n));
    uint64_t *ref_n = dw_calloc(cap, sizeof(*ref_n));
    unsigned char *seen = dw_calloc(rf->n_cats ? rf->n_cats : 1, 1);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        char **hit =
            rf->n_cats ? bsearch(&names[i], rf->cats, rf->n_cats, sizeof(char *), cmp_str) : NULL;
        cur[nb] = total ? (double)counts[i] / (double)total : 0.0;
        cur_n[nb] = counts[i];
        if (hit) {
            size_t idx = (size_t)(hit - rf->cats);
            seen[idx] = 1;
            refp[nb] = rf->cat_props[idx];
            ref_n[nb] = rf->cat_counts ? rf->cat_counts[idx] : 0;
        } else {
            st->unseen += counts[i];
        }
        nb++;
    }
    for (size_t r = 0; r < rf->n_cats; r++) {
        if (!seen[r]) {
            refp[nb] = rf->cat_props[r];
            ref_n[nb] = rf->cat_counts ? rf->cat_counts[r] : 0;
            nb++;
        }
    }
    if (total > 0) {
        st->unseen_share = (double)st->unseen / (double)total;
        st->psi = dw_psi(cur, refp, nb);
        st->js = dw_stats_js(cur, refp, nb);
        st->tvd = dw_stats_tvd(cur, refp, nb);
        char err[256];
        struct dw_stats_chi2 t;
        bool yates = cfg->chi2_correction != 0;
        if (rf->cat_counts &&
            dw_stats_chi2_test(ref_n, cur_n, nb, yates, &t, err, sizeof(err)) == 0) {
            st->chi2 = t.statistic;
            st->chi2_p = t.p_value;
            st->chi2_dof = t.dof;
        }
        if (rf->cat_counts && dw_stats_g_test(ref_n, cur_n, nb, yates, &t, err, sizeof(err)) == 0) {
            st->g = t.statistic;
            st->g_p = t.p_value;
            st->g_dof = t.dof;
        }
    }
    free(seen);
    free(ref_n);
    free(cur_n);
    free(refp);
    free(cur);
    free(names);
    free(counts);
}

static json_t *test_json(double statistic, int dof, double p, int with_dof)
{
    if (!isfinite(statistic) || !isfinite(p)) {
        return json_null();
    }
    json_t *o = json_object();
    json_object_set_new(o, "statistic", json_real(statistic));
    if (with_dof) {
        json_object_set_new(o, "dof", json_integer(dof));
    }
    json_object_set_new(o, "p_value", json_real(p));
    return o;
}

/*
 * The method that judges a feature. auto: a p-value test (KS, chi-squared) while the smaller
 * of the two samples (window values, reference values) is at most detectors.auto_max_sample,
 * else a distance (normalised Wasserstein, Jensen-Shannon). auto falls back when the reference
 * cannot feed its choice: KS instead of Wasserstein when the reference std is 0 (nothing to
 * normalise by), PSI (numeric) or JS (categorical) when the reference document has no sample
 * or no counts (written before them).
 */
static enum dw_method resolve_method(const struct dw_config *cfg,
                                     const struct dw_feature_detector *det,
                                     const struct dw_feat_stats *fs,
                                     const struct dw_ref_feature *rf)
{
    if (det && det->method != DW_METHOD_AUTO && det->method < DW_METHOD_COUNT) {
        return det->method;
    }
    uint64_t n_ref = rf ? rf->count : 0;
    uint64_t n_small = DW_MIN(fs->count, n_ref);
    int small = (int64_t)n_small <= cfg->auto_max_sample;
    if (fs->type == DW_FEATURE_NUMERIC) {
        if (rf && rf->count > 0 && !rf->sample) {
            return DW_METHOD_PSI;
        }
        if (small || (rf && !(rf->std > 0.0))) {
            return DW_METHOD_KS;
        }
        return DW_METHOD_WASSERSTEIN;
    }
    if (rf && rf->count > 0 && !rf->cat_counts) {
        return DW_METHOD_JS;
    }
    return small ? DW_METHOD_CHI2 : DW_METHOD_JS;
}

/* The raw score of a method: a p-value for the tests, the distance otherwise; NaN if none. */
static double method_score(enum dw_method m, const struct feat_stats *st)
{
    switch (m) {
    case DW_METHOD_KS:
        return st->ks_p;
    case DW_METHOD_CHI2:
        return st->chi2_p;
    case DW_METHOD_G_TEST:
        return st->g_p;
    case DW_METHOD_PSI:
        return st->psi;
    case DW_METHOD_WASSERSTEIN:
        return st->wasserstein_norm;
    case DW_METHOD_JS:
        return st->js;
    case DW_METHOD_KL:
        return st->kl;
    case DW_METHOD_HELLINGER:
        return st->hellinger;
    case DW_METHOD_TVD:
        return st->tvd;
    default:
        return NAN;
    }
}

/* The feature's threshold, else the detectors.* default of the method (alpha for tests). */
static double method_threshold(const struct dw_config *cfg, enum dw_method m, double feature)
{
    if (isfinite(feature) && feature > 0.0) {
        return feature;
    }
    switch (m) {
    case DW_METHOD_KS:
    case DW_METHOD_CHI2:
    case DW_METHOD_G_TEST:
        return cfg->alpha;
    case DW_METHOD_PSI:
        return cfg->psi_threshold;
    case DW_METHOD_WASSERSTEIN:
        return cfg->wasserstein_threshold;
    case DW_METHOD_JS:
        return cfg->js_threshold;
    case DW_METHOD_KL:
        return cfg->kl_threshold;
    case DW_METHOD_HELLINGER:
        return cfg->hellinger_threshold;
    case DW_METHOD_TVD:
        return cfg->tvd_threshold;
    default:
        return NAN;
    }
}

/* The detector configured for a feature of model m (the map form), or NULL: auto. */
static const struct dw_feature_detector *feature_detector(const struct dw_config *cfg,
                                                          const char *model, const char *feature)
{
    for (size_t i = 0; i < cfg->n_detectors; i++) {
        const struct dw_feature_detector *d = &cfg->detectors[i];
        if (strcmp(d->model, model) == 0 && strcmp(d->feature, feature) == 0) {
            return d;
        }
    }
    return NULL;
}

/* The report object of one feature, without its verdict (method ... drift come later). */
static json_t *feature_json(const struct dw_feat_stats *fs, const struct dw_ref_feature *rf,
                            const struct feat_stats *st)
{
    json_t *f = json_object();
    int has = fs->count > 0;
    int has_ref = rf && rf->count > 0;
    /* every value of the window's feature is in exactly one of count (finite or categorical),
     * missing, nan and inf (numeric only): the shares are over all of them */
    uint64_t seen = fs->count + fs->missing + fs->nan + fs->inf;
    json_t *missing_share = seen ? jratio(fs->missing, seen) : json_null();
    if (fs->type == DW_FEATURE_NUMERIC) {
        json_object_set_new(f, "type", json_string("numeric"));
        json_object_set_new(f, "count", juint(fs->count));
        json_object_set_new(f, "missing", juint(fs->missing));
        json_object_set_new(f, "nan", juint(fs->nan));
        json_object_set_new(f, "inf", juint(fs->inf));
        json_object_set_new(f, "mean", has ? dw_jnum(fs->mean) : json_null());
        json_object_set_new(f, "std", has ? dw_jnum(dw_feat_std(fs)) : json_null());
        json_object_set_new(f, "min", has ? dw_jnum(fs->min) : json_null());
        json_object_set_new(f, "max", has ? dw_jnum(fs->max) : json_null());
        json_object_set_new(f, "ks", test_json(st->ks_d, 0, st->ks_p, 0));
        json_object_set_new(f, "psi", dw_jnum(st->psi));
        json_object_set_new(f, "wasserstein", dw_jnum(st->wasserstein));
        json_object_set_new(f, "wasserstein_norm", dw_jnum(st->wasserstein_norm));
        json_object_set_new(f, "js", dw_jnum(st->js));
        json_object_set_new(f, "kl", dw_jnum(st->kl));
        json_object_set_new(f, "hellinger", dw_jnum(st->hellinger));
        json_object_set_new(f, "missing_share", missing_share);
        json_object_set_new(f, "nan_share", seen ? jratio(fs->nan, seen) : json_null());
        json_object_set_new(f, "inf_share", seen ? jratio(fs->inf, seen) : json_null());
        json_object_set_new(f, "out_of_range_share", dw_jnum(st->out_of_range));
    } else {
        json_object_set_new(f, "type", json_string("categorical"));
        json_object_set_new(f, "count", juint(fs->count));
        json_object_set_new(f, "missing", juint(fs->missing));
        json_object_set_new(f, "unseen", has_ref ? juint(st->unseen) : json_null());
        json_object_set_new(f, "unseen_share", dw_jnum(st->unseen_share));
        json_object_set_new(f, "chi2", test_json(st->chi2, st->chi2_dof, st->chi2_p, 1));
        json_object_set_new(f, "g_test", test_json(st->g, st->g_dof, st->g_p, 1));
        json_object_set_new(f, "psi", dw_jnum(st->psi));
        json_object_set_new(f, "js", dw_jnum(st->js));
        json_object_set_new(f, "tvd", dw_jnum(st->tvd));
        json_object_set_new(f, "missing_share", missing_share);
    }
    return f;
}

/*
 * The report object of a window's distribution (a feature, an output) against its reference rf
 * (NULL: none) with every statistic, *method the one that judges it (det: configured, NULL:
 * auto) and *score its raw score (NaN: cannot be judged); the verdict comes later
 * (set_verdict), after the p-values of a family of tests are adjusted together.
 */
static json_t *distribution_stats(const struct dw_config *cfg,
                                  const struct dw_feature_detector *det,
                                  const struct dw_feat_stats *fs, const struct dw_ref_feature *rf,
                                  enum dw_method *method, double *score)
{
    struct feat_stats st;
    feat_stats_init(&st);
    if (fs->type == DW_FEATURE_NUMERIC) {
        numeric_stats(fs, rf, &st);
    } else {
        categorical_stats(cfg, fs, rf, &st);
    }
    *method = resolve_method(cfg, det, fs, rf);
    *score = rf && rf->count > 0 ? method_score(*method, &st) : NAN;
    return feature_json(fs, rf, &st);
}

/*
 * The verdict fields of a distribution's object f: method, score (adjusted p-value or
 * distance), threshold and drift (null when the score is undefined; never true when not
 * `enough` samples). @returns 1 drift, 0 none, -1 not judged.
 */
static int set_verdict(const struct dw_config *cfg, json_t *f, enum dw_method method, double score,
                       const struct dw_feature_detector *det, int enough)
{
    double thr = method_threshold(cfg, method, det ? det->threshold : NAN);
    json_object_set_new(f, "method", json_string(method_names[method]));
    json_object_set_new(f, "score", dw_jnum(score));
    json_object_set_new(f, "threshold", dw_jnum(thr));
    if (!isfinite(score)) {
        json_object_set_new(f, "drift", json_null());
        return -1;
    }
    int drift = enough && (method_is_test(method) ? score <= thr : score >= thr);
    json_object_set_new(f, "drift", json_boolean(drift));
    return drift;
}

/*
 * The "features" object of a report and the verdicts. Two passes: the statistics of every
 * feature first, then the verdicts, because the p-value tests of a window are adjusted
 * together (Benjamini-Hochberg over the model's features whose method is a test and whose
 * p-value is defined). A feature is judged (drift true or false) when its score is defined;
 * it never drifts in a window of fewer than detectors.min_samples predictions. *drifting gets
 * the names of the drifting features, *share their share of the judged ones (NaN: none).
 */
static json_t *features_json(const struct dw_config *cfg, const struct dw_model_cfg *m,
                             const struct dw_feat_stats *stats, uint64_t predictions,
                             const struct dw_ref *ref, json_t **drifting, double *share)
{
    json_t *feats = json_object();
    *share = NAN;
    if (predictions == 0) {
        return feats;
    }
    size_t n = m->n_features;
    enum dw_method *method = dw_calloc(n ? n : 1, sizeof(*method));
    double *score = dw_calloc(n ? n : 1, sizeof(*score));
    double *pvals = dw_calloc(n ? n : 1, sizeof(*pvals));
    size_t *pidx = dw_calloc(n ? n : 1, sizeof(*pidx));
    json_t **objs = dw_calloc(n ? n : 1, sizeof(*objs));
    const struct dw_feature_detector **dets = dw_calloc(n ? n : 1, sizeof(*dets));
    size_t n_tests = 0;
    for (size_t i = 0; i < n; i++) {
        const struct dw_feat_stats *fs = &stats[i];
        const struct dw_ref_feature *rf = ref_feature(ref, m->features[i].name, fs->type);
        dets[i] = feature_detector(cfg, m->name, m->features[i].name);
        objs[i] = distribution_stats(cfg, dets[i], fs, rf, &method[i], &score[i]);
        if (method_is_test(method[i]) && isfinite(score[i])) {
            pvals[n_tests] = score[i];
            pidx[n_tests] = i;
            n_tests++;
        }
    }
    dw_stats_bh_adjust(pvals, n_tests, pvals);
    for (size_t k = 0; k < n_tests; k++) {
        score[pidx[k]] = pvals[k];
    }
    int enough = (int64_t)predictions >= cfg->min_samples;
    size_t judged = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *f = objs[i];
        int drift = set_verdict(cfg, f, method[i], score[i], dets[i], enough);
        judged += drift >= 0;
        if (drift > 0) {
            json_array_append_new(*drifting, json_string(m->features[i].name));
        }
        json_object_set_new(feats, m->features[i].name, f);
    }
    if (judged > 0) {
        *share = (double)json_array_size(*drifting) / (double)judged;
    }
    free(dets);
    free(objs);
    free(pidx);
    free(pvals);
    free(score);
    free(method);
    return feats;
}

/* The "drift" object of a set of features: the share of the judged ones drifting, their
 * names, and the dataset verdict (share at least detectors.drift_share). Steals drifting. */
static json_t *drift_json(const struct dw_config *cfg, double share, json_t *drifting)
{
    return json_pack("{s:o,s:o,s:b}", "share", dw_jnum(share), "features", drifting, "dataset",
                     isfinite(share) && share >= cfg->drift_share);
}

/* A version's features against the model's reference, with the model's detectors, into its
 * report object: `features` and `drift` as the window's (docs/canary.md, "Per-version feature
 * drift"). */
static void version_drift(const struct dw_config *cfg, const struct dw_model_cfg *m,
                          const struct dw_version_stats *v, const struct dw_ref *ref, json_t *obj)
{
    json_t *drifting = json_array();
    double share;
    json_object_set_new(obj, "features",
                        features_json(cfg, m, v->feats, v->c.predictions, ref, &drifting, &share));
    json_object_set_new(obj, "drift", drift_json(cfg, share, drifting));
}

/* ---------------------------------------------------------------- outputs */

/* Why an output's drift is not judged (the "status" and "reason" of its object). */
#define OUT_READY "ready"
#define OUT_NO_PREDICTIONS "no_predictions"
#define OUT_NO_LABELS "no_labels"
#define OUT_NOT_FINAL "not_final"
#define OUT_WAITING_REF "waiting_for_reference"
#define OUT_UNAVAILABLE "unavailable"
#define OUT_WAITING_BASELINE "waiting_for_baseline"
#define WHY_NOT_FINAL                                                                              \
    "labels arrive until the label horizon: the label drift is judged on the final report"
#define WHY_WAITING_REF "the reference is not built yet (reference.windows)"
#define WHY_OLD_REF                                                                                \
    "the reference has no score or predicted-class distribution (a profile of features only, "     \
    "or a reference kept by an earlier version: collect the reference again)"
#define WHY_DROPPED "the window's output sketches were dropped after its close evaluation"
#define WHY_NO_LABEL_REF                                                                           \
    "the label reference is the reference windows' final labels (the performance baseline), "      \
    "complete once the last of them reaches its label horizon"

static json_t *status_json(const char *status, const char *reason)
{
    json_t *o = json_pack("{s:s}", "status", status);
    if (reason) {
        json_object_set_new(o, "reason", json_string(reason));
    }
    return o;
}

/*
 * One output judged like a feature, alone: a family of one test (no adjustment across outputs,
 * which are not features of the dataset verdict). *any: 1 once an output drifts, 0 once one is
 * judged, untouched otherwise.
 */
static json_t *output_json(const struct dw_config *cfg, const struct dw_feat_stats *fs,
                           const struct dw_ref_feature *rf, int enough, int *any)
{
    enum dw_method method;
    double score;
    json_t *f = distribution_stats(cfg, NULL, fs, rf, &method, &score);
    int drift = set_verdict(cfg, f, method, score, NULL, enough);
    if (drift >= 0 && *any < 1) {
        *any = drift;
    }
    return f;
}

/* A window's "prediction_drift": its scores and predicted classes (regression: values) against
 * the reference's, with an overall "drift" (null: nothing judged). */
static json_t *prediction_drift_json(const struct dw_config *cfg, const struct dw_model_cfg *m,
                                     struct dw_agg *agg, const struct dw_ref *ref)
{
    const struct dw_feat_stats *pred = &agg->out[DW_AGG_OUT_PRED];
    if (agg->all.predictions == 0) {
        return status_json(OUT_NO_PREDICTIONS, NULL);
    }
    if (!ref) {
        return status_json(OUT_WAITING_REF, WHY_WAITING_REF);
    }
    if (!ref->has_outputs) {
        return status_json(OUT_UNAVAILABLE, WHY_OLD_REF);
    }
    if (pred->count > 0 && !pred->sk && !pred->cats) {
        return status_json(OUT_UNAVAILABLE, WHY_DROPPED);
    }
    int enough = (int64_t)agg->all.predictions >= cfg->min_samples, any = -1;
    json_t *o = status_json(OUT_READY, NULL);
    if (m->task == DW_TASK_REGRESSION) {
        json_object_set_new(o, "value",
                            output_json(cfg, pred, &ref->out[DW_REF_OUT_PRED], enough, &any));
    } else {
        struct dw_feat_stats scores;
        dw_agg_scores(agg, &scores);
        const struct dw_ref_feature *rs = &ref->out[DW_REF_OUT_SCORE];
        if (scores.count + scores.nan + scores.inf > 0 || rs->count > 0) {
            json_object_set_new(o, "score", output_json(cfg, &scores, rs, enough, &any));
        }
        dw_feat_stats_free(&scores);
        json_object_set_new(o, "class",
                            output_json(cfg, pred, &ref->out[DW_REF_OUT_PRED], enough, &any));
    }
    json_object_set_new(o, "drift", any < 0 ? json_null() : json_boolean(any));
    return o;
}

void dw_eval_label_drift(json_t *report, const struct dw_config *cfg, struct dw_agg *agg,
                         const struct dw_ref *ref, struct dw_agg *labels,
                         const char *status_without, const char *why_without)
{
    const struct dw_ref_feature *rf = ref ? &ref->out[DW_REF_OUT_LABEL] : NULL;
    struct dw_ref_feature from_labels;
    memset(&from_labels, 0, sizeof(from_labels));
    const char *source = "reference";
    if (agg->all.labeled == 0) {
        json_object_set_new(report, "label_drift", status_json(OUT_NO_LABELS, NULL));
        return;
    }
    if (!rf || rf->count == 0) {
        rf = NULL;
        if (labels && labels->out[DW_AGG_OUT_LABEL].count > 0) {
            ref_distribution(&from_labels, out_names[DW_REF_OUT_LABEL],
                             &labels->out[DW_AGG_OUT_LABEL], cfg->psi_bins);
            rf = &from_labels;
            source = "baseline";
        }
    }
    if (!rf) {
        json_object_set_new(
            report, "label_drift",
            status_json(status_without, why_without ? why_without : WHY_NO_LABEL_REF));
        return;
    }
    int any = -1;
    json_t *o = output_json(cfg, &agg->out[DW_AGG_OUT_LABEL], rf,
                            (int64_t)agg->all.labeled >= cfg->min_samples, &any);
    json_object_set_new(o, "status", json_string(OUT_READY));
    json_object_set_new(o, "source", json_string(source));
    json_object_set_new(report, "label_drift", o);
    ref_feature_clear(&from_labels);
}

/* ---------------------------------------------------------------- window report */

json_t *dw_eval_reference_json(const struct dw_model_cfg *m, const struct dw_ref *ref)
{
    if (!ref && m->reference.source == DW_REF_SOURCE_TRAILING) {
        return json_pack("{s:s,s:s,s:i,s:I,s:s}", "status", "unavailable", "source", "trailing",
                         "windows", 0, "windows_needed", (json_int_t)m->reference.windows, "reason",
                         "no predictions in the windows before this one");
    }
    if (!ref) {
        return json_pack("{s:s,s:s,s:i,s:I}", "status", "collecting", "source",
                         dw_ref_source_name(m->reference.source), "windows", 0, "windows_needed",
                         (json_int_t)m->reference.windows);
    }
    double acc = NAN;
    if (m->task != DW_TASK_REGRESSION && ref->labeled > 0) {
        acc = (double)ref->correct / (double)ref->labeled;
    }
    char created[40], first[40], last[40];
    dw_time_format_rfc3339(ref->created_ms, created, sizeof(created));
    dw_time_format_rfc3339(ref->first_start_ms, first, sizeof(first));
    dw_time_format_rfc3339(ref->last_start_ms, last, sizeof(last));
    json_t *o = json_pack("{s:s,s:s,s:I,s:o,s:o,s:s}", "status", "ready", "source",
                          dw_ref_source_name(ref->source), "windows", (json_int_t)ref->windows,
                          "predictions", juint(ref->predictions), "accuracy", dw_jnum(acc),
                          "created_at", created);
    if (ref->source == DW_REF_SOURCE_PROFILE) {
        json_object_set_new(o, "profile", ref->profile ? json_string(ref->profile) : json_null());
    } else {
        json_object_set_new(o, "first_window_start", json_string(first));
        json_object_set_new(o, "last_window_start", json_string(last));
    }
    return o;
}

void dw_eval_version_reference(json_t *report, const struct dw_config *cfg,
                               const struct dw_model_cfg *m, const struct dw_agg *agg, size_t slot,
                               const struct dw_ref *ref, size_t collected)
{
    const struct dw_version_stats *v = &agg->versions[slot];
    json_t *obj = json_object_get(json_object_get(report, "versions"), v->name);
    if (!obj || !v->feats) {
        return;
    }
    version_drift(cfg, m, v, ref, obj);
    json_t *r = dw_eval_reference_json(m, ref);
    if (!ref) {
        json_object_set_new(r, "windows", json_integer((json_int_t)collected));
    }
    json_object_set_new(r, "per_version", json_true());
    json_object_set_new(obj, "reference", r);
}

json_t *dw_eval_window(const struct dw_config *cfg, const struct dw_model_cfg *m,
                       struct dw_agg *agg, const struct dw_ref *ref, int final)
{
    char start[40], end[40];
    dw_time_format_rfc3339(agg->start_ms, start, sizeof(start));
    dw_time_format_rfc3339(agg->start_ms + cfg->window_size_ms, end, sizeof(end));
    const struct dw_counts *c = &agg->all;
    int empty = c->predictions == 0;
    int classification = m->task != DW_TASK_REGRESSION;

    json_t *drifting = json_array();
    double share = NAN;
    json_t *rep = json_object();
    json_object_set_new(rep, "model", json_string(m->name));
    json_object_set_new(rep, "window_start", json_string(start));
    json_object_set_new(rep, "window_end", json_string(end));
    json_object_set_new(rep, "window_start_ms", json_integer(agg->start_ms));
    json_object_set_new(rep, "stage", json_string(final ? "final" : "close"));
    json_object_set_new(rep, "final", json_boolean(final)); /* older form of "stage" */
    json_object_set_new(rep, "predictions", juint(c->predictions));
    json_object_set_new(rep, "labeled", juint(c->labeled));
    if (classification) {
        json_object_set_new(rep, "correct", juint(c->correct));
    }
    json_object_set_new(rep, "unlabeled_share",
                        empty ? json_null()
                              : dw_jnum(1.0 - (double)c->labeled / (double)c->predictions));
    json_object_set_new(rep, "duplicate_labels", juint(agg->duplicate_labels));
    json_object_set_new(rep, "conflicts", juint(agg->conflicts));
    json_object_set_new(rep, "late_predictions", juint(agg->late_predictions));
    json_object_set_new(rep, "late_labels", juint(agg->late_labels));
    json_object_set_new(rep, "performance",
                        empty ? json_null() : dw_eval_performance(m, c, &agg->perf));
    json_object_set_new(rep, "latency_ms", latency_json(agg->perf.latency));
    json_object_set_new(rep, "serving", serving_json(cfg, agg->served, agg->errors));

    json_t *versions = json_object();
    for (size_t i = 0; !empty && i < agg->n_versions; i++) {
        const struct dw_version_stats *v = &agg->versions[i];
        json_object_set_new(
            versions, v->name,
            json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "predictions", juint(v->c.predictions), "share",
                      jratio(v->c.predictions, c->predictions), "labeled", juint(v->c.labeled),
                      "performance", dw_eval_performance(m, &v->c, NULL), "latency_ms",
                      latency_json(v->latency), "serving",
                      serving_json(cfg, v->served, v->errors)));
        if (v->feats && m->n_features > 0) { /* a model comparing versions (dw_agg.c) */
            version_drift(cfg, m, v, ref, json_object_get(versions, v->name));
        }
    }
    json_object_set_new(rep, "versions", versions);

    json_object_set_new(rep, "reference", dw_eval_reference_json(m, ref));

    json_object_set_new(rep, "features",
                        features_json(cfg, m, agg->feats, c->predictions, ref, &drifting, &share));

    /* The baseline's verdicts (dw_baseline_judge) fill it in: the drop is against the
     * reference windows' final performance, not the reference's accuracy at its close. */
    json_object_set_new(rep, "accuracy_drop", json_null());

    json_object_set_new(rep, "drift", drift_json(cfg, share, drifting));
    json_object_set_new(rep, "prediction_drift", prediction_drift_json(cfg, m, agg, ref));
    if (final) {
        dw_eval_label_drift(rep, cfg, agg, ref, NULL, OUT_WAITING_BASELINE, NULL);
    } else {
        json_object_set_new(
            rep, "label_drift",
            status_json(empty ? OUT_NO_LABELS : OUT_NOT_FINAL, empty ? NULL : WHY_NOT_FINAL));
    }
    return rep;
}

/* report[key] := close[key], an object with a status; else a status saying why not. */
static void take_close_object(json_t *report, const json_t *close, const char *key)
{
    json_t *v = json_object_get(close, key);
    json_object_set_new(
        report, key,
        json_is_object(v) ? json_incref(v)
                          : status_json(OUT_UNAVAILABLE, close ? "the close report of this window "
                                                                 "has none"
                                                               : "the close report of this "
                                                                 "window could not be read"));
}

/* Each version's latency_ms (null where it has none), and its features and drift where it
 * has them, from the close report: the version sketches are dropped with the model's at the
 * close. */
static void take_close_versions(json_t *report, const json_t *close)
{
    const json_t *close_versions = json_object_get(close, "versions");
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(report, "versions"), name, v)
    {
        const json_t *cv = json_object_get(close_versions, name);
        json_t *latency = json_object_get(cv, "latency_ms");
        json_object_set(v, "latency_ms", latency ? latency : json_null());
        static const char *const keys[] = {"features", "drift", "reference"};
        for (size_t k = 0; k < DW_ARRAY_SIZE(keys); k++) {
            json_t *x = json_object_get(cv, keys[k]);
            if (x) {
                json_object_set(v, keys[k], x);
            }
        }
    }
}

int dw_eval_take_close(json_t *report, const json_t *close)
{
    json_t *features = json_object_get(close, "features");
    json_t *drift = json_object_get(close, "drift");
    json_t *latency = json_object_get(close, "latency_ms");
    json_t *reference = json_object_get(close, "reference");
    take_close_object(report, close, "prediction_drift");
    take_close_object(report, close, "estimated");
    json_t *est_drop = json_object_get(close, "estimated_drop");
    json_object_set_new(report, "estimated_drop", est_drop ? json_incref(est_drop) : json_null());
    take_close_versions(report, close);
    if (json_is_object(features) && json_is_object(drift)) {
        if (reference) { /* what the features were judged against */
            json_object_set(report, "reference", reference);
        }
        json_object_set(report, "features", features);
        json_object_set(report, "drift", drift);
        json_object_set(report, "latency_ms", latency ? latency : json_null());
        return 0;
    }
    json_object_set_new(report, "features", json_null());
    json_object_set_new(report, "drift",
                        json_pack("{s:n,s:[],s:b,s:s}", "share", "features", "dataset", 0,
                                  "unavailable",
                                  "the close report of this window could not be read"));
    return -1;
}

int dw_eval_agg_empty(const struct dw_agg *agg)
{
    return agg->all.predictions == 0 && agg->late_predictions == 0 && agg->late_labels == 0 &&
           agg->duplicate_labels == 0 && agg->conflicts == 0;
}

void dw_eval_empty_run(json_t *report, const struct dw_config *cfg, int64_t n_windows)
{
    int64_t start = (int64_t)json_integer_value(json_object_get(report, "window_start_ms"));
    char end[40];
    dw_time_format_rfc3339(start + n_windows * cfg->window_size_ms, end, sizeof(end));
    json_object_set_new(report, "window_end", json_string(end));
    json_object_set_new(report, "empty_windows", json_integer((json_int_t)n_windows));
}

/* ---------------------------------------------------------------- rolling performance */

void dw_eval_add_rolling(json_t *report, const struct dw_config *cfg, const struct dw_model_cfg *m,
                         struct dw_agg *const *aggs, size_t n)
{
    if (!report || cfg->rolling_windows <= 0 || n == 0) {
        return;
    }
    size_t k = DW_MIN(n, (size_t)cfg->rolling_windows);
    struct dw_agg *const *first = aggs + (n - k);
    /* Performance only: a feature-less copy of the model keeps dw_agg_merge off the sketches. */
    struct dw_model_cfg counts_only = *m;
    counts_only.features = NULL;
    counts_only.n_features = 0;
    struct dw_agg *sum = dw_agg_new_exact(&counts_only, first[0]->start_ms, DW_AGG_MERGE_EXACT);
    for (size_t i = 0; i < k; i++) {
        dw_agg_merge(sum, first[i]);
    }
    const struct dw_counts *c = &sum->all;
    int empty = c->predictions == 0;
    char start[40];
    dw_time_format_rfc3339(first[0]->start_ms, start, sizeof(start));
    json_t *rolling = json_object();
    json_object_set_new(rolling, "windows", juint(k));
    json_object_set_new(rolling, "window_start", json_string(start));
    json_object_set_new(rolling, "predictions", juint(c->predictions));
    json_object_set_new(rolling, "labeled", juint(c->labeled));
    json_object_set_new(rolling, "unlabeled_share",
                        empty ? json_null()
                              : dw_jnum(1.0 - (double)c->labeled / (double)c->predictions));
    json_object_set_new(rolling, "performance",
                        empty ? json_null() : dw_eval_performance(m, c, &sum->perf));
    json_object_set_new(report, "rolling", rolling);
    dw_agg_free(sum);
}

/* ---------------------------------------------------------------- idempotency keys */
