#!/usr/bin/env python3
"""Writes deploy/kustomize/base/prometheusrule.yaml from deploy/prometheus/driftwatch-rules.yaml:
the shipped rules are the one source (tests/integration/test_kustomize.py fails when the two
differ). Usage: scripts/gen-prometheusrule.py"""
import os
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCE = os.path.join(ROOT, "deploy", "prometheus", "driftwatch-rules.yaml")
TARGET = os.path.join(ROOT, "deploy", "kustomize", "base", "prometheusrule.yaml")
HEADER = """# Generated from deploy/prometheus/driftwatch-rules.yaml by scripts/gen-prometheusrule.py:
# edit that file (and its promtool tests), then run the script. The rules and why each one is
# there: docs/operations.md, "Dashboards and Prometheus rules".
"""


def main():
    groups = yaml.safe_load(open(SOURCE))["groups"]
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "driftwatch",
                        "labels": {"app.kubernetes.io/name": "driftwatch"}},
           "spec": {"groups": groups}}
    with open(TARGET, "w") as f:
        f.write(HEADER)
        yaml.safe_dump(doc, f, sort_keys=False, width=100, allow_unicode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
