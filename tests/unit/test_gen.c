/*
 * test_gen.c - `driftwatch gen` through its entry point, with file sinks in a temporary
 * directory. The ground truth the command writes is recomputed here independently, by parsing
 * the JSON-lines files it produced with jansson and applying the product's definitions
 * (docs/contract.md, sections 2.2 and 4: a label counts in its prediction's window, first label
 * wins, only valid predictions count).
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

#include <cmocka.h>
#include <jansson.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"

#include "dw_test.h"
#include "dw_test_json.h"

#define DW_TEST_NAME "gen"
#include "dw_test_tmpdir.h"

#define OVERSIZE_LIMIT 1000000 /* bytes; larger messages count as oversize */

/* Runs `gen` with NULL-terminated arguments; always adds -q. @returns its exit code. */
static int run_gen(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int rc = dw_test_vcmd(dw_cmd_gen, "gen", "-q", first, ap);
    va_end(ap);
    return rc;
}

/* Runs `gen` (with -q) with the descriptor fd (stdout or stderr) written to the file path.
 * @returns its exit code. */
static int run_gen_to(int fd, const char *path, const char *first, ...)
{
    fflush(fd == STDOUT_FILENO ? stdout : stderr);
    int saved = dup(fd);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), fd);
    va_list ap;
    va_start(ap, first);
    int rc = dw_test_vcmd(dw_cmd_gen, "gen", "-q", first, ap);
    va_end(ap);
    fflush(fd == STDOUT_FILENO ? stdout : stderr);
    dup2(saved, fd);
    close(saved);
    fclose(f);
    return rc;
}

static char *slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len_out = (size_t)n;
    return buf;
}

/* Splits a buffer into lines in place. @returns the count; *lines and *lens are malloc'ed. */
static size_t split_lines(char *buf, size_t len, char ***lines, size_t **lens)
{
    size_t n = 0, cap = 1024;
    *lines = malloc(cap * sizeof(char *));
    *lens = malloc(cap * sizeof(size_t));
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            if (n == cap) {
                cap *= 2;
                *lines = realloc(*lines, cap * sizeof(char *));
                *lens = realloc(*lens, cap * sizeof(size_t));
            }
            buf[i] = '\0';
            (*lines)[n] = buf + start;
            (*lens)[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    assert_int_equal(start, len); /* every line ends with a newline */
    return n;
}

static int64_t ts_of(json_t *obj)
{
    const char *s = json_string_value(json_object_get(obj, "timestamp"));
    assert_non_null(s);
    int64_t ms;
    assert_int_equal(dw_time_parse_rfc3339(s, strlen(s), &ms), 0);
    return ms;
}

/* ---- an independent reading of the generated files --------------------------------------- */

#define NFEAT_MAX 8

struct pred {
    int64_t ts;
    char version[16];
    int prediction;
    double score;
    double amount; /* NAN when missing */
    char country[4];
    unsigned char missing[NFEAT_MAX];
    double latency_ms;
    int n_labels;
    int first_label;
    int conflicts;
    int early;
    int64_t first_label_ts;
};

struct dataset {
    struct pred *preds;
    size_t n_preds;
    json_t *ids;     /* prediction_id -> index */
    int64_t junk[5]; /* invalid_json, missing_id, wrong_type, invalid_utf8, unknown_model */
    int64_t oversize;
    size_t pred_lines;
    size_t label_lines;
    int64_t label_events;
    int64_t early_labels;
};

static const char *const feature_names[] = {"amount", "age", "balance", "country", "merchant"};
#define N_NUMERIC 3
#define N_FEATURES 5

static int has_bad_utf8(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if ((unsigned char)s[i] == 0xC3 && s[i + 1] == 0x28) {
            return 1;
        }
    }
    return 0;
}

/* Reads predictions and labels (default feature set: 3 numeric, 2 categorical, model fraud). */
static void dataset_load(struct dataset *ds, const char *pred_path, const char *label_path)
{
    memset(ds, 0, sizeof(*ds));
    ds->ids = json_object();
    size_t len;
    char *buf = slurp(pred_path, &len);
    char **lines;
    size_t *lens;
    size_t n = split_lines(buf, len, &lines, &lens);
    ds->pred_lines = n;
    ds->preds = calloc(n + 1, sizeof(struct pred));
    int64_t last_ts = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] >= OVERSIZE_LIMIT) {
            json_t *big = json_loadb(lines[i], lens[i], 0, NULL);
            assert_non_null(big); /* valid JSON otherwise */
            json_decref(big);
            ds->oversize++;
            continue;
        }
        if (has_bad_utf8(lines[i], lens[i])) {
            assert_null(json_loadb(lines[i], lens[i], 0, NULL)); /* jansson rejects it */
            ds->junk[3]++;
            continue;
        }
        json_t *obj = json_loadb(lines[i], lens[i], 0, NULL);
        if (!obj) {
            ds->junk[0]++;
            continue;
        }
        const char *id = json_string_value(json_object_get(obj, "prediction_id"));
        const char *model = json_string_value(json_object_get(obj, "model"));
        json_t *feats = json_object_get(obj, "features");
        int wrong = 0;
        for (int k = 0; k < N_NUMERIC; k++) {
            json_t *v = json_object_get(feats, feature_names[k]);
            if (v && !json_is_number(v) && !json_is_null(v)) {
                wrong = 1;
            }
        }
        if (!id) {
            ds->junk[1]++;
        } else if (wrong) {
            ds->junk[2]++;
        } else if (!model || strcmp(model, "fraud") != 0) {
            ds->junk[4]++;
        } else {
            struct pred *p = &ds->preds[ds->n_preds];
            p->ts = ts_of(obj);
            assert_true(p->ts >= last_ts); /* predictions are written in event-time order */
            last_ts = p->ts;
            snprintf(p->version, sizeof(p->version), "%s",
                     json_string_value(json_object_get(obj, "model_version")));
            p->prediction = (int)json_integer_value(json_object_get(obj, "prediction"));
            double score = json_number_value(json_object_get(obj, "score"));
            /* in the predicted class's half (its edge included: --scores calibrated rounds) */
            assert_true(p->prediction ? (score >= 0.5 && score <= 1.0)
                                      : (score >= 0.0 && score <= 0.5));
            p->score = score;
            p->latency_ms = json_number_value(json_object_get(obj, "latency_ms"));
            for (int k = 0; k < N_FEATURES; k++) {
                json_t *v = json_object_get(feats, feature_names[k]);
                assert_non_null(v);
                p->missing[k] = json_is_null(v);
            }
            json_t *amount = json_object_get(feats, "amount");
            p->amount = json_is_null(amount) ? NAN : json_number_value(amount);
            json_t *country = json_object_get(feats, "country");
            snprintf(p->country, sizeof(p->country), "%s",
                     json_is_string(country) ? json_string_value(country) : "");
            assert_null(json_object_get(ds->ids, id)); /* ids are unique */
            json_object_set_new(ds->ids, id, json_integer((json_int_t)ds->n_preds));
            ds->n_preds++;
        }
        json_decref(obj);
    }
    free(lines);
    free(lens);
    free(buf);

    buf = slurp(label_path, &len);
    n = split_lines(buf, len, &lines, &lens);
    ds->label_lines = n;
    last_ts = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        json_t *obj = json_loadb(lines[i], lens[i], 0, NULL);
        assert_non_null(obj);
        int64_t ts = ts_of(obj);
        assert_true(ts >= last_ts); /* labels are written in arrival order */
        last_ts = ts;
        const char *id = json_string_value(json_object_get(obj, "prediction_id"));
        json_t *idx = json_object_get(ds->ids, id);
        assert_non_null(idx);
        struct pred *p = &ds->preds[json_integer_value(idx)];
        int label = (int)json_integer_value(json_object_get(obj, "label"));
        ds->label_events++;
        if (p->n_labels == 0) {
            p->first_label = label;
            p->first_label_ts = ts;
            if (ts < p->ts) {
                /* An early label arrives 1 ms before its prediction. */
                assert_int_equal(ts, p->ts - 1);
                p->early = 1;
                ds->early_labels++;
            }
        } else {
            assert_true(ts > p->first_label_ts); /* duplicates come after the first */
            p->conflicts += label != p->first_label;
        }
        p->n_labels++;
        json_decref(obj);
    }
    free(lines);
    free(lens);
    free(buf);
}

static void dataset_free(struct dataset *ds)
{
    free(ds->preds);
    json_decref(ds->ids);
}

/* Builds the truth lines from the dataset (window_ms tumbling windows, epoch aligned). */
static json_t *dataset_truth(const struct dataset *ds, int64_t window_ms)
{
    json_t *out = json_array();
    size_t i = 0;
    while (i < ds->n_preds) {
        int64_t ws = dw_floor_div(ds->preds[i].ts, window_ms) * window_ms;
        int64_t np = 0, labeled = 0, correct = 0, dups = 0, conflicts = 0;
        int64_t fcount[N_FEATURES] = {0}, fmissing[N_FEATURES] = {0};
        json_t *versions = json_object();
        for (; i < ds->n_preds && dw_floor_div(ds->preds[i].ts, window_ms) * window_ms == ws; i++) {
            const struct pred *p = &ds->preds[i];
            int is_labeled = p->n_labels > 0;
            int is_correct = is_labeled && p->first_label == p->prediction;
            np++;
            labeled += is_labeled;
            correct += is_correct;
            dups += is_labeled ? p->n_labels - 1 : 0;
            conflicts += p->conflicts;
            json_t *v = json_object_get(versions, p->version);
            if (!v) {
                v = json_pack("{s:I,s:I,s:I}", "predictions", (json_int_t)0, "labeled",
                              (json_int_t)0, "correct", (json_int_t)0);
                json_object_set_new(versions, p->version, v);
            }
            const char *keys[3] = {"predictions", "labeled", "correct"};
            int add[3] = {1, is_labeled, is_correct};
            for (int k = 0; k < 3; k++) {
                json_t *c = json_object_get(v, keys[k]);
                json_integer_set(c, json_integer_value(c) + add[k]);
            }
            for (int k = 0; k < N_FEATURES; k++) {
                fcount[k] += !p->missing[k];
                fmissing[k] += p->missing[k];
            }
        }
        json_t *features = json_object();
        for (int k = 0; k < N_FEATURES; k++) {
            json_object_set_new(features, feature_names[k],
                                json_pack("{s:I,s:I}", "count", (json_int_t)fcount[k], "missing",
                                          (json_int_t)fmissing[k]));
        }
        char ts[40];
        dw_time_format_rfc3339(ws, ts, sizeof(ts));
        json_array_append_new(
            out, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "model", "fraud",
                           "window_start", ts, "window_start_ms", (json_int_t)ws, "predictions",
                           (json_int_t)np, "labeled", (json_int_t)labeled, "correct",
                           (json_int_t)correct, "duplicate_labels", (json_int_t)dups, "conflicts",
                           (json_int_t)conflicts, "versions", versions, "features", features));
    }
    int64_t labels = 0, dups = 0;
    for (size_t k = 0; k < ds->n_preds; k++) {
        labels += ds->preds[k].n_labels > 0;
        dups += ds->preds[k].n_labels > 1 ? ds->preds[k].n_labels - 1 : 0;
    }
    json_array_append_new(
        out,
        json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I},s:I}}", "summary", "predictions",
                  (json_int_t)ds->n_preds, "labels", (json_int_t)labels, "label_events",
                  (json_int_t)ds->label_events, "early_labels", (json_int_t)ds->early_labels,
                  "duplicate_labels", (json_int_t)dups, "malformed", "invalid_json",
                  (json_int_t)ds->junk[0], "missing_id", (json_int_t)ds->junk[1], "wrong_type",
                  (json_int_t)ds->junk[2], "invalid_utf8", (json_int_t)ds->junk[3], "unknown_model",
                  (json_int_t)ds->junk[4], "oversize", (json_int_t)ds->oversize));
    return out;
}

static json_t *load_truth(const char *path)
{
    size_t len;
    char *buf = slurp(path, &len);
    char **lines;
    size_t *lens;
    size_t n = split_lines(buf, len, &lines, &lens);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *obj = json_loadb(lines[i], lens[i], 0, NULL);
        assert_non_null(obj);
        json_array_append_new(out, obj);
    }
    free(lines);
    free(lens);
    free(buf);
    return out;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_help_and_usage_errors(void **state)
{
    assert_int_equal(run_gen("--help", NULL), 0);
    assert_int_equal(run_gen("--bogus", NULL), 2);
    assert_int_equal(run_gen("-Z", NULL), 2);
    assert_int_equal(run_gen("--count", "abc", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--count", NULL), 2);
    assert_int_equal(run_gen("--missing", "1.5", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--drift-shift", "nosuch=1", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--drift-mix", "amount", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--start", "yesterday", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--versions", "1.0,,2.0", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--model", "a\"b", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen(NULL), 2); /* no sink */
    assert_int_equal(run_gen("--brokers", "127.0.0.1:9", "--predictions-out", path_of("p"), NULL),
                     2);
    /* Parsing state is reset between calls: a good call after bad ones works. */
    assert_int_equal(run_gen("--count", "10", "--truth", path_of("t"), NULL), 0);
    /* A runtime failure (unwritable file) is 1, not 2. */
    assert_int_equal(run_gen("--count", "10", "--predictions-out", "/nonexistent/dir/p", NULL), 1);
}

static void test_print_models(void **state)
{
    const char *out = path_of("models.yaml");
    int rc = run_gen_to(STDOUT_FILENO, out, "--print-models", "--model", "churn", "--numeric", "5",
                        "--categorical", "4", NULL);
    assert_int_equal(rc, 0);
    size_t len;
    char *text = slurp(out, &len);
    assert_contains(text, "models:\n  churn:\n    task: classification\n"
                          "    features:\n      amount: numeric\n");
    assert_contains(text, "      tenure: numeric\n      num_4: numeric\n"
                          "      country: categorical\n      merchant: categorical\n"
                          "      device: categorical\n      cat_3: categorical\n");
    free(text);
}

static int files_equal(const char *a, const char *b)
{
    size_t la, lb;
    char *x = slurp(a, &la);
    char *y = slurp(b, &lb);
    int eq = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return eq;
}

static void test_determinism(void **state)
{
#define COMMON                                                                                     \
    "--count", "2000", "--versions", "a,b,c", "--missing", "0.1", "--early-labels", "0.1",         \
        "--duplicate-labels", "0.2", "--malformed", "0.05", "--label-share", "0.7"
    assert_int_equal(run_gen(COMMON, "--seed", "7", "--predictions-out", path_of("p1"),
                             "--labels-out", path_of("l1"), "--truth", path_of("t1"), NULL),
                     0);
    assert_int_equal(run_gen(COMMON, "--seed", "7", "--predictions-out", path_of("p2"),
                             "--labels-out", path_of("l2"), "--truth", path_of("t2"), NULL),
                     0);
    assert_int_equal(run_gen(COMMON, "--seed", "8", "--predictions-out", path_of("p3"),
                             "--labels-out", path_of("l3"), "--truth", path_of("t3"), NULL),
                     0);
    /* The wall-clock throttle does not change the output. */
    assert_int_equal(run_gen(COMMON, "--seed", "7", "--rate", "1000000", "--predictions-out",
                             path_of("p4"), "--labels-out", path_of("l4"), NULL),
                     0);
#undef COMMON
    assert_true(files_equal(path_of("p1"), path_of("p2")));
    assert_true(files_equal(path_of("l1"), path_of("l2")));
    assert_true(files_equal(path_of("t1"), path_of("t2")));
    assert_true(files_equal(path_of("p1"), path_of("p4")));
    assert_true(files_equal(path_of("l1"), path_of("l4")));
    assert_false(files_equal(path_of("p1"), path_of("p3")));
    assert_false(files_equal(path_of("l1"), path_of("l3")));
    /* Not just the ids: the drawn values differ with the seed. */
    size_t la, lb;
    char *a = slurp(path_of("p1"), &la);
    char *b = slurp(path_of("p3"), &lb);
    *strchr(a, '\n') = '\0';
    *strchr(b, '\n') = '\0';
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_false(json_equal(json_object_get(ja, "features"), json_object_get(jb, "features")));
    json_decref(ja);
    json_decref(jb);
    free(a);
    free(b);
}

static void test_truth_matches_files(void **state)
{
    const char *pp = path_of("tp"), *lp = path_of("tl"), *tp = path_of("tt");
    assert_int_equal(run_gen("--seed", "42", "--count", "3000", "--eps", "7", "--versions",
                             "1.0.0,2.0.0", "--missing", "0.1", "--label-share", "0.8",
                             "--early-labels", "0.1", "--duplicate-labels", "0.15", "--conflicts",
                             "0.5", "--malformed", "0.02", "--oversize", "2", "--label-delay", "20",
                             "--start", "2026-01-01T00:00:30Z", "--predictions-out", pp,
                             "--labels-out", lp, "--truth", tp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    json_t *truth = load_truth(tp);
    json_t *mine = dataset_truth(&ds, 60000);

    /* Counts. */
    assert_int_equal(ds.n_preds, 3000);
    assert_int_equal(ds.pred_lines, 3000 + 60 + 2); /* valid + malformed + oversize */
    json_t *summary = json_object_get(json_array_get(truth, json_array_size(truth) - 1), "summary");
    assert_non_null(summary);
    json_int_t labels = json_integer_value(json_object_get(summary, "labels"));
    json_int_t dups = json_integer_value(json_object_get(summary, "duplicate_labels"));
    assert_int_equal(ds.label_lines, (size_t)(labels + dups));
    /* Shares are near their targets. */
    assert_true(labels > 0.75 * 3000 && labels < 0.85 * 3000);
    assert_true(dups > 0.10 * labels && dups < 0.20 * labels);
    assert_true(ds.early_labels > 0.06 * labels && ds.early_labels < 0.14 * labels);
    /* Every malformed kind appears (60 junk messages cycle through 5 kinds). */
    for (int k = 0; k < 5; k++) {
        assert_int_equal(ds.junk[k], 12);
    }
    assert_int_equal(ds.oversize, 2);
    /* 3000 predictions at 7/s from :30 span 429 s: windows 00:00 .. 00:07. */
    assert_int_equal(json_array_size(truth), 8 + 1);

    /* The whole truth file equals the independent recomputation, line by line. */
    assert_int_equal(json_array_size(truth), json_array_size(mine));
    for (size_t i = 0; i < json_array_size(truth); i++) {
        if (!json_equal(json_array_get(truth, i), json_array_get(mine, i))) {
            char *a = json_dumps(json_array_get(truth, i), JSON_COMPACT | JSON_SORT_KEYS);
            char *b = json_dumps(json_array_get(mine, i), JSON_COMPACT | JSON_SORT_KEYS);
            print_error("line %zu differs:\n gen:  %s\n test: %s\n", i, a, b);
            free(a);
            free(b);
            fail();
        }
    }
    json_decref(mine);
    json_decref(truth);
    dataset_free(&ds);
}

static void test_drift(void **state)
{
    const char *pp = path_of("dp"), *lp = path_of("dl");
    assert_int_equal(run_gen("--seed", "3", "--count", "8000", "--eps", "10", "--drift-at", "400",
                             "--drift-shift", "amount=3", "--drift-mix", "country",
                             "--drift-accuracy", "0.6", "--predictions-out", pp, "--labels-out", lp,
                             NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    assert_int_equal(ds.n_preds, 8000);
    int64_t drift_ms = ds.preds[0].ts + 400000;
    double sum[2] = {0}, n[2] = {0}, correct[2] = {0}, labeled[2] = {0};
    double de[2] = {0}, pl[2] = {0}, cats[2] = {0};
    for (size_t i = 0; i < ds.n_preds; i++) {
        const struct pred *p = &ds.preds[i];
        int after = p->ts >= drift_ms;
        if (!isnan(p->amount)) {
            sum[after] += p->amount;
            n[after]++;
        }
        if (p->n_labels > 0) {
            labeled[after]++;
            correct[after] += p->first_label == p->prediction;
        }
        cats[after]++;
        de[after] += strcmp(p->country, "DE") == 0;
        pl[after] += strcmp(p->country, "PL") == 0;
    }
    /* amount ~ Normal(50, 10) before; mean + 3 std = 80 after. */
    double before = sum[0] / n[0], after = sum[1] / n[1];
    assert_true(fabs(before - 50.0) < 1.0);
    assert_true(fabs(after - 80.0) < 1.0);
    /* Accuracy 0.9 before, 0.6 after. */
    assert_true(fabs(correct[0] / labeled[0] - 0.9) < 0.03);
    assert_true(fabs(correct[1] / labeled[1] - 0.6) < 0.04);
    /* Country mix: DE most likely before (1/H8 = 0.368), PL least (0.046); reversed after. */
    assert_true(de[0] / cats[0] > 0.32 && pl[0] / cats[0] < 0.08);
    assert_true(pl[1] / cats[1] > 0.32 && de[1] / cats[1] < 0.08);
    dataset_free(&ds);

    /* Without --drift-at nothing drifts. */
    assert_int_equal(run_gen("--seed", "3", "--count", "8000", "--eps", "10", "--drift-shift",
                             "amount=3", "--predictions-out", pp, "--labels-out", lp, NULL),
                     0);
    dataset_load(&ds, pp, lp);
    double s = 0, c = 0;
    for (size_t i = ds.n_preds / 2; i < ds.n_preds; i++) {
        if (!isnan(ds.preds[i].amount)) {
            s += ds.preds[i].amount;
            c++;
        }
    }
    assert_true(fabs(s / c - 50.0) < 1.0);
    dataset_free(&ds);
}

/* --scores calibrated: the label is drawn from the score, so scores are calibrated, and an
 * accuracy drift moves the scores (the mean confidence follows the accuracy). */
static void test_calibrated_scores(void **state)
{
    (void)state;
    const char *pp = path_of("cp"), *lp = path_of("cl");
    assert_int_equal(run_gen("--seed", "5", "--count", "20000", "--eps", "20", "--scores",
                             "calibrated", "--drift-at", "500", "--drift-accuracy", "0.7",
                             "--predictions-out", pp, "--labels-out", lp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    int64_t drift_ms = ds.preds[0].ts + 500000;
    double correct[2] = {0}, labeled[2] = {0}, conf[2] = {0};
    double bin_n[10] = {0}, bin_pos[10] = {0}, bin_score[10] = {0};
    for (size_t i = 0; i < ds.n_preds; i++) {
        const struct pred *p = &ds.preds[i];
        int after = p->ts >= drift_ms;
        if (p->n_labels == 0) {
            continue;
        }
        labeled[after]++;
        correct[after] += p->first_label == p->prediction;
        conf[after] += p->prediction ? p->score : 1.0 - p->score;
        int b = p->score >= 1.0 ? 9 : (int)(p->score * 10.0);
        bin_n[b]++;
        bin_pos[b] += p->first_label;
        bin_score[b] += p->score;
    }
    assert_true(fabs(correct[0] / labeled[0] - 0.9) < 0.02);
    assert_true(fabs(correct[1] / labeled[1] - 0.7) < 0.02);
    assert_true(fabs(conf[0] / labeled[0] - 0.9) < 0.005);
    assert_true(fabs(conf[1] / labeled[1] - 0.7) < 0.005);
    for (int b = 0; b < 10; b++) { /* the share of positives is the mean score, bin by bin */
        if (bin_n[b] >= 500) {
            assert_true(fabs(bin_pos[b] / bin_n[b] - bin_score[b] / bin_n[b]) < 0.04);
        }
    }
    dataset_free(&ds);
    assert_int_equal(run_gen("--scores", "bogus", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(
        run_gen("--scores", "calibrated", "--accuracy", "0.3", "--truth", path_of("t"), NULL), 2);
}

static void test_fast_eps_and_epoch_start(void **state)
{
    /* 5000 predictions/s: several share a millisecond; early labels still precede theirs. */
    const char *pp = path_of("fp"), *lp = path_of("fl"), *tp = path_of("ft");
    assert_int_equal(run_gen("--seed", "9", "--count", "3000", "--eps", "5000", "--start",
                             "1767225600000", "--early-labels", "0.5", "--window", "0.25",
                             "--predictions-out", pp, "--labels-out", lp, "--truth", tp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    assert_int_equal(ds.preds[0].ts, 1767225600000LL);
    assert_int_equal(ds.preds[2999].ts, 1767225600000LL + 2999 * 1000 / 5000);
    assert_true(ds.early_labels > 1300 && ds.early_labels < 1700);
    json_t *truth = load_truth(tp);
    json_t *mine = dataset_truth(&ds, 250);
    assert_int_equal(json_array_size(truth), 3 + 1); /* 600 ms in 250 ms windows */
    assert_true(json_equal(truth, mine));
    json_decref(mine);
    json_decref(truth);
    dataset_free(&ds);
}

/* ---- staged rollouts ---------------------------------------------------------------------- */

/* count of n draws is within 4.5 binomial standard deviations of a share of pct percent. */
static void assert_share(const char *version, int64_t count, int64_t n, double pct)
{
    double p = pct / 100.0, mean = (double)n * p, sd = sqrt((double)n * p * (1.0 - p));
    if (fabs((double)count - mean) > 4.5 * sd) {
        fail_msg("version %s: %lld of %lld, expected %.0f +- %.0f", version, (long long)count,
                 (long long)n, mean, 4.5 * sd);
    }
}

/* Predictions per version in the dataset, for the versions named. */
static void count_versions(const struct dataset *ds, const char *const *names, size_t k,
                           int64_t *counts)
{
    memset(counts, 0, k * sizeof(int64_t));
    for (size_t i = 0; i < ds->n_preds; i++) {
        size_t v = 0;
        while (v < k && strcmp(ds->preds[i].version, names[v]) != 0) {
            v++;
        }
        assert_true(v < k); /* only the versions given */
        counts[v]++;
    }
}

/* Predictions of versions a, b, c generated with --traffic shares. */
static void three_version_counts(const char *count, const char *shares, int64_t counts[3])
{
    static const char *const three[] = {"a", "b", "c"};
    const char *pp = path_of("3p"), *lp = path_of("3l");
    assert_int_equal(run_gen("--seed", "12", "--count", count, "--eps", "1000", "--versions",
                             "a,b,c", "--traffic", shares, "--predictions-out", pp, "--labels-out",
                             lp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    count_versions(&ds, three, 3, counts);
    dataset_free(&ds);
}

static void test_traffic_shares(void **state)
{
    const char *pp = path_of("sp"), *lp = path_of("sl"), *tp = path_of("st");
    assert_int_equal(run_gen("--seed", "11", "--count", "40000", "--eps", "1000", "--versions",
                             "1.0.0,1.1.0", "--traffic", "95,5", "--predictions-out", pp,
                             "--labels-out", lp, "--truth", tp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    const char *two[] = {"1.0.0", "1.1.0"};
    int64_t counts[3];
    count_versions(&ds, two, 2, counts);
    assert_share("1.0.0", counts[0], 40000, 95.0);
    assert_share("1.1.0", counts[1], 40000, 5.0);
    /* the truth's per-version counts are those of the files */
    json_t *truth = load_truth(tp);
    json_t *mine = dataset_truth(&ds, 60000);
    assert_true(json_equal(truth, mine));
    json_decref(mine);
    json_decref(truth);
    dataset_free(&ds);

    /* three versions, and a share of 0 that never gets traffic */
    three_version_counts("30000", "70,20,10", counts);
    assert_share("a", counts[0], 30000, 70.0);
    assert_share("b", counts[1], 30000, 20.0);
    assert_share("c", counts[2], 30000, 10.0);
    three_version_counts("5000", "50,0,50", counts);
    assert_int_equal(counts[1], 0);
    assert_share("a", counts[0], 5000, 50.0);
}

static void test_version_accuracy_and_latency(void **state)
{
    const char *pp = path_of("vp"), *lp = path_of("vl");
    /* 20000 predictions at 50/s span 400 s; the drift starts half way */
    assert_int_equal(run_gen("--seed", "13", "--count", "20000", "--eps", "50", "--versions",
                             "1.0.0,1.1.0", "--traffic", "50,50", "--accuracy", "0.9",
                             "--version-accuracy", "1.1.0=0.8", "--version-latency", "1.1.0=+40",
                             "--drift-at", "200", "--drift-accuracy", "0.6", "--predictions-out",
                             pp, "--labels-out", lp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    int64_t drift_ms = ds.preds[0].ts + 200000;
    double labeled[2][2] = {{0}}, correct[2][2] = {{0}};
    double lat_sum[2] = {0}, lat_n[2] = {0}, lat_min[2] = {INFINITY, INFINITY};
    for (size_t i = 0; i < ds.n_preds; i++) {
        const struct pred *p = &ds.preds[i];
        int v = strcmp(p->version, "1.1.0") == 0;
        int after = p->ts >= drift_ms;
        labeled[v][after] += p->n_labels > 0;
        correct[v][after] += p->n_labels > 0 && p->first_label == p->prediction;
        lat_sum[v] += p->latency_ms;
        lat_n[v]++;
        lat_min[v] = fmin(lat_min[v], p->latency_ms);
    }
    /* 1.0.0 follows --accuracy and --drift-accuracy; 1.1.0 keeps its own accuracy throughout
     * (about 5000 labels per cell: standard error 0.006) */
    assert_true(fabs(correct[0][0] / labeled[0][0] - 0.9) < 0.025);
    assert_true(fabs(correct[0][1] / labeled[0][1] - 0.6) < 0.035);
    assert_true(fabs(correct[1][0] / labeled[1][0] - 0.8) < 0.03);
    assert_true(fabs(correct[1][1] / labeled[1][1] - 0.8) < 0.03);
    /* latency 5 + Exponential(10) ms, 40 ms more for 1.1.0 (standard error of a mean 0.15) */
    assert_true(lat_min[0] >= 5.0 && lat_min[0] < 5.5);
    assert_true(lat_min[1] >= 45.0 && lat_min[1] < 45.5);
    assert_true(fabs(lat_sum[0] / lat_n[0] - 15.0) < 0.6);
    assert_true(fabs(lat_sum[1] / lat_n[1] - 55.0) < 0.6);
    dataset_free(&ds);
}

/* --drift-versions: the drift (here of the accuracy) reaches the versions named only. */
static void test_drift_versions(void **state)
{
    const char *pp = path_of("dp"), *lp = path_of("dl");
    assert_int_equal(run_gen("--seed", "5", "--count", "8000", "--versions", "1.0.0,1.1.0",
                             "--accuracy", "0.9", "--drift-at", "0", "--drift-accuracy", "0.6",
                             "--drift-versions", "1.1.0", "--predictions-out", pp, "--labels-out",
                             lp, NULL),
                     0);
    struct dataset ds;
    dataset_load(&ds, pp, lp);
    double labeled[2] = {0}, correct[2] = {0};
    for (size_t i = 0; i < ds.n_preds; i++) {
        const struct pred *p = &ds.preds[i];
        int v = strcmp(p->version, "1.1.0") == 0;
        labeled[v] += p->n_labels > 0;
        correct[v] += p->n_labels > 0 && p->first_label == p->prediction;
    }
    /* about 4000 labels each: standard error 0.008 */
    assert_true(fabs(correct[0] / labeled[0] - 0.9) < 0.03);
    assert_true(fabs(correct[1] / labeled[1] - 0.6) < 0.04);
    dataset_free(&ds);
}

/* gen's stderr for a usage error, which must name the bad value. */
static void assert_usage_error(const char *opt, const char *value, const char *part)
{
    const char *ep = path_of("stderr");
    assert_int_equal(run_gen_to(STDERR_FILENO, ep, "--versions", "1.0.0,1.1.0", opt, value,
                                "--truth", path_of("t"), NULL),
                     2);
    size_t len;
    char *text = slurp(ep, &len);
    assert_contains(text, part);
    free(text);
}

static void test_staged_rollout_errors(void **state)
{
    assert_usage_error("--traffic", "95,4", "--traffic: the shares '95,4' sum to 99, not 100");
    assert_usage_error("--traffic", "95,abc", "'abc' (version 1.1.0) is not a percentage");
    assert_usage_error("--traffic", "-5,105", "'-5' (version 1.0.0) is not a percentage");
    assert_usage_error("--traffic", "100", "--traffic: 1 shares in '100' for 2 versions");
    assert_usage_error("--traffic", "90,5,5", "3 shares in '90,5,5' for 2 versions");
    assert_usage_error("--traffic", "95,,5", "empty item");
    assert_usage_error("--version-accuracy", "2.0.0=0.8", "version '2.0.0' is not one of");
    assert_usage_error("--version-accuracy", "1.1.0=1.5", "'1.5' (version 1.1.0) is not an");
    assert_usage_error("--version-accuracy", "1.1.0",
                       "--version-accuracy: '1.1.0' is not VERSION=VALUE");
    assert_usage_error("--version-latency", "1.1.0=-10", "'-10' (version 1.1.0) is not millis");
    assert_usage_error("--version-latency", "1.1.0=fast", "'fast' (version 1.1.0)");
    assert_usage_error("--drift-versions", "2.0.0",
                       "--drift-versions: version '2.0.0' is not one of --versions");
    assert_int_equal(run_gen("--scores", "calibrated", "--versions", "a,b", "--version-accuracy",
                             "b=0.3", "--truth", path_of("t"), NULL),
                     2);
    /* shares given as decimals are fine as long as they sum to 100 */
    assert_int_equal(run_gen("--versions", "a,b,c", "--traffic", "33.3,33.3,33.4", "--count", "10",
                             "--truth", path_of("t"), NULL),
                     0);
}

/* Removes every `,"status":"ok"` and `,"status":"error"` from text (in place). */
static void strip_status(char *text)
{
    static const char *const members[] = {",\"status\":\"ok\"", ",\"status\":\"error\""};
    for (size_t m = 0; m < 2; m++) {
        size_t n = strlen(members[m]);
        char *at;
        while ((at = strstr(text, members[m])) != NULL) {
            memmove(at, at + n, strlen(at + n) + 1);
        }
    }
}

/*
 * --status-field writes "status" ("ok" or "error") in every prediction, "error" at --error-rate
 * or at the version's --version-errors share; the truth's served and errors (per window and
 * version) are those of the files; nothing else of the output changes, and without the option
 * nothing of it is written.
 */
static void test_status_field(void **state)
{
    (void)state;
    const char *pp = path_of("xp"), *lp = path_of("xl"), *tp = path_of("xt");
#define STATUS_COMMON                                                                              \
    "--seed", "17", "--count", "8000", "--eps", "50", "--versions", "1.0.0,1.1.0", "--traffic",    \
        "50,50", "--malformed", "0.01", "--duplicate-labels", "0.1"
    assert_int_equal(run_gen(STATUS_COMMON, "--status-field", "--error-rate", "0.1",
                             "--version-errors", "1.1.0=0.3", "--predictions-out", pp,
                             "--labels-out", lp, "--truth", tp, NULL),
                     0);
    /* count the statuses of the valid predictions, per window and version */
    size_t len;
    char *text = slurp(pp, &len);
    char **lines;
    size_t *lens;
    size_t n = split_lines(text, len, &lines, &lens);
    json_t *mine = json_object(); /* "window_start_ms/version" -> [served, errors] */
    int64_t served[2] = {0}, errors[2] = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_loads(lines[i], 0, NULL);
        const char *v = json_string_value(json_object_get(e, "model_version"));
        const char *model = json_string_value(json_object_get(e, "model"));
        if (!e || !json_is_string(json_object_get(e, "prediction_id")) || !v || !model ||
            strcmp(model, "fraud") != 0 || (strcmp(v, "1.0.0") != 0 && strcmp(v, "1.1.0") != 0) ||
            json_is_string(json_object_get(json_object_get(e, "features"), "amount"))) {
            json_decref(e); /* junk: not counted by a consumer, nor by the truth */
            continue;
        }
        const char *st = json_string_value(json_object_get(e, "status"));
        assert_non_null(st);
        int err = strcmp(st, "error") == 0;
        assert_true(err || strcmp(st, "ok") == 0);
        int vi = strcmp(v, "1.1.0") == 0;
        served[vi]++;
        errors[vi] += err;
        char key[64];
        snprintf(key, sizeof(key), "%lld/%s", (long long)(ts_of(e) / 60000 * 60000), v);
        json_t *cell = json_object_get(mine, key);
        if (!cell) {
            cell = json_pack("[i,i]", 0, 0);
            json_object_set_new(mine, key, cell);
        }
        json_array_set_new(cell, 0, json_integer(json_integer_value(json_array_get(cell, 0)) + 1));
        json_array_set_new(cell, 1,
                           json_integer(json_integer_value(json_array_get(cell, 1)) + err));
        json_decref(e);
    }
    assert_share("1.0.0 errors", errors[0], served[0], 10.0);
    assert_share("1.1.0 errors", errors[1], served[1], 30.0);
    /* the truth says the same, window by window */
    json_t *truth = load_truth(tp);
    size_t cells = 0;
    for (size_t w = 0; w + 1 < json_array_size(truth); w++) {
        json_t *row = json_array_get(truth, w);
        json_int_t wserved = 0, werrors = 0;
        const char *v;
        json_t *tv;
        json_object_foreach(json_object_get(row, "versions"), v, tv)
        {
            char key[64];
            snprintf(key, sizeof(key), "%lld/%s",
                     (long long)json_integer_value(json_object_get(row, "window_start_ms")), v);
            json_t *cell = json_object_get(mine, key);
            assert_non_null(cell);
            assert_int_equal(jint(tv, "served"), json_integer_value(json_array_get(cell, 0)));
            assert_int_equal(jint(tv, "errors"), json_integer_value(json_array_get(cell, 1)));
            wserved += jint(tv, "served");
            werrors += jint(tv, "errors");
            cells++;
        }
        assert_int_equal(jint(row, "served"), wserved);
        assert_int_equal(jint(row, "errors"), werrors);
        assert_int_equal(jint(row, "served"), jint(row, "predictions"));
    }
    assert_int_equal(cells, json_object_size(mine));
    json_decref(truth);
    json_decref(mine);
    free(lines);
    free(lens);
    free(text);

    /* without --status-field: the same bytes less the status members, and a truth without
     * served or errors */
    const char *pp2 = path_of("xp2"), *lp2 = path_of("xl2"), *tp2 = path_of("xt2");
    assert_int_equal(
        run_gen(STATUS_COMMON, "--predictions-out", pp2, "--labels-out", lp2, "--truth", tp2, NULL),
        0);
#undef STATUS_COMMON
    size_t len2;
    char *with = slurp(pp, &len);
    char *without = slurp(pp2, &len2);
    assert_null(strstr(without, "\"status\""));
    strip_status(with);
    assert_int_equal(strlen(with), len2);
    assert_memory_equal(with, without, len2);
    assert_true(files_equal(lp, lp2));
    char *t2 = slurp(tp2, &len2);
    assert_null(strstr(t2, "served"));
    free(t2);
    free(with);
    free(without);
}

static void test_status_field_errors(void **state)
{
    (void)state;
    assert_usage_error("--error-rate", "0.1",
                       "--error-rate and --version-errors need --status-field");
    assert_usage_error("--version-errors", "1.1.0=0.1", "need --status-field");
    assert_int_equal(
        run_gen("--status-field", "--error-rate", "1.5", "--truth", path_of("t"), NULL), 2);
    assert_int_equal(run_gen("--status-field", "--versions", "a,b", "--version-errors", "b=2",
                             "--truth", path_of("t"), NULL),
                     2);
    assert_int_equal(run_gen("--status-field", "--versions", "a,b", "--version-errors", "c=0.1",
                             "--truth", path_of("t"), NULL),
                     2);
}

static void test_kafka_sink(void **state)
{
    /* librdkafka's in-process mock cluster (loopback): every message gets a delivery report. */
    assert_int_equal(run_gen("--brokers", "127.0.0.1:1", "-X", "test.mock.num.brokers=1", "--count",
                             "2000", "--duplicate-labels", "0.1", "--malformed", "0.05",
                             "--oversize", "1", "--topic-predictions", "p", "--topic-labels", "l",
                             NULL),
                     0);
    /* Nobody listens on 127.0.0.1:1: deliveries time out and the command fails with 1. */
    assert_int_equal(
        run_gen("--brokers", "127.0.0.1:1", "-X", "message.timeout.ms=300", "--count", "5", NULL),
        1);
    /* A property librdkafka rejects is a configuration error. */
    assert_int_equal(
        run_gen("--brokers", "127.0.0.1:1", "-X", "no.such.property=1", "--count", "5", NULL), 2);
    assert_int_equal(run_gen("--brokers", "127.0.0.1:1", "-X", "novalue", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage_errors),
        cmocka_unit_test(test_print_models),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_truth_matches_files),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_calibrated_scores),
        cmocka_unit_test(test_fast_eps_and_epoch_start),
        cmocka_unit_test(test_traffic_shares),
        cmocka_unit_test(test_version_accuracy_and_latency),
        cmocka_unit_test(test_staged_rollout_errors),
        cmocka_unit_test(test_drift_versions),
        cmocka_unit_test(test_status_field),
        cmocka_unit_test(test_status_field_errors),
        cmocka_unit_test(test_kafka_sink),
    };
    return cmocka_run_group_tests(tests, dw_tmp_setup, dw_tmp_teardown);
}
