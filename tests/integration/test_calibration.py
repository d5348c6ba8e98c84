"""Verdict calibration and power, through `driftwatch replay`:

- No drift: 200 windows of 1000 predictions from the reference's own distribution, judged
  against a reference profile built from 100k separate rows. With auto (KS / chi-squared at
  this size), Benjamini-Hochberg at alpha = 0.05 across the 5 features, a window is flagged
  with probability at most 0.05 under the null; we allow 17 of 200 windows (the 99th
  percentile of Binomial(200, 0.05)).
- Power: a mean shift of 0.25 standard deviations in one feature, 1000 samples per window, is
  flagged in its first window (and the other features are not blamed)."""
import json
import os
import subprocess
import sys
import tempfile

import harness as h


def run(*args):
    subprocess.run([h.BIN, *args], check=True, capture_output=True, timeout=600)


def replay(work, preds, ref):
    out = os.path.join(work, "reports.jsonl")
    run("replay", "--predictions", preds, "--reference", ref, "--window", "20s",
        "--output", out)
    # each window is reported at close and again, with the same drift, at its label horizon
    return [r for r in map(json.loads, open(out)) if r["stage"] == "close"]


def main():
    work = tempfile.mkdtemp(prefix="dw-calibration-")
    ref_src = os.path.join(work, "ref.jsonl")
    run("gen", "-q", "--seed", "99", "--count", "100000", "--eps", "1000",
        "--predictions-out", ref_src, "--labels-out", os.path.join(work, "ref-labels.jsonl"))
    ref = os.path.join(work, "profile.json")
    run("profile", "--input", ref_src, "--output", ref, "--model", "fraud")

    # 200 windows x 1000 predictions: 50 per second in 20 s windows, starting on a window
    # boundary so every window is full.
    preds = os.path.join(work, "p.jsonl")
    run("gen", "-q", "--seed", "7", "--count", "200000", "--eps", "50",
        "--start", "2026-01-01T00:00:00Z", "--predictions-out", preds,
        "--labels-out", os.path.join(work, "l.jsonl"))
    reports = [r for r in replay(work, preds, ref) if r["predictions"] >= 900]
    flagged = [r["window_start"] for r in reports if r["drift"]["features"]]
    ok = h.report(len(reports) >= 199, "200 full windows replayed", f"({len(reports)})")
    ok &= h.report(len(flagged) <= 17, "no-drift windows flagged at most 17 of 200 (BH, 0.05)",
                   f"({len(flagged)} flagged)")
    methods = {f["method"] for r in reports for f in r["features"].values()}
    ok &= h.report(methods <= {"ks", "chi2"}, "auto picked p-value tests at 1000 samples",
                   f"{methods}")

    # Power: amount shifts by 0.25 std from the 11th window (200 s) on.
    drifted = os.path.join(work, "d.jsonl")
    run("gen", "-q", "--seed", "8", "--count", "20000", "--eps", "50",
        "--start", "2026-01-01T00:00:00Z", "--drift-at", "200", "--drift-shift", "amount=0.25",
        "--predictions-out", drifted, "--labels-out", os.path.join(work, "dl.jsonl"))
    reports = replay(work, drifted, ref)
    first = next(r for r in reports if r["window_start"] == "2026-01-01T00:03:20Z")
    ok &= h.report(first["features"]["amount"]["drift"] is True,
                   "0.25 std shift flagged in its first window",
                   f"(score {first['features']['amount']['score']})")
    others = [f for f, v in first["features"].items() if f != "amount" and v["drift"]]
    ok &= h.report(not others, "other features not blamed", f"{others}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
