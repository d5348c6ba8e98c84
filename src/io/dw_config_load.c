/*
 * dw_config_load.c - the YAML configuration, declared once in a table, and its loader.
 *
 * Why a table: like Fluent Bit's config maps, every scalar key is one row of `cfg_keys[]`
 * (dotted name, type, default as text, offset into struct dw_config, bounds, help). The same
 * rows give the defaults (parsed from their text by the same code that parses the file, so a
 * default can never be something the parser would reject), the parser and its unknown-key
 * errors, the dumped effective config (--check-config) and the Markdown reference in
 * docs/configuration.md. Adding a key is adding a row and a struct field; nothing else.
 *
 * Parsing uses libyaml's document API: the file is loaded into a node tree and walked with a
 * dotted prefix, so `window: {size: 60s}` and `window.size: 60s` both name "window.size". Two
 * parts of the file are not fixed keys and have their own walkers:
 *   - `kafka:` is flattened to librdkafka property names (nested maps joined with dots, a list
 *     joined with commas) and each property is checked on a scratch rd_kafka_conf_t, so a typo
 *     or a bad value stops start-up with librdkafka's own message instead of at connect time.
 *     Properties driftwatch owns (group.id, offset commits) are refused with the reason.
 *   - `models:` is a map of model name -> settings; the per-model scalar keys come from a
 *     second table (`model_keys[]`, offsets into struct dw_model_cfg), features are a map of
 *     name -> type (`amount: numeric`) or name -> {type, method, threshold}, the detector of
 *     that feature; the scalar form keeps method auto and the detectors.* thresholds.
 *     `sla` is a third table (`sla_keys[]`): each threshold given becomes one alert rule of
 *     the model, appended to the rules once the whole file is read (sla_rules_add).
 *
 * `${VAR}` in any scalar value is replaced by the environment variable before the value is
 * converted; `$${` is a literal `${`. Values of secret keys never appear in an error message
 * or in the dump.
 */
#include "driftwatch/io/dw_config_load.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>
#include <yaml.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_slots.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define KEY_NAME_MAX 512 /* bytes: longest dotted key name accepted */

enum cfg_type {
    T_STRING = 0,
    T_SECRET, /* a string that is masked in the dump and never echoed in errors */
    T_INT,    /* int or int64_t member, chosen by the member's size */
    T_DOUBLE,
    T_BOOL,     /* int member, 0 or 1 */
    T_DURATION, /* int64_t member in milliseconds, parsed by dw_duration_parse() */
    T_ENUM,     /* int-sized enum member: index into `choices` */
};

/* Row flags. */
#define F_MIN 0x01          /* value >= min */
#define F_MIN_EXCL 0x02     /* value > min */
#define F_MAX 0x04          /* value <= max */
#define F_MAX_EXCL 0x08     /* value < max */
#define F_NONEMPTY 0x10     /* string must not be "" */
#define F_JSON_POINTER 0x20 /* string is an RFC 6901 JSON pointer */
#define F_HTTP_URL 0x40     /* string is "" or an http:// or https:// URL */
#define F_WHOLE_MS 0x80     /* duration must be a whole number of milliseconds */
#define F_NAMED_SET 0x100   /* secret: when it names a file or variable, not "" (it would open) */

struct cfg_key {
    const char *name; /* dotted name, e.g. "window.size" */
    enum cfg_type type;
    const char *def; /* default, as it would be written in the YAML file */
    size_t offset;   /* offsetof the member in its struct */
    size_t size;     /* sizeof the member */
    unsigned flags;
    double min, max;     /* bounds for F_MIN* / F_MAX* (milliseconds for durations) */
    const char *choices; /* "a|b|c" for T_ENUM and for strings limited to a set */
    const char *help;
};

#define CFG(m) .offset = offsetof(struct dw_config, m), .size = sizeof(((struct dw_config *)0)->m)
#define MODEL(m)                                                                                   \
    .offset = offsetof(struct dw_model_cfg, m), .size = sizeof(((struct dw_model_cfg *)0)->m)

_Static_assert(sizeof(enum dw_task) == sizeof(int), "T_ENUM stores enums as int");
_Static_assert(sizeof(enum dw_ref_source) == sizeof(int), "T_ENUM stores enums as int");

#define REF_SOURCES "windows|profile|trailing" /* enum dw_ref_source, in order */

/*
 * models.<m>.reference as written: each key not given (source -1, windows 0, profile NULL) is
 * the global reference.* one, which may come later in the file, so the two are resolved into
 * the model's struct dw_ref_cfg once the whole file is read (reference_resolve).
 */
struct ref_override {
    int source;
    int64_t windows;
    char *profile;
    int per_version; /* -1: not given */
    int given;       /* the map was given (twice is an error) */
};
#define REF_OVER(m)                                                                                \
    .offset = offsetof(struct ref_override, m), .size = sizeof(((struct ref_override *)0)->m)

/*
 * The configuration. Keep the rows of one section together: the dump prints sections in the
 * order their first key appears.
 */
/* One key per row reads better than clang-format's one field per line. */
/* clang-format off */
static const struct cfg_key cfg_keys[] = {
    {.name = "group", .type = T_STRING, .def = "driftwatch", CFG(group), .flags = F_NONEMPTY,
     .help = "Kafka consumer group of the driftwatch pods and the namespace of their Redis keys "
             "(`{dw:<group>:<topic>:<partition>}`); pods with the same group share the "
             "partitions."},

    {.name = "topics.predictions", .type = T_STRING, .def = "predictions",
     CFG(topic_predictions), .flags = F_NONEMPTY,
     .help = "Topic of prediction events (JSON, keyed by prediction_id). Must have the same "
             "partition count as topics.labels."},
    {.name = "topics.labels", .type = T_STRING, .def = "labels", CFG(topic_labels),
     .flags = F_NONEMPTY,
     .help = "Topic of label (ground truth) events, keyed by prediction_id and co-partitioned "
             "with topics.predictions; must differ from it."},
    {.name = "topics.dead_letter", .type = T_STRING, .def = "driftwatch-dead-letter",
     CFG(topic_dead_letter),
     .help = "Topic that receives every unusable message with its error; \"\" disables it (bad "
             "messages are then only counted and logged)."},
    {.name = "topics.triggers", .type = T_STRING, .def = "driftwatch-triggers",
     CFG(topic_triggers),
     .help = "Topic that receives retraining triggers (JSON, keyed by model); \"\" disables "
             "triggers."},

    {.name = "redis.host", .type = T_STRING, .def = "127.0.0.1", CFG(redis_host),
     .flags = F_NONEMPTY, .help = "Host name or address of the Redis server holding the state."},
    {.name = "redis.port", .type = T_INT, .def = "6379", CFG(redis_port),
     .flags = F_MIN | F_MAX, .min = 1, .max = 65535, .help = "TCP port of the Redis server."},
    {.name = "redis.password", .type = T_SECRET, .def = "", CFG(redis_password),
     .help = "Redis AUTH password; \"\" sends no AUTH. Write ${REDIS_PASSWORD} rather than the "
             "password itself."},
    {.name = "redis.username", .type = T_STRING, .def = "", CFG(redis_username),
     .help = "Redis ACL user: AUTH <username> <password> (needs redis.password); \"\" sends "
             "AUTH <password> alone (the default user). The commands and keys the user needs "
             "are in docs/operations.md, \"ACL users: the minimal ACL\"."},
    {.name = "redis.master_name", .type = T_STRING, .def = "", CFG(redis_master_name),
     .help = "With redis.sentinels: the name the sentinels monitor the master under (`sentinel "
             "monitor <name> ...`). Required with redis.sentinels, refused without them."},
    {.name = "redis.sentinel_password", .type = T_SECRET, .def = "",
     CFG(redis_sentinel_password),
     .help = "AUTH password of the sentinels themselves (their requirepass); \"\" sends none. "
             "redis.username and redis.password are for the master."},
    {.name = "redis.db", .type = T_INT, .def = "0", CFG(redis_db), .flags = F_MIN, .min = 0,
     .help = "Redis logical database number (SELECT)."},
    {.name = "redis.timeout", .type = T_DURATION, .def = "2s", CFG(redis_timeout_ms),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Connect and command timeout for Redis; consumption pauses while Redis does not "
             "answer."},
    {.name = "redis.cluster", .type = T_BOOL, .def = "false", CFG(redis_cluster),
     .help = "Use a Redis Cluster: its slot map is read from redis.nodes and every command goes "
             "to the master of its key's hash slot (MOVED and ASK are followed). Not with "
             "redis.host, redis.port or a redis.db other than 0. See docs/operations.md, "
             "\"Redis Cluster\"."},

    {.name = "input.max_message_bytes", .type = T_INT, .def = "262144", CFG(max_message_bytes),
     .flags = F_MIN | F_MAX, .min = 1024, .max = 104857600,
     .help = "Largest accepted message value, in bytes; larger messages go to the dead-letter "
             "topic as too_large."},
    {.name = "input.non_finite", .type = T_ENUM, .def = "count", CFG(non_finite),
     .choices = "reject|count",
     .help = "NaN, Infinity and -Infinity (not JSON, but what Python's json module writes): "
             "count = accepted; a numeric feature's value is counted per feature (nan, inf) "
             "and never enters the sketches or moments, a categorical feature takes the "
             "token's text, any other field read from the event is wrong_type (bad_timestamp "
             "for the timestamp). reject = the message is invalid_json."},
    {.name = "input.max_depth", .type = T_INT, .def = "64", CFG(max_depth),
     .flags = F_MIN | F_MAX, .min = 1, .max = 2048,
     .help = "Deepest nesting of arrays and objects accepted in a message (the top-level object "
             "is 1; real events nest 2 to 4 deep); deeper messages go to the dead-letter topic "
             "as too_deep, even when they are also invalid JSON. The parse stops at the first "
             "level too deep, so a hostile message costs time linear in its size."},
    {.name = "input.fields.prediction_id", .type = T_STRING, .def = "/prediction_id",
     CFG(field_prediction_id), .flags = F_JSON_POINTER,
     .help = "JSON pointer (RFC 6901) to the prediction id in a prediction event: the join "
             "key."},
    {.name = "input.fields.model", .type = T_STRING, .def = "/model", CFG(field_model),
     .flags = F_JSON_POINTER,
     .help = "JSON pointer to the model name in a prediction event; it must name a model under "
             "models."},
    {.name = "input.fields.model_version", .type = T_STRING, .def = "/model_version",
     CFG(field_model_version), .flags = F_JSON_POINTER,
     .help = "JSON pointer to the model version (text) in a prediction event."},
    {.name = "input.fields.timestamp", .type = T_STRING, .def = "/timestamp",
     CFG(field_timestamp), .flags = F_JSON_POINTER,
     .help = "JSON pointer to the prediction's event time (RFC 3339, or epoch seconds or "
             "milliseconds); when absent the Kafka message timestamp is used."},
    {.name = "input.fields.features", .type = T_STRING, .def = "/features", CFG(field_features),
     .flags = F_JSON_POINTER,
     .help = "JSON pointer to the object of feature name -> value in a prediction event."},
    {.name = "input.fields.prediction", .type = T_STRING, .def = "/prediction",
     CFG(field_prediction), .flags = F_JSON_POINTER,
     .help = "JSON pointer to the predicted class (classification) or value (regression)."},
    {.name = "input.fields.score", .type = T_STRING, .def = "/score", CFG(field_score),
     .flags = F_JSON_POINTER,
     .help = "JSON pointer to the score: the positive class's probability, or an object of "
             "class -> probability (optional in events)."},
    {.name = "input.fields.latency_ms", .type = T_STRING, .def = "/latency_ms",
     CFG(field_latency_ms), .flags = F_JSON_POINTER,
     .help = "JSON pointer to the serving latency in milliseconds (optional in events)."},
    {.name = "input.fields.status", .type = T_STRING, .def = "", CFG(field_status),
     .flags = F_JSON_POINTER,
     .help = "JSON pointer to the serving status of a prediction (optional in events; a string, "
             "number or boolean, compared as its text like a class; an object or array is "
             "dead-lettered as bad_status). \"\" (the default): events carry no status and the "
             "reports' serving error rate and availability are null, with the reason. See "
             "input.error_values."},
    {.name = "input.fields.label_id", .type = T_STRING, .def = "/prediction_id",
     CFG(field_label_id), .flags = F_JSON_POINTER,
     .help = "JSON pointer to the prediction id in a label event."},
    {.name = "input.fields.label", .type = T_STRING, .def = "/label", CFG(field_label),
     .flags = F_JSON_POINTER,
     .help = "JSON pointer to the true class or value in a label event."},
    {.name = "input.fields.label_timestamp", .type = T_STRING, .def = "/timestamp",
     CFG(field_label_timestamp), .flags = F_JSON_POINTER,
     .help = "JSON pointer to the label's event time; when absent the Kafka message timestamp "
             "is used."},
    {.name = "input.max_future_skew", .type = T_DURATION, .def = "1h", CFG(max_future_skew_ms),
     .help = "Latest accepted event time of a prediction or label, relative to its Kafka message "
             "timestamp (CreateTime or LogAppendTime; the wall clock when the message has none): "
             "a later one is dead-lettered as timestamp_out_of_range and moves no watermark. "
             "0 = no bound."},
    {.name = "input.max_past_skew", .type = T_DURATION, .def = "30d", CFG(max_past_skew_ms),
     .help = "Earliest accepted event time, this long before the Kafka message timestamp: an "
             "older one is dead-lettered as timestamp_out_of_range. Longer than the topics' "
             "retention, so a consumer catching up on a backlog loses nothing. 0 = no bound."},

    {.name = "window.size", .type = T_DURATION, .def = "60s", CFG(window_size_ms),
     .flags = F_MIN | F_WHOLE_MS, .min = 1000,
     .help = "Length of the event-time tumbling windows, aligned to the epoch "
             "(`[k*size, (k+1)*size)`); at least 1s, a whole number of milliseconds."},
    {.name = "window.allowed_lateness", .type = T_DURATION, .def = "10s",
     CFG(allowed_lateness_ms),
     .help = "How far behind a partition's newest event time an event may be and still count: "
             "a partition's watermark is its max event time minus this; a window closes when "
             "every partition's watermark passed its end."},
    {.name = "window.idle_timeout", .type = T_DURATION, .def = "30s", CFG(idle_timeout_ms),
     .help = "A partition that reached the end of its log and received nothing for this long "
             "stops holding windows open."},
    {.name = "window.label_horizon", .type = T_DURATION, .def = "1h", CFG(label_horizon_ms),
     .help = "Labels still update their prediction's window until this long after the window's "
             "end; performance is reported again when it has passed."},
    {.name = "window.retention", .type = T_INT, .def = "1440", CFG(retention_windows),
     .flags = F_MIN, .min = 1,
     .help = "Number of windows whose reports and summaries (what `inspect` prints) are kept in "
             "Redis (1440 one-minute windows = one day). The partitions' own records of a window "
             "are deleted earlier, once no evaluation reads them (after the final evaluation of "
             "the window evaluation.rolling_windows - 1 later); this is their upper bound should "
             "a consumer stop before deleting them."},

    {.name = "join.ttl", .type = T_DURATION, .def = "1h", CFG(join_ttl_ms), .flags = F_MIN_EXCL,
     .min = 0,
     .help = "Event time a prediction waits for its label, and a label for its prediction, "
             "before the join record is dropped; also how long a joined record is kept to "
             "recognise later labels as duplicates."},
    {.name = "join.max_records", .type = T_INT, .def = "2000000", CFG(join_max_records),
     .flags = F_MIN, .min = 1000,
     .help = "Most join records (predictions waiting for a label, parked labels, joined "
             "records kept until join.ttl) one consumer keeps; the oldest beyond it are evicted "
             "and counted. A record that waits takes 113-129 bytes with ids up to 40 bytes, 272 "
             "at worst (distinct parked label texts), a joined record 43-53 bytes (21 in "
             "Redis): the default fits the 2 GiB limit of deploy/kustomize/base with 25 % "
             "headroom (docs/design.md, Memory bounds)."},

    {.name = "checkpoint.interval", .type = T_DURATION, .def = "1s", CFG(checkpoint_interval_ms),
     .flags = F_MIN, .min = 10,
     .help = "Period of the Redis checkpoint (state and offsets in one MULTI/EXEC per "
             "partition); at least 10ms."},
    {.name = "checkpoint.max_messages", .type = T_INT, .def = "200000",
     CFG(checkpoint_max_messages), .flags = F_MIN, .min = 1000,
     .help = "A checkpoint is also taken once this many messages were consumed since the last "
             "one, before checkpoint.interval: what a catch-up holds until it checkpoints "
             "(windows not sealed yet, their encodings, the transactions) then grows with the "
             "messages, not with the speed. At least 1000."},
    {.name = "state.on_loss", .type = T_ENUM, .def = "stop", CFG(on_loss),
     .choices = "stop|resume_from_committed|rebuild_from_earliest",
     .help = "What a consumer does with a partition whose state is gone from Redis (Redis "
             "restarted empty, was flushed, or evicted keys) while Kafka holds offsets "
             "committed after a checkpoint: stop = the partition is not consumed and /readyz "
             "fails until an operator decides; resume_from_committed = start from the "
             "committed offsets with empty state (the windows open at the loss are partial); "
             "rebuild_from_earliest = re-read the topics from the earliest offset (complete "
             "only while Kafka's retention still holds every message). Every loss is counted "
             "(driftwatch_state_losses_total) and logged."},
    {.name = "state.quarantine_recheck", .type = T_DURATION, .def = "30s",
     CFG(quarantine_recheck_ms),
     .help = "A partition whose stored state is corrupt is quarantined (assigned but not "
             "consumed); its state is loaded again this often, so that a repair (`driftwatch "
             "state drop`) takes effect without a restart. 0: only at the next assignment."},
    {.name = "evaluation.interval", .type = T_DURATION, .def = "1s", CFG(eval_interval_ms),
     .flags = F_MIN, .min = 10,
     .help = "Period at which closed windows are looked for and detectors run; at least 10ms."},
    {.name = "evaluation.rolling_windows", .type = T_INT, .def = "6", CFG(rolling_windows),
     .flags = F_MIN | F_MAX, .min = 0, .max = 24,
     .help = "Each window report adds `rolling`: performance over the last N windows ending "
             "with it (fewer at the start; empty windows count), merged from their aggregates; "
             "0 disables it. 0..24, and at most window.retention."},

    {.name = "reference.source", .type = T_ENUM, .def = "windows", CFG(reference_source),
     .choices = REF_SOURCES,
     .help = "What each model's windows are judged against (models.<name>.reference.source "
             "overrides it): windows = its first reference.windows windows with predictions, "
             "frozen (and not judged themselves); profile = the training data's profile "
             "(reference.profile, made by `driftwatch profile`); trailing = for each window, "
             "the reference.windows windows before it (sudden change, not slow decay). "
             "`driftwatch reference set` stores a profile that replaces any of them. See "
             "docs/statistics.md, \"Reference sources\"."},
    {.name = "reference.windows", .type = T_INT, .def = "3", CFG(reference_windows),
     .flags = F_MIN, .min = 1,
     .help = "Source windows: the first N closed windows of a model with predictions form its "
             "reference; once their labels are final (window.label_horizon) their merged "
             "performance is the model's baseline, unless models.<name>.baseline is set. "
             "Source trailing: the N windows before the one judged."},
    {.name = "reference.profile", .type = T_STRING, .def = "", CFG(reference_profile),
     .help = "Source profile: the profile file (`driftwatch profile`; file:// accepted), read "
             "at start-up and checked against the model's features (a mismatch names the "
             "feature). A profile made with the training data's label and prediction columns "
             "also gives the performance baseline."},
    {.name = "reference.per_version", .type = T_BOOL, .def = "false",
     CFG(reference_per_version),
     .help = "Source windows: each model version collects its own reference from its first "
             "reference.windows windows with predictions of that version, and its features "
             "(versions.<v>.features) are judged against it; false: every version against the "
             "model's reference. Source profile: the profile for every version. Not with source "
             "trailing. Each version's feature statistics are then kept apart (docs/canary.md, "
             "\"Per-version feature drift\": a second pass over the features)."},
    {.name = "reference.bins", .type = T_INT, .def = "10", CFG(psi_bins),
     .flags = F_MIN | F_MAX, .min = 2, .max = 100,
     .help = "Number of quantile bins of the reference for numeric PSI (10 = deciles); 2..100."},

    {.name = "detectors.psi_threshold", .type = T_DOUBLE, .def = "0.2", CFG(psi_threshold),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Method psi: a feature drifts when its PSI against the reference is at least this "
             "(0.1 slight, 0.2 significant)."},
    {.name = "detectors.accuracy_drop", .type = T_DOUBLE, .def = "0.05", CFG(accuracy_drop),
     .flags = F_MIN_EXCL | F_MAX_EXCL, .min = 0, .max = 1,
     .help = "Relative performance drop that alerts (the built-in rule accuracy_drop, on "
             "performance_drop.alert): 0.05 = alert when accuracy (classification) falls, or "
             "RMSE (regression) rises, more than 5 % from the baseline, in a window with at "
             "least detectors.min_samples labels."},
    {.name = "detectors.min_samples", .type = T_INT, .def = "100", CFG(min_samples),
     .flags = F_MIN, .min = 0,
     .help = "Windows with fewer predictions than this are reported but not judged."},
    {.name = "detectors.drift_share", .type = T_DOUBLE, .def = "0.5", CFG(drift_share),
     .flags = F_MIN_EXCL | F_MAX, .min = 0, .max = 1,
     .help = "A model (dataset) drifts when at least this share of its judged features drift."},
    {.name = "detectors.alpha", .type = T_DOUBLE, .def = "0.05", CFG(alpha),
     .flags = F_MIN_EXCL | F_MAX_EXCL, .min = 0, .max = 1,
     .help = "Significance level of the p-value tests (ks, chi2, g_test): a feature drifts when "
             "its p-value, adjusted by Benjamini-Hochberg across the model's features tested "
             "in the window, is at most this."},
    {.name = "detectors.auto_max_sample", .type = T_INT, .def = "1000", CFG(auto_max_sample),
     .flags = F_MIN, .min = 0,
     .help = "Method auto uses a p-value test (ks numeric, chi2 categorical) when the smaller "
             "of the window's and the reference's value counts is at most this, else a "
             "distance (wasserstein numeric, js categorical): large samples make every tiny "
             "difference significant."},
    {.name = "detectors.wasserstein_threshold", .type = T_DOUBLE, .def = "0.1",
     CFG(wasserstein_threshold), .flags = F_MIN_EXCL, .min = 0,
     .help = "Method wasserstein: drift when the Wasserstein-1 distance divided by the "
             "reference's standard deviation (wasserstein_norm) is at least this."},
    {.name = "detectors.js_threshold", .type = T_DOUBLE, .def = "0.1", CFG(js_threshold),
     .flags = F_MIN_EXCL | F_MAX, .min = 0, .max = 1,
     .help = "Method js: drift when the Jensen-Shannon distance (base 2) is at least this."},
    {.name = "detectors.kl_threshold", .type = T_DOUBLE, .def = "0.1", CFG(kl_threshold),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Method kl: drift when the KL divergence of the window from the reference (natural "
             "log, reference bins) is at least this."},
    {.name = "detectors.hellinger_threshold", .type = T_DOUBLE, .def = "0.1",
     CFG(hellinger_threshold), .flags = F_MIN_EXCL | F_MAX, .min = 0, .max = 1,
     .help = "Method hellinger: drift when the Hellinger distance (reference bins) is at least "
             "this."},
    {.name = "detectors.tvd_threshold", .type = T_DOUBLE, .def = "0.1", CFG(tvd_threshold),
     .flags = F_MIN_EXCL | F_MAX, .min = 0, .max = 1,
     .help = "Method tvd: drift when the total variation distance is at least this."},
    {.name = "detectors.chi2_correction", .type = T_BOOL, .def = "false", CFG(chi2_correction),
     .help = "Apply Yates' continuity correction to chi2 and g_test when the table has one "
             "degree of freedom (scipy's correction=True)."},

    {.name = "http.listen", .type = T_STRING, .def = "127.0.0.1:8080", CFG(http_listen),
     .help = "host:port of the HTTP server (/metrics, /livez, /readyz, /status, the status "
             "page / and the API /api/v1/, docs/api.md); \"\" disables it."},
    {.name = "http.auth_token", .type = T_SECRET, .def = "", CFG(http_auth_token),
     .flags = F_NAMED_SET,
     .help = "Bearer token that GET /, /api/ and /status require (Authorization: Bearer "
             "<token>); \"\" leaves them open. /livez, /readyz and /metrics never ask for it. "
             "Write ${DW_HTTP_TOKEN} or file:///path rather than the token itself."},

    {.name = "metrics.max_series", .type = T_INT, .def = "10000", CFG(metrics_max_series),
     .flags = F_MIN, .min = 1,
     .help = "Most model series (driftwatch_model_*, driftwatch_feature_*, "
             "driftwatch_dataset_drift_share, driftwatch_window_last_evaluated_timestamp_seconds) "
             "a pod creates on /metrics, all models together: one per model, version and "
             "metric, per feature and method. A series is never removed while the pod runs (a "
             "label set no longer reported is set to NaN); beyond the bound new ones are not "
             "created and counted (driftwatch_model_series_refused_total)."},

    {.name = "alerting.queue_size", .type = T_INT, .def = "1000", CFG(alert_queue_size),
     .flags = F_MIN, .min = 1,
     .help = "Alert messages waiting for delivery or being retried, all sinks together; beyond "
             "it a message is dropped and counted (driftwatch_alert_deliveries_dropped_total)."},

    {.name = "triggers.enabled", .type = T_BOOL, .def = "true", CFG(triggers_enabled),
     .help = "Publish retraining triggers to topics.triggers when a trigger rule fires."},
    {.name = "triggers.cooldown", .type = T_DURATION, .def = "1h", CFG(trigger_cooldown_ms),
     .help = "Least time between the windows of two retraining triggers for the same model "
             "(window time, so a replay or a restart decides the same)."},
    {.name = "triggers.min_samples", .type = T_INT, .def = "100", CFG(trigger_min_samples),
     .flags = F_MIN, .min = 0,
     .help = "No trigger for a window with fewer predictions than this."},
    {.name = "triggers.max_per_day", .type = T_INT, .def = "4", CFG(trigger_max_per_day),
     .flags = F_MIN, .min = 1,
     .help = "Most retraining triggers per model per UTC day (of the window start)."},

    {.name = "log.level", .type = T_STRING, .def = "info", CFG(log_level),
     .choices = "debug|info|warn|error",
     .help = "Lowest level of the JSON log lines printed on stdout: debug, info, warn or "
             "error."},
    {.name = "log.bad_messages_per_second", .type = T_INT, .def = "5", CFG(log_bad_per_second),
     .flags = F_MIN | F_MAX, .min = 0, .max = 100000,
     .help = "Most log lines per second about unusable messages (the rest are counted); 0 logs "
             "none."},
};

/* Scalar keys of one model, under models.<name>. */
static const struct cfg_key model_keys[] = {
    {.name = "task", .type = T_ENUM, .def = "classification", MODEL(task),
     .choices = "classification|regression",
     .help = "classification (prediction and label are classes) or regression (numbers)."},
    {.name = "positive_class", .type = T_STRING, .def = "1", MODEL(positive_class),
     .flags = F_NONEMPTY,
     .help = "Class whose probability a numeric score is, for binary metrics; labels compare as "
             "text, so 1 and \"1\" are the same class."},
    {.name = "max_categories", .type = T_INT, .def = "1000", MODEL(max_categories),
     .flags = F_MIN | F_MAX, .min = 1, .max = 100000,
     .help = "Distinct values of a categorical feature counted exactly per window; beyond it "
             "the most frequent values are tracked as heavy hitters (SpaceSaving) and the rest "
             "count as \"__other__\"."},
    {.name = "max_classes", .type = T_INT, .def = "1000", MODEL(max_classes),
     .flags = F_MIN | F_MAX, .min = 1, .max = 1000000,
     .help = "Classification: distinct classes (predicted or true) that the records of this "
             "model waiting in one partition's join (predictions waiting for a label, parked "
             "labels) may hold at once; a prediction or label whose class would be one more is "
             "rejected (dead letter, reason too_many_classes). Joined records hold no class "
             "text, so a class is freed when the last record holding it joins, expires or is "
             "evicted. Regression values are numbers and never count."},
    {.name = "max_versions", .type = T_INT, .def = "100", MODEL(max_versions),
     .flags = F_MIN | F_MAX, .min = 1, .max = 100000,
     .help = "Distinct model versions that the records of this model waiting in one "
             "partition's join may hold at once (joined records hold none); a prediction whose "
             "version would be one more is rejected (dead letter, reason too_many_versions)."},
};
#define CANARY(m)                                                                                  \
    .offset = offsetof(struct dw_model_canary, m),                                                 \
    .size = sizeof(((struct dw_model_canary *)0)->m)
/* Keys of models.<name>.canary (docs/canary.md says why each default is what it is). */
static const struct cfg_key model_canary_keys[] = {
    {.name = "baseline", .type = T_STRING, .def = "auto", CANARY(baseline), .flags = F_NONEMPTY,
     .help = "The version the candidate is compared with; auto: the version with the most "
             "predictions over the analysis windows."},
    {.name = "candidate", .type = T_STRING, .def = "auto", CANARY(candidate),
     .flags = F_NONEMPTY,
     .help = "The version being rolled out; auto: of the other versions, the one seen first "
             "most recently (the newest)."},
    {.name = "windows", .type = T_INT, .def = "30", CANARY(windows), .flags = F_MIN | F_MAX,
     .min = 1, .max = 1000,
     .help = "Windows merged into one analysis (the latest ones), so that a small traffic "
             "share accumulates evidence; at most window.retention."},
    {.name = "min_samples", .type = T_INT, .def = "100", CANARY(min_samples), .flags = F_MIN,
     .min = 1, .help = "Outcomes per version before a check looks at them at all."},
    {.name = "alpha", .type = T_DOUBLE, .def = "0.05", CANARY(cfg.alpha),
     .flags = F_MIN_EXCL | F_MAX, .min = 0, .max = 0.5,
     .help = "Two-sided significance level of the tests and 1 - the confidence of the "
             "intervals."},
    {.name = "max_accuracy_drop", .type = T_DOUBLE, .def = "0.02", CANARY(cfg.max_accuracy_drop),
     .flags = F_MIN_EXCL | F_MAX_EXCL, .min = 0, .max = 1,
     .help = "Tolerated accuracy drop of the candidate (absolute); also the effect the sample "
             "size is planned for."},
    {.name = "max_latency_p95_increase_ms", .type = T_DOUBLE, .def = "20",
     CANARY(cfg.max_latency_p95_increase_ms), .flags = F_MIN, .min = 0,
     .help = "Tolerated increase of the p95 latency, milliseconds."},
    {.name = "max_error_rate_ratio", .type = T_DOUBLE, .def = "2",
     CANARY(cfg.max_error_rate_ratio), .flags = F_MIN, .min = 1,
     .help = "Tolerated candidate / baseline serving error rate."},
    {.name = "min_accuracy", .type = T_DOUBLE, .def = "0", CANARY(cfg.min_accuracy),
     .flags = F_MIN | F_MAX, .min = 0, .max = 1,
     .help = "Accuracy floor of the candidate; 0 is off."},
};
/* Keys of models.<name>.reference: the global reference.* keys of the same name, per model. */
static const struct cfg_key model_ref_keys[] = {
    {.name = "source", .type = T_ENUM, .def = "(reference.source)", REF_OVER(source),
     .choices = REF_SOURCES, .help = "This model's reference.source."},
    {.name = "windows", .type = T_INT, .def = "(reference.windows)", REF_OVER(windows),
     .flags = F_MIN, .min = 1, .help = "This model's reference.windows."},
    {.name = "profile", .type = T_STRING, .def = "(reference.profile)", REF_OVER(profile),
     .help = "This model's reference.profile."},
    {.name = "per_version", .type = T_BOOL, .def = "(reference.per_version)",
     REF_OVER(per_version), .help = "This model's reference.per_version."},
};
/*
 * Keys of models.<name>.sla. A threshold's default "(off)" is not a value: sla_defaults() sets
 * every T_DOUBLE row (the thresholds) to NaN, "not given", and the other rows from their text.
 */
#define SLA(m) .offset = offsetof(struct dw_sla_cfg, m), .size = sizeof(((struct dw_sla_cfg *)0)->m)
static const struct cfg_key sla_keys[] = {
    {.name = "latency_p95_ms", .type = T_DOUBLE, .def = "(off)", SLA(latency_p95_ms),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Rule sla_latency_p95: fires when a window's latency_ms.p95 (milliseconds) is above "
             "this. Needs input.fields.latency_ms in the events; a window without latencies "
             "has no value and counts as within the SLA."},
    {.name = "latency_p99_ms", .type = T_DOUBLE, .def = "(off)", SLA(latency_p99_ms),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Rule sla_latency_p99: fires when a window's latency_ms.p99 is above this."},
    {.name = "error_rate", .type = T_DOUBLE, .def = "(off)", SLA(error_rate),
     .flags = F_MIN | F_MAX, .min = 0, .max = 1,
     .help = "Rule sla_error_rate: fires when a window's serving.error_rate (errors / served) "
             "is above this. No value, so never firing, while the serving status field is not "
             "configured or nothing was served."},
    {.name = "availability", .type = T_DOUBLE, .def = "(off)", SLA(availability),
     .flags = F_MIN | F_MAX, .min = 0, .max = 1,
     .help = "Rule sla_availability: fires when a window's serving.availability (1 - error "
             "rate) is below this."},
    {.name = "for", .type = T_INT, .def = "1", SLA(for_windows), .flags = F_MIN | F_MAX,
     .min = 1, .max = 10000,
     .help = "Consecutive windows over a threshold before its SLA rule fires (as a rule's "
             "for)."},
    {.name = "keep_firing_for", .type = T_INT, .def = "0", SLA(keep_firing_windows),
     .flags = F_MIN | F_MAX, .min = 0, .max = 10000,
     .help = "Windows a firing SLA rule stays firing once back within the SLA; it resolves in "
             "the next one (as a rule's keep_firing_for)."},
    {.name = "severity", .type = T_ENUM, .def = "warning", SLA(severity),
     .choices = "warning|critical",
     .help = "Severity of the SLA rules' alerts (as a rule's severity); sinks route by it."},
};
/* clang-format on */

/* The rule each models.<m>.sla threshold makes: its name, condition and key in sla_keys[]. */
static const struct {
    const char *key;  /* the threshold's key under models.<m>.sla */
    const char *rule; /* the rule's name */
    const char *path; /* the report path it reads */
    enum dw_rule_op op;
    const char *op_text;
    size_t offset; /* of the threshold in struct dw_sla_cfg */
    const char *unit;
} sla_rules[] = {
    {"latency_p95_ms", "sla_latency_p95", "latency_ms.p95", DW_OP_GT, ">",
     offsetof(struct dw_sla_cfg, latency_p95_ms), " ms"},
    {"latency_p99_ms", "sla_latency_p99", "latency_ms.p99", DW_OP_GT, ">",
     offsetof(struct dw_sla_cfg, latency_p99_ms), " ms"},
    {"error_rate", "sla_error_rate", "serving.error_rate", DW_OP_GT, ">",
     offsetof(struct dw_sla_cfg, error_rate), ""},
    {"availability", "sla_availability", "serving.availability", DW_OP_LT, "<",
     offsetof(struct dw_sla_cfg, availability), ""},
};

#define RULE(m) .offset = offsetof(struct dw_rule, m), .size = sizeof(((struct dw_rule *)0)->m)
#define SINK(m)                                                                                    \
    .offset = offsetof(struct dw_sink_cfg, m), .size = sizeof(((struct dw_sink_cfg *)0)->m)

_Static_assert(sizeof(enum dw_severity) == sizeof(int), "T_ENUM stores enums as int");
_Static_assert(sizeof(enum dw_rule_stage) == sizeof(int), "T_ENUM stores enums as int");
_Static_assert(sizeof(enum dw_sink_type) == sizeof(int), "T_ENUM stores enums as int");

/* clang-format off */
/* Scalar keys of one rule, an element of the list alerting.rules. */
static const struct cfg_key rule_keys[] = {
    {.name = "name", .type = T_STRING, .def = "", RULE(name), .flags = F_NONEMPTY,
     .help = "Rule name (letters, digits, _ : -), unique; the alert's alertname label."},
    {.name = "condition", .type = T_STRING, .def = "", RULE(expr_text), .flags = F_NONEMPTY,
     .help = "A path into the window report, true when the value is true "
             "(`features.*.drift`, `drift.dataset`), or compared with a number "
             "(`performance.accuracy < 0.8`, `latency_ms.p95 > 250`, `predictions == 0`); `*` "
             "makes one alert per feature. Operators < <= > >= == !=. See docs/alerting.md."},
    {.name = "model", .type = T_STRING, .def = "", RULE(model),
     .help = "Only this model (\"\" = every model)."},
    {.name = "stage", .type = T_ENUM, .def = "auto", RULE(stage), .choices = "auto|close|final",
     .help = "Report the rule reads: close (when the window closes) or final (after "
             "window.label_horizon, with its labels); auto = final for performance, "
             "performance_drop, accuracy_drop, baseline, rolling, versions, labeled, correct, "
             "unlabeled_share, change_detectors and label_drift, close otherwise."},
    {.name = "for", .type = T_INT, .def = "1", RULE(for_windows), .flags = F_MIN | F_MAX,
     .min = 1, .max = 10000,
     .help = "Consecutive windows the condition must hold before the alert fires."},
    {.name = "keep_firing_for", .type = T_INT, .def = "0", RULE(keep_firing_windows),
     .flags = F_MIN | F_MAX, .min = 0, .max = 10000,
     .help = "Windows a firing alert stays firing after its condition cleared; it resolves "
             "in the next one."},
    {.name = "repeat_interval", .type = T_DURATION, .def = "0s", RULE(repeat_interval_ms),
     .help = "Re-notify a still-firing alert when this much window time passed since its last "
             "notification; 0s = never."},
    {.name = "severity", .type = T_ENUM, .def = "warning", RULE(severity),
     .choices = "warning|critical", .help = "warning or critical; sinks route by it."},
    {.name = "summary", .type = T_STRING, .def = "", RULE(summary),
     .help = "Summary template ({{model}}, {{feature}}, {{rule}}, {{value}}, {{threshold}}, "
             "{{severity}}, {{window_start}}, {{window_end}}, {{labels.KEY}}); \"\" = a "
             "built-in sentence."},
    {.name = "description", .type = T_STRING, .def = "", RULE(description),
     .help = "Description template (same names as summary); \"\" = none."},
    {.name = "runbook_url", .type = T_STRING, .def = "", RULE(runbook_url),
     .help = "Runbook link, sent as the runbook_url annotation and in Slack and PagerDuty."},
    {.name = "inhibits_features", .type = T_BOOL, .def = "false", RULE(inhibits_features),
     .help = "While this rule fires for a model, that model's per-feature alerts (rules with "
             "`*`) are not notified."},
};

/* Scalar keys of one sink, under alerting.sinks.<name>. */
static const struct cfg_key sink_keys[] = {
    {.name = "type", .type = T_ENUM, .def = "webhook", SINK(type),
     .choices = "webhook|slack|pagerduty|alertmanager",
     .help = "webhook (signed JSON, Standard Webhooks), slack (incoming webhook), pagerduty "
             "(Events API v2) or alertmanager (POST /api/v2/alerts)."},
    {.name = "url", .type = T_SECRET, .def = "", SINK(url), .flags = F_HTTP_URL | F_NONEMPTY,
     .help = "Where to POST (alertmanager: its base URL, /api/v2/alerts is added; pagerduty: "
             "https://events.pagerduty.com/v2/enqueue). Secret: use ${VAR} or file://PATH; never "
             "logged."},
    {.name = "secret", .type = T_SECRET, .def = "", SINK(secret), .flags = F_NAMED_SET,
     .help = "webhook: signing secret whsec_<base64> (Standard Webhooks); \"\" = unsigned."},
    {.name = "routing_key", .type = T_SECRET, .def = "", SINK(routing_key),
     .help = "pagerduty: the integration's routing key (required)."},
    {.name = "timeout", .type = T_DURATION, .def = "5s", SINK(timeout_ms), .flags = F_MIN_EXCL,
     .min = 0, .help = "Timeout of one delivery attempt."},
    {.name = "max_attempts", .type = T_INT, .def = "10", SINK(max_attempts),
     .flags = F_MIN | F_MAX, .min = 1, .max = 1000,
     .help = "Attempts per message before it is counted as failed."},
    {.name = "backoff_initial", .type = T_DURATION, .def = "500ms", SINK(backoff_initial_ms),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Wait before the first retry; doubled on every further retry, with jitter."},
    {.name = "backoff_max", .type = T_DURATION, .def = "30s", SINK(backoff_max_ms),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "Longest wait between two retries; at least backoff_initial."},
    {.name = "resend_interval", .type = T_DURATION, .def = "1m", SINK(resend_interval_ms),
     .flags = F_MIN_EXCL, .min = 0,
     .help = "alertmanager: firing alerts are sent again this often (keep it below "
             "Alertmanager's resolve_timeout, 5m by default)."},
    {.name = "generator_url", .type = T_STRING, .def = "", SINK(generator_url),
     .help = "alertmanager: generatorURL of the alerts (a link back, e.g. to /status)."},
};
/* clang-format on */

/* Keys that are not scalars of a fixed name: documented in the reference only. */
/* A key documented in the reference only (not a scalar row of a table). */
struct open_key {
    const char *name, *type, *def, *help;
};

static const struct open_key open_keys[] = {
    {"kafka.bootstrap.servers", "string", "(required)",
     "Comma-separated host:port list of the Kafka brokers (librdkafka's bootstrap.servers)."},
    {"kafka.<property>", "string", "",
     "Any other librdkafka property, passed as-is to the consumer and the producers and checked "
     "at load time. Nested maps join with dots. group.id, enable.auto.commit, "
     "enable.auto.offset.store, enable.partition.eof and partition.assignment.strategy are "
     "refused: driftwatch sets them."},
    {"models.<name>.features.<feature>", "enum or map", "",
     "numeric or categorical: how a feature's values are sketched and tested; or a map "
     "{type: numeric, method: ks, threshold: 0.01} to choose the feature's detector."},
    {"models.<name>.features.<feature>.type", "enum", "(required)",
     "numeric or categorical (in the map form)."},
    {"models.<name>.features.<feature>.method", "enum", "auto",
     "Detector that decides the feature's drift: auto, ks, psi, wasserstein, js, kl, hellinger "
     "(numeric); auto, chi2, g_test, psi, js, tvd (categorical). auto: ks or chi2 for small "
     "samples, wasserstein or js above detectors.auto_max_sample."},
    {"models.<name>.features.<feature>.threshold", "double", "(detectors.*)",
     "The feature's alpha (ks, chi2, g_test: 0 < alpha < 1) or distance threshold (> 0; at most "
     "1 for js, hellinger, tvd), instead of the detectors.* default; not with method auto."},
    {"models.<name>.baseline.<metric>", "double", "(reference windows)",
     "The model's performance baseline, instead of the reference windows' final performance: "
     "a map of metric -> value, e.g. {accuracy: 0.91}. Metrics: accuracy, precision, recall, f1, "
     "f1_macro, f1_micro, roc_auc, log_loss, brier (classification); mae, rmse, mape, r2 "
     "(regression). Proportions in (0, 1], errors > 0, r2 <= 1 and not 0. When given it is the "
     "whole baseline: the metrics it leaves out have none (performance.drop null, "
     "not_configured). See docs/statistics.md, \"Baselines and drops\"."},
};

/* The list- and map-valued alerting keys: documented in the reference only. */
static const struct open_key alerting_open_keys[] = {
    {"alerting.rules", "list of maps", "(built-in rules)",
     "Alert rules. When absent: feature_drift (features.*.drift, warning), dataset_drift "
     "(drift.dataset, critical, inhibits_features) and accuracy_drop (performance_drop.alert: "
     "accuracy, or RMSE for regression, against the baseline; critical). The rules of "
     "models.<name>.sla are added to these or to the list given. See docs/alerting.md."},
    {"alerting.rules[].labels", "map", "{}",
     "Extra labels of the rule's alerts (name -> value), used by sink routing and sent along."},
    {"alerting.sinks", "map", "{}",
     "Where alerts go: sink name -> settings. None: alerts are only logged and shown in "
     "/status."},
    {"alerting.sinks.<name>.severities", "list", "[warning, critical]",
     "Severities this sink receives."},
    {"alerting.sinks.<name>.match", "map", "{}",
     "Label matchers (name -> value): the sink receives an alert only when every one equals the "
     "alert's label."},
    {"triggers.rules", "list", "[]",
     "Names of the rules whose firing asks for a retraining trigger; [] = every rule except "
     "those of models.<name>.sla (retraining does not fix serving latency or errors: name them "
     "to have them trigger)."},
};

/* The list-valued redis keys: documented in the reference only. */
static const struct open_key redis_open_keys[] = {
    {"redis.nodes", "list", "[]",
     "Seed nodes of the Redis Cluster (redis.cluster: true), \"host:port\" each; any reachable "
     "one gives the slot map, the masters it names are then used directly."},
    {"redis.sentinels", "list", "[]",
     "host:port of each Redis Sentinel: at connect, after a connection error and after a "
     "READONLY reply, the sentinels are asked in turn for the master of redis.master_name, "
     "which must then answer ROLE as a master. Not with redis.host/redis.port. [] = the one "
     "server at redis.host:redis.port. See docs/operations.md, \"Redis behind Sentinel\"."},
};

/* The list-valued input keys: documented in the reference only. */
static const struct open_key input_open_keys[] = {
    {"input.error_values", "list", "(error, timeout, integers >= 500)",
     "Status values (input.fields.status) that mean a failed request, strings and/or integers "
     "compared as text (500 matches the status 500 and \"500\"); any other status means "
     "served ok, an absent or null status is not counted. Not given: \"error\", \"timeout\" "
     "and every integer >= 500 (HTTP server errors); [] = no status is an error."},
};

/* librdkafka properties driftwatch sets itself, with the reason shown to the user. */
static const struct {
    const char *key, *why;
} kafka_forbidden[] = {
    {"group.id", "set by driftwatch from `group:` (use `group:` instead)"},
    {"enable.auto.commit",
     "driftwatch stores offsets in its Redis checkpoints and must control commits"},
    {"enable.auto.offset.store",
     "driftwatch stores offsets in its Redis checkpoints and must control the offset store"},
    {"partition.assignment.strategy",
     "driftwatch uses the range assignor so that one pod owns partition P of both topics "
     "(docs/design.md)"},
    {"enable.partition.eof", "driftwatch needs partition EOF events to detect idle partitions"},
};

/* Substrings of kafka property names whose values are masked in the dump. */
static const char *kafka_secret_parts[] = {"password", "secret", "sasl.jaas", "ssl.key.pem",
                                           "sasl.oauthbearer.config"};

/*
 * Value conversion, shared by defaults and parsing.
 */

static int in_choices(const char *choices, const char *s, int *idx)
{
    size_t slen = strlen(s);
    const char *p = choices;
    for (int i = 0;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == slen && strncmp(p, s, n) == 0) {
            if (idx) {
                *idx = i;
            }
            return 1;
        }
        if (!bar) {
            return 0;
        }
        p = bar + 1;
    }
}

/* choices "a|b|c" -> "a, b, c" for messages. */
static void choices_text(const char *choices, char *buf, size_t size)
{
    size_t o = 0;
    for (const char *p = choices; *p && o + 3 < size; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
}

/* Shortest text for a duration in milliseconds that reads back exactly ("90s", "1h"). */
static void format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0) {
        snprintf(buf, size, "%" PRId64 "h", ms / 3600000);
    } else if (ms != 0 && ms % 60000 == 0) {
        snprintf(buf, size, "%" PRId64 "m", ms / 60000);
    } else if (ms != 0 && ms % 1000 == 0) {
        snprintf(buf, size, "%" PRId64 "s", ms / 1000);
    } else {
        snprintf(buf, size, "%" PRId64 "ms", ms);
    }
}

/* Bound text for messages: "1..65535", ">= 1000", "> 0", "between 0 and 1 (exclusive)". */
static void format_bound(const struct cfg_key *k, double v, char *buf, size_t size)
{
    if (k->type == T_DURATION) {
        format_duration((int64_t)v, buf, size);
    } else {
        dw_fmt_double(v, buf, size);
    }
}

static void range_text(const struct cfg_key *k, char *buf, size_t size)
{
    char lo[DW_FMT_DOUBLE_SIZE], hi[DW_FMT_DOUBLE_SIZE];
    format_bound(k, k->min, lo, sizeof(lo));
    format_bound(k, k->max, hi, sizeof(hi));
    int has_lo = (k->flags & (F_MIN | F_MIN_EXCL)) != 0;
    int has_hi = (k->flags & (F_MAX | F_MAX_EXCL)) != 0;
    if ((k->flags & F_MIN) && (k->flags & F_MAX)) {
        snprintf(buf, size, "%s..%s", lo, hi);
    } else if (has_lo && has_hi) {
        snprintf(buf, size, "%s %s and %s %s", (k->flags & F_MIN_EXCL) ? ">" : ">=", lo,
                 (k->flags & F_MAX_EXCL) ? "<" : "<=", hi);
    } else if (has_lo) {
        snprintf(buf, size, "%s %s", (k->flags & F_MIN_EXCL) ? ">" : ">=", lo);
    } else if (has_hi) {
        snprintf(buf, size, "%s %s", (k->flags & F_MAX_EXCL) ? "<" : "<=", hi);
    } else {
        snprintf(buf, size, "any");
    }
}

static int in_range(const struct cfg_key *k, double v)
{
    if ((k->flags & F_MIN) && !(v >= k->min)) {
        return 0;
    }
    if ((k->flags & F_MIN_EXCL) && !(v > k->min)) {
        return 0;
    }
    if ((k->flags & F_MAX) && !(v <= k->max)) {
        return 0;
    }
    if ((k->flags & F_MAX_EXCL) && !(v < k->max)) {
        return 0;
    }
    return 1;
}

static int range_err(const struct cfg_key *k, const char *name, const char *text, char *errstr,
                     size_t errstr_size)
{
    char range[96];
    range_text(k, range, sizeof(range));
    return dw_err(errstr, errstr_size, "%s: '%s' is out of range (must be %s)", name, text, range);
}

/* 1 when a duration text is a whole number of milliseconds ("1.5s" yes, "0.5ms" no). */
static int duration_whole_ms(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    double mult = 1000;
    dw_duration_unit(end, &mult);
    double ms = v * mult;
    return fabs(ms - nearbyint(ms)) <= 1e-6 * DW_MAX(1.0, fabs(ms));
}

static int json_pointer_valid(const char *s)
{
    if (*s == '\0') {
        return 1;
    }
    if (*s != '/') {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '~' && p[1] != '0' && p[1] != '1') {
            return 0;
        }
    }
    return 1;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "yes", "on"};
    static const char *no[] = {"false", "no", "off"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/**
 * @brief Converts `text` for key `k` and stores it into `base` (a struct dw_config or
 *        struct dw_model_cfg). `name` is the full dotted name used in messages.
 */
static int key_set(const struct cfg_key *k, void *base, const char *name, const char *text,
                   char *errstr, size_t errstr_size)
{
    char *dst = (char *)base + k->offset;
    char choices[128];

    switch (k->type) {
    case T_STRING:
    case T_SECRET: {
        if ((k->flags & F_NONEMPTY) && *text == '\0') {
            return dw_err(errstr, errstr_size, "%s: must not be empty", name);
        }
        if ((k->flags & F_JSON_POINTER) && !json_pointer_valid(text)) {
            return dw_err(errstr, errstr_size,
                          "%s: '%s' is not a JSON pointer (use \"\" or a path such as /%s; "
                          "'~' must be written ~0 and '/' inside a name ~1)",
                          name, text, strrchr(name, '.') ? strrchr(name, '.') + 1 : name);
        }
        if ((k->flags & F_HTTP_URL) && *text != '\0' && strncasecmp(text, "http://", 7) != 0 &&
            strncasecmp(text, "https://", 8) != 0) {
            return dw_err(errstr, errstr_size, "%s: must be \"\" or start with http:// or https://",
                          name);
        }
        if (k->choices && !in_choices(k->choices, text, NULL)) {
            choices_text(k->choices, choices, sizeof(choices));
            return dw_err(errstr, errstr_size, "%s: '%s' is not one of %s", name, text, choices);
        }
        char **sp = (char **)(void *)dst;
        free(*sp);
        *sp = dw_strdup(text);
        return 0;
    }
    case T_INT: {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end != '\0') {
            return dw_err(errstr, errstr_size, "%s: '%s' is not an integer", name, text);
        }
        if (errno == ERANGE || !in_range(k, (double)v)) {
            return range_err(k, name, text, errstr, errstr_size);
        }
        if (k->size == sizeof(int)) {
            if (v < INT_MIN || v > INT_MAX) {
                return range_err(k, name, text, errstr, errstr_size);
            }
            int iv = (int)v;
            memcpy(dst, &iv, sizeof(iv));
        } else {
            dw_assert(k->size == sizeof(int64_t));
            int64_t lv = (int64_t)v;
            memcpy(dst, &lv, sizeof(lv));
        }
        return 0;
    }
    case T_DOUBLE: {
        errno = 0;
        char *end = NULL;
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || !isfinite(v)) {
            return dw_err(errstr, errstr_size, "%s: '%s' is not a number", name, text);
        }
        if (!in_range(k, v)) {
            return range_err(k, name, text, errstr, errstr_size);
        }
        memcpy(dst, &v, sizeof(v));
        return 0;
    }
    case T_BOOL: {
        int b = 0;
        if (parse_bool(text, &b) < 0) {
            return dw_err(errstr, errstr_size, "%s: '%s' is not a boolean (use true or false)",
                          name, text);
        }
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case T_DURATION: {
        int64_t ms = 0;
        if (dw_duration_parse(text, &ms) < 0) {
            return dw_err(errstr, errstr_size,
                          "%s: '%s' is not a duration (use 500ms, 30s, 5m, 1h)", name, text);
        }
        if ((k->flags & F_WHOLE_MS) && !duration_whole_ms(text)) {
            return dw_err(errstr, errstr_size, "%s: '%s' is not a whole number of milliseconds",
                          name, text);
        }
        if (!in_range(k, (double)ms)) {
            return range_err(k, name, text, errstr, errstr_size);
        }
        memcpy(dst, &ms, sizeof(ms));
        return 0;
    }
    case T_ENUM: {
        int idx = 0;
        if (!in_choices(k->choices, text, &idx)) {
            choices_text(k->choices, choices, sizeof(choices));
            return dw_err(errstr, errstr_size, "%s: '%s' is not one of %s", name, text, choices);
        }
        memcpy(dst, &idx, sizeof(idx));
        return 0;
    }
    }
    return dw_err(errstr, errstr_size, "%s: unsupported key type", name);
}

/* models.<m>.sla not given: no threshold (NaN), the other keys' defaults. */
static void sla_defaults(struct dw_sla_cfg *sla)
{
    char err[256];
    for (size_t i = 0; i < DW_ARRAY_SIZE(sla_keys); i++) {
        const struct cfg_key *k = &sla_keys[i];
        if (k->type == T_DOUBLE) {
            double off = NAN;
            memcpy((char *)sla + k->offset, &off, sizeof(off));
            continue;
        }
        int rc = key_set(k, sla, k->name, k->def, err, sizeof(err));
        dw_assert(rc == 0);
    }
}

static void model_defaults(struct dw_model_cfg *m)
{
    char err[256];
    for (size_t i = 0; i < DW_ARRAY_SIZE(model_keys); i++) {
        int rc =
            key_set(&model_keys[i], m, model_keys[i].name, model_keys[i].def, err, sizeof(err));
        dw_assert(rc == 0);
    }
    sla_defaults(&m->sla);
}

void dw_config_defaults(struct dw_config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < DW_ARRAY_SIZE(cfg_keys); i++) {
        int rc = key_set(&cfg_keys[i], cfg, cfg_keys[i].name, cfg_keys[i].def, err, sizeof(err));
        dw_assert(rc == 0);
    }
}

/* Frees a list of n texts (NULL: none) and the list. */
static void free_texts(char **texts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(texts[i]);
    }
    free(texts);
}

void dw_config_free(struct dw_config *cfg)
{
    for (size_t i = 0; i < DW_ARRAY_SIZE(cfg_keys); i++) {
        if (cfg_keys[i].type == T_STRING || cfg_keys[i].type == T_SECRET) {
            char **sp = (char **)(void *)((char *)cfg + cfg_keys[i].offset);
            free(*sp);
        }
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    for (size_t i = 0; i < cfg->n_models; i++) {
        struct dw_model_cfg *m = &cfg->models[i];
        for (size_t j = 0; j < m->n_features; j++) {
            free(m->features[j].name);
        }
        free(m->features);
        free(m->positive_class);
        free(m->reference.profile);
        free(m->canary.baseline);
        free(m->canary.candidate);
        free(m->name);
    }
    free(cfg->models);
    for (size_t i = 0; i < cfg->n_detectors; i++) {
        free(cfg->detectors[i].model);
        free(cfg->detectors[i].feature);
    }
    free(cfg->detectors);
    dw_rules_free(cfg->rules, cfg->n_rules);
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        struct dw_sink_cfg *sk = &cfg->sinks[i];
        free(sk->name);
        free(sk->url);
        free(sk->secret);
        free(sk->routing_key);
        free(sk->generator_url);
        for (size_t j = 0; j < sk->n_match; j++) {
            free(sk->match[j].key);
            free(sk->match[j].value);
        }
        free(sk->match);
    }
    free(cfg->sinks);
    free_texts(cfg->trigger_rules, cfg->n_trigger_rules);
    free_texts(cfg->error_values, cfg->n_error_values);
    free_texts(cfg->redis_sentinels, cfg->n_redis_sentinels);
    free_texts(cfg->redis_nodes, cfg->n_redis_nodes);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/*
 * YAML walking.
 */

struct parse_ctx {
    struct dw_config *cfg;
    yaml_document_t *doc;
    rd_kafka_conf_t *kconf; /* scratch conf to validate kafka.* properties */
    unsigned char seen[DW_ARRAY_SIZE(cfg_keys)];
    unsigned char seen_list[6]; /* list_keys walked (list_key_walk) */
    size_t kafka_cap, models_cap, detectors_cap;
    struct ref_override *ref_over; /* per model (models_cap of them) */
    size_t sla_model;              /* 1 + index of the last model whose sla was read, or 0 */
    char *errstr;
    size_t errstr_size;
};

static const char *node_type_name(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a map";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

/* A plain empty, "~" or "null" scalar: `key:` with nothing after it. */
static int node_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return 0;
    }
    const char *s = (const char *)node->data.scalar.value;
    return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* The raw text of a scalar node; -1 for other nodes and for text with NUL bytes. */
static int node_text(struct parse_ctx *ctx, const yaml_node_t *node, const char *name,
                     const char **out)
{
    if (node->type != YAML_SCALAR_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: expected a single value, got %s", name,
                      node_type_name(node));
    }
    const char *s = (const char *)node->data.scalar.value;
    if (strlen(s) != node->data.scalar.length) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: contains a NUL byte", name);
    }
    *out = node_is_null(node) ? "" : s;
    return 0;
}

/* Full dotted name: prefix "" -> key, else prefix.key. */
static int join_name(struct parse_ctx *ctx, const char *prefix, const yaml_node_t *key, char *buf,
                     size_t size)
{
    if (key->type != YAML_SCALAR_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s%skeys must be plain names, not %s", prefix,
                      *prefix ? ": " : "", node_type_name(key));
    }
    const char *k = (const char *)key->data.scalar.value;
    int n = snprintf(buf, size, "%s%s%s", prefix, *prefix ? "." : "", k);
    if (n < 0 || (size_t)n >= size) {
        return dw_err(ctx->errstr, ctx->errstr_size, "key '%.64s...' is too long", buf);
    }
    if (*k == '\0') {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s%sempty key", prefix, *prefix ? ": " : "");
    }
    return 0;
}

/**
 * @brief Replaces ${VAR} by the environment variable, $${ by a literal ${.
 * @returns a new string or NULL with errstr naming the key.
 */
static char *expand_env(struct parse_ctx *ctx, const char *name, const char *in)
{
    struct dw_sbuf sb = {0};
    const char *p = in;
    while (*p) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            dw_sbuf_add(&sb, "${", 2);
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            dw_sbuf_add(&sb, p, 1);
            p++;
            continue;
        }
        const char *start = p + 2;
        const char *close = strchr(start, '}');
        if (!close) {
            dw_err(ctx->errstr, ctx->errstr_size,
                   "%s: unterminated ${ (write $${ for a literal ${)", name);
            goto err;
        }
        size_t n = (size_t)(close - start);
        int ok = n > 0 && (start[0] == '_' || (start[0] >= 'A' && start[0] <= 'Z') ||
                           (start[0] >= 'a' && start[0] <= 'z'));
        for (size_t i = 0; ok && i < n; i++) {
            char c = start[i];
            ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9');
        }
        if (!ok) {
            dw_err(ctx->errstr, ctx->errstr_size,
                   "%s: '${%.*s}' is not a valid environment variable name", name, (int)n, start);
            goto err;
        }
        char *var = dw_strndup(start, n);
        const char *val = getenv(var);
        if (!val) {
            dw_err(ctx->errstr, ctx->errstr_size, "%s: environment variable %s is not set", name,
                   var);
            free(var);
            goto err;
        }
        free(var);
        dw_sbuf_add(&sb, val, strlen(val));
        p = close + 1;
    }
    return dw_sbuf_take(&sb);

err:
    free(sb.s);
    return NULL;
}

#define SECRET_FILE_MAX 65536 /* bytes: largest file:// secret */

/*
 * A secret given as file://PATH (a Kubernetes secret volume): the file's content without its
 * trailing newline. Errors name the key and the path, never the content.
 */
static char *secret_file(struct parse_ctx *ctx, const char *name, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        dw_err(ctx->errstr, ctx->errstr_size, "%s: cannot read file://%s: %s", name, path,
               strerror(errno));
        return NULL;
    }
    char *buf = dw_malloc(SECRET_FILE_MAX + 1);
    size_t n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
    int bad = ferror(f) || n > SECRET_FILE_MAX || memchr(buf, '\0', n) != NULL;
    fclose(f);
    if (bad) {
        free(buf);
        dw_err(ctx->errstr, ctx->errstr_size,
               "%s: file://%s is not a text file of at most %d bytes", name, path, SECRET_FILE_MAX);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

/* Converts one scalar node (after ${VAR} expansion) for key k into base. */
static int scalar_set(struct parse_ctx *ctx, const struct cfg_key *k, void *base, const char *name,
                      const yaml_node_t *node)
{
    const char *raw = NULL;
    if (node_text(ctx, node, name, &raw) < 0) {
        return -1;
    }
    char *text = expand_env(ctx, name, raw);
    if (!text) {
        return -1;
    }
    /* a token or signing secret that names a file or a variable and comes out empty is
     * refused (F_NAMED_SET): an empty Kubernetes secret key or `DW_HTTP_TOKEN=` would turn the
     * protection off without a word; "" written as such still means none. A password may come
     * out empty (no AUTH: a Redis that wants one refuses it at start). */
    int named = k->type == T_SECRET && strstr(raw, "${") != NULL;
    if (k->type == T_SECRET && strncmp(text, "file://", 7) == 0) {
        char *content = secret_file(ctx, name, text + 7);
        free(text);
        if (!content) {
            return -1;
        }
        text = content;
        named = 1;
    }
    if (named && (k->flags & F_NAMED_SET) && text[0] == '\0') {
        free(text);
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: the secret it names is empty (an empty file or variable); write \"\" "
                      "for none",
                      name);
    }
    /* key_set() never quotes the value of a T_SECRET key in its messages */
    int rc = key_set(k, base, name, text, ctx->errstr, ctx->errstr_size);
    free(text);
    return rc;
}

static const struct cfg_key *find_key(const char *name)
{
    for (size_t i = 0; i < DW_ARRAY_SIZE(cfg_keys); i++) {
        if (strcmp(cfg_keys[i].name, name) == 0) {
            return &cfg_keys[i];
        }
    }
    return NULL;
}

/* 1 when some key lives under "name." (a section such as "alerts" or "alerts.webhook"). */
static int is_section(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < DW_ARRAY_SIZE(cfg_keys); i++) {
        if (strncmp(cfg_keys[i].name, name, n) == 0 && cfg_keys[i].name[n] == '.') {
            return 1;
        }
    }
    return 0;
}

static int kafka_secret(const char *key)
{
    for (size_t i = 0; i < DW_ARRAY_SIZE(kafka_secret_parts); i++) {
        if (strstr(key, kafka_secret_parts[i])) {
            return 1;
        }
    }
    return 0;
}

/* Checks and stores one librdkafka property (key without "kafka."). */
static int kafka_add(struct parse_ctx *ctx, const char *key, const char *raw)
{
    struct dw_config *cfg = ctx->cfg;
    char name[KEY_NAME_MAX + 8];
    snprintf(name, sizeof(name), "kafka.%s", key);

    for (size_t i = 0; i < DW_ARRAY_SIZE(kafka_forbidden); i++) {
        if (strcmp(key, kafka_forbidden[i].key) == 0) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: not allowed: %s", name,
                          kafka_forbidden[i].why);
        }
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
        }
    }
    char *value = expand_env(ctx, name, raw);
    if (!value) {
        return -1;
    }
    char kerr[512];
    if (rd_kafka_conf_set(ctx->kconf, key, value, kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
        free(value);
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: %s", name, kerr);
    }
    if (cfg->n_kafka == ctx->kafka_cap) {
        ctx->kafka_cap = ctx->kafka_cap ? ctx->kafka_cap * 2 : 8;
        cfg->kafka = dw_realloc(cfg->kafka, ctx->kafka_cap * sizeof(*cfg->kafka));
    }
    cfg->kafka[cfg->n_kafka].key = dw_strdup(key);
    cfg->kafka[cfg->n_kafka].value = value;
    cfg->n_kafka++;
    return 0;
}

/* Flattens the kafka map: nested maps join with dots, a list of scalars joins with commas. */
static int kafka_walk(struct parse_ctx *ctx, const char *prefix, yaml_node_t *node)
{
    char name[KEY_NAME_MAX];
    if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
            yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
            if (join_name(ctx, prefix, key, name, sizeof(name)) < 0 ||
                kafka_walk(ctx, name, val) < 0) {
                return -1;
            }
        }
        return 0;
    }
    snprintf(name, sizeof(name), "kafka.%s", prefix);
    if (*prefix == '\0') {
        if (node_is_null(node)) {
            return 0;
        }
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "kafka: expected a map of librdkafka "
                      "properties, got %s",
                      node_type_name(node));
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        struct dw_sbuf sb = {0};
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            const char *text = NULL;
            if (node_text(ctx, yaml_document_get_node(ctx->doc, *it), name, &text) < 0) {
                free(sb.s);
                return -1;
            }
            if (sb.len) {
                dw_sbuf_add(&sb, ",", 1);
            }
            dw_sbuf_add(&sb, text, strlen(text));
        }
        char *joined = dw_sbuf_take(&sb);
        int rc = kafka_add(ctx, prefix, joined);
        free(joined);
        return rc;
    }
    const char *text = NULL;
    if (node_text(ctx, node, name, &text) < 0) {
        return -1;
    }
    return kafka_add(ctx, prefix, text);
}

/* Method names in the file, indexed by enum dw_method. */
static const char *const method_names[DW_METHOD_COUNT] = {
    "auto", "ks", "psi", "wasserstein", "js", "chi2", "g_test", "kl", "hellinger", "tvd",
};

/* 1 when method m applies to features of type t (the report holds its statistic). */
static int method_fits(enum dw_method m, enum dw_feature_type t)
{
    switch (m) {
    case DW_METHOD_AUTO:
    case DW_METHOD_PSI:
    case DW_METHOD_JS:
        return 1;
    case DW_METHOD_KS:
    case DW_METHOD_WASSERSTEIN:
    case DW_METHOD_KL:
    case DW_METHOD_HELLINGER:
        return t == DW_FEATURE_NUMERIC;
    case DW_METHOD_CHI2:
    case DW_METHOD_G_TEST:
    case DW_METHOD_TVD:
        return t == DW_FEATURE_CATEGORICAL;
    case DW_METHOD_COUNT:
        break;
    }
    return 0;
}

/* Text of a scalar node after ${VAR} expansion (a new string), or NULL with errstr. */
static char *scalar_text(struct parse_ctx *ctx, const char *name, const yaml_node_t *node)
{
    const char *raw = NULL;
    if (node_text(ctx, node, name, &raw) < 0) {
        return NULL;
    }
    return expand_env(ctx, name, raw);
}

/* A finite number written as text (a threshold, a baseline value) into *out, or -1 with errstr. */
static int text_double(struct parse_ctx *ctx, const char *name, const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v)) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: '%s' is not a number", name, text);
    }
    *out = v;
    return 0;
}

static int feature_type_set(struct parse_ctx *ctx, const char *name, const yaml_node_t *node,
                            enum dw_feature_type *type)
{
    char *text = scalar_text(ctx, name, node);
    if (!text) {
        return -1;
    }
    int rc = 0;
    if (strcmp(text, "numeric") == 0) {
        *type = DW_FEATURE_NUMERIC;
    } else if (strcmp(text, "categorical") == 0) {
        *type = DW_FEATURE_CATEGORICAL;
    } else {
        rc = dw_err(ctx->errstr, ctx->errstr_size, "%s: '%s' is not one of numeric, categorical",
                    name, text);
    }
    free(text);
    return rc;
}

/*
 * The map form of a feature: {type: numeric|categorical, method: ..., threshold: ...}. The
 * method must fit the type, and the threshold the method (an alpha in (0, 1) for p-value
 * tests, a positive distance, at most 1 for the bounded distances); auto takes no threshold
 * because it switches between a test and a distance.
 */
struct feature_spec {
    enum dw_feature_type type;
    enum dw_method method;
    double threshold; /* NaN: not given */
};

static int feature_map(struct parse_ctx *ctx, struct feature_spec *f, const char *prefix,
                       yaml_node_t *node)
{
    char name[KEY_NAME_MAX];
    char tname[KEY_NAME_MAX];
    int seen_type = 0, seen_method = 0, seen_threshold = 0;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
        if (join_name(ctx, prefix, key, name, sizeof(name)) < 0) {
            return -1;
        }
        const char *k = (const char *)key->data.scalar.value;
        int *seen = strcmp(k, "type") == 0        ? &seen_type
                    : strcmp(k, "method") == 0    ? &seen_method
                    : strcmp(k, "threshold") == 0 ? &seen_threshold
                                                  : NULL;
        if (!seen) {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "unknown key '%s' (a feature has type, method, threshold)", name);
        }
        if (*seen) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
        }
        *seen = 1;
        if (seen == &seen_type) {
            if (feature_type_set(ctx, name, val, &f->type) < 0) {
                return -1;
            }
            continue;
        }
        char *text = scalar_text(ctx, name, val);
        if (!text) {
            return -1;
        }
        if (seen == &seen_method) {
            size_t i = 0;
            while (i < DW_METHOD_COUNT && strcmp(method_names[i], text) != 0) {
                i++;
            }
            if (i == DW_METHOD_COUNT) {
                dw_err(ctx->errstr, ctx->errstr_size,
                       "%s: unknown method '%s' (auto, ks, psi, wasserstein, js, kl, hellinger, "
                       "chi2, g_test, tvd)",
                       name, text);
                free(text);
                return -1;
            }
            f->method = (enum dw_method)i;
        } else if (text_double(ctx, name, text, &f->threshold) < 0) {
            free(text);
            return -1;
        } else {
            snprintf(tname, sizeof(tname), "%s", name);
        }
        free(text);
    }
    if (!seen_type) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s.type: required (numeric or categorical)",
                      prefix);
    }
    if (!method_fits(f->method, f->type)) {
        return dw_err(
            ctx->errstr, ctx->errstr_size, "%s.method: '%s' does not apply to %s features", prefix,
            method_names[f->method], f->type == DW_FEATURE_NUMERIC ? "numeric" : "categorical");
    }
    if (!seen_threshold) {
        return 0;
    }
    double t = f->threshold;
    switch (f->method) {
    case DW_METHOD_AUTO:
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: needs a method other than auto (auto switches between a p-value test "
                      "and a distance; set detectors.alpha and detectors.*_threshold instead)",
                      tname);
    case DW_METHOD_KS:
    case DW_METHOD_CHI2:
    case DW_METHOD_G_TEST:
        if (!(t > 0.0 && t < 1.0)) {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "%s: %g is out of range (an alpha: must be > 0 and < 1)", tname, t);
        }
        break;
    case DW_METHOD_JS:
    case DW_METHOD_HELLINGER:
    case DW_METHOD_TVD:
        if (!(t > 0.0 && t <= 1.0)) {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "%s: %g is out of range (must be > 0 and <= 1)", tname, t);
        }
        break;
    default:
        if (!(t > 0.0)) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: %g is out of range (must be > 0)",
                          tname, t);
        }
        break;
    }
    return 0;
}

static int features_walk(struct parse_ctx *ctx, struct dw_model_cfg *m, const char *prefix,
                         yaml_node_t *node)
{
    if (node_is_null(node)) {
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: expected a map of feature name -> numeric|categorical, got %s", prefix,
                      node_type_name(node));
    }
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    m->features = dw_calloc(n ? n : 1, sizeof(*m->features));
    char name[KEY_NAME_MAX];
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
        if (join_name(ctx, prefix, key, name, sizeof(name)) < 0) {
            return -1;
        }
        const char *fname = (const char *)key->data.scalar.value;
        for (size_t i = 0; i < m->n_features; i++) {
            if (strcmp(m->features[i].name, fname) == 0) {
                return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
            }
        }
        struct feature_spec f = {.method = DW_METHOD_AUTO, .threshold = NAN};
        int rc = val->type == YAML_MAPPING_NODE ? feature_map(ctx, &f, name, val)
                                                : feature_type_set(ctx, name, val, &f.type);
        if (rc < 0) {
            return -1;
        }
        m->features[m->n_features].name = dw_strdup(fname);
        m->features[m->n_features].type = f.type;
        m->n_features++;
        if (f.method != DW_METHOD_AUTO || !isnan(f.threshold)) {
            struct dw_config *cfg = ctx->cfg;
            if (cfg->n_detectors == ctx->detectors_cap) {
                ctx->detectors_cap = ctx->detectors_cap ? ctx->detectors_cap * 2 : 8;
                cfg->detectors =
                    dw_realloc(cfg->detectors, ctx->detectors_cap * sizeof(*cfg->detectors));
            }
            struct dw_feature_detector *d = &cfg->detectors[cfg->n_detectors++];
            d->model = dw_strdup(m->name);
            d->feature = dw_strdup(fname);
            d->method = f.method;
            d->threshold = f.threshold;
        }
    }
    return 0;
}

/* One entry of a map of name -> settings: name is the key, full the dotted key name. */
typedef int (*named_fn)(struct parse_ctx *ctx, const char *name, const char *full,
                        yaml_node_t *val);
static int named_walk(struct parse_ctx *ctx, const char *section, const char *what,
                      yaml_node_t *node, named_fn one);

/*
 * models.<m>.baseline: a map of performance metric -> value, the baseline each window's
 * performance is judged against instead of the reference windows' (docs/statistics.md,
 * "Baselines and drops"). A value must be one the metric can take and not 0 (a relative drop
 * from 0 is undefined); whether the metric is one of the model's task is checked once the
 * model is read (baseline_check), since `task` may come after it.
 */

/* "accuracy, precision, ..." of the task's metrics into buf. */
static void metric_names(enum dw_task task, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < DW_PM_COUNT; k++) {
        const struct dw_perf_metric_info *info = dw_perf_metric_info((enum dw_perf_metric)k);
        if (info->task == task && used < size) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", info->name);
            used += n > 0 ? (size_t)n : 0;
        }
    }
}

/* The range of a metric's baseline as the error message says it. */
static void metric_range(const struct dw_perf_metric_info *info, char *buf, size_t size)
{
    if (info->lo == 0.0) {
        snprintf(buf, size, isfinite(info->hi) ? "must be > 0 and <= %g" : "must be > 0", info->hi);
    } else {
        snprintf(buf, size, "must be <= %g and not 0", info->hi);
    }
}

/* named_fn of models.<m>.baseline: the model is the one being read, the last one. */
static int baseline_value(struct parse_ctx *ctx, const char *metric, const char *name,
                          yaml_node_t *val)
{
    struct dw_model_cfg *m = &ctx->cfg->models[ctx->cfg->n_models - 1];
    int k = dw_perf_metric_find(metric);
    if (k < 0) {
        char cls[256], reg[128];
        metric_names(DW_TASK_CLASSIFICATION, cls, sizeof(cls));
        metric_names(DW_TASK_REGRESSION, reg, sizeof(reg));
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: unknown metric '%s' (classification: %s; regression: %s)", name, metric,
                      cls, reg);
    }
    if (m->baseline_set & (1u << k)) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    char *text = scalar_text(ctx, name, val);
    double v = 0.0;
    int rc = text ? text_double(ctx, name, text, &v) : -1;
    free(text);
    if (rc < 0) {
        return -1;
    }
    const struct dw_perf_metric_info *info = dw_perf_metric_info((enum dw_perf_metric)k);
    if (!(v >= info->lo && v <= info->hi && v != 0.0)) {
        char range[64];
        metric_range(info, range, sizeof(range));
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: %g is out of range (%s)", name, v, range);
    }
    m->baseline[k] = v;
    m->baseline_set |= 1u << k;
    return 0;
}

/* The configured baseline's metrics against the model's task, once the model is read. */
static int baseline_check(struct parse_ctx *ctx, const struct dw_model_cfg *m, const char *prefix)
{
    for (size_t k = 0; k < DW_PM_COUNT; k++) {
        const struct dw_perf_metric_info *info = dw_perf_metric_info((enum dw_perf_metric)k);
        if ((m->baseline_set & (1u << k)) && info->task != m->task) {
            char names[256];
            metric_names(m->task, names, sizeof(names));
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "%s.baseline.%s: not a metric of a %s model (%s)", prefix, info->name,
                          m->task == DW_TASK_REGRESSION ? "regression" : "classification", names);
        }
    }
    return 0;
}

/* A key that must be given: a non-empty string without a default. */
static int key_required(const struct cfg_key *k)
{
    return (k->flags & F_NONEMPTY) && k->def[0] == '\0';
}

/* A key of a sub-table that is not one of its scalar rows. 1 handled, 0 unknown, -1 error. */
typedef int (*extra_key_fn)(struct parse_ctx *ctx, void *base, const char *key, const char *name,
                            yaml_node_t *val);
static int table_walk(struct parse_ctx *ctx, const struct cfg_key *keys, size_t n_keys, void *base,
                      const char *prefix, yaml_node_t *node, extra_key_fn extra);

/* models.<m>.reference: a map of model_ref_keys, kept as written until reference_resolve. */
static int model_reference(struct parse_ctx *ctx, const char *name, yaml_node_t *val)
{
    struct ref_override *o = &ctx->ref_over[ctx->cfg->n_models - 1];
    if (o->given) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    o->given = 1;
    if (val->type != YAML_MAPPING_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: expected a map (source, windows, profile), got %s", name,
                      node_type_name(val));
    }
    return table_walk(ctx, model_ref_keys, DW_ARRAY_SIZE(model_ref_keys), o, name, val, NULL);
}

static void table_defaults(const struct cfg_key *keys, size_t n_keys, void *base);

/* models.<m>.canary: a map of model_canary_keys (an empty map: every default). */
static int model_canary(struct parse_ctx *ctx, struct dw_model_cfg *m, const char *name,
                        yaml_node_t *val)
{
    struct dw_model_canary *c = &m->canary;
    if (c->on) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    c->on = 1;
    dw_canary_cfg_default(&c->cfg);
    table_defaults(model_canary_keys, DW_ARRAY_SIZE(model_canary_keys), c);
    if (!node_is_null(val) && table_walk(ctx, model_canary_keys, DW_ARRAY_SIZE(model_canary_keys),
                                         c, name, val, NULL) < 0) {
        return -1;
    }
    c->cfg.min_samples = (uint64_t)c->min_samples;
    c->cfg.windows = (uint32_t)c->windows;
    char err[256];
    if (dw_canary_cfg_check(&c->cfg, err, sizeof(err)) != 0) {
        return dw_err(ctx->errstr, ctx->errstr_size, "models.%s.%s", m->name, err);
    }
    if (strcmp(c->baseline, c->candidate) == 0 && strcmp(c->baseline, "auto") != 0) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s.candidate: '%s' is the baseline too; compare two versions", name,
                      c->candidate);
    }
    return 0;
}

/* models.<m>.sla: a map of sla_keys; `sla:` with nothing keeps it off. */
static int model_sla(struct parse_ctx *ctx, struct dw_model_cfg *m, const char *name,
                     yaml_node_t *val)
{
    if (ctx->sla_model == ctx->cfg->n_models) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    ctx->sla_model = ctx->cfg->n_models;
    if (node_is_null(val)) {
        return 0;
    }
    if (val->type != YAML_MAPPING_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: expected a map (latency_p95_ms, latency_p99_ms, error_rate, "
                      "availability, for, keep_firing_for, severity), got %s",
                      name, node_type_name(val));
    }
    return table_walk(ctx, sla_keys, DW_ARRAY_SIZE(sla_keys), &m->sla, name, val, NULL);
}

/* `features`, `baseline`, `reference`, `canary` and `sla` of a model, beside its scalar keys. */
static int model_extra(struct parse_ctx *ctx, void *base, const char *key, const char *name,
                       yaml_node_t *val)
{
    struct dw_model_cfg *m = base;
    if (strcmp(key, "canary") == 0) {
        return model_canary(ctx, m, name, val) < 0 ? -1 : 1;
    }
    if (strcmp(key, "reference") == 0) {
        return model_reference(ctx, name, val) < 0 ? -1 : 1;
    }
    if (strcmp(key, "sla") == 0) {
        return model_sla(ctx, m, name, val) < 0 ? -1 : 1;
    }
    if (strcmp(key, "baseline") == 0) {
        if (m->baseline_set) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
        }
        return named_walk(ctx, name, "metric -> value ({accuracy: 0.91})", val, baseline_value) < 0
                   ? -1
                   : 1;
    }
    if (strcmp(key, "features") != 0) {
        return 0;
    }
    if (m->features) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    return features_walk(ctx, m, name, val) < 0 ? -1 : 1;
}

static int model_walk(struct parse_ctx *ctx, struct dw_model_cfg *m, const char *prefix,
                      yaml_node_t *node)
{
    if (node_is_null(node)) {
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE) {
        return dw_err(
            ctx->errstr, ctx->errstr_size,
            "%s: expected a map (task, positive_class, max_categories, features, baseline, ...), "
            "got %s",
            prefix, node_type_name(node));
    }
    if (table_walk(ctx, model_keys, DW_ARRAY_SIZE(model_keys), m, prefix, node, model_extra) < 0) {
        return -1;
    }
    return baseline_check(ctx, m, prefix);
}

/* Walks `section` (models, alerting.sinks, models.<m>.baseline): a map of `what`. */
static int named_walk(struct parse_ctx *ctx, const char *section, const char *what,
                      yaml_node_t *node, named_fn one)
{
    if (node->type != YAML_MAPPING_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: expected a map of %s, got %s", section,
                      what, node_type_name(node));
    }
    char full[KEY_NAME_MAX];
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
        if (join_name(ctx, section, key, full, sizeof(full)) < 0 ||
            one(ctx, (const char *)key->data.scalar.value, full, val) < 0) {
            return -1;
        }
    }
    return 0;
}

static int model_one(struct parse_ctx *ctx, const char *mname, const char *full, yaml_node_t *val)
{
    struct dw_config *cfg = ctx->cfg;
    if (dw_config_model(cfg, mname, strlen(mname))) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", full);
    }
    if (cfg->n_models == ctx->models_cap) {
        ctx->models_cap = ctx->models_cap ? ctx->models_cap * 2 : 4;
        cfg->models = dw_realloc(cfg->models, ctx->models_cap * sizeof(*cfg->models));
    }
    struct dw_model_cfg *m = &cfg->models[cfg->n_models++];
    memset(m, 0, sizeof(*m));
    ctx->ref_over = dw_realloc(ctx->ref_over, ctx->models_cap * sizeof(*ctx->ref_over));
    ctx->ref_over[cfg->n_models - 1] = (struct ref_override){.source = -1, .per_version = -1};
    m->name = dw_strdup(mname);
    model_defaults(m);
    return model_walk(ctx, m, full, val);
}

static int models_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    return node_is_null(node)
               ? 0
               : named_walk(ctx, "models", "model name -> settings", node, model_one);
}

/*
 * Alerting: alerting.rules (a list of maps), alerting.sinks (a map of name -> map) and
 * triggers.rules (a list of rule names). Rules and sinks are sub-tables of fixed scalar keys
 * (rule_keys[], sink_keys[]) plus a few keys of their own (labels, severities, match), walked
 * by table_walk().
 */

static int table_walk(struct parse_ctx *ctx, const struct cfg_key *keys, size_t n_keys, void *base,
                      const char *prefix, yaml_node_t *node, extra_key_fn extra)
{
    if (node->type != YAML_MAPPING_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: expected a map, got %s", prefix,
                      node_type_name(node));
    }
    unsigned char seen[64] = {0};
    dw_assert(n_keys <= sizeof(seen));
    char name[KEY_NAME_MAX];
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
        if (join_name(ctx, prefix, key, name, sizeof(name)) < 0) {
            return -1;
        }
        const char *k = (const char *)key->data.scalar.value;
        size_t i = 0;
        while (i < n_keys && strcmp(keys[i].name, k) != 0) {
            i++;
        }
        if (i == n_keys) {
            int rc = extra ? extra(ctx, base, k, name, val) : 0;
            if (rc < 0) {
                return -1;
            }
            if (rc == 0) {
                return dw_err(ctx->errstr, ctx->errstr_size, "unknown key '%s'", name);
            }
            continue;
        }
        if (seen[i]) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
        }
        seen[i] = 1;
        if (scalar_set(ctx, &keys[i], base, name, val) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < n_keys; i++) {
        if (key_required(&keys[i]) && !seen[i]) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s.%s: required", prefix, keys[i].name);
        }
    }
    return 0;
}

/* Defaults of a sub-table; required strings stay NULL. */
static void table_defaults(const struct cfg_key *keys, size_t n_keys, void *base)
{
    char err[256];
    for (size_t i = 0; i < n_keys; i++) {
        if (key_required(&keys[i])) {
            continue;
        }
        int rc = key_set(&keys[i], base, keys[i].name, keys[i].def, err, sizeof(err));
        dw_assert(rc == 0);
    }
}

/* A map of string -> string (rule labels, sink matchers), values ${VAR}-expanded. */
static int labels_walk(struct parse_ctx *ctx, const char *name, yaml_node_t *node,
                       struct dw_rule_label **out, size_t *n_out)
{
    if (*out) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    if (node->type != YAML_MAPPING_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: expected a map of name -> value, got %s",
                      name, node_type_name(node));
    }
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    *out = dw_calloc(n ? n : 1, sizeof(**out));
    char lname[KEY_NAME_MAX];
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
        if (join_name(ctx, name, key, lname, sizeof(lname)) < 0) {
            return -1;
        }
        for (size_t i = 0; i < *n_out; i++) {
            if (strcmp((*out)[i].key, (const char *)key->data.scalar.value) == 0) {
                return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", lname);
            }
        }
        char *text = scalar_text(ctx, lname, val);
        if (!text) {
            return -1;
        }
        (*out)[*n_out].key = dw_strdup((const char *)key->data.scalar.value);
        (*out)[*n_out].value = text;
        (*n_out)++;
    }
    return 0;
}

static int rule_extra(struct parse_ctx *ctx, void *base, const char *key, const char *name,
                      yaml_node_t *val)
{
    struct dw_rule *r = base;
    if (strcmp(key, "labels") != 0) {
        return 0;
    }
    return labels_walk(ctx, name, val, &r->labels, &r->n_labels) < 0 ? -1 : 1;
}

static int severity_add(struct parse_ctx *ctx, struct dw_sink_cfg *s, const char *name,
                        const yaml_node_t *node)
{
    char *text = scalar_text(ctx, name, node);
    if (!text) {
        return -1;
    }
    int rc = 0;
    if (strcmp(text, "warning") == 0) {
        s->severities |= 1u << DW_SEV_WARNING;
    } else if (strcmp(text, "critical") == 0) {
        s->severities |= 1u << DW_SEV_CRITICAL;
    } else {
        rc = dw_err(ctx->errstr, ctx->errstr_size, "%s: '%s' is not one of warning, critical", name,
                    text);
    }
    free(text);
    return rc;
}

/* severities: one name or a list of names. */
static int severities_set(struct parse_ctx *ctx, struct dw_sink_cfg *s, const char *name,
                          yaml_node_t *val)
{
    s->severities = 0;
    if (val->type != YAML_SEQUENCE_NODE) {
        return severity_add(ctx, s, name, val);
    }
    for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top;
         it++) {
        if (severity_add(ctx, s, name, yaml_document_get_node(ctx->doc, *it)) < 0) {
            return -1;
        }
    }
    return 0;
}

static int sink_extra(struct parse_ctx *ctx, void *base, const char *key, const char *name,
                      yaml_node_t *val)
{
    struct dw_sink_cfg *s = base;
    if (strcmp(key, "match") == 0) {
        return labels_walk(ctx, name, val, &s->match, &s->n_match) < 0 ? -1 : 1;
    }
    if (strcmp(key, "severities") == 0) {
        return severities_set(ctx, s, name, val) < 0 ? -1 : 1;
    }
    return 0;
}

/* An optional string member given as "" means "not set": NULL for the modules that read it. */
static void empty_to_null(char **sp)
{
    if (*sp && **sp == '\0') {
        free(*sp);
        *sp = NULL;
    }
}

static int name_chars_ok(const char *s)
{
    for (; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == ':')) {
            return 0;
        }
    }
    return 1;
}

static int rules_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    struct dw_config *cfg = ctx->cfg;
    if (node->type != YAML_SEQUENCE_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "alerting.rules: expected a list of rules, got %s", node_type_name(node));
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    cfg->rules = dw_calloc(n ? n : 1, sizeof(*cfg->rules));
    cfg->n_rules = 0;
    char prefix[KEY_NAME_MAX];
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
        struct dw_rule *r = &cfg->rules[cfg->n_rules++];
        table_defaults(rule_keys, DW_ARRAY_SIZE(rule_keys), r);
        snprintf(prefix, sizeof(prefix), "alerting.rules[%zu]", i);
        if (table_walk(ctx, rule_keys, DW_ARRAY_SIZE(rule_keys), r, prefix, item, rule_extra) < 0) {
            return -1;
        }
        if (!name_chars_ok(r->name)) {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "%s.name: '%s' may only hold letters, digits, _ : -", prefix, r->name);
        }
        for (size_t j = 0; j + 1 < cfg->n_rules; j++) {
            if (strcmp(cfg->rules[j].name, r->name) == 0) {
                return dw_err(ctx->errstr, ctx->errstr_size,
                              "%s.name: '%s' is already the name of alerting.rules[%zu]", prefix,
                              r->name, j);
            }
        }
        char err[256];
        if (dw_rule_expr_parse(r->expr_text, &r->expr, err, sizeof(err)) < 0) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s.condition: %s", prefix, err);
        }
        empty_to_null(&r->model);
        empty_to_null(&r->summary);
        empty_to_null(&r->description);
        empty_to_null(&r->runbook_url);
    }
    return 0;
}

static int sink_one(struct parse_ctx *ctx, const char *sname, const char *full, yaml_node_t *val)
{
    struct dw_config *cfg = ctx->cfg;
    if (strlen(sname) >= DW_SINK_NAME_MAX || !name_chars_ok(sname) || strchr(sname, ':')) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: a sink name is 1 to %d letters, digits, _ or -", full,
                      DW_SINK_NAME_MAX - 1);
    }
    cfg->sinks = dw_realloc(cfg->sinks, (cfg->n_sinks + 1) * sizeof(*cfg->sinks));
    struct dw_sink_cfg *s = &cfg->sinks[cfg->n_sinks++];
    memset(s, 0, sizeof(*s));
    table_defaults(sink_keys, DW_ARRAY_SIZE(sink_keys), s);
    s->name = dw_strdup(sname);
    if (table_walk(ctx, sink_keys, DW_ARRAY_SIZE(sink_keys), s, full, val, sink_extra) < 0) {
        return -1;
    }
    empty_to_null(&s->secret);
    empty_to_null(&s->routing_key);
    empty_to_null(&s->generator_url);
    return 0;
}

static int sinks_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    return named_walk(ctx, "alerting.sinks", "sink name -> settings", node, sink_one);
}

static int trigger_rules_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    struct dw_config *cfg = ctx->cfg;
    if (node->type != YAML_SEQUENCE_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "triggers.rules: expected a list of rule names, got %s",
                      node_type_name(node));
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    cfg->trigger_rules = dw_calloc(n ? n : 1, sizeof(*cfg->trigger_rules));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
        char *text = scalar_text(ctx, "triggers.rules", item);
        if (!text) {
            return -1;
        }
        cfg->trigger_rules[cfg->n_trigger_rules++] = text;
    }
    return 0;
}

/*
 * A list of scalars under `name` (`what`: the list's description in the error), each kept as
 * its text once check() accepted it (check: 0, or -1 with errstr naming item_name).
 */
static int
text_list_walk(struct parse_ctx *ctx, const char *name, const char *what, yaml_node_t *node,
               int (*check)(struct parse_ctx *ctx, const char *item_name, const char *text),
               char ***out, size_t *n_out)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: expected a list of %s, got %s", name,
                      what, node_type_name(node));
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    *out = dw_calloc(n ? n : 1, sizeof(**out));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
        char item_name[64];
        snprintf(item_name, sizeof(item_name), "%s[%zu]", name, i);
        char *text = scalar_text(ctx, item_name, item);
        if (!text) {
            return -1;
        }
        if (check(ctx, item_name, text) != 0) {
            free(text);
            return -1;
        }
        (*out)[(*n_out)++] = text;
    }
    return 0;
}

static int check_hostport(struct parse_ctx *ctx, const char *item_name, const char *text)
{
    char host[DW_SLOTS_HOST_MAX];
    int port;
    if (dw_hostport_parse(text, host, sizeof(host), &port) != 0) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: '%s' is not host:port (a port 1..65535 after the last ':')", item_name,
                      text);
    }
    return 0;
}

/* redis.sentinels: a list of "host:port", one per sentinel. */
static int sentinels_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    return text_list_walk(ctx, "redis.sentinels", "host:port", node, check_hostport,
                          &ctx->cfg->redis_sentinels, &ctx->cfg->n_redis_sentinels);
}

/* redis.nodes: a list of "host:port" seed nodes. */
static int redis_nodes_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    return text_list_walk(ctx, "redis.nodes", "host:port seed nodes", node, check_hostport,
                          &ctx->cfg->redis_nodes, &ctx->cfg->n_redis_nodes);
}

static int check_nonempty(struct parse_ctx *ctx, const char *item_name, const char *text)
{
    return *text ? 0
                 : dw_err(ctx->errstr, ctx->errstr_size, "%s: an empty status value", item_name);
}

/* input.error_values: a list of non-empty scalars, kept as their text (500 and "500" alike). */
static int error_values_walk(struct parse_ctx *ctx, yaml_node_t *node)
{
    ctx->cfg->error_values_set = 1;
    return text_list_walk(ctx, "input.error_values", "status values (strings or integers)", node,
                          check_nonempty, &ctx->cfg->error_values, &ctx->cfg->n_error_values);
}

/* The list- and map-valued keys of the top level, each walked by its own function. */
static const struct {
    const char *name;
    int (*walk)(struct parse_ctx *ctx, yaml_node_t *node);
} list_keys[] = {
    {"alerting.rules", rules_walk},         {"alerting.sinks", sinks_walk},
    {"triggers.rules", trigger_rules_walk}, {"input.error_values", error_values_walk},
    {"redis.sentinels", sentinels_walk},    {"redis.nodes", redis_nodes_walk},
};
_Static_assert(sizeof(((struct parse_ctx *)0)->seen_list) == DW_ARRAY_SIZE(list_keys),
               "one seen_list mark per list key");

/* One of list_keys. 1 handled, 0 not one of them, -1 error (given twice, as a block's member
 * and as a dotted key, like a scalar key: ctx->seen_list). */
static int list_key_walk(struct parse_ctx *ctx, const char *name, yaml_node_t *val)
{
    size_t i = 0;
    while (i < DW_ARRAY_SIZE(list_keys) && strcmp(list_keys[i].name, name) != 0) {
        i++;
    }
    if (i == DW_ARRAY_SIZE(list_keys)) {
        return 0;
    }
    if (node_is_null(val)) {
        return 1; /* `rules:` with nothing: the defaults */
    }
    if (ctx->seen_list[i]) {
        return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
    }
    ctx->seen_list[i] = 1;
    return list_keys[i].walk(ctx, val) < 0 ? -1 : 1;
}

/*
 * Keys refused with their reason rather than "unknown key": hiredis 0.14, the client Debian 12
 * ships, has no TLS, so TLS to Redis goes through a sidecar (docs/operations.md).
 */
static int refused_key(struct parse_ctx *ctx, const char *name)
{
    if (strncmp(name, "redis.tls", 9) == 0 || strncmp(name, "redis.ssl", 9) == 0) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "%s: hiredis 0.14 cannot speak TLS; run a TLS sidecar (stunnel) and point "
                      "redis.host/port at it: see docs/operations.md, 'Redis over TLS'",
                      name);
    }
    return 0;
}

/* Walks a map of fixed keys under `prefix` ("" for the top level). */
static int map_walk(struct parse_ctx *ctx, const char *prefix, yaml_node_t *node)
{
    char name[KEY_NAME_MAX];
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
        if (join_name(ctx, prefix, key, name, sizeof(name)) < 0) {
            return -1;
        }
        if (strcmp(name, "kafka") == 0) {
            if (kafka_walk(ctx, "", val) < 0) {
                return -1;
            }
            continue;
        }
        if (strncmp(name, "kafka.", 6) == 0) {
            if (kafka_walk(ctx, name + 6, val) < 0) {
                return -1;
            }
            continue;
        }
        if (strcmp(name, "models") == 0) {
            if (models_walk(ctx, val) < 0) {
                return -1;
            }
            continue;
        }
        if (refused_key(ctx, name) < 0) {
            return -1;
        }
        int open = list_key_walk(ctx, name, val);
        if (open < 0) {
            return -1;
        }
        if (open) {
            continue;
        }
        const struct cfg_key *k = find_key(name);
        if (k) {
            size_t idx = (size_t)(k - cfg_keys);
            if (ctx->seen[idx]) {
                return dw_err(ctx->errstr, ctx->errstr_size, "%s: given twice", name);
            }
            ctx->seen[idx] = 1;
            if (scalar_set(ctx, k, ctx->cfg, name, val) < 0) {
                return -1;
            }
            continue;
        }
        if (!is_section(name)) {
            return dw_err(ctx->errstr, ctx->errstr_size, "unknown key '%s'", name);
        }
        if (node_is_null(val)) {
            continue; /* an empty section keeps its defaults */
        }
        if (val->type != YAML_MAPPING_NODE) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: expected a map, got %s", name,
                          node_type_name(val));
        }
        if (map_walk(ctx, name, val) < 0) {
            return -1;
        }
    }
    return 0;
}

#define AM_ALERTS_PATH "/api/v2/alerts"

/* An Alertmanager sink is given its base URL: the alerts endpoint is added to it. */
static void alertmanager_url(struct dw_sink_cfg *s)
{
    size_t n = strlen(s->url), p = strlen(AM_ALERTS_PATH);
    if (n >= p && strcmp(s->url + n - p, AM_ALERTS_PATH) == 0) {
        return;
    }
    while (n > 0 && s->url[n - 1] == '/') {
        n--;
    }
    char *url = dw_malloc(n + p + 1);
    memcpy(url, s->url, n);
    memcpy(url + n, AM_ALERTS_PATH, p + 1);
    free(s->url);
    s->url = url;
}

static int sink_check(struct dw_sink_cfg *s, char *errstr, size_t errstr_size)
{
    if (s->type == DW_SINK_ALERTMANAGER) {
        alertmanager_url(s);
    }
    if (s->backoff_max_ms < s->backoff_initial_ms) {
        return dw_err(errstr, errstr_size,
                      "alerting.sinks.%s.backoff_max: must be at least backoff_initial", s->name);
    }
    if (s->type == DW_SINK_PAGERDUTY && !s->routing_key) {
        return dw_err(errstr, errstr_size, "alerting.sinks.%s.routing_key: required by pagerduty",
                      s->name);
    }
    if (s->type != DW_SINK_WEBHOOK && s->secret) {
        return dw_err(errstr, errstr_size,
                      "alerting.sinks.%s.secret: only webhook sinks sign their messages", s->name);
    }
    char sig[128];
    if (s->secret && dw_sign_standard(s->secret, "msg", 0, "", 0, sig, sizeof(sig)) < 0) {
        /* never quote the secret */
        return dw_err(errstr, errstr_size,
                      "alerting.sinks.%s.secret: not a signing secret (expected whsec_ followed "
                      "by base64)",
                      s->name);
    }
    return 0;
}

/* The threshold of sla_rules[j] in a model's sla (NaN when not given). */
static double sla_threshold(const struct dw_sla_cfg *sla, size_t j)
{
    double v;
    memcpy(&v, (const char *)sla + sla_rules[j].offset, sizeof(v));
    return v;
}

/*
 * One rule per threshold of every models.<m>.sla, appended to the rules (given or built-in):
 * they are the model's own, so `alerting.rules` does not replace them. They read the close
 * report (stage close): latency and serving counts are complete when the window closes, and
 * the final report repeats the same numbers later, so judging both would count each window
 * twice. A rule of alerting.rules with the same name is refused: alerts, fingerprints and
 * triggers.rules name rules, and the two would be mixed up.
 */
/*
 * A rule of model m's own keys (`key`: "sla.error_rate", "canary"), appended to the rules
 * after the n_given ones of alerting.rules (or the built-in ones), named `name`, of stage
 * close, zeroed otherwise. @returns it, or NULL when a given rule has that name (errstr).
 */
static struct dw_rule *model_rule_new(struct dw_config *cfg, size_t n_given, const char *name,
                                      const struct dw_model_cfg *m, const char *key, char *errstr,
                                      size_t errstr_size)
{
    for (size_t u = 0; u < n_given; u++) {
        if (strcmp(cfg->rules[u].name, name) == 0) {
            dw_err(errstr, errstr_size,
                   "alerting.rules[%zu].name: '%s' is the name of the rule of models.%s.%s; "
                   "choose another name",
                   u, name, m->name, key);
            return NULL;
        }
    }
    cfg->rules = dw_realloc(cfg->rules, (cfg->n_rules + 1) * sizeof(*cfg->rules));
    struct dw_rule *r = &cfg->rules[cfg->n_rules++];
    cfg->n_model_rules++;
    memset(r, 0, sizeof(*r));
    r->name = dw_strdup(name);
    r->model = dw_strdup(m->name);
    r->stage = DW_STAGE_CLOSE;
    return r;
}

/*
 * models.<m>.canary: the rule canary_rollback, firing while the close report's analysis says
 * rollback (harm shows early: docs/canary.md, "Stages"), critical, with the verdict's reasons
 * in its summary, resolving when the verdict no longer says it.
 */
static int canary_rules_add(struct dw_config *cfg, size_t n_given, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct dw_model_cfg *m = &cfg->models[i];
        if (!m->canary.on) {
            continue;
        }
        struct dw_rule *r =
            model_rule_new(cfg, n_given, "canary_rollback", m, "canary", errstr, errstr_size);
        if (!r) {
            return -1;
        }
        r->expr_text = dw_strdup("canary.rollback");
        snprintf(r->expr.path, sizeof(r->expr.path), "%s", "canary.rollback");
        r->expr.op = DW_OP_TRUE;
        r->for_windows = 1;
        r->severity = DW_SEV_CRITICAL;
        r->summary = dw_strdup("{{model}}: canary {{report.canary.candidate}} against "
                               "{{report.canary.baseline}}: {{report.canary.summary}}");
    }
    return 0;
}

static int sla_rules_add(struct dw_config *cfg, size_t n_given, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct dw_model_cfg *m = &cfg->models[i];
        for (size_t j = 0; j < DW_ARRAY_SIZE(sla_rules); j++) {
            double t = sla_threshold(&m->sla, j);
            if (isnan(t)) {
                continue;
            }
            char key[64];
            snprintf(key, sizeof(key), "sla.%s", sla_rules[j].key);
            struct dw_rule *r =
                model_rule_new(cfg, n_given, sla_rules[j].rule, m, key, errstr, errstr_size);
            if (!r) {
                return -1;
            }
            char num[DW_FMT_DOUBLE_SIZE];
            dw_fmt_double(t, num, sizeof(num));
            struct dw_sbuf sb = {0};
            dw_sbuf_printf(&sb, "%s %s %s", sla_rules[j].path, sla_rules[j].op_text, num);
            r->expr_text = sb.s;
            snprintf(r->expr.path, sizeof(r->expr.path), "%s", sla_rules[j].path);
            r->expr.op = sla_rules[j].op;
            r->expr.threshold = t;
            r->for_windows = m->sla.for_windows;
            r->keep_firing_windows = m->sla.keep_firing_windows;
            r->repeat_interval_ms = 0;
            r->severity = m->sla.severity;
            sb = (struct dw_sbuf){0};
            dw_sbuf_printf(&sb,
                           "SLA of {{model}} (sla.%s): %s %s {{threshold}}%s; latest window: "
                           "{{value}}%s",
                           sla_rules[j].key, sla_rules[j].path,
                           sla_rules[j].op == DW_OP_GT ? "at most" : "at least", sla_rules[j].unit,
                           sla_rules[j].unit);
            r->description = sb.s;
        }
    }
    return 0;
}

/* Rules and sinks against each other and the models; the built-in rules when none given. */
static int alerting_check(struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg->rules) {
        cfg->rules = dw_rules_defaults(&cfg->n_rules);
    }
    size_t n_given = cfg->n_rules;
    if (sla_rules_add(cfg, n_given, errstr, errstr_size) < 0 ||
        canary_rules_add(cfg, n_given, errstr, errstr_size) < 0) {
        return -1;
    }
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const char *model = cfg->rules[i].model;
        if (model && !dw_config_model(cfg, model, strlen(model))) {
            return dw_err(errstr, errstr_size,
                          "alerting.rules[%zu].model: '%s' is not one of the models", i, model);
        }
    }
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        if (sink_check(&cfg->sinks[i], errstr, errstr_size) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < cfg->n_trigger_rules; i++) {
        size_t j = 0;
        while (j < cfg->n_rules && strcmp(cfg->rules[j].name, cfg->trigger_rules[i]) != 0) {
            j++;
        }
        if (j == cfg->n_rules) {
            return dw_err(errstr, errstr_size, "triggers.rules: '%s' is not the name of a rule",
                          cfg->trigger_rules[i]);
        }
    }
    return 0;
}

/* Rules between keys, checked once everything is read. */
/* redis.cluster against the single-node keys (seen: which cfg_keys rows the file gave). */
static int redis_cluster_check(const struct dw_config *cfg, const unsigned char *seen, char *errstr,
                               size_t errstr_size)
{
    if (!cfg->redis_cluster) {
        return cfg->n_redis_nodes ? dw_err(errstr, errstr_size,
                                           "redis.nodes: only with redis.cluster: true (the "
                                           "single server is redis.host and redis.port)")
                                  : 0;
    }
    if (cfg->n_redis_nodes == 0) {
        return dw_err(errstr, errstr_size,
                      "redis.nodes: required with redis.cluster: true (host:port of at least "
                      "one node of the cluster)");
    }
    const char *single[] = {"redis.host", "redis.port"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(single); i++) {
        const struct cfg_key *k = find_key(single[i]);
        if (k && seen[k - cfg_keys]) {
            return dw_err(errstr, errstr_size,
                          "%s: not with redis.cluster: true (name the cluster's nodes in "
                          "redis.nodes)",
                          single[i]);
        }
    }
    if (cfg->redis_db != 0) {
        return dw_err(errstr, errstr_size,
                      "redis.db: must be 0 with redis.cluster: true (a Redis Cluster has only "
                      "database 0; SELECT is refused)");
    }
    return 0;
}

static int cross_check(struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    const char *bootstrap = NULL;
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, "bootstrap.servers") == 0) {
            bootstrap = cfg->kafka[i].value;
        }
    }
    if (!bootstrap || *bootstrap == '\0') {
        return dw_err(errstr, errstr_size, "kafka.bootstrap.servers: required");
    }
    if (strcmp(cfg->topic_predictions, cfg->topic_labels) == 0) {
        return dw_err(errstr, errstr_size,
                      "topics.labels: must differ from topics.predictions "
                      "('%s')",
                      cfg->topic_predictions);
    }
    const char *outs[] = {cfg->topic_dead_letter, cfg->topic_triggers};
    const char *out_names[] = {"topics.dead_letter", "topics.triggers"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(outs); i++) {
        if (strcmp(outs[i], cfg->topic_predictions) == 0 ||
            strcmp(outs[i], cfg->topic_labels) == 0) {
            return dw_err(errstr, errstr_size,
                          "%s: must differ from topics.predictions and topics.labels "
                          "(driftwatch would consume what it writes)",
                          out_names[i]);
        }
    }
    if (alerting_check(cfg, errstr, errstr_size) < 0) {
        return -1;
    }
    /* the reports' Redis TTL is window.retention x window.size: bounded like any duration */
    if (cfg->retention_windows > (int64_t)DW_DURATION_MAX_MS / cfg->window_size_ms) {
        return dw_err(errstr, errstr_size,
                      "window.retention: %" PRId64 " windows of %" PRId64
                      " ms is more than 9e15 ms (about 285,000 years)",
                      cfg->retention_windows, cfg->window_size_ms);
    }
    if (cfg->rolling_windows > cfg->retention_windows) {
        return dw_err(errstr, errstr_size,
                      "evaluation.rolling_windows: must be at most window.retention (%" PRId64
                      "): older windows are gone from Redis",
                      cfg->retention_windows);
    }
    if (cfg->n_models == 0) {
        return dw_err(errstr, errstr_size, "models: at least one model is required");
    }
    for (size_t i = 0; i < cfg->n_models; i++) {
        struct dw_model_cfg *m = &cfg->models[i];
        m->version_features = m->canary.on || m->reference.per_version;
        if (m->reference.source == DW_REF_SOURCE_TRAILING &&
            m->reference.windows > cfg->retention_windows) {
            return dw_err(errstr, errstr_size,
                          "models.%s.reference.windows: %" PRId64 " trailing windows, more than "
                          "window.retention (%" PRId64 "): older windows are gone from Redis",
                          m->name, m->reference.windows, cfg->retention_windows);
        }
        if (m->canary.on && m->canary.windows > cfg->retention_windows) {
            return dw_err(errstr, errstr_size,
                          "models.%s.canary.windows: %" PRId64 " windows, more than "
                          "window.retention (%" PRId64 "): older windows are gone from Redis",
                          m->name, m->canary.windows, cfg->retention_windows);
        }
    }
    return 0;
}

/* A profile's path as the file gives it, without file:// (malloc'd). */
static char *profile_path(const char *text)
{
    return dw_strdup(strncmp(text, "file://", 7) == 0 ? text + 7 : text);
}

/* Each model's effective reference settings: its own keys, else the global ones. */
static int reference_resolve(struct parse_ctx *ctx)
{
    struct dw_config *cfg = ctx->cfg;
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct ref_override *o = &ctx->ref_over[i];
        struct dw_model_cfg *m = &cfg->models[i];
        m->reference.source =
            o->source >= 0 ? (enum dw_ref_source)o->source : cfg->reference_source;
        m->reference.windows = o->windows > 0 ? o->windows : cfg->reference_windows;
        m->reference.profile = profile_path(o->profile ? o->profile : cfg->reference_profile);
        m->reference.per_version =
            o->per_version >= 0 ? o->per_version : cfg->reference_per_version;
        if (m->reference.per_version && m->reference.source == DW_REF_SOURCE_TRAILING) {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "models.%s.reference.per_version: not with source trailing (each "
                          "window is judged against the windows before it, whatever its "
                          "versions); use source windows or profile",
                          m->name);
        }
        if (m->reference.source == DW_REF_SOURCE_PROFILE && *m->reference.profile == '\0') {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "models.%s.reference.profile: required with source profile (set "
                          "reference.profile or models.%s.reference.profile)",
                          m->name, m->name);
        }
    }
    return 0;
}

static void ref_overrides_free(struct parse_ctx *ctx)
{
    for (size_t i = 0; ctx->ref_over && i < ctx->cfg->n_models; i++) {
        free(ctx->ref_over[i].profile);
    }
    free(ctx->ref_over);
    ctx->ref_over = NULL;
}

/* redis.host and redis.port: the master's address when there are no sentinels. */
static int redis_direct_key(const char *name)
{
    return strcmp(name, "redis.host") == 0 || strcmp(name, "redis.port") == 0;
}

/* The Redis keys that only make sense together (ctx->seen: the keys the file gave). */
static int redis_check(struct parse_ctx *ctx)
{
    const struct dw_config *cfg = ctx->cfg;
    if (cfg->redis_username[0] && !cfg->redis_password[0]) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "redis.username: needs redis.password (AUTH <username> <password>)");
    }
    if (!cfg->n_redis_sentinels) {
        if (cfg->redis_master_name[0] || cfg->redis_sentinel_password[0]) {
            return dw_err(ctx->errstr, ctx->errstr_size, "%s: only with redis.sentinels",
                          cfg->redis_master_name[0] ? "redis.master_name"
                                                    : "redis.sentinel_password");
        }
        return 0;
    }
    if (!cfg->redis_master_name[0]) {
        return dw_err(ctx->errstr, ctx->errstr_size,
                      "redis.master_name: required with redis.sentinels (the name of `sentinel "
                      "monitor <name> ...`)");
    }
    for (size_t i = 0; i < DW_ARRAY_SIZE(cfg_keys); i++) {
        if (ctx->seen[i] && redis_direct_key(cfg_keys[i].name)) {
            return dw_err(ctx->errstr, ctx->errstr_size,
                          "%s: not with redis.sentinels (the sentinels name the master); give "
                          "one or the other",
                          cfg_keys[i].name);
        }
    }
    return 0;
}

/* Loads from an initialised parser; `src` names the input in syntax errors. */
static int load_parser(struct dw_config *cfg, yaml_parser_t *parser, const char *src, char *errstr,
                       size_t errstr_size)
{
    struct parse_ctx ctx = {.cfg = cfg, .errstr = errstr, .errstr_size = errstr_size};
    yaml_document_t doc;
    int have_doc = 0;

    ctx.kconf = rd_kafka_conf_new();
    if (!yaml_parser_load(parser, &doc)) {
        const char *ctxt = parser->context ? parser->context : "";
        dw_err(errstr, errstr_size, "%s: YAML syntax error at line %zu, column %zu: %s%s%s", src,
               parser->problem_mark.line + 1, parser->problem_mark.column + 1,
               parser->problem ? parser->problem : "unknown problem", *ctxt ? " " : "", ctxt);
        goto err;
    }
    have_doc = 1;
    ctx.doc = &doc;

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !node_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            dw_err(errstr, errstr_size, "%s: the top level must be a map of keys, not %s", src,
                   node_type_name(root));
            goto err;
        }
        if (map_walk(&ctx, "", root) < 0) {
            goto err;
        }
    }
    if (redis_check(&ctx) < 0 || reference_resolve(&ctx) < 0 ||
        cross_check(cfg, errstr, errstr_size) < 0 ||
        redis_cluster_check(cfg, ctx.seen, errstr, errstr_size) < 0) {
        goto err;
    }
    ref_overrides_free(&ctx);
    yaml_document_delete(&doc);
    rd_kafka_conf_destroy(ctx.kconf);
    return 0;

err:
    ref_overrides_free(&ctx);
    if (have_doc) {
        yaml_document_delete(&doc);
    }
    rd_kafka_conf_destroy(ctx.kconf);
    dw_config_free(cfg);
    return -1;
}

int dw_config_load_string(struct dw_config *cfg, const char *yaml, char *errstr, size_t errstr_size)
{
    yaml_parser_t parser;
    dw_config_defaults(cfg);
    if (!yaml_parser_initialize(&parser)) {
        dw_config_free(cfg);
        return dw_err(errstr, errstr_size, "config: cannot initialise the YAML parser");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    int rc = load_parser(cfg, &parser, "config", errstr, errstr_size);
    yaml_parser_delete(&parser);
    return rc;
}

int dw_config_load_cli(struct dw_config *cfg, const char *command, const char *path)
{
    char errstr[1024];
    if (!path) {
        fprintf(stderr, "%s: -c FILE is required\n", command);
        return 2;
    }
    if (dw_config_load(cfg, path, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "driftwatch: %s\n", errstr);
        return 2;
    }
    return 0;
}

int dw_config_load(struct dw_config *cfg, const char *path, char *errstr, size_t errstr_size)
{
    yaml_parser_t parser;
    FILE *fp = NULL;

    dw_config_defaults(cfg);
    fp = fopen(path, "rb");
    if (!fp) {
        dw_err(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        goto err;
    }
    if (!yaml_parser_initialize(&parser)) {
        dw_err(errstr, errstr_size, "%s: cannot initialise the YAML parser", path);
        goto err;
    }
    yaml_parser_set_input_file(&parser, fp);
    int rc = load_parser(cfg, &parser, path, errstr, errstr_size);
    yaml_parser_delete(&parser);
    if (rc == 0 && ferror(fp)) {
        dw_config_free(cfg);
        dw_err(errstr, errstr_size, "%s: read error", path);
        rc = -1;
    }
    fclose(fp);
    if (rc == 0) {
        cfg->path = dw_strdup(path);
    }
    return rc;

err:
    if (fp) {
        fclose(fp);
    }
    dw_config_free(cfg);
    return -1;
}

/*
 * Dump and reference.
 */

/* A YAML double-quoted string. Values escape "${" as "$${" so the dump reads back the same. */
static void yaml_quote(FILE *out, const char *s, int is_value)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (*p == '\t') {
            fputs("\\t", out);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\x%02x", *p);
        } else if (is_value && p[0] == '$' && p[1] == '{') {
            fputs("$$", out);
        } else {
            fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void dump_value(FILE *out, const struct cfg_key *k, const void *base)
{
    const char *src = (const char *)base + k->offset;
    char buf[64];
    switch (k->type) {
    case T_STRING: {
        const char *s = *(char *const *)(const void *)src;
        yaml_quote(out, s ? s : "", 1);
        break;
    }
    case T_SECRET: {
        const char *s = *(char *const *)(const void *)src;
        yaml_quote(out, (s && *s) ? "***" : "", 1);
        break;
    }
    case T_INT:
        if (k->size == sizeof(int)) {
            int v;
            memcpy(&v, src, sizeof(v));
            fprintf(out, "%d", v);
        } else {
            int64_t v;
            memcpy(&v, src, sizeof(v));
            fprintf(out, "%" PRId64, v);
        }
        break;
    case T_DOUBLE: {
        double v;
        memcpy(&v, src, sizeof(v));
        dw_fmt_double(v, buf, sizeof(buf));
        fputs(buf, out);
        break;
    }
    case T_BOOL: {
        int v;
        memcpy(&v, src, sizeof(v));
        fputs(v ? "true" : "false", out);
        break;
    }
    case T_DURATION: {
        int64_t v;
        memcpy(&v, src, sizeof(v));
        format_duration(v, buf, sizeof(buf));
        fputs(buf, out);
        break;
    }
    case T_ENUM: {
        int v;
        memcpy(&v, src, sizeof(v));
        const char *p = k->choices;
        for (int i = 0; i < v && p; i++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        dw_assert(p != NULL);
        const char *bar = strchr(p, '|');
        fprintf(out, "%.*s", (int)(bar ? (size_t)(bar - p) : strlen(p)), p);
        break;
    }
    }
}

/* Number of leading dotted components two names share (excluding the last of `b`). */
static size_t common_sections(const char *a, const char *b)
{
    size_t n = 0;
    for (size_t i = 0;; i++) {
        if (a[i] != b[i] || a[i] == '\0') {
            return n;
        }
        if (a[i] == '.') {
            n++;
        }
    }
}

static void dump_labels(FILE *out, const char *indent, const char *key,
                        const struct dw_rule_label *labels, size_t n)
{
    fprintf(out, "%s%s:%s\n", indent, key, n ? "" : " {}");
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s  ", indent);
        yaml_quote(out, labels[i].key, 0);
        fputs(": ", out);
        yaml_quote(out, labels[i].value, 1);
        fputc('\n', out);
    }
}

static void dump_table(FILE *out, const char *first, const char *indent, const struct cfg_key *keys,
                       size_t n_keys, const void *base)
{
    for (size_t j = 0; j < n_keys; j++) {
        fprintf(out, "%s%s: ", j == 0 ? first : indent, keys[j].name);
        dump_value(out, &keys[j], base);
        fputc('\n', out);
    }
}

/* alerting.rules, alerting.sinks and triggers.rules, after the scalar keys. */
static void dump_alerting(const struct dw_config *cfg, FILE *out)
{
    /* the rules of models.<m>.sla and canary are dumped there, as the model's keys */
    size_t n_given = cfg->n_rules - cfg->n_model_rules;
    fputs(n_given ? "alerting.rules:\n" : "alerting.rules: []\n", out);
    for (size_t i = 0; i < n_given; i++) {
        const struct dw_rule *r = &cfg->rules[i];
        dump_table(out, "  - ", "    ", rule_keys, DW_ARRAY_SIZE(rule_keys), r);
        dump_labels(out, "    ", "labels", r->labels, r->n_labels);
    }
    if (cfg->n_model_rules) {
        fputs("# and the rules of models.<name>.sla and canary (made from them, not read from "
              "here):\n",
              out);
    }
    for (size_t i = n_given; i < cfg->n_rules; i++) {
        const struct dw_rule *r = &cfg->rules[i];
        fprintf(out, "#   %s, model ", r->name);
        yaml_quote(out, r->model, 0);
        fprintf(out, ": %s, stage close, for %" PRId64 ", keep_firing_for %" PRId64 ", %s\n",
                r->expr_text, r->for_windows, r->keep_firing_windows,
                dw_severity_name(r->severity));
    }
    fputs(cfg->n_sinks ? "alerting.sinks:\n" : "alerting.sinks: {}\n", out);
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        const struct dw_sink_cfg *sk = &cfg->sinks[i];
        fputs("  ", out);
        yaml_quote(out, sk->name, 0);
        fputs(":\n", out);
        dump_table(out, "    ", "    ", sink_keys, DW_ARRAY_SIZE(sink_keys), sk);
        fprintf(out, "    severities: [%s%s%s]\n",
                (!sk->severities || (sk->severities & 1u)) ? "warning" : "",
                !sk->severities || sk->severities == 3u ? ", " : "",
                (!sk->severities || (sk->severities & 2u)) ? "critical" : "");
        dump_labels(out, "    ", "match", sk->match, sk->n_match);
    }
    fputs(cfg->n_trigger_rules ? "triggers.rules:\n" : "triggers.rules: []\n", out);
    for (size_t i = 0; i < cfg->n_trigger_rules; i++) {
        fputs("  - ", out);
        yaml_quote(out, cfg->trigger_rules[i], 1);
        fputc('\n', out);
    }
}

/* models.<m>.sla, when a threshold is given: one flow map, values printed to round-trip. */
static void dump_sla(const struct dw_sla_cfg *sla, FILE *out)
{
    int any = 0;
    for (size_t j = 0; j < DW_ARRAY_SIZE(sla_rules); j++) {
        any |= !isnan(sla_threshold(sla, j));
    }
    if (!any) {
        return;
    }
    const char *sep = "    sla: {";
    for (size_t i = 0; i < DW_ARRAY_SIZE(sla_keys); i++) {
        const struct cfg_key *k = &sla_keys[i];
        double v = 0.0;
        if (k->type == T_DOUBLE) {
            memcpy(&v, (const char *)sla + k->offset, sizeof(v));
            if (isnan(v)) {
                continue;
            }
        }
        fprintf(out, "%s%s: ", sep, k->name);
        dump_value(out, k, sla);
        sep = ", ";
    }
    fputs("}\n", out);
}

/* models.<m>.baseline, when given: one flow map, values printed to round-trip. */
static void dump_baseline(const struct dw_model_cfg *m, FILE *out)
{
    if (!m->baseline_set) {
        return;
    }
    const char *sep = "    baseline: {";
    for (size_t k = 0; k < DW_PM_COUNT; k++) {
        if (m->baseline_set & (1u << k)) {
            char num[64];
            dw_fmt_double(m->baseline[k], num, sizeof(num));
            fprintf(out, "%s%s: %s", sep, dw_perf_metric_info((enum dw_perf_metric)k)->name, num);
            sep = ", ";
        }
    }
    fputs("}\n", out);
}

/* "name: [a, b]": a list of scalars given by their text, as one line of the dump. */
static void dump_text_list(FILE *out, const char *name, char *const *items, size_t n)
{
    fprintf(out, "%s: [", name);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", out);
        yaml_quote(out, items[i], 1);
    }
    fputs("]\n", out);
}

void dw_config_dump(const struct dw_config *cfg, FILE *out)
{
    fprintf(out, "# driftwatch effective configuration%s%s (secrets masked as \"***\")\n",
            cfg->path ? " from " : "", cfg->path ? cfg->path : "");
    const char *prev = "";
    for (size_t i = 0; i < DW_ARRAY_SIZE(cfg_keys); i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if ((cfg->n_redis_sentinels || cfg->redis_cluster) && redis_direct_key(k->name)) {
            continue; /* refused beside the sentinels or a cluster: the dump must load again */
        }
        size_t common = common_sections(prev, k->name);
        /* open the sections this key adds */
        const char *p = k->name;
        size_t depth = 0;
        for (;;) {
            const char *dot = strchr(p, '.');
            if (!dot) {
                break;
            }
            if (depth >= common) {
                fprintf(out, "%*s%.*s:\n", (int)(2 * depth), "", (int)(dot - p), p);
            }
            depth++;
            p = dot + 1;
        }
        fprintf(out, "%*s%s: ", (int)(2 * depth), "", p);
        dump_value(out, k, cfg);
        fputc('\n', out);
        prev = k->name;
    }

    fputs(cfg->n_kafka ? "kafka:\n" : "kafka: {}\n", out);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        fputs("  ", out);
        yaml_quote(out, cfg->kafka[i].key, 0);
        fputs(": ", out);
        yaml_quote(out, kafka_secret(cfg->kafka[i].key) ? "***" : cfg->kafka[i].value, 1);
        fputc('\n', out);
    }

    if (cfg->n_redis_sentinels) {
        dump_text_list(out, "redis.sentinels", cfg->redis_sentinels, cfg->n_redis_sentinels);
    }
    if (cfg->n_redis_nodes) {
        dump_text_list(out, "redis.nodes", cfg->redis_nodes, cfg->n_redis_nodes);
    }
    if (cfg->error_values_set) { /* not given: the default rule, which no list can write */
        dump_text_list(out, "input.error_values", cfg->error_values, cfg->n_error_values);
    }

    fputs(cfg->n_models ? "models:\n" : "models: {}\n", out);
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct dw_model_cfg *m = &cfg->models[i];
        fputs("  ", out);
        yaml_quote(out, m->name, 0);
        fputs(":\n", out);
        for (size_t j = 0; j < DW_ARRAY_SIZE(model_keys); j++) {
            fprintf(out, "    %s: ", model_keys[j].name);
            dump_value(out, &model_keys[j], m);
            fputc('\n', out);
        }
        fputs(m->n_features ? "    features:\n" : "    features: {}\n", out);
        for (size_t j = 0; j < m->n_features; j++) {
            const struct dw_feature_cfg *f = &m->features[j];
            const char *type = f->type == DW_FEATURE_NUMERIC ? "numeric" : "categorical";
            const struct dw_feature_detector *d = NULL;
            for (size_t k = 0; !d && k < cfg->n_detectors; k++) {
                if (strcmp(cfg->detectors[k].model, m->name) == 0 &&
                    strcmp(cfg->detectors[k].feature, f->name) == 0) {
                    d = &cfg->detectors[k];
                }
            }
            fputs("      ", out);
            yaml_quote(out, f->name, 0);
            if (!d) {
                fprintf(out, ": %s\n", type);
                continue;
            }
            fprintf(out, ": {type: %s, method: %s", type, method_names[d->method]);
            if (!isnan(d->threshold)) {
                char num[64];
                dw_fmt_double(d->threshold, num, sizeof(num));
                fprintf(out, ", threshold: %s", num);
            }
            fputs("}\n", out);
        }
        dump_baseline(m, out);
        dump_sla(&m->sla, out);
        fprintf(out, "    reference: {source: %s, windows: %" PRId64 ", profile: ",
                dw_ref_source_name(m->reference.source), m->reference.windows);
        yaml_quote(out, m->reference.profile, 1);
        fprintf(out, ", per_version: %s}\n", m->reference.per_version ? "true" : "false");
        if (m->canary.on) {
            fputs("    canary:\n", out);
            for (size_t j = 0; j < DW_ARRAY_SIZE(model_canary_keys); j++) {
                fprintf(out, "      %s: ", model_canary_keys[j].name);
                dump_value(out, &model_canary_keys[j], &m->canary);
                fputc('\n', out);
            }
        }
    }
    dump_alerting(cfg, out);
}

static const char *type_name(const struct cfg_key *k)
{
    if (k->choices) {
        return "enum";
    }
    switch (k->type) {
    case T_STRING:
        return "string";
    case T_SECRET:
        return "secret-string";
    case T_INT:
        return "int";
    case T_DOUBLE:
        return "double";
    case T_BOOL:
        return "bool";
    case T_DURATION:
        return "duration";
    case T_ENUM:
        return "enum";
    }
    return "?";
}

/* Markdown table cell text: pipes escaped. */
static void md_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') {
            fputs("\\|", out);
        } else {
            fputc(*s, out);
        }
    }
}

static void reference_row(FILE *out, const char *name, const char *type, const char *def,
                          int def_is_code, const char *help)
{
    fprintf(out, "| `%s` | %s | ", name, type);
    if (!def_is_code) {
        md_text(out, def);
    } else if (*def == '\0') {
        fputs("`\"\"`", out);
    } else {
        fprintf(out, "`%s`", def);
    }
    fputs(" | ", out);
    md_text(out, help);
    fputs(" |\n", out);
}

/* Rows of a key table, named prefix + key; a required key shows "(required)". */
static void reference_keys(FILE *out, const char *prefix, const struct cfg_key *keys, size_t n)
{
    char name[128];
    for (size_t i = 0; i < n; i++) {
        const struct cfg_key *k = &keys[i];
        snprintf(name, sizeof(name), "%s%s", prefix, k->name);
        reference_row(out, name, type_name(k), key_required(k) ? "(required)" : k->def,
                      !key_required(k), k->help);
    }
}

static void reference_open(FILE *out, const struct open_key *keys, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        reference_row(out, keys[i].name, keys[i].type, keys[i].def, 0, keys[i].help);
    }
}

void dw_config_reference(FILE *out)
{
    fputs("| key | type | default | description |\n", out);
    fputs("|-----|------|---------|-------------|\n", out);
    reference_keys(out, "", cfg_keys, DW_ARRAY_SIZE(cfg_keys));
    reference_open(out, redis_open_keys, 0, DW_ARRAY_SIZE(redis_open_keys));
    reference_open(out, input_open_keys, 0, DW_ARRAY_SIZE(input_open_keys));
    reference_open(out, open_keys, 0, 2); /* kafka.* */
    reference_keys(out, "models.<name>.", model_keys, DW_ARRAY_SIZE(model_keys));
    reference_keys(out, "models.<name>.reference.", model_ref_keys, DW_ARRAY_SIZE(model_ref_keys));
    reference_keys(out, "models.<name>.canary.", model_canary_keys,
                   DW_ARRAY_SIZE(model_canary_keys));
    reference_keys(out, "models.<name>.sla.", sla_keys, DW_ARRAY_SIZE(sla_keys));
    reference_open(out, open_keys, 2, DW_ARRAY_SIZE(open_keys));
    reference_keys(out, "alerting.rules[].", rule_keys, DW_ARRAY_SIZE(rule_keys));
    reference_keys(out, "alerting.sinks.<name>.", sink_keys, DW_ARRAY_SIZE(sink_keys));
    reference_open(out, alerting_open_keys, 0, DW_ARRAY_SIZE(alerting_open_keys));
}
