/*
 * dw_join.c - the per-partition join cache (see dw_join.h for the record states).
 *
 * Layout: records live in a pool (array) and are found through an open-addressing table of
 * pool indices keyed by the 64-bit hash of the id (FNV-1a), with the full id compared on a
 * hash match. Deletion shifts later entries of the probe run back (no tombstones), so lookups
 * stay short however many records come and go. The table doubles at a load factor of 1/2.
 */
#include "driftwatch/dw_join.h"

#include <stdlib.h>
#include <string.h>

#include "driftwatch/dw_common.h"

#define JOIN_CODEC_VERSION 1
#define STRTAB_MAX 65000 /* distinct classes + versions per process */

/* ---- process-wide string table ---- */

static char **strtab_strs;
static size_t strtab_n;
static uint32_t *strtab_slots; /* index + 1 */
static size_t strtab_nslots;

static void strtab_grow(void)
{
    size_t n = strtab_nslots ? strtab_nslots * 2 : 1024;
    uint32_t *slots = dw_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < strtab_n; i++) {
        size_t h = (size_t)dw_hash64(strtab_strs[i], strlen(strtab_strs[i])) & (n - 1);
        while (slots[h]) {
            h = (h + 1) & (n - 1);
        }
        slots[h] = (uint32_t)i + 1;
    }
    free(strtab_slots);
    strtab_slots = slots;
    strtab_nslots = n;
    strtab_strs = dw_realloc(strtab_strs, n / 2 * sizeof(*strtab_strs));
}

uint16_t dw_strtab_intern(const char *s, size_t len)
{
    if (strtab_n + 1 > strtab_nslots / 2) {
        strtab_grow();
    }
    size_t h = (size_t)dw_hash64(s, len) & (strtab_nslots - 1);
    uint16_t idx = DW_STRTAB_NONE;
    for (;;) {
        uint32_t v = strtab_slots[h];
        if (!v) {
            if (strtab_n < STRTAB_MAX) {
                strtab_strs[strtab_n] = dw_strndup(s, len);
                strtab_slots[h] = (uint32_t)++strtab_n;
                idx = (uint16_t)(strtab_n - 1);
            }
            break;
        }
        const char *e = strtab_strs[v - 1];
        if (strlen(e) == len && memcmp(e, s, len) == 0) {
            idx = (uint16_t)(v - 1);
            break;
        }
        h = (h + 1) & (strtab_nslots - 1);
    }
    return idx;
}

const char *dw_strtab_get(uint16_t idx)
{
    if (idx == DW_STRTAB_NONE) {
        return "";
    }
    return idx < strtab_n ? strtab_strs[idx] : "";
}

/* ---- join table ---- */

/* A slot holds the upper 32 bits of the id's hash and the pool index + 1 (0 = empty). */
#define SLOT_MAKE(hash, idx) ((((hash) >> 32) << 32) | ((uint64_t)(idx) + 1))
#define SLOT_TAG(v) ((v) >> 32)
#define SLOT_IDX(v) ((uint32_t)((v)&0xFFFFFFFFu) - 1)

void dw_join_init(struct dw_join *j)
{
    memset(j, 0, sizeof(*j));
    dw_buf_init(&j->deleted);
}

void dw_join_free(struct dw_join *j)
{
    for (size_t i = 0; i < j->n_used; i++) {
        free(j->pool[i].id_long);
        free(j->pool[i].dups);
    }
    free(j->pool);
    free(j->free_list);
    free(j->slots);
    free(j->dirty);
    dw_buf_free(&j->deleted);
    memset(j, 0, sizeof(*j));
}

const char *dw_join_id(const struct dw_join_rec *rec)
{
    return rec->id_long ? rec->id_long : rec->id;
}

static int rec_matches(const struct dw_join_rec *rec, uint64_t h, const char *id, size_t len)
{
    return rec->hash == h && rec->id_len == len && memcmp(dw_join_id(rec), id, len) == 0;
}

struct dw_join_rec *dw_join_find(struct dw_join *j, const char *id, size_t len)
{
    if (!j->n_slots) {
        return NULL;
    }
    uint64_t h = dw_hash64(id, len);
    size_t mask = j->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t v = j->slots[i];
        if (!v) {
            return NULL;
        }
        /* The slot's hash tag settles most mismatches without touching the record. */
        if (SLOT_TAG(v) == (h >> 32) && rec_matches(&j->pool[SLOT_IDX(v)], h, id, len)) {
            return &j->pool[SLOT_IDX(v)];
        }
    }
}

static void table_place(struct dw_join *j, uint32_t pool_idx)
{
    size_t mask = j->n_slots - 1;
    size_t i = (size_t)j->pool[pool_idx].hash & mask;
    while (j->slots[i]) {
        i = (i + 1) & mask;
    }
    j->slots[i] = SLOT_MAKE(j->pool[pool_idx].hash, pool_idx);
}

static void table_grow(struct dw_join *j)
{
    size_t n = j->n_slots ? j->n_slots * 2 : 1024;
    free(j->slots);
    j->slots = dw_calloc(n, sizeof(*j->slots));
    j->n_slots = n;
    for (size_t i = 0; i < j->n_used; i++) {
        if (j->pool[i].state != DW_JOIN_FREE) {
            table_place(j, (uint32_t)i);
        }
    }
}

void dw_join_touch(struct dw_join *j, struct dw_join_rec *rec)
{
    if (rec->flags & DW_JREC_DIRTY) {
        return;
    }
    rec->flags |= DW_JREC_DIRTY;
    if (j->n_dirty == j->dirty_cap) {
        j->dirty_cap = j->dirty_cap ? j->dirty_cap * 2 : 1024;
        j->dirty = dw_realloc(j->dirty, j->dirty_cap * sizeof(*j->dirty));
    }
    j->dirty[j->n_dirty++] = (uint32_t)(rec - j->pool);
}

struct dw_join_rec *dw_join_insert(struct dw_join *j, const char *id, size_t len, uint8_t state)
{
    if ((j->count + 1) * 2 > j->n_slots) {
        table_grow(j);
    }
    uint32_t idx;
    if (j->n_free) {
        idx = j->free_list[--j->n_free];
    } else {
        if (j->n_used == j->pool_cap) {
            size_t cap = j->pool_cap ? j->pool_cap * 2 : 1024;
            j->pool = dw_realloc(j->pool, cap * sizeof(*j->pool));
            j->free_list = dw_realloc(j->free_list, cap * sizeof(*j->free_list));
            j->pool_cap = cap;
        }
        idx = (uint32_t)j->n_used++;
    }
    struct dw_join_rec *rec = &j->pool[idx];
    memset(rec, 0, sizeof(*rec));
    rec->hash = dw_hash64(id, len);
    rec->id_len = (uint16_t)len;
    if (len > DW_JOIN_ID_INLINE) {
        rec->id_long = dw_strndup(id, len);
    } else {
        memcpy(rec->id, id, len);
    }
    rec->state = state;
    rec->version = rec->pred_cls = rec->label_cls = DW_STRTAB_NONE;
    table_place(j, idx);
    j->count++;
    dw_join_touch(j, rec);
    return rec;
}

void dw_join_delete(struct dw_join *j, struct dw_join_rec *rec)
{
    uint32_t idx = (uint32_t)(rec - j->pool);
    size_t mask = j->n_slots - 1;
    size_t i = (size_t)rec->hash & mask;
    while (SLOT_IDX(j->slots[i]) != idx || !j->slots[i]) {
        i = (i + 1) & mask;
    }
    /* Backward-shift deletion: move later members of the probe run into the hole. */
    size_t hole = i;
    for (size_t k = (hole + 1) & mask; j->slots[k]; k = (k + 1) & mask) {
        size_t home = (size_t)j->pool[SLOT_IDX(j->slots[k])].hash & mask;
        int movable = hole <= k ? (home <= hole || home > k) : (home <= hole && home > k);
        if (movable) {
            j->slots[hole] = j->slots[k];
            hole = k;
        }
    }
    j->slots[hole] = 0;
    dw_buf_put_str(&j->deleted, dw_join_id(rec), rec->id_len);
    j->n_deleted++;
    free(rec->id_long);
    free(rec->dups);
    memset(rec, 0, sizeof(*rec));
    j->free_list[j->n_free++] = idx;
    j->count--;
}

int dw_join_add_dup(struct dw_join_rec *rec, int64_t label_wm, int conflict)
{
    if (rec->n_dups >= DW_JOIN_MAX_DUPS) {
        return -1;
    }
    rec->dups = dw_realloc(rec->dups, (rec->n_dups + 1u) * sizeof(*rec->dups));
    rec->dups[rec->n_dups].label_wm = label_wm;
    rec->dups[rec->n_dups].conflict = (uint8_t)(conflict != 0);
    rec->n_dups++;
    return 0;
}

void dw_join_clear_dirty(struct dw_join *j)
{
    for (size_t i = 0; i < j->n_dirty; i++) {
        j->pool[j->dirty[i]].flags &= (uint8_t)~DW_JREC_DIRTY;
    }
    j->n_dirty = 0;
    dw_buf_reset(&j->deleted);
    j->n_deleted = 0;
}

void dw_join_rec_encode(const struct dw_join_rec *rec, const char *model_name, struct dw_buf *out)
{
    const char *version = dw_strtab_get(rec->version);
    const char *pred = dw_strtab_get(rec->pred_cls);
    const char *label = dw_strtab_get(rec->label_cls);
    dw_buf_put_u8(out, JOIN_CODEC_VERSION);
    dw_buf_put_u8(out, rec->state);
    dw_buf_put_u8(out, rec->flags & (uint8_t)~DW_JREC_DIRTY);
    dw_buf_put_i64(out, rec->ts_ms);
    dw_buf_put_i64(out, rec->win_ms);
    dw_buf_put_i64(out, rec->label_wm);
    dw_buf_put_f64(out, rec->score);
    dw_buf_put_f64(out, rec->pred_num);
    dw_buf_put_f64(out, rec->label_num);
    dw_buf_put_u16(out, rec->n_dups);
    for (uint16_t i = 0; i < rec->n_dups; i++) {
        dw_buf_put_i64(out, rec->dups[i].label_wm);
        dw_buf_put_u8(out, rec->dups[i].conflict);
    }
    dw_buf_put_str(out, model_name, strlen(model_name));
    dw_buf_put_str(out, version, rec->version == DW_STRTAB_NONE ? 0 : strlen(version));
    dw_buf_put_str(out, pred, rec->pred_cls == DW_STRTAB_NONE ? 0 : strlen(pred));
    dw_buf_put_u8(out, rec->pred_cls != DW_STRTAB_NONE);
    dw_buf_put_str(out, label, rec->label_cls == DW_STRTAB_NONE ? 0 : strlen(label));
    dw_buf_put_u8(out, rec->label_cls != DW_STRTAB_NONE);
}

static uint16_t intern_opt(const char *s, size_t len, int present)
{
    return present ? dw_strtab_intern(s, len) : DW_STRTAB_NONE;
}

int dw_join_rec_decode(struct dw_join *j, const char *id, size_t id_len, const void *data,
                       size_t len, long (*model_idx_of)(const char *name, size_t len, void *opaque),
                       void *opaque)
{
    struct dw_reader rd;
    dw_reader_init(&rd, data, len);
    if (dw_rd_u8(&rd) != JOIN_CODEC_VERSION) {
        return -1;
    }
    struct dw_join_rec tmp = {0};
    tmp.state = dw_rd_u8(&rd);
    tmp.flags = dw_rd_u8(&rd);
    tmp.ts_ms = dw_rd_i64(&rd);
    tmp.win_ms = dw_rd_i64(&rd);
    tmp.label_wm = dw_rd_i64(&rd);
    tmp.score = dw_rd_f64(&rd);
    tmp.pred_num = dw_rd_f64(&rd);
    tmp.label_num = dw_rd_f64(&rd);
    uint16_t n_dups = dw_rd_u16(&rd);
    const uint8_t *dups_at = dw_rd_bytes(&rd, (size_t)n_dups * 9); /* i64 + u8 each */
    const char *model, *version, *pred, *label;
    /* names become C strings (interned): a NUL inside would make them another name */
    size_t model_len = dw_rd_name(&rd, &model, "model");
    size_t version_len = dw_rd_name(&rd, &version, "version");
    size_t pred_len = dw_rd_name(&rd, &pred, "prediction");
    uint8_t has_pred = dw_rd_u8(&rd);
    size_t label_len = dw_rd_name(&rd, &label, "label");
    uint8_t has_label = dw_rd_u8(&rd);
    const uint8_t known = DW_JREC_SCORE | DW_JREC_PRED_NUM | DW_JREC_LABEL_NUM | DW_JREC_LATE;
    if (rd.err || rd.pos != rd.len || n_dups > DW_JOIN_MAX_DUPS || tmp.state < DW_JOIN_PRED ||
        tmp.state > DW_JOIN_DONE || id_len == 0 || id_len > UINT16_MAX ||
        dw_join_find(j, id, id_len)) {
        return -1;
    }
    /* Flags and presence bytes as written; a score as the decoder accepts it ([0, 1]); the
     * duplicates of a parked label only on a parked label (others never keep them). */
    if ((tmp.flags & (uint8_t) ~(known | DW_JREC_DIRTY)) || has_pred > 1 || has_label > 1 ||
        ((tmp.flags & DW_JREC_SCORE) && !(tmp.score >= 0.0 && tmp.score <= 1.0)) ||
        (n_dups > 0 && tmp.state != DW_JOIN_LABEL)) {
        return -1;
    }
    for (uint16_t i = 0; i < n_dups; i++) {
        if (dups_at[(size_t)i * 9 + 8] > 1) { /* the conflict byte */
            return -1;
        }
    }
    long midx = model_idx_of(model, model_len, opaque);
    if (midx < 0 && tmp.state != DW_JOIN_LABEL) {
        return 1;
    }
    struct dw_join_rec *rec = dw_join_insert(j, id, id_len, tmp.state);
    rec->ts_ms = tmp.ts_ms;
    rec->win_ms = tmp.win_ms;
    rec->label_wm = tmp.label_wm;
    rec->score = tmp.score;
    rec->pred_num = tmp.pred_num;
    rec->label_num = tmp.label_num;
    struct dw_reader drd;
    dw_reader_init(&drd, dups_at, (size_t)n_dups * 9);
    for (uint16_t i = 0; i < n_dups; i++) {
        int64_t wm = dw_rd_i64(&drd);
        dw_join_add_dup(rec, wm, dw_rd_u8(&drd));
    }
    rec->flags = (uint8_t)(tmp.flags & (uint8_t)~DW_JREC_DIRTY);
    rec->model_idx = (uint16_t)(midx < 0 ? 0 : midx);
    rec->version = intern_opt(version, version_len, tmp.state != DW_JOIN_LABEL);
    rec->pred_cls = intern_opt(pred, pred_len, has_pred);
    rec->label_cls = intern_opt(label, label_len, has_label);
    /* Loaded from the checkpoint: not dirty. */
    rec->flags &= (uint8_t)~DW_JREC_DIRTY;
    j->n_dirty--;
    return 0;
}
