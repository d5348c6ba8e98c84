/*
 * dw_cmd.c - what every command shares: the options -h/--help and --version, and the answer to
 * an unknown option. Each command's getopt loop handles its own options and hands the rest here,
 * so that help goes to stdout with status 0, a usage error to stderr with status 2, everywhere.
 */
#include "driftwatch/cmd/dw_cmd.h"

#include <stdio.h>

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
