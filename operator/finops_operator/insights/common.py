"""What every generator shares: stable ids, the priority rules, money and series helpers.

Priority rules (one place; generators call these and nothing else decides a priority):

* money at stake, :func:`by_impact` (USD per month): >= 5,000 critical, >= 1,000 high, >= 100 medium,
  else low;
* a budget, :func:`by_budget_state`: Exceeded critical, ForecastExceeded high, Warning medium, OK low;
* an anomaly, :func:`by_severity`: the episode's severity band (high, medium, low); a level shift
  (a lasting change) one step up;
* :func:`top` keeps the highest first: priority, then impact, then id (stable output).
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timezone

import numpy as np

from ..models.insights import Insight, Priority
from ..models.spend import AnomalyKind, Severity, SpendSeries
from ..money import usd
from ..pricing import HOURS_PER_MONTH

DAYS_PER_MONTH = HOURS_PER_MONTH / 24          # 30.42: the month every $/month in the product uses
IMPACT_BANDS = ((5000.0, Priority.CRITICAL), (1000.0, Priority.HIGH), (100.0, Priority.MEDIUM))
_BUDGET_STATES = {"Exceeded": Priority.CRITICAL, "ForecastExceeded": Priority.HIGH, "Warning": Priority.MEDIUM}
_SEVERITIES = {Severity.HIGH: Priority.HIGH, Severity.MEDIUM: Priority.MEDIUM, Severity.LOW: Priority.LOW}
_ORDER = [Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL]


def insight_id(generator: str, subject: str) -> str:
    """Stable id of a finding: the same generator about the same subject gives the same id in every run."""
    return hashlib.sha256(f"{generator}\x00{subject}".encode()).hexdigest()[:16]


def by_impact(monthly_usd: float | None) -> Priority:
    if monthly_usd is None or not np.isfinite(monthly_usd):
        return Priority.LOW
    for bound, priority in IMPACT_BANDS:
        if abs(monthly_usd) >= bound:
            return priority
    return Priority.LOW


def by_budget_state(state: str) -> Priority:
    return _BUDGET_STATES.get(state, Priority.LOW)


def by_severity(severity: Severity, kind: AnomalyKind) -> Priority:
    base = _SEVERITIES[severity]
    return step_up(base) if kind is AnomalyKind.LEVEL_SHIFT else base


def step_up(priority: Priority) -> Priority:
    return _ORDER[min(len(_ORDER) - 1, priority.rank + 1)]


def highest(*priorities: Priority) -> Priority:
    return max(priorities, key=lambda p: p.rank)


def top(insights: list[Insight]) -> list[Insight]:
    """Highest priority first, then the largest impact, then id."""
    return sorted(insights, key=lambda i: (-i.priority.rank, -(abs(i.impact) if i.impact is not None else 0.0),
                                           i.id))


def percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def signed_percent(value: float) -> str:
    return f"{value:+.1f}%"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def aligned(a: SpendSeries, b: SpendSeries) -> tuple[date, np.ndarray, np.ndarray]:
    """The days both series cover, from the first common day: (first day, a's values, b's values);
    a day missing in either is NaN in both."""
    start, end = max(a.start, b.start), min(a.end, b.end)
    if end <= start:
        return start, np.array([]), np.array([])
    x = a.values[(start - a.start).days:(end - a.start).days].astype(float)
    y = b.values[(start - b.start).days:(end - b.start).days].astype(float)
    gone = ~(np.isfinite(x) & np.isfinite(y))
    x[gone], y[gone] = np.nan, np.nan
    return start, x, y


def weekly_means(values: np.ndarray) -> np.ndarray:
    """Mean of each whole week from the end backwards (oldest first); a week without data is NaN."""
    weeks = len(values) // 7
    if weeks == 0:
        return np.array([])
    tail = values[len(values) - 7 * weeks:].reshape(weeks, 7)
    out = np.full(weeks, np.nan)
    for i, week in enumerate(tail):
        if np.isfinite(week).any():
            out[i] = float(np.nanmean(week))
    return out


def unit_usd(value: float) -> str:
    """A unit cost: below a dollar it needs more than cents ($0.0042)."""
    return usd(value) if abs(value) >= 1 else f"${value:.4f}"


def singular(name: str) -> str:
    """'orders' -> 'order', 'active_users' -> 'active user' (the business series' unit, for text)."""
    text = name.replace("_", " ")
    return text.removesuffix("s") if text.endswith("s") and not text.endswith("ss") else text
