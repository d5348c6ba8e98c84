"""Event-time alignment: labels stamped ten minutes after their predictions are fetched as fast
as the predictions, so their clock runs ahead; driftwatch pauses a labels partition while it is
more than a window ahead of its predictions, releases it when they catch up or end, and the
state is exact all the same (the two clocks make the result independent of the interleaving).

A second scenario restarts the fetch (an "offset out of range" answer) while a labels partition
is held: the hold is released and the partition consumed again, not left paused for good."""
import json
import os
import subprocess
import sys
import time

import harness as h


def scenario_backlog():
    env = h.Env(partitions=2, name="align")
    # labels come ~10 minutes (exponential) after their predictions: horizon and join TTL long
    # enough that none is late
    # Small fetches (64 KiB per partition) and a short prefetch queue (500 messages per
    # partition) for both topics: the consumer's queue then interleaves the two topics, and a
    # fetch carries about five times as many (smaller) label messages as predictions, so the
    # labels' clock runs ahead whatever the machine's load. With librdkafka's defaults (1 MiB
    # fetches, 100,000 messages prefetched) the queue could hold the whole predictions backlog
    # before the first label, and predictions reached their end before any label was consumed.
    env.config(horizon="8h", extra="join:\n  ttl: 8h\n"
               "kafka.max.partition.fetch.bytes: 65536\n"
               "kafka.queued.min.messages: 500\n")
    truth, _ = env.gen("--count", "30000", "--eps", "50", "--label-delay", "600",
                       "--early-labels", "0.05")
    env.start_run()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "exact per-window counts", f"{diffs[:5]}")
    holds = env.metric("driftwatch_label_holds_total") or 0
    ok &= h.report(holds > 0, "labels partitions were held while ahead", f"({holds:.0f} holds)")
    held = h.wait_for(lambda: env.metric("driftwatch_label_partitions_held") == 0, 30,
                      "holds released") is not None
    ok &= h.report(held, "every hold released once the predictions caught up or ended")
    labels = env.metric("driftwatch_messages_consumed_total", 'topic="labels"')
    ok &= h.report(labels == sum(t["labeled"] + t["duplicate_labels"] for t in truth),
                   "every label consumed", f"({labels:.0f})")
    env.close()
    return ok


def produce(env, topic, rows, batch):
    """(key, JSON) rows to `topic` with kcat, at most `batch` messages per message set: the
    mock cluster answers a fetch with one message set per partition, so this sets the step."""
    path = os.path.join(env.dir, f"{topic}.txt")
    with open(path, "w") as f:
        for key, doc in rows:
            f.write(f"{key}\t{json.dumps(doc, separators=(',', ':'))}\n")
    subprocess.run(["kcat", "-P", "-b", env.bootstrap, "-t", topic, "-K", "\t", "-l",
                    "-X", f"batch.num.messages={batch}", path], check=True, timeout=120)


def scenario_restart_while_held():
    """restart_fetch() (offset out of range) while a labels partition is held by alignment:
    librdkafka keeps a partition paused across a new assignment, so the hold it releases must
    resume the partition. Labels stamped 90 s after their predictions: the labels partition is
    held from its first batch until the predictions come within 30 s of it; the fetch fails
    once the predictions are within a window (align_labels() does not hold it again), and every
    label must still be consumed, not stay paused for good."""
    n, step_ms, delay_ms = 9_000, 10, 90_000
    env = h.Env(partitions=1, name="align-restart")
    env.config(models="""models:
  price:
    task: regression
    features: {x: numeric}
""")
    t0 = (int(time.time()) - 3600) // 60 * 60 * 1000  # an hour ago, on a minute
    preds, labels = [], []
    for i in range(n):
        pid, ts = f"p{i}", t0 + i * step_ms
        preds.append((pid, {"prediction_id": pid, "model": "price", "timestamp": ts,
                            "features": {"x": i}, "prediction": i + 0.5}))
        labels.append((pid, {"prediction_id": pid, "label": i, "timestamp": ts + delay_ms}))
    produce(env, "predictions", preds, 50)  # 0.5 s of event time per fetch
    produce(env, "labels", labels, 50)
    env.broker_rtt(1, 50)  # ~10 fetches a second: the hold lasts ~120 fetches

    def lead_ms():
        """How far the labels' clock runs ahead of the predictions' (/status offsets: message
        i is at offset i), while the labels partition is held; else None."""
        if env.metric("driftwatch_label_partitions_held") != 1:
            return None
        _, text = env.http_get("/status")
        parts = json.loads(text).get("partitions") if text else None
        if not parts or parts[0]["offset_predictions"] < 1 or parts[0]["offset_labels"] < 1:
            return None
        return (parts[0]["offset_labels"] - parts[0]["offset_predictions"]) * step_ms + delay_ms

    env.start_run()
    lead = h.eventually(lambda: 30_000 < (lead_ms() or 0) <= 50_000, 60, 0.05)
    ok = h.report(lead, "the labels partition is held, its predictions within a window")
    env.broker_request_errors(1, "Fetch", 1, "OFFSET_OUT_OF_RANGE", 50)
    served = h.eventually(lambda: env.broker_pending(1, "Fetch") == 0, 10, 0.05)
    resets = h.eventually(lambda: (env.metric("driftwatch_kafka_offset_resets_total") or 0) >= 1,
                          10, 0.05)
    ok &= h.report(served and resets, "a fetch answered offset out of range, fetch restarted")
    consumed = lambda: env.metric("driftwatch_messages_consumed_total", 'topic="labels"') or 0
    ok &= h.report(h.eventually(lambda: consumed() >= n, 90), "every label consumed",
                   f"({consumed():.0f} of {n})")
    ok &= h.report(env.metric("driftwatch_messages_consumed_total", 'topic="predictions"') == n,
                   "every prediction consumed once")
    if not ok:
        print(env.http_get("/status")[1][:2000])
        print(env.log()[-4000:])
    env.close()
    return ok


SCENARIOS = {"backlog": scenario_backlog, "restart_while_held": scenario_restart_while_held}


def main():
    return h.run_scenarios(SCENARIOS)


if __name__ == "__main__":
    sys.exit(main())
