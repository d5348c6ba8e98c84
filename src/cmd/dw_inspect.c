/*
 * dw_inspect.c - `driftwatch inspect`: prints the merged per-window state kept in Redis, one
 * JSON object per (model, window) in window order. It reads what the consumers checkpointed,
 * so tests and operators can compare it with the ground truth or a notebook.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/io/dw_redis.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

static void inspect_usage(FILE *out)
{
    fprintf(out, "usage: driftwatch inspect -c FILE [--model NAME]\n\n"
                 "Prints the merged state of every window kept in Redis, one JSON object per\n"
                 "line: predictions, labeled, correct, duplicate_labels, late counts, versions\n"
                 "and per-feature count/missing.\n\n"
                 "  -c, --config FILE   the configuration used by `driftwatch run`\n"
                 "  -m, --model NAME    only this model\n"
                 "  -h, --help          this help\n");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int inspect_model(struct dw_redis *r, const struct dw_model_cfg *m, int n_parts)
{
    int64_t *starts = NULL;
    size_t n = 0;
    if (dw_redis_window_starts(r, m, n_parts, &starts, &n) != 0) {
        fprintf(stderr, "inspect: cannot list windows of %s\n", m->name);
        return -1;
    }
    qsort(starts, n, sizeof(*starts), cmp_i64);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && starts[i] == starts[i - 1]) {
            continue;
        }
        char errstr[512];
        struct dw_agg *agg = dw_redis_load_window(r, m, starts[i], n_parts, errstr, sizeof(errstr));
        if (!agg) {
            fprintf(stderr, "inspect: %s\n", errstr);
            rc = -1;
            break;
        }
        json_t *obj = dw_agg_to_json(agg);
        char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", text);
        free(text);
        json_decref(obj);
        dw_agg_free(agg);
    }
    free(starts);
    return rc;
}

int dw_cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"model", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *model = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "c:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, inspect_usage);
        }
    }
    struct dw_config cfg;
    char errstr[1024];
    if (dw_config_load_cli(&cfg, "inspect", path) != 0) {
        return 2;
    }
    int rc = 1;
    struct dw_redis *r = dw_redis_connect(&cfg, errstr, sizeof(errstr));
    int n_parts = 0;
    if (!r) {
        fprintf(stderr, "inspect: %s\n", errstr);
    } else if (dw_redis_get_partitions(r, &n_parts) != 1) {
        fprintf(stderr, "inspect: no driftwatch state for group '%s' in Redis\n", cfg.group);
    } else {
        rc = 0;
        for (size_t i = 0; i < cfg.n_models && rc == 0; i++) {
            if (!model || strcmp(model, cfg.models[i].name) == 0) {
                rc = inspect_model(r, &cfg.models[i], n_parts) == 0 ? 0 : 1;
            }
        }
    }
    dw_redis_free(r);
    dw_config_free(&cfg);
    return rc;
}
