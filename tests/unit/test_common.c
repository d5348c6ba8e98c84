/*
 * test_common.c - the shared helpers: RFC 3339 parsing and formatting, durations, the FNV-1a
 * hash and the double sort.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_common.h"

#include "dw_test.h"

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms = 0;
    const char *t = "2026-11-22T10:15:03.120Z";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1795342503120LL); /* date -d 2026-11-22T10:15:03Z +%s -> 1795342503 */
    t = "2026-11-22T12:15:03.12+02:00";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1795342503120LL);
    t = "1969-12-31T23:59:59.5Z";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, -500);
    const char *bad[] = {"2026-02-30T00:00:00Z", "2026-11-22T10:15:03", "2026-11-22 10:15Z",
                         "2026-11-22T10:15:03.Z", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dw_time_parse_rfc3339(bad[i], strlen(bad[i]), &ms), -1);
    }
    char buf[40];
    dw_time_format_rfc3339(1795342503120LL, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-22T10:15:03.120Z");
    dw_time_format_rfc3339(-500, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.500Z");
    dw_time_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

static void test_durations(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(dw_duration_parse("1500ms", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(dw_duration_parse("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(dw_duration_parse("2", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(dw_duration_parse("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(dw_duration_parse("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(dw_duration_parse("10x", &ms), -1);
    assert_int_equal(dw_duration_parse("-1s", &ms), -1);
    assert_int_equal(dw_duration_parse("", &ms), -1);
}

static void test_fnv1a(void **state)
{
    (void)state;
    /* Published FNV-1a 64 test vectors. */
    assert_int_equal(dw_hash64("", 0), 0xcbf29ce484222325ULL);
    assert_int_equal(dw_hash64("a", 1), 0xaf63dc4c8601ec8cULL);
    assert_int_equal(dw_hash64("foobar", 6), 0x85944171f73967e8ULL);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_sort_doubles(void **state)
{
    (void)state;
    uint64_t s = 42;
    for (size_t n = 0; n < 3000; n = n * 2 + 1) {
        double *v = malloc((n + 1) * sizeof(double)), *w = malloc((n + 1) * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double x = (double)(int64_t)(s >> 20) / 1e6;
            v[i] = (i % 7 == 0) ? -x : (i % 11 == 0 ? 0.0 : x);
            if (i % 13 == 0) {
                v[i] = i % 2 ? INFINITY : -INFINITY;
            }
            if (i % 17 == 0) {
                v[i] = 1e-310; /* subnormal */
            }
        }
        memcpy(w, v, n * sizeof(double));
        dw_sort_doubles(v, n);
        qsort(w, n, sizeof(double), cmp);
        for (size_t i = 0; i < n; i++) {
            assert_double_exact(v[i], w[i]);
        }
        free(v);
        free(w);
    }
}

/* Numbers read back from Redis: digits only, range-checked; anything else is corruption. */
static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v = 7;
    static const struct {
        const char *text;
        int64_t min, max, want; /* want is ignored when ok is 0 */
        int ok;
    } cases[] = {
        {"0", 0, 10, 0, 1},
        {"10", 0, 10, 10, 1},
        {"-1", -1, 10, -1, 1},
        {"007", 0, 10, 7, 1},
        {"9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX, 1},
        {"-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN, 1},
        {"9223372036854775808", INT64_MIN, INT64_MAX, 0, 0}, /* overflow */
        {"-9223372036854775809", INT64_MIN, INT64_MAX, 0, 0},
        {"99999999999999999999999", INT64_MIN, INT64_MAX, 0, 0},
        {"11", 0, 10, 0, 0},  /* above max */
        {"-2", -1, 10, 0, 0}, /* below min */
        {"", 0, 10, 0, 0},
        {"-", -10, 10, 0, 0},
        {"+5", 0, 10, 0, 0},
        {" 5", 0, 10, 0, 0},
        {"5 ", 0, 10, 0, 0},
        {"12garbage", 0, 100, 0, 0},
        {"garbage", 0, 100, 0, 0},
        {"0x10", 0, 100, 0, 0},
        {"1e3", 0, 10000, 0, 0},
        {"1.0", 0, 10, 0, 0},
        {"--1", -10, 10, 0, 0},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        v = 7;
        int rc = dw_parse_i64(cases[i].text, strlen(cases[i].text), cases[i].min, cases[i].max, &v);
        if (rc != (cases[i].ok ? 0 : -1) || (cases[i].ok && v != cases[i].want) ||
            (!cases[i].ok && v != 7)) {
            fail_msg("\"%s\": rc %d value %lld", cases[i].text, rc, (long long)v);
        }
    }
    /* Binary-safe: the length counts, an embedded NUL is not a digit. */
    assert_int_equal(dw_parse_i64("123", 2, 0, 1000, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(dw_parse_i64("1\0003", 3, 0, 1000, &v), -1);
    assert_int_equal(dw_parse_i64(NULL, 0, 0, 1000, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),   cmocka_unit_test(test_durations),
        cmocka_unit_test(test_fnv1a),     cmocka_unit_test(test_sort_doubles),
        cmocka_unit_test(test_parse_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
