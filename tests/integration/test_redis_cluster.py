"""driftwatch against a Redis Cluster on loopback (6 redis-server processes, 3 masters and 3
replicas, made by redis-cli --cluster create; redis.cluster: true): three consumers of one group
share 6 partitions whose keys the cluster spreads over its masters.

1. exact: the final per-window state (driftwatch inspect, read through the cluster too) equals
   gen's ground truth exactly.
2. crash: consumers killed with kill -9 while traffic flows and restarted: the final state is
   still exact.
3. failover: the master serving a partition's slot is killed with kill -9 mid-run; its replica
   takes over (the cluster says ok again), driftwatch's checkpoints to that slot fail meanwhile
   (driftwatch_checkpoint_failures_total, consumption paused) and then resume, and the final
   state equals a clean pass. A partition's state and offsets live in one slot, so a checkpoint
   the replica had not received (asynchronous replication) is lost whole: the owner check sees
   the rolled-back checkpoint count and reloads both together (shown when it happens, and the
   exact final state shows nothing was counted twice or lost either way).
4. failover_closing: the same with windows closing during the run (lateness 5 s) and the
   replica cut off for more than a window of event time: the checkpoints the failover loses
   must not have closed a window (the evaluator uses the clocks a replica acknowledged, WAIT),
   so no prediction is counted late and the final state is exact.
"""
import json
import math
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import harness as h
import redis_cluster as rc

PARTS = 6


def metric_at(port, name):
    """Sum of a metric's samples on the pod listening on `port` (None when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return sum(float(l.split()[-1]) for l in text.splitlines()
               if l.startswith(name + " ") or l.startswith(name + "{"))


def start_traffic(env, count=18000):
    """gen in the background while the consumers run (count / 1500 seconds of messages);
    returns the thread and a dict that holds gen's truth once it ended."""
    done = {}
    gen_args = ["--count", str(count), "--eps", "100", "--rate", "1500", "--early-labels", "0.1",
                "--duplicate-labels", "0.05", "--missing", "0.02", "--label-delay", "20"]
    producer = threading.Thread(target=lambda: done.update(truth=env.gen(*gen_args)))
    producer.start()
    return producer, done


def start_pods(env):
    """Three consumers of the group: env.start_run() and two more; returns [(proc, port)]."""
    pods = [(env.start_run(), env.http_port)]
    for i in (2, 3):
        port = env.start_pod(f"pod{i}")
        pods.append((env.procs[-1], port))
    return pods


def finish_pods(env, pods, ok):
    """Stops the consumers (each must exit cleanly), prints the logs' tail when something
    failed, stops every service; returns ok."""
    codes = []
    for proc, _ in pods:
        proc.terminate()
        try:
            codes.append(proc.wait(30))
        except subprocess.TimeoutExpired:
            codes.append("still running after 30 s")
    ok &= h.report(codes == [0] * len(pods), "consumers stopped cleanly", f"(exit codes {codes})")
    if not ok:
        print(logs(env)[-6000:])
    env.close()
    return ok


def state_check(env):
    """`driftwatch state check`: its exit code and its line of each partition."""
    r = env.state_cmd("check")
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    return r.returncode, {l["partition"]: l for l in lines if "partition" in l}


def settled_state(env):
    """`driftwatch inspect` once two reads a second apart agree: a window's close evaluation,
    due once the replicated clocks passed it, may still drop its sketches after the counts are
    exact (its line then says sketches_dropped), and that is no change a migration made."""
    prev = env.inspect()
    for _ in range(30):
        time.sleep(1)
        now = env.inspect()
        if now is not None and now == prev:
            return now
        prev = now
    return prev


def same_state(env, before, what):
    """Reports whether `driftwatch inspect` reads what it read before; names what differs."""
    now = env.inspect()
    if now is None or before is None:
        return h.report(False, what, f"(inspect failed: before {before is None}, now {now is None})")
    diff = [(a, b) for a, b in zip(before, now) if a != b]
    return h.report(now == before, what, f"({len(before)} vs {len(now)} lines) {diff[:2]}")


def logs(env):
    return "".join(env.log(n) for n in ("run", "pod2", "pod3"))


def exact():
    env = rc.ClusterEnv(partitions=PARTS, name="clexact")
    env.config()
    truth, summary = env.gen("--count", "12000", "--eps", "50", "--early-labels", "0.1",
                             "--duplicate-labels", "0.05", "--missing", "0.02",
                             "--versions", "1.0.0,1.1.0", "--malformed", "0.01",
                             "--label-delay", "20")
    assert len(truth) >= 4, truth
    nodes_calls = env.cluster.command_calls("cluster|nodes")
    pods = start_pods(env)
    t0 = time.time()
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, "cluster: exact per-window counts with 3 consumers",
                  f"({len(truth)} windows, {time.time() - t0:.1f}s) {diffs[:5]}")
    # A master's replica count (CLUSTER NODES, for the WAIT after its checkpoints) is kept with
    # the node for 10 s, not asked again at every checkpoint round: at most once per pod and
    # master every 10 s.
    nodes_calls = env.cluster.command_calls("cluster|nodes") - nodes_calls
    ckpts = sum(metric_at(port, "driftwatch_checkpoints_total") or 0 for _, port in pods)
    bound = len(pods) * len(env.cluster.masters()) * (1 + math.ceil((time.time() - t0) / 10))
    ok &= h.report(ckpts >= 20 and nodes_calls <= bound,
                   "the replica count is kept, not read at every checkpoint round",
                   f"({nodes_calls} CLUSTER NODES for {ckpts:.0f} checkpoints, at most {bound})")
    code, checked = state_check(env)
    status = {p: l["status"] for p, l in checked.items()}
    ok &= h.report(code == 0 and status == {p: "ok" for p in range(PARTS)},
                   "state check reads every partition through the cluster", f"{status}")
    masters = {env.cluster.master_of(env.cluster.slot(f"{{dw:dwtest:predictions:{p}}}"))
               for p in range(PARTS)}
    ok &= h.report(len(masters) >= 2, "the partitions' keys live on several masters",
                   f"{sorted(masters)}")
    # A slot migration under the running pods: the window keys of partition 0 first (the slot
    # half migrated: reads of those keys get ASK), then the whole slot (MOVED).
    slot = env.cluster.slot("{dw:dwtest:predictions:0}")
    src = env.cluster.master_of(slot)
    dst = next(p for p in env.cluster.masters() if p != src)
    before = settled_state(env)
    stored = {p: l.get("windows_stored") for p, l in state_check(env)[1].items()}
    env.cluster.migrate(slot, src, dst, only=":w:")
    ok &= same_state(env, before, "state read the same with the slot half migrated (ASK followed)")
    # a SCAN of the slot's master alone would miss the window keys already moved
    now = {p: l.get("windows_stored") for p, l in state_check(env)[1].items()}
    ok &= h.report(now == stored and stored[0], "state check lists the keys of a half-migrated "
                   "slot on both nodes", f"(windows stored before {stored}, now {now})")
    ckpts = [metric_at(port, "driftwatch_checkpoints_total") for _, port in pods]
    env.cluster.migrate(slot, src, dst)
    ok &= h.report(env.cluster.master_of(slot) == dst, "slot handed over",
                   f"(slot {slot} :{src} -> :{dst})")
    ok &= same_state(env, before, "state read the same after the migration")
    h.wait_for(lambda: all((metric_at(port, "driftwatch_checkpoints_total") or 0) > c + 5
                           for (_, port), c in zip(pods, ckpts)), 30,
               "checkpoints of every pod after the migration (MOVED followed)")
    ok &= h.report(not h.wait_exact(env, truth, 10), "exact after the migration")
    consumed = [metric_at(port, "driftwatch_messages_consumed_total") or 0 for _, port in pods]
    ok &= h.report(all(c > 0 for c in consumed) and sum(consumed) >= summary["predictions"],
                   "the three consumers shared the partitions", f"(messages consumed {consumed})")
    return finish_pods(env, pods, ok)


def crash():
    rnd = random.Random(int(time.time()))
    env = rc.ClusterEnv(partitions=PARTS, name="clcrash")
    env.config(checkpoint="300ms", session_timeout=3000)
    producer, done = start_traffic(env)
    pods = start_pods(env)
    h.wait_for(lambda: h.committed_offsets(env) > 0, 60, "a first checkpoint")
    kills, progress = 0, []
    while producer.is_alive() and kills < 3:
        time.sleep(rnd.uniform(1.0, 3.0))
        i = rnd.randrange(len(pods))
        proc, port = pods[i]
        proc.kill()  # SIGKILL: no checkpoint, no goodbye
        proc.wait()
        kills += 1
        progress.append(h.committed_offsets(env))
        print(f"killed consumer {i} ({kills}) at checkpointed offsets {progress[-1]}", flush=True)
        if i == 0:
            pods[0] = (env.start_run(), port)
        else:
            port = env.start_pod(f"pod{i + 1}")
            pods[i] = (env.procs[-1], port)
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 120)
    ok = h.report(not diffs, f"cluster: exact counts after {kills} kill -9 restarts",
                  f"({len(truth)} windows) {diffs[:5]}")
    ok &= h.report(kills >= 2 and progress[-1] < h.committed_offsets(env),
                   "kills happened while the stream was consumed", f"{progress}")
    return finish_pods(env, pods, ok)


def failover():
    # No window closes during the run (the traffic spans 300 s of event time): the scenario is
    # about the partition's rollback alone.
    return failover_run("clfail", lateness="300s", cut_s=1.0, checkpoint="200ms")


def failover_closing():
    # Windows close while the master dies: the lost checkpoints span two windows of event time
    # (15 s of event time per second, the replica cut off 8 s), so without the replicated
    # clocks the evaluator closes a window from clocks the failover loses, and the partition's
    # replayed predictions of it are late once the next checkpoint (100 ms) applied the cursor
    # (without them: 711 late, a window short by as many).
    return failover_run("clfailclose", lateness="5s", cut_s=8.0, checkpoint="100ms",
                        closing=True)


def failover_run(name, lateness, cut_s, checkpoint, closing=False):
    env = rc.ClusterEnv(partitions=PARTS, name=name)
    env.config(checkpoint=checkpoint, session_timeout=6000, lateness=lateness)
    producer, done = start_traffic(env, count=30000)
    pods = start_pods(env)
    # every pod owns its partitions and checkpoints them while traffic flows
    h.wait_for(lambda: all((metric_at(port, "driftwatch_checkpoints_total") or 0) > 0
                           for _, port in pods), 60, "checkpoints of every pod")
    slot = env.cluster.slot("{dw:dwtest:predictions:0}")
    victim = env.cluster.master_of(slot)
    before = sum(metric_at(port, "driftwatch_checkpoint_failures_total") or 0
                 for _, port in pods)
    # Every partition has a checkpoint the replica received: a failover that loses a
    # partition's first checkpoint loses its whole state (state.on_loss decides, see
    # docs/operations.md), which is not what this scenario is about.
    h.wait_for(lambda: all(env.redis("HEXISTS", f"{{dw:dwtest:predictions:{p}}}:meta",
                                     "off_pred") == "1" for p in range(PARTS)), 60,
               "a checkpoint of every partition")
    env.cluster.replica_caught_up(victim)
    replica = env.cluster.replica_of(victim)
    # The replica is stopped and cut from its master for a second before the master dies: the
    # checkpoints the master acknowledged meanwhile never reach it (replication is
    # asynchronous), as in a real failover that loses the last writes.
    env.cluster.signal(replica, signal.SIGSTOP)
    rc.cli(victim, "CLIENT", "KILL", "TYPE", "replica")
    if closing:
        # the cut-off replica acknowledges nothing: the clocks of the victim's partitions stop
        # being safe (WAIT), and the pods say so
        h.wait_for(lambda: sum(metric_at(port, "driftwatch_redis_unreplicated_checkpoints_total")
                               or 0 for _, port in pods) > 0, 30, "unreplicated checkpoints")
    time.sleep(cut_s)
    t0 = time.time()
    flowing = producer.is_alive()
    env.cluster.kill(victim)
    env.cluster.signal(replica, signal.SIGCONT)
    print(f"killed master :{victim} (slot {slot} of partition 0), replica :{replica}",
          flush=True)
    h.wait_for(lambda: env.cluster.master_of(slot) not in (None, victim) and
               env.cluster.all_ok(), 60, "the replica to take over")
    took = time.time() - t0
    failures = sum(metric_at(port, "driftwatch_checkpoint_failures_total") or 0
                   for _, port in pods) - before
    ok = h.report(flowing, "the master died while traffic flowed")
    ok &= h.report(failures > 0, "checkpoints failed while the master was down",
                  f"({failures:.0f} failures, failover in {took:.1f}s, new master "
                  f":{env.cluster.master_of(slot)})")
    ok &= h.report("consumption paused: state cannot be checkpointed" in logs(env),
                   "driftwatch paused")
    producer.join()
    truth, _ = done["truth"]
    diffs = h.wait_exact(env, truth, 120)
    ok &= h.report(not diffs, "cluster: exact counts after a master failover",
                   f"({len(truth)} windows) {diffs[:5]}")
    ok &= h.report("consumption resumed: checkpoint succeeded" in logs(env), "driftwatch resumed")
    if closing:
        late = sum(metric_at(port, "driftwatch_late_predictions_total") or 0 for _, port in pods)
        closes = sum(metric_at(port, "driftwatch_windows_evaluated_total") or 0 for _, port in pods)
        ok &= h.report(late == 0 and closes > 0, "windows closed and no prediction counted late "
                       "(gen sends none)",
                       f"({late:.0f} late, {closes:.0f} evaluations)")
    lost = logs(env).count("Redis lost acknowledged checkpoints")
    ok &= h.report(lost > 0, "the lost checkpoints were detected and reloaded with their offsets",
                   f"({lost} 'Redis lost acknowledged checkpoints' lines)")
    return finish_pods(env, pods, ok)


if __name__ == "__main__":
    sys.exit(h.run_scenarios({"exact": exact, "crash": crash, "failover": failover,
                              "failover_closing": failover_closing}))
