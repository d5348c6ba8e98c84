"""Integration harness: real redis-server, librdkafka's mock cluster (driftwatch dev-broker)
over TCP, a real HTTP webhook receiver, and the real driftwatch binary. Loopback only.

Every process started here is stopped by Env.close() (also at interpreter exit)."""
import atexit
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("DRIFTWATCH_BIN") or os.path.join(ROOT, "build", "driftwatch")


LIVE_ENVS = []


def print_logs_on_crash(kind, value, tb):
    """A test that dies on an exception (a wait_for timeout, say) prints the tail of every log
    of its live Envs first: CI keeps only the output, and the temporary directory goes."""
    for env in LIVE_ENVS:
        for name in sorted(os.listdir(env.dir)) if os.path.isdir(env.dir) else []:
            if name.endswith(".log"):
                with open(os.path.join(env.dir, name), errors="replace") as f:
                    print(f"---- {name} (tail) ----\n{f.read()[-3000:]}")
    sys.__excepthook__(kind, value, tb)


sys.excepthook = print_logs_on_crash


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_GIVEN_PORTS = set()


def free_port(bus=False):
    """A free loopback port below the kernel's ephemeral range: a port the kernel hands out
    (bind to 0) is also what it gives the local end of outgoing connections, and one of those
    took a server's port before the server bound it. bus: port + 10000 is free and below that
    range too (a Redis Cluster node's bus port)."""
    hi = _ephemeral_low() - (10000 if bus else 0)
    rnd = random.Random()
    while True:
        p = rnd.randrange(10000, hi)
        taken = {p, p + 10000} if bus else {p}
        if not taken & _GIVEN_PORTS and all(port_free(q) for q in taken):
            _GIVEN_PORTS.update(taken)
            return p


def wait_for(pred, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def eventually(pred, timeout, interval=0.2):
    """True when pred() holds within timeout seconds, else False (for report(), not raising)."""
    try:
        return bool(wait_for(pred, timeout, "condition", interval))
    except AssertionError:
        return False


class Receiver:
    """A webhook receiver on 127.0.0.1 recording every POST; can go down and come back."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.requests = []
        # Scripted answers, consumed one per POST: (status, delay_seconds); then 200 at once.
        self.answers = []
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def up(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    status, delay = rec.answers.pop(0) if rec.answers else (200, 0)
                    # a delayed answer outlives the client's timeout: recorded as status 0
                    rec.requests.append({"headers": {k.lower(): v for k, v in
                                                     self.headers.items()},
                                         "body": body, "time": time.time(),
                                         "status": 0 if delay else status, "path": self.path})
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def bodies(self, accepted_only=False):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests
                    if not accepted_only or 200 <= r["status"] < 300]

    def accepted(self):
        """Requests answered 2xx (a delayed answer may have timed out on the client's side)."""
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


class Alertmanager:
    """A real Prometheus Alertmanager on loopback (Debian prometheus-alertmanager), routing
    every alert to `webhook_url` with send_resolved, grouping and waits of one second."""

    def __init__(self, directory, webhook_url):
        self.port = free_port()
        cfg = os.path.join(directory, "alertmanager.yml")
        with open(cfg, "w") as f:
            f.write(f"""global:
  resolve_timeout: 5m
route:
  receiver: test
  group_by: [alertname, model, feature]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: "{webhook_url}"
        send_resolved: true
""")
        log = open(os.path.join(directory, "alertmanager.log"), "w")
        self.proc = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={cfg}",
             f"--storage.path={os.path.join(directory, 'am-data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=info"], stdout=log, stderr=log)
        wait_for(lambda: self._ready(), 30, "alertmanager")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def alerts(self):
        """Alertmanager's own list (GET /api/v2/alerts), active and resolved-not-yet-expired."""
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.loads(r.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Env:
    def __init__(self, partitions=4, name="test", extra_topics=(), brokers=1):
        self.dir = tempfile.mkdtemp(prefix=f"dw-{name}-")
        self.procs = []
        self.partitions = partitions
        self.extra_topics = list(extra_topics)
        self.brokers = brokers
        self.broker_lock = threading.Lock()
        self.redis_port = free_port()
        self.http_port = free_port()
        LIVE_ENVS.append(self)
        self._start_redis()
        self._start_broker()
        atexit.register(self.close)

    # ---- services ----
    def _start_redis(self):
        p = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", self.dir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_for(lambda: self.redis("PING") == "PONG", 10, "redis-server")

    def redis(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.redis_port), *args], capture_output=True,
                           text=True)
        return r.stdout.strip()

    def _start_broker(self):
        topics = []
        for t in ("predictions", "labels"):
            topics += ["--topic", f"{t}:{self.partitions}"]
        topics += ["--topic", "driftwatch-dead-letter:1", "--topic", "driftwatch-triggers:1"]
        for t in self.extra_topics:
            topics += ["--topic", t]
        log = open(os.path.join(self.dir, "broker.log"), "w")
        p = subprocess.Popen([BIN, "dev-broker", "--brokers", str(self.brokers), "--control",
                              *topics], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=log, text=True)
        self.procs.append(p)
        self.broker = p
        line = p.stdout.readline().strip()
        assert line.startswith("BOOTSTRAP="), f"dev-broker printed {line!r}"
        self.bootstrap = line.split("=", 1)[1]

    # ---- broker faults (dev-broker --control; see docs/testing.md) ----
    def broker_ctl(self, *words):
        """Sends one control command to dev-broker; returns the text after `ok` or raises."""
        line = " ".join(str(w) for w in words)
        with self.broker_lock:
            self.broker.stdin.write(line + "\n")
            self.broker.stdin.flush()
            answer = self.broker.stdout.readline().strip()
        if answer != "ok" and not answer.startswith("ok "):
            raise AssertionError(f"dev-broker {line!r}: {answer!r}")
        return answer[3:]

    def broker_errors(self, api, count, error):
        """The next `count` requests of `api` (e.g. "Produce", "Fetch") to any broker fail
        with `error` (a Kafka error name such as "NOT_LEADER_FOR_PARTITION")."""
        self.broker_ctl("errors", api, count, error)

    def broker_clear_errors(self, api):
        self.broker_ctl("errors", api, "clear")

    def broker_request_errors(self, broker_id, api, count, error, rtt_ms=0):
        """The next `count` requests of `api` to broker `broker_id` fail with `error`
        ("NO_ERROR" to succeed) after `rtt_ms` milliseconds."""
        self.broker_ctl("broker-errors", broker_id, api, count, error, rtt_ms)

    def broker_pending(self, broker_id, api):
        """Errors still pushed on broker `broker_id` for `api`."""
        return int(self.broker_ctl("pending", broker_id, api))

    def broker_down(self, broker_id):
        self.broker_ctl("broker", "down", broker_id)

    def broker_up(self, broker_id):
        self.broker_ctl("broker", "up", broker_id)

    def broker_rtt(self, broker_id, ms):
        self.broker_ctl("rtt", broker_id, ms)

    def move_coordinator(self, group, broker_id):
        self.broker_ctl("coordinator", group, broker_id)

    def move_leader(self, topic, partition, broker_id):
        self.broker_ctl("leader", topic, partition, broker_id)

    # ---- config and commands ----
    def config(self, extra="", webhook_url="", models=None, sinks="", rules="", triggers="",
               kafka=None, **over):
        """The test config. webhook_url adds a generic webhook sink named "webhook"; sinks,
        rules and triggers are YAML text placed under alerting.sinks, alerting.rules and
        triggers (indented by the caller as under those keys, two spaces deeper); kafka, a dict
        of more librdkafka properties under kafka."""
        settings = {
            "window_size": "60s", "lateness": "5s", "idle": "30s", "horizon": "900s",
            "checkpoint": "200ms", "evaluation": "200ms", "ref_windows": 2,
            "min_samples": 50, "session_timeout": 6000, "rolling": 6,
        }
        settings.update(over)
        models = models or run_gen_models()
        if webhook_url:
            sinks = f"""    webhook:
      type: webhook
      url: "{webhook_url}"
      backoff_initial: 200ms
      backoff_max: 2s
      max_attempts: 100
""" + sinks
        alerting = "alerting:\n"
        alerting += ("  sinks:\n" + sinks) if sinks else ""
        alerting += ("  rules:\n" + rules) if rules else ""
        alerting += ("triggers:\n" + triggers) if triggers else ""
        text = f"""group: dwtest
kafka:
  bootstrap.servers: "{self.bootstrap}"
  session.timeout.ms: {settings['session_timeout']}
  heartbeat.interval.ms: 500
  topic.metadata.refresh.interval.ms: 1000
{"".join(f"  {k}: {v}" + chr(10) for k, v in (kafka or {}).items())}redis:
  host: 127.0.0.1
  port: {self.redis_port}
window:
  size: {settings['window_size']}
  allowed_lateness: {settings['lateness']}
  idle_timeout: {settings['idle']}
  label_horizon: {settings['horizon']}
checkpoint:
  interval: {settings['checkpoint']}
evaluation:
  interval: {settings['evaluation']}
  rolling_windows: {settings['rolling']}
reference:
  windows: {settings['ref_windows']}
detectors:
  min_samples: {settings['min_samples']}
http:
  listen: "127.0.0.1:{self.http_port}"
{alerting}
{models}
{extra}
"""
        path = os.path.join(self.dir, "driftwatch.yaml")
        with open(path, "w") as f:
            f.write(text)
        self.config_path = path
        return path

    def gen(self, *args, truth=True, background=False):
        """Produces traffic; returns gen's truth, or with background=True the running
        process (read the truth with gen_wait once it ends)."""
        cmd = [BIN, "gen", "--brokers", self.bootstrap, "-q", *args]
        if truth:
            cmd += ["--truth", os.path.join(self.dir, "truth.jsonl")]
        if background:
            p = subprocess.Popen(cmd)
            self.procs.append(p)
            return p
        subprocess.run(cmd, check=True, timeout=300)
        return self.truth() if truth else None

    def gen_wait(self, p, timeout=300):
        """Waits for a background gen; returns its truth."""
        assert p.wait(timeout) == 0, "gen failed"
        return self.truth()

    def truth(self):
        rows = [json.loads(l) for l in open(os.path.join(self.dir, "truth.jsonl"))]
        return [r for r in rows if "summary" not in r], next(r["summary"] for r in rows
                                                             if "summary" in r)

    def start_run(self, name="run", environ=None):
        """`driftwatch run` on the config; environ: variables added to its environment."""
        log = open(os.path.join(self.dir, f"{name}.log"), "a")
        p = subprocess.Popen([BIN, "run", "-c", self.config_path], stdout=log, stderr=log,
                             env=dict(os.environ, **(environ or {})))
        self.procs.append(p)
        return p

    def start_pod(self, name="pod2"):
        """Another `driftwatch run` of the same group with its own HTTP port (the config's
        http.listen replaced); returns that port."""
        port = free_port()
        text = open(self.config_path).read().replace(f"127.0.0.1:{self.http_port}",
                                                     f"127.0.0.1:{port}")
        path = os.path.join(self.dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        log = open(os.path.join(self.dir, f"{name}.log"), "a")
        self.procs.append(subprocess.Popen([BIN, "run", "-c", path], stdout=log, stderr=log))
        return port

    def part_meta(self, p):
        """Partition p's meta hash as a dict of strings."""
        out = self.redis("HGETALL", f"{{dw:dwtest:predictions:{p}}}:meta").splitlines()
        return dict(zip(out[0::2], out[1::2]))

    def state_cmd(self, *args):
        """`driftwatch state ARGS -c CONFIG`, its output captured."""
        return subprocess.run([BIN, "state", *args, "-c", self.config_path],
                              capture_output=True, text=True, timeout=120)

    def inspect(self):
        r = subprocess.run([BIN, "inspect", "-c", self.config_path], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            return None
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def http_get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}",
                                        timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def metric(self, name, labels=""):
        status, text = self.http_get("/metrics")
        if status != 200:
            return None
        key = name + ("{" + labels + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return None

    def kcat(self, topic):
        r = subprocess.run(["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-e", "-q",
                            "-f", "%k\t%s\n"], capture_output=True, text=True, timeout=60)
        out = []
        for line in r.stdout.splitlines():
            if "\t" in line:
                k, v = line.split("\t", 1)
                out.append((k, v))
        return out

    def log_offsets(self, topic, at=-1):
        """{partition: offset} of `topic`'s logs: their end (at=-1) or start (at=-2), kcat -Q."""
        args = []
        for p in range(self.partitions):
            args += ["-t", f"{topic}:{p}:{at}"]
        r = subprocess.run(["kcat", "-b", self.bootstrap, "-Q", *args], capture_output=True,
                           text=True, timeout=60)
        ends = {}
        for line in r.stdout.splitlines():  # "labels [3] offset 24981"
            words = line.split()
            if len(words) == 4 and words[2] == "offset":
                ends[int(words[1].strip("[]"))] = int(words[3])
        return ends

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self in LIVE_ENVS:
            LIVE_ENVS.remove(self)
        if os.environ.get("DW_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, name="run"):
        try:
            return open(os.path.join(self.dir, f"{name}.log")).read()
        except OSError:
            return ""


class ReportWatch:
    """Polls the stored report of each window start of `model` (one MGET every `interval`
    seconds) and keeps the first close report and the last final report seen of each: the final
    report replaces the close one under the same key once the window's label horizon passed."""

    def __init__(self, env, starts, model="fraud", interval=0.3):
        self.env = env
        self.keys = [f"{{dw:dwtest}}:report:{model}:{s}" for s in starts]
        self.interval = interval
        self.close, self.final = {}, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for line in self.env.redis("MGET", *self.keys).splitlines():
                if not line.startswith("{"):
                    continue
                rep = json.loads(line)
                final = rep["stage"] == "final"
                if final or rep["window_start_ms"] not in self.close:
                    (self.final if final else self.close)[rep["window_start_ms"]] = rep
            time.sleep(self.interval)

    def done(self):
        self.stop.set()
        self.thread.join()


def committed_offsets(env):
    """Sum of the checkpointed prediction and label offsets over all partitions."""
    total = 0
    for p in range(env.partitions):
        for field in ("off_pred", "off_label"):
            v = env.redis("HGET", f"{{dw:dwtest:predictions:{p}}}:meta", field)
            total += max(int(v), 0) if v.lstrip("-").isdigit() else 0
    return total


def cmake_cache(build_dir):
    """A CMake build directory's cache: {name: value}."""
    cache = {}
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):[A-Z]+=(.*)$", line.rstrip("\n"))
            if m:
                cache[m.group(1)] = m.group(2)
    return cache


def run_gen_models(numeric=3, categorical=2):
    r = subprocess.run([BIN, "gen", "--print-models", "--numeric", str(numeric),
                        "--categorical", str(categorical)], capture_output=True, text=True,
                       check=True)
    return r.stdout


def compare_with_truth(state, truth):
    """Returns a list of differences between `driftwatch inspect` and gen's ground truth."""
    diffs = []
    by_start = {(s["model"], s["window_start_ms"]): s for s in (state or [])}
    for t in truth:
        s = by_start.pop((t["model"], t["window_start_ms"]), None)
        if s is None:
            diffs.append(f"window {t['window_start']} missing")
            continue
        # served and errors only when gen wrote statuses (--status-field)
        for k in ("predictions", "labeled", "correct", "duplicate_labels", "conflicts", "served",
                  "errors"):
            if k in t and s.get(k) != t[k]:
                diffs.append(f"window {t['window_start']} {k}: got {s.get(k)} want {t[k]}")
        for v, tv in t["versions"].items():
            sv = s["versions"].get(v)
            if sv is None:
                diffs.append(f"window {t['window_start']} version {v} missing")
                continue
            for k in ("predictions", "labeled", "correct", "served", "errors"):
                if k in tv and sv.get(k) != tv[k]:
                    diffs.append(f"window {t['window_start']} version {v} {k}: "
                                 f"{sv.get(k)} != {tv[k]}")
        for f, tf in t["features"].items():
            sf = s["features"].get(f, {})
            for k in ("count", "missing"):
                if sf.get(k) != tf[k]:
                    diffs.append(f"window {t['window_start']} feature {f} {k}: "
                                 f"{sf.get(k)} != {tf[k]}")
    for key in by_start:
        if by_start[key]["predictions"]:
            diffs.append(f"unexpected window {key}")
    return diffs


def same_number(a, b, rel):
    """Integers exactly; reals to the relative tolerance rel."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, int) and isinstance(b, int):
        return a == b and type(a) is type(b)
    return abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-300


def json_diff(a, b, rel, path=""):
    """Paths where JSON values a (run's) and b (replay's) differ, reals to rel (merging the
    partitions of run and the single stream of replay round differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'run' if k in a else 'replay'}")
            else:
                out += json_diff(a[k], b[k], rel, f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in json_diff(x, y, rel, f"{path}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and same_number(a, b, rel):
        return []
    return [] if a == b and type(a) is type(b) else [f"{path}: run {a!r}, replay {b!r}"]


def wait_exact(env, truth, timeout):
    """Waits until Redis state equals the truth; returns [] or the last differences."""
    deadline = time.time() + timeout
    diffs = ["not checked"]
    while time.time() < deadline:
        diffs = compare_with_truth(env.inspect(), truth)
        if not diffs:
            return []
        time.sleep(0.5)
    return diffs


def log_entries(text):
    """The JSON entries of a driftwatch log (its other lines, e.g. a sanitizer's, left out)."""
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


def run_exact(env, what, count=12000, timeout=90, environ=None):
    """A small exact-count pass: gen `count` predictions (labels, duplicate labels), start
    `driftwatch run` (environ: variables added to its environment), and report whether the
    state equals gen's truth within timeout seconds.
    @returns (ok, the run's process)."""
    truth, _ = env.gen("--count", str(count), "--eps", "50", "--label-delay", "20",
                       "--duplicate-labels", "0.05")
    run = env.start_run(environ=environ)
    t0 = time.time()
    diffs = wait_exact(env, truth, timeout)
    ok = report(not diffs, f"exact counts {what}",
                f"({len(truth)} windows, {time.time() - t0:.1f}s) {diffs[:5]}")
    return ok, run


def finish_consumer(proc):
    """SIGTERM; True when the consumer exited 0 within 30 s (sanitizer builds exit non-zero on
    a leak)."""
    proc.terminate()
    return proc.wait(30) == 0


def close(env, ok):
    """Prints the consumer's log's tail when something failed, stops every service; returns the
    exit code."""
    if not ok:
        print(env.log()[-4000:])
    env.close()
    return 0 if ok else 1


def finish(env, proc, ok):
    """Stops the consumer (finish_consumer), then close()."""
    ok &= report(finish_consumer(proc), "consumer stopped cleanly")
    return close(env, ok)


def report(ok, name, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}: {name} {detail}".rstrip())
    sys.stdout.flush()
    return bool(ok)


def run_scenarios(scenarios):
    """Runs the scenarios named on the command line (all by default) in order; returns the exit
    code (0 when every one passed)."""
    names = sys.argv[1:] or list(scenarios)
    ok = True
    for name in names:
        t0 = time.time()
        ok &= scenarios[name]()
        print(f"scenario {name}: {time.time() - t0:.1f}s")
        sys.stdout.flush()
    return 0 if ok else 1
