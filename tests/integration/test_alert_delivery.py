"""Alert delivery when the receiver misbehaves: it refuses connections for 20 s, then answers
500 once, then stalls past the sink's timeout once, then accepts. Consumption is not slowed
(exact state while the receiver is down), retries happen, every message is signed per
Standard Webhooks with the same webhook-id on every attempt, and the receiver finally accepts
exactly one delivery per notification id."""
import base64
import hashlib
import hmac
import sys
import time

import harness as h

DOWN_SECONDS = 20
SECRET = "whsec_" + base64.b64encode(b"driftwatch-delivery-test-key-32b").decode()


def verify(req):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body))."""
    hd = req["headers"]
    key = base64.b64decode(SECRET.split("_", 1)[1])
    signed = f"{hd['webhook-id']}.{hd['webhook-timestamp']}.".encode() + req["body"]
    want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return want in hd.get("webhook-signature", "").split()


def main():
    env = h.Env(partitions=2, name="delivery")
    receiver = h.Receiver()  # port reserved, not listening yet: connections are refused
    receiver.answers = [(500, 0), (200, 3)]  # once up: a 500, then an answer after 3 s
    sinks = f"""    webhook:
      type: webhook
      url: "{receiver.url}"
      secret: "{SECRET}"
      timeout: 1s
      backoff_initial: 200ms
      backoff_max: 2s
      max_attempts: 1000
"""
    env.config(sinks=sinks, ref_windows=2)
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
    h.wait_for(lambda: env.metric("driftwatch_alert_notifications_total"), 30,
               "notifications raised")
    time.sleep(3)  # let every closed window raise its notification
    notes = env.metric("driftwatch_alert_notifications_total")
    pending = int(env.redis("HLEN", "{dw:dwtest}:deliveries") or 0)
    ok &= h.report(not receiver.requests and time.time() - t_down < DOWN_SECONDS,
                   "notifications raised while the receiver was down", f"({notes:.0f})")
    ok &= h.report(pending == notes, "pending deliveries persisted in Redis",
                   f"({pending} of {notes:.0f})")
    time.sleep(max(0, DOWN_SECONDS - (time.time() - t_down)))
    receiver.up()
    t_up = time.time()
    h.wait_for(lambda: len(receiver.accepted()) >= notes, 90, "deliveries after recovery")
    time.sleep(3)  # anything extra would arrive now
    notes = env.metric("driftwatch_alert_notifications_total")
    accepted = [r["headers"]["webhook-id"] for r in receiver.accepted()]
    attempted = {r["headers"]["webhook-id"] for r in receiver.requests}
    ok &= h.report(len(accepted) == notes and set(accepted) == attempted and
                   len(set(accepted)) == len(accepted),
                   "exactly one accepted delivery per notification id",
                   f"({len(accepted)} accepted, {len(attempted)} ids, {notes:.0f} notifications)")
    statuses = [r["status"] for r in sorted(receiver.requests, key=lambda r: r["time"])]
    ok &= h.report(statuses[:2] == [500, 0], "the receiver answered 500, then timed out",
                   f"{statuses[:4]}")
    ok &= h.report(all(verify(r) for r in receiver.requests),
                   "every attempt signed (Standard Webhooks)")
    first = min(r["time"] for r in receiver.requests)
    ok &= h.report(first >= t_up, "delivered after recovery", f"{first - t_up:.1f}s after up")
    bodies = receiver.bodies(accepted_only=True)
    ok &= h.report(all(b["type"] == "driftwatch.alert" and b["model"] == "fraud" and b["alerts"]
                       and b["report"]["model"] == "fraud" for b in bodies),
                   "payloads carry the model, the alerts and the window report")
    retried = env.metric("driftwatch_alert_deliveries_retried_total", 'sink="webhook"') or 0
    sent = env.metric("driftwatch_alert_deliveries_sent_total", 'sink="webhook"') or 0
    ok &= h.report(retried > 0 and sent == notes, "retries counted, sent per sink",
                   f"(retried {retried:.0f}, sent {sent:.0f})")
    h.wait_for(lambda: env.redis("HLEN", "{dw:dwtest}:deliveries") == "0", 10,
               "delivered messages removed from Redis")
    receiver.down()
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
