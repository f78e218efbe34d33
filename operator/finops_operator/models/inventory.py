"""What runs in the cluster: workloads, containers, pods, nodes, node groups, NodePools, volumes.

Units: CPU in cores (float), memory and disk in bytes (int) unless a field name says
otherwise (``size_gib``). Nothing here does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .usage import UsageStats


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
    kustomization: str | None = None        # flux HelmRelease: path of the Flux Kustomization that applies it
                                            # (this cluster's overlay: edited and rendered there)


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
    instance_id: str | None = None         # EC2 instance id from spec.providerID (aws:///zone/i-...): the bill's key
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
