"""Anomalous days -> episodes: consecutive days in the same direction alert once, as one :class:`Anomaly`.

Days are consecutive when no *known* day lies between them (a day without data does not end an episode).
An episode is reported with its worst day (the largest relative deviation): its expected and actual cost
and its severity band. An episode with any acknowledged day is not reported again.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import numpy as np

from ..models.spend import Anomaly, AnomalyKind, Severity
from .scan import DayVerdict


def group(verdicts: list[DayVerdict], values: np.ndarray) -> list[list[DayVerdict]]:
    """Split the anomalous days (in order) into episodes."""
    known = np.concatenate([[0], np.cumsum(~np.isnan(values))])
    episodes: list[list[DayVerdict]] = []
    for v in verdicts:
        if episodes and _continues(episodes[-1][-1], v, known):
            episodes[-1].append(v)
        else:
            episodes.append([v])
    return episodes


def _continues(prev: DayVerdict, v: DayVerdict, known: np.ndarray) -> bool:
    if prev.shift is not None and prev.shift == v.shift:
        return True
    no_known_day_between = known[v.index] - known[prev.index + 1] == 0
    return no_known_day_between and prev.sign == v.sign


def worst(days: list[DayVerdict]) -> DayVerdict:
    return max(days, key=lambda v: v.deviation)          # first of equals: max keeps the earliest


def to_anomaly(days: list[DayVerdict], start: date) -> Anomaly:
    top = worst(days)
    if any(v.shift is not None for v in days):
        kind = AnomalyKind.LEVEL_SHIFT
    else:
        kind = AnomalyKind.SPIKE if top.sign > 0 else AnomalyKind.DIP
    return Anomaly(start=start + timedelta(days=days[0].index), end=start + timedelta(days=days[-1].index),
                   severity=Severity.for_deviation(top.deviation) or Severity.LOW, kind=kind,
                   expected=float(top.expected), actual=float(top.actual),
                   by_threshold=any(v.by_threshold for v in days))


def acknowledged(days: list[DayVerdict], start: date, acked: Iterable[date]) -> bool:
    dates = {start + timedelta(days=v.index) for v in days}
    return not dates.isdisjoint(acked)
