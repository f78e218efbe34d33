"""Every metric the chart's Grafana dashboard queries is one the operator really exports: the names are parsed
out of each panel's PromQL and each variable's query, and looked up among the samples of the operator's registry
after simulated runs (the demo scenario through execute_run + record_metrics, a failing run, a budget evaluation)."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from finops_operator import metrics
from finops_operator.api import runs
from finops_operator.api.wiring import ScopedReader, Wiring
from finops_operator.errors import DataSourceError
from finops_operator.reconcile import LoopDeps

from tests.unit.test_api_runs import NOW, policy_spec, store  # noqa: F401  (store is a fixture)
from tests.unit.test_api_runs_costs import demo  # noqa: F401  (demo is a fixture)

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "finops-operator" / "dashboards" / "finops-operator.json"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
            "inf", "nan"}
# Declared and exported, but with samples only once a pull request is published (a DryRun run publishes none).
NEEDS_A_PULL_REQUEST = {"finops_pull_requests_total"}
# Scrape-time series Prometheus makes itself, not the operator.
FROM_PROMETHEUS = {"up"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                       # strings (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)                                  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                                 # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)   # label lists
    text = re.sub(r"\$\{?\w+\}?", " ", text)                               # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = match.groups()
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def test_metric_names_parser():
    assert metric_names('histogram_quantile(0.95, sum by (le, policy) (rate(a_bucket{policy=~"$policy"}[1d])))') \
        == {"a_bucket"}
    assert metric_names('time() - max by (policy) (b{x="y or z"}) > 2 * on(policy) group_left c') == {"b", "c"}
    assert metric_names("sum(d[$__interval]) / e offset 1d") == {"d", "e"}


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            out.append((f"variable {var['name']}", inner.group(1) if inner else query))
    return out


def test_the_dashboard_has_what_the_issue_asks():
    board = json.loads(DASHBOARD.read_text())
    assert board["schemaVersion"] >= 36 and board["uid"] == "finops-operator"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and {"cluster", "namespace", "policy"} <= set(variables)
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]
    queries = " ".join(expr for _, expr in dashboard_queries())
    for needed in ("finops_policy_runs_total", "finops_policy_run_duration_seconds_bucket", "finops_findings",
                   "finops_opportunities", "finops_realized_monthly_savings_dollars",
                   "finops_policy_open_pull_requests", "finops_allocation_namespace_cost_dollars_per_hour",
                   "finops_budget_spend_dollars", 'namespace=~"$namespace"', 'cluster=~"$cluster"'):
        assert needed in queries, needed


class CountingSource:
    """The demo's state, counting its requests like the real Prometheus/Kubernetes readers do (``calls``)."""

    def __init__(self, state):
        self.state, self.calls = state, {"prometheus": 0}

    def __call__(self, window):
        self.calls["prometheus"] += 1
        return copy.deepcopy(self.state)


def wiring(state, read_costs):
    def build(policy, api_client, *, workdir, approved):
        scoped = ScopedReader(CountingSource(state), None)
        return Wiring(deps=LoopDeps(read_state=scoped, approved=approved, read_costs=read_costs), reader=scoped,
                      namespaces=None)
    return build


@pytest.fixture
def exported(store, tmp_path, demo):  # noqa: F811
    """Sample names in the registry after a demo run (with costs and a bill), a failing run and a budget."""
    state, usage, bill = demo
    ok = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=wiring(state, lambda w: (usage, bill)))
    assert ok.ok

    def unreachable(policy, api_client, *, workdir, approved):
        raise DataSourceError("connection refused", source="prometheus")

    failed = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=unreachable)
    assert not failed.ok
    runs.record_metrics(ok, finished=NOW)
    runs.record_metrics(failed)
    metrics.export_budget("team-a/monthly", amount=1000, spend=400, forecast=900, lower=800, upper=1100,
                          state="Warning")
    try:
        yield {s.name for family in metrics.REGISTRY.collect() for s in family.samples}, \
            {family.name for family in metrics.REGISTRY.collect()}
    finally:
        runs.forget_metrics("finops-system", "p")
        metrics.forget_budget("team-a/monthly")


def test_every_dashboard_metric_is_exported(exported):
    samples, families = exported
    missing = {}
    for where, expr in dashboard_queries():
        for name in metric_names(expr) - FROM_PROMETHEUS:
            if name in NEEDS_A_PULL_REQUEST:
                assert name.removesuffix("_total") in families, name
            elif name not in samples:
                missing.setdefault(name, []).append(where)
    assert not missing, f"the dashboard queries metrics the operator does not export: {missing}"


def test_a_misspelt_metric_would_be_caught(exported):
    samples, _ = exported
    assert metric_names('sum by (state) (finops_opportunity{policy=~"$policy"})') - samples == {"finops_opportunity"}
