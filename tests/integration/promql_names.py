"""What the shipped Prometheus rules and Grafana dashboard query: their PromQL expressions,
promtool's verdict on them, and the metric names they read (for the tests that compare them
with a real /metrics scrape)."""
import json
import os
import re
import subprocess

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RULES = os.path.join(ROOT, "deploy", "prometheus", "driftwatch-rules.yaml")
RULES_TEST = os.path.join(ROOT, "deploy", "prometheus", "driftwatch-rules.test.yaml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "driftwatch.json")
README = os.path.join(ROOT, "README.md")

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "offset", "bool", "inf", "nan"}
# Grafana's variables, replaced by what they stand for when the query runs
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                "$model": ".*"}


def rule_exprs():
    """{alert name: expr} of the rules file."""
    doc = yaml.safe_load(open(RULES))
    return {r.get("alert") or r.get("record"): r["expr"] for g in doc["groups"]
            for r in g["rules"]}


def dashboard_exprs():
    """[(panel title, expr)] of every panel's targets, Grafana variables substituted; and the
    template variables' queries."""
    dash = json.load(open(DASHBOARD))
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            e = t["expr"]
            for k, v in GRAFANA_VARS.items():
                e = e.replace(k, v)
            out.append((p["title"], e))
    return out, [v["query"]["query"] for v in dash["templating"]["list"]]


def check_parse(exprs, path):
    """promtool check rules on one recording rule per expression; returns (ok, output)."""
    rules = [{"record": f"driftwatch:check_{i}", "expr": e} for i, e in enumerate(exprs)]
    with open(path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}, f)
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def metric_names(expr):
    """The metric names a PromQL expression reads: identifiers that are not functions (followed
    by "("), label names (in by/without/on/ignoring lists or before a matcher), keywords,
    strings or durations."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)", " ", e)  # label matchers
    e = re.sub(r"\boffset\s+\d+[smhdwy]", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        tail = e[m.end():].lstrip()
        word = m.group(0)
        if tail.startswith("(") or word.lower() in KEYWORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # 1e3, 0.5
        names.add(word)
    return names


def variable_metric_names(query):
    """The metric a Grafana variable's label_values(metric, label) reads."""
    m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", query)
    return {m.group(1)} if m else set()


def scrape_names(text):
    """Metric names of a /metrics text (its samples)."""
    return {re.split(r"[{ ]", line, 1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def readme_metric_names():
    """The metric names the README's metrics tables document (rows starting with a name)."""
    return {m.group(1) for line in open(README)
            for m in [re.match(r"\|\s*`(driftwatch_[a-z0-9_]+)", line)] if m}


def undocumented(exported):
    """The exported names whose metric is not in the README's tables (a histogram's _bucket,
    _sum and _count are its own name's)."""
    documented = readme_metric_names()
    return sorted(n for n in exported if n.startswith("driftwatch_") and n not in documented
                  and re.sub(r"_(bucket|sum|count)$", "", n) not in documented)
