# bench/lib.sh - what bench/run.sh and bench/soak.sh share: the release build (with PGO), a
# redis-server and a dev-broker on free loopback ports, the run's config, and the probes (CPU
# seconds, /proc status fields, Redis used_memory, messages consumed, the state check against
# gen's truth).
# Sourced, not run. Sets DW, WORK, RP, HP, B, REDIS_PID, BROKER_PID; PIDS are killed on exit.

bash scripts/deps.sh --bench
# The binary the Dockerfile ships: Release with profile-guided optimization (scripts/pgo.sh, in
# build-bench-pgo); BENCH_PGO=0 for the plain build (build-bench), e.g. to compare the two or to
# count instructions against figures measured before it.
# plain_build TARGET...: the targets in build-bench, the plain build (bench_fetch is built there).
plain_build() {
    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE="${BENCH_BUILD_TYPE:-Release}" >/dev/null
    cmake --build build-bench --target "$@" -j"$(nproc)" >/dev/null
}
if [ "${BENCH_PGO:-1}" = 1 ]; then
    PGO_BUILD_TYPE="${BENCH_BUILD_TYPE:-Release}" bash scripts/pgo.sh build-bench-pgo
    DW=$PWD/build-bench-pgo/driftwatch
else
    plain_build driftwatch
    DW=$PWD/build-bench/driftwatch
fi
WORK=$(mktemp -d /tmp/driftwatch-bench.XXXXXX)
PIDS=()
# (a BENCH_WRAP such as heaptrack runs driftwatch as its child: the children go too)
cleanup() { for p in "${PIDS[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# A command that fails stops the run (set -e): say which, since the cleanup leaves no other trace.
trap 'echo "bench: stopped: line $LINENO of ${BASH_SOURCE[0]}: $BASH_COMMAND (exit $?)" >&2' ERR
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A redis-server on port $1, its pid in REDIS_PID (killed on exit).
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
        >/dev/null 2>&1 &
    REDIS_PID=$!
    PIDS+=($REDIS_PID)
    for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
RP=$(port); HP=$(port)
start_redis "$RP"
"$DW" dev-broker --topic predictions:$PARTS --topic labels:$PARTS \
    --topic driftwatch-dead-letter:1 --topic driftwatch-triggers:1 >"$WORK/broker.out" 2>/dev/null &
PIDS+=($!)
BROKER_PID=$!
for _ in $(seq 100); do grep -q BOOTSTRAP "$WORK/broker.out" && break; sleep 0.1; done
B=$(sed -n 's/^BOOTSTRAP=//p' "$WORK/broker.out")

# gen's traffic for the benches: ~400-byte predictions with 10 numeric and 5 categorical
# features, two versions, labels 30 s of event time after their predictions. Large producer
# batches: librdkafka's mock broker serves one message set per partition per fetch, so small
# batches make the mock (not driftwatch) the bottleneck (bench/RESULTS.md). The same rule makes
# the batch size decide how many partitions a fetch reads (BENCH_BATCH_BYTES; bench/RESULTS.md,
# "Which partitions a fetch reads").
GEN_TRAFFIC=(--numeric 10 --categorical 5 --versions 1.0.0,1.1.0 --label-delay 30)
gen_traffic() {
    "$DW" gen --brokers "$B" -q "${GEN_TRAFFIC[@]}" --truth "$WORK/truth.jsonl" \
        -X linger.ms=${BENCH_LINGER_MS:-1000} -X batch.size=${BENCH_BATCH_BYTES:-4000000} \
        -X batch.num.messages=100000 "$@"
}

# The run's config (label horizon 1 h, join.ttl at its default of 1 h).
write_config() {
    cat >"$WORK/dw.yaml" <<YAML
group: bench
kafka:
  bootstrap.servers: "$B"
${BENCH_KAFKA:-}
redis: {host: 127.0.0.1, port: $RP}
window: {size: 60s, allowed_lateness: 5s, idle_timeout: 30s, label_horizon: 1h}
checkpoint: {interval: ${BENCH_CHECKPOINT:-1s}}
http: {listen: "127.0.0.1:$HP"}
$("$DW" gen --print-models --numeric 10 --categorical 5)
YAML
}

# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# driftwatch's metrics page (nothing while it is not up).
metrics() { curl -s "http://127.0.0.1:$HP/metrics" || true; }
consumed() { metrics | awk '/^driftwatch_messages_consumed_total/ {s += $2} END {print s + 0}'; }
# The group's global watermark (seconds; 0 while some partition's clock is unknown).
watermark() { metrics | awk '/^driftwatch_global_watermark_seconds/ {print $2; exit}'; }
# A field of /proc/PID/status (KiB), and Redis's used_memory (bytes).
status_kib() { awk -v f="^$2:" '$0 ~ f {print $2}' "/proc/$1/status"; }
redis_net_in() { redis-cli -p "$RP" info stats | awk -F: '/^total_net_input_bytes:/ {print $2}' | tr -d '\r'; }
redis_used() { redis-cli -p "$RP" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }

# The per-window predictions, labeled and correct in Redis against gen's truth.
state_check() {
    "$DW" inspect -c "$WORK/dw.yaml" >"$WORK/state.jsonl"
    python3 - "$WORK/truth.jsonl" "$WORK/state.jsonl" <<'PY'
import json, sys
truth = {r["window_start_ms"]: r for r in map(json.loads, open(sys.argv[1])) if "summary" not in r}
state = {r["window_start_ms"]: r for r in map(json.loads, open(sys.argv[2]))}
bad = [k for k, t in truth.items() if any(state.get(k, {}).get(f) != t[f] for f in ("predictions", "labeled", "correct"))]
print(f"bench: state check: {len(truth) - len(bad)}/{len(truth)} windows exact")
PY
}
