"""The chart's alert rules and Grafana dashboard with the real tools: ``promtool check rules`` and ``promtool test
rules`` (tests/fixtures/promtool: every alert firing and not), ``helm lint`` and ``helm template`` with the
PrometheusRule and the dashboard ConfigMap on and off."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kubeprocs import tools_dir
from tests.support.prometheus_server import INSTALL_HINT

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "finops-operator"
RULES = CHART / "rules" / "finops-operator.rules.yaml"
DASHBOARD = CHART / "dashboards" / "finops-operator.json"
PROMTOOL_TESTS = ROOT / "tests" / "fixtures" / "promtool" / "finops-operator.rules.test.yaml"
CLUSTER = ["--set", "clusterName=test-cluster"]
ALL_ON = ["--set", "prometheusRule.enabled=true", "--set", "grafana.dashboard.enabled=true"]
ALERTS = {"FinOpsOperatorDown", "FinOpsPolicyRunsFailing", "FinOpsPolicyStale", "FinOpsDataSourceErrors",
          "FinOpsBudgetExceeded", "FinOpsBudgetForecastExceeded", "FinOpsOpenPRLimitReached"}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, f"promtool not found on PATH: {INSTALL_HINT}"
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    binary = tools_dir() / "bin" / "helm"
    assert binary.exists(), f"{binary} missing: run `make tools` (tests/tools/install-kube-tools.sh)"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120, check=False)


def render(*args: str) -> list[dict[str, Any]]:
    proc = helm("template", "finops", str(CHART), "-n", "finops-system", *CLUSTER, *args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_promtool_checks_the_rules_file():
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "SUCCESS: 7 rules found" in proc.stdout, proc.stdout + proc.stderr


def test_promtool_unit_tests_every_alert_firing_and_not():
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())
    rules = {r["alert"]: r for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}
    assert set(rules) == ALERTS
    for name, rule in rules.items():                     # what the brief asks of every alert
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert len(rule["annotations"]["runbook"]) > 40, name
    cases = [c for t in tests["tests"] for c in t["alert_rule_test"]]
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == ALERTS       # each fires somewhere
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == ALERTS   # and is quiet somewhere
    proc = subprocess.run([promtool(), "test", "rules", str(PROMTOOL_TESTS)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_promtool_unit_tests_can_fail(tmp_path):
    """The unit tests do check the rules: a rule whose threshold is broken fails them."""
    broken = RULES.read_text().replace('> 0.5', '> 0.9')
    (tmp_path / "rules.yaml").write_text(broken)
    test_file = yaml.safe_load(PROMTOOL_TESTS.read_text())
    test_file["rule_files"] = [str(tmp_path / "rules.yaml")]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test_file))
    proc = subprocess.run([promtool(), "test", "rules", str(tmp_path / "test.yaml")], capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode != 0 and "FinOpsPolicyRunsFailing" in proc.stdout + proc.stderr


def test_helm_lint_with_the_dashboard_and_rules_on():
    proc = helm("lint", "--strict", str(CHART), *CLUSTER, *ALL_ON, "--set", "serviceMonitor.enabled=true")
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout, proc.stdout + proc.stderr


def test_off_by_default():
    docs = render()
    assert not of_kind(docs, "PrometheusRule")
    assert not [d for d in of_kind(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]


def test_rendered_rule_and_dashboard():
    docs = render(*ALL_ON, "--set", "prometheusRule.labels.release=prom")
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom" and rule["metadata"]["namespace"] == "finops-system"
    # The same rules as the file promtool checked, with the job of this release's metrics Service.
    expected = yaml.safe_load(RULES.read_text())
    assert rule["spec"] == expected
    assert rule["spec"]["groups"][0]["rules"][0]["expr"] == 'absent(up{job="finops-operator-metrics"} == 1)'
    (service,) = [d for d in of_kind(docs, "Service") if d["metadata"]["name"] == "finops-operator-metrics"]
    assert service["spec"]["ports"][0]["name"] == "metrics"
    (cm,) = of_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["namespace"] == "finops-system"
    assert json.loads(cm["data"]["finops-operator.json"]) == json.loads(DASHBOARD.read_text())


def test_rule_job_label_and_dashboard_label_are_configurable():
    docs = render("--set", "prometheusRule.enabled=true", "--set", "prometheusRule.jobLabel=kubernetes-pods",
                  "--set", "grafana.dashboard.enabled=true", "--set", "grafana.dashboard.label=dashboards",
                  "--set", "grafana.dashboard.labelValue=finops", "--set", "grafana.dashboard.namespace=monitoring",
                  "--set", "grafana.dashboard.annotations.grafana_folder=FinOps")
    (rule,) = of_kind(docs, "PrometheusRule")
    down = rule["spec"]["groups"][0]["rules"][0]
    assert down["expr"] == 'absent(up{job="kubernetes-pods"} == 1)'
    assert "kubernetes-pods" in down["annotations"]["description"]
    (cm,) = of_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["dashboards"] == "finops" and "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["namespace"] == "monitoring" and cm["metadata"]["annotations"] == {"grafana_folder": "FinOps"}
    # Another release name: the job follows the metrics Service's name.
    proc = helm("template", "billing", str(CHART), "-n", "x", *CLUSTER, "--set", "prometheusRule.enabled=true")
    (rule,) = of_kind([d for d in yaml.safe_load_all(proc.stdout) if d], "PrometheusRule")
    assert rule["spec"]["groups"][0]["rules"][0]["expr"] == 'absent(up{job="billing-finops-operator-metrics"} == 1)'


def test_schema_rejects_an_unknown_dashboard_value():
    proc = helm("template", "finops", str(CHART), *CLUSTER, "--set", "grafana.dashboard.enable=true")
    assert proc.returncode != 0 and "enable" in proc.stderr


def test_service_monitor_honors_the_operators_namespace_label():
    """finops_allocation_namespace_cost_dollars_per_hour{namespace=...} must keep its label for the dashboard."""
    monitor = ["--set", "serviceMonitor.enabled=true"]
    (sm,) = of_kind(render(*monitor), "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["honorLabels"] is True
    (sm,) = of_kind(render(*monitor, "--set", "serviceMonitor.honorLabels=false"), "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["honorLabels"] is False
