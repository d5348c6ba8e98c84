/*
 * dw_errstream.h - a model's joined error stream, fed to Page-Hinkley, ADWIN and DDM (pure C).
 *
 * The stream: the model's labeled predictions, window after window in event-time order, each
 * element 1 when the prediction was wrong and 0 when right (classification), or the window's
 * mean absolute error (regression). Within one window the elements are placed in a canonical
 * order: the window's e errors among its n labeled predictions are spread evenly, element i
 * (0-based) being an error when floor((i + 1) e / n) > floor(i e / n). Why: the events of one
 * window come from several partitions with no defined order between them, and a detector fed in
 * arrival order would give a different answer after every restart or rebalance. Fed from the
 * window's counts, the detectors are a function of the data, the same in `run` (at the label
 * horizon, when a window's labels are in) and in `replay` (docs/change-detectors.md).
 *
 * DDM takes binary elements only: it is fed for classification and reported null for
 * regression.
 */
#ifndef DW_ERRSTREAM_H
#define DW_ERRSTREAM_H

#include <jansson.h>
#include <stdint.h>

#include "driftwatch/core/dw_changedet.h"
#include "driftwatch/core/dw_config.h"

#define DW_ERRSTREAM_FORMAT 1 /* version of the state text */

/** @brief The three detectors of one model, and where the stream stands. */
struct dw_errstream {
    struct dw_cd ph, adwin, ddm;
    int64_t next_start_ms; /* windows before this one were fed; INT64_MIN: none yet */
    uint64_t elements;     /* fed so far */
};

/** @brief River's default parameters for the three detectors. */
void dw_errstream_init(struct dw_errstream *es);

void dw_errstream_free(struct dw_errstream *es);

/**
 * @brief Feeds one window: n labeled predictions of which `errors` were wrong (classification,
 *        mae NaN), or n labeled predictions with mean absolute error mae (regression). A window
 *        at or before one already fed changes nothing (an evaluation repeated after a crash).
 * @returns the report member {"elements" (in this window), "stream_elements",
 *          "page_hinkley": {"drift", "detections", "estimation"}, "adwin": {...},
 *          "ddm": {"drift", "warning", "detections", "estimation"} or null}, where "drift"
 *          says a change was detected at one of this window's elements; a new object.
 */
json_t *dw_errstream_feed(struct dw_errstream *es, int64_t start_ms, uint64_t n, uint64_t errors,
                          double mae);

/**
 * @brief Feeds the window of a report (dw_eval_window: "window_start_ms", "labeled", and
 *        "correct" for classification or "performance"."mae" for regression).
 * @returns as dw_errstream_feed().
 */
json_t *dw_errstream_feed_report(struct dw_errstream *es, const struct dw_model_cfg *m,
                                 const json_t *report);

/** @returns the state as text (hex of the detectors' checkpoint records), malloc'ed. */
char *dw_errstream_dump(const struct dw_errstream *es);

/**
 * @brief Restores a dumped state into es (which must not hold memory).
 * @returns 0, or -1 with errstr (es is then initialised fresh).
 */
int dw_errstream_load(struct dw_errstream *es, const char *text, char *errstr, size_t errstr_size);

#endif
