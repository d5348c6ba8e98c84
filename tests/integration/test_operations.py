"""Operations: /metrics passes `promtool check metrics`, /livez and /readyz answer, /status
shows partitions and reports; --check-config validates; a bad key is named; topics that are not
co-partitioned are refused with the reason; SIGTERM checkpoints and exits 0 within 10 s."""
import json
import os
import signal
import subprocess
import sys
import time

import harness as h


def check_config_cases(env, ok):
    r = subprocess.run([h.BIN, "run", "-c", env.config_path, "--check-config"],
                       capture_output=True, text=True)
    ok &= h.report(r.returncode == 0 and "window:" in r.stdout, "--check-config accepts",
                   r.stderr.strip())
    bad = os.path.join(env.dir, "bad.yaml")
    with open(env.config_path) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(text.replace("  size: 60s", "  size: 60s\n  sise: 1m"))
    r = subprocess.run([h.BIN, "run", "-c", bad, "--check-config"], capture_output=True,
                       text=True)
    ok &= h.report(r.returncode == 2 and "window.sise" in r.stderr, "unknown key named",
                   r.stderr.strip())
    with open(bad, "w") as f:
        f.write(text.replace("  size: 60s", "  size: soon"))
    r = subprocess.run([h.BIN, "run", "-c", bad, "--check-config"], capture_output=True,
                       text=True)
    ok &= h.report(r.returncode == 2 and "window.size" in r.stderr, "bad value named",
                   r.stderr.strip())
    with open(bad, "w") as f:
        f.write(text + "topics:\n  labels: odd-labels\n")
    r = subprocess.run([h.BIN, "run", "-c", bad], capture_output=True, text=True, timeout=60)
    ok &= h.report(r.returncode != 0 and "co-partitioned" in r.stderr,
                   "topics with different partition counts refused", r.stderr.strip()[:200])
    return ok


def inspect_cases(env, ok):
    """inspect tells a corrupt or unreadable partition count from a group with no state."""
    key = "{dw:dwtest}:partitions"
    cases = [("SET", "many", "corrupt", "a corrupt partition count named"),
             ("HSET", "f", "corrupt", "a partition count of the wrong type named"),
             (None, None, "no driftwatch state", "a group without state said so")]
    for cmd, value, words, what in cases:
        env.redis("DEL", key)
        if cmd:
            env.redis(cmd, key, *([value] if cmd == "SET" else [value, "1"]))
        r = subprocess.run([h.BIN, "inspect", "-c", env.config_path], capture_output=True,
                           text=True, timeout=60)
        named = words in r.stderr and (cmd is None or key in r.stderr)
        ok &= h.report(r.returncode == 1 and named, f"inspect: {what}", r.stderr.strip())
    return ok


def argument_cases(env, ok):
    """Offline commands refuse what they cannot act on: extra arguments (`state drop --partition
    1 2 3 --yes` dropped partition 1 alone and exited 0) and an unknown model (`inspect --model
    nosuch` printed nothing and exited 0, as for a model without windows)."""
    c = env.config_path
    cases = [(["state", "check", "-c", c, "extra"], "unexpected argument 'extra'"),
             (["state", "drop", "-c", c, "--partition", "1", "2", "3"],
              "unexpected argument '2'"),
             (["inspect", "-c", c, "extra"], "unexpected argument 'extra'"),
             (["inspect", "-c", c, "--model", "nosuch"], "--model: no model 'nosuch'")]
    for args, words in cases:
        r = subprocess.run([h.BIN, *args], capture_output=True, text=True, timeout=60)
        ok &= h.report(r.returncode == 2 and words in r.stderr,
                       f"{' '.join(a for a in args if a != c)}: refused", r.stderr.strip()[:200])
    return ok


def main():
    # odd-labels has 3 partitions where predictions has 2: not co-partitioned
    env = h.Env(partitions=2, name="ops", extra_topics=["odd-labels:3"])
    env.config()
    ok = True
    truth, _ = env.gen("--count", "3000", "--eps", "20", "--malformed", "0.01")
    proc = env.start_run()
    h.wait_exact(env, truth, 60)
    status, body = env.http_get("/livez")
    ok &= h.report(status == 200, "/livez", body.strip())
    status, body = h.wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        env.http_get("/readyz")), 30, "/readyz")
    ok &= h.report(status == 200, "/readyz", body.strip())
    status, body = env.http_get("/status")
    st = json.loads(body)
    ok &= h.report(status == 200 and len(st["partitions"]) == 2 and st["reports"],
                   "/status lists partitions and reports")
    status, body = env.http_get("/metrics")
    path = os.path.join(env.dir, "metrics.txt")
    with open(path, "w") as f:
        f.write(body)
    r = subprocess.run(["promtool", "check", "metrics"], stdin=open(path), capture_output=True,
                       text=True)
    ok &= h.report(status == 200 and r.returncode == 0, "promtool check metrics",
                   (r.stdout + r.stderr).strip()[:300])
    for name in ("driftwatch_messages_consumed_total", "driftwatch_checkpoints_total",
                 "driftwatch_messages_invalid_total", "driftwatch_windows_evaluated_total",
                 "driftwatch_build_info"):
        ok &= h.report(name in body, f"metric {name} exposed")
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=15)
    ok &= h.report(rc == 0 and time.time() - t0 < 10, "SIGTERM: clean exit within 10 s",
                   f"rc={rc} in {time.time() - t0:.1f}s")
    ok &= h.report(h.compare_with_truth(env.inspect(), truth) == [], "state intact after stop")
    ok = check_config_cases(env, ok)
    ok = inspect_cases(env, ok)
    ok = argument_cases(env, ok)
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
