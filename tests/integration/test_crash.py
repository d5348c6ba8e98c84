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
    env.config(extra="", checkpoint="300ms")
    # Traffic produced while the consumer runs (and dies): about 12 s of messages.
    gen_args = ["--count", "60000", "--eps", "100", "--rate", "10000", "--early-labels", "0.1",
                "--duplicate-labels", "0.05", "--missing", "0.02", "--malformed", "0.005",
                "--versions", "1.0.0,2.0.0", "--label-delay", "20"]
    done = {}

    def produce():
        done["truth"] = env.gen(*gen_args)

    producer = threading.Thread(target=produce)
    producer.start()
    proc = env.start_run()
    kills = 0
    while kills < KILLS:
        time.sleep(rnd.uniform(0.5, 2.5))
        proc.kill()  # SIGKILL: no checkpoint, no goodbye
        proc.wait()
        kills += 1
        print(f"killed the consumer ({kills}/{KILLS})", flush=True)
        proc = env.start_run()
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 180)
    ok = h.report(not diffs, f"exact counts after {kills} kill -9 restarts",
                  f"({len(truth)} windows) {diffs[:5]}")
    if diffs:
        print(env.log()[-4000:])
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
