/*
 * dw_agg.h - the aggregate of one (model, window) on one partition, or merged across
 * partitions. Plain structs, no I/O.
 *
 * An aggregate counts predictions and their joined labels (overall and per model version),
 * the predictions' serving status (served and errors, overall and per version; a version's
 * latency sketch too), duplicate and late events, and per feature: count, missing, NaN and infinite
 * values (numeric features; counted apart, never in count, moments or sketch), Welford moments,
 * min/max and, for categorical features, a category table: exact counts for the first `bound`
 * distinct values (models.<m>.max_categories, default DW_AGG_MAX_CATEGORIES), then a SpaceSaving
 * summary of `bound` counters over the later ("overflow") values, and an "other" bucket. Everything
 * is mergeable (counts add, moments merge with the parallel formula of Chan et al., SpaceSaving
 * summaries with the mergeable-summaries rule of Agarwal et al.), so the evaluator merges
 * partitions and windows without going back to events.
 *
 * The model's outputs are counted like features (struct dw_feat_stats, the same sketches,
 * tables, merge and encoding), in agg->out[]: every prediction's score (when it carries one),
 * split by predicted class (predicted positive, i.e. the model's positive_class, or not: the
 * label-free estimate of dw_cbpe needs the split, their merge is the score distribution), its
 * predicted class (regression: the predicted value, numeric), and every joined label
 * (regression: numeric). The label's statistics keep their sketch and table when the others
 * are dropped (dw_agg_drop_sketches): labels arrive until the label horizon, and the label
 * drift is judged on the final report.
 *
 * Categorical guarantees (docs/sketches.md, "Categorical sketch"), with N_over the number of
 * overflow values (fs->hh_total) and k the counters (fs->hh_cap):
 * - totals are exact: the sum of `count` over the table plus `other` equals `fs->count`, the
 *   non-missing values; no value is counted twice.
 * - an exact entry (DW_CAT_EXACT) counts its value exactly (in one stream; after a merge it
 *   also carries the other side's heavy-hitter estimate, see below);
 * - a reported heavy hitter (DW_CAT_REPORTED) has count - hh_err <= true <= count and
 *   hh_err <= hh_floor <= N_over / k; every late category whose true count exceeds
 *   fs->count / k is reported; everything else of the overflow is in `other`.
 */
#ifndef DW_AGG_H
#define DW_AGG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_kll.h"
#include "driftwatch/core/dw_perf.h"

#define DW_AGG_MAX_VERSIONS 16           /* versions tracked per window; more fold into "other" */
#define DW_AGG_MAX_CATEGORIES 1000       /* default exact categories (max_categories = 0) */
#define DW_AGG_CATEGORIES_LIMIT 100000   /* largest bound (categories; as the config allows) */
#define DW_AGG_OTHER "__other__"         /* name of the version/category overflow bucket */
#define DW_AGG_SKETCH_K DW_KLL_DEFAULT_K /* KLL accuracy parameter of per-window sketches */
#define DW_AGG_SKETCH_EXACT 1024         /* values kept exactly per window before sketching */
#define DW_AGG_MERGE_EXACT (1u << 20)    /* exact capacity of merged (evaluation) aggregates */

/** @brief Performance counts of joined predictions (classification and regression). */
struct dw_counts {
    uint64_t predictions;
    uint64_t labeled;
    uint64_t correct;
    uint64_t tp, fp, tn, fn; /* binary view: positive = the model's positive_class */
    uint64_t scored;         /* labeled predictions that carried a score */
    double sum_brier;        /* Σ (score - y)^2 over scored */
    double sum_logloss;      /* Σ -[y ln p + (1-y) ln(1-p)], p clipped to [1e-15, 1-1e-15] */
    uint64_t regressed;      /* labeled predictions with numeric prediction and label */
    double sum_abs_err, sum_sq_err, sum_label, sum_label_sq;
    double sum_ape; /* Σ |e| / max(|y|, DBL_EPSILON), sklearn's MAPE */
};

/** @brief One model version's evidence in a window: counts, serving status and latency. */
struct dw_version_stats {
    char *name;
    struct dw_counts c;
    uint64_t served;        /* predictions that carried a serving status (input.fields.status) */
    uint64_t errors;        /* of them, statuses in input.error_values (errors <= served) */
    struct dw_kll *latency; /* latency_ms of the version's predictions (created on the first
                             * value; dropped with the sketches, like perf.latency) */
    struct dw_feat_stats *feats; /* model->n_features of the version's predictions when the
                                  * model has version_features, else NULL */
};

#define DW_CAT_EXACT 0x1     /* one of the first `bound` distinct values: counted exactly */
#define DW_CAT_MONITORED 0x2 /* holds a SpaceSaving counter (hh, hh_err) */
#define DW_CAT_REPORTED 0x4  /* the counter is reported: included in count, not in other */

struct dw_category {
    char *name;
    uint64_t count;  /* reported count: exact part + (REPORTED ? hh : 0); 0 = not reported */
    uint64_t hh;     /* SpaceSaving counter (MONITORED): over-estimate of the overflow values */
    uint64_t hh_err; /* hh - hh_err <= true overflow count <= hh */
    uint32_t heap;   /* 1 + position in the counters' min-heap (0: not monitored) */
    uint8_t flags;   /* DW_CAT_* */
};

struct dw_feat_stats {
    /* What a value's update touches comes first (numeric: the first 56 bytes; categorical: the
     * first 8 and the table's fields after the moments): a window's statistics are many and
     * cold, and each event updates every one of its model's. */
    enum dw_feature_type type;
    uint32_t reserve; /* values the sketch is created with room for (dw_agg_size_like) */
    uint64_t count;   /* non-missing values; numeric: the finite ones (in moments and sketch) */
    /* numeric */
    struct dw_kll *sk; /* quantile sketch of the values (created on the first value) */
    double mean, m2, min, max;
    /* categorical: open-addressing table of cat_cap slots (a power of two, grown as categories
     * arrive, load factor at most 1/2, so at most dw_agg_cat_slots(bound) slots); iterate
     * slots 0..cat_cap-1 with a non-NULL name; entries with count 0 are unreported counters */
    struct dw_category *cats;
    size_t cat_cap;    /* slots */
    size_t n_exact;    /* DW_CAT_EXACT entries, at most bound */
    size_t n_cats;     /* entries: exact ones plus monitored ones */
    uint64_t missing;  /* null or absent */
    uint64_t nan;      /* numeric: NaN values (input.non_finite = count), not in count */
    uint64_t inf;      /* numeric: +inf and -inf values, not in count */
    size_t n_hh;       /* DW_CAT_MONITORED entries, at most hh_cap */
    uint32_t bound;    /* exact categories (the model's max_categories when created) */
    uint32_t hh_cap;   /* SpaceSaving counters k (= bound; the smaller one after merges) */
    uint32_t *hh_heap; /* slots of the monitored entries, min-heap by (hh, name) */
    uint64_t hh_total; /* N_over: values that went through SpaceSaving (not exact) */
    uint64_t hh_floor; /* error floor: every counter's hh_err and every unmonitored late
                        * category's overflow count are at most this; <= N_over / hh_cap */
    uint64_t other;    /* overflow values not in a reported counter: hh_total - sum of
                        * reported hh (the long tail, "__other__") */
};

/** @brief The model's outputs counted like features (struct dw_agg's out[]). */
enum dw_agg_out {
    DW_AGG_OUT_SCORE_POS, /* numeric: scores of predictions of the positive class */
    DW_AGG_OUT_SCORE_NEG, /* numeric: scores of the other predictions */
    DW_AGG_OUT_PRED,      /* predicted class (categorical); regression: the value (numeric) */
    DW_AGG_OUT_LABEL,     /* joined labels, as DW_AGG_OUT_PRED; kept by dw_agg_drop_sketches */
    DW_AGG_OUT__COUNT
};

struct dw_agg {
    const struct dw_model_cfg *model;
    int64_t start_ms;
    struct dw_counts all;
    uint64_t served; /* predictions with a serving status, every version (the sum of theirs) */
    uint64_t errors; /* of them, errors */
    /* n_versions slots, allocated as versions appear (a window holds one or two, and a partition
     * holds a window per L until the label horizon: a fixed array of DW_AGG_MAX_VERSIONS + 1
     * was 2.8 KB of each); at most DW_AGG_MAX_VERSIONS + 1, the last then "__other__". A new
     * version may move the array: take &versions[slot] after dw_agg_version_slot(). */
    struct dw_version_stats *versions;
    size_t n_versions;
    uint64_t duplicate_labels;   /* label events beyond the first for this window's predictions */
    uint64_t conflicts;          /* duplicates whose label differs from the first */
    uint64_t late_predictions;   /* predictions that arrived after the window closed */
    uint64_t late_labels;        /* labels that arrived after the label horizon */
    struct dw_feat_stats *feats; /* model->n_features */
    struct dw_feat_stats out[DW_AGG_OUT__COUNT]; /* scores, predicted class, labels */
    struct dw_perf perf;                         /* confusion by class, scores by class, latency */
    uint32_t sketch_exact;                       /* values a new feature sketch keeps exactly */
    int sketches_dropped; /* dw_agg_drop_sketches(): feature counts and moments only */
    int dirty;            /* changed since the last checkpoint */
    /* Sealed (dw_agg_seal): the partition's watermark passed the window, so no prediction
     * changes its features here any more; its sketches were dropped from memory and live in
     * the record's sealed copy until the close evaluation has merged them. */
    int sealed;
    struct dw_buf seal_blob; /* the whole encoding at the seal, until a checkpoint wrote it */
    int seal_gone;           /* merged by the close: the sealed copy is to be deleted */
};

/** @brief What a joined (prediction, label) pair contributes. */
struct dw_outcome {
    const char *pred;  /* class text; NULL for a regression model's number */
    const char *label; /* class text; NULL for a regression model's number */
    int pred_is_num, label_is_num;
    double pred_num, label_num;
    int has_score;
    double score;
};

/** @returns the exact-category bound of model (max_categories, 0 meaning the default). */
uint32_t dw_agg_max_categories(const struct dw_model_cfg *model);

/** @returns the largest category table for a bound: bound exact entries plus bound counters
 *           at a load factor below 1/2 (slots, a power of two). */
size_t dw_agg_cat_slots(uint32_t bound);

struct dw_agg *dw_agg_new(const struct dw_model_cfg *model, int64_t start_ms);

/**
 * @brief An aggregate whose sketches stay exact up to `exact` values: for merged views
 *        (partitions of a window, reference windows, training data), so that merging exact
 *        sketches stays exact. Per-partition windows use DW_AGG_SKETCH_EXACT.
 */
struct dw_agg *dw_agg_new_exact(const struct dw_model_cfg *model, int64_t start_ms, uint32_t exact);

/**
 * @brief Sizes the sketches agg will create for as many values as prev's statistics counted
 *        (prev: the same model's window before agg, in the same partition or merged like agg,
 *        whose traffic is the best guess of agg's; its sketches may be dropped). Sketches grown
 *        by doubling from 16 items were reallocated five times each in the 1M bench, 2.5 % of
 *        the event loop's samples, most of it in malloc. The results do not depend on it.
 */
void dw_agg_size_like(struct dw_agg *agg, const struct dw_agg *prev);
void dw_agg_free(struct dw_agg *agg);

/**
 * @brief Frees every feature's quantile sketch and category table and the latency sketches (the
 *        model's and each version's), keeping the counts (count, missing, nan, inf, served,
 *        errors) and the moments: what a partition keeps of a window whose features
 *        the close evaluation has merged. No prediction may be added afterwards.
 */
void dw_agg_drop_sketches(struct dw_agg *agg);

/**
 * @brief Seals a window whose features no prediction changes any more on this partition: its
 *        whole encoding goes to agg->seal_blob (for the checkpoint to store apart) and its
 *        sketches are dropped (dw_agg_drop_sketches); agg->sealed is set, which its encoding
 *        says. Labels keep changing what they change. Not for a window already dropped.
 */
void dw_agg_seal(struct dw_agg *agg);

/**
 * @brief The close evaluation has merged the window: its sketches are dropped if they are not
 *        yet, and a sealed window's sealed copy is no longer needed (agg->seal_gone, its pending
 *        blob freed). @returns 1 when agg changed (to be written again), 0 when not.
 */
int dw_agg_merged(struct dw_agg *agg);

/**
 * @brief Puts back into a sealed record (dst, decoded from the record) the sketches of its
 *        sealed copy (src, decoded from the seal's encoding): features, outputs but the label,
 *        latency sketches and each version's features, moved out of src. Their counts must
 *        agree (nothing was added to them since the seal). Afterwards dst is what one record
 *        holding everything would have decoded to.
 * @returns 0, or -1 with errstr when the two do not belong together.
 */
int dw_agg_unseal(struct dw_agg *dst, struct dw_agg *src, char *errstr, size_t errstr_size);

/** @returns the version slot for name (creating it; "__other__" beyond the bound). */
size_t dw_agg_version_slot(struct dw_agg *agg, const char *name, size_t len);

/**
 * @brief Counts a prediction and its feature values into version slot vslot. In a window whose
 *        sketches were dropped (merged, dw_agg_drop_sketches) only the counts and moments take
 *        it, not the sketches, category tables and latency: a partition replaying after a
 *        rebuild (dw_part.h, replay_upto_ms) adds what the merged aggregate holds already.
 *        Never into a sealed window.
 */
void dw_agg_add_prediction(struct dw_agg *agg, size_t vslot, const struct dw_prediction *ev);

/** @brief Counts a joined label for a prediction of version slot vslot. */
void dw_agg_add_outcome(struct dw_agg *agg, size_t vslot, const struct dw_outcome *o);

/**
 * @brief Counts a label into the labels' distribution only (dw_agg_add_outcome counts a joined
 *        label there too): its class text, or its number for a regression model (text NULL).
 *        For labels without a prediction to join, as a training profile's.
 */
void dw_agg_add_label(struct dw_agg *agg, const char *text, double num);

/**
 * @brief Adds src into dst (same model; versions and categories matched by name). Exact
 *        categories add exactly while dst has room for them; the rest, and both SpaceSaving
 *        summaries, merge with the rule of Agarwal et al. (docs/sketches.md).
 */
void dw_agg_merge(struct dw_agg *dst, const struct dw_agg *src);

/**
 * @brief dw_agg_merge() in parts: everything but the features (counts, versions, outputs)...
 */
void dw_agg_merge_counts(struct dw_agg *dst, const struct dw_agg *src);
/** @brief ...and feature f (merged after dw_agg_merge_counts() of the same src). */
void dw_agg_merge_feature(struct dw_agg *dst, const struct dw_agg *src, size_t f);

/**
 * @brief Version `slot` of agg as an aggregate of its own (exact up to DW_AGG_MERGE_EXACT, like
 *        merged views): the version's counts as the window's, its feature statistics as the
 *        window's features (none when it has none), no outputs. What a version's own reference
 *        is built from (reference.per_version).
 */
struct dw_agg *dw_agg_version_view(const struct dw_agg *agg, size_t slot);

/** @brief Appends the versioned binary encoding (names, not indices, so config may change). */
void dw_agg_encode(const struct dw_agg *agg, struct dw_buf *out);

/**
 * @brief Decodes an aggregate for model (features matched by name; unknown ones dropped).
 * @returns NULL with errstr on a corrupt buffer.
 */
struct dw_agg *dw_agg_decode(const struct dw_model_cfg *model, const void *data, size_t len,
                             char *errstr, size_t errstr_size);

/** @brief Counts as JSON: predictions, labeled, correct, ..., versions, features. */
json_t *dw_agg_to_json(const struct dw_agg *agg);

/** @returns dw_agg_to_json() as one compact line with sorted keys (malloc'd): what `inspect`
 *           prints of a window, and what the final evaluation stores as its summary. */
char *dw_agg_to_text(const struct dw_agg *agg);

/** @returns the type of output k of model m: the scores are numeric, the predicted class and
 *           the label categorical (numeric for a regression model). */
enum dw_feature_type dw_agg_out_type(const struct dw_model_cfg *m, enum dw_agg_out k);

/**
 * @brief The score distribution of agg (both score statistics merged) into *fs, a numeric
 *        statistic initialised here; free with dw_feat_stats_free(). Its sketch is NULL when
 *        the scores' sketches were dropped (their counts and moments stay).
 */
void dw_agg_scores(const struct dw_agg *agg, struct dw_feat_stats *fs);

/** @brief Frees the sketch and table of a statistic made by dw_agg_scores(). */
void dw_feat_stats_free(struct dw_feat_stats *fs);

/** @brief Population standard deviation of a numeric feature (0 when count < 1). */
double dw_feat_std(const struct dw_feat_stats *fs);

#endif
