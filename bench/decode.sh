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
. bench/component.sh
component_setup "${BENCH_DECODE_BUILD:-build-bench}" bench_decode
component_traffic "$N" ""
"$BUILD/bench_decode" "$W/dw.yaml" "$W/p.jsonl" "$W/l.jsonl" "$RUNS"
if [ -n "${BENCH_CACHEGRIND:-}" ]; then
    one=$(component_ir "$BUILD/bench_decode" "$W/dw.yaml" "$W/p.jsonl" "$W/l.jsonl" 1)
    three=$(component_ir "$BUILD/bench_decode" "$W/dw.yaml" "$W/p.jsonl" "$W/l.jsonl" 3)
    msgs=$(($(wc -l <"$W/p.jsonl") + $(wc -l <"$W/l.jsonl")))
    echo "bench_decode: $(echo "scale=1; ($three - $one) / (2 * $msgs)" | bc) instructions per message (cachegrind)"
fi
