/*
 * test_checkpoint_redis.c - partition checkpoints against a real redis-server (started here on
 * a free loopback port): a checkpoint loaded by a new owner gives back the same state; an id
 * deleted and inserted again between two checkpoints survives; a fenced owner cannot write;
 * joined records go to buckets that are appended, rewritten after an eviction and dropped once
 * join.ttl has passed, and a joined record of the older layout moves there; a retired window's
 * record is kept (listed in the kept set, across a reload) until no reader needs it, then
 * deleted, and one retired past that point is deleted instead of written. A window merged from
 * the partitions' records (one of them sealed) and sized like the window before is the same,
 * its sketches made once. A claim resets the replicated end-of-log marks, not the replicated
 * clocks. A fenced write whose WATCH is lost (a proxy closes the connection on it) fails
 * instead of running unwatched on a new connection. An evaluation commit that Redis ran but
 * whose reply was lost (a proxy forwards EXEC and closes the connection) is reported as unknown,
 * and the evaluator (dw_actions) finds it committed: its alert goes to delivery at once, or, when
 * even the look-up is not answered, on the next tick, without the lease moving.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "../unit/dw_test_agg.h"
#include "dw_test_proxy.h"
#include "dw_test_redis.h"

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_kll.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/io/dw_actions.h"
#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/io/dw_redis.h"

static struct dw_feature_cfg g_feats[] = {{"amount", DW_FEATURE_NUMERIC},
                                          {"country", DW_FEATURE_CATEGORICAL}};
static struct dw_model_cfg g_models[] = {{.name = "fraud",
                                          .task = DW_TASK_CLASSIFICATION,
                                          .positive_class = "1",
                                          .features = g_feats,
                                          .n_features = 2}};
static struct dw_config g_cfg;
static pid_t g_redis_pid;
static int g_port;
static struct dw_prediction *g_ev;

static int start_redis(void **state)
{
    (void)state;
    int port = dw_test_free_port();
    g_port = port;
    g_redis_pid = dw_test_redis_start(port, NULL);
    dw_test_redis_config(&g_cfg, port, "ckpt", g_models, 1);
    g_ev = calloc(1, sizeof(struct dw_prediction) + 2 * sizeof(struct dw_val));
    struct dw_redis *r = dw_test_redis_wait(&g_cfg);
    dw_redis_free(r);
    return r ? 0 : -1;
}

static int stop_redis(void **state)
{
    (void)state;
    kill(g_redis_pid, SIGTERM);
    waitpid(g_redis_pid, NULL, 0);
    free(g_ev);
    return 0;
}

static void predict(struct dw_part *p, const char *id, int64_t ts, const char *country)
{
    struct dw_prediction *ev = g_ev;
    dw_test_prediction(ev, &g_models[0], id, ts);
    ev->features[1].kind = DW_VAL_STR;
    ev->features[1].str = country;
    ev->features[1].len = strlen(country);
    dw_part_on_prediction(p, ev);
    p->off_pred++;
}

static void label(struct dw_part *p, const char *id, int64_t ts, const char *cls)
{
    struct dw_label lab;
    memset(&lab, 0, sizeof(lab));
    lab.id = id;
    lab.id_len = strlen(id);
    lab.ts_ms = ts;
    lab.label.len = strlen(cls);
    memcpy(lab.label.text, cls, lab.label.len + 1);
    dw_part_on_label(p, &lab);
    p->off_label++;
}

static void checkpoint(struct dw_redis *r, struct dw_part *p, const char *owner, int want)
{
    char errstr[256] = "";
    int rc = dw_redis_checkpoint(r, p, owner, 0, 0, NULL, errstr, sizeof(errstr));
    if (rc != want) {
        fail_msg("checkpoint returned %d, want %d: %s", rc, want, errstr);
    }
}

static void assert_same_window(struct dw_part *a, struct dw_part *b, int64_t start)
{
    struct dw_agg *wa = dw_part_window(a, &g_models[0], start);
    struct dw_agg *wb = dw_part_window(b, &g_models[0], start);
    assert_non_null(wa);
    assert_non_null(wb);
    dw_test_assert_same_encoding(wa, wb);
}

static void test_round_trip_and_reinsert(void **state)
{
    (void)state;
    char errstr[256];
    struct dw_redis *r = dw_redis_connect(&g_cfg, errstr, sizeof(errstr));
    assert_non_null(r);
    struct dw_part *p = dw_part_new(&g_cfg, 3);
    p->off_pred = p->off_label = 0;
    assert_int_equal(dw_redis_claim(r, 3, "owner-a", errstr, sizeof(errstr)), 0);
    label(p, "x", 1000, "1"); /* parked */
    label(p, "x", 1500, "0"); /* a parked duplicate that disagrees */
    predict(p, "a", 2000, "DE");
    label(p, "a", 2500, "1");
    checkpoint(r, p, "owner-a", 0);
    /* x's parked label expires on the prediction clock and x comes back as a prediction. */
    predict(p, "y", 1000 + g_cfg.join_ttl_ms + 1, "FR");
    predict(p, "x", 1000 + g_cfg.join_ttl_ms + 2, "FR");
    checkpoint(r, p, "owner-a", 0);

    struct dw_part *q = dw_part_new(&g_cfg, 3);
    assert_int_equal(dw_redis_claim(r, 3, "owner-b", errstr, sizeof(errstr)), 0);
    assert_int_equal(dw_redis_load_part(r, q, NULL, 0, errstr, sizeof(errstr)), 1);
    assert_int_equal(q->off_pred, p->off_pred);
    assert_int_equal(q->off_label, p->off_label);
    assert_int_equal(q->max_ts, p->max_ts);
    assert_int_equal(q->min_ts, p->min_ts);
    assert_int_equal(q->max_label_ts, p->max_label_ts);
    assert_int_equal(q->ctr.expired_labels, 2); /* x's parked label and its repeat */
    assert_int_equal(q->join.count, p->join.count);
    struct dw_join_rec *x = dw_join_find(&q->join, "x", 1);
    assert_non_null(x); /* survived: deleted and inserted again between checkpoints */
    assert_int_equal(x->state, DW_JOIN_PRED);
    assert_int_equal(q->n_wins, p->n_wins);
    assert_same_window(p, q, 0);
    assert_same_window(p, q, 300000);

    /* The previous owner is fenced: its checkpoint is refused and changes nothing. */
    predict(p, "z", 301000, "IT");
    checkpoint(r, p, "owner-a", -2);
    struct dw_part *again = dw_part_new(&g_cfg, 3);
    assert_int_equal(dw_redis_load_part(r, again, NULL, 0, errstr, sizeof(errstr)), 1);
    assert_null(dw_join_find(&again->join, "z", 1));
    dw_part_free(again);
    dw_part_free(q);
    dw_part_free(p);
    dw_redis_free(r);
}

static void test_merged_window(void **state)
{
    (void)state;
    char errstr[256];
    struct dw_redis *r = dw_redis_connect(&g_cfg, errstr, sizeof(errstr));
    assert_non_null(r);
    struct dw_part *parts[2];
    for (int i = 0; i < 2; i++) {
        parts[i] = dw_part_new(&g_cfg, 10 + i);
        assert_int_equal(dw_redis_claim(r, 10 + i, "o", errstr, sizeof(errstr)), 0);
    }
    predict(parts[0], "m1", 605000, "DE"); /* window 600000: no other test writes there */
    predict(parts[1], "m2", 606000, "DE");
    predict(parts[1], "m3", 607000, "FR");
    label(parts[1], "m3", 608000, "1");
    for (int i = 0; i < 2; i++) {
        checkpoint(r, parts[i], "o", 0);
    }
    /* Partitions 0..11 exist; only 10 and 11 have data. */
    struct dw_agg *m =
        dw_redis_load_window(r, &g_models[0], 600000, 12, NULL, errstr, sizeof(errstr));
    assert_non_null(m);
    assert_int_equal(m->all.predictions, 3);
    assert_int_equal(m->all.labeled, 1);
    assert_int_equal(m->feats[1].count, 3);
    dw_agg_free(m);
    for (int i = 0; i < 2; i++) {
        dw_part_free(parts[i]);
    }
    dw_redis_free(r);
}

/*
 * A window merged from three partitions' records (300, 500 and 200 values of "amount"; the
 * second record sealed, its sketches in its sealed copy) sized like a window of the same counts
 * (its sketches dropped): the same aggregate, byte for byte, as one merged without, and its
 * sketch made once with room for the 1,000 values (1,024 items, what doubling from 16 reaches),
 * not grown by doubling from the first record's 300 to 1,600 items.
 */
static void test_merged_window_sized_like(void **state)
{
    (void)state;
    enum { N = 3, FIRST = 30, START = 1200000 }; /* partitions and a window no other test uses */
    static const int values[N] = {300, 500, 200};
    char errstr[256], id[32];
    struct dw_redis *r = dw_redis_connect(&g_cfg, errstr, sizeof(errstr));
    assert_non_null(r);
    struct dw_part *parts[N];
    for (int i = 0; i < N; i++) {
        parts[i] = dw_part_new(&g_cfg, FIRST + i);
        assert_int_equal(dw_redis_claim(r, FIRST + i, "o", errstr, sizeof(errstr)), 0);
        for (int k = 0; k < values[i]; k++) {
            snprintf(id, sizeof(id), "s%d-%d", i, k);
            predict(parts[i], id, START + 100 * k + 37 * i, k % 2 ? "DE" : "FR");
        }
    }
    predict(parts[1], "later", START + 60000 + 20000, "DE"); /* past the window and lateness */
    assert_int_equal(dw_part_seal(parts[1]), 1);
    for (int i = 0; i < N; i++) {
        checkpoint(r, parts[i], "o", 0);
    }
    const int n_parts = FIRST + N;
    struct dw_agg *plain =
        dw_redis_load_window(r, &g_models[0], START, n_parts, NULL, errstr, sizeof(errstr));
    struct dw_agg *like =
        dw_redis_load_window(r, &g_models[0], START, n_parts, NULL, errstr, sizeof(errstr));
    assert_non_null(plain);
    assert_non_null(like);
    dw_agg_drop_sketches(like);
    struct dw_agg *sized =
        dw_redis_load_window(r, &g_models[0], START, n_parts, like, errstr, sizeof(errstr));
    assert_non_null(sized);
    assert_int_equal(sized->feats[0].count, 1000);
    dw_test_assert_same_encoding(sized, plain);
    struct dw_kll *room = dw_kll_new(0, DW_AGG_MERGE_EXACT, 1);
    dw_kll_reserve(room, 1000);
    assert_int_equal(dw_kll_memory_bytes(sized->feats[0].sk), dw_kll_memory_bytes(room));
    /* without: 300 items, then 800 (300 + 500), then 1,600 (doubled) */
    assert_int_equal(dw_kll_memory_bytes(plain->feats[0].sk) - dw_kll_memory_bytes(room),
                     (1600 - 1024) * sizeof(double));
    dw_kll_destroy(room);
    dw_agg_free(sized);
    dw_agg_free(like);
    dw_agg_free(plain);
    for (int i = 0; i < N; i++) {
        dw_part_free(parts[i]);
    }
    dw_redis_free(r);
}

/* An integer reply of a raw command (the test reads Redis behind the adapter's back). */
static long long redis_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    if (rep->type != REDIS_REPLY_INTEGER) {
        fail_msg("'%s': not an integer reply: %s", fmt, rep->str ? rep->str : "?");
    }
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* Loads partition `partition` into a fresh dw_part as a new owner would. */
static struct dw_part *reload(struct dw_redis *r, int32_t partition)
{
    char errstr[256] = "";
    struct dw_part *q = dw_part_new(&g_cfg, partition);
    if (dw_redis_load_part(r, q, NULL, 0, errstr, sizeof(errstr)) != 1) {
        fail_msg("load of partition %d: %s", (int)partition, errstr);
    }
    return q;
}

/* Bytes of every bucket of the joined set of partition 5 (the set's members named). */
static long long bucket_bytes(redisContext *c)
{
    redisReply *rep = redisCommand(c, "SMEMBERS {dw:ckpt:predictions:5}:done");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    long long total = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        char model[32];
        long long start, span;
        assert_int_equal(sscanf(rep->element[i]->str, "%31[^\t]\t%lld\t%lld", model, &start, &span),
                         3);
        redisReply *pieces = redisCommand(
            c, "LRANGE {dw:ckpt:predictions:5}:done:%s:%lld:%lld 0 -1", model, start, span);
        assert_non_null(pieces);
        assert_int_equal(pieces->type, REDIS_REPLY_ARRAY);
        for (size_t k = 0; k < pieces->elements; k++) {
            total += (long long)pieces->element[k]->len;
        }
        freeReplyObject(pieces);
    }
    freeReplyObject(rep);
    return total;
}

static void test_joined_set_in_redis(void **state)
{
    (void)state;
    char errstr[256], id[32];
    struct dw_redis *r = dw_redis_connect(&g_cfg, errstr, sizeof(errstr));
    assert_non_null(r);
    redisContext *c = redisConnect("127.0.0.1", g_port);
    assert_true(c && !c->err);
    struct dw_part *p = dw_part_new(&g_cfg, 5);
    p->off_pred = p->off_label = 0;
    assert_int_equal(dw_redis_claim(r, 5, "o", errstr, sizeof(errstr)), 0);
    for (int i = 0; i < 200; i++) { /* 0 .. 199 s: buckets 0, 60, 120 and 180 s */
        snprintf(id, sizeof(id), "j%d", i);
        predict(p, id, i * 1000, "DE");
        label(p, id, i * 1000 + 500, i % 2 ? "1" : "0");
    }
    predict(p, "waiting", 199000, "DE");
    checkpoint(r, p, "o", 0);
    /* Joined records: 21 bytes each in the buckets; the hash holds the one that waits. */
    assert_int_equal(redis_int(c, "HLEN {dw:ckpt:predictions:5}:join"), 1);
    assert_int_equal(redis_int(c, "SCARD {dw:ckpt:predictions:5}:done"), 4);
    assert_int_equal(bucket_bytes(c), 200 * DW_JOIN_DONE_BYTES);
    /* More joins: appended to their buckets, nothing written twice. */
    label(p, "waiting", 200000, "1");
    checkpoint(r, p, "o", 0);
    assert_int_equal(redis_int(c, "HLEN {dw:ckpt:predictions:5}:join"), 0);
    assert_int_equal(bucket_bytes(c), 201 * DW_JOIN_DONE_BYTES);

    /* A new owner knows them: a later label is a duplicate (a conflict when it differs). */
    struct dw_part *q = reload(r, 5);
    assert_int_equal(q->join.n_done, 201);
    assert_int_equal(q->join.n_buckets, 4);
    label(q, "j190", 201000, "0");
    label(q, "j191", 201000, "0");
    struct dw_agg *w3 = dw_part_window(q, &g_models[0], 180000);
    assert_non_null(w3);
    assert_int_equal(w3->duplicate_labels, 2);
    assert_int_equal(w3->conflicts, 1);
    assert_int_equal(w3->all.labeled, 21);
    dw_part_free(q);

    /* Eviction of the oldest: their buckets are rewritten, and a new owner does not bring the
     * evicted entries back. */
    dw_part_maintain(p, 100);
    assert_true(p->ctr.evicted > 100);
    size_t kept = p->join.n_done;
    checkpoint(r, p, "o", 0);
    assert_int_equal(bucket_bytes(c), (long long)kept * DW_JOIN_DONE_BYTES);
    q = reload(r, 5);
    assert_int_equal(q->join.n_done, kept);
    assert_int_equal(q->ctr.evicted, p->ctr.evicted);
    dw_part_free(q);

    /* The label clock passes join.ttl beyond every bucket: they are deleted. */
    label(p, "orphan", 199000 + g_cfg.join_ttl_ms + 60000, "1");
    dw_part_maintain(p, 1000);
    assert_int_equal(p->join.n_done, 0);
    checkpoint(r, p, "o", 0);
    assert_int_equal(redis_int(c, "EXISTS {dw:ckpt:predictions:5}:done"), 0);
    assert_int_equal(bucket_bytes(c), 0);

    /* A joined record of the older layout (a field of the hash) moves to a bucket. */
    struct dw_join_rec old;
    memset(&old, 0, sizeof(old));
    old.state = DW_JOIN_DONE;
    old.ts_ms = 500000;
    old.win_ms = 480000;
    struct dw_buf b;
    dw_buf_init(&b);
    dw_join_rec_encode(&old, "fraud", &b);
    redisReply *rep = redisCommand(c, "HSET {dw:ckpt:predictions:5}:join old %b", b.data, b.len);
    assert_non_null(rep);
    freeReplyObject(rep);
    dw_buf_free(&b);
    q = reload(r, 5);
    assert_int_equal(q->join.count, 1); /* the parked orphan */
    assert_int_equal(q->join.n_done, 1);
    assert_non_null(dw_join_done_find(&q->join, "old", 3));
    assert_int_equal(dw_redis_claim(r, 5, "o2", errstr, sizeof(errstr)), 0);
    checkpoint(r, q, "o2", 0);
    assert_int_equal(redis_int(c, "HEXISTS {dw:ckpt:predictions:5}:join old"), 0);
    assert_int_equal(bucket_bytes(c), DW_JOIN_DONE_BYTES);
    struct dw_part *q2 = reload(r, 5);
    assert_non_null(dw_join_done_find(&q2->join, "old", 3));
    dw_part_free(q2);

    /* A listed bucket gone from Redis (deleted behind our back): loaded empty with a warning,
     * and taken off the list by the next checkpoint. */
    assert_int_equal(redis_int(c, "SCARD {dw:ckpt:predictions:5}:done"), 1);
    assert_int_equal(redis_int(c, "DEL {dw:ckpt:predictions:5}:done:fraud:480000:60000"), 1);
    q2 = reload(r, 5);
    assert_int_equal(q2->join.n_done, 0);
    assert_int_equal(dw_redis_claim(r, 5, "o3", errstr, sizeof(errstr)), 0);
    checkpoint(r, q2, "o3", 0);
    assert_int_equal(redis_int(c, "SCARD {dw:ckpt:predictions:5}:done"), 0);
    dw_part_free(q2);
    dw_part_free(q);
    dw_part_free(p);
    redisFree(c);
    dw_redis_free(r);
}

/* One prediction and its label at ts: moves both clocks of partition p. */
static void joined(struct dw_part *p, const char *id, int64_t ts)
{
    predict(p, id, ts, "DE");
    label(p, id, ts, "1");
}

/* A driftwatch connection and a raw one (to look at or damage what it wrote). */
struct conns {
    struct dw_redis *r;
    redisContext *c;
};

static struct conns conns_open(void)
{
    char errstr[256] = "";
    struct conns k = {dw_redis_connect(&g_cfg, errstr, sizeof(errstr)),
                      redisConnect("127.0.0.1", g_port)};
    assert_non_null(k.r);
    assert_true(k.c && !k.c->err);
    return k;
}

static void conns_close(struct conns *k)
{
    redisFree(k->c);
    dw_redis_free(k->r);
}

static long long exists_window(redisContext *c, long long start)
{
    return redis_int(c, "EXISTS {dw:ckpt:predictions:6}:w:fraud:%lld", start);
}

static void test_window_records_kept_then_deleted(void **state)
{
    (void)state;
    char errstr[256];
    struct conns k = conns_open();
    struct dw_redis *r = k.r;
    redisContext *c = k.c;
    struct dw_part *p = dw_part_new(&g_cfg, 6);
    p->off_pred = p->off_label = 0;
    assert_int_equal(dw_redis_claim(r, 6, "o", errstr, sizeof(errstr)), 0);
    /* windows of 60 s, lateness 10 s, horizon 120 s: window 0 retires once both clocks pass
     * 180 s (watermark = max time - 10 s) */
    joined(p, "a0", 1000);
    joined(p, "a1", 61000);
    joined(p, "a2", 121000);
    joined(p, "b", 200000);
    dw_part_maintain(p, 1000);
    checkpoint(r, p, "o", 0);
    assert_int_equal(exists_window(c, 0), 1);
    assert_int_equal(redis_int(c, "SISMEMBER {dw:ckpt:predictions:6}:kept fraud\t0"), 1);
    assert_int_equal(redis_int(c, "SISMEMBER {dw:ckpt:predictions:6}:open fraud\t0"), 0);
    joined(p, "c", 260000); /* window 60 s retires */
    dw_part_maintain(p, 1000);
    checkpoint(r, p, "o", 0);
    assert_int_equal(redis_int(c, "SCARD {dw:ckpt:predictions:6}:kept"), 2);
    struct dw_part *q = reload(r, 6);
    assert_int_equal(q->n_kept, 2);
    dw_part_free(q);

    /* The evaluator is past window 0's last reader: its record and entry go. */
    dw_part_set_gc(p, &g_models[0], 60000);
    checkpoint(r, p, "o", 0);
    assert_int_equal(exists_window(c, 0), 0);
    assert_int_equal(exists_window(c, 60000), 1);
    assert_int_equal(redis_int(c, "SCARD {dw:ckpt:predictions:6}:kept"), 1);
    assert_int_equal(p->n_kept, 1);
    /* An earlier point changes nothing; a window retired past the point is deleted, not
     * written, and the kept one before it goes too. */
    dw_part_set_gc(p, &g_models[0], 0);
    assert_false(dw_part_gc_due(p, &g_models[0], 60000 + 1));
    assert_true(dw_part_gc_due(p, &g_models[0], 0));
    dw_part_set_gc(p, &g_models[0], 180000);
    joined(p, "d", 320000); /* window 120 s retires */
    dw_part_maintain(p, 1000);
    assert_null(dw_part_window(p, &g_models[0], 120000));
    checkpoint(r, p, "o", 0);
    assert_int_equal(exists_window(c, 60000), 0);
    assert_int_equal(exists_window(c, 120000), 0);
    assert_int_equal(redis_int(c, "SCARD {dw:ckpt:predictions:6}:kept"), 0);
    assert_int_equal(redis_int(c, "SISMEMBER {dw:ckpt:predictions:6}:open fraud\t120000"), 0);
    assert_int_equal(p->n_kept, 0);
    /* The windows still in memory are written as before. */
    assert_int_equal(exists_window(c, 180000), 1);
    q = reload(r, 6);
    assert_int_equal(q->n_kept, 0);
    assert_non_null(dw_part_window(q, &g_models[0], 180000));
    dw_part_free(q);
    dw_part_free(p);
    conns_close(&k);
}

/* A command that fails inside the transaction (here SADD on an open set that someone made a
 * string) is applied around, not rolled back, by Redis: EXEC still answers with an array. The
 * checkpoint must report it, not count the partition as written. */
static void test_error_inside_exec_fails(void **state)
{
    (void)state;
    char errstr[256] = "";
    struct conns k = conns_open();
    struct dw_redis *r = k.r;
    redisContext *c = k.c;
    struct dw_part *p = dw_part_new(&g_cfg, 7);
    p->off_pred = p->off_label = 0;
    assert_int_equal(dw_redis_claim(r, 7, "o", errstr, sizeof(errstr)), 0);
    predict(p, "a", 1000, "DE");
    freeReplyObject(redisCommand(c, "SET {dw:ckpt:predictions:7}:open not-a-set"));
    int rc = dw_redis_checkpoint(r, p, "o", 0, 0, NULL, errstr, sizeof(errstr));
    assert_int_equal(rc, -1);
    assert_non_null(strstr(errstr, "WRONGTYPE"));
    assert_int_equal(p->ckpt_seq, 0); /* not counted as written */
    dw_part_free(p);
    conns_close(&k);
}

/* The same for the evaluator's commit: a hash that someone made a string fails HSET inside
 * EXEC, and the commit says so instead of reporting it done. */
static void test_error_inside_eval_commit_fails(void **state)
{
    (void)state;
    char errstr[256] = "";
    struct conns k = conns_open();
    struct dw_redis *r = k.r;
    redisContext *c = k.c;
    char lease[DW_REDIS_NAME_MAX];
    dw_redis_name_eval_lease("m", lease, sizeof(lease));
    assert_int_equal(dw_redis_lease(r, lease, "o", 60000), 1);
    freeReplyObject(redisCommand(c, "SET {dw:ckpt}:evalstate not-a-hash"));
    struct dw_redis_kv set = {.name = "evalnote", .value = "v"};
    struct dw_redis_kv field = {.name = "f", .value = "1"};
    int rc =
        dw_redis_eval_commit(r, "o", "m", &set, 1, "evalstate", &field, 1, errstr, sizeof(errstr));
    assert_int_equal(rc, -1);
    assert_non_null(strstr(errstr, "WRONGTYPE"));
    /* the commands around it were applied: Redis has no rollback */
    redisReply *rep = redisCommand(c, "GET {dw:ckpt}:evalnote");
    assert_string_equal(rep->str, "v");
    freeReplyObject(rep);
    conns_close(&k);
}

/* A lease per model: a pod's commit of model a is fenced by a's lease only (another pod holding
 * b's lease does not stop it, another holding a's does), a release never deletes another's
 * lease, and the key is lock:eval:<model>. */
static void test_eval_lease_per_model(void **state)
{
    (void)state;
    char errstr[256] = "";
    struct conns k = conns_open();
    struct dw_redis *r = k.r;
    redisContext *c = k.c;
    char la[DW_REDIS_NAME_MAX], lb[DW_REDIS_NAME_MAX];
    dw_redis_name_eval_lease("a", la, sizeof(la));
    dw_redis_name_eval_lease("b", lb, sizeof(lb));
    assert_int_equal(dw_redis_lease(r, la, "pod1", 60000), 1);
    assert_int_equal(dw_redis_lease(r, lb, "pod2", 60000), 1);
    assert_int_equal(dw_redis_lease(r, la, "pod2", 60000), 0); /* held by pod1 */
    assert_int_equal(dw_redis_lease(r, la, "pod1", 60000), 1); /* renewed */
    redisReply *rep = redisCommand(c, "GET {dw:ckpt}:lock:eval:a");
    assert_string_equal(rep->str, "pod1");
    freeReplyObject(rep);
    struct dw_redis_kv set = {.name = "cursor:a", .value = "7"};
    assert_int_equal(dw_redis_eval_commit(r, "pod1", "a", &set, 1, "deliveries", NULL, 0, errstr,
                                          sizeof(errstr)),
                     0);
    assert_int_equal(dw_redis_eval_commit(r, "pod2", "a", &set, 1, "deliveries", NULL, 0, errstr,
                                          sizeof(errstr)),
                     1);
    assert_non_null(strstr(errstr, "model a"));
    dw_redis_release(r, la, "pod2"); /* not pod2's: stays */
    assert_int_equal(redis_int(c, "EXISTS {dw:ckpt}:lock:eval:a"), 1);
    dw_redis_release(r, la, "pod1");
    assert_int_equal(redis_int(c, "EXISTS {dw:ckpt}:lock:eval:a"), 0);
    assert_int_equal(redis_int(c, "EXISTS {dw:ckpt}:lock:eval:b"), 1);
    conns_close(&k);
}

/* The heartbeat set: each beat lists the live pods; a member older than the live period is
 * removed; a pod that leaves is gone at once. */
static void test_pods_heartbeat(void **state)
{
    (void)state;
    struct conns k = conns_open();
    struct dw_redis *r = k.r;
    redisContext *c = k.c;
    char **pods = NULL;
    size_t n = 0;
    const int64_t now = 1700000000000, live = 10000;
    assert_int_equal(dw_redis_pods_beat(r, "old", now - live - 1, live, &pods, &n), 0);
    assert_int_equal(n, 1);
    free(pods[0]);
    free(pods);
    assert_int_equal(dw_redis_pods_beat(r, "p1", now - live, live, &pods, &n), 0);
    free(pods[0]);
    free(pods[1]);
    free(pods);
    assert_int_equal(dw_redis_pods_beat(r, "p2", now, live, &pods, &n), 0);
    assert_int_equal(n, 2); /* "old" stale: removed; p1 exactly one period old: live */
    assert_string_equal(pods[0], "p1");
    assert_string_equal(pods[1], "p2");
    for (size_t i = 0; i < n; i++) {
        free(pods[i]);
    }
    free(pods);
    assert_int_equal(redis_int(c, "ZCARD {dw:ckpt}:pods"), 2);
    dw_redis_pods_leave(r, "p1");
    assert_int_equal(redis_int(c, "ZCARD {dw:ckpt}:pods"), 1);
    conns_close(&k);
}

/* Partitions checkpointed in one batch (the next owner check rides behind the transaction
 * before it): each gets its own result, a fenced or lost one in the middle does not stop the
 * others, and each written one loads back. */
static void test_checkpoint_many(void **state)
{
    (void)state;
    char errstr[256] = "";
    struct conns k = conns_open();
    struct dw_redis *r = k.r;
    redisContext *c = k.c;
    enum { N = 5, FIRST = 20 }; /* partitions no other test uses */
    const char *owners[N] = {"o", "other", "o", "o", "o"};
    struct dw_part *parts[N];
    struct dw_redis_ckpt items[N];
    for (int i = 0; i < N; i++) {
        parts[i] = dw_part_new(&g_cfg, FIRST + i);
        parts[i]->off_pred = parts[i]->off_label = 0;
        assert_int_equal(dw_redis_claim(r, FIRST + i, owners[i], errstr, sizeof(errstr)), 0);
        char id[16];
        snprintf(id, sizeof(id), "p%d", i);
        joined(parts[i], id, 1000 + i);
        items[i] = (struct dw_redis_ckpt){.part = parts[i]};
    }
    freeReplyObject(redisCommand(c, "DEL {dw:ckpt:predictions:%d}:meta", FIRST + 3));
    dw_redis_checkpoint_many(r, items, N, "o");
    const int want[N] = {0, -2, 0, -3, 0};
    for (int i = 0; i < N; i++) {
        if (items[i].result != want[i]) {
            fail_msg("partition %d: result %d, want %d: %s", FIRST + i, items[i].result, want[i],
                     items[i].err);
        }
        assert_int_equal(parts[i]->ckpt_seq, want[i] == 0 ? 1 : 0);
        assert_true(want[i] == 0 ? items[i].bytes > 0 : items[i].bytes == 0);
    }
    assert_non_null(strstr(items[1].err, "owned by another consumer"));
    assert_non_null(strstr(items[3].err, "gone from Redis"));
    /* A second batch writes again on the same connection (no WATCH left behind). */
    joined(parts[4], "q", 2000);
    dw_redis_checkpoint_many(r, items + 4, 1, "o");
    assert_int_equal(items[4].result, 0);
    for (int i = 0; i < N; i += 2) {
        struct dw_part *q = reload(r, FIRST + i);
        assert_int_equal(q->off_pred, parts[i]->off_pred);
        assert_int_equal(q->off_label, parts[i]->off_label);
        assert_int_equal(q->ckpt_seq, parts[i]->ckpt_seq);
        assert_same_window(parts[i], q, 0);
        dw_part_free(q);
    }
    redisReply *rep = redisCommand(c, "HGET {dw:ckpt:predictions:%d}:meta off_pred", FIRST + 1);
    assert_int_equal(rep->type, REDIS_REPLY_NIL); /* the other owner's partition: untouched */
    freeReplyObject(rep);
    for (int i = 0; i < N; i++) {
        dw_part_free(parts[i]);
    }
    conns_close(&k);
}

/* A claim resets the replicated end-of-log marks with the written ones: the new owner writes
 * no safe_* fields until a replica acknowledges one of its checkpoints, and an old owner's
 * "idle since" kept until then would let a Redis Cluster close windows without the partition.
 * The replicated clocks stay (a stale clock only holds windows). */
static void test_claim_clears_replicated_eof(void **state)
{
    (void)state;
    enum { P = 40 }; /* a partition no other test uses */
    const long long ts = 1700000040000LL, since = 1700000000000LL;
    char errstr[256] = "";
    struct conns k = conns_open();
    freeReplyObject(redisCommand(k.c,
                                 "HSET {dw:ckpt:predictions:%d}:meta owner old off_pred 5 "
                                 "max_ts %lld max_label_ts %lld eof_ms %lld label_eof_ms %lld "
                                 "safe_max_ts %lld safe_max_label_ts %lld safe_eof_ms %lld "
                                 "safe_label_eof_ms %lld",
                                 P, ts, ts, since, since, ts, ts, since, since));
    assert_int_equal(dw_redis_claim(k.r, P, "new", errstr, sizeof(errstr)), 0);
    struct dw_part_meta metas[P + 1];
    assert_int_equal(dw_redis_read_metas(k.r, P + 1, metas), 0);
    const struct dw_part_meta *m = &metas[P];
    assert_false(m->corrupt);
    assert_int_equal(m->eof_ms, 0);
    assert_int_equal(m->label_eof_ms, 0);
    assert_int_equal(m->safe_eof_ms, 0);
    assert_int_equal(m->safe_label_eof_ms, 0);
    assert_true(m->safe_present);
    assert_int_equal(m->safe_max_ts, ts);
    assert_int_equal(m->safe_max_label_ts, ts);
    conns_close(&k);
}

/* The string value of key (raw connection c), into buf ("" when absent). */
static void redis_str(redisContext *c, const char *key, char *buf, size_t size)
{
    redisReply *rep = redisCommand(c, "GET %s", key);
    assert_non_null(rep);
    snprintf(buf, size, "%s", rep->type == REDIS_REPLY_STRING ? rep->str : "");
    freeReplyObject(rep);
}

/* A driftwatch connection through a proxy in front of the test's server (dw_test_proxy.h). */
static struct dw_redis *connect_proxied(const struct dw_test_proxy_rule *rules, size_t n_rules,
                                        struct dw_config *cfg, pid_t *proxy)
{
    char errstr[256] = "";
    int port = 0;
    *proxy = dw_test_proxy_start(g_port, rules, n_rules, &port);
    assert_true(*proxy > 0);
    *cfg = g_cfg;
    cfg->redis_port = port;
    struct dw_redis *r = dw_redis_connect(cfg, errstr, sizeof(errstr));
    if (!r) {
        fail_msg("connect through the proxy: %s", errstr);
    }
    return r;
}

/*
 * The evaluator's commit is fenced by its WATCH of the model's lease, so the WATCH must hold on
 * the connection that runs MULTI/EXEC. A proxy closes the connection on WATCH (its reply is
 * lost) and, just before MULTI, another pod takes the lease: the commit is not reported done
 * and writes nothing. (It used to ignore the WATCH reply: the GET reconnected, saw the lease
 * still ours, and MULTI/EXEC ran unwatched on the new connection, over the other pod's lease.)
 * Then, with the WATCH kept, the lease taken at MULTI aborts the commit; once ours, it commits.
 */
static void test_eval_commit_watch_lost(void **state)
{
    (void)state;
    char errstr[256] = "", v[64];
    struct conns k = conns_open();
    char lease[DW_REDIS_NAME_MAX];
    dw_redis_name_eval_lease("wl", lease, sizeof(lease));
    assert_int_equal(dw_redis_lease(k.r, lease, "o", 60000), 1);
    const struct dw_test_proxy_rule rules[] = {
        {.on = "WATCH", .close = 1},
        {.on = "MULTI", .side = {"SET", "{dw:ckpt}:lock:eval:wl", "other", NULL}},
    };
    struct dw_config cfg;
    pid_t proxy;
    struct dw_redis *r = connect_proxied(rules, 2, &cfg, &proxy);
    struct dw_redis_kv set = {.name = "cursor:wl", .value = "9"};
    int rc =
        dw_redis_eval_commit(r, "o", "wl", &set, 1, "deliveries", NULL, 0, errstr, sizeof(errstr));
    if (rc == 0) {
        redis_str(k.c, "{dw:ckpt}:lock:eval:wl", v, sizeof(v));
        fail_msg("committed without its WATCH while the lease is \"%s\"", v);
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(errstr, "WATCH"));
    assert_int_equal(redis_int(k.c, "EXISTS {dw:ckpt}:cursor:wl"), 0);
    /* the WATCH goes through now (each rule fires once): the lease taken at MULTI aborts */
    rc = dw_redis_eval_commit(r, "o", "wl", &set, 1, "deliveries", NULL, 0, errstr, sizeof(errstr));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(errstr, "changed during the commit"));
    assert_int_equal(redis_int(k.c, "EXISTS {dw:ckpt}:cursor:wl"), 0);
    freeReplyObject(redisCommand(k.c, "SET {dw:ckpt}:lock:eval:wl o"));
    assert_int_equal(
        dw_redis_eval_commit(r, "o", "wl", &set, 1, "deliveries", NULL, 0, errstr, sizeof(errstr)),
        0);
    redis_str(k.c, "{dw:ckpt}:cursor:wl", v, sizeof(v));
    assert_string_equal(v, "9");
    dw_redis_free(r);
    dw_test_proxy_stop(proxy);
    conns_close(&k);
}

/*
 * The same for the evaluator's fenced write of a model's reference (WATCH refgen): with the
 * WATCH lost and an operator's `reference set` (refgen moved) just before MULTI, the write is
 * not reported done and the reference is not written over.
 */
static void test_write_fenced_watch_lost(void **state)
{
    (void)state;
    char errstr[256] = "", v[64];
    struct conns k = conns_open();
    freeReplyObject(redisCommand(k.c, "SET {dw:ckpt}:refgen:wl 3"));
    freeReplyObject(redisCommand(k.c, "SET {dw:ckpt}:ref:wl operator"));
    const struct dw_test_proxy_rule rules[] = {
        {.on = "WATCH", .close = 1},
        {.on = "MULTI", .side = {"SET", "{dw:ckpt}:refgen:wl", "4", NULL}},
    };
    struct dw_config cfg;
    pid_t proxy;
    struct dw_redis *r = connect_proxied(rules, 2, &cfg, &proxy);
    struct dw_redis_bkv set = {.name = "ref:wl", .data = "evaluator", .len = 9};
    int rc = dw_redis_write_fenced(r, "refgen:wl", 3, &set, 1, errstr, sizeof(errstr));
    if (rc == 0) {
        redis_str(k.c, "{dw:ckpt}:ref:wl", v, sizeof(v));
        fail_msg("written without its WATCH: the reference is \"%s\"", v);
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(errstr, "WATCH"));
    redis_str(k.c, "{dw:ckpt}:ref:wl", v, sizeof(v));
    assert_string_equal(v, "operator");
    /* the WATCH goes through now: refgen moved at MULTI aborts the write */
    freeReplyObject(redisCommand(k.c, "SET {dw:ckpt}:refgen:wl 3"));
    rc = dw_redis_write_fenced(r, "refgen:wl", 3, &set, 1, errstr, sizeof(errstr));
    assert_int_equal(rc, 1);
    redis_str(k.c, "{dw:ckpt}:ref:wl", v, sizeof(v));
    assert_string_equal(v, "operator");
    assert_int_equal(dw_redis_write_fenced(r, "refgen:wl", 4, &set, 1, errstr, sizeof(errstr)), 0);
    redis_str(k.c, "{dw:ckpt}:ref:wl", v, sizeof(v));
    assert_string_equal(v, "evaluator");
    dw_redis_free(r);
    dw_test_proxy_stop(proxy);
    conns_close(&k);
}

/*
 * EXEC of an evaluation commit runs, and its reply is lost (the proxy forwards EXEC and closes
 * the connection once Redis ran it): the commit says "unknown" (-2), not "not committed", and
 * what it wrote is there.
 */
static void test_eval_commit_reply_lost(void **state)
{
    (void)state;
    char errstr[256] = "", v[64];
    struct conns k = conns_open();
    char lease[DW_REDIS_NAME_MAX];
    dw_redis_name_eval_lease("rl", lease, sizeof(lease));
    assert_int_equal(dw_redis_lease(k.r, lease, "o", 60000), 1);
    const struct dw_test_proxy_rule rules[] = {{.on = "EXEC", .lose_reply = 1}};
    struct dw_config cfg;
    pid_t proxy;
    struct dw_redis *r = connect_proxied(rules, 1, &cfg, &proxy);
    struct dw_redis_kv set = {.name = "cursor:rl", .value = "9"};
    struct dw_redis_kv field = {.name = "hook:rl-1", .value = "{}"};
    int rc =
        dw_redis_eval_commit(r, "o", "rl", &set, 1, "rlhash", &field, 1, errstr, sizeof(errstr));
    redis_str(k.c, "{dw:ckpt}:cursor:rl", v, sizeof(v));
    assert_string_equal(v, "9"); /* EXEC ran */
    assert_int_equal(redis_int(k.c, "HEXISTS {dw:ckpt}:rlhash hook:rl-1"), 1);
    if (rc != -2) {
        fail_msg("a commit whose reply was lost: rc %d (%s), want -2 (unknown)", rc, errstr);
    }
    assert_non_null(strstr(errstr, "connection lost"));
    dw_redis_free(r);
    dw_test_proxy_stop(proxy);
    conns_close(&k);
}

#define RL_T0 1772323200000LL /* 2026-03-01T00:00:00Z, milliseconds */
#define RL_WINDOW_MS 60000LL  /* window.size of the config below, milliseconds */

/* A close-stage report of model's window at RL_T0 with 5 predictions. */
static json_t *rl_report(const char *model)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:b,s:I}", "model", model, "window_start",
                     "2026-03-01T00:00:00Z", "window_end", "2026-03-01T00:01:00Z",
                     "window_start_ms", (json_int_t)RL_T0, "final", 0, "predictions",
                     (json_int_t)5);
}

/* Alerts firing for model in dw_actions_status(). */
static size_t rl_firing(const struct dw_actions *a, const char *model)
{
    json_t *st = dw_actions_status(a);
    size_t n = json_array_size(json_object_get(st, model));
    json_decref(st);
    return n;
}

/*
 * The same through the evaluator's actions: a rule fires on the window, the commit's EXEC runs
 * and its reply is lost. Model rl: the commit is looked up at once (its cursor moved), so the
 * window counts as committed, its alert message is handed to delivery and the alert is firing
 * here. Model rl2: the look-up itself is not answered (the proxy closes the connection on the GET
 * of the cursor): not committed for now, and the next tick, with Redis answering again, reads
 * what the commit owes from Redis (the pending delivery, the firing set). Neither needs the
 * lease to move (dw_actions_resume is never called). The sink is a closed port with a long
 * backoff, so a message handed to delivery stays queued (dw_actions_pending).
 */
static void test_actions_commit_reply_lost(void **state)
{
    (void)state;
    char errstr[256] = "", yaml[1024], v[64];
    struct conns k = conns_open();
    snprintf(yaml, sizeof(yaml),
             "group: ckpt\n"
             "kafka: {bootstrap.servers: 127.0.0.1:9092}\n"
             "redis: {host: 127.0.0.1, port: %d}\n"
             "window: {size: 1m}\n"
             "alerting:\n"
             "  sinks:\n"
             "    hook: {type: webhook, url: 'http://127.0.0.1:%d/hook', max_attempts: 5,\n"
             "           backoff_initial: 10m, backoff_max: 10m}\n"
             "  rules:\n"
             "    - {name: busy, condition: 'predictions > 0', severity: critical}\n"
             "models: {rl: {}, rl2: {}}\n",
             g_port, dw_test_free_port());
    struct dw_config cfg;
    if (dw_config_load_string(&cfg, yaml, errstr, sizeof(errstr)) != 0) {
        fail_msg("config: %s", errstr);
    }
    for (size_t mi = 0; mi < 2; mi++) {
        char lease[DW_REDIS_NAME_MAX];
        dw_redis_name_eval_lease(cfg.models[mi].name, lease, sizeof(lease));
        assert_int_equal(dw_redis_lease(k.r, lease, "o", 60000), 1);
    }
    const struct dw_test_proxy_rule rules[] = {
        {.on = "EXEC", .lose_reply = 1},
    };
    struct dw_config pcfg;
    pid_t proxy;
    struct dw_redis *r = connect_proxied(rules, 1, &pcfg, &proxy);
    struct dw_actions *a = dw_actions_new(&cfg, r, NULL, "o", errstr, sizeof(errstr));
    if (!a) {
        fail_msg("actions: %s", errstr);
    }
    char rname[DW_REDIS_NAME_MAX];
    dw_redis_name_report("rl", RL_T0, rname, sizeof(rname));
    json_t *report = rl_report("rl");
    int rc = dw_actions_window(a, &cfg.models[0], report, rname, "cursor:rl", RL_T0 + RL_WINDOW_MS,
                               NULL, 0);
    json_decref(report);
    redis_str(k.c, "{dw:ckpt}:cursor:rl", v, sizeof(v));
    assert_int_equal(strtoll(v, NULL, 10), RL_T0 + RL_WINDOW_MS); /* EXEC ran */
    if (rc != 0 || dw_actions_pending(a) != 1 || rl_firing(a, "rl") != 1) {
        fail_msg("commit applied, reply lost: rc %d, %zu messages handed to delivery, %zu alerts "
                 "firing; want 0, 1, 1",
                 rc, dw_actions_pending(a), rl_firing(a, "rl"));
    }
    dw_redis_free(r);
    dw_test_proxy_stop(proxy);

    /* rl2: the look-up is lost too */
    const struct dw_test_proxy_rule rules2[] = {
        {.on = "EXEC", .lose_reply = 1},
        {.on = "GET", .arg = "{dw:ckpt}:cursor:rl2", .close = 1},
    };
    r = connect_proxied(rules2, 2, &pcfg, &proxy);
    dw_actions_free(a, 0);
    a = dw_actions_new(&cfg, r, NULL, "o", errstr, sizeof(errstr));
    assert_non_null(a);
    dw_redis_name_report("rl2", RL_T0, rname, sizeof(rname));
    report = rl_report("rl2");
    rc = dw_actions_window(a, &cfg.models[1], report, rname, "cursor:rl2", RL_T0 + RL_WINDOW_MS,
                           NULL, 0);
    json_decref(report);
    redis_str(k.c, "{dw:ckpt}:cursor:rl2", v, sizeof(v));
    assert_int_equal(strtoll(v, NULL, 10), RL_T0 + RL_WINDOW_MS); /* EXEC ran */
    assert_int_equal(rc, -1); /* unknown: not counted as committed */
    const unsigned char evaluating[] = {1, 1};
    dw_actions_tick(a, dw_now_ms(), evaluating);
    if (dw_actions_pending(a) != 1 || rl_firing(a, "rl2") != 1) {
        fail_msg("commit applied, reply and look-up lost, a tick later: %zu messages handed to "
                 "delivery, %zu alerts firing; want 1, 1",
                 dw_actions_pending(a), rl_firing(a, "rl2"));
    }
    dw_actions_free(a, 0);
    dw_redis_free(r);
    dw_test_proxy_stop(proxy);
    dw_config_free(&cfg);
    conns_close(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_reinsert),
        cmocka_unit_test(test_merged_window),
        cmocka_unit_test(test_merged_window_sized_like),
        cmocka_unit_test(test_joined_set_in_redis),
        cmocka_unit_test(test_window_records_kept_then_deleted),
        cmocka_unit_test(test_error_inside_exec_fails),
        cmocka_unit_test(test_error_inside_eval_commit_fails),
        cmocka_unit_test(test_eval_lease_per_model),
        cmocka_unit_test(test_pods_heartbeat),
        cmocka_unit_test(test_checkpoint_many),
        cmocka_unit_test(test_claim_clears_replicated_eof),
        cmocka_unit_test(test_eval_commit_watch_lost),
        cmocka_unit_test(test_write_fenced_watch_lost),
        cmocka_unit_test(test_eval_commit_reply_lost),
        cmocka_unit_test(test_actions_commit_reply_lost),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
