/*
 * dw_profile.c - `driftwatch profile`: a reference profile from training data.
 *
 * Why it is built this way:
 * - The profile must be the reference `run` and `replay` would build themselves, so it is
 *   made by the same code: the rows go through dw_agg_add_prediction() into one aggregate and
 *   dw_ref_build() derives the edges and proportions; the document is dw_ref_to_json() plus
 *   extra fields (docs/profile.md) that dw_ref_from_json() ignores.
 * - Quantiles must be exact (numpy's type 7), so the aggregate's sketches keep every value:
 *   the file is read twice, once to count rows and infer types, once to aggregate into
 *   sketches whose exact capacity is the row count (at most DW_KLL_MAX_EXACT_CAPACITY).
 *   dw_ref_build() merges into a scratch aggregate that is exact up to DW_AGG_MERGE_EXACT
 *   values only, so beyond that the bin edges and proportions are recomputed here from the
 *   exact sketch, by the same definition.
 * - A value is read as the consumer's decoder reads it: JSON numbers and booleans (1/0) for
 *   numeric features; strings, numbers (as their text) and booleans ("true"/"false") for
 *   categorical ones, a real as the decoder's text of it (dw_decode_real_text(): 1.0 is "1.0");
 *   null, an absent key and an empty CSV cell are missing.
 * - The model's outputs come from columns named prediction, score and label (--prediction,
 *   --score, --label rename them; a feature list that names one keeps it a feature), or in
 *   prediction events from the config's input.fields pointers (a training event carries its
 *   label inline). They go into the same aggregate by the calls run makes: the event's class
 *   and score with dw_agg_add_prediction(), and a row with a prediction and a label as the
 *   outcome run counts when the label joins (dw_agg_add_outcome(); a label alone goes into the
 *   labels' distribution only). So the reference distributions are dw_ref_build()'s, the
 *   label's set from the rows' labels (final, unlike a reference window's at its close), and
 *   the labelled rows' counts are the profile's performance and its baseline ("outcomes"),
 *   every metric computed by the code of a window's.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_agg.h"
#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/io/dw_files.h"
#include "driftwatch/core/dw_kll.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define PROFILE_QUANTILE_STEPS 100 /* quantiles at q = i/100, i = 0..100 */
#define PROFILE_NUM_TEXT 32        /* bytes of a JSON number's text (categorical value) */

/* The model's outputs in training data: columns named prediction, score and label by default
 * (CSV, flat JSON objects) are the predicted class (or value), the score and the label, not
 * features, unless the feature lists or the config name them (docs/profile.md). */
enum { OUT_PREDICTION, OUT_SCORE, OUT_LABEL, OUT_COLUMNS };
struct profile_opts {
    const char *input, *output, *model, *categorical, *numeric, *config;
    const char *out_columns[3]; /* the output columns' names (--prediction, --score, --label) */
};

struct profiler {
    const struct profile_opts *o;
    enum dw_files_format fmt;
    struct dw_config cfg;
    int have_cfg;
    /* JSON lines: events (features under input.fields.features) or flat objects */
    int json_mode; /* 0 = undecided, 1 = events, 2 = flat */
    char *model_name;
    uint64_t rows, skipped;
    /* CSV header */
    char **header;
    size_t n_header;
    /* pass 1 */
    struct dw_files_tally tally;
    /* pass 2 */
    struct dw_model_cfg model;
    size_t *col_of;              /* CSV: column index of each feature */
    int has_out[OUT_COLUMNS];    /* the data has the output column (and it is not a feature) */
    size_t out_col[OUT_COLUMNS]; /* CSV: its column index */
    uint64_t labeled;            /* rows with a prediction and a label (outcomes) */
    struct dw_class label;       /* the row's label, while its outcome is added */
    struct dw_agg *agg;
    size_t vslot;
    struct dw_prediction *ev;
    char (*numtext)[PROFILE_NUM_TEXT];
};

/* ---- values ---- */

static const char *json_text(const json_t *v, char *buf);

/* A JSON feature value into val (the decoder's rules, see the top comment). */
static int json_value(struct profiler *pr, size_t i, const json_t *v, struct dw_val *val,
                      uint64_t line, char *errstr, size_t errstr_size)
{
    const struct dw_feature_cfg *f = &pr->model.features[i];
    val->kind = DW_VAL_MISSING;
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (f->type == DW_FEATURE_NUMERIC) {
        if (json_is_number(v)) {
            val->num = json_number_value(v);
        } else if (json_is_boolean(v)) {
            val->num = json_is_true(v) ? 1.0 : 0.0;
        } else {
            return dw_err(errstr, errstr_size,
                          "%s:%llu: feature '%s': expected a number (numeric feature)",
                          pr->o->input, (unsigned long long)line, f->name);
        }
        if (!isfinite(val->num)) {
            return dw_err(errstr, errstr_size, "%s:%llu: feature '%s': not a finite number",
                          pr->o->input, (unsigned long long)line, f->name);
        }
        val->kind = DW_VAL_NUM;
        return 0;
    }
    val->str = json_text(v, pr->numtext[i]);
    if (!val->str) {
        return dw_err(errstr, errstr_size,
                      "%s:%llu: feature '%s': expected a string, number or boolean", pr->o->input,
                      (unsigned long long)line, f->name);
    }
    val->len = strlen(val->str);
    val->kind = DW_VAL_STR;
    return 0;
}

/* A categorical value as the decoder's text: strings as they are, numbers as their JSON text
 * (buf holds it), booleans true/false; NULL for anything else. */
static const char *json_text(const json_t *v, char *buf)
{
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_integer(v)) {
        snprintf(buf, PROFILE_NUM_TEXT, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        dw_decode_real_text(json_real_value(v), buf, PROFILE_NUM_TEXT);
        return buf;
    }
    if (json_is_boolean(v)) {
        return json_is_true(v) ? "true" : "false";
    }
    return NULL;
}

/* ---- reading rows ---- */

/* Called once per data row with either CSV cells or a JSON object of features and its line. */
typedef int (*row_fn)(struct profiler *pr, char **cells, size_t n_cells, json_t *feats, json_t *doc,
                      uint64_t line, char *errstr, size_t errstr_size);

static int scan_csv(struct profiler *pr, row_fn fn, char *errstr, size_t errstr_size)
{
    struct dw_files_csv *c = dw_files_csv_open(pr->o->input, errstr, errstr_size);
    if (!c) {
        return -1;
    }
    int rc = 0, first = 1;
    char **cells;
    size_t n;
    uint64_t line;
    while (rc == 0) {
        int got = dw_files_csv_next(c, &cells, &n, &line, errstr, errstr_size);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (first) {
            first = 0;
            if (pr->header) {
                continue; /* second pass: the header is known */
            }
            pr->header = dw_calloc(n, sizeof(*pr->header));
            for (size_t i = 0; i < n && rc == 0; i++) {
                for (size_t j = 0; j < i && rc == 0; j++) {
                    if (strcmp(cells[i], cells[j]) == 0) {
                        rc = dw_err(errstr, errstr_size,
                                    "%s:%llu: column %zu: header '%s' given twice", pr->o->input,
                                    (unsigned long long)line, i + 1, cells[i]);
                    }
                }
                if (cells[i][0] == '\0') {
                    rc = dw_err(errstr, errstr_size, "%s:%llu: column %zu: empty header",
                                pr->o->input, (unsigned long long)line, i + 1);
                }
                pr->header[i] = dw_strdup(cells[i]);
                pr->n_header = i + 1;
            }
            continue;
        }
        if (n == 1 && cells[0][0] == '\0' && pr->n_header > 1) {
            continue; /* a line of spaces */
        }
        if (n != pr->n_header) {
            rc = dw_err(errstr, errstr_size, "%s:%llu: %zu fields, the header has %zu",
                        pr->o->input, (unsigned long long)line, n, pr->n_header);
            break;
        }
        rc = fn(pr, cells, n, NULL, NULL, line, errstr, errstr_size);
    }
    if (rc == 0 && first) {
        rc = dw_err(errstr, errstr_size, "%s: no header row", pr->o->input);
    }
    dw_files_csv_close(c);
    return rc < 0 ? -1 : 0;
}

static int scan_jsonl(struct profiler *pr, row_fn fn, char *errstr, size_t errstr_size)
{
    struct dw_files *f = dw_files_open(pr->o->input, errstr, errstr_size);
    if (!f) {
        return -1;
    }
    const char *feat_ptr = pr->cfg.field_features;
    int rc = 0;
    char *text;
    size_t len;
    while (rc == 0) {
        int got = dw_files_read_line(f, &text, &len, errstr, errstr_size);
        if (got <= 0) {
            rc = got;
            break;
        }
        uint64_t line = dw_files_line_no(f);
        if (strspn(text, " \t\r") == len) {
            continue;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(text, len, 0, &jerr);
        if (!doc) {
            rc = dw_err(errstr, errstr_size, "%s:%llu: column %d: invalid JSON: %s", pr->o->input,
                        (unsigned long long)line, jerr.column, jerr.text);
            break;
        }
        if (!json_is_object(doc)) {
            json_decref(doc);
            rc = dw_err(errstr, errstr_size, "%s:%llu: expected a JSON object", pr->o->input,
                        (unsigned long long)line);
            break;
        }
        if (pr->json_mode == 0) {
            pr->json_mode = json_is_object(dw_files_pointer(doc, feat_ptr)) ? 1 : 2;
        }
        json_t *feats = doc;
        int skip = 0;
        if (pr->json_mode == 1) {
            json_t *mv = dw_files_pointer(doc, pr->cfg.field_model);
            const char *mname = json_is_string(mv) ? json_string_value(mv) : NULL;
            if (!pr->model_name && mname) {
                pr->model_name = dw_strdup(mname);
            }
            skip = mname && pr->model_name && strcmp(mname, pr->model_name) != 0;
            feats = dw_files_pointer(doc, feat_ptr);
            if (feats && !json_is_object(feats) && !json_is_null(feats)) {
                json_decref(doc);
                rc = dw_err(errstr, errstr_size, "%s:%llu: %s: expected an object", pr->o->input,
                            (unsigned long long)line, feat_ptr);
                break;
            }
            if (!json_is_object(feats)) {
                feats = NULL;
            }
        }
        if (skip) {
            pr->skipped++;
        } else {
            rc = fn(pr, NULL, 0, feats, doc, line, errstr, errstr_size);
        }
        json_decref(doc);
    }
    dw_files_close(f);
    return rc < 0 ? -1 : 0;
}

static int scan(struct profiler *pr, row_fn fn, char *errstr, size_t errstr_size)
{
    pr->rows = pr->skipped = 0;
    return pr->fmt == DW_FILES_CSV ? scan_csv(pr, fn, errstr, errstr_size)
                                   : scan_jsonl(pr, fn, errstr, errstr_size);
}

/* Pass 1: count rows, tally value kinds per column. */
static int pass_tally(struct profiler *pr, char **cells, size_t n_cells, json_t *feats, json_t *doc,
                      uint64_t line, char *errstr, size_t errstr_size)
{
    (void)doc;
    pr->rows++;
    if (cells) {
        for (size_t i = 0; i < n_cells; i++) {
            size_t idx = dw_files_tally_index(&pr->tally, pr->header[i], strlen(pr->header[i]));
            double x;
            enum dw_files_kind k = cells[i][0] == '\0' ? DW_FILES_MISSING
                                   : dw_files_parse_number(cells[i], strlen(cells[i]), &x) == 0
                                       ? DW_FILES_NUMBER
                                       : DW_FILES_TEXT;
            dw_files_tally_add(&pr->tally, idx, k);
        }
        return 0;
    }
    const char *key;
    json_t *v;
    json_object_foreach(feats, key, v)
    {
        size_t idx = dw_files_tally_index(&pr->tally, key, strlen(key));
        dw_files_tally_add(&pr->tally, idx, dw_files_json_kind(v));
    }
    return 0;
}

/*
 * Output column k of a row into *cls: a class as text (classification; numbers as the
 * decoder's text) or a number (regression, and the score). @returns 1 with a value, 0 when
 * the cell is missing, -1 with errstr when it cannot be one.
 */
static int output_value(struct profiler *pr, size_t k, char **cells, json_t *feats, json_t *doc,
                        uint64_t line, struct dw_class *cls, char *errstr, size_t errstr_size)
{
    const char *const *out_columns = pr->o->out_columns;
    const char *ptr[OUT_COLUMNS] = {pr->cfg.field_prediction, pr->cfg.field_score,
                                    pr->cfg.field_label};
    int number = k == OUT_SCORE || pr->model.task == DW_TASK_REGRESSION;
    const char *want = k == OUT_SCORE ? "a number in [0, 1] (the positive class's probability)"
                       : number       ? "a finite number"
                                      : "a string, number or boolean (a class)";
    char buf[PROFILE_NUM_TEXT];
    const char *text = NULL;
    if (cells) {
        text = cells[pr->out_col[k]];
        if (text[0] == '\0') {
            return 0;
        }
    } else {
        json_t *v = pr->json_mode == 1 ? dw_files_pointer(doc, ptr[k])
                                       : json_object_get(feats, out_columns[k]);
        if (!v || json_is_null(v)) {
            return 0;
        }
        if (!number) {
            text = json_text(v, buf);
        } else if (json_is_number(v) || json_is_boolean(v)) {
            cls->num = json_is_number(v) ? json_number_value(v) : json_is_true(v) ? 1.0 : 0.0;
            text = "";
        }
    }
    int bad = !text;
    if (number && !bad && text[0] != '\0') {
        bad = dw_files_parse_number(text, strlen(text), &cls->num) != 0;
    }
    bad = bad || (number && !isfinite(cls->num)) ||
          (k == OUT_SCORE && !(cls->num >= 0.0 && cls->num <= 1.0));
    if (!bad && !number && strlen(text) > DW_CLASS_MAX) {
        return dw_err(errstr, errstr_size,
                      "%s:%llu: column '%s': a class of %zu bytes, longer "
                      "than %d",
                      pr->o->input, (unsigned long long)line, out_columns[k], strlen(text),
                      DW_CLASS_MAX);
    }
    if (bad) {
        return dw_err(errstr, errstr_size, "%s:%llu: column '%s': expected %s", pr->o->input,
                      (unsigned long long)line, out_columns[k], want);
    }
    if (!number) {
        cls->len = strlen(text);
        memcpy(cls->text, text, cls->len + 1);
    }
    return 1;
}

/*
 * The row's prediction and score into the event, and its label: with a prediction, the outcome
 * run counts when the label joins (*o; @returns 1), else into the labels' distribution only.
 * @returns 1 labelled outcome, 0 none, -1 a bad value (errstr).
 */
static int outputs_of_row(struct profiler *pr, char **cells, json_t *feats, json_t *doc,
                          uint64_t line, struct dw_outcome *o, char *errstr, size_t errstr_size)
{
    struct dw_class got[OUT_COLUMNS];
    int has[OUT_COLUMNS] = {0, 0, 0};
    memset(got, 0, sizeof(got));
    for (size_t k = 0; k < OUT_COLUMNS; k++) {
        has[k] = pr->has_out[k]
                     ? output_value(pr, k, cells, feats, doc, line, &got[k], errstr, errstr_size)
                     : 0;
        if (has[k] < 0) {
            return -1;
        }
    }
    pr->ev->pred = got[OUT_PREDICTION];
    pr->ev->no_pred = !has[OUT_PREDICTION];
    pr->ev->has_score = has[OUT_SCORE];
    pr->ev->score = got[OUT_SCORE].num;
    int regression = pr->model.task == DW_TASK_REGRESSION;
    if (has[OUT_LABEL] && !has[OUT_PREDICTION]) {
        dw_agg_add_label(pr->agg, regression ? NULL : got[OUT_LABEL].text, got[OUT_LABEL].num);
    }
    if (!has[OUT_LABEL] || !has[OUT_PREDICTION]) {
        return 0;
    }
    /* the texts live in pr->ev (the prediction) and pr->label (the label) until the outcome
     * is added */
    pr->label = got[OUT_LABEL];
    *o = (struct dw_outcome){.pred = regression ? NULL : pr->ev->pred.text,
                             .label = regression ? NULL : pr->label.text,
                             .pred_is_num = regression,
                             .label_is_num = regression,
                             .pred_num = pr->ev->pred.num,
                             .label_num = pr->label.num,
                             .has_score = pr->ev->has_score && !regression,
                             .score = pr->ev->score};
    return 1;
}

/* Pass 2: one prediction per row into the aggregate. */
static int pass_add(struct profiler *pr, char **cells, size_t n_cells, json_t *feats, json_t *doc,
                    uint64_t line, char *errstr, size_t errstr_size)
{
    pr->rows++;
    const struct dw_model_cfg *m = &pr->model;
    for (size_t i = 0; i < m->n_features; i++) {
        struct dw_val *val = &pr->ev->features[i];
        if (!cells) {
            json_t *v = feats ? json_object_get(feats, m->features[i].name) : NULL;
            if (json_value(pr, i, v, val, line, errstr, errstr_size) != 0) {
                return -1;
            }
            continue;
        }
        val->kind = DW_VAL_MISSING;
        if (pr->col_of[i] == SIZE_MAX) {
            continue;
        }
        const char *cell = cells[pr->col_of[i]];
        if (cell[0] == '\0') {
            continue;
        }
        if (m->features[i].type == DW_FEATURE_NUMERIC) {
            if (dw_files_parse_number(cell, strlen(cell), &val->num) != 0) {
                return dw_err(errstr, errstr_size,
                              "%s:%llu: column '%s': '%.64s' is not a finite number (numeric)",
                              pr->o->input, (unsigned long long)line, m->features[i].name, cell);
            }
            val->kind = DW_VAL_NUM;
        } else {
            val->kind = DW_VAL_STR;
            val->str = cell;
            val->len = strlen(cell);
        }
    }
    (void)n_cells;
    struct dw_outcome o;
    int labeled = outputs_of_row(pr, cells, feats, doc, line, &o, errstr, errstr_size);
    if (labeled < 0) {
        return -1;
    }
    dw_agg_add_prediction(pr->agg, pr->vslot, pr->ev);
    if (labeled) {
        dw_agg_add_outcome(pr->agg, pr->vslot, &o);
        pr->labeled++;
    }
    return 0;
}

/* ---- the document ---- */

/* Edges and proportions from the exact sketch (dw_ref_build's definition, docs/statistics.md),
 * used when the rows exceed the exact capacity of dw_ref_build's scratch aggregate. */
static void exact_bins(struct dw_ref_feature *rf, struct dw_kll *sk, int64_t bins)
{
    free(rf->edges);
    free(rf->props);
    size_t want = (size_t)(bins - 1);
    rf->edges = dw_calloc(want ? want : 1, sizeof(*rf->edges));
    rf->n_edges = 0;
    for (size_t i = 1; i <= want; i++) {
        double e = dw_kll_quantile(sk, (double)i / (double)bins);
        if (rf->n_edges == 0 || e > rf->edges[rf->n_edges - 1]) {
            rf->edges[rf->n_edges++] = e;
        }
    }
    uint64_t *counts = dw_calloc(rf->n_edges + 1, sizeof(*counts));
    dw_eval_bin_counts(sk, rf->edges, rf->n_edges, counts);
    rf->props = dw_calloc(rf->n_edges + 1, sizeof(*rf->props));
    for (size_t i = 0; i <= rf->n_edges; i++) {
        rf->props[i] = (double)counts[i] / (double)dw_kll_count(sk);
    }
    free(counts);
}

static void add_numeric_extras(json_t *f, const struct dw_ref_feature *rf, struct dw_feat_stats *fs)
{
    json_object_set_new(f, "missing", json_integer((json_int_t)fs->missing));
    json_t *q = json_array();
    json_t *qv = json_array();
    for (int i = 0; i <= PROFILE_QUANTILE_STEPS; i++) {
        double level = (double)i / PROFILE_QUANTILE_STEPS;
        json_array_append_new(q, json_integer(i));
        json_array_append_new(qv, fs->sk && fs->count ? json_real(dw_kll_quantile(fs->sk, level))
                                                      : json_null());
    }
    json_object_set_new(f, "quantiles", json_pack("{s:o,s:o}", "percent", q, "values", qv));
    json_t *bc = json_array();
    if (fs->sk && fs->count && rf->props) {
        uint64_t *counts = dw_calloc(rf->n_edges + 1, sizeof(*counts));
        dw_eval_bin_counts(fs->sk, rf->edges, rf->n_edges, counts);
        for (size_t i = 0; i <= rf->n_edges; i++) {
            json_array_append_new(bc, json_integer((json_int_t)counts[i]));
        }
        free(counts);
    }
    json_object_set_new(f, "bin_counts", bc);
    json_object_set_new(f, "variance",
                        fs->count ? json_real(fs->m2 / (double)fs->count) : json_null());
}

static void add_categorical_extras(json_t *f, const struct dw_ref_feature *rf,
                                   const struct dw_feat_stats *fs)
{
    json_object_set_new(f, "missing", json_integer((json_int_t)fs->missing));
    json_t *counts = json_object();
    for (size_t c = 0; c < rf->n_cats; c++) { /* the reference's order: sorted by name */
        uint64_t n = strcmp(rf->cats[c], DW_AGG_OTHER) == 0 ? fs->other : 0;
        for (size_t s = 0; n == 0 && fs->cats && s < fs->cat_cap; s++) {
            if (fs->cats[s].name && strcmp(fs->cats[s].name, rf->cats[c]) == 0) {
                n = fs->cats[s].count;
            }
        }
        json_object_set_new(counts, rf->cats[c], json_integer((json_int_t)n));
    }
    json_object_set_new(f, "category_counts", counts);
}

static json_t *build_doc(struct profiler *pr)
{
    const struct dw_model_cfg *m = &pr->model;
    int64_t bins = pr->cfg.psi_bins;
    struct dw_ref *ref = dw_ref_build(m, &pr->agg, 1, bins);
    /* The outputs the data has: a distribution is written for each output column (reports
     * judged against a profile without them say that prediction drift is unavailable). The
     * labels are final here, so the profile has a label distribution. */
    ref->has_outputs =
        pr->has_out[OUT_PREDICTION] || pr->has_out[OUT_SCORE] || pr->has_out[OUT_LABEL];
    if (pr->has_out[OUT_LABEL]) {
        dw_ref_set_labels(ref, &pr->agg->out[DW_AGG_OUT_LABEL]);
    }
    for (size_t i = 0; i < m->n_features; i++) {
        struct dw_feat_stats *fs = &pr->agg->feats[i];
        if (m->features[i].type == DW_FEATURE_NUMERIC && fs->count > DW_AGG_MERGE_EXACT) {
            exact_bins(&ref->feats[i], fs->sk, ref->bins);
        }
    }
    int64_t now_ms = dw_now_ms();
    ref->source = DW_REF_SOURCE_PROFILE;
    ref->created_ms = now_ms;
    ref->profile = dw_strdup(pr->o->input);
    if (pr->labeled > 0) {
        dw_ref_set_outcomes(ref, m, pr->agg);
    }
    json_t *doc = dw_ref_to_json(ref);
    json_t *feats = json_object_get(doc, "features");
    for (size_t i = 0; i < m->n_features; i++) {
        json_t *f = json_object_get(feats, m->features[i].name);
        struct dw_feat_stats *fs = &pr->agg->feats[i];
        if (m->features[i].type == DW_FEATURE_NUMERIC) {
            add_numeric_extras(f, &ref->feats[i], fs);
        } else {
            add_categorical_extras(f, &ref->feats[i], fs);
        }
    }
    char now[40];
    dw_time_format_rfc3339(now_ms, now, sizeof(now));
    json_object_set_new(doc, "performance",
                        pr->labeled ? dw_eval_performance(m, &pr->agg->all, &pr->agg->perf)
                                    : json_null());
    json_object_set_new(
        doc, "task", json_string(m->task == DW_TASK_REGRESSION ? "regression" : "classification"));
    json_object_set_new(doc, "source",
                        json_pack("{s:s,s:s,s:I,s:I,s:s}", "file", pr->o->input, "format",
                                  pr->fmt == DW_FILES_CSV ? "csv" : "jsonl", "rows",
                                  (json_int_t)pr->rows, "skipped_rows", (json_int_t)pr->skipped,
                                  "created_at", now));
    dw_ref_free(ref);
    return doc;
}

/* ---- the command ---- */

/*
 * The output columns of the data (CSV, flat JSON objects; prediction events carry their
 * features in an object of their own, so none there): a column named like an output that no
 * feature list or configured feature claims. Inferred features of those names are removed.
 */
static void find_outputs(struct profiler *pr)
{
    struct dw_model_cfg *m = &pr->model;
    if (pr->json_mode == 1) { /* events: the config's input.fields pointers, in every event */
        for (size_t k = 0; k < OUT_COLUMNS; k++) {
            pr->has_out[k] = 1;
        }
        return;
    }
    for (size_t k = 0; k < OUT_COLUMNS; k++) {
        const char *name = pr->o->out_columns[k];
        int listed = pr->have_cfg || dw_files_list_has(pr->o->categorical, name) ||
                     dw_files_list_has(pr->o->numeric, name);
        if (dw_files_tally_find(&pr->tally, name, strlen(name)) < 0 ||
            (listed && dw_model_feature_index(m, name, strlen(name)) >= 0)) {
            continue;
        }
        long idx = dw_model_feature_index(m, name, strlen(name));
        if (idx >= 0) { /* inferred: an output, not a feature */
            free(m->features[idx].name);
            memmove(&m->features[idx], &m->features[idx + 1],
                    (m->n_features - (size_t)idx - 1) * sizeof(*m->features));
            m->n_features--;
        }
        pr->has_out[k] = 1;
        for (size_t c = 0; c < pr->n_header; c++) {
            if (strcmp(pr->header[c], name) == 0) {
                pr->out_col[k] = c;
            }
        }
    }
}

static int setup_model(struct profiler *pr, char *errstr, size_t errstr_size)
{
    const struct profile_opts *o = pr->o;
    struct dw_model_cfg *m = &pr->model;
    m->task = DW_TASK_CLASSIFICATION;
    if (pr->have_cfg) {
        const struct dw_model_cfg *cm = NULL;
        if (o->model) {
            cm = dw_config_model(&pr->cfg, o->model, strlen(o->model));
            if (!cm) {
                return dw_err(errstr, errstr_size, "--model: no model '%s' in %s", o->model,
                              o->config);
            }
        } else if (pr->cfg.n_models == 1) {
            cm = &pr->cfg.models[0];
        } else {
            return dw_err(errstr, errstr_size, "%s has %zu models: choose one with --model",
                          o->config, pr->cfg.n_models);
        }
        m->name = dw_strdup(cm->name);
        m->task = cm->task;
        m->positive_class = dw_strdup(cm->positive_class);
        m->n_features = cm->n_features;
        m->features = dw_calloc(cm->n_features ? cm->n_features : 1, sizeof(*m->features));
        for (size_t i = 0; i < cm->n_features; i++) {
            m->features[i].name = dw_strdup(cm->features[i].name);
            m->features[i].type = cm->features[i].type;
        }
    } else {
        m->name = dw_strdup(o->model ? o->model : pr->model_name ? pr->model_name : "default");
        m->positive_class = dw_strdup("1");
        if (dw_files_tally_features(&pr->tally, o->categorical, o->numeric, &m->features,
                                    &m->n_features, errstr, errstr_size) != 0) {
            return -1;
        }
    }
    find_outputs(pr);
    if (pr->fmt == DW_FILES_CSV) {
        pr->col_of = dw_calloc(m->n_features ? m->n_features : 1, sizeof(*pr->col_of));
        for (size_t i = 0; i < m->n_features; i++) {
            pr->col_of[i] = SIZE_MAX; /* a configured feature without a column: all missing */
            for (size_t c = 0; c < pr->n_header; c++) {
                if (strcmp(pr->header[c], m->features[i].name) == 0) {
                    pr->col_of[i] = c;
                }
            }
        }
    }
    return 0;
}

static void profile_usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch profile --input FILE --output PROFILE.json [--model M]\n"
            "                          [--categorical a,b] [--numeric c,d] [-c CONFIG]\n\n"
            "Builds a reference profile from training data: exact quantiles, the decile bin\n"
            "edges and counts, category frequencies, moments and a sketch for KS (format in\n"
            "docs/profile.md). Input: CSV with a header row, or JSON lines (prediction events\n"
            "with a features object, or flat objects); .gz is read transparently.\n\n"
            "  -i, --input FILE         training data (.csv, .jsonl, .json, .ndjson, + .gz)\n"
            "  -o, --output FILE        where to write the profile (JSON)\n"
            "  -m, --model M            model name (and, for events, the model to keep)\n"
            "      --categorical a,b    columns to treat as categorical\n"
            "      --numeric c,d        columns to treat as numeric\n"
            "  -c, --config FILE        take the model's features, task, field paths and\n"
            "                           reference.bins from a driftwatch config\n"
            "      --prediction COL     column of the model's prediction (default prediction)\n"
            "      --score COL          column of the positive class's score (default score)\n"
            "      --label COL          column of the true label (default label)\n"
            "  -h, --help               this help\n"
            "      --version            print the version\n\n"
            "Without -c or the lists, a column is numeric when every non-empty value is a\n"
            "finite number, categorical otherwise. The prediction, score and label columns are\n"
            "the model's outputs, not features (unless a list or the config names them): their\n"
            "distributions, and from the rows with a prediction and a label the profile's\n"
            "performance, the baseline of `run` with reference.source profile (JSON events:\n"
            "the config's input.fields.prediction, .score and .label in each event).\n");
}

static void profiler_free(struct profiler *pr)
{
    free(pr->numtext);
    free(pr->ev);
    dw_agg_free(pr->agg);
    free(pr->col_of);
    dw_files_features_free(pr->model.features, pr->model.n_features);
    free(pr->model.name);
    free(pr->model.positive_class);
    dw_files_tally_free(&pr->tally);
    for (size_t i = 0; i < pr->n_header; i++) {
        free(pr->header[i]);
    }
    free(pr->header);
    free(pr->model_name);
    dw_config_free(&pr->cfg);
}

static int profile(const struct profile_opts *o, char *errstr, size_t errstr_size)
{
    struct profiler pr;
    memset(&pr, 0, sizeof(pr));
    pr.o = o;
    json_t *doc = NULL;
    char *tmp = NULL;
    int rc = -1;
    if (o->config) {
        if (dw_config_load(&pr.cfg, o->config, errstr, errstr_size) != 0) {
            rc = -2; /* a configuration error: exit code 2 */
            goto err;
        }
        pr.have_cfg = 1;
    } else {
        dw_config_defaults(&pr.cfg);
    }
    if (o->model) {
        pr.model_name = dw_strdup(o->model);
    }
    if (dw_files_detect(o->input, &pr.fmt, errstr, errstr_size) != 0) {
        goto err;
    }
    dw_files_tally_init(&pr.tally);
    if (scan(&pr, pass_tally, errstr, errstr_size) != 0) {
        goto err;
    }
    if (pr.rows == 0) {
        dw_err(errstr, errstr_size, "%s: no data rows", o->input);
        goto err;
    }
    if (pr.rows > DW_KLL_MAX_EXACT_CAPACITY) {
        dw_err(errstr, errstr_size,
               "%s: %llu rows: exact quantiles are limited to %u rows; profile a sample", o->input,
               (unsigned long long)pr.rows, DW_KLL_MAX_EXACT_CAPACITY);
        goto err;
    }
    if (setup_model(&pr, errstr, errstr_size) != 0) {
        goto err;
    }
    pr.agg = dw_agg_new_exact(&pr.model, 0, (uint32_t)pr.rows);
    pr.vslot = dw_agg_version_slot(pr.agg, "", 0);
    size_t nf = pr.model.n_features ? pr.model.n_features : 1;
    pr.ev = dw_calloc(1, sizeof(*pr.ev) + nf * sizeof(struct dw_val));
    pr.numtext = dw_calloc(nf, sizeof(*pr.numtext));
    if (scan(&pr, pass_add, errstr, errstr_size) != 0) {
        goto err;
    }
    doc = build_doc(&pr);
    size_t tlen = strlen(o->output) + 8;
    tmp = dw_malloc(tlen);
    snprintf(tmp, tlen, "%s.tmp", o->output);
    if (json_dump_file(doc, tmp, JSON_COMPACT | JSON_REAL_PRECISION(17)) != 0) {
        dw_err(errstr, errstr_size, "%s: cannot write", tmp);
        goto err;
    }
    if (rename(tmp, o->output) != 0) {
        dw_err(errstr, errstr_size, "%s: cannot rename to %s", tmp, o->output);
        remove(tmp);
        goto err;
    }
    fprintf(stderr,
            "driftwatch profile: %s: model %s, %llu rows (%llu labelled), %zu features -> %s\n",
            o->input, pr.model.name, (unsigned long long)pr.rows, (unsigned long long)pr.labeled,
            pr.model.n_features, o->output);
    rc = 0;
err:
    free(tmp);
    json_decref(doc);
    profiler_free(&pr);
    return rc;
}

int dw_cmd_profile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'i'},      {"output", required_argument, NULL, 'o'},
        {"model", required_argument, NULL, 'm'},      {"categorical", required_argument, NULL, 'C'},
        {"numeric", required_argument, NULL, 'N'},    {"config", required_argument, NULL, 'c'},
        {"prediction", required_argument, NULL, 'P'}, {"score", required_argument, NULL, 'S'},
        {"label", required_argument, NULL, 'L'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0},
    };
    struct profile_opts o;
    memset(&o, 0, sizeof(o));
    o.out_columns[OUT_PREDICTION] = "prediction";
    o.out_columns[OUT_SCORE] = "score";
    o.out_columns[OUT_LABEL] = "label";
    int c;
    optind = 0; /* glibc: 0 fully re-initialises getopt (tests call us repeatedly) */
    while ((c = getopt_long(argc, argv, "i:o:m:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o.input = optarg;
            break;
        case 'o':
            o.output = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'C':
            o.categorical = optarg;
            break;
        case 'N':
            o.numeric = optarg;
            break;
        case 'c':
            o.config = optarg;
            break;
        case 'P':
            o.out_columns[OUT_PREDICTION] = optarg;
            break;
        case 'S':
            o.out_columns[OUT_SCORE] = optarg;
            break;
        case 'L':
            o.out_columns[OUT_LABEL] = optarg;
            break;
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, profile_usage);
        }
    }
    if (dw_cmd_no_arguments("profile", argc, argv, optind) != 0) {
        return 2;
    }
    if (!o.input || !o.output) {
        fprintf(stderr, "driftwatch profile: --input and --output are required\n");
        profile_usage(stderr);
        return 2;
    }
    if (o.config && (o.categorical || o.numeric)) {
        fprintf(stderr, "driftwatch profile: -c takes feature types from the config: "
                        "--categorical/--numeric cannot be combined with it\n");
        return 2;
    }
    char errstr[1024];
    int rc = profile(&o, errstr, sizeof(errstr));
    if (rc != 0) {
        fprintf(stderr, "driftwatch profile: %s\n", errstr);
        return rc == -2 ? 2 : 1;
    }
    return 0;
}
