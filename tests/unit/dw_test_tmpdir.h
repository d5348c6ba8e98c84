/*
 * dw_test_tmpdir.h - a scratch directory per test program, for tests of commands that read and
 * write files. Include once per test file; DW_TEST_NAME names the directory
 * (/tmp/dw_test_<name>_XXXXXX). Use dw_tmp_setup/dw_tmp_teardown as the group's setup and
 * teardown, and path_of("file") for paths inside it.
 */
#ifndef DW_TEST_TMPDIR_H
#define DW_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
