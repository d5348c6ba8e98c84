"""The README's quick start runs (bounded) and both the alert and the trigger arrive."""
import os
import subprocess
import sys

import harness as h


def main():
    env = dict(os.environ, DRIFTWATCH_BIN=h.BIN, QUICKSTART_TIMEOUT="150")
    r = subprocess.run(["bash", os.path.join(h.ROOT, "scripts", "quickstart.sh")], env=env,
                       capture_output=True, text=True, timeout=400)
    out = r.stdout + r.stderr
    ok = h.report(r.returncode == 0, "quickstart exits 0", out[-2000:] if r.returncode else "")
    ok &= h.report("=== alert delivered to the webhook receiver ===" in out and
                   '"type": "driftwatch.alert"' in out, "alert printed")
    ok &= h.report("=== retraining trigger read back" in out and '"trigger_id"' in out,
                   "trigger printed")
    leftovers = subprocess.run(["pgrep", "-f", "driftwatch-quickstart"], capture_output=True,
                               text=True).stdout.strip()
    ok &= h.report(leftovers == "", "no process left behind", leftovers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
