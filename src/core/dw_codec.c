/*
 * dw_codec.c - little-endian buffer writer and bounds-checked reader (see dw_codec.h).
 * Checkpoints are read back by other pods, possibly on other architectures, so nothing is
 * written in host byte order.
 */
#include "driftwatch/core/dw_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

void dw_buf_init(struct dw_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void dw_buf_free(struct dw_buf *b)
{
    free(b->data);
    dw_buf_init(b);
}

void dw_buf_reset(struct dw_buf *b)
{
    b->len = 0;
}

static void buf_reserve(struct dw_buf *b, size_t extra)
{
    dw_assert(extra <= SIZE_MAX / 2 - b->len); /* a size no caller can mean */
    if (b->len + extra <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    b->data = dw_realloc(b->data, cap);
    b->cap = cap;
}

void dw_buf_put(struct dw_buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
}

/* v's low `bytes` bytes at p, least significant first: the one home of the byte order. */
static void store_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t load_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void put_le(struct dw_buf *b, uint64_t v, int bytes)
{
    buf_reserve(b, (size_t)bytes);
    store_le(b->data + b->len, v, bytes);
    b->len += (size_t)bytes;
}

uint8_t *dw_buf_extend(struct dw_buf *b, size_t len)
{
    buf_reserve(b, len);
    uint8_t *at = b->data + b->len;
    b->len += len;
    return at;
}

void dw_buf_put_u8(struct dw_buf *b, uint8_t v)
{
    put_le(b, v, 1);
}

void dw_buf_put_u16(struct dw_buf *b, uint16_t v)
{
    put_le(b, v, 2);
}

void dw_buf_put_u32(struct dw_buf *b, uint32_t v)
{
    put_le(b, v, 4);
}

void dw_buf_put_u64(struct dw_buf *b, uint64_t v)
{
    put_le(b, v, 8);
}

#define UVARINT_MAX 10 /* bytes of the longest varint: 64 bits, 7 a byte */

void dw_buf_put_uvarint(struct dw_buf *b, uint64_t v)
{
    buf_reserve(b, UVARINT_MAX); /* room for the longest, then written in place: a reference
                                  * writes millions of them */
    uint8_t *p = b->data + b->len;
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) {
        p[n++] = (uint8_t)(v | 0x80);
    }
    p[n++] = (uint8_t)v;
    b->len += n;
}

void dw_buf_put_i64(struct dw_buf *b, int64_t v)
{
    put_le(b, (uint64_t)v, 8);
}

size_t dw_uvarint_size(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) {
        n++;
    }
    return n;
}

void dw_buf_put_f64(struct dw_buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_le(b, bits, 8);
}

void dw_le_put_f64s(uint8_t *dst, const double *v, size_t n)
{
    if (n == 0) {
        return; /* v may be NULL then, which memcpy may not be given */
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, v, n * 8);
#else
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], sizeof(bits));
        store_le(dst + 8 * i, bits, 8);
    }
#endif
}

void dw_buf_put_str(struct dw_buf *b, const char *s, size_t len)
{
    dw_buf_put_u32(b, (uint32_t)len);
    dw_buf_put(b, s, len);
}

void dw_reader_init(struct dw_reader *rd, const void *data, size_t len)
{
    rd->p = data;
    rd->len = data ? len : 0;
    rd->pos = 0;
    rd->err = 0;
    rd->msg[0] = '\0';
}

void dw_rd_fail(struct dw_reader *rd, const char *fmt, ...)
{
    if (rd->err) {
        return;
    }
    rd->err = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->msg, sizeof(rd->msg), fmt, ap);
    va_end(ap);
}

size_t dw_rd_left(const struct dw_reader *rd)
{
    return rd->err || rd->pos > rd->len ? 0 : rd->len - rd->pos;
}

/* Fails with a truncation message unless n more bytes are there. */
static int need(struct dw_reader *rd, size_t n)
{
    if (rd->err) {
        return -1;
    }
    if (dw_rd_left(rd) < n) {
        dw_rd_fail(rd, "truncated: %zu bytes needed at byte %zu of %zu", n, rd->pos, rd->len);
        return -1;
    }
    return 0;
}

static uint64_t get_le(struct dw_reader *rd, int bytes)
{
    if (need(rd, (size_t)bytes) != 0) {
        return 0;
    }
    uint64_t v = load_le(rd->p + rd->pos, bytes);
    rd->pos += (size_t)bytes;
    return v;
}

uint64_t dw_rd_uvarint(struct dw_reader *rd)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (need(rd, 1) != 0) {
            return 0;
        }
        uint8_t byte = rd->p[rd->pos++];
        /* the tenth byte holds bit 63 alone; a last byte of 0 is a longer form of a shorter
         * number: both corrupt, so that every number has one encoding */
        if ((shift == 63 && byte > 1) || (shift > 0 && byte == 0)) {
            dw_rd_fail(rd, "malformed varint at byte %zu", rd->pos - 1);
            return 0;
        }
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            return v;
        }
    }
    dw_rd_fail(rd, "malformed varint at byte %zu", rd->pos);
    return 0;
}

uint8_t dw_rd_u8(struct dw_reader *rd)
{
    return (uint8_t)get_le(rd, 1);
}

uint16_t dw_rd_u16(struct dw_reader *rd)
{
    return (uint16_t)get_le(rd, 2);
}

uint32_t dw_rd_u32(struct dw_reader *rd)
{
    return (uint32_t)get_le(rd, 4);
}

uint64_t dw_rd_u64(struct dw_reader *rd)
{
    return get_le(rd, 8);
}

int64_t dw_rd_i64(struct dw_reader *rd)
{
    return (int64_t)get_le(rd, 8);
}

double dw_rd_f64(struct dw_reader *rd)
{
    uint64_t bits = get_le(rd, 8);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

int dw_rd_f64s(struct dw_reader *rd, double *out, size_t n)
{
    if (n > SIZE_MAX / 8) {
        (void)need(rd, SIZE_MAX);
        return -1;
    }
    const uint8_t *p = dw_rd_bytes(rd, n * 8);
    if (!p) {
        return -1;
    }
    if (n == 0) {
        return 0;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, p, n * 8);
#else
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = load_le(p + 8 * i, 8);
        memcpy(&out[i], &bits, sizeof(bits));
    }
#endif
    return 0;
}

const uint8_t *dw_rd_bytes(struct dw_reader *rd, size_t len)
{
    if (need(rd, len) != 0) {
        return NULL;
    }
    const uint8_t *p = rd->p + rd->pos;
    rd->pos += len;
    return p;
}

size_t dw_rd_str(struct dw_reader *rd, const char **s)
{
    uint32_t len = dw_rd_u32(rd);
    const uint8_t *p = dw_rd_bytes(rd, len);
    *s = p ? (const char *)p : "";
    return p ? len : 0;
}

size_t dw_rd_name(struct dw_reader *rd, const char **s, const char *what)
{
    size_t len = dw_rd_str(rd, s);
    if (len && memchr(*s, '\0', len)) {
        dw_rd_fail(rd, "%s \"%.*s\" contains a NUL byte", what, (int)DW_MIN(len, 40), *s);
        *s = "";
        return 0;
    }
    return len;
}

int dw_rd_expect(struct dw_reader *rd, uint64_t n, size_t item_bytes, const char *what)
{
    if (rd->err) {
        return -1;
    }
    size_t left = dw_rd_left(rd);
    if (item_bytes > 0 && n > left / item_bytes) {
        dw_rd_fail(rd, "%llu %s need at least %llu bytes, %zu are left at byte %zu",
                   (unsigned long long)n, what,
                   n > UINT64_MAX / item_bytes ? UINT64_MAX : (unsigned long long)(n * item_bytes),
                   left, rd->pos);
        return -1;
    }
    return 0;
}

uint32_t dw_rd_count(struct dw_reader *rd, size_t item_bytes, const char *what)
{
    uint32_t n = dw_rd_u32(rd);
    return dw_rd_expect(rd, n, item_bytes, what) == 0 ? n : 0;
}
