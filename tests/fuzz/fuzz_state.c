/*
 * fuzz_state.c - the readers of the evaluator's state in Redis, on arbitrary bytes. The first
 * byte picks the reader, the rest is its input:
 *   'E'  dw_errstream_load(): the change detectors' state text ("v1:" and hex);
 *   'D'  dw_cd_deserialize(): a detector record itself (binary, as inside that text);
 *   'T'  dw_trigger_state_load(): the retraining guardrails (JSON);
 *   'A'  dw_rules_state_load(): the alert state of a model (JSON).
 * Any other first byte runs all four on the rest. What a reader accepts is then used as the
 * evaluator uses it: detectors take a window of errors and dump a state that loads again;
 * the guardrails decide on a window whose trigger rule fires and dump a state that loads again;
 * the alert state is stepped with the built-in rules over a close and a final report, and what
 * the steps leave loads again without a complaint.
 *
 * Seeds: the dumps of states made by feeding windows (errstream, guardrails, alert steps) and
 * serialized detector records.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_changedet.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_errstream.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/core/dw_rules.h"
#include "driftwatch/core/dw_trigger.h"
#include "dw_fuzz.h"

#define T0 1794999900000LL /* a window start (ms) */
#define MODEL "fraud"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_state: %s\n", what);
        abort();
    }
}

/* A window report of MODEL with drift everywhere and a poor accuracy. */
static json_t *report(int64_t start, int final)
{
    char ws[48], we[48];
    dw_time_format_rfc3339(start, ws, sizeof(ws));
    dw_time_format_rfc3339(start + 60000, we, sizeof(we));
    return json_pack("{s:s,s:s,s:s,s:I,s:b,s:I,s:I,s:I,s:{s:f},s:{s:b,s:f},s:{s:f,s:f,s:b},"
                     "s:{s:{s:s,s:f,s:f,s:b},s:{s:s,s:f,s:f,s:b}}}",
                     "model", MODEL, "window_start", ws, "window_end", we, "window_start_ms",
                     (json_int_t)start, "final", final, "predictions", (json_int_t)500, "labeled",
                     (json_int_t)400, "correct", (json_int_t)200, "performance", "accuracy", 0.5,
                     "drift", "dataset", 1, "share", 1.0, "accuracy_drop", "value", 0.4,
                     "threshold", 0.05, "alert", 1, "features", "amount", "method", "ks", "score",
                     0.001, "threshold", 0.05, "drift", 1, "country", "method", "chi2", "score",
                     0.5, "threshold", 0.05, "drift", 0);
}

/*
 * What the detectors of a restored state do with further elements is their algorithm's: a
 * stored statistic of extreme magnitude can overflow in later updates, as an extreme error
 * value would in a live stream, and the state then written is refused (non-finite) and starts
 * afresh. So the strict checks are: a restored state writes back exactly what was read, a
 * fresh state always round-trips, and nothing crashes or leaks.
 */
static void fuzz_errstream(const char *text)
{
    struct dw_errstream es;
    char err[256] = "";
    int restored = dw_errstream_load(&es, text, err, sizeof(err)) == 0;
    if (!restored) {
        check(err[0] != '\0', "errstream refused without a message");
    } else {
        char *dump = dw_errstream_dump(&es);
        check(strcmp(dump, text) == 0, "a restored error stream writes back other text");
        free(dump);
    }
    /* restored or fresh: usable either way */
    json_decref(dw_errstream_feed(&es, T0, 40, 13, NAN));
    json_decref(dw_errstream_feed(&es, T0 + 60000, 30, 0, 1.5));
    char *dump = dw_errstream_dump(&es);
    dw_errstream_free(&es);
    err[0] = '\0';
    if (dw_errstream_load(&es, dump, err, sizeof(err)) != 0) {
        if (!restored) {
            fprintf(stderr, "fuzz_state: a fresh error stream does not round-trip: %s\n", err);
            abort();
        }
        check(err[0] != '\0', "errstream refused without a message");
    }
    dw_errstream_free(&es);
    free(dump);
}

static void fuzz_detector(const uint8_t *data, size_t size)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, size);
    struct dw_cd cd;
    char err[256] = "";
    if (dw_cd_deserialize(&cd, &rd, err, sizeof(err)) != 0) {
        check(err[0] != '\0', "detector refused without a message");
        return;
    }
    struct dw_buf b;
    dw_buf_init(&b);
    dw_cd_serialize(&cd, &b);
    check(b.len == rd.pos && memcmp(b.data, data, b.len) == 0,
          "a restored detector writes back other bytes");
    for (int i = 0; i < 100; i++) {
        dw_cd_update(&cd, (double)(i % 3 == 0));
    }
    (void)dw_cd_estimation(&cd);
    dw_buf_reset(&b);
    dw_cd_serialize(&cd, &b);
    dw_cd_free(&cd);
    dw_reader_init(&rd, b.data, b.len);
    err[0] = '\0';
    if (dw_cd_deserialize(&cd, &rd, err, sizeof(err)) == 0) {
        check(rd.pos == rd.len, "a serialized detector leaves bytes over");
        dw_cd_free(&cd);
    } else {
        check(err[0] != '\0', "detector refused without a message");
    }
    dw_buf_free(&b);
}

static void fuzz_trigger(const char *text)
{
    struct dw_trigger_state st;
    char err[256] = "";
    if (dw_trigger_state_load(&st, text, err, sizeof(err)) != 0) {
        check(err[0] != '\0', "trigger state refused without a message");
        check(st.last_start_ms == DW_NO_TS, "a refused trigger state is not empty");
    }
    struct dw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.rules = dw_rules_defaults(&cfg.n_rules);
    cfg.triggers_enabled = 1;
    cfg.trigger_cooldown_ms = 3600000;
    cfg.trigger_min_samples = 100;
    cfg.trigger_max_per_day = 3;
    const char *rule = NULL; /* a built-in rule of the close stage: it fires below */
    for (size_t i = 0; i < cfg.n_rules && !rule; i++) {
        if (dw_rule_stage_of(&cfg.rules[i]) == DW_STAGE_CLOSE) {
            rule = cfg.rules[i].name;
        }
    }
    json_t *firing = json_pack("[{s:s,s:s}]", "rule", rule, "feature", "amount");
    static const int64_t starts[] = {T0, T0 + 60000, T0 + 7200000, -DW_STATE_MS_MAX,
                                     DW_STATE_MS_MAX};
    for (size_t i = 0; i < DW_ARRAY_SIZE(starts); i++) {
        json_t *rep = report(starts[i], 0);
        const char *why;
        json_decref(dw_trigger_decide(&cfg, rep, firing, &st, &why));
        json_decref(rep);
    }
    char *dump = dw_trigger_state_dump(&st);
    struct dw_trigger_state back;
    if (dw_trigger_state_load(&back, dump, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_state: a dumped trigger state is refused: %s\n", err);
        abort();
    }
    free(dump);
    json_decref(firing);
    dw_rules_free(cfg.rules, cfg.n_rules);
}

static void fuzz_alerts(const char *text)
{
    json_t *state = NULL;
    char err[256] = "";
    if (dw_rules_state_load(MODEL, text, &state, err, sizeof(err)) != 0) {
        check(err[0] != '\0', "alert state refused without a message");
    }
    check(json_is_object(state), "no state object");
    size_t n_rules;
    struct dw_rule *rules = dw_rules_defaults(&n_rules);
    static const int64_t starts[] = {T0, T0 + 60000, -DW_STATE_MS_MAX, DW_STATE_MS_MAX};
    for (size_t i = 0; i < DW_ARRAY_SIZE(starts); i++) {
        for (int final = 0; final <= 1; final++) {
            json_t *rep = report(starts[i], final);
            json_decref(dw_rules_step("fuzz", rules, n_rules, rep, state));
            json_decref(rep);
        }
    }
    char *dump = json_dumps(state, JSON_COMPACT);
    json_t *back = NULL;
    if (dw_rules_state_load(MODEL, dump, &back, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_state: a stepped alert state is refused: %s\n", err);
        abort();
    }
    json_decref(back);
    free(dump);
    json_decref(state);
    dw_rules_free(rules, n_rules);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    char *text = dw_malloc(size); /* the rest as a C string (cut at a NUL, as from Redis) */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0]) {
    case 'E':
        fuzz_errstream(text);
        break;
    case 'D':
        fuzz_detector(data + 1, size - 1);
        break;
    case 'T':
        fuzz_trigger(text);
        break;
    case 'A':
        fuzz_alerts(text);
        break;
    default:
        fuzz_errstream(text);
        fuzz_detector(data + 1, size - 1);
        fuzz_trigger(text);
        fuzz_alerts(text);
        break;
    }
    free(text);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Seeds
 */

static void write_tagged(const char *dir, const char *name, char tag, const void *data, size_t len)
{
    char *buf = dw_malloc(len + 1);
    buf[0] = tag;
    memcpy(buf + 1, data, len);
    dw_fuzz_write_seed(dir, name, buf, len + 1);
    free(buf);
}

void dw_fuzz_seeds(const char *dir)
{
    /* error stream: fresh, after classification windows, after a regression window */
    struct dw_errstream es;
    dw_errstream_init(&es);
    char *text = dw_errstream_dump(&es);
    write_tagged(dir, "errstream_fresh", 'E', text, strlen(text));
    free(text);
    for (int i = 0; i < 20; i++) {
        json_decref(dw_errstream_feed(&es, T0 + i * 60000LL, 100, i < 10 ? 5 : 40, NAN));
    }
    text = dw_errstream_dump(&es);
    write_tagged(dir, "errstream_fed", 'E', text, strlen(text));
    free(text);

    /* each detector's record alone */
    struct dw_cd *cds[] = {&es.ph, &es.adwin, &es.ddm};
    static const char *const names[] = {"detector_ph", "detector_adwin", "detector_ddm"};
    for (size_t i = 0; i < 3; i++) {
        struct dw_buf b;
        dw_buf_init(&b);
        dw_cd_serialize(cds[i], &b);
        write_tagged(dir, names[i], 'D', b.data, b.len);
        dw_buf_free(&b);
    }
    dw_errstream_free(&es);

    /* guardrails: none yet, one trigger */
    struct dw_trigger_state st;
    dw_trigger_state_load(&st, NULL, NULL, 0);
    text = dw_trigger_state_dump(&st);
    write_tagged(dir, "trigger_none", 'T', text, strlen(text));
    free(text);
    st.last_start_ms = T0;
    st.day = dw_floor_div(T0, 86400000LL);
    st.count = 2;
    text = dw_trigger_state_dump(&st);
    write_tagged(dir, "trigger_two", 'T', text, strlen(text));
    free(text);

    /* alert state after a few steps of the built-in rules */
    size_t n_rules;
    struct dw_rule *rules = dw_rules_defaults(&n_rules);
    json_t *state = json_object();
    for (int i = 0; i < 3; i++) {
        for (int final = 0; final <= 1; final++) {
            json_t *rep = report(T0 + i * 60000LL, final);
            json_decref(dw_rules_step("fuzz", rules, n_rules, rep, state));
            json_decref(rep);
        }
    }
    text = json_dumps(state, JSON_COMPACT);
    write_tagged(dir, "alerts_firing", 'A', text, strlen(text));
    free(text);
    json_decref(state);
    dw_rules_free(rules, n_rules);
}
