"""The usage level a right-sizer sizes for, and which rule decided it. Pure.

Both right-sizers start from the same level (cores or bytes per replica, before headroom),
chosen from the container's per-bucket summary (:class:`~finops_operator.models.usage.DaySummary`)::

    recent  = stats.recent_quantile(days, percentile, halfLifeHours)     # "recent-quantile"
    trend   = stats.trend(days, "mean")                                   # Theil-Sen over the buckets' means
    clear trend:
        end    = trend's fitted mean at the window end, kept within [min, max] of the newest
                 3 buckets' means (after a step: the new level, not a line through the step)
        target = end + slope x horizon, horizon = the right-sizer's growthHorizonDays for a
                 rising trend (CPU 3, memory 7 days by default), else 0
        shape  = stats.recent_quantile of the buckets divided by their own means
                 (the usage's spread around its daily level, recency-weighted)
        level  = shape x target                                           # "trend-end" / "trend-horizon"
    otherwise: level = recent

Without a per-bucket summary (or one without a usable bucket), or for percentile 100 (the max;
recency does not lower a peak that happened), the level is the window's own percentile
("window-percentile").

The right-sizers then add headroom and apply their own guards (HPA target, OOM bump, limit
pressure, throttling, rare memory spikes), each of which names itself in ``decided_by`` when it
changes the number.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models import UsageStats
from ..models.usage import DaySummary
from ..stats.recency import recent_quantile, usable
from ..stats.trend import Trend, trend

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


#: The trend's end level stays within what this many newest buckets show (see :func:`end_level`).
END_BUCKETS = 3


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


@np.errstate(invalid="ignore", over="ignore")        # buckets that are not usable() come out NaN
def relative_days(days: DaySummary) -> DaySummary:
    """Each bucket's figures divided by its own mean: the usage's shape around its daily level.

    Buckets without samples or with a zero mean carry no weight (0 samples).
    """
    mean = np.asarray(days.mean, dtype=np.float64)
    ok = (np.asarray(days.samples) > 0) & np.isfinite(mean) & (mean > 0)
    scale = np.where(ok, mean, 1.0)

    def rel(values) -> tuple[float, ...]:
        return tuple(np.where(ok, np.asarray(values, dtype=np.float64) / scale, np.nan).tolist())

    return DaySummary(days.bucket_seconds, days.ends, tuple(np.where(ok, days.samples, 0).tolist()),
                      rel(days.mean), rel(days.max), {q: rel(values) for q, values in days.quantiles.items()})


def end_level(fit: Trend, days: DaySummary, newest: int = END_BUCKETS) -> float:
    """The fitted mean level at the window end, kept within [min, max] of the newest buckets' means.

    After a step the level is the new one, not a line drawn through the step; on a straight
    trend the clamp moves the end by at most half a bucket of slope.
    """
    means = np.asarray(days.mean, dtype=np.float64)[np.asarray(days.samples) > 0][-newest:]
    means = means[np.isfinite(means)]
    if not len(means):
        return fit.end_value
    return float(np.clip(fit.end_value, means.min(), means.max()))


def usage_level(stats: UsageStats, percentile: int, half_life_hours: float, horizon_days: float = 0.0) -> Level:
    """The level to size for (see the module docstring); ``horizon_days`` applies to rising trends only."""
    days = stats.days
    if days is None or percentile >= 100 or not usable(days).any():
        return Level(stats.percentile(percentile), WINDOW_PERCENTILE, f"p{percentile} of the window")
    recent = recent_quantile(days, percentile, half_life_hours)
    fit = trend(days, "mean")
    inputs: dict[str, object] = {
        "recent_quantile": _num(recent), "half_life_hours": half_life_hours,
        "window_percentile": _num(stats.percentile(percentile)),
        "trend": {"slope_per_day": _num(fit.slope_per_day), "end_value": _num(fit.end_value), "r2": fit.r2,
                  "relative_change": fit.relative_change, "buckets": fit.buckets, "clear": fit.clear}}
    recent_basis = f"p{percentile} of the recency-weighted usage (half-life {half_life_hours:g}h)"
    relative = relative_days(days)
    if not fit.clear or not usable(relative).any():
        return Level(recent, RECENT_QUANTILE, recent_basis, inputs)
    shape = recent_quantile(relative, percentile, half_life_hours)
    ahead = horizon_days if fit.slope_per_day > 0 else 0.0
    target = max(0.0, end_level(fit, days) + fit.slope_per_day * ahead)
    inputs.update({"relative_quantile": _num(shape), "trend_target": _num(target), "horizon_days": ahead})
    shape_basis = (f"p{percentile} of the recency-weighted usage relative to its daily mean "
                   f"(half-life {half_life_hours:g}h)")
    if ahead > 0:
        return Level(shape * target, TREND_HORIZON,
                     f"{shape_basis} x the trend's level {ahead:g} days after the window", inputs)
    return Level(shape * target, TREND_END, f"{shape_basis} x the trend's level at the window end", inputs)
