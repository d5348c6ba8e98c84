#!/usr/bin/env bash
# The core's path of every message without Kafka and Redis (bench/bench_part.c): gen's bench
# traffic (N predictions of ~400 bytes with 15 features, two versions, and their N labels, as
# bench/run.sh makes it) decoded and counted into 128 partitions, with a checkpoint's work in
# memory every 200,000 messages. Prints the CPU per message of three runs and, with
# BENCH_CACHEGRIND=1, the instructions per message under cachegrind: the difference between
# a run over 2N + 2N messages and one over N + N, divided by 2N (deterministic: the same on
# every run of the same binary). Run by hand.
#   bench/part.sh [N]     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BUILD=${BENCH_PART_BUILD:-build-bench}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE="${BENCH_BUILD_TYPE:-Release}" >/dev/null
cmake --build "$BUILD" --target driftwatch bench_part -j"$(nproc)" >/dev/null
W=$(mktemp -d /tmp/driftwatch-part.XXXXXX)
trap 'rm -rf "$W"' EXIT
for n in "$N" $((2 * N)); do
    "$BUILD/driftwatch" gen -q --numeric 10 --categorical 5 --versions 1.0.0,1.1.0 \
        --label-delay 30 --count "$n" --eps 1000 --predictions-out "$W/p$n.jsonl" \
        --labels-out "$W/l$n.jsonl"
done
{
    printf "group: bench\nkafka: {bootstrap.servers: \"127.0.0.1:9\"}\n"
    "$BUILD/driftwatch" gen --print-models --numeric 10 --categorical 5
} >"$W/dw.yaml"
for _ in 1 2 3; do
    "$BUILD/bench_part" "$W/dw.yaml" "$W/p$((2 * N)).jsonl" "$W/l$((2 * N)).jsonl"
done
if [ -n "${BENCH_CACHEGRIND:-}" ]; then
    ir() {
        valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$W/cg.out" \
            "$BUILD/bench_part" "$W/dw.yaml" "$W/p$1.jsonl" "$W/l$1.jsonl" >/dev/null 2>&1
        awk '/^summary:/ {print $2}' "$W/cg.out"
    }
    one=$(ir "$N"); two=$(ir $((2 * N)))
    echo "bench_part: $(echo "scale=1; ($two - $one) / (2 * $N)" | bc) instructions per message (cachegrind)"
fi
