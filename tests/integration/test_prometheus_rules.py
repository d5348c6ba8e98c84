"""The shipped Prometheus rules and Grafana dashboard, without a run: `promtool check rules`
and `promtool test rules` (deploy/prometheus/driftwatch-rules.test.yaml tests every alert of
the rules file, firing and not), every dashboard query parses, and the PromQL name reader the
scrape tests rely on reads what it should. test_model_metrics.py checks the names against a
real scrape."""
import os
import subprocess
import sys
import tempfile

import harness as h
import promql_names as q


def main():
    ok = True
    r = subprocess.run(["promtool", "check", "rules", q.RULES], capture_output=True, text=True)
    ok &= h.report(r.returncode == 0, "promtool check rules", (r.stdout + r.stderr).strip())
    r = subprocess.run(["promtool", "test", "rules", os.path.basename(q.RULES_TEST)],
                       cwd=os.path.dirname(q.RULES_TEST), capture_output=True, text=True)
    ok &= h.report(r.returncode == 0 and "SUCCESS" in r.stdout, "promtool test rules",
                   (r.stdout + r.stderr).strip()[-1500:])
    tested = set(open(q.RULES_TEST).read().split("alertname: ")[1:])
    tested = {t.split()[0] for t in tested}
    untested = set(q.rule_exprs()) - tested
    ok &= h.report(not untested, "every alert has a promtool unit test", str(sorted(untested)))
    exprs, var_queries = q.dashboard_exprs()
    with tempfile.TemporaryDirectory() as d:
        parsed, out = q.check_parse([e for _, e in exprs], os.path.join(d, "dash.yaml"))
    ok &= h.report(parsed and len(exprs) >= 20, "every dashboard query parses (promtool)",
                   f"({len(exprs)} queries) {out[-800:]}")
    ok &= h.report(all("label_values(driftwatch_" in v for v in var_queries),
                   "the dashboard's variables read driftwatch series", str(var_queries))
    names = q.metric_names('max by (model, version) (rate(driftwatch_a_total{model=~"x",'
                           'metric="accuracy"}[5m])) / on (model) group_left '
                           'driftwatch_b offset 1d > 1e3 and time() - driftwatch_c')
    ok &= h.report(names == {"driftwatch_a_total", "driftwatch_b", "driftwatch_c"},
                   "the name reader finds the metrics of an expression", str(sorted(names)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
