/*
 * dw_kll.c - quantile sketch: exact while small, then KLL (Karnin, Lang, Liberty 2016).
 *
 * Why two modes. Most windows of most features are small, and users compare our numbers with
 * numpy; so a sketch first keeps every value (level 0 of the structure below, never compacted)
 * and answers with numpy's type-7 quantile exactly. Once it would hold more than
 * `exact_capacity` values it turns into a KLL sketch in place: level 0 simply starts being
 * compacted.
 *
 * KLL layout (as in Apache DataSketches' KllDoublesSketch). Level h holds items of weight
 * 2^h. With L levels, level h sits at depth d = L-1-h below the top and has capacity
 * max(8, round(k * (2/3)^d)): the top level holds k items, lower levels geometrically fewer,
 * so the whole sketch holds about 3k items + 8 per level: O(k + log(n/k)) memory. All levels
 * share one array packed at its end, sized to that total capacity; the free slots in front are
 * where updates land. Level 0 is an unsorted append buffer; levels >= 1 are kept sorted.
 * When the retained items
 * reach the total capacity, the lowest level at or over its capacity is compacted: it is sorted
 * (level 0 only), an odd item out (the smallest) stays, and of each adjacent pair one item - the
 * first or the second of every pair, by one seeded coin flip - moves up to level h+1 (merged
 * into its sorted array) with twice the weight. A compaction changes any rank estimate by at
 * most 2^h, with a random sign: that is where the KLL error bound comes from. Each compaction
 * frees at least 4 slots, so update is amortized O(log k) = O(1) in n, and allocation-free
 * except when the array grows (doubling while exact; a little when a level is added).
 *
 * Determinism. The coin flips come from splitmix64 seeded by the sketch's seed, and the state
 * never depends on the order of items inside level 0 (compaction sorts it first and keeps the
 * smallest as the odd item out), so queries may sort level 0 in place. In KLL mode the
 * serialized bytes (level 0 written sorted) only depend on the seed and the input. In exact
 * mode level 0 is written in the order held, which a query may have changed: sorting every
 * partition's values at every checkpoint cost 4-5 % of the service's CPU (bench/RESULTS.md),
 * and the one reader that needs them sorted, the evaluation, merges the partitions' values
 * and sorts them once anyway. The values and every answer are the same either way.
 *
 * Queries. Exact mode sorts level 0 and uses it directly. KLL mode builds a cached sorted view
 * (values with cumulative weights) by a multi-way merge of the levels; the next update or merge
 * invalidates it (its memory is kept for reuse).
 */
#include "driftwatch/core/dw_kll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Smallest level capacity (items), as DataSketches' M. */
#define KLL_MIN_WIDTH 8
/* Most levels a sketch can have: weights 2^h must fit a uint64_t count. */
#define KLL_MAX_LEVELS 60
/* Largest count a serialized sketch may claim (values): far beyond any stream, and it keeps
 * the level count well under KLL_MAX_LEVELS. */
#define KLL_MAX_COUNT (1ULL << 56)
/* First allocation of the items array in exact mode (items). */
#define KLL_INITIAL_ALLOC 16
/* Fixed part of the serialized form (bytes); see docs/sketches.md. */
#define KLL_HEADER_BYTES 52

struct dw_kll {
    /* What every update reads or writes, first, so that an update touches one or two cache
     * lines of the struct rather than four (a window's sketches are many and cold: each event
     * updates a dozen of them). */
    double *items;
    uint64_t n;
    double min;
    double max;
    uint32_t exact_capacity;
    uint32_t alloc;     /* items allocated; levels[num_levels] == alloc */
    uint32_t total_cap; /* sum of the level capacities (items), cached per level count */
    bool exact;
    bool level0_sorted; /* level 0 currently ascending */
    bool view_valid;
    /* All levels share one array, packed at its end: level h is items[levels[h], levels[h+1])
     * and items[0, levels[0]) is free space that updates fill downwards. */
    uint32_t levels[KLL_MAX_LEVELS + 1];
    uint32_t num_levels;
    uint32_t l0_sorted_tail; /* the last l0_sorted_tail items of level 0 are ascending */

    uint32_t k;
    uint32_t min_k; /* smallest k merged in: governs the error bound */
    uint64_t seed;
    uint64_t rng; /* splitmix64 state */

    /* Cached sorted view (KLL mode only): values ascending with cumulative weights. */
    double *view_vals;
    uint64_t *view_cum;
    uint32_t view_n;
    uint32_t view_alloc;
};

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

/* Capacity of a level at this depth below the top: max(8, round(k * (2/3)^depth)), computed
 * in integers like DataSketches so every platform agrees. */
static uint32_t level_capacity(uint32_t k, uint32_t depth)
{
    if (depth > 30) {
        return KLL_MIN_WIDTH; /* k <= 65535 and (2/3)^30 * 65535 < 8 */
    }
    uint64_t pow3 = 1;
    for (uint32_t i = 0; i < depth; i++) {
        pow3 *= 3;
    }
    uint64_t twice = ((uint64_t)k << (depth + 1)) / pow3; /* 2 k 2^d / 3^d, floored */
    uint64_t cap = (twice + 1) >> 1;                      /* rounded */
    return cap < KLL_MIN_WIDTH ? KLL_MIN_WIDTH : (uint32_t)cap;
}

static void update_total_capacity(struct dw_kll *sk)
{
    uint32_t total = 0;
    for (uint32_t h = 0; h < sk->num_levels; h++) {
        total += level_capacity(sk->k, sk->num_levels - 1 - h);
    }
    sk->total_cap = total;
}

static uint32_t level_size(const struct dw_kll *sk, uint32_t h)
{
    return sk->levels[h + 1] - sk->levels[h];
}

static uint32_t retained(const struct dw_kll *sk)
{
    return sk->alloc - sk->levels[0];
}

/* The next size of an exact sketch's array: double, from KLL_INITIAL_ALLOC up to exact_capacity
 * (update, merge and reserve grow the same way, so a reserve is the memory doubling reaches). */
static uint32_t exact_grown(const struct dw_kll *sk, uint32_t alloc)
{
    return DW_MIN(DW_MAX(2 * alloc, KLL_INITIAL_ALLOC), sk->exact_capacity);
}

/* Moves the packed items into an array of new_alloc (>= retained) items. */
static void resize_items(struct dw_kll *sk, uint32_t new_alloc)
{
    uint32_t r = retained(sk);
    dw_assert(new_alloc >= r);
    if (new_alloc == sk->alloc) {
        return;
    }
    uint32_t old_start = sk->levels[0];
    uint32_t new_start = new_alloc - r;
    if (new_alloc > sk->alloc) {
        sk->items = dw_realloc(sk->items, (size_t)new_alloc * sizeof(double));
        memmove(sk->items + new_start, sk->items + old_start, (size_t)r * sizeof(double));
    } else {
        memmove(sk->items + new_start, sk->items + old_start, (size_t)r * sizeof(double));
        sk->items = dw_realloc(sk->items, (size_t)new_alloc * sizeof(double));
    }
    for (uint32_t h = 0; h <= sk->num_levels; h++) {
        sk->levels[h] = sk->levels[h] - old_start + new_start;
    }
    sk->alloc = new_alloc;
}

/* A new, empty top level (no items move: it starts and ends at the array's end). */
static void add_level(struct dw_kll *sk)
{
    dw_assert(sk->num_levels < KLL_MAX_LEVELS);
    sk->levels[sk->num_levels + 1] = sk->levels[sk->num_levels];
    sk->num_levels++;
    update_total_capacity(sk);
}

/*
 * Sorts level 0. New items are prepended in front of what the last sort left ascending, so
 * only the new head is sorted and then merged with the sorted tail: a sketch serialised at
 * every checkpoint pays for the items added since, not for the whole level again.
 */
static void sort_level0(struct dw_kll *sk)
{
    uint32_t n = level_size(sk, 0);
    if (!sk->level0_sorted && n > 1) {
        double *base = sk->items + sk->levels[0];
        uint32_t tail = DW_MIN(sk->l0_sorted_tail, n);
        uint32_t head = n - tail;
        dw_sort_doubles(base, head);
        if (head > 0 && tail > 0 && base[head - 1] > base[head]) {
            double *scratch = dw_malloc((size_t)head * sizeof(double));
            memcpy(scratch, base, (size_t)head * sizeof(double));
            uint32_t i = 0, j = head, out = 0;
            while (i < head && j < n) {
                base[out++] = scratch[i] <= base[j] ? scratch[i++] : base[j++];
            }
            while (i < head) {
                base[out++] = scratch[i++];
            }
            free(scratch);
        }
    }
    sk->level0_sorted = true;
    sk->l0_sorted_tail = n;
}

/*
 * Compacts level h (as DataSketches' compress_while_updating): half of its paired items move
 * up to level h+1 with twice the weight, and the freed slots go to the free space in front.
 */
static void compact_level(struct dw_kll *sk, uint32_t h)
{
    if (h == 0) {
        sort_level0(sk);
    }
    if (h + 1 == sk->num_levels) {
        add_level(sk);
    }
    double *it = sk->items;
    uint32_t raw_beg = sk->levels[h];
    uint32_t raw_lim = sk->levels[h + 1];
    uint32_t odd = (raw_lim - raw_beg) & 1; /* odd count: the smallest item stays */
    uint32_t beg = raw_beg + odd;
    uint32_t half = (raw_lim - beg) / 2;
    uint32_t above_lim = sk->levels[h + 2];
    uint32_t below = sk->levels[0];
    uint32_t offset = (uint32_t)(dw_splitmix64(&sk->rng) >> 63);

    if (above_lim == raw_lim) {
        /* Level h+1 is empty: the survivors go straight to the top half of level h's range. */
        for (uint32_t j = half; j > 0; j--) { /* backwards: writes stay ahead of reads */
            it[beg + half + j - 1] = it[beg + 2 * (j - 1) + offset];
        }
    } else {
        /* Survivors to the bottom half, then a forward merge with level h+1 ending at its end
         * (the writes never overtake the reads). */
        for (uint32_t j = 0; j < half; j++) {
            it[beg + j] = it[beg + 2 * j + offset];
        }
        uint32_t i = beg;
        uint32_t a = raw_lim;
        uint32_t out = beg + half;
        while (i < beg + half && a < above_lim) {
            if (it[a] < it[i]) {
                it[out++] = it[a++];
            } else {
                it[out++] = it[i++];
            }
        }
        while (i < beg + half) {
            it[out++] = it[i++];
        }
    }
    sk->levels[h + 1] = raw_lim - half;
    sk->levels[h] = sk->levels[h + 1] - odd;
    if (odd) {
        it[sk->levels[h]] = it[raw_beg];
    }
    /* The levels below h move up by half, leaving the freed slots in front. */
    memmove(it + below + half, it + below, (size_t)(raw_beg - below) * sizeof(double));
    for (uint32_t l = 0; l < h; l++) {
        sk->levels[l] += half;
    }
    if (h == 0) {
        sk->level0_sorted = true; /* zero or one item */
        sk->l0_sorted_tail = level_size(sk, 0);
    }
}

/* Compacts until the retained items are below the total capacity (room for one more). */
static void compress(struct dw_kll *sk)
{
    while (retained(sk) >= sk->total_cap) {
        uint32_t h = 0;
        while (level_size(sk, h) < level_capacity(sk->k, sk->num_levels - 1 - h)) {
            h++;
            dw_assert(h < sk->num_levels);
        }
        compact_level(sk, h);
    }
}

/* Exact -> KLL: the exact buffer becomes level 0 and starts being compacted. */
static void to_kll(struct dw_kll *sk)
{
    sk->exact = false;
    compress(sk);
    /* The exact buffer (up to exact_capacity items) is larger than KLL needs: shrink it. */
    if (sk->alloc > sk->total_cap) {
        resize_items(sk, DW_MAX(sk->total_cap, retained(sk)));
    }
}

static void note_minmax(struct dw_kll *sk, double lo, double hi)
{
    if (sk->n == 0 || lo < sk->min) {
        sk->min = lo;
    }
    if (sk->n == 0 || hi > sk->max) {
        sk->max = hi;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle and update                                                                      */

struct dw_kll *dw_kll_new(uint32_t k, uint32_t exact_capacity, uint64_t seed)
{
    if (k == 0) {
        k = DW_KLL_DEFAULT_K;
    }
    if (exact_capacity == 0) {
        exact_capacity = DW_KLL_DEFAULT_EXACT_CAPACITY;
    }
    dw_assert(k >= DW_KLL_MIN_K && k <= DW_KLL_MAX_K);
    dw_assert(exact_capacity <= DW_KLL_MAX_EXACT_CAPACITY);

    struct dw_kll *sk = dw_calloc(1, sizeof(*sk));
    sk->k = k;
    sk->exact_capacity = exact_capacity;
    sk->seed = seed;
    dw_kll_reset(sk);
    return sk;
}

void dw_kll_destroy(struct dw_kll *sk)
{
    if (!sk) {
        return;
    }
    free(sk->items);
    free(sk->view_vals);
    free(sk->view_cum);
    free(sk);
}

void dw_kll_reset(struct dw_kll *sk)
{
    sk->num_levels = 1;
    sk->levels[0] = sk->alloc;
    sk->levels[1] = sk->alloc;
    update_total_capacity(sk);
    sk->level0_sorted = true;
    sk->l0_sorted_tail = 0;
    sk->exact = true;
    sk->n = 0;
    sk->min = NAN;
    sk->max = NAN;
    sk->min_k = sk->k;
    sk->rng = sk->seed;
    sk->view_valid = false;
}

void dw_kll_update(struct dw_kll *sk, double x)
{
    dw_assert(isfinite(x));
    if (sk->exact && sk->n == sk->exact_capacity) {
        to_kll(sk);
    }
    if (!sk->exact && retained(sk) >= sk->total_cap) {
        compress(sk);
    }
    if (sk->levels[0] == 0) {
        /* No free slot: exact mode doubles up to exact_capacity, KLL grows to its capacity
         * (which rises a little each time a level is added). */
        uint32_t want = sk->exact ? exact_grown(sk, sk->alloc) : sk->total_cap;
        resize_items(sk, DW_MAX(want, retained(sk) + 1));
    }
    note_minmax(sk, x, x);
    sk->n++;
    uint32_t at = --sk->levels[0];
    sk->items[at] = x;
    if (sk->level0_sorted && at + 1 < sk->levels[1] && x > sk->items[at + 1]) {
        sk->level0_sorted = false;
    }
    sk->view_valid = false;
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors                                                                                  */

uint64_t dw_kll_count(const struct dw_kll *sk)
{
    return sk->n;
}

bool dw_kll_is_exact(const struct dw_kll *sk)
{
    return sk->exact;
}

double dw_kll_min(const struct dw_kll *sk)
{
    return sk->n ? sk->min : NAN;
}

double dw_kll_max(const struct dw_kll *sk)
{
    return sk->n ? sk->max : NAN;
}

uint32_t dw_kll_k(const struct dw_kll *sk)
{
    return sk->k;
}

double dw_kll_rank_error_for_k(uint32_t k)
{
    /* Empirical fit of the worst error over all ranks at 99 % confidence (Apache DataSketches,
     * KllSketch.getNormalizedRankError(k, pmf=true)); checked against our implementation by
     * tests/unit/test_kll.c and docs/sketches.md. */
    return 2.446 / pow((double)k, 0.9433);
}

double dw_kll_rank_error_bound(const struct dw_kll *sk)
{
    return sk->exact ? 0.0 : dw_kll_rank_error_for_k(sk->min_k);
}

size_t dw_kll_num_retained(const struct dw_kll *sk)
{
    return retained(sk);
}

void dw_kll_reserve(struct dw_kll *sk, uint32_t n)
{
    if (!sk->exact) {
        return;
    }
    /* the size doubling would reach to hold n: the same memory, without the copies */
    uint32_t want = sk->alloc;
    while (want < DW_MIN(n, sk->exact_capacity)) {
        want = exact_grown(sk, want);
    }
    if (want > sk->alloc) {
        resize_items(sk, want);
    }
}

size_t dw_kll_memory_bytes(const struct dw_kll *sk)
{
    size_t bytes = sizeof(*sk) + (size_t)sk->alloc * sizeof(double);
    bytes += (size_t)sk->view_alloc * (sizeof(double) + sizeof(uint64_t));
    return bytes;
}

/* ------------------------------------------------------------------------------------------ */
/* Sorted view                                                                                */

/* Sorted items: vals ascending; cum[i] = total weight of items 0..i (NULL: all weights 1). */
struct kll_view {
    const double *vals;
    const uint64_t *cum;
    uint32_t m;
};

static uint64_t view_cum_at(const struct kll_view *v, uint32_t i)
{
    return v->cum ? v->cum[i] : (uint64_t)i + 1;
}

static void get_view(struct dw_kll *sk, struct kll_view *v)
{
    if (sk->exact) {
        sort_level0(sk);
        v->vals = sk->items ? sk->items + sk->levels[0] : NULL;
        v->cum = NULL;
        v->m = retained(sk);
        return;
    }
    if (!sk->view_valid) {
        sort_level0(sk);
        uint32_t r = retained(sk);
        if (sk->view_alloc < r) {
            sk->view_alloc = r;
            sk->view_vals = dw_realloc(sk->view_vals, (size_t)sk->view_alloc * sizeof(double));
            sk->view_cum = dw_realloc(sk->view_cum, (size_t)sk->view_alloc * sizeof(uint64_t));
        }
        /* Multi-way merge of the sorted levels: O(retained * levels), a few thousand steps. */
        uint32_t pos[KLL_MAX_LEVELS];
        for (uint32_t h = 0; h < sk->num_levels; h++) {
            pos[h] = sk->levels[h];
        }
        const double *it = sk->items;
        uint64_t cum = 0;
        for (uint32_t out = 0; out < r; out++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t h = 0; h < sk->num_levels; h++) {
                if (pos[h] < sk->levels[h + 1] &&
                    (best == UINT32_MAX || it[pos[h]] < it[pos[best]])) {
                    best = h;
                }
            }
            dw_assert(best != UINT32_MAX);
            cum += (uint64_t)1 << best;
            sk->view_vals[out] = it[pos[best]++];
            sk->view_cum[out] = cum;
        }
        dw_assert(cum == sk->n);
        sk->view_n = r;
        sk->view_valid = true;
    }
    v->vals = sk->view_vals;
    v->cum = sk->view_cum;
    v->m = sk->view_n;
}

/* First index i with vals[i] >= x (strict = true) or vals[i] > x (strict = false). */
static uint32_t view_bound(const struct kll_view *v, double x, bool strict)
{
    uint32_t lo = 0;
    uint32_t hi = v->m;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        bool below = strict ? v->vals[mid] < x : v->vals[mid] <= x;
        if (below) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Weight of the items before index i. */
static uint64_t view_weight_before(const struct kll_view *v, uint32_t i)
{
    return i == 0 ? 0 : view_cum_at(v, i - 1);
}

/* The order statistic at 0-based position pos of the (weighted) sample. */
static double order_stat(const struct dw_kll *sk, const struct kll_view *v, uint64_t pos)
{
    if (pos == 0) {
        return sk->min;
    }
    if (pos >= sk->n - 1) {
        return sk->max;
    }
    if (!v->cum) {
        return v->vals[pos];
    }
    /* First item whose cumulative weight exceeds pos. */
    uint32_t lo = 0;
    uint32_t hi = v->m - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v->cum[mid] > pos) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return v->vals[lo];
}

size_t dw_kll_sorted_view(struct dw_kll *sk, double *values, uint64_t *weights, size_t cap)
{
    if (!values || !weights || cap < retained(sk)) {
        return retained(sk);
    }
    struct kll_view v;
    get_view(sk, &v);
    for (uint32_t i = 0; i < v.m; i++) {
        values[i] = v.vals[i];
        weights[i] = view_cum_at(&v, i) - view_weight_before(&v, i);
    }
    return v.m;
}

/* ------------------------------------------------------------------------------------------ */
/* Queries                                                                                    */

double dw_kll_quantile(struct dw_kll *sk, double q)
{
    dw_assert(q >= 0.0 && q <= 1.0);
    if (sk->n == 0) {
        return NAN;
    }
    struct kll_view v;
    get_view(sk, &v);
    /* numpy's "linear" method: virtual index (n-1)q, then its _lerp. */
    double h = (double)(sk->n - 1) * q;
    double fl = floor(h);
    uint64_t lo = (uint64_t)fl;
    double t = h - fl;
    if (lo >= sk->n - 1) {
        return sk->max;
    }
    double a = order_stat(sk, &v, lo);
    if (t == 0.0) {
        return a;
    }
    double b = order_stat(sk, &v, lo + 1);
    double diff = b - a;
    return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

static double rank_impl(struct dw_kll *sk, double x, bool strict)
{
    if (sk->n == 0) {
        return NAN;
    }
    struct kll_view v;
    get_view(sk, &v);
    uint64_t w = view_weight_before(&v, view_bound(&v, x, strict));
    return (double)w / (double)sk->n;
}

double dw_kll_rank(struct dw_kll *sk, double x)
{
    return rank_impl(sk, x, true);
}

double dw_kll_rank_le(struct dw_kll *sk, double x)
{
    return rank_impl(sk, x, false);
}

void dw_kll_cdf(struct dw_kll *sk, const double *edges, size_t n_edges, uint64_t *counts_lt)
{
    if (n_edges == 0) {
        return;
    }
    struct kll_view v = {0};
    if (sk->n > 0) {
        get_view(sk, &v);
    }
    uint32_t i = 0;
    for (size_t e = 0; e < n_edges; e++) {
        dw_assert(!isnan(edges[e]));
        dw_assert(e == 0 || edges[e] >= edges[e - 1]);
        while (i < v.m && v.vals[i] < edges[e]) {
            i++;
        }
        counts_lt[e] = view_weight_before(&v, i);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Merge                                                                                      */

void dw_kll_merge(struct dw_kll *dst, const struct dw_kll *src)
{
    dw_assert(dst != src);
    dw_assert(dst->n <= UINT64_MAX - src->n);
    if (src->n == 0) {
        return;
    }
    dst->view_valid = false;
    uint32_t sr = retained(src);

    if (dst->exact && src->exact && dst->n + src->n <= dst->exact_capacity) {
        /* Both exact and the union fits: append src's values in front of dst's. */
        if (dst->levels[0] < sr) {
            uint32_t want = exact_grown(dst, dst->alloc);
            resize_items(dst, DW_MAX(want, retained(dst) + sr));
        }
        dst->levels[0] -= sr;
        memcpy(dst->items + dst->levels[0], src->items + src->levels[0],
               (size_t)sr * sizeof(double));
        dst->level0_sorted = retained(dst) <= 1;
        note_minmax(dst, src->min, src->max);
        dst->n += src->n;
        return;
    }

    if (dst->exact) {
        to_kll(dst);
    }
    while (dst->num_levels < src->num_levels) {
        add_level(dst);
    }
    /* Lay both out level by level in a new array (packed at its end), then compact: level 0
     * items have weight 1 in both (concatenated), higher levels are merged sorted. */
    uint32_t total = retained(dst) + sr;
    uint32_t alloc = DW_MAX(total, dst->total_cap);
    double *it = dw_malloc((size_t)alloc * sizeof(double));
    uint32_t levels[KLL_MAX_LEVELS + 1];
    uint32_t pos = alloc;
    levels[dst->num_levels] = alloc;
    for (uint32_t top = dst->num_levels; top > 0; top--) {
        uint32_t h = top - 1;
        uint32_t dn = level_size(dst, h);
        const double *d = dn ? dst->items + dst->levels[h] : NULL;
        const double *sp = h < src->num_levels ? src->items + src->levels[h] : NULL;
        uint32_t sn = h < src->num_levels ? level_size(src, h) : 0;
        pos -= dn + sn;
        levels[h] = pos;
        if (h == 0) {
            if (dn) {
                memcpy(it + pos, d, (size_t)dn * sizeof(double));
            }
            if (sn) {
                memcpy(it + pos + dn, sp, (size_t)sn * sizeof(double));
            }
            continue;
        }
        uint32_t i = 0;
        uint32_t j = 0;
        uint32_t out = pos;
        while (i < dn || j < sn) {
            if (j == sn || (i < dn && d[i] <= sp[j])) {
                it[out++] = d[i++];
            } else {
                it[out++] = sp[j++];
            }
        }
    }
    free(dst->items);
    dst->items = it;
    dst->alloc = alloc;
    memcpy(dst->levels, levels, (size_t)(dst->num_levels + 1) * sizeof(uint32_t));
    dst->level0_sorted = level_size(dst, 0) <= 1;
    dst->l0_sorted_tail = dst->level0_sorted ? level_size(dst, 0) : 0;
    note_minmax(dst, src->min, src->max);
    dst->n += src->n;
    if (src->min_k < dst->min_k) {
        dst->min_k = src->min_k;
    }
    compress(dst);
    if (dst->alloc > dst->total_cap) {
        resize_items(dst, DW_MAX(dst->total_cap, retained(dst)));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Serialization (little-endian; layout in docs/sketches.md; read with dw_codec's dw_reader) */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    put_u64(p, bits);
}

size_t dw_kll_serialize(struct dw_kll *sk, uint8_t *buf, size_t cap)
{
    size_t need = KLL_HEADER_BYTES + (size_t)sk->num_levels * 4 + (size_t)retained(sk) * 8;
    if (!buf || cap < need) {
        return need;
    }
    if (!sk->exact) {
        sort_level0(sk); /* canonical bytes: a KLL level 0 is small, written ascending */
    }
    buf[0] = DW_KLL_FORMAT;
    buf[1] = DW_KLL_VERSION;
    buf[2] = sk->exact ? 1 : 0;
    buf[3] = (uint8_t)sk->num_levels;
    put_u16(buf + 4, (uint16_t)sk->k);
    put_u16(buf + 6, (uint16_t)sk->min_k);
    put_u32(buf + 8, sk->exact_capacity);
    put_u64(buf + 12, sk->n);
    put_u64(buf + 20, sk->seed);
    put_u64(buf + 28, sk->rng);
    put_f64(buf + 36, sk->n ? sk->min : NAN);
    put_f64(buf + 44, sk->n ? sk->max : NAN);
    uint8_t *p = buf + KLL_HEADER_BYTES;
    for (uint32_t h = 0; h < sk->num_levels; h++) {
        uint32_t m = level_size(sk, h);
        put_u32(p, m);
        p += 4;
        if (m > 0) { /* an empty sketch may have no items array (no offset from NULL) */
            dw_le_put_f64s(p, sk->items + sk->levels[h], m);
            p += (size_t)m * 8;
        }
    }
    dw_assert((size_t)(p - buf) == need);
    return need;
}

struct dw_kll *dw_kll_deserialize(const uint8_t *buf, size_t len, char *errstr, size_t errstr_size)
{
    struct dw_kll *sk = NULL;

    if (!buf || len < KLL_HEADER_BYTES) {
        dw_err(errstr, errstr_size, "kll: truncated header (%zu of %d bytes)", buf ? len : 0,
               KLL_HEADER_BYTES);
        goto err;
    }
    struct dw_reader rd;
    dw_reader_init(&rd, buf, len);
    uint8_t format = dw_rd_u8(&rd);
    uint8_t version = dw_rd_u8(&rd);
    uint8_t flags = dw_rd_u8(&rd);
    uint32_t num_levels = dw_rd_u8(&rd);
    uint32_t k = dw_rd_u16(&rd);
    uint32_t min_k = dw_rd_u16(&rd);
    uint32_t exact_capacity = dw_rd_u32(&rd);
    uint64_t n = dw_rd_u64(&rd);
    uint64_t seed = dw_rd_u64(&rd);
    uint64_t rng = dw_rd_u64(&rd);
    double min = dw_rd_f64(&rd);
    double max = dw_rd_f64(&rd);
    dw_assert(!rd.err && rd.pos == KLL_HEADER_BYTES); /* len >= KLL_HEADER_BYTES */
    if (format != DW_KLL_FORMAT) {
        dw_err(errstr, errstr_size, "kll: not a KLL sketch (format byte 0x%02x)", format);
        goto err;
    }
    if (version != DW_KLL_VERSION && version != 1) {
        dw_err(errstr, errstr_size, "kll: unsupported version %u (expected %d)", version,
               DW_KLL_VERSION);
        goto err;
    }
    bool exact = (flags & 1) != 0;

    if ((flags & ~1u) != 0) {
        dw_err(errstr, errstr_size, "kll: unknown flags 0x%02x", flags);
        goto err;
    }
    if (k < DW_KLL_MIN_K || min_k < DW_KLL_MIN_K || min_k > k) {
        dw_err(errstr, errstr_size, "kll: bad k %u / min_k %u", k, min_k);
        goto err;
    }
    if (exact_capacity < 1 || exact_capacity > DW_KLL_MAX_EXACT_CAPACITY) {
        dw_err(errstr, errstr_size, "kll: bad exact capacity %u", exact_capacity);
        goto err;
    }
    if (num_levels < 1 || num_levels > KLL_MAX_LEVELS || (exact && num_levels != 1)) {
        dw_err(errstr, errstr_size, "kll: bad level count %u", num_levels);
        goto err;
    }
    if (n > KLL_MAX_COUNT) {
        dw_err(errstr, errstr_size, "kll: count %llu beyond 2^56", (unsigned long long)n);
        goto err;
    }
    if (exact && (n > exact_capacity || min_k != k)) {
        dw_err(errstr, errstr_size, "kll: exact sketch with %llu values over capacity %u",
               (unsigned long long)n, exact_capacity);
        goto err;
    }
    if (n > 0 && !(isfinite(min) && isfinite(max) && min <= max)) {
        dw_err(errstr, errstr_size, "kll: bad min/max");
        goto err;
    }

    sk = dw_kll_new(k, exact_capacity, seed);
    sk->min_k = min_k;
    sk->rng = rng;
    sk->exact = exact;
    sk->n = n;
    sk->min = n ? min : NAN;
    sk->max = n ? max : NAN;

    /* First pass: the level sizes, checked against the bytes and the count. */
    uint32_t counts[KLL_MAX_LEVELS];
    uint64_t weight = 0;
    uint32_t total = 0;
    for (uint32_t h = 0; h < num_levels; h++) {
        if (dw_rd_left(&rd) < 4) {
            dw_err(errstr, errstr_size, "kll: truncated at level %u (byte %zu)", h, rd.pos);
            goto err;
        }
        uint32_t cnt = dw_rd_u32(&rd);
        if (cnt > dw_rd_left(&rd) / 8) {
            dw_err(errstr, errstr_size, "kll: truncated: level %u claims %u items, %zu bytes left",
                   h, cnt, dw_rd_left(&rd));
            goto err;
        }
        if (cnt > (UINT64_MAX >> h) || weight > UINT64_MAX - ((uint64_t)cnt << h)) {
            dw_err(errstr, errstr_size, "kll: level %u weight overflows", h);
            goto err;
        }
        weight += (uint64_t)cnt << h;
        counts[h] = cnt;
        total += cnt; /* cannot overflow: each item took 8 of at most SIZE_MAX bytes */
        (void)dw_rd_bytes(&rd, (size_t)cnt * 8);
    }
    if (dw_rd_left(&rd) != 0) {
        dw_err(errstr, errstr_size, "kll: %zu trailing bytes", dw_rd_left(&rd));
        goto err;
    }
    if (!exact && num_levels > 1 && counts[num_levels - 1] == 0) {
        /* A level is only ever added by compacting into it. */
        dw_err(errstr, errstr_size, "kll: empty top level %u", num_levels - 1);
        goto err;
    }
    if (weight != n) {
        dw_err(errstr, errstr_size, "kll: items weigh %llu but count is %llu",
               (unsigned long long)weight, (unsigned long long)n);
        goto err;
    }

    /* Second pass: the items, packed at the end of the array like a live sketch. */
    for (uint32_t h = 1; h < num_levels; h++) {
        add_level(sk);
    }
    uint32_t alloc = exact ? DW_MAX(total, 1) : DW_MAX(total, sk->total_cap);
    sk->items = dw_malloc((size_t)alloc * sizeof(double));
    sk->alloc = alloc;
    uint32_t at = alloc - total;
    dw_reader_init(&rd, buf + KLL_HEADER_BYTES, len - KLL_HEADER_BYTES);
    bool l0_any_order = exact && version >= 2;
    for (uint32_t h = 0; h < num_levels; h++) {
        sk->levels[h] = at;
        (void)dw_rd_u32(&rd); /* counts[h], read above */
        (void)dw_rd_f64s(&rd, sk->items + at, counts[h]);
        for (uint32_t i = 0; i < counts[h]; i++) {
            double x = sk->items[at];
            bool order = (h == 0 && l0_any_order) || i == 0 || x >= sk->items[at - 1];
            if (!isfinite(x) || x < min || x > max || !order) {
                dw_err(errstr, errstr_size,
                       "kll: level %u item %u is not finite, in [min, max] and ascending", h, i);
                goto err;
            }
            at++;
        }
    }
    dw_assert(!rd.err && dw_rd_left(&rd) == 0); /* the first pass checked every length */
    sk->levels[num_levels] = at;
    sk->level0_sorted = !l0_any_order || level_size(sk, 0) <= 1;
    sk->l0_sorted_tail = sk->level0_sorted ? level_size(sk, 0) : 0;
    return sk;

err:
    dw_kll_destroy(sk);
    return NULL;
}

void dw_kll_put(struct dw_buf *out, struct dw_kll *sk)
{
    size_t len = sk ? dw_kll_serialize(sk, NULL, 0) : 0;
    dw_buf_put_u32(out, (uint32_t)len);
    if (len) {
        dw_kll_serialize(sk, dw_buf_extend(out, len), len);
    }
}

int dw_kll_get(struct dw_reader *rd, struct dw_kll **out)
{
    *out = NULL;
    uint32_t len = dw_rd_u32(rd);
    const uint8_t *bytes = dw_rd_bytes(rd, len);
    if (len && bytes) {
        char err[DW_READER_MSG];
        *out = dw_kll_deserialize(bytes, len, err, sizeof(err));
        if (!*out) {
            dw_rd_fail(rd, "sketch: %s", err);
        }
    }
    return rd->err ? -1 : 0;
}
