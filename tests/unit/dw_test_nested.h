/*
 * dw_test_nested.h - hostile nesting for the decoder's tests and bench/nesting.c: an event
 * whose member "x" holds a value nested many levels deep, padded to an exact size.
 */
#ifndef DW_TEST_NESTED_H
#define DW_TEST_NESTED_H

#include <stdlib.h>
#include <string.h>

/*
 * `head` (an event up to and including `"x":`), `levels` times `open`, `mid`, `levels` times
 * `close`, then spaces and the event's final "}" up to exactly `len` bytes, NUL-terminated
 * (levels = 0: as many as fit). @returns a malloc'ed buffer of len + 1 bytes, or NULL when
 * that many levels do not fit.
 */
static inline char *dw_test_nested(const char *head, const char *open, const char *mid, char close,
                                   size_t levels, size_t len)
{
    size_t hl = strlen(head), ol = strlen(open), ml = strlen(mid);
    if (levels == 0 && len > hl + ml + 1) {
        levels = (len - hl - ml - 1) / (ol + 1);
    }
    if (hl + levels * (ol + 1) + ml + 1 > len) {
        return NULL;
    }
    char *buf = malloc(len + 1);
    if (!buf) {
        return NULL;
    }
    size_t n = hl;
    memcpy(buf, head, hl);
    for (size_t i = 0; i < levels; i++) {
        memcpy(buf + n, open, ol);
        n += ol;
    }
    memcpy(buf + n, mid, ml);
    n += ml;
    memset(buf + n, close, levels);
    n += levels;
    memset(buf + n, ' ', len - 1 - n);
    buf[len - 1] = '}';
    buf[len] = '\0';
    return buf;
}

#endif
