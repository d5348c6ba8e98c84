#!/usr/bin/env bash
# The core's path of every message without Kafka and Redis (bench/bench_part.c): gen's bench
# traffic (N predictions of ~400 bytes with 15 features, two versions, and their N labels, as
# bench/run.sh makes it) decoded and counted into 128 partitions, with a checkpoint's work in
# memory every 200,000 messages. Prints the CPU per message of three runs, the heap the
# partitions hold at the end (exact: the same on every run of the same binary) and, with
# BENCH_CACHEGRIND=1, the instructions per message under cachegrind: the difference between
# a run over 2N + 2N messages and one over N + N, divided by 2N (deterministic: the same on
# every run of the same binary). Run by hand.
#   bench/part.sh [N]     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
. bench/component.sh
component_setup "${BENCH_PART_BUILD:-build-bench}" bench_part
component_traffic "$N" "$N"
component_traffic $((2 * N)) $((2 * N))
for _ in 1 2 3; do
    "$BUILD/bench_part" "$W/dw.yaml" "$W/p$((2 * N)).jsonl" "$W/l$((2 * N)).jsonl"
done
if [ -n "${BENCH_CACHEGRIND:-}" ]; then
    one=$(component_ir "$BUILD/bench_part" "$W/dw.yaml" "$W/p$N.jsonl" "$W/l$N.jsonl")
    two=$(component_ir "$BUILD/bench_part" "$W/dw.yaml" "$W/p$((2 * N)).jsonl" "$W/l$((2 * N)).jsonl")
    echo "bench_part: $(echo "scale=1; ($two - $one) / (2 * $N)" | bc) instructions per message (cachegrind)"
fi
