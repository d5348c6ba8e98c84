/*
 * decode_fixture.h - what fuzz_decode_prediction.c and fuzz_decode_label.c share: two decoders
 * made from YAML configurations by the real loader, the seed corpus, and output checks.
 *
 * Two decoders see every input, so that both halves of the decoder's behaviour are fuzzed:
 *   A: default field paths and /status (the default error values), input.non_finite = count
 *      (NaN / Infinity tokens), max_depth 64,
 *      the models gen writes (fraud: 4 numeric + 3 categorical features plus num_4.., cat_3..)
 *      and a regression and a multi-class model;
 *   B: features at the top level (""), the score through an array index, the timestamp and
 *      the label deeper in the event, no model_version, input.non_finite = reject (jansson's
 *      RFC 8259), max_depth 6, the status at /meta/status with error_values [failed, 503].
 * Seeds: events written by `driftwatch gen` (valid ones, every junk variant, duplicate labels,
 * missing values), and hand-written events for the rules of docs/messages.md gen does not
 * produce (integer ids, escapes, score objects, non-finite tokens, epoch timestamps, deep
 * nesting, custom paths).
 *
 * Only static inline functions: each harness is its own program and uses what it needs.
 */
#ifndef DW_FUZZ_DECODE_FIXTURE_H
#define DW_FUZZ_DECODE_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "dw_fuzz.h"

#define FUZZ_MODELS                                                                                \
    "models:\n"                                                                                    \
    "  fraud:\n"                                                                                   \
    "    features: {amount: numeric, age: numeric, balance: numeric, tenure: numeric,\n"           \
    "               num_4: numeric, country: categorical, merchant: categorical,\n"                \
    "               device: categorical, cat_3: categorical, \"a/b~c\": categorical,\n"            \
    "               \"caf\xc3\xa9\": numeric}\n"                                                   \
    "  price: {task: regression, features: {sqft: numeric, city: categorical}}\n"                  \
    "  animal: {positive_class: cat, features: {weight: numeric}}\n"

static const char *const FUZZ_DECODER_YAML[2] = {
    "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
    "input: {non_finite: count, fields: {status: /status}}\n" FUZZ_MODELS,
    "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
    "input:\n"
    "  non_finite: reject\n"
    "  max_depth: 6\n"
    "  fields: {features: \"\", score: /scores/1, timestamp: /meta/ts, model_version: \"\",\n"
    "           label: /truth/0, label_timestamp: /meta/ts, status: /meta/status}\n"
    "  error_values: [failed, 503]\n" FUZZ_MODELS,
};

struct fuzz_decoders {
    struct dw_config cfg[2];
    struct dw_decoder *dec[2];
    struct dw_prediction *p[2];
};

/* volatile: the compiler may not drop the reads that let ASan check each byte */
static volatile unsigned fuzz_sink;

/* a broken promise of the decoder: abort, which libFuzzer and the driver report as a crash */
static inline void fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz: decoder output check failed: %s\n", what);
        abort();
    }
}

static inline void fuzz_touch(const char *s, size_t len)
{
    unsigned sum = 0;
    for (size_t i = 0; i < len; i++) {
        sum += (unsigned char)s[i];
    }
    fuzz_sink += sum;
}

/* the decoders, made once per process (kept until exit: still reachable, not a leak) */
static inline struct fuzz_decoders *fuzz_decoders(void)
{
    static struct fuzz_decoders d;
    static int ready;
    if (ready) {
        return &d;
    }
    char err[512];
    for (int i = 0; i < 2; i++) {
        if (dw_config_load_string(&d.cfg[i], FUZZ_DECODER_YAML[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "fuzz: decoder config %d: %s\n", i, err);
            abort();
        }
        d.dec[i] = dw_decoder_new(&d.cfg[i], err, sizeof(err));
        if (!d.dec[i]) {
            fprintf(stderr, "fuzz: decoder %d: %s\n", i, err);
            abort();
        }
        d.p[i] = dw_prediction_new(d.dec[i]);
    }
    ready = 1;
    return &d;
}

/* what docs/messages.md promises about a class */
static inline void fuzz_check_class(const struct dw_class *c)
{
    fuzz_check(c->len <= DW_CLASS_MAX, "class longer than DW_CLASS_MAX");
    fuzz_check(c->text[c->len] == '\0', "class text not NUL-terminated at its length");
    fuzz_check(strlen(c->text) == c->len, "class text holds a NUL");
    fuzz_check(!c->is_num || isfinite(c->num), "numeric class not finite");
}

static inline void fuzz_check_id(const char *id, size_t len)
{
    fuzz_check(id != NULL && len > 0 && len <= DW_ID_MAX, "id empty, absent or too long");
    fuzz_touch(id, len);
}

/* a decoded prediction: every promise of dw_decode.h, and every byte it points at readable */
static inline void fuzz_check_prediction(const struct dw_config *cfg, const struct dw_prediction *p)
{
    fuzz_check_id(p->id, p->id_len);
    fuzz_check(p->model_idx < cfg->n_models && p->model == &cfg->models[p->model_idx],
               "model is not the configured one");
    fuzz_check(p->version != NULL, "version NULL");
    fuzz_touch(p->version, p->version_len);
    fuzz_check_class(&p->pred);
    fuzz_check(p->model->task != DW_TASK_REGRESSION || p->pred.is_num,
               "regression prediction is not a number");
    fuzz_check(!p->has_score || (p->score >= 0.0 && p->score <= 1.0), "score outside [0, 1]");
    fuzz_check(!p->has_latency || p->latency_ms >= 0.0, "negative latency");
    fuzz_check(!p->status_error || p->has_status, "an error status without a status");
    fuzz_check(p->ts_ms > -9000000000000000LL && p->ts_ms < 9000000000000000LL,
               "timestamp beyond +-9e15 ms");
    for (size_t f = 0; f < p->model->n_features; f++) {
        const struct dw_val *v = &p->features[f];
        if (v->kind == DW_VAL_NUM) {
            fuzz_check(p->model->features[f].type == DW_FEATURE_NUMERIC, "number for categorical");
            fuzz_check(cfg->non_finite == DW_NON_FINITE_COUNT || isfinite(v->num),
                       "non-finite number with input.non_finite = reject");
        } else if (v->kind == DW_VAL_STR) {
            fuzz_check(p->model->features[f].type == DW_FEATURE_CATEGORICAL, "text for numeric");
            fuzz_check(v->str != NULL, "categorical value without text");
            fuzz_touch(v->str, v->len);
        } else {
            fuzz_check(v->kind == DW_VAL_MISSING, "unknown value kind");
        }
    }
}

static inline void fuzz_check_label(const struct dw_label *l)
{
    fuzz_check_id(l->id, l->id_len);
    fuzz_check_class(&l->label);
}

/* a failed decode: a reason that has a name, and an error text */
static inline void fuzz_check_failure(enum dw_bad_reason r, const char *err)
{
    fuzz_check(r > DW_BAD_NONE && r < DW_BAD__COUNT, "reason out of range");
    fuzz_check(err[0] != '\0', "failure without an error text");
}

static inline void fuzz_decode_seeds(const char *dir)
{
    /* gen: every junk variant, missing values, duplicate and early labels, two versions */
    const char *const mixed[] = {
        "--count",        "40",   "--seed",     "3",         "--malformed",        "0.5",
        "--missing",      "0.15", "--versions", "1.0.0,2.1", "--duplicate-labels", "0.3",
        "--early-labels", "0.2"};
    /* more features than gen has names for: num_4, cat_3 */
    const char *const wide[] = {"--count",   "10", "--seed",        "11",
                                "--numeric", "5",  "--categorical", "4"};
    dw_fuzz_seed_gen(dir, "gen-pred", 0, mixed, (int)DW_ARRAY_SIZE(mixed));
    dw_fuzz_seed_gen(dir, "gen-label", 1, mixed, (int)DW_ARRAY_SIZE(mixed));
    dw_fuzz_seed_gen(dir, "gen-wide", 0, wide, (int)DW_ARRAY_SIZE(wide));
    /* serving statuses, "ok" and "error" */
    const char *const status[] = {"--count",        "10",           "--seed", "5",
                                  "--status-field", "--error-rate", "0.5"};
    dw_fuzz_seed_gen(dir, "gen-status", 0, status, (int)DW_ARRAY_SIZE(status));

    /* docs/messages.md rules gen does not write */
    static const char *const texts[] = {
        "{\"prediction_id\":81723,\"model\":\"fraud\",\"prediction\":1,\"score\":0.5}",
        "{\"prediction_id\":\"p\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"model\":"
        "\"fraud\",\"prediction\":\"yes\",\"features\":{\"country\":\"Z\\u00fcrich\",\"a/b~c\":"
        "\"x\"}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1.0,\"score\":{\"1\":0.7,"
        "\"0\":0.3},\"latency_ms\":0,\"model_version\":3.0}",
        "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":\"cat\",\"score\":{\"cat\":"
        "NaN},\"features\":{\"weight\":Infinity}}",
        "{\"prediction_id\":\"p\",\"model\":\"price\",\"prediction\":-1e300,\"features\":{\"sqft\":"
        "-Infinity,\"city\":NaN}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":true,\"timestamp\":"
        "1795342503.123,\"features\":{\"amount\":true,\"age\":-0,\"caf\xc3\xa9\":1e-400}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":0,\"timestamp\":"
        "1795342503123}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":0,\"timestamp\":"
        "\"2026-11-22t12:15:03.123456789+02:00\"}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":0,\"timestamp\":"
        "\"2026-11-22 10:15:03Z\",\"features\":null}",
        "{\"prediction_id\":\"9223372036854775807\",\"label\":9223372036854775807,\"timestamp\":"
        "-9223372036854775808}",
        "{\"prediction_id\":\"p\",\"label\":\"cat\",\"timestamp\":null}",
        "{\"prediction_id\":\"p\",\"label\":0.1}",
        /* serving statuses: codes, texts, booleans, null, and the types that are bad_status */
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"status\":503,\"meta\":"
        "{\"status\":\"failed\"}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"status\":\"timeout\","
        "\"meta\":{\"status\":false}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"status\":null,\"meta\":"
        "{\"status\":[503]}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"status\":{\"code\":"
        "500},\"meta\":{\"status\":NaN}}",
        /* decoder B: features at the top level, score in an array, label in an array */
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"amount\":3.5,\"country\":"
        "\"FR\",\"scores\":[0.1,0.9],\"meta\":{\"ts\":\"2026-01-01T00:00:00Z\"}}",
        "{\"prediction_id\":\"p\",\"truth\":[\"fraud\"],\"meta\":{\"ts\":1700000000}}",
        /* nesting around the limits of A (64) and B (6) */
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"x\":[[[[[{\"a\":[1]}]]]]]"
        "}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"x\":\"[[[[[[[[[[[\\\"\"}",
        "{\"a\":1} [[[[[",
        "[[]]:[]]:[]]:",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"x\":[1 2]}",
        " \"top\" ",
        "-Infinity",
        "{\"prediction_id\":\"p\",\"dup\":1,\"dup\":2,\"model\":\"x\",\"model\":\"fraud\","
        "\"prediction\":[]}",
    };
    dw_fuzz_seed_texts(dir, "doc", texts, DW_ARRAY_SIZE(texts));
}

#endif
