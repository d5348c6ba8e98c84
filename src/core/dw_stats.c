/*
 * dw_stats.c - statistical tests and distances (KS, Wasserstein, KL, Jensen-Shannon,
 * Hellinger, total variation, chi-squared and G tests, Benjamini-Hochberg).
 *
 * Why it looks like this: users check driftwatch against scipy in a notebook, digit for
 * digit. So every function follows the definition AND the algorithm choices of scipy 1.10
 * (Debian 12), written anew in C from the published methods:
 *
 * - Incomplete gamma (chi-squared p-values): the power series for P(a, x) when x < a + 1,
 *   else Legendre's continued fraction for Q(a, x) evaluated by the modified Lentz method
 *   (Numerical Recipes 6.2; Cephes igam.c uses the same split). The prefactor
 *   x^a e^-x / Γ(a) is taken as exp of its logarithm, so p-values keep full relative
 *   precision down to the underflow limit (~1e-308).
 *
 * - Two-sample KS, p-value as ks_2samp(method='auto'): when max(n1, n2) <= 10000 the exact
 *   null distribution, counted on lattice paths (Hodges 1958): for n1 == n2 the closed
 *   alternating sum over reflections (Horner form), otherwise the "inside" recursion of
 *   Viehmann (arXiv 2102.08037) that carries 1 - p directly, one column of the lattice at a
 *   time. The statistic is then rounded to the lattice, h / lcm(n1, n2), as scipy reports
 *   it. If that recursion ends outside [0, 1] scipy falls back to the asymptotic form, and so
 *   do we. Above 10000 values: kstwo.sf(D, round(n1 n2 / (n1 + n2))), the finite-n one-sample
 *   distribution, with Simard and L'Ecuyer's (2011) choice of method by n and n D²: Durbin's
 *   matrix (Marsaglia-Tsang-Wang), Pomeranz's recursion, Pelz-Good's expansion, or twice the
 *   one-sided Smirnov tail (Birnbaum-Tingey sum, here in log space in long double).
 *
 * - Normal distribution: the survival function through libm's erfc (relative precision in the
 *   far tail, where 1 - cdf cancels); the quantile by Wichura's AS 241 (PPND16, about 1e-16
 *   relative), the algorithm scipy.special.ndtri's results match most closely.
 *
 * - Weighted sorted views: a value of weight w is w copies of it, so every empirical CDF is
 *   a running sum of integer weights over the merged values; ties are handled by moving past
 *   every item equal to the current value before evaluating (scipy's searchsorted 'right').
 *
 * Nothing here allocates except the exact KS recursion's column and the Durbin matrices
 * (both bounded: <= 10001 doubles, <= 3 x 117² doubles) and Benjamini-Hochberg's order.
 */
#include "driftwatch/core/dw_stats.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Iteration caps of the gamma series / continued fraction (terms); never reached for the
 * arguments a <= 1e6 this module meets, they only bound a runaway on bad input. */
#define GAMMA_MAX_ITER 1000000
/* Smallest representable magnitude guard of Lentz's method (no unit). */
#define LENTZ_TINY 1e-300
/* Kolmogorov limiting distribution: below this x use the theta-function series (scipy's
 * KOLMOG_CUTOVER, no unit). */
#define KOLMOG_CUTOVER 0.82
/* Smirnov one-sided: above this n, scipy's closed-form approximation (sample size). */
#define SMIRNOV_MAX_COMPUTE_N 1000000
/* log of the smallest normal double (Cephes MINLOG). */
#define CEPHES_MINLOG (-7.08396418532264106224e2)
/* Durbin / Pomeranz rescaling step: 2^128 (a power of two, exact). */
#define SCALE_EXP 128
/* AS 241 break points: |p - 1/2| of the central region, and r = sqrt(-ln min(p, 1 - p)) of
 * the intermediate one (no unit), with the constants the central and intermediate
 * approximations are centred on. */
#define NORM_PPF_SPLIT1 0.425
#define NORM_PPF_SPLIT2 5.0
#define NORM_PPF_CONST1 0.180625
#define NORM_PPF_CONST2 1.6

static double clip01(double p)
{
    if (p < 0.0) {
        return 0.0;
    }
    if (p > 1.0) {
        return 1.0;
    }
    return p;
}

static double log_gamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

/* ------------------------------------------------------------------ incomplete gamma */

/* P(a, x) by its power series (x < a + 1). */
static double gamma_p_series(double a, double x)
{
    double ap = a;
    double term = 1.0;
    double sum = 1.0;
    for (int i = 0; i < GAMMA_MAX_ITER; i++) {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if (term < sum * DBL_EPSILON * 0.5) {
            break;
        }
    }
    return exp(a * log(x) - x - log_gamma(a + 1.0)) * sum;
}

/* Q(a, x) by Legendre's continued fraction, modified Lentz (x >= a + 1). */
static double gamma_q_cf(double a, double x)
{
    double b = x + 1.0 - a;
    double c = 1.0 / LENTZ_TINY;
    double d = 1.0 / b;
    double h = d;
    for (int i = 1; i < GAMMA_MAX_ITER; i++) {
        double an = -(double)i * ((double)i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < LENTZ_TINY) {
            d = LENTZ_TINY;
        }
        c = b + an / c;
        if (fabs(c) < LENTZ_TINY) {
            c = LENTZ_TINY;
        }
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < DBL_EPSILON * 0.5) {
            break;
        }
    }
    return exp(a * log(x) - x - log_gamma(a)) * h;
}

double dw_stats_gamma_q(double a, double x)
{
    if (isnan(a) || isnan(x) || a <= 0.0 || x < 0.0) {
        return NAN;
    }
    if (x == 0.0) {
        return 1.0;
    }
    if (isinf(x)) {
        return 0.0;
    }
    if (x < a + 1.0) {
        return clip01(1.0 - gamma_p_series(a, x));
    }
    return clip01(gamma_q_cf(a, x));
}

double dw_stats_chi2_sf(double x, double dof)
{
    if (isnan(x) || isnan(dof) || dof <= 0.0) {
        return NAN;
    }
    if (x <= 0.0) {
        return 1.0;
    }
    return dw_stats_gamma_q(dof / 2.0, x / 2.0);
}

/* ------------------------------------------------------------------ Kolmogorov limit */

double dw_stats_kolmogorov_sf(double x)
{
    if (isnan(x)) {
        return NAN;
    }
    if (x <= 0.0) {
        return 1.0;
    }
    if (x <= KOLMOG_CUTOVER) {
        /* cdf = sqrt(2 pi) / x * sum_{k odd} exp(-k² pi² / (8 x²)) */
        double alpha = -M_PI * M_PI / (8.0 * x * x);
        double sum = 0.0;
        for (double k = 1.0;; k += 2.0) {
            double t = exp(alpha * k * k);
            sum += t;
            if (t == 0.0 || t <= sum * DBL_EPSILON) {
                break;
            }
        }
        return clip01(1.0 - sqrt(2.0 * M_PI) / x * sum);
    }
    /* sf = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k² x²) */
    double alpha = -2.0 * x * x;
    double sum = 0.0;
    double sign = 1.0;
    for (double k = 1.0;; k += 1.0) {
        double t = exp(alpha * k * k);
        sum += sign * t;
        if (t == 0.0 || t <= fabs(sum) * DBL_EPSILON) {
            break;
        }
        sign = -sign;
    }
    return clip01(2.0 * sum);
}

/* ------------------------------------------------------------------ Smirnov one-sided */

double dw_stats_smirnov_sf(uint64_t n, double d)
{
    if (n == 0 || !(d >= 0.0 && d <= 1.0)) {
        return NAN;
    }
    if (n == 1) {
        return 1.0 - d;
    }
    if (d == 0.0) {
        return 1.0;
    }
    if (d == 1.0) {
        return 0.0;
    }
    double dn = (double)n;
    double nx = dn * d;
    double nxfl = floor(nx);
    double alpha = nx - nxfl;
    if (nxfl == 0.0 || (nxfl == 1.0 && alpha == 0.0)) {
        /* d <= 1/n: cdf = d (1 + d)^(n-1) */
        double cdf = d * exp((dn - 1.0) * log1p(d));
        return clip01(1.0 - cdf);
    }
    if (-2.0 * dn * d * d < CEPHES_MINLOG) {
        return 0.0;
    }
    if (nxfl >= dn - 1.0) {
        return clip01(exp(dn * log1p(-d)));
    }
    if (n > SMIRNOV_MAX_COMPUTE_N) {
        double logp = -pow(6.0 * dn * d + 1.0, 2) / 18.0 / dn;
        if (logp < -M_LN2) {
            return exp(logp);
        }
        return clip01(1.0 - (-expm1(logp)));
    }
    /* Birnbaum-Tingey: sf = d sum_{v=0}^{last} C(n,v) (d + v/n)^(v-1) (1 - d - v/n)^(n-v),
     * last = floor(n (1 - d)), excluding the zero term when n (1 - d) is an integer. */
    uint64_t last = n - (uint64_t)nxfl - (alpha == 0.0 ? 0 : 1);
    if (alpha == 0.0) {
        last -= 1;
    }
    uint64_t n_terms = last + 1;
    long double ld = d;
    long double ln = (long double)n;
    long double logc = 0.0L; /* log C(n, v) */
    long double sum = 0.0L;
    for (uint64_t v = 0; v < n_terms; v++) {
        long double lv = (long double)v;
        long double up = ld + lv / ln;
        long double down = (ln - lv) / ln - ld;
        long double term = 0.0L;
        if (down > 0.0L) {
            long double lt = logc + (lv - 1.0L) * logl(up) + (ln - lv) * logl(down);
            term = expl(lt);
        }
        sum += term;
        if (term != 0.0L) {
            if (4.0L * (long double)(n_terms - v) * term < (long double)DBL_EPSILON * sum &&
                v != n_terms - 1) {
                break;
            }
        } else if (v > n / 2) {
            break;
        }
        logc += logl((ln - lv) / (lv + 1.0L));
    }
    return clip01((double)(ld * sum));
}

/* ------------------------------------------------------------------ kstwo (one-sample) */

/* log(n! / n^n) by Stirling's series with n log n removed up front. */
static double log_nfact_div_npown(double n)
{
    static const double stirling[] = {-2.955065359477124183e-2,  6.4102564102564102564e-3,
                                      -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                                      -5.952380952380952381e-4,  7.9365079365079365079e-4,
                                      -2.7777777777777777778e-3, 8.3333333333333333333e-2};
    double rn = 1.0 / n;
    double x = rn / n;
    double poly = 0.0;
    for (size_t i = 0; i < DW_ARRAY_SIZE(stirling); i++) {
        poly = poly * x + stirling[i];
    }
    return log(n) / 2.0 - n + log(2.0 * M_PI) / 2.0 + rn * poly;
}

/* C = A B for m x m row-major matrices. */
static void matmul(const double *a, const double *b, double *c, int m)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < m; j++) {
            c[i * m + j] = 0.0;
        }
        for (int k = 0; k < m; k++) {
            double aik = a[i * m + k];
            if (aik == 0.0) {
                continue;
            }
            for (int j = 0; j < m; j++) {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
}

/* P(D_n <= d) by Durbin's matrix, computed as Marsaglia, Tsang and Wang (2003). */
static double kolmogn_durbin_cdf(uint64_t n, double d)
{
    if (d >= 1.0) {
        return 1.0;
    }
    double nd = (double)n * d;
    if (nd <= 0.5) {
        return 0.0;
    }
    int k = (int)ceil(nd);
    double h = k - nd;
    int m = 2 * k - 1;
    size_t mm = (size_t)m * (size_t)m;
    double *hm = dw_calloc(mm, sizeof(double));
    double *pw = dw_calloc(mm, sizeof(double));
    double *tmp = dw_calloc(mm, sizeof(double));
    double *v = dw_malloc((size_t)m * sizeof(double));
    double *w = dw_malloc((size_t)m * sizeof(double));

    double fac = 1.0;
    for (int j = 1; j <= m; j++) {
        v[j - 1] = 1.0 - pow(h, j);
        w[j - 1] = fac;
        fac /= j;
        v[j - 1] *= fac;
    }
    double tt = pow(DW_MAX(2.0 * h - 1.0, 0.0), m) - 2.0 * pow(h, m);
    v[m - 1] = (1.0 + tt) * fac;
    for (int i = 1; i < m; i++) {
        for (int r = i - 1; r < m; r++) {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for (int r = 0; r < m; r++) {
        hm[r * m] = v[r];
    }
    for (int c = 0; c < m; c++) {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    for (int i = 0; i < m; i++) {
        pw[i * m + i] = 1.0;
    }
    const double big = ldexp(1.0, SCALE_EXP);
    long expnt = 0;
    long hexpnt = 0;
    for (uint64_t nn = n; nn > 0; nn /= 2) {
        if (nn % 2) {
            matmul(pw, hm, tmp, m);
            memcpy(pw, tmp, mm * sizeof(double));
            expnt += hexpnt;
        }
        matmul(hm, hm, tmp, m);
        memcpy(hm, tmp, mm * sizeof(double));
        hexpnt *= 2;
        if (fabs(hm[(k - 1) * m + (k - 1)]) > big) {
            for (size_t i = 0; i < mm; i++) {
                hm[i] /= big;
            }
            hexpnt += SCALE_EXP;
        }
    }
    long double p = pw[(k - 1) * m + (k - 1)];
    const long double small = ldexpl(1.0L, -SCALE_EXP);
    for (uint64_t i = 1; i <= n; i++) {
        p = (long double)i * p / (long double)n;
        if (fabsl(p) < small) {
            p *= ldexpl(1.0L, SCALE_EXP);
            expnt -= SCALE_EXP;
        }
    }
    if (expnt != 0) {
        p = ldexpl(p, (int)expnt);
    }
    free(w);
    free(v);
    free(tmp);
    free(pw);
    free(hm);
    return clip01((double)p);
}

/* Row i's interval of non-zero entries in Pomeranz's recursion. */
static void pomeranz_j1j2(long i, long n, long ll, long ceilf, long roundf, long *j1, long *j2)
{
    long a;
    long b;
    if (i == 0) {
        a = -ll - ceilf - 1;
        b = ll + ceilf - 1;
    } else {
        long div = (i + 1) / 2;
        long mod = (i + 1) % 2;
        if (mod == 0) {
            if (div == n + 1) {
                a = n - ll - ceilf - 1;
                b = n + ll + ceilf - 1;
            } else {
                a = div - 1 - ll - roundf - 1;
                b = div + ll - 1 + ceilf - 1;
            }
        } else {
            a = div - 1 - ll - 1;
            b = div + ll + roundf - 1;
        }
    }
    *j1 = DW_MAX(a + 2, 0);
    *j2 = DW_MIN(b, n);
}

/* P(D_n <= d) by Pomeranz's recursion (1974), n small. */
static double kolmogn_pomeranz_cdf(uint64_t nu, double x)
{
    long n = (long)nu;
    double t = (double)n * x;
    long ll = (long)floor(t);
    double f = t - (double)ll;
    double g = DW_MIN(f, 1.0 - f);
    long ceilf = f > 0 ? 1 : 0;
    long roundf = f > 0.5 ? 1 : 0;
    long npwrs = 2 * (ll + 1);
    double *gpower = dw_malloc((size_t)npwrs * sizeof(double));
    double *twogpower = dw_malloc((size_t)npwrs * sizeof(double));
    double *onem2gpower = dw_malloc((size_t)npwrs * sizeof(double));
    double *va = dw_calloc((size_t)npwrs, sizeof(double));
    double *vb = dw_calloc((size_t)npwrs, sizeof(double));
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
    double g_n = g / n;
    double g2_n = 2 * g / n;
    double om2g_n = (1 - 2 * g) / n;
    for (long m = 1; m < npwrs; m++) {
        gpower[m] = gpower[m - 1] * g_n / m;
        twogpower[m] = twogpower[m - 1] * g2_n / m;
        onem2gpower[m] = onem2gpower[m - 1] * om2g_n / m;
    }
    const double small = ldexp(1.0, -SCALE_EXP);
    const double big = ldexp(1.0, SCALE_EXP);
    double *v0 = va;
    double *v1 = vb;
    v1[0] = 1.0;
    long v0s = 0;
    long v1s = 0;
    long expnt = 0;
    long j1;
    long j2;
    pomeranz_j1j2(0, n, ll, ceilf, roundf, &j1, &j2);
    for (long i = 1; i < 2 * n + 2; i++) {
        long k1 = j1;
        double *sw = v0;
        v0 = v1;
        v1 = sw;
        long sws = v0s;
        v0s = v1s;
        v1s = sws;
        memset(v1, 0, (size_t)npwrs * sizeof(double));
        pomeranz_j1j2(i, n, ll, ceilf, roundf, &j1, &j2);
        const double *pwrs;
        if (i == 1 || i == 2 * n + 1) {
            pwrs = gpower;
        } else {
            pwrs = (i % 2) ? twogpower : onem2gpower;
        }
        long ln2 = j2 - k1 + 1;
        if (ln2 > 0) {
            long a0 = k1 - v0s;
            dw_assert(a0 >= 0 && a0 <= npwrs && ln2 <= npwrs);
            long la = DW_MIN(ln2, npwrs - a0); /* numpy clips the slice */
            long conv_start = j1 - k1;
            long conv_len = j2 - j1 + 1;
            double vmax = 0.0;
            for (long idx = 0; idx < conv_len; idx++) {
                long kk = conv_start + idx;
                long lo = DW_MAX(0, kk - ln2 + 1);
                long hi = DW_MIN(la - 1, kk);
                double s = 0.0;
                for (long q = lo; q <= hi; q++) {
                    s += v0[a0 + q] * pwrs[kk - q];
                }
                dw_assert(idx < npwrs);
                v1[idx] = s;
                vmax = DW_MAX(vmax, s);
            }
            if (vmax > 0.0 && vmax < small) {
                for (long q = 0; q < npwrs; q++) {
                    v1[q] *= big;
                }
                expnt -= SCALE_EXP;
            }
            v1s = v0s + j1 - k1;
        }
    }
    dw_assert(n - v1s >= 0 && n - v1s < npwrs);
    double ans = v1[n - v1s];
    for (long m = 1; m <= n; m++) {
        if (fabs(ans) > big) {
            ans *= small;
            expnt += SCALE_EXP;
        }
        ans *= (double)m;
    }
    if (expnt != 0) {
        ans = ldexp(ans, (int)expnt);
    }
    free(vb);
    free(va);
    free(onem2gpower);
    free(twogpower);
    free(gpower);
    return clip01(ans);
}

/* P(D_n <= x) by Pelz and Good's (1976) expansion, n large and x small. */
static double kolmogn_pelzgood_cdf(uint64_t nu, double x)
{
    double n = (double)nu;
    if (x <= 0.0) {
        return 0.0;
    }
    if (x >= 1.0) {
        return 1.0;
    }
    const double pi2 = M_PI * M_PI;
    const double pi4 = pi2 * pi2;
    const double pi6 = pi4 * pi2;
    const double sqrt2pi = sqrt(2.0 * M_PI);
    double z = sqrt(n) * x;
    double z2 = z * z;
    double z3 = z2 * z;
    double z4 = z2 * z2;
    double z6 = z4 * z2;
    double qlog = -pi2 / 8.0 / z2;
    if (qlog < -708.0) {
        return 0.0;
    }
    double q = exp(qlog);
    double k1a = -z2;
    double k1b = pi2 / 4.0;
    double k2a = 6.0 * z6 + 2.0 * z4;
    double k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    double k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    double k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    double k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    double k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    double k3a = -30.0 * z6 - 90.0 * pow(z, 8);
    double kk[4] = {0.0, 0.0, 0.0, 0.0};
    long maxk = (long)ceil(16.0 * z / M_PI);
    for (long k = maxk; k > 0; k--) {
        double m = 2.0 * k - 1.0;
        double m2 = m * m;
        double m4 = m2 * m2;
        double m6 = m4 * m2;
        double qp = pow(q, 8.0 * k);
        double coeffs[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                            k3a + k3b * m2 + k3c * m4 + k3d * m6};
        for (int i = 0; i < 4; i++) {
            kk[i] = kk[i] * qp + coeffs[i];
        }
    }
    double div[4] = {z, 6.0 * z4, 72.0 * pow(z, 7), 6480.0 * pow(z, 10)};
    for (int i = 0; i < 4; i++) {
        kk[i] = kk[i] * q * sqrt2pi / div[i];
    }
    double q2 = exp(-pi2 / 2.0 / z2);
    double k2extra = 0.0;
    double k3extra = 0.0;
    double sqrt3z = sqrt(3.0) * z;
    for (long k = maxk; k > 0; k--) {
        double ks2 = (double)k * (double)k;
        double qp = pow(q2, ks2);
        double kpi = M_PI * (double)k;
        k2extra += ks2 * qp;
        k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * ks2 * qp;
    }
    kk[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    double sum = 0.0;
    for (int i = 0; i < 4; i++) {
        sum += kk[i] / pow(n, i / 2.0);
    }
    return sum;
}

double dw_stats_kstwo_sf(double x, uint64_t n)
{
    if (isnan(x) || n == 0) {
        return NAN;
    }
    if (x >= 1.0) {
        return 0.0;
    }
    if (x <= 0.0) {
        return 1.0;
    }
    double dn = (double)n;
    double t = dn * x;
    if (t <= 1.0) {
        /* Ruben-Gambino: 1/2n <= x <= 1/n, cdf = n!/n^n (2t - 1)^n */
        if (t <= 0.5) {
            return 1.0;
        }
        double prob;
        if (n <= 140) {
            prob = 1.0;
            for (uint64_t i = 1; i <= n; i++) {
                prob *= (double)i * (1.0 / dn) * (2.0 * t - 1.0);
            }
        } else {
            prob = exp(log_nfact_div_npown(dn) + dn * log(2.0 * t - 1.0));
        }
        return clip01(1.0 - prob);
    }
    if (t >= dn - 1.0) {
        return clip01(2.0 * pow(1.0 - x, dn));
    }
    if (x >= 0.5) {
        return clip01(2.0 * dw_stats_smirnov_sf(n, x));
    }
    double nxsq = t * x;
    if (n <= 140) {
        if (nxsq <= 0.754693) {
            return clip01(1.0 - kolmogn_durbin_cdf(n, x));
        }
        if (nxsq <= 4.0) {
            return clip01(1.0 - kolmogn_pomeranz_cdf(n, x));
        }
        return clip01(2.0 * dw_stats_smirnov_sf(n, x));
    }
    if (nxsq >= 370.0) {
        return 0.0;
    }
    if (nxsq >= 2.2) {
        return clip01(2.0 * dw_stats_smirnov_sf(n, x));
    }
    double cdf;
    if (n <= 100000 && dn * pow(x, 1.5) <= 1.4) {
        cdf = kolmogn_durbin_cdf(n, x);
    } else {
        cdf = kolmogn_pelzgood_cdf(n, x);
    }
    return clip01(1.0 - cdf);
}

/* ------------------------------------------------------------------ normal distribution */

double dw_stats_norm_sf(double x)
{
    /* erfc keeps the upper tail's relative precision where 1 - cdf would cancel. */
    return 0.5 * erfc(x / M_SQRT2);
}

/* Horner evaluation of c[0] + c[1] r + ... + c[7] r^7. */
static double poly7(const double c[8], double r)
{
    double v = c[7];
    for (int i = 6; i >= 0; i--) {
        v = v * r + c[i];
    }
    return v;
}

double dw_stats_norm_ppf(double p)
{
    /* Wichura (1988), Algorithm AS 241 PPND16: three rational approximations of degree 7. */
    static const double a[8] = {3.3871328727963666080e0,  1.3314166789178437745e+2,
                                1.9715909503065514427e+3, 1.3731693765509461125e+4,
                                4.5921953931549871457e+4, 6.7265770927008700853e+4,
                                3.3430575583588128105e+4, 2.5090809287301226727e+3};
    static const double b[8] = {1.0,
                                4.2313330701600911252e+1,
                                6.8718700749205790830e+2,
                                5.3941960214247511077e+3,
                                2.1213794301586595867e+4,
                                3.9307895800092710610e+4,
                                2.8729085735721942674e+4,
                                5.2264952788528545610e+3};
    static const double c[8] = {1.42343711074968357734e0,  4.63033784615654529590e0,
                                5.76949722146069140550e0,  3.64784832476320460504e0,
                                1.27045825245236838258e0,  2.41780725177450611770e-1,
                                2.27238449892691845833e-2, 7.74545014278341407640e-4};
    static const double d[8] = {1.0,
                                2.05319162663775882187e0,
                                1.67638483018380384940e0,
                                6.89767334985100004550e-1,
                                1.48103976427480074590e-1,
                                1.51986665636164571966e-2,
                                5.47593808499534494600e-4,
                                1.05075007164441684324e-9};
    static const double e[8] = {6.65790464350110377720e0,  5.46378491116411436990e0,
                                1.78482653991729133580e0,  2.96560571828504891230e-1,
                                2.65321895265761230930e-2, 1.24266094738807843860e-3,
                                2.71155556874348757815e-5, 2.01033439929228813265e-7};
    static const double f[8] = {1.0,
                                5.99832206555887937690e-1,
                                1.36929880922735805310e-1,
                                1.48753612908506148525e-2,
                                7.86869131145613259100e-4,
                                1.84631831751005468180e-5,
                                1.42151175831644588870e-7,
                                2.04426310338993978564e-15};
    if (isnan(p) || p < 0.0 || p > 1.0) {
        return NAN;
    }
    if (p == 0.0) {
        return -INFINITY;
    }
    if (p == 1.0) {
        return INFINITY;
    }
    double q = p - 0.5;
    if (fabs(q) <= NORM_PPF_SPLIT1) {
        double r = NORM_PPF_CONST1 - q * q;
        return q * poly7(a, r) / poly7(b, r);
    }
    double r = sqrt(-log(q < 0.0 ? p : 1.0 - p));
    double v;
    if (r <= NORM_PPF_SPLIT2) {
        r -= NORM_PPF_CONST2;
        v = poly7(c, r) / poly7(d, r);
    } else {
        r -= NORM_PPF_SPLIT2;
        v = poly7(e, r) / poly7(f, r);
    }
    return q < 0.0 ? -v : v;
}

/* ------------------------------------------------------------------ two-sample KS */

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Pr(D_{n,n} >= h/n) = 2 (A0 - A0 A1 + ...) in Horner form. */
static double ks_prob_outside_square(int64_t n, int64_t h)
{
    double p = 0.0;
    for (int64_t k = n / h; k >= 0; k--) {
        double p1 = 1.0;
        for (int64_t j = 0; j < h; j++) {
            p1 = (double)(n - k * h - j) * p1 / (double)(n + k * h + j + 1);
        }
        p = p1 * (1.0 - p);
    }
    return 2.0 * p;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -dw_floor_div(-a, b);
}

/* Proportion of lattice paths (0,0)->(m,n) leaving |x/m - y/n| < h/lcm: the exact
 * two-sided p-value, carried as 1 - p (Viehmann 2021) one column at a time. */
static double ks_outer_prob_inside(int64_t m, int64_t n, int64_t g, int64_t h)
{
    if (m < n) {
        int64_t t = m;
        m = n;
        n = t;
    }
    int64_t mg = m / g;
    int64_t ng = n / g;
    int64_t minj = 0;
    int64_t maxj = DW_MIN(ceil_div(h, mg), n + 1);
    int64_t curlen = maxj - minj;
    int64_t len_a = DW_MIN(2 * maxj + 2, n + 1);
    double *a = dw_malloc((size_t)len_a * sizeof(double));
    for (int64_t i = 0; i < len_a; i++) {
        a[i] = (i >= minj && i < maxj) ? 0.0 : 1.0;
    }
    double result;
    for (int64_t i = 1; i <= m; i++) {
        int64_t lastminj = minj;
        int64_t lastlen = curlen;
        minj = DW_MAX(dw_floor_div(ng * i - h, mg) + 1, 0);
        minj = DW_MIN(minj, n);
        maxj = DW_MIN(ceil_div(ng * i + h, mg), n + 1);
        if (maxj <= minj) {
            free(a);
            return 1.0;
        }
        double val = minj == 0 ? 0.0 : 1.0;
        for (int64_t jj = 0; jj < maxj - minj; jj++) {
            int64_t j = jj + minj;
            int64_t src = jj + minj - lastminj;
            dw_assert(src < len_a && jj < len_a);
            val = (a[src] * (double)i + val * (double)j) / (double)(i + j);
            a[jj] = val;
        }
        curlen = maxj - minj;
        if (lastlen > curlen) {
            int64_t end = DW_MIN(maxj - minj + (lastlen - curlen), len_a);
            for (int64_t q = maxj - minj; q < end; q++) {
                a[q] = 1.0;
            }
        }
    }
    result = a[maxj - minj - 1];
    free(a);
    return result;
}

/* Sums weights (NULL = all 1) and checks the view: ascending, finite, total > 0. */
static int check_view(const char *what, const double *x, const uint64_t *w, size_t len,
                      uint64_t *total, char *errstr, size_t errstr_size)
{
    uint64_t sum = 0;
    if (len == 0 || x == NULL) {
        return dw_err(errstr, errstr_size, "%s sample is empty", what);
    }
    for (size_t i = 0; i < len; i++) {
        if (!isfinite(x[i])) {
            return dw_err(errstr, errstr_size, "%s sample: value %zu is not finite", what, i);
        }
        if (i > 0 && x[i] < x[i - 1]) {
            return dw_err(errstr, errstr_size, "%s sample: values not ascending at %zu", what, i);
        }
        sum += w != NULL ? w[i] : 1;
    }
    if (sum == 0) {
        return dw_err(errstr, errstr_size, "%s sample has total weight 0", what);
    }
    *total = sum;
    return 0;
}

/* Both samples of a two-sample statistic, as check_view(); their totals in *n1 and *n2. */
static int check_views(const double *x1, const uint64_t *w1, size_t len1, uint64_t *n1,
                       const double *x2, const uint64_t *w2, size_t len2, uint64_t *n2,
                       char *errstr, size_t errstr_size)
{
    if (check_view("first", x1, w1, len1, n1, errstr, errstr_size) != 0 ||
        check_view("second", x2, w2, len2, n2, errstr, errstr_size) != 0) {
        return -1;
    }
    return 0;
}

/*
 * One walk over both checked views: the extremes of F1 - F2 over every distinct value (KS) and
 * the Kahan sum of |F1 - F2| times the gap to the next value (Wasserstein). The evaluation
 * needs both per feature, and the walk over ~10^5 values was most of their cost.
 */
struct two_sample {
    uint64_t n1, n2;
    double max_s, min_s; /* max and min of F1 - F2 */
    double wd;           /* ∫ |F1 - F2| */
};

/* a view's item i, or +inf once it is walked */
static inline double head_at(const double *x, size_t i, size_t len)
{
    return i < len ? x[i] : INFINITY;
}

/* what the walk gathers: kept in registers, apart from the views it reads */
struct walk_acc {
    double max_s, min_s;
    struct dw_ksum sum;
};

/* F1 - F2 at v (f1, f2: the shares of the items <= v) into the extremes, and its part of the
 * integral up to next, the next distinct value; false after the last value (next +inf) */
static inline bool walk_report(struct walk_acc *acc, double f1, double f2, double v, double next)
{
    double diff = f1 - f2;
    acc->max_s = DW_MAX(acc->max_s, diff);
    acc->min_s = DW_MIN(acc->min_s, diff);
    if (next == INFINITY) {
        return false;
    }
    dw_ksum_add(&acc->sum, fabs(diff) * (next - v));
    return true;
}

/* one view as the walk goes through it */
struct walk_side {
    const double *x;
    const uint64_t *w; /* NULL: every item weighs 1 */
    size_t len, i;     /* i: the next item */
    uint64_t c;        /* the weight of the items before it */
    double n;          /* the view's total weight */
    double head;       /* head_at(x, i, len) */
};

/* Passes the items of side s equal to v, its head. */
static inline void side_pass(struct walk_side *s, double v)
{
    do {
        s->c += s->w != NULL ? s->w[s->i] : 1;
        s->head = head_at(s->x, ++s->i, s->len);
    } while (s->head == v);
}

/* The values of side s below `other` (the other side's next item), each reported once every
 * item equal to it is passed; f_other is the other side's share, `first` says whether s is the
 * first view (F1 - F2 keeps its order). @returns false after the last value. */
static inline __attribute__((always_inline)) bool
walk_run(struct walk_side *s, double other, double f_other, bool first, struct walk_acc *acc)
{
    bool more;
    do {
        double v = s->head;
        side_pass(s, v);
        double f = (double)s->c / s->n;
        more =
            walk_report(acc, first ? f : f_other, first ? f_other : f, v, DW_MIN(s->head, other));
    } while (s->head < other);
    return more;
}

/*
 * The union of the views in ascending order, reporting at each distinct value once every item
 * equal to it is counted on both sides. It goes in runs: the items of one side below the other
 * side's next item one after the other, so that the side is chosen once a run and not once a
 * value (mispredicted, that choice was about a third of the walk's time: bench/bench_walk.c),
 * and the other side's share is divided once a run. Always inlined, so that a view without
 * weights (the evaluation's reference) is walked without looking at its weights.
 */
static inline __attribute__((always_inline)) void walk_views(const double *x1, const uint64_t *w1,
                                                             size_t len1, const double *x2,
                                                             const uint64_t *w2, size_t len2,
                                                             struct two_sample *ts)
{
    struct walk_side s1 = {x1, w1, len1, 0, 0, (double)ts->n1, x1[0]};
    struct walk_side s2 = {x2, w2, len2, 0, 0, (double)ts->n2, x2[0]};
    struct walk_acc acc = {-INFINITY, INFINITY, {0.0, 0.0}};
    bool more = true;
    while (more) {
        if (s1.head < s2.head) {
            more = walk_run(&s1, s2.head, (double)s2.c / s2.n, true, &acc);
        } else if (s2.head < s1.head) {
            more = walk_run(&s2, s1.head, (double)s1.c / s1.n, false, &acc);
        } else { /* the same value on both sides */
            double v = s1.head;
            side_pass(&s1, v);
            side_pass(&s2, v);
            more = walk_report(&acc, (double)s1.c / s1.n, (double)s2.c / s2.n, v,
                               DW_MIN(s1.head, s2.head));
        }
    }
    ts->max_s = acc.max_s;
    ts->min_s = acc.min_s;
    ts->wd = dw_ksum_get(&acc.sum);
}

static int two_sample_walk(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                           const uint64_t *w2, size_t len2, struct two_sample *ts, char *errstr,
                           size_t errstr_size)
{
    if (check_views(x1, w1, len1, &ts->n1, x2, w2, len2, &ts->n2, errstr, errstr_size) != 0) {
        return -1;
    }
    if (w2 == NULL) {
        walk_views(x1, w1, len1, x2, NULL, len2, ts);
    } else {
        walk_views(x1, w1, len1, x2, w2, len2, ts);
    }
    return 0;
}

/* The KS statistic and p-value (scipy's ks_2samp, method auto) from the walk's extremes. */
static void ks_result(const struct two_sample *ts, struct dw_stats_ks *out)
{
    uint64_t n1 = ts->n1;
    uint64_t n2 = ts->n2;
    double max_s = ts->max_s;
    double neg = DW_MIN(DW_MAX(-ts->min_s, 0.0), 1.0);
    double d = neg > max_s ? neg : max_s;

    bool exact = DW_MAX(n1, n2) <= DW_STATS_KS_MAX_EXACT_N;
    double prob = NAN;
    if (exact) {
        uint64_t g = gcd_u64(n1, n2);
        int64_t lcm = (int64_t)((n1 / g) * n2);
        int64_t h = (int64_t)nearbyint(d * (double)lcm);
        d = (double)h * 1.0 / (double)lcm;
        if (h == 0) {
            prob = 1.0;
        } else if (n1 == n2) {
            prob = ks_prob_outside_square((int64_t)n1, h);
        } else {
            prob = ks_outer_prob_inside((int64_t)n1, (int64_t)n2, (int64_t)g, h);
        }
        if (!(prob >= 0.0 && prob <= 1.0)) {
            exact = false; /* scipy: "Exact calculation unsuccessful", asymptotic instead */
        }
    }
    if (!exact) {
        double m = (double)DW_MAX(n1, n2);
        double n = (double)DW_MIN(n1, n2);
        double en = m * n / (m + n);
        prob = dw_stats_kstwo_sf(d, (uint64_t)nearbyint(en));
    }
    out->statistic = d;
    out->p_value = clip01(prob);
    out->exact = exact;
}

int dw_stats_ks_2samp(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                      const uint64_t *w2, size_t len2, struct dw_stats_ks *out, char *errstr,
                      size_t errstr_size)
{
    double wd;
    return dw_stats_ks_wasserstein(x1, w1, len1, x2, w2, len2, out, &wd, errstr, errstr_size);
}

int dw_stats_wasserstein(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                         const uint64_t *w2, size_t len2, double *out, char *errstr,
                         size_t errstr_size)
{
    struct two_sample ts;
    if (two_sample_walk(x1, w1, len1, x2, w2, len2, &ts, errstr, errstr_size) != 0) {
        return -1;
    }
    *out = ts.wd;
    return 0;
}

int dw_stats_ks_wasserstein(const double *x1, const uint64_t *w1, size_t len1, const double *x2,
                            const uint64_t *w2, size_t len2, struct dw_stats_ks *ks, double *wd,
                            char *errstr, size_t errstr_size)
{
    struct two_sample ts;
    if (two_sample_walk(x1, w1, len1, x2, w2, len2, &ts, errstr, errstr_size) != 0) {
        return -1;
    }
    ks_result(&ts, ks);
    *wd = ts.wd;
    return 0;
}

/* ------------------------------------------------------------------ distances over bins */

/* Sum of a non-negative finite array; NaN when any value is negative or not finite. */
static double bins_total(const double *x, size_t n)
{
    struct dw_ksum s = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || x[i] < 0.0) {
            return NAN;
        }
        dw_ksum_add(&s, x[i]);
    }
    return dw_ksum_get(&s);
}

static bool bins_totals(const double *p, const double *q, size_t n, double *tp, double *tq)
{
    if (n == 0 || p == NULL || q == NULL) {
        return false;
    }
    *tp = bins_total(p, n);
    *tq = bins_total(q, n);
    return isfinite(*tp) && isfinite(*tq) && *tp > 0.0 && *tq > 0.0;
}

double dw_stats_kl(const double *cur, const double *ref, size_t n)
{
    double tc;
    double tr;
    if (!bins_totals(cur, ref, n, &tc, &tr)) {
        return NAN;
    }
    struct dw_ksum s = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        double c = cur[i] / tc;
        double r = ref[i] / tr;
        if (c == 0.0) {
            c = DW_STATS_EMPTY_BIN_PROPORTION;
        }
        if (r == 0.0) {
            r = DW_STATS_EMPTY_BIN_PROPORTION;
        }
        dw_ksum_add(&s, c * log(c / r));
    }
    return dw_ksum_get(&s);
}

/* scipy.special.rel_entr for x >= 0, y > 0: x ln(x / y), 0 when x == 0. */
static double rel_entr(double x, double y)
{
    if (x == 0.0) {
        return 0.0;
    }
    return x * log(x / y);
}

double dw_stats_js(const double *p, const double *q, size_t n)
{
    double tp;
    double tq;
    if (!bins_totals(p, q, n, &tp, &tq)) {
        return NAN;
    }
    struct dw_ksum left = {0.0, 0.0};
    struct dw_ksum right = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        double pi = p[i] / tp;
        double qi = q[i] / tq;
        double m = (pi + qi) / 2.0;
        dw_ksum_add(&left, rel_entr(pi, m));
        dw_ksum_add(&right, rel_entr(qi, m));
    }
    double js = (dw_ksum_get(&left) + dw_ksum_get(&right)) / log(2.0);
    /* Rounding can leave a tiny negative for equal inputs (scipy would return NaN). */
    return sqrt(DW_MAX(js / 2.0, 0.0));
}

double dw_stats_hellinger(const double *p, const double *q, size_t n)
{
    double tp;
    double tq;
    if (!bins_totals(p, q, n, &tp, &tq)) {
        return NAN;
    }
    struct dw_ksum s = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        double d = sqrt(p[i] / tp) - sqrt(q[i] / tq);
        dw_ksum_add(&s, d * d);
    }
    return sqrt(dw_ksum_get(&s)) / sqrt(2.0);
}

double dw_stats_tvd(const double *p, const double *q, size_t n)
{
    double tp;
    double tq;
    if (!bins_totals(p, q, n, &tp, &tq)) {
        return NAN;
    }
    struct dw_ksum s = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        dw_ksum_add(&s, fabs(p[i] / tp - q[i] / tq));
    }
    return 0.5 * dw_ksum_get(&s);
}

/* ------------------------------------------------------------------ categorical tests */

static int contingency_test(const uint64_t *a, const uint64_t *b, size_t k, bool yates,
                            bool log_likelihood, struct dw_stats_chi2 *out, char *errstr,
                            size_t errstr_size)
{
    double r1 = 0.0;
    double r2 = 0.0;
    size_t kept = 0;
    if (k == 0 || a == NULL || b == NULL) {
        return dw_err(errstr, errstr_size, "contingency table has no column");
    }
    for (size_t c = 0; c < k; c++) {
        r1 += (double)a[c];
        r2 += (double)b[c];
        if (a[c] + b[c] > 0) {
            kept++;
        }
    }
    if (r1 == 0.0 || r2 == 0.0) {
        return dw_err(errstr, errstr_size, "contingency table: %s row sums to 0",
                      r1 == 0.0 ? "first" : "second");
    }
    out->columns = kept;
    out->dof = (int)kept - 1;
    if (out->dof == 0) {
        out->statistic = 0.0;
        out->p_value = 1.0;
        return 0;
    }
    double total = r1 + r2;
    struct dw_ksum s = {0.0, 0.0};
    for (int row = 0; row < 2; row++) {
        const uint64_t *obs_row = row == 0 ? a : b;
        double rsum = row == 0 ? r1 : r2;
        for (size_t c = 0; c < k; c++) {
            double csum = (double)a[c] + (double)b[c];
            if (csum == 0.0) {
                continue;
            }
            double e = rsum * csum / total;
            double o = (double)obs_row[c];
            if (yates && out->dof == 1) {
                double diff = e - o;
                double mag = DW_MIN(0.5, fabs(diff));
                o += diff > 0.0 ? mag : (diff < 0.0 ? -mag : 0.0);
            }
            if (log_likelihood) {
                dw_ksum_add(&s, 2.0 * (o == 0.0 ? 0.0 : o * log(o / e)));
            } else {
                dw_ksum_add(&s, (o - e) * (o - e) / e);
            }
        }
    }
    out->statistic = dw_ksum_get(&s);
    out->p_value = dw_stats_chi2_sf(out->statistic, (double)out->dof);
    return 0;
}

int dw_stats_chi2_test(const uint64_t *a, const uint64_t *b, size_t k, bool yates,
                       struct dw_stats_chi2 *out, char *errstr, size_t errstr_size)
{
    return contingency_test(a, b, k, yates, false, out, errstr, errstr_size);
}

int dw_stats_g_test(const uint64_t *a, const uint64_t *b, size_t k, bool yates,
                    struct dw_stats_chi2 *out, char *errstr, size_t errstr_size)
{
    return contingency_test(a, b, k, yates, true, out, errstr, errstr_size);
}

/* ------------------------------------------------------------------ Benjamini-Hochberg */

struct p_index {
    double p;
    size_t i;
};

static int cmp_p_index(const void *a, const void *b)
{
    const struct p_index *x = a;
    const struct p_index *y = b;
    if (x->p < y->p) {
        return -1;
    }
    if (x->p > y->p) {
        return 1;
    }
    return (x->i > y->i) - (x->i < y->i);
}

void dw_stats_bh_adjust(const double *p, size_t n, double *adjusted)
{
    if (n == 0) {
        return;
    }
    struct p_index *order = dw_malloc(n * sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        dw_assert(!isnan(p[i]));
        order[i].p = p[i];
        order[i].i = i;
    }
    qsort(order, n, sizeof(*order), cmp_p_index);
    double running = INFINITY;
    for (size_t r = n; r-- > 0;) {
        double adj = order[r].p * ((double)n / (double)(r + 1));
        running = DW_MIN(running, adj);
        order[r].p = running;
    }
    for (size_t r = 0; r < n; r++) {
        adjusted[order[r].i] = n == 1 ? order[r].p : clip01(order[r].p);
    }
    free(order);
}

size_t dw_stats_bh_reject(const double *p, size_t n, double alpha, bool *reject)
{
    if (n == 0) {
        return 0;
    }
    double *adj = dw_malloc(n * sizeof(double));
    size_t count = 0;
    dw_stats_bh_adjust(p, n, adj);
    for (size_t i = 0; i < n; i++) {
        bool r = adj[i] <= alpha;
        if (reject != NULL) {
            reject[i] = r;
        }
        count += r ? 1 : 0;
    }
    free(adj);
    return count;
}
