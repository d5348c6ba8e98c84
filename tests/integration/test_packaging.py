"""Packaging: `cmake --install` and the Dockerfile, checked as far as a machine without a
container engine can check them.

- `cmake --install <build> --prefix <tmp>` installs bin/driftwatch, the docs and the example
  config; the installed binary runs `--version` and prints the project's version.
- Every shared library `ldd` lists for the installed binary (the dynamic loader included)
  belongs, by `dpkg -S`, to a Debian package that the Dockerfile's runtime stage names on its
  `apt-get install` line. The build machine is Debian 12 like the image, so the packages are
  the ones the image gets. A copy of the Dockerfile with one package removed must fail the
  same check (the check is not vacuous).
- The runtime stage: exec-form ENTRYPOINT (the binary is PID 1 and receives SIGTERM) naming
  where the installed tree lands (COPY --from the build stage's install prefix), a non-root
  USER; the build stage runs scripts/deps.sh, does not build with the sanitizers and installs
  the release build of scripts/pgo.sh (the one bench/run.sh measures).

In a sanitizer build (DW_SANITIZE=ON) the binary also loads the ASan/UBSan runtimes, which the
image never has (its build does not enable them): their packages and the ones those runtimes
load alone are accepted, and the output says so."""
import atexit
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import harness as h

DOCKERFILE = os.path.join(h.ROOT, "Dockerfile")
SANITIZER_PKGS = re.compile(r"^lib(asan|ubsan)\d+$")


def dockerfile_stages(text):
    """[(from_line, [(INSTRUCTION, args)])] with continuation lines joined, comments dropped."""
    logical, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        logical.append(cur + line)
        cur = ""
    if cur:
        logical.append(cur)
    stages = []
    for line in logical:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append((args.strip(), []))
        elif stages:
            stages[-1][1].append((instr, args.strip()))
    return stages


def apt_packages(run_args):
    """Package names of every `apt-get install` in one RUN instruction."""
    pkgs = []
    for cmd in re.split(r"&&|;|\|\|", run_args):
        words = shlex.split(cmd)
        if len(words) >= 2 and words[0] == "apt-get" and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def ldd_paths(binary):
    """Absolute paths of every library the dynamic loader resolves for binary; raises on a
    library it cannot find."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            raise AssertionError(f"ldd: {line}")
        m = re.match(r"^\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or \
            re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            paths.append(m.group(1))
    return paths


@functools.lru_cache(maxsize=None)
def owning_package(path):
    """The Debian package of a library path (dpkg -S), trying the path as ldd printed it, its
    real path, and the other side of Debian's merged /usr."""
    real = os.path.realpath(path)
    tries = [path, real]
    for p in (path, real):
        tries.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    for p in tries:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            line = r.stdout.splitlines()[0]
            return line.split(":", 1)[0].split(",")[0].strip()
    return None


def check_ldd(binary, runtime_pkgs, sanitized):
    """(ok, missing {package: [libraries]}, unowned [paths], accepted sanitizer packages).
    In a sanitizer build, the sanitizer runtimes and the packages they load themselves
    (libstdc++6, libgcc-s1) are accepted."""
    paths = ldd_paths(binary)
    sanitizer = set()
    if sanitized:
        for path in paths:
            if SANITIZER_PKGS.match(owning_package(path) or ""):
                sanitizer.add(owning_package(path))
                sanitizer.update(owning_package(p) for p in ldd_paths(path))
    missing, unowned = {}, []
    for path in paths:
        pkg = owning_package(path)
        if pkg is None:
            unowned.append(path)
        elif pkg not in runtime_pkgs and pkg not in sanitizer:
            missing.setdefault(pkg, []).append(path)
    return not missing and not unowned, missing, unowned, sanitizer - runtime_pkgs


def main():
    ok = True
    build_dir = os.path.dirname(os.path.abspath(h.BIN))
    cache = h.cmake_cache(build_dir)
    version = cache.get("CMAKE_PROJECT_VERSION", "")
    sanitized = cache.get("DW_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE", "YES")

    prefix = tempfile.mkdtemp(prefix="dw-install-")
    atexit.register(shutil.rmtree, prefix, True)
    r = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix],
                       capture_output=True, text=True)
    ok &= h.report(r.returncode == 0, "cmake --install into a temporary prefix",
                   r.stderr.strip()[-2000:])
    binary = os.path.join(prefix, "bin", "driftwatch")
    doc = os.path.join(prefix, "share", "doc", "driftwatch")
    files = [binary, os.path.join(doc, "README.md"), os.path.join(doc, "docs", "operations.md"),
             os.path.join(doc, "docs", "configuration.md"),
             os.path.join(doc, "examples", "driftwatch.example.yaml")]
    absent = [f for f in files if not os.path.isfile(f)]
    ok &= h.report(not absent, "the binary, the docs and the example config are installed",
                   f"(missing: {absent})" if absent else "")
    if not os.path.isfile(binary) or not os.path.isfile(DOCKERFILE):
        h.report(False, "an installed binary and a Dockerfile to check",
                 f"({binary}, {DOCKERFILE})")
        return 1
    r = subprocess.run([binary, "--version"], capture_output=True, text=True)
    ok &= h.report(r.returncode == 0 and r.stdout.strip() == f"driftwatch {version}",
                   "the installed binary runs --version", repr(r.stdout.strip()))

    with open(DOCKERFILE) as f:
        text = f.read()
    stages = dockerfile_stages(text)
    ok &= h.report(len(stages) >= 2, "the Dockerfile has a build and a runtime stage",
                   f"({[s[0] for s in stages]})")
    build_from, build = stages[0]
    runtime_from, runtime = stages[-1]
    ok &= h.report(all(s[0].split()[0] == "debian:12-slim" for s in stages),
                   "every stage is debian:12-slim", f"({[s[0] for s in stages]})")
    build_runs = " && ".join(a for i, a in build if i == "RUN")
    ok &= h.report("scripts/deps.sh" in build_runs, "the build stage installs with scripts/deps.sh")
    ok &= h.report("DW_SANITIZE=ON" not in build_runs, "the image is not a sanitizer build")
    pgo_m = re.search(r"scripts/pgo\.sh (\S+)", build_runs)
    install_m = re.search(r"cmake --install (\S+)", build_runs)
    ok &= h.report(bool(pgo_m and install_m and pgo_m.group(1) == install_m.group(1)),
                   "the image installs the release build of scripts/pgo.sh",
                   f"(pgo.sh builds {pgo_m and pgo_m.group(1)}, installed from "
                   f"{install_m and install_m.group(1)})")
    prefix_m = re.search(r"cmake --install \S+ --prefix (\S+)", build_runs)
    copies = [a.split() for i, a in runtime if i == "COPY" and a.startswith("--from=")]
    entry = [a for i, a in runtime if i == "ENTRYPOINT"]
    users = [a for i, a in runtime if i == "USER"]
    try:
        entry_argv = json.loads(entry[-1]) if entry else None
    except json.JSONDecodeError:
        entry_argv = None
    ok &= h.report(isinstance(entry_argv, list) and entry_argv and
                   all(isinstance(a, str) for a in entry_argv),
                   "ENTRYPOINT is exec form (the binary is PID 1 and gets SIGTERM)", str(entry))
    landed = None
    if prefix_m:
        src = prefix_m.group(1).rstrip("/")
        for c in copies:
            if len(c) == 3 and c[1].rstrip("/") == src:
                landed = os.path.join(c[2], "bin", "driftwatch")
    ok &= h.report(bool(entry_argv) and landed is not None and entry_argv[0] == landed,
                   "ENTRYPOINT runs the binary the build stage installed and the runtime copied",
                   f"(entrypoint {entry_argv and entry_argv[0]}, installed tree lands at {landed})")
    user = users[-1].split(":")[0] if users else ""
    ok &= h.report(user not in ("", "root", "0"), "the runtime stage runs as a non-root USER",
                   f"({users})")

    runtime_pkgs = set()
    for i, a in runtime:
        if i == "RUN":
            runtime_pkgs.update(apt_packages(a))
    good, missing, unowned, sanitizer = check_ldd(binary, runtime_pkgs, sanitized)
    n = len(ldd_paths(binary))
    ok &= h.report(good, f"all {n} libraries ldd lists come from packages the runtime stage "
                   "installs", f"(missing packages: {missing}; no package: {unowned})"
                   if not good else "")
    if sanitizer:
        print(f"note: sanitizer build: {sorted(sanitizer)} accepted (the image is built "
              "without DW_SANITIZE)")
    # An operator's LD_PRELOAD=libmimalloc.so.2 or libtcmalloc_minimal.so.4 (docs/scaling.md,
    # "Another allocator") finds the library, and what it loads, in the image.
    for pkg, soname in (("libmimalloc2.0", "libmimalloc.so.2"),
                        ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4")):
        lib = [l for l in subprocess.run(["dpkg", "-L", pkg], capture_output=True,
                                         text=True).stdout.split() if l.endswith("/" + soname)]
        loads_ok, missing, unowned, _ = (check_ldd(lib[0], runtime_pkgs, False) if lib
                                         else (False, None, None, None))
        ok &= h.report(bool(lib) and pkg in runtime_pkgs and loads_ok,
                       f"the runtime stage installs {pkg} and the libraries it loads",
                       f"({lib}, missing: {missing}, unowned: {unowned})")
    # The check catches a package left out: drop each of two packages the binary needs.
    for drop in ("librdkafka1", "libgnutls30"):
        still, missing, _, _ = check_ldd(binary, runtime_pkgs - {drop}, sanitized)
        ok &= h.report(not still and drop in missing,
                       f"without {drop} on the apt-get line the check fails",
                       f"(names {sorted(missing)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
