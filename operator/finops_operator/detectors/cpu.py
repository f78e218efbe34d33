"""CPU right-sizing: requests sized to recent usage, following clear trends, and raises where CPU is short.

Recommendation (cores per replica), all inputs in the finding's evidence, the rule that set the
number in ``evidence["decided_by"]``::

    level   = the usage level of :mod:`.usage_level`: p<percentile> of the recency-weighted
              usage (half-life halfLifeHours, default 72 h); where the trend of the daily
              means is clear, the usage's recency-weighted shape around its daily level x
              the trend's level at the window end, or growthHorizonDays (default 3) after
              it for a rising trend               # recent-quantile / trend-end / trend-horizon
              (p<percentile> of the window without a per-bucket summary) # window-percentile
    sized   = level x (1 + headroomPercent / 100)                      # default p90 + 5%
    HPA     = mean / (targetCPUUtilization / 100)   when an HPA scales on CPU:   # hpa-target
              at that request the typical per-pod usage sits exactly at the HPA
              target, so the HPA keeps the same replica count (its scaling point
              stays meaningful) instead of reacting to a changed denominator
    p<percentile> of the window > request -> under-requested: at least that x (1 + headroom)
                                    (not with a CPU HPA: it adds replicas for peaks)   # under-requested
    throttled > threshold        -> under-requested: at least request x (1 + headroom)  # throttling
                                    (usage is capped by the limit, so the observed
                                    percentiles understate the demand)
    new     = round_up(max(value, minMillicores), stepMillicores)

Cuts smaller than ``minChangePercent`` or worth less than ``minMonthlySavings`` are
skipped with the reason; raises are never dropped for their (negative) savings.
Limits follow the limit policy (see :mod:`.sizing`). Confidence and risk formulas
are in :mod:`.sizing`.
"""
from __future__ import annotations

from pydantic import Field

from ..models import Finding, FindingType
from ..pricing.allocation import Rates, cpu_monthly_cost
from ..settings_base import Percentile
from ..units import format_cpu, round_up
from .base import Grouping, Skip, register
from .sizing import (RightsizingDetector, RightsizingSettings, Subject, base_evidence, confidence, cpu_risk,
                     policy_limit, sizing_notes, value_change)
from .usage_level import HPA_TARGET, THROTTLING, UNDER_REQUESTED, Sizing


class CpuSettings(RightsizingSettings):
    """CPU right-sizing."""

    headroom_percent: int = Field(default=5, ge=0, le=200, description=(
        "Added on top of the sized percentile (default tuned with the percentile by benchmarks/bench_quality.py)."))
    percentile: Percentile = Field(default=90, description=(
        "Percentile of CPU usage to size for (100 = max); p90 + 5% keeps about as few samples above the request "
        "as p95 alone on steady usage and does not reserve for short bursts."))
    min_millicores: int = Field(default=10, ge=1, le=64000, description="Smallest CPU request ever proposed, in millicores.")
    step_millicores: int = Field(default=10, ge=1, le=1000, description="Round CPU up to this step, in millicores.")
    throttling_threshold_percent: int = Field(default=25, ge=1, le=100, description="Throttled CFS periods (percent) that count as under-requested.")


@register
class CpuRightsizing(RightsizingDetector):
    """Over- and under-requested CPU per container."""

    name = "cpu-rightsizing"
    finding_type = FindingType.RIGHTSIZE_CPU
    resource = "cpu"
    settings_key = "cpu"
    settings_model = CpuSettings
    grouping = Grouping(label="CPU")
    permissions = ("prometheus:container_cpu_usage_seconds_total",
                   "prometheus:container_cpu_cfs_throttled_periods_total",
                   "prometheus:container_cpu_cfs_periods_total",
                   "prometheus:kube_pod_container_resource_requests",
                   "kubernetes:list:deployments,statefulsets,daemonsets,cronjobs,horizontalpodautoscalers")

    def evaluate(self, subject: Subject, rates: Rates) -> Finding | Skip:
        cfg = self.config
        res = subject.container.resources
        effective = res.cpu_request if res.cpu_request is not None else res.cpu_limit
        new_req, sizing, reasons, throttled = self._size(subject, effective)
        direction = "add" if effective is None else ("raise" if new_req > effective + 1e-9 else "cut")
        if effective is not None and direction != "raise" and effective - new_req <= 1e-9:
            return self.skip(subject.key, f"already right-sized: recommended {format_cpu(new_req)} "
                                          f"vs request {format_cpu(effective)}")
        change_pct = abs(new_req - effective) / effective * 100 if effective else 100.0
        if change_pct < cfg.min_change_percent and not throttled:
            return self.skip(subject.key, f"change of {change_pct:.1f}% is below minChangePercent "
                                          f"{cfg.min_change_percent}%")
        before_cost_basis = effective if effective is not None else subject.stats.mean
        savings = cpu_monthly_cost(before_cost_basis - new_req, rates, subject.replicas)
        if direction == "cut" and savings < cfg.min_monthly_savings:
            return self.skip(subject.key, f"saves only ${savings:.2f}/month, below minMonthlySavings "
                                          f"${cfg.min_monthly_savings:.2f}")
        new_lim = self._limit(subject, new_req, effective)
        return self._finding(subject, rates, new_req, new_lim, effective, before_cost_basis, savings,
                             direction, sizing, reasons)

    def _size(self, subject: Subject, effective: float | None) -> tuple[float, Sizing, list[str], bool]:
        """Recommended request (cores), how it was decided, why it is a raise, whether throttled."""
        cfg = self.config
        stats, hpa = subject.stats, subject.workload.hpa
        headroom = 1 + cfg.headroom_percent / 100
        level = subject.level
        value = level.value * headroom
        sizing = Sizing(level.decided_by, f"{level.basis} x (1 + {cfg.headroom_percent}%)", dict(level.inputs))
        reasons: list[str] = []
        if hpa is not None and hpa.target_cpu_utilization:
            value = stats.mean / (hpa.target_cpu_utilization / 100)
            sizing.decide(HPA_TARGET, f"HPA-aware: mean {stats.mean:.4f} cores / target "
                                      f"{hpa.target_cpu_utilization}% (typical per-pod usage sits at the HPA "
                                      "target, so replica counts stay as they are)")
        hpa_on_cpu = hpa is not None and bool(hpa.target_cpu_utilization)
        window_q = stats.percentile(cfg.percentile)
        if effective is not None and window_q > effective and not hpa_on_cpu:   # the HPA absorbs peaks
            if window_q * headroom > value:
                value = window_q * headroom
                sizing.decide(UNDER_REQUESTED)
            reasons.append(f"p{cfg.percentile} usage {format_cpu(window_q)} is above the request "
                           f"{format_cpu(effective)}")
        ratio = subject.usage.cpu_throttled_ratio
        throttled = ratio is not None and ratio * 100 > cfg.throttling_threshold_percent
        if throttled and effective is not None:
            if effective * headroom > value:
                value = effective * headroom
                sizing.decide(THROTTLING)
            reasons.append(f"{ratio:.0%} of CFS periods throttled (threshold {cfg.throttling_threshold_percent}%)")
        value = round_up(max(value, cfg.min_millicores / 1000), cfg.step_millicores / 1000)
        return value, sizing, reasons, throttled

    def _limit(self, subject: Subject, new_req: float, effective: float | None) -> float | None:
        cfg = self.config
        res = subject.container.resources
        limit = policy_limit(subject.limit_policy, "cpu", new_req, effective, res.cpu_limit,
                             cfg.burst_factor_percent, cfg.max_limit_growth_percent)
        if limit is None:
            return None
        return max(new_req, round_up(limit, cfg.step_millicores / 1000))

    def _finding(self, subject: Subject, rates: Rates, new_req: float, new_lim: float | None,
                 effective: float | None, cost_basis: float, savings: float, direction: str, sizing: Sizing,
                 reasons: list[str]) -> Finding | Skip:
        res = subject.container.resources
        changes = [c for c in (
            value_change("resources.requests.cpu", res.raw.get("requests.cpu"), res.cpu_request, new_req,
                         format_cpu),
            value_change("resources.limits.cpu", res.raw.get("limits.cpu"), res.cpu_limit, new_lim, format_cpu),
        ) if c is not None]
        if not changes:
            return self.skip(subject.key, "recommendation formats to the values already written")
        conf, conf_inputs = confidence(subject.stats, subject.history_hours, subject.container.restarts)
        risk = cpu_risk(subject.stats.max, new_req, new_lim, res.cpu_limit)
        evidence = base_evidence(subject, "cores")
        evidence.update({
            "percentile": self.config.percentile,
            "headroom_percent": self.config.headroom_percent,
            "throttled_ratio": subject.usage.cpu_throttled_ratio, "direction": direction,
            "current_request": res.cpu_request, "current_limit": res.cpu_limit,
            "effective_request": effective, "new_request": new_req, "new_limit": new_lim,
            **sizing.evidence(), "under_requested_reasons": reasons,
            "rate_cpu_core_hour": round(rates.cpu_core_hour, 6),
            "savings_formula": "(before - after) cores x rate x 730 h x replicas",
            "confidence_inputs": conf_inputs,
            "time_window": (self.config.time_window.model_dump(by_alias=True)
                            if self.config.time_window else None),
        })
        notes = _notes(subject, direction, reasons)
        verb = {"add": "Add", "raise": "Raise", "cut": "Cut"}[direction]
        before = format_cpu(effective) if effective is not None else "none"
        title = (f"{verb} CPU request of {subject.workload.ref.namespace}/{subject.workload.ref.name}"
                 f"/{subject.container.name}: {before} -> {format_cpu(new_req)}")
        costs = (cpu_monthly_cost(cost_basis, rates, subject.replicas), cpu_monthly_cost(new_req, rates, subject.replicas))
        return self.finding(subject, title=title, changes=changes, savings=savings, conf=conf, risk=risk, costs=costs,
                            evidence=evidence, notes=notes)


def _notes(subject: Subject, direction: str, reasons: list[str]) -> list[str]:
    notes = sizing_notes(subject, "cpu", direction, reasons,
                         "adding one makes scheduling and cost allocation honest")
    hpa = subject.workload.hpa
    if hpa is not None and not hpa.target_cpu_utilization:
        notes.append(f"HPA {hpa.name} does not scale on CPU: CPU sized from the percentile")
    return notes
