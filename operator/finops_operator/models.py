"""Plain data that flows through the money loop.

    ClusterState (inventory)  +  usage summaries  ->  detectors  ->  Finding
    Finding  ->  guardrails  ->  Decision  ->  plan  ->  ChangeSet  ->  branch / PR

Units everywhere: CPU in cores (float), memory and disk in bytes (int) unless a
field name says otherwise (``size_gib``), money in USD per month (float), time
as timezone-aware UTC ``datetime``. Nothing here does I/O.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .gitops.records import ControllerRecord


# --------------------------------------------------------------------------- inventory


@dataclass(frozen=True, slots=True, order=True)
class WorkloadRef:
    """A workload by kind/namespace/name: Deployment, StatefulSet, DaemonSet, CronJob, Job."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind.lower()}/{self.name}"


class ContainerRole(str, Enum):
    APP = "app"
    INIT = "init"          # runs to completion before app containers
    SIDECAR = "sidecar"    # native sidecar: init container with restartPolicy: Always


@dataclass(slots=True)
class Resources:
    """Requests and limits as parsed numbers; ``raw`` keeps the text as written."""

    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: int | None = None
    memory_limit: int | None = None
    raw: dict[str, str] = field(default_factory=dict)  # e.g. {"requests.cpu": "1000m"}


@dataclass(slots=True)
class Container:
    name: str
    role: ContainerRole = ContainerRole.APP
    resources: Resources = field(default_factory=Resources)
    restarts: int = 0                       # restarts seen in the analysis window
    oom_kills: int = 0                      # OOMKilled terminations seen in the window
    last_terminated_reason: str | None = None


def pod_requests(containers: list[Container]) -> tuple[float, int]:
    """A pod's effective requests (cores, bytes) as the scheduler counts them (KEP-753, native sidecars).

    ``max(app containers + all sidecars, max over init containers of (init + sidecars declared before it))``,
    per resource. ``containers`` keeps declaration order among init containers and sidecars.
    """
    side_cpu = side_mem = 0.0
    init_cpu = init_mem = 0.0
    app_cpu = app_mem = 0.0
    for c in containers:
        cpu, mem = c.resources.cpu_request or 0.0, c.resources.memory_request or 0
        if c.role == ContainerRole.SIDECAR:
            side_cpu, side_mem = side_cpu + cpu, side_mem + mem
        elif c.role == ContainerRole.INIT:
            init_cpu, init_mem = max(init_cpu, cpu + side_cpu), max(init_mem, mem + side_mem)
        else:
            app_cpu, app_mem = app_cpu + cpu, app_mem + mem
    return float(max(app_cpu + side_cpu, init_cpu)), int(max(app_mem + side_mem, init_mem))


@dataclass(slots=True)
class HPA:
    name: str
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int | None = None      # percent of request
    target_memory_utilization: int | None = None   # percent of request
    current_replicas: int | None = None


@dataclass(frozen=True, slots=True)
class DeploySource:
    """Which files of the GitOps repository deploy a workload in *this* cluster, and which rule decided.

    ``entry_point`` is a repository-relative directory: a Kustomize overlay (``kind``
    ``kustomize``), a Helm chart (``helm``, with the release's ``values_files`` in
    order and its ``release`` name) or a directory of plain manifests (``plain``).
    ``rule`` says how it was found, in the order they are tried: ``argocd`` (an
    Application / ApplicationSet in the cluster), ``flux`` (a Kustomization /
    HelmRelease), ``policy-paths`` (the policy's ``spec.git.paths``), ``annotation``
    (``finops.dev/source`` on the workload). Editors edit the layer this entry point
    owns and the rendering proof renders it.
    """

    entry_point: str
    rule: str
    kind: str = "kustomize"                 # kustomize | helm | plain
    values_files: tuple[str, ...] = ()      # helm: the release's values files, in order
    release: str | None = None              # helm: the release name
    revision: str | None = None             # the controller's target revision, when it names one
    inline_values: tuple[str, ...] = ()     # helm: manifests whose inline values apply (Flux HelmRelease
                                            # spec.values in the files its Kustomization renders), in order


@dataclass(slots=True)
class Workload:
    ref: WorkloadRef
    replicas: int
    containers: list[Container]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    hpa: HPA | None = None
    source: DeploySource | None = None      # which files deploy it here (set by the source mapping)
    # Owner chain is resolved by the source adapter; pods carry the owning WorkloadRef.

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)

    @property
    def team(self) -> str:
        return self.labels.get("team") or self.labels.get("app.kubernetes.io/part-of") or self.ref.namespace


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    node: str | None
    owner: WorkloadRef | None              # resolved owning workload (ReplicaSet -> Deployment)
    cpu_request: float = 0.0               # sum over app containers (max with init), cores
    memory_request: int = 0                # bytes
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    daemonset: bool = False
    phase: str = "Running"


@dataclass(slots=True)
class PDB:
    namespace: str
    name: str
    selector: dict[str, str]               # matchLabels
    disruptions_allowed: int


@dataclass(slots=True)
class Node:
    name: str
    instance_type: str
    node_group: str | None
    allocatable_cpu: float
    allocatable_memory: int
    zone: str | None = None
    capacity_type: str = "on-demand"       # on-demand | spot
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    created_at: datetime | None = None
    cpu_usage: "UsageStats | None" = None      # whole-node usage over the window
    memory_usage: "UsageStats | None" = None


@dataclass(slots=True)
class NodeGroup:
    """A node group's configured bounds (EKS DescribeNodegroup, or the scenario); None = unknown."""

    name: str
    min_size: int | None = None
    max_size: int | None = None
    desired_size: int | None = None


class VolumeSource(str, Enum):
    EBS = "ebs"   # an AWS EBS volume (describe_volumes)
    PV = "pv"     # a Kubernetes PersistentVolume


@dataclass(slots=True)
class Volume:
    id: str                                # vol-0abc... or PV name
    source: VolumeSource
    size_gib: int
    volume_type: str                       # gp2, gp3, io1, st1, sc1 ... (PVs: from the EBS CSI spec / class)
    state: str                             # EBS: available|in-use; PV: Available|Bound|Released|Failed
    created_at: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)   # EBS tags, or PV labels
    zone: str | None = None
    claim: str | None = None               # PV: namespace/name of the claim it was bound to
    storage_class: str | None = None
    backing_volume_id: str | None = None   # PV backed by EBS: the vol- id
    iops: int | None = None
    throughput: int | None = None          # MiB/s (gp3)
    released_at: datetime | None = None    # PV: when it became Released, if known


class ConsolidationPolicy(str, Enum):
    """A Karpenter NodePool's ``spec.disruption.consolidationPolicy`` (karpenter.sh/v1)."""

    WHEN_EMPTY = "WhenEmpty"                                    # only nodes without app pods go
    WHEN_EMPTY_OR_UNDERUTILIZED = "WhenEmptyOrUnderutilized"    # also nodes whose pods fit elsewhere


@dataclass(slots=True)
class DisruptionBudget:
    """One entry of ``spec.disruption.budgets``: at most ``nodes`` (a count or a percent) disrupted at once,
    for the listed ``reasons`` (empty: all), during ``schedule`` + ``duration`` (None: always)."""

    nodes: str                             # "0", "10%", "3"
    reasons: list[str] = field(default_factory=list)   # Underutilized, Empty, Drifted
    schedule: str | None = None            # cron
    duration: str | None = None            # Go duration, with a schedule


@dataclass(slots=True)
class NodePool:
    """A Karpenter NodePool (karpenter.sh/v1): its nodes carry the label ``karpenter.sh/nodepool: <name>``.

    Karpenter, not a node group size, decides how many nodes it runs; what keeps
    under-used nodes alive is its disruption policy. ``consolidate_after`` is
    written as in the spec (a Go duration or ``Never``; None when absent).
    """

    name: str
    consolidation_policy: ConsolidationPolicy = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED
    consolidate_after: str | None = None
    limits: dict[str, str] = field(default_factory=dict)     # {"cpu": "400", "memory": "1600Gi"}
    budgets: list[DisruptionBudget] = field(default_factory=list)


# --------------------------------------------------------------------------- usage


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


# --------------------------------------------------------------------------- findings


class FindingType(str, Enum):
    RIGHTSIZE_CPU = "rightsize-cpu"
    RIGHTSIZE_MEMORY = "rightsize-memory"
    IDLE_NODE = "idle-node"
    ORPHAN_VOLUME = "orphan-volume"
    NODEPOOL_CONSOLIDATION = "nodepool-consolidation"


class TargetKind(str, Enum):
    CONTAINER = "container"     # namespace/workload/container; edits manifests
    NODE_GROUP = "node-group"   # edits Terraform node groups
    VOLUME = "volume"           # edits Terraform aws_ebs_volume or PV manifests
    NODE_POOL = "node-pool"     # a Karpenter NodePool; edits its manifest


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    name: str                              # container name, node group name, volume id
    namespace: str | None = None
    workload: WorkloadRef | None = None    # for containers

    def __str__(self) -> str:
        if self.workload:
            return f"{self.workload}/{self.name}"
        return f"{self.kind.value}/{self.name}"


class EditKind(str, Enum):
    """Which editor changes the GitOps repository for a finding (a finding type declares its kinds)."""

    CONTAINER_RESOURCES = "container-resources"   # manifests, Kustomize patches, Helm values
    NODE_GROUP = "node-group"                     # Terraform node group sizes
    EBS_VOLUME = "ebs-volume"                     # remove a Terraform aws_ebs_volume (snapshot first)
    PERSISTENT_VOLUME = "persistent-volume"       # remove a PersistentVolume manifest
    NODE_POOL = "node-pool"                       # a Karpenter NodePool manifest's spec.disruption


@dataclass(frozen=True, slots=True)
class EditTarget:
    """Where and how a finding is written: typed, so editors never route on ``evidence``.

    ``source_hint`` is the ``finops.dev/source`` annotation or tag as written (a path
    relative to the repository root, optionally ``path#selector``); untrusted: editors
    resolve it inside the repository or refuse it. ``snapshot_before_delete`` and
    ``size_gib`` are for volume removals. ``deploy`` (from the workload's
    :class:`DeploySource`) tells editors which layer belongs to this cluster.
    """

    kind: EditKind
    source_hint: str | None = None
    snapshot_before_delete: bool = False
    size_gib: int | None = None
    deploy: DeploySource | None = None      # the entry point that deploys the target in this cluster


@dataclass(frozen=True, slots=True)
class Change:
    """One value to change. ``field`` is a dotted path relative to the target.

    Container targets: ``resources.requests.cpu``, ``resources.limits.memory``,
    ``resources.limits.cpu`` (``after=None`` removes the key).
    Node groups: ``desired_size``, ``min_size``, ``max_size``, ``instance_types``.
    Volumes: ``delete`` (before='present', after=None).
    NodePools: ``spec.disruption.consolidationPolicy``, ``spec.disruption.consolidateAfter`` (paths in
    the NodePool object, written to its manifest) and ``nodes`` (the node count expected once
    Karpenter has consolidated: measured, never written).
    ``before``/``after`` are strings as they should be written (``"250m"``, ``"512Mi"``).
    """

    field: str
    before: str | None
    after: str | None


@dataclass(slots=True)
class Finding:
    detector: str                          # registry name, e.g. "cpu-rightsizing"
    type: FindingType
    target: Target
    title: str
    changes: list[Change]
    monthly_savings: float                 # USD/month; negative = costs more (a safety raise)
    confidence: float                      # 0..1, data coverage and stability
    risk: float                            # 0..1, how close the new value runs to observed peaks
    edit: EditTarget                       # which editor writes it, with its typed inputs
    cost_before: float | None = None       # USD/month of the target before the change (the ledger's baseline)
    cost_after: float | None = None        # USD/month after
    evidence: dict[str, object] = field(default_factory=dict)   # for people (PR body, JSON); never routed on
    labels: dict[str, str] = field(default_factory=dict)   # labels/tags of the target, for guardrails
    team: str | None = None
    cluster: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """Stable across runs: detector + target (not the values, so a finding updates in place)."""
        raw = f"{self.detector}|{self.target.kind.value}|{self.target.namespace}|{self.target.workload}|{self.target.name}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        """Changes when the recommendation changes (used to decide whether to reopen)."""
        raw = ";".join(f"{c.field}={c.before}->{c.after}" for c in self.changes)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def is_increase(self) -> bool:
        return self.monthly_savings < 0


class Verdict(str, Enum):
    ALLOW = "allow"
    REQUIRE_APPROVAL = "require-approval"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return {"allow": 0, "require-approval": 1, "deny": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str          # guardrail name, e.g. "max-single-change"
    verdict: Verdict
    message: str


@dataclass(slots=True)
class Decision:
    finding_id: str
    verdict: Verdict
    reasons: list[Reason] = field(default_factory=list)

    @classmethod
    def from_reasons(cls, finding_id: str, reasons: list[Reason]) -> "Decision":
        verdict = max((r.verdict for r in reasons), key=lambda v: v.severity, default=Verdict.ALLOW)
        return cls(finding_id, verdict, list(reasons))


@dataclass(slots=True)
class FileEdit:
    """A whole-file result of an edit, written atomically by the git layer."""

    path: str                # relative to the repository root
    before: str | None       # None: a new file
    after: str | None        # None: delete the file


@dataclass(slots=True)
class ChangeSet:
    """A group of allowed findings that becomes one branch and one pull request."""

    id: str                  # stable, e.g. "rightsize-payments"
    title: str               # the plan's title over all findings (see actuation.plan.edited_title)
    findings: list[Finding]
    decisions: dict[str, Decision] = field(default_factory=dict)   # by finding id
    edits: list[FileEdit] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)           # finding id -> why it could not be edited
    body: str = ""
    scope: str | None = None # title scope: "payments", "team payments"; None for type or infra groups
    part: int = 1            # blast-radius split: part of parts
    parts: int = 1
    notes: dict[str, list[str]] = field(default_factory=dict)       # finding id -> edit notes for reviewers
    proof: list[str] = field(default_factory=list)                  # one line per rendered entry point (actuation.proof)

    @property
    def branch(self) -> str:
        return f"finops/{self.id}"

    @property
    def monthly_savings(self) -> float:
        return sum(f.monthly_savings for f in self.findings if f.id not in self.skipped)
