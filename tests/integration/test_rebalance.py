"""Rebalance: a second consumer joins mid-run and the first one leaves mid-run, while traffic
flows; the final per-window state equals the ground truth exactly."""
import os
import shutil
import sys
import threading
import time

import harness as h


def main():
    env = h.Env(partitions=6, name="rebalance")
    cfg_a = env.config()
    cfg_b = os.path.join(env.dir, "b.yaml")
    port_b = h.free_port()
    with open(cfg_a) as f:
        text = f.read()
    with open(cfg_b, "w") as f:
        f.write(text.replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{port_b}"))
    done = {}

    def produce():
        done["truth"] = env.gen("--count", "60000", "--eps", "100", "--rate", "8000",
                                "--early-labels", "0.1", "--duplicate-labels", "0.05",
                                "--versions", "1.0.0,2.0.0", "--label-delay", "20")

    producer = threading.Thread(target=produce)
    producer.start()
    a = env.start_run("a")
    time.sleep(4)
    env.config_path = cfg_b
    b = env.start_run("b")  # joins mid-run
    time.sleep(8)
    a.terminate()  # leaves mid-run
    rc_a = a.wait(timeout=30)
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 180)
    ok = h.report(rc_a == 0, "leaving consumer exited cleanly", f"rc={rc_a}")
    ok &= h.report(not diffs, "exact counts across join and leave", f"{diffs[:5]}")
    log_b = env.log("b")
    ok &= h.report("partition assigned" in log_b, "joining consumer got partitions")
    if diffs:
        print(env.log("a")[-3000:], log_b[-3000:])
    b.terminate()
    b.wait(timeout=30)
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
