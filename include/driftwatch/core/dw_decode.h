/*
 * dw_decode.h - prediction and label events from raw Kafka payloads.
 *
 * The decoder validates size, UTF-8 and JSON, then reads the configured field paths (JSON
 * pointers, RFC 6901) into compact structs. Strings in the output point into the decoder's
 * current document and stay valid until the next decode call or dw_decoder_reset(); classes are
 * copied as text (a string as it is, a number or boolean as its JSON text, so 1 and "1" are the
 * same class). Nothing here does I/O. A bad message yields a reason code (counted and sent to
 * the dead-letter topic by the caller) and a message naming the field.
 */
#ifndef DW_DECODE_H
#define DW_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_config.h"

#define DW_ID_MAX 256   /* bytes; a longer prediction_id is rejected (reason wrong_type) */
#define DW_CLASS_MAX 64 /* bytes; a longer class label is rejected (reason wrong_type) */

enum dw_bad_reason {
    DW_BAD_NONE = 0,
    DW_BAD_TOO_LARGE,     /* payload larger than input.max_message_bytes */
    DW_BAD_UTF8,          /* payload is not valid UTF-8 */
    DW_BAD_TOO_DEEP,      /* arrays/objects nested deeper than input.max_depth */
    DW_BAD_JSON,          /* payload does not parse as JSON */
    DW_BAD_NOT_OBJECT,    /* top level is not an object */
    DW_BAD_MISSING_ID,    /* no prediction_id */
    DW_BAD_MISSING_FIELD, /* another required field absent (model, prediction, label) */
    DW_BAD_WRONG_TYPE,    /* a field has the wrong JSON type or is out of range */
    DW_BAD_UNKNOWN_MODEL, /* model not configured under models: */
    DW_BAD_TIMESTAMP,     /* timestamp present but not RFC 3339 / epoch number */
    DW_BAD_TIME_RANGE,    /* event time beyond input.max_*_skew of the Kafka timestamp */
    /* a class or a version beyond models.<m>.max_classes / max_versions (dw_part.c) */
    DW_BAD_TOO_MANY_CLASSES,
    DW_BAD_TOO_MANY_VERSIONS,
    DW_BAD_STATUS, /* the serving status (input.fields.status) is an object, array or non-finite */
    DW_BAD__COUNT
};

/** @returns the reason's metric label / dead-letter name, e.g. "invalid_json". */
const char *dw_bad_reason_name(enum dw_bad_reason r);

enum dw_val_kind { DW_VAL_MISSING = 0, DW_VAL_NUM, DW_VAL_STR };

/** @brief One feature value, typed by the model's configuration. */
struct dw_val {
    enum dw_val_kind kind; /* MISSING for null or absent key */
    double num;            /* numeric features; NAN, +INFINITY or -INFINITY for the tokens NaN,
                            * Infinity, -Infinity (only with input.non_finite = count) */
    const char *str;       /* categorical features: text (a number/bool as its JSON text, a
                            * non-finite token as its text: "NaN", "Infinity", "-Infinity") */
    size_t len;
};

/** @brief A class label or regression target: text for classification, number when numeric. */
struct dw_class {
    char text[DW_CLASS_MAX + 1]; /* NUL-terminated */
    size_t len;
    int is_num;
    double num;
};

struct dw_prediction {
    const char *id;
    size_t id_len;
    const struct dw_model_cfg *model; /* from the config; never NULL on success */
    size_t model_idx;                 /* index into cfg->models */
    const char *version;              /* "" when absent */
    size_t version_len;
    int64_t ts_ms; /* event time; the Kafka timestamp when absent */
    struct dw_class pred;
    int no_pred; /* 1: no predicted class (a profile row without one): not in the class counts */
    int has_score;
    double score; /* positive-class probability (binary) */
    int has_latency;
    double latency_ms;
    int has_status;   /* input.fields.status configured and present (not null) */
    int status_error; /* the status is one of input.error_values (see dw_decode_status_error) */
    struct dw_val features[]; /* flexible array sized by dw_decoder_max_features() */
};

struct dw_label {
    const char *id;
    size_t id_len;
    int64_t ts_ms; /* the Kafka timestamp when absent */
    struct dw_class label;
};

struct dw_decoder;

/** @brief Compiles the configured JSON pointers. @returns NULL with errstr on a bad pointer. */
struct dw_decoder *dw_decoder_new(const struct dw_config *cfg, char *errstr, size_t errstr_size);
void dw_decoder_destroy(struct dw_decoder *dec);

/** @returns the largest feature count over the configured models (size of features[]). */
size_t dw_decoder_max_features(const struct dw_decoder *dec);

/** @brief Allocates a dw_prediction with room for every model's features (reuse it). */
struct dw_prediction *dw_prediction_new(const struct dw_decoder *dec);

/**
 * @brief Decodes a prediction event. features[i] follows out->model->features[i].
 * @param kafka_ts_ms the message's Kafka timestamp (used when the event has none).
 * @returns DW_BAD_NONE, or the reason with errstr naming the field.
 */
enum dw_bad_reason dw_decode_prediction(struct dw_decoder *dec, const void *buf, size_t len,
                                        int64_t kafka_ts_ms, struct dw_prediction *out,
                                        char *errstr, size_t errstr_size);

/** @brief Decodes a label event. */
enum dw_bad_reason dw_decode_label(struct dw_decoder *dec, const void *buf, size_t len,
                                   int64_t kafka_ts_ms, struct dw_label *out, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Whether a serving status, as text (a string as it is, a number or boolean as its JSON
 *        text), means a failed request: one of cfg->error_values when the list was given, else
 *        "error", "timeout" or an integer >= 500 (DW_STATUS_ERROR_MIN; digits without a sign or
 *        leading zero, so 503 and "503" but not 503.0).
 * @returns 1 for an error, 0 for served ok.
 */
int dw_decode_status_error(const struct dw_config *cfg, const char *text, size_t len);

#define DW_STATUS_ERROR_MIN                                                                        \
    500 /* the default: integer statuses from here on are errors (HTTP 5xx) */

/** @brief Releases the current document (the output's strings become invalid). */
void dw_decoder_reset(struct dw_decoder *dec);

/**
 * @brief The text of a finite JSON real as a class or categorical value: dw_fmt_double()'s
 *        text with ".0" on an integral value in fixed notation, as Python's repr() and
 *        json.dumps() print it ("1.0", "100.0", "-0.0", "0.1", "1e+16", "2.5e-07").
 * @returns the length of the text (buf of DW_FMT_DOUBLE_SIZE bytes holds it).
 */
size_t dw_decode_real_text(double v, char *buf, size_t size);

/** @returns 1 when buf is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int dw_utf8_valid(const void *buf, size_t len);

#define DW_DEAD_LETTER_PAYLOAD_MAX 1024 /* bytes of an oversize payload kept in its dead letter */

/**
 * @brief The dead-letter record of an unusable message (docs/messages.md): reason, error, source
 *        topic, partition and offset, payload size, and the payload as text when it is valid
 *        UTF-8, else base64 (too_large: its first DW_DEAD_LETTER_PAYLOAD_MAX bytes, marked
 *        payload_truncated).
 * @returns compact JSON text (the caller frees it), NULL when out of memory.
 */
char *dw_dead_letter_text(enum dw_bad_reason why, const char *err, const char *topic,
                          int32_t partition, int64_t offset, const void *payload, size_t len);

#endif
