/*
 * test_webhook.c - dw_webhook against a real HTTP receiver on 127.0.0.1.
 *
 * The receiver is libmicrohttpd in this process (a thread per connection, so a request that
 * is held back does not block the others). Its answers are scripted per request: a queue of
 * steps {status, delay in milliseconds, Retry-After seconds}, 200 once the queue is empty, an
 * optional "fail this key N times" rule and a gate that holds every request until opened. It
 * records each request's body, headers and arrival time. Counters are read as deltas because
 * the metrics registry is process-wide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "driftwatch/dw_common.h"
#include "driftwatch/dw_log.h"
#include "driftwatch/dw_metrics.h"
#include "driftwatch/dw_webhook.h"

#define RX_MAX_STEPS 64
#define RX_MAX_REQS 4096
/* How long a test waits for deliveries before failing (milliseconds). */
#define WAIT_MS 10000

struct rx_step {
    int status;
    int delay_ms;
    int retry_after_s; /* 0: no header */
};

struct rx_req {
    char *body;
    char *idem;
    char *whid;
    char *ua;
    char *ctype;
    int status;
    int64_t at_ms; /* monotonic */
};

struct receiver {
    struct MHD_Daemon *d;
    uint16_t port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rx_step steps[RX_MAX_STEPS];
    size_t nsteps;
    size_t step_pos;
    char fail_key[64];
    int fail_left;
    int gate_closed;
    int shutting;
    struct rx_req reqs[RX_MAX_REQS];
    size_t nreqs;
};

struct rx_conn {
    char *body;
    size_t len;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct receiver *rx = cls;
    struct rx_conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof(*c));
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        c->body = realloc(c->body, c->len + *upload_data_size + 1);
        memcpy(c->body + c->len, upload_data, *upload_data_size);
        c->len += *upload_data_size;
        c->body[c->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    struct rx_step step = {200, 0, 0};
    pthread_mutex_lock(&rx->mu);
    if (rx->fail_left > 0 && idem && strcmp(idem, rx->fail_key) == 0) {
        rx->fail_left--;
        step.status = 500;
    } else if (rx->step_pos < rx->nsteps) {
        step = rx->steps[rx->step_pos++];
    }
    if (rx->nreqs < RX_MAX_REQS) {
        struct rx_req *r = &rx->reqs[rx->nreqs++];
        r->body = strdup(c->body ? c->body : "");
        r->idem = dup_or_null(idem);
        r->whid = dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id"));
        r->ua = dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent"));
        r->ctype = dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"));
        r->status = step.status;
        r->at_ms = dw_mono_ms();
    }
    pthread_cond_broadcast(&rx->cv);
    while (rx->gate_closed && !rx->shutting) {
        pthread_cond_wait(&rx->cv, &rx->mu);
    }
    pthread_mutex_unlock(&rx->mu);
    if (step.delay_ms > 0) {
        sleep_ms(step.delay_ms);
    }

    struct MHD_Response *resp =
        MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    if (step.retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", step.retry_after_s);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)step.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void rx_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct rx_conn *c = *con_cls;
    if (c) {
        free(c->body);
        free(c);
        *con_cls = NULL;
    }
}

static struct receiver *rx_new(void)
{
    struct receiver *rx = calloc(1, sizeof(*rx));
    pthread_mutex_init(&rx->mu, NULL);
    pthread_cond_init(&rx->cv, NULL);
    return rx;
}

/* Starts listening on 127.0.0.1:port (0: any free port, read back into rx->port). */
static void rx_start(struct receiver *rx, uint16_t port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rx->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, rx_handler, rx, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, rx_completed, rx, MHD_OPTION_END);
    assert_non_null(rx->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(rx->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    rx->port = info->port;
    assert_true(rx->port != 0);
}

static void rx_script(struct receiver *rx, int status, int delay_ms, int retry_after_s)
{
    pthread_mutex_lock(&rx->mu);
    assert_true(rx->nsteps < RX_MAX_STEPS);
    rx->steps[rx->nsteps++] = (struct rx_step){status, delay_ms, retry_after_s};
    pthread_mutex_unlock(&rx->mu);
}

static void rx_set_gate(struct receiver *rx, int closed)
{
    pthread_mutex_lock(&rx->mu);
    rx->gate_closed = closed;
    pthread_cond_broadcast(&rx->cv);
    pthread_mutex_unlock(&rx->mu);
}

static size_t rx_count(struct receiver *rx)
{
    pthread_mutex_lock(&rx->mu);
    size_t n = rx->nreqs;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

static void rx_free(struct receiver *rx)
{
    if (rx->d) {
        pthread_mutex_lock(&rx->mu);
        rx->shutting = 1;
        pthread_cond_broadcast(&rx->cv);
        pthread_mutex_unlock(&rx->mu);
        MHD_stop_daemon(rx->d);
    }
    for (size_t i = 0; i < rx->nreqs; i++) {
        free(rx->reqs[i].body);
        free(rx->reqs[i].idem);
        free(rx->reqs[i].whid);
        free(rx->reqs[i].ua);
        free(rx->reqs[i].ctype);
    }
    pthread_cond_destroy(&rx->cv);
    pthread_mutex_destroy(&rx->mu);
    free(rx);
}

/* A port with nothing listening: bind to port 0, read the port, close. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---- metrics, read as deltas (help texts must match dw_webhook.c's) ---- */

struct counters {
    double sent, failed, retried, dropped, depth, seconds;
};

static void read_counters(struct counters *c)
{
    const char *l = "sink=\"webhook\"";
    c->sent = dw_metric_get(dw_metrics_series(
        "driftwatch_alerts_sent_total", "Alerts delivered (2xx answer).", DW_METRIC_COUNTER, l));
    c->failed = dw_metric_get(dw_metrics_series(
        "driftwatch_alerts_failed_total",
        "Alerts given up after a final error or the last attempt.", DW_METRIC_COUNTER, l));
    c->retried =
        dw_metric_get(dw_metrics_series("driftwatch_alerts_retried_total",
                                        "Alert delivery retries scheduled.", DW_METRIC_COUNTER, l));
    c->dropped = dw_metric_get(dw_metrics_series(
        "driftwatch_alerts_dropped_total", "Alerts rejected because the delivery queue was full.",
        DW_METRIC_COUNTER, l));
    c->depth = dw_metric_get(dw_metrics_series(
        "driftwatch_alert_queue_depth", "Alerts queued or being delivered.", DW_METRIC_GAUGE, l));
    c->seconds = dw_metric_get(dw_metrics_series(
        "driftwatch_alert_delivery_seconds_total",
        "Sum of enqueue-to-2xx latencies of delivered alerts.", DW_METRIC_COUNTER, l));
}

/* ---- helpers ---- */

static struct dw_webhook_cfg short_cfg(char *url_buf, size_t url_size, uint16_t port)
{
    snprintf(url_buf, url_size, "http://127.0.0.1:%u/hook", (unsigned)port);
    struct dw_webhook_cfg cfg = {
        .url = url_buf,
        .timeout_ms = 300,
        .max_attempts = 5,
        .backoff_initial_ms = 20,
        .backoff_max_ms = 200,
        .queue_size = 16,
    };
    return cfg;
}

static struct dw_webhook *wh_new(const struct dw_webhook_cfg *cfg)
{
    char err[256] = "";
    struct dw_webhook *wh = dw_webhook_new(cfg, err, sizeof(err));
    if (!wh) {
        fail_msg("dw_webhook_new: %s", err);
    }
    return wh;
}

static void wait_idle(struct dw_webhook *wh)
{
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (dw_webhook_pending(wh) > 0) {
        assert_true(dw_mono_ms() < until);
        sleep_ms(5);
    }
}

static void wait_requests(struct receiver *rx, size_t n)
{
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (rx_count(rx) < n) {
        assert_true(dw_mono_ms() < until);
        sleep_ms(5);
    }
}

/* ---- cases ---- */

static void test_bad_config(void **state)
{
    char err[256] = "";
    struct dw_webhook_cfg cfg = {"http://127.0.0.1:1/x", 300, 0, 20, 200, 4};
    assert_null(dw_webhook_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "max_attempts"));
    cfg.max_attempts = 3;
    cfg.url = "ftp://127.0.0.1/x";
    assert_null(dw_webhook_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "scheme"));
    cfg.url = "not a url";
    assert_null(dw_webhook_new(&cfg, err, sizeof(err)));
    cfg.url = "http://127.0.0.1:1/x";
    cfg.backoff_max_ms = 10; /* below backoff_initial_ms */
    assert_null(dw_webhook_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "backoff_max_ms"));
}

/* 1. 200 on the first try: one request, body and headers as sent. */
static void test_first_try(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    const char *body = "{\"alert\":\"drift\",\"model\":\"fraud\",\"psi\":0.31}";
    assert_int_equal(dw_webhook_enqueue(wh, "fraud:psi:amount:1700000000", body), 0);
    wait_idle(wh);
    read_counters(&after);

    assert_int_equal(rx_count(rx), 1);
    assert_string_equal(rx->reqs[0].body, body);
    assert_string_equal(rx->reqs[0].idem, "fraud:psi:amount:1700000000");
    assert_string_equal(rx->reqs[0].whid, "fraud:psi:amount:1700000000");
    assert_string_equal(rx->reqs[0].ctype, "application/json");
    assert_string_equal(rx->reqs[0].ua, "driftwatch/" DW_VERSION);
    assert_true(after.sent - before.sent == 1.0);
    assert_true(after.failed - before.failed == 0.0);
    assert_true(after.retried - before.retried == 0.0);
    assert_true(after.depth - before.depth == 0.0);
    assert_true(after.seconds - before.seconds > 0.0);
    assert_true(after.seconds - before.seconds < 5.0);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 2. 500, 500, 200: three requests with the same webhook-id, two retries. */
static void test_retry_5xx(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    rx_script(rx, 500, 0, 0);
    rx_script(rx, 500, 0, 0);
    rx_script(rx, 200, 0, 0);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "k-retry", "{\"n\":2}"), 0);
    wait_idle(wh);
    read_counters(&after);

    assert_int_equal(rx_count(rx), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(rx->reqs[i].whid, "k-retry");
        assert_string_equal(rx->reqs[i].idem, "k-retry");
        assert_string_equal(rx->reqs[i].body, "{\"n\":2}");
    }
    /* Backoff: at least initial/2 = 10 ms before the first retry. */
    assert_true(rx->reqs[1].at_ms - rx->reqs[0].at_ms >= 9);
    assert_true(after.retried - before.retried == 2.0);
    assert_true(after.sent - before.sent == 1.0);
    assert_true(after.failed - before.failed == 0.0);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 3. 400 is final: one request, failed +1. Also: only scheme://host:port is logged. */
static void test_4xx_not_retried(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    rx_script(rx, 400, 0, 0);
    char url[256];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    snprintf(url, sizeof(url), "http://user:hunter2@127.0.0.1:%u/hook/s3cr3tpath?token=abc123",
             (unsigned)rx->port);
    struct counters before, after;
    read_counters(&before);

    /* Capture stdout (the JSON log) in a temporary file. */
    char logpath[] = "/tmp/dw_webhook_logXXXXXX";
    int logfd = mkstemp(logpath);
    assert_true(logfd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(logfd, STDOUT_FILENO);

    struct dw_webhook *wh = wh_new(&cfg);
    assert_int_equal(dw_webhook_enqueue(wh, "k-400", "{}"), 0);
    wait_idle(wh);
    sleep_ms(100); /* a wrong retry would show up here */
    dw_webhook_destroy(wh, 1000);

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    read_counters(&after);

    char log[8192] = "";
    lseek(logfd, 0, SEEK_SET);
    ssize_t n = read(logfd, log, sizeof(log) - 1);
    close(logfd);
    unlink(logpath);
    assert_true(n > 0);
    log[n] = '\0';
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned)rx->port);
    assert_non_null(strstr(log, "webhook delivery failed"));
    assert_non_null(strstr(log, "k-400"));
    assert_non_null(strstr(log, endpoint));
    assert_non_null(strstr(log, "HTTP 400"));
    assert_null(strstr(log, "hunter2"));
    assert_null(strstr(log, "abc123"));
    assert_null(strstr(log, "s3cr3tpath"));

    assert_int_equal(rx_count(rx), 1);
    assert_true(after.failed - before.failed == 1.0);
    assert_true(after.retried - before.retried == 0.0);
    assert_true(after.sent - before.sent == 0.0);
    rx_free(rx);
}

/* 4. Two answers slower than the timeout, then a fast one: delivered after two retries. */
static void test_timeout_retried(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    rx_script(rx, 200, 600, 0);
    rx_script(rx, 200, 600, 0);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    int64_t t0 = dw_mono_ms();
    assert_int_equal(dw_webhook_enqueue(wh, "k-slow", "{\"slow\":true}"), 0);
    wait_idle(wh);
    int64_t took = dw_mono_ms() - t0;
    read_counters(&after);

    assert_int_equal(rx_count(rx), 3);
    assert_string_equal(rx->reqs[2].whid, "k-slow");
    /* Two timeouts of 300 ms each happened before the fast answer. */
    assert_true(took >= 550);
    assert_true(after.retried - before.retried == 2.0);
    assert_true(after.sent - before.sent == 1.0);
    assert_true(after.failed - before.failed == 0.0);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 5. Connection refused for about a second, then the receiver comes up on that port. */
static void test_connection_refused_then_up(void **state)
{
    uint16_t port = free_port();
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), port);
    cfg.max_attempts = 100;
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "k-down", "{\"down\":1}"), 0);
    sleep_ms(1000);
    read_counters(&after);
    assert_int_equal(dw_webhook_pending(wh), 1);
    assert_true(after.retried - before.retried >= 3.0); /* it kept trying */
    assert_true(after.sent - before.sent == 0.0);

    struct receiver *rx = rx_new();
    int64_t up_at = dw_mono_ms();
    rx_start(rx, port);
    assert_int_equal(rx->port, port);
    wait_idle(wh);
    sleep_ms(300); /* a duplicate delivery would show up here */
    read_counters(&after);

    assert_int_equal(rx_count(rx), 1);
    assert_true(rx->reqs[0].at_ms >= up_at);
    assert_string_equal(rx->reqs[0].body, "{\"down\":1}");
    assert_true(after.sent - before.sent == 1.0);
    assert_true(after.failed - before.failed == 0.0);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 6. Queue bound: 3 queued or in flight, the 4th and 5th are dropped. */
static void test_queue_bound(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    rx_set_gate(rx, 1);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    cfg.queue_size = 3;
    cfg.timeout_ms = 2000;
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "q1", "{\"i\":1}"), 0);
    wait_requests(rx, 1); /* q1 is in flight, held by the receiver */
    assert_int_equal(dw_webhook_enqueue(wh, "q2", "{\"i\":2}"), 0);
    assert_int_equal(dw_webhook_enqueue(wh, "q3", "{\"i\":3}"), 0);
    assert_int_equal(dw_webhook_enqueue(wh, "q4", "{\"i\":4}"), -1);
    assert_int_equal(dw_webhook_enqueue(wh, "q5", "{\"i\":5}"), -1);
    assert_int_equal(dw_webhook_pending(wh), 3);
    read_counters(&after);
    assert_true(after.dropped - before.dropped == 2.0);
    assert_true(after.depth - before.depth == 3.0);

    rx_set_gate(rx, 0);
    wait_idle(wh);
    read_counters(&after);
    assert_true(after.sent - before.sent == 3.0);
    assert_true(after.depth - before.depth == 0.0);
    assert_int_equal(rx_count(rx), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(strcmp(rx->reqs[i].idem, "q4") != 0 && strcmp(rx->reqs[i].idem, "q5") != 0);
    }
    /* Room again once delivered. */
    assert_int_equal(dw_webhook_enqueue(wh, "q6", "{\"i\":6}"), 0);
    wait_idle(wh);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 7. No head-of-line blocking: B (enqueued after A) is delivered while A is backing off. */
static void test_no_head_of_line(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    pthread_mutex_lock(&rx->mu);
    snprintf(rx->fail_key, sizeof(rx->fail_key), "A");
    rx->fail_left = 4;
    pthread_mutex_unlock(&rx->mu);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    cfg.max_attempts = 10;
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "A", "{\"k\":\"A\"}"), 0);
    assert_int_equal(dw_webhook_enqueue(wh, "B", "{\"k\":\"B\"}"), 0);
    wait_idle(wh);
    read_counters(&after);

    assert_int_equal(rx_count(rx), 6); /* A: 4 x 500 + 200, B: 200 */
    size_t b_ok = RX_MAX_REQS, a_ok = RX_MAX_REQS;
    for (size_t i = 0; i < rx->nreqs; i++) {
        if (rx->reqs[i].status == 200 && strcmp(rx->reqs[i].idem, "B") == 0) {
            b_ok = i;
        }
        if (rx->reqs[i].status == 200 && strcmp(rx->reqs[i].idem, "A") == 0) {
            a_ok = i;
        }
    }
    assert_true(b_ok < RX_MAX_REQS && a_ok < RX_MAX_REQS);
    assert_true(b_ok < a_ok);
    /* A was first out of the door, and B went right after A's first failure. */
    assert_string_equal(rx->reqs[0].idem, "A");
    assert_string_equal(rx->reqs[1].idem, "B");
    assert_true(after.sent - before.sent == 2.0);
    assert_true(after.retried - before.retried == 4.0);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 8. 429 with Retry-After: 1 waits about a second (backoff_max above it). */
static void test_retry_after(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    rx_script(rx, 429, 0, 1);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    cfg.backoff_max_ms = 2000; /* Retry-After is capped at backoff_max */
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "k-429", "{}"), 0);
    wait_idle(wh);
    read_counters(&after);

    assert_int_equal(rx_count(rx), 2);
    int64_t gap = rx->reqs[1].at_ms - rx->reqs[0].at_ms;
    assert_true(gap >= 900);
    assert_true(gap < 1900);
    assert_true(after.retried - before.retried == 1.0);
    assert_true(after.sent - before.sent == 1.0);
    assert_true(after.seconds - before.seconds >= 0.9);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 8b. Retry-After above backoff_max is capped (503 too). */
static void test_retry_after_capped(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    rx_script(rx, 503, 0, 30);
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "k-503", "{}"), 0);
    wait_idle(wh);
    assert_int_equal(rx_count(rx), 2);
    int64_t gap = rx->reqs[1].at_ms - rx->reqs[0].at_ms;
    assert_true(gap >= 190);
    assert_true(gap < 900);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* Gives up after max_attempts on a receiver that keeps failing. */
static void test_max_attempts(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    for (int i = 0; i < 10; i++) {
        rx_script(rx, 503, 0, 0);
    }
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    cfg.max_attempts = 3;
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "k-give-up", "{}"), 0);
    wait_idle(wh);
    sleep_ms(300);
    read_counters(&after);
    assert_int_equal(rx_count(rx), 3);
    assert_true(after.failed - before.failed == 1.0);
    assert_true(after.retried - before.retried == 2.0);
    assert_true(after.sent - before.sent == 0.0);

    dw_webhook_destroy(wh, 1000);
    rx_free(rx);
}

/* 9. destroy with flush: what is queued is delivered before destroy returns. */
static void test_destroy_flushes(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    for (int i = 0; i < 5; i++) {
        rx_script(rx, 200, 30, 0);
    }
    rx_script(rx, 500, 0, 0); /* the 6th item needs one retry */
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    for (int i = 0; i < 6; i++) {
        char key[16];
        snprintf(key, sizeof(key), "f%d", i);
        assert_int_equal(dw_webhook_enqueue(wh, key, "{\"flush\":true}"), 0);
    }
    dw_webhook_destroy(wh, 5000);
    read_counters(&after);

    assert_int_equal(rx_count(rx), 7);
    assert_true(after.sent - before.sent == 6.0);
    assert_true(after.failed - before.failed == 0.0);
    rx_free(rx);
}

/* The flush deadline holds against a receiver that never succeeds. */
static void test_destroy_deadline(void **state)
{
    struct receiver *rx = rx_new();
    rx_start(rx, 0);
    for (int i = 0; i < RX_MAX_STEPS; i++) {
        rx_script(rx, 500, 0, 0);
    }
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), rx->port);
    cfg.max_attempts = 1000;
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);

    assert_int_equal(dw_webhook_enqueue(wh, "d1", "{}"), 0);
    assert_int_equal(dw_webhook_enqueue(wh, "d2", "{}"), 0);
    wait_requests(rx, 2);
    int64_t t0 = dw_mono_ms();
    dw_webhook_destroy(wh, 300);
    int64_t took = dw_mono_ms() - t0;
    read_counters(&after);

    assert_true(took < 300 + 300 + 200); /* flush_ms + one attempt's timeout + slack */
    assert_true(after.failed - before.failed == 2.0);
    assert_true(after.sent - before.sent == 0.0);
    assert_true(after.depth - before.depth == 0.0);
    rx_free(rx);
}

/* Enqueue never waits on the network: 1000 items while the receiver is down. */
static void test_enqueue_never_blocks(void **state)
{
    uint16_t port = free_port();
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), port);
    cfg.queue_size = 2000;
    cfg.timeout_ms = 1000;
    struct counters before, after;
    read_counters(&before);
    struct dw_webhook *wh = wh_new(&cfg);
    /* The 1000 items given up at destroy would each log a warn line. */
    assert_int_equal(dw_log_set_level("error"), 0);

    int64_t t0 = dw_mono_ms();
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "n%d", i);
        assert_int_equal(dw_webhook_enqueue(wh, key, "{\"x\":1}"), 0);
    }
    int64_t took = dw_mono_ms() - t0;
    assert_true(took < 300);
    assert_true(dw_webhook_pending(wh) >= 999);
    read_counters(&after);
    assert_true(after.dropped - before.dropped == 0.0);

    dw_webhook_destroy(wh, 0);
    assert_int_equal(dw_log_set_level("info"), 0);
    read_counters(&after);
    assert_true(after.failed - before.failed == 1000.0);
    assert_true(after.depth - before.depth == 0.0);
}

/* Keys that would break the header lines are rejected. */
static void test_bad_key_rejected(void **state)
{
    char url[128];
    struct dw_webhook_cfg cfg = short_cfg(url, sizeof(url), free_port());
    struct dw_webhook *wh = wh_new(&cfg);
    assert_int_equal(dw_webhook_enqueue(wh, "a\r\nX-Evil: 1", "{}"), -1);
    assert_int_equal(dw_webhook_enqueue(wh, "", "{}"), -1);
    assert_int_equal(dw_webhook_enqueue(wh, "ok", NULL), -1);
    assert_int_equal(dw_webhook_pending(wh), 0);
    dw_webhook_destroy(wh, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),       cmocka_unit_test(test_first_try),
        cmocka_unit_test(test_retry_5xx),        cmocka_unit_test(test_4xx_not_retried),
        cmocka_unit_test(test_timeout_retried),  cmocka_unit_test(test_connection_refused_then_up),
        cmocka_unit_test(test_queue_bound),      cmocka_unit_test(test_no_head_of_line),
        cmocka_unit_test(test_retry_after),      cmocka_unit_test(test_retry_after_capped),
        cmocka_unit_test(test_max_attempts),     cmocka_unit_test(test_destroy_flushes),
        cmocka_unit_test(test_destroy_deadline), cmocka_unit_test(test_enqueue_never_blocks),
        cmocka_unit_test(test_bad_key_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
