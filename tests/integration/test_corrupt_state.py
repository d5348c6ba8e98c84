"""Corrupt checkpoints quarantine their partition, not the consumer.

A first pass consumes traffic on six partitions and stops. Then four partitions' state is
damaged in Redis: a truncated window aggregate (1), a garbage join record (2), a garbage
`off_pred` (3) and a window key of the wrong Redis type (4). More traffic is produced and the
consumer restarts: those four partitions are quarantined (a log line naming the partition and
the key, /readyz, /status, driftwatch_partitions_quarantined = 4), never consumed nor
checkpointed, and hold the windows they have not seen; partitions 0 and 5 consume everything
and stay exact. `driftwatch state check` names exactly the corrupt partitions; `state drop`
deletes two of them and the running consumer's periodic re-check rebuilds them from the
earliest offset; after a restart with one more dropped and one repaired by hand, every
partition runs and the per-window totals equal the ground truth of all the traffic."""
import json
import subprocess
import sys
import time

import harness as h

PARTS = 6
HEALTHY = (0, 5)
CORRUPT = (1, 2, 3, 4)


def key(p, suffix):
    return f"{{dw:dwtest:predictions:{p}}}:{suffix}"


def topic_counts(env, topic):
    """Messages per partition of a topic, read back from the broker."""
    r = subprocess.run(["kcat", "-b", env.bootstrap, "-C", "-t", topic, "-e", "-q",
                        "-f", "%p\n"], capture_output=True, text=True, timeout=60)
    counts = [0] * PARTS
    for line in r.stdout.split():
        counts[int(line)] += 1
    return counts


def open_window_key(env, p):
    member = env.redis("SRANDMEMBER", key(p, "open"))
    model, start = member.split("\t")
    return key(p, f"w:{model}:{start}")


def check_lines(r):
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip().startswith("{")]


def healthy_exact(env, preds, labels):
    """The healthy partitions consumed both topics to the end, each message counted once."""
    for p in HEALTHY:
        m = env.part_meta(p)
        want = {"off_pred": preds[p], "off_label": labels[p], "predictions": preds[p],
                "labels": labels[p], "late_predictions": 0}
        if any(m.get(k) != str(v) for k, v in want.items()):
            return False
    return True


def main():
    env = h.Env(partitions=PARTS, name="corrupt")
    env.config(idle="3s", extra="state:\n  quarantine_recheck: 2s\n")
    ok = True

    # ---- a clean first pass ----
    truth_a, _ = env.gen("--count", "6000", "--eps", "25", "--label-share", "0.8",
                         "--label-delay", "5")
    proc = env.start_run()
    diffs = h.wait_exact(env, truth_a, 90)
    ok &= h.report(not diffs, "first pass exact", f"{diffs[:3]}")
    h.wait_for(lambda: all(int(env.redis("HLEN", key(p, "join")) or 0) > 0 and
                           int(env.redis("SCARD", key(p, "open")) or 0) > 0
                           for p in range(PARTS)), 30, "join records and open windows")
    ok &= h.report(h.finish_consumer(proc), "first pass stopped cleanly")

    # ---- damage four partitions ----
    bad_window = open_window_key(env, 1)
    env.redis("EVAL", "local v = redis.call('GET', KEYS[1]) "
              "return redis.call('SET', KEYS[1], string.sub(v, 1, math.floor(#v / 2)))",
              "1", bad_window)
    bad_id = env.redis("HRANDFIELD", key(2, "join"))
    env.redis("HSET", key(2, "join"), bad_id, "garbage")
    env.redis("HSET", key(3, "meta"), "off_pred", "12garbage")
    wrong_type = open_window_key(env, 4)
    env.redis("DEL", wrong_type)
    env.redis("HSET", wrong_type, "not", "a string")
    before = {p: env.part_meta(p) for p in CORRUPT}

    # ---- more traffic, restart ----
    truth_b, _ = env.gen("--count", "3000", "--eps", "25", "--label-share", "0.8",
                         "--label-delay", "5", "--seed", "2", "--start", "2026-01-01T01:00:00Z")
    preds, labels = topic_counts(env, "predictions"), topic_counts(env, "labels")
    t0 = time.time()
    proc = env.start_run()
    healthy = h.eventually(lambda: healthy_exact(env, preds, labels), 60)
    ok &= h.report(healthy, "partitions 0 and 5 consumed to the end, every message once",
                   f"({time.time() - t0:.1f}s)")

    quarantined = h.eventually(lambda: env.metric("driftwatch_partitions_quarantined") == 4, 30)
    ok &= h.report(quarantined, "driftwatch_partitions_quarantined = 4",
                   f"{env.metric('driftwatch_partitions_quarantined')}")
    log_lines = h.log_entries(env.log())
    q_lines = [l for l in log_lines if l.get("msg") == "partition quarantined"]
    for p, k in ((1, bad_window), (2, key(2, "join")), (3, key(3, "meta")), (4, wrong_type)):
        named = any(l.get("partition") == p and k in l.get("error", "") for l in q_lines)
        ok &= h.report(named, f"log names quarantined partition {p} and key {k}")
    ok &= h.report(any("off_pred" in l.get("error", "") for l in q_lines if l["partition"] == 3),
                   "the garbage off_pred is named")
    ok &= h.report(not any(l.get("partition") in HEALTHY for l in q_lines),
                   "healthy partitions not quarantined")
    status, body = env.http_get("/readyz")
    ok &= h.report(status == 503 and all(str(p) in body for p in CORRUPT) and
                   "quarantined" in body, "/readyz reports the quarantine", body.strip())
    status, body = env.http_get("/status")
    st = json.loads(body) if status == 200 else {}
    q_status = sorted(q["partition"] for q in st.get("quarantined", []))
    ok &= h.report(q_status == list(CORRUPT), "/status lists the quarantined partitions",
                   f"{q_status}")
    ok &= h.report("quarantined" in json.dumps(st.get("windows_held") or {}),
                   "/status says why windows are held", f"{st.get('windows_held')}")
    # Quarantined partitions are neither consumed nor checkpointed.
    after = {p: env.part_meta(p) for p in CORRUPT}
    ok &= h.report(all(after[p].get("off_pred") == before[p].get("off_pred") and
                       after[p].get("predictions") == before[p].get("predictions")
                       for p in CORRUPT), "quarantined partitions not checkpointed")
    # The second batch's windows cannot close while four partitions have not read them.
    time.sleep(6)  # past window.idle_timeout of the healthy partitions
    reports_b = [t for t in truth_b
                 if env.redis("EXISTS", f"{{dw:dwtest}}:report:{t['model']}:"
                              f"{t['window_start_ms']}") == "1"]
    ok &= h.report(not reports_b, "no window of the second batch closed",
                   f"{len(reports_b)} closed")

    # ---- state check ----
    r = env.state_cmd("check")
    lines = check_lines(r)
    by_part = {l["partition"]: l for l in lines if "partition" in l}
    bad = sorted(p for p, l in by_part.items() if l["status"] == "corrupt")
    ok &= h.report(r.returncode == 1 and bad == list(CORRUPT) and
                   all(by_part.get(p, {}).get("status") == "ok" for p in HEALTHY),
                   "state check reports exactly the corrupt partitions",
                   f"rc={r.returncode} corrupt={bad} {r.stderr.strip()[:200]}")
    ok &= h.report(by_part.get(1, {}).get("key") == bad_window and
                   by_part.get(3, {}).get("key") == key(3, "meta"),
                   "state check names the bad keys")
    r = env.state_cmd("check", "--partition", "5")
    ok &= h.report(r.returncode == 0 and [l["partition"] for l in check_lines(r)] == [5],
                   "state check --partition 5: ok", r.stdout.strip()[:200])

    # ---- repair: state drop while running (the periodic re-check loads them) ----
    r = env.state_cmd("drop", "--partition", "1")
    ok &= h.report(r.returncode == 2 and env.redis("EXISTS", key(1, "meta")) == "1",
                   "state drop without --yes deletes nothing", f"rc={r.returncode}")
    for p in (1, 3):
        r = env.state_cmd("drop", "--partition", str(p), "--yes")
        ok &= h.report(r.returncode == 0, f"state drop --partition {p} --yes",
                       (r.stdout + r.stderr).strip()[:200])
    left = env.redis("KEYS", "{dw:dwtest:predictions:1}:*").split()
    tomb = env.redis("HKEYS", "{dw:dwtest:predictions:1}:meta").split()
    ok &= h.report(left in ([], ["{dw:dwtest:predictions:1}:meta"]) and
                   set(tomb) <= {"dropped_ms", "owner", "eof_ms", "label_eof_ms", "released_ms"},
                   "partition 1 has no state left, only the drop's tombstone", f"{left} {tomb}")
    ok &= h.report(h.eventually(lambda: env.metric("driftwatch_partitions_quarantined") == 2, 30),
                   "re-check without restart: 2 partitions left")
    # ---- repair: stop, drop one more, repair one by hand, restart ----
    ok &= h.report(h.finish_consumer(proc), "consumer stopped cleanly with 2 quarantined")
    r = env.state_cmd("drop", "--partition", "4", "--yes")
    ok &= h.report(r.returncode == 0, "state drop --partition 4 --yes", r.stderr.strip())
    env.redis("HDEL", key(2, "join"), bad_id)  # the record was done: dropping it loses nothing
    proc = env.start_run()
    diffs = h.wait_exact(env, truth_a + truth_b, 120)
    ok &= h.report(not diffs, "every partition rebuilt or repaired: exact totals",
                   f"{diffs[:3]}")
    ok &= h.report(h.eventually(lambda: env.metric("driftwatch_partitions_quarantined") == 0, 30),
                   "driftwatch_partitions_quarantined = 0")
    ready = h.eventually(lambda: env.http_get("/readyz")[0] == 200, 30)
    ok &= h.report(ready, "/readyz 200 again")
    held = h.eventually(lambda: (lambda r: r[0] == 200 and
                                 json.loads(r[1]).get("windows_held") is None)(
        env.http_get("/status")), 30)
    ok &= h.report(held, "no window held: the quarantine marks are gone")
    r = env.state_cmd("check")
    ok &= h.report(r.returncode == 0 and
                   all(l["status"] == "ok" for l in check_lines(r) if "partition" in l),
                   "state check: all ok", r.stdout.strip()[:300])
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
