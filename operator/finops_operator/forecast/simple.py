"""The simple methods: each maps a gap-free history (float64, oldest first) and a horizon to daily values.

``linear``          least squares line through the last :data:`LINEAR_DAYS` days, extended
``moving-average``  mean of the last 28 days (four whole weeks: weekdays and weekends weigh as they do)
``moving-average-7`` mean of the last 7 days (one week: quicker after a level shift, noisier)
``seasonal-naive``  the same weekday last week (the baseline every method must beat)

Values below zero are cut to zero by the caller (a trend may point below it; spend cannot).
"""
from __future__ import annotations

import numpy as np

LINEAR_DAYS = 56


def linear(y: np.ndarray, horizon: int) -> np.ndarray:
    recent = y[-LINEAR_DAYS:]
    x = np.arange(len(recent), dtype=np.float64)
    if len(recent) < 2:
        return np.full(horizon, float(recent[-1]))
    slope, intercept = np.polyfit(x, recent, 1)
    future = np.arange(len(recent), len(recent) + horizon, dtype=np.float64)
    return intercept + slope * future


def mean_of_last(days: int):
    def moving_average(y: np.ndarray, horizon: int) -> np.ndarray:
        window = min(days, len(y))
        if window >= 7:
            window -= window % 7                  # whole weeks, so weekends are not over- or under-counted
        return np.full(horizon, float(np.mean(y[-window:])))
    return moving_average


def seasonal_naive(y: np.ndarray, horizon: int) -> np.ndarray:
    if len(y) < 7:
        return np.full(horizon, float(np.mean(y)))
    week = y[-7:]
    return np.resize(week, horizon).astype(np.float64)
