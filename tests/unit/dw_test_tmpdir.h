/*
 * dw_test_tmpdir.h - a scratch directory per test program, for tests of commands that read and
 * write files. Include once per test file; DW_TEST_NAME names the directory
 * (/tmp/dw_test_<name>_XXXXXX). Use dw_tmp_setup/dw_tmp_teardown as the group's setup and
 * teardown, and path_of("file") for paths inside it (dw_test.h's dw_test_write_file() writes one);
 * dw_test_vcmd() runs a subcommand's function with an argv built from NULL-terminated
 * arguments, as main() would.
 */
#ifndef DW_TEST_TMPDIR_H
#define DW_TEST_TMPDIR_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[64];

static int dw_tmp_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dw_test_" DW_TEST_NAME "_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int dw_tmp_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A path inside the scratch directory (eight rotating buffers: several may be live at once). */
static const char *path_of(const char *name)
{
    static char bufs[8][160];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, name);
    return b;
}

#define DW_TEST_MAX_ARGS 64

/*
 * Runs fn(argc, argv) with argv = name, then `extra` (when not NULL), then first and the rest
 * of ap up to a NULL. @returns fn's exit code.
 */
static inline int dw_test_vcmd(int (*fn)(int, char **), const char *name, const char *extra,
                               const char *first, va_list ap)
{
    char *argv[DW_TEST_MAX_ARGS];
    int argc = 0;
    argv[argc++] = strdup(name);
    if (extra) {
        argv[argc++] = strdup(extra);
    }
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        assert_true(argc < DW_TEST_MAX_ARGS - 1);
        argv[argc++] = strdup(a);
    }
    argv[argc] = NULL;
    int rc = fn(argc, argv);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return rc;
}

#endif
