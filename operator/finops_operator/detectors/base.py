"""Detector interface and registry.

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
from typing import ClassVar, TypeVar

from ..errors import FinOpsError
from ..models import ClusterState, Finding, FindingType
from ..pricing.catalog import PriceBook
from ..settings import PolicySettings


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
    """Base class: holds the policy settings and the price book."""

    name: ClassVar[str]
    finding_type: ClassVar[FindingType]
    permissions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: PolicySettings, prices: PriceBook):
        self.settings = settings
        self.prices = prices

    @property
    def enabled(self) -> bool:
        """Whether the policy turns this detector on (each subclass maps to its settings block)."""
        return True

    @abstractmethod
    def run(self, state: ClusterState) -> DetectorResult:
        """Findings and skips for ``state``; must not mutate it."""

    def skip(self, target: object, reason: str) -> Skip:
        return Skip(str(target), self.name, reason)


REGISTRY: dict[str, type[Detector]] = {}

_D = TypeVar("_D", bound=type[Detector])


def register(cls: _D) -> _D:
    """Class decorator: add a detector to :data:`REGISTRY` under its ``name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__name__} needs a 'name' class attribute to be registered")
    existing = REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise TypeError(f"detector name {name!r} is already registered by {existing.__name__}")
    REGISTRY[name] = cls
    return cls


def now_of(state: ClusterState) -> datetime:
    """The detectors' "now": the end of the analysis window (deterministic, a test seam)."""
    return state.window.end


def run_all(state: ClusterState, settings: PolicySettings, prices: PriceBook,
            only: list[str] | None = None) -> DetectorResult:
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
        detector = cls(settings, prices)
        if not detector.enabled:
            continue
        try:
            result.extend(detector.run(state))
        except FinOpsError as exc:
            result.skipped.append(Skip("*", name, f"detector failed: {exc}"))
    return result
