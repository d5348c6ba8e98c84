#!/usr/bin/env python3
"""How long the evaluation stalls the consumption of the pod that runs it.

A backlog of closed windows (5 models, `--windows` windows of 10 s each) is loaded before one
`driftwatch run` starts (evaluation.interval `--interval`, 5 s: the first tick finds the whole
backlog consumed and its windows closed, up to 64 windows per model and stage); while it
evaluates them, a second gen streams new predictions and
labels at a fixed wall-clock rate (`--rate` messages per second). The script samples
driftwatch_messages_consumed_total (both topics) and driftwatch_windows_evaluated_total every
`--sample` seconds and prints the longest run of samples in which the consumed counter did not
move while the evaluated counter did (a stall of the consuming loop by the evaluation), how
many evaluations ran meanwhile and how much of the loop's time went to the evaluate phase
(driftwatch_loop_seconds_total) from the sample before that run to the one after it, and the longest such run without evaluations (the live
stream's own gaps: the noise floor of the figure).

    python3 bench/eval_stall.py [--bin build/driftwatch] [--windows 120] [--rate 2000]
                                [--interval 5s]

Run it with the binary before and after a change of the evaluation; a figure is the median of
several runs (bench/RESULTS.md). Not run by CI: it measures, it asserts nothing.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))

MODELS = ["fraud", "churn", "ranker", "spam", "credit"]
WINDOW_S = 10
EPS = 20
T0 = 1767225600000


def consumed(env):
    a = env.metric("driftwatch_messages_consumed_total", 'topic="predictions"')
    b = env.metric("driftwatch_messages_consumed_total", 'topic="labels"')
    return None if a is None or b is None else a + b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("--windows", type=int, default=120)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--sample", type=float, default=0.2)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", default="5s", help="evaluation.interval")
    args = ap.parse_args()
    if args.bin:
        os.environ["DRIFTWATCH_BIN"] = os.path.abspath(args.bin)
    import harness as h  # after DRIFTWATCH_BIN is set

    env = h.Env(partitions=4, name="evalstall")
    features = h.run_gen_models().split("\n", 2)[2]  # the fraud model's body
    models = "models:\n" + "".join(f"  {m}:\n{features}" for m in MODELS)
    env.config(models=models, window_size=f"{WINDOW_S}s", horizon="20s", idle="60s",
               evaluation=args.interval, checkpoint="500ms")
    count = args.windows * WINDOW_S * EPS
    for i, m in enumerate(MODELS):
        env.gen("--model", m, "--seed", str(i + 1), "--count", str(count), "--eps", str(EPS),
                "--label-delay", "2", truth=False)
    live_start = T0 + args.windows * WINDOW_S * 1000
    proc = env.start_run()
    h.wait_for(lambda: consumed(env), 60, "the first scrape")
    # the live stream: one model, a fixed rate, event time after the backlog
    live = env.gen("--model", "fraud", "--seed", "99", "--count",
                   str(int(args.rate * args.seconds / 2)), "--eps", str(EPS), "--start",
                   str(live_start), "--rate", str(args.rate), "--label-delay", "2",
                   truth=False, background=True)
    samples = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        samples.append((time.monotonic(), consumed(env),
                        env.metric("driftwatch_windows_evaluated_total"),
                        env.metric("driftwatch_loop_seconds_total", 'phase="evaluate"')))
        time.sleep(args.sample)
    live.wait(60)
    if os.environ.get("EVAL_STALL_TRACE"):
        for t, c, e, ph in samples:
            print(f"{t - samples[0][0]:6.2f} consumed={c} evaluated={e} evaluate_s={ph}")
    # maximal runs of samples with the same consumed count: the time from the first to the
    # last sample of a run is a lower bound of a pause of consumption; a run during which the
    # evaluated count moved is a pause while evaluating, the others are the live stream's own
    # gaps (its producer sends in batches): the noise floor
    worst, worst_evals, worst_phase, floor, i = 0.0, 0, 0.0, 0.0, 0
    while i < len(samples):
        j = i
        while j + 1 < len(samples) and samples[j + 1][1] == samples[i][1]:
            j += 1
        gap = samples[j][0] - samples[i][0]
        evals = (samples[j][2] or 0) - (samples[i][2] or 0)
        # the loop's time in the evaluate phase from the sample before the run to the one after
        # it (a phase is counted when it ends)
        phase = (samples[min(j + 1, len(samples) - 1)][3] or 0) - (samples[max(i - 1, 0)][3] or 0)
        if evals > 0 and gap > worst:
            worst, worst_evals, worst_phase = gap, evals, phase
        elif evals == 0:
            floor = max(floor, gap)
        i = j + 1
    total_evals = samples[-1][2] - samples[0][2] if samples[-1][2] is not None else 0
    print(f"binary: {h.BIN}")
    print(f"backlog: {len(MODELS)} models x {args.windows} windows; live stream {args.rate} msg/s;"
          f" evaluation.interval {args.interval}")
    print(f"evaluations during the sampling: {total_evals:.0f}")
    print(f"longest gap without consumption while evaluating: {worst:.2f} s "
          f"({worst_evals:.0f} evaluations in it, {worst_phase:.2f} s of the loop in the "
          f"evaluate phase; sampled every {args.sample} s)")
    print(f"longest gap without consumption nor evaluation (the stream's own): {floor:.2f} s")
    proc.terminate()
    proc.wait(30)
    env.close()


if __name__ == "__main__":
    main()
