"""Findings builders for the guardrail, planning, rendering and ledger tests.

Plain functions (importable) plus a few fixtures; no I/O.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from finops_operator.models import Change, EditKind, EditTarget, Finding, FindingType, Target, TargetKind, WorkloadRef


def container_finding(namespace: str = "payments", workload: str = "api", container: str = "app", *,
                      kind: str = "Deployment", savings: float = 50.0, cpu: tuple[str | None, str | None] = ("1", "250m"),
                      memory: tuple[str | None, str | None] | None = None, confidence: float = 0.9,
                      risk: float = 0.2, labels: dict[str, str] | None = None, team: str | None = None,
                      detector: str = "cpu-rightsizing", evidence: dict | None = None,
                      cost_before: float | None = None, cost_after: float | None = None) -> Finding:
    """A right-sizing finding for one container (CPU by default, memory when ``memory`` is given)."""
    ref = WorkloadRef(kind, namespace, workload)
    if memory is not None:
        ftype, changes = FindingType.RIGHTSIZE_MEMORY, [Change("resources.requests.memory", *memory)]
        detector = "memory-rightsizing" if detector == "cpu-rightsizing" else detector
    else:
        ftype, changes = FindingType.RIGHTSIZE_CPU, [Change("resources.requests.cpu", *cpu)]
    return Finding(
        detector=detector, type=ftype,
        target=Target(TargetKind.CONTAINER, container, namespace=namespace, workload=ref),
        title=f"{'Memory' if memory else 'CPU'} of {ref}/{container}", changes=changes,
        monthly_savings=savings, confidence=confidence, risk=risk,
        edit=EditTarget(EditKind.CONTAINER_RESOURCES), cost_before=cost_before, cost_after=cost_after,
        evidence=dict(evidence or {}), labels=dict(labels or {}), team=team or namespace, cluster="prod-eu")


def node_group_finding(group: str = "general", *, savings: float = 140.16, before: str = "4",
                       after: str = "3", confidence: float = 0.8, risk: float = 0.3,
                       labels: dict[str, str] | None = None) -> Finding:
    return Finding(
        detector="idle-nodes", type=FindingType.IDLE_NODE, target=Target(TargetKind.NODE_GROUP, group),
        title=f"Consolidate node group {group}", changes=[Change("desired_size", before, after)],
        monthly_savings=savings, confidence=confidence, risk=risk, edit=EditTarget(EditKind.NODE_GROUP),
        evidence={"nodes_removed": ["ip-10-0-1-12"], "instance_type": "m5.xlarge"},
        labels=dict(labels or {}), team="platform", cluster="prod-eu")


def volume_finding(volume_id: str = "vol-0abc", *, savings: float = 8.0, confidence: float = 0.95,
                   risk: float = 0.1, labels: dict[str, str] | None = None) -> Finding:
    return Finding(
        detector="orphan-volumes", type=FindingType.ORPHAN_VOLUME, target=Target(TargetKind.VOLUME, volume_id),
        title=f"Delete unattached volume {volume_id}", changes=[Change("delete", "present", None)],
        monthly_savings=savings, confidence=confidence, risk=risk,
        edit=EditTarget(EditKind.EBS_VOLUME, snapshot_before_delete=True, size_gib=100),
        evidence={"age_days": 40, "size_gib": 100, "volume_type": "gp2", "snapshot_before_delete": True},
        labels=dict(labels or {}), team="platform", cluster="prod-eu")


# A Wednesday, mid-morning UTC: inside a default business-hours window.
NOW = datetime(2024, 6, 12, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def guardrail_now() -> datetime:
    return NOW
