/*
 * dw_http.h - the operations endpoints, served by libmicrohttpd on its own thread.
 *
 *   GET /metrics  Prometheus text (dw_metrics_render)
 *   GET /livez    200 when the main loop ticked within the liveness window, else 503
 *   GET /readyz   200 when the owner says ready (joined the group, Redis reachable), else 503
 *   GET /status   the JSON document last published with dw_http_set_status()
 *   GET /api/v1/canary/<model>  the documents of dw_http_set_canary()
 *   GET / and /api/... otherwise: the application handler of dw_http_set_app() (the status
 *                 page and the reports API, dw_api.h)
 * Anything else is 404; methods other than GET/HEAD are 405. With a token set
 * (dw_http_set_auth), /, /api/ and /status answer 401 without "Authorization: Bearer <token>";
 * the probes and /metrics stay open.
 */
#ifndef DW_HTTP_H
#define DW_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct dw_http;

/**
 * @brief Starts the server on "host:port" (port 0 picks a free port, see dw_http_port()).
 * @param live_window_ms /livez fails when dw_http_tick() was not called for this long.
 * @returns NULL with errstr when the address is bad or cannot be bound.
 */
struct dw_http *dw_http_start(const char *listen, int64_t live_window_ms, char *errstr,
                              size_t errstr_size);

/** @returns the bound TCP port. */
int dw_http_port(const struct dw_http *http);

/** @brief Records that the main loop is alive. @locality main thread */
void dw_http_tick(struct dw_http *http);

/** @brief Sets readiness and the reason shown by /readyz when not ready. */
void dw_http_set_ready(struct dw_http *http, int ready, const char *reason);

/** @brief Replaces the /status document (copied). */
void dw_http_set_status(struct dw_http *http, const char *json);

/**
 * @brief The documents of GET /api/v1/canary/<model>: `by_model` maps a model to its JSON
 *        (dw_canary_latest); a model not in it gets 404 naming the ones that are.
 */
void dw_http_set_canary(struct dw_http *http, const json_t *by_model);

/** @brief A request as the application handler sees it (valid during the call only). */
struct dw_http_request;

/** @returns the value of query argument `name` (URL-decoded), or NULL when absent. */
const char *dw_http_arg(const struct dw_http_request *req, const char *name);

/** @brief What the application handler answers: code, content type, body (malloc'd, owned by
 *         dw_http afterwards). */
struct dw_http_reply {
    unsigned int code;
    const char *content_type; /* a static string */
    char *body;
    size_t len;
};

/**
 * @brief Serves GET / and /api/... (but /api/v1/canary/) on the server's thread.
 * @returns 1 when it answered (*out filled), 0 when the path is not its (404).
 */
typedef int (*dw_http_app_fn)(void *ctx, const char *url, const struct dw_http_request *req,
                              struct dw_http_reply *out);

/** @brief Installs the application handler (NULL: none). Call before traffic is expected. */
void dw_http_set_app(struct dw_http *http, dw_http_app_fn fn, void *ctx);

/**
 * @brief Requires "Authorization: Bearer <token>" on /, /api/ and /status (NULL or "": open).
 *        A request without it, or with another token, gets 401 and counts in
 *        driftwatch_http_unauthorized_total.
 */
void dw_http_set_auth(struct dw_http *http, const char *token);

void dw_http_stop(struct dw_http *http);

#endif
