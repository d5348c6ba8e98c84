/*
 * dw_agg.c - per (model, window) aggregates: counts, moments and category tables.
 *
 * Hot path: dw_agg_add_prediction() runs once per prediction and touches each configured
 * feature once; it allocates only when a window meets a new category or version (bounded by
 * DW_AGG_MAX_CATEGORIES and DW_AGG_MAX_VERSIONS). Moments use Welford's update; merging uses
 * the parallel formula (Chan, Golub, LeVeque 1979), so merge(a, b) equals one pass over a ∪ b
 * up to floating-point rounding.
 *
 * Encoding (version 2, little-endian, see dw_codec.h):
 *   u8 version, i64 start_ms, counts, u16 n_versions {str name, counts}, u64 duplicate_labels,
 *   conflicts, late_predictions, late_labels, perf (dw_perf.c), u16 n_features {str name,
 *   u8 type, u64 count, missing, f64 min, max, mean, m2, u64 other, u32 sketch length + bytes,
 *   u32 n_cats {str name, u64 count} in name order}
 */
#include "driftwatch/dw_agg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/dw_common.h"

#define AGG_CODEC_VERSION 2
#define CAT_SLOTS_MIN 16 /* first category table; doubles up to DW_AGG_CAT_SLOTS */

struct dw_agg *dw_agg_new(const struct dw_model_cfg *model, int64_t start_ms)
{
    return dw_agg_new_exact(model, start_ms, DW_AGG_SKETCH_EXACT);
}

struct dw_agg *dw_agg_new_exact(const struct dw_model_cfg *model, int64_t start_ms, uint32_t exact)
{
    struct dw_agg *agg = dw_calloc(1, sizeof(*agg));
    agg->sketch_exact = exact;
    agg->model = model;
    agg->start_ms = start_ms;
    agg->feats = dw_calloc(model->n_features ? model->n_features : 1, sizeof(*agg->feats));
    for (size_t i = 0; i < model->n_features; i++) {
        agg->feats[i].type = model->features[i].type;
        agg->feats[i].min = INFINITY;
        agg->feats[i].max = -INFINITY;
    }
    dw_perf_init(&agg->perf);
    return agg;
}

static void cats_free(struct dw_feat_stats *fs)
{
    for (size_t s = 0; fs->cats && s < fs->cat_cap; s++) {
        free(fs->cats[s].name);
    }
    free(fs->cats);
    fs->cats = NULL;
    fs->cat_cap = 0;
}

void dw_agg_free(struct dw_agg *agg)
{
    if (!agg) {
        return;
    }
    for (size_t i = 0; i < agg->n_versions; i++) {
        free(agg->versions[i].name);
    }
    for (size_t i = 0; i < agg->model->n_features; i++) {
        struct dw_feat_stats *fs = &agg->feats[i];
        cats_free(fs);
        dw_kll_destroy(fs->sk);
    }
    free(agg->feats);
    dw_perf_free(&agg->perf);
    free(agg);
}

size_t dw_agg_version_slot(struct dw_agg *agg, const char *name, size_t len)
{
    for (size_t i = 0; i < agg->n_versions; i++) {
        const char *v = agg->versions[i].name;
        if (strlen(v) == len && memcmp(v, name, len) == 0) {
            return i;
        }
    }
    if (agg->n_versions < DW_AGG_MAX_VERSIONS) {
        agg->versions[agg->n_versions].name = dw_strndup(name, len);
        return agg->n_versions++;
    }
    /* Overflow bucket: the slot after the bound, named once. */
    if (agg->n_versions == DW_AGG_MAX_VERSIONS) {
        agg->versions[DW_AGG_MAX_VERSIONS].name = dw_strdup(DW_AGG_OTHER);
        agg->n_versions++;
    }
    return DW_AGG_MAX_VERSIONS;
}

/* Doubles the category table (a window starts small: most features have few categories). */
static void cats_grow(struct dw_feat_stats *fs)
{
    size_t cap = fs->cat_cap ? fs->cat_cap * 2 : CAT_SLOTS_MIN;
    struct dw_category *cats = dw_calloc(cap, sizeof(*cats));
    for (size_t s = 0; s < fs->cat_cap; s++) {
        if (fs->cats[s].name) {
            size_t i = (size_t)dw_hash64(fs->cats[s].name, strlen(fs->cats[s].name)) & (cap - 1);
            while (cats[i].name) {
                i = (i + 1) & (cap - 1);
            }
            cats[i] = fs->cats[s];
        }
    }
    free(fs->cats);
    fs->cats = cats;
    fs->cat_cap = cap;
}

static struct dw_category *cat_slot(struct dw_feat_stats *fs, const char *name, size_t len,
                                    int create)
{
    if (!fs->cats && !create) {
        return NULL;
    }
    if (create && (fs->n_cats + 1) * 2 > fs->cat_cap && fs->cat_cap < DW_AGG_CAT_SLOTS) {
        cats_grow(fs);
    }
    size_t i = (size_t)dw_hash64(name, len) & (fs->cat_cap - 1);
    for (;;) {
        struct dw_category *c = &fs->cats[i];
        if (!c->name) {
            if (!create || fs->n_cats >= DW_AGG_MAX_CATEGORIES) {
                return NULL;
            }
            c->name = dw_strndup(name, len);
            fs->n_cats++;
            return c;
        }
        if (strlen(c->name) == len && memcmp(c->name, name, len) == 0) {
            return c;
        }
        i = (i + 1) & (fs->cat_cap - 1);
    }
}

static void cat_add(struct dw_feat_stats *fs, const char *name, size_t len, uint64_t n)
{
    struct dw_category *c = cat_slot(fs, name, len, 1);
    if (c) {
        c->count += n;
    } else {
        fs->other += n;
    }
}

/* Sketch seed: fixed, so that a replay after a restart makes the same coin flips. */
#define SKETCH_SEED 0x64726966747761ULL

static struct dw_kll *feat_sketch(struct dw_feat_stats *fs, uint32_t exact)
{
    if (!fs->sk) {
        fs->sk = dw_kll_new(DW_AGG_SKETCH_K, exact, SKETCH_SEED);
    }
    return fs->sk;
}

static void num_add(struct dw_feat_stats *fs, double x, uint32_t exact)
{
    dw_kll_update(feat_sketch(fs, exact), x);
    fs->count++;
    double delta = x - fs->mean;
    fs->mean += delta / (double)fs->count;
    fs->m2 += delta * (x - fs->mean);
    if (x < fs->min) {
        fs->min = x;
    }
    if (x > fs->max) {
        fs->max = x;
    }
}

void dw_agg_add_prediction(struct dw_agg *agg, size_t vslot, const struct dw_prediction *ev)
{
    if (ev->has_latency) {
        dw_perf_add_latency(&agg->perf, ev->latency_ms);
    }
    agg->all.predictions++;
    agg->versions[vslot].c.predictions++;
    for (size_t i = 0; i < agg->model->n_features; i++) {
        struct dw_feat_stats *fs = &agg->feats[i];
        const struct dw_val *v = &ev->features[i];
        if (v->kind == DW_VAL_MISSING) {
            fs->missing++;
        } else if (fs->type == DW_FEATURE_NUMERIC) {
            num_add(fs, v->num, agg->sketch_exact);
        } else {
            fs->count++;
            cat_add(fs, v->str, v->len, 1);
        }
    }
    agg->dirty = 1;
}

static void counts_add_outcome(struct dw_counts *c, const char *positive,
                               const struct dw_outcome *o)
{
    c->labeled++;
    int pred_pos = strcmp(o->pred, positive) == 0;
    int label_pos = strcmp(o->label, positive) == 0;
    if (strcmp(o->pred, o->label) == 0) {
        c->correct++;
    }
    if (pred_pos && label_pos) {
        c->tp++;
    } else if (pred_pos) {
        c->fp++;
    } else if (label_pos) {
        c->fn++;
    } else {
        c->tn++;
    }
    if (o->has_score) {
        double y = label_pos ? 1.0 : 0.0;
        double p = DW_MIN(DW_MAX(o->score, 1e-15), 1.0 - 1e-15);
        c->scored++;
        c->sum_brier += (o->score - y) * (o->score - y);
        c->sum_logloss += -(y * log(p) + (1.0 - y) * log(1.0 - p));
    }
    if (o->pred_is_num && o->label_is_num) {
        double e = o->pred_num - o->label_num;
        c->regressed++;
        c->sum_abs_err += fabs(e);
        c->sum_sq_err += e * e;
        c->sum_label += o->label_num;
        c->sum_label_sq += o->label_num * o->label_num;
        c->sum_ape += fabs(e) / DW_MAX(fabs(o->label_num), DBL_EPSILON);
    }
}

void dw_agg_add_outcome(struct dw_agg *agg, size_t vslot, const struct dw_outcome *o)
{
    counts_add_outcome(&agg->all, agg->model->positive_class, o);
    counts_add_outcome(&agg->versions[vslot].c, agg->model->positive_class, o);
    if (agg->model->task != DW_TASK_REGRESSION) {
        dw_perf_add_outcome(&agg->perf, o->pred, o->label,
                            strcmp(o->label, agg->model->positive_class) == 0, o->has_score,
                            o->score);
    }
    agg->dirty = 1;
}

static void counts_merge(struct dw_counts *d, const struct dw_counts *s)
{
    d->predictions += s->predictions;
    d->labeled += s->labeled;
    d->correct += s->correct;
    d->tp += s->tp;
    d->fp += s->fp;
    d->tn += s->tn;
    d->fn += s->fn;
    d->scored += s->scored;
    d->sum_brier += s->sum_brier;
    d->sum_logloss += s->sum_logloss;
    d->regressed += s->regressed;
    d->sum_abs_err += s->sum_abs_err;
    d->sum_sq_err += s->sum_sq_err;
    d->sum_label += s->sum_label;
    d->sum_label_sq += s->sum_label_sq;
    d->sum_ape += s->sum_ape;
}

static void feat_merge(struct dw_feat_stats *d, const struct dw_feat_stats *s, uint32_t exact)
{
    d->missing += s->missing;
    if (d->type == DW_FEATURE_NUMERIC) {
        if (s->count == 0) {
            return;
        }
        uint64_t n = d->count + s->count;
        double delta = s->mean - d->mean;
        d->m2 += s->m2 + delta * delta * (double)d->count * (double)s->count / (double)n;
        d->mean += delta * (double)s->count / (double)n;
        d->count = n;
        d->min = DW_MIN(d->min, s->min);
        d->max = DW_MAX(d->max, s->max);
        if (s->sk) {
            dw_kll_merge(feat_sketch(d, exact), s->sk);
        }
        return;
    }
    d->count += s->count;
    d->other += s->other;
    if (!s->cats) {
        return;
    }
    for (size_t i = 0; i < s->cat_cap; i++) {
        if (s->cats[i].name) {
            cat_add(d, s->cats[i].name, strlen(s->cats[i].name), s->cats[i].count);
        }
    }
}

void dw_agg_merge(struct dw_agg *dst, const struct dw_agg *src)
{
    counts_merge(&dst->all, &src->all);
    for (size_t i = 0; i < src->n_versions; i++) {
        const char *name = src->versions[i].name;
        size_t slot = dw_agg_version_slot(dst, name, strlen(name));
        counts_merge(&dst->versions[slot].c, &src->versions[i].c);
    }
    dst->duplicate_labels += src->duplicate_labels;
    dst->conflicts += src->conflicts;
    dst->late_predictions += src->late_predictions;
    dst->late_labels += src->late_labels;
    dw_perf_merge(&dst->perf, &src->perf);
    for (size_t i = 0; i < dst->model->n_features; i++) {
        feat_merge(&dst->feats[i], &src->feats[i], dst->sketch_exact);
    }
    dst->dirty = 1;
}

double dw_feat_std(const struct dw_feat_stats *fs)
{
    return fs->count > 0 ? sqrt(fs->m2 / (double)fs->count) : 0.0;
}

static void counts_encode(const struct dw_counts *c, struct dw_buf *out)
{
    dw_buf_put_u64(out, c->predictions);
    dw_buf_put_u64(out, c->labeled);
    dw_buf_put_u64(out, c->correct);
    dw_buf_put_u64(out, c->tp);
    dw_buf_put_u64(out, c->fp);
    dw_buf_put_u64(out, c->tn);
    dw_buf_put_u64(out, c->fn);
    dw_buf_put_u64(out, c->scored);
    dw_buf_put_f64(out, c->sum_brier);
    dw_buf_put_f64(out, c->sum_logloss);
    dw_buf_put_u64(out, c->regressed);
    dw_buf_put_f64(out, c->sum_abs_err);
    dw_buf_put_f64(out, c->sum_sq_err);
    dw_buf_put_f64(out, c->sum_label);
    dw_buf_put_f64(out, c->sum_label_sq);
    dw_buf_put_f64(out, c->sum_ape);
}

static void counts_decode(struct dw_counts *c, struct dw_reader *rd)
{
    c->predictions = dw_rd_u64(rd);
    c->labeled = dw_rd_u64(rd);
    c->correct = dw_rd_u64(rd);
    c->tp = dw_rd_u64(rd);
    c->fp = dw_rd_u64(rd);
    c->tn = dw_rd_u64(rd);
    c->fn = dw_rd_u64(rd);
    c->scored = dw_rd_u64(rd);
    c->sum_brier = dw_rd_f64(rd);
    c->sum_logloss = dw_rd_f64(rd);
    c->regressed = dw_rd_u64(rd);
    c->sum_abs_err = dw_rd_f64(rd);
    c->sum_sq_err = dw_rd_f64(rd);
    c->sum_label = dw_rd_f64(rd);
    c->sum_label_sq = dw_rd_f64(rd);
    c->sum_ape = dw_rd_f64(rd);
}

static int cmp_category(const void *a, const void *b)
{
    const struct dw_category *x = *(const struct dw_category *const *)a;
    const struct dw_category *y = *(const struct dw_category *const *)b;
    return strcmp(x->name, y->name);
}

/* Categories in name order, so equal aggregates always encode to equal bytes. */
static void cats_encode(const struct dw_feat_stats *fs, struct dw_buf *out)
{
    if (!fs->cats || fs->n_cats == 0) {
        return;
    }
    const struct dw_category **sorted = dw_malloc(fs->n_cats * sizeof(*sorted));
    size_t n = 0;
    for (size_t s = 0; s < fs->cat_cap; s++) {
        if (fs->cats[s].name) {
            sorted[n++] = &fs->cats[s];
        }
    }
    qsort(sorted, n, sizeof(*sorted), cmp_category);
    for (size_t i = 0; i < n; i++) {
        dw_buf_put_str(out, sorted[i]->name, strlen(sorted[i]->name));
        dw_buf_put_u64(out, sorted[i]->count);
    }
    free(sorted);
}

void dw_agg_encode(const struct dw_agg *agg, struct dw_buf *out)
{
    dw_buf_put_u8(out, AGG_CODEC_VERSION);
    dw_buf_put_i64(out, agg->start_ms);
    counts_encode(&agg->all, out);
    dw_buf_put_u16(out, (uint16_t)agg->n_versions);
    for (size_t i = 0; i < agg->n_versions; i++) {
        dw_buf_put_str(out, agg->versions[i].name, strlen(agg->versions[i].name));
        counts_encode(&agg->versions[i].c, out);
    }
    dw_buf_put_u64(out, agg->duplicate_labels);
    dw_buf_put_u64(out, agg->conflicts);
    dw_buf_put_u64(out, agg->late_predictions);
    dw_buf_put_u64(out, agg->late_labels);
    dw_perf_encode(&agg->perf, out);
    dw_buf_put_u16(out, (uint16_t)agg->model->n_features);
    for (size_t i = 0; i < agg->model->n_features; i++) {
        const struct dw_feat_stats *fs = &agg->feats[i];
        const char *name = agg->model->features[i].name;
        dw_buf_put_str(out, name, strlen(name));
        dw_buf_put_u8(out, (uint8_t)fs->type);
        dw_buf_put_u64(out, fs->count);
        dw_buf_put_u64(out, fs->missing);
        dw_buf_put_f64(out, fs->min);
        dw_buf_put_f64(out, fs->max);
        dw_buf_put_f64(out, fs->mean);
        dw_buf_put_f64(out, fs->m2);
        dw_buf_put_u64(out, fs->other);
        dw_kll_put(out, fs->sk);
        dw_buf_put_u32(out, (uint32_t)fs->n_cats);
        cats_encode(fs, out);
    }
}

static long feature_index(const struct dw_model_cfg *model, const char *name, size_t len)
{
    for (size_t i = 0; i < model->n_features; i++) {
        if (strlen(model->features[i].name) == len &&
            memcmp(model->features[i].name, name, len) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* keep 0: a feature the model no longer has; its sketch is skipped, not deserialised. */
static void feat_decode(struct dw_feat_stats *fs, struct dw_reader *rd, int keep)
{
    fs->count = dw_rd_u64(rd);
    fs->missing = dw_rd_u64(rd);
    fs->min = dw_rd_f64(rd);
    fs->max = dw_rd_f64(rd);
    fs->mean = dw_rd_f64(rd);
    fs->m2 = dw_rd_f64(rd);
    fs->other = dw_rd_u64(rd);
    if (keep) {
        dw_kll_get(rd, &fs->sk);
    } else {
        dw_rd_bytes(rd, dw_rd_u32(rd));
    }
    uint32_t n_cats = dw_rd_u32(rd);
    for (uint32_t c = 0; c < n_cats && !rd->err; c++) {
        const char *cname;
        size_t clen = dw_rd_str(rd, &cname);
        uint64_t cnt = dw_rd_u64(rd);
        if (!rd->err && fs->type == DW_FEATURE_CATEGORICAL) {
            cat_add(fs, cname, clen, cnt);
        }
    }
}

struct dw_agg *dw_agg_decode(const struct dw_model_cfg *model, const void *data, size_t len,
                             char *errstr, size_t errstr_size)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    if (dw_rd_u8(&rd) != AGG_CODEC_VERSION) {
        dw_err(errstr, errstr_size, "window aggregate: unknown encoding version");
        return NULL;
    }
    struct dw_agg *agg = dw_agg_new(model, dw_rd_i64(&rd));
    counts_decode(&agg->all, &rd);
    uint16_t n_versions = dw_rd_u16(&rd);
    for (uint16_t i = 0; i < n_versions && !rd.err; i++) {
        const char *name;
        size_t nlen = dw_rd_str(&rd, &name);
        struct dw_counts c;
        counts_decode(&c, &rd);
        if (!rd.err) {
            counts_merge(&agg->versions[dw_agg_version_slot(agg, name, nlen)].c, &c);
        }
    }
    agg->duplicate_labels = dw_rd_u64(&rd);
    agg->conflicts = dw_rd_u64(&rd);
    agg->late_predictions = dw_rd_u64(&rd);
    agg->late_labels = dw_rd_u64(&rd);
    dw_perf_decode(&agg->perf, &rd);
    uint16_t n_features = dw_rd_u16(&rd);
    for (uint16_t i = 0; i < n_features && !rd.err; i++) {
        const char *name;
        size_t nlen = dw_rd_str(&rd, &name);
        uint8_t type = dw_rd_u8(&rd);
        long idx = feature_index(model, name, nlen);
        struct dw_feat_stats scratch = {.type = (enum dw_feature_type)type};
        struct dw_feat_stats *fs = &scratch;
        if (idx >= 0 && agg->feats[idx].type == (enum dw_feature_type)type) {
            fs = &agg->feats[idx];
        }
        feat_decode(fs, &rd, fs != &scratch);
        if (fs == &scratch) {
            cats_free(&scratch);
            dw_kll_destroy(scratch.sk);
        }
    }
    if (rd.err || rd.pos != rd.len) {
        dw_agg_free(agg);
        dw_err(errstr, errstr_size, "window aggregate: truncated or corrupt encoding");
        return NULL;
    }
    agg->dirty = 0;
    return agg;
}

static json_t *counts_to_json(const struct dw_counts *c)
{
    return json_pack("{s:I,s:I,s:I}", "predictions", (json_int_t)c->predictions, "labeled",
                     (json_int_t)c->labeled, "correct", (json_int_t)c->correct);
}

json_t *dw_agg_to_json(const struct dw_agg *agg)
{
    char ts[40];
    dw_time_format_rfc3339(agg->start_ms, ts, sizeof(ts));
    json_t *obj = counts_to_json(&agg->all);
    json_object_set_new(obj, "model", json_string(agg->model->name));
    json_object_set_new(obj, "window_start", json_string(ts));
    json_object_set_new(obj, "window_start_ms", json_integer(agg->start_ms));
    json_object_set_new(obj, "duplicate_labels", json_integer((json_int_t)agg->duplicate_labels));
    json_object_set_new(obj, "conflicts", json_integer((json_int_t)agg->conflicts));
    json_object_set_new(obj, "late_predictions", json_integer((json_int_t)agg->late_predictions));
    json_object_set_new(obj, "late_labels", json_integer((json_int_t)agg->late_labels));
    json_t *versions = json_object();
    for (size_t i = 0; i < agg->n_versions; i++) {
        json_object_set_new(versions, agg->versions[i].name, counts_to_json(&agg->versions[i].c));
    }
    json_object_set_new(obj, "versions", versions);
    json_t *feats = json_object();
    for (size_t i = 0; i < agg->model->n_features; i++) {
        const struct dw_feat_stats *fs = &agg->feats[i];
        json_t *f = json_pack("{s:I,s:I}", "count", (json_int_t)fs->count, "missing",
                              (json_int_t)fs->missing);
        json_object_set_new(feats, agg->model->features[i].name, f);
    }
    json_object_set_new(obj, "features", feats);
    return obj;
}
