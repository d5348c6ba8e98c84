/*
 * dw_api.h - the status page (GET /) and the reports API (GET /api/v1/models...), read from
 * Redis by whichever pod is asked (docs/api.md).
 */
#ifndef DW_API_H
#define DW_API_H

#include "driftwatch/core/dw_config.h"
#include "driftwatch/io/dw_http.h"

struct dw_api;

/**
 * @brief The handler's state. cfg is borrowed and must outlive the HTTP server that calls
 *        dw_api_serve (stop the server before freeing either).
 */
struct dw_api *dw_api_new(const struct dw_config *cfg);
void dw_api_free(struct dw_api *api);

/**
 * @brief dw_http_app_fn of GET / and /api/v1/models...: opens its own Redis connection per
 *        request (at most DW_API_CONCURRENCY at once; beyond, 503).
 */
int dw_api_serve(void *api, const char *url, const struct dw_http_request *req,
                 struct dw_http_reply *out);

#endif
