/*
 * dw_files.h - reading the input files of `driftwatch profile` and `driftwatch replay`.
 *
 * Lines of plain or gzip-compressed files (zlib's gzopen/gzgets read plain files
 * transparently, so the same reader serves both), CSV rows through libcsv (RFC 4180 quoting,
 * quoted newlines), format detection, JSON pointers over jansson documents, and the type
 * inference shared by both commands: a feature is numeric when every non-missing value is a
 * finite number, categorical otherwise. No state beyond the open file: plain C, testable
 * without servers.
 */
#ifndef DW_FILES_H
#define DW_FILES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "driftwatch/core/dw_config.h"

/* Longest line accepted (bytes): longer lines are an error, not an allocation without bound. */
#define DW_FILES_MAX_LINE (256u << 20)

/* ---- lines ---- */

struct dw_files;

/** @brief Opens a plain or .gz file for reading lines. @returns NULL with errstr. */
struct dw_files *dw_files_open(const char *path, char *errstr, size_t errstr_size);

/**
 * @brief Reads the next line, without its "\n" (or "\r\n").
 * @param line set to a NUL-terminated buffer owned by the reader, valid until the next call.
 * @returns 1 with a line, 0 at the end of the file, -1 with errstr (read error, corrupt gzip
 *          stream, line longer than DW_FILES_MAX_LINE).
 */
int dw_files_read_line(struct dw_files *f, char **line, size_t *len, char *errstr,
                       size_t errstr_size);

/** @returns the 1-based number of the line last returned (0 before the first). */
uint64_t dw_files_line_no(const struct dw_files *f);

/** @returns the path the reader was opened with. */
const char *dw_files_path(const struct dw_files *f);

/** @brief Closes the reader (NULL is a no-op). */
void dw_files_close(struct dw_files *f);

/* ---- formats ---- */

enum dw_files_format { DW_FILES_CSV = 0, DW_FILES_JSONL = 1 };

/**
 * @brief The format of a file: by extension (.csv, .jsonl, .json, .ndjson, each optionally
 *        followed by .gz), else by content (the first non-blank character is '{' for JSON
 *        lines, anything else is CSV).
 * @returns 0, or -1 with errstr when the file cannot be read or is empty.
 */
int dw_files_detect(const char *path, enum dw_files_format *fmt, char *errstr, size_t errstr_size);

/* ---- CSV ---- */

struct dw_files_csv;

/** @brief Opens a CSV file (plain or .gz; comma separated, '"' quotes). */
struct dw_files_csv *dw_files_csv_open(const char *path, char *errstr, size_t errstr_size);

/**
 * @brief Reads the next row. Blank lines are skipped; surrounding spaces of unquoted fields
 *        are trimmed (libcsv's default).
 * @param fields set to n NUL-terminated fields, owned by the reader until the next call.
 * @param line   set to the 1-based line the row starts on.
 * @returns 1 with a row, 0 at the end, -1 with errstr ("FILE:LINE: ...").
 */
int dw_files_csv_next(struct dw_files_csv *c, char ***fields, size_t *n, uint64_t *line,
                      char *errstr, size_t errstr_size);

void dw_files_csv_close(struct dw_files_csv *c);

/* ---- values ---- */

/**
 * @brief Parses a whole token (surrounding spaces allowed) as a finite decimal number with
 *        strtod; hexadecimal, "inf", "nan" and trailing text are not numbers.
 * @returns 0 and *out, or -1.
 */
int dw_files_parse_number(const char *s, size_t len, double *out);

/**
 * @brief Resolves an RFC 6901 JSON pointer ("" is the document, "/a/0", "~0" = '~',
 *        "~1" = '/').
 * @returns the borrowed value, or NULL when absent or the pointer is malformed.
 */
json_t *dw_files_pointer(json_t *doc, const char *ptr);

/* ---- type inference ---- */

enum dw_files_kind { DW_FILES_MISSING = 0, DW_FILES_NUMBER = 1, DW_FILES_TEXT = 2 };

/** @brief What was seen of each column / feature name, in first-seen order. */
struct dw_files_tally {
    char **names;
    uint64_t *values; /* non-missing values */
    uint64_t *texts;  /* values that are not numbers */
    size_t n, cap;
    uint32_t *slots; /* hash of names: index + 1, 0 = empty */
    size_t n_slots;  /* power of two */
};

void dw_files_tally_init(struct dw_files_tally *t);
void dw_files_tally_free(struct dw_files_tally *t);

/** @returns the index of name (added when new). */
size_t dw_files_tally_index(struct dw_files_tally *t, const char *name, size_t len);

/** @returns the index of name, or -1 when the tally has not seen it. */
long dw_files_tally_find(const struct dw_files_tally *t, const char *name, size_t len);

/** @brief Counts one value of column idx. */
void dw_files_tally_add(struct dw_files_tally *t, size_t idx, enum dw_files_kind kind);

/** @returns the kind of a JSON feature value as the decoder reads it: null = missing, a
 *           number = number, anything else (string, boolean) = text. */
enum dw_files_kind dw_files_json_kind(const json_t *v);

/**
 * @brief Feature list of a tally: every name, typed by the comma-separated lists (either may
 *        be NULL) or else inferred (numeric when every non-missing value was a number; a
 *        column without values is numeric).
 * @returns 0 with *out (names owned, free with dw_files_features_free), or -1 with errstr
 *          when a listed name is not in the tally or is in both lists.
 */
int dw_files_tally_features(const struct dw_files_tally *t, const char *categorical,
                            const char *numeric, struct dw_feature_cfg **out, size_t *n_out,
                            char *errstr, size_t errstr_size);

void dw_files_features_free(struct dw_feature_cfg *feats, size_t n);

/** @returns 1 when name is an element of the comma-separated list (NULL = empty list). */
int dw_files_list_has(const char *list, const char *name);

/* ---- profiles ---- */

struct dw_ref;

/**
 * @brief A `driftwatch profile` file's document (path, or file://path): a JSON object with a
 *        "model" and "features". @returns it, or NULL with errstr naming the file (and the line
 *        and column of a JSON error).
 */
json_t *dw_files_profile_doc(const char *path, char *errstr, size_t errstr_size);
/**
 * @brief The profile at path as the reference of model m (source profile, `profile` = path): it
 *        must be a profile of model m describing exactly m's features; an error names the file
 *        and the model or the first feature that differs.
 * @returns the reference (free with dw_ref_free), or NULL with errstr.
 */
struct dw_ref *dw_files_load_profile(const struct dw_model_cfg *m, const char *path, char *errstr,
                                     size_t errstr_size);
/**
 * @brief The reference.profile of each model of cfg with source profile, into refs[i] (refs:
 *        cfg->n_models entries; the other models' are left alone): what run reads at start-up
 *        and replay before the first event.
 * @returns 0, or -1 with errstr naming the model's key, the file and what differs.
 */
int dw_files_load_profiles(const struct dw_config *cfg, struct dw_ref **refs, char *errstr,
                           size_t errstr_size);

#endif
