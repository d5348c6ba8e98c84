"""Per-version serving evidence end to end (gen -> dev-broker -> run -> redis-server): a rollout
of two versions at 90/10 % traffic where 1.1.0 fails 20 % of its requests and answers 40 ms
slower. Redis state equals gen's truth exactly (served and errors per window and version), each
report's versions.<v>.serving.error_rate equals the truth's errors / served exactly, the
latency p95 of 1.1.0 is about 40 ms above 1.0.0's, and the final reports, computed after the
sketches were dropped, still carry each version's latency (taken from the close report)."""
import sys
import time

import harness as h

VERSIONS = ("1.0.0", "1.1.0")
DELTA_MS = 40.0
DELTA_TOL_MS = 12.0  # p95 of ~300 draws of 5 + Exp(10) ms: standard error ~2.5 ms


def check_report(rep, t):
    """Differences between one window report and its truth row."""
    errs = []
    sv = rep.get("serving") or {}
    if (sv.get("served"), sv.get("errors")) != (t["served"], t["errors"]):
        errs.append(f"serving {sv} != {t['served']}/{t['errors']}")
    for v, tv in t["versions"].items():
        rv = rep["versions"].get(v, {})
        s = rv.get("serving") or {}
        want = tv["errors"] / tv["served"]
        if s.get("error_rate") != want or s.get("availability") != 1.0 - want:
            errs.append(f"{v} serving {s} != error_rate {want}")
        if rv.get("share") != tv["predictions"] / t["predictions"]:
            errs.append(f"{v} share {rv.get('share')}")
    return errs


def latency_delta(rep):
    """p95 of 1.1.0 minus p95 of 1.0.0, or None when a version has too few latencies."""
    lat = [(rep["versions"].get(v) or {}).get("latency_ms") for v in VERSIONS]
    if any(not l or l["count"] < 200 for l in lat):
        return None
    return lat[1]["p95"] - lat[0]["p95"]


def main():
    env = h.Env(partitions=4, name="serving")
    env.config(horizon="40s", extra="input:\n  fields: {status: /status}\n")
    truth, _ = env.gen("--count", "20000", "--eps", "50", "--versions", ",".join(VERSIONS),
                       "--traffic", "90,10", "--status-field", "--version-errors", "1.1.0=0.2",
                       "--version-latency", "1.1.0=+40", "--label-delay", "2")
    assert len(truth) >= 6, truth
    assert all("served" in tv for t in truth for tv in t["versions"].values()), truth[0]
    watch = h.ReportWatch(env, [t["window_start_ms"] for t in truth], interval=0.1)
    proc = env.start_run()
    t0 = time.time()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "served and errors per window and version equal the truth",
                  f"({len(truth)} windows, {time.time() - t0:.1f}s) {diffs[:5]}")

    # the first windows reach their label horizon (40 s) within the traffic's 400 s
    h.wait_for(lambda: len(watch.final) >= 3, 120, "three final reports")
    time.sleep(1.0)
    watch.done()
    by_start = {t["window_start_ms"]: t for t in truth}
    reports = list(watch.close.values()) + list(watch.final.values())
    errs = []
    for rep in reports:
        errs += [f"{rep['window_start']} {rep['stage']}: {e}"
                 for e in check_report(rep, by_start[rep["window_start_ms"]])]
    ok &= h.report(reports and not errs, "error rates equal the truth exactly",
                   f"({len(reports)} reports) {errs[:5]}")

    deltas = {(r["window_start"], r["stage"]): latency_delta(r) for r in reports}
    judged = {k: d for k, d in deltas.items() if d is not None}
    far = {k: d for k, d in judged.items() if abs(d - DELTA_MS) > DELTA_TOL_MS}
    ok &= h.report(len(judged) >= 3 and not far, "latency p95 of 1.1.0 is ~40 ms higher",
                   f"{sorted(judged.items())[:6]} far: {far}")
    finals = [r for r in watch.final.values() if latency_delta(r) is not None]
    ok &= h.report(len(finals) >= 3, "final reports carry each version's latency of the close",
                   f"{len(finals)} of {len(watch.final)}")
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
