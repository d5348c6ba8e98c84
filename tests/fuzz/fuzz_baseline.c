/*
 * fuzz_baseline.c - dw_baseline_load(), the reader of a model's baseline state kept in Redis
 * ({dw:G}:baseline:<model>: JSON with the merged counts as base64 of dw_agg_encode), on
 * arbitrary bytes.
 *
 * A state the reader accepts is used as run uses it: written again by dw_baseline_dump(),
 * which must read back to the same text (the state is committed again at every final
 * evaluation that adds a window), and asked whether it is ready.
 *
 * Seeds: dw_baseline_dump() of an empty state, of one window merged and of three (ready), for
 * a classification model with scores and a regression model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_baseline.h"
#include "driftwatch/core/dw_common.h"
#include "dw_fuzz.h"

#define START 1794999600000LL /* a window start (ms) */
#define SIZE 60000LL          /* window length (ms) */

static struct dw_model_cfg g_cls = {
    .name = "fraud", .task = DW_TASK_CLASSIFICATION, .positive_class = "1"};
static struct dw_model_cfg g_reg = {
    .name = "price", .task = DW_TASK_REGRESSION, .positive_class = "1"};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_baseline: %s\n", what);
        abort();
    }
}

static void one_model(const struct dw_model_cfg *m, const char *text)
{
    struct dw_baseline bl;
    char errstr[256];
    if (dw_baseline_load(&bl, m, text, errstr, sizeof(errstr)) != 0) {
        dw_baseline_free(&bl);
        return;
    }
    (void)dw_baseline_ready(&bl);
    char *dump = dw_baseline_dump(&bl);
    struct dw_baseline again;
    check(dw_baseline_load(&again, m, dump, errstr, sizeof(errstr)) == 0, "dump not read back");
    char *dump2 = dw_baseline_dump(&again);
    check(strcmp(dump, dump2) == 0, "dump read back differs");
    free(dump2);
    free(dump);
    dw_baseline_free(&again);
    dw_baseline_free(&bl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = dw_malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    one_model(&g_cls, text);
    one_model(&g_reg, text);
    free(text);
    return 0;
}

/* A window of n labelled predictions (classification with scores, or regression). */
static struct dw_agg *window(const struct dw_model_cfg *m, int64_t k, int n)
{
    struct dw_agg *agg = dw_agg_new(m, START + k * SIZE);
    struct dw_prediction p;
    memset(&p, 0, sizeof(p));
    size_t slot = dw_agg_version_slot(agg, "v1", 2);
    for (int i = 0; i < n; i++) {
        dw_agg_add_prediction(agg, slot, &p);
        struct dw_outcome o = {0};
        if (m->task == DW_TASK_REGRESSION) {
            o.pred_is_num = o.label_is_num = 1;
            o.pred_num = 10.0 + i;
            o.label_num = 10.5 + i * 0.9;
        } else {
            o.pred = i % 4 ? "0" : "1";
            o.label = i % 3 ? "0" : "1";
            o.has_score = 1;
            o.score = (double)(i % 10) / 10.0;
        }
        dw_agg_add_outcome(agg, slot, &o);
    }
    return agg;
}

static void seed_model(const char *dir, const struct dw_model_cfg *m)
{
    struct dw_baseline bl;
    dw_baseline_init(&bl, m);
    char name[64];
    for (int k = 0; k <= 3; k++) {
        char *dump = dw_baseline_dump(&bl);
        snprintf(name, sizeof(name), "%s-%d", m->name, k);
        dw_fuzz_write_seed(dir, name, dump, strlen(dump));
        free(dump);
        if (k < 3) {
            struct dw_agg *agg = window(m, k, 20 + 7 * k);
            dw_baseline_add(&bl, agg, 3);
            dw_agg_free(agg);
        }
    }
    dw_baseline_free(&bl);
}

void dw_fuzz_seeds(const char *dir)
{
    seed_model(dir, &g_cls);
    seed_model(dir, &g_reg);
}
