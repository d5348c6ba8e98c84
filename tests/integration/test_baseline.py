"""The performance baseline and the label-free estimate under real label delays.

Labels arrive about four windows after their predictions (`gen --label-delay 240`, 60 s
windows, window.label_horizon 600s) and accuracy falls from 0.9 to 0.6 at minute 8. Traffic is
throttled so that windows close and become final one after another while driftwatch runs:

- the baseline is the merged final counts of the three reference windows, kept in Redis: its
  accuracy is within 0.02 of 0.9, also with driftwatch killed (-9) and restarted while it is
  collected;
- every close report before the baseline exists says why (`waiting_for_labels`, with the share
  of the reference windows' predictions whose labels it holds, never falling);
- performance.drop.accuracy is near 0 (|drop| < 0.05) on the final reports before the drop and
  at least 0.25 on the drifted windows' final reports;
- the built-in rule (accuracy_drop, on performance_drop.alert) fires on the first drifted
  window's final report, seen by a webhook receiver;
- the same traffic through `driftwatch replay`, given the labels that run counted (those that
  came after their window's label horizon are dropped from the file, as run's rule decides them
  from the labels topic read back in partition order, and replay's horizon is made long enough
  to count every label given: it has one label clock for both partitions), gives the same
  labeled counts, the same baseline and the same drops, metric by metric;
- the label-free estimate of accuracy (check_estimates) follows the realised one.
"""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import harness as h

WINDOW_MS = 60000
HORIZON_S = 600
START_MS = 1767225600000  # gen's default --start, 2026-01-01T00:00:00Z
DRIFT_AT_S = 480           # window 8
EPS = 20                   # predictions per second of event time: 1200 per window
COUNT = 36000              # 30 minutes of event time
# Calibrated scores (docs/gen.md): the score is the probability of the positive class, and the
# accuracy drop moves the scores towards 0.5, which the label-free estimate can follow.
GEN = ["--seed", "5", "--count", str(COUNT), "--eps", str(EPS), "--label-delay", "240",
       "--accuracy", "0.9", "--drift-at", str(DRIFT_AT_S), "--drift-accuracy", "0.6",
       "--scores", "calibrated"]
FIRST_DRIFTED = START_MS + DRIFT_AT_S * 1000
# final once both clocks passed end + horizon; the last prediction is at 1800 s less lateness
LAST_FINAL = START_MS + 18 * WINDOW_MS
METRICS = ("accuracy", "precision", "recall", "f1", "f1_macro", "f1_micro", "roc_auc",
           "log_loss", "brier")


def ms_of(ts):
    return int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ" if "." in ts else
                                 "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
               .timestamp() * 1000 + 0.5)


def window_of(ts_ms):
    return ts_ms - ts_ms % WINDOW_MS


def counted_labels(env, pred_ts, out_path):
    """Writes the labels run counted: the labels topic read back per partition in offset order,
    a label being late when its partition's label clock (the largest label time before it)
    had passed its prediction's window end + the horizon (dw_part.c: label_late), or expired
    (join.ttl, 1h). Returns (counted, late)."""
    r = subprocess.run(["kcat", "-b", env.bootstrap, "-C", "-t", "labels", "-e", "-q",
                        "-f", "%p\t%o\t%s\n"], capture_output=True, text=True, timeout=120)
    by_part = {}
    for line in r.stdout.splitlines():
        p, o, body = line.split("\t", 2)
        by_part.setdefault(int(p), []).append((int(o), json.loads(body)))
    kept, late = [], 0
    for msgs in by_part.values():
        clock = None
        for _, lab in sorted(msgs, key=lambda m: m[0]):
            ts = ms_of(lab["timestamp"])
            pts = pred_ts[lab["prediction_id"]]
            end = window_of(pts) + WINDOW_MS
            if clock is not None and (end + HORIZON_S * 1000 <= clock or pts + 3600000 < clock):
                late += 1
            else:
                kept.append((ts, lab))
            clock = ts if clock is None else max(clock, ts)
    kept.sort(key=lambda x: x[0])
    with open(out_path, "w") as f:
        for _, lab in kept:
            f.write(json.dumps(lab) + "\n")
    return len(kept), late


def same(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


def check_estimates(env, run_final, run_close, preds, labels):
    """The label-free estimate (CBPE, calibrated on the baseline's labelled scores). In run, with
    the reference windows as the baseline, close reports say they wait for the baseline until it
    is complete (window 13 here, the drifted windows), then estimate from the window's scores
    alone what the final report will realise; the final report carries the close report's
    estimate. With a training profile made with labels and scores as the reference (replay -c,
    reference.source profile, as run would do with the same setting), the baseline exists from
    the first window: every close report before the drop estimates the accuracy within 0.03 of
    what run realised there, and after the score shift the estimate moves with the accuracy
    (docs/statistics.md, CBPE failure modes: the drifted scores lie between the reference's,
    where the calibration interpolates, so it stays a few points under the realised 0.6)."""
    closes = [run_close[s] for s in sorted(run_close)]
    waiting = [r for r in closes if r["estimated"]["status"] == "waiting_for_baseline"]
    ready = [r for r in closes if r["estimated"]["status"] == "ready"]
    ok = h.report(len(waiting) >= 6 and len(waiting) + len(ready) == len(closes) and
                  all(r["baseline"]["status"] != "ready" for r in waiting) and
                  all(r["window_start_ms"] > w["window_start_ms"] for r in ready
                      for w in waiting),
                  "close reports wait for the baseline's calibration, then estimate",
                  f"({len(waiting)} waiting, {len(ready)} ready of {len(closes)})")
    moved = [(r["window_start"], r["estimated"]["accuracy"], r["estimated_drop"]["accuracy"])
             for r in ready]
    ok &= h.report(len(moved) >= 5 and all(r["window_start_ms"] >= FIRST_DRIFTED for r in ready)
                   and all(a <= 0.7 and d >= 0.25 for _, a, d in moved),
                   "close-stage estimates after the score shift: accuracy <= 0.7, "
                   "estimated_drop.accuracy >= 0.25", f"{moved[:3]}")
    carried = [s for s, r in run_final.items() if s in run_close and
               r["estimated"] != run_close[s]["estimated"]]
    ok &= h.report(not carried, "final reports carry the close report's estimate",
                   f"{carried[:3]}")

    # a training profile of the same model before the drift (another seed), with labels and
    # calibrated scores
    tp, tl = os.path.join(env.dir, "train.p.jsonl"), os.path.join(env.dir, "train.l.jsonl")
    subprocess.run([h.BIN, "gen", "-q", "--seed", "9", "--count", "12000", "--accuracy", "0.9",
                    "--scores", "calibrated", "--predictions-out", tp, "--labels-out", tl],
                   check=True, timeout=120)
    label_of = {}
    for line in open(tl):
        lab = json.loads(line)
        label_of.setdefault(lab["prediction_id"], lab["label"])
    train, prof = os.path.join(env.dir, "train.jsonl"), os.path.join(env.dir, "train.json")
    with open(train, "w") as f:
        for line in open(tp):
            ev = json.loads(line)
            ev["label"] = label_of[ev["prediction_id"]]
            f.write(json.dumps(ev) + "\n")
    r = subprocess.run([h.BIN, "profile", "-c", env.config_path, "-i", train, "-o", prof],
                       capture_output=True, text=True, timeout=120)
    ok &= h.report(r.returncode == 0, "training profile with labels and scores", r.stderr[-300:])
    config = os.path.join(env.dir, "replay_profile.yaml")
    with open(env.config_path) as src, open(config, "w") as dst:
        dst.write(src.read().replace("reference:\n", f"reference:\n  source: profile\n"
                                                     f"  profile: \"file://{prof}\"\n", 1))
    r = subprocess.run([h.BIN, "replay", "-c", config, "--predictions", preds, "--labels", labels],
                       capture_output=True, text=True, timeout=300)
    ok &= h.report(r.returncode == 0, "replay with the profile ran", r.stderr[-300:])
    est = {rep["window_start_ms"]: rep for rep in map(json.loads, r.stdout.splitlines())
           if rep["stage"] == "close"}
    before = [(rp["window_start"], rp["estimated"].get("accuracy"),
               run_final[s]["performance"]["accuracy"]) for s, rp in sorted(est.items())
              if s < FIRST_DRIFTED and s in run_final]
    ok &= h.report(len(before) == 8 and
                   all(e is not None and abs(e - a) <= 0.03 for _, e, a in before),
                   "with a labelled profile, every close report before the drop estimates the "
                   "accuracy within 0.03 of the realised",
                   f"{[(w[11:16], e if e is None else round(e, 4), round(a, 4)) for w, e, a in before]}")
    after = [(rp["window_start"], rp["estimated"].get("accuracy"),
              run_final[s]["performance"]["accuracy"]) for s, rp in sorted(est.items())
             if s >= FIRST_DRIFTED and s in run_final]
    ok &= h.report(len(after) >= 10 and all(e is not None and e <= 0.7 for _, e, _ in after),
                   "with a labelled profile, the estimate moves with the score shift",
                   f"{[(w[11:16], e if e is None else round(e, 4), round(a, 4)) for w, e, a in after[:4]]}")
    return ok


def check_replay(env, run_final, run_close):
    """Replays the same traffic with the labels run counted; compares the fields."""
    work = env.dir
    preds, all_labels = os.path.join(work, "p.jsonl"), os.path.join(work, "l_all.jsonl")
    subprocess.run([h.BIN, "gen", "-q", *GEN, "--predictions-out", preds, "--labels-out",
                    all_labels], check=True, timeout=300)
    pred_ts = {}
    for line in open(preds):
        ev = json.loads(line)
        pred_ts[ev["prediction_id"]] = ms_of(ev["timestamp"])
    labels = os.path.join(work, "l_counted.jsonl")
    kept, late = counted_labels(env, pred_ts, labels)
    ok = h.report(kept + late == COUNT and late > 0, "labels topic read back",
                  f"({kept} counted, {late} after their horizon)")
    # run judged each label on its own partition's label clock (counted_labels); replay has one
    # clock for both partitions, so it is given a horizon that keeps every label it is given
    config = os.path.join(work, "replay.yaml")
    with open(env.config_path) as src, open(config, "w") as dst:
        dst.write(src.read().replace(f"label_horizon: {HORIZON_S}s", "label_horizon: 10000h"))
    r = subprocess.run([h.BIN, "replay", "-c", config, "--predictions", preds,
                        "--labels", labels], capture_output=True, text=True, timeout=300)
    ok &= h.report(r.returncode == 0, "replay ran", r.stderr[-500:])
    replayed = {rep["window_start_ms"]: rep for rep in map(json.loads, r.stdout.splitlines())
                if rep["stage"] == "final"}
    counts, fields = [], []
    for start, rep in sorted(run_final.items()):
        rp = replayed.get(start)
        if rp is None or (rp["labeled"], rp["correct"]) != (rep["labeled"], rep["correct"]):
            counts.append((rep["window_start"], rep["labeled"], rp and rp["labeled"]))
            continue
        if rep["baseline"]["status"] != "ready":
            continue
        for k in METRICS:
            pairs = [("baseline", rep["baseline"].get(k), rp["baseline"].get(k)),
                     ("performance.baseline", rep["performance"]["baseline"][k],
                      rp["performance"]["baseline"][k]),
                     ("performance.drop", rep["performance"]["drop"][k],
                      rp["performance"]["drop"][k])]
            fields += [(rep["window_start"], f"{what}.{k}", a, b) for what, a, b in pairs
                       if not same(a, b)]
        for k in ("value", "alert"):
            a, b = rep["performance_drop"][k], rp["performance_drop"][k]
            if not (a == b if isinstance(a, bool) else same(a, b)):
                fields.append((rep["window_start"], f"performance_drop.{k}", a, b))
    ok &= h.report(not counts, "replay counts the labels run counted, window by window",
                   f"{counts[:3]}")
    ok &= check_estimates(env, run_final, run_close, preds, labels)
    ok &= h.report(not fields and len(run_final) >= 17,
                   "replay: the same baseline and drops as run, metric by metric",
                   f"({len(run_final)} windows) {fields[:4]}")
    return ok


def main():
    env = h.Env(partitions=2, name="baseline")
    receiver = h.Receiver()
    receiver.up()
    env.config(ref_windows=3, horizon=f"{HORIZON_S}s", idle="10s", webhook_url=receiver.url)
    watch = h.ReportWatch(env, [START_MS + i * WINDOW_MS
                                for i in range(COUNT // EPS // 60 + 1)])
    gen = env.gen(*GEN, "--rate", "1200", truth=False, background=True)
    run = env.start_run("run1")

    def final_cursor():
        return int(env.redis("GET", "{dw:dwtest}:cursor_final:fraud") or 0)

    try:
        # kill -9 while the baseline is collected: two of its three windows merged
        h.wait_for(lambda: final_cursor() >= START_MS + 2 * WINDOW_MS, 300,
                   "two reference windows final")
        run.send_signal(signal.SIGKILL)
        run.wait()
        stored = json.loads(env.redis("GET", "{dw:dwtest}:baseline:fraud") or "{}")
        ok = h.report(len(stored.get("windows", [])) in (2, 3) and stored.get("needed") == 3,
                      "the baseline's state in Redis across kill -9",
                      f"({stored.get('windows')} of {stored.get('needed')})")
        run = env.start_run("run2")
        h.wait_for(lambda: final_cursor() > LAST_FINAL, 300, "final reports up to minute 18")
        time.sleep(1)
    finally:
        watch.done()
    ok &= h.report(gen.wait(120) == 0, "traffic produced")
    final = {s: r for s, r in watch.final.items() if s <= LAST_FINAL}
    closes = [watch.close[s] for s in sorted(watch.close)]

    # the baseline: three reference windows, final counts, within 0.02 of 0.9
    ready = [final[s] for s in sorted(final) if final[s]["baseline"]["status"] == "ready"]
    base = ready[0]["baseline"] if ready else {}
    ok &= h.report(len(final) == 19 and len(ready) == 17,
                   "every final report up to minute 18; the baseline ready from the third",
                   f"({len(final)} final, {len(ready)} ready)")
    ok &= h.report(base.get("source") == "windows" and base.get("windows") == 3 and
                   abs(base.get("accuracy", 0) - 0.9) <= 0.02,
                   "baseline accuracy within 0.02 of 0.9, from the 3 reference windows",
                   f"{ {k: base.get(k) for k in ('source', 'windows', 'accuracy', 'labeled_share')} }")
    ok &= h.report(all(r["baseline"] == base for r in ready), "the same baseline in every report")

    # close reports before it: waiting, with a labeled share that only grows
    waiting = [r["baseline"] for r in closes if r["baseline"]["status"] != "ready"]
    shares = [b.get("labeled_share") for b in waiting]
    ok &= h.report(len(waiting) >= 6 and
                   all(b["status"] == "waiting_for_labels" for b in waiting) and
                   all(isinstance(s, float) and 0 <= s <= 1 for s in shares) and
                   shares == sorted(shares) and shares[-1] > 0 and
                   all(r["baseline"]["status"] == "ready" for r in closes[len(waiting):]),
                   "close reports before the baseline say waiting_for_labels with a labeled_share",
                   f"({len(waiting)} of {len(closes)} close reports: {shares})")

    # the labels' drift: judged on final reports against the baseline's final labels
    lab = [(r["window_start"], r["label_drift"].get("status"), r["label_drift"].get("source"))
           for r in ready]
    ok &= h.report(all(st == "ready" and src == "baseline" for _, st, src in lab) and
                   all(final[s]["label_drift"]["status"] == "waiting_for_baseline"
                       for s in final if final[s]["baseline"]["status"] != "ready") and
                   all(r["label_drift"]["status"] == "not_final" for r in closes),
                   "label_drift: not final at close, judged against the baseline's labels after",
                   f"{lab[:2]}")

    # drops: near 0 before the accuracy falls, at least 0.25 after
    before = [(r["window_start"], r["performance"]["drop"]["accuracy"]) for r in ready
              if r["window_start_ms"] < FIRST_DRIFTED]
    after = [(r["window_start"], r["performance"]["drop"]["accuracy"]) for r in ready
             if r["window_start_ms"] >= FIRST_DRIFTED]
    ok &= h.report(len(before) == 6 and all(abs(d) < 0.05 for _, d in before),
                   "|performance.drop.accuracy| < 0.05 before the drop", f"{before}")
    ok &= h.report(len(after) == 11 and all(d >= 0.25 for _, d in after),
                   "performance.drop.accuracy >= 0.25 on the drifted windows' final reports",
                   f"{after[:3]}")

    # the built-in rule, on the first drifted window's final report
    notes = [b for b in receiver.bodies(accepted_only=True) for a in b.get("alerts", [])
             if a["rule"] == "accuracy_drop" and a["status"] == "firing"]
    first = notes[0] if notes else {}
    drop = first.get("report", {}).get("performance_drop", {})
    ok &= h.report(first.get("window_start") == "2026-01-01T00:08:00Z" and
                   first.get("stage") == "final" and drop.get("alert") is True and
                   drop.get("metric") == "accuracy" and drop.get("value", 0) >= 0.25,
                   "the built-in accuracy_drop rule fires on the first drifted window's final report",
                   f"({[(n['window_start'], n['stage']) for n in notes[:2]]})")

    ok &= h.finish_consumer(run)
    ok &= check_replay(env, final, watch.close)
    if not ok:
        print(env.log("run2")[-3000:])
    env.close()
    receiver.down()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
