/*
 * test_profile.c - `driftwatch profile` through its entry point, on files written by the test
 * in a temporary directory: CSV quoting and empty cells, forced types, type inference, JSON
 * lines (events and flat objects), gzip input, exact deciles and percentiles of 1..1000
 * (numpy type 7, worked out by hand below), and the round trip through dw_ref_from_json().
 * Also dw_files' number parsing and JSON pointers, which the command relies on.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>
#include <jansson.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/io/dw_files.h"
#include "driftwatch/core/dw_kll.h"

#include "dw_test.h"
#include "dw_test_json.h"

#define DW_TEST_NAME "profile"
#include "dw_test_tmpdir.h"

/* Runs `profile` with NULL-terminated arguments. @returns its exit code. */
static int run_profile(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int rc = dw_test_vcmd(dw_cmd_profile, "profile", NULL, first, ap);
    va_end(ap);
    return rc;
}

static json_t *load(const char *path)
{
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc) {
        fail_msg("%s: %s", path, err.text);
    }
    return doc;
}

static json_t *feature(json_t *doc, const char *name)
{
    json_t *f = json_object_get(json_object_get(doc, "features"), name);
    if (!f) {
        fail_msg("no feature %s", name);
    }
    return f;
}

static const char *ftype(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(feature(doc, name), "type"));
}

static json_int_t fint(json_t *doc, const char *name, const char *key)
{
    json_t *v = json_object_get(feature(doc, name), key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static json_int_t cat_count(json_t *doc, const char *name, const char *cat)
{
    json_t *v = json_object_get(json_object_get(feature(doc, name), "category_counts"), cat);
    return v ? json_integer_value(v) : -1;
}

/* ---- CSV ---- */

static void test_csv_quoting_missing_forced(void **state)
{
    const char *in = path_of("a.csv");
    const char *out = path_of("a.json");
    dw_test_write_file(in, "amount,country,zip,note\n"
                           "1.5,DE,10115,\"hello, world\"\n"
                           "2.5,FR,,\"multi\nline \"\"quoted\"\"\"\n"
                           ",US,20095,x\n"
                           "10,DE,10115,\n");
    assert_int_equal(run_profile("--input", in, "--output", out, "--categorical", "zip", "--model",
                                 "fraud", NULL),
                     0);
    json_t *doc = load(out);
    assert_string_equal(json_string_value(json_object_get(doc, "model")), "fraud");
    assert_string_equal(ftype(doc, "amount"), "numeric");
    assert_int_equal(fint(doc, "amount", "count"), 3);
    assert_int_equal(fint(doc, "amount", "missing"), 1);
    assert_near(json_real_value(json_object_get(feature(doc, "amount"), "mean")), 14.0 / 3.0,
                1e-12);
    /* zip is all numbers but forced categorical: counted by its text */
    assert_string_equal(ftype(doc, "zip"), "categorical");
    assert_int_equal(cat_count(doc, "zip", "10115"), 2);
    assert_int_equal(cat_count(doc, "zip", "20095"), 1);
    assert_int_equal(fint(doc, "zip", "missing"), 1);
    assert_int_equal(cat_count(doc, "note", "hello, world"), 1);
    assert_int_equal(cat_count(doc, "note", "multi\nline \"quoted\""), 1);
    assert_int_equal(fint(doc, "note", "missing"), 1);
    assert_int_equal(cat_count(doc, "country", "DE"), 2);
    json_t *src = json_object_get(doc, "source");
    assert_int_equal(json_integer_value(json_object_get(src, "rows")), 4);
    assert_string_equal(json_string_value(json_object_get(src, "format")), "csv");
    assert_string_equal(json_string_value(json_object_get(src, "file")), in);
    json_decref(doc);
}

static void test_csv_type_inference(void **state)
{
    const char *in = path_of("infer.csv");
    const char *out = path_of("infer.json");
    dw_test_write_file(in, "n,sci,hex,word,inf,empty,mixed\n"
                           "1,1e3,0x10,a,inf,,1\n"
                           "-2.5, 7 ,0x11,b,1,,x\n");
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 0);
    json_t *doc = load(out);
    assert_string_equal(ftype(doc, "n"), "numeric");
    assert_string_equal(ftype(doc, "sci"), "numeric"); /* "1e3", " 7 " (spaces trimmed) */
    assert_string_equal(ftype(doc, "hex"), "categorical");
    assert_string_equal(ftype(doc, "word"), "categorical");
    assert_string_equal(ftype(doc, "inf"), "categorical"); /* not finite: not a number */
    assert_string_equal(ftype(doc, "empty"), "numeric");   /* no values at all */
    assert_int_equal(fint(doc, "empty", "missing"), 2);
    assert_string_equal(ftype(doc, "mixed"), "categorical");
    assert_near(json_real_value(json_object_get(feature(doc, "sci"), "max")), 1000.0, 0);
    /* no --model: the default name */
    assert_string_equal(json_string_value(json_object_get(doc, "model")), "default");
    json_decref(doc);
}

static void test_csv_errors(void **state)
{
    const char *in = path_of("bad.csv");
    const char *out = path_of("bad.json");
    dw_test_write_file(in, "a,b\n1,x\n2,y\n");
    /* forcing a text column numeric fails (naming line and column) and writes nothing */
    assert_int_equal(run_profile("-i", in, "-o", out, "--numeric", "b", NULL), 1);
    assert_int_not_equal(access(out, F_OK), 0);
    /* unknown column in a list */
    assert_int_equal(run_profile("-i", in, "-o", out, "--categorical", "zzz", NULL), 1);
    /* a row with the wrong number of fields */
    dw_test_write_file(in, "a,b\n1,x\n2\n");
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 1);
    /* usage */
    assert_int_equal(run_profile("-i", in, NULL), 2);
    assert_int_equal(run_profile("--help", NULL), 0);
}

/* ---- JSON lines ---- */

static void test_jsonl_events_and_flat(void **state)
{
    const char *in = path_of("ev.jsonl");
    const char *out = path_of("ev.json");
    dw_test_write_file(
        in, "{\"prediction_id\":\"p1\",\"model\":\"fraud\",\"features\":{\"amount\":1,"
            "\"country\":\"DE\",\"code\":7,\"flag\":true,\"age\":null}}\n"
            "\n"
            "{\"prediction_id\":\"p2\",\"model\":\"fraud\",\"features\":{\"amount\":3.5,"
            "\"country\":\"FR\",\"code\":7,\"flag\":false}}\n"
            "{\"prediction_id\":\"p3\",\"model\":\"other\",\"features\":{\"amount\":1000,"
            "\"country\":\"XX\"}}\n");
    assert_int_equal(run_profile("--input", in, "--output", out, "--categorical", "code", NULL), 0);
    json_t *doc = load(out);
    assert_string_equal(json_string_value(json_object_get(doc, "model")), "fraud");
    assert_string_equal(ftype(doc, "amount"), "numeric");
    assert_int_equal(fint(doc, "amount", "count"), 2); /* the "other" model's event skipped */
    assert_near(json_real_value(json_object_get(feature(doc, "amount"), "max")), 3.5, 0);
    assert_string_equal(ftype(doc, "flag"), "categorical"); /* booleans are text */
    assert_int_equal(cat_count(doc, "flag", "true"), 1);
    assert_int_equal(cat_count(doc, "code", "7"), 2); /* a number as its JSON text */
    assert_int_equal(fint(doc, "age", "missing"), 2); /* null and absent */
    assert_int_equal(cat_count(doc, "country", "XX"), -1);
    json_t *src = json_object_get(doc, "source");
    assert_int_equal(json_integer_value(json_object_get(src, "rows")), 2);
    assert_int_equal(json_integer_value(json_object_get(src, "skipped_rows")), 1);
    json_decref(doc);

    /* flat objects, detected by content (no extension) */
    in = path_of("flat.data");
    dw_test_write_file(in, "  {\"x\": 1, \"c\": \"a\"}\n{\"x\": 2, \"c\": \"b\"}\n{\"x\": 4}\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "m1", NULL), 0);
    doc = load(out);
    assert_string_equal(json_string_value(json_object_get(doc, "model")), "m1");
    assert_string_equal(ftype(doc, "x"), "numeric");
    assert_int_equal(fint(doc, "x", "count"), 3);
    assert_int_equal(fint(doc, "c", "missing"), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "source"), "format")), "jsonl");
    json_decref(doc);

    /* invalid JSON names the line */
    dw_test_write_file(in, "{\"x\": 1}\n{\"x\": \n");
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 1);
}

/* A JSON real of a categorical feature is the text the consumer's decoder makes of it
 * (test_decode.c's test_categorical_number_text): 1.0 is "1.0", not "1", or the reference's
 * categories would never meet the live ones. */
static void test_jsonl_categorical_reals_as_decoder_text(void **state)
{
    const char *in = path_of("reals.jsonl");
    const char *out = path_of("reals.json");
    dw_test_write_file(in, "{\"code\":1.0}\n{\"code\":1.0}\n{\"code\":2.5}\n{\"code\":1e16}\n"
                           "{\"code\":0.1}\n{\"code\":100.0}\n{\"code\":7}\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "m1", "--categorical", "code", NULL),
                     0);
    static const struct {
        const char *text;
        json_int_t count; /* -1: no such category */
    } want[] = {{"1.0", 2},   {"2.5", 1}, {"1e+16", 1}, {"0.1", 1},
                {"100.0", 1}, {"7", 1},   {"1", -1}};
    json_t *doc = load(out);
    for (size_t i = 0; i < DW_ARRAY_SIZE(want); i++) {
        if (cat_count(doc, "code", want[i].text) != want[i].count) {
            fail_msg("category \"%s\": %lld, want %lld", want[i].text,
                     (long long)cat_count(doc, "code", want[i].text), (long long)want[i].count);
        }
    }
    json_decref(doc);
}

static void test_gzip_input(void **state)
{
    const char *in = path_of("g.csv.gz");
    const char *out = path_of("g.json");
    gzFile gz = gzopen(in, "wb");
    assert_non_null(gz);
    gzputs(gz, "v,c\n");
    for (int i = 1; i <= 100; i++) {
        gzprintf(gz, "%d,%s\n", i, i % 2 ? "odd" : "even");
    }
    assert_int_equal(gzclose(gz), Z_OK);
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 0);
    json_t *doc = load(out);
    assert_int_equal(fint(doc, "v", "count"), 100);
    assert_int_equal(cat_count(doc, "c", "odd"), 50);
    /* deciles of 1..100: 10.9, 20.8, ..., 90.1 (docs/statistics.md's example) */
    json_t *edges = json_object_get(feature(doc, "v"), "edges");
    assert_int_equal(json_array_size(edges), 9);
    for (size_t i = 0; i < 9; i++) {
        double want = 1.0 + 99.0 * (double)(i + 1) / 10.0;
        assert_near(json_real_value(json_array_get(edges, i)), want, 1e-9);
    }
    json_decref(doc);
}

/* ---- exact quantiles and round trip ---- */

static double quantile_at(json_t *f, int percent)
{
    json_t *q = json_object_get(f, "quantiles");
    json_t *pct = json_object_get(q, "percent");
    json_t *vals = json_object_get(q, "values");
    assert_int_equal(json_array_size(pct), 101);
    assert_int_equal(json_integer_value(json_array_get(pct, (size_t)percent)), percent);
    return json_real_value(json_array_get(vals, (size_t)percent));
}

static void test_exact_quantiles_1_to_1000(void **state)
{
    const char *in = path_of("k.csv");
    const char *out = path_of("k.json");
    /* 1..1000 in a scrambled order (7 is coprime with 1000) */
    size_t cap = 16 * 1000 + 16;
    char *text = malloc(cap);
    size_t n = (size_t)snprintf(text, cap, "x\n");
    for (int i = 0; i < 1000; i++) {
        n += (size_t)snprintf(text + n, cap - n, "%d\n", (i * 7) % 1000 + 1);
    }
    dw_test_write_file(in, text);
    free(text);
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 0);
    json_t *doc = load(out);
    json_t *f = feature(doc, "x");
    /*
     * numpy.quantile(np.arange(1, 1001), q) (type 7): h = 999 q, x[h] = 1 + h, so
     * Q(q) = 1 + 999 q: deciles 100.9, 200.8, ..., 900.1; Q(.01) = 10.99, Q(.05) = 50.95,
     * Q(.25) = 250.75, Q(.5) = 500.5, Q(.75) = 750.25, Q(.95) = 950.05, Q(.99) = 990.01.
     */
    static const struct {
        int pct;
        double want;
    } cases[] = {{0, 1.0},     {1, 10.99},  {5, 50.95},   {10, 100.9},  {25, 250.75}, {50, 500.5},
                 {75, 750.25}, {90, 900.1}, {95, 950.05}, {99, 990.01}, {100, 1000.0}};
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        assert_near(quantile_at(f, cases[i].pct), cases[i].want, 1e-9);
    }
    json_t *edges = json_object_get(f, "edges");
    json_t *bc = json_object_get(f, "bin_counts");
    json_t *props = json_object_get(f, "proportions");
    assert_int_equal(json_array_size(edges), 9);
    assert_int_equal(json_array_size(bc), 10);
    for (size_t i = 0; i < 9; i++) {
        assert_near(json_real_value(json_array_get(edges, i)), 1.0 + 999.0 * (double)(i + 1) / 10.0,
                    1e-9);
    }
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(json_integer_value(json_array_get(bc, i)), 100);
        assert_near(json_real_value(json_array_get(props, i)), 0.1, 1e-15);
    }
    /* population std of 1..1000: sqrt((1000^2 - 1) / 12) */
    assert_near(json_real_value(json_object_get(f, "std")), sqrt((1e6 - 1.0) / 12.0), 1e-9);

    /* KS reads the reference's sorted view ("sample"): exact here, 1..1000 once each; the
     * profile holds it once (no second copy as a serialised sketch) */
    assert_null(json_object_get(f, "sketch"));
    json_t *sample = json_object_get(f, "sample");
    json_t *values = json_object_get(sample, "values");
    json_t *weights = json_object_get(sample, "weights");
    assert_int_equal(json_array_size(values), 1000);
    assert_int_equal(json_array_size(weights), 1000);
    for (size_t i = 0; i < 1000; i++) {
        assert_near(json_real_value(json_array_get(values, i)), (double)(i + 1), 0.0);
        assert_int_equal(json_integer_value(json_array_get(weights, i)), 1);
    }
    json_decref(doc);
}

static void test_round_trip_through_ref_from_json(void **state)
{
    const char *in = path_of("rt.csv");
    const char *out = path_of("rt.json");
    dw_test_write_file(in, "amount,country\n3.25,DE\n1.125,FR\n2,DE\n7.5,\n,US\n0.1,DE\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "fraud", NULL), 0);
    json_t *doc = load(out);
    struct dw_feature_cfg feats[] = {{"amount", DW_FEATURE_NUMERIC},
                                     {"country", DW_FEATURE_CATEGORICAL}};
    struct dw_model_cfg m = {
        .name = "fraud", .positive_class = "1", .features = feats, .n_features = 2};
    char err[256];
    struct dw_ref *ref = dw_ref_from_json(&m, doc, err, sizeof(err));
    if (!ref) {
        fail_msg("dw_ref_from_json: %s", err);
    }
    assert_int_equal(ref->predictions, 6);
    /* features only: no made-up score or class distribution, and the reference says so */
    assert_null(json_object_get(doc, "outputs"));
    assert_false(ref->has_outputs);
    json_t *fa = feature(doc, "amount");
    const struct dw_ref_feature *ra = &ref->feats[0];
    assert_int_equal(ra->count, 5);
    json_t *edges = json_object_get(fa, "edges");
    assert_int_equal(ra->n_edges, json_array_size(edges));
    for (size_t i = 0; i < ra->n_edges; i++) {
        /* 17 significant digits: the very same doubles */
        assert_double_exact(ra->edges[i], json_real_value(json_array_get(edges, i)));
    }
    assert_double_exact(ra->mean, json_real_value(json_object_get(fa, "mean")));
    assert_double_exact(ra->std, json_real_value(json_object_get(fa, "std")));
    assert_double_exact(ra->mean, (3.25 + 1.125 + 2 + 7.5 + 0.1) / 5);
    const struct dw_ref_feature *rc = &ref->feats[1];
    assert_int_equal(rc->count, 5);
    assert_int_equal(rc->n_cats, 3);
    assert_string_equal(rc->cats[0], "DE");
    assert_near(rc->cat_props[0], 0.6, 1e-15);
    /* the reference rebuilt as JSON equals the profile's reference fields */
    json_t *again = dw_ref_to_json(ref);
    json_t *again_feats = json_object_get(again, "features");
    json_t *again_amount = json_object_get(again_feats, "amount");
    assert_true(json_equal(json_object_get(again_amount, "edges"), edges));
    json_decref(again);
    dw_ref_free(ref);
    json_decref(doc);
}

/* Columns named prediction, score and label are the model's outputs, not features: the profile
 * has their distributions ("outputs"), the labels' too (final in training data); a feature list
 * that names one keeps it a feature. */
static void test_output_columns(void **state)
{
    (void)state;
    const char *in = path_of("out.csv");
    const char *out = path_of("out.json");
    dw_test_write_file(in, "amount,prediction,score,label\n1.5,1,0.9,1\n2.5,0,0.2,0\n"
                           "3.5,1,0.7,0\n4.5,,,1\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "fraud", NULL), 0);
    json_t *doc = load(out);
    assert_int_equal(json_object_size(json_object_get(doc, "features")), 1);
    json_t *outs = json_object_get(doc, "outputs");
    json_t *score = json_object_get(outs, "score");
    assert_string_equal(json_string_value(json_object_get(score, "type")), "numeric");
    assert_int_equal(json_integer_value(json_object_get(score, "count")), 3);
    assert_near(json_real_value(json_object_get(score, "mean")), 1.8 / 3.0, 1e-15);
    json_t *pred = json_object_get(json_object_get(outs, "prediction"), "category_counts");
    assert_int_equal(json_integer_value(json_object_get(pred, "1")), 2);
    assert_int_equal(json_integer_value(json_object_get(pred, "0")), 1);
    assert_int_equal(json_object_size(pred), 2); /* the row without one is not "" */
    json_t *label = json_object_get(json_object_get(outs, "label"), "category_counts");
    assert_int_equal(json_integer_value(json_object_get(label, "1")), 2);
    assert_int_equal(json_integer_value(json_object_get(label, "0")), 2);
    struct dw_feature_cfg feats[] = {{"amount", DW_FEATURE_NUMERIC}};
    struct dw_model_cfg m = {.name = "fraud",
                             .task = DW_TASK_CLASSIFICATION,
                             .positive_class = "1",
                             .features = feats,
                             .n_features = 1};
    char err[256];
    struct dw_ref *ref = dw_ref_from_json(&m, doc, err, sizeof(err));
    if (!ref) {
        fail_msg("dw_ref_from_json: %s", err);
    }
    assert_true(ref->has_outputs);
    assert_int_equal(ref->out[DW_REF_OUT_LABEL].count, 4);
    assert_int_equal(ref->out[DW_REF_OUT_SCORE].n_sample, 3);
    dw_ref_free(ref);
    json_decref(doc);

    /* --numeric score: a feature named score */
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "fraud", "--numeric", "score", NULL),
                     0);
    doc = load(out);
    assert_string_equal(ftype(doc, "score"), "numeric");
    assert_null(json_object_get(json_object_get(doc, "outputs"), "score"));
    assert_non_null(json_object_get(json_object_get(doc, "outputs"), "label"));
    json_decref(doc);

    /* a score that is not a number names the line and the column */
    dw_test_write_file(in, "amount,score\n1,0.5\n2,high\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "fraud", NULL), 1);
}

/* ---- outcomes ---- */

/* prediction, label and score columns are outcomes, not features: the labelled rows give the
 * profile's performance (as a window report computes it) and its outcomes (the baseline); a
 * row without a label is a prediction only; bad values name the line and column. */
static void test_outcome_columns(void **state)
{
    const char *in = path_of("lab.csv");
    const char *out = path_of("lab.json");
    /* 5 labelled rows: 4 right (accuracy 0.8); positive "1": tp 2, fp 1, fn 0, tn 2 */
    dw_test_write_file(in, "amount,prediction,label,score\n"
                           "1,1,1,0.9\n"
                           "2,1,1,0.8\n"
                           "3,1,0,0.7\n"
                           "4,0,0,0.2\n"
                           "5,0,0,0.1\n"
                           "6,1,,0.6\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "-m", "fraud", NULL), 0);
    json_t *doc = load(out);
    json_t *feats = json_object_get(doc, "features");
    assert_int_equal(json_object_size(feats), 1); /* amount only */
    assert_int_equal(json_integer_value(json_object_get(doc, "predictions")), 6);
    assert_int_equal(json_integer_value(json_object_get(doc, "labeled")), 5);
    json_t *perf = json_object_get(doc, "performance");
    assert_near(jreal(perf, "accuracy"), 0.8, 1e-15);
    assert_near(jreal(perf, "precision"), 2.0 / 3.0, 1e-15);
    assert_near(jreal(perf, "recall"), 1.0, 0);
    /* brier over the 5 scored outcomes: (.01 + .04 + .49 + .04 + .01) / 5 */
    assert_near(jreal(perf, "brier"), 0.59 / 5, 1e-15);
    assert_near(jreal(perf, "roc_auc"), 1.0, 0); /* every positive scored above every negative */
    assert_string_equal(jstr(json_object_get(doc, "origin"), "source"), "profile");
    struct dw_feature_cfg fc[] = {{"amount", DW_FEATURE_NUMERIC}};
    struct dw_model_cfg m = {
        .name = "fraud", .positive_class = "1", .features = fc, .n_features = 1};
    char err[256];
    struct dw_ref *ref = dw_ref_from_json(&m, doc, err, sizeof(err));
    if (!ref) {
        fail_msg("dw_ref_from_json: %s", err);
    }
    assert_int_equal(ref->source, DW_REF_SOURCE_PROFILE);
    assert_non_null(ref->outcomes);
    assert_int_equal(ref->outcomes->all.labeled, 5);
    assert_int_equal(ref->outcomes->all.correct, 4);
    assert_int_equal(ref->outcomes->all.tp, 2);
    assert_int_equal(ref->outcomes->all.scored, 5);
    dw_ref_free(ref);
    json_decref(doc);

    /* other column names; without labels there are no outcomes and no performance */
    dw_test_write_file(in, "amount,yhat\n1,1\n2,0\n");
    assert_int_equal(run_profile("-i", in, "-o", out, "--prediction", "yhat", NULL), 0);
    doc = load(out);
    assert_int_equal(json_object_size(json_object_get(doc, "features")), 1);
    assert_true(json_is_null(json_object_get(doc, "performance")));
    assert_null(json_object_get(doc, "outcomes"));
    json_decref(doc);

    /* JSON events: the config's input.fields pointers (label inline in the training event) */
    in = path_of("lab.jsonl");
    dw_test_write_file(in, "{\"model\":\"fraud\",\"features\":{\"amount\":1},\"prediction\":1,"
                           "\"label\":1,\"score\":0.75}\n"
                           "{\"model\":\"fraud\",\"features\":{\"amount\":2},\"prediction\":\"1\","
                           "\"label\":0}\n");
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 0);
    doc = load(out);
    perf = json_object_get(doc, "performance");
    assert_near(jreal(perf, "accuracy"), 0.5, 0); /* 1 and "1" are the same class */
    json_decref(doc);

    /* bad values */
    in = path_of("bad_lab.csv");
    dw_test_write_file(in, "amount,prediction,label,score\n1,1,1,0.5\n2,1,0,1.5\n");
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 1);
    dw_test_write_file(in, "amount,prediction,label,score\n1,1,1,high\n");
    assert_int_equal(run_profile("-i", in, "-o", out, NULL), 1);
}

/* ---- dw_files helpers ---- */

static void test_files_numbers_and_pointers(void **state)
{
    double x;
    assert_int_equal(dw_files_parse_number("  -1.5e2 ", 9, &x), 0);
    assert_near(x, -150.0, 0);
    assert_int_equal(dw_files_parse_number("12abc", 5, &x), -1);
    assert_int_equal(dw_files_parse_number("nan", 3, &x), -1);
    assert_int_equal(dw_files_parse_number("1e999", 5, &x), -1);
    assert_int_equal(dw_files_parse_number("", 0, &x), -1);
    json_t *doc = json_loads("{\"a\":{\"b/c\":[10,{\"~d\":5}]}}", 0, NULL);
    assert_non_null(doc);
    assert_ptr_equal(dw_files_pointer(doc, ""), doc);
    assert_int_equal(json_integer_value(dw_files_pointer(doc, "/a/b~1c/0")), 10);
    assert_int_equal(json_integer_value(dw_files_pointer(doc, "/a/b~1c/1/~0d")), 5);
    assert_null(dw_files_pointer(doc, "/a/b~1c/2"));
    assert_null(dw_files_pointer(doc, "/a/x"));
    assert_null(dw_files_pointer(doc, "a"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_quoting_missing_forced),
        cmocka_unit_test(test_csv_type_inference),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_jsonl_events_and_flat),
        cmocka_unit_test(test_gzip_input),
        cmocka_unit_test(test_jsonl_categorical_reals_as_decoder_text),
        cmocka_unit_test(test_exact_quantiles_1_to_1000),
        cmocka_unit_test(test_round_trip_through_ref_from_json),
        cmocka_unit_test(test_outcome_columns),
        cmocka_unit_test(test_output_columns),
        cmocka_unit_test(test_files_numbers_and_pointers),
    };
    return cmocka_run_group_tests(tests, dw_tmp_setup, dw_tmp_teardown);
}
