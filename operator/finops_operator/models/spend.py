"""Spend over time: daily cost series, forecasts and anomalies (what budgets are evaluated on).

    allocation per day (or the CUR / Cost Explorer)  ->  SpendSeries       (the budget's history)
    SpendSeries  ->  forecast/  ->  Forecast (method, back-tested MAPE, 95% interval per day)
    SpendSeries (+ breakdown by namespace/workload/service)  ->  anomalies/  ->  [Anomaly]

Money is USD; days are calendar days in the budget's time zone (``datetime.date``).
Nothing here does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum

import numpy as np


@dataclass(frozen=True, slots=True)
class SpendSeries:
    """Cost per day, contiguous from ``start`` (one value per day; NaN = no data that day)."""

    start: date
    values: np.ndarray                     # float64 [days]

    def __post_init__(self) -> None:
        if self.values.ndim != 1:
            raise ValueError(f"SpendSeries.values must be one-dimensional, got shape {self.values.shape}")

    @property
    def end(self) -> date:
        """The day after the last value."""
        return self.start + timedelta(days=len(self.values))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(len(self.values))]

    def total(self, first: date | None = None, last: date | None = None) -> float:
        """Sum of the known values over [first, last) (default: all)."""
        lo = 0 if first is None else max(0, (first - self.start).days)
        hi = len(self.values) if last is None else max(0, min(len(self.values), (last - self.start).days))
        return float(np.nansum(self.values[lo:hi])) if hi > lo else 0.0

    @classmethod
    def from_pairs(cls, pairs: list[tuple[date, float]]) -> "SpendSeries":
        """From (day, cost) pairs in any order; missing days become NaN, repeated days are summed."""
        if not pairs:
            raise ValueError("no days")
        first = min(d for d, _ in pairs)
        last = max(d for d, _ in pairs)
        values = np.full((last - first).days + 1, np.nan)
        for day, cost in pairs:
            i = (day - first).days
            values[i] = cost if np.isnan(values[i]) else values[i] + cost
        return cls(first, values)


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    day: date
    value: float
    lower: float                           # 95% prediction interval
    upper: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """Daily forecast after the series' end, with the method chosen and its back-tested error."""

    method: str                            # "linear" | "moving-average" | "holt-winters" | ...
    backtest_mape: float | None            # mean absolute percentage error of rolling back-tests (0.05 = 5%)
    points: list[ForecastPoint] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(p.value for p in self.points)


class Severity(str, Enum):
    """FinOps bands: more than 10% / 25% / 50% off the expected value."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @classmethod
    def for_deviation(cls, deviation: float) -> "Severity | None":
        """The band of a relative deviation ``|actual - expected| / expected`` (0.3 = 30% off); None under 10%."""
        for bound, band in ((0.50, cls.HIGH), (0.25, cls.MEDIUM), (0.10, cls.LOW)):
            if deviation > bound:
                return band
        return None


class AnomalyKind(str, Enum):
    SPIKE = "spike"
    DIP = "dip"
    LEVEL_SHIFT = "level-shift"            # alerts once, then becomes the new normal


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One episode (consecutive anomalous days or hours alert once), with what moved most."""

    start: date
    end: date                              # last anomalous day (inclusive)
    severity: Severity
    kind: AnomalyKind
    expected: float                        # of the episode's worst day
    actual: float
    driver: str | None = None              # e.g. "namespace search" / "service AmazonEC2", when a breakdown is given
    driver_delta: float | None = None      # how much the driver moved (USD, actual - expected)
    by_threshold: bool = False             # a threshold (USD a day, or relative) was crossed, whatever the statistics
    hours: tuple[datetime, datetime] | None = None   # an intra-day episode: its first and last hour (hourly data)
