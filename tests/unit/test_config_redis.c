/*
 * test_config_redis.c - the Redis connection keys: Sentinel (redis.sentinels, master_name,
 * sentinel_password), the ACL user (redis.username), and redis.tls refused with the sidecar
 * it needs; plus dw_hostport_parse, which reads every host:port of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/io/dw_config_load.h"

#include "dw_test.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define MINIMAL "kafka: {bootstrap.servers: 127.0.0.1:9092}\nmodels: {m: {}}\n"

static char errstr[512];

static void expect_error(const char *yaml, const char *want)
{
    struct dw_config cfg;
    errstr[0] = '\0';
    if (dw_config_load_string(&cfg, yaml, errstr, sizeof(errstr)) == 0) {
        dw_config_free(&cfg);
        fail_msg("expected an error containing \"%s\", but the config loaded", want);
    }
    if (!strstr(errstr, want)) {
        fail_msg("error \"%s\" does not contain \"%s\"", errstr, want);
    }
}

static void load_ok(struct dw_config *cfg, const char *yaml)
{
    errstr[0] = '\0';
    if (dw_config_load_string(cfg, yaml, errstr, sizeof(errstr)) != 0) {
        fail_msg("config did not load: %s", errstr);
    }
}

static void test_hostport(void **state)
{
    (void)state;
    static const struct {
        const char *text, *host;
        int port; /* 0: refused */
    } cases[] = {
        {"127.0.0.1:26379", "127.0.0.1", 26379},
        {"sentinel-0.sentinel:1", "sentinel-0.sentinel", 1},
        {"[::1]:65535", "::1", 65535},
        {"host:0", NULL, 0},
        {"host:65536", NULL, 0},
        {"host:", NULL, 0},
        {":26379", NULL, 0},
        {"host", NULL, 0},
        {"host:26379x", NULL, 0},
        {"host: 26379", NULL, 0},
        {"[]:1", NULL, 0},
        {"", NULL, 0},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
        char host[64] = "untouched";
        int port = -1;
        int rc = dw_hostport_parse(cases[i].text, host, sizeof(host), &port);
        if (cases[i].port) {
            if (rc != 0 || strcmp(host, cases[i].host) != 0 || port != cases[i].port) {
                fail_msg("'%s': rc %d host '%s' port %d", cases[i].text, rc, host, port);
            }
        } else if (rc != -1) {
            fail_msg("'%s' accepted: host '%s' port %d", cases[i].text, host, port);
        }
    }
    char small[4];
    int port = 0;
    assert_int_equal(dw_hostport_parse("abcd:1", small, sizeof(small), &port), -1);
    assert_int_equal(dw_hostport_parse("abc:1", small, sizeof(small), &port), 0);
}

/* dw_hostport_split reads only s[0..len) and takes an empty host (a MOVED ":7003"). */
static void test_hostport_split(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    const char *s = ":7003 and more";
    assert_int_equal(dw_hostport_split(s, 5, host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 7003);
    s = "10.0.0.1:6379:tail";
    assert_int_equal(dw_hostport_split(s, 13, host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.0.0.1");
    assert_int_equal(port, 6379);
    assert_int_equal(dw_hostport_split(s, strlen(s), host, sizeof(host), &port), -1);
    assert_int_equal(dw_hostport_split(":", 1, host, sizeof(host), &port), -1);
    assert_int_equal(dw_hostport_split("", 0, host, sizeof(host), &port), -1);
    assert_int_equal(dw_hostport_parse(":7003", host, sizeof(host), &port), -1);
}

static void test_defaults(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, MINIMAL);
    assert_int_equal(cfg.n_redis_sentinels, 0);
    assert_string_equal(cfg.redis_username, "");
    assert_string_equal(cfg.redis_master_name, "");
    assert_string_equal(cfg.redis_sentinel_password, "");
    dw_config_free(&cfg);
}

static void test_sentinels(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, "redis:\n  sentinels: [\"127.0.0.1:26379\", \"s2:26380\"]\n"
                  "  master_name: mymaster\n  sentinel_password: spw\n" MINIMAL);
    assert_int_equal(cfg.n_redis_sentinels, 2);
    assert_string_equal(cfg.redis_sentinels[0], "127.0.0.1:26379");
    assert_string_equal(cfg.redis_sentinels[1], "s2:26380");
    assert_string_equal(cfg.redis_master_name, "mymaster");
    assert_string_equal(cfg.redis_sentinel_password, "spw");

    /* the dump (--check-config) lists the sentinels and masks the sentinels' password... */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    dw_config_dump(&cfg, out);
    fclose(out);
    assert_non_null(strstr(text, "redis.sentinels: [\"127.0.0.1:26379\", \"s2:26380\"]"));
    assert_null(strstr(text, "spw"));
    dw_config_free(&cfg);
    /* and it loads again (no redis.host/port beside the sentinels) */
    struct dw_config again;
    load_ok(&again, text);
    assert_int_equal(again.n_redis_sentinels, 2);
    assert_string_equal(again.redis_sentinels[1], "s2:26380");
    assert_string_equal(again.redis_master_name, "mymaster");
    dw_config_free(&again);
    free(text);
}

static void test_sentinel_errors(void **state)
{
    (void)state;
    expect_error("redis: {sentinels: [\"127.0.0.1:26379\"]}\n" MINIMAL,
                 "redis.master_name: required with redis.sentinels");
    expect_error("redis: {master_name: m}\n" MINIMAL, "redis.master_name: only with "
                                                      "redis.sentinels");
    expect_error("redis: {sentinel_password: x}\n" MINIMAL,
                 "redis.sentinel_password: only with redis.sentinels");
    expect_error("redis: {sentinels: [\"127.0.0.1:26379\"], master_name: m, host: r1}\n" MINIMAL,
                 "redis.host: not with redis.sentinels");
    expect_error("redis: {sentinels: [\"127.0.0.1:26379\"], master_name: m, port: 6380}\n" MINIMAL,
                 "redis.port: not with redis.sentinels");
    expect_error("redis: {sentinels: [\"127.0.0.1\"], master_name: m}\n" MINIMAL,
                 "redis.sentinels[0]: '127.0.0.1' is not host:port");
    expect_error("redis: {sentinels: [\"a:1\", \"b:99999\"], master_name: m}\n" MINIMAL,
                 "redis.sentinels[1]: 'b:99999' is not host:port");
    expect_error("redis: {sentinels: \"a:1\", master_name: m}\n" MINIMAL,
                 "redis.sentinels: expected a list of host:port");
    expect_error(
        "redis: {sentinels: [\"a:1\"], master_name: m}\nredis.sentinels: [\"b:2\"]\n" MINIMAL,
        "redis.sentinels: given twice");
}

static void test_username(void **state)
{
    (void)state;
    struct dw_config cfg;
    load_ok(&cfg, "redis: {username: dw, password: pw}\n" MINIMAL);
    assert_string_equal(cfg.redis_username, "dw");
    assert_string_equal(cfg.redis_password, "pw");
    dw_config_free(&cfg);
    expect_error("redis: {username: dw}\n" MINIMAL, "redis.username: needs redis.password");
}

static void test_tls_refused(void **state)
{
    (void)state;
    const char *want = "hiredis 0.14 cannot speak TLS; run a TLS sidecar (stunnel) and point "
                       "redis.host/port at it: see docs/operations.md, 'Redis over TLS'";
    expect_error("redis: {tls: true}\n" MINIMAL, want);
    expect_error("redis: {tls: false}\n" MINIMAL, "redis.tls: hiredis 0.14 cannot speak TLS");
    expect_error("redis: {tls: {ca_file: /ca.pem}}\n" MINIMAL, "redis.tls: hiredis 0.14");
    expect_error("redis.tls_cert: /c.pem\n" MINIMAL, "redis.tls_cert: hiredis 0.14");
    expect_error("redis: {ssl: true}\n" MINIMAL, "redis.ssl: hiredis 0.14");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport),        cmocka_unit_test(test_hostport_split),
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_sentinels),
        cmocka_unit_test(test_sentinel_errors), cmocka_unit_test(test_username),
        cmocka_unit_test(test_tls_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
