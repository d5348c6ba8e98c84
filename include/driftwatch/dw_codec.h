/*
 * dw_codec.h - endian-safe binary encoding for checkpoint state.
 *
 * Integers are written little-endian with fixed widths, doubles as their IEEE-754 bits, strings
 * as a u32 length and the bytes. Readers never run past the end: a short or corrupt buffer sets
 * rd->err and every later read returns zero, so decoders check rd->err once at the end.
 */
#ifndef DW_CODEC_H
#define DW_CODEC_H

#include <stddef.h>
#include <stdint.h>

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
void dw_buf_put_f64(struct dw_buf *b, double v);
void dw_buf_put_str(struct dw_buf *b, const char *s, size_t len);
/** @brief Appends len bytes and returns where they start, for the caller to fill in place. */
uint8_t *dw_buf_extend(struct dw_buf *b, size_t len);

struct dw_reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;
};

void dw_reader_init(struct dw_reader *rd, const void *data, size_t len);
uint8_t dw_rd_u8(struct dw_reader *rd);
uint16_t dw_rd_u16(struct dw_reader *rd);
uint32_t dw_rd_u32(struct dw_reader *rd);
uint64_t dw_rd_u64(struct dw_reader *rd);
int64_t dw_rd_i64(struct dw_reader *rd);
double dw_rd_f64(struct dw_reader *rd);
/** @brief Reads a string; *s points into the buffer (not NUL-terminated). */
size_t dw_rd_str(struct dw_reader *rd, const char **s);
/** @brief Reads raw bytes; returns a pointer into the buffer or NULL (err set). */
const uint8_t *dw_rd_bytes(struct dw_reader *rd, size_t len);

#endif
