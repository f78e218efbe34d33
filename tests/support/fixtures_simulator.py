"""Fixtures for the scenario simulator, snapshot and usage tests (pure Python, no services)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

SCENARIO: dict[str, Any] = {
    "cluster": "demo-eks",
    "region": "us-east-1",
    "days": 3,
    "stepSeconds": 300,
    "seed": 42,
    "end": "2026-11-20T00:00:00Z",
    "nodeGroups": [{"name": "general", "instanceType": "m5.xlarge", "count": 3, "zone": "us-east-1a"}],
    "nodes": [{"name": "ip-10-0-9-9.ec2.internal", "instanceType": "m5.large", "nodeGroup": "general",
               "annotations": {"karpenter.sh/do-not-disrupt": "true"}}],
    "workloads": [
        {"kind": "Deployment", "namespace": "payments", "name": "payments-api", "replicas": 3,
         "labels": {"team": "payments"},
         "hpa": {"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70},
         "pdb": {"disruptionsAllowed": 0},
         "containers": [
             {"name": "api", "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"},
              "cpu": {"pattern": "daily", "base": 0.15, "amplitude": 0.10, "noise": 0.05},
              "memory": {"pattern": "steady", "base": "600Mi", "noise": 0.03}},
             {"name": "istio-proxy", "role": "sidecar", "requests": {"cpu": "100m", "memory": "128Mi"},
              "cpu": {"pattern": "steady", "base": "20m"}, "memory": {"pattern": "steady", "base": "60Mi"}}]},
        {"kind": "StatefulSet", "namespace": "data", "name": "redis", "replicas": 2,
         "containers": [
             {"name": "redis", "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"},
              "cpu": {"pattern": "steady", "base": "50m"},
              "memory": {"pattern": "leak", "base": "300Mi", "rate": "40Mi"}}]},
        {"kind": "Deployment", "namespace": "search", "name": "indexer", "replicas": 1,
         "containers": [
             {"name": "indexer", "requests": {"cpu": "200m", "memory": "256Mi"},
              "limits": {"cpu": "250m", "memory": "512Mi"},
              "cpu": {"pattern": "daily", "base": "250m", "amplitude": "100m", "noise": 0.02},
              "memory": {"pattern": "steady", "base": "200Mi"}}]},
        {"kind": "DaemonSet", "namespace": "kube-system", "name": "node-exporter",
         "containers": [{"name": "exporter", "requests": {"cpu": "50m", "memory": "64Mi"},
                         "limits": {"cpu": "100m", "memory": "128Mi"},
                         "cpu": {"pattern": "steady", "base": "10m"}, "memory": {"pattern": "steady", "base": "40Mi"}}]},
        {"kind": "CronJob", "namespace": "reporting", "name": "nightly-report", "ageDays": 1.5,
         "containers": [{"name": "report", "requests": {"cpu": "1", "memory": "1Gi"},
                         "cpu": {"pattern": "burst", "base": "20m"}, "memory": {"pattern": "steady", "base": "100Mi"},
                         "gaps": 0.05}]},
    ],
    "volumes": [
        {"id": "vol-0a1b2c3d4e5f60718", "source": "ebs", "sizeGib": 100, "type": "gp3", "state": "available",
         "ageDays": 40, "tags": {"Name": "legacy-reports"}},
        {"id": "pvc-1234", "source": "pv", "sizeGib": 50, "type": "gp2", "state": "Released", "ageDays": 20,
         "claim": "analytics/data-old"},
    ],
}


@pytest.fixture
def scenario_dict() -> dict[str, Any]:
    """A small hand-written scenario (fresh deep copy per test, safe to mutate)."""
    return copy.deepcopy(SCENARIO)


@pytest.fixture(scope="session")
def small_simulation():
    """The SCENARIO simulated once per session (treat as read-only)."""
    from finops_operator.simulator import parse_scenario, simulate
    return simulate(parse_scenario(copy.deepcopy(SCENARIO), source="fixtures_simulator.SCENARIO"))


#: A cluster for bill and allocation tests: two on-demand nodes, a spot node, and a node that lived half
#: the window (created 24 h before the end of a 48 h window) with pods on it; Savings Plans cover half of
#: each hour's on-demand cost at 30% off; spot is 65% off.
BILLED_SCENARIO: dict[str, Any] = {
    "cluster": "bill-eks", "region": "us-east-1", "days": 2, "stepSeconds": 300, "seed": 11,
    "end": "2026-11-20T00:00:00Z",
    "nodeGroups": [
        {"name": "general", "instanceType": "m5.xlarge", "count": 2, "zone": "us-east-1a"},
        {"name": "spot", "instanceType": "m5.large", "count": 1, "zone": "us-east-1b", "capacityType": "spot"},
        {"name": "late", "instanceType": "c5.xlarge", "count": 1, "zone": "us-east-1c", "ageDays": 1}],
    "billing": {"savingsPlanCoverage": 0.5, "savingsPlanDiscount": 0.3, "spotDiscount": 0.65,
                "loadBalancers": 1, "natGateways": 1, "dataTransferGbPerDay": 24},
    "workloads": [
        {"kind": "Deployment", "namespace": "shop", "name": "web", "replicas": 2, "labels": {"team": "shop"},
         "nodeGroup": "general",
         "containers": [
             {"name": "init-db", "role": "init", "requests": {"cpu": "2", "memory": "1Gi"}},
             {"name": "web", "requests": {"cpu": "500m", "memory": "1Gi"},
              "cpu": {"pattern": "daily", "base": 0.2, "amplitude": 0.1}, "memory": {"pattern": "steady",
                                                                                   "base": "400Mi"}},
             {"name": "proxy", "role": "sidecar", "requests": {"cpu": "50m", "memory": "64Mi"}}]},
        {"kind": "Deployment", "namespace": "batch", "name": "crunch", "replicas": 2, "nodeGroup": "late",
         "containers": [{"name": "crunch", "requests": {"cpu": "1", "memory": "2Gi"},
                         "cpu": {"pattern": "steady", "base": 0.6}}]},
    ],
    "volumes": [
        {"id": "vol-0aaaaaaaaaaaaaaa1", "source": "ebs", "sizeGib": 100, "type": "gp3", "state": "available",
         "ageDays": 40, "tags": {"Name": "old-cache"}},
        {"id": "pvc-data-0", "source": "pv", "sizeGib": 50, "type": "gp2", "state": "Bound", "ageDays": 20,
         "claim": "shop/data-0", "backingVolumeId": "vol-0bbbbbbbbbbbbbbb2"},
        {"id": "pvc-nowhere", "source": "pv", "sizeGib": 10, "type": "gp3", "state": "Bound", "ageDays": 5,
         "claim": "shop/scratch"},
    ],
}


@pytest.fixture(scope="session")
def billed_simulation():
    """BILLED_SCENARIO simulated once per session (treat as read-only)."""
    from finops_operator.simulator import parse_scenario, simulate
    return simulate(parse_scenario(copy.deepcopy(BILLED_SCENARIO), source="fixtures_simulator.BILLED_SCENARIO"))
