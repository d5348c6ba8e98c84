#!/usr/bin/env bash
# The soak: driftwatch consumes while gen produces N predictions and their N labels at RATE
# messages per second of wall clock, 1000 predictions per second of event time: N = 10M spans
# 2.8 h of event time, with the label horizon and join.ttl at 1 h, so the state must stop
# growing once the first hour of event time is behind. Every S seconds a line:
#   soak: <wall s> s, event <h> h, <consumed> consumed, RSS <KiB>, redis <bytes>
# then peak RSS, CPU seconds and the state check against gen's truth. Run by hand (about
# 2N / RATE seconds); figures go to bench/RESULTS.md.
#   bench/soak.sh [N] [RATE] [S]      (default 10000000 20000 30)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
RATE=${2:-20000}
S=${3:-30}
PARTS=${BENCH_PARTITIONS:-128}
. bench/lib.sh
write_config
# BENCH_WRAP: a command to run driftwatch under, as in bench/run.sh (e.g. "env LD_PRELOAD=...")
${BENCH_WRAP:-} "$DW" run -c "$WORK/dw.yaml" >"$WORK/run.log" 2>&1 &
RUN=$!
PIDS+=($RUN)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HP/metrics" >/dev/null && break; sleep 0.1; done
echo "soak: $N predictions and $N labels at $RATE messages/s into $PARTS partitions per topic"
gen_traffic --count "$N" --eps 1000 --rate "$RATE" &
GEN=$!
PIDS+=($GEN)
TOTAL=$((2 * N))
start=$(date +%s)
sample() {
    local c=$1
    echo "soak: $(($(date +%s) - start)) s, event $(echo "scale=2; $c / 2000 / 3600" | bc) h," \
        "$c consumed, RSS $(status_kib $RUN VmRSS) KiB, redis $(redis_used) B"
}
next=0
while :; do
    c=$(consumed)
    c=${c%.*}
    if [ "$(date +%s)" -ge "$next" ]; then
        next=$(($(date +%s) + S))
        sample "$c"
    fi
    [ "$c" -ge "$TOTAL" ] && break
    kill -0 $RUN || { echo "driftwatch exited"; tail "$WORK/run.log"; exit 1; }
    sleep 1
done
sleep 2
sample "$(consumed)"
echo "soak: peak RSS $(status_kib $RUN VmHWM) KiB; CPU seconds: driftwatch $(cpu $RUN)," \
    "dev-broker $(cpu $BROKER_PID), redis-server $(cpu $REDIS_PID)"
[ -n "${BENCH_REDIS_KINDS:-}" ] && /usr/bin/python3 bench/redis_memory.py "$RP"
wait $GEN
state_check
