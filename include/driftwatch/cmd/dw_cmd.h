/*
 * dw_cmd.h - the subcommands of the driftwatch binary. Each takes the arguments after its
 * name (argv[0] is the subcommand), prints --help, and returns the process exit code
 * (0 ok, 1 runtime failure, 2 usage or configuration error).
 */
#ifndef DW_CMD_H
#define DW_CMD_H

#include <jansson.h>
#include <stdio.h>

/**
 * @brief The options every command shares, for the `default:` of its getopt switch: 'h' prints
 *        the usage to stdout, 'V' the version; anything else is a usage error (usage to stderr).
 * @returns the exit code: 0 for 'h' and 'V', 2 otherwise.
 */
int dw_cmd_option(int c, void (*usage)(FILE *out));

/**
 * @brief Refuses arguments left after the options (argv[first] onwards, first = optind): a
 *        command that takes none used to act on the first value and ignore the rest.
 * @returns 0 when there are none, else 2 after naming the first on stderr as `cmd`'s.
 */
int dw_cmd_no_arguments(const char *cmd, int argc, char *const *argv, int first);

/** @brief Prints obj as one compact JSON line on stdout (keys in insertion order), and frees it. */
void dw_cmd_print_json(json_t *obj);
struct dw_redis;
struct dw_config;
struct dw_model_cfg;

/** @brief The Redis key of the group's partition count ({dw:G}:partitions), for messages. */
void dw_cmd_partitions_key(struct dw_redis *r, char *key, size_t key_size);

/**
 * @brief What `driftwatch reference show` prints for model m (dw_reference.c), also served by
 *        GET /api/v1/models/<m>/reference.
 * @returns the document, or NULL with errstr (Redis or profile file error).
 */
json_t *dw_reference_show_json(struct dw_redis *r, const struct dw_config *cfg,
                               const struct dw_model_cfg *m, char *errstr, size_t errstr_size);

int dw_cmd_run(int argc, char **argv);        /* dw_run.c: the consumer */
int dw_cmd_gen(int argc, char **argv);        /* dw_gen.c: synthetic traffic */
int dw_cmd_dev_broker(int argc, char **argv); /* dw_devbroker.c: mock Kafka cluster */
int dw_cmd_inspect(int argc, char **argv);    /* dw_inspect.c: merged window state from Redis */
int dw_cmd_state(int argc, char **argv);      /* dw_state.c: check and drop partition state */
int dw_cmd_profile(int argc, char **argv);    /* dw_profile.c: reference profile from files */
int dw_cmd_reference(int argc, char **argv);  /* dw_reference.c: show, set, reset a reference */
int dw_cmd_replay(int argc, char **argv);     /* dw_replay.c: the pipeline over JSON-lines files */
int dw_cmd_alerts(int argc, char **argv);     /* dw_actions.c: `alerts test` through the sinks */

#endif
