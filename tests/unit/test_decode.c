/*
 * test_decode.c - the event decoder: every rule of docs/messages.md, one reason code at a time.
 *
 * The configuration is built by hand (nothing from dw_config_load.c): three models, a binary
 * classifier "fraud", a regression "price" and a multi-class "animal" whose positive class is
 * "cat". The last test decodes 200k messages and prints the rate (informational only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_decode.h"

#include "dw_test.h"
#include "dw_test_nested.h"

#define KAFKA_TS 1700000000555LL /* milliseconds; the Kafka timestamp passed to every decode */

static struct dw_feature_cfg fraud_features[] = {
    {"amount", DW_FEATURE_NUMERIC},    {"country", DW_FEATURE_CATEGORICAL},
    {"age", DW_FEATURE_NUMERIC},       {"is_new", DW_FEATURE_NUMERIC},
    {"zip", DW_FEATURE_CATEGORICAL},   {"tier", DW_FEATURE_CATEGORICAL},
    {"a/b~c", DW_FEATURE_CATEGORICAL},
};

static struct dw_feature_cfg price_features[] = {
    {"sqft", DW_FEATURE_NUMERIC},
    {"city", DW_FEATURE_CATEGORICAL},
};

static struct dw_feature_cfg animal_features[] = {
    {"weight", DW_FEATURE_NUMERIC},
};

struct fixture {
    struct dw_model_cfg models[3];
    struct dw_config cfg;
    struct dw_decoder *dec;
    struct dw_prediction *p;
    struct dw_label l;
    char err[256];
};

static void default_config(struct fixture *fx)
{
    memset(&fx->cfg, 0, sizeof(fx->cfg));
    memset(fx->models, 0, sizeof(fx->models));
    fx->models[0].name = "fraud";
    fx->models[0].task = DW_TASK_CLASSIFICATION;
    fx->models[0].positive_class = "1";
    fx->models[0].features = fraud_features;
    fx->models[0].n_features = DW_ARRAY_SIZE(fraud_features);
    fx->models[1].name = "price";
    fx->models[1].task = DW_TASK_REGRESSION;
    fx->models[1].positive_class = "1";
    fx->models[1].features = price_features;
    fx->models[1].n_features = DW_ARRAY_SIZE(price_features);
    fx->models[2].name = "animal";
    fx->models[2].task = DW_TASK_CLASSIFICATION;
    fx->models[2].positive_class = "cat";
    fx->models[2].features = animal_features;
    fx->models[2].n_features = DW_ARRAY_SIZE(animal_features);
    fx->cfg.models = fx->models;
    fx->cfg.n_models = 3;
    fx->cfg.max_message_bytes = 1048576;
    fx->cfg.max_depth = 64; /* input.max_depth's default */
    fx->cfg.field_prediction_id = "/prediction_id";
    fx->cfg.field_model = "/model";
    fx->cfg.field_model_version = "/model_version";
    fx->cfg.field_timestamp = "/timestamp";
    fx->cfg.field_features = "/features";
    fx->cfg.field_prediction = "/prediction";
    fx->cfg.field_score = "/score";
    fx->cfg.field_latency_ms = "/latency_ms";
    fx->cfg.field_label_id = "/prediction_id";
    fx->cfg.field_label = "/label";
    fx->cfg.field_label_timestamp = "/timestamp";
}

static void open_decoder(struct fixture *fx)
{
    fx->dec = dw_decoder_new(&fx->cfg, fx->err, sizeof(fx->err));
    assert_non_null(fx->dec);
    fx->p = dw_prediction_new(fx->dec);
    assert_non_null(fx->p);
}

static void close_decoder(struct fixture *fx)
{
    free(fx->p);
    fx->p = NULL;
    dw_decoder_destroy(fx->dec);
    fx->dec = NULL;
}

/* The decoder again, with the "animal" model (models[2]) reading these n features. */
static void use_animal_features(struct fixture *fx, struct dw_feature_cfg *features, size_t n)
{
    close_decoder(fx);
    fx->models[2].features = features;
    fx->models[2].n_features = n;
    open_decoder(fx);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    default_config(fx);
    open_decoder(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    close_decoder(fx);
    free(fx);
    return 0;
}

static enum dw_bad_reason pred(struct fixture *fx, const char *json)
{
    fx->err[0] = '\0';
    return dw_decode_prediction(fx->dec, json, strlen(json), KAFKA_TS, fx->p, fx->err,
                                sizeof(fx->err));
}

static enum dw_bad_reason label(struct fixture *fx, const char *json)
{
    fx->err[0] = '\0';
    return dw_decode_label(fx->dec, json, strlen(json), KAFKA_TS, &fx->l, fx->err, sizeof(fx->err));
}

/* asserts that errstr contains a text (and prints errstr when it does not) */
static void assert_err_has(const struct fixture *fx, const char *text)
{
    if (!strstr(fx->err, text)) {
        fail_msg("errstr \"%s\" does not contain \"%s\"", fx->err, text);
    }
}

static void assert_mem_str(const char *s, size_t len, const char *expected)
{
    assert_non_null(s);
    if (len != strlen(expected) || memcmp(s, expected, len) != 0) {
        fail_msg("got \"%.*s\" (%zu bytes), expected \"%s\"", (int)len, s, len, expected);
    }
}

/* a prediction for "fraud" with one feature value (JSON text) for "zip" / "amount" etc. */
static enum dw_bad_reason pred_n(struct fixture *fx, const char *buf, size_t len)
{
    fx->err[0] = '\0';
    return dw_decode_prediction(fx->dec, buf, len, KAFKA_TS, fx->p, fx->err, sizeof(fx->err));
}

static enum dw_bad_reason pred_feature(struct fixture *fx, const char *name, const char *value)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
             "\"features\":{\"%s\":%s}}",
             name, value);
    return pred(fx, buf);
}

static enum dw_bad_reason pred_value(struct fixture *fx, const char *model, const char *value)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"prediction_id\":\"p\",\"model\":\"%s\",\"prediction\":%s}",
             model, value);
    return pred(fx, buf);
}

/* ----------------------------------------------------------------------------------------- */

static void test_full_prediction(void **state)
{
    struct fixture *fx = *state;
    const char *msg =
        "{\"prediction_id\": \"p-81723\", \"model\": \"fraud\", \"model_version\": \"1.4.0\","
        " \"timestamp\": \"2026-11-22T10:15:03.120Z\","
        " \"features\": {\"amount\": 132.5, \"country\": \"DE\", \"age\": null,"
        " \"is_new\": true, \"zip\": 10115, \"unconfigured\": [1, 2]},"
        " \"prediction\": 1, \"score\": 0.91, \"latency_ms\": 12.4}";
    assert_int_equal(pred(fx, msg), DW_BAD_NONE);
    assert_string_equal(fx->err, "");
    struct dw_prediction *p = fx->p;
    assert_mem_str(p->id, p->id_len, "p-81723");
    assert_ptr_equal(p->model, &fx->models[0]);
    assert_int_equal(p->model_idx, 0);
    assert_mem_str(p->version, p->version_len, "1.4.0");
    assert_int_equal(p->ts_ms, 1795342503120LL);
    assert_string_equal(p->pred.text, "1");
    assert_int_equal(p->pred.len, 1);
    assert_true(p->pred.is_num);
    assert_double_exact(p->pred.num, 1.0);
    assert_true(p->has_score);
    assert_double_exact(p->score, 0.91);
    assert_true(p->has_latency);
    assert_double_exact(p->latency_ms, 12.4);
    assert_int_equal(p->features[0].kind, DW_VAL_NUM);
    assert_double_exact(p->features[0].num, 132.5);
    assert_int_equal(p->features[1].kind, DW_VAL_STR);
    assert_mem_str(p->features[1].str, p->features[1].len, "DE");
    assert_int_equal(p->features[2].kind, DW_VAL_MISSING);
    assert_int_equal(p->features[3].kind, DW_VAL_NUM);
    assert_double_exact(p->features[3].num, 1.0);
    assert_int_equal(p->features[4].kind, DW_VAL_STR);
    assert_mem_str(p->features[4].str, p->features[4].len, "10115");
    assert_int_equal(p->features[5].kind, DW_VAL_MISSING);
    assert_int_equal(p->features[6].kind, DW_VAL_MISSING);
    assert_int_equal(dw_decoder_max_features(fx->dec), DW_ARRAY_SIZE(fraud_features));
}

static void test_optional_fields_absent(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(
        pred(fx, "{\"prediction_id\":\"x\",\"model\":\"animal\",\"prediction\":\"dog\"}"),
        DW_BAD_NONE);
    struct dw_prediction *p = fx->p;
    assert_ptr_equal(p->model, &fx->models[2]);
    assert_int_equal(p->model_idx, 2);
    assert_mem_str(p->version, p->version_len, "");
    assert_int_equal(p->ts_ms, KAFKA_TS);
    assert_string_equal(p->pred.text, "dog");
    assert_false(p->pred.is_num);
    assert_false(p->has_score);
    assert_false(p->has_latency);
    assert_int_equal(p->features[0].kind, DW_VAL_MISSING);

    /* null is the same as absent for optional fields */
    assert_int_equal(pred(fx,
                          "{\"prediction_id\":\"x\",\"model\":\"animal\",\"prediction\":\"dog\","
                          "\"model_version\":null,\"timestamp\":null,\"score\":null,"
                          "\"latency_ms\":null,\"features\":null}"),
                     DW_BAD_NONE);
    assert_mem_str(p->version, p->version_len, "");
    assert_int_equal(p->ts_ms, KAFKA_TS);
    assert_false(p->has_score);
    assert_false(p->has_latency);
    assert_int_equal(p->features[0].kind, DW_VAL_MISSING);
}

static void test_full_label(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(label(fx, "{\"prediction_id\": \"p-81723\", \"label\": 0, \"timestamp\": "
                               "\"2026-11-22T10:15:03Z\"}"),
                     DW_BAD_NONE);
    assert_mem_str(fx->l.id, fx->l.id_len, "p-81723");
    assert_int_equal(fx->l.ts_ms, 1795342503000LL);
    assert_string_equal(fx->l.label.text, "0");
    assert_int_equal(fx->l.label.len, 1);
    assert_true(fx->l.label.is_num);
    assert_double_exact(fx->l.label.num, 0.0);

    /* a regression target: number and text */
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\", \"label\": 250000.5}"), DW_BAD_NONE);
    assert_int_equal(fx->l.ts_ms, KAFKA_TS);
    assert_true(fx->l.label.is_num);
    assert_double_exact(fx->l.label.num, 250000.5);
    assert_string_equal(fx->l.label.text, "250000.5");

    /* string and boolean labels */
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\", \"label\": \"cat\"}"), DW_BAD_NONE);
    assert_string_equal(fx->l.label.text, "cat");
    assert_false(fx->l.label.is_num);
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\", \"label\": false}"), DW_BAD_NONE);
    assert_string_equal(fx->l.label.text, "false");

    /* required */
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\"}"), DW_BAD_MISSING_FIELD);
    assert_err_has(fx, "label");
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\", \"label\": null}"),
                     DW_BAD_MISSING_FIELD);
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\", \"label\": [0]}"), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "label: expected a string, number or boolean, got array");
    assert_int_equal(label(fx, "{\"label\": 1}"), DW_BAD_MISSING_ID);
    assert_int_equal(label(fx, "{\"prediction_id\": \"q\", \"label\": 1, \"timestamp\": \"x\"}"),
                     DW_BAD_TIMESTAMP);
}

static void test_id_integer(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred(fx, "{\"prediction_id\":81723,\"model\":\"fraud\",\"prediction\":0}"),
                     DW_BAD_NONE);
    assert_mem_str(fx->p->id, fx->p->id_len, "81723");
    assert_int_equal(
        pred(fx, "{\"prediction_id\":-9223372036854775807,\"model\":\"fraud\",\"prediction\":0}"),
        DW_BAD_NONE);
    assert_mem_str(fx->p->id, fx->p->id_len, "-9223372036854775807");
    assert_int_equal(label(fx, "{\"prediction_id\":42,\"label\":1}"), DW_BAD_NONE);
    assert_mem_str(fx->l.id, fx->l.id_len, "42");
}

static void test_missing_id(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred(fx, "{\"model\":\"fraud\",\"prediction\":0}"), DW_BAD_MISSING_ID);
    assert_err_has(fx, "prediction_id: missing");
    assert_int_equal(pred(fx, "{\"prediction_id\":null,\"model\":\"fraud\",\"prediction\":0}"),
                     DW_BAD_MISSING_ID);
    assert_err_has(fx, "prediction_id");
}

static void test_id_wrong_type(void **state)
{
    struct fixture *fx = *state;
    const char *bad_ids[] = {"1.5", "true", "{}", "[\"a\"]", "\"\""};
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad_ids); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"prediction_id\":%s,\"model\":\"fraud\",\"prediction\":0}",
                 bad_ids[i]);
        assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
        assert_err_has(fx, "prediction_id: ");
    }
}

static void test_id_too_long(void **state)
{
    struct fixture *fx = *state;
    char id[DW_ID_MAX + 2];
    char buf[DW_ID_MAX + 128];
    memset(id, 'a', DW_ID_MAX);
    id[DW_ID_MAX] = '\0';
    snprintf(buf, sizeof(buf), "{\"prediction_id\":\"%s\",\"model\":\"fraud\",\"prediction\":0}",
             id);
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_int_equal(fx->p->id_len, DW_ID_MAX);

    id[DW_ID_MAX] = 'a';
    id[DW_ID_MAX + 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"prediction_id\":\"%s\",\"model\":\"fraud\",\"prediction\":0}",
             id);
    assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "prediction_id: 257 bytes, longer than 256");
}

static void test_model(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"spam\",\"prediction\":0}"),
                     DW_BAD_UNKNOWN_MODEL);
    assert_err_has(fx, "model: \"spam\"");
    /* a prefix or an extension of a configured name is not that model */
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"frau\",\"prediction\":0}"),
                     DW_BAD_UNKNOWN_MODEL);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraudx\",\"prediction\":0}"),
                     DW_BAD_UNKNOWN_MODEL);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"prediction\":0}"), DW_BAD_MISSING_FIELD);
    assert_err_has(fx, "model: missing");
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":null,\"prediction\":0}"),
                     DW_BAD_MISSING_FIELD);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":7,\"prediction\":0}"),
                     DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "model: expected a string, got number");

    /* a long unknown name is truncated in errstr */
    char name[301];
    char buf[512];
    memset(name, 'm', 300);
    name[300] = '\0';
    snprintf(buf, sizeof(buf), "{\"prediction_id\":\"p\",\"model\":\"%s\",\"prediction\":0}", name);
    assert_int_equal(pred(fx, buf), DW_BAD_UNKNOWN_MODEL);
    assert_err_has(fx, "mmm...\"");
    assert_true(strlen(fx->err) < 150);
}

static void test_model_version(void **state)
{
    struct fixture *fx = *state;
    const char *base = "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":0,"
                       "\"model_version\":%s}";
    char buf[256];
    snprintf(buf, sizeof(buf), base, "2");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_mem_str(fx->p->version, fx->p->version_len, "2");
    snprintf(buf, sizeof(buf), base, "1.5");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_mem_str(fx->p->version, fx->p->version_len, "1.5");
    snprintf(buf, sizeof(buf), base, "3.0");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_mem_str(fx->p->version, fx->p->version_len, "3.0");
    snprintf(buf, sizeof(buf), base, "true");
    assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "model_version: expected a string or a number, got boolean");
    snprintf(buf, sizeof(buf), base, "[1]");
    assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
}

static void test_features_wrong_type(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(
        pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":0,\"features\":[1]}"),
        DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "features: expected an object, got array");
    assert_int_equal(
        pred(fx,
             "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":0,\"features\":\"x\"}"),
        DW_BAD_WRONG_TYPE);

    assert_int_equal(pred_feature(fx, "amount", "\"12.5\""), DW_BAD_WRONG_TYPE);
    assert_string_equal(fx->err, "features.amount: expected a number, got string");
    assert_int_equal(pred_feature(fx, "amount", "{\"v\":1}"), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "features.amount: expected a number, got object");
    assert_int_equal(pred_feature(fx, "country", "[\"DE\"]"), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "features.country: expected a string, number or boolean, got array");
    assert_int_equal(pred_feature(fx, "country", "{}"), DW_BAD_WRONG_TYPE);

    /* keys that are not configured are ignored whatever their type */
    assert_int_equal(pred_feature(fx, "other", "{\"deep\":[1,2,3]}"), DW_BAD_NONE);
}

static void test_bool_numeric_feature(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred_feature(fx, "is_new", "true"), DW_BAD_NONE);
    assert_int_equal(fx->p->features[3].kind, DW_VAL_NUM);
    assert_double_exact(fx->p->features[3].num, 1.0);
    assert_int_equal(pred_feature(fx, "is_new", "false"), DW_BAD_NONE);
    assert_int_equal(fx->p->features[3].kind, DW_VAL_NUM);
    assert_double_exact(fx->p->features[3].num, 0.0);
    assert_int_equal(pred_feature(fx, "is_new", "-7"), DW_BAD_NONE);
    assert_double_exact(fx->p->features[3].num, -7.0);
    assert_int_equal(pred_feature(fx, "is_new", "null"), DW_BAD_NONE);
    assert_int_equal(fx->p->features[3].kind, DW_VAL_MISSING);
}

/*
 * Reals of every shape around the fast conversion's edges (15 and 16 significant digits, powers
 * of ten to 10^+-22 and past them, leading and trailing zeros, signs, exponents written or not)
 * read as numeric features: each must be strtod's double, bit for bit (-0.0 included).
 */
static void test_reals_as_strtod(void **state)
{
    struct fixture *fx = *state;
    uint64_t rng = 20261206;
    size_t fast_sized = 0;
    for (int i = 0; i < 40000; i++) {
        char text[96];
        size_t n = 0;
        if (dw_splitmix64(&rng) % 4 == 0) {
            text[n++] = '-';
        }
        int int_digits = (int)(dw_splitmix64(&rng) % 9);   /* 0: "0." */
        int frac_digits = (int)(dw_splitmix64(&rng) % 18); /* 0: no fraction */
        int zeros = (int)(dw_splitmix64(&rng) % 8);        /* after "0.": leading zeros */
        if (int_digits == 0) {
            text[n++] = '0';
        }
        for (int k = 0; k < int_digits; k++) {
            text[n++] =
                (char)('0' + (k == 0 ? 1 + dw_splitmix64(&rng) % 9 : dw_splitmix64(&rng) % 10));
        }
        if (frac_digits > 0 || int_digits == 0) {
            text[n++] = '.';
            for (int k = 0; int_digits == 0 && k < zeros; k++) {
                text[n++] = '0';
            }
            for (int k = 0; k < DW_MAX(frac_digits, 1); k++) {
                text[n++] = (char)('0' + dw_splitmix64(&rng) % 10);
            }
        }
        if (dw_splitmix64(&rng) % 3 == 0) {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d",
                                  dw_splitmix64(&rng) % 2 ? "e" : "E-",
                                  (int)(dw_splitmix64(&rng) % 30));
        }
        text[n] = '\0';
        fast_sized += int_digits + frac_digits <= 16;
        assert_int_equal(pred_feature(fx, "amount", text), DW_BAD_NONE);
        assert_int_equal(fx->p->features[0].kind, DW_VAL_NUM);
        double want = strtod(text, NULL);
        if (memcmp(&want, &fx->p->features[0].num, sizeof(want)) != 0) {
            fail_msg("%s: decoded %.17g, strtod %.17g", text, fx->p->features[0].num, want);
        }
    }
    assert_true(fast_sized > 10000); /* the fast path's sizes are well covered */
    /* the powers of ten at the path's edge and past it (10^23 is the first inexact one) */
    const char *sig[] = {
        "1", "3", "7", "97", "4503599627370497", "123456789012345", "999999999999999"};
    for (size_t k = 0; k < DW_ARRAY_SIZE(sig); k++) {
        for (int e = -26; e <= 26; e++) {
            char text[64];
            snprintf(text, sizeof(text), "%se%d", sig[k], e);
            assert_int_equal(pred_feature(fx, "amount", text), DW_BAD_NONE);
            double want = strtod(text, NULL);
            if (memcmp(&want, &fx->p->features[0].num, sizeof(want)) != 0) {
                fail_msg("%s: decoded %.17g, strtod %.17g", text, fx->p->features[0].num, want);
            }
        }
    }
}

/*
 * Feature names that share their first and last 8 bytes and their length, and differ only in
 * the middle (or in one byte where head and tail overlap): each key reads its own feature, and
 * a key that matches none in the middle is not taken for one.
 */
static void test_long_feature_names(void **state)
{
    struct fixture *fx = *state;
    static struct dw_feature_cfg long_features[] = {
        {"abcdefgh_USD_ijklmnop", DW_FEATURE_NUMERIC},
        {"abcdefgh_EUR_ijklmnop", DW_FEATURE_NUMERIC},
        {"abcdefghijklmnop", DW_FEATURE_NUMERIC},
        {"abcdefghijklmnopq", DW_FEATURE_NUMERIC},
        {"amount_total", DW_FEATURE_NUMERIC},
        {"amount_tota1", DW_FEATURE_NUMERIC},
    };
    use_animal_features(fx, long_features, DW_ARRAY_SIZE(long_features));
    assert_int_equal(pred(fx,
                          "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":"
                          "\"cat\",\"features\":{\"abcdefgh_GBP_ijklmnop\":9,\"amount_tota1\":6,"
                          "\"abcdefghijklmnopq\":4,\"abcdefgh_EUR_ijklmnop\":2,\"amount_total\":5,"
                          "\"abcdefghijklmnop\":3,\"abcdefgh_USD_ijklmnop\":1}}"),
                     DW_BAD_NONE);
    for (size_t i = 0; i < DW_ARRAY_SIZE(long_features); i++) {
        assert_int_equal(fx->p->features[i].kind, DW_VAL_NUM);
        assert_double_exact(fx->p->features[i].num, (double)(i + 1));
    }
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":"
                              "\"cat\",\"features\":{\"abcdefgh_GBP_ijklmnop\":9}}"),
                     DW_BAD_NONE);
    for (size_t i = 0; i < DW_ARRAY_SIZE(long_features); i++) {
        assert_int_equal(fx->p->features[i].kind, DW_VAL_MISSING);
    }
}

/*
 * The decoder remembers which feature each place of the last features object held: keys in
 * another order, a lookalike at a remembered place (same length, first and last 8 bytes), an
 * unknown key there, and known keys past the 32 remembered places still read their own
 * features.
 */
static void test_key_order_changes(void **state)
{
    struct fixture *fx = *state;
    static struct dw_feature_cfg features[] = {
        {"abcdefgh_USD_ijklmnop", DW_FEATURE_NUMERIC},
        {"abcdefgh_EUR_ijklmnop", DW_FEATURE_NUMERIC},
        {"amount", DW_FEATURE_NUMERIC},
    };
    use_animal_features(fx, features, DW_ARRAY_SIZE(features));
    const char *orders[] = {
        "\"abcdefgh_USD_ijklmnop\":1,\"abcdefgh_EUR_ijklmnop\":2,\"amount\":3",
        "\"amount\":3,\"abcdefgh_EUR_ijklmnop\":2,\"abcdefgh_USD_ijklmnop\":1",
        "\"abcdefgh_EUR_ijklmnop\":2,\"abcdefgh_USD_ijklmnop\":1,\"amount\":3",
        "\"abcdefgh_GBP_ijklmnop\":9,\"abcdefgh_USD_ijklmnop\":1,\"amount\":3",
        "\"x\":9,\"amount\":3,\"abcdefgh_GBP_ijklmnop\":9",
        "\"abcdefgh_USD_ijklmnop\":1,\"abcdefgh_EUR_ijklmnop\":2,\"amount\":3",
    };
    const double want[][3] = {{1, 2, 3},   {1, 2, 3},     {1, 2, 3},
                              {1, NAN, 3}, {NAN, NAN, 3}, {1, 2, 3}};
    for (size_t i = 0; i < DW_ARRAY_SIZE(orders); i++) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":\"cat\","
                 "\"features\":{%s}}",
                 orders[i]);
        assert_int_equal(pred(fx, msg), DW_BAD_NONE);
        for (size_t f = 0; f < DW_ARRAY_SIZE(features); f++) {
            if (isnan(want[i][f])) {
                assert_int_equal(fx->p->features[f].kind, DW_VAL_MISSING);
            } else {
                assert_int_equal(fx->p->features[f].kind, DW_VAL_NUM);
                assert_double_exact(fx->p->features[f].num, want[i][f]);
            }
        }
    }
    /* 40 unknown keys first: the features sit past the remembered places, twice */
    char msg[2048];
    size_t n = (size_t)snprintf(msg, sizeof(msg),
                                "{\"prediction_id\":\"p\",\"model\":"
                                "\"animal\",\"prediction\":\"cat\",\"features\":{");
    for (int k = 0; k < 40; k++) {
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\"u%d\":0,", k);
    }
    snprintf(msg + n, sizeof(msg) - n, "%s}}", orders[1]);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(pred(fx, msg), DW_BAD_NONE);
        for (size_t f = 0; f < DW_ARRAY_SIZE(features); f++) {
            assert_double_exact(fx->p->features[f].num, want[1][f]);
        }
    }
}

static void test_categorical_number_text(void **state)
{
    struct fixture *fx = *state;
    const struct {
        const char *json;
        const char *text;
    } cases[] = {
        {"1", "1"},
        {"1.5", "1.5"},
        {"1.0", "1.0"},
        {"-0.0", "-0.0"},
        {"100.0", "100.0"},
        {"1e2", "100.0"},
        {"0.1", "0.1"},
        {"1e20", "1e+20"},
        {"1e-5", "1e-05"},
        {"1e15", "1000000000000000.0"},
        {"1e16", "1e+16"},
        {"123456789.125", "123456789.125"},
        {"2.5e-7", "2.5e-07"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"0.3333333333333333", "0.3333333333333333"},
        {"true", "true"},
        {"false", "false"},
        {"\"DE\"", "DE"},
        {"\"\"", ""},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        assert_int_equal(pred_feature(fx, "zip", cases[i].json), DW_BAD_NONE);
        assert_int_equal(fx->p->features[4].kind, DW_VAL_STR);
        assert_mem_str(fx->p->features[4].str, fx->p->features[4].len, cases[i].text);
    }

    /* each categorical feature has its own scratch buffer */
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
                              "\"features\":{\"country\":49,\"zip\":10115.0,\"tier\":2.5}}"),
                     DW_BAD_NONE);
    assert_mem_str(fx->p->features[1].str, fx->p->features[1].len, "49");
    assert_mem_str(fx->p->features[4].str, fx->p->features[4].len, "10115.0");
    assert_mem_str(fx->p->features[5].str, fx->p->features[5].len, "2.5");
}

static void test_class_text(void **state)
{
    struct fixture *fx = *state;
    const struct {
        const char *json;
        const char *text;
        int is_num;
        double num;
    } cases[] = {
        {"1", "1", 1, 1.0},       {"\"1\"", "1", 0, 0.0},        {"1.0", "1.0", 1, 1.0},
        {"true", "true", 0, 0.0}, {"false", "false", 0, 0.0},    {"0.1", "0.1", 1, 0.1},
        {"-3", "-3", 1, -3.0},    {"1e300", "1e+300", 1, 1e300}, {"\"fraud\"", "fraud", 0, 0.0},
        {"\"\"", "", 0, 0.0},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        assert_int_equal(pred_value(fx, "fraud", cases[i].json), DW_BAD_NONE);
        assert_string_equal(fx->p->pred.text, cases[i].text);
        assert_int_equal(fx->p->pred.len, strlen(cases[i].text));
        assert_int_equal(fx->p->pred.is_num, cases[i].is_num);
        assert_double_exact(fx->p->pred.num, cases[i].num);
    }
    /* the same class from a label */
    assert_int_equal(label(fx, "{\"prediction_id\":\"p\",\"label\":1.0}"), DW_BAD_NONE);
    assert_string_equal(fx->l.label.text, "1.0");
    assert_int_equal(label(fx, "{\"prediction_id\":\"p\",\"label\":\"1\"}"), DW_BAD_NONE);
    assert_string_equal(fx->l.label.text, "1");

    assert_int_equal(pred_value(fx, "fraud", "{\"a\":1}"), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "prediction: expected a string, number or boolean, got object");
    assert_int_equal(pred_value(fx, "fraud", "[1]"), DW_BAD_WRONG_TYPE);
    assert_int_equal(pred_value(fx, "fraud", "null"), DW_BAD_MISSING_FIELD);
    assert_err_has(fx, "prediction: missing");
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\"}"),
                     DW_BAD_MISSING_FIELD);

    char cls[DW_CLASS_MAX + 2];
    char buf[256];
    memset(cls, 'c', DW_CLASS_MAX);
    cls[DW_CLASS_MAX] = '\0';
    snprintf(buf, sizeof(buf), "\"%s\"", cls);
    assert_int_equal(pred_value(fx, "fraud", buf), DW_BAD_NONE);
    assert_int_equal(fx->p->pred.len, DW_CLASS_MAX);
    cls[DW_CLASS_MAX] = 'c';
    cls[DW_CLASS_MAX + 1] = '\0';
    snprintf(buf, sizeof(buf), "\"%s\"", cls);
    assert_int_equal(pred_value(fx, "fraud", buf), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "prediction: class label of 65 bytes");
}

static void test_regression(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred_value(fx, "price", "250000.5"), DW_BAD_NONE);
    assert_true(fx->p->pred.is_num);
    assert_double_exact(fx->p->pred.num, 250000.5);
    assert_int_equal(pred_value(fx, "price", "3"), DW_BAD_NONE);
    assert_double_exact(fx->p->pred.num, 3.0);
    assert_string_equal(fx->p->pred.text, "3");
    assert_int_equal(pred_value(fx, "price", "\"3.5\""), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "prediction: expected a number (regression model), got string");
    assert_int_equal(pred_value(fx, "price", "true"), DW_BAD_WRONG_TYPE);
    assert_int_equal(pred_value(fx, "price", "null"), DW_BAD_MISSING_FIELD);
}

static void test_score(void **state)
{
    struct fixture *fx = *state;
    const char *fraud = "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
                        "\"score\":%s}";
    const char *animal = "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":\"cat\","
                         "\"score\":%s}";
    char buf[256];

    snprintf(buf, sizeof(buf), animal, "{\"cat\":0.7,\"dog\":0.3}");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_true(fx->p->has_score);
    assert_double_exact(fx->p->score, 0.7);
    snprintf(buf, sizeof(buf), animal, "{\"dog\":0.3}");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_false(fx->p->has_score);
    snprintf(buf, sizeof(buf), animal, "{\"cat\":\"high\"}");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_false(fx->p->has_score);
    snprintf(buf, sizeof(buf), animal, "{\"cat\":1.5}");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_false(fx->p->has_score);
    snprintf(buf, sizeof(buf), fraud, "{\"0\":0.2,\"1\":0.8}");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_true(fx->p->has_score);
    assert_double_exact(fx->p->score, 0.8);

    snprintf(buf, sizeof(buf), fraud, "0");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_true(fx->p->has_score);
    assert_double_exact(fx->p->score, 0.0);
    snprintf(buf, sizeof(buf), fraud, "1");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_double_exact(fx->p->score, 1.0);

    const char *bad_scores[] = {"1.5", "-0.1", "2", "\"0.5\"", "true", "[0.5]"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad_scores); i++) {
        snprintf(buf, sizeof(buf), fraud, bad_scores[i]);
        assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
        assert_err_has(fx, "score: ");
    }
}

static void test_latency(void **state)
{
    struct fixture *fx = *state;
    const char *base = "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
                       "\"latency_ms\":%s}";
    char buf[256];
    snprintf(buf, sizeof(buf), base, "0");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_true(fx->p->has_latency);
    assert_double_exact(fx->p->latency_ms, 0.0);
    snprintf(buf, sizeof(buf), base, "-1");
    assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "latency_ms: -1 is negative");
    snprintf(buf, sizeof(buf), base, "\"12ms\"");
    assert_int_equal(pred(fx, buf), DW_BAD_WRONG_TYPE);
    assert_err_has(fx, "latency_ms: expected a number, got string");
}

/* Decodes a fraud prediction whose status member is the JSON text `status` (NULL: none). */
static enum dw_bad_reason pred_status(struct fixture *fx, const char *status)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1%s%s}",
             status ? ",\"status\":" : "", status ? status : "");
    return pred(fx, buf);
}

/* The serving status: read only when input.fields.status is configured; a string, number or
 * boolean is compared as its text with input.error_values (default: "error", "timeout" and
 * integers >= 500); absent or null is no status; an object, array or non-finite token is a bad
 * message (bad_status) naming the field. */
static void test_status(void **state)
{
    struct fixture *fx = *state;
    /* not configured: a status member is ignored, even an object */
    assert_int_equal(pred_status(fx, "{\"code\":500}"), DW_BAD_NONE);
    assert_false(fx->p->has_status);

    close_decoder(fx);
    fx->cfg.field_status = "/status";
    fx->cfg.non_finite = DW_NON_FINITE_COUNT;
    open_decoder(fx);
    const struct {
        const char *json;
        int error;
    } dflt[] = {
        {"\"ok\"", 0},
        {"\"error\"", 1},
        {"\"timeout\"", 1},
        {"\"Error\"", 0},
        {"200", 0},
        {"499", 0},
        {"500", 1},
        {"503", 1},
        {"\"503\"", 1},
        {"1000", 1},
        {"503.0", 0},
        {"\"0503\"", 0},
        {"-500", 0},
        {"true", 0},
        {"false", 0},
        {"\"\"", 0},
        {"99999999999999999", 1},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(dflt); i++) {
        if (pred_status(fx, dflt[i].json) != DW_BAD_NONE) {
            fail_msg("status %s: %s", dflt[i].json, fx->err);
        }
        assert_true(fx->p->has_status);
        if (fx->p->status_error != dflt[i].error) {
            fail_msg("status %s: error %d, want %d", dflt[i].json, fx->p->status_error,
                     dflt[i].error);
        }
    }
    /* absent and null: no status */
    assert_int_equal(pred_status(fx, NULL), DW_BAD_NONE);
    assert_false(fx->p->has_status);
    assert_int_equal(pred_status(fx, "null"), DW_BAD_NONE);
    assert_false(fx->p->has_status);
    assert_false(fx->p->status_error);
    /* wrong types: bad_status, the field and the type named */
    assert_int_equal(pred_status(fx, "{\"code\":500}"), DW_BAD_STATUS);
    assert_err_has(fx, "status: expected a string, number or boolean, got object");
    assert_int_equal(pred_status(fx, "[\"error\"]"), DW_BAD_STATUS);
    assert_err_has(fx, "status: expected a string, number or boolean, got array");
    assert_int_equal(pred_status(fx, "NaN"), DW_BAD_STATUS);
    assert_err_has(fx, "got NaN");

    /* a configured list replaces the default: texts, so 429 matches 429 and "429" */
    close_decoder(fx);
    char *values[] = {"failed", "429", "false"};
    fx->cfg.error_values = values;
    fx->cfg.n_error_values = DW_ARRAY_SIZE(values);
    fx->cfg.error_values_set = 1;
    open_decoder(fx);
    const struct {
        const char *json;
        int error;
    } listed[] = {
        {"\"failed\"", 1}, {"429", 1}, {"\"429\"", 1},  {"false", 1},
        {"\"error\"", 0},  {"500", 0}, {"\"fail\"", 0}, {"true", 0},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(listed); i++) {
        assert_int_equal(pred_status(fx, listed[i].json), DW_BAD_NONE);
        if (fx->p->status_error != listed[i].error) {
            fail_msg("status %s: error %d, want %d", listed[i].json, fx->p->status_error,
                     listed[i].error);
        }
    }
    /* [] given: no status is an error */
    fx->cfg.n_error_values = 0;
    assert_int_equal(dw_decode_status_error(&fx->cfg, "error", 5), 0);
    assert_int_equal(dw_decode_status_error(&fx->cfg, "503", 3), 0);
    fx->cfg.error_values = NULL;
    fx->cfg.error_values_set = 0;
    fx->cfg.field_status = NULL;
    fx->cfg.non_finite = DW_NON_FINITE_REJECT;
}

static enum dw_bad_reason pred_ts(struct fixture *fx, const char *ts)
{
    char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"timestamp\":%s}", ts);
    return pred(fx, buf);
}

static void test_timestamps(void **state)
{
    struct fixture *fx = *state;
    const struct {
        const char *json;
        int64_t ms;
    } good[] = {
        {"\"2026-11-22T10:15:03Z\"", 1795342503000LL},
        {"\"2026-11-22T10:15:03.120Z\"", 1795342503120LL},
        {"\"2026-11-22T10:15:03.123456789Z\"", 1795342503123LL},
        {"\"2026-11-22T12:15:03.5+02:00\"", 1795342503500LL},
        {"\"2026-11-22T05:15:03-05:00\"", 1795342503000LL},
        {"1795342503", 1795342503000LL},    /* epoch seconds */
        {"1795342503.12", 1795342503120LL}, /* fraction -> milliseconds */
        {"1795342503.123", 1795342503123LL},
        {"1795342503.9999", 1795342503999LL}, /* rounded down */
        {"1795342503120", 1795342503120LL},   /* epoch milliseconds */
        {"1795342503120.7", 1795342503120LL},
        {"1.79534250312e12", 1795342503120LL},
        {"0", 0},
        {"-1.5", -1500},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(good); i++) {
        assert_int_equal(pred_ts(fx, good[i].json), DW_BAD_NONE);
        if (fx->p->ts_ms != good[i].ms) {
            fail_msg("timestamp %s: got %lld, expected %lld", good[i].json, (long long)fx->p->ts_ms,
                     (long long)good[i].ms);
        }
    }
    assert_int_equal(pred_ts(fx, "null"), DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, KAFKA_TS);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1}"),
                     DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, KAFKA_TS);

    const char *bad_ts[] = {"\"yesterday\"",
                            "\"2026-11-22\"",
                            "\"2026-13-01T00:00:00Z\"",
                            "\"2026-11-22T10:15:03\"",
                            "\"\"",
                            "true",
                            "{}",
                            "[1]",
                            "1e300"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad_ts); i++) {
        assert_int_equal(pred_ts(fx, bad_ts[i]), DW_BAD_TIMESTAMP);
        assert_err_has(fx, "timestamp: ");
    }
    assert_int_equal(pred_ts(fx, "\"yesterday\""), DW_BAD_TIMESTAMP);
    assert_err_has(fx, "\"yesterday\" is not RFC 3339");
}

#define HOUR_MS 3600000LL /* milliseconds */
#define DAY_MS 86400000LL /* milliseconds */

/* The bounds of the defaults: input.max_future_skew 1h, input.max_past_skew 30d. */
static int setup_bounds(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    default_config(fx);
    fx->cfg.max_future_skew_ms = HOUR_MS;
    fx->cfg.max_past_skew_ms = 30 * DAY_MS;
    open_decoder(fx);
    *state = fx;
    return 0;
}

static enum dw_bad_reason label_ts(struct fixture *fx, const char *ts)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"prediction_id\":\"p\",\"label\":1,\"timestamp\":%s}", ts);
    return label(fx, buf);
}

/* Epoch milliseconds as the JSON number text of a timestamp. */
static const char *ms_text(int64_t ms)
{
    static char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)ms);
    return buf;
}

/* A prediction stamped further than max_future_skew after its Kafka timestamp is rejected;
 * exactly at the bound it is accepted. */
static void test_bounds_future(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred_ts(fx, ms_text(KAFKA_TS + HOUR_MS)), DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, KAFKA_TS + HOUR_MS);
    assert_int_equal(pred_ts(fx, ms_text(KAFKA_TS + HOUR_MS + 1)), DW_BAD_TIME_RANGE);
    assert_err_has(fx, "timestamp: ");
    assert_err_has(fx, "input.max_future_skew");
    /* the clock that ruined a partition: ten years ahead */
    assert_int_equal(pred_ts(fx, "\"2036-01-01T00:00:00Z\""), DW_BAD_TIME_RANGE);
    assert_err_has(fx, "timestamp: 2036-01-01T00:00:00Z is more than input.max_future_skew");
    assert_err_has(fx, "2023-11-14T22:13:20.555Z"); /* the Kafka timestamp it was held against */
    assert_string_equal(dw_bad_reason_name(DW_BAD_TIME_RANGE), "timestamp_out_of_range");
}

/* ... and further than max_past_skew before it. */
static void test_bounds_past(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred_ts(fx, ms_text(KAFKA_TS - 30 * DAY_MS)), DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, KAFKA_TS - 30 * DAY_MS);
    assert_int_equal(pred_ts(fx, ms_text(KAFKA_TS - 30 * DAY_MS - 1)), DW_BAD_TIME_RANGE);
    assert_err_has(fx, "input.max_past_skew");
    /* the clock that started the evaluation cursor in 1971 */
    assert_int_equal(pred_ts(fx, "\"1971-01-01T00:00:00Z\""), DW_BAD_TIME_RANGE);
    assert_err_has(fx, "timestamp: 1971-01-01T00:00:00Z is more than input.max_past_skew");
    assert_int_equal(pred_ts(fx, "0"), DW_BAD_TIME_RANGE);
    /* a malformed timestamp stays bad_timestamp */
    assert_int_equal(pred_ts(fx, "\"yesterday\""), DW_BAD_TIMESTAMP);
}

/* Labels are bounded the same way (a label stamped 2036 expired a partition's predictions). */
static void test_bounds_labels(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(label_ts(fx, ms_text(KAFKA_TS + HOUR_MS)), DW_BAD_NONE);
    assert_int_equal(fx->l.ts_ms, KAFKA_TS + HOUR_MS);
    assert_int_equal(label_ts(fx, ms_text(KAFKA_TS - 30 * DAY_MS)), DW_BAD_NONE);
    assert_int_equal(label_ts(fx, "\"2036-01-01T00:00:00Z\""), DW_BAD_TIME_RANGE);
    assert_err_has(fx, "timestamp: 2036-01-01T00:00:00Z is more than input.max_future_skew");
    assert_int_equal(label_ts(fx, ms_text(KAFKA_TS + HOUR_MS + 1)), DW_BAD_TIME_RANGE);
    assert_int_equal(label_ts(fx, ms_text(KAFKA_TS - 30 * DAY_MS - 1)), DW_BAD_TIME_RANGE);
    assert_err_has(fx, "input.max_past_skew");
}

/* Without a timestamp in the event its Kafka timestamp is its time: always within bounds. */
static void test_bounds_missing_timestamp(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1}"),
                     DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, KAFKA_TS);
    assert_int_equal(pred_ts(fx, "null"), DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, KAFKA_TS);
    assert_int_equal(label(fx, "{\"prediction_id\":\"p\",\"label\":1}"), DW_BAD_NONE);
    assert_int_equal(fx->l.ts_ms, KAFKA_TS);
}

/* 0 switches a bound off, each side on its own. */
static void test_bounds_zero_disables(void **state)
{
    struct fixture *fx = *state;
    close_decoder(fx);
    fx->cfg.max_future_skew_ms = 0;
    open_decoder(fx);
    assert_int_equal(pred_ts(fx, "\"2036-01-01T00:00:00Z\""), DW_BAD_NONE);
    assert_int_equal(label_ts(fx, "\"2036-01-01T00:00:00Z\""), DW_BAD_NONE);
    assert_int_equal(pred_ts(fx, "\"1971-01-01T00:00:00Z\""), DW_BAD_TIME_RANGE);
    close_decoder(fx);
    fx->cfg.max_future_skew_ms = HOUR_MS;
    fx->cfg.max_past_skew_ms = 0;
    open_decoder(fx);
    assert_int_equal(pred_ts(fx, "\"1971-01-01T00:00:00Z\""), DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, 31536000000LL);
    assert_int_equal(label_ts(fx, "0"), DW_BAD_NONE);
    assert_int_equal(pred_ts(fx, "\"2036-01-01T00:00:00Z\""), DW_BAD_TIME_RANGE);
}

/* No reference clock (replay: INT64_MIN, no Kafka timestamp) checks nothing; a reference at
 * the ends of int64 does not overflow (UBSan build). */
static void test_bounds_reference_edges(void **state)
{
    struct fixture *fx = *state;
    const char *json = "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
                       "\"timestamp\":\"2036-01-01T00:00:00Z\"}";
    assert_int_equal(dw_decode_prediction(fx->dec, json, strlen(json), INT64_MIN, fx->p, fx->err,
                                          sizeof(fx->err)),
                     DW_BAD_NONE);
    assert_int_equal(fx->p->ts_ms, 2082758400000LL);
    const char *lab = "{\"prediction_id\":\"p\",\"label\":1,\"timestamp\":0}";
    assert_int_equal(
        dw_decode_label(fx->dec, lab, strlen(lab), INT64_MIN, &fx->l, fx->err, sizeof(fx->err)),
        DW_BAD_NONE);
    assert_int_equal(
        dw_decode_label(fx->dec, lab, strlen(lab), INT64_MAX, &fx->l, fx->err, sizeof(fx->err)),
        DW_BAD_TIME_RANGE);
    assert_int_equal(
        dw_decode_label(fx->dec, lab, strlen(lab), INT64_MIN + 1, &fx->l, fx->err, sizeof(fx->err)),
        DW_BAD_TIME_RANGE);
}

static void test_custom_paths(void **state)
{
    struct fixture *fx = *state;
    close_decoder(fx);
    fx->cfg.field_prediction_id = "/meta/id";
    fx->cfg.field_model = "/meta/m~0odel";
    fx->cfg.field_model_version = ""; /* not used */
    fx->cfg.field_timestamp = "/meta/times/1";
    fx->cfg.field_features = "/payload/x~1y";
    fx->cfg.field_prediction = "/out/0";
    fx->cfg.field_score = "/out/1/"; /* key "" inside out[1] */
    fx->cfg.field_latency_ms = "";
    fx->cfg.field_label_id = "/ids/0/pid";
    fx->cfg.field_label = "/truth";
    fx->cfg.field_label_timestamp = "";
    open_decoder(fx);

    const char *msg = "{\"meta\":{\"id\":\"n-1\",\"m~odel\":\"fraud\",\"times\":[0,1795342503]},"
                      "\"model_version\":\"ignored\",\"latency_ms\":-5,"
                      "\"payload\":{\"x/y\":{\"amount\":3,\"a/b~c\":\"k\"},\"x\":{\"y\":1}},"
                      "\"out\":[1,{\"\":0.25}]}";
    assert_int_equal(pred(fx, msg), DW_BAD_NONE);
    assert_mem_str(fx->p->id, fx->p->id_len, "n-1");
    assert_ptr_equal(fx->p->model, &fx->models[0]);
    assert_mem_str(fx->p->version, fx->p->version_len, "");
    assert_int_equal(fx->p->ts_ms, 1795342503000LL);
    assert_string_equal(fx->p->pred.text, "1");
    assert_true(fx->p->has_score);
    assert_double_exact(fx->p->score, 0.25);
    assert_false(fx->p->has_latency);
    assert_int_equal(fx->p->features[0].kind, DW_VAL_NUM);
    assert_double_exact(fx->p->features[0].num, 3.0);
    assert_int_equal(fx->p->features[6].kind, DW_VAL_STR);
    assert_mem_str(fx->p->features[6].str, fx->p->features[6].len, "k");

    /* the old flat paths are not read any more */
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1}"),
                     DW_BAD_MISSING_ID);
    /* an index past the end, or into a non-array, is absent */
    assert_int_equal(pred(fx, "{\"meta\":{\"id\":\"n\",\"m~odel\":\"fraud\"},\"out\":[]}"),
                     DW_BAD_MISSING_FIELD);
    assert_int_equal(pred(fx, "{\"meta\":{\"id\":\"n\",\"m~odel\":\"fraud\"},\"out\":\"s\"}"),
                     DW_BAD_MISSING_FIELD);
    /* index "0" into an object is the key "0" */
    assert_int_equal(pred(fx, "{\"meta\":{\"id\":\"n\",\"m~odel\":\"fraud\"},\"out\":{\"0\":7}}"),
                     DW_BAD_NONE);
    assert_string_equal(fx->p->pred.text, "7");

    assert_int_equal(label(fx, "{\"ids\":[{\"pid\":9}],\"truth\":\"yes\",\"timestamp\":5}"),
                     DW_BAD_NONE);
    assert_mem_str(fx->l.id, fx->l.id_len, "9");
    assert_string_equal(fx->l.label.text, "yes");
    assert_int_equal(fx->l.ts_ms, KAFKA_TS); /* label timestamp not used */

    /* features "" is the whole document: flat events */
    close_decoder(fx);
    default_config(fx);
    fx->cfg.field_features = "";
    open_decoder(fx);
    assert_int_equal(
        pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"amount\":9.5}"),
        DW_BAD_NONE);
    assert_int_equal(fx->p->features[0].kind, DW_VAL_NUM);
    assert_double_exact(fx->p->features[0].num, 9.5);
}

static void test_bad_pointers(void **state)
{
    struct fixture *fx = *state;
    close_decoder(fx);
    char err[256];

    fx->cfg.field_model = "model";
    assert_null(dw_decoder_new(&fx->cfg, err, sizeof(err)));
    assert_contains(err, "input.fields.model");

    default_config(fx);
    fx->cfg.field_features = "/a~2b";
    assert_null(dw_decoder_new(&fx->cfg, err, sizeof(err)));
    assert_contains(err, "input.fields.features");
    fx->cfg.field_features = "/a/b~";
    assert_null(dw_decoder_new(&fx->cfg, err, sizeof(err)));

    default_config(fx);
    fx->cfg.field_prediction_id = "";
    assert_null(dw_decoder_new(&fx->cfg, err, sizeof(err)));
    assert_contains(err, "input.fields.prediction_id");
    fx->cfg.field_prediction_id = NULL;
    assert_null(dw_decoder_new(&fx->cfg, err, sizeof(err)));

    default_config(fx);
    fx->cfg.field_score = NULL; /* optional: not used */
    open_decoder(fx);
}

static void test_too_large(void **state)
{
    struct fixture *fx = *state;
    close_decoder(fx);
    fx->cfg.max_message_bytes = 64;
    open_decoder(fx);
    const char *ok =
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"x\":\"abcde\"}";
    assert_int_equal(strlen(ok), 64);
    assert_int_equal(pred(fx, ok), DW_BAD_NONE);
    const char *big =
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"x\":\"abcdef\"}";
    assert_int_equal(pred(fx, big), DW_BAD_TOO_LARGE);
    assert_err_has(fx, "65 bytes");
    /* size is checked before anything else */
    char junk[100];
    memset(junk, 0xff, sizeof(junk));
    assert_int_equal(
        dw_decode_label(fx->dec, junk, sizeof(junk), 0, &fx->l, fx->err, sizeof(fx->err)),
        DW_BAD_TOO_LARGE);
    assert_int_equal(dw_decode_label(fx->dec, junk, 64, 0, &fx->l, fx->err, sizeof(fx->err)),
                     DW_BAD_UTF8);
}

static void test_utf8(void **state)
{
    struct fixture *fx = *state;
    const struct {
        const char *bytes;
        int valid;
    } cases[] = {
        {"plain ascii, long enough for the 8-byte path", 1},
        {"\xc3\xa9", 1},         /* U+00E9 */
        {"\xe2\x82\xac", 1},     /* U+20AC */
        {"\xf0\x9f\x98\x80", 1}, /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
        {"\xed\x9f\xbf", 1},     /* U+D7FF */
        {"\xee\x80\x80", 1},     /* U+E000 */
        {"abcdefgh\xc3\xa9xyz", 1},
        {"\xc0\xaf", 0},         /* overlong '/' */
        {"\xc1\xbf", 0},         /* overlong */
        {"\xe0\x80\xaf", 0},     /* overlong 3-byte */
        {"\xe0\x9f\xbf", 0},     /* overlong 3-byte */
        {"\xf0\x80\x80\xaf", 0}, /* overlong 4-byte */
        {"\xf0\x8f\xbf\xbf", 0}, /* overlong 4-byte */
        {"\xed\xa0\x80", 0},     /* U+D800 */
        {"\xed\xbf\xbf", 0},     /* U+DFFF */
        {"\xf4\x90\x80\x80", 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"\xff", 0},
        {"\xc3", 0},           /* truncated */
        {"\xe2\x82", 0},       /* truncated */
        {"\xf0\x9f\x98", 0},   /* truncated */
        {"abc\xe2\x82", 0},    /* truncated at the end */
        {"\xe2\x82x", 0},      /* bad continuation */
        {"\x80", 0},           /* stray continuation */
        {"abcdefghij\xbf", 0}, /* stray continuation after the fast path */
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        if (dw_utf8_valid(cases[i].bytes, strlen(cases[i].bytes)) != cases[i].valid) {
            fail_msg("case %zu: expected %s", i, cases[i].valid ? "valid" : "invalid");
        }
    }
    assert_true(dw_utf8_valid("", 0));
    assert_true(dw_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8 (JSON rejects it later) */

    /* in a message */
    assert_int_equal(
        pred(fx, "{\"prediction_id\":\"p\xc0\xaf\",\"model\":\"fraud\",\"prediction\":1}"),
        DW_BAD_UTF8);
    assert_err_has(fx, "invalid UTF-8 at byte 19");
    assert_int_equal(
        pred(fx, "{\"prediction_id\":\"\xed\xa0\x80\",\"model\":\"fraud\",\"prediction\":1}"),
        DW_BAD_UTF8);
    assert_int_equal(
        pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1}\xe2\x82"),
        DW_BAD_UTF8);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\x80\",\"model\":\"fraud\",\"prediction\":1}"),
                     DW_BAD_UTF8);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"\xf0\x9f\x98\x80-\xc3\xa9\",\"model\":"
                              "\"fraud\",\"prediction\":\"\xe2\x82\xac\",\"features\":"
                              "{\"country\":\"Z\xc3\xbcrich\"}}"),
                     DW_BAD_NONE);
    assert_mem_str(fx->p->id, fx->p->id_len, "\xf0\x9f\x98\x80-\xc3\xa9");
    assert_string_equal(fx->p->pred.text, "\xe2\x82\xac");
    assert_mem_str(fx->p->features[1].str, fx->p->features[1].len, "Z\xc3\xbcrich");

    /* wherever the bad byte is: a key, a string with escapes, across a word of the scan */
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"\xff\":1,\"model\":\"fraud\"}"),
                     DW_BAD_UTF8);
    assert_err_has(fx, "invalid UTF-8 at byte 22 (0xff)");
    assert_int_equal(pred(fx, "{\"prediction_id\":\"a\\n\xc3\xa9\\u00e9\xc0\xaf\",\"model\":"
                              "\"fraud\",\"prediction\":1}"),
                     DW_BAD_UTF8);
    assert_err_has(fx, "invalid UTF-8 at byte 29 (0xc0)");
    assert_int_equal(pred(fx, "{\"prediction_id\":\"abcdefg\xe2\x82\",\"model\":\"fraud\","
                              "\"prediction\":1}"),
                     DW_BAD_UTF8);
    /* invalid UTF-8 is the reason whatever else is wrong, before or after it */
    assert_int_equal(pred(fx, "{\"prediction_id\": }\xff"), DW_BAD_UTF8);
    assert_int_equal(pred(fx, "{\"a\":1,,\"b\":\"\xe2\x82\"}"), DW_BAD_UTF8);
    assert_int_equal(pred(fx, "{\"a\":\"x\xc3\xa9\"}\x80"), DW_BAD_UTF8);
    assert_int_equal(
        pred(fx, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                 "\"\xff\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
        DW_BAD_UTF8);
    static const char nul_then_bad[] = "{\"prediction_id\":\"a\0b\",\"x\":\"\xff\"}";
    assert_int_equal(pred_n(fx, nul_then_bad, sizeof(nul_then_bad) - 1), DW_BAD_UTF8);
    static const char nul[] = "{\"prediction_id\":\"a\0b\",\"x\":\"\xc3\xa9\"}";
    assert_int_equal(pred_n(fx, nul, sizeof(nul) - 1), DW_BAD_JSON);
    assert_err_has(fx, "NUL byte");
    /* valid sequences next to escapes, at every offset of the scan's words */
    for (size_t pad = 0; pad < 9; pad++) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "{\"prediction_id\":\"%.*s\xf0\x9f\x98\x80\\t\xc3\xa9\",\"model\":\"fraud\","
                 "\"prediction\":\"%.*s\xe2\x82\xac\"}",
                 (int)pad, "abcdefghi", (int)pad, "abcdefghi");
        assert_int_equal(pred(fx, msg), DW_BAD_NONE);
        char want[64];
        snprintf(want, sizeof(want), "%.*s\xf0\x9f\x98\x80\t\xc3\xa9", (int)pad, "abcdefghi");
        assert_mem_str(fx->p->id, fx->p->id_len, want);
        snprintf(want, sizeof(want), "%.*s\xe2\x82\xac", (int)pad, "abcdefghi");
        assert_string_equal(fx->p->pred.text, want);
    }
}

static void test_invalid_json(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred(fx, "{\"prediction_id\": \"p\",\n \"model\": }"), DW_BAD_JSON);
    assert_err_has(fx, "invalid JSON at line 2, column");
    assert_int_equal(pred(fx, ""), DW_BAD_JSON);
    assert_int_equal(pred(fx, "{\"a\":1} trailing"), DW_BAD_JSON);
    assert_int_equal(pred(fx, "{\"a\":NaN}"), DW_BAD_JSON);
    assert_int_equal(pred(fx, "{\"a\":\"\\u0000\"}"), DW_BAD_JSON);
    assert_int_equal(dw_decode_prediction(fx->dec, NULL, 0, 0, fx->p, fx->err, sizeof(fx->err)),
                     DW_BAD_JSON);
}

static void test_not_object(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred(fx, "[{\"prediction_id\":\"p\"}]"), DW_BAD_NOT_OBJECT);
    assert_err_has(fx, "top level is array");
    assert_int_equal(pred(fx, "42"), DW_BAD_NOT_OBJECT);
    assert_int_equal(pred(fx, "\"str\""), DW_BAD_NOT_OBJECT);
    assert_int_equal(label(fx, "null"), DW_BAD_NOT_OBJECT);
    assert_err_has(fx, "top level is null");
}

static void test_strings_valid_until_next_decode(void **state)
{
    struct fixture *fx = *state;
    /* a second decoder to make allocations between the decode and the reads */
    struct dw_decoder *other = dw_decoder_new(&fx->cfg, fx->err, sizeof(fx->err));
    assert_non_null(other);
    struct dw_prediction *op = dw_prediction_new(other);

    assert_int_equal(pred(fx, "{\"prediction_id\":\"first\",\"model\":\"fraud\",\"prediction\":"
                              "\"yes\",\"model_version\":\"v1\",\"features\":{\"country\":\"FR\","
                              "\"zip\":75001}}"),
                     DW_BAD_NONE);
    const char *id = fx->p->id;
    const char *ver = fx->p->version;
    const char *country = fx->p->features[1].str;
    const char *zip = fx->p->features[4].str;
    for (int i = 0; i < 100; i++) {
        const char *m = "{\"prediction_id\":\"second\",\"model\":\"fraud\",\"prediction\":0,"
                        "\"model_version\":\"v2\",\"features\":{\"country\":\"IT\",\"zip\":1}}";
        assert_int_equal(dw_decode_prediction(other, m, strlen(m), 0, op, NULL, 0), DW_BAD_NONE);
        char *noise = malloc(64);
        memset(noise, 'x', 64);
        free(noise);
    }
    assert_mem_str(id, fx->p->id_len, "first");
    assert_mem_str(ver, fx->p->version_len, "v1");
    assert_mem_str(country, fx->p->features[1].len, "FR");
    assert_mem_str(zip, fx->p->features[4].len, "75001");
    assert_mem_str(op->id, op->id_len, "second");
    assert_mem_str(op->features[4].str, op->features[4].len, "1");

    /* the class is a copy: it outlives the document */
    struct dw_class c = fx->p->pred;
    dw_decoder_reset(fx->dec);
    dw_decoder_reset(fx->dec); /* idempotent */
    assert_string_equal(c.text, "yes");
    assert_string_equal(fx->p->pred.text, "yes");

    free(op);
    dw_decoder_destroy(other);
    dw_decoder_destroy(NULL);
}

static void test_reason_names(void **state)
{
    (void)state;
    const char *names[DW_BAD__COUNT] = {"none",
                                        "too_large",
                                        "invalid_utf8",
                                        "too_deep",
                                        "invalid_json",
                                        "not_object",
                                        "missing_id",
                                        "missing_field",
                                        "wrong_type",
                                        "unknown_model",
                                        "bad_timestamp",
                                        "timestamp_out_of_range",
                                        "too_many_classes",
                                        "too_many_versions",
                                        "bad_status"};
    for (int r = 0; r < DW_BAD__COUNT; r++) {
        assert_string_equal(dw_bad_reason_name((enum dw_bad_reason)r), names[r]);
    }
    assert_string_equal(dw_bad_reason_name(DW_BAD__COUNT), "unknown");
}

static void test_check_order(void **state)
{
    struct fixture *fx = *state;
    /* the first failing field wins, in the documented order */
    assert_int_equal(pred(fx, "{\"model\":\"nope\",\"prediction\":{}}"), DW_BAD_MISSING_ID);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"nope\",\"timestamp\":\"x\"}"),
                     DW_BAD_UNKNOWN_MODEL);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"timestamp\":\"x\"}"),
                     DW_BAD_TIMESTAMP);
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"score\":9}"),
                     DW_BAD_MISSING_FIELD);
}

static void test_throughput(void **state)
{
    struct fixture *fx = *state;
    /* a realistic ~400-byte, 15-feature event */
    static struct dw_feature_cfg feats[15] = {
        {"f00", DW_FEATURE_NUMERIC},     {"f01", DW_FEATURE_NUMERIC},
        {"f02", DW_FEATURE_NUMERIC},     {"f03", DW_FEATURE_NUMERIC},
        {"f04", DW_FEATURE_NUMERIC},     {"f05", DW_FEATURE_NUMERIC},
        {"f06", DW_FEATURE_NUMERIC},     {"f07", DW_FEATURE_NUMERIC},
        {"f08", DW_FEATURE_NUMERIC},     {"f09", DW_FEATURE_NUMERIC},
        {"c10", DW_FEATURE_CATEGORICAL}, {"c11", DW_FEATURE_CATEGORICAL},
        {"c12", DW_FEATURE_CATEGORICAL}, {"c13", DW_FEATURE_CATEGORICAL},
        {"b14", DW_FEATURE_NUMERIC},
    };
    close_decoder(fx);
    fx->models[1].features = feats;
    fx->models[1].n_features = 15;
    fx->models[1].task = DW_TASK_CLASSIFICATION;
    open_decoder(fx);
    const char *msg =
        "{\"prediction_id\":\"7f9c2a4e-5b1d-4c3e-9a8f-0123456789ab\",\"model\":\"price\","
        "\"model_version\":\"2.3.1\",\"timestamp\":\"2026-11-22T10:15:03.120Z\","
        "\"features\":{\"f00\":132.5,\"f01\":0.0042,\"f02\":-17.25,\"f03\":1024,"
        "\"f04\":3.14159,\"f05\":null,\"f06\":88,\"f07\":0.5,\"f08\":12345.678,\"f09\":7,"
        "\"c10\":\"DE\",\"c11\":\"android\",\"c12\":3,\"c13\":\"gold\",\"b14\":true,\"extra\":"
        "\"ignored\"},"
        "\"prediction\":1,\"score\":0.91,\"latency_ms\":12.4,\"host\":\"scorer-7\"}";
    size_t len = strlen(msg);
    const int n = 200000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        if (dw_decode_prediction(fx->dec, msg, len, 0, fx->p, NULL, 0) != DW_BAD_NONE) {
            fail_msg("decode %d failed", i);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("[ INFO     ] decode: %d msgs of %zu bytes, 15 features in %.3f s: %.0f msgs/s "
           "(%.1f MB/s)\n",
           n, len, secs, n / secs, (double)n * (double)len / secs / 1e6);
    assert_int_equal(fx->p->features[5].kind, DW_VAL_MISSING);
    assert_mem_str(fx->p->features[12].str, fx->p->features[12].len, "3");
    assert_double_exact(fx->p->features[14].num, 1.0);
}

/* ---------------------------------------------------------- input.max_depth */

#define MSG_256K 262144 /* bytes; the default input.max_message_bytes */

static const char *const DEEP_HEAD =
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"x\":";

/* dw_test_nested() after DEEP_HEAD */
static char *nested_msg(const char *open, const char *mid, char close, size_t levels, size_t len)
{
    char *buf = dw_test_nested(DEEP_HEAD, open, mid, close, levels, len);
    assert_non_null(buf);
    return buf;
}

static enum dw_bad_reason label_n(struct fixture *fx, const char *buf, size_t len)
{
    fx->err[0] = '\0';
    return dw_decode_label(fx->dec, buf, len, KAFKA_TS, &fx->l, fx->err, sizeof(fx->err));
}

/* a 256 KiB message nested as deep as it fits: too_deep, naming the depth and the limit, for
 * predictions and labels (jsmn, used until 2026-12-04, spent ~30 s on it; bench_nesting times it)
 */
static void assert_too_deep_256k(struct fixture *fx, const char *open, const char *mid, char close)
{
    size_t levels = (MSG_256K - strlen(DEEP_HEAD) - strlen(mid) - 1) / (strlen(open) + 1);
    char *buf = nested_msg(open, mid, close, levels, MSG_256K);
    char want[64];
    snprintf(want, sizeof(want), "nested %zu levels deep", levels + 1);
    assert_int_equal(pred_n(fx, buf, MSG_256K), DW_BAD_TOO_DEEP);
    assert_err_has(fx, want);
    assert_err_has(fx, "input.max_depth (64)");
    assert_int_equal(label_n(fx, buf, MSG_256K), DW_BAD_TOO_DEEP);
    assert_err_has(fx, want);
    free(buf);
}

static void test_too_deep_arrays(void **state)
{
    assert_too_deep_256k(*state, "[", "", ']');
}

static void test_too_deep_objects(void **state)
{
    assert_too_deep_256k(*state, "{\"k\":", "1", '}');
}

/* brackets inside a string are text: a 256 KiB string of [ { \" \\ decodes */
static void test_depth_inside_string(void **state)
{
    struct fixture *fx = *state;
    const char *unit = "[{\\\"\\\\"; /* [ { \" \\ : an escaped quote and an escaped backslash */
    size_t ul = strlen(unit);
    size_t head = strlen(DEEP_HEAD);
    char *buf = malloc(MSG_256K + 1);
    memcpy(buf, DEEP_HEAD, head);
    size_t n = head;
    buf[n++] = '"';
    while (n + ul + 2 <= MSG_256K) {
        memcpy(buf + n, unit, ul);
        n += ul;
    }
    buf[n++] = '"';
    memset(buf + n, ' ', MSG_256K - 1 - n);
    buf[MSG_256K - 1] = '}';
    assert_int_equal(pred_n(fx, buf, MSG_256K), DW_BAD_NONE);
    assert_string_equal(fx->p->pred.text, "1");
    /* and the same brackets outside the string are too deep */
    buf[head] = '[';
    memset(buf + head + 1, '[', MSG_256K - head - 1);
    assert_int_equal(pred_n(fx, buf, MSG_256K), DW_BAD_TOO_DEEP);
    free(buf);
}

/* exactly input.max_depth levels pass, one more is too_deep; the top-level object is 1 */
static void test_depth_limit(void **state)
{
    struct fixture *fx = *state;
    char *ok = nested_msg("[", "", ']', 63, 400);
    assert_int_equal(pred_n(fx, ok, 400), DW_BAD_NONE);
    char *deep = nested_msg("[", "", ']', 64, 400);
    assert_int_equal(pred_n(fx, deep, 400), DW_BAD_TOO_DEEP);
    assert_err_has(fx, "nested 65 levels deep, more than input.max_depth (64)");
    char *objs = nested_msg("{\"k\":", "{}", '}', 62, 600); /* the {} is level 64 */
    assert_int_equal(pred_n(fx, objs, 600), DW_BAD_NONE);
    free(objs);
    objs = nested_msg("{\"k\":", "{}", '}', 63, 600);
    assert_int_equal(pred_n(fx, objs, 600), DW_BAD_TOO_DEEP);
    free(objs);

    /* scalars do not count: a deepest array of numbers is still 64 */
    free(ok);
    ok = nested_msg("[", "1,2,\"s\",true", ']', 63, 400);
    assert_int_equal(pred_n(fx, ok, 400), DW_BAD_NONE);
    free(ok);

    /* input.max_depth: 2 lets a features object through and nothing deeper */
    close_decoder(fx);
    fx->cfg.max_depth = 2;
    open_decoder(fx);
    assert_int_equal(pred_feature(fx, "amount", "1.5"), DW_BAD_NONE);
    assert_int_equal(pred_feature(fx, "amount", "[1]"), DW_BAD_TOO_DEEP);
    assert_err_has(fx, "nested 3 levels deep, more than input.max_depth (2)");

    /* a hand-built configuration without input.max_depth (0) keeps JSON's own limit: nesting
     * beyond 2048 is invalid JSON, as jansson decides, and costs linear time too */
    close_decoder(fx);
    fx->cfg.max_depth = 0;
    open_decoder(fx);
    free(deep);
    deep = nested_msg("[", "", ']', 2047, 5000);
    assert_int_equal(pred_n(fx, deep, 5000), DW_BAD_NONE);
    free(deep);
    deep = nested_msg("[", "", ']', 2048, 5000);
    assert_int_equal(pred_n(fx, deep, 5000), DW_BAD_JSON);
    assert_err_has(fx, "nested deeper than 2048 levels");
    free(deep);
    deep = nested_msg("[", "", ']', 0, MSG_256K);
    assert_int_equal(pred_n(fx, deep, MSG_256K), DW_BAD_JSON);
    assert_err_has(fx, "nested deeper than 2048 levels");
    free(deep);
}

/* the depth is checked after size and UTF-8 and before the JSON grammar */
static void test_depth_check_order(void **state)
{
    struct fixture *fx = *state;
    char *deep = nested_msg("[", "", ']', 100, 400);
    assert_int_equal(pred_n(fx, deep, 400), DW_BAD_TOO_DEEP);
    deep[strlen(DEEP_HEAD) + 200] = '\xff';
    assert_int_equal(pred_n(fx, deep, 400), DW_BAD_UTF8);
    free(deep);
    deep = nested_msg("[", "tru", ']', 100, 400); /* invalid JSON, and too deep first */
    assert_int_equal(pred_n(fx, deep, 400), DW_BAD_TOO_DEEP);
    free(deep);
    /* the parse stops at the first error, before the brackets: still too_deep, and named */
    char bad_first[400];
    size_t n = (size_t)snprintf(bad_first, sizeof(bad_first), "{\"a\":tru,\"x\":");
    memset(bad_first + n, '[', 100);
    memset(bad_first + n + 100, ']', 100);
    bad_first[n + 200] = '}';
    assert_int_equal(pred_n(fx, bad_first, n + 201), DW_BAD_TOO_DEEP);
    assert_err_has(fx, "nested 101 levels deep, more than input.max_depth (64)");
    close_decoder(fx);
    fx->cfg.max_message_bytes = 300;
    open_decoder(fx);
    deep = nested_msg("[", "", ']', 100, 400);
    assert_int_equal(pred_n(fx, deep, 400), DW_BAD_TOO_LARGE);
    free(deep);
}

/*
 * Only the first top-level value is parsed: text after it is invalid JSON, however deep. (With
 * jsmn, used until 2026-12-04, tokens chained under closed ones, a ':' after a bracket or a
 * bracket after the top-level value, made its parent walk quadratic at any depth: 256 KiB of
 * them stay invalid JSON in linear time.)
 */
static void test_depth_after_top_level(void **state)
{
    struct fixture *fx = *state;
    size_t len = MSG_256K;
    char *buf = malloc(len);
    memcpy(buf, "{}", 2);
    memset(buf + 2, '[', len - 2);
    assert_int_equal(pred_n(fx, buf, len), DW_BAD_JSON);
    assert_err_has(fx, "text after the top-level value");
    /* [[]]: then []]: repeated: each ']' after the first value would walk every token so far */
    memcpy(buf, "[[]]:", 5);
    size_t n = 5;
    while (n + 4 <= len) {
        memcpy(buf + n, "[]]:", 4);
        n += 4;
    }
    assert_int_equal(label_n(fx, buf, n), DW_BAD_JSON);
    assert_err_has(fx, "(byte 4)");
    free(buf);
}

/* ---------------------------------------------------------- input.non_finite */

static int setup_count(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    default_config(fx);
    fx->cfg.non_finite = DW_NON_FINITE_COUNT;
    open_decoder(fx);
    *state = fx;
    return 0;
}

static void test_non_finite_numeric_feature(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(pred_feature(fx, "amount", "NaN"), DW_BAD_NONE);
    assert_int_equal(fx->p->features[0].kind, DW_VAL_NUM);
    assert_nan(fx->p->features[0].num);
    assert_int_equal(pred_feature(fx, "amount", "Infinity"), DW_BAD_NONE);
    assert_int_equal(fx->p->features[0].kind, DW_VAL_NUM);
    assert_true(isinf(fx->p->features[0].num) && fx->p->features[0].num > 0);
    assert_int_equal(pred_feature(fx, "amount", "-Infinity"), DW_BAD_NONE);
    assert_int_equal(fx->p->features[0].kind, DW_VAL_NUM);
    assert_true(isinf(fx->p->features[0].num) && fx->p->features[0].num < 0);

    /* as Python writes them: spaces after ':' and ','; several in one message, first,
     * middle and last member; the values around them read normally */
    assert_int_equal(pred(fx, "{\"features\": {\"amount\": NaN, \"country\": \"Z\\u00fcrich\", "
                              "\"age\": -Infinity, \"is_new\": Infinity}, \"prediction_id\": "
                              "\"p\", \"model\": \"fraud\", \"prediction\": 1, \"score\": 0.5}"),
                     DW_BAD_NONE);
    assert_nan(fx->p->features[0].num);
    assert_mem_str(fx->p->features[1].str, fx->p->features[1].len, "Z\xc3\xbcrich");
    assert_true(isinf(fx->p->features[2].num) && fx->p->features[2].num < 0);
    assert_true(isinf(fx->p->features[3].num) && fx->p->features[3].num > 0);
    assert_true(fx->p->has_score);
    assert_double_exact(fx->p->score, 0.5);
    assert_mem_str(fx->p->id, fx->p->id_len, "p");

    /* a finite value after a non-finite one in the same decoder is finite again */
    assert_int_equal(pred_feature(fx, "amount", "12.5"), DW_BAD_NONE);
    assert_double_exact(fx->p->features[0].num, 12.5);
}

static void test_non_finite_categorical_feature(void **state)
{
    struct fixture *fx = *state;
    const char *texts[] = {"NaN", "Infinity", "-Infinity"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(texts); i++) {
        assert_int_equal(pred_feature(fx, "zip", texts[i]), DW_BAD_NONE);
        assert_int_equal(fx->p->features[4].kind, DW_VAL_STR);
        assert_mem_str(fx->p->features[4].str, fx->p->features[4].len, texts[i]);
    }
    /* the same category as the string "NaN" */
    assert_int_equal(pred_feature(fx, "zip", "\"NaN\""), DW_BAD_NONE);
    assert_mem_str(fx->p->features[4].str, fx->p->features[4].len, "NaN");
}

/* every field but a feature refuses them, naming the field and the token */
static void test_non_finite_other_fields(void **state)
{
    struct fixture *fx = *state;
    const struct {
        const char *json;
        enum dw_bad_reason reason;
        const char *err;
    } cases[] = {
        {"{\"prediction_id\":NaN,\"model\":\"fraud\",\"prediction\":1}", DW_BAD_WRONG_TYPE,
         "prediction_id: expected a string or an integer, got NaN"},
        {"{\"prediction_id\":\"p\",\"model\":Infinity,\"prediction\":1}", DW_BAD_WRONG_TYPE,
         "model: expected a string, got Infinity"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"model_version\":NaN,\"prediction\":1}",
         DW_BAD_WRONG_TYPE, "model_version: expected a string or a number, got NaN"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"timestamp\":Infinity,\"prediction\":1}",
         DW_BAD_TIMESTAMP,
         "timestamp: expected an RFC 3339 string or an epoch number, got "
         "Infinity"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":NaN}", DW_BAD_WRONG_TYPE,
         "prediction: expected a string, number or boolean, got NaN"},
        {"{\"prediction_id\":\"p\",\"model\":\"price\",\"prediction\":-Infinity}",
         DW_BAD_WRONG_TYPE, "prediction: expected a number (regression model), got -Infinity"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"score\":NaN}",
         DW_BAD_WRONG_TYPE, "score: expected a number or an object, got NaN"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"latency_ms\":Infinity}",
         DW_BAD_WRONG_TYPE, "latency_ms: expected a number, got Infinity"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"latency_ms\":NaN}",
         DW_BAD_WRONG_TYPE, "latency_ms: expected a number, got NaN"},
        {"{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":NaN}",
         DW_BAD_WRONG_TYPE, "features: expected an object, got NaN"},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        assert_int_equal(pred(fx, cases[i].json), cases[i].reason);
        assert_string_equal(fx->err, cases[i].err);
    }
    assert_int_equal(label(fx, "{\"prediction_id\":\"p\",\"label\":NaN}"), DW_BAD_WRONG_TYPE);
    assert_string_equal(fx->err, "label: expected a string, number or boolean, got NaN");
    assert_int_equal(label(fx, "{\"prediction_id\":-Infinity,\"label\":1}"), DW_BAD_WRONG_TYPE);
    assert_string_equal(fx->err, "prediction_id: expected a string or an integer, got -Infinity");
    assert_int_equal(label(fx, "{\"prediction_id\":\"p\",\"label\":1,\"timestamp\":NaN}"),
                     DW_BAD_TIMESTAMP);

    /* a positive-class probability that is not a number is no score, as "high" is */
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":"
                              "\"cat\",\"score\":{\"cat\":NaN,\"dog\":0.5}}"),
                     DW_BAD_NONE);
    assert_false(fx->p->has_score);

    /* the top level is never an object */
    assert_int_equal(pred(fx, "NaN"), DW_BAD_NOT_OBJECT);
    assert_string_equal(fx->err, "message: top level is NaN, expected an object");
    assert_int_equal(label(fx, " -Infinity\n"), DW_BAD_NOT_OBJECT);
    assert_string_equal(fx->err, "message: top level is -Infinity, expected an object");

    /* fields that are not read may hold them anywhere */
    assert_int_equal(pred(fx, "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
                              "\"extra\":[NaN,Infinity,-Infinity,{\"x\":[NaN]}],"
                              "\"features\":{\"other\":NaN,\"amount\":1}}"),
                     DW_BAD_NONE);
    assert_double_exact(fx->p->features[0].num, 1.0);
}

/* only the three exact tokens, and only where a value may stand */
static void test_non_finite_still_invalid(void **state)
{
    struct fixture *fx = *state;
    const char *values[] = {"nan",     "NAN", "NaNa", "-NaN",      "+Infinity",
                            "Infinit", "inf", "-inf", "Infinityy", "-Infinity1",
                            "N",       "I",   "Nan",  "infinity",  "- Infinity"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(values); i++) {
        if (pred_feature(fx, "amount", values[i]) != DW_BAD_JSON) {
            fail_msg("amount: %s: got %s, expected invalid_json", values[i],
                     dw_bad_reason_name(pred_feature(fx, "amount", values[i])));
        }
    }
    const char *docs[] = {
        "{NaN:1}",      "{\"a\":1,Infinity:2}", "[1 NaN]", "[NaN NaN]", "{\"a\":NaN \"b\":1}",
        "{\"a\":NaN,}", "{\"a\":[NaN}",         "NaN NaN", "Infinity]", "{\"a\":NaN",
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(docs); i++) {
        if (pred(fx, docs[i]) != DW_BAD_JSON) {
            fail_msg("%s: got %s, expected invalid_json", docs[i],
                     dw_bad_reason_name(pred(fx, docs[i])));
        }
    }
}

/* more tokens than the initial token array: the parse resumes after growing, over the copy */
static void test_non_finite_many_tokens(void **state)
{
    struct fixture *fx = *state;
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    size_t n = (size_t)snprintf(buf, cap,
                                "{\"prediction_id\":\"p\",\"model\":\"fraud\","
                                "\"prediction\":1,\"extra\":[");
    for (int i = 0; i < 3000; i++) {
        const char *t = i % 3 == 0 ? "NaN" : i % 3 == 1 ? "Infinity" : "-Infinity";
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", t);
    }
    snprintf(buf + n, cap - n,
             "],\"features\":{\"amount\":Infinity,\"country\":\"a\\\"b\",\"zip\":NaN}}");
    assert_int_equal(pred(fx, buf), DW_BAD_NONE);
    assert_true(isinf(fx->p->features[0].num) && fx->p->features[0].num > 0);
    assert_mem_str(fx->p->features[1].str, fx->p->features[1].len, "a\"b");
    assert_mem_str(fx->p->features[4].str, fx->p->features[4].len, "NaN");
    free(buf);
}

/* input.non_finite = reject: today's strict JSON, -Infinity included */
static void test_non_finite_reject(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(fx->cfg.non_finite, DW_NON_FINITE_REJECT);
    const char *values[] = {"NaN", "Infinity", "-Infinity"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(values); i++) {
        assert_int_equal(pred_feature(fx, "amount", values[i]), DW_BAD_JSON);
        assert_err_has(fx, "invalid JSON");
        assert_int_equal(pred_feature(fx, "zip", values[i]), DW_BAD_JSON);
        assert_int_equal(pred_feature(fx, "other", values[i]), DW_BAD_JSON);
    }
    assert_int_equal(pred(fx, "NaN"), DW_BAD_JSON);
    assert_int_equal(pred(fx, "-Infinity"), DW_BAD_JSON);
}

/* The dead-letter record: text payloads as text, invalid UTF-8 and oversize ones as base64, an
 * oversize one cut to DW_DEAD_LETTER_PAYLOAD_MAX bytes and marked, a message without a value as
 * null (the field was left out). */
static void test_dead_letter_record(void **state)
{
    (void)state;
    char *t =
        dw_dead_letter_text(DW_BAD_JSON, "invalid JSON at byte 1", "predictions", 3, 42, "{x", 2);
    assert_string_equal(t, "{\"reason\":\"invalid_json\",\"error\":\"invalid JSON at byte 1\","
                           "\"topic\":\"predictions\",\"partition\":3,\"offset\":42,"
                           "\"payload_size\":2,\"payload\":\"{x\"}");
    free(t);
    t = dw_dead_letter_text(DW_BAD_UTF8, "bad", "labels", 0, 7, "\xff\xfe", 2);
    assert_contains(t, "\"payload_base64\":\"//4=\"");
    assert_not_contains(t, "\"payload\":");
    free(t);
    size_t big = DW_DEAD_LETTER_PAYLOAD_MAX * 3;
    char *payload = malloc(big);
    assert_non_null(payload);
    memset(payload, 'a', big);
    t = dw_dead_letter_text(DW_BAD_TOO_LARGE, "too large", "predictions", 1, 9, payload, big);
    assert_contains(t, "\"payload_size\":3072");
    assert_contains(t, "\"payload_truncated\":true");
    json_t *doc = json_loads(t, 0, NULL);
    assert_non_null(doc);
    const char *b64 = json_string_value(json_object_get(doc, "payload_base64"));
    assert_non_null(b64);
    assert_int_equal(strlen(b64), (DW_DEAD_LETTER_PAYLOAD_MAX + 2) / 3 * 4);
    json_decref(doc);
    free(t);
    free(payload);
    /* a message without a value (a tombstone): "payload": null, not left out */
    t = dw_dead_letter_text(DW_BAD_JSON, "empty message", "labels", 2, 5, NULL, 0);
    assert_contains(t, "\"payload_size\":0,\"payload\":null}");
    free(t);
    /* an empty value: "payload": "" */
    t = dw_dead_letter_text(DW_BAD_JSON, "empty message", "labels", 2, 6, "", 0);
    assert_contains(t, "\"payload\":\"\"}");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_prediction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_fields_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_integer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_numeric_feature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reals_as_strtod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_feature_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_order_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_categorical_number_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_class_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_score, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test(test_dead_letter_record),
        cmocka_unit_test_setup_teardown(test_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_future, setup_bounds, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_past, setup_bounds, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_labels, setup_bounds, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_missing_timestamp, setup_bounds, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_zero_disables, setup_bounds, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_reference_edges, setup_bounds, teardown),
        cmocka_unit_test_setup_teardown(test_custom_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pointers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_valid_until_next_decode, setup, teardown),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test_setup_teardown(test_check_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_numeric_feature, setup_count, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_categorical_feature, setup_count, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_other_fields, setup_count, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_still_invalid, setup_count, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_many_tokens, setup_count, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_deep_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_deep_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_inside_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_check_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_after_top_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
