/*
 * test_common.c - the shared helpers: RFC 3339 parsing and formatting, durations, the FNV-1a
 * hash and the double sort; the one double formatter, and that every output writing doubles
 * (metrics, config dump, class text) writes the same text with it; the string builder.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <float.h>
#include <stdio.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/core/dw_metrics.h"

#include "dw_test.h"

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms = 0;
    const char *t = "2026-11-22T10:15:03.120Z";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1795342503120LL); /* date -d 2026-11-22T10:15:03Z +%s -> 1795342503 */
    t = "2026-11-22T12:15:03.12+02:00";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1795342503120LL);
    t = "1969-12-31T23:59:59.5Z";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, -500);
    /* 29 February only in a leap year (2024, 2000; not 2026, 1900, 2100): a day that does not
     * exist is refused, not read as 1 March */
    const char *leap[] = {"2024-02-29T00:00:00Z", "2000-02-29T12:00:00Z"};
    for (size_t i = 0; i < sizeof(leap) / sizeof(leap[0]); i++) {
        assert_int_equal(dw_time_parse_rfc3339(leap[i], strlen(leap[i]), &ms), 0);
    }
    t = "2024-02-29T00:00:00Z";
    assert_int_equal(dw_time_parse_rfc3339(t, strlen(t), &ms), 0);
    assert_int_equal(ms, 1709164800000LL); /* date -d 2024-02-29T00:00:00Z +%s */
    const char *bad[] = {"2026-02-30T00:00:00Z",  "2026-02-29T00:00:00Z",
                         "1900-02-29T00:00:00Z",  "2100-02-29T00:00:00Z",
                         "2026-11-22T10:15:03",   "2026-11-22 10:15Z",
                         "2026-11-22T10:15:03.Z", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dw_time_parse_rfc3339(bad[i], strlen(bad[i]), &ms), -1);
    }
    /* the date and time separators: T, t or a space; nothing else, a NUL byte neither */
    const char *seps[] = {"2026-11-22t10:15:03.12Z", "2026-11-22 10:15:03.12Z"};
    for (size_t i = 0; i < sizeof(seps) / sizeof(seps[0]); i++) {
        assert_int_equal(dw_time_parse_rfc3339(seps[i], strlen(seps[i]), &ms), 0);
        assert_int_equal(ms, 1795342503120LL);
    }
    const char *bad_seps[] = {"2026-11-22X10:15:03Z", "2026/11-22T10:15:03Z",
                              "2026-11-22T10-15:03Z", "2026-11-22T10:15:03+02-00"};
    for (size_t i = 0; i < sizeof(bad_seps) / sizeof(bad_seps[0]); i++) {
        assert_int_equal(dw_time_parse_rfc3339(bad_seps[i], strlen(bad_seps[i]), &ms), -1);
    }
    const char nul[] = "2026-11-22\00010:15:03Z";
    assert_int_equal(dw_time_parse_rfc3339(nul, sizeof(nul) - 1, &ms), -1);
    /* every byte of the fixed part replaced by one that does not belong there, and every
     * prefix: refused */
    const char *good = "2026-11-22T10:15:03.120Z";
    for (size_t i = 0; i < 19; i++) {
        const char wrong[] = {'/',     ':', 'a',        '-',        '0' - 1,
                              '9' + 1, 'T', (char)0xb2, (char)0xc5, (char)0xff};
        for (size_t k = 0; k < sizeof(wrong); k++) {
            char t2[32];
            strcpy(t2, good);
            int digit_place = i != 4 && i != 7 && i != 10 && i != 13 && i != 16;
            if (wrong[k] == t2[i] || (!digit_place && wrong[k] == '3')) {
                continue;
            }
            t2[i] = digit_place ? wrong[k] : '3';
            if (dw_time_parse_rfc3339(t2, strlen(t2), &ms) != -1) {
                fail_msg("accepted %s", t2);
            }
        }
    }
    const char *goods[] = {good, "2026-11-22T12:15:03.12+02:00", "2026-11-22T08:15:03-02:00"};
    for (size_t g = 0; g < sizeof(goods) / sizeof(goods[0]); g++) {
        assert_int_equal(dw_time_parse_rfc3339(goods[g], strlen(goods[g]), &ms), 0);
        for (size_t n = 0; n < strlen(goods[g]); n++) {
            char *prefix = malloc(n ? n : 1); /* exactly n bytes: ASan sees a read past them */
            memcpy(prefix, goods[g], n);
            if (dw_time_parse_rfc3339(prefix, n, &ms) != -1) {
                fail_msg("accepted %zu bytes of %s", n, goods[g]);
            }
            free(prefix);
        }
    }
    const char *bad_offsets[] = {"2026-11-22T10:15:03+0a:00",  "2026-11-22T10:15:03+02:0x",
                                 "2026-11-22T10:15:03+24:00",  "2026-11-22T10:15:03+02:60",
                                 "2026-11-22T10:15:03+02:000", "2026-11-22T10:15:03+2:00"};
    for (size_t i = 0; i < sizeof(bad_offsets) / sizeof(bad_offsets[0]); i++) {
        if (dw_time_parse_rfc3339(bad_offsets[i], strlen(bad_offsets[i]), &ms) != -1) {
            fail_msg("accepted %s", bad_offsets[i]);
        }
    }
    /* every field's value at every digit: instants over the years 1..9999 formatted and read
     * back, each digit of each field varied */
    uint64_t seed = 1;
    int64_t lo = -62135596800000LL, hi = 253402300799999LL; /* 0001-01-01 .. 9999-12-31 */
    for (int i = 0; i < 200000; i++) {
        int64_t want = lo + (int64_t)(dw_splitmix64(&seed) % (uint64_t)(hi - lo + 1));
        char text[40];
        dw_time_format_rfc3339(want, text, sizeof(text));
        if (dw_time_parse_rfc3339(text, strlen(text), &ms) != 0 || ms != want) {
            fail_msg("%s read as %lld, not %lld", text, (long long)ms, (long long)want);
        }
    }
    char buf[40];
    dw_time_format_rfc3339(1795342503120LL, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-22T10:15:03.120Z");
    dw_time_format_rfc3339(-500, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.500Z");
    dw_time_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

static void test_durations(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(dw_duration_parse("1500ms", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(dw_duration_parse("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(dw_duration_parse("2", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(dw_duration_parse("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(dw_duration_parse("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(dw_duration_parse("10x", &ms), -1);
    assert_int_equal(dw_duration_parse("-1s", &ms), -1);
    assert_int_equal(dw_duration_parse("", &ms), -1);
}

static void test_str_is(void **state)
{
    (void)state;
    /* the stored strings in buffers longer than they are, as a table's heap copies would be
     * (a literal's exact size makes GCC's bounds check see c[len] past it on a path that
     * returns before reading it) */
    char gb[8] = "GB", gbr[8] = "GBR", g[8] = "G", a[8] = "a", empty[8] = "";
    assert_true(dw_str_is(gb, "GB", 2));
    assert_true(dw_str_is(empty, "x", 0));
    assert_true(dw_str_is(gb, "GBR", 2)); /* the len bytes, not what follows them */
    assert_false(dw_str_is(gb, "GBR", 3));
    assert_false(dw_str_is(gbr, "GB", 2));
    assert_false(dw_str_is(g, "GB", 2));
    assert_false(dw_str_is(gb, "Gb", 2));
    assert_false(dw_str_is(empty, "x", 1));
    assert_false(dw_str_is(a, "a\0b", 3)); /* a NUL in s: never equal to a C string */
    assert_false(dw_str_is(a, "a\0", 2));
}

static void test_fnv1a(void **state)
{
    (void)state;
    /* Published FNV-1a 64 test vectors. */
    assert_int_equal(dw_hash64("", 0), 0xcbf29ce484222325ULL);
    assert_int_equal(dw_hash64("a", 1), 0xaf63dc4c8601ec8cULL);
    assert_int_equal(dw_hash64("foobar", 6), 0x85944171f73967e8ULL);
    /* Fingerprints are stored in Redis (joined records): pinned, so that a change that would
     * make every stored entry unrecognisable fails here. */
    assert_int_equal(dw_fp64("", 0), 0x6393d51c06c618dcULL);
    assert_int_equal(dw_fp64("a", 1), 0x79b1cbb30c974044ULL);
    assert_int_equal(dw_fp64("a\0", 2), 0xd0a251c2ce76a3d7ULL);
    assert_int_equal(dw_fp64("p-42-1234567", 12), 0x18de957c718f371cULL);
    /* and at every length to 40 (every way a tail can end a word), folded into one value */
    unsigned char bytes[40];
    for (size_t i = 0; i < sizeof(bytes); i++) {
        bytes[i] = (unsigned char)(i * 37 + 11);
    }
    uint64_t fold = 0;
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        fold = dw_fmix64(fold ^ dw_fp64(bytes, n));
    }
    assert_int_equal(fold, 0x3a68557f3af9ecffULL);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_sort_doubles(void **state)
{
    (void)state;
    uint64_t s = 42;
    for (size_t n = 0; n < 3000; n = n * 2 + 1) {
        double *v = malloc((n + 1) * sizeof(double)), *w = malloc((n + 1) * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double x = (double)(int64_t)(s >> 20) / 1e6;
            v[i] = (i % 7 == 0) ? -x : (i % 11 == 0 ? 0.0 : x);
            if (i % 13 == 0) {
                v[i] = i % 2 ? INFINITY : -INFINITY;
            }
            if (i % 17 == 0) {
                v[i] = 1e-310; /* subnormal */
            }
        }
        memcpy(w, v, n * sizeof(double));
        dw_sort_doubles(v, n);
        qsort(w, n, sizeof(double), cmp);
        for (size_t i = 0; i < n; i++) {
            assert_double_exact(v[i], w[i]);
        }
        free(v);
        free(w);
    }
}

/* Numbers read back from Redis: digits only, range-checked; anything else is corruption. */
static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v = 7;
    static const struct {
        const char *text;
        int64_t min, max, want; /* want is ignored when ok is 0 */
        int ok;
    } cases[] = {
        {"0", 0, 10, 0, 1},
        {"10", 0, 10, 10, 1},
        {"-1", -1, 10, -1, 1},
        {"007", 0, 10, 7, 1},
        {"9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX, 1},
        {"-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN, 1},
        {"9223372036854775808", INT64_MIN, INT64_MAX, 0, 0}, /* overflow */
        {"-9223372036854775809", INT64_MIN, INT64_MAX, 0, 0},
        {"99999999999999999999999", INT64_MIN, INT64_MAX, 0, 0},
        {"11", 0, 10, 0, 0},  /* above max */
        {"-2", -1, 10, 0, 0}, /* below min */
        {"", 0, 10, 0, 0},
        {"-", -10, 10, 0, 0},
        {"+5", 0, 10, 0, 0},
        {" 5", 0, 10, 0, 0},
        {"5 ", 0, 10, 0, 0},
        {"12garbage", 0, 100, 0, 0},
        {"garbage", 0, 100, 0, 0},
        {"0x10", 0, 100, 0, 0},
        {"1e3", 0, 10000, 0, 0},
        {"1.0", 0, 10, 0, 0},
        {"--1", -10, 10, 0, 0},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        v = 7;
        int rc = dw_parse_i64(cases[i].text, strlen(cases[i].text), cases[i].min, cases[i].max, &v);
        if (rc != (cases[i].ok ? 0 : -1) || (cases[i].ok && v != cases[i].want) ||
            (!cases[i].ok && v != 7)) {
            fail_msg("\"%s\": rc %d value %lld", cases[i].text, rc, (long long)v);
        }
    }
    /* Binary-safe: the length counts, an embedded NUL is not a digit. */
    assert_int_equal(dw_parse_i64("123", 2, 0, 1000, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(dw_parse_i64("1\0003", 3, 0, 1000, &v), -1);
    assert_int_equal(dw_parse_i64(NULL, 0, 0, 1000, &v), -1);
}

/* Tricky doubles and the one text dw_fmt_double() gives each (see dw_common.h). */
static const struct {
    double v;
    const char *text;
} fmt_cases[] = {
    {0.1, "0.1"},
    {1e21, "1e+21"},
    {5e-324, "5e-324"},
    {DBL_MAX, "1.7976931348623157e+308"},
    {2.2250738585072014e-308, "2.2250738585072014e-308"},
    {-0.0, "-0"},
    {0.0, "0"},
    {123456789.125, "123456789.125"},
    {1.0 / 3.0, "0.3333333333333333"},
    {0.30000000000000004, "0.30000000000000004"},
    {42, "42"},
    {-17, "-17"},
    {100, "100"},
    {-1.5, "-1.5"},
    {1e15, "1000000000000000"},
    {1e16, "1e+16"},
    {9007199254740994.0, "9007199254740994"},
    {1e-4, "0.0001"},
    {1e-5, "1e-05"},
    {2.5e-7, "2.5e-07"},
    {6.02214076e23, "6.02214076e+23"},
};

static void test_fmt_double(void **state)
{
    (void)state;
    char buf[DW_FMT_DOUBLE_SIZE];
    for (size_t i = 0; i < DW_ARRAY_SIZE(fmt_cases); i++) {
        size_t n = dw_fmt_double(fmt_cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, fmt_cases[i].text);
        assert_int_equal(n, strlen(fmt_cases[i].text));
        /* reads back to the same double, sign of zero included */
        double back = strtod(buf, NULL);
        assert_memory_equal(&back, &fmt_cases[i].v, sizeof(back));
    }
    dw_fmt_double(NAN, buf, sizeof(buf));
    assert_string_equal(buf, "NaN");
    dw_fmt_double(INFINITY, buf, sizeof(buf));
    assert_string_equal(buf, "+Inf");
    dw_fmt_double(-INFINITY, buf, sizeof(buf));
    assert_string_equal(buf, "-Inf");
    /* a short buffer gets a cut, terminated text */
    assert_int_equal(dw_fmt_double(123456789.125, buf, 5), 4);
    assert_string_equal(buf, "1234");
    assert_int_equal(dw_fmt_double(1.0, buf, 0), 0);
    /* the shortest: no fewer digits read back (checked against %.*g at every precision) */
    uint64_t seed = 9;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++) {
            bits = (bits << 16) ^ (uint64_t)(dw_rand_u01(&seed) * 65536.0);
        }
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v)) {
            continue;
        }
        dw_fmt_double(v, buf, sizeof(buf));
        assert_true(strtod(buf, NULL) == v);
        int digits = 0;
        for (const char *p = buf; *p && *p != 'e'; p++) {
            digits += *p >= '0' && *p <= '9';
        }
        char g[40];
        int shortest = 17;
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(g, sizeof(g), "%.*g", prec, v);
            if (strtod(g, NULL) == v) {
                shortest = prec;
                break;
            }
        }
        /* fixed notation writes the zeros between the digits and the point ("0.0001",
         * "1000") */
        if (strchr(buf, 'e') != NULL) {
            assert_int_equal(digits, shortest);
        } else {
            assert_true(digits >= shortest);
        }
    }
}

/* Copies the rest of the line after `key` in text into out (64 bytes). */
static void value_after(const char *text, const char *key, char *out)
{
    const char *at = strstr(text, key);
    if (at == NULL) {
        fail_msg("no \"%s\" in:\n%s", key, text);
    }
    at += strlen(key);
    int n = (int)strcspn(at, "\n");
    assert_true(n < 64);
    snprintf(out, 64, "%.*s", n, at);
}

/* The value text of a one-gauge metrics scrape (static buffer). */
static const char *metrics_text(double v)
{
    static char out[64];
    dw_metrics_reset();
    dw_metric_set(dw_metrics_series("driftwatch_v", "v.", DW_METRIC_GAUGE, NULL), v);
    char *text = dw_metrics_render();
    value_after(text, "\ndriftwatch_v ", out);
    free(text);
    dw_metrics_reset();
    return out;
}

/* The text of detectors.kl_threshold in a config dump (static buffer). */
static const char *dump_text(struct dw_config *cfg, double v)
{
    static char out[64];
    cfg->kl_threshold = v;
    char *dump = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&dump, &len);
    assert_non_null(fp);
    dw_config_dump(cfg, fp);
    assert_int_equal(fclose(fp), 0);
    value_after(dump, "kl_threshold: ", out);
    /* and the loader reads the dump back to the same double (the key wants > 0) */
    if (v > 0) {
        struct dw_config back;
        char err[256];
        if (dw_config_load_string(&back, dump, err, sizeof(err)) != 0) {
            fail_msg("the dump of %s does not load: %s", out, err);
        }
        assert_true(back.kl_threshold == v);
        dw_config_free(&back);
    }
    free(dump);
    return out;
}

/* One double, one text: the metrics scrape, the config dump and the class text agree with
 * dw_fmt_double() (metrics write -0 as 0; class text adds ".0" to integral values, as
 * Python's repr()), and every text reads back to the same double. */
static void test_outputs_agree(void **state)
{
    (void)state;
    struct dw_config cfg;
    char err[256];
    if (dw_config_load_string(&cfg, "kafka: {bootstrap.servers: 127.0.0.1:9092}\nmodels: {m: {}}\n",
                              err, sizeof(err)) != 0) {
        fail_msg("config: %s", err);
    }
    for (size_t i = 0; i < DW_ARRAY_SIZE(fmt_cases); i++) {
        double v = fmt_cases[i].v;
        const char *want = fmt_cases[i].text;
        assert_string_equal(metrics_text(v), v == 0 ? "0" : want);
        assert_string_equal(dump_text(&cfg, v), want);
        char cls[DW_FMT_DOUBLE_SIZE];
        dw_decode_real_text(v, cls, sizeof(cls));
        if (v == floor(v) && fabs(v) < 1e16) {
            assert_int_equal(strlen(cls), strlen(want) + 2);
            assert_memory_equal(cls, want, strlen(want));
            assert_string_equal(cls + strlen(want), ".0");
        } else {
            assert_string_equal(cls, want);
        }
        assert_true(strtod(metrics_text(v), NULL) == v);
        assert_true(strtod(dump_text(&cfg, v), NULL) == v);
        assert_true(strtod(cls, NULL) == v);
    }
    assert_string_equal(metrics_text(NAN), "NaN");
    assert_string_equal(metrics_text(INFINITY), "+Inf");
    assert_string_equal(metrics_text(-INFINITY), "-Inf");
    dw_config_free(&cfg);
}

/* dw_sbuf: appends, printf past the room left, fill, reset keeping memory, take and free. */
static void test_sbuf(void **state)
{
    (void)state;
    struct dw_sbuf sb = {0};
    dw_sbuf_reset(&sb); /* on an empty buffer: nothing to keep */
    assert_null(sb.s);
    dw_sbuf_adds(&sb, "ab");
    dw_sbuf_add(&sb, "cdef", 2);
    dw_sbuf_printf(&sb, "-%d-", 42);
    assert_string_equal(sb.s, "abcd-42-");
    assert_int_equal(sb.len, 8);
    /* longer than the room left: grows and prints again */
    char big[300];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dw_sbuf_printf(&sb, "%s!", big);
    assert_int_equal(sb.len, 8 + 299 + 1);
    assert_int_equal(sb.s[sb.len - 1], '!');
    assert_int_equal(sb.s[sb.len], '\0');
    dw_sbuf_fill(&sb, 'x', 3);
    assert_int_equal(sb.len, 311);
    assert_string_equal(sb.s + 308, "xxx");
    char *kept = sb.s;
    size_t cap = sb.cap;
    dw_sbuf_reset(&sb);
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.s, "");
    assert_ptr_equal(sb.s, kept);
    assert_int_equal(sb.cap, cap);
    dw_sbuf_printf(&sb, "%s", "again");
    assert_string_equal(sb.s, "again");
    dw_sbuf_fill(&sb, 'z', 0);
    assert_string_equal(sb.s, "again");
    char *t = dw_sbuf_take(&sb);
    assert_string_equal(t, "again");
    assert_null(sb.s);
    free(t);
    t = dw_sbuf_take(&sb);
    assert_string_equal(t, "");
    free(t);
    dw_sbuf_adds(&sb, "x");
    dw_sbuf_free(&sb);
    assert_null(sb.s);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 0);
}

/* An enum's name table: exact names only, NULL and unknown names are -1. */
static void test_name_index(void **state)
{
    (void)state;
    static const char *const names[] = {"debug", "info", "warn"};
    assert_int_equal(dw_name_index(names, DW_ARRAY_SIZE(names), "debug"), 0);
    assert_int_equal(dw_name_index(names, DW_ARRAY_SIZE(names), "warn"), 2);
    assert_int_equal(dw_name_index(names, DW_ARRAY_SIZE(names), "Warn"), -1);
    assert_int_equal(dw_name_index(names, DW_ARRAY_SIZE(names), "war"), -1);
    assert_int_equal(dw_name_index(names, DW_ARRAY_SIZE(names), ""), -1);
    assert_int_equal(dw_name_index(names, DW_ARRAY_SIZE(names), NULL), -1);
    assert_int_equal(dw_name_index(names, 2, "warn"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),      cmocka_unit_test(test_durations),
        cmocka_unit_test(test_str_is),       cmocka_unit_test(test_fnv1a),
        cmocka_unit_test(test_sort_doubles), cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_fmt_double),   cmocka_unit_test(test_outputs_agree),
        cmocka_unit_test(test_sbuf),         cmocka_unit_test(test_name_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
