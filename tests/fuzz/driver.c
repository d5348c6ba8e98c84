/*
 * driver.c - main() for the plain build of a fuzz harness (see dw_fuzz.h).
 *
 *   fuzz_<name> --seeds DIR     write the seed corpus into DIR (created if needed) and exit
 *   fuzz_<name> --check [PATH]  run every seed (made in memory) and every file under PATH once
 *   fuzz_<name> PATH...         run each file, or each file in each directory, once
 *
 * A crash, a sanitizer report or a leak fails the run, as it would under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dw_fuzz.h"

static int run_file(const char *path)
{
    size_t len;
    uint8_t *data = dw_fuzz_read_file(path, &len);
    if (!data) {
        fprintf(stderr, "fuzz: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int run_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0; /* no reproducers yet */
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) {
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rc = run_path(sub, count);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
        mkdir(argv[2], 0755);
        dw_fuzz_seeds(argv[2]);
        return 0;
    }
    int count = 0, rc = 0;
    int first = 1;
    if (argc >= 2 && strcmp(argv[1], "--check") == 0) {
        char dir[] = "/tmp/dw_fuzz_seeds_XXXXXX";
        if (!mkdtemp(dir)) {
            return 1;
        }
        dw_fuzz_seeds(dir);
        rc = run_path(dir, &count);
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "fuzz: cannot remove %s\n", dir);
        }
        first = 2;
    }
    for (int i = first; i < argc && rc == 0; i++) {
        rc = run_path(argv[i], &count);
    }
    if (rc != 0) {
        return 1;
    }
    if (count == 0) {
        fprintf(stderr, "fuzz: no input was run\n");
        return 1;
    }
    printf("%s: %d inputs ran clean\n", argv[0], count);
    return 0;
}
