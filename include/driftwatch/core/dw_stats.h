/*
 * dw_stats.h - statistical tests and distances for drift detection, as pure functions over
 * plain arrays (no I/O, no allocation visible to the caller).
 *
 * Every function reproduces the definition of a scipy function (scipy 1.10, Debian 12), so
 * that a value reported by driftwatch is the value a user gets in a notebook; each comment
 * names the scipy call. Special functions are accurate to about 1e-12 relative. The
 * definitions are written out in docs/statistics.md ("Tests and distances").
 *
 * Samples for KS and Wasserstein are weighted sorted views: values ascending, each with an
 * integer weight (an exact sample has weight 1 everywhere; a KLL sketch's
 * dw_kll_sorted_view() gives such a view). A view stands for the sample in which each value
 * is repeated `weight` times, and the results are those of scipy on that sample.
 */
#ifndef DW_STATS_H
#define DW_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ks_2samp(method='auto') tries the exact p-value while max(n1, n2) <= this (values). */
#define DW_STATS_KS_MAX_EXACT_N 10000

/* Proportion given to an empty bin by KL (and PSI): a proportion, no unit. */
#define DW_STATS_EMPTY_BIN_PROPORTION 1e-4

/* ------------------------------------------------------------------ special functions */

/**
 * @brief Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a)
 *        (scipy.special.gammaincc).
 * @returns Q in [0, 1]; NaN when a <= 0, x < 0 or an argument is NaN.
 */
double dw_stats_gamma_q(double a, double x);

/**
 * @brief Chi-squared survival function P(X > x) with `dof` degrees of freedom
 *        (scipy.stats.chi2.sf(x, dof) = Q(dof/2, x/2)).
 * @returns the probability; 1 for x <= 0; NaN when dof <= 0 or an argument is NaN.
 */
double dw_stats_chi2_sf(double x, double dof);

/**
 * @brief Survival function of Kolmogorov's limiting distribution
 *        (scipy.stats.kstwobign.sf(x) = scipy.special.kolmogorov(x)):
 *        2 Σ_{k>=1} (-1)^(k-1) exp(-2 k² x²).
 * @returns the probability (1 for x <= 0), NaN for NaN.
 */
double dw_stats_kolmogorov_sf(double x);

/**
 * @brief One-sided one-sample Smirnov survival function P(D+_n >= d)
 *        (scipy.special.smirnov(n, d)), including scipy's approximation
 *        exp(-(6nd+1)²/(18n)) for n > 1,000,000.
 * @returns the probability; NaN when n == 0 or d is outside [0, 1].
 */
double dw_stats_smirnov_sf(uint64_t n, double d);

/**
 * @brief Two-sided one-sample Kolmogorov-Smirnov survival function P(D_n >= d)
 *        (scipy.stats.kstwo.sf(d, n)), with scipy's choice of method (Simard and L'Ecuyer
 *        2011: Ruben-Gambino, Durbin matrix, Pomeranz, Pelz-Good, 2 x Smirnov).
 * @returns the probability; NaN when n == 0 or d is NaN.
 */
double dw_stats_kstwo_sf(double d, uint64_t n);

/**
 * @brief Standard normal survival function P(Z > x) (scipy.stats.norm.sf(x)), as
 *        erfc(x / √2) / 2.
 * @returns the probability in [0, 1]; NaN for NaN.
 */
double dw_stats_norm_sf(double x);

/**
 * @brief Standard normal quantile, the inverse of the cdf (scipy.stats.norm.ppf(p) =
 *        scipy.special.ndtri(p)), by Wichura's Algorithm AS 241 (PPND16, Applied Statistics
 *        37:477-484, 1988), about 1e-16 relative.
 * @returns z with P(Z <= z) = p; -inf for p == 0, +inf for p == 1, NaN outside [0, 1] or NaN.
 */
double dw_stats_norm_ppf(double p);

/* ------------------------------------------------------------------ numeric samples */

/** Result of a two-sample KS test. */
struct dw_stats_ks {
    double statistic; /* D = sup |F1 - F2|, the value scipy reports (h / lcm when exact) */
    double p_value;   /* two-sided */
    bool exact;       /* true when the exact distribution gave the p-value */
};

/**
 * @brief Two-sample Kolmogorov-Smirnov test on two weighted sorted views, as
 *        scipy.stats.ks_2samp(x, y, alternative='two-sided', method='auto'): D is taken
 *        after all values equal to a point (ties as scipy); the p-value is exact when
 *        max(n1, n2) <= DW_STATS_KS_MAX_EXACT_N (falling back like scipy), otherwise
 *        kstwo.sf(D, round(n1 n2 / (n1 + n2))).
 * @param x1,w1,len1 first sample: len1 ascending finite values and their weights (w1 NULL
 *                   means every weight is 1; weights of 0 are allowed, not all of them).
 * @param x2,w2,len2 second sample, likewise.
 * @returns 0 and *out, or -1 and errstr when a sample is empty, unsorted or not finite.
 */
int dw_stats_ks_2samp(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                      const uint64_t *w2, size_t len2, struct dw_stats_ks *out, char *errstr,
                      size_t errstr_size);

/**
 * @brief Wasserstein-1 distance between two weighted sorted views
 *        (scipy.stats.wasserstein_distance(x1, x2, w1, w2)): ∫ |F1(t) - F2(t)| dt.
 * @returns 0 and *out, or -1 and errstr when a sample is empty, unsorted or not finite.
 */
int dw_stats_wasserstein(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                         const uint64_t *w2, size_t len2, double *out, char *errstr,
                         size_t errstr_size);

/**
 * @brief dw_stats_ks_2samp() and dw_stats_wasserstein() of the same two views in one walk over
 *        them (bit for bit the same results; what a window's evaluation needs per feature).
 * @returns 0 and both results, or -1 and errstr as those two.
 */
int dw_stats_ks_wasserstein(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                            const uint64_t *w2, size_t len2, struct dw_stats_ks *ks, double *wd,
                            char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------ distributions over bins */

/*
 * The four distances below take two arrays of the same length n, each of counts or of
 * proportions (non-negative); each array is first divided by its own sum. They return NaN
 * when n == 0, a value is negative or not finite, or an array sums to 0.
 */

/**
 * @brief Kullback-Leibler divergence of `cur` from `ref`, natural log: each empty bin's
 *        proportion is replaced by DW_STATS_EMPTY_BIN_PROPORTION on either side (no
 *        renormalisation), then KL = Σ c ln(c / r) over all bins (the same rule as PSI).
 * @returns KL (>= 0 up to the replacement), or NaN.
 */
double dw_stats_kl(const double *cur, const double *ref, size_t n);

/**
 * @brief Jensen-Shannon distance, base 2 (scipy.spatial.distance.jensenshannon(p, q,
 *        base=2)): sqrt((KL(p||m) + KL(q||m)) / 2 / ln 2), m = (p + q) / 2, plain proportions.
 * @returns the distance in [0, 1], or NaN.
 */
double dw_stats_js(const double *p, const double *q, size_t n);

/**
 * @brief Hellinger distance H = sqrt(1 - Σ sqrt(p q)), computed in the equal and
 *        numerically stable form (1/√2) ||√p - √q||₂.
 * @returns H in [0, 1], or NaN.
 */
double dw_stats_hellinger(const double *p, const double *q, size_t n);

/**
 * @brief Total variation distance ½ Σ |p - q| on plain proportions.
 * @returns the distance in [0, 1], or NaN.
 */
double dw_stats_tvd(const double *p, const double *q, size_t n);

/* ------------------------------------------------------------------ categorical tests */

/** Result of a test of homogeneity on a 2 x K table. */
struct dw_stats_chi2 {
    double statistic;
    double p_value;
    int dof;        /* (2 - 1)(K' - 1), K' = columns with a non-zero total */
    size_t columns; /* K' */
};

/**
 * @brief Chi-squared test of homogeneity on the 2 x K table whose rows are `a` and `b`
 *        (category counts of the two samples), as scipy.stats.chi2_contingency(table,
 *        correction=yates) after dropping the columns whose total is 0 (scipy refuses
 *        them). Yates' correction, when asked, applies only when dof == 1 (as scipy).
 *        With K' == 1: statistic 0, dof 0, p-value 1 (scipy's degenerate case).
 * @returns 0 and *out, or -1 and errstr when a row sums to 0 or k == 0.
 */
int dw_stats_chi2_test(const uint64_t *a, const uint64_t *b, size_t k, bool yates,
                       struct dw_stats_chi2 *out, char *errstr, size_t errstr_size);

/**
 * @brief G-test (log-likelihood ratio) on the same table: chi2_contingency(table,
 *        correction=yates, lambda_="log-likelihood"), G = 2 Σ O ln(O / E) (0 ln 0 = 0).
 * @returns 0 and *out, or -1 and errstr as dw_stats_chi2_test().
 */
int dw_stats_g_test(const uint64_t *a, const uint64_t *b, size_t k, bool yates,
                    struct dw_stats_chi2 *out, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------ multiple testing */

/**
 * @brief Benjamini-Hochberg adjusted p-values (scipy.stats.false_discovery_control(ps,
 *        method='bh')): sort, p_(i) m / i, running minimum from the largest, clip to [0, 1].
 *        adjusted may alias p. NaN p-values are not allowed (asserted).
 */
void dw_stats_bh_adjust(const double *p, size_t n, double *adjusted);

/**
 * @brief Benjamini-Hochberg decision at false discovery rate alpha: reject[i] is true when
 *        the adjusted p-value of test i is <= alpha (the same as the step-up rule
 *        p_(i) <= i alpha / m for the largest such i). reject may be NULL.
 * @returns the number of rejected hypotheses.
 */
size_t dw_stats_bh_reject(const double *p, size_t n, double alpha, bool *reject);

#endif
