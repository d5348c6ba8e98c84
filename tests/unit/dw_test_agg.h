/*
 * dw_test_agg.h - assertions on window aggregates shared by the unit tests and the Redis
 * integration tests (cmocka). Header only.
 */
#ifndef DW_TEST_AGG_H
#define DW_TEST_AGG_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_codec.h"

/* a and b encode to the same bytes. */
static inline void dw_test_assert_same_encoding(const struct dw_agg *a, const struct dw_agg *b)
{
    struct dw_buf e1, e2;
    dw_buf_init(&e1);
    dw_buf_init(&e2);
    dw_agg_encode(a, &e1);
    dw_agg_encode(b, &e2);
    assert_int_equal(e1.len, e2.len);
    assert_memory_equal(e1.data, e2.data, e1.len);
    dw_buf_free(&e1);
    dw_buf_free(&e2);
}

#endif
