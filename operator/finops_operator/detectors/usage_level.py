"""The usage level a right-sizer sizes for, and which rule decided it. Pure.

Both right-sizers start from the same level (cores or bytes per replica, before headroom),
chosen from the container's per-bucket summary (:class:`~finops_operator.models.usage.DaySummary`)::

    recent  = stats.recent_quantile(days, percentile, halfLifeHours)     # "recent-quantile"
    trend   = stats.trend(days, "mean")                                   # Theil-Sen over the buckets' means
    clear trend:
        target = trend.at(horizon) where horizon = growthHorizonDays for a rising memory
                 trend, else 0 (the fitted mean level at the window end)
        level  = recent x target / weighted_mean                         # "trend-end" / "trend-horizon"
                 (weighted_mean: the buckets' means under the same recency weights, the level
                 ``recent`` stands for; usage spreads in proportion to its level)
    otherwise: level = recent

Without a per-bucket summary, or for percentile 100 (the max; recency does not lower a peak
that happened), the level is the window's own percentile ("window-percentile").

The right-sizers then add headroom and apply their own guards (HPA target, OOM bump, limit
pressure, throttling, rare memory spikes), each of which names itself in ``decided_by`` when it
changes the number.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models import UsageStats
from ..models.usage import DaySummary
from ..stats.recency import bucket_weights, recent_quantile
from ..stats.trend import trend

# The rules that can decide a request (evidence["decided_by"]); the level's own ...
WINDOW_PERCENTILE = "window-percentile"
RECENT_QUANTILE = "recent-quantile"
TREND_END = "trend-end"
TREND_HORIZON = "trend-horizon"
# ... and the right-sizers' guards on top of it
HPA_TARGET = "hpa-target"
UNDER_REQUESTED = "under-requested"
THROTTLING = "throttling"
RARE_SPIKES = "observed-peak-rare-spikes"
OOM_BUMP = "oom-bump"
LIMIT_PRESSURE = "limit-pressure"


#: The trend is fitted over the newest buckets only: what the workload does now, not a month ago.
TREND_BUCKETS = 7


def recent_buckets(days: DaySummary, count: int) -> DaySummary:
    """The newest ``count`` buckets of ``days`` (all of them when there are fewer)."""
    if len(days.ends) <= count:
        return days
    cut = slice(len(days.ends) - count, None)
    return DaySummary(days.bucket_seconds, days.ends[cut], days.samples[cut], days.mean[cut], days.max[cut],
                      {q: values[cut] for q, values in days.quantiles.items()})


@dataclass(frozen=True, slots=True)
class Level:
    value: float                    # usage to size for, before headroom
    decided_by: str                 # one of the rule names above
    basis: str                      # the formula in words, for evidence["formula"]
    inputs: dict[str, object] = field(default_factory=dict)    # plain numbers for the evidence


@dataclass(slots=True)
class Sizing:
    """How a request was decided: the rule that set the final number, its formula and inputs."""

    decided_by: str
    formula: str
    inputs: dict[str, object] = field(default_factory=dict)

    def decide(self, rule: str, formula: str | None = None) -> None:
        """A later rule set the number (``formula`` replaces the level's when given)."""
        self.decided_by = rule
        if formula is not None:
            self.formula = formula

    def evidence(self) -> dict[str, object]:
        return {"decided_by": self.decided_by, "formula": self.formula, "sizing_inputs": self.inputs}


def _num(value: float) -> float:
    return float(f"{float(value):.6g}")


def usage_level(stats: UsageStats, percentile: int, half_life_hours: float, horizon_days: float = 0.0) -> Level:
    """The level to size for (see the module docstring); ``horizon_days`` applies to rising trends only."""
    days = stats.days
    if days is None or percentile >= 100 or not any(n > 0 for n in days.samples):
        return Level(stats.percentile(percentile), WINDOW_PERCENTILE, f"p{percentile} of the window")
    recent = recent_quantile(days, percentile, half_life_hours)
    fit = trend(days, "mean")
    inputs: dict[str, object] = {
        "recent_quantile": _num(recent), "half_life_hours": half_life_hours,
        "window_percentile": _num(stats.percentile(percentile)),
        "trend": {"slope_per_day": _num(fit.slope_per_day), "end_value": _num(fit.end_value), "r2": fit.r2,
                  "relative_change": fit.relative_change, "buckets": fit.buckets, "clear": fit.clear}}
    recent_basis = f"p{percentile} of the recency-weighted usage (half-life {half_life_hours:g}h)"
    if not fit.clear:
        return Level(recent, RECENT_QUANTILE, recent_basis, inputs)
    weights = bucket_weights(days, half_life_hours)
    means = np.asarray(days.mean, dtype=np.float64)
    weighted_mean = float(np.dot(weights, np.where(weights > 0, np.nan_to_num(means), 0.0)))
    ahead = horizon_days if fit.slope_per_day > 0 else 0.0
    target = fit.at(ahead)
    scale = target / weighted_mean if weighted_mean > 0 else 1.0
    inputs.update({"weighted_mean": _num(weighted_mean), "trend_target": _num(target), "horizon_days": ahead,
                   "trend_scale": _num(scale)})
    if ahead > 0:
        return Level(recent * scale, TREND_HORIZON,
                     f"{recent_basis} x trend level {ahead:g} days after the window / weighted mean", inputs)
    return Level(recent * scale, TREND_END, f"{recent_basis} x trend level at the window end / weighted mean",
                 inputs)
