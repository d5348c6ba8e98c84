/*
 * seed.c - dw_fuzz_write_seed(), linked into both builds of every harness (see dw_fuzz.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "dw_fuzz.h"

void dw_fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "fuzz: cannot write seed %s\n", path);
        exit(1);
    }
    fclose(f);
}
