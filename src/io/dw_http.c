/*
 * dw_http.c - the operations endpoints (/metrics, /livez, /readyz, /status), the canary
 * analyses (/api/v1/canary/<model>) and the transport of the status page and the reports API
 * (/, /api/...) on libmicrohttpd.
 *
 * Why this shape:
 * - libmicrohttpd runs its own polling thread (MHD_USE_AUTO_INTERNAL_THREAD picks epoll on
 *   Linux), so scrapes and probes are answered even while the main loop is busy or stuck;
 *   that is exactly what makes /livez meaningful. The handlers run on MHD's threads only.
 * - The main loop must never wait on a scrape. dw_http_tick() is one atomic store of the
 *   monotonic clock; readiness and the /status document sit behind a mutex that is held only
 *   to swap or copy a pointer, never while formatting or doing I/O (the canary documents are
 *   formatted by the main loop and kept as text per model). /metrics reads the
 *   registry, whose own lock is independent of this one.
 * - /livez compares "now" with the last tick on the monotonic clock (wall-clock jumps must not
 *   restart a healthy pod); before the first tick, the server's start time counts as a tick,
 *   so a process that never reaches its loop goes unhealthy after one window.
 * - The listen address is "host:port", "[v6]:port" or ":port" (all IPv4 interfaces), resolved
 *   with getaddrinfo and handed to MHD as a sockaddr; port 0 asks the kernel for a free port,
 *   read back with MHD_DAEMON_INFO_BIND_PORT. MHD's own error messages go through our
 *   logger and the last one is kept, so a failed bind reports why ("Address already in use").
 * - HEAD is answered like GET (MHD drops the body); other methods get 405 with `Allow`.
 * - The status page and the reports API (GET / and /api/...) are an application handler the
 *   owner installs (dw_http_set_app): this file stays the transport and knows nothing of
 *   Redis. The handler may block on its own I/O (it opens its own Redis connection, up to
 *   redis.timeout, dw_api.c), so MHD runs a thread per connection
 *   (MHD_USE_THREAD_PER_CONNECTION, at most DW_HTTP_CONNECTION_LIMIT threads): a slow page
 *   never delays a probe or a scrape on another connection.
 * - The bearer token (http.auth_token) guards what shows model data: /, /api/ and /status.
 *   The probes and /metrics stay open, since kubelet and Prometheus are configured without
 *   it. The comparison takes the same time whatever prefix matches (no timing oracle); every
 *   refusal counts in driftwatch_http_unauthorized_total so that a misconfigured client or a
 *   probe of the endpoint shows on a dashboard.
 */
#include "driftwatch/io/dw_http.h"

#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_log.h"
#include "driftwatch/core/dw_metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Concurrent connections MHD accepts (count); probes and scrapes need very few. */
#define DW_HTTP_CONNECTION_LIMIT 64

/* Concurrent connections from one address (count): slow clients from one place (no token is
 * needed to open a connection) cannot hold all DW_HTTP_CONNECTION_LIMIT and lock the kubelet's
 * probes out; the kubelet, Prometheus and a browser each come from their own address. */
#define DW_HTTP_PER_IP_LIMIT 16

/* Idle connection timeout (seconds). */
#define DW_HTTP_CONNECTION_TIMEOUT_S 10

#define DW_HTTP_TEXT "text/plain; charset=utf-8"
#define DW_HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define DW_HTTP_JSON "application/json"

struct dw_http {
    struct MHD_Daemon *daemon;
    int port;
    int64_t live_window_ms;
    _Atomic int64_t last_tick_ms; /* dw_mono_ms() of the last tick */

    pthread_mutex_t lock; /* guards the fields below */
    int ready;
    char *reason;         /* why not ready */
    char *status;         /* the /status document */
    char **canary;        /* pairs: model, its /api/v1/canary document (text) */
    size_t n_canary;      /* pairs */
    char last_error[256]; /* last message from MHD's logger */
    dw_http_app_fn app;   /* GET / and /api/... (dw_http_set_app) */
    void *app_ctx;
    char *token; /* http.auth_token, NULL: open */
    struct dw_metric *unauthorized;
};

struct dw_http_request {
    struct MHD_Connection *conn;
};

const char *dw_http_arg(const struct dw_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* MHD_OPTION_EXTERNAL_LOGGER: keep the last message (for start-up errors) and log it. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct dw_http *http = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    pthread_mutex_lock(&http->lock);
    snprintf(http->last_error, sizeof(http->last_error), "%s", msg);
    pthread_mutex_unlock(&http->lock);
    /* limited: refused connections of a flood are one line each */
    dw_log_limited("http-server", 5, DW_LOG_WARN, "http server", "{s:s}", "error", msg);
}

/*
 * Splits "host:port", "[v6]:port" or ":port" and resolves it into *ss.
 * @returns 0, or -1 with errstr naming the value.
 */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *ss_len,
                        char *errstr, size_t errstr_size)
{
    char host[256];
    const char *port_str = NULL;
    struct addrinfo hints;
    struct addrinfo *res = NULL;

    if (!listen || listen[0] == '\0') {
        return dw_err(errstr, errstr_size,
                      "http listen address is empty: expected host:port, e.g. 127.0.0.1:8080");
    }
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - listen - 1) >= sizeof(host) || rb == listen + 1) {
            goto bad;
        }
        memcpy(host, listen + 1, (size_t)(rb - listen - 1));
        host[rb - listen - 1] = '\0';
        port_str = rb + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
            goto bad;
        }
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        if (strchr(host, ':')) {
            /* A bare IPv6 address: the port would be ambiguous without brackets. */
            goto bad;
        }
        if (host[0] == '\0') {
            snprintf(host, sizeof(host), "0.0.0.0");
        }
        port_str = colon + 1;
    }

    /* The port: 1 to 5 decimal digits, at most 65535. */
    size_t plen = strlen(port_str);
    if (plen == 0 || plen > 5 || strspn(port_str, "0123456789") != plen) {
        goto bad;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(port_str, &end, 10);
    if (errno != 0 || *end != '\0' || port < 0 || port > 65535) {
        goto bad;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port_str, &hints, &res);
    if (gai != 0) {
        return dw_err(errstr, errstr_size, "http listen address \"%s\": cannot resolve \"%s\": %s",
                      listen, host, gai_strerror(gai));
    }
    if (res->ai_addrlen > sizeof(*ss) ||
        (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
        freeaddrinfo(res);
        return dw_err(errstr, errstr_size, "http listen address \"%s\": unsupported family",
                      listen);
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *ss_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;

bad:
    return dw_err(errstr, errstr_size,
                  "invalid http listen address \"%s\": expected host:port with a port of 0-65535, "
                  "e.g. 127.0.0.1:8080, 0.0.0.0:0 or [::1]:9000",
                  listen);
}

/* Queues a response with body (copied unless must_free) and releases our reference. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int code,
                               const char *content_type, char *body, size_t len, int must_free)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        if (must_free) {
            free(body);
        }
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    if (code == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"driftwatch\"");
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int code,
                                    const char *text)
{
    return respond(conn, code, DW_HTTP_TEXT, (char *)text, strlen(text), 0);
}

static enum MHD_Result serve_livez(struct dw_http *http, struct MHD_Connection *conn)
{
    int64_t age = dw_mono_ms() - atomic_load(&http->last_tick_ms);
    if (age <= http->live_window_ms) {
        return respond_text(conn, MHD_HTTP_OK, "ok\n");
    }
    char body[96];
    snprintf(body, sizeof(body), "main loop stalled for %lld ms\n", (long long)age);
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result serve_readyz(struct dw_http *http, struct MHD_Connection *conn)
{
    char body[512];
    int ready;
    pthread_mutex_lock(&http->lock);
    ready = http->ready;
    if (!ready) {
        snprintf(body, sizeof(body), "%s\n", http->reason);
    }
    pthread_mutex_unlock(&http->lock);
    if (ready) {
        return respond_text(conn, MHD_HTTP_OK, "ready\n");
    }
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result serve_status(struct dw_http *http, struct MHD_Connection *conn)
{
    /* Copy under the lock (a memcpy), hand the copy to MHD to free. */
    pthread_mutex_lock(&http->lock);
    char *doc = dw_strdup(http->status);
    pthread_mutex_unlock(&http->lock);
    return respond(conn, MHD_HTTP_OK, DW_HTTP_JSON, doc, strlen(doc), 1);
}

#define CANARY_PREFIX "/api/v1/canary/"

/* GET /api/v1/canary/<model>: the model's document, or 404 naming the models that have one. */
static enum MHD_Result serve_canary(struct dw_http *http, struct MHD_Connection *conn,
                                    const char *model)
{
    char *doc = NULL;
    json_t *known = json_array();
    pthread_mutex_lock(&http->lock);
    for (size_t i = 0; i < http->n_canary; i++) {
        if (strcmp(http->canary[2 * i], model) == 0) {
            doc = dw_strdup(http->canary[2 * i + 1]);
        }
        json_array_append_new(known, json_string(http->canary[2 * i]));
    }
    pthread_mutex_unlock(&http->lock);
    if (doc) {
        json_decref(known);
        return respond(conn, MHD_HTTP_OK, DW_HTTP_JSON, doc, strlen(doc), 1);
    }
    json_t *err = json_pack("{s:s,s:o}", "error",
                            "no canary analysis for this model (none "
                            "configured: models.<m>.canary)",
                            "models", known);
    json_object_set_new(err, "model", json_string(model));
    char *text = json_dumps(err, JSON_COMPACT);
    json_decref(err);
    return respond(conn, MHD_HTTP_NOT_FOUND, DW_HTTP_JSON, text, strlen(text), 1);
}

/* Whether a and b are equal, in a time that depends on their lengths only. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    unsigned int diff = (unsigned int)(la ^ lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned int)(ca ^ cb);
    }
    return diff == 0;
}

/* Whether url shows model data: /, /api/..., /status. */
static int is_protected(const char *url)
{
    return strcmp(url, "/") == 0 || strncmp(url, "/api/", 5) == 0 || strcmp(url, "/status") == 0;
}

/* 1 when the request may see url (no token set, or the right bearer token). */
static int authorized(struct dw_http *http, struct MHD_Connection *conn, const char *url)
{
    if (!is_protected(url)) {
        return 1;
    }
    char *token = NULL;
    pthread_mutex_lock(&http->lock);
    if (http->token) {
        token = dw_strdup(http->token);
    }
    pthread_mutex_unlock(&http->lock);
    if (!token) {
        return 1;
    }
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    int ok = h && strncasecmp(h, "Bearer ", 7) == 0 && same_secret(h + 7, token);
    free(token);
    return ok;
}

/* The application handler's answer, or 404 when it has none for url. */
static enum MHD_Result serve_app(struct dw_http *http, struct MHD_Connection *conn, const char *url)
{
    pthread_mutex_lock(&http->lock);
    dw_http_app_fn fn = http->app;
    void *ctx = http->app_ctx;
    pthread_mutex_unlock(&http->lock);
    struct dw_http_request req = {.conn = conn};
    struct dw_http_reply out = {0};
    if (!fn || !fn(ctx, url, &req, &out)) {
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    if (!out.body) {
        out.body = dw_strdup("");
        out.len = 0;
    }
    return respond(conn, out.code, out.content_type ? out.content_type : DW_HTTP_TEXT, out.body,
                   out.len, 1);
}

/* MHD access handler. @locality one of MHD's connection threads */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct dw_http *http = cls;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if (!authorized(http, conn, url)) {
        dw_metric_inc(http->unauthorized);
        dw_log_limited("http_unauthorized", 1, DW_LOG_WARN,
                       "http request refused: missing or wrong bearer token (http.auth_token)",
                       "{s:s}", "path", url);
        return respond_text(conn, MHD_HTTP_UNAUTHORIZED,
                            "unauthorized: send Authorization: Bearer <http.auth_token>\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        char *text = dw_metrics_render();
        return respond(conn, MHD_HTTP_OK, DW_HTTP_METRICS_TYPE, text, strlen(text), 1);
    }
    if (strcmp(url, "/livez") == 0) {
        return serve_livez(http, conn);
    }
    if (strcmp(url, "/readyz") == 0) {
        return serve_readyz(http, conn);
    }
    if (strcmp(url, "/status") == 0) {
        return serve_status(http, conn);
    }
    if (strncmp(url, CANARY_PREFIX, strlen(CANARY_PREFIX)) == 0) {
        return serve_canary(http, conn, url + strlen(CANARY_PREFIX));
    }
    if (strcmp(url, "/") == 0 || strncmp(url, "/api/", 5) == 0) {
        return serve_app(http, conn, url);
    }
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

struct dw_http *dw_http_start(const char *listen, int64_t live_window_ms, char *errstr,
                              size_t errstr_size)
{
    struct sockaddr_storage ss;
    socklen_t ss_len = 0;
    struct dw_http *http = NULL;

    if (live_window_ms <= 0) {
        dw_err(errstr, errstr_size, "http liveness window must be positive, got %lld ms",
               (long long)live_window_ms);
        return NULL;
    }
    if (parse_listen(listen, &ss, &ss_len, errstr, errstr_size) != 0) {
        return NULL;
    }

    http = dw_calloc(1, sizeof(*http));
    pthread_mutex_init(&http->lock, NULL);
    http->live_window_ms = live_window_ms;
    atomic_init(&http->last_tick_ms, dw_mono_ms());
    http->reason = dw_strdup("starting");
    http->status = dw_strdup("{}");
    http->unauthorized = dw_metrics_series(
        "driftwatch_http_unauthorized_total",
        "Requests to /, /api/ or /status refused with 401: no or wrong bearer token "
        "(http.auth_token).",
        DW_METRIC_COUNTER, "");

    unsigned int flags =
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* MHD ignores the port argument when given a sockaddr but quotes it in its messages. */
    uint16_t want_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    /* The logger goes first so that MHD routes every later message through it. */
    http->daemon = MHD_start_daemon(
        flags, want_port, NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        http, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)DW_HTTP_CONNECTION_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)DW_HTTP_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)DW_HTTP_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!http->daemon) {
        dw_err(errstr, errstr_size, "cannot start http server on \"%s\": %s", listen,
               http->last_error[0] ? http->last_error : "libmicrohttpd failed to start");
        goto err;
    }

    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        dw_err(errstr, errstr_size, "http server on \"%s\": cannot read the bound port", listen);
        goto err;
    }
    http->port = info->port;
    dw_log(DW_LOG_INFO, "http server listening", "{s:s,s:i}", "listen", listen, "port", http->port);
    return http;

err:
    if (http->daemon) {
        MHD_stop_daemon(http->daemon);
    }
    free(http->status);
    free(http->reason);
    pthread_mutex_destroy(&http->lock);
    free(http);
    return NULL;
}

int dw_http_port(const struct dw_http *http)
{
    return http->port;
}

void dw_http_tick(struct dw_http *http)
{
    atomic_store(&http->last_tick_ms, dw_mono_ms());
}

void dw_http_set_ready(struct dw_http *http, int ready, const char *reason)
{
    if (!reason || reason[0] == '\0') {
        reason = ready ? "ready" : "not ready";
    }
    pthread_mutex_lock(&http->lock);
    int same = (http->ready == (ready != 0)) && strcmp(http->reason, reason) == 0;
    pthread_mutex_unlock(&http->lock);
    if (same) {
        /* Called every loop iteration by some owners: no allocation when nothing changed. */
        return;
    }
    char *copy = dw_strdup(reason);
    pthread_mutex_lock(&http->lock);
    char *old = http->reason;
    http->ready = ready != 0;
    http->reason = copy;
    pthread_mutex_unlock(&http->lock);
    free(old);
}

void dw_http_set_status(struct dw_http *http, const char *json)
{
    char *copy = dw_strdup(json ? json : "{}");
    pthread_mutex_lock(&http->lock);
    char *old = http->status;
    http->status = copy;
    pthread_mutex_unlock(&http->lock);
    free(old);
}

/* Frees n pairs of texts. */
static void pairs_free(char **pairs, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        free(pairs[i]);
    }
    free(pairs);
}

void dw_http_set_canary(struct dw_http *http, const json_t *by_model)
{
    size_t n = json_object_size(by_model), i = 0;
    char **pairs = dw_calloc(2 * n + 1, sizeof(*pairs));
    const char *model;
    json_t *doc;
    json_object_foreach((json_t *)by_model, model, doc)
    {
        pairs[2 * i] = dw_strdup(model);
        pairs[2 * i + 1] = json_dumps(doc, JSON_COMPACT);
        i++;
    }
    pthread_mutex_lock(&http->lock);
    char **old = http->canary;
    size_t n_old = http->n_canary;
    http->canary = pairs;
    http->n_canary = n;
    pthread_mutex_unlock(&http->lock);
    pairs_free(old, n_old);
}

void dw_http_set_app(struct dw_http *http, dw_http_app_fn fn, void *ctx)
{
    pthread_mutex_lock(&http->lock);
    http->app = fn;
    http->app_ctx = ctx;
    pthread_mutex_unlock(&http->lock);
}

void dw_http_set_auth(struct dw_http *http, const char *token)
{
    char *copy = token && token[0] ? dw_strdup(token) : NULL;
    pthread_mutex_lock(&http->lock);
    char *old = http->token;
    http->token = copy;
    pthread_mutex_unlock(&http->lock);
    free(old);
}

void dw_http_stop(struct dw_http *http)
{
    if (!http) {
        return;
    }
    MHD_stop_daemon(http->daemon);
    pairs_free(http->canary, http->n_canary);
    free(http->token);
    free(http->status);
    free(http->reason);
    pthread_mutex_destroy(&http->lock);
    free(http);
}
