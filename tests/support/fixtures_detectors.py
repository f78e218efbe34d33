"""Hand-built ClusterStates for detector and pricing tests (no simulator).

``StateBuilder`` adds workloads, usage, nodes, pods, PDBs and volumes with short
calls; numbers are in the units of the model (cores, bytes). ``stats(...)``
makes a UsageStats from a few percentiles.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from finops_operator.models import (HPA, PDB, ClusterState, Container, ContainerKey, ContainerRole, ContainerUsage,
                                    Node, Pod, Resources, UsageStats, Volume, VolumeSource, Window, Workload,
                                    WorkloadRef)
from finops_operator.pricing.catalog import PriceBook
from finops_operator.settings import PolicySettings, load_policy
from finops_operator.units import parse_cpu, parse_memory

END = datetime(2024, 6, 15, 0, 0, tzinfo=timezone.utc)
DAYS = 14
STEP = 300
GIB = 2**30
MIB = 2**20


def window(days: int = DAYS) -> Window:
    return Window(END - timedelta(days=days), END, STEP)


def stats(p95: float, *, p50: float | None = None, p90: float | None = None, p99: float | None = None,
          peak: float | None = None, mean: float | None = None, std: float | None = None,
          coverage: float = 1.0, first_seen: datetime | None = None, days: int = DAYS) -> UsageStats:
    """A usage summary; unspecified percentiles are derived from p95 (a gently varying series)."""
    expected = window(days).expected_points
    p50 = p95 * 0.6 if p50 is None else p50
    p99 = p95 * 1.1 if p99 is None else p99
    quantiles = {50: p50, 90: p95 * 0.9 if p90 is None else p90, 95: p95, 99: p99}
    return UsageStats(samples=int(expected * coverage), expected=expected, quantiles=quantiles,
                      max=p99 * 1.1 if peak is None else peak,
                      mean=p50 if mean is None else mean, std=(p50 * 0.2) if std is None else std,
                      first_seen=first_seen)


def resources(cpu: str | None = None, memory: str | None = None, cpu_limit: str | None = None,
              memory_limit: str | None = None) -> Resources:
    """Resources from the text as written in a manifest (raw kept)."""
    raw = {k: v for k, v in {"requests.cpu": cpu, "requests.memory": memory, "limits.cpu": cpu_limit,
                             "limits.memory": memory_limit}.items() if v is not None}
    return Resources(
        cpu_request=parse_cpu(cpu) if cpu is not None else None,
        cpu_limit=parse_cpu(cpu_limit) if cpu_limit is not None else None,
        memory_request=parse_memory(memory) if memory is not None else None,
        memory_limit=parse_memory(memory_limit) if memory_limit is not None else None,
        raw=raw)


class StateBuilder:
    """Fluent builder: ``StateBuilder().workload(...).usage(...).build()``."""

    def __init__(self, days: int = DAYS, cluster: str = "test") -> None:
        self.state = ClusterState(cluster=cluster, region="us-east-1", window=window(days))
        self.days = days

    def workload(self, name: str, *containers: Container, namespace: str = "shop", kind: str = "Deployment",
                 replicas: int = 2, hpa: HPA | None = None, labels: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None) -> "StateBuilder":
        ref = WorkloadRef(kind, namespace, name)
        self.state.workloads.append(Workload(ref, replicas, list(containers), labels or {"team": "shop"},
                                             annotations or {}, hpa))
        return self

    def usage(self, workload: str, container: str, *, cpu: UsageStats | None = None,
              memory: UsageStats | None = None, throttled: float | None = None, namespace: str = "shop",
              kind: str = "Deployment") -> "StateBuilder":
        key = ContainerKey(WorkloadRef(kind, namespace, workload), container)
        self.state.usage[key] = ContainerUsage(key, cpu, memory, throttled)
        return self

    def node(self, name: str, group: str | None = "general", instance_type: str = "m5.xlarge",
             cpu: float = 3.92, memory: int = 15 * GIB, age_hours: float = 24 * 30, **kw) -> "StateBuilder":
        self.state.nodes.append(Node(name, instance_type, group, cpu, memory,
                                     created_at=END - timedelta(hours=age_hours), **kw))
        return self

    def pod(self, name: str, node: str, cpu: float, memory: int, *, namespace: str = "shop",
            owner: str | None = "app", daemonset: bool = False, labels: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None, phase: str = "Running") -> "StateBuilder":
        ref = WorkloadRef("DaemonSet" if daemonset else "Deployment", namespace, owner) if owner else None
        self.state.pods.append(Pod(namespace, name, node, ref, cpu, memory, labels or {}, annotations or {},
                                   daemonset, phase))
        return self

    def pdb(self, name: str, selector: dict[str, str], allowed: int, namespace: str = "shop") -> "StateBuilder":
        self.state.pdbs.append(PDB(namespace, name, selector, allowed))
        return self

    def volume(self, vid: str, *, source: VolumeSource = VolumeSource.EBS, size: int = 100,
               vtype: str = "gp3", state: str = "available", age_days: float = 30, **kw) -> "StateBuilder":
        self.state.volumes.append(Volume(vid, source, size, vtype, state,
                                         created_at=END - timedelta(days=age_days), **kw))
        return self

    def build(self) -> ClusterState:
        return self.state


def app(name: str = "app", *, role: ContainerRole = ContainerRole.APP, restarts: int = 0, oom_kills: int = 0,
        reason: str | None = None, **res: str | None) -> Container:
    return Container(name, role, resources(**res), restarts, oom_kills, reason)


def policy(**detectors: dict) -> PolicySettings:
    return load_policy({"detectors": detectors}, source="test")


@pytest.fixture(scope="session")
def price_book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture
def builder() -> StateBuilder:
    b = StateBuilder()
    b.node("n-base", cpu=4.0, memory=16 * GIB)   # one priced node: rates come from m5.xlarge
    return b
