"""One bad clock must not ruin a partition or the evaluator.

gen traffic on four partitions in two parts (2026-01-01 00:00-00:03, then 2026-01-02 00:00:30 to
00:03:30: a gap of 1437 empty windows between them, more than the evaluator reads in one tick); between the parts, three events with broken clocks are
produced into partition 1 with kcat (so with a normal Kafka timestamp, the producer's wall
clock): a prediction stamped 2036, a prediction stamped 1971 and a label stamped 2036.

Before bounds on event time, the 2036 prediction made every later prediction of partition 1
late and the 2036 label expired its waiting predictions; the global watermark jumped to 2036
once partitions went idle and the evaluator walked toward it writing one report key per empty
window; the 1971 one could start the evaluation cursor in 1971.

Checked here: the three are dead-lettered as timestamp_out_of_range (counted and logged); every
other prediction and label is counted exactly (gen's truth); no prediction is late, no label
late, no prediction expired; the evaluator's report keys in Redis are the real windows plus ONE
report for the gap (empty_windows: 1437) - no walk from 1971, none towards 2036."""
import json
import subprocess
import sys

import harness as h

WINDOW_MS = 60_000
BAD_PREDICTIONS = [
    {"prediction_id": "bad-future", "model": "fraud", "timestamp": "2036-01-01T00:00:00Z",
     "features": {"amount": 1.0}, "prediction": 1},
    {"prediction_id": "bad-past", "model": "fraud", "timestamp": "1971-01-01T00:00:00Z",
     "features": {"amount": 1.0}, "prediction": 1},
]
BAD_LABELS = [{"prediction_id": "bad-label", "label": 1, "timestamp": "2036-01-01T00:00:00Z"}]
BAD_PARTITION = 1


def kcat_produce(env, topic, events):
    lines = "".join(f"{e['prediction_id']}\t{json.dumps(e)}\n" for e in events)
    subprocess.run(["kcat", "-b", env.bootstrap, "-P", "-t", topic, "-p", str(BAD_PARTITION),
                    "-K", "\t"], input=lines, text=True, check=True, timeout=60)


def report_starts(env):
    keys = env.redis("--scan", "--pattern", "{dw:dwtest}:report:fraud:*").split()
    return sorted(int(k.rsplit(":", 1)[1]) for k in keys)


def meta_sum(env, field):
    total = 0
    for p in range(env.partitions):
        v = env.redis("HGET", f"{{dw:dwtest:predictions:{p}}}:meta", field)
        total += int(v or 0)
    return total


def main():
    env = h.Env(partitions=4, name="badclock")
    # A label horizon longer than the traffic: only the close-stage cursor runs, so each report
    # key holds the close report (the final stage would rewrite a key with its own, shorter
    # run while the label clock is behind: the same code, checked in the unit tests).
    env.config(idle="3s", horizon="48h")
    truth_a, sum_a = env.gen("--count", "9000", "--eps", "50", "--label-delay", "5",
                             "--seed", "1", "--start", "2026-01-01T00:00:00Z")
    kcat_produce(env, "predictions", BAD_PREDICTIONS)
    kcat_produce(env, "labels", BAD_LABELS)
    truth_b, sum_b = env.gen("--count", "9000", "--eps", "50", "--label-delay", "5",
                             "--seed", "2", "--start", "2026-01-02T00:00:30Z")
    truth = truth_a + truth_b
    env.start_run()

    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "every other prediction and label counted exactly",
                  f"({len(truth)} windows) {diffs[:5]}")

    try:
        h.wait_for(lambda: len(env.kcat("driftwatch-dead-letter")) >= 3, 30, "dead letters")
    except AssertionError:
        pass
    letters = env.kcat("driftwatch-dead-letter")
    got = sorted((json.loads(v)["topic"], k, json.loads(v)["reason"], json.loads(v)["partition"])
                 for k, v in letters)
    want = sorted([("predictions", "bad-future", "timestamp_out_of_range", BAD_PARTITION),
                   ("predictions", "bad-past", "timestamp_out_of_range", BAD_PARTITION),
                   ("labels", "bad-label", "timestamp_out_of_range", BAD_PARTITION)])
    ok &= h.report(got == want, "the three bad clocks dead-lettered as timestamp_out_of_range",
                   f"got {got}")
    errors = [json.loads(v)["error"] for _, v in letters]
    ok &= h.report(errors and all("input.max_" in e and "Kafka timestamp" in e for e in errors),
                   "each error names the bound and the Kafka timestamp", f"{errors}")
    invalid = env.metric("driftwatch_messages_invalid_total", 'reason="timestamp_out_of_range"')
    ok &= h.report(invalid == 3, "counted in driftwatch_messages_invalid_total", f"{invalid}")
    ok &= h.report("timestamp_out_of_range" in env.log(), "logged")

    late = env.metric("driftwatch_late_predictions_total")
    ok &= h.report(late == 0, "no prediction late", f"{late}")
    counters = {f: meta_sum(env, f) for f in ("predictions", "labels", "late_predictions",
                                              "late_labels", "expired_predictions",
                                              "expired_labels")}
    want_counters = {"predictions": sum_a["predictions"] + sum_b["predictions"],
                     "labels": sum_a["label_events"] + sum_b["label_events"],
                     "late_predictions": 0, "late_labels": 0, "expired_predictions": 0,
                     "expired_labels": 0}
    ok &= h.report(counters == want_counters, "partition counters: nothing late or expired",
                   f"got {counters} want {want_counters}")

    # Windows close on the watermark (max event time - 5 s lateness, idle partitions included):
    # every truth window but the last, and the gap 00:03 to 00:00 the next day as one report.
    starts = sorted(t["window_start_ms"] for t in truth)
    gap_start = truth_a[-1]["window_start_ms"] + WINDOW_MS
    gap_end = truth_b[0]["window_start_ms"]
    want_keys = sorted(starts[:-1] + [gap_start])
    try:
        h.wait_for(lambda: report_starts(env) == want_keys, 60, "the window reports")
    except AssertionError:
        pass
    keys = report_starts(env)
    ok &= h.report(keys == want_keys, "report keys: the real windows and one for the gap",
                   f"got {keys[:8]}{'...' if len(keys) > 8 else ''} ({len(keys)} keys), "
                   f"want {want_keys}")
    ok &= h.report(keys[:1] == starts[:1], "the cursor started at the first real window",
                   f"first key {keys[:1]}, first window {starts[:1]}")
    gap = json.loads(env.redis("GET", f"{{dw:dwtest}}:report:fraud:{gap_start}") or "{}")
    ok &= h.report(gap.get("predictions") == 0 and gap.get("empty_windows") ==
                   (gap_end - gap_start) // WINDOW_MS and
                   gap.get("window_start") == "2026-01-01T00:03:00Z" and
                   gap.get("window_end") == "2026-01-02T00:00:00Z",
                   "the gap is one report: predictions 0, empty_windows 1437",
                   f"{ {k: gap.get(k) for k in ('window_start', 'window_end', 'predictions', 'empty_windows')} }")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
