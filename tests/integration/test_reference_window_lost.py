"""A reference window's stored aggregate that cannot be read: the reference is collected again.

reference.windows 3. A first run sees three windows and closes two (the first two reference
windows: their aggregates are kept as `refagg:` until the third closes; the third stays open, as
the last window does until event time passes it) and stops; the second window's aggregate is
then overwritten with bytes that are not an aggregate. A second run sees three more windows: at
the close of the third the reference would be complete, the first window's aggregate is read,
the second's is not ("reference window unreadable; collecting the reference again"), and the
collection starts over from the third window (the first two windows' aggregates are deleted); the
reference is built from it and the next two, and no `refagg:` key is left.

The consumer must exit 0 when stopped: under the sanitizer build (scripts/test.sh runs this test
against it) an aggregate read before the unreadable one and not freed is a leak, and LeakSanitizer
fails the exit.
"""
import json
import subprocess
import sys

import harness as h

MODEL = "fraud"
MINUTE = 60000
START_MS = 1767225600000  # gen's default --start, 2026-01-01T00:00:00Z


def refwins(env):
    text = env.redis("GET", "{dw:dwtest}:refwins:" + MODEL)
    return json.loads(text) if text else []


def reference_doc(env):
    """`driftwatch reference show` of the model: what it is judged against, or None."""
    r = subprocess.run([h.BIN, "reference", "show", "--model", MODEL, "-c", env.config_path],
                       capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout) if r.returncode == 0 and r.stdout.startswith("{") else None

    ref = doc and doc.get("reference")
    return ref if ref and ref.get("stored") else None


def main():
    env = h.Env(partitions=2, name="reflost")
    env.config(idle="2s", ref_windows=3)
    # three windows of event time: 00:00, 00:01 and half of 00:02
    env.gen("--count", "7500", "--eps", "50", "--seed", "1")
    run = env.start_run()
    listed = h.wait_for(lambda: len(refwins(env)) == 2 and refwins(env), 60,
                        "the first two windows listed for the reference")
    ok = h.report(listed == [START_MS, START_MS + MINUTE], "two reference windows collected",
                  f"{listed}")
    ok &= h.report(h.finish_consumer(run), "first run stopped cleanly")

    lost = "{dw:dwtest}:refagg:" + MODEL + ":" + str(START_MS + MINUTE)
    ok &= h.report(env.redis("EXISTS", lost) == "1", "the second window's aggregate is stored")
    env.redis("SET", lost, "not an aggregate")

    # three more windows: 00:03, 00:04, 00:05 (00:02 to 00:04 close)
    env.gen("--count", "9000", "--eps", "50", "--seed", "2", "--start", str(START_MS + 3 * MINUTE))
    run = env.start_run()
    doc = h.wait_for(lambda: reference_doc(env), 90, "the reference built")
    ok &= h.report("reference window unreadable" in env.log(),
                   "the unreadable window is logged")
    ok &= h.report(doc and doc.get("windows") == 3 and
                   doc.get("first_window_start") == "2026-01-01T00:02:00Z",
                   "the reference collected again from the second run's windows",
                   f"windows {doc and doc.get('windows')}, first {doc and doc.get('first_window_start')}")
    left = env.redis("--scan", "--pattern", "{dw:dwtest}:refagg:*").split()
    ok &= h.report(not left, "no reference window's aggregate left once built, the first "
                   "collection's included", f"{left}")
    return h.finish(env, run, ok)


if __name__ == "__main__":
    sys.exit(main())
