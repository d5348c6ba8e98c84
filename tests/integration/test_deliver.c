/*
 * test_deliver.c - alert delivery (dw_deliver) against a real redis-server (started here on a
 * free loopback port, with a password and a non-zero db) and an in-process HTTP receiver
 * (libmicrohttpd on 127.0.0.1, one thread per connection) that records every request and
 * answers from a per-path script: a status, a sleep longer than the sink's timeout, or a gate
 * held closed until the test opens it.
 *
 * Cases: first-time delivery (field removed from Redis); 500 then 200 (one accepted delivery,
 * the same webhook-id on every attempt); a timeout then success; connection refused until
 * max_attempts; PagerDuty 400 not retried; queue full; resume from Redis with a duplicate
 * submit; a slow sink not delaying a fast one (ordering of events, no wall-clock threshold);
 * a Redis connection killed under the delivery thread. Backoffs are 10..50 ms.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>

#include "dw_test_redis.h"

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_deliver.h"
#include "driftwatch/core/dw_metrics.h"

#include "../unit/dw_test.h"

#define REDIS_PASSWORD "deliver-test-pw"
#define REDIS_DB 2
/* Longest a test waits for something that should happen (milliseconds): a safety net
 * against hangs, not a timing assertion. */
#define WAIT_MS 10000
#define MAX_RECS 256
#define MAX_SCRIPTS 16
#define MAX_STEPS 8

/* ---- the HTTP receiver ------------------------------------------------------------------ */

struct rec {
    char path[64];
    char hook_id[128];
    char idem[128];
    char ctype[64];
    char ts[32];
    char sig[128];
    char *body;
    long status;        /* answered status, 0 while not answered yet */
    int64_t arrive_seq; /* event order: request fully received */
    int64_t answer_seq; /* event order: answer decided (0 = not yet) */
};

/* One step of a path's script: answer `status`, after sleeping `sleep_ms` or, when `gate`,
 * after the test opens the path's gate. */
struct step {
    long status;
    int sleep_ms;
    int gate;
};

struct script {
    char path[64];
    struct step steps[MAX_STEPS];
    int n_steps;
    int next;
    int gate_open;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct rec recs[MAX_RECS];
    int n;
    int64_t seq;
    struct script scripts[MAX_SCRIPTS];
    int n_scripts;
} g_rx = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct MHD_Daemon *g_mhd;
static int g_http_port;
static pid_t g_redis_pid;
static int g_redis_port;
static redisContext *g_rc;

struct upload {
    char *data;
    size_t len;
};

static struct script *script_find(const char *path)
{
    for (int i = 0; i < g_rx.n_scripts; i++) {
        if (strcmp(g_rx.scripts[i].path, path) == 0) {
            return &g_rx.scripts[i];
        }
    }
    return NULL;
}

/* Scripts a path: steps are taken in order, then every request is answered 200. */
static void script(const char *path, const struct step *steps, int n)
{
    pthread_mutex_lock(&g_rx.lock);
    assert_true(g_rx.n_scripts < MAX_SCRIPTS && n <= MAX_STEPS);
    struct script *s = &g_rx.scripts[g_rx.n_scripts++];
    memset(s, 0, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", path);
    memcpy(s->steps, steps, (size_t)n * sizeof(*steps));
    s->n_steps = n;
    pthread_mutex_unlock(&g_rx.lock);
}

static void gate_open(const char *path)
{
    pthread_mutex_lock(&g_rx.lock);
    struct script *s = script_find(path);
    assert_non_null(s);
    s->gate_open = 1;
    pthread_cond_broadcast(&g_rx.cond);
    pthread_mutex_unlock(&g_rx.lock);
}

static void copy_header(struct MHD_Connection *conn, const char *name, char *out, size_t size)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    snprintf(out, size, "%s", v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct upload *up = *con_cls;
    if (!up) {
        up = calloc(1, sizeof(*up));
        *con_cls = up;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        up->data = realloc(up->data, up->len + *upload_data_size + 1);
        memcpy(up->data + up->len, upload_data, *upload_data_size);
        up->len += *upload_data_size;
        up->data[up->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct step st = {.status = 200};
    pthread_mutex_lock(&g_rx.lock);
    int idx = g_rx.n < MAX_RECS ? g_rx.n++ : MAX_RECS - 1;
    struct rec *r = &g_rx.recs[idx];
    snprintf(r->path, sizeof(r->path), "%s", url);
    copy_header(conn, "webhook-id", r->hook_id, sizeof(r->hook_id));
    copy_header(conn, "Idempotency-Key", r->idem, sizeof(r->idem));
    copy_header(conn, "Content-Type", r->ctype, sizeof(r->ctype));
    copy_header(conn, "webhook-timestamp", r->ts, sizeof(r->ts));
    copy_header(conn, "webhook-signature", r->sig, sizeof(r->sig));
    r->body = strdup(up->data ? up->data : "");
    r->arrive_seq = ++g_rx.seq;
    struct script *s = script_find(url);
    if (s && s->next < s->n_steps) {
        st = s->steps[s->next++];
    }
    pthread_cond_broadcast(&g_rx.cond);
    pthread_mutex_unlock(&g_rx.lock);

    if (st.sleep_ms > 0) {
        usleep((useconds_t)st.sleep_ms * 1000);
    }
    pthread_mutex_lock(&g_rx.lock);
    if (st.gate) {
        int64_t until = dw_mono_ms() + WAIT_MS;
        while (!s->gate_open && dw_mono_ms() < until) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g_rx.cond, &g_rx.lock, &ts);
        }
    }
    r->status = st.status;
    r->answer_seq = ++g_rx.seq;
    pthread_cond_broadcast(&g_rx.cond);
    pthread_mutex_unlock(&g_rx.lock);

    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)st.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;
    if (up) {
        free(up->data);
        free(up);
        *con_cls = NULL;
    }
}

/* Copies of the requests received on a path, in arrival order. @returns how many. */
static int recs_of(const char *path, struct rec *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&g_rx.lock);
    for (int i = 0; i < g_rx.n && n < max; i++) {
        if (strcmp(g_rx.recs[i].path, path) == 0) {
            out[n++] = g_rx.recs[i];
        }
    }
    pthread_mutex_unlock(&g_rx.lock);
    return n;
}

static int count_of(const char *path)
{
    struct rec recs[MAX_RECS];
    return recs_of(path, recs, MAX_RECS);
}

/* ---- Redis and processes ---------------------------------------------------------------- */

static redisContext *redis_login(void)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", g_redis_port, tv);
    if (!c || c->err) {
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    redisReply *rep = redisCommand(c, "AUTH %s", REDIS_PASSWORD);
    int ok = rep && rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    rep = ok ? redisCommand(c, "SELECT %d", REDIS_DB) : NULL;
    ok = rep && rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int setup(void **state)
{
    g_redis_port = dw_test_free_port();
    g_redis_pid = dw_test_redis_start(g_redis_port, REDIS_PASSWORD);
    for (int i = 0; i < 100 && !g_rc; i++) {
        g_rc = redis_login();
        if (!g_rc) {
            usleep(50 * 1000);
        }
    }
    if (!g_rc) {
        return -1;
    }

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_mhd =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!g_mhd) {
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(g_mhd, MHD_DAEMON_INFO_BIND_PORT);
    g_http_port = info ? info->port : 0;
    return g_http_port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    if (g_mhd) {
        MHD_stop_daemon(g_mhd);
    }
    for (int i = 0; i < g_rx.n; i++) {
        free(g_rx.recs[i].body);
    }
    if (g_rc) {
        redisFree(g_rc);
    }
    kill(g_redis_pid, SIGTERM);
    waitpid(g_redis_pid, NULL, 0);
    return 0;
}

static long long redis_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(g_rc, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* Writes a message as the caller of dw_deliver does before submitting it. */
/* A record as the evaluation commit of `model` writes it (model NULL: one written before
 * records named their model). */
static void persist_model(const char *key, const char *sink, const char *id, const char *body,
                          const char *model)
{
    char *field = dw_deliver_field(sink, id);
    char *record = dw_deliver_record(sink, id, body, dw_now_ms(), model);
    assert_non_null(record);
    redis_int("HSET %s %s %s", key, field, record);
    free(record);
    free(field);
}

/* A record as of wall clock created_ms (the order a resume submits them in). */
static void persist_at(const char *key, const char *sink, const char *id, const char *body,
                       const char *model, int64_t created_ms)
{
    char *field = dw_deliver_field(sink, id);
    char *record = dw_deliver_record(sink, id, body, created_ms, model);
    assert_non_null(record);
    redis_int("HSET %s %s %s", key, field, record);
    free(record);
    free(field);
}

static void persist(const char *key, const char *sink, const char *id, const char *body)
{
    persist_model(key, sink, id, body, NULL);
}

static int field_exists(const char *key, const char *sink, const char *id)
{
    char *field = dw_deliver_field(sink, id);
    long long v = redis_int("HEXISTS %s %s", key, field);
    free(field);
    return (int)v;
}

/* ---- sinks and waiting ------------------------------------------------------------------ */

static void sink_init(struct dw_sink_cfg *s, const char *name, enum dw_sink_type type,
                      const char *path, int port, int64_t timeout_ms, int64_t max_attempts)
{
    char url[256];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    s->type = type;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s?token=secret-in-query", port, path);
    s->url = strdup(url);
    s->routing_key = type == DW_SINK_PAGERDUTY ? strdup("R0UTINGKEY") : NULL;
    s->timeout_ms = timeout_ms;
    s->max_attempts = max_attempts;
    s->backoff_initial_ms = 10;
    s->backoff_max_ms = 50;
}

static void sink_clear(struct dw_sink_cfg *s)
{
    free(s->secret);
    free(s->name);
    free(s->url);
    free(s->routing_key);
}

/* the models a test's config names (resume takes the records of others with `unowned`) */
static const char *const g_models[] = {"fraud", "churn"};

static struct dw_deliver *deliver_new(struct dw_sink_cfg *sinks, size_t n, int64_t queue_size,
                                      const char *key)
{
    struct dw_deliver_cfg cfg = {
        .models = g_models,
        .n_models = 2,
        .sinks = sinks,
        .n_sinks = n,
        .queue_size = queue_size,
        .redis_host = "127.0.0.1",
        .redis_port = g_redis_port,
        .redis_password = REDIS_PASSWORD,
        .redis_db = REDIS_DB,
        .key = key,
        .redis_timeout_ms = 2000,
    };
    char errstr[256] = "";
    struct dw_deliver *d = dw_deliver_new(&cfg, errstr, sizeof(errstr));
    if (!d) {
        fail_msg("dw_deliver_new: %s", errstr);
    }
    return d;
}

static void wait_drained(struct dw_deliver *d)
{
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (dw_deliver_pending(d) > 0) {
        if (dw_mono_ms() > until) {
            fail_msg("queue not drained: %zu pending", dw_deliver_pending(d));
        }
        usleep(2000);
    }
}

static void wait_requests(const char *path, int n)
{
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (count_of(path) < n) {
        if (dw_mono_ms() > until) {
            fail_msg("%s: %d requests, want %d", path, count_of(path), n);
        }
        usleep(2000);
    }
}

static double metric(const char *name, const char *sink)
{
    struct dw_metric *m = dw_deliver_metric(name, sink);
    assert_non_null(m);
    return dw_metric_get(m);
}

#define SENT "driftwatch_alert_deliveries_sent_total"
#define FAILED "driftwatch_alert_deliveries_failed_total"
#define RETRIED "driftwatch_alert_deliveries_retried_total"
#define DROPPED "driftwatch_alert_deliveries_dropped_total"
#define SECONDS "driftwatch_alert_delivery_seconds_total"
#define SECONDS_COUNT "driftwatch_alert_deliveries_timed_total"
#define DEPTH "driftwatch_alert_queue_depth"

static void assert_metrics(const char *sink, double sent, double failed, double retried,
                           double dropped)
{
    assert_double_exact(metric(SENT, sink), sent);
    assert_double_exact(metric(FAILED, sink), failed);
    assert_double_exact(metric(RETRIED, sink), retried);
    assert_double_exact(metric(DROPPED, sink), dropped);
    assert_double_exact(metric(SECONDS_COUNT, sink), sent);
    if (sent > 0) {
        assert_true(metric(SECONDS, sink) > 0.0);
    } else {
        assert_double_exact(metric(SECONDS, sink), 0.0);
    }
}

/* ---- cases ------------------------------------------------------------------------------ */

static void test_delivered_first_time(void **state)
{
    const char *key = "{dw:t}:first";
    const char *body = "{\"alert\":\"first\"}";
    struct dw_sink_cfg sink;
    sink_init(&sink, "first", DW_SINK_WEBHOOK, "/first", g_http_port, 2000, 3);
    sink.secret = strdup("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);

    persist(key, "first", "n-1", body);
    assert_int_equal(dw_deliver_submit(d, "first", "n-1", body), 0);
    wait_drained(d);

    struct rec recs[4];
    assert_int_equal(recs_of("/first", recs, 4), 1);
    assert_string_equal(recs[0].hook_id, "n-1");
    assert_string_equal(recs[0].idem, "n-1");
    assert_string_equal(recs[0].ctype, "application/json");
    assert_string_equal(recs[0].body, body);
    assert_int_equal(recs[0].status, 200);
    /* Signed at send time with the secret held in memory. */
    char *end = NULL;
    long long ts = strtoll(recs[0].ts, &end, 10);
    assert_ptr_not_equal(end, recs[0].ts);
    assert_int_equal(*end, '\0');
    char sig[128];
    assert_int_equal(dw_sign_standard(sink.secret, "n-1", ts, body, strlen(body), sig, sizeof(sig)),
                     0);
    assert_string_equal(recs[0].sig, sig);
    assert_int_equal(field_exists(key, "first", "n-1"), 0);
    assert_metrics("first", 1, 0, 0, 0);

    char buf[128];
    assert_int_equal(dw_deliver_result(d, "first", 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "delivered (HTTP 200)");
    assert_int_equal(dw_deliver_submit(d, "nosuchsink", "n-2", body), -1);
    dw_deliver_destroy(d, 1000);
    assert_double_exact(metric(DEPTH, NULL), 0.0);
    sink_clear(&sink);
}

static void test_retry_500_then_200(void **state)
{
    const char *key = "{dw:t}:flaky";
    const struct step steps[] = {{.status = 500}, {.status = 200}};
    script("/flaky", steps, 2);
    struct dw_sink_cfg sink;
    sink_init(&sink, "flaky", DW_SINK_WEBHOOK, "/flaky", g_http_port, 2000, 5);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);

    persist(key, "flaky", "n-flaky", "{}");
    assert_int_equal(dw_deliver_submit(d, "flaky", "n-flaky", "{}"), 0);
    wait_drained(d);

    struct rec recs[8];
    int n = recs_of("/flaky", recs, 8);
    assert_int_equal(n, 2);
    int accepted = 0;
    for (int i = 0; i < n; i++) {
        assert_string_equal(recs[i].hook_id, "n-flaky");
        accepted += recs[i].status >= 200 && recs[i].status <= 299;
    }
    assert_int_equal(accepted, 1);
    assert_int_equal(recs[0].status, 500);
    assert_int_equal(field_exists(key, "flaky", "n-flaky"), 0);
    assert_metrics("flaky", 1, 0, 1, 0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

static void test_timeout_then_success(void **state)
{
    const char *key = "{dw:t}:slowonce";
    /* The first answer comes long after the sink's 200 ms timeout. */
    const struct step steps[] = {{.status = 200, .sleep_ms = 800}};
    script("/slowonce", steps, 1);
    struct dw_sink_cfg sink;
    sink_init(&sink, "slowonce", DW_SINK_WEBHOOK, "/slowonce", g_http_port, 200, 5);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);

    persist(key, "slowonce", "n-to", "{}");
    assert_int_equal(dw_deliver_submit(d, "slowonce", "n-to", "{}"), 0);
    wait_drained(d);

    struct rec recs[8];
    int n = recs_of("/slowonce", recs, 8);
    assert_int_equal(n, 2);
    assert_string_equal(recs[0].hook_id, "n-to");
    assert_string_equal(recs[1].hook_id, "n-to");
    /* The retry arrived while the first attempt was still unanswered: it timed out. */
    assert_true(recs[1].arrive_seq < recs[0].answer_seq || recs[0].answer_seq == 0);
    assert_int_equal(recs[1].status, 200);
    assert_int_equal(field_exists(key, "slowonce", "n-to"), 0);
    assert_metrics("slowonce", 1, 0, 1, 0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

static void test_connection_refused(void **state)
{
    const char *key = "{dw:t}:refused";
    struct dw_sink_cfg sink;
    /* A port nothing listens on. */
    sink_init(&sink, "refused", DW_SINK_WEBHOOK, "/x", dw_test_free_port(), 1000, 3);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);

    persist(key, "refused", "n-ref", "{}");
    assert_int_equal(dw_deliver_submit(d, "refused", "n-ref", "{}"), 0);
    char buf[256];
    assert_int_equal(dw_deliver_result(d, "refused", WAIT_MS, buf, sizeof(buf)), -1);
    assert_prefix(buf, "failed after 3 attempts: ");
    assert_not_contains(buf, "secret-in-query");
    assert_int_equal(dw_deliver_pending(d), 0);
    assert_int_equal(field_exists(key, "refused", "n-ref"), 0);
    assert_metrics("refused", 0, 1, 2, 0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

static void test_pagerduty_400_not_retried(void **state)
{
    const struct step steps[] = {{.status = 400}};
    script("/pd", steps, 1);
    struct dw_sink_cfg sink;
    sink_init(&sink, "pd", DW_SINK_PAGERDUTY, "/pd", g_http_port, 2000, 5);
    /* No persistence, as `driftwatch alerts test` runs it. */
    struct dw_deliver *d = deliver_new(&sink, 1, 10, NULL);
    assert_int_equal(dw_deliver_resume(d, NULL, 1, NULL), -1);

    const char *body = "{\"event_action\":\"trigger\",\"dedup_key\":\"fp1\",\"payload\":{}}";
    assert_int_equal(dw_deliver_submit(d, "pd", "n-pd-fp1", body), 0);
    char buf[128];
    assert_int_equal(dw_deliver_result(d, "pd", WAIT_MS, buf, sizeof(buf)), -1);
    assert_string_equal(buf, "rejected (HTTP 400)");
    wait_drained(d);
    struct rec recs[2];
    assert_int_equal(recs_of("/pd", recs, 2), 1);
    /* The routing key is inserted at send time, never persisted with the message. */
    assert_contains(recs[0].body, "\"routing_key\":\"R0UTINGKEY\"");
    assert_not_contains(body, "R0UTINGKEY");
    assert_metrics("pd", 0, 1, 0, 0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

/* A PagerDuty resolve never overtakes the retry of its trigger (same dedup key): the incident
 * would stay open. Another incident's message is not held back. */
static void test_pagerduty_keeps_order_per_key(void **state)
{
    const struct step steps[] = {{.status = 500}};
    script("/pdo", steps, 1);
    struct dw_sink_cfg sink;
    sink_init(&sink, "pdo", DW_SINK_PAGERDUTY, "/pdo", g_http_port, 2000, 5);
    sink.backoff_initial_ms = 300;
    sink.backoff_max_ms = 300;
    struct dw_deliver *d = deliver_new(&sink, 1, 10, NULL);
    const char *trig = "{\"event_action\":\"trigger\",\"dedup_key\":\"fpA\",\"payload\":{}}";
    const char *res = "{\"event_action\":\"resolve\",\"dedup_key\":\"fpA\"}";
    const char *other = "{\"event_action\":\"trigger\",\"dedup_key\":\"fpB\",\"payload\":{}}";
    assert_int_equal(dw_deliver_submit(d, "pdo", "n1-fpA", trig), 0);
    wait_requests("/pdo", 1); /* the trigger got its 500 and waits 300 ms for the retry */
    assert_int_equal(dw_deliver_submit(d, "pdo", "n2-fpA", res), 0);
    assert_int_equal(dw_deliver_submit(d, "pdo", "n3-fpB", other), 0);
    wait_drained(d);
    struct rec recs[4];
    assert_int_equal(recs_of("/pdo", recs, 4), 4);
    /* fpB went out during the trigger's backoff; the resolve only after the trigger's 202 */
    assert_contains(recs[0].body, "\"fpA\"");
    assert_contains(recs[1].body, "\"fpB\"");
    assert_contains(recs[2].body, "\"trigger\"");
    assert_contains(recs[3].body, "\"resolve\"");
    assert_true(recs[2].answer_seq < recs[3].arrive_seq);
    assert_metrics("pdo", 3, 0, 1, 0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

static void test_queue_full(void **state)
{
    const char *key = "{dw:t}:full";
    const struct step steps[] = {{.status = 200, .gate = 1}, {.status = 200, .gate = 1}};
    script("/full", steps, 2);
    struct dw_sink_cfg sink;
    sink_init(&sink, "full", DW_SINK_WEBHOOK, "/full", g_http_port, 5000, 3);
    struct dw_deliver *d = deliver_new(&sink, 1, 2, key);

    const char *ids[] = {"n-a", "n-b", "n-c"};
    for (int i = 0; i < 3; i++) {
        persist(key, "full", ids[i], "{}");
    }
    assert_int_equal(dw_deliver_submit(d, "full", "n-a", "{}"), 0);
    assert_int_equal(dw_deliver_submit(d, "full", "n-b", "{}"), 0);
    wait_requests("/full", 2); /* both in flight, held at the gate */
    assert_int_equal(dw_deliver_submit(d, "full", "n-c", "{}"), -1);
    /* A duplicate of a queued message is no new message. */
    assert_int_equal(dw_deliver_submit(d, "full", "n-a", "{}"), 0);
    assert_int_equal(dw_deliver_pending(d), 2);
    assert_double_exact(metric(DEPTH, NULL), 2.0);
    assert_double_exact(metric(DROPPED, "full"), 1.0);

    /* The dropped message's field is removed by the thread; the queued ones stay. */
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (field_exists(key, "full", "n-c")) {
        assert_true(dw_mono_ms() < until);
        usleep(2000);
    }
    assert_int_equal(field_exists(key, "full", "n-a"), 1);
    assert_int_equal(field_exists(key, "full", "n-b"), 1);

    gate_open("/full");
    wait_drained(d);
    struct rec recs[8];
    int n = recs_of("/full", recs, 8);
    assert_int_equal(n, 2);
    assert_string_not_equal(recs[0].hook_id, recs[1].hook_id);
    for (int i = 0; i < n; i++) {
        assert_true(strcmp(recs[i].hook_id, "n-a") == 0 || strcmp(recs[i].hook_id, "n-b") == 0);
    }
    assert_int_equal(field_exists(key, "full", "n-a"), 0);
    assert_int_equal(field_exists(key, "full", "n-b"), 0);
    assert_metrics("full", 2, 0, 0, 1);
    assert_double_exact(metric(DEPTH, NULL), 0.0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

/* Waits until the delivery hash `key` is empty (every field HDEL'ed by the thread). */
static void wait_hash_empty(const char *key)
{
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (redis_int("HLEN %s", key) != 0) {
        assert_true(dw_mono_ms() < until);
        usleep(2000);
    }
}

static void test_resume(void **state)
{
    const char *key = "{dw:t}:resume";
    const struct step steps[] = {{.status = 200, .gate = 1}, {.status = 200, .gate = 1}};
    script("/resume", steps, 2);
    struct dw_sink_cfg sink;
    sink_init(&sink, "resume", DW_SINK_WEBHOOK, "/resume", g_http_port, 5000, 3);

    /* What a crashed process left behind: two messages and one record that is no record. */
    persist(key, "resume", "n-r1", "{\"n\":1}");
    persist(key, "resume", "n-r2", "{\"n\":2}");
    redis_int("HSET %s %s %s", key, "resume/garbage", "not json");
    /* A message for a sink no longer configured. */
    persist(key, "gone", "n-g", "{}");

    struct dw_metric *not_record = dw_deliver_discarded("not_a_record");
    struct dw_metric *sink_gone = dw_deliver_discarded("sink_removed");
    double not_record0 = dw_metric_get(not_record), sink_gone0 = dw_metric_get(sink_gone);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);
    assert_int_equal(dw_deliver_resume(d, NULL, 1, NULL), 2);
    /* the two that cannot be delivered are counted, not only logged */
    assert_true(dw_metric_get(not_record) >= not_record0 + 1);
    assert_true(dw_metric_get(sink_gone) >= sink_gone0 + 1);
    /* Again: both are queued already. */
    assert_int_equal(dw_deliver_resume(d, NULL, 1, NULL), 0);
    assert_int_equal(dw_deliver_submit(d, "resume", "n-r1", "{\"n\":1}"), 0);
    assert_int_equal(dw_deliver_pending(d), 2);
    wait_requests("/resume", 2);
    gate_open("/resume");
    wait_drained(d);

    struct rec recs[8];
    int n = recs_of("/resume", recs, 8);
    assert_int_equal(n, 2);
    int seen1 = 0;
    int seen2 = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(recs[i].hook_id, "n-r1") == 0) {
            seen1++;
            assert_string_equal(recs[i].body, "{\"n\":1}");
        } else if (strcmp(recs[i].hook_id, "n-r2") == 0) {
            seen2++;
            assert_string_equal(recs[i].body, "{\"n\":2}");
        }
    }
    assert_int_equal(seen1, 1);
    assert_int_equal(seen2, 1);
    assert_metrics("resume", 2, 0, 0, 0);
    /* Delivered messages and the records that cannot be delivered are all gone. */
    wait_hash_empty(key);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

/* Pods that evaluate different models each resume only their models' pending messages: a
 * message another live pod is delivering is not sent a second time by a pod taking over some
 * other model; the records written before records named their model go with `unowned`. */
static void test_resume_by_model(void **state)
{
    const char *key = "{dw:t}:resume-model";
    struct dw_sink_cfg sink;
    sink_init(&sink, "bymodel", DW_SINK_WEBHOOK, "/bymodel", g_http_port, 5000, 3);
    persist_model(key, "bymodel", "n-a1", "{\"m\":\"a\"}", "fraud");
    persist_model(key, "bymodel", "n-b1", "{\"m\":\"b\"}", "churn");
    persist_model(key, "bymodel", "n-b2", "{\"m\":\"b\"}", "churn");
    persist(key, "bymodel", "n-old", "{}");

    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);
    assert_int_equal(dw_deliver_resume(d, "fraud", 0, NULL), 1);
    wait_drained(d);
    struct rec recs[8];
    assert_int_equal(recs_of("/bymodel", recs, 8), 1);
    assert_string_equal(recs[0].hook_id, "n-a1");
    /* the other model's and the unowned records stay in Redis for their pod */
    assert_int_equal(field_exists(key, "bymodel", "n-b1"), 1);
    assert_int_equal(field_exists(key, "bymodel", "n-old"), 1);
    assert_int_equal(dw_deliver_resume(d, "churn", 1, NULL), 3);
    wait_drained(d);
    assert_int_equal(recs_of("/bymodel", recs, 8), 4);
    wait_hash_empty(key);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

/*
 * A resume submits in the order the messages were committed (created_ms), not in the hash's:
 * HGETALL's order is arbitrary, and a PagerDuty resolve submitted before its trigger left the
 * incident open for good. Ids are picked so that the hash lists the resolve first.
 */
static void test_resume_in_commit_order(void **state)
{
    const char *key = "{dw:t}:resume-order";
    struct dw_sink_cfg sink;
    sink_init(&sink, "pdorder", DW_SINK_PAGERDUTY, "/pdorder", g_http_port, 5000, 3);
    const char *trig = "{\"event_action\":\"trigger\",\"dedup_key\":\"fpA\",\"payload\":"
                       "{\"summary\":\"fraud: dataset_drift in window 10:00\",\"source\":"
                       "\"driftwatch\",\"severity\":\"critical\"}}";
    const char *res = "{\"event_action\":\"resolve\",\"dedup_key\":\"fpA\"}";
    int listed_first = 0;
    for (int k = 0; k < 500 && !listed_first; k++) {
        char tid[32], rid[32];
        redis_int("DEL %s", key);
        snprintf(tid, sizeof(tid), "t%d-fpA", k);
        snprintf(rid, sizeof(rid), "r%d-fpA", k);
        persist_at(key, "pdorder", tid, trig, "fraud", 1000);
        persist_at(key, "pdorder", rid, res, "fraud", 2000);
        redisReply *rep = redisCommand(g_rc, "HKEYS %s", key);
        listed_first = rep && rep->elements == 2 && strstr(rep->element[0]->str, "/r") != NULL;
        freeReplyObject(rep);
    }
    assert_true(listed_first);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);
    assert_int_equal(dw_deliver_resume(d, "fraud", 0, NULL), 2);
    wait_drained(d);
    struct rec recs[4];
    assert_int_equal(recs_of("/pdorder", recs, 4), 2);
    assert_non_null(strstr(recs[0].body, "\"trigger\""));
    assert_non_null(strstr(recs[1].body, "\"resolve\""));
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

/* A resume that meets a full queue says how many it left in Redis, and the next resume submits
 * them (the evaluator resumes again on its next tick: they were never sent before). */
static void test_resume_left_at_full_queue(void **state)
{
    const char *key = "{dw:t}:resume-full";
    struct dw_sink_cfg sink;
    sink_init(&sink, "rfull", DW_SINK_WEBHOOK, "/rfull", g_http_port, 5000, 3);
    persist_at(key, "rfull", "n-a", "{\"n\":1}", "fraud", 1000);
    persist_at(key, "rfull", "n-b", "{\"n\":2}", "fraud", 2000);
    persist_at(key, "rfull", "n-c", "{\"n\":3}", "fraud", 3000);
    struct dw_deliver *d = deliver_new(&sink, 1, 2, key);
    size_t left = 0;
    assert_int_equal(dw_deliver_resume(d, "fraud", 0, &left), 2);
    assert_int_equal(left, 1);
    wait_drained(d);
    assert_int_equal(dw_deliver_resume(d, "fraud", 0, &left), 1);
    assert_int_equal(left, 0);
    wait_drained(d);
    assert_int_equal(count_of("/rfull"), 3);
    wait_hash_empty(key);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

/* A message of a model no longer configured (removed or renamed while it was pending) is taken
 * by the resume that takes the unowned ones: it stayed in Redis for good, never sent, counted
 * or logged. */
static void test_resume_removed_model(void **state)
{
    const char *key = "{dw:t}:resume-gone";
    struct dw_sink_cfg sink;
    sink_init(&sink, "rgone", DW_SINK_WEBHOOK, "/rgone", g_http_port, 5000, 3);
    persist_at(key, "rgone", "n-x", "{\"n\":1}", "removed_model", 1000);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);
    assert_int_equal(dw_deliver_resume(d, "churn", 0, NULL), 0);
    assert_int_equal(dw_deliver_resume(d, "fraud", 1, NULL), 1);
    wait_drained(d);
    assert_int_equal(count_of("/rgone"), 1);
    wait_hash_empty(key);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

static void test_slow_sink_does_not_delay_fast(void **state)
{
    const char *key = "{dw:t}:concurrent";
    const struct step steps[] = {{.status = 200, .gate = 1}};
    script("/slow", steps, 1);
    struct dw_sink_cfg sinks[2];
    sink_init(&sinks[0], "slow", DW_SINK_WEBHOOK, "/slow", g_http_port, 8000, 3);
    sink_init(&sinks[1], "fast", DW_SINK_SLACK, "/fast", g_http_port, 2000, 3);
    struct dw_deliver *d = deliver_new(sinks, 2, 10, key);

    persist(key, "slow", "n-s", "{}");
    persist(key, "fast", "n-f", "{}");
    assert_int_equal(dw_deliver_submit(d, "slow", "n-s", "{}"), 0);
    wait_requests("/slow", 1); /* the slow sink's attempt is in flight */
    assert_int_equal(dw_deliver_submit(d, "fast", "n-f", "{}"), 0);

    /* The fast sink's message is accepted while the slow one still waits for its answer. */
    char buf[128];
    assert_int_equal(dw_deliver_result(d, "fast", WAIT_MS, buf, sizeof(buf)), 0);
    assert_double_exact(metric(SENT, "fast"), 1.0);
    assert_double_exact(metric(SENT, "slow"), 0.0);
    assert_int_equal(dw_deliver_pending(d), 1);
    struct rec slow[2];
    struct rec fast[2];
    assert_int_equal(recs_of("/slow", slow, 2), 1);
    assert_int_equal(recs_of("/fast", fast, 2), 1);
    assert_int_equal(slow[0].answer_seq, 0);
    assert_true(slow[0].arrive_seq < fast[0].arrive_seq);
    assert_int_equal(field_exists(key, "fast", "n-f"), 0);
    assert_int_equal(field_exists(key, "slow", "n-s"), 1);

    gate_open("/slow");
    wait_drained(d);
    assert_int_equal(recs_of("/slow", slow, 2), 1);
    assert_true(fast[0].answer_seq < slow[0].answer_seq);
    assert_int_equal(field_exists(key, "slow", "n-s"), 0);
    assert_metrics("slow", 1, 0, 0, 0);
    assert_metrics("fast", 1, 0, 0, 0);
    dw_deliver_destroy(d, 1000);
    sink_clear(&sinks[1]);
    sink_clear(&sinks[0]);
}

static void test_redis_connection_lost(void **state)
{
    const char *key = "{dw:t}:reconnect";
    struct dw_sink_cfg sink;
    sink_init(&sink, "reconnect", DW_SINK_WEBHOOK, "/reconnect", g_http_port, 2000, 3);
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);

    /* Kill every other client: the delivery thread's connection is gone. */
    redisReply *rep = redisCommand(g_rc, "CLIENT KILL TYPE normal");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_true(rep->integer >= 1);
    freeReplyObject(rep);

    persist(key, "reconnect", "n-rc", "{}");
    assert_int_equal(dw_deliver_submit(d, "reconnect", "n-rc", "{}"), 0);
    wait_drained(d);
    assert_int_equal(count_of("/reconnect"), 1);
    assert_metrics("reconnect", 1, 0, 0, 0);
    /* The failed HDEL is retried on a new connection. */
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (field_exists(key, "reconnect", "n-rc")) {
        assert_true(dw_mono_ms() < until);
        usleep(5000);
    }
    dw_deliver_destroy(d, 1000);
    sink_clear(&sink);
}

static void test_destroy_leaves_undelivered_in_redis(void **state)
{
    const char *key = "{dw:t}:leave";
    struct dw_sink_cfg sink;
    /* Nothing listens; long backoff: the retry falls after the flush deadline. */
    sink_init(&sink, "leave", DW_SINK_WEBHOOK, "/x", dw_test_free_port(), 1000, 5);
    sink.backoff_initial_ms = 60000;
    sink.backoff_max_ms = 60000;
    struct dw_deliver *d = deliver_new(&sink, 1, 10, key);

    persist(key, "leave", "n-l", "{}");
    assert_int_equal(dw_deliver_submit(d, "leave", "n-l", "{}"), 0);
    int64_t until = dw_mono_ms() + WAIT_MS;
    while (metric(RETRIED, "leave") < 1.0) {
        assert_true(dw_mono_ms() < until);
        usleep(2000);
    }
    /* Returns without waiting for the retry; the message stays for the next resume. */
    dw_deliver_destroy(d, 20000);
    assert_int_equal(field_exists(key, "leave", "n-l"), 1);
    assert_double_exact(metric(FAILED, "leave"), 0.0);
    assert_double_exact(metric(DEPTH, NULL), 0.0);
    sink_clear(&sink);
}

static void test_field_and_record(void **state)
{
    char *f = dw_deliver_field("hook", "n-1-abc");
    assert_string_equal(f, "hook/n-1-abc");
    free(f);
    char *r = dw_deliver_record("hook", "n-1", "{\"a\":\"\\u00e9\"}", 1700000000123, NULL);
    assert_string_equal(
        r, "{\"sink\":\"hook\",\"id\":\"n-1\",\"body\":\"{\\\"a\\\":\\\"\\\\u00e9\\\"}\","
           "\"created_ms\":1700000000123}");
    free(r);
    r = dw_deliver_record("hook", "n-1", "{}", 1, "fraud");
    assert_string_equal(
        r,
        "{\"sink\":\"hook\",\"id\":\"n-1\",\"body\":\"{}\",\"created_ms\":1,\"model\":\"fraud\"}");
    free(r);
    assert_null(dw_deliver_record("hook", "n-1", "\xff\xfe", 1, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_and_record),
        cmocka_unit_test(test_delivered_first_time),
        cmocka_unit_test(test_retry_500_then_200),
        cmocka_unit_test(test_timeout_then_success),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_pagerduty_400_not_retried),
        cmocka_unit_test(test_pagerduty_keeps_order_per_key),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_resume_by_model),
        cmocka_unit_test(test_resume_in_commit_order),
        cmocka_unit_test(test_resume_left_at_full_queue),
        cmocka_unit_test(test_resume_removed_model),
        cmocka_unit_test(test_slow_sink_does_not_delay_fast),
        cmocka_unit_test(test_redis_connection_lost),
        cmocka_unit_test(test_destroy_leaves_undelivered_in_redis),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
