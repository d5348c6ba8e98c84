/*
 * dw_log.h - one JSON object per line on stdout.
 *
 * Every line has "ts" (RFC 3339 UTC), "level" and "msg"; extra fields are given as a jansson
 * json_pack() format and its arguments, e.g.
 *     dw_log(DW_LOG_INFO, "partition assigned", "{s:s,s:i}", "topic", t, "partition", p);
 * Thread-safe (one fwrite per line under a lock). dw_log_limited() drops lines beyond a rate
 * per key (used for bad input) and reports how many were suppressed on the next line it prints.
 */
#ifndef DW_LOG_H
#define DW_LOG_H

enum dw_log_level { DW_LOG_DEBUG = 0, DW_LOG_INFO, DW_LOG_WARN, DW_LOG_ERROR };

/** @brief Sets the minimum level printed ("debug", "info", "warn", "error"). @returns 0/-1. */
int dw_log_set_level(const char *name);

/** @brief Writes one JSON log line. fields_fmt may be NULL. */
void dw_log(enum dw_log_level level, const char *msg, const char *fields_fmt, ...);

/**
 * @brief Like dw_log() but at most `per_second` lines per second for the same `key`
 *        (one rate limiter per distinct key pointer; keys are string literals).
 */
void dw_log_limited(const char *key, int per_second, enum dw_log_level level, const char *msg,
                    const char *fields_fmt, ...);

/** @brief The core's warning hook (dw_warn_hook): one WARN line with "detail". */
void dw_log_core_warning(const char *msg, const char *detail);

#endif
