/*
 * dw_inspect.c - `driftwatch inspect`: prints the merged per-window state kept in Redis, one
 * JSON object per (model, window) in window order. It reads what the consumers checkpointed,
 * so tests and operators can compare it with the ground truth or a notebook. A window evaluated
 * at its label horizon comes from the summary that evaluation stored (the same line, merged
 * then), since its partitions delete their records once no evaluation reads them.
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
                 "and per-feature count/missing. A window evaluated at its label horizon is\n"
                 "printed from the summary stored then (kept for window.retention): its\n"
                 "partitions delete their records once no evaluation reads them.\n\n"
                 "  -c, --config FILE   the configuration used by `driftwatch run`\n"
                 "  -m, --model NAME    only this model\n"
                 "  -h, --help          this help\n");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Prints window `start` merged from the partitions' records. @returns 0, -1 on an error. */
static int print_merged(struct dw_redis *r, const struct dw_model_cfg *m, int64_t start,
                        int n_parts)
{
    char errstr[512];
    struct dw_agg *agg = dw_redis_load_window(r, m, start, n_parts, NULL, errstr, sizeof(errstr));
    if (!agg) {
        fprintf(stderr, "inspect: %s\n", errstr);
        return -1;
    }
    char *text = dw_agg_to_text(agg);
    printf("%s\n", text);
    free(text);
    dw_agg_free(agg);
    return 0;
}

/* Prints the summary the final evaluation stored of window `start`. @returns 0, -1 when it
 * is gone (expired between the listing and the read) or unreadable. */
static int print_summary(struct dw_redis *r, const struct dw_model_cfg *m, int64_t start)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_summary(m->name, start, name, sizeof(name));
    char *text = dw_redis_get_str(r, name);
    if (!text) {
        fprintf(stderr, "inspect: cannot read %s\n", name);
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* 1 when the sorted array v[0..n) holds x */
static int holds(const int64_t *v, size_t n, int64_t x)
{
    return n > 0 && bsearch(&x, v, n, sizeof(*v), cmp_i64) != NULL;
}

/*
 * Every window of model m, in order: the summary its final evaluation stored when there is one
 * (after that evaluation nothing changes a window, and its partitions delete their records, each
 * at its own checkpoint, once no reader needs them: a merge of what is left would be partial;
 * docs/design.md, "A window's records live until their last reader"), else merged from its
 * partitions' records.
 */
static int inspect_model(struct dw_redis *r, const struct dw_model_cfg *m, int n_parts)
{
    int64_t *parts = NULL, *sums = NULL;
    size_t n_parts_w = 0, n_sums = 0;
    if (dw_redis_window_starts(r, m, n_parts, &parts, &n_parts_w) != 0 ||
        dw_redis_summary_starts(r, m, &sums, &n_sums) != 0) {
        fprintf(stderr, "inspect: cannot list windows of %s\n", m->name);
        free(parts);
        free(sums);
        return -1;
    }
    size_t n = n_parts_w + n_sums;
    int64_t *all = dw_malloc((n ? n : 1) * sizeof(*all));
    memcpy(all, parts, n_parts_w * sizeof(*all));
    memcpy(all + n_parts_w, sums, n_sums * sizeof(*all));
    qsort(sums, n_sums, sizeof(*sums), cmp_i64);
    qsort(all, n, sizeof(*all), cmp_i64);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0 && all[i] == all[i - 1]) {
            continue;
        }
        rc = holds(sums, n_sums, all[i]) ? print_summary(r, m, all[i])
                                         : print_merged(r, m, all[i], n_parts);
    }
    free(all);
    free(parts);
    free(sums);
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
    if (dw_cmd_no_arguments("inspect", argc, argv, optind) != 0) {
        return 2;
    }
    struct dw_config cfg;
    char errstr[1024];
    if (dw_config_load_cli(&cfg, "inspect", path) != 0) {
        return 2;
    }
    if (model && !dw_config_model(&cfg, model, strlen(model))) {
        fprintf(stderr, "driftwatch inspect: --model: no model '%s' in the config\n", model);
        dw_config_free(&cfg);
        return 2;
    }
    int rc = 1;
    struct dw_redis *r = dw_redis_connect(&cfg, errstr, sizeof(errstr));
    int n_parts = 0, found = r ? dw_redis_get_partitions(r, &n_parts) : -1;
    char key[DW_REDIS_KEY_MAX] = "";
    if (r) {
        dw_cmd_partitions_key(r, key, sizeof(key));
    }
    if (!r) {
        fprintf(stderr, "inspect: %s\n", errstr);
    } else if (found == -2) {
        fprintf(stderr, "inspect: %s is corrupt: not a partition count\n", key);
    } else if (found < 0) {
        fprintf(stderr, "inspect: redis: cannot read the partition count %s\n", key);
    } else if (found == 0) {
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
