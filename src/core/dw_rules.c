/*
 * dw_rules.c - alert rules: conditions over window reports, the on-call state machine of each
 * alert instance, and the grouped notification of one evaluation step.
 *
 * Why windows and not wall-clock time: a step is one (model, window, stage) report, so `for`,
 * `keep_firing_for` and `repeat_interval` are counted in the reports' own time. A replay, a
 * restart from Redis or a second pod evaluating the same reports reach the same transitions and
 * the same notification ids. Each instance remembers the last window it was evaluated in
 * ("last_ms"), so a report stepped twice (at-least-once delivery of the window close) does not
 * count twice. A report of a run of empty windows ("empty_windows": n, dw_eval_empty_run)
 * counts as n windows for `for` and `keep_firing_for`, so a gap reported once moves an alert
 * exactly as n single reports would; it is still one step, with at most one notification, and
 * repeat_interval is measured to its last window.
 *
 * One step, in four passes over the model's state (a JSON object fingerprint -> instance):
 *   1. drop instances that no rule of this model owns any more (the config changed);
 *   2. evaluate every rule of the report's stage: each instance observed in the report (or
 *      kept in the state) moves inactive -> pending -> firing -> inactive; a resolved firing
 *      instance is removed and, when its firing was notified, gives a "resolved" alert;
 *   3. inhibition: is an instance of an `inhibits_features` rule firing now?
 *   4. every firing instance not muted by inhibition is notified when it never was, or again
 *      when repeat_interval has passed; all of them form the "firing" list.
 * Inhibition mutes firing notices only: the resolved notice of an instance whose firing was
 * notified is always sent, so that no receiver (PagerDuty) keeps an incident open for ever.
 *
 * Everything is pure C over jansson values: no I/O, no clock.
 */
#include "driftwatch/core/dw_rules.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define FP_BYTES 8  /* bytes of the SHA-256 kept in a fingerprint (16 hex digits) */
#define TIME_BUF 48 /* bytes of an RFC 3339 timestamp buffer */
#define NUM_BUF 64  /* bytes of a number formatted with %.6g */

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */

static int64_t jint(const json_t *obj, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void set_int(json_t *obj, const char *key, int64_t v)
{
    json_object_set_new(obj, key, json_integer((json_int_t)v));
}

/* n + 1 for a window counter read from the state, which stops at INT64_MAX (no overflow). */
/* n + k for a stored counter n and k >= 1 new windows: a negative n counts as 0, and the sum
 * saturates instead of overflowing whatever was stored. */
static int64_t count_add(int64_t n, int64_t k)
{
    n = n < 0 ? 0 : n;
    return n > INT64_MAX - k ? INT64_MAX : n + k;
}

/* Whether to - from >= d (d >= 0), without overflow whatever the stored times are. */
static int elapsed_at_least(int64_t from, int64_t to, int64_t d)
{
    return to >= from && (uint64_t)to - (uint64_t)from >= (uint64_t)d;
}

/* A JSON scalar as text: numbers with %.6g, booleans as true/false, anything else "none". */
static void fmt_scalar(const json_t *v, char *buf, size_t size)
{
    if (json_is_number(v)) {
        snprintf(buf, size, "%.6g", json_number_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    } else {
        snprintf(buf, size, "none");
    }
}

static const char *op_text(enum dw_rule_op op)
{
    switch (op) {
    case DW_OP_LT:
        return "<";
    case DW_OP_LE:
        return "<=";
    case DW_OP_GT:
        return ">";
    case DW_OP_GE:
        return ">=";
    case DW_OP_EQ:
        return "==";
    case DW_OP_NE:
        return "!=";
    case DW_OP_TRUE:
        break;
    }
    return "";
}

/* ---------------------------------------------------------------------------------------------
 * Conditions
 */

static int is_path_char(int c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.' || c == '*';
}

static int is_op_char(int c)
{
    return c == '<' || c == '>' || c == '=' || c == '!';
}

static int bad_char(const char *text, int c, const char *where, char *errstr, size_t errstr_size)
{
    if (isprint(c)) {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": unexpected character "
                      "'%c' %s",
                      text, c, where);
    }
    return dw_err(errstr, errstr_size, "alerting rule condition \"%s\": unexpected byte 0x%02x %s",
                  text, (unsigned)c, where);
}

/* Checks the segments of a path: non-empty, [A-Za-z0-9_-]+ or a whole "*", at most one "*". */
static int check_path(const char *text, const char *path, size_t len, char *errstr,
                      size_t errstr_size)
{
    size_t stars = 0;
    size_t i = 0;
    for (;;) {
        size_t seg = i;
        while (i < len && path[i] != '.') {
            i++;
        }
        size_t seg_len = i - seg;
        if (seg_len == 0) {
            return dw_err(errstr, errstr_size,
                          "alerting rule condition \"%s\": empty segment in path \"%.*s\"", text,
                          (int)len, path);
        }
        if (memchr(path + seg, '*', seg_len)) {
            if (seg_len != 1) {
                return dw_err(errstr, errstr_size,
                              "alerting rule condition \"%s\": '*' must be a whole path segment",
                              text);
            }
            stars++;
        }
        if (i == len) {
            break;
        }
        i++; /* the '.' */
    }
    if (stars > 1) {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": at most one '*' segment in the path", text);
    }
    return 0;
}

int dw_rule_expr_parse(const char *text, struct dw_rule_expr *out, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *s;
        enum dw_rule_op op;
    } ops[] = {{"<", DW_OP_LT},  {"<=", DW_OP_LE}, {">", DW_OP_GT},
               {">=", DW_OP_GE}, {"==", DW_OP_EQ}, {"!=", DW_OP_NE}};

    if (!text) {
        return dw_err(errstr, errstr_size, "alerting rule condition: missing");
    }
    const char *p = text;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    const char *path = p;
    while (*p && is_path_char((unsigned char)*p)) {
        p++;
    }
    size_t path_len = (size_t)(p - path);
    if (path_len == 0) {
        if (*p == '\0') {
            return dw_err(errstr, errstr_size, "alerting rule condition \"%s\": empty", text);
        }
        if (is_op_char((unsigned char)*p)) {
            return dw_err(errstr, errstr_size,
                          "alerting rule condition \"%s\": missing path before the operator", text);
        }
        return bad_char(text, (unsigned char)*p, "in the path", errstr, errstr_size);
    }
    if (*p && !isspace((unsigned char)*p) && !is_op_char((unsigned char)*p)) {
        return bad_char(text, (unsigned char)*p, "in the path", errstr, errstr_size);
    }
    if (path_len >= DW_RULE_PATH_MAX) {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": path longer than %d bytes", text,
                      DW_RULE_PATH_MAX - 1);
    }
    if (check_path(text, path, path_len, errstr, errstr_size) < 0) {
        return -1;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    struct dw_rule_expr e;
    memset(&e, 0, sizeof(e));
    memcpy(e.path, path, path_len);
    e.path[path_len] = '\0';
    e.op = DW_OP_TRUE;
    if (*p == '\0') {
        *out = e;
        return 0;
    }
    if (!is_op_char((unsigned char)*p)) {
        return bad_char(text, (unsigned char)*p, "after the path (expected one of < <= > >= == !=)",
                        errstr, errstr_size);
    }
    const char *op = p;
    while (is_op_char((unsigned char)*p)) {
        p++;
    }
    size_t op_len = (size_t)(p - op);
    int found = 0;
    for (size_t i = 0; i < DW_ARRAY_SIZE(ops); i++) {
        if (strlen(ops[i].s) == op_len && memcmp(ops[i].s, op, op_len) == 0) {
            e.op = ops[i].op;
            found = 1;
            break;
        }
    }
    if (!found) {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": unknown operator '%.*s' (expected one of "
                      "< <= > >= == !=)",
                      text, (int)op_len, op);
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '\0') {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": missing number after '%.*s'", text,
                      (int)op_len, op);
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p) {
        return dw_err(errstr, errstr_size, "alerting rule condition \"%s\": \"%s\" is not a number",
                      text, p);
    }
    const char *rest = end;
    while (isspace((unsigned char)*rest)) {
        rest++;
    }
    if (*rest != '\0') {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": unexpected text \"%s\" after the number",
                      text, rest);
    }
    if (errno == ERANGE || !isfinite(v)) {
        return dw_err(errstr, errstr_size,
                      "alerting rule condition \"%s\": \"%.*s\" is not a finite number", text,
                      (int)(end - p), p);
    }
    e.threshold = v;
    *out = e;
    return 0;
}

enum dw_rule_stage dw_rule_stage_of(const struct dw_rule *rule)
{
    static const char *const final_roots[] = {
        "performance", "performance_drop", "accuracy_drop",    "baseline", "rolling",    "versions",
        "labeled",     "unlabeled_share",  "change_detectors", "correct",  "label_drift"};
    if (rule->stage != DW_STAGE_AUTO) {
        return rule->stage;
    }
    size_t n = strcspn(rule->expr.path, ".");
    for (size_t i = 0; i < DW_ARRAY_SIZE(final_roots); i++) {
        if (strlen(final_roots[i]) == n && memcmp(final_roots[i], rule->expr.path, n) == 0) {
            return DW_STAGE_FINAL;
        }
    }
    return DW_STAGE_CLOSE;
}

const char *dw_severity_name(enum dw_severity s)
{
    return s == DW_SEV_CRITICAL ? "critical" : "warning";
}

/* Indexed by enum dw_alert_state. */
static const char *const alert_state_names[] = {"inactive", "pending", "firing", "resolved"};
_Static_assert(DW_ARRAY_SIZE(alert_state_names) == DW_ALERT_RESOLVED + 1, "a name per state");

const char *dw_alert_state_name(enum dw_alert_state s)
{
    dw_assert((size_t)s < DW_ARRAY_SIZE(alert_state_names));
    return alert_state_names[s];
}

int dw_alert_state_parse(const char *name, enum dw_alert_state *out)
{
    int i = dw_name_index(alert_state_names, DW_ARRAY_SIZE(alert_state_names), name);
    if (i < 0) {
        return -1;
    }
    *out = (enum dw_alert_state)i;
    return 0;
}

/* The state of a stored instance ("state"); DW_ALERT_INACTIVE when it has none. */
static enum dw_alert_state inst_state(const json_t *inst)
{
    enum dw_alert_state s = DW_ALERT_INACTIVE;
    (void)dw_alert_state_parse(json_string_value(json_object_get(inst, "state")), &s);
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * Rules
 */

static void rule_init(struct dw_rule *r, const char *name, const char *expr, enum dw_severity sev,
                      int inhibits)
{
    memset(r, 0, sizeof(*r));
    r->name = dw_strdup(name);
    r->expr_text = dw_strdup(expr);
    int rc = dw_rule_expr_parse(expr, &r->expr, NULL, 0);
    dw_assert(rc == 0);
    r->stage = DW_STAGE_AUTO;
    r->for_windows = 1;
    r->keep_firing_windows = 0;
    r->repeat_interval_ms = 0;
    r->severity = sev;
    r->inhibits_features = inhibits;
}

struct dw_rule *dw_rules_defaults(size_t *n)
{
    struct dw_rule *rules = dw_calloc(3, sizeof(*rules));
    rule_init(&rules[0], "feature_drift", "features.*.drift", DW_SEV_WARNING, 0);
    rule_init(&rules[1], "dataset_drift", "drift.dataset", DW_SEV_CRITICAL, 1);
    /* Named accuracy_drop since before regression had one: triggers.rules and alert
     * fingerprints name it. performance_drop judges accuracy, or RMSE for regression. */
    rule_init(&rules[2], "accuracy_drop", "performance_drop.alert", DW_SEV_CRITICAL, 0);
    *n = 3;
    return rules;
}

void dw_rules_free(struct dw_rule *rules, size_t n)
{
    if (!rules) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct dw_rule *r = &rules[i];
        for (size_t j = 0; j < r->n_labels; j++) {
            free(r->labels[j].key);
            free(r->labels[j].value);
        }
        free(r->labels);
        free(r->runbook_url);
        free(r->description);
        free(r->summary);
        free(r->expr_text);
        free(r->model);
        free(r->name);
    }
    free(rules);
}

void dw_rule_fingerprint(const char *model, const char *rule, const char *feature, char *buf)
{
    struct dw_sbuf sb = {0};
    const char *parts[3] = {model ? model : "", rule ? rule : "", feature ? feature : ""};
    for (size_t i = 0; i < 3; i++) {
        if (i > 0) {
            dw_sbuf_add(&sb, "\x1f", 1);
        }
        dw_sbuf_add(&sb, parts[i], strlen(parts[i]));
    }
    dw_sha256_hex(sb.s, sb.len, FP_BYTES, buf);
    free(sb.s);
}

/* ---------------------------------------------------------------------------------------------
 * The stored state
 */

/* Why an instance of the stored state is not one dw_rules_step() wrote (NULL: it is). */
static const char *instance_problem(const char *model, const char *fp, json_t *inst)
{
    if (!json_is_object(inst)) {
        return "not an object";
    }
    json_t *rule = json_object_get(inst, "rule"), *feature = json_object_get(inst, "feature");
    if (!json_is_string(rule) || !(json_is_string(feature) || json_is_null(feature))) {
        return "rule must be a string, feature a string or null";
    }
    char want[2 * FP_BYTES + 1];
    dw_rule_fingerprint(model, json_string_value(rule), json_string_value(feature), want);
    if (strcmp(fp, want) != 0) {
        return "the fingerprint is not the one of its model, rule and feature";
    }
    enum dw_alert_state st;
    if (dw_alert_state_parse(json_string_value(json_object_get(inst, "state")), &st) != 0 ||
        (st != DW_ALERT_PENDING && st != DW_ALERT_FIRING)) {
        return "state must be \"pending\" or \"firing\"";
    }
    static const char *const counts[] = {"active", "inactive"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(counts); i++) {
        json_t *v = json_object_get(inst, counts[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            return "active and inactive must be non-negative integers";
        }
    }
    static const char *const times[] = {"active_since_ms", "last_ms", "fired_ms", "last_sent_ms"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(times); i++) {
        json_t *v = json_object_get(inst, times[i]);
        if (i >= 2 && json_is_null(v)) {
            continue; /* not fired, never sent */
        }
        if (!json_is_integer(v) || json_integer_value(v) < -DW_STATE_MS_MAX ||
            json_integer_value(v) > DW_STATE_MS_MAX) {
            return i < 2 ? "active_since_ms and last_ms must be window times"
                         : "fired_ms and last_sent_ms must be window times or null";
        }
    }
    if (!json_is_boolean(json_object_get(inst, "notified"))) {
        return "notified must be a boolean";
    }
    json_t *value = json_object_get(inst, "value"), *thr = json_object_get(inst, "threshold");
    json_t *method = json_object_get(inst, "method");
    if (!(json_is_number(value) || json_is_boolean(value) || json_is_null(value)) ||
        !(json_is_number(thr) || json_is_null(thr)) || (method && !json_is_string(method))) {
        return "value, threshold or method of the wrong type";
    }
    return NULL;
}

int dw_rules_state_load(const char *model, const char *text, json_t **state, char *errstr,
                        size_t errstr_size)
{
    *state = NULL;
    json_error_t jerr;
    json_t *doc = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : json_object();
    if (!json_is_object(doc)) {
        json_decref(doc);
        *state = json_object();
        return dw_err(errstr, errstr_size, "alert state of %s: not a JSON object%s%s", model,
                      doc ? "" : ": ", doc ? "" : jerr.text);
    }
    int rc = 0;
    const char *fp;
    json_t *inst;
    void *tmp;
    json_object_foreach_safe(doc, tmp, fp, inst)
    {
        const char *why = instance_problem(model, fp, inst);
        if (!why) {
            continue;
        }
        if (rc == 0) { /* the first one named; every bad one is dropped */
            rc = dw_err(errstr, errstr_size, "alert state of %s: instance %.40s: %s", model, fp,
                        why);
        }
        json_object_del(doc, fp);
    }
    *state = doc;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * One step
 */

/* A rule as a step sees it. */
struct rview {
    const struct dw_rule *rule;
    size_t idx;               /* position in the rules array: the order of alerts */
    enum dw_rule_stage stage; /* resolved */
    int star;                 /* the path has a "*" segment */
    size_t pre_len;           /* bytes of the path before ".*" (0 when it starts with "*") */
    const char *suf;          /* the path after "*." ("" when "*" is last) */
};

/* What the step knows of its report. */
struct step_ctx {
    const char *model;
    int64_t start_ms;
    enum dw_rule_stage stage;
    const char *win_start; /* RFC 3339 */
    const char *win_end;   /* RFC 3339, or NULL when the report has none */
    int64_t n_windows;     /* windows the report stands for: its empty_windows, else 1 */
    int64_t win_ms;        /* one window's length, ms (0 when the report does not say) */
    int64_t last_ms;       /* start of the report's last window */
    json_t *report;        /* the report stepped ({{report.<path>}} in annotations) */
};

/* An alert waiting to be ordered (rule order, then feature name). */
struct item {
    size_t ridx;
    char *feature; /* NULL for rules without "*" */
    json_t *alert;
};

struct items {
    struct item *v;
    size_t n, cap;
};

static void items_push(struct items *it, size_t ridx, const char *feature, json_t *alert)
{
    if (it->n == it->cap) {
        it->cap = it->cap ? it->cap * 2 : 8;
        it->v = dw_realloc(it->v, it->cap * sizeof(*it->v));
    }
    it->v[it->n].ridx = ridx;
    it->v[it->n].feature = feature ? dw_strdup(feature) : NULL;
    it->v[it->n].alert = alert;
    it->n++;
}

static int cmp_item(const void *a, const void *b)
{
    const struct item *x = a;
    const struct item *y = b;
    if (x->ridx != y->ridx) {
        return x->ridx < y->ridx ? -1 : 1;
    }
    if (!x->feature || !y->feature) {
        return (x->feature != NULL) - (y->feature != NULL);
    }
    return strcmp(x->feature, y->feature);
}

/* Sorts the items and moves their alerts into a new JSON array; frees the items. */
static json_t *items_to_array(struct items *it)
{
    json_t *arr = json_array();
    if (it->n > 0) {
        qsort(it->v, it->n, sizeof(*it->v), cmp_item);
    }
    for (size_t i = 0; i < it->n; i++) {
        json_array_append_new(arr, it->v[i].alert);
        free(it->v[i].feature);
    }
    free(it->v);
    memset(it, 0, sizeof(*it));
    return arr;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const struct rview *find_rview(const struct rview *rv, size_t n, const char *name)
{
    if (!name) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rv[i].rule->name, name) == 0) {
            return &rv[i];
        }
    }
    return NULL;
}

/*
 * Follows the dotted path [p, p + len) from node through nested objects. *parent is the object
 * the last segment was read from (NULL when len is 0).
 * @returns the member, or NULL when a segment is missing or crosses a non-object.
 */
static json_t *resolve(json_t *node, const char *p, size_t len, json_t **parent)
{
    *parent = NULL;
    while (len > 0 && node) {
        size_t seg = 0;
        while (seg < len && p[seg] != '.') {
            seg++;
        }
        if (!json_is_object(node)) {
            return NULL;
        }
        *parent = node;
        node = json_object_getn(node, p, seg);
        p += seg;
        len -= seg;
        if (len > 0) {
            p++;
            len--;
        }
    }
    return node;
}

/* The object whose keys a "*" rule iterates (the features), or NULL. */
static json_t *star_object(const struct rview *rv, json_t *report)
{
    json_t *parent = NULL;
    json_t *obj = rv->pre_len ? resolve(report, rv->rule->expr.path, rv->pre_len, &parent) : report;
    return json_is_object(obj) ? obj : NULL;
}

/* What a report says about one instance. */
struct obs {
    int active;
    json_t *value;      /* new reference, or NULL: no value */
    json_t *threshold;  /* new reference, or NULL */
    const char *method; /* borrowed from the report, or NULL */
};

static int compare(double v, enum dw_rule_op op, double t)
{
    switch (op) {
    case DW_OP_LT:
        return v < t;
    case DW_OP_LE:
        return v <= t;
    case DW_OP_GT:
        return v > t;
    case DW_OP_GE:
        return v >= t;
    case DW_OP_EQ:
        return v == t;
    case DW_OP_NE:
        return v != t;
    case DW_OP_TRUE:
        break;
    }
    return 0;
}

static void observe(const struct rview *rv, json_t *report, const char *feature, struct obs *o)
{
    const struct dw_rule_expr *e = &rv->rule->expr;
    json_t *parent = NULL;
    json_t *node = NULL;
    memset(o, 0, sizeof(*o));
    if (rv->star) {
        json_t *obj = star_object(rv, report);
        json_t *inst = obj ? json_object_get(obj, feature) : NULL;
        node = resolve(inst, rv->suf, strlen(rv->suf), &parent);
    } else {
        node = resolve(report, e->path, strlen(e->path), &parent);
    }
    if (e->op == DW_OP_TRUE) {
        o->active = json_is_true(node);
        json_t *num = parent ? json_object_get(parent, "score") : NULL;
        if (!json_is_number(num)) {
            num = parent ? json_object_get(parent, "value") : NULL;
        }
        if (json_is_number(num)) {
            o->value = json_deep_copy(num);
        } else if (json_is_boolean(node)) {
            o->value = json_deep_copy(node);
        }
        json_t *thr = parent ? json_object_get(parent, "threshold") : NULL;
        if (json_is_number(thr)) {
            o->threshold = json_deep_copy(thr);
        }
        o->method = parent ? json_string_value(json_object_get(parent, "method")) : NULL;
        return;
    }
    o->threshold = json_real(e->threshold);
    if (json_is_number(node)) {
        o->active = compare(json_number_value(node), e->op, e->threshold);
        o->value = json_deep_copy(node);
    }
}

/* The rule's path with its "*" segment replaced by the feature name. */
static void concrete_path(const struct rview *rv, const char *feature, struct dw_sbuf *sb)
{
    const char *path = rv->rule->expr.path;
    if (!rv->star || !feature) {
        dw_sbuf_printf(sb, "%s", path);
        return;
    }
    if (rv->pre_len > 0) {
        dw_sbuf_printf(sb, "%.*s.", (int)rv->pre_len, path);
    }
    dw_sbuf_printf(sb, "%s", feature);
    if (rv->suf[0]) {
        dw_sbuf_printf(sb, ".%s", rv->suf);
    }
}

static int path_ends_with_drift(const char *path)
{
    const char *dot = strrchr(path, '.');
    return strcmp(dot ? dot + 1 : path, "drift") == 0;
}

/* The built-in summary (see dw_rules.h). */
static char *default_summary(const struct step_ctx *cx, const struct rview *rv, const char *feature,
                             const json_t *inst, int resolved)
{
    const struct dw_rule_expr *e = &rv->rule->expr;
    json_t *value = json_object_get(inst, "value");
    json_t *thr = json_object_get(inst, "threshold");
    const char *method = json_string_value(json_object_get(inst, "method"));
    char vs[NUM_BUF];
    char ts[NUM_BUF];
    fmt_scalar(value, vs, sizeof(vs));
    fmt_scalar(thr, ts, sizeof(ts));
    int feature_drift = e->op == DW_OP_TRUE && feature && path_ends_with_drift(e->path);
    struct dw_sbuf sb = {0};
    struct dw_sbuf path = {0};
    concrete_path(rv, feature, &path);

    dw_sbuf_printf(&sb, "%s: ", cx->model);
    if (!resolved) {
        if (feature_drift) {
            dw_sbuf_printf(&sb, "feature %s drifted", feature);
            if (json_is_number(value) && json_is_number(thr)) {
                dw_sbuf_printf(
                    &sb, " (%s %s %s %s)", method ? method : "score", vs,
                    json_number_value(value) <= json_number_value(thr) ? "<=" : ">=", ts);
            } else if (json_is_number(value)) {
                dw_sbuf_printf(&sb, " (%s %s)", method ? method : "score", vs);
            }
        } else if (e->op == DW_OP_TRUE) {
            dw_sbuf_printf(&sb, "%s is true", path.s);
            if (json_is_number(value)) {
                dw_sbuf_printf(&sb, " (value %s", vs);
                if (json_is_number(thr)) {
                    dw_sbuf_printf(&sb, ", threshold %s", ts);
                }
                dw_sbuf_printf(&sb, ")");
            }
        } else {
            dw_sbuf_printf(&sb, "%s %s %s %s", path.s, vs, op_text(e->op), ts);
        }
    } else {
        if (feature_drift) {
            dw_sbuf_printf(&sb, "feature %s no longer drifting", feature);
        } else if (e->op == DW_OP_TRUE) {
            dw_sbuf_printf(&sb, "%s no longer true", path.s);
        } else {
            dw_sbuf_printf(&sb, "%s %s %s resolved", path.s, op_text(e->op), ts);
        }
        if (json_is_number(value)) {
            dw_sbuf_printf(&sb, " (now %s)", vs);
        }
    }
    free(path.s);
    return dw_sbuf_take(&sb);
}

/* What a template can name. */
struct tpl_ctx {
    const char *model;
    const char *feature; /* "" when none */
    const char *rule;
    const char *value;
    const char *threshold;
    const char *severity;
    const char *win_start;
    const char *win_end; /* "" when none */
    const json_t *labels;
    json_t *report; /* the report stepped: {{report.<path>}} */
};

static int name_is(const char *name, size_t len, const char *s)
{
    return dw_str_is(s, name, len);
}

/* @returns the replacement of {{name}}, or NULL when the name is unknown. */
static const char *tpl_lookup(const struct tpl_ctx *t, const char *name, size_t len)
{
    static const char labels_prefix[] = "labels.";
    const size_t plen = sizeof(labels_prefix) - 1;
    if (name_is(name, len, "model")) {
        return t->model;
    }
    if (name_is(name, len, "feature")) {
        return t->feature;
    }
    if (name_is(name, len, "rule")) {
        return t->rule;
    }
    if (name_is(name, len, "value")) {
        return t->value;
    }
    if (name_is(name, len, "threshold")) {
        return t->threshold;
    }
    if (name_is(name, len, "severity")) {
        return t->severity;
    }
    if (name_is(name, len, "window_start")) {
        return t->win_start;
    }
    if (name_is(name, len, "window_end")) {
        return t->win_end;
    }
    if (len > plen && memcmp(name, labels_prefix, plen) == 0) {
        return json_string_value(json_object_getn(t->labels, name + plen, len - plen));
    }
    static const char report_prefix[] = "report.";
    const size_t rlen = sizeof(report_prefix) - 1;
    if (len > rlen && memcmp(name, report_prefix, rlen) == 0) {
        json_t *parent;
        return json_string_value(resolve(t->report, name + rlen, len - rlen, &parent));
    }
    return NULL;
}

/* Replaces every known {{ name }} of tpl; unknown names and unclosed braces stay as written. */
static char *render(const char *tpl, const struct tpl_ctx *t)
{
    struct dw_sbuf sb = {0};
    const char *p = tpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            dw_sbuf_add(&sb, p, strlen(p));
            break;
        }
        dw_sbuf_add(&sb, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            dw_sbuf_add(&sb, open, strlen(open));
            break;
        }
        const char *name = open + 2;
        const char *name_end = close;
        while (name < name_end && isspace((unsigned char)*name)) {
            name++;
        }
        while (name_end > name && isspace((unsigned char)name_end[-1])) {
            name_end--;
        }
        const char *rep = tpl_lookup(t, name, (size_t)(name_end - name));
        if (rep) {
            dw_sbuf_add(&sb, rep, strlen(rep));
        } else {
            dw_sbuf_add(&sb, open, (size_t)(close + 2 - open));
        }
        p = close + 2;
    }
    return dw_sbuf_take(&sb);
}

static json_t *copy_or_null(json_t *v)
{
    return v ? json_deep_copy(v) : json_null();
}

/* The alert object of an instance (format in dw_rules.h). */
static json_t *build_alert(const struct step_ctx *cx, const struct rview *rv, const char *fp,
                           const json_t *inst, int resolved, int repeat)
{
    const struct dw_rule *r = rv->rule;
    const char *feature = json_string_value(json_object_get(inst, "feature"));
    const char *sev = dw_severity_name(r->severity);
    json_t *a = json_object();
    json_object_set_new(a, "fingerprint", json_string(fp));
    json_object_set_new(a, "rule", json_string(r->name));
    json_object_set_new(a, "feature", feature ? json_string(feature) : json_null());
    json_object_set_new(
        a, "status",
        json_string(dw_alert_state_name(resolved ? DW_ALERT_RESOLVED : DW_ALERT_FIRING)));
    json_object_set_new(a, "severity", json_string(sev));
    json_object_set_new(a, "repeat", json_boolean(repeat));
    json_t *value = json_object_get(inst, "value");
    json_t *thr = json_object_get(inst, "threshold");
    json_object_set_new(a, "value", copy_or_null(value));
    json_object_set_new(a, "threshold", copy_or_null(thr));
    json_t *fired = json_object_get(inst, "fired_ms");
    if (json_is_integer(fired)) {
        char buf[TIME_BUF];
        dw_time_format_rfc3339((int64_t)json_integer_value(fired), buf, sizeof(buf));
        json_object_set_new(a, "starts_at", json_string(buf));
    } else {
        json_object_set_new(a, "starts_at", json_null());
    }
    if (resolved) {
        json_object_set_new(a, "ends_at", cx->win_end ? json_string(cx->win_end) : json_null());
    }

    json_t *labels = json_object();
    json_object_set_new(labels, "alertname", json_string(r->name));
    json_object_set_new(labels, "model", json_string(cx->model));
    if (feature) {
        json_object_set_new(labels, "feature", json_string(feature));
    }
    json_object_set_new(labels, "severity", json_string(sev));
    for (size_t i = 0; i < r->n_labels; i++) {
        if (r->labels[i].key && r->labels[i].value && !json_object_get(labels, r->labels[i].key)) {
            json_object_set_new(labels, r->labels[i].key, json_string(r->labels[i].value));
        }
    }

    char vs[NUM_BUF];
    char ts[NUM_BUF];
    fmt_scalar(value, vs, sizeof(vs));
    fmt_scalar(thr, ts, sizeof(ts));
    struct tpl_ctx t = {
        .model = cx->model,
        .feature = feature ? feature : "",
        .rule = r->name,
        .value = vs,
        .threshold = ts,
        .severity = sev,
        .win_start = cx->win_start,
        .win_end = cx->win_end ? cx->win_end : "",
        .labels = labels,
        .report = cx->report,
    };
    json_t *ann = json_object();
    char *summary =
        r->summary ? render(r->summary, &t) : default_summary(cx, rv, feature, inst, resolved);
    json_object_set_new(ann, "summary", json_string(summary));
    free(summary);
    if (r->description) {
        char *d = render(r->description, &t);
        json_object_set_new(ann, "description", json_string(d));
        free(d);
    }
    if (r->runbook_url) {
        char *u = render(r->runbook_url, &t);
        json_object_set_new(ann, "runbook_url", json_string(u));
        free(u);
    }
    json_object_set_new(a, "labels", labels);
    json_object_set_new(a, "annotations", ann);
    return a;
}

/* Features of a "*" rule in this step: the report's keys and the state's instances, sorted,
 * unique (malloc'ed strings). */
static char **star_features(const struct rview *rv, json_t *report, json_t *state, size_t *n_out)
{
    size_t n = 0;
    size_t cap = 8;
    char **names = dw_malloc(cap * sizeof(*names));
    json_t *obj = star_object(rv, report);
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (n == cap) {
            cap *= 2;
            names = dw_realloc(names, cap * sizeof(*names));
        }
        names[n++] = dw_strdup(key);
    }
    json_object_foreach(state, key, val)
    {
        const char *rule = json_string_value(json_object_get(val, "rule"));
        const char *feature = json_string_value(json_object_get(val, "feature"));
        if (!rule || !feature || strcmp(rule, rv->rule->name) != 0) {
            continue;
        }
        if (n == cap) {
            cap *= 2;
            names = dw_realloc(names, cap * sizeof(*names));
        }
        names[n++] = dw_strdup(feature);
    }
    if (n > 0) {
        qsort(names, n, sizeof(*names), cmp_str);
    }
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && strcmp(names[u - 1], names[i]) == 0) {
            free(names[i]);
            continue;
        }
        names[u++] = names[i];
    }
    *n_out = u;
    return names;
}

/* Pass 2 for one instance: observe, move, and queue a resolved alert. */
static void step_instance(const struct step_ctx *cx, const struct rview *rv, json_t *report,
                          json_t *state, const char *feature, struct items *alerts)
{
    const struct dw_rule *r = rv->rule;
    char fp[2 * FP_BYTES + 1];
    dw_rule_fingerprint(cx->model, r->name, feature ? feature : "", fp);
    json_t *inst = json_object_get(state, fp);
    if (inst && jint(inst, "last_ms", INT64_MIN) >= cx->start_ms) {
        return; /* this window was already evaluated */
    }
    struct obs o;
    observe(rv, report, feature, &o);
    if (!inst) {
        if (!o.active) {
            goto out;
        }
        inst = json_object();
        json_object_set_new(inst, "rule", json_string(r->name));
        json_object_set_new(inst, "feature", feature ? json_string(feature) : json_null());
        json_object_set_new(inst, "state", json_string(dw_alert_state_name(DW_ALERT_PENDING)));
        set_int(inst, "active", 0);
        set_int(inst, "inactive", 0);
        set_int(inst, "active_since_ms", cx->start_ms);
        json_object_set_new(inst, "fired_ms", json_null());
        json_object_set_new(inst, "notified", json_false());
        json_object_set_new(inst, "last_sent_ms", json_null());
        json_object_set_new(state, fp, inst);
    }
    json_object_set_new(inst, "value", o.value ? o.value : json_null());
    o.value = NULL;
    json_object_set_new(inst, "threshold", o.threshold ? o.threshold : json_null());
    o.threshold = NULL;
    if (o.method) {
        json_object_set_new(inst, "method", json_string(o.method));
    } else {
        json_object_del(inst, "method");
    }
    set_int(inst, "last_ms", cx->start_ms);

    int firing = inst_state(inst) == DW_ALERT_FIRING;
    int64_t for_windows = DW_MAX(r->for_windows, 1);
    int64_t keep = DW_MAX(r->keep_firing_windows, 0);
    /* A report of a run of empty windows counts as that many windows; a transition inside
     * the run is dated by the window in which the count reached its limit. */
    if (o.active) {
        int64_t before = DW_MAX(jint(inst, "active", 0), 0);
        int64_t active = count_add(before, cx->n_windows);
        set_int(inst, "active", active);
        set_int(inst, "inactive", 0);
        if (!firing && active >= for_windows) {
            json_object_set_new(inst, "state", json_string(dw_alert_state_name(DW_ALERT_FIRING)));
            set_int(inst, "fired_ms",
                    cx->start_ms + DW_MAX(for_windows - before - 1, 0) * cx->win_ms);
        }
    } else if (!firing) {
        json_object_del(state, fp); /* pending -> inactive: no notification */
    } else {
        int64_t before = DW_MAX(jint(inst, "inactive", 0), 0);
        int64_t inactive = count_add(before, cx->n_windows);
        set_int(inst, "active", 0);
        set_int(inst, "inactive", inactive);
        if (inactive > keep) {
            if (json_is_true(json_object_get(inst, "notified"))) {
                struct step_ctx at = *cx; /* ends with the window that resolved it */
                char end[TIME_BUF];
                if (cx->n_windows > 1 && cx->win_ms > 0) {
                    dw_time_format_rfc3339(cx->start_ms + (keep - before + 1) * cx->win_ms, end,
                                           sizeof(end));
                    at.win_end = end;
                }
                items_push(alerts, rv->idx, feature, build_alert(&at, rv, fp, inst, 1, 0));
            }
            json_object_del(state, fp);
        }
    }
out:
    json_decref(o.value);
    json_decref(o.threshold);
}

json_t *dw_rules_step(const char *group, const struct dw_rule *rules, size_t n_rules,
                      const json_t *report_c, json_t *state)
{
    /* jansson's getters take non-const pointers; the report is only read. */
    json_t *report = (json_t *)report_c;
    struct step_ctx cx;
    json_t *ms = json_object_get(report, "window_start_ms");
    cx.model = json_string_value(json_object_get(report, "model"));
    if (!cx.model || !json_is_integer(ms) || !json_is_object(state)) {
        return NULL;
    }
    cx.start_ms = (int64_t)json_integer_value(ms);
    cx.report = report;
    cx.stage = json_is_true(json_object_get(report, "final")) ? DW_STAGE_FINAL : DW_STAGE_CLOSE;
    char start_buf[TIME_BUF];
    cx.win_start = json_string_value(json_object_get(report, "window_start"));
    if (!cx.win_start) {
        dw_time_format_rfc3339(cx.start_ms, start_buf, sizeof(start_buf));
        cx.win_start = start_buf;
    }
    cx.win_end = json_string_value(json_object_get(report, "window_end"));
    cx.n_windows = DW_MAX(jint(report, "empty_windows", 1), 1);
    cx.win_ms = 0;
    int64_t end_ms;
    if (cx.win_end && dw_time_parse_rfc3339(cx.win_end, strlen(cx.win_end), &end_ms) == 0 &&
        end_ms > cx.start_ms) {
        cx.win_ms = (end_ms - cx.start_ms) / cx.n_windows;
    }
    cx.last_ms = cx.start_ms + (cx.n_windows - 1) * cx.win_ms;

    /* The rules of this model, both stages. */
    struct rview *rv = dw_calloc(n_rules ? n_rules : 1, sizeof(*rv));
    size_t n_rv = 0;
    for (size_t i = 0; i < n_rules; i++) {
        const struct dw_rule *r = &rules[i];
        if (!r->name || (r->model && strcmp(r->model, cx.model) != 0)) {
            continue;
        }
        struct rview *v = &rv[n_rv++];
        v->rule = r;
        v->idx = i;
        v->stage = dw_rule_stage_of(r);
        const char *path = r->expr.path;
        const char *star = strchr(path, '*');
        v->star = star != NULL;
        v->pre_len = star && star > path ? (size_t)(star - path - 1) : 0;
        v->suf = star ? (star[1] == '.' ? star + 2 : star + 1) : "";
    }

    /* 1. Instances no rule of this model owns any more. */
    const char *key;
    json_t *inst;
    void *tmp;
    json_object_foreach_safe(state, tmp, key, inst)
    {
        const char *name = json_string_value(json_object_get(inst, "rule"));
        if (!json_is_object(inst) || !find_rview(rv, n_rv, name)) {
            json_object_del(state, key);
        }
    }

    /* 2. Transitions of this stage's rules. */
    struct items alerts = {0};
    struct items firing = {0};
    for (size_t i = 0; i < n_rv; i++) {
        if (rv[i].stage != cx.stage) {
            continue;
        }
        if (!rv[i].star) {
            step_instance(&cx, &rv[i], report, state, NULL, &alerts);
            continue;
        }
        size_t n_feat = 0;
        char **feats = star_features(&rv[i], report, state, &n_feat);
        for (size_t f = 0; f < n_feat; f++) {
            step_instance(&cx, &rv[i], report, state, feats[f], &alerts);
            free(feats[f]);
        }
        free(feats);
    }

    /* 3. Inhibition. */
    int inhibited = 0;
    json_object_foreach(state, key, inst)
    {
        const struct rview *v =
            find_rview(rv, n_rv, json_string_value(json_object_get(inst, "rule")));
        if (v && v->rule->inhibits_features && inst_state(inst) == DW_ALERT_FIRING) {
            inhibited = 1;
        }
    }

    /* 4. Firing notices, repeats and the firing list. */
    json_object_foreach(state, key, inst)
    {
        const struct rview *v =
            find_rview(rv, n_rv, json_string_value(json_object_get(inst, "rule")));
        if (!v || inst_state(inst) != DW_ALERT_FIRING) {
            continue;
        }
        if (inhibited && v->star && !v->rule->inhibits_features) {
            continue; /* muted */
        }
        int send = 0;
        int repeat = 0;
        json_t *last_sent = json_object_get(inst, "last_sent_ms");
        if (!json_is_true(json_object_get(inst, "notified"))) {
            send = 1;
        } else if (v->stage == cx.stage && v->rule->repeat_interval_ms > 0 &&
                   json_is_integer(last_sent) &&
                   elapsed_at_least((int64_t)json_integer_value(last_sent), cx.last_ms,
                                    v->rule->repeat_interval_ms)) {
            send = 1;
            repeat = 1;
        }
        if (send) {
            /* An instance of the other stage notified here counts from its own latest window. */
            json_object_set_new(inst, "notified", json_true());
            set_int(inst, "last_sent_ms", DW_MAX(cx.last_ms, jint(inst, "last_ms", cx.start_ms)));
        }
        const char *feature = json_string_value(json_object_get(inst, "feature"));
        json_t *a = build_alert(&cx, v, key, inst, 0, repeat);
        if (send) {
            items_push(&alerts, v->idx, feature, json_deep_copy(a));
        }
        items_push(&firing, v->idx, feature, a);
    }
    free(rv);

    if (alerts.n == 0 && firing.n == 0) {
        free(alerts.v);
        free(firing.v);
        return NULL;
    }
    const char *stage_name = cx.stage == DW_STAGE_FINAL ? "final" : "close";
    char *id = dw_idempotency_key(group, cx.model, cx.start_ms,
                                  cx.stage == DW_STAGE_FINAL ? "alerts-final" : "alerts-close");
    json_t *out = json_object();
    json_object_set_new(out, "id", json_string(id));
    free(id);
    json_object_set_new(out, "model", json_string(cx.model));
    json_object_set_new(out, "window_start", json_string(cx.win_start));
    json_object_set_new(out, "window_end", cx.win_end ? json_string(cx.win_end) : json_null());
    set_int(out, "window_start_ms", cx.start_ms);
    json_object_set_new(out, "stage", json_string(stage_name));
    json_object_set_new(out, "alerts", items_to_array(&alerts));
    json_object_set_new(out, "firing", items_to_array(&firing));
    return out;
}

json_t *dw_rules_alert_summary(const json_t *alert)
{
    static const char *const keys[] = {"rule",  "feature",   "severity",
                                       "value", "threshold", "starts_at"};
    json_t *out = json_object();
    for (size_t k = 0; k < DW_ARRAY_SIZE(keys); k++) {
        json_t *v = json_object_get(alert, keys[k]);
        json_object_set_new(out, keys[k], v ? json_deep_copy(v) : json_null());
    }
    return out;
}
