"""An ACL user with exactly the minimal ACL of docs/operations.md ("ACL users: the minimal
ACL", the line read from that page) and the default user disabled: driftwatch authenticates
with redis.username/redis.password and counts exactly. A user missing one command (hset) is
refused with NOPERM, and driftwatch says so in its log, naming the command, and writes
nothing: no silent drop."""
import os
import re
import subprocess
import sys

import harness as h

ADMIN = ("admin", "admin-pw")


def minimal_acl():
    text = open(os.path.join(h.ROOT, "docs", "operations.md")).read()
    lines = [l for l in text.splitlines() if l.startswith("ACL SETUSER driftwatch ")]
    assert len(lines) == 1, lines
    return lines[0]


def main():
    env = h.Env(partitions=2, name="acl")

    def admin(*args):
        r = subprocess.run(["redis-cli", "-p", str(env.redis_port), "--no-auth-warning",
                            "--user", ADMIN[0], "--pass", ADMIN[1], *args],
                           capture_output=True, text=True)
        return r.stdout.strip()

    # an administrator for the test, then the default user off: only named users get in
    assert env.redis("ACL", "SETUSER", ADMIN[0], "on", ">" + ADMIN[1], "~*", "&*",
                     "+@all") == "OK"
    assert admin("ACL", "SETUSER", "default", "off") == "OK"
    acl = minimal_acl().replace("<group>", "dwtest").replace("<password>", "dw-pw")
    words = acl.split()[2:]  # after ACL SETUSER
    assert admin("ACL", "SETUSER", *words) == "OK", acl
    # the same ACL without hset, for a second user
    broken = [w for w in words[1:] if w != "+hset"]
    assert len(broken) == len(words) - 2
    assert admin("ACL", "SETUSER", "nohset", *broken) == "OK"
    ok = h.report(env.redis("PING").startswith("NOAUTH") or "NOAUTH" in env.redis("GET", "x"),
                  "default user disabled", env.redis("PING"))

    env.config(extra="redis.username: driftwatch\nredis.password: dw-pw\n")
    exact, run = h.run_exact(env, "as the minimal-ACL user")
    ok &= exact
    ok &= h.report("NOPERM" not in env.log(), "no command refused", "")
    run.terminate()
    run.wait(10)

    # one permission less: refused loudly, nothing written under the other group
    path = env.config(extra="redis.username: nohset\nredis.password: dw-pw\ngroup: dwnohset\n")
    text = open(path).read().replace("group: dwtest\n", "", 1)
    with open(path, "w") as f:
        f.write(text)
    admin("ACL", "SETUSER", "nohset", "resetkeys", "~{dw:dwnohset}:*", "~{dw:dwnohset:*")
    env.start_run(name="nohset")
    refused = h.eventually(lambda: re.search(r"NOPERM[^\"]*'hset'", env.log("nohset")), 30)
    line = next((l for l in env.log("nohset").splitlines() if "NOPERM" in l), "")
    ok &= h.report(refused, "the refused command named in the log", line[:300])
    ok &= h.report(admin("KEYS", "{dw:dwnohset:*") == "", "nothing written without hset",
                   admin("KEYS", "{dw:dwnohset:*")[:200])
    env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
