"""A robust linear trend through a usage series' per-bucket statistic. Pure, no I/O.

The fit is Theil-Sen over the buckets that have samples (x = bucket end in days,
y = the bucket's ``stat``): the slope is the median of all pairwise slopes, the
intercept the median of ``y - slope x``, so one odd bucket (a burst, a restart) does
not tilt it. ``end_value`` is the fitted line at the window end (the newest bucket's
end, never below 0). ``r2`` is the robust coefficient of determination
``1 - (MAD(residuals) / MAD(y)) ** 2`` clipped to [0, 1] (MAD = median absolute
deviation from the median), so an odd bucket does not hide a clear line either;
it is 0 for a flat series.

A trend is **clear** when all of:

* at least :data:`MIN_BUCKETS` buckets have samples,
* ``r2 >= MIN_R2`` (the line explains most of the bucket-to-bucket variation), and
* the fitted change over the buckets' span is at least :data:`MIN_RELATIVE_CHANGE` of the
  median level (``|slope| x span / median(y) >= 0.2``): a real drift, not noise around a level.

Daily buckets make a day cycle invisible (every day has the same mean), so only a
level that moves from day to day counts.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..models.usage import DaySummary

MIN_BUCKETS = 5
MIN_R2 = 0.6
MIN_RELATIVE_CHANGE = 0.2
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Trend:
    """The fitted line: slope per day and value at the window end, in the series' unit."""

    stat: str
    slope_per_day: float
    end_value: float
    r2: float
    relative_change: float      # |slope| x span / median level, over the buckets' span
    buckets: int
    clear: bool

    def at(self, days_after_end: float) -> float:
        """The fitted value ``days_after_end`` days after the window end (never below 0)."""
        return max(0.0, self.end_value + self.slope_per_day * days_after_end)


def series_of(days: "DaySummary", stat: str) -> tuple[float, ...]:
    """The per-bucket values of ``stat``: "mean", "max" or "p<q>" for a computed quantile."""
    if stat == "mean":
        return days.mean
    if stat == "max":
        return days.max
    if stat.startswith("p") and stat[1:].isdigit() and int(stat[1:]) in days.quantiles:
        return days.quantiles[int(stat[1:])]
    computed = ", ".join(f"p{q}" for q in sorted(days.quantiles))
    raise ConfigError(f"trend statistic {stat!r} is not in the summary; use mean, max or one of: {computed}",
                      field="stat")


def median(values: np.ndarray) -> float:
    """The median of a small 1-D array (np.median's generic machinery costs more than the sort here)."""
    ordered = np.sort(values)
    n = len(ordered)
    return float(ordered[n // 2]) if n % 2 else float(0.5 * (ordered[n // 2 - 1] + ordered[n // 2]))


@functools.lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the Theil-Sen line (median pairwise slope, median residual)."""
    i, j = _pairs(len(x))
    dx = x[j] - x[i]
    keep = dx != 0
    slope = median((y[j] - y[i])[keep] / dx[keep]) if keep.any() else 0.0
    return slope, median(y - slope * x)


def mad(values: np.ndarray) -> float:
    """Median absolute deviation from the median."""
    return median(np.abs(values - median(values)))


def trend(days: "DaySummary", stat: str = "mean") -> Trend:
    """The Theil-Sen trend of ``stat`` per bucket (see the module docstring for "clear")."""
    values = np.asarray(series_of(days, stat), dtype=np.float64)
    ends = np.asarray(days.ends, dtype=np.float64)
    has = (np.asarray(days.samples) > 0) & np.isfinite(values)
    x, y = (ends[has] - ends[-1]) / DAY, values[has]          # x <= 0; the window end is x = 0
    if len(x) < 2:
        level = float(y[-1]) if len(y) else 0.0
        return Trend(stat, 0.0, level, 0.0, 0.0, len(x), False)
    slope, intercept = theil_sen(x, y)
    residual = y - (intercept + slope * x)
    spread = mad(y)
    r2 = 0.0 if spread <= 0 else max(0.0, 1.0 - (mad(residual) / spread) ** 2)
    level = median(np.abs(y))
    relative = 0.0 if level <= 0 else abs(slope) * float(x[-1] - x[0]) / level
    clear = len(x) >= MIN_BUCKETS and r2 >= MIN_R2 and relative >= MIN_RELATIVE_CHANGE
    return Trend(stat, slope, max(0.0, intercept), round(r2, 6), round(relative, 6), len(x), clear)
