"""Memory right-sizing: requests sized to recent usage, OOM-aware, never below a rare spike's peak.

Recommendation (bytes per replica), all inputs in the finding's evidence, the rule that set the
number in ``evidence["decided_by"]``::

    level    = the usage level of :mod:`.usage_level`: p<percentile> of the recency-weighted
               usage (half-life halfLifeHours, default 72 h); where the trend of the daily
               means is clear, the usage's recency-weighted shape around its daily level x
               the trend's level at the window end, or growthHorizonDays (default 7) after
               it for a rising trend               # recent-quantile / trend-end / trend-horizon
               (p<percentile> of the window without a per-bucket summary)  # window-percentile
    sized    = level x (1 + headroomPercent / 100)                     # default p99 + 10%
    spikes   = max(sized, peak)  when stats.spikes says the peaks are rare spikes     # observed-peak-rare-spikes
               (spikePolicy: Peak, the default; Percentile sizes to the percentile alone)
    HPA      = mean / (targetMemoryUtilization / 100)  when an HPA scales on memory   # hpa-target
               (typical per-pod usage sits at the target: scaling behaviour kept)
    request  = round_up(max(value, minMiB), stepMiB)                     # default 16Mi steps
    floor    = round_up(peak x (1 + limitHeadroomPercent / 100), stepMiB)   # a limit never goes below
               (default 20%: apart from the request's headroom, so a tight request is not a tight limit)

Safety raises (never cut, never dropped for their negative savings):

* OOM-killed in the window (``oom_kills > 0`` or last reason ``OOMKilled``):           # oom-bump
  ``bumped = max(peak, limit or request) x (1 + oomBumpPercent / 100)``; the limit
  becomes at least ``bumped`` (the request when there is no limit) and the request
  is never lowered.
* Limit pressure: peak above ``limitPressurePercent`` of the limit -> the limit rises to    # limit-pressure
  at least ``floor`` and the request is never lowered.

Confidence of an OOM-driven raise is at least ``0.9 x coverage``: the kill is direct
evidence, while the leak behind it makes the series volatile and restart-heavy.

The limit follows the limit policy (KeepRatio / Burstable / Guaranteed; NoCPULimit
keeps the memory ratio), is never below the request nor the floor. Confidence and
risk formulas are in :mod:`.sizing`.
"""
from __future__ import annotations

from enum import Enum

from pydantic import Field

from ..models import Finding, FindingType
from ..pricing.allocation import Rates, memory_monthly_cost
from ..settings_base import LimitPolicy, Percentile
from ..units import MI, format_memory, human_bytes, round_up
from .base import Grouping, Skip, register
from .sizing import (RightsizingDetector, RightsizingSettings, Subject, base_evidence, confidence, is_guaranteed,
                     memory_risk, policy_limit, sizing_notes, value_change)
from .usage_level import HPA_TARGET, LIMIT_PRESSURE, OOM_BUMP, RARE_SPIKES, Sizing, num


class SpikePolicy(str, Enum):
    PEAK = "Peak"               # rare spikes: the request never goes below the observed peak
    PERCENTILE = "Percentile"   # size to the percentile alone, spikes or not


class MemorySettings(RightsizingSettings):
    """Memory right-sizing."""

    headroom_percent: int = Field(default=10, ge=0, le=200, description=(
        "Added on top of the sized percentile for the request (default tuned by benchmarks/bench_quality.py)."))
    limit_headroom_percent: int = Field(default=20, ge=0, le=200, description=(
        "Added on top of the observed peak for the limit's floor: a memory limit never goes below "
        "peak x (1 + this / 100). Kept apart from headroomPercent so a tight request does not make a tight "
        "limit (past the limit is an OOM kill; the risk score and guardrails.maxRiskPercent weigh it most)."))
    percentile: Percentile = Field(default=99, description="Percentile of memory usage to size for (100 = max).")
    min_mib: int = Field(default=32, ge=4, le=1048576, description="Smallest memory request ever proposed, in MiB.")
    step_mib: int = Field(default=16, ge=1, le=4096, description="Round memory up to this step, in MiB.")
    oom_bump_percent: int = Field(default=30, ge=0, le=500, description="Raise after an OOM kill, over the larger of peak and limit.")
    limit_pressure_percent: int = Field(default=90, ge=50, le=100, description="Peak above this share of the limit counts as under-requested.")
    spike_policy: SpikePolicy = Field(default=SpikePolicy.PEAK, description=(
        "Peak: when the peaks are rare spikes the request never goes below the observed peak; Percentile: "
        "size to the percentile alone."))
    growth_horizon_days: int = Field(default=7, ge=0, le=90, description=(
        "A clearly rising trend is sized for its level this many days after the window (0 = at the window end); "
        "longer than CPU's: memory past the limit is an OOM kill, not throttling."))

OOM_RAISE_CONFIDENCE = 0.9   # raise after OOM kills: confidence = max(formula, 0.9 x coverage)


def _oom_killed(subject: Subject) -> bool:
    c = subject.container
    return c.oom_kills > 0 or (c.last_terminated_reason or "") == "OOMKilled"


@register
class MemoryRightsizing(RightsizingDetector):
    """Over- and under-requested memory per container."""

    name = "memory-rightsizing"
    finding_type = FindingType.RIGHTSIZE_MEMORY
    resource = "memory"
    settings_key = "memory"
    settings_model = MemorySettings
    grouping = Grouping(label="memory")
    permissions = ("prometheus:container_memory_working_set_bytes",
                   "prometheus:kube_pod_container_status_last_terminated_reason",
                   "prometheus:kube_pod_container_status_restarts_total",
                   "prometheus:kube_pod_container_resource_requests",
                   "kubernetes:list:deployments,statefulsets,daemonsets,cronjobs,horizontalpodautoscalers")

    def _step(self, value: float) -> int:
        cfg = self.config
        return int(round_up(max(value, cfg.min_mib * MI), cfg.step_mib * MI))

    def evaluate(self, subject: Subject, rates: Rates) -> Finding | Skip:
        cfg = self.config
        res = subject.container.resources
        effective = res.memory_request if res.memory_request is not None else res.memory_limit
        new_req, new_lim, sizing, reasons = self._size(subject, effective)
        safety = bool(reasons)
        if effective is None:
            direction = "add"
        elif new_req > effective or (safety and new_lim != res.memory_limit):
            direction = "raise"
        else:
            direction = "cut"
        if direction == "cut":
            skip = self._cut_too_small(subject, effective, new_req, rates)
            if skip is not None:
                return skip
        elif direction == "raise" and not safety and effective:
            change_pct = (new_req - effective) / effective * 100
            if change_pct < cfg.min_change_percent:
                return self.skip(subject.key, f"raise of {change_pct:.1f}% is below minChangePercent "
                                              f"{cfg.min_change_percent}%")
        cost_basis = effective if effective is not None else subject.stats.mean
        savings = memory_monthly_cost(cost_basis - new_req, rates, subject.replicas)
        return self._finding(subject, rates, new_req, new_lim, effective, cost_basis, savings, direction,
                             sizing, reasons)

    def _cut_too_small(self, subject: Subject, effective: float, new_req: int, rates: Rates) -> Skip | None:
        cfg = self.config
        if effective - new_req <= 0:
            return self.skip(subject.key, f"already right-sized: recommended {format_memory(new_req)} vs "
                                          f"request {human_bytes(effective)}")
        change_pct = (effective - new_req) / effective * 100
        if change_pct < cfg.min_change_percent:
            return self.skip(subject.key, f"change of {change_pct:.1f}% is below minChangePercent "
                                          f"{cfg.min_change_percent}%")
        savings = memory_monthly_cost(effective - new_req, rates, subject.replicas)
        if savings < cfg.min_monthly_savings:
            return self.skip(subject.key, f"saves only ${savings:.2f}/month, below minMonthlySavings "
                                          f"${cfg.min_monthly_savings:.2f}")
        return None

    def _level(self, subject: Subject) -> tuple[float, Sizing]:
        """The request before rounding and guards: level x headroom, the rare-spike peak, the HPA target."""
        cfg = self.config
        stats, hpa = subject.stats, subject.workload.hpa
        level = subject.level
        value = level.value * (1 + cfg.headroom_percent / 100)
        sizing = Sizing(level.decided_by, f"{level.basis} x (1 + {cfg.headroom_percent}%)", dict(level.inputs))
        verdict = level.spikes
        if verdict is not None:
            sizing.inputs.update({"spikes_rare": verdict.rare, "spikes_near_peak_share": verdict.near_peak_share,
                                  "spikes_peak_ratio": round(verdict.peak_ratio, 4),
                                  "spikes_typical": num(verdict.typical)})
            if verdict.rare and cfg.spike_policy == SpikePolicy.PEAK and stats.max > value:
                value = stats.max
                sizing.decide(RARE_SPIKES, f"observed peak {human_bytes(stats.max)}: the peaks are rare spikes "
                                           "(spikePolicy Peak keeps the request at the peak)")
        if hpa is not None and hpa.target_memory_utilization:
            value = stats.mean / (hpa.target_memory_utilization / 100)
            sizing.decide(HPA_TARGET, f"HPA-aware: mean {human_bytes(stats.mean)} / target "
                                      f"{hpa.target_memory_utilization}% (typical per-pod usage sits at the HPA "
                                      "target, so replica counts stay as they are)")
        return value, sizing

    def _size(self, subject: Subject, effective: float | None) -> tuple[int, int | None, Sizing, list[str]]:
        """New request and limit (bytes), how it was decided, and the safety reasons for a raise."""
        cfg = self.config
        stats, res = subject.stats, subject.container.resources
        value, sizing = self._level(subject)
        reasons: list[str] = []
        floor = self._step(stats.max * (1 + cfg.limit_headroom_percent / 100))
        bumped: int | None = None
        if _oom_killed(subject):
            base = max(stats.max, res.memory_limit or effective or stats.max)
            bumped = self._step(base * (1 + cfg.oom_bump_percent / 100))
            reasons.append(f"OOM-killed {subject.container.oom_kills or 1}x in the window: bumped to "
                           f"max(peak, limit) x (1 + {cfg.oom_bump_percent}%) = {format_memory(bumped)}")
            sizing.decide(OOM_BUMP)
        elif res.memory_limit and stats.max > res.memory_limit * cfg.limit_pressure_percent / 100:
            reasons.append(f"peak {human_bytes(stats.max)} is above {cfg.limit_pressure_percent}% of the limit "
                           f"{human_bytes(res.memory_limit)}")
            sizing.decide(LIMIT_PRESSURE)
        new_req = self._step(value)
        if reasons and effective is not None:
            new_req = max(new_req, int(effective))        # a safety raise never lowers the request
        new_lim = policy_limit(subject.limit_policy, "memory", new_req, effective, res.memory_limit,
                               cfg.burst_factor_percent, cfg.max_limit_growth_percent)
        if new_lim is not None:
            new_lim = max(self._step(new_lim), floor, bumped or 0, new_req)
            keep_equal = subject.limit_policy == LimitPolicy.KEEP_RATIO and is_guaranteed(res.memory_request,
                                                                                          res.memory_limit)
            if subject.limit_policy == LimitPolicy.GUARANTEED or keep_equal:
                new_req = new_lim                         # request = limit: the pod keeps its QoS class
        elif bumped is not None:
            new_req = max(new_req, bumped)                # no limit: the node OOM-killed it; reserve more
        return new_req, new_lim, sizing, reasons

    def _finding(self, subject: Subject, rates: Rates, new_req: int, new_lim: int | None,
                 effective: float | None, cost_basis: float, savings: float, direction: str, sizing: Sizing,
                 reasons: list[str]) -> Finding | Skip:
        cfg = self.config
        res = subject.container.resources
        changes = [c for c in (
            value_change("resources.requests.memory", res.raw.get("requests.memory"), res.memory_request,
                         new_req, format_memory),
            value_change("resources.limits.memory", res.raw.get("limits.memory"), res.memory_limit, new_lim,
                         format_memory),
        ) if c is not None]
        if not changes:
            return self.skip(subject.key, "recommendation formats to the values already written")
        oom = _oom_killed(subject)
        conf, conf_inputs = confidence(subject.stats, subject.history_hours, subject.container.restarts)
        if direction == "raise" and oom:
            # An OOM kill is direct evidence the container needs more memory; the leak that caused it
            # also makes the series volatile and restart-heavy, which must not talk the raise down.
            floor = round(OOM_RAISE_CONFIDENCE * subject.stats.coverage, 4)
            conf_inputs["oom_raise_floor"] = floor
            conf = max(conf, floor)
        # after an OOM kill the larger limit is the fix itself, not a risk of its own
        risk = memory_risk(subject.stats.max, new_req, new_lim, oom, None if oom else res.memory_limit)
        evidence = base_evidence(subject, "bytes")
        evidence.update({
            "percentile": cfg.percentile, "headroom_percent": cfg.headroom_percent,
            "limit_headroom_percent": cfg.limit_headroom_percent,
            "oom_killed": oom, "oom_bump_percent": cfg.oom_bump_percent,
            "limit_pressure_percent": cfg.limit_pressure_percent, "direction": direction,
            "current_request": res.memory_request, "current_limit": res.memory_limit,
            "effective_request": effective, "new_request": new_req, "new_limit": new_lim,
            **sizing.evidence(), "spike_policy": cfg.spike_policy.value,
            "under_requested_reasons": reasons,
            "peak_to_new_limit": round(subject.stats.max / new_lim, 4) if new_lim else None,
            "rate_memory_gib_hour": round(rates.memory_gib_hour, 6),
            "savings_formula": "(before - after) GiB x rate x 730 h x replicas",
            "confidence_inputs": conf_inputs,
            "time_window": cfg.time_window.model_dump(by_alias=True) if cfg.time_window else None,
        })
        verb = {"add": "Add", "raise": "Raise", "cut": "Cut"}[direction]
        before = human_bytes(effective) if effective is not None else "none"
        title = (f"{verb} memory request of {subject.workload.ref.namespace}/{subject.workload.ref.name}"
                 f"/{subject.container.name}: {before} -> {human_bytes(new_req)}")
        costs = (memory_monthly_cost(cost_basis, rates, subject.replicas), memory_monthly_cost(new_req, rates, subject.replicas))
        return self.finding(subject, title=title, changes=changes, savings=savings, conf=conf, risk=risk, costs=costs,
                            evidence=evidence, notes=sizing_notes(subject, "memory", direction, reasons,
                                                     "adding one protects it from eviction first"))

