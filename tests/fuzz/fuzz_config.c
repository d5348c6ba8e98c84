/*
 * fuzz_config.c - dw_config_load_string() over arbitrary YAML text (see dw_fuzz.h).
 *
 * Whatever the bytes, loading must either succeed or fail with an error text, and never crash,
 * leak or hang; a failed load leaves nothing allocated in the config. A loaded configuration
 * is then used as driftwatch uses it: dumped (--check-config), the dump loaded again (it is
 * valid YAML of the same keys: both loads must agree on the models and rules) and compiled
 * into an event decoder (its JSON pointers) that decodes one event.
 *
 * The environment variables of deploy/driftwatch.example.yaml are set, so that the example
 * and its ${VAR}s load. Seeds: that example as it is, its dump, and configurations written
 * like those of the unit tests (every sink type, rules with templates and labels, detectors
 * per feature, nested kafka properties, $${ escapes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "dw_fuzz.h"

#define EXAMPLE "deploy/driftwatch.example.yaml"

static void set_env(void)
{
    setenv("KAFKA_BOOTSTRAP", "127.0.0.1:9092", 0);
    setenv("KAFKA_PASSWORD", "kafka-secret", 0);
    setenv("REDIS_PASSWORD", "redis-secret", 0);
    setenv("ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook", 0);
    setenv("ALERT_WEBHOOK_SECRET", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=", 0);
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", what, detail);
    abort();
}

/* the config's dump as text (malloc'ed) */
static char *dump_text(const struct dw_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        abort();
    }
    dw_config_dump(cfg, f);
    fclose(f);
    return text;
}

/* the dump loads back to the same models and rules (unless it masks a secret as "***", which
 * is not a valid URL or key) */
static void check_dump(const struct dw_config *cfg)
{
    char *text = dump_text(cfg);
    if (strstr(text, ": \"***\"")) {
        free(text);
        return;
    }
    struct dw_config again;
    char err[1024] = "";
    if (dw_config_load_string(&again, text, err, sizeof(err)) != 0) {
        fprintf(stderr, "---- dump ----\n%s\n", text);
        fail("the dump of a loaded configuration does not load", err);
    }
    if (again.n_models != cfg->n_models || again.n_rules != cfg->n_rules) {
        fail("the dump loads to other models or rules", text);
    }
    for (size_t m = 0; m < cfg->n_models; m++) {
        if (strcmp(again.models[m].name, cfg->models[m].name) != 0 ||
            again.models[m].n_features != cfg->models[m].n_features) {
            fail("the dump loads to another model", cfg->models[m].name);
        }
    }
    for (size_t r = 0; r < cfg->n_rules; r++) {
        if (strcmp(again.rules[r].name, cfg->rules[r].name) != 0 ||
            strcmp(again.rules[r].expr.path, cfg->rules[r].expr.path) != 0) {
            fail("the dump loads to another rule", cfg->rules[r].name);
        }
    }
    char *text2 = dump_text(&again);
    if (strcmp(text, text2) != 0) {
        fprintf(stderr, "---- first dump ----\n%s\n---- second dump ----\n%s\n", text, text2);
        fail("dumping the loaded dump gives another text", "see above");
    }
    free(text2);
    free(text);
    dw_config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int env_set;
    if (!env_set) {
        set_env();
        env_set = 1;
    }
    char *yaml = dw_malloc(size + 1);
    memcpy(yaml, data, size);
    yaml[size] = '\0';
    struct dw_config cfg;
    char err[1024] = "";
    if (dw_config_load_string(&cfg, yaml, err, sizeof(err)) != 0) {
        if (err[0] == '\0') {
            fail("a failed load without an error text", yaml);
        }
        if (cfg.models || cfg.kafka || cfg.group || cfg.rules || cfg.sinks) {
            fail("a failed load left the config allocated", err);
        }
        free(yaml);
        return 0;
    }
    check_dump(&cfg);
    struct dw_decoder *dec = dw_decoder_new(&cfg, err, sizeof(err));
    if (dec) {
        struct dw_prediction *p = dw_prediction_new(dec);
        static const char event[] = "{\"prediction_id\":\"p\",\"model\":\"fraud\",\"prediction\":1,"
                                    "\"features\":{\"amount\":1.5,\"country\":\"FR\"}}";
        dw_decode_prediction(dec, event, sizeof(event) - 1, 0, p, err, sizeof(err));
        free(p);
        dw_decoder_destroy(dec);
    }
    dw_config_free(&cfg);
    free(yaml);
    return 0;
}

void dw_fuzz_seeds(const char *dir)
{
    set_env();
    dw_fuzz_seed_file(dir, "example.yaml", EXAMPLE);
    size_t len;
    uint8_t *example = dw_fuzz_read_file(EXAMPLE, &len);
    if (example) {
        char *text = dw_strndup((const char *)example, len);
        struct dw_config cfg;
        char err[1024];
        if (dw_config_load_string(&cfg, text, err, sizeof(err)) == 0) {
            char *dump = dump_text(&cfg);
            dw_fuzz_write_seed(dir, "example-dump.yaml", dump, strlen(dump));
            free(dump);
            dw_config_free(&cfg);
        }
        free(text);
        free(example);
    }
    static const char *const texts[] = {
        "kafka: {bootstrap.servers: 127.0.0.1:9092}\nmodels: {m: {}}\n",
        "window.size: 2m\nredis.port: 7000\nkafka:\n  bootstrap.servers: a:1,b:2\n"
        "  session: {timeout: {ms: 45000}}\n  debug: [cgrp, topic]\n"
        "models:\n  fraud:\n    task: classification\n    positive_class: \"1\"\n"
        "    max_categories: 1000\n    features:\n"
        "      amount: {type: numeric, method: ks, threshold: 0.01}\n      age: numeric\n"
        "      country: categorical\n      merchant: {type: categorical, method: js}\n"
        "  price: {task: regression, features: {sqft: numeric}}\n",
        "kafka: {bootstrap.servers: x}\nmodels: {fraud: {features: {amount: numeric}}}\n"
        "alerting:\n  rules:\n    - name: acc_low\n      condition: performance.accuracy < 0.8\n"
        "      for: 3\n      keep_firing_for: 2\n      repeat_interval: 4h\n"
        "      severity: critical\n      labels: {team: ml, tier: '1'}\n"
        "      summary: '{{model}} accuracy {{value}} {{labels.team}}'\n"
        "    - {name: drift, condition: 'features.*.drift', model: fraud, stage: close}\n"
        "  sinks:\n    pd:\n      type: pagerduty\n"
        "      url: https://events.pagerduty.com/v2/enqueue\n      routing_key: \"${VAR}\"\n"
        "      severities: critical\n    am:\n      type: alertmanager\n"
        "      url: http://127.0.0.1:9093\n      severities: [warning, critical]\n"
        "      match: {team: ml}\n      resend_interval: 30s\n"
        "    chat: {type: slack, url: \"https://hooks.slack.com/services/T/B/X\"}\n"
        "    hook: {type: webhook, url: \"http://127.0.0.1:9/h\", secret: \"$${not-a-var}\"}\n"
        "triggers: {enabled: true, rules: [acc_low], cooldown: 1h, max_per_day: 4}\n",
        "kafka: {bootstrap.servers: x}\nmodels: {m: {features: {a: numeric}}}\n"
        "input:\n  max_message_bytes: 1024\n  non_finite: reject\n  max_depth: 3\n"
        "  fields: {features: \"\", score: /scores/1, timestamp: /meta/t~1s, model_version: \"\"}\n"
        "detectors: {alpha: 0.01, psi_threshold: 0.2, drift_share: 0.5, chi2_correction: true}\n"
        "log: {level: debug}\nwindow: {size: 1000ms, allowed_lateness: 0s}\n",
        "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\nalerting: {rules: []}\n",
        "kafka: {bootstrap.servers: x}\nmodels: {m: {}}\ntriggers: {rules: []}\n",
    };
    dw_fuzz_seed_texts(dir, "config", texts, DW_ARRAY_SIZE(texts));
}
