/*
 * dw_api.c - the status page (GET /) and the reports API (GET /api/v1/models,
 * /api/v1/models/<m>/reports, /api/v1/models/<m>/reference), read from Redis.
 *
 * Why this shape:
 * - Any pod must answer, and with the same data: the reports live in Redis (the evaluator pod
 *   writes them), so each request reads them there. Snapshots refreshed by the main loop (as
 *   /api/v1/canary/ is served) would mean copying every report within window.retention into
 *   every pod's memory each evaluation interval to answer an arbitrary from/to range; the
 *   canary documents are two per model, the reports are thousands.
 * - The HTTP threads must never use the main loop's connection (a dw_redis is one thread's),
 *   so a request opens its own connection (dw_redis_connect: AUTH, SELECT, redis.timeout on
 *   every command) and closes it when done. On loopback or in-cluster that costs about a
 *   millisecond, small against reading the reports; it needs no pool to size or to reconnect.
 *   At most DW_API_CONCURRENCY requests hold a connection at once; another one gets 503 at
 *   once (a page reload storm cannot open hundreds of Redis connections, and the probes, on
 *   their own connection threads of dw_http, are never behind it).
 * - Paging: the reports of a model are listed with a SCAN of report:<model>:*, sorted by
 *   window start, filtered by from/to (window start, inclusive from, exclusive to) and
 *   stage, and read in order until `limit` match. The cursor is the window start of the next
 *   report to read, so pages are stable while new windows arrive (they come after) and a
 *   report that expires between two pages is simply not returned. Ranges are bounded by
 *   window.retention; a SCAN of a model's keys is what `inspect` does too.
 * - Errors are JSON {"error": ...} naming the bad parameter (400), the unknown model (404,
 *   with the configured ones) or what Redis said (503): a client must tell "nothing there"
 *   from "could not look".
 */
#include "driftwatch/cmd/dw_api.h"

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_statuspage.h"
#include "driftwatch/io/dw_log.h"
#include "driftwatch/io/dw_redis.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Requests that may hold a Redis connection at the same time (count). */
#define DW_API_CONCURRENCY 4

/* Reports per page: default and most a client may ask for (count). */
#define DW_API_LIMIT_DEFAULT 50
#define DW_API_LIMIT_MAX 500

#define API_JSON "application/json"
#define API_HTML "text/html; charset=utf-8"
#define MODELS_PREFIX "/api/v1/models"

struct dw_api {
    const struct dw_config *cfg;
    atomic_int busy; /* requests holding a connection */
};

struct dw_api *dw_api_new(const struct dw_config *cfg)
{
    struct dw_api *api = dw_calloc(1, sizeof(*api));
    api->cfg = cfg;
    atomic_init(&api->busy, 0);
    return api;
}

void dw_api_free(struct dw_api *api)
{
    free(api);
}

/* Fills out with doc (stolen) as compact JSON. */
static int reply_json(struct dw_http_reply *out, unsigned int code, json_t *doc)
{
    out->code = code;
    out->content_type = API_JSON;
    out->body = json_dumps(doc, JSON_COMPACT);
    out->len = out->body ? strlen(out->body) : 0;
    json_decref(doc);
    return 1;
}

static int reply_error(struct dw_http_reply *out, unsigned int code, const char *msg)
{
    return reply_json(out, code, json_pack("{s:s}", "error", msg));
}

static const struct dw_model_cfg *find_model(const struct dw_config *cfg, const char *name,
                                             size_t len)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (dw_str_is(cfg->models[i].name, name, len)) {
            return &cfg->models[i];
        }
    }
    return NULL;
}

static json_t *model_names(const struct dw_config *cfg)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->n_models; i++) {
        json_array_append_new(a, json_string(cfg->models[i].name));
    }
    return a;
}

/* Global key `name` as JSON into *out (NULL: absent or not JSON, logged). @returns 0, -1. */
static int read_json(struct dw_redis *r, const char *name, json_t **out)
{
    return dw_redis_read_json(r, name, "api_corrupt", "stored document not JSON; not shown", out);
}

/* The firing alerts of model m (the last notification's "firing" list; [] when none). */
static int read_firing(struct dw_redis *r, const struct dw_model_cfg *m, json_t **out)
{
    char name[DW_REDIS_NAME_MAX];
    json_t *note = NULL;
    dw_redis_name_firing(m->name, name, sizeof(name));
    if (read_json(r, name, &note) != 0) {
        return -1;
    }
    json_t *firing = json_object_get(note, "firing");
    *out = json_is_array(firing) ? json_incref(firing) : json_array();
    json_decref(note);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The model's report starts, ascending. @returns 0, -1 Redis error. */
static int sorted_starts(struct dw_redis *r, const struct dw_model_cfg *m, int64_t **starts,
                         size_t *n)
{
    if (dw_redis_report_starts(r, m->name, starts, n) != 0) {
        return -1;
    }
    qsort(*starts, *n, sizeof(**starts), cmp_i64);
    return 0;
}

/* report:<model>:<start> as JSON (NULL: expired since the SCAN, or corrupt). */
static int read_report(struct dw_redis *r, const struct dw_model_cfg *m, int64_t start,
                       json_t **out)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_report(m->name, start, name, sizeof(name));
    return read_json(r, name, out);
}

/* ---- GET /api/v1/models ---- */

static int serve_models(struct dw_api *api, struct dw_redis *r, struct dw_http_reply *out)
{
    json_t *models = json_array();
    for (size_t mi = 0; mi < api->cfg->n_models; mi++) {
        const struct dw_model_cfg *m = &api->cfg->models[mi];
        json_t *latest = json_object(), *firing = NULL;
        static const char *const stages[] = {"close", "final"};
        int failed = read_firing(r, m, &firing) != 0;
        for (size_t s = 0; s < 2 && !failed; s++) {
            char name[DW_REDIS_NAME_MAX];
            json_t *digest = NULL;
            dw_redis_name_model_metrics(m->name, stages[s], name, sizeof(name));
            failed = read_json(r, name, &digest) != 0;
            json_object_set_new(latest, stages[s], digest ? digest : json_null());
        }
        if (failed) {
            json_decref(latest);
            json_decref(firing);
            json_decref(models);
            return reply_error(out, 503, "redis: cannot read the models' latest reports");
        }
        json_t *feats = json_array();
        for (size_t f = 0; f < m->n_features; f++) {
            json_array_append_new(feats, json_string(m->features[f].name));
        }
        json_array_append_new(
            models, json_pack("{s:s,s:s,s:o,s:o,s:o}", "name", m->name, "task",
                              m->task == DW_TASK_REGRESSION ? "regression" : "classification",
                              "features", feats, "latest", latest, "firing", firing));
    }
    return reply_json(out, 200, json_pack("{s:s,s:o}", "group", api->cfg->group, "models", models));
}

/* ---- GET /api/v1/models/<m>/reports ---- */

/* A time parameter: milliseconds since the epoch or RFC 3339. @returns 0, -1 (bad). */
static int time_arg(const struct dw_http_request *req, const char *name, int64_t *out)
{
    const char *v = dw_http_arg(req, name);
    if (!v) {
        return 0;
    }
    if (dw_parse_i64(v, strlen(v), INT64_MIN, INT64_MAX, out) == 0) {
        return 0;
    }
    return dw_time_parse_rfc3339(v, strlen(v), out) == 0 ? 0 : -1;
}

static int serve_reports(struct dw_api *api, struct dw_redis *r, const struct dw_model_cfg *m,
                         const struct dw_http_request *req, struct dw_http_reply *out)
{
    int64_t from = INT64_MIN, to = INT64_MAX, cursor = INT64_MIN, limit = DW_API_LIMIT_DEFAULT;
    char msg[256];
    (void)api;
    if (time_arg(req, "from", &from) != 0 || time_arg(req, "to", &to) != 0) {
        return reply_error(out, 400,
                           "from and to: a window start in milliseconds since the epoch or an "
                           "RFC 3339 time (2026-01-01T00:00:00Z)");
    }
    const char *stage = dw_http_arg(req, "stage");
    if (stage && strcmp(stage, "close") != 0 && strcmp(stage, "final") != 0) {
        return reply_error(out, 400, "stage: close or final");
    }
    const char *lim = dw_http_arg(req, "limit");
    if (lim && dw_parse_i64(lim, strlen(lim), 1, DW_API_LIMIT_MAX, &limit) != 0) {
        snprintf(msg, sizeof(msg), "limit: an integer from 1 to %d", DW_API_LIMIT_MAX);
        return reply_error(out, 400, msg);
    }
    const char *cur = dw_http_arg(req, "cursor");
    if (cur && dw_parse_i64(cur, strlen(cur), INT64_MIN, INT64_MAX, &cursor) != 0) {
        return reply_error(out, 400, "cursor: the next_cursor of the previous page, unchanged");
    }
    int64_t *starts = NULL;
    size_t n = 0;
    if (sorted_starts(r, m, &starts, &n) != 0) {
        return reply_error(out, 503, "redis: cannot list the model's reports");
    }
    json_t *reports = json_array();
    json_t *next = json_null();
    for (size_t i = 0; i < n; i++) {
        int64_t s = starts[i];
        if (s < from || s >= to || s < cursor) {
            continue;
        }
        if ((int64_t)json_array_size(reports) == limit) {
            json_decref(next);
            char buf[32];
            snprintf(buf, sizeof(buf), "%lld", (long long)s);
            next = json_string(buf);
            break;
        }
        json_t *rep = NULL;
        if (read_report(r, m, s, &rep) != 0) {
            free(starts);
            json_decref(reports);
            json_decref(next);
            return reply_error(out, 503, "redis: cannot read a report");
        }
        const char *st = json_is_true(json_object_get(rep, "final")) ? "final" : "close";
        if (rep && (!stage || strcmp(stage, st) == 0)) {
            json_array_append_new(reports, rep);
        } else {
            json_decref(rep);
        }
    }
    free(starts);
    return reply_json(
        out, 200,
        json_pack("{s:s,s:o,s:o}", "model", m->name, "reports", reports, "next_cursor", next));
}

/* ---- GET / ---- */

static int serve_page(struct dw_api *api, struct dw_redis *r, struct dw_http_reply *out)
{
    json_t *models = json_array();
    for (size_t mi = 0; mi < api->cfg->n_models; mi++) {
        const struct dw_model_cfg *m = &api->cfg->models[mi];
        json_t *doc = json_pack("{s:s}", "name", m->name);
        json_t *firing = NULL, *reports = json_array();
        int64_t *starts = NULL;
        size_t n = 0;
        int failed = read_firing(r, m, &firing) != 0 || sorted_starts(r, m, &starts, &n) != 0;
        size_t first = n > DW_STATUSPAGE_WINDOWS ? n - DW_STATUSPAGE_WINDOWS : 0;
        for (size_t i = first; i < n && !failed; i++) {
            json_t *rep = NULL;
            failed = read_report(r, m, starts[i], &rep) != 0;
            if (rep) {
                json_array_append_new(reports, rep);
            }
        }
        free(starts);
        if (failed) {
            json_object_set_new(doc, "error", json_string("redis: cannot read the reports"));
        }
        json_object_set_new(doc, "firing", firing ? firing : json_array());
        json_object_set_new(doc, "reports", reports);
        json_array_append_new(models, doc);
    }
    json_t *page = json_pack("{s:s,s:I,s:o}", "group", api->cfg->group, "generated_ms",
                             (json_int_t)dw_now_ms(), "models", models);
    out->code = 200;
    out->content_type = API_HTML;
    out->body = dw_statuspage_render(page);
    out->len = strlen(out->body);
    json_decref(page);
    return 1;
}

/* Routes url (a path under the API, or /) with a connection open. */
static int route(struct dw_api *api, struct dw_redis *r, const char *url,
                 const struct dw_http_request *req, struct dw_http_reply *out)
{
    if (strcmp(url, "/") == 0) {
        return serve_page(api, r, out);
    }
    const char *rest = url + strlen(MODELS_PREFIX);
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        return serve_models(api, r, out);
    }
    /* /<model>/reports or /<model>/reference */
    const char *name = rest + 1;
    const char *slash = strrchr(name, '/');
    if (!slash || slash == name) {
        return reply_error(out, 404,
                           "not found: /api/v1/models, /api/v1/models/<model>/reports or "
                           "/api/v1/models/<model>/reference");
    }
    const struct dw_model_cfg *m = find_model(api->cfg, name, (size_t)(slash - name));
    if (!m) {
        json_t *err = json_pack("{s:s,s:s%,s:o}", "error", "no such model", "model", name,
                                (size_t)(slash - name), "models", model_names(api->cfg));
        return reply_json(out, 404, err);
    }
    if (strcmp(slash, "/reports") == 0) {
        return serve_reports(api, r, m, req, out);
    }
    if (strcmp(slash, "/reference") == 0) {
        char errstr[1024];
        json_t *doc = dw_reference_show_json(r, api->cfg, m, errstr, sizeof(errstr));
        return doc ? reply_json(out, 200, doc) : reply_error(out, 503, errstr);
    }
    return reply_error(out, 404, "not found: /api/v1/models/<model>/reports or /reference");
}

int dw_api_serve(void *ctx, const char *url, const struct dw_http_request *req,
                 struct dw_http_reply *out)
{
    struct dw_api *api = ctx;
    if (strcmp(url, "/") != 0 && strncmp(url, MODELS_PREFIX, strlen(MODELS_PREFIX)) != 0) {
        return 0;
    }
    if (strcmp(url, "/") != 0 && url[strlen(MODELS_PREFIX)] != '\0' &&
        url[strlen(MODELS_PREFIX)] != '/') {
        return 0; /* /api/v1/modelsX */
    }
    if (atomic_fetch_add(&api->busy, 1) >= DW_API_CONCURRENCY) {
        atomic_fetch_sub(&api->busy, 1);
        return reply_error(out, 503, "busy: too many requests reading Redis; retry");
    }
    char errstr[256];
    struct dw_redis *r = dw_redis_connect(api->cfg, errstr, sizeof(errstr));
    int rc;
    if (!r) {
        char msg[320];
        snprintf(msg, sizeof(msg), "redis: %s", errstr);
        rc = reply_error(out, 503, msg);
    } else {
        rc = route(api, r, url, req, out);
        dw_redis_free(r);
    }
    atomic_fetch_sub(&api->busy, 1);
    return rc;
}
