/*
 * dw_test.h - assertions that print what they compared, for the unit tests and the C
 * integration tests (tests/integration includes it as "../unit/dw_test.h"). It includes
 * <cmocka.h> and what that needs.
 *
 * cmocka's assert_true(a == b) prints only the text of the expression when it fails, and cmocka
 * 1.1 has no double assertion, so a failure said neither what was computed nor what was
 * expected. Compare with the assertion that prints both values instead:
 *   integers, enums   assert_int_equal / assert_int_not_equal (cmocka: both sides converted to
 *                     an unsigned 64-bit integer, so equality of signed values holds too; cast
 *                     both sides when an unsigned int meets a possibly negative int)
 *   pointers          assert_ptr_equal / assert_null / assert_non_null (cmocka)
 *   strings, bytes    assert_string_equal / assert_memory_equal (cmocka)
 *   doubles and text  the macros below. They print the call as written, both values (doubles
 *                     with 17 significant digits, enough to tell any two apart; text whole up
 *                     to DW_TEST_TEXT_MAX bytes) and the tolerance, and fail at the caller's
 *                     file and line.
 *
 *   assert_double_exact(a, b)        a == b, exactly as C's ==: NaN equals nothing, -0.0 == 0.0.
 *                                    (Not assert_double_equal: cmocka 1.1.6 and later define
 *                                    that name with an epsilon argument.)
 *   assert_double_not_exact(a, b)    a != b.
 *   assert_near(a, b, tol)           |a - b| <= tol (absolute).
 *   assert_rel_near(got, want, rel)  |got - want| <= rel * max(|want|, 1): relative to the
 *                                    expected value, absolute below 1 (a relative error around 0
 *                                    means nothing).
 *   assert_close(got, want, rel, abs)
 *                                    |got - want| <= max(rel * max(|got|, |want|), abs), as
 *                                    Python's math.isclose (for values from scipy fixtures), and
 *                                    NaN is close to NaN (a fixture's undefined statistic).
 *   assert_close_what(what, got, want, rel, abs)
 *                                    the same, `what` names the case in the message (loops).
 *   assert_nan(x)                    isnan(x).
 *   assert_contains(text, part)      strstr(text, part) != NULL (an error message, a payload).
 *   assert_not_contains(text, part)  strstr(text, part) == NULL.
 *   assert_prefix(text, prefix)      text begins with prefix.
 *
 * In the tolerance macros an infinity is near itself only (no tolerance brings a number near an
 * infinity) and NaN is near nothing, except that assert_close takes NaN as close to NaN. A NULL
 * text fails the text macros.
 *
 * Write a test with these and cmocka's typed assertions, never assert_true(a == b) on numbers
 * nor a private compare helper in the test file: an assertion two tests need belongs here, with
 * its case in test_dw_test.c.
 */
#ifndef DW_TEST_H
#define DW_TEST_H

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

#define assert_double_exact(a, b)                                                                  \
    dw_test_exact(1, (a), (b), "assert_double_exact(" #a ", " #b ")", #a, #b, __FILE__, __LINE__)
#define assert_double_not_exact(a, b)                                                              \
    dw_test_exact(0, (a), (b), "assert_double_not_exact(" #a ", " #b ")", #a, #b, __FILE__,        \
                  __LINE__)
#define assert_near(a, b, tol)                                                                     \
    dw_test_tol(DW_TEST_NEAR, NULL, (a), (b), 0.0, (tol), "assert_near(" #a ", " #b ", " #tol ")", \
                #a, #b, __FILE__, __LINE__)
#define assert_rel_near(got, want, rel)                                                            \
    dw_test_tol(DW_TEST_REL, NULL, (got), (want), (rel), 0.0,                                      \
                "assert_rel_near(" #got ", " #want ", " #rel ")", #got, #want, __FILE__, __LINE__)
#define assert_close(got, want, rel, abs)                                                          \
    dw_test_tol(DW_TEST_CLOSE, NULL, (got), (want), (rel), (abs),                                  \
                "assert_close(" #got ", " #want ", " #rel ", " #abs ")", #got, #want, __FILE__,    \
                __LINE__)
#define assert_close_what(what, got, want, rel, abs)                                               \
    dw_test_tol(DW_TEST_CLOSE, (what), (got), (want), (rel), (abs),                                \
                "assert_close(" #got ", " #want ", " #rel ", " #abs ")", #got, #want, __FILE__,    \
                __LINE__)
#define assert_nan(x) dw_test_nan((x), #x, __FILE__, __LINE__)
#define assert_contains(text, part)                                                                \
    dw_test_text(DW_TEST_CONTAINS, (text), (part), "assert_contains(" #text ", " #part ")", #text, \
                 __FILE__, __LINE__)
#define assert_not_contains(text, part)                                                            \
    dw_test_text(DW_TEST_NOT_CONTAINS, (text), (part),                                             \
                 "assert_not_contains(" #text ", " #part ")", #text, __FILE__, __LINE__)
#define assert_prefix(text, prefix)                                                                \
    dw_test_text(DW_TEST_PREFIX, (text), (prefix), "assert_prefix(" #text ", " #prefix ")", #text, \
                 __FILE__, __LINE__)

/* How dw_test_tol() measures: absolute, relative to the expected value, or as math.isclose. */
enum dw_test_tol_kind { DW_TEST_NEAR, DW_TEST_REL, DW_TEST_CLOSE };

/* The tolerance dw_test_tol() grants a against b (a = got, b = want). */
static inline double dw_test_tolerance(enum dw_test_tol_kind kind, double a, double b, double rel,
                                       double abs_tol)
{
    switch (kind) {
    case DW_TEST_REL:
        return rel * fmax(fabs(b), 1.0);
    case DW_TEST_CLOSE:
        return fmax(rel * fmax(fabs(a), fabs(b)), abs_tol);
    case DW_TEST_NEAR:
    default:
        return abs_tol;
    }
}

/* @returns 1 when a is within the tolerance of b (the predicate of the macros above). */
static inline int dw_test_within(enum dw_test_tol_kind kind, double a, double b, double rel,
                                 double abs_tol)
{
    if (isnan(a) || isnan(b)) {
        return kind == DW_TEST_CLOSE && isnan(a) && isnan(b);
    }
    if (isinf(a) || isinf(b)) {
        return a == b;
    }
    return fabs(a - b) <= dw_test_tolerance(kind, a, b, rel, abs_tol);
}

/* Fails the test at file:line, printing the call, both values and the tolerance, unless a is
 * within the tolerance of b. what: names the case (NULL: none). */
static inline void dw_test_tol(enum dw_test_tol_kind kind, const char *what, double a, double b,
                               double rel, double abs_tol, const char *call, const char *ea,
                               const char *eb, const char *file, int line)
{
    if (dw_test_within(kind, a, b, rel, abs_tol)) {
        return;
    }
    print_error("%s%s%s failed\n", what ? what : "", what ? ": " : "", call);
    print_error("  %s = %.17g\n  %s = %.17g\n", ea, a, eb, b);
    print_error("  |difference| %.17g > tolerance %.17g", fabs(a - b),
                dw_test_tolerance(kind, a, b, rel, abs_tol));
    if (kind == DW_TEST_CLOSE) {
        print_error(" (relative %g, absolute %g)", rel, abs_tol);
    } else if (kind == DW_TEST_REL) {
        print_error(" (relative %g)", rel);
    }
    print_error("\n");
    _fail(file, line);
}

/* Fails the test at file:line, printing the call and both values, unless (a == b) == equal. */
static inline void dw_test_exact(int equal, double a, double b, const char *call, const char *ea,
                                 const char *eb, const char *file, int line)
{
    if ((a == b) == equal) {
        return;
    }
    print_error("%s failed\n  %s = %.17g\n  %s = %.17g\n", call, ea, a, eb, b);
    _fail(file, line);
}

/* Fails the test at file:line, printing x, unless x is NaN. */
static inline void dw_test_nan(double x, const char *ex, const char *file, int line)
{
    if (isnan(x)) {
        return;
    }
    print_error("assert_nan(%s) failed\n  %s = %.17g\n", ex, ex, x);
    _fail(file, line);
}

/* What dw_test_text() checks of a text. */
enum dw_test_text_kind { DW_TEST_CONTAINS, DW_TEST_NOT_CONTAINS, DW_TEST_PREFIX };

/* Text longer than this is printed cut (bytes): a failure names the text, not a whole file. */
#define DW_TEST_TEXT_MAX 4000

/* Fails the test at file:line, printing the call and the text, unless text passes the check. */
static inline void dw_test_text(enum dw_test_text_kind kind, const char *text, const char *part,
                                const char *call, const char *etext, const char *file, int line)
{
    if (text) {
        int ok;
        switch (kind) {
        case DW_TEST_CONTAINS:
            ok = strstr(text, part) != NULL;
            break;
        case DW_TEST_NOT_CONTAINS:
            ok = strstr(text, part) == NULL;
            break;
        case DW_TEST_PREFIX:
        default:
            ok = strncmp(text, part, strlen(part)) == 0;
            break;
        }
        if (ok) {
            return;
        }
        size_t len = strlen(text);
        int shown = len > DW_TEST_TEXT_MAX ? DW_TEST_TEXT_MAX : (int)len;
        print_error("%s failed\n  %s = \"%.*s\"%s (%zu bytes)\n", call, etext, shown, text,
                    len > DW_TEST_TEXT_MAX ? "..." : "", len);
    } else {
        print_error("%s failed\n  %s = NULL\n", call, etext);
    }
    _fail(file, line);
}

/* Writes text to path (created or truncated), or fails the test. */
static inline void dw_test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* A new file holding text, named by the mkstemp() template tmpl (its trailing XXXXXX replaced
 * in place), or fails the test. The caller unlinks it. */
static inline void dw_test_temp_file(char *tmpl, const char *text)
{
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    close(fd);
    dw_test_write_file(tmpl, text);
}

#endif
