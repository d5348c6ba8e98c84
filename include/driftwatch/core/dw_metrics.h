/*
 * dw_metrics.h - a small registry of Prometheus metrics.
 *
 * Series are registered once at start-up (name, help, type, optional fixed label text such as
 * `reason="invalid_json"`) and updated lock-free from any thread with atomics; dw_metrics_render
 * writes the text exposition format (version 0.0.4), one HELP/TYPE per family, in registration
 * order. Names carry the `driftwatch_` prefix and base units (seconds, bytes) by convention of
 * the callers. Series with labels known only at run time (per model, per feature) are added
 * with dw_metrics_series(), which returns the existing series when called again.
 */
#ifndef DW_METRICS_H
#define DW_METRICS_H

#include <stddef.h>

enum dw_metric_type { DW_METRIC_COUNTER, DW_METRIC_GAUGE };

struct dw_metric;

/**
 * @brief Returns the series (name, labels), creating it on first use.
 * @param labels label pairs in exposition syntax without braces, e.g. `reason="x",topic="y"`,
 *        or NULL. Values must already be escaped.
 * @locality any thread
 */
struct dw_metric *dw_metrics_series(const char *name, const char *help, enum dw_metric_type type,
                                    const char *labels);

/**
 * @brief The series (name, labels) if it exists, without creating it: for callers that bound
 *        how many run-time series they create (a series is never removed once created).
 * @returns the series, or NULL.
 * @locality any thread
 */
struct dw_metric *dw_metrics_find(const char *name, const char *labels);

void dw_metric_add(struct dw_metric *m, double v);
void dw_metric_inc(struct dw_metric *m);
void dw_metric_set(struct dw_metric *m, double v);
double dw_metric_get(const struct dw_metric *m);

/** @brief Renders every series. @returns a malloc'd NUL-terminated string (caller frees). */
char *dw_metrics_render(void);

/** @brief Drops every series (tests; not thread-safe against concurrent updates). */
void dw_metrics_reset(void);

/** @brief Escapes a label value per the exposition format into buf (\\, \", \n). */
void dw_metrics_escape(const char *value, char *buf, size_t buf_size);

#endif
