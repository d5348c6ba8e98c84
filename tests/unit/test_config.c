/*
 * test_config.c - the YAML configuration: defaults, parsing, errors that name the key,
 * ${VAR} interpolation, kafka.* validation through librdkafka, models, dump and reference.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_config.h"

#include "dw_test.h"

/* The smallest valid file: everything else comes from the defaults. */
#define MINIMAL "kafka: {bootstrap.servers: 127.0.0.1:9092}\nmodels: {m: {}}\n"

static char errstr[512];

/* Loads yaml, expects failure, and checks the message contains `want`. */
static void expect_error(const char *yaml, const char *want)
{
    struct dw_config cfg;
    errstr[0] = '\0';
    int rc = dw_config_load_string(&cfg, yaml, errstr, sizeof(errstr));
    if (rc == 0) {
        dw_config_free(&cfg);
        fail_msg("expected an error containing \"%s\", but the config loaded", want);
    }
    if (!strstr(errstr, want)) {
        fail_msg("error \"%s\" does not contain \"%s\"", errstr, want);
    }
    /* the config is freed on failure */
    assert_null(cfg.models);
    assert_null(cfg.detectors);
    assert_null(cfg.kafka);
    assert_null(cfg.group);
}

static void load_ok(struct dw_config *cfg, const char *yaml)
{
    errstr[0] = '\0';
    int rc = dw_config_load_string(cfg, yaml, errstr, sizeof(errstr));
    if (rc != 0) {
        fail_msg("config did not load: %s", errstr);
    }
}

static const char *kafka_get(const struct dw_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return cfg->kafka[i].value;
        }
    }
    return NULL;
}

/* dw_config_dump() into a string (caller frees). */
static char *dump_to_string(const struct dw_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    dw_config_dump(cfg, fp);
    fclose(fp);
    return buf;
}

static void test_defaults(void **state)
{
    struct dw_config cfg;
    dw_config_defaults(&cfg);
    assert_string_equal(cfg.group, "driftwatch");
    assert_string_equal(cfg.topic_predictions, "predictions");
    assert_string_equal(cfg.topic_labels, "labels");
    assert_string_equal(cfg.topic_dead_letter, "driftwatch-dead-letter");
    assert_string_equal(cfg.topic_triggers, "driftwatch-triggers");
    assert_string_equal(cfg.redis_host, "127.0.0.1");
    assert_int_equal(cfg.redis_port, 6379);
    assert_string_equal(cfg.redis_password, "");
    assert_int_equal(cfg.redis_db, 0);
    assert_int_equal(cfg.redis_timeout_ms, 2000);
    assert_int_equal(cfg.max_message_bytes, 262144);
    assert_string_equal(cfg.field_prediction_id, "/prediction_id");
    assert_string_equal(cfg.field_model, "/model");
    assert_string_equal(cfg.field_model_version, "/model_version");
    assert_string_equal(cfg.field_timestamp, "/timestamp");
    assert_string_equal(cfg.field_features, "/features");
    assert_string_equal(cfg.field_prediction, "/prediction");
    assert_string_equal(cfg.field_score, "/score");
    assert_string_equal(cfg.field_latency_ms, "/latency_ms");
    assert_string_equal(cfg.field_label_id, "/prediction_id");
    assert_string_equal(cfg.field_label, "/label");
    assert_string_equal(cfg.field_label_timestamp, "/timestamp");
    assert_int_equal(cfg.window_size_ms, 60000);
    assert_int_equal(cfg.allowed_lateness_ms, 10000);
    assert_int_equal(cfg.idle_timeout_ms, 30000);
    assert_int_equal(cfg.label_horizon_ms, 3600000);
    assert_int_equal(cfg.retention_windows, 1440);
    assert_int_equal(cfg.join_ttl_ms, 3600000);
    assert_int_equal(cfg.join_max_records, 2000000);
    assert_int_equal(cfg.checkpoint_interval_ms, 1000);
    assert_int_equal(cfg.checkpoint_max_messages, 200000);
    assert_int_equal(cfg.eval_interval_ms, 1000);
    assert_int_equal(cfg.rolling_windows, 6);
    assert_int_equal(cfg.reference_windows, 3);
    assert_int_equal(cfg.psi_bins, 10);
    assert_double_exact(cfg.psi_threshold, 0.2);
    assert_double_exact(cfg.accuracy_drop, 0.05);
    assert_int_equal(cfg.min_samples, 100);
    assert_string_equal(cfg.http_listen, "127.0.0.1:8080");
    assert_int_equal(cfg.alert_queue_size, 1000);
    assert_int_equal(cfg.n_sinks, 0);
    assert_int_equal(cfg.triggers_enabled, 1);
    assert_int_equal(cfg.trigger_cooldown_ms, 3600000);
    assert_int_equal(cfg.trigger_min_samples, 100);
    assert_int_equal(cfg.trigger_max_per_day, 4);
    assert_int_equal(cfg.n_trigger_rules, 0);
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.log_bad_per_second, 5);
    assert_double_exact(cfg.drift_share, 0.5);
    assert_double_exact(cfg.alpha, 0.05);
    assert_int_equal(cfg.auto_max_sample, 1000);
    assert_double_exact(cfg.wasserstein_threshold, 0.1);
    assert_double_exact(cfg.js_threshold, 0.1);
    assert_double_exact(cfg.kl_threshold, 0.1);
    assert_double_exact(cfg.hellinger_threshold, 0.1);
    assert_double_exact(cfg.tvd_threshold, 0.1);
    assert_int_equal(cfg.chi2_correction, 0);
    assert_int_equal(cfg.n_models, 0);
    assert_int_equal(cfg.n_kafka, 0);
    assert_null(cfg.path);
    dw_config_free(&cfg);

    /* a minimal file keeps every default */
    load_ok(&cfg, MINIMAL);
    assert_int_equal(cfg.window_size_ms, 60000);
    assert_string_equal(cfg.group, "driftwatch");
    assert_int_equal(cfg.n_models, 1);
    assert_string_equal(cfg.models[0].name, "m");
    assert_int_equal(cfg.models[0].task, DW_TASK_CLASSIFICATION);
    assert_string_equal(cfg.models[0].positive_class, "1");
    assert_int_equal(cfg.models[0].n_features, 0);
    dw_config_free(&cfg);
}

static const struct dw_feature_detector *detector(const struct dw_config *cfg, const char *model,
                                                  const char *feature)
{
    for (size_t i = 0; i < cfg->n_detectors; i++) {
        if (strcmp(cfg->detectors[i].model, model) == 0 &&
            strcmp(cfg->detectors[i].feature, feature) == 0) {
            return &cfg->detectors[i];
        }
    }
    return NULL;
}

static const char *full_yaml =
    "group: g1\n"
    "topics: {predictions: preds, labels: labs, dead_letter: '', triggers: trig}\n"
    "kafka:\n"
    "  bootstrap.servers: 127.0.0.1:9092\n"
    "  auto.offset.reset: earliest\n"
    "redis: {host: 127.0.0.1, port: 6380, password: pw, db: 2, timeout: 1500ms}\n"
    "input:\n"
    "  max_message_bytes: 4096\n"
    "  fields:\n"
    "    prediction_id: /meta/id\n"
    "    model: /meta/model\n"
    "    model_version: /meta/v\n"
    "    timestamp: /ts\n"
    "    features: /x\n"
    "    prediction: /y\n"
    "    score: /p\n"
    "    latency_ms: /lat\n"
    "    label_id: /id\n"
    "    label: /truth\n"
    "    label_timestamp: ''\n"
    "window:\n"
    "  size: 5m\n"
    "  allowed_lateness: 0\n"
    "  idle_timeout: 90\n"
    "  label_horizon: 2h\n"
    "  retention: 10\n"
    "join: {ttl: 30m, max_records: 5000}\n"
    "checkpoint: {interval: 250ms, max_messages: 50000}\n"
    "evaluation: {interval: 2s, rolling_windows: 4}\n"
    "reference: {windows: 5, bins: 20}\n"
    "detectors: {psi_threshold: 0.25, accuracy_drop: 0.1, min_samples: 0, drift_share: 0.3,\n"
    "            alpha: 0.01, auto_max_sample: 500, wasserstein_threshold: 0.2,\n"
    "            js_threshold: 0.15, kl_threshold: 0.3, hellinger_threshold: 0.4,\n"
    "            tvd_threshold: 0.25, chi2_correction: true}\n"
    "http: {listen: '127.0.0.1:9100'}\n"
    "alerting:\n"
    "  queue_size: 50\n"
    "  sinks:\n"
    "    hook:\n"
    "      url: https://hooks.example/abc\n"
    "      timeout: 3s\n"
    "      max_attempts: 4\n"
    "      backoff_initial: 100ms\n"
    "      backoff_max: 10s\n"
    "triggers: {enabled: false, cooldown: 15m, min_samples: 10, max_per_day: 2}\n"
    "log: {level: debug, bad_messages_per_second: 0}\n"
    "models:\n"
    "  fraud:\n"
    "    features: {amount: {type: numeric, method: ks, threshold: 0.01}, country: categorical}\n"
    "  eta:\n"
    "    task: regression\n";

static void test_full_config(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, full_yaml);
    assert_string_equal(cfg.group, "g1");
    assert_string_equal(cfg.topic_predictions, "preds");
    assert_string_equal(cfg.topic_labels, "labs");
    assert_string_equal(cfg.topic_dead_letter, "");
    assert_string_equal(cfg.topic_triggers, "trig");
    assert_int_equal(cfg.n_kafka, 2);
    assert_string_equal(kafka_get(&cfg, "bootstrap.servers"), "127.0.0.1:9092");
    assert_string_equal(kafka_get(&cfg, "auto.offset.reset"), "earliest");
    assert_int_equal(cfg.redis_port, 6380);
    assert_string_equal(cfg.redis_password, "pw");
    assert_int_equal(cfg.redis_db, 2);
    assert_int_equal(cfg.redis_timeout_ms, 1500);
    assert_int_equal(cfg.max_message_bytes, 4096);
    assert_string_equal(cfg.field_prediction_id, "/meta/id");
    assert_string_equal(cfg.field_model, "/meta/model");
    assert_string_equal(cfg.field_model_version, "/meta/v");
    assert_string_equal(cfg.field_timestamp, "/ts");
    assert_string_equal(cfg.field_features, "/x");
    assert_string_equal(cfg.field_prediction, "/y");
    assert_string_equal(cfg.field_score, "/p");
    assert_string_equal(cfg.field_latency_ms, "/lat");
    assert_string_equal(cfg.field_label_id, "/id");
    assert_string_equal(cfg.field_label, "/truth");
    assert_string_equal(cfg.field_label_timestamp, "");
    assert_int_equal(cfg.window_size_ms, 300000);
    assert_int_equal(cfg.allowed_lateness_ms, 0);
    assert_int_equal(cfg.idle_timeout_ms, 90000); /* bare integer = seconds */
    assert_int_equal(cfg.label_horizon_ms, 7200000);
    assert_int_equal(cfg.retention_windows, 10);
    assert_int_equal(cfg.join_ttl_ms, 1800000);
    assert_int_equal(cfg.join_max_records, 5000);
    assert_int_equal(cfg.checkpoint_interval_ms, 250);
    assert_int_equal(cfg.checkpoint_max_messages, 50000);
    assert_int_equal(cfg.eval_interval_ms, 2000);
    assert_int_equal(cfg.rolling_windows, 4);
    assert_int_equal(cfg.reference_windows, 5);
    assert_int_equal(cfg.psi_bins, 20);
    assert_double_exact(cfg.psi_threshold, 0.25);
    assert_double_exact(cfg.accuracy_drop, 0.1);
    assert_int_equal(cfg.min_samples, 0);
    assert_double_exact(cfg.drift_share, 0.3);
    assert_double_exact(cfg.alpha, 0.01);
    assert_int_equal(cfg.auto_max_sample, 500);
    assert_double_exact(cfg.wasserstein_threshold, 0.2);
    assert_double_exact(cfg.js_threshold, 0.15);
    assert_double_exact(cfg.kl_threshold, 0.3);
    assert_double_exact(cfg.hellinger_threshold, 0.4);
    assert_double_exact(cfg.tvd_threshold, 0.25);
    assert_int_equal(cfg.chi2_correction, 1);
    assert_string_equal(cfg.http_listen, "127.0.0.1:9100");
    assert_int_equal(cfg.alert_queue_size, 50);
    assert_int_equal(cfg.n_sinks, 1);
    assert_string_equal(cfg.sinks[0].name, "hook");
    assert_int_equal(cfg.sinks[0].type, DW_SINK_WEBHOOK);
    assert_string_equal(cfg.sinks[0].url, "https://hooks.example/abc");
    assert_int_equal(cfg.sinks[0].timeout_ms, 3000);
    assert_int_equal(cfg.sinks[0].max_attempts, 4);
    assert_int_equal(cfg.sinks[0].backoff_initial_ms, 100);
    assert_int_equal(cfg.sinks[0].backoff_max_ms, 10000);
    assert_null(cfg.sinks[0].secret);
    assert_int_equal(cfg.triggers_enabled, 0);
    assert_int_equal(cfg.trigger_cooldown_ms, 900000);
    assert_int_equal(cfg.trigger_min_samples, 10);
    assert_int_equal(cfg.trigger_max_per_day, 2);
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.log_bad_per_second, 0);
    assert_int_equal(cfg.n_models, 2);
    const struct dw_model_cfg *fraud = dw_config_model(&cfg, "fraud", 5);
    assert_non_null(fraud);
    assert_int_equal(fraud->n_features, 2);
    assert_int_equal(cfg.n_detectors, 1);
    assert_int_equal(detector(&cfg, "fraud", "amount")->method, DW_METHOD_KS);
    assert_double_exact(detector(&cfg, "fraud", "amount")->threshold, 0.01);
    assert_null(detector(&cfg, "fraud", "country"));
    const struct dw_model_cfg *eta = dw_config_model(&cfg, "eta", 3);
    assert_non_null(eta);
    assert_int_equal(eta->task, DW_TASK_REGRESSION);
    assert_int_equal(eta->n_features, 0);
    dw_config_free(&cfg);

    /* dotted keys at the top level name the same keys as nested maps */
    load_ok(&cfg, "window.size: 2m\nredis.port: 7000\n" MINIMAL);
    assert_int_equal(cfg.window_size_ms, 120000);
    assert_int_equal(cfg.redis_port, 7000);
    dw_config_free(&cfg);
}

static void test_unknown_keys(void **state)
{
    expect_error("window: {sise: 60s}\n" MINIMAL, "unknown key 'window.sise'");
    expect_error("colour: blue\n" MINIMAL, "unknown key 'colour'");
    expect_error("alerts: {webhook: {url: ''}}\n" MINIMAL, "unknown key 'alerts'");
    expect_error("alerting: {sinks: {h: {urll: ''}}}\n" MINIMAL,
                 "unknown key 'alerting.sinks.h.urll'");
    expect_error(MINIMAL "models2: {}\n", "unknown key 'models2'");
    expect_error("kafka: {bootstrap.servers: x}\nmodels: {m: {colour: red}}\n",
                 "unknown key 'models.m.colour'");
    /* a key given a map, a section given a scalar */
    expect_error("window: {size: {a: 1}}\n" MINIMAL, "window.size: expected a single value");
    expect_error("window: 60s\n" MINIMAL, "window: expected a map");
    expect_error("window: {size: 60s}\nwindow.size: 30s\n" MINIMAL, "window.size: given twice");
}

static void test_value_errors(void **state)
{
    expect_error("window: {size: 10x}\n" MINIMAL,
                 "window.size: '10x' is not a duration (use 500ms, 30s, 5m, 1h)");
    expect_error("window: {size: 500ms}\n" MINIMAL, "window.size: '500ms' is out of range");
    expect_error("window: {size: 1000.5ms}\n" MINIMAL,
                 "window.size: '1000.5ms' is not a whole number of milliseconds");
    expect_error("redis: {port: 70000}\n" MINIMAL, "redis.port: '70000' is out of range (must "
                                                   "be 1..65535)");
    expect_error("redis: {port: 0}\n" MINIMAL, "redis.port:");
    expect_error("redis: {port: http}\n" MINIMAL, "redis.port: 'http' is not an integer");
    expect_error("log: {level: verbose}\n" MINIMAL,
                 "log.level: 'verbose' is not one of debug, info, warn, error");
    expect_error("detectors: {accuracy_drop: 1}\n" MINIMAL, "detectors.accuracy_drop:");
    expect_error("detectors: {psi_threshold: 0}\n" MINIMAL, "detectors.psi_threshold:");
    expect_error("detectors: {alpha: 1}\n" MINIMAL, "detectors.alpha:");
    expect_error("detectors: {alpha: 0}\n" MINIMAL, "detectors.alpha:");
    expect_error("detectors: {drift_share: 0}\n" MINIMAL, "detectors.drift_share:");
    expect_error("detectors: {drift_share: 1.5}\n" MINIMAL, "detectors.drift_share:");
    expect_error("detectors: {auto_max_sample: -1}\n" MINIMAL, "detectors.auto_max_sample:");
    expect_error("detectors: {auto_max_sample: lots}\n" MINIMAL,
                 "detectors.auto_max_sample: 'lots' is not an integer");
    expect_error("detectors: {wasserstein_threshold: 0}\n" MINIMAL,
                 "detectors.wasserstein_threshold:");
    expect_error("detectors: {js_threshold: 1.1}\n" MINIMAL, "detectors.js_threshold:");
    expect_error("detectors: {tvd_threshold: -0.1}\n" MINIMAL, "detectors.tvd_threshold:");
    expect_error("detectors: {chi2_correction: sometimes}\n" MINIMAL,
                 "detectors.chi2_correction: 'sometimes' is not a boolean");
    expect_error("evaluation: {rolling_windows: -1}\n" MINIMAL,
                 "evaluation.rolling_windows: '-1' is out of range (must be 0..24)");
    expect_error("evaluation: {rolling_windows: 25}\n" MINIMAL, "evaluation.rolling_windows:");
    expect_error("evaluation: {rolling_windows: 2.5}\n" MINIMAL,
                 "evaluation.rolling_windows: '2.5' is not an integer");
    expect_error("evaluation: {rolling_windows: 8}\nwindow: {retention: 7}\n" MINIMAL,
                 "evaluation.rolling_windows: must be at most window.retention (7)");
    expect_error("reference: {bins: 1}\n" MINIMAL, "reference.bins:");
    expect_error("reference: {bins: 101}\n" MINIMAL, "reference.bins:");
    expect_error("join: {max_records: 999}\n" MINIMAL, "join.max_records:");
    expect_error("join: {ttl: 0}\n" MINIMAL, "join.ttl:");
    expect_error("checkpoint: {interval: 5ms}\n" MINIMAL, "checkpoint.interval:");
    expect_error("checkpoint: {max_messages: 999}\n" MINIMAL, "checkpoint.max_messages:");
    expect_error("input: {max_message_bytes: 100}\n" MINIMAL, "input.max_message_bytes:");
    expect_error("input: {fields: {score: score}}\n" MINIMAL,
                 "input.fields.score: 'score' is not a JSON pointer");
    expect_error("alerting: {sinks: {h: {url: 'ftp://secret-token@x'}}}\n" MINIMAL,
                 "alerting.sinks.h.url: must be \"\" or start with http:// or https://");
    assert_not_contains(errstr, "secret-token"); /* a secret is never echoed */
    expect_error("alerting: {sinks: {h: {url: 'http://x', max_attempts: 0}}}\n" MINIMAL,
                 "alerting.sinks.h.max_attempts:");
    expect_error("alerting: {sinks: {h: {url: 'http://x', backoff_initial: 0}}}\n" MINIMAL,
                 "alerting.sinks.h.backoff_initial:");
    expect_error("triggers: {enabled: maybe}\n" MINIMAL,
                 "triggers.enabled: 'maybe' is not a boolean");
    expect_error("topics: {labels: predictions}\n" MINIMAL,
                 "topics.labels: must differ from topics.predictions");
    expect_error("topics: {predictions: ''}\n" MINIMAL, "topics.predictions: must not be empty");
    expect_error("group: ''\n" MINIMAL, "group: must not be empty");
    expect_error("models: {m: {task: ranking}}\nkafka: {bootstrap.servers: x}\n",
                 "models.m.task: 'ranking' is not one of classification, regression");
    expect_error("models: {m: {features: {a: number}}}\nkafka: {bootstrap.servers: x}\n",
                 "models.m.features.a: 'number' is not one of numeric, categorical");
    expect_error("window: [1, 2]\n" MINIMAL, "window: expected a map, got a list");
}

/* evaluation.rolling_windows: 0 disables it, and it may equal window.retention */
static void test_rolling_windows(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "evaluation: {rolling_windows: 0}\n" MINIMAL);
    assert_int_equal(cfg.rolling_windows, 0);
    dw_config_free(&cfg);
    load_ok(&cfg, "evaluation: {rolling_windows: 24}\nwindow: {retention: 24}\n" MINIMAL);
    assert_int_equal(cfg.rolling_windows, 24);
    assert_int_equal(cfg.retention_windows, 24);
    dw_config_free(&cfg);
}

/* redis.cluster: the seed nodes, and the single-node keys refused beside it. */
static void test_redis_cluster(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, "redis: {cluster: true, nodes: ['127.0.0.1:7001', '[::1]:7002', h:7003]}\n"
                  "redis.password: pw\n" MINIMAL);
    assert_int_equal(cfg.redis_cluster, 1);
    assert_int_equal(cfg.n_redis_nodes, 3);
    assert_string_equal(cfg.redis_nodes[0], "127.0.0.1:7001");
    assert_string_equal(cfg.redis_nodes[2], "h:7003");
    /* the dump reloads to the same nodes */
    char *dump = dump_to_string(&cfg);
    assert_non_null(strstr(dump, "redis.nodes: [\"127.0.0.1:7001\", \"[::1]:7002\", \"h:7003\"]"));
    dw_config_free(&cfg);
    load_ok(&cfg, dump);
    assert_int_equal(cfg.n_redis_nodes, 3);
    assert_int_equal(cfg.redis_cluster, 1);
    dw_config_free(&cfg);
    free(dump);

    expect_error("redis: {cluster: true}\n" MINIMAL, "redis.nodes: required with redis.cluster");
    expect_error("redis: {cluster: true, nodes: []}\n" MINIMAL, "redis.nodes: required");
    expect_error("redis: {nodes: ['h:1']}\n" MINIMAL, "redis.nodes: only with redis.cluster: true");
    expect_error("redis: {cluster: true, nodes: ['h:1'], host: h}\n" MINIMAL,
                 "redis.host: not with redis.cluster: true");
    expect_error("redis: {cluster: true, nodes: ['h:1'], port: 6379}\n" MINIMAL,
                 "redis.port: not with redis.cluster: true");
    expect_error("redis: {cluster: true, nodes: ['h:1'], db: 2}\n" MINIMAL,
                 "redis.db: must be 0 with redis.cluster: true");
    expect_error("redis: {cluster: true, nodes: ['h']}\n" MINIMAL,
                 "redis.nodes[0]: 'h' is not host:port");
    expect_error("redis: {cluster: true, nodes: ['h:0']}\n" MINIMAL, "redis.nodes[0]:");
    expect_error("redis: {cluster: true, nodes: 'h:1'}\n" MINIMAL,
                 "redis.nodes: expected a list of host:port seed nodes");
    expect_error("redis: {cluster: true, nodes: ['h:1']}\nredis.nodes: ['h:2']\n" MINIMAL,
                 "redis.nodes: given twice");
}

static void test_syntax_error(void **state)
{
    expect_error("window:\n  size: 60s\n bad: [\n", "YAML syntax error at line");
    expect_error("- a\n- b\n", "top level must be a map");

    struct dw_config cfg;
    assert_int_equal(dw_config_load(&cfg, "/nonexistent/driftwatch.yaml", errstr, sizeof(errstr)),
                     -1);
    assert_contains(errstr, "/nonexistent/driftwatch.yaml");
    assert_null(cfg.group);
}

static void test_env(void **state)
{
    struct dw_config cfg;
    setenv("DW_TEST_PW", "s3cret", 1);
    setenv("DW_TEST_HOST", "127.0.0.1", 1);
    setenv("DW_TEST_PORT", "6390", 1);
    load_ok(&cfg, "redis:\n"
                  "  password: ${DW_TEST_PW}\n"
                  "  host: '${DW_TEST_HOST}'\n"
                  "  port: ${DW_TEST_PORT}\n"
                  "group: 'pre-${DW_TEST_PW}-$${DW_TEST_PW}-$$x'\n" MINIMAL);
    assert_string_equal(cfg.redis_password, "s3cret");
    assert_string_equal(cfg.redis_host, "127.0.0.1");
    assert_int_equal(cfg.redis_port, 6390);
    assert_string_equal(cfg.group, "pre-s3cret-${DW_TEST_PW}-$$x");
    dw_config_free(&cfg);

    unsetenv("REDIS_PASSWORD_DW_UNSET");
    expect_error("redis: {password: '${REDIS_PASSWORD_DW_UNSET}'}\n" MINIMAL,
                 "redis.password: environment variable REDIS_PASSWORD_DW_UNSET is not set");
    expect_error("group: 'a${DW_TEST_PW'\n" MINIMAL, "group: unterminated ${");
    expect_error("group: 'a${1X}'\n" MINIMAL, "group: '${1X}' is not a valid environment");
    /* in kafka values and model settings too */
    setenv("DW_TEST_BOOT", "127.0.0.1:9093", 1);
    load_ok(&cfg, "kafka: {bootstrap.servers: '${DW_TEST_BOOT}'}\n"
                  "models: {m: {positive_class: '${DW_TEST_PW}'}}\n");
    assert_string_equal(kafka_get(&cfg, "bootstrap.servers"), "127.0.0.1:9093");
    assert_string_equal(cfg.models[0].positive_class, "s3cret");
    dw_config_free(&cfg);
    expect_error("kafka: {bootstrap.servers: '${DW_UNSET_BOOT_X}'}\nmodels: {m: {}}\n",
                 "kafka.bootstrap.servers: environment variable DW_UNSET_BOOT_X is not set");
}

static void test_kafka(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "kafka:\n"
                  "  bootstrap: {servers: [127.0.0.1:9092, 127.0.0.1:9093]}\n"
                  "  session: {timeout: {ms: 6000}}\n"
                  "  fetch.wait.max.ms: 100\n"
                  "models: {m: {}}\n");
    assert_int_equal(cfg.n_kafka, 3);
    assert_string_equal(kafka_get(&cfg, "bootstrap.servers"), "127.0.0.1:9092,127.0.0.1:9093");
    assert_string_equal(kafka_get(&cfg, "session.timeout.ms"), "6000");
    assert_string_equal(kafka_get(&cfg, "fetch.wait.max.ms"), "100");
    dw_config_free(&cfg);

    expect_error("kafka: {bootstrap.servers: x, session.timeout.ms: banana}\nmodels: {m: {}}\n",
                 "kafka.session.timeout.ms: ");
    assert_contains(errstr, "session.timeout.ms\""); /* librdkafka's own message */
    expect_error("kafka: {bootstrap.servers: x, no.such.property: 1}\nmodels: {m: {}}\n",
                 "kafka.no.such.property: ");
    expect_error("kafka: {client.id: x}\nmodels: {m: {}}\n", "kafka.bootstrap.servers: required");
    expect_error("models: {m: {}}\n", "kafka.bootstrap.servers: required");
    expect_error("kafka: {bootstrap.servers: x, group.id: mine}\nmodels: {m: {}}\n",
                 "kafka.group.id: not allowed");
    assert_contains(errstr, "group:");
    expect_error("kafka: {bootstrap.servers: x, enable: {auto: {commit: true}}}\nmodels: {m: {}}\n",
                 "kafka.enable.auto.commit: not allowed");
    expect_error("kafka: {bootstrap.servers: x, enable.auto.offset.store: false}\n"
                 "models: {m: {}}\n",
                 "kafka.enable.auto.offset.store: not allowed");
    expect_error("kafka: {bootstrap.servers: x, partition.assignment.strategy: "
                 "cooperative-sticky}\nmodels: {m: {}}\n",
                 "kafka.partition.assignment.strategy: not allowed");
    assert_contains(errstr, "range");
    expect_error("kafka: {bootstrap.servers: x, enable.partition.eof: false}\nmodels: {m: {}}\n",
                 "kafka.enable.partition.eof: not allowed");
    expect_error("kafka: {bootstrap.servers: x, bootstrap: {servers: y}}\nmodels: {m: {}}\n",
                 "kafka.bootstrap.servers: given twice");
}

static void test_models(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\n"
                  "models:\n"
                  "  fraud:\n"
                  "    task: classification\n"
                  "    positive_class: 1\n"
                  "    features:\n"
                  "      amount: numeric\n"
                  "      country: categorical\n"
                  "  churn: {positive_class: 0.5, features: {}}\n"
                  "  price: {task: regression}\n");
    assert_int_equal(cfg.n_models, 3);
    const struct dw_model_cfg *m = dw_config_model(&cfg, "fraudXYZ", 5); /* not NUL-terminated */
    assert_non_null(m);
    assert_string_equal(m->name, "fraud");
    assert_string_equal(m->positive_class, "1"); /* YAML number taken as its text */
    assert_int_equal(m->task, DW_TASK_CLASSIFICATION);
    assert_int_equal(m->n_features, 2);
    assert_string_equal(m->features[0].name, "amount");
    assert_int_equal(m->features[0].type, DW_FEATURE_NUMERIC);
    assert_string_equal(m->features[1].name, "country");
    assert_int_equal(m->features[1].type, DW_FEATURE_CATEGORICAL);
    m = dw_config_model(&cfg, "churn", 5);
    assert_non_null(m);
    assert_string_equal(m->positive_class, "0.5");
    assert_int_equal(m->n_features, 0);
    m = dw_config_model(&cfg, "price", 5);
    assert_non_null(m);
    assert_int_equal(m->task, DW_TASK_REGRESSION);
    assert_null(dw_config_model(&cfg, "fra", 3));
    assert_null(dw_config_model(&cfg, "pricey", 6));
    dw_config_free(&cfg);

    expect_error("kafka: {bootstrap.servers: x}\n", "models: at least one model is required");
    expect_error("kafka: {bootstrap.servers: x}\nmodels: {}\n",
                 "models: at least one model is required");
    expect_error("kafka: {bootstrap.servers: x}\nmodels: {m: {features: {a: numeric, "
                 "a: categorical}}}\n",
                 "models.m.features.a: given twice");
    expect_error("kafka: {bootstrap.servers: x}\nmodels: {m: {}, m: {}}\n",
                 "models.m: given twice");
    expect_error("kafka: {bootstrap.servers: x}\nmodels: {m: {positive_class: ''}}\n",
                 "models.m.positive_class: must not be empty");
}

/* models.<m>.features.<f> as a map: {type, method, threshold}; the scalar form keeps working */
static void test_feature_map_form(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\n"
                  "models:\n"
                  "  fraud:\n"
                  "    features:\n"
                  "      amount: {type: numeric, method: ks, threshold: 0.01}\n"
                  "      age:\n"
                  "        type: numeric\n"
                  "        method: wasserstein\n"
                  "        threshold: 0.25\n"
                  "      score: {type: numeric, method: hellinger}\n"
                  "      country: {type: categorical, method: g_test}\n"
                  "      city: {type: categorical}\n"
                  "      merchant: categorical\n"
                  "      device: {type: categorical, method: tvd, threshold: 1}\n");
    const struct dw_model_cfg *m = dw_config_model(&cfg, "fraud", 5);
    assert_non_null(m);
    assert_int_equal(m->n_features, 7);
    assert_string_equal(m->features[0].name, "amount");
    assert_int_equal(m->features[0].type, DW_FEATURE_NUMERIC);
    assert_int_equal(m->features[1].type, DW_FEATURE_NUMERIC);
    assert_int_equal(m->features[3].type, DW_FEATURE_CATEGORICAL);
    assert_int_equal(m->features[4].type, DW_FEATURE_CATEGORICAL);
    assert_int_equal(m->features[5].type, DW_FEATURE_CATEGORICAL); /* scalar form */
    /* one detector entry per feature that names a method or a threshold, in file order */
    assert_int_equal(cfg.n_detectors, 5);
    const struct dw_feature_detector *d = detector(&cfg, "fraud", "amount");
    assert_int_equal(d->method, DW_METHOD_KS);
    assert_double_exact(d->threshold, 0.01);
    d = detector(&cfg, "fraud", "age");
    assert_int_equal(d->method, DW_METHOD_WASSERSTEIN);
    assert_double_exact(d->threshold, 0.25);
    d = detector(&cfg, "fraud", "score");
    assert_int_equal(d->method, DW_METHOD_HELLINGER);
    assert_nan(d->threshold); /* the detectors.* default */
    assert_int_equal(detector(&cfg, "fraud", "country")->method, DW_METHOD_G_TEST);
    assert_null(detector(&cfg, "fraud", "city"));     /* {type: categorical}: auto */
    assert_null(detector(&cfg, "fraud", "merchant")); /* scalar form: auto */
    d = detector(&cfg, "fraud", "device");
    assert_int_equal(d->method, DW_METHOD_TVD);
    assert_double_exact(d->threshold, 1.0);

    /* the dump writes the map form back, and it reads back to the same features */
    char *out = dump_to_string(&cfg);
    assert_contains(out, "\"amount\": {type: numeric, method: ks, threshold: 0.01}");
    assert_contains(out, "\"score\": {type: numeric, method: hellinger}");
    assert_contains(out, "\"merchant\": categorical");
    assert_contains(out, "\"city\": categorical");
    struct dw_config back;
    load_ok(&back, out);
    const struct dw_model_cfg *b = dw_config_model(&back, "fraud", 5);
    assert_non_null(b);
    assert_int_equal(b->n_features, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(b->features[i].name, m->features[i].name);
        assert_int_equal(b->features[i].type, m->features[i].type);
    }
    assert_int_equal(back.n_detectors, cfg.n_detectors);
    for (size_t i = 0; i < cfg.n_detectors; i++) {
        const struct dw_feature_detector *x = &cfg.detectors[i], *y = &back.detectors[i];
        assert_string_equal(x->model, y->model);
        assert_string_equal(x->feature, y->feature);
        assert_int_equal(x->method, y->method);
        /* equal, or both NaN (the detectors.* default) */
        assert_close(x->threshold, y->threshold, 0.0, 0.0);
    }
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);

#define K "kafka: {bootstrap.servers: x}\n"
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, method: foo}}}}\n",
                 "models.fraud.features.amount.method: unknown method 'foo'");
    expect_error(K "models: {fraud: {features: {amount: {method: ks}}}}\n",
                 "models.fraud.features.amount.type: required");
    expect_error(K "models: {fraud: {features: {amount: {type: number}}}}\n",
                 "models.fraud.features.amount.type: 'number' is not one of numeric, categorical");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, colour: red}}}}\n",
                 "unknown key 'models.fraud.features.amount.colour'");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, method: chi2}}}}\n",
                 "models.fraud.features.amount.method: 'chi2' does not apply to numeric "
                 "features");
    expect_error(K "models: {fraud: {features: {c: {type: categorical, method: ks}}}}\n",
                 "models.fraud.features.c.method: 'ks' does not apply to categorical features");
    expect_error(K "models: {fraud: {features: {c: {type: categorical, method: kl}}}}\n",
                 "models.fraud.features.c.method: 'kl' does not apply to categorical features");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, method: ks, "
                   "threshold: 1}}}}\n",
                 "models.fraud.features.amount.threshold: 1 is out of range (an alpha");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, method: psi, "
                   "threshold: 0}}}}\n",
                 "models.fraud.features.amount.threshold: 0 is out of range");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, method: js, "
                   "threshold: 2}}}}\n",
                 "models.fraud.features.amount.threshold: 2 is out of range");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, method: psi, "
                   "threshold: high}}}}\n",
                 "models.fraud.features.amount.threshold: 'high' is not a number");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, threshold: 0.1}}}}\n",
                 "models.fraud.features.amount.threshold: needs a method other than auto");
    expect_error(K "models: {fraud: {features: {amount: {type: numeric, type: numeric}}}}\n",
                 "models.fraud.features.amount.type: given twice");
    expect_error(K "models: {fraud: {features: {amount: [numeric]}}}\n",
                 "models.fraud.features.amount: expected a single value, got a list");
#undef K
}

static void test_dump(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "redis: {password: hunter2}\n"
                  "alerting: {sinks: {pd: {type: pagerduty, url: 'https://pd.example/T0KEN',\n"
                  "                         routing_key: R0UTING}}}\n"
                  "group: 'a\"b $${X'\n"
                  "kafka:\n"
                  "  bootstrap.servers: 127.0.0.1:9092\n"
                  "  sasl.password: kpass\n"
                  "  ssl.key.password: ksecret\n"
                  "  client.id: visible-client\n"
                  "models: {fraud: {positive_class: 1, features: {amount: numeric, c: "
                  "categorical}}}\n"
                  "window: {size: 90s}\n");
    /* librdkafka refuses sasl.jaas.* at load time; the dump must still mask such keys */
    cfg.kafka = realloc(cfg.kafka, (cfg.n_kafka + 1) * sizeof(*cfg.kafka));
    assert_non_null(cfg.kafka);
    cfg.kafka[cfg.n_kafka].key = strdup("sasl.jaas.config");
    cfg.kafka[cfg.n_kafka].value = strdup("kjaas");
    cfg.n_kafka++;
    char *out = dump_to_string(&cfg);
    assert_not_contains(out, "hunter2");
    assert_not_contains(out, "T0KEN");
    assert_not_contains(out, "R0UTING");
    assert_contains(out, "routing_key: \"***\"");
    assert_not_contains(out, "kpass");
    assert_not_contains(out, "ksecret");
    assert_not_contains(out, "kjaas");
    assert_contains(out, "password: \"***\"");
    assert_contains(out, "url: \"***\"");
    assert_contains(out, "\"sasl.password\": \"***\"");
    assert_contains(out, "visible-client");
    assert_contains(out, "size: 90s");
    assert_contains(out, "\"amount\": numeric");
    dw_config_free(&cfg);
    free(out);

    /* the dump of a config without secrets reads back to the same config */
    load_ok(&cfg, full_yaml);
    /* sink URLs are secrets (masked): keep the sink, with no URL to mask, by type only */
    for (size_t i = 0; i < cfg.n_sinks; i++) {
        free(cfg.sinks[i].name);
        free(cfg.sinks[i].url);
    }
    free(cfg.sinks);
    cfg.sinks = NULL;
    cfg.n_sinks = 0;
    free(cfg.redis_password);
    cfg.redis_password = strdup("");
    free(cfg.group);
    cfg.group = strdup("g ${NOT_EXPANDED} \"q\"");
    out = dump_to_string(&cfg);
    struct dw_config back;
    load_ok(&back, out);
    char *again = dump_to_string(&back);
    assert_string_equal(out, again);
    assert_string_equal(back.group, "g ${NOT_EXPANDED} \"q\"");
    assert_int_equal(back.window_size_ms, cfg.window_size_ms);
    assert_double_exact(back.accuracy_drop, cfg.accuracy_drop);
    assert_int_equal(back.n_models, 2);
    assert_int_equal(back.models[0].n_features, 2);
    dw_config_free(&back);
    dw_config_free(&cfg);
    free(out);
    free(again);
}

/* cfg's dump (malloc'ed), checked to read back to a config with the same rules and the same
 * dump. */
static char *dump_reads_back(const struct dw_config *cfg)
{
    char *out = dump_to_string(cfg);
    struct dw_config back;
    load_ok(&back, out);
    assert_int_equal(back.n_rules, cfg->n_rules);
    assert_int_equal(back.n_model_rules, cfg->n_model_rules);
    char *again = dump_to_string(&back);
    assert_string_equal(out, again);
    dw_config_free(&back);
    free(again);
    return out;
}

/* An empty rule list (no alerts at all) is not the absent list (the built-in rules): the
 * dump must say [] so that it reads back to no rules. */
static void test_dump_empty_rules(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, MINIMAL "alerting: {rules: []}\n");
    assert_int_equal(cfg.n_rules, 0);
    free(dump_reads_back(&cfg));
    dw_config_free(&cfg);
}

/* The rule named `name` of model `model` (NULL when none). */
static const struct dw_rule *rule_of(const struct dw_config *cfg, const char *name,
                                     const char *model)
{
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct dw_rule *r = &cfg->rules[i];
        if (strcmp(r->name, name) == 0 && r->model && strcmp(r->model, model) == 0) {
            return r;
        }
    }
    return NULL;
}

/* models.<m>.sla: one rule per threshold given, after the given or built-in rules, with the
 * model's for, keep_firing_for and severity, on the close report; off when not given. */
static void test_sla(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, MINIMAL);
    assert_int_equal(cfg.n_model_rules, 0);
    assert_int_equal(cfg.n_rules, 3);
    assert_true(isnan(cfg.models[0].sla.latency_p95_ms));
    dw_config_free(&cfg);

    load_ok(&cfg, "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                  "models:\n"
                  "  fraud:\n"
                  "    sla:\n"
                  "      latency_p95_ms: 250\n"
                  "      latency_p99_ms: 800.5\n"
                  "      error_rate: 0.01\n"
                  "      availability: 0.995\n"
                  "      for: 2\n"
                  "      keep_firing_for: 3\n"
                  "      severity: critical\n"
                  "  churn: {sla: {latency_p95_ms: 40}}\n"
                  "  other: {sla: }\n");
    /* the built-in rules are kept: the SLA rules are the model's own */
    assert_int_equal(cfg.n_rules, 3 + 5);
    assert_int_equal(cfg.n_model_rules, 5);
    assert_string_equal(cfg.rules[0].name, "feature_drift");
    const struct dw_rule *r = rule_of(&cfg, "sla_latency_p95", "fraud");
    assert_non_null(r);
    assert_string_equal(r->expr.path, "latency_ms.p95");
    assert_int_equal(r->expr.op, DW_OP_GT);
    assert_double_exact(r->expr.threshold, 250);
    assert_string_equal(r->expr_text, "latency_ms.p95 > 250");
    assert_int_equal(r->stage, DW_STAGE_CLOSE);
    assert_int_equal(r->for_windows, 2);
    assert_int_equal(r->keep_firing_windows, 3);
    assert_int_equal(r->repeat_interval_ms, 0);
    assert_int_equal(r->severity, DW_SEV_CRITICAL);
    assert_null(r->summary); /* the built-in sentence */
    assert_contains(r->description, "sla.latency_p95_ms");
    r = rule_of(&cfg, "sla_latency_p99", "fraud");
    assert_non_null(r);
    assert_string_equal(r->expr.path, "latency_ms.p99");
    assert_double_exact(r->expr.threshold, 800.5);
    r = rule_of(&cfg, "sla_error_rate", "fraud");
    assert_non_null(r);
    assert_string_equal(r->expr.path, "serving.error_rate");
    assert_int_equal(r->expr.op, DW_OP_GT);
    assert_double_exact(r->expr.threshold, 0.01);
    r = rule_of(&cfg, "sla_availability", "fraud");
    assert_non_null(r);
    assert_string_equal(r->expr.path, "serving.availability");
    assert_int_equal(r->expr.op, DW_OP_LT);
    assert_double_exact(r->expr.threshold, 0.995);
    /* another model: its own threshold, the defaults of for, keep_firing_for, severity */
    r = rule_of(&cfg, "sla_latency_p95", "churn");
    assert_non_null(r);
    assert_double_exact(r->expr.threshold, 40);
    assert_int_equal(r->for_windows, 1);
    assert_int_equal(r->keep_firing_windows, 0);
    assert_int_equal(r->severity, DW_SEV_WARNING);
    assert_null(rule_of(&cfg, "sla_latency_p99", "churn"));
    assert_null(rule_of(&cfg, "sla_latency_p95", "other"));

    /* the dump gives the sla back, not the rules made from it: it reads back the same */
    char *out = dump_reads_back(&cfg);
    assert_contains(out, "sla: {latency_p95_ms: 250, latency_p99_ms: 800.5, error_rate: 0.01, "
                         "availability: 0.995, for: 2, keep_firing_for: 3, severity: critical}");
    assert_contains(out, "#   sla_latency_p95, model \"fraud\": latency_ms.p95 > 250");
    dw_config_free(&cfg);
    free(out);

    /* with alerting.rules given (even empty) the SLA rules come after them */
    load_ok(&cfg, "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                  "alerting: {rules: [{name: slow, condition: 'latency_ms.p50 > 9'}]}\n"
                  "models: {m: {sla: {error_rate: 0}}}\n");
    assert_int_equal(cfg.n_rules, 2);
    assert_string_equal(cfg.rules[0].name, "slow");
    assert_string_equal(cfg.rules[1].name, "sla_error_rate");
    assert_string_equal(cfg.rules[1].model, "m");
    dw_config_free(&cfg);
    load_ok(&cfg, "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                  "alerting: {rules: []}\n"
                  "models: {m: {sla: {availability: 1}}}\n");
    assert_int_equal(cfg.n_rules, 1);
    assert_int_equal(cfg.n_model_rules, 1);
    out = dump_reads_back(&cfg);
    assert_contains(out, "alerting.rules: []");
    dw_config_free(&cfg);
    free(out);

    /* triggers.rules may name an SLA rule */
    load_ok(&cfg, "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
                  "models: {m: {sla: {latency_p99_ms: 1}}}\n"
                  "triggers: {rules: [sla_latency_p99]}\n");
    dw_config_free(&cfg);
}

/* Errors of models.<m>.sla name the key. */
static void test_sla_errors(void **state)
{
    (void)state;
#define KB "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
    expect_error(KB "models: {fraud: {sla: {error_rate: 1.5}}}\n",
                 "models.fraud.sla.error_rate: '1.5' is out of range (must be 0..1)");
    expect_error(KB "models: {fraud: {sla: {availability: -0.1}}}\n",
                 "models.fraud.sla.availability: '-0.1' is out of range (must be 0..1)");
    expect_error(KB "models: {fraud: {sla: {latency_p95_ms: 0}}}\n",
                 "models.fraud.sla.latency_p95_ms: '0' is out of range (must be > 0)");
    expect_error(KB "models: {fraud: {sla: {latency_p99_ms: -3}}}\n",
                 "models.fraud.sla.latency_p99_ms: '-3' is out of range (must be > 0)");
    expect_error(KB "models: {fraud: {sla: {latency_p95_ms: fast}}}\n",
                 "models.fraud.sla.latency_p95_ms: 'fast' is not a number");
    expect_error(KB "models: {fraud: {sla: {latency_p95_ms: .nan}}}\n",
                 "models.fraud.sla.latency_p95_ms: '.nan' is not a number");
    expect_error(KB "models: {fraud: {sla: {latency_p95: 250}}}\n",
                 "unknown key 'models.fraud.sla.latency_p95'");
    expect_error(KB "models: {fraud: {sla: {for: 0, latency_p95_ms: 1}}}\n",
                 "models.fraud.sla.for: '0' is out of range (must be 1..10000)");
    expect_error(KB "models: {fraud: {sla: {keep_firing_for: -1}}}\n",
                 "models.fraud.sla.keep_firing_for: '-1' is out of range");
    expect_error(KB "models: {fraud: {sla: {severity: page}}}\n",
                 "models.fraud.sla.severity: 'page' is not one of warning, critical");
    expect_error(KB "models: {fraud: {sla: [latency_p95_ms]}}\n",
                 "models.fraud.sla: expected a map (latency_p95_ms");
    expect_error(KB "models: {fraud: {sla: {latency_p95_ms: 1, latency_p95_ms: 2}}}\n",
                 "models.fraud.sla.latency_p95_ms: given twice");
    expect_error(KB "models: {fraud: {sla: {latency_p95_ms: 1}, sla: {error_rate: 0}}}\n",
                 "models.fraud.sla: given twice");
    /* a rule of alerting.rules with an SLA rule's name: both named */
    expect_error(KB
                 "models: {fraud: {sla: {latency_p95_ms: 250}}}\n"
                 "alerting: {rules: [{name: ok, condition: drift.dataset},\n"
                 "                   {name: sla_latency_p95, condition: 'latency_ms.p95 > 1'}]}\n",
                 "alerting.rules[1].name: 'sla_latency_p95' is the name of the rule of "
                 "models.fraud.sla.latency_p95_ms");
#undef KB
}

/* The output of dw_config_reference() (malloc'ed). */
static char *reference_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    dw_config_reference(fp);
    fclose(fp);
    char *text = strdup(buf); /* not buf itself: GCC 12 then sees a pointer to a local */
    free(buf);
    assert_non_null(text);
    return text;
}

/* A repository file's text (malloc'ed; at most 256 KiB). */
static char *file_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = calloc(1, 256 * 1024);
    assert_non_null(text);
    assert_true(fread(text, 1, 256 * 1024 - 1, f) > 0);
    fclose(f);
    return text;
}

static void test_reference(void **state)
{
    char *buf = reference_text();
    assert_contains(buf, "| key | type | default | description |");
    assert_contains(buf, "| `window.size` | duration | `60s` | ");
    assert_contains(buf, "| `redis.password` | secret-string | `\"\"` | ");
    assert_contains(buf, "| `redis.port` | int | `6379` | ");
    assert_contains(buf, "| `log.level` | enum | `info` | ");
    assert_contains(buf, "`models.<name>.positive_class`");
    assert_contains(buf, "`kafka.bootstrap.servers`");

    /* docs/configuration.md carries the same table: it must not drift from the code */
    char *text = file_text("docs/configuration.md");
    if (!strstr(text, buf)) {
        fail_msg("docs/configuration.md does not contain the output of dw_config_reference(); "
                 "regenerate it with driftwatch run --config-reference");
    }
    free(text);
    free(buf);
}

#define KA "kafka: {bootstrap.servers: x}\nmodels: {fraud: {features: {amount: numeric}}}\n"
static void test_alerting(void **state)
{
    struct dw_config cfg;
    char path[] = "/tmp/dw_config_secretXXXXXX";
    dw_test_temp_file(path, "file-routing-key\n");
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             KA "alerting:\n"
                "  rules:\n"
                "    - name: acc_low\n"
                "      condition: performance.accuracy < 0.8\n"
                "      for: 3\n"
                "      keep_firing_for: 2\n"
                "      repeat_interval: 4h\n"
                "      severity: critical\n"
                "      labels: {team: ml, tier: '1'}\n"
                "      summary: '{{model}} accuracy {{value}}'\n"
                "    - {name: drift, condition: 'features.*.drift', model: fraud}\n"
                "  sinks:\n"
                "    pd:\n"
                "      type: pagerduty\n"
                "      url: https://events.pagerduty.com/v2/enqueue\n"
                "      routing_key: file://%s\n"
                "      severities: critical\n"
                "    am:\n"
                "      type: alertmanager\n"
                "      url: http://127.0.0.1:9093\n"
                "      severities: [warning, critical]\n"
                "      match: {team: ml}\n"
                "      resend_interval: 30s\n"
                "triggers: {rules: [acc_low]}\n",
             path);
    load_ok(&cfg, yaml);
    unlink(path);
    assert_int_equal(cfg.n_rules, 2);
    const struct dw_rule *r = &cfg.rules[0];
    assert_string_equal(r->name, "acc_low");
    assert_string_equal(r->expr.path, "performance.accuracy");
    assert_int_equal(r->expr.op, DW_OP_LT);
    assert_double_exact(r->expr.threshold, 0.8);
    assert_int_equal(r->for_windows, 3);
    assert_int_equal(r->keep_firing_windows, 2);
    assert_int_equal(r->repeat_interval_ms, 4 * 3600000);
    assert_int_equal(r->severity, DW_SEV_CRITICAL);
    assert_int_equal(r->n_labels, 2);
    assert_string_equal(r->labels[1].key, "tier");
    assert_string_equal(r->labels[1].value, "1");
    assert_string_equal(r->summary, "{{model}} accuracy {{value}}");
    assert_null(r->model);
    assert_null(r->description);
    assert_string_equal(cfg.rules[1].model, "fraud");
    assert_int_equal(cfg.rules[1].for_windows, 1);
    assert_int_equal(cfg.rules[1].severity, DW_SEV_WARNING);
    assert_int_equal(cfg.n_sinks, 2);
    assert_int_equal(cfg.sinks[0].type, DW_SINK_PAGERDUTY);
    assert_string_equal(cfg.sinks[0].routing_key, "file-routing-key");
    assert_int_equal(cfg.sinks[0].severities, 1u << DW_SEV_CRITICAL);
    assert_int_equal(cfg.sinks[1].type, DW_SINK_ALERTMANAGER);
    assert_int_equal(cfg.sinks[1].severities, 3u);
    assert_int_equal(cfg.sinks[1].n_match, 1);
    assert_int_equal(cfg.sinks[1].resend_interval_ms, 30000);
    assert_string_equal(cfg.sinks[1].url, "http://127.0.0.1:9093/api/v2/alerts");
    assert_int_equal(cfg.n_trigger_rules, 1);
    char *out = dump_to_string(&cfg);
    assert_not_contains(out, "file-routing-key");
    assert_contains(out, "condition: \"performance.accuracy < 0.8\"");
    free(out);
    dw_config_free(&cfg);

    /* no rules given: the built-in ones */
    load_ok(&cfg, KA "");
    assert_int_equal(cfg.n_rules, 3);
    dw_config_free(&cfg);

    expect_error(KA "alerting: {rules: [{name: a}]}\n", "alerting.rules[0].condition: required");
    expect_error(KA "alerting: {rules: [{name: a, condition: x, bogus: 1}]}\n",
                 "unknown key 'alerting.rules[0].bogus'");
    expect_error(KA "alerting: {rules: [{name: a, condition: 'x =< 1'}]}\n",
                 "alerting.rules[0].condition: ");
    expect_error(KA "alerting: {rules: [{name: a, condition: x}, {name: a, condition: y}]}\n",
                 "alerting.rules[1].name: 'a' is already the name of alerting.rules[0]");
    expect_error(KA "alerting: {rules: [{name: a, condition: x, model: nope}]}\n",
                 "alerting.rules[0].model: 'nope' is not one of the models");
    expect_error(KA "alerting: {rules: [{name: a, condition: x, severity: page}]}\n",
                 "alerting.rules[0].severity: 'page' is not one of");
    expect_error(KA "alerting: {rules: [{name: a, condition: x}]}\ntriggers: {rules: [b]}\n",
                 "triggers.rules: 'b' is not the name of a rule");
    /* a list given in the block and again as a dotted key */
    expect_error(KA "alerting: {rules: [{name: a, condition: x}]}\n"
                    "alerting.rules: [{name: b, condition: y}]\n",
                 "alerting.rules: given twice");
    expect_error(KA "alerting: {rules: [{name: a, condition: x}]}\ntriggers: {rules: [a]}\n"
                    "triggers.rules: [a]\n",
                 "triggers.rules: given twice");
    expect_error(KA "alerting: {sinks: {h: {url: 'http://x'}}}\n"
                    "alerting.sinks: {i: {url: 'http://y'}}\n",
                 "alerting.sinks: given twice");
    expect_error(KA "alerting: {sinks: {pd: {type: pagerduty, url: 'https://x'}}}\n",
                 "alerting.sinks.pd.routing_key: required by pagerduty");
    expect_error(KA "alerting: {sinks: {h: {type: webhook}}}\n", "alerting.sinks.h.url: required");
    expect_error(KA "alerting: {sinks: {h: {url: 'ftp://x'}}}\n",
                 "alerting.sinks.h.url: must be \"\" or start with http:// or https://");
    expect_error(KA "alerting: {sinks: {h: {url: 'http://x', severities: [info]}}}\n",
                 "alerting.sinks.h.severities: 'info' is not one of warning, critical");
    expect_error(KA "alerting: {sinks: {h: {url: 'http://x', backoff_initial: 2s, backoff_max: "
                    "1s}}}\n",
                 "alerting.sinks.h.backoff_max: must be at least backoff_initial");
    expect_error(KA
                 "alerting: {sinks: {h: {url: 'http://x', routing_key: file:///nonexistent/k}}}\n",
                 "alerting.sinks.h.routing_key: cannot read file:///nonexistent/k");
    /* a malformed secret is refused without being quoted */
    struct dw_config bad;
    int rc = dw_config_load_string(
        &bad, KA "alerting: {sinks: {h: {url: 'http://x', secret: 'whsec_not*base64!S3CR3T'}}}\n",
        errstr, sizeof(errstr));
    assert_int_equal(rc, -1);
    assert_contains(errstr, "alerting.sinks.h.secret: not a signing secret");
    assert_not_contains(errstr, "S3CR3T");
}
#undef KA

/* The example config explains every key: each row of the reference names a key whose last
 * part is written in the example (placeholders like <name> and the kafka.* pass-through
 * aside). */
/* models.<m>.baseline: metric -> value, checked against the metric's range and the task;
 * every error names the key. */
static void test_baseline(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\n"
                  "models:\n"
                  "  fraud: {baseline: {accuracy: 0.91, roc_auc: 1, log_loss: 0.3}}\n"
                  "  price: {baseline: {rmse: 12.5, r2: -0.25}, task: regression}\n"
                  "  plain: {}\n");
    const struct dw_model_cfg *m = dw_config_model(&cfg, "fraud", 5);
    assert_int_equal(m->baseline_set,
                     1u << DW_PM_ACCURACY | 1u << DW_PM_ROC_AUC | 1u << DW_PM_LOG_LOSS);
    assert_double_exact(m->baseline[DW_PM_ACCURACY], 0.91);
    assert_double_exact(m->baseline[DW_PM_ROC_AUC], 1.0);
    const struct dw_model_cfg *p = dw_config_model(&cfg, "price", 5);
    assert_int_equal(p->baseline_set, 1u << DW_PM_RMSE | 1u << DW_PM_R2);
    assert_double_exact(p->baseline[DW_PM_R2], -0.25);
    assert_int_equal(dw_config_model(&cfg, "plain", 5)->baseline_set, 0);
    /* the dump reads back to the same baselines */
    char *out = dump_to_string(&cfg);
    assert_contains(out, "baseline: {accuracy: 0.91, roc_auc: 1, log_loss: 0.3}");
    struct dw_config back;
    load_ok(&back, out);
    assert_int_equal(dw_config_model(&back, "price", 5)->baseline_set, p->baseline_set);
    assert_double_exact(dw_config_model(&back, "price", 5)->baseline[DW_PM_RMSE], 12.5);
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);

#define BM(body) "kafka: {bootstrap.servers: x}\nmodels: {fraud: " body "}\n"
    expect_error(BM("{baseline: {accuracy: 1.5}}"),
                 "models.fraud.baseline.accuracy: 1.5 is out of range (must be > 0 and <= 1)");
    expect_error(BM("{baseline: {rmse: 1}}"),
                 "models.fraud.baseline.rmse: not a metric of a classification model (accuracy, "
                 "precision, recall, f1, f1_macro, f1_micro, roc_auc, log_loss, brier)");
    /* the task may come after the baseline */
    expect_error(BM("{baseline: {accuracy: 0.9}, task: regression}"),
                 "models.fraud.baseline.accuracy: not a metric of a regression model (mae, rmse, "
                 "mape, r2)");
    expect_error(BM("{baseline: {acc: 0.9}}"), "models.fraud.baseline.acc: unknown metric 'acc'");
    expect_error(BM("{baseline: {accuracy: 0}}"), "models.fraud.baseline.accuracy: 0 is out of "
                                                  "range");
    expect_error(BM("{baseline: {log_loss: -1}}"),
                 "models.fraud.baseline.log_loss: -1 is out of range (must be > 0)");
    expect_error(BM("{task: regression, baseline: {r2: 1.5}}"),
                 "models.fraud.baseline.r2: 1.5 is out of range (must be <= 1 and not 0)");
    expect_error(BM("{baseline: {accuracy: high}}"),
                 "models.fraud.baseline.accuracy: 'high' is not a number");
    expect_error(BM("{baseline: 0.9}"), "models.fraud.baseline: expected a map of metric -> value");
    expect_error(BM("{baseline: {accuracy: 0.9, accuracy: 0.8}}"),
                 "models.fraud.baseline.accuracy: given twice");
#undef BM
}

/* reference.source / windows / profile, globally and per model (models.<m>.reference): a model
 * inherits what it does not set; file:// is taken off a profile's path; errors name the key. */
/* models.<m>.canary: an empty map switches the analysis on with the defaults; every key is
 * checked and named in its error; the dump reads back. */
static void test_canary(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\n"
                  "models:\n"
                  "  fraud: {canary: {candidate: 1.1.0, windows: 10, alpha: 0.01,\n"
                  "                   max_accuracy_drop: 0.05, min_samples: 400}}\n"
                  "  churn: {canary: {}}\n"
                  "  plain: {}\n");
    const struct dw_model_cfg *f = dw_config_model(&cfg, "fraud", 5);
    assert_true(f->canary.on);
    assert_string_equal(f->canary.baseline, "auto");
    assert_string_equal(f->canary.candidate, "1.1.0");
    assert_int_equal(f->canary.cfg.windows, 10);
    assert_int_equal(f->canary.cfg.min_samples, 400);
    assert_double_exact(f->canary.cfg.alpha, 0.01);
    assert_double_exact(f->canary.cfg.max_accuracy_drop, 0.05);
    assert_double_exact(f->canary.cfg.max_error_rate_ratio, DW_CANARY_DEFAULT_MAX_ERROR_RATE_RATIO);
    const struct dw_model_cfg *c = dw_config_model(&cfg, "churn", 5);
    assert_true(c->canary.on);
    assert_string_equal(c->canary.candidate, "auto");
    assert_int_equal(c->canary.cfg.windows, DW_CANARY_DEFAULT_WINDOWS);
    assert_int_equal(c->canary.cfg.min_samples, DW_CANARY_DEFAULT_MIN_SAMPLES);
    assert_double_exact(c->canary.cfg.max_latency_p95_increase_ms,
                        DW_CANARY_DEFAULT_MAX_LATENCY_P95_INCREASE_MS);
    assert_false(dw_config_model(&cfg, "plain", 5)->canary.on);
    /* each model with a canary gets its rollback rule, after the built-in ones */
    assert_int_equal(cfg.n_model_rules, 2);
    for (size_t i = cfg.n_rules - 2; i < cfg.n_rules; i++) {
        const struct dw_rule *r = &cfg.rules[i];
        assert_string_equal(r->name, "canary_rollback");
        assert_string_equal(r->expr.path, "canary.rollback");
        assert_int_equal(r->expr.op, DW_OP_TRUE);
        assert_int_equal(r->stage, DW_STAGE_CLOSE);
        assert_int_equal(r->severity, DW_SEV_CRITICAL);
        assert_non_null(strstr(r->summary, "{{report.canary.summary}}"));
    }
    assert_string_equal(cfg.rules[cfg.n_rules - 2].model, "fraud");
    assert_string_equal(cfg.rules[cfg.n_rules - 1].model, "churn");
    char *out = dump_to_string(&cfg);
    struct dw_config back;
    load_ok(&back, out);
    const struct dw_model_cfg *fb = dw_config_model(&back, "fraud", 5);
    assert_true(fb->canary.on);
    assert_string_equal(fb->canary.candidate, "1.1.0");
    assert_int_equal(fb->canary.cfg.min_samples, 400);
    assert_false(dw_config_model(&back, "plain", 5)->canary.on);
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);

#define CM(body) "kafka: {bootstrap.servers: x}\nmodels: {fraud: {canary: " body "}}\n"
    expect_error(CM("{alpha: 0.7}"), "models.fraud.canary.alpha: ");
    expect_error(CM("{max_accuracy_drop: 0}"), "models.fraud.canary.max_accuracy_drop: ");
    expect_error(CM("{max_error_rate_ratio: 0.5}"), "models.fraud.canary.max_error_rate_ratio: ");
    expect_error(CM("{min_samples: 0}"), "models.fraud.canary.min_samples: ");
    expect_error(CM("{windows: 0}"), "models.fraud.canary.windows: ");
    expect_error(CM("{baseline: 1.0.0, candidate: 1.0.0}"),
                 "models.fraud.canary.candidate: '1.0.0' is the baseline too");
    expect_error(CM("{candidat: 1.1.0}"), "unknown key 'models.fraud.canary.candidat'");
    expect_error(CM("[1.1.0]"), "models.fraud.canary: expected a map");
    expect_error("kafka: {bootstrap.servers: x}\nmodels: {fraud: {canary: {}}}\n"
                 "alerting: {rules: [{name: canary_rollback, condition: drift.dataset}]}\n",
                 "alerting.rules[0].name: 'canary_rollback' is the name of the rule of "
                 "models.fraud.canary; choose another name");
    expect_error("kafka: {bootstrap.servers: x}\nwindow: {retention: 20}\n"
                 "models: {fraud: {canary: {windows: 30}}}\n",
                 "models.fraud.canary.windows: 30 windows, more than window.retention (20)");
#undef CM
}

/* reference.per_version: global and per model; it turns the version features on; not with
 * source trailing. */
static void test_reference_per_version(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\n"
                  "reference: {per_version: true}\n"
                  "models:\n"
                  "  fraud: {}\n"
                  "  churn: {reference: {per_version: false}}\n");
    const struct dw_model_cfg *f = dw_config_model(&cfg, "fraud", 5);
    const struct dw_model_cfg *c = dw_config_model(&cfg, "churn", 5);
    assert_true(f->reference.per_version);
    assert_true(f->version_features);
    assert_false(c->reference.per_version);
    assert_false(c->version_features);
    char *out = dump_to_string(&cfg);
    struct dw_config back;
    load_ok(&back, out);
    assert_true(dw_config_model(&back, "fraud", 5)->reference.per_version);
    assert_false(dw_config_model(&back, "churn", 5)->reference.per_version);
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);
    expect_error("kafka: {bootstrap.servers: x}\n"
                 "models: {fraud: {reference: {source: trailing, per_version: true}}}\n",
                 "models.fraud.reference.per_version: not with source trailing");
    expect_error("kafka: {bootstrap.servers: x}\n"
                 "models: {fraud: {reference: {per_version: maybe}}}\n",
                 "models.fraud.reference.per_version: ");
}

static void test_reference_sources(void **state)
{
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\n"
                  "reference: {source: trailing, windows: 5}\n"
                  "models:\n"
                  "  fraud: {reference: {source: profile, profile: 'file:///data/fraud.json'}}\n"
                  "  churn: {reference: {windows: 2}}\n"
                  "  plain: {}\n");
    assert_int_equal(cfg.reference_source, DW_REF_SOURCE_TRAILING);
    const struct dw_model_cfg *f = dw_config_model(&cfg, "fraud", 5);
    assert_int_equal(f->reference.source, DW_REF_SOURCE_PROFILE);
    assert_int_equal(f->reference.windows, 5);
    assert_string_equal(f->reference.profile, "/data/fraud.json");
    const struct dw_model_cfg *c = dw_config_model(&cfg, "churn", 5);
    assert_int_equal(c->reference.source, DW_REF_SOURCE_TRAILING);
    assert_int_equal(c->reference.windows, 2);
    assert_string_equal(c->reference.profile, "");
    const struct dw_model_cfg *p = dw_config_model(&cfg, "plain", 5);
    assert_int_equal(p->reference.source, DW_REF_SOURCE_TRAILING);
    assert_int_equal(p->reference.windows, 5);
    /* the dump reads back to the same effective settings */
    char *out = dump_to_string(&cfg);
    assert_contains(out, "reference: {source: profile, windows: 5, profile: \"/data/fraud.json\", "
                         "per_version: false}");
    struct dw_config back;
    load_ok(&back, out);
    assert_int_equal(dw_config_model(&back, "churn", 5)->reference.windows, 2);
    assert_string_equal(dw_config_model(&back, "fraud", 5)->reference.profile, "/data/fraud.json");
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);

    /* the default: the first 3 windows */
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\n");
    assert_int_equal(cfg.models[0].reference.source, DW_REF_SOURCE_WINDOWS);
    assert_int_equal(cfg.models[0].reference.windows, 3);
    dw_config_free(&cfg);

#define RM(body) "kafka: {bootstrap.servers: x}\nmodels: {fraud: " body "}\n"
    expect_error(RM("{reference: {source: profile}}"),
                 "models.fraud.reference.profile: required with source profile");
    expect_error("kafka: {bootstrap.servers: x}\nreference: {source: profile}\nmodels: {m: {}}\n",
                 "models.m.reference.profile: required with source profile (set "
                 "reference.profile or models.m.reference.profile)");
    expect_error(RM("{reference: {source: last}}"),
                 "models.fraud.reference.source: 'last' is not one of windows, profile, trailing");
    expect_error(RM("{reference: {windows: 0}}"),
                 "models.fraud.reference.windows: '0' is out of range");
    expect_error(RM("{reference: {bins: 4}}"), "unknown key 'models.fraud.reference.bins'");
    expect_error(
        "kafka: {bootstrap.servers: x}\nwindow.retention: 5\nevaluation.rolling_windows: 2\n"
        "models: {m: {reference: {source: trailing, windows: 6}}}\n",
        "models.m.reference.windows: 6 trailing windows, more than window.retention (5)");
    expect_error(RM("{reference: 3}"), "models.fraud.reference: expected a map");
    expect_error(RM("{reference: {windows: 2}, reference: {windows: 3}}"),
                 "models.fraud.reference: given twice");
#undef RM
}

/* input.fields.status (no default) and input.error_values: a list kept as texts, integers and
 * strings alike; not given = the default rule (error_values_set 0), [] = none is an error; the
 * dump reads back to the same; a bad list names the key. */
static void test_serving_status_keys(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\n");
    assert_string_equal(cfg.field_status, "");
    assert_int_equal(cfg.error_values_set, 0);
    assert_int_equal(cfg.n_error_values, 0);
    char *out = dump_to_string(&cfg);
    assert_null(strstr(out, "error_values"));
    free(out);
    dw_config_free(&cfg);

    load_ok(&cfg, "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\n"
                  "input:\n  fields: {status: /serving/status}\n"
                  "  error_values: [failed, 503, \"504\", false]\n");
    assert_string_equal(cfg.field_status, "/serving/status");
    assert_int_equal(cfg.error_values_set, 1);
    assert_int_equal(cfg.n_error_values, 4);
    assert_string_equal(cfg.error_values[0], "failed");
    assert_string_equal(cfg.error_values[1], "503");
    assert_string_equal(cfg.error_values[2], "504");
    assert_string_equal(cfg.error_values[3], "false");
    out = dump_to_string(&cfg);
    assert_contains(out, "input.error_values: [\"failed\", \"503\", \"504\", \"false\"]");
    struct dw_config back;
    load_ok(&back, out);
    assert_string_equal(back.field_status, "/serving/status");
    assert_int_equal(back.n_error_values, 4);
    assert_string_equal(back.error_values[3], "false");
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);

    load_ok(&cfg, "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\ninput.error_values: []\n");
    assert_int_equal(cfg.error_values_set, 1);
    assert_int_equal(cfg.n_error_values, 0);
    out = dump_to_string(&cfg);
    load_ok(&back, out);
    assert_int_equal(back.error_values_set, 1); /* [] stays [], not the default */
    dw_config_free(&back);
    free(out);
    dw_config_free(&cfg);

#define SK "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\n"
    expect_error(SK "input: {error_values: error}\n",
                 "input.error_values: expected a list of status values (strings or integers), got "
                 "a scalar");
    expect_error(SK "input: {error_values: [error, [1]]}\n",
                 "input.error_values[1]: expected a single value, got a list");
    expect_error(SK "input: {error_values: [error, \"\"]}\n",
                 "input.error_values[1]: an empty status value");
    expect_error(SK "input: {error_values: [a]}\ninput.error_values: [b]\n",
                 "input.error_values: given twice");
    expect_error(SK "input: {fields: {status: status}}\n",
                 "input.fields.status: 'status' is not a JSON pointer");
#undef SK
}

/* A token or signing secret that names a file or a variable must not come out empty: an empty
 * Kubernetes secret key or `DW_HTTP_TOKEN=` silently turned the status page's and the API's
 * token off. An explicit "" still means none; a password may come out empty. */
static void test_empty_secret_refused(void **state)
{
    (void)state;
    /* mkstemp templates: an empty file, and one holding a newline alone */
    char empty[] = "/tmp/dw_config_emptyXXXXXX", nl[] = "/tmp/dw_config_newlineXXXXXX";
    dw_test_temp_file(empty, "");
    dw_test_temp_file(nl, "\n");
    char yaml[512];
    const char *paths[] = {empty, nl};
    for (size_t i = 0; i < 2; i++) {
        snprintf(yaml, sizeof(yaml), MINIMAL "http: {auth_token: 'file://%s'}\n", paths[i]);
        expect_error(yaml, "http.auth_token: the secret it names is empty");
    }
    setenv("DW_TEST_EMPTY_TOKEN", "", 1);
    expect_error(MINIMAL "http: {auth_token: '${DW_TEST_EMPTY_TOKEN}'}\n",
                 "http.auth_token: the secret it names is empty");
    expect_error(MINIMAL "alerting: {sinks: {h: {url: 'http://x', secret: "
                         "'${DW_TEST_EMPTY_TOKEN}'}}}\n",
                 "alerting.sinks.h.secret: the secret it names is empty");
    /* a password may come out empty: no AUTH, which a Redis that wants one refuses at start */
    struct dw_config cfg;
    load_ok(&cfg, MINIMAL "redis: {password: '${DW_TEST_EMPTY_TOKEN}'}\n");
    assert_string_equal(cfg.redis_password, "");
    dw_config_free(&cfg);
    unsetenv("DW_TEST_EMPTY_TOKEN");
    load_ok(&cfg, MINIMAL "http: {auth_token: ''}\n");
    assert_string_equal(cfg.http_auth_token, "");
    dw_config_free(&cfg);
    unlink(empty);
    unlink(nl);
}

/* A label or matcher given twice in one map: the sink's matchers could never all hold and the
 * rule kept the first value, both without a word. */
static void test_label_given_twice(void **state)
{
    (void)state;
    expect_error(MINIMAL "alerting: {sinks: {s1: {url: 'http://x', match: {team: a, team: b}}}}\n",
                 "alerting.sinks.s1.match.team: given twice");
    expect_error(MINIMAL
                 "alerting: {rules: [{name: r, condition: 'predictions > 0', labels: {team: a, "
                 "team: b}}]}\n",
                 "labels.team: given twice");
}

/* window.retention times window.size overflowed int64 (the Redis TTL of reports wrapped to
 * seconds, or to no expiry at all). */
static void test_retention_bounded(void **state)
{
    (void)state;
    expect_error(MINIMAL "window: {retention: 307445734561826}\n", "window.retention");
    expect_error(MINIMAL "window: {size: 9000000000000000ms}\n", "window.retention");
    struct dw_config cfg;
    load_ok(&cfg, MINIMAL "window: {size: 60s, retention: 100000000}\n");
    dw_config_free(&cfg);
}

static void test_example_has_every_key(void **state)
{
    char *ref = reference_text();
    char *ex = file_text("deploy/driftwatch.example.yaml");
    int missing = 0;
    for (char *row = strstr(ref, "\n| `"); row; row = strstr(row + 1, "\n| `")) {
        char key[256];
        if (sscanf(row, "\n| `%255[^`]`", key) != 1 || strchr(key, '<') ||
            strncmp(key, "kafka.", 6) == 0) {
            continue;
        }
        const char *leaf = key;
        for (const char *p = key; *p; p++) {
            if (*p == '.' || *p == ']') {
                leaf = p + 1;
            }
        }
        char want[300];
        snprintf(want, sizeof(want), "%s:", leaf);
        if (!strstr(ex, want)) {
            print_error("deploy/driftwatch.example.yaml does not explain %s\n", key);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    free(ex);
    free(ref);
}

static void test_example_file(void **state)
{
    struct dw_config cfg;
    setenv("REDIS_PASSWORD", "example-pw", 1);
    setenv("KAFKA_BOOTSTRAP", "127.0.0.1:9092", 1);
    setenv("ALERT_WEBHOOK_URL", "https://hooks.example/x", 1);
    setenv("ALERT_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
    int rc = dw_config_load(&cfg, "deploy/driftwatch.example.yaml", errstr, sizeof(errstr));
    if (rc != 0) {
        fail_msg("example config did not load: %s", errstr);
    }
    assert_string_equal(cfg.path, "deploy/driftwatch.example.yaml");
    assert_string_equal(cfg.redis_password, "example-pw");
    assert_string_equal(kafka_get(&cfg, "bootstrap.servers"), "127.0.0.1:9092");
    const struct dw_model_cfg *m = dw_config_model(&cfg, "fraud", 5);
    assert_non_null(m);
    assert_int_equal(m->n_features, 4);
    assert_string_equal(m->features[0].name, "amount");
    assert_int_equal(m->features[0].type, DW_FEATURE_NUMERIC);
    assert_string_equal(m->features[1].name, "age");
    assert_int_equal(m->features[1].type, DW_FEATURE_NUMERIC);
    assert_string_equal(m->features[2].name, "country");
    assert_int_equal(m->features[2].type, DW_FEATURE_CATEGORICAL);
    assert_string_equal(m->features[3].name, "merchant");
    assert_int_equal(m->features[3].type, DW_FEATURE_CATEGORICAL);
    assert_int_equal(detector(&cfg, "fraud", "amount")->method, DW_METHOD_KS);
    assert_double_exact(detector(&cfg, "fraud", "amount")->threshold, 0.01);
    assert_int_equal(detector(&cfg, "fraud", "merchant")->method, DW_METHOD_JS);
    assert_null(detector(&cfg, "fraud", "age"));
    assert_double_exact(cfg.alpha, 0.05);
    assert_double_exact(cfg.drift_share, 0.5);
    assert_int_equal(cfg.window_size_ms, 60000);
    assert_int_equal(cfg.n_rules, 3);
    assert_string_equal(cfg.rules[0].name, "feature_drift");
    assert_int_equal(cfg.n_sinks, 1);
    assert_string_equal(cfg.sinks[0].secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert_int_equal(cfg.n_trigger_rules, 2);
    dw_config_free(&cfg);

    unsetenv("REDIS_PASSWORD");
    rc = dw_config_load(&cfg, "deploy/driftwatch.example.yaml", errstr, sizeof(errstr));
    assert_int_equal(rc, -1);
    assert_contains(errstr, "redis.password: environment variable REDIS_PASSWORD is not "
                            "set");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_redis_cluster),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_serving_status_keys),
        cmocka_unit_test(test_reference_sources),
        cmocka_unit_test(test_reference_per_version),
        cmocka_unit_test(test_canary),
        cmocka_unit_test(test_rolling_windows),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_kafka),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_feature_map_form),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_dump_empty_rules),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_alerting),
        cmocka_unit_test(test_sla),
        cmocka_unit_test(test_sla_errors),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_empty_secret_refused),
        cmocka_unit_test(test_label_given_twice),
        cmocka_unit_test(test_retention_bounded),
        cmocka_unit_test(test_example_has_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
