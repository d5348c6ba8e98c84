"""Evaluation state that cannot be read is never replaced by a fresh one.

The evaluator reads each model's alert state, trigger guardrail, change detectors, reference,
list of reference windows, baseline and reference generation before a window's step, and writes them back with (or
beside) the report and the cursor. A read that fails (here each key made a hash, which GET
refuses with WRONGTYPE, as a read can fail when Redis errs) used to look like "no state yet"
for the first four: the step started afresh and its commit overwrote the state, firing alerts
again, resetting the detectors, collecting and building a new reference, silently. Now the step fails, says which key
in the log, the cursor waits, and the key is left as it was; once the key is readable again
(deleted here) the evaluation goes on and the counts stay exact.
"""
import sys

import harness as h

MODEL = "fraud"
KEYS = ("alerts", "trigger", "errstream", "ref", "refwins", "baseline", "refgen")


def main():
    ok = True
    for kind in KEYS:
        env = h.Env(partitions=2, name="stateread")
        env.config(idle="2s", horizon="60s")
        key = f"{{dw:dwtest}}:{kind}:{MODEL}"
        env.redis("HSET", key, "not", "a string")
        ok &= check_one(env, kind, key)
        env.close()
    sys.exit(0 if ok else 1)


def check_one(env, kind, key):
    truth, _ = env.gen("--count", "3000", "--eps", "20", "--label-delay", "2")
    run = env.start_run(kind)
    ok = h.report(not h.wait_exact(env, truth, 90), f"{kind}: exact counts")
    logged = h.eventually(lambda: key in env.log(kind) and "unreadable" in env.log(kind), 30)
    ok &= h.report(logged, f"{kind}: the failed read is logged with its key",
                   env.log(kind)[-600:] if not logged else "")
    ok &= h.report(env.redis("TYPE", key) == "hash", f"{kind}: the key is left as it was",
                   env.redis("TYPE", key))
    cursor = env.redis("GET", f"{{dw:dwtest}}:cursor_final:{MODEL}")
    ok &= h.report(not cursor, f"{kind}: no window is evaluated at the horizon meanwhile",
                   f"cursor_final {cursor}")
    failures = env.metric("driftwatch_window_evaluation_failures_total") or 0
    ok &= h.report(failures > 0, f"{kind}: counted in driftwatch_window_evaluation_failures_total",
                   f"{failures}")
    env.redis("DEL", key)
    ended = h.eventually(lambda: env.redis("GET", f"{{dw:dwtest}}:cursor_final:{MODEL}"), 60)
    ok &= h.report(bool(ended), f"{kind}: readable again, the evaluation goes on")
    ok &= h.report(h.finish_consumer(run), f"{kind}: consumer stopped cleanly")
    if not ok:
        print(env.log(kind)[-3000:])
    return ok


if __name__ == "__main__":
    main()
