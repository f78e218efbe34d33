"""The allocation gauges: dollars per hour by namespace/team/workload (bounded), kinds, sources, residual."""
from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import generate_latest

from finops_operator import metrics
from finops_operator.models.costs import ChargeKind
from tests.support.fixtures_costs import allocation, bill, container

HOURS = 14 * 24


def value(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def series(name: str, policy: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("policy") == policy:
                out[tuple(sorted((k, v) for k, v in sample.labels.items() if k != "policy"))] = sample.value
    return out


def test_export_sets_cost_per_hour_by_namespace_team_workload_kind_and_source():
    policy = "team-a/costs"
    metrics.export_allocation(policy, allocation(), bill=bill())
    assert value("finops_allocation_namespace_cost_dollars_per_hour", policy=policy,
                 namespace="payments") == pytest.approx(400 / HOURS)
    assert set(series("finops_allocation_namespace_cost_dollars_per_hour", policy)) == \
        {(("namespace", n),) for n in ("payments", "search", "web")}             # idle etc. are kinds, not namespaces
    assert value("finops_allocation_team_cost_dollars_per_hour", policy=policy, team="find") == \
        pytest.approx(290 / HOURS)
    assert value("finops_allocation_workload_cost_dollars_per_hour", policy=policy, namespace="search",
                 workload="StatefulSet/es") == pytest.approx(290 / HOURS)
    kinds = {dict(k)["kind"]: v * HOURS for k, v in series("finops_allocation_cost_dollars_per_hour", policy).items()}
    assert kinds == pytest.approx({"allocated": 740.0, "idle": 180.0, "shared": 50.0, "unallocated": 20.0})
    assert value("finops_allocation_node_cost_dollars_per_hour", policy=policy,
                 price_source="spot") == pytest.approx(250 / HOURS)
    assert value("finops_allocation_bill_dollars_per_hour", policy=policy,
                 bill_source="cur:duckdb") == pytest.approx(1000 / HOURS)
    assert value("finops_allocation_residual_dollars_per_hour", policy=policy) == pytest.approx(10 / HOURS)
    assert value("finops_allocation_residual_ratio", policy=policy) == pytest.approx(0.01)
    assert value("finops_allocation_window_end_timestamp_seconds", policy=policy) == allocation().end.timestamp()
    assert 'finops_allocation_namespace_cost_dollars_per_hour{namespace="payments",policy="team-a/costs"}' in \
        generate_latest(metrics.REGISTRY).decode()


def test_workload_labels_are_bounded_to_the_top_and_other(monkeypatch):
    policy = "team-a/many"
    many = [container(f"ns{i % 7}", f"Deployment/w{i}", 1.0 + i) for i in range(300)]
    monkeypatch.setattr(metrics, "TOP_WORKLOADS", 20)
    metrics.export_allocation(policy, allocation(extra=many))
    workloads = series("finops_allocation_workload_cost_dollars_per_hour", policy)
    assert len(workloads) == 21
    other = workloads[(("namespace", ""), ("workload", "other"))]
    total = sum(workloads.values())
    assert total == pytest.approx((740.0 + sum(1.0 + i for i in range(300))) / HOURS)
    assert other > 0 and (("namespace", "ns5"), ("workload", "Deployment/w299")) in workloads


def test_a_new_run_replaces_the_series_and_removes_the_ones_that_disappeared():
    policy = "team-b/costs"
    metrics.export_allocation(policy, allocation(), bill=bill())
    without_web = allocation(bill_total=None)
    without_web.charges = [c for c in without_web.charges if c.namespace != "web"]
    without_web.charges = [replace(c, cost=c.cost * 2) if c.kind is ChargeKind.IDLE else c
                           for c in without_web.charges]
    metrics.export_allocation(policy, without_web)
    assert value("finops_allocation_namespace_cost_dollars_per_hour", policy=policy, namespace="web") is None
    assert value("finops_allocation_team_cost_dollars_per_hour", policy=policy, team="unassigned") is None
    assert value("finops_allocation_cost_dollars_per_hour", policy=policy, kind="idle") == pytest.approx(360 / HOURS)
    assert value("finops_allocation_residual_dollars_per_hour", policy=policy) is None       # no bill: no residual
    assert value("finops_allocation_bill_dollars_per_hour", policy=policy, bill_source="cur:duckdb") is None
    assert value("finops_allocation_namespace_cost_dollars_per_hour", policy=policy,
                 namespace="payments") == pytest.approx(400 / HOURS)


def test_policies_are_independent_and_forget_removes_one():
    metrics.export_allocation("p/one", allocation())
    metrics.export_allocation("p/two", allocation())
    metrics.forget_allocation("p/one")
    assert series("finops_allocation_namespace_cost_dollars_per_hour", "p/one") == {}
    assert value("finops_allocation_namespace_cost_dollars_per_hour", policy="p/two",
                 namespace="search") == pytest.approx(290 / HOURS)
    metrics.forget_allocation("p/never-exported")           # nothing to remove, no error
