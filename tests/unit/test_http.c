/*
 * test_http.c - the operations server over real HTTP on 127.0.0.1 (libcurl as the client):
 * status codes, content types and bodies of every endpoint, liveness going stale and
 * recovering, readiness and status updates, 404/405, bad listen addresses, port 0.
 */
#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_http.h"
#include "driftwatch/core/dw_metrics.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dw_test.h"

/* Liveness window used by the tests (milliseconds). */
#define LIVE_WINDOW_MS 200

/* Generous liveness window for tests that must not see a stall (milliseconds). */
#define LONG_WINDOW_MS 60000

struct reply {
    long code;
    char content_type[128];
    char allow[128];
    char *body;
    size_t body_len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;
    r->body = dw_realloc(r->body, r->body_len + n + 1);
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;
    const char *name = "Allow:";
    size_t nl = strlen(name);
    if (n > nl && strncasecmp(data, name, nl) == 0) {
        size_t start = nl;
        while (start < n && data[start] == ' ') {
            start++;
        }
        size_t end = n;
        while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n')) {
            end--;
        }
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(end - start), data + start);
    }
    return n;
}

/* Performs one request on 127.0.0.1:port with an optional extra header ("Name: value");
 * fills *r (caller frees r->body). */
/* The local address requests are sent from (NULL: the system's choice, 127.0.0.1). */
static const char *g_from;

static void request_with(int port, const char *method, const char *path, const char *header,
                         struct reply *r)
{
    char url[256];
    memset(r, 0, sizeof(*r));
    r->body = dw_strdup("");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);

    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (g_from) {
        curl_easy_setopt(curl, CURLOPT_INTERFACE, g_from);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x=1");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    struct curl_slist *headers = header ? curl_slist_append(NULL, header) : NULL;
    if (headers) {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        print_error("curl %s %s: %s\n", method, url, curl_easy_strerror(rc));
    }
    assert_int_equal(rc, CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->code);
    char *ct = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->content_type, sizeof(r->content_type), "%s", ct ? ct : "");
    curl_easy_cleanup(curl);
}

static void request(int port, const char *method, const char *path, struct reply *r)
{
    request_with(port, method, path, NULL, r);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static struct dw_http *start(int64_t window_ms)
{
    char errstr[256] = "";
    struct dw_http *http = dw_http_start("127.0.0.1:0", window_ms, errstr, sizeof(errstr));
    if (!http) {
        print_error("dw_http_start: %s\n", errstr);
    }
    assert_non_null(http);
    assert_true(dw_http_port(http) > 0 && dw_http_port(http) <= 65535);
    return http;
}

static void test_metrics_endpoint(void **state)
{
    dw_metrics_reset();
    struct dw_metric *m = dw_metrics_series("driftwatch_messages_consumed_total",
                                            "Messages consumed from Kafka, by topic.",
                                            DW_METRIC_COUNTER, "topic=\"labels\"");
    dw_metric_add(m, 7);
    struct dw_http *http = start(LONG_WINDOW_MS);
    struct reply r;

    request(dw_http_port(http), "GET", "/metrics", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    char *want = dw_metrics_render();
    assert_string_equal(r.body, want);
    free(want);
    assert_contains(r.body, "driftwatch_messages_consumed_total{topic=\"labels\"} 7\n");
    assert_contains(r.body, "driftwatch_build_info{version=\"");
    free(r.body);

    /* Updates show up on the next scrape. */
    dw_metric_inc(m);
    request(dw_http_port(http), "GET", "/metrics", &r);
    assert_contains(r.body, "driftwatch_messages_consumed_total{topic=\"labels\"} 8\n");
    free(r.body);

    /* HEAD: same status and type, no body. */
    request(dw_http_port(http), "HEAD", "/metrics", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(r.body_len, 0);
    free(r.body);

    /* A query string does not change the route. */
    request(dw_http_port(http), "GET", "/metrics?x=1", &r);
    assert_int_equal(r.code, 200);
    free(r.body);

    dw_http_stop(http);
    dw_metrics_reset();
}

static void test_livez(void **state)
{
    struct dw_http *http = start(LIVE_WINDOW_MS);
    int port = dw_http_port(http);
    struct reply r;

    /* Before the first tick the start time counts. */
    request(port, "GET", "/livez", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
    assert_string_equal(r.body, "ok\n");
    free(r.body);

    sleep_ms(LIVE_WINDOW_MS * 2);
    request(port, "GET", "/livez", &r);
    assert_int_equal(r.code, 503);
    const char *prefix = "main loop stalled for ";
    assert_memory_equal(r.body, prefix, strlen(prefix));
    char *end = NULL;
    long long age = strtoll(r.body + strlen(prefix), &end, 10);
    assert_true(age >= LIVE_WINDOW_MS * 2);
    assert_string_equal(end, " ms\n");
    free(r.body);

    dw_http_tick(http);
    request(port, "GET", "/livez", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "ok\n");
    free(r.body);

    /* Ticking within the window keeps it live across several windows. */
    for (int i = 0; i < 5; i++) {
        sleep_ms(LIVE_WINDOW_MS / 4);
        dw_http_tick(http);
    }
    request(port, "GET", "/livez", &r);
    assert_int_equal(r.code, 200);
    free(r.body);

    /* And stalls again without ticks. */
    sleep_ms(LIVE_WINDOW_MS + 100);
    request(port, "GET", "/livez", &r);
    assert_int_equal(r.code, 503);
    free(r.body);

    dw_http_stop(http);
}

static void test_readyz(void **state)
{
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    struct reply r;

    request(port, "GET", "/readyz", &r);
    assert_int_equal(r.code, 503);
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
    assert_string_equal(r.body, "starting\n");
    free(r.body);

    dw_http_set_ready(http, 1, NULL);
    request(port, "GET", "/readyz", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "ready\n");
    free(r.body);

    dw_http_set_ready(http, 0, "redis unreachable: Connection refused");
    request(port, "GET", "/readyz", &r);
    assert_int_equal(r.code, 503);
    assert_string_equal(r.body, "redis unreachable: Connection refused\n");
    free(r.body);

    /* Same state again (no change) and then a new reason. */
    dw_http_set_ready(http, 0, "redis unreachable: Connection refused");
    dw_http_set_ready(http, 0, "not in the consumer group");
    request(port, "GET", "/readyz", &r);
    assert_int_equal(r.code, 503);
    assert_string_equal(r.body, "not in the consumer group\n");
    free(r.body);

    dw_http_set_ready(http, 1, "joined");
    request(port, "GET", "/readyz", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "ready\n");
    free(r.body);

    dw_http_stop(http);
}

static void test_status(void **state)
{
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    struct reply r;

    request(port, "GET", "/status", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.body, "{}");
    free(r.body);

    dw_http_set_status(http, "{\"windows\":[{\"model\":\"fraud\",\"verdict\":\"drift\"}]}");
    request(port, "GET", "/status", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "{\"windows\":[{\"model\":\"fraud\",\"verdict\":\"drift\"}]}");
    free(r.body);

    /* The document is copied: the caller's buffer may change afterwards. */
    char doc[64];
    snprintf(doc, sizeof(doc), "{\"windows\":[]}");
    dw_http_set_status(http, doc);
    memset(doc, 'x', sizeof(doc) - 1);
    request(port, "GET", "/status", &r);
    assert_string_equal(r.body, "{\"windows\":[]}");
    free(r.body);

    dw_http_stop(http);
}

static void test_not_found_and_method(void **state)
{
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    struct reply r;

    const char *missing[] = {"/", "/nope", "/metrics/extra", "/livezz", "/STATUS"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(missing); i++) {
        request(port, "GET", missing[i], &r);
        assert_int_equal(r.code, 404);
        free(r.body);
    }

    const char *methods[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(methods); i++) {
        request(port, methods[i], "/metrics", &r);
        assert_int_equal(r.code, 405);
        assert_string_equal(r.allow, "GET, HEAD");
        free(r.body);
    }
    /* The server still works after refusing a request with a body. */
    request(port, "GET", "/livez", &r);
    assert_int_equal(r.code, 200);
    free(r.body);

    dw_http_stop(http);
}

static void test_bad_listen(void **state)
{
    const char *bad[] = {
        "garbage",      "127.0.0.1",     "127.0.0.1:",    "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1:+80", "::1:9000",
        "[::1]9000",    "[::1",          "[]:80",         "127.0.0.1:123456",
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
        char errstr[256] = "";
        struct dw_http *http = dw_http_start(bad[i], LONG_WINDOW_MS, errstr, sizeof(errstr));
        if (http) {
            print_error("accepted \"%s\"\n", bad[i]);
        }
        assert_null(http);
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i]);
        if (!strstr(errstr, quoted)) {
            print_error("errstr for %s: %s\n", bad[i], errstr);
        }
        assert_contains(errstr, quoted);
    }

    char errstr[256] = "";
    assert_null(dw_http_start("", LONG_WINDOW_MS, errstr, sizeof(errstr)));
    assert_contains(errstr, "empty");
    errstr[0] = '\0';
    assert_null(dw_http_start(NULL, LONG_WINDOW_MS, errstr, sizeof(errstr)));
    assert_int_not_equal(errstr[0], '\0');
    errstr[0] = '\0';
    assert_null(dw_http_start("127.0.0.1:0", 0, errstr, sizeof(errstr)));
    assert_contains(errstr, "window");
}

static void test_port_zero_and_in_use(void **state)
{
    struct dw_http *a = start(LONG_WINDOW_MS);
    struct dw_http *b = start(LONG_WINDOW_MS);
    assert_int_not_equal(dw_http_port(a), dw_http_port(b));

    /* Each answers on its own port with its own state. */
    dw_http_set_status(a, "{\"server\":\"a\"}");
    dw_http_set_status(b, "{\"server\":\"b\"}");
    struct reply r;
    request(dw_http_port(a), "GET", "/status", &r);
    assert_string_equal(r.body, "{\"server\":\"a\"}");
    free(r.body);
    request(dw_http_port(b), "GET", "/status", &r);
    assert_string_equal(r.body, "{\"server\":\"b\"}");
    free(r.body);

    /* A taken port fails with a reason naming the address. */
    char listen[64];
    char errstr[256] = "";
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", dw_http_port(a));
    struct dw_http *c = dw_http_start(listen, LONG_WINDOW_MS, errstr, sizeof(errstr));
    assert_null(c);
    assert_contains(errstr, listen);
    assert_contains(errstr, "Address already in use");

    dw_http_stop(a);
    dw_http_stop(b);
    dw_http_stop(NULL);
}

/* GET path with the header; asserts the status code. */
static void expect(int port, const char *path, const char *header, long code)
{
    struct reply r;
    request_with(port, "GET", path, header, &r);
    if (r.code != code) {
        print_error("GET %s (%s): %ld, expected %ld\n", path, header ? header : "no header", r.code,
                    code);
    }
    assert_int_equal(r.code, code);
    free(r.body);
}

/* The token guards /, /api/ and /status; probes and /metrics stay open; refusals count. */
static void test_auth(void **state)
{
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    dw_http_tick(http);
    dw_http_set_ready(http, 1, NULL);
    struct dw_metric *refused = dw_metrics_find("driftwatch_http_unauthorized_total", "");
    assert_non_null(refused);
    double before = dw_metric_get(refused);

    /* No token: open. */
    expect(port, "/status", NULL, 200);
    expect(port, "/", NULL, 404); /* no application handler */

    dw_http_set_auth(http, "tok-123");
    expect(port, "/status", NULL, 401);
    expect(port, "/status", "Authorization: Bearer tok-12", 401);   /* a prefix */
    expect(port, "/status", "Authorization: Bearer tok-1234", 401); /* longer */
    expect(port, "/status", "Authorization: Basic dG9rLTEyMw==", 401);
    expect(port, "/", NULL, 401);
    expect(port, "/api/v1/canary/fraud", NULL, 401);
    assert_true(dw_metric_get(refused) - before == 6);

    expect(port, "/status", "Authorization: Bearer tok-123", 200);
    expect(port, "/status", "Authorization: bearer tok-123", 200); /* the scheme is caseless */
    expect(port, "/api/v1/canary/fraud", "Authorization: Bearer tok-123", 404);
    expect(port, "/livez", NULL, 200);
    expect(port, "/readyz", NULL, 200);
    expect(port, "/metrics", NULL, 200);
    expect(port, "/metrics", "Authorization: Bearer wrong", 200);
    assert_true(dw_metric_get(refused) - before == 6);

    struct reply r;
    request(port, "GET", "/status", &r);
    assert_int_equal(r.code, 401);
    assert_contains(r.body, "Bearer");
    free(r.body);

    dw_http_set_auth(http, "");
    expect(port, "/status", NULL, 200);
    dw_http_stop(http);
}

/* A test application: echoes the query argument q, declines /api/nope. */
static int echo_app(void *ctx, const char *url, const struct dw_http_request *req,
                    struct dw_http_reply *out)
{
    int *calls = ctx;
    (*calls)++;
    if (strcmp(url, "/api/nope") == 0) {
        return 0;
    }
    const char *q = dw_http_arg(req, "q");
    char body[256];
    snprintf(body, sizeof(body), "%s q=%s", url, q ? q : "(none)");
    out->code = 202;
    out->content_type = "text/html; charset=utf-8";
    out->body = dw_strdup(body);
    out->len = strlen(body);
    return 1;
}

/* / and /api/... go to the application handler, with their decoded query arguments. */
static void test_app(void **state)
{
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    int calls = 0;
    struct reply r;
    dw_http_set_app(http, echo_app, &calls);

    request(port, "GET", "/api/v1/models/m/reports?q=a%20b&x=1", &r);
    assert_int_equal(r.code, 202);
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    assert_string_equal(r.body, "/api/v1/models/m/reports q=a b");
    free(r.body);
    request(port, "GET", "/", &r);
    assert_string_equal(r.body, "/ q=(none)");
    free(r.body);
    expect(port, "/api/nope", NULL, 404);
    assert_int_equal(calls, 3);
    /* the canary documents and the operations endpoints are not the handler's */
    expect(port, "/api/v1/canary/fraud", NULL, 404);
    expect(port, "/status", NULL, 200);
    expect(port, "/other", NULL, 404);
    assert_int_equal(calls, 3);
    dw_http_stop(http);
}

/* A handler that blocks until the test releases it (at most 10 s). */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered, released;
};

static int blocking_app(void *ctx, const char *url, const struct dw_http_request *req,
                        struct dw_http_reply *out)
{
    struct gate *g = ctx;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g->lock);
    g->entered = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->released && pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0) {
    }
    pthread_mutex_unlock(&g->lock);
    out->code = 200;
    out->body = dw_strdup("released");
    out->len = strlen(out->body);
    return 1;
}

static void *slow_client(void *arg)
{
    int port = *(int *)arg;
    struct reply r;
    request(port, "GET", "/api/slow", &r);
    free(r.body);
    return NULL;
}

/* A page blocked on its I/O (Redis) does not hold up the probes and the scrape: each
 * connection has its own thread. */
static void test_app_does_not_block_probes(void **state)
{
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    struct gate g = {.entered = 0, .released = 0};
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    dw_http_set_app(http, blocking_app, &g);
    dw_http_tick(http);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_client, &port), 0);
    pthread_mutex_lock(&g.lock);
    while (!g.entered) {
        pthread_cond_wait(&g.cond, &g.lock);
    }
    pthread_mutex_unlock(&g.lock);
    /* the handler is blocked now: the probes and /metrics must still answer */
    expect(port, "/livez", NULL, 200);
    expect(port, "/metrics", NULL, 200);
    pthread_mutex_lock(&g.lock);
    int still_blocked = !g.released;
    g.released = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    assert_true(still_blocked);
    pthread_join(t, NULL);
    dw_http_stop(http);
    pthread_cond_destroy(&g.cond);
    pthread_mutex_destroy(&g.lock);
}

#define SLOW_CLIENTS 70 /* more than the server's connection limit (64) */

/* Connects to 127.0.0.1:port and sends a request's first line and one header, never its end.
 * @returns the socket. */
static int slow_connection(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        const char *part = "GET /livez HTTP/1.1\r\nHost: x\r\n";
        (void)send(fd, part, strlen(part), MSG_NOSIGNAL);
    }
    return fd;
}

/* Slow clients from one address cannot take every connection: a probe from another address
 * still gets in. 64 connections sending a header line every few seconds, no token needed, made
 * /livez unreachable and the kubelet restart the pod; there is now a limit per address. */
static void test_slow_clients_do_not_lock_out_probes(void **state)
{
    (void)state;
    struct dw_http *http = start(LONG_WINDOW_MS);
    int port = dw_http_port(http);
    dw_http_tick(http);
    int fds[SLOW_CLIENTS];
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        fds[i] = slow_connection(port);
    }
    sleep_ms(300);
    g_from = "127.0.0.2"; /* the kubelet: another address */
    expect(port, "/livez", NULL, 200);
    g_from = NULL;
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        close(fds[i]);
    }
    dw_http_stop(http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_livez),
        cmocka_unit_test(test_readyz),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_port_zero_and_in_use),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_app),
        cmocka_unit_test(test_app_does_not_block_probes),
        cmocka_unit_test(test_slow_clients_do_not_lock_out_probes),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
