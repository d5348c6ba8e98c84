"""Where a process's resident memory is, from /proc/PID/smaps: the heap, the anonymous mappings
(glibc's thread arenas are 64 MiB reservations; the join's pools and tables, and malloc's
blocks above its mmap threshold, are mappings of their own), the thread stacks and the files.
Prints the totals by kind and the largest anonymous mappings. Used by bench/run.sh
(BENCH_SMAPS=1).

    python3 bench/smaps.py PID            now
    python3 bench/smaps.py --peak PID     samples every 50 ms until SIGTERM (or the process
                                          ends), then prints the sample of the highest RSS
"""
import signal
import sys
import time


def mappings(pid):
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"kib": (hi - lo) // 1024, "name": head[5] if len(head) > 5 else "",
                       "rss": 0}
                yield cur
            elif head[0] == "Rss:":
                cur["rss"] = int(head[1])


def kind(m):
    if m["name"] == "[heap]":
        return "heap (main arena)"
    if m["name"].startswith("[stack"):
        return "main stack"
    if m["name"].startswith("/"):
        return "files (code, libraries)"
    if m["name"]:
        return m["name"]
    return "anonymous"


def report(maps, what):
    totals = by_kind(maps)
    print(f"smaps {what}: resident KiB {sum(totals.values())}, by kind: " +
          ", ".join(f"{k} {v}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v))
    anon = sorted((m for m in maps if kind(m) == "anonymous" and m["rss"] > 0),
                  key=lambda m: -m["rss"])
    print(f"smaps {what}: {len(anon)} resident anonymous mappings; the largest (resident / size "
          "KiB): " + ", ".join(f"{m['rss']}/{m['kib']}" for m in anon[:12]))
    sys.stdout.flush()


def by_kind(maps):
    totals = {}
    for m in maps:
        totals[kind(m)] = totals.get(kind(m), 0) + m["rss"]
    return totals


def peak(pid):
    """Also prints, once a second, the resident MiB then (all, heap, anonymous): when the peak
    came."""
    best, best_t, stop, series, t0 = None, 0.0, [], [], time.time()
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        try:
            maps = list(mappings(pid))
        except (OSError, AttributeError):
            break
        t = time.time() - t0
        if best is None or sum(m["rss"] for m in maps) > sum(m["rss"] for m in best):
            best, best_t = maps, t
        if not series or t - series[-1][0] >= 1.0:
            k = by_kind(maps)
            series.append((t, sum(k.values()), k.get("heap (main arena)", 0),
                           k.get("anonymous", 0)))
        time.sleep(0.05)
    if best:
        print("smaps each second (s: all/heap/anonymous MiB): " +
              ", ".join(f"{t:.0f}: {a / 1024:.0f}/{h / 1024:.0f}/{n / 1024:.0f}"
                        for t, a, h, n in series))
        report(best, f"at the highest RSS sampled ({best_t:.1f} s after the start)")


if sys.argv[1] == "--peak":
    peak(int(sys.argv[2]))
else:
    report(list(mappings(int(sys.argv[1]))), "now")
