/*
 * main.c - the driftwatch binary: dispatches to a subcommand. The only place that exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
#include "driftwatch/io/dw_log.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"run", dw_cmd_run, "consume predictions and labels, detect drift, alert (the service)"},
    {"gen", dw_cmd_gen, "produce synthetic prediction and label traffic with injected drift"},
    {"dev-broker", dw_cmd_dev_broker, "run an in-process Kafka cluster on loopback (tests)"},
    {"inspect", dw_cmd_inspect, "print the merged per-window state kept in Redis"},
    {"state", dw_cmd_state, "state check / state drop: find and repair corrupt partition state"},
    {"profile", dw_cmd_profile, "build a reference profile from training data (CSV, JSON lines)"},
    {"reference", dw_cmd_reference, "reference show / set / reset: what a model is judged against"},
    {"replay", dw_cmd_replay, "run the pipeline over JSON-lines files, one report per window"},
    {"alerts", dw_cmd_alerts, "alerts test: send a test notification through the sinks"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: driftwatch <command> [options]\n\n"
                 "driftwatch watches ML models in production through their Kafka logs.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
    }
    fprintf(out, "\nRun 'driftwatch <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    dw_warn_hook(dw_log_core_warning); /* the pure core reports through the log */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("driftwatch %s\n", DW_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "driftwatch: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
