"""Resident memory of `driftwatch run` apart from the join records: the figure the default of
join.max_records is derived from (docs/design.md, "Memory bounds").

Runs the model of deploy/kustomize/base/driftwatch.yaml (2 numeric and 2 categorical features,
gen's traffic) over one hour of event time, so that every window of the default 1 h label horizon is in
memory, on P partitions (the mock cluster keeps ~5 MiB per partition, hence many of them),
then reads the process's RSS, the windows and join records it holds, and prints the memory per
window and the rest. Everything runs on 127.0.0.1 (harness of tests/integration).

    python3 bench/process_memory.py [PREDICTIONS] [PARTITIONS]    (defaults 360000 and 48)
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness as h  # noqa: E402

# Bytes per join record, bench/RESULTS.md (resident, at the slot table's fullest point).
JOIN_BYTES = 128


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 360_000
    parts = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    env = h.Env(partitions=parts, name="procmem")
    env.config(models=h.run_gen_models(numeric=2, categorical=2), horizon="1h", idle="30s")
    eps = n / 3600.0
    env.gen("--count", str(n), "--eps", f"{eps:.3f}", "--numeric", "2", "--categorical", "2",
            "--label-share", "0.9", "--label-delay", "30", truth=False)
    run = env.start_run()
    h.wait_for(lambda: env.metric("driftwatch_partitions_assigned") == parts, 60, "assignment")
    time.sleep(1)
    base = rss_kib(run.pid)
    def consumed():
        return sum(env.metric("driftwatch_messages_consumed_total", f'topic="{t}"') or 0
                   for t in ("predictions", "labels"))

    # n predictions and about 0.9 n labels; then until nothing more arrives for 5 s.
    h.wait_for(lambda: consumed() >= 1.85 * n, 600, "catch up")
    last = -1
    while consumed() != last:
        last = consumed()
        time.sleep(5)
    rss = rss_kib(run.pid)
    wins = env.metric("driftwatch_windows_open")
    recs = env.metric("driftwatch_join_records")
    join_kib = recs * JOIN_BYTES / 1024
    per_window = (rss - base - join_kib) / wins
    print(f"partitions {parts} predictions {n} windows_open {wins:.0f} join_records {recs:.0f}")
    print(f"rss_start_mib {base / 1024:.1f} rss_mib {rss / 1024:.1f} "
          f"join_mib {join_kib / 1024:.1f} per_window_kib {per_window:.1f}")
    env.close()


if __name__ == "__main__":
    main()
