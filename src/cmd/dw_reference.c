/*
 * dw_reference.c - `driftwatch reference show | set | reset`: what a model is judged against,
 * and the operator's way to change it while `run` runs.
 *
 * Why these commands: the reference a model's windows are compared with decides every drift
 * verdict, and after a retrain the old one is wrong: everything drifts. Operators need to see
 * what it is and where it came from, to give the training data's profile, and to start again.
 *
 * - show prints one JSON object: the configured source, the reference in use as `run` would
 *   choose it (the stored one, else by source), and the performance baseline as a report would
 *   state it (dw_baseline_judge on an empty report).
 * - set reads a `driftwatch profile` file as the model's reference, checked against the
 *   model's features and types (dw_files_load_profile: a mismatch names the feature), and
 *   stores it; reset deletes the stored reference, so that the model's source starts again
 *   (windows: the next reference.windows windows with predictions). Both forget how the old
 *   reference was made (its windows, its baseline) and bump refgen:<model> in one transaction
 *   (dw_redis_reference_replace): every pod drops its copy before its next evaluation, and the
 *   evaluator's own writes of reference state are fenced by that generation, so a window being
 *   evaluated at that moment cannot write the old reference back.
 * - Output is JSON on stdout (the record of the change); exit 0 ok, 1 Redis or file error,
 *   2 usage or configuration error.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_baseline.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_eval.h"
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/io/dw_files.h"
#include "driftwatch/io/dw_redis.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

struct ref_opts {
    const char *verb, *config, *model, *profile;
};

static void reference_usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch reference show  -c FILE --model M\n"
            "       driftwatch reference set   -c FILE --model M --profile PROFILE.json\n"
            "       driftwatch reference reset -c FILE --model M\n\n"
            "show   what model M's windows are judged against (source, when it was made, its\n"
            "       windows or profile) and its performance baseline, as JSON.\n"
            "set    store a profile (`driftwatch profile`) as M's reference in Redis, checked\n"
            "       against M's features and types; it replaces the configured source until\n"
            "       `reset`. A profile made with labels is also M's baseline.\n"
            "reset  delete M's stored reference and baseline: M's source starts again (windows:\n"
            "       the next reference.windows windows with predictions become the reference).\n"
            "Running pods take a change before their next evaluation. See docs/statistics.md,\n"
            "\"Reference sources\".\n\n"
            "  -c, --config FILE     the configuration used by `driftwatch run`\n"
            "  -m, --model M         the model\n"
            "      --profile FILE    set: the profile (file:// accepted)\n"
            "  -h, --help            this help\n");
}

/* The stored reference of model m (NULL: none), *status 1 found, 0 absent, -1 Redis error or
 * corrupt (errstr). */
static struct dw_ref *stored_reference(struct dw_redis *r, const struct dw_model_cfg *m,
                                       const char *name, int *status, char *errstr,
                                       size_t errstr_size)
{
    char *data = NULL;
    size_t len = 0;
    *status = dw_redis_read_str(r, name, &data, &len);
    struct dw_ref *ref = NULL;
    if (*status == 1) {
        ref = dw_ref_decode(m, data, len, errstr, errstr_size);
        *status = ref ? 1 : -1;
    } else if (*status < 0) {
        dw_err(errstr, errstr_size, "redis: cannot read %s", name);
    }
    free(data);
    return ref;
}

/* A JSON array of window starts stored at global key `name` (absent: empty). */
static json_t *stored_list(struct dw_redis *r, const char *name)
{
    char *text = dw_redis_get_str(r, name);
    json_t *wins = dw_evaluator_reference_windows(text);
    free(text);
    return wins;
}

/* The "reference" of show: the one `run` judges with, chosen as it chooses. */
static json_t *reference_json(struct dw_redis *r, const struct dw_model_cfg *m,
                              struct dw_ref **used, char *errstr, size_t errstr_size)
{
    int found;
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_ref(m->name, name, sizeof(name));
    struct dw_ref *ref = stored_reference(r, m, name, &found, errstr, errstr_size);
    *used = NULL;
    if (found < 0) {
        return NULL;
    }
    if (ref &&
        (ref->source == DW_REF_SOURCE_PROFILE || m->reference.source == DW_REF_SOURCE_WINDOWS)) {
        json_t *o = dw_eval_reference_json(m, ref);
        json_object_set_new(o, "stored", json_true());
        *used = ref;
        return o;
    }
    dw_ref_free(ref);
    if (m->reference.source == DW_REF_SOURCE_PROFILE) {
        *used = dw_files_load_profile(m, m->reference.profile, errstr, errstr_size);
        return *used ? dw_eval_reference_json(m, *used) : NULL;
    }
    json_t *o = dw_eval_reference_json(m, NULL);
    if (m->reference.source == DW_REF_SOURCE_TRAILING) {
        dw_redis_name_trailwins(m->name, name, sizeof(name));
        json_object_set_new(o, "status", json_string("per_window"));
        json_object_del(o, "reason");
        json_object_set_new(o, "stored_windows", stored_list(r, name));
        return o;
    }
    dw_redis_name_refwins(m->name, name, sizeof(name));
    json_t *wins = stored_list(r, name);
    json_object_set_new(o, "windows", json_integer((json_int_t)json_array_size(wins)));
    json_object_set_new(o, "window_starts_ms", wins);
    return o;
}

/* reference.per_version: each version's own reference (vrefs:<model> lists them), as the
 * versions' reports state it, or null when the model has none. */
static json_t *versions_json(struct dw_redis *r, const struct dw_model_cfg *m, char *errstr,
                             size_t errstr_size)
{
    if (!m->reference.per_version) {
        return json_null();
    }
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_vrefs(m->name, name, sizeof(name));
    json_t *versions = stored_list(r, name), *out = json_object(), *v;
    size_t i;
    json_array_foreach(versions, i, v)
    {
        const char *version = json_string_value(v);
        int found = 0;
        if (!version) {
            continue;
        }
        dw_redis_name_vref("vref", m->name, version, name, sizeof(name));
        struct dw_ref *ref = stored_reference(r, m, name, &found, errstr, errstr_size);
        json_t *o = dw_eval_reference_json(m, ref);
        if (found < 0) {
            json_object_set_new(o, "status", json_string("unreadable"));
            json_object_set_new(o, "error", json_string(errstr));
        } else if (!ref) {
            dw_redis_name_vref("vrefwins", m->name, version, name, sizeof(name));
            json_t *wins = stored_list(r, name);
            json_object_set_new(o, "windows", json_integer((json_int_t)json_array_size(wins)));
            json_object_set_new(o, "window_starts_ms", wins);
        }
        json_object_set_new(o, "per_version", json_true());
        json_object_set_new(out, version, o);
        dw_ref_free(ref);
    }
    json_decref(versions);
    return out;
}

/* The "baseline" of show, as a report would state it. */
static json_t *baseline_json(struct dw_redis *r, const struct dw_config *cfg,
                             const struct dw_model_cfg *m, const struct dw_ref *used)
{
    struct dw_baseline bl;
    char name[DW_REDIS_NAME_MAX], errstr[256];
    json_t *report = json_object();
    if (used && used->source == DW_REF_SOURCE_PROFILE) {
        dw_baseline_init(&bl, m);
        dw_baseline_set_profile(&bl, used->outcomes);
    } else if (m->reference.source == DW_REF_SOURCE_TRAILING) {
        dw_baseline_init(&bl, m); /* per window: the windows before it */
        bl.source = DW_BASELINE_TRAILING;
    } else {
        dw_redis_name_baseline(m->name, name, sizeof(name));
        char *text = dw_redis_get_str(r, name);
        if (dw_baseline_load(&bl, m, text, errstr, sizeof(errstr)) != 0) {
            json_object_set_new(report, "error", json_string(errstr));
        }
        free(text);
    }
    dw_baseline_judge(report, cfg, m, &bl, used ? used->predictions : 0);
    dw_baseline_free(&bl);
    json_t *out = json_incref(json_object_get(report, "baseline"));
    json_t *err = json_object_get(report, "error");
    if (err) {
        json_object_set(out, "error", err);
    }
    json_decref(report);
    return out;
}

json_t *dw_reference_show_json(struct dw_redis *r, const struct dw_config *cfg,
                               const struct dw_model_cfg *m, char *errstr, size_t errstr_size)
{
    char name[DW_REDIS_NAME_MAX];
    struct dw_ref *used = NULL;
    json_t *ref = reference_json(r, m, &used, errstr, errstr_size);
    if (!ref) {
        return NULL;
    }
    int64_t gen = 0;
    dw_redis_name_refgen(m->name, name, sizeof(name));
    dw_redis_get_i64(r, name, &gen);
    json_t *out =
        json_pack("{s:s,s:{s:s,s:I,s:s},s:I,s:o,s:o}", "model", m->name, "configured", "source",
                  dw_ref_source_name(m->reference.source), "windows",
                  (json_int_t)m->reference.windows, "profile", m->reference.profile, "generation",
                  (json_int_t)gen, "reference", ref, "baseline", baseline_json(r, cfg, m, used));
    json_object_set_new(out, "versions", versions_json(r, m, errstr, errstr_size));
    dw_ref_free(used);
    return out;
}

static int reference_show(struct dw_redis *r, const struct dw_config *cfg,
                          const struct dw_model_cfg *m)
{
    char errstr[1024];
    json_t *out = dw_reference_show_json(r, cfg, m, errstr, sizeof(errstr));
    if (!out) {
        fprintf(stderr, "driftwatch reference show: %s\n", errstr);
        return 1;
    }
    dw_cmd_print_json(out);
    return 0;
}

/* set (profile given) or reset (NULL). */
static int reference_replace(struct dw_redis *r, const struct dw_model_cfg *m, const char *profile)
{
    char errstr[1024];
    struct dw_ref *ref = NULL;
    struct dw_buf blob;
    dw_buf_init(&blob);
    if (profile) {
        ref = dw_files_load_profile(m, profile, errstr, sizeof(errstr));
        if (!ref) {
            fprintf(stderr, "driftwatch reference set: %s\n", errstr);
            return 1;
        }
        ref->created_ms = dw_now_ms();
        dw_ref_encode(ref, &blob);
    }
    int64_t gen = 0;
    int rc = dw_redis_reference_replace(r, m->name, profile ? blob.data : NULL, blob.len, &gen,
                                        errstr, sizeof(errstr));
    dw_buf_free(&blob);
    if (rc != 0) {
        dw_ref_free(ref);
        fprintf(stderr, "driftwatch reference %s: %s\n", profile ? "set" : "reset", errstr);
        return 1;
    }
    json_t *out = json_pack("{s:s,s:s,s:I}", "model", m->name, "action", profile ? "set" : "reset",
                            "generation", (json_int_t)gen);
    if (ref) {
        json_object_set_new(out, "reference", dw_eval_reference_json(m, ref));
        json_object_set_new(out, "baseline",
                            json_string(ref->outcomes ? "the profile's labelled outcomes"
                                                      : "none: the profile holds no labels"));
    } else {
        char next[1024];
        long long n = (long long)m->reference.windows;
        if (m->reference.source == DW_REF_SOURCE_WINDOWS) {
            snprintf(next, sizeof(next),
                     "the next %lld windows with predictions become the reference", n);
        } else if (m->reference.source == DW_REF_SOURCE_PROFILE) {
            snprintf(next, sizeof(next), "reference.profile (%s) is the reference again",
                     m->reference.profile);
        } else {
            snprintf(next, sizeof(next), "each window is judged against the %lld windows before it",
                     n);
        }
        json_object_set_new(out, "next", json_string(next));
    }
    dw_ref_free(ref);
    dw_cmd_print_json(out);
    return 0;
}

static int parse_args(int argc, char **argv, struct ref_opts *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"model", required_argument, NULL, 'm'},
        {"profile", required_argument, NULL, 'P'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "c:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'm':
            o->model = optarg;
            break;
        case 'P':
            o->profile = optarg;
            break;
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, reference_usage);
        }
    }
    if (dw_cmd_no_arguments("reference", argc, argv, optind + 1) != 0) {
        return 2;
    }
    int is_set = strcmp(o->verb, "set") == 0;
    if (!o->model || (is_set != (o->profile != NULL))) {
        fprintf(stderr, "driftwatch reference %s: %s\n", o->verb,
                !o->model ? "--model is required"
                : is_set  ? "--profile is required"
                          : "--profile is only for set");
        return 2;
    }
    return -1;
}

int dw_cmd_reference(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        reference_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct ref_opts o = {.verb = argv[1]};
    if (strcmp(o.verb, "show") != 0 && strcmp(o.verb, "set") != 0 && strcmp(o.verb, "reset") != 0) {
        fprintf(stderr, "driftwatch reference: unknown subcommand '%s'\n", o.verb);
        reference_usage(stderr);
        return 2;
    }
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    struct dw_config cfg;
    if (dw_config_load_cli(&cfg, "reference", o.config) != 0) {
        return 2;
    }
    const struct dw_model_cfg *m = dw_config_model(&cfg, o.model, strlen(o.model));
    char errstr[1024];
    struct dw_redis *r = m ? dw_redis_connect(&cfg, errstr, sizeof(errstr)) : NULL;
    if (!m) {
        fprintf(stderr, "driftwatch reference: --model: no model '%s' in %s\n", o.model, o.config);
        rc = 2;
    } else if (!r) {
        fprintf(stderr, "driftwatch reference: %s\n", errstr);
        rc = 1;
    } else if (strcmp(o.verb, "show") == 0) {
        rc = reference_show(r, &cfg, m);
    } else {
        rc = reference_replace(r, m, o.profile);
    }
    dw_redis_free(r);
    dw_config_free(&cfg);
    return rc;
}
