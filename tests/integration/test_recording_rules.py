"""The recording rules live scans read: one file in the package (what the wheel ships and the operator's
README tells people to load), checked by promtool, and the chart's optional PrometheusRule built from the
same file through a link (helm follows it), off by default."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from finops_operator import bundled
from finops_operator.sources import promusage
from tests.integration.test_grafana_alerts import CHART, CLUSTER, helm, of_kind, promtool, render

pytestmark = pytest.mark.integration
LINK = CHART / "rules" / "finops-recording.rules.yaml"


def test_the_package_file_passes_promtool_and_records_what_the_scan_reads():
    rules = bundled.path("prometheus-rules.yaml")
    proc = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "SUCCESS: 2 rules found" in proc.stdout, proc.stdout + proc.stderr
    (group,) = yaml.safe_load(rules.read_text())["groups"]
    assert group["name"] == "finops-operator.rules" and group["interval"] == "5m"
    assert [r["record"] for r in group["rules"]] == [promusage.CPU_RULE, promusage.MEMORY_RULE]
    assert all(" without (" in r["expr"] and "cluster" not in r["expr"] for r in group["rules"])  # keeps cluster


def test_the_chart_links_to_the_package_file():
    assert LINK.is_symlink() and LINK.resolve() == bundled.path("prometheus-rules.yaml").resolve()


def test_the_chart_renders_the_rules_only_when_asked():
    assert not [d for d in of_kind(render(), "PrometheusRule")]
    docs = render("--set", "recordingRules.enabled=true", "--set", "prometheusRule.labels.release=prom")
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["metadata"]["name"] == "finops-operator-recording" and rule["metadata"]["labels"]["release"] == "prom"
    assert rule["spec"] == yaml.safe_load(bundled.path("prometheus-rules.yaml").read_text())
    both = of_kind(render("--set", "recordingRules.enabled=true", "--set", "prometheusRule.enabled=true"),
                   "PrometheusRule")
    assert sorted(d["metadata"]["name"] for d in both) == ["finops-operator", "finops-operator-recording"]
    lint = helm("lint", "--strict", str(CHART), *CLUSTER, "--set", "recordingRules.enabled=true")
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout, lint.stdout + lint.stderr
