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


SCENARIOS = {
    "dead_letters": scenario_dead_letters,
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
