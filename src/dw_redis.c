/*
 * dw_redis.c - hiredis adapter (key layout in dw_redis.h).
 *
 * One synchronous connection, used only from the main loop. Every multi-command operation is
 * pipelined (append all, then read all replies), so a checkpoint costs three round trips
 * whatever its size: WATCH+HGET owner, then MULTI … EXEC. A connection error frees the context;
 * the next call reconnects, so a Redis restart needs no special handling by callers, who see -1
 * and retry (the partition state stays dirty in memory meanwhile).
 */
#include "driftwatch/dw_redis.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/dw_common.h"
#include "driftwatch/dw_log.h"

#define JOIN_BATCH 4096 /* field/value pairs per HSET / HDEL command */
#define HSCAN_COUNT "2000"

/* A growable argv for binary-safe commands. */
struct argv {
    const char **v;
    size_t *len;
    size_t n, cap;
};

struct ckpt {
    struct argv a;       /* reused per command */
    struct dw_buf blobs; /* every value of this checkpoint, appended */
    char **strs;         /* formatted strings to free */
    size_t n_strs, cap_strs;
    int n_cmds;
    size_t bytes;
};

static void ck_free(struct ckpt *ck);

struct dw_redis {
    const struct dw_config *cfg;
    redisContext *c;
    struct ckpt ck; /* reused by every checkpoint: no large allocation per checkpoint */
};

static void argv_push(struct argv *a, const void *s, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = dw_realloc(a->v, a->cap * sizeof(*a->v));
        a->len = dw_realloc(a->len, a->cap * sizeof(*a->len));
    }
    a->v[a->n] = s;
    a->len[a->n] = len;
    a->n++;
}

static void argv_pushs(struct argv *a, const char *s)
{
    argv_push(a, s, strlen(s));
}

static void argv_free(struct argv *a)
{
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof(*a));
}

static void drop_conn(struct dw_redis *r)
{
    if (r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
}

static int reply_ok(redisReply *rep)
{
    return rep && rep->type != REDIS_REPLY_ERROR;
}

static int ensure_conn(struct dw_redis *r, char *errstr, size_t errstr_size)
{
    if (r->c) {
        return 0;
    }
    const struct dw_config *cfg = r->cfg;
    struct timeval tv = {.tv_sec = (time_t)(cfg->redis_timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(cfg->redis_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    if (!c || c->err) {
        dw_err(errstr, errstr_size, "redis %s:%d: %s", cfg->redis_host, cfg->redis_port,
               c ? c->errstr : "cannot allocate context");
        if (c) {
            redisFree(c);
        }
        return -1;
    }
    redisSetTimeout(c, tv);
    r->c = c;
    if (cfg->redis_password && cfg->redis_password[0]) {
        redisReply *rep = redisCommand(c, "AUTH %s", cfg->redis_password);
        int ok = reply_ok(rep);
        if (!ok) {
            dw_err(errstr, errstr_size, "redis AUTH failed: %s", rep ? rep->str : c->errstr);
        }
        freeReplyObject(rep);
        if (!ok) {
            drop_conn(r);
            return -1;
        }
    }
    if (cfg->redis_db) {
        redisReply *rep = redisCommand(c, "SELECT %d", cfg->redis_db);
        int ok = reply_ok(rep);
        freeReplyObject(rep);
        if (!ok) {
            drop_conn(r);
            return dw_err(errstr, errstr_size, "redis SELECT %d failed", cfg->redis_db);
        }
    }
    return 0;
}

static redisReply *cmdf(struct dw_redis *r, const char *fmt, ...)
{
    if (ensure_conn(r, NULL, 0) != 0) {
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    if (!rep) {
        drop_conn(r);
    }
    return rep;
}

struct dw_redis *dw_redis_connect(const struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    struct dw_redis *r = dw_calloc(1, sizeof(*r));
    r->cfg = cfg;
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

void dw_redis_free(struct dw_redis *r)
{
    if (!r) {
        return;
    }
    drop_conn(r);
    ck_free(&r->ck);
    free(r);
}

int dw_redis_ping(struct dw_redis *r)
{
    redisReply *rep = cmdf(r, "PING");
    int ok = reply_ok(rep);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

static void part_tag(const struct dw_redis *r, int32_t partition, const char *suffix, char *buf,
                     size_t size)
{
    snprintf(buf, size, "{dw:%s:%s:%d}:%s", r->cfg->group, r->cfg->topic_predictions,
             (int)partition, suffix);
}

static void global_key(const struct dw_redis *r, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "{dw:%s}:%s", r->cfg->group, name);
}

void dw_redis_global_key(const struct dw_redis *r, const char *name, char *buf, size_t size)
{
    global_key(r, name, buf, size);
}

int dw_redis_claim(struct dw_redis *r, int32_t partition, const char *owner, char *errstr,
                   size_t errstr_size)
{
    char key[512];
    part_tag(r, partition, "meta", key, sizeof(key));
    /* eof_ms 0: the new owner has not reached the end of the log yet (not idle). */
    redisReply *rep = cmdf(r, "HSET %s owner %s eof_ms 0 label_eof_ms 0", key, owner);
    int ok = reply_ok(rep);
    if (!ok) {
        dw_err(errstr, errstr_size, "redis HSET %s: %s", key, rep ? rep->str : "connection lost");
    }
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* ---- loading ---- */

static int64_t field_i64(redisReply *arr, const char *name, int64_t dflt)
{
    for (size_t i = 0; i + 1 < arr->elements; i += 2) {
        if (strcmp(arr->element[i]->str, name) == 0 && arr->element[i + 1]->str) {
            return strtoll(arr->element[i + 1]->str, NULL, 10);
        }
    }
    return dflt;
}

static long model_index(const char *name, size_t len, void *opaque)
{
    const struct dw_config *cfg = opaque;
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (strlen(cfg->models[i].name) == len && memcmp(cfg->models[i].name, name, len) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* The partition counters stored in the meta hash, one X(name) per field of dw_part_counters. */
/* clang-format off */
#define META_COUNTERS(X) \
    X(predictions) X(labels) X(late_predictions) X(late_labels) X(duplicate_predictions) \
    X(expired_predictions) X(expired_labels) X(evicted) X(rejected_classes)
/* clang-format on */

static void load_meta(struct dw_part *p, redisReply *meta)
{
    p->off_pred = field_i64(meta, "off_pred", -1);
    p->off_label = field_i64(meta, "off_label", -1);
    p->max_ts = field_i64(meta, "max_ts", DW_NO_TS);
    p->min_ts = field_i64(meta, "min_ts", DW_NO_TS);
    p->max_label_ts = field_i64(meta, "max_label_ts", DW_NO_TS);
    p->ckpt_seq = (uint64_t)field_i64(meta, "ckpt_seq", 0);
#define LOAD_CTR(name) p->ctr.name = (uint64_t)field_i64(meta, #name, 0);
    META_COUNTERS(LOAD_CTR)
#undef LOAD_CTR
}

static int load_windows(struct dw_redis *r, struct dw_part *p, char *errstr, size_t errstr_size)
{
    char key[512];
    part_tag(r, p->partition, "open", key, sizeof(key));
    redisReply *set = cmdf(r, "SMEMBERS %s", key);
    if (!reply_ok(set) || set->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(set);
        return dw_err(errstr, errstr_size, "redis SMEMBERS %s failed", key);
    }
    int rc = 0;
    for (size_t i = 0; i < set->elements && rc == 0; i++) {
        const char *member = set->element[i]->str;
        const char *tab = strchr(member, '\t');
        if (!tab) {
            continue;
        }
        long midx = model_index(member, (size_t)(tab - member), (void *)r->cfg);
        if (midx < 0) {
            dw_log(DW_LOG_WARN, "checkpointed window of an unconfigured model ignored", "{s:s,s:i}",
                   "window", member, "partition", (int)p->partition);
            continue;
        }
        char wkey[600];
        char suffix[400];
        snprintf(suffix, sizeof(suffix), "w:%.*s:%s", (int)(tab - member), member, tab + 1);
        part_tag(r, p->partition, suffix, wkey, sizeof(wkey));
        redisReply *blob = cmdf(r, "GET %s", wkey);
        if (!reply_ok(blob)) {
            rc = dw_err(errstr, errstr_size, "redis GET %s failed", wkey);
        } else if (blob->type == REDIS_REPLY_STRING) {
            struct dw_agg *agg = dw_agg_decode(&r->cfg->models[midx], blob->str, (size_t)blob->len,
                                               errstr, errstr_size);
            if (!agg) {
                rc = -1;
            } else {
                dw_part_adopt_window(p, agg);
            }
        }
        freeReplyObject(blob);
    }
    freeReplyObject(set);
    return rc;
}

static int load_join(struct dw_redis *r, struct dw_part *p, char *errstr, size_t errstr_size)
{
    char key[512];
    part_tag(r, p->partition, "join", key, sizeof(key));
    char cursor[32] = "0";
    do {
        redisReply *rep = cmdf(r, "HSCAN %s %s COUNT " HSCAN_COUNT, key, cursor);
        if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            freeReplyObject(rep);
            return dw_err(errstr, errstr_size, "redis HSCAN %s failed", key);
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *kv = rep->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            int rc = dw_join_rec_decode(&p->join, kv->element[i]->str, (size_t)kv->element[i]->len,
                                        kv->element[i + 1]->str, (size_t)kv->element[i + 1]->len,
                                        model_index, (void *)r->cfg);
            if (rc < 0) {
                freeReplyObject(rep);
                return dw_err(errstr, errstr_size, "corrupt join record in %s", key);
            }
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int dw_redis_load_part(struct dw_redis *r, struct dw_part *p, char *errstr, size_t errstr_size)
{
    char key[512];
    part_tag(r, p->partition, "meta", key, sizeof(key));
    redisReply *meta = cmdf(r, "HGETALL %s", key);
    if (!reply_ok(meta) || meta->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(meta);
        return dw_err(errstr, errstr_size, "redis HGETALL %s failed", key);
    }
    if (field_i64(meta, "off_pred", -2) == -2) {
        freeReplyObject(meta);
        return 0; /* no checkpoint yet (maybe just an owner field) */
    }
    load_meta(p, meta);
    freeReplyObject(meta);
    if (load_windows(r, p, errstr, errstr_size) != 0 || load_join(r, p, errstr, errstr_size) != 0) {
        return -1;
    }
    dw_join_clear_dirty(&p->join);
    return 1;
}

/* ---- checkpoint ---- */

static const char *ck_fmt(struct ckpt *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *ck_fmt(struct ckpt *ck, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (ck->n_strs == ck->cap_strs) {
        ck->cap_strs = ck->cap_strs ? ck->cap_strs * 2 : 64;
        ck->strs = dw_realloc(ck->strs, ck->cap_strs * sizeof(*ck->strs));
    }
    ck->strs[ck->n_strs] = dw_strdup(buf);
    return ck->strs[ck->n_strs++];
}

static int ck_send(struct dw_redis *r, struct ckpt *ck)
{
    for (size_t i = 0; i < ck->a.n; i++) {
        ck->bytes += ck->a.len[i];
    }
    int rc = redisAppendCommandArgv(r->c, (int)ck->a.n, ck->a.v, ck->a.len);
    ck->a.n = 0;
    ck->n_cmds++;
    return rc == REDIS_OK ? 0 : -1;
}

/* Blob offsets are stable only once the buffer stops growing: encode first, send after. */
struct blob_ref {
    size_t off, len;
};

static void ck_windows(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                       struct blob_ref **refs, size_t *n_refs)
{
    size_t total = p->n_wins + p->n_retired;
    *refs = dw_calloc(total ? total : 1, sizeof(**refs));
    *n_refs = 0;
    for (size_t i = 0; i < total; i++) {
        struct dw_agg *agg = i < p->n_wins ? p->wins[i] : p->retired[i - p->n_wins];
        if (i < p->n_wins && !agg->dirty) {
            (*refs)[(*n_refs)++] = (struct blob_ref){0, 0};
            continue;
        }
        size_t off = ck->blobs.len;
        dw_agg_encode(agg, &ck->blobs);
        (*refs)[(*n_refs)++] = (struct blob_ref){off, ck->blobs.len - off};
    }
    (void)r;
}

static int ck_send_windows(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                           const struct blob_ref *refs)
{
    int64_t px = r->cfg->retention_windows * r->cfg->window_size_ms + r->cfg->label_horizon_ms +
                 r->cfg->allowed_lateness_ms;
    const char *open_key = ck_fmt(ck, "{dw:%s:%s:%d}:open", r->cfg->group,
                                  r->cfg->topic_predictions, (int)p->partition);
    for (size_t i = 0; i < p->n_wins + p->n_retired; i++) {
        int retired = i >= p->n_wins;
        struct dw_agg *agg = retired ? p->retired[i - p->n_wins] : p->wins[i];
        if (!refs[i].len) {
            continue;
        }
        const char *wkey =
            ck_fmt(ck, "{dw:%s:%s:%d}:w:%s:%" PRId64, r->cfg->group, r->cfg->topic_predictions,
                   (int)p->partition, agg->model->name, agg->start_ms);
        argv_pushs(&ck->a, "SET");
        argv_pushs(&ck->a, wkey);
        argv_push(&ck->a, ck->blobs.data + refs[i].off, refs[i].len);
        argv_pushs(&ck->a, "PX");
        argv_pushs(&ck->a, ck_fmt(ck, "%" PRId64, px));
        if (ck_send(r, ck) != 0) {
            return -1;
        }
        argv_pushs(&ck->a, retired ? "SREM" : "SADD");
        argv_pushs(&ck->a, open_key);
        argv_pushs(&ck->a, ck_fmt(ck, "%s\t%" PRId64, agg->model->name, agg->start_ms));
        if (ck_send(r, ck) != 0) {
            return -1;
        }
    }
    return 0;
}

static int ck_send_join(struct dw_redis *r, struct dw_part *p, struct ckpt *ck)
{
    struct dw_join *j = &p->join;
    const char *jkey = ck_fmt(ck, "{dw:%s:%s:%d}:join", r->cfg->group, r->cfg->topic_predictions,
                              (int)p->partition);
    /* Deletions first: an id deleted and inserted again since the last checkpoint is both in
     * the deleted list and live, and must end up present. */
    struct dw_reader rd;
    dw_reader_init(&rd, j->deleted.data, j->deleted.len);
    for (size_t i = 0; i < j->n_deleted; i++) {
        if (ck->a.n == 0) {
            argv_pushs(&ck->a, "HDEL");
            argv_pushs(&ck->a, jkey);
        }
        const char *id;
        size_t len = dw_rd_str(&rd, &id);
        argv_push(&ck->a, id, len);
        if (ck->a.n >= 2 + JOIN_BATCH && ck_send(r, ck) != 0) {
            return -1;
        }
    }
    if (ck->a.n && ck_send(r, ck) != 0) {
        return -1;
    }
    /* Encode every dirty record first (the blob buffer must not move while argv points in). */
    size_t *offs = dw_malloc((j->n_dirty + 1) * sizeof(*offs));
    size_t n = 0;
    for (size_t i = 0; i < j->n_dirty; i++) {
        struct dw_join_rec *rec = &j->pool[j->dirty[i]];
        if (rec->state == DW_JOIN_FREE || !(rec->flags & DW_JREC_DIRTY)) {
            continue;
        }
        offs[n++] = ck->blobs.len;
        dw_join_rec_encode(rec, r->cfg->models[rec->model_idx].name, &ck->blobs);
    }
    offs[n] = ck->blobs.len;
    size_t k = 0;
    for (size_t i = 0; i < j->n_dirty; i++) {
        struct dw_join_rec *rec = &j->pool[j->dirty[i]];
        if (rec->state == DW_JOIN_FREE || !(rec->flags & DW_JREC_DIRTY)) {
            continue;
        }
        if (ck->a.n == 0) {
            argv_pushs(&ck->a, "HSET");
            argv_pushs(&ck->a, jkey);
        }
        argv_push(&ck->a, dw_join_id(rec), rec->id_len);
        argv_push(&ck->a, ck->blobs.data + offs[k], offs[k + 1] - offs[k]);
        k++;
        if (ck->a.n >= 2 + 2 * JOIN_BATCH && ck_send(r, ck) != 0) {
            free(offs);
            return -1;
        }
    }
    free(offs);
    if (ck->a.n && ck_send(r, ck) != 0) {
        return -1;
    }
    if (ck->a.n && ck_send(r, ck) != 0) {
        return -1;
    }
    return 0;
}

static int ck_send_meta(struct dw_redis *r, struct dw_part *p, struct ckpt *ck, const char *owner,
                        int64_t eof_ms, int64_t label_eof_ms)
{
    argv_pushs(&ck->a, "HSET");
    argv_pushs(&ck->a, ck_fmt(ck, "{dw:%s:%s:%d}:meta", r->cfg->group, r->cfg->topic_predictions,
                              (int)p->partition));
#define PUT_I64(name, v)                                                                           \
    do {                                                                                           \
        argv_pushs(&ck->a, name);                                                                  \
        argv_pushs(&ck->a, ck_fmt(ck, "%" PRId64, (int64_t)(v)));                                  \
    } while (0)
    PUT_I64("off_pred", p->off_pred);
    PUT_I64("off_label", p->off_label);
    PUT_I64("max_ts", p->max_ts);
    PUT_I64("min_ts", p->min_ts);
    PUT_I64("max_label_ts", p->max_label_ts);
    PUT_I64("eof_ms", eof_ms);
    PUT_I64("label_eof_ms", label_eof_ms);
    PUT_I64("updated_ms", dw_now_ms());
    PUT_I64("ckpt_seq", p->ckpt_seq + 1);
#define PUT_CTR(name) PUT_I64(#name, p->ctr.name);
    META_COUNTERS(PUT_CTR)
#undef PUT_CTR
#undef PUT_I64
    argv_pushs(&ck->a, "owner");
    argv_pushs(&ck->a, owner);
    return ck_send(r, ck);
}

/* Empties the checkpoint buffers, keeping their memory for the next checkpoint. */
static void ck_reset(struct ckpt *ck)
{
    for (size_t i = 0; i < ck->n_strs; i++) {
        free(ck->strs[i]);
    }
    ck->n_strs = 0;
    ck->a.n = 0;
    dw_buf_reset(&ck->blobs);
    ck->n_cmds = 0;
    ck->bytes = 0;
}

static void ck_free(struct ckpt *ck)
{
    ck_reset(ck);
    free(ck->strs);
    argv_free(&ck->a);
    dw_buf_free(&ck->blobs);
}

/* Results of the owner check (read_owner). */
enum { OWNER_NO_ANSWER = -1, OWNER_OTHER = 0, OWNER_US = 1, OWNER_NONE = 2, OWNER_ROLLED_BACK = 3 };

/*
 * Who owns partition p now, read from its meta hash: OWNER_US, OWNER_OTHER, OWNER_NONE (the
 * meta hash is gone: the state was lost), OWNER_ROLLED_BACK (ours, but its checkpoint count is
 * not the one this process wrote last: Redis lost acknowledged writes, as a restart from an
 * AOF written with appendfsync everysec can), OWNER_NO_ANSWER (connection lost, or Redis still
 * loading its dataset: -LOADING). Redis errors drop the connection, which also discards any
 * WATCH of this connection.
 */
static int read_owner(struct dw_redis *r, const struct dw_part *p, const char *owner)
{
    char key[512];
    part_tag(r, p->partition, "meta", key, sizeof(key));
    redisReply *o = cmdf(r, "HMGET %s owner ckpt_seq", key);
    if (!reply_ok(o) || o->type != REDIS_REPLY_ARRAY || o->elements != 2) {
        freeReplyObject(o);
        drop_conn(r);
        return OWNER_NO_ANSWER;
    }
    int who = OWNER_NONE;
    if (o->element[0]->type == REDIS_REPLY_STRING) {
        who = strcmp(o->element[0]->str, owner) == 0 ? OWNER_US : OWNER_OTHER;
    }
    uint64_t seq =
        o->element[1]->type == REDIS_REPLY_STRING ? strtoull(o->element[1]->str, NULL, 10) : 0;
    if (who == OWNER_US && seq != p->ckpt_seq) {
        who = OWNER_ROLLED_BACK;
    }
    freeReplyObject(o);
    return who;
}

/* WATCH the meta key, then read_owner(); the WATCH is kept only when `owner` owns it. */
static int ck_check_owner(struct dw_redis *r, const struct dw_part *p, const char *owner)
{
    char key[512];
    part_tag(r, p->partition, "meta", key, sizeof(key));
    redisReply *w = cmdf(r, "WATCH %s", key);
    int ok = reply_ok(w);
    freeReplyObject(w);
    if (!ok) {
        drop_conn(r);
        return -1;
    }
    int who = read_owner(r, p, owner);
    if (who != OWNER_US && who != OWNER_NO_ANSWER) {
        freeReplyObject(cmdf(r, "UNWATCH"));
    }
    return who;
}

/* The checkpoint result for an owner check that did not find this process's last checkpoint. */
static int not_owned(int32_t partition, int who, char *errstr, size_t errstr_size)
{
    if (who == OWNER_ROLLED_BACK) {
        dw_err(errstr, errstr_size,
               "partition %d: Redis lost acknowledged checkpoints (restarted from an older "
               "dataset); the stored state must be loaded again",
               (int)partition);
        return -4;
    }
    if (who == OWNER_NONE) {
        dw_err(errstr, errstr_size,
               "partition %d: its state is gone from Redis (restarted empty, flushed or evicted)",
               (int)partition);
        return -3;
    }
    dw_err(errstr, errstr_size, "partition %d is owned by another consumer now", (int)partition);
    return -2;
}

int dw_redis_checkpoint(struct dw_redis *r, struct dw_part *p, const char *owner, int64_t eof_ms,
                        int64_t label_eof_ms, size_t *bytes_out, char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    int owned = ck_check_owner(r, p, owner);
    if (owned == OWNER_NO_ANSWER) {
        return dw_err(errstr, errstr_size,
                      "redis: checkpoint of partition %d: no answer to the owner check",
                      (int)p->partition);
    }
    if (owned != OWNER_US) {
        return not_owned(p->partition, owned, errstr, errstr_size);
    }
    struct ckpt *ck = &r->ck;
    ck_reset(ck);
    struct blob_ref *refs = NULL;
    size_t n_refs = 0;
    ck_windows(r, p, ck, &refs, &n_refs);
    /* Each command is copied into hiredis's buffer when appended (ck_send), so argv may point
     * into ck->blobs even though later encodings grow (and move) it. */
    int rc = -1;
    argv_pushs(&ck->a, "MULTI");
    if (ck_send(r, ck) == 0 && ck_send_windows(r, p, ck, refs) == 0 &&
        ck_send_join(r, p, ck) == 0 && ck_send_meta(r, p, ck, owner, eof_ms, label_eof_ms) == 0) {
        argv_pushs(&ck->a, "EXEC");
        rc = ck_send(r, ck);
    }
    free(refs);
    if (rc != 0) {
        ck_reset(ck);
        drop_conn(r);
        return dw_err(errstr, errstr_size, "redis: cannot send checkpoint");
    }
    /* Replies: +OK for MULTI, +QUEUED per command, then EXEC's array (nil when aborted). */
    int result = 0;
    for (int i = 0; i < ck->n_cmds; i++) {
        void *rep_v = NULL;
        if (redisGetReply(r->c, &rep_v) != REDIS_OK) {
            drop_conn(r);
            result = dw_err(errstr, errstr_size, "redis: connection lost during checkpoint");
            break;
        }
        redisReply *rep = rep_v;
        if (i == ck->n_cmds - 1) {
            if (rep->type == REDIS_REPLY_NIL) {
                result = 1; /* aborted: the watched meta key changed; decided below */
            } else if (rep->type != REDIS_REPLY_ARRAY) {
                result = dw_err(errstr, errstr_size, "redis EXEC failed: %s",
                                rep->str ? rep->str : "unexpected reply");
            }
        } else if (rep->type == REDIS_REPLY_ERROR && result == 0) {
            result = dw_err(errstr, errstr_size, "redis checkpoint command failed: %s", rep->str);
        }
        freeReplyObject(rep);
    }
    if (bytes_out) {
        *bytes_out = ck->bytes;
    }
    ck_reset(ck);
    if (result == 1) {
        /* An aborted transaction is no proof of lost ownership: anything that touched the
         * meta key aborts it, a Redis replaying its AOF after a restart too. Ask again. */
        int who = r->c ? read_owner(r, p, owner) : OWNER_NO_ANSWER;
        result = who == OWNER_US || who == OWNER_NO_ANSWER
                     ? dw_err(errstr, errstr_size,
                              "partition %d: checkpoint aborted by a concurrent change of its "
                              "meta key; the owner is unchanged, retrying",
                              (int)p->partition)
                     : not_owned(p->partition, who, errstr, errstr_size);
    }
    if (result == 0) {
        p->ckpt_seq++;
        dw_part_checkpoint_done(p);
    }
    return result;
}

/* ---- global keys ---- */

/* Sends one command of a transaction; counts it. 0, or -1 when the connection failed. */
static int tx_append(struct dw_redis *r, int *n_cmds, int argc, const char **argv,
                     const size_t *lens)
{
    (*n_cmds)++;
    return redisAppendCommandArgv(r->c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

int dw_redis_eval_commit(struct dw_redis *r, const char *owner, const struct dw_redis_kv *sets,
                         size_t n_sets, const char *hash, const struct dw_redis_kv *fields,
                         size_t n_fields, char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    char lock[512];
    global_key(r, "lock:eval", lock, sizeof(lock));
    freeReplyObject(cmdf(r, "WATCH %s", lock));
    redisReply *o = cmdf(r, "GET %s", lock);
    if (!reply_ok(o)) {
        freeReplyObject(o);
        drop_conn(r);
        return dw_err(errstr, errstr_size, "redis: connection lost before the evaluation commit");
    }
    int held = o->type == REDIS_REPLY_STRING && strcmp(o->str, owner) == 0;
    freeReplyObject(o);
    if (!held) {
        freeReplyObject(cmdf(r, "UNWATCH"));
        dw_err(errstr, errstr_size, "the evaluator lease is held by another pod now");
        return 1;
    }
    int n_cmds = 0, rc = 0;
    const char *multi[] = {"MULTI"};
    rc |= tx_append(r, &n_cmds, 1, multi, NULL);
    char key[512], hkey[512];
    for (size_t i = 0; i < n_sets && rc == 0; i++) {
        global_key(r, sets[i].name, key, sizeof(key));
        const char *argv[] = {sets[i].value ? "SET" : "DEL", key, sets[i].value};
        size_t lens[] = {strlen(argv[0]), strlen(key), sets[i].value ? strlen(sets[i].value) : 0};
        rc |= tx_append(r, &n_cmds, sets[i].value ? 3 : 2, argv, lens);
    }
    global_key(r, hash ? hash : "", hkey, sizeof(hkey));
    for (size_t i = 0; i < n_fields && rc == 0; i++) {
        const char *argv[] = {"HSET", hkey, fields[i].name, fields[i].value};
        size_t lens[] = {4, strlen(hkey), strlen(fields[i].name), strlen(fields[i].value)};
        rc |= tx_append(r, &n_cmds, 4, argv, lens);
    }
    const char *exec[] = {"EXEC"};
    rc |= tx_append(r, &n_cmds, 1, exec, NULL);
    int result = rc == 0 ? 0 : dw_err(errstr, errstr_size, "redis: cannot send the commit");
    for (int i = 0; i < n_cmds && rc == 0; i++) {
        void *rep_v = NULL;
        if (redisGetReply(r->c, &rep_v) != REDIS_OK) {
            result = dw_err(errstr, errstr_size, "redis: connection lost during the commit");
            break;
        }
        redisReply *rep = rep_v;
        if (i == n_cmds - 1 && rep->type == REDIS_REPLY_NIL) {
            result = 1;
            dw_err(errstr, errstr_size, "the evaluator lease changed during the commit");
        } else if (rep->type == REDIS_REPLY_ERROR && result == 0) {
            result = dw_err(errstr, errstr_size, "redis commit command failed: %s", rep->str);
        }
        freeReplyObject(rep);
    }
    if (result < 0) {
        drop_conn(r);
    }
    return result;
}

int dw_redis_set_partitions(struct dw_redis *r, int n)
{
    return dw_redis_set_i64(r, "partitions", n);
}

int dw_redis_get_partitions(struct dw_redis *r, int *n)
{
    int64_t v = 0;
    int rc = dw_redis_get_i64(r, "partitions", &v);
    *n = (int)v;
    return rc;
}

int dw_redis_read_metas(struct dw_redis *r, int n, struct dw_part_meta *metas)
{
    if (ensure_conn(r, NULL, 0) != 0) {
        return -1;
    }
    for (int p = 0; p < n; p++) {
        char key[512];
        part_tag(r, p, "meta", key, sizeof(key));
        redisAppendCommand(r->c, "HMGET %s max_ts min_ts eof_ms off_pred max_label_ts label_eof_ms",
                           key);
    }
    int rc = 0;
    for (int p = 0; p < n; p++) {
        void *rep_v = NULL;
        if (redisGetReply(r->c, &rep_v) != REDIS_OK) {
            drop_conn(r);
            return -1;
        }
        redisReply *rep = rep_v;
        memset(&metas[p], 0, sizeof(metas[p]));
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 6) {
            metas[p].max_label_ts =
                rep->element[4]->str ? strtoll(rep->element[4]->str, NULL, 10) : DW_NO_TS;
            metas[p].label_eof_ms =
                rep->element[5]->str ? strtoll(rep->element[5]->str, NULL, 10) : 0;
            metas[p].present = rep->element[3]->type == REDIS_REPLY_STRING;
            metas[p].max_ts =
                rep->element[0]->str ? strtoll(rep->element[0]->str, NULL, 10) : DW_NO_TS;
            metas[p].min_ts =
                rep->element[1]->str ? strtoll(rep->element[1]->str, NULL, 10) : DW_NO_TS;
            metas[p].eof_ms = rep->element[2]->str ? strtoll(rep->element[2]->str, NULL, 10) : 0;
        } else {
            rc = -1;
        }
        freeReplyObject(rep);
    }
    return rc;
}

struct dw_agg *dw_redis_load_window(struct dw_redis *r, const struct dw_model_cfg *model,
                                    int64_t start_ms, int n_parts, char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return NULL;
    }
    for (int p = 0; p < n_parts; p++) {
        char key[600];
        char suffix[400];
        snprintf(suffix, sizeof(suffix), "w:%s:%" PRId64, model->name, start_ms);
        part_tag(r, p, suffix, key, sizeof(key));
        redisAppendCommand(r->c, "GET %s", key);
    }
    struct dw_agg *merged = dw_agg_new_exact(model, start_ms, DW_AGG_MERGE_EXACT);
    int failed = 0;
    for (int p = 0; p < n_parts; p++) {
        void *rep_v = NULL;
        if (redisGetReply(r->c, &rep_v) != REDIS_OK) {
            drop_conn(r);
            dw_agg_free(merged);
            dw_err(errstr, errstr_size, "redis: connection lost reading window");
            return NULL;
        }
        redisReply *rep = rep_v;
        if (rep->type == REDIS_REPLY_STRING && !failed) {
            struct dw_agg *agg =
                dw_agg_decode(model, rep->str, (size_t)rep->len, errstr, errstr_size);
            if (agg) {
                dw_agg_merge(merged, agg);
                dw_agg_free(agg);
            } else {
                failed = 1;
            }
        } else if (rep->type == REDIS_REPLY_ERROR) {
            failed = 1;
            dw_err(errstr, errstr_size, "redis GET failed: %s", rep->str);
        }
        freeReplyObject(rep);
    }
    if (failed) {
        dw_agg_free(merged);
        return NULL;
    }
    merged->dirty = 0;
    return merged;
}

int dw_redis_window_starts(struct dw_redis *r, const struct dw_model_cfg *model, int n_parts,
                           int64_t **starts, size_t *n)
{
    size_t cap = 64;
    *starts = dw_malloc(cap * sizeof(**starts));
    *n = 0;
    for (int p = 0; p < n_parts; p++) {
        char pattern[600], suffix[400];
        snprintf(suffix, sizeof(suffix), "w:%s:*", model->name);
        part_tag(r, p, suffix, pattern, sizeof(pattern));
        size_t prefix_len = strlen(pattern) - 1;
        char cursor[32] = "0";
        do {
            redisReply *rep =
                cmdf(r, "SCAN %s MATCH %b COUNT 1000", cursor, pattern, strlen(pattern));
            if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
                freeReplyObject(rep);
                free(*starts);
                *starts = NULL;
                return -1;
            }
            snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
            for (size_t i = 0; i < rep->element[1]->elements; i++) {
                const char *key = rep->element[1]->element[i]->str;
                if (*n == cap) {
                    cap *= 2;
                    *starts = dw_realloc(*starts, cap * sizeof(**starts));
                }
                (*starts)[(*n)++] = strtoll(key + prefix_len, NULL, 10);
            }
            freeReplyObject(rep);
        } while (strcmp(cursor, "0") != 0);
    }
    return 0;
}

int dw_redis_lease(struct dw_redis *r, const char *name, const char *owner, int64_t ttl_ms)
{
    char key[512], lname[256];
    snprintf(lname, sizeof(lname), "lock:%s", name);
    global_key(r, lname, key, sizeof(key));
    redisReply *rep = cmdf(r, "SET %s %s NX PX %lld", key, owner, (long long)ttl_ms);
    if (!reply_ok(rep)) {
        freeReplyObject(rep);
        return -1;
    }
    int held = rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    if (held) {
        return 1;
    }
    rep = cmdf(r, "GET %s", key);
    held = reply_ok(rep) && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, owner) == 0;
    freeReplyObject(rep);
    if (held) {
        freeReplyObject(cmdf(r, "PEXPIRE %s %lld", key, (long long)ttl_ms));
    }
    return held;
}

void dw_redis_release(struct dw_redis *r, const char *name, const char *owner)
{
    char key[512], lname[256];
    snprintf(lname, sizeof(lname), "lock:%s", name);
    global_key(r, lname, key, sizeof(key));
    redisReply *rep = cmdf(r, "GET %s", key);
    int held = reply_ok(rep) && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, owner) == 0;
    freeReplyObject(rep);
    if (held) {
        freeReplyObject(cmdf(r, "DEL %s", key));
    }
}

int dw_redis_get_i64(struct dw_redis *r, const char *name, int64_t *out)
{
    char key[512];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "GET %s", key);
    if (!reply_ok(rep)) {
        freeReplyObject(rep);
        return -1;
    }
    int found = rep->type == REDIS_REPLY_STRING;
    if (found) {
        *out = strtoll(rep->str, NULL, 10);
    }
    freeReplyObject(rep);
    return found;
}

int dw_redis_set_i64(struct dw_redis *r, const char *name, int64_t v)
{
    char key[512];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "SET %s %lld", key, (long long)v);
    int ok = reply_ok(rep);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

int dw_redis_set_str(struct dw_redis *r, const char *name, const char *value, int64_t ttl_ms)
{
    char key[512];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = ttl_ms > 0 ? cmdf(r, "SET %s %s PX %lld", key, value, (long long)ttl_ms)
                                 : cmdf(r, "SET %s %s", key, value);
    int ok = reply_ok(rep);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

char *dw_redis_get_str(struct dw_redis *r, const char *name)
{
    char key[512];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "GET %s", key);
    char *s = NULL;
    if (reply_ok(rep) && rep->type == REDIS_REPLY_STRING) {
        s = dw_strndup(rep->str, (size_t)rep->len);
    }
    freeReplyObject(rep);
    return s;
}
