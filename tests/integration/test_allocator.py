"""driftwatch hands its free heap back to the system through the allocator it runs on.

glibc's malloc by default (malloc_trim); an operator may preload mimalloc or tcmalloc for less
CPU per message (docs/scaling.md, "Another allocator"), whose free pages malloc_trim() does not
see. Three runs of the same small traffic, each on its own Redis and broker:

- plain: the "started" log line says allocator glibc, and
  driftwatch_heap_releases_total{allocator="glibc"} counts the releases after bursts and
  evaluations;
- LD_PRELOAD=libmimalloc.so.2: the line says mimalloc and the releases are counted under
  allocator="mimalloc" (mi_collect was called, not malloc_trim);
- LD_PRELOAD=libtcmalloc_minimal.so.4: the same with tcmalloc (MallocExtension_ReleaseFreeMemory);
- in each, the state equals gen's truth exactly and no release is counted under another
  allocator's label.
"""
import ctypes.util
import sys

import harness as h

ALLOCATORS = ("glibc", "mimalloc", "tcmalloc")


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
    others = {a: releases(a) for a in ALLOCATORS if a != allocator}
    ok &= h.report(not any(others.values()), "none released through another allocator",
                   f"{others}")
    env.close()
    return ok


def main():
    libs = {a: ctypes.util.find_library(name)
            for a, name in (("mimalloc", "mimalloc"), ("tcmalloc", "tcmalloc_minimal"))}
    ok = h.report(all(libs.values()), "libmimalloc and libtcmalloc_minimal are installed "
                  "(scripts/deps.sh)", f"{libs}")
    if not ok:
        return 1
    ok &= one_run("glibc", None)
    for allocator, lib in libs.items():
        ok &= one_run(allocator, {"LD_PRELOAD": lib})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
