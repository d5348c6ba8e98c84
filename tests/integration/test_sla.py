"""SLA rules end to end: two models in one run, both with models.<m>.sla.latency_p95_ms: 250
(for: 2). gen stages a 50/50 rollout of 1.0.0 and 1.1.0 for both; for "fraud" 1.1.0 serves
400 ms slower (--version-latency 1.1.0=+400), so the windows' latency_ms.p95 is far above 250
and the webhook receiver gets the sla_latency_p95 firing alert of fraud. "steady" keeps its
latency (p95 about 35 ms) and gets no alert. alerting.rules is [], so every alert is an SLA
rule's: the SLA rules are the model's own and are added to the list given.

The two models' traffic is produced one after the other, steady from 00:00 and fraud from
00:05: the watermark is per partition, so fraud's events must not be older than steady's.
fraud's events then close steady's last window."""
import json
import sys
import time

import harness as h

THRESHOLD_MS = 250
COUNT = 12000  # per model: 240 s of event time at 50 per second
T0_MS = 1767225600000  # 2026-01-01T00:00:00Z, gen's default --start: steady's first window
FRAUD_START = "2026-01-01T00:05:00Z"  # fraud's first window, after steady's four


def models_text():
    """gen's models block for fraud, and the same model as steady, each with an SLA."""
    base = h.run_gen_models(numeric=2, categorical=1)
    lines = base.splitlines()
    assert lines[0] == "models:" and lines[1] == "  fraud:", base
    body = lines[2:]
    sla = f"    sla: {{latency_p95_ms: {THRESHOLD_MS}, for: 2, severity: critical}}"
    out = ["models:"]
    for name in ("fraud", "steady"):
        out += [f"  {name}:", sla] + body
    return "\n".join(out) + "\n"


def gen_args(model, seed, slow):
    args = ["--model", model, "--seed", str(seed), "--count", str(COUNT), "--eps", "50",
            "--start", FRAUD_START if slow else "2026-01-01T00:00:00Z",
            "--numeric", "2", "--categorical", "1", "--label-delay", "5",
            "--versions", "1.0.0,1.1.0", "--traffic", "50,50"]
    return args + (["--version-latency", "1.1.0=+400"] if slow else [])


def sla_alerts(receiver, model):
    """(status, alert) of every sla_latency_p95 alert of `model` the receiver accepted."""
    out = []
    for body in receiver.bodies(accepted_only=True):
        for a in body.get("alerts", []):
            if a["labels"].get("model") == model:
                out.append((a["status"], a))
    return out


def report_of(env, model, k):
    text = env.redis("GET", f"{{dw:dwtest}}:report:{model}:{T0_MS + k * 60000}")
    return json.loads(text) if text else {}


def main():
    env = h.Env(partitions=2, name="sla")
    receiver = h.Receiver()
    receiver.up()
    env.config(webhook_url=receiver.url, rules="    []\n", models=models_text(), idle="5s")
    env.gen(*gen_args("steady", 7, slow=False), truth=False)
    env.gen(*gen_args("fraud", 1, slow=True), truth=False)
    proc = env.start_run()
    t0 = time.time()

    firing = h.wait_for(lambda: [a for s, a in sla_alerts(receiver, "fraud") if s == "firing"],
                        30, "the sla_latency_p95 firing alert of fraud")
    a = firing[0]
    ok = h.report(a["rule"] == "sla_latency_p95" and a["labels"]["alertname"] == "sla_latency_p95"
                  and a["severity"] == "critical", "fraud: sla_latency_p95 fired (critical)",
                  f"after {time.time() - t0:.1f}s")
    ok &= h.report(a["value"] > THRESHOLD_MS and a["threshold"] == THRESHOLD_MS,
                   "value above the threshold", f"({a['value']} > {a['threshold']})")
    # for: 2 -> it fires with the second window over the threshold, 00:06
    ok &= h.report(a["starts_at"] == "2026-01-01T00:06:00Z", "fired with the second slow window",
                   a["starts_at"])
    ok &= h.report("sla.latency_p95_ms" in a["annotations"].get("description", ""),
                   "the description names the SLA", a["annotations"].get("description", ""))

    # steady: wait until its closed windows were all evaluated, then no alert at all
    h.wait_for(lambda: int(env.redis("GET", "{dw:dwtest}:cursor:steady") or 0) >=
               T0_MS + 3 * 60000, 30, "steady's four windows evaluated")
    time.sleep(1)  # a notification raised now would reach the receiver within this
    steady = [r for r in (report_of(env, "steady", k) for k in range(4)) if r]
    p95 = [(r.get("latency_ms") or {}).get("p95") for r in steady]
    ok &= h.report(len(p95) == 4 and all(v is not None and v < THRESHOLD_MS for v in p95),
                   "steady's windows stay under the SLA", f"(p95 {p95})")
    ok &= h.report(not sla_alerts(receiver, "steady"), "steady: no alert",
                   f"({len(sla_alerts(receiver, 'steady'))})")
    slow = [(report_of(env, "fraud", k).get("latency_ms") or {}).get("p95") for k in (5, 6)]
    ok &= h.report(all(v is not None and v > THRESHOLD_MS for v in slow),
                   "fraud's windows are over it", f"(p95 {slow})")
    others = [a["rule"] for b in receiver.bodies(accepted_only=True) for a in b.get("alerts", [])
              if a["rule"] != "sla_latency_p95"]
    ok &= h.report(not others, "only SLA alerts (alerting.rules is [])", f"{others}")
    receiver.down()
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
