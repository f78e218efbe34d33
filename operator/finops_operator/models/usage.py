"""Usage summaries over the analysis window, and the ClusterState detectors look at. No I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .inventory import PDB, Node, NodeGroup, NodePool, Pod, Volume, Workload, WorkloadRef

if TYPE_CHECKING:
    from ..gitops.records import ControllerRecord


SUPPORTED_PERCENTILES = (50, 90, 95, 99, 100)    # what UsageStats holds; settings accept exactly these


@dataclass(slots=True)
class UsageStats:
    """Summary of one usage series over the analysis window (cores or bytes)."""

    samples: int          # points actually present
    expected: int         # points a full window would have at the step
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float
    std: float
    first_seen: datetime | None = None   # first sample time (recently created containers)

    @property
    def coverage(self) -> float:
        return 0.0 if self.expected <= 0 else min(1.0, self.samples / self.expected)

    @property
    def volatility(self) -> float:
        """Coefficient of variation (std / mean); 0 for a flat series."""
        return 0.0 if self.mean <= 0 else self.std / self.mean

    def percentile(self, q: int) -> float:
        """The statistic for percentile ``q``, one of :data:`SUPPORTED_PERCENTILES` (100 is the max)."""
        values = {50: self.p50, 90: self.p90, 95: self.p95, 99: self.p99, 100: self.max}
        if q not in values:
            raise ConfigError(f"percentile {q!r} is not computed; use one of "
                              f"{', '.join(map(str, SUPPORTED_PERCENTILES))}", field="percentile")
        return values[q]


@dataclass(frozen=True, slots=True, order=True)
class ContainerKey:
    workload: WorkloadRef
    container: str

    def __str__(self) -> str:
        return f"{self.workload}/{self.container}"


@dataclass(slots=True)
class ContainerUsage:
    key: ContainerKey
    cpu: UsageStats | None                 # cores per replica
    memory: UsageStats | None              # bytes per replica
    cpu_throttled_ratio: float | None = None   # share of CFS periods throttled, 0..1


@dataclass(slots=True)
class Window:
    start: datetime
    end: datetime
    step_seconds: int

    @property
    def expected_points(self) -> int:
        return int((self.end - self.start).total_seconds() // self.step_seconds) + 1


@dataclass(slots=True)
class ClusterState:
    """Everything detectors look at, from a snapshot file or a live cluster."""

    cluster: str
    region: str
    window: Window
    workloads: list[Workload] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    pdbs: list[PDB] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    usage: dict[ContainerKey, ContainerUsage] = field(default_factory=dict)
    node_groups: list[NodeGroup] = field(default_factory=list)
    node_pools: list[NodePool] = field(default_factory=list)     # Karpenter NodePools (when installed)
    controllers: list["ControllerRecord"] = field(default_factory=list)   # Argo CD / Flux records (live scans)

    def node_group(self, name: str) -> NodeGroup | None:
        return next((g for g in self.node_groups if g.name == name), None)

    def node_pool(self, name: str) -> NodePool | None:
        return next((p for p in self.node_pools if p.name == name), None)

    def workload(self, ref: WorkloadRef) -> Workload | None:
        return next((w for w in self.workloads if w.ref == ref), None)
