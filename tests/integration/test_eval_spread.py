"""Evaluation spread over pods: three pods, five models, a lease per model.

- once the three pods have met (the pods set), each evaluates at most ceil(5 / 3) = 2 models,
  together all five, each model on one pod (/status `evaluating`, driftwatch_models_evaluating);
- every (model, window, stage) is evaluated exactly once: one "window closed" and one "window
  final" log line over all the pods' logs, driftwatch_windows_evaluated_total of the pods sums
  to exactly models x windows x stages, and one final report per window and model is stored;
- kill -9 of a pod that evaluates two models: the two others take them over within one lease
  period (5 s here: max(5 s, 10 x evaluation.interval)) plus a few ticks, each at most 3 models;
- the windows produced after that are evaluated exactly once as well, by the survivors.
"""
import json
import os
import signal
import sys
import time

import harness as h

MODELS = ["fraud", "churn", "ranker", "spam", "credit"]
WINDOW_MS = 60000
T0 = 1767225600000  # gen's default --start
EPS = 10
LEASE_S = 5.0


def status(port):
    st, text = h.Env.http_get(type("P", (), {"http_port": port})(), "/status")
    return json.loads(text) if st == 200 else None


def metric(port, name):
    st, text = h.Env.http_get(type("P", (), {"http_port": port})(), "/metrics")
    for line in text.splitlines() if st == 200 else ():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def evaluating(ports):
    """{port: [models]} of the pods that answer."""
    out = {}
    for p in ports:
        s = status(p)
        if s is not None:
            out[p] = s.get("evaluating", [])
    return out


def spread(ports, max_each):
    """The pods' lists when every model is on exactly one pod and none has more than max_each
    (the lists and driftwatch_models_evaluating agree), else None."""
    ev = evaluating(ports)
    if len(ev) != len(ports):
        return None
    every = sorted(m for ms in ev.values() for m in ms)
    if every != sorted(MODELS) or any(len(ms) > max_each for ms in ev.values()):
        return None
    if any(metric(p, "driftwatch_models_evaluating") != len(ms) for p, ms in ev.items()):
        return None
    return ev


def log_events(env, names):
    """[(pod, model, window_start, stage)] of every pod's "window closed" / "window final"."""
    out = []
    for name in names:
        for line in env.log(name).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") in ("window closed", "window final"):
                out.append((name, rec["model"], rec["window_start"],
                            "final" if rec["msg"] == "window final" else "close"))
    return out


def produce(env, first, n):
    """Windows first .. first + n - 1 of every model, one window of all the models at a time
    (the five gens of a window run together): a window closes once the partitions' clocks pass
    it, which only the next window's traffic does, so no model's events come after their
    window closed. The last window of the traffic stays open (idleness closes what the clocks
    passed, no more), and the final stage waits for the label horizon (60 s of event time)."""
    for k in range(first, first + n):
        gens = [env.gen("--model", m, "--seed", str(100 * k + i + 1), "--count", str(60 * EPS),
                        "--eps", str(EPS), "--label-delay", "5", "--start",
                        str(T0 + k * WINDOW_MS), truth=False, background=True)
                for i, m in enumerate(MODELS)]
        for g in gens:
            assert g.wait(120) == 0, "gen failed"


def window_name(k):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + k * WINDOW_MS) / 1000))


def expected(closed, final):
    """The (model, window, stage) evaluations of windows 0 .. closed - 1 (close) and
    0 .. final - 1 (final)."""
    return {(m, window_name(k), stage) for m in MODELS
            for stage, upto in (("close", closed), ("final", final)) for k in range(upto)}


def tally(events):
    seen = {}
    for _, m, ws, stage in events:
        seen[(m, ws, stage)] = seen.get((m, ws, stage), 0) + 1
    return seen


def settled(env, names, want):
    return set(tally(log_events(env, names))) >= want


def exactly_once(events, want):
    """Problems: an expected evaluation done other than once, or one not expected."""
    seen = tally(events)
    bad = [(k, seen.get(k, 0)) for k in sorted(want) if seen.get(k, 0) != 1]
    return bad + [(k, n) for k, n in sorted(seen.items()) if k not in want]


def finals_stored(env, model, n):
    """The stored report of each window 0 .. n - 1 of model is its final one."""
    for k in range(n):
        text = env.redis("GET", f"{{dw:dwtest}}:report:{model}:{T0 + k * WINDOW_MS}")
        if not text.startswith("{") or json.loads(text).get("stage") != "final":
            return False
    return True


def wait_or_dump(env, ports, pred, timeout, what):
    try:
        return h.wait_for(pred, timeout, what)
    except AssertionError:
        for p in ports:
            st = status(p) or {}
            print(p, st.get("evaluating"), st.get("global_watermark_ms"), st.get("windows_held"))
        raise


def main():
    env = h.Env(partitions=3, name="evalspread")
    features = h.run_gen_models().split("\n", 2)[2]  # the body of gen's model
    models = "models:\n" + "".join(f"  {m}:\n{features}" for m in MODELS)
    env.config(models=models, horizon="60s", idle="5s", rolling=2)
    procs, names, ports = [env.start_run("run")], ["run"], [env.http_port]
    for name in ("pod2", "pod3"):
        ports.append(env.start_pod(name))
        procs.append(env.procs[-1])
        names.append(name)
    pod_of = dict(zip(ports, zip(procs, names)))
    ok = True

    ev = h.wait_for(lambda: spread(ports, 2), 60, "five models spread over three pods")
    ok &= h.report(True, "each pod evaluates at most 2 of the 5 models, all 5 on one pod each",
                   str(ev))

    # windows 0-4: 0-3 closed, 0-2 final
    produce(env, 0, 5)
    want = expected(4, 3)
    wait_or_dump(env, ports, lambda: settled(env, names, want), 60, "phase 1 evaluations")
    counts = {p: metric(p, "driftwatch_windows_evaluated_total") for p in ports}
    bad = exactly_once(log_events(env, names), want)
    ok &= h.report(not bad, "phase 1: every (model, window, stage) evaluated exactly once",
                   str(bad))
    ok &= h.report(sum(counts.values()) == len(want),
                   f"phase 1: windows_evaluated_total sums to {len(want)} over the pods",
                   str(counts))
    ok &= h.report(all(finals_stored(env, m, 3) for m in MODELS),
                   "phase 1: one final report stored per window and model")
    by_pod = {}
    for name, m, _, _ in log_events(env, names):
        by_pod.setdefault(name, set()).add(m)
    ok &= h.report(all(len(ms) <= 2 for ms in by_pod.values()) and len(by_pod) == 3,
                   "phase 1: the evaluations were spread, at most 2 models per pod",
                   str({k: sorted(v) for k, v in by_pod.items()}))

    # kill -9 a pod that evaluates two models
    ev = spread(ports, 2) or evaluating(ports)
    victim = next(p for p, ms in ev.items() if len(ms) == 2)
    moved = ev[victim]
    proc, victim_name = pod_of[victim]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    survivors = [p for p in ports if p != victim]
    h.wait_for(lambda: spread(survivors, 3), 3 * LEASE_S, "the survivors take every model")
    took = time.monotonic() - killed
    ok &= h.report(took <= LEASE_S + 2.0,
                   f"{moved} taken over within one lease period ({LEASE_S} s) and a few ticks",
                   f"({took:.1f} s: {evaluating(survivors)})")

    before = {p: counts[p] for p in survivors}
    # windows 5-9: 4-8 closed, 3-7 final
    produce(env, 5, 5)
    want2 = expected(9, 8)
    wait_or_dump(env, survivors, lambda: settled(env, names, want2), 60, "phase 2 evaluations")
    events = log_events(env, names)
    bad = exactly_once(events, want2)
    ok &= h.report(not bad, "phase 2: every (model, window, stage) evaluated exactly once",
                   str(bad))
    ok &= h.report(all(finals_stored(env, m, 8) for m in MODELS),
                   "phase 2: one final report stored per window and model")
    victims = [e for e in events if e[0] == victim_name and e not in
               [(victim_name, m, ws, st) for (m, ws, st) in want]]
    ok &= h.report(not victims, "phase 2: nothing evaluated by the killed pod", str(victims))
    after = {p: metric(p, "driftwatch_windows_evaluated_total") for p in survivors}
    ok &= h.report(sum(after[p] - before[p] for p in survivors) == len(want2) - len(want),
                   f"phase 2: the survivors' windows_evaluated_total grew by exactly "
                   f"{len(want2) - len(want)}", f"{before} -> {after}")
    # the two pods left shut down cleanly (SIGTERM: leases released, exit 0)
    for p in survivors[1:]:
        ok &= h.report(h.finish_consumer(pod_of[p][0]), f"{pod_of[p][1]} stopped cleanly")
    if not ok:
        for name in names:
            print(f"---- {name}")
            print(env.log(name)[-3000:])
    return h.finish(env, pod_of[survivors[0]][0], ok)


if __name__ == "__main__":
    sys.exit(main())
