"""A real Prometheus Alertmanager (Debian prometheus-alertmanager) on loopback: a drift alert
fired by driftwatch is listed by Alertmanager's /api/v2/alerts, Alertmanager routes it to the
test's webhook receiver, and when the drift ends the alert resolves there too."""
import json
import sys
import time

import harness as h

T0 = "2026-01-01T00:00:00Z"
T_CLEAN = "2026-01-01T00:06:00Z"


def am_notifications(receiver, status):
    """Alerts of Alertmanager's webhook notifications with that status, as (alertname, model,
    feature) tuples."""
    out = set()
    for body in receiver.bodies():
        for a in body.get("alerts", []):
            if a.get("status") == status:
                lb = a.get("labels", {})
                out.add((lb.get("alertname"), lb.get("model"), lb.get("feature")))
    return out


def main():
    env = h.Env(partitions=2, name="alertmanager")
    receiver = h.Receiver()
    receiver.up()
    am = h.Alertmanager(env.dir, receiver.url)
    sinks = f"""    am:
      type: alertmanager
      url: "{am.url}"
      resend_interval: 2s
      generator_url: "http://driftwatch.test/status"
      backoff_initial: 200ms
      backoff_max: 1s
"""
    rules = """    - name: feature_drift
      condition: features.*.drift
      severity: warning
      labels: {team: ml}
      summary: "{{model}}: {{feature}} drifted"
      runbook_url: "https://runbooks.example/drift"
"""
    env.config(sinks=sinks, rules=rules, ref_windows=2, idle="5s")
    # windows 0-1 are the reference, 2-5 drift on amount; from minute 6 the drift is gone
    env.gen("--seed", "1", "--start", T0, "--count", "18000", "--eps", "50", "--label-delay",
            "5", "--drift-at", "120", "--drift-shift", "amount=3")
    run = env.start_run()
    h.wait_for(lambda: am_notifications(receiver, "firing"), 60,
               "Alertmanager's webhook notification of the firing alert")
    firing = am_notifications(receiver, "firing")
    ok = h.report(("feature_drift", "fraud", "amount") in firing,
                  "Alertmanager routed the drift alert to the receiver", f"{sorted(firing)}")
    listed = [a for a in am.alerts() if a["labels"].get("alertname") == "feature_drift"]
    amount = [a for a in listed if a["labels"].get("feature") == "amount"]
    ok &= h.report(amount and amount[0]["status"]["state"] == "active",
                   "Alertmanager lists the alert as active (/api/v2/alerts)",
                   f"{[(a['labels'].get('feature'), a['status']['state']) for a in listed]}")
    if amount:
        a = amount[0]
        ok &= h.report(a["labels"].get("severity") == "warning" and a["labels"].get("team") ==
                       "ml" and a["annotations"].get("summary") == "fraud: amount drifted" and
                       a["annotations"].get("runbook_url") == "https://runbooks.example/drift" and
                       a.get("generatorURL") == "http://driftwatch.test/status",
                       "labels, annotations and generatorURL as configured",
                       f"{a['labels']} {a['annotations']}")
    def firing_in_status():
        status = json.loads(env.http_get("/status")[1] or "{}")
        return [(a["rule"], a["feature"]) for a in status.get("alerts_firing", {}).get("fraud", [])]

    # /status is published once per evaluation tick: it may trail the notification a little
    h.wait_for(lambda: ("feature_drift", "amount") in firing_in_status(), 10, "/status firing")
    firing_now = firing_in_status()
    ok &= h.report(("feature_drift", "amount") in firing_now and
                   env.metric("driftwatch_alerts_firing", 'model="fraud"') == len(firing_now),
                   "/status and driftwatch_alerts_firing show the firing alert", f"{firing_now}")
    # the drift ends: clean traffic continues the stream
    env.gen("--seed", "2", "--start", T_CLEAN, "--count", "15000", "--eps", "50",
            "--label-delay", "5", truth=False)
    h.wait_for(lambda: ("feature_drift", "fraud", "amount") in am_notifications(receiver,
                                                                               "resolved"),
               90, "Alertmanager's resolved notification")
    resolved = am_notifications(receiver, "resolved")
    ok &= h.report(("feature_drift", "fraud", "amount") in resolved,
                   "the alert resolved at the receiver when the drift ended", f"{sorted(resolved)}")
    state = [a["status"]["state"] for a in am.alerts()
             if a["labels"].get("feature") == "amount"]
    ok &= h.report(all(s != "active" for s in state), "Alertmanager no longer lists it active",
                   f"{state}")
    h.wait_for(lambda: env.metric("driftwatch_alerts_firing", 'model="fraud"') == 0, 30,
               "no alert firing")
    status = json.loads(env.http_get("/status")[1])
    ok &= h.report(status["alerts_firing"] == {"fraud": []}, "/status: nothing firing after",
                   f"{status['alerts_firing']}")
    sent = env.metric("driftwatch_alert_deliveries_sent_total", 'sink="am"') or 0
    ok &= h.report(sent >= 2, "deliveries to Alertmanager counted", f"({sent:.0f})")
    run.terminate()
    am.close()
    receiver.down()
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
