/*
 * dw_redis.h - the Redis adapter: partition checkpoints, state loading, the few global keys
 * the evaluator shares between pods, and the hash of pending alert deliveries. dw_redis.c is
 * the only file that speaks hiredis, and the only one that spells a key (one builder per kind
 * of key below: the dw_redis_name_* functions for the global ones).
 *
 * Threads: a struct dw_redis is one connection and is not thread-safe; one thread at a time
 * uses it. The main loop has its own; the alert delivery thread has another (dw_deliver.c),
 * which dw_deliver_resume() shares under dw_deliver's lock.
 *
 * Key layout (G = group, T = predictions topic, P = partition; the braces are a Redis Cluster
 * hash tag, so one partition's keys share a slot and its checkpoint is one MULTI/EXEC):
 *   {dw:G:T:P}:meta                 hash: offsets, watermark, counters, owner, and
 *                                   `quarantined` (why) while its state cannot be loaded
 *   {dw:G:T:P}:open                 set of "<model>\t<window start ms>" windows in memory
 *   {dw:G:T:P}:w:<model>:<start>    string: the partition's aggregate of that window
 *   {dw:G:T:P}:ws:<model>:<start>   string: its sealed copy, the whole aggregate when the
 *                                   partition sealed the window (its record then says
 *                                   "sealed" and holds what labels change); deleted once the
 *                                   close evaluation merged it (dw_part.h, "sealed")
 *   {dw:G:T:P}:join                 hash: prediction_id -> join record (waiting or parked)
 *   {dw:G:T:P}:done                 set of "<model>\t<start>\t<span>" buckets of joined records
 *   {dw:G:T:P}:done:<model>:<start>:<span>  list of pieces of joined records, 21 bytes each
 *                                   (dw_join.h)
 * Global keys share the hash tag {dw:G}, so that an evaluation commit is one MULTI/EXEC too:
 *   {dw:G}:partitions               partition count of the topics
 *   {dw:G}:lock:eval:<model>        the lease of the pod that evaluates the model (SET NX PX)
 *   {dw:G}:pods                     sorted set: pod owner -> last heartbeat (wall clock ms) of
 *                                   the pods that evaluate (the live ones share the models)
 *   {dw:G}:cursor:<model>           next window start to evaluate (cursor_final: label horizon)
 *   {dw:G}:refwins:<model>          windows merged into the reference so far (JSON list)
 *   {dw:G}:ref:<model>              reference profile (JSON)
 *   {dw:G}:rolling_first:<model>    first evaluated window (start of the rolling view)
 *   {dw:G}:report:<model>:<start>   last report of a window (JSON)
 *   {dw:G}:alerts:<model>           alert state of the model's rule instances (JSON)
 *   {dw:G}:trigger:<model>          trigger guardrail state (JSON: last window, day, count)
 *   {dw:G}:firing:<model>           last notification with firing alerts (Alertmanager resends)
 *   {dw:G}:errstream:<model>        change detectors of the joined error stream (text)
 *   {dw:G}:baseline:<model>         performance baseline: the reference windows' final counts
 *                                   merged so far (JSON, dw_baseline_dump)
 *   {dw:G}:deliveries               hash: "<sink>/<message id>" -> message not yet delivered
 */
#ifndef DW_REDIS_H
#define DW_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_agg.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_evaluator.h"
#include "driftwatch/core/dw_part.h"

struct dw_redis;

/* partitions: the largest partition count read back from Redis that is not corruption */
#define DW_MAX_PARTITIONS 1000000

/* struct dw_part_meta: what other pods need to know of a partition to close windows, in
 * driftwatch/core/dw_evaluator.h (the evaluator decides from it; this file reads it). */

/**
 * @brief Connects to the Redis of cfg (redis.host and port, or the master the sentinels of
 *        redis.sentinels name, checked with ROLE; username, password, db, timeout: AUTH and
 *        SELECT, or a PING when neither is sent, done here and after every reconnect; a
 *        READONLY reply makes the next call reconnect). cfg is borrowed and must outlive r.
 * @returns the connection, or NULL with errstr.
 */
struct dw_redis *dw_redis_connect(const struct dw_config *cfg, char *errstr, size_t errstr_size);
void dw_redis_free(struct dw_redis *r);

/** @returns 0 when Redis answers PING (reconnecting if needed). */
int dw_redis_ping(struct dw_redis *r);

/** @brief Makes `owner` the partition's owner (fences checkpoints of any previous owner). */
int dw_redis_claim(struct dw_redis *r, int32_t partition, const char *owner, char *errstr,
                   size_t errstr_size);

/** @brief What loading a partition's stored state found. */
enum dw_load_result {
    DW_LOAD_CORRUPT = -2,     /* Redis answered and the state is unusable: quarantine, no retry */
    DW_LOAD_UNAVAILABLE = -1, /* Redis did not answer (or LOADING, BUSY...): retry */
    DW_LOAD_NONE = 0,         /* no checkpoint */
    DW_LOAD_FOUND = 1,        /* state loaded */
};

/**
 * @brief Loads a partition's checkpoint into p (offsets, watermark, counters, open windows,
 *        join records) with strict checks: every number digits only and in range, every blob
 *        accepted by its decoder, every key of its Redis type.
 * @param badkey on DW_LOAD_CORRUPT, the key at fault (may be NULL)
 * @returns a dw_load_result; errstr names the key and what is wrong with it.
 */
int dw_redis_load_part(struct dw_redis *r, struct dw_part *p, char *badkey, size_t badkey_size,
                       char *errstr, size_t errstr_size);

/**
 * @brief Marks the partition quarantined in its meta hash (field `quarantined` = reason, and
 *        eof_ms = label_eof_ms = 0 so that it holds the windows it has not read), or with
 *        reason NULL clears the mark. @returns 0, -1 on a Redis error.
 */
int dw_redis_quarantine(struct dw_redis *r, int32_t partition, const char *reason, char *errstr,
                        size_t errstr_size);

/**
 * @brief Decodes every stored window of a partition (open or retired: the evaluator reads them
 *        all) with the decoder `run` uses; *n_windows counts them.
 * @returns DW_LOAD_FOUND, DW_LOAD_NONE (no window), or a fault with badkey and errstr.
 */
int dw_redis_check_windows(struct dw_redis *r, int32_t partition, size_t *n_windows, char *badkey,
                           size_t badkey_size, char *errstr, size_t errstr_size);

/**
 * @brief Deletes every key of a partition ({dw:G:T:P}:*); with dry_run only counts them.
 * @returns the number of keys, or -1 with errstr.
 */
long dw_redis_drop_part(struct dw_redis *r, int32_t partition, int dry_run, char *errstr,
                        size_t errstr_size);

/** @brief Who holds a partition, from its meta hash. */
struct dw_part_owner {
    char owner[128];       /* "" when none */
    int64_t updated_ms;    /* wall clock of its last checkpoint, 0 when unknown */
    int64_t released_ms;   /* = updated_ms when that checkpoint let it go, else older or 0 */
    char quarantined[256]; /* the quarantine reason, "" when not quarantined */
};

/**
 * @brief Whether partition p's state was deleted by `driftwatch state drop` (its meta hash
 *        holds the tombstone field dropped_ms). @returns 1, 0, or -1 when Redis did not answer.
 */
int dw_redis_part_dropped(struct dw_redis *r, int32_t partition);

/** @returns 0 with *out filled (empty when the partition has no meta), -1 on a Redis error. */
int dw_redis_part_owner(struct dw_redis *r, int32_t partition, struct dw_part_owner *out);

/**
 * @brief Writes the partition's changed state in one MULTI/EXEC, guarded by WATCH on the meta
 *        key so a fenced (previous) owner cannot overwrite a new owner's state.
 * @param eof_ms wall-clock time since which the partition is at the end of its log (0: not)
 * @param label_eof_ms the same for the labels partition
 * @param bytes_out payload bytes written (may be NULL)
 * @returns 0 ok, -1 Redis error, a command failed inside the transaction (Redis applied the
 *          others: the state stays dirty and the failure must be fixed), or aborted
 *          transaction (state kept dirty, retry later), -2 another consumer owns the partition
 *          now, -3 the partition's state is gone from Redis (its meta hash is missing: Redis
 *          restarted empty, was flushed, or evicted it), -4 Redis lost checkpoints it had
 *          acknowledged (the stored ckpt_seq is not the last one this process wrote): the
 *          stored, older state must be loaded again.
 */
int dw_redis_checkpoint(struct dw_redis *r, struct dw_part *p, const char *owner, int64_t eof_ms,
                        int64_t label_eof_ms, size_t *bytes_out, char *errstr, size_t errstr_size);

/** @brief One partition of dw_redis_checkpoint_many(). */
struct dw_redis_ckpt {
    struct dw_part *part;         /* in */
    int64_t eof_ms, label_eof_ms; /* in: as dw_redis_checkpoint()'s */
    int release;                  /* in: its owner lets it go (revoked, stopping): the meta's
                                   * released_ms = updated_ms, and `state drop` takes it
                                   * without --force */
    int result;                   /* out: dw_redis_checkpoint()'s result */
    size_t bytes;                 /* out: payload bytes written */
    char err[512];                /* out: why, when result is not 0 */
};

/**
 * @brief dw_redis_checkpoint() of n partitions in order, each its own fenced transaction, with
 *        the owner check of the next partition sent behind the transaction of the one before:
 *        n + 1 round trips instead of 3 n. Stops at the first result -1; the partitions after
 *        it keep result -1 and "not attempted".
 */
void dw_redis_checkpoint_many(struct dw_redis *r, struct dw_redis_ckpt *items, size_t n,
                              const char *owner);

/**
 * @brief Stores/reads the partition count ({dw:G}:partitions). get returns 1 found, 0 absent,
 *        -1 Redis error, -2 corrupt (not an integer in 1..DW_MAX_PARTITIONS).
 */
int dw_redis_set_partitions(struct dw_redis *r, int n);
int dw_redis_get_partitions(struct dw_redis *r, int *n);

/**
 * @brief Reads every partition's meta (pipelined). metas has n entries. A meta that fails the
 *        strict number checks is not an error: its entry says `corrupt` and why.
 * @returns 0, -1 when Redis failed.
 */
int dw_redis_read_metas(struct dw_redis *r, int n, struct dw_part_meta *metas);

/**
 * @brief Reads the aggregate of (model, start) from every partition and merges them.
 * @param like the same model's window merged before (its sketches may be dropped), or NULL:
 *             the merged sketches are created with room for what it counted
 *             (dw_agg_size_like), rather than grown by doubling through the partitions.
 *             The results do not depend on it.
 * @returns a new aggregate (empty when no partition has data), NULL on error.
 */
struct dw_agg *dw_redis_load_window(struct dw_redis *r, const struct dw_model_cfg *model,
                                    int64_t start_ms, int n_parts, const struct dw_agg *like,
                                    char *errstr, size_t errstr_size);

/**
 * @brief Reads partition's stored aggregate of window (m, start).
 * @returns 1 found (*out), 0 absent (expired), -1 Redis error or corrupt (errstr).
 */
int dw_redis_read_part_window(struct dw_redis *r, int32_t partition, const struct dw_model_cfg *m,
                              int64_t start, struct dw_agg **out, char *errstr, size_t errstr_size);

/** @brief Lists the window starts of a model whose summary is stored (dw_redis_name_summary;
 *         malloc'd array). */
int dw_redis_summary_starts(struct dw_redis *r, const struct dw_model_cfg *model, int64_t **starts,
                            size_t *n);

/** @brief Lists the window starts of a model whose report is stored (dw_redis_name_report;
 *         malloc'd array, unsorted: a SCAN). @returns 0, -1 on a Redis error. */
int dw_redis_report_starts(struct dw_redis *r, const char *model, int64_t **starts, size_t *n);

/** @brief Lists the window starts of a model present in any partition (malloc'd array). */
int dw_redis_window_starts(struct dw_redis *r, const struct dw_model_cfg *model, int n_parts,
                           int64_t **starts, size_t *n);

/** @brief Lease {dw:G}:lock:<name>: SET NX PX, or extends it when we already hold it.
 *  @returns 1 held, 0 held by another owner, -1 Redis error. */
int dw_redis_lease(struct dw_redis *r, const char *name, const char *owner, int64_t ttl_ms);
/** @brief Deletes lease {dw:G}:lock:<name> if `owner` holds it (WATCHed: never another's). */
void dw_redis_release(struct dw_redis *r, const char *name, const char *owner);

/**
 * @brief The evaluating pods' heartbeat ({dw:G}:pods, a sorted set): owner's score := now_ms,
 *        members older than now_ms - live_ms removed, and the remaining (live) owners returned
 *        in *pods (malloc'd array of malloc'd strings, *n of them; free each and the array).
 * @returns 0, or -1 on a Redis error (*pods NULL).
 */
int dw_redis_pods_beat(struct dw_redis *r, const char *owner, int64_t now_ms, int64_t live_ms,
                       char ***pods, size_t *n);
/** @brief Removes owner from the heartbeat set (a clean shutdown: the others take its share at
 *         once). Errors are ignored: its heartbeat then goes stale. */
void dw_redis_pods_leave(struct dw_redis *r, const char *owner);

/**
 * @brief Global integer key {dw:G}:<name> (name: from a dw_redis_name_* builder below). get
 *        returns 1 found, 0 absent, -1 Redis error, -2 corrupt (not a decimal int64, parsed
 *        strictly, or not a string).
 */
int dw_redis_get_i64(struct dw_redis *r, const char *name, int64_t *out);
int dw_redis_set_i64(struct dw_redis *r, const char *name, int64_t v);

/** @brief Global string key {dw:G}:<name> (ttl_ms 0 = no expiry); get returns malloc'd or NULL. */
int dw_redis_set_str(struct dw_redis *r, const char *name, const char *value, int64_t ttl_ms);
char *dw_redis_get_str(struct dw_redis *r, const char *name);
/** @brief The same for a binary value: its length in *len (the copy is NUL-terminated too). */
char *dw_redis_get_bytes(struct dw_redis *r, const char *name, size_t *len);
/**
 * @brief The same, telling an absent key from a failure: for state whose loss would be
 *        committed back (the baseline). *out malloc'ed (NUL-terminated) or NULL, *len its size.
 * @returns 1 found, 0 absent, -1 Redis error or not a string.
 */
int dw_redis_read_str(struct dw_redis *r, const char *name, char **out, size_t *len);

/**
 * @brief Global key {dw:G}:<name> as JSON into *out (NULL when absent, or not JSON: that is
 *        logged at most once a second under `limit_key` with `msg` and the key).
 * @returns 0, or -1 on a Redis error.
 */
int dw_redis_read_json(struct dw_redis *r, const char *name, const char *limit_key, const char *msg,
                       json_t **out);
/**
 * @brief dw_redis_read_str() of a model's evaluation state (alerts, trigger, change detectors,
 *        reference, reference windows, baseline), which logs a failure with the key (at most
 *        once a second): the caller's step must then wait, since a state started afresh would
 *        be written over the stored one.
 */
int dw_redis_read_state(struct dw_redis *r, const char *name, const char *model, char **out,
                        size_t *len);

/**
 * @brief Global key {dw:G}:<name> := len bytes, expiring after ttl_ms (0: never); the command
 *        is formatted once at its size (a large value is copied once, not grown).
 * @returns 0, -1 (errstr).
 */
int dw_redis_set_bytes(struct dw_redis *r, const char *name, const void *value, size_t len,
                       int64_t ttl_ms, char *errstr, size_t errstr_size);

/** @brief Global key {dw:G}:<name> holding an encoded aggregate (dw_agg_encode), no expiry. */
int dw_redis_set_agg(struct dw_redis *r, const char *name, const struct dw_agg *agg, char *errstr,
                     size_t errstr_size);
/**
 * @brief Reads and decodes what dw_redis_set_agg() stored, for `model`: the aggregate of the
 *        window `start` (one of another window is corrupt).
 * @returns 1 found (*out: free with dw_agg_free), 0 absent, -1 Redis error or corrupt (errstr).
 */
int dw_redis_get_agg(struct dw_redis *r, const char *name, const struct dw_model_cfg *model,
                     int64_t start, struct dw_agg **out, char *errstr, size_t errstr_size);
/** @brief Deletes global key {dw:G}:<name>. @returns 0, -1 on a Redis error. */
int dw_redis_del(struct dw_redis *r, const char *name);

/** @brief A global key (or hash field) and its value; value NULL deletes the key. */
struct dw_redis_kv {
    const char *name;
    const char *value;
    int64_t px_ms; /* a key's expiry (milliseconds; 0: none) */
};

/**
 * @brief One MULTI/EXEC of evaluation state of `model`, fenced by its evaluator lease (WATCH on
 *        {dw:G}:lock:eval:<model>, which must hold `owner`): SET (or DEL) each global key of
 *        `sets`, then HSET each field of `fields` into the global hash `hash`.
 * @returns 0 committed, 1 not committed because the lease is not ours (errstr says so),
 *          -1 Redis error (not committed), -2 the connection was lost after the transaction
 *          was sent: committed or not, unknown (EXEC may have run with its reply lost; errstr).
 */
int dw_redis_eval_commit(struct dw_redis *r, const char *owner, const char *model,
                         const struct dw_redis_kv *sets, size_t n_sets, const char *hash,
                         const struct dw_redis_kv *fields, size_t n_fields, char *errstr,
                         size_t errstr_size);

struct dw_buf;

/**
 * @brief A global key and its binary value: data (NULL deletes the key), or, when fill is set,
 *        the bytes fill(arg, chunk, max) appends to chunk (emptied before each call; about max
 *        of them), returning 1 while more remain and 0 with the last: a value of many MB made
 *        as it is written (dw_ref_writer_fill()), never whole in memory.
 */
struct dw_redis_bkv {
    const char *name;
    const void *data;
    size_t len;
    int (*fill)(void *arg, struct dw_buf *chunk, size_t max);
    void *arg;
};

/**
 * @brief SET (or DEL) each key of `sets` in one MULTI/EXEC, only while the global integer key
 *        `fence` holds `value` (absent: 0): WATCH fence, GET it, compare, MULTI ... EXEC. What
 *        the evaluator writes of a model's reference, fenced by refgen:<model>, so that a
 *        `driftwatch reference set` or `reset` in between is never written over.
 * @returns 0 written, 1 not written because the fence moved (errstr says so), -1 Redis error.
 */
int dw_redis_write_fenced(struct dw_redis *r, const char *fence, int64_t value,
                          const struct dw_redis_bkv *sets, size_t n_sets, char *errstr,
                          size_t errstr_size);

/**
 * @brief Replaces model's reference in one MULTI/EXEC: ref:<model> := data (len bytes; NULL
 *        deletes it), and forgets how the old one was made: refwins:<model> and the refagg keys
 *        it lists, trailwins:<model> and its trailagg keys, baseline:<model>; INCR
 *        refgen:<model> (*gen: its new value), so that the pods drop their copy; DEL the
 *        model's evaluator lease, so that an evaluation in flight does not commit what it read
 *        before (its commit WATCHes the lease; a pod takes the lease again on its next tick).
 * @returns 0, or -1 (errstr).
 */
int dw_redis_reference_replace(struct dw_redis *r, const char *model, const void *data, size_t len,
                               int64_t *gen, char *errstr, size_t errstr_size);

/** @brief The full name of global key `name`: "{dw:G}:name". */
void dw_redis_global_key(const struct dw_redis *r, const char *name, char *buf, size_t size);

/*
 * Names of the global keys, one builder per kind of the layout above: each writes the name
 * after "{dw:G}:" ("cursor:<model>", ...) into buf, for dw_redis_get_i64 / set_i64 / get_str /
 * set_str, the sets of dw_redis_eval_commit and dw_redis_global_key. (The lease name
 * lock:<name> is built inside dw_redis_lease; the partitions' keys never leave dw_redis.c.)
 */
#define DW_REDIS_NAME_MAX 512 /* bytes of a buffer for a global key's name */
#define DW_REDIS_KEY_MAX 1024 /* bytes of a buffer for a full key name */

void dw_redis_name_partitions(char *buf, size_t size);
/** @brief eval:<model>: the name of the model's evaluator lease for dw_redis_lease / release
 *         (its key is lock:eval:<model>). */
void dw_redis_name_eval_lease(const char *model, char *buf, size_t size);
/** @brief pods: the heartbeat set of the evaluating pods (dw_redis_pods_beat). */
void dw_redis_name_pods(char *buf, size_t size);
/** @brief cursor:<model>, or cursor_final:<model> when `final` (the label horizon's). */
void dw_redis_name_cursor(const char *model, int final, char *buf, size_t size);
void dw_redis_name_refwins(const char *model, char *buf, size_t size);
/** @brief refgen:<model>: incremented by each `driftwatch reference set` / `reset`. */
void dw_redis_name_refgen(const char *model, char *buf, size_t size);
/** @brief trailwins:<model>: the starts of the windows whose merged aggregate is kept as
 *         trailagg:<model>:<start> for the trailing reference of the windows after them. */
void dw_redis_name_trailwins(const char *model, char *buf, size_t size);
void dw_redis_name_trailagg(const char *model, int64_t start_ms, char *buf, size_t size);
void dw_redis_name_ref(const char *model, char *buf, size_t size);
/** @brief canary:<model>:<start ms>:<stage>: a window's canary record (dw_canary_window) of
 *         stage close or final, kept for window.retention. */
void dw_redis_name_canary(const char *model, int64_t start_ms, const char *stage, char *buf,
                          size_t size);
/** @brief reference.per_version, for `version` of `model`: vref:<model>:<version> (its own
 *         reference, dw_ref_encode), vrefagg:<model>:<version> (the views of the windows
 *         collected so far, merged: dw_agg_encode), vrefwins:<model>:<version> (their starts,
 *         JSON); vrefs:<model> lists the versions that have any of them (JSON). */
void dw_redis_name_vref(const char *kind, const char *model, const char *version, char *buf,
                        size_t size);
void dw_redis_name_vrefs(const char *model, char *buf, size_t size);
/** @brief canarylast:<model>:<stage>: the latest canary analysis of the stage (JSON, the
 *         report's `canary` with its window_start), read by every pod for the endpoint. */
void dw_redis_name_canary_last(const char *model, const char *stage, char *buf, size_t size);
/** @brief modelmetrics:<model>:<stage>: the digest of the model's latest report of the stage
 *         (dw_modelmetrics; a final one holds the running prediction totals), committed with
 *         the report, read by every pod for the model series of /metrics. */
void dw_redis_name_model_metrics(const char *model, const char *stage, char *buf, size_t size);
/** @brief refagg:<model>:<start ms>: a reference window's merged aggregate, kept while the
 *         reference is collected (its partitions dropped their sketches). */
void dw_redis_name_refagg(const char *model, int64_t start_ms, char *buf, size_t size);
void dw_redis_name_rolling_first(const char *model, char *buf, size_t size);
/** @brief summary:<model>:<start ms>: what `inspect` shows of a window (dw_agg_to_json of the
 *         partitions' records merged), written at its final evaluation: it stays, for
 *         window.retention, once no reader needs the partitions' records and they are gone. */
void dw_redis_name_summary(const char *model, int64_t start_ms, char *buf, size_t size);
/** @brief report:<model>:<start ms>. */
void dw_redis_name_report(const char *model, int64_t start_ms, char *buf, size_t size);
void dw_redis_name_alerts(const char *model, char *buf, size_t size);
void dw_redis_name_trigger(const char *model, char *buf, size_t size);
void dw_redis_name_firing(const char *model, char *buf, size_t size);
void dw_redis_name_errstream(const char *model, char *buf, size_t size);
/** @brief baseline:<model>: the model's performance baseline (dw_baseline.h), committed with
 *         the final cursor of the windows merged into it. */
void dw_redis_name_baseline(const char *model, char *buf, size_t size);
/** @brief deliveries: the hash of messages not yet delivered (dw_deliver). */
void dw_redis_name_deliveries(char *buf, size_t size);

/*
 * Hashes named by their full key (dw_redis_global_key), for the delivery thread's pending
 * messages. Errors name the cause in errstr; a lost connection is reopened by the next call.
 */

/** @brief A field of a hash and its value (binary-safe), pointing into the reply. */
struct dw_redis_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/** @brief The fields read by dw_redis_hash_getall(); valid until dw_redis_hash_free(). */
struct dw_redis_hash {
    struct dw_redis_field *fields;
    size_t n;
    void *reply; /* owns the bytes the fields point into */
};

/**
 * @brief HGETALL of the hash `key`; a field or value that is not a string is skipped.
 * @returns 0 with *out filled (free it with dw_redis_hash_free), -1 with errstr.
 */
int dw_redis_hash_getall(struct dw_redis *r, const char *key, struct dw_redis_hash *out,
                         char *errstr, size_t errstr_size);
void dw_redis_hash_free(struct dw_redis_hash *h);

/** @brief HDEL of n fields of the hash `key`, one command. @returns 0, -1 with errstr. */
int dw_redis_hash_del(struct dw_redis *r, const char *key, const char *const *fields, size_t n,
                      char *errstr, size_t errstr_size);

#endif
