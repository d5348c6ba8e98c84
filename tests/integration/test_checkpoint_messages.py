"""A checkpoint is taken once checkpoint.max_messages were consumed, before its interval.

gen -> run with `checkpoint.interval: 1h` and `checkpoint.max_messages: 1000`: an hour-long
interval never comes during the test, so every checkpoint is one that the message count made
due. Once every message is consumed:

- driftwatch_checkpoint_rounds_total{reason="messages"} counts several rounds, the interval's
  none;
- the partitions' checkpointed offsets in Redis cover all but the messages consumed since the
  last of those rounds (fewer than max_messages and one poll's batch); without the count they
  would all still be waiting for the interval, and Redis would hold no offset;
- stopped, the consumer writes the rest, and the per-window counts in Redis are gen's truth
  exactly: checkpoints made due by messages commit state and offsets together like the others.
"""
import sys

import harness as h

MAX_MESSAGES = 1000
BATCH = 2048  # messages the loop takes per poll at most (RUN_BATCH in dw_run.c)


def main():
    env = h.Env(partitions=4, name="ckptmsgs")
    env.config(checkpoint="1h", extra=f"checkpoint.max_messages: {MAX_MESSAGES}\n")
    truth, summary = env.gen("--count", "6000", "--eps", "50", "--label-delay", "20")
    total = summary["predictions"] + summary["label_events"]
    run = env.start_run()

    def consumed():
        return sum(env.metric("driftwatch_messages_consumed_total", f'topic="{t}"') or 0
                   for t in ("predictions", "labels"))

    h.wait_for(lambda: consumed() >= total, 90, f"{total} messages consumed")
    by_messages = env.metric("driftwatch_checkpoint_rounds_total", 'reason="messages"') or 0
    by_interval = env.metric("driftwatch_checkpoint_rounds_total", 'reason="interval"')
    ok = h.report(by_messages >= total // (MAX_MESSAGES + BATCH),
                  "checkpoint rounds made due by the messages consumed",
                  f"{by_messages:.0f} rounds for {total} messages")
    ok &= h.report(by_interval == 0, "no round made due by the hour-long interval",
                   f"{by_interval}")
    stored = h.committed_offsets(env)
    ok &= h.report(stored >= total - MAX_MESSAGES - BATCH,
                   "the checkpointed offsets cover all but the last round's messages",
                   f"{stored} of {total}")

    ok &= h.report(h.finish_consumer(run), "consumer stopped cleanly")
    diffs = h.compare_with_truth(env.inspect(), truth)
    ok &= h.report(not diffs, "exact per-window counts after the stop", f"{diffs[:5]}")
    return h.close(env, ok)


if __name__ == "__main__":
    sys.exit(main())
