#!/usr/bin/env bash
# The quick start: installs what it needs, builds, starts a local redis-server, an in-process
# Kafka cluster (driftwatch dev-broker) and a webhook receiver, produces synthetic traffic with
# drift injected after six stable windows, runs driftwatch, and prints the alert the receiver
# got and the retraining trigger read back from the trigger topic. Exits 0 when both arrived,
# 1 (with the reason) when they did not within QUICKSTART_TIMEOUT seconds. Stops every process
# it started. Everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TIMEOUT=${QUICKSTART_TIMEOUT:-180}

bash scripts/deps.sh
if [ -z "${DRIFTWATCH_BIN:-}" ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
    DRIFTWATCH_BIN="$ROOT/build/driftwatch"
fi
DW="$DRIFTWATCH_BIN"

WORK=$(mktemp -d /tmp/driftwatch-quickstart.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${QUICKSTART_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "quickstart: FAILED: $*" >&2; echo "--- driftwatch log (last lines) ---" >&2; tail -n 20 "$WORK/run.log" >&2 || true; exit 1; }

REDIS_PORT=$(free_port); HOOK_PORT=$(free_port); HTTP_PORT=$(free_port)
echo "quickstart: working in $WORK"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || fail "redis-server did not start"
echo "quickstart: redis-server on 127.0.0.1:$REDIS_PORT"

"$DW" dev-broker --topic predictions:8 --topic labels:8 --topic driftwatch-dead-letter:1 \
    --topic driftwatch-triggers:1 >"$WORK/broker.out" 2>"$WORK/broker.log" &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^BOOTSTRAP=' "$WORK/broker.out" 2>/dev/null && break; sleep 0.1; done
BOOTSTRAP=$(sed -n 's/^BOOTSTRAP=//p' "$WORK/broker.out")
[ -n "$BOOTSTRAP" ] || fail "dev-broker did not print its bootstrap address"
echo "quickstart: dev-broker at $BOOTSTRAP"

python3 scripts/webhook_receiver.py --port "$HOOK_PORT" --out "$WORK/alerts.jsonl" &
PIDS+=($!)

cat >"$WORK/driftwatch.yaml" <<YAML
group: quickstart
kafka:
  bootstrap.servers: "$BOOTSTRAP"
  session.timeout.ms: 6000
redis:
  host: 127.0.0.1
  port: $REDIS_PORT
window:
  size: 60s
  allowed_lateness: 5s
  idle_timeout: 5s
  label_horizon: 60s
checkpoint:
  interval: 500ms
evaluation:
  interval: 500ms
reference:
  windows: 3
detectors:
  psi_threshold: 0.2
  accuracy_drop: 0.05
  min_samples: 100
http:
  listen: "127.0.0.1:$HTTP_PORT"
alerting:
  sinks:
    webhook:
      type: webhook
      url: "http://127.0.0.1:$HOOK_PORT/alerts"
      secret: "whsec_ZHJpZnR3YXRjaC1xdWlja3N0YXJ0LXNlY3JldA=="
$("$DW" gen --print-models)
YAML

echo "quickstart: producing 36000 predictions (12 one-minute windows); from minute 6 'amount'"
echo "            shifts by 1.5 std, the 'country' mix reverses and accuracy falls to 0.7"
"$DW" gen --brokers "$BOOTSTRAP" -q --count 36000 --eps 50 --label-delay 15 \
    --early-labels 0.05 --duplicate-labels 0.02 --malformed 0.001 --versions 1.4.0,1.5.0 \
    --drift-at 360 --drift-shift amount=1.5 --drift-mix country --drift-accuracy 0.7 \
    || fail "gen could not produce the traffic"

"$DW" run -c "$WORK/driftwatch.yaml" >"$WORK/run.log" 2>&1 &
RUN_PID=$!
PIDS+=($RUN_PID)
echo "quickstart: driftwatch run started (metrics on http://127.0.0.1:$HTTP_PORT/metrics)"

deadline=$((SECONDS + TIMEOUT))
alert="" trigger=""
while [ $SECONDS -lt $deadline ]; do
    kill -0 "$RUN_PID" 2>/dev/null || fail "driftwatch run exited early"
    [ -s "$WORK/alerts.jsonl" ] && alert=$(head -n 1 "$WORK/alerts.jsonl")
    trigger=$(kcat -b "$BOOTSTRAP" -C -t driftwatch-triggers -e -q -f '%s\n' 2>/dev/null | head -n 1 || true)
    [ -n "$alert" ] && [ -n "$trigger" ] && break
    sleep 1
done
[ -n "$alert" ] || fail "no alert reached the webhook receiver within ${TIMEOUT}s"
[ -n "$trigger" ] || fail "no retraining trigger on topic driftwatch-triggers within ${TIMEOUT}s"

echo
echo "=== alert delivered to the webhook receiver ==="
echo "$alert" | python3 -c 'import json,sys; a=json.load(sys.stdin); a.pop("report",None); print(json.dumps(a, indent=2))'
echo
echo "=== retraining trigger read back from topic driftwatch-triggers ==="
echo "$trigger" | python3 -m json.tool
echo
echo "quickstart: OK (alert and trigger delivered)"
