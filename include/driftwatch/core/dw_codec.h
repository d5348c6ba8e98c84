/*
 * dw_codec.h - endian-safe binary encoding for checkpoint state.
 *
 * Integers are written little-endian with fixed widths, doubles as their IEEE-754 bits, strings
 * as a u32 length and the bytes. Readers never run past the end: a short or corrupt buffer sets
 * rd->err and every later read returns zero, so decoders check rd->err once at the end.
 *
 * Stored bytes are untrusted (a checkpoint may be truncated, corrupt or written by anyone with
 * access to Redis), so the reader also carries the first failure's message (rd->msg) for the
 * decoder's error, and helpers that keep corrupt numbers from driving anything: dw_rd_count()
 * checks a count against the bytes that are left before a loop or an allocation uses it,
 * dw_rd_name() refuses names with a NUL byte inside (they become C strings), and
 * dw_u64_add() adds counts without wrapping around.
 */
#ifndef DW_CODEC_H
#define DW_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define DW_READER_MSG 160 /* bytes of a reader's error message */

struct dw_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void dw_buf_init(struct dw_buf *b);
void dw_buf_free(struct dw_buf *b);
void dw_buf_reset(struct dw_buf *b);
void dw_buf_put(struct dw_buf *b, const void *data, size_t len);
void dw_buf_put_u8(struct dw_buf *b, uint8_t v);
void dw_buf_put_u16(struct dw_buf *b, uint16_t v);
void dw_buf_put_u32(struct dw_buf *b, uint32_t v);
void dw_buf_put_u64(struct dw_buf *b, uint64_t v);
void dw_buf_put_i64(struct dw_buf *b, int64_t v);
/** @brief Appends v as unsigned LEB128: 7 bits a byte, low first, 1 to 10 bytes. */
void dw_buf_put_uvarint(struct dw_buf *b, uint64_t v);
/** @brief The bytes dw_buf_put_uvarint() writes for v. */
size_t dw_uvarint_size(uint64_t v);
void dw_buf_put_f64(struct dw_buf *b, double v);
/** @brief Stores n doubles at dst as dw_buf_put_f64() would, 8 bytes each (one copy on a
 *         little-endian host: sketches store thousands of values at every checkpoint). */
void dw_le_put_f64s(uint8_t *dst, const double *v, size_t n);
void dw_buf_put_str(struct dw_buf *b, const char *s, size_t len);
/** @brief Appends len bytes and returns where they start, for the caller to fill in place. */
uint8_t *dw_buf_extend(struct dw_buf *b, size_t len);

struct dw_reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;
    char msg[DW_READER_MSG]; /* the first failure ("" while err is 0) */
};

void dw_reader_init(struct dw_reader *rd, const void *data, size_t len);
uint8_t dw_rd_u8(struct dw_reader *rd);
uint16_t dw_rd_u16(struct dw_reader *rd);
uint32_t dw_rd_u32(struct dw_reader *rd);
uint64_t dw_rd_u64(struct dw_reader *rd);
int64_t dw_rd_i64(struct dw_reader *rd);
double dw_rd_f64(struct dw_reader *rd);
/** @brief Reads n doubles written as by dw_le_put_f64s(); 0, or -1 with rd failed and nothing
 *         read. */
int dw_rd_f64s(struct dw_reader *rd, double *out, size_t n);
/** @brief Reads what dw_buf_put_uvarint() wrote; any other form (overlong, beyond 64 bits) fails.
 */
uint64_t dw_rd_uvarint(struct dw_reader *rd);
/** @brief Reads a string; *s points into the buffer (not NUL-terminated). */
size_t dw_rd_str(struct dw_reader *rd, const char **s);
/** @brief Reads raw bytes; returns a pointer into the buffer or NULL (err set). */
const uint8_t *dw_rd_bytes(struct dw_reader *rd, size_t len);

/**
 * @brief Marks the reader failed: err set, every later read returns zero. Only the first
 *        failure's message is kept (the cause; what follows is its consequence).
 */
void dw_rd_fail(struct dw_reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** @returns the bytes not read yet (0 once failed). */
size_t dw_rd_left(const struct dw_reader *rd);

/**
 * @brief Checks that n items of at least item_bytes each fit in the bytes left, without
 *        overflow; fails naming `what` otherwise. @returns 0 or -1.
 */
int dw_rd_expect(struct dw_reader *rd, uint64_t n, size_t item_bytes, const char *what);

/** @brief Reads a u32 count of items of at least item_bytes each, checked by dw_rd_expect(). */
uint32_t dw_rd_count(struct dw_reader *rd, size_t item_bytes, const char *what);

/** @brief Reads a string like dw_rd_str() that must not contain a NUL byte (names, classes). */
size_t dw_rd_name(struct dw_reader *rd, const char **s, const char *what);

/** @brief *acc += v unless that wraps around. @returns 0, or -1 (*acc unchanged) on overflow. */
static inline int dw_u64_add(uint64_t *acc, uint64_t v)
{
    if (v > UINT64_MAX - *acc) {
        return -1;
    }
    *acc += v;
    return 0;
}

#endif
