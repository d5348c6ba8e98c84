/*
 * dw_webhook.c - alert delivery over HTTP, off the consumer's thread.
 *
 * Why a thread of its own: a receiver that is slow, down or rate limiting must never stall the
 * Kafka consumer (DESIGN.md section 5). The consumer only copies the payload into a bounded
 * queue (dw_webhook_enqueue takes a mutex for a few pointer moves and never waits on I/O); one
 * delivery thread owns the libcurl easy handle and does every network call.
 *
 * The queue is an array of at most queue_size item pointers. The item being POSTed is taken
 * out of the array but still counts (`inflight`), so "queued or in flight" never exceeds
 * queue_size and an item that fails always has its slot back for the retry. Each item carries
 * next_at (monotonic milliseconds); the thread always takes the item due soonest (ties: the
 * oldest), so an item that waits for its backoff never holds back the ones behind it (no
 * head-of-line blocking). The array is scanned linearly: queue_size is tens to a few thousand
 * and each scan is dwarfed by the HTTP round trip that follows it.
 *
 * Retries: connection errors, timeouts, 408, 429 and 5xx are retried; any other non-2xx answer
 * (4xx, and 3xx since redirects are not followed) is final. The delay after the n-th failed
 * attempt is d = min(backoff_max, backoff_initial * 2^(n-1)), then jittered uniformly in
 * [d/2, d]. This is the variant AWS calls "equal jitter"; we prefer it to pure full jitter
 * ([0, d]) because it keeps a floor under the delay (a dead receiver is never re-hit at once)
 * while still spreading the retries of many pods apart. A Retry-After header on 429/503
 * (seconds or HTTP date, parsed by libcurl) replaces the computed delay, capped at backoff_max.
 * After max_attempts the item is counted as failed and logged at warn with its key and last
 * error. The log names the receiver as scheme://host:port only: a webhook URL often carries a
 * token in its path, query or user-info, and logs are not the place for secrets.
 *
 * Shutdown: dw_webhook_destroy(flush_ms) lets the thread keep delivering until the queue is
 * empty or the deadline passes; a retry that would fall after the deadline is not scheduled
 * (the item is failed at once), and attempts started after destroy was called are bounded by
 * the time left. What is still queued at the deadline is counted as failed and logged. The
 * destroy call therefore returns within about flush_ms + timeout_ms milliseconds.
 *
 * Metrics (label sink="webhook"): sent, failed, retried and dropped (queue full, or a key that
 * cannot go into a header) counters, the queue depth gauge (moved by +-1 so that several
 * instances add up) and the sum of enqueue-to-2xx latencies in seconds.
 *
 * curl_global_init runs once per process (pthread_once); curl_global_cleanup is never called
 * because other modules may still use libcurl at exit.
 */
#include "driftwatch/dw_webhook.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driftwatch/dw_common.h"
#include "driftwatch/dw_log.h"
#include "driftwatch/dw_metrics.h"

#ifndef DW_VERSION
#define DW_VERSION "unknown"
#endif

#define DW_WEBHOOK_LABELS "sink=\"webhook\""
/* Longest idempotency key accepted (bytes): it travels in two request headers. */
#define DW_WEBHOOK_KEY_MAX 512
/* Longest endpoint text kept for logs, scheme://host:port (bytes). */
#define DW_WEBHOOK_ENDPOINT_MAX 300

struct wh_item {
    char *key;
    char *body;
    size_t body_len;
    int64_t attempts;    /* attempts made so far */
    int64_t next_at;     /* monotonic milliseconds when the item is due */
    int64_t enqueued_us; /* monotonic microseconds at enqueue, for the latency sum */
    uint64_t seq;        /* enqueue order, breaks ties between items due at once */
};

/* What one attempt returned, decided outside the lock. */
struct wh_outcome {
    int ok;                 /* 2xx */
    int retryable;          /* transient failure worth another attempt */
    int64_t retry_after_ms; /* > 0: the receiver asked for this delay */
    char error[128];        /* last error, without the URL */
};

struct dw_webhook {
    struct dw_webhook_cfg cfg;
    char *url;
    char endpoint[DW_WEBHOOK_ENDPOINT_MAX];

    CURL *curl;
    unsigned short rng[3]; /* erand48 state, used by the delivery thread only */

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on enqueue and on stop */
    struct wh_item **items;
    size_t count;    /* items in the array (waiting) */
    size_t inflight; /* 0 or 1: the item being POSTed */
    uint64_t next_seq;
    int stopping;
    int64_t deadline_ms; /* monotonic; valid when stopping */

    struct dw_metric *m_sent;
    struct dw_metric *m_failed;
    struct dw_metric *m_retried;
    struct dw_metric *m_dropped;
    struct dw_metric *m_depth;
    struct dw_metric *m_seconds;
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

static void item_free(struct wh_item *it)
{
    if (!it) {
        return;
    }
    free(it->key);
    free(it->body);
    free(it);
}

/* Response bodies are not needed; without this callback libcurl would print them on stdout. */
static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    return size * nmemb;
}

/*
 * Fills wh->endpoint with scheme://host:port (no user-info, path or query) and checks the
 * scheme. @returns 0 or -1 with errstr.
 */
static int parse_endpoint(struct dw_webhook *wh, char *errstr, size_t errstr_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    char *port = NULL;
    int rc = -1;

    if (!u) {
        dw_err(errstr, errstr_size, "webhook: out of memory parsing url");
        goto err;
    }
    if (curl_url_set(u, CURLUPART_URL, wh->url, 0) != CURLUE_OK) {
        dw_err(errstr, errstr_size, "webhook: url is not a valid absolute URL");
        goto err;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        dw_err(errstr, errstr_size, "webhook: url needs a scheme and a host");
        goto err;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        dw_err(errstr, errstr_size, "webhook: url scheme must be http or https, not %s", scheme);
        goto err;
    }
    snprintf(wh->endpoint, sizeof(wh->endpoint), "%s://%s:%s", scheme, host, port);
    rc = 0;
err:
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
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
    case CURLE_OUT_OF_MEMORY:
        return 1;
    default:
        return 0;
    }
}

static int status_retryable(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/*
 * POSTs one item. Runs on the delivery thread without the lock; `timeout_ms` is the budget for
 * this attempt.
 */
static void attempt_post(struct dw_webhook *wh, const struct wh_item *it, int64_t timeout_ms,
                         struct wh_outcome *out)
{
    struct curl_slist *hdrs = NULL;
    char line[DW_WEBHOOK_KEY_MAX + 32];
    CURL *c = wh->curl;

    memset(out, 0, sizeof(*out));
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    snprintf(line, sizeof(line), "Idempotency-Key: %s", it->key);
    hdrs = curl_slist_append(hdrs, line);
    snprintf(line, sizeof(line), "webhook-id: %s", it->key);
    hdrs = curl_slist_append(hdrs, line);
    /* No "Expect: 100-continue" round trip for large alerts. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (!hdrs) {
        snprintf(out->error, sizeof(out->error), "out of memory building headers");
        out->retryable = 1;
        return;
    }

    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->body_len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);

    CURLcode res = curl_easy_perform(c);
    if (res != CURLE_OK) {
        /* curl_easy_strerror is a fixed text: it never carries the URL or its secrets. */
        snprintf(out->error, sizeof(out->error), "%s", curl_easy_strerror(res));
        out->retryable = !curl_error_permanent(res);
    } else {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status <= 299) {
            out->ok = 1;
        } else {
            snprintf(out->error, sizeof(out->error), "HTTP %ld", status);
            out->retryable = status_retryable(status);
            if (status == 429 || status == 503) {
                curl_off_t secs = 0;
                if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &secs) == CURLE_OK && secs > 0) {
                    /* Clamp before multiplying: a hostile header must not overflow. */
                    if (secs > wh->cfg.backoff_max_ms / 1000 + 1) {
                        secs = wh->cfg.backoff_max_ms / 1000 + 1;
                    }
                    out->retry_after_ms = (int64_t)secs * 1000;
                }
            }
        }
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
}

/* Delay before the attempt that follows `attempts` failed ones, in milliseconds. */
static int64_t backoff_delay(struct dw_webhook *wh, int64_t attempts, int64_t retry_after_ms)
{
    int64_t cap = wh->cfg.backoff_max_ms;
    if (retry_after_ms > 0) {
        return DW_MIN(retry_after_ms, cap);
    }
    int64_t d = wh->cfg.backoff_initial_ms;
    for (int64_t i = 1; i < attempts && d < cap; i++) {
        d *= 2;
    }
    d = DW_MIN(d, cap);
    /* Jitter uniform in [d/2, d]: see the comment at the top of the file. */
    double u = erand48(wh->rng);
    return d / 2 + (int64_t)(u * (double)(d - d / 2 + 1));
}

static void timespec_from_mono_ms(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Index of the item due soonest (ties: oldest). Caller holds the lock; count > 0. */
static size_t pick_next(const struct dw_webhook *wh)
{
    size_t best = 0;
    for (size_t i = 1; i < wh->count; i++) {
        const struct wh_item *a = wh->items[i];
        const struct wh_item *b = wh->items[best];
        if (a->next_at < b->next_at || (a->next_at == b->next_at && a->seq < b->seq)) {
            best = i;
        }
    }
    return best;
}

/* Logs an item given up for good and frees it. Called without the lock (logging does I/O). */
static void log_failed(struct dw_webhook *wh, struct wh_item *it, const char *error)
{
    dw_log(DW_LOG_WARN, "webhook delivery failed", "{s:s,s:s,s:i,s:s}", "key", it->key, "endpoint",
           wh->endpoint, "attempts", (int)it->attempts, "error", error);
    item_free(it);
}

enum wh_settled { WH_RETRY, WH_DELIVERED, WH_FAILED };

/*
 * Settles one attempt: success, final failure or a retry put back in the array. Caller holds
 * the lock; the item's slot is still reserved by `inflight`. Metrics move here, before the
 * slot is released, so that pending() == 0 implies the counters are final.
 */
static enum wh_settled settle(struct dw_webhook *wh, struct wh_item *it,
                              const struct wh_outcome *out)
{
    if (out->ok) {
        double secs = (double)(mono_us() - it->enqueued_us) / 1e6;
        dw_metric_add(wh->m_seconds, secs > 0 ? secs : 0.0);
        dw_metric_inc(wh->m_sent);
        dw_metric_add(wh->m_depth, -1.0);
        return WH_DELIVERED;
    }
    int final = !out->retryable || it->attempts >= wh->cfg.max_attempts;
    int64_t next_at = 0;
    if (!final) {
        next_at = dw_mono_ms() + backoff_delay(wh, it->attempts, out->retry_after_ms);
        /* No retry is scheduled past the flush deadline. */
        final = wh->stopping && next_at > wh->deadline_ms;
    }
    if (final) {
        dw_metric_inc(wh->m_failed);
        dw_metric_add(wh->m_depth, -1.0);
        return WH_FAILED;
    }
    it->next_at = next_at;
    wh->items[wh->count++] = it;
    dw_metric_inc(wh->m_retried);
    return WH_RETRY;
}

/* @locality delivery thread */
static void *delivery_main(void *arg)
{
    struct dw_webhook *wh = arg;

    pthread_mutex_lock(&wh->lock);
    for (;;) {
        int64_t now = dw_mono_ms();
        if (wh->stopping && (wh->count == 0 || now >= wh->deadline_ms)) {
            break;
        }
        if (wh->count == 0) {
            pthread_cond_wait(&wh->cond, &wh->lock);
            continue;
        }
        size_t idx = pick_next(wh);
        struct wh_item *it = wh->items[idx];
        if (it->next_at > now) {
            int64_t wake = it->next_at;
            if (wh->stopping) {
                wake = DW_MIN(wake, wh->deadline_ms);
            }
            struct timespec ts;
            timespec_from_mono_ms(wake, &ts);
            pthread_cond_timedwait(&wh->cond, &wh->lock, &ts);
            continue;
        }
        /* Take it out; its slot stays reserved through `inflight`. */
        wh->items[idx] = wh->items[--wh->count];
        wh->inflight = 1;
        int64_t budget = wh->cfg.timeout_ms;
        if (wh->stopping) {
            budget = DW_MAX(1, DW_MIN(budget, wh->deadline_ms - now));
        }
        pthread_mutex_unlock(&wh->lock);

        struct wh_outcome out;
        it->attempts++;
        attempt_post(wh, it, budget, &out);

        pthread_mutex_lock(&wh->lock);
        enum wh_settled st = settle(wh, it, &out);
        wh->inflight = 0;
        if (st != WH_RETRY) {
            pthread_mutex_unlock(&wh->lock);
            if (st == WH_FAILED) {
                log_failed(wh, it, out.error);
            } else {
                dw_log(DW_LOG_DEBUG, "webhook delivered", "{s:s,s:i}", "key", it->key, "attempts",
                       (int)it->attempts);
                item_free(it);
            }
            pthread_mutex_lock(&wh->lock);
        }
    }
    /* Deadline passed with items left: they are given up, not silently lost. */
    size_t left = wh->count;
    wh->count = 0;
    dw_metric_add(wh->m_failed, (double)left);
    dw_metric_add(wh->m_depth, -(double)left);
    pthread_mutex_unlock(&wh->lock);
    for (size_t i = 0; i < left; i++) {
        struct wh_item *it = wh->items[i];
        log_failed(wh, it,
                   it->attempts > 0 ? "shutdown before a successful retry"
                                    : "shutdown before the first attempt");
    }
    return NULL;
}

static int check_cfg(const struct dw_webhook_cfg *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg || !cfg->url || !cfg->url[0]) {
        return dw_err(errstr, errstr_size, "webhook: url is required");
    }
    if (cfg->timeout_ms <= 0 || cfg->timeout_ms > 3600 * 1000) {
        return dw_err(errstr, errstr_size, "webhook: timeout_ms must be in (0, 3600000]");
    }
    if (cfg->max_attempts < 1 || cfg->max_attempts > 1000000) {
        return dw_err(errstr, errstr_size, "webhook: max_attempts must be in [1, 1000000]");
    }
    if (cfg->backoff_initial_ms <= 0) {
        return dw_err(errstr, errstr_size, "webhook: backoff_initial_ms must be > 0");
    }
    if (cfg->backoff_max_ms < cfg->backoff_initial_ms || cfg->backoff_max_ms > 86400 * 1000) {
        return dw_err(errstr, errstr_size,
                      "webhook: backoff_max_ms must be in [backoff_initial_ms, 86400000]");
    }
    if (cfg->queue_size < 1 || cfg->queue_size > 10000000) {
        return dw_err(errstr, errstr_size, "webhook: queue_size must be in [1, 10000000]");
    }
    return 0;
}

struct dw_webhook *dw_webhook_new(const struct dw_webhook_cfg *cfg, char *errstr,
                                  size_t errstr_size)
{
    struct dw_webhook *wh = NULL;
    pthread_condattr_t cattr;
    int have_lock = 0;
    int have_cond = 0;

    if (check_cfg(cfg, errstr, errstr_size) < 0) {
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        dw_err(errstr, errstr_size, "webhook: curl_global_init failed: %s",
               curl_easy_strerror(curl_init_rc));
        return NULL;
    }

    wh = dw_calloc(1, sizeof(*wh));
    wh->cfg = *cfg;
    wh->url = dw_strdup(cfg->url);
    wh->cfg.url = wh->url;
    if (parse_endpoint(wh, errstr, errstr_size) < 0) {
        goto err;
    }
    wh->items = dw_calloc((size_t)cfg->queue_size, sizeof(*wh->items));
    int64_t seed = dw_now_ms() ^ (int64_t)(uintptr_t)wh;
    wh->rng[0] = (unsigned short)seed;
    wh->rng[1] = (unsigned short)(seed >> 16);
    wh->rng[2] = (unsigned short)(seed >> 32);

    wh->curl = curl_easy_init();
    if (!wh->curl) {
        dw_err(errstr, errstr_size, "webhook: curl_easy_init failed");
        goto err;
    }
    /* Options fixed for the handle's life; the handle is reused so connections stay alive. */
    if (curl_easy_setopt(wh->curl, CURLOPT_URL, wh->url) != CURLE_OK) {
        dw_err(errstr, errstr_size, "webhook: url rejected by libcurl");
        goto err;
    }
    curl_easy_setopt(wh->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(wh->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(wh->curl, CURLOPT_USERAGENT, "driftwatch/" DW_VERSION);
    curl_easy_setopt(wh->curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(wh->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(wh->curl, CURLOPT_PROTOCOLS_STR, "http,https");

    wh->m_sent = dw_metrics_series("driftwatch_alerts_sent_total", "Alerts delivered (2xx answer).",
                                   DW_METRIC_COUNTER, DW_WEBHOOK_LABELS);
    wh->m_failed = dw_metrics_series("driftwatch_alerts_failed_total",
                                     "Alerts given up after a final error or the last attempt.",
                                     DW_METRIC_COUNTER, DW_WEBHOOK_LABELS);
    wh->m_retried =
        dw_metrics_series("driftwatch_alerts_retried_total", "Alert delivery retries scheduled.",
                          DW_METRIC_COUNTER, DW_WEBHOOK_LABELS);
    wh->m_dropped = dw_metrics_series("driftwatch_alerts_dropped_total",
                                      "Alerts rejected because the delivery queue was full.",
                                      DW_METRIC_COUNTER, DW_WEBHOOK_LABELS);
    wh->m_depth =
        dw_metrics_series("driftwatch_alert_queue_depth", "Alerts queued or being delivered.",
                          DW_METRIC_GAUGE, DW_WEBHOOK_LABELS);
    wh->m_seconds = dw_metrics_series("driftwatch_alert_delivery_seconds_total",
                                      "Sum of enqueue-to-2xx latencies of delivered alerts.",
                                      DW_METRIC_COUNTER, DW_WEBHOOK_LABELS);

    if (pthread_mutex_init(&wh->lock, NULL) != 0) {
        dw_err(errstr, errstr_size, "webhook: pthread_mutex_init failed");
        goto err;
    }
    have_lock = 1;
    /* Timed waits use the monotonic clock, like next_at. */
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&wh->cond, &cattr);
    pthread_condattr_destroy(&cattr);
    if (crc != 0) {
        dw_err(errstr, errstr_size, "webhook: pthread_cond_init failed");
        goto err;
    }
    have_cond = 1;
    if (pthread_create(&wh->thread, NULL, delivery_main, wh) != 0) {
        dw_err(errstr, errstr_size, "webhook: cannot start the delivery thread");
        goto err;
    }
    return wh;

err:
    if (have_cond) {
        pthread_cond_destroy(&wh->cond);
    }
    if (have_lock) {
        pthread_mutex_destroy(&wh->lock);
    }
    if (wh->curl) {
        curl_easy_cleanup(wh->curl);
    }
    free(wh->items);
    free(wh->url);
    free(wh);
    return NULL;
}

/* A key goes into two header lines: no control characters (header injection), bounded. */
static int key_valid(const char *key)
{
    size_t len = 0;
    for (const char *p = key; *p; p++, len++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || len >= DW_WEBHOOK_KEY_MAX) {
            return 0;
        }
    }
    return len > 0;
}

int dw_webhook_enqueue(struct dw_webhook *wh, const char *idempotency_key, const char *body)
{
    if (!idempotency_key || !body || !key_valid(idempotency_key)) {
        dw_metric_inc(wh->m_dropped);
        dw_log_limited("webhook-bad-key", 5, DW_LOG_ERROR,
                       "webhook alert rejected: missing body or invalid idempotency key", NULL);
        return -1;
    }
    /* Copy before taking the lock: the critical section stays a few pointer moves. */
    struct wh_item *it = dw_calloc(1, sizeof(*it));
    it->key = dw_strdup(idempotency_key);
    it->body_len = strlen(body);
    it->body = dw_strndup(body, it->body_len);
    it->enqueued_us = mono_us();
    it->next_at = dw_mono_ms();

    pthread_mutex_lock(&wh->lock);
    if (wh->count + wh->inflight >= (size_t)wh->cfg.queue_size) {
        pthread_mutex_unlock(&wh->lock);
        dw_metric_inc(wh->m_dropped);
        dw_log_limited("webhook-queue-full", 1, DW_LOG_WARN, "webhook queue full, alert dropped",
                       "{s:s,s:i}", "endpoint", wh->endpoint, "queue_size",
                       (int)wh->cfg.queue_size);
        item_free(it);
        return -1;
    }
    it->seq = wh->next_seq++;
    wh->items[wh->count++] = it;
    dw_metric_add(wh->m_depth, 1.0);
    pthread_cond_signal(&wh->cond);
    pthread_mutex_unlock(&wh->lock);
    return 0;
}

size_t dw_webhook_pending(struct dw_webhook *wh)
{
    pthread_mutex_lock(&wh->lock);
    size_t n = wh->count + wh->inflight;
    pthread_mutex_unlock(&wh->lock);
    return n;
}

void dw_webhook_destroy(struct dw_webhook *wh, int64_t flush_ms)
{
    if (!wh) {
        return;
    }
    pthread_mutex_lock(&wh->lock);
    wh->stopping = 1;
    wh->deadline_ms = dw_mono_ms() + DW_MAX(flush_ms, 0);
    pthread_cond_signal(&wh->cond);
    pthread_mutex_unlock(&wh->lock);
    pthread_join(wh->thread, NULL);

    pthread_cond_destroy(&wh->cond);
    pthread_mutex_destroy(&wh->lock);
    curl_easy_cleanup(wh->curl);
    free(wh->items);
    free(wh->url);
    free(wh);
}
