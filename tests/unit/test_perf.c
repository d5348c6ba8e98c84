/*
 * test_perf.c - ROC AUC (exact and from histograms), macro/micro F1, latency quantiles, merge
 * and encoding of struct dw_perf, and the decoder refusing corrupt records. Expected values
 * computed by hand (sklearn definitions).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_perf.h"

#include "dw_test.h"

static void add_scored(struct dw_perf *p, const int *y, const double *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dw_perf_add_outcome(p, y[i] ? "1" : "0", y[i] ? "1" : "0", y[i], 1, s[i]);
    }
}

static void test_auc_exact(void **state)
{
    (void)state;
    struct dw_perf p;
    dw_perf_init(&p);
    /* sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75 */
    const int y[] = {0, 0, 1, 1};
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    add_scored(&p, y, s, 4);
    double bound = -1;
    assert_true(fabs(dw_perf_roc_auc(&p, &bound) - 0.75) < 1e-15);
    assert_double_exact(bound, 0.0);
    dw_perf_free(&p);
    /* Ties count one half: pos {0.5, 0.9}, neg {0.5, 0.2} -> (0.5 + 1 + 1 + 1) / 4. */
    dw_perf_init(&p);
    const int y2[] = {0, 1, 0, 1};
    const double s2[] = {0.5, 0.5, 0.2, 0.9};
    add_scored(&p, y2, s2, 4);
    assert_true(fabs(dw_perf_roc_auc(&p, NULL) - 0.875) < 1e-15);
    dw_perf_free(&p);
    /* One class only: undefined. */
    dw_perf_init(&p);
    add_scored(&p, y, s, 2);
    assert_nan(dw_perf_roc_auc(&p, NULL));
    dw_perf_free(&p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Beyond the exact capacity the histogram answers within its stated bound. */
static void test_auc_histogram(void **state)
{
    (void)state;
    enum { N = 3000 };
    static double pos[N], neg[N];
    uint64_t seed = 7;
    struct dw_perf a, b;
    dw_perf_init(&a);
    dw_perf_init(&b);
    for (int i = 0; i < N; i++) {
        pos[i] = (double)(dw_splitmix64(&seed) >> 11) / 9007199254740992.0 * 0.7 + 0.3;
        neg[i] = (double)(dw_splitmix64(&seed) >> 11) / 9007199254740992.0 * 0.7;
        struct dw_perf *half = i % 2 ? &a : &b; /* two partitions, merged below */
        dw_perf_add_outcome(half, "1", "1", 1, 1, pos[i]);
        dw_perf_add_outcome(half, "0", "0", 0, 1, neg[i]);
    }
    dw_perf_merge(&a, &b);
    assert_true(a.inexact);
    /* Exact Mann-Whitney by brute force on sorted arrays. */
    qsort(neg, N, sizeof(double), cmp_double);
    double u = 0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N && neg[j] <= pos[i]; j++) {
            u += neg[j] < pos[i] ? 1.0 : 0.5;
        }
    }
    double exact = u / ((double)N * N), bound = 0;
    double got = dw_perf_roc_auc(&a, &bound);
    assert_true(bound > 0 && bound < 0.01);
    assert_near(got, exact, bound);
    dw_perf_free(&a);
    dw_perf_free(&b);
}

static void test_f1_macro_micro(void **state)
{
    (void)state;
    struct dw_perf p;
    dw_perf_init(&p);
    /* f1_score(["a","b","c","a"], ["a","c","c","b"], average="macro") = (2/3 + 0 + 2/3) / 3 */
    const char *truth[] = {"a", "b", "c", "a"}, *pred[] = {"a", "c", "c", "b"};
    for (int i = 0; i < 4; i++) {
        dw_perf_add_outcome(&p, pred[i], truth[i], 0, 0, 0);
    }
    double macro = 0, micro = 0;
    assert_int_equal(dw_perf_f1(&p, &macro, &micro), 0);
    assert_true(fabs(macro - 4.0 / 9.0) < 1e-15);
    assert_true(fabs(micro - 0.5) < 1e-15);
    dw_perf_free(&p);
    dw_perf_init(&p);
    assert_int_equal(dw_perf_f1(&p, &macro, &micro), -1);
    dw_perf_free(&p);
}

static void test_latency_and_codec(void **state)
{
    (void)state;
    struct dw_perf p, back;
    dw_perf_init(&p);
    dw_perf_init(&back);
    for (int i = 1; i <= 100; i++) {
        dw_perf_add_latency(&p, (double)i);
    }
    /* numpy.percentile(range(1, 101), 95) == 95.05 */
    assert_true(fabs(dw_perf_latency_quantile(&p, 0.95) - 95.05) < 1e-12);
    const int y[] = {0, 1, 1};
    const double s[] = {0.2, 0.7, 0.1};
    add_scored(&p, y, s, 3);
    dw_perf_add_outcome(&p, "1", "0", 0, 0, 0);
    struct dw_buf b1, b2;
    dw_buf_init(&b1);
    dw_buf_init(&b2);
    dw_perf_encode(&p, &b1);
    struct dw_reader rd;
    dw_reader_init(&rd, b1.data, b1.len);
    assert_int_equal(dw_perf_decode(&back, &rd), 0);
    assert_int_equal(rd.pos, b1.len);
    dw_perf_encode(&back, &b2);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    assert_double_exact(dw_perf_roc_auc(&back, NULL), dw_perf_roc_auc(&p, NULL));
    assert_double_exact(dw_perf_latency_quantile(&back, 0.5), dw_perf_latency_quantile(&p, 0.5));
    for (size_t cut = 0; cut < b1.len; cut += 7) {
        struct dw_perf t;
        dw_perf_init(&t);
        dw_reader_init(&rd, b1.data, cut);
        assert_int_equal(dw_perf_decode(&t, &rd), -1);
        dw_perf_free(&t);
    }
    dw_buf_free(&b1);
    dw_buf_free(&b2);
    dw_perf_free(&p);
    dw_perf_free(&back);
}

/* The encoding of a perf with no pairs: histogram bins (bin, count) and class-0 scores. */
static void perf_blob(struct dw_buf *b, uint8_t has_hist, const uint16_t *bins, uint16_t n_bins,
                      const double *scores, uint32_t n_scores)
{
    dw_buf_put_u32(b, 0); /* pairs */
    dw_buf_put_u64(b, 0); /* pairs_other */
    dw_buf_put_u8(b, has_hist);
    if (has_hist == 1) {
        dw_buf_put_u16(b, n_bins);
        for (uint16_t i = 0; i < n_bins; i++) {
            dw_buf_put_u16(b, bins[i]);
            dw_buf_put_u64(b, 1);
        }
    }
    dw_buf_put_u8(b, 0); /* exact */
    dw_buf_put_u32(b, n_scores);
    for (uint32_t i = 0; i < n_scores; i++) {
        dw_buf_put_f64(b, scores[i]);
    }
    dw_buf_put_u32(b, 0); /* class 1: none */
    dw_buf_put_u32(b, 0); /* no latency sketch */
}

/* @returns dw_perf_decode's result on the blob; the message (if any) into msg. */
static int perf_decode_blob(const struct dw_buf *b, char *msg, size_t msg_size)
{
    uint8_t *copy = malloc(b->len);
    assert_non_null(copy);
    memcpy(copy, b->data, b->len);
    struct dw_perf t;
    dw_perf_init(&t);
    struct dw_reader rd;
    dw_reader_init(&rd, copy, b->len);
    int rc = dw_perf_decode(&t, &rd);
    if (rc == 0 && rd.pos != rd.len) {
        rc = -2;
    }
    snprintf(msg, msg_size, "%s", rd.msg);
    dw_perf_free(&t);
    free(copy);
    return rc;
}

/*
 * Stored scores outside [0, 1] (or NaN: the sort assumes none), a histogram bin given twice
 * (the second count silently won) or out of range, unknown flag values and a pair count far
 * beyond the bytes present are refused with a message.
 */
static void test_decode_hostile(void **state)
{
    (void)state;
    char msg[DW_READER_MSG];
    struct dw_buf b;
    dw_buf_init(&b);
    const uint16_t bins[] = {3, 700};
    const double ok_scores[] = {0.0, 0.25, 1.0};
    perf_blob(&b, 1, bins, 2, ok_scores, 3);
    assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), 0);
    const double bad_scores[][1] = {{2.5}, {-0.5}, {NAN}};
    for (size_t i = 0; i < 3; i++) {
        dw_buf_reset(&b);
        perf_blob(&b, 0, NULL, 0, bad_scores[i], 1);
        assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), -1);
        assert_contains(msg, "outside [0, 1]");
    }
    const uint16_t twice[] = {5, 5}, beyond[] = {2000};
    dw_buf_reset(&b);
    perf_blob(&b, 1, twice, 2, NULL, 0);
    assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), -1);
    assert_contains(msg, "score bin 5");
    dw_buf_reset(&b);
    perf_blob(&b, 1, beyond, 1, NULL, 0);
    assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), -1);
    assert_contains(msg, "score bin 2000");
    dw_buf_reset(&b);
    perf_blob(&b, 2, NULL, 0, NULL, 0);
    assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), -1);
    assert_contains(msg, "histogram flag 2");
    /* 4 Gi - 1 pairs announced in a 40-byte record */
    dw_buf_reset(&b);
    perf_blob(&b, 0, NULL, 0, NULL, 0);
    memset(b.data, 0xFF, 4);
    assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), -1);
    assert_contains(msg, "4294967295 class pairs");
    dw_buf_free(&b);
}

/* Encodes p into b (reset first). */
static void encode_to(const struct dw_perf *p, struct dw_buf *b)
{
    dw_buf_reset(b);
    dw_perf_encode(p, b);
}

/* n negative scores from seed s, into p one at a time */
static void add_negatives(struct dw_perf *p, uint32_t n, uint64_t *s)
{
    for (uint32_t i = 0; i < n; i++) {
        dw_perf_add_outcome(p, "0", "0", 0, 1, (double)(dw_splitmix64(s) >> 11) * 0x1p-53);
    }
}

/* The room for n exact scores of a class: from 16, grown by half, at most DW_PERF_EXACT_SCORES. */
static uint32_t grown_room(uint32_t n)
{
    uint32_t cap = 16;
    while (cap < n) {
        cap = cap + cap / 2 < DW_PERF_EXACT_SCORES ? cap + cap / 2 : DW_PERF_EXACT_SCORES;
    }
    return cap;
}

/*
 * Merged and decoded scores are copied a class at a time, not added one by one: the same
 * contents (exact, or binned from the score that passes DW_PERF_EXACT_SCORES on) and the same
 * array sizes as adding each score; a bad score anywhere in a record is still refused.
 */
static void test_scores_at_once(void **state)
{
    (void)state;
    const uint32_t sizes[][2] = {{10, 20}, {700, 324}, {700, 325}, {700, 700}, {1024, 1}};
    struct dw_buf want, got;
    dw_buf_init(&want);
    dw_buf_init(&got);
    for (size_t t = 0; t < DW_ARRAY_SIZE(sizes); t++) {
        struct dw_perf one, a, b;
        dw_perf_init(&one);
        dw_perf_init(&a);
        dw_perf_init(&b);
        uint64_t s1 = t, s2 = t;
        add_negatives(&one, sizes[t][0], &s1);
        add_negatives(&one, sizes[t][1], &s1);
        add_negatives(&a, sizes[t][0], &s2);
        add_negatives(&b, sizes[t][1], &s2);
        dw_perf_merge(&a, &b);
        assert_int_equal(a.inexact, one.inexact);
        if (!one.inexact) { /* grown by half from 16 as scores came */
            assert_int_equal(one.cap_exact[0], grown_room(one.n_exact[0]));
        }
        assert_int_equal(a.cap_exact[0], one.cap_exact[0]);
        encode_to(&one, &want);
        encode_to(&a, &got);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);

        struct dw_perf back;
        dw_perf_init(&back);
        struct dw_reader rd;
        dw_reader_init(&rd, want.data, want.len);
        assert_int_equal(dw_perf_decode(&back, &rd), 0);
        assert_int_equal(back.cap_exact[0], one.inexact ? 0 : one.cap_exact[0]);
        encode_to(&back, &got);
        assert_memory_equal(got.data, want.data, want.len);
        dw_perf_free(&back);
        dw_perf_free(&one);
        dw_perf_free(&a);
        dw_perf_free(&b);
    }
    char msg[DW_READER_MSG];
    double scores[40];
    for (int i = 0; i < 40; i++) {
        scores[i] = i / 40.0;
    }
    scores[23] = 1.5;
    dw_buf_reset(&want);
    perf_blob(&want, 0, NULL, 0, scores, 40);
    assert_int_equal(perf_decode_blob(&want, msg, sizeof(msg)), -1);
    assert_contains(msg, "score 1.5 outside [0, 1]");
    dw_buf_free(&want);
    dw_buf_free(&got);
}

/*
 * Scores stay exact, in arrays grown as they come, with no histogram (a window of a partition
 * holds a few hundred scores: the dense 16 KB histogram and two 8 KB arrays it used to
 * allocate at its first score were most of its memory); past DW_PERF_EXACT_SCORES of a class
 * they go into the histogram, the exact ones with them. A record of an older version, with
 * the histogram beside exact scores, decodes to the exact scores alone.
 */
static void test_scores_lazy_histogram(void **state)
{
    (void)state;
    struct dw_perf p;
    dw_perf_init(&p);
    dw_perf_add_outcome(&p, "1", "1", 1, 1, 0.75);
    dw_perf_add_outcome(&p, "0", "0", 0, 1, 0.25);
    dw_perf_add_outcome(&p, "0", "1", 1, 1, 0.5);
    assert_null(p.hist);
    assert_true(p.cap_exact[1] >= 2 && p.cap_exact[1] < DW_PERF_EXACT_SCORES);
    assert_int_equal(p.n_pairs, 3);
    assert_int_equal(p.pair_slots, 8); /* the pair table too starts small */
    assert_double_exact(dw_perf_roc_auc(&p, NULL), 1.0);
    for (int i = 0; i < DW_PERF_EXACT_SCORES; i++) {
        dw_perf_add_outcome(&p, "0", "0", 0, 1, 0.1);
    }
    assert_true(p.inexact);
    assert_null(p.exact[0]);
    assert_non_null(p.hist);
    uint64_t neg = 0, pos = 0;
    for (size_t b = 0; b < DW_PERF_SCORE_BINS; b++) {
        neg += p.hist[b];
        pos += p.hist[DW_PERF_SCORE_BINS + b];
    }
    assert_int_equal(neg, DW_PERF_EXACT_SCORES + 1);
    assert_int_equal(pos, 2);
    dw_perf_free(&p);

    /* version 4 and before: histogram and exact scores; the histogram is rebuilt when needed */
    struct dw_buf b;
    dw_buf_init(&b);
    const uint16_t bins[] = {250, 1750};
    dw_buf_put_u32(&b, 0);
    dw_buf_put_u64(&b, 0);
    dw_buf_put_u8(&b, 1);
    dw_buf_put_u16(&b, 2);
    for (int i = 0; i < 2; i++) {
        dw_buf_put_u16(&b, bins[i]);
        dw_buf_put_u64(&b, 1);
    }
    dw_buf_put_u8(&b, 0);
    dw_buf_put_u32(&b, 1);
    dw_buf_put_f64(&b, 0.25);
    dw_buf_put_u32(&b, 1);
    dw_buf_put_f64(&b, 0.75);
    dw_buf_put_u32(&b, 0);
    struct dw_reader rd;
    dw_reader_init(&rd, b.data, b.len);
    dw_perf_init(&p);
    assert_int_equal(dw_perf_decode(&p, &rd), 0);
    assert_int_equal(rd.pos, rd.len);
    assert_null(p.hist);
    assert_int_equal(p.n_exact[0], 1);
    assert_double_exact(dw_perf_roc_auc(&p, NULL), 1.0);
    struct dw_buf again;
    dw_buf_init(&again);
    dw_perf_encode(&p, &again);
    assert_true(again.len == b.len - 2 - 2 * 10); /* no histogram written */
    dw_buf_free(&again);
    dw_perf_free(&p);
    /* inexact without its histogram: corrupt */
    dw_buf_reset(&b);
    perf_blob(&b, 0, NULL, 0, NULL, 0);
    b.data[4 + 8 + 1] = 1; /* the inexact flag, after pairs, pairs_other and has_hist */
    char msg[DW_READER_MSG];
    assert_int_equal(perf_decode_blob(&b, msg, sizeof(msg)), -1);
    assert_contains(msg, "inexact scores without a histogram");
    dw_buf_free(&b);
}

/* The pair table grows to the bound; pairs beyond it are counted in pairs_other. */
static void test_pairs_bound(void **state)
{
    (void)state;
    struct dw_perf p, q;
    dw_perf_init(&p);
    dw_perf_init(&q);
    char pred[16], label[16];
    for (int i = 0; i < DW_PERF_MAX_PAIRS + 500; i++) {
        snprintf(pred, sizeof(pred), "p%d", i % 40);
        snprintf(label, sizeof(label), "l%d", i);
        dw_perf_add_outcome(&p, pred, label, 0, 0, 0.0);
        dw_perf_add_outcome(&p, pred, label, 0, 0, 0.0); /* the same pair again */
    }
    assert_int_equal(p.n_pairs, DW_PERF_MAX_PAIRS);
    assert_int_equal(p.pair_slots, 2 * DW_PERF_MAX_PAIRS);
    assert_int_equal(p.pairs_other, 2 * 500);
    uint64_t total = p.pairs_other;
    for (size_t i = 0; i < p.pair_slots; i++) {
        total += p.pairs[i].pred ? p.pairs[i].count : 0;
    }
    assert_int_equal(total, 2 * (DW_PERF_MAX_PAIRS + 500));
    dw_perf_merge(&q, &p);
    assert_int_equal(q.n_pairs, DW_PERF_MAX_PAIRS);
    assert_int_equal(q.pairs_other, p.pairs_other);
    dw_perf_free(&p);
    dw_perf_free(&q);
}

/* The scores by true class as the calibration reads them: exact ones sorted, weight 1; once
 * inexact, the non-empty bins at their centres with their counts. And the class count. */
static void test_score_view(void **state)
{
    (void)state;
    struct dw_perf p;
    dw_perf_init(&p);
    const int y[] = {1, 0, 1, 1, 0};
    const double s[] = {0.9, 0.3, 0.2, 0.9, 0.1};
    add_scored(&p, y, s, 5);
    double *v;
    uint64_t *w;
    assert_int_equal(dw_perf_score_view(&p, 1, &v, &w), 3);
    assert_double_exact(v[0], 0.2);
    assert_double_exact(v[1], 0.9);
    assert_double_exact(v[2], 0.9);
    assert_int_equal(w[0] + w[1] + w[2], 3);
    free(v);
    free(w);
    assert_int_equal(dw_perf_n_classes(&p, 3), 2);
    dw_perf_add_outcome(&p, "1", "2", 0, 0, 0.0);
    assert_int_equal(dw_perf_n_classes(&p, 3), 3);
    /* past DW_PERF_EXACT_SCORES negatives: binned */
    for (int i = 0; i < DW_PERF_EXACT_SCORES; i++) {
        dw_perf_add_outcome(&p, "0", "0", 0, 1, 0.1005);
    }
    size_t n = dw_perf_score_view(&p, 0, &v, &w);
    assert_int_equal(n, 2); /* bin 100 (0.1 and 0.1005: [0.100, 0.101)) and bin 300 (0.3) */
    assert_near(v[0], 0.1005, 1e-12);
    assert_int_equal(w[0], DW_PERF_EXACT_SCORES + 1);
    assert_near(v[1], 0.3005, 1e-12);
    assert_int_equal(w[1], 1);
    free(v);
    free(w);
    dw_perf_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_exact),      cmocka_unit_test(test_auc_histogram),
        cmocka_unit_test(test_f1_macro_micro), cmocka_unit_test(test_latency_and_codec),
        cmocka_unit_test(test_decode_hostile), cmocka_unit_test(test_scores_lazy_histogram),
        cmocka_unit_test(test_scores_at_once), cmocka_unit_test(test_pairs_bound),
        cmocka_unit_test(test_score_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
