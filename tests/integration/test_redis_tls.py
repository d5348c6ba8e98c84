"""Redis over TLS through a stunnel client sidecar, with the stunnel.conf that
deploy/kustomize/overlays/redis-tls ships (its addresses and CA replaced): a throwaway CA and server certificate (openssl, in a temp dir), Debian's
redis-server with only a TLS port, and stunnel4 in client mode (verifyChain, CAfile,
checkHost) listening in clear on loopback. driftwatch, pointed at stunnel, counts exactly and
its state is in the TLS Redis; pointed straight at the TLS port it fails with a clear error;
`redis.tls: true` is refused at load with the sidecar message."""
import os
import re
import subprocess
import sys

import harness as h

SERVER_NAME = "redis.test"


def sh(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    sh("openssl", "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "ca.key",
       "-out", "ca.crt", "-days", "2", "-subj", "/CN=driftwatch test CA", cwd=d)
    sh("openssl", "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "server.key",
       "-out", "server.csr", "-subj", f"/CN={SERVER_NAME}", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(f"subjectAltName = DNS:{SERVER_NAME}\n")
    sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)


def start(env, args, name):
    log = open(os.path.join(env.dir, f"{name}.log"), "w")
    p = subprocess.Popen(args, stdout=log, stderr=log, cwd=env.dir)
    env.procs.append(p)
    return p


def main():
    env = h.Env(partitions=2, name="tls")
    d = env.dir
    make_certs(d)
    tls_port, tunnel_port = h.free_port(), h.free_port()
    start(env, ["redis-server", "--port", "0", "--tls-port", str(tls_port), "--bind",
                "127.0.0.1", "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
                "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--save", "",
                "--appendonly", "no", "--dir", d], "redis-tls")

    def tls_cli(*args):
        r = subprocess.run(["redis-cli", "-p", str(tls_port), "--tls", "--cacert",
                            os.path.join(d, "ca.crt"), "--sni", SERVER_NAME, *args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    h.wait_for(lambda: tls_cli("PING") == "PONG", 10, "redis-server on its TLS port")
    # the overlay's sidecar config, its addresses and CA replaced by the test's
    conf = open(os.path.join(h.ROOT, "deploy", "kustomize", "overlays", "redis-tls",
                             "stunnel.conf")).read()
    for key, value in (("accept", f"127.0.0.1:{tunnel_port}"),
                       ("connect", f"127.0.0.1:{tls_port}"),
                       ("CAfile", os.path.join(d, "ca.crt")), ("checkHost", SERVER_NAME)):
        conf, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", conf, flags=re.M)
        assert n == 1, f"stunnel.conf: {key} {n} times"
    for line in ("client = yes", "verifyChain = yes", "foreground = yes"):
        assert re.search(rf"^{line}$", conf, re.M), f"stunnel.conf: no '{line}'"
    with open(os.path.join(d, "stunnel.conf"), "w") as f:
        f.write(conf)
    start(env, ["stunnel4", os.path.join(d, "stunnel.conf")], "stunnel")
    h.wait_for(lambda: subprocess.run(["redis-cli", "-p", str(tunnel_port), "PING"],
                                      capture_output=True, text=True).stdout.strip() == "PONG",
               10, "stunnel")

    # the sidecar verifies: a certificate not issued to checkHost is refused
    wrong_port = h.free_port()
    with open(os.path.join(d, "stunnel-wrong.conf"), "w") as f:
        f.write(conf.replace(f"accept = 127.0.0.1:{tunnel_port}", f"accept = 127.0.0.1:"
                             f"{wrong_port}").replace(f"checkHost = {SERVER_NAME}",
                                                      "checkHost = other.test"))
    start(env, ["stunnel4", os.path.join(d, "stunnel-wrong.conf")], "stunnel-wrong")

    def refused():  # a client in front of the wrong sidecar: no PONG, and stunnel says why
        pong = subprocess.run(["redis-cli", "-p", str(wrong_port), "PING"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        log = open(os.path.join(d, "stunnel-wrong.log")).read()
        return pong != "PONG" and "Rejected by CERT" in log

    ok = h.report(h.eventually(refused, 15), "the sidecar refuses a certificate not issued to "
                  "checkHost", next((l for l in open(os.path.join(d, "stunnel-wrong.log"))
                                     if "Rejected" in l), "").strip())

    # refused: redis.tls
    env.redis_port = tls_port
    bad = env.config(extra="redis.tls: true\n")
    r = subprocess.run([h.BIN, "run", "-c", bad, "--check-config"], capture_output=True,
                       text=True, timeout=30)
    ok &= h.report(r.returncode != 0 and "redis.tls: hiredis 0.14 cannot speak TLS; run a TLS "
                  "sidecar (stunnel)" in r.stderr and "'Redis over TLS'" in r.stderr,
                  "redis.tls refused with the sidecar message", r.stderr.strip())

    # straight at the TLS port: a clear error, nothing written
    env.config()
    r = subprocess.run([h.BIN, "inspect", "-c", env.config_path], capture_output=True,
                       text=True, timeout=60)
    err = r.stderr.strip()
    want = re.compile(rf"redis 127.0.0.1:{tls_port}: no PONG to PING \(.+\): not Redis in "
                      r"clear\? A TLS port needs a sidecar: docs/operations.md, 'Redis over TLS'")
    ok &= h.report(r.returncode != 0 and want.search(err),
                   "inspect straight at the TLS port fails clearly", err[:300])
    r = subprocess.run([h.BIN, "run", "-c", env.config_path], capture_output=True, text=True,
                       timeout=60)
    ok &= h.report(r.returncode != 0 and want.search(r.stdout + r.stderr),
                   "run straight at the TLS port stops at start, clearly",
                   f"exit {r.returncode} {(r.stdout + r.stderr)[-300:]}")

    # through the sidecar: exact
    env.redis_port = tunnel_port
    env.config()
    exact, run = h.run_exact(env, "through stunnel")
    ok &= exact
    keys = tls_cli("--scan", "--pattern", "{dw:dwtest:*").splitlines()
    ok &= h.report(any(k.endswith("}:meta") for k in keys), "the state is in the TLS Redis",
                   f"{len(keys)} partition keys")
    return h.finish(env, run, ok)


if __name__ == "__main__":
    sys.exit(main())
