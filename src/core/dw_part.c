/*
 * dw_part.c - event processing for one partition: join, windows, watermark (see dw_part.h).
 *
 * Join rules (docs/contract.md, section 2.2): the first label to arrive for a prediction is the
 * one used; later label events for it are duplicates (conflicts when they disagree with the
 * first), counted in the prediction's window. A label that arrives before its prediction is
 * parked in the join cache; its duplicates are remembered in the record (with the label
 * watermark at their arrival) and counted when the prediction arrives, so that each label event
 * is judged late or not by the same rule whichever topic was read first. Records expire
 * join.ttl after their event time, on the clock of the stream they wait for (dw_part.h), so
 * expiry replays identically after a restart.
 *
 * Classes and versions (dw_join.h): a regression model's predictions and labels are numbers and
 * stay numbers. A classification model's classes and every model's versions are interned in
 * the join's tables of that model, bounded by models.<m>.max_classes and max_versions; an event
 * whose class or version would exceed the bound is rejected (DW_PART_REJECTED, p->reject says
 * why; the caller dead-letters it) before anything changes, so nothing is half counted. A
 * label's model is known only from its prediction: a label that finds its prediction is judged
 * on arrival (a class beyond the bound, or not a number for a regression model: rejected); a
 * label parked before its prediction is judged when the prediction arrives, and if it is
 * rejected then, it and the duplicates remembered with it are dropped and counted
 * (p->join_rejected, ctr.rejected_classes) while the prediction is counted and waits for another
 * label. Duplicates of a regression label conflict when the numbers differ ("4" and "4.0"
 * agree), of a class when the texts differ ("1" and "1.0" are two classes).
 */
#include "driftwatch/core/dw_part.h"

#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

static void count_expired(struct dw_part *p, const struct dw_join_rec *rec);

/* The class bound of a model (max_classes; 0 in a struct built by hand: the default). */
static uint32_t max_classes(const struct dw_model_cfg *m)
{
    return m->max_classes > 0 ? (uint32_t)m->max_classes : DW_JOIN_MAX_CLASSES;
}

static uint32_t max_versions(const struct dw_model_cfg *m)
{
    return m->max_versions > 0 ? (uint32_t)m->max_versions : DW_JOIN_MAX_VERSIONS;
}

struct dw_part *dw_part_new(const struct dw_config *cfg, int32_t partition)
{
    struct dw_part *p = dw_calloc(1, sizeof(*p));
    p->cfg = cfg;
    p->partition = partition;
    p->off_pred = -1;
    p->off_label = -1;
    p->gap_pred.refetched_at = -1;
    p->gap_label.refetched_at = -1;
    p->max_ts = DW_NO_TS;
    p->min_ts = DW_NO_TS;
    p->max_label_ts = DW_NO_TS;
    p->closed_upto_ms = DW_NO_TS;
    p->replay_upto_ms = DW_NO_TS;
    p->gc_before = dw_malloc((cfg->n_models ? cfg->n_models : 1) * sizeof(*p->gc_before));
    for (size_t m = 0; m < cfg->n_models; m++) {
        p->gc_before[m] = DW_NO_TS;
    }
    dw_join_init(&p->join);
    dw_join_set_ttl(&p->join, cfg->join_ttl_ms);
    for (size_t m = 0; m < cfg->n_models; m++) {
        const struct dw_model_cfg *mc = &cfg->models[m];
        dw_join_set_model(&p->join, m, mc->task == DW_TASK_REGRESSION, max_classes(mc),
                          max_versions(mc));
    }
    return p;
}

void dw_part_free(struct dw_part *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; i < p->n_wins; i++) {
        dw_agg_free(p->wins[i]);
    }
    for (size_t i = 0; i < p->n_retired; i++) {
        dw_agg_free(p->retired[i]);
    }
    free(p->wins);
    free(p->retired);
    free(p->kept);
    free(p->gc_before);
    free(p->unmerged);
    dw_join_free(&p->join);
    free(p);
}

int dw_part_count_now(int at_start, int topics_now, int highest_assigned)
{
    return DW_MAX(DW_MAX(at_start, topics_now), highest_assigned + 1);
}

enum dw_fetch_action dw_part_fetched(struct dw_part *p, int is_pred, int64_t offset)
{
    int64_t next = is_pred ? p->off_pred : p->off_label;
    struct dw_fetch_guard *g = is_pred ? &p->gap_pred : &p->gap_label;
    if (next < 0 || offset == next) {
        return DW_FETCH_PROCESS;
    }
    if (offset < next) {
        return DW_FETCH_REPEAT;
    }
    if (g->refetched_at == next || g->holes >= DW_FETCH_HOLES_TRUSTED) {
        g->holes++;
        return DW_FETCH_HOLE;
    }
    g->refetched_at = next;
    return DW_FETCH_REFETCH;
}

int64_t dw_part_watermark(const struct dw_part *p)
{
    return p->max_ts == DW_NO_TS ? DW_NO_TS : p->max_ts - p->cfg->allowed_lateness_ms;
}

int dw_part_hold_labels(const struct dw_part *p, int preds_at_end, int held)
{
    if (p->max_label_ts == DW_NO_TS || preds_at_end) {
        return 0;
    }
    if (p->max_ts == DW_NO_TS) {
        return 1; /* every label would wait parked for a prediction still in the log */
    }
    int64_t slack = p->cfg->window_size_ms;
    return held ? p->max_label_ts > p->max_ts + slack / 2 : p->max_label_ts > p->max_ts + slack;
}

static int64_t window_start(const struct dw_part *p, int64_t ts)
{
    return dw_floor_div(ts, p->cfg->window_size_ms) * p->cfg->window_size_ms;
}

/* Whether the window starting at start is one a rebuilt partition replays (replay_upto_ms). */
static int replaying(const struct dw_part *p, int64_t start)
{
    return p->replay_upto_ms != DW_NO_TS && start + p->cfg->window_size_ms <= p->replay_upto_ms;
}

/* Closed by this partition's own watermark, or globally (closed_upto_ms) unless it replays the
 * window: then by its own clock only, for lateness and seals alike (a sealed window takes no
 * prediction). */
static int window_closed(const struct dw_part *p, int64_t start)
{
    int64_t end = start + p->cfg->window_size_ms;
    int64_t wm = dw_part_watermark(p);
    return (wm != DW_NO_TS && end <= wm) ||
           (p->closed_upto_ms != DW_NO_TS && end <= p->closed_upto_ms && !replaying(p, start));
}

struct dw_agg *dw_part_window(struct dw_part *p, const struct dw_model_cfg *model, int64_t start_ms)
{
    for (size_t i = p->n_wins; i-- > 0;) {
        struct dw_agg *agg = p->wins[i];
        if (agg->start_ms == start_ms && agg->model == model) {
            return agg;
        }
    }
    return NULL;
}

static void push_agg(struct dw_agg ***arr, size_t *n, size_t *cap, struct dw_agg *agg)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = dw_realloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = agg;
}

size_t dw_part_drop_sketches(struct dw_part *p, const struct dw_model_cfg *model, int64_t before_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_wins; i++) {
        struct dw_agg *agg = p->wins[i];
        if (agg->model == model && agg->start_ms < before_ms) {
            n += (size_t)dw_agg_merged(agg);
        }
    }
    return n;
}

size_t dw_part_seal(struct dw_part *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_wins + p->n_retired; i++) {
        struct dw_agg *agg = i < p->n_wins ? p->wins[i] : p->retired[i - p->n_wins];
        if (!agg->sketches_dropped && window_closed(p, agg->start_ms)) {
            dw_agg_seal(agg);
            n++;
        }
    }
    return n;
}

/* 1 when (model, start) is retired and not written yet (its checkpoint failed). */
static int retired_pending(const struct dw_part *p, const struct dw_model_cfg *model, int64_t start)
{
    for (size_t i = 0; i < p->n_retired; i++) {
        if (p->retired[i]->model == model && p->retired[i]->start_ms == start) {
            return 1;
        }
    }
    return 0;
}

size_t dw_part_take_unmerged(struct dw_part *p, const struct dw_model_cfg *model, int64_t before_ms,
                             int64_t **starts)
{
    size_t n = 0, keep = 0;
    *starts = p->n_unmerged ? dw_malloc(p->n_unmerged * sizeof(**starts)) : NULL;
    for (size_t i = 0; i < p->n_unmerged; i++) {
        struct dw_part_window_id w = p->unmerged[i];
        /* Not while its last record waits for a checkpoint: what Redis holds is older. */
        if (w.model == model && w.start_ms < before_ms && !retired_pending(p, model, w.start_ms)) {
            (*starts)[n++] = w.start_ms;
        } else {
            p->unmerged[keep++] = w;
        }
    }
    p->n_unmerged = keep;
    if (n == 0) {
        free(*starts);
        *starts = NULL;
    }
    return n;
}

void dw_part_rewrite_window(struct dw_part *p, struct dw_agg *agg)
{
    push_agg(&p->retired, &p->n_retired, &p->cap_retired, agg);
}

void dw_part_adopt_window(struct dw_part *p, struct dw_agg *agg)
{
    push_agg(&p->wins, &p->n_wins, &p->cap_wins, agg);
}

static void outcome_of(const struct dw_join_rec *rec, struct dw_outcome *o)
{
    o->pred_is_num = (rec->flags & DW_JREC_PRED_NUM) != 0;
    o->label_is_num = (rec->flags & DW_JREC_LABEL_NUM) != 0;
    o->pred = o->pred_is_num ? NULL : rec->pred_cls ? rec->pred_cls : "";
    o->label = o->label_is_num ? NULL : rec->label_cls ? rec->label_cls : "";
    o->pred_num = o->pred_is_num ? rec->pred_num : 0.0;
    o->label_num = o->label_is_num ? rec->label_num : 0.0;
    o->has_score = (rec->flags & DW_JREC_SCORE) != 0;
    o->score = rec->score;
}

/* A label seen at label watermark lwm is late for a prediction of window start win_ms. */
static int label_late(const struct dw_part *p, int64_t win_ms, int64_t lwm)
{
    return lwm != DW_NO_TS && win_ms + p->cfg->window_size_ms + p->cfg->label_horizon_ms <= lwm;
}

/* Counts a duplicate label event (seen at label watermark lwm) of a joined prediction of
 * model_idx at ts_ms (its flags: DW_JREC_LATE). */
static void count_duplicate(struct dw_part *p, uint16_t model_idx, int64_t ts_ms, uint8_t flags,
                            int64_t lwm, int conflict)
{
    const struct dw_model_cfg *model = &p->cfg->models[model_idx];
    int64_t win_ms = window_start(p, ts_ms);
    struct dw_agg *agg = dw_part_window(p, model, win_ms);
    if (agg && !(flags & DW_JREC_LATE) && !label_late(p, win_ms, lwm)) {
        agg->duplicate_labels++;
        agg->conflicts += (uint64_t)(conflict != 0);
        agg->dirty = 1;
    } else {
        p->ctr.late_labels++;
        p->meta_dirty = 1;
    }
}

/* Counts the joined label of rec into its window; the record is DONE afterwards. */
static void count_join(struct dw_part *p, struct dw_join_rec *rec, int64_t lwm)
{
    const struct dw_model_cfg *model = &p->cfg->models[rec->model_idx];
    struct dw_agg *agg = dw_part_window(p, model, rec->win_ms);
    rec->state = DW_JOIN_DONE;
    if (!agg || (rec->flags & DW_JREC_LATE) || label_late(p, rec->win_ms, lwm)) {
        p->ctr.late_labels++;
        p->meta_dirty = 1;
        return;
    }
    size_t vslot = rec->version
                       ? dw_agg_version_slot(agg, rec->version, dw_strtab_len(rec->version))
                       : dw_agg_version_slot(agg, "", 0);
    struct dw_outcome o;
    outcome_of(rec, &o);
    dw_agg_add_outcome(agg, vslot, &o);
}

/* Counts the event being processed as rejected (why in p->reject); nothing else changes. */
static enum dw_part_result rejected(struct dw_part *p, enum dw_bad_reason reason)
{
    p->reject.reason = reason;
    p->ctr.rejected_classes++;
    p->meta_dirty = 1;
    return DW_PART_REJECTED;
}

/* 1 when s may be referenced in t under bound: it is there, or there is room for one more. */
static int fits(const struct dw_strtab *t, const char *s, size_t len, uint32_t bound)
{
    return t->count < bound || dw_strtab_has(t, s, len);
}

/* Writes why a class would exceed its model's bound into r->msg. */
static void class_bound_msg(const struct dw_part *p, size_t model_idx, const char *what,
                            const char *cls, struct dw_part_reject *r)
{
    const struct dw_model_cfg *model = &p->cfg->models[model_idx];
    const struct dw_join_model *jm = &p->join.models[model_idx];
    r->reason = DW_BAD_TOO_MANY_CLASSES;
    dw_err(r->msg, sizeof(r->msg),
           "%s: class '%s' would be distinct class %zu of model %s in partition %d, more than "
           "models.%s.max_classes (%u)",
           what, cls, jm->classes.count + 1, model->name, (int)p->partition, model->name,
           jm->max_classes);
}

/* 1 when a joined record ts_ms has waited longer than join.ttl on the label clock. Loading
 * skips such entries (dw_join_bucket_load), so every lookup treats them as gone too, swept or
 * not: the outcome is the same with or without a restart in between. */
static int done_expired(const struct dw_part *p, int64_t ts_ms)
{
    return p->max_label_ts != DW_NO_TS && ts_ms + p->cfg->join_ttl_ms < p->max_label_ts;
}

/* The joined entry of id, or NULL (an expired one is deleted on the way). */
static struct dw_join_done *joined_entry(struct dw_part *p, const char *id, size_t len)
{
    struct dw_join_done *d = dw_join_done_find(&p->join, id, len);
    if (d && done_expired(p, d->ts_ms)) {
        dw_join_done_delete(&p->join, d, 0);
        d = NULL;
    }
    return d;
}

/* 1 when a prediction with this id has joined already (a duplicate prediction). */
static int joined_again(struct dw_part *p, const char *id, size_t len)
{
    return joined_entry(p, id, len) != NULL;
}

enum dw_part_result dw_part_on_prediction(struct dw_part *p, const struct dw_prediction *ev)
{
    p->join_rejected = 0;
    struct dw_join *j = &p->join;
    struct dw_join_model *jm = dw_join_model(j, ev->model_idx);
    int regression = ev->model->task == DW_TASK_REGRESSION;
    if (!regression && !fits(&jm->classes, ev->pred.text, ev->pred.len, jm->max_classes)) {
        class_bound_msg(p, ev->model_idx, "prediction", ev->pred.text, &p->reject);
        return rejected(p, DW_BAD_TOO_MANY_CLASSES);
    }
    if (!fits(&jm->versions, ev->version, ev->version_len, jm->max_versions)) {
        dw_err(p->reject.msg, sizeof(p->reject.msg),
               "model_version: '%.*s' would be distinct version %zu of model %s in partition %d, "
               "more than models.%s.max_versions (%u)",
               (int)ev->version_len, ev->version, jm->versions.count + 1, ev->model->name,
               (int)p->partition, ev->model->name, jm->max_versions);
        return rejected(p, DW_BAD_TOO_MANY_VERSIONS);
    }
    struct dw_join_rec *rec = dw_join_find(j, ev->id, ev->id_len);
    if (rec && rec->state == DW_JOIN_LABEL && p->max_ts != DW_NO_TS &&
        rec->ts_ms + p->cfg->join_ttl_ms < p->max_ts) {
        count_expired(p, rec); /* parked too long: this prediction starts afresh */
        dw_join_delete(j, rec);
        rec = NULL;
    }
    if (!rec && joined_again(p, ev->id, ev->id_len)) {
        p->ctr.duplicate_predictions++;
        p->meta_dirty = 1;
        return DW_PART_DUPLICATE;
    }
    if (rec && rec->state != DW_JOIN_LABEL) {
        p->ctr.duplicate_predictions++;
        p->meta_dirty = 1;
        return DW_PART_DUPLICATE;
    }
    p->ctr.predictions++;
    p->meta_dirty = 1;
    int64_t start = window_start(p, ev->ts_ms);
    int replay = replaying(p, start);
    int late = window_closed(p, start);
    if (p->max_ts == DW_NO_TS || ev->ts_ms > p->max_ts) {
        p->max_ts = ev->ts_ms;
    }
    if (p->replay_upto_ms != DW_NO_TS && dw_part_watermark(p) >= p->replay_upto_ms) {
        p->replay_upto_ms = DW_NO_TS; /* caught up: windows before it are late by its own clock */
    }
    if (p->min_ts == DW_NO_TS || ev->ts_ms < p->min_ts) {
        p->min_ts = ev->ts_ms;
    }
    dw_assert(p->min_ts <= p->max_ts);
    struct dw_agg *agg = dw_part_window(p, ev->model, start);
    /* Dropped sketches: the close evaluation merged this window without this prediction (the
     * partition was idle then), so it is late here as well; unless the partition replays it
     * after a rebuild: the merged aggregate holds the prediction already, and its counts are
     * added without sketches (dw_agg_add_prediction). */
    late = late || (agg && agg->sketches_dropped && !replay);
    if (late) {
        if (agg) {
            agg->late_predictions++;
            agg->dirty = 1;
        } else {
            p->ctr.late_predictions++;
        }
    } else if (!agg) {
        agg = dw_agg_new(ev->model, start);
        const struct dw_agg *prev = dw_part_window(p, ev->model, start - p->cfg->window_size_ms);
        if (prev) {
            dw_agg_size_like(agg, prev);
        }
        push_agg(&p->wins, &p->n_wins, &p->cap_wins, agg);
    }
    if (!late) {
        size_t vslot = dw_agg_version_slot(agg, ev->version, ev->version_len);
        dw_agg_add_prediction(agg, vslot, ev);
    }
    /* A label parked before this prediction: taken over, judged below now that the model is
     * known. Its text stays referenced in the parked table until then. */
    const char *parked = NULL;
    struct dw_join_dup *dups = NULL;
    uint16_t n_dups = 0;
    int64_t parked_lwm = DW_NO_TS;
    int parked_num = 0;
    double parked_num_v = 0;
    if (rec) {
        parked = rec->parked_label;
        parked_num = (rec->flags & DW_JREC_LABEL_NUM) != 0;
        parked_num_v = rec->label_num;
        dups = rec->dups; /* taken over: counted below, then freed */
        n_dups = rec->n_dups;
        rec->dups = NULL;
        rec->n_dups = 0;
        parked_lwm = rec->label_wm;
        dw_join_touch(j, rec);
    } else {
        rec = dw_join_insert(j, ev->id, ev->id_len, DW_JOIN_PRED);
    }
    rec->state = DW_JOIN_PRED;
    rec->ts_ms = ev->ts_ms;
    rec->win_ms = start;
    rec->model_idx = (uint16_t)ev->model_idx;
    rec->version = dw_strtab_ref(&jm->versions, ev->version, ev->version_len, 0);
    rec->flags =
        (uint8_t)((rec->flags & (DW_JREC_DIRTY | DW_JREC_STORED)) | (late ? DW_JREC_LATE : 0));
    rec->score = ev->has_score ? ev->score : 0.0;
    if (ev->has_score) {
        rec->flags |= DW_JREC_SCORE;
    }
    if (regression) {
        rec->flags |= DW_JREC_PRED_NUM;
        rec->pred_num = ev->pred.num;
    } else {
        rec->pred_cls = dw_strtab_ref(&jm->classes, ev->pred.text, ev->pred.len, 0);
    }
    rec->label_num = 0.0;
    int joined = 0;
    if (parked) {
        size_t parked_len = dw_strtab_len(parked);
        if (regression ? parked_num : fits(&jm->classes, parked, parked_len, jm->max_classes)) {
            joined = 1;
            if (regression) {
                rec->flags |= DW_JREC_LABEL_NUM;
                rec->label_num = parked_num_v;
            } else {
                rec->label_cls = dw_strtab_ref(&jm->classes, parked, parked_len, 0);
            }
        } else {
            struct dw_part_reject *r = &p->join_reject;
            char what[DW_ID_MAX + 64];
            snprintf(what, sizeof(what), "label parked for prediction_id '%.*s'", (int)ev->id_len,
                     ev->id);
            if (regression) {
                r->reason = DW_BAD_WRONG_TYPE;
                dw_err(r->msg, sizeof(r->msg),
                       "%s: expected a number for regression model %s, got '%s'", what,
                       ev->model->name, parked);
            } else {
                class_bound_msg(p, ev->model_idx, what, parked, r);
            }
            p->join_rejected = 1u + n_dups;
            p->ctr.rejected_classes += p->join_rejected;
        }
        dw_strtab_unref(&j->parked, parked);
    }
    if (joined) {
        count_join(p, rec, parked_lwm);
        for (uint16_t i = 0; i < n_dups; i++) {
            uint8_t c = dups[i].conflict;
            int conflict =
                regression ? !(c & DW_JOIN_DUP_SAME_NUMBER) : (c & DW_JOIN_DUP_TEXT_DIFFERS) != 0;
            count_duplicate(p, rec->model_idx, rec->ts_ms, rec->flags, dups[i].label_wm, conflict);
        }
        dw_join_finish(j, rec);
    }
    free(dups);
    return late ? DW_PART_LATE : DW_PART_OK;
}

/* 1 when the label (text s, len) and an interned text differ. */
static int text_differs(const char *interned, const char *s, size_t len)
{
    return !interned || dw_strtab_len(interned) != len || memcmp(interned, s, len) != 0;
}

/* 1 when the label is a number equal to rec's numeric label. */
static int same_number(const struct dw_join_rec *rec, const struct dw_label *lab)
{
    return lab->label.is_num && (rec->flags & DW_JREC_LABEL_NUM) &&
           lab->label.num == rec->label_num;
}

/* 1 when a duplicate label disagrees with the first label of joined entry d: another number
 * for a regression model ("4" and "4.0" agree), another class text otherwise (compared by
 * fingerprint, dw_join.h). */
static int joined_conflict(const struct dw_part *p, const struct dw_join_done *d,
                           const struct dw_class *cls)
{
    if (p->cfg->models[d->model_idx].task == DW_TASK_REGRESSION) {
        double first;
        memcpy(&first, &d->label, sizeof(first));
        return !(cls->is_num && (d->flags & DW_JREC_LABEL_NUM) && cls->num == first);
    }
    return (d->flags & DW_JREC_LABEL_NUM) || d->label != dw_fp64(cls->text, cls->len);
}

enum dw_part_result dw_part_on_label(struct dw_part *p, const struct dw_label *lab)
{
    struct dw_join *j = &p->join;
    const struct dw_class *cls = &lab->label;
    int64_t lwm = p->max_label_ts;
    struct dw_join_rec *rec = dw_join_find(j, lab->id, lab->id_len);
    /* A joined prediction (the table holds none for its id): this label is a duplicate. */
    const struct dw_join_done *d = rec ? NULL : joined_entry(p, lab->id, lab->id_len);
    int expired = rec && rec->state != DW_JOIN_LABEL && lwm != DW_NO_TS &&
                  rec->ts_ms + p->cfg->join_ttl_ms < lwm; /* waited longer than join.ttl */
    const struct dw_model_cfg *model = rec ? &p->cfg->models[rec->model_idx] : NULL;
    int regression = model && model->task == DW_TASK_REGRESSION;
    if (rec && !expired && rec->state == DW_JOIN_PRED) {
        /* Joins now: judged as a class or number of the prediction's model first. */
        struct dw_join_model *jm = dw_join_model(j, rec->model_idx);
        if (regression && !cls->is_num) {
            dw_err(p->reject.msg, sizeof(p->reject.msg),
                   "label: expected a number for regression model %s, got '%s'", model->name,
                   cls->text);
            return rejected(p, DW_BAD_WRONG_TYPE);
        }
        if (!regression && !fits(&jm->classes, cls->text, cls->len, jm->max_classes)) {
            class_bound_msg(p, rec->model_idx, "label", cls->text, &p->reject);
            return rejected(p, DW_BAD_TOO_MANY_CLASSES);
        }
    }
    p->ctr.labels++;
    p->meta_dirty = 1;
    if (p->max_label_ts == DW_NO_TS || lab->ts_ms > p->max_label_ts) {
        p->max_label_ts = lab->ts_ms;
    }
    if (expired) {
        count_expired(p, rec);
        dw_join_delete(j, rec);
        rec = NULL;
    }
    if (d) {
        count_duplicate(p, d->model_idx, d->ts_ms, d->flags, lwm, joined_conflict(p, d, cls));
        return DW_PART_DUPLICATE;
    }
    if (!rec) {
        rec = dw_join_insert(j, lab->id, lab->id_len, DW_JOIN_LABEL);
        rec->ts_ms = lab->ts_ms;
        rec->label_wm = lwm;
        rec->parked_label = dw_strtab_ref(&j->parked, cls->text, cls->len, 0);
        if (cls->is_num) {
            rec->flags |= DW_JREC_LABEL_NUM;
            rec->label_num = cls->num;
        }
        return DW_PART_OK;
    }
    if (rec->state == DW_JOIN_LABEL) {
        uint8_t c = (uint8_t)((text_differs(rec->parked_label, cls->text, cls->len)
                                   ? DW_JOIN_DUP_TEXT_DIFFERS
                                   : 0) |
                              (same_number(rec, lab) ? DW_JOIN_DUP_SAME_NUMBER : 0));
        if (dw_join_add_dup(rec, lwm, c) != 0) {
            p->ctr.late_labels++; /* beyond DW_JOIN_MAX_DUPS: counted, not kept */
        }
        dw_join_touch(j, rec);
        return DW_PART_DUPLICATE;
    }
    if (regression) {
        rec->flags |= DW_JREC_LABEL_NUM;
        rec->label_num = cls->num;
    } else {
        rec->label_cls =
            dw_strtab_ref(&dw_join_model(j, rec->model_idx)->classes, cls->text, cls->len, 0);
    }
    count_join(p, rec, lwm);
    dw_join_finish(j, rec);
    return DW_PART_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void count_expired(struct dw_part *p, const struct dw_join_rec *rec)
{
    if (rec->state == DW_JOIN_PRED) {
        p->ctr.expired_predictions++;
    } else if (rec->state == DW_JOIN_LABEL) {
        p->ctr.expired_labels += 1u + rec->n_dups; /* its repeats were counted in labels too */
    }
}

/* A record expires on the clock of the stream it waits for (see dw_part.h). */
static int rec_expired(const struct dw_part *p, const struct dw_join_rec *rec)
{
    int64_t deadline = rec->ts_ms + p->cfg->join_ttl_ms;
    if (rec->state == DW_JOIN_LABEL) {
        return p->max_ts != DW_NO_TS && deadline < p->max_ts;
    }
    return (p->max_label_ts != DW_NO_TS && deadline < p->max_label_ts) ||
           (p->labels_at_end && p->max_ts != DW_NO_TS && deadline < p->max_ts);
}

/* Deletes expired records, or when evicting every record with event time before cutoff. */
static void join_sweep(struct dw_part *p, int64_t cutoff, int evicting)
{
    struct dw_join *j = &p->join;
    for (size_t i = 0; i < j->n_used; i++) {
        struct dw_join_rec *rec = &j->pool[i];
        if (rec->state == DW_JOIN_FREE) {
            continue;
        }
        if (evicting ? rec->ts_ms >= cutoff : !rec_expired(p, rec)) {
            continue;
        }
        if (evicting) {
            p->ctr.evicted++;
        } else {
            count_expired(p, rec);
        }
        dw_join_delete(j, rec);
        p->meta_dirty = 1;
    }
    /* The joined set: on the label clock (loading skips these too: no rewrite), at the end
     * of the labels on the prediction clock (rewritten), or evicted (rewritten). */
    size_t n = 0;
    if (evicting) {
        n = dw_join_done_sweep(j, cutoff, 1);
        p->ctr.evicted += n;
    } else {
        int64_t ttl = p->cfg->join_ttl_ms;
        if (p->max_label_ts != DW_NO_TS) {
            n += dw_join_done_sweep(j, p->max_label_ts - ttl, 0);
        }
        if (p->labels_at_end && p->max_ts != DW_NO_TS) {
            n += dw_join_done_sweep(j, p->max_ts - ttl, 1);
        }
    }
    p->meta_dirty |= n > 0;
}

static void join_evict(struct dw_part *p, int64_t max_records)
{
    struct dw_join *j = &p->join;
    size_t total = dw_join_size(j);
    if ((int64_t)total <= max_records) {
        return;
    }
    /* Evict the oldest tenth (by event time) so eviction is not paid on every event. */
    int64_t *ts = dw_malloc(total * sizeof(*ts));
    size_t n = 0;
    for (size_t i = 0; i < j->n_used; i++) {
        if (j->pool[i].state != DW_JOIN_FREE) {
            ts[n++] = j->pool[i].ts_ms;
        }
    }
    for (size_t i = 0; i < j->n_done; i++) {
        ts[n++] = j->done[i].ts_ms;
    }
    qsort(ts, n, sizeof(*ts), cmp_i64);
    size_t target = n - (size_t)(max_records * 9 / 10);
    int64_t cutoff = ts[DW_MIN(target, n - 1)] + 1;
    free(ts);
    join_sweep(p, cutoff, 1);
}

void dw_part_maintain(struct dw_part *p, int64_t max_records)
{
    int64_t wm = dw_part_watermark(p);
    join_sweep(p, 0, 0);
    join_evict(p, max_records);
    if (wm == DW_NO_TS) {
        return;
    }
    size_t keep = 0;
    for (size_t i = 0; i < p->n_wins; i++) {
        struct dw_agg *agg = p->wins[i];
        int64_t retire_at = agg->start_ms + p->cfg->window_size_ms + p->cfg->label_horizon_ms;
        int labels_past =
            p->labels_at_end || (p->max_label_ts != DW_NO_TS && retire_at <= p->max_label_ts);
        if (retire_at <= wm && labels_past) {
            push_agg(&p->retired, &p->n_retired, &p->cap_retired, agg);
            if (!agg->sketches_dropped || agg->sealed) { /* its sketches or its sealed copy */
                if (p->n_unmerged == p->cap_unmerged) {
                    p->cap_unmerged = p->cap_unmerged ? 2 * p->cap_unmerged : 8;
                    p->unmerged = dw_realloc(p->unmerged, p->cap_unmerged * sizeof(*p->unmerged));
                }
                p->unmerged[p->n_unmerged++] =
                    (struct dw_part_window_id){agg->model, agg->start_ms};
            }
        } else {
            p->wins[keep++] = agg;
        }
    }
    p->n_wins = keep;
}

void dw_part_set_gc(struct dw_part *p, const struct dw_model_cfg *model, int64_t before_ms)
{
    int64_t *b = &p->gc_before[model - p->cfg->models];
    if (*b == DW_NO_TS || before_ms > *b) {
        *b = before_ms;
    }
}

int dw_part_gc_due(const struct dw_part *p, const struct dw_model_cfg *model, int64_t start_ms)
{
    int64_t b = p->gc_before[model - p->cfg->models];
    return b != DW_NO_TS && start_ms < b;
}

size_t dw_part_gc_plan(struct dw_part *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_kept; i++) {
        struct dw_part_kept *k = &p->kept[i];
        k->going = dw_part_gc_due(p, k->model, k->start_ms);
        n += (size_t)k->going;
    }
    return n;
}

void dw_part_keep_window(struct dw_part *p, const struct dw_model_cfg *model, int64_t start_ms)
{
    for (size_t i = 0; i < p->n_kept; i++) {
        if (p->kept[i].model == model && p->kept[i].start_ms == start_ms) {
            return;
        }
    }
    if (p->n_kept == p->cap_kept) {
        p->cap_kept = p->cap_kept ? 2 * p->cap_kept : 8;
        p->kept = dw_realloc(p->kept, p->cap_kept * sizeof(*p->kept));
    }
    p->kept[p->n_kept++] = (struct dw_part_kept){model, start_ms, 0};
}

void dw_part_checkpoint_done(struct dw_part *p)
{
    for (size_t i = 0; i < p->n_wins; i++) {
        p->wins[i]->dirty = 0;
        p->wins[i]->seal_gone = 0;
        dw_buf_free(&p->wins[i]->seal_blob); /* written: the sealed copy is in Redis */
    }
    size_t keep = 0;
    for (size_t i = 0; i < p->n_kept; i++) {
        if (!p->kept[i].going) {
            p->kept[keep++] = p->kept[i];
        }
    }
    p->n_kept = keep;
    for (size_t i = 0; i < p->n_retired; i++) {
        const struct dw_agg *agg = p->retired[i];
        if (!dw_part_gc_due(p, agg->model, agg->start_ms)) {
            dw_part_keep_window(p, agg->model, agg->start_ms);
        }
        dw_agg_free(p->retired[i]);
    }
    p->n_retired = 0;
    dw_join_clear_dirty(&p->join);
    dw_join_compact(&p->join);
    p->meta_dirty = 0;
    dw_assert(p->join.n_dirty == 0 && p->join.n_deleted == 0);
}
