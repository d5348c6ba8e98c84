/*
 * test_dw_test.c - the predicate behind the float assertions of dw_test.h: absolute, relative
 * to the expected value (absolute below 1) and math.isclose-like tolerances at their
 * boundaries, NaN and infinities; each assertion (also the text ones) on values it must accept;
 * and what a failing assertion prints: this program runs itself with --failing, a group whose every
 * test fails, and reads the messages.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dw_test.h"

static void test_near_is_absolute(void **state)
{
    (void)state;
    assert_int_equal(dw_test_within(DW_TEST_NEAR, 1.0, 1.5, 0.0, 0.5), 1); /* boundary */
    assert_int_equal(dw_test_within(DW_TEST_NEAR, 1.0, 1.5, 0.0, 0.4999), 0);
    assert_int_equal(dw_test_within(DW_TEST_NEAR, 1e9, 1e9 + 1, 0.0, 0.5), 0); /* not relative */
    assert_int_equal(dw_test_within(DW_TEST_NEAR, -2.0, -2.0, 0.0, 0.0), 1);
    assert_int_equal(dw_test_within(DW_TEST_NEAR, 2.0, 2.0, 0.0, -1.0), 0); /* no tolerance */
}

static void test_rel_is_relative_to_want_absolute_below_one(void **state)
{
    (void)state;
    /* |want| = 1000: 1e-3 relative is 1 */
    assert_int_equal(dw_test_within(DW_TEST_REL, 1001.0, 1000.0, 1e-3, 0.0), 1);
    assert_int_equal(dw_test_within(DW_TEST_REL, 1001.5, 1000.0, 1e-3, 0.0), 0);
    /* the scale is the expected value, not the larger one */
    assert_int_equal(dw_test_within(DW_TEST_REL, 1000.0, 500.0, 0.9, 0.0), 0);
    assert_int_equal(dw_test_within(DW_TEST_REL, 500.0, 1000.0, 0.5, 0.0), 1);
    /* below 1 the tolerance is absolute: 0 is near 1e-13 at 1e-12 */
    assert_int_equal(dw_test_within(DW_TEST_REL, 1e-13, 0.0, 1e-12, 0.0), 1);
    assert_int_equal(dw_test_within(DW_TEST_REL, 2e-12, 0.0, 1e-12, 0.0), 0);
}

static void test_close_is_isclose(void **state)
{
    (void)state;
    /* relative to the larger magnitude of the two */
    assert_int_equal(dw_test_within(DW_TEST_CLOSE, 1000.0, 500.0, 0.5, 0.0), 1);
    assert_int_equal(dw_test_within(DW_TEST_CLOSE, 500.0, 1000.0, 0.5, 0.0), 1);
    assert_int_equal(dw_test_within(DW_TEST_CLOSE, 500.0, 1000.0, 0.49, 0.0), 0);
    /* an absolute floor for values around 0, where nothing is relatively close */
    assert_int_equal(dw_test_within(DW_TEST_CLOSE, 1e-20, 0.0, 1e-12, 0.0), 0);
    assert_int_equal(dw_test_within(DW_TEST_CLOSE, 1e-20, 0.0, 1e-12, 1e-15), 1);
    assert_int_equal(dw_test_within(DW_TEST_CLOSE, DBL_MIN, DBL_MIN, 0.0, 0.0), 1);
}

static void test_nan_and_infinities(void **state)
{
    (void)state;
    const enum dw_test_tol_kind kinds[] = {DW_TEST_NEAR, DW_TEST_REL, DW_TEST_CLOSE};
    for (size_t k = 0; k < 3; k++) {
        enum dw_test_tol_kind kind = kinds[k];
        /* no tolerance brings a number near an infinity, nor infinities of two signs */
        assert_int_equal(dw_test_within(kind, 1.0, INFINITY, 1.0, 1e300), 0);
        assert_int_equal(dw_test_within(kind, INFINITY, 1.0, 1.0, 1e300), 0);
        assert_int_equal(dw_test_within(kind, -INFINITY, INFINITY, 1.0, 1e300), 0);
        assert_int_equal(dw_test_within(kind, INFINITY, INFINITY, 0.0, 0.0), 1);
        assert_int_equal(dw_test_within(kind, -INFINITY, -INFINITY, 0.0, 0.0), 1);
        /* NaN is near no number; only assert_close takes it as close to NaN */
        assert_int_equal(dw_test_within(kind, NAN, 1.0, 1.0, 1e300), 0);
        assert_int_equal(dw_test_within(kind, 1.0, NAN, 1.0, 1e300), 0);
        assert_int_equal(dw_test_within(kind, NAN, NAN, 1.0, 1e300), kind == DW_TEST_CLOSE);
        /* a NaN tolerance accepts nothing but the infinities' exact match */
        assert_int_equal(dw_test_within(kind, 1.0, 1.0, NAN, NAN), 0);
    }
}

static void test_assertions_accept(void **state)
{
    (void)state;
    double third = 1.0 / 3.0;
    assert_double_exact(third, 1.0 / 3.0);
    assert_double_exact(-0.0, 0.0); /* C's == */
    assert_double_not_exact(third, 0.333333333333333);
    assert_double_not_exact(NAN, NAN);
    assert_near(third, 0.333, 1e-3);
    assert_rel_near(3e6 * third, 1e6, 1e-15);
    assert_close(third, 0.33333333333333, 1e-12, 0.0);
    assert_close(NAN, NAN, 0.0, 0.0);
    assert_close_what("case", 0.0, 1e-300, 1e-12, 1e-299);
    assert_nan(NAN);
    assert_nan(sqrt(-1.0));
    assert_contains("feature c: category \"a\" appears twice", "appears twice");
    assert_not_contains("feature c", "feature x");
    assert_prefix("kll: truncated", "kll: ");
    assert_prefix("anything", "");
}

/* The --failing group: each test fails once, at a line the parent looks for. */
static void fail_near(void **state)
{
    (void)state;
    double third = 1.0 / 3.0;
    assert_near(third, 0.5, 0.1);
}

static void fail_exact(void **state)
{
    (void)state;
    assert_double_exact(0.1 + 0.2, 0.3);
}

static void fail_close_what(void **state)
{
    (void)state;
    assert_close_what("case 7", 2.0, 1.0, 0.25, 0.0);
}

static void fail_nan(void **state)
{
    (void)state;
    assert_nan(1.5);
}

static void fail_contains(void **state)
{
    (void)state;
    const char *err = "feature c: counts overflow";
    assert_contains(err, "feature x");
}

static void fail_prefix_null(void **state)
{
    (void)state;
    const char *none = NULL;
    assert_prefix(none, "kll: ");
}

static void test_failures_print_both_values(void **state)
{
    (void)state;
    char self[512], cmd[600];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(cmd, sizeof(cmd), "'%s' --failing 2>&1", self);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[16384];
    size_t len = fread(out, 1, sizeof(out) - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 6); /* cmocka: the number of failed tests */
    const char *want[] = {
        "assert_near(third, 0.5, 0.1) failed",
        "third = 0.33333333333333331",
        "0.5 = 0.5",
        "|difference| 0.16666666666666669 > tolerance 0.10000000000000001",
        "assert_double_exact(0.1 + 0.2, 0.3) failed",
        "0.1 + 0.2 = 0.30000000000000004",
        "0.3 = 0.29999999999999999",
        "case 7: assert_close(2.0, 1.0, 0.25, 0.0) failed",
        "|difference| 1 > tolerance 0.5 (relative 0.25, absolute 0)",
        "assert_nan(1.5) failed",
        "assert_contains(err, \"feature x\") failed",
        "err = \"feature c: counts overflow\" (26 bytes)",
        "assert_prefix(none, \"kll: \") failed",
        "none = NULL",
        "test_dw_test.c:",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(out, want[i])) {
            fail_msg("no \"%s\" in the output of --failing:\n%s", want[i], out);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--failing") == 0) {
        const struct CMUnitTest failing[] = {
            cmocka_unit_test(fail_near),       cmocka_unit_test(fail_exact),
            cmocka_unit_test(fail_close_what), cmocka_unit_test(fail_nan),
            cmocka_unit_test(fail_contains),   cmocka_unit_test(fail_prefix_null),
        };
        return cmocka_run_group_tests(failing, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_near_is_absolute),
        cmocka_unit_test(test_rel_is_relative_to_want_absolute_below_one),
        cmocka_unit_test(test_close_is_isclose),
        cmocka_unit_test(test_nan_and_infinities),
        cmocka_unit_test(test_assertions_accept),
        cmocka_unit_test(test_failures_print_both_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
