/*
 * dw_config.c - what the core needs of the configuration types: looking a model up by name, and
 * the table of performance metrics (name, task, direction, the range of a configured baseline),
 * which the loader, the report (dw_baseline.c) and the docs share, and the names of the
 * reference sources.
 * The types are declared in include/driftwatch/core/dw_config.h; loading, validating and
 * dumping a configuration is the loader's (src/io/dw_config_load.c).
 */
#include "driftwatch/core/dw_config.h"

#include <math.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

const struct dw_model_cfg *dw_config_model(const struct dw_config *cfg, const char *name,
                                           size_t len)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct dw_model_cfg *m = &cfg->models[i];
        if (dw_str_is(m->name, name, len)) {
            return m;
        }
    }
    return NULL;
}

long dw_model_feature_index(const struct dw_model_cfg *model, const char *name, size_t len)
{
    for (size_t i = 0; i < model->n_features; i++) {
        if (dw_str_is(model->features[i].name, name, len)) {
            return (long)i;
        }
    }
    return -1;
}

struct dw_model_cfg *dw_model_counts_only(const struct dw_model_cfg *m)
{
    struct dw_model_cfg *c = dw_malloc(sizeof(*c));
    *c = *m;
    c->features = NULL;
    c->n_features = 0;
    return c;
}

const char *dw_ref_source_name(enum dw_ref_source source)
{
    static const char *const names[] = {"windows", "profile", "trailing"};
    dw_assert((size_t)source < DW_ARRAY_SIZE(names));
    return names[source];
}

/* Indexed by enum dw_perf_metric. Ranges: a configured baseline must make a relative drop
 * defined (not 0) and be a value the metric can take (proportions at most 1, errors above 0). */
static const struct dw_perf_metric_info perf_metrics[DW_PM_COUNT] = {
    {"accuracy", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"precision", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"recall", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"f1", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"f1_macro", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"f1_micro", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"roc_auc", DW_TASK_CLASSIFICATION, 1, 0.0, 1.0},
    {"log_loss", DW_TASK_CLASSIFICATION, 0, 0.0, INFINITY},
    {"brier", DW_TASK_CLASSIFICATION, 0, 0.0, 1.0},
    {"mae", DW_TASK_REGRESSION, 0, 0.0, INFINITY},
    {"rmse", DW_TASK_REGRESSION, 0, 0.0, INFINITY},
    {"mape", DW_TASK_REGRESSION, 0, 0.0, INFINITY},
    {"r2", DW_TASK_REGRESSION, 1, -INFINITY, 1.0},
};

const struct dw_perf_metric_info *dw_perf_metric_info(enum dw_perf_metric k)
{
    dw_assert((size_t)k < DW_PM_COUNT);
    return &perf_metrics[k];
}

int dw_perf_metric_find(const char *name)
{
    for (size_t i = 0; i < DW_PM_COUNT; i++) {
        if (strcmp(perf_metrics[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}
