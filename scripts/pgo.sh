#!/usr/bin/env bash
# The release build of driftwatch, optimized with a profile of its own hot path (GCC's
# profile-guided optimization): the Dockerfile's build and bench/run.sh's use it.
#   scripts/pgo.sh BUILD_DIR [TARGET...]     (targets: driftwatch, and any others to build)
#
# Two builds in BUILD_DIR (GCC names a profile after its object file's path, so both steps
# share the directory):
#   1. DW_PGO=generate: a binary that counts its branches and calls into BUILD_DIR/pgo;
#   2. the training: `driftwatch gen` writes 300,000 predictions of 15 features (two versions,
#      labels 30 s later, ten windows; from the seventh two features shift, one
#      categorical mix turns and the accuracy falls) and their labels, and `driftwatch
#      replay` runs run's pipeline over them (decoder, join, windows, sketches, the evaluation
#      against the first windows: the same code as run without Kafka and Redis);
#   3. DW_PGO=use: the build from that profile. Code the training did not run (the Kafka and
#      Redis adapters, HTTP) is optimized as without a profile (-fprofile-partial-training).
# The profile changes which code is fast, never what it computes (tests/integration/test_pgo.py
# checks that the two builds write the same reports byte for byte).
#
# PGO_BUILD_TYPE sets CMAKE_BUILD_TYPE (default Release). The sources' digest is kept in
# BUILD_DIR/pgo.stamp: with the same sources a second call only builds what is missing. Give it
# a directory of its own (build-release, build-bench-pgo): its CMake cache keeps DW_PGO=use, and
# a later plain `cmake --build` there after a source change would build against a stale profile.
# Measured: bench/RESULTS.md, "Profile-guided optimization".
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: scripts/pgo.sh BUILD_DIR [TARGET...]" >&2
    exit 2
fi
build=$1
shift
targets=(driftwatch "$@")
jobs=$(nproc)
type=${PGO_BUILD_TYPE:-Release}

sources_digest() {
    find CMakeLists.txt src include scripts/pgo.sh -type f -print0 | sort -z |
        xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

stamp="$build/pgo.stamp"
digest="$type $(sources_digest)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    cmake --build "$build" --target "${targets[@]}" -j"$jobs" >/dev/null
    exit 0
fi

rm -f "$stamp"
rm -rf "$build/pgo"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$type" -DDW_PGO=generate >/dev/null
cmake --build "$build" --target driftwatch -j"$jobs" >/dev/null

work=$(mktemp -d /tmp/driftwatch-pgo.XXXXXX)
trap 'rm -rf "$work"' EXIT
dw="$build/driftwatch"
{
    printf 'group: pgo\nkafka: {bootstrap.servers: "127.0.0.1:9"}\n'
    "$dw" gen --print-models --numeric 10 --categorical 5
} >"$work/dw.yaml"
train() {
    "$@" >>"$work/train.log" 2>&1 || {
        cat "$work/train.log" >&2
        echo "scripts/pgo.sh: the training failed: $*" >&2
        exit 1
    }
}
train "$dw" gen -q --numeric 10 --categorical 5 --versions 1.0.0,1.1.0 --label-delay 30 \
    --count 300000 --eps 500 --drift-at 400 --drift-shift amount=1,num_4=0.5 \
    --drift-mix country --drift-accuracy 0.8 --predictions-out "$work/p.jsonl" \
    --labels-out "$work/l.jsonl"
train "$dw" replay -c "$work/dw.yaml" -p "$work/p.jsonl" -l "$work/l.jsonl" \
    -o "$work/reports.jsonl"

cmake -S . -B "$build" -DDW_PGO=use >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"$jobs" >/dev/null
echo "$digest" >"$stamp"
