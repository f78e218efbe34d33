"""Detector interface and the finding-type registry.

A finding type is one module: its detector class declares everything the core
needs to know about the type, and the core iterates :data:`REGISTRY` instead of
naming types (adding a type touches one place):

    finding_type      the FindingType it emits (SavingsOpportunity ``spec.type``)
    target_kind       what it targets (container, node group, volume)
    edit_kinds        the editors that write its findings (``Finding.edit.kind``)
    settings_key      its block under ``spec.detectors`` ...
    settings_model    ... and that block's pydantic model (bounds, defaults, docs)
    grouping          how its findings become change sets (PR grouping and titles)
    permissions       the data and API access it needs
    realized_savings  how savings are measured once its change is live

A detector is a pure function object: ``run(ClusterState) -> DetectorResult``.
It reads the inventory and the usage summaries the pipeline already computed
(for the policy's time window, if any) and returns findings plus a ``Skip`` for
every target it looked at but could not or should not judge, with the reason
(shown by ``finops scan -v``, in status and reports). Detectors never do I/O.

Each detector declares the data it needs in ``permissions`` (so docs, RBAC and
the PromQL batch can be derived from code) and registers itself::

    @register
    class CpuRightsizing(Detector):
        name = "cpu-rightsizing"
        finding_type = FindingType.RIGHTSIZE_CPU
        permissions = ("prometheus:container_cpu_usage_seconds_total",)
        def run(self, state): ...
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar

from ..errors import FinOpsError
from ..models import ClusterState, EditKind, Finding, FindingType, TargetKind
from ..pricing.allocation import Rates
from ..pricing.catalog import PriceBook
from ..settings_base import SettingsModel

if TYPE_CHECKING:   # settings assembles spec.detectors from this registry: no runtime import back
    from ..ledger import Opportunity
    from ..settings import PolicySettings


@dataclass(frozen=True, slots=True)
class Grouping:
    """How a finding type's findings become change sets.

    ``change_set`` set: cluster infrastructure, always one change set of that id
    (split by blast radius), titled "<verb> <n> <noun>s". ``None``: workload
    findings, grouped by the policy's ``groupBy`` and titled "Right-size <label> of
    <n> workloads in <group>".
    """

    label: str                       # "CPU", "memory", "node groups", "orphan volumes"
    change_set: str | None = None    # "node-groups", "orphan-volumes"
    verb: str = ""                   # "Consolidate", "Delete"
    noun: str = ""                   # "node group", "orphan volume"


@dataclass(slots=True)
class Skip:
    """Why a target produced no finding."""

    target: str
    detector: str
    reason: str

    def __str__(self) -> str:
        return f"{self.detector}: {self.target}: {self.reason}"


@dataclass(slots=True)
class DetectorResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def extend(self, other: "DetectorResult") -> None:
        self.findings.extend(other.findings)
        self.skipped.extend(other.skipped)


class Detector(ABC):
    """Base class: holds the policy settings and the price book; subclasses declare their type."""

    name: ClassVar[str]
    finding_type: ClassVar[FindingType]
    target_kind: ClassVar[TargetKind]
    edit_kinds: ClassVar[tuple[EditKind, ...]]
    settings_key: ClassVar[str]
    settings_model: ClassVar[type[SettingsModel]]
    grouping: ClassVar[Grouping]
    permissions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: "PolicySettings", prices: PriceBook, rates: Rates | None = None):
        self.settings = settings
        self.prices = prices
        self.rates = rates           # effective rates from allocation (the bill); None: list-price rates

    @property
    def config(self):
        """This detector's block of the policy (``spec.detectors.<settings_key>``)."""
        return getattr(self.settings.detectors, self.settings_key)

    @property
    def enabled(self) -> bool:
        """Whether the policy turns this detector on (``spec.detectors.<settings_key>.enabled``)."""
        return bool(getattr(self.config, "enabled", True))

    @classmethod
    @abstractmethod
    def realized_savings(cls, opp: "Opportunity", state: ClusterState, rates: Rates) -> float | None:
        """Savings measured on the cluster as it is now, or None while the change is not live yet."""

    @abstractmethod
    def run(self, state: ClusterState) -> DetectorResult:
        """Findings and skips for ``state``; must not mutate it."""

    def skip(self, target: object, reason: str) -> Skip:
        return Skip(str(target), self.name, reason)


REGISTRY: dict[str, type[Detector]] = {}

_REQUIRED = ("name", "finding_type", "target_kind", "edit_kinds", "settings_key", "settings_model", "grouping")

_D = TypeVar("_D", bound=type[Detector])


def register(cls: _D) -> _D:
    """Class decorator: add a detector to :data:`REGISTRY` under its ``name``."""
    missing = [attr for attr in _REQUIRED if not getattr(cls, attr, None)]
    if missing:
        raise TypeError(f"{cls.__name__} needs class attributes {', '.join(missing)} to be registered")
    name = cls.name
    for other in REGISTRY.values():
        if other is cls:
            continue
        clash = [a for a in ("name", "finding_type", "settings_key") if getattr(other, a) == getattr(cls, a)]
        if clash:
            raise TypeError(f"{cls.__name__}: {', '.join(clash)} already registered by {other.__name__}")
    REGISTRY[name] = cls
    return cls


def type_spec(finding_type: FindingType | str) -> type[Detector]:
    """The registered detector class that declares ``finding_type`` (KeyError names the known types)."""
    value = finding_type.value if isinstance(finding_type, FindingType) else str(finding_type)
    for cls in REGISTRY.values():
        if cls.finding_type.value == value:
            return cls
    raise KeyError(f"unknown finding type {value!r}; registered: "
                   f"{', '.join(sorted(c.finding_type.value for c in REGISTRY.values()))}")


def now_of(state: ClusterState) -> datetime:
    """The detectors' "now": the end of the analysis window (deterministic, a test seam)."""
    return state.window.end


def run_all(state: ClusterState, settings: PolicySettings, prices: PriceBook,
            only: list[str] | None = None, rates: Rates | None = None) -> DetectorResult:
    """Run every enabled registered detector (or the ``only`` names) and merge the results.

    A detector that raises a :class:`FinOpsError` (bad input it cannot judge, such as
    an unparseable annotation across the board) is recorded as a Skip and the others
    still run; programming errors propagate.
    """
    result = DetectorResult()
    names = only if only is not None else list(REGISTRY)
    for name in names:
        cls = REGISTRY.get(name)
        if cls is None:
            raise KeyError(f"unknown detector {name!r}; registered: {', '.join(sorted(REGISTRY))}")
        detector = cls(settings, prices, rates)
        if not detector.enabled:
            continue
        try:
            result.extend(detector.run(state))
        except FinOpsError as exc:
            result.skipped.append(Skip("*", name, f"detector failed: {exc}"))
    return result
