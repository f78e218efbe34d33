"""Cost anomalies in a daily spend series: statistical, seasonality-aware, threshold-based; one alert per episode.

    detect(series)                                    # statistical only
    detect(series, threshold=500.0)                   # ... and any day above $500
    detect(series, breakdown={"namespace search": s1, "namespace web": s2})   # names the driver
    detect(series, acknowledged={date(2026, 3, 4)})   # that episode is not reported again
    detect(series, hourly=HourlySeries(start, per_hour))   # intra-day spikes too

How (see :mod:`.baseline` for the model, :mod:`.scan` for the rules):

- each day is compared with what the days *before* it predict: a robust level (median, with a robust
  trend) x the weekday pattern of the trailing weeks x a month-end factor learned from past months, so
  weekends and month-end batches are normal; the spread is the MAD of past relative errors;
- a day is anomalous when it is more than 10% off (the FinOps low band) *and* more than ``z`` robust
  sigmas off; or when it crosses ``threshold`` (USD a day) or ``relative`` (e.g. 0.3: 30% off expected),
  whatever the statistics;
- severity by the worst day of the episode: above 10% low, 25% medium, 50% high;
- ``shift_days`` anomalous days in a row in one direction are a LEVEL_SHIFT: reported once, after which
  the baseline re-anchors on the new level;
- anomalous days are cleaned out of the history (counted as expected), so a spike does not hide the next.

Pure numpy; no I/O. Days without data (NaN) are skipped.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta

from ..models.spend import Anomaly, SpendSeries
from .baseline import Settings
from .drivers import Drivers
from .episodes import acknowledged as is_acknowledged
from .episodes import group, to_anomaly, worst
from .hourly import HourlySeries, hourly_anomalies
from .scan import Bounds, scan

__all__ = ["HourlySeries", "Settings", "detect"]


def detect(series: SpendSeries, *, breakdown: dict[str, SpendSeries] | None = None,
           threshold: float | None = None, acknowledged: Iterable[date] = frozenset(),
           hourly: HourlySeries | None = None, relative: float | None = None,
           settings: Settings = Settings()) -> list[Anomaly]:
    """The anomaly episodes of ``series``, oldest first (see the module docstring)."""
    acked = frozenset(acknowledged)
    result = scan(series.start, series.values, settings, Bounds(threshold, relative))
    drivers = Drivers(breakdown, settings) if breakdown else None
    found: list[Anomaly] = []
    for days in group(result.verdicts, series.values):
        if is_acknowledged(days, series.start, acked):
            continue
        anomaly = to_anomaly(days, series.start)
        if drivers is not None:
            moved = drivers.moved_most(series.start + timedelta(days=worst(days).index), worst(days).sign)
            if moved:
                anomaly = replace(anomaly, driver=moved[0], driver_delta=moved[1])
        found.append(anomaly)
    if hourly is not None:
        found += _intraday(hourly, found, acked)
    return sorted(found, key=lambda a: (a.start, a.hours is not None))


def _intraday(hourly: HourlySeries, daily: list[Anomaly], acked: frozenset[date]) -> list[Anomaly]:
    """Hourly episodes on days no daily episode covers and nobody acknowledged."""
    covered = set(acked)
    for a in daily:
        covered.update(a.start + timedelta(days=i) for i in range((a.end - a.start).days + 1))
    return [a for a in hourly_anomalies(hourly)
            if not any(a.start + timedelta(days=i) in covered for i in range((a.end - a.start).days + 1))]
