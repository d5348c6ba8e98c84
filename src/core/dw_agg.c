/*
 * dw_agg.c - per (model, window) aggregates: counts, moments and category tables.
 *
 * Hot path: dw_agg_add_prediction() runs once per prediction and touches each configured
 * feature once; it allocates only when a window meets a new category or version (bounded by
 * the model's max_categories and DW_AGG_MAX_VERSIONS). Moments use Welford's update; merging
 * uses the parallel formula (Chan, Golub, LeVeque 1979), so merge(a, b) equals one pass over
 * a ∪ b up to floating-point rounding.
 *
 * Categories: the first `bound` distinct values of a window are counted exactly; later values
 * go through SpaceSaving (Metwally, Agrawal, El Abbadi 2005) with `bound` counters, O(log k)
 * per value through a min-heap. A counter is reported as a category (it leaves "other") once
 * its estimate exceeds count / k, so a frequent late category shows up with an over-estimate
 * of at most N_over / k while the long tail stays in "__other__"; the table plus "other"
 * always adds up to the non-missing count. docs/sketches.md has the guarantees and the merge.
 *
 * Non-finite values: a numeric feature's NaN, +inf or -inf (the tokens NaN, Infinity,
 * -Infinity that input.non_finite = count lets through) is counted in `nan` or `inf` and
 * nowhere else: `count`, the moments, min/max and the sketch cover finite values only, so one
 * Infinity cannot turn a window's mean, std, Wasserstein distance or quantiles into inf/NaN,
 * and every value of a feature is in exactly one of count, missing, nan and inf.
 *
 * Dropped sketches: once the close evaluation has merged a window's feature statistics, no
 * later prediction changes them (late predictions are counted, not added), so a partition keeps
 * only what labels still change until the label horizon: dw_agg_drop_sketches() frees the
 * quantile sketches, category tables and the latency sketch, and keeps every count (count,
 * missing, nan, inf) and the moments, so that `inspect` and the exactness checks still see
 * them. A merge with a dropped side is dropped.
 *
 * Sizing: a numeric statistic's sketch is created with room for `reserve` values, so that an
 * exact sketch is allocated once rather than grown by doubling (the results do not depend on
 * it): dw_agg_size_like() reserves what the same model's window before counted, in the same
 * partition (dw_part.c) or merged from every partition (the close evaluation, dw_run.c).
 *
 * Outputs: agg->out[] counts the scores (by predicted class), the predicted classes and the
 * labels with the features' code (stat_add_num, cat_add, feat_merge, the same encoding). The
 * label's statistic is not dropped with the others: it changes until the label horizon.
 *
 * Serving evidence: a prediction with a status (input.fields.status) counts in `served`, an
 * error status (input.error_values) in `errors` too, for the model and for its version; its
 * latency_ms goes into the model's sketch (perf.latency) and its version's (versions[].latency,
 * created on the version's first latency, so the hot path allocates once per version and window
 * at most). The counts stay when the sketches are dropped; the version sketches go with the
 * model's. A canary compares versions on exactly these (dw_canary.c).
 *
 * Version features: a model with version_features (a canary) also counts each version's
 * feature values apart (versions[].feats, made with the slot), for each version's drift
 * against the model's reference. That is a second pass over the features of every
 * prediction, which is why only models that compare versions pay it. They merge by version
 * name and drop their sketches with the model's, like everything else.
 *
 * Encoding (version 7, little-endian, see dw_codec.h; version 8 below):
 *   u8 version, i64 start_ms, u8 flags (AGG_FLAG_DROPPED), u32 outputs length in bytes,
 *   u8 n_outputs {u8 output (enum dw_agg_out), statistic: a feature's layout from its type on,
 *   the label's always with its sketch}, counts, u64 served, u64 errors, u16 n_versions {str
 *   name, counts, u64 served, u64 errors, u32 latency sketch length + bytes (0: none or
 *   dropped)}, u64 duplicate_labels, conflicts, late_predictions, late_labels, perf (dw_perf.c),
 *   u16 n_features {str name, u8 type, u64 count, missing, f64 min, max, mean, m2, and unless
 *   the sketches are dropped: u64 other, u32 sketch length + bytes, u32 bound, u32 hh_cap,
 *   u64 hh_total, u64 hh_floor, u32 n_cats {str name, u8 flags, u64 count, and when flags has
 *   DW_CAT_MONITORED: u64 hh, u64 hh_err} in name order; then u64 nan, u64 inf}.
 * Version 8, written only when a version has its own features (so a model without them keeps
 * writing version 7): each version ends with u8 has_features, and when 1 the u16 n_features
 * section of the window's layout for that version.
 * Version 6 (no served and errors, versions {str name, counts} only) is still decoded, with
 * served = errors = 0 and no version latency: the serving evidence of windows checkpointed
 * before is unknown, not zero errors of zero.
 * Version 5 (no outputs section) is still decoded, with empty outputs: prediction and label
 * drift are then unavailable for that window.
 * Version 4 (no flags byte, sketches always there) is still decoded.
 * Version 3 (version 4 without the trailing nan and inf) is still decoded, with nan = inf = 0.
 * Version 2 (no heavy hitters: u32 n_cats {str name, u64 count} after the sketch) is still
 * decoded: its categories are counted again with cat_add, its "other" stays unattributed.
 */
#include "driftwatch/core/dw_agg.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define AGG_CODEC_VERSION 8    /* written when a version has its own feature statistics */
#define AGG_CODEC_VERSION_V7 7 /* written otherwise: no per-version features */
#define AGG_CODEC_VERSION_V6 6 /* still read: no serving counts, no per-version latency */
#define AGG_CODEC_VERSION_V5 5 /* still read: no outputs section */
#define AGG_CODEC_VERSION_V4 4 /* still read: no flags byte */
#define AGG_CODEC_VERSION_V3 3 /* still read: no nan / inf counts */
#define AGG_CODEC_VERSION_V2 2 /* still read: categories without heavy hitters */
#define AGG_FLAG_DROPPED 0x1   /* flags: sketches and category tables dropped */
#define AGG_FLAG_SEALED 0x2    /* flags: dropped at the seal, kept in the sealed copy */
#define CAT_SLOTS_MIN 16       /* first category table (slots); doubles up to dw_agg_cat_slots() */

uint32_t dw_agg_max_categories(const struct dw_model_cfg *model)
{
    if (model->max_categories <= 0) {
        return DW_AGG_MAX_CATEGORIES;
    }
    return (uint32_t)DW_MIN(model->max_categories, (int64_t)DW_AGG_CATEGORIES_LIMIT);
}

size_t dw_agg_cat_slots(uint32_t bound)
{
    size_t slots = CAT_SLOTS_MIN;
    while (slots < 4 * (size_t)bound) { /* 2 * bound entries at a load factor of 1/2 */
        slots *= 2;
    }
    return slots;
}

enum dw_feature_type dw_agg_out_type(const struct dw_model_cfg *m, enum dw_agg_out k)
{
    if (k == DW_AGG_OUT_SCORE_POS || k == DW_AGG_OUT_SCORE_NEG || m->task == DW_TASK_REGRESSION) {
        return DW_FEATURE_NUMERIC;
    }
    return DW_FEATURE_CATEGORICAL;
}

/* An empty statistic of a type; categorical ones count `bound` categories exactly. */
static void stat_init(struct dw_feat_stats *fs, enum dw_feature_type type, uint32_t bound)
{
    memset(fs, 0, sizeof(*fs));
    fs->type = type;
    fs->bound = bound;
    fs->hh_cap = bound;
    fs->min = INFINITY;
    fs->max = -INFINITY;
}

struct dw_agg *dw_agg_new(const struct dw_model_cfg *model, int64_t start_ms)
{
    return dw_agg_new_exact(model, start_ms, DW_AGG_SKETCH_EXACT);
}

/* reserve of a numeric statistic: the values prev counted, at most the sketch's exact size */
static void stat_size_like(struct dw_feat_stats *fs, const struct dw_feat_stats *prev,
                           uint32_t exact)
{
    if (fs->type == DW_FEATURE_NUMERIC && prev->type == DW_FEATURE_NUMERIC) {
        fs->reserve = (uint32_t)DW_MIN(prev->count, (uint64_t)exact);
    }
}

void dw_agg_size_like(struct dw_agg *agg, const struct dw_agg *prev)
{
    dw_assert(agg->model == prev->model);
    for (size_t i = 0; i < agg->model->n_features; i++) {
        stat_size_like(&agg->feats[i], &prev->feats[i], agg->sketch_exact);
    }
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        stat_size_like(&agg->out[k], &prev->out[k], agg->sketch_exact);
    }
}

/* Empty statistics of the model's features (the window's, or a version's). */
static struct dw_feat_stats *feats_new(const struct dw_model_cfg *model)
{
    struct dw_feat_stats *feats =
        dw_calloc(model->n_features ? model->n_features : 1, sizeof(*feats));
    uint32_t bound = dw_agg_max_categories(model);
    for (size_t i = 0; i < model->n_features; i++) {
        stat_init(&feats[i], model->features[i].type, bound);
    }
    return feats;
}

struct dw_agg *dw_agg_new_exact(const struct dw_model_cfg *model, int64_t start_ms, uint32_t exact)
{
    struct dw_agg *agg = dw_calloc(1, sizeof(*agg));
    agg->sketch_exact = exact;
    agg->model = model;
    agg->start_ms = start_ms;
    agg->feats = feats_new(model);
    uint32_t bound = dw_agg_max_categories(model);
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        stat_init(&agg->out[k], dw_agg_out_type(model, (enum dw_agg_out)k), bound);
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
    free(fs->hh_heap);
    fs->cats = NULL;
    fs->hh_heap = NULL;
    fs->cat_cap = 0;
    fs->n_cats = 0;
    fs->n_exact = 0;
    fs->n_hh = 0;
}

/* Frees the sketch and category table of a statistic; counts and moments stay. */
static void stat_sketch_free(struct dw_feat_stats *fs)
{
    cats_free(fs);
    dw_kll_destroy(fs->sk);
    fs->sk = NULL;
    fs->other = 0;
    fs->hh_total = 0;
    fs->hh_floor = 0;
}

void dw_feat_stats_free(struct dw_feat_stats *fs)
{
    stat_sketch_free(fs);
}

/* Frees the sketches and tables of n statistics (NULL: none); counts and moments stay. */
static void feats_sketches_free(struct dw_feat_stats *feats, size_t n)
{
    for (size_t i = 0; feats && i < n; i++) {
        stat_sketch_free(&feats[i]);
    }
}

/* Frees n statistics made by feats_new (NULL: none). */
static void feats_free(struct dw_feat_stats *feats, size_t n)
{
    feats_sketches_free(feats, n);
    free(feats);
}

/* Whether output k loses its sketch with the features' (the label keeps it, dw_agg.h). */
static int out_dropped(const struct dw_agg *agg, size_t k)
{
    return agg->sketches_dropped && k != DW_AGG_OUT_LABEL;
}

/* Frees the sketches and category tables of every feature and of the outputs but the label;
 * all: the label's too (the aggregate is freed). */
static void sketches_free(struct dw_agg *agg, int all)
{
    feats_sketches_free(agg->feats, agg->model->n_features);
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        if (all || k != DW_AGG_OUT_LABEL) {
            stat_sketch_free(&agg->out[k]);
        }
    }
}

void dw_agg_drop_sketches(struct dw_agg *agg)
{
    if (!agg->sketches_dropped) {
        sketches_free(agg, 0);
        dw_kll_destroy(agg->perf.latency); /* predictions' latencies: final at the close too */
        agg->perf.latency = NULL;
        for (size_t i = 0; i < agg->n_versions; i++) {
            dw_kll_destroy(agg->versions[i].latency);
            agg->versions[i].latency = NULL;
            feats_sketches_free(agg->versions[i].feats, agg->model->n_features);
        }
        agg->sketches_dropped = 1;
        agg->dirty = 1;
    }
}

void dw_agg_free(struct dw_agg *agg)
{
    if (!agg) {
        return;
    }
    for (size_t i = 0; i < agg->n_versions; i++) {
        free(agg->versions[i].name);
        dw_kll_destroy(agg->versions[i].latency);
        feats_free(agg->versions[i].feats, agg->model->n_features);
    }
    free(agg->versions);
    sketches_free(agg, 1);
    free(agg->feats);
    dw_perf_free(&agg->perf);
    dw_buf_free(&agg->seal_blob);
    free(agg);
}

void dw_agg_seal(struct dw_agg *agg)
{
    dw_assert(!agg->sketches_dropped && !agg->sealed);
    dw_buf_reset(&agg->seal_blob);
    dw_agg_encode(agg, &agg->seal_blob);
    dw_agg_drop_sketches(agg);
    agg->sealed = 1;
    agg->seal_gone = 0;
}

int dw_agg_merged(struct dw_agg *agg)
{
    int changed = !agg->sketches_dropped || agg->sealed;
    dw_agg_drop_sketches(agg);
    if (agg->sealed) {
        agg->sealed = 0;
        agg->seal_gone = 1;
        dw_buf_free(&agg->seal_blob);
        agg->dirty = 1;
    }
    return changed;
}

/* Whether two statistics have the same counts (what the seal froze). */
static int stat_counts_equal(const struct dw_feat_stats *a, const struct dw_feat_stats *b)
{
    return a->type == b->type && a->count == b->count && a->missing == b->missing &&
           a->nan == b->nan && a->inf == b->inf;
}

/* Moves the n statistics of src into dst (their counts checked first). 0, or -1. */
static int stats_unseal(struct dw_feat_stats *dst, struct dw_feat_stats *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!stat_counts_equal(&dst[i], &src[i])) {
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct dw_feat_stats t = dst[i];
        dst[i] = src[i];
        src[i] = t;
    }
    return 0;
}

int dw_agg_unseal(struct dw_agg *dst, struct dw_agg *src, char *errstr, size_t errstr_size)
{
    if (!dst->sealed || src->sketches_dropped || src->sealed || dst->start_ms != src->start_ms ||
        dst->model != src->model) {
        return dw_err(errstr, errstr_size, "the sealed copy is not this window's (%s)",
                      !dst->sealed ? "the record is not sealed" : "not a whole window");
    }
    size_t nf = dst->model->n_features;
    if (stats_unseal(dst->feats, src->feats, nf) != 0 ||
        stats_unseal(dst->out, src->out, DW_AGG_OUT_LABEL) != 0) {
        return dw_err(errstr, errstr_size, "the sealed copy counts other feature values");
    }
    _Static_assert(DW_AGG_OUT_LABEL == DW_AGG_OUT__COUNT - 1, "the label is the last output");
    struct dw_kll *lat = dst->perf.latency;
    dst->perf.latency = src->perf.latency;
    src->perf.latency = lat;
    for (size_t i = 0; i < dst->n_versions; i++) {
        struct dw_version_stats *dv = &dst->versions[i];
        for (size_t j = 0; j < src->n_versions; j++) {
            struct dw_version_stats *sv = &src->versions[j];
            if (strcmp(dv->name, sv->name) != 0) {
                continue;
            }
            lat = dv->latency;
            dv->latency = sv->latency;
            sv->latency = lat;
            struct dw_feat_stats *f = dv->feats;
            dv->feats = sv->feats;
            sv->feats = f;
        }
    }
    dst->sketches_dropped = 0;
    dst->sealed = 0;
    return 0;
}

size_t dw_agg_version_slot(struct dw_agg *agg, const char *name, size_t len)
{
    for (size_t i = 0; i < agg->n_versions; i++) {
        const char *v = agg->versions[i].name;
        if (dw_str_is(v, name, len)) {
            return i;
        }
    }
    if (agg->n_versions > DW_AGG_MAX_VERSIONS) {
        return DW_AGG_MAX_VERSIONS; /* beyond the bound: the overflow bucket, named once */
    }
    size_t slot = agg->n_versions++;
    agg->versions = dw_realloc(agg->versions, agg->n_versions * sizeof(*agg->versions));
    agg->versions[slot] = (struct dw_version_stats){
        .name = slot < DW_AGG_MAX_VERSIONS ? dw_strndup(name, len) : dw_strdup(DW_AGG_OTHER)};
    if (agg->model->version_features) {
        agg->versions[slot].feats = feats_new(agg->model);
    }
    return slot;
}

/*
 * Category table. One open-addressing table (linear probing, load factor at most 1/2) holds
 * both kinds of entries, so a value costs one lookup whatever it is:
 * - exact entries (DW_CAT_EXACT): the first `bound` distinct values of the window;
 * - SpaceSaving counters (DW_CAT_MONITORED): at most hh_cap of the later values, with a
 *   min-heap of their slots ordered by (hh, name) - the name breaks ties so that the victim of
 *   an eviction does not depend on the table layout (a decoded aggregate evicts the same one).
 * An exact entry can also carry a counter after a merge (the other side saw the value late).
 * A counter that is evicted loses its entry unless the entry is exact; deletion shifts the
 * following entries back (no tombstones) and keeps their heap positions up to date.
 */
#define CAT_NONE SIZE_MAX

static size_t cat_home(const struct dw_feat_stats *fs, const char *name, size_t len)
{
    return (size_t)dw_hash64(name, len) & (fs->cat_cap - 1);
}

/* Doubles the category table (a window starts small: most features have few categories). */
static void cats_grow(struct dw_feat_stats *fs)
{
    size_t old_cap = fs->cat_cap;
    struct dw_category *old = fs->cats;
    fs->cat_cap = old_cap ? old_cap * 2 : CAT_SLOTS_MIN;
    fs->cats = dw_calloc(fs->cat_cap, sizeof(*fs->cats));
    for (size_t s = 0; s < old_cap; s++) {
        if (old[s].name) {
            size_t i = cat_home(fs, old[s].name, strlen(old[s].name));
            while (fs->cats[i].name) {
                i = (i + 1) & (fs->cat_cap - 1);
            }
            fs->cats[i] = old[s];
            if (old[s].heap) {
                fs->hh_heap[old[s].heap - 1] = (uint32_t)i;
            }
        }
    }
    free(old);
}

static size_t cat_find(const struct dw_feat_stats *fs, const char *name, size_t len)
{
    if (!fs->cats) {
        return CAT_NONE;
    }
    size_t i = cat_home(fs, name, len);
    while (fs->cats[i].name) {
        const char *c = fs->cats[i].name;
        if (dw_str_is(c, name, len)) {
            return i;
        }
        i = (i + 1) & (fs->cat_cap - 1);
    }
    return CAT_NONE;
}

/* A new, zeroed entry for a name that is not in the table; @returns its slot. */
static size_t cat_insert(struct dw_feat_stats *fs, const char *name, size_t len)
{
    if ((fs->n_cats + 1) * 2 > fs->cat_cap) {
        cats_grow(fs);
    }
    size_t i = cat_home(fs, name, len);
    while (fs->cats[i].name) {
        i = (i + 1) & (fs->cat_cap - 1);
    }
    memset(&fs->cats[i], 0, sizeof(fs->cats[i]));
    fs->cats[i].name = dw_strndup(name, len);
    fs->n_cats++;
    return i;
}

/* Removes the entry in slot (not in the heap), shifting the rest of its cluster back. */
static void cat_delete(struct dw_feat_stats *fs, size_t slot)
{
    size_t mask = fs->cat_cap - 1, i = slot, j = slot;
    free(fs->cats[slot].name);
    for (;;) {
        j = (j + 1) & mask;
        if (!fs->cats[j].name) {
            break;
        }
        size_t k = cat_home(fs, fs->cats[j].name, strlen(fs->cats[j].name));
        /* j stays when its home lies cyclically in (i, j]. */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            fs->cats[i] = fs->cats[j];
            if (fs->cats[i].heap) {
                fs->hh_heap[fs->cats[i].heap - 1] = (uint32_t)i;
            }
            i = j;
        }
    }
    memset(&fs->cats[i], 0, sizeof(fs->cats[i]));
    fs->n_cats--;
}

static int hh_less(const struct dw_feat_stats *fs, uint32_t a, uint32_t b)
{
    const struct dw_category *x = &fs->cats[a], *y = &fs->cats[b];
    if (x->hh != y->hh) {
        return x->hh < y->hh;
    }
    return strcmp(x->name, y->name) < 0;
}

static void heap_put(struct dw_feat_stats *fs, size_t pos, uint32_t slot)
{
    fs->hh_heap[pos] = slot;
    fs->cats[slot].heap = (uint32_t)pos + 1;
}

static void heap_up(struct dw_feat_stats *fs, size_t pos)
{
    uint32_t slot = fs->hh_heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!hh_less(fs, slot, fs->hh_heap[parent])) {
            break;
        }
        heap_put(fs, pos, fs->hh_heap[parent]);
        pos = parent;
    }
    heap_put(fs, pos, slot);
}

static void heap_down(struct dw_feat_stats *fs, size_t pos)
{
    uint32_t slot = fs->hh_heap[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= fs->n_hh) {
            break;
        }
        if (child + 1 < fs->n_hh && hh_less(fs, fs->hh_heap[child + 1], fs->hh_heap[child])) {
            child++;
        }
        if (!hh_less(fs, fs->hh_heap[child], slot)) {
            break;
        }
        heap_put(fs, pos, fs->hh_heap[child]);
        pos = child;
    }
    heap_put(fs, pos, slot);
}

static void heap_push(struct dw_feat_stats *fs, size_t slot)
{
    if (!fs->hh_heap) {
        fs->hh_heap = dw_calloc(fs->hh_cap, sizeof(*fs->hh_heap));
    }
    fs->n_hh++;
    heap_put(fs, fs->n_hh - 1, (uint32_t)slot);
    heap_up(fs, fs->n_hh - 1);
}

static size_t heap_pop(struct dw_feat_stats *fs)
{
    uint32_t root = fs->hh_heap[0];
    fs->n_hh--;
    if (fs->n_hh > 0) {
        heap_put(fs, 0, fs->hh_heap[fs->n_hh]);
        heap_down(fs, 0);
    }
    fs->cats[root].heap = 0;
    return root;
}

/* Reported: the counter's estimate exceeds count / k (the φ = 1/k heavy-hitter threshold). */
static void hh_maybe_report(struct dw_feat_stats *fs, struct dw_category *c)
{
    if (!(c->flags & DW_CAT_REPORTED) && c->hh > fs->count / fs->hh_cap) {
        c->flags |= DW_CAT_REPORTED;
        c->count += c->hh;
        fs->other -= c->hh;
    }
}

/* Takes the counter off an entry (popped from the heap already); drops a non-exact entry. */
static void hh_release(struct dw_feat_stats *fs, size_t slot)
{
    struct dw_category *c = &fs->cats[slot];
    if (c->flags & DW_CAT_REPORTED) {
        c->count -= c->hh;
        fs->other += c->hh;
    }
    c->flags &= (uint8_t) ~(DW_CAT_MONITORED | DW_CAT_REPORTED);
    c->hh = 0;
    c->hh_err = 0;
    if (!(c->flags & DW_CAT_EXACT)) {
        cat_delete(fs, slot);
    }
}

/* SpaceSaving update by w (Metwally et al.): a monitored value adds w; a new one takes a free
 * counter, or replaces the smallest counter m and starts at m + w with error m. */
static void hh_add(struct dw_feat_stats *fs, size_t slot, const char *name, size_t len, uint64_t w)
{
    fs->hh_total += w;
    if (slot != CAT_NONE) { /* a non-exact entry is always monitored */
        struct dw_category *c = &fs->cats[slot];
        c->hh += w;
        if (c->flags & DW_CAT_REPORTED) {
            c->count += w;
        } else {
            fs->other += w;
            hh_maybe_report(fs, c);
        }
        heap_down(fs, c->heap - 1);
        return;
    }
    fs->other += w;
    uint64_t base = 0;
    if (fs->n_hh >= fs->hh_cap) {
        size_t victim = heap_pop(fs);
        base = fs->cats[victim].hh;
        fs->hh_floor = DW_MAX(fs->hh_floor, base);
        hh_release(fs, victim);
    }
    slot = cat_insert(fs, name, len);
    struct dw_category *c = &fs->cats[slot];
    c->flags = DW_CAT_MONITORED;
    c->hh = base + w;
    c->hh_err = base;
    heap_push(fs, slot);
    hh_maybe_report(fs, &fs->cats[slot]);
}

/* Counts w occurrences of a value (already in fs->count): exact while the value has (or can
 * get) an exact entry, SpaceSaving otherwise. */
static void cat_add(struct dw_feat_stats *fs, const char *name, size_t len, uint64_t w)
{
    size_t slot = cat_find(fs, name, len);
    if (slot != CAT_NONE && (fs->cats[slot].flags & DW_CAT_EXACT)) {
        fs->cats[slot].count += w;
        return;
    }
    if (slot == CAT_NONE && fs->n_exact < fs->bound) {
        slot = cat_insert(fs, name, len);
        fs->cats[slot].flags = DW_CAT_EXACT;
        fs->cats[slot].count = w;
        fs->n_exact++;
        return;
    }
    hh_add(fs, slot, name, len, w);
}

/* Sketch seed: fixed, so that a replay after a restart makes the same coin flips. */
#define SKETCH_SEED 0x64726966747761ULL

static struct dw_kll *feat_sketch(struct dw_feat_stats *fs, uint32_t exact)
{
    if (!fs->sk) {
        fs->sk = dw_kll_new(DW_AGG_SKETCH_K, exact, SKETCH_SEED);
        dw_kll_reserve(fs->sk, fs->reserve);
    }
    return fs->sk;
}

/* A finite value into the moments, and into the sketch unless only the counts are kept
 * (sketch 0: the window was merged with its sketches, dw_agg_add_prediction). */
static void num_add(struct dw_feat_stats *fs, double x, uint32_t exact, int sketch)
{
    if (sketch) {
        dw_kll_update(feat_sketch(fs, exact), x);
    }
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

/* A numeric value: NaN and infinities are counted apart, finite ones in moments and sketch. */
static void stat_add_num(struct dw_feat_stats *fs, double x, uint32_t exact, int sketch)
{
    if (isnan(x)) {
        fs->nan++;
    } else if (isinf(x)) {
        fs->inf++;
    } else {
        num_add(fs, x, exact, sketch);
    }
}

/* A category: counted, and into the table unless only the counts are kept. */
static void stat_add_cat(struct dw_feat_stats *fs, const char *name, size_t len, int sketch)
{
    fs->count++;
    if (sketch) {
        cat_add(fs, name, len, 1);
    }
}

/* A predicted class or label: its text, or its number for a regression model. */
static void stat_add_class(struct dw_feat_stats *fs, const char *text, double num, uint32_t exact,
                           int sketch)
{
    if (fs->type == DW_FEATURE_NUMERIC) {
        stat_add_num(fs, num, exact, sketch);
    } else {
        stat_add_cat(fs, text ? text : "", text ? strlen(text) : 0, sketch);
    }
}

/* The prediction's score, by predicted class, and its predicted class. */
static void outputs_add(struct dw_agg *agg, const struct dw_prediction *ev, int sketch)
{
    const struct dw_model_cfg *m = agg->model;
    int regression = m->task == DW_TASK_REGRESSION;
    if (ev->has_score) {
        int pos = !regression && strcmp(ev->pred.text, m->positive_class) == 0;
        stat_add_num(&agg->out[pos ? DW_AGG_OUT_SCORE_POS : DW_AGG_OUT_SCORE_NEG], ev->score,
                     agg->sketch_exact, sketch);
    }
    if (!ev->no_pred) {
        stat_add_class(&agg->out[DW_AGG_OUT_PRED], regression ? NULL : ev->pred.text, ev->pred.num,
                       agg->sketch_exact, sketch);
    }
}

void dw_agg_add_label(struct dw_agg *agg, const char *text, double num)
{
    stat_add_class(&agg->out[DW_AGG_OUT_LABEL], text, num, agg->sketch_exact, 1);
    agg->dirty = 1;
}

/* Counts a prediction's n feature values into feats. */
static void feats_add(struct dw_feat_stats *feats, size_t n, const struct dw_prediction *ev,
                      uint32_t exact, int sketch)
{
    for (size_t i = 0; i < n; i++) {
        struct dw_feat_stats *fs = &feats[i];
        const struct dw_val *v = &ev->features[i];
        if (v->kind == DW_VAL_MISSING) {
            fs->missing++;
        } else if (fs->type == DW_FEATURE_NUMERIC) {
            stat_add_num(fs, v->num, exact, sketch);
        } else {
            stat_add_cat(fs, v->str, v->len, sketch);
        }
    }
}

void dw_agg_add_prediction(struct dw_agg *agg, size_t vslot, const struct dw_prediction *ev)
{
    dw_assert(!agg->sealed && vslot < agg->n_versions); /* vslot: dw_agg_version_slot()'s */
    int sketch = !agg->sketches_dropped;
    struct dw_version_stats *ver = &agg->versions[vslot];
    if (ev->has_latency && sketch) {
        dw_perf_add_latency(&agg->perf, ev->latency_ms);
        dw_perf_latency_update(&ver->latency, ev->latency_ms);
    }
    if (ev->has_status) {
        agg->served++;
        ver->served++;
        agg->errors += ev->status_error != 0;
        ver->errors += ev->status_error != 0;
    }
    agg->all.predictions++;
    ver->c.predictions++;
    feats_add(agg->feats, agg->model->n_features, ev, agg->sketch_exact, sketch);
    if (ver->feats) {
        feats_add(ver->feats, agg->model->n_features, ev, agg->sketch_exact, sketch);
    }
    outputs_add(agg, ev, sketch);
    agg->dirty = 1;
}

/* What an outcome is, read once for the window's counts and its version's. */
struct outcome_class {
    int pred_pos, label_pos; /* of the positive class */
    int same;                /* correct */
    double brier, logloss;   /* its score's terms, when it has one */
};

static struct outcome_class outcome_class(const char *positive, const struct dw_outcome *o)
{
    /* Regression outcomes carry numbers, no class texts: correct when the numbers are equal,
     * and never of the positive class. */
    struct outcome_class k;
    k.pred_pos = o->pred && strcmp(o->pred, positive) == 0;
    k.label_pos = o->label && strcmp(o->label, positive) == 0;
    k.same = o->pred && o->label ? strcmp(o->pred, o->label) == 0
                                 : o->pred_is_num && o->label_is_num && o->pred_num == o->label_num;
    k.brier = k.logloss = 0.0;
    if (o->has_score) {
        double y = k.label_pos ? 1.0 : 0.0;
        double p = DW_MIN(DW_MAX(o->score, 1e-15), 1.0 - 1e-15);
        k.brier = (o->score - y) * (o->score - y);
        k.logloss = -(y * log(p) + (1.0 - y) * log(1.0 - p));
    }
    return k;
}

static void counts_add_outcome(struct dw_counts *c, struct outcome_class k,
                               const struct dw_outcome *o)
{
    c->labeled++;
    if (k.same) {
        c->correct++;
    }
    if (k.pred_pos && k.label_pos) {
        c->tp++;
    } else if (k.pred_pos) {
        c->fp++;
    } else if (k.label_pos) {
        c->fn++;
    } else {
        c->tn++;
    }
    if (o->has_score) {
        c->scored++;
        c->sum_brier += k.brier;
        c->sum_logloss += k.logloss;
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
    /* every outcome lands in exactly one cell of the confusion counts */
    dw_assert(c->correct <= c->labeled && c->tp + c->fp + c->tn + c->fn == c->labeled);
}

void dw_agg_add_outcome(struct dw_agg *agg, size_t vslot, const struct dw_outcome *o)
{
    dw_assert(vslot < agg->n_versions); /* dw_agg_version_slot()'s */
    struct outcome_class k = outcome_class(agg->model->positive_class, o);
    counts_add_outcome(&agg->all, k, o);
    counts_add_outcome(&agg->versions[vslot].c, k, o);
    dw_agg_add_label(agg, o->label_is_num ? NULL : o->label, o->label_num);
    if (agg->model->task != DW_TASK_REGRESSION) {
        dw_perf_add_outcome(&agg->perf, o->pred, o->label, k.label_pos, o->has_score, o->score);
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

/* A value of the union of summaries in a merge: its lower bound (Agarwal et al.'s count). */
struct hh_item {
    char *name;
    uint64_t lo;
};

static int cmp_item_name(const void *a, const void *b)
{
    return strcmp(((const struct hh_item *)a)->name, ((const struct hh_item *)b)->name);
}

static int cmp_item_lo_desc(const void *a, const void *b)
{
    const struct hh_item *x = a, *y = b;
    if (x->lo != y->lo) {
        return x->lo < y->lo ? 1 : -1;
    }
    return strcmp(x->name, y->name);
}

/*
 * Category merge (d->count already includes s->count). Exact parts of s add exactly where d has
 * (or can still make) an exact entry; everything else forms the union of three summaries: d's
 * counters, s's counters, and s's exact values that d cannot hold exactly ("spill", exact).
 *
 * Mergeable summaries (Agarwal, Cormode, Huang, Phillips, Wei, Yi, PODS 2012): a SpaceSaving
 * summary with floor m is the Misra-Gries summary lo = hh - m with error m. The MG merge adds
 * lo by value, subtracts the (k+1)-th largest lo, C, from all and keeps the k largest; the
 * error of the result is Δ = m_d + m_s + C, and Σ lo' + k Δ ≤ N_over (each input has
 * N_i - Σ lo_i ≥ k_i m_i, and the prune removes at least k C). Back in SpaceSaving form, a kept
 * value gets hh = lo' + Δ, hh_err = Δ, and Δ becomes the floor: every estimate is still an
 * over-estimate, the counters still sum to at most N_over (so `other` stays ≥ 0), and
 * Δ ≤ N_over / k. With different bounds the result keeps the smaller number of counters, for
 * which the same argument holds.
 */
static void cats_merge(struct dw_feat_stats *d, const struct dw_feat_stats *s)
{
    size_t cap = s->n_exact + s->n_hh + d->n_hh, n = 0;
    struct hh_item *items = dw_calloc(cap ? cap : 1, sizeof(*items));
    uint64_t spill = 0;
    for (size_t i = 0; s->cats && i < s->cat_cap; i++) {
        const struct dw_category *c = &s->cats[i];
        if (!c->name || !(c->flags & DW_CAT_EXACT)) {
            continue;
        }
        uint64_t part = c->count - ((c->flags & DW_CAT_REPORTED) ? c->hh : 0);
        size_t len = strlen(c->name), slot = cat_find(d, c->name, len);
        if (part == 0) {
            continue;
        }
        if (slot != CAT_NONE && (d->cats[slot].flags & DW_CAT_EXACT)) {
            d->cats[slot].count += part;
        } else if (slot == CAT_NONE && d->n_exact < d->bound) {
            slot = cat_insert(d, c->name, len);
            d->cats[slot].flags = DW_CAT_EXACT;
            d->cats[slot].count = part;
            d->n_exact++;
        } else {
            items[n].name = dw_strdup(c->name);
            items[n++].lo = part;
            spill += part;
        }
    }
    uint64_t n_over = d->hh_total + s->hh_total + spill;
    if (n == 0 && s->n_hh == 0) {
        /* Nothing to attribute: s's overflow (if any) had no counters, it stays "other". */
        d->hh_total = n_over;
        d->other += s->other;
        free(items);
        return;
    }
    for (size_t i = 0; i < s->n_hh; i++) {
        const struct dw_category *c = &s->cats[s->hh_heap[i]];
        items[n].name = dw_strdup(c->name);
        items[n++].lo = c->hh - s->hh_floor;
    }
    while (d->n_hh > 0) {
        size_t slot = heap_pop(d);
        items[n].name = dw_strdup(d->cats[slot].name);
        items[n++].lo = d->cats[slot].hh - d->hh_floor;
        hh_release(d, slot);
    }
    size_t k = d->hh_cap;
    if (s->n_hh > 0 && s->hh_cap < k) {
        k = s->hh_cap;
    }
    /* Add up equal names, then the k largest lower bounds. */
    qsort(items, n, sizeof(*items), cmp_item_name);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && strcmp(items[u - 1].name, items[i].name) == 0) {
            items[u - 1].lo += items[i].lo;
            free(items[i].name);
        } else {
            items[u++] = items[i];
        }
    }
    qsort(items, u, sizeof(*items), cmp_item_lo_desc);
    uint64_t cut = u > k ? items[k].lo : 0;
    uint64_t delta = d->hh_floor + s->hh_floor + cut;
    size_t kept = DW_MIN(u, k);
    uint64_t reported = 0;
    d->hh_cap = (uint32_t)k;
    d->hh_total = n_over;
    d->hh_floor = delta;
    for (size_t i = 0; i < kept; i++) {
        size_t len = strlen(items[i].name), slot = cat_find(d, items[i].name, len);
        if (slot == CAT_NONE) {
            slot = cat_insert(d, items[i].name, len);
        }
        struct dw_category *c = &d->cats[slot];
        c->flags |= DW_CAT_MONITORED;
        c->hh = items[i].lo - cut + delta;
        c->hh_err = delta;
        if (c->hh > d->count / k) {
            c->flags |= DW_CAT_REPORTED;
            c->count += c->hh;
            reported += c->hh;
        }
        heap_push(d, slot);
    }
    d->other = n_over - reported;
    for (size_t i = 0; i < u; i++) {
        free(items[i].name);
    }
    free(items);
}

/* dropped: either side's sketches are dropped; only counts and moments merge. */
static void feat_merge(struct dw_feat_stats *d, const struct dw_feat_stats *s, uint32_t exact,
                       int dropped)
{
    d->missing += s->missing;
    d->nan += s->nan;
    d->inf += s->inf;
    if (d->type == DW_FEATURE_NUMERIC || dropped) {
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
        if (s->sk && !dropped) {
            dw_kll_merge(feat_sketch(d, exact), s->sk);
        }
        return;
    }
    d->count += s->count;
    cats_merge(d, s);
}

/* Adds a version's evidence into dst's slot of that name (a dropped dst keeps no latency). */
static void version_merge(struct dw_agg *dst, const char *name, size_t len,
                          const struct dw_version_stats *src)
{
    size_t slot = dw_agg_version_slot(dst, name, len); /* first: it may move the array */
    struct dw_version_stats *v = &dst->versions[slot];
    counts_merge(&v->c, &src->c);
    v->served += src->served;
    v->errors += src->errors;
    if (!dst->sketches_dropped) {
        dw_perf_latency_merge(&v->latency, src->latency);
    }
    for (size_t i = 0; src->feats && i < dst->model->n_features; i++) {
        if (!v->feats) {
            v->feats = feats_new(dst->model);
        }
        feat_merge(&v->feats[i], &src->feats[i], dst->sketch_exact, dst->sketches_dropped);
    }
}

void dw_agg_merge(struct dw_agg *dst, const struct dw_agg *src)
{
    dw_agg_merge_counts(dst, src);
    for (size_t i = 0; i < dst->model->n_features; i++) {
        dw_agg_merge_feature(dst, src, i);
    }
}

void dw_agg_merge_feature(struct dw_agg *dst, const struct dw_agg *src, size_t f)
{
    feat_merge(&dst->feats[f], &src->feats[f], dst->sketch_exact, dst->sketches_dropped);
}

void dw_agg_merge_counts(struct dw_agg *dst, const struct dw_agg *src)
{
    if (src->sketches_dropped && !dst->sketches_dropped) {
        dw_agg_drop_sketches(dst); /* before the versions: theirs merge as dropped */
    }
    counts_merge(&dst->all, &src->all);
    dst->served += src->served;
    dst->errors += src->errors;
    for (size_t i = 0; i < src->n_versions; i++) {
        const struct dw_version_stats *sv = &src->versions[i];
        version_merge(dst, sv->name, strlen(sv->name), sv);
    }
    dst->duplicate_labels += src->duplicate_labels;
    dst->conflicts += src->conflicts;
    dst->late_predictions += src->late_predictions;
    dst->late_labels += src->late_labels;
    dw_perf_merge(&dst->perf, &src->perf);
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        feat_merge(&dst->out[k], &src->out[k], dst->sketch_exact, out_dropped(dst, k));
    }
    dst->dirty = 1;
}

struct dw_agg *dw_agg_version_view(const struct dw_agg *agg, size_t slot)
{
    const struct dw_version_stats *v = &agg->versions[slot];
    struct dw_agg *view = dw_agg_new_exact(agg->model, agg->start_ms, DW_AGG_MERGE_EXACT);
    if (agg->sketches_dropped) {
        dw_agg_drop_sketches(view);
    }
    counts_merge(&view->all, &v->c);
    view->served = v->served;
    view->errors = v->errors;
    for (size_t i = 0; v->feats && i < agg->model->n_features; i++) {
        feat_merge(&view->feats[i], &v->feats[i], view->sketch_exact, view->sketches_dropped);
    }
    return view;
}

void dw_agg_scores(const struct dw_agg *agg, struct dw_feat_stats *fs)
{
    stat_init(fs, DW_FEATURE_NUMERIC, agg->out[DW_AGG_OUT_SCORE_POS].bound);
    for (size_t k = DW_AGG_OUT_SCORE_POS; k <= DW_AGG_OUT_SCORE_NEG; k++) {
        feat_merge(fs, &agg->out[k], DW_AGG_MERGE_EXACT, out_dropped(agg, k));
    }
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

/* served and errors (version 7), against each other and the predictions they are part of. */
static void serving_decode(struct dw_reader *rd, uint64_t predictions, uint64_t *served,
                           uint64_t *errors)
{
    *served = dw_rd_u64(rd);
    *errors = dw_rd_u64(rd);
    if (!rd->err && (*errors > *served || *served > predictions)) {
        dw_rd_fail(rd, "%" PRIu64 " errors of %" PRIu64 " served of %" PRIu64 " predictions",
                   *errors, *served, predictions);
    }
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
    /* What counts_add_outcome() keeps true (it asserts it): refuse counts that break it. */
    uint64_t rest = c->labeled;
    const uint64_t parts[] = {c->tp, c->fp, c->tn, c->fn};
    int split_ok = 1;
    for (size_t i = 0; i < 4; i++) {
        split_ok = split_ok && parts[i] <= rest;
        rest = split_ok ? rest - parts[i] : rest;
    }
    if (c->correct > c->labeled || !split_ok || rest != 0) {
        dw_rd_fail(rd,
                   "counts do not add up: %" PRIu64 " labeled, %" PRIu64 " correct, tp+fp+tn+fn %s",
                   c->labeled, c->correct, split_ok && rest == 0 ? "ok" : "differ");
    }
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
    dw_buf_put_u32(out, fs->bound);
    dw_buf_put_u32(out, fs->hh_cap);
    dw_buf_put_u64(out, fs->hh_total);
    dw_buf_put_u64(out, fs->hh_floor);
    dw_buf_put_u32(out, (uint32_t)fs->n_cats);
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
        const struct dw_category *c = sorted[i];
        dw_buf_put_str(out, c->name, strlen(c->name));
        dw_buf_put_u8(out, c->flags);
        dw_buf_put_u64(out, c->count);
        if (c->flags & DW_CAT_MONITORED) {
            dw_buf_put_u64(out, c->hh);
            dw_buf_put_u64(out, c->hh_err);
        }
    }
    free(sorted);
}

/* A statistic: u8 type, u64 count, missing, f64 min, max, mean, m2, unless dropped its
 * sketch and categories, then u64 nan, inf (the layout of a feature after its name). */
static void stat_encode(const struct dw_feat_stats *fs, int dropped, struct dw_buf *out)
{
    dw_buf_put_u8(out, (uint8_t)fs->type);
    dw_buf_put_u64(out, fs->count);
    dw_buf_put_u64(out, fs->missing);
    dw_buf_put_f64(out, fs->min);
    dw_buf_put_f64(out, fs->max);
    dw_buf_put_f64(out, fs->mean);
    dw_buf_put_f64(out, fs->m2);
    if (!dropped) {
        dw_buf_put_u64(out, fs->other);
        dw_kll_put(out, fs->sk);
        cats_encode(fs, out);
    }
    dw_buf_put_u64(out, fs->nan);
    dw_buf_put_u64(out, fs->inf);
}

/* The outputs section: u32 its length in bytes, u8 n, n x {u8 output, statistic}. */
static void outputs_encode(const struct dw_agg *agg, struct dw_buf *out)
{
    size_t at = out->len;
    dw_buf_put_u32(out, 0); /* the length, written below */
    dw_buf_put_u8(out, DW_AGG_OUT__COUNT);
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        dw_buf_put_u8(out, (uint8_t)k);
        stat_encode(&agg->out[k], out_dropped(agg, k), out);
    }
    uint32_t len = (uint32_t)(out->len - at - 4);
    for (size_t b = 0; b < 4; b++) {
        out->data[at + b] = (uint8_t)(len >> (8 * b));
    }
}

/* u16 n, then each of the model's features: str name, its statistic (stat_encode). */
static void feats_encode(const struct dw_model_cfg *model, const struct dw_feat_stats *feats,
                         int dropped, struct dw_buf *out)
{
    dw_buf_put_u16(out, (uint16_t)model->n_features);
    for (size_t i = 0; i < model->n_features; i++) {
        const char *name = model->features[i].name;
        dw_buf_put_str(out, name, strlen(name));
        stat_encode(&feats[i], dropped, out);
    }
}

void dw_agg_encode(const struct dw_agg *agg, struct dw_buf *out)
{
    int dropped = agg->sketches_dropped;
    int version_feats = 0;
    for (size_t i = 0; i < agg->n_versions; i++) {
        version_feats |= agg->versions[i].feats != NULL;
    }
    dw_buf_put_u8(out, version_feats ? AGG_CODEC_VERSION : AGG_CODEC_VERSION_V7);
    dw_buf_put_i64(out, agg->start_ms);
    dw_buf_put_u8(
        out, (uint8_t)((dropped ? AGG_FLAG_DROPPED : 0) | (agg->sealed ? AGG_FLAG_SEALED : 0)));
    outputs_encode(agg, out);
    counts_encode(&agg->all, out);
    dw_buf_put_u64(out, agg->served);
    dw_buf_put_u64(out, agg->errors);
    dw_buf_put_u16(out, (uint16_t)agg->n_versions);
    for (size_t i = 0; i < agg->n_versions; i++) {
        const struct dw_version_stats *v = &agg->versions[i];
        dw_buf_put_str(out, v->name, strlen(v->name));
        counts_encode(&v->c, out);
        dw_buf_put_u64(out, v->served);
        dw_buf_put_u64(out, v->errors);
        dw_kll_put(out, v->latency);
        if (version_feats) {
            dw_buf_put_u8(out, v->feats != NULL);
            if (v->feats) {
                feats_encode(agg->model, v->feats, dropped, out);
            }
        }
    }
    dw_buf_put_u64(out, agg->duplicate_labels);
    dw_buf_put_u64(out, agg->conflicts);
    dw_buf_put_u64(out, agg->late_predictions);
    dw_buf_put_u64(out, agg->late_labels);
    dw_perf_encode(&agg->perf, out);
    feats_encode(agg->model, agg->feats, dropped, out);
}

/* Least bytes of a category entry: u32 name length, u8 flags, u64 count (version 2: no flags). */
#define CAT_ENTRY_MIN_BYTES 13
#define CAT_ENTRY_V2_MIN_BYTES 12
/* Bytes of a name shown in an error message (bytes). */
#define NAME_SHOWN 40

/* The name as printf's "%.*s" arguments, cut to NAME_SHOWN bytes. */
#define SHOWN(len) ((int)DW_MIN((len), (size_t)NAME_SHOWN))

/*
 * Version 2 categories: exact counts and an "other" without counters. They go through
 * cat_add (so a smaller bound spills into SpaceSaving); the old "other" stays unattributed
 * overflow, which no counter covers (docs/sketches.md). The counts and other must add up to
 * the feature's count, checked as they are read, so that no sum wraps around.
 */
static void cats_decode_v2(struct dw_feat_stats *fs, struct dw_reader *rd, int keep, uint64_t other)
{
    uint32_t n_cats = dw_rd_count(rd, CAT_ENTRY_V2_MIN_BYTES, "categories");
    if (!rd->err && fs->type == DW_FEATURE_NUMERIC && n_cats > 0) {
        dw_rd_fail(rd, "a numeric feature with %u categories", n_cats);
    }
    if (keep && other > fs->count) {
        dw_rd_fail(rd, "other %llu exceeds count %llu", (unsigned long long)other,
                   (unsigned long long)fs->count);
    }
    uint64_t sum = other;
    for (uint32_t c = 0; c < n_cats && !rd->err; c++) {
        const char *cname;
        size_t clen = dw_rd_name(rd, &cname, "category");
        uint64_t cnt = dw_rd_u64(rd);
        if (rd->err || !keep) {
            continue;
        }
        if (cat_find(fs, cname, clen) != CAT_NONE) {
            dw_rd_fail(rd, "category \"%.*s\" appears twice", SHOWN(clen), cname);
        } else if (dw_u64_add(&sum, cnt) != 0 || sum > fs->count) {
            dw_rd_fail(rd, "categories count more than the feature's %llu values",
                       (unsigned long long)fs->count);
        } else if (cnt > 0) {
            cat_add(fs, cname, clen, cnt);
        }
    }
    if (keep && !rd->err) {
        if (sum != fs->count) {
            dw_rd_fail(rd, "categories and other add up to %llu, count is %llu",
                       (unsigned long long)sum, (unsigned long long)fs->count);
        }
        fs->hh_total += other;
        fs->other += other;
    }
}

/* One category entry of version 3: its fields against each other and the summary's. */
static void cat_entry_check(struct dw_reader *rd, const char *name, size_t len, uint8_t flags,
                            uint64_t count, uint64_t hh, uint64_t hh_err, uint64_t hh_floor)
{
    uint64_t rep = (flags & DW_CAT_REPORTED) ? hh : 0;
    if ((flags & ~(DW_CAT_EXACT | DW_CAT_MONITORED | DW_CAT_REPORTED)) ||
        !(flags & (DW_CAT_EXACT | DW_CAT_MONITORED)) ||
        ((flags & DW_CAT_REPORTED) && !(flags & DW_CAT_MONITORED))) {
        dw_rd_fail(rd, "category \"%.*s\": invalid flags 0x%02x", SHOWN(len), name, flags);
    } else if ((flags & DW_CAT_MONITORED) && (hh == 0 || hh_err > hh || hh_err > hh_floor)) {
        dw_rd_fail(rd, "category \"%.*s\": counter %llu with error %llu (error floor %llu)",
                   SHOWN(len), name, (unsigned long long)hh, (unsigned long long)hh_err,
                   (unsigned long long)hh_floor);
    } else if (count < rep || (!(flags & DW_CAT_EXACT) && count != rep)) {
        /* a counter's count is its reported estimate; an exact entry adds its exact part */
        dw_rd_fail(rd, "category \"%.*s\": count %llu does not match its counter %llu", SHOWN(len),
                   name, (unsigned long long)count, (unsigned long long)rep);
    }
}

/*
 * Version 3 categories: the table restored entry by entry, then checked for consistency. Every
 * count is checked as it is read (no sum wraps around, no table or heap grows past the
 * summary's bound and counters), so a corrupt entry is refused before it is inserted.
 */
static void cats_decode_v3(struct dw_feat_stats *fs, struct dw_reader *rd, int keep, uint64_t other)
{
    uint32_t bound = dw_rd_u32(rd), hh_cap = dw_rd_u32(rd);
    uint64_t hh_total = dw_rd_u64(rd), hh_floor = dw_rd_u64(rd);
    uint32_t n_cats = dw_rd_count(rd, CAT_ENTRY_MIN_BYTES, "categories");
    if (rd->err) {
        return;
    }
    if (bound < 1 || bound > DW_AGG_CATEGORIES_LIMIT || hh_cap < 1 || hh_cap > bound) {
        dw_rd_fail(rd, "bound %u with %u counters (want 1 <= counters <= bound <= %u)", bound,
                   hh_cap, DW_AGG_CATEGORIES_LIMIT);
        return;
    }
    if (fs->type == DW_FEATURE_NUMERIC && (n_cats > 0 || hh_total > 0)) {
        dw_rd_fail(rd, "a numeric feature with %u categories", n_cats);
        return;
    }
    if ((uint64_t)n_cats > (uint64_t)bound + hh_cap) {
        dw_rd_fail(rd, "%u categories, more than its bound %u plus %u counters", n_cats, bound,
                   hh_cap);
        return;
    }
    /* The summary's bounds (dw_agg.h): other and the error floor within the overflow. */
    if (other > hh_total || hh_floor > hh_total / hh_cap) {
        dw_rd_fail(rd,
                   "other %llu or error floor %llu do not fit %llu overflow values over %u "
                   "counters",
                   (unsigned long long)other, (unsigned long long)hh_floor,
                   (unsigned long long)hh_total, hh_cap);
        return;
    }
    if (keep) {
        fs->bound = bound;
        fs->hh_cap = hh_cap;
        fs->hh_total = hh_total;
        fs->hh_floor = hh_floor;
        fs->other = other;
    }
    uint64_t exact_sum = 0, reported = 0, hh_sum = 0;
    for (uint32_t i = 0; i < n_cats && !rd->err; i++) {
        const char *cname;
        size_t clen = dw_rd_name(rd, &cname, "category");
        uint8_t flags = dw_rd_u8(rd);
        uint64_t count = dw_rd_u64(rd), hh = 0, hh_err = 0;
        if (flags & DW_CAT_MONITORED) {
            hh = dw_rd_u64(rd);
            hh_err = dw_rd_u64(rd);
        }
        if (rd->err) {
            break;
        }
        cat_entry_check(rd, cname, clen, flags, count, hh, hh_err, hh_floor);
        if (rd->err || !keep) {
            continue;
        }
        uint64_t rep = (flags & DW_CAT_REPORTED) ? hh : 0;
        if (cat_find(fs, cname, clen) != CAT_NONE) {
            dw_rd_fail(rd, "category \"%.*s\" appears twice", SHOWN(clen), cname);
        } else if ((flags & DW_CAT_EXACT) && fs->n_exact >= bound) {
            dw_rd_fail(rd, "more exact categories than its bound %u", bound);
        } else if ((flags & DW_CAT_MONITORED) && fs->n_hh >= hh_cap) {
            dw_rd_fail(rd, "more counters than its %u", hh_cap);
        } else if (dw_u64_add(&exact_sum, count - rep) != 0 || dw_u64_add(&reported, rep) != 0 ||
                   dw_u64_add(&hh_sum, hh) != 0) {
            dw_rd_fail(rd, "category \"%.*s\": counts overflow", SHOWN(clen), cname);
        }
        if (rd->err) {
            continue;
        }
        size_t slot = cat_insert(fs, cname, clen);
        struct dw_category *c = &fs->cats[slot];
        c->flags = flags;
        c->count = count;
        c->hh = hh;
        c->hh_err = hh_err;
        fs->n_exact += (flags & DW_CAT_EXACT) != 0;
        if (flags & DW_CAT_MONITORED) {
            heap_push(fs, slot);
        }
    }
    /* The totals the encoder guarantees: exact + overflow = count, other = overflow - reported,
     * counters sum to at most the overflow, and a floor only once every counter is taken
     * (written without sums that could wrap around). */
    if (keep && fs->type == DW_FEATURE_CATEGORICAL && !rd->err &&
        (hh_total > fs->count || exact_sum != fs->count - hh_total ||
         reported != hh_total - other || hh_sum > hh_total ||
         (hh_floor > 0 && fs->n_hh != hh_cap))) {
        dw_rd_fail(rd,
                   "categories do not add up: exact %llu + overflow %llu against count %llu, "
                   "reported %llu + other %llu, counters %llu",
                   (unsigned long long)exact_sum, (unsigned long long)hh_total,
                   (unsigned long long)fs->count, (unsigned long long)reported,
                   (unsigned long long)other, (unsigned long long)hh_sum);
    }
}

/* A numeric feature's count, min and max against its sketch (they are updated together). */
static void numeric_check(const struct dw_feat_stats *fs, struct dw_reader *rd)
{
    uint64_t n = fs->sk ? dw_kll_count(fs->sk) : 0;
    if (n != fs->count) {
        dw_rd_fail(rd, "its sketch holds %llu values, its count is %llu", (unsigned long long)n,
                   (unsigned long long)fs->count);
    } else if (n > 0 && (dw_kll_min(fs->sk) != fs->min || dw_kll_max(fs->sk) != fs->max)) {
        dw_rd_fail(rd, "min %g / max %g differ from its sketch's %g / %g", fs->min, fs->max,
                   dw_kll_min(fs->sk), dw_kll_max(fs->sk));
    } else if (n == 0 && !(fs->min == INFINITY && fs->max == -INFINITY)) {
        dw_rd_fail(rd, "min %g / max %g without a value", fs->min, fs->max);
    }
}

/* A numeric feature without its sketch: min and max say whether it has values. */
static void bounds_check(const struct dw_feat_stats *fs, struct dw_reader *rd)
{
    int none = fs->min == INFINITY && fs->max == -INFINITY;
    if (fs->type == DW_FEATURE_NUMERIC && (fs->count == 0) != none) {
        dw_rd_fail(rd, "min %g / max %g with %llu values", fs->min, fs->max,
                   (unsigned long long)fs->count);
    } else if (fs->type == DW_FEATURE_NUMERIC && !none && !(fs->min <= fs->max)) {
        dw_rd_fail(rd, "min %g above max %g", fs->min, fs->max);
    }
}

/* The counts of non-finite values (versions 4 and 5). */
static void nonfinite_decode(struct dw_feat_stats *fs, struct dw_reader *rd)
{
    fs->nan = dw_rd_u64(rd);
    fs->inf = dw_rd_u64(rd);
    /* a categorical feature's NaN is a category: only numeric ones count them */
    if (!rd->err && fs->type != DW_FEATURE_NUMERIC && (fs->nan || fs->inf)) {
        dw_rd_fail(rd, "a categorical feature with NaN or infinite values");
    }
}

/* keep 0: a feature the model no longer has; its sketch is skipped, not deserialised.
 * dropped: the aggregate's sketches were dropped (version 5 flag): counts and moments only. */
static void feat_decode(struct dw_feat_stats *fs, struct dw_reader *rd, int keep, int version,
                        int dropped)
{
    fs->count = dw_rd_u64(rd);
    fs->missing = dw_rd_u64(rd);
    fs->min = dw_rd_f64(rd);
    fs->max = dw_rd_f64(rd);
    fs->mean = dw_rd_f64(rd);
    fs->m2 = dw_rd_f64(rd);
    if (dropped) {
        if (!rd->err) {
            bounds_check(fs, rd);
        }
        nonfinite_decode(fs, rd);
        return;
    }
    uint64_t other = dw_rd_u64(rd);
    if (keep) {
        dw_kll_get(rd, &fs->sk);
    } else {
        dw_rd_bytes(rd, dw_rd_u32(rd));
    }
    if (rd->err) {
        return;
    }
    if (fs->type == DW_FEATURE_NUMERIC && other > 0) {
        dw_rd_fail(rd, "a numeric feature with %llu values in other", (unsigned long long)other);
    } else if (keep && fs->type == DW_FEATURE_NUMERIC) {
        numeric_check(fs, rd);
    } else if (fs->sk) {
        dw_rd_fail(rd, "a categorical feature with a sketch");
    }
    int cats = keep && fs->type == DW_FEATURE_CATEGORICAL;
    if (version == AGG_CODEC_VERSION_V2) {
        cats_decode_v2(fs, rd, cats, other);
    } else {
        cats_decode_v3(fs, rd, cats, other);
    }
    if (version >= AGG_CODEC_VERSION_V4) {
        nonfinite_decode(fs, rd);
    }
}

/* Names of the outputs in error messages, indexed by enum dw_agg_out. */
static const char *const out_names[DW_AGG_OUT__COUNT] = {
    "score of the positive class", "score of the other classes", "predicted class", "label"};

/* The outputs section (outputs_encode); an output of another type than the model's (its task
 * changed) is read and left out, as a feature is. *where names the output being read. */
static void outputs_decode(struct dw_agg *agg, struct dw_reader *rd, int version, char *where,
                           size_t where_size)
{
    uint32_t len = dw_rd_u32(rd);
    size_t begin = rd->pos;
    uint8_t n = dw_rd_u8(rd), seen = 0;
    for (uint8_t i = 0; i < n && !rd->err; i++) {
        uint8_t k = dw_rd_u8(rd), type = dw_rd_u8(rd);
        if (rd->err) {
            break;
        }
        if (k >= DW_AGG_OUT__COUNT || (seen & (1u << k))) {
            dw_rd_fail(rd, "output %u unknown or read twice", k);
            break;
        }
        snprintf(where, where_size, "output %s", out_names[k]);
        if (type != DW_FEATURE_NUMERIC && type != DW_FEATURE_CATEGORICAL) {
            dw_rd_fail(rd, "unknown type %u", type);
            break;
        }
        seen |= (uint8_t)(1u << k);
        struct dw_feat_stats scratch = {.type = (enum dw_feature_type)type};
        struct dw_feat_stats *fs = agg->out[k].type == type ? &agg->out[k] : &scratch;
        feat_decode(fs, rd, fs != &scratch, version, out_dropped(agg, k));
        stat_sketch_free(&scratch);
    }
    if (!rd->err && rd->pos - begin != len) {
        dw_rd_fail(rd, "%zu bytes where the section says %u", rd->pos - begin, len);
    }
}

/*
 * What feats_encode wrote, into the model's feats (made by feats_new): features the model does
 * not have, or has with another type, are read and skipped. `where` names the feature being
 * read, for the error message.
 */
static void feats_decode(const struct dw_model_cfg *model, struct dw_feat_stats *feats,
                         struct dw_reader *rd, int version, int dropped, char *where,
                         size_t where_size)
{
    uint16_t n_features = dw_rd_u16(rd);
    /* a feature of the model read twice would be restored twice over (table, heap, sketch) */
    uint8_t *seen = dw_calloc(model->n_features ? model->n_features : 1, 1);
    for (uint16_t i = 0; i < n_features && !rd->err; i++) {
        const char *name;
        size_t nlen = dw_rd_name(rd, &name, "feature");
        uint8_t type = dw_rd_u8(rd);
        if (rd->err) {
            break;
        }
        snprintf(where, where_size, "feature %.*s", SHOWN(nlen), name);
        if (type != DW_FEATURE_NUMERIC && type != DW_FEATURE_CATEGORICAL) {
            dw_rd_fail(rd, "unknown type %u", type);
            break;
        }
        long idx = dw_model_feature_index(model, name, nlen);
        if (idx >= 0 && seen[idx]) {
            dw_rd_fail(rd, "appears twice");
            break;
        }
        struct dw_feat_stats scratch = {.type = (enum dw_feature_type)type};
        struct dw_feat_stats *fs = &scratch;
        if (idx >= 0) {
            seen[idx] = 1;
            if (feats[idx].type == (enum dw_feature_type)type) {
                fs = &feats[idx];
            }
        }
        feat_decode(fs, rd, fs != &scratch, version, dropped);
        if (fs == &scratch) {
            cats_free(&scratch);
            dw_kll_destroy(scratch.sk);
        }
    }
    free(seen);
}

struct dw_agg *dw_agg_decode(const struct dw_model_cfg *model, const void *data, size_t len,
                             char *errstr, size_t errstr_size)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    uint8_t version = dw_rd_u8(&rd);
    if (version < AGG_CODEC_VERSION_V2 || version > AGG_CODEC_VERSION) {
        dw_err(errstr, errstr_size, "window aggregate: unknown encoding version %u%s", version,
               rd.err ? " (empty)" : "");
        return NULL;
    }
    struct dw_agg *agg = dw_agg_new(model, dw_rd_i64(&rd));
    char where[96] = "header"; /* the part being read, for the error message */
    uint8_t flags = version >= AGG_CODEC_VERSION_V5 ? dw_rd_u8(&rd) : 0;
    if (!rd.err && (flags & ~(AGG_FLAG_DROPPED | AGG_FLAG_SEALED))) {
        dw_rd_fail(&rd, "unknown flags 0x%x", flags);
    }
    if (!rd.err && (flags & AGG_FLAG_SEALED) && !(flags & AGG_FLAG_DROPPED)) {
        dw_rd_fail(&rd, "sealed with its sketches (flags 0x%x)", flags);
    }
    agg->sketches_dropped = (flags & AGG_FLAG_DROPPED) != 0;
    agg->sealed = (flags & AGG_FLAG_SEALED) != 0;
    if (version >= AGG_CODEC_VERSION_V6 && !rd.err) {
        snprintf(where, sizeof(where), "outputs");
        outputs_decode(agg, &rd, version, where, sizeof(where));
        if (!rd.err) {
            snprintf(where, sizeof(where), "counts");
        }
    }
    counts_decode(&agg->all, &rd);
    if (version >= AGG_CODEC_VERSION_V7) {
        serving_decode(&rd, agg->all.predictions, &agg->served, &agg->errors);
    }
    uint16_t n_versions = dw_rd_u16(&rd);
    if (!rd.err && n_versions > DW_AGG_MAX_VERSIONS + 1) {
        dw_rd_fail(&rd, "%u model versions, at most %d are kept", n_versions,
                   DW_AGG_MAX_VERSIONS + 1);
    }
    for (uint16_t i = 0; i < n_versions && !rd.err; i++) {
        const char *name;
        size_t nlen = dw_rd_name(&rd, &name, "model version");
        struct dw_version_stats v = {0};
        snprintf(where, sizeof(where), "model version %.*s", SHOWN(nlen), name);
        counts_decode(&v.c, &rd);
        if (version >= AGG_CODEC_VERSION_V7) {
            serving_decode(&rd, v.c.predictions, &v.served, &v.errors);
            dw_kll_get(&rd, &v.latency);
        }
        if (version >= AGG_CODEC_VERSION && dw_rd_u8(&rd) && !rd.err) {
            v.feats = feats_new(model);
            feats_decode(model, v.feats, &rd, version, agg->sketches_dropped, where, sizeof(where));
        }
        if (!rd.err) {
            /* a name seen twice adds up: the overflow bucket may share a version's name; a
             * version read first takes its statistics as read (a merge would rebuild them) */
            size_t n_before = agg->n_versions;
            size_t slot = dw_agg_version_slot(agg, name, nlen);
            struct dw_version_stats *dst = &agg->versions[slot];
            if (agg->n_versions > n_before && v.feats) {
                feats_free(dst->feats, model->n_features);
                dst->feats = v.feats;
                v.feats = NULL;
            }
            version_merge(agg, name, nlen, &v);
        }
        dw_kll_destroy(v.latency);
        feats_free(v.feats, model->n_features);
    }
    if (!rd.err) {
        snprintf(where, sizeof(where), "counters");
    }
    agg->duplicate_labels = dw_rd_u64(&rd);
    agg->conflicts = dw_rd_u64(&rd);
    agg->late_predictions = dw_rd_u64(&rd);
    agg->late_labels = dw_rd_u64(&rd);
    if (!rd.err) {
        snprintf(where, sizeof(where), "performance");
    }
    dw_perf_decode(&agg->perf, &rd);
    feats_decode(model, agg->feats, &rd, version, agg->sketches_dropped, where, sizeof(where));
    if (!rd.err && rd.pos != rd.len) {
        snprintf(where, sizeof(where), "end");
        dw_rd_fail(&rd, "%zu bytes after the last feature", rd.len - rd.pos);
    }
    if (rd.err) {
        dw_err(errstr, errstr_size, "window aggregate (version %u), %s: %s", version, where,
               rd.msg);
        dw_agg_free(agg);
        return NULL;
    }
    agg->dirty = 0;
    return agg;
}

static json_t *counts_to_json(const struct dw_counts *c, uint64_t served, uint64_t errors)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "predictions", (json_int_t)c->predictions, "labeled",
                     (json_int_t)c->labeled, "correct", (json_int_t)c->correct, "served",
                     (json_int_t)served, "errors", (json_int_t)errors);
}

json_t *dw_agg_to_json(const struct dw_agg *agg)
{
    char ts[40];
    dw_time_format_rfc3339(agg->start_ms, ts, sizeof(ts));
    json_t *obj = counts_to_json(&agg->all, agg->served, agg->errors);
    json_object_set_new(obj, "model", json_string(agg->model->name));
    json_object_set_new(obj, "window_start", json_string(ts));
    json_object_set_new(obj, "window_start_ms", json_integer(agg->start_ms));
    json_object_set_new(obj, "duplicate_labels", json_integer((json_int_t)agg->duplicate_labels));
    json_object_set_new(obj, "conflicts", json_integer((json_int_t)agg->conflicts));
    json_object_set_new(obj, "late_predictions", json_integer((json_int_t)agg->late_predictions));
    json_object_set_new(obj, "late_labels", json_integer((json_int_t)agg->late_labels));
    json_t *versions = json_object();
    for (size_t i = 0; i < agg->n_versions; i++) {
        const struct dw_version_stats *v = &agg->versions[i];
        json_object_set_new(versions, v->name, counts_to_json(&v->c, v->served, v->errors));
    }
    json_object_set_new(obj, "versions", versions);
    json_t *feats = json_object();
    for (size_t i = 0; i < agg->model->n_features; i++) {
        const struct dw_feat_stats *fs = &agg->feats[i];
        json_t *f = json_pack("{s:I,s:I}", "count", (json_int_t)fs->count, "missing",
                              (json_int_t)fs->missing);
        if (fs->type == DW_FEATURE_NUMERIC) {
            json_object_set_new(f, "nan", json_integer((json_int_t)fs->nan));
            json_object_set_new(f, "inf", json_integer((json_int_t)fs->inf));
        }
        json_object_set_new(feats, agg->model->features[i].name, f);
    }
    json_object_set_new(obj, "features", feats);
    if (agg->sketches_dropped) {
        json_object_set_new(obj, "sketches_dropped", json_true());
    }
    return obj;
}

char *dw_agg_to_text(const struct dw_agg *agg)
{
    json_t *obj = dw_agg_to_json(agg);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    return text;
}
