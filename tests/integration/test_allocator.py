"""driftwatch hands its free heap back to the system through the allocator it runs on.

glibc's malloc by default (malloc_trim); an operator may preload tcmalloc for less CPU per
message (docs/scaling.md, "Another allocator"), whose free pages malloc_trim() does not see.
Two runs of the same small traffic, each on its own Redis and broker:

- plain: the "started" log line says allocator glibc, and
  driftwatch_heap_releases_total{allocator="glibc"} counts the releases after bursts and
  evaluations;
- LD_PRELOAD=libtcmalloc_minimal.so.4: the line says tcmalloc and the releases are counted
  under allocator="tcmalloc" (tcmalloc's own release was called, not malloc_trim);
- in both, the state equals gen's truth exactly and no release is counted under the other
  allocator's label.
"""
import ctypes.util
import sys

import harness as h


def one_run(allocator, environ):
    env = h.Env(partitions=4, name=f"alloc-{allocator}")
    env.config(idle="2s")
    ok, _ = h.run_exact(env, f"on {allocator}", count=6000, environ=environ)
    started = [e for e in h.log_entries(env.log()) if e.get("msg") == "started"]
    ok &= h.report(started and started[0].get("allocator") == allocator,
                   f"the started line says allocator {allocator}", f"{started[:1]}")

    def releases(name):
        return env.metric("driftwatch_heap_releases_total", f'allocator="{name}"') or 0

    ok &= h.report(h.eventually(lambda: releases(allocator) > 0, 30),
                   f"free heap released through {allocator}", f"{releases(allocator)}")
    other = "glibc" if allocator == "tcmalloc" else "tcmalloc"
    ok &= h.report(releases(other) == 0, f"none released through {other}", f"{releases(other)}")
    env.close()
    return ok


def main():
    lib = ctypes.util.find_library("tcmalloc_minimal")
    ok = h.report(lib is not None, "libtcmalloc_minimal is installed (scripts/deps.sh)", f"{lib}")
    if not ok:
        return 1
    ok &= one_run("glibc", None)
    ok &= one_run("tcmalloc", {"LD_PRELOAD": lib})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
