"""gen -> run against dev-broker and redis-server: every window's predictions, labeled, correct,
duplicates, conflicts, per-version counts and per-feature count/missing equal gen's ground
truth exactly, with labels that arrive first, duplicate and conflicting labels, missing values
and malformed messages in the stream."""
import sys
import time

import harness as h


def main():
    env = h.Env(partitions=4, name="exact")
    env.config()
    truth, summary = env.gen("--count", "30000", "--eps", "50", "--early-labels", "0.1",
                             "--duplicate-labels", "0.05", "--missing", "0.02",
                             "--versions", "1.0.0,1.1.0", "--malformed", "0.01",
                             "--label-share", "0.9", "--label-delay", "20")
    assert len(truth) >= 10, truth
    env.start_run()
    t0 = time.time()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "exact per-window counts", f"({len(truth)} windows, "
                  f"{time.time() - t0:.1f}s) {diffs[:5]}")
    bad = sum(summary["malformed"].values())
    consumed = h.wait_for(lambda: env.metric("driftwatch_messages_consumed_total",
                                             'topic="predictions"'), 10, "metrics")
    invalid = sum(env.metric("driftwatch_messages_invalid_total", f'reason="{r}"') or 0
                  for r in summary["malformed"])
    ok &= h.report(consumed == summary["predictions"] + bad, "predictions consumed",
                   f"{consumed} == {summary['predictions']} + {bad}")
    ok &= h.report(invalid == bad, "invalid messages counted", f"{invalid} == {bad}")
    # gen's topics have contiguous offsets: a gap is a message the consumer skipped (the one
    # dropped after an empty batch, once), an offset without a message a wrong hole
    skipped = {name: sum(env.metric(name, f'topic="{t}"') or 0 for t in ("predictions", "labels"))
               for name in ("driftwatch_kafka_fetch_gaps_total",
                            "driftwatch_kafka_offsets_without_message_total")}
    ok &= h.report(not any(skipped.values()), "no offset skipped, no hole", f"{skipped}")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
