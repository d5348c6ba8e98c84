/*
 * test_codec.c - the checkpoint byte codec: round trips of every width (negative i64, NaN
 * payloads, -0.0, infinities, strings with embedded NUL), the exact little-endian byte layout
 * (written out by hand here, independently of the code), and the reader's error contract on
 * truncated input: err set, the failing and every later read return 0, nothing read past the
 * end, and the checked helpers (counts against the bytes left, names without NUL, sums that
 * would wrap, the first failure's message). Readers run over exactly-sized heap copies so that
 * AddressSanitizer catches an overread.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_codec.h"

#include "dw_test.h"

/* Bytes written in the growth test (bytes): well past the initial capacity. */
#define GROWTH_BYTES 100000

/* An exactly-sized heap copy of the first len bytes (so ASan sees any read past len). */
static uint8_t *heap_copy(const void *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len) {
        memcpy(p, data, len);
    }
    return p;
}

static uint64_t f64_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double bits_f64(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static void test_layout_little_endian(void **state)
{
    (void)state;
    struct dw_buf b;
    dw_buf_init(&b);
    dw_buf_put_u8(&b, 0xAB);
    dw_buf_put_u16(&b, 0x0102);
    dw_buf_put_u32(&b, 0x01020304u);
    dw_buf_put_u64(&b, 0x0102030405060708ULL);
    dw_buf_put_i64(&b, -2);  /* two's complement: FE FF FF FF FF FF FF FF */
    dw_buf_put_f64(&b, 1.0); /* IEEE-754 0x3FF0000000000000 */
    dw_buf_put_str(&b, "hi", 2);
    static const uint8_t want[] = {
        0xAB,                                           /* u8 */
        0x02, 0x01,                                     /* u16 */
        0x04, 0x03, 0x02, 0x01,                         /* u32 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* u64 */
        0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, /* i64 -2 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, /* f64 1.0 */
        0x02, 0x00, 0x00, 0x00, 'h',  'i',              /* str: u32 length + bytes */
    };
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    /* Reading the hand-written bytes gives the values back. */
    struct dw_reader rd;
    dw_reader_init(&rd, want, sizeof(want));
    assert_int_equal(dw_rd_u8(&rd), 0xAB);
    assert_int_equal(dw_rd_u16(&rd), 0x0102);
    assert_int_equal(dw_rd_u32(&rd), 0x01020304u);
    assert_int_equal(dw_rd_u64(&rd), 0x0102030405060708ULL);
    assert_int_equal(dw_rd_i64(&rd), -2);
    assert_double_exact(dw_rd_f64(&rd), 1.0);
    const char *s = NULL;
    assert_int_equal(dw_rd_str(&rd, &s), 2);
    assert_memory_equal(s, "hi", 2);
    assert_int_equal(rd.err, 0);
    assert_int_equal(rd.pos, sizeof(want));
    dw_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_round_trip_integers(void **state)
{
    (void)state;
    static const uint8_t u8s[] = {0, 1, 0x7F, 0x80, 0xFF};
    static const uint16_t u16s[] = {0, 1, 0x00FF, 0x0100, 0x7FFF, 0x8000, 0xFFFF};
    static const uint32_t u32s[] = {0, 1, 0xFF, 0x100, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu};
    static const uint64_t u64s[] = {
        0, 1, 0xFFFFFFFFULL, 0x100000000ULL, INT64_MAX, 0x8000000000000000ULL, UINT64_MAX};
    static const int64_t i64s[] = {
        0, 1, -1, -2, 255, -256, INT32_MIN, INT32_MAX, -1794999900000LL, INT64_MIN, INT64_MAX};
    struct dw_buf b;
    dw_buf_init(&b);
    for (size_t i = 0; i < sizeof(u8s); i++) {
        dw_buf_put_u8(&b, u8s[i]);
    }
    for (size_t i = 0; i < sizeof(u16s) / sizeof(u16s[0]); i++) {
        dw_buf_put_u16(&b, u16s[i]);
    }
    for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
        dw_buf_put_u32(&b, u32s[i]);
    }
    for (size_t i = 0; i < sizeof(u64s) / sizeof(u64s[0]); i++) {
        dw_buf_put_u64(&b, u64s[i]);
    }
    for (size_t i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++) {
        dw_buf_put_i64(&b, i64s[i]);
    }
    size_t want_len = sizeof(u8s) + 2 * sizeof(u16s) / sizeof(u16s[0]) +
                      4 * sizeof(u32s) / sizeof(u32s[0]) + 8 * sizeof(u64s) / sizeof(u64s[0]) +
                      8 * sizeof(i64s) / sizeof(i64s[0]);
    assert_int_equal(b.len, want_len);

    uint8_t *copy = heap_copy(b.data, b.len);
    struct dw_reader rd;
    dw_reader_init(&rd, copy, b.len);
    for (size_t i = 0; i < sizeof(u8s); i++) {
        assert_int_equal(dw_rd_u8(&rd), u8s[i]);
    }
    for (size_t i = 0; i < sizeof(u16s) / sizeof(u16s[0]); i++) {
        assert_int_equal(dw_rd_u16(&rd), u16s[i]);
    }
    for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
        assert_int_equal(dw_rd_u32(&rd), u32s[i]);
    }
    for (size_t i = 0; i < sizeof(u64s) / sizeof(u64s[0]); i++) {
        assert_int_equal(dw_rd_u64(&rd), u64s[i]);
    }
    for (size_t i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++) {
        int64_t got = dw_rd_i64(&rd);
        if (got != i64s[i]) {
            fail_msg("i64 #%zu: got %lld, want %lld", i, (long long)got, (long long)i64s[i]);
        }
    }
    assert_int_equal(rd.err, 0);
    assert_int_equal(rd.pos, rd.len);
    /* At the end: one more read is an error and returns 0. */
    assert_int_equal(dw_rd_u8(&rd), 0);
    assert_int_equal(rd.err, 1);
    free(copy);
    dw_buf_free(&b);
}

static void test_round_trip_doubles(void **state)
{
    (void)state;
    /* Bit patterns, compared bit for bit: quiet and signalling NaNs with payloads, a negative
     * NaN, +-0, +-inf, the smallest subnormal, DBL_MIN, DBL_MAX, ordinary values. */
    static const uint64_t bits[] = {
        0x7FF8000000000000ULL, 0x7FF8000000000123ULL, 0x7FF0000000000001ULL,
        0xFFF8000000000000ULL, 0x0000000000000000ULL, 0x8000000000000000ULL,
        0x7FF0000000000000ULL, 0xFFF0000000000000ULL, 0x0000000000000001ULL,
        0x0010000000000000ULL, 0x7FEFFFFFFFFFFFFFULL, 0x3FB999999999999AULL, /* 0.1 */
        0xC00921FB54442D18ULL,                                               /* -pi */
    };
    size_t n = sizeof(bits) / sizeof(bits[0]);
    struct dw_buf b;
    dw_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        dw_buf_put_f64(&b, bits_f64(bits[i]));
    }
    assert_int_equal(b.len, 8 * n);
    /* The stored bytes are the IEEE bits, little-endian. */
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 8; k++) {
            assert_int_equal(b.data[8 * i + (size_t)k], (uint8_t)(bits[i] >> (8 * k)));
        }
    }
    uint8_t *copy = heap_copy(b.data, b.len);
    struct dw_reader rd;
    dw_reader_init(&rd, copy, b.len);
    for (size_t i = 0; i < n; i++) {
        double v = dw_rd_f64(&rd);
        if (f64_bits(v) != bits[i]) {
            fail_msg("f64 #%zu: got bits %016llx, want %016llx", i, (unsigned long long)f64_bits(v),
                     (unsigned long long)bits[i]);
        }
    }
    assert_int_equal(rd.err, 0);
    free(copy);

    /* The same through ordinary values. */
    dw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    dw_buf_put_f64(&b, -0.0);
    dw_buf_put_f64(&b, INFINITY);
    dw_buf_put_f64(&b, -INFINITY);
    dw_buf_put_f64(&b, NAN);
    dw_reader_init(&rd, b.data, b.len);
    double z = dw_rd_f64(&rd);
    assert_double_exact(z, 0.0);
    assert_true(signbit(z));
    double pinf = dw_rd_f64(&rd);
    double ninf = dw_rd_f64(&rd);
    assert_true(isinf(pinf) && pinf > 0);
    assert_true(isinf(ninf) && ninf < 0);
    assert_nan(dw_rd_f64(&rd));
    assert_int_equal(rd.err, 0);
    dw_buf_free(&b);
}

/* Arrays of doubles (what sketches store) have the bytes of dw_buf_put_f64() one by one. */
static void test_f64_arrays(void **state)
{
    (void)state;
    const double v[] = {0.1, -0.0, INFINITY, -3.5e-300, 1e300, 42.0, -1.0};
    size_t n = sizeof(v) / sizeof(v[0]);
    struct dw_buf one;
    dw_buf_init(&one);
    for (size_t i = 0; i < n; i++) {
        dw_buf_put_f64(&one, v[i]);
    }
    uint8_t arr[sizeof(v) + 1];
    arr[sizeof(v)] = 0xEE;
    dw_le_put_f64s(arr, v, n);
    assert_memory_equal(arr, one.data, sizeof(v));
    assert_int_equal(arr[sizeof(v)], 0xEE); /* nothing written past n values */
    dw_le_put_f64s(arr, NULL, 0);           /* an empty array may have no storage */

    double back[sizeof(v) / sizeof(v[0])];
    struct dw_reader rd;
    dw_reader_init(&rd, one.data, one.len);
    assert_int_equal(dw_rd_f64s(&rd, back, n), 0);
    assert_memory_equal(back, v, sizeof(v));
    assert_int_equal(dw_rd_left(&rd), 0);
    assert_int_equal(dw_rd_f64s(&rd, NULL, 0), 0);
    /* One value more than there is: fails, names the shortage, reads nothing. */
    dw_reader_init(&rd, one.data, one.len - 1);
    memset(back, 0, sizeof(back));
    assert_int_equal(dw_rd_f64s(&rd, back, n), -1);
    assert_int_equal(rd.err, 1);
    assert_non_null(strstr(rd.msg, "truncated"));
    assert_int_equal(rd.pos, 0);
    /* A count whose byte size overflows size_t fails the same way. */
    dw_reader_init(&rd, one.data, one.len);
    assert_int_equal(dw_rd_f64s(&rd, back, SIZE_MAX / 4), -1);
    assert_int_equal(rd.err, 1);
    dw_buf_free(&one);
}

static void test_round_trip_strings(void **state)
{
    (void)state;
    static const char nul_str[] = {'a', '\0', 'b', '\0', '\0', 'c'};
    char big[1000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)(i * 7 + 1);
    }
    big[500] = '\0';
    struct dw_buf b;
    dw_buf_init(&b);
    dw_buf_put_str(&b, nul_str, sizeof(nul_str));
    dw_buf_put_str(&b, "", 0);
    dw_buf_put_str(&b, big, sizeof(big));
    dw_buf_put_str(&b, "\xC3\xA9t\xC3\xA9", 5); /* UTF-8 bytes pass through as they are */
    assert_int_equal(b.len, 4 + sizeof(nul_str) + 4 + 4 + sizeof(big) + 4 + 5);
    /* The length prefix of the embedded-NUL string counts every byte. */
    assert_int_equal(b.data[0], sizeof(nul_str));
    assert_int_equal(b.data[1] | b.data[2] | b.data[3], 0);

    uint8_t *copy = heap_copy(b.data, b.len);
    struct dw_reader rd;
    dw_reader_init(&rd, copy, b.len);
    const char *s = NULL;
    assert_int_equal(dw_rd_str(&rd, &s), sizeof(nul_str));
    assert_memory_equal(s, nul_str, sizeof(nul_str));
    assert_ptr_equal(s, (const char *)copy + 4); /* points into the buffer */
    s = NULL;
    assert_int_equal(dw_rd_str(&rd, &s), 0);
    assert_non_null(s);
    assert_int_equal(dw_rd_str(&rd, &s), sizeof(big));
    assert_memory_equal(s, big, sizeof(big));
    assert_int_equal(dw_rd_str(&rd, &s), 5);
    assert_memory_equal(s, "\xC3\xA9t\xC3\xA9", 5);
    assert_int_equal(rd.err, 0);
    assert_int_equal(rd.pos, rd.len);
    free(copy);
    dw_buf_free(&b);
}

static void test_buf_growth(void **state)
{
    (void)state;
    struct dw_buf b;
    dw_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    for (size_t i = 0; i < GROWTH_BYTES; i++) {
        dw_buf_put_u8(&b, (uint8_t)(i * 31 + 7));
    }
    assert_int_equal(b.len, GROWTH_BYTES);
    assert_true(b.cap >= b.len);
    for (size_t i = 0; i < GROWTH_BYTES; i++) {
        if (b.data[i] != (uint8_t)(i * 31 + 7)) {
            fail_msg("byte %zu lost on growth", i);
        }
    }
    /* A large single put across the capacity boundary. */
    uint8_t *blob = malloc(3 * GROWTH_BYTES);
    assert_non_null(blob);
    for (size_t i = 0; i < 3 * GROWTH_BYTES; i++) {
        blob[i] = (uint8_t)(i ^ (i >> 8));
    }
    dw_buf_put(&b, blob, 3 * GROWTH_BYTES);
    assert_int_equal(b.len, 4 * GROWTH_BYTES);
    assert_memory_equal(b.data + GROWTH_BYTES, blob, 3 * GROWTH_BYTES);
    /* An empty put changes nothing (and accepts NULL). */
    dw_buf_put(&b, NULL, 0);
    assert_int_equal(b.len, 4 * GROWTH_BYTES);
    /* Reset keeps the allocation, drops the content. */
    size_t cap = b.cap;
    uint8_t *data = b.data;
    dw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    dw_buf_put_u32(&b, 0xDEADBEEFu);
    assert_int_equal(b.len, 4);
    assert_int_equal(b.data[0], 0xEF);
    assert_int_equal(b.data[3], 0xDE);
    free(blob);
    dw_buf_free(&b);
}

/* Reading a width from a buffer one byte too short: err, 0, position unchanged. */
static void test_truncation_each_width(void **state)
{
    (void)state;
    static const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    for (int width = 2; width <= 8; width *= 2) {
        for (size_t have = 0; have < (size_t)width; have++) {
            uint8_t *copy = heap_copy(ones, have);
            struct dw_reader rd;
            dw_reader_init(&rd, copy, have);
            uint64_t got;
            if (width == 2) {
                got = dw_rd_u16(&rd);
            } else if (width == 4) {
                got = dw_rd_u32(&rd);
            } else {
                got = dw_rd_u64(&rd);
            }
            assert_int_equal(got, 0);
            assert_int_equal(rd.err, 1);
            assert_int_equal(rd.pos, 0);
            /* Sticky: a later read that would fit still fails and returns 0. */
            assert_int_equal(dw_rd_u8(&rd), 0);
            assert_int_equal(dw_rd_i64(&rd), 0);
            assert_int_equal(f64_bits(dw_rd_f64(&rd)), 0);
            assert_null(dw_rd_bytes(&rd, 0));
            assert_int_equal(rd.err, 1);
            assert_int_equal(rd.pos, 0);
            free(copy);
        }
    }
    /* u8 on an empty buffer, f64 and i64 on 7 bytes. */
    struct dw_reader rd;
    dw_reader_init(&rd, NULL, 0);
    assert_int_equal(dw_rd_u8(&rd), 0);
    assert_int_equal(rd.err, 1);
    uint8_t *copy = heap_copy(ones, 7);
    dw_reader_init(&rd, copy, 7);
    assert_int_equal(f64_bits(dw_rd_f64(&rd)), 0);
    assert_int_equal(rd.err, 1);
    dw_reader_init(&rd, copy, 7);
    assert_int_equal(dw_rd_i64(&rd), 0);
    assert_int_equal(rd.err, 1);
    free(copy);
}

static void test_truncation_mid_stream(void **state)
{
    (void)state;
    struct dw_buf b;
    dw_buf_init(&b);
    dw_buf_put_u32(&b, 7);
    dw_buf_put_u16(&b, 0x1234);
    dw_buf_put_str(&b, "payload", 7);
    dw_buf_put_u64(&b, 99);
    /* Cut at every length: the reads before the cut succeed, the rest fail with 0. */
    for (size_t cut = 0; cut <= b.len; cut++) {
        uint8_t *copy = heap_copy(b.data, cut);
        struct dw_reader rd;
        dw_reader_init(&rd, copy, cut);
        uint32_t a = dw_rd_u32(&rd);
        uint16_t c = dw_rd_u16(&rd);
        const char *s = NULL;
        size_t slen = dw_rd_str(&rd, &s);
        uint64_t d = dw_rd_u64(&rd);
        assert_int_equal(a, cut >= 4 ? 7 : 0);
        assert_int_equal(c, cut >= 6 ? 0x1234 : 0);
        if (cut >= 17) {
            assert_int_equal(slen, 7);
            assert_memory_equal(s, "payload", 7);
        } else {
            assert_int_equal(slen, 0);
            assert_non_null(s); /* "" rather than a pointer past the end */
            assert_int_equal(s[0], '\0');
        }
        assert_int_equal(d, (cut == b.len ? 99u : 0u));
        assert_int_equal(rd.err, cut == b.len ? 0 : 1);
        assert_true(rd.pos <= cut);
        free(copy);
    }
    dw_buf_free(&b);
}

/* A length prefix larger than what is left (up to 4 GiB - 1) never reads past the end. */
static void test_string_length_overrun(void **state)
{
    (void)state;
    static const uint32_t lens[] = {4, 5, 1000, 0x7FFFFFFFu, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct dw_buf b;
        dw_buf_init(&b);
        dw_buf_put_u32(&b, lens[i]);
        dw_buf_put(&b, "abc", 3);
        uint8_t *copy = heap_copy(b.data, b.len);
        struct dw_reader rd;
        dw_reader_init(&rd, copy, b.len);
        const char *s = NULL;
        assert_int_equal(dw_rd_str(&rd, &s), 0);
        assert_non_null(s);
        assert_int_equal(rd.err, 1);
        assert_int_equal(rd.pos, 4); /* the prefix was read, nothing after it */
        free(copy);
        dw_buf_free(&b);
    }
    /* dw_rd_bytes: exact fit succeeds, one more fails and the failure sticks. */
    static const uint8_t raw[5] = {1, 2, 3, 4, 5};
    uint8_t *copy = heap_copy(raw, sizeof(raw));
    struct dw_reader rd;
    dw_reader_init(&rd, copy, sizeof(raw));
    const uint8_t *p = dw_rd_bytes(&rd, 2);
    assert_ptr_equal(p, copy);
    p = dw_rd_bytes(&rd, 3);
    assert_ptr_equal(p, copy + 2);
    assert_int_equal(rd.err, 0);
    assert_non_null(dw_rd_bytes(&rd, 0)); /* zero bytes at the very end is fine */
    assert_null(dw_rd_bytes(&rd, 1));
    assert_int_equal(rd.err, 1);
    dw_reader_init(&rd, copy, sizeof(raw));
    assert_null(dw_rd_bytes(&rd, SIZE_MAX));
    assert_int_equal(rd.err, 1);
    assert_int_equal(rd.pos, 0);
    free(copy);
}

/*
 * The helpers that keep corrupt numbers from driving a decoder: a count checked against the
 * bytes left (overflow-safe: a count whose size wraps around 2^64 is refused too), a name with a
 * NUL byte refused, a sum that would wrap refused, and the first failure's message kept.
 */
static void test_checked_counts_and_names(void **state)
{
    (void)state;
    struct dw_buf b;
    dw_buf_init(&b);
    dw_buf_put_u32(&b, 3); /* 3 items of 8 bytes: 24 bytes follow */
    dw_buf_put(&b, "0123456789abcdefghijklmn", 24);
    dw_buf_put_u32(&b, 0xFFFFFFFFu); /* 4 Gi items of 1 byte: 9 follow */
    dw_buf_put_str(&b, "a\0b", 3);
    dw_buf_put_u16(&b, 0);
    uint8_t *copy = heap_copy(b.data, b.len);
    struct dw_reader rd;
    dw_reader_init(&rd, copy, b.len);
    assert_string_equal(rd.msg, "");
    assert_int_equal(dw_rd_count(&rd, 8, "items"), 3);
    assert_int_equal(rd.err, 0);
    assert_int_equal(dw_rd_left(&rd), b.len - 4);
    assert_non_null(dw_rd_bytes(&rd, 24));
    assert_int_equal(dw_rd_count(&rd, 1, "widgets"), 0);
    assert_int_equal(rd.err, 1);
    assert_contains(rd.msg, "4294967295 widgets");
    assert_int_equal(dw_rd_left(&rd), 0);
    /* only the first failure's message is kept */
    dw_rd_fail(&rd, "something later");
    assert_contains(rd.msg, "widgets");
    free(copy);

    /* n * item_bytes wraps around 2^64: refused, not taken for a small size */
    static const uint8_t few[16] = {0};
    copy = heap_copy(few, sizeof(few));
    dw_reader_init(&rd, copy, sizeof(few));
    assert_int_equal(dw_rd_expect(&rd, (1ULL << 60) + 1, 16, "pairs"), -1);
    assert_int_equal(rd.err, 1);
    assert_contains(rd.msg, "pairs");
    dw_reader_init(&rd, copy, sizeof(few));
    assert_int_equal(dw_rd_expect(&rd, 1, 16, "pairs"), 0);
    assert_int_equal(dw_rd_expect(&rd, 0, SIZE_MAX, "pairs"), 0);
    assert_int_equal(rd.err, 0);
    /* a truncated read says where */
    assert_non_null(dw_rd_bytes(&rd, 10));
    assert_int_equal(dw_rd_u64(&rd), 0);
    assert_contains(rd.msg, "truncated: 8 bytes needed at byte 10 of 16");
    free(copy);

    /* a name with a NUL byte inside */
    static const uint8_t named[] = {3, 0, 0, 0, 'a', 0, 'b', 2, 0, 0, 0, 'o', 'k'};
    copy = heap_copy(named, sizeof(named));
    dw_reader_init(&rd, copy, sizeof(named));
    const char *s = NULL;
    assert_int_equal(dw_rd_name(&rd, &s, "category"), 0);
    assert_string_equal(s, "");
    assert_int_equal(rd.err, 1);
    assert_contains(rd.msg, "category");
    assert_contains(rd.msg, "NUL");
    dw_reader_init(&rd, copy + 7, sizeof(named) - 7);
    assert_int_equal(dw_rd_name(&rd, &s, "category"), 2);
    assert_memory_equal(s, "ok", 2);
    free(copy);
    dw_buf_free(&b);

    /* sums that would wrap around */
    uint64_t acc = UINT64_MAX - 1;
    assert_int_equal(dw_u64_add(&acc, 1), 0);
    assert_int_equal(acc, UINT64_MAX);
    assert_int_equal(dw_u64_add(&acc, 1), -1);
    assert_int_equal(acc, UINT64_MAX);
    acc = 1ULL << 63;
    assert_int_equal(dw_u64_add(&acc, 1ULL << 63), -1);
    assert_int_equal(acc, 1ULL << 63);
}

/* Unsigned varints: every width round-trips with its documented length; overlong forms, a
 * tenth byte beyond bit 63 and a cut-off number fail. */
static void test_uvarint(void **state)
{
    (void)state;
    const uint64_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
    const size_t lens[] = {1, 1, 1, 2, 2, 2, 3, 5, 10};
    struct dw_buf b;
    dw_buf_init(&b);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        size_t before = b.len;
        dw_buf_put_uvarint(&b, vals[i]);
        assert_int_equal(b.len - before, lens[i]);
    }
    /* the bytes: seven bits at a time, the lowest first, the high bit set on all but the last */
    const uint8_t v300[] = {0xAC, 0x02};
    const uint8_t vmax[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_memory_equal(b.data + 5, v300, sizeof(v300)); /* after 0, 1, 127 and 128 */
    assert_memory_equal(b.data + b.len - sizeof(vmax), vmax, sizeof(vmax));
    struct dw_reader rd;
    dw_reader_init(&rd, b.data, b.len);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        assert_int_equal(dw_rd_uvarint(&rd), vals[i]);
    }
    assert_int_equal(rd.err, 0);
    assert_int_equal(dw_rd_left(&rd), 0);
    dw_buf_free(&b);
    const uint8_t overlong[] = {0x81, 0x00}; /* 1 in two bytes */
    const uint8_t too_wide[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t cut[] = {0x80, 0x80}; /* continues past the end */
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0x01};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{overlong, sizeof(overlong)},
               {too_wide, sizeof(too_wide)},
               {cut, sizeof(cut)},
               {eleven, sizeof(eleven)}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dw_reader_init(&rd, bad[i].p, bad[i].n);
        assert_int_equal(dw_rd_uvarint(&rd), 0);
        assert_int_not_equal(rd.err, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_little_endian),
        cmocka_unit_test(test_round_trip_integers),
        cmocka_unit_test(test_round_trip_doubles),
        cmocka_unit_test(test_round_trip_strings),
        cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_truncation_each_width),
        cmocka_unit_test(test_truncation_mid_stream),
        cmocka_unit_test(test_string_length_overrun),
        cmocka_unit_test(test_checked_counts_and_names),
        cmocka_unit_test(test_uvarint),
        cmocka_unit_test(test_f64_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
