/*
 * dw_http.h - the operations endpoints, served by libmicrohttpd on its own thread.
 *
 *   GET /metrics  Prometheus text (dw_metrics_render)
 *   GET /livez    200 when the main loop ticked within the liveness window, else 503
 *   GET /readyz   200 when the owner says ready (joined the group, Redis reachable), else 503
 *   GET /status   the JSON document last published with dw_http_set_status()
 * Anything else is 404; methods other than GET/HEAD are 405.
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

void dw_http_stop(struct dw_http *http);

#endif
