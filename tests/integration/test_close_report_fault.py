"""A close report that cannot be read at the final evaluation makes the window wait.

A window's final report takes its feature statistics and drift from the window's close report
(the partitions dropped their sketches once it was committed). A read of it that failed (here
the key made a hash, which GET refuses with WRONGTYPE, as a read fails when Redis errs) used to
look like "no close report": the final report was committed with its drift unavailable, for
ever, although the close report was there. Now the final evaluation fails, says which key in
the log, counts it, and waits; once the key reads again the final report has the close
report's drift. (A close report that is really gone, or is not JSON, still gives a final report
that says the drift is unavailable: retrying cannot bring it back.)
"""
import json
import sys
import time

import harness as h

T0 = 1767225600000
W = 60000


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def main():
    env = h.Env(partitions=2, name="closefault")
    env.config(idle="300s", horizon="300s", ref_windows=1)
    key = f"{{dw:dwtest}}:report:fraud:{T0 + W}"
    env.gen("--seed", "1", "--start", iso(T0), "--count", "2400", "--eps", "10", "--label-delay",
            "2", truth=False)  # windows 0-3
    run = env.start_run()
    ok = True
    try:
        h.wait_for(lambda: env.redis("GET", key).startswith("{"), 60, "close report of window 1")
        close = env.redis("GET", key)
        ok &= h.report(not json.loads(close)["final"], "window 1's close report is stored")
        env.redis("DEL", key)
        env.redis("HSET", key, "not", "a string")
        # the clocks pass window 1's horizon (and 2's)
        env.gen("--seed", "2", "--start", iso(T0 + 4 * W), "--count", "2400", "--eps", "10",
                "--label-delay", "2", truth=False)
        logged = h.eventually(lambda: key in env.log() and "unreadable" in env.log(), 30)
        ok &= h.report(logged, "the failed read is logged with its key", env.log()[-500:])
        cursor = lambda: int(env.redis("GET", "{dw:dwtest}:cursor_final:fraud") or 0)
        time.sleep(2)
        ok &= h.report(cursor() <= T0 + W and env.redis("TYPE", key) == "hash",
                       "the final evaluation waits; the key is left as it was",
                       f"(cursor_final {cursor()}, {env.redis('TYPE', key)})")
        failures = env.metric("driftwatch_window_evaluation_failures_total") or 0
        ok &= h.report(failures > 0, "counted in driftwatch_window_evaluation_failures_total",
                       f"{failures}")
        env.redis("SET", key, close)  # one command: SET replaces the hash (a DEL first left
        # a moment where the final evaluation found the report gone, and gave up its drift)
        h.wait_for(lambda: cursor() > T0 + W, 60, "window 1's final evaluation")
        final = json.loads(env.redis("GET", key))
        ok &= h.report(final["final"] and final["features"] is not None and
                       final["drift"] == json.loads(close)["drift"],
                       "readable again: the final report has the close report's drift",
                       f"{final.get('drift')}")
    finally:
        ok &= h.report(h.finish_consumer(run), "consumer stopped cleanly")
    return h.close(env, ok)


if __name__ == "__main__":
    sys.exit(main())
