/*
 * dw_config.h - the effective configuration of driftwatch.
 *
 * The types every module reads; loading them is the loader's (io/dw_config_load.h). One YAML
 * file (see deploy/driftwatch.example.yaml). Keys are declared once in a table in
 * src/io/dw_config_load.c (name, type, default, offset into struct dw_config, help), Fluent Bit
 * style; that table drives parsing, unknown-key errors, --check-config, the dumped effective config
 * and the configuration reference in docs/configuration.md (printed by `driftwatch run
 * --config-reference`, written there by scripts/gen-config-doc.sh). `${VAR}` in any scalar is
 * replaced by the environment variable (an unset variable is an error naming the key).
 * `kafka.*` keys go to librdkafka unchanged. `models` is a map of model name -> model settings
 * with a map of features.
 */
#ifndef DW_CONFIG_H
#define DW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "driftwatch/core/dw_canary.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/core/dw_sink.h"

enum dw_feature_type { DW_FEATURE_NUMERIC = 0, DW_FEATURE_CATEGORICAL = 1 };

/* input.non_finite: what NaN / Infinity / -Infinity tokens in a message mean */
enum dw_non_finite { DW_NON_FINITE_REJECT = 0, DW_NON_FINITE_COUNT = 1 };
/* state.on_loss: what a consumer does with a partition whose Redis state is gone although Kafka
 * holds offsets committed after it was checkpointed (the order of values is the choices') */
enum dw_on_loss {
    DW_ON_LOSS_STOP = 0,
    DW_ON_LOSS_RESUME_FROM_COMMITTED = 1,
    DW_ON_LOSS_REBUILD_FROM_EARLIEST = 2
};
enum dw_task { DW_TASK_CLASSIFICATION = 0, DW_TASK_REGRESSION = 1 };
/*
 * reference.source: what a model's windows are judged against (docs/statistics.md, "Reference
 * sources"). WINDOWS: the first N windows with predictions, frozen; PROFILE: a `driftwatch
 * profile` file (training data); TRAILING: for each window, the N windows before it.
 */
enum dw_ref_source { DW_REF_SOURCE_WINDOWS = 0, DW_REF_SOURCE_PROFILE, DW_REF_SOURCE_TRAILING };
/** @brief A model's reference settings: reference.* overridden by models.<m>.reference.*. */
struct dw_ref_cfg {
    enum dw_ref_source source;
    int64_t windows; /* N: the reference windows, or the trailing windows */
    char *profile;   /* profile path (file:// taken off), "" when none */
    int per_version; /* each version collects its own reference (source windows) */
};

/*
 * Drift detector of a feature (models.<m>.features.<f>.method). AUTO picks a p-value test for
 * small samples and a distance for large ones (detectors.auto_max_sample). KS, WASSERSTEIN, KL
 * and HELLINGER apply to numeric features, CHI2, G_TEST and TVD to categorical ones, PSI and
 * JS to both. The names in the file are the lower-case ones ("g_test").
 */
enum dw_method {
    DW_METHOD_AUTO = 0,
    DW_METHOD_KS,
    DW_METHOD_PSI,
    DW_METHOD_WASSERSTEIN,
    DW_METHOD_JS,
    DW_METHOD_CHI2,
    DW_METHOD_G_TEST,
    DW_METHOD_KL,
    DW_METHOD_HELLINGER,
    DW_METHOD_TVD,
    DW_METHOD_COUNT /* number of methods, not a method */
};

/*
 * Performance metrics of a window report that have a baseline and a drop
 * (models.<m>.baseline.<metric>, performance.baseline / performance.drop in the report). Those
 * before DW_PM_MAE are classification metrics, the others regression ones; the names in the
 * file and in the report are dw_perf_metric_info()'s (docs/statistics.md, "Baselines and drops").
 */
enum dw_perf_metric {
    DW_PM_ACCURACY = 0,
    DW_PM_PRECISION,
    DW_PM_RECALL,
    DW_PM_F1,
    DW_PM_F1_MACRO,
    DW_PM_F1_MICRO,
    DW_PM_ROC_AUC,
    DW_PM_LOG_LOSS,
    DW_PM_BRIER,
    DW_PM_MAE, /* the first regression metric */
    DW_PM_RMSE,
    DW_PM_MAPE,
    DW_PM_R2,
    DW_PM_COUNT /* number of metrics, not a metric */
};

/** @brief What the configuration and the report need to know of a performance metric. */
struct dw_perf_metric_info {
    const char *name;  /* in the report's performance object and in the file */
    enum dw_task task; /* the models that have it */
    int higher_better; /* 1: a fall is worse (accuracy), 0: a rise is worse (log loss) */
    double lo, hi;     /* a configured baseline lies in [lo, hi] and is not 0 */
};

/** @returns the metric's description (k < DW_PM_COUNT). */
const struct dw_perf_metric_info *dw_perf_metric_info(enum dw_perf_metric k);

/** @returns the metric named `name`, or -1. */
int dw_perf_metric_find(const char *name);

struct dw_feature_cfg {
    char *name;
    enum dw_feature_type type;
};

/*
 * The detector chosen for one feature in the map form (models.<model>.features.<feature>:
 * {type, method, threshold}). Kept beside the models rather than in struct dw_feature_cfg,
 * whose two-member positional initialisers are used across the code base. A feature without
 * an entry uses method auto and the detectors.* thresholds.
 */
struct dw_feature_detector {
    char *model;
    char *feature;
    enum dw_method method;
    double threshold; /* the alpha of a p-value test or the distance; NaN = detectors.* default */
};

/** @brief models.<m>.canary: the canary analysis of a rollout (docs/canary.md). */
struct dw_model_canary {
    int on;                   /* the map was given */
    char *baseline;           /* a version, or "auto": the one with the most predictions */
    char *candidate;          /* a version, or "auto": the newest other one */
    int64_t min_samples;      /* as read; copied into cfg.min_samples */
    int64_t windows;          /* as read; copied into cfg.windows */
    struct dw_canary_cfg cfg; /* thresholds, checked by dw_canary_cfg_check() */
};

/*
 * models.<m>.sla: the model's service-level objectives, off unless a threshold is given. Each
 * threshold given becomes one alert rule of the model (sla_latency_p95, sla_latency_p99,
 * sla_error_rate, sla_availability) on the window's close report, made at load time and kept
 * at the end of struct dw_config's rules. A threshold not given is NaN (no rule).
 */
struct dw_sla_cfg {
    double latency_p95_ms;       /* ms, > 0: fires when latency_ms.p95 > it */
    double latency_p99_ms;       /* ms, > 0: fires when latency_ms.p99 > it */
    double error_rate;           /* [0, 1]: fires when serving.error_rate > it */
    double availability;         /* [0, 1]: fires when serving.availability < it */
    int64_t for_windows;         /* >= 1, as a rule's `for` */
    int64_t keep_firing_windows; /* >= 0, as a rule's `keep_firing_for` */
    enum dw_severity severity;
};

struct dw_model_cfg {
    char *name;
    enum dw_task task;               /* models.<m>.task, default classification */
    char *positive_class;            /* models.<m>.positive_class, default "1" */
    int64_t max_categories;          /* models.<m>.max_categories: exact categories per feature */
    struct dw_feature_cfg *features; /* models.<m>.features: map name -> numeric|categorical */
    size_t n_features;
    int64_t max_classes;  /* models.<m>.max_classes: distinct classes per partition's join */
    int64_t max_versions; /* models.<m>.max_versions: distinct versions per partition's join */
    /* models.<m>.baseline.<metric>: configured baseline values, indexed by enum dw_perf_metric;
     * bit k of baseline_set says baseline[k] was given (0: none, the baseline comes from the
     * reference windows). */
    uint32_t baseline_set;
    double baseline[DW_PM_COUNT];
    struct dw_ref_cfg reference;   /* effective: the model's keys, else the global ones */
    struct dw_model_canary canary; /* models.<m>.canary */
    struct dw_sla_cfg sla;         /* models.<m>.sla */
    /* Each version's feature statistics are kept beside the model's (a second pass over the
     * features of every prediction): on when versions are compared (canary), for their drift
     * against the model's reference (docs/canary.md, "Per-version feature drift"). */
    int version_features; /* canary, or reference.per_version */
};

struct dw_kv {
    char *key;
    char *value;
};

struct dw_config {
    char *path; /* file the config was read from (not a key) */

    char *group; /* group: consumer group id and Redis key namespace */

    char *topic_predictions; /* topics.predictions */
    char *topic_labels;      /* topics.labels */
    char *topic_dead_letter; /* topics.dead_letter ("" disables the dead-letter topic) */
    char *topic_triggers;    /* topics.triggers ("" disables triggers) */

    struct dw_kv *kafka; /* kafka.*: passed to librdkafka as-is (without "kafka.") */
    size_t n_kafka;

    char *redis_host;       /* redis.host */
    int redis_port;         /* redis.port */
    char *redis_password;   /* redis.password ("" = none) */
    char *redis_username;   /* redis.username ("" = none: AUTH <password> alone) */
    char **redis_sentinels; /* redis.sentinels: "host:port" of each sentinel (none: host/port) */
    size_t n_redis_sentinels;
    char *redis_master_name;       /* redis.master_name (with sentinels) */
    char *redis_sentinel_password; /* redis.sentinel_password ("" = the sentinels ask none) */
    int redis_db;                  /* redis.db */
    int64_t redis_timeout_ms;      /* redis.timeout (duration) */
    int redis_cluster;             /* redis.cluster: Redis Cluster through the seed nodes below */
    char **redis_nodes;            /* redis.nodes: "host:port" seed nodes of the cluster */
    size_t n_redis_nodes;

    int64_t max_message_bytes;     /* input.max_message_bytes */
    enum dw_non_finite non_finite; /* input.non_finite */
    int max_depth;                 /* input.max_depth (levels; 0: only JSON's 2048) */
    char *field_prediction_id;     /* input.fields.prediction_id (JSON pointer) */
    char *field_model;             /* input.fields.model */
    char *field_model_version;     /* input.fields.model_version */
    char *field_timestamp;         /* input.fields.timestamp */
    char *field_features;          /* input.fields.features */
    char *field_prediction;        /* input.fields.prediction */
    char *field_score;             /* input.fields.score */
    char *field_latency_ms;        /* input.fields.latency_ms */
    char *field_status;            /* input.fields.status ("": events carry no serving status) */
    char **error_values;           /* input.error_values: status texts that mean a failed request */
    size_t n_error_values;
    int error_values_set;        /* input.error_values given; 0: the default ("error", "timeout" and
                                  * integers >= 500, dw_decode.h) */
    char *field_label_id;        /* input.fields.label_id */
    char *field_label;           /* input.fields.label */
    char *field_label_timestamp; /* input.fields.label_timestamp */
    int64_t max_future_skew_ms;  /* input.max_future_skew: event time at most this far after
                                  * the message's Kafka timestamp (0 = unbounded) */
    int64_t max_past_skew_ms;    /* input.max_past_skew: at most this far before it (0 = off) */

    int64_t window_size_ms;      /* window.size */
    int64_t allowed_lateness_ms; /* window.allowed_lateness */
    int64_t idle_timeout_ms;     /* window.idle_timeout */
    int64_t label_horizon_ms;    /* window.label_horizon */
    int64_t retention_windows;   /* window.retention: closed windows kept in Redis */

    int64_t join_ttl_ms;      /* join.ttl */
    int64_t join_max_records; /* join.max_records (per consumer) */

    int64_t checkpoint_interval_ms;  /* checkpoint.interval */
    int64_t checkpoint_max_messages; /* checkpoint.max_messages */
    enum dw_on_loss on_loss;         /* state.on_loss */
    int64_t quarantine_recheck_ms;   /* state.quarantine_recheck (0: only at assignment) */
    int64_t eval_interval_ms;        /* evaluation.interval */

    enum dw_ref_source reference_source; /* reference.source (default of every model) */
    int64_t reference_windows; /* reference.windows: first N closed windows form the reference */
    int reference_per_version; /* reference.per_version (default of every model) */
    char *reference_profile;   /* reference.profile: "" or a profile path (file:// accepted) */
    int64_t psi_bins;          /* reference.bins: quantile bins for numeric PSI (10 = deciles) */

    double psi_threshold;         /* detectors.psi_threshold */
    double accuracy_drop;         /* detectors.accuracy_drop: relative drop that alerts */
    int64_t min_samples;          /* detectors.min_samples: windows with fewer are not judged */
    double drift_share;           /* detectors.drift_share: share of drifting features */
    double alpha;                 /* detectors.alpha: p-value tests, after Benjamini-Hochberg */
    int64_t auto_max_sample;      /* detectors.auto_max_sample: values, auto's p-value limit */
    double wasserstein_threshold; /* detectors.wasserstein_threshold (on wasserstein_norm) */
    double js_threshold;          /* detectors.js_threshold */
    double kl_threshold;          /* detectors.kl_threshold */
    double hellinger_threshold;   /* detectors.hellinger_threshold */
    double tvd_threshold;         /* detectors.tvd_threshold */
    int chi2_correction;          /* detectors.chi2_correction: Yates' correction when dof 1 */

    char *http_listen;          /* http.listen: "host:port" ("" disables) */
    char *http_auth_token;      /* http.auth_token: bearer token of /, /api/, /status ("": open) */
    int64_t metrics_max_series; /* metrics.max_series: model series created at most (count) */

    int64_t alert_queue_size; /* alerting.queue_size: messages waiting for delivery */
    struct dw_rule *rules;    /* alerting.rules (the built-in rules when not given), then the
                               * rules of every models.<m>.sla */
    size_t n_rules;
    size_t
        n_model_rules; /* the last n_model_rules of rules: made from models.<m>.sla and .canary */
    struct dw_sink_cfg *sinks; /* alerting.sinks: map name -> sink */
    size_t n_sinks;

    int triggers_enabled;        /* triggers.enabled */
    int64_t trigger_cooldown_ms; /* triggers.cooldown (window time) */
    int64_t trigger_min_samples; /* triggers.min_samples: predictions in the window */
    int64_t trigger_max_per_day; /* triggers.max_per_day (UTC day of the window) */
    char **trigger_rules;        /* triggers.rules: rule names; none = every rule */
    size_t n_trigger_rules;

    char *log_level;            /* log.level */
    int64_t log_bad_per_second; /* log.bad_messages_per_second */

    struct dw_model_cfg *models; /* models: map name -> model */
    size_t n_models;

    struct dw_feature_detector *detectors; /* features given with a method or threshold */
    size_t n_detectors;

    int64_t rolling_windows; /* evaluation.rolling_windows: windows of the rolling view, 0 = off */
};

/** @returns the model with that name (len bytes, not NUL-terminated) or NULL. */
const struct dw_model_cfg *dw_config_model(const struct dw_config *cfg, const char *name,
                                           size_t len);

/** @returns a malloc'ed copy of model m without its features (borrowing m's strings): the
 *           model of aggregates that hold counts only (a baseline, a profile's outcomes). */
struct dw_model_cfg *dw_model_counts_only(const struct dw_model_cfg *m);
/** @returns the name of a reference source as the file writes it ("windows", ...). */
const char *dw_ref_source_name(enum dw_ref_source source);
/** @returns the index of the model's feature with that name (len bytes), or -1. */
long dw_model_feature_index(const struct dw_model_cfg *model, const char *name, size_t len);

#endif
