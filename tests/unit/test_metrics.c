/*
 * test_metrics.c - the Prometheus registry: values, families, exact rendering, escaping,
 * lock-free updates from several threads, and promtool's verdict on the rendered text.
 */
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_metrics.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dw_test.h"

#ifndef DW_VERSION
#define DW_VERSION "unknown"
#endif

/* Threads and increments per thread in the concurrency test (count). */
#define N_THREADS 4
#define N_INCS 100000

#define BUILD_INFO                                                                                 \
    "# HELP driftwatch_build_info Build information of this driftwatch binary; always 1.\n"        \
    "# TYPE driftwatch_build_info gauge\n"                                                         \
    "driftwatch_build_info{version=\"" DW_VERSION "\"} 1\n"

static int setup(void **state)
{
    dw_metrics_reset();
    return 0;
}

static void test_counter_and_gauge(void **state)
{
    struct dw_metric *c =
        dw_metrics_series("driftwatch_messages_consumed_total", "Messages consumed.",
                          DW_METRIC_COUNTER, "topic=\"labels\"");
    struct dw_metric *g =
        dw_metrics_series("driftwatch_checkpoint_duration_seconds",
                          "Duration of the last checkpoint.", DW_METRIC_GAUGE, NULL);
    assert_non_null(c);
    assert_non_null(g);
    assert_double_exact(dw_metric_get(c), 0.0);
    dw_metric_inc(c);
    dw_metric_inc(c);
    dw_metric_add(c, 3.5);
    assert_double_exact(dw_metric_get(c), 5.5);

    dw_metric_set(g, 0.25);
    assert_double_exact(dw_metric_get(g), 0.25);
    dw_metric_add(g, -1.0);
    assert_double_exact(dw_metric_get(g), -0.75);
    dw_metric_set(g, 7);
    assert_double_exact(dw_metric_get(g), 7.0);
}

static void test_same_series_returned(void **state)
{
    struct dw_metric *a = dw_metrics_series("driftwatch_messages_consumed_total", "Messages.",
                                            DW_METRIC_COUNTER, "topic=\"labels\"");
    struct dw_metric *b = dw_metrics_series("driftwatch_messages_consumed_total", "Messages.",
                                            DW_METRIC_COUNTER, "topic=\"labels\"");
    struct dw_metric *c = dw_metrics_series("driftwatch_messages_consumed_total", "Messages.",
                                            DW_METRIC_COUNTER, "topic=\"predictions\"");
    struct dw_metric *d = dw_metrics_series("driftwatch_up", "Up.", DW_METRIC_GAUGE, NULL);
    struct dw_metric *e = dw_metrics_series("driftwatch_up", "Up.", DW_METRIC_GAUGE, "");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_ptr_equal(d, e); /* NULL and "" both mean "no labels" */
    dw_metric_inc(a);
    assert_double_exact(dw_metric_get(b), 1.0);
    assert_double_exact(dw_metric_get(c), 0.0);
}

static void test_render_exact(void **state)
{
    struct dw_metric *pred = dw_metrics_series("driftwatch_messages_consumed_total",
                                               "Messages consumed from Kafka, by topic.",
                                               DW_METRIC_COUNTER, "topic=\"predictions\"");
    struct dw_metric *ckpt =
        dw_metrics_series("driftwatch_checkpoint_duration_seconds",
                          "Duration of the last Redis checkpoint.", DW_METRIC_GAUGE, NULL);
    /* Registered after another family: must still be grouped under its own family. */
    struct dw_metric *lab = dw_metrics_series("driftwatch_messages_consumed_total",
                                              "Messages consumed from Kafka, by topic.",
                                              DW_METRIC_COUNTER, "topic=\"labels\"");
    struct dw_metric *bad =
        dw_metrics_series("driftwatch_bad_messages_total", "Unusable messages, by reason.",
                          DW_METRIC_COUNTER, "reason=\"invalid_json\",topic=\"predictions\"");
    dw_metric_add(pred, 1234567);
    dw_metric_set(ckpt, 0.25);
    dw_metric_inc(lab);
    dw_metric_inc(lab);
    (void)bad;

    char *text = dw_metrics_render();
    const char *want =
        "# HELP driftwatch_messages_consumed_total Messages consumed from Kafka, by topic.\n"
        "# TYPE driftwatch_messages_consumed_total counter\n"
        "driftwatch_messages_consumed_total{topic=\"predictions\"} 1234567\n"
        "driftwatch_messages_consumed_total{topic=\"labels\"} 2\n"
        "# HELP driftwatch_checkpoint_duration_seconds Duration of the last Redis checkpoint.\n"
        "# TYPE driftwatch_checkpoint_duration_seconds gauge\n"
        "driftwatch_checkpoint_duration_seconds 0.25\n"
        "# HELP driftwatch_bad_messages_total Unusable messages, by reason.\n"
        "# TYPE driftwatch_bad_messages_total counter\n"
        "driftwatch_bad_messages_total{reason=\"invalid_json\",topic=\"predictions\"} "
        "0\n" BUILD_INFO;
    assert_string_equal(text, want);
    free(text);

    /* A second render is identical (build_info is not registered twice). */
    text = dw_metrics_render();
    assert_string_equal(text, want);
    free(text);
}

static void test_render_empty_has_build_info(void **state)
{
    char *text = dw_metrics_render();
    assert_string_equal(text, BUILD_INFO);
    free(text);
}

/* Renders one gauge holding v and returns its value text (static buffer). */
static const char *render_value(double v)
{
    static char out[128];
    dw_metrics_reset();
    struct dw_metric *g = dw_metrics_series("driftwatch_v", "v.", DW_METRIC_GAUGE, NULL);
    dw_metric_set(g, v);
    char *text = dw_metrics_render();
    const char *line = strstr(text, "\ndriftwatch_v ");
    assert_non_null(line);
    line += strlen("\ndriftwatch_v ");
    size_t n = strcspn(line, "\n");
    assert_true(n < sizeof(out));
    memcpy(out, line, n);
    out[n] = '\0';
    free(text);
    return out;
}

static void test_value_format(void **state)
{
    assert_string_equal(render_value(0), "0");
    assert_string_equal(render_value(-0.0), "0");
    assert_string_equal(render_value(42), "42");
    assert_string_equal(render_value(-17), "-17");
    assert_string_equal(render_value(123456789012.0), "123456789012");
    assert_string_equal(render_value(0.1), "0.1");
    assert_string_equal(render_value(1.5e-7), "1.5e-07");
    assert_string_equal(render_value(1.0 / 3.0), "0.3333333333333333");
    assert_string_equal(render_value(1e20), "1e+20");
    assert_string_equal(render_value(NAN), "NaN");
    assert_string_equal(render_value(INFINITY), "+Inf");
    assert_string_equal(render_value(-INFINITY), "-Inf");
    /* Every finite rendering reads back to the same double. */
    const double vals[] = {0.1, 1.0 / 3.0, 2.0 / 7.0, 1e-300, 6.02214076e23, 0.30000000000000004};
    for (size_t i = 0; i < DW_ARRAY_SIZE(vals); i++) {
        assert_double_exact(strtod(render_value(vals[i]), NULL), vals[i]);
    }
}

static void test_escape(void **state)
{
    char buf[64];
    dw_metrics_escape("a\\b\"c\nd", buf, sizeof(buf));
    assert_string_equal(buf, "a\\\\b\\\"c\\nd");
    dw_metrics_escape("plain", buf, sizeof(buf));
    assert_string_equal(buf, "plain");
    dw_metrics_escape(NULL, buf, sizeof(buf));
    assert_string_equal(buf, "");

    /* Truncation never splits an escape sequence... */
    dw_metrics_escape("ab\"cd", buf, 4);
    assert_string_equal(buf, "ab");
    dw_metrics_escape("ab\"cd", buf, 5);
    assert_string_equal(buf, "ab\\\"");
    /* ...nor a UTF-8 character ("é" is two bytes). */
    dw_metrics_escape("ab\xc3\xa9", buf, 4);
    assert_string_equal(buf, "ab");
    dw_metrics_escape("ab\xc3\xa9", buf, 5);
    assert_string_equal(buf, "ab\xc3\xa9");

    /* An escaped value round-trips into a valid series. */
    dw_metrics_escape("fraud \"v2\"\nbeta", buf, sizeof(buf));
    char labels[128];
    snprintf(labels, sizeof(labels), "model=\"%s\"", buf);
    struct dw_metric *m =
        dw_metrics_series("driftwatch_model_up", "Model seen.", DW_METRIC_GAUGE, labels);
    dw_metric_set(m, 1);
    char *text = dw_metrics_render();
    assert_contains(text, "driftwatch_model_up{model=\"fraud \\\"v2\\\"\\nbeta\"} 1\n");
    free(text);
}

static void test_help_escaped(void **state)
{
    dw_metrics_series("driftwatch_x", "line one\nback\\slash \"quoted\"", DW_METRIC_GAUGE, NULL);
    char *text = dw_metrics_render();
    assert_contains(text, "# HELP driftwatch_x line one\\nback\\\\slash \"quoted\"\n");
    free(text);
}

struct worker_arg {
    int id;
    struct dw_metric *got;
};

static void *worker(void *p)
{
    struct worker_arg *arg = p;
    /* Every thread looks the series up itself: registration races must yield one series. */
    struct dw_metric *c = dw_metrics_series("driftwatch_messages_consumed_total", "Messages.",
                                            DW_METRIC_COUNTER, "topic=\"predictions\"");
    struct dw_metric *g =
        dw_metrics_series("driftwatch_lag_seconds_sum", "Sum.", DW_METRIC_GAUGE, NULL);
    arg->got = c;
    for (int i = 0; i < N_INCS; i++) {
        dw_metric_inc(c);
        dw_metric_add(g, 0.5);
        dw_metric_add(g, -0.25);
        if (i % 1000 == 0) {
            /* Render concurrently with updates: must not race (ASan/TSan-visible). */
            char *text = dw_metrics_render();
            free(text);
        }
    }
    return NULL;
}

static void test_concurrent_increments(void **state)
{
    pthread_t th[N_THREADS];
    struct worker_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i].id = i;
        args[i].got = NULL;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    for (int i = 1; i < N_THREADS; i++) {
        assert_ptr_equal(args[i].got, args[0].got);
    }
    assert_double_exact(dw_metric_get(args[0].got), (double)N_THREADS * N_INCS);
    struct dw_metric *g =
        dw_metrics_series("driftwatch_lag_seconds_sum", "Sum.", DW_METRIC_GAUGE, NULL);
    /* 0.5 and 0.25 are exact in binary, so the sum is exact too. */
    assert_double_exact(dw_metric_get(g), (double)N_THREADS * N_INCS * 0.25);

    char *text = dw_metrics_render();
    assert_contains(text, "driftwatch_messages_consumed_total{topic=\"predictions\"} "
                          "400000\n");
    assert_contains(text, "driftwatch_lag_seconds_sum 100000\n");
    free(text);
}

/* Runs `promtool check metrics` on text; returns its exit status (or -1). */
static int promtool_check(const char *text, char *out, size_t out_size)
{
    char path[] = "/tmp/dw_test_metrics_XXXXXX";
    dw_test_temp_file(path, text);

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    if (status == -1 || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

static void test_promtool_accepts(void **state)
{
    char out[4096];
    /* promtool is a hard requirement of the test suite (scripts/deps.sh installs it). */
    assert_int_equal(system("command -v promtool > /dev/null 2>&1"), 0);

    struct dw_metric *m;
    m = dw_metrics_series("driftwatch_messages_consumed_total",
                          "Messages consumed from Kafka, by topic.", DW_METRIC_COUNTER,
                          "topic=\"labels\"");
    dw_metric_add(m, 99);
    m = dw_metrics_series("driftwatch_messages_consumed_total",
                          "Messages consumed from Kafka, by topic.", DW_METRIC_COUNTER,
                          "topic=\"predictions\"");
    dw_metric_add(m, 1e21);
    m = dw_metrics_series("driftwatch_checkpoint_duration_seconds",
                          "Duration of the last Redis checkpoint.", DW_METRIC_GAUGE, NULL);
    dw_metric_set(m, 0.0123456789);
    m = dw_metrics_series("driftwatch_feature_psi_ratio", "PSI of a feature in the last window.",
                          DW_METRIC_GAUGE, "model=\"fraud\",feature=\"amount\"");
    dw_metric_set(m, NAN);
    m = dw_metrics_series("driftwatch_feature_psi_ratio", "PSI of a feature in the last window.",
                          DW_METRIC_GAUGE, "model=\"fraud\",feature=\"country \\\"DE\\\"\\n\"");
    dw_metric_set(m, INFINITY);
    m = dw_metrics_series("driftwatch_feature_psi_ratio", "PSI of a feature in the last window.",
                          DW_METRIC_GAUGE, "model=\"fraud\",feature=\"caf\xc3\xa9\"");
    dw_metric_set(m, -INFINITY);
    m = dw_metrics_series("driftwatch_join_cache_bytes", "Bytes held by the join cache.\nApprox.",
                          DW_METRIC_GAUGE, NULL);
    dw_metric_set(m, 1.0 / 3.0);

    char *text = dw_metrics_render();
    int rc = promtool_check(text, out, sizeof(out));
    if (rc != 0) {
        print_error("promtool rejected:\n%s\n--- output ---\n%s\n", text, out);
    }
    free(text);
    assert_int_equal(rc, 0);

    /* And the check is real: promtool rejects a broken exposition. */
    rc = promtool_check("# TYPE driftwatch_x gauge\ndriftwatch_x{a=\"b} 1\n", out, sizeof(out));
    assert_int_not_equal(rc, 0);
}

/* Runs fn in a child process and returns whether it died of SIGABRT (dw_assert). */
static int aborts(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Keep the expected assertion message out of the test output. */
        if (!freopen("/dev/null", "w", stderr)) {
            _exit(2);
        }
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void reregister_other_type(void)
{
    dw_metrics_series("driftwatch_dup_total", "Dup.", DW_METRIC_COUNTER, NULL);
    dw_metrics_series("driftwatch_dup_total", "Dup.", DW_METRIC_GAUGE, "a=\"b\"");
}

static void reregister_other_help(void)
{
    dw_metrics_series("driftwatch_dup_total", "Dup.", DW_METRIC_COUNTER, NULL);
    dw_metrics_series("driftwatch_dup_total", "Other help.", DW_METRIC_COUNTER, NULL);
}

static void register_bad_name(void)
{
    dw_metrics_series("driftwatch-bad name", "Bad.", DW_METRIC_GAUGE, NULL);
}

static void register_bad_labels(void)
{
    dw_metrics_series("driftwatch_ok", "Ok.", DW_METRIC_GAUGE, "topic=unquoted");
}

static void counter_negative_add(void)
{
    struct dw_metric *m = dw_metrics_series("driftwatch_c_total", "C.", DW_METRIC_COUNTER, NULL);
    dw_metric_add(m, -1);
}

static void register_ok(void)
{
    dw_metrics_series("driftwatch_dup_total", "Dup.", DW_METRIC_COUNTER, NULL);
    dw_metrics_series("driftwatch_dup_total", "Dup.", DW_METRIC_COUNTER, "a=\"b\"");
}

static void test_programming_errors_abort(void **state)
{
    assert_false(aborts(register_ok));
    assert_true(aborts(reregister_other_type));
    assert_true(aborts(reregister_other_help));
    assert_true(aborts(register_bad_name));
    assert_true(aborts(register_bad_labels));
    assert_true(aborts(counter_negative_add));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter_and_gauge, setup),
        cmocka_unit_test_setup(test_same_series_returned, setup),
        cmocka_unit_test_setup(test_render_exact, setup),
        cmocka_unit_test_setup(test_render_empty_has_build_info, setup),
        cmocka_unit_test_setup(test_value_format, setup),
        cmocka_unit_test_setup(test_escape, setup),
        cmocka_unit_test_setup(test_help_escaped, setup),
        cmocka_unit_test_setup(test_concurrent_increments, setup),
        cmocka_unit_test_setup(test_promtool_accepts, setup),
        cmocka_unit_test_setup(test_programming_errors_abort, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dw_metrics_reset();
    return rc;
}
