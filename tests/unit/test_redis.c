/*
 * test_redis.c - the names of the global Redis keys (dw_redis_name_*), byte for byte as the
 * key layout of dw_redis.h states them: state stored by an earlier build must keep loading, so
 * a name may never change by accident. No server: naming needs none (the keys of a partition
 * are checked against a real redis-server by tests/integration/test_state_redis.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/io/dw_redis.h"

/* The names kept per model: builder and name of model "fraud". */
static const struct {
    void (*build)(const char *model, char *buf, size_t size);
    const char *want;
} g_model_names[] = {
    {dw_redis_name_refwins, "refwins:fraud"},
    {dw_redis_name_ref, "ref:fraud"},
    {dw_redis_name_rolling_first, "rolling_first:fraud"},
    {dw_redis_name_alerts, "alerts:fraud"},
    {dw_redis_name_trigger, "trigger:fraud"},
    {dw_redis_name_firing, "firing:fraud"},
    {dw_redis_name_errstream, "errstream:fraud"},
    {dw_redis_name_baseline, "baseline:fraud"},
};

static void test_model_names(void **state)
{
    (void)state;
    char buf[DW_REDIS_NAME_MAX];
    for (size_t i = 0; i < sizeof(g_model_names) / sizeof(g_model_names[0]); i++) {
        g_model_names[i].build("fraud", buf, sizeof(buf));
        assert_string_equal(buf, g_model_names[i].want);
    }
    dw_redis_name_cursor("fraud", 0, buf, sizeof(buf));
    assert_string_equal(buf, "cursor:fraud");
    dw_redis_name_cursor("fraud", 1, buf, sizeof(buf));
    assert_string_equal(buf, "cursor_final:fraud");
}

static void test_report_name(void **state)
{
    (void)state;
    char buf[DW_REDIS_NAME_MAX];
    dw_redis_name_report("fraud", 1767225600000LL, buf, sizeof(buf));
    assert_string_equal(buf, "report:fraud:1767225600000");
    /* a window before 1970 (event time is signed) */
    dw_redis_name_report("m:v2", -60000, buf, sizeof(buf));
    assert_string_equal(buf, "report:m:v2:-60000");
    dw_redis_name_summary("fraud", 1767225600000LL, buf, sizeof(buf));
    assert_string_equal(buf, "summary:fraud:1767225600000");
}

static void test_fixed_names(void **state)
{
    (void)state;
    char buf[DW_REDIS_NAME_MAX];
    dw_redis_name_partitions(buf, sizeof(buf));
    assert_string_equal(buf, "partitions");
    dw_redis_name_deliveries(buf, sizeof(buf));
    assert_string_equal(buf, "deliveries");
}

/* A buffer too small truncates (terminated), never overflows. */
static void test_small_buffer(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof(buf));
    dw_redis_name_cursor("fraud", 1, buf, sizeof(buf));
    assert_string_equal(buf, "cursor_");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_report_name),
        cmocka_unit_test(test_fixed_names),
        cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
