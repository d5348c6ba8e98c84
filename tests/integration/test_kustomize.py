"""deploy/kustomize rendered by `kubectl kustomize` (base, overlays/example and
overlays/redis-tls) and checked:

- every Service selects the pods of a Deployment, and its targetPort is a port of their
  container; every Deployment's selector matches its own pod labels; the PodDisruptionBudget
  and the ServiceMonitor select driftwatch's pods / Service and nothing else;
- ports agree: the config's http.listen port, the container port `http`, the Service's target,
  the probes' port and the ServiceMonitor's endpoint;
- the pod runs as the Dockerfile's non-root user with a read-only root filesystem and no
  privilege escalation, has resources, a grace period and all three probes;
- the Deployment reads the generated ConfigMap (at the path `-c` names) and Secret (names with
  their hash: kustomize rewrote the references); the rendered driftwatch.yaml passes
  `driftwatch run --check-config` with the rendered Secret's variables as its only environment;
- the KEDA ScaledObject scales that Deployment on the config's group and predictions topic,
  its maxReplicaCount is at most the partition count it declares, and its bootstrap variable is
  in the Secret; the PrometheusRule's rules pass `promtool check rules`;
- the redis-tls overlay's stunnel sidecar accepts on the config's redis.host/port inside the
  pod, in client mode, verifying the chain and host name against a CA from a mounted Secret
  (test_redis_tls.py runs its stunnel.conf in front of a TLS redis-server);
- the probe paths and the ServiceMonitor's path are served by driftwatch: the rendered config,
  pointed at a local redis-server and dev-broker, runs; every probe path answers 200 and
  /metrics has driftwatch's series; SIGTERM ends it within terminationGracePeriodSeconds.

kubectl: KUBECTL, else `kubectl` on PATH (scripts/deps.sh installs Debian's kubernetes-client).
Without it the test FAILS: a skipped check is not a pass."""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

import harness as h

KUSTOMIZE = os.path.join(h.ROOT, "deploy", "kustomize")
TARGETS = {"base": os.path.join(KUSTOMIZE, "base"),
           "overlays/example": os.path.join(KUSTOMIZE, "overlays", "example"),
           "overlays/redis-tls": os.path.join(KUSTOMIZE, "overlays", "redis-tls")}
DRIFTWATCH = "driftwatch"


def render(kubectl, path):
    r = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind, name_prefix=DRIFTWATCH):
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name_prefix or
             d["metadata"]["name"].startswith(name_prefix + "-")]
    assert len(found) == 1, f"{len(found)} {kind} named {name_prefix}"
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_labels(dep):
    return dep["spec"]["template"]["metadata"].get("labels", {})


def container_port(container, port):
    """The containerPort a Service targetPort / probe port names (by name or number)."""
    for p in container.get("ports", []):
        if port == p.get("name") or port == p["containerPort"]:
            return p["containerPort"]
    return None


def scalars(node):
    """Every string value of a parsed YAML tree (the config's ${VAR} references are in them)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in scalars(v)]
    if isinstance(node, list):
        return [s for v in node for s in scalars(v)]
    return [node] if isinstance(node, str) else []


def dockerfile_uid():
    with open(os.path.join(h.ROOT, "Dockerfile")) as f:
        users = re.findall(r"^USER\s+(\d+)", f.read(), re.M)
    return int(users[-1]) if users else None


def project_version():
    with open(os.path.join(h.ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(driftwatch VERSION (\S+)", f.read()).group(1)


def check_rendered(name, docs, tmp):
    """The static checks on one rendered target; returns (ok, facts for the live check)."""
    ok = True
    deps = by_kind(docs, "Deployment")
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    ctr = next(c for c in pod["containers"] if c["name"] == DRIFTWATCH)
    cm = one(docs, "ConfigMap")
    secret = one(docs, "Secret")
    config = yaml.safe_load(cm["data"]["driftwatch.yaml"])
    tag = f"{name}:"

    for d in deps:
        ok &= h.report(selects(d["spec"]["selector"]["matchLabels"], pod_labels(d)),
                       f"{tag} Deployment {d['metadata']['name']} selects its own pods")
    for svc in by_kind(docs, "Service"):
        sel = svc["spec"].get("selector", {})
        targets = [d for d in deps if selects(sel, pod_labels(d))]
        ports_ok = bool(targets) and all(
            any(container_port(c, p["targetPort"]) for c in d["spec"]["template"]["spec"]
                ["containers"]) for d in targets for p in svc["spec"]["ports"])
        ok &= h.report(len(targets) == 1 and ports_ok,
                       f"{tag} Service {svc['metadata']['name']} selects the pods of one "
                       "Deployment and targets a port of their container",
                       f"({[d['metadata']['name'] for d in targets]})")
    svc = one(docs, "Service")
    pdb = one(docs, "PodDisruptionBudget")
    pdb_sel = pdb["spec"]["selector"]["matchLabels"]
    ok &= h.report([d["metadata"]["name"] for d in deps if selects(pdb_sel, pod_labels(d))] ==
                   [dep["metadata"]["name"]], f"{tag} the PodDisruptionBudget covers driftwatch's "
                   "pods only")
    sm = one(docs, "ServiceMonitor")
    sm_sel = sm["spec"]["selector"]["matchLabels"]
    sm_svcs = [s["metadata"]["name"] for s in by_kind(docs, "Service")
               if selects(sm_sel, s["metadata"].get("labels", {}))]
    ok &= h.report(sm_svcs == [svc["metadata"]["name"]], f"{tag} the ServiceMonitor selects "
                   "driftwatch's Service only", f"({sm_svcs})")

    # Ports: config -> container -> Service -> ServiceMonitor, and the probes.
    listen_port = int(str(config["http"]["listen"]).rsplit(":", 1)[1])
    http_port = container_port(ctr, "http")
    svc_port = next(p for p in svc["spec"]["ports"] if p["name"] == "http")
    sm_ep = sm["spec"]["endpoints"][0]
    probes = {k: ctr.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    probe_ports = {k: container_port(ctr, p["httpGet"]["port"]) for k, p in probes.items() if p}
    ok &= h.report(listen_port == http_port == container_port(ctr, svc_port["targetPort"]) and
                   sm_ep["port"] == svc_port["name"] and
                   set(probe_ports.values()) == {listen_port},
                   f"{tag} ports agree: http.listen, container, Service, ServiceMonitor, probes",
                   f"(listen {listen_port}, container {http_port}, Service {svc_port}, "
                   f"ServiceMonitor {sm_ep['port']}, probes {probe_ports})")
    paths = {k: p["httpGet"]["path"] for k, p in probes.items() if p}
    ok &= h.report(len(paths) == 3 and paths["livenessProbe"] == "/livez" and
                   paths["readinessProbe"] == "/readyz" and paths["startupProbe"] == "/livez",
                   f"{tag} startup and liveness probes on /livez, readiness on /readyz",
                   f"({paths})")

    psc, csc = pod.get("securityContext", {}), ctr.get("securityContext", {})
    ok &= h.report(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == dockerfile_uid()
                   and csc.get("readOnlyRootFilesystem") is True
                   and csc.get("allowPrivilegeEscalation") is False
                   and "ALL" in csc.get("capabilities", {}).get("drop", []),
                   f"{tag} non-root (the Dockerfile's uid), read-only root, no escalation, "
                   "no capabilities", f"(pod {psc}, container {csc})")
    res = ctr.get("resources", {})
    grace = pod.get("terminationGracePeriodSeconds")
    ok &= h.report(bool(res.get("requests")) and bool(res.get("limits", {}).get("memory")) and
                   isinstance(grace, int) and grace >= 10,
                   f"{tag} resources and a termination grace period", f"({res}, {grace})")
    ok &= h.report(ctr["image"] == f"driftwatch:{project_version()}",
                   f"{tag} the image is the project's version", f"({ctr['image']})")

    # The generated ConfigMap and Secret, under their hashed names, are what the pod reads.
    args = ctr.get("args", [])
    cfg_path = args[args.index("-c") + 1] if "-c" in args else ""
    mounts = {m["name"]: m["mountPath"] for m in ctr.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounted = [n for n, v in vols.items() if v.get("configMap", {}).get("name") ==
               cm["metadata"]["name"]]
    ok &= h.report(len(mounted) == 1 and
                   os.path.join(mounts.get(mounted[0], "?"), "driftwatch.yaml") == cfg_path,
                   f"{tag} `run -c` reads the generated ConfigMap's driftwatch.yaml",
                   f"({cfg_path}, ConfigMap {cm['metadata']['name']})")
    env_from = [e["secretRef"]["name"] for e in ctr.get("envFrom", []) if "secretRef" in e]
    ok &= h.report(env_from == [secret["metadata"]["name"]],
                   f"{tag} the environment comes from the generated Secret", f"({env_from})")
    secret_env = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    for k, v in secret.get("stringData", {}).items():
        secret_env[k] = v
    cfg_file = os.path.join(tmp, f"{name.replace('/', '_')}.yaml")
    with open(cfg_file, "w") as f:
        f.write(cm["data"]["driftwatch.yaml"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **secret_env}
    for extra in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if extra in os.environ:
            env[extra] = os.environ[extra]
    r = subprocess.run([h.BIN, "run", "-c", cfg_file, "--check-config"], env=env,
                       capture_output=True, text=True, timeout=60)
    masked = all(v not in r.stdout for k, v in secret_env.items()
                 if k in ("REDIS_PASSWORD", "ALERT_WEBHOOK_SECRET"))
    ok &= h.report(r.returncode == 0 and masked, f"{tag} the rendered driftwatch.yaml passes "
                   "`run --check-config` with the Secret's variables alone (secrets masked)",
                   r.stderr.strip()[-500:])
    refs = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", " ".join(scalars(config))))
    ok &= h.report(refs and refs <= set(secret_env), f"{tag} every ${{VAR}} of the config is a "
                   "key of the Secret", f"({sorted(refs)} vs {sorted(secret_env)})")

    so = one(docs, "ScaledObject")
    trig = next(t for t in so["spec"]["triggers"] if t["type"] == "kafka")["metadata"]
    parts = int(so["metadata"].get("annotations", {}).get("driftwatch/topic-partitions", "0"))
    group = config.get("group", "driftwatch")
    topic = config.get("topics", {}).get("predictions", "predictions")
    ok &= h.report(so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"] and
                   "replicas" not in dep["spec"] and trig["consumerGroup"] == group and
                   trig["topic"] == topic and trig.get("bootstrapServersFromEnv") in secret_env,
                   f"{tag} the ScaledObject scales driftwatch (which leaves replicas to it) on "
                   "its group's lag on the predictions topic",
                   f"({so['spec']['scaleTargetRef']}, {trig})")
    ok &= h.report(0 < so["spec"].get("minReplicaCount", 0) <= so["spec"]["maxReplicaCount"]
                   <= parts, f"{tag} maxReplicaCount is at most the partition count",
                   f"(min {so['spec'].get('minReplicaCount')}, max "
                   f"{so['spec']['maxReplicaCount']}, partitions {parts})")

    pr = one(docs, "PrometheusRule")
    shipped = yaml.safe_load(open(os.path.join(h.ROOT, "deploy", "prometheus",
                                               "driftwatch-rules.yaml")))["groups"]
    ok &= h.report(pr["spec"]["groups"] == shipped,
                   f"{tag} the PrometheusRule is the shipped rules file "
                   "(scripts/gen-prometheusrule.py)", f"({len(shipped)} groups)")
    rules_file = os.path.join(tmp, f"{name.replace('/', '_')}-rules.yaml")
    with open(rules_file, "w") as f:
        yaml.safe_dump(pr["spec"], f)
    promtool = shutil.which("promtool")
    if promtool is None:
        ok &= h.report(False, f"{tag} promtool is installed (scripts/deps.sh: prometheus)")
    else:
        r = subprocess.run([promtool, "check", "rules", rules_file], capture_output=True,
                           text=True)
        ok &= h.report(r.returncode == 0, f"{tag} the PrometheusRule passes promtool check rules",
                       (r.stdout + r.stderr).strip()[-500:])
    facts = {"config": config, "secret_env": secret_env, "paths": sorted(set(paths.values())),
             "metrics_path": sm_ep.get("path", "/metrics"), "grace": grace}
    return ok, facts


def stunnel_options(text):
    """The options of a stunnel.conf ("key = value" lines, ';' comments): {key: value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith((";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def check_tls_sidecar(name, docs, facts):
    """The redis-tls overlay: a stunnel container whose config (its ConfigMap, as mounted) accepts
    on driftwatch's redis.host/port in the pod, in client mode with the chain and the host name
    verified against a CA file inside a mounted Secret; driftwatch's config has no TLS key."""
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    st = [c for c in pod["containers"] if c["name"] == "stunnel"]
    ok = h.report(len(st) == 1, f"{name}: a stunnel sidecar container")
    if not st:
        return False
    st = st[0]
    conf_path = st.get("args", [""])[0]
    mounts = {m["mountPath"]: vols.get(m["name"], {}) for m in st.get("volumeMounts", [])}
    cm_name = mounts.get(os.path.dirname(conf_path), {}).get("configMap", {}).get("name")
    cms = [c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"] == cm_name]
    ok &= h.report(len(cms) == 1 and os.path.basename(conf_path) in cms[0]["data"],
                   f"{name}: stunnel reads its config from a generated ConfigMap",
                   f"({conf_path}, {cm_name})")
    if len(cms) != 1 or os.path.basename(conf_path) not in cms[0]["data"]:
        return False
    opts = stunnel_options(cms[0]["data"][os.path.basename(conf_path)])
    redis = facts["config"]["redis"]
    ok &= h.report(opts.get("accept") == f"{redis['host']}:{redis['port']}" and
                   redis["host"] == "127.0.0.1",
                   f"{name}: stunnel accepts on driftwatch's redis.host:port, in the pod only",
                   f"(accept {opts.get('accept')}, redis {redis['host']}:{redis['port']})")
    ca_dir = os.path.dirname(opts.get("CAfile", ""))
    ok &= h.report(opts.get("client") == "yes" and opts.get("verifyChain") == "yes" and
                   bool(opts.get("checkHost")) and bool(opts.get("connect")) and
                   "secret" in mounts.get(ca_dir, {}),
                   f"{name}: client mode, chain and host name verified, CAfile in a mounted "
                   "Secret", f"({opts}, mounts {sorted(mounts)})")
    ok &= h.report(not any(k.startswith(("tls", "ssl")) for k in redis),
                   f"{name}: no redis.tls key (refused: hiredis 0.14 has no TLS)")
    csc = st.get("securityContext", {})
    ok &= h.report(csc.get("runAsNonRoot") is True and csc.get("readOnlyRootFilesystem") is True
                   and csc.get("allowPrivilegeEscalation") is False
                   and "ALL" in csc.get("capabilities", {}).get("drop", [])
                   and bool(st.get("resources", {}).get("limits", {}).get("memory")),
                   f"{name}: the sidecar is non-root, read-only, unprivileged, with a memory "
                   "limit", f"({csc})")
    return ok


def check_live(facts):
    """The rendered config, its addresses pointed at local servers, served by the real binary."""
    env = h.Env(partitions=4, name="kustomize")
    config = facts["config"]
    config["kafka"]["bootstrap.servers"] = "${KAFKA_BOOTSTRAP}"
    config["redis"]["host"] = "127.0.0.1"
    config["redis"]["port"] = env.redis_port
    config["http"]["listen"] = f"127.0.0.1:{env.http_port}"
    config["kafka"]["session.timeout.ms"] = 6000
    path = os.path.join(env.dir, "driftwatch.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    run_env = dict(os.environ)
    run_env.update(facts["secret_env"])
    run_env.update({"KAFKA_BOOTSTRAP": env.bootstrap, "REDIS_PASSWORD": ""})
    log = open(os.path.join(env.dir, "run.log"), "w")
    proc = subprocess.Popen([h.BIN, "run", "-c", path], env=run_env, stdout=log, stderr=log)
    env.procs.append(proc)
    ok = True
    for p in facts["paths"]:
        got = h.eventually(lambda: env.http_get(p)[0] == 200, 60)
        ok &= h.report(got, f"driftwatch serves the probe path {p} (200)",
                       str(env.http_get(p)))
    status, text = env.http_get(facts["metrics_path"])
    ok &= h.report(status == 200 and "driftwatch_build_info" in text,
                   f"driftwatch serves the ServiceMonitor's path {facts['metrics_path']}")
    t0 = time.time()
    proc.terminate()
    try:
        rc = proc.wait(facts["grace"])
    except subprocess.TimeoutExpired:
        rc = None
    ok &= h.report(rc == 0, "SIGTERM: driftwatch exits 0 within terminationGracePeriodSeconds",
                   f"(exit {rc} after {time.time() - t0:.1f}s of {facts['grace']}s)")
    if not ok:
        print(env.log()[-3000:])
    env.close()
    return ok


def main():
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl is None:
        h.report(False, "kubectl is installed", "(none on PATH: run scripts/deps.sh, which "
                 "installs Debian's kubernetes-client, or set KUBECTL)")
        return 1
    v = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True)
    print(f"kubectl: {kubectl}: {(v.stdout or v.stderr).strip().splitlines()[0]}")
    ok = True
    tmp = tempfile.mkdtemp(prefix="dw-kustomize-")
    facts = None
    for name, path in TARGETS.items():
        try:
            docs = render(kubectl, path)
        except AssertionError as e:
            ok &= h.report(False, f"kubectl kustomize {name} renders", str(e))
            continue
        kinds = sorted({d["kind"] for d in docs})
        ok &= h.report(True, f"kubectl kustomize {name} renders", f"({len(docs)} objects: {kinds})")
        good, f = check_rendered(name, docs, tmp)
        ok &= good
        if name == "overlays/redis-tls":
            ok &= check_tls_sidecar(name, docs, f)
        if name == "overlays/example":
            redis_svc = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] ==
                         f["config"]["redis"]["host"]]
            ok &= h.report(len(redis_svc) == 1 and redis_svc[0]["spec"]["ports"][0]["port"] ==
                           f["config"]["redis"]["port"], f"{name}: redis.host is the example's "
                           "Redis Service, on its port")
            url = f["secret_env"].get("ALERT_WEBHOOK_URL", "")
            hook = [s for s in by_kind(docs, "Service")
                    if url.startswith(f"http://{s['metadata']['name']}:"
                                      f"{s['spec']['ports'][0]['port']}/")]
            ok &= h.report(len(hook) == 1, f"{name}: the webhook URL is the example's receiver",
                           f"({url})")
            facts = f
    shutil.rmtree(tmp, ignore_errors=True)
    if facts is not None:
        ok &= check_live(facts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
