/*
 * dw_deliver.c - alert delivery to every sink: one thread, one libcurl multi handle, and a
 * Redis hash as the memory of what is still owed.
 *
 * Why one thread with a multi handle: a receiver that is slow, down or rate limiting must
 * never stall the Kafka consumer (docs/contract.md, section 5.2), nor another sink. Callers
 * only copy a message into a bounded array (a mutex held for a few pointer moves, never across
 * I/O) and wake the thread with curl_multi_wakeup(); the thread owns the multi handle and runs
 * every attempt of every sink concurrently, each with its sink's timeout. A PagerDuty endpoint
 * that takes 10 s to answer delays nothing but its own messages.
 *
 * The queue is an array of at most queue_size message pointers in submit order; a message
 * stays in it while it waits for its first attempt, while it is in flight and while it waits
 * for a retry, so "queued or in flight" never exceeds queue_size and a retry always has its
 * slot. Each loop of the thread starts every message that is due (next_at reached), oldest
 * first, up to DV_SINK_INFLIGHT_MAX transfers per sink (a sink with a backlog cannot open
 * hundreds of sockets), then sleeps in curl_multi_poll() until a socket is ready, the next
 * retry is due or a submit wakes it. A message waiting for its backoff never holds back the
 * ones behind it (no head-of-line blocking); the price is that the messages of one sink may
 * arrive out of order when one of them is retried. The exception is PagerDuty, which keys an
 * incident by dedup_key: a resolve that overtook the retry of its trigger would leave the
 * incident open for good, so a message waits while an older one with the same order key
 * (dw_sink_order_key: the fingerprint, for PagerDuty) is still queued (overtakes()). The duplicate
 * check of a submit and the scans of the thread are linear: queue_size is tens to a few thousand
 * and each scan is dwarfed by the HTTP round trips.
 *
 * Retries: dw_sink_classify() decides (transport errors, timeouts, 408, 429 and 5xx are
 * retried; other answers are final). The delay after the n-th failed attempt is
 * d = min(backoff_max, backoff_initial * 2^(n-1)), jittered uniformly in [d/2, d] ("equal
 * jitter": a floor under the delay so that a dead receiver is never re-hit at once, while the
 * retries of many pods still spread apart). A Retry-After header on 429/503 (seconds or HTTP
 * date, parsed by libcurl) replaces the computed delay, capped at backoff_max. Every attempt
 * carries the same message id (webhook-id, Idempotency-Key, dedup_key), so receivers drop
 * repeats. Logs name the receiver as scheme://host:port only: a webhook URL often carries a
 * token in its path, query or user-info.
 *
 * Persistence: the caller has written the message into the Redis hash before submitting it.
 * When a message is delivered or finally failed, the thread HDELs its field before the
 * message leaves the queue (so dw_deliver_pending() == 0 means the hash is clean, when Redis
 * is up). The Redis connection is a dw_redis of the thread's own (dw_redis.c speaks hiredis;
 * a dw_redis serves one thread at a time, so dw_deliver_resume() takes it under a second
 * mutex). A Redis error drops the connection, keeps the fields in memory (at most
 * DV_HDEL_BACKLOG_MAX) and retries DV_REDIS_RETRY_MS later on a new connection: Redis being
 * down costs at most a repeated delivery after a restart, never a crash. Fields of dropped
 * submits (queue full) are handed to the thread the same way.
 *
 * Shutdown: dw_deliver_destroy(flush_ms) lets the thread keep delivering until the queue is
 * empty, or every message left waits for a retry due after the deadline, or the deadline
 * passes; attempts started after destroy was called are bounded by the time left and those
 * still in flight at the deadline are abandoned. With persistence, what is left stays in
 * Redis for the next resume (logged); without, it is counted failed.
 *
 * curl_global_init runs once per process (pthread_once); curl_global_cleanup is never called
 * because other modules may still use libcurl at exit.
 */
#include "driftwatch/io/dw_deliver.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_log.h"
#include "driftwatch/core/dw_metrics.h"
#include "driftwatch/io/dw_redis.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#ifndef DW_VERSION
#define DW_VERSION "unknown"
#endif

/* Longest message id (bytes): it travels in request headers. */
#define DV_ID_MAX 512
/* Longest endpoint text kept for logs, scheme://host:port (bytes). */
#define DV_ENDPOINT_MAX 300
/* Concurrent attempts (HTTP transfers) per sink. */
#define DV_SINK_INFLIGHT_MAX 8
/* Longest sleep of the thread when nothing is due (milliseconds); submits wake it earlier. */
#define DV_IDLE_POLL_MS 1000
/* Delay before Redis is tried again after a failed HDEL (milliseconds). */
#define DV_REDIS_RETRY_MS 500
/* Redis connect and command timeout when the config leaves it at 0 (milliseconds). */
#define DV_REDIS_TIMEOUT_MS 2000
/* Fields per HDEL command (count). */
#define DV_HDEL_BATCH 256
/* Fields waiting for their HDEL kept in memory while Redis is down (count). */
#define DV_HDEL_BACKLOG_MAX 100000
/* Bytes of an attempt's error text (no URL in it). */
#define DV_ERROR_MAX 160
/* Upper bounds of the configuration: queue_size (messages), timeout_ms (milliseconds),
 * max_attempts (count), backoff_max_ms (milliseconds). */
#define DV_QUEUE_MAX 10000000
#define DV_TIMEOUT_MAX (3600 * 1000)
#define DV_ATTEMPTS_MAX 1000000
#define DV_BACKOFF_MAX (86400 * 1000)

enum dv_metric_id {
    DV_M_SENT = 0,
    DV_M_FAILED,
    DV_M_RETRIED,
    DV_M_DROPPED,
    DV_M_SECONDS,
    DV_M_SECONDS_COUNT,
    DV_M_N,
};

static const struct {
    const char *name;
    const char *help;
} dv_metric_defs[DV_M_N] = {
    {"driftwatch_alert_deliveries_sent_total", "Alert messages delivered (accepted by the sink)."},
    {"driftwatch_alert_deliveries_failed_total",
     "Alert messages given up: rejected, or failed on their last attempt."},
    {"driftwatch_alert_deliveries_retried_total", "Alert delivery retries scheduled."},
    {"driftwatch_alert_deliveries_dropped_total",
     "Alert messages dropped at submit (queue full or invalid id)."},
    /* Seconds from submit to the sink's 2xx, summed; the mean latency is seconds_total /
     * timed_total. (Not "_count": a counter named so fails promtool check metrics, which
     * keeps that suffix for histograms and summaries.) */
    {"driftwatch_alert_delivery_seconds_total",
     "Sum of enqueue-to-2xx latencies of delivered alerts."},
    {"driftwatch_alert_deliveries_timed_total",
     "Delivered alert messages summed in driftwatch_alert_delivery_seconds_total."},
};

#define DV_DEPTH_NAME "driftwatch_alert_queue_depth"
#define DV_DEPTH_HELP "Alerts queued or being delivered."

/* What one attempt returned. */
struct dv_result {
    enum dw_sink_outcome outcome;
    long status;            /* HTTP status, 0 = no answer */
    int64_t retry_after_ms; /* > 0: the receiver asked for this delay */
    char error[DV_ERROR_MAX];
};

struct dv_msg {
    size_t sink; /* index into dw_deliver.sinks */
    char *id;
    char *body;
    char *field;          /* Redis hash field "<sink>/<id>"; NULL once handed to the HDEL list */
    int64_t attempts;     /* attempts started so far */
    int64_t next_at;      /* monotonic milliseconds when the next attempt is due */
    int64_t submitted_us; /* monotonic microseconds at submit, for the latency metric */
    int in_flight;
    int final; /* delivered or given up; leaves the queue after its HDEL */
    /* The attempt in flight (delivery thread only). */
    CURL *easy;
    struct curl_slist *hdrs;
    struct dw_sink_request req;
};

struct dv_sink {
    const struct dw_sink_cfg *cfg;
    char endpoint[DV_ENDPOINT_MAX];
    size_t queued;    /* messages of this sink in the queue (under lock) */
    size_t in_flight; /* of which in flight (under lock) */
    /* The last message finished, for dw_deliver_result (under lock). */
    int has_last;
    enum dw_sink_outcome last_outcome;
    long last_status;
    int64_t last_attempts;
    char last_error[DV_ERROR_MAX];
    struct dw_metric *m[DV_M_N];
};

/* A growable list of Redis hash fields to HDEL (owned strings). */
struct dv_fields {
    char **v;
    size_t n;
    size_t cap;
};

/* A finished attempt, collected by the thread before it settles them together. */
struct dv_done {
    struct dv_msg *m;
    struct dv_result r;
};

struct dw_deliver {
    struct dv_sink *sinks;
    size_t n_sinks;
    size_t queue_size;
    char *key;                 /* NULL: no persistence */
    struct dw_config rcfg;     /* the Redis settings of `redis` (its strings owned) */
    const char *const *models; /* the configured models (borrowed; dw_deliver_resume) */
    size_t n_models;

    CURLM *multi;
    unsigned short rng[3];  /* erand48 state (delivery thread) */
    struct dv_msg **starts; /* scratch of the thread: messages started in one loop */
    struct dv_done *done;   /* scratch of the thread: attempts finished in one loop */
    size_t scratch_size;    /* n_sinks * DV_SINK_INFLIGHT_MAX: most transfers at once */
    struct dv_fields hdel;  /* fields to HDEL (delivery thread) */
    int64_t redis_retry_at; /* monotonic ms before which no HDEL is tried (delivery thread) */

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t settled; /* broadcast when messages leave the queue */
    struct dv_msg **items;
    size_t count;
    struct dv_fields orphans; /* fields to HDEL handed over by other threads (under lock) */
    int stopping;
    int64_t deadline_ms; /* monotonic; valid when stopping */

    pthread_mutex_t rlock;  /* the Redis connection (thread's HDEL, callers' resume) */
    struct dw_redis *redis; /* NULL without persistence */

    struct dw_metric *m_depth;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void timespec_from_mono_ms(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* ---- small helpers ---------------------------------------------------------------------- */

char *dw_deliver_field(const char *sink, const char *msg_id)
{
    size_t len = strlen(sink) + strlen(msg_id) + 2;
    char *f = dw_malloc(len);
    snprintf(f, len, "%s/%s", sink, msg_id);
    return f;
}

char *dw_deliver_record(const char *sink, const char *msg_id, const char *body, int64_t created_ms,
                        const char *model)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "sink", sink, "id", msg_id, "body", body,
                          "created_ms", (json_int_t)created_ms);
    if (!o || (model && json_object_set_new(o, "model", json_string(model)) != 0)) {
        json_decref(o);
        return NULL;
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* Appends an owned field; beyond the backlog bound the field is forgotten (freed). */
static int fields_push(struct dv_fields *f, char *field)
{
    if (f->n >= DV_HDEL_BACKLOG_MAX) {
        free(field);
        return -1;
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = dw_realloc(f->v, f->cap * sizeof(*f->v));
    }
    f->v[f->n++] = field;
    return 0;
}

static void fields_free(struct dv_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i]);
    }
    free(f->v);
    memset(f, 0, sizeof(*f));
}

/* A message id goes into header lines: bounded, no control characters (header injection). */
static int id_valid(const char *id)
{
    size_t len = 0;
    for (const char *p = id; *p; p++, len++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || len >= DV_ID_MAX) {
            return 0;
        }
    }
    return len > 0;
}

static int sink_find(const struct dw_deliver *d, const char *name, size_t *out)
{
    for (size_t i = 0; i < d->n_sinks; i++) {
        if (strcmp(d->sinks[i].cfg->name, name) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static void msg_free(struct dv_msg *m)
{
    if (!m) {
        return;
    }
    free(m->id);
    free(m->body);
    free(m->field);
    free(m);
}

static void sink_labels(const char *sink, char *buf, size_t size)
{
    char esc[4 * DW_SINK_NAME_MAX + 8];
    dw_metrics_escape(sink, esc, sizeof(esc));
    snprintf(buf, size, "sink=\"%s\"", esc);
}

struct dw_metric *dw_deliver_metric(const char *name, const char *sink)
{
    if (strcmp(name, DV_DEPTH_NAME) == 0) {
        return dw_metrics_series(DV_DEPTH_NAME, DV_DEPTH_HELP, DW_METRIC_GAUGE, NULL);
    }
    for (size_t i = 0; i < DV_M_N; i++) {
        if (strcmp(name, dv_metric_defs[i].name) == 0) {
            char labels[4 * DW_SINK_NAME_MAX + 16];
            sink_labels(sink, labels, sizeof(labels));
            return dw_metrics_series(dv_metric_defs[i].name, dv_metric_defs[i].help,
                                     DW_METRIC_COUNTER, labels);
        }
    }
    return NULL;
}

/* ---- configuration ---------------------------------------------------------------------- */

/*
 * Fills endpoint with scheme://host:port (no user-info, path or query) and checks the scheme.
 * Errors name the sink, never the URL. @returns 0 or -1 with errstr.
 */
static int parse_endpoint(const struct dw_sink_cfg *s, char *endpoint, size_t size, char *errstr,
                          size_t errstr_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    char *port = NULL;
    int rc = -1;

    if (!u) {
        dw_err(errstr, errstr_size, "deliver: out of memory parsing the url of sink %s", s->name);
        goto err;
    }
    if (!s->url || curl_url_set(u, CURLUPART_URL, s->url, 0) != CURLUE_OK) {
        dw_err(errstr, errstr_size, "deliver: sink %s: url is not a valid absolute URL", s->name);
        goto err;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        dw_err(errstr, errstr_size, "deliver: sink %s: url needs a scheme and a host", s->name);
        goto err;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        dw_err(errstr, errstr_size, "deliver: sink %s: url scheme must be http or https", s->name);
        goto err;
    }
    snprintf(endpoint, size, "%s://%s:%s", scheme, host, port);
    rc = 0;
err:
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static int check_sink(const struct dw_sink_cfg *s, char *errstr, size_t errstr_size)
{
    if (!s->name || !s->name[0] || strlen(s->name) >= DW_SINK_NAME_MAX) {
        return dw_err(errstr, errstr_size, "deliver: a sink needs a name of 1..%d bytes",
                      DW_SINK_NAME_MAX - 1);
    }
    if (s->timeout_ms <= 0 || s->timeout_ms > DV_TIMEOUT_MAX) {
        return dw_err(errstr, errstr_size, "deliver: sink %s: timeout must be in (0, %d] ms",
                      s->name, DV_TIMEOUT_MAX);
    }
    if (s->max_attempts < 1 || s->max_attempts > DV_ATTEMPTS_MAX) {
        return dw_err(errstr, errstr_size, "deliver: sink %s: max_attempts must be in [1, %d]",
                      s->name, DV_ATTEMPTS_MAX);
    }
    if (s->backoff_initial_ms <= 0 || s->backoff_max_ms < s->backoff_initial_ms ||
        s->backoff_max_ms > DV_BACKOFF_MAX) {
        return dw_err(errstr, errstr_size,
                      "deliver: sink %s: backoff must satisfy 0 < initial <= max <= %d ms", s->name,
                      DV_BACKOFF_MAX);
    }
    return 0;
}

static int check_cfg(const struct dw_deliver_cfg *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg || (cfg->n_sinks > 0 && !cfg->sinks)) {
        return dw_err(errstr, errstr_size, "deliver: no configuration");
    }
    if (cfg->queue_size < 1 || cfg->queue_size > DV_QUEUE_MAX) {
        return dw_err(errstr, errstr_size, "deliver: queue_size must be in [1, %d]", DV_QUEUE_MAX);
    }
    if (cfg->key && (!cfg->key[0] || !cfg->redis_host || !cfg->redis_host[0])) {
        return dw_err(errstr, errstr_size, "deliver: a Redis key needs a Redis host");
    }
    if (cfg->redis_timeout_ms < 0) {
        return dw_err(errstr, errstr_size, "deliver: redis timeout must be >= 0 ms");
    }
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        if (check_sink(&cfg->sinks[i], errstr, errstr_size) < 0) {
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->sinks[i].name, cfg->sinks[j].name) == 0) {
                return dw_err(errstr, errstr_size, "deliver: sink %s is defined twice",
                              cfg->sinks[i].name);
            }
        }
    }
    return 0;
}

/* ---- Redis ------------------------------------------------------------------------------ */

/*
 * HDELs the fields of d->hdel, in batches. After a failure nothing is tried before
 * redis_retry_at unless `force`. @locality delivery thread
 */
static void redis_flush(struct dw_deliver *d, int force)
{
    if (!d->key || d->hdel.n == 0) {
        return;
    }
    int64_t now = dw_mono_ms();
    if (!force && now < d->redis_retry_at) {
        return;
    }
    char err[256] = "";
    int rc = 0;

    pthread_mutex_lock(&d->rlock);
    while (d->hdel.n > 0) {
        size_t n = DW_MIN(d->hdel.n, (size_t)DV_HDEL_BATCH);
        size_t first = d->hdel.n - n;
        if (dw_redis_hash_del(d->redis, d->key, (const char *const *)&d->hdel.v[first], n, err,
                              sizeof(err)) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = first; i < d->hdel.n; i++) {
            free(d->hdel.v[i]);
        }
        d->hdel.n = first;
    }
    pthread_mutex_unlock(&d->rlock);

    if (rc < 0) {
        d->redis_retry_at = now + DV_REDIS_RETRY_MS;
        dw_log_limited("deliver-redis-hdel", 1, DW_LOG_WARN,
                       "alert delivery: cannot remove delivered messages from redis, will retry",
                       "{s:s,s:I}", "error", err, "fields", (json_int_t)d->hdel.n);
    } else {
        d->redis_retry_at = 0;
    }
}

/* ---- attempts --------------------------------------------------------------------------- */

/* Response bodies are not needed; without this callback libcurl would print them on stdout. */
static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    return size * nmemb;
}

/* Transport errors that another attempt cannot fix (bad configuration or build). */
static int curl_error_permanent(CURLcode res)
{
    switch (res) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
        return 1;
    default:
        return 0;
    }
}

/* Frees what one attempt holds. @locality delivery thread */
static void attempt_release(struct dw_deliver *d, struct dv_msg *m)
{
    if (m->easy) {
        curl_multi_remove_handle(d->multi, m->easy);
        curl_easy_cleanup(m->easy);
        m->easy = NULL;
    }
    curl_slist_free_all(m->hdrs);
    m->hdrs = NULL;
    if (m->req.body || m->req.headers) {
        dw_sink_request_free(&m->req);
    }
    memset(&m->req, 0, sizeof(m->req));
}

/*
 * Starts one attempt: the request from dw_sink_prepare (signature, secrets) and a transfer
 * added to the multi handle. `deadline` (monotonic ms, 0 = none) bounds its timeout.
 * @returns 0, or -1 with r filled (the attempt is over). @locality delivery thread
 */
static int attempt_start(struct dw_deliver *d, struct dv_msg *m, int64_t now, int64_t deadline,
                         struct dv_result *r)
{
    const struct dv_sink *s = &d->sinks[m->sink];
    const struct dw_sink_cfg *cfg = s->cfg;
    char err[DV_ERROR_MAX - 32] = "";

    memset(r, 0, sizeof(*r));
    m->attempts++;
    memset(&m->req, 0, sizeof(m->req));
    if (dw_sink_prepare(cfg, m->id, m->body, dw_now_ms() / 1000, &m->req, err, sizeof(err)) < 0) {
        r->outcome = DW_SINK_REJECTED;
        snprintf(r->error, sizeof(r->error), "cannot prepare the request: %s", err);
        goto err;
    }
    for (size_t i = 0; i < m->req.n_headers; i++) {
        struct curl_slist *n = curl_slist_append(m->hdrs, m->req.headers[i]);
        if (!n) {
            goto oom;
        }
        m->hdrs = n;
    }
    /* No "Expect: 100-continue" round trip for large alerts. */
    struct curl_slist *n = curl_slist_append(m->hdrs, "Expect:");
    if (!n) {
        goto oom;
    }
    m->hdrs = n;

    int64_t timeout = cfg->timeout_ms;
    if (deadline > 0) {
        timeout = DW_MAX(1, DW_MIN(timeout, deadline - now));
    }
    CURL *e = curl_easy_init();
    if (!e) {
        goto oom;
    }
    m->easy = e;
    if (curl_easy_setopt(e, CURLOPT_URL, cfg->url) != CURLE_OK) {
        r->outcome = DW_SINK_REJECTED;
        snprintf(r->error, sizeof(r->error), "url rejected by libcurl");
        goto err;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)m);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->req.body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(m->req.body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "driftwatch/" DW_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        /* Not in the multi handle: attempt_release's remove is a harmless no-op. */
        r->outcome = DW_SINK_RETRY;
        snprintf(r->error, sizeof(r->error), "cannot start the transfer");
        goto err;
    }
    return 0;

oom:
    r->outcome = DW_SINK_RETRY;
    snprintf(r->error, sizeof(r->error), "out of memory starting the transfer");
err:
    attempt_release(d, m);
    return -1;
}

/* Reads a finished transfer's result. @locality delivery thread */
static void attempt_result(const struct dw_deliver *d, const struct dv_msg *m, CURLcode res,
                           struct dv_result *r)
{
    const struct dw_sink_cfg *cfg = d->sinks[m->sink].cfg;

    memset(r, 0, sizeof(*r));
    if (res != CURLE_OK) {
        /* curl_easy_strerror is a fixed text: it never carries the URL or its secrets. */
        snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(res));
        r->outcome = curl_error_permanent(res) ? DW_SINK_REJECTED : dw_sink_classify(cfg, 0);
        return;
    }
    curl_easy_getinfo(m->easy, CURLINFO_RESPONSE_CODE, &r->status);
    r->outcome = dw_sink_classify(cfg, r->status);
    snprintf(r->error, sizeof(r->error), "HTTP %ld", r->status);
    if (r->outcome == DW_SINK_RETRY && (r->status == 429 || r->status == 503)) {
        curl_off_t secs = 0;
        if (curl_easy_getinfo(m->easy, CURLINFO_RETRY_AFTER, &secs) == CURLE_OK && secs > 0) {
            /* Clamp before multiplying: a hostile header must not overflow. */
            if (secs > cfg->backoff_max_ms / 1000 + 1) {
                secs = cfg->backoff_max_ms / 1000 + 1;
            }
            r->retry_after_ms = (int64_t)secs * 1000;
        }
    }
}

/* Delay before the attempt that follows `attempts` failed ones (milliseconds). */
static int64_t backoff_delay(struct dw_deliver *d, const struct dw_sink_cfg *cfg, int64_t attempts,
                             int64_t retry_after_ms)
{
    int64_t cap = cfg->backoff_max_ms;
    if (retry_after_ms > 0) {
        return DW_MIN(retry_after_ms, cap);
    }
    int64_t delay = cfg->backoff_initial_ms;
    for (int64_t i = 1; i < attempts && delay < cap; i++) {
        delay *= 2;
    }
    delay = DW_MIN(delay, cap);
    /* Equal jitter, uniform in [delay/2, delay]: see the comment at the top of the file. */
    double u = erand48(d->rng);
    return delay / 2 + (int64_t)(u * (double)(delay - delay / 2 + 1));
}

/*
 * Settles one finished attempt: delivered, given up (final) or a retry scheduled. Metrics move
 * here, before the message leaves the queue, so pending() == 0 implies they are final.
 * Caller holds the lock.
 */
/*
 * 1 when starting items[i] would let it overtake an older queued message (in flight or waiting
 * for a retry) of the same sink and order key (dw_sink_order_key). Caller holds the lock.
 */
static int overtakes(const struct dw_deliver *d, size_t i)
{
    const struct dv_msg *m = d->items[i];
    const struct dw_sink_cfg *cfg = d->sinks[m->sink].cfg;
    const char *key = dw_sink_order_key(cfg, m->id);
    for (size_t j = 0; key && j < i; j++) {
        const struct dv_msg *o = d->items[j];
        const char *k = o->sink == m->sink && !o->final ? dw_sink_order_key(cfg, o->id) : NULL;
        if (k && strcmp(k, key) == 0) {
            return 1;
        }
    }
    return 0;
}

static void settle(struct dw_deliver *d, struct dv_msg *m, const struct dv_result *r)
{
    struct dv_sink *s = &d->sinks[m->sink];
    const struct dw_sink_cfg *cfg = s->cfg;

    m->in_flight = 0;
    s->in_flight--;
    if (r->outcome == DW_SINK_RETRY && m->attempts < cfg->max_attempts) {
        m->next_at = dw_mono_ms() + backoff_delay(d, cfg, m->attempts, r->retry_after_ms);
        dw_metric_inc(s->m[DV_M_RETRIED]);
        return;
    }
    m->final = 1;
    if (r->outcome == DW_SINK_DELIVERED) {
        double secs = (double)(mono_us() - m->submitted_us) / 1e6;
        dw_metric_add(s->m[DV_M_SECONDS], secs > 0 ? secs : 0.0);
        dw_metric_inc(s->m[DV_M_SECONDS_COUNT]);
        dw_metric_inc(s->m[DV_M_SENT]);
    } else {
        dw_metric_inc(s->m[DV_M_FAILED]);
    }
    s->has_last = 1;
    s->last_outcome = r->outcome;
    s->last_status = r->status;
    s->last_attempts = m->attempts;
    snprintf(s->last_error, sizeof(s->last_error), "%s", r->error);
}

/*
 * Settles the attempts finished in one loop, logs the final ones, HDELs their fields, then
 * takes them out of the queue. @locality delivery thread
 */
static void settle_all(struct dw_deliver *d, struct dv_done *done, size_t n_done)
{
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < n_done; i++) {
        settle(d, done[i].m, &done[i].r);
    }
    pthread_mutex_unlock(&d->lock);

    size_t n_final = 0;
    for (size_t i = 0; i < n_done; i++) {
        struct dv_msg *m = done[i].m;
        const struct dv_sink *s = &d->sinks[m->sink];
        if (!m->final) {
            dw_log(DW_LOG_DEBUG, "alert delivery attempt failed, will retry", "{s:s,s:s,s:I,s:s}",
                   "sink", s->cfg->name, "id", m->id, "attempts", (json_int_t)m->attempts, "error",
                   done[i].r.error);
            continue;
        }
        n_final++;
        if (done[i].r.outcome == DW_SINK_DELIVERED) {
            dw_log(DW_LOG_DEBUG, "alert delivered", "{s:s,s:s,s:I}", "sink", s->cfg->name, "id",
                   m->id, "attempts", (json_int_t)m->attempts);
        } else {
            dw_log(DW_LOG_WARN,
                   done[i].r.outcome == DW_SINK_REJECTED ? "alert delivery rejected"
                                                         : "alert delivery failed",
                   "{s:s,s:s,s:s,s:I,s:s}", "sink", s->cfg->name, "id", m->id, "endpoint",
                   s->endpoint, "attempts", (json_int_t)m->attempts, "error", done[i].r.error);
        }
        if (d->key && m->field) {
            fields_push(&d->hdel, m->field);
            m->field = NULL;
        }
    }
    if (n_final == 0) {
        return;
    }
    redis_flush(d, 0);

    pthread_mutex_lock(&d->lock);
    size_t kept = 0;
    for (size_t i = 0; i < d->count; i++) {
        struct dv_msg *m = d->items[i];
        if (m->final) {
            d->sinks[m->sink].queued--;
            dw_metric_add(d->m_depth, -1.0);
        } else {
            d->items[kept++] = m;
        }
    }
    d->count = kept;
    pthread_cond_broadcast(&d->settled);
    pthread_mutex_unlock(&d->lock);

    for (size_t i = 0; i < n_done; i++) {
        if (done[i].m->final) {
            msg_free(done[i].m);
        }
    }
}

/* Moves the fields handed over by other threads to the thread's HDEL list. Caller: lock. */
static void take_orphans(struct dw_deliver *d)
{
    for (size_t i = 0; i < d->orphans.n; i++) {
        fields_push(&d->hdel, d->orphans.v[i]);
    }
    d->orphans.n = 0;
}

/* 1 when nothing can happen before the flush deadline. Caller holds the lock; stopping. */
static int nothing_before_deadline(const struct dw_deliver *d)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->items[i]->in_flight || d->items[i]->next_at <= d->deadline_ms) {
            return 0;
        }
    }
    return 1;
}

/* Abandons what is left at shutdown. @locality delivery thread */
static void shutdown_left(struct dw_deliver *d)
{
    pthread_mutex_lock(&d->lock);
    size_t left = d->count;
    struct dv_msg **items = d->items;
    for (size_t i = 0; i < left; i++) {
        struct dv_msg *m = items[i];
        struct dv_sink *s = &d->sinks[m->sink];
        attempt_release(d, m);
        if (m->in_flight) {
            m->in_flight = 0;
            s->in_flight--;
        }
        s->queued--;
        if (!d->key) {
            dw_metric_inc(s->m[DV_M_FAILED]);
        }
    }
    dw_metric_add(d->m_depth, -(double)left);
    d->count = 0;
    take_orphans(d);
    pthread_cond_broadcast(&d->settled);
    pthread_mutex_unlock(&d->lock);

    /* The thread has stopped taking messages out of items: no lock needed from here. */
    for (size_t i = 0; i < left; i++) {
        struct dv_msg *m = items[i];
        if (!d->key) {
            dw_log(DW_LOG_WARN, "alert delivery failed", "{s:s,s:s,s:I,s:s}", "sink",
                   d->sinks[m->sink].cfg->name, "id", m->id, "attempts", (json_int_t)m->attempts,
                   "error", "shutdown before delivery");
        }
        msg_free(m);
        items[i] = NULL;
    }
    if (left > 0 && d->key) {
        dw_log(DW_LOG_INFO, "alert messages left in redis for the next resume", "{s:I}", "messages",
               (json_int_t)left);
    }
    redis_flush(d, 1);
    if (d->hdel.n > 0) {
        dw_log(DW_LOG_WARN, "alert messages delivered but still in redis: sent again on resume",
               "{s:I}", "messages", (json_int_t)d->hdel.n);
    }
}

/* @locality delivery thread */
static void *deliver_main(void *arg)
{
    struct dw_deliver *d = arg;

    for (;;) {
        int64_t now = dw_mono_ms();
        int64_t wake = now + DV_IDLE_POLL_MS;
        int64_t deadline = 0;
        size_t n_start = 0;
        int stop = 0;

        pthread_mutex_lock(&d->lock);
        take_orphans(d);
        if (d->stopping) {
            deadline = DW_MAX(d->deadline_ms, 1);
            wake = DW_MIN(wake, d->deadline_ms);
            stop = d->count == 0 || now >= d->deadline_ms || nothing_before_deadline(d);
        }
        for (size_t i = 0; !stop && i < d->count; i++) {
            struct dv_msg *m = d->items[i];
            struct dv_sink *s = &d->sinks[m->sink];
            if (m->in_flight) {
                continue;
            }
            if (m->next_at > now) {
                wake = DW_MIN(wake, m->next_at);
            } else if (s->in_flight < DV_SINK_INFLIGHT_MAX && !overtakes(d, i)) {
                /* Due and the sink has room; a due message of a full sink waits for a
                 * transfer of its sink to finish, which wakes the poll below. */
                m->in_flight = 1;
                s->in_flight++;
                d->starts[n_start++] = m;
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (stop) {
            break;
        }

        size_t n_done = 0;
        for (size_t i = 0; i < n_start; i++) {
            dw_assert(n_done < d->scratch_size);
            if (attempt_start(d, d->starts[i], now, deadline, &d->done[n_done].r) < 0) {
                d->done[n_done++].m = d->starts[i];
            }
        }
        int running = 0;
        curl_multi_perform(d->multi, &running);
        CURLMsg *cm;
        int queued_msgs = 0;
        while ((cm = curl_multi_info_read(d->multi, &queued_msgs)) != NULL) {
            if (cm->msg != CURLMSG_DONE) {
                continue;
            }
            char *priv = NULL;
            curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, &priv);
            struct dv_msg *m = (struct dv_msg *)(void *)priv;
            dw_assert(m != NULL && n_done < d->scratch_size);
            CURLcode res = cm->data.result;
            attempt_result(d, m, res, &d->done[n_done].r);
            attempt_release(d, m); /* cm is invalid from here */
            d->done[n_done++].m = m;
        }
        if (n_done > 0) {
            settle_all(d, d->done, n_done);
            /* Retries or freed sink slots may be due at once: loop without sleeping. */
            continue;
        }
        redis_flush(d, 0);
        if (d->hdel.n > 0) {
            wake = DW_MIN(wake, d->redis_retry_at);
        }
        int64_t timeout = DW_MAX(0, DW_MIN(wake - dw_mono_ms(), (int64_t)DV_IDLE_POLL_MS));
        curl_multi_poll(d->multi, NULL, 0, (int)timeout, NULL);
    }
    shutdown_left(d);
    return NULL;
}

/* ---- API -------------------------------------------------------------------------------- */

/* Frees the memory of d (threads, locks, curl and Redis already released). */
static void deliver_free(struct dw_deliver *d)
{
    fields_free(&d->hdel);
    fields_free(&d->orphans);
    free(d->rcfg.redis_password);
    free(d->rcfg.redis_host);
    free(d->rcfg.redis_username);
    free(d->rcfg.redis_master_name);
    free(d->rcfg.redis_sentinel_password);
    for (size_t i = 0; i < d->rcfg.n_redis_sentinels; i++) {
        free(d->rcfg.redis_sentinels[i]);
    }
    free(d->rcfg.redis_sentinels);
    for (size_t i = 0; i < d->rcfg.n_redis_nodes; i++) {
        free(d->rcfg.redis_nodes[i]);
    }
    free(d->rcfg.redis_nodes);
    free(d->key);
    free(d->done);
    free(d->starts);
    free(d->items);
    free(d->sinks);
    free(d);
}

struct dw_deliver *dw_deliver_new(const struct dw_deliver_cfg *cfg, char *errstr,
                                  size_t errstr_size)
{
    struct dw_deliver *d = NULL;
    pthread_condattr_t cattr;
    int have_lock = 0;
    int have_rlock = 0;
    int have_cond = 0;

    if (check_cfg(cfg, errstr, errstr_size) < 0) {
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        dw_err(errstr, errstr_size, "deliver: curl_global_init failed: %s",
               curl_easy_strerror(curl_init_rc));
        return NULL;
    }

    d = dw_calloc(1, sizeof(*d));
    d->queue_size = (size_t)cfg->queue_size;
    d->n_sinks = cfg->n_sinks;
    d->models = cfg->models;
    d->n_models = cfg->n_models;
    d->sinks = dw_calloc(DW_MAX(cfg->n_sinks, (size_t)1), sizeof(*d->sinks));
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        struct dv_sink *s = &d->sinks[i];
        s->cfg = &cfg->sinks[i];
        if (parse_endpoint(s->cfg, s->endpoint, sizeof(s->endpoint), errstr, errstr_size) < 0) {
            goto err;
        }
        for (size_t k = 0; k < DV_M_N; k++) {
            s->m[k] = dw_deliver_metric(dv_metric_defs[k].name, s->cfg->name);
        }
    }
    d->m_depth = dw_deliver_metric(DV_DEPTH_NAME, NULL);
    d->items = dw_calloc(d->queue_size, sizeof(*d->items));
    d->scratch_size = DW_MAX(cfg->n_sinks, (size_t)1) * DV_SINK_INFLIGHT_MAX;
    d->starts = dw_calloc(d->scratch_size, sizeof(*d->starts));
    d->done = dw_calloc(d->scratch_size, sizeof(*d->done));
    int64_t seed = dw_now_ms() ^ (int64_t)(uintptr_t)d;
    d->rng[0] = (unsigned short)seed;
    d->rng[1] = (unsigned short)(seed >> 16);
    d->rng[2] = (unsigned short)(seed >> 32);

    if (cfg->key) {
        d->key = dw_strdup(cfg->key);
        d->rcfg.redis_host = dw_strdup(cfg->redis_host);
        d->rcfg.redis_port = cfg->redis_port;
        d->rcfg.redis_password = dw_strdup(cfg->redis_password ? cfg->redis_password : "");
        d->rcfg.redis_username = dw_strdup(cfg->redis_username ? cfg->redis_username : "");
        d->rcfg.redis_master_name = dw_strdup(cfg->redis_master_name ? cfg->redis_master_name : "");
        d->rcfg.redis_sentinel_password =
            dw_strdup(cfg->redis_sentinel_password ? cfg->redis_sentinel_password : "");
        d->rcfg.n_redis_sentinels = cfg->n_redis_sentinels;
        d->rcfg.redis_sentinels =
            dw_calloc(cfg->n_redis_sentinels ? cfg->n_redis_sentinels : 1, sizeof(char *));
        for (size_t i = 0; i < cfg->n_redis_sentinels; i++) {
            d->rcfg.redis_sentinels[i] = dw_strdup(cfg->redis_sentinels[i]);
        }
        d->rcfg.redis_db = cfg->redis_db;
        d->rcfg.redis_cluster = cfg->redis_cluster;
        d->rcfg.redis_nodes = dw_calloc(cfg->n_redis_nodes + 1, sizeof(char *));
        for (size_t i = 0; i < cfg->n_redis_nodes; i++) {
            d->rcfg.redis_nodes[d->rcfg.n_redis_nodes++] = dw_strdup(cfg->redis_nodes[i]);
        }
        d->rcfg.redis_timeout_ms =
            cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : DV_REDIS_TIMEOUT_MS;
        d->redis = dw_redis_connect(&d->rcfg, errstr, errstr_size);
        if (!d->redis) {
            goto err;
        }
    }

    d->multi = curl_multi_init();
    if (!d->multi) {
        dw_err(errstr, errstr_size, "deliver: curl_multi_init failed");
        goto err;
    }
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        dw_err(errstr, errstr_size, "deliver: pthread_mutex_init failed");
        goto err;
    }
    have_lock = 1;
    if (pthread_mutex_init(&d->rlock, NULL) != 0) {
        dw_err(errstr, errstr_size, "deliver: pthread_mutex_init failed");
        goto err;
    }
    have_rlock = 1;
    /* Timed waits use the monotonic clock, like next_at. */
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&d->settled, &cattr);
    pthread_condattr_destroy(&cattr);
    if (crc != 0) {
        dw_err(errstr, errstr_size, "deliver: pthread_cond_init failed");
        goto err;
    }
    have_cond = 1;
    if (pthread_create(&d->thread, NULL, deliver_main, d) != 0) {
        dw_err(errstr, errstr_size, "deliver: cannot start the delivery thread");
        goto err;
    }
    return d;

err:
    if (have_cond) {
        pthread_cond_destroy(&d->settled);
    }
    if (have_rlock) {
        pthread_mutex_destroy(&d->rlock);
    }
    if (have_lock) {
        pthread_mutex_destroy(&d->lock);
    }
    if (d->multi) {
        curl_multi_cleanup(d->multi);
    }
    dw_redis_free(d->redis);
    deliver_free(d);
    return NULL;
}

enum dv_submit { DV_QUEUED, DV_DUPLICATE, DV_INVALID, DV_FULL, DV_STOPPING };

/*
 * Queues one message of sink `si`. A full queue drops it (counted, logged, its field handed to
 * the thread for HDEL) when `may_drop`, else leaves it alone (resume: it stays in Redis).
 */
static enum dv_submit submit_one(struct dw_deliver *d, size_t si, const char *msg_id,
                                 const char *body, int may_drop)
{
    struct dv_sink *s = &d->sinks[si];

    if (!msg_id || !body || !id_valid(msg_id)) {
        dw_metric_inc(s->m[DV_M_DROPPED]);
        dw_log_limited("deliver-bad-id", 5, DW_LOG_ERROR,
                       "alert message dropped: missing body or invalid message id", "{s:s}", "sink",
                       s->cfg->name);
        if (d->key && msg_id) {
            pthread_mutex_lock(&d->lock);
            fields_push(&d->orphans, dw_deliver_field(s->cfg->name, msg_id));
            pthread_mutex_unlock(&d->lock);
            curl_multi_wakeup(d->multi);
        }
        return DV_INVALID;
    }
    /* Copy before taking the lock: the critical section stays a scan and a few moves. */
    struct dv_msg *m = dw_calloc(1, sizeof(*m));
    m->sink = si;
    m->id = dw_strdup(msg_id);
    m->body = dw_strdup(body);
    m->field = dw_deliver_field(s->cfg->name, msg_id);
    m->submitted_us = mono_us();
    m->next_at = dw_mono_ms();

    pthread_mutex_lock(&d->lock);
    if (d->stopping) {
        /* The thread may have left already: the message stays in Redis for the next resume. */
        pthread_mutex_unlock(&d->lock);
        dw_log_limited("deliver-stopping", 1, DW_LOG_WARN,
                       "alert message submitted during shutdown, left for the next resume",
                       "{s:s,s:s}", "sink", s->cfg->name, "id", msg_id);
        msg_free(m);
        return DV_STOPPING;
    }
    for (size_t i = 0; i < d->count; i++) {
        if (d->items[i]->sink == si && strcmp(d->items[i]->id, msg_id) == 0) {
            pthread_mutex_unlock(&d->lock);
            msg_free(m);
            return DV_DUPLICATE;
        }
    }
    if (d->count >= d->queue_size) {
        if (!may_drop) {
            pthread_mutex_unlock(&d->lock);
            msg_free(m);
            return DV_FULL;
        }
        dw_metric_inc(s->m[DV_M_DROPPED]);
        if (d->key) {
            fields_push(&d->orphans, m->field);
            m->field = NULL;
        }
        pthread_mutex_unlock(&d->lock);
        curl_multi_wakeup(d->multi);
        dw_log_limited("deliver-queue-full", 1, DW_LOG_WARN,
                       "alert delivery queue full, message dropped", "{s:s,s:s,s:I}", "sink",
                       s->cfg->name, "id", msg_id, "queue_size", (json_int_t)d->queue_size);
        msg_free(m);
        return DV_FULL;
    }
    d->items[d->count++] = m;
    s->queued++;
    dw_metric_add(d->m_depth, 1.0);
    pthread_mutex_unlock(&d->lock);
    curl_multi_wakeup(d->multi);
    return DV_QUEUED;
}

int dw_deliver_submit(struct dw_deliver *d, const char *sink, const char *msg_id, const char *body)
{
    size_t si = 0;
    if (!sink || sink_find(d, sink, &si) < 0) {
        dw_log_limited("deliver-unknown-sink", 5, DW_LOG_ERROR, "alert message for an unknown sink",
                       "{s:s}", "sink", sink ? sink : "");
        return -1;
    }
    enum dv_submit st = submit_one(d, si, msg_id, body, 1);
    return st == DV_QUEUED || st == DV_DUPLICATE ? 0 : -1;
}

struct dw_metric *dw_deliver_discarded(const char *reason)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    return dw_metrics_series("driftwatch_alert_records_discarded_total",
                             "Alert messages read back from Redis that can never be delivered "
                             "(not a delivery record, or a sink no longer configured): removed "
                             "and logged.",
                             DW_METRIC_COUNTER, labels);
}

/* Hands a field to the thread for HDEL (a record that can never be delivered): counted by
 * `reason` (dw_deliver_discarded) and logged with `why`. */
static void discard_record(struct dw_deliver *d, const char *field, size_t len, const char *reason,
                           const char *why)
{
    dw_metric_inc(dw_deliver_discarded(reason));
    dw_log(DW_LOG_WARN, "alert message in redis discarded", "{s:s%,s:s}", "field", field, len,
           "reason", why);
    pthread_mutex_lock(&d->lock);
    fields_push(&d->orphans, dw_strndup(field, len));
    pthread_mutex_unlock(&d->lock);
}

/* Whether `name` is one of the configured models. */
static int model_known(const struct dw_deliver *d, const char *name)
{
    for (size_t i = 0; i < d->n_models; i++) {
        if (strcmp(d->models[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether resume(model, unowned) takes record rec: its model's, or with `unowned` one naming
 * none or a model no longer configured. */
static int resume_wants(const struct dw_deliver *d, const json_t *rec, const char *model,
                        int unowned)
{
    const char *own = json_string_value(json_object_get(rec, "model"));
    if (!model || (own && strcmp(own, model) == 0)) {
        return 1;
    }
    return unowned && (!own || !model_known(d, own));
}

/* A pending record read back for a resume, in commit order (created_ms, then the hash's). */
struct resumed {
    const struct dw_redis_field *f;
    json_t *rec; /* NULL: not JSON */
    int64_t created_ms;
    size_t at; /* its place in the hash, to keep the sort stable */
};

static int resumed_cmp(const void *a, const void *b)
{
    const struct resumed *x = a, *y = b;
    if (x->created_ms != y->created_ms) {
        return x->created_ms < y->created_ms ? -1 : 1;
    }
    return x->at < y->at ? -1 : x->at > y->at;
}

int dw_deliver_resume(struct dw_deliver *d, const char *model, int unowned, size_t *left_out)
{
    if (left_out) {
        *left_out = 0;
    }
    if (!d->key) {
        return -1;
    }
    struct dw_redis_hash h;
    char err[256] = "";

    pthread_mutex_lock(&d->rlock);
    int rc = dw_redis_hash_getall(d->redis, d->key, &h, err, sizeof(err));
    pthread_mutex_unlock(&d->rlock);
    if (rc != 0) {
        dw_log(DW_LOG_ERROR, "alert delivery: cannot read pending messages from redis", "{s:s}",
               "error", err);
        return -1;
    }
    struct resumed *rs = dw_calloc(h.n ? h.n : 1, sizeof(*rs));
    for (size_t i = 0; i < h.n; i++) {
        rs[i].f = &h.fields[i];
        rs[i].rec = json_loadb(h.fields[i].value, h.fields[i].value_len, 0, NULL);
        rs[i].created_ms = json_integer_value(json_object_get(rs[i].rec, "created_ms"));
        rs[i].at = i;
    }
    qsort(rs, h.n, sizeof(*rs), resumed_cmp);

    int submitted = 0;
    size_t left = 0;
    int discarded = 0;
    for (size_t i = 0; i < h.n; i++) {
        const struct dw_redis_field *f = rs[i].f;
        json_t *rec = rs[i].rec;
        const char *sink = json_string_value(json_object_get(rec, "sink"));
        const char *id = json_string_value(json_object_get(rec, "id"));
        const char *body = json_string_value(json_object_get(rec, "body"));
        size_t si = 0;
        if (rec && !resume_wants(d, rec, model, unowned)) {
            /* another model's: its evaluator resumes it */
        } else if (!sink || !id || !body) {
            discard_record(d, f->name, f->name_len, "not_a_record", "not a delivery record");
            discarded = 1;
        } else if (sink_find(d, sink, &si) < 0) {
            discard_record(d, f->name, f->name_len, "sink_removed", "sink no longer configured");
            discarded = 1;
        } else if (left > 0) {
            left++;
        } else {
            enum dv_submit st = submit_one(d, si, id, body, 0);
            if (st == DV_QUEUED) {
                submitted++;
            } else if (st == DV_FULL || st == DV_STOPPING) {
                left++;
            } else if (st == DV_INVALID) {
                discarded = 1; /* submit_one logged it and handed its field over */
            }
        }
        json_decref(rec);
    }
    free(rs);
    dw_redis_hash_free(&h);
    if (discarded) {
        curl_multi_wakeup(d->multi);
    }
    if (left > 0) {
        dw_log_limited("deliver-resume-left", 1, DW_LOG_WARN,
                       "alert delivery queue full on resume: messages left in redis for the next "
                       "resume",
                       "{s:I}", "messages", (json_int_t)left);
    }
    if (submitted > 0) {
        dw_log(DW_LOG_INFO, "alert messages resumed from redis", "{s:i}", "messages", submitted);
    }
    if (left_out) {
        *left_out = left;
    }
    return submitted;
}

size_t dw_deliver_pending(struct dw_deliver *d)
{
    pthread_mutex_lock(&d->lock);
    size_t n = d->count;
    pthread_mutex_unlock(&d->lock);
    return n;
}

int dw_deliver_result(struct dw_deliver *d, const char *sink, int64_t wait_ms, char *buf,
                      size_t size)
{
    size_t si = 0;
    if (!sink || sink_find(d, sink, &si) < 0) {
        snprintf(buf, size, "unknown sink");
        return -1;
    }
    struct dv_sink *s = &d->sinks[si];
    int64_t deadline = dw_mono_ms() + DW_MAX(wait_ms, 0);

    pthread_mutex_lock(&d->lock);
    while (s->queued > 0 && dw_mono_ms() < deadline) {
        struct timespec ts;
        timespec_from_mono_ms(deadline, &ts);
        pthread_cond_timedwait(&d->settled, &d->lock, &ts);
    }
    int has = s->has_last;
    enum dw_sink_outcome outcome = s->last_outcome;
    long status = s->last_status;
    int64_t attempts = s->last_attempts;
    char error[DV_ERROR_MAX];
    snprintf(error, sizeof(error), "%s", s->last_error);
    size_t queued = s->queued;
    pthread_mutex_unlock(&d->lock);

    if (!has) {
        snprintf(buf, size, "%s", queued > 0 ? "still being delivered" : "nothing sent");
        return -1;
    }
    if (outcome == DW_SINK_DELIVERED) {
        snprintf(buf, size, "delivered (HTTP %ld)", status);
        return 0;
    }
    if (outcome == DW_SINK_REJECTED && status > 0) {
        snprintf(buf, size, "rejected (HTTP %ld)", status);
    } else {
        snprintf(buf, size, "failed after %lld attempts: %s", (long long)attempts, error);
    }
    return -1;
}

void dw_deliver_destroy(struct dw_deliver *d, int64_t flush_ms)
{
    if (!d) {
        return;
    }
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    d->deadline_ms = dw_mono_ms() + DW_MAX(flush_ms, 0);
    pthread_mutex_unlock(&d->lock);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);

    pthread_mutex_lock(&d->rlock);
    dw_redis_free(d->redis);
    d->redis = NULL;
    pthread_mutex_unlock(&d->rlock);
    curl_multi_cleanup(d->multi);
    pthread_cond_destroy(&d->settled);
    pthread_mutex_destroy(&d->rlock);
    pthread_mutex_destroy(&d->lock);
    deliver_free(d);
}
