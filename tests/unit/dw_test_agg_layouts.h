/*
 * dw_test_agg_layouts.h - older window aggregate encodings made from the current one, for the
 * tests that check they still decode (tests/unit/test_agg.c) and the seeds of the aggregate
 * fuzz harness (tests/fuzz/fuzz_agg.c). Header only: both include it.
 */
#ifndef DW_TEST_AGG_LAYOUTS_H
#define DW_TEST_AGG_LAYOUTS_H

#include <stdint.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_codec.h"

#define DW_TEST_COUNTS_BYTES (16 * 8) /* bytes of an encoded struct dw_counts: 16 fields of 8 */

/*
 * Appends agg in the version 6 layout to out: version 7 without the served and errors counts
 * (after the model's counts and after each version's) and without the versions' latency
 * sketches. @returns 0, or -1 when the current encoding is not version 7 or does not parse.
 */
static inline int dw_test_agg_encode_v6(const struct dw_agg *agg, struct dw_buf *out)
{
    struct dw_buf v7;
    dw_buf_init(&v7);
    dw_agg_encode(agg, &v7);
    struct dw_reader rd;
    dw_reader_init(&rd, v7.data, v7.len);
    int version = dw_rd_u8(&rd);
    dw_rd_i64(&rd);                         /* start_ms */
    dw_rd_u8(&rd);                          /* flags */
    dw_rd_bytes(&rd, dw_rd_u32(&rd));       /* outputs */
    dw_rd_bytes(&rd, DW_TEST_COUNTS_BYTES); /* the model's counts */
    size_t head = rd.pos;
    dw_rd_u64(&rd); /* served */
    dw_rd_u64(&rd); /* errors */
    uint16_t n = dw_rd_u16(&rd);
    if (version != 7 || rd.err) {
        dw_buf_free(&v7);
        return -1;
    }
    dw_buf_put_u8(out, 6);
    dw_buf_put(out, v7.data + 1, head - 1);
    dw_buf_put_u16(out, n);
    for (uint16_t i = 0; i < n && !rd.err; i++) {
        size_t from = rd.pos;
        dw_rd_bytes(&rd, dw_rd_u32(&rd)); /* name */
        dw_rd_bytes(&rd, DW_TEST_COUNTS_BYTES);
        if (!rd.err) {
            dw_buf_put(out, v7.data + from, rd.pos - from);
        }
        dw_rd_u64(&rd);                   /* served */
        dw_rd_u64(&rd);                   /* errors */
        dw_rd_bytes(&rd, dw_rd_u32(&rd)); /* latency sketch */
    }
    int rc = rd.err ? -1 : 0;
    if (!rc) {
        dw_buf_put(out, v7.data + rd.pos, v7.len - rd.pos);
    }
    dw_buf_free(&v7);
    return rc;
}

#endif
