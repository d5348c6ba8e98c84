/*
 * dw_changedet.h - change detectors over a model's joined error stream: Page-Hinkley, ADWIN and
 * DDM, reproducing river's (online-ml/river) algorithms and default parameters so that the same
 * input stream gives detections at the same indices (docs/change-detectors.md).
 *
 * Shape of the API: one plain struct per detector (struct dw_cd_ph, dw_cd_adwin, dw_cd_ddm), each
 * initialised on caller storage from an explicit parameter struct (`*_defaults()` fills river's
 * defaults), plus a tagged struct dw_cd for the pipeline, which picks the detector per model from
 * configuration. Per-detector structs keep each algorithm's state readable and testable; the tag
 * only dispatches.
 *
 * update(x) feeds one element (classification: 1 when the prediction was wrong, 0 when right;
 * regression: the error as a number) and returns 1 when a change is detected at this element.
 * As in river, the state that detected the change stays visible to the accessors until the next
 * update, which first resets the detector and then takes its element.
 *
 * serialize() appends a versioned little-endian record to a dw_buf; deserialize() reads one back
 * from a dw_reader (advancing it, so several records can share one checkpoint blob). A restored
 * detector continues exactly as the original would have: same doubles, same detections.
 */
#ifndef DW_CHANGEDET_H
#define DW_CHANGEDET_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_codec.h"

/* ---------------------------------------------------------------- Page-Hinkley */

enum dw_cd_ph_mode {
    DW_CD_PH_UP = 0,   /* only increases of the mean (river mode="up") */
    DW_CD_PH_DOWN = 1, /* only decreases (mode="down") */
    DW_CD_PH_BOTH = 2  /* either (mode="both", river's default) */
};

struct dw_cd_ph_params {
    uint32_t min_instances; /* elements seen before a change may be signalled (river: 30) */
    double delta;           /* magnitude of change tolerated, in units of x (river: 0.005) */
    double threshold;       /* lambda, in units of x (river: 50.0) */
    double alpha;           /* forgetting factor per element, dimensionless (river: 1 - 0.0001) */
    enum dw_cd_ph_mode mode;
};

struct dw_cd_ph {
    struct dw_cd_ph_params p;
    double n; /* elements since the last reset (river's stats.Mean.n, a float) */
    double mean;
    double sum_increase;
    double sum_decrease;
    double min_increase;
    double max_decrease;
    int drift;
    uint64_t n_seen;       /* elements since init (driftwatch addition, survives resets) */
    uint64_t n_detections; /* detections since init (driftwatch addition) */
};

/** @brief river's defaults: min_instances 30, delta 0.005, threshold 50, alpha 0.9999, both. */
struct dw_cd_ph_params dw_cd_ph_defaults(void);
/** @returns 0, or -1 with errstr when a parameter is out of range. */
int dw_cd_ph_init(struct dw_cd_ph *ph, const struct dw_cd_ph_params *p, char *errstr,
                  size_t errstr_size);
/** @returns 1 when a change is detected at this element, else 0. */
int dw_cd_ph_update(struct dw_cd_ph *ph, double x);
/** @returns the running mean since the last reset. */
double dw_cd_ph_mean(const struct dw_cd_ph *ph);
void dw_cd_ph_serialize(const struct dw_cd_ph *ph, struct dw_buf *out);
/** @returns 0, or -1 with errstr on a truncated or corrupt record (ph then left unusable). */
int dw_cd_ph_deserialize(struct dw_cd_ph *ph, struct dw_reader *rd, char *errstr,
                         size_t errstr_size);

/* ---------------------------------------------------------------- ADWIN */

struct dw_cd_adwin_params {
    double delta;               /* significance, dimensionless (river: 0.002) */
    uint32_t clock;             /* check for change every this many elements (river: 32) */
    uint32_t max_buckets;       /* buckets kept per size before merging (river: 5) */
    uint32_t min_window_length; /* minimum elements in each sub-window of a cut (river: 5) */
    uint32_t grace_period;      /* no check until the window holds more elements (river: 10) */
};

/*
 * The window is an exponential histogram: level i holds up to max_buckets summaries (sum and
 * sum of squared deviations) of 2^i elements each, oldest first. Storage for level i is
 * tot[i * (max_buckets + 1) ...] and var[...], count[i] of them in use.
 */
struct dw_cd_adwin {
    struct dw_cd_adwin_params p;
    double total;       /* sum of the elements in the window */
    double variance;    /* sum of squared deviations from the window mean */
    double width;       /* elements in the window */
    double total_width; /* river's running sum of widths after each update (kept for parity) */
    uint64_t tick;      /* updates since the last reset (drives the clock) */
    uint32_t n_levels;
    uint32_t cap_levels;
    uint32_t *count;
    double *tot;
    double *var;
    int drift;
    uint64_t n_seen;
    uint64_t n_detections;
};

/** @brief river's defaults: delta 0.002, clock 32, max_buckets 5, min_window_length 5, grace 10. */
struct dw_cd_adwin_params dw_cd_adwin_defaults(void);
/** @returns 0, or -1 with errstr when a parameter is out of range. Free with _free(). */
int dw_cd_adwin_init(struct dw_cd_adwin *ad, const struct dw_cd_adwin_params *p, char *errstr,
                     size_t errstr_size);
void dw_cd_adwin_free(struct dw_cd_adwin *ad);
/** @returns 1 when a change is detected at this element, else 0. */
int dw_cd_adwin_update(struct dw_cd_adwin *ad, double x);
/** @returns the window mean (0 when empty): river's `estimation`. */
double dw_cd_adwin_estimation(const struct dw_cd_adwin *ad);
/** @returns the number of elements in the window: river's `width`. */
double dw_cd_adwin_width(const struct dw_cd_adwin *ad);
/** @returns the sum of squared deviations in the window: river's `variance`. */
double dw_cd_adwin_variance(const struct dw_cd_adwin *ad);
void dw_cd_adwin_serialize(const struct dw_cd_adwin *ad, struct dw_buf *out);
/**
 * @brief Reads a record into ad, which must not hold memory (uninitialised or freed).
 * @returns 0 (free ad later), or -1 with errstr on a truncated or corrupt record (nothing held).
 */
int dw_cd_adwin_deserialize(struct dw_cd_adwin *ad, struct dw_reader *rd, char *errstr,
                            size_t errstr_size);

/* ---------------------------------------------------------------- DDM */

struct dw_cd_ddm_params {
    uint32_t warm_start;      /* elements before warning or change (river: 30) */
    double warning_threshold; /* in standard deviations (river: 2.0) */
    double drift_threshold;   /* in standard deviations (river: 3.0) */
};

struct dw_cd_ddm {
    struct dw_cd_ddm_params p;
    double n;    /* elements since the last reset */
    double mean; /* error rate since the last reset */
    double p_min;
    double s_min;
    double ps_min;
    int drift;
    int warning;
    uint64_t n_seen;
    uint64_t n_detections;
};

/** @brief river's defaults: warm_start 30, warning_threshold 2.0, drift_threshold 3.0. */
struct dw_cd_ddm_params dw_cd_ddm_defaults(void);
int dw_cd_ddm_init(struct dw_cd_ddm *ddm, const struct dw_cd_ddm_params *p, char *errstr,
                   size_t errstr_size);
/** @brief x is 1 for an error, 0 for a correct prediction. @returns 1 on a detected change. */
int dw_cd_ddm_update(struct dw_cd_ddm *ddm, double x);
/** @returns 1 while in the warning zone (river's `warning_detected`), else 0. */
int dw_cd_ddm_warning(const struct dw_cd_ddm *ddm);
/** @returns the error rate since the last reset. */
double dw_cd_ddm_error_rate(const struct dw_cd_ddm *ddm);
void dw_cd_ddm_serialize(const struct dw_cd_ddm *ddm, struct dw_buf *out);
int dw_cd_ddm_deserialize(struct dw_cd_ddm *ddm, struct dw_reader *rd, char *errstr,
                          size_t errstr_size);

/* ---------------------------------------------------------------- tagged */

enum dw_cd_kind { DW_CD_PAGE_HINKLEY = 1, DW_CD_ADWIN = 2, DW_CD_DDM = 3 };

struct dw_cd {
    enum dw_cd_kind kind;
    union {
        struct dw_cd_ph ph;
        struct dw_cd_adwin adwin;
        struct dw_cd_ddm ddm;
    } u;
};

/** @brief Parses "page_hinkley", "adwin" or "ddm". @returns 0, or -1 for another name. */
int dw_cd_kind_parse(const char *name, enum dw_cd_kind *kind);
/** @returns "page_hinkley", "adwin" or "ddm". */
const char *dw_cd_kind_name(enum dw_cd_kind kind);
/** @brief Initialises a detector of this kind with river's defaults. */
int dw_cd_init_default(struct dw_cd *cd, enum dw_cd_kind kind, char *errstr, size_t errstr_size);
void dw_cd_free(struct dw_cd *cd);
int dw_cd_update(struct dw_cd *cd, double x);
/** @returns 1 when the last update detected a change. */
int dw_cd_drift(const struct dw_cd *cd);
/** @returns 1 in DDM's warning zone (always 0 for the others). */
int dw_cd_warning(const struct dw_cd *cd);
/** @returns the detector's estimate of the current error: PH/DDM mean, ADWIN window mean. */
double dw_cd_estimation(const struct dw_cd *cd);
uint64_t dw_cd_detections(const struct dw_cd *cd);
/** @brief Appends the kind tag and the detector's record. */
void dw_cd_serialize(const struct dw_cd *cd, struct dw_buf *out);
/** @brief Reads a tagged record into cd (which must not hold memory). @returns 0 / -1. */
int dw_cd_deserialize(struct dw_cd *cd, struct dw_reader *rd, char *errstr, size_t errstr_size);

#endif
