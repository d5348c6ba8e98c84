/*
 * dw_perf.c - confusion by class, scores by true class and latency of a window (dw_perf.h).
 *
 * Encoding (inside an aggregate's encoding): u32 n_pairs {str pred, str label, u64 count},
 * u64 pairs_other, u8 has_hist [u16 nonzero bins {u16 bin, u64 count}], u8 inexact,
 * 2 x {u32 n, n f64 ascending}, u32 latency sketch length + bytes (dw_kll serialisation).
 * Pairs are written in (pred, label) order and scores ascending, so equal contents encode to
 * equal bytes whatever the order labels arrived in.
 */
#include "driftwatch/core/dw_perf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define PAIR_FIRST_SLOTS 8               /* slots of a new table (a power of two) */
#define LATENCY_SEED 0x6c6174656e6379ULL /* fixed: replays make the same coin flips */

void dw_perf_init(struct dw_perf *p)
{
    memset(p, 0, sizeof(*p));
}

void dw_perf_free(struct dw_perf *p)
{
    for (size_t i = 0; i < p->pair_slots; i++) {
        free(p->pairs[i].pred);
        free(p->pairs[i].label);
    }
    free(p->pairs);
    free(p->hist);
    free(p->exact[0]);
    free(p->exact[1]);
    dw_kll_destroy(p->latency);
    memset(p, 0, sizeof(*p));
}

static uint64_t pair_hash(const char *pred, const char *label)
{
    return dw_hash64(pred, strlen(pred)) * 31 + dw_hash64(label, strlen(label));
}

/* The slot of (pred, label), or the empty slot where it belongs. */
static struct dw_class_pair *pair_slot(const struct dw_perf *p, const char *pred, const char *label)
{
    size_t mask = p->pair_slots - 1;
    for (size_t i = (size_t)pair_hash(pred, label) & mask;; i = (i + 1) & mask) {
        struct dw_class_pair *cp = &p->pairs[i];
        if (!cp->pred || (strcmp(cp->pred, pred) == 0 && strcmp(cp->label, label) == 0)) {
            return cp;
        }
    }
}

/* Doubles the pair table (most windows see a handful of pairs: it starts small). */
static void pairs_grow(struct dw_perf *p)
{
    struct dw_class_pair *old = p->pairs;
    size_t n_old = p->pair_slots;
    p->pair_slots = n_old ? 2 * n_old : PAIR_FIRST_SLOTS;
    p->pairs = dw_calloc(p->pair_slots, sizeof(*p->pairs));
    for (size_t i = 0; i < n_old; i++) {
        if (old[i].pred) {
            *pair_slot(p, old[i].pred, old[i].label) = old[i];
        }
    }
    free(old);
}

static void pair_add(struct dw_perf *p, const char *pred, const char *label, uint64_t n)
{
    if (p->pair_slots == 0) {
        pairs_grow(p);
    }
    struct dw_class_pair *cp = pair_slot(p, pred, label);
    if (!cp->pred) {
        if (p->n_pairs >= DW_PERF_MAX_PAIRS) {
            p->pairs_other += n;
            return;
        }
        if (2 * (p->n_pairs + 1) > p->pair_slots) { /* load factor at most 1/2 */
            pairs_grow(p);
            cp = pair_slot(p, pred, label);
        }
        cp->pred = dw_strdup(pred);
        cp->label = dw_strdup(label);
        p->n_pairs++;
    }
    cp->count += n;
}

static size_t score_bin(double score)
{
    double b = floor(score * DW_PERF_SCORE_BINS);
    return b < 0 ? 0 : b >= DW_PERF_SCORE_BINS ? DW_PERF_SCORE_BINS - 1 : (size_t)b;
}

static void hist_add(struct dw_perf *p, int cls, double score, uint64_t n)
{
    p->hist[(size_t)cls * DW_PERF_SCORE_BINS + score_bin(score)] += n;
}

/* From exact scores to the histogram: the exact scores go into it and are freed. */
static void go_inexact(struct dw_perf *p)
{
    if (p->inexact) {
        return;
    }
    p->inexact = 1;
    p->hist = dw_calloc(2 * DW_PERF_SCORE_BINS, sizeof(*p->hist));
    for (int cls = 0; cls < 2; cls++) {
        for (uint32_t i = 0; i < p->n_exact[cls]; i++) {
            hist_add(p, cls, p->exact[cls][i], 1);
        }
        free(p->exact[cls]);
        p->exact[cls] = NULL;
        p->n_exact[cls] = p->n_sorted[cls] = p->cap_exact[cls] = 0;
    }
}

/* Room for n more exact scores of class cls (n_exact + n <= DW_PERF_EXACT_SCORES), grown by half
 * from 16 as scores come one at a time (most windows hold few): where they go. By half, not
 * doubling: a partition keeps its windows' scores until the label horizon, and the room exceeds
 * the scores by 23 % on average where doubling's exceeds them by 44 % ((g - 1) / ln g for
 * counts spread evenly on a log scale); the copies stay a few per window. */
static double *exact_room(struct dw_perf *p, int cls, uint32_t n)
{
    uint32_t need = p->n_exact[cls] + n;
    dw_assert(!p->inexact && need <= DW_PERF_EXACT_SCORES);
    if (need > p->cap_exact[cls]) {
        uint32_t cap = p->cap_exact[cls];
        while (cap < need) {
            cap = DW_MIN(DW_PERF_EXACT_SCORES, DW_MAX(16u, cap + cap / 2));
        }
        p->cap_exact[cls] = cap;
        p->exact[cls] = dw_realloc(p->exact[cls], cap * sizeof(double));
    }
    return p->exact[cls] + p->n_exact[cls];
}

/* Counts n scores of class cls: exactly up to DW_PERF_EXACT_SCORES per class, then in bins
 * (the exact ones, and every later one). */
static void scores_add(struct dw_perf *p, int cls, const double *v, uint32_t n)
{
    uint32_t fit = p->inexact ? 0 : DW_MIN(n, DW_PERF_EXACT_SCORES - p->n_exact[cls]);
    if (fit > 0) {
        memcpy(exact_room(p, cls, fit), v, fit * sizeof(double));
        p->n_exact[cls] += fit;
    }
    if (fit < n) {
        go_inexact(p);
        for (uint32_t i = fit; i < n; i++) {
            hist_add(p, cls, v[i], 1);
        }
    }
}

/* One score: stored at once while its array has room (never past DW_PERF_EXACT_SCORES), else
 * as scores_add() rules. */
static void score_add(struct dw_perf *p, int cls, double score)
{
    if (!p->inexact && p->n_exact[cls] < p->cap_exact[cls]) {
        p->exact[cls][p->n_exact[cls]++] = score;
        return;
    }
    scores_add(p, cls, &score, 1);
}

void dw_perf_add_outcome(struct dw_perf *p, const char *pred, const char *label, int positive,
                         int has_score, double score)
{
    pair_add(p, pred, label, 1);
    if (has_score) {
        score_add(p, positive ? 1 : 0, score);
    }
}

void dw_perf_latency_update(struct dw_kll **sk, double latency_ms)
{
    if (!*sk) {
        *sk = dw_kll_new(0, 0, LATENCY_SEED);
    }
    dw_kll_update(*sk, latency_ms);
}

void dw_perf_latency_merge(struct dw_kll **sk, const struct dw_kll *src)
{
    if (!src) {
        return;
    }
    if (!*sk) {
        *sk = dw_kll_new(0, 0, LATENCY_SEED);
    }
    dw_kll_merge(*sk, src);
}

void dw_perf_add_latency(struct dw_perf *p, double latency_ms)
{
    dw_perf_latency_update(&p->latency, latency_ms);
}

void dw_perf_merge(struct dw_perf *dst, const struct dw_perf *src)
{
    for (size_t i = 0; i < src->pair_slots; i++) {
        if (src->pairs[i].pred) {
            pair_add(dst, src->pairs[i].pred, src->pairs[i].label, src->pairs[i].count);
        }
    }
    dst->pairs_other += src->pairs_other;
    if (src->inexact) {
        go_inexact(dst);
        for (size_t i = 0; i < 2 * DW_PERF_SCORE_BINS; i++) {
            dst->hist[i] += src->hist[i];
        }
    }
    for (int cls = 0; cls < 2; cls++) {
        scores_add(dst, cls, src->exact[cls], src->n_exact[cls]);
    }
    dw_perf_latency_merge(&dst->latency, src->latency);
}

static int cmp_pair(const void *a, const void *b)
{
    const struct dw_class_pair *x = *(const struct dw_class_pair *const *)a;
    const struct dw_class_pair *y = *(const struct dw_class_pair *const *)b;
    int c = strcmp(x->pred, y->pred);
    return c ? c : strcmp(x->label, y->label);
}

/*
 * Sorts the exact scores of one class: only the scores added since the last sort are sorted,
 * then merged with the ascending prefix (an encoding at every checkpoint stays cheap).
 */
static void sort_exact(struct dw_perf *p, int cls)
{
    uint32_t n = p->n_exact[cls], s = DW_MIN(p->n_sorted[cls], n);
    double *v = p->exact[cls];
    if (n - s > 0) {
        dw_sort_doubles(v + s, n - s);
    }
    if (s > 0 && n > s && v[s - 1] > v[s]) {
        double *prefix = dw_malloc((size_t)s * sizeof(double));
        memcpy(prefix, v, (size_t)s * sizeof(double));
        uint32_t i = 0, j = s, out = 0;
        while (i < s && j < n) {
            v[out++] = prefix[i] <= v[j] ? prefix[i++] : v[j++];
        }
        while (i < s) {
            v[out++] = prefix[i++];
        }
        free(prefix);
    }
    p->n_sorted[cls] = n;
}

/* The pairs in (pred, label) order; the caller frees the array. */
static const struct dw_class_pair **sorted_pairs(const struct dw_perf *p)
{
    const struct dw_class_pair **v = dw_malloc((p->n_pairs + 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < p->pair_slots; i++) {
        if (p->pairs[i].pred) {
            v[n++] = &p->pairs[i];
        }
    }
    qsort(v, n, sizeof(*v), cmp_pair);
    return v;
}

void dw_perf_encode(const struct dw_perf *p, struct dw_buf *out)
{
    const struct dw_class_pair **v = sorted_pairs(p);
    dw_buf_put_u32(out, (uint32_t)p->n_pairs);
    for (size_t i = 0; i < p->n_pairs; i++) {
        dw_buf_put_str(out, v[i]->pred, strlen(v[i]->pred));
        dw_buf_put_str(out, v[i]->label, strlen(v[i]->label));
        dw_buf_put_u64(out, v[i]->count);
    }
    free(v);
    dw_buf_put_u64(out, p->pairs_other);
    dw_buf_put_u8(out, p->inexact); /* the histogram: only once the scores are binned */
    if (p->inexact) {
        uint16_t nonzero = 0;
        for (size_t i = 0; i < 2 * DW_PERF_SCORE_BINS; i++) {
            nonzero = (uint16_t)(nonzero + (p->hist[i] != 0));
        }
        dw_buf_put_u16(out, nonzero);
        for (size_t i = 0; i < 2 * DW_PERF_SCORE_BINS; i++) {
            if (p->hist[i]) {
                dw_buf_put_u16(out, (uint16_t)i);
                dw_buf_put_u64(out, p->hist[i]);
            }
        }
    }
    dw_buf_put_u8(out, (uint8_t)p->inexact);
    for (int cls = 0; cls < 2; cls++) {
        /* Ascending: the arrival order of labels differs between replays, the multiset not. */
        /* Logically const: reorders the stored multiset, which is not observable. */
        sort_exact((struct dw_perf *)p, cls);
        uint32_t n = p->n_exact[cls];
        dw_buf_put_u32(out, n);
        if (n > 0) {
            dw_le_put_f64s(dw_buf_extend(out, (size_t)n * 8), p->exact[cls], n);
        }
    }
    dw_kll_put(out, p->latency);
}

/* Least bytes of an encoded pair (two u32 lengths, u64 count) and histogram bin (u16, u64). */
#define PAIR_MIN_BYTES 16
#define BIN_BYTES 10

int dw_perf_decode(struct dw_perf *p, struct dw_reader *rd)
{
    uint32_t n_pairs = dw_rd_count(rd, PAIR_MIN_BYTES, "class pairs");
    if (!rd->err && n_pairs > DW_PERF_MAX_PAIRS) {
        dw_rd_fail(rd, "%u class pairs, at most %d are kept", n_pairs, DW_PERF_MAX_PAIRS);
    }
    for (uint32_t i = 0; i < n_pairs && !rd->err; i++) {
        const char *pred, *label;
        size_t pl = dw_rd_name(rd, &pred, "predicted class");
        size_t ll = dw_rd_name(rd, &label, "true class");
        uint64_t count = dw_rd_u64(rd);
        if (!rd->err) {
            char *ps = dw_strndup(pred, pl), *ls = dw_strndup(label, ll);
            pair_add(p, ps, ls, count);
            free(ps);
            free(ls);
        }
    }
    p->pairs_other = dw_rd_u64(rd);
    uint8_t has_hist = dw_rd_u8(rd);
    if (has_hist > 1) {
        dw_rd_fail(rd, "score histogram flag %u", has_hist);
    }
    if (has_hist == 1 && !rd->err) {
        p->hist = dw_calloc(2 * DW_PERF_SCORE_BINS, sizeof(*p->hist));
        uint16_t nonzero = dw_rd_u16(rd);
        if (nonzero > 2 * DW_PERF_SCORE_BINS) {
            dw_rd_fail(rd, "%u score bins of %d", nonzero, 2 * DW_PERF_SCORE_BINS);
        }
        dw_rd_expect(rd, nonzero, BIN_BYTES, "score bins");
        for (uint32_t i = 0, prev = 0; i < nonzero && !rd->err; i++) {
            uint16_t bin = dw_rd_u16(rd);
            uint64_t count = dw_rd_u64(rd);
            /* ascending as written, so that no bin is given twice (the second would win) */
            if (bin >= 2 * DW_PERF_SCORE_BINS || (i > 0 && bin <= prev)) {
                dw_rd_fail(rd, "score bin %u out of range or order", bin);
            } else {
                p->hist[bin] = count;
                prev = bin;
            }
        }
    }
    uint8_t inexact = dw_rd_u8(rd);
    if (inexact > 1) {
        dw_rd_fail(rd, "inexact flag %u", inexact);
    } else if (inexact && !p->hist) {
        dw_rd_fail(rd, "inexact scores without a histogram");
    }
    if (!inexact) { /* written by older versions beside the exact scores: rebuilt from them */
        free(p->hist);
        p->hist = NULL;
    }
    p->inexact = inexact;
    for (int cls = 0; cls < 2 && !rd->err; cls++) {
        uint32_t n = dw_rd_count(rd, sizeof(double), "scores");
        if (n > DW_PERF_EXACT_SCORES || (n && p->inexact)) {
            dw_rd_fail(rd, "%u exact scores of class %d (at most %d, none once inexact)", n, cls,
                       DW_PERF_EXACT_SCORES);
            break;
        }
        if (rd->err || n == 0) {
            continue;
        }
        /* read in place at once, then checked (p is thrown away on an error) */
        double *v = exact_room(p, cls, n);
        if (dw_rd_f64s(rd, v, n) != 0) {
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (!(v[i] >= 0.0 && v[i] <= 1.0)) {
                dw_rd_fail(rd, "score %g outside [0, 1]", v[i]);
                break;
            }
        }
        p->n_exact[cls] += rd->err ? 0 : n;
    }
    if (!rd->err) {
        dw_kll_get(rd, &p->latency);
    }
    return rd->err ? -1 : 0;
}

/* Mann-Whitney U / (n_pos n_neg) over exact scores, ties counted one half. */
static double auc_exact(const struct dw_perf *p)
{
    uint32_t nn = p->n_exact[0], np = p->n_exact[1];
    double *neg = dw_malloc((nn + 1) * sizeof(double));
    double *pos = dw_malloc((np + 1) * sizeof(double));
    memcpy(neg, p->exact[0], nn * sizeof(double));
    memcpy(pos, p->exact[1], np * sizeof(double));
    dw_sort_doubles(neg, nn);
    dw_sort_doubles(pos, np);
    double u = 0.0;
    uint32_t lo = 0, hi = 0; /* neg[0..lo) < s, neg[0..hi) <= s */
    for (uint32_t i = 0; i < np; i++) {
        while (lo < nn && neg[lo] < pos[i]) {
            lo++;
        }
        if (hi < lo) {
            hi = lo;
        }
        while (hi < nn && neg[hi] <= pos[i]) {
            hi++;
        }
        u += (double)lo + 0.5 * (double)(hi - lo);
    }
    free(neg);
    free(pos);
    return u / ((double)nn * (double)np);
}

double dw_perf_roc_auc(const struct dw_perf *p, double *err_bound)
{
    if (err_bound) {
        *err_bound = 0.0;
    }
    if (!p->inexact) {
        return p->n_exact[0] && p->n_exact[1] ? auc_exact(p) : NAN;
    }
    const uint64_t *neg = p->hist, *pos = p->hist + DW_PERF_SCORE_BINS;
    double nn = 0, np = 0;
    for (size_t b = 0; b < DW_PERF_SCORE_BINS; b++) {
        nn += (double)neg[b];
        np += (double)pos[b];
    }
    if (nn == 0 || np == 0) {
        return NAN;
    }
    double u = 0.0, below = 0.0, same = 0.0;
    for (size_t b = 0; b < DW_PERF_SCORE_BINS; b++) {
        u += (double)pos[b] * (below + 0.5 * (double)neg[b]);
        same += (double)pos[b] * (double)neg[b];
        below += (double)neg[b];
    }
    if (err_bound) {
        *err_bound = 0.5 * same / (nn * np);
    }
    return u / (nn * np);
}

size_t dw_perf_score_view(const struct dw_perf *p, int cls, double **values, uint64_t **weights)
{
    size_t n = 0;
    *values = NULL;
    *weights = NULL;
    if (!p->inexact) {
        n = p->n_exact[cls];
        if (n > 0) {
            *values = dw_malloc(n * sizeof(**values));
            *weights = dw_malloc(n * sizeof(**weights));
            memcpy(*values, p->exact[cls], n * sizeof(**values));
            dw_sort_doubles(*values, n);
            for (size_t i = 0; i < n; i++) {
                (*weights)[i] = 1;
            }
        }
        return n;
    }
    const uint64_t *h = p->hist + (size_t)cls * DW_PERF_SCORE_BINS;
    for (size_t b = 0; b < DW_PERF_SCORE_BINS; b++) {
        n += h[b] > 0;
    }
    if (n == 0) {
        return 0;
    }
    *values = dw_malloc(n * sizeof(**values));
    *weights = dw_malloc(n * sizeof(**weights));
    size_t k = 0;
    for (size_t b = 0; b < DW_PERF_SCORE_BINS; b++) {
        if (h[b] > 0) {
            (*values)[k] = ((double)b + 0.5) / DW_PERF_SCORE_BINS;
            (*weights)[k++] = h[b];
        }
    }
    return n;
}

size_t dw_perf_n_classes(const struct dw_perf *p, size_t stop)
{
    const char **seen = dw_calloc(stop + 2, sizeof(*seen));
    size_t n = 0;
    for (size_t i = 0; i < p->pair_slots && n < stop; i++) {
        const char *two[2] = {p->pairs[i].pred, p->pairs[i].label};
        for (size_t t = 0; t < 2 && two[0] && n < stop; t++) {
            size_t k = 0;
            while (k < n && strcmp(seen[k], two[t]) != 0) {
                k++;
            }
            if (k == n) {
                seen[n++] = two[t];
            }
        }
    }
    free(seen);
    return n + (p->pairs_other > 0 && n < stop);
}

/* Index of name in a sorted array of distinct names. */
static size_t class_index(char *const *names, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(names[mid], name);
        if (c == 0) {
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dw_perf_f1(const struct dw_perf *p, double *macro, double *micro)
{
    if (p->n_pairs == 0) {
        return -1;
    }
    /* The union of predicted and true classes, sorted and distinct. */
    char **names = dw_malloc(2 * p->n_pairs * sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < p->pair_slots; i++) {
        if (p->pairs[i].pred) {
            names[n++] = p->pairs[i].pred;
            names[n++] = p->pairs[i].label;
        }
    }
    qsort(names, n, sizeof(*names), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || strcmp(names[k - 1], names[i]) != 0) {
            names[k++] = names[i];
        }
    }
    uint64_t *tp = dw_calloc(k, sizeof(*tp)), *fp = dw_calloc(k, sizeof(*fp));
    uint64_t *fn = dw_calloc(k, sizeof(*fn));
    uint64_t sum_tp = 0, sum_err = 0;
    for (size_t i = 0; i < p->pair_slots; i++) {
        const struct dw_class_pair *cp = &p->pairs[i];
        if (!cp->pred) {
            continue;
        }
        size_t pi = class_index(names, k, cp->pred), li = class_index(names, k, cp->label);
        if (pi == li) {
            tp[pi] += cp->count;
            sum_tp += cp->count;
        } else {
            fp[pi] += cp->count;
            fn[li] += cp->count;
            sum_err += cp->count;
        }
    }
    double sum_f1 = 0.0;
    for (size_t c = 0; c < k; c++) {
        uint64_t den = 2 * tp[c] + fp[c] + fn[c];
        sum_f1 += den ? 2.0 * (double)tp[c] / (double)den : 0.0;
    }
    *macro = sum_f1 / (double)k;
    /* Single-label: Σfp = Σfn = errors, so micro F1 = Σtp / (Σtp + errors) = accuracy. */
    *micro = sum_tp + sum_err ? (double)sum_tp / (double)(sum_tp + sum_err) : 0.0;
    free(tp);
    free(fp);
    free(fn);
    free(names);
    return 0;
}

double dw_perf_sketch_quantile(struct dw_kll *sk, double q)
{
    if (!sk || dw_kll_count(sk) == 0) {
        return NAN;
    }
    return dw_kll_quantile(sk, q);
}

double dw_perf_latency_quantile(const struct dw_perf *p, double q)
{
    return dw_perf_sketch_quantile(p->latency, q);
}
