"""`driftwatch alerts test`: a clearly marked test notification goes through each configured
sink (webhook signed, Slack, PagerDuty trigger then resolve, Alertmanager firing then
resolved) to real HTTP receivers; the command prints one result per sink and its exit status
says whether every sink accepted. A sink that refuses connections is reported as failed."""
import base64
import hashlib
import hmac
import json
import subprocess
import sys

import harness as h

SECRET = "whsec_" + base64.b64encode(b"alerts-test-command-secret-key!!").decode()


def main():
    env = h.Env(partitions=1, name="alertscmd")
    rx = h.Receiver()
    rx.up()
    dead = h.Receiver()  # never up: connection refused
    sinks = f"""    hook:
      type: webhook
      url: "{rx.url}/hook"
      secret: "{SECRET}"
      severities: [warning]
    chat:
      type: slack
      url: "{rx.url}/slack"
    pager:
      type: pagerduty
      url: "{rx.url}/pd"
      routing_key: R0UTINGKEY
    am:
      type: alertmanager
      url: "{rx.url}/am"
    down:
      type: webhook
      url: "{dead.url}"
      timeout: 1s
"""
    env.config(sinks=sinks.replace(rx.url, f"http://127.0.0.1:{rx.port}"))
    cmd = [h.BIN, "alerts", "test", "-c", env.config_path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = dict(l.split(": ", 1) for l in r.stdout.splitlines() if ": " in l)
    ok = h.report(r.returncode == 1, "exit status 1 when a sink fails", f"({r.returncode})")
    for name, kind in (("hook", "webhook"), ("chat", "slack"), ("pager", "pagerduty"),
                       ("am", "alertmanager")):
        ok &= h.report(lines.get(f"{name} ({kind})", "").startswith("delivered (HTTP 200)"),
                       f"{name} reported delivered", repr(lines.get(f"{name} ({kind})")))
    ok &= h.report(lines.get("down (webhook)", "").startswith("failed"),
                   "refused sink reported failed", repr(lines.get("down (webhook)")))
    ok &= h.report("R0UTINGKEY" not in r.stdout + r.stderr and
                   "/pd" not in r.stdout + r.stderr, "no secret or URL path in the output")

    by_path = {}
    for req in rx.requests:
        by_path.setdefault(req["path"].split("/")[1], []).append(req)
    hook = by_path.get("hook", [])
    ok &= h.report(len(hook) == 1, "webhook got one test message (routing bypassed)")
    if hook:
        body = json.loads(hook[0]["body"])
        hd = hook[0]["headers"]
        key = base64.b64decode(SECRET.split("_", 1)[1])
        signed = f"{hd['webhook-id']}.{hd['webhook-timestamp']}.".encode() + hook[0]["body"]
        want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        ok &= h.report(body["type"] == "driftwatch.test" and want in hd["webhook-signature"],
                       "webhook test message marked and signed", body["type"])
    slack = [json.loads(q["body"]) for q in by_path.get("slack", [])]
    ok &= h.report(len(slack) == 1 and "TEST" in slack[0]["text"] and slack[0]["blocks"],
                   "Slack got text and blocks marked as a test",
                   slack[0]["text"] if slack else "")
    pd = [json.loads(q["body"]) for q in by_path.get("pd", [])]
    ok &= h.report([p.get("event_action") for p in pd] == ["trigger", "resolve"] and
                   all(p.get("routing_key") == "R0UTINGKEY" for p in pd) and
                   len({p.get("dedup_key") for p in pd}) == 1,
                   "PagerDuty got trigger then resolve with one dedup_key",
                   f"{[p.get('event_action') for p in pd]}")
    am = [json.loads(q["body"]) for q in by_path.get("am", [])]
    ok &= h.report(len(am) == 2 and "endsAt" not in am[0][0] and "endsAt" in am[1][0] and
                   am[0][0]["labels"]["test"] == "true",
                   "Alertmanager got the alert firing, then resolved")

    r = subprocess.run(cmd + ["--sink", "chat"], capture_output=True, text=True, timeout=60)
    ok &= h.report(r.returncode == 0 and r.stdout.startswith("chat (slack): delivered"),
                   "--sink tests one sink, exit 0", r.stdout.strip())
    r = subprocess.run(cmd + ["--sink", "nope"], capture_output=True, text=True, timeout=60)
    ok &= h.report(r.returncode == 2 and "no sink of that name" in r.stderr,
                   "unknown sink: exit 2 with a message", r.stderr.strip())
    rx.down()
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
