"""The reports API (docs/api.md) on three pods of one group, over a run with injected drift:

- http.auth_token from ${VAR} (pod 1) and file:// (pod 2) protects /api/, / and /status: no
  token or a wrong one gets 401 and counts in driftwatch_http_unauthorized_total (exactly);
  /livez, /readyz and /metrics stay open; pod 3 has no token and answers without one;
- GET /api/v1/models lists the model with its latest digests;
- GET /api/v1/models/fraud/reports pages through every stored report in window order with
  limit + cursor, each report byte-for-byte the stored JSON; stage=final / close and from/to
  filter; every pod answers the same pages;
- GET /api/v1/models/fraud/reference is what `driftwatch reference show` prints;
- bad parameters get 400 naming the parameter, an unknown model 404 with the models."""
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import drift_run as d
import harness as h

TOKEN = "s3cret-token-for-the-api"
PATH = "/api/v1/models/fraud/reports"


def get(port, path, token=None):
    """(status, body); status None when nothing listens yet."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def get_json(port, path, token=None):
    status, body = get(port, path, token)
    return status, (json.loads(body) if body.startswith("{") else body)


def pages(port, query, token=None):
    """Every report of PATH?query, following next_cursor; returns (reports, page count)."""
    out, n_pages, cursor = [], 0, None
    while True:
        q = query + (f"&cursor={cursor}" if cursor else "")
        status, doc = get_json(port, f"{PATH}?{q}", token)
        assert status == 200, f"{PATH}?{q}: {status} {doc}"
        out += doc["reports"]
        n_pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            return out, n_pages
        assert n_pages < 100, "cursor does not advance"


def unauthorized(port):
    status, text = get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith("driftwatch_http_unauthorized_total "):
            return float(line.split()[1])
    return None


def main():
    env = h.Env(partitions=2, name="api")
    os.environ["DW_TEST_HTTP_TOKEN"] = TOKEN
    proc = d.start(env, extra='http.auth_token: "${DW_TEST_HTTP_TOKEN}"\n')
    token_file = os.path.join(env.dir, "http-token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    text = open(env.config_path).read()
    with open(env.config_path + ".pod2", "w") as f:
        f.write(text.replace("${DW_TEST_HTTP_TOKEN}", f"file://{token_file}"))
    with open(env.config_path + ".pod3", "w") as f:
        f.write(text.replace('http.auth_token: "${DW_TEST_HTTP_TOKEN}"', ""))
    ports = {"pod1": env.http_port}
    for name in ("pod2", "pod3"):
        env.config_path, saved = env.config_path + "." + name, env.config_path
        ports[name] = env.start_pod(name)
        env.config_path = saved
    tokens = {"pod1": TOKEN, "pod2": TOKEN, "pod3": None}
    for name, port in ports.items():
        h.wait_for(lambda: get(port, "/livez")[0] == 200, 30, f"{name} serving")
    stored = d.traffic(env)
    ok = True

    # ---- auth ----
    before = unauthorized(ports["pod1"])
    refused = []
    for path in ("/api/v1/models", "/", "/status", PATH):
        refused.append(get(ports["pod1"], path)[0])
        refused.append(get(ports["pod1"], path, "wrong-" + TOKEN)[0])
        refused.append(get(ports["pod2"], path, TOKEN[:-1])[0])
    ok &= h.report(refused == [401] * 12, "no or a wrong token: 401 on /, /api/ and /status",
                   str(refused))
    after = unauthorized(ports["pod1"])
    ok &= h.report(before is not None and after - before == 8,
                   "each refusal counted in driftwatch_http_unauthorized_total",
                   f"({before} -> {after})")
    opened = [get(ports["pod1"], p)[0] for p in ("/livez", "/readyz", "/metrics")]
    ok &= h.report(opened == [200, 200, 200], "probes and /metrics need no token", str(opened))
    granted = [get(ports[n], "/api/v1/models", tokens[n])[0] for n in ports]
    granted += [get(ports[n], "/status", tokens[n])[0] for n in ports]
    ok &= h.report(granted == [200] * 6,
                   "the token from ${VAR} and from file:// is accepted; no token set: open",
                   str(granted))

    # ---- models ----
    status, doc = get_json(ports["pod3"], "/api/v1/models")
    m = doc["models"][0] if status == 200 and doc.get("models") else {}
    ok &= h.report(m.get("name") == "fraud" and m["latest"]["final"]["stage"] == "final" and
                   m["latest"]["close"]["window_start_ms"] == max(stored) and
                   m["features"] == ["amount", "age", "balance", "country", "merchant"],
                   "/api/v1/models: the model, its features and latest digests",
                   json.dumps(doc)[:300])

    # ---- paging ----
    want = [stored[k] for k in sorted(stored)]
    answers = {}
    for name, port in ports.items():
        got, n_pages = pages(port, "limit=2", tokens[name])
        answers[name] = got
        ok &= h.report(got == want and n_pages == (len(want) + 1) // 2,
                       f"{name}: limit=2 pages through every stored report in window order",
                       f"({len(got)} reports in {n_pages} pages; stored {len(want)})")
    ok &= h.report(answers["pod1"] == answers["pod2"] == answers["pod3"],
                   "every pod answers the same reports")
    finals = [r for r in want if r.get("final")]
    closes = [r for r in want if not r.get("final")]
    got_f, _ = pages(ports["pod3"], "stage=final&limit=3")
    got_c, _ = pages(ports["pod3"], "stage=close")
    ok &= h.report(got_f == finals and got_c == closes and finals and closes,
                   "stage=final and stage=close split the reports",
                   f"({len(got_f)}/{len(finals)} final, {len(got_c)}/{len(closes)} close)")
    lo, hi = d.T0 + d.WINDOW_MS, d.T0 + 3 * d.WINDOW_MS
    got_r, _ = pages(ports["pod3"], f"from={lo}&to=2026-01-01T00:03:00Z")
    ok &= h.report([r["window_start_ms"] for r in got_r] == [lo, lo + d.WINDOW_MS] and
                   d.T0 + 3 * d.WINDOW_MS == hi,
                   "from (ms, inclusive) and to (RFC 3339, exclusive) select window starts",
                   str([r["window_start_ms"] for r in got_r]))

    # ---- reference ----
    status, ref = get_json(ports["pod2"], "/api/v1/models/fraud/reference", TOKEN)
    r = subprocess.run([h.BIN, "reference", "show", "-c", env.config_path + ".pod3", "--model",
                        "fraud"], capture_output=True, text=True, timeout=60)
    cli = json.loads(r.stdout) if r.returncode == 0 else None
    ok &= h.report(status == 200 and ref == cli and ref["model"] == "fraud",
                   "/reference is what `driftwatch reference show` prints",
                   f"({status}) {json.dumps(ref)[:200]}")

    # ---- errors ----
    bad = {"limit=0": "limit", "limit=501": "limit", "stage=open": "stage", "from=yesterday":
           "from", "cursor=x": "cursor"}
    for q, word in bad.items():
        status, doc = get_json(ports["pod3"], f"{PATH}?{q}")
        ok &= h.report(status == 400 and word in doc.get("error", ""), f"?{q}: 400 naming {word}",
                       f"({status}) {doc}")
    status, doc = get_json(ports["pod3"], "/api/v1/models/nosuch/reports")
    ok &= h.report(status == 404 and doc.get("models") == ["fraud"] and doc.get("model") ==
                   "nosuch", "an unknown model: 404 with the configured ones", f"({status}) {doc}")
    status, _ = get_json(ports["pod3"], "/api/v1/models/fraud/other")
    ok &= h.report(status == 404, "an unknown resource: 404", str(status))
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
