#!/usr/bin/env bash
# Installs what is needed, builds (plain and with ASan+UBSan) and runs every test:
# unit tests (cmocka) and integration tests (real redis-server, librdkafka's mock cluster over
# TCP, real HTTP receivers, all on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

# House style: formatting by machine (.clang-format); a diff fails the run.
find src include tests bench -name '*.[ch]' -print0 | xargs -0 clang-format --dry-run --Werror

# Sanitizer build: every unit test, and the exact-count end-to-end run, under ASan + UBSan.
cmake -S . -B build-asan -DDW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest -L unit -j"$jobs" --output-on-failure)
(cd build-asan && ctest -R 'integration.test_(exact_counts|deliver|checkpoint_redis|redis_restart|state_redis|kafka|fetchwake|reference_window_lost)' --output-on-failure)

# Fuzzing, briefly: every libFuzzer harness for FUZZ_SECONDS each (clang build in build-fuzz/;
# the long run is `scripts/fuzz.sh 3600`, docs/fuzzing.md). Fails on any crash, leak or hang.
bash scripts/fuzz.sh "${FUZZ_SECONDS:-5}"

# Release-like build: the whole suite; its summary is the last thing printed.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest -L unit -j"$jobs" --output-on-failure >/dev/null)
cd build && ctest --output-on-failure
