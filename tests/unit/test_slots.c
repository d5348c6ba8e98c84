/*
 * test_slots.c - Redis Cluster's hash slots (CRC16-XMODEM, hash tags) against the values Redis
 * publishes, the transaction's one-slot check, which key routes a command, and the parsing of
 * MOVED/ASK replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_slots.h"

#include "dw_test.h"

static int slot_of(const char *key)
{
    return dw_slots_key(key, strlen(key));
}

static void test_crc16_and_slots(void **state)
{
    (void)state;
    /* The Redis Cluster specification's test vector and the CLUSTER KEYSLOT examples. */
    assert_int_equal(dw_slots_crc16("123456789", 9), 0x31C3);
    assert_int_equal(dw_slots_crc16("", 0), 0);
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("somekey"), 11058);
    assert_int_equal(slot_of("foo{hash_tag}"), 2515);
    assert_int_equal(slot_of("bar{hash_tag}"), 2515);
    assert_int_equal(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
    assert_int_equal(slot_of("{user1000}.following"), slot_of("user1000"));
    /* Hash tag rules: the first '{' and the first '}' after it; empty tags hash the key. */
    assert_int_equal(slot_of("foo{}{bar}"), dw_slots_crc16("foo{}{bar}", 10) % DW_SLOTS_N);
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    assert_int_equal(slot_of("foo{bar"), dw_slots_crc16("foo{bar", 7) % DW_SLOTS_N);
    /* driftwatch's keys: every key of a partition in its partition's slot. */
    assert_int_equal(slot_of("{dw:g:t:3}:meta"), slot_of("{dw:g:t:3}:w:fraud:60000"));
    assert_int_equal(slot_of("{dw:g:t:3}:meta"), slot_of("{dw:g:t:3}:done:m:1:2"));
    for (int i = 0; i < 1000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "key:%d", i);
        int s = slot_of(k);
        assert_true(s >= 0 && s < DW_SLOTS_N);
    }
}

/* The transaction builder's check: a key of another slot is refused. */
static void test_same_slot(void **state)
{
    (void)state;
    int slot = -1;
    assert_int_equal(dw_slots_same(&slot, "{dw:g:t:0}:meta", 15), 0);
    assert_int_equal(slot, slot_of("{dw:g:t:0}:meta"));
    assert_int_equal(dw_slots_same(&slot, "{dw:g:t:0}:open", 15), 0);
    assert_int_equal(dw_slots_same(&slot, "{dw:g:t:1}:open", 15), -1);
    assert_int_equal(dw_slots_same(&slot, "{dw:g}:lock:eval", 16), -1);
    assert_int_equal(slot, slot_of("{dw:g:t:0}:meta")); /* unchanged by a refusal */
}

static void test_command_key(void **state)
{
    (void)state;
    const char *key = NULL;
    size_t len = 0;
    const char *get[] = {"GET", "{a}b"};
    assert_int_equal(dw_slots_argv_key(2, get, NULL, &key, &len), 1);
    assert_int_equal(len, 4);
    assert_memory_equal(key, "{a}b", 4);
    const char *scan[] = {"SCAN", "0", "MATCH", "x*"};
    assert_int_equal(dw_slots_argv_key(4, scan, NULL, &key, &len), 0);
    const char *multi[] = {"multi"};
    assert_int_equal(dw_slots_argv_key(1, multi, NULL, &key, &len), 0);
    const char *unwatch[] = {"UNWATCH"};
    assert_int_equal(dw_slots_argv_key(1, unwatch, NULL, &key, &len), 0);

    const char *cmd = "*3\r\n$4\r\nHGET\r\n$6\r\nk{x}ey\r\n$1\r\nf\r\n";
    assert_int_equal(dw_slots_cmd_key(cmd, strlen(cmd), &key, &len), 1);
    assert_int_equal(len, 6);
    assert_memory_equal(key, "k{x}ey", 6);
    cmd = "*1\r\n$4\r\nPING\r\n";
    assert_int_equal(dw_slots_cmd_key(cmd, strlen(cmd), &key, &len), 0);
    cmd = "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n";
    assert_int_equal(dw_slots_cmd_key(cmd, strlen(cmd), &key, &len), 0);
    /* binary keys: the length counts, not a NUL */
    const char bin[] = "*2\r\n$3\r\nDEL\r\n$3\r\na\0b\r\n";
    assert_int_equal(dw_slots_cmd_key(bin, sizeof(bin) - 1, &key, &len), 1);
    assert_int_equal(len, 3);
    const char *bad[] = {
        "",        "*",           "*2\r\n$3\r\nGET\r\n", "*2\r\n$3\r\nGET\r\n$9\r\nab\r\n",
        "+OK\r\n", "*1\r\n$x\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dw_slots_cmd_key(bad[i], strlen(bad[i]), &key, &len), -1);
    }
}

static void test_redirects(void **state)
{
    (void)state;
    struct dw_slots_redirect r;
    const char *e = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(dw_slots_redirect(e, strlen(e), &r), DW_SLOTS_MOVED);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);
    e = "ASK 16383 ::1:7002";
    assert_int_equal(dw_slots_redirect(e, strlen(e), &r), DW_SLOTS_ASK);
    assert_int_equal(r.slot, 16383);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 7002);
    e = "MOVED 12 :7003"; /* Redis 7 may leave the host out: the node asked */
    assert_int_equal(dw_slots_redirect(e, strlen(e), &r), DW_SLOTS_MOVED);
    assert_string_equal(r.host, "");
    assert_int_equal(r.port, 7003);
    const char *other[] = {"CLUSTERDOWN The cluster is down", "TRYAGAIN Multiple keys",
                           "ERR unknown command", "MOVED", "ASKING"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        assert_int_equal(dw_slots_redirect(other[i], strlen(other[i]), &r), DW_SLOTS_NONE);
    }
    const char *bad[] = {"MOVED 16384 h:1", "MOVED x h:1",     "ASK 1 h",
                         "ASK 1 h:0",       "MOVED 1 h:70000", "MOVED 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dw_slots_redirect(bad[i], strlen(bad[i]), &r), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_and_slots),
        cmocka_unit_test(test_same_slot),
        cmocka_unit_test(test_command_key),
        cmocka_unit_test(test_redirects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
