/*
 * test_errstream.c - the joined error stream and its change detectors (dw_errstream).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_errstream.h"

#include "dw_test.h"

#define MIN_MS 60000LL

static int detected(const json_t *rep, const char *det)
{
    return json_is_true(json_object_get(json_object_get(rep, det), "drift"));
}

/* The window's elements are the evenly spread sequence: same state as feeding it by hand. */
static void test_canonical_order(void **state)
{
    struct dw_errstream es;
    dw_errstream_init(&es);
    json_t *rep = dw_errstream_feed(&es, 0, 10, 3, NAN);
    assert_int_equal(json_integer_value(json_object_get(rep, "elements")), 10);
    json_decref(rep);
    struct dw_cd ph, ad, ddm;
    char err[128];
    assert_int_equal(dw_cd_init_default(&ph, DW_CD_PAGE_HINKLEY, err, sizeof(err)), 0);
    assert_int_equal(dw_cd_init_default(&ad, DW_CD_ADWIN, err, sizeof(err)), 0);
    assert_int_equal(dw_cd_init_default(&ddm, DW_CD_DDM, err, sizeof(err)), 0);
    const double seq[10] = {0, 0, 0, 1, 0, 0, 1, 0, 0, 1}; /* floor((i+1)3/10) > floor(3i/10) */
    for (int i = 0; i < 10; i++) {
        dw_cd_update(&ph, seq[i]);
        dw_cd_update(&ad, seq[i]);
        dw_cd_update(&ddm, seq[i]);
    }
    assert_double_exact(dw_cd_estimation(&ph), dw_cd_estimation(&es.ph));
    assert_double_exact(dw_cd_estimation(&ad), dw_cd_estimation(&es.adwin));
    assert_double_exact(dw_cd_estimation(&ddm), dw_cd_estimation(&es.ddm));
    assert_true(fabs(dw_cd_estimation(&es.ddm) - 0.3) < 1e-15);
    dw_cd_free(&ph);
    dw_cd_free(&ad);
    dw_cd_free(&ddm);
    dw_errstream_free(&es);
}

/* 30 windows at 10 % errors, then 40 %: no alarm before the change, every detector after. */
static void test_step_change(void **state)
{
    struct dw_errstream es;
    dw_errstream_init(&es);
    int first[3] = {-1, -1, -1};
    const char *dets[3] = {"page_hinkley", "adwin", "ddm"};
    for (int w = 0; w < 40; w++) {
        uint64_t errors = w < 30 ? 50 : 200;
        json_t *rep = dw_errstream_feed(&es, w * MIN_MS, 500, errors, NAN);
        for (int d = 0; d < 3; d++) {
            if (detected(rep, dets[d]) && first[d] < 0) {
                first[d] = w;
            }
        }
        json_decref(rep);
    }
    for (int d = 0; d < 3; d++) {
        if (first[d] < 30 || first[d] > 31) {
            fail_msg("%s first detected in window %d (change at 30)", dets[d], first[d]);
        }
    }
    assert_int_equal(es.elements, 40 * 500);
    dw_errstream_free(&es);
}

/* A window fed again (evaluation repeated) changes nothing; the state text round-trips and the
 * restored stream continues exactly as the original. */
static void test_idempotent_and_round_trip(void **state)
{
    struct dw_errstream a;
    dw_errstream_init(&a);
    for (int w = 0; w < 12; w++) {
        json_decref(dw_errstream_feed(&a, w * MIN_MS, 300, (uint64_t)(20 + 7 * w), NAN));
    }
    char *before = dw_errstream_dump(&a);
    json_t *again = dw_errstream_feed(&a, 11 * MIN_MS, 300, 299, NAN);
    assert_int_equal(json_integer_value(json_object_get(again, "elements")), 0);
    json_decref(again);
    char *after = dw_errstream_dump(&a);
    assert_string_equal(before, after);

    struct dw_errstream b;
    char err[128];
    assert_int_equal(dw_errstream_load(&b, after, err, sizeof(err)), 0);
    for (int w = 12; w < 30; w++) {
        uint64_t e = (uint64_t)(w < 20 ? 30 : 150);
        json_t *ra = dw_errstream_feed(&a, w * MIN_MS, 300, e, NAN);
        json_t *rb = dw_errstream_feed(&b, w * MIN_MS, 300, e, NAN);
        assert_true(json_equal(ra, rb));
        json_decref(ra);
        json_decref(rb);
    }
    char *da = dw_errstream_dump(&a), *db = dw_errstream_dump(&b);
    assert_string_equal(da, db);
    free(da);
    free(db);
    free(before);
    free(after);
    dw_errstream_free(&a);
    dw_errstream_free(&b);
}

static void test_regression_and_bad_state(void **state)
{
    struct dw_errstream es;
    dw_errstream_init(&es);
    json_t *rep = dw_errstream_feed(&es, 0, 50, 0, 2.5);
    assert_true(json_is_null(json_object_get(rep, "ddm")));
    double est = json_real_value(json_object_get(json_object_get(rep, "adwin"), "estimation"));
    assert_true(fabs(est - 2.5) < 1e-12);
    json_decref(rep);
    rep = dw_errstream_feed(&es, MIN_MS, 0, 0, NAN); /* an empty window feeds nothing */
    assert_int_equal(json_integer_value(json_object_get(rep, "stream_elements")), 50);
    json_decref(rep);
    dw_errstream_free(&es);

    char err[128];
    const char *bad[] = {NULL, "", "v1:zz", "v1:0", "v2:00", "v1:0011"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dw_errstream_load(&es, bad[i], err, sizeof(err)), -1);
        assert_int_equal(es.elements, 0); /* fresh, usable */
        json_decref(dw_errstream_feed(&es, 0, 5, 1, NAN));
        assert_int_equal(es.elements, 5);
        dw_errstream_free(&es);
    }
}

/* A state refused names the detector and what is wrong with it, not only "corrupt". */
static void test_bad_state_message(void **state)
{
    (void)state;
    struct dw_errstream es;
    dw_errstream_init(&es);
    json_decref(dw_errstream_feed(&es, 0, 200, 30, NAN));
    char *text = dw_errstream_dump(&es);
    dw_errstream_free(&es);
    char err[256] = "";
    assert_int_equal(dw_errstream_load(&es, text, err, sizeof(err)), 0);
    dw_errstream_free(&es);
    /* the ADWIN record starts right after i64 + u64 and the PH record (2 + 4 + 3 x 8 + 1 +
     * 6 x 8 + 1 + 2 x 8 = 96 bytes): its delta (bytes 2..9) set to 2.0 */
    char *bad = strdup(text);
    assert_non_null(bad);
    size_t at = strlen("v1:") + 2 * (16 + 96 + 2);
    memcpy(bad + at, "0000000000000040", 16); /* 2.0 little-endian */
    assert_int_equal(dw_errstream_load(&es, bad, err, sizeof(err)), -1);
    assert_contains(err, "adwin: delta 2 outside (0, 1)");
    dw_errstream_free(&es);
    free(bad);
    /* cut inside the DDM record */
    text[strlen(text) - 10] = '\0';
    assert_int_equal(dw_errstream_load(&es, text, err, sizeof(err)), -1);
    assert_contains(err, "error stream state: ddm: truncated record");
    dw_errstream_free(&es);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_order),
        cmocka_unit_test(test_step_change),
        cmocka_unit_test(test_idempotent_and_round_trip),
        cmocka_unit_test(test_regression_and_bad_state),
        cmocka_unit_test(test_bad_state_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
