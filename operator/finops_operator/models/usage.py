"""Usage summaries over the analysis window, and the ClusterState detectors look at. No I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .inventory import PDB, Node, NodeGroup, NodePool, Pod, Volume, Workload, WorkloadRef

if TYPE_CHECKING:
    from ..gitops.records import ControllerRecord


@dataclass(frozen=True, slots=True)
class DaySummary:
    """Per-bucket summaries of one series, oldest bucket first.

    Buckets are end-aligned to the window end: bucket i covers (ends[i] - bucket_seconds, ends[i]].
    bucket_seconds is 86400 for windows of 2 days or more, else stats.bucket_seconds(window) (a
    multiple of the step, at least 4 buckets). After the replica merge each per-bucket figure is
    the worst replica's (max over pods) and samples[i] = min(sum over pods, expected points in the bucket).
    A bucket without samples holds NaN figures and 0 samples.
    """

    bucket_seconds: int
    ends: tuple[int, ...]                      # epoch seconds
    samples: tuple[int, ...]
    mean: tuple[float, ...]
    max: tuple[float, ...]
    quantiles: dict[int, tuple[float, ...]]    # integer percent (50..99) -> per-bucket value


@dataclass(slots=True)
class UsageStats:
    """Summary of one usage series over the analysis window (cores or bytes).

    ``quantiles`` holds the EXACT window percentiles that were computed (integer percent 50..99,
    chosen by :func:`finops_operator.stats.needed_percentiles` from the policy); 100 is ``max``.
    ``days`` holds the per-bucket summaries where the source computed them.
    """

    samples: int          # points actually present
    expected: int         # points a full window would have at the step
    quantiles: dict[int, float]
    max: float
    mean: float
    std: float
    first_seen: datetime | None = None   # first sample time (recently created containers)
    days: DaySummary | None = None

    @property
    def coverage(self) -> float:
        return 0.0 if self.expected <= 0 else min(1.0, self.samples / self.expected)

    @property
    def volatility(self) -> float:
        """Coefficient of variation (std / mean); 0 for a flat series."""
        return 0.0 if self.mean <= 0 else self.std / self.mean

    def percentile(self, q: int) -> float:
        """The statistic for percentile ``q``: 100 is the max, else one of the computed ``quantiles``."""
        if q == 100:
            return self.max
        if q not in self.quantiles:
            computed = ", ".join(map(str, sorted(self.quantiles) + [100]))
            raise ConfigError(f"percentile {q!r} was not computed for this series (computed: {computed}); the "
                              "needed percentiles come from stats.needed_percentiles(settings)", field="percentile")
        return self.quantiles[q]


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
