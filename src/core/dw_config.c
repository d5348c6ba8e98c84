/*
 * dw_config.c - what the core needs of the configuration types: looking a model up by name.
 * The types are declared in include/driftwatch/core/dw_config.h; loading, validating and
 * dumping a configuration is the loader's (src/io/dw_config_load.c).
 */
#include "driftwatch/core/dw_config.h"

#include <string.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

const struct dw_model_cfg *dw_config_model(const struct dw_config *cfg, const char *name,
                                           size_t len)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct dw_model_cfg *m = &cfg->models[i];
        if (strlen(m->name) == len && memcmp(m->name, name, len) == 0) {
            return m;
        }
    }
    return NULL;
}

long dw_model_feature_index(const struct dw_model_cfg *model, const char *name, size_t len)
{
    for (size_t i = 0; i < model->n_features; i++) {
        if (strlen(model->features[i].name) == len &&
            memcmp(model->features[i].name, name, len) == 0) {
            return (long)i;
        }
    }
    return -1;
}
