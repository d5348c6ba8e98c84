"""Reference sources and the reference commands, through `driftwatch run` (dev-broker +
redis-server).

Two models read the same topics:
- churn has reference.source profile: a training profile made with labels
  (`driftwatch profile`, prediction, label and score in each training event). Its very first
  window is judged against it (no reference windows), and the baseline is the profile's
  performance at once (source profile), in run's reports and in `reference show`.
- fraud has source windows (2): its first two windows are collected, not judged. Then
  `reference set --profile` replaces the reference while run runs: the windows closed after it
  are judged against the profile, with the profile's baseline. Then `reference reset`: the next
  two windows closed are collected again and become the reference (source windows).
And the errors: a profile whose features differ from the model's, named by run at start-up and
by `reference set`; a profile of another model.
"""
import json
import os
import subprocess
import sys

import harness as h

WINDOW_MS = 60000
T0 = 1767225600000  # 2026-01-01T00:00:00Z, gen's default --start
EPS = 10


def iso(ms):
    return subprocess.run(["date", "-u", "-d", f"@{ms // 1000}", "+%Y-%m-%dT%H:%M:%SZ"],
                          capture_output=True, text=True, check=True).stdout.strip()


def training_profile(env, model, seed, accuracy, extra=()):
    """A profile of `model` made from gen's events with their labels inline."""
    preds = os.path.join(env.dir, f"train_{model}.p.jsonl")
    labels = os.path.join(env.dir, f"train_{model}.l.jsonl")
    subprocess.run([h.BIN, "gen", "-q", "--seed", str(seed), "--model", model, "--count", "4000",
                    "--accuracy", str(accuracy), "--predictions-out", preds, "--labels-out",
                    labels, *extra], check=True, timeout=120)
    label_of = {}
    for line in open(labels):
        lab = json.loads(line)
        label_of.setdefault(lab["prediction_id"], lab["label"])
    train = os.path.join(env.dir, f"train_{model}.jsonl")
    with open(train, "w") as f:
        for line in open(preds):
            ev = json.loads(line)
            if ev.get("model") == model and ev["prediction_id"] in label_of:
                ev["label"] = label_of[ev["prediction_id"]]
                f.write(json.dumps(ev) + "\n")
    out = os.path.join(env.dir, f"profile_{model}.json")
    r = subprocess.run([h.BIN, "profile", "-c", env.config_path, "-m", model, "-i", train, "-o",
                        out], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out, json.load(open(out))


def reference_cmd(env, *args):
    r = subprocess.run([h.BIN, "reference", *args, "-c", env.config_path], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.stdout.startswith("{") else None), r.stderr


def report(env, model, k):
    text = env.redis("GET", f"{{dw:dwtest}}:report:{model}:{T0 + k * WINDOW_MS}")
    return json.loads(text) if text.startswith("{") else None


PHASES = []  # every gen call's arguments, in order: replay reads the same traffic from files


def gen(env, *args):
    PHASES.append(args)
    env.gen(*args, truth=False)


def produce(env, model, seed, first_window, windows, *extra):
    gen(env, "--seed", str(seed), "--model", model, "--start",
        iso(T0 + first_window * WINDOW_MS), "--count", str(windows * 60 * EPS), "--eps", str(EPS),
        "--label-delay", "5", *extra)


def final_report(env, model, k):
    rep = report(env, model, k)
    return rep if rep and rep["final"] else None


def check_replay(env):
    """`replay -c` over the same traffic gives churn's (profile) and promo's (trailing) final
    reports as run wrote them: what they were judged against, every feature statistic and
    verdict, the baseline and its drops. (fraud's reference was changed by hand in run.)"""
    preds, labels = os.path.join(env.dir, "all.p.jsonl"), os.path.join(env.dir, "all.l.jsonl")
    with open(preds, "w") as pf, open(labels, "w") as lf:
        for i, args in enumerate(PHASES):
            p, l = os.path.join(env.dir, f"ph{i}.p"), os.path.join(env.dir, f"ph{i}.l")
            subprocess.run([h.BIN, "gen", "-q", *args, "--predictions-out", p, "--labels-out", l],
                           check=True, timeout=120)
            pf.write(open(p).read())
            lf.write(open(l).read())
    r = subprocess.run([h.BIN, "replay", "-c", env.config_path, "--predictions", preds,
                        "--labels", labels], capture_output=True, text=True, timeout=300)
    ok = h.report(r.returncode == 0, "replay ran", r.stderr[-300:])
    mine = {(x["model"], x["window_start_ms"]): x for x in map(json.loads, r.stdout.splitlines())
            if x["stage"] == "final"}
    diffs, n = [], 0
    for model, ks in (("churn", range(4, 7)), ("promo", range(14, 19))):
        for k in ks:
            a, b = final_report(env, model, k), mine.get((model, T0 + k * WINDOW_MS))
            n += 1
            if not a or not b:
                diffs.append((model, k, "missing", bool(a), bool(b)))
                continue
            for path in ("reference", "features", "drift", "baseline", "performance",
                         "performance_drop"):
                x, y = a[path], b[path]
                if path == "reference":  # when it was built, and its labels by then: timing
                    x = {k2: v for k2, v in x.items() if k2 not in ("created_at", "accuracy")}
                    y = {k2: v for k2, v in y.items() if k2 not in ("created_at", "accuracy")}
                if not same(x, y):
                    diffs.append((model, k, path, x, y))
    ok &= h.report(not diffs and n == 8,
                   "replay -c: the same references, statistics, baselines and drops as run",
                   f"{diffs[:2]}")
    return ok


def same(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) <= 1e-12 * max(1.0, abs(a))
    return a == b


def models_yaml(profile_path=None):
    """fraud, churn and promo, gen's models; churn with source profile when profile_path is
    given, promo with source trailing (2 windows)."""
    fraud = h.run_gen_models().split("\n", 1)[1]  # without "models:"
    churn = fraud.replace("  fraud:", "  churn:", 1)
    if profile_path:
        churn = churn.replace("    features:", f"    reference: {{source: profile, profile: "
                              f"'file://{profile_path}'}}\n    features:", 1)
    promo = fraud.replace("  fraud:", "  promo:", 1).replace(
        "    features:", "    reference: {source: trailing, windows: 2}\n    features:", 1)
    return "models:\n" + fraud + churn + promo


def check_trailing(env):
    """promo, source trailing (2): windows 14-18, the amount shifted by 4 std from window 17.
    Each window is judged against the two before it: 17 drifts, 18 is judged against 16 and 17;
    only the aggregates later windows need are kept."""
    produce(env, "promo", 5, 14, 5, "--drift-at", "180", "--drift-shift", "amount=4")
    produce(env, "fraud", 6, 19, 3)  # moves the clocks past promo's windows' horizon
    h.wait_for(lambda: report(env, "promo", 18), 120, "close report of promo's window 18")
    r = {k: report(env, "promo", k) for k in range(14, 19)}
    refs = {k: (r[k]["reference"]["status"], r[k]["reference"].get("windows"),
                r[k]["reference"].get("first_window_start")) for k in r}
    ok = h.report(refs == {14: ("unavailable", 0, None), 15: ("ready", 1, iso(T0 + 14 * WINDOW_MS)),
                           16: ("ready", 2, iso(T0 + 14 * WINDOW_MS)),
                           17: ("ready", 2, iso(T0 + 15 * WINDOW_MS)),
                           18: ("ready", 2, iso(T0 + 16 * WINDOW_MS))},
                  "source trailing: each window against the two before it", f"{refs}")
    amount = {k: r[k]["features"]["amount"]["drift"] for k in range(15, 19)}
    bl = r[17]["baseline"]
    ok &= h.report(bl["status"] == "ready" and bl["source"] == "trailing" and bl["windows"] == 2,
                   "source trailing: the baseline is the two windows before", f"{bl}")
    ok &= h.report(amount == {15: False, 16: False, 17: True, 18: True} and
                   r[17]["reference"]["source"] == "trailing",
                   "source trailing: the shift drifts against the windows before it", f"{amount}")
    kept = sorted(int(k.rsplit(":", 1)[1]) for k in
                  env.redis("KEYS", "{dw:dwtest}:trailagg:promo:*").split())
    # windows after 18 may have closed too (empty): what the next window to close needs is kept,
    # nothing from before 17
    cursor = int(env.redis("GET", "{dw:dwtest}:cursor:promo"))
    needed = {w for w in (T0 + 17 * WINDOW_MS, T0 + 18 * WINDOW_MS) if w >= cursor - 2 * WINDOW_MS}
    ok &= h.report(needed <= set(kept) <= {T0 + 17 * WINDOW_MS, T0 + 18 * WINDOW_MS},
                   "source trailing: only the aggregates later windows need are kept",
                   f"{kept} (next window {cursor})")
    return ok


def check_version_unreadable():
    """`reference show` of a version whose stored reference cannot be read gives the decoder's
    reason whole (it was cut to 7 characters: the size of a pointer passed as the buffer's)."""
    env = h.Env(partitions=1, name="reference-vref")
    env.config(models="models:\n  fraud:\n    task: classification\n    features:\n"
               "      amount: numeric\n    reference: {per_version: true}\n")
    env.redis("SET", "{dw:dwtest}:vrefs:fraud", '["v2"]')
    env.redis("SET", "{dw:dwtest}:vref:fraud:v2", "not a reference")
    rc, show, err = reference_cmd(env, "show", "--model", "fraud")
    v2 = ((show or {}).get("versions") or {}).get("v2", {})
    ok = h.report(rc == 0 and v2.get("status") == "unreadable" and len(v2.get("error", "")) > 20,
                  "reference show names why a version's reference is unreadable", f"({v2}, {err})")
    env.close()
    return ok


def main():
    env = h.Env(partitions=2, name="reference")
    env.config(ref_windows=2, idle="300s", models=models_yaml())
    churn_path, churn_prof = training_profile(env, "churn", 11, 0.9)
    fraud_path, fraud_prof = training_profile(env, "fraud", 12, 0.8)
    ok = h.report(churn_prof["labeled"] == 4000 and
                  abs(churn_prof["performance"]["accuracy"] - 0.9) < 0.03,
                  "a training profile with labels carries their performance",
                  f"({churn_prof['labeled']} labelled, accuracy {churn_prof['performance']})")
    env.config(ref_windows=2, idle="300s", horizon="60s", models=models_yaml(churn_path))

    # a profile whose features differ from the model's: run names the feature at start-up
    text = open(env.config_path).read()
    at = text.index("  churn:")
    bad_cfg = text[:at] + text[at:].replace("      merchant: categorical\n",
                                            "      merchant: categorical\n      extra: numeric\n", 1)
    bad_path = os.path.join(env.dir, "bad.yaml")
    open(bad_path, "w").write(bad_cfg)
    r = subprocess.run([h.BIN, "run", "-c", bad_path], capture_output=True, text=True, timeout=60)
    ok &= h.report(r.returncode != 0 and "models.churn.reference.profile" in r.stderr and
                   "feature 'extra' of model 'churn' is not in the profile" in r.stderr,
                   "run refuses a profile without one of the model's features, naming it",
                   r.stderr.strip()[-300:])

    # Event time only moves forward across the phases (the partitions' watermarks are shared by
    # the models): fraud's windows 0-3, churn's 4-6, fraud's 7-8 after set, 9-13 after reset.
    produce(env, "fraud", 1, 0, 4)
    produce(env, "churn", 2, 4, 3)
    run = env.start_run()
    try:
        h.wait_for(lambda: report(env, "fraud", 2) and report(env, "churn", 5), 120,
                   "close reports of fraud's window 2 and churn's 5")
        c0, f0, f2 = report(env, "churn", 4), report(env, "fraud", 0), report(env, "fraud", 2)
        ok &= h.report(c0["reference"]["status"] == "ready" and
                       c0["reference"]["source"] == "profile" and
                       c0["reference"]["profile"] == churn_path and
                       c0["reference"]["predictions"] == 4000 and
                       c0["features"]["amount"]["drift"] is not None and
                       c0["drift"]["share"] is not None,
                       "source profile: the first window is judged against the profile",
                       f"{c0['reference']}")
        h.wait_for(lambda: (report(env, "churn", 4) or {}).get("final"), 120,
                   "final report of churn's window 4")
        c4 = report(env, "churn", 4)
        base, drop = c4["baseline"], c4["performance"]["drop"]["accuracy"]
        want = (base["accuracy"] - c4["performance"]["accuracy"]) / base["accuracy"]
        ok &= h.report(c0["baseline"] == base and base["status"] == "ready" and
                       base["source"] == "profile" and base["labeled"] == 4000 and
                       base["accuracy"] == churn_prof["performance"]["accuracy"] and
                       c4["labeled"] == 600 and drop is not None and abs(drop - want) < 1e-12,
                       "a training profile with labels gives the baseline with no reference "
                       "windows", f"{ {k: base.get(k) for k in ('status', 'source', 'accuracy')} }"
                       f" drop {drop}")
        ok &= h.report(f0["reference"]["status"] == "collecting" and
                       f0["drift"]["share"] is None and
                       f2["reference"]["status"] == "ready" and
                       f2["reference"]["source"] == "windows" and
                       f2["reference"]["windows"] == 2 and
                       f2["reference"]["first_window_start"] == iso(T0),
                       "source windows: the first two windows collected, then judged with them",
                       f"{f0['reference']} {f2['reference']}")
        rc, show, err = reference_cmd(env, "show", "--model", "churn")
        ok &= h.report(rc == 0 and show["configured"]["source"] == "profile" and
                       show["reference"]["source"] == "profile" and
                       show["baseline"]["status"] == "ready" and
                       show["baseline"]["source"] == "profile",
                       "reference show: churn's profile and its baseline", f"{show or err}")
        rc, show, err = reference_cmd(env, "show", "--model", "fraud")
        ok &= h.report(rc == 0 and show["reference"]["source"] == "windows" and
                       show["reference"]["stored"] is True and show["generation"] == 0,
                       "reference show: fraud's windows", f"{show or err}")

        # errors of reference set: another model's profile; a feature of another type
        rc, _, err = reference_cmd(env, "set", "--model", "fraud", "--profile", churn_path)
        ok &= h.report(rc == 1 and "a profile of model 'churn', not of model 'fraud'" in err,
                       "reference set refuses another model's profile", err.strip())
        swapped = dict(fraud_prof)
        swapped["features"] = dict(fraud_prof["features"])
        swapped["features"]["amount"] = fraud_prof["features"]["country"]
        swapped_path = os.path.join(env.dir, "swapped.json")
        json.dump(swapped, open(swapped_path, "w"))
        rc, _, err = reference_cmd(env, "set", "--model", "fraud", "--profile", swapped_path)
        ok &= h.report(rc == 1 and "amount" in err and "categorical" in err,
                       "reference set refuses a feature of another type, naming it", err.strip())

        # set: fraud's windows closed from now on are judged against the profile
        rc, out, err = reference_cmd(env, "set", "--model", "fraud", "--profile",
                                     f"file://{fraud_path}")
        ok &= h.report(rc == 0 and out["action"] == "set" and out["generation"] == 1 and
                       out["reference"]["source"] == "profile",
                       "reference set stores the profile", f"{out or err}")
        produce(env, "fraud", 3, 7, 2)
        h.wait_for(lambda: report(env, "fraud", 7), 120, "close report of window 7")
        f4 = report(env, "fraud", 7)
        ok &= h.report(f4["reference"]["source"] == "profile" and
                       f4["reference"]["profile"] == fraud_path and
                       f4["baseline"]["source"] == "profile" and
                       f4["baseline"]["accuracy"] == fraud_prof["performance"]["accuracy"],
                       "after set: windows judged against the profile, with its baseline",
                       f"{f4['reference']} {f4['baseline'].get('accuracy')}")
        ok &= h.report("reference changed by driftwatch reference" in env.log(),
                       "the change is logged by run")
        def status_refs():
            st = json.loads(env.http_get("/status")[1])["references"]
            return st if st["fraud"].get("generation") == 1 else None
        try:
            st = h.wait_for(status_refs, 20, "/status with the new generation")
        except AssertionError:
            st = json.loads(env.http_get("/status")[1])["references"]
        ok &= h.report(st and st["fraud"]["source"] == "profile" and
                       st["churn"]["source"] == "profile" and
                       st["promo"]["status"] == "per_window",
                       "/status shows each model's reference", f"{st}")

        # reset: the next two windows closed are collected again
        rc, out, err = reference_cmd(env, "reset", "--model", "fraud")
        ok &= h.report(rc == 0 and out["action"] == "reset" and out["generation"] == 2,
                       "reference reset", f"{out or err}")
        rc, show, err = reference_cmd(env, "show", "--model", "fraud")
        ok &= h.report(rc == 0 and show["reference"]["status"] == "collecting" and
                       show["reference"]["windows"] == 0 and
                       show["baseline"]["status"] == "waiting_for_labels",
                       "reference show after reset: collecting", f"{show or err}")
        produce(env, "fraud", 4, 9, 5)
        h.wait_for(lambda: report(env, "fraud", 11), 120, "close report of window 11")
        states = [(k, (report(env, "fraud", k) or {}).get("reference", {})) for k in range(8, 12)]
        collected = [k for k, r in states if r.get("status") == "collecting"]
        judged = [r for k, r in states if r.get("status") == "ready"]
        ok &= h.report(len(collected) == 2 and collected[1] == collected[0] + 1 and
                       all(r["source"] == "windows" and
                           r["first_window_start"] == iso(T0 + collected[0] * WINDOW_MS)
                           for r in judged) and len(judged) == 2,
                       "after reset: the next two windows become the reference",
                       f"{states}")
        ok &= check_trailing(env)
        h.wait_for(lambda: final_report(env, "promo", 18), 120, "final report of promo's 18")
        ok &= check_replay(env)
    finally:
        ok &= h.finish_consumer(run)
    return h.close(env, ok)


if __name__ == "__main__":
    first = main()
    sys.exit(0 if check_version_unreadable() and first == 0 else 1)
