"""A robust linear trend through a usage series' per-bucket statistic. Pure, no I/O.

The fit is Theil-Sen over the usable buckets (:mod:`.bucketarrays`; x = bucket end in days,
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

:func:`trends` fits many series at once; :func:`trend` one summary.

Daily buckets make a day cycle invisible (every day has the same mean), so only a
level that moves from day to day counts.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .bucketarrays import BucketArrays

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


@functools.lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


@dataclass(frozen=True, slots=True)
class Trends:
    """:class:`Trend` figures of many series: arrays [rows]."""

    stat: str
    slope_per_day: np.ndarray
    end_value: np.ndarray
    r2: np.ndarray
    relative_change: np.ndarray
    buckets: np.ndarray
    clear: np.ndarray

    def row(self, i: int) -> Trend:
        return Trend(self.stat, float(self.slope_per_day[i]), float(self.end_value[i]), round(float(self.r2[i]), 6),
                     round(float(self.relative_change[i]), 6), int(self.buckets[i]), bool(self.clear[i]))


def _nanmedian(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # all-NaN rows give NaN, handled by the caller
        return np.nanmedian(values, axis=1)


def _mad(values: np.ndarray) -> np.ndarray:
    """Median absolute deviation from the median, per row (NaN ignored)."""
    return _nanmedian(np.abs(values - _nanmedian(values)[:, None]))


def trends(arrays: BucketArrays, stat: str = "mean") -> Trends:
    """The Theil-Sen trend of ``stat`` per bucket for every row (see the module docstring)."""
    y = arrays.mean if stat == "mean" else arrays.max if stat == "max" else arrays.quantiles[int(stat[1:])]
    y = np.where(arrays.usable, y, np.nan)
    x = (arrays.ends.astype(np.float64) - float(arrays.ends[-1])) / DAY          # x <= 0; the window end is 0
    valid = np.isfinite(y)
    n = valid.sum(axis=1)
    i, j = _pairs(len(x))
    slope = np.nan_to_num(_nanmedian((y[:, j] - y[:, i]) / (x[j] - x[i])))
    intercept = _nanmedian(y - slope[:, None] * x)
    spread = _mad(y)
    fitted_spread = _mad(y - (intercept[:, None] + slope[:, None] * x))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r2 = np.where(spread > 0, np.clip(1.0 - (fitted_spread / spread) ** 2, 0.0, None), 0.0)
        level = _nanmedian(np.abs(y))
        span = np.where(valid, x, -np.inf).max(axis=1) - np.where(valid, x, np.inf).min(axis=1)
        relative = np.where(level > 0, np.abs(slope) * span / level, 0.0)
    last = np.take_along_axis(y, (len(x) - 1 - np.argmax(valid[:, ::-1], axis=1))[:, None], axis=1)[:, 0]
    few = n < 2
    slope = np.where(few, 0.0, slope)
    end = np.where(few, np.nan_to_num(last), np.maximum(0.0, np.nan_to_num(intercept)))
    r2, relative = np.where(few, 0.0, np.nan_to_num(r2)), np.where(few, 0.0, np.nan_to_num(relative))
    clear = (n >= MIN_BUCKETS) & (r2 >= MIN_R2) & (relative >= MIN_RELATIVE_CHANGE)
    return Trends(stat, slope, end, r2, relative, n, clear)


def trend(days: "DaySummary", stat: str = "mean") -> Trend:
    """The Theil-Sen trend of ``stat`` per bucket (see the module docstring for "clear")."""
    series_of(days, stat)                                       # a statistic the summary holds, or ConfigError
    return trends(BucketArrays.of([days]), stat).row(0)
