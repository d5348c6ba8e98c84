#!/usr/bin/env bash
# End-to-end throughput of `driftwatch run`: loads N predictions (~400 bytes, 15 features) and
# their N labels into dev-broker, then starts driftwatch and measures messages per second from
# start to caught up (every message consumed and checkpointed), then checks the Redis state
# against gen's ground truth. Run by hand; figures go to bench/RESULTS.md.
#   bench/run.sh [--peer] [N]          (default 1000000)
# --peer (or BENCH_PEER=1): afterwards, stops driftwatch and runs the Python peer consumer
# (bench/peer/consumer.py) on the same topics, in its own group with its own redis-server, and
# prints the ratio driftwatch/peer in msgs/s and in CPU per message. BENCH_PEER_ARGS: extra
# arguments for the peer (e.g. "--per-message": one HINCRBY per increment, not per batch).
# BENCH_FETCH=1: also the fetch path's ceiling on the same topics (bench/bench_fetch.c) and the
# decoder's (bench/bench_decode.c, 100,000 + 100,000 of the same traffic); with --peer,
# what those floors leave of 15x the peer's CPU a message for driftwatch's own work.
# The binary measured is the release build of scripts/pgo.sh, the image's (bench/lib.sh);
# BENCH_PGO=0: the plain build, BENCH_BUILD_TYPE: the build type (Release).
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${BENCH_PEER:-}; [ "$PEER" = 0 ] && PEER=
if [ "${1:-}" = "--peer" ]; then PEER=1; shift; fi
N=${1:-1000000}
PARTS=${BENCH_PARTITIONS:-128}   # the mock cluster keeps ~5 MiB per partition
. bench/lib.sh
echo "bench: loading $N predictions and $N labels into $PARTS partitions per topic"
t0=$(date +%s.%N)
gen_traffic --count "$N" --eps 1000
t1=$(date +%s.%N)
write_config
TOTAL=$((2 * N))
broker0=$(cpu $BROKER_PID); redis0=$(cpu $REDIS_PID); redis_in0=$(redis_net_in)
echo "bench: produced in $(echo "$t1 - $t0" | bc) s; starting driftwatch run"
start=$(date +%s.%N)
# BENCH_WRAP: a command to run driftwatch under (e.g. "heaptrack -o /tmp/dw"; figures are off)
${BENCH_WRAP:-} "$DW" run -c "$WORK/dw.yaml" >"$WORK/run.log" 2>&1 &
RUN=$!
# Stops driftwatch before the fetch step or the peer (either or both run after it).
stop_run() { kill $RUN 2>/dev/null || true; wait $RUN 2>/dev/null || true; }
PIDS+=($RUN)
# BENCH_SMAPS=1: where driftwatch's resident memory is at the highest RSS sampled (bench/smaps.py)
if [ -n "${BENCH_SMAPS:-}" ]; then
    /usr/bin/python3 bench/smaps.py --peak $RUN &
    SMAPS=$!
    PIDS+=($SMAPS)
fi
# BENCH_PERF=FILE: perf record of driftwatch into FILE; BENCH_PERF_CALLS: its call-graph option
# (default -g, frame pointers; "--call-graph dwarf" to see through libraries built without them)
if [ -n "${BENCH_PERF:-}" ]; then
    perf record ${BENCH_PERF_CALLS:--g} -o "$BENCH_PERF" -p $RUN >/dev/null 2>&1 &
    PIDS+=($!)
fi
first=""
# BENCH_SAMPLE=S: every S seconds a line "sample: seconds, consumed, RSS KiB, Redis bytes,
# watermark" (the soak's memory over time; the group's watermark in seconds, 0 while unknown).
# BENCH_BATCH_BYTES: gen's producer batch size (bench/lib.sh).
next_sample=0
while :; do
    c=$(consumed)
    [ -z "$first" ] && [ "${c%.*}" -gt 0 ] && first=$(date +%s.%N)
    if [ -n "${BENCH_SAMPLE:-}" ] && [ "$(date +%s)" -ge "$next_sample" ]; then
        next_sample=$(($(date +%s) + BENCH_SAMPLE))
        echo "sample: $(printf '%.0f' "$(echo "$(date +%s.%N) - $start" | bc)") s, ${c%.*} consumed," \
            "RSS $(status_kib $RUN VmRSS) KiB, redis $(redis_used) B, watermark $(watermark)"
    fi
    [ "${c%.*}" -ge "$TOTAL" ] && break
    kill -0 $RUN || { echo "driftwatch exited"; tail "$WORK/run.log"; exit 1; }
    sleep 0.2
done
end=$(date +%s.%N)
rss=$(status_kib $RUN VmRSS)
hwm=$(status_kib $RUN VmHWM)
c_run=$(cpu $RUN); c_main=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$RUN/task/$RUN/stat"); c_broker=$(echo "$(cpu $BROKER_PID) - $broker0" | bc); c_redis=$(echo "$(cpu $REDIS_PID) - $redis0" | bc)
secs=$(echo "$end - $start" | bc)
busy=$(echo "$end - $first" | bc)
echo "bench: $TOTAL messages in $secs s from start = $(echo "$TOTAL / $secs" | bc) msgs/s"
echo "bench: from the first message consumed: $busy s = $(echo "$TOTAL / $busy" | bc) msgs/s; RSS ${rss} KiB, peak RSS ${hwm} KiB"
echo "bench: CPU seconds while consuming: driftwatch $c_run, dev-broker $c_broker, redis-server $c_redis (2 cores shared); $(echo "$TOTAL / $c_run" | bc) msgs per driftwatch CPU-second"
echo "bench: bytes sent to Redis while consuming: $(($(redis_net_in) - redis_in0))"
# minor page faults (pages touched for the first time since mapped): /proc/PID/stat field 10
echo "bench: driftwatch's minor page faults: $(awk '{print $10}' "/proc/$RUN/stat") (whole run)"
echo "bench: driftwatch's main thread (the event loop) used $c_main CPU-s of the $secs s from start"
echo "bench: the event loop's wall time by phase (s): $(metrics |
    awk -F'[" ]' '/^driftwatch_loop_seconds_total/ {printf "%s %.2f, ", $2, $4}')"
echo "bench: labels partitions paused by event-time alignment: $(metrics |
    awk '/^driftwatch_label_holds_total/ {s += $2} END {print s + 0}') times"
sleep 2
used=$(redis_used)
echo "bench: redis used_memory 2 s after the last message: $used bytes ($(redis-cli -p "$RP" dbsize | tr -d '\r') keys)"
# The windows closed by the catch-up are evaluated after their last message (the close
# evaluation, the reference): their CPU and memory belong to the run too. Settled once
# driftwatch used less than 0.05 CPU-s in each of four 0.5 s samples (at most 60 s).
settle0=$(date +%s.%N); quiet=0; prev=$(cpu $RUN)
for _ in $(seq 120); do
    sleep 0.5
    now=$(cpu $RUN)
    if [ "$(echo "$now - $prev < 0.05" | bc)" = 1 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    prev=$now
    [ $quiet -ge 4 ] && break
done
c_all=$(cpu $RUN)
used=$(redis_used)
echo "bench: settled $(echo "$(date +%s.%N) - $settle0" | bc | cut -c1-5) s after the last message: driftwatch CPU-s $c_all in all ($(echo "scale=2; $c_all * 1000000 / $TOTAL" | bc) us per message), peak RSS $(status_kib $RUN VmHWM) KiB, RSS $(status_kib $RUN VmRSS) KiB"
echo "bench: redis used_memory after catch-up: $used bytes ($(redis-cli -p "$RP" dbsize | tr -d '\r') keys)"
if [ -n "${BENCH_SMAPS:-}" ]; then
    /usr/bin/python3 bench/smaps.py "$RUN"
    kill $SMAPS; wait $SMAPS || true
fi
[ -n "${BENCH_REDIS_KINDS:-}" ] && /usr/bin/python3 bench/redis_memory.py "$RP"
state_check
# BENCH_FETCH=1: then the fetch path's ceiling on the same topics (bench/bench_fetch.c: a
# librdkafka consumer in a group of its own, configured and waking its fetchers as run's, that
# does nothing with its messages), driftwatch stopped first so that the two do not share the
# cores. BENCH_WRAP applies to it as to driftwatch (the same allocator preloaded).
if [ -n "${BENCH_FETCH:-}" ]; then
    stop_run
    plain_build bench_fetch
    broker0=$(cpu $BROKER_PID)
    FETCHWAKE=1 ${BENCH_WRAP:-} build-bench/bench_fetch "$B" "$TOTAL" predictions labels |
        tee "$WORK/fetch.txt"
    echo "bench: dev-broker CPU-s while bench_fetch consumed: $(echo "$(cpu $BROKER_PID) - $broker0" | bc)"
    # The decoder's floor: bench_decode (the decoder alone, bench/decode.sh) over 100,000
    # predictions and their labels of the same traffic, in files; the median of 5 passes.
    plain_build bench_decode
    "$DW" gen -q "${GEN_TRAFFIC[@]}" --count 100000 --eps 1000 \
        --predictions-out "$WORK/p.jsonl" --labels-out "$WORK/l.jsonl"
    build-bench/bench_decode "$WORK/dw.yaml" "$WORK/p.jsonl" "$WORK/l.jsonl" 5 | tee "$WORK/decode.txt"
fi
[ -z "$PEER" ] && exit 0

# The fetch floor in µs a message (bench_fetch's line; empty without BENCH_FETCH), for the
# ratio's budget below.
FLOOR=$(sed -n 's/.*CPU-s (\([0-9.]*\) us per message).*/\1/p' "$WORK/fetch.txt" 2>/dev/null || true)
# The decoder's in µs a message (bench_decode's median in ns; empty without BENCH_FETCH).
DECODE=$(sed -n 's/.*: median \([0-9.]*\) ns per message.*/\1/p' "$WORK/decode.txt" 2>/dev/null || true)

# The peer: driftwatch stops first (it would keep polling and checkpointing beside it), a fresh
# redis-server, the same topics from the beginning in the peer's own consumer group.
stop_run
RP2=$(port)
start_redis "$RP2"
REDIS2_PID=$REDIS_PID
echo "bench: running the Python peer (bench/peer/consumer.py) on the same $TOTAL messages; load average $(cut -d' ' -f1-3 /proc/loadavg)"
broker0=$(cpu $BROKER_PID); redis0=$(cpu $REDIS2_PID)
/usr/bin/python3 bench/peer/consumer.py --brokers "$B" --redis-port "$RP2" --group bench-peer \
    --count "$TOTAL" ${BENCH_PEER_ARGS:-} >"$WORK/peer.json"
p_broker=$(echo "$(cpu $BROKER_PID) - $broker0" | bc); p_redis=$(echo "$(cpu $REDIS2_PID) - $redis0" | bc)
/usr/bin/python3 - "$WORK/peer.json" "$WORK/truth.jsonl" "$RP2" "$TOTAL" "$busy" "$c_run" "$c_redis" "$p_broker" "$p_redis" "$FLOOR" "$DECODE" <<'PY'
import json, sys, redis
peer = json.load(open(sys.argv[1]))
total, dw_busy, dw_cpu, dw_redis = int(sys.argv[4]), *map(float, sys.argv[5:8])
p_broker, p_redis = map(float, sys.argv[8:10])
floor = float(sys.argv[10]) if sys.argv[10] else None
decode = float(sys.argv[11]) / 1000 if sys.argv[11] else None
print(f"bench: peer: {peer['messages']} messages in {peer['seconds']} s from the first message = "
      f"{peer['msgs_per_s']} msgs/s")
print(f"bench: CPU seconds while the peer consumed: peer {peer['cpu_s']}, dev-broker {p_broker:.2f}, "
      f"redis-server {p_redis:.2f}; {total / peer['cpu_s']:.0f} msgs per peer CPU-second")
r = redis.Redis(port=int(sys.argv[3]), decode_responses=True)
truth = [t for t in map(json.loads, open(sys.argv[2])) if "summary" not in t]
exact = sum(all(int(r.hget(f"w:{t['window_start_ms']}", f) or 0) == t[f]
                for f in ("predictions", "labeled", "correct")) for t in truth)
print(f"bench: peer state check: {exact}/{len(truth)} windows exact (predictions, labeled, correct)")
dw_rate = total / dw_busy
dw_us, peer_us = dw_cpu * 1e6 / total, peer['cpu_s'] * 1e6 / total  # CPU a message
print(f"bench: ratio driftwatch/peer: {dw_rate / peer['msgs_per_s']:.1f}x msgs/s from the first message "
      f"({dw_rate:.0f} vs {peer['msgs_per_s']}), {peer_us / dw_us:.1f}x CPU per message "
      f"({dw_us:.2f} vs {peer_us:.2f} us), "
      f"{(peer['cpu_s'] + p_redis) / (dw_cpu + dw_redis):.1f}x with each one's redis-server CPU")
# 15x the peer: the budget a message, and what the fetch path's floor and the decoder's
# (BENCH_FETCH) leave of it
budget = peer_us / 15
left = (f"; the fetch floor takes {floor:.2f}, leaving {budget - floor:.2f} us for driftwatch's own "
        f"work, which took {dw_us - floor:.2f}" if floor is not None else "")
print(f"bench: 15x the peer would be {budget:.2f} us of CPU a message and "
      f"{15 * peer['msgs_per_s']:.0f} msgs/s{left}")
if floor is not None and decode is not None:
    rest = budget - floor - decode
    print(f"bench: of that own work the decoder alone takes {decode:.2f} us a message (bench_decode), "
          f"leaving {rest:.2f} us for the join, the windows and the checkpoints, which took "
          f"{dw_us - floor - decode:.2f} (while consuming, as the ratio: the evaluations after the "
          f"last message come on top)")
PY
