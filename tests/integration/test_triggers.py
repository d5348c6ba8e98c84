"""Retraining triggers with guardrails: ten drifted windows in a row within the cooldown give
one trigger, also when driftwatch is killed (-9) and restarted in the middle of them; the
trigger read back with kcat matches the documented schema (docs/alerting.md)."""
import json
import re
import signal
import sys
import time

import harness as h

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def schema_errors(key, msg):
    errs = []
    want = {"trigger_id", "group", "model", "model_version", "window_start", "window_end",
            "reasons", "evidence", "created_at"}
    if set(msg) != want:
        errs.append(f"fields {sorted(msg)} != {sorted(want)}")
    if not re.fullmatch(r"[0-9a-f]{32}", msg.get("trigger_id", "")):
        errs.append("trigger_id is not 32 hex digits")
    if key != msg.get("model") or msg.get("model") != "fraud":
        errs.append(f"key {key!r} / model {msg.get('model')!r}")
    if msg.get("group") != "dwtest":
        errs.append("group")
    if msg.get("model_version") not in ("1.0.0",):
        errs.append(f"model_version {msg.get('model_version')!r}")
    for k in ("window_start", "window_end", "created_at"):
        if not RFC3339.match(str(msg.get(k))):
            errs.append(f"{k} {msg.get(k)!r} is not RFC 3339 UTC")
    reasons = msg.get("reasons") or []
    if not reasons:
        errs.append("no reasons")
    for r in reasons:
        if set(r) != {"rule", "feature", "severity", "value", "threshold", "starts_at"}:
            errs.append(f"reason fields {sorted(r)}")
        if r.get("severity") not in ("warning", "critical"):
            errs.append("reason severity")
    ev = msg.get("evidence") or {}
    if set(ev) != {"predictions", "labeled", "drift", "performance"} or \
            not isinstance(ev.get("predictions"), int) or ev["predictions"] < 100:
        errs.append(f"evidence {sorted(ev)}")
    return errs


def main():
    env = h.Env(partitions=2, name="triggers")
    # dataset drift from minute 2 to the end: windows 2..11 drift (ten in a row) and close;
    # window 12 stays open (no later event moves the watermark past it)
    env.config(ref_windows=2, triggers="  rules: [dataset_drift]\n  cooldown: 1h\n"
               "  min_samples: 100\n  max_per_day: 4\n", idle="5s")
    # throttled, so that windows close one after another while driftwatch runs
    gen = env.gen("--count", "39000", "--eps", "50", "--rate", "2500", "--label-delay",
                       "5", "--drift-at", "120", "--drift-shift", "amount=2,age=2,balance=2",
                       "--drift-mix", "country,merchant", background=True)
    run = env.start_run("run1")
    h.wait_for(lambda: env.kcat("driftwatch-triggers"), 120, "the first trigger")
    ok = h.report(gen.poll() is None, "killed while traffic still flows (windows left)")
    run.send_signal(signal.SIGKILL)  # in the middle of the drifted windows
    run.wait()
    killed_at = env.redis("GET", "{dw:dwtest}:cursor:fraud")
    env.start_run("run2")
    truth, _ = env.gen_wait(gen)
    ok &= h.report(not h.wait_exact(env, truth, 120), "state exact after the restart")
    h.wait_for(lambda: env.redis("GET", "{dw:dwtest}:cursor:fraud") ==
               str(truth[-1]["window_start_ms"]), 90, "every closed window evaluated")
    time.sleep(2)
    drifted = [json.loads(env.redis("GET", f"{{dw:dwtest}}:report:fraud:{t['window_start_ms']}")
                          or "{}").get("drift", {}).get("dataset") for t in truth[:-1]]
    ok &= h.report(drifted.count(True) >= 10, "ten or more windows in a row drifted",
                   f"({drifted.count(True)} of {len(drifted)}; killed at cursor {killed_at})")
    trig = env.kcat("driftwatch-triggers")
    ok &= h.report(len(trig) == 1, "one trigger for the drifted windows within the cooldown",
                   f"({len(trig)})")
    key, value = trig[0]
    msg = json.loads(value)
    errs = schema_errors(key, msg)
    ok &= h.report(not errs, "trigger message matches the documented schema", f"{errs}")
    suppressed = sum(1 for line in (env.log("run1") + env.log("run2")).splitlines()
                     if "retraining trigger suppressed" in line and "triggers.cooldown" in line)
    ok &= h.report(suppressed >= 8, "later drifted windows suppressed by the cooldown",
                   f"({suppressed})")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
