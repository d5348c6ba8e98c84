"""A window's partition records live until their last reader, then only its summary stays.

gen -> run (4 partitions, one-minute windows, a label horizon of one window, rolling views of
two windows, partitions idle after 2 s so that the last windows are evaluated too). Once the
final cursor has stopped:

- no partition holds a record (`w:`) of a window before final cursor - (rolling_windows - 1)
  windows, the point from which the rolling views and the final evaluation still read
  (dw_evaluator_records_before), and no kept set lists one;
- the windows from that point on keep their records (they are still read);
- every window evaluated at the label horizon has its summary (`summary:<model>:<start>`),
  with a PX retention;
- `inspect` still equals gen's truth exactly, features included: the old windows come from
  their summaries;
- after a kill -9 and a restart nothing deleted comes back and the counts stay exact.
"""
import sys
import time

import harness as h

MODEL = "fraud"
ROLLING = 2


def main():
    env = h.Env(partitions=4, name="winrec")
    env.config(idle="2s", horizon="60s", rolling=ROLLING)
    truth, _ = env.gen("--count", "16000", "--eps", "40", "--label-delay", "5",
                       "--label-share", "0.9")
    starts = sorted(t["window_start_ms"] for t in truth)
    assert len(starts) >= 6, starts
    width = starts[1] - starts[0]
    run = env.start_run()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "exact per-window counts", f"{diffs[:5]}")

    def final_cursor():
        cur = env.redis("GET", f"{{dw:dwtest}}:cursor_final:{MODEL}")
        return int(cur) if cur else 0

    h.wait_for(lambda: final_cursor() > starts[3], 90, "four windows evaluated at the horizon")
    last = [final_cursor(), time.time()]

    def settled():
        cur = final_cursor()
        if cur != last[0]:
            last[:] = [cur, time.time()]
        return cur if time.time() - last[1] > 3 else None

    final = h.wait_for(settled, 60, "the final cursor stops")
    before = final - (ROLLING - 1) * width

    def records():
        keys = env.redis("--scan", "--pattern", "{dw:dwtest:*}:w:" + MODEL + ":*").split()
        return sorted(int(k.rsplit(":", 1)[1]) for k in keys)

    def none_before():
        return [ws for ws in records() if ws < before] == []

    ok &= h.report(h.eventually(none_before, 30),
                   "no partition record before the last reader's window",
                   f"before {before}: {[ws for ws in records() if ws < before]}")
    wanted = {ws for ws in starts if ws >= before}
    ok &= h.report(wanted <= set(records()), "records still read are kept",
                   f"missing {sorted(wanted - set(records()))}")
    kept = []
    for p in range(4):
        kept += env.redis("SMEMBERS", f"{{dw:dwtest:predictions:{p}}}:kept").splitlines()
    listed_old = [m for m in kept if m and int(m.split("\t")[1]) < before]
    ok &= h.report(not listed_old, "kept sets list no deleted window", f"{listed_old}")

    evaluated = [ws for ws in starts if ws < final]
    missing = [ws for ws in evaluated
               if env.redis("EXISTS", f"{{dw:dwtest}}:summary:{MODEL}:{ws}") != "1"]
    ttls = [int(env.redis("PTTL", f"{{dw:dwtest}}:summary:{MODEL}:{ws}")) for ws in evaluated]
    ok &= h.report(evaluated and not missing and min(ttls) > 0,
                   "a summary per window evaluated at the horizon, with a retention",
                   f"{len(evaluated)} windows, missing {missing}, PTTL min {min(ttls or [0])}")
    diffs = h.compare_with_truth(env.inspect(), truth)
    ok &= h.report(not diffs, "inspect exact from summaries and records", f"{diffs[:5]}")

    run.kill()
    run.wait()
    env.start_run("run2")
    time.sleep(5)
    back = [ws for ws in records() if ws < before]
    ok &= h.report(not back, "nothing deleted comes back after kill -9", f"{back}")
    diffs = h.wait_exact(env, truth, 60)
    ok &= h.report(not diffs, "exact after the restart", f"{diffs[:5]}")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
