/*
 * dw_slots.c - Redis Cluster's hash slots, for the small cluster router in dw_redis.c.
 *
 * Why here and not in the adapter: which node serves a command is a pure function of the
 * command's first key (its hash tag's CRC16 mod 16384), and a transaction that spans two slots
 * is a programming error Redis Cluster would refuse (CROSSSLOT) only at run time, on a
 * cluster. Keeping the rules pure lets the unit tests pin them to Redis's own published values
 * and prove that the transaction check triggers, without a cluster.
 */
#include "driftwatch/core/dw_slots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

uint16_t dw_slots_crc16(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

int dw_slots_key(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) {
            return dw_slots_crc16(open + 1, (size_t)(close - open - 1)) % DW_SLOTS_N;
        }
    }
    return dw_slots_crc16(key, len) % DW_SLOTS_N;
}

int dw_slots_same(int *slot, const char *key, size_t len)
{
    int s = dw_slots_key(key, len);
    if (*slot < 0) {
        *slot = s;
        return 0;
    }
    return s == *slot ? 0 : -1;
}

/* Commands whose argv[1], if any, is not a key: they go to the node the caller is on. */
static int keyless(const char *name, size_t len)
{
    static const char *const names[] = {"PING",    "SCAN",      "MULTI",  "EXEC",     "DISCARD",
                                        "UNWATCH", "ASKING",    "AUTH",   "SELECT",   "INFO",
                                        "CLUSTER", "READONLY",  "DBSIZE", "FLUSHALL", "FLUSHDB",
                                        "KEYS",    "RANDOMKEY", "ECHO",   "QUIT"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(names); i++) {
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

int dw_slots_argv_key(int argc, const char *const *argv, const size_t *lens, const char **key,
                      size_t *key_len)
{
    if (argc < 2) {
        return 0;
    }
    size_t l0 = lens ? lens[0] : strlen(argv[0]);
    if (keyless(argv[0], l0)) {
        return 0;
    }
    *key = argv[1];
    *key_len = lens ? lens[1] : strlen(argv[1]);
    return 1;
}

/* Reads "<c><digits>\r\n" at *p (c: '*' or '$'); @returns the number, or -1. */
static long resp_len(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c) {
        return -1;
    }
    long n = 0;
    const char *s = *p + 1;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (*s - '0');
        if (n > (1L << 30)) {
            return -1;
        }
    }
    if (s == *p + 1 || end - s < 2 || s[0] != '\r' || s[1] != '\n') {
        return -1;
    }
    *p = s + 2;
    return n;
}

/* Reads one bulk string at *p into *s and *n; @returns 0 or -1. */
static int resp_bulk(const char **p, const char *end, const char **s, size_t *n)
{
    long l = resp_len(p, end, '$');
    if (l < 0 || end - *p < l + 2 || (*p)[l] != '\r' || (*p)[l + 1] != '\n') {
        return -1;
    }
    *s = *p;
    *n = (size_t)l;
    *p += l + 2;
    return 0;
}

int dw_slots_cmd_key(const char *cmd, size_t len, const char **key, size_t *key_len)
{
    const char *p = cmd, *end = cmd + len;
    long argc = resp_len(&p, end, '*');
    const char *argv[2];
    size_t lens[2];
    if (argc < 1 || resp_bulk(&p, end, &argv[0], &lens[0]) != 0) {
        return -1;
    }
    if (argc >= 2 && resp_bulk(&p, end, &argv[1], &lens[1]) != 0) {
        return -1;
    }
    return dw_slots_argv_key(argc >= 2 ? 2 : 1, argv, lens, key, key_len);
}

int dw_slots_redirect(const char *err, size_t len, struct dw_slots_redirect *out)
{
    int kind = DW_SLOTS_NONE;
    size_t skip = 0;
    if (len > 6 && strncmp(err, "MOVED ", 6) == 0) {
        kind = DW_SLOTS_MOVED;
        skip = 6;
    } else if (len > 4 && strncmp(err, "ASK ", 4) == 0) {
        kind = DW_SLOTS_ASK;
        skip = 4;
    } else {
        return DW_SLOTS_NONE;
    }
    const char *s = err + skip, *end = err + len;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    int64_t slot;
    if (!sp || dw_parse_i64(s, (size_t)(sp - s), 0, DW_SLOTS_N - 1, &slot) != 0 ||
        dw_hostport_split(sp + 1, (size_t)(end - sp - 1), out->host, sizeof(out->host),
                          &out->port) != 0) {
        return -1;
    }
    out->slot = (int)slot;
    return kind;
}
