"""`driftwatch replay` end to end on files against values computed independently with numpy,
scipy and scikit-learn (tests/fixtures/make_replay_fixtures.py wrote the inputs and
expected.json under tests/fixtures/replay/<scenario>/; this test needs no Python packages).

For every scenario: run `driftwatch profile` first when the scenario has a reference CSV,
then `driftwatch replay` (prediction_drift, label_drift and the label-free estimates
included); check that each
report line has the report schema of
docs/statistics.md (fields, RFC 3339 "Z" window bounds, per-type feature fields, drift object)
and that every expected value matches: integers, strings, booleans and nulls exactly, reals to
1e-9 relative (1e-12 absolute near 0), p-values (and the BH-adjusted scores of p-value tests)
to 1e-9 relative or 1e-300 absolute."""
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

import harness as h

FIXTURES = os.path.join(h.ROOT, "tests", "fixtures", "replay")
SCENARIOS = ("binary", "profile", "multiclass", "regression", "large")
REL = 1e-9
ABS_NEAR_ZERO = 1e-12
ABS_P = 1e-300
TESTS = ("ks", "chi2", "g_test")
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

TOP = ("model", "window_start", "window_end", "predictions", "labeled", "duplicate_labels",
       "performance", "versions", "features", "drift")
NUMERIC = ("type", "count", "missing", "mean", "std", "min", "max", "ks", "psi", "wasserstein",
           "wasserstein_norm", "js", "kl", "hellinger", "method", "score", "threshold", "drift")
CATEGORICAL = ("type", "count", "missing", "unseen", "chi2", "g_test", "psi", "js", "tvd",
               "method", "score", "threshold", "drift")
PERF_CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier",
                       "confusion", "f1_macro", "f1_micro")
PERF_REGRESSION = ("mae", "rmse", "mape", "r2")


def run(args, cwd):
    p = subprocess.run([h.BIN, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    if p.returncode != 0:
        raise AssertionError(f"driftwatch {' '.join(args)} exited {p.returncode}: "
                             f"{p.stderr[-2000:]}")
    return p


def schema_errors(rep, task):
    errs = []
    for k in TOP:
        if k not in rep:
            errs.append(f"missing {k}")
    for k in ("window_start", "window_end"):
        if not RFC3339_Z.match(str(rep.get(k))):
            errs.append(f"{k} {rep.get(k)!r} is not RFC 3339 UTC with Z")
    drift = rep.get("drift")
    if not isinstance(drift, dict) or set(drift) < {"share", "features", "dataset"} or \
            not isinstance(drift.get("features"), list) or \
            not isinstance(drift.get("dataset"), bool):
        errs.append(f"drift {drift!r}")
    if rep.get("predictions") == 0:
        return errs
    perf = rep.get("performance") or {}
    for k in PERF_REGRESSION if task == "regression" else PERF_CLASSIFICATION:
        if k not in perf:
            errs.append(f"performance.{k} missing")
    if task != "regression":
        conf = perf.get("confusion") or {}
        errs += [f"confusion.{k} missing" for k in ("tp", "fp", "tn", "fn") if k not in conf]
    for v, body in (rep.get("versions") or {}).items():
        errs += [f"versions.{v}.{k} missing" for k in ("predictions", "labeled", "performance")
                 if k not in body]
    for name, f in (rep.get("features") or {}).items():
        fields = NUMERIC if f.get("type") == "numeric" else CATEGORICAL
        errs += [f"features.{name}.{k} missing" for k in fields if k not in f]
        for t in ("ks",) if f.get("type") == "numeric" else ("chi2", "g_test"):
            sub = f.get(t)
            want = ("statistic", "p_value") if t == "ks" else ("statistic", "dof", "p_value")
            if sub is not None:
                errs += [f"features.{name}.{t}.{k} missing" for k in want if k not in sub]
    return errs


class Compare:
    def __init__(self):
        self.diffs = []
        self.kinds = Counter()

    def kind(self, path):
        if path[0] == "features" and len(path) > 2:
            return "verdict" if path[2] in ("method", "score", "threshold", "drift") else \
                path[1]
        if path[0] in ("performance", "versions"):
            return "performance"
        return path[0]

    def leaf(self, exp, act, path, ptype):
        where = ".".join(str(p) for p in path)
        if exp is None or isinstance(exp, (bool, str)) or act is None or isinstance(act, bool):
            ok = exp == act and type(exp) is type(act)
        elif isinstance(exp, int) and not isinstance(exp, bool):
            ok = isinstance(act, (int, float)) and act == exp
        else:
            if not isinstance(act, (int, float)):
                ok = False
            else:
                err = abs(act - exp)
                if ptype:
                    ok = err <= REL * abs(exp) or err <= ABS_P
                else:
                    ok = err <= REL * abs(exp) or err <= ABS_NEAR_ZERO
        if not ok:
            self.diffs.append(f"{where}: got {act!r}, want {exp!r}")
        return ok

    def walk(self, exp, act, path, feat_kind=None, method=None):
        if isinstance(exp, dict):
            if not isinstance(act, dict):
                self.diffs.append(f"{'.'.join(map(str, path))}: got {act!r}, want an object")
                return
            for k, v in exp.items():
                if k not in act:
                    self.diffs.append(f"{'.'.join(map(str, path + [k]))}: missing")
                    continue
                fk, m = feat_kind, method
                if path in (["features"], ["prediction_drift"]) and isinstance(v, dict):
                    fk, m = v.get("type"), v.get("method")
                elif path == [] and k == "label_drift":
                    fk, m = v.get("type"), v.get("method")
                self.walk(v, act[k], path + [k], fk, m)
            return
        if isinstance(exp, list):
            if not isinstance(act, list) or len(act) != len(exp):
                self.diffs.append(f"{'.'.join(map(str, path))}: got {act!r}, want {exp!r}")
                return
            for i, (e, a) in enumerate(zip(exp, act)):
                self.walk(e, a, path + [i], feat_kind, method)
            return
        ptype = path[-1] == "p_value" or (path[-1] == "score" and method in TESTS)
        self.leaf(exp, act, path, ptype)
        if path[0] == "features" and len(path) > 2:
            k = "verdict" if path[2] in ("method", "score", "threshold", "drift") else feat_kind
        elif path[0] in ("prediction_drift", "label_drift", "estimated", "estimated_drop"):
            k = path[0]
        else:
            k = "performance" if path[0] in ("performance", "versions") else "window"
        self.kinds[k] += 1
        if path[0] == "features" and len(path) > 2 and path[2] in ("ks", "chi2", "g_test"):
            self.kinds[f"{feat_kind} {path[2]}"] += 1


def check_scenario(name, cmp):
    d = os.path.join(FIXTURES, name)
    with open(os.path.join(d, "expected.json")) as f:
        doc = json.load(f)
    with tempfile.TemporaryDirectory(prefix="dw-replay-fix-") as tmp:
        if doc["profile_args"]:
            run([a.replace("{tmp}", tmp) for a in ["profile", *doc["profile_args"]]], d)
        p = run([a.replace("{tmp}", tmp) for a in ["replay", *doc["replay_args"]]], d)
    everything = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    # each window is reported at close and at its label horizon; the fixtures hold every label
    # (none after its window's horizon), as the final reports count them
    reports = [r for r in everything if r.get("stage") == "final"]
    closes = [r["window_start"] for r in everything if r.get("stage") == "close"]
    expected = doc["reports"]
    ok = h.report(len(reports) == len(expected) and
                  closes == [r["window_start"] for r in reports],
                  f"{name}: a close and a final report per window",
                  f"{len(closes)} + {len(reports)} reports, {len(expected)} expected")
    task = "regression" if any("mae" in (e.get("performance") or {}) for e in expected) \
        else "classification"
    schema = []
    for r in reports:
        schema += [f"{r.get('window_start')}: {e}" for e in schema_errors(r, task)]
    ok &= h.report(not schema, f"{name}: report schema", "; ".join(schema[:8]))
    before = len(cmp.diffs)
    for e, r in zip(expected, reports):
        sub = Compare()
        sub.walk(e, r, [])
        cmp.diffs += [f"{e['window_start']} {d}" for d in sub.diffs]
        cmp.kinds.update(sub.kinds)
    new = cmp.diffs[before:]
    ok &= h.report(not new, f"{name}: values equal the scipy/sklearn fixtures",
                   f"{len(new)} differences: " + "; ".join(new[:12]))
    return ok


def main():
    if not os.path.exists(h.BIN):
        print(f"FAIL: {h.BIN} not built")
        sys.exit(1)
    cmp = Compare()
    ok = True
    for name in SCENARIOS:
        try:
            ok &= check_scenario(name, cmp)
        except AssertionError as e:
            ok &= h.report(False, name, str(e))
    print("comparisons:", json.dumps(dict(sorted(cmp.kinds.items()))))
    # the estimates are those of the profile scenario's 4 windows (its profile has labelled
    # scores: the baseline from the start); the other scenarios' close reports wait for a
    # baseline of windows, which is complete only at their final reports
    need = {"numeric ks": 60, "categorical chi2": 30, "categorical g_test": 30,
            "prediction_drift": 500, "label_drift": 300, "estimated": 60, "estimated_drop": 32}
    short = {k: cmp.kinds[k] for k, n in need.items() if cmp.kinds[k] < n}
    ok &= h.report(not short, "enough comparisons (30 KS and 15 chi2/G tables, two fields "
                   "each)", str(short))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
