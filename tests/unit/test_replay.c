/*
 * test_replay.c - `driftwatch replay` through its entry point, on JSON-lines files written by
 * the test: window placement at the edges, the first label wins (later ones are duplicates
 * and conflicts), labels stamped before their predictions, a run of empty windows in the middle
 * reported once with predictions 0 and empty_windows, bad lines counted without stopping the
 * replay, models inferred without a config, gzip input, and the reference taken from the first
 * window versus from a profile given with --reference.
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

#include "dw_test.h"

#define DW_TEST_NAME "replay"
#include "dw_test_tmpdir.h"

#define MAX_REPORTS 64

static FILE *open_w(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    return f;
}

static int run_cmd(int (*fn)(int, char **), const char *name, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int rc = dw_test_vcmd(fn, name, NULL, first, ap);
    va_end(ap);
    return rc;
}

/* Reads the reports (one JSON object per line). @returns how many. */
static size_t load_reports(const char *path, json_t **out)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[65536];
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        assert_true(n < MAX_REPORTS);
        json_error_t err;
        out[n] = json_loads(line, 0, &err);
        if (!out[n]) {
            fail_msg("report %zu: %s", n, err.text);
        }
        n++;
    }
    fclose(f);
    return n;
}

static void free_reports(json_t **r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(r[i]);
    }
}

static json_int_t geti(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        fail_msg("%s is not an integer", key);
    }
    return json_integer_value(v);
}

static const char *gets_(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) {
        fail_msg("%s is not a string", key);
    }
    return s ? s : ""; /* fail_msg() does not return; the compiler cannot know (Release builds) */
}

static json_t *feat(json_t *report, const char *name)
{
    return json_object_get(json_object_get(report, "features"), name);
}

/* A config written for `run` (replay needs no broker but the file names one). */
static const char *CONFIG = "kafka:\n"
                            "  bootstrap.servers: 127.0.0.1:9092\n"
                            "reference:\n"
                            "  windows: 1\n"
                            "models:\n"
                            "  fraud:\n"
                            "    features:\n"
                            "      amount: numeric\n"
                            "      country: categorical\n";

static void pred(FILE *f, const char *id, const char *ts, double amount, const char *country,
                 int prediction)
{
    fprintf(f,
            "{\"prediction_id\":\"%s\",\"model\":\"fraud\",\"model_version\":\"1\","
            "\"timestamp\":\"%s\",\"features\":{\"amount\":%.4f,\"country\":\"%s\"},"
            "\"prediction\":%d,\"score\":%.2f}\n",
            id, ts, amount, country, prediction, prediction ? 0.9 : 0.1);
}

/* Writes CONFIG to c.yaml and opens p.jsonl for the predictions of a case. */
static FILE *open_case(const char **cfg, const char **preds)
{
    *cfg = path_of("c.yaml");
    *preds = path_of("p.jsonl");
    dw_test_write_file(*cfg, CONFIG);
    return open_w(*preds);
}

static void test_windows_labels_and_gaps(void **state)
{
    const char *cfg, *preds;
    const char *labels = path_of("l.jsonl");
    const char *out = path_of("r.jsonl");
    FILE *f = open_case(&cfg, &preds);
    pred(f, "p1", "2026-01-01T00:00:00Z", 1, "DE", 1);
    pred(f, "p2", "2026-01-01T00:00:59.999Z", 2, "FR", 0);
    fputs("this is not json\n", f);
    pred(f, "p3", "2026-01-01T00:01:00Z", 3, "DE", 1);
    pred(f, "p1", "2026-01-01T00:03:00Z", 9, "DE", 0); /* duplicate id: ignored */
    pred(f, "p4", "2026-01-01T00:04:30Z", 4, "US", 1);
    fclose(f);
    f = open_w(labels);
    /* p4's label is stamped (and listed) long before its prediction */
    fputs("{\"prediction_id\":\"p4\",\"label\":1,\"timestamp\":\"2026-01-01T00:00:10Z\"}\n", f);
    fputs("{\"prediction_id\":\"p1\",\"label\":1,\"timestamp\":\"2026-01-01T00:05:00Z\"}\n", f);
    fputs("{\"prediction_id\":\"p1\",\"label\":0,\"timestamp\":\"2026-01-01T00:06:00Z\"}\n", f);
    fputs("{\"prediction_id\":\"p2\",\"label\":0}\n", f);
    fputs("{\"prediction_id\":\"zz\",\"label\":1}\n", f);
    fputs("{\"label\":1}\n", f);
    fclose(f);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--labels", labels,
                             "-c", cfg, "--window", "60", "--output", out, NULL),
                     0);
    json_t *all[MAX_REPORTS];
    size_t n = load_reports(out, all);
    /* 00:00 .. 00:04: the two empty windows in the middle are one report, 00:02 to 00:04; each
     * window is reported at close (p4 at 00:04:30 closes the first three, the end of the files
     * the last), then at its label horizon (the end of the files) */
    assert_int_equal(n, 8);
    json_t **c = all, **r = all + 4; /* close reports, then final ones */
    n = 4;
    static const char *const starts[] = {"2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z",
                                         "2026-01-01T00:02:00Z", "2026-01-01T00:04:00Z"};
    static const json_int_t npred[] = {2, 1, 0, 1};
    static const json_int_t nlab[] = {2, 0, 0, 1};
    static const json_int_t nlab_close[] = {0, 0, 0, 1}; /* p1's and p2's come at 00:05 */
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(gets_(r[i], "model"), "fraud");
        assert_string_equal(gets_(r[i], "window_start"), starts[i]);
        assert_string_equal(gets_(c[i], "window_start"), starts[i]);
        assert_int_equal(geti(r[i], "predictions"), npred[i]);
        assert_int_equal(geti(c[i], "predictions"), npred[i]);
        assert_int_equal(geti(r[i], "labeled"), nlab[i]);
        assert_int_equal(geti(c[i], "labeled"), nlab_close[i]);
        assert_string_equal(gets_(r[i], "stage"), "final");
        assert_string_equal(gets_(c[i], "stage"), "close");
        assert_true(json_is_true(json_object_get(r[i], "final")));
        assert_non_null(json_object_get(r[i], "change_detectors"));
        assert_null(json_object_get(c[i], "change_detectors"));
    }
    assert_true(json_equal(json_object_get(c[0], "features"), json_object_get(r[0], "features")));
    assert_string_equal(gets_(r[0], "window_end"), "2026-01-01T00:01:00Z");
    /* first label wins: p1 labelled 1 (correct), the 0 after it is a conflicting duplicate */
    assert_int_equal(geti(r[0], "duplicate_labels"), 1);
    assert_int_equal(geti(r[0], "conflicts"), 1);
    json_t *perf = json_object_get(r[0], "performance");
    assert_double_exact(json_real_value(json_object_get(perf, "accuracy")), 1.0);
    assert_int_equal(geti(json_object_get(perf, "confusion"), "tp"), 1);
    assert_int_equal(geti(json_object_get(perf, "confusion"), "tn"), 1);
    /* the duplicate prediction id did not count in window 00:03: it is part of the gap */
    assert_string_equal(gets_(r[2], "window_end"), "2026-01-01T00:04:00Z");
    assert_int_equal(geti(r[2], "empty_windows"), 2);
    assert_true(json_is_null(json_object_get(r[2], "performance")));
    assert_int_equal(json_object_size(json_object_get(r[2], "features")), 0);
    assert_null(json_object_get(r[1], "empty_windows")); /* only runs of empty windows */
    /* the early label joined p4 */
    assert_double_exact(
        json_real_value(json_object_get(json_object_get(r[3], "performance"), "accuracy")), 1.0);
    /* window 0 is the reference (not judged at its close); later windows are compared with it;
     * a final report names what its close report was judged against */
    assert_string_equal(gets_(json_object_get(c[0], "reference"), "status"), "collecting");
    assert_int_equal(geti(json_object_get(c[1], "reference"), "windows"), 1);
    assert_string_equal(gets_(json_object_get(r[0], "reference"), "status"), "collecting");
    assert_int_equal(geti(json_object_get(r[1], "reference"), "windows"), 1);
    assert_int_equal(geti(feat(r[0], "amount"), "count"), 2);
    assert_true(json_is_null(json_object_get(feat(r[0], "amount"), "psi")));
    assert_true(json_is_number(json_object_get(feat(r[1], "amount"), "psi")));
    free_reports(all, 8);

    /* --window changes the placement: one 5-minute window holds all four predictions */
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--labels", labels,
                             "-c", cfg, "--window", "5m", "--output", out, NULL),
                     0);
    n = load_reports(out, all);
    assert_int_equal(n, 2);
    assert_int_equal(geti(all[1], "predictions"), 4);
    assert_int_equal(geti(all[1], "labeled"), 3);
    free_reports(all, n);
}

/* Two windows: amount ~ 0..99 then 1000..1099. */
static void write_shift(const char *path, int gz)
{
    char line[512];
    gzFile g = gz ? gzopen(path, "wb") : NULL;
    FILE *f = gz ? NULL : open_w(path);
    for (int w = 0; w < 2; w++) {
        for (int i = 0; i < 100; i++) {
            snprintf(line, sizeof(line),
                     "{\"prediction_id\":\"w%d-%d\",\"model\":\"m\",\"timestamp\":%lld,"
                     "\"features\":{\"amount\":%d,\"country\":\"%s\"},\"prediction\":1}\n",
                     w, i, 1767225600000LL + w * 60000LL + i * 100LL, w * 1000 + i,
                     i % 2 ? "DE" : "FR");
            if (gz) {
                gzputs(g, line);
            } else {
                fputs(line, f);
            }
        }
    }
    if (gz) {
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        assert_int_equal(fclose(f), 0);
    }
}

static void test_reference_first_window_vs_profile(void **state)
{
    const char *preds = path_of("shift.jsonl.gz");
    const char *out = path_of("shift.out");
    write_shift(preds, 1);
    /* no -c: the model "m" and its types come from the data; no --reference: window 0 */
    assert_int_equal(
        run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--output", out, NULL), 0);
    json_t *r[MAX_REPORTS];
    size_t n = load_reports(out, r); /* close reports of windows 0 and 1, then final ones */
    assert_int_equal(n, 4);
    assert_string_equal(gets_(r[1], "stage"), "close");
    assert_string_equal(gets_(r[0], "model"), "m");
    assert_string_equal(gets_(feat(r[0], "amount"), "type"), "numeric");
    assert_string_equal(gets_(feat(r[0], "country"), "type"), "categorical");
    assert_string_equal(gets_(json_object_get(r[0], "reference"), "status"), "collecting");
    assert_true(json_is_null(json_object_get(feat(r[0], "amount"), "psi")));
    double psi1 = json_real_value(json_object_get(feat(r[1], "amount"), "psi"));
    assert_true(psi1 > 1.0); /* every value beyond the reference's last edge */
    assert_true(json_is_true(json_object_get(feat(r[1], "amount"), "drift")));
    assert_true(json_real_value(json_object_get(feat(r[1], "country"), "psi")) < 1e-12);
    free_reports(r, n);

    /* a profile of 1000..1099 as the reference: window 0 drifts, window 1 does not */
    const char *csv = path_of("train.csv");
    const char *prof = path_of("train.json");
    FILE *f = open_w(csv);
    fputs("amount,country\n", f);
    for (int i = 0; i < 100; i++) {
        fprintf(f, "%d,%s\n", 1000 + i, i % 2 ? "DE" : "FR");
    }
    fclose(f);
    assert_int_equal(
        run_cmd(dw_cmd_profile, "profile", "--input", csv, "--output", prof, "--model", "m", NULL),
        0);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--reference", prof,
                             "--output", out, NULL),
                     0);
    n = load_reports(out, r);
    assert_int_equal(n, 4);
    assert_false(json_is_null(json_object_get(r[0], "reference")));
    assert_int_equal(geti(json_object_get(r[0], "reference"), "predictions"), 100);
    assert_true(json_real_value(json_object_get(feat(r[0], "amount"), "psi")) > 1.0);
    assert_true(json_is_true(json_object_get(feat(r[0], "amount"), "drift")));
    assert_true(json_real_value(json_object_get(feat(r[1], "amount"), "psi")) < 1e-12);
    assert_true(json_is_false(json_object_get(feat(r[1], "amount"), "drift")));
    free_reports(r, n);
}

/* A line with a broken clock (1971) among 2026 events: replay applies no bound (no Kafka
 * timestamp), so it is late for its window, closed long ago (counted in the summary), and the
 * 55 years from it to the first window with data are one empty-run report, not 29 million. */
static void test_bad_clock_line(void **state)
{
    const char *cfg, *preds;
    const char *out = path_of("r.jsonl");
    FILE *f = open_case(&cfg, &preds);
    pred(f, "p1", "2026-01-01T00:00:00Z", 1, "DE", 1);
    pred(f, "old", "1971-01-01T00:00:00Z", 2, "FR", 0);
    pred(f, "p2", "2026-01-01T00:00:30Z", 3, "DE", 1);
    fclose(f);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "-c", cfg, "--window",
                             "60", "--output", out, NULL),
                     0);
    json_t *r[MAX_REPORTS];
    size_t n = load_reports(out, r);
    assert_int_equal(n, 4); /* at close, then final */
    for (size_t i = 0; i < n; i += 2) {
        assert_string_equal(gets_(r[i], "window_start"), "1971-01-01T00:00:00Z");
        assert_string_equal(gets_(r[i], "window_end"), "2026-01-01T00:00:00Z");
        assert_int_equal(geti(r[i], "predictions"), 0);
        assert_int_equal(geti(r[i], "empty_windows"), 28928160);
        assert_string_equal(gets_(r[i + 1], "window_start"), "2026-01-01T00:00:00Z");
        assert_int_equal(geti(r[i + 1], "predictions"), 2);
    }
    free_reports(r, n);
}

/* A config with run's time limits: 5 s lateness, a 2-minute label horizon, a 1-minute join TTL
 * and a reference of two windows. */
static const char *LIMITS = "kafka:\n"
                            "  bootstrap.servers: 127.0.0.1:9092\n"
                            "window:\n"
                            "  allowed_lateness: 5s\n"
                            "  label_horizon: 120s\n"
                            "join:\n"
                            "  ttl: 60s\n"
                            "reference:\n"
                            "  windows: 2\n"
                            "models:\n"
                            "  fraud:\n"
                            "    features:\n"
                            "      amount: numeric\n"
                            "      country: categorical\n";

static void label(FILE *f, const char *id, const char *ts)
{
    fprintf(f, "{\"prediction_id\":\"%s\",\"label\":1,\"timestamp\":\"%s\"}\n", id, ts);
}

/* Replay simulates arrival (both files merged by event time) and applies run's settings: a
 * prediction after its window closed is late, a label after its window's horizon is not
 * counted, a prediction waiting longer than join.ttl for its label stays unlabeled, the first
 * reference.windows windows are not judged; each window's close report comes when the
 * prediction clock passes it, its final one when both clocks passed its horizon. */
static void test_time_limits_as_run(void **state)
{
    const char *cfg = path_of("limits.yaml"), *preds = path_of("lp.jsonl");
    const char *labels = path_of("ll.jsonl"), *out = path_of("lr.jsonl");
    dw_test_write_file(cfg, LIMITS);
    FILE *f = open_w(preds);
    pred(f, "a1", "2026-01-01T00:00:10Z", 1, "DE", 1);
    pred(f, "a2", "2026-01-01T00:00:50Z", 2, "DE", 1);
    pred(f, "b1", "2026-01-01T00:01:10Z", 3, "DE", 1); /* closes window 00:00 */
    pred(f, "x1", "2026-01-01T00:01:20Z", 4, "DE", 1);
    pred(f, "late1", "2026-01-01T00:00:30Z", 5, "DE", 1); /* window 00:00 has closed */
    pred(f, "c1", "2026-01-01T00:02:10Z", 6, "DE", 1);
    pred(f, "d1", "2026-01-01T00:03:10Z", 7, "DE", 1);
    pred(f, "e1", "2026-01-01T00:05:30Z", 8, "DE", 1);
    fclose(f);
    f = open_w(labels);
    label(f, "a1", "2026-01-01T00:00:20Z");
    label(f, "b1", "2026-01-01T00:02:00Z");
    label(f, "c1", "2026-01-01T00:03:30Z"); /* window 00:00 becomes final */
    label(f, "x1", "2026-01-01T00:03:35Z"); /* x1 waited more than join.ttl */
    label(f, "a2", "2026-01-01T00:03:40Z"); /* after window 00:00's horizon (00:03:00) */
    fclose(f);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--labels", labels,
                             "-c", cfg, "--output", out, NULL),
                     0);
    json_t *r[MAX_REPORTS];
    size_t n = load_reports(out, r);
    assert_int_equal(n, 12);
    static const char *const order[] = {"close 00:00", "close 00:01", "close 00:02", "final 00:00",
                                        "close 00:03", "close 00:04", "close 00:05", "final 00:01",
                                        "final 00:02", "final 00:03", "final 00:04", "final 00:05"};
    for (size_t i = 0; i < n; i++) {
        char got[32];
        snprintf(got, sizeof(got), "%s %.5s", gets_(r[i], "stage"),
                 gets_(r[i], "window_start") + 11);
        assert_string_equal(got, order[i]);
    }
    /* window 00:00 at close: a1's label only; late1 came after */
    assert_int_equal(geti(r[0], "labeled"), 1);
    assert_int_equal(geti(r[0], "late_predictions"), 0);
    /* and final: late1 counted late, a2's label after the horizon not counted */
    assert_int_equal(geti(r[3], "predictions"), 2);
    assert_int_equal(geti(r[3], "labeled"), 1);
    assert_int_equal(geti(r[3], "late_predictions"), 1);
    /* window 00:01: x1 expired before its label came */
    assert_int_equal(geti(r[7], "predictions"), 2);
    assert_int_equal(geti(r[7], "labeled"), 1);
    /* the two reference windows are not judged; window 00:02 is, against both */
    assert_string_equal(gets_(json_object_get(r[0], "reference"), "status"), "collecting");
    assert_string_equal(gets_(json_object_get(r[1], "reference"), "status"), "collecting");
    assert_int_equal(geti(json_object_get(r[2], "reference"), "windows"), 2);
    /* the baseline: the two reference windows' final counts (2 labels of 4 predictions) */
    json_t *bl = json_object_get(r[8], "baseline");
    assert_string_equal(gets_(bl, "status"), "ready");
    assert_int_equal(geti(bl, "windows"), 2);
    assert_double_exact(json_real_value(json_object_get(bl, "labeled_share")), 0.5);
    assert_string_equal(gets_(json_object_get(r[2], "baseline"), "status"), "waiting_for_labels");
    /* a run of empty windows, at both stages */
    assert_int_equal(geti(r[5], "empty_windows"), 1);
    assert_int_equal(geti(r[10], "empty_windows"), 1);
    free_reports(r, n);
}

static void test_usage_and_missing_files(void **state)
{
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--help", NULL), 0);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", NULL), 2);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", path_of("nope.jsonl"), NULL),
                     1);
    const char *preds = path_of("one.jsonl");
    dw_test_write_file(preds, "{\"prediction_id\":\"a\",\"model\":\"m\",\"timestamp\":0,"
                              "\"features\":{},\"prediction\":1}\n");
    assert_int_equal(
        run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--window", "0", NULL), 2);
    assert_int_equal(run_cmd(dw_cmd_replay, "replay", "--predictions", preds, "--reference",
                             path_of("nope.json"), NULL),
                     2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_labels_and_gaps),
        cmocka_unit_test(test_reference_first_window_vs_profile),
        cmocka_unit_test(test_bad_clock_line),
        cmocka_unit_test(test_time_limits_as_run),
        cmocka_unit_test(test_usage_and_missing_files),
    };
    return cmocka_run_group_tests(tests, dw_tmp_setup, dw_tmp_teardown);
}
