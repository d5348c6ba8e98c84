/*
 * fuzz_ref.c - dw_ref_decode(), the reader of the reference kept in Redis (JSON, a NUL byte and
 * the samples in binary; or JSON alone, as older versions kept it) and, through it,
 * dw_ref_from_json(), the reader of the profile file given to `replay --reference`, on
 * arbitrary bytes.
 *
 * A reference the reader accepts is used as run and replay use it: a window is evaluated
 * against it (close and final reports: PSI on its edges, KS and Wasserstein on its sample,
 * chi-square on its category counts), and each of its written forms (binary, as in Redis,
 * packed JSON and arrays, as in a profile) is accepted again.
 *
 * Seeds: dw_ref_encode(), dw_ref_to_json_packed() and dw_ref_to_json() of references built by
 * dw_ref_build()
 * from aggregates fed with values, and a profile written by `driftwatch profile` from a CSV;
 * both with the model's outputs (scores, classes; the profile's labels too).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_agg.h"
#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_eval.h"
#include "dw_fuzz.h"

#define WINDOW_START 1794999900000LL /* the evaluated window (ms) */

static struct dw_feature_cfg g_feats[] = {
    {"amount", DW_FEATURE_NUMERIC},
    {"country", DW_FEATURE_CATEGORICAL},
    {"age", DW_FEATURE_NUMERIC},
};
static struct dw_model_cfg g_model = {.name = "fraud",
                                      .task = DW_TASK_CLASSIFICATION,
                                      .positive_class = "1",
                                      .features = g_feats,
                                      .n_features = 3};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_ref: %s\n", what);
        abort();
    }
}

static void add(struct dw_agg *agg, double amount, const char *country, double age)
{
    struct dw_prediction *p = dw_calloc(1, sizeof(*p) + 3 * sizeof(struct dw_val));
    p->model = &g_model;
    p->features[0].kind = isnan(amount) ? DW_VAL_MISSING : DW_VAL_NUM;
    p->features[0].num = amount;
    p->features[1].kind = country ? DW_VAL_STR : DW_VAL_MISSING;
    p->features[1].str = country;
    p->features[1].len = country ? strlen(country) : 0;
    p->features[2].kind = isnan(age) ? DW_VAL_MISSING : DW_VAL_NUM;
    p->features[2].num = age;
    /* the outputs: a class and a score (the reference's "outputs") */
    int pos = !isnan(amount) && amount > 20.0;
    snprintf(p->pred.text, sizeof(p->pred.text), "%d", pos);
    p->pred.len = 1;
    p->has_score = !isnan(age);
    p->score = pos ? 0.5 + fmod(amount, 0.5) : fmod(amount, 0.5);
    dw_agg_add_prediction(agg, dw_agg_version_slot(agg, "v1", 2), p);
    free(p);
}

/* The window every accepted reference is compared with (built once). */
static struct dw_agg *window(void)
{
    static struct dw_agg *w;
    if (!w) {
        static const char *const countries[] = {"DE", "FR", "IT"};
        w = dw_agg_new(&g_model, WINDOW_START);
        for (int i = 0; i < 60; i++) {
            add(w, (double)(i % 17) * 3.5, countries[i % 3], i % 5 ? (double)i : NAN);
            struct dw_outcome o = {.pred = "1", .label = i % 4 ? "1" : "0"};
            dw_agg_add_outcome(w, dw_agg_version_slot(w, "", 0), &o);
        }
    }
    return w;
}

/* A written form of ref must be read back. */
static void reread(json_t *doc, const char *form)
{
    char err[256];
    struct dw_ref *back = dw_ref_from_json(&g_model, doc, err, sizeof(err));
    if (!back) {
        fprintf(stderr, "fuzz_ref: the %s form of an accepted reference is refused: %s\n", form,
                err);
        abort();
    }
    dw_ref_free(back);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct dw_ref *ref = dw_ref_decode(&g_model, data, size, err, sizeof(err));
    if (!ref) {
        check(err[0] != '\0', "refused without a message");
        return 0;
    }
    static struct dw_config cfg;
    static int have_cfg;
    if (!have_cfg) {
        dw_config_defaults(&cfg); /* the detectors' defaults, kept for the whole run */
        have_cfg = 1;
    }
    json_decref(dw_eval_window(&cfg, &g_model, window(), ref, 0));
    json_decref(dw_eval_window(&cfg, &g_model, window(), ref, 1));
    reread(dw_ref_to_json_packed(ref), "packed");
    reread(dw_ref_to_json(ref), "arrays");
    struct dw_buf blob;
    dw_buf_init(&blob);
    dw_ref_encode(ref, &blob);
    struct dw_ref *back = dw_ref_decode(&g_model, blob.data, blob.len, err, sizeof(err));
    check(back != NULL, "the binary form of an accepted reference is refused");
    dw_ref_free(back);
    dw_buf_free(&blob);
    dw_ref_free(ref);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Seeds
 */

static void write_doc(const char *dir, const char *name, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    dw_fuzz_write_seed(dir, name, text, strlen(text));
    free(text);
    json_decref(doc);
}

/* `driftwatch profile` over a small CSV, its output file as a seed. */
static void write_profile(const char *dir)
{
    char csv[4096], out[4096];
    snprintf(csv, sizeof(csv), "%s/.train.csv", dir);
    snprintf(out, sizeof(out), "%s/.profile.json", dir);
    FILE *f = fopen(csv, "w");
    if (!f) {
        fprintf(stderr, "fuzz_ref: cannot write %s\n", csv);
        exit(1);
    }
    fprintf(f, "amount,country,age,prediction,score,label\n");
    for (int i = 0; i < 50; i++) {
        fprintf(f, "%.3f,%s,%d,%d,%.2f,%d\n", 10.0 + i * 1.25, i % 3 ? "DE" : "FR", 20 + i % 30,
                i % 2, 0.02 * i, i % 3 == 0);
    }
    fprintf(f, ",IT,,,,\n");
    fclose(f);
    char *argv[] = {"profile", "--input",   csv,          "--output",      out,       "--model",
                    "fraud",   "--numeric", "amount,age", "--categorical", "country", NULL};
    if (dw_cmd_profile(11, argv) != 0) {
        fprintf(stderr, "fuzz_ref: driftwatch profile failed\n");
        exit(1);
    }
    json_error_t jerr;
    json_t *doc = json_load_file(out, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "fuzz_ref: %s: %s\n", out, jerr.text);
        exit(1);
    }
    write_doc(dir, "profile", doc);
    unlink(csv);
    unlink(out);
}

void dw_fuzz_seeds(const char *dir)
{
    static const char *const countries[] = {"DE", "FR", "IT", "ES"};
    struct dw_agg *r = dw_agg_new(&g_model, WINDOW_START - 60000);
    for (int i = 0; i < 120; i++) {
        add(r, sqrt((double)i) * 3.14159, countries[i % 4], i % 7 ? (double)(i % 40) : NAN);
    }
    struct dw_agg *aggs[] = {r};
    struct dw_ref *ref = dw_ref_build(&g_model, aggs, 1, 10);
    write_doc(dir, "packed", dw_ref_to_json_packed(ref));
    write_doc(dir, "arrays", dw_ref_to_json(ref));
    struct dw_buf blob;
    dw_buf_init(&blob);
    dw_ref_encode(ref, &blob);
    dw_fuzz_write_seed(dir, "binary", blob.data, blob.len);
    dw_buf_free(&blob);
    dw_ref_free(ref);
    /* few distinct values (repeated edges, ties merged in the sample) and an empty feature */
    struct dw_agg *ties = dw_agg_new(&g_model, WINDOW_START - 120000);
    for (int i = 0; i < 30; i++) {
        add(ties, (double)(i % 2), "DE", NAN);
    }
    aggs[0] = ties;
    ref = dw_ref_build(&g_model, aggs, 1, 10);
    write_doc(dir, "ties_packed", dw_ref_to_json_packed(ref));
    dw_ref_free(ref);
    dw_agg_free(ties);
    dw_agg_free(r);
    write_profile(dir);
}
