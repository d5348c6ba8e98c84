"""Windows keep their feature sketches only until the close evaluation has merged them.

gen -> run (4 partitions, 3 numeric and 2 categorical features, one-minute windows, a label
horizon of one window). Once the windows before the last have been evaluated at close and the
first four at the label horizon (the last windows wait for event time to pass them):

- every partition's aggregate of a merged window says `sketches_dropped` and its Redis record
  is small (counts, moments and the labels' classes), while the per-window counts stay exactly
  gen's truth, features included (`inspect`);
- driftwatch_window_sketches_dropped_total counts those partition windows;
- the reference was built (`ref:<model>`) and the merged reference windows kept for it while
  it was collected (`refagg:`) are gone;
- each final report carries the feature statistics and drift verdicts of its close report
  (the log's "window closed" and "window final" lines agree) with gen's exact feature counts.
"""
import json
import sys

import harness as h

MODEL = "fraud"
# bytes: what a merged window keeps per partition besides its labelled scores is below this: its
# counts and moments, and the labels' distribution (kept until the label horizon, where the final
# report judges the label drift: about 100 bytes for two classes); a feature's sketch that was
# not dropped is ~5 KB here (600 values of 8 bytes)
SMALL = 1536


def log_events(env, msg):
    out = {}
    for line in env.log().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == msg and rec.get("model") == MODEL:
            out[rec["window_start"]] = rec
    return out


def main():
    env = h.Env(partitions=4, name="winmem")
    env.config(idle="2s", horizon="60s")
    truth, _ = env.gen("--count", "16000", "--eps", "40", "--label-delay", "5",
                       "--label-share", "0.9")
    assert len(truth) >= 5, truth
    env.start_run()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "exact per-window counts, features included", f"{diffs[:5]}")

    starts = sorted(t["window_start_ms"] for t in truth)

    def cursor(name):
        cur = env.redis("GET", f"{{dw:dwtest}}:{name}:{MODEL}")
        return int(cur) if cur else None

    h.wait_for(lambda: (cursor("cursor") or 0) >= starts[-1], 60,
               "every window but the last evaluated at close")
    h.wait_for(lambda: (cursor("cursor_final") or 0) > starts[3], 60,
               "four windows evaluated at the label horizon")
    closed_upto = cursor("cursor")

    def merged_all():
        state = env.inspect() or []
        merged = [w for w in state if w["window_start_ms"] < closed_upto]
        return merged if merged and all(w.get("sketches_dropped") for w in merged) else None

    merged = h.wait_for(merged_all, 30, "sketches dropped in every merged window")
    ok &= h.report(len(merged) == len(truth) - 1, "every window merged and dropped",
                   f"{len(merged)} of {len(truth)} (the last one is still open)")
    ok &= h.report(not h.compare_with_truth(env.inspect(), truth),
                   "counts exact after the drop")

    keys = [k for k in env.redis("--scan", "--pattern", "{dw:dwtest:*}:w:" + MODEL + ":*").split()
            if int(k.rsplit(":", 1)[1]) < closed_upto]
    by_window = {}
    for k in keys:
        ws = int(k.rsplit(":", 1)[1])
        by_window[ws] = by_window.get(ws, 0) + int(env.redis("STRLEN", k))
    labeled = {t["window_start_ms"]: t["labeled"] for t in truth}
    # what stays: counts and the labels' classes (under SMALL bytes a partition) and the labelled
    # scores (8 bytes each)
    over = {ws: b for ws, b in by_window.items() if b > 4 * SMALL + 8 * labeled[ws]}
    ok &= h.report(by_window and not over, "merged windows keep counts and scores only",
                   f"{len(by_window)} windows, over the bound: {over}")
    open_keys = env.redis("--scan", "--pattern", f"{{dw:dwtest:*}}:w:{MODEL}:{starts[-1]}").split()
    open_sizes = [int(env.redis("STRLEN", k)) for k in open_keys]
    ok &= h.report(open_sizes and min(open_sizes) > 8 * SMALL, "the open window keeps its sketches",
                   f"smallest {min(open_sizes or [0])} bytes")
    dropped = env.metric("driftwatch_window_sketches_dropped_total") or 0
    ok &= h.report(dropped == len(keys), "driftwatch_window_sketches_dropped_total",
                   f"{dropped} == {len(keys)}")

    ok &= h.report(env.redis("EXISTS", "{dw:dwtest}:ref:" + MODEL) == "1", "reference built")
    left = env.redis("--scan", "--pattern", "{dw:dwtest}:refagg:*").split()
    ok &= h.report(not left, "reference windows' aggregates deleted once built", f"{left}")

    closed, final = log_events(env, "window closed"), log_events(env, "window final")
    judged = [ws for ws in final if ws in closed and closed[ws]["predictions"] > 0]
    same = [ws for ws in judged if final[ws]["drift"] == closed[ws]["drift"]]
    ok &= h.report(judged and len(same) == len(judged),
                   "final reports keep the close reports' drift",
                   f"{len(same)} of {len(judged)} windows")
    by_start = {t["window_start_ms"]: t for t in truth}
    counted, finals = 0, 0
    for t in truth:
        rep = json.loads(env.redis("GET", f"{{dw:dwtest}}:report:{MODEL}:{t['window_start_ms']}")
                         or "null")
        if not rep or not rep.get("final"):
            continue
        finals += 1
        feats = rep.get("features") or {}
        want = by_start[t["window_start_ms"]]["features"]
        if all(feats.get(f, {}).get("count") == tf["count"] for f, tf in want.items()):
            counted += 1
    ok &= h.report(finals >= 4 and counted == finals, "final reports carry exact feature counts",
                   f"{counted} of {finals}")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
