"""Redis behind Sentinel: one master, one replica and three sentinels (Debian's redis-sentinel,
with their own requirepass) on loopback; driftwatch finds the master through
redis.sentinels/redis.master_name/redis.sentinel_password. Mid-run
the master is killed with kill -9: the sentinels promote the replica, driftwatch pauses,
resolves the new master through the sentinels (log "redis master resolved" naming the previous
one) and resumes, and the final state equals gen's truth exactly (writes the replica missed are
found by the checkpoint count and replayed from Kafka). A replica answering READONLY is counted
and its connection dropped (driftwatch_redis_readonly_replies_total)."""
import os
import subprocess
import sys
import time

import harness as h

MASTER_NAME = "m"
SENTINEL_PW = "sentinel-pw"  # the sentinels' own requirepass: redis.sentinel_password


def cli(port, *args, password=None):
    auth = ["--no-auth-warning", "-a", password] if password else []
    r = subprocess.run(["redis-cli", "-p", str(port), *auth, *args], capture_output=True,
                       text=True, timeout=10)
    return r.stdout.strip()


def sentinel_cli(port, *args):
    return cli(port, *args, password=SENTINEL_PW)


def start(env, args, name):
    log = open(os.path.join(env.dir, f"{name}.log"), "w")
    p = subprocess.Popen(args, stdout=log, stderr=log)
    env.procs.append(p)
    return p


def master_addr(sentinel_port):
    out = sentinel_cli(sentinel_port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME).split()
    return f"{out[0]}:{out[1]}" if len(out) == 2 else None


def main():
    env = h.Env(partitions=4, name="sentinel")
    master = env.procs[0]  # the harness's redis-server is the master
    replica_port = h.free_port()
    start(env, ["redis-server", "--port", str(replica_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", env.dir, "--replicaof", "127.0.0.1",
                str(env.redis_port)], "replica")
    h.wait_for(lambda: "master_link_status:up" in cli(replica_port, "INFO", "replication"), 20,
               "replica in sync")
    sentinels = []
    for i in range(3):
        port = h.free_port()
        conf = os.path.join(env.dir, f"sentinel{i}.conf")  # sentinels rewrite their config
        with open(conf, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {env.dir}\nrequirepass {SENTINEL_PW}\n"
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {env.redis_port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                    f"sentinel failover-timeout {MASTER_NAME} 3000\n"
                    f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        start(env, ["redis-sentinel", conf], f"sentinel{i}")
        sentinels.append(port)
    for port in sentinels:  # every sentinel sees the replica and the two others
        h.wait_for(lambda: "num-other-sentinels\n2" in sentinel_cli(port, "SENTINEL", "master",
                                                                   MASTER_NAME)
                   and "num-slaves\n1" in sentinel_cli(port, "SENTINEL", "master", MASTER_NAME),
                   30,
                   f"sentinel {port} ready")

    path = env.config()
    text = open(path).read()
    direct = f"redis:\n  host: 127.0.0.1\n  port: {env.redis_port}\n"
    assert direct in text
    listed = ", ".join(f'"127.0.0.1:{p}"' for p in sentinels)
    with open(path, "w") as f:
        f.write(text.replace(direct, f"redis:\n  sentinels: [{listed}]\n"
                                     f"  master_name: {MASTER_NAME}\n"
                                     f"  sentinel_password: {SENTINEL_PW}\n"))

    gen = env.gen("--count", "24000", "--eps", "100", "--rate", "1500", "--label-delay", "20",
                  "--duplicate-labels", "0.05", "--early-labels", "0.05", background=True)
    run = env.start_run()
    def consumed():
        return env.metric("driftwatch_messages_consumed_total", 'topic="predictions"') or 0

    ok = h.report(h.eventually(lambda: consumed() >= 4000 and
                               (env.metric("driftwatch_checkpoints_total") or 0) >= 8, 40),
                  "consumed and checkpointed through the sentinels' master", f"{consumed()}")
    consumed = consumed()
    master.kill()  # kill -9 the master mid-run
    master.wait()
    print(f"killed the master at {consumed:.0f} predictions consumed")
    new = f"127.0.0.1:{replica_port}"
    ok &= h.report(h.eventually(lambda: master_addr(sentinels[0]) == new, 30),
                   "the sentinels promoted the replica", str(master_addr(sentinels[0])))
    resolved = h.eventually(lambda: '"msg":"redis master resolved"' in env.log()
                            and f'"master":"{new}"' in env.log(), 30)
    line = next((l for l in env.log().splitlines() if f'"master":"{new}"' in l), "")
    ok &= h.report(resolved and f'"previous":"127.0.0.1:{env.redis_port}"' in line,
                   "driftwatch resolved the new master", line[:300])
    truth, _ = env.gen_wait(gen)
    ok &= h.report(consumed < 24000, "the master died before the stream was consumed",
                   f"{consumed:.0f}")
    t0 = time.time()
    diffs = h.wait_exact(env, truth, 90)
    ok &= h.report(not diffs, "exact counts after the failover",
                   f"({len(truth)} windows, {time.time() - t0:.1f}s) {diffs[:5]}")
    after = env.metric("driftwatch_checkpoints_total") or 0
    ok &= h.report(h.eventually(lambda: (env.metric("driftwatch_checkpoints_total") or 0)
                                > after, 10), "checkpoints go on after the failover")

    # READONLY: make the master a replica of nothing reachable behind driftwatch's back (as
    # a demoted master that kept its clients); the next write is refused READONLY, counted,
    # the connection dropped and the master asked of the sentinels again
    readonly0 = env.metric("driftwatch_redis_readonly_replies_total")
    ok &= h.report(readonly0 == 0, "no READONLY yet", str(readonly0))
    dead = h.free_port()
    cli(replica_port, "REPLICAOF", "127.0.0.1", str(dead))
    ok &= h.report(h.eventually(lambda: (env.metric("driftwatch_redis_readonly_replies_total")
                                         or 0) >= 1, 20), "a READONLY reply counted")
    ok &= h.report("redis answered READONLY" in env.log(), "and logged")
    # the sentinels still name it: its ROLE refuses it until it is a master again
    ok &= h.report(h.eventually(lambda: f"redis 127.0.0.1:{replica_port}: named master but its "
                                "ROLE is slave" in env.log(), 20),
                   "a named master that is a replica is not used (ROLE)")
    cli(replica_port, "REPLICAOF", "NO", "ONE")
    n = env.metric("driftwatch_checkpoints_total") or 0
    ok &= h.report(h.eventually(lambda: (env.metric("driftwatch_checkpoints_total") or 0) > n,
                                20), "checkpoints resume once it is a master again")
    # the sentinels' own password is sent: a wrong one is refused, naming the sentinel
    wrong = os.path.join(env.dir, "wrong.yaml")
    with open(wrong, "w") as f:
        f.write(open(env.config_path).read().replace(f"sentinel_password: {SENTINEL_PW}",
                                                     "sentinel_password: wrong"))
    r = subprocess.run([h.BIN, "inspect", "-c", wrong], capture_output=True, text=True,
                       timeout=60)
    ok &= h.report(r.returncode != 0 and f"redis AUTH to 127.0.0.1:{sentinels[0]} failed"
                   in r.stderr, "a wrong redis.sentinel_password is refused clearly",
                   r.stderr.strip()[:300])
    ok &= h.finish(env, run, ok) == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
