"""A Redis Cluster on loopback for the integration tests: 6 redis-server processes in cluster
mode (3 masters, 3 replicas) made with `redis-cli --cluster create`, and ClusterEnv, the
harness's Env with that cluster in place of the single redis-server (the config names its nodes
under redis.nodes with redis.cluster: true)."""
import os
import re
import signal
import subprocess

import harness as h

NODE_TIMEOUT_MS = 1500  # cluster-node-timeout: a dead master is failed over within ~2-3 s


def cluster_ports(n):
    """n ports whose cluster bus port (+10000) is free too."""
    return [h.free_port(bus=True) for _ in range(n)]


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                       timeout=30)
    return r.stdout.strip()


class Cluster:
    def __init__(self, directory, procs, n=6):
        self.dir = directory
        self.ports = cluster_ports(n)
        self.proc = {}
        for port in self.ports:
            d = os.path.join(directory, f"redis-{port}")
            os.makedirs(d, exist_ok=True)
            p = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled",
                 "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
                 str(NODE_TIMEOUT_MS), "--appendonly", "no", "--save", "", "--dir", d],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            self.proc[port] = p
        for port in self.ports:
            h.wait_for(lambda: cli(port, "PING") == "PONG", 10, f"redis-server :{port}")
        r = subprocess.run(["redis-cli", "--cluster", "create",
                            *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "1",
                            "--cluster-yes"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        h.wait_for(lambda: all(self.ok(p) for p in self.ports), 30, "cluster_state:ok")
        # a replica that never synced would not be elected: wait for every replication link
        h.wait_for(lambda: sum("master_link_status:up" in cli(p, "INFO", "replication")
                               for p in self.ports) == n // 2, 30, "the replicas in sync")

    def ok(self, port):
        info = cli(port, "CLUSTER", "INFO")
        return "cluster_state:ok" in info and "cluster_slots_ok:16384" in info

    def live_ports(self):
        return [p for p in self.ports if self.proc[p].poll() is None]

    def nodes(self):
        """The "host:port" seeds for redis.nodes."""
        return [f"127.0.0.1:{p}" for p in self.ports]

    def slot(self, key):
        return int(cli(self.live_ports()[0], "CLUSTER", "KEYSLOT", key))

    def master_of(self, slot):
        """Port of the master serving `slot` as a live node sees it, or None."""
        for line in cli(self.live_ports()[0], "CLUSTER", "NODES").splitlines():
            words = line.split()
            if len(words) < 8 or "master" not in words[2] or "fail" in words[2]:
                continue
            for rng in words[8:]:
                m = re.match(r"^(\d+)(?:-(\d+))?$", rng)
                if m and int(m.group(1)) <= slot <= int(m.group(2) or m.group(1)):
                    return int(words[1].split(":")[1].split("@")[0])
        return None

    def masters(self):
        return sorted({p for p in (self.master_of(s) for s in (0, 5500, 11000, 16383)) if p})

    def replica_of(self, port):
        """Port of a replica of the master at `port`."""
        lines = cli(self.live_ports()[0], "CLUSTER", "NODES").splitlines()
        ids = {l.split()[0]: int(l.split()[1].split(":")[1].split("@")[0]) for l in lines}
        for line in lines:
            words = line.split()
            if "slave" in words[2] and ids.get(words[3]) == port:
                return int(words[1].split(":")[1].split("@")[0])
        return None

    def replica_caught_up(self, master):
        """Waits until the replica of `master` has received everything written to it so far."""
        def offsets():
            info = cli(master, "INFO", "replication")
            now = int(re.search(r"master_repl_offset:(\d+)", info).group(1))
            got = [int(m) for m in re.findall(r"slave\d+:.*?offset=(\d+)", info)]
            return now, got
        target, _ = offsets()
        h.wait_for(lambda: any(o >= target for o in offsets()[1]), 30, "the replica in sync")

    def signal(self, port, sig):
        self.proc[port].send_signal(sig)

    def command_calls(self, name):
        """Calls of command `name` (as INFO commandstats spells it: "cluster|nodes") served by
        the live nodes so far."""
        total = 0
        for port in self.live_ports():
            m = re.search(rf"^cmdstat_{re.escape(name)}:calls=(\d+)",
                          cli(port, "INFO", "commandstats"), re.M)
            total += int(m.group(1)) if m else 0
        return total

    def node_id(self, port):
        return cli(port, "CLUSTER", "MYID")

    def migrate(self, slot, src, dst, only=None):
        """Moves the keys of `slot` from master src to master dst (those containing `only`,
        when given, leaving the slot half migrated: clients then get ASK for the moved keys);
        with only=None the slot is handed over to dst on every master (clients get MOVED)."""
        if cli(dst, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", self.node_id(src)) != "OK":
            pass  # already importing (the second call of a two-step migration)
        cli(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", self.node_id(dst))
        while True:
            keys = [k for k in cli(src, "CLUSTER", "GETKEYSINSLOT", str(slot), "1000").split("\n")
                    if k and (only is None or only in k)]
            if not keys:
                break
            out = cli(src, "MIGRATE", "127.0.0.1", str(dst), "", "0", "5000", "KEYS", *keys)
            assert out in ("OK", "NOKEY"), out
        if only is None:
            # the order Redis's manual gives: the importing node first, then the migrating
            # one, then the others (no MOVED back and forth between the two meanwhile)
            for port in [dst, src] + [p for p in self.masters() if p not in (src, dst)]:
                cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", self.node_id(dst))

    def kill(self, port):
        """kill -9 one node."""
        self.proc[port].send_signal(signal.SIGKILL)
        self.proc[port].wait()

    def all_ok(self):
        return all(self.ok(p) for p in self.live_ports())


class ClusterEnv(h.Env):
    """h.Env with a Redis Cluster: env.cluster, env.redis() follows redirections (-c)."""

    def _start_redis(self):
        self.cluster = Cluster(self.dir, self.procs)
        self.redis_port = self.cluster.ports[0]

    def redis(self, *args):
        r = subprocess.run(["redis-cli", "-c", "-p", str(self.cluster.live_ports()[0]), *args],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip()

    def config(self, *args, **kw):
        path = super().config(*args, **kw)
        text = open(path).read()
        single = f"redis:\n  host: 127.0.0.1\n  port: {self.redis_port}\n"
        assert single in text
        nodes = ", ".join(f'"{n}"' for n in self.cluster.nodes()[:3])
        text = text.replace(single, f"redis:\n  cluster: true\n  nodes: [{nodes}]\n")
        with open(path, "w") as f:
            f.write(text)
        return path
