#!/usr/bin/env bash
# The decoder alone (bench/bench_decode.c) over gen's bench traffic: N predictions of ~400 bytes
# (10 numeric, 5 categorical features, two versions) and their N labels, the same traffic and
# models as bench/run.sh. Prints the median CPU per message; with BENCH_CACHEGRIND=1 also the
# decoder's instructions per message under cachegrind (deterministic: the difference between
# a run with 3 passes and one with 1 pass, over twice the messages). Run by hand.
#   bench/decode.sh [N] [RUNS]     (defaults 100000 and 9)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
RUNS=${2:-9}
BUILD=${BENCH_DECODE_BUILD:-build-bench}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE="${BENCH_BUILD_TYPE:-Release}" >/dev/null
cmake --build "$BUILD" --target driftwatch bench_decode -j"$(nproc)" >/dev/null
W=$(mktemp -d /tmp/driftwatch-decode.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$BUILD/driftwatch" gen -q --numeric 10 --categorical 5 --versions 1.0.0,1.1.0 --label-delay 30 \
    --count "$N" --eps 1000 --predictions-out "$W/p.jsonl" --labels-out "$W/l.jsonl"
{
    printf "group: bench\nkafka: {bootstrap.servers: \"127.0.0.1:9\"}\n"
    "$BUILD/driftwatch" gen --print-models --numeric 10 --categorical 5
} >"$W/dw.yaml"
"$BUILD/bench_decode" "$W/dw.yaml" "$W/p.jsonl" "$W/l.jsonl" "$RUNS"
if [ -n "${BENCH_CACHEGRIND:-}" ]; then
    ir() {
        valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$W/cg.out" \
            "$BUILD/bench_decode" "$W/dw.yaml" "$W/p.jsonl" "$W/l.jsonl" "$1" >/dev/null 2>&1
        awk '/^summary:/ {print $2}' "$W/cg.out"
    }
    one=$(ir 1); three=$(ir 3)
    msgs=$(($(wc -l <"$W/p.jsonl") + $(wc -l <"$W/l.jsonl")))
    echo "bench_decode: $(echo "scale=1; ($three - $one) / (2 * $msgs)" | bc) instructions per message (cachegrind)"
fi
