/*
 * dw_slots.h - Redis Cluster's key to hash slot mapping and the parsing the cluster router in
 * the Redis adapter needs (which key of a command decides its node, MOVED and ASK replies).
 * Pure: no I/O, so the rules are unit-tested against Redis's own published values.
 */
#ifndef DW_SLOTS_H
#define DW_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#define DW_SLOTS_N 16384      /* hash slots of a Redis Cluster */
#define DW_SLOTS_HOST_MAX 256 /* bytes: host of a MOVED/ASK target, NUL included */

/** @brief CRC16-XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes with.
 *  @returns the checksum ("123456789" -> 0x31C3) */
uint16_t dw_slots_crc16(const void *data, size_t len);

/** @brief The hash slot of a key: CRC16 of its hash tag (the bytes between the first '{' and
 *  the first '}' after it, when not empty), else of the whole key, mod 16384.
 *  @returns the slot, 0..16383 */
int dw_slots_key(const char *key, size_t len);

/** @brief Checks that `key` lies in the slot *slot of a transaction being built; *slot < 0
 *  (no key yet) takes the key's slot.
 *  @returns 0 when it does, -1 when the key is in another slot (the transaction would span two
 *  slots: Redis Cluster refuses it, and it is a programming error here) */
int dw_slots_same(int *slot, const char *key, size_t len);

/** @brief The key that routes a command given as argv: argv[1], unless the command names no
 *  key (PING, SCAN, MULTI, EXEC, UNWATCH, ...).
 *  @returns 1 with *key and *key_len set, 0 for a command without a key */
int dw_slots_argv_key(int argc, const char *const *argv, const size_t *lens, const char **key,
                      size_t *key_len);

/** @brief dw_slots_argv_key() of a command in the protocol's form ("*N\r\n$L\r\nNAME\r\n...").
 *  @returns 1 with *key and *key_len pointing into cmd, 0 without a key, -1 when cmd is not a
 *  well-formed command */
int dw_slots_cmd_key(const char *cmd, size_t len, const char **key, size_t *key_len);

enum dw_slots_redirect_kind { DW_SLOTS_NONE = 0, DW_SLOTS_MOVED = 1, DW_SLOTS_ASK = 2 };

/* A MOVED or ASK error: the slot and the node that serves it. */
struct dw_slots_redirect {
    int slot;
    char host[DW_SLOTS_HOST_MAX]; /* "" when the server wrote none: the node asked */
    int port;
};

/** @brief Parses an error reply "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>".
 *  @returns DW_SLOTS_MOVED or DW_SLOTS_ASK with *out set, DW_SLOTS_NONE for any other error,
 *  -1 for a MOVED/ASK that does not parse */
int dw_slots_redirect(const char *err, size_t len, struct dw_slots_redirect *out);

#endif
