/*
 * dw_cmd.c - what every command shares: the options -h/--help and --version, the answer to
 * an unknown option, and a JSON result line. Each command's getopt loop handles its own options and
 * hands the rest here, so that help goes to stdout with status 0, a usage error to stderr with
 * status 2, everywhere. Also the key of the group's partition count, which the offline commands
 * read first and name when it is bad.
 */
#include "driftwatch/cmd/dw_cmd.h"

#include <stdio.h>
#include <stdlib.h>

#include "driftwatch/io/dw_redis.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

int dw_cmd_option(int c, void (*usage)(FILE *out))
{
    if (c == 'h') {
        usage(stdout);
        return 0;
    }
    if (c == 'V') {
        printf("driftwatch %s\n", DW_VERSION);
        return 0;
    }
    usage(stderr);
    return 2;
}

int dw_cmd_no_arguments(const char *cmd, int argc, char *const *argv, int first)
{
    if (first >= argc) {
        return 0;
    }
    fprintf(stderr, "driftwatch %s: unexpected argument '%s'\n", cmd, argv[first]);
    return 2;
}

void dw_cmd_print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(obj);
}

void dw_cmd_partitions_key(struct dw_redis *r, char *key, size_t key_size)
{
    char name[DW_REDIS_NAME_MAX];
    dw_redis_name_partitions(name, sizeof(name));
    dw_redis_global_key(r, name, key, key_size);
}
