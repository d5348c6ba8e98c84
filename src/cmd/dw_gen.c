/*
 * dw_gen.c - `driftwatch gen`: synthetic prediction and label traffic with injected drift, and
 * the ground truth a correct consumer must report for it.
 *
 * Why it is built this way:
 *
 * - Every random draw of prediction i comes from its own PRNG (xoshiro256**, seeded through
 *   splitmix64 from (seed, i)), and every event draws the same number of values whatever the
 *   options (drift changes distributions, never the number of draws). So an event can be
 *   regenerated at any time from (options, i) alone, and the output does not depend on the
 *   order in which messages are produced.
 * - A staged rollout (--traffic, --version-accuracy, --version-latency) maps the same single
 *   version draw through cumulative shares and then picks that version's accuracy and latency
 *   shift: no extra draw, and without these options the output is byte for byte what it was.
 *   The serving status (--status-field, --error-rate, --version-errors) is the event's last
 *   draw, made whatever the options: it changes no earlier value, and without --status-field
 *   nothing of it is written (no status field, no served/errors in the truth).
 * - Three passes, one pure: (1) plan - walk the predictions in index order (that is event-time
 *   order), account the ground truth per tumbling window (streamed to --truth, one window in
 *   memory at a time) and record one small `struct gen_msg` per message (arrival time, creation
 *   sequence, kind, reference; 16 bytes); (2) sort the records by (arrival, sequence), a stable
 *   order; (3) emit - regenerate each message's JSON into one reusable buffer and hand it to a
 *   sink (JSON-lines files or a librdkafka producer). Memory is 16 bytes per message plus one
 *   event, so a million predictions cost some 40 MB.
 * - Arrival time is the message's event time: a prediction's timestamp, a label's timestamp.
 *   An early label is stamped (and arrives) 1 millisecond before its prediction, a duplicate
 *   label after the first one, junk and oversize messages with their prediction. Writing the
 *   timestamp as the arrival time keeps the files self-describing: merging them by timestamp
 *   gives back the order they were produced in. To Kafka, the arrival time is also each
 *   message's timestamp (CreateTime), as a real producer's would be: the consumer bounds event
 *   time against it (input.max_future_skew / max_past_skew), and traffic stamped in the past
 *   with the wall clock as Kafka time would be rejected as timestamp_out_of_range.
 * - Ground truth follows the product's definitions (docs/contract.md, sections 2.2 and 4): a
 *   label counts in its prediction's window, only valid predictions count, the first label in
 *   output order wins (here always the original label: a duplicate arrives strictly later).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_log.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define GEN_N_CATS 8                     /* categories per categorical feature */
#define GEN_POSITIVE_RATE 0.3            /* probability that the true label is 1 */
#define GEN_LATENCY_BASE_MS 5.0          /* milliseconds, latency floor */
#define GEN_LATENCY_MEAN_MS 10.0         /* milliseconds, mean of the exponential part */
#define GEN_MAX_LATENCY_SHIFT_MS 1e6     /* milliseconds, upper bound of --version-latency */
#define GEN_TRAFFIC_SUM_TOLERANCE 1e-9   /* percent, how far --traffic may sum from 100 */
#define GEN_OVERSIZE_BYTES 1048576       /* bytes, size of one oversize message */
#define GEN_MAX_COUNT 100000000          /* predictions, upper bound of --count */
#define GEN_MAX_OVERSIZE 100000          /* messages, upper bound of --oversize */
#define GEN_MAX_FEATURES 1000            /* features of each type */
#define GEN_FLUSH_TIMEOUT_MS 60000       /* milliseconds to wait for delivery reports */
#define GEN_POLL_MS 100                  /* milliseconds per poll while the local queue is full */
#define GEN_PROGRESS_MS 5000             /* milliseconds between progress log lines */
#define GEN_PRODUCER_MAX_BYTES "4194304" /* bytes, producer message.max.bytes (oversize fits) */

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */

enum gen_junk {
    GEN_JUNK_NOT_JSON = 0,
    GEN_JUNK_MISSING_ID,
    GEN_JUNK_WRONG_TYPE,
    GEN_JUNK_BAD_UTF8,
    GEN_JUNK_UNKNOWN_MODEL,
    GEN_JUNK__COUNT
};

static const char *const junk_names[GEN_JUNK__COUNT] = {
    "invalid_json", "missing_id", "wrong_type", "invalid_utf8", "unknown_model",
};

static const char *const numeric_names[] = {"amount", "age", "balance", "tenure"};
static const char *const categorical_names[] = {"country", "merchant", "device"};
static const char *const country_codes[GEN_N_CATS] = {"DE", "FR", "US", "GB",
                                                      "IT", "ES", "NL", "PL"};
static const char *const generic_cats[GEN_N_CATS] = {"c0", "c1", "c2", "c3",
                                                     "c4", "c5", "c6", "c7"};

struct gen_opts {
    const char *brokers;
    const char *topic_predictions;
    const char *topic_labels;
    const char *predictions_out;
    const char *labels_out;
    const char *truth_out;
    char **xprops; /* "key=value" strings (pointers into argv) */
    size_t n_xprops;

    uint64_t seed;
    int64_t count;
    int64_t start_ms;
    double eps;  /* predictions per second of event time */
    double rate; /* messages per wall-clock second, 0 = unthrottled */
    const char *model;
    char **versions; /* owned */
    size_t n_versions;
    double
        *traffic_cum;   /* owned, per version: cumulative --traffic share, percent; NULL: uniform */
    double *v_accuracy; /* owned, per version: --version-accuracy, NaN where not given */
    double *v_latency_ms; /* owned, per version: --version-latency shift, milliseconds */
    int status_field;     /* --status-field: events carry "status": "ok" | "error" */
    double error_rate;    /* --error-rate: share of "error" statuses */
    double *v_error_rate; /* owned, per version: --version-errors, NaN where not given */
    int n_numeric;
    int n_categorical;
    char **feature_names; /* owned: numeric first, then categorical */

    double missing;
    double accuracy;
    int calibrated; /* --scores calibrated: the score is P(y = 1), y drawn from it */
    double label_share;
    double label_delay_s; /* seconds */
    double early;
    double duplicates;
    double conflicts;
    double malformed;
    int64_t oversize;

    int has_drift;
    int64_t drift_at_ms;     /* absolute event time where drift starts */
    unsigned char *v_drifts; /* owned, per version: --drift-versions (NULL: every version) */
    double *shift;           /* per numeric feature, in standard deviations */
    int *mix;                /* per categorical feature, 1 = mix reversed */
    int has_drift_accuracy;
    double drift_accuracy;
    int drift_options; /* a --drift-shift/-mix/-accuracy was given */

    int64_t window_ms;
    int print_models;
    int quiet;
};

static void opts_free(struct gen_opts *o)
{
    for (size_t i = 0; i < o->n_versions; i++) {
        free(o->versions[i]);
    }
    free(o->versions);
    free(o->traffic_cum);
    free(o->v_accuracy);
    free(o->v_latency_ms);
    free(o->v_error_rate);
    free(o->v_drifts);
    if (o->feature_names) {
        for (int i = 0; i < o->n_numeric + o->n_categorical; i++) {
            free(o->feature_names[i]);
        }
    }
    free(o->feature_names);
    free(o->shift);
    free(o->mix);
    free(o->xprops);
}

/* ------------------------------------------------------------------------------------------ */
/* Pure part: PRNG, events, JSON                                                               */

struct gen_rng {
    uint64_t s[4];
};

static void rng_seed(struct gen_rng *r, uint64_t seed, uint64_t i)
{
    uint64_t x = seed ^ 0x6A09E667F3BCC909ULL;
    uint64_t mixed = dw_splitmix64(&x);
    x = mixed ^ (i * 0xD1B54A32D192ED03ULL);
    for (int k = 0; k < 4; k++) {
        r->s[k] = dw_splitmix64(&x);
    }
}

static uint64_t rotl64(uint64_t v, int k)
{
    return (v << k) | (v >> (64 - k));
}

static uint64_t rng_next(struct gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_uniform(struct gen_rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal by Box-Muller (always two draws). */
static double rng_normal(struct gen_rng *r)
{
    double u1 = 1.0 - rng_uniform(r); /* (0, 1] so log() is finite */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Exponential with the given mean (one draw). */
static double rng_exponential(struct gen_rng *r, double mean)
{
    return -mean * log(1.0 - rng_uniform(r));
}

/* Category j has weight 1/(j+1), or 1/(8-j) when the mix is reversed (one draw). */
static int rng_category(struct gen_rng *r, int reversed)
{
    double w[GEN_N_CATS], total = 0.0;
    for (int j = 0; j < GEN_N_CATS; j++) {
        w[j] = reversed ? 1.0 / (double)(GEN_N_CATS - j) : 1.0 / (double)(j + 1);
        total += w[j];
    }
    double u = rng_uniform(r) * total;
    for (int j = 0; j < GEN_N_CATS; j++) {
        if (u < w[j]) {
            return j;
        }
        u -= w[j];
    }
    return GEN_N_CATS - 1;
}

/* One prediction and everything decided about its labels; arrays are caller buffers. */
struct gen_event {
    int64_t index;
    int64_t ts_ms;
    int drifted;
    int version;
    int y;
    int prediction;
    double score;
    double latency_ms;
    double *num;            /* n_numeric values */
    int *cat;               /* n_categorical category indexes */
    unsigned char *missing; /* n_numeric + n_categorical flags */
    int has_label;
    int early;
    int64_t label_ts_ms; /* timestamp (and arrival) of the first label */
    int has_dup;
    int dup_label;
    int64_t dup_ts_ms; /* timestamp (and arrival) of the duplicate */
    int status_error;  /* the serving status is "error" (written with --status-field) */
};

static void event_alloc(const struct gen_opts *o, struct gen_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->num = dw_calloc((size_t)o->n_numeric + 1, sizeof(double));
    ev->cat = dw_calloc((size_t)o->n_categorical + 1, sizeof(int));
    ev->missing = dw_calloc((size_t)(o->n_numeric + o->n_categorical) + 1, 1);
    ev->index = -1;
}

static void event_free(struct gen_event *ev)
{
    free(ev->num);
    free(ev->cat);
    free(ev->missing);
}

static int64_t event_ts(const struct gen_opts *o, int64_t i)
{
    return o->start_ms + (int64_t)floor((double)i * 1000.0 / o->eps);
}

/*
 * --scores calibrated (three draws, as the default's): the prediction ~ Bernoulli(0.3), its
 * confidence c uniform around the accuracy (within [0.5, 1], mean acc), the score c or 1 - c
 * (4 decimals), then y ~ Bernoulli(score). The score is the true P(y = 1 | score), so the
 * accuracy is acc and a change of acc (--drift-accuracy) moves the scores, not P(y | score):
 * a covariate shift, which a label-free estimate (CBPE) can follow.
 */
static void scores_calibrated(struct gen_rng *r, double acc, struct gen_event *ev)
{
    ev->prediction = rng_uniform(r) < GEN_POSITIVE_RATE ? 1 : 0;
    double spread = 2.0 * fmin(1.0 - acc, acc - 0.5);
    double c = acc + spread * (rng_uniform(r) - 0.5);
    double score = ev->prediction ? c : 1.0 - c;
    ev->score = round(score * 10000.0) / 10000.0;
    ev->y = rng_uniform(r) < ev->score ? 1 : 0;
}

/* The version of a draw u in [0, 1): uniform over the versions, or by the --traffic shares. */
static int pick_version(const struct gen_opts *o, double u)
{
    int last = (int)o->n_versions - 1;
    if (!o->traffic_cum) {
        int v = (int)(u * (double)o->n_versions);
        return v > last ? last : v;
    }
    double pct = u * 100.0;
    for (int v = 0; v < last; v++) {
        if (pct < o->traffic_cum[v]) {
            return v;
        }
    }
    /* the last version with a share (the cumulative sum may end a rounding below 100) */
    while (last > 0 && o->traffic_cum[last] == o->traffic_cum[last - 1]) {
        last--;
    }
    return last;
}

/*
 * @brief Generates prediction i deterministically from (o->seed, i). The draw order is fixed:
 *        version, y, accuracy, score, latency, per feature (missing, value), label share,
 *        delay, early, duplicate, conflict, duplicate delay, serving status.
 */
static void event_generate(const struct gen_opts *o, int64_t i, struct gen_event *ev)
{
    struct gen_rng r;
    rng_seed(&r, o->seed, (uint64_t)i);
    ev->index = i;
    ev->ts_ms = event_ts(o, i);
    ev->drifted = o->has_drift && ev->ts_ms >= o->drift_at_ms;

    ev->version = pick_version(o, rng_uniform(&r));
    ev->drifted = ev->drifted && (!o->v_drifts || o->v_drifts[ev->version]);
    double acc = (ev->drifted && o->has_drift_accuracy) ? o->drift_accuracy : o->accuracy;
    if (!isnan(o->v_accuracy[ev->version])) {
        acc = o->v_accuracy[ev->version];
    }
    if (o->calibrated) {
        scores_calibrated(&r, acc, ev);
    } else {
        ev->y = rng_uniform(&r) < GEN_POSITIVE_RATE ? 1 : 0;
        ev->prediction = rng_uniform(&r) < acc ? ev->y : 1 - ev->y;
        double u = rng_uniform(&r);
        double score = ev->prediction ? 0.5 + 0.5 * u : 0.5 * u;
        ev->score = floor(score * 10000.0) / 10000.0;
    }
    double lat = GEN_LATENCY_BASE_MS + rng_exponential(&r, GEN_LATENCY_MEAN_MS) +
                 o->v_latency_ms[ev->version];
    ev->latency_ms = round(lat * 10.0) / 10.0;

    for (int k = 0; k < o->n_numeric; k++) {
        ev->missing[k] = rng_uniform(&r) < o->missing;
        double mean = 50.0 * (k + 1), sd = 10.0 * (k + 1);
        if (ev->drifted) {
            mean += o->shift[k] * sd;
        }
        double v = mean + sd * rng_normal(&r);
        ev->num[k] = round(v * 10000.0) / 10000.0;
    }
    for (int k = 0; k < o->n_categorical; k++) {
        ev->missing[o->n_numeric + k] = rng_uniform(&r) < o->missing;
        ev->cat[k] = rng_category(&r, ev->drifted && o->mix[k]);
    }

    ev->has_label = rng_uniform(&r) < o->label_share;
    int64_t delay_ms = llround(rng_exponential(&r, o->label_delay_s * 1000.0));
    ev->early = rng_uniform(&r) < o->early;
    ev->has_dup = rng_uniform(&r) < o->duplicates;
    int conflict = rng_uniform(&r) < o->conflicts;
    int64_t dup_extra_ms = llround(rng_exponential(&r, o->label_delay_s * 1000.0));
    if (!ev->has_label) {
        ev->early = 0;
        ev->has_dup = 0;
    }
    ev->label_ts_ms = ev->early ? ev->ts_ms - 1 : ev->ts_ms + delay_ms;
    ev->dup_label = conflict ? 1 - ev->y : ev->y;
    ev->dup_ts_ms = ev->ts_ms + delay_ms + 1 + dup_extra_ms;
    double err_rate =
        isnan(o->v_error_rate[ev->version]) ? o->error_rate : o->v_error_rate[ev->version];
    ev->status_error = rng_uniform(&r) < err_rate;
}

static const char *category_name(int feature, int j)
{
    return feature == 0 ? country_codes[j] : generic_cats[j];
}

/* Which variant of a prediction message to write. */
enum gen_variant { VAR_VALID, VAR_NO_ID, VAR_WRONG_TYPE, VAR_BAD_UTF8, VAR_BAD_MODEL };

/* Writes a prediction event as compact JSON (without closing brace when open_end is set). */
static void format_prediction(const struct gen_opts *o, const struct gen_event *ev, const char *id,
                              enum gen_variant var, int open_end, struct dw_sbuf *b)
{
    char ts[40];
    dw_time_format_rfc3339(ev->ts_ms, ts, sizeof(ts));
    dw_sbuf_reset(b);
    dw_sbuf_printf(b, "{");
    if (var != VAR_NO_ID) {
        dw_sbuf_printf(b, "\"prediction_id\":\"%s\",", id);
    }
    dw_sbuf_printf(
        b, "\"model\":\"%s\",\"model_version\":\"%s%s\",\"timestamp\":\"%s\",\"features\":{",
        var == VAR_BAD_MODEL ? "no-such-model" : o->model, o->versions[ev->version],
        var == VAR_BAD_UTF8 ? "\xC3\x28" : "", ts);
    int nf = o->n_numeric + o->n_categorical;
    for (int k = 0; k < nf; k++) {
        const char *sep = k ? "," : "";
        if (var == VAR_WRONG_TYPE && k == 0 && o->n_numeric > 0) {
            dw_sbuf_printf(b, "%s\"%s\":\"abc\"", sep, o->feature_names[k]);
        } else if (ev->missing[k]) {
            dw_sbuf_printf(b, "%s\"%s\":null", sep, o->feature_names[k]);
        } else if (k < o->n_numeric) {
            dw_sbuf_printf(b, "%s\"%s\":%.4f", sep, o->feature_names[k], ev->num[k]);
        } else {
            int c = k - o->n_numeric;
            dw_sbuf_printf(b, "%s\"%s\":\"%s\"", sep, o->feature_names[k],
                           category_name(c, ev->cat[c]));
        }
    }
    if (var == VAR_WRONG_TYPE && o->n_numeric == 0) {
        /* No numeric feature to spoil: the score takes the wrong type instead. */
        dw_sbuf_printf(b, "},\"prediction\":%d,\"score\":\"abc\",\"latency_ms\":%.1f",
                       ev->prediction, ev->latency_ms);
    } else {
        dw_sbuf_printf(b, "},\"prediction\":%d,\"score\":%.4f,\"latency_ms\":%.1f", ev->prediction,
                       ev->score, ev->latency_ms);
    }
    if (o->status_field) {
        dw_sbuf_printf(b, ",\"status\":\"%s\"", ev->status_error ? "error" : "ok");
    }
    if (!open_end) {
        dw_sbuf_printf(b, "}");
    }
}

static void format_label(const char *id, int label, int64_t ts_ms, struct dw_sbuf *b)
{
    char ts[40];
    dw_time_format_rfc3339(ts_ms, ts, sizeof(ts));
    dw_sbuf_reset(b);
    dw_sbuf_printf(b, "{\"prediction_id\":\"%s\",\"label\":%d,\"timestamp\":\"%s\"}", id, label,
                   ts);
}

/* ------------------------------------------------------------------------------------------ */
/* Plan: message records and ground truth                                                      */

enum gen_kind { KIND_PRED = 0, KIND_LABEL, KIND_DUP, KIND_JUNK, KIND_OVERSIZE };

#define KIND_SHIFT 29
#define REF_MASK ((1U << KIND_SHIFT) - 1)

/* One message to emit: 16 bytes. */
struct gen_msg {
    int64_t arrival_ms;
    uint32_t seq;      /* creation order, breaks ties so the sort is stable */
    uint32_t kind_ref; /* kind << 29 | prediction index, or junk/oversize number */
};

static int msg_cmp(const void *a, const void *b)
{
    const struct gen_msg *x = a, *y = b;
    if (x->arrival_ms != y->arrival_ms) {
        return x->arrival_ms < y->arrival_ms ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

struct gen_plan {
    struct gen_msg *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    int64_t n_junk;
    int64_t n_oversize;
    /* summary */
    int64_t labels;
    int64_t label_events;
    int64_t early_labels;
    int64_t duplicate_labels;
    int64_t junk_by_kind[GEN_JUNK__COUNT];
};

static void plan_add(struct gen_plan *p, int64_t arrival, enum gen_kind kind, uint32_t ref)
{
    if (p->n_msgs == p->cap_msgs) {
        p->cap_msgs = p->cap_msgs ? p->cap_msgs * 2 : 4096;
        p->msgs = dw_realloc(p->msgs, p->cap_msgs * sizeof(*p->msgs));
    }
    struct gen_msg *m = &p->msgs[p->n_msgs];
    m->arrival_ms = arrival;
    m->seq = (uint32_t)p->n_msgs;
    m->kind_ref = ((uint32_t)kind << KIND_SHIFT) | (ref & REF_MASK);
    p->n_msgs++;
}

/* The prediction a junk or oversize message number j of n belongs to. */
static int64_t attached_to(int64_t j, int64_t n, int64_t count)
{
    return j * count / n;
}

/* Per-window ground truth of one model (predictions arrive in window order). */
struct gen_window {
    int active;
    int64_t start_ms;
    int64_t predictions, labeled, correct, duplicate_labels, conflicts;
    int64_t *v_pred, *v_labeled, *v_correct; /* per version */
    int64_t *v_errors;                       /* per version: "error" statuses */
    int64_t *f_count, *f_missing;            /* per feature */
};

static int truth_write_line(FILE *f, json_t *obj, char *errstr, size_t errstr_size);

static int truth_flush_window(const struct gen_opts *o, struct gen_window *w, FILE *f, char *errstr,
                              size_t errstr_size)
{
    if (!w->active || !f) {
        return 0;
    }
    char ts[40];
    dw_time_format_rfc3339(w->start_ms, ts, sizeof(ts));
    json_t *versions = json_object();
    int64_t errors = 0;
    for (size_t v = 0; v < o->n_versions; v++) {
        if (w->v_pred[v] == 0) {
            continue;
        }
        json_t *jv = json_pack("{s:I,s:I,s:I}", "predictions", (json_int_t)w->v_pred[v], "labeled",
                               (json_int_t)w->v_labeled[v], "correct", (json_int_t)w->v_correct[v]);
        if (o->status_field) { /* every valid prediction carries a status */
            json_object_set_new(jv, "served", json_integer((json_int_t)w->v_pred[v]));
            json_object_set_new(jv, "errors", json_integer((json_int_t)w->v_errors[v]));
        }
        errors += w->v_errors[v];
        json_object_set_new(versions, o->versions[v], jv);
    }
    json_t *features = json_object();
    for (int k = 0; k < o->n_numeric + o->n_categorical; k++) {
        json_object_set_new(features, o->feature_names[k],
                            json_pack("{s:I,s:I}", "count", (json_int_t)w->f_count[k], "missing",
                                      (json_int_t)w->f_missing[k]));
    }
    json_t *line = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "model", o->model,
                             "window_start", ts, "window_start_ms", (json_int_t)w->start_ms,
                             "predictions", (json_int_t)w->predictions, "labeled",
                             (json_int_t)w->labeled, "correct", (json_int_t)w->correct,
                             "duplicate_labels", (json_int_t)w->duplicate_labels, "conflicts",
                             (json_int_t)w->conflicts, "versions", versions, "features", features);
    if (line && o->status_field) {
        json_object_set_new(line, "served", json_integer((json_int_t)w->predictions));
        json_object_set_new(line, "errors", json_integer((json_int_t)errors));
    }
    return truth_write_line(f, line, errstr, errstr_size);
}

static int truth_write_line(FILE *f, json_t *obj, char *errstr, size_t errstr_size)
{
    if (!obj) {
        return dw_err(errstr, errstr_size, "truth: cannot build JSON");
    }
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!text) {
        return dw_err(errstr, errstr_size, "truth: cannot serialise JSON");
    }
    int rc = fprintf(f, "%s\n", text) < 0 ? -1 : 0;
    free(text);
    if (rc) {
        return dw_err(errstr, errstr_size, "truth: write failed: %s", strerror(errno));
    }
    return 0;
}

static void window_reset(const struct gen_opts *o, struct gen_window *w, int64_t start_ms)
{
    w->active = 1;
    w->start_ms = start_ms;
    w->predictions = w->labeled = w->correct = w->duplicate_labels = w->conflicts = 0;
    memset(w->v_pred, 0, o->n_versions * sizeof(int64_t));
    memset(w->v_labeled, 0, o->n_versions * sizeof(int64_t));
    memset(w->v_correct, 0, o->n_versions * sizeof(int64_t));
    memset(w->v_errors, 0, o->n_versions * sizeof(int64_t));
    size_t nf = (size_t)(o->n_numeric + o->n_categorical);
    memset(w->f_count, 0, (nf + 1) * sizeof(int64_t));
    memset(w->f_missing, 0, (nf + 1) * sizeof(int64_t));
}

/*
 * @brief Walks the predictions in index order: records every message to emit and streams the
 *        ground truth to `truth` (may be NULL).
 */
static int plan_build(const struct gen_opts *o, struct gen_plan *p, FILE *truth, char *errstr,
                      size_t errstr_size)
{
    struct gen_event ev;
    struct gen_window w;
    size_t nf = (size_t)(o->n_numeric + o->n_categorical);
    int rc = -1;

    memset(p, 0, sizeof(*p));
    memset(&w, 0, sizeof(w));
    event_alloc(o, &ev);
    w.v_pred = dw_calloc(o->n_versions, sizeof(int64_t));
    w.v_labeled = dw_calloc(o->n_versions, sizeof(int64_t));
    w.v_correct = dw_calloc(o->n_versions, sizeof(int64_t));
    w.v_errors = dw_calloc(o->n_versions, sizeof(int64_t));
    w.f_count = dw_calloc(nf + 1, sizeof(int64_t));
    w.f_missing = dw_calloc(nf + 1, sizeof(int64_t));

    p->n_junk = llround(o->malformed * (double)o->count);
    p->n_oversize = o->oversize;
    int64_t next_junk = 0, next_over = 0;

    for (int64_t i = 0; i < o->count; i++) {
        event_generate(o, i, &ev);
        int64_t win_start = dw_floor_div(ev.ts_ms, o->window_ms) * o->window_ms;
        if (!w.active || w.start_ms != win_start) {
            if (truth_flush_window(o, &w, truth, errstr, errstr_size)) {
                goto err;
            }
            window_reset(o, &w, win_start);
        }
        /* Messages, in creation order: prediction, its junk, its labels. */
        plan_add(p, ev.ts_ms, KIND_PRED, (uint32_t)i);
        while (next_junk < p->n_junk && attached_to(next_junk, p->n_junk, o->count) == i) {
            plan_add(p, ev.ts_ms, KIND_JUNK, (uint32_t)next_junk);
            p->junk_by_kind[next_junk % GEN_JUNK__COUNT]++;
            next_junk++;
        }
        while (next_over < p->n_oversize && attached_to(next_over, p->n_oversize, o->count) == i) {
            plan_add(p, ev.ts_ms, KIND_OVERSIZE, (uint32_t)next_over);
            next_over++;
        }
        if (ev.has_label) {
            plan_add(p, ev.label_ts_ms, KIND_LABEL, (uint32_t)i);
            p->labels++;
            p->label_events++;
            p->early_labels += ev.early;
        }
        if (ev.has_dup) {
            plan_add(p, ev.dup_ts_ms, KIND_DUP, (uint32_t)i);
            p->label_events++;
            p->duplicate_labels++;
        }

        /* Ground truth of the window. The first label is the original one (y). */
        int correct = ev.has_label && ev.y == ev.prediction;
        w.predictions++;
        w.labeled += ev.has_label;
        w.correct += correct;
        w.duplicate_labels += ev.has_dup;
        w.conflicts += ev.has_dup && ev.dup_label != ev.y;
        w.v_pred[ev.version]++;
        w.v_labeled[ev.version] += ev.has_label;
        w.v_correct[ev.version] += correct;
        w.v_errors[ev.version] += ev.status_error;
        for (size_t k = 0; k < nf; k++) {
            if (ev.missing[k]) {
                w.f_missing[k]++;
            } else {
                w.f_count[k]++;
            }
        }
    }
    if (truth_flush_window(o, &w, truth, errstr, errstr_size)) {
        goto err;
    }
    if (truth) {
        json_t *kinds = json_object();
        for (int k = 0; k < GEN_JUNK__COUNT; k++) {
            json_object_set_new(kinds, junk_names[k], json_integer(p->junk_by_kind[k]));
        }
        json_t *summary =
            json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:o,s:I}}", "summary", "predictions",
                      (json_int_t)o->count, "labels", (json_int_t)p->labels, "label_events",
                      (json_int_t)p->label_events, "early_labels", (json_int_t)p->early_labels,
                      "duplicate_labels", (json_int_t)p->duplicate_labels, "malformed", kinds,
                      "oversize", (json_int_t)p->n_oversize);
        if (truth_write_line(truth, summary, errstr, errstr_size)) {
            goto err;
        }
    }
    qsort(p->msgs, p->n_msgs, sizeof(*p->msgs), msg_cmp);
    rc = 0;
err:
    free(w.f_missing);
    free(w.f_count);
    free(w.v_errors);
    free(w.v_correct);
    free(w.v_labeled);
    free(w.v_pred);
    event_free(&ev);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Sinks                                                                                       */

struct gen_sink {
    /* files */
    FILE *f_pred;
    FILE *f_label;
    /* Kafka */
    rd_kafka_t *rk;
    int64_t delivered;
    int64_t failed;
    int64_t oversize_rejected;
    char first_error[256];
    /* counters */
    int64_t written_pred;
    int64_t written_label;
    int64_t skipped;
};

static void gen_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct gen_sink *s = opaque;
    int is_oversize = (uintptr_t)rkm->_private == (uintptr_t)KIND_OVERSIZE;
    if (!rkm->err) {
        s->delivered++;
    } else if (is_oversize && rkm->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        s->oversize_rejected++;
    } else {
        if (s->failed == 0) {
            snprintf(s->first_error, sizeof(s->first_error), "%s", rd_kafka_err2str(rkm->err));
        }
        s->failed++;
    }
}

/* @returns 0, -1 on a runtime failure, -2 when librdkafka rejects a property (usage error). */
static int sink_open(const struct gen_opts *o, struct gen_sink *s, char *errstr, size_t errstr_size)
{
    int rc = -1;
    memset(s, 0, sizeof(*s));
    if (!o->brokers) {
        if (o->predictions_out) {
            s->f_pred = fopen(o->predictions_out, "w");
            if (!s->f_pred) {
                return dw_err(errstr, errstr_size, "%s: %s", o->predictions_out, strerror(errno));
            }
        }
        if (o->labels_out) {
            s->f_label = fopen(o->labels_out, "w");
            if (!s->f_label) {
                dw_err(errstr, errstr_size, "%s: %s", o->labels_out, strerror(errno));
                goto err;
            }
        }
        return 0;
    }

    char kerr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *defaults[][2] = {
        {"bootstrap.servers", o->brokers},
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
        /* The truth assumes each partition's events arrive once and in order: a retried batch
         * of a non-idempotent producer can land after the next one (or twice), and a prediction
         * it holds is then late for its window in driftwatch and not in the truth. */
        {"enable.idempotence", "true"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        {"message.max.bytes", GEN_PRODUCER_MAX_BYTES},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(defaults); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            dw_err(errstr, errstr_size, "kafka %s: %s", defaults[i][0], kerr);
            rc = -2;
            goto err;
        }
    }
    for (size_t i = 0; i < o->n_xprops; i++) {
        char key[256];
        const char *eq = strchr(o->xprops[i], '=');
        size_t klen = (size_t)(eq - o->xprops[i]);
        if (klen >= sizeof(key)) {
            rd_kafka_conf_destroy(conf);
            dw_err(errstr, errstr_size, "-X %s: key too long", o->xprops[i]);
            rc = -2;
            goto err;
        }
        memcpy(key, o->xprops[i], klen);
        key[klen] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            dw_err(errstr, errstr_size, "-X %s: %s", key, kerr);
            rc = -2;
            goto err;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, gen_dr_cb);
    rd_kafka_conf_set_opaque(conf, s);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        dw_err(errstr, errstr_size, "kafka producer: %s", kerr);
        goto err;
    }
    return 0;
err:
    if (s->f_pred) {
        fclose(s->f_pred);
        s->f_pred = NULL;
    }
    return rc;
}

/* Writes one message; to Kafka with its arrival time as the message timestamp (CreateTime). */
static int sink_write(const struct gen_opts *o, struct gen_sink *s, enum gen_kind kind,
                      int64_t arrival_ms, const char *key, const struct dw_sbuf *b, char *errstr,
                      size_t errstr_size)
{
    int is_label = kind == KIND_LABEL || kind == KIND_DUP;
    if (s->rk) {
        const char *topic = is_label ? o->topic_labels : o->topic_predictions;
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                s->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(b->s, b->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_TIMESTAMP(arrival_ms), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)kind),
                RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(s->rk, GEN_POLL_MS);
                continue;
            }
            if (err) {
                return dw_err(errstr, errstr_size, "produce to %s: %s", topic,
                              rd_kafka_err2str(err));
            }
            break;
        }
        rd_kafka_poll(s->rk, 0);
    } else {
        FILE *f = is_label ? s->f_label : s->f_pred;
        if (!f) {
            s->skipped++;
            return 0;
        }
        if (fwrite(b->s, 1, b->len, f) != b->len || fputc('\n', f) == EOF) {
            return dw_err(errstr, errstr_size, "%s: write failed: %s",
                          is_label ? o->labels_out : o->predictions_out, strerror(errno));
        }
    }
    if (is_label) {
        s->written_label++;
    } else {
        s->written_pred++;
    }
    return 0;
}

/*
 * @brief Flushes and closes. With `abandon` (error path) queued messages are purged instead of
 *        waited for. @returns -1 when a file could not be written or a delivery failed.
 */
static int sink_close(const struct gen_opts *o, struct gen_sink *s, int abandon, char *errstr,
                      size_t errstr_size)
{
    int rc = 0;
    if (s->rk) {
        if (abandon) {
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        }
        rd_kafka_flush(s->rk, GEN_FLUSH_TIMEOUT_MS);
        int left = rd_kafka_outq_len(s->rk);
        if (left > 0) {
            rc = dw_err(errstr, errstr_size, "%d messages not delivered after %d ms", left,
                        GEN_FLUSH_TIMEOUT_MS);
        } else if (s->failed > 0) {
            rc = dw_err(errstr, errstr_size, "%lld messages failed delivery (first: %s)",
                        (long long)s->failed, s->first_error);
        }
        rd_kafka_destroy(s->rk);
        s->rk = NULL;
    }
    if (s->f_label && fclose(s->f_label) != 0 && rc == 0) {
        rc = dw_err(errstr, errstr_size, "%s: %s", o->labels_out, strerror(errno));
    }
    if (s->f_pred && fclose(s->f_pred) != 0 && rc == 0) {
        rc = dw_err(errstr, errstr_size, "%s: %s", o->predictions_out, strerror(errno));
    }
    s->f_label = s->f_pred = NULL;
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Emit                                                                                        */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Builds the JSON of one planned message into b and its key into key. */
static void message_build(const struct gen_opts *o, const struct gen_plan *p,
                          const struct gen_msg *m, struct gen_event *ev, struct dw_sbuf *b,
                          char *key, size_t key_size)
{
    enum gen_kind kind = (enum gen_kind)(m->kind_ref >> KIND_SHIFT);
    int64_t ref = (int64_t)(m->kind_ref & REF_MASK);
    int64_t i = ref;
    if (kind == KIND_JUNK) {
        i = attached_to(ref, p->n_junk, o->count);
    } else if (kind == KIND_OVERSIZE) {
        i = attached_to(ref, p->n_oversize, o->count);
    }
    if (ev->index != i) {
        event_generate(o, i, ev);
    }
    unsigned long long seed = (unsigned long long)o->seed;
    switch (kind) {
    case KIND_PRED:
        snprintf(key, key_size, "p-%llu-%lld", seed, (long long)i);
        format_prediction(o, ev, key, VAR_VALID, 0, b);
        break;
    case KIND_LABEL:
        snprintf(key, key_size, "p-%llu-%lld", seed, (long long)i);
        format_label(key, ev->y, ev->label_ts_ms, b);
        break;
    case KIND_DUP:
        snprintf(key, key_size, "p-%llu-%lld", seed, (long long)i);
        format_label(key, ev->dup_label, ev->dup_ts_ms, b);
        break;
    case KIND_JUNK: {
        snprintf(key, key_size, "j-%llu-%lld", seed, (long long)ref);
        switch ((enum gen_junk)(ref % GEN_JUNK__COUNT)) {
        case GEN_JUNK_NOT_JSON:
            dw_sbuf_reset(b);
            dw_sbuf_printf(b, "{\"prediction_id\":\"%s\",\"model\": not json", key);
            break;
        case GEN_JUNK_MISSING_ID:
            format_prediction(o, ev, key, VAR_NO_ID, 0, b);
            break;
        case GEN_JUNK_WRONG_TYPE:
            format_prediction(o, ev, key, VAR_WRONG_TYPE, 0, b);
            break;
        case GEN_JUNK_BAD_UTF8:
            format_prediction(o, ev, key, VAR_BAD_UTF8, 0, b);
            break;
        case GEN_JUNK_UNKNOWN_MODEL:
        default:
            format_prediction(o, ev, key, VAR_BAD_MODEL, 0, b);
            break;
        }
        break;
    }
    case KIND_OVERSIZE:
    default: {
        snprintf(key, key_size, "o-%llu-%lld", seed, (long long)ref);
        format_prediction(o, ev, key, VAR_VALID, 1, b);
        const char *pad_open = ",\"padding\":\"";
        size_t fixed = b->len + strlen(pad_open) + 2; /* closing quote and brace */
        size_t pad = fixed < GEN_OVERSIZE_BYTES ? GEN_OVERSIZE_BYTES - fixed : 0;
        dw_sbuf_adds(b, pad_open);
        dw_sbuf_fill(b, 'x', pad);
        dw_sbuf_adds(b, "\"}");
        break;
    }
    }
}

static int emit_all(const struct gen_opts *o, const struct gen_plan *p, struct gen_sink *s,
                    char *errstr, size_t errstr_size)
{
    struct gen_event ev;
    struct dw_sbuf b = {0};
    char key[96];
    int rc = -1;
    int64_t t0 = dw_mono_ms(), last_progress = t0;

    event_alloc(o, &ev);
    for (size_t n = 0; n < p->n_msgs; n++) {
        const struct gen_msg *m = &p->msgs[n];
        message_build(o, p, m, &ev, &b, key, sizeof(key));
        if (sink_write(o, s, (enum gen_kind)(m->kind_ref >> KIND_SHIFT), m->arrival_ms, key, &b,
                       errstr, errstr_size)) {
            goto err;
        }
        if (o->rate > 0) {
            /* Message n+1 is due (n+1)/rate seconds after the start. */
            int64_t due = t0 + (int64_t)((double)(n + 1) * 1000.0 / o->rate);
            for (int64_t now = dw_mono_ms(); now < due; now = dw_mono_ms()) {
                if (s->rk) {
                    rd_kafka_poll(s->rk, (int)(due - now)); /* serves delivery reports */
                } else {
                    sleep_ms(due - now);
                }
            }
        }
        if (!o->quiet && dw_mono_ms() - last_progress >= GEN_PROGRESS_MS) {
            last_progress = dw_mono_ms();
            dw_log(DW_LOG_INFO, "gen progress", "{s:I,s:I}", "messages", (json_int_t)(n + 1),
                   "total", (json_int_t)p->n_msgs);
        }
    }
    rc = 0;
err:
    dw_sbuf_free(&b);
    event_free(&ev);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Command line                                                                                */

enum {
    OPT_BROKERS = 256,
    OPT_TOPIC_PRED,
    OPT_TOPIC_LABEL,
    OPT_PRED_OUT,
    OPT_LABEL_OUT,
    OPT_SEED,
    OPT_COUNT,
    OPT_START,
    OPT_EPS,
    OPT_RATE,
    OPT_MODEL,
    OPT_VERSIONS,
    OPT_NUMERIC,
    OPT_CATEGORICAL,
    OPT_MISSING,
    OPT_ACCURACY,
    OPT_SCORES,
    OPT_LABEL_SHARE,
    OPT_LABEL_DELAY,
    OPT_EARLY,
    OPT_DUPLICATES,
    OPT_CONFLICTS,
    OPT_MALFORMED,
    OPT_OVERSIZE,
    OPT_DRIFT_AT,
    OPT_DRIFT_SHIFT,
    OPT_DRIFT_MIX,
    OPT_DRIFT_ACCURACY,
    OPT_TRAFFIC,
    OPT_VERSION_ACCURACY,
    OPT_VERSION_LATENCY,
    OPT_STATUS_FIELD,
    OPT_ERROR_RATE,
    OPT_VERSION_ERRORS,
    OPT_DRIFT_VERSIONS,
    OPT_TRUTH,
    OPT_WINDOW,
    OPT_PRINT_MODELS,
    OPT_QUIET,
};

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, OPT_BROKERS},
    {"topic-predictions", required_argument, NULL, OPT_TOPIC_PRED},
    {"topic-labels", required_argument, NULL, OPT_TOPIC_LABEL},
    {"predictions-out", required_argument, NULL, OPT_PRED_OUT},
    {"labels-out", required_argument, NULL, OPT_LABEL_OUT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"count", required_argument, NULL, OPT_COUNT},
    {"start", required_argument, NULL, OPT_START},
    {"eps", required_argument, NULL, OPT_EPS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"model", required_argument, NULL, OPT_MODEL},
    {"versions", required_argument, NULL, OPT_VERSIONS},
    {"numeric", required_argument, NULL, OPT_NUMERIC},
    {"categorical", required_argument, NULL, OPT_CATEGORICAL},
    {"missing", required_argument, NULL, OPT_MISSING},
    {"accuracy", required_argument, NULL, OPT_ACCURACY},
    {"scores", required_argument, NULL, OPT_SCORES},
    {"label-share", required_argument, NULL, OPT_LABEL_SHARE},
    {"label-delay", required_argument, NULL, OPT_LABEL_DELAY},
    {"early-labels", required_argument, NULL, OPT_EARLY},
    {"duplicate-labels", required_argument, NULL, OPT_DUPLICATES},
    {"conflicts", required_argument, NULL, OPT_CONFLICTS},
    {"malformed", required_argument, NULL, OPT_MALFORMED},
    {"oversize", required_argument, NULL, OPT_OVERSIZE},
    {"drift-at", required_argument, NULL, OPT_DRIFT_AT},
    {"drift-shift", required_argument, NULL, OPT_DRIFT_SHIFT},
    {"drift-mix", required_argument, NULL, OPT_DRIFT_MIX},
    {"drift-accuracy", required_argument, NULL, OPT_DRIFT_ACCURACY},
    {"traffic", required_argument, NULL, OPT_TRAFFIC},
    {"version-accuracy", required_argument, NULL, OPT_VERSION_ACCURACY},
    {"version-latency", required_argument, NULL, OPT_VERSION_LATENCY},
    {"status-field", no_argument, NULL, OPT_STATUS_FIELD},
    {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
    {"version-errors", required_argument, NULL, OPT_VERSION_ERRORS},
    {"drift-versions", required_argument, NULL, OPT_DRIFT_VERSIONS},
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"print-models", no_argument, NULL, OPT_PRINT_MODELS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch gen [options]\n"
            "\n"
            "Synthetic prediction and label traffic with injected drift, and its ground truth.\n"
            "\n"
            "sinks (Kafka or JSON-lines files):\n"
            "  --brokers HOST:PORT         produce to Kafka (librdkafka producer)\n"
            "  --topic-predictions NAME    predictions topic [predictions]\n"
            "  --topic-labels NAME         labels topic [labels]\n"
            "  -X key=value                extra librdkafka property (repeatable)\n"
            "  --predictions-out FILE      write predictions (and junk) as JSON lines\n"
            "  --labels-out FILE           write labels as JSON lines\n"
            "  --truth FILE                write the ground truth per window as JSON lines\n"
            "  --window S                  truth window length, seconds [60]\n"
            "\n"
            "traffic:\n"
            "  --seed N                    random seed [1]\n"
            "  --count N                   predictions [10000]\n"
            "  --start TIME                first event time, RFC 3339 or epoch ms "
            "[2026-01-01T00:00:00Z]\n"
            "  --eps N                     predictions per second of event time [100]\n"
            "  --rate N                    wall-clock messages per second, 0 = unthrottled [0]\n"
            "  --model NAME                model name [fraud]\n"
            "  --versions a,b              model versions, chosen uniformly unless --traffic "
            "[1.0.0]\n"
            "  --numeric N                 numeric features [3]\n"
            "  --categorical M             categorical features [2]\n"
            "  --missing R                 share of feature values that are null [0.0]\n"
            "  --accuracy A                share of correct predictions [0.9]\n"
            "  --scores MODE               uniform: a score uniform in its predicted half, the\n"
            "                              label drawn apart; calibrated: the label drawn from\n"
            "                              the score (accuracies in [0.5, 1]) [uniform]\n"
            "\n"
            "labels:\n"
            "  --label-share R             share of predictions that get a label [1.0]\n"
            "  --label-delay S             mean label delay, seconds of event time [30]\n"
            "  --early-labels R            share of labels sent before their prediction [0.0]\n"
            "  --duplicate-labels R        share of labelled predictions with a 2nd label [0.0]\n"
            "  --conflicts R               share of duplicates with the opposite label [0.5]\n"
            "\n"
            "bad input:\n"
            "  --malformed R               junk messages per prediction, cycling invalid_json,\n"
            "                              missing_id, wrong_type, invalid_utf8, unknown_model "
            "[0.0]\n"
            "  --oversize N                extra messages of 1048576 bytes [0]\n"
            "\n"
            "drift (none unless --drift-at is given):\n"
            "  --drift-at S                drift starts S seconds after --start [none]\n"
            "  --drift-shift name=D,...    shift a numeric feature's mean by D std [none]\n"
            "  --drift-mix name,...        reverse a categorical feature's mix [none]\n"
            "  --drift-accuracy A          accuracy after the drift [unchanged]\n"
            "\n"
            "staged rollout (per version of --versions):\n"
            "  --traffic P,...             traffic share of each version in percent, in the\n"
            "                              order of --versions, summing to 100 [uniform]\n"
            "  --version-accuracy v=A,...  accuracy of version v, before and after a drift\n"
            "                              (overrides --accuracy and --drift-accuracy) [none]\n"
            "  --version-latency v=MS,...  milliseconds added to version v's latency_ms, e.g.\n"
            "                              1.1.0=+40 (at least -5: latency stays >= 0) [none]\n"
            "  --drift-versions v,...      only these versions drift at --drift-at [every one]\n"
            "\n"
            "serving status (none unless --status-field; the truth then has served/errors):\n"
            "  --status-field              write \"status\": \"ok\" or \"error\" in predictions\n"
            "  --error-rate R              share of \"error\" statuses [0.0]\n"
            "  --version-errors v=R,...    share of \"error\" statuses of version v\n"
            "                              (overrides --error-rate) [none]\n"
            "\n"
            "other:\n"
            "  --print-models              print the YAML models: block and exit\n"
            "  -q, --quiet                 no summary log line\n"
            "  -h, --help                  this help\n");
}

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* ASCII printable without quote or backslash: safe inside a JSON string and a YAML key. */
static int is_plain_name(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (const char *c = s; *c; c++) {
        if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\' || *c == ':' || *c == ',') {
            return 0;
        }
    }
    return 1;
}

/* Splits a comma-separated list into owned strings. @returns the count, -1 on an empty item. */
static int split_list(const char *s, char ***out)
{
    size_t n = 0;
    char **items = NULL;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        items = dw_realloc(items, (n + 1) * sizeof(*items));
        items[n++] = dw_strndup(p, len);
        if (len == 0) {
            for (size_t i = 0; i < n; i++) {
                free(items[i]);
            }
            free(items);
            return -1;
        }
        if (!comma) {
            break;
        }
        p = comma + 1;
    }
    *out = items;
    return (int)n;
}

static void free_list(char **items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i]);
    }
    free(items);
}

static int feature_index(const struct gen_opts *o, const char *name, int first, int end)
{
    for (int k = first; k < end; k++) {
        if (strcmp(o->feature_names[k], name) == 0) {
            return k;
        }
    }
    return -1;
}

static void build_feature_names(struct gen_opts *o)
{
    int nf = o->n_numeric + o->n_categorical;
    char name[32];
    o->feature_names = dw_calloc((size_t)nf + 1, sizeof(char *));
    for (int k = 0; k < o->n_numeric; k++) {
        if ((size_t)k < DW_ARRAY_SIZE(numeric_names)) {
            o->feature_names[k] = dw_strdup(numeric_names[k]);
        } else {
            snprintf(name, sizeof(name), "num_%d", k);
            o->feature_names[k] = dw_strdup(name);
        }
    }
    for (int k = 0; k < o->n_categorical; k++) {
        if ((size_t)k < DW_ARRAY_SIZE(categorical_names)) {
            o->feature_names[o->n_numeric + k] = dw_strdup(categorical_names[k]);
        } else {
            snprintf(name, sizeof(name), "cat_%d", k);
            o->feature_names[o->n_numeric + k] = dw_strdup(name);
        }
    }
}

/* Applies --drift-shift and --drift-mix once the feature names are known. */
static int apply_drift_lists(struct gen_opts *o, const char *shift_arg, const char *mix_arg,
                             char *errstr, size_t errstr_size)
{
    char **items = NULL;
    int n;
    o->shift = dw_calloc((size_t)o->n_numeric + 1, sizeof(double));
    o->mix = dw_calloc((size_t)o->n_categorical + 1, sizeof(int));
    if (shift_arg) {
        n = split_list(shift_arg, &items);
        if (n < 0) {
            return dw_err(errstr, errstr_size, "--drift-shift: empty item in '%s'", shift_arg);
        }
        for (int i = 0; i < n; i++) {
            char *eq = strchr(items[i], '=');
            double d;
            if (!eq || parse_double(eq + 1, -1e6, 1e6, &d)) {
                dw_err(errstr, errstr_size, "--drift-shift: '%s' is not name=D", items[i]);
                free_list(items, n);
                return -1;
            }
            *eq = '\0';
            int k = feature_index(o, items[i], 0, o->n_numeric);
            if (k < 0) {
                dw_err(errstr, errstr_size, "--drift-shift: '%s' is not a numeric feature",
                       items[i]);
                free_list(items, n);
                return -1;
            }
            o->shift[k] = d;
        }
        free_list(items, n);
    }
    if (mix_arg) {
        n = split_list(mix_arg, &items);
        if (n < 0) {
            return dw_err(errstr, errstr_size, "--drift-mix: empty item in '%s'", mix_arg);
        }
        for (int i = 0; i < n; i++) {
            int nf = o->n_numeric + o->n_categorical;
            int k = feature_index(o, items[i], o->n_numeric, nf);
            if (k < 0) {
                dw_err(errstr, errstr_size, "--drift-mix: '%s' is not a categorical feature",
                       items[i]);
                free_list(items, n);
                return -1;
            }
            o->mix[k - o->n_numeric] = 1;
        }
        free_list(items, n);
    }
    return 0;
}

/* Applies --traffic P,... (percent per version, in --versions order, summing to 100). */
static int apply_traffic(struct gen_opts *o, const char *arg, char *errstr, size_t errstr_size)
{
    char **items = NULL;
    int n = split_list(arg, &items);
    if (n < 0) {
        return dw_err(errstr, errstr_size, "--traffic: empty item in '%s'", arg);
    }
    int rc = -1;
    if ((size_t)n != o->n_versions) {
        dw_err(errstr, errstr_size, "--traffic: %d shares in '%s' for %zu versions", n, arg,
               o->n_versions);
        goto out;
    }
    o->traffic_cum = dw_calloc(o->n_versions, sizeof(double));
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double share;
        if (parse_double(items[i], 0.0, 100.0, &share)) {
            dw_err(errstr, errstr_size,
                   "--traffic: '%s' (version %s) is not a percentage in "
                   "[0, 100]",
                   items[i], o->versions[i]);
            goto out;
        }
        sum += share;
        o->traffic_cum[i] = sum;
    }
    if (fabs(sum - 100.0) > GEN_TRAFFIC_SUM_TOLERANCE) {
        dw_err(errstr, errstr_size, "--traffic: the shares '%s' sum to %g, not 100", arg, sum);
        goto out;
    }
    rc = 0;
out:
    free_list(items, n);
    return rc;
}

/* The index of version name in --versions, or -1. */
static int version_index(const struct gen_opts *o, const char *name)
{
    for (size_t v = 0; v < o->n_versions; v++) {
        if (strcmp(o->versions[v], name) == 0) {
            return (int)v;
        }
    }
    return -1;
}

/* Parses "VERSION=VALUE,..." into out[version] (values in [min, max]); `what` names VALUE. */
static int apply_version_values(const struct gen_opts *o, const char *opt, const char *arg,
                                const char *what, double min, double max, double *out, char *errstr,
                                size_t errstr_size)
{
    char **items = NULL;
    int n = split_list(arg, &items);
    if (n < 0) {
        return dw_err(errstr, errstr_size, "--%s: empty item in '%s'", opt, arg);
    }
    int rc = -1;
    for (int i = 0; i < n; i++) {
        char *eq = strchr(items[i], '=');
        if (!eq) {
            dw_err(errstr, errstr_size, "--%s: '%s' is not VERSION=VALUE", opt, items[i]);
            goto out;
        }
        *eq = '\0';
        int v = version_index(o, items[i]);
        if (v < 0) {
            dw_err(errstr, errstr_size, "--%s: version '%s' is not one of --versions", opt,
                   items[i]);
            goto out;
        }
        if (parse_double(eq + 1, min, max, &out[v])) {
            dw_err(errstr, errstr_size, "--%s: '%s' (version %s) is not %s in [%g, %g]", opt,
                   eq + 1, items[i], what, min, max);
            goto out;
        }
    }
    rc = 0;
out:
    free_list(items, n);
    return rc;
}

/* --drift-versions: only the versions named drift (a version the drift leaves alone lets a
 * canary's features differ from the baseline's in the same windows). */
static int apply_drift_versions(struct gen_opts *o, const char *arg, char *errstr,
                                size_t errstr_size)
{
    char **items = NULL;
    int n = split_list(arg, &items);
    if (n < 0) {
        return dw_err(errstr, errstr_size, "--drift-versions: empty item in '%s'", arg);
    }
    o->v_drifts = dw_calloc(o->n_versions, 1);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int v = version_index(o, items[i]);
        if (v < 0) {
            rc = dw_err(errstr, errstr_size,
                        "--drift-versions: version '%s' is not one of --versions", items[i]);
        } else {
            o->v_drifts[v] = 1;
        }
    }
    free_list(items, n);
    return rc;
}

/* Applies --traffic, --version-accuracy and --version-latency once the versions are known. */
static int apply_version_options(struct gen_opts *o, const char *traffic_arg,
                                 const char *accuracy_arg, const char *latency_arg, char *errstr,
                                 size_t errstr_size)
{
    o->v_accuracy = dw_calloc(o->n_versions, sizeof(double));
    o->v_latency_ms = dw_calloc(o->n_versions, sizeof(double));
    o->v_error_rate = dw_calloc(o->n_versions, sizeof(double));
    for (size_t v = 0; v < o->n_versions; v++) {
        o->v_accuracy[v] = NAN;
        o->v_error_rate[v] = NAN;
    }
    if (traffic_arg && apply_traffic(o, traffic_arg, errstr, errstr_size)) {
        return -1;
    }
    if (accuracy_arg && apply_version_values(o, "version-accuracy", accuracy_arg, "an accuracy",
                                             0.0, 1.0, o->v_accuracy, errstr, errstr_size)) {
        return -1;
    }
    if (latency_arg && apply_version_values(o, "version-latency", latency_arg, "milliseconds",
                                            -GEN_LATENCY_BASE_MS, GEN_MAX_LATENCY_SHIFT_MS,
                                            o->v_latency_ms, errstr, errstr_size)) {
        return -1;
    }
    for (size_t v = 0; o->calibrated && v < o->n_versions; v++) {
        if (o->v_accuracy[v] < 0.5) {
            return dw_err(errstr, errstr_size,
                          "--scores calibrated: --version-accuracy %s=%g must be at least 0.5",
                          o->versions[v], o->v_accuracy[v]);
        }
    }
    return 0;
}

/* @returns 0 ok, 1 when --help was printed, -1 on a usage error (message in errstr). */
static int parse_args(int argc, char **argv, struct gen_opts *o, char *errstr, size_t errstr_size)
{
    const char *shift_arg = NULL, *mix_arg = NULL, *versions_arg = "1.0.0";
    const char *traffic_arg = NULL, *vacc_arg = NULL, *vlat_arg = NULL, *verr_arg = NULL;
    const char *vdrift_arg = NULL;
    int error_options = 0; /* --error-rate or --version-errors given */
    double drift_at_s = 0.0, window_s = 60.0;
    int64_t v64;
    int opt;

    memset(o, 0, sizeof(*o));
    o->topic_predictions = "predictions";
    o->topic_labels = "labels";
    o->seed = 1;
    o->count = 10000;
    dw_time_parse_rfc3339("2026-01-01T00:00:00Z", 20, &o->start_ms);
    o->eps = 100.0;
    o->model = "fraud";
    o->n_numeric = 3;
    o->n_categorical = 2;
    o->accuracy = 0.9;
    o->label_share = 1.0;
    o->label_delay_s = 30.0;
    o->conflicts = 0.5;

    optind = 0; /* glibc: 0 fully re-initialises getopt (tests call us repeatedly) */
    opterr = 0;
    while (1) {
        int longidx = -1;
        opt = getopt_long(argc, argv, ":X:qh", long_options, &longidx);
        if (opt == -1) {
            break;
        }
        const char *arg = optarg;
        /* The option as typed, for messages about it. */
        const char *name = longidx >= 0
                               ? long_options[longidx].name
                               : (optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : "?");
        switch (opt) {
        case 'h':
            return 1;
        case 'q':
            o->quiet = 1;
            break;
        case 'X':
            if (!strchr(arg, '=') || arg[0] == '=') {
                return dw_err(errstr, errstr_size, "-X %s: expected key=value", arg);
            }
            o->xprops = dw_realloc(o->xprops, (o->n_xprops + 1) * sizeof(char *));
            o->xprops[o->n_xprops++] = (char *)arg;
            break;
        case OPT_BROKERS:
            o->brokers = arg;
            break;
        case OPT_TOPIC_PRED:
            o->topic_predictions = arg;
            break;
        case OPT_TOPIC_LABEL:
            o->topic_labels = arg;
            break;
        case OPT_PRED_OUT:
            o->predictions_out = arg;
            break;
        case OPT_LABEL_OUT:
            o->labels_out = arg;
            break;
        case OPT_TRUTH:
            o->truth_out = arg;
            break;
        case OPT_SEED:
            if (parse_i64(arg, 0, INT64_MAX, &v64)) {
                return dw_err(errstr, errstr_size, "--seed: '%s' is not an integer >= 0", arg);
            }
            o->seed = (uint64_t)v64;
            break;
        case OPT_COUNT:
            if (parse_i64(arg, 0, GEN_MAX_COUNT, &o->count)) {
                return dw_err(errstr, errstr_size, "--count: '%s' is not in [0, %d]", arg,
                              GEN_MAX_COUNT);
            }
            break;
        case OPT_START:
            if (dw_time_parse_rfc3339(arg, strlen(arg), &o->start_ms) &&
                parse_i64(arg, -9000000000000000LL, 9000000000000000LL, &o->start_ms)) {
                return dw_err(errstr, errstr_size, "--start: '%s' is not RFC 3339 or epoch ms",
                              arg);
            }
            break;
        case OPT_EPS:
            if (parse_double(arg, 1e-6, 1e9, &o->eps)) {
                return dw_err(errstr, errstr_size, "--eps: '%s' is not a positive number", arg);
            }
            break;
        case OPT_RATE:
            if (parse_double(arg, 0.0, 1e9, &o->rate)) {
                return dw_err(errstr, errstr_size, "--rate: '%s' is not a number >= 0", arg);
            }
            break;
        case OPT_MODEL:
            if (!is_plain_name(arg)) {
                return dw_err(errstr, errstr_size,
                              "--model: '%s' must be printable ASCII without quotes", arg);
            }
            o->model = arg;
            break;
        case OPT_VERSIONS:
            versions_arg = arg;
            break;
        case OPT_NUMERIC:
        case OPT_CATEGORICAL:
            if (parse_i64(arg, 0, GEN_MAX_FEATURES, &v64)) {
                return dw_err(errstr, errstr_size, "--%s: '%s' is not in [0, %d]",
                              opt == OPT_NUMERIC ? "numeric" : "categorical", arg,
                              GEN_MAX_FEATURES);
            }
            if (opt == OPT_NUMERIC) {
                o->n_numeric = (int)v64;
            } else {
                o->n_categorical = (int)v64;
            }
            break;
        case OPT_MISSING:
        case OPT_ACCURACY:
        case OPT_LABEL_SHARE:
        case OPT_EARLY:
        case OPT_DUPLICATES:
        case OPT_CONFLICTS:
        case OPT_MALFORMED:
        case OPT_ERROR_RATE:
        case OPT_DRIFT_ACCURACY: {
            double v;
            if (parse_double(arg, 0.0, 1.0, &v)) {
                return dw_err(errstr, errstr_size, "--%s: '%s' is not a share in [0, 1]", name,
                              arg);
            }
            if (opt == OPT_MISSING) {
                o->missing = v;
            } else if (opt == OPT_ACCURACY) {
                o->accuracy = v;
            } else if (opt == OPT_LABEL_SHARE) {
                o->label_share = v;
            } else if (opt == OPT_EARLY) {
                o->early = v;
            } else if (opt == OPT_DUPLICATES) {
                o->duplicates = v;
            } else if (opt == OPT_CONFLICTS) {
                o->conflicts = v;
            } else if (opt == OPT_MALFORMED) {
                o->malformed = v;
            } else if (opt == OPT_ERROR_RATE) {
                o->error_rate = v;
                error_options = 1;
            } else {
                o->drift_accuracy = v;
                o->has_drift_accuracy = 1;
                o->drift_options = 1;
            }
            break;
        }
        case OPT_SCORES:
            if (strcmp(arg, "uniform") != 0 && strcmp(arg, "calibrated") != 0) {
                return dw_err(errstr, errstr_size, "--scores: '%s' is not uniform or calibrated",
                              arg);
            }
            o->calibrated = strcmp(arg, "calibrated") == 0;
            break;
        case OPT_LABEL_DELAY:
            if (parse_double(arg, 0.0, 1e9, &o->label_delay_s)) {
                return dw_err(errstr, errstr_size, "--label-delay: '%s' is not seconds >= 0", arg);
            }
            break;
        case OPT_OVERSIZE:
            if (parse_i64(arg, 0, GEN_MAX_OVERSIZE, &o->oversize)) {
                return dw_err(errstr, errstr_size, "--oversize: '%s' is not in [0, %d]", arg,
                              GEN_MAX_OVERSIZE);
            }
            break;
        case OPT_DRIFT_AT:
            if (parse_double(arg, -1e12, 1e12, &drift_at_s)) {
                return dw_err(errstr, errstr_size, "--drift-at: '%s' is not seconds", arg);
            }
            o->has_drift = 1;
            break;
        case OPT_DRIFT_SHIFT:
            shift_arg = arg;
            o->drift_options = 1;
            break;
        case OPT_DRIFT_MIX:
            mix_arg = arg;
            o->drift_options = 1;
            break;
        case OPT_TRAFFIC:
            traffic_arg = arg;
            break;
        case OPT_VERSION_ACCURACY:
            vacc_arg = arg;
            break;
        case OPT_VERSION_LATENCY:
            vlat_arg = arg;
            break;
        case OPT_DRIFT_VERSIONS:
            vdrift_arg = arg;
            break;
        case OPT_STATUS_FIELD:
            o->status_field = 1;
            break;
        case OPT_VERSION_ERRORS:
            verr_arg = arg;
            error_options = 1;
            break;
        case OPT_WINDOW:
            if (parse_double(arg, 0.001, 1e9, &window_s)) {
                return dw_err(errstr, errstr_size, "--window: '%s' is not seconds > 0", arg);
            }
            break;
        case OPT_PRINT_MODELS:
            o->print_models = 1;
            break;
        case ':':
            if (optopt > 0 && optopt < 256) {
                return dw_err(errstr, errstr_size, "-%c needs a value", optopt);
            }
            return dw_err(errstr, errstr_size, "%s needs a value", name);
        case '?':
        default:
            if (optopt > 0 && optopt < 256) {
                return dw_err(errstr, errstr_size, "unknown option '-%c'", optopt);
            }
            return dw_err(errstr, errstr_size, "unknown option '%s'", name);
        }
    }
    if (optind < argc) {
        return dw_err(errstr, errstr_size, "unexpected argument '%s'", argv[optind]);
    }

    int n = split_list(versions_arg, &o->versions);
    if (n < 0) {
        return dw_err(errstr, errstr_size, "--versions: empty item in '%s'", versions_arg);
    }
    o->n_versions = (size_t)n;
    for (size_t i = 0; i < o->n_versions; i++) {
        if (!is_plain_name(o->versions[i])) {
            return dw_err(errstr, errstr_size,
                          "--versions: '%s' must be printable ASCII without quotes",
                          o->versions[i]);
        }
    }
    if (apply_version_options(o, traffic_arg, vacc_arg, vlat_arg, errstr, errstr_size) ||
        (vdrift_arg && apply_drift_versions(o, vdrift_arg, errstr, errstr_size))) {
        return -1;
    }
    if (error_options && !o->status_field) {
        return dw_err(errstr, errstr_size,
                      "--error-rate and --version-errors need --status-field (the errors are "
                      "written in the status field)");
    }
    if (verr_arg && apply_version_values(o, "version-errors", verr_arg, "a share", 0.0, 1.0,
                                         o->v_error_rate, errstr, errstr_size)) {
        return -1;
    }
    if (o->calibrated &&
        (o->accuracy < 0.5 || (o->has_drift_accuracy && o->drift_accuracy < 0.5))) {
        return dw_err(errstr, errstr_size,
                      "--scores calibrated: --accuracy and --drift-accuracy must be at least 0.5 "
                      "(a score predicts the class it is nearer to)");
    }
    build_feature_names(o);
    if (apply_drift_lists(o, shift_arg, mix_arg, errstr, errstr_size)) {
        return -1;
    }
    if (o->malformed * (double)o->count > (double)REF_MASK ||
        (double)o->count * 4.0 + (double)o->oversize > (double)UINT32_MAX) {
        return dw_err(errstr, errstr_size, "too many messages");
    }
    o->drift_at_ms = o->start_ms + llround(drift_at_s * 1000.0);
    o->window_ms = llround(window_s * 1000.0);
    if (o->window_ms < 1) {
        return dw_err(errstr, errstr_size, "--window: at least 1 millisecond");
    }
    if (o->print_models) {
        return 0;
    }
    if (o->brokers && (o->predictions_out || o->labels_out)) {
        return dw_err(errstr, errstr_size,
                      "--brokers and --predictions-out/--labels-out are exclusive");
    }
    if (!o->brokers && !o->predictions_out && !o->labels_out && !o->truth_out) {
        return dw_err(errstr, errstr_size,
                      "no sink: give --brokers, --predictions-out/--labels-out or --truth");
    }
    return 0;
}

static void print_models(const struct gen_opts *o)
{
    printf("models:\n  %s:\n    task: classification\n    features:\n", o->model);
    for (int k = 0; k < o->n_numeric + o->n_categorical; k++) {
        printf("      %s: %s\n", o->feature_names[k], k < o->n_numeric ? "numeric" : "categorical");
    }
    fflush(stdout);
}

int dw_cmd_gen(int argc, char **argv)
{
    struct gen_opts o;
    struct gen_plan plan;
    struct gen_sink sink;
    char errstr[512] = "";
    FILE *truth = NULL;
    int sink_opened = 0;
    int rc = 1;

    memset(&plan, 0, sizeof(plan));
    int prc = parse_args(argc, argv, &o, errstr, sizeof(errstr));
    if (prc == 1) {
        usage(stdout);
        opts_free(&o);
        return 0;
    }
    if (prc < 0) {
        fprintf(stderr, "driftwatch gen: %s\n(see 'driftwatch gen --help')\n", errstr);
        opts_free(&o);
        return 2;
    }
    if (o.print_models) {
        print_models(&o);
        opts_free(&o);
        return 0;
    }
    if (!o.has_drift && o.drift_options) {
        fprintf(stderr, "driftwatch gen: drift options given without --drift-at: no drift\n");
    }

    /* Sinks first: a property librdkafka rejects is reported before any work. */
    int has_sink = o.brokers || o.predictions_out || o.labels_out;
    if (has_sink) {
        int src = sink_open(&o, &sink, errstr, sizeof(errstr));
        if (src != 0) {
            rc = src == -2 ? 2 : 1;
            goto err;
        }
        sink_opened = 1;
    }
    if (o.truth_out) {
        truth = fopen(o.truth_out, "w");
        if (!truth) {
            dw_err(errstr, sizeof(errstr), "%s: %s", o.truth_out, strerror(errno));
            goto err;
        }
    }
    if (plan_build(&o, &plan, truth, errstr, sizeof(errstr))) {
        goto err;
    }
    if (truth) {
        int crc = fclose(truth);
        truth = NULL;
        if (crc != 0) {
            dw_err(errstr, sizeof(errstr), "%s: %s", o.truth_out, strerror(errno));
            goto err;
        }
    }
    if (has_sink) {
        if (emit_all(&o, &plan, &sink, errstr, sizeof(errstr))) {
            goto err;
        }
        sink_opened = 0;
        if (sink_close(&o, &sink, 0, errstr, sizeof(errstr))) {
            goto err;
        }
        if (o.brokers && !o.quiet) {
            dw_log(DW_LOG_INFO, "gen: delivered", "{s:s,s:I,s:I}", "brokers", o.brokers,
                   "delivered", (json_int_t)sink.delivered, "oversize_rejected",
                   (json_int_t)sink.oversize_rejected);
        }
        if (sink.oversize_rejected > 0) {
            dw_log(DW_LOG_WARN, "gen: oversize messages rejected by the broker", "{s:I}",
                   "rejected", (json_int_t)sink.oversize_rejected);
        }
    }
    if (!o.quiet) {
        dw_log(DW_LOG_INFO, "gen done", "{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "predictions",
               (json_int_t)o.count, "labels", (json_int_t)plan.labels, "label_events",
               (json_int_t)plan.label_events, "early_labels", (json_int_t)plan.early_labels,
               "duplicate_labels", (json_int_t)plan.duplicate_labels, "malformed",
               (json_int_t)plan.n_junk, "oversize", (json_int_t)plan.n_oversize);
    }
    rc = 0;
err:
    if (rc != 0) {
        fprintf(stderr, "driftwatch gen: %s\n", errstr);
    }
    if (sink_opened) {
        sink_close(&o, &sink, 1, NULL, 0);
    }
    if (truth) {
        fclose(truth);
    }
    free(plan.msgs);
    opts_free(&o);
    return rc;
}
