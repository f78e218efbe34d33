"""The budget's own forecaster while ``forecast.forecast`` (issue 10, part 1) is not importable.

A trailing moving average of the last :data:`WINDOW` known days, with a 95% interval from the errors
of the same rule back-tested one day ahead over the last :data:`BACKTEST` days, and their MAPE.
Pure; same signature as the forecast package's: ``(series, horizon_days) -> Forecast``.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np

from ..models.spend import Forecast, ForecastPoint, SpendSeries

METHOD = "moving-average"
WINDOW = 7
BACKTEST = 28
Z95 = 1.96


def moving_average(series: SpendSeries, horizon_days: int) -> Forecast:
    known = series.values[np.isfinite(series.values)]
    if len(known) == 0 or horizon_days <= 0:
        return Forecast(METHOD, None, [])
    level = float(np.mean(known[-WINDOW:]))
    errors, mape = _backtest(known)
    spread = Z95 * float(np.std(errors)) if len(errors) > 1 else Z95 * 0.25 * level
    points = [ForecastPoint(series.end + timedelta(days=i), level, max(0.0, level - spread), level + spread)
              for i in range(horizon_days)]
    return Forecast(METHOD, mape, points)


def _backtest(known: np.ndarray) -> tuple[np.ndarray, float | None]:
    """One-day-ahead errors (actual - predicted) of the last BACKTEST days, and their MAPE (None: none scorable)."""
    first = max(1, len(known) - BACKTEST)
    predicted = np.array([np.mean(known[max(0, i - WINDOW):i]) for i in range(first, len(known))])
    actual = known[first:]
    errors = actual - predicted
    scorable = actual > 0
    mape = float(np.mean(np.abs(errors[scorable]) / actual[scorable])) if scorable.any() else None
    return errors, mape
