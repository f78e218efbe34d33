"""Findings, guardrail decisions and change sets: what the loop decides and writes. No I/O.

Money in USD per month (float); time as timezone-aware UTC ``datetime``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from .inventory import DeploySource, WorkloadRef


class FindingType(str, Enum):
    RIGHTSIZE_CPU = "rightsize-cpu"
    RIGHTSIZE_MEMORY = "rightsize-memory"
    IDLE_NODE = "idle-node"
    ORPHAN_VOLUME = "orphan-volume"
    NODEPOOL_CONSOLIDATION = "nodepool-consolidation"
    FREEZE_GROWTH = "freeze-growth"


class TargetKind(str, Enum):
    CONTAINER = "container"     # namespace/workload/container; edits manifests
    NODE_GROUP = "node-group"   # edits Terraform node groups
    VOLUME = "volume"           # edits Terraform aws_ebs_volume or PV manifests
    NODE_POOL = "node-pool"     # a Karpenter NodePool; edits its manifest
    NAMESPACE = "namespace"     # a namespace as a whole; edits a ResourceQuota beside its manifest


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
    RESOURCE_QUOTA = "resource-quota"             # add or tighten a namespace's ResourceQuota (FreezeGrowth)


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
    ResourceQuotas (FreezeGrowth): ``spec.hard.<resource>`` such as ``spec.hard.requests.cpu`` (the resource name
    keeps its dots; ``after`` is the limit wanted, an existing stricter one is kept: tighten only).
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
    group: str | None = None               # change-set key of types grouped by their own key (FreezeGrowth: the
                                           # budget "ns/name"); None: the type's grouping or the policy's groupBy

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
