/*
 * test_state_redis.c - loading stored state against a real redis-server (started here on a free
 * loopback port): every number is parsed strictly (a garbage offset is corruption, not 0),
 * corrupt state (garbage, wrong type, partial) is told apart from Redis being unavailable and
 * names the key at fault, the evaluator's reads (read_metas, cursors, partition count, window
 * starts) validate too, and `state check` / `state drop` see and delete exactly one partition.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <malloc.h>

#include "dw_test_redis.h"

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/io/dw_redis.h"

#include "../unit/dw_test.h"

static struct dw_feature_cfg g_feats[] = {{"amount", DW_FEATURE_NUMERIC}};
static struct dw_model_cfg g_models[] = {{.name = "fraud",
                                          .task = DW_TASK_CLASSIFICATION,
                                          .positive_class = "1",
                                          .features = g_feats,
                                          .n_features = 1}};
static struct dw_config g_cfg;
static pid_t g_redis_pid;
static redisContext *g_raw; /* the test's own connection, to damage state */
static struct dw_redis *g_r;

static int start_redis(void **state)
{
    (void)state;
    int port = dw_test_free_port();
    g_redis_pid = dw_test_redis_start(port, NULL);
    /* glob characters in the group: SCAN patterns must escape them */
    dw_test_redis_config(&g_cfg, port, "st*[x]", g_models, 1);
    g_r = dw_test_redis_wait(&g_cfg);
    g_raw = g_r ? redisConnect("127.0.0.1", port) : NULL;
    return g_raw && !g_raw->err ? 0 : -1;
}

static int stop_redis(void **state)
{
    (void)state;
    dw_redis_free(g_r);
    redisFree(g_raw);
    kill(g_redis_pid, SIGTERM);
    waitpid(g_redis_pid, NULL, 0);
    return 0;
}

/* Runs a command on the test's own connection (binary-safe through %b). */
static void raw(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(g_raw, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    freeReplyObject(rep);
}

static void key_of(int p, const char *suffix, char *buf, size_t size)
{
    snprintf(buf, size, "{dw:%s:%s:%d}:%s", g_cfg.group, g_cfg.topic_predictions, p, suffix);
}

/* A valid checkpoint of partition p: offsets, clocks and one window starting at 60000. */
static void seed(int p)
{
    char errstr[256] = "";
    struct dw_part *part = dw_part_new(&g_cfg, p);
    part->off_pred = 5;
    part->off_label = 3;
    part->max_ts = 119000;
    part->min_ts = 61000;
    part->replay_upto_ms = 180000;
    part->ctr.predictions = 5;
    part->meta_dirty = 1;
    struct dw_agg *agg = dw_agg_new(&g_models[0], 60000);
    agg->dirty = 1;
    dw_part_adopt_window(part, agg);
    /* A fresh partition: a checkpoint count left by an earlier test would be a rollback. */
    assert_true(dw_redis_drop_part(g_r, p, 0, errstr, sizeof(errstr)) >= 0);
    assert_int_equal(dw_redis_claim(g_r, p, "o", errstr, sizeof(errstr)), 0);
    if (dw_redis_checkpoint(g_r, part, "o", 0, 0, NULL, errstr, sizeof(errstr)) != 0) {
        fail_msg("checkpoint: %s", errstr);
    }
    dw_part_free(part);
}

/* Loads partition p; checks the result and, when corrupt, that the key and text are named. */
static struct dw_part *load(int p, int want, const char *want_key, const char *want_text)
{
    char badkey[600] = "", errstr[600] = "";
    struct dw_part *part = dw_part_new(&g_cfg, p);
    int rc = dw_redis_load_part(g_r, part, badkey, sizeof(badkey), errstr, sizeof(errstr));
    if (rc != want) {
        fail_msg("partition %d: load returned %d, want %d: %s", p, rc, want, errstr);
    }
    if (want_key) {
        char key[600];
        key_of(p, want_key, key, sizeof(key));
        assert_string_equal(badkey, key);
        assert_contains(errstr, key);
    }
    if (want_text && !strstr(errstr, want_text)) {
        fail_msg("partition %d: \"%s\" does not say \"%s\"", p, errstr, want_text);
    }
    return part;
}

static void test_meta_numbers_are_strict(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value;
    } bad[] = {
        {"off_pred", "12garbage"}, /* strtoll read 12: re-read from offset 12 */
        {"off_pred", "garbage"},   /* strtoll read 0: re-read from the start */
        {"off_pred", "-2"},        /* below -1 */
        {"off_pred", " 5"},
        {"off_label", "3.0"},
        {"max_ts", "1e3"},
        {"min_ts", "99999999999999999999"},   /* overflow */
        {"max_label_ts", "9000000000000001"}, /* beyond the decoder's bound */
        {"predictions", "-5"},
        {"evicted", ""},
        {"min_ts", "200000"}, /* after max_ts (119000): clocks out of order */
        {"replay_upto_ms", "x"},
    };
    char meta[512];
    key_of(20, "meta", meta, sizeof(meta));
    for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
        seed(20);
        dw_part_free(load(20, DW_LOAD_FOUND, NULL, NULL));
        raw("HSET %s %s %s", meta, bad[i].field, bad[i].value);
        dw_part_free(load(20, DW_LOAD_CORRUPT, "meta", bad[i].field));
    }
    /* DW_NO_TS as stored for a partition without predictions yet is valid. */
    seed(20);
    raw("HSET %s max_ts %lld", meta, (long long)DW_NO_TS);
    struct dw_part *p = load(20, DW_LOAD_FOUND, NULL, NULL);
    assert_int_equal(p->max_ts, DW_NO_TS);
    assert_int_equal(p->off_pred, 5);
    assert_int_equal(p->replay_upto_ms, 180000); /* a rebuild's replay survives a restart */
    assert_int_equal(p->n_wins, 1);
    dw_part_free(p);
}

static void test_corrupt_blobs_and_types(void **state)
{
    (void)state;
    char key[600];
    /* a window blob a decoder rejects: garbage, then truncated */
    seed(21);
    key_of(21, "w:fraud:60000", key, sizeof(key));
    raw("SET %s garbage", key);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "w:fraud:60000", "window aggregate"));
    seed(21);
    redisReply *blob = redisCommand(g_raw, "GET %s", key);
    assert_int_equal(blob->type, REDIS_REPLY_STRING);
    raw("SET %s %b", key, blob->str, (size_t)blob->len - 1);
    freeReplyObject(blob);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "w:fraud:60000", NULL));
    /* a blob stored under another window's key */
    seed(21);
    blob = redisCommand(g_raw, "GET %s", key);
    char other[600];
    key_of(21, "open", other, sizeof(other));
    raw("SADD %s fraud\t120000", other);
    key_of(21, "w:fraud:120000", other, sizeof(other));
    raw("SET %s %b", other, blob->str, (size_t)blob->len);
    freeReplyObject(blob);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "w:fraud:120000", "60000"));
    raw("DEL %s", other);
    key_of(21, "open", other, sizeof(other));
    raw("SREM %s fraud\t120000", other);
    /* wrong Redis types: the window, the open set, the kept set, the join hash, the meta */
    static const char *const suffixes[] = {"w:fraud:60000", "open", "kept", "join", "meta"};
    for (size_t i = 0; i < DW_ARRAY_SIZE(suffixes); i++) {
        seed(21);
        key_of(21, suffixes[i], key, sizeof(key));
        raw("DEL %s", key);
        raw("RPUSH %s x", key);
        dw_part_free(load(21, DW_LOAD_CORRUPT, suffixes[i], "wrong Redis type"));
        raw("DEL %s", key);
    }
    /* an open-set member that is not <model>\t<start> */
    seed(21);
    key_of(21, "open", key, sizeof(key));
    raw("SADD %s fraud\t12x", key);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "open", "fraud"));
    raw("SREM %s fraud\t12x", key);
    /* a kept-set member that is not <model>\t<start>; one of an unconfigured model is skipped */
    key_of(21, "kept", key, sizeof(key));
    raw("SADD %s fraud", key);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "kept", "fraud"));
    raw("DEL %s", key);
    raw("SADD %s gone\t60000 fraud\t0", key);
    struct dw_part *kp = load(21, DW_LOAD_FOUND, NULL, NULL);
    assert_int_equal(kp->n_kept, 1);
    assert_int_equal(kp->kept[0].start_ms, 0);
    dw_part_free(kp);
    raw("DEL %s", key);
    /* the joined set: a member without its span, a bucket of the wrong type, a piece that is
     * not whole entries; and a bucket list without a checkpoint is partial state */
    key_of(21, "done", key, sizeof(key));
    raw("SADD %s fraud\t60000", key);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "done", "<span ms>"));
    raw("DEL %s", key);
    raw("SADD %s fraud\t60000\t60000", key);
    char bucket[600];
    key_of(21, "done:fraud:60000:60000", bucket, sizeof(bucket));
    raw("SET %s x", bucket);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "done:fraud:60000:60000", "wrong Redis type"));
    raw("DEL %s", bucket);
    raw("RPUSH %s 0123456789abcdefghij", bucket); /* 20 bytes: not a 21-byte entry */
    dw_part_free(load(21, DW_LOAD_CORRUPT, "done:fraud:60000:60000", "corrupt"));
    raw("DEL %s", bucket);
    raw("DEL %s", key);
    key_of(22, "done", key, sizeof(key));
    raw("SADD %s fraud\t60000\t60000", key);
    dw_part_free(load(22, DW_LOAD_CORRUPT, "meta", "partial"));
    raw("DEL %s", key);
    /* a join record a decoder rejects names the record */
    key_of(21, "join", key, sizeof(key));
    raw("HSET %s p-42 garbage", key);
    dw_part_free(load(21, DW_LOAD_CORRUPT, "join", "p-42"));
    raw("DEL %s", key);
    /* partial state: join records but no checkpoint */
    key_of(22, "join", key, sizeof(key));
    raw("HSET %s p-1 garbage", key);
    dw_part_free(load(22, DW_LOAD_CORRUPT, "meta", "partial"));
    raw("DEL %s", key);
    dw_part_free(load(22, DW_LOAD_NONE, NULL, NULL));
}

static void test_unavailable_is_not_corrupt(void **state)
{
    (void)state;
    /* A second server, stopped after connecting: the load must say "retry", not "corrupt". */
    struct dw_config cfg = g_cfg;
    cfg.redis_port = dw_test_free_port();
    pid_t pid = dw_test_redis_start(cfg.redis_port, NULL);
    struct dw_redis *r = dw_test_redis_wait(&cfg);
    assert_non_null(r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char badkey[600] = "", errstr[600] = "";
    struct dw_part *p = dw_part_new(&cfg, 0);
    assert_int_equal(dw_redis_load_part(r, p, badkey, sizeof(badkey), errstr, sizeof(errstr)),
                     DW_LOAD_UNAVAILABLE);
    assert_string_equal(badkey, "");
    dw_part_free(p);
    dw_redis_free(r);
}

static void test_evaluator_reads_are_strict(void **state)
{
    (void)state;
    char key[600];
    for (int p = 30; p < 33; p++) {
        seed(p);
    }
    /* read_metas: a garbage clock marks its partition corrupt, naming the field */
    key_of(31, "meta", key, sizeof(key));
    raw("HSET %s eof_ms 17x", key);
    char errstr[256];
    assert_int_equal(dw_redis_quarantine(g_r, 32, "a reason", errstr, sizeof(errstr)), 0);
    struct dw_part_meta metas[33];
    assert_int_equal(dw_redis_read_metas(g_r, 33, metas), 0);
    assert_false(metas[30].corrupt || metas[30].quarantined);
    assert_true(metas[30].present);
    assert_int_equal(metas[30].max_ts, 119000);
    assert_true(metas[31].corrupt);
    assert_contains(metas[31].problem, "eof_ms");
    assert_true(metas[32].quarantined && !metas[32].corrupt);
    assert_contains(metas[32].problem, "a reason");
    assert_int_equal(metas[32].eof_ms, 0);
    assert_false(metas[0].present || metas[0].corrupt); /* no state at all */
    assert_int_equal(metas[0].max_ts, DW_NO_TS);
    raw("DEL %s", key);
    raw("RPUSH %s x", key);
    assert_int_equal(dw_redis_read_metas(g_r, 33, metas), 0);
    assert_true(metas[31].corrupt);
    /* clearing the quarantine mark */
    assert_int_equal(dw_redis_quarantine(g_r, 32, NULL, errstr, sizeof(errstr)), 0);
    assert_int_equal(dw_redis_read_metas(g_r, 33, metas), 0);
    assert_false(metas[32].quarantined);

    /* global integers: cursors and the partition count */
    int64_t v = 0;
    dw_redis_global_key(g_r, "cursor:fraud", key, sizeof(key));
    raw("SET %s 120000", key);
    assert_int_equal(dw_redis_get_i64(g_r, "cursor:fraud", &v), 1);
    assert_int_equal(v, 120000);
    raw("SET %s 12abc", key);
    assert_int_equal(dw_redis_get_i64(g_r, "cursor:fraud", &v), -2);
    raw("DEL %s", key);
    raw("HSET %s a b", key);
    assert_int_equal(dw_redis_get_i64(g_r, "cursor:fraud", &v), -2);
    raw("DEL %s", key);
    assert_int_equal(dw_redis_get_i64(g_r, "cursor:fraud", &v), 0);
    int n = 0;
    dw_redis_global_key(g_r, "partitions", key, sizeof(key));
    raw("SET %s 0", key);
    assert_int_equal(dw_redis_get_partitions(g_r, &n), -2);
    raw("SET %s many", key);
    assert_int_equal(dw_redis_get_partitions(g_r, &n), -2);
    raw("SET %s 6", key);
    assert_int_equal(dw_redis_get_partitions(g_r, &n), 1);
    assert_int_equal(n, 6);

    /* window starts: a key suffix that is not a start is not a window of this model */
    key_of(30, "w:fraud:abc", key, sizeof(key));
    raw("SET %s x", key);
    int64_t *starts = NULL;
    size_t n_starts = 0;
    assert_int_equal(dw_redis_window_starts(g_r, &g_models[0], 31, &starts, &n_starts), 0);
    assert_true(n_starts >= 1);
    for (size_t i = 0; i < n_starts; i++) {
        assert_int_equal(starts[i], 60000); /* every seeded partition's window, and no "abc" */
    }
    free(starts);
    raw("DEL %s", key);
}

static void test_check_and_drop(void **state)
{
    (void)state;
    char key[600], badkey[600], errstr[600];
    seed(40);
    seed(41);
    /* a retired window (not in the open set) that the evaluator would read */
    key_of(40, "w:fraud:0", key, sizeof(key));
    raw("SET %s garbage", key);
    size_t n = 0;
    assert_int_equal(
        dw_redis_check_windows(g_r, 40, &n, badkey, sizeof(badkey), errstr, sizeof(errstr)),
        DW_LOAD_CORRUPT);
    assert_string_equal(badkey, key);
    assert_int_equal(
        dw_redis_check_windows(g_r, 41, &n, badkey, sizeof(badkey), errstr, sizeof(errstr)),
        DW_LOAD_FOUND);
    assert_int_equal(n, 1);
    /* a key of another group that the glob of this one would match unescaped */
    char other[600];
    snprintf(other, sizeof(other), "{dw:stx:%s:40}:meta", g_cfg.topic_predictions);
    raw("SET %s keep", other);
    assert_int_equal(dw_redis_drop_part(g_r, 40, 1, errstr, sizeof(errstr)), 4);
    assert_int_equal(dw_redis_drop_part(g_r, 40, 0, errstr, sizeof(errstr)), 4);
    /* what is left is the tombstone (a meta hash with dropped_ms only) */
    assert_int_equal(dw_redis_drop_part(g_r, 40, 1, errstr, sizeof(errstr)), 1);
    assert_int_equal(dw_redis_part_dropped(g_r, 40), 1);
    assert_int_equal(dw_redis_part_dropped(g_r, 99), 0);
    redisReply *rep = redisCommand(g_raw, "EXISTS %s", other);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    dw_part_free(load(40, DW_LOAD_NONE, NULL, NULL));
    dw_part_free(load(41, DW_LOAD_FOUND, NULL, NULL));
    struct dw_part_owner owner;
    assert_int_equal(dw_redis_part_owner(g_r, 41, &owner), 0);
    assert_string_equal(owner.owner, "o");
    assert_true(owner.updated_ms > 0);
    assert_string_equal(owner.quarantined, "");
}

/* The test connection's EXISTS of global key {dw:<group>}:<name>. */
static int exists(const char *name)
{
    char key[600];
    snprintf(key, sizeof(key), "{dw:%s}:%s", g_cfg.group, name);
    redisReply *rep = redisCommand(g_raw, "EXISTS %s", key);
    assert_non_null(rep);
    int n = (int)rep->integer;
    freeReplyObject(rep);
    return n;
}

/* `driftwatch reference set/reset` (dw_redis_reference_replace) forgets every collection state
 * of the model: the reference windows' aggregates listed in refwins, the trailing ones listed in
 * trailwins, each version's own reference keys listed in vrefs, and the lists; the new
 * reference is stored and refgen moves on. (The lists were read after MULTI was queued: the GETs
 * went into the transaction, the lists came back empty, and every listed key stayed.) */
static void test_reference_replace_forgets_everything(void **state)
{
    (void)state;
    static const char *const listed[] = {"refagg:fraud:60000",   "refagg:fraud:120000",
                                         "trailagg:fraud:60000", "vref:fraud:1.1.0",
                                         "vrefagg:fraud:1.1.0",  "vrefwins:fraud:1.1.0"};
    char key[600];
    for (size_t i = 0; i < DW_ARRAY_SIZE(listed); i++) {
        snprintf(key, sizeof(key), "{dw:%s}:%s", g_cfg.group, listed[i]);
        raw("SET %s x", key);
    }
    snprintf(key, sizeof(key), "{dw:%s}:refwins:fraud", g_cfg.group);
    raw("SET %s [60000,120000]", key);
    snprintf(key, sizeof(key), "{dw:%s}:trailwins:fraud", g_cfg.group);
    raw("SET %s [60000]", key);
    snprintf(key, sizeof(key), "{dw:%s}:vrefs:fraud", g_cfg.group);
    raw("SET %s [\"1.1.0\"]", key);
    char errstr[256] = "";
    int64_t gen = 0;
    if (dw_redis_reference_replace(g_r, "fraud", "REF", 3, &gen, errstr, sizeof(errstr)) != 0) {
        fail_msg("replace: %s", errstr);
    }
    assert_true(gen >= 1);
    for (size_t i = 0; i < DW_ARRAY_SIZE(listed); i++) {
        if (exists(listed[i])) {
            fail_msg("%s still exists after the replacement", listed[i]);
        }
    }
    assert_false(exists("refwins:fraud"));
    assert_false(exists("trailwins:fraud"));
    assert_false(exists("vrefs:fraud"));
    assert_true(exists("ref:fraud"));
    /* the connection is still in step: a plain command answers */
    assert_int_equal(dw_redis_set_i64(g_r, "probe", 7), 0);
    int64_t v = 0;
    assert_int_equal(dw_redis_get_i64(g_r, "probe", &v), 1);
    assert_int_equal(v, 7);
}

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* A value made as it is written: `len` pattern bytes, in pieces of at most max (and at most
 * 300,007: never the adapter's own chunk size). */
struct made {
    size_t len, off, calls;
};

static int make_pattern(void *arg, struct dw_buf *chunk, size_t max)
{
    struct made *m = arg;
    assert_int_equal(chunk->len, 0);
    m->calls++;
    size_t n = DW_MIN(DW_MIN(max, (size_t)300007), m->len - m->off);
    for (size_t i = 0; i < n; i++) {
        dw_buf_put_u8(chunk, pattern_byte(m->off + i));
    }
    m->off += n;
    return m->off < m->len;
}

/* Key `name` holds exactly the first len pattern bytes. */
static void assert_pattern(const char *name, size_t len)
{
    size_t got_len = 0;
    unsigned char *got = (unsigned char *)dw_redis_get_bytes(g_r, name, &got_len);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    for (size_t i = 0; i < len; i++) {
        if (got[i] != pattern_byte(i)) {
            fail_msg("%s: byte %zu of %zu differs", name, i, len);
        }
    }
    free(got);
}

/* A fenced write of a value larger than the adapter's chunk (a reference of millions of
 * values) stores it byte for byte: it is sent as SET of the first chunk and APPENDs of the rest
 * in the same transaction, so that hiredis never holds a second and third copy of all of it.
 * A value made by a fill (the reference's writer) is stored whole from its pieces. */
static void test_fenced_write_of_a_large_value(void **state)
{
    (void)state;
    size_t len = (size_t)7 * 1024 * 1024 / 2 + 12345; /* 3.5 MiB and a bit: four chunks */
    unsigned char *big = dw_malloc(len);
    for (size_t i = 0; i < len; i++) {
        big[i] = pattern_byte(i);
    }
    char errstr[256] = "";
    assert_int_equal(dw_redis_set_i64(g_r, "bigfence", 4), 0);
    struct made made = {.len = (size_t)5 * 1024 * 1024 / 2 + 7}, one = {.len = 10};
    struct dw_redis_bkv sets[] = {{.name = "big", .data = big, .len = len},
                                  {.name = "small", .data = "s", .len = 1},
                                  {.name = "made", .fill = make_pattern, .arg = &made},
                                  {.name = "made1", .fill = make_pattern, .arg = &one}};
    if (dw_redis_write_fenced(g_r, "bigfence", 4, sets, 4, errstr, sizeof(errstr)) != 0) {
        fail_msg("write: %s", errstr);
    }
    assert_pattern("big", len);
    assert_pattern("made", made.len);
    assert_int_equal(made.calls, 9); /* 300,007 bytes a call */
    assert_pattern("made1", one.len);
    assert_int_equal(one.calls, 1);
    char *small = dw_redis_get_str(g_r, "small");
    assert_string_equal(small, "s");
    free(small);
    /* a moved fence writes nothing, large or not */
    assert_int_equal(dw_redis_write_fenced(g_r, "bigfence", 3, sets, 1, errstr, sizeof(errstr)), 1);
    /* the connection is still in step */
    int64_t v = 0;
    assert_int_equal(dw_redis_get_i64(g_r, "bigfence", &v), 1);
    assert_int_equal(v, 4);
    free(big);
}

/* Values of every length around the adapter's own formatting (append_argv: arguments up to 256
 * bytes gathered with the headers in a 1 KiB buffer, longer ones appended as they are), of
 * every byte (CR, LF, '$', '*', NUL among them), many in one transaction, are stored byte for
 * byte, and the connection stays in step after them. */
static void test_values_of_every_length(void **state)
{
    (void)state;
    static const size_t lens[] = {0,   1,   2,   9,   10,   99,   100,  255,  256,  257,  300,
                                  700, 997, 998, 999, 1000, 1001, 1023, 1024, 1025, 4096, 65537};
    enum { N = sizeof(lens) / sizeof(lens[0]) };
    unsigned char *data = dw_malloc(65537);
    for (size_t i = 0; i < 65537; i++) {
        data[i] = pattern_byte(i);
    }
    struct dw_redis_bkv sets[N];
    char names[N][32];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "len%zu", lens[i]);
        sets[i] = (struct dw_redis_bkv){.name = names[i], .data = data, .len = lens[i]};
    }
    char errstr[256] = "";
    assert_int_equal(dw_redis_set_i64(g_r, "lenfence", 1), 0);
    if (dw_redis_write_fenced(g_r, "lenfence", 1, sets, N, errstr, sizeof(errstr)) != 0) {
        fail_msg("write: %s", errstr);
    }
    for (size_t i = 0; i < N; i++) {
        if (lens[i] == 0) {
            assert_true(exists(names[i]));
            size_t got_len = 1;
            free(dw_redis_get_bytes(g_r, names[i], &got_len));
            assert_int_equal(got_len, 0);
        } else {
            assert_pattern(names[i], lens[i]);
        }
    }
    int64_t v = 0;
    assert_int_equal(dw_redis_get_i64(g_r, "lenfence", &v), 1);
    assert_int_equal(v, 1);
    free(data);
}

/* The heap's bytes in use (glibc: the arenas' and the mapped blocks'). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Reading a value of MBs leaves no buffer of its size behind: hiredis kept its reader's until
 * the next reply came, through all the evaluation did after reading an aggregate. */
static void test_large_reply_buffer_released(void **state)
{
    (void)state;
    size_t len = (size_t)3 * 1024 * 1024;
    struct made made = {.len = len};
    struct dw_redis_bkv set = {.name = "bigread", .fill = make_pattern, .arg = &made};
    char errstr[256] = "";
    assert_int_equal(dw_redis_write_fenced(g_r, "readfence", 0, &set, 1, errstr, sizeof(errstr)),
                     0);
    size_t before = heap_in_use();
    assert_pattern("bigread", len);
    size_t after = heap_in_use();
    if (after > before + 256 * 1024) {
        fail_msg("%zu bytes more in use after reading %zu", after - before, len);
    }
    /* and the connection reads on */
    assert_pattern("bigread", len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_numbers_are_strict),
        cmocka_unit_test(test_corrupt_blobs_and_types),
        cmocka_unit_test(test_unavailable_is_not_corrupt),
        cmocka_unit_test(test_evaluator_reads_are_strict),
        cmocka_unit_test(test_check_and_drop),
        cmocka_unit_test(test_reference_replace_forgets_everything),
        cmocka_unit_test(test_fenced_write_of_a_large_value),
        cmocka_unit_test(test_values_of_every_length),
        cmocka_unit_test(test_large_reply_buffer_released),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
