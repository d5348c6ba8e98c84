"""Redis faults that used to lose data silently, against a real redis-server and the mock broker:

1. Redis killed (kill -9) and restarted from its append-only file ten times while traffic flows,
   with appendfsync everysec (a restart may lose the last second of acknowledged checkpoints)
   and an AOF slow to load (the server answers -LOADING for about a second): the final state
   equals gen's truth exactly, and no partition was dropped while Kafka assigned it.
2. Redis emptied (FLUSHALL) while driftwatch runs, state.on_loss: rebuild_from_earliest: the
   loss is counted and logged, the partitions are rebuilt from the earliest offsets, and the
   final state equals the truth again.
3. Redis emptied while driftwatch is down, state.on_loss: stop: on restart every partition is
   held (not consumed), /readyz fails naming them, the loss is counted; restarted with
   resume_from_committed it consumes again from the committed offsets and becomes ready.
"""
import subprocess
import sys
import threading
import time

import harness as h

RESTARTS = 10
FILLER_KEYS = "40000"   # keys that make the AOF slow to load
LOAD_DELAY_US = "25"    # microseconds per key while loading: about one second


def restart_redis(env, load_delay="0", kill=True):
    """Replaces the Env's redis-server with one that persists to an AOF in env.dir."""
    old = env.procs[0]
    if kill:
        old.kill()
    else:
        old.terminate()
    old.wait()
    p = subprocess.Popen(["redis-server", "--port", str(env.redis_port), "--bind", "127.0.0.1",
                          "--dir", env.dir, "--save", "", "--appendonly", "yes",
                          "--appendfsync", "everysec", "--enable-debug-command", "yes",
                          "--key-load-delay", load_delay],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.procs[0] = p
    return p


def wait_redis(env):
    h.wait_for(lambda: env.redis("PING") == "PONG", 30, "redis-server")


def test_aof_restarts():
    env = h.Env(partitions=4, name="aofrestart")
    restart_redis(env)
    wait_redis(env)
    env.redis("DEBUG", "POPULATE", FILLER_KEYS, "filler", "64")
    env.redis("BGREWRITEAOF")
    time.sleep(1.5)
    env.config(checkpoint="200ms", session_timeout=6000)
    done = {}
    gen_args = ["--count", "40000", "--eps", "100", "--rate", "1500", "--early-labels", "0.1",
                "--duplicate-labels", "0.05", "--label-delay", "20"]
    producer = threading.Thread(target=lambda: done.update(truth=env.gen(*gen_args)))
    producer.start()
    proc = env.start_run()
    h.wait_for(lambda: env.log().count("partition assigned") >= 4, 60, "partition assignment")
    for i in range(RESTARTS):
        time.sleep(1.5)
        restart_redis(env, LOAD_DELAY_US)
        print(f"redis killed and restarted from its AOF ({i + 1}/{RESTARTS})", flush=True)
        wait_redis(env)
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 180)
    log = env.log()
    ok = h.report(not diffs, f"exact counts after {RESTARTS} Redis restarts from the AOF",
                  f"({len(truth)} windows) {diffs[:5]}")
    ok &= h.report(proc.poll() is None, "the consumer survived every restart")
    ok &= h.report("ownership changed" not in log and "owned by another consumer" not in log,
                   "no partition was taken for fenced")
    revoked = log.count("partition revoked")
    ok &= h.report(revoked == 0, "no partition was given up", f"({revoked} revoked)")
    print(f"loading answers seen: {log.count('no answer to the owner check')}, rollbacks "
          f"detected: {log.count('lost acknowledged checkpoints')}", flush=True)
    if not ok:
        print(log[-6000:])
    env.close()
    return ok


def test_flush_rebuild():
    env = h.Env(partitions=4, name="flushrebuild")
    env.config(checkpoint="200ms", extra="state:\n  on_loss: rebuild_from_earliest\n")
    gen_args = ["--count", "30000", "--eps", "100", "--rate", "2000", "--label-delay", "20"]
    done = {}
    producer = threading.Thread(target=lambda: done.update(truth=env.gen(*gen_args)))
    producer.start()
    proc = env.start_run()
    h.wait_for(lambda: env.log().count("partition assigned") >= 4, 60, "partition assignment")
    time.sleep(4)
    env.redis("FLUSHALL")
    print("redis flushed while driftwatch runs", flush=True)
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 180)
    ok = h.report(not diffs, "exact counts after a FLUSHALL, rebuilt from the earliest offsets",
                  f"({len(truth)} windows) {diffs[:5]}")
    losses = env.metric("driftwatch_state_losses_total")
    ok &= h.report(losses is not None and losses >= 4, "the loss is counted",
                   f"(driftwatch_state_losses_total {losses})")
    ok &= h.report("state loss" in env.log(), "the loss is logged")
    ok &= h.report(proc.poll() is None, "the consumer kept running")
    status, body = env.http_get("/readyz")
    ok &= h.report(status == 200, "ready again after the rebuild", f"({status} {body})")
    if not ok:
        print(env.log()[-6000:])
    env.close()
    return ok


def test_flush_while_down_stop():
    env = h.Env(partitions=4, name="flushstop")
    env.config(checkpoint="200ms")
    env.gen("--count", "6000", "--eps", "100", "--rate", "3000", "--label-delay", "20")
    proc = env.start_run()
    h.wait_for(lambda: env.redis("HGET", "{dw:dwtest:predictions:0}:meta", "off_pred") not in
               ("", "-1"), 60, "a checkpoint")
    time.sleep(3)  # checkpoints and their Kafka commits
    proc.terminate()
    proc.wait(20)
    env.redis("FLUSHALL")
    proc = env.start_run("run2")
    h.wait_for(lambda: env.metric("driftwatch_partitions_state_lost") == 4, 60,
               "partitions held as state_lost")
    h.wait_for(lambda: env.http_get("/readyz")[0] == 503 and
               "state_lost" in env.http_get("/readyz")[1], 10, "/readyz naming the reason")
    status, body = env.http_get("/readyz")
    ok = h.report(status == 503 and "state_lost" in body, "/readyz fails and names the reason",
                  f"({status} {body.strip()[:200]})")
    ok &= h.report(env.metric("driftwatch_state_losses_total") == 4, "four losses counted")
    ok &= h.report("state loss" in env.log("run2"), "the loss is logged")
    time.sleep(2)
    stored = env.redis("HGET", "{dw:dwtest:predictions:0}:meta", "off_pred")
    ok &= h.report(stored in ("", "-1"), "held partitions are not consumed",
                   f"(off_pred {stored!r})")
    proc.terminate()
    proc.wait(20)
    env.config(checkpoint="200ms", extra="state:\n  on_loss: resume_from_committed\n")
    proc = env.start_run("run3")
    h.wait_for(lambda: env.http_get("/readyz")[0] == 200, 60, "ready with resume_from_committed")
    ok &= h.report(True, "resume_from_committed: consuming again and ready")
    h.wait_for(lambda: env.redis("HGET", "{dw:dwtest:predictions:0}:meta", "off_pred") not in
               ("", "-1"), 60, "partition 0 checkpointed from its committed offset")
    if not ok:
        print(env.log("run2")[-4000:])
    env.close()
    return ok


def main():
    ok = test_aof_restarts()
    ok &= test_flush_rebuild()
    ok &= test_flush_while_down_stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
