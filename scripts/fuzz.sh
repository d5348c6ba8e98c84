#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c; clang, ASan + UBSan) in build-fuzz/,
# writes each one's seed corpus (made by the project's own encoders and gen) and runs each
# harness for SECONDS, keeping what it learns in build-fuzz/corpus/<name>/ for the next run.
# Exits non-zero when any harness crashes, leaks, hangs or trips a sanitizer, and says where
# the input that did it is. docs/fuzzing.md explains how to turn it into a regression test.
#
#   scripts/fuzz.sh [SECONDS [NAME...]]   SECONDS per harness (default 60); NAME: fuzz_config...
#   scripts/fuzz.sh 3600                  the long run: an hour per harness
#
# Environment: FUZZ_JOBS (build jobs, default nproc), FUZZ_TIMEOUT (seconds one input may take
# before it counts as a hang, default 10), FUZZ_ARGS (more libFuzzer options).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
timeout=${FUZZ_TIMEOUT:-10}
out=build-fuzz

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for src in tests/fuzz/fuzz_*.c; do
        names+=("$(basename "$src" .c)")
    done
fi

CC=clang cmake -S . -B "$out" -DDW_FUZZ=ON -DDW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
targets=()
for name in "${names[@]}"; do
    targets+=(--target "$name" --target "${name}_libfuzzer")
done
cmake --build "$out" -j"$jobs" "${targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for name in "${names[@]}"; do
    seeds=$out/seeds/$name
    corpus=$out/corpus/$name
    crashes=$out/crashes/$name
    log=$out/logs/$name.log
    rm -rf "$seeds"
    mkdir -p "$out/seeds" "$corpus" "$crashes" "$(dirname "$log")"
    "$out/$name" --seeds "$seeds"
    before=$(ls "$crashes" | wc -l)
    # The corpus directory comes first: libFuzzer adds what it finds there, not to the seeds.
    # shellcheck disable=SC2086
    if "$out/${name}_libfuzzer" -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} \
        "$corpus" "$seeds" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz: $name: ${runs:-?} inputs in ${secs}s, corpus $(ls "$corpus" | wc -l), clean"
        continue
    fi
    failed=1
    input=$(ls -t "$crashes" | head -1)
    echo "fuzz: $name FAILED; the end of its log ($log):" >&2
    grep -E 'ERROR|SUMMARY|Assertion|check failed|runtime error|#[0-9]+ 0x' "$log" | head -30 >&2 || true
    if [ "$(ls "$crashes" | wc -l)" -gt "$before" ] && [ -n "$input" ]; then
        echo "fuzz: $name: the input that did it is $crashes/$input" >&2
        echo "fuzz:   reproduce: $out/$name $crashes/$input" >&2
        echo "fuzz:   regression test: cp $crashes/$input tests/fuzz/reproducers/$name/<what-it-is>" >&2
    else
        echo "fuzz: $name: no input was saved (see $log)" >&2
    fi
done
exit $failed
