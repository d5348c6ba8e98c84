/*
 * dw_kll.h - mergeable quantile sketch for one numeric feature (exact while small, then KLL).
 *
 * A sketch keeps every value until it holds `exact_capacity` of them and answers exactly, with
 * numpy's default quantile definition (type 7). Beyond that it becomes a KLL sketch (Karnin,
 * Lang, Liberty 2016, laid out like Apache DataSketches' KllDoublesSketch) whose normalized
 * rank error is at most dw_kll_rank_error_bound() at 99 % confidence. Sketches merge without
 * losing accuracy, and serialize to a versioned, little-endian byte format (docs/sketches.md).
 *
 * Values must be finite: the caller counts NaN and infinities apart (dw_kll_update asserts).
 *
 * Queries sort an internal buffer and build a cached sorted view lazily, so they take a
 * non-const sketch; a sketch is not safe for concurrent use without external locking. The
 * sketch's state (and so its serialization) does not depend on whether it was queried.
 */
#ifndef DW_KLL_H
#define DW_KLL_H

#include <stdbool.h>

#include "driftwatch/core/dw_codec.h"
#include <stddef.h>
#include <stdint.h>

/* k (items in the top compactor) bounds: DataSketches' minimum and a 16-bit field. */
#define DW_KLL_MIN_K 8
#define DW_KLL_MAX_K 65535
/* Default k: normalized rank error <= 1 % at 99 % confidence (see docs/sketches.md). */
#define DW_KLL_DEFAULT_K 400
/* Values kept exactly before switching to KLL (values, 8 bytes each). */
#define DW_KLL_DEFAULT_EXACT_CAPACITY 4096
#define DW_KLL_MAX_EXACT_CAPACITY (1u << 24)

/* Serialized format: first byte, then version byte. */
#define DW_KLL_FORMAT 0x4B /* 'K' */
#define DW_KLL_VERSION 2   /* 2: an exact sketch's level 0 in the order held; 1 is still read */

struct dw_kll;

/**
 * @brief Creates an empty sketch.
 * @param k              KLL accuracy parameter, 0 for DW_KLL_DEFAULT_K, else in
 *                       [DW_KLL_MIN_K, DW_KLL_MAX_K] (asserted: validate config first).
 * @param exact_capacity values kept exactly, 0 for DW_KLL_DEFAULT_EXACT_CAPACITY, else in
 *                       [1, DW_KLL_MAX_EXACT_CAPACITY] (asserted).
 * @param seed           seeds the compaction coin flips: same seed + same input gives the
 *                       same sketch, byte for byte.
 * @returns the sketch (never NULL: allocation failure aborts).
 */
struct dw_kll *dw_kll_new(uint32_t k, uint32_t exact_capacity, uint64_t seed);

/** @brief Frees the sketch (NULL is a no-op). */
void dw_kll_destroy(struct dw_kll *sk);

/** @brief Empties the sketch, keeping k, exact_capacity and seed (coin flips restart). */
void dw_kll_reset(struct dw_kll *sk);

/**
 * @brief Room for n items while the sketch is exact: the array that growing by doubling would
 *        reach to hold them (at most exact_capacity), allocated at once, so that the same
 *        memory comes without the copies on the way. The results are the same without it.
 */
void dw_kll_reserve(struct dw_kll *sk, uint32_t n);

/** @brief Adds one finite value. Amortized O(1); allocates only when a level grows. */
void dw_kll_update(struct dw_kll *sk, double x);

/** @returns the number of values added (including through merges). */
uint64_t dw_kll_count(const struct dw_kll *sk);

/** @returns true while every value is held, so every answer is exact. */
bool dw_kll_is_exact(const struct dw_kll *sk);

/** @returns the smallest / largest value seen (exact in both modes), NaN when empty. */
double dw_kll_min(const struct dw_kll *sk);
double dw_kll_max(const struct dw_kll *sk);

/** @returns the sketch's k (as given to dw_kll_new). */
uint32_t dw_kll_k(const struct dw_kll *sk);

/**
 * @returns the normalized rank error bound at 99 % confidence for this sketch's answers:
 *          0 while exact, else the bound for the smallest k that went into it (merges).
 */
double dw_kll_rank_error_bound(const struct dw_kll *sk);

/** @returns the normalized rank error at 99 % confidence of a KLL sketch with this k. */
double dw_kll_rank_error_for_k(uint32_t k);

/**
 * @brief Quantile by linear interpolation between order statistics (numpy default, type 7):
 *        h = (n-1)q, x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]).
 *        When estimated, x[i] is the i-th order statistic of the weighted sample (an item of
 *        weight w stands for w consecutive order statistics), with x[0] = min and
 *        x[n-1] = max known exactly.
 * @param q in [0, 1] (asserted).
 * @returns the quantile, NaN when the sketch is empty.
 */
double dw_kll_quantile(struct dw_kll *sk, double q);

/** @returns the (estimated) fraction of values < x; exact when exact; NaN when empty. */
double dw_kll_rank(struct dw_kll *sk, double x);

/** @returns the (estimated) fraction of values <= x; exact when exact; NaN when empty. */
double dw_kll_rank_le(struct dw_kll *sk, double x);

/**
 * @brief For each split point edges[i] (non-decreasing, asserted), counts_lt[i] = (estimated)
 *        number of values < edges[i], in one pass over the sorted items. Exact when exact.
 *        Reference-bin counts: bin [e_i, e_{i+1}) holds counts_lt[i+1] - counts_lt[i].
 */
void dw_kll_cdf(struct dw_kll *sk, const double *edges, size_t n_edges, uint64_t *counts_lt);

/** @returns the number of items the sketch holds (the length of its sorted view). */
size_t dw_kll_num_retained(const struct dw_kll *sk);

/**
 * @brief Sorted weighted view (for KS and friends): fills values[] ascending and weights[]
 *        (sum of weights = count). In exact mode every value appears with weight 1. Equal
 *        values may appear more than once.
 * @returns the number of items; when values or weights is NULL or cap is smaller than that,
 *          nothing is written (call with NULL, 0 to size the arrays).
 */
size_t dw_kll_sorted_view(struct dw_kll *sk, double *values, uint64_t *weights, size_t cap);

/**
 * @brief Adds src into dst (src is unchanged). Exact + exact stays exact while the total fits
 *        dst's exact_capacity; otherwise dst becomes KLL with dst's k. The result is as
 *        accurate as one sketch over the union (for k, the smaller of the two counts).
 */
void dw_kll_merge(struct dw_kll *dst, const struct dw_kll *src);

/**
 * @brief Serializes the sketch (format in docs/sketches.md).
 * @returns the number of bytes needed; the bytes are written only when buf is non-NULL and
 *          cap is at least that (call with NULL, 0 to size the buffer).
 */
size_t dw_kll_serialize(struct dw_kll *sk, uint8_t *buf, size_t cap);

/**
 * @brief Rebuilds a sketch from dw_kll_serialize's bytes, validating every field.
 * @returns the sketch, or NULL with errstr filled when the bytes are truncated, of another
 *          format or version, or inconsistent.
 */
struct dw_kll *dw_kll_deserialize(const uint8_t *buf, size_t len, char *errstr, size_t errstr_size);

/** @returns the heap bytes the sketch currently uses (for memory accounting). */
size_t dw_kll_memory_bytes(const struct dw_kll *sk);

/**
 * @brief Appends a sketch inside a larger encoding: u32 length, then dw_kll_serialize()'s bytes
 *        (length 0 for a NULL sketch).
 */
void dw_kll_put(struct dw_buf *out, struct dw_kll *sk);

/**
 * @brief Reads what dw_kll_put() wrote. *out is NULL for length 0.
 * @returns 0, or -1 with rd->err set on a truncated or invalid sketch.
 */
int dw_kll_get(struct dw_reader *rd, struct dw_kll **out);

#endif
