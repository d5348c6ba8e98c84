/*
 * fuzz_kll.c - dw_kll_deserialize(), the reader of every stored quantile sketch, on arbitrary
 * bytes.
 *
 * A sketch the reader accepts must behave like one the sketch wrote: its queries answer (count,
 * min, max, quantiles, ranks, cdf, sorted view: weights adding up to the count), it merges into
 * an empty sketch and into a copy of itself, it takes new values (compactions from the restored
 * layout), and what it serializes is accepted again.
 *
 * Seeds: dw_kll_serialize() of sketches built by feeding values: empty, exact, just past the
 * exact capacity, compacted with the smallest and the default k, merged sketches of different
 * k, negative and repeated values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_kll.h"
#include "dw_fuzz.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_kll: %s\n", what);
        abort();
    }
}

/* Serializes sk and reads it back: must be accepted. */
static void reserialize(struct dw_kll *sk)
{
    size_t need = dw_kll_serialize(sk, NULL, 0);
    uint8_t *buf = dw_malloc(need);
    check(dw_kll_serialize(sk, buf, need) == need, "serialize length");
    char err[256];
    struct dw_kll *back = dw_kll_deserialize(buf, need, err, sizeof(err));
    if (!back) {
        fprintf(stderr, "fuzz_kll: a serialized sketch is refused: %s\n", err);
        abort();
    }
    check(dw_kll_count(back) == dw_kll_count(sk), "count changed by a round trip");
    dw_kll_destroy(back);
    free(buf);
}

static void queries(struct dw_kll *sk)
{
    uint64_t n = dw_kll_count(sk);
    double lo = dw_kll_min(sk), hi = dw_kll_max(sk);
    for (int i = 0; i <= 4; i++) {
        double q = dw_kll_quantile(sk, (double)i / 4.0);
        check(n == 0 ? isnan(q) : (q >= lo && q <= hi), "quantile outside [min, max]");
    }
    if (n > 0) {
        double r = dw_kll_rank(sk, (lo + hi) / 2.0);
        check(r >= 0.0 && r <= 1.0, "rank outside [0, 1]");
        (void)dw_kll_rank_le(sk, hi);
        double edges[3] = {lo, (lo + hi) / 2.0, hi};
        uint64_t lt[3];
        if (edges[1] >= edges[0] && edges[2] >= edges[1]) {
            dw_kll_cdf(sk, edges, 3, lt);
            check(lt[0] <= lt[1] && lt[1] <= lt[2] && lt[2] <= n, "cdf not monotone");
        }
    }
    size_t m = dw_kll_sorted_view(sk, NULL, NULL, 0);
    double *v = dw_malloc((m ? m : 1) * sizeof(*v));
    uint64_t *w = dw_malloc((m ? m : 1) * sizeof(*w));
    check(dw_kll_sorted_view(sk, v, w, m) == m, "sorted view length");
    uint64_t total = 0;
    for (size_t i = 0; i < m; i++) {
        check(i == 0 || v[i] >= v[i - 1], "sorted view not ascending");
        total += w[i];
    }
    check(total == n, "sorted view weights do not add up to the count");
    free(v);
    free(w);
    (void)dw_kll_rank_error_bound(sk);
    (void)dw_kll_memory_bytes(sk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct dw_kll *sk = dw_kll_deserialize(data, size, err, sizeof(err));
    if (!sk) {
        check(err[0] != '\0', "refused without a message");
        return 0;
    }
    queries(sk);
    reserialize(sk);
    /* into an empty sketch, and into a copy of itself */
    struct dw_kll *into = dw_kll_new(DW_KLL_MIN_K, 16, 1);
    dw_kll_merge(into, sk);
    check(dw_kll_count(into) == dw_kll_count(sk), "merge into empty lost values");
    queries(into);
    reserialize(into);
    struct dw_kll *twin = dw_kll_deserialize(data, size, err, sizeof(err));
    check(twin != NULL, "the same bytes refused the second time");
    dw_kll_merge(twin, sk);
    queries(twin);
    reserialize(twin);
    /* new values: compactions starting from the restored layout */
    for (int i = 0; i < 64; i++) {
        dw_kll_update(sk, (double)(i % 9) - 4.0);
    }
    queries(sk);
    reserialize(sk);
    dw_kll_destroy(twin);
    dw_kll_destroy(into);
    dw_kll_destroy(sk);
    return 0;
}

static void write_sketch(const char *dir, const char *name, struct dw_kll *sk)
{
    size_t need = dw_kll_serialize(sk, NULL, 0);
    uint8_t *buf = dw_malloc(need);
    dw_kll_serialize(sk, buf, need);
    dw_fuzz_write_seed(dir, name, buf, need);
    free(buf);
}

void dw_fuzz_seeds(const char *dir)
{
    struct dw_kll *empty = dw_kll_new(0, 0, 7);
    write_sketch(dir, "empty", empty);

    struct dw_kll *exact = dw_kll_new(0, 64, 7);
    for (int i = 0; i < 40; i++) {
        dw_kll_update(exact, (double)((i * 37) % 11) - 5.5);
    }
    write_sketch(dir, "exact", exact);

    struct dw_kll *past = dw_kll_new(DW_KLL_MIN_K, 16, 7);
    for (int i = 0; i < 17; i++) {
        dw_kll_update(past, (double)i);
    }
    write_sketch(dir, "past_exact", past);

    struct dw_kll *small_k = dw_kll_new(DW_KLL_MIN_K, 8, 11);
    for (int i = 0; i < 5000; i++) {
        dw_kll_update(small_k, sin((double)i) * 1e3);
    }
    write_sketch(dir, "compacted_k8", small_k);

    struct dw_kll *def = dw_kll_new(0, 32, 13);
    for (int i = 0; i < 3000; i++) {
        dw_kll_update(def, (double)(i % 97) * -0.5);
    }
    write_sketch(dir, "compacted_default", def);

    struct dw_kll *merged = dw_kll_new(16, 8, 17);
    dw_kll_merge(merged, small_k);
    dw_kll_merge(merged, def);
    dw_kll_merge(merged, exact);
    write_sketch(dir, "merged", merged);

    struct dw_kll *one = dw_kll_new(0, 1, 19);
    dw_kll_update(one, 42.0);
    write_sketch(dir, "one", one);

    dw_kll_destroy(one);
    dw_kll_destroy(merged);
    dw_kll_destroy(def);
    dw_kll_destroy(small_k);
    dw_kll_destroy(past);
    dw_kll_destroy(exact);
    dw_kll_destroy(empty);
}
