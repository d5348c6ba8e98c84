"""A run with injected drift whose reports the reports API and the status page serve (shared by
test_api.py and test_status_page.py): gen's model `fraud`, two versions, `amount` shifted from
the fourth window on, labels within the horizon so that most windows reach their final report."""
import json

import harness as h

WINDOW_MS = 60000
T0 = 1767225600000  # gen's default --start
WINDOWS = 6
DRIFT_AT_S = 180  # the fourth window on


def stored_reports(env):
    """{window start ms: report} as stored in Redis now."""
    out = {}
    for key in env.redis("--scan", "--pattern", "{dw:dwtest}:report:fraud:*").split():
        text = env.redis("GET", key)
        if text.startswith("{"):
            out[int(key.rsplit(":", 1)[1])] = json.loads(text)
    return out


def start(env, extra=""):
    """Configures env and starts the first pod; returns its process."""
    env.config(models=h.run_gen_models(), horizon="60s", idle="5s", extra=extra)
    return env.start_run()


def traffic(env):
    """Produces the traffic and waits until the stored reports stop changing (every window
    reported, all but the last ones final); returns them."""
    env.gen("--count", str(WINDOWS * 60 * 50), "--eps", "50", "--label-delay", "20",
            "--label-share", "0.9", "--versions", "1.0.0,1.1.0", "--traffic", "80,20",
            "--version-accuracy", "1.0.0=0.9,1.1.0=0.6", "--drift-at", str(DRIFT_AT_S),
            "--drift-shift", "amount=3", "--rate", "4000", truth=False)
    h.wait_for(lambda: sum(1 for r in stored_reports(env).values() if r.get("final"))
               >= WINDOWS - 2, 120, "final reports")
    last = {"reports": None}

    def settled():
        now = stored_reports(env)
        same = now == last["reports"]
        last["reports"] = now
        return now if same else None
    got = h.wait_for(settled, 60, "the stored reports to settle", interval=2)
    print(f"stored reports: {sorted((k - T0) // WINDOW_MS for k in got)}, final: "
          f"{sorted((k - T0) // WINDOW_MS for k, r in got.items() if r.get('final'))}")
    return got
