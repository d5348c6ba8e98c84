"""Canary analysis end to end through `driftwatch run` (dev-broker + redis-server): gen stages a
rollout (two versions, a traffic split, a per-version accuracy) and every window report carries
a `canary` object whose verdict is checked against what gen was told.

- equal: the candidate gets 5 % of the traffic at the baseline's accuracy. Its first window
  has too few labelled outcomes for the planned sample size (hold, saying how many more); as
  windows merge, the evidence grows to the plan and the verdict becomes promote.
- worse: the candidate gets 20 % at accuracy 0.6 against 0.9: rollback, with the accuracy check
  named, its value and its threshold.

Each scenario reads the stored reports (`report:<model>:<start>`), close and final.
"""
import json
import os
import subprocess
import sys
import urllib.request

import yaml

import harness as h

WINDOW_MS = 60000
T0 = 1767225600000  # 2026-01-01T00:00:00Z, gen's default --start
MODEL = """models:
  fraud:
    task: classification
    features:
      amount: {type: numeric, method: ks, threshold: 0.001}  # a false alarm once in 1000
    canary: {windows: 5, min_samples: 100, max_accuracy_drop: 0.1}
"""


def reports(env, windows):
    out = {}
    for k in range(windows):
        text = env.redis("GET", f"{{dw:dwtest}}:report:fraud:{T0 + k * WINDOW_MS}")
        if text.startswith("{"):
            out[k] = json.loads(text)
    return out


def traffic(windows, gen_args):
    return ["--count", str(windows * 60 * 50), "--eps", "50", "--label-delay", "20",
            "--label-share", "0.9", "--versions", "1.0.0,1.1.0", *gen_args]


def replay_finals(env, windows, gen_args):
    """replay -c over the same traffic (gen writes it to files): {window: final report}."""
    preds, labels = os.path.join(env.dir, "p.jsonl"), os.path.join(env.dir, "l.jsonl")
    subprocess.run([h.BIN, "gen", "-q", *traffic(windows, gen_args), "--predictions-out", preds,
                    "--labels-out", labels], check=True, timeout=120)
    r = subprocess.run([h.BIN, "replay", "-c", env.config_path, "--predictions", preds,
                        "--labels", labels], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    return {(x["window_start_ms"] - T0) // WINDOW_MS: x
            for x in map(json.loads, r.stdout.splitlines()) if x["stage"] == "final"}


def check_replay(env, final, windows, gen_args):
    mine = replay_finals(env, windows, gen_args)
    diffs = [(k, final[k]["canary"], mine.get(k, {}).get("canary")) for k in final
             if final[k]["canary"] != mine.get(k, {}).get("canary")]
    return h.report(final and not diffs, "replay -c gives run's final canary analyses",
                    f"({len(final)} windows) {diffs[:1]}")


def run_rollout(name, windows, *gen_args, webhook_url="", extra="", model=MODEL):
    """Runs gen's rollout through run; returns (env, {window: close report}, {window: final})."""
    env = h.Env(partitions=2, name=f"canary-{name}")
    env.config(models=model, horizon="60s", webhook_url=webhook_url, extra=extra)
    env.start_run()
    starts = [T0 + k * WINDOW_MS for k in range(windows)]
    watch = h.ReportWatch(env, starts)
    env.gen(*traffic(windows, gen_args), "--rate", "4000", truth=False)
    # the windows but the last two reach their label horizon within the traffic
    h.wait_for(lambda: all(s in watch.final for s in starts[:windows - 2]), 90, "final reports")
    watch.done()
    close = {k: watch.close[s] for k, s in enumerate(starts) if s in watch.close}
    final = {k: watch.final[s] for k, s in enumerate(starts) if s in watch.final}
    return env, close, final


def check_endpoint(env, want):
    """GET /api/v1/canary/fraud and /metrics say the same verdict, `want`; another model is a
    404 that names fraud."""
    def doc():
        status, text = env.http_get("/api/v1/canary/fraud")
        d = json.loads(text) if status == 200 else {}
        return d if d.get("verdict") == want else None
    d = h.wait_for(doc, 20, f"the endpoint's verdict {want}")
    labels = (f'model="fraud",baseline="{d["baseline"]}",candidate="{d["candidate"]}",'
              f'verdict="{want}"')
    ok = h.report(env.metric("driftwatch_canary_verdict", labels) == 1,
                  "the endpoint and /metrics show the same verdict",
                  f"({want}, from the {d['stage']} analysis of {d['window_start']})")
    status, text = env.http_get("/api/v1/canary/churn")
    ok &= h.report(status == 404 and json.loads(text)["models"] == ["fraud"],
                   "a model without a canary: 404 naming the ones with one", text)
    return ok


DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                      "rollouts")


def condition(expr, result):
    """Argo's `result == "x"` conditions (the only form the example uses)."""
    lhs, rhs = (s.strip() for s in expr.split("=="))
    assert lhs == "result" and rhs.startswith('"'), expr
    return result == rhs.strip('"')


def check_rollout_examples(env, want):
    """deploy/rollouts against this run: the Argo AnalysisTemplate's URL, jsonPath and
    conditions read the endpoint's verdict as `want` (rollback: Failed, promote: Successful);
    the Flagger MetricTemplate's query is valid PromQL (promtool) over a series /metrics has."""
    tpl = next(yaml.safe_load_all(open(os.path.join(DEPLOY, "argo-analysis-template.yaml"))))
    metric = tpl["spec"]["metrics"][0]
    web = metric["provider"]["web"]
    url = (web["url"].replace("{{ args.driftwatch-url }}", f"http://127.0.0.1:{env.http_port}")
           .replace("{{ args.model }}", "fraud"))
    assert web["jsonPath"] == "{$.verdict}", web["jsonPath"]
    with urllib.request.urlopen(url, timeout=5) as resp:
        result = json.loads(resp.read())["verdict"]
    phase = ("Failed" if condition(metric["failureCondition"], result) else
             "Successful" if condition(metric["successCondition"], result) else "Inconclusive")
    ok = h.report(phase == {"rollback": "Failed", "promote": "Successful"}[want],
                  "the Argo Rollouts template reads the endpoint", f"({result}: {phase})")
    mt = next(yaml.safe_load_all(open(os.path.join(DEPLOY, "flagger-metric-template.yaml"))))
    query = mt["spec"]["query"].replace("{{ variables.model }}", "fraud").strip()
    rules = os.path.join(env.dir, "flagger_rules.yaml")
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": [{"name": "flagger", "rules": [
            {"record": "driftwatch:canary_rollback", "expr": query}]}]}, f)
    r = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
    series = env.metric("driftwatch_canary_verdict",
                        'model="fraud",baseline="1.0.0",candidate="1.1.0",verdict="rollback"')
    ok &= h.report(r.returncode == 0 and series == (1 if want == "rollback" else 0),
                   "the Flagger template's query parses and reads a series /metrics has",
                   f"(promtool: {r.returncode}; series {series})")
    return ok


def check_second_pod(env):
    """A second pod, not the evaluator, serves the same analysis (it reads it from Redis)."""
    port = env.start_pod("pod2")

    def get(p):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/api/v1/canary/fraud",
                                        timeout=5) as resp:
                return json.loads(resp.read())
        except OSError:
            return None
    theirs = h.wait_for(lambda: get(port), 30, "the second pod's canary endpoint")
    mine = get(env.http_port)
    return h.report(theirs == mine and theirs["verdict"] == "rollback",
                    "a second pod serves the same analysis", f"({theirs['verdict']})")


def scenario_equal():
    env, close, final = run_rollout("equal", 6, "--traffic", "95,5")
    first, later = final[0]["canary"], final[3]["canary"]
    ok = h.report(first["baseline"] == "1.0.0" and first["candidate"] == "1.1.0",
                  "versions picked by themselves", f"{first['baseline']} / {first['candidate']}")
    ok &= h.report(first["verdict"] == "hold" and first["more_samples"] > 0,
                   "hold while the candidate has fewer outcomes than the plan",
                   f"({first['verdict']}, {first['more_samples']} more, needs "
                   f"{first['samples_needed']}, has {first['accuracy']['candidate_n']})")
    ok &= h.report(later["verdict"] == "promote" and later["reasons"] == [],
                   "promote once the merged windows reach the plan",
                   f"({later['verdict']}, {later['accuracy']['candidate_n']} of "
                   f"{later['samples_needed']}, p {later['accuracy']['p_value']:.3f})")
    # the analysis merges the windows: its counts are the sum of the windows' own
    merged = sum(final[k]["versions"]["1.1.0"]["labeled"] for k in range(4))
    ok &= h.report(later["accuracy"]["candidate_n"] == merged,
                   "the final analysis merges the last windows' final counts",
                   f"({later['accuracy']['candidate_n']} == {merged})")
    ok &= h.report(close and all(r["canary"]["stage"] == "close" for r in close.values()) and
                   all(r["canary"]["stage"] == "final" for r in final.values()),
                   "each stage analyses its own records", f"({len(close)} close reports seen)")
    ok &= check_replay(env, final, 6, ("--traffic", "95,5"))
    ok &= check_endpoint(env, "promote")
    ok &= check_rollout_examples(env, "promote")
    env.close()
    return ok


def rollback_alerts(receiver):
    """The canary_rollback alerts the receiver accepted."""
    return [a for b in receiver.bodies(accepted_only=True) for a in b.get("alerts", [])
            if a["labels"].get("alertname") == "canary_rollback"]


def check_close_rollback(close):
    """At the windows' close already: rollback, or hold for want of labels. A close evaluation
    sees the labels consumed by then, which on a loaded machine can be fewer than the plan's
    (hold, saying how many more); it never promotes, and at least one close said rollback."""
    def fair(c):
        return c["verdict"] == "rollback" or (
            c["verdict"] == "hold" and c["more_samples"] > 0 and
            c["reasons"] and all(r["check"].endswith("_samples") for r in c["reasons"]))
    seen = [(r["canary"]["verdict"], r["canary"]["accuracy"]["candidate_n"],
             r["canary"]["samples_needed"]) for r in close.values()]
    return h.report(close and all(fair(r["canary"]) for r in close.values()) and
                    any(v == "rollback" for v, _, _ in seen),
                    "already at the windows' close (or holding for labels not yet consumed)",
                    f"(verdict, candidate labels, plan: {seen})")


def scenario_worse():
    receiver = h.Receiver()
    receiver.up()
    env, close, final = run_rollout("worse", 4, "--traffic", "80,20",
                                    "--version-accuracy", "1.0.0=0.9,1.1.0=0.6",
                                    webhook_url=receiver.url)
    c = final[1]["canary"]
    checks = {r["check"]: r for r in c["reasons"]}
    ok = h.report(c["verdict"] == "rollback" and "accuracy_drop" in checks,
                  "rollback with the accuracy check named", f"({c['verdict']}, {c['reasons']})")
    drop = checks.get("accuracy_drop", {})
    ok &= h.report(abs(drop.get("value", 0) - 0.3) < 0.05 and drop.get("threshold") == 0.1,
                   "the reason carries the drop and its threshold", f"{drop}")
    ok &= h.report(c["accuracy"]["ci_high"] < -0.1,
                   "the whole interval of the difference lies beyond the tolerated drop",
                   f"[{c['accuracy']['ci_low']:.3f}, {c['accuracy']['ci_high']:.3f}]")
    ok &= check_close_rollback(close)
    ok &= check_replay(env, final, 4, ("--traffic", "80,20",
                                        "--version-accuracy", "1.0.0=0.9,1.1.0=0.6"))
    ok &= check_endpoint(env, "rollback")
    ok &= check_rollout_examples(env, "rollback")
    ok &= check_second_pod(env)
    alerts = h.wait_for(lambda: rollback_alerts(receiver), 30, "the rollback alert")
    a = alerts[0]
    ok &= h.report(a["status"] == "firing" and a["labels"]["model"] == "fraud" and
                   a["labels"]["severity"] == "critical" and
                   "1.1.0 against 1.0.0: rollback: accuracy_drop" in
                   a["annotations"]["summary"],
                   "the rollback alert reached the webhook with its reasons",
                   f"({a['annotations']['summary']})")
    env.close()
    receiver.down()
    return ok


def scenario_slower():
    """The candidate is as accurate but 40 ms slower: rollback on latency, not accuracy."""
    env, close, final = run_rollout("slower", 4, "--traffic", "80,20",
                                    "--version-latency", "1.1.0=+40")
    c = final[1]["canary"]
    checks = {r["check"]: r for r in c["reasons"]}
    ok = h.report(c["verdict"] == "rollback" and list(checks) == ["latency_p95_increase_ms"],
                  "rollback on latency alone", f"({c['verdict']}, {c['reasons']})")
    delta = c["latency_p95_ms"]["delta"]
    ok &= h.report(28 < delta < 52 and checks["latency_p95_increase_ms"]["threshold"] == 20,
                   "the p95 difference is gen's 40 ms, against the default 20",
                   f"({delta:.1f} ms)")
    ok &= h.report(close and all(r["canary"]["verdict"] == "rollback" for r in close.values()),
                   "at the close already", f"({len(close)} close reports seen)")
    ok &= check_replay(env, final, 4, ("--traffic", "80,20", "--version-latency", "1.1.0=+40"))
    env.close()
    return ok


def scenario_erroring():
    """As accurate and as fast, but 1.1.0 fails 10 % of its requests against 1 %: rollback on
    the error-rate ratio (the serving status, input.fields.status)."""
    args = ("--traffic", "80,20", "--status-field", "--version-errors", "1.0.0=0.01,1.1.0=0.1")
    env, close, final = run_rollout("erroring", 4, *args,
                                    extra="input:\n  fields: {status: /status}\n")
    c = final[1]["canary"]
    checks = {r["check"]: r for r in c["reasons"]}
    ok = h.report(c["verdict"] == "rollback" and list(checks) == ["error_rate_ratio"],
                  "rollback on the error rate alone", f"({c['verdict']}, {c['reasons']})")
    er = c["error_rate"]
    served = {v: final[k]["versions"][v]["serving"]["served"] for k in (0, 1)
              for v in ("1.0.0", "1.1.0")}
    ok &= h.report(5 < er["ratio"] < 20 and er["candidate_n"] == sum(
        final[k]["versions"]["1.1.0"]["serving"]["served"] for k in (0, 1)),
                   "the ratio is about gen's 10, over the merged windows' served counts",
                   f"({er['baseline']:.4f} vs {er['candidate']:.4f}: {er['ratio']:.2f}; {served})")
    ok &= check_replay(env, final, 4, args)
    env.close()
    return ok


def scenario_shifted():
    """1.1.0's amount shifts by 2 standard deviations after the reference windows (2), 1.0.0's
    does not: each version's features are judged against the model's reference, and only the
    candidate's amount drifts; the final reports carry the close's."""
    args = ("--traffic", "80,20", "--drift-at", "120", "--drift-shift", "amount=2",
            "--drift-versions", "1.1.0")
    env, close, final = run_rollout("shifted", 6, *args)
    ok = True
    for k in (2, 3):
        vs = final[k]["versions"]
        base, cand = vs["1.0.0"], vs["1.1.0"]
        ok &= h.report(cand["features"]["amount"]["drift"] is True and
                       base["features"]["amount"]["drift"] is False and
                       cand["drift"]["features"] == ["amount"],
                       f"window {k}: the candidate's amount drifts, the baseline's does not",
                       f"({cand['features']['amount'].get('score')} vs "
                       f"{base['features']['amount'].get('score')})")
    ok &= h.report(final[0]["versions"]["1.1.0"]["drift"]["share"] is None,
                   "a reference window is collected, not judged, per version too",
                   f"{final[0]['versions']['1.1.0']['drift']}")
    env.close()
    return ok


def reference_show(env):
    r = subprocess.run([h.BIN, "reference", "show", "-c", env.config_path, "--model", "fraud"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def scenario_own_reference():
    """reference.per_version: 1.1.0's amount differs from 1.0.0's from its first prediction on.
    Each version collects its own first 2 windows (not judged meanwhile, saying how many it
    has) and is then judged against them: neither drifts. replay gives the same."""
    model = MODEL.replace("    canary:", "    reference: {per_version: true}\n    canary:")
    args = ("--traffic", "80,20", "--drift-at", "0", "--drift-shift", "amount=2",
            "--drift-versions", "1.1.0")
    env, close, final = run_rollout("own", 6, *args, model=model)
    ok = True
    for k, want in ((0, ("collecting", 1)), (1, ("collecting", 2)), (2, ("ready", 2)),
                    (3, ("ready", 2))):
        ref = final[k]["versions"]["1.1.0"]["reference"]
        ok &= h.report((ref["status"], ref["windows"]) == want and ref["per_version"] is True,
                       f"window {k}: 1.1.0's own reference is {want[0]} ({want[1]} windows)",
                       f"{ref}")
    for k in (2, 3):
        vs = final[k]["versions"]
        ok &= h.report(vs["1.1.0"]["features"]["amount"]["drift"] is False and
                       vs["1.0.0"]["features"]["amount"]["drift"] is False,
                       f"window {k}: each version is judged against itself: no drift",
                       f"({vs['1.1.0']['features']['amount'].get('score')}, "
                       f"{vs['1.0.0']['features']['amount'].get('score')})")
    mine = replay_finals(env, 6, args)

    def versions_of(rep):
        """Each version's verdicts, counts and reference, without when the reference was built
        and the accuracy of its labels by then (timing). Distances and p-values are left out:
        the windows' sketches past 1024 values compact per partition in run and in one stream
        in replay, so a reference's bin edges differ in their last digits."""
        return {v: {"features": {f: {"drift": x.get("drift"), "count": x.get("count"),
                                     "mean": x.get("mean")}
                                 for f, x in o.get("features", {}).items()},
                    "drift": o.get("drift"),
                    "reference": {a: b for a, b in o.get("reference", {}).items()
                                  if a not in ("created_at", "accuracy")}}
                for v, o in rep["versions"].items()}
    diffs = [d for k in final
             for d in h.json_diff(versions_of(final[k]), versions_of(mine[k]), 1e-9, f"[{k}]")]
    ok &= h.report(final and not diffs, "replay -c: the same per-version references and verdicts",
                   f"({len(final)} windows) {diffs[:3]}")
    shown = reference_show(env)["versions"]
    ok &= h.report({v: (o["status"], o["windows"]) for v, o in shown.items()} ==
                   {"1.0.0": ("ready", 2), "1.1.0": ("ready", 2)},
                   "reference show lists each version's own reference", f"{shown}")
    r = subprocess.run([h.BIN, "reference", "reset", "-c", env.config_path, "--model", "fraud"],
                       capture_output=True, text=True, timeout=60)
    # the last window may still close (idle timeout) and start a new collection: no reference
    # can be complete again from it alone
    left = env.redis("KEYS", "{dw:dwtest}:vref:*").split()
    again = reference_show(env)["versions"]
    ok &= h.report(r.returncode == 0 and not left and
                   all(o["status"] == "collecting" for o in again.values()),
                   "reference reset forgets the versions' references too",
                   f"{left} {again} {r.stderr}")
    env.close()
    return ok


SCENARIOS = {"own": scenario_own_reference, "shifted": scenario_shifted, "equal": scenario_equal, "worse": scenario_worse, "slower": scenario_slower,
             "erroring": scenario_erroring}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS))
