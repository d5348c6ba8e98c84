/*
 * dw_errstream.c - the joined error stream of a model and its change detectors.
 *
 * Why counts and not events: see dw_errstream.h. Feeding a window of n elements costs n updates
 * of each detector (ADWIN: amortised O(log n)); the evaluator runs it once per window at the
 * label horizon, off the consumer's path.
 *
 * State text: "v1:" then the hex of a dw_codec record: i64 next_start_ms, u64 elements, then
 * the three tagged detector records of dw_cd_serialize (PH, ADWIN, DDM). Hex rather than raw
 * bytes so the state travels in the evaluator's text commit like the alert state.
 */
#include "driftwatch/core/dw_errstream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_codec.h"
#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define STATE_PREFIX "v1:"

void dw_errstream_init(struct dw_errstream *es)
{
    char err[128];
    memset(es, 0, sizeof(*es));
    int rc = dw_cd_init_default(&es->ph, DW_CD_PAGE_HINKLEY, err, sizeof(err));
    rc |= dw_cd_init_default(&es->adwin, DW_CD_ADWIN, err, sizeof(err));
    rc |= dw_cd_init_default(&es->ddm, DW_CD_DDM, err, sizeof(err));
    dw_assert(rc == 0); /* river's defaults are valid */
    es->next_start_ms = INT64_MIN;
}

void dw_errstream_free(struct dw_errstream *es)
{
    dw_cd_free(&es->ph);
    dw_cd_free(&es->adwin);
    dw_cd_free(&es->ddm);
}

/* Feeds x to cd; remembers whether any update detected a change. */
static void feed(struct dw_cd *cd, double x, int *drift)
{
    if (dw_cd_update(cd, x)) {
        *drift = 1;
    }
}

static json_t *detector_json(const struct dw_cd *cd, int drift, int with_warning)
{
    double est = dw_cd_estimation(cd);
    json_t *o =
        json_pack("{s:b,s:I}", "drift", drift, "detections", (json_int_t)dw_cd_detections(cd));
    if (with_warning) {
        json_object_set_new(o, "warning", json_boolean(dw_cd_warning(cd)));
    }
    json_object_set_new(o, "estimation", isfinite(est) ? json_real(est) : json_null());
    return o;
}

json_t *dw_errstream_feed(struct dw_errstream *es, int64_t start_ms, uint64_t n, uint64_t errors,
                          double mae)
{
    int fresh = es->next_start_ms == INT64_MIN || start_ms >= es->next_start_ms;
    int regression = !isnan(mae);
    int d_ph = 0, d_ad = 0, d_ddm = 0;
    uint64_t fed = 0;
    if (fresh) {
        /* acc = (i * errors) mod n: element i is an error when floor((i + 1) errors / n)
         * exceeds floor(i errors / n), i.e. when acc + errors reaches n (errors <= n). */
        uint64_t acc = 0;
        errors = DW_MIN(errors, n);
        for (uint64_t i = 0; i < n; i++) {
            double x = mae;
            if (!regression) {
                acc += errors;
                x = acc >= n ? 1.0 : 0.0;
                acc -= acc >= n ? n : 0;
            }
            feed(&es->ph, x, &d_ph);
            feed(&es->adwin, x, &d_ad);
            if (!regression) {
                feed(&es->ddm, x, &d_ddm);
            }
        }
        fed = n;
        es->elements += n;
        es->next_start_ms = start_ms + 1;
    }
    return json_pack("{s:I,s:I,s:o,s:o,s:o}", "elements", (json_int_t)fed, "stream_elements",
                     (json_int_t)es->elements, "page_hinkley", detector_json(&es->ph, d_ph, 0),
                     "adwin", detector_json(&es->adwin, d_ad, 0), "ddm",
                     regression ? json_null() : detector_json(&es->ddm, d_ddm, 1));
}

json_t *dw_errstream_feed_report(struct dw_errstream *es, const struct dw_model_cfg *m,
                                 const json_t *report)
{
    int64_t start = (int64_t)json_integer_value(json_object_get(report, "window_start_ms"));
    uint64_t n = (uint64_t)json_integer_value(json_object_get(report, "labeled"));
    if (m->task == DW_TASK_REGRESSION) {
        json_t *mae = json_object_get(json_object_get(report, "performance"), "mae");
        return dw_errstream_feed(es, start, json_is_number(mae) ? n : 0, 0,
                                 json_is_number(mae) ? json_number_value(mae) : 0.0);
    }
    uint64_t correct = (uint64_t)json_integer_value(json_object_get(report, "correct"));
    return dw_errstream_feed(es, start, n, correct <= n ? n - correct : 0, NAN);
}

char *dw_errstream_dump(const struct dw_errstream *es)
{
    struct dw_buf b;
    dw_buf_init(&b);
    dw_buf_put_i64(&b, es->next_start_ms);
    dw_buf_put_u64(&b, es->elements);
    dw_cd_serialize(&es->ph, &b);
    dw_cd_serialize(&es->adwin, &b);
    dw_cd_serialize(&es->ddm, &b);
    size_t prefix = strlen(STATE_PREFIX);
    char *text = dw_malloc(prefix + 2 * b.len + 1);
    memcpy(text, STATE_PREFIX, prefix);
    dw_hex(b.data, b.len, text + prefix);
    dw_buf_free(&b);
    return text;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Hex text -> bytes. @returns the byte count, or -1 on a bad digit or odd length. */
static long unhex(const char *text, uint8_t **out)
{
    size_t len = strlen(text);
    if (len % 2 != 0) {
        return -1;
    }
    *out = dw_malloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

int dw_errstream_load(struct dw_errstream *es, const char *text, char *errstr, size_t errstr_size)
{
    uint8_t *bytes = NULL;
    long n = -1;
    if (text && strncmp(text, STATE_PREFIX, strlen(STATE_PREFIX)) == 0) {
        n = unhex(text + strlen(STATE_PREFIX), &bytes);
    }
    if (n < 0) {
        dw_errstream_init(es);
        return dw_err(errstr, errstr_size, "error stream state: not a v1 state text");
    }
    struct dw_reader rd;
    dw_reader_init(&rd, bytes, (size_t)n);
    memset(es, 0, sizeof(*es));
    es->next_start_ms = dw_rd_i64(&rd);
    es->elements = dw_rd_u64(&rd);
    /* why the state is refused: the detector's own message, or what is around them */
    char why[DW_READER_MSG] = "";
    if (rd.err) {
        snprintf(why, sizeof(why), "%s", rd.msg);
    }
    static const enum dw_cd_kind kinds[] = {DW_CD_PAGE_HINKLEY, DW_CD_ADWIN, DW_CD_DDM};
    struct dw_cd *cds[] = {&es->ph, &es->adwin, &es->ddm};
    size_t held = 0;
    while (held < DW_ARRAY_SIZE(cds) && !why[0]) {
        if (dw_cd_deserialize(cds[held], &rd, why, sizeof(why)) != 0) {
            if (!why[0]) {
                snprintf(why, sizeof(why), "corrupt %s record", dw_cd_kind_name(kinds[held]));
            }
            break;
        }
        held++;
        if (cds[held - 1]->kind != kinds[held - 1]) {
            snprintf(why, sizeof(why), "detector %zu is %s, expected %s", held,
                     dw_cd_kind_name(cds[held - 1]->kind), dw_cd_kind_name(kinds[held - 1]));
        }
    }
    if (!why[0] && rd.pos != rd.len) {
        snprintf(why, sizeof(why), "%zu bytes after the detectors", rd.len - rd.pos);
    }
    free(bytes);
    if (why[0]) {
        for (size_t i = 0; i < held; i++) {
            dw_cd_free(cds[i]);
        }
        dw_errstream_init(es);
        return dw_err(errstr, errstr_size, "error stream state: %s", why);
    }
    return 0;
}
