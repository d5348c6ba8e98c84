"""kill -9 between firing and delivery: the notifications fired while the receiver refused
connections are in Redis (pending deliveries) when driftwatch is killed; after a restart
they are delivered, each exactly once, with the same message ids; and the restart neither
re-fires nor forgets an alert (the alert state is in Redis too)."""
import json
import signal
import sys
import time

import harness as h


def pending(env):
    raw = env.redis("HKEYS", "{dw:dwtest}:deliveries")
    return {line.split("/", 1)[1] for line in raw.splitlines() if "/" in line}


def alerts_logged(env, name):
    """(rule, feature, status, window) of every alert notification a run logged."""
    out = set()
    for line in env.log(name).splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "alert":
            out.add((rec.get("rule"), rec.get("feature"), rec.get("status"),
                     rec.get("window_start")))
    return out


def check_error_stream(env, truth):
    """Final reports carry the change detectors; across the kill their error stream neither
    lost nor repeated a window: its length after each window is the running sum of labeled."""
    # final once the label watermark passed window end + label_horizon (60 s)
    last_label = max(t["window_start_ms"] for t in truth) + 60000
    closed = [t for t in truth if t["window_start_ms"] + 120000 <= last_label - 1000]
    h.wait_for(lambda: int(env.redis("GET", "{dw:dwtest}:cursor_final:fraud") or 0) >=
               closed[-1]["window_start_ms"] + 60000, 60, "final reports")
    running, bad = 0, []
    for t in closed:
        rep = json.loads(env.redis("GET", f"{{dw:dwtest}}:report:fraud:{t['window_start_ms']}"))
        running += rep["labeled"]
        cd = rep.get("change_detectors") or {}
        if cd.get("stream_elements") != running or cd.get("elements") != rep["labeled"]:
            bad.append((t["window_start"], cd.get("elements"), cd.get("stream_elements"),
                        running))
    return h.report(not bad and running > 0, "error stream fed once per window across kill -9",
                    f"{bad[:3]} ({running} elements)")


def main():
    env = h.Env(partitions=2, name="alertrestart")
    receiver = h.Receiver()  # not listening: deliveries fail and stay pending
    sinks = f"""    webhook:
      type: webhook
      url: "{receiver.url}"
      timeout: 1s
      backoff_initial: 200ms
      backoff_max: 1s
      max_attempts: 1000
"""
    env.config(sinks=sinks, ref_windows=2, horizon="60s")
    truth, _ = env.gen("--count", "18000", "--eps", "50", "--label-delay", "5",
                       "--drift-at", "180", "--drift-shift", "amount=2", "--drift-mix", "country")
    run = env.start_run("run1")
    ok = h.report(not h.wait_exact(env, truth, 60), "state exact before the kill")
    h.wait_for(lambda: env.metric("driftwatch_alert_notifications_total"), 30, "alerts fired")
    time.sleep(3)
    before = pending(env)
    state_before = {k: env.redis("GET", k) for k in ("{dw:dwtest}:alerts:fraud",)}
    run.send_signal(signal.SIGKILL)
    run.wait()
    ok &= h.report(len(before) > 0 and pending(env) == before,
                   "fired notifications pending in Redis across kill -9", f"({len(before)})")
    firing = json.loads(state_before["{dw:dwtest}:alerts:fraud"] or "{}")
    ok &= h.report(any(v.get("state") == "firing" for v in firing.values()),
                   "alert state (firing) persisted")

    receiver.up()
    env.start_run("run2")
    h.wait_for(lambda: not pending(env), 60, "pending deliveries drained after restart")
    time.sleep(3)  # a re-fire or a duplicate would arrive now
    ids = [r["headers"]["webhook-id"] for r in receiver.accepted()]
    ok &= h.report(set(ids) == before and len(ids) == len(before),
                   "each pending notification delivered once after restart, same ids",
                   f"({len(ids)} deliveries, {len(set(ids))} ids, {len(before)} pending)")
    ok &= h.report("pending alert deliveries resumed" in env.log("run2"),
                   "restart resumed deliveries")
    fired1, fired2 = alerts_logged(env, "run1"), alerts_logged(env, "run2")
    ok &= h.report(fired1 and not (fired1 & fired2),
                   "restart did not re-fire an alert of run 1",
                   f"({len(fired1)} before, {len(fired2)} new after)")
    ok &= check_error_stream(env, truth)
    receiver.down()
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
