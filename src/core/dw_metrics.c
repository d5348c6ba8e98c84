/*
 * dw_metrics.c - the process-wide Prometheus registry.
 *
 * Why this shape:
 * - Updates are the hot path (every consumed message bumps a counter), registration and
 *   rendering are rare. So each series owns one `_Atomic uint64_t` holding the bits of a
 *   double: set is a store, add is a compare-and-swap loop, and no lock is ever taken to
 *   update. (`_Atomic double` would need libatomic for the CAS on some toolchains; the bit
 *   trick needs nothing.)
 * - Registration and render share one mutex. A series, once created, never moves and is only
 *   freed by dw_metrics_reset() (tests), so callers keep the pointer and update it from any
 *   thread without looking it up again.
 * - Series are grouped into families by name. The exposition format wants one `# HELP` and one
 *   `# TYPE` line per family followed by all of its series, so a family keeps its series in a
 *   list and families are kept in registration order. A second registration of a name with a
 *   different type or help is a programming error and trips dw_assert.
 * - Look-up of an existing series (dw_metrics_series called again for a run-time label set)
 *   goes through a fixed chained hash table over (name, labels), so a registry with thousands
 *   of per-feature series stays cheap to query.
 * - Names and label text are validated at registration: a malformed line would make the whole
 *   scrape fail in Prometheus, so it is better to abort in the test that registers it.
 * - Values: dw_fmt_double(), the shortest text that reads back to the same double (so the
 *   text is exact, like Go's strconv 'g' -1 used by Prometheus itself; integral values below
 *   1e16 without exponent, "42"), -0 as "0", and non-finite values as `NaN`, `+Inf`, `-Inf`.
 * - `driftwatch_build_info{version="..."} 1` is registered lazily by the first render, so every
 *   scrape carries it without every caller having to remember it.
 */
#include "driftwatch/core/dw_metrics.h"

#include "driftwatch/core/dw_common.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#ifndef DW_VERSION
#define DW_VERSION "unknown"
#endif

/* Buckets of the (name, labels) look-up table; a power of two (count). */
#define DW_METRICS_BUCKETS 1024

struct dw_family;

struct dw_metric {
    _Atomic uint64_t bits; /* the double value, as its IEEE-754 bits */
    struct dw_family *fam;
    char *labels;            /* exposition text without braces, "" when none */
    uint64_t hash;           /* of name and labels */
    struct dw_metric *next;  /* next series of the family, in registration order */
    struct dw_metric *hnext; /* next series in the same hash bucket */
};

struct dw_family {
    char *name;
    char *help;
    enum dw_metric_type type;
    struct dw_metric *first;
    struct dw_metric *last;
    struct dw_family *next; /* registration order */
};

static struct {
    pthread_mutex_t lock;
    struct dw_family *first;
    struct dw_family *last;
    struct dw_metric *buckets[DW_METRICS_BUCKETS];
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t double_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static uint64_t series_hash(const char *name, const char *labels)
{
    /* Hash "name\0labels" by chaining FNV-1a: fold the name hash into the labels' bytes. */
    uint64_t h = dw_hash64(name, strlen(name) + 1);
    uint64_t hl = dw_hash64(labels, strlen(labels));
    return h ^ (hl + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

static int is_name_start(char c, int allow_colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (allow_colon && c == ':');
}

static int is_name_char(char c, int allow_colon)
{
    return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_metric_name(const char *s)
{
    if (!is_name_start(s[0], 1)) {
        return 0;
    }
    for (const char *p = s + 1; *p; p++) {
        if (!is_name_char(*p, 1)) {
            return 0;
        }
    }
    return 1;
}

/* `lname="value"(,lname="value")*` with values escaped (\\, \", \n only), or "". */
static int valid_labels(const char *s)
{
    const char *p = s;
    if (*p == '\0') {
        return 1;
    }
    for (;;) {
        if (!is_name_start(*p, 0)) {
            return 0;
        }
        p++;
        while (is_name_char(*p, 0)) {
            p++;
        }
        if (p[0] != '=' || p[1] != '"') {
            return 0;
        }
        p += 2;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n') {
                return 0;
            }
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
                    return 0;
                }
                p++;
            }
            p++;
        }
        p++;
        if (*p == '\0') {
            return 1;
        }
        if (*p != ',') {
            return 0;
        }
        p++;
    }
}

/* Called with reg.lock held. */
static struct dw_family *family_find(const char *name)
{
    for (struct dw_family *fam = reg.first; fam; fam = fam->next) {
        if (strcmp(fam->name, name) == 0) {
            return fam;
        }
    }
    return NULL;
}

/* The series (name, labels) of the table, or NULL. Called with reg.lock held. */
static struct dw_metric *lookup_locked(const char *name, const char *labels, uint64_t hash)
{
    size_t bucket = (size_t)(hash & (DW_METRICS_BUCKETS - 1));
    for (struct dw_metric *m = reg.buckets[bucket]; m; m = m->hnext) {
        if (m->hash == hash && strcmp(m->fam->name, name) == 0 && strcmp(m->labels, labels) == 0) {
            return m;
        }
    }
    return NULL;
}

struct dw_metric *dw_metrics_find(const char *name, const char *labels)
{
    if (!labels) {
        labels = "";
    }
    pthread_mutex_lock(&reg.lock);
    struct dw_metric *m = lookup_locked(name, labels, series_hash(name, labels));
    pthread_mutex_unlock(&reg.lock);
    return m;
}

struct dw_metric *dw_metrics_series(const char *name, const char *help, enum dw_metric_type type,
                                    const char *labels)
{
    dw_assert(name != NULL && help != NULL);
    dw_assert(type == DW_METRIC_COUNTER || type == DW_METRIC_GAUGE);
    if (!labels) {
        labels = "";
    }
    dw_assert(valid_metric_name(name));
    dw_assert(valid_labels(labels));

    uint64_t hash = series_hash(name, labels);
    size_t bucket = (size_t)(hash & (DW_METRICS_BUCKETS - 1));

    pthread_mutex_lock(&reg.lock);
    struct dw_metric *found = lookup_locked(name, labels, hash);
    if (found) {
        /* Same name must mean the same family. */
        dw_assert(found->fam->type == type);
        dw_assert(strcmp(found->fam->help, help) == 0);
        pthread_mutex_unlock(&reg.lock);
        return found;
    }

    struct dw_family *fam = family_find(name);
    if (fam) {
        dw_assert(fam->type == type);
        dw_assert(strcmp(fam->help, help) == 0);
    } else {
        fam = dw_calloc(1, sizeof(*fam));
        fam->name = dw_strdup(name);
        fam->help = dw_strdup(help);
        fam->type = type;
        if (reg.last) {
            reg.last->next = fam;
        } else {
            reg.first = fam;
        }
        reg.last = fam;
    }

    struct dw_metric *m = dw_calloc(1, sizeof(*m));
    atomic_init(&m->bits, double_bits(0.0));
    m->fam = fam;
    m->labels = dw_strdup(labels);
    m->hash = hash;
    if (fam->last) {
        fam->last->next = m;
    } else {
        fam->first = m;
    }
    fam->last = m;
    m->hnext = reg.buckets[bucket];
    reg.buckets[bucket] = m;
    pthread_mutex_unlock(&reg.lock);
    return m;
}

void dw_metric_add(struct dw_metric *m, double v)
{
    /* A counter only goes up; a negative add is a caller bug. */
    dw_assert(m->fam->type != DW_METRIC_COUNTER || !(v < 0));
    uint64_t old = atomic_load_explicit(&m->bits, memory_order_relaxed);
    for (;;) {
        uint64_t upd = double_bits(bits_double(old) + v);
        if (atomic_compare_exchange_weak_explicit(&m->bits, &old, upd, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            return;
        }
    }
}

void dw_metric_inc(struct dw_metric *m)
{
    dw_metric_add(m, 1.0);
}

void dw_metric_set(struct dw_metric *m, double v)
{
    atomic_store_explicit(&m->bits, double_bits(v), memory_order_relaxed);
}

double dw_metric_get(const struct dw_metric *m)
{
    /* atomic_load wants a pointer to non-const in some C11 library headers. */
    struct dw_metric *mm = (struct dw_metric *)m;
    return bits_double(atomic_load_explicit(&mm->bits, memory_order_relaxed));
}

/* Formats a sample value as the exposition format wants it: dw_fmt_double(), which writes
 * NaN, +Inf and -Inf as this format spells them, with -0 as 0. */
static void format_value(double v, char *buf, size_t buf_size)
{
    dw_fmt_double(v == 0 ? 0.0 : v, buf, buf_size);
}

/* HELP text escapes backslash and newline (not quotes). */
static void put_help(struct dw_sbuf *b, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\') {
            dw_sbuf_add(b, "\\\\", 2);
        } else if (*p == '\n') {
            dw_sbuf_add(b, "\\n", 2);
        } else {
            dw_sbuf_add(b, p, 1);
        }
    }
}

static void ensure_build_info(void)
{
    char esc[128];
    char labels[160];
    dw_metrics_escape(DW_VERSION, esc, sizeof(esc));
    snprintf(labels, sizeof(labels), "version=\"%s\"", esc);
    struct dw_metric *m = dw_metrics_series(
        "driftwatch_build_info", "Build information of this driftwatch binary; always 1.",
        DW_METRIC_GAUGE, labels);
    dw_metric_set(m, 1);
}

char *dw_metrics_render(void)
{
    struct dw_sbuf b = {0};
    char val[DW_FMT_DOUBLE_SIZE];

    ensure_build_info();

    pthread_mutex_lock(&reg.lock);
    for (struct dw_family *fam = reg.first; fam; fam = fam->next) {
        dw_sbuf_adds(&b, "# HELP ");
        dw_sbuf_adds(&b, fam->name);
        dw_sbuf_adds(&b, " ");
        put_help(&b, fam->help);
        dw_sbuf_adds(&b, "\n# TYPE ");
        dw_sbuf_adds(&b, fam->name);
        dw_sbuf_adds(&b, fam->type == DW_METRIC_COUNTER ? " counter\n" : " gauge\n");
        for (struct dw_metric *m = fam->first; m; m = m->next) {
            format_value(dw_metric_get(m), val, sizeof(val));
            dw_sbuf_adds(&b, fam->name);
            if (m->labels[0] != '\0') {
                dw_sbuf_adds(&b, "{");
                dw_sbuf_adds(&b, m->labels);
                dw_sbuf_adds(&b, "}");
            }
            dw_sbuf_adds(&b, " ");
            dw_sbuf_adds(&b, val);
            dw_sbuf_adds(&b, "\n");
        }
    }
    pthread_mutex_unlock(&reg.lock);
    return dw_sbuf_take(&b);
}

void dw_metrics_reset(void)
{
    pthread_mutex_lock(&reg.lock);
    struct dw_family *fam = reg.first;
    while (fam) {
        struct dw_family *fnext = fam->next;
        struct dw_metric *m = fam->first;
        while (m) {
            struct dw_metric *mnext = m->next;
            free(m->labels);
            free(m);
            m = mnext;
        }
        free(fam->name);
        free(fam->help);
        free(fam);
        fam = fnext;
    }
    reg.first = NULL;
    reg.last = NULL;
    memset(reg.buckets, 0, sizeof(reg.buckets));
    pthread_mutex_unlock(&reg.lock);
}

void dw_metrics_escape(const char *value, char *buf, size_t buf_size)
{
    size_t o = 0;
    if (!buf || buf_size == 0) {
        return;
    }
    if (!value) {
        value = "";
    }
    const char *p = value;
    while (*p) {
        const char *unit = p;
        size_t n = 1;
        if (*p == '\\') {
            unit = "\\\\";
            n = 2;
        } else if (*p == '"') {
            unit = "\\\"";
            n = 2;
        } else if (*p == '\n') {
            unit = "\\n";
            n = 2;
        } else if ((unsigned char)*p >= 0xC0) {
            /* A UTF-8 lead byte: keep its continuation bytes with it. */
            while (((unsigned char)p[n] & 0xC0) == 0x80) {
                n++;
            }
        }
        /* Truncate rather than split an escape sequence or a UTF-8 character. */
        if (o + n + 1 > buf_size) {
            break;
        }
        memcpy(buf + o, unit, n);
        o += n;
        p += (unit == p) ? n : 1;
    }
    buf[o] = '\0';
}
