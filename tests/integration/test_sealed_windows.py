"""A partition seals a window once its own watermark passed it, whatever the close evaluation.

gen -> run (4 partitions, one-minute windows) with the evaluation held off (evaluation.interval
one hour), so that no window is closed by the evaluator while the partitions read on:

- every partition's record of a window its watermark passed is sealed: the record (`w:`) is
  small and says so in its flags, and its sealed copy (`ws:`) holds the sketches; the window
  still open on the partitions has no sealed copy;
- `inspect` (which merges the partitions' records, sealed copies included) still equals gen's
  truth exactly, feature counts included;

then the run is stopped and started again with the evaluation on (the sealed records are
loaded as they are):

- every window's close report carries gen's exact feature counts (the sealed copies were
  merged), and no evaluation failed;
- once merged, the sealed copies are deleted and the records stay small.
"""
import json
import sys

import harness as h

MODEL = "fraud"
FLAG_SEALED = 0x2  # the aggregate encoding's flags byte (dw_agg.c)
FLAGS_AT = 9  # u8 version, i64 start: the flags byte follows


def keys(env, kind, start="*"):
    return env.redis("--scan", "--pattern", f"{{dw:dwtest:*}}:{kind}:{MODEL}:{start}").split()


def flags(env, key):
    # redis-cli prints binary safely only through --no-raw escaping; GETRANGE of one byte is
    # enough: ask for its integer with BITFIELD
    out = env.redis("BITFIELD", key, "GET", "u8", str(8 * FLAGS_AT))
    return int(out.split()[0])


def main():
    env = h.Env(partitions=4, name="sealed")
    env.config(idle="2s", horizon="600s", evaluation="1h")
    truth, _ = env.gen("--count", "12000", "--eps", "40", "--label-delay", "5",
                       "--label-share", "0.9")
    assert len(truth) >= 4, truth
    starts = sorted(t["window_start_ms"] for t in truth)
    run = env.start_run()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "exact per-window counts with sealed records", f"{diffs[:5]}")

    sealed_ok, small_ok, copies = True, True, 0
    for ws in starts[:-1]:
        for k in keys(env, "w", ws):
            copy = k.replace(f":w:{MODEL}:", f":ws:{MODEL}:")
            sealed_ok &= bool(flags(env, k) & FLAG_SEALED) and env.redis("EXISTS", copy) == "1"
            if env.redis("EXISTS", copy) == "1":
                copies += 1
                small_ok &= int(env.redis("STRLEN", k)) * 3 < int(env.redis("STRLEN", copy))
    ok &= h.report(sealed_ok and copies > 0, "windows behind every watermark are sealed",
                   f"{copies} sealed copies")
    ok &= h.report(small_ok, "a sealed record is small beside its copy")
    last_copies = keys(env, "ws", starts[-1])
    last_sealed = [k for k in keys(env, "w", starts[-1]) if flags(env, k) & FLAG_SEALED]
    ok &= h.report(not last_copies and not last_sealed, "the open window is not sealed",
                   f"{last_copies} {last_sealed}")
    ok &= h.report(env.redis("GET", f"{{dw:dwtest}}:cursor:{MODEL}") in ("", None),
                   "no window was evaluated meanwhile")

    run.terminate()
    run.wait(30)
    env.config(idle="2s", horizon="600s")
    env.start_run("run2")

    def cursor():
        cur = env.redis("GET", f"{{dw:dwtest}}:cursor:{MODEL}")
        return int(cur) if cur else 0

    h.wait_for(lambda: cursor() >= starts[-1], 90, "every window but the last evaluated at close")
    by_start = {t["window_start_ms"]: t for t in truth}
    exact = 0
    for ws in starts[:-1]:
        rep = json.loads(env.redis("GET", f"{{dw:dwtest}}:report:{MODEL}:{ws}") or "null") or {}
        feats = rep.get("features") or {}
        want = by_start[ws]["features"]
        if all(feats.get(f, {}).get("count") == tf["count"] for f, tf in want.items()):
            exact += 1
    ok &= h.report(exact == len(starts) - 1, "close reports carry exact feature counts",
                   f"{exact} of {len(starts) - 1}")
    failures = env.metric("driftwatch_window_evaluation_failures_total") or 0
    ok &= h.report(failures == 0, "no evaluation failed", f"{failures}")

    def copies_gone():
        return all(not keys(env, "ws", ws) for ws in starts[:-1])

    ok &= h.report(h.eventually(copies_gone, 30), "merged windows' sealed copies are deleted",
                   f"{[k for ws in starts[:-1] for k in keys(env, 'ws', ws)][:4]}")
    ok &= h.report(not h.compare_with_truth(env.inspect(), truth), "counts exact after the merge")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
