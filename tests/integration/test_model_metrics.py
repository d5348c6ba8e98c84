"""Model series on /metrics, from two pods: one run with drift, label-free estimates, a canary
and webhook deliveries (every kind of series the dashboard reads).

- promtool check metrics is clean on both pods' scrapes, which carry the model series;
- both pods export the same model series with the same values (they read the evaluator's
  digests from Redis), although only one evaluates;
- driftwatch_model_predictions_total is exact: the sum of the stored final reports'
  predictions, per version and over all;
- the drifted feature is 1 in driftwatch_feature_drifted, the evaluation times and the close
  delay agree with the stored digests, consumer lag reaches 0 once everything is consumed;
- every metric name that the shipped rules (but `up`) and the dashboard query is exported, and
  every name exported is documented in the README's metrics tables.
The scrapes are kept in the test's directory (DW_KEEP_TMP=1 keeps it)."""
import json
import os
import re
import subprocess
import sys
import time

import harness as h
import promql_names as q

WINDOW_MS = 60000
T0 = 1767225600000  # gen's default --start
WINDOWS = 8
MODEL = """models:
  fraud:
    task: classification
    features:
      amount: numeric
      age: numeric
      balance: numeric
      country: categorical
      merchant: categorical
    canary: {windows: 5, min_samples: 100, max_accuracy_drop: 0.1}
"""
MODEL_FAMILIES = ("driftwatch_model_", "driftwatch_feature_", "driftwatch_dataset_drift_share",
                  "driftwatch_window_last_evaluated_timestamp_seconds",
                  "driftwatch_window_close_delay_seconds")


def scrape(port):
    status, text = h.Env.http_get(type("P", (), {"http_port": port})(), "/metrics")
    return text if status == 200 else ""


def samples(text, prefixes=MODEL_FAMILIES):
    """{series: value text} of the families named by prefixes."""
    out = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            key, value = line.rsplit(" ", 1)
            out[key] = value
    return out


def value(text, series):
    v = samples(text, (series.split("{")[0],)).get(series)
    return None if v is None else float(v)


def final_reports(env):
    out = {}
    for k in range(WINDOWS + 2):
        text = env.redis("GET", f"{{dw:dwtest}}:report:fraud:{T0 + k * WINDOW_MS}")
        if text.startswith("{"):
            r = json.loads(text)
            if r.get("final"):
                out[k] = r
    return out


def check_totals(env, text):
    finals = final_reports(env)
    want = {"all": sum(r["predictions"] for r in finals.values())}
    for r in finals.values():
        for v, vr in r["versions"].items():
            want[v] = want.get(v, 0) + vr["predictions"]
    got = {v: value(text, f'driftwatch_model_predictions_total{{model="fraud",version="{v}"}}')
           for v in want}
    return got == want and len(finals) >= WINDOWS - 2, f"({len(finals)} final windows) {got} {want}"


def main():
    receiver = h.Receiver()
    receiver.up()
    env = h.Env(partitions=2, name="modelmetrics")
    env.config(models=MODEL, horizon="60s", webhook_url=receiver.url, idle="5s")
    proc = env.start_run()
    port2 = env.start_pod("pod2")
    h.wait_for(lambda: scrape(port2), 30, "the second pod's /metrics")
    # Traffic only once both pods own a partition: traffic produced during the rebalance (which
    # the mock once took 13 s to finish) is then read in one burst, every window closes before
    # the first final report builds the performance baseline, and no close report carries the
    # label-free estimate this test needs (docs/design.md, "Evaluation spread over pods").
    h.wait_for(lambda: "partition assigned" in env.log("pod2"), 60, "the second pod's partition")
    env.gen("--count", str(WINDOWS * 60 * 50), "--eps", "50", "--label-delay", "20",
            "--label-share", "0.9", "--versions", "1.0.0,1.1.0", "--traffic", "80,20",
            "--version-accuracy", "1.0.0=0.9,1.1.0=0.6", "--drift-at", "240",
            "--drift-shift", "amount=3", "--rate", "4000", truth=False)
    ok = True
    # the windows but the last two reach their label horizon within the traffic
    h.wait_for(lambda: len(final_reports(env)) >= WINDOWS - 2, 120, "final reports")

    # Both pods: the same model series once the evaluation settled (the evaluator may commit a
    # digest between the two scrapes: compare again until two scrapes agree).
    def same():
        a, b = scrape(env.http_port), scrape(port2)
        sa, sb = samples(a), samples(b)
        return (a, b) if sa and sa == sb and any(
            k.startswith("driftwatch_model_estimated_performance") for k in sa) else None
    try:
        got = h.wait_for(same, 90, "both pods exporting the same model series")
    except AssertionError:
        sa, sb = samples(scrape(env.http_port)), samples(scrape(port2))
        diff = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
        print(f"pod1 {len(sa)} series, pod2 {len(sb)}; differing: "
              f"{[(k, sa.get(k), sb.get(k)) for k in diff[:20]]}; estimated performance on "
              f"pod1: {any(k.startswith('driftwatch_model_estimated_performance') for k in sa)}")
        print(env.log()[-3000:])
        raise
    a, b = got
    for name, text in (("pod1", a), ("pod2", b)):
        path = os.path.join(env.dir, f"metrics-{name}.txt")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["promtool", "check", "metrics"], stdin=open(path),
                           capture_output=True, text=True)
        ok &= h.report(r.returncode == 0, f"promtool check metrics ({name})",
                       (r.stdout + r.stderr).strip()[:500])
    sa = samples(a)
    families = sorted({k.split("{")[0] for k in sa})
    ok &= h.report(len(families) == 10, "both pods export the same model series, every family",
                   f"({len(sa)} series: {families})")

    ok &= h.report(h.eventually(lambda: check_totals(env, scrape(port2))[0], 30),
                   "predictions_total is the exact sum of the final reports (the other pod)",
                   check_totals(env, scrape(port2))[1])
    text = scrape(port2)
    drifted = value(text, 'driftwatch_feature_drifted{model="fraud",feature="amount"}')
    steady = value(text, 'driftwatch_feature_drifted{model="fraud",feature="country"}')
    # the method auto picks a test or a distance per window: the one not used now is NaN
    scores = {k: float(v) for k, v in samples(text, ("driftwatch_feature_drift_score",)).items()
              if 'feature="amount"' in k}
    current = [k for k, v in scores.items() if v == v]
    ok &= h.report(drifted == 1 and steady == 0 and len(current) == 1,
                   "the shifted feature drifted, another did not; one score of it is current",
                   f"(amount {drifted}, country {steady}, amount's scores {scores})")
    # Per-version accuracy of the latest final report, as stored
    finals = final_reports(env)
    last = finals[max(finals)]
    for v in ("1.0.0", "1.1.0"):
        want = last["versions"][v]["performance"]["accuracy"]
        got_v = value(text, f'driftwatch_model_performance{{model="fraud",version="{v}",'
                      'metric="accuracy"}')
        ok &= h.report(got_v is not None and abs(got_v - want) < 1e-12,
                       f"accuracy of {v} is the latest final report's", f"({got_v} vs {want})")
    digest = json.loads(env.redis("GET", "{dw:dwtest}:modelmetrics:fraud:close"))
    delay = value(text, "driftwatch_window_close_delay_seconds")
    evaluated = value(text, 'driftwatch_window_last_evaluated_timestamp_seconds{model="fraud",'
                      'stage="close"}')
    ok &= h.report(evaluated == digest["evaluated_ms"] / 1000 and abs(time.time() - evaluated) < 300
                   and delay == (digest["evaluated_ms"] - digest["window_end_ms"]) / 1000,
                   "evaluation time and close delay are the digest's (wall clock)",
                   f"(evaluated {evaluated}, delay {delay} s)")

    def lag_zero():
        texts = [scrape(env.http_port), scrape(port2)]
        lags = {}
        for t in texts:
            for k, v in samples(t, ("driftwatch_consumer_lag_messages",)).items():
                lags[k] = lags.get(k, 0) + float(v)
        return lags if len(lags) == 4 and all(v == 0 for v in lags.values()) else None
    ok &= h.report(h.eventually(lag_zero, 30), "consumer lag of every partition reaches 0",
                   str(samples(scrape(env.http_port), ("driftwatch_consumer_lag_messages",))))

    # Every name the dashboard and the rules read is exported (deliveries and canary included)
    sent = 'driftwatch_alert_deliveries_sent_total{sink="webhook"}'
    h.wait_for(lambda: (value(scrape(env.http_port), sent) or 0) +
               (value(scrape(port2), sent) or 0), 60, "an alert delivered")
    ok &= h.report(receiver.accepted(), "the webhook received the alerts",
                   f"({len(receiver.accepted())} requests)")
    exported = q.scrape_names(scrape(env.http_port)) | q.scrape_names(scrape(port2))
    exprs, var_queries = q.dashboard_exprs()
    used = set().union(*(q.metric_names(e) for _, e in exprs),
                       *(q.variable_metric_names(v) for v in var_queries))
    missing = sorted(used - exported)
    ok &= h.report(not missing and len(used) > 20,
                   "every metric the dashboard queries is exported", f"({len(used)}) {missing}")
    used = set().union(*(q.metric_names(e) for e in q.rule_exprs().values())) - {"up"}
    missing = sorted(used - exported)
    ok &= h.report(not missing, "every metric the rules query is exported",
                   f"({len(used)}) {missing}")
    missing = q.undocumented(exported)
    ok &= h.report(not missing and len(exported) > 40,
                   "every metric exported is in the README's metrics tables",
                   f"({len(exported)} exported) {missing}")
    receiver.down()
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
