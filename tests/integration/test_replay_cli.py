"""The real binary, no servers: `driftwatch gen` writes predictions, labels and the ground truth
to files, `driftwatch replay` must report exactly the truth's predictions, labeled and
duplicate_labels for every window, and a drifted feature's PSI must cross the threshold only
from --drift-at on. Then `driftwatch profile` on a CSV: exact quantiles (numpy's type 7,
computed here by hand) and the counts per reference bin. The scores' and labels' drift
(prediction_drift, label_drift) from the window of a score shift on. A --reference profile that does not fit
the predictions (another model, a feature missing on either side) is an error naming it."""
import gzip
import json
import math
import os
import random
import subprocess
import sys
import tempfile

import harness as h

WINDOW_S = 60
DRIFT_AT_S = 600
EPS = 20  # predictions per second of event time: 1200 per window


def run(*args, **kw):
    p = subprocess.run([h.BIN, *args], capture_output=True, text=True, timeout=300, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{args[0]} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def quantile7(sorted_vals, q):
    hh = (len(sorted_vals) - 1) * q
    lo = math.floor(hh)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (hh - lo) * (sorted_vals[hi] - sorted_vals[lo])


def check_replay(tmp):
    pred, lab, truth_path = (os.path.join(tmp, n) for n in ("p.jsonl.gz", "l.jsonl", "t.jsonl"))
    plain = os.path.join(tmp, "p.jsonl")
    run("gen", "-q", "--count", "24000", "--eps", str(EPS), "--predictions-out", plain,
        "--labels-out", lab, "--truth", truth_path, "--window", str(WINDOW_S),
        "--duplicate-labels", "0.05", "--early-labels", "0.1", "--label-share", "0.9",
        "--missing", "0.02", "--versions", "1.0.0,1.1.0",
        "--drift-at", str(DRIFT_AT_S), "--drift-shift", "amount=2")
    with open(plain, "rb") as src, gzip.open(pred, "wb") as dst:
        dst.write(src.read())
    truth = [json.loads(l) for l in open(truth_path)]
    truth = [t for t in truth if "summary" not in t]
    p = run("replay", "--predictions", pred, "--labels", lab, "--window", str(WINDOW_S))
    everything = [json.loads(l) for l in p.stdout.splitlines()]
    # every window is reported twice, at close and at its label horizon; the truth counts every
    # label, as the final reports do (no label comes after its window's horizon here)
    reports = [r for r in everything if r["stage"] == "final"]
    closes = [r for r in everything if r["stage"] == "close"]
    ok = h.report(len(reports) == len(closes) == len(truth) and
                  [r["window_start"] for r in closes] == [r["window_start"] for r in reports],
                  "a close and a final report per window",
                  f"{len(closes)} + {len(reports)} reports, {len(truth)} truth windows")
    diffs = []
    for r, t in zip(reports, truth):
        for key in ("model", "window_start", "predictions", "labeled", "duplicate_labels",
                    "conflicts"):
            if r[key] != t[key]:
                diffs.append((t["window_start"], key, r[key], t[key]))
        for v, tv in t["versions"].items():
            rv = r["versions"].get(v, {})
            if rv.get("predictions") != tv["predictions"] or rv.get("labeled") != tv["labeled"]:
                diffs.append((t["window_start"], "version " + v, rv, tv))
        for name, tf in t["features"].items():
            rf = r["features"][name]
            if rf["count"] != tf["count"] or rf["missing"] != tf["missing"]:
                diffs.append((t["window_start"], name, rf, tf))
    ok &= h.report(not diffs, "replay equals the ground truth", str(diffs[:5]))
    schema = {"model", "window_start", "window_end", "predictions", "labeled",
              "duplicate_labels", "performance", "versions", "features", "drift"}
    missing = [k for k in schema if k not in reports[0]]
    ok &= h.report(not missing, "report fields", str(missing))

    start_ms = reports[0]["window_start_ms"]
    drift_ms = start_ms + DRIFT_AT_S * 1000
    bad = []
    for r in reports[1:]:  # reports[0] is the reference window
        f = r["features"]["amount"]
        after = r["window_start_ms"] >= drift_ms
        crossed = f["psi"] is not None and f["psi"] >= f["threshold"]
        if crossed != after or bool(f["drift"]) != after:
            bad.append((r["window_start"], f["psi"], f["drift"]))
        age = r["features"]["age"]
        if age["drift"]:
            bad.append((r["window_start"], "age", age["psi"]))
    ok &= h.report(not bad, "amount drifts only from --drift-at on", str(bad[:5]))
    summary = json.loads(p.stderr.strip().splitlines()[-1])["replay"]
    ok &= h.report(summary["bad"] == {}, "no bad lines", str(summary))
    return ok


def check_change_detectors(tmp):
    """The joined error stream: accuracy falls from 0.9 to 0.6 at minute 5; Page-Hinkley,
    ADWIN and DDM stay quiet before and each detect in the first window after."""
    pred, lab = os.path.join(tmp, "cd_p.jsonl"), os.path.join(tmp, "cd_l.jsonl")
    run("gen", "-q", "--seed", "3", "--count", "30000", "--eps", "50", "--predictions-out", pred,
        "--labels-out", lab, "--label-delay", "5", "--drift-at", "300", "--drift-accuracy", "0.6")
    p = run("replay", "--predictions", pred, "--labels", lab)
    everything = [json.loads(l) for l in p.stdout.splitlines()]
    reports = [r for r in everything if r["stage"] == "final"]
    ok = h.report(not any("change_detectors" in r for r in everything if r["stage"] == "close"),
                  "change detectors are fed by final reports only, as in run")
    first = {}
    total = 0
    for i, r in enumerate(reports):
        cd = r["change_detectors"]
        total += cd["elements"]
        for det in ("page_hinkley", "adwin", "ddm"):
            if cd[det]["drift"] and det not in first:
                first[det] = i
    ok &= h.report(first == {"page_hinkley": 5, "adwin": 5, "ddm": 5},
                  "change detectors quiet before the accuracy drop, alarm in its window",
                  f"{first}")
    ok &= h.report(total == sum(r["labeled"] for r in reports) == 30000,
                   "every labeled prediction fed once", f"({total})")

    # backtest: the built-in rules and trigger guardrails over the same windows
    alerts = os.path.join(tmp, "cd_alerts.jsonl")
    run("replay", "--predictions", pred, "--labels", lab, "--alerts", alerts)
    lines = [json.loads(l) for l in open(alerts)]
    notes = [(l["notification"]["window_start"], l["notification"]["stage"], a["rule"],
              a["status"]) for l in lines if "notification" in l
             for a in l["notification"]["alerts"]]
    trig = [l["trigger"] for l in lines if "trigger" in l]
    ok &= h.report(notes == [("2026-01-01T00:05:00Z", "final", "accuracy_drop", "firing")],
                   "backtest: one accuracy_drop page, in the window of the drop", f"{notes}")
    ok &= h.report(len(trig) == 1 and trig[0]["window_start"] == "2026-01-01T00:05:00Z" and
                   trig[0]["reasons"][0]["rule"] == "accuracy_drop",
                   "backtest: one retraining trigger (cooldown)", f"{trig[:1]}")
    return ok


def check_output_drift(tmp):
    """Output and label drift: with calibrated scores, --drift-accuracy 0.55 at minute 5 moves
    the scores towards 0.5 and, through P(y | score), the labels' mix (0.55, not 0.6: every
    drifted window's label distance then clears the 0.1 threshold by a margin).
    prediction_drift.score and label_drift (judged against the baseline's final labels) drift
    from that window on and not before; the first window is the reference and says so."""
    pred, lab = os.path.join(tmp, "od_p.jsonl"), os.path.join(tmp, "od_l.jsonl")
    run("gen", "-q", "--seed", "5", "--count", "30000", "--eps", "50", "--scores", "calibrated",
        "--predictions-out", pred, "--labels-out", lab, "--label-delay", "5",
        "--drift-at", "300", "--drift-accuracy", "0.55")
    p = run("replay", "--predictions", pred, "--labels", lab)
    # the final reports: label drift is judged there (close reports say not_final), and they
    # carry their close report's prediction drift
    reports = [r for r in map(json.loads, p.stdout.splitlines()) if r["stage"] == "final"]
    ok = h.report(reports[0]["prediction_drift"]["status"] == "waiting_for_reference",
                  "the reference window's prediction drift waits for the reference",
                  str(reports[0]["prediction_drift"]))
    bad = []
    for i, r in enumerate(reports[1:], 1):
        pd, ld = r["prediction_drift"], r["label_drift"]
        after = i >= 5
        if pd["status"] != "ready" or pd["score"]["drift"] is not after or \
                pd["class"]["method"] is None:
            bad.append((r["window_start"], "prediction", pd.get("score")))
        if ld["status"] != "ready" or ld["source"] != "baseline" or ld["drift"] is not after:
            bad.append((r["window_start"], "label", ld))
    ok &= h.report(not bad and len(reports) == 10,
                   "score and label drift from the drifted window on, not before",
                   str(bad[:3]))
    return ok


def check_profile(tmp):
    rnd = random.Random(7)
    xs = [round(rnd.gauss(50, 10), 3) for _ in range(5000)]
    csv = os.path.join(tmp, "train.csv")
    out = os.path.join(tmp, "train.json")
    with open(csv, "w") as f:
        f.write("amount,country,code\n")
        for i, x in enumerate(xs):
            cell = "" if i % 100 == 0 else repr(x)
            f.write(f'{cell},"{rnd.choice(["DE", "FR", "US"])}",{i % 7}\n')
    run("profile", "--input", csv, "--output", out, "--model", "fraud", "--categorical", "code")
    doc = json.load(open(out))
    vals = sorted(x for i, x in enumerate(xs) if i % 100 != 0)
    feat = doc["features"]["amount"]
    ok = h.report(feat["count"] == len(vals) and feat["missing"] == 50, "counts",
                  f"{feat['count']} {feat['missing']}")
    got = feat["quantiles"]["values"]
    err = max(abs(got[p] - quantile7(vals, p / 100)) for p in range(101))
    ok &= h.report(err < 1e-9, "exact quantiles (type 7)", f"max error {err}")
    edges = [quantile7(vals, i / 10) for i in range(1, 10)]
    e_err = max(abs(a - b) for a, b in zip(feat["edges"], edges))
    counts = [0] * 10
    for x in vals:
        counts[sum(1 for e in feat["edges"] if x >= e)] += 1
    ok &= h.report(e_err < 1e-9 and counts == feat["bin_counts"], "decile edges and bin counts",
                   f"{e_err} {counts} {feat['bin_counts']}")
    code = doc["features"]["code"]
    ok &= h.report(code["type"] == "categorical" and sum(code["category_counts"].values()) == 5000,
                   "--categorical column of numbers", str(code["category_counts"]))
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((x - mean) ** 2 for x in vals) / len(vals))
    ok &= h.report(abs(feat["mean"] - mean) < 1e-9 and abs(feat["std"] - std) < 1e-9, "moments")
    return ok


def check_reference_mismatch(tmp):
    """A --reference profile that does not fit the predictions is an error naming what differs
    (the model, or the feature), never a replay that quietly judges without it."""
    def path(n):
        return os.path.join(tmp, n)

    def gen(name, *args):
        run("gen", "-q", "--count", "600", "--predictions-out", path(name), *args)
        return path(name)

    run("profile", "-i", gen("ref.jsonl"), "-o", path("fraud.json"), "-m", "fraud")
    cases = [
        ("a profile of another model", [], gen("churn.jsonl", "--model", "churn"),
         ["'fraud'", "'churn'"]),
        ("a feature the profile lacks", [], gen("more.jsonl", "--numeric", "4"),
         ["feature 'tenure'", "not in the profile"]),
        ("a profile feature the data never has", [], gen("less.jsonl", "--numeric", "2"),
         ["feature 'balance'", "never appears"]),
    ]
    models = run("gen", "--numeric", "2", "--print-models").stdout
    with open(path("c.yaml"), "w") as f:
        f.write('kafka: {bootstrap.servers: "127.0.0.1:9"}\n' + models)
    cases.append(("a profile feature the config does not have", ["-c", path("c.yaml")],
                  path("less.jsonl"), ["feature 'balance'", "not a feature of model 'fraud'"]))
    ok = True
    for what, extra, preds, needles in cases:
        p = subprocess.run([h.BIN, "replay", *extra, "--predictions", preds, "--reference",
                            path("fraud.json")], capture_output=True, text=True, timeout=60)
        ok &= h.report(p.returncode != 0 and all(n in p.stderr for n in needles) and not p.stdout,
                       f"replay --reference: {what} is an error naming it",
                       f"exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return ok


def main():
    with tempfile.TemporaryDirectory(prefix="dw_replay_cli_") as tmp:
        ok = check_replay(tmp)
        ok &= check_change_detectors(tmp)
        ok &= check_output_drift(tmp)
        ok &= check_profile(tmp)
        ok &= check_reference_mismatch(tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
