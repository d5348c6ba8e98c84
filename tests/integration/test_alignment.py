"""Event-time alignment: labels stamped ten minutes after their predictions are fetched as fast
as the predictions, so their clock runs ahead; driftwatch pauses a labels partition while it is
more than a window ahead of its predictions, releases it when they catch up or end, and the
state is exact all the same (the two clocks make the result independent of the interleaving)."""
import sys

import harness as h


def main():
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
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
