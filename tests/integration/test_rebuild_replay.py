"""A partition rebuilt after `driftwatch state drop` counts its windows exactly again.

The rebuild reads the partition's topics from the earliest offset, through windows the group
closed and merged long ago. Before each checkpoint every consumer drops the sketches of the
windows before the close cursor; a checkpoint that fell while the rebuild was in the middle of
such a window used to make the rest of its predictions late (CI once found 1,439 of 1,500 in
test_corrupt_state, where it happened by chance). Here the rebuild fetches in small pieces
(gen's batches of 20 messages, max.partition.fetch.bytes 64 KiB: about 160 predictions a
fetch) from a broker that answers after 100 ms, so that its replay spans many checkpoints and
they fall inside the replayed windows (the mock keeps only a few MiB a partition, so the
backlog itself cannot be much longer): the totals equal gen's truth, and the rebuilt
partition counts no late prediction."""
import sys

import harness as h

PARTS = 2


def reported(env, truth):
    """Whether the close evaluation has reported (and so merged) every window of the truth."""
    return all(env.redis("EXISTS", f"{{dw:dwtest}}:report:{t['model']}:"
                                   f"{t['window_start_ms']}") == "1" for t in truth)


def main():
    env = h.Env(partitions=PARTS, name="rebuild")
    env.config(idle="2s", kafka={"max.partition.fetch.bytes": 65536})
    # batches of 20 messages in the log: a fetch returns whole batches, however small its limit
    truth, _ = env.gen("--count", "18000", "--eps", "100", "--label-share", "0.8",
                       "--label-delay", "5", "-X", "batch.num.messages=20")
    closed = truth[:-1]  # the last window ends with the traffic: it never closes
    proc = env.start_run()
    ok = h.report(not h.wait_exact(env, truth, 90), "first pass exact")
    ok &= h.report(h.eventually(lambda: reported(env, closed), 60),
                   f"the {len(closed)} windows before the last closed and merged before the drop")
    r = env.state_cmd("drop", "--partition", "0", "--yes")
    ok &= h.report(r.returncode == 1 and "is live" in r.stderr and
                   env.redis("EXISTS", "{dw:dwtest:predictions:0}:meta") == "1",
                   "state drop refuses a partition its consumer holds", r.stderr.strip()[:200])
    ok &= h.report(h.finish_consumer(proc), "first pass stopped cleanly")

    # no --force: the consumer that checkpointed it a moment ago let it go when it stopped
    r = env.state_cmd("drop", "--partition", "0", "--yes")
    ok &= h.report(r.returncode == 0, "state drop --partition 0 --yes after a clean stop",
                   r.stderr.strip())
    env.broker_rtt(1, 100)
    proc = env.start_run()
    diffs = h.wait_exact(env, truth, 90)
    ok &= h.report(not diffs, "partition 0 rebuilt: exact totals", f"{diffs[:3]}")
    m = env.part_meta(0)
    late = sum(w.get("late_predictions", 0) for w in env.inspect() or []) + \
        int(m.get("late_predictions") or 0)
    ok &= h.report(late == 0, "no prediction counted late", f"({late})")
    ckpts = int(m.get("ckpt_seq") or 0)
    ok &= h.report(ckpts >= 3, "the rebuild checkpointed along the way", f"({ckpts} checkpoints)")
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
