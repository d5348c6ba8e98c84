/*
 * test_decode_diff.c - differential test of the event decoder (its one-pass JSON parser)
 * against jansson 2.14, the parser it replaced.
 *
 * For every message of a corpus:
 *   1. the expected reason up to the top-level check comes from jansson: invalid UTF-8 ->
 *      invalid_utf8 (the decoder checks it first), json_loadb() fails -> invalid_json, the top
 *      level is not an object -> not_object. JSON_DECODE_ANY only lets a scalar stand at the top
 *      level, so a scalar top level is not_object and not invalid_json (flags 0 would call it
 *      invalid; the grammar inside the value is the same);
 *   2. for an object, a straightforward jansson-based extraction written here from
 *      docs/messages.md (ref_prediction(), ref_label()) gives the expected reason and fields;
 *   3. dw_decode_prediction() and dw_decode_label() must give the same reason and, when both
 *      accept, the same id, model, version, timestamp, class, score, latency and every feature.
 *
 * The corpus: hand-written edge cases, messages generated from random fields and values (valid
 * and invalid values, escapes, duplicate keys, junk subtrees, whitespace), and seeded random
 * byte mutations (flips, insertions, deletions, truncations, splices) of real prediction and
 * label events. Everything runs against two configurations: flat default paths, and features at
 * the top level with the score read through an array index. Seeds are fixed: a failure prints
 * the message, and reruns reproduce it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_decode.h"

#define KAFKA_TS 1700000000555LL /* milliseconds; the Kafka timestamp passed to every decode */
#define MSG_MAX 16384            /* bytes; the largest message the generators build */
#define N_GENERATED 12000        /* messages built from random fields */
#define N_MUTATIONS 24000        /* random byte mutations (this test keeps at least 20000) */

/* ---------------------------------------------------------------------------------------------
 * Configuration: the models of test_decode.c plus a 15-feature model like the benchmark's
 * ------------------------------------------------------------------------------------------- */

static struct dw_feature_cfg fraud_features[] = {
    {"amount", DW_FEATURE_NUMERIC},    {"country", DW_FEATURE_CATEGORICAL},
    {"age", DW_FEATURE_NUMERIC},       {"is_new", DW_FEATURE_NUMERIC},
    {"zip", DW_FEATURE_CATEGORICAL},   {"tier", DW_FEATURE_CATEGORICAL},
    {"a/b~c", DW_FEATURE_CATEGORICAL}, {"caf\xc3\xa9", DW_FEATURE_NUMERIC},
    {"zip", DW_FEATURE_NUMERIC}, /* the same key read twice, as another type */
};

static struct dw_feature_cfg price_features[] = {
    {"sqft", DW_FEATURE_NUMERIC},
    {"city", DW_FEATURE_CATEGORICAL},
};

static struct dw_feature_cfg animal_features[] = {
    {"weight", DW_FEATURE_NUMERIC},
};

static struct dw_feature_cfg bench_features[15] = {
    {"f00", DW_FEATURE_NUMERIC},     {"f01", DW_FEATURE_NUMERIC},
    {"f02", DW_FEATURE_NUMERIC},     {"f03", DW_FEATURE_NUMERIC},
    {"f04", DW_FEATURE_NUMERIC},     {"f05", DW_FEATURE_NUMERIC},
    {"f06", DW_FEATURE_NUMERIC},     {"f07", DW_FEATURE_NUMERIC},
    {"f08", DW_FEATURE_NUMERIC},     {"f09", DW_FEATURE_NUMERIC},
    {"c10", DW_FEATURE_CATEGORICAL}, {"c11", DW_FEATURE_CATEGORICAL},
    {"c12", DW_FEATURE_CATEGORICAL}, {"c13", DW_FEATURE_CATEGORICAL},
    {"b14", DW_FEATURE_NUMERIC},
};

struct setup {
    struct dw_model_cfg models[4];
    struct dw_config cfg;
    struct dw_decoder *dec;
    struct dw_prediction *p;
};

static void make_config(struct setup *s, int variant)
{
    memset(s, 0, sizeof(*s));
    s->models[0] = (struct dw_model_cfg){.name = "fraud",
                                         .task = DW_TASK_CLASSIFICATION,
                                         .positive_class = "1",
                                         .features = fraud_features,
                                         .n_features = DW_ARRAY_SIZE(fraud_features)};
    s->models[1] = (struct dw_model_cfg){.name = "price",
                                         .task = DW_TASK_REGRESSION,
                                         .positive_class = "1",
                                         .features = price_features,
                                         .n_features = DW_ARRAY_SIZE(price_features)};
    s->models[2] = (struct dw_model_cfg){.name = "animal",
                                         .task = DW_TASK_CLASSIFICATION,
                                         .positive_class = "cat",
                                         .features = animal_features,
                                         .n_features = DW_ARRAY_SIZE(animal_features)};
    s->models[3] = (struct dw_model_cfg){.name = "bench",
                                         .task = DW_TASK_CLASSIFICATION,
                                         .positive_class = "1",
                                         .features = bench_features,
                                         .n_features = DW_ARRAY_SIZE(bench_features)};
    s->cfg.models = s->models;
    s->cfg.n_models = 4;
    s->cfg.max_message_bytes = 1048576;
    /* jansson knows no NaN / Infinity: compare with the strict RFC 8259 decoder */
    s->cfg.non_finite = DW_NON_FINITE_REJECT;
    s->cfg.field_prediction_id = "/prediction_id";
    s->cfg.field_model = "/model";
    s->cfg.field_model_version = "/model_version";
    s->cfg.field_timestamp = "/timestamp";
    s->cfg.field_features = variant == 0 ? "/features" : "";
    s->cfg.field_prediction = "/prediction";
    s->cfg.field_score = variant == 0 ? "/score" : "/scores/1";
    s->cfg.field_latency_ms = "/latency_ms";
    s->cfg.field_label_id = "/prediction_id";
    s->cfg.field_label = "/label";
    s->cfg.field_label_timestamp = variant == 0 ? "/timestamp" : "/label_ts";
    char err[256];
    s->dec = dw_decoder_new(&s->cfg, err, sizeof(err));
    if (!s->dec) {
        fail_msg("dw_decoder_new: %s", err);
    }
    s->p = dw_prediction_new(s->dec);
}

static void free_config(struct setup *s)
{
    free(s->p);
    dw_decoder_destroy(s->dec);
}

/* ---------------------------------------------------------------------------------------------
 * Reference extraction with jansson, written from docs/messages.md
 * ------------------------------------------------------------------------------------------- */

struct ref_class {
    char text[DW_CLASS_MAX + 1];
    size_t len;
    int is_num;
    double num;
};

struct ref_val {
    enum dw_val_kind kind;
    double num;
    char str[512];
    size_t len;
};

struct ref_pred {
    char id[DW_ID_MAX + 1];
    size_t id_len;
    size_t model_idx;
    char version[512];
    size_t version_len;
    int64_t ts_ms;
    struct ref_class pred;
    int has_score;
    double score;
    int has_latency;
    double latency_ms;
    struct ref_val features[32];
};

struct ref_label {
    char id[DW_ID_MAX + 1];
    size_t id_len;
    int64_t ts_ms;
    struct ref_class label;
};

/*
 * Python's repr of a float, built digit by digit (the decoder uses printf's %f instead): the
 * fewest significant digits that read back to v, fixed notation for 1e-4 <= |v| < 1e16 with
 * ".0" when there is no fraction, otherwise d.ddde+XX.
 */
static void ref_real_text(double v, char *out, size_t size)
{
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    const char *e = strchr(tmp, 'e');
    int exp10 = (int)strtol(e + 1, NULL, 10);
    if (exp10 < -4 || exp10 >= 16) {
        snprintf(out, size, "%s", tmp);
        return;
    }
    char digits[32];
    size_t nd = 0;
    for (const char *c = tmp; c < e; c++) {
        if (*c >= '0' && *c <= '9') {
            digits[nd++] = *c;
        }
    }
    char buf[64];
    size_t o = 0;
    if (signbit(v)) {
        buf[o++] = '-';
    }
    if (exp10 < 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int z = 0; z < -exp10 - 1; z++) {
            buf[o++] = '0';
        }
        for (size_t i = 0; i < nd; i++) {
            buf[o++] = digits[i];
        }
    } else {
        for (int i = 0; i <= exp10; i++) {
            buf[o++] = (size_t)i < nd ? digits[i] : '0';
        }
        buf[o++] = '.';
        if ((size_t)exp10 + 1 < nd) {
            for (size_t i = (size_t)exp10 + 1; i < nd; i++) {
                buf[o++] = digits[i];
            }
        } else {
            buf[o++] = '0';
        }
    }
    buf[o] = '\0';
    snprintf(out, size, "%s", buf);
}

static size_t ref_number_text(const json_t *v, char *out, size_t size)
{
    if (json_is_integer(v)) {
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        ref_real_text(json_real_value(v), out, size);
    }
    return strlen(out);
}

/* RFC 6901, evaluated on the jansson tree */
static const json_t *ref_ptr(const json_t *root, const char *ptr)
{
    if (!ptr || !*ptr) {
        return NULL;
    }
    const json_t *v = root;
    const char *s = ptr + 1;
    for (;;) {
        const char *end = strchr(s, '/');
        size_t raw = end ? (size_t)(end - s) : strlen(s);
        char key[256];
        size_t n = 0;
        for (size_t i = 0; i < raw; i++) {
            if (s[i] == '~') {
                key[n++] = s[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                key[n++] = s[i];
            }
        }
        key[n] = '\0';
        if (json_is_object(v)) {
            v = json_object_getn(v, key, n);
        } else if (json_is_array(v)) {
            int index_ok =
                n > 0 && n < 10 && !(n > 1 && key[0] == '0') && strspn(key, "0123456789") == n;
            v = index_ok ? json_array_get(v, (size_t)strtoul(key, NULL, 10)) : NULL;
        } else {
            v = NULL;
        }
        if (!v || !end) {
            return v;
        }
        s = end + 1;
    }
}

static int ref_missing(const json_t *v)
{
    return !v || json_is_null(v);
}

static enum dw_bad_reason ref_id(const json_t *v, char *id, size_t *id_len)
{
    if (ref_missing(v)) {
        return DW_BAD_MISSING_ID;
    }
    if (json_is_integer(v)) {
        *id_len = ref_number_text(v, id, DW_ID_MAX + 1);
        return DW_BAD_NONE;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > DW_ID_MAX) {
        return DW_BAD_WRONG_TYPE;
    }
    *id_len = json_string_length(v);
    memcpy(id, json_string_value(v), *id_len);
    return DW_BAD_NONE;
}

static enum dw_bad_reason ref_ts(const json_t *v, int64_t *ts)
{
    if (ref_missing(v)) {
        *ts = KAFKA_TS;
        return DW_BAD_NONE;
    }
    if (json_is_integer(v)) {
        long long i = json_integer_value(v);
        if (i > -100000000000LL && i < 100000000000LL) {
            *ts = i * 1000;
        } else if (i < -9000000000000000LL || i > 9000000000000000LL) {
            return DW_BAD_TIMESTAMP;
        } else {
            *ts = i;
        }
        return DW_BAD_NONE;
    }
    if (json_is_real(v)) {
        double r = json_real_value(v);
        if (fabs(r) < 1e11) {
            *ts = dw_floor_div((int64_t)llround(r * 1e6), 1000);
        } else if (fabs(r) > 9e15) {
            return DW_BAD_TIMESTAMP;
        } else {
            *ts = (int64_t)floor(r);
        }
        return DW_BAD_NONE;
    }
    if (json_is_string(v)) {
        return dw_time_parse_rfc3339(json_string_value(v), json_string_length(v), ts) == 0
                   ? DW_BAD_NONE
                   : DW_BAD_TIMESTAMP;
    }
    return DW_BAD_TIMESTAMP;
}

static enum dw_bad_reason ref_class(const json_t *v, int regression, struct ref_class *c)
{
    memset(c, 0, sizeof(*c));
    if (ref_missing(v)) {
        return DW_BAD_MISSING_FIELD;
    }
    if (json_is_number(v)) {
        c->len = ref_number_text(v, c->text, sizeof(c->text));
        c->is_num = 1;
        c->num = json_number_value(v);
        return DW_BAD_NONE;
    }
    if (regression) {
        return DW_BAD_WRONG_TYPE;
    }
    if (json_is_string(v)) {
        if (json_string_length(v) > DW_CLASS_MAX) {
            return DW_BAD_WRONG_TYPE;
        }
        c->len = json_string_length(v);
        memcpy(c->text, json_string_value(v), c->len);
        return DW_BAD_NONE;
    }
    if (json_is_boolean(v)) {
        c->len =
            (size_t)snprintf(c->text, sizeof(c->text), "%s", json_is_true(v) ? "true" : "false");
        return DW_BAD_NONE;
    }
    return DW_BAD_WRONG_TYPE;
}

static enum dw_bad_reason ref_prediction(const struct dw_config *cfg, const json_t *root,
                                         struct ref_pred *r)
{
    memset(r, 0, sizeof(*r));
    enum dw_bad_reason b = ref_id(ref_ptr(root, cfg->field_prediction_id), r->id, &r->id_len);
    if (b) {
        return b;
    }
    const json_t *m = ref_ptr(root, cfg->field_model);
    if (ref_missing(m)) {
        return DW_BAD_MISSING_FIELD;
    }
    if (!json_is_string(m)) {
        return DW_BAD_WRONG_TYPE;
    }
    const struct dw_model_cfg *model = NULL;
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (strlen(cfg->models[i].name) == json_string_length(m) &&
            memcmp(cfg->models[i].name, json_string_value(m), json_string_length(m)) == 0) {
            model = &cfg->models[i];
            r->model_idx = i;
        }
    }
    if (!model) {
        return DW_BAD_UNKNOWN_MODEL;
    }
    const json_t *ver = ref_ptr(root, cfg->field_model_version);
    if (json_is_string(ver)) {
        r->version_len = json_string_length(ver);
        assert_true(r->version_len < sizeof(r->version));
        memcpy(r->version, json_string_value(ver), r->version_len);
    } else if (json_is_number(ver)) {
        r->version_len = ref_number_text(ver, r->version, sizeof(r->version));
    } else if (!ref_missing(ver)) {
        return DW_BAD_WRONG_TYPE;
    }
    b = ref_ts(ref_ptr(root, cfg->field_timestamp), &r->ts_ms);
    if (b) {
        return b;
    }
    b = ref_class(ref_ptr(root, cfg->field_prediction), model->task == DW_TASK_REGRESSION,
                  &r->pred);
    if (b) {
        return b;
    }
    const json_t *sc = ref_ptr(root, cfg->field_score);
    if (json_is_number(sc)) {
        double s = json_number_value(sc);
        if (!(s >= 0.0 && s <= 1.0)) {
            return DW_BAD_WRONG_TYPE;
        }
        r->has_score = 1;
        r->score = s;
    } else if (json_is_object(sc)) {
        const json_t *e = json_object_get(sc, model->positive_class);
        if (json_is_number(e) && json_number_value(e) >= 0.0 && json_number_value(e) <= 1.0) {
            r->has_score = 1;
            r->score = json_number_value(e);
        }
    } else if (!ref_missing(sc)) {
        return DW_BAD_WRONG_TYPE;
    }
    const json_t *lat = ref_ptr(root, cfg->field_latency_ms);
    if (json_is_number(lat)) {
        if (json_number_value(lat) < 0.0) {
            return DW_BAD_WRONG_TYPE;
        }
        r->has_latency = 1;
        r->latency_ms = json_number_value(lat);
    } else if (!ref_missing(lat)) {
        return DW_BAD_WRONG_TYPE;
    }
    const json_t *feats = *cfg->field_features ? ref_ptr(root, cfg->field_features) : root;
    if (ref_missing(feats)) {
        return DW_BAD_NONE;
    }
    if (!json_is_object(feats)) {
        return DW_BAD_WRONG_TYPE;
    }
    for (size_t i = 0; i < model->n_features; i++) {
        const struct dw_feature_cfg *f = &model->features[i];
        struct ref_val *val = &r->features[i];
        const json_t *v = json_object_get(feats, f->name);
        if (ref_missing(v)) {
            continue;
        }
        if (f->type == DW_FEATURE_NUMERIC) {
            if (json_is_number(v)) {
                val->num = json_number_value(v);
            } else if (json_is_boolean(v)) {
                val->num = json_is_true(v) ? 1.0 : 0.0;
            } else {
                return DW_BAD_WRONG_TYPE;
            }
            val->kind = DW_VAL_NUM;
            continue;
        }
        if (json_is_string(v)) {
            val->len = json_string_length(v);
            assert_true(val->len < sizeof(val->str));
            memcpy(val->str, json_string_value(v), val->len);
        } else if (json_is_number(v)) {
            val->len = ref_number_text(v, val->str, sizeof(val->str));
        } else if (json_is_boolean(v)) {
            val->len = (size_t)snprintf(val->str, sizeof(val->str), "%s",
                                        json_is_true(v) ? "true" : "false");
        } else {
            return DW_BAD_WRONG_TYPE;
        }
        val->kind = DW_VAL_STR;
    }
    return DW_BAD_NONE;
}

static enum dw_bad_reason ref_label(const struct dw_config *cfg, const json_t *root,
                                    struct ref_label *r)
{
    memset(r, 0, sizeof(*r));
    enum dw_bad_reason b = ref_id(ref_ptr(root, cfg->field_label_id), r->id, &r->id_len);
    if (b) {
        return b;
    }
    b = ref_ts(ref_ptr(root, cfg->field_label_timestamp), &r->ts_ms);
    if (b) {
        return b;
    }
    return ref_class(ref_ptr(root, cfg->field_label), 0, &r->label);
}

/* ---------------------------------------------------------------------------------------------
 * The comparison
 * ------------------------------------------------------------------------------------------- */

struct stats {
    long messages;
    long invalid_utf8;
    long invalid_json;
    long not_object;
    long pred_ok;  /* predictions decoded by both, fields compared */
    long label_ok; /* labels decoded by both, fields compared */
};

static void same_bytes(const char *what, const char *msg, size_t msg_len, const char *a,
                       size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len || (a_len > 0 && memcmp(a, b, a_len) != 0)) {
        fail_msg("%s: decoder \"%.*s\" (%zu bytes), reference \"%.*s\" (%zu bytes)\nmessage: %.*s",
                 what, (int)a_len, a, a_len, (int)b_len, b, b_len, (int)msg_len, msg);
    }
}

static void same_num(const char *what, const char *msg, size_t msg_len, double a, double b)
{
    /* bitwise: -0.0 and 0.0 must not be confused either */
    if (memcmp(&a, &b, sizeof(a)) != 0) {
        fail_msg("%s: decoder %.17g, reference %.17g\nmessage: %.*s", what, a, b, (int)msg_len,
                 msg);
    }
}

static void same_class(const char *what, const char *msg, size_t len, const struct dw_class *c,
                       const struct ref_class *r)
{
    same_bytes(what, msg, len, c->text, c->len, r->text, r->len);
    assert_int_equal(strlen(c->text), c->len);
    assert_int_equal(c->is_num, r->is_num);
    same_num(what, msg, len, c->num, r->num);
}

static const char *reason(enum dw_bad_reason r)
{
    return dw_bad_reason_name(r);
}

/* decodes one message as a prediction and as a label and compares both with the reference */
static void check_message(struct setup *s, const char *msg, size_t len, struct stats *st)
{
    enum dw_bad_reason expect_doc = DW_BAD_NONE;
    json_t *root = NULL;
    st->messages++;
    json_error_t jerr;
    json_t *any = json_loadb(msg, len, JSON_DECODE_ANY, &jerr);
    if (!dw_utf8_valid(msg, len)) {
        expect_doc = DW_BAD_UTF8;
        st->invalid_utf8++;
        if (any) {
            fail_msg("jansson accepts invalid UTF-8: %.*s", (int)len, msg);
        }
    } else if (!any) {
        expect_doc = DW_BAD_JSON;
        st->invalid_json++;
    } else if (!json_is_object(any)) {
        expect_doc = DW_BAD_NOT_OBJECT;
        st->not_object++;
    } else {
        root = any;
    }

    static struct ref_pred rp;
    char err[512];
    enum dw_bad_reason want = expect_doc ? expect_doc : ref_prediction(&s->cfg, root, &rp);
    enum dw_bad_reason got =
        dw_decode_prediction(s->dec, msg, len, KAFKA_TS, s->p, err, sizeof(err));
    if (got != want) {
        fail_msg("prediction: decoder says %s (%s), reference %s%s%s\nmessage (%zu bytes): %.*s",
                 reason(got), err, reason(want), want == DW_BAD_JSON ? ": " : "",
                 want == DW_BAD_JSON ? jerr.text : "", len, (int)len, msg);
    }
    if (got == DW_BAD_JSON && !strstr(err, "(byte ")) {
        fail_msg("invalid JSON without a byte offset: %s", err);
    }
    if (got == DW_BAD_NONE) {
        const struct dw_prediction *p = s->p;
        st->pred_ok++;
        same_bytes("id", msg, len, p->id, p->id_len, rp.id, rp.id_len);
        assert_int_equal(p->model_idx, rp.model_idx);
        assert_ptr_equal(p->model, &s->cfg.models[rp.model_idx]);
        same_bytes("version", msg, len, p->version, p->version_len, rp.version, rp.version_len);
        if (p->ts_ms != rp.ts_ms) {
            fail_msg("timestamp: decoder %lld, reference %lld\nmessage: %.*s", (long long)p->ts_ms,
                     (long long)rp.ts_ms, (int)len, msg);
        }
        same_class("prediction", msg, len, &p->pred, &rp.pred);
        assert_int_equal(p->has_score, rp.has_score);
        same_num("score", msg, len, p->score, rp.score);
        assert_int_equal(p->has_latency, rp.has_latency);
        same_num("latency_ms", msg, len, p->latency_ms, rp.latency_ms);
        const struct dw_model_cfg *model = p->model;
        for (size_t i = 0; i < model->n_features; i++) {
            const struct dw_val *v = &p->features[i];
            const struct ref_val *r = &rp.features[i];
            char what[128];
            snprintf(what, sizeof(what), "features.%s", model->features[i].name);
            if (v->kind != r->kind) {
                fail_msg("%s: decoder kind %d, reference %d\nmessage: %.*s", what, v->kind, r->kind,
                         (int)len, msg);
            }
            if (v->kind == DW_VAL_NUM) {
                same_num(what, msg, len, v->num, r->num);
            } else if (v->kind == DW_VAL_STR) {
                same_bytes(what, msg, len, v->str, v->len, r->str, r->len);
            }
        }
    }

    struct dw_label l;
    struct ref_label rl;
    want = expect_doc ? expect_doc : ref_label(&s->cfg, root, &rl);
    got = dw_decode_label(s->dec, msg, len, KAFKA_TS, &l, err, sizeof(err));
    if (got != want) {
        fail_msg("label: decoder says %s (%s), reference %s\nmessage (%zu bytes): %.*s",
                 reason(got), err, reason(want), len, (int)len, msg);
    }
    if (got == DW_BAD_NONE) {
        st->label_ok++;
        same_bytes("label id", msg, len, l.id, l.id_len, rl.id, rl.id_len);
        if (l.ts_ms != rl.ts_ms) {
            fail_msg("label timestamp: decoder %lld, reference %lld\nmessage: %.*s",
                     (long long)l.ts_ms, (long long)rl.ts_ms, (int)len, msg);
        }
        same_class("label", msg, len, &l.label, &rl.label);
    }
    json_decref(any);
}

static void check_str(struct setup *s, const char *msg, struct stats *st)
{
    check_message(s, msg, strlen(msg), st);
}

/* ---------------------------------------------------------------------------------------------
 * Generators
 * ------------------------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: fixed seeds make every failure reproducible */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

#define PICK(arr) ((arr)[rnd_below(DW_ARRAY_SIZE(arr))])

struct sb {
    char buf[MSG_MAX];
    size_t len;
};

static void sb_add(struct sb *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n < sizeof(b->buf)) {
        memcpy(b->buf + b->len, s, n);
        b->len += n;
    }
}

/* n blanks after the message: the decoder's end of input moves with them */
static void sb_blanks(struct sb *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sb_add(b, " ");
    }
}

static const char *const ws_pool[] = {"", "", "", " ", "\n", "\t", "\r\n  "};

static const char *const string_pool[] = {
    "\"p-1\"",
    "\"\"",
    "\"fraud\"",
    "\"price\"",
    "\"animal\"",
    "\"bench\"",
    "\"fr\\u0061ud\"",
    "\"\\u00e9t\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
    "\"2026-11-22T10:15:03.120Z\"",
    "\"2026-11-22T12:15:03.5+02:00\"",
    "\"yesterday\"",
    "\"1\"",
    "\"cat\"",
    "\"DE\"",
    "\"Z\xc3\xbcrich\"",
    "\"\\u0031\"",
    "\"7f9c2a4e-5b1d\"",
    "\"\\/\"",
    "\"\x7f\"",
    "\"\\uDBFF\\uDFFF\"",
    "\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"",
};

static const char *const number_pool[] = {
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1.0",
    "-0.0",
    "1e2",
    "1E-5",
    "0.91",
    "12.4",
    "1795342503",
    "1795342503.123",
    "1795342503120",
    "-1.5",
    "1e308",
    "1.7976931348623157e308",
    "1e300",
    "9223372036854775807",
    "-9223372036854775808",
    "123456789.125",
    "2.5e-7",
    "0.30000000000000004",
    "1e-400",
    "4.9e-324",
    "100000000000",
    "99999999999",
    "9e15",
    "9.000000000000001e15",
    "1e16",
    "2",
    "1.5",
    "1e15",
    "0e999999999999",
    "0.000001e313",
    "17976931348623157e292",
};

static const char *const literal_pool[] = {"true", "false", "null"};

static const char *const container_pool[] = {
    "{}",
    "[]",
    "[1,2]",
    "{\"cat\":0.7,\"dog\":0.3}",
    "{\"1\":0.8}",
    "{\"1\":1.5}",
    "{\"1\":\"x\"}",
    "{\"1\":0.2,\"1\":0.9}",
    "{\"1\":0.9,\"1\":null}",
    "[[[]]]",
    "{\"a\":{\"b\":[null,{}]}}",
    "[0.1,0.9]",
    "[0.1,{\"x\":1}]",
    "{\"\\u0031\":0.25}",
    "{\"c\\u0061t\":0.6}",
};

/* values that make the whole message invalid JSON */
static const char *const bad_pool[] = {
    "\"x\\u00\"",
    "\"tab\tinside\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\u0000\"",
    "\"\\x\"",
    "\"\\U00e9\"",
    "17976931348623159e292",
    "0.1e310",
    "1e309",
    "-1e309",
    "9223372036854775808",
    "-9223372036854775809",
    "12345678901234567890",
    "01",
    "1.",
    ".5",
    "+1",
    "-",
    "1e",
    "1e+",
    "2.e3",
    "0x10",
    "1_000",
    "-01",
    "00",
    "tru",
    "nul",
    "NaN",
    "Infinity",
    "True",
    "nulll",
    "[1,]",
    "{\"a\":1,}",
    "{\"a\"}",
    "[1 2]",
    "{\"a\" 1}",
    "{,}",
    "[,1]",
    "{\"a\":1 \"b\":2}",
    "{\"a\"::1}",
    "{1:2}",
    "[\"a\":1]",
    "{\"a\":[}",
    "[{]}",
};

static const char *const key_pool[] = {
    "prediction_id", "model",      "model_version", "timestamp", "features", "prediction",
    "score",         "latency_ms", "label",         "scores",    "label_ts", "host",
    "extra",         "amount",     "zip",           "f00",       "c10",
};

static const char *const feature_keys[] = {
    "\"amount\"", "\"country\"",     "\"age\"",        "\"is_new\"",        "\"zip\"",  "\"tier\"",
    "\"a/b~c\"",  "\"caf\xc3\xa9\"", "\"caf\\u00e9\"", "\"am\\u006fount\"", "\"sqft\"", "\"city\"",
    "\"weight\"", "\"f00\"",         "\"f01\"",        "\"f05\"",           "\"f09\"",  "\"c10\"",
    "\"c12\"",    "\"b14\"",         "\"junk\"",       "\"Amount\"",        "\"zip \"",
};

static void gen_value(struct sb *b, int depth);

static void gen_object(struct sb *b, const char *const *keys, size_t n_keys, size_t members,
                       int depth)
{
    sb_add(b, "{");
    sb_add(b, PICK(ws_pool));
    for (size_t i = 0; i < members; i++) {
        if (i > 0) {
            sb_add(b, ",");
            sb_add(b, PICK(ws_pool));
        }
        sb_add(b, keys[rnd_below(n_keys)]);
        sb_add(b, PICK(ws_pool));
        sb_add(b, ":");
        sb_add(b, PICK(ws_pool));
        gen_value(b, depth + 1);
        sb_add(b, PICK(ws_pool));
    }
    sb_add(b, "}");
}

/* a random value, mostly valid, sometimes not */
static void gen_value(struct sb *b, int depth)
{
    size_t r = rnd_below(100);
    if (r < 3) {
        sb_add(b, PICK(bad_pool));
    } else if (r < 30) {
        sb_add(b, PICK(string_pool));
    } else if (r < 65) {
        sb_add(b, PICK(number_pool));
    } else if (r < 80) {
        sb_add(b, PICK(literal_pool));
    } else if (r < 95 || depth > 3) {
        sb_add(b, PICK(container_pool));
    } else {
        gen_object(b, feature_keys, DW_ARRAY_SIZE(feature_keys), rnd_below(4), depth + 1);
    }
}

static const char *const model_pool[] = {"\"fraud\"", "\"price\"", "\"animal\"",
                                         "\"bench\"", "\"bench\"", "\"fraud\""};

/* a prediction or label event with random fields, values and order */
static void gen_event(struct sb *b)
{
    b->len = 0;
    sb_add(b, PICK(ws_pool));
    sb_add(b, "{");
    size_t n = 3 + rnd_below(8);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            sb_add(b, ",");
        }
        sb_add(b, PICK(ws_pool));
        size_t r = rnd_below(100);
        if (i == 0 || r < 8) {
            sb_add(b, "\"prediction_id\":");
            sb_add(b, rnd_below(4) ? "\"p-42\"" : PICK(number_pool));
        } else if (i == 1 || r < 16) {
            sb_add(b, "\"model\":");
            sb_add(b, rnd_below(8) ? PICK(model_pool) : PICK(string_pool));
        } else if (i == 2 || r < 30) {
            sb_add(b, rnd_below(2) ? "\"prediction\":" : "\"label\":");
            gen_value(b, 1);
        } else if (r < 50) {
            sb_add(b, "\"features\":");
            if (rnd_below(10)) {
                gen_object(b, feature_keys, DW_ARRAY_SIZE(feature_keys), rnd_below(12), 1);
            } else {
                gen_value(b, 1);
            }
        } else if (r < 60) {
            /* flat features, for the configuration that reads them from the top level */
            sb_add(b, PICK(feature_keys));
            sb_add(b, ":");
            gen_value(b, 1);
        } else {
            char key[64];
            snprintf(key, sizeof(key), "\"%s\":", PICK(key_pool));
            sb_add(b, key);
            gen_value(b, 1);
        }
        sb_add(b, PICK(ws_pool));
    }
    sb_add(b, "}");
    sb_add(b, PICK(ws_pool));
}

/* real events, as gen and the benchmark send them */
static const char *const base_events[] = {
    "{\"prediction_id\":\"7f9c2a4e-5b1d-4c3e-9a8f-0123456789ab\",\"model\":\"bench\","
    "\"model_version\":\"2.3.1\",\"timestamp\":\"2026-11-22T10:15:03.120Z\","
    "\"features\":{\"f00\":132.5,\"f01\":0.0042,\"f02\":-17.25,\"f03\":1024,"
    "\"f04\":3.14159,\"f05\":null,\"f06\":88,\"f07\":0.5,\"f08\":12345.678,\"f09\":7,"
    "\"c10\":\"DE\",\"c11\":\"android\",\"c12\":3,\"c13\":\"gold\",\"b14\":true,\"extra\":"
    "\"ignored\"},"
    "\"prediction\":1,\"score\":0.91,\"latency_ms\":12.4,\"host\":\"scorer-7\"}",
    "{\"prediction_id\": \"p-81723\", \"model\": \"fraud\", \"model_version\": \"1.4.0\",\n"
    " \"timestamp\": \"2026-11-22T10:15:03.120Z\",\n"
    " \"features\": {\"amount\": 132.5, \"country\": \"DE\", \"age\": null, \"is_new\": true,"
    " \"zip\": 10115, \"caf\\u00e9\": 2e-3, \"a/b~c\": \"x\\ty\"},\n"
    " \"prediction\": 1, \"score\": 0.91, \"latency_ms\": 12.4}",
    "{\"prediction_id\": 99, \"model\": \"animal\", \"prediction\": \"cat\","
    " \"score\": {\"cat\": 0.7, \"dog\": 0.3}, \"timestamp\": 1795342503.5,"
    " \"scores\": [0.3, 0.7], \"weight\": 4.25, \"features\": {\"weight\": -0.0}}",
    "{\"prediction_id\":\"p-81723\",\"label\":0,\"timestamp\":\"2026-11-22T10:20:00Z\"}",
    "{\"prediction_id\":\"q\\u002d1\",\"label\":\"fr\\u00e9\",\"label_ts\":1795342800123}",
    ("{\"prediction_id\":\"r\",\"model\":\"price\",\"prediction\":250000.5,\"features\":"
     "{\"sqft\":1e3,\"city\":\"Paris\"},\"latency_ms\":0,\"meta\":{\"a\":[1,2,{\"b\":null}]}}"),
};

/* mutation alphabet: JSON's structural bytes weigh most */
static const char mut_bytes[] = "{}[]\":,\\ \n\t-+.eE0123456789tfnrulsaxu/\x01\x1f\x7f";

static const char *const splices[] = {
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\ud800",
    "\\u0000",
    "1e309",
    "-0",
    "99999999999999999999",
    ",",
    "]",
    "}",
    "{\"x\":[1,{}]}",
    "null",
    "\"",
    "\\",
    "\xc3\xa9",
    "\xe2\x82\xac",
    " ",
    "\"model\":\"fraud\",",
    "\"prediction\":1,",
    "\"features\":{},",
    "[",
    "{",
};

static void mutate(struct sb *b)
{
    size_t ops = 1 + rnd_below(3);
    for (size_t k = 0; k < ops; k++) {
        size_t pos = rnd_below(b->len + 1);
        switch (rnd_below(7)) {
        case 0: /* replace a byte */
            if (pos < b->len) {
                b->buf[pos] = mut_bytes[rnd_below(sizeof(mut_bytes) - 1)];
            }
            break;
        case 1: /* insert a byte */
            if (b->len + 1 < sizeof(b->buf)) {
                memmove(b->buf + pos + 1, b->buf + pos, b->len - pos);
                b->buf[pos] = mut_bytes[rnd_below(sizeof(mut_bytes) - 1)];
                b->len++;
            }
            break;
        case 2: /* delete a few bytes */
            if (pos < b->len) {
                size_t n = 1 + rnd_below(3); /* DW_MIN evaluates twice: no rnd() inside */
                n = DW_MIN(n, b->len - pos);
                memmove(b->buf + pos, b->buf + pos + n, b->len - pos - n);
                b->len -= n;
            }
            break;
        case 3: /* truncate */
            b->len = pos;
            break;
        case 4: { /* splice a snippet in */
            const char *s = PICK(splices);
            size_t n = strlen(s);
            if (b->len + n < sizeof(b->buf)) {
                memmove(b->buf + pos + n, b->buf + pos, b->len - pos);
                memcpy(b->buf + pos, s, n);
                b->len += n;
            }
            break;
        }
        case 5: { /* copy a span elsewhere (duplicates keys, members, brackets) */
            size_t from = rnd_below(b->len + 1);
            size_t n = rnd_below(40);
            n = DW_MIN(n, b->len - from);
            if (b->len + n < sizeof(b->buf)) {
                char tmp[64];
                memcpy(tmp, b->buf + from, n);
                memmove(b->buf + pos + n, b->buf + pos, b->len - pos);
                memcpy(b->buf + pos, tmp, n);
                b->len += n;
            }
            break;
        }
        default: /* flip one bit (mostly makes invalid UTF-8 or another ASCII byte) */
            if (pos < b->len) {
                b->buf[pos] = (char)(b->buf[pos] ^ (1 << rnd_below(8)));
            }
            break;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

static const char *const edge_cases[] = {
    /* whitespace, empty, top level */
    "",
    " ",
    "\n\t\r ",
    "{}",
    " {} ",
    "\n{\n}\n",
    "[]",
    "[{}]",
    "42",
    " 42 ",
    "-0",
    "\"str\"",
    "null",
    "true",
    "false",
    "1e309",
    "\"\\ud800\"",
    "{}{}",
    "{} {}",
    "{},",
    "{}]",
    "{}}",
    "[]]",
    "{} x",
    "x",
    "{",
    "}",
    "[",
    "\"",
    "\"abc",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "\f{}",
    "{}\f",
    "{}\v",
    "\xef\xbb\xbf{}",
    "42 43",
    "42,",
    "1 }",
    /* separators and structure (jsmn, used until 2026-12-04, did not check them) */
    "{\"a\":1,}",
    "{,\"a\":1}",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\"::1}",
    "{\"a\":1,,\"b\":2}",
    "[1,]",
    "[,1]",
    "[1 2]",
    "[1,,2]",
    "{\"a\"}",
    "{\"a\",\"b\"}",
    "{1:2}",
    "{true:1}",
    "[\"a\":1]",
    "{\"a\":[1,2}",
    "{\"a\":{\"b\":1]}",
    "[{\"a\":1]}",
    "{\"a\":{}}}",
    "{\"prediction_id\":\"p\" , \"model\" : \"fraud\" , \"prediction\" : 1 }",
    /* strings */
    "{\"prediction_id\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"label\":1}",
    "{\"prediction_id\":\"\\u00e9\\u20ac\\ud83d\\ude00\",\"label\":\"\\u0031\"}",
    "{\"prediction_id\":\"\\ud800\",\"label\":1}",
    "{\"prediction_id\":\"\\udc00\",\"label\":1}",
    "{\"prediction_id\":\"\\ud800\\u0041\",\"label\":1}",
    "{\"prediction_id\":\"\\ud800\\\\\",\"label\":1}",
    "{\"prediction_id\":\"\\ud83d\\ude00\\ude00\",\"label\":1}",
    "{\"prediction_id\":\"\\uDBFF\\uDFFF\",\"label\":1}",
    "{\"prediction_id\":\"\\u0000\",\"label\":1}",
    "{\"\\u0000\":1}",
    "{\"prediction_id\":\"\\x41\",\"label\":1}",
    "{\"prediction_id\":\"\\u12\",\"label\":1}",
    "{\"prediction_id\":\"\\u12G4\",\"label\":1}",
    "{\"prediction_id\":\"\\\",\"label\":1}",
    "{\"prediction_id\":\"a\x01z\",\"label\":1}",
    "{\"prediction_id\":\"a\x1fz\",\"label\":1}",
    "{\"prediction_id\":\"a\nz\",\"label\":1}",
    "{\"prediction_id\":\"a\x7fz\",\"label\":1}",
    "{\"prediction_id\":\"\\'\",\"label\":1}",
    "{\"prediction_id\":'p',\"label\":1}",
    "{\"pre\\u0064iction_id\":\"esc-key\",\"l\\u0061bel\":\"x\"}",
    /* numbers */
    "{\"prediction_id\":1,\"label\":-0}",
    "{\"prediction_id\":1,\"label\":-0.0}",
    "{\"prediction_id\":1,\"label\":1e308}",
    "{\"prediction_id\":1,\"label\":1e309}",
    "{\"prediction_id\":1,\"label\":-1e309}",
    "{\"prediction_id\":1,\"label\":1e-400}",
    "{\"prediction_id\":1,\"label\":1.7976931348623157e308}",
    "{\"prediction_id\":1,\"label\":1.7976931348623158e308}",
    "{\"prediction_id\":1,\"label\":1.7976931348623159e308}",
    "{\"prediction_id\":1,\"label\":179769313486231580000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000.0}",
    "{\"prediction_id\":1,\"label\":0.000000000000000000000000000001e338}",
    "{\"prediction_id\":1,\"label\":0.000000000000000000000000000001e339}",
    "{\"prediction_id\":9223372036854775807,\"label\":1}",
    "{\"prediction_id\":9223372036854775808,\"label\":1}",
    "{\"prediction_id\":-9223372036854775808,\"label\":1}",
    "{\"prediction_id\":-9223372036854775809,\"label\":1}",
    "{\"prediction_id\":123456789012345678901234567890,\"label\":1}",
    "{\"prediction_id\":1,\"label\":01}",
    "{\"prediction_id\":1,\"label\":-01}",
    "{\"prediction_id\":1,\"label\":00}",
    "{\"prediction_id\":1,\"label\":1.}",
    "{\"prediction_id\":1,\"label\":.5}",
    "{\"prediction_id\":1,\"label\":+1}",
    "{\"prediction_id\":1,\"label\":1e}",
    "{\"prediction_id\":1,\"label\":1e+}",
    "{\"prediction_id\":1,\"label\":1E+2}",
    "{\"prediction_id\":1,\"label\":1e-2}",
    "{\"prediction_id\":1,\"label\":-}",
    "{\"prediction_id\":1,\"label\":0x1}",
    "{\"prediction_id\":1,\"label\":NaN}",
    "{\"prediction_id\":1,\"label\":Infinity}",
    "{\"prediction_id\":1,\"label\":-Infinity}",
    "{\"prediction_id\":1,\"label\":tru}",
    "{\"prediction_id\":1,\"label\":truee}",
    "{\"prediction_id\":1,\"label\":nul}",
    "{\"prediction_id\":1,\"label\":1.0e+01}",
    "{\"prediction_id\":1,\"label\":0e99999999999}",
    /* duplicate keys: the last one wins */
    "{\"prediction_id\":\"a\",\"prediction_id\":\"b\",\"label\":1,\"label\":\"z\"}",
    "{\"prediction_id\":\"a\",\"label\":1,\"label\":null}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":"
    "{\"amount\":\"bad\",\"amount\":3}}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":"
    "{\"amount\":3,\"amount\":\"bad\"}}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"zip\":7},"
    "\"features\":{\"zip\":\"8\"}}",
    "{\"prediction_id\":\"p\",\"model\":\"animal\",\"prediction\":\"cat\","
    "\"score\":{\"cat\":0.2,\"cat\":0.6}}",
    /* junk subtrees are skipped whatever they hold */
    "{\"junk\":{\"prediction_id\":\"inner\",\"a\":[1,[2,[3,{\"label\":9}]]]},"
    "\"prediction_id\":\"outer\",\"label\":[0][0]}",
    "{\"junk\":{\"prediction_id\":\"inner\",\"a\":[1,[2,[3,{\"label\":9}]]]},"
    "\"prediction_id\":\"outer\",\"label\":2}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"x\":{\"amount\":"
    "\"no\"},\"amount\":[],\"zz\":1}}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"a/b~c\":\"s\","
    "\"caf\\u00e9\":1.5,\"zip\":12,\"tier\":1e21,\"country\":true}}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"zip\":\"12\"}}",
    "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":[]}",
    "{\"prediction_id\":\"p\",\"model\":\"fr\\u0061ud\",\"prediction\":1.0,"
    "\"model_version\":\"v\\n1\",\"timestamp\":\"2026-11-22T10:15:03\\u002e5Z\"}",
    "{\"prediction_id\":\"p\",\"model\":\"bench\",\"prediction\":true,\"scores\":[0,0.25],"
    "\"f00\":1,\"c10\":\"x\",\"b14\":false,\"features\":null}",
    "{\"prediction_id\":\"p\",\"model\":\"price\",\"prediction\":\"1\"}",
};

static void run_corpus(const char *const *msgs, size_t n, struct stats *st)
{
    for (int variant = 0; variant < 2; variant++) {
        struct setup s;
        make_config(&s, variant);
        for (size_t i = 0; i < n; i++) {
            check_str(&s, msgs[i], st);
        }
        free_config(&s);
    }
}

static void test_edge_cases(void **state)
{
    (void)state;
    struct stats st = {0};
    run_corpus(edge_cases, DW_ARRAY_SIZE(edge_cases), &st);
    run_corpus(base_events, DW_ARRAY_SIZE(base_events), &st);
    assert_true(st.invalid_json > 50);
    assert_true(st.pred_ok > 5);
    assert_true(st.label_ok > 20);
}

/* nesting: jansson accepts values up to 2048 levels deep (the top level is 1) */
static void test_deep_nesting(void **state)
{
    (void)state;
    static char buf[8 * 2100];
    struct stats st = {0};
    struct setup s;
    make_config(&s, 0);
    for (int depth = 2040; depth <= 2052; depth++) {
        for (int shape = 0; shape < 4; shape++) {
            size_t n = 0;
            n += (size_t)snprintf(buf, sizeof(buf), "{\"prediction_id\":\"p\",\"label\":1,\"x\":");
            int levels = depth - 1; /* the top-level object is one */
            for (int i = 0; i < levels; i++) {
                const char *open = shape == 1 || (shape == 3 && i % 2) ? "{\"k\":" : "[";
                memcpy(buf + n, open, strlen(open));
                n += strlen(open);
            }
            if (shape == 2) {
                buf[n++] = '1'; /* a scalar one level deeper */
            }
            for (int i = levels - 1; i >= 0; i--) {
                buf[n++] = shape == 1 || (shape == 3 && i % 2) ? '}' : ']';
            }
            buf[n++] = '}';
            check_message(&s, buf, n, &st);
        }
    }
    free_config(&s);
    assert_true(st.invalid_json > 10);
    assert_true(st.label_ok > 10);

    /* and very deep input, far beyond the limit, fails cleanly */
    static char deep[200000];
    memset(deep, '[', sizeof(deep));
    make_config(&s, 0);
    char err[256];
    assert_int_equal(
        dw_decode_label(s.dec, deep, sizeof(deep), 0, &(struct dw_label){0}, err, sizeof(err)),
        DW_BAD_JSON);
    free_config(&s);
}

/* many tokens: the token array doubles while the parse goes on */
static void test_token_growth(void **state)
{
    (void)state;
    struct stats st = {0};
    struct setup s;
    make_config(&s, 0);
    static struct sb b;
    for (int members = 100; members <= 1900; members += 600) {
        b.len = 0;
        sb_add(&b, "{\"junk\":[");
        for (int i = 0; i < members; i++) {
            sb_add(&b, i ? ",{\"a\":1}" : "{\"a\":1}");
        }
        sb_add(&b, "],\"prediction_id\":\"grown\",\"label\":\"\\u00e9\"}");
        check_message(&s, b.buf, b.len, &st);
    }
    free_config(&s);
    assert_int_equal(st.label_ok, 4);
}

/*
 * Strings are scanned a word (8 bytes) at a time: every kind of byte at every position of
 * strings of 0 to 19 bytes, as a value and as a key, at every distance (0 to 9 bytes of
 * trailing blanks) from the end of the message, so that each lands in each lane of a word and
 * in the byte-at-a-time tail.
 */
static void test_string_positions(void **state)
{
    (void)state;
    static const char *const inserts[] = {
        "\x01",    "\x1f",    "\"",   "\\", "\\n",      "\\x",  "\\u00e9", "\\ud83d\\ude00",
        "\\ud83d", "\\u0000", "\x7f", " ",  "\xc3\xa9", "\x80", "\t"};
    static const char *const shapes[][2] = {
        {"{\"prediction_id\":\"p\",\"label\":\"", "\"}"},
        {"{\"prediction_id\":\"p\",\"", "\":1,\"label\":2}"},
    };
    struct stats st = {0};
    struct setup s;
    make_config(&s, 0);
    static struct sb b;
    for (size_t shape = 0; shape < DW_ARRAY_SIZE(shapes); shape++) {
        for (size_t body = 0; body < 20; body++) {
            for (size_t at = 0; at <= body; at++) {
                for (size_t k = 0; k < DW_ARRAY_SIZE(inserts); k++) {
                    for (size_t blanks = 0; blanks < 10; blanks++) {
                        b.len = 0;
                        sb_add(&b, shapes[shape][0]);
                        for (size_t i = 0; i < body; i++) {
                            sb_add(&b, i == at ? inserts[k] : "a");
                        }
                        if (at == body) {
                            sb_add(&b, inserts[k]);
                        }
                        sb_add(&b, shapes[shape][1]);
                        sb_blanks(&b, blanks);
                        check_message(&s, b.buf, b.len, &st);
                    }
                }
            }
        }
    }
    free_config(&s);
    assert_true(st.invalid_json > 1000);
    assert_true(st.invalid_utf8 > 100);
    assert_true(st.label_ok > 1000);
}

/*
 * Key lookup: the top-level keys of the field pointers and the feature names go through name
 * tables that read a key's first 8 bytes as one word (by a single load when 8 bytes are left in
 * the buffer). Keys plain and escaped, near and far from the end of the message, duplicated,
 * and sharing their first 8 bytes with a longer or shorter key.
 */
static void test_key_lookup(void **state)
{
    (void)state;
    static const char *const msgs[] = {
        "{\"prediction_id\":\"x\",\"label\":1}",
        "{\"prediction_id\":\"x\",\"l\\u0061bel\":1}",
        "{\"label\":1,\"pre\\u0064iction_id\":2}",
        "{\"label\":1,\"prediction_id\":2}",
        "{\"prediction_id\":\"x\",\"labe\":1}",
        "{\"prediction_id\":\"x\",\"labels\":1}",
        "{\"prediction_id\":\"x\",\"label\":1,\"l\\u0061bel\":2}",
        "{\"prediction_id\":\"x\",\"l\\u0061bel\":1,\"label\":2}",
        "{\"model\":\"fraud\",\"prediction\":1,\"prediction_id\":\"p\"}",
        "{\"prediction\":1,\"prediction_id\":\"p\",\"model\":\"price\"}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"zip\":1,"
        "\"amount\":2}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"amount\":2,"
        "\"z\\u0069p\":\"a\"}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{"
        "\"caf\\u00e9\":"
        "3}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"a\\/b~c\":"
        "\"v\"}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{\"countryX\":"
        "1,"
        "\"country\":\"FR\",\"countr\":2}}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"zip\":1}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"z\\u0069p\":1}",
        "{\"prediction_id\":\"p\",\"model\":\"bench\",\"prediction\":1,\"f00\":1,\"c10\":\"x\","
        "\"b14\":true}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"latency_m\":4,"
        "\"latency_msX\":5,\"latency_ms\":3}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"model_version\":\"v\","
        "\"timestamp\":1700000000,\"scores\":[0,0.5],\"label_ts\":1,\"score\":0.25}",
        "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,\"features\":{},"
        "\"features\":{\"amount\":5}}",
    };
    struct stats st = {0};
    static struct sb b;
    for (int variant = 0; variant < 2; variant++) {
        struct setup s;
        make_config(&s, variant);
        for (size_t i = 0; i < DW_ARRAY_SIZE(msgs); i++) {
            for (size_t blanks = 0; blanks < 10; blanks++) {
                b.len = 0;
                sb_add(&b, msgs[i]);
                sb_blanks(&b, blanks);
                check_message(&s, b.buf, b.len, &st);
            }
        }
        free_config(&s);
    }
    assert_true(st.pred_ok > 100);
    assert_true(st.label_ok > 50);
}

static void test_generated(void **state)
{
    (void)state;
    struct stats st = {0};
    struct setup s[2];
    make_config(&s[0], 0);
    make_config(&s[1], 1);
    static struct sb b;
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < N_GENERATED; i++) {
        gen_event(&b);
        check_message(&s[i % 2], b.buf, b.len, &st);
    }
    free_config(&s[1]);
    free_config(&s[0]);
    printf("[ INFO     ] generated: %ld messages, %ld invalid JSON, %ld predictions and %ld labels "
           "compared field by field\n",
           st.messages, st.invalid_json, st.pred_ok, st.label_ok);
    assert_true(st.invalid_json > N_GENERATED / 10);
    assert_true(st.pred_ok > N_GENERATED / 50);
    assert_true(st.label_ok > N_GENERATED / 20);
}

static void test_mutations(void **state)
{
    (void)state;
    struct stats st = {0};
    struct setup s[2];
    make_config(&s[0], 0);
    make_config(&s[1], 1);
    static struct sb b;
    rng_state = 0xD1B54A32D192ED03ULL;
    for (int i = 0; i < N_MUTATIONS; i++) {
        if (i % 4 == 3) {
            gen_event(&b); /* mutate generated events too */
        } else {
            b.len = 0;
            sb_add(&b, base_events[rnd_below(DW_ARRAY_SIZE(base_events))]);
        }
        mutate(&b);
        check_message(&s[i % 2], b.buf, b.len, &st);
    }
    free_config(&s[1]);
    free_config(&s[0]);
    printf("[ INFO     ] mutations: %ld messages, %ld invalid UTF-8, %ld invalid JSON, %ld not "
           "objects, %ld predictions and %ld labels compared field by field\n",
           st.messages, st.invalid_utf8, st.invalid_json, st.not_object, st.pred_ok, st.label_ok);
    assert_int_equal(st.messages, N_MUTATIONS);
    /* the corpus really exercises both sides */
    assert_true(st.invalid_json > N_MUTATIONS / 4);
    assert_true(st.invalid_utf8 > N_MUTATIONS / 100);
    assert_true(st.messages - st.invalid_utf8 - st.invalid_json - st.not_object > N_MUTATIONS / 10);
    assert_true(st.pred_ok + st.label_ok > N_MUTATIONS / 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),   cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_token_growth), cmocka_unit_test(test_string_positions),
        cmocka_unit_test(test_key_lookup),   cmocka_unit_test(test_generated),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
