/*
 * dw_test_fixture.h - reading the JSON fixtures that tests/fixtures/make_*_fixtures.py write
 * (values computed by scipy or scikit-learn), for the unit tests that check a statistic against
 * them. Tests run from the repo root (ctest's working directory), where the paths start.
 *
 * A sample is stored as a weighted sorted view: {"n": total, "values": ascending values,
 * "counts": their counts (absent: every count is 1)}; sample_load() reads it as the arrays
 * driftwatch's views take (weights NULL when every count is 1).
 */
#ifndef DW_TEST_FIXTURE_H
#define DW_TEST_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "driftwatch/core/dw_common.h"

#include "dw_test.h"

/** @returns tests/fixtures/<name> parsed (the caller json_decref()s it); fails the test when
 *           it cannot be read. */
static inline json_t *load_fixture(const char *name)
{
    char path[256];
    json_error_t jerr;
    snprintf(path, sizeof(path), "tests/fixtures/%s", name);
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL) {
        fail_msg("cannot read %s: %s (run the test from the repo root)", path, jerr.text);
    }
    return doc;
}

/* A fixture sample: sorted values with optional counts. */
struct sample {
    double *v;
    uint64_t *w; /* NULL: all 1 */
    size_t len;
    uint64_t n;
};

static inline void sample_load(const json_t *obj, struct sample *s)
{
    const json_t *vals = json_object_get(obj, "values");
    const json_t *counts = json_object_get(obj, "counts");
    assert_non_null(vals);
    s->len = json_array_size(vals);
    s->v = dw_malloc(s->len * sizeof(double));
    s->w = counts != NULL ? dw_malloc(s->len * sizeof(uint64_t)) : NULL;
    s->n = 0;
    for (size_t i = 0; i < s->len; i++) {
        s->v[i] = json_number_value(json_array_get(vals, i));
        if (s->w != NULL) {
            s->w[i] = (uint64_t)json_integer_value(json_array_get(counts, i));
        }
        s->n += s->w != NULL ? s->w[i] : 1;
    }
    assert_int_equal(s->n, json_integer_value(json_object_get(obj, "n")));
}

static inline void sample_free(struct sample *s)
{
    free(s->v);
    free(s->w);
}

/** @returns the number at obj[key]; fails the test when the fixture lacks it. */
static inline double jnum(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        fail_msg("fixture lacks %s", key);
    }
    return json_number_value(v);
}

/** @returns the number at obj[key], NaN for null (an undefined value); fails the test when
 *           the fixture lacks it. */
static inline double jval(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        fail_msg("fixture lacks %s", key);
    }
    return json_is_null(v) ? NAN : json_number_value(v);
}

#endif
