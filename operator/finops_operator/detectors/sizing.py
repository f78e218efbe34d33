"""Shared machinery of the CPU and memory right-sizers.

Which containers are judged
    Every container of every workload, looked up in ``state.usage`` by key (one
    dict lookup, no scans). Init containers are skipped (they run to completion
    before the app starts and only matter for scheduling); native sidecars are
    sized like app containers. A container is skipped, with the reason, when it
    has no usage series, when coverage is below ``minCoveragePercent`` or when its
    history (window end minus the later of window start and ``first_seen``) is
    shorter than ``minHistoryHours``.

Confidence (0..1), inputs recorded in ``evidence["confidence_inputs"]``::

    confidence = coverage
               x (0.5 + 0.5 x min(1, history_hours / 168))   # a week of history earns full weight
               x 1 / (1 + 0.5 x cv)                           # cv = std / mean (volatility)
               x max(0.5, 1 - 0.05 x restarts)                # restarts make the series less telling

Risk (0..1), with ``pr = observed max / new request`` and ``pl = observed max / new limit``
(``pl = 0`` without a limit), ``clip`` to [0, 1]::

    cpu    = 0.4 x clip((pr - 0.5) / 1.5) + 0.6 x clip((pl - 0.5) / 0.5)     # a limit throttles
    memory = 0.3 x clip((pr - 0.5) / 1.0) + 0.7 x clip((pl - 0.5) / 0.5)     # a limit OOM-kills
             + 0.2 if the container was OOM-killed in the window

Limit policies (per policy, or per workload with the annotation
``finops.dev/limit-policy``): KeepRatio scales an existing limit with the request
(no limit stays no limit; a container whose request equals its limit keeps them
equal, so a Guaranteed pod stays Guaranteed); NoCPULimit removes the CPU limit
(memory keeps the ratio); Burstable sets limit = request x burstFactorPercent /
100; Guaranteed sets limit = request. A limit is never below its request; a
memory limit never below the observed peak (plus headroom). A limit that grows
grows by no more than its request did and to at most maxLimitGrowthPercent of
its current value per change; the growth adds to the risk score.

Savings = (effective request before - request after) x blended cluster rate x 730
x replicas. The effective request before is the request, else the limit (Kubernetes
defaults a missing request to the limit), else the mean usage (a container without
requests is allocated what it uses). HPA-managed workloads use the HPA's current
replicas (else its minReplicas).
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

from pydantic import Field

from ..models import (Change, ClusterState, Container, ContainerKey, ContainerRole, ContainerUsage, EditKind,
                      EditTarget, Finding, Target, TargetKind, UsageStats, Window, Workload)
from ..pricing.allocation import Rates, cluster_rates, cpu_request_savings, memory_request_savings
from ..safeio import SOURCE_HINT_KEY
from ..settings_base import LimitPolicy, SettingsModel, TimeWindow
from ..units import parse_cpu, parse_memory
from .base import Detector, DetectorResult, Skip
from .usage_level import Level, usage_level, usage_levels

if TYPE_CHECKING:
    from ..ledger import Opportunity

LIMIT_POLICY_ANNOTATION = "finops.dev/limit-policy"
HOURS_FOR_FULL_HISTORY = 168.0


class RightsizingSettings(SettingsModel):
    """Settings both right-sizers share (``spec.detectors.cpu`` / ``spec.detectors.memory``)."""

    enabled: bool = True
    headroom_percent: int = Field(default=15, ge=0, le=200, description="Added on top of the sized percentile.")
    min_change_percent: int = Field(default=10, ge=0, le=100, description="Ignore changes smaller than this.")
    min_monthly_savings: int = Field(default=1, ge=0, le=1_000_000, description="Ignore findings worth less, in whole USD per month.")
    min_coverage_percent: int = Field(default=60, ge=1, le=100, description="Data coverage needed for a finding.")
    min_history_hours: int = Field(default=24, ge=1, le=24 * 90, description="Hours of history needed before a workload is sized.")
    limit_policy: LimitPolicy = Field(default=LimitPolicy.KEEP_RATIO, description=(
        "KeepRatio scales limits with requests; NoCPULimit drops CPU limits; Burstable sets limit = request x "
        "burstFactorPercent / 100; Guaranteed sets limit = request."))
    burst_factor_percent: int = Field(default=200, ge=100, le=1000, description="Burstable: limit = request x this / 100.")
    max_limit_growth_percent: int = Field(default=200, ge=100, le=1000, description="A change grows a limit to at most this percent of its current value, and by no more than its request grows (raises never inflate limits).")
    half_life_hours: int = Field(default=72, ge=1, le=24 * 90, description=(
        "Recent usage weighs more: a sample's weight halves every this many hours (the VPA recommender's "
        "decaying histogram). Long enough to keep a week's weekday peaks in view."))
    growth_horizon_days: int = Field(default=3, ge=0, le=90, description=(
        "A clearly rising trend is sized for its level this many days after the window (0 = at the window end)."))
    time_window: TimeWindow | None = None


@dataclass(slots=True)
class Subject:
    """One container under analysis, with everything the sizers need."""

    workload: Workload
    container: Container
    key: ContainerKey
    usage: ContainerUsage
    stats: UsageStats
    history_hours: float
    replicas: int
    replicas_basis: str
    limit_policy: LimitPolicy
    level: Level                 # the usage level to size for (computed for every container in one pass)


def clip(value: float) -> float:
    return max(0.0, min(1.0, value))


def history_hours(stats: UsageStats, window: Window) -> float:
    """Hours of history: window end minus the later of window start and first_seen."""
    start = window.start
    if stats.first_seen is not None and stats.first_seen > start:
        start = stats.first_seen
    return max(0.0, (window.end - start).total_seconds() / 3600.0)


def data_problem(stats: UsageStats, hours: float, min_coverage_percent: int, min_history_hours: int) -> str | None:
    """Why the data is too thin for a recommendation, or None when it is enough."""
    if stats.samples <= 0:
        return "no usage samples in the window"
    if stats.coverage * 100 < min_coverage_percent:
        return (f"data coverage {stats.coverage:.0%} ({stats.samples}/{stats.expected} samples) is below "
                f"minCoveragePercent {min_coverage_percent}%")
    if hours < min_history_hours:
        return (f"only {hours:.1f}h of history (recently created or first seen late); "
                f"minHistoryHours is {min_history_hours}h")
    return None


def confidence(stats: UsageStats, hours: float, restarts: int) -> tuple[float, dict[str, float]]:
    """Confidence and its inputs (see the module docstring for the formula)."""
    cov = stats.coverage
    hist = 0.5 + 0.5 * min(1.0, hours / HOURS_FOR_FULL_HISTORY)
    vol = 1.0 / (1.0 + 0.5 * stats.volatility)
    rest = max(0.5, 1.0 - 0.05 * restarts)
    inputs = {"coverage": round(cov, 4), "history_factor": round(hist, 4), "volatility_cv": round(stats.volatility, 4),
              "volatility_factor": round(vol, 4), "restarts": restarts, "restart_factor": round(rest, 4)}
    return round(float(clip(cov * hist * vol * rest)), 4), inputs


def limit_growth_risk(current_limit: float | None, new_limit: float | None) -> float:
    """Extra risk of a limit that grows: a larger limit lets the container take more of its node.

    0 for a limit that stays or shrinks (or appears/disappears), up to 0.25 at twice the limit.
    """
    if not current_limit or not new_limit or new_limit <= current_limit:
        return 0.0
    return 0.25 * clip(new_limit / current_limit - 1.0)


def cpu_risk(peak: float, new_request: float, new_limit: float | None, current_limit: float | None = None) -> float:
    pr = peak / new_request if new_request > 0 else 2.0
    pl = peak / new_limit if new_limit else 0.0
    growth = limit_growth_risk(current_limit, new_limit)
    return round(float(clip(0.4 * clip((pr - 0.5) / 1.5) + 0.6 * clip((pl - 0.5) / 0.5) + growth)), 4)


def memory_risk(peak: float, new_request: float, new_limit: float | None, oom_killed: bool,
                current_limit: float | None = None) -> float:
    pr = peak / new_request if new_request > 0 else 2.0
    pl = peak / new_limit if new_limit else 0.0
    bump = 0.2 if oom_killed else 0.0
    growth = limit_growth_risk(current_limit, new_limit)
    return round(float(clip(0.3 * clip((pr - 0.5) / 1.0) + 0.7 * clip((pl - 0.5) / 0.5) + bump + growth)), 4)


def is_guaranteed(current_request: float | None, current_limit: float | None) -> bool:
    """Request equal to limit for this resource (the container's share of a Guaranteed pod)."""
    return current_request is not None and current_limit is not None and abs(current_request - current_limit) < 1e-9


def policy_limit(policy: LimitPolicy, resource: str, new_request: float, current_request: float | None,
                 current_limit: float | None, burst_percent: int, max_growth_percent: int = 200) -> float | None:
    """The new limit under ``policy`` (unrounded, never below the new request); None means no limit.

    On a raise a limit grows by no more than its request did (absolute), and to at most
    ``max_growth_percent`` of its current value per change (``maxLimitGrowthPercent``),
    but never below the new request. Guaranteed (limit = request) is not capped.
    """
    if policy == LimitPolicy.GUARANTEED:
        return new_request
    if policy == LimitPolicy.NO_CPU_LIMIT and resource == "cpu":
        return None
    if policy == LimitPolicy.BURSTABLE:
        limit = new_request * burst_percent / 100.0
    elif current_limit is None:
        return None
    elif not current_request:
        limit = max(current_limit, new_request)
    else:
        limit = new_request * current_limit / current_request
    if current_limit and limit > current_limit:
        grown = current_limit * max_growth_percent / 100.0
        if current_request is not None and new_request > current_request:
            grown = min(grown, current_limit + (new_request - current_request))
        limit = min(limit, grown)
    return max(limit, new_request)


def replicas_of(workload: Workload) -> tuple[int, str]:
    """Replicas used for savings, and where the number comes from."""
    hpa = workload.hpa
    if hpa is not None:
        if hpa.current_replicas:
            return hpa.current_replicas, f"HPA {hpa.name} current replicas"
        return hpa.min_replicas, f"HPA {hpa.name} minReplicas (no current count)"
    return workload.replicas, "spec.replicas"


def limit_policy_of(workload: Workload, default: LimitPolicy) -> LimitPolicy | str:
    """The workload's limit policy (annotation override), or an error text for a bad annotation."""
    raw = workload.annotations.get(LIMIT_POLICY_ANNOTATION)
    if raw is None:
        return default
    try:
        return LimitPolicy(raw.strip())
    except ValueError:
        valid = ", ".join(p.value for p in LimitPolicy)
        return f"annotation {LIMIT_POLICY_ANNOTATION}={raw!r} is not a limit policy; use one of {valid}"


def value_change(field: str, before_raw: str | None, before_value: float | None, after_value: float | None,
                 fmt: Callable[..., str]) -> Change | None:
    """A Change for one resource key, formatted like the current text; None when nothing changes."""
    before = before_raw if before_raw is not None else (fmt(before_value) if before_value is not None else None)
    after = fmt(after_value, like=before_raw) if after_value is not None else None
    if before == after:
        return None
    return Change(field, before, after)


def base_evidence(subject: Subject, unit: str) -> dict[str, object]:
    """Evidence every right-sizing finding carries (reviewers and the editor read it)."""
    stats, wl = subject.stats, subject.workload

    def num(value: float) -> float | int:
        return int(round(float(value))) if unit == "bytes" else round(float(value), 4)   # plain types for YAML/JSON

    evidence: dict[str, object] = {
        "workload": str(wl.ref), "container": subject.container.name, "role": subject.container.role.value,
        "unit": unit, "replicas": subject.replicas, "replicas_basis": subject.replicas_basis,
        "samples": stats.samples, "expected_samples": stats.expected, "coverage": round(stats.coverage, 4),
        "history_hours": round(subject.history_hours, 1), "history_days": round(subject.history_hours / 24, 2),
        "first_seen": stats.first_seen.isoformat() if stats.first_seen else None,
        **{f"p{q}": num(value) for q, value in sorted(stats.quantiles.items())},
        "max": num(stats.max), "mean": num(stats.mean), "std": num(stats.std),
        "volatility_cv": round(stats.volatility, 4),
        "restarts": subject.container.restarts, "oom_kills": subject.container.oom_kills,
        "last_terminated_reason": subject.container.last_terminated_reason,
        "limit_policy": subject.limit_policy.value,
    }
    if wl.hpa is not None:
        hpa = wl.hpa
        evidence["hpa"] = {"name": hpa.name, "min_replicas": hpa.min_replicas, "max_replicas": hpa.max_replicas,
                           "current_replicas": hpa.current_replicas,
                           "target_cpu_utilization": hpa.target_cpu_utilization,
                           "target_memory_utilization": hpa.target_memory_utilization}
    hint = wl.annotations.get(SOURCE_HINT_KEY)
    if hint:
        evidence["source_hint"] = hint      # shown to reviewers; editors use Finding.edit.source_hint
    return evidence


class RightsizingDetector(Detector):
    """Walks every container once and hands the judgeable ones to :meth:`evaluate`."""

    resource: ClassVar[str]   # "cpu" | "memory"
    target_kind = TargetKind.CONTAINER
    edit_kinds = (EditKind.CONTAINER_RESOURCES,)

    @classmethod
    def realized_savings(cls, opp: "Opportunity", state: ClusterState, rates: Rates) -> float | None:
        """The request written now versus the one before the change, at today's rates and replicas.

        None while the live request still equals the one before (GitOps sync pending). A
        later scale-up shows as higher realized savings, a partial revert as lower.
        """
        resource = cls.resource
        change = next((c for c in opp.changes if c.get("field") == f"resources.requests.{resource}"), None)
        workload_ref, _, container_name = opp.target.rpartition("/")     # "Kind/namespace/name/container"
        workload = next((w for w in state.workloads if str(w.ref) == workload_ref), None)
        container = workload.container(container_name) if workload else None
        if change is None or container is None:
            return None
        parse = parse_cpu if resource == "cpu" else parse_memory
        before = parse(change["before"]) if change.get("before") else 0.0
        proposed = parse(change["after"]) if change.get("after") else 0.0
        now_value = getattr(container.resources, f"{resource}_request")
        if now_value is None or abs(now_value - before) < 1e-9 or abs(proposed - before) < 1e-9:
            return None
        savings = cpu_request_savings if resource == "cpu" else memory_request_savings
        hpa = workload.hpa
        replicas = hpa.current_replicas if hpa and hpa.current_replicas else workload.replicas
        return round(savings(before, now_value, rates, replicas), 2)

    def stats_of(self, usage: ContainerUsage) -> UsageStats | None:
        """The usage summary of this detector's resource (``usage.cpu`` or ``usage.memory``)."""
        return getattr(usage, self.resource)

    @abstractmethod
    def evaluate(self, subject: Subject, rates: Rates) -> Finding | Skip:
        """A finding for one judgeable container, or a Skip saying why not."""

    def levels(self, state: ClusterState) -> dict[ContainerKey, Level]:
        """The usage level of every container with this resource's usage, in one vectorised pass."""
        cfg = self.config
        keyed = [(key, stats) for key, usage in state.usage.items() if (stats := self.stats_of(usage)) is not None]
        levels = usage_levels([stats for _, stats in keyed], cfg.percentile, cfg.half_life_hours,
                              cfg.growth_horizon_days, with_spikes=self.resource == "memory")
        return {key: level for (key, _), level in zip(keyed, levels)}

    def run(self, state: ClusterState) -> DetectorResult:
        result = DetectorResult()
        rates = self.rates or cluster_rates(state, self.prices)
        cfg = self.config
        levels = self.levels(state)
        for workload in state.workloads:
            policy = limit_policy_of(workload, cfg.limit_policy)
            replicas, basis = replicas_of(workload)
            for container in workload.containers:
                key = ContainerKey(workload.ref, container.name)
                outcome = self._judge(state, workload, container, key, policy, replicas, basis, rates, cfg,
                                      levels.pop(key, None))
                if isinstance(outcome, Skip):
                    result.skipped.append(outcome)
                else:
                    outcome.cluster = state.cluster
                    result.findings.append(outcome)
        return result

    def _judge(self, state: ClusterState, workload: Workload, container: Container, key: ContainerKey,
               policy: LimitPolicy | str, replicas: int, basis: str, rates: Rates, cfg,
               level: Level | None) -> Finding | Skip:
        if container.role == ContainerRole.INIT:
            return self.skip(key, "init container: runs to completion before the app starts and only "
                                  "matters for scheduling; not right-sized")
        if not isinstance(policy, LimitPolicy):
            return self.skip(key, policy)
        if replicas <= 0:
            return self.skip(key, "workload has 0 replicas: nothing runs, nothing to save")
        usage = state.usage.get(key)
        stats = self.stats_of(usage) if usage is not None else None
        if usage is None or stats is None:
            return self.skip(key, f"no {self.resource} usage data for this container in the window")
        hours = history_hours(stats, state.window)
        problem = data_problem(stats, hours, cfg.min_coverage_percent, cfg.min_history_hours)
        if problem:
            return self.skip(key, problem)
        level = level or usage_level(stats, cfg.percentile, cfg.half_life_hours, cfg.growth_horizon_days,
                                     with_spikes=self.resource == "memory")
        subject = Subject(workload, container, key, usage, stats, hours, replicas, basis, policy, level)
        return self.evaluate(subject, rates)

    def finding(self, subject: Subject, *, title: str, changes: list[Change], savings: float, conf: float,
                risk: float, costs: tuple[float, float], evidence: dict[str, object], notes: list[str]) -> Finding:
        """The finding for one container; ``costs`` is (before, after) USD/month."""
        wl = subject.workload
        hint = wl.annotations.get(SOURCE_HINT_KEY)
        return Finding(
            detector=self.name, type=self.finding_type,
            target=Target(TargetKind.CONTAINER, subject.container.name, wl.ref.namespace, wl.ref),
            title=title, changes=changes, monthly_savings=round(float(savings), 2), confidence=conf, risk=risk,
            edit=EditTarget(EditKind.CONTAINER_RESOURCES, source_hint=hint.strip() if hint else None,
                            deploy=wl.source),
            cost_before=round(costs[0], 2), cost_after=round(costs[1], 2),
            evidence=evidence, labels=dict(wl.labels), team=wl.team, notes=notes)


def sizing_notes(subject: Subject, resource: str, direction: str, reasons: list[str], why_add: str) -> list[str]:
    """Reviewer notes shared by the CPU and memory right-sizers (``resource`` is "cpu" or "memory")."""
    label = "CPU" if resource == "cpu" else "memory"
    res = subject.container.resources
    notes = list(reasons)
    if direction == "add":
        notes.append(f"container has no {label} request: {why_add}")
    elif getattr(res, f"{resource}_request") is None and getattr(res, f"{resource}_limit") is not None:
        notes.append(f"no {label} request written: Kubernetes defaults it to the limit, which is what is compared")
    if subject.container.restarts:
        notes.append(f"{subject.container.restarts} restarts in the window lower the confidence")
    if subject.container.role.value == "sidecar":
        notes.append("native sidecar (init container with restartPolicy: Always): sized like an app container")
    hpa = subject.workload.hpa
    target = getattr(hpa, f"target_{resource}_utilization") if hpa is not None else None
    if target:
        notes.append(f"HPA {hpa.name} scales on {label} at {target}%: the request is chosen so today's typical "
                     "per-pod usage sits at that target; savings use the HPA's replicas")
    return notes
