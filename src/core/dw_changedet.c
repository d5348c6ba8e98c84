/*
 * dw_changedet.c - Page-Hinkley, ADWIN and DDM over the joined error stream.
 *
 * Why river's algorithms, line for line: users tune these detectors in a notebook with river and
 * expect the service to alarm at the same element. So each update below performs river's
 * floating-point operations in river's order (C evaluates `a * b * c / d` left to right just like
 * Python and Cython, and the project builds with -std=c11, which turns off FMA contraction), and
 * the reset rule is river's: the update that detects keeps its state visible; the next update
 * starts by resetting the detector. Sources read (docs/change-detectors.md): river's
 * drift/page_hinkley.py (two-sided, `mode`), drift/adwin.py with the Cython/Rust helper
 * AdaptiveWindowing, drift/binary/ddm.py, and stats.Mean (mean += (w / n) * (x - mean)).
 *
 * ADWIN's window is an exponential histogram of "levels": level i holds up to max_buckets
 * summaries (sum, sum of squared deviations) of 2^i consecutive elements, oldest first. When a
 * level reaches max_buckets + 1 summaries its two oldest merge into one summary of the next
 * level. Every `clock` elements, once the window holds more than `grace_period`, every cut
 * between summaries (oldest part W0, newest part W1) is tested with the Hoeffding/Bernstein bound
 * of Bifet & Gavalda; a significant cut drops the oldest summary, and the scan repeats until no
 * cut is significant. Memory is O(max_buckets * log2(width)) doubles.
 *
 * Driftwatch departures from river, all outside river's domain: a non-finite element (NaN, inf)
 * is ignored (river would poison the state forever), and each detector also counts elements and
 * detections since init for metrics (river's ADWIN counter restarts with every reset).
 *
 * Checkpoint records: u8 kind (1 PH, 2 ADWIN, 3 DDM), u8 version (1), the parameters, then the
 * state, all little-endian through dw_codec; doubles travel as their IEEE-754 bits, so a restored
 * detector continues bit for bit. Readers validate every field before trusting it.
 */
#include "driftwatch/core/dw_changedet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define CD_VERSION 1
/* Upper bound on ADWIN's max_buckets (summaries per level) accepted from config or a checkpoint,
 * so that a corrupt record cannot ask for a huge allocation. */
#define ADWIN_MAX_BUCKETS_LIMIT 65536u
/* ADWIN levels: level i summarises 2^i elements, so 64 levels exceed any stream's length. */
#define ADWIN_MAX_LEVELS 64u

/* ================================================================ Page-Hinkley */

struct dw_cd_ph_params dw_cd_ph_defaults(void)
{
    struct dw_cd_ph_params p;
    p.min_instances = 30;
    p.delta = 0.005;
    p.threshold = 50.0;
    p.alpha = 1 - 0.0001;
    p.mode = DW_CD_PH_BOTH;
    return p;
}

static int ph_params_check(const struct dw_cd_ph_params *p, char *errstr, size_t errstr_size)
{
    if (!isfinite(p->delta) || !isfinite(p->threshold) || !isfinite(p->alpha)) {
        return dw_err(errstr, errstr_size,
                      "page_hinkley: delta, threshold and alpha must be "
                      "finite");
    }
    if (p->alpha < 0.0 || p->alpha > 1.0) {
        return dw_err(errstr, errstr_size, "page_hinkley: alpha %g outside [0, 1]", p->alpha);
    }
    if (p->mode != DW_CD_PH_UP && p->mode != DW_CD_PH_DOWN && p->mode != DW_CD_PH_BOTH) {
        return dw_err(errstr, errstr_size, "page_hinkley: unknown mode %d", (int)p->mode);
    }
    return 0;
}

static void ph_reset(struct dw_cd_ph *ph)
{
    ph->n = 0.0;
    ph->mean = 0.0;
    ph->sum_increase = 0.0;
    ph->sum_decrease = 0.0;
    ph->min_increase = INFINITY;
    ph->max_decrease = -1.0; /* river starts the running maximum at -1, not -inf */
    ph->drift = 0;
}

int dw_cd_ph_init(struct dw_cd_ph *ph, const struct dw_cd_ph_params *p, char *errstr,
                  size_t errstr_size)
{
    memset(ph, 0, sizeof(*ph));
    if (ph_params_check(p, errstr, errstr_size) < 0) {
        return -1;
    }
    ph->p = *p;
    ph_reset(ph);
    return 0;
}

int dw_cd_ph_update(struct dw_cd_ph *ph, double x)
{
    if (!isfinite(x)) {
        return 0;
    }
    if (ph->drift) {
        ph_reset(ph);
    }
    ph->n_seen++;
    ph->n += 1.0;
    ph->mean += (1.0 / ph->n) * (x - ph->mean);
    double dev = x - ph->mean;

    ph->sum_increase = ph->p.alpha * ph->sum_increase + dev - ph->p.delta;
    ph->sum_decrease = ph->p.alpha * ph->sum_decrease + dev + ph->p.delta;
    if (ph->sum_increase < ph->min_increase) {
        ph->min_increase = ph->sum_increase;
    }
    if (ph->sum_decrease > ph->max_decrease) {
        ph->max_decrease = ph->sum_decrease;
    }
    if (ph->n >= (double)ph->p.min_instances) {
        double test_increase = ph->sum_increase - ph->min_increase;
        double test_decrease = ph->max_decrease - ph->sum_decrease;
        int up = test_increase > ph->p.threshold;
        int down = test_decrease > ph->p.threshold;
        switch (ph->p.mode) {
        case DW_CD_PH_UP:
            ph->drift = up;
            break;
        case DW_CD_PH_DOWN:
            ph->drift = down;
            break;
        default:
            ph->drift = up || down;
            break;
        }
    }
    if (ph->drift) {
        ph->n_detections++;
    }
    return ph->drift;
}

double dw_cd_ph_mean(const struct dw_cd_ph *ph)
{
    return ph->mean;
}

void dw_cd_ph_serialize(const struct dw_cd_ph *ph, struct dw_buf *out)
{
    dw_buf_put_u8(out, (uint8_t)DW_CD_PAGE_HINKLEY);
    dw_buf_put_u8(out, CD_VERSION);
    dw_buf_put_u32(out, ph->p.min_instances);
    dw_buf_put_f64(out, ph->p.delta);
    dw_buf_put_f64(out, ph->p.threshold);
    dw_buf_put_f64(out, ph->p.alpha);
    dw_buf_put_u8(out, (uint8_t)ph->p.mode);
    dw_buf_put_f64(out, ph->n);
    dw_buf_put_f64(out, ph->mean);
    dw_buf_put_f64(out, ph->sum_increase);
    dw_buf_put_f64(out, ph->sum_decrease);
    dw_buf_put_f64(out, ph->min_increase);
    dw_buf_put_f64(out, ph->max_decrease);
    dw_buf_put_u8(out, (uint8_t)(ph->drift ? 1 : 0));
    dw_buf_put_u64(out, ph->n_seen);
    dw_buf_put_u64(out, ph->n_detections);
}

/* Reads the common header and checks kind and version. */
static int rd_header(struct dw_reader *rd, enum dw_cd_kind kind, const char *name, char *errstr,
                     size_t errstr_size)
{
    uint8_t k = dw_rd_u8(rd);
    uint8_t v = dw_rd_u8(rd);
    if (rd->err) {
        return dw_err(errstr, errstr_size, "%s: truncated record", name);
    }
    if (k != (uint8_t)kind) {
        return dw_err(errstr, errstr_size, "%s: record is of kind %u", name, (unsigned)k);
    }
    if (v != CD_VERSION) {
        return dw_err(errstr, errstr_size, "%s: unsupported record version %u", name, (unsigned)v);
    }
    return 0;
}

/* A count of elements stored as a double: finite, non-negative, integral. */
static int is_count(double v)
{
    return isfinite(v) && v >= 0.0 && v == floor(v);
}

int dw_cd_ph_deserialize(struct dw_cd_ph *ph, struct dw_reader *rd, char *errstr,
                         size_t errstr_size)
{
    struct dw_cd_ph tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (rd_header(rd, DW_CD_PAGE_HINKLEY, "page_hinkley", errstr, errstr_size) < 0) {
        return -1;
    }
    tmp.p.min_instances = dw_rd_u32(rd);
    tmp.p.delta = dw_rd_f64(rd);
    tmp.p.threshold = dw_rd_f64(rd);
    tmp.p.alpha = dw_rd_f64(rd);
    uint8_t mode = dw_rd_u8(rd);
    tmp.n = dw_rd_f64(rd);
    tmp.mean = dw_rd_f64(rd);
    tmp.sum_increase = dw_rd_f64(rd);
    tmp.sum_decrease = dw_rd_f64(rd);
    tmp.min_increase = dw_rd_f64(rd);
    tmp.max_decrease = dw_rd_f64(rd);
    uint8_t drift = dw_rd_u8(rd);
    tmp.n_seen = dw_rd_u64(rd);
    tmp.n_detections = dw_rd_u64(rd);
    if (rd->err) {
        return dw_err(errstr, errstr_size, "page_hinkley: truncated record");
    }
    tmp.p.mode = (enum dw_cd_ph_mode)mode;
    if (mode > DW_CD_PH_BOTH) {
        return dw_err(errstr, errstr_size, "page_hinkley: corrupt mode %u", (unsigned)mode);
    }
    if (ph_params_check(&tmp.p, errstr, errstr_size) < 0) {
        return -1;
    }
    if (!is_count(tmp.n) || !isfinite(tmp.mean) || !isfinite(tmp.sum_increase) ||
        !isfinite(tmp.sum_decrease) || isnan(tmp.min_increase) || isnan(tmp.max_decrease) ||
        drift > 1) {
        return dw_err(errstr, errstr_size, "page_hinkley: corrupt state");
    }
    tmp.drift = drift;
    *ph = tmp;
    return 0;
}

/* ================================================================ ADWIN */

#define ADW_STRIDE(ad) ((size_t)(ad)->p.max_buckets + 1)
#define ADW_TOT(ad, lvl, k) ((ad)->tot[(size_t)(lvl)*ADW_STRIDE(ad) + (size_t)(k)])
#define ADW_VAR(ad, lvl, k) ((ad)->var[(size_t)(lvl)*ADW_STRIDE(ad) + (size_t)(k)])

struct dw_cd_adwin_params dw_cd_adwin_defaults(void)
{
    struct dw_cd_adwin_params p;
    p.delta = 0.002;
    p.clock = 32;
    p.max_buckets = 5;
    p.min_window_length = 5;
    p.grace_period = 10;
    return p;
}

static int adwin_params_check(const struct dw_cd_adwin_params *p, char *errstr, size_t errstr_size)
{
    if (!(p->delta > 0.0 && p->delta < 1.0)) {
        return dw_err(errstr, errstr_size, "adwin: delta %g outside (0, 1)", p->delta);
    }
    if (p->clock < 1) {
        return dw_err(errstr, errstr_size, "adwin: clock must be at least 1");
    }
    if (p->max_buckets < 1 || p->max_buckets > ADWIN_MAX_BUCKETS_LIMIT) {
        return dw_err(errstr, errstr_size, "adwin: max_buckets %u outside [1, %u]",
                      (unsigned)p->max_buckets, ADWIN_MAX_BUCKETS_LIMIT);
    }
    return 0;
}

/* 2^i as a double, exactly (river: <double>(1 << i)). */
static double pow2(uint32_t i)
{
    return ldexp(1.0, (int)i);
}

static void adwin_reserve_levels(struct dw_cd_adwin *ad, uint32_t want)
{
    if (want <= ad->cap_levels) {
        return;
    }
    uint32_t cap = ad->cap_levels ? ad->cap_levels : 8;
    while (cap < want) {
        cap *= 2;
    }
    size_t stride = ADW_STRIDE(ad);
    ad->count = dw_realloc(ad->count, (size_t)cap * sizeof(*ad->count));
    ad->tot = dw_realloc(ad->tot, (size_t)cap * stride * sizeof(*ad->tot));
    ad->var = dw_realloc(ad->var, (size_t)cap * stride * sizeof(*ad->var));
    for (uint32_t i = ad->cap_levels; i < cap; i++) {
        ad->count[i] = 0;
    }
    ad->cap_levels = cap;
}

static void adwin_reset(struct dw_cd_adwin *ad)
{
    ad->total = 0.0;
    ad->variance = 0.0;
    ad->width = 0.0;
    ad->total_width = 0.0;
    ad->tick = 0;
    ad->n_levels = 1;
    ad->count[0] = 0;
    ad->drift = 0;
}

int dw_cd_adwin_init(struct dw_cd_adwin *ad, const struct dw_cd_adwin_params *p, char *errstr,
                     size_t errstr_size)
{
    memset(ad, 0, sizeof(*ad));
    if (adwin_params_check(p, errstr, errstr_size) < 0) {
        return -1;
    }
    ad->p = *p;
    adwin_reserve_levels(ad, 1);
    adwin_reset(ad);
    return 0;
}

void dw_cd_adwin_free(struct dw_cd_adwin *ad)
{
    free(ad->count);
    free(ad->tot);
    free(ad->var);
    ad->count = NULL;
    ad->tot = NULL;
    ad->var = NULL;
    ad->cap_levels = 0;
    ad->n_levels = 0;
}

/* Appends a summary to the newest end of a level. */
static void level_push(struct dw_cd_adwin *ad, uint32_t lvl, double total, double variance)
{
    uint32_t k = ad->count[lvl];
    ADW_TOT(ad, lvl, k) = total;
    ADW_VAR(ad, lvl, k) = variance;
    ad->count[lvl] = k + 1;
}

/* Drops the n oldest summaries of a level. */
static void level_drop(struct dw_cd_adwin *ad, uint32_t lvl, uint32_t n)
{
    uint32_t remaining = ad->count[lvl] - n;
    if (remaining > 0) {
        memmove(&ADW_TOT(ad, lvl, 0), &ADW_TOT(ad, lvl, n), remaining * sizeof(double));
        memmove(&ADW_VAR(ad, lvl, 0), &ADW_VAR(ad, lvl, n), remaining * sizeof(double));
    }
    ad->count[lvl] = remaining;
}

/* Merges the two oldest summaries of every overflowing level into the next level. */
static void adwin_compress(struct dw_cd_adwin *ad)
{
    uint32_t mb = ad->p.max_buckets;
    uint32_t idx = 0;
    for (;;) {
        if (ad->count[idx] != mb + 1) {
            break;
        }
        if (idx + 1 >= ad->n_levels) {
            adwin_reserve_levels(ad, idx + 2);
            ad->count[idx + 1] = 0;
            ad->n_levels = idx + 2;
        }
        double n1 = pow2(idx);
        double t0 = ADW_TOT(ad, idx, 0);
        double t1 = ADW_TOT(ad, idx, 1);
        double mu1 = t0 / n1;
        double mu2 = t1 / n1;
        double total12 = t0 + t1;
        /* n1 * n2 / (n1 + n2) with n1 == n2 is n1 / 2 (exact: n1 is a power of two) */
        double temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2);
        double v12 = ADW_VAR(ad, idx, 0) + ADW_VAR(ad, idx, 1) + temp;
        level_push(ad, idx + 1, total12, v12);
        level_drop(ad, idx, 2);
        if (ad->count[idx + 1] <= mb) {
            break;
        }
        idx++;
    }
}

static void adwin_insert(struct dw_cd_adwin *ad, double value)
{
    level_push(ad, 0, value, 0.0);
    ad->width += 1.0;
    double incremental_variance = 0.0;
    if (ad->width > 1.0) {
        double d = value - ad->total / (ad->width - 1.0);
        incremental_variance = (ad->width - 1.0) * d * d / ad->width;
    }
    ad->variance += incremental_variance;
    ad->total += value;
    adwin_compress(ad);
}

/* Drops the oldest summary (the first of the last level). */
static void adwin_delete_oldest(struct dw_cd_adwin *ad)
{
    uint32_t last = ad->n_levels - 1;
    double n = pow2(last);
    double u = ADW_TOT(ad, last, 0);
    double v = ADW_VAR(ad, last, 0);
    double mu = u / n;

    ad->width -= n;
    ad->total -= u;
    double mu_window = ad->total / ad->width;
    double incremental_variance =
        v + n * ad->width * (mu - mu_window) * (mu - mu_window) / (n + ad->width);
    ad->variance -= incremental_variance;

    level_drop(ad, last, 1);
    if (ad->count[last] == 0 && ad->n_levels > 1) {
        ad->n_levels--;
    }
}

static int adwin_cut_significant(const struct dw_cd_adwin *ad, double n0, double n1,
                                 double delta_mean)
{
    double mwl = (double)ad->p.min_window_length;
    double delta_prime = log(2 * log(ad->width) / ad->p.delta);
    double m_recip = (1.0 / (n0 - mwl + 1)) + (1.0 / (n1 - mwl + 1));
    double epsilon = sqrt(2 * m_recip * (ad->variance / ad->width) * delta_prime) +
                     2.0 / 3.0 * delta_prime * m_recip;
    return fabs(delta_mean) > epsilon;
}

static int adwin_detect(struct dw_cd_adwin *ad)
{
    int change = 0;
    double mwl = (double)ad->p.min_window_length;

    ad->tick++;
    if (ad->tick % ad->p.clock == 0 && ad->width > (double)ad->p.grace_period) {
        int reduce = 1;
        while (reduce) {
            reduce = 0;
            int done = 0;
            double n0 = 0.0;
            double n1 = ad->width;
            double u0 = 0.0;
            double u1 = ad->total;
            /* Cuts from the oldest summary to the newest. */
            for (uint32_t li = ad->n_levels; li > 0 && !done; li--) {
                uint32_t idx = li - 1;
                double size = pow2(idx);
                uint32_t cnt = ad->count[idx];
                for (uint32_t k = 0; k < cnt; k++) {
                    n0 += size;
                    n1 -= size;
                    u0 += ADW_TOT(ad, idx, k);
                    u1 -= ADW_TOT(ad, idx, k);
                    if (idx == 0 && k == cnt - 1) {
                        done = 1;
                        break;
                    }
                    double delta_mean = (u0 / n0) - (u1 / n1);
                    if (n1 >= mwl && n0 >= mwl && adwin_cut_significant(ad, n0, n1, delta_mean)) {
                        reduce = 1;
                        change = 1;
                        if (ad->width > 0) {
                            adwin_delete_oldest(ad);
                            done = 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    ad->total_width += ad->width;
    return change;
}

int dw_cd_adwin_update(struct dw_cd_adwin *ad, double x)
{
    if (!isfinite(x)) {
        return 0;
    }
    if (ad->drift) {
        adwin_reset(ad);
    }
    ad->n_seen++;
    adwin_insert(ad, x);
    ad->drift = adwin_detect(ad);
    if (ad->drift) {
        ad->n_detections++;
    }
    return ad->drift;
}

double dw_cd_adwin_estimation(const struct dw_cd_adwin *ad)
{
    if (ad->width == 0.0) {
        return 0.0;
    }
    return ad->total / ad->width;
}

double dw_cd_adwin_width(const struct dw_cd_adwin *ad)
{
    return ad->width;
}

double dw_cd_adwin_variance(const struct dw_cd_adwin *ad)
{
    return ad->variance;
}

void dw_cd_adwin_serialize(const struct dw_cd_adwin *ad, struct dw_buf *out)
{
    dw_buf_put_u8(out, (uint8_t)DW_CD_ADWIN);
    dw_buf_put_u8(out, CD_VERSION);
    dw_buf_put_f64(out, ad->p.delta);
    dw_buf_put_u32(out, ad->p.clock);
    dw_buf_put_u32(out, ad->p.max_buckets);
    dw_buf_put_u32(out, ad->p.min_window_length);
    dw_buf_put_u32(out, ad->p.grace_period);
    dw_buf_put_f64(out, ad->total);
    dw_buf_put_f64(out, ad->variance);
    dw_buf_put_f64(out, ad->width);
    dw_buf_put_f64(out, ad->total_width);
    dw_buf_put_u64(out, ad->tick);
    dw_buf_put_u8(out, (uint8_t)(ad->drift ? 1 : 0));
    dw_buf_put_u64(out, ad->n_seen);
    dw_buf_put_u64(out, ad->n_detections);
    dw_buf_put_u32(out, ad->n_levels);
    for (uint32_t i = 0; i < ad->n_levels; i++) {
        dw_buf_put_u32(out, ad->count[i]);
        for (uint32_t k = 0; k < ad->count[i]; k++) {
            dw_buf_put_f64(out, ADW_TOT(ad, i, k));
            dw_buf_put_f64(out, ADW_VAR(ad, i, k));
        }
    }
}

int dw_cd_adwin_deserialize(struct dw_cd_adwin *ad, struct dw_reader *rd, char *errstr,
                            size_t errstr_size)
{
    struct dw_cd_adwin_params p;
    memset(ad, 0, sizeof(*ad));
    if (rd_header(rd, DW_CD_ADWIN, "adwin", errstr, errstr_size) < 0) {
        return -1;
    }
    p.delta = dw_rd_f64(rd);
    p.clock = dw_rd_u32(rd);
    p.max_buckets = dw_rd_u32(rd);
    p.min_window_length = dw_rd_u32(rd);
    p.grace_period = dw_rd_u32(rd);
    if (rd->err) {
        return dw_err(errstr, errstr_size, "adwin: truncated record");
    }
    if (dw_cd_adwin_init(ad, &p, errstr, errstr_size) < 0) {
        return -1;
    }
    ad->total = dw_rd_f64(rd);
    ad->variance = dw_rd_f64(rd);
    ad->width = dw_rd_f64(rd);
    ad->total_width = dw_rd_f64(rd);
    ad->tick = dw_rd_u64(rd);
    uint8_t drift = dw_rd_u8(rd);
    ad->n_seen = dw_rd_u64(rd);
    ad->n_detections = dw_rd_u64(rd);
    uint32_t n_levels = dw_rd_u32(rd);
    if (rd->err) {
        dw_err(errstr, errstr_size, "adwin: truncated record");
        goto err;
    }
    if (drift > 1 || !isfinite(ad->total) || !isfinite(ad->variance) || !is_count(ad->width) ||
        !isfinite(ad->total_width)) {
        dw_err(errstr, errstr_size, "adwin: corrupt state");
        goto err;
    }
    ad->drift = drift;
    if (n_levels < 1 || n_levels > ADWIN_MAX_LEVELS) {
        dw_err(errstr, errstr_size, "adwin: corrupt level count %u", (unsigned)n_levels);
        goto err;
    }
    /* Each level takes at least its u32 count: checked before the levels are allocated, so a
     * short record never makes a detector of max_buckets x 64 levels. */
    if (dw_rd_expect(rd, n_levels, sizeof(uint32_t), "levels") != 0) {
        dw_err(errstr, errstr_size, "adwin: %s", rd->msg);
        goto err;
    }
    adwin_reserve_levels(ad, n_levels);
    ad->n_levels = n_levels;
    double width = 0.0;
    for (uint32_t i = 0; i < n_levels; i++) {
        uint32_t cnt = dw_rd_u32(rd);
        if (rd->err) {
            dw_err(errstr, errstr_size, "adwin: truncated record");
            goto err;
        }
        /* after every update each level holds at most max_buckets summaries */
        if (cnt > ad->p.max_buckets || (cnt == 0 && i > 0 && i == n_levels - 1)) {
            dw_err(errstr, errstr_size, "adwin: corrupt bucket count %u at level %u", (unsigned)cnt,
                   (unsigned)i);
            goto err;
        }
        if (dw_rd_expect(rd, cnt, 2 * sizeof(double), "buckets") != 0) {
            dw_err(errstr, errstr_size, "adwin: level %u: %s", (unsigned)i, rd->msg);
            goto err;
        }
        ad->count[i] = 0;
        for (uint32_t k = 0; k < cnt; k++) {
            double t = dw_rd_f64(rd);
            double v = dw_rd_f64(rd);
            if (rd->err) {
                dw_err(errstr, errstr_size, "adwin: truncated record");
                goto err;
            }
            /* a summary's squared deviations are a sum of non-negative terms, none for one
             * element (level 0) */
            if (!isfinite(t) || !isfinite(v) || v < 0.0 || (i == 0 && v != 0.0)) {
                dw_err(errstr, errstr_size, "adwin: corrupt bucket at level %u", (unsigned)i);
                goto err;
            }
            level_push(ad, i, t, v);
        }
        width += (double)cnt * pow2(i);
    }
    if (width != ad->width) {
        dw_err(errstr, errstr_size, "adwin: buckets hold %.0f elements, header says %.0f", width,
               ad->width);
        goto err;
    }
    return 0;

err:
    dw_cd_adwin_free(ad);
    return -1;
}

/* ================================================================ DDM */

struct dw_cd_ddm_params dw_cd_ddm_defaults(void)
{
    struct dw_cd_ddm_params p;
    p.warm_start = 30;
    p.warning_threshold = 2.0;
    p.drift_threshold = 3.0;
    return p;
}

static int ddm_params_check(const struct dw_cd_ddm_params *p, char *errstr, size_t errstr_size)
{
    if (!isfinite(p->warning_threshold) || !isfinite(p->drift_threshold)) {
        return dw_err(errstr, errstr_size, "ddm: thresholds must be finite");
    }
    return 0;
}

static void ddm_reset(struct dw_cd_ddm *ddm)
{
    ddm->n = 0.0;
    ddm->mean = 0.0;
    ddm->p_min = INFINITY;
    ddm->s_min = INFINITY;
    ddm->ps_min = INFINITY;
    ddm->drift = 0;
    ddm->warning = 0;
}

int dw_cd_ddm_init(struct dw_cd_ddm *ddm, const struct dw_cd_ddm_params *p, char *errstr,
                   size_t errstr_size)
{
    memset(ddm, 0, sizeof(*ddm));
    if (ddm_params_check(p, errstr, errstr_size) < 0) {
        return -1;
    }
    ddm->p = *p;
    ddm_reset(ddm);
    return 0;
}

int dw_cd_ddm_update(struct dw_cd_ddm *ddm, double x)
{
    if (!isfinite(x)) {
        return 0;
    }
    if (ddm->drift) {
        ddm_reset(ddm);
    }
    ddm->n_seen++;
    ddm->n += 1.0;
    ddm->mean += (1.0 / ddm->n) * (x - ddm->mean);

    double p_i = ddm->mean;
    double s_i = sqrt(p_i * (1 - p_i) / ddm->n);
    if (ddm->n > (double)ddm->p.warm_start) {
        if (p_i + s_i <= ddm->ps_min) {
            ddm->p_min = p_i;
            ddm->s_min = s_i;
            ddm->ps_min = ddm->p_min + ddm->s_min;
        }
        ddm->warning = p_i + s_i > ddm->p_min + ddm->p.warning_threshold * ddm->s_min;
        if (p_i + s_i > ddm->p_min + ddm->p.drift_threshold * ddm->s_min) {
            ddm->drift = 1;
            ddm->warning = 0;
        }
    }
    if (ddm->drift) {
        ddm->n_detections++;
    }
    return ddm->drift;
}

int dw_cd_ddm_warning(const struct dw_cd_ddm *ddm)
{
    return ddm->warning;
}

double dw_cd_ddm_error_rate(const struct dw_cd_ddm *ddm)
{
    return ddm->mean;
}

void dw_cd_ddm_serialize(const struct dw_cd_ddm *ddm, struct dw_buf *out)
{
    dw_buf_put_u8(out, (uint8_t)DW_CD_DDM);
    dw_buf_put_u8(out, CD_VERSION);
    dw_buf_put_u32(out, ddm->p.warm_start);
    dw_buf_put_f64(out, ddm->p.warning_threshold);
    dw_buf_put_f64(out, ddm->p.drift_threshold);
    dw_buf_put_f64(out, ddm->n);
    dw_buf_put_f64(out, ddm->mean);
    dw_buf_put_f64(out, ddm->p_min);
    dw_buf_put_f64(out, ddm->s_min);
    dw_buf_put_f64(out, ddm->ps_min);
    dw_buf_put_u8(out, (uint8_t)((ddm->drift ? 1 : 0) | (ddm->warning ? 2 : 0)));
    dw_buf_put_u64(out, ddm->n_seen);
    dw_buf_put_u64(out, ddm->n_detections);
}

int dw_cd_ddm_deserialize(struct dw_cd_ddm *ddm, struct dw_reader *rd, char *errstr,
                          size_t errstr_size)
{
    struct dw_cd_ddm tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (rd_header(rd, DW_CD_DDM, "ddm", errstr, errstr_size) < 0) {
        return -1;
    }
    tmp.p.warm_start = dw_rd_u32(rd);
    tmp.p.warning_threshold = dw_rd_f64(rd);
    tmp.p.drift_threshold = dw_rd_f64(rd);
    tmp.n = dw_rd_f64(rd);
    tmp.mean = dw_rd_f64(rd);
    tmp.p_min = dw_rd_f64(rd);
    tmp.s_min = dw_rd_f64(rd);
    tmp.ps_min = dw_rd_f64(rd);
    uint8_t flags = dw_rd_u8(rd);
    tmp.n_seen = dw_rd_u64(rd);
    tmp.n_detections = dw_rd_u64(rd);
    if (rd->err) {
        return dw_err(errstr, errstr_size, "ddm: truncated record");
    }
    if (ddm_params_check(&tmp.p, errstr, errstr_size) < 0) {
        return -1;
    }
    if (flags > 3 || !is_count(tmp.n) || !isfinite(tmp.mean) || isnan(tmp.p_min) ||
        isnan(tmp.s_min) || isnan(tmp.ps_min)) {
        return dw_err(errstr, errstr_size, "ddm: corrupt state");
    }
    tmp.drift = flags & 1;
    tmp.warning = (flags >> 1) & 1;
    *ddm = tmp;
    return 0;
}

/* ================================================================ tagged */

int dw_cd_kind_parse(const char *name, enum dw_cd_kind *kind)
{
    if (strcmp(name, "page_hinkley") == 0) {
        *kind = DW_CD_PAGE_HINKLEY;
    } else if (strcmp(name, "adwin") == 0) {
        *kind = DW_CD_ADWIN;
    } else if (strcmp(name, "ddm") == 0) {
        *kind = DW_CD_DDM;
    } else {
        return -1;
    }
    return 0;
}

const char *dw_cd_kind_name(enum dw_cd_kind kind)
{
    switch (kind) {
    case DW_CD_PAGE_HINKLEY:
        return "page_hinkley";
    case DW_CD_ADWIN:
        return "adwin";
    case DW_CD_DDM:
        return "ddm";
    }
    return "unknown";
}

int dw_cd_init_default(struct dw_cd *cd, enum dw_cd_kind kind, char *errstr, size_t errstr_size)
{
    memset(cd, 0, sizeof(*cd));
    cd->kind = kind;
    switch (kind) {
    case DW_CD_PAGE_HINKLEY: {
        struct dw_cd_ph_params p = dw_cd_ph_defaults();
        return dw_cd_ph_init(&cd->u.ph, &p, errstr, errstr_size);
    }
    case DW_CD_ADWIN: {
        struct dw_cd_adwin_params p = dw_cd_adwin_defaults();
        return dw_cd_adwin_init(&cd->u.adwin, &p, errstr, errstr_size);
    }
    case DW_CD_DDM: {
        struct dw_cd_ddm_params p = dw_cd_ddm_defaults();
        return dw_cd_ddm_init(&cd->u.ddm, &p, errstr, errstr_size);
    }
    }
    return dw_err(errstr, errstr_size, "change detector: unknown kind %d", (int)kind);
}

void dw_cd_free(struct dw_cd *cd)
{
    if (cd->kind == DW_CD_ADWIN) {
        dw_cd_adwin_free(&cd->u.adwin);
    }
}

int dw_cd_update(struct dw_cd *cd, double x)
{
    switch (cd->kind) {
    case DW_CD_PAGE_HINKLEY:
        return dw_cd_ph_update(&cd->u.ph, x);
    case DW_CD_ADWIN:
        return dw_cd_adwin_update(&cd->u.adwin, x);
    case DW_CD_DDM:
        return dw_cd_ddm_update(&cd->u.ddm, x);
    }
    return 0;
}

int dw_cd_drift(const struct dw_cd *cd)
{
    switch (cd->kind) {
    case DW_CD_PAGE_HINKLEY:
        return cd->u.ph.drift;
    case DW_CD_ADWIN:
        return cd->u.adwin.drift;
    case DW_CD_DDM:
        return cd->u.ddm.drift;
    }
    return 0;
}

int dw_cd_warning(const struct dw_cd *cd)
{
    return cd->kind == DW_CD_DDM ? cd->u.ddm.warning : 0;
}

double dw_cd_estimation(const struct dw_cd *cd)
{
    switch (cd->kind) {
    case DW_CD_PAGE_HINKLEY:
        return dw_cd_ph_mean(&cd->u.ph);
    case DW_CD_ADWIN:
        return dw_cd_adwin_estimation(&cd->u.adwin);
    case DW_CD_DDM:
        return dw_cd_ddm_error_rate(&cd->u.ddm);
    }
    return 0.0;
}

uint64_t dw_cd_detections(const struct dw_cd *cd)
{
    switch (cd->kind) {
    case DW_CD_PAGE_HINKLEY:
        return cd->u.ph.n_detections;
    case DW_CD_ADWIN:
        return cd->u.adwin.n_detections;
    case DW_CD_DDM:
        return cd->u.ddm.n_detections;
    }
    return 0;
}

void dw_cd_serialize(const struct dw_cd *cd, struct dw_buf *out)
{
    switch (cd->kind) {
    case DW_CD_PAGE_HINKLEY:
        dw_cd_ph_serialize(&cd->u.ph, out);
        break;
    case DW_CD_ADWIN:
        dw_cd_adwin_serialize(&cd->u.adwin, out);
        break;
    case DW_CD_DDM:
        dw_cd_ddm_serialize(&cd->u.ddm, out);
        break;
    }
}

int dw_cd_deserialize(struct dw_cd *cd, struct dw_reader *rd, char *errstr, size_t errstr_size)
{
    memset(cd, 0, sizeof(*cd));
    if (rd->err || rd->pos >= rd->len) {
        return dw_err(errstr, errstr_size, "change detector: truncated record");
    }
    /* each record starts with its kind byte: peek it, the detector reader checks it again */
    uint8_t kind = rd->p[rd->pos];
    switch (kind) {
    case DW_CD_PAGE_HINKLEY:
        cd->kind = DW_CD_PAGE_HINKLEY;
        return dw_cd_ph_deserialize(&cd->u.ph, rd, errstr, errstr_size);
    case DW_CD_ADWIN:
        cd->kind = DW_CD_ADWIN;
        return dw_cd_adwin_deserialize(&cd->u.adwin, rd, errstr, errstr_size);
    case DW_CD_DDM:
        cd->kind = DW_CD_DDM;
        return dw_cd_ddm_deserialize(&cd->u.ddm, rd, errstr, errstr_size);
    default:
        break;
    }
    return dw_err(errstr, errstr_size, "change detector: unknown kind %u", (unsigned)kind);
}
