"""The webhook receiver is down for 20 s, then up: every alert is delivered after recovery,
exactly once per alert id, and consumption went on while the receiver was down."""
import sys
import time

import harness as h

DOWN_SECONDS = 20


def main():
    env = h.Env(partitions=2, name="webhookdown")
    receiver = h.Receiver()  # port reserved, not listening yet: connections are refused
    env.config(webhook_url=receiver.url, ref_windows=2)
    truth, summary = env.gen("--count", "18000", "--eps", "50", "--label-delay", "5",
                             "--drift-at", "180", "--drift-shift", "amount=2",
                             "--drift-mix", "country")
    t_down = time.time()
    env.start_run()
    diffs = h.wait_exact(env, truth, 60)
    ok = h.report(not diffs, "consumption went on while the receiver was down", f"{diffs[:3]}")
    consumed = env.metric("driftwatch_messages_consumed_total", 'topic="predictions"')
    ok &= h.report(consumed == summary["predictions"], "all predictions consumed while down",
                   f"{consumed}")
    h.wait_for(lambda: env.metric("driftwatch_alerts_enqueued_total"), 30, "alerts raised")
    time.sleep(3)  # let every closed window raise its alert
    enqueued = env.metric("driftwatch_alerts_enqueued_total")
    ok &= h.report(len(receiver.requests) == 0 and time.time() - t_down < DOWN_SECONDS,
                   "alerts raised while the receiver was down", f"({enqueued:.0f} alerts)")
    time.sleep(max(0, DOWN_SECONDS - (time.time() - t_down)))
    receiver.up()
    t_up = time.time()
    h.wait_for(lambda: len(receiver.requests) >= enqueued, 60, "deliveries after recovery")
    time.sleep(3)  # anything extra would arrive now
    enqueued = env.metric("driftwatch_alerts_enqueued_total")
    ids = [r["headers"].get("webhook-id") for r in receiver.requests]
    ok &= h.report(len(ids) == enqueued and len(set(ids)) == len(ids),
                   "each alert delivered once", f"({len(ids)} deliveries, {len(set(ids))} ids)")
    first = min(r["time"] for r in receiver.requests)
    ok &= h.report(first >= t_up, "delivered after recovery", f"{first - t_up:.1f}s after up")
    bodies = receiver.bodies()
    ok &= h.report(all(b["model"] == "fraud" and b["findings"] for b in bodies),
                   "alert payloads carry model and findings")
    retried = env.metric("driftwatch_alerts_retried_total", 'sink="webhook"') or 0
    ok &= h.report(retried > 0, "deliveries were retried", f"({retried:.0f})")
    receiver.down()
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
