/*
 * dw_modelmetrics.h - the model series of /metrics (performance, estimates, predictions,
 * drift, evaluation times), the same on every pod.
 *
 * The evaluator reduces each window report it commits to a small digest (dw_modelmetrics_
 * digest) stored with the report in the same MULTI/EXEC, one per model and stage; every pod
 * reads the two digests of each model every evaluation interval and sets the series from them
 * (dw_modelmetrics_publish). So a scrape of any pod is complete, and the series never need the
 * reports themselves (kilobytes per feature) to be read. Pure C, no I/O.
 */
#ifndef DW_MODELMETRICS_H
#define DW_MODELMETRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct dw_metric;

/* The `version` label of a model's series over all its versions. */
#define DW_MODELMETRICS_ALL_VERSIONS "all"

/** Bound on the series dw_modelmetrics_publish creates, shared by every model. */
struct dw_modelmetrics {
    size_t max_series; /* metrics.max_series */
    size_t n_series;   /* created so far (a series is never removed) */
};

/** One model's gauges set by its last publish (to tell the stale ones). */
struct dw_modelmetrics_model {
    struct dw_metric **set;
    size_t n_set;
};

/**
 * @brief The digest of a window report: its stage, window, wall-clock evaluation time, counts,
 *        realised performance (all versions and per version), the estimate when ready, the
 *        feature drift scores, the dataset drift share; a final digest also carries the running
 *        prediction totals (`totals`): prev's (the previous final digest) plus this window's.
 * @param prev the previous digest of the same stage, or NULL (first one); its totals count
 *        from 0 when absent or malformed.
 * @param evaluated_ms wall clock of the evaluation, ms since the epoch.
 * @param window_end_ms event time at which the reported window (or run of windows) ends.
 * @returns 0, or -1 when prev is there but its totals are malformed (errstr says why; *out
 *          is made anyway, counting from this window).
 */
int dw_modelmetrics_digest(const json_t *report, const json_t *prev, int64_t evaluated_ms,
                           int64_t window_end_ms, json_t **out, char *errstr, size_t errstr_size);

/**
 * @brief Sets model `model`'s series from its latest close and final digests (either NULL when
 *        absent); gauges set by the previous call and not by this one become NaN (a version
 *        that stopped, a method changed). A series that does not exist yet is created only
 *        while mm->n_series < mm->max_series.
 * @returns the series not created because of that bound.
 * @locality the caller serializes calls (one thread); scrapes may run concurrently.
 */
size_t dw_modelmetrics_publish(struct dw_modelmetrics *mm, struct dw_modelmetrics_model *st,
                               const char *model, const json_t *close, const json_t *final);

/**
 * @brief Seconds from the window's end (event time) to its close evaluation (wall clock) in a
 *        close digest. @returns them, or NaN when the digest has none.
 */
double dw_modelmetrics_close_delay(const json_t *close);

/** @brief Frees st's list (not the series). */
void dw_modelmetrics_model_free(struct dw_modelmetrics_model *st);

#endif
