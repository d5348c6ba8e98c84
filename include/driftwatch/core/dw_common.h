/*
 * dw_common.h - conventions shared by every module.
 *
 * Errors: functions return 0 on success and -1 (or a negative value) on failure, and put the
 * human-readable reason in a caller-provided `char *errstr, size_t errstr_size`, like
 * librdkafka's constructors. Invariants go through dw_assert(), which records file and line
 * (Redis's serverAssert). exit() is only called from main.c.
 */
#ifndef DW_COMMON_H
#define DW_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DW_MAX(a, b) ((a) > (b) ? (a) : (b))

/** @brief Aborts with file and line when an invariant does not hold. */
#define dw_assert(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            dw_assert_fail(#cond, __FILE__, __LINE__);                                             \
        }                                                                                          \
    } while (0)

void dw_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/**
 * @brief Where the core's warnings go. Core modules do no I/O; what they must report (an input
 *        they skip) goes to the hook the process installs (the log, in src/io/dw_log.c), and
 *        nowhere when none is installed (unit tests).
 */
typedef void (*dw_warn_fn)(const char *msg, const char *detail);
void dw_warn_hook(dw_warn_fn fn);
/** @brief Reports a warning of the core: `msg` (stable text) with printf-formatted detail. */
void dw_warn(const char *msg, const char *detail_fmt, ...) __attribute__((format(printf, 2, 3)));

/** @returns wall-clock time in milliseconds since the epoch. */
int64_t dw_now_ms(void);

/** @returns a monotonic clock reading in milliseconds (for timeouts and periods). */
int64_t dw_mono_ms(void);

/** @returns the same monotonic clock in seconds, to the nanosecond (for durations). */
double dw_mono_s(void);

/** @brief snprintf into errstr (NULL-safe); always returns -1 so callers can `return dw_err(...)`.
 */
int dw_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief 64-bit FNV-1a hash of a byte string. */
uint64_t dw_hash64(const void *data, size_t len);

/**
 * @brief 64-bit fingerprint of a byte string, where a fingerprint stands for the string itself
 *        (dw_join.h's joined records): the same on every platform, whole 8-byte words through
 *        bijective mixing steps, so strings of one length that differ in one word never
 *        collide (but for the pair whose mixes are 0 and 1: 0 is returned as 1, since 0 marks
 *        an empty slot) and other pairs collide with probability about 2^-64. Not FNV-1a: its
 *        byte-at-a-time steps are weak for that.
 */
uint64_t dw_fp64(const void *data, size_t len);

/** @brief malloc/calloc/realloc/strdup that abort on out-of-memory (never return NULL). */
void *dw_malloc(size_t size);
void *dw_calloc(size_t n, size_t size);
void *dw_realloc(void *ptr, size_t size);
char *dw_strdup(const char *s);
char *dw_strndup(const char *s, size_t n);

/**
 * @brief SplitMix64 (Steele, Lea and Flood): the next 64 random bits of the sequence `state`
 *        walks. Deterministic per seed; what sketches, generators and tests draw from.
 */
uint64_t dw_splitmix64(uint64_t *state);

/** @returns 1 when the C string c is exactly the len bytes at s (which may hold a NUL: then
 *           never), in one pass and without strlen(c): a table lookup compares a stored name
 *           with a message's bytes for every event. */
static inline int dw_str_is(const char *c, const char *s, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        if (c[k] != s[k] || c[k] == '\0') {
            return 0;
        }
    }
    return c[len] == '\0';
}

/** @returns the n <= 8 bytes at p as a little-endian word (a shorter run zero-padded), whatever
 *           the machine's byte order: one load when n is 8. */
static inline uint64_t dw_load_le(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t w = 0;
    if (n == 8) {
        memcpy(&w, b, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        return w;
    }
    for (size_t i = n; i-- > 0;) {
        w = w << 8 | b[i];
    }
    return w;
}

/** @returns MurmurHash3's 64-bit finaliser of k: a bijection that mixes every input bit into
 *           every output bit (hash tables pick slots from its low bits). */
static inline uint64_t dw_fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/**
 * @brief Neumaier's compensated sum: keeps long sums (of mixed signs too) accurate to about one
 *        ulp of the result, where a plain loop loses up to n ulps. Zero-initialise ({0}).
 */
struct dw_ksum {
    double s; /* the running sum */
    double c; /* the low-order parts it lost */
};

static inline void dw_ksum_add(struct dw_ksum *k, double x)
{
    double t = k->s + x;
    double big = k->s < 0 ? -k->s : k->s, small = x < 0 ? -x : x;
    if (big >= small) {
        k->c += (k->s - t) + x;
    } else {
        k->c += (x - t) + k->s;
    }
    k->s = t;
}

static inline double dw_ksum_get(const struct dw_ksum *k)
{
    return k->s + k->c;
}

/** @returns a uniform double in [0, 1) from dw_splitmix64 (53 bits). */
double dw_rand_u01(uint64_t *state);

/** @returns a standard normal double by Box-Muller from two dw_rand_u01() draws. */
double dw_rand_normal(uint64_t *state);

/** @brief Lower-case hex of n bytes into out (2 n + 1 bytes, NUL-terminated). */
void dw_hex(const void *bytes, size_t n, char *out);

/** @brief The first n_bytes (at most 32) of SHA-256(data) as hex into out (2 n_bytes + 1). */
void dw_sha256_hex(const void *data, size_t len, size_t n_bytes, char *out);

/** @returns the base64 (RFC 4648, padded) of n bytes, malloc'ed. */
char *dw_base64(const void *data, size_t n);

/**
 * @brief Decodes standard base64 (padding optional) into *out (malloc'ed).
 * @returns the byte count, or -1 (*out NULL) when the text is not base64 or decodes to nothing.
 */
long dw_base64_decode(const char *text, unsigned char **out);

/** @brief A growable NUL-terminated string; zero-initialise ({0}) before use. */
struct dw_sbuf {
    char *s; /* NULL until something is added */
    size_t len, cap;
};

/** @brief Appends n bytes. */
void dw_sbuf_add(struct dw_sbuf *sb, const char *s, size_t n);
/** @brief Appends a NUL-terminated string. */
void dw_sbuf_adds(struct dw_sbuf *sb, const char *s);
/** @brief Appends printf-formatted text. */
void dw_sbuf_printf(struct dw_sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @brief Appends n copies of the byte c (padding). */
void dw_sbuf_fill(struct dw_sbuf *sb, char c, size_t n);
/** @brief Empties sb but keeps its memory, for a buffer reused per message. */
void dw_sbuf_reset(struct dw_sbuf *sb);
/** @returns the text (malloc'ed, "" when empty; the caller frees it) and empties sb. */
char *dw_sbuf_take(struct dw_sbuf *sb);
/** @brief Frees the text; sb is empty ({0}) afterwards. */
void dw_sbuf_free(struct dw_sbuf *sb);

/**
 * @brief The index of name in a table of n names (an enum's name table).
 * @returns the index, or -1 when name is NULL or not in the table (exact, case-sensitive).
 */
int dw_name_index(const char *const *names, size_t n, const char *name);

/** Bytes that always hold dw_fmt_double()'s text and its NUL ("-2.2250738585072014e-308"). */
#define DW_FMT_DOUBLE_SIZE 32

/**
 * @brief The one way driftwatch writes a double as text (config dump, metrics, alert labels,
 *        profiles, class text): the fewest significant digits (1..17) that strtod() reads back
 *        to the same double, in fixed notation for 1e-4 <= |v| < 1e16 ("0.1", "42",
 *        "123456789.125", "1000000000000000") and in C's exponent notation otherwise ("1e+16",
 *        "2.5e-07", "5e-324"), the notation Python's repr() chooses; "-0" for negative zero.
 *        Non-finite values are written as the Prometheus text format wants them: "NaN",
 *        "+Inf", "-Inf" (JSON outputs never get them: their callers write null instead).
 * @returns the length of the text; the text is cut to size - 1 bytes when buf is smaller than
 *          DW_FMT_DOUBLE_SIZE (size 0 writes nothing).
 */
size_t dw_fmt_double(double v, char *buf, size_t size);

/**
 * @brief Parses an RFC 3339 timestamp ("2026-11-22T10:15:03.120Z", offsets "+02:00" allowed,
 *        fractional seconds to any precision, truncated to milliseconds).
 * @returns 0 and *ms_out on success, -1 when the text is not RFC 3339.
 */
int dw_time_parse_rfc3339(const char *s, size_t len, int64_t *ms_out);

/**
 * @brief Formats epoch milliseconds as RFC 3339 UTC with a "Z" suffix, e.g.
 *        "2026-11-22T10:15:00Z" (milliseconds shown only when non-zero).
 */
void dw_time_format_rfc3339(int64_t ms, char *buf, size_t buf_size);

/** milliseconds: the longest duration dw_duration_parse() accepts (about 285,000 years) */
#define DW_DURATION_MAX_MS 9000000000000000LL

/**
 * @brief Parses a duration: an integer or decimal with a unit suffix ms, s, m, h, d
 *        ("1500ms", "30s", "5m", "1h"); a bare number means seconds.
 * @returns 0 and *ms_out on success, -1 otherwise.
 */
int dw_duration_parse(const char *s, int64_t *ms_out);

/**
 * @brief Strict decimal integer, for numbers read back from a store: an optional '-' and one or
 *        more ASCII digits, nothing else (no sign '+', no spaces, no fraction or exponent),
 *        exactly `len` bytes, within [min, max] and without overflow.
 * @returns 0 and *out, or -1 (*out untouched) when the text is not such a number.
 */
int dw_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/**
 * @brief "host:port" split at its last ':' (an IPv6 address in brackets: "[::1]:26379"): a
 *        non-empty host that fits host_size and a decimal port in 1..65535.
 * @returns 0 with host and *port, or -1.
 */
int dw_hostport_parse(const char *s, char *host, size_t host_size, int *port);

/**
 * @brief dw_hostport_parse of s[0..len) that also takes an empty host (":6379", as a Redis
 *        Cluster node that does not know its own address writes itself): host is then "".
 * @returns 0 with host and *port, or -1.
 */
int dw_hostport_split(const char *s, size_t len, char *host, size_t host_size, int *port);

/** @brief Milliseconds per unit of a duration suffix ("", "s", "ms", "m", "h", "d"); 0/-1. */
int dw_duration_unit(const char *suffix, double *ms_per_unit);

/**
 * @brief Sorts doubles ascending (no NaN): insertion sort when short, LSD radix sort on the
 *        IEEE-754 bits otherwise (-0.0 before +0.0). Several times faster than qsort.
 */
void dw_sort_doubles(double *v, size_t n);

/** @brief floor(a / b) for b > 0, correct for negative a (window alignment). */
static inline int64_t dw_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

/**
 * @returns a malloc'ed 32-hex-digit key, the first 128 bits of
 *          SHA-256(group 0x1f model 0x1f window_start_ms 0x1f what): same window and rule
 *          give the same key (alert notifications, triggers).
 */
char *dw_idempotency_key(const char *group, const char *model, int64_t window_start_ms,
                         const char *what);

#endif
