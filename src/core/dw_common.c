/*
 * dw_common.c - small helpers every module uses: clocks, errors, hashing, allocation that
 * aborts on out-of-memory, RFC 3339 timestamps and durations.
 */
#define _GNU_SOURCE
#include "driftwatch/core/dw_common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

void dw_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "driftwatch: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

static dw_warn_fn warn_fn;

void dw_warn_hook(dw_warn_fn fn)
{
    warn_fn = fn;
}

void dw_warn(const char *msg, const char *detail_fmt, ...)
{
    if (!warn_fn) {
        return;
    }
    char detail[512];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof(detail), detail_fmt, ap);
    va_end(ap);
    warn_fn(msg, detail);
}

int64_t dw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double dw_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int dw_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

uint64_t dw_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL; /* FNV prime */
    }
    return h;
}

uint64_t dw_fp64(const void *data, size_t len)
{
    const unsigned char *p = data;
    /* Each step h -> (h ^ dw_fmix64(w)) * odd + c is a bijection of h for a fixed word and of the
     * word for a fixed h; the length enters first, so "a" and "a\0" differ. */
    uint64_t h = dw_fmix64(0x9e3779b97f4a7c15ULL + (uint64_t)len);
    for (size_t i = 0; i < len; i += 8) {
        size_t n = len - i < 8 ? len - i : 8;
        h = (h ^ dw_fmix64(dw_load_le(p + i, n) + 0x632be59bd9b4e019ULL)) * 0x9fb21c651e98df25ULL +
            0x94d049bb133111ebULL;
        h = (h << 29) | (h >> 35);
    }
    h = dw_fmix64(h);
    return h ? h : 1;
}

static void *oom_check(void *p)
{
    if (!p) {
        fprintf(stderr, "driftwatch: out of memory\n");
        abort();
    }
    return p;
}

void *dw_malloc(size_t size)
{
    return oom_check(malloc(size ? size : 1));
}

void *dw_calloc(size_t n, size_t size)
{
    return oom_check(calloc(n ? n : 1, size ? size : 1));
}

void *dw_realloc(void *ptr, size_t size)
{
    return oom_check(realloc(ptr, size ? size : 1));
}

char *dw_strdup(const char *s)
{
    return oom_check(strdup(s ? s : ""));
}

char *dw_strndup(const char *s, size_t n)
{
    char *d = dw_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

uint64_t dw_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double dw_rand_u01(uint64_t *state)
{
    return (double)(dw_splitmix64(state) >> 11) * 0x1.0p-53;
}

double dw_rand_normal(uint64_t *state)
{
    double u1 = 1.0 - dw_rand_u01(state); /* (0, 1] so log() is finite */
    double u2 = dw_rand_u01(state);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void dw_hex(const void *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void dw_sha256_hex(const void *data, size_t len, size_t n_bytes, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok = EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL);
    dw_assert(ok == 1 && n_bytes <= md_len);
    dw_hex(md, n_bytes, out);
}

char *dw_base64(const void *data, size_t n)
{
    char *out = dw_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    return out;
}

long dw_base64_decode(const char *text, unsigned char **out)
{
    size_t len = strlen(text);
    *out = NULL;
    /* The alphabet, then at most two '=' that end the text. */
    size_t data_len = len;
    while (data_len > 0 && len - data_len < 2 && text[data_len - 1] == '=') {
        data_len--;
    }
    for (size_t i = 0; i < data_len; i++) {
        char c = text[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/';
        if (!ok) {
            return -1;
        }
    }
    if (data_len == 0 || data_len % 4 == 1 || (data_len != len && len % 4 != 0)) {
        return -1;
    }
    /* EVP_DecodeBlock wants whole quanta and returns 3 bytes per 4 characters, padding
     * included: pad the text, then subtract the '=' count. */
    size_t padded = (len + 3) / 4 * 4;
    char *in = dw_malloc(padded + 1);
    memcpy(in, text, len);
    memset(in + len, '=', padded - len);
    in[padded] = '\0';
    size_t pad = padded - data_len;
    unsigned char *bytes = dw_malloc(padded / 4 * 3 + 1);
    int n = EVP_DecodeBlock(bytes, (const unsigned char *)in, (int)padded);
    free(in);
    if (n < 0 || (size_t)n <= pad) {
        free(bytes);
        return -1;
    }
    *out = bytes;
    return n - (long)pad;
}

/* Room for n more bytes and the NUL. */
static void sbuf_grow(struct dw_sbuf *sb, size_t n)
{
    if (sb->len + n + 1 <= sb->cap) {
        return;
    }
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + n + 1) {
        cap *= 2;
    }
    sb->s = dw_realloc(sb->s, cap);
    sb->cap = cap;
}

void dw_sbuf_add(struct dw_sbuf *sb, const char *s, size_t n)
{
    sbuf_grow(sb, n);
    memcpy(sb->s + sb->len, s, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void dw_sbuf_adds(struct dw_sbuf *sb, const char *s)
{
    dw_sbuf_add(sb, s, strlen(s));
}

void dw_sbuf_printf(struct dw_sbuf *sb, const char *fmt, ...)
{
    /* One pass when the text fits the room left (the common case for a reused buffer). */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->s ? sb->s + sb->len : NULL, sb->s ? sb->cap - sb->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (sb->s) {
            sb->s[sb->len] = '\0';
        }
        return;
    }
    if (!sb->s || (size_t)n >= sb->cap - sb->len) {
        sbuf_grow(sb, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
}

void dw_sbuf_fill(struct dw_sbuf *sb, char c, size_t n)
{
    sbuf_grow(sb, n);
    memset(sb->s + sb->len, c, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void dw_sbuf_reset(struct dw_sbuf *sb)
{
    sb->len = 0;
    if (sb->s) {
        sb->s[0] = '\0';
    }
}

char *dw_sbuf_take(struct dw_sbuf *sb)
{
    char *s = sb->s ? sb->s : dw_strdup("");
    sb->s = NULL;
    sb->len = sb->cap = 0;
    return s;
}

void dw_sbuf_free(struct dw_sbuf *sb)
{
    free(sb->s);
    sb->s = NULL;
    sb->len = sb->cap = 0;
}

int dw_name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(name, names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/*
 * Rounding to more digits never moves further from v, so "reads back with N digits" is
 * monotone in N and a binary search over 1..17 digits finds the fewest in <= 5 tries (17
 * always reads back). Integral values below 1e15 are exact in "%.0f" and need no search.
 */
size_t dw_fmt_double(double v, char *buf, size_t size)
{
    char tmp[DW_FMT_DOUBLE_SIZE];
    const char *text = tmp;
    if (size == 0) {
        return 0;
    }
    if (isnan(v)) {
        text = "NaN";
    } else if (isinf(v)) {
        text = v > 0 ? "+Inf" : "-Inf";
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(tmp, sizeof(tmp), "%.0f", v); /* also "-0" */
    } else {
        int lo = 1;
        int hi = 17;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            snprintf(tmp, sizeof(tmp), "%.*e", mid - 1, v);
            if (strtod(tmp, NULL) == v) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        snprintf(tmp, sizeof(tmp), "%.*e", lo - 1, v);
        const char *e = strchr(tmp, 'e');
        long exp10 = e ? strtol(e + 1, NULL, 10) : 0;
        if (exp10 >= -4 && exp10 < 16) {
            int decimals = lo - 1 - (int)exp10;
            snprintf(tmp, sizeof(tmp), "%.*f", decimals > 0 ? decimals : 0, v);
        }
    }
    size_t n = DW_MIN(strlen(text), size - 1);
    memcpy(buf, text, n);
    buf[n] = '\0';
    return n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp + (mp < 10 ? 3 : -9);
    *y = (int)(yy + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

/* the n <= 4 digits at s as a number, or -1 when one of them is not a digit */
static inline int digits_at(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned dig = (unsigned char)s[i] - (unsigned)'0';
        if (dig > 9) {
            return -1;
        }
        v = v * 10 + (int)dig;
    }
    return v;
}

int dw_time_parse_rfc3339(const char *s, size_t len, int64_t *ms_out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* "YYYY-MM-DDTHH:MM:SS": a fixed layout, read at fixed places (no position to carry) */
    if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':') {
        return -1;
    }
    int y = digits_at(s, 4), mo = digits_at(s + 5, 2), d = digits_at(s + 8, 2);
    int h = digits_at(s + 11, 2), mi = digits_at(s + 14, 2), sec = digits_at(s + 17, 2);
    int frac_ms = 0;
    size_t pos = 19;
    if ((y | mo | d | h | mi | sec) < 0) {
        return -1;
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60) {
        return -1;
    }
    if (pos < len && s[pos] == '.') {
        pos++;
        int ndig = 0;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            if (ndig < 3) {
                frac_ms = frac_ms * 10 + (s[pos] - '0');
            }
            ndig++;
            pos++;
        }
        if (ndig == 0) {
            return -1;
        }
        for (int i = ndig; i < 3; i++) {
            frac_ms *= 10;
        }
    }
    int64_t offset_min = 0;
    if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
        pos++;
    } else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
        int sign = s[pos] == '-' ? -1 : 1;
        /* "+HH:MM" */
        if (len - pos < 6 || s[pos + 3] != ':') {
            return -1;
        }
        int oh = digits_at(s + pos + 1, 2), om = digits_at(s + pos + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59) {
            return -1;
        }
        pos += 6;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (pos != len) {
        return -1;
    }
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec) - offset_min * 60;
    *ms_out = secs * 1000 + frac_ms;
    return 0;
}

void dw_time_format_rfc3339(int64_t ms, char *buf, size_t buf_size)
{
    int64_t secs = dw_floor_div(ms, 1000);
    int msec = (int)(ms - secs * 1000);
    int64_t days = dw_floor_div(secs, 86400);
    int64_t rem = secs - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    if (msec) {
        snprintf(buf, buf_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem % 3600 / 60), (int)(rem % 60), msec);
    } else {
        snprintf(buf, buf_size, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem % 3600 / 60), (int)(rem % 60));
    }
}

int dw_duration_unit(const char *suffix, double *ms_per_unit)
{
    static const struct {
        const char *suffix;
        double ms;
    } units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < DW_ARRAY_SIZE(units); i++) {
        if (strcmp(suffix, units[i].suffix) == 0) {
            *ms_per_unit = units[i].ms;
            return 0;
        }
    }
    return -1;
}

int dw_hostport_split(const char *s, size_t len, char *host, size_t host_size, int *port)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0 && !colon; i--) {
        colon = s[i - 1] == ':' ? s + i - 1 : NULL;
    }
    int64_t p = 0;
    if (!colon || dw_parse_i64(colon + 1, len - (size_t)(colon + 1 - s), 1, 65535, &p) != 0) {
        return -1;
    }
    size_t n = (size_t)(colon - s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n >= host_size) {
        return -1;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

int dw_hostport_parse(const char *s, char *host, size_t host_size, int *port)
{
    return dw_hostport_split(s, strlen(s), host, host_size, port) == 0 && host[0] ? 0 : -1;
}

int dw_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    if (!s || len == 0) {
        return -1;
    }
    int neg = s[0] == '-';
    size_t i = (size_t)neg;
    if (i == len) {
        return -1;
    }
    /* Magnitude limit: 2^63 for a negative number, 2^63 - 1 otherwise. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t mag = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (mag > (limit - d) / 10) {
            return -1;
        }
        mag = mag * 10 + d;
    }
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int dw_duration_parse(const char *s, int64_t *ms_out)
{
    if (!s || !*s) {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) {
        return -1;
    }
    double mult;
    if (dw_duration_unit(end, &mult) != 0) {
        return -1;
    }
    double ms = v * mult;
    if (ms > (double)DW_DURATION_MAX_MS) {
        return -1;
    }
    *ms_out = (int64_t)llround(ms);
    return 0;
}

/* Order-preserving map of a double's bits to an unsigned key (negatives flipped). */
static uint64_t sort_key(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return (u >> 63) ? ~u : (u | 0x8000000000000000ULL);
}

static double sort_unkey(uint64_t k)
{
    uint64_t u = (k >> 63) ? (k & 0x7FFFFFFFFFFFFFFFULL) : ~k;
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

#define SORT_SMALL 64 /* elements: insertion sort below this, radix sort above */

void dw_sort_doubles(double *v, size_t n)
{
    if (n < SORT_SMALL) {
        for (size_t i = 1; i < n; i++) {
            double x = v[i];
            size_t j = i;
            for (; j > 0 && v[j - 1] > x; j--) {
                v[j] = v[j - 1];
            }
            v[j] = x;
        }
        return;
    }
    /* LSD radix sort, 8 passes of 8 bits. The 8 byte histograms are counted in one pass over
     * the keys, and a pass where every key shares the byte is skipped: the sorted level 0 of a
     * checkpointed sketch is a few dozen new values at a time, where 8 counting passes cost
     * more than the sort. */
    uint64_t *a = dw_malloc(2 * n * sizeof(*a)), *b = a + n, *mem = a;
    size_t count[8][256];
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < n; i++) {
        uint64_t k = sort_key(v[i]);
        a[i] = k;
        for (unsigned d = 0; d < 8; d++) {
            count[d][(k >> (8 * d)) & 0xFF]++;
        }
    }
    for (unsigned d = 0; d < 8; d++) {
        unsigned shift = 8 * d;
        if (count[d][(a[0] >> shift) & 0xFF] == n) {
            continue;
        }
        size_t pos = 0;
        for (size_t x = 0; x < 256; x++) {
            size_t c = count[d][x];
            count[d][x] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++) {
            b[count[d][(a[i] >> shift) & 0xFF]++] = a[i];
        }
        uint64_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = sort_unkey(a[i]);
    }
    free(mem);
}

char *dw_idempotency_key(const char *group, const char *model, int64_t window_start_ms,
                         const char *what)
{
    struct dw_sbuf sb = {0};
    dw_sbuf_printf(&sb, "%s\x1f%s\x1f%lld\x1f%s", group ? group : "", model ? model : "",
                   (long long)window_start_ms, what ? what : "");
    char *key = dw_malloc(33);
    dw_sha256_hex(sb.s, sb.len, 16, key);
    dw_sbuf_free(&sb);
    return key;
}
