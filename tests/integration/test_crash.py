"""kill -9 the consumer at random moments while traffic flows, restart it each time: the final
per-window state equals the ground truth of one clean pass, exactly (nothing lost, nothing
counted twice)."""
import random
import subprocess
import sys
import threading
import time

import harness as h

KILLS = 6


def main():
    rnd = random.Random(int(time.time()))
    env = h.Env(partitions=4, name="crash")
    env.config(checkpoint="300ms", session_timeout=3000)
    # Traffic produced while the consumer runs (and dies): about 50 s of messages.
    gen_args = ["--count", "60000", "--eps", "100", "--rate", "2500", "--early-labels", "0.1",
                "--duplicate-labels", "0.05", "--missing", "0.02", "--malformed", "0.005",
                "--versions", "1.0.0,2.0.0", "--label-delay", "20"]
    done = {}

    def produce():
        done["truth"] = env.gen(*gen_args)

    producer = threading.Thread(target=produce)
    producer.start()
    proc = env.start_run()
    kills = 0
    progress = []
    stuck = 0
    while kills < KILLS:
        # Kill only a consumer that owns its partitions and is working: wait for this run's
        # assignment and its first checkpoint past the last kill's offsets (a fixed delay after
        # the assignment was too short on a loaded machine: CI saw four runs in a row killed
        # before they checkpointed), then a random moment.
        assigned = env.log().count("partition assigned")
        h.wait_for(lambda: env.log().count("partition assigned") >= assigned + 4 or
                   (kills == 0 and assigned >= 4), 60, "partition assignment")
        last = progress[-1] if progress else 0
        stuck += not h.eventually(lambda: h.committed_offsets(env) > last, 30)
        time.sleep(rnd.uniform(0.3, 2.0))
        proc.kill()  # SIGKILL: no checkpoint, no goodbye
        proc.wait()
        kills += 1
        progress.append(h.committed_offsets(env))
        print(f"killed the consumer ({kills}/{KILLS}) at checkpointed offsets {progress[-1]}",
              flush=True)
        proc = env.start_run()
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 180)
    ok = h.report(not diffs, f"exact counts after {kills} kill -9 restarts",
                  f"({len(truth)} windows) {diffs[:5]}")
    final = h.committed_offsets(env)
    moved = sum(1 for a, b in zip(progress, progress[1:]) if b > a)
    ok &= h.report(moved >= KILLS // 2 and stuck == 0, "consumer made progress between kills",
                   f"({moved} of {KILLS - 1} intervals; {stuck} restarts without a checkpoint "
                   "within 30 s)")
    ok &= h.report(progress[-1] < final, "kills happened before the stream was consumed",
                   f"({progress[-1]} < {final})")
    if diffs:
        print(env.log()[-4000:])
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
