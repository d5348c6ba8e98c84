/*
 * dw_log.c - JSON log lines on stdout, one object per line, with a per-key rate limiter for
 * messages that bad input could otherwise turn into a flood.
 */
#include "driftwatch/io/dw_log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

static enum dw_log_level min_level = DW_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

int dw_log_set_level(const char *name)
{
    for (size_t i = 0; i < DW_ARRAY_SIZE(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            min_level = (enum dw_log_level)i;
            return 0;
        }
    }
    return -1;
}

static void log_emit(enum dw_log_level level, const char *msg, long suppressed,
                     const char *fields_fmt, va_list ap)
{
    json_t *obj = NULL;
    if (fields_fmt) {
        json_error_t jerr;
        obj = json_vpack_ex(&jerr, 0, fields_fmt, ap);
    }
    if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    char ts[40];
    dw_time_format_rfc3339(dw_now_ms(), ts, sizeof(ts));
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "msg", json_string(msg));
    json_object_update(line, obj);
    if (suppressed > 0) {
        json_object_set_new(line, "suppressed", json_integer(suppressed));
    }
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    json_decref(obj);
    if (!text) {
        return;
    }
    pthread_mutex_lock(&log_lock);
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
    free(text);
}

void dw_log(enum dw_log_level level, const char *msg, const char *fields_fmt, ...)
{
    if (level < min_level) {
        return;
    }
    va_list ap;
    va_start(ap, fields_fmt);
    log_emit(level, msg, 0, fields_fmt, ap);
    va_end(ap);
}

#define DW_LOG_LIMITERS 32

struct limiter {
    const char *key;
    int64_t second; /* wall-clock second of the current budget */
    int used;
    long suppressed;
};

static struct limiter limiters[DW_LOG_LIMITERS];

void dw_log_limited(const char *key, int per_second, enum dw_log_level level, const char *msg,
                    const char *fields_fmt, ...)
{
    if (level < min_level) {
        return;
    }
    int64_t now_s = dw_mono_ms() / 1000;
    long suppressed = 0;
    pthread_mutex_lock(&log_lock);
    struct limiter *lim = NULL;
    for (size_t i = 0; i < DW_LOG_LIMITERS; i++) {
        if (limiters[i].key == key || limiters[i].key == NULL) {
            lim = &limiters[i];
            lim->key = key;
            break;
        }
    }
    int allowed = 1;
    if (lim) {
        if (lim->second != now_s) {
            lim->second = now_s;
            lim->used = 0;
        }
        if (lim->used >= per_second) {
            lim->suppressed++;
            allowed = 0;
        } else {
            lim->used++;
            suppressed = lim->suppressed;
            lim->suppressed = 0;
        }
    }
    pthread_mutex_unlock(&log_lock);
    if (!allowed) {
        return;
    }
    va_list ap;
    va_start(ap, fields_fmt);
    log_emit(level, msg, suppressed, fields_fmt, ap);
    va_end(ap);
}

void dw_log_core_warning(const char *msg, const char *detail)
{
    dw_log(DW_LOG_WARN, msg, "{s:s}", "detail", detail);
}
