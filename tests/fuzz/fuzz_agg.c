/*
 * fuzz_agg.c - dw_agg_decode(), the reader of every window checkpoint, on arbitrary bytes.
 *
 * The model has numeric and categorical features and a small category bound (4), so short
 * inputs reach the SpaceSaving counters. A blob the decoder accepts must behave like one the
 * encoder wrote: it re-encodes to bytes that decode again and re-encode identically, merges
 * (as the evaluator merges partitions) into an aggregate that also round-trips, feeds a
 * reference (sketch queries) and renders as JSON. The same bytes are also decoded against a
 * model whose feature types are swapped, so that every section goes through the path that
 * skips it.
 *
 * Seeds: dw_agg_encode() of aggregates built by feeding values - empty, numeric only, exact
 * categories, categorical overflow into SpaceSaving, a compacted sketch, merged partitions,
 * outcomes and latencies (perf), more model versions than are kept - and the same made into the
 * older layouts the decoder still reads (version 3: no NaN/inf counts; version 2: categories
 * without counters), as the unit tests make them. The outcomes seed carries scores and
 * predicted classes (the outputs section), also with its sketches dropped (the label's stay).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_eval.h"
#include "dw_fuzz.h"
#include "../unit/dw_test_agg_layouts.h"

#define FUZZ_BOUND 4                 /* exact categories (and counters) of the fuzz model */
#define MERGE_TWICE_MAX (1ULL << 60) /* counts below which merging twice cannot wrap around */

static struct dw_feature_cfg g_feats[] = {
    {"x", DW_FEATURE_NUMERIC},
    {"c", DW_FEATURE_CATEGORICAL},
    {"y", DW_FEATURE_NUMERIC},
};
static struct dw_model_cfg g_model = {.name = "m",
                                      .task = DW_TASK_CLASSIFICATION,
                                      .positive_class = "1",
                                      .features = g_feats,
                                      .n_features = 3,
                                      .max_categories = FUZZ_BOUND};

/* The same names with the types swapped: every section is skipped, not restored. */
static struct dw_feature_cfg g_swapped_feats[] = {
    {"x", DW_FEATURE_CATEGORICAL},
    {"c", DW_FEATURE_NUMERIC},
};
static struct dw_model_cfg g_swapped = {.name = "m",
                                        .task = DW_TASK_REGRESSION,
                                        .positive_class = "1",
                                        .features = g_swapped_feats,
                                        .n_features = 2,
                                        .max_categories = FUZZ_BOUND};

/* Models of one feature each, for the version 2 and 3 seeds (one trailing section). */
static struct dw_model_cfg g_only_c = {.name = "m",
                                       .positive_class = "1",
                                       .features = &g_feats[1],
                                       .n_features = 1,
                                       .max_categories = FUZZ_BOUND};
static struct dw_model_cfg g_only_x = {
    .name = "m", .positive_class = "1", .features = &g_feats[0], .n_features = 1};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_agg: %s\n", what);
        abort();
    }
}

static int small_stat(const struct dw_feat_stats *fs)
{
    return fs->count < MERGE_TWICE_MAX && fs->missing < MERGE_TWICE_MAX &&
           fs->nan < MERGE_TWICE_MAX && fs->inf < MERGE_TWICE_MAX;
}

static int small_counts(const struct dw_agg *agg)
{
    for (size_t i = 0; i < agg->model->n_features; i++) {
        if (!small_stat(&agg->feats[i])) {
            return 0;
        }
    }
    for (size_t k = 0; k < DW_AGG_OUT__COUNT; k++) {
        if (!small_stat(&agg->out[k])) {
            return 0;
        }
    }
    return 1;
}

/* Encodes agg, decodes it, re-encodes: both must work and give the same bytes. */
static void round_trip(const struct dw_agg *agg, const char *what)
{
    struct dw_buf b1, b2;
    dw_buf_init(&b1);
    dw_buf_init(&b2);
    dw_agg_encode(agg, &b1);
    char err[256];
    struct dw_agg *back = dw_agg_decode(agg->model, b1.data, b1.len, err, sizeof(err));
    if (!back) {
        fprintf(stderr, "fuzz_agg: %s does not decode: %s\n", what, err);
        abort();
    }
    dw_agg_encode(back, &b2);
    check(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0, "re-encoding differs");
    dw_agg_free(back);
    dw_buf_free(&b1);
    dw_buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct dw_agg *agg = dw_agg_decode(&g_model, data, size, err, sizeof(err));
    if (!agg) {
        check(err[0] != '\0', "refused without a message");
    } else {
        round_trip(agg, "an accepted aggregate");
        struct dw_agg *sum = dw_agg_new_exact(&g_model, agg->start_ms, DW_AGG_MERGE_EXACT);
        dw_agg_merge(sum, agg);
        if (small_counts(agg)) {
            dw_agg_merge(sum, agg);
        }
        round_trip(sum, "a merged aggregate");
        struct dw_agg *aggs[] = {agg};
        dw_ref_free(dw_ref_build(&g_model, aggs, 1, 10));
        json_decref(dw_agg_to_json(agg));
        dw_agg_free(sum);
        dw_agg_free(agg);
    }
    agg = dw_agg_decode(&g_swapped, data, size, err, sizeof(err));
    dw_agg_free(agg);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Seeds
 */

static struct dw_prediction *pred_new(void)
{
    return dw_calloc(1, sizeof(struct dw_prediction) + 3 * sizeof(struct dw_val));
}

/* One prediction of model m: x, c (NULL = missing) and y (NaN and infinities counted apart). */
static void add(struct dw_agg *agg, const struct dw_model_cfg *m, double x, const char *c, double y)
{
    struct dw_prediction *ev = pred_new();
    ev->model = m;
    for (size_t i = 0; i < m->n_features; i++) {
        const struct dw_feature_cfg *f = &m->features[i];
        struct dw_val *v = &ev->features[i];
        if (f->type == DW_FEATURE_CATEGORICAL) {
            v->kind = c ? DW_VAL_STR : DW_VAL_MISSING;
            v->str = c;
            v->len = c ? strlen(c) : 0;
        } else {
            double num = strcmp(f->name, "x") == 0 ? x : y;
            v->kind = DW_VAL_NUM;
            v->num = num;
        }
    }
    dw_agg_add_prediction(agg, dw_agg_version_slot(agg, "", 0), ev);
    free(ev);
}

static void write_agg(const char *dir, const char *name, const struct dw_agg *agg)
{
    struct dw_buf b;
    dw_buf_init(&b);
    dw_agg_encode(agg, &b);
    dw_fuzz_write_seed(dir, name, b.data, b.len);
    dw_buf_free(&b);
}

/* Version 4: version 6 without the flags byte (offset 9, sketches kept) and the outputs
 * section after it (a u32 length and its bytes). */
static void encode_v4(const struct dw_agg *agg, struct dw_buf *out)
{
    struct dw_buf b;
    dw_buf_init(&b);
    if (dw_test_agg_encode_v6(agg, &b) != 0) {
        abort();
    }
    struct dw_reader rd;
    dw_reader_init(&rd, b.data + 10, 4);
    size_t skip = 1 + 4 + dw_rd_u32(&rd);
    dw_buf_put_u8(out, 4);
    dw_buf_put(out, b.data + 1, 8);
    dw_buf_put(out, b.data + 9 + skip, b.len - 9 - skip);
    dw_buf_free(&b);
}

/* Version 3: a one-feature version 4 blob without its trailing u64 nan and inf. */
static void write_v3(const char *dir, const char *name, const struct dw_agg *agg)
{
    struct dw_buf b;
    dw_buf_init(&b);
    encode_v4(agg, &b);
    b.data[0] = 3;
    dw_fuzz_write_seed(dir, name, b.data, b.len - 16);
    dw_buf_free(&b);
}

/* Version 2: a one-categorical-feature blob with exact categories only, its category section
 * (28 bytes of summary and each entry u32 len, name, u8 flags, u64 count) and the trailing nan
 * and inf replaced by u32 n {str name, u64 count}. */
static void write_v2(const char *dir, const char *name, const struct dw_agg *agg)
{
    const struct dw_feat_stats *fs = &agg->feats[0];
    size_t section = 28 + 16;
    for (size_t s = 0; s < fs->cat_cap; s++) {
        if (fs->cats[s].name) {
            section += 4 + strlen(fs->cats[s].name) + 1 + 8;
        }
    }
    struct dw_buf b, v2;
    dw_buf_init(&b);
    dw_buf_init(&v2);
    encode_v4(agg, &b);
    dw_buf_put(&v2, b.data, b.len - section);
    v2.data[0] = 2;
    dw_buf_put_u32(&v2, (uint32_t)fs->n_cats);
    for (size_t s = 0; s < fs->cat_cap; s++) {
        if (fs->cats[s].name) {
            dw_buf_put_str(&v2, fs->cats[s].name, strlen(fs->cats[s].name));
            dw_buf_put_u64(&v2, fs->cats[s].count);
        }
    }
    dw_fuzz_write_seed(dir, name, v2.data, v2.len);
    dw_buf_free(&b);
    dw_buf_free(&v2);
}

void dw_fuzz_seeds(const char *dir)
{
    static const char *const cats[] = {"DE", "FR", "IT", "ES", "PL", "NL", "SE", "hot"};
    char name[32];

    struct dw_agg *empty = dw_agg_new(&g_model, 1794999900000LL);
    write_agg(dir, "empty", empty);

    /* exact categories, a few values, NaN / inf / missing */
    struct dw_agg *small = dw_agg_new(&g_model, 60000);
    add(small, &g_model, 1.5, "DE", 2.0);
    add(small, &g_model, -3.0, "FR", NAN);
    add(small, &g_model, INFINITY, NULL, 4.0);
    add(small, &g_model, 0.0, "DE", -INFINITY);
    write_agg(dir, "small", small);

    /* categorical overflow into SpaceSaving: 8 values over a bound of 4, one of them hot */
    struct dw_agg *over = dw_agg_new(&g_model, 120000);
    for (int i = 0; i < 200; i++) {
        add(over, &g_model, (double)i, i % 3 == 0 ? "hot" : cats[i % 8], (double)(i % 7));
    }
    write_agg(dir, "overflow", over);

    /* a compacted sketch (past DW_AGG_SKETCH_EXACT values) */
    struct dw_agg *big = dw_agg_new(&g_model, 180000);
    for (int i = 0; i < 3000; i++) {
        add(big, &g_model, sin((double)i) * 100.0, cats[i % 5], (double)i);
    }
    write_agg(dir, "compacted", big);

    /* a version with its own feature statistics (encoding version 8) */
    struct dw_model_cfg per_version = g_model;
    per_version.version_features = 1;
    struct dw_agg *pv = dw_agg_new(&per_version, 240000);
    dw_agg_version_slot(pv, "1.0.0", 5);
    for (int i = 0; i < 50; i++) {
        add(pv, &per_version, (double)i, cats[i % 3], (double)i / 2.0);
    }
    write_agg(dir, "version_features", pv);
    dw_agg_free(pv);

    /* merged partitions (a floor and counters from the merge rule) */
    struct dw_agg *merged = dw_agg_new(&g_model, 120000);
    dw_agg_merge(merged, over);
    dw_agg_merge(merged, small);
    dw_agg_merge(merged, over);
    write_agg(dir, "merged", merged);

    /* outcomes, scores and latencies (the perf section), serving statuses, and more versions
     * than are kept */
    struct dw_agg *perf = dw_agg_new(&g_model, 240000);
    struct dw_prediction *ev = pred_new();
    ev->model = &g_model;
    ev->has_latency = 1;
    for (int i = 0; i < 40; i++) {
        ev->has_status = i % 6 != 0;
        ev->status_error = i % 7 == 0;
        snprintf(name, sizeof(name), "v%d", i % (DW_AGG_MAX_VERSIONS + 3));
        size_t vslot = dw_agg_version_slot(perf, name, strlen(name));
        ev->latency_ms = 5.0 + i;
        ev->features[1].kind = DW_VAL_STR;
        ev->features[1].str = cats[i % 3];
        ev->features[1].len = strlen(cats[i % 3]);
        snprintf(ev->pred.text, sizeof(ev->pred.text), "%d", i % 2); /* the outputs section */
        ev->has_score = i % 5 != 0;
        ev->score = (double)(i % 10) / 10.0;
        dw_agg_add_prediction(perf, vslot, ev);
        struct dw_outcome o = {.pred = i % 2 ? "1" : "0",
                               .label = i % 3 ? "1" : "0",
                               .has_score = i % 4 != 0,
                               .score = (double)(i % 10) / 10.0};
        dw_agg_add_outcome(perf, vslot, &o);
    }
    free(ev);
    write_agg(dir, "perf_versions", perf);
    /* the same once the close evaluation dropped the sketches: the label's stays */
    struct dw_agg *dropped = dw_agg_new(&g_model, 240000);
    dw_agg_merge(dropped, perf);
    dw_agg_drop_sketches(dropped);
    write_agg(dir, "perf_dropped", dropped);
    dw_agg_free(dropped);
    /* version 6: no serving counts, no version latency */
    struct dw_buf v6;
    dw_buf_init(&v6);
    if (dw_test_agg_encode_v6(perf, &v6) != 0) {
        abort();
    }
    dw_fuzz_write_seed(dir, "v6_perf_versions", v6.data, v6.len);
    dw_buf_free(&v6);

    /* the older layouts */
    struct dw_agg *c_only = dw_agg_new(&g_only_c, 300000);
    struct dw_agg *x_only = dw_agg_new(&g_only_x, 300000);
    for (int i = 0; i < 12; i++) {
        add(c_only, &g_only_c, 0, cats[i % 4], 0);
        add(x_only, &g_only_x, (double)i / 3.0, NULL, 0);
    }
    write_v3(dir, "v3_categorical", c_only);
    write_v3(dir, "v3_numeric", x_only);
    write_v2(dir, "v2_categorical", c_only);
    struct dw_agg *c_over = dw_agg_new(&g_only_c, 300000);
    for (int i = 0; i < 50; i++) {
        add(c_over, &g_only_c, 0, cats[i % 8], 0);
    }
    write_v3(dir, "v3_overflow", c_over);

    dw_agg_free(c_over);
    dw_agg_free(x_only);
    dw_agg_free(c_only);
    dw_agg_free(perf);
    dw_agg_free(merged);
    dw_agg_free(big);
    dw_agg_free(over);
    dw_agg_free(small);
    dw_agg_free(empty);
}
