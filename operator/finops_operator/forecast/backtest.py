"""Rolling back-tests: how each method would have done from past origins, and the 95% interval they imply.

Origins are every :data:`ORIGIN_STEP` days back from ``len(y) - horizon`` (at most :data:`MAX_ORIGINS`, each
with at least :data:`MIN_TRAIN` days before it); the back-test horizon is the request's, capped at
:data:`MAX_HORIZON` and at what the history allows. Only days that were measured are scored.

Interval (empirical, per horizon step): the back-test errors ``actual - forecast`` give a spread per step
(root mean square over origins), smoothed as ``variance = a + b * step`` (so it widens with the horizon and
extends past the back-tested steps); the 2.5% and 97.5% quantiles of the errors divided by that spread,
pooled over every origin and step, scale it into the interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Method = Callable[[np.ndarray, int], np.ndarray]

ORIGIN_STEP = 7
MAX_ORIGINS = 8
MIN_TRAIN = 28
MAX_HORIZON = 35


@dataclass(frozen=True, slots=True)
class Backtest:
    """One method's errors: ``errors[k, h] = actual - forecast`` at origin k, step h (NaN: day not measured)."""

    errors: np.ndarray
    actual: np.ndarray

    @property
    def total_error(self) -> float:
        """Mean over origins of |forecast total - actual total| / actual total (the selection score)."""
        known = ~np.isnan(self.errors)
        totals = np.where(known, self.actual, 0.0).sum(axis=1)
        missed = np.abs(np.where(known, self.errors, 0.0).sum(axis=1))
        scale = np.where(totals > 0, totals, 1.0)
        return float(np.mean(missed / scale))

    @property
    def daily_mape(self) -> float | None:
        """Mean |error| / actual over the scored days with a cost above zero (None when there are none)."""
        ok = ~np.isnan(self.errors) & (self.actual > 0)
        if not ok.any():
            return None
        return float(np.mean(np.abs(self.errors[ok]) / self.actual[ok]))


def origins(days: int, horizon: int, min_train: int = MIN_TRAIN) -> tuple[list[int], int]:
    """(origins, back-test horizon); no origins when the history is too short for one."""
    steps = min(horizon, MAX_HORIZON, days - min_train)
    if steps < 1:
        return [], 0
    last = days - steps
    return [last - k * ORIGIN_STEP for k in range(MAX_ORIGINS) if last - k * ORIGIN_STEP >= min_train], steps


def run_backtest(method: Method, filled: np.ndarray, observed: np.ndarray, starts: list[int], steps: int) -> Backtest:
    """Forecast from each origin on the filled history; compare with the observed days."""
    errors = np.empty((len(starts), steps))
    actual = np.empty((len(starts), steps))
    for k, origin in enumerate(starts):
        predicted = np.clip(method(filled[:origin], steps), 0.0, None)
        actual[k] = observed[origin:origin + steps]
        errors[k] = actual[k] - predicted
    return Backtest(errors, np.nan_to_num(actual))


def interval(test: Backtest, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (lower, upper) to add to the forecast for steps 1..horizon (see the module's docstring)."""
    errors = test.errors
    steps = errors.shape[1]
    counts = np.sum(~np.isnan(errors), axis=0)
    mean_square = np.where(counts > 0, np.nansum(errors ** 2, axis=0) / np.maximum(counts, 1), np.nan)
    h = np.arange(1, steps + 1, dtype=np.float64)
    ok = ~np.isnan(mean_square)
    if ok.sum() >= 2:
        slope, intercept = np.polyfit(h[ok], mean_square[ok], 1)
    else:
        slope, intercept = 0.0, float(np.nanmean(mean_square)) if ok.any() else 0.0
    slope = max(slope, 0.0)
    if intercept < 0:                                  # keep it a variance at step 1 and growing
        intercept = max(float(np.nanmin(mean_square)) if ok.any() else 0.0, 0.0)
    spread = np.sqrt(intercept + slope * h)
    standard = errors / np.where(spread > 0, spread, 1.0)[None, :]
    standard = standard[~np.isnan(standard)]
    if not len(standard) or not np.any(spread > 0):
        zeros = np.zeros(horizon)
        return zeros, zeros
    low, high = np.quantile(standard, [0.025, 0.975])
    future = np.sqrt(intercept + slope * np.arange(1, horizon + 1, dtype=np.float64))
    return min(low, 0.0) * future, max(high, 0.0) * future
