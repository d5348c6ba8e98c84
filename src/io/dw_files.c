/*
 * dw_files.c - lines, CSV rows, formats, JSON pointers and type inference (see dw_files.h).
 *
 * Why these choices:
 * - zlib's gz* functions read plain files unchanged, so one reader serves `x.jsonl` and
 *   `x.jsonl.gz` without sniffing magic bytes ourselves. gzgets reads into a buffer that
 *   doubles until the line fits: replay inputs may hold 1 MiB messages on purpose (oversize
 *   tests), and the bound (DW_FILES_MAX_LINE) keeps a file without newlines from taking all
 *   memory.
 * - CSV is parsed by libcsv (quoting, escaped quotes, quoted newlines), fed one line at a time
 *   so that every row knows the line it started on, for error messages that name the line.
 * - Type inference counts per name how many values were seen and how many were not numbers, in
 *   a small open-addressing hash (flat JSON rows look names up on every value).
 */
#include "driftwatch/io/dw_files.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_eval.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define FILES_GZ_BUFFER (128u * 1024) /* bytes, zlib's input buffer */
#define FILES_LINE_INIT 4096          /* bytes, first line buffer */
#define FILES_SNIFF 4096              /* bytes read to detect a format by content */

struct dw_files {
    gzFile gz;
    char *path;
    char *buf;
    size_t cap;
    uint64_t line_no;
};

struct dw_files *dw_files_open(const char *path, char *errstr, size_t errstr_size)
{
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        dw_err(errstr, errstr_size, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        return NULL;
    }
    gzbuffer(gz, FILES_GZ_BUFFER);
    struct dw_files *f = dw_calloc(1, sizeof(*f));
    f->gz = gz;
    f->path = dw_strdup(path);
    f->cap = FILES_LINE_INIT;
    f->buf = dw_malloc(f->cap);
    return f;
}

int dw_files_read_line(struct dw_files *f, char **line, size_t *len, char *errstr,
                       size_t errstr_size)
{
    size_t n = 0;
    for (;;) {
        if (f->cap - n < 2) {
            if (f->cap >= DW_FILES_MAX_LINE) {
                return dw_err(errstr, errstr_size, "%s:%llu: line longer than %u bytes", f->path,
                              (unsigned long long)(f->line_no + 1), DW_FILES_MAX_LINE);
            }
            f->cap *= 2;
            f->buf = dw_realloc(f->buf, f->cap);
        }
        char *got = gzgets(f->gz, f->buf + n, (int)DW_MIN(f->cap - n, (size_t)INT32_MAX));
        if (!got) {
            int zerr = 0;
            const char *msg = gzerror(f->gz, &zerr);
            if (zerr != Z_OK) {
                return dw_err(errstr, errstr_size, "%s:%llu: %s", f->path,
                              (unsigned long long)(f->line_no + 1),
                              zerr == Z_ERRNO ? strerror(errno) : msg);
            }
            if (n == 0) {
                return 0; /* end of file */
            }
            break; /* last line without a newline */
        }
        n += strlen(f->buf + n);
        if (n > 0 && f->buf[n - 1] == '\n') {
            break;
        }
        if (gzeof(f->gz)) {
            break;
        }
    }
    if (n > 0 && f->buf[n - 1] == '\n') {
        n--;
        if (n > 0 && f->buf[n - 1] == '\r') {
            n--;
        }
    }
    f->buf[n] = '\0';
    f->line_no++;
    *line = f->buf;
    *len = n;
    return 1;
}

uint64_t dw_files_line_no(const struct dw_files *f)
{
    return f->line_no;
}

const char *dw_files_path(const struct dw_files *f)
{
    return f->path;
}

void dw_files_close(struct dw_files *f)
{
    if (!f) {
        return;
    }
    gzclose(f->gz);
    free(f->buf);
    free(f->path);
    free(f);
}

/* ---- formats ---- */

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

int dw_files_detect(const char *path, enum dw_files_format *fmt, char *errstr, size_t errstr_size)
{
    size_t n = strlen(path);
    if (ends_with(path, n, ".gz")) {
        n -= 3;
    }
    if (ends_with(path, n, ".csv")) {
        *fmt = DW_FILES_CSV;
        return 0;
    }
    if (ends_with(path, n, ".jsonl") || ends_with(path, n, ".json") ||
        ends_with(path, n, ".ndjson")) {
        *fmt = DW_FILES_JSONL;
        return 0;
    }
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        return dw_err(errstr, errstr_size, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    }
    char buf[FILES_SNIFF];
    int got = gzread(gz, buf, sizeof(buf));
    gzclose(gz);
    for (int i = 0; i < got; i++) {
        if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n') {
            continue;
        }
        *fmt = buf[i] == '{' ? DW_FILES_JSONL : DW_FILES_CSV;
        return 0;
    }
    return dw_err(errstr, errstr_size, "%s: %s", path,
                  got < 0 ? "cannot read" : "empty file: cannot tell CSV from JSON lines");
}

/* ---- CSV ---- */

struct csv_row {
    char **fields;
    size_t n;
    uint64_t line;
};

struct dw_files_csv {
    struct dw_files *lines;
    struct csv_parser parser;
    int eof;
    /* the row being built */
    char **cur;
    size_t n_cur, cap_cur;
    uint64_t cur_line;
    /* completed rows not handed out yet (a line may end more than one, e.g. bare CRs) */
    struct csv_row *done;
    size_t n_done, cap_done, next_done;
    struct csv_row out; /* the row last returned (freed on the next call) */
};

static void row_free(struct csv_row *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->fields[i]);
    }
    free(r->fields);
    memset(r, 0, sizeof(*r));
}

static void csv_on_field(void *s, size_t len, void *data)
{
    struct dw_files_csv *c = data;
    if (c->n_cur == 0) {
        c->cur_line = dw_files_line_no(c->lines);
    }
    if (c->n_cur == c->cap_cur) {
        c->cap_cur = c->cap_cur ? c->cap_cur * 2 : 16;
        c->cur = dw_realloc(c->cur, c->cap_cur * sizeof(*c->cur));
    }
    c->cur[c->n_cur++] = s ? dw_strndup(s, len) : dw_strdup("");
}

static void csv_on_row(int term, void *data)
{
    struct dw_files_csv *c = data;
    (void)term;
    if (c->n_done == c->cap_done) {
        c->cap_done = c->cap_done ? c->cap_done * 2 : 4;
        c->done = dw_realloc(c->done, c->cap_done * sizeof(*c->done));
    }
    struct csv_row *r = &c->done[c->n_done++];
    r->fields = c->cur;
    r->n = c->n_cur;
    r->line = c->n_cur ? c->cur_line : dw_files_line_no(c->lines);
    c->cur = NULL;
    c->n_cur = c->cap_cur = 0;
}

struct dw_files_csv *dw_files_csv_open(const char *path, char *errstr, size_t errstr_size)
{
    struct dw_files *lines = dw_files_open(path, errstr, errstr_size);
    if (!lines) {
        return NULL;
    }
    struct dw_files_csv *c = dw_calloc(1, sizeof(*c));
    c->lines = lines;
    if (csv_init(&c->parser, CSV_APPEND_NULL) != 0) {
        dw_files_close(lines);
        free(c);
        dw_err(errstr, errstr_size, "%s: cannot initialise the CSV parser", path);
        return NULL;
    }
    return c;
}

int dw_files_csv_next(struct dw_files_csv *c, char ***fields, size_t *n, uint64_t *line,
                      char *errstr, size_t errstr_size)
{
    row_free(&c->out);
    while (c->next_done == c->n_done) {
        c->n_done = c->next_done = 0;
        if (c->eof) {
            return 0;
        }
        char *text = NULL; /* set when rc > 0 (GCC cannot see it with a PGO profile) */
        size_t len = 0;
        int rc = dw_files_read_line(c->lines, &text, &len, errstr, errstr_size);
        if (rc < 0) {
            return -1;
        }
        if (rc == 0) {
            c->eof = 1;
            csv_fini(&c->parser, csv_on_field, csv_on_row, c);
            if (c->n_cur > 0) {
                csv_on_row(-1, c);
            }
            continue;
        }
        text[len] = '\n'; /* the reader's buffer holds the NUL slot: give libcsv the newline */
        size_t used = csv_parse(&c->parser, text, len + 1, csv_on_field, csv_on_row, c);
        text[len] = '\0';
        if (used != len + 1) {
            return dw_err(errstr, errstr_size, "%s:%llu: %s", dw_files_path(c->lines),
                          (unsigned long long)dw_files_line_no(c->lines),
                          csv_strerror(csv_error(&c->parser)));
        }
    }
    c->out = c->done[c->next_done++];
    *fields = c->out.fields;
    *n = c->out.n;
    *line = c->out.line;
    return 1;
}

void dw_files_csv_close(struct dw_files_csv *c)
{
    if (!c) {
        return;
    }
    row_free(&c->out);
    for (size_t i = c->next_done; i < c->n_done; i++) {
        row_free(&c->done[i]);
    }
    free(c->done);
    for (size_t i = 0; i < c->n_cur; i++) {
        free(c->cur[i]);
    }
    free(c->cur);
    csv_free(&c->parser);
    dw_files_close(c->lines);
    free(c);
}

/* ---- values ---- */

int dw_files_parse_number(const char *s, size_t len, double *out)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    if (len == 0 || len > 511) {
        return -1;
    }
    char buf[512];
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        /* strtod also reads hexadecimal, "inf" and "nan": only decimal digits count here. */
        char ch = buf[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' ||
              ch == '-')) {
            return -1;
        }
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) {
        return -1;
    }
    *out = v;
    return 0;
}

json_t *dw_files_pointer(json_t *doc, const char *ptr)
{
    if (!ptr || *ptr == '\0') {
        return doc;
    }
    if (*ptr != '/') {
        return NULL;
    }
    json_t *cur = doc;
    const char *p = ptr;
    char tok[1024];
    while (cur && *p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0') {
                    ch = '~';
                } else if (*p == '1') {
                    ch = '/';
                } else {
                    return NULL;
                }
                p++;
            }
            if (n + 1 >= sizeof(tok)) {
                return NULL;
            }
            tok[n++] = ch;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, n);
        } else if (json_is_array(cur)) {
            char *end = NULL;
            errno = 0;
            long long idx = strtoll(tok, &end, 10);
            if (n == 0 || *end != '\0' || errno || idx < 0 || (n > 1 && tok[0] == '0')) {
                return NULL;
            }
            cur = json_array_get(cur, (size_t)idx);
        } else {
            return NULL;
        }
    }
    return cur;
}

/* ---- type inference ---- */

void dw_files_tally_init(struct dw_files_tally *t)
{
    memset(t, 0, sizeof(*t));
}

void dw_files_tally_free(struct dw_files_tally *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->names[i]);
    }
    free(t->names);
    free(t->values);
    free(t->texts);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static void tally_rehash(struct dw_files_tally *t)
{
    free(t->slots);
    t->n_slots = t->n_slots ? t->n_slots * 2 : 64;
    t->slots = dw_calloc(t->n_slots, sizeof(*t->slots));
    for (size_t i = 0; i < t->n; i++) {
        size_t s = dw_hash64(t->names[i], strlen(t->names[i])) & (t->n_slots - 1);
        while (t->slots[s]) {
            s = (s + 1) & (t->n_slots - 1);
        }
        t->slots[s] = (uint32_t)(i + 1);
    }
}

/* The slot of name in t's hash: the one holding it, or the empty one ending its probe run. */
static size_t tally_probe(const struct dw_files_tally *t, const char *name, size_t len)
{
    size_t s = dw_hash64(name, len) & (t->n_slots - 1);
    while (t->slots[s]) {
        size_t i = t->slots[s] - 1;
        if (dw_str_is(t->names[i], name, len)) {
            break;
        }
        s = (s + 1) & (t->n_slots - 1);
    }
    return s;
}

long dw_files_tally_find(const struct dw_files_tally *t, const char *name, size_t len)
{
    if (t->n_slots == 0) {
        return -1;
    }
    size_t s = tally_probe(t, name, len);
    return t->slots[s] ? (long)t->slots[s] - 1 : -1;
}

size_t dw_files_tally_index(struct dw_files_tally *t, const char *name, size_t len)
{
    if ((t->n + 1) * 2 > t->n_slots) {
        tally_rehash(t);
    }
    size_t s = tally_probe(t, name, len);
    if (t->slots[s]) {
        return t->slots[s] - 1;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->names = dw_realloc(t->names, t->cap * sizeof(*t->names));
        t->values = dw_realloc(t->values, t->cap * sizeof(*t->values));
        t->texts = dw_realloc(t->texts, t->cap * sizeof(*t->texts));
    }
    t->names[t->n] = dw_strndup(name, len);
    t->values[t->n] = 0;
    t->texts[t->n] = 0;
    t->slots[s] = (uint32_t)(t->n + 1);
    return t->n++;
}

void dw_files_tally_add(struct dw_files_tally *t, size_t idx, enum dw_files_kind kind)
{
    dw_assert(idx < t->n);
    if (kind == DW_FILES_MISSING) {
        return;
    }
    t->values[idx]++;
    t->texts[idx] += (uint64_t)(kind == DW_FILES_TEXT);
}

enum dw_files_kind dw_files_json_kind(const json_t *v)
{
    if (!v || json_is_null(v)) {
        return DW_FILES_MISSING;
    }
    return json_is_number(v) ? DW_FILES_NUMBER : DW_FILES_TEXT;
}

int dw_files_list_has(const char *list, const char *name)
{
    if (!list) {
        return 0;
    }
    size_t n = strlen(name);
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) {
            return 1;
        }
        if (!comma) {
            return 0;
        }
        p = comma + 1;
    }
}

/* Every element of a comma-separated list must name a tallied column. */
static int list_check(const struct dw_files_tally *t, const char *list, const char *what,
                      char *errstr, size_t errstr_size)
{
    if (!list) {
        return 0;
    }
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int found = 0;
        for (size_t i = 0; i < t->n && !found; i++) {
            found = dw_str_is(t->names[i], p, len);
        }
        if (!found) {
            return dw_err(errstr, errstr_size, "%s: no column or feature named '%.*s'", what,
                          (int)DW_MIN(len, (size_t)200), p);
        }
        if (!comma) {
            return 0;
        }
        p = comma + 1;
    }
}

int dw_files_tally_features(const struct dw_files_tally *t, const char *categorical,
                            const char *numeric, struct dw_feature_cfg **out, size_t *n_out,
                            char *errstr, size_t errstr_size)
{
    if (list_check(t, categorical, "--categorical", errstr, errstr_size) != 0 ||
        list_check(t, numeric, "--numeric", errstr, errstr_size) != 0) {
        return -1;
    }
    struct dw_feature_cfg *feats = dw_calloc(t->n ? t->n : 1, sizeof(*feats));
    for (size_t i = 0; i < t->n; i++) {
        int cat = dw_files_list_has(categorical, t->names[i]);
        int num = dw_files_list_has(numeric, t->names[i]);
        if (cat && num) {
            dw_err(errstr, errstr_size, "'%s' is in both --categorical and --numeric", t->names[i]);
            dw_files_features_free(feats, i);
            return -1;
        }
        feats[i].name = dw_strdup(t->names[i]);
        if (cat) {
            feats[i].type = DW_FEATURE_CATEGORICAL;
        } else if (num) {
            feats[i].type = DW_FEATURE_NUMERIC;
        } else {
            feats[i].type = t->texts[i] == 0 ? DW_FEATURE_NUMERIC : DW_FEATURE_CATEGORICAL;
        }
    }
    *out = feats;
    *n_out = t->n;
    return 0;
}

void dw_files_features_free(struct dw_feature_cfg *feats, size_t n)
{
    if (!feats) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(feats[i].name);
    }
    free(feats);
}

/* ---- profiles ---- */

json_t *dw_files_profile_doc(const char *path, char *errstr, size_t errstr_size)
{
    if (strncmp(path, "file://", 7) == 0) {
        path += 7;
    }
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc && jerr.line < 1) {
        dw_err(errstr, errstr_size, "%s", jerr.text); /* names the file */
        return NULL;
    }
    if (!doc) {
        dw_err(errstr, errstr_size, "%s:%d: column %d: %s", path, jerr.line, jerr.column,
               jerr.text);
        return NULL;
    }
    if (!json_is_string(json_object_get(doc, "model")) ||
        !json_is_object(json_object_get(doc, "features"))) {
        json_decref(doc);
        dw_err(errstr, errstr_size, "%s: not a profile (no \"model\" or \"features\")", path);
        return NULL;
    }
    return doc;
}

struct dw_ref *dw_files_load_profile(const struct dw_model_cfg *m, const char *path, char *errstr,
                                     size_t errstr_size)
{
    json_t *doc = dw_files_profile_doc(path, errstr, errstr_size);
    if (!doc) {
        return NULL;
    }
    const char *model = json_string_value(json_object_get(doc, "model"));
    char err[512];
    struct dw_ref *ref = NULL;
    if (strcmp(model, m->name) != 0) {
        dw_err(errstr, errstr_size, "%s: a profile of model '%s', not of model '%s'", path, model,
               m->name);
    } else if (dw_ref_profile_matches(m, doc, err, sizeof(err)) != 0 ||
               !(ref = dw_ref_from_json(m, doc, err, sizeof(err)))) {
        dw_err(errstr, errstr_size, "%s: %s", path, err);
    } else {
        ref->source = DW_REF_SOURCE_PROFILE;
        free(ref->profile);
        ref->profile = dw_strdup(strncmp(path, "file://", 7) == 0 ? path + 7 : path);
    }
    json_decref(doc);
    return ref;
}

int dw_files_load_profiles(const struct dw_config *cfg, struct dw_ref **refs, char *errstr,
                           size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct dw_model_cfg *m = &cfg->models[i];
        char err[1024];
        if (m->reference.source != DW_REF_SOURCE_PROFILE) {
            continue;
        }
        refs[i] = dw_files_load_profile(m, m->reference.profile, err, sizeof(err));
        if (!refs[i]) {
            return dw_err(errstr, errstr_size, "models.%s.reference.profile: %s", m->name, err);
        }
    }
    return 0;
}
