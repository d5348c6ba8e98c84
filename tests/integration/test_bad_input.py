"""Bad input: malformed JSON, missing id, wrong types, invalid UTF-8, an unknown model and
1 MB messages each land in the dead-letter topic with their reason, source topic, partition and
offset, are counted by reason, and good messages keep flowing (exact counts still hold)."""
import base64
import json
import sys

import harness as h


def main():
    env = h.Env(partitions=4, name="badinput")
    env.config()
    truth, summary = env.gen("--count", "6000", "--eps", "50", "--malformed", "0.05",
                             "--oversize", "2", "--label-delay", "5")
    env.start_run()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "good messages counted exactly next to bad ones", f"{diffs[:3]}")
    expected = dict(summary["malformed"])
    expected["too_large"] = summary["oversize"]
    want_total = sum(expected.values())
    letters = h.wait_for(lambda: (lambda l: l if len(l) >= want_total else None)(
        env.kcat("driftwatch-dead-letter")), 60, "dead letters")
    got = {}
    for key, value in letters:
        dl = json.loads(value)
        got[dl["reason"]] = got.get(dl["reason"], 0) + 1
        ok &= dl["topic"] == "predictions" and 0 <= dl["partition"] < env.partitions \
            and dl["offset"] >= 0 and bool(dl["error"])
        if dl["reason"] == "too_large":
            ok &= dl.get("payload_truncated") is True and dl["payload_size"] >= 1_000_000
            ok &= len(base64.b64decode(dl["payload_base64"])) == 1024
        if dl["reason"] == "invalid_utf8":
            ok &= "payload_base64" in dl
    ok &= h.report(got == {k: v for k, v in expected.items() if v}, "dead letters by reason",
                   f"got {got} want {expected}")
    for reason, n in expected.items():
        m = env.metric("driftwatch_messages_invalid_total", f'reason="{reason}"') or 0
        ok &= h.report(m == n, f"invalid counter {reason}", f"{m} == {n}")
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
