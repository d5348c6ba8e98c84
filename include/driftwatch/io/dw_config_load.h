/*
 * dw_config_load.h - the configuration loader: YAML files and texts over the defaults of the
 * declarative key table, ${VAR} and file:// secrets, librdkafka's validation of kafka.* keys,
 * the effective-config dump and the generated reference (src/io/dw_config_load.c). The types
 * every module reads are apart, in the core (include/driftwatch/core/dw_config.h): a core
 * module reads a struct dw_config and never loads one.
 */
#ifndef DW_CONFIG_LOAD_H
#define DW_CONFIG_LOAD_H

#include <stddef.h>
#include <stdio.h>

#include "driftwatch/core/dw_config.h"

/** @brief Fills every key with its default (no models, no kafka keys). */
void dw_config_defaults(struct dw_config *cfg);

/**
 * @brief Reads a YAML file over the defaults. Unknown keys, wrong types, rejected values,
 *        unset ${VAR}s stop with an error naming the key (e.g. "window.size: not a duration").
 * @returns 0 on success, -1 with errstr on failure (cfg is then freed).
 */
int dw_config_load(struct dw_config *cfg, const char *path, char *errstr, size_t errstr_size);

/**
 * @brief dw_config_load() for a command's -c option: prints "<command>: -c FILE is required"
 *        when path is NULL, or "driftwatch: <error naming the key>", on stderr.
 * @returns 0, or 2 (the commands' exit status for a usage or configuration error).
 */
int dw_config_load_cli(struct dw_config *cfg, const char *command, const char *path);

/** @brief Same as dw_config_load() over a YAML text in memory (tests). */
int dw_config_load_string(struct dw_config *cfg, const char *yaml, char *errstr,
                          size_t errstr_size);

/** @brief Frees every owned string and array; cfg may be reused after dw_config_defaults(). */
void dw_config_free(struct dw_config *cfg);

/** @brief Writes the effective config as YAML, secrets (passwords, URLs) masked. */
void dw_config_dump(const struct dw_config *cfg, FILE *out);

/** @brief Writes the configuration reference (Markdown table: key, type, default, help). */
void dw_config_reference(FILE *out);

#endif
