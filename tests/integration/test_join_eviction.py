"""The join's bound is never a silent loss: with join.max_records at its least (1000) and 3,000
predictions that wait for labels that never come, the oldest records are evicted, and that is
counted (driftwatch_join_evicted_total, as many as the join no longer holds) and said in a
warning naming the bound, while every prediction is still counted in its window (gen's truth)."""
import json
import sys

import harness as h

N = 3000
BOUND = 1000


def main():
    env = h.Env(partitions=1, name="evict")
    env.config(idle="2s", extra=f"join:\n  max_records: {BOUND}\n")
    truth, _ = env.gen("--count", str(N), "--eps", "100", "--label-share", "0")
    env.start_run()
    diffs = h.wait_exact(env, truth, 60)
    ok = h.report(not diffs, "every prediction counted in its window", f"{diffs[:5]}")

    def settled():
        evicted = env.metric("driftwatch_join_evicted_total") or 0
        kept = env.metric("driftwatch_join_records")
        return (evicted, kept) if kept is not None and evicted + kept == N else None

    got = h.wait_for(settled, 30, "evictions counted")
    evicted, kept = got if got else (env.metric("driftwatch_join_evicted_total"),
                                     env.metric("driftwatch_join_records"))
    ok &= h.report(got is not None and kept <= BOUND and evicted >= N - BOUND,
                   "evicted records counted: evicted + kept = predictions, kept within the bound",
                   f"(evicted {evicted}, kept {kept})")
    warned = []
    for line in env.log().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg", "").startswith("join records evicted"):
            warned.append(rec)
    ok &= h.report(bool(warned) and warned[0].get("join_max_records") == BOUND and
                   warned[0].get("evicted", 0) > 0,
                   "a warning names the bound and the count", f"{warned[:1]}")
    env.close()
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
