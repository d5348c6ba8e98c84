/*
 * dw_redis.c - hiredis adapter (key layout in dw_redis.h).
 *
 * The only file that speaks hiredis. A struct dw_redis is one synchronous connection and is
 * not thread-safe: one thread at a time uses it. The main loop has one; the alert delivery
 * thread opens its own (dw_deliver.c) rather than share one behind a lock with the checkpoints.
 * Every multi-command operation is pipelined (append all, then read all replies). A partition's
 * checkpoint is its owner check (WATCH + HMGET owner) and then its MULTI … EXEC whatever its
 * size; a batch of partitions sends each owner check behind the transaction before it, so n
 * partitions cost n + 1 round trips (dw_redis_checkpoint_many).
 * A connection error frees the context; the next call reconnects, so a Redis restart needs no
 * special handling by callers, who see -1 and retry (the partition state stays dirty in memory
 * meanwhile). A WATCH lives on its connection, which that reconnect replaces: a transaction
 * fenced by one (a lease, refgen) requires its OK and runs on the connection it went to, or
 * fails (watch_key, tx_begin).
 *
 * Connecting (ensure_conn) is the one place that knows where the master is: redis.host:port,
 * or with redis.sentinels the address the sentinels name (sentinel_resolve), checked with ROLE
 * because a sentinel may not have seen the last failover yet. Resolution happens at every
 * connect, so after a connection error and after a READONLY reply (watch_string: the server
 * became a replica; the connection is dropped and the failing call returns -1) the next call
 * finds the new master. AUTH (conn_auth) sends the ACL user name when there is one. hiredis
 * 0.14 has no TLS: TLS to Redis goes through a sidecar (docs/operations.md).
 *
 * Redis Cluster (redis.cluster): hiredis 0.14 has no cluster API and Debian 12 packages no
 * cluster client, so this file routes itself, and only as far as driftwatch needs. The slot map
 * comes from CLUSTER SLOTS; each master gets one lazily opened connection (node_connect, as for
 * the single server); every command goes to the master of its first key's hash slot
 * (send_cmd: MOVED reads the map again, ASK sends ASKING there, at most MAX_REDIRECTS);
 * pipelines are split per node and read back in order (struct pipe); a batch of checkpoints
 * is one chain per node; every transaction is checked to stay in one slot (tx_begin,
 * tx_push). A connection error or CLUSTERDOWN fails the call as an outage does and marks the
 * map stale. A single server is the same code with one node and no slot map.
 *
 * Key names: every key is named by one builder per kind (part_key and the key_* functions for
 * the partition's keys, which only this file reads and writes; dw_redis_name_* for the global
 * keys other modules read and write through dw_redis_get_str() and friends, and global_key()
 * for the "{dw:G}:" in front). No other file spells a key, so the layout in dw_redis.h is the
 * whole truth and stored state keeps loading.
 */
#include "driftwatch/io/dw_redis.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_metrics.h"
#include "driftwatch/core/dw_slots.h"
#include "driftwatch/io/dw_log.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define JOIN_BATCH 4096 /* field/value pairs per HSET / HDEL command */
#define HSCAN_COUNT "2000"
#define SET_CHUNK (1024 * 1024) /* bytes; a larger value is written in pieces (tx_append_set) */
#define RESP_GATHER 1024        /* bytes: headers and short arguments gathered (append_argv) */
#define RESP_SHORT_ARG 256      /* bytes: a longer argument is appended as it is */
#define RESP_HEAD_MAX 23        /* bytes of "$<20 digits>\r\n" */

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

/* A node of the cluster (or the single server): its address and its connection, opened
 * when a command first goes there. */
struct node {
    char host[DW_SLOTS_HOST_MAX];
    int port;
    redisContext *c;
    int no_replica;           /* cluster: the last CLUSTER NODES gave it no replica (logged once) */
    int replicas;             /* cluster: its replica count (CLUSTER NODES), -1 not read yet */
    int64_t replicas_mono_ms; /* when it was read (read again after REPLICAS_TTL_MS) */
};

struct dw_redis {
    const struct dw_config *cfg;
    redisContext *c; /* the connection in use: nodes[cur].c, or NULL */
    int cur;
    struct node *nodes; /* single server: one; cluster: the masters of the slot map */
    size_t n_nodes;
    int16_t *slots; /* cluster only: [DW_SLOTS_N] index into nodes, -1 unknown; NULL single */
    int stale;      /* cluster: read the slot map again before the next command */
    int moved;      /* cluster: a MOVED or ASK was seen since the map was last read */
    int tx_slot;    /* hash slot of the transaction being queued (tx_push checks every key) */
    struct ckpt ck; /* reused by every checkpoint: no large allocation per checkpoint */
    /* hiredis's reply constructors with createString wrapped (watch_string), so that a
     * READONLY error is seen wherever it is read; fns of every context of this struct. */
    redisReplyObjectFunctions fns;
    void *(*create_string)(const redisReadTask *, char *, size_t);
    int readonly;     /* c answered READONLY: the next ensure_conn drops it and reconnects */
    char master[300]; /* "host:port" of the master the sentinels named last ("": none yet) */
    /* connections opened so far (use_node): with cur, names the connection a WATCH went to, as
     * a pointer cannot (a new context may be allocated where the dropped one was) */
    uint64_t n_opened;
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

static int reply_ok(const redisReply *rep)
{
    return rep && rep->type != REDIS_REPLY_ERROR;
}

#define UNREPLICATED_METRIC "driftwatch_redis_unreplicated_checkpoints_total"
#define UNREPLICATED_HELP                                                                          \
    "Redis Cluster: checkpoints no replica acknowledged within the WAIT timeout (a master with "   \
    "replicas whose replicas are down or behind); their clocks close no window until a later "     \
    "checkpoint is acknowledged."
/* ms: the WAIT timeout after a node's checkpoints (and at most redis.timeout / 2) */
#define WAIT_MAX_MS 1000
/* ms: how long a master's replica count (CLUSTER NODES) is used before it is read again */
#define REPLICAS_TTL_MS 10000
#define READONLY_METRIC "driftwatch_redis_readonly_replies_total"
#define READONLY_HELP                                                                              \
    "Connections to Redis dropped because the server answered READONLY (it is a replica now: "     \
    "the master was demoted); the next call connects to the master again, through the "            \
    "sentinels when redis.sentinels is set."

/*
 * A READONLY reply means this connection reaches a replica: a demoted master whose clients
 * were not disconnected, or a stale sentinel's answer. The command fails (its caller sees -1 and
 * retries: the state stays dirty), the reply is noted here where hiredis builds it, whatever
 * function reads it, and the next ensure_conn drops the connection and resolves the master again.
 */
static void *watch_string(const redisReadTask *task, char *str, size_t len)
{
    struct dw_redis *r = task->privdata;
    if (task->type == REDIS_REPLY_ERROR && len >= 8 && memcmp(str, "READONLY", 8) == 0 &&
        !r->readonly) {
        r->readonly = 1;
        dw_metric_inc(dw_metrics_series(READONLY_METRIC, READONLY_HELP, DW_METRIC_COUNTER, NULL));
        dw_log(DW_LOG_WARN, "redis answered READONLY: it is a replica, reconnecting to the master",
               "{s:s,s:i,s:s#}", "host", r->nodes[r->cur].host, "port", r->nodes[r->cur].port,
               "reply", str, (int)DW_MIN(len, (size_t)200));
    }
    return r->create_string(task, str, len);
}

/* AUTH on c when a password is set: AUTH <user> <password> with a user name (an ACL user).
 * @returns 0, or -1 with errstr (the server's text, which never quotes the password). */
static int conn_auth(redisContext *c, const char *who, const char *user, const char *password,
                     char *errstr, size_t errstr_size)
{
    if (!password || !password[0]) {
        return 0;
    }
    redisReply *rep = user && user[0] ? redisCommand(c, "AUTH %s %s", user, password)
                                      : redisCommand(c, "AUTH %s", password);
    int ok = reply_ok(rep);
    if (!ok) {
        dw_err(errstr, errstr_size, "redis AUTH%s%s to %s failed: %s",
               user && user[0] ? " as " : "", user && user[0] ? user : "", who,
               rep ? rep->str : c->errstr);
    }
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* A connected context with redis.timeout on connect and commands. NULL with errstr. */
static redisContext *conn_open(const struct dw_config *cfg, const char *host, int port,
                               char *errstr, size_t errstr_size)
{
    struct timeval tv = {.tv_sec = (time_t)(cfg->redis_timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(cfg->redis_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        dw_err(errstr, errstr_size, "redis %s:%d: %s", host, port,
               c ? c->errstr : "cannot allocate context");
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        dw_err(errstr, errstr_size, "redis %s:%d: cannot set the timeout", host, port);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Forgets the connection in use (freed); in a cluster the slot map is read again before the
 * next command, since a node that stops answering may have been failed over. */
static void drop_conn(struct dw_redis *r)
{
    if (r->c) {
        redisFree(r->c);
        r->nodes[r->cur].c = NULL;
        r->c = NULL;
    }
    r->stale = r->slots != NULL;
}

/*
 * Opens a connection to one node (the single server, the master the sentinels named, or a
 * master of the cluster): conn_open, the READONLY watch on its replies, AUTH (with the ACL user
 * when there is one), then SELECT redis.db, or a PING when nothing was asked yet: a port that is
 * not Redis in clear (a TLS port waiting for its handshake) would otherwise only fail at the
 * first command, as if Redis had no state. @returns the context, or NULL with errstr.
 */
static redisContext *node_connect(struct dw_redis *r, const char *host, int port, char *errstr,
                                  size_t errstr_size)
{
    const struct dw_config *cfg = r->cfg;
    redisContext *c = conn_open(cfg, host, port, errstr, errstr_size);
    if (!c) {
        return NULL;
    }
    r->fns = *c->reader->fn;
    r->create_string = r->fns.createString;
    r->fns.createString = watch_string;
    c->reader->fn = &r->fns;
    c->reader->privdata = r;
    char who[DW_SLOTS_HOST_MAX + 16];
    snprintf(who, sizeof(who), "%s:%d", host, port);
    int ok = conn_auth(c, who, cfg->redis_username, cfg->redis_password, errstr, errstr_size) == 0;
    if (ok && cfg->redis_db) {
        redisReply *rep = redisCommand(c, "SELECT %d", cfg->redis_db);
        ok = reply_ok(rep);
        if (!ok) {
            dw_err(errstr, errstr_size, "redis %s: SELECT %d failed: %s", who, cfg->redis_db,
                   rep ? rep->str : c->errstr);
        }
        freeReplyObject(rep);
    } else if (ok && (!cfg->redis_password || !cfg->redis_password[0])) {
        redisReply *rep = redisCommand(c, "PING");
        ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
        if (!ok) {
            dw_err(errstr, errstr_size,
                   "redis %s: no PONG to PING (%s): not Redis in clear? A TLS port needs a "
                   "sidecar: docs/operations.md, 'Redis over TLS'",
                   who, rep ? rep->str : c->errstr);
        }
        freeReplyObject(rep);
    }
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Makes node i's connection the one in use, connecting it first when needed. */
static int use_node(struct dw_redis *r, int i, char *errstr, size_t errstr_size)
{
    struct node *n = &r->nodes[i];
    if (!n->c) {
        n->c = node_connect(r, n->host, n->port, errstr, errstr_size);
        if (!n->c) {
            r->stale = r->slots != NULL;
            return -1;
        }
        r->n_opened++;
    }
    r->cur = i;
    r->c = n->c;
    return 0;
}

/* ---- Redis Cluster: the slot map (CLUSTER SLOTS) ---- */

/* host_a:port_a and host_b:port_b are the same node. */
static int same_addr(const char *host_a, int port_a, const char *host_b, int port_b)
{
    return port_a == port_b && strcmp(host_a, host_b) == 0;
}

/* Index of node host:port, added when new. */
static int node_index(struct dw_redis *r, const char *host, int port)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        if (same_addr(r->nodes[i].host, r->nodes[i].port, host, port)) {
            return (int)i;
        }
    }
    r->nodes = dw_realloc(r->nodes, (r->n_nodes + 1) * sizeof(*r->nodes));
    struct node *n = &r->nodes[r->n_nodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->replicas = -1;
    return (int)r->n_nodes++;
}

/*
 * Reads a CLUSTER SLOTS reply (from a node at `asked`, the host of entries that name none) into
 * a new node table and slot map; the connections of nodes that stay masters are kept, the
 * others closed. @returns 0, or -1 with errstr when the reply is not a slot map.
 */
static int map_apply(struct dw_redis *r, const redisReply *rep, const char *asked, char *errstr,
                     size_t errstr_size)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        return dw_err(errstr, errstr_size, "redis CLUSTER SLOTS: %s",
                      rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no slot map");
    }
    struct node *old_nodes = r->nodes;
    size_t old_n = r->n_nodes;
    redisContext *old_c = r->c;
    r->nodes = NULL;
    r->n_nodes = 0;
    int16_t *slots = dw_malloc(DW_SLOTS_N * sizeof(*slots));
    for (size_t i = 0; i < DW_SLOTS_N; i++) {
        slots[i] = -1;
    }
    int bad = 0;
    for (size_t i = 0; i < rep->elements && !bad; i++) {
        const redisReply *e = rep->element[i];
        bad = e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
              e->element[0]->type != REDIS_REPLY_INTEGER ||
              e->element[1]->type != REDIS_REPLY_INTEGER ||
              e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
              e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
              e->element[2]->element[1]->type != REDIS_REPLY_INTEGER;
        long long lo = bad ? 0 : e->element[0]->integer, hi = bad ? 0 : e->element[1]->integer;
        bad = bad || lo < 0 || hi >= DW_SLOTS_N || lo > hi;
        if (!bad) {
            const redisReply *m = e->element[2];
            /* "" or "?": the node did not learn its address; the one we asked has it */
            const char *host = m->element[0]->len > 0 && strcmp(m->element[0]->str, "?") != 0
                                   ? m->element[0]->str
                                   : asked;
            int idx = node_index(r, host, (int)m->element[1]->integer);
            for (long long s = lo; s <= hi; s++) {
                slots[s] = (int16_t)idx;
            }
        }
    }
    if (bad) {
        free(r->nodes);
        free(slots);
        r->nodes = old_nodes;
        r->n_nodes = old_n;
        return dw_err(errstr, errstr_size, "redis CLUSTER SLOTS: unexpected reply");
    }
    r->c = NULL;
    for (size_t i = 0; i < old_n; i++) {
        struct node *o = &old_nodes[i];
        size_t j = 0;
        while (j < r->n_nodes && !same_addr(r->nodes[j].host, r->nodes[j].port, o->host, o->port)) {
            j++;
        }
        if (j < r->n_nodes) {
            r->nodes[j].c = o->c;
            r->nodes[j].no_replica = o->no_replica; /* its replica count is read again */
            if (old_c && o->c == old_c) {
                r->cur = (int)j;
                r->c = o->c;
            }
        } else if (o->c) {
            redisFree(o->c);
        }
    }
    free(old_nodes);
    free(r->slots);
    r->slots = slots;
    r->stale = 0;
    r->moved = 0;
    return 0;
}

/* Asks host:port for the slot map (a connection of its own, closed after). */
static int map_ask(struct dw_redis *r, const char *host, int port, char *errstr, size_t errstr_size)
{
    redisContext *c = node_connect(r, host, port, errstr, errstr_size);
    if (!c) {
        return -1;
    }
    redisReply *rep = redisCommand(c, "CLUSTER SLOTS");
    int rc = rep ? map_apply(r, rep, host, errstr, errstr_size)
                 : dw_err(errstr, errstr_size, "redis %s:%d: %s", host, port, c->errstr);
    freeReplyObject(rep);
    redisFree(c);
    return rc;
}

/* Reads the slot map from the first node that answers: the known masters, then the seeds. */
static int map_refresh(struct dw_redis *r, char *errstr, size_t errstr_size)
{
    char err[256] = "no node to ask";
    size_t n_known = r->n_nodes;
    struct node *known = dw_malloc((n_known + 1) * sizeof(*known));
    if (n_known) {
        memcpy(known, r->nodes, n_known * sizeof(*known));
    }
    int rc = -1;
    for (size_t i = 0; i < n_known && rc != 0; i++) {
        rc = map_ask(r, known[i].host, known[i].port, err, sizeof(err));
    }
    free(known);
    for (size_t i = 0; i < r->cfg->n_redis_nodes && rc != 0; i++) {
        const char *seed = r->cfg->redis_nodes[i];
        char host[DW_SLOTS_HOST_MAX];
        int port;
        if (dw_hostport_parse(seed, host, sizeof(host), &port) == 0) {
            rc = map_ask(r, host, port, err, sizeof(err));
        }
    }
    if (rc != 0) {
        return dw_err(errstr, errstr_size, "redis cluster: no node gave the slot map (last: %s)",
                      err);
    }
    dw_log(DW_LOG_DEBUG, "redis cluster slot map read", "{s:i}", "masters", (int)r->n_nodes);
    return 0;
}

/* Sentinel i's answer to SENTINEL get-master-addr-by-name: host and *port, or -1 with errstr. */
static int sentinel_ask(const struct dw_config *cfg, size_t i, char *host, size_t host_size,
                        int *port, char *errstr, size_t errstr_size)
{
    const char *addr = cfg->redis_sentinels[i];
    char shost[256];
    int sport = 0;
    if (dw_hostport_parse(addr, shost, sizeof(shost), &sport) != 0) {
        return dw_err(errstr, errstr_size, "sentinel '%s' is not host:port", addr);
    }
    redisContext *c = conn_open(cfg, shost, sport, errstr, errstr_size);
    if (!c) {
        return -1;
    }
    int rc = conn_auth(c, addr, NULL, cfg->redis_sentinel_password, errstr, errstr_size);
    redisReply *rep = NULL;
    if (rc == 0) {
        rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", cfg->redis_master_name);
        int64_t p = 0;
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            rc = dw_err(errstr, errstr_size, "sentinel %s: %s", addr, rep ? rep->str : c->errstr);
        } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
                   rep->element[0]->type != REDIS_REPLY_STRING ||
                   rep->element[1]->type != REDIS_REPLY_STRING) {
            rc = dw_err(errstr, errstr_size, "sentinel %s knows no master named '%s'", addr,
                        cfg->redis_master_name);
        } else if (rep->element[0]->len >= host_size ||
                   dw_parse_i64(rep->element[1]->str, rep->element[1]->len, 1, 65535, &p) != 0) {
            rc = dw_err(errstr, errstr_size, "sentinel %s: an address that is not host and port",
                        addr);
        } else {
            snprintf(host, host_size, "%s", rep->element[0]->str);
            *port = (int)p;
        }
    }
    freeReplyObject(rep);
    redisFree(c);
    return rc;
}

/* The single node becomes host:port (what a sentinel named) and is connected. 0, or -1. */
static int sentinel_master(struct dw_redis *r, const char *host, int port, char *errstr,
                           size_t errstr_size)
{
    struct node *n = &r->nodes[0];
    if (n->c) {
        redisFree(n->c);
        n->c = NULL;
    }
    r->c = NULL;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    return use_node(r, 0, errstr, errstr_size);
}

/* 1 when c's server answers ROLE as a master, 0 when it is not one, -1 (errstr) on an error. */
static int role_is_master(redisContext *c, const char *who, char *errstr, size_t errstr_size)
{
    redisReply *rep = redisCommand(c, "ROLE");
    int rc = -1;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        dw_err(errstr, errstr_size, "redis %s: ROLE failed: %s", who, rep ? rep->str : c->errstr);
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
               rep->element[0]->type != REDIS_REPLY_STRING) {
        dw_err(errstr, errstr_size, "redis %s: ROLE: unexpected reply", who);
    } else {
        rc = strcmp(rep->element[0]->str, "master") == 0;
        if (!rc) {
            dw_err(errstr, errstr_size, "redis %s: named master but its ROLE is %s", who,
                   rep->element[0]->str);
        }
    }
    freeReplyObject(rep);
    return rc;
}

/*
 * Sentinel resolution: the sentinels are asked in turn for redis.master_name's address, and
 * the first address that connects and answers ROLE as a master wins. A sentinel may be stale
 * (it has not seen a failover yet): its answer fails the ROLE check and the next one is asked.
 * @returns 0 with r->c, or -1 with every sentinel's error in errstr (the caller retries later).
 */
static int sentinel_resolve(struct dw_redis *r, char *errstr, size_t errstr_size)
{
    dw_assert(!r->slots && r->n_nodes == 1);
    const struct dw_config *cfg = r->cfg;
    struct dw_sbuf why = {0};
    for (size_t i = 0; i < cfg->n_redis_sentinels; i++) {
        char host[256], err[512] = "", who[300];
        int port = 0;
        if (sentinel_ask(cfg, i, host, sizeof(host), &port, err, sizeof(err)) == 0) {
            snprintf(who, sizeof(who), "%s:%d", host, port);
            if (sentinel_master(r, host, port, err, sizeof(err)) == 0) {
                if (role_is_master(r->c, who, err, sizeof(err)) == 1) {
                    if (strcmp(r->master, who) != 0) {
                        dw_log(r->master[0] ? DW_LOG_WARN : DW_LOG_DEBUG, "redis master resolved",
                               "{s:s,s:s,s:s,s:s}", "master_name", cfg->redis_master_name,
                               "sentinel", cfg->redis_sentinels[i], "master", who, "previous",
                               r->master);
                        snprintf(r->master, sizeof(r->master), "%s", who);
                    }
                    dw_sbuf_free(&why);
                    return 0;
                }
                drop_conn(r);
            }
        }
        dw_sbuf_printf(&why, "%s%s", why.len ? "; " : "", err);
    }
    dw_err(errstr, errstr_size, "redis: no master '%s' from the sentinels: %s",
           cfg->redis_master_name, why.len ? why.s : "(none)");
    dw_sbuf_free(&why);
    return -1;
}

/*
 * The connection to use next. A connection that answered READONLY is dropped first (the server
 * is a replica now). Cluster: a slot map that is not stale (route() picks the node). Sentinel:
 * the master the sentinels name, checked with ROLE. Single server: redis.host:port.
 */
static int ensure_conn(struct dw_redis *r, char *errstr, size_t errstr_size)
{
    if (r->c && r->readonly) {
        drop_conn(r); /* watch_string counted and logged it */
    }
    r->readonly = 0;
    if (r->slots) {
        return r->stale ? map_refresh(r, errstr, errstr_size) : 0;
    }
    if (r->c) {
        return 0;
    }
    if (r->cfg->n_redis_sentinels) {
        return sentinel_resolve(r, errstr, errstr_size);
    }
    return use_node(r, 0, errstr, errstr_size);
}

/* Makes the connection in use the one of the node serving `key`'s hash slot. */
static int route(struct dw_redis *r, const char *key, size_t len, char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    if (!r->slots) {
        return 0;
    }
    int slot = dw_slots_key(key, len);
    if (r->slots[slot] < 0) {
        r->stale = 1;
        return dw_err(errstr, errstr_size, "redis cluster: no master serves hash slot %d", slot);
    }
    return use_node(r, r->slots[slot], errstr, errstr_size);
}

/* For a command without a key: the connection in use, or a master's. */
static int route_any(struct dw_redis *r, char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    if (r->c) {
        return 0;
    }
    return use_node(r, r->slots && r->slots[0] >= 0 ? r->slots[0] : 0, errstr, errstr_size);
}

#define MAX_REDIRECTS 5 /* MOVED/ASK answers followed per command before it fails */

/* A server error reply: in a cluster, one that says the map may have changed marks it stale. */
static void note_error(struct dw_redis *r, const redisReply *rep)
{
    if (r->slots && rep && rep->type == REDIS_REPLY_ERROR &&
        (strncmp(rep->str, "MOVED ", 6) == 0 || strncmp(rep->str, "ASK ", 4) == 0 ||
         strncmp(rep->str, "CLUSTERDOWN", 11) == 0)) {
        r->stale = 1;
        r->moved |= rep->str[0] != 'C';
    }
}

/*
 * hiredis keeps its reader's buffer, as large as the largest reply read, until the next reply
 * arrives (redisReaderFeed() frees it then): after a window's aggregate or the reference (MBs)
 * it stayed through all the evaluation did next, at the 1M bench's peak. Once nothing is left
 * in it, a buffer above READER_KEEP goes now, as hiredis itself would let it go.
 */
#define READER_KEEP (64 * 1024)

static void reader_release(redisContext *c)
{
    redisReader *rd = c->reader;
    if (rd && rd->pos == rd->len && sdsalloc(rd->buf) > READER_KEEP) {
        sdsfree(rd->buf);
        rd->buf = sdsempty();
        dw_assert(rd->buf); /* as hiredis: a smaller one was just freed */
        rd->pos = rd->len = 0;
    }
}

/* Sends cmd (after ASKING when asking) and reads its reply into *v. 0, or -1 when c failed. */
static int exchange(redisContext *c, int asking, const char *cmd, size_t len, void **v)
{
    if ((asking && redisAppendCommand(c, "ASKING") != REDIS_OK) ||
        redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
        return -1;
    }
    if (asking) {
        if (redisGetReply(c, v) != REDIS_OK) {
            return -1;
        }
        freeReplyObject(*v);
        *v = NULL;
    }
    if (redisGetReply(c, v) != REDIS_OK) {
        return -1;
    }
    reader_release(c);
    return 0;
}

/*
 * Sends one formatted command to the node of its key (or the connection in use, for a command
 * without one) and reads its reply, following MOVED (the slot map is read again) and ASK
 * (ASKING, then the command, at that node; the map is unchanged) at most MAX_REDIRECTS times.
 * @returns the reply, errors included (the caller frees it), or NULL with errstr when no node
 * answered (the connection is dropped: the next command reconnects).
 */
static redisReply *send_cmd(struct dw_redis *r, const char *cmd, size_t len, char *errstr,
                            size_t errstr_size)
{
    const char *key = NULL;
    size_t klen = 0;
    int has_key = r->slots && dw_slots_cmd_key(cmd, len, &key, &klen) == 1;
    int ask = -1;
    for (int tries = 0;; tries++) {
        int rc = ask >= 0  ? use_node(r, ask, errstr, errstr_size)
                 : has_key ? route(r, key, klen, errstr, errstr_size)
                           : route_any(r, errstr, errstr_size);
        if (rc != 0) {
            return NULL;
        }
        void *v = NULL;
        if (exchange(r->c, ask >= 0, cmd, len, &v) != 0) {
            dw_err(errstr, errstr_size, "redis %s:%d: %s", r->nodes[r->cur].host,
                   r->nodes[r->cur].port, r->c->errstr[0] ? r->c->errstr : "connection lost");
            drop_conn(r);
            return NULL;
        }
        redisReply *rep = v;
        struct dw_slots_redirect to;
        int kind = rep->type == REDIS_REPLY_ERROR
                       ? dw_slots_redirect(rep->str, (size_t)rep->len, &to)
                       : DW_SLOTS_NONE;
        if (kind <= 0 || !r->slots || tries == MAX_REDIRECTS) {
            note_error(r, rep);
            if (kind > 0 && !r->slots) {
                dw_log_limited("redis_is_cluster", 1, DW_LOG_ERROR,
                               "redis answered a cluster redirection: the server is a Redis "
                               "Cluster node; set redis.cluster: true and redis.nodes",
                               "{s:s}", "reply", rep->str);
            } else if (kind > 0) {
                dw_log_limited("redis_redirects", 1, DW_LOG_ERROR,
                               "redis cluster: still redirected after 5 tries; the command fails",
                               "{s:s}", "reply", rep->str);
            }
            return rep;
        }
        char host[DW_SLOTS_HOST_MAX]; /* a copy: reading the map replaces the node table */
        snprintf(host, sizeof(host), "%s", to.host[0] ? to.host : r->nodes[r->cur].host);
        freeReplyObject(rep);
        ask = -1;
        if (kind == DW_SLOTS_MOVED) {
            (void)map_refresh(r, NULL, 0);
            r->slots[to.slot] = (int16_t)node_index(r, host, to.port);
        } else {
            ask = node_index(r, host, to.port);
        }
    }
}

/*
 * One binary-safe command with the error text kept: a transport error drops the connection
 * (the next call reconnects), a server error leaves it open. @returns the reply (the caller
 * frees it), or NULL with errstr.
 */
static redisReply *cmd_argv(struct dw_redis *r, int argc, const char **argv, const size_t *lens,
                            char *errstr, size_t errstr_size)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        dw_err(errstr, errstr_size, "redis: cannot format the command");
        return NULL;
    }
    redisReply *rep = send_cmd(r, cmd, (size_t)len, errstr, errstr_size);
    redisFreeCommand(cmd);
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        dw_err(errstr, errstr_size, "redis: %s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static redisReply *cmdf(struct dw_redis *r, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        return NULL;
    }
    redisReply *rep = send_cmd(r, cmd, (size_t)len, NULL, 0);
    redisFreeCommand(cmd);
    return rep;
}

/* A command on the connection in use, not routed: inside a checkpoint chain or a transaction,
 * whose node is chosen once. NULL when there is no connection or no reply (dropped). */
static redisReply *cmd_here(struct dw_redis *r, const char *fmt, ...)
{
    if (!r->c) {
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    if (!rep) {
        drop_conn(r);
    }
    note_error(r, rep);
    return rep;
}

/* The connection a WATCH went to (watch_key): its node, and r->n_opened then. */
struct watch {
    int node;
    uint64_t opened;
};

/*
 * WATCH key on the node serving it, requiring its "OK". Without one nothing is watched: no
 * reply means the connection was dropped, and the next command would open a new one without
 * the WATCH; an error reply (LOADING, a redirection not followed) watched nothing either. A
 * transaction fenced by this WATCH must then run on the same connection (tx_begin), not
 * merely on the same node. @returns 0 with *w, or -1 with errstr and the connection dropped.
 */
static int watch_key(struct dw_redis *r, const char *key, struct watch *w, char *errstr,
                     size_t errstr_size)
{
    char why[256] = "no reply";
    const char *argv[] = {"WATCH", key};
    size_t lens[] = {5, strlen(key)};
    redisReply *rep = cmd_argv(r, 2, argv, lens, why, sizeof(why));
    int ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0;
    if (rep && !ok) {
        snprintf(why, sizeof(why), "unexpected reply");
    }
    freeReplyObject(rep);
    if (!ok) {
        drop_conn(r);
        return dw_err(errstr, errstr_size, "redis: WATCH %s failed: %s", key, why);
    }
    w->node = r->cur;
    w->opened = r->n_opened;
    return 0;
}

/*
 * Starts queuing a transaction on the connection in use, which must be the node serving key's
 * slot and the connection its WATCH went to (w; NULL: none): every command tx_push() queues
 * must then be of that slot. @returns 0, or -1 with errstr (the slot moved or the connection
 * was opened again meanwhile, without the WATCH: retry).
 */
static int tx_begin(struct dw_redis *r, const char *key, const struct watch *w, char *errstr,
                    size_t errstr_size)
{
    int slot = dw_slots_key(key, strlen(key));
    if (!r->c || (w && (r->cur != w->node || r->n_opened != w->opened)) ||
        (r->slots && r->slots[slot] != r->cur)) {
        return dw_err(errstr, errstr_size,
                      "redis: the connection serving %s changed before the transaction; retrying",
                      key);
    }
    r->tx_slot = slot;
    return 0;
}

/* "*n\r\n" or "$n\r\n" (kind '*' or '$') at p; @returns its bytes (at most RESP_HEAD_MAX) */
static size_t resp_head(char *p, char kind, size_t n)
{
    char digits[20];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    p[0] = kind;
    for (size_t i = 0; i < k; i++) {
        p[1 + i] = digits[k - 1 - i];
    }
    p[k + 1] = '\r';
    p[k + 2] = '\n';
    return k + 3;
}

/*
 * Appends a command to c's output in RESP (an array of bulk strings) with each byte copied
 * once. hiredis's redisAppendCommandArgv() formats the command into a string of its own and then
 * copies that string to the output: every checkpoint's bytes twice, 3.1 % of the event loop's
 * samples with the formatting (bench/RESULTS.md, "The checkpoint's bytes"). The headers and the
 * short arguments are gathered in a buffer on the stack, a long argument goes to the output as it
 * is; redisAppendFormattedCommand() is hiredis's call for bytes that are RESP already.
 */
static int append_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    char buf[RESP_GATHER];
    size_t used = resp_head(buf, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]); /* NULL lens: C strings, as for hiredis */
        int inline_arg = len <= RESP_SHORT_ARG;
        if (used + RESP_HEAD_MAX + (inline_arg ? len : 0) + 2 > sizeof(buf)) {
            if (redisAppendFormattedCommand(c, buf, used) != REDIS_OK) {
                return -1;
            }
            used = 0;
        }
        used += resp_head(buf + used, '$', len);
        if (inline_arg) {
            if (len > 0) {
                memcpy(buf + used, argv[i], len);
            }
            used += len;
        } else {
            if (redisAppendFormattedCommand(c, buf, used) != REDIS_OK ||
                redisAppendFormattedCommand(c, argv[i], len) != REDIS_OK) {
                return -1;
            }
            used = 0;
        }
        buf[used++] = '\r';
        buf[used++] = '\n';
    }
    return redisAppendFormattedCommand(c, buf, used) == REDIS_OK ? 0 : -1;
}

/* Queues one command of the transaction begun with tx_begin(). A key of another hash slot is a
 * programming error (Redis Cluster would refuse the transaction): logged, not sent. */
static int tx_push(struct dw_redis *r, int argc, const char **argv, const size_t *lens)
{
    const char *key;
    size_t klen;
    if (dw_slots_argv_key(argc, argv, lens, &key, &klen) == 1 &&
        dw_slots_same(&r->tx_slot, key, klen) != 0) {
        char k[DW_REDIS_KEY_MAX];
        snprintf(k, sizeof(k), "%.*s", (int)(klen < sizeof(k) ? klen : sizeof(k) - 1), key);
        dw_log(DW_LOG_ERROR,
               "bug: a transaction command outside the transaction's hash slot; "
               "the transaction is not sent",
               "{s:s,s:i}", "key", k, "slot", r->tx_slot);
        return -1;
    }
    return r->c && append_argv(r->c, argc, argv, lens) == 0 ? 0 : -1;
}

/*
 * A pipeline over the nodes: each command goes to its key's node, and pipe_run() reads the
 * replies back in the order of the commands (each node answers its own in order). A reply
 * that is a MOVED or ASK (a failover or a slot migration since the map was read) is asked
 * again on its own once every node has answered, through send_cmd(), which follows it.
 */
struct pipe {
    int *node;
    char **cmd;
    size_t *len;
    size_t n, cap;
};

static int pipe_send(struct dw_redis *r, struct pipe *pp, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int pipe_send(struct dw_redis *r, struct pipe *pp, const char *key, const char *fmt, ...)
{
    if (pp->n == pp->cap) {
        pp->cap = pp->cap ? 2 * pp->cap : 16;
        pp->node = dw_realloc(pp->node, pp->cap * sizeof(*pp->node));
        pp->cmd = dw_realloc(pp->cmd, pp->cap * sizeof(*pp->cmd));
        pp->len = dw_realloc(pp->len, pp->cap * sizeof(*pp->len));
    }
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&pp->cmd[pp->n], fmt, ap);
    va_end(ap);
    if (len < 0) {
        return -1;
    }
    pp->len[pp->n] = (size_t)len;
    pp->node[pp->n] = r->cur;
    pp->n++;
    if (route(r, key, strlen(key), NULL, 0) != 0) {
        pp->node[pp->n - 1] = -1;
        return -1;
    }
    pp->node[pp->n - 1] = r->cur;
    return redisAppendFormattedCommand(r->c, pp->cmd[pp->n - 1], (size_t)len) == REDIS_OK ? 0 : -1;
}

/* Drops the connections that still owe replies of commands from `from` on. */
static void pipe_abandon(struct dw_redis *r, struct pipe *pp, size_t from)
{
    for (size_t k = from; k < pp->n; k++) {
        struct node *n = pp->node[k] >= 0 ? &r->nodes[pp->node[k]] : NULL;
        if (n && n->c) {
            r->c = r->c == n->c ? NULL : r->c;
            redisFree(n->c);
            n->c = NULL;
            r->stale = r->slots != NULL;
        }
    }
}

static void pipe_free(struct pipe *pp)
{
    for (size_t k = 0; k < pp->n; k++) {
        redisFreeCommand(pp->cmd[k]);
    }
    free(pp->cmd);
    free(pp->len);
    free(pp->node);
    memset(pp, 0, sizeof(*pp));
}

/*
 * Ends the pipeline (ok: every command was sent): @returns its replies in the order of the
 * commands (the caller frees each and the array), or NULL when a node did not answer (the
 * connections owing replies are dropped). The pipeline is freed either way.
 */
static redisReply **pipe_run(struct dw_redis *r, struct pipe *pp, int ok)
{
    redisReply **out = ok ? dw_calloc(pp->n ? pp->n : 1, sizeof(*out)) : NULL;
    size_t k = 0;
    for (; ok && k < pp->n; k++) {
        struct node *n = &r->nodes[pp->node[k]];
        void *v = NULL;
        if (!n->c || redisGetReply(n->c, &v) != REDIS_OK) {
            ok = 0;
            break;
        }
        out[k] = v;
    }
    pipe_abandon(r, pp, ok ? pp->n : 0);
    for (size_t i = 0; ok && i < pp->n; i++) {
        struct dw_slots_redirect to;
        if (r->slots && out[i]->type == REDIS_REPLY_ERROR &&
            dw_slots_redirect(out[i]->str, (size_t)out[i]->len, &to) > 0) {
            freeReplyObject(out[i]);
            out[i] = send_cmd(r, pp->cmd[i], pp->len[i], NULL, 0);
            ok = out[i] != NULL;
        }
    }
    for (size_t i = 0; !ok && out && i < pp->n; i++) {
        freeReplyObject(out[i]);
    }
    if (!ok) {
        free(out);
        out = NULL;
    }
    pipe_free(pp);
    return out;
}

struct dw_redis *dw_redis_connect(const struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    struct dw_redis *r = dw_calloc(1, sizeof(*r));
    r->cfg = cfg;
    dw_metrics_series(READONLY_METRIC, READONLY_HELP, DW_METRIC_COUNTER, NULL); /* shown at 0 */
    if (cfg->redis_cluster) {
        dw_metrics_series(UNREPLICATED_METRIC, UNREPLICATED_HELP, DW_METRIC_COUNTER, NULL);
    }
    r->tx_slot = -1;
    if (cfg->redis_cluster) {
        r->slots = dw_malloc(DW_SLOTS_N * sizeof(*r->slots));
        for (size_t i = 0; i < DW_SLOTS_N; i++) {
            r->slots[i] = -1;
        }
        r->stale = 1;
    } else {
        node_index(r, cfg->redis_host, cfg->redis_port);
    }
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        dw_redis_free(r);
        return NULL;
    }
    return r;
}

void dw_redis_free(struct dw_redis *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        if (r->nodes[i].c) {
            redisFree(r->nodes[i].c);
        }
    }
    free(r->nodes);
    free(r->slots);
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

/* ---- key names: one builder per kind of key (the layout is in dw_redis.h) ---- */

/* "{dw:G:T:P}:" followed by fmt: a key under the partition's hash tag. */
static void part_key(const struct dw_redis *r, int32_t partition, char *buf, size_t size,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void part_key(const struct dw_redis *r, int32_t partition, char *buf, size_t size,
                     const char *fmt, ...)
{
    int n = snprintf(buf, size, "{dw:%s:%s:%d}:", r->cfg->group, r->cfg->topic_predictions,
                     (int)partition);
    if (n < 0 || (size_t)n >= size) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* {dw:G:T:P}:meta */
static void key_meta(const struct dw_redis *r, int32_t partition, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "meta");
}

/* {dw:G:T:P}:open */
static void key_open(const struct dw_redis *r, int32_t partition, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "open");
}

/* {dw:G:T:P}:join */
static void key_kept(const struct dw_redis *r, int32_t partition, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "%s", "kept");
}

static void key_join(const struct dw_redis *r, int32_t partition, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "join");
}

/* {dw:G:T:P}:done: the set of the joined set's buckets, "<model>\t<start>\t<span>" each */
static void key_done(const struct dw_redis *r, int32_t partition, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "done");
}

/* {dw:G:T:P}:done:<model>:<start>:<span>: a bucket of the joined set (dw_join.h) */
static void key_bucket(const struct dw_redis *r, int32_t partition, const char *model,
                       int64_t start_ms, int64_t span_ms, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "done:%s:%" PRId64 ":%" PRId64, model, start_ms, span_ms);
}

/* {dw:G:T:P}:w:<model>:<start> */
static void key_window(const struct dw_redis *r, int32_t partition, const char *model,
                       int64_t start_ms, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "w:%s:%" PRId64, model, start_ms);
}

/* The sealed copy of a window record: its whole encoding when the partition sealed it. */
static void key_sealed(const struct dw_redis *r, int32_t partition, const char *model,
                       int64_t start_ms, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "ws:%s:%" PRId64, model, start_ms);
}

/* The prefix of the window keys of a model ("{dw:G:T:P}:w:<model>:"), or of every model's
 * ("{dw:G:T:P}:w:") when model is NULL, for SCAN. */
static void key_windows_prefix(const struct dw_redis *r, int32_t partition, const char *model,
                               char *buf, size_t size)
{
    if (model) {
        part_key(r, partition, buf, size, "w:%s:", model);
    } else {
        part_key(r, partition, buf, size, "w:");
    }
}

/* The prefix of every key of a partition, "{dw:G:T:P}:", for SCAN. */
static void key_part_prefix(const struct dw_redis *r, int32_t partition, char *buf, size_t size)
{
    part_key(r, partition, buf, size, "%s", "");
}

/* "{dw:G}:name": the key of a global name (the dw_redis_name_* builders). */
static void global_key(const struct dw_redis *r, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "{dw:%s}:%s", r->cfg->group, name);
}

void dw_redis_global_key(const struct dw_redis *r, const char *name, char *buf, size_t size)
{
    global_key(r, name, buf, size);
}

/* "<kind>:<model>": the name of a global key kept per model. */
static void model_name(const char *kind, const char *model, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%s", kind, model);
}

/* lock:<lease> */
static void name_lock(const char *lease, char *buf, size_t size)
{
    snprintf(buf, size, "lock:%s", lease);
}

void dw_redis_name_eval_lease(const char *model, char *buf, size_t size)
{
    model_name("eval", model, buf, size);
}

/* lock:eval:<model>: the lease that fences the model's evaluation commits */
static void name_eval_lock(const char *model, char *buf, size_t size)
{
    char lease[DW_REDIS_NAME_MAX - sizeof("lock:") + 1]; /* lock:<lease> fits a name */
    dw_redis_name_eval_lease(model, lease, sizeof(lease));
    name_lock(lease, buf, size);
}

void dw_redis_name_pods(char *buf, size_t size)
{
    snprintf(buf, size, "pods");
}

void dw_redis_name_partitions(char *buf, size_t size)
{
    snprintf(buf, size, "partitions");
}

void dw_redis_name_cursor(const char *model, int final, char *buf, size_t size)
{
    model_name(final ? "cursor_final" : "cursor", model, buf, size);
}

void dw_redis_name_refwins(const char *model, char *buf, size_t size)
{
    model_name("refwins", model, buf, size);
}

void dw_redis_name_refgen(const char *model, char *buf, size_t size)
{
    model_name("refgen", model, buf, size);
}

void dw_redis_name_trailwins(const char *model, char *buf, size_t size)
{
    model_name("trailwins", model, buf, size);
}

void dw_redis_name_trailagg(const char *model, int64_t start_ms, char *buf, size_t size)
{
    snprintf(buf, size, "trailagg:%s:%" PRId64, model, start_ms);
}

void dw_redis_name_ref(const char *model, char *buf, size_t size)
{
    model_name("ref", model, buf, size);
}

void dw_redis_name_rolling_first(const char *model, char *buf, size_t size)
{
    model_name("rolling_first", model, buf, size);
}

static void report_prefix(const char *model, char *buf, size_t size)
{
    snprintf(buf, size, "report:%s:", model);
}

void dw_redis_name_report(const char *model, int64_t start_ms, char *buf, size_t size)
{
    char prefix[DW_REDIS_NAME_MAX];
    report_prefix(model, prefix, sizeof(prefix));
    snprintf(buf, size, "%s%" PRId64, prefix, start_ms);
}

/* "summary:<model>:", the names of a model's window summaries before their start */
static void summary_prefix(const char *model, char *buf, size_t size)
{
    snprintf(buf, size, "summary:%s:", model);
}

void dw_redis_name_summary(const char *model, int64_t start_ms, char *buf, size_t size)
{
    char prefix[DW_REDIS_NAME_MAX];
    summary_prefix(model, prefix, sizeof(prefix));
    snprintf(buf, size, "%s%" PRId64, prefix, start_ms);
}

void dw_redis_name_canary(const char *model, int64_t start_ms, const char *stage, char *buf,
                          size_t size)
{
    snprintf(buf, size, "canary:%s:%" PRId64 ":%s", model, start_ms, stage);
}

void dw_redis_name_vref(const char *kind, const char *model, const char *version, char *buf,
                        size_t size)
{
    snprintf(buf, size, "%s:%s:%s", kind, model, version);
}

void dw_redis_name_vrefs(const char *model, char *buf, size_t size)
{
    model_name("vrefs", model, buf, size);
}

void dw_redis_name_canary_last(const char *model, const char *stage, char *buf, size_t size)
{
    snprintf(buf, size, "canarylast:%s:%s", model, stage);
}

void dw_redis_name_model_metrics(const char *model, const char *stage, char *buf, size_t size)
{
    snprintf(buf, size, "modelmetrics:%s:%s", model, stage);
}

void dw_redis_name_refagg(const char *model, int64_t start_ms, char *buf, size_t size)
{
    snprintf(buf, size, "refagg:%s:%" PRId64, model, start_ms);
}

void dw_redis_name_alerts(const char *model, char *buf, size_t size)
{
    model_name("alerts", model, buf, size);
}

void dw_redis_name_trigger(const char *model, char *buf, size_t size)
{
    model_name("trigger", model, buf, size);
}

void dw_redis_name_firing(const char *model, char *buf, size_t size)
{
    model_name("firing", model, buf, size);
}

void dw_redis_name_errstream(const char *model, char *buf, size_t size)
{
    model_name("errstream", model, buf, size);
}

void dw_redis_name_baseline(const char *model, char *buf, size_t size)
{
    model_name("baseline", model, buf, size);
}

void dw_redis_name_deliveries(char *buf, size_t size)
{
    snprintf(buf, size, "deliveries");
}

int dw_redis_claim(struct dw_redis *r, int32_t partition, const char *owner, char *errstr,
                   size_t errstr_size)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, partition, key, sizeof(key));
    /* eof_ms 0: the new owner has not reached the end of the log yet (not idle); released_ms
     * 0: it holds the partition now (`state drop` refuses it until it lets it go). The
     * replicated marks (safe_eof_ms, Redis Cluster) are reset with them: the new owner writes
     * none until a replica acknowledges one of its checkpoints, and the old owner's "idle
     * since" would say idle meanwhile. The replicated clocks stay: a stale clock only holds
     * windows. Written with one Redis too, where nothing reads them: one command either way. */
    redisReply *rep = cmdf(r,
                           "HSET %s owner %s eof_ms 0 label_eof_ms 0 safe_eof_ms 0 "
                           "safe_label_eof_ms 0 released_ms 0",
                           key, owner);
    int ok = reply_ok(rep);
    if (!ok) {
        dw_err(errstr, errstr_size, "redis HSET %s: %s", key, rep ? rep->str : "connection lost");
    }
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* ---- loading ---- */

/*
 * Loading tells two failures apart, because they need opposite responses:
 *   DW_LOAD_UNAVAILABLE  no reply, or a server error such as LOADING or BUSY: Redis may answer
 *                        the same question correctly in a second, so the caller retries and
 *                        consumes nothing meanwhile (state must be loaded before consuming);
 *   DW_LOAD_CORRUPT      Redis answered and what it holds is unusable: a decoder rejected the
 *                        bytes, a number failed its strict parse or range, a key holds the
 *                        wrong Redis type (WRONGTYPE). Asking again gives the same answer, so
 *                        the caller quarantines the partition instead of retrying for ever.
 * Every number is parsed strictly (dw_parse_i64: digits only, range-checked): a garbage offset
 * read as 0 would silently re-read a partition from its start.
 */

/* bytes of a stored value or id quoted in an error message */
#define QUOTE_MAX 48

/* Ranges of the numbers a checkpoint stores (DW_NO_TS is allowed besides NUM_TS's range). */
enum num_kind {
    NUM_OFFSET, /* next offset to consume: -1 (none yet) or more */
    NUM_TS,     /* event time, ms: within the decoder's bounds, or DW_NO_TS */
    NUM_CLOCK,  /* wall-clock ms: 0 (not set) or a time */
    NUM_COUNT,  /* counter: 0 or more */
};

static int num_parse(const char *s, size_t len, enum num_kind kind, int64_t *out)
{
    switch (kind) {
    case NUM_OFFSET:
        return dw_parse_i64(s, len, -1, INT64_MAX, out);
    case NUM_TS:
        if (dw_parse_i64(s, len, DW_NO_TS, DW_NO_TS, out) == 0) {
            return 0;
        }
        return dw_parse_i64(s, len, -DW_TS_LIMIT_MS, DW_TS_LIMIT_MS, out);
    case NUM_CLOCK:
        return dw_parse_i64(s, len, 0, DW_TS_LIMIT_MS, out);
    case NUM_COUNT:
        return dw_parse_i64(s, len, 0, INT64_MAX, out);
    }
    return -1;
}

/* Printable ASCII of s (at most QUOTE_MAX bytes, others as \xHH) into buf. */
static void quote_bytes(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < QUOTE_MAX && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        }
    }
    if (len > QUOTE_MAX && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < size ? o : size - 1] = '\0';
}

/* Records a fault: *badkey := key, errstr := "key: what". @returns DW_LOAD_CORRUPT. */
static int corrupt(char *badkey, size_t badkey_size, char *errstr, size_t errstr_size,
                   const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int corrupt(char *badkey, size_t badkey_size, char *errstr, size_t errstr_size,
                   const char *key, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (badkey && badkey_size) {
        snprintf(badkey, badkey_size, "%s", key);
    }
    dw_err(errstr, errstr_size, "%s: %s", key, what);
    return DW_LOAD_CORRUPT;
}

/*
 * Classifies a reply that is not the expected kind: WRONGTYPE is corruption, anything else
 * (no reply, LOADING, BUSY, ...) unavailability. @returns the dw_load_result, errstr set.
 */
static int reply_fault(redisReply *rep, const char *cmd, const char *key, char *badkey,
                       size_t badkey_size, char *errstr, size_t errstr_size)
{
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "WRONGTYPE", 9) == 0) {
        return corrupt(badkey, badkey_size, errstr, errstr_size, key,
                       "holds the wrong Redis type for %s", cmd);
    }
    dw_err(errstr, errstr_size, "redis %s %s: %s", cmd, key,
           rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost");
    return DW_LOAD_UNAVAILABLE;
}

/* The value of field `name` of an HGETALL reply, or NULL. */
static const redisReply *field_get(const redisReply *arr, const char *name)
{
    for (size_t i = 0; i + 1 < arr->elements; i += 2) {
        const redisReply *k = arr->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            return arr->element[i + 1];
        }
    }
    return NULL;
}

/*
 * Strictly parses one number: absent (NULL or nil) gives dflt; present and not a number of its
 * kind is corruption. @returns 0, or -1 with errstr naming the field and quoting the value.
 */
static int num_field(const redisReply *v, const char *name, enum num_kind kind, int64_t dflt,
                     int64_t *out, char *errstr, size_t errstr_size)
{
    if (!v || v->type == REDIS_REPLY_NIL) {
        *out = dflt;
        return 0;
    }
    if (v->type == REDIS_REPLY_STRING && num_parse(v->str, v->len, kind, out) == 0) {
        return 0;
    }
    char q[4 * QUOTE_MAX + 8] = "";
    if (v->type == REDIS_REPLY_STRING) {
        quote_bytes(v->str, v->len, q, sizeof(q));
    }
    static const char *const kinds[] = {[NUM_OFFSET] = "an offset (-1 or more)",
                                        [NUM_TS] = "an event time in milliseconds",
                                        [NUM_CLOCK] = "a wall-clock time in milliseconds",
                                        [NUM_COUNT] = "a count (0 or more)"};
    return dw_err(errstr, errstr_size, "field %s = \"%s\" is not %s", name, q, kinds[kind]);
}

static long model_index(const char *name, size_t len, void *opaque)
{
    const struct dw_config *cfg = opaque;
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (dw_str_is(cfg->models[i].name, name, len)) {
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

/* @returns 0, or -1 with errstr naming the bad field. */
static int load_meta(struct dw_part *p, const redisReply *meta, char *errstr, size_t errstr_size)
{
    int64_t v;
#define NUM(field, name, kind, dflt)                                                               \
    do {                                                                                           \
        if (num_field(field_get(meta, name), name, kind, dflt, &v, errstr, errstr_size) != 0) {    \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    NUM(off_pred, "off_pred", NUM_OFFSET, -1);
    p->off_pred = v;
    NUM(off_label, "off_label", NUM_OFFSET, -1);
    p->off_label = v;
    NUM(max_ts, "max_ts", NUM_TS, DW_NO_TS);
    p->max_ts = v;
    NUM(min_ts, "min_ts", NUM_TS, DW_NO_TS);
    p->min_ts = v;
    NUM(max_label_ts, "max_label_ts", NUM_TS, DW_NO_TS);
    p->max_label_ts = v;
    NUM(replay_upto_ms, "replay_upto_ms", NUM_TS, DW_NO_TS);
    p->replay_upto_ms = v;
    NUM(ckpt_seq, "ckpt_seq", NUM_COUNT, 0);
    p->ckpt_seq = (uint64_t)v;
#define LOAD_CTR(name)                                                                             \
    NUM(name, #name, NUM_COUNT, 0);                                                                \
    p->ctr.name = (uint64_t)v;
    META_COUNTERS(LOAD_CTR)
#undef LOAD_CTR
#undef NUM
    if (p->min_ts != DW_NO_TS && p->max_ts != DW_NO_TS && p->min_ts > p->max_ts) {
        return dw_err(errstr, errstr_size,
                      "fields min_ts %" PRId64 " and max_ts %" PRId64 " are not in order",
                      p->min_ts, p->max_ts);
    }
    return 0;
}

/* A member of a partition's list of keys: "<model>\t<start ms>" (the open windows) or
 * "<model>\t<start ms>\t<span ms>" (the joined set's buckets). */
struct member {
    long midx; /* the configured model's index */
    int64_t start, span;
};

/* What a list of keys holds: its members' form, in messages, and what loads one member. */
struct member_kind {
    int with_span;
    const char *form;    /* the member's form, for the corruption message */
    const char *unknown; /* the warning for a member of an unconfigured model */
    int (*load)(struct dw_redis *r, struct dw_part *p, const char *list_key, const struct member *m,
                char *badkey, size_t badkey_size, char *errstr, size_t errstr_size);
};

/* Splits a member (kind->with_span: three fields, else two). @returns 0, -1 when malformed. */
static int parse_member(const redisReply *m, int with_span, size_t *model_len, int64_t *start,
                        int64_t *span)
{
    if (m->type != REDIS_REPLY_STRING) {
        return -1;
    }
    const char *end = m->str + m->len;
    const char *tab = memchr(m->str, '\t', m->len);
    const char *tab2 = tab && with_span ? memchr(tab + 1, '\t', (size_t)(end - tab - 1)) : end;
    if (!tab || tab == m->str || !tab2) {
        return -1;
    }
    *model_len = (size_t)(tab - m->str);
    *span = 0;
    return num_parse(tab + 1, (size_t)(tab2 - tab - 1), NUM_TS, start) == 0 && *start != DW_NO_TS &&
                   (!with_span ||
                    dw_parse_i64(tab2 + 1, (size_t)(end - tab2 - 1), 1, UINT32_MAX, span) == 0)
               ? 0
               : -1;
}

/* Loads every member of the set `key` of a partition with kind->load; a malformed member is
 * corruption, one of an unconfigured model is skipped with a warning. */
static int load_members(struct dw_redis *r, struct dw_part *p, const char *key,
                        const struct member_kind *kind, char *badkey, size_t badkey_size,
                        char *errstr, size_t errstr_size)
{
    redisReply *set = cmdf(r, "SMEMBERS %s", key);
    if (!reply_ok(set) || set->type != REDIS_REPLY_ARRAY) {
        int rc = reply_fault(set, "SMEMBERS", key, badkey, badkey_size, errstr, errstr_size);
        freeReplyObject(set);
        return rc;
    }
    int rc = 0;
    for (size_t i = 0; i < set->elements && rc == 0; i++) {
        const redisReply *e = set->element[i];
        size_t mlen;
        struct member m;
        if (parse_member(e, kind->with_span, &mlen, &m.start, &m.span) != 0) {
            char q[4 * QUOTE_MAX + 8] = "";
            quote_bytes(e->str, e->len, q, sizeof(q));
            rc = corrupt(badkey, badkey_size, errstr, errstr_size, key, "member \"%s\" is not %s",
                         q, kind->form);
            break;
        }
        m.midx = model_index(e->str, mlen, (void *)r->cfg);
        if (m.midx < 0) {
            dw_log(DW_LOG_WARN, kind->unknown, "{s:s,s:i}", "member", e->str, "partition",
                   (int)p->partition);
            continue;
        }
        rc = kind->load(r, p, key, &m, badkey, badkey_size, errstr, errstr_size);
    }
    freeReplyObject(set);
    return rc;
}

/*
 * Decodes the window blob of `wkey` (model m, start) into *out. @returns DW_LOAD_FOUND,
 * DW_LOAD_NONE (no such key: expired), or a fault.
 */
static int load_blob(struct dw_redis *r, const char *wkey, const struct dw_model_cfg *m,
                     int64_t start, struct dw_agg **out, char *badkey, size_t badkey_size,
                     char *errstr, size_t errstr_size)
{
    *out = NULL;
    redisReply *blob = cmdf(r, "GET %s", wkey);
    int rc = DW_LOAD_FOUND;
    if (!reply_ok(blob)) {
        rc = reply_fault(blob, "GET", wkey, badkey, badkey_size, errstr, errstr_size);
    } else if (blob->type != REDIS_REPLY_STRING) {
        rc = DW_LOAD_NONE;
    } else {
        char why[256] = "";
        *out = dw_agg_decode(m, blob->str, (size_t)blob->len, why, sizeof(why));
        if (!*out) {
            rc = corrupt(badkey, badkey_size, errstr, errstr_size, wkey, "%s (%zu bytes)", why,
                         (size_t)blob->len);
        } else if ((*out)->start_ms != start) {
            rc = corrupt(badkey, badkey_size, errstr, errstr_size, wkey,
                         "holds the window starting at %" PRId64, (*out)->start_ms);
            dw_agg_free(*out);
            *out = NULL;
        }
    }
    freeReplyObject(blob);
    return rc;
}

/* load_blob() of full key `key` as 1 found, 0 absent, -1 Redis error or corrupt. */
static int read_blob(struct dw_redis *r, const char *key, const struct dw_model_cfg *m,
                     int64_t start, struct dw_agg **out, char *errstr, size_t errstr_size)
{
    char badkey[DW_REDIS_KEY_MAX];
    int rc = load_blob(r, key, m, start, out, badkey, sizeof(badkey), errstr, errstr_size);
    return rc == DW_LOAD_FOUND ? 1 : rc == DW_LOAD_NONE ? 0 : -1;
}

int dw_redis_read_part_window(struct dw_redis *r, int32_t partition, const struct dw_model_cfg *m,
                              int64_t start, struct dw_agg **out, char *errstr, size_t errstr_size)
{
    char wkey[DW_REDIS_KEY_MAX];
    key_window(r, partition, m->name, start, wkey, sizeof(wkey));
    return read_blob(r, wkey, m, start, out, errstr, errstr_size);
}

/* Loads one open window of a partition, named by a member of its open set. */
static int load_open_window(struct dw_redis *r, struct dw_part *p, const char *key,
                            const struct member *mb, char *badkey, size_t badkey_size, char *errstr,
                            size_t errstr_size)
{
    const struct dw_model_cfg *m = &r->cfg->models[mb->midx];
    char wkey[DW_REDIS_KEY_MAX];
    key_window(r, p->partition, m->name, mb->start, wkey, sizeof(wkey));
    if (dw_part_window(p, m, mb->start)) {
        return corrupt(badkey, badkey_size, errstr, errstr_size, key,
                       "window w:%s:%" PRId64 " listed twice", m->name, mb->start);
    }
    struct dw_agg *agg;
    int got = load_blob(r, wkey, m, mb->start, &agg, badkey, badkey_size, errstr, errstr_size);
    if (got == DW_LOAD_FOUND) {
        dw_part_adopt_window(p, agg);
    } else if (got == DW_LOAD_NONE) {
        /* Expired (window.retention passed while no consumer ran): its counts of this
         * partition are gone; say so rather than lose them silently. */
        dw_log(DW_LOG_WARN, "open window missing from Redis: its counts are lost", "{s:i,s:s}",
               "partition", (int)p->partition, "key", wkey);
    } else {
        return got;
    }
    return 0;
}

static int load_windows(struct dw_redis *r, struct dw_part *p, char *badkey, size_t badkey_size,
                        char *errstr, size_t errstr_size)
{
    static const struct member_kind open = {
        .form = "<model>\\t<window start ms>",
        .unknown = "checkpointed window of an unconfigured model ignored",
        .load = load_open_window};
    char key[DW_REDIS_KEY_MAX];
    key_open(r, p->partition, key, sizeof(key));
    return load_members(r, p, key, &open, badkey, badkey_size, errstr, errstr_size);
}

/* Lists one retired window whose record is kept, named by a member of the kept set. */
static int load_kept_window(struct dw_redis *r, struct dw_part *p, const char *key,
                            const struct member *mb, char *badkey, size_t badkey_size, char *errstr,
                            size_t errstr_size)
{
    (void)key, (void)badkey, (void)badkey_size, (void)errstr, (void)errstr_size;
    dw_part_keep_window(p, &r->cfg->models[mb->midx], mb->start);
    return 0;
}

static int load_kept(struct dw_redis *r, struct dw_part *p, char *badkey, size_t badkey_size,
                     char *errstr, size_t errstr_size)
{
    static const struct member_kind kept = {
        .form = "<model>\\t<window start ms>",
        .unknown = "kept window of an unconfigured model ignored (its record expires with "
                   "window.retention)",
        .load = load_kept_window};
    char key[DW_REDIS_KEY_MAX];
    key_kept(r, p->partition, key, sizeof(key));
    return load_members(r, p, key, &kept, badkey, badkey_size, errstr, errstr_size);
}

/* Loads one bucket of the joined set (model midx) named by a member of the bucket list: a
 * list of pieces (one per checkpoint that appended, or one written whole). */
static int load_bucket(struct dw_redis *r, struct dw_part *p, const char *list_key,
                       const struct member *mb, char *badkey, size_t badkey_size, char *errstr,
                       size_t errstr_size)
{
    (void)list_key;
    long midx = mb->midx;
    int64_t start = mb->start, span = mb->span;
    char key[DW_REDIS_KEY_MAX];
    key_bucket(r, p->partition, r->cfg->models[midx].name, start, span, key, sizeof(key));
    redisReply *rep = cmdf(r, "LRANGE %s 0 -1", key);
    if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY) {
        int rc = reply_fault(rep, "LRANGE", key, badkey, badkey_size, errstr, errstr_size);
        freeReplyObject(rep);
        return rc;
    }
    struct dw_buf all;
    dw_buf_init(&all);
    int bad = 0;
    for (size_t i = 0; i < rep->elements && !bad; i++) {
        const redisReply *e = rep->element[i];
        bad = e->type != REDIS_REPLY_STRING || e->len % DW_JOIN_DONE_BYTES != 0;
        if (!bad) {
            dw_buf_put(&all, e->str, (size_t)e->len);
        }
    }
    if (rep->elements == 0) {
        /* Listed but gone: later labels of these predictions cannot be told from first ones.
         * Loaded empty, the bucket is dropped from the list at the next checkpoint. */
        dw_log(DW_LOG_WARN, "joined records missing from Redis: their duplicates are not known",
               "{s:i,s:s}", "partition", (int)p->partition, "key", key);
    }
    int64_t before =
        p->max_label_ts == DW_NO_TS ? INT64_MIN : p->max_label_ts - r->cfg->join_ttl_ms;
    int rc = 0;
    if (bad || dw_join_bucket_load(&p->join, (uint16_t)midx, start, span, all.data, all.len,
                                   before) != 0) {
        rc = corrupt(badkey, badkey_size, errstr, errstr_size, key,
                     "joined records are truncated or corrupt (%zu pieces)", rep->elements);
    }
    dw_buf_free(&all);
    freeReplyObject(rep);
    return rc;
}

static int load_joined(struct dw_redis *r, struct dw_part *p, char *badkey, size_t badkey_size,
                       char *errstr, size_t errstr_size)
{
    static const struct member_kind buckets = {
        .with_span = 1,
        .form = "<model>\\t<start ms>\\t<span ms>",
        .unknown = "joined records of an unconfigured model ignored",
        .load = load_bucket};
    char key[DW_REDIS_KEY_MAX];
    key_done(r, p->partition, key, sizeof(key));
    return load_members(r, p, key, &buckets, badkey, badkey_size, errstr, errstr_size);
}

static int load_join(struct dw_redis *r, struct dw_part *p, char *badkey, size_t badkey_size,
                     char *errstr, size_t errstr_size)
{
    char key[DW_REDIS_KEY_MAX];
    key_join(r, p->partition, key, sizeof(key));
    char cursor[32] = "0";
    do {
        redisReply *rep = cmdf(r, "HSCAN %s %s COUNT " HSCAN_COUNT, key, cursor);
        if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            int rc = reply_fault(rep, "HSCAN", key, badkey, badkey_size, errstr, errstr_size);
            freeReplyObject(rep);
            return rc;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *kv = rep->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            const redisReply *id = kv->element[i], *val = kv->element[i + 1];
            /* HSCAN may return an element twice (a rehash between calls): the first wins. */
            if (id->len > 0 && dw_join_find(&p->join, id->str, (size_t)id->len)) {
                continue;
            }
            int rc = dw_join_rec_decode(&p->join, id->str, (size_t)id->len, val->str,
                                        (size_t)val->len, model_index, (void *)r->cfg);
            if (rc < 0) {
                char q[4 * QUOTE_MAX + 8];
                quote_bytes(id->str, id->len, q, sizeof(q));
                rc = corrupt(badkey, badkey_size, errstr, errstr_size, key,
                             "join record \"%s\" (%zu bytes) is truncated or corrupt", q,
                             (size_t)val->len);
                freeReplyObject(rep);
                return rc;
            }
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int dw_redis_load_part(struct dw_redis *r, struct dw_part *p, char *badkey, size_t badkey_size,
                       char *errstr, size_t errstr_size)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, p->partition, key, sizeof(key));
    if (badkey && badkey_size) {
        badkey[0] = '\0';
    }
    redisReply *meta = cmdf(r, "HGETALL %s", key);
    if (!reply_ok(meta) || meta->type != REDIS_REPLY_ARRAY) {
        int rc = reply_fault(meta, "HGETALL", key, badkey, badkey_size, errstr, errstr_size);
        freeReplyObject(meta);
        return rc;
    }
    if (!field_get(meta, "off_pred")) {
        freeReplyObject(meta);
        /* No checkpoint yet (maybe just an owner field). Windows or join records without one
         * are the remains of a partial deletion: loading nothing would count them again. */
        char open[DW_REDIS_KEY_MAX], join[DW_REDIS_KEY_MAX], done[DW_REDIS_KEY_MAX];
        key_open(r, p->partition, open, sizeof(open));
        key_join(r, p->partition, join, sizeof(join));
        key_done(r, p->partition, done, sizeof(done));
        redisReply *ex = cmdf(r, "EXISTS %s %s %s", open, join, done);
        if (!reply_ok(ex) || ex->type != REDIS_REPLY_INTEGER) {
            int rc = reply_fault(ex, "EXISTS", open, badkey, badkey_size, errstr, errstr_size);
            freeReplyObject(ex);
            return rc;
        }
        long long n = ex->integer;
        freeReplyObject(ex);
        if (n > 0) {
            return corrupt(badkey, badkey_size, errstr, errstr_size, key,
                           "no off_pred, but the partition's open windows or join records "
                           "exist (partial state)");
        }
        return DW_LOAD_NONE;
    }
    char why[512];
    int bad = load_meta(p, meta, why, sizeof(why));
    freeReplyObject(meta);
    if (bad) {
        return corrupt(badkey, badkey_size, errstr, errstr_size, key, "%s", why);
    }
    int rc = load_windows(r, p, badkey, badkey_size, errstr, errstr_size);
    if (rc == 0) {
        rc = load_kept(r, p, badkey, badkey_size, errstr, errstr_size);
    }
    if (rc == 0) {
        rc = load_join(r, p, badkey, badkey_size, errstr, errstr_size);
    }
    if (rc == 0) {
        rc = load_joined(r, p, badkey, badkey_size, errstr, errstr_size);
    }
    /* Not dirty, but what the next checkpoint must move stays listed: joined records of an
     * older layout (hash fields to delete, entries to append) and buckets of another span. */
    dw_assert(rc != 0 || p->join.n_dirty == 0);
    return rc != 0 ? rc : DW_LOAD_FOUND;
}

int dw_redis_quarantine(struct dw_redis *r, int32_t partition, const char *reason, char *errstr,
                        size_t errstr_size)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, partition, key, sizeof(key));
    /* eof 0: a quarantined partition is never idle, so it holds the windows it has not read. */
    redisReply *rep = reason
                          ? cmdf(r, "HSET %s quarantined %s eof_ms 0 label_eof_ms 0", key, reason)
                          : cmdf(r, "HDEL %s quarantined", key);
    int ok = reply_ok(rep);
    if (!ok) {
        dw_err(errstr, errstr_size, "redis %s %s: %s", reason ? "HSET" : "HDEL", key,
               rep ? rep->str : "connection lost");
    }
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* The nodes holding the keys of a slot: its master, and while the slot migrates (a key it does
 * not have is asked elsewhere: ASK) the node it migrates to. */
struct slot_holders {
    char host[2][DW_SLOTS_HOST_MAX];
    int port[2];
    int n;
};

/* Finds the holders of prefix's slot (cluster only) by a command on the prefix itself, a key
 * that does not exist: EXISTS follows a MOVED (a SCAN never walks a node that no longer serves
 * the slot) and ends at the importing node after an ASK. 0, or -1 when Redis failed. */
static int slot_holders(struct dw_redis *r, const char *prefix, struct slot_holders *h)
{
    redisReply *probe = cmdf(r, "EXISTS %s", prefix);
    int ok = reply_ok(probe) && r->c;
    freeReplyObject(probe);
    if (!ok) {
        return -1;
    }
    /* the node that answered, kept before routing (which may read the map again) */
    snprintf(h->host[1], sizeof(h->host[1]), "%s", r->nodes[r->cur].host);
    h->port[1] = r->nodes[r->cur].port;
    if (route(r, prefix, strlen(prefix), NULL, 0) != 0) {
        return -1;
    }
    const struct node *master = &r->nodes[r->cur];
    snprintf(h->host[0], sizeof(h->host[0]), "%s", master->host);
    h->port[0] = master->port;
    h->n = 1 + !same_addr(h->host[0], h->port[0], h->host[1], h->port[1]);
    return 0;
}

/* The same holders in the same order (a listing walked them all). */
static int same_holders(const struct slot_holders *a, const struct slot_holders *b)
{
    int same = a->n == b->n;
    for (int i = 0; same && i < a->n; i++) {
        same = same_addr(a->host[i], a->port[i], b->host[i], b->port[i]);
    }
    return same;
}

/* Calls fn for every key matching `pattern` on the connection in use (SCAN MATCH). */
static int scan_here(struct dw_redis *r, const char *pattern, size_t len,
                     int (*fn)(void *opaque, const char *key, size_t len), void *opaque)
{
    char cursor[32] = "0";
    do {
        redisReply *rep = cmd_here(r, "SCAN %s MATCH %b COUNT 1000", cursor, pattern, len);
        if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            freeReplyObject(rep);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        int rc = 0;
        for (size_t i = 0; i < rep->element[1]->elements && rc == 0; i++) {
            const redisReply *k = rep->element[1]->element[i];
            rc = fn(opaque, k->str, (size_t)k->len);
        }
        freeReplyObject(rep);
        if (rc != 0) {
            return rc;
        }
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/*
 * Calls fn for every key that starts with `prefix` (SCAN MATCH with the prefix's glob
 * characters escaped). @returns 0, -1 when Redis failed, or fn's non-zero return.
 * Every prefix starts with a whole hash tag, so its keys share one slot. In a cluster the SCAN
 * walks that slot's holders (slot_holders): the master, then, while the slot migrates, the node
 * it migrates to (in that order: a key moved in between is seen twice, never missed). When the
 * holders changed during the walk (a migration began or ended), it fails rather than report a
 * partial list; the caller's command is run again.
 */
static int scan_prefix(struct dw_redis *r, const char *prefix,
                       int (*fn)(void *opaque, const char *key, size_t len), void *opaque)
{
    dw_assert(prefix[0] == '{' && strchr(prefix, '}') != NULL);
    struct slot_holders h = {.n = 1}, after = {.n = 1};
    if (r->slots && slot_holders(r, prefix, &h) != 0) {
        return -1;
    }
    char pattern[1300];
    size_t o = 0;
    for (const char *s = prefix; *s && o + 3 < sizeof(pattern); s++) {
        if (strchr("*?[]\\", *s)) {
            pattern[o++] = '\\';
        }
        pattern[o++] = *s;
    }
    pattern[o++] = '*';
    pattern[o] = '\0';
    int rc = 0;
    for (int i = 0; i < h.n && rc == 0; i++) {
        rc = !r->slots ? route_any(r, NULL, 0)
                       : use_node(r, node_index(r, h.host[i], h.port[i]), NULL, 0);
        rc = rc == 0 ? scan_here(r, pattern, o, fn, opaque) : -1;
    }
    if (rc == 0 && r->slots &&
        (slot_holders(r, prefix, &after) != 0 || !same_holders(&h, &after))) {
        dw_log(DW_LOG_WARN,
               "redis cluster: the slot moved while its keys were listed; the "
               "listing is not trusted",
               "{s:s}", "prefix", prefix);
        rc = -1;
    }
    return rc;
}

struct check_acc {
    struct dw_redis *r;
    size_t prefix_len, n;
    char *badkey, *errstr;
    size_t badkey_size, errstr_size;
};

static int check_window(void *opaque, const char *key, size_t len)
{
    struct check_acc *a = opaque;
    const char *name = key + a->prefix_len;
    const char *colon = NULL;
    for (const char *s = name; s < key + len; s++) {
        colon = *s == ':' ? s : colon;
    }
    int64_t start;
    if (!colon || num_parse(colon + 1, (size_t)(key + len - colon - 1), NUM_TS, &start) != 0 ||
        start == DW_NO_TS) {
        return corrupt(a->badkey, a->badkey_size, a->errstr, a->errstr_size, key,
                       "not a window key (w:<model>:<start ms>)");
    }
    long midx = model_index(name, (size_t)(colon - name), (void *)a->r->cfg);
    if (midx < 0) {
        return 0; /* a model no longer configured: neither run nor the evaluator reads it */
    }
    struct dw_agg *agg;
    int rc = load_blob(a->r, key, &a->r->cfg->models[midx], start, &agg, a->badkey, a->badkey_size,
                       a->errstr, a->errstr_size);
    dw_agg_free(agg);
    a->n += rc == DW_LOAD_FOUND;
    return rc == DW_LOAD_FOUND || rc == DW_LOAD_NONE ? 0 : rc;
}

int dw_redis_check_windows(struct dw_redis *r, int32_t partition, size_t *n_windows, char *badkey,
                           size_t badkey_size, char *errstr, size_t errstr_size)
{
    char prefix[DW_REDIS_KEY_MAX];
    key_windows_prefix(r, partition, NULL, prefix, sizeof(prefix));
    struct check_acc a = {.r = r,
                          .prefix_len = strlen(prefix),
                          .badkey = badkey,
                          .badkey_size = badkey_size,
                          .errstr = errstr,
                          .errstr_size = errstr_size};
    int rc = scan_prefix(r, prefix, check_window, &a);
    *n_windows = a.n;
    if (rc == -1 && !(errstr && errstr[0])) {
        dw_err(errstr, errstr_size, "redis SCAN %s*: connection lost", prefix);
    }
    return rc != 0 ? rc : a.n > 0 ? DW_LOAD_FOUND : DW_LOAD_NONE;
}

struct drop_acc {
    struct dw_redis *r;
    int dry_run;
    long n;
};

static int drop_key(void *opaque, const char *key, size_t len)
{
    struct drop_acc *a = opaque;
    if (!a->dry_run) {
        redisReply *rep = cmdf(a->r, "DEL %b", key, len);
        int ok = reply_ok(rep);
        freeReplyObject(rep);
        if (!ok) {
            return -1;
        }
    }
    a->n++;
    return 0;
}

long dw_redis_drop_part(struct dw_redis *r, int32_t partition, int dry_run, char *errstr,
                        size_t errstr_size)
{
    char prefix[DW_REDIS_KEY_MAX];
    key_part_prefix(r, partition, prefix, sizeof(prefix));
    struct drop_acc a = {.r = r, .dry_run = dry_run};
    if (scan_prefix(r, prefix, drop_key, &a) != 0) {
        return dw_err(errstr, errstr_size, "redis: cannot %s the keys %s* (%ld %s)",
                      dry_run ? "list" : "delete", prefix, a.n, dry_run ? "listed" : "deleted");
    }
    if (!dry_run) {
        /* The tombstone tells the next owner that the loss was chosen (dw_redis_part_dropped):
         * it rebuilds the partition instead of applying state.on_loss. */
        char key[DW_REDIS_KEY_MAX];
        key_meta(r, partition, key, sizeof(key));
        redisReply *rep = cmdf(r, "HSET %s dropped_ms %lld", key, (long long)dw_now_ms());
        int ok = reply_ok(rep);
        freeReplyObject(rep);
        if (!ok) {
            return dw_err(errstr, errstr_size, "redis: cannot write the tombstone of %s", key);
        }
    }
    return a.n;
}

int dw_redis_part_dropped(struct dw_redis *r, int32_t partition)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, partition, key, sizeof(key));
    redisReply *rep = cmdf(r, "HEXISTS %s dropped_ms", key);
    int res = reply_ok(rep) && rep->type == REDIS_REPLY_INTEGER ? rep->integer != 0 : -1;
    freeReplyObject(rep);
    return res;
}

int dw_redis_part_owner(struct dw_redis *r, int32_t partition, struct dw_part_owner *out)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, partition, key, sizeof(key));
    memset(out, 0, sizeof(*out));
    redisReply *rep = cmdf(r, "HMGET %s owner updated_ms quarantined released_ms", key);
    if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
        int wrongtype = rep && rep->type == REDIS_REPLY_ERROR;
        freeReplyObject(rep);
        return wrongtype ? 0 : -1; /* a meta of the wrong type has no owner to protect */
    }
    redisReply **e = rep->element;
    if (e[0]->type == REDIS_REPLY_STRING) {
        snprintf(out->owner, sizeof(out->owner), "%s", e[0]->str);
    }
    if (e[1]->type != REDIS_REPLY_STRING ||
        num_parse(e[1]->str, e[1]->len, NUM_CLOCK, &out->updated_ms) != 0) {
        out->updated_ms = 0;
    }
    if (e[2]->type == REDIS_REPLY_STRING) {
        snprintf(out->quarantined, sizeof(out->quarantined), "%s", e[2]->str);
    }
    if (e[3]->type != REDIS_REPLY_STRING ||
        num_parse(e[3]->str, e[3]->len, NUM_CLOCK, &out->released_ms) != 0) {
        out->released_ms = 0;
    }
    freeReplyObject(rep);
    return 0;
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
    int rc = tx_push(r, (int)ck->a.n, ck->a.v, ck->a.len);
    ck->a.n = 0;
    ck->n_cmds++;
    return rc;
}

/* Blob offsets are stable only once the buffer stops growing: encode first, send after. */
struct blob_ref {
    size_t off, len;
    int del; /* a retired window no reader needs any more: deleted, not written (dw_part.h) */
};

/* "<model>\t<start ms>": a window's member of the open and kept sets */
static const char *ck_member(struct ckpt *ck, const struct dw_model_cfg *m, int64_t start_ms)
{
    return ck_fmt(ck, "%s\t%" PRId64, m->name, start_ms);
}

static void ck_windows(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                       struct blob_ref **refs, size_t *n_refs)
{
    dw_part_seal(p); /* before encoding: a window sealed now is written small, its copy whole */
    size_t total = p->n_wins + p->n_retired;
    *refs = dw_calloc(total ? total : 1, sizeof(**refs));
    *n_refs = 0;
    for (size_t i = 0; i < total; i++) {
        struct dw_agg *agg = i < p->n_wins ? p->wins[i] : p->retired[i - p->n_wins];
        int del = i >= p->n_wins && dw_part_gc_due(p, agg->model, agg->start_ms);
        if ((i < p->n_wins && !agg->dirty) || del) {
            (*refs)[(*n_refs)++] = (struct blob_ref){0, 0, del};
            continue;
        }
        size_t off = ck->blobs.len;
        dw_agg_encode(agg, &ck->blobs);
        (*refs)[(*n_refs)++] = (struct blob_ref){off, ck->blobs.len - off, 0};
    }
    (void)r;
}

/* Deletes the records of the kept windows no reader needs any more (dw_part_gc_plan). */
static int ck_send_kept(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                        const char *kept_key)
{
    char wkey[DW_REDIS_KEY_MAX], skey[DW_REDIS_KEY_MAX];
    for (size_t i = 0; i < p->n_kept; i++) {
        const struct dw_part_kept *k = &p->kept[i];
        if (!k->going) {
            continue;
        }
        key_window(r, p->partition, k->model->name, k->start_ms, wkey, sizeof(wkey));
        key_sealed(r, p->partition, k->model->name, k->start_ms, skey, sizeof(skey));
        argv_pushs(&ck->a, "DEL");
        argv_pushs(&ck->a, wkey);
        argv_pushs(&ck->a, skey); /* merged long ago, normally gone: sure */
        if (ck_send(r, ck) != 0) {
            return -1;
        }
        argv_pushs(&ck->a, "SREM");
        argv_pushs(&ck->a, kept_key);
        argv_pushs(&ck->a, ck_member(ck, k->model, k->start_ms));
        if (ck_send(r, ck) != 0) {
            return -1;
        }
    }
    return 0;
}

/* A window's sealed copy: written once when the window was sealed now (the same expiry as
 * the record), deleted once merged or with the record. */
static int ck_send_sealed(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                          const struct dw_agg *agg, int deleted, int64_t px)
{
    int write = agg->seal_blob.len > 0 && !deleted;
    if (!write && !agg->seal_gone && !(deleted && agg->sealed)) {
        return 0;
    }
    char skey[DW_REDIS_KEY_MAX];
    key_sealed(r, p->partition, agg->model->name, agg->start_ms, skey, sizeof(skey));
    argv_pushs(&ck->a, write ? "SET" : "DEL");
    argv_pushs(&ck->a, skey);
    if (write) {
        argv_push(&ck->a, agg->seal_blob.data, agg->seal_blob.len);
        argv_pushs(&ck->a, "PX");
        argv_pushs(&ck->a, ck_fmt(ck, "%" PRId64, px));
    }
    return ck_send(r, ck);
}

static int ck_send_windows(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                           const struct blob_ref *refs)
{
    int64_t px = r->cfg->retention_windows * r->cfg->window_size_ms + r->cfg->label_horizon_ms +
                 r->cfg->allowed_lateness_ms;
    char open_key[DW_REDIS_KEY_MAX], kept_key[DW_REDIS_KEY_MAX], wkey[DW_REDIS_KEY_MAX];
    key_open(r, p->partition, open_key, sizeof(open_key));
    key_kept(r, p->partition, kept_key, sizeof(kept_key));
    for (size_t i = 0; i < p->n_wins + p->n_retired; i++) {
        int retired = i >= p->n_wins;
        struct dw_agg *agg = retired ? p->retired[i - p->n_wins] : p->wins[i];
        int deleted = refs[i].del;
        if (!refs[i].len && !deleted) {
            continue;
        }
        if (ck_send_sealed(r, p, ck, agg, deleted, px) != 0) {
            return -1;
        }
        key_window(r, p->partition, agg->model->name, agg->start_ms, wkey, sizeof(wkey));
        argv_pushs(&ck->a, deleted ? "DEL" : "SET");
        argv_pushs(&ck->a, wkey);
        if (!deleted) {
            argv_push(&ck->a, ck->blobs.data + refs[i].off, refs[i].len);
            argv_pushs(&ck->a, "PX");
            argv_pushs(&ck->a, ck_fmt(ck, "%" PRId64, px));
        }
        if (ck_send(r, ck) != 0) {
            return -1;
        }
        const char *member = ck_member(ck, agg->model, agg->start_ms);
        argv_pushs(&ck->a, retired ? "SREM" : "SADD");
        argv_pushs(&ck->a, open_key);
        argv_pushs(&ck->a, member);
        if (ck_send(r, ck) != 0) {
            return -1;
        }
        if (retired && !deleted) {
            argv_pushs(&ck->a, "SADD");
            argv_pushs(&ck->a, kept_key);
            argv_pushs(&ck->a, member);
            if (ck_send(r, ck) != 0) {
                return -1;
            }
        }
    }
    return ck_send_kept(r, p, ck, kept_key);
}

static int ck_send_join(struct dw_redis *r, struct dw_part *p, struct ckpt *ck)
{
    struct dw_join *j = &p->join;
    char jkey[DW_REDIS_KEY_MAX];
    key_join(r, p->partition, jkey, sizeof(jkey));
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
    /* From here on Redis may hold them, whatever becomes of this checkpoint. */
    dw_join_mark_stored(j);
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

enum bucket_op { BUCKET_DROP, BUCKET_REWRITE, BUCKET_APPEND };

/* Writes a bucket of the joined set (a list of pieces; the piece is data) and lists it in, or
 * takes it out of, the set of buckets. Each command is copied into hiredis's buffer as it is
 * sent, so data may be reused at once. */
static int ck_bucket(struct dw_redis *r, struct dw_part *p, struct ckpt *ck,
                     const struct dw_join_bucket *b, enum bucket_op op, const struct dw_buf *data)
{
    const char *model = r->cfg->models[b->model_idx].name;
    char key[DW_REDIS_KEY_MAX], list[DW_REDIS_KEY_MAX];
    key_bucket(r, p->partition, model, b->start_ms, b->span_ms, key, sizeof(key));
    key_done(r, p->partition, list, sizeof(list));
    if (op != BUCKET_APPEND) {
        argv_pushs(&ck->a, "DEL");
        argv_pushs(&ck->a, key);
        if (ck_send(r, ck) != 0) {
            return -1;
        }
    }
    if (op != BUCKET_DROP) {
        argv_pushs(&ck->a, "RPUSH");
        argv_pushs(&ck->a, key);
        argv_push(&ck->a, (const char *)data->data, data->len);
        if (ck_send(r, ck) != 0) {
            return -1;
        }
    }
    argv_pushs(&ck->a, op == BUCKET_DROP ? "SREM" : "SADD");
    argv_pushs(&ck->a, list);
    argv_pushs(&ck->a, ck_fmt(ck, "%s\t%" PRId64 "\t%" PRId64, model, b->start_ms, b->span_ms));
    return ck_send(r, ck);
}

/* The joined set (dw_join.h): buckets dropped or rewritten whole, then what joined since the
 * last checkpoint pushed as one more piece of its bucket. A list of pieces rather than one
 * string that is APPENDed to: Redis doubles an appended string's allocation (42 bytes held per
 * 21-byte entry in the bench), while a list keeps its pieces in packed nodes of their size. */
static int ck_send_joined(struct dw_redis *r, struct dw_part *p, struct ckpt *ck)
{
    struct dw_join *j = &p->join;
    int64_t before =
        p->max_label_ts == DW_NO_TS ? INT64_MIN : p->max_label_ts - r->cfg->join_ttl_ms;
    dw_join_ckpt_plan(j, before);
    struct dw_buf blob;
    dw_buf_init(&blob);
    int rc = 0;
    for (size_t i = 0; i < j->n_buckets && rc == 0; i++) {
        const struct dw_join_bucket *b = &j->buckets[i];
        if (b->drop) {
            rc = ck_bucket(r, p, ck, b, BUCKET_DROP, NULL);
        } else if (b->rewrite) {
            dw_buf_reset(&blob);
            dw_join_bucket_encode(j, b, &blob);
            rc = ck_bucket(r, p, ck, b, BUCKET_REWRITE, &blob);
        }
    }
    /* The new entries are grouped by bucket: one piece per bucket (none for a bucket dropped
     * or rewritten whole above). */
    for (size_t bi = 0; bi < j->n_buckets && rc == 0; bi++) {
        const struct dw_join_bucket *b = &j->buckets[bi];
        if (b->new_n == 0 || b->drop || b->rewrite) {
            continue;
        }
        dw_buf_reset(&blob);
        for (size_t i = b->new_first; i < b->new_first + b->new_n; i++) {
            dw_join_done_encode(dw_join_new_entry(j, i), b, &blob);
        }
        rc = ck_bucket(r, p, ck, b, BUCKET_APPEND, &blob);
    }
    dw_buf_free(&blob);
    return rc;
}

static int ck_send_meta(struct dw_redis *r, struct dw_part *p, struct ckpt *ck, const char *owner,
                        const struct dw_redis_ckpt *it)
{
    int64_t now = dw_now_ms();
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, p->partition, key, sizeof(key));
    argv_pushs(&ck->a, "HSET");
    argv_pushs(&ck->a, key);
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
    PUT_I64("replay_upto_ms", p->replay_upto_ms);
    PUT_I64("eof_ms", it->eof_ms);
    PUT_I64("label_eof_ms", it->label_eof_ms);
    PUT_I64("updated_ms", now);
    if (it->release) {
        PUT_I64("released_ms", now);
    }
    PUT_I64("ckpt_seq", p->ckpt_seq + 1);
#define PUT_CTR(name) PUT_I64(#name, p->ctr.name);
    META_COUNTERS(PUT_CTR)
#undef PUT_CTR
    if (r->slots && p->safe.ok) {
        PUT_I64("safe_max_ts", p->safe.max_ts);
        PUT_I64("safe_max_label_ts", p->safe.max_label_ts);
        PUT_I64("safe_eof_ms", p->safe.eof_ms);
        PUT_I64("safe_label_eof_ms", p->safe.label_eof_ms);
    }
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

/* Results of the owner check (owner_of). */
enum { OWNER_NO_ANSWER = -1, OWNER_OTHER = 0, OWNER_US = 1, OWNER_NONE = 2, OWNER_ROLLED_BACK = 3 };

/*
 * Who owns partition p now, from the reply to HMGET <meta> owner ckpt_seq: OWNER_US,
 * OWNER_OTHER, OWNER_NONE (the meta hash is gone: the state was lost), OWNER_ROLLED_BACK (ours,
 * but its checkpoint count is not the one this process wrote last: Redis lost acknowledged
 * writes, as a restart from an AOF written with appendfsync everysec can), OWNER_NO_ANSWER (no
 * reply, or an error such as -LOADING while Redis loads its dataset: the caller drops the
 * connection, which also discards any WATCH of it).
 */
static int owner_of(const redisReply *o, const struct dw_part *p, const char *owner)
{
    if (!reply_ok(o) || o->type != REDIS_REPLY_ARRAY || o->elements != 2) {
        return OWNER_NO_ANSWER;
    }
    int who = OWNER_NONE;
    if (o->element[0]->type == REDIS_REPLY_STRING) {
        who = strcmp(o->element[0]->str, owner) == 0 ? OWNER_US : OWNER_OTHER;
    }
    /* The count as load_meta() reads it; one that is not a count differs from ours: reloaded,
     * and the loader then names it corrupt. */
    int64_t seq = 0;
    if (o->element[1]->type == REDIS_REPLY_STRING &&
        num_parse(o->element[1]->str, (size_t)o->element[1]->len, NUM_COUNT, &seq) != 0) {
        seq = -1;
    }
    if (who == OWNER_US && (seq < 0 || (uint64_t)seq != p->ckpt_seq)) {
        who = OWNER_ROLLED_BACK;
    }
    return who;
}

/* owner_of() for partition p, asked now (one round trip, no WATCH). */
static int read_owner(struct dw_redis *r, const struct dw_part *p, const char *owner)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, p->partition, key, sizeof(key));
    redisReply *o = cmd_here(r, "HMGET %s owner ckpt_seq", key);
    int who = owner_of(o, p, owner);
    freeReplyObject(o);
    if (who == OWNER_NO_ANSWER) {
        drop_conn(r);
    }
    return who;
}

/* Sends the owner check of p without waiting: WATCH its meta key, then read the owner. */
static int owner_check_send(struct dw_redis *r, const struct dw_part *p)
{
    if (!r->c) {
        return -1;
    }
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, p->partition, key, sizeof(key));
    if (redisAppendCommand(r->c, "WATCH %s", key) != REDIS_OK ||
        redisAppendCommand(r->c, "HMGET %s owner ckpt_seq", key) != REDIS_OK) {
        drop_conn(r);
        return -1;
    }
    return 0;
}

/* Reads the owner check's two replies (owner_check_send) and returns owner_of(); the WATCH is
 * kept only when `owner` owns p. */
static int owner_check_recv(struct dw_redis *r, const struct dw_part *p, const char *owner)
{
    void *w = NULL, *o = NULL;
    int who = OWNER_NO_ANSWER;
    if (r->c && redisGetReply(r->c, &w) == REDIS_OK && redisGetReply(r->c, &o) == REDIS_OK &&
        reply_ok(w)) {
        who = owner_of(o, p, owner);
    }
    note_error(r, w);
    note_error(r, o);
    freeReplyObject(w);
    freeReplyObject(o);
    if (who == OWNER_NO_ANSWER) {
        drop_conn(r);
    } else if (who != OWNER_US) {
        freeReplyObject(cmd_here(r, "UNWATCH"));
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

/* Checks one reply of a transaction (MULTI, the commands, EXEC last). @returns 0, 1 when EXEC
 * says the transaction was aborted (a watched key changed), -1 with errstr when a command was
 * refused or failed inside EXEC (Redis applied the others around it: not written as a whole). */
static int tx_reply(const redisReply *rep, int is_exec, const char *what, char *errstr,
                    size_t errstr_size)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        return dw_err(errstr, errstr_size, "redis %s command failed: %s", what, rep->str);
    }
    if (!is_exec) {
        return 0;
    }
    if (rep->type == REDIS_REPLY_NIL) {
        return 1;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        return dw_err(errstr, errstr_size, "redis EXEC of the %s: unexpected reply", what);
    }
    for (size_t i = 0; i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_ERROR) {
            return dw_err(errstr, errstr_size,
                          "redis %s command %zu failed inside EXEC (the others were applied): "
                          "%s",
                          what, i + 1, rep->element[i]->str);
        }
    }
    return 0;
}

/* Reads the n_cmds replies of a transaction; tx_reply()'s result for the first that is not 0,
 * or -1 when the connection was lost (dropped: r->c is NULL after it then, and only then). */
static int tx_replies(struct dw_redis *r, int n_cmds, const char *what, char *errstr,
                      size_t errstr_size)
{
    int result = 0;
    for (int i = 0; i < n_cmds; i++) {
        void *rep = NULL;
        if (!r->c || redisGetReply(r->c, &rep) != REDIS_OK) {
            drop_conn(r);
            return dw_err(errstr, errstr_size, "redis: connection lost during the %s", what);
        }
        note_error(r, rep);
        if (result == 0) {
            result = tx_reply(rep, i == n_cmds - 1, what, errstr, errstr_size);
        }
        freeReplyObject(rep);
    }
    return result;
}

/* Appends p's checkpoint (MULTI ... EXEC) to the connection's output; r->ck counts it. */
static int ck_append(struct dw_redis *r, struct dw_redis_ckpt *it, const char *owner)
{
    struct dw_part *p = it->part;
    /* What a checkpoint writes must read back (load_meta's ranges): offsets from -1, a
     * partition of the topics. */
    dw_assert(p->off_pred >= -1 && p->off_label >= -1 && p->partition >= 0);
    struct ckpt *ck = &r->ck;
    ck_reset(ck);
    dw_part_gc_plan(p);
    struct blob_ref *refs = NULL;
    size_t n_refs = 0;
    ck_windows(r, p, ck, &refs, &n_refs);
    /* Each command is copied into hiredis's buffer when appended (ck_send), so argv may point
     * into ck->blobs even though later encodings grow (and move) it. */
    char meta[DW_REDIS_KEY_MAX];
    key_meta(r, p->partition, meta, sizeof(meta));
    /* its WATCH (owner_check_send) went to r->c, and nothing since could open another */
    int rc = tx_begin(r, meta, NULL, NULL, 0);
    argv_pushs(&ck->a, "MULTI");
    if (rc == 0 && ck_send(r, ck) == 0 && ck_send_windows(r, p, ck, refs) == 0 &&
        ck_send_join(r, p, ck) == 0 && ck_send_joined(r, p, ck) == 0 &&
        ck_send_meta(r, p, ck, owner, it) == 0) {
        argv_pushs(&ck->a, "EXEC");
        rc = ck_send(r, ck);
    } else {
        rc = -1;
    }
    free(refs);
    return rc;
}

/* p's result once its transaction's replies are read (tx: tx_replies()). */
static int ck_result(struct dw_redis *r, struct dw_part *p, const char *owner, int tx, char *errstr,
                     size_t errstr_size)
{
    if (tx == 1) {
        /* An aborted transaction is no proof of lost ownership: anything that touched the
         * meta key aborts it, a Redis replaying its AOF after a restart too. Ask again. */
        int who = r->c ? read_owner(r, p, owner) : OWNER_NO_ANSWER;
        return who == OWNER_US || who == OWNER_NO_ANSWER
                   ? dw_err(errstr, errstr_size,
                            "partition %d: checkpoint aborted by a concurrent change of its "
                            "meta key; the owner is unchanged, retrying",
                            (int)p->partition)
                   : not_owned(p->partition, who, errstr, errstr_size);
    }
    if (tx == 0) {
        p->ckpt_seq++;
        dw_part_checkpoint_done(p);
    }
    return tx;
}

/*
 * One partition of dw_redis_checkpoint_many(): its owner check (who) was read; the next
 * partition's is sent behind its transaction, so that the two share a round trip, and read
 * into *who_next (left OWNER_NO_ANSWER when there is no next).
 */
static int ck_one(struct dw_redis *r, struct dw_redis_ckpt *it, const char *owner, int who,
                  const struct dw_part *next, int *who_next)
{
    char *err = it->err;
    size_t es = sizeof(it->err);
    if (who == OWNER_NO_ANSWER) {
        return dw_err(err, es,
                      r->moved ? "redis: checkpoint of partition %d: its hash slot moved to "
                                 "another node (MOVED/ASK); the slot map is read again"
                               : "redis: checkpoint of partition %d: no answer to the owner check",
                      (int)it->part->partition);
    }
    if (who == OWNER_US && ck_append(r, it, owner) != 0) {
        ck_reset(&r->ck);
        drop_conn(r);
        return dw_err(err, es, "redis: cannot send checkpoint");
    }
    int next_sent = next && owner_check_send(r, next) == 0;
    int tx = 0;
    if (who == OWNER_US) {
        tx = tx_replies(r, r->ck.n_cmds, "checkpoint", err, es);
        it->bytes = r->ck.bytes;
        ck_reset(&r->ck);
    }
    if (next_sent) {
        *who_next = owner_check_recv(r, next, owner);
    }
    if (who != OWNER_US) {
        return not_owned(it->part->partition, who, err, es);
    }
    return ck_result(r, it->part, owner, tx, err, es);
}

/* The checkpoints of partitions served by one node, chained (see ck_one). */
static void ck_chain(struct dw_redis *r, struct dw_redis_ckpt **its, size_t n, const char *owner)
{
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, its[0]->part->partition, key, sizeof(key));
    if (route(r, key, strlen(key), its[0]->err, sizeof(its[0]->err)) != 0) {
        return;
    }
    int who = owner_check_send(r, its[0]->part) == 0 ? owner_check_recv(r, its[0]->part, owner)
                                                     : OWNER_NO_ANSWER;
    for (size_t i = 0; i < n; i++) {
        int who_next = OWNER_NO_ANSWER;
        its[i]->result =
            ck_one(r, its[i], owner, who, i + 1 < n ? its[i + 1]->part : NULL, &who_next);
        if (its[i]->result == -1) {
            if (who_next == OWNER_US) {
                freeReplyObject(cmd_here(r, "UNWATCH"));
            }
            return;
        }
        who = who_next;
    }
}

/* The number of replicas the cluster's configuration gives the node in use (CLUSTER NODES:
 * the lines whose master is the "myself" line's id, connected or not); -1 on an error. */
static int node_replicas_read(struct dw_redis *r)
{
    redisReply *rep = cmd_here(r, "CLUSTER NODES");
    const char *text = rep && rep->type == REDIS_REPLY_STRING ? rep->str : "";
    const char *me = strstr(text, "myself");
    while (me && me > text && me[-1] != '\n') {
        me--; /* back to the start of the "myself" line: its first field is the id */
    }
    size_t id_len = me ? strcspn(me, " ") : 0;
    int n = id_len > 0 ? 0 : -1;
    for (const char *l = text; id_len > 0 && *l;) {
        /* fields: id addr flags master ...; the fourth is the master's id ("-" for a master) */
        const char *f = l;
        for (int i = 0; i < 3 && f; i++) {
            f = strchr(f, ' ');
            f = f ? f + 1 : NULL;
        }
        if (f && strncmp(f, me, id_len) == 0 && f[id_len] == ' ') {
            n++;
        }
        l += strcspn(l, "\n");
        l += *l == '\n';
    }
    freeReplyObject(rep);
    return n;
}

/* node_replicas_read, kept with the node: read when the slot map is (a new node table) and
 * again every REPLICAS_TTL_MS, not at every checkpoint round. A replica added is seen within
 * that time; one removed makes WAIT time out until then (windows wait: the safe side). */
static int node_replicas(struct dw_redis *r)
{
    struct node *nd = &r->nodes[r->cur];
    int64_t now = dw_mono_ms();
    if (nd->replicas < 0 || now - nd->replicas_mono_ms >= REPLICAS_TTL_MS) {
        nd->replicas = node_replicas_read(r); /* -1 on an error: read again next time */
        nd->replicas_mono_ms = now;
    }
    return nd->replicas;
}

/*
 * Redis Cluster, after a node's checkpoint chain: WAIT 1 until a replica acknowledged them;
 * then the clocks each written checkpoint carries are safe (p->safe, written by the next
 * checkpoint). No acknowledgement: they stay where they were (the close waits), counted and
 * logged. A master the cluster gives no replica at all has nothing to fail over to: its
 * clocks are safe at once (today's rule), with a warning.
 */
static void ck_replicated(struct dw_redis *r, struct dw_redis_ckpt **its, size_t n)
{
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        written += its[i]->result == 0;
    }
    int replicas = written && r->slots && r->c ? node_replicas(r) : -1;
    if (replicas < 0) {
        return; /* not a cluster, nothing written, or no answer: nothing becomes safe */
    }
    int acked = replicas == 0;
    if (replicas > 0) {
        /* half of redis.timeout at most: the reply must come before the socket gives up */
        int64_t t = DW_MIN((int64_t)WAIT_MAX_MS, r->cfg->redis_timeout_ms / 2);
        redisReply *rep = cmd_here(r, "WAIT 1 %lld", (long long)DW_MAX(t, 1));
        acked = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1;
        freeReplyObject(rep);
    }
    struct node *nd = &r->nodes[r->cur];
    if ((replicas == 0) != nd->no_replica) {
        nd->no_replica = replicas == 0;
        dw_log(DW_LOG_WARN,
               replicas == 0 ? "redis cluster: this master has no replica; the clocks of its "
                               "checkpoints close windows unreplicated (nothing to fail over to)"
                             : "redis cluster: this master has a replica again; windows close on "
                               "the clocks a replica acknowledged (WAIT)",
               "{s:s,s:i}", "host", nd->host, "port", nd->port);
    }
    if (!acked) {
        dw_metric_add(
            dw_metrics_series(UNREPLICATED_METRIC, UNREPLICATED_HELP, DW_METRIC_COUNTER, NULL),
            (double)written);
        dw_log_limited("redis_unreplicated", 1, DW_LOG_WARN,
                       "redis cluster: no replica acknowledged the checkpoints; windows past "
                       "their clocks stay open until one does",
                       "{s:s,s:i,s:i}", "host", nd->host, "port", nd->port, "checkpoints",
                       (int)written);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct dw_part *p = its[i]->part;
        if (its[i]->result == 0) {
            p->safe.ok = 1;
            p->safe.max_ts = p->max_ts;
            p->safe.max_label_ts = p->max_label_ts;
            p->safe.eof_ms = its[i]->eof_ms;
            p->safe.label_eof_ms = its[i]->label_eof_ms;
        }
    }
}

/* The node serving partition's keys (single server: 0; -1: no node known). */
static int part_node(struct dw_redis *r, int32_t partition)
{
    if (!r->slots) {
        return 0;
    }
    char key[DW_REDIS_KEY_MAX];
    key_meta(r, partition, key, sizeof(key));
    return r->slots[dw_slots_key(key, strlen(key))];
}

void dw_redis_checkpoint_many(struct dw_redis *r, struct dw_redis_ckpt *items, size_t n,
                              const char *owner)
{
    for (size_t i = 0; i < n; i++) {
        items[i].result = -1;
        items[i].bytes = 0;
        dw_err(items[i].err, sizeof(items[i].err),
               "partition %d: not attempted (the checkpoint of an earlier partition failed)",
               (int)items[i].part->partition);
    }
    if (n == 0 || ensure_conn(r, items[0].err, sizeof(items[0].err)) != 0) {
        return;
    }
    /* One chain per node, in the callers' order within it (a single server: one chain). */
    struct dw_redis_ckpt **its = dw_malloc(n * sizeof(*its));
    int *node = dw_malloc(n * sizeof(*node));
    for (size_t i = 0; i < n; i++) {
        node[i] = part_node(r, items[i].part->partition);
    }
    for (size_t i = 0; i < n; i++) {
        if (node[i] == INT_MIN) {
            continue;
        }
        size_t k = 0;
        int at = node[i];
        for (size_t j = i; j < n; j++) {
            if (node[j] == at) {
                its[k++] = &items[j];
                node[j] = INT_MIN;
            }
        }
        ck_chain(r, its, k, owner);
        ck_replicated(r, its, k);
    }
    free(node);
    free(its);
}

int dw_redis_checkpoint(struct dw_redis *r, struct dw_part *p, const char *owner, int64_t eof_ms,
                        int64_t label_eof_ms, size_t *bytes_out, char *errstr, size_t errstr_size)
{
    struct dw_redis_ckpt it = {.part = p, .eof_ms = eof_ms, .label_eof_ms = label_eof_ms};
    dw_redis_checkpoint_many(r, &it, 1, owner);
    if (bytes_out) {
        *bytes_out = it.bytes;
    }
    if (it.result != 0) {
        dw_err(errstr, errstr_size, "%s", it.err);
    }
    return it.result;
}

/* ---- global keys ---- */

/* Sends one command of a transaction; counts it. 0, or -1 when the connection failed. */
static int tx_append(struct dw_redis *r, int *n_cmds, int argc, const char **argv,
                     const size_t *lens)
{
    (*n_cmds)++;
    return tx_push(r, argc, argv, lens);
}

int dw_redis_eval_commit(struct dw_redis *r, const char *owner, const char *model,
                         const struct dw_redis_kv *sets, size_t n_sets, const char *hash,
                         const struct dw_redis_kv *fields, size_t n_fields, char *errstr,
                         size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    char name[DW_REDIS_NAME_MAX], lock[DW_REDIS_KEY_MAX];
    name_eval_lock(model, name, sizeof(name));
    global_key(r, name, lock, sizeof(lock));
    struct watch watched;
    if (watch_key(r, lock, &watched, errstr, errstr_size) != 0) {
        return -1;
    }
    redisReply *o = cmdf(r, "GET %s", lock);
    if (!reply_ok(o)) {
        freeReplyObject(o);
        drop_conn(r);
        return dw_err(errstr, errstr_size, "redis: connection lost before the evaluation commit");
    }
    int held = o->type == REDIS_REPLY_STRING && strcmp(o->str, owner) == 0;
    freeReplyObject(o);
    if (!held) {
        freeReplyObject(cmd_here(r, "UNWATCH"));
        dw_err(errstr, errstr_size, "the evaluator lease of model %s is held by another pod now",
               model);
        return 1;
    }
    if (tx_begin(r, lock, &watched, errstr, errstr_size) != 0) {
        drop_conn(r);
        return -1;
    }
    int n_cmds = 0, rc = 0;
    const char *multi[] = {"MULTI"};
    rc |= tx_append(r, &n_cmds, 1, multi, NULL);
    char key[DW_REDIS_KEY_MAX], hkey[DW_REDIS_KEY_MAX];
    for (size_t i = 0; i < n_sets && rc == 0; i++) {
        global_key(r, sets[i].name, key, sizeof(key));
        char px[32];
        snprintf(px, sizeof(px), "%" PRId64, sets[i].px_ms);
        const char *argv[] = {sets[i].value ? "SET" : "DEL", key, sets[i].value, "PX", px};
        size_t lens[] = {strlen(argv[0]), strlen(key), sets[i].value ? strlen(sets[i].value) : 0, 2,
                         strlen(px)};
        int argc = !sets[i].value ? 2 : sets[i].px_ms > 0 ? 5 : 3;
        rc |= tx_append(r, &n_cmds, argc, argv, lens);
    }
    global_key(r, hash ? hash : "", hkey, sizeof(hkey));
    for (size_t i = 0; i < n_fields && rc == 0; i++) {
        const char *argv[] = {"HSET", hkey, fields[i].name, fields[i].value};
        size_t lens[] = {4, strlen(hkey), strlen(fields[i].name), strlen(fields[i].value)};
        rc |= tx_append(r, &n_cmds, 4, argv, lens);
    }
    const char *exec[] = {"EXEC"};
    rc |= tx_append(r, &n_cmds, 1, exec, NULL);
    int result = rc == 0 ? tx_replies(r, n_cmds, "evaluation commit", errstr, errstr_size)
                         : dw_err(errstr, errstr_size, "redis: cannot send the commit");
    if (result == 1) {
        dw_err(errstr, errstr_size, "the evaluator lease of model %s changed during the commit",
               model);
    }
    if (rc == 0 && result < 0 && !r->c) {
        /* The transaction was handed to the socket and the connection went before EXEC's reply
         * came: Redis may have run it (the reply was lost) or not. Which one, only what it wrote
         * tells; the caller looks (dw_actions.c). Reporting it as not committed would leave the
         * step's alerts undelivered while the cursor moved past the window. */
        return -2;
    }
    if (result < 0) {
        drop_conn(r);
    }
    return result;
}

/* Writes what hiredis has buffered to the socket (its output buffer is freed once empty).
 * 0, or -1 when the connection failed. */
static int flush_out(struct dw_redis *r)
{
    int done = 0;
    while (!done) {
        if (redisBufferWrite(r->c, &done) != REDIS_OK) {
            return -1;
        }
    }
    return 0;
}

/* The next piece of kv's value into *piece (at most about SET_CHUNK bytes, from its data or
 * made by its fill into chunk), *off counting what was given. @returns 1 while more remain. */
static int next_piece(const struct dw_redis_bkv *kv, struct dw_buf *chunk, size_t *off,
                      const char **piece, size_t *n)
{
    if (kv->fill) {
        dw_buf_reset(chunk);
        int more = kv->fill(kv->arg, chunk, SET_CHUNK);
        *piece = chunk->data ? (const char *)chunk->data : ""; /* nothing appended yet */
        *n = chunk->len;
        return more;
    }
    *piece = (const char *)kv->data + *off;
    *n = DW_MIN(kv->len - *off, (size_t)SET_CHUNK);
    *off += *n;
    return *off < kv->len;
}

/*
 * Appends SET key value (or DEL key when it has neither data nor fill) of global key kv->name
 * to a transaction. A value larger than SET_CHUNK (a reference of millions of values is tens
 * of MB) goes as SET of its first chunk and APPENDs of the rest, each written out before the
 * next is queued: hiredis's output buffer holds a copy of each command until it is written, so
 * one SET of the whole value would hold another copy of it until the transaction's replies were
 * read (bench/RESULTS.md, "The reference's write in chunks"). A value made by fill is made chunk by
 * chunk as it goes. Inside MULTI the key is whole when EXEC applies it, as before.
 */
static int tx_append_set(struct dw_redis *r, int *n_cmds, const struct dw_redis_bkv *kv)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, kv->name, key, sizeof(key));
    if (!kv->data && !kv->fill) {
        const char *argv[] = {"DEL", key};
        size_t lens[] = {3, strlen(key)};
        return tx_append(r, n_cmds, 2, argv, lens);
    }
    struct dw_buf chunk;
    dw_buf_init(&chunk);
    size_t off = 0;
    int more = 1, rc = 0;
    for (int first = 1; rc == 0 && more; first = 0) {
        const char *piece;
        size_t n;
        more = next_piece(kv, &chunk, &off, &piece, &n);
        const char *argv[] = {first ? "SET" : "APPEND", key, piece};
        size_t lens[] = {strlen(argv[0]), strlen(key), n};
        rc = tx_append(r, n_cmds, 3, argv, lens) != 0 || ((more || !first) && flush_out(r) != 0)
                 ? -1
                 : 0;
    }
    dw_buf_free(&chunk);
    return rc;
}

int dw_redis_write_fenced(struct dw_redis *r, const char *fence, int64_t value,
                          const struct dw_redis_bkv *sets, size_t n_sets, char *errstr,
                          size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    char key[DW_REDIS_KEY_MAX];
    global_key(r, fence, key, sizeof(key));
    struct watch watched;
    if (watch_key(r, key, &watched, errstr, errstr_size) != 0) {
        return -1;
    }
    int64_t now = 0;
    int got = dw_redis_get_i64(r, fence, &now);
    if (got < 0) {
        drop_conn(r);
        return dw_err(errstr, errstr_size, "redis: cannot read %s", fence);
    }
    if (now != value) {
        freeReplyObject(cmd_here(r, "UNWATCH"));
        dw_err(errstr, errstr_size, "%s moved (%" PRId64 ", not %" PRId64 ")", fence, now, value);
        return 1;
    }
    if (tx_begin(r, key, &watched, errstr, errstr_size) != 0) {
        drop_conn(r);
        return -1;
    }
    int n_cmds = 0, rc = 0;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    rc |= tx_append(r, &n_cmds, 1, multi, NULL);
    for (size_t i = 0; i < n_sets && rc == 0; i++) {
        rc |= tx_append_set(r, &n_cmds, &sets[i]);
    }
    rc |= tx_append(r, &n_cmds, 1, exec, NULL);
    int result = rc == 0 ? tx_replies(r, n_cmds, "fenced write", errstr, errstr_size)
                         : dw_err(errstr, errstr_size, "redis: cannot send the fenced write");
    if (result == 1) {
        dw_err(errstr, errstr_size, "%s moved during the write", fence);
    }
    if (result < 0) {
        drop_conn(r);
    }
    return result;
}

/* The JSON value of global key `name` (NULL: absent, unreadable or not JSON). */
static json_t *get_json_list(struct dw_redis *r, const char *name)
{
    json_t *v = NULL;
    dw_redis_read_json(r, name, "corrupt_list", "stored list not JSON; taken as empty", &v);
    return v;
}

/* Appends to `names` the keys a list of window starts names (refagg, trailagg by start).
 * Read with a plain GET: before the transaction is queued, never inside it. */
static void listed_windows(struct dw_redis *r, const char *list,
                           void (*name_of)(const char *, int64_t, char *, size_t),
                           const char *model, json_t *names)
{
    json_t *arr = get_json_list(r, list);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char name[DW_REDIS_NAME_MAX];
        name_of(model, (int64_t)json_integer_value(v), name, sizeof(name));
        json_array_append_new(names, json_string(name));
    }
    json_decref(arr);
}

/* Appends to `names` every version's own reference keys (reference.per_version) listed in
 * vrefs:<model>, read as listed_windows() reads its list. */
static void listed_versions(struct dw_redis *r, const char *model, json_t *names)
{
    static const char *const kinds[] = {"vref", "vrefagg", "vrefwins"};
    char list[DW_REDIS_NAME_MAX], name[DW_REDIS_NAME_MAX];
    dw_redis_name_vrefs(model, list, sizeof(list));
    json_t *versions = get_json_list(r, list);
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        for (size_t k = 0; json_is_string(v) && k < DW_ARRAY_SIZE(kinds); k++) {
            dw_redis_name_vref(kinds[k], model, json_string_value(v), name, sizeof(name));
            json_array_append_new(names, json_string(name));
        }
    }
    json_decref(versions);
}

int dw_redis_reference_replace(struct dw_redis *r, const char *model, const void *data, size_t len,
                               int64_t *gen, char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return -1;
    }
    char name[DW_REDIS_NAME_MAX], key[DW_REDIS_KEY_MAX];
    /* Every key the collection state names, read before MULTI is queued (a GET queued inside
     * the transaction answers QUEUED, not the list): windows the evaluator adds in between are
     * fenced by refgen (dw_redis_write_fenced), so the lists cannot grow behind our back. */
    json_t *names = json_array();
    dw_redis_name_refwins(model, name, sizeof(name));
    listed_windows(r, name, dw_redis_name_refagg, model, names);
    json_array_append_new(names, json_string(name));
    dw_redis_name_trailwins(model, name, sizeof(name));
    listed_windows(r, name, dw_redis_name_trailagg, model, names);
    json_array_append_new(names, json_string(name));
    listed_versions(r, model, names);
    dw_redis_name_vrefs(model, name, sizeof(name));
    json_array_append_new(names, json_string(name));
    dw_redis_name_ref(model, name, sizeof(name));
    global_key(r, name, key, sizeof(key));
    if (route(r, key, strlen(key), errstr, errstr_size) != 0 ||
        tx_begin(r, key, NULL, errstr, errstr_size) != 0) {
        json_decref(names);
        return -1;
    }
    int n_cmds = 0, rc = 0;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    rc |= tx_append(r, &n_cmds, 1, multi, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        rc |= tx_append_set(
            r, &n_cmds,
            &(struct dw_redis_bkv){.name = json_string_value(v), .data = NULL, .len = 0});
    }
    json_decref(names);
    dw_redis_name_baseline(model, name, sizeof(name));
    rc |= tx_append_set(r, &n_cmds, &(struct dw_redis_bkv){.name = name, .data = NULL, .len = 0});
    dw_redis_name_ref(model, name, sizeof(name));
    rc |= tx_append_set(r, &n_cmds, &(struct dw_redis_bkv){.name = name, .data = data, .len = len});
    name_eval_lock(model, name, sizeof(name));
    rc |= tx_append_set(r, &n_cmds, &(struct dw_redis_bkv){.name = name, .data = NULL, .len = 0});
    dw_redis_name_refgen(model, name, sizeof(name));
    global_key(r, name, key, sizeof(key));
    const char *incr[] = {"INCR", key};
    rc |= tx_append(r, &n_cmds, 2, incr, NULL);
    rc |= tx_append(r, &n_cmds, 1, exec, NULL);
    int result = rc == 0 ? tx_replies(r, n_cmds, "reference replacement", errstr, errstr_size)
                         : dw_err(errstr, errstr_size, "redis: cannot send the replacement");
    if (result != 0) {
        drop_conn(r);
        return -1;
    }
    return dw_redis_get_i64(r, name, gen) == 1
               ? 0
               : dw_err(errstr, errstr_size, "redis: cannot read %s back", name);
}

int dw_redis_set_partitions(struct dw_redis *r, int n)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_partitions(name, sizeof(name));
    return dw_redis_set_i64(r, name, n);
}

int dw_redis_get_partitions(struct dw_redis *r, int *n)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_partitions(name, sizeof(name));
    int64_t v = 0;
    int rc = dw_redis_get_i64(r, name, &v);
    if (rc == 1 && (v < 1 || v > DW_MAX_PARTITIONS)) {
        rc = -2;
    }
    *n = rc == 1 ? (int)v : 0;
    return rc;
}

/* The meta's safe_* fields (e: their four HMGET replies) into m; absent: m->safe_present 0.
 * @returns 0, or -1 with why naming the bad field. */
static int safe_fields(struct dw_part_meta *m, redisReply **e, char *why, size_t why_size)
{
    m->safe_present = e[0]->type == REDIS_REPLY_STRING;
    return num_field(e[0], "safe_max_ts", NUM_TS, DW_NO_TS, &m->safe_max_ts, why, why_size) ||
                   num_field(e[1], "safe_max_label_ts", NUM_TS, DW_NO_TS, &m->safe_max_label_ts,
                             why, why_size) ||
                   num_field(e[2], "safe_eof_ms", NUM_CLOCK, 0, &m->safe_eof_ms, why, why_size) ||
                   num_field(e[3], "safe_label_eof_ms", NUM_CLOCK, 0, &m->safe_label_eof_ms, why,
                             why_size)
               ? -1
               : 0;
}

int dw_redis_read_metas(struct dw_redis *r, int n, struct dw_part_meta *metas)
{
    if (ensure_conn(r, NULL, 0) != 0) {
        return -1;
    }
    struct pipe pp = {0};
    int sent = 1;
    for (int p = 0; p < n && sent; p++) {
        char key[DW_REDIS_KEY_MAX];
        key_meta(r, p, key, sizeof(key));
        sent = pipe_send(r, &pp, key,
                         "HMGET %s max_ts min_ts eof_ms off_pred max_label_ts label_eof_ms "
                         "quarantined safe_max_ts safe_max_label_ts safe_eof_ms "
                         "safe_label_eof_ms",
                         key) == 0;
    }
    redisReply **reps = pipe_run(r, &pp, sent);
    if (!reps) {
        return -1;
    }
    int rc = 0;
    for (int p = 0; p < n; p++) {
        redisReply *rep = reps[p];
        struct dw_part_meta *m = &metas[p];
        memset(m, 0, sizeof(*m));
        m->max_ts = m->min_ts = m->max_label_ts = DW_NO_TS;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 11) {
            redisReply **e = rep->element;
            char why[200];
            int64_t off;
            m->present = e[3]->type == REDIS_REPLY_STRING;
            if (num_field(e[0], "max_ts", NUM_TS, DW_NO_TS, &m->max_ts, why, sizeof(why)) ||
                num_field(e[1], "min_ts", NUM_TS, DW_NO_TS, &m->min_ts, why, sizeof(why)) ||
                num_field(e[2], "eof_ms", NUM_CLOCK, 0, &m->eof_ms, why, sizeof(why)) ||
                num_field(e[3], "off_pred", NUM_OFFSET, -1, &off, why, sizeof(why)) ||
                num_field(e[4], "max_label_ts", NUM_TS, DW_NO_TS, &m->max_label_ts, why,
                          sizeof(why)) ||
                num_field(e[5], "label_eof_ms", NUM_CLOCK, 0, &m->label_eof_ms, why, sizeof(why)) ||
                safe_fields(m, e + 7, why, sizeof(why)) != 0) {
                char key[DW_REDIS_KEY_MAX];
                key_meta(r, p, key, sizeof(key));
                m->corrupt = 1;
                snprintf(m->problem, sizeof(m->problem), "%.120s: %s", key, why);
            } else if (e[6]->type == REDIS_REPLY_STRING) {
                m->quarantined = 1;
                snprintf(m->problem, sizeof(m->problem), "quarantined: %s", e[6]->str);
            }
        } else if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "WRONGTYPE", 9) == 0) {
            char key[DW_REDIS_KEY_MAX];
            key_meta(r, p, key, sizeof(key));
            m->present = 1;
            m->corrupt = 1;
            snprintf(m->problem, sizeof(m->problem), "%.120s: not a hash", key);
        } else {
            rc = -1;
        }
        freeReplyObject(rep);
    }
    free(reps);
    return rc;
}

/* A decoded GET reply of a window record of `merged`'s window (NULL: absent); -1 on a fault. */
static int decode_reply(const struct dw_agg *merged, const redisReply *rep, struct dw_agg **out,
                        char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (rep->type == REDIS_REPLY_ERROR) {
        return dw_err(errstr, errstr_size, "redis GET failed: %s", rep->str);
    }
    if (rep->type != REDIS_REPLY_STRING) {
        return 0;
    }
    *out = dw_agg_decode(merged->model, rep->str, (size_t)rep->len, errstr, errstr_size);
    return *out ? 0 : -1;
}

/*
 * Merges partition p's record of the window (rep, absent when the partition had none) into
 * merged; a sealed record takes its sketches back from its sealed copy (seal) first, so the
 * merge sees what one record holding everything would hold. A sealed record without its copy
 * cannot be merged exactly: a fault naming the key, never a silent merge of counts alone.
 */
static int merge_part_window(struct dw_redis *r, int p, struct dw_agg *merged,
                             const redisReply *rep, const redisReply *seal, char *errstr,
                             size_t errstr_size)
{
    struct dw_agg *agg = NULL, *whole = NULL;
    int rc = decode_reply(merged, rep, &agg, errstr, errstr_size);
    if (rc == 0 && agg && agg->sealed && merged->model->n_features > 0) {
        char skey[DW_REDIS_KEY_MAX];
        key_sealed(r, p, merged->model->name, merged->start_ms, skey, sizeof(skey));
        rc = decode_reply(merged, seal, &whole, errstr, errstr_size);
        if (rc == 0 && !whole) {
            rc = dw_err(errstr, errstr_size, "%s: the sealed copy of a sealed record is missing",
                        skey);
        } else if (rc == 0) {
            char why[256];
            rc = dw_agg_unseal(agg, whole, why, sizeof(why));
            if (rc != 0) {
                dw_err(errstr, errstr_size, "%s: %s", skey, why);
            }
        }
    }
    if (rc == 0 && agg) {
        dw_agg_merge(merged, agg);
    }
    dw_agg_free(agg);
    dw_agg_free(whole);
    return rc;
}

struct dw_agg *dw_redis_load_window(struct dw_redis *r, const struct dw_model_cfg *model,
                                    int64_t start_ms, int n_parts, const struct dw_agg *like,
                                    char *errstr, size_t errstr_size)
{
    if (ensure_conn(r, errstr, errstr_size) != 0) {
        return NULL;
    }
    /* A feature-less view (counts, performance, the labels) needs no sealed copy: a sealed
     * record has all of that, and merges as one whose sketches were dropped. */
    int n_reps = model->n_features > 0 ? 2 : 1;
    struct pipe pp = {0};
    int sent = 1;
    for (int p = 0; p < n_parts && sent; p++) {
        char key[DW_REDIS_KEY_MAX], skey[DW_REDIS_KEY_MAX];
        key_window(r, p, model->name, start_ms, key, sizeof(key));
        key_sealed(r, p, model->name, start_ms, skey, sizeof(skey));
        sent = pipe_send(r, &pp, key, "GET %s", key) == 0 &&
               (n_reps == 1 || pipe_send(r, &pp, skey, "GET %s", skey) == 0);
    }
    redisReply **reps = pipe_run(r, &pp, sent);
    if (!reps) {
        dw_err(errstr, errstr_size, "redis: connection lost reading window");
        return NULL;
    }
    struct dw_agg *merged = dw_agg_new_exact(model, start_ms, DW_AGG_MERGE_EXACT);
    if (like) {
        dw_agg_size_like(merged, like);
    }
    int failed = 0;
    for (int p = 0; p < n_parts; p++) {
        redisReply *rep[2] = {reps[(size_t)p * (size_t)n_reps],
                              n_reps == 2 ? reps[(size_t)p * 2 + 1] : NULL};
        if (!failed) {
            failed = merge_part_window(r, p, merged, rep[0], rep[1], errstr, errstr_size) != 0;
        }
        freeReplyObject(rep[0]);
        freeReplyObject(rep[1]);
    }
    free(reps);
    if (failed) {
        dw_agg_free(merged);
        return NULL;
    }
    merged->dirty = 0;
    return merged;
}

struct starts_acc {
    size_t prefix_len, n, cap;
    int64_t *v;
};

static int add_start(void *opaque, const char *key, size_t len)
{
    struct starts_acc *a = opaque;
    int64_t start;
    /* A suffix that is not a window start belongs to a model whose name extends this one's
     * ("a" and "a:b"): not this model's window. */
    if (num_parse(key + a->prefix_len, len - a->prefix_len, NUM_TS, &start) != 0 ||
        start == DW_NO_TS) {
        return 0;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = dw_realloc(a->v, a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = start;
    return 0;
}

/* Adds the window starts of the keys under `prefix` to *a. @returns 0, -1 on a Redis error. */
static int scan_starts(struct dw_redis *r, const char *prefix, struct starts_acc *a)
{
    a->prefix_len = strlen(prefix);
    if (scan_prefix(r, prefix, add_start, a) != 0) {
        free(a->v);
        *a = (struct starts_acc){0};
        return -1;
    }
    return 0;
}

static int starts_out(struct starts_acc *a, int rc, int64_t **starts, size_t *n)
{
    *starts = rc == 0 ? (a->v ? a->v : dw_malloc(sizeof(**starts))) : NULL;
    *n = rc == 0 ? a->n : 0;
    return rc;
}

int dw_redis_window_starts(struct dw_redis *r, const struct dw_model_cfg *model, int n_parts,
                           int64_t **starts, size_t *n)
{
    struct starts_acc a = {0};
    int rc = 0;
    for (int p = 0; p < n_parts && rc == 0; p++) {
        char prefix[DW_REDIS_KEY_MAX];
        key_windows_prefix(r, p, model->name, prefix, sizeof(prefix));
        rc = scan_starts(r, prefix, &a);
    }
    return starts_out(&a, rc, starts, n);
}

/* The starts of the global keys "<name_prefix><start>" (a SCAN). */
static int global_starts(struct dw_redis *r, const char *name_prefix, int64_t **starts, size_t *n)
{
    struct starts_acc a = {0};
    char prefix[DW_REDIS_KEY_MAX];
    global_key(r, name_prefix, prefix, sizeof(prefix));
    return starts_out(&a, scan_starts(r, prefix, &a), starts, n);
}

int dw_redis_summary_starts(struct dw_redis *r, const struct dw_model_cfg *model, int64_t **starts,
                            size_t *n)
{
    char name[DW_REDIS_NAME_MAX];
    summary_prefix(model->name, name, sizeof(name));
    return global_starts(r, name, starts, n);
}

int dw_redis_report_starts(struct dw_redis *r, const char *model, int64_t **starts, size_t *n)
{
    char name[DW_REDIS_NAME_MAX];
    report_prefix(model, name, sizeof(name));
    return global_starts(r, name, starts, n);
}

int dw_redis_lease(struct dw_redis *r, const char *name, const char *owner, int64_t ttl_ms)
{
    char key[DW_REDIS_KEY_MAX], lname[DW_REDIS_NAME_MAX];
    name_lock(name, lname, sizeof(lname));
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
    char key[DW_REDIS_KEY_MAX], lname[DW_REDIS_NAME_MAX];
    name_lock(name, lname, sizeof(lname));
    global_key(r, lname, key, sizeof(key));
    /* WATCH: a lease that expired and went to another pod between GET and DEL stays theirs.
     * Routed once to the key's node: WATCH, GET and the transaction go to that connection. */
    if (route(r, key, strlen(key), NULL, 0) != 0) {
        return;
    }
    freeReplyObject(cmd_here(r, "WATCH %s", key));
    redisReply *rep = cmd_here(r, "GET %s", key);
    int held = reply_ok(rep) && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, owner) == 0;
    freeReplyObject(rep);
    if (!held) {
        freeReplyObject(cmd_here(r, "UNWATCH"));
        return;
    }
    freeReplyObject(cmd_here(r, "MULTI"));
    freeReplyObject(cmd_here(r, "DEL %s", key));
    freeReplyObject(cmd_here(r, "EXEC"));
}

int dw_redis_pods_beat(struct dw_redis *r, const char *owner, int64_t now_ms, int64_t live_ms,
                       char ***pods, size_t *n)
{
    *pods = NULL;
    *n = 0;
    char name[DW_REDIS_NAME_MAX], key[DW_REDIS_KEY_MAX];
    dw_redis_name_pods(name, sizeof(name));
    global_key(r, name, key, sizeof(key));
    long long now = (long long)now_ms, stale = (long long)(now_ms - live_ms);
    struct pipe pp = {0};
    int sent = pipe_send(r, &pp, key, "ZADD %s %lld %s", key, now, owner) == 0 &&
               pipe_send(r, &pp, key, "ZREMRANGEBYSCORE %s -inf (%lld", key, stale) == 0 &&
               pipe_send(r, &pp, key, "ZRANGE %s 0 -1", key) == 0;
    redisReply **rep = pipe_run(r, &pp, sent); /* routed, redirections followed */
    if (!rep) {
        return -1;
    }
    int ok = reply_ok(rep[0]) && reply_ok(rep[1]) && reply_ok(rep[2]);
    if (ok && rep[2]->type == REDIS_REPLY_ARRAY) {
        *pods = dw_calloc(rep[2]->elements ? rep[2]->elements : 1, sizeof(**pods));
        for (size_t i = 0; i < rep[2]->elements; i++) {
            const redisReply *e = rep[2]->element[i];
            if (e->type == REDIS_REPLY_STRING) {
                (*pods)[(*n)++] = dw_strndup(e->str, e->len);
            }
        }
    } else {
        ok = 0;
    }
    for (int i = 0; i < 3; i++) {
        freeReplyObject(rep[i]);
    }
    free(rep);
    return ok ? 0 : -1;
}

void dw_redis_pods_leave(struct dw_redis *r, const char *owner)
{
    char name[DW_REDIS_NAME_MAX], key[DW_REDIS_KEY_MAX];
    dw_redis_name_pods(name, sizeof(name));
    global_key(r, name, key, sizeof(key));
    freeReplyObject(cmdf(r, "ZREM %s %s", key, owner));
}

int dw_redis_get_i64(struct dw_redis *r, const char *name, int64_t *out)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "GET %s", key);
    if (!reply_ok(rep)) {
        int wrongtype = rep && strncmp(rep->str, "WRONGTYPE", 9) == 0;
        freeReplyObject(rep);
        return wrongtype ? -2 : -1;
    }
    int found = rep->type == REDIS_REPLY_STRING;
    if (found && dw_parse_i64(rep->str, rep->len, INT64_MIN, INT64_MAX, out) != 0) {
        found = -2;
    }
    freeReplyObject(rep);
    return found;
}

int dw_redis_set_i64(struct dw_redis *r, const char *name, int64_t v)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "SET %s %lld", key, (long long)v);
    int ok = reply_ok(rep);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

int dw_redis_set_bytes(struct dw_redis *r, const char *name, const void *value, size_t len,
                       int64_t ttl_ms, char *errstr, size_t errstr_size)
{
    char key[DW_REDIS_KEY_MAX], ttl[24];
    global_key(r, name, key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    const char *argv[5] = {"SET", key, value, "PX", ttl};
    size_t lens[5] = {3, strlen(key), len, 2, strlen(ttl)};
    redisReply *rep = cmd_argv(r, ttl_ms > 0 ? 5 : 3, argv, lens, errstr, errstr_size);
    int ok = rep != NULL; /* errors are in errstr already */
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

int dw_redis_set_str(struct dw_redis *r, const char *name, const char *value, int64_t ttl_ms)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = ttl_ms > 0 ? cmdf(r, "SET %s %s PX %lld", key, value, (long long)ttl_ms)
                                 : cmdf(r, "SET %s %s", key, value);
    int ok = reply_ok(rep);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

int dw_redis_read_str(struct dw_redis *r, const char *name, char **out, size_t *len)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "GET %s", key);
    int rc = -1;
    *out = NULL;
    if (reply_ok(rep) && rep->type == REDIS_REPLY_STRING) {
        *out = dw_strndup(rep->str, (size_t)rep->len);
        *len = (size_t)rep->len;
        rc = 1;
    } else if (reply_ok(rep) && rep->type == REDIS_REPLY_NIL) {
        rc = 0;
    }
    freeReplyObject(rep);
    return rc;
}

int dw_redis_read_json(struct dw_redis *r, const char *name, const char *limit_key, const char *msg,
                       json_t **out)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int got = dw_redis_read_str(r, name, &text, &len);
    if (got == 1 && !(*out = json_loadb(text, len, 0, NULL))) {
        dw_log_limited(limit_key, 1, DW_LOG_ERROR, msg, "{s:s}", "key", name);
    }
    free(text);
    return got < 0 ? -1 : 0;
}

int dw_redis_read_state(struct dw_redis *r, const char *name, const char *model, char **out,
                        size_t *len)
{
    int got = dw_redis_read_str(r, name, out, len);
    if (got < 0) {
        char key[DW_REDIS_KEY_MAX];
        global_key(r, name, key, sizeof(key));
        dw_log_limited("evaluation_state_unreadable", 1, DW_LOG_ERROR,
                       "evaluation state unreadable; the window's evaluation waits (started "
                       "afresh, it would be written over the stored one)",
                       "{s:s,s:s}", "model", model, "key", key);
    }
    return got;
}

char *dw_redis_get_bytes(struct dw_redis *r, const char *name, size_t *len)
{
    char *s = NULL;
    (void)dw_redis_read_str(r, name, &s, len);
    return s;
}

char *dw_redis_get_str(struct dw_redis *r, const char *name)
{
    size_t len = 0;
    return dw_redis_get_bytes(r, name, &len);
}

int dw_redis_set_agg(struct dw_redis *r, const char *name, const struct dw_agg *agg, char *errstr,
                     size_t errstr_size)
{
    struct dw_buf b;
    dw_buf_init(&b);
    dw_agg_encode(agg, &b);
    int rc = dw_redis_set_bytes(r, name, b.data, b.len, 0, errstr, errstr_size);
    dw_buf_free(&b);
    return rc;
}

int dw_redis_get_agg(struct dw_redis *r, const char *name, const struct dw_model_cfg *model,
                     int64_t start, struct dw_agg **out, char *errstr, size_t errstr_size)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, name, key, sizeof(key));
    return read_blob(r, key, model, start, out, errstr, errstr_size);
}

int dw_redis_del(struct dw_redis *r, const char *name)
{
    char key[DW_REDIS_KEY_MAX];
    global_key(r, name, key, sizeof(key));
    redisReply *rep = cmdf(r, "DEL %s", key);
    int ok = reply_ok(rep);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* ---- hashes named by their full key (the delivery thread's pending messages) ---- */

int dw_redis_hash_getall(struct dw_redis *r, const char *key, struct dw_redis_hash *out,
                         char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    const char *argv[2] = {"HGETALL", key};
    size_t lens[2] = {7, strlen(key)};
    redisReply *rep = cmd_argv(r, 2, argv, lens, errstr, errstr_size);
    if (!rep) {
        return -1;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
        freeReplyObject(rep);
        return dw_err(errstr, errstr_size, "unexpected reply");
    }
    out->fields = dw_calloc(rep->elements / 2 + 1, sizeof(*out->fields));
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *f = rep->element[i];
        const redisReply *v = rep->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        out->fields[out->n++] = (struct dw_redis_field){.name = f->str,
                                                        .name_len = (size_t)f->len,
                                                        .value = v->str,
                                                        .value_len = (size_t)v->len};
    }
    out->reply = rep;
    return 0;
}

void dw_redis_hash_free(struct dw_redis_hash *h)
{
    freeReplyObject(h->reply);
    free(h->fields);
    memset(h, 0, sizeof(*h));
}

int dw_redis_hash_del(struct dw_redis *r, const char *key, const char *const *fields, size_t n,
                      char *errstr, size_t errstr_size)
{
    if (n == 0) {
        return 0;
    }
    struct argv a = {0};
    argv_pushs(&a, "HDEL");
    argv_pushs(&a, key);
    for (size_t i = 0; i < n; i++) {
        argv_pushs(&a, fields[i]);
    }
    redisReply *rep = cmd_argv(r, (int)a.n, a.v, a.len, errstr, errstr_size);
    int ok = rep != NULL;
    argv_free(&a);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}
