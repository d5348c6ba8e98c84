/*
 * dw_decode.c - prediction and label events from raw Kafka payloads.
 *
 * Why it looks like this:
 *
 * - This is the hot path (every message of both topics goes through it), so all the work that
 *   does not depend on the message is done once in dw_decoder_new(): the configured field paths
 *   (JSON pointers, RFC 6901) are split and unescaped into segment arrays, model name lengths
 *   are cached, and the scratch buffers that hold number texts (integer ids, numeric versions,
 *   categorical features sent as numbers) are allocated up front. Per message the only
 *   allocation is jansson's document, which is kept alive until the next call (or
 *   dw_decoder_reset()) so that the output can point into it instead of copying strings.
 *
 * - The file has three layers that do not leak into one another, so that jansson can later be
 *   replaced by a zero-allocation tokenizer behind the same interface:
 *     1. checks on the raw bytes (size, UTF-8) and the parse (doc_load(), the only function
 *        that calls json_loadb),
 *     2. a tiny value API over the parsed document (ptr_get(), jv_*()): pointer lookup, kinds,
 *        and the canonical text of a number,
 *     3. field extraction (get_id(), get_class(), get_features(), ...), which only uses layer 2
 *        and implements the rules in docs/messages.md.
 *
 * - Classes are compared as text everywhere in driftwatch (DESIGN.md section 8): a string as it
 *   is, a number or boolean as its JSON text. Reals print like Python's repr / json.dumps
 *   (shortest digits that round-trip, fixed notation for 1e-4 <= |v| < 1e16, and ".0" on
 *   integral values) so that 1.0 -> "1.0", 0.1 -> "0.1" and 100.0 -> "100.0".
 *
 * - A bad message is never fatal: every check returns a reason code and an errstr naming the
 *   field, and the caller counts it and sends it to the dead-letter topic.
 *
 * @locality one decoder per consumer thread; a decoder is not thread-safe.
 */
#include "driftwatch/dw_decode.h"

#include "driftwatch/dw_common.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bytes; holds the JSON text of any number: an int64 (20 chars) or a real such as
 * "-2.2250738585072014e-308" (24 chars), plus NUL */
#define NUM_TEXT_MAX 32

/* seconds; a numeric timestamp with |v| below this is epoch seconds (1e11 s is the year 5138),
 * at or above it epoch milliseconds (1e11 ms is 1973-03-03) */
#define EPOCH_SECONDS_LIMIT 100000000000LL

/* milliseconds; numeric timestamps beyond +-9e15 ms (about 285,000 years) are rejected, which
 * keeps every later window computation far away from int64 overflow */
#define EPOCH_MS_LIMIT 9.0e15

/* bytes; at most this much of a message-supplied text (model name, bad timestamp) is quoted in
 * errstr */
#define ERR_QUOTE_MAX 64

/* --------------------------------------------------------------------------------------------
 * JSON pointers, compiled once
 * ------------------------------------------------------------------------------------------ */

struct ptr_seg {
    char *key;       /* unescaped ("~1" -> "/", "~0" -> "~"), NUL-terminated */
    size_t len;      /* bytes of key */
    long long index; /* the segment as an array index, or -1 when it is not a valid index */
};

struct json_ptr {
    int used;      /* 0: an optional field switched off by an empty pointer */
    size_t n_segs; /* 0 with used = 1: the whole document */
    struct ptr_seg *segs;
};

enum ptr_mode {
    PTR_REQUIRED, /* "" is rejected: the whole document can never be an id, model or class */
    PTR_OPTIONAL, /* "" means the field is not used */
    PTR_DOCUMENT  /* "" means the whole document (features: flat events) */
};

static void ptr_free(struct json_ptr *p)
{
    for (size_t i = 0; i < p->n_segs; i++) {
        free(p->segs[i].key);
    }
    free(p->segs);
    memset(p, 0, sizeof(*p));
}

/* RFC 6901 array index: "0" or digits without a leading zero ("-" and anything else: none). */
static long long seg_index(const char *s, size_t len)
{
    if (len == 0 || len > 18 || (len > 1 && s[0] == '0')) {
        return -1;
    }
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int ptr_compile(struct json_ptr *p, const char *text, enum ptr_mode mode, const char *key,
                       char *errstr, size_t errstr_size)
{
    memset(p, 0, sizeof(*p));
    if (!text || !*text) {
        if (mode == PTR_REQUIRED) {
            return dw_err(errstr, errstr_size, "%s: a JSON pointer is required (e.g. \"/%s\")", key,
                          strrchr(key, '.') ? strrchr(key, '.') + 1 : key);
        }
        p->used = mode == PTR_DOCUMENT;
        return 0;
    }
    if (text[0] != '/') {
        return dw_err(errstr, errstr_size,
                      "%s: \"%s\" is not a JSON pointer (must be empty or start with '/')", key,
                      text);
    }
    size_t n = 0;
    for (const char *c = text; *c; c++) {
        n += *c == '/';
    }
    p->segs = dw_calloc(n, sizeof(*p->segs));
    p->used = 1;
    const char *s = text + 1;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(s, '/');
        size_t raw = end ? (size_t)(end - s) : strlen(s);
        struct ptr_seg *seg = &p->segs[i];
        seg->key = dw_malloc(raw + 1);
        p->n_segs = i + 1;
        size_t o = 0;
        for (size_t k = 0; k < raw; k++) {
            if (s[k] != '~') {
                seg->key[o++] = s[k];
                continue;
            }
            if (k + 1 < raw && s[k + 1] == '0') {
                seg->key[o++] = '~';
            } else if (k + 1 < raw && s[k + 1] == '1') {
                seg->key[o++] = '/';
            } else {
                dw_err(errstr, errstr_size,
                       "%s: \"%s\": '~' must be followed by '0' or '1' (RFC 6901)", key, text);
                goto err;
            }
            k++;
        }
        seg->key[o] = '\0';
        seg->len = o;
        seg->index = seg_index(seg->key, o);
        s += raw + 1;
    }
    return 0;

err:
    ptr_free(p);
    return -1;
}

/* --------------------------------------------------------------------------------------------
 * Value layer: the only code below doc_load() that knows about jansson.
 * ------------------------------------------------------------------------------------------ */

typedef json_t jv_t;

static const jv_t *ptr_get(const struct json_ptr *p, const jv_t *root)
{
    if (!p->used) {
        return NULL;
    }
    const jv_t *v = root;
    for (size_t i = 0; i < p->n_segs && v; i++) {
        const struct ptr_seg *seg = &p->segs[i];
        if (json_is_object(v)) {
            v = json_object_getn(v, seg->key, seg->len);
        } else if (json_is_array(v)) {
            v = seg->index >= 0 ? json_array_get(v, (size_t)seg->index) : NULL;
        } else {
            v = NULL;
        }
    }
    return v;
}

/* absent and null are the same thing for every field */
static int jv_missing(const jv_t *v)
{
    return !v || json_is_null(v);
}

static const char *jv_type_name(const jv_t *v)
{
    if (!v) {
        return "nothing";
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/*
 * Shortest text of a real that reads back to the same double, printed like Python's repr:
 * fixed notation for 1e-4 <= |v| < 1e16 with ".0" on integral values, otherwise "1.5e+16".
 * Rounding to more digits never moves further from v, so "round-trips with N digits" is
 * monotone in N and a binary search over 1..17 digits finds the shortest in <= 5 tries.
 */
static size_t real_text(double v, char *buf, size_t size)
{
    char tmp[NUM_TEXT_MAX];
    int n;
    if (v == floor(v) && fabs(v) < 1e15) {
        /* integral and exact in fixed notation: the common case, one snprintf */
        n = snprintf(buf, size, "%.1f", v);
        return n < 0 ? 0 : DW_MIN((size_t)n, size - 1);
    }
    int lo = 1;
    int hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(tmp, sizeof(tmp), "%.*e", mid - 1, v);
        if (strtod(tmp, NULL) == v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    snprintf(tmp, sizeof(tmp), "%.*e", lo - 1, v);
    const char *e = strchr(tmp, 'e');
    long exp10 = e ? strtol(e + 1, NULL, 10) : 0;
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = lo - 1 - (int)exp10;
        n = snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, v);
        if (n > 0 && decimals <= 0 && (size_t)n + 2 < size) {
            memcpy(buf + n, ".0", 3);
            n += 2;
        }
    } else {
        n = snprintf(buf, size, "%s", tmp);
    }
    return n < 0 ? 0 : DW_MIN((size_t)n, size - 1);
}

/* The JSON text of a number (integer or real), see real_text(). buf has NUM_TEXT_MAX bytes. */
static size_t jv_number_text(const jv_t *v, char *buf, size_t size)
{
    if (json_is_integer(v)) {
        int n = snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return n < 0 ? 0 : DW_MIN((size_t)n, size - 1);
    }
    return real_text(json_real_value(v), buf, size);
}

/* --------------------------------------------------------------------------------------------
 * Decoder
 * ------------------------------------------------------------------------------------------ */

struct dw_decoder {
    const struct dw_config *cfg; /* borrowed; must outlive the decoder, unchanged */
    struct json_ptr p_id;
    struct json_ptr p_model;
    struct json_ptr p_version;
    struct json_ptr p_ts;
    struct json_ptr p_features;
    struct json_ptr p_pred;
    struct json_ptr p_score;
    struct json_ptr p_latency;
    struct json_ptr p_label_id;
    struct json_ptr p_label;
    struct json_ptr p_label_ts;
    size_t *model_name_len; /* strlen(cfg->models[i].name) */
    size_t max_features;
    json_t *doc;               /* the current document, or NULL */
    char id_buf[NUM_TEXT_MAX]; /* an integer id as decimal text */
    char version_buf[NUM_TEXT_MAX];
    char *feat_text; /* max_features * NUM_TEXT_MAX: categorical numbers as text */
};

const char *dw_bad_reason_name(enum dw_bad_reason r)
{
    static const char *const names[DW_BAD__COUNT] = {
        [DW_BAD_NONE] = "none",
        [DW_BAD_TOO_LARGE] = "too_large",
        [DW_BAD_UTF8] = "invalid_utf8",
        [DW_BAD_JSON] = "invalid_json",
        [DW_BAD_NOT_OBJECT] = "not_object",
        [DW_BAD_MISSING_ID] = "missing_id",
        [DW_BAD_MISSING_FIELD] = "missing_field",
        [DW_BAD_WRONG_TYPE] = "wrong_type",
        [DW_BAD_UNKNOWN_MODEL] = "unknown_model",
        [DW_BAD_TIMESTAMP] = "bad_timestamp",
    };
    if ((int)r < 0 || r >= DW_BAD__COUNT) {
        return "unknown";
    }
    return names[r];
}

void dw_decoder_destroy(struct dw_decoder *dec)
{
    if (!dec) {
        return;
    }
    dw_decoder_reset(dec);
    free(dec->feat_text);
    free(dec->model_name_len);
    ptr_free(&dec->p_label_ts);
    ptr_free(&dec->p_label);
    ptr_free(&dec->p_label_id);
    ptr_free(&dec->p_latency);
    ptr_free(&dec->p_score);
    ptr_free(&dec->p_pred);
    ptr_free(&dec->p_features);
    ptr_free(&dec->p_ts);
    ptr_free(&dec->p_version);
    ptr_free(&dec->p_model);
    ptr_free(&dec->p_id);
    free(dec);
}

struct dw_decoder *dw_decoder_new(const struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg) {
        dw_err(errstr, errstr_size, "decoder: no configuration");
        return NULL;
    }
    struct dw_decoder *dec = dw_calloc(1, sizeof(*dec));
    dec->cfg = cfg;
    const struct {
        struct json_ptr *p;
        const char *text;
        enum ptr_mode mode;
        const char *key;
    } ptrs[] = {
        {&dec->p_id, cfg->field_prediction_id, PTR_REQUIRED, "input.fields.prediction_id"},
        {&dec->p_model, cfg->field_model, PTR_REQUIRED, "input.fields.model"},
        {&dec->p_version, cfg->field_model_version, PTR_OPTIONAL, "input.fields.model_version"},
        {&dec->p_ts, cfg->field_timestamp, PTR_OPTIONAL, "input.fields.timestamp"},
        {&dec->p_features, cfg->field_features, PTR_DOCUMENT, "input.fields.features"},
        {&dec->p_pred, cfg->field_prediction, PTR_REQUIRED, "input.fields.prediction"},
        {&dec->p_score, cfg->field_score, PTR_OPTIONAL, "input.fields.score"},
        {&dec->p_latency, cfg->field_latency_ms, PTR_OPTIONAL, "input.fields.latency_ms"},
        {&dec->p_label_id, cfg->field_label_id, PTR_REQUIRED, "input.fields.label_id"},
        {&dec->p_label, cfg->field_label, PTR_REQUIRED, "input.fields.label"},
        {&dec->p_label_ts, cfg->field_label_timestamp, PTR_OPTIONAL,
         "input.fields.label_timestamp"},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(ptrs); i++) {
        if (ptr_compile(ptrs[i].p, ptrs[i].text, ptrs[i].mode, ptrs[i].key, errstr, errstr_size) !=
            0) {
            goto err;
        }
    }
    dec->model_name_len = dw_calloc(cfg->n_models, sizeof(size_t));
    for (size_t m = 0; m < cfg->n_models; m++) {
        const struct dw_model_cfg *model = &cfg->models[m];
        if (!model->name || (model->n_features > 0 && !model->features)) {
            dw_err(errstr, errstr_size, "models[%zu]: no name or no feature list", m);
            goto err;
        }
        for (size_t f = 0; f < model->n_features; f++) {
            if (!model->features[f].name) {
                dw_err(errstr, errstr_size, "models.%s.features[%zu]: no name", model->name, f);
                goto err;
            }
        }
        dec->model_name_len[m] = strlen(model->name);
        dec->max_features = DW_MAX(dec->max_features, model->n_features);
    }
    dec->feat_text = dw_calloc(DW_MAX(dec->max_features, (size_t)1), NUM_TEXT_MAX);
    return dec;

err:
    dw_decoder_destroy(dec);
    return NULL;
}

size_t dw_decoder_max_features(const struct dw_decoder *dec)
{
    return dec->max_features;
}

struct dw_prediction *dw_prediction_new(const struct dw_decoder *dec)
{
    return dw_calloc(1, sizeof(struct dw_prediction) + dec->max_features * sizeof(struct dw_val));
}

void dw_decoder_reset(struct dw_decoder *dec)
{
    if (dec && dec->doc) {
        json_decref(dec->doc);
        dec->doc = NULL;
    }
}

/* --------------------------------------------------------------------------------------------
 * Raw bytes and parse
 * ------------------------------------------------------------------------------------------ */

/*
 * Offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode 15,
 * table 3-7), or len. The second-byte ranges exclude overlongs (E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..BF, F5..FF); C0, C1 and
 * stray continuation bytes 80..BF never start a sequence. ASCII runs go 8 bytes at a time.
 */
static size_t utf8_first_invalid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, sizeof(w));
            if (w & 0x8080808080808080ULL) {
                break;
            }
            i += 8;
        }
        if (i >= len) {
            break;
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            n = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            n = 2;
        } else if (c == 0xF0) {
            n = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3;
            hi = 0x8F;
        } else {
            return i;
        }
        if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi) {
            return i;
        }
        for (size_t k = 2; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return i;
            }
        }
        i += n + 1;
    }
    return len;
}

int dw_utf8_valid(const void *buf, size_t len)
{
    if (len == 0) {
        return 1;
    }
    return buf && utf8_first_invalid(buf, len) == len;
}

static enum dw_bad_reason doc_load(struct dw_decoder *dec, const void *buf, size_t len,
                                   char *errstr, size_t errstr_size)
{
    dw_decoder_reset(dec);
    if (!buf) {
        buf = "";
        len = 0;
    }
    int64_t max = dec->cfg->max_message_bytes;
    if (max > 0 && (uint64_t)len > (uint64_t)max) {
        dw_err(errstr, errstr_size, "message: %zu bytes, more than input.max_message_bytes (%lld)",
               len, (long long)max);
        return DW_BAD_TOO_LARGE;
    }
    size_t bad = utf8_first_invalid(buf, len);
    if (bad != len) {
        dw_err(errstr, errstr_size, "message: invalid UTF-8 at byte %zu (0x%02x)", bad,
               ((const unsigned char *)buf)[bad]);
        return DW_BAD_UTF8;
    }
    json_error_t jerr;
    dec->doc = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    if (!dec->doc) {
        dw_err(errstr, errstr_size, "message: invalid JSON at line %d, column %d: %s", jerr.line,
               jerr.column, jerr.text);
        return DW_BAD_JSON;
    }
    if (!json_is_object(dec->doc)) {
        dw_err(errstr, errstr_size, "message: top level is %s, expected an object",
               jv_type_name(dec->doc));
        return DW_BAD_NOT_OBJECT;
    }
    return DW_BAD_NONE;
}

/* --------------------------------------------------------------------------------------------
 * Field extraction: only the value layer above, never jansson parse calls.
 * ------------------------------------------------------------------------------------------ */

static enum dw_bad_reason bad(enum dw_bad_reason r, char *errstr, size_t errstr_size,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum dw_bad_reason bad(enum dw_bad_reason r, char *errstr, size_t errstr_size,
                              const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return r;
}

static enum dw_bad_reason get_id(struct dw_decoder *dec, const jv_t *v, const char **id,
                                 size_t *id_len, char *errstr, size_t errstr_size)
{
    const char *field = "prediction_id";
    if (jv_missing(v)) {
        return bad(DW_BAD_MISSING_ID, errstr, errstr_size, "%s: missing", field);
    }
    if (json_is_integer(v)) {
        *id_len = jv_number_text(v, dec->id_buf, sizeof(dec->id_buf));
        *id = dec->id_buf;
        return DW_BAD_NONE;
    }
    if (!json_is_string(v)) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                   "%s: expected a string or an integer, got %s", field, jv_type_name(v));
    }
    size_t len = json_string_length(v);
    if (len == 0) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "%s: empty string", field);
    }
    if (len > DW_ID_MAX) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "%s: %zu bytes, longer than %d", field,
                   len, DW_ID_MAX);
    }
    *id = json_string_value(v);
    *id_len = len;
    return DW_BAD_NONE;
}

static enum dw_bad_reason get_model(const struct dw_decoder *dec, const jv_t *v,
                                    struct dw_prediction *out, char *errstr, size_t errstr_size)
{
    if (jv_missing(v)) {
        return bad(DW_BAD_MISSING_FIELD, errstr, errstr_size, "model: missing");
    }
    if (!json_is_string(v)) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "model: expected a string, got %s",
                   jv_type_name(v));
    }
    const char *name = json_string_value(v);
    size_t len = json_string_length(v);
    const struct dw_config *cfg = dec->cfg;
    for (size_t m = 0; m < cfg->n_models; m++) {
        if (dec->model_name_len[m] == len && memcmp(cfg->models[m].name, name, len) == 0) {
            out->model = &cfg->models[m];
            out->model_idx = m;
            return DW_BAD_NONE;
        }
    }
    return bad(DW_BAD_UNKNOWN_MODEL, errstr, errstr_size,
               "model: \"%.*s%s\" is not configured under models", (int)DW_MIN(len, ERR_QUOTE_MAX),
               name, len > ERR_QUOTE_MAX ? "..." : "");
}

static enum dw_bad_reason get_version(struct dw_decoder *dec, const jv_t *v,
                                      struct dw_prediction *out, char *errstr, size_t errstr_size)
{
    if (jv_missing(v)) {
        out->version = "";
        out->version_len = 0;
    } else if (json_is_string(v)) {
        out->version = json_string_value(v);
        out->version_len = json_string_length(v);
    } else if (json_is_number(v)) {
        out->version_len = jv_number_text(v, dec->version_buf, sizeof(dec->version_buf));
        out->version = dec->version_buf;
    } else {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                   "model_version: expected a string or a number, got %s", jv_type_name(v));
    }
    return DW_BAD_NONE;
}

static enum dw_bad_reason get_timestamp(const jv_t *v, int64_t kafka_ts_ms, int64_t *ts_ms,
                                        char *errstr, size_t errstr_size)
{
    const char *field = "timestamp";
    if (jv_missing(v)) {
        *ts_ms = kafka_ts_ms;
        return DW_BAD_NONE;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > -EPOCH_SECONDS_LIMIT && i < EPOCH_SECONDS_LIMIT) {
            *ts_ms = (int64_t)i * 1000;
            return DW_BAD_NONE;
        }
        if ((double)i < -EPOCH_MS_LIMIT || (double)i > EPOCH_MS_LIMIT) {
            return bad(DW_BAD_TIMESTAMP, errstr, errstr_size, "%s: %lld is out of range", field,
                       (long long)i);
        }
        *ts_ms = (int64_t)i;
        return DW_BAD_NONE;
    }
    if (json_is_real(v)) {
        double r = json_real_value(v);
        if (fabs(r) < (double)EPOCH_SECONDS_LIMIT) {
            /* Seconds with a fraction: round to the microsecond first (the precision a double
             * carries for current dates) so that 1.123 is 1123 ms and not 1122.99999 -> 1122,
             * then round down to the millisecond. */
            int64_t us = (int64_t)llround(r * 1e6);
            *ts_ms = dw_floor_div(us, 1000);
            return DW_BAD_NONE;
        }
        if (fabs(r) > EPOCH_MS_LIMIT) {
            return bad(DW_BAD_TIMESTAMP, errstr, errstr_size, "%s: %g is out of range", field, r);
        }
        *ts_ms = (int64_t)floor(r);
        return DW_BAD_NONE;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (dw_time_parse_rfc3339(s, len, ts_ms) != 0) {
            return bad(DW_BAD_TIMESTAMP, errstr, errstr_size, "%s: \"%.*s%s\" is not RFC 3339",
                       field, (int)DW_MIN(len, ERR_QUOTE_MAX), s, len > ERR_QUOTE_MAX ? "..." : "");
        }
        return DW_BAD_NONE;
    }
    return bad(DW_BAD_TIMESTAMP, errstr, errstr_size,
               "%s: expected an RFC 3339 string or an epoch number, got %s", field,
               jv_type_name(v));
}

/* prediction or label: a class as text (and its number), or a regression target */
static enum dw_bad_reason get_class(const jv_t *v, const char *field, int regression,
                                    struct dw_class *c, char *errstr, size_t errstr_size)
{
    c->text[0] = '\0';
    c->len = 0;
    c->is_num = 0;
    c->num = 0.0;
    if (jv_missing(v)) {
        return bad(DW_BAD_MISSING_FIELD, errstr, errstr_size, "%s: missing", field);
    }
    if (json_is_number(v)) {
        c->len = jv_number_text(v, c->text, sizeof(c->text));
        c->is_num = 1;
        c->num = json_number_value(v);
        return DW_BAD_NONE;
    }
    if (regression) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                   "%s: expected a number (regression model), got %s", field, jv_type_name(v));
    }
    if (json_is_string(v)) {
        size_t len = json_string_length(v);
        if (len > DW_CLASS_MAX) {
            return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                       "%s: class label of %zu bytes, longer than %d", field, len, DW_CLASS_MAX);
        }
        memcpy(c->text, json_string_value(v), len);
        c->text[len] = '\0';
        c->len = len;
        return DW_BAD_NONE;
    }
    if (json_is_boolean(v)) {
        const char *t = json_is_true(v) ? "true" : "false";
        c->len = strlen(t);
        memcpy(c->text, t, c->len + 1);
        return DW_BAD_NONE;
    }
    return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
               "%s: expected a string, number or boolean, got %s", field, jv_type_name(v));
}

static enum dw_bad_reason get_score(const jv_t *v, const struct dw_model_cfg *model,
                                    struct dw_prediction *out, char *errstr, size_t errstr_size)
{
    out->has_score = 0;
    out->score = 0.0;
    if (jv_missing(v)) {
        return DW_BAD_NONE;
    }
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (!(s >= 0.0 && s <= 1.0)) {
            return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "score: %g is outside [0, 1]", s);
        }
        out->has_score = 1;
        out->score = s;
        return DW_BAD_NONE;
    }
    if (json_is_object(v)) {
        /* class -> probability: keep the positive class's entry when it is a probability */
        const char *pos = model->positive_class ? model->positive_class : "1";
        const jv_t *e = json_object_get(v, pos);
        if (e && json_is_number(e)) {
            double s = json_number_value(e);
            if (s >= 0.0 && s <= 1.0) {
                out->has_score = 1;
                out->score = s;
            }
        }
        return DW_BAD_NONE;
    }
    return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
               "score: expected a number or an object, got %s", jv_type_name(v));
}

static enum dw_bad_reason get_latency(const jv_t *v, struct dw_prediction *out, char *errstr,
                                      size_t errstr_size)
{
    out->has_latency = 0;
    out->latency_ms = 0.0;
    if (jv_missing(v)) {
        return DW_BAD_NONE;
    }
    if (!json_is_number(v)) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "latency_ms: expected a number, got %s",
                   jv_type_name(v));
    }
    double l = json_number_value(v);
    if (l < 0.0) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "latency_ms: %g is negative", l);
    }
    out->has_latency = 1;
    out->latency_ms = l;
    return DW_BAD_NONE;
}

static enum dw_bad_reason get_features(struct dw_decoder *dec, const jv_t *obj,
                                       const struct dw_model_cfg *model, struct dw_prediction *out,
                                       char *errstr, size_t errstr_size)
{
    size_t n = model->n_features;
    for (size_t i = 0; i < n; i++) {
        struct dw_val *val = &out->features[i];
        val->kind = DW_VAL_MISSING;
        val->num = 0.0;
        val->str = NULL;
        val->len = 0;
    }
    if (jv_missing(obj)) {
        return DW_BAD_NONE;
    }
    if (!json_is_object(obj)) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "features: expected an object, got %s",
                   jv_type_name(obj));
    }
    for (size_t i = 0; i < n; i++) {
        const struct dw_feature_cfg *f = &model->features[i];
        struct dw_val *val = &out->features[i];
        const jv_t *v = json_object_get(obj, f->name);
        if (jv_missing(v)) {
            continue;
        }
        if (f->type == DW_FEATURE_NUMERIC) {
            if (json_is_number(v)) {
                val->num = json_number_value(v);
            } else if (json_is_boolean(v)) {
                val->num = json_is_true(v) ? 1.0 : 0.0;
            } else {
                return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                           "features.%s: expected a number, got %s", f->name, jv_type_name(v));
            }
            val->kind = DW_VAL_NUM;
            continue;
        }
        if (json_is_string(v)) {
            val->str = json_string_value(v);
            val->len = json_string_length(v);
        } else if (json_is_number(v)) {
            char *buf = dec->feat_text + i * NUM_TEXT_MAX;
            val->len = jv_number_text(v, buf, NUM_TEXT_MAX);
            val->str = buf;
        } else if (json_is_boolean(v)) {
            val->str = json_is_true(v) ? "true" : "false";
            val->len = strlen(val->str);
        } else {
            return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                       "features.%s: expected a string, number or boolean, got %s", f->name,
                       jv_type_name(v));
        }
        val->kind = DW_VAL_STR;
    }
    return DW_BAD_NONE;
}

enum dw_bad_reason dw_decode_prediction(struct dw_decoder *dec, const void *buf, size_t len,
                                        int64_t kafka_ts_ms, struct dw_prediction *out,
                                        char *errstr, size_t errstr_size)
{
    out->id = NULL;
    out->id_len = 0;
    out->model = NULL;
    out->model_idx = 0;
    out->version = "";
    out->version_len = 0;
    out->ts_ms = kafka_ts_ms;
    out->has_score = 0;
    out->score = 0.0;
    out->has_latency = 0;
    out->latency_ms = 0.0;
    memset(&out->pred, 0, sizeof(out->pred));
    if (errstr && errstr_size > 0) {
        errstr[0] = '\0';
    }

    enum dw_bad_reason r = doc_load(dec, buf, len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    const jv_t *root = dec->doc;
    r = get_id(dec, ptr_get(&dec->p_id, root), &out->id, &out->id_len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_model(dec, ptr_get(&dec->p_model, root), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    const struct dw_model_cfg *model = out->model;
    r = get_version(dec, ptr_get(&dec->p_version, root), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_timestamp(ptr_get(&dec->p_ts, root), kafka_ts_ms, &out->ts_ms, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_class(ptr_get(&dec->p_pred, root), "prediction", model->task == DW_TASK_REGRESSION,
                  &out->pred, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_score(ptr_get(&dec->p_score, root), model, out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_latency(ptr_get(&dec->p_latency, root), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    return get_features(dec, ptr_get(&dec->p_features, root), model, out, errstr, errstr_size);
}

enum dw_bad_reason dw_decode_label(struct dw_decoder *dec, const void *buf, size_t len,
                                   int64_t kafka_ts_ms, struct dw_label *out, char *errstr,
                                   size_t errstr_size)
{
    out->id = NULL;
    out->id_len = 0;
    out->ts_ms = kafka_ts_ms;
    memset(&out->label, 0, sizeof(out->label));
    if (errstr && errstr_size > 0) {
        errstr[0] = '\0';
    }

    enum dw_bad_reason r = doc_load(dec, buf, len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    const jv_t *root = dec->doc;
    r = get_id(dec, ptr_get(&dec->p_label_id, root), &out->id, &out->id_len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_timestamp(ptr_get(&dec->p_label_ts, root), kafka_ts_ms, &out->ts_ms, errstr,
                      errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    /* labels carry no model: a number is kept as text and as number (classification or
     * regression is decided at the join, where the prediction's model is known) */
    return get_class(ptr_get(&dec->p_label, root), "label", 0, &out->label, errstr, errstr_size);
}
