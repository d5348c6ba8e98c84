/*
 * seed.c - dw_fuzz_write_seed() and the seed helpers, linked into both builds of every harness
 * (see dw_fuzz.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftwatch/cmd/dw_cmd.h"
#include "driftwatch/core/dw_common.h"
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

void dw_fuzz_seed_texts(const char *dir, const char *prefix, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s-%zu", prefix, i);
        dw_fuzz_write_seed(dir, name, texts[i], strlen(texts[i]));
    }
}

/* each line of the file at path (without its newline) as a seed prefix-N */
static void seed_lines(const char *dir, const char *prefix, const char *path)
{
    size_t len;
    uint8_t *data = dw_fuzz_read_file(path, &len);
    if (!data) {
        fprintf(stderr, "fuzz: cannot read %s\n", path);
        exit(1);
    }
    size_t i = 0;
    for (size_t start = 0; start < len;) {
        const uint8_t *nl = memchr(data + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - data) : len;
        char name[256];
        snprintf(name, sizeof(name), "%s-%zu", prefix, i++);
        dw_fuzz_write_seed(dir, name, data + start, end - start);
        start = end + 1;
    }
    free(data);
}

void dw_fuzz_seed_gen(const char *dir, const char *prefix, int labels, const char *const *args,
                      int n_args)
{
    char tmp[] = "/tmp/dw_fuzz_gen_XXXXXX";
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "fuzz: mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    char preds[64], labs[64];
    snprintf(preds, sizeof(preds), "%s/p.jsonl", tmp);
    snprintf(labs, sizeof(labs), "%s/l.jsonl", tmp);
    char **argv = calloc((size_t)n_args + 7, sizeof(*argv));
    int argc = 0;
    argv[argc++] = (char *)"gen";
    for (int i = 0; i < n_args; i++) {
        argv[argc++] = (char *)args[i];
    }
    argv[argc++] = (char *)"--predictions-out";
    argv[argc++] = preds;
    argv[argc++] = (char *)"--labels-out";
    argv[argc++] = labs;
    argv[argc++] = (char *)"-q";
    int rc = dw_cmd_gen(argc, argv);
    free(argv);
    if (rc != 0) {
        fprintf(stderr, "fuzz: driftwatch gen failed (%d)\n", rc);
        exit(1);
    }
    seed_lines(dir, prefix, labels ? labs : preds);
    unlink(preds);
    unlink(labs);
    rmdir(tmp);
}

uint8_t *dw_fuzz_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    struct dw_sbuf sb = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        dw_sbuf_add(&sb, chunk, got);
    }
    fclose(f);
    *len = sb.len;
    /* an exact-size copy, so that ASan sees a read one past the end */
    uint8_t *exact = dw_malloc(sb.len ? sb.len : 1);
    if (sb.len) {
        memcpy(exact, sb.s, sb.len);
    }
    free(sb.s);
    return exact;
}

void dw_fuzz_seed_file(const char *dir, const char *name, const char *path)
{
    size_t len;
    uint8_t *data = dw_fuzz_read_file(path, &len);
    if (data) {
        dw_fuzz_write_seed(dir, name, data, len);
        free(data);
    }
}
