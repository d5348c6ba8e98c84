"""Redis unavailable while partitions are assigned: loading in the rebalance callback is bounded.

Redis is frozen (SIGSTOP) between the consumer's start and its first assignment. The
partitions cannot be loaded; after the bounded wait they stay assigned but paused, the main
loop keeps running (/livez 200), /readyz says why (503, "redis unavailable") and
driftwatch_partitions_loading counts them; nothing is quarantined (unavailable is not
corrupt). Once Redis answers again, every partition is loaded and consumed, exactly."""
import signal
import sys
import time

import harness as h


def main():
    env = h.Env(partitions=4, name="unavailable")
    env.config()
    truth, _ = env.gen("--count", "3000", "--eps", "25", "--label-delay", "5")
    redis_proc = env.procs[0]
    proc = env.start_run()
    h.wait_for(lambda: '"msg":"started"' in env.log(), 30, "consumer start")
    redis_proc.send_signal(signal.SIGSTOP)
    ok = True
    loading = h.eventually(lambda: env.metric("driftwatch_partitions_loading") == 4, 60)
    ok &= h.report(loading, "driftwatch_partitions_loading = 4 while Redis is frozen")
    status, body = env.http_get("/livez")
    ok &= h.report(status == 200, "/livez 200: the loop is not stuck in the callback")
    said = h.eventually(lambda: "redis unavailable" in env.http_get("/readyz")[1], 30)
    status, body = env.http_get("/readyz")
    ok &= h.report(said and status == 503, "/readyz says why", f"{status} {body.strip()}")
    ok &= h.report(env.metric("driftwatch_partitions_quarantined") == 0,
                   "unavailable is not corrupt: nothing quarantined")
    redis_proc.send_signal(signal.SIGCONT)
    diffs = h.wait_exact(env, truth, 120)
    ok &= h.report(not diffs, "every partition loaded and consumed once Redis answers",
                   f"{diffs[:3]}")
    ok &= h.report(h.eventually(lambda: env.metric("driftwatch_partitions_loading") == 0, 30),
                   "driftwatch_partitions_loading = 0")
    lines = h.log_entries(env.log())
    ok &= h.report(any(l["msg"] == "partition state loaded: Redis answered" for l in lines),
                   "the late load is logged")
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
