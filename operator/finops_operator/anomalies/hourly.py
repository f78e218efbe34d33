"""Intra-day spikes from hourly cost, where the data has it (kept deliberately simple).

- expected cost of an hour: the median of the same hour on the same weekday over the last 4 weeks (at
  least 2 of them known), else of the same hour over the last 7 days (at least 3 known); none before that;
- spread: 1.4826 x MAD of the relative residuals of the previous 7 days' hours (at least 24 known);
- an hour is anomalous when it is more than the 10% band *and* more than ``HOURLY_Z`` sigmas off (stricter
  than days: there are 24 times as many hours to raise false alarms);
- consecutive anomalous hours in the same direction are one episode, reported with its worst hour
  (expected and actual in USD for that hour) and ``hours=(first, last)``.

Episodes on days that the daily detector already reports, or that are acknowledged, are left out by
:func:`finops_operator.anomalies.detect`: the daily alert covers them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from ..models.spend import Anomaly, AnomalyKind, Severity
from .baseline import robust_sigma
from .scan import LOW_BAND

HOURLY_Z = 5.0
WEEK = 168


@dataclass(frozen=True, slots=True)
class HourlySeries:
    """Cost per hour, contiguous from ``start`` (an hour boundary); NaN = no data that hour."""

    start: datetime
    values: np.ndarray                     # float64 [hours]


def expected_hours(values: np.ndarray) -> np.ndarray:
    """Per hour: what the same hour cost before (same weekday over 4 weeks, else the last 7 days)."""
    n = len(values)
    weekly = _lagged_median(values, [WEEK * k for k in range(1, 5)], need=2)
    daily = _lagged_median(values, [24 * k for k in range(1, 8)], need=3)
    return np.where(np.isnan(weekly), daily, weekly)[:n]


def _lagged_median(values: np.ndarray, lags: list[int], need: int) -> np.ndarray:
    n = len(values)
    stack = np.full((len(lags), n), np.nan)
    for row, lag in enumerate(lags):
        stack[row, lag:] = values[:n - lag] if lag < n else []
    enough = np.count_nonzero(~np.isnan(stack), axis=0) >= need
    out = np.full(n, np.nan)
    if enough.any():
        out[enough] = np.nanmedian(stack[:, enough], axis=0)
    return out


def hourly_anomalies(series: HourlySeries, z: float = HOURLY_Z) -> list[Anomaly]:
    values = np.asarray(series.values, dtype=np.float64)
    expected = expected_hours(values)
    with np.errstate(all="ignore"):
        residual = np.where(expected > 0, values / expected - 1, np.nan)
    flagged: list[tuple[int, int]] = []   # (hour, sign)
    for h in range(len(values)):
        if np.isnan(values[h]) or np.isnan(expected[h]) or expected[h] <= 0:
            continue
        past = residual[max(0, h - WEEK):h]
        past = past[~np.isnan(past)]
        if len(past) < 24:
            continue
        sigma = max(robust_sigma(past), 0.01)
        dev = residual[h]
        if abs(dev) > LOW_BAND and abs(dev) > z * sigma:
            flagged.append((h, 1 if dev > 0 else -1))
    return [_episode(series.start, values, expected, run) for run in _runs(flagged)]


def _runs(flagged: list[tuple[int, int]]) -> list[list[int]]:
    runs: list[list[tuple[int, int]]] = []
    for hour, sign in flagged:
        if runs and runs[-1][-1][0] == hour - 1 and runs[-1][-1][1] == sign:
            runs[-1].append((hour, sign))
        else:
            runs.append([(hour, sign)])
    return [[h for h, _ in run] for run in runs]


def _episode(start: datetime, values: np.ndarray, expected: np.ndarray, hours: list[int]) -> Anomaly:
    top = max(hours, key=lambda h: abs(values[h] - expected[h]) / expected[h])
    deviation = abs(values[top] - expected[top]) / expected[top]
    first, last = start + timedelta(hours=hours[0]), start + timedelta(hours=hours[-1])
    return Anomaly(start=first.date(), end=last.date(), severity=Severity.for_deviation(deviation) or Severity.LOW,
                   kind=AnomalyKind.SPIKE if values[top] > expected[top] else AnomalyKind.DIP,
                   expected=float(expected[top]), actual=float(values[top]),
                   hours=(first, last))
