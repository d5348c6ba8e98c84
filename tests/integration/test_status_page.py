"""The status page (GET /) in headless Chromium, over a run with injected drift (`amount`
shifted from the fourth window on):

- the page is self-contained: no script, style sheet, font or image from anywhere, no
  http(s) URL at all;
- the DOM Chromium builds (--dump-dom) has the model's row and section; the drift-share chart
  has one point per stored report, at their window starts in order (hollow, class "missing",
  for the reference windows, which have no share); the accuracy chart has a
  realised point per final report and one per version; the heatmap has a cell per feature and
  window, and exactly the (feature, window) pairs the reports call drifted are marked drifted;
  the drifted feature is highlighted in the latest report's table and the heatmap labels;
- a second pod serves a page with the same charts;
- a screenshot (chromium --screenshot) is kept as the test's artefact; its path is printed.
The page is rendered by dw_statuspage.c (inline SVG; docs/api.md)."""
import os
import subprocess
import sys
import tempfile
import urllib.request
from html.parser import HTMLParser

import drift_run as d
import harness as h


class Dom(HTMLParser):
    """Every element as (tag, attrs dict, text of its direct children)."""

    def __init__(self):
        super().__init__()
        self.elements = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        el = (tag, dict(attrs), [])
        self.elements.append(el)
        self.stack.append(el)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)

    def find(self, tag=None, cls=None, **attrs):
        out = []
        for t, a, text in self.elements:
            classes = a.get("class", "").split()
            if (tag is None or t == tag) and (cls is None or cls in classes) and all(
                    a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append((t, a, "".join(text)))
        return out


def chromium(env, *args):
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={os.path.join(env.dir, 'chromium')}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def svg_of(dom_text, chart):
    """The elements inside the <svg data-chart=chart> of the page (a Dom of that part)."""
    start = dom_text.find(f'data-chart="{chart}"')
    end = dom_text.find("</svg>", start)
    part = Dom()
    part.feed("<svg " + dom_text[start:end])
    return part


def main():
    env = h.Env(partitions=2, name="statuspage")
    proc = d.start(env)
    port2 = env.start_pod("pod2")
    h.wait_for(lambda: env.http_get("/livez")[0] == 200, 30, "the first pod serving")
    stored = d.traffic(env)
    starts = sorted(stored)
    latest = stored[starts[-1]]
    ok = True

    url = f"http://127.0.0.1:{env.http_port}/"
    with urllib.request.urlopen(url, timeout=30) as resp:
        ctype, raw = resp.headers.get("Content-Type"), resp.read().decode()
    lower = raw.lower()
    external = [w for w in ("<script", "<link", "<img", "@import", "url(", "http://", "https://")
                if w in lower]
    ok &= h.report(ctype.startswith("text/html") and not external and "<svg" in raw,
                   "GET / is one self-contained HTML page with inline SVG",
                   f"({ctype}, {len(raw)} bytes; external: {external})")

    r = chromium(env, "--dump-dom", url)
    text = r.stdout
    dom = Dom()
    dom.feed(text)
    ok &= h.report(r.returncode == 0 and dom.find("section", data_model="fraud") and
                   dom.find("tr", cls="model", data_model="fraud"),
                   "Chromium renders the page: the model's row and section",
                   f"(exit {r.returncode}, {len(text)} bytes) {r.stderr[-300:]}")

    share = svg_of(text, "drift-share").find("circle", cls="point")
    valued = [int(a["data-window"]) for _, a, _ in share if "missing" not in a["class"]]
    judged = [s for s in starts if isinstance(stored[s]["drift"]["share"], (int, float))]
    ok &= h.report(sorted(int(a["data-window"]) for _, a, _ in share) == starts and
                   valued == judged and len(judged) >= 3,
                   "the drift-share chart has one point per window (hollow: not judged), in "
                   "window order", f"({len(share)} points, {len(starts)} windows, "
                   f"{len(valued)} with a value, {len(judged)} judged)")
    acc = svg_of(text, "accuracy")
    finals = [s for s in starts if stored[s].get("final")]
    realised = [int(a["data-window"]) for _, a, _ in acc.find("circle", cls="point",
                                                             data_series="realised (all)")]
    per_version = {v: len(acc.find("circle", cls="point", data_series=f"realised {v}"))
                   for v in ("1.0.0", "1.1.0")}
    ok &= h.report(realised == finals and per_version == {"1.0.0": len(finals),
                                                          "1.1.0": len(finals)},
                   "the accuracy chart: a realised point per final window, per version too",
                   f"({realised} vs {finals}; {per_version})")

    heat = svg_of(text, "heatmap")
    cells = heat.find("rect", cls="cell")
    features = sorted(latest["features"])
    ok &= h.report(len(cells) == len(features) * len(starts),
                   "the heatmap has a cell per feature and window",
                   f"({len(cells)} cells, {len(features)} features x {len(starts)} windows)")
    want = sorted((f, s) for s in starts for f, fe in (stored[s].get("features") or {}).items()
                  if fe.get("drift") is True)
    got = sorted((a["data-feature"], int(a["data-window"]))
                 for _, a, _ in heat.find("rect", cls="drifted"))
    ok &= h.report(got == want and ("amount", starts[-1]) in want,
                   "exactly the drifted (feature, window) cells are marked drifted",
                   f"({len(got)} marked, {len(want)} drifted)")
    drifted_now = sorted(f for f, fe in latest["features"].items() if fe.get("drift") is True)
    rows = sorted(a["data-feature"] for _, a, _ in dom.find("tr", cls="drifted"))
    labels = sorted(a["data-feature"] for _, a, _ in heat.find("text", cls="drifted"))
    ok &= h.report(rows == labels == drifted_now and "amount" in rows and "country" not in rows,
                   "the drifted feature is highlighted in the latest report and the heatmap",
                   f"(rows {rows}, labels {labels}, latest report {drifted_now})")
    verdict = [t for _, _, t in dom.find("td", cls="verdict")]
    ok &= h.report(verdict == ["drift" if latest["drift"]["dataset"] else "no drift"],
                   "the models table shows the latest verdict", str(verdict))

    r2 = chromium(env, "--dump-dom", f"http://127.0.0.1:{port2}/")
    ok &= h.report(svg_of(r2.stdout, "heatmap").find("rect", cls="cell") and
                   svg_of(r2.stdout, "heatmap").elements == heat.elements and
                   svg_of(r2.stdout, "drift-share").elements == svg_of(text, "drift-share").elements,
                   "the second pod serves the same charts")

    shots = tempfile.mkdtemp(prefix="dw-statuspage-artefact-")
    shot = os.path.join(shots, "status-page.png")
    r = chromium(env, f"--screenshot={shot}", "--window-size=1280,2200", url)
    size = os.path.getsize(shot) if os.path.exists(shot) else 0
    with open(shot, "rb") if size else open(os.devnull, "rb") as f:
        magic = f.read(8)
    ok &= h.report(size > 10000 and magic == b"\x89PNG\r\n\x1a\n",
                   "screenshot kept as the test's artefact", f"{shot} ({size} bytes)")
    print(f"screenshot: {shot}")
    return h.finish(env, proc, ok)


if __name__ == "__main__":
    sys.exit(main())
