#!/usr/bin/env bash
# Memory of the join cache per record (bench/bench_join.c): RUNS fresh processes per id style,
# each inserting N unlabelled predictions through dw_part; prints every run and the medians.
# Figures go to bench/RESULTS.md.
#   bench/join_memory.sh [N] [RUNS]      (defaults 1000000 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
RUNS=${2:-5}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench --target bench_join -j"$(nproc)" >/dev/null
for style in gen uuid parked-texts; do
    flag=""
    [ "$style" != gen ] && flag=--$style
    out=$(for _ in $(seq "$RUNS"); do build-bench/bench_join --count "$N" $flag; done)
    echo "$out"
    med() { echo "$out" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' |
            sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    echo "median ($style ids, $RUNS runs): $(med rss_bytes_per_record) bytes/record resident," \
         "$(med heap_bytes_per_record) bytes/record allocated"
done
