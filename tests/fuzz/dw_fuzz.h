/*
 * dw_fuzz.h - the contract of a fuzz harness (tests/fuzz/fuzz_<name>.c).
 *
 * Each harness defines two functions:
 *   - LLVMFuzzerTestOneInput(): feeds one input to the parser under test. It must never crash,
 *     leak or hang, whatever the bytes; it returns 0.
 *   - dw_fuzz_seeds(): writes the seed corpus into a directory through dw_fuzz_write_seed().
 *     Seeds are made by the project's own encoders (and gen), so they start the fuzzer on
 *     inputs the parser accepts, and follow the formats when they change.
 *
 * Two builds of every harness (CMakeLists.txt):
 *   - fuzz_<name> (any compiler, also under ASan+UBSan): driver.c supplies main(). In ctest it
 *     runs every seed and every committed reproducer (tests/fuzz/reproducers/<name>/) once:
 *     the reproducers of fixed bugs are regression tests.
 *   - fuzz_<name>_libfuzzer (DW_FUZZ=ON with clang): libFuzzer's main(), for scripts/fuzz.sh.
 */
#ifndef DW_FUZZ_H
#define DW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** @brief Writes this harness's seed inputs into the directory `dir` (which exists). */
void dw_fuzz_seeds(const char *dir);

/** @brief Writes one seed file `dir`/`name` (helper for dw_fuzz_seeds). */
void dw_fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len);

/**
 * @brief Runs `driftwatch gen` (the traffic generator) with `args` (n_args of them, without
 *        "gen" and without its file options) into JSON-lines files, and writes every line of
 *        its predictions (labels = 0) or labels (labels = 1) as a seed `prefix`-N in `dir`.
 *        Exits the process when gen fails: the seeds would silently be missing.
 */
void dw_fuzz_seed_gen(const char *dir, const char *prefix, int labels, const char *const *args,
                      int n_args);

/** @brief Writes each NUL-terminated text of `texts` (n of them) as a seed `prefix`-N. */
void dw_fuzz_seed_texts(const char *dir, const char *prefix, const char *const *texts, size_t n);

/** @returns the bytes of the file at `path` in an exact-size malloc'ed block (*len bytes), or
 *           NULL when it cannot be opened. */
uint8_t *dw_fuzz_read_file(const char *path, size_t *len);

/** @brief Writes the file at `path` (relative to the source tree when the run starts there, as
 *        ctest and scripts/fuzz.sh do) as seed `name`; silently nothing when it is missing. */
void dw_fuzz_seed_file(const char *dir, const char *name, const char *path);

#endif
