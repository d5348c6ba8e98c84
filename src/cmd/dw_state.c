/*
 * dw_state.c - `driftwatch state check` and `driftwatch state drop`: the operator's tools for
 * the partition state kept in Redis.
 *
 * Why they exist: `run` quarantines a partition whose stored state it cannot load (a decoder
 * rejects a window or join record, a number is not one, a key has the wrong Redis type): the
 * partition stays assigned but is neither consumed nor checkpointed, so nothing is counted
 * wrongly, and the windows it has not read stay open. Someone has to decide what happens
 * next, and needs to see what `run` sees first.
 *
 * - check reads every partition with the very functions `run` uses (dw_redis_load_part into a
 *   scratch partition: the same strict number checks and decoders), then decodes every stored
 *   window, retired ones too (the evaluator reads those), and prints one JSON object per
 *   partition: ok, missing (no checkpoint) or corrupt with the key and the reason. Exit 1 when
 *   anything is corrupt, so that it can gate a script.
 * - drop deletes every key of one partition ({dw:G:T:P}:*), so that its next owner rebuilds it
 *   from Kafka. Deleting state is not undoable, so it lists what it would delete unless --yes
 *   is given, and refuses a partition that a consumer checkpointed within the last minute and
 *   did not quarantine (its owner would find its state gone) unless --force is given; a
 *   partition whose last checkpoint let it go (revoked, or its consumer stopping: released_ms)
 *   has no owner to protect.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/io/dw_config_load.h"
#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/io/dw_redis.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* milliseconds: a partition checkpointed this recently and not quarantined is live */
#define STATE_LIVE_MS 60000

static void state_usage(FILE *out)
{
    fprintf(out,
            "usage: driftwatch state check -c FILE [--partition P]\n"
            "       driftwatch state drop -c FILE --partition P [--yes] [--force]\n\n"
            "check  reads every partition's state in Redis as `run` loads it (offsets,\n"
            "       counters, windows, join records) and prints one JSON object per partition:\n"
            "       \"status\" ok, missing (no checkpoint) or corrupt with \"key\" and \"error\".\n"
            "       Exit 0 when nothing is corrupt, 1 otherwise.\n"
            "drop   deletes every key of partition P so that its next owner rebuilds it from\n"
            "       Kafka (from the earliest offset; see docs/operations.md for what that\n"
            "       means). Without --yes it only lists what it would delete (exit 2).\n\n"
            "  -c, --config FILE     the configuration used by `driftwatch run`\n"
            "  -p, --partition P     one partition\n"
            "      --yes             drop: really delete\n"
            "      --force           drop: even a partition a consumer is checkpointing now\n"
            "  -h, --help            this help\n");
}

/* The owner fields shared by every line of a partition. */
static void add_owner(json_t *obj, const struct dw_part_owner *o)
{
    json_object_set_new(obj, "owner", o->owner[0] ? json_string(o->owner) : json_null());
    json_object_set_new(obj, "quarantined",
                        o->quarantined[0] ? json_string(o->quarantined) : json_null());
}

/* @returns 0 ok or missing, 1 corrupt, -1 Redis unavailable (errstr). */
static int check_part(struct dw_redis *r, const struct dw_config *cfg, int p, char *errstr,
                      size_t errstr_size)
{
    struct dw_part_owner owner;
    if (dw_redis_part_owner(r, p, &owner) != 0) {
        return dw_err(errstr, errstr_size, "redis: cannot read partition %d", p);
    }
    char badkey[600] = "", why[600] = "";
    struct dw_part *part = dw_part_new(cfg, p);
    int rc = dw_redis_load_part(r, part, badkey, sizeof(badkey), why, sizeof(why));
    size_t stored = 0;
    if (rc >= 0) {
        int w = dw_redis_check_windows(r, p, &stored, badkey, sizeof(badkey), why, sizeof(why));
        rc = w < 0 ? w : rc;
    }
    json_t *obj = json_pack("{s:i}", "partition", p);
    int result = 0;
    if (rc == DW_LOAD_UNAVAILABLE) {
        json_decref(obj);
        dw_part_free(part);
        return dw_err(errstr, errstr_size, "partition %d: %s", p, why);
    } else if (rc == DW_LOAD_CORRUPT) {
        json_object_set_new(obj, "status", json_string("corrupt"));
        json_object_set_new(obj, "key", json_string(badkey));
        json_object_set_new(obj, "error", json_string(why));
        result = 1;
    } else if (rc == DW_LOAD_NONE) {
        json_object_set_new(obj, "status", json_string("missing"));
        json_object_set_new(obj, "windows_stored", json_integer((json_int_t)stored));
    } else {
        json_object_set_new(obj, "status", json_string("ok"));
        json_object_set_new(obj, "offset_predictions", json_integer(part->off_pred));
        json_object_set_new(obj, "offset_labels", json_integer(part->off_label));
        json_object_set_new(obj, "windows_open", json_integer((json_int_t)part->n_wins));
        json_object_set_new(obj, "windows_stored", json_integer((json_int_t)stored));
        json_object_set_new(obj, "join_records",
                            json_integer((json_int_t)dw_join_size(&part->join)));
        json_object_set_new(obj, "predictions", json_integer((json_int_t)part->ctr.predictions));
        json_object_set_new(obj, "labels", json_integer((json_int_t)part->ctr.labels));
    }
    add_owner(obj, &owner);
    dw_cmd_print_json(obj);
    dw_part_free(part);
    return result;
}

/*
 * The evaluator's numbers kept in global keys: each cursor and rolling start is an event time.
 * @returns the number of corrupt keys (one line each), or -1 when Redis failed.
 */
static int check_global(struct dw_redis *r, const struct dw_config *cfg)
{
    int bad = 0;
    for (size_t mi = 0; mi < cfg->n_models; mi++) {
        /* cursor, cursor_final, rolling_first */
        for (int k = 0; k < 3; k++) {
            char name[DW_REDIS_NAME_MAX], key[DW_REDIS_KEY_MAX];
            if (k < 2) {
                dw_redis_name_cursor(cfg->models[mi].name, k, name, sizeof(name));
            } else {
                dw_redis_name_rolling_first(cfg->models[mi].name, name, sizeof(name));
            }
            int64_t v = 0;
            int rc = dw_redis_get_i64(r, name, &v);
            if (rc == -1) {
                return -1;
            }
            if (rc == -2 || (rc == 1 && (v < -DW_TS_LIMIT_MS || v > DW_TS_LIMIT_MS))) {
                dw_redis_global_key(r, name, key, sizeof(key));
                dw_cmd_print_json(json_pack("{s:s,s:s,s:s}", "key", key, "status", "corrupt",
                                            "error", "not an event time in milliseconds"));
                bad++;
            }
        }
    }
    return bad;
}

static int state_check(struct dw_redis *r, const struct dw_config *cfg, int n_parts, int only)
{
    int corrupt = 0;
    char errstr[1024];
    for (int p = only >= 0 ? only : 0; p < (only >= 0 ? only + 1 : n_parts); p++) {
        int rc = check_part(r, cfg, p, errstr, sizeof(errstr));
        if (rc < 0) {
            fprintf(stderr, "state check: %s\n", errstr);
            return 1;
        }
        corrupt += rc;
    }
    if (only < 0) {
        int rc = check_global(r, cfg);
        if (rc < 0) {
            fprintf(stderr, "state check: redis: cannot read the evaluation cursors\n");
            return 1;
        }
        corrupt += rc;
    }
    return corrupt ? 1 : 0;
}

static int state_drop(struct dw_redis *r, const struct dw_config *cfg, int p, int yes, int force)
{
    char errstr[1024];
    struct dw_part_owner owner;
    if (dw_redis_part_owner(r, p, &owner) != 0) {
        fprintf(stderr, "state drop: redis: cannot read partition %d\n", p);
        return 1;
    }
    long n = dw_redis_drop_part(r, p, 1, errstr, sizeof(errstr));
    if (n < 0) {
        fprintf(stderr, "state drop: %s\n", errstr);
        return 1;
    }
    int64_t age = dw_now_ms() - owner.updated_ms;
    int released = owner.released_ms > 0 && owner.released_ms == owner.updated_ms;
    if (owner.owner[0] && !owner.quarantined[0] && !released && owner.updated_ms > 0 &&
        age < STATE_LIVE_MS && !force) {
        fprintf(stderr,
                "state drop: partition %d is live: %s checkpointed it %.1f s ago and did not "
                "quarantine it; deleting its state under it loses what it counted. Stop the "
                "consumers first, or pass --force.\n",
                p, owner.owner, (double)age / 1000.0);
        return 1;
    }
    if (!yes) {
        printf("would delete %ld keys of partition %d (group %s, topic %s)%s%s; nothing "
               "deleted: re-run with --yes\n",
               n, p, cfg->group, cfg->topic_predictions,
               owner.quarantined[0] ? ", quarantined: " : "", owner.quarantined);
        return 2;
    }
    n = dw_redis_drop_part(r, p, 0, errstr, sizeof(errstr));
    if (n < 0) {
        fprintf(stderr, "state drop: %s\n", errstr);
        return 1;
    }
    dw_cmd_print_json(json_pack("{s:i,s:I,s:s}", "partition", p, "dropped_keys", (json_int_t)n,
                                "next",
                                "its next owner rebuilds it from Kafka (docs/operations.md)"));
    return 0;
}

int dw_cmd_state(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"partition", required_argument, NULL, 'p'},
                                         {"yes", no_argument, NULL, 'y'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int64_t part = -1;
    int yes = 0, force = 0, c;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        state_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "check") != 0 && strcmp(verb, "drop") != 0) {
        fprintf(stderr, "driftwatch state: unknown subcommand '%s'\n", verb);
        state_usage(stderr);
        return 2;
    }
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "c:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            if (dw_parse_i64(optarg, strlen(optarg), 0, DW_MAX_PARTITIONS - 1, &part) != 0) {
                fprintf(stderr, "driftwatch state: --partition: '%s' is not a partition number\n",
                        optarg);
                return 2;
            }
            break;
        case 'y':
            yes = 1;
            break;
        case 'f':
            force = 1;
            break;
        default: /* -h, --version, an unknown option */
            return dw_cmd_option(c, state_usage);
        }
    }
    if (dw_cmd_no_arguments("state", argc - 1, argv + 1, optind) != 0) {
        return 2;
    }
    if (strcmp(verb, "drop") == 0 && part < 0) {
        fprintf(stderr, "driftwatch state drop: --partition is required\n");
        return 2;
    }
    struct dw_config cfg;
    if (dw_config_load_cli(&cfg, "state", path) != 0) {
        return 2;
    }
    char errstr[1024];
    int rc = 1;
    int n_parts = 0;
    struct dw_redis *r = dw_redis_connect(&cfg, errstr, sizeof(errstr));
    int found = r ? dw_redis_get_partitions(r, &n_parts) : -1;
    if (!r) {
        fprintf(stderr, "state: %s\n", errstr);
    } else if (found == -2) {
        char key[DW_REDIS_KEY_MAX];
        dw_cmd_partitions_key(r, key, sizeof(key));
        dw_cmd_print_json(json_pack("{s:s,s:s,s:s}", "key", key, "status", "corrupt", "error",
                                    "not a partition count"));
    } else if (found < 0) {
        fprintf(stderr, "state: redis: cannot read the partition count\n");
    } else if (found == 0 && strcmp(verb, "check") == 0) {
        fprintf(stderr, "state: no driftwatch state for group '%s' in Redis\n", cfg.group);
    } else if (found == 1 && part >= n_parts) {
        fprintf(stderr, "state: partition %" PRId64 " does not exist (%d partitions)\n", part,
                n_parts);
        rc = 2;
    } else if (strcmp(verb, "check") == 0) {
        rc = state_check(r, &cfg, n_parts, (int)part);
    } else {
        rc = state_drop(r, &cfg, (int)part, yes, force);
    }
    dw_redis_free(r);
    dw_config_free(&cfg);
    return rc;
}
