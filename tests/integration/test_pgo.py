"""The release build with profile-guided optimization (scripts/pgo.sh), which the Dockerfile ships
and bench/run.sh measures, computes what the plain build computes.

- scripts/pgo.sh builds into a new directory: its training ran (a profile of the decoder, the
  windows and the evaluation is in BUILD/pgo), the build used it (DW_PGO=use in the cache) and
  it records the sources' digest; a second call with the same sources builds nothing again
  (the binary is not rewritten).
- On traffic other than the training's (other features, seed, drift, versions and label delay),
  `driftwatch replay` of the PGO binary and of the build under test write the same reports, byte
  for byte but for the wall-clock time their reference was made, and the same summary: the
  reports hold drift statistics, performance and drifted windows, so the comparison is not
  vacuous.
- A bad DW_PGO value is a configure error naming it."""
import json
import os
import re
import subprocess
import sys
import tempfile

import harness as h


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{argv[:3]} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def check_build(build):
    ok = True
    run(["bash", os.path.join(h.ROOT, "scripts", "pgo.sh"), build], cwd=h.ROOT)
    binary = os.path.join(build, "driftwatch")
    profiles = []
    for root, _, files in os.walk(os.path.join(build, "pgo")):
        profiles += [f for f in files if f.endswith(".gcda")]
    ok &= h.report(any("dw_decode.c" in f for f in profiles) and
                   any("dw_eval.c" in f for f in profiles) and
                   any("dw_part.c" in f for f in profiles),
                   "the training wrote profiles of the decoder, the windows and the evaluation",
                   f"({len(profiles)} profiles)")
    pgo = h.cmake_cache(build).get("DW_PGO")
    ok &= h.report(pgo == "use", "the build used the profile", f"(DW_PGO={pgo})")
    stamp = os.path.join(build, "pgo.stamp")
    ok &= h.report(os.path.exists(stamp), "the sources' digest is recorded")
    before = os.stat(binary).st_mtime_ns
    run(["bash", os.path.join(h.ROOT, "scripts", "pgo.sh"), build], cwd=h.ROOT)
    ok &= h.report(os.stat(binary).st_mtime_ns == before,
                   "a second call with the same sources builds nothing again")
    return ok, binary


def replay(binary, cfg, preds, labels, out):
    """The reports (their reference's created_at, the wall clock of the replay, blanked) and the
    summary."""
    p = run([binary, "replay", "-c", cfg, "-p", preds, "-l", labels, "-o", out])
    with open(out, "rb") as f:
        return re.sub(rb'"created_at":"[^"]*"', b'"created_at":""', f.read()), p.stderr


def check_same_reports(tmp, pgo_binary):
    ok = True
    path = lambda n: os.path.join(tmp, n)  # noqa: E731
    models = h.run_gen_models(numeric=4, categorical=3)
    with open(path("dw.yaml"), "w") as f:
        f.write('group: t\nkafka: {bootstrap.servers: "127.0.0.1:9"}\n' + models)
    run([h.BIN, "gen", "-q", "--numeric", "4", "--categorical", "3", "--versions", "a,b,c",
         "--label-delay", "45", "--count", "60000", "--eps", "100", "--drift-at", "300",
         "--drift-shift", "age=1.5", "--drift-mix", "device", "--drift-accuracy", "0.7",
         "--seed", "7", "--predictions-out", path("p.jsonl"), "--labels-out", path("l.jsonl")])
    plain, plain_err = replay(h.BIN, path("dw.yaml"), path("p.jsonl"), path("l.jsonl"),
                              path("plain.jsonl"))
    pgo, pgo_err = replay(pgo_binary, path("dw.yaml"), path("p.jsonl"), path("l.jsonl"),
                          path("pgo.jsonl"))
    reports = [json.loads(line) for line in plain.decode().splitlines()]
    tested = [r for r in reports if any(f.get("ks") or f.get("psi") for f in
                                        r["features"].values())]
    drifted = [r for r in reports if r["drift"]["features"]]
    scored = [r for r in reports if r["performance"].get("roc_auc") is not None]
    ok &= h.report(len(tested) >= 5 and drifted and scored,
                   "the plain build's reports hold drift statistics, performance and a drifted "
                   "window", f"({len(reports)} reports, {len(tested)} with tests, {len(drifted)} "
                   f"drifted, {len(scored)} with a ROC AUC)")
    ok &= h.report(pgo == plain, "the PGO binary writes the same reports byte for byte",
                   f"({len(pgo)} and {len(plain)} bytes)")
    ok &= h.report(pgo_err == plain_err, "and the same summary", f"({pgo_err!r} / {plain_err!r})")
    return ok


def check_bad_value(tmp):
    p = subprocess.run(["cmake", "-S", h.ROOT, "-B", os.path.join(tmp, "bad"), "-DDW_PGO=yes"],
                       capture_output=True, text=True, timeout=300)
    return h.report(p.returncode != 0 and "DW_PGO must be empty, generate or use, not 'yes'" in
                    p.stderr, "a bad DW_PGO value is a configure error naming it",
                    p.stderr.strip()[-300:])


def main():
    with tempfile.TemporaryDirectory(prefix="dw_pgo_") as tmp:
        ok, binary = check_build(os.path.join(tmp, "build"))
        ok &= check_same_reports(tmp, binary)
        ok &= check_bad_value(tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
