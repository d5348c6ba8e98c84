/*
 * dw_decode.c - prediction and label events from raw Kafka payloads.
 *
 * Why it looks like this:
 *
 * - This is the hot path (every message of both topics goes through it), so all the work that
 *   does not depend on the message is done once in dw_decoder_new(): the configured field paths
 *   (JSON pointers, RFC 6901) are split and unescaped into segment arrays, model name lengths
 *   are cached, each model gets a small hash table from feature name to feature index, and the
 *   scratch buffers are allocated up front. One more table holds the first key of every field
 *   pointer: one pass over a message's top-level members (root_index()) then finds them all,
 *   where a search of the members per field cost one pass per field. Each table remembers
 *   which entry each place of the last object held (map_find_at()): a producer writes its keys
 *   in one order, so a key is nearly always found with one comparison and no hash. Once the
 *   buffers have grown to the largest message seen, decoding a message allocates nothing.
 *
 * - Parsing: one pass, parse_value(), checks the message against all of RFC 8259 exactly as
 *   jansson 2.14 does with flags 0 (proven by test_decode_diff.c, which compares both on
 *   hand-written cases, generated events and random mutations) and cuts it into tokens in a
 *   decoder-owned array (doubled when full): separators, numbers, true/false/null and string
 *   escapes (\u with four hex digits, surrogate pairs, no \u0000, no raw byte < 0x20) are
 *   checked; integers must fit in 64 bits and reals must not overflow a double; values nest at
 *   most 2048 deep; exactly one top-level value. Each token records its kind and the index of
 *   the token after its subtree, so that member lookup skips subtrees in O(1). Strings are most
 *   of a message's bytes, so their bodies are tested 8 bytes at a time (one 64-bit word, for
 *   '"', '\\', bytes below 0x20 and bytes above 0x7F at once); only a string with a '\\', a
 *   control byte or a non-ASCII byte goes through check_string_rest(), out of line, which
 *   checks its UTF-8 sequences. No other byte above 0x7F passes the grammar, so a message the
 *   parse accepts is well-formed UTF-8 without a pass of its own over the message (one pass
 *   over 400 bytes was 4 % of a decode); a message it refuses is checked again, all of it, so
 *   that invalid UTF-8 stays the reason whatever else is wrong and the first bad byte is named.
 *   Why not a library: jansson (kept for what driftwatch writes) builds a tree and allocates
 *   per value, 3-5 times slower on events; jsmn (used here until 2026-12-04) only cut tokens, so
 *   its output needed a second walk to check the grammar and a third pass before it to bound
 *   its quadratic walk up the parent links (depth_scan(), still used for errors); Debian 12 has
 *   no yyjson and simdjson is C++ with other rules. One pass doing all three costs 43 % fewer
 *   instructions per message (bench/RESULTS.md, "One pass to parse").
 *
 * - Nesting: arrays and objects deeper than input.max_depth stop the parse (no recursion: an
 *   explicit stack of open containers, JSON_MAX_DEPTH entries), so a deep message costs a
 *   linear pass. An invalid message gets one more, depth_scan(), which decides whether it is
 *   refused as too_deep (whatever else is wrong in it) and names its depth.
 *
 * - Nothing is converted that is not read: a string points into the message unless it has a
 *   backslash, in which case it is unescaped into the decoder's shadow buffer at the same offset
 *   as in the message (an unescaped string is never longer than its escaped form, so strings
 *   never overlap there and unescaping the same token twice is harmless). Integers are
 *   converted when a field asks for them (by hand). A real is converted during the parse when
 *   Clinger's fast path applies (fast_real(): at most 15 significant digits, 10^+-22; most
 *   feature values), because the grammar's walk over its digits reads the significand anyway
 *   and a second walk cost a tenth of a prediction's decode; other reals are converted with
 *   strtod when a field asks for them, except that a real whose leading digit sits at 10^308 or
 *   above is converted during the parse to reject overflow.
 *
 * - Duplicate keys: the last occurrence wins, as in jansson without JSON_REJECT_DUPLICATES.
 *
 * - Non-finite numbers (input.non_finite): Python's json module writes NaN, Infinity and
 *   -Infinity by default, so real services emit them. With "count" (the default) these three
 *   exact tokens are accepted anywhere a value may stand, as kinds of their own
 *   (check_primitive()); a numeric feature reads them as NAN / +-INFINITY
 *   (counted apart by dw_agg.c), a categorical one as their text, and every other field refuses
 *   them as it refuses any value of the wrong type, naming the field. With "reject" nothing of
 *   this runs and the decoder is exactly jansson's RFC 8259 (the differential test pins it).
 *
 * - Classes are compared as text everywhere in driftwatch (docs/contract.md, section 1.4): a
 *   string as it is, a number or boolean as its JSON text. Reals print like Python's repr /
 *   json.dumps (dw_fmt_double()'s shortest digits that round-trip, fixed notation for
 *   1e-4 <= |v| < 1e16, plus ".0" on integral values) so that 1.0 -> "1.0", 0.1 -> "0.1" and
 *   100.0 -> "100.0".
 *
 * - A bad message is never fatal: every check returns a reason code and an errstr naming the
 *   field (or, for invalid JSON, what is wrong and at which byte), and the caller counts it and
 *   sends it to the dead-letter topic.
 *
 * @locality one decoder per consumer thread; a decoder is not thread-safe.
 */
#include "driftwatch/core/dw_decode.h"

#include "driftwatch/core/dw_common.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* bytes; holds the JSON text of any number: an int64 (20 chars) or a real such as
 * "-2.2250738585072014e-308" (24 chars), plus NUL */
#define NUM_TEXT_MAX 32

/* seconds; a numeric timestamp with |v| below this is epoch seconds (1e11 s is the year 5138),
 * at or above it epoch milliseconds (1e11 ms is 1973-03-03) */
#define EPOCH_SECONDS_LIMIT 100000000000LL

/* milliseconds; numeric timestamps beyond +-9e15 ms (about 285,000 years) are rejected, which
 * keeps every later window computation far away from int64 overflow */
#define EPOCH_MS_LIMIT 9.0e15

/* kafka_ts_ms of a message without any clock to bound its event time against (replay) */
#define NO_REFERENCE INT64_MIN

/* bytes; an RFC 3339 text of any accepted event time or Kafka timestamp, with its NUL */
#define TIME_TEXT_MAX 48

/* bytes; at most this much of a message-supplied text (model name, bad timestamp) is quoted in
 * errstr */
#define ERR_QUOTE_MAX 64

/* tokens; the initial token array (a 400-byte event with 15 features has about 40), doubled
 * whenever a message needs more */
#define TOKENS_INITIAL 512

/* levels; the deepest value accepted (the top level is 1), jansson's JSON_PARSER_MAX_DEPTH */
#define JSON_MAX_DEPTH 2048

/* --------------------------------------------------------------------------------------------
 * JSON pointers, compiled once
 * ------------------------------------------------------------------------------------------ */

struct ptr_seg {
    char *key;       /* unescaped ("~1" -> "/", "~0" -> "~"), NUL-terminated */
    size_t len;      /* bytes of key */
    long long index; /* the segment as an array index, or -1 when it is not a valid index */
};

struct json_ptr {
    int used;      /* 0: an optional field switched off by an empty pointer */
    size_t n_segs; /* 0 with used = 1: the whole document */
    struct ptr_seg *segs;
    size_t root_slot; /* n_segs > 0: the decoder's root_keys entry of segs[0] */
};

enum ptr_mode {
    PTR_REQUIRED, /* "" is rejected: the whole document can never be an id, model or class */
    PTR_OPTIONAL, /* "" means the field is not used */
    PTR_DOCUMENT  /* "" means the whole document (features: flat events) */
};

static void ptr_free(struct json_ptr *p)
{
    for (size_t i = 0; i < p->n_segs; i++) {
        free(p->segs[i].key);
    }
    free(p->segs);
    memset(p, 0, sizeof(*p));
}

/* RFC 6901 array index: "0" or digits without a leading zero ("-" and anything else: none). */
static long long seg_index(const char *s, size_t len)
{
    if (len == 0 || len > 18 || (len > 1 && s[0] == '0')) {
        return -1;
    }
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int ptr_compile(struct json_ptr *p, const char *text, enum ptr_mode mode, const char *key,
                       char *errstr, size_t errstr_size)
{
    memset(p, 0, sizeof(*p));
    if (!text || !*text) {
        if (mode == PTR_REQUIRED) {
            return dw_err(errstr, errstr_size, "%s: a JSON pointer is required (e.g. \"/%s\")", key,
                          strrchr(key, '.') ? strrchr(key, '.') + 1 : key);
        }
        p->used = mode == PTR_DOCUMENT;
        return 0;
    }
    if (text[0] != '/') {
        return dw_err(errstr, errstr_size,
                      "%s: \"%s\" is not a JSON pointer (must be empty or start with '/')", key,
                      text);
    }
    size_t n = 0;
    for (const char *c = text; *c; c++) {
        n += *c == '/';
    }
    p->segs = dw_calloc(n, sizeof(*p->segs));
    p->used = 1;
    const char *s = text + 1;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(s, '/');
        size_t raw = end ? (size_t)(end - s) : strlen(s);
        struct ptr_seg *seg = &p->segs[i];
        seg->key = dw_malloc(raw + 1);
        p->n_segs = i + 1;
        size_t o = 0;
        for (size_t k = 0; k < raw; k++) {
            if (s[k] != '~') {
                seg->key[o++] = s[k];
                continue;
            }
            if (k + 1 < raw && s[k + 1] == '0') {
                seg->key[o++] = '~';
            } else if (k + 1 < raw && s[k + 1] == '1') {
                seg->key[o++] = '/';
            } else {
                dw_err(errstr, errstr_size,
                       "%s: \"%s\": '~' must be followed by '0' or '1' (RFC 6901)", key, text);
                goto err;
            }
            k++;
        }
        seg->key[o] = '\0';
        seg->len = o;
        seg->index = seg_index(seg->key, o);
        s += raw + 1;
    }
    return 0;

err:
    ptr_free(p);
    return -1;
}

size_t dw_decode_real_text(double v, char *buf, size_t size)
{
    size_t n = dw_fmt_double(v, buf, size);
    if (strpbrk(buf, ".eIN") == NULL && n + 2 < size) {
        memcpy(buf + n, ".0", 3); /* integral in fixed notation: "1.0" as Python writes it */
        n += 2;
    }
    return n;
}

/* --------------------------------------------------------------------------------------------
 * Decoder
 * ------------------------------------------------------------------------------------------ */

/* what a token is, decided by doc_check(); JV_NAN, JV_PINF and JV_NINF are the bare tokens
 * NaN, Infinity and -Infinity, which exist only with input.non_finite = count */
enum jv_kind {
    JV_NULL,
    JV_FALSE,
    JV_TRUE,
    JV_INT,
    JV_REAL,
    JV_STR,
    JV_OBJ,
    JV_ARR,
    JV_NAN,
    JV_PINF,
    JV_NINF
};

/* a value or an object key of the current message: filled by parse_value() */
struct tok {
    int start;    /* array, object, number, literal: its first byte; string: after its '"' */
    int end;      /* array, object, number, literal: the byte after it; string: its last '"' */
    int next;     /* index of the first token after this value's subtree */
    uint8_t kind; /* enum jv_kind */
    uint8_t esc;  /* a string with a backslash: unescape before use */
    double num;   /* a real's value when check_number() converted it (the fast path), else NAN */
};

/* places of an object's members whose last key is remembered (map_find_at()) */
#define MAP_AT 32

/* name -> entry index (a model's features, the top-level keys of the field pointers), open
 * addressing with linear probing; names are borrowed */
struct name_map {
    size_t n;          /* entries added */
    uint32_t mask;     /* number of slots - 1; slots is a power of two >= 2 * entries */
    int *slot;         /* entry index, or -1 for an empty slot */
    uint64_t *head;    /* per entry: name_head() of its name */
    uint64_t *tail;    /* per entry: name_tail() of its name */
    size_t *name_len;  /* per entry: bytes of name */
    const char **name; /* per entry */
    size_t *alias;     /* per entry: the first entry with the same name (usually itself) */
    int at[MAP_AT];    /* the entry the key at each place of the last object held, or -1 */
};

struct dw_decoder {
    const struct dw_config *cfg; /* borrowed; must outlive the decoder, unchanged */
    struct json_ptr p_id;
    struct json_ptr p_model;
    struct json_ptr p_version;
    struct json_ptr p_ts;
    struct json_ptr p_features;
    struct json_ptr p_pred;
    struct json_ptr p_score;
    struct json_ptr p_latency;
    struct json_ptr p_status;
    struct json_ptr p_label_id;
    struct json_ptr p_label;
    struct json_ptr p_label_ts;
    size_t *model_name_len;    /* strlen(cfg->models[i].name) */
    struct name_map *maps;     /* per model: its features */
    struct name_map root_keys; /* the first segments of all field pointers */
    int *root_val;             /* per root_keys entry: its member's value in the current message */
    size_t max_features;
    int *feat_tok; /* max_features: the value token of each feature in the current message */

    /* the current document (msg == NULL: none) */
    const char *msg;
    size_t msg_len;
    struct tok *toks; /* tok_cap tokens, n_toks used */
    unsigned int tok_cap;
    int n_toks;
    int *open;    /* JSON_MAX_DEPTH: parse_value()'s open arrays and objects */
    char *shadow; /* shadow_cap >= msg_len + 1 bytes: unescaped strings, number copies */
    size_t shadow_cap;

    char id_buf[NUM_TEXT_MAX]; /* an integer id as decimal text */
    char version_buf[NUM_TEXT_MAX];
    char *feat_text; /* max_features * NUM_TEXT_MAX: categorical numbers as text */
};

/* a name's first 8 bytes as a word (a shorter name zero-padded): with the length, it is the
 * whole of a name of up to 8 bytes, nearly every field and feature name; avail >= len bytes
 * may be read from s (8 or more: one load) */
static inline uint64_t name_head(const char *s, size_t len, size_t avail)
{
    if (avail >= 8) {
        return dw_load_le(s, 8) & (len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1);
    }
    return dw_load_le(s, len);
}

/* a name's last 8 bytes as a word when it has more than 8 (overlapping the head below 16),
 * else 0: with the head and the length, the whole of a name of up to 16 bytes */
static inline uint64_t name_tail(const char *s, size_t len)
{
    return len > 8 ? dw_load_le(s + len - 8, 8) : 0;
}

/* the head with the length (in its top byte, free below 8 bytes) and the tail, mixed once: the
 * bytes between them (names over 16 bytes) are compared, not hashed */
static inline uint32_t name_hash(size_t len, uint64_t head, uint64_t tail)
{
    return (uint32_t)dw_fmix64(head ^ (uint64_t)len << 56 ^ tail * 0x9E3779B97F4A7C15ULL);
}

static void map_free(struct name_map *m)
{
    free(m->alias);
    free(m->name);
    free(m->name_len);
    free(m->head);
    free(m->tail);
    free(m->slot);
    memset(m, 0, sizeof(*m));
}

/* room for n names (none yet) */
static void map_init(struct name_map *m, size_t n)
{
    memset(m, 0, sizeof(*m));
    size_t slots = 4;
    while (slots < 2 * n) {
        slots *= 2;
    }
    m->mask = (uint32_t)(slots - 1);
    m->slot = dw_malloc(slots * sizeof(*m->slot));
    for (size_t i = 0; i < slots; i++) {
        m->slot[i] = -1;
    }
    m->head = dw_calloc(DW_MAX(n, (size_t)1), sizeof(*m->head));
    m->tail = dw_calloc(DW_MAX(n, (size_t)1), sizeof(*m->tail));
    m->name_len = dw_calloc(DW_MAX(n, (size_t)1), sizeof(*m->name_len));
    m->name = dw_calloc(DW_MAX(n, (size_t)1), sizeof(*m->name));
    m->alias = dw_calloc(DW_MAX(n, (size_t)1), sizeof(*m->alias));
    for (size_t i = 0; i < MAP_AT; i++) {
        m->at[i] = -1;
    }
}

/* entry f is called s (head and tail: its name_head() and name_tail()) */
static inline int entry_is(const struct name_map *m, int f, const char *s, size_t len,
                           uint64_t head, uint64_t tail)
{
    return m->name_len[f] == len && m->head[f] == head && m->tail[f] == tail &&
           (len <= 16 || memcmp(m->name[f] + 8, s + 8, len - 16) == 0);
}

/* map_find() with the name's head and tail */
static inline int map_lookup(const struct name_map *m, const char *s, size_t len, uint64_t head,
                             uint64_t tail)
{
    for (uint32_t i = name_hash(len, head, tail) & m->mask;; i = (i + 1) & m->mask) {
        int f = m->slot[i];
        if (f < 0 || entry_is(m, f, s, len, head, tail)) {
            return f;
        }
    }
}

/* @returns the entry called s (the first one added under that name), or -1; avail >= len bytes
 * may be read from s */
static inline int map_find(const struct name_map *m, const char *s, size_t len, size_t avail)
{
    return map_lookup(m, s, len, name_head(s, len, avail), name_tail(s, len));
}

/*
 * map_find() of the key at place `at` of an object, trying first the entry the key at that place
 * of the last object had: a service writes its events' keys in the same order every time, so
 * that nearly every key is found without its hash and probe.
 */
static inline int map_find_at(struct name_map *m, size_t at, const char *s, size_t len,
                              size_t avail)
{
    uint64_t head = name_head(s, len, avail);
    uint64_t tail = name_tail(s, len);
    if (at >= MAP_AT) {
        return map_lookup(m, s, len, head, tail);
    }
    int f = m->at[at];
    if (f < 0 || !entry_is(m, f, s, len, head, tail)) {
        f = map_lookup(m, s, len, head, tail);
        m->at[at] = f;
    }
    return f;
}

/* Adds the next entry (of the n given to map_init()); @returns its alias: the first entry with
 * the same name, itself unless the name was added before */
static size_t map_add(struct name_map *m, const char *name, size_t len)
{
    size_t e = m->n++;
    m->name[e] = name;
    m->name_len[e] = len;
    m->head[e] = name_head(name, len, len);
    m->tail[e] = name_tail(name, len);
    int first = map_find(m, name, len, len);
    if (first >= 0) {
        m->alias[e] = (size_t)first; /* a repeated name reads the same key */
        return m->alias[e];
    }
    m->alias[e] = e;
    uint32_t i = name_hash(len, m->head[e], m->tail[e]) & m->mask;
    while (m->slot[i] >= 0) {
        i = (i + 1) & m->mask;
    }
    m->slot[i] = (int)e;
    return e;
}

const char *dw_bad_reason_name(enum dw_bad_reason r)
{
    static const char *const names[DW_BAD__COUNT] = {
        [DW_BAD_NONE] = "none",
        [DW_BAD_TOO_LARGE] = "too_large",
        [DW_BAD_UTF8] = "invalid_utf8",
        [DW_BAD_TOO_DEEP] = "too_deep",
        [DW_BAD_JSON] = "invalid_json",
        [DW_BAD_NOT_OBJECT] = "not_object",
        [DW_BAD_MISSING_ID] = "missing_id",
        [DW_BAD_MISSING_FIELD] = "missing_field",
        [DW_BAD_WRONG_TYPE] = "wrong_type",
        [DW_BAD_UNKNOWN_MODEL] = "unknown_model",
        [DW_BAD_TIMESTAMP] = "bad_timestamp",
        [DW_BAD_TIME_RANGE] = "timestamp_out_of_range",
        [DW_BAD_TOO_MANY_CLASSES] = "too_many_classes",
        [DW_BAD_TOO_MANY_VERSIONS] = "too_many_versions",
        [DW_BAD_STATUS] = "bad_status",
    };
    if ((int)r < 0 || r >= DW_BAD__COUNT) {
        return "unknown";
    }
    return names[r];
}

void dw_decoder_destroy(struct dw_decoder *dec)
{
    if (!dec) {
        return;
    }
    free(dec->shadow);
    free(dec->open);
    free(dec->toks);
    free(dec->feat_text);
    free(dec->feat_tok);
    if (dec->maps) {
        for (size_t m = 0; m < dec->cfg->n_models; m++) {
            map_free(&dec->maps[m]);
        }
        free(dec->maps);
    }
    map_free(&dec->root_keys);
    free(dec->root_val);
    free(dec->model_name_len);
    ptr_free(&dec->p_label_ts);
    ptr_free(&dec->p_label);
    ptr_free(&dec->p_label_id);
    ptr_free(&dec->p_status);
    ptr_free(&dec->p_latency);
    ptr_free(&dec->p_score);
    ptr_free(&dec->p_pred);
    ptr_free(&dec->p_features);
    ptr_free(&dec->p_ts);
    ptr_free(&dec->p_version);
    ptr_free(&dec->p_model);
    ptr_free(&dec->p_id);
    free(dec);
}

struct dw_decoder *dw_decoder_new(const struct dw_config *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg) {
        dw_err(errstr, errstr_size, "decoder: no configuration");
        return NULL;
    }
    struct dw_decoder *dec = dw_calloc(1, sizeof(*dec));
    dec->cfg = cfg;
    const struct {
        struct json_ptr *p;
        const char *text;
        enum ptr_mode mode;
        const char *key;
    } ptrs[] = {
        {&dec->p_id, cfg->field_prediction_id, PTR_REQUIRED, "input.fields.prediction_id"},
        {&dec->p_model, cfg->field_model, PTR_REQUIRED, "input.fields.model"},
        {&dec->p_version, cfg->field_model_version, PTR_OPTIONAL, "input.fields.model_version"},
        {&dec->p_ts, cfg->field_timestamp, PTR_OPTIONAL, "input.fields.timestamp"},
        {&dec->p_features, cfg->field_features, PTR_DOCUMENT, "input.fields.features"},
        {&dec->p_pred, cfg->field_prediction, PTR_REQUIRED, "input.fields.prediction"},
        {&dec->p_score, cfg->field_score, PTR_OPTIONAL, "input.fields.score"},
        {&dec->p_latency, cfg->field_latency_ms, PTR_OPTIONAL, "input.fields.latency_ms"},
        {&dec->p_status, cfg->field_status, PTR_OPTIONAL, "input.fields.status"},
        {&dec->p_label_id, cfg->field_label_id, PTR_REQUIRED, "input.fields.label_id"},
        {&dec->p_label, cfg->field_label, PTR_REQUIRED, "input.fields.label"},
        {&dec->p_label_ts, cfg->field_label_timestamp, PTR_OPTIONAL,
         "input.fields.label_timestamp"},
    };
    for (size_t i = 0; i < DW_ARRAY_SIZE(ptrs); i++) {
        if (ptr_compile(ptrs[i].p, ptrs[i].text, ptrs[i].mode, ptrs[i].key, errstr, errstr_size) !=
            0) {
            goto err;
        }
    }
    dec->model_name_len = dw_calloc(DW_MAX(cfg->n_models, (size_t)1), sizeof(size_t));
    for (size_t m = 0; m < cfg->n_models; m++) {
        const struct dw_model_cfg *model = &cfg->models[m];
        if (!model->name || (model->n_features > 0 && !model->features)) {
            dw_err(errstr, errstr_size, "models[%zu]: no name or no feature list", m);
            goto err;
        }
        for (size_t f = 0; f < model->n_features; f++) {
            if (!model->features[f].name) {
                dw_err(errstr, errstr_size, "models.%s.features[%zu]: no name", model->name, f);
                goto err;
            }
        }
        if (model->n_features > INT_MAX / 4) {
            dw_err(errstr, errstr_size, "models.%s: too many features", model->name);
            goto err;
        }
        dec->model_name_len[m] = strlen(model->name);
        dec->max_features = DW_MAX(dec->max_features, model->n_features);
    }
    dec->maps = dw_calloc(DW_MAX(cfg->n_models, (size_t)1), sizeof(*dec->maps));
    for (size_t m = 0; m < cfg->n_models; m++) {
        const struct dw_model_cfg *model = &cfg->models[m];
        map_init(&dec->maps[m], model->n_features);
        for (size_t f = 0; f < model->n_features; f++) {
            map_add(&dec->maps[m], model->features[f].name, strlen(model->features[f].name));
        }
    }
    map_init(&dec->root_keys, DW_ARRAY_SIZE(ptrs));
    for (size_t i = 0; i < DW_ARRAY_SIZE(ptrs); i++) {
        struct json_ptr *p = ptrs[i].p;
        if (p->n_segs > 0) {
            p->root_slot = map_add(&dec->root_keys, p->segs[0].key, p->segs[0].len);
        }
    }
    dec->root_val = dw_calloc(dec->root_keys.n + 1, sizeof(*dec->root_val));
    dec->feat_tok = dw_calloc(DW_MAX(dec->max_features, (size_t)1), sizeof(*dec->feat_tok));
    dec->feat_text = dw_calloc(DW_MAX(dec->max_features, (size_t)1), NUM_TEXT_MAX);
    dec->tok_cap = TOKENS_INITIAL;
    dec->toks = dw_calloc(dec->tok_cap, sizeof(*dec->toks));
    dec->open = dw_calloc(JSON_MAX_DEPTH, sizeof(*dec->open));
    return dec;

err:
    dw_decoder_destroy(dec);
    return NULL;
}

size_t dw_decoder_max_features(const struct dw_decoder *dec)
{
    return dec->max_features;
}

struct dw_prediction *dw_prediction_new(const struct dw_decoder *dec)
{
    return dw_calloc(1, sizeof(struct dw_prediction) + dec->max_features * sizeof(struct dw_val));
}

void dw_decoder_reset(struct dw_decoder *dec)
{
    if (dec) {
        dec->msg = NULL;
        dec->msg_len = 0;
        dec->n_toks = 0;
    }
}

/* --------------------------------------------------------------------------------------------
 * Raw bytes and parse
 * ------------------------------------------------------------------------------------------ */

/*
 * The length of the well-formed UTF-8 sequence that starts with the byte s[i] >= 0x80 and ends
 * before len (Unicode 15, table 3-7), or 0 when none does. The second-byte ranges exclude
 * overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF
 * (F4 90..BF, F5..FF); C0, C1 and stray continuation bytes 80..BF never start a sequence.
 */
static size_t utf8_sequence(const unsigned char *s, size_t i, size_t len)
{
    unsigned char c = s[i];
    size_t n;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
    } else if (c == 0xE0) {
        n = 2;
        lo = 0xA0;
    } else if (c == 0xED) {
        n = 2;
        hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
        n = 2;
    } else if (c == 0xF0) {
        n = 3;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        n = 3;
    } else if (c == 0xF4) {
        n = 3;
        hi = 0x8F;
    } else {
        return 0;
    }
    if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi) {
        return 0;
    }
    for (size_t k = 2; k <= n; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n + 1;
}

/* Offset of the first byte that does not start a well-formed UTF-8 sequence, or len. ASCII
 * runs go 8 bytes at a time. */
static size_t utf8_first_invalid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i + 8 <= len && !(dw_load_le(s + i, 8) & 0x8080808080808080ULL)) {
            i += 8;
        }
        if (i >= len) {
            break;
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_sequence(s, i, len);
        if (n == 0) {
            return i;
        }
        i += n;
    }
    return len;
}

int dw_utf8_valid(const void *buf, size_t len)
{
    if (len == 0) {
        return 1;
    }
    return buf && utf8_first_invalid(buf, len) == len;
}

/* --------------------------------------------------------------------------------------------
 * JSON: one pass that checks the grammar and cuts tokens
 * ------------------------------------------------------------------------------------------ */

/* the first error found by the checks: what and where */
struct json_err {
    size_t pos; /* byte offset */
    const char *what;
};

static int json_fail(struct json_err *e, size_t pos, const char *what)
{
    e->pos = pos;
    e->what = what;
    return -1;
}

/* one comparison for the bytes above ' ', nearly all: a compact message has no blanks */
static int is_ws(char c)
{
    const uint64_t blanks = 1ULL << ' ' | 1ULL << '\t' | 1ULL << '\n' | 1ULL << '\r';
    return (unsigned char)c <= ' ' && (blanks >> (unsigned char)c & 1);
}

static size_t skip_ws(const char *js, size_t pos, size_t end)
{
    while (pos < end && is_ws(js[pos])) {
        pos++;
    }
    return pos;
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* the 4 hex digits at s (n bytes available) as a code unit, or -1 */
static long hex4(const char *s, size_t n)
{
    if (n < 4) {
        return -1;
    }
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val((unsigned char)s[i]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

#define BYTES_1 0x0101010101010101ULL /* 0x01 in every byte of a word */
#define BYTES_80 0x8080808080808080ULL

/*
 * The bytes of w that are '"', '\\', below 0x20 or above 0x7F (the start or the rest of a UTF-8
 * sequence), as 0x80 in each such byte. A byte below 0x80 gets its high bit from a subtraction
 * only when it is 0 after the xor (or below 0x20 for the third), and only such a byte borrows
 * from the next one, so the lowest flagged byte (the first in the text) is always right; flags
 * above it may be false.
 */
static uint64_t string_special_bytes(uint64_t w)
{
    uint64_t quote = w ^ (BYTES_1 * '"');
    uint64_t backslash = w ^ (BYTES_1 * '\\');
    uint64_t low = ((quote - BYTES_1) | (backslash - BYTES_1) | (w - BYTES_1 * 0x20)) & ~w;
    return (low | w) & BYTES_80;
}

/*
 * The first i' >= i below e where js[i'] is '"', '\\', a byte below 0x20 or above 0x7F, or e. Bytes
 * up to avail (>= e) may be read: whole words first, then the last bytes before e in one word with
 * the bytes past e masked off, or one at a time when fewer than 8 bytes are left before avail.
 */
static inline size_t string_next_special(const char *js, size_t i, size_t e, size_t avail)
{
    uint64_t hits = 0;
    for (; i + 8 <= e; i += 8) {
        hits = string_special_bytes(dw_load_le(js + i, 8));
        if (hits) {
            return i + (size_t)__builtin_ctzll(hits) / 8;
        }
    }
    if (i < e && i + 8 <= avail) {
        hits = string_special_bytes(dw_load_le(js + i, 8)) & ((1ULL << (8 * (e - i))) - 1);
        return hits ? i + (size_t)__builtin_ctzll(hits) / 8 : e;
    }
    for (; i < e; i++) {
        unsigned char c = (unsigned char)js[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) {
            return i;
        }
    }
    return e;
}

/*
 * A string's content js[s..e) (between the quotes), from its first '"', '\\', control or
 * non-ASCII byte at js[i] on: no raw byte < 0x20, well-formed UTF-8 (utf8_sequence()), only the
 * escapes \" \\ \/ \b \f \n \r \t and \u with four hex digits, a high surrogate only when a low
 * one follows, no lone low surrogate and no \u0000 (jansson refuses it unless JSON_ALLOW_NUL).
 * Plain runs are skipped a word at a time (string_next_special(); js has avail bytes). Out of
 * line: most strings never get here (parse_string()).
 */
static __attribute__((noinline)) int check_string_rest(const char *js, size_t i, size_t e,
                                                       size_t avail, uint8_t *esc,
                                                       struct json_err *err)
{
    for (;; i = string_next_special(js, i, e, avail)) {
        if (i >= e) {
            return 0;
        }
        unsigned char c = (unsigned char)js[i];
        if (c >= 0x80) {
            size_t n = utf8_sequence((const unsigned char *)js, i, e);
            if (n == 0) {
                /* doc_load() names the byte: it looks for invalid UTF-8 again, in all of it */
                return json_fail(err, i, "invalid UTF-8 in a string");
            }
            i += n;
            continue;
        }
        if (c < 0x20) {
            return json_fail(err, i, "control character in a string");
        }
        if (c == '"') {
            return json_fail(err, i, "unescaped '\"' in a string");
        }
        *esc = 1;
        if (i + 1 >= e) {
            return json_fail(err, i, "invalid escape in a string");
        }
        c = (unsigned char)js[++i];
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
            c == 't') {
            i++;
            continue;
        }
        if (c != 'u') {
            return json_fail(err, i - 1, "invalid escape in a string");
        }
        long u = hex4(js + i + 1, e - i - 1);
        if (u < 0) {
            return json_fail(err, i - 1, "invalid \\u escape in a string");
        }
        if (u == 0) {
            return json_fail(err, i - 1, "\\u0000 is not allowed in a string");
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            return json_fail(err, i - 1, "lone low surrogate in a string");
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            long lo = -1;
            if (i + 6 < e && js[i + 5] == '\\' && js[i + 6] == 'u') {
                lo = hex4(js + i + 7, e - i - 7);
            }
            if (lo < 0xDC00 || lo > 0xDFFF) {
                return json_fail(err, i - 1, "high surrogate without a low surrogate");
            }
            i += 6;
        }
        i += 5;
    }
}

/*
 * Clinger's fast path: a real whose significand m has at most 15 significant digits and whose
 * power of ten is within 10^+-22 is m * 10^exp10 with one correctly rounded operation, because
 * both m and 10^|exp10| are exact doubles: strtod's result, bit for bit. Most feature values
 * qualify. @returns the value, or NAN when the path does not apply (strtod then, jv_real()).
 */
static double fast_real(int neg, uint64_t m, size_t sig, long exp10)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (sig > 15 || exp10 < -22 || exp10 > 22) {
        return NAN;
    }
    double d = (double)m;
    d = exp10 < 0 ? d / pow10[-exp10] : d * pow10[exp10];
    return neg ? -d : d;
}

/* The digits at p[*i...] (before n) into *m (which wraps past 19 digits, when fast_real() does
 * not use it). */
static inline void scan_digits(const char *p, size_t n, size_t *i, uint64_t *m)
{
    for (; *i < n && (unsigned char)(p[*i] - '0') <= 9; (*i)++) {
        *m = *m * 10 + (uint64_t)(p[*i] - '0');
    }
}

/*
 * The number that starts at js[s] and ends at the first byte that cannot continue it, before
 * lim: *end is that byte. RFC 8259's grammar (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?);
 * an integer (no '.', 'e', 'E') must fit in int64 and a real must be finite: both are invalid
 * JSON for jansson ("too big integer", "real number overflow"). A real's value is converted on
 * the way when fast_real() can (*num, else NAN): the grammar's own walk over the digits reads
 * the significand, so no second walk is needed. shadow has room for js[s..lim) plus a NUL at the
 * same offsets.
 */
static inline __attribute__((always_inline)) int check_number(const char *js, size_t s, size_t lim,
                                                              char *shadow, size_t *end,
                                                              uint8_t *kind, double *num,
                                                              struct json_err *err)
{
    const char *p = js + s;
    size_t n = lim - s;
    size_t i = 0;
    int neg = 0;
    uint64_t m = 0; /* the significand's digits, integer part and fraction */
    *num = NAN;
    if (i < n && p[i] == '-') {
        neg = 1;
        i++;
    }
    size_t int_start = i;
    if (i < n && p[i] == '0') {
        i++;
    } else if (i < n && p[i] >= '1' && p[i] <= '9') {
        scan_digits(p, n, &i, &m);
    } else {
        return json_fail(err, s, "invalid literal (expected a number, true, false or null)");
    }
    size_t int_digits = i - int_start;
    int is_real = 0;
    size_t frac_start = i;
    size_t frac_end = i;
    if (i < n && p[i] == '.') {
        is_real = 1;
        frac_start = ++i;
        scan_digits(p, n, &i, &m);
        frac_end = i;
        if (frac_end == frac_start) {
            return json_fail(err, s + i, "invalid number: digits expected after '.'");
        }
    }
    long exp10 = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        is_real = 1;
        i++;
        int exp_neg = 0;
        if (i < n && (p[i] == '+' || p[i] == '-')) {
            exp_neg = p[i] == '-';
            i++;
        }
        size_t exp_start = i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (exp10 < 100000000L) { /* saturate: any exponent this large decides alone */
                exp10 = exp10 * 10 + (p[i] - '0');
            }
            i++;
        }
        if (i == exp_start) {
            return json_fail(err, s + i, "invalid number: digits expected in the exponent");
        }
        exp10 = exp_neg ? -exp10 : exp10;
    }
    *end = s + i;
    if (!is_real) {
        if (int_digits > 19 ||
            (int_digits == 19 &&
             memcmp(p + int_start, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0)) {
            return json_fail(err, s, "integer out of the 64-bit range");
        }
        *kind = JV_INT;
        return 0;
    }
    *kind = JV_REAL;
    /* decimal exponent of the leading significant digit: below 308, |v| < 1e308 < DBL_MAX; the
     * significant digits from it on */
    long lead;
    size_t sig;
    if (int_digits > 1 || p[int_start] != '0') {
        lead = (long)int_digits - 1 + exp10;
        sig = int_digits + (frac_end - frac_start);
    } else {
        size_t k = frac_start;
        while (k < frac_end && p[k] == '0') {
            k++;
        }
        if (k == frac_end) {
            *num = neg ? -0.0 : 0.0;
            return 0;
        }
        lead = exp10 - (long)(k - frac_start + 1);
        sig = frac_end - k;
    }
    if (lead >= 308) {
        memcpy(shadow + s, p, i);
        shadow[s + i] = '\0';
        if (isinf(strtod(shadow + s, NULL))) {
            return json_fail(err, s, "real number out of the double range");
        }
    }
    *num = fast_real(neg, m, sig, exp10 - (long)(frac_end - frac_start));
    return 0;
}

/*
 * A primitive token js[s..e): true, false, null or a number (check_number()). With non_finite
 * set (input.non_finite = count), also the exact tokens NaN, Infinity and -Infinity that
 * Python's json module writes. shadow has room for js[s..e) plus a NUL at the same offsets.
 */
static int check_primitive(const char *js, size_t s, size_t e, char *shadow, int non_finite,
                           uint8_t *kind, double *num, struct json_err *err)
{
    static const struct {
        const char *text;
        size_t len;
        uint8_t kind;
        uint8_t non_finite; /* only with input.non_finite = count */
    } words[] = {{"true", 4, JV_TRUE, 0},     {"false", 5, JV_FALSE, 0},
                 {"null", 4, JV_NULL, 0},     {"NaN", 3, JV_NAN, 1},
                 {"Infinity", 8, JV_PINF, 1}, {"-Infinity", 9, JV_NINF, 1}};
    for (size_t i = 0; i < DW_ARRAY_SIZE(words); i++) {
        if (e - s == words[i].len && (non_finite || !words[i].non_finite) &&
            memcmp(js + s, words[i].text, words[i].len) == 0) {
            *kind = words[i].kind;
            return 0;
        }
    }
    size_t end;
    if (check_number(js, s, e, shadow, &end, kind, num, err) != 0) {
        return -1;
    }
    return end == e ? 0 : json_fail(err, end, "invalid number");
}

/* the first top-level value as depth_scan() sees it */
struct depth_info {
    size_t depth;   /* deepest nesting of arrays and objects in it (the top level is 1) */
    size_t over_at; /* byte of the first bracket deeper than the limit, or SIZE_MAX */
};

/* the index of the '"' that closes a string whose content starts at i, or len when it does not
 * close; a quote ends the string when an even run of backslashes precedes it. Plain runs go a
 * word at a time (string_next_special()). */
static size_t string_close(const char *js, size_t i, size_t len)
{
    i = string_next_special(js, i, len, len);
    if (i >= len || js[i] == '"') {
        return i;
    }
    for (;;) {
        const char *q = memchr(js + i, '"', len - i);
        if (!q) {
            return len;
        }
        size_t k = (size_t)(q - js);
        size_t run = 0;
        while (js[k - run - 1] == '\\') { /* the opening quote stops the run */
            run++;
        }
        if (run % 2 == 0) {
            return k;
        }
        i = k + 1;
    }
}

/* the bytes that end a number or literal: blanks, ',', ']' and '}' */
static inline int ends_primitive(char c)
{
    return c == ',' || c == ']' || c == '}' || is_ws(c);
}

/*
 * The nesting of the value that starts at js[pos], in one pass and without allocating. Only an
 * invalid message gets here (doc_load()): it decides whether the message is refused for its
 * depth, and names the depth. It lexes as the parser does: a '"' opens a string that ends at the
 * next unescaped '"'; any byte that is not blank, ',', ':', a bracket or a quote starts a
 * primitive that runs to the next byte ends_primitive() takes. So on the valid prefix of a message
 * (all the parser has read before it failed) both see the same brackets at the same depths. The
 * scan stops where the first value ends; counting goes on past the limit so that the error can name
 * the depth.
 */
static void depth_scan(const char *js, size_t pos, size_t len, size_t limit, struct depth_info *out)
{
    size_t depth = 0;
    out->depth = 0;
    out->over_at = SIZE_MAX;
    for (size_t i = pos; i < len; i++) {
        char c = js[i];
        if (c == '"') {
            i = string_close(js, i + 1, len);
            if (depth == 0) {
                return;
            }
        } else if (c == '[' || c == '{') {
            depth++;
            if (depth > out->depth) {
                out->depth = depth;
                if (depth > limit && out->over_at == SIZE_MAX) {
                    out->over_at = i;
                }
            }
        } else if (c == ']' || c == '}') {
            if (depth <= 1) {
                return;
            }
            depth--;
        } else if (!is_ws(c) && c != ',' && c != ':') {
            while (i + 1 < len && !ends_primitive(js[i + 1])) {
                i++;
            }
            if (depth == 0) {
                return;
            }
        }
    }
}

/* the message being parsed, and the first error found in it */
struct parse {
    struct dw_decoder *dec;
    const char *js;
    size_t len;
    int non_finite; /* accept NaN, Infinity, -Infinity (input.non_finite = count) */
    struct json_err err;
};

/* a new token at the end of the decoder's array, which doubles when full (a pointer into the
 * array is good until the next push) */
static inline struct tok *tok_push(struct dw_decoder *dec)
{
    if ((unsigned int)dec->n_toks == dec->tok_cap) {
        dec->tok_cap *= 2;
        dec->toks = dw_realloc(dec->toks, dec->tok_cap * sizeof(*dec->toks));
    }
    return &dec->toks[dec->n_toks++];
}

/* The end of a string whose first '\\' or control byte is at i (parse_string()): *e is its
 * closing quote, or len when it does not close; its escapes are checked. Out of line: rare. */
static __attribute__((noinline)) int string_escaped(struct parse *ps, size_t i, size_t *e,
                                                    uint8_t *esc)
{
    *e = string_close(ps->js, i, ps->len);
    return *e < ps->len ? check_string_rest(ps->js, i, *e, ps->len, esc, &ps->err) : 0;
}

/* the string whose opening quote is at pos, as one token; *after is past its closing quote */
static inline int parse_string(struct parse *ps, size_t pos, size_t *after)
{
    const char *js = ps->js;
    size_t s = pos + 1;
    size_t e = string_next_special(js, s, ps->len, ps->len);
    uint8_t esc = 0;
    if (e < ps->len && js[e] != '"' && string_escaped(ps, e, &e, &esc) != 0) {
        return -1;
    }
    if (e >= ps->len) {
        return json_fail(&ps->err, pos, "unterminated string");
    }
    *tok_push(ps->dec) = (struct tok){(int)s, (int)e, ps->dec->n_toks, JV_STR, esc, 0.0};
    *after = e + 1;
    return 0;
}

/* the number or literal that starts at pos, as one token; *after is the byte after it */
static inline int parse_primitive(struct parse *ps, size_t pos, size_t *after)
{
    const char *js = ps->js;
    size_t len = ps->len;
    size_t e;
    uint8_t kind;
    double num = NAN;
    if ((js[pos] >= '0' && js[pos] <= '9') ||
        (js[pos] == '-' && pos + 1 < len && js[pos + 1] >= '0' && js[pos + 1] <= '9')) {
        /* a number (most primitives): its grammar finds where it ends */
        if (check_number(js, pos, len, ps->dec->shadow, &e, &kind, &num, &ps->err) != 0) {
            return -1;
        }
        if (e < len && !ends_primitive(js[e])) {
            return json_fail(&ps->err, e, "invalid number");
        }
    } else {
        for (e = pos + 1; e < len && !ends_primitive(js[e]); e++) {
        }
        if (check_primitive(js, pos, e, ps->dec->shadow, ps->non_finite, &kind, &num, &ps->err) !=
            0) {
            return -1;
        }
    }
    *tok_push(ps->dec) = (struct tok){(int)pos, (int)e, ps->dec->n_toks, kind, 0, num};
    *after = e;
    return 0;
}

/* an object key at *p and the ':' after it, as one token; *p becomes the first byte of the
 * member's value */
static inline int parse_key(struct parse *ps, size_t *p)
{
    const char *js = ps->js;
    if (*p >= ps->len || js[*p] != '"') {
        return json_fail(&ps->err, *p, "object key (a string) expected");
    }
    size_t a;
    if (parse_string(ps, *p, &a) != 0) {
        return -1;
    }
    a = skip_ws(js, a, ps->len);
    if (a >= ps->len || js[a] != ':') {
        return json_fail(&ps->err, a, "':' expected after an object key");
    }
    a = skip_ws(js, a + 1, ps->len);
    if (a >= ps->len || js[a] == ',' || js[a] == '}' || js[a] == ']') {
        return json_fail(&ps->err, a, "value expected after ':'");
    }
    *p = a;
    return 0;
}

/*
 * The value whose first byte is at pos (not blank), checked and cut into tokens in one pass;
 * *after is the byte after it. Arrays and objects nest at most limit deep (the top level is 1):
 * opening a deeper one fails; so does a scalar deeper than JSON_MAX_DEPTH, as in jansson. No
 * recursion: dec->open holds the token of each open array and object, and a container's end and
 * next are set when its closing bracket is read.
 */
static int parse_value(struct parse *ps, size_t pos, size_t limit, size_t *after)
{
    struct dw_decoder *dec = ps->dec;
    const char *js = ps->js;
    size_t len = ps->len;
    size_t depth = 0;
    size_t p = pos;
    int want_value = 1;
    for (;;) {
        if (want_value) {
            if (p >= len) {
                return json_fail(&ps->err, p, "unexpected end (value expected)");
            }
            char c = js[p];
            if (c == '{' || c == '[') {
                if (depth == limit) {
                    return json_fail(&ps->err, p, "nested deeper than the limit");
                }
                dec->open[depth++] = dec->n_toks;
                *tok_push(dec) = (struct tok){(int)p, 0, 0, c == '{' ? JV_OBJ : JV_ARR, 0, 0.0};
                p = skip_ws(js, p + 1, len);
                if (p < len && js[p] == c + 2) { /* '}' and ']' are 2 after their openers */
                    want_value = 0;
                } else if (c == '{' && parse_key(ps, &p) != 0) {
                    return -1;
                }
                continue;
            }
            if (c == ',' || c == ':' || c == ']' || c == '}') {
                return json_fail(&ps->err, p, "value expected");
            }
            if (depth == JSON_MAX_DEPTH) { /* jansson counts a scalar as a level of its own */
                return json_fail(&ps->err, p, "nested deeper than 2048 levels");
            }
            if ((c == '"' ? parse_string(ps, p, &p) : parse_primitive(ps, p, &p)) != 0) {
                return -1;
            }
            want_value = 0;
        }
        /* after a value, or at the closing bracket of an empty array or object */
        if (depth == 0) {
            *after = p;
            return 0;
        }
        p = skip_ws(js, p, len);
        int open = dec->open[depth - 1];
        int is_obj = dec->toks[open].kind == JV_OBJ;
        if (p >= len) {
            return json_fail(&ps->err, p, "unexpected end (unterminated object or array)");
        }
        if (js[p] == (is_obj ? '}' : ']')) {
            dec->toks[open].end = (int)p + 1;
            dec->toks[open].next = dec->n_toks;
            depth--;
            p++;
            continue;
        }
        if (js[p] != ',') {
            return json_fail(&ps->err, p, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        }
        p = skip_ws(js, p + 1, len);
        if (p < len && (js[p] == '}' || js[p] == ']')) {
            return json_fail(&ps->err, p, "trailing ',' before a closing bracket");
        }
        if (is_obj && parse_key(ps, &p) != 0) {
            return -1;
        }
        want_value = 1;
    }
}

static const char *kind_name(enum jv_kind k)
{
    switch (k) {
    case JV_OBJ:
        return "object";
    case JV_ARR:
        return "array";
    case JV_STR:
        return "string";
    case JV_INT:
    case JV_REAL:
        return "number";
    case JV_TRUE:
    case JV_FALSE:
        return "boolean";
    case JV_NULL:
        return "null";
    case JV_NAN:
        return "NaN";
    case JV_PINF:
        return "Infinity";
    case JV_NINF:
        return "-Infinity";
    }
    return "unknown";
}

/* doc_check()'s parse */
static int doc_parse(struct dw_decoder *dec, const char *js, size_t len, size_t limit,
                     enum jv_kind *top, struct json_err *err)
{
    size_t pos = skip_ws(js, 0, len);
    if (pos == len) {
        return json_fail(err, len, "no value (empty or only whitespace)");
    }
    struct parse ps = {dec, js, len, dec->cfg->non_finite == DW_NON_FINITE_COUNT, {0, NULL}};
    size_t after;
    if (parse_value(&ps, pos, limit, &after) != 0) {
        dec->n_toks = 0;
        *err = ps.err;
        return -1;
    }
    if (skip_ws(js, after, len) != len) {
        dec->n_toks = 0;
        return json_fail(err, skip_ws(js, after, len), "text after the top-level value");
    }
    *top = (enum jv_kind)dec->toks[0].kind;
    return 0;
}

/*
 * Checks that js[0..len) is exactly one JSON value, nested at most limit deep, with only
 * whitespace around it, and well-formed UTF-8 in its strings. On success the document has
 * n_toks > 0 tokens, token 0 is the top-level value and *top its kind. On failure, err is the
 * first NUL byte if there is one (no NUL passes the grammar, in a string or out of one),
 * else what the parse found.
 */
static int doc_check(struct dw_decoder *dec, const char *js, size_t len, size_t limit,
                     enum jv_kind *top, struct json_err *err)
{
    dec->n_toks = 0;
    if (doc_parse(dec, js, len, limit, top, err) == 0) {
        return 0;
    }
    const char *nul = memchr(js, '\0', len);
    if (nul) {
        json_fail(err, (size_t)(nul - js), "NUL byte");
    }
    return -1;
}

/* @returns 1 when buf is not well-formed UTF-8, with errstr naming the first bad byte */
static int bad_utf8(const void *buf, size_t len, char *errstr, size_t errstr_size)
{
    size_t bad = utf8_first_invalid(buf, len);
    if (bad == len) {
        return 0;
    }
    dw_err(errstr, errstr_size, "message: invalid UTF-8 at byte %zu (0x%02x)", bad,
           ((const unsigned char *)buf)[bad]);
    return 1;
}

static enum dw_bad_reason doc_load(struct dw_decoder *dec, const void *buf, size_t len,
                                   char *errstr, size_t errstr_size)
{
    dw_decoder_reset(dec);
    if (!buf) {
        buf = "";
        len = 0;
    }
    int64_t max = dec->cfg->max_message_bytes;
    if (max > 0 && (uint64_t)len > (uint64_t)max) {
        dw_err(errstr, errstr_size, "message: %zu bytes, more than input.max_message_bytes (%lld)",
               len, (long long)max);
        return DW_BAD_TOO_LARGE;
    }
    if (len >= (size_t)INT_MAX / 2) {
        /* tokens keep offsets in int: never reached with a sane input.max_message_bytes */
        if (bad_utf8(buf, len, errstr, errstr_size)) {
            return DW_BAD_UTF8;
        }
        dw_err(errstr, errstr_size, "message: invalid JSON: %zu bytes, too large to parse", len);
        return DW_BAD_JSON;
    }
    if (dec->shadow_cap < len + 1) {
        size_t cap = DW_MAX(len + 1, DW_MAX(dec->shadow_cap * 2, (size_t)1024));
        free(dec->shadow);
        dec->shadow = dw_malloc(cap);
        dec->shadow_cap = cap;
    }
    const char *js = buf;
    struct json_err jerr = {0, NULL};
    /* input.max_depth (1..2048) is a reason of its own; without it (0 in a hand-built
     * configuration) JSON's own limit applies and deeper is invalid JSON, as for jansson */
    int max_depth = dec->cfg->max_depth;
    int own_limit = max_depth > 0 && max_depth <= JSON_MAX_DEPTH;
    size_t limit = own_limit ? (size_t)max_depth : JSON_MAX_DEPTH;
    enum jv_kind top = JV_NULL;
    int bad_json = doc_check(dec, js, len, limit, &top, &jerr) != 0;
    /* Invalid UTF-8 is the reason whatever else is wrong in the message. The parse checked the
     * strings' (no other byte above 0x7F passes the grammar), so a message it accepted is
     * well-formed; a message it refused is looked at again, all of it, to name the first bad
     * byte even when it comes after what the parse refused. */
    if (bad_json && bad_utf8(buf, len, errstr, errstr_size)) {
        return DW_BAD_UTF8;
    }
    if (bad_json) {
        /* a message deeper than the limit is refused for its depth whatever else is wrong in
         * it: one more pass, on invalid messages only, says how deep it is */
        struct depth_info di;
        depth_scan(js, skip_ws(js, 0, len), len, limit, &di);
        if (di.over_at != SIZE_MAX && own_limit) {
            dw_err(errstr, errstr_size,
                   "message: nested %zu levels deep, more than input.max_depth (%d); level %d "
                   "opens at byte %zu",
                   di.depth, max_depth, max_depth + 1, di.over_at);
            return DW_BAD_TOO_DEEP;
        }
        if (di.over_at != SIZE_MAX) {
            json_fail(&jerr, di.over_at, "nested deeper than 2048 levels");
        }
    }
    if (bad_json) {
        size_t line = 1;
        size_t line_start = 0;
        for (size_t i = 0; i < jerr.pos && i < len; i++) {
            if (js[i] == '\n') {
                line++;
                line_start = i + 1;
            }
        }
        dw_err(errstr, errstr_size, "message: invalid JSON at line %zu, column %zu (byte %zu): %s",
               line, jerr.pos - line_start + 1, jerr.pos, jerr.what);
        return DW_BAD_JSON;
    }
    if (top != JV_OBJ) {
        dec->n_toks = 0;
        dw_err(errstr, errstr_size, "message: top level is %s, expected an object", kind_name(top));
        return DW_BAD_NOT_OBJECT;
    }
    dec->msg = js;
    dec->msg_len = len;
    return DW_BAD_NONE;
}

/* --------------------------------------------------------------------------------------------
 * Value layer over the checked tokens: a value is a token index, JV_NONE when absent.
 * ------------------------------------------------------------------------------------------ */

typedef int jv_t;
#define JV_NONE (-1)
#define JV_ROOT 0

static enum jv_kind jv_kind(const struct dw_decoder *dec, jv_t v)
{
    return (enum jv_kind)dec->toks[v].kind;
}

/* absent and null are the same thing for every field */
static int jv_missing(const struct dw_decoder *dec, jv_t v)
{
    return v < 0 || jv_kind(dec, v) == JV_NULL;
}

static int jv_is_number(const struct dw_decoder *dec, jv_t v)
{
    return v >= 0 && (jv_kind(dec, v) == JV_INT || jv_kind(dec, v) == JV_REAL);
}

static int jv_is_bool(const struct dw_decoder *dec, jv_t v)
{
    return v >= 0 && (jv_kind(dec, v) == JV_TRUE || jv_kind(dec, v) == JV_FALSE);
}

static const char *jv_type_name(const struct dw_decoder *dec, jv_t v)
{
    return v < 0 ? "nothing" : kind_name(jv_kind(dec, v));
}

static size_t utf8_put(char *out, long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* jv_string() of a string with a backslash: unescaped into the shadow buffer at the token's own
 * offset (escapes were checked by check_string_rest()) */
static __attribute__((noinline)) const char *jv_unescape(struct dw_decoder *dec, jv_t v,
                                                         size_t *len)
{
    size_t s = (size_t)dec->toks[v].start;
    size_t e = (size_t)dec->toks[v].end;
    const char *in = dec->msg;
    char *out = dec->shadow + s;
    size_t o = 0;
    for (size_t i = s; i < e; i++) {
        if (in[i] != '\\') {
            out[o++] = in[i];
            continue;
        }
        char c = in[++i];
        switch (c) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            long cp = hex4(in + i + 1, 4);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = hex4(in + i + 3, 4);
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += utf8_put(out + o, cp);
            break;
        }
        default: /* '"', '\\', '/' */
            out[o++] = c;
            break;
        }
    }
    *len = o;
    return out;
}

/* A string's text: in the message when it has no backslash (nearly always), otherwise
 * jv_unescape()'s */
static inline const char *jv_string(struct dw_decoder *dec, jv_t v, size_t *len)
{
    if (dec->toks[v].esc) {
        return jv_unescape(dec, v, len);
    }
    *len = (size_t)(dec->toks[v].end - dec->toks[v].start);
    return dec->msg + dec->toks[v].start;
}

/* bytes that may be read from the start of jv_string()'s text: to the end of the message, or of
 * the shadow buffer for an unescaped string */
static size_t jv_string_avail(const struct dw_decoder *dec, jv_t v)
{
    size_t s = (size_t)dec->toks[v].start;
    return (dec->toks[v].esc ? dec->shadow_cap : dec->msg_len) - s;
}

static long long jv_int(const struct dw_decoder *dec, jv_t v)
{
    const char *p = dec->msg + dec->toks[v].start;
    size_t n = (size_t)(dec->toks[v].end - dec->toks[v].start);
    int neg = p[0] == '-';
    uint64_t u = 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        u = u * 10 + (uint64_t)(p[i] - '0'); /* <= 19 digits within range: checked */
    }
    if (neg) {
        return u == 0 ? 0 : -(long long)(u - 1) - 1;
    }
    return (long long)u;
}

static double jv_real(struct dw_decoder *dec, jv_t v)
{
    if (!isnan(dec->toks[v].num)) {
        return dec->toks[v].num; /* converted by the parse (check_number()) */
    }
    size_t s = (size_t)dec->toks[v].start;
    size_t e = (size_t)dec->toks[v].end;
    /* strtod needs a terminator: copy to the shadow buffer, where no string lives here */
    memcpy(dec->shadow + s, dec->msg + s, e - s);
    dec->shadow[e] = '\0';
    return strtod(dec->shadow + s, NULL);
}

static double jv_number(struct dw_decoder *dec, jv_t v)
{
    return jv_kind(dec, v) == JV_INT ? (double)jv_int(dec, v) : jv_real(dec, v);
}

/* The JSON text of a number (integer or real), see dw_decode_real_text(). buf has NUM_TEXT_MAX
 * bytes. */
static size_t jv_number_text(struct dw_decoder *dec, jv_t v, char *buf, size_t size)
{
    if (jv_kind(dec, v) == JV_INT) {
        /* "%lld" of the value is the token itself (the grammar allows no '+' and no leading
         * zero), except that -0 is 0 */
        const char *p = dec->msg + dec->toks[v].start;
        size_t n = (size_t)(dec->toks[v].end - dec->toks[v].start);
        if (n == 2 && p[0] == '-' && p[1] == '0') {
            p++;
            n = 1;
        }
        n = DW_MIN(n, size - 1);
        memcpy(buf, p, n);
        buf[n] = '\0';
        return n;
    }
    return dw_decode_real_text(jv_real(dec, v), buf, size);
}

/* the value of the LAST member called key (jansson keeps the last of duplicate keys) */
static jv_t jv_member(struct dw_decoder *dec, jv_t obj, const char *key, size_t len)
{
    jv_t found = JV_NONE;
    int end = dec->toks[obj].next;
    for (int k = obj + 1; k < end; k = dec->toks[k + 1].next) {
        size_t klen;
        const char *ks = jv_string(dec, k, &klen);
        if (klen == len && memcmp(ks, key, len) == 0) {
            found = k + 1;
        }
    }
    return found;
}

static jv_t jv_element(const struct dw_decoder *dec, jv_t arr, long long index)
{
    int end = dec->toks[arr].next;
    long long i = 0;
    for (int k = arr + 1; k < end; k = dec->toks[k].next, i++) {
        if (i == index) {
            return k;
        }
    }
    return JV_NONE;
}

/* The members of object obj whose keys map names: val[entry] := the member's value (the last of
 * duplicate keys wins, as in jv_member()); other entries of val are left as they are. */
static void index_members(struct dw_decoder *dec, jv_t obj, struct name_map *map, int *val)
{
    int end = dec->toks[obj].next;
    size_t at = 0;
    for (int k = obj + 1; k < end; k = dec->toks[k + 1].next, at++) {
        size_t klen;
        const char *ks = jv_string(dec, k, &klen);
        int f = map_find_at(map, at, ks, klen, jv_string_avail(dec, k));
        if (f >= 0) {
            val[f] = k + 1;
        }
    }
}

/*
 * One pass over the top-level members: each key goes through the root_keys table, so that every
 * field pointer finds its first step without a search of its own (the last of duplicate keys
 * wins, as in jv_member()).
 */
static void root_index(struct dw_decoder *dec)
{
    for (size_t i = 0; i < dec->root_keys.n; i++) {
        dec->root_val[i] = JV_NONE;
    }
    index_members(dec, JV_ROOT, &dec->root_keys, dec->root_val);
}

/* the top level is an object (doc_load()) indexed by root_index() */
static jv_t ptr_get(struct dw_decoder *dec, const struct json_ptr *p)
{
    if (!p->used) {
        return JV_NONE;
    }
    if (p->n_segs == 0) {
        return JV_ROOT;
    }
    jv_t v = dec->root_val[p->root_slot];
    for (size_t i = 1; i < p->n_segs && v >= 0; i++) {
        const struct ptr_seg *seg = &p->segs[i];
        enum jv_kind k = jv_kind(dec, v);
        if (k == JV_OBJ) {
            v = jv_member(dec, v, seg->key, seg->len);
        } else if (k == JV_ARR) {
            v = seg->index >= 0 ? jv_element(dec, v, seg->index) : JV_NONE;
        } else {
            v = JV_NONE;
        }
    }
    return v;
}

/* doc_load(), then the top-level members indexed for ptr_get() */
static enum dw_bad_reason doc_open(struct dw_decoder *dec, const void *buf, size_t len,
                                   char *errstr, size_t errstr_size)
{
    enum dw_bad_reason r = doc_load(dec, buf, len, errstr, errstr_size);
    if (r == DW_BAD_NONE) {
        root_index(dec);
    }
    return r;
}

/* --------------------------------------------------------------------------------------------
 * Field extraction: only the value layer above, never the tokens.
 * ------------------------------------------------------------------------------------------ */

static enum dw_bad_reason bad(enum dw_bad_reason r, char *errstr, size_t errstr_size,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum dw_bad_reason bad(enum dw_bad_reason r, char *errstr, size_t errstr_size,
                              const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return r;
}

static enum dw_bad_reason get_id(struct dw_decoder *dec, jv_t v, const char **id, size_t *id_len,
                                 char *errstr, size_t errstr_size)
{
    const char *field = "prediction_id";
    if (jv_missing(dec, v)) {
        return bad(DW_BAD_MISSING_ID, errstr, errstr_size, "%s: missing", field);
    }
    if (jv_kind(dec, v) == JV_INT) {
        *id_len = jv_number_text(dec, v, dec->id_buf, sizeof(dec->id_buf));
        *id = dec->id_buf;
        return DW_BAD_NONE;
    }
    if (jv_kind(dec, v) != JV_STR) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                   "%s: expected a string or an integer, got %s", field, jv_type_name(dec, v));
    }
    size_t len;
    const char *s = jv_string(dec, v, &len);
    if (len == 0) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "%s: empty string", field);
    }
    if (len > DW_ID_MAX) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "%s: %zu bytes, longer than %d", field,
                   len, DW_ID_MAX);
    }
    *id = s;
    *id_len = len;
    return DW_BAD_NONE;
}

static enum dw_bad_reason get_model(struct dw_decoder *dec, jv_t v, struct dw_prediction *out,
                                    char *errstr, size_t errstr_size)
{
    if (jv_missing(dec, v)) {
        return bad(DW_BAD_MISSING_FIELD, errstr, errstr_size, "model: missing");
    }
    if (jv_kind(dec, v) != JV_STR) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "model: expected a string, got %s",
                   jv_type_name(dec, v));
    }
    size_t len;
    const char *name = jv_string(dec, v, &len);
    const struct dw_config *cfg = dec->cfg;
    for (size_t m = 0; m < cfg->n_models; m++) {
        if (dec->model_name_len[m] == len && memcmp(cfg->models[m].name, name, len) == 0) {
            out->model = &cfg->models[m];
            out->model_idx = m;
            return DW_BAD_NONE;
        }
    }
    return bad(DW_BAD_UNKNOWN_MODEL, errstr, errstr_size,
               "model: \"%.*s%s\" is not configured under models", (int)DW_MIN(len, ERR_QUOTE_MAX),
               name, len > ERR_QUOTE_MAX ? "..." : "");
}

static enum dw_bad_reason get_version(struct dw_decoder *dec, jv_t v, struct dw_prediction *out,
                                      char *errstr, size_t errstr_size)
{
    if (jv_missing(dec, v)) {
        out->version = "";
        out->version_len = 0;
    } else if (jv_kind(dec, v) == JV_STR) {
        out->version = jv_string(dec, v, &out->version_len);
    } else if (jv_is_number(dec, v)) {
        out->version_len = jv_number_text(dec, v, dec->version_buf, sizeof(dec->version_buf));
        out->version = dec->version_buf;
    } else {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                   "model_version: expected a string or a number, got %s", jv_type_name(dec, v));
    }
    return DW_BAD_NONE;
}

static enum dw_bad_reason parse_timestamp(struct dw_decoder *dec, jv_t v, int64_t kafka_ts_ms,
                                          int64_t *ts_ms, char *errstr, size_t errstr_size)
{
    const char *field = "timestamp";
    if (jv_missing(dec, v)) {
        *ts_ms = kafka_ts_ms;
        return DW_BAD_NONE;
    }
    if (jv_kind(dec, v) == JV_INT) {
        long long i = jv_int(dec, v);
        if (i > -EPOCH_SECONDS_LIMIT && i < EPOCH_SECONDS_LIMIT) {
            *ts_ms = (int64_t)i * 1000;
            return DW_BAD_NONE;
        }
        if ((double)i < -EPOCH_MS_LIMIT || (double)i > EPOCH_MS_LIMIT) {
            return bad(DW_BAD_TIMESTAMP, errstr, errstr_size, "%s: %lld is out of range", field, i);
        }
        *ts_ms = (int64_t)i;
        return DW_BAD_NONE;
    }
    if (jv_kind(dec, v) == JV_REAL) {
        double r = jv_real(dec, v);
        if (fabs(r) < (double)EPOCH_SECONDS_LIMIT) {
            /* Seconds with a fraction: round to the microsecond first (the precision a double
             * carries for current dates) so that 1.123 is 1123 ms and not 1122.99999 -> 1122,
             * then round down to the millisecond. */
            int64_t us = (int64_t)llround(r * 1e6);
            *ts_ms = dw_floor_div(us, 1000);
            return DW_BAD_NONE;
        }
        if (fabs(r) > EPOCH_MS_LIMIT) {
            return bad(DW_BAD_TIMESTAMP, errstr, errstr_size, "%s: %g is out of range", field, r);
        }
        *ts_ms = (int64_t)floor(r);
        return DW_BAD_NONE;
    }
    if (jv_kind(dec, v) == JV_STR) {
        size_t len;
        const char *s = jv_string(dec, v, &len);
        if (dw_time_parse_rfc3339(s, len, ts_ms) != 0) {
            return bad(DW_BAD_TIMESTAMP, errstr, errstr_size, "%s: \"%.*s%s\" is not RFC 3339",
                       field, (int)DW_MIN(len, ERR_QUOTE_MAX), s, len > ERR_QUOTE_MAX ? "..." : "");
        }
        return DW_BAD_NONE;
    }
    return bad(DW_BAD_TIMESTAMP, errstr, errstr_size,
               "%s: expected an RFC 3339 string or an epoch number, got %s", field,
               jv_type_name(dec, v));
}

/*
 * Event time, bounded by the message's Kafka timestamp (input.max_future_skew and
 * input.max_past_skew). The reference is the Kafka timestamp and not the wall clock because a
 * partition is consumed again after a crash or a rebalance, and must then decide exactly as the
 * first time: a bound against the wall clock at processing time would accept on one pass what
 * it rejected on another. The caller passes the wall clock only for a message without a Kafka
 * timestamp, and NO_REFERENCE (replay) when there is no clock at all. An event without its own
 * timestamp takes the Kafka one and is always in bounds. Bounds are saturated, not added, so a
 * producer's absurd Kafka timestamp cannot overflow them.
 */
static enum dw_bad_reason get_timestamp(struct dw_decoder *dec, jv_t v, int64_t kafka_ts_ms,
                                        int64_t *ts_ms, char *errstr, size_t errstr_size)
{
    enum dw_bad_reason r = parse_timestamp(dec, v, kafka_ts_ms, ts_ms, errstr, errstr_size);
    if (r != DW_BAD_NONE || kafka_ts_ms == NO_REFERENCE) {
        return r;
    }
    int64_t future = dec->cfg->max_future_skew_ms;
    int64_t past = dec->cfg->max_past_skew_ms;
    const char *key = NULL;
    const char *side = NULL;
    int64_t skew = 0;
    int64_t latest = kafka_ts_ms > INT64_MAX - future ? INT64_MAX : kafka_ts_ms + future;
    int64_t earliest = kafka_ts_ms < INT64_MIN + past ? INT64_MIN : kafka_ts_ms - past;
    if (future > 0 && *ts_ms > latest) {
        key = "input.max_future_skew";
        side = "after";
        skew = future;
    } else if (past > 0 && *ts_ms < earliest) {
        key = "input.max_past_skew";
        side = "before";
        skew = past;
    }
    if (!key) {
        return DW_BAD_NONE;
    }
    char ev[TIME_TEXT_MAX], ref[TIME_TEXT_MAX];
    dw_time_format_rfc3339(*ts_ms, ev, sizeof(ev)); /* parsed: within +-EPOCH_MS_LIMIT */
    if ((double)kafka_ts_ms >= -EPOCH_MS_LIMIT && (double)kafka_ts_ms <= EPOCH_MS_LIMIT) {
        dw_time_format_rfc3339(kafka_ts_ms, ref, sizeof(ref));
    } else {
        snprintf(ref, sizeof(ref), "%lld ms", (long long)kafka_ts_ms); /* no calendar date */
    }
    return bad(DW_BAD_TIME_RANGE, errstr, errstr_size,
               "timestamp: %s is more than %s (%.10g s) %s the message's Kafka timestamp %s", ev,
               key, (double)skew / 1000.0, side, ref);
}

/* prediction or label: a class as text (and its number), or a regression target */
static enum dw_bad_reason get_class(struct dw_decoder *dec, jv_t v, const char *field,
                                    int regression, struct dw_class *c, char *errstr,
                                    size_t errstr_size)
{
    c->text[0] = '\0';
    c->len = 0;
    c->is_num = 0;
    c->num = 0.0;
    if (jv_missing(dec, v)) {
        return bad(DW_BAD_MISSING_FIELD, errstr, errstr_size, "%s: missing", field);
    }
    if (jv_is_number(dec, v)) {
        c->len = jv_number_text(dec, v, c->text, sizeof(c->text));
        c->is_num = 1;
        c->num = jv_number(dec, v);
        return DW_BAD_NONE;
    }
    if (regression) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                   "%s: expected a number (regression model), got %s", field, jv_type_name(dec, v));
    }
    if (jv_kind(dec, v) == JV_STR) {
        size_t len;
        const char *s = jv_string(dec, v, &len);
        if (len > DW_CLASS_MAX) {
            return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                       "%s: class label of %zu bytes, longer than %d", field, len, DW_CLASS_MAX);
        }
        memcpy(c->text, s, len);
        c->text[len] = '\0';
        c->len = len;
        return DW_BAD_NONE;
    }
    if (jv_is_bool(dec, v)) {
        const char *t = jv_kind(dec, v) == JV_TRUE ? "true" : "false";
        c->len = strlen(t);
        memcpy(c->text, t, c->len + 1);
        return DW_BAD_NONE;
    }
    return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
               "%s: expected a string, number or boolean, got %s", field, jv_type_name(dec, v));
}

static enum dw_bad_reason get_score(struct dw_decoder *dec, jv_t v,
                                    const struct dw_model_cfg *model, struct dw_prediction *out,
                                    char *errstr, size_t errstr_size)
{
    out->has_score = 0;
    out->score = 0.0;
    if (jv_missing(dec, v)) {
        return DW_BAD_NONE;
    }
    if (jv_is_number(dec, v)) {
        double s = jv_number(dec, v);
        if (!(s >= 0.0 && s <= 1.0)) {
            return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "score: %g is outside [0, 1]", s);
        }
        out->has_score = 1;
        out->score = s;
        return DW_BAD_NONE;
    }
    if (jv_kind(dec, v) == JV_OBJ) {
        /* class -> probability: keep the positive class's entry when it is a probability */
        const char *pos = model->positive_class ? model->positive_class : "1";
        jv_t e = jv_member(dec, v, pos, strlen(pos));
        if (jv_is_number(dec, e)) {
            double s = jv_number(dec, e);
            if (s >= 0.0 && s <= 1.0) {
                out->has_score = 1;
                out->score = s;
            }
        }
        return DW_BAD_NONE;
    }
    return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
               "score: expected a number or an object, got %s", jv_type_name(dec, v));
}

static enum dw_bad_reason get_latency(struct dw_decoder *dec, jv_t v, struct dw_prediction *out,
                                      char *errstr, size_t errstr_size)
{
    out->has_latency = 0;
    out->latency_ms = 0.0;
    if (jv_missing(dec, v)) {
        return DW_BAD_NONE;
    }
    if (!jv_is_number(dec, v)) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "latency_ms: expected a number, got %s",
                   jv_type_name(dec, v));
    }
    double l = jv_number(dec, v);
    if (l < 0.0) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "latency_ms: %g is negative", l);
    }
    out->has_latency = 1;
    out->latency_ms = l;
    return DW_BAD_NONE;
}

/* Text of an integer >= DW_STATUS_ERROR_MIN: digits only, no leading zero. */
static int status_text_5xx(const char *s, size_t len)
{
    if (len < 3 || s[0] == '0') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    if (len > 3) {
        return 1;
    }
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0') >= DW_STATUS_ERROR_MIN;
}

int dw_decode_status_error(const struct dw_config *cfg, const char *text, size_t len)
{
    if (!cfg->error_values_set) {
        return (len == 5 && memcmp(text, "error", 5) == 0) ||
               (len == 7 && memcmp(text, "timeout", 7) == 0) || status_text_5xx(text, len);
    }
    for (size_t i = 0; i < cfg->n_error_values; i++) {
        const char *e = cfg->error_values[i];
        if (dw_str_is(e, text, len)) {
            return 1;
        }
    }
    return 0;
}

/*
 * A scalar as text, the way classes, categories and statuses compare: a string as it is, a
 * number as its JSON text (into buf, NUM_TEXT_MAX bytes), a boolean as "true" / "false".
 * @returns 0 with *text and *len, or -1 for any other kind (nothing set).
 */
static int scalar_text(struct dw_decoder *dec, jv_t v, char *buf, const char **text, size_t *len)
{
    enum jv_kind k = jv_kind(dec, v);
    if (k == JV_STR) {
        *text = jv_string(dec, v, len);
    } else if (k == JV_INT || k == JV_REAL) {
        *len = jv_number_text(dec, v, buf, NUM_TEXT_MAX);
        *text = buf;
    } else if (k == JV_TRUE || k == JV_FALSE) {
        *text = k == JV_TRUE ? "true" : "false";
        *len = strlen(*text);
    } else {
        return -1;
    }
    return 0;
}

/* The serving status: absent or null is none; a string, number or boolean is compared as its
 * text with input.error_values; an object, array or non-finite token is bad_status. */
static enum dw_bad_reason get_status(struct dw_decoder *dec, jv_t v, struct dw_prediction *out,
                                     char *errstr, size_t errstr_size)
{
    out->has_status = 0;
    out->status_error = 0;
    if (jv_missing(dec, v)) {
        return DW_BAD_NONE;
    }
    char num[NUM_TEXT_MAX];
    const char *text;
    size_t len;
    if (scalar_text(dec, v, num, &text, &len) != 0) {
        return bad(DW_BAD_STATUS, errstr, errstr_size,
                   "status: expected a string, number or boolean, got %s",
                   kind_name(jv_kind(dec, v)));
    }
    out->has_status = 1;
    out->status_error = dw_decode_status_error(dec->cfg, text, len);
    return DW_BAD_NONE;
}

/*
 * One pass over the features object: each member's name goes through the model's hash table to
 * its feature index (a later duplicate key overwrites an earlier one, as in jansson), then the
 * configured features are read in configuration order, so the first bad one is reported.
 */
static enum dw_bad_reason get_features(struct dw_decoder *dec, jv_t obj, size_t model_idx,
                                       struct dw_prediction *out, char *errstr, size_t errstr_size)
{
    const struct dw_model_cfg *model = &dec->cfg->models[model_idx];
    struct name_map *map = &dec->maps[model_idx];
    size_t n = model->n_features;
    for (size_t i = 0; i < n; i++) {
        struct dw_val *val = &out->features[i];
        val->kind = DW_VAL_MISSING;
        val->num = 0.0;
        val->str = NULL;
        val->len = 0;
        dec->feat_tok[i] = JV_NONE;
    }
    if (jv_missing(dec, obj)) {
        return DW_BAD_NONE;
    }
    if (jv_kind(dec, obj) != JV_OBJ) {
        return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size, "features: expected an object, got %s",
                   jv_type_name(dec, obj));
    }
    index_members(dec, obj, map, dec->feat_tok);
    for (size_t i = 0; i < n; i++) {
        const struct dw_feature_cfg *f = &model->features[i];
        struct dw_val *val = &out->features[i];
        jv_t v = dec->feat_tok[map->alias[i]];
        if (jv_missing(dec, v)) {
            continue;
        }
        enum jv_kind k = jv_kind(dec, v);
        if (f->type == DW_FEATURE_NUMERIC) {
            if (k == JV_INT || k == JV_REAL) {
                val->num = jv_number(dec, v);
            } else if (k == JV_TRUE || k == JV_FALSE) {
                val->num = k == JV_TRUE ? 1.0 : 0.0;
            } else if (k == JV_NAN) {
                val->num = NAN;
            } else if (k == JV_PINF || k == JV_NINF) {
                val->num = k == JV_PINF ? INFINITY : -INFINITY;
            } else {
                return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                           "features.%s: expected a number, got %s", f->name, kind_name(k));
            }
            val->kind = DW_VAL_NUM;
            continue;
        }
        int scalar =
            scalar_text(dec, v, dec->feat_text + i * NUM_TEXT_MAX, &val->str, &val->len) == 0;
        if (!scalar && k != JV_NAN && k != JV_PINF && k != JV_NINF) {
            return bad(DW_BAD_WRONG_TYPE, errstr, errstr_size,
                       "features.%s: expected a string, number or boolean, got %s", f->name,
                       kind_name(k));
        }
        if (!scalar) {
            val->str = kind_name(k); /* the token's own text: "NaN", "Infinity", "-Infinity" */
            val->len = strlen(val->str);
        }
        val->kind = DW_VAL_STR;
    }
    return DW_BAD_NONE;
}

enum dw_bad_reason dw_decode_prediction(struct dw_decoder *dec, const void *buf, size_t len,
                                        int64_t kafka_ts_ms, struct dw_prediction *out,
                                        char *errstr, size_t errstr_size)
{
    out->id = NULL;
    out->id_len = 0;
    out->model = NULL;
    out->model_idx = 0;
    out->version = "";
    out->version_len = 0;
    out->ts_ms = kafka_ts_ms;
    out->has_score = 0;
    out->score = 0.0;
    out->has_latency = 0;
    out->latency_ms = 0.0;
    out->has_status = 0;
    out->status_error = 0;
    memset(&out->pred, 0, sizeof(out->pred));
    if (errstr && errstr_size > 0) {
        errstr[0] = '\0';
    }

    enum dw_bad_reason r = doc_open(dec, buf, len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_id(dec, ptr_get(dec, &dec->p_id), &out->id, &out->id_len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_model(dec, ptr_get(dec, &dec->p_model), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    const struct dw_model_cfg *model = out->model;
    r = get_version(dec, ptr_get(dec, &dec->p_version), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_timestamp(dec, ptr_get(dec, &dec->p_ts), kafka_ts_ms, &out->ts_ms, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_class(dec, ptr_get(dec, &dec->p_pred), "prediction", model->task == DW_TASK_REGRESSION,
                  &out->pred, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_score(dec, ptr_get(dec, &dec->p_score), model, out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_latency(dec, ptr_get(dec, &dec->p_latency), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_status(dec, ptr_get(dec, &dec->p_status), out, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    return get_features(dec, ptr_get(dec, &dec->p_features), out->model_idx, out, errstr,
                        errstr_size);
}

enum dw_bad_reason dw_decode_label(struct dw_decoder *dec, const void *buf, size_t len,
                                   int64_t kafka_ts_ms, struct dw_label *out, char *errstr,
                                   size_t errstr_size)
{
    out->id = NULL;
    out->id_len = 0;
    out->ts_ms = kafka_ts_ms;
    memset(&out->label, 0, sizeof(out->label));
    if (errstr && errstr_size > 0) {
        errstr[0] = '\0';
    }

    enum dw_bad_reason r = doc_open(dec, buf, len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_id(dec, ptr_get(dec, &dec->p_label_id), &out->id, &out->id_len, errstr, errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    r = get_timestamp(dec, ptr_get(dec, &dec->p_label_ts), kafka_ts_ms, &out->ts_ms, errstr,
                      errstr_size);
    if (r != DW_BAD_NONE) {
        return r;
    }
    /* labels carry no model: a number is kept as text and as number (classification or
     * regression is decided at the join, where the prediction's model is known) */
    return get_class(dec, ptr_get(dec, &dec->p_label), "label", 0, &out->label, errstr,
                     errstr_size);
}

char *dw_dead_letter_text(enum dw_bad_reason why, const char *err, const char *topic,
                          int32_t partition, int64_t offset, const void *payload, size_t len)
{
    json_t *dl = json_pack("{s:s,s:s,s:s,s:i,s:I,s:I}", "reason", dw_bad_reason_name(why), "error",
                           err, "topic", topic, "partition", (int)partition, "offset",
                           (json_int_t)offset, "payload_size", (json_int_t)len);
    size_t keep = len;
    if (why == DW_BAD_TOO_LARGE && keep > DW_DEAD_LETTER_PAYLOAD_MAX) {
        keep = DW_DEAD_LETTER_PAYLOAD_MAX;
        json_object_set_new(dl, "payload_truncated", json_true());
    }
    if (!payload) { /* a message without a value (a tombstone) */
        json_object_set_new(dl, "payload", json_null());
    } else if (why != DW_BAD_UTF8 && why != DW_BAD_TOO_LARGE && dw_utf8_valid(payload, keep)) {
        json_object_set_new(dl, "payload", json_stringn(payload, keep));
    } else {
        char *b64 = dw_base64(payload, keep);
        json_object_set_new(dl, "payload_base64", json_string(b64));
        free(b64);
    }
    char *text = json_dumps(dl, JSON_COMPACT);
    json_decref(dl);
    return text;
}
