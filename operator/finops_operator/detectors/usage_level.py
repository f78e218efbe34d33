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
changes the number. :func:`usage_levels` computes the levels of a whole scan at once (the
estimators are vectorised over the containers that share a bucket grid).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..models import UsageStats
from ..stats.bucketarrays import BucketArrays, group_key
from ..stats.recency import recent_quantiles
from ..stats.spikes import Spikes, spikes_of
from ..stats.trend import Trend, Trends, trends

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


#: The trend's end level stays within what this many newest buckets show (see :func:`end_levels`).
END_BUCKETS = 3


@dataclass(frozen=True, slots=True)
class Level:
    value: float                    # usage to size for, before headroom
    decided_by: str                 # one of the rule names above
    basis: str                      # the formula in words, for evidence["formula"]
    inputs: dict[str, object] = field(default_factory=dict)    # plain numbers for the evidence
    spikes: Spikes | None = None    # the rare-spike verdict, when asked for and the percentile is in the buckets


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
        """Plain types for the finding; the formula text is interned (thousands of findings share a few)."""
        return {"decided_by": self.decided_by, "formula": sys.intern(self.formula), "sizing_inputs": self.inputs}


def num(value: float) -> float:
    return float(f"{float(value):.6g}")


def end_levels(fits: Trends, arrays: BucketArrays, newest: int = END_BUCKETS) -> np.ndarray:
    """The fitted mean level at the window end, kept within [min, max] of the newest usable buckets' means.

    After a step the level is the new one, not a line drawn through the step; on a straight
    trend the clamp moves the end by at most half a bucket of slope.
    """
    usable = arrays.usable
    from_end = np.cumsum(usable[:, ::-1], axis=1)[:, ::-1]          # usable buckets from here to the end
    newest_mask = usable & (from_end <= newest)
    lo = np.where(newest_mask, arrays.mean, np.inf).min(axis=1)
    hi = np.where(newest_mask, arrays.mean, -np.inf).max(axis=1)
    return np.where(newest_mask.any(axis=1), np.clip(fits.end_value, lo, hi), fits.end_value)


def _window_level(stats: UsageStats, percentile: int) -> Level:
    return Level(stats.percentile(percentile), WINDOW_PERCENTILE, f"p{percentile} of the window")


def usage_levels(all_stats: Sequence[UsageStats], percentile: int, half_life_hours: float,
                 horizon_days: float = 0.0, with_spikes: bool = False) -> list[Level]:
    """The level of every summary (see the module docstring), computed in one pass per bucket grid.

    ``horizon_days`` applies to rising trends only; ``with_spikes`` adds the rare-spike verdict.
    """
    levels: list[Level | None] = [None] * len(all_stats)
    groups: dict[tuple, list[int]] = {}
    for i, stats in enumerate(all_stats):
        if stats.days is None or percentile >= 100:
            levels[i] = _window_level(stats, percentile)
        else:
            groups.setdefault(group_key(stats.days), []).append(i)
    for members in groups.values():
        arrays = BucketArrays.of([all_stats[i].days for i in members])
        for i, level in zip(members, _group_levels(arrays, [all_stats[i] for i in members], percentile,
                                                   half_life_hours, horizon_days, with_spikes)):
            levels[i] = level
    return levels        # type: ignore[return-value]


def _group_levels(arrays: BucketArrays, members: list[UsageStats], percentile: int, half_life_hours: float,
                  horizon_days: float, with_spikes: bool) -> list[Level]:
    recent = recent_quantiles(arrays, percentile, half_life_hours)
    fits = trends(arrays, "mean")
    clear = fits.clear & np.isfinite(recent)
    shape = np.full(arrays.rows, np.nan)
    if clear.any():
        rows = np.flatnonzero(clear)
        shape[rows] = recent_quantiles(arrays.relative().take(rows), percentile, half_life_hours)
    ahead = np.where(fits.slope_per_day > 0, float(horizon_days), 0.0)
    target = np.maximum(0.0, end_levels(fits, arrays) + fits.slope_per_day * ahead)
    verdicts = spikes_of(arrays, percentile) if with_spikes and percentile in arrays.quantiles else None
    out = []
    for row, stats in enumerate(members):
        verdict = verdicts[row] if verdicts is not None else None
        if not np.isfinite(recent[row]):
            out.append(_window_level(stats, percentile))
            continue
        out.append(_level(stats, percentile, half_life_hours, float(recent[row]), fits.row(row),
                          float(shape[row]), float(ahead[row]), float(target[row]), verdict))
    return out


def _level(stats: UsageStats, percentile: int, half_life_hours: float, recent: float, fit: Trend, shape: float,
           ahead: float, target: float, verdict: Spikes | None) -> Level:
    inputs: dict[str, object] = {
        "recent_quantile": num(recent), "half_life_hours": half_life_hours,
        "window_percentile": num(stats.percentile(percentile)),
        "trend_slope_per_day": num(fit.slope_per_day), "trend_end_value": num(fit.end_value),
        "trend_r2": fit.r2, "trend_relative_change": fit.relative_change, "trend_clear": fit.clear}
    recent_basis = f"p{percentile} of the recency-weighted usage (half-life {half_life_hours:g}h)"
    if not fit.clear or not np.isfinite(shape):
        return Level(recent, RECENT_QUANTILE, recent_basis, inputs, verdict)
    inputs.update({"relative_quantile": num(shape), "trend_target": num(target), "horizon_days": ahead})
    shape_basis = (f"p{percentile} of the recency-weighted usage relative to its daily mean "
                   f"(half-life {half_life_hours:g}h)")
    if ahead > 0:
        return Level(shape * target, TREND_HORIZON,
                     f"{shape_basis} x the trend's level {ahead:g} days after the window", inputs, verdict)
    return Level(shape * target, TREND_END, f"{shape_basis} x the trend's level at the window end", inputs,
                 verdict)


def usage_level(stats: UsageStats, percentile: int, half_life_hours: float, horizon_days: float = 0.0,
                with_spikes: bool = False) -> Level:
    """:func:`usage_levels` for one summary."""
    return usage_levels([stats], percentile, half_life_hours, horizon_days, with_spikes)[0]
