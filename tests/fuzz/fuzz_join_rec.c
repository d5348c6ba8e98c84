/*
 * fuzz_join_rec.c - dw_join_rec_decode(), the reader of every checkpointed join record, on
 * arbitrary bytes.
 *
 * The bytes are decoded under a short id (kept inside the record) and a long one (allocated).
 * A record the reader accepts is found under its id, is refused a second time (the id is
 * taken), and re-encodes to bytes that decode again and re-encode identically; a joined one
 * (the older layout) moves to the joined set; a dropped one (unknown model) and a refused one
 * leave the join empty. The same bytes are also read as a bucket of the joined set
 * (dw_join_bucket_load): refused whole, or loaded and written back to bytes that load the same.
 *
 * Seeds: dw_join_rec_encode() of records in each state: a prediction waiting (score, numeric
 * prediction), a parked label with duplicates and conflicts, a joined late record, a record
 * of an unknown model; a bucket of two entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_join.h"
#include "dw_fuzz.h"

#define LONG_ID "a-prediction-id-longer-than-the-forty-bytes-kept-inside-a-record"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_join_rec: %s\n", what);
        abort();
    }
}

static long model_idx_of(const char *name, size_t len, void *opaque)
{
    (void)opaque;
    static const char *const models[] = {"fraud", "churn"};
    for (long i = 0; i < 2; i++) {
        if (strlen(models[i]) == len && memcmp(models[i], name, len) == 0) {
            return i;
        }
    }
    return -1;
}

static const char *const model_names[] = {"fraud", "churn"};

static void decode_under(const char *id, const uint8_t *data, size_t size)
{
    struct dw_join j;
    dw_join_init(&j);
    size_t id_len = strlen(id);
    int rc = dw_join_rec_decode(&j, id, id_len, data, size, model_idx_of, NULL);
    check(rc >= -1 && rc <= 1, "unknown result");
    if (rc != 0) {
        check(j.count == 0 && j.n_dirty == 0, "a dropped or refused record was kept");
        dw_join_free(&j);
        return;
    }
    if (j.n_done) {
        /* A joined record of the older layout: moved to the joined set, to be appended there
         * and deleted from the hash by the next checkpoint. */
        const struct dw_join_done *d = dw_join_done_find(&j, id, id_len);
        check(d != NULL && j.count == 0 && j.n_done == 1 && dw_join_n_new(&j) == 1 &&
                  j.n_deleted == 1 && j.n_dirty == 0,
              "a joined record did not move to the joined set");
        check(!(d->flags & ~(DW_JREC_LATE | DW_JREC_LABEL_NUM)) && d->model_idx < 2,
              "a joined entry with unknown flags or model");
        dw_join_free(&j);
        return;
    }
    struct dw_join_rec *rec = dw_join_find(&j, id, id_len);
    check(rec != NULL && j.count == 1 && j.n_dirty == 0, "the record is not there, or dirty");
    check(dw_join_rec_decode(&j, id, id_len, data, size, model_idx_of, NULL) == -1,
          "the same id accepted twice");
    /* a parked label of an unknown model is kept under index 0 (labels have no model) */
    const char *model = model_names[rec->model_idx];
    struct dw_buf b1, b2;
    dw_buf_init(&b1);
    dw_buf_init(&b2);
    dw_join_rec_encode(rec, model, &b1);
    struct dw_join k;
    dw_join_init(&k);
    check(dw_join_rec_decode(&k, id, id_len, b1.data, b1.len, model_idx_of, NULL) == 0,
          "a re-encoded record is refused");
    dw_join_rec_encode(dw_join_find(&k, id, id_len), model, &b2);
    check(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0, "re-encoding differs");
    dw_buf_free(&b1);
    dw_buf_free(&b2);
    dw_join_free(&k);
    dw_join_free(&j);
}

/* The same bytes as a bucket of the joined set (dw_join_bucket_load): refused whole, or loaded
 * with at most one entry per 21 bytes, and written back to bytes that load the same. */
static void load_bucket(const uint8_t *data, size_t size)
{
    struct dw_join j;
    dw_join_init(&j);
    int rc = dw_join_bucket_load(&j, 1, 120000, 60000, data, size, 150000);
    check(rc == 0 || rc == -1, "unknown result");
    if (rc != 0) {
        check(j.n_done == 0 && j.n_buckets == 0, "a refused bucket added entries");
        dw_join_free(&j);
        return;
    }
    check(j.n_buckets == 1 && j.n_done <= size / DW_JOIN_DONE_BYTES && dw_join_n_new(&j) == 0,
          "a bucket loaded more than it holds");
    struct dw_buf b;
    dw_buf_init(&b);
    dw_join_bucket_encode(&j, &j.buckets[0], &b);
    struct dw_join k;
    dw_join_init(&k);
    check(dw_join_bucket_load(&k, 1, 120000, 60000, b.data, b.len, 150000) == 0 &&
              k.n_done == j.n_done,
          "a re-encoded bucket loads differently");
    dw_buf_free(&b);
    dw_join_free(&k);
    dw_join_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_bucket(data, size);
    decode_under("p-1", data, size);
    decode_under(LONG_ID, data, size);
    return 0;
}

static void write_rec(const char *dir, const char *name, const struct dw_join_rec *r,
                      const char *model)
{
    struct dw_buf b;
    dw_buf_init(&b);
    dw_join_rec_encode(r, model, &b);
    dw_fuzz_write_seed(dir, name, b.data, b.len);
    dw_buf_free(&b);
}

/* Record strings are interned (the encoder reads their length from the table's header). */
static const char *intern(struct dw_strtab *t, const char *s)
{
    return dw_strtab_ref(t, s, strlen(s), 0);
}

void dw_fuzz_seeds(const char *dir)
{
    struct dw_strtab tab;
    memset(&tab, 0, sizeof(tab));
    struct dw_join_rec r;
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_PRED;
    r.flags = DW_JREC_SCORE;
    r.ts_ms = 1794999900123LL;
    r.win_ms = 1794999900000LL;
    r.score = 0.91;
    r.version = intern(&tab, "1.4.0");
    r.pred_cls = intern(&tab, "1");
    r.label_cls = NULL;
    write_rec(dir, "pred", &r, "fraud");

    r.flags = DW_JREC_SCORE | DW_JREC_PRED_NUM;
    r.pred_num = 1.0;
    write_rec(dir, "pred_regression", &r, "churn");

    struct dw_join_dup dups[3] = {{1794999800001LL, 1}, {INT64_MIN, 0}, {-5, 2}};
    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_LABEL;
    r.flags = DW_JREC_LABEL_NUM;
    r.ts_ms = 1794999900000LL;
    r.label_wm = 1794999800000LL;
    r.label_num = 2.5;
    r.dups = dups;
    r.n_dups = 3;
    r.parked_label = intern(&tab, "2.5");
    write_rec(dir, "parked_label", &r, "churn");

    memset(&r, 0, sizeof(r));
    r.state = DW_JOIN_DONE;
    r.flags = DW_JREC_SCORE | DW_JREC_LATE;
    r.ts_ms = 5;
    r.win_ms = 0;
    r.score = 1.0;
    r.version = intern(&tab, "");
    r.pred_cls = intern(&tab, "0");
    r.label_cls = intern(&tab, "1");
    write_rec(dir, "done_late", &r, "fraud");
    write_rec(dir, "unknown_model", &r, "retired");

    r.flags = DW_JREC_SCORE | DW_JREC_PRED_NUM | DW_JREC_LABEL_NUM;
    r.pred_num = 3.0;
    r.label_num = -3.0;
    write_rec(dir, "done_regression", &r, "churn");
    dw_strtab_free(&tab);

    /* A bucket of the joined set: two entries, one expired at load (before 150 s). */
    struct dw_join_bucket bk = {.start_ms = 120000, .span_ms = 60000, .model_idx = 1};
    struct dw_join_done d1 = {.fp = 0x1234, .ts_ms = 179999, .label = 9, .flags = DW_JREC_LATE};
    struct dw_join_done d2 = {.fp = 0x5678, .ts_ms = 120000, .flags = DW_JREC_LABEL_NUM};
    struct dw_buf b;
    dw_buf_init(&b);
    dw_join_done_encode(&d1, &bk, &b);
    dw_join_done_encode(&d2, &bk, &b);
    dw_fuzz_write_seed(dir, "bucket", b.data, b.len);
    dw_buf_free(&b);
}
