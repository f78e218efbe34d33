"""Walk a daily series once, in time order, and judge each day against what the days before it predict.

A day is a *statistical* anomaly when it is both far off in money terms (more than the 10% low band)
and unlikely (more than ``z`` robust sigmas); a *threshold* anomaly when it crosses the caller's bound
(USD a day, or a relative deviation), whatever the statistics. ``shift_days`` statistical anomalies in a
row in the same direction are a level shift: the baseline re-anchors on it, so it alerts once.
Days without data (NaN) are skipped: they neither alarm nor end a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from .baseline import Baseline, Expectation, Settings

LOW_BAND = 0.10                           # below 10% off a day is never a statistical anomaly (FinOps low band)


@dataclass(frozen=True, slots=True)
class Bounds:
    """Threshold alarms: a day above ``usd_per_day``, or more than ``relative`` off expected (0.3 = 30%)."""

    usd_per_day: float | None = None
    relative: float | None = None


@dataclass(frozen=True, slots=True)
class DayVerdict:
    index: int                            # day in the series
    expected: float
    actual: float
    sign: int                             # +1 above expected, -1 below
    statistical: bool
    by_threshold: bool
    shift: int | None = None              # the level shift (its first day) this day belongs to

    @property
    def deviation(self) -> float:
        """|actual - expected| / expected (inf when nothing was expected but something came)."""
        if self.expected > 0:
            return abs(self.actual - self.expected) / self.expected
        return 0.0 if self.actual == self.expected else float("inf")


@dataclass(slots=True)
class ScanResult:
    expected: np.ndarray                  # per day; NaN while the history is too short
    verdicts: list[DayVerdict] = field(default_factory=list)   # anomalous days only, in order


def is_statistical(actual: float, exp: Expectation | None, z: float) -> bool:
    if exp is None:
        return False
    gap = abs(actual - exp.expected)
    if exp.expected <= 0:
        return gap > 0
    return gap / exp.expected > LOW_BAND and gap > z * exp.sigma * exp.expected


def crosses(actual: float, exp: Expectation | None, bounds: Bounds) -> bool:
    """Above the USD bound; or off by more than the relative bound (once the model has an expectation)."""
    if bounds.usd_per_day is not None and actual > bounds.usd_per_day:
        return True
    if bounds.relative is not None and exp is not None and exp.expected > 0:
        return abs(actual - exp.expected) / exp.expected > bounds.relative
    return False


def fallback_expected(values: np.ndarray, t: int) -> float:
    """Before the model speaks (threshold alarms only): the median of the days so far, else the day itself."""
    known = values[:t][~np.isnan(values[:t])]
    return float(np.median(known)) if len(known) else float(values[t])


def scan(start: date, values: np.ndarray, settings: Settings, bounds: Bounds = Bounds()) -> ScanResult:
    """Every day's expected value and the anomalous days (``start`` is the first day's date)."""
    model = Baseline(start, values, settings)
    result = ScanResult(np.full(len(values), np.nan))
    run: list[int] = []                   # indexes into result.verdicts: the current same-direction streak
    for t, actual in enumerate(model.values):
        if np.isnan(actual):
            continue
        exp = model.expect(t)
        expected = exp.expected if exp else fallback_expected(model.values, t)
        result.expected[t] = exp.expected if exp else np.nan
        statistical = is_statistical(actual, exp, settings.z)
        by_threshold = crosses(actual, exp, bounds)
        model.observe(t, exp, statistical)
        if not (statistical or by_threshold):
            run = []
            continue
        sign = 1 if actual >= expected else -1
        result.verdicts.append(DayVerdict(t, expected, float(actual), sign, statistical, by_threshold))
        if not statistical:
            run = []
            continue
        if run and result.verdicts[run[-1]].sign != sign:
            run = []
        run.append(len(result.verdicts) - 1)
        if len(run) >= settings.shift_days:
            _confirm_shift(model, result, run)
            run = []
    return result


def _confirm_shift(model: Baseline, result: ScanResult, run: list[int]) -> None:
    first = result.verdicts[run[0]].index
    for k in run:
        v = result.verdicts[k]
        result.verdicts[k] = DayVerdict(v.index, v.expected, v.actual, v.sign, v.statistical, v.by_threshold,
                                        shift=first)
    model.reanchor(first, result.verdicts[run[-1]].index)
