"""Replay is the backtest of run: the same traffic through `driftwatch run` (dev-broker +
redis-server) and through `driftwatch replay -c` gives the same reports, field by field.

The traffic (`driftwatch gen`, 10 s windows, 24 windows of event time a day ago): labels about
8 s after their predictions (some after the 30 s label horizon), early labels (a label stamped
and produced before its prediction), duplicate labels with conflicts, two model versions, a
shift of `amount` from window 15 on; the test adds predictions late for their window (12 s
behind the newest, the allowed lateness being 2 s) and repeated prediction ids, and at the end
a tick event every 5 s for a minute, that moves run's clocks past the last window's horizon
(their windows are not compared: the last ones close and become final on the same event). Everything goes
to partition 0 of both topics; partition 1 stays idle (excluded after window.idle_timeout). The
reference is the first 3 windows. The labels are produced at once, the predictions at ten times
event time, so that run closes window after window and each close report can be read from
Redis before the final report replaces it.

Then `driftwatch replay -c` over the same two files, and every report of run (close and final,
of every window of the traffic) must have its twin in replay's output, every field equal
(integers exactly, reals to 1e-12 relative), except the fields listed in CLOSE_TIMING and ANY_TIMING with their reason.
"""
import calendar
import json
import os
import subprocess
import sys
import time
from datetime import datetime

import harness as h

WINDOW_MS = 10000
EPS = 20                  # 200 predictions per window: under the per-partition sketch's exact
COUNT = 24 * 10 * EPS     # capacity, so that run's statistics are exact as replay's
LATE_EVERY = 97           # a late copy after every 97th prediction
LATE_BY_MS = 12000        # its timestamp: 12 s before the prediction it follows
DUP_EVERY = 311           # a repeated prediction id after every 311th prediction
SPEED = 10                # event time produced per second of wall time
FLUSH_AFTER_MS = 60000    # ticks up to the last window's end + lateness + horizon, and more
TICK_MS = 5000
GEN_MODELS = ["--numeric", "3", "--categorical", "2"]

# Fields of a close report that depend on when run's evaluator ran, not on the traffic: which
# labels (and late predictions) its consumer had read when the window closed, and which
# windows were final by then (the baseline, its drops, the rolling view). Replay counts what
# arrived before the close in its arrival order; run read the labels topic at its own pace.
CLOSE_TIMING = {
    "labeled", "correct", "unlabeled_share", "performance", "duplicate_labels", "conflicts",
    "late_predictions", "rolling", "baseline", "accuracy_drop", "performance_drop",
    "versions.*.labeled", "versions.*.performance",
}
# Reals are equal to 1e-12 relative, not to the last bit: sums over labels (log loss, Brier) and
# over categories (PSI, chi-squared) are accumulated in the order the events and categories came,
# and run read the two topics in another interleaving than replay's arrival order.
REL_TOLERANCE = 1e-12
# In every report: the reference's accuracy is frozen from the labels its windows held when the
# last of them closed (the performance baseline, from their final counts, is what judges).
# And when it was built: the wall clock of run's evaluator, of replay's process.
ANY_TIMING = {"reference.accuracy", "reference.created_at"}


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + \
        f".{ms % 1000:03d}Z"


def ms_of(ts):
    d = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ" if "." in ts else "%Y-%m-%dT%H:%M:%SZ")
    return calendar.timegm(d.timetuple()) * 1000 + d.microsecond // 1000


def make_traffic(work, start_ms):
    """gen's files, plus late predictions, repeated ids and the ticks at the end."""
    gp, gl = os.path.join(work, "gen_p.jsonl"), os.path.join(work, "gen_l.jsonl")
    subprocess.run([h.BIN, "gen", "-q", "--seed", "11", "--count", str(COUNT), "--eps", str(EPS),
                    "--start", iso(start_ms), *GEN_MODELS, "--versions", "1.0.0,1.1.0",
                    "--label-delay", "8", "--early-labels", "0.05", "--duplicate-labels", "0.05",
                    "--drift-at", "150", "--drift-shift", "amount=2",
                    "--predictions-out", gp, "--labels-out", gl], check=True, timeout=120)
    preds, last = [], 0
    for i, line in enumerate(open(gp)):
        ev = json.loads(line)
        preds.append(ev)
        last = max(last, ms_of(ev["timestamp"]))
        if i % LATE_EVERY == LATE_EVERY - 1:
            late = dict(ev, prediction_id=f"late-{i}",
                        timestamp=iso(ms_of(ev["timestamp"]) - LATE_BY_MS))
            preds.append(late)
        if i % DUP_EVERY == DUP_EVERY - 1:
            preds.append(dict(ev, prediction=1 - ev["prediction"]))  # same id: a duplicate
    # ticks every TICK_MS up to FLUSH_AFTER_MS past the last window: each window of the traffic
    # closes, then becomes final, on a later tick (one event could not show both stages)
    end = last - last % WINDOW_MS + WINDOW_MS
    for t in range(end + TICK_MS // 2, end + FLUSH_AFTER_MS + 1, TICK_MS):
        preds.append(dict(preds[0], prediction_id=f"tick-{t}", timestamp=iso(t)))
    labels = [json.loads(line) for line in open(gl)]
    labels.append({"prediction_id": preds[-1]["prediction_id"], "label": 1,
                   "timestamp": preds[-1]["timestamp"]})
    paths = []
    for name, events in (("p.jsonl", preds), ("l.jsonl", labels)):
        path = os.path.join(work, name)
        with open(path, "w") as f:
            for ev in events:
                f.write(json.dumps(ev) + "\n")
        paths.append(path)
    when = {ev["prediction_id"]: ms_of(ev["timestamp"]) for ev in preds}
    early = sum(ms_of(lab["timestamp"]) < when[lab["prediction_id"]] for lab in labels)
    return paths[0], paths[1], preds, last - last % WINDOW_MS, early


def kcat_producer(env, topic):
    return subprocess.Popen(["kcat", "-P", "-b", env.bootstrap, "-t", topic, "-p", "0",
                             "-K", "\t"], stdin=subprocess.PIPE, text=True)


def produce(env, preds, labels_path):
    """The labels at once, the predictions at SPEED times event time, all to partition 0."""
    lab = kcat_producer(env, "labels")
    for line in open(labels_path):
        lab.stdin.write(json.loads(line)["prediction_id"] + "\t" + line)
    lab.stdin.close()
    assert lab.wait(60) == 0, "kcat (labels) failed"
    pred = kcat_producer(env, "predictions")
    t0, first = time.time(), ms_of(preds[0]["timestamp"])
    for ev in preds:
        due = (ms_of(ev["timestamp"]) - first) / 1000 / SPEED
        wait = due - (time.time() - t0)
        if wait > 0:
            pred.stdin.flush()
            time.sleep(wait)
        pred.stdin.write(ev["prediction_id"] + "\t" + json.dumps(ev) + "\n")
    pred.stdin.close()
    assert pred.wait(60) == 0, "kcat (predictions) failed"


def without(rep, paths):
    """A copy of report `rep` without the dotted paths (`*` matches any key)."""
    rep = json.loads(json.dumps(rep))

    def drop(obj, parts):
        if not isinstance(obj, dict):
            return
        keys = list(obj) if parts[0] == "*" else [parts[0]]
        for k in keys:
            if len(parts) == 1:
                obj.pop(k, None)
            else:
                drop(obj.get(k), parts[1:])
    for p in paths:
        drop(rep, p.split("."))
    return rep


def main():
    t_start = time.time()
    env = h.Env(partitions=2, name="backtest")
    env.config(models=h.run_gen_models(3, 2), window_size="10s", lateness="2s", idle="2s",
               horizon="30s", ref_windows=3, min_samples=50)
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - 86400000 - now_ms % 60000  # a day ago: within input.max_past_skew
    preds_path, labels_path, preds, last_window, early = make_traffic(env.dir, start_ms)
    starts = list(range(start_ms, last_window + WINDOW_MS, WINDOW_MS))
    watch = h.ReportWatch(env, starts, interval=0.05)
    run = env.start_run("run")
    ok = True
    try:
        h.wait_for(lambda: env.http_get("/readyz")[0] == 200, 60, "run ready")
        time.sleep(3)  # partition 1 idle (2 s at the end of its empty log)
        produce(env, preds, labels_path)
        h.wait_for(lambda: int(env.redis("GET", "{dw:dwtest}:cursor_final:fraud") or 0) >
                   last_window, 120, "every window of the traffic final")
        time.sleep(0.2)
    finally:
        watch.done()
    ok &= h.report(h.finish_consumer(run), "run stopped cleanly")
    t_run = time.time()

    r = subprocess.run([h.BIN, "replay", "-c", env.config_path, "--predictions", preds_path,
                        "--labels", labels_path], capture_output=True, text=True, timeout=120)
    ok &= h.report(r.returncode == 0, "replay ran", r.stderr[-500:])
    summary = json.loads(r.stderr.strip().splitlines()[-1])["replay"]
    replayed = {}
    for line in r.stdout.splitlines():
        rep = json.loads(line)
        replayed[(rep["stage"], rep["window_start_ms"])] = rep

    # the scenario holds what it must
    finals = [watch.final[s] for s in starts if s in watch.final]
    ok &= h.report(len(watch.close) == len(starts) and len(finals) == len(starts),
                   "run: a close and a final report of every window of the traffic",
                   f"({len(watch.close)} close, {len(finals)} final, {len(starts)} windows)")
    late = sum(f["late_predictions"] for f in finals)
    dups = sum(f["duplicate_labels"] for f in finals)
    lost = summary["late_labels"]
    ok &= h.report(late > 0 and dups > 0 and lost > 0 and early > 0 and
                   summary["duplicate_predictions"] > 0,
                   "late predictions, early labels, duplicate labels, labels after the horizon, "
                   "repeated ids", f"({late} late, {early} early, {dups} duplicate labels, "
                   f"{lost} late labels, {summary['duplicate_predictions']} repeated ids)")
    ready = [f for f in finals if f["baseline"]["status"] == "ready"]
    judged = [f for f in finals if f["window_start_ms"] not in starts[:3]]
    ok &= h.report(all(f["reference"]["windows"] == 3 for f in judged) and
                   ready and ready[0]["baseline"]["windows"] == 3 and
                   all(watch.close[s]["reference"]["status"] == "collecting" for s in starts[:3]),
                   "a reference of 3 windows, not judged; the baseline from their final counts")
    drifted = [f["window_start"] for f in finals if "amount" in f["drift"]["features"]]
    ok &= h.report(len(drifted) >= 8, "amount drifts from window 15 on", f"{drifted[:3]}")

    # every report of run, field by field
    diffs, compared = [], 0
    for stage, book in (("close", watch.close), ("final", watch.final)):
        skip = ANY_TIMING | (CLOSE_TIMING if stage == "close" else set())
        for s in starts:
            mine = replayed.get((stage, s))
            if mine is None:
                diffs.append(f"{stage} {iso(s)}: no replay report")
                continue
            d = h.json_diff(without(book[s], skip), without(mine, skip), REL_TOLERANCE)
            diffs += [f"{stage} {iso(s)} {x}" for x in d]
            compared += 1
    ok &= h.report(not diffs and compared == 2 * len(starts),
                   "replay's reports equal run's, field by field",
                   f"({compared} reports; {len(diffs)} differences: {diffs[:6]})")
    print(f"times: run {t_run - t_start:.1f}s, replay and checks {time.time() - t_run:.1f}s")
    if not ok:
        print(env.log("run")[-3000:])
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
